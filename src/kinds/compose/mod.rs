//! Compose files deployed as `swarm/stack`s (see [`load`] for how they are read).

mod load;

pub use load::{parse, parse_all, variables, Compose, ComposeObject, ComposeService};
pub use load::{Variable, Variables, STACK_IMAGE_LABEL, STACK_NAMESPACE_LABEL};
