//! Stage 0: what every later stage shares and nothing of corral's own is below. The YAML
//! tree with spans, configuration diagnostics, machine selectors, the inventory's machines,
//! and the context a kind's checks run in. Nothing here imports a later stage (see
//! docs/src/architecture.md, "Layers").

pub mod check;
pub mod diagnostic;
pub mod envelope;
pub mod machine;
pub mod selector;
pub mod text;
pub mod timeout;
pub mod yaml;
