//! corral: reconcile Linux clusters toward a declared state with a plan/apply workflow.
//!
//! The pipeline has five stages, each in its own module: `config` loads and checks the
//! documents, `graph` orders resource instances, `gather` reads the hosts, `planner` diffs
//! desired against actual, and `apply` executes a plan. `kinds` holds one file per document
//! kind; `transport` is the only code that touches a host; `render` only shows things. What
//! the kinds and the stages share is plain data below them: `base`, `facts`, `plan`
//! (docs/src/architecture.md, "Layers", says which module may import which).

pub mod address;
pub mod apply;
pub mod base;
pub mod cli;
pub mod command_error;
pub mod commands;
pub mod config;
pub mod duration;
pub mod exit;
pub mod facts;
pub mod gather;
pub mod graph;
pub mod import;
pub mod kind_pages;
pub mod kinds;
pub mod lab;
pub mod managed;
pub mod output_file;
pub mod owed;
pub mod plan;
pub mod planner;
pub mod project;
pub mod random;
pub mod render;
pub mod rolling;
pub mod schema;
pub mod shell;
pub mod transport;
