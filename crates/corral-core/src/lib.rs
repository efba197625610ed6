//! corral's layer 0: the plain data and leaf helpers that every later stage shares —
//! addresses, durations, shell quoting, exit codes, files written whole, diagnostics and YAML
//! spans (`base`), the facts read from hosts and their parsers (`facts`), the plan (`plan`)
//! and the health judgements of a rolling change (`rolling`).
//!
//! Nothing here names a kind or a stage: the crate depends on no other corral crate, so the
//! kinds (`corral-kinds`) and the engine (`corral-engine`) build on it and never the other
//! way (docs/src/architecture.md, "Layers").

pub mod address;
pub mod base;
pub mod duration;
pub mod exit;
pub mod facts;
pub mod output_file;
pub mod plan;
pub mod random;
pub mod rolling;
pub mod shell;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
