//! What every resource placed on a swarm shares: the swarm as it sees it ([`SwarmScope`]),
//! the label that marks the Docker objects corral creates, and the guards that keep corral
//! to its own objects.

use crate::address::Address;
use crate::plan::{AttrChange, AttrValue};
use crate::shell::quote;

use super::{swarm_cluster, ClusterFacts};

/// A swarm as the resources placed on it see it, filled in at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmScope {
    /// The `swarm/cluster` resource's name.
    pub cluster: String,
    pub managers: Vec<String>,
    pub workers: Vec<String>,
    /// The project, whose label (`io.corral.managed=<project>`) marks the Docker objects
    /// corral creates, so that it deletes only its own.
    pub project: String,
}

impl SwarmScope {
    /// The `swarm/cluster` address, whose manager round trip carries the facts of every
    /// resource on the swarm.
    pub fn address(&self) -> Address {
        Address::new(swarm_cluster::KIND, &self.cluster, None)
    }

    /// Every member: managers first, in order, then workers.
    pub fn members(&self) -> Vec<String> {
        self.managers.iter().chain(&self.workers).cloned().collect()
    }
}

/// What every resource placed on a swarm says alike in its [`ClusterKind`] impl, given the
/// path to its [`SwarmScope`] (`scope`, `object.scope`): its members are the swarm's, it
/// names no machine of its own, its facts come from the swarm's one manager round trip,
/// and a live manager answers for it.
macro_rules! on_a_swarm {
    ($($scope:ident).+) => {
        fn members(&self) -> Vec<String> {
            self.$($scope).+.members()
        }

        fn machine_references(&self) -> Vec<(&'static str, String)> {
            Vec::new()
        }

        fn manager_candidates(&self, facts: &$crate::ClusterFacts) -> Vec<String> {
            $crate::swarm_cluster::live_managers(&self.$($scope).+.managers, facts)
        }

        fn facts_scope(&self) -> Option<$crate::address::Address> {
            Some(self.$($scope).+.address())
        }
    };
}
pub(crate) use on_a_swarm;

pub use crate::facts::swarm_objects::MANAGED_LABEL;

impl SwarmScope {
    /// The manager a resource's steps run on: the one that answered for the swarm, or the
    /// bootstrap manager of a swarm that the same apply creates.
    pub fn leader(&self, facts: &ClusterFacts) -> String {
        match &facts.manager {
            Some((manager, _)) => manager.clone(),
            None => self.managers.first().cloned().unwrap_or_default(),
        }
    }
}

/// A kind of Docker object corral creates on a swarm, labelled [`MANAGED_LABEL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerObject {
    Service,
    Network,
    Secret,
    Config,
}

impl DockerObject {
    /// The CLI's word for it (`docker service …`).
    fn noun(self) -> &'static str {
        match self {
            DockerObject::Service => "service",
            DockerObject::Network => "network",
            DockerObject::Secret => "secret",
            DockerObject::Config => "config",
        }
    }

    /// Where `docker … inspect` shows its labels.
    fn labels(self) -> &'static str {
        match self {
            DockerObject::Service | DockerObject::Secret | DockerObject::Config => ".Spec.Labels",
            DockerObject::Network => ".Labels",
        }
    }

    /// Shell text that refuses, at apply time, an object `name` that is not `project`'s.
    pub fn owned_guard(self, name: &str, project: &str) -> String {
        format!(
            "[ \"$(docker {noun} inspect --format '{{{{index {labels} \"{MANAGED_LABEL}\"}}}}' {name})\" = {project} ] || {{ echo 'corral: {noun} '{name}' is not managed by project '{project}'; left alone'; exit 1; }}\n",
            noun = self.noun(),
            labels = self.labels(),
            name = quote(name),
            project = quote(project)
        )
    }

    /// [`DockerObject::owned_guard`] that also lets through an object without any
    /// project's label: one made by hand that this change adopts.
    pub fn adoptable_guard(self, name: &str, project: &str) -> String {
        format!(
            "case \"$(docker {noun} inspect --format '{{{{index {labels} \"{MANAGED_LABEL}\"}}}}' {name})\" in {project}|''|'<no value>') ;; *) echo 'corral: {noun} '{name}' is managed by another project; left alone'; exit 1 ;; esac\n",
            noun = self.noun(),
            labels = self.labels(),
            name = quote(name),
            project = quote(project)
        )
    }

    /// Shell text that polls until no object `name` is left (the swarm forgets it
    /// asynchronously).
    pub fn wait_gone(self, name: &str) -> String {
        format!(
            "i=0\nwhile docker {noun} inspect {name} >/dev/null 2>&1; do\n  i=$((i + 1)); [ \"$i\" -le 30 ] || {{ echo 'corral: the {noun} was not removed within 30 s'; exit 1; }}\n  sleep 1\ndone\n",
            noun = self.noun(),
            name = quote(name)
        )
    }

    /// Deletes an orphaned object `name` of `project` (see [`super::orphan_delete_script`]):
    /// refuses one that is not the project's, and succeeds when it is already gone.
    pub fn delete_script(self, name: &str, project: &str) -> String {
        format!(
            "set -e\nif docker {noun} inspect {q} >/dev/null 2>&1; then\n{guard}docker {noun} rm {q} >/dev/null\nfi\n{wait}",
            noun = self.noun(),
            q = quote(name),
            guard = self.owned_guard(name, project),
            wait = self.wait_gone(name)
        )
    }
}

/// The attribute a plan shows on the first change of an object made by hand (see
/// `corral import`): corral labels it as its project's from then on.
pub const ADOPTED: &str = "adopted";

/// [`ADOPTED`]'s attribute.
pub fn adopted_attribute(project: &str) -> AttrChange {
    AttrChange::new(
        ADOPTED,
        AttrValue::Absent,
        AttrValue::Scalar(format!("by project {project}")),
    )
}

/// Why a plan changes a `noun` no project labelled.
pub fn adopted_reason(noun: &str) -> String {
    format!("adopted: the {noun} was made by hand; this change also labels it {MANAGED_LABEL}, and corral manages it from now on (nothing else restarts for it)")
}
