//! `swarm/service`: a service of a swarm (see [`compare`] for how it is compared).

mod compare;

pub use compare::*;
