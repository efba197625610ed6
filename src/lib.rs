//! corral: reconcile Linux clusters toward a declared state with a plan/apply workflow.
//!
//! This crate is the CLI, the last layer of the workspace: `cli` (the arguments), `commands`
//! (what each command does with the engine), `import` (adopting a running cluster),
//! `kind_pages` (the kind reference generated from the schema). The stages live in
//! `corral-engine`, the document kinds in `corral-kinds`, the data they share in
//! `corral-core`, and the lab in `corral-lab` (docs/src/architecture.md, "Layers"); their
//! modules are re-exported here, so `corral::config::load` is the loader.

pub use corral_core::{
    address, base, duration, exit, facts, output_file, plan, random, rolling, shell,
};
pub use corral_engine::{
    apply, config, gather, graph, managed, owed, planner, project, render, schema, transport,
};
pub use corral_kinds as kinds;
pub use corral_lab as lab;

pub mod cli;
pub mod command_error;
pub mod commands;
pub mod import;
pub mod kind_pages;
