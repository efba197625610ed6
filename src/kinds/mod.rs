//! Document kinds, one file each. A kind's file tells its whole story: what it declares,
//! what it reads from a host, how it decides, and what it runs.
//!
//! Per-machine kinds implement [`MachineKind`]: pure functions from (spec, facts) to a
//! [`Diff`], and from a planned change to shell [`Step`]s. Nothing here touches a host.

pub mod compose;
pub mod docker_daemon;
mod docker_values;
pub mod file;
pub mod firewall;
pub mod gluster_volume;
pub mod login_defs;
pub mod package;
pub mod service;
pub mod sshd;
pub mod swarm_cluster;
pub mod swarm_network;
pub mod swarm_secret;
pub mod swarm_service;
pub mod swarm_stack;
pub mod sysctl;
pub mod user;

/// `swarm/config`: told in [`swarm_secret`], with secrets.
pub mod swarm_config {
    pub use super::swarm_secret::{SwarmConfigSpec, CONFIG_KIND as KIND};
}

use serde::de::DeserializeOwned;

use crate::address::Address;
use crate::config::error::{ConfigError, ConfigErrors, Origin, SourceFile};
use crate::config::yaml::{from_node, DeError, Node};
use crate::config::{CheckContext, Selector};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

/// The registry: every kind corral knows besides `infrastructure/machine`, as
/// `Variant(module::Spec) => placement`. A new kind is one line here and its own file (whose
/// spec implements [`Kind`], and [`MachineKind`] or [`ClusterKind`]).
macro_rules! registry {
    ($($variant:ident($module:ident :: $spec:ident) => $placement:ident,)*) => {
        /// Kinds corral knows, besides `infrastructure/machine`.
        pub const KNOWN_KINDS: &[&str] = &[$($module::KIND),*];

        /// Each kind with the fields of its specification that may hold a secret.
        pub const SECRET_FIELDS: &[(&str, &[&[&str]])] =
            &[$(($module::KIND, <$module::$spec as Kind>::SECRET_FIELDS)),*];

        /// The decoded `specification` of a resource. (One per resource, not per instance:
        /// the size of the largest kind costs nothing worth a box.)
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        pub enum Spec {
            $($variant($module::$spec),)*
        }

        /// Decodes a specification with the kind's schema.
        pub fn decode(kind: &str, node: &Node) -> Result<Spec, DeError> {
            fn d<T: DeserializeOwned>(node: &Node) -> Result<T, DeError> {
                from_node(node)
            }
            Ok(match kind {
                $($module::KIND => Spec::$variant(d(node)?),)*
                other => unreachable!("decode called with unknown kind {other}"),
            })
        }

        /// `(kind, JSON Schema of its documents)` for every kind, in registry order.
        pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
            vec![$(($module::KIND, crate::schema::document::<$module::$spec>($module::KIND)),)*]
        }

        impl Spec {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Spec::$variant(_) => $module::KIND,)*
                }
            }

            /// Where the resource's instances live, with the kind's behaviour there.
            pub fn placement(&self) -> Placement<'_> {
                match self {
                    $(Spec::$variant(s) => Placement::$placement(s),)*
                }
            }

            /// Checks what the schema cannot say (and reads `source:` files); `None` when
            /// an error was reported.
            pub fn check(self, ctx: &mut CheckContext) -> Option<Spec> {
                let before = ctx.errors.errors.len();
                let spec = match self {
                    $(Spec::$variant(s) => Spec::$variant(Kind::check(s, ctx)),)*
                };
                (ctx.errors.errors.len() == before).then_some(spec)
            }

            /// Resolves what the specification names elsewhere in the configuration (its
            /// swarm, its networks, a volume it mounts); returns the resources it must come
            /// after because of those references.
            pub fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
                match self {
                    $(Spec::$variant(s) => s.link(links, ctx),)*
                }
            }
        }
    };
}

registry! {
    Package(package::PackageSpec) => Machines,
    File(file::FileSpec) => Machines,
    Sysctl(sysctl::SysctlSpec) => Machines,
    Service(service::ServiceSpec) => Machines,
    Sshd(sshd::SshdSpec) => Machines,
    User(user::UserSpec) => Machines,
    LoginDefs(login_defs::LoginDefsSpec) => Machines,
    Firewall(firewall::FirewallSpec) => Machines,
    DockerDaemon(docker_daemon::DockerDaemonSpec) => Machines,
    SwarmCluster(swarm_cluster::SwarmClusterSpec) => Cluster,
    SwarmNetwork(swarm_network::SwarmNetworkSpec) => Cluster,
    SwarmSecret(swarm_secret::SwarmSecretSpec) => Cluster,
    SwarmConfig(swarm_config::SwarmConfigSpec) => Cluster,
    SwarmService(swarm_service::SwarmServiceSpec) => Cluster,
    SwarmStack(swarm_stack::SwarmStackSpec) => Cluster,
    GlusterVolume(gluster_volume::GlusterVolumeSpec) => Cluster,
}

/// What every kind's specification does at load.
pub trait Kind: Sized {
    /// The fields that may hold a secret, as paths from the `specification` (`*` for any
    /// item of a sequence or value of a mapping): diagnostics never quote them.
    const SECRET_FIELDS: &'static [&'static [&'static str]] = &[];

    /// Checks what the schema cannot say, reporting errors at their field.
    fn check(self, ctx: &mut CheckContext) -> Self;

    /// Resolves references to other resources once every document is loaded (see
    /// [`Spec::link`]).
    fn link(&mut self, _links: &Links, _ctx: &mut LinkContext) -> Vec<Address> {
        Vec::new()
    }
}

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

        fn manager_candidates(&self, facts: &$crate::kinds::ClusterFacts) -> Vec<String> {
            $crate::kinds::swarm_cluster::live_managers(&self.$($scope).+.managers, facts)
        }

        fn facts_scope(&self) -> Option<$crate::address::Address> {
            Some(self.$($scope).+.address())
        }
    };
}
pub(crate) use on_a_swarm;

/// The label corral puts on the Docker objects it creates, with the project as value.
pub const MANAGED_LABEL: &str = "io.corral.managed";

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

    /// Deletes an orphaned object `name` of `project` (see [`orphan_delete_script`]):
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

/// What one resource may know about the others when it links (see [`Spec::link`]): a
/// snapshot of the whole configuration, taken once every document is loaded.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub project: String,
    /// Each `swarm/cluster` by name.
    pub swarms: BTreeMap<String, SwarmScope>,
    /// Each `swarm/network` by name, with the swarm it names (`cluster:`), if any, and its
    /// subnet.
    pub networks: BTreeMap<String, NetworkLink>,
    /// Each `docker/daemon` by name, with the machines it selects: a swarm forms after its
    /// members' daemons are configured (a restart during a join fails it).
    pub daemons: BTreeMap<String, Selector>,
    /// The mount point of each `gluster/volume` that mounts itself on machines, by volume.
    pub gluster_mounts: BTreeMap<String, String>,
    /// Resources written in the configuration that did not load (their own errors are
    /// reported): a reference to one is not reported again.
    pub broken: BTreeSet<Address>,
    /// The machines of the inventory, with their labels.
    pub machines: BTreeMap<String, BTreeMap<String, String>>,
    /// The machines of the inventory, with their addresses.
    pub machine_ips: BTreeMap<String, IpAddr>,
    /// Each machine that other machines' `ssh.proxy_jump` goes through, with those
    /// machines (see [`sshd::jumped_through`]).
    pub jumped_through: BTreeMap<String, Vec<String>>,
    /// Each `os/firewall` that only adds rules (sets no input policy): the one that sets
    /// `drop` comes after them, so that no allowed traffic is dropped in between.
    pub firewall_rules: Vec<String>,
    /// Each `swarm/secret` and `swarm/config` by class and name, with the swarm it names
    /// and its value.
    pub objects:
        BTreeMap<(swarm_secret::ObjectClass, String), (Option<String>, swarm_secret::ObjectValue)>,
    /// The Docker services of the stacks, with the stack of each: a `swarm/service` of the
    /// same name would fight the stack over it.
    pub stack_services: BTreeMap<String, String>,
    /// The services and stacks that use each secret and config, which a new version
    /// restarts.
    pub object_users: BTreeMap<(swarm_secret::ObjectClass, String), Vec<Address>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkLink {
    pub cluster: Option<String>,
    pub subnet: Option<String>,
}

impl Links {
    /// Whether `address` names a resource that is declared (loaded or not).
    pub fn declares(&self, address: &Address) -> bool {
        self.broken.contains(address)
            || match address.kind.as_str() {
                swarm_cluster::KIND => self.swarms.contains_key(&address.name),
                swarm_network::KIND => self.networks.contains_key(&address.name),
                _ => false,
            }
    }

    /// The swarm a resource placed on one belongs to: the one it names in `cluster:`, or
    /// the only one. Reports an error at `cluster` (or the specification) otherwise.
    pub fn swarm(&self, named: Option<&str>, ctx: &mut LinkContext) -> Option<SwarmScope> {
        match named {
            Some(name) => match self.swarms.get(name) {
                Some(scope) => Some(scope.clone()),
                None if self
                    .broken
                    .contains(&Address::new(swarm_cluster::KIND, name, None)) =>
                {
                    None
                }
                None => {
                    let known: Vec<&str> = self.swarms.keys().map(String::as_str).collect();
                    ctx.error(
                        &["cluster"],
                        format!("no `swarm/cluster` is named `{name}`"),
                        "unknown swarm",
                    )
                    .help = Some(if known.is_empty() {
                        "declare the swarm with a `swarm/cluster` document".into()
                    } else {
                        crate::config::error::suggestion(name, &known, "swarms")
                    });
                    None
                }
            },
            None => match self.swarms.len() {
                1 => self.swarms.values().next().cloned(),
                _ if self.broken.iter().any(|a| a.kind == swarm_cluster::KIND) => None,
                0 => {
                    ctx.error(
                        &[],
                        "this resource lives on a swarm, and no `swarm/cluster` is declared",
                        "no swarm",
                    )
                    .help = Some(
                        "declare the swarm with a `swarm/cluster` document (managers, workers)"
                            .into(),
                    );
                    None
                }
                _ => {
                    let known: Vec<&str> = self.swarms.keys().map(String::as_str).collect();
                    ctx.error(&[], format!("several swarms are declared ({}): say which one this resource lives on", known.join(", ")), "which swarm?")
                        .help = Some(format!("add `cluster: {}` to the specification", known[0]));
                    None
                }
            },
        }
    }
}

/// Where a resource reports what linking found wrong: at a field of its specification.
pub struct LinkContext<'a> {
    /// The resource's own name.
    pub name: String,
    pub file: Arc<SourceFile>,
    /// The `specification` node.
    pub spec: &'a Node,
    pub errors: &'a mut ConfigErrors,
}

impl LinkContext<'_> {
    /// Reports an error at a field of the specification (the specification itself for an
    /// empty path).
    pub fn error(
        &mut self,
        path: &[&str],
        message: impl Into<String>,
        label: &str,
    ) -> &mut ConfigError {
        let origin = Origin {
            file: self.file.clone(),
            span: crate::config::span_at(self.spec, path),
        };
        self.errors.push_at(&origin, message, label)
    }
}

/// One command script run on a host to carry out (part of) a change.
#[derive(Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does, for progress lines and errors; never holds a secret.
    pub description: String,
    /// POSIX shell, run with `sh -s`; every configuration value in it is quoted.
    pub script: String,
}

/// The script may hold values that are never shown (a secret's, a key): `Debug` gives its
/// length only.
impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("description", &self.description)
            .field("script", &format_args!("({} bytes)", self.script.len()))
            .finish()
    }
}

/// A step that fails with `error`: for steps worked out from facts that no longer allow
/// it (the plan was made from the same facts, so this is a bug or a changed host).
pub fn failing_step(what: &str, error: &FactError) -> Step {
    Step {
        description: what.to_owned(),
        script: format!(
            "echo {}\nexit 1\n",
            crate::shell::quote(&format!("corral: cannot {what}: {error}"))
        ),
    }
}

/// What a change that can cut corral's own access (sshd, the firewall, the connecting
/// user's keys) puts back by itself when a new login fails after it (see `apply::guard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGuard {
    /// The files the change may write: restored as they were, or removed if absent.
    pub paths: Vec<String>,
    /// Shell run once they are back (reload sshd, load the ruleset).
    pub reload: String,
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

impl ClusterMember<'_> {
    /// What the member says of its swarm membership, if it said it readably.
    pub fn swarm_info(&self) -> Option<crate::facts::swarm::SwarmInfo> {
        let key = crate::facts::swarm::INFO_KEY;
        crate::facts::swarm::parse_info(key, self.facts.get(key).ok()?).ok()
    }
}

impl ClusterFacts<'_> {
    /// The members whose kernel is known to lack the feature `support` picks (ESP, IPVS);
    /// a member that could not tell is not named.
    pub fn kernels_without(
        &self,
        support: impl Fn(&crate::facts::kernel::Features) -> crate::facts::kernel::Support,
    ) -> Vec<&str> {
        use crate::facts::kernel;
        self.members
            .iter()
            .filter(|(_, m)| {
                m.facts
                    .get(kernel::KEY)
                    .ok()
                    .and_then(|out| kernel::parse(out).ok())
                    .is_some_and(|f| support(&f) == kernel::Support::No)
            })
            .map(|(machine, _)| machine.as_str())
            .collect()
    }
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
    /// Runs even when an earlier step of the same resource failed (a cleanup: the join
    /// tokens' rotation); its own failure is added to the first one.
    pub always: bool,
}

/// A kind with one instance per cluster: its facts come from its members and one live
/// manager, and its steps each run on a named member, in order.
pub trait ClusterKind {
    /// The member machines, in a stable order.
    fn members(&self) -> Vec<String>;

    /// The machine names the specification refers to, with the field each is in
    /// (`managers`, or a dotted path such as `mount.machines`), so that an unknown one is
    /// reported where it is written.
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

    /// The resource whose manager round trip carries this one's facts: every resource on a
    /// swarm shares its `swarm/cluster`'s (one round trip for the whole swarm). `None`:
    /// its own.
    fn facts_scope(&self) -> Option<Address> {
        None
    }

    /// Objects this project created on the cluster that no resource declares any more
    /// (`declared`): planned for deletion, in the order given (what uses an object before
    /// the object). Asked of the resource that owns the facts scope.
    fn orphans(
        &self,
        _name: &str,
        _facts: &ClusterFacts,
        _declared: &BTreeSet<Address>,
    ) -> Result<Vec<Orphan>, FactError> {
        Ok(Vec::new())
    }

    /// Whether this resource's steps may run on a machine while other resources of
    /// sharing kinds run there too (services, which only ask a manager's API); others have
    /// their machines to themselves.
    fn shares_machines(&self) -> bool {
        false
    }

    /// What the members' facts say will not work as configured, though the change can be
    /// applied (an encrypted overlay on a kernel without ESP): plan warnings.
    fn warnings(&self, _name: &str, _facts: &ClusterFacts) -> Vec<String> {
        Vec::new()
    }
}

/// A cluster object of this project that the configuration no longer declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub address: Address,
    /// What is deleted, as the plan shows it (before → absent).
    pub attributes: Vec<AttrChange>,
    /// Why, when not because the configuration no longer declares it.
    pub reason: Option<String>,
}

/// Takes out of a cluster's facts, as soon as they are read, what must never be kept in a
/// facts file, an error or a log: the environment values of services (see
/// [`swarm_service::redact_inspect`]), for the services `config` declares. First, the
/// answers of questions asked together are kept as the probes they answer.
pub fn redact_cluster_facts(config: &crate::config::Config, facts: &mut HostFacts) {
    crate::facts::gluster::expand(facts);
    if let Some(out) = facts
        .probes
        .get_mut(crate::facts::swarm::SERVICE_INSPECT_KEY)
    {
        let mut declared: BTreeMap<String, &swarm_service::SwarmServiceSpec> = BTreeMap::new();
        for resource in &config.resources {
            match &resource.spec {
                Spec::SwarmService(s) => {
                    declared.insert(resource.address.name.clone(), s);
                }
                Spec::SwarmStack(s) => declared.extend(s.declared_services(&resource.address.name)),
                _ => {}
            }
        }
        out.output = swarm_service::redact_inspect(&out.output, &declared);
    }
    if let Some(out) = facts.probes.get_mut(swarm_secret::OBJECTS_KEY) {
        out.output = swarm_secret::redact(&out.output, &declared_objects(config));
    }
    if let Some(out) = facts.probes.get_mut(swarm_secret::ADOPTABLE_KEY) {
        out.output = swarm_secret::redact_adoptable(&out.output, &declared_objects(config));
    }
}

/// Every secret and config value the configuration declares, with what it is a value of.
pub fn declared_objects(
    config: &crate::config::Config,
) -> Vec<(swarm_secret::ObjectId, &swarm_secret::ObjectValue)> {
    use swarm_secret::{ObjectClass, ObjectId};
    let mut objects = Vec::new();
    for resource in &config.resources {
        let name = &resource.address.name;
        match &resource.spec {
            Spec::SwarmSecret(s) => objects.push((
                ObjectId::declared(ObjectClass::Secret, name),
                &s.object.value,
            )),
            Spec::SwarmConfig(s) => objects.push((
                ObjectId::declared(ObjectClass::Config, name),
                &s.object.value,
            )),
            Spec::SwarmStack(s) => objects.extend(s.own_objects(name)),
            _ => {}
        }
    }
    objects
}

/// The secret values the configuration compares on the hosts (services' `secret_env`,
/// secrets and configs), as one SHA-256 kept only in memory.
fn secret_values_digest(config: &crate::config::Config) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut any = false;
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    for resource in &config.resources {
        if let Spec::SwarmService(s) = &resource.spec {
            for (key, value) in &s.secret_env {
                any = true;
                for bytes in [
                    resource.address.name.as_bytes(),
                    key.as_bytes(),
                    value.value.bytes(),
                ] {
                    part(bytes);
                }
            }
        }
    }
    for (id, value) in declared_objects(config) {
        any = true;
        part(id.label.as_bytes());
        part(value.bytes());
    }
    for resource in &config.resources {
        if let Spec::SwarmStack(s) = &resource.spec {
            for value in s.sensitive_values() {
                any = true;
                part(resource.address.name.as_bytes());
                part(value.as_bytes());
            }
        }
    }
    any.then(|| hasher.finalize().into())
}

/// What a facts file keeps of the secret values its comparisons and versions were made
/// with: an argon2id hash (PHC string, salted per file), so that a facts file handed to a CI
/// job does not let anyone test guesses of a weak value at the speed of SHA-256. `none`
/// when the configuration has no secret value.
pub fn seal_secrets(config: &crate::config::Config) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let Some(digest) = secret_values_digest(config) else {
        return "none".into();
    };
    let salt =
        SaltString::encode_b64(&swarm_secret::random_bytes::<16>()).expect("16 bytes make a salt");
    argon2::Argon2::default()
        .hash_password(&digest, &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
}

/// Whether the configuration's secret values are those a facts file was sealed with.
pub fn same_secrets(config: &crate::config::Config, sealed: Option<&str>) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Some(sealed) = sealed else {
        return false;
    };
    match secret_values_digest(config) {
        None => sealed == "none",
        Some(digest) => PasswordHash::new(sealed).is_ok_and(|hash| {
            argon2::Argon2::default()
                .verify_password(&digest, &hash)
                .is_ok()
        }),
    }
}

/// Makes the secret comparisons in a cluster's facts unknown (they were made with other
/// values): the plan then updates those variables rather than say they match, and cannot
/// name the versions of secrets and configs.
pub fn forget_secret_comparisons(facts: &mut HostFacts) {
    if let Some(out) = facts
        .probes
        .get_mut(crate::facts::swarm::SERVICE_INSPECT_KEY)
    {
        out.output = swarm_service::forget_comparisons(&out.output);
    }
    if let Some(out) = facts.probes.get_mut(swarm_secret::OBJECTS_KEY) {
        out.output = swarm_secret::forget_versions(&out.output);
    }
}

/// The access guard of a deletion, for the kinds whose changes can cut corral's own access:
/// removing an sshd drop-in, a firewall resource's rules or a sudoers drop-in can, as much
/// as writing them.
pub fn deletion_guard(change: &ResourceChange) -> Option<AccessGuard> {
    let name = &change.address.name;
    match change.address.kind.as_str() {
        sshd::KIND => Some(AccessGuard {
            paths: vec![sshd::drop_in(name)],
            reload: sshd::RELOAD.into(),
        }),
        firewall::KIND => Some(AccessGuard {
            paths: vec![firewall::rules_path(name), firewall::MAIN_PATH.into()],
            reload: firewall::RELOAD.into(),
        }),
        user::KIND => match change.attribute("path").map(|a| &a.before) {
            Some(crate::plan::AttrValue::Scalar(path)) => Some(AccessGuard {
                paths: vec![path.clone()],
                reload: String::new(),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a deletion waits until the rest of the apply is done: a network no longer
/// declared may still be used by a service that this apply moves off it.
pub fn deleted_last(address: &Address) -> bool {
    [swarm_network::KIND, swarm_secret::KIND, swarm_config::KIND].contains(&address.kind.as_str())
}

/// The script that deletes an orphaned cluster object, run on a manager: it refuses, at
/// apply time, an object that is no longer `project`'s. `None` for kinds that are not
/// cluster objects.
pub fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
    match address.kind.as_str() {
        swarm_service::KIND => Some(DockerObject::Service.delete_script(&address.name, project)),
        swarm_network::KIND => Some(DockerObject::Network.delete_script(&address.name, project)),
        swarm_stack::KIND => Some(swarm_stack::delete_script(&address.name, project)),
        swarm_secret::KIND => Some(swarm_secret::delete_script(
            swarm_secret::ObjectClass::Secret,
            address,
            project,
        )),
        swarm_config::KIND => Some(swarm_secret::delete_script(
            swarm_secret::ObjectClass::Config,
            address,
            project,
        )),
        _ => None,
    }
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

    /// The commands that carry out `change`, planned from `facts`.
    fn steps(&self, name: &str, change: &ResourceChange, facts: &HostFacts) -> Vec<Step>;

    /// How the instances of a resource of this kind roll when its `lifecycle.rolling` does
    /// not say: `Some` for a change that restarts something (a Docker daemon restart, which
    /// a swarm manager's quorum survives only one at a time; an sshd or firewall reload; a
    /// package upgrade restarting services), `None` for all at once. See [`crate::rolling`].
    fn rolling(&self) -> Option<crate::rolling::Rolling> {
        None
    }

    /// What this resource named `name` manages on each machine.
    fn claims(&self, name: &str) -> Vec<Claim>;

    /// What the facts say will go wrong with a change of this resource, though it can be
    /// applied (a firewall that shuts out corral's own address, an sshd setting that a file
    /// read first overrides): plan warnings, asked only of instances that change.
    fn warnings(&self, _name: &str, _facts: &HostFacts) -> Vec<String> {
        Vec::new()
    }

    /// For a change that can cut corral's own access: what the host puts back by itself
    /// unless a new login works after the change.
    fn access_guard(&self, _name: &str) -> Option<AccessGuard> {
        None
    }

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

    /// Whether that restart is a reload (`on_change: reload`) for a change of `diff`, for
    /// the plan's words.
    fn reloads_instead_of_restarting(&self, _diff: &Diff) -> bool {
        false
    }
}

impl Spec {
    /// The machines selector of a per-machine resource.
    pub fn selector(&self) -> Option<&Selector> {
        match self.placement() {
            Placement::Machines(kind) => Some(kind.selector()),
            Placement::Cluster(_) => None,
        }
    }
}
