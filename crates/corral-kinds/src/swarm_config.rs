//! `swarm/config`: told in [`super::swarm_secret`], with secrets, which it is but for the
//! Docker object it makes.

pub use super::swarm_secret::{SwarmConfigSpec, CONFIG_KIND as KIND};
