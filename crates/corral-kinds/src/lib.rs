//! Document kinds, one file (or folder) each. A kind's file tells its whole story: what it
//! declares, what it reads from a host, how it decides, and what it runs.
//!
//! Per-machine kinds implement [`MachineKind`]: pure functions from (spec, facts) to a
//! [`Diff`], and from a planned change to shell [`Step`]s. Nothing here touches a host.
//!
//! What central code asks of a kind (what it links to, how its deletion is guarded and
//! run, its secrets, its warnings) is a method of [`Kind`], [`MachineKind`] or
//! [`ClusterKind`] with a default, which the registry dispatches: no code outside this
//! folder names a kind (`tests/kinds_in_their_files.rs` counts).

// The shared data below the kinds (`corral-core`), re-exported so that a path reads the
// same here as in the engine: `crate::facts::HostFacts`.
pub use corral_core::{
    address, base, duration, exit, facts, output_file, plan, random, rolling, shell,
};

pub mod declared;
pub mod docker_daemon;
pub mod firewall;
pub mod gluster_volume;
pub mod login_defs;
pub mod os_file;
pub mod package;
pub mod service;
pub mod sshd;
pub mod swarm_cluster;
pub mod swarm_config;
pub mod swarm_network;
pub mod swarm_secret;
pub mod swarm_service;
pub mod swarm_stack;
pub mod sysctl;
pub mod user;

// What kinds share, or read for one of them.
pub mod compose;
mod docker_values;
pub mod file;
mod links;
mod on_swarm;
pub mod units;
pub use links::{LinkContext, Links, NetworkLink};
pub(crate) use on_swarm::on_a_swarm;
pub use on_swarm::{
    adopted_attribute, adopted_reason, DockerObject, SwarmScope, ADOPTED, MANAGED_LABEL,
};

use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::marker::PhantomData;

use crate::address::Address;
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::base::yaml::{from_node, DeError, Node};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{AttrChange, Diff, ResourceChange};

/// The registry: every kind corral knows besides `infrastructure/machine`, as
/// `Variant(module::Spec) => placement`. A new kind is one line here and its own file (whose
/// spec implements [`Kind`], and [`MachineKind`] or [`ClusterKind`]); the registry
/// dispatches to it what central code asks of every kind.
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
            vec![$(($module::KIND, crate::base::envelope::document::<$module::$spec>($module::KIND)),)*]
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

            /// Tells the others, before they link, what this resource at `address` is.
            pub fn declare(&self, address: &Address, links: &mut Links) {
                match self {
                    $(Spec::$variant(s) => s.declare(address, links),)*
                }
            }

            /// The secret values this resource named `name` compares on the hosts.
            pub fn secret_values<'a>(&'a self, name: &'a str) -> Vec<SecretValue<'a>> {
                match self {
                    $(Spec::$variant(s) => s.secret_values(name),)*
                }
            }
        }

        /// Every kind's [`Kind`] functions by `kind:` string, in registry order.
        const LOGIC: &[(&str, &dyn Logic)] =
            &[$(($module::KIND, &PhantomData::<$module::$spec>)),*];
    };
}

registry! {
    Package(package::PackageSpec) => Machines,
    File(os_file::FileSpec) => Machines,
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

    // What central code asks of a kind. Every default is "nothing special", so that a kind
    // writes only what it does differently, in its own file; the registry dispatches.

    /// Whether a deletion waits until the rest of the apply is done: a network no longer
    /// declared may still be used by a service that this apply moves off it.
    const DELETED_LAST: bool = false;

    /// Whether a file recorded for a resource of this kind may be one corral found and
    /// adopted; otherwise the file has corral's own name (a sysctl file) or is a unit file,
    /// which corral always treated as its own (records of corral 0.1 do not say).
    const ADOPTS_FILES: bool = false;

    /// Whether a change of a resource of this kind may bring what another resource on the
    /// same machine needs and does not find (see [`MachineKind::unmet`]): a plan accepts
    /// the need when that resource `depends_on` one of this kind that changes.
    const MAY_PROVIDE: bool = false;

    /// Tells [`Links`] what this resource at `address` is, for the others' [`Kind::link`]
    /// (a swarm's members, a network's subnet, who uses a secret).
    fn declare(&self, _address: &Address, _links: &mut Links) {}

    /// Tells [`Links`] what this kind reads from the whole configuration, once, before any
    /// resource declares itself.
    fn declare_config(_config: &dyn declared::Declared, _links: &mut Links) {}

    /// What the configuration alone says will not work as meant, though it loads: warnings
    /// that `validate` and `plan` show, by resource.
    fn config_warnings(_config: &dyn declared::Declared) -> Vec<(Address, String)> {
        Vec::new()
    }

    /// Warnings of the same kind that only a plan shows.
    fn plan_warnings(_config: &dyn declared::Declared) -> Vec<(Address, String)> {
        Vec::new()
    }

    /// The secret values this resource named `name` compares on the hosts, for the digest
    /// facts files are sealed with (see [`seal_secrets`]).
    fn secret_values<'a>(&'a self, _name: &'a str) -> Vec<SecretValue<'a>> {
        Vec::new()
    }

    /// Takes out of a cluster's facts, as soon as they are read, what of this kind must
    /// never be kept in a facts file, an error or a log (see [`redact_cluster_facts`]).
    fn redact_cluster_facts(_config: &dyn declared::Declared, _facts: &mut HostFacts) {}

    /// Makes this kind's secret comparisons in a cluster's facts unknown (see
    /// [`forget_secret_comparisons`]).
    fn forget_secret_comparisons(_facts: &mut HostFacts) {}

    /// The access guard of a deletion that can cut corral's own access (see
    /// [`deletion_guard`]).
    fn deletion_guard(_change: &ResourceChange) -> Option<AccessGuard> {
        None
    }

    /// Why deleting what `change` removes would cut off the user corral connects as, if
    /// it would: a plan error instead of the deletion.
    fn deletion_lockout(_change: &ResourceChange, _facts: &HostFacts) -> Option<String> {
        None
    }

    /// The script that deletes an orphaned cluster object, run on a manager (see
    /// [`orphan_delete_script`]).
    fn orphan_delete_script(_address: &Address, _project: &str) -> Option<String> {
        None
    }

    /// Shell run after a file recorded for a resource of this kind is deleted, as the
    /// resource leaves the configuration (sshd reloads without its drop-in).
    fn after_file_deleted() -> String {
        String::new()
    }

    /// What the plan adds to why such a resource's record is deleted (`; live values
    /// stay …`).
    fn deletion_note() -> Option<&'static str> {
        None
    }

    /// Probes every machine answers, whether or not a resource of this kind is declared on
    /// it (who corral logs in as, which a deletion's plan needs).
    fn every_host_probes() -> Vec<Probe> {
        Vec::new()
    }
}

/// A secret value the configuration compares on the hosts: its parts, each hashed into the
/// digest facts files are sealed with ([`seal_secrets`]).
#[derive(Debug)]
pub struct SecretValue<'a> {
    /// Values are hashed by pass, then in the configuration's order (the order sealed facts
    /// files were made with): 0 services' variables, 1 secrets' and configs' values, 2 the
    /// other values of stacks.
    pub pass: u8,
    pub parts: Vec<Cow<'a, [u8]>>,
}

/// [`Kind`]'s functions without a value, as a trait object: dispatched by `kind:` string
/// through the registry's `LOGIC`.
trait Logic {
    fn deleted_last(&self) -> bool;
    fn adopts_files(&self) -> bool;
    fn may_provide(&self) -> bool;
    fn declare_config(&self, config: &dyn declared::Declared, links: &mut Links);
    fn config_warnings(&self, config: &dyn declared::Declared) -> Vec<(Address, String)>;
    fn plan_warnings(&self, config: &dyn declared::Declared) -> Vec<(Address, String)>;
    fn redact_cluster_facts(&self, config: &dyn declared::Declared, facts: &mut HostFacts);
    fn forget_secret_comparisons(&self, facts: &mut HostFacts);
    fn deletion_guard(&self, change: &ResourceChange) -> Option<AccessGuard>;
    fn deletion_lockout(&self, change: &ResourceChange, facts: &HostFacts) -> Option<String>;
    fn orphan_delete_script(&self, address: &Address, project: &str) -> Option<String>;
    fn after_file_deleted(&self) -> String;
    fn deletion_note(&self) -> Option<&'static str>;
    fn every_host_probes(&self) -> Vec<Probe>;
}

impl<K: Kind> Logic for PhantomData<K> {
    fn deleted_last(&self) -> bool {
        K::DELETED_LAST
    }
    fn adopts_files(&self) -> bool {
        K::ADOPTS_FILES
    }
    fn may_provide(&self) -> bool {
        K::MAY_PROVIDE
    }
    fn declare_config(&self, config: &dyn declared::Declared, links: &mut Links) {
        K::declare_config(config, links)
    }
    fn config_warnings(&self, config: &dyn declared::Declared) -> Vec<(Address, String)> {
        K::config_warnings(config)
    }
    fn plan_warnings(&self, config: &dyn declared::Declared) -> Vec<(Address, String)> {
        K::plan_warnings(config)
    }
    fn redact_cluster_facts(&self, config: &dyn declared::Declared, facts: &mut HostFacts) {
        K::redact_cluster_facts(config, facts)
    }
    fn forget_secret_comparisons(&self, facts: &mut HostFacts) {
        K::forget_secret_comparisons(facts)
    }
    fn deletion_guard(&self, change: &ResourceChange) -> Option<AccessGuard> {
        K::deletion_guard(change)
    }
    fn deletion_lockout(&self, change: &ResourceChange, facts: &HostFacts) -> Option<String> {
        K::deletion_lockout(change, facts)
    }
    fn orphan_delete_script(&self, address: &Address, project: &str) -> Option<String> {
        K::orphan_delete_script(address, project)
    }
    fn after_file_deleted(&self) -> String {
        K::after_file_deleted()
    }
    fn deletion_note(&self) -> Option<&'static str> {
        K::deletion_note()
    }
    fn every_host_probes(&self) -> Vec<Probe> {
        K::every_host_probes()
    }
}

/// The functions of the kind named `kind`, if corral knows it.
fn logic(kind: &str) -> Option<&'static dyn Logic> {
    LOGIC.iter().find(|(k, _)| *k == kind).map(|(_, l)| *l)
}

/// Every kind's functions, in registry order.
fn every_logic() -> impl Iterator<Item = &'static dyn Logic> {
    LOGIC.iter().map(|(_, l)| *l)
}

/// Fills the [`Links`] every resource links with: what each kind reads from the whole
/// configuration, then what each resource declares, in configuration order.
pub fn declare_all(config: &dyn declared::Declared, links: &mut Links) {
    for logic in every_logic() {
        logic.declare_config(config, links);
    }
    for (address, spec) in config.resources() {
        spec.declare(address, links);
    }
}

/// What the configuration alone says will not work as meant (see
/// [`Kind::config_warnings`]), kind by kind.
pub fn config_warnings(config: &dyn declared::Declared) -> Vec<(Address, String)> {
    every_logic()
        .flat_map(|l| l.config_warnings(config))
        .collect()
}

/// The warnings only a plan shows of the configuration (see [`Kind::plan_warnings`]).
pub fn plan_warnings(config: &dyn declared::Declared) -> Vec<(Address, String)> {
    every_logic()
        .flat_map(|l| l.plan_warnings(config))
        .collect()
}

/// Why deleting what `change` removes would cut off corral's own login, if it would (see
/// [`Kind::deletion_lockout`]).
pub fn deletion_lockout(change: &ResourceChange, facts: &HostFacts) -> Option<String> {
    logic(&change.address.kind)?.deletion_lockout(change, facts)
}

/// Shell run after a recorded file of a resource of `kind` is deleted.
pub fn after_file_deleted(kind: &str) -> String {
    logic(kind)
        .map(|l| l.after_file_deleted())
        .unwrap_or_default()
}

/// What the plan adds to why a resource of `kind` is deleted from a host's record.
pub fn deletion_note(kind: &str) -> Option<&'static str> {
    logic(kind)?.deletion_note()
}

/// The probes every machine answers, kind by kind (see [`Kind::every_host_probes`]).
pub fn every_host_probes() -> Vec<Probe> {
    every_logic().flat_map(|l| l.every_host_probes()).collect()
}

/// Whether a change of a resource of `kind` may bring what another needs (see
/// [`Kind::MAY_PROVIDE`]).
pub fn may_provide(kind: &str) -> bool {
    logic(kind).is_some_and(|l| l.may_provide())
}

/// Whether a recorded file of a resource of `kind` may have been adopted (see
/// [`Kind::ADOPTS_FILES`]).
pub fn adopts_files(kind: &str) -> bool {
    logic(kind).is_some_and(|l| l.adopts_files())
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
    /// [`crate::plan::placeholder`], and never printed, logged or saved.
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

    /// Whether the members of this cluster, when one answers for it, hold the project's
    /// records too (a swarm's do: its objects are the project's; see `project::held`).
    fn members_hold_records(&self) -> bool {
        false
    }

    /// What a rolling change of one of its machines must keep healthy (see
    /// `apply::rolling`); `None` for nothing.
    fn rolling_keeps(&self) -> Option<Keeps> {
        None
    }
}

/// What a rolling change of one machine keeps healthy, of a cluster it is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keeps {
    /// A swarm, whose majority of `managers` must stay reachable while one of its
    /// `members` restarts.
    Managers {
        members: Vec<String>,
        managers: Vec<String>,
    },
    /// A replicated volume with bricks on these machines (in brick order, each once), which
    /// must have nothing left to heal before one restarts.
    Bricks(Vec<String>),
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
/// facts file, an error or a log (services' environment values), for what `config`
/// declares: each kind its own (see [`Kind::redact_cluster_facts`]).
pub fn redact_cluster_facts(config: &dyn declared::Declared, facts: &mut HostFacts) {
    for logic in every_logic() {
        logic.redact_cluster_facts(config, facts);
    }
}

/// The secret values the configuration compares on the hosts (see [`SecretValue`]), as
/// one SHA-256 kept only in memory.
fn secret_values_digest(config: &dyn declared::Declared) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut values: Vec<SecretValue> = config
        .resources()
        .flat_map(|(address, spec)| spec.secret_values(&address.name))
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by_key(|v| v.pass);
    let mut hasher = Sha256::new();
    for part in values.iter().flat_map(|v| &v.parts) {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Some(hasher.finalize().into())
}

/// What a facts file keeps of the secret values its comparisons and versions were made
/// with: an argon2id hash (PHC string, salted per file), so that a facts file handed to a CI
/// job does not let anyone test guesses of a weak value at the speed of SHA-256. `none`
/// when the configuration has no secret value.
pub fn seal_secrets(config: &dyn declared::Declared) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let Some(digest) = secret_values_digest(config) else {
        return "none".into();
    };
    let salt = SaltString::encode_b64(&crate::random::bytes::<16>()).expect("16 bytes make a salt");
    argon2::Argon2::default()
        .hash_password(&digest, &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
}

/// Whether the configuration's secret values are those a facts file was sealed with.
pub fn same_secrets(config: &dyn declared::Declared, sealed: Option<&str>) -> bool {
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
    for logic in every_logic() {
        logic.forget_secret_comparisons(facts);
    }
}

/// The access guard of a deletion, for the kinds whose changes can cut corral's own access:
/// removing an sshd drop-in, a firewall resource's rules or a sudoers drop-in can, as much
/// as writing them.
pub fn deletion_guard(change: &ResourceChange) -> Option<AccessGuard> {
    logic(&change.address.kind)?.deletion_guard(change)
}

/// Whether a deletion waits until the rest of the apply is done (see
/// [`Kind::DELETED_LAST`]).
pub fn deleted_last(address: &Address) -> bool {
    logic(&address.kind).is_some_and(|l| l.deleted_last())
}

/// The script that deletes an orphaned cluster object, run on a manager: it refuses, at
/// apply time, an object that is no longer `project`'s. `None` for kinds that are not
/// cluster objects.
pub fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
    logic(&address.kind)?.orphan_delete_script(address, project)
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
    fn rolling(&self) -> Option<crate::base::envelope::Rolling> {
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
    fn managed_entry(&self, _name: &str) -> Option<crate::facts::record::Entry> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered kind is dispatched to its own functions, and an unknown kind to
    /// none: what a kind does not say is the default.
    #[test]
    fn each_kind_answers_for_itself() {
        for kind in KNOWN_KINDS {
            assert!(logic(kind).is_some(), "{kind}");
        }
        assert!(logic("os/nothing").is_none());
        let last: Vec<&str> = KNOWN_KINDS
            .iter()
            .copied()
            .filter(|k| deleted_last(&Address::new(k, "x", None)))
            .collect();
        assert_eq!(last, ["swarm/network", "swarm/secret", "swarm/config"]);
        assert!(adopts_files("os/file") && !adopts_files("os/sysctl"));
        assert_eq!(after_file_deleted("os/sysctl"), "");
        assert!(after_file_deleted("os/sshd").ends_with("sshd\n"));
        assert!(orphan_delete_script(&Address::new("swarm/stack", "web", None), "p").is_some());
        assert!(orphan_delete_script(&Address::new("os/file", "web", None), "p").is_none());
    }
}
