//! corral's layer 2, the engine: the stages that turn documents into a plan and a plan into
//! changes. `config` loads and checks the documents, `graph` orders resource instances,
//! `gather` reads the hosts, `planner` diffs desired against actual, and `apply` executes a
//! plan; `transport` is the only code that touches a host; `render` only shows things.
//!
//! The kinds (`corral-kinds`) and the shared data (`corral-core`) are below; their modules
//! are re-exported here so that a path reads the same in every crate (`crate::facts::…`,
//! `crate::kinds::…`). Nothing here depends on the CLI.

pub use corral_core::{
    address, base, duration, exit, facts, output_file, plan, random, rolling, shell,
};
pub use corral_kinds as kinds;

pub mod apply;
pub mod config;
pub mod gather;
pub mod graph;
pub mod managed;
pub mod owed;
pub mod planner;
pub mod project;
pub mod render;
pub mod schema;
pub mod transport;
