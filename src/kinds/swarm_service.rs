//! `swarm/service`: a service of a swarm. (Skeleton: being written.)

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ClusterFacts, ClusterKind, ClusterStep, Kind, LinkContext, Links, Orphan, SwarmScope};
use crate::address::Address;
use crate::config::CheckContext;
use crate::facts::{swarm, FactError, HostFacts, Probe};
use crate::plan::Diff;

pub const KIND: &str = "swarm/service";

/// `swarm/service` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmServiceSpec {
    /// The `swarm/cluster` the service runs on; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub image: String,
    /// Overlay networks (`swarm/network` names).
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The swarm, filled in at load.
    #[serde(skip)]
    #[schemars(skip)]
    pub scope: SwarmScope,
}

impl Kind for SwarmServiceSpec {
    fn check(self, _ctx: &mut CheckContext) -> Self {
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        let Some(scope) = links.swarm(self.cluster.as_deref(), ctx) else {
            return Vec::new();
        };
        let mut after = vec![scope.address()];
        for network in &self.networks {
            after.push(Address::new(super::swarm_network::KIND, network, None));
        }
        self.scope = scope;
        after
    }
}

/// Deletes orphaned service `name` of `project` (see [`super::orphan_delete_script`]).
pub fn delete_script(name: &str, project: &str) -> String {
    let _ = (name, project);
    String::from("exit 1\n")
}

/// The services of `project` on the swarm that no `swarm/service` declares.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    let _ = (manager, project, declared);
    Ok(Vec::new())
}

impl ClusterKind for SwarmServiceSpec {
    fn members(&self) -> Vec<String> {
        self.scope.members()
    }

    fn machine_references(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe()]
    }

    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::service_inspect_probe()]
    }

    fn manager_candidates(&self, facts: &ClusterFacts) -> Vec<String> {
        super::swarm_cluster::live_managers(&self.scope.managers, facts)
    }

    fn facts_scope(&self) -> Option<Address> {
        Some(self.scope.address())
    }

    fn diff(&self, _name: &str, _facts: &ClusterFacts) -> Result<Diff, FactError> {
        Err(FactError::new(
            swarm::SERVICE_INSPECT_KEY,
            "swarm/service is being written",
        ))
    }

    fn steps(&self, _name: &str, _facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        Ok(Vec::new())
    }
}
