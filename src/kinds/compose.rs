//! Compose files deployed as `swarm/stack`s: parsed with source locations, converted to the
//! services `docker stack deploy` creates, and rendered again for the deploy.
