//! Layer 0: what the kinds and the engine share, on nothing of corral's own but the leaves
//! (`address`, `duration`, `shell`): the YAML tree with spans, configuration diagnostics,
//! machine selectors, the inventory's machines, the context a kind's checks run in, what
//! every document has besides its specification, and text shown to people. Nothing here
//! imports a later layer (docs/src/architecture.md, "Layers").

pub mod check;
pub mod diagnostic;
pub mod envelope;
pub mod machine;
pub mod selector;
pub mod text;
pub mod timeout;
pub mod yaml;
