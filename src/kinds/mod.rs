//! Document kinds, one file each. A kind's file tells its whole story: what it declares,
//! what it reads from a host, how it decides, and what it runs.
//!
//! Per-machine kinds implement [`MachineKind`]: pure functions from (spec, facts) to a
//! [`Diff`], and from a planned change to shell [`Step`]s. Nothing here touches a host.

pub mod file;
pub mod package;
pub mod service;
pub mod swarm_cluster;
pub mod sysctl;

use serde::de::DeserializeOwned;

use crate::config::yaml::{from_node, DeError, Node};
use crate::config::{CheckContext, Selector};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Diff, ResourceChange};

/// Kinds corral knows, besides `infrastructure/machine`.
pub const KNOWN_KINDS: &[&str] = &[
    package::KIND,
    file::KIND,
    sysctl::KIND,
    service::KIND,
    swarm_cluster::KIND,
];

/// The decoded `specification` of a resource.
#[derive(Debug, Clone)]
pub enum Spec {
    Package(package::PackageSpec),
    File(file::FileSpec),
    Sysctl(sysctl::SysctlSpec),
    Service(service::ServiceSpec),
    SwarmCluster(swarm_cluster::SwarmClusterSpec),
}

/// One command script run on a host to carry out (part of) a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does, for progress lines and errors; never holds a secret.
    pub description: String,
    /// POSIX shell, run with `sh -s`; every configuration value in it is quoted.
    pub script: String,
}

/// Something on a machine that only one resource may manage, with the state it wants;
/// two resources wanting different states of the same thing are a configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// What is managed, as operators read it: `file /etc/motd`, `package tree`, ….
    pub key: String,
    /// The desired state, compared between claimants (never shown: it may hold a digest).
    pub state: String,
}

impl Claim {
    pub fn new(key: impl Into<String>, state: impl Into<String>) -> Self {
        Claim {
            key: key.into(),
            state: state.into(),
        }
    }
}

/// Where a resource's instances live. Every stage (graph, facts, plan, apply, records)
/// matches it exhaustively, so that a kind placed elsewhere — on a cluster, as Swarm
/// networks and Gluster volumes will be — can never be skipped silently by one of them.
pub enum Placement<'a> {
    /// One instance per machine its selector picks (`os/file.motd[n2]`).
    Machines(&'a dyn MachineKind),
    /// One instance for a cluster of machines (`swarm/cluster.main`).
    Cluster(&'a dyn ClusterKind),
}

/// A member of a cluster as its kind sees it: where it is, and what it said.
#[derive(Debug, Clone, Copy)]
pub struct ClusterMember<'a> {
    pub ip: IpAddr,
    pub facts: &'a HostFacts,
}

/// What a cluster kind plans from: every member's own facts, and those of one live manager
/// read in a second round trip (`None` when no member could answer for the cluster, as in
/// a cluster not created yet).
#[derive(Debug, Clone)]
pub struct ClusterFacts<'a> {
    pub members: BTreeMap<String, ClusterMember<'a>>,
    pub manager: Option<(String, &'a HostFacts)>,
    /// Every machine of the inventory by address, to name a node that is no longer a
    /// member (and must leave).
    pub inventory: BTreeMap<String, IpAddr>,
}

/// A step of a cluster resource, run on one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStep {
    pub machine: String,
    pub step: Step,
    /// Keep what the step prints (trimmed) under this name for later steps of the same
    /// apply (a join token, a node ID): filled in where a later script has
    /// [`swarm_cluster::placeholder`], and never printed, logged or saved.
    pub produces: Option<String>,
}

/// A kind with one instance per cluster: its facts come from its members and one live
/// manager, and its steps each run on a named member, in order.
pub trait ClusterKind {
    /// The member machines, in a stable order.
    fn members(&self) -> Vec<String>;

    /// The machine names the specification refers to, with the field each is in
    /// (`managers`), so that an unknown one is reported where it is written.
    fn machine_references(&self) -> Vec<(&'static str, String)>;

    /// What to read from every member, in the per-host round trip.
    fn member_probes(&self, name: &str) -> Vec<Probe>;

    /// What to read from one live manager, in a second round trip.
    fn manager_probes(&self, name: &str) -> Vec<Probe>;

    /// The members that can answer for the cluster, best first, from the members' facts;
    /// the next is asked when one does not answer.
    fn manager_candidates(&self, facts: &ClusterFacts) -> Vec<String>;

    /// Desired against actual.
    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError>;

    /// The steps that carry out the change the same facts plan.
    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError>;
}

/// A kind with one instance per selected machine.
pub trait MachineKind {
    fn selector(&self) -> &Selector;

    /// Order among kinds on one machine: packages (0) before files and sysctls (1) before
    /// services (2); see `graph`.
    fn rank(&self) -> u8;

    /// What to read from a machine to plan this resource named `name`.
    fn probes(&self, name: &str) -> Vec<Probe>;

    /// Desired against actual.
    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError>;

    /// The commands that carry out `change`.
    fn steps(&self, name: &str, change: &ResourceChange) -> Vec<Step>;

    /// What this resource named `name` manages on each machine.
    fn claims(&self, name: &str) -> Vec<Claim>;

    /// What applying this resource writes on a machine, recorded there so that removing
    /// the resource from the configuration deletes it; `None` when it leaves nothing to undo.
    fn managed_entry(&self, _name: &str) -> Option<crate::managed::Entry> {
        None
    }

    /// What this resource needs on the machine that is not there (`owner postgres`), as
    /// the facts show. The plan accepts it only when the resource `depends_on` a package
    /// installed in the same apply (which may bring it); otherwise it is a plan error,
    /// rather than a step that is sure to fail.
    fn unmet(&self, _name: &str, _facts: &HostFacts) -> Vec<String> {
        Vec::new()
    }

    /// When the thing this resource runs last started (seconds since the epoch), for a
    /// resource that must restart when what it `depends_on` changes: a service. `None`
    /// when not running, or when a restart leaves no trace (a reload).
    fn started_at(&self, _name: &str, _facts: &HostFacts) -> Option<u64> {
        None
    }

    /// When what this resource manages was last modified (seconds since the epoch): a
    /// file. With [`MachineKind::started_at`], a service running on older inputs than its
    /// files is seen, whoever changed them and whenever.
    fn modified_at(&self, _name: &str, _facts: &HostFacts) -> Option<u64> {
        None
    }

    /// Whether a change to something this resource `depends_on` (on the same machine) calls
    /// for a change here too, given what its own `diff` decided: a running service restarts
    /// when its configuration changes (one being started needs no restart).
    fn restarts_when_dependencies_change(&self, _diff: &Diff) -> bool {
        false
    }
}

/// Decodes a specification with the kind's schema.
pub fn decode(kind: &str, node: &Node) -> Result<Spec, DeError> {
    fn d<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
        from_node(node)
    }
    Ok(match kind {
        package::KIND => Spec::Package(d(node)?),
        file::KIND => Spec::File(d(node)?),
        sysctl::KIND => Spec::Sysctl(d(node)?),
        service::KIND => Spec::Service(d(node)?),
        swarm_cluster::KIND => Spec::SwarmCluster(d(node)?),
        other => unreachable!("decode called with unknown kind {other}"),
    })
}

impl Spec {
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Package(_) => package::KIND,
            Spec::File(_) => file::KIND,
            Spec::Sysctl(_) => sysctl::KIND,
            Spec::Service(_) => service::KIND,
            Spec::SwarmCluster(_) => swarm_cluster::KIND,
        }
    }

    /// Where the resource's instances live, with the kind's behaviour there.
    pub fn placement(&self) -> Placement<'_> {
        match self {
            Spec::Package(s) => Placement::Machines(s),
            Spec::File(s) => Placement::Machines(s),
            Spec::Sysctl(s) => Placement::Machines(s),
            Spec::Service(s) => Placement::Machines(s),
            Spec::SwarmCluster(s) => Placement::Cluster(s),
        }
    }

    /// The machines selector of a per-machine resource.
    pub fn selector(&self) -> Option<&Selector> {
        match self.placement() {
            Placement::Machines(kind) => Some(kind.selector()),
            Placement::Cluster(_) => None,
        }
    }

    /// Checks what the schema cannot say (and reads `source:` files); `None` when an error
    /// was reported.
    pub fn check(self, ctx: &mut CheckContext) -> Option<Spec> {
        let before = ctx.errors.errors.len();
        let spec = match self {
            Spec::Package(s) => Spec::Package(s.check(ctx)),
            Spec::File(s) => Spec::File(s.check(ctx)),
            Spec::Sysctl(s) => Spec::Sysctl(s.check(ctx)),
            Spec::Service(s) => Spec::Service(s.check(ctx)),
            Spec::SwarmCluster(s) => Spec::SwarmCluster(s.check(ctx)),
        };
        (ctx.errors.errors.len() == before).then_some(spec)
    }
}
