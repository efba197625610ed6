//! corral: reconcile Linux clusters toward a declared state with a plan/apply workflow.
//!
//! The pipeline has five stages, each in its own module: `config` loads and checks the
//! documents, `graph` orders resource instances, `facts` reads the hosts, `plan` diffs
//! desired against actual, and `apply` executes a plan. `kinds` holds one file per document
//! kind; `transport` is the only code that touches a host.

pub mod config;
pub mod lab;
