//! Probe outputs parsed once however many resources read them: every service on a swarm
//! reads the same `docker service inspect` of all services, and planning must stay linear
//! in services. Each parsed form is a field of its own type, filled on first use; the
//! accessors on [`HostFacts`] name the probe and the parser once.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::swarm::{self, OverlayNetwork, ServiceRun, SwarmNode, SwarmService};
use super::swarm_objects::{self, LiveObjects};
use super::{FactError, HostFacts, ProbeOutput};

/// One parsed form: empty until first asked for.
type Slot<T> = OnceLock<Arc<T>>;

/// The parsed forms of a host's (a manager's) probe outputs. Derived from the probes, it is
/// no part of the facts: facts compare equal whatever was parsed of them, and a copy of the
/// facts starts empty (it parses again).
#[derive(Default)]
pub struct Parsed {
    services: Slot<Vec<SwarmService>>,
    services_by_name: Slot<BTreeMap<String, SwarmService>>,
    service_runs: Slot<BTreeMap<String, ServiceRun>>,
    nodes: Slot<Vec<SwarmNode>>,
    networks: Slot<Vec<OverlayNetwork>>,
    network_names: Slot<BTreeMap<String, String>>,
    objects: Slot<LiveObjects>,
}

impl Clone for Parsed {
    fn clone(&self) -> Self {
        Parsed::default()
    }
}

impl HostFacts {
    /// `slot`, filled with the output of probe `key` parsed by `parse` unless it was; a
    /// parse that fails is not kept.
    fn parsed_once<T>(
        &self,
        slot: impl Fn(&Parsed) -> &Slot<T>,
        key: &str,
        parse: impl FnOnce(&str, &ProbeOutput) -> Result<T, FactError>,
    ) -> Result<Arc<T>, FactError> {
        let slot = slot(&self.parsed);
        if let Some(found) = slot.get() {
            return Ok(found.clone());
        }
        let value = Arc::new(parse(key, self.get(key)?)?);
        // Another thread may have parsed the same output meanwhile: either will do.
        Ok(slot.get_or_init(|| value).clone())
    }

    /// The services of `docker service inspect` (`swarm:service-inspect`), in its order.
    pub fn services(&self) -> Result<Arc<Vec<SwarmService>>, FactError> {
        self.parsed_once(
            |p| &p.services,
            swarm::SERVICE_INSPECT_KEY,
            swarm::parse_service_inspect,
        )
    }

    /// The services by name (the first of a name, as `docker service inspect NAME`).
    pub fn services_by_name(&self) -> Result<Arc<BTreeMap<String, SwarmService>>, FactError> {
        self.parsed_once(
            |p| &p.services_by_name,
            swarm::SERVICE_INSPECT_KEY,
            |key, out| {
                let mut by_name = BTreeMap::new();
                for service in swarm::parse_service_inspect(key, out)? {
                    by_name.entry(service.spec.name.clone()).or_insert(service);
                }
                Ok(by_name)
            },
        )
    }

    /// How the services run (`swarm:service-run`), by name.
    pub fn service_runs(&self) -> Result<Arc<BTreeMap<String, ServiceRun>>, FactError> {
        self.parsed_once(
            |p| &p.service_runs,
            swarm::SERVICE_RUN_KEY,
            swarm::parse_service_run,
        )
    }

    /// The swarm's nodes (`swarm:node-inspect`).
    pub fn nodes(&self) -> Result<Arc<Vec<SwarmNode>>, FactError> {
        self.parsed_once(
            |p| &p.nodes,
            swarm::NODE_INSPECT_KEY,
            swarm::parse_node_inspect,
        )
    }

    /// The swarm's overlay networks (`swarm:network-inspect`).
    pub fn networks(&self) -> Result<Arc<Vec<OverlayNetwork>>, FactError> {
        self.parsed_once(
            |p| &p.networks,
            swarm::NETWORK_INSPECT_KEY,
            swarm::parse_network_inspect,
        )
    }

    /// The overlay networks' names by ID.
    pub fn network_names(&self) -> Result<Arc<BTreeMap<String, String>>, FactError> {
        self.parsed_once(
            |p| &p.network_names,
            swarm::NETWORK_INSPECT_KEY,
            |key, out| {
                Ok(swarm::parse_network_inspect(key, out)?
                    .into_iter()
                    .map(|n| (n.id, n.name))
                    .collect())
            },
        )
    }

    /// The swarm's secrets and configs, and this project's key (`swarm:objects`).
    pub fn secret_objects(&self) -> Result<Arc<LiveObjects>, FactError> {
        self.parsed_once(
            |p| &p.objects,
            swarm_objects::OBJECTS_KEY,
            swarm_objects::parse,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    /// A parsed form is parsed once and then shared; two forms of the same output are kept
    /// apart; a copy of the facts parses again; a failed parse is not kept, so facts given
    /// the missing output afterwards parse.
    #[test]
    fn each_form_is_parsed_once_and_failures_are_not_kept() {
        let mut facts = HostFacts::default();
        assert!(facts.services().is_err());
        let swarm = crate::address::Address::new("swarm/cluster", "layers", None);
        let manager = &recorded::gathered("lab-stack").clusters[&swarm].facts;
        let inspect = manager.get(swarm::SERVICE_INSPECT_KEY).unwrap().clone();
        facts
            .probes
            .insert(swarm::SERVICE_INSPECT_KEY.to_owned(), inspect);
        let services = facts.services().unwrap();
        assert!(!services.is_empty());
        assert!(Arc::ptr_eq(&services, &facts.services().unwrap()));
        let by_name = facts.services_by_name().unwrap();
        assert_eq!(by_name.len(), services.len());
        let copy = facts.clone();
        assert_eq!(copy, facts);
        assert!(!Arc::ptr_eq(&services, &copy.services().unwrap()));
    }
}
