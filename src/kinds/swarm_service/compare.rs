//! `swarm/service`: a service of a swarm.
//!
//! One instance per service, read on a live manager of its swarm (in the swarm's one manager
//! round trip: `docker service inspect` of every service, `docker network inspect` of the
//! overlays to name the networks a service is attached to by ID).
//!
//! The comparison is between what is declared and Docker's spec with what Docker fills in
//! normalised away, so that a service nobody touched never shows a change (moby#31115):
//! - an image without a digest matches the live image with or without the `@sha256:…` the
//!   CLI pins when it can reach the registry; a familiar name matches its long form
//!   (`busybox` is `docker.io/library/busybox:latest`);
//! - environment, constraints, ports and networks compare as sets and mounts by target
//!   (`--env-add` reorders `Env`; networks are attached by ID);
//! - a missing `UpdateConfig` or zero-valued fields in it are swarmkit's defaults
//!   (parallelism 1, failure action pause, order stop-first, monitor 5 s, no delay);
//! - what corral does not declare is never compared: `RestartPolicy` and
//!   `StopGracePeriod` (which the CLI fills in on the first update), `RollbackConfig`,
//!   `Resources`, `Isolation`, `Init`, `DNSConfig`, `ForceUpdate`, the endpoint mode, the
//!   entrypoint (`ContainerSpec.Command`), and for now secrets and configs (their own
//!   issue: `swarm/secret`, `swarm/config`);
//! - corral's own label `io.corral.managed` is added at creation and never shown.
//!
//! A change is made in place with `docker service update` and its add/remove flags; a mode
//! change is a replace (swarmkit refuses it: "service mode change is not allowed"). Every
//! create or update then waits, bounded, until the service's tasks run, and fails with the
//! tasks' errors when they do not, or when Docker paused or rolled back the update: a
//! service whose update "converged" with no running task is a failed resource
//! (ansible#57951); an update Docker left paused is a plan warning. A service corral did
//! not create (no `io.corral.managed` label of this project) is used as it is when it
//! matches, and is a plan error when it does not.
//!
//! Secret environment values (`secret_env`) are read at load from the operator's
//! environment or a file, as `swarm/secret` reads its value (never written in the
//! configuration, nor in its digest), compared but never shown: the plan says
//! `(sensitive)`, step descriptions name keys only, diagnostics mask the whole mapping (a
//! misspelt `secret_envs:` too), and `Debug` of the specification shows no value. They
//! reach Docker in the CLI's environment, never its command line (see [`cli_env`]). A
//! variable the configuration no longer declares is removed without showing its value
//! either: it may have been a secret one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kinds::swarm_secret::{self, ObjectClass, ObjectId, ObjectValue, Purpose};
use crate::kinds::{
    ClusterFacts, ClusterKind, ClusterStep, DockerObject, Kind, LinkContext, Links, Orphan, Step,
    SwarmScope, MANAGED_LABEL,
};
use crate::address::Address;
use crate::config::error::{suggestion, ConfigError, Origin};
use crate::config::yaml::{Node, Span, Value};
use crate::config::{CheckContext, Exposure};
use crate::facts::swarm::{self, ServiceMode, SwarmService, UpdateConfig};
use crate::facts::{kernel, FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "swarm/service";

/// The attribute a service that does not run as declared shows (never a spec field).
pub const TASKS_ATTRIBUTE: &str = "tasks";

/// How long a create or update may take to get its tasks running, before the rolling
/// update's own delays (see [`SwarmServiceSpec::wait_budget`]).
const BASE_WAIT_SECONDS: u64 = 120;

/// `swarm/service` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmServiceSpec {
    /// The `swarm/cluster` the service runs on; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The image: `NAME[:TAG][@sha256:DIGEST]`. Without a digest, whatever digest Docker
    /// pinned at creation is not a difference.
    pub image: String,
    /// The arguments after the image (Docker's `Args`, as in `docker service create IMAGE
    /// ARG…`); the image's own command when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `replicated` (the default) or `global` (one task on every eligible node). Changing
    /// it replaces the service.
    #[serde(default)]
    pub mode: Mode,
    /// Tasks of a replicated service; 1 when not set. Not with `mode: global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Placement constraints, `node.labels.KEY==VALUE` or `!=` (compared as a set).
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Placement preferences, in order, as the CLI writes them: `spread=node.labels.zone`.
    #[serde(default)]
    pub placement_preferences: Vec<String>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<Port>,
    /// Environment variables, shown in plans.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secret, each `{ from_env: VARIABLE }` or `{
    /// source: FILE }` (never written here): compared, never shown, and given to Docker
    /// through the environment of its CLI, never on a command line.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretEnv>,
    /// Bind mounts and named volumes (compared by target).
    #[serde(default)]
    pub mounts: Vec<ServiceMount>,
    /// Overlay networks (`swarm/network` names).
    #[serde(default)]
    pub networks: Vec<String>,
    /// Secrets given to the tasks as files, by `swarm/secret` name; the current version of
    /// each is filled in (a new value is a new object, swapped in with one rolling update).
    #[serde(default)]
    pub secrets: Vec<ObjectRef>,
    /// Configs given to the tasks as files, by `swarm/config` name (as `secrets`).
    #[serde(default)]
    pub configs: Vec<ObjectRef>,
    /// How tasks are replaced when the service changes.
    #[serde(default)]
    pub update: UpdatePolicy,
    /// Labels of the service (corral adds its own `io.corral.managed`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The swarm, filled in at load.
    #[serde(skip)]
    #[schemars(skip)]
    pub scope: SwarmScope,
    /// The values of the secrets and configs it uses, filled in at load: an apply names
    /// their versions with a key of its own on a swarm that has none yet.
    #[serde(skip)]
    #[schemars(skip)]
    pub objects: BTreeMap<(ObjectClass, String), ObjectValue>,
}

/// A `secret_env` variable: where its value comes from, as a `swarm/secret`'s does (the
/// operator's environment, or a file), never the configuration itself (which lands in git
/// and in the configuration's digest). `Debug` never shows the value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SecretEnv {
    /// A file holding the value, relative to this file (it may be outside the
    /// configuration's directories: it is never shown). One line break at its end is not
    /// part of the value (editors add one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An environment variable of the operator holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// Refused: a value written here (`DB_PASS: hunter2`).
    #[serde(skip)]
    #[schemars(skip)]
    pub inline: Option<swarm_secret::Inline>,
    /// The value, read at load (UTF-8 without NUL, checked there).
    #[serde(skip)]
    #[schemars(skip)]
    pub value: ObjectValue,
}

impl SecretEnv {
    /// The value read at load.
    pub fn text(&self) -> &str {
        std::str::from_utf8(self.value.bytes()).unwrap_or_default()
    }

    /// A variable holding `value`, as if read at load (for tests and callers that have
    /// the value already).
    pub fn with_value(value: &str) -> Self {
        SecretEnv {
            value: ObjectValue::new(value.as_bytes().to_vec()),
            ..SecretEnv::default()
        }
    }
}

/// `{ from_env: VAR }` or `{ source: FILE }`; any scalar is taken (and refused at load, with
/// the two forms as the hint) rather than failing as a type error that says less.
impl<'de> Deserialize<'de> for SecretEnv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Place {
            #[serde(default)]
            source: Option<String>,
            #[serde(default)]
            from_env: Option<String>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretEnv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`{ from_env: VARIABLE }` or `{ source: FILE }`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretEnv, A::Error> {
                let place = Place::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SecretEnv {
                    source: place.source,
                    from_env: place.from_env,
                    ..SecretEnv::default()
                })
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretEnv, E> {
                Ok(inline())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretEnv, E> {
                Ok(inline())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretEnv, E> {
                Ok(inline())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretEnv, E> {
                Ok(inline())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretEnv, E> {
                Ok(inline())
            }
        }
        /// The value is dropped here: nothing after the load needs it, and nothing keeps it.
        fn inline() -> SecretEnv {
            SecretEnv {
                inline: Some(swarm_secret::Inline::default()),
                ..SecretEnv::default()
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A secret or config given to a service: the object's name in the configuration, and the
/// file it becomes in the container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// The `swarm/secret` or `swarm/config` name (not a versioned object's name).
    pub source: String,
    /// The file in the container: for a secret a name under `/run/secrets/` or an absolute
    /// path, the secret's name by default; for a config an absolute path, `/NAME` by
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Where a service's tasks run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A number of tasks (`replicas`) spread over the eligible nodes.
    #[default]
    Replicated,
    /// One task on every eligible node.
    Global,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Replicated => "replicated",
            Mode::Global => "global",
        }
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The port on the nodes (1-65535).
    pub published: u16,
    /// The port in the container (1-65535).
    pub target: u16,
    /// `ingress` (the default: the routing mesh, on every node) or `host` (only on nodes
    /// running a task).
    #[serde(default)]
    pub mode: PublishMode,
    /// `tcp` (the default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    #[default]
    Ingress,
    Host,
}

impl PublishMode {
    fn word(self) -> &'static str {
        match self {
            PublishMode::Ingress => "ingress",
            PublishMode::Host => "host",
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    fn word(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A mount of the service's containers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceMount {
    /// `bind` (a directory of the node) or `volume` (a named volume).
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// An absolute path on the node (bind) or a volume name (volume).
    pub source: String,
    /// An absolute path in the container.
    pub target: String,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
}

impl MountKind {
    fn word(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
        }
    }
}

/// `update:` of a service; what is not set is Docker's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// Tasks replaced at once (1 when not set; 0 replaces all at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Time between batches, e.g. `10s` (none when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DockerDuration>,
    /// `stop-first` (the default) or `start-first`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<UpdateOrder>,
    /// What a failed update does: `pause` (the default), `continue` or `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<FailureAction>,
    /// How long a new task is watched for failure, e.g. `5s` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<DockerDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

impl UpdateOrder {
    fn word(self) -> &'static str {
        match self {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

impl FailureAction {
    fn word(self) -> &'static str {
        match self {
            FailureAction::Pause => "pause",
            FailureAction::Continue => "continue",
            FailureAction::Rollback => "rollback",
        }
    }
}

/// A duration as Docker's flags take them (Go's `time.ParseDuration` without fractions):
/// numbers with units `ns`, `us`, `ms`, `s`, `m`, `h`, as in `10s`, `1m30s`, `500ms`; `0`
/// alone is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerDuration(Duration);

impl DockerDuration {
    /// Parses `10s`, `1m30s`, `500ms`, `0`.
    pub fn parse(text: &str) -> Result<Self, String> {
        crate::duration::parse_docker_flag(text)
            .map(DockerDuration)
            .ok_or_else(|| {
                format!("`{text}` is not a duration: write a number with a unit (ns, us, ms, s, m, h), as in `10s` or `1m30s`")
            })
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for DockerDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::duration::format_go(self.0))
    }
}

impl Serialize for DockerDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DockerDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DockerDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for DockerDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DockerDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: numbers with units ns, us, ms, s, m, h, as in \"10s\" or \"1m30s\".",
            "type": "string",
            "pattern": "^(0|([0-9]+(ns|us|ms|s|m|h))+)$"
        })
    }
}

// ---------------------------------------------------------------------------------------
// Checks at load

impl Kind for SwarmServiceSpec {
    /// The whole `secret_env` mapping, keys too: naming the field (not only its values)
    /// makes a misspelt `secret_envs:` masked as well, where the unknown-field error quotes
    /// the lines under it.
    const SECRET_FIELDS: &'static [&'static [&'static str]] = &[&["secret_env"]];

    fn check(mut self, ctx: &mut CheckContext) -> Self {
        if let Err(why) = check_image(&self.image) {
            ctx.error(
                &["image"],
                format!("`{}` is not an image reference: {why}", self.image),
                "not an image",
            )
            .help =
                Some("write NAME[:TAG][@sha256:DIGEST], e.g. `registry.example/app:1.4`".into());
        }
        for (index, arg) in self.command.iter().enumerate() {
            if arg.contains('\0') {
                item_error(
                    ctx,
                    "command",
                    index,
                    None,
                    "an argument cannot hold a NUL byte",
                    "here",
                    None,
                );
            }
        }
        if self.mode == Mode::Global && self.replicas.is_some() {
            ctx.error(
                &["replicas"],
                "`replicas` is for replicated services: a global service runs one task on every eligible node",
                "with `mode: global`",
            )
            .help = Some("remove `replicas`, or set `mode: replicated`".into());
        }
        for (index, constraint) in self.constraints.iter().enumerate() {
            if !crate::kinds::docker_values::valid_constraint(constraint) {
                item_error(
                    ctx,
                    "constraints",
                    index,
                    None,
                    &format!("`{constraint}` is not a placement constraint"),
                    "not a constraint",
                    Some("write `ATTRIBUTE==VALUE` or `ATTRIBUTE!=VALUE`, e.g. `node.labels.tier==front` or `node.role==manager`"),
                );
            }
        }
        for (index, preference) in self.placement_preferences.iter().enumerate() {
            if spread_descriptor(preference).is_none() {
                item_error(
                    ctx,
                    "placement_preferences",
                    index,
                    None,
                    &format!("`{preference}` is not a placement preference"),
                    "not a preference",
                    Some(
                        "write `spread=node.labels.KEY` (spread is the only preference Docker has)",
                    ),
                );
            }
        }
        self.check_ports(ctx);
        self.check_objects(ctx);
        self.check_env(ctx);
        self.load_secret_env(ctx);
        self.check_mounts(ctx);
        let mut seen = BTreeSet::new();
        for (index, network) in self.networks.iter().enumerate() {
            if !seen.insert(network) {
                item_error(
                    ctx,
                    "networks",
                    index,
                    None,
                    &format!("`{network}` is listed twice"),
                    "again",
                    None,
                );
            }
        }
        for (key, value) in &self.labels {
            if tool_label(key)
                || key.starts_with("io.corral.")
                || !crate::kinds::docker_values::valid_label_key(key)
                || value.chars().any(char::is_control)
            {
                ctx.error_at_key(
                    &["labels", key],
                    format!("`{key}` cannot be a label here"),
                    "here",
                )
                .help = Some(format!(
                    "label keys have no `=`, spaces or leading `-`, values are one line, and `io.corral.…` and `{STACK_LABEL_PREFIX}…` are the tools'"
                ));
            }
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        let Some(scope) = links.swarm(self.cluster.as_deref(), ctx) else {
            return Vec::new();
        };
        let mut after = vec![scope.address()];
        if let Some(stack) = links.stack_services.get(&ctx.name) {
            ctx.error(
                &[],
                format!(
                    "swarm/stack.{stack} deploys a service named `{}` too",
                    ctx.name
                ),
                "same Docker service",
            )
            .help = Some(
                "each Docker service is one resource's: rename the service, or the stack".into(),
            );
        }
        let known: Vec<&str> = links.networks.keys().map(String::as_str).collect();
        for (index, network) in self.networks.iter().enumerate() {
            let span = item_span(ctx.spec, "networks", index, None);
            let origin = Origin {
                file: ctx.file.clone(),
                span,
            };
            match links.networks.get(network) {
                Some(link)
                    if link.cluster.as_deref().unwrap_or(&scope.cluster) == scope.cluster =>
                {
                    after.push(Address::new(crate::kinds::swarm_network::KIND, network, None));
                }
                Some(link) => ctx.errors.push(
                    ConfigError::at(
                        &origin,
                        format!(
                            "swarm/network.{network} is on swarm `{}`, and this service on `{}`",
                            link.cluster.as_deref().unwrap_or_default(),
                            scope.cluster
                        ),
                        "another swarm's network",
                    )
                    .with_help("a service attaches only to overlay networks of its own swarm"),
                ),
                None => ctx.errors.push(
                    ConfigError::at(
                        &origin,
                        format!("no `swarm/network` is named `{network}`"),
                        "unknown network",
                    )
                    .with_help(if known.is_empty() {
                        "declare the network with a `swarm/network` document".to_owned()
                    } else {
                        suggestion(network, &known, "networks")
                    }),
                ),
            }
        }
        for (class, field, refs) in [
            (ObjectClass::Secret, "secrets", &self.secrets),
            (ObjectClass::Config, "configs", &self.configs),
        ] {
            let mut targets = BTreeSet::new();
            for (index, object) in refs.iter().enumerate() {
                let origin = Origin {
                    file: ctx.file.clone(),
                    span: item_span(ctx.spec, field, index, Some("source")),
                };
                let noun = class.noun();
                if !targets.insert(object_target(class, object)) {
                    ctx.errors.push(
                        ConfigError::at(
                            &origin,
                            format!(
                                "two {noun}s become the same file `{}`",
                                object_target(class, object)
                            ),
                            "same target",
                        )
                        .with_help("give each its own `target:`"),
                    );
                }
                match links.objects.get(&(class, object.source.clone())) {
                    Some((cluster, value))
                        if cluster.as_deref().unwrap_or(&scope.cluster) == scope.cluster =>
                    {
                        self.objects
                            .insert((class, object.source.clone()), value.clone());
                        let address = Address::new(class.kind(), &object.source, None);
                        if !after.contains(&address) {
                            after.push(address);
                        }
                    }
                    Some(_) => ctx.errors.push(
                        ConfigError::at(
                            &origin,
                            format!(
                                "{}.{} is on another swarm than this service",
                                class.kind(),
                                object.source
                            ),
                            "another swarm's",
                        )
                        .with_help(format!("a service uses only {noun}s of its own swarm")),
                    ),
                    None if links.broken.contains(&Address::new(
                        class.kind(),
                        &object.source,
                        None,
                    )) => {}
                    None => {
                        let known: Vec<&str> = links
                            .objects
                            .keys()
                            .filter(|(c, _)| *c == class)
                            .map(|(_, name)| name.as_str())
                            .collect();
                        ctx.errors.push(
                            ConfigError::at(
                                &origin,
                                format!("no `{}` is named `{}`", class.kind(), object.source),
                                format!("unknown {noun}"),
                            )
                            .with_help(if known.is_empty() {
                                format!(
                                    "declare it with a `{}` document (`source:` or `from_env:`)",
                                    class.kind()
                                )
                            } else {
                                suggestion(&object.source, &known, &format!("{noun}s"))
                            }),
                        );
                    }
                }
            }
        }
        // A bind mount of (a directory in) a Gluster volume's mount point needs the volume
        // mounted first, or the task binds the empty directory under it.
        for mount in self.mounts.iter().filter(|m| m.kind == MountKind::Bind) {
            for (volume, path) in &links.gluster_mounts {
                let address = Address::new(crate::kinds::gluster_volume::KIND, volume, None);
                if is_within(&mount.source, path) && !after.contains(&address) {
                    after.push(address);
                }
            }
        }
        self.scope = scope;
        after
    }
}

impl SwarmServiceSpec {
    fn check_ports(&self, ctx: &mut CheckContext) {
        let mut published = BTreeSet::new();
        for (index, port) in self.ports.iter().enumerate() {
            for (field, value) in [("published", port.published), ("target", port.target)] {
                if value == 0 {
                    item_error(
                        ctx,
                        "ports",
                        index,
                        Some(field),
                        "a port is from 1 to 65535",
                        "port 0",
                        None,
                    );
                }
            }
            if !published.insert((port.published, port.protocol.word())) {
                item_error(
                    ctx,
                    "ports",
                    index,
                    Some("published"),
                    &format!(
                        "{}/{} is published twice",
                        port.published,
                        port.protocol.word()
                    ),
                    "again",
                    None,
                );
            }
        }
    }

    /// Keys only in messages: a value may be secret.
    /// Targets go into `--secret source=…,target=…`: no comma or quote, one line; a
    /// config's is an absolute path.
    fn check_objects(&self, ctx: &mut CheckContext) {
        for (class, field, refs) in [
            (ObjectClass::Secret, "secrets", &self.secrets),
            (ObjectClass::Config, "configs", &self.configs),
        ] {
            for (index, object) in refs.iter().enumerate() {
                let target = object_target(class, object);
                let bad = target.is_empty()
                    || target.contains([',', '"', '\'', '\0'])
                    || target.chars().any(char::is_control)
                    || (class == ObjectClass::Config && !target.starts_with('/'))
                    || target.split('/').any(|part| part == "..");
                if bad {
                    item_error(
                        ctx,
                        field,
                        index,
                        Some(if object.target.is_some() { "target" } else { "source" }),
                        &format!("`{target}` cannot be the file of a {}", class.noun()),
                        "this file",
                        Some(match class {
                            ObjectClass::Secret => "a name under /run/secrets/ or an absolute path, without commas, quotes or `..`",
                            ObjectClass::Config => "an absolute path, without commas, quotes or `..`",
                        }),
                    );
                }
            }
        }
    }

    fn check_env(&self, ctx: &mut CheckContext) {
        for (key, value) in &self.env {
            if !valid_env_key(key) {
                ctx.error_at_key(
                    &["env", key],
                    format!("`{key}` cannot be an environment variable"),
                    "here",
                )
                .help = Some("names have no `=`, spaces, control characters or leading `-`".into());
            } else if value.contains('\0') {
                ctx.error_at_key(
                    &["env", key],
                    format!("the value of `{key}` holds a NUL byte"),
                    "here",
                );
            }
        }
    }

    /// Checks each `secret_env` variable and reads its value (as a `swarm/secret` reads
    /// its own). Keys only in messages: the values are secret.
    fn load_secret_env(&mut self, ctx: &mut CheckContext) {
        const FORMS: &str = "write `KEY: { from_env: VARIABLE }` (an environment variable of the operator's) or `KEY: { source: FILE }` (a file outside version control)";
        for (key, variable) in &mut self.secret_env {
            let at = ["secret_env", key.as_str()];
            if let Some(why) = secret_env_key_problem(key) {
                ctx.error_at_key(&at, format!("`{key}` cannot be a secret environment variable: {why}"), "here")
                    .help = Some("give the value to the service as a file (`secrets:`) instead, or use another name".into());
                continue;
            }
            if self.env.contains_key(key) {
                ctx.error_at_key(
                    &at,
                    format!("`{key}` is in both `env` and `secret_env`"),
                    "again",
                )
                .help =
                    Some("keep it in `secret_env` if its value is a secret, else in `env`".into());
                continue;
            }
            if variable.inline.is_some() {
                ctx.error(
                    &at,
                    format!("the value of secret environment variable `{key}` is written in the configuration"),
                    "inline secret",
                )
                .help = Some(format!("a secret's value never is (it would be in git, and in every saved plan's digest): {FORMS}"));
                continue;
            }
            let given = [variable.source.as_deref(), variable.from_env.as_deref()];
            if given.iter().flatten().count() != 1 {
                ctx.error(
                    &at,
                    format!("`{key}` needs exactly one of `from_env:` and `source:`"),
                    "here",
                )
                .help = Some(FORMS.into());
                continue;
            }
            let Some((field, mut bytes, _)) = swarm_secret::read_value(
                ctx,
                &at,
                variable.source.as_deref(),
                variable.from_env.as_deref(),
                Exposure::Secret,
            ) else {
                continue;
            };
            swarm_secret::drop_final_line_break(field, &mut bytes);
            let problem = if bytes.contains(&0) {
                Some("holds a NUL byte, which no environment variable can")
            } else if std::str::from_utf8(&bytes).is_err() {
                Some("is not UTF-8, which Docker's environment values are")
            } else {
                None
            };
            if let Some(problem) = problem {
                let at_field = ["secret_env", key.as_str(), field];
                ctx.error(
                    &at_field,
                    format!("the value of `{key}` {problem}"),
                    "this value",
                );
                continue;
            }
            variable.value = ObjectValue::new(bytes);
        }
    }

    fn check_mounts(&self, ctx: &mut CheckContext) {
        let mut targets = BTreeSet::new();
        for (index, mount) in self.mounts.iter().enumerate() {
            if let Err(why) = mount_path(&mount.target) {
                item_error(
                    ctx,
                    "mounts",
                    index,
                    Some("target"),
                    &format!("`{}` {why}", mount.target),
                    "here",
                    None,
                );
            } else if !targets.insert(&mount.target) {
                item_error(
                    ctx,
                    "mounts",
                    index,
                    Some("target"),
                    &format!("`{}` is mounted twice", mount.target),
                    "again",
                    None,
                );
            }
            let source = match mount.kind {
                MountKind::Bind => mount_path(&mount.source).err(),
                MountKind::Volume => (!valid_volume_name(&mount.source))
                    .then_some("is not a volume name ([A-Za-z0-9] then [A-Za-z0-9_.-])"),
            };
            if let Some(why) = source {
                item_error(
                    ctx,
                    "mounts",
                    index,
                    Some("source"),
                    &format!("`{}` {why}", mount.source),
                    "here",
                    None,
                );
            }
        }
    }
}

/// Reports an error at item `index` of the list `field` (or at its `sub` field).
fn item_error(
    ctx: &mut CheckContext,
    field: &str,
    index: usize,
    sub: Option<&str>,
    message: &str,
    label: &str,
    help: Option<&str>,
) {
    let origin = ctx.origin(item_span(ctx.spec, field, index, sub));
    ctx.errors
        .push(ConfigError::at(&origin, message, label).with_help_opt(help.map(str::to_owned)));
}

/// The span of item `index` of the list `field` of a specification (or of its `sub`
/// field), falling back to the list, then the specification.
fn item_span(spec: &Node, field: &str, index: usize, sub: Option<&str>) -> Span {
    let Some(list) = spec.get(field) else {
        return spec.span;
    };
    let Value::Seq(items) = &list.value else {
        return list.span;
    };
    let Some(item) = items.get(index) else {
        return list.span;
    };
    sub.and_then(|s| item.get(s)).unwrap_or(item).span
}

/// Image references as Docker takes them: `[HOST[:PORT]/]PATH[:TAG][@ALGO:HEX]`.
fn check_image(image: &str) -> Result<(), &'static str> {
    if image.is_empty() {
        return Err("it is empty");
    }
    if image.starts_with('-') || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it starts with `-` or holds spaces");
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let Some((algorithm, hex)) = digest.split_once(':') else {
            return Err("a digest is ALGORITHM:HEX");
        };
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !algorithm_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("a digest is ALGORITHM:HEX, e.g. sha256: and 64 hex digits");
        }
    }
    let (path, tag) = split_tag(name);
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err("a tag is up to 128 of [A-Za-z0-9_.-], not starting with `.` or `-`");
        }
    }
    let components: Vec<&str> = path.split('/').collect();
    for (index, component) in components.iter().enumerate() {
        let is_host = index == 0
            && components.len() > 1
            && (component.contains(['.', ':']) || *component == "localhost");
        let ok = if is_host {
            !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        } else {
            !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && !component.starts_with(['.', '_', '-'])
        };
        if !ok {
            return Err("a repository path is lowercase letters, digits and `._-` between `/`");
        }
    }
    Ok(())
}

/// `(repository, tag)` of an image name without digest: the tag is after the last `:`
/// that comes after the last `/` (a registry's port is not a tag).
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(colon) => (&name[..last + colon], Some(&name[last + colon + 1..])),
        None => (name, None),
    }
}

/// The descriptor of `spread=DESCRIPTOR`.
fn spread_descriptor(preference: &str) -> Option<&str> {
    preference.strip_prefix("spread=").filter(|d| {
        !d.is_empty()
            && !d
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '"' || c == '=')
    })
}

fn valid_env_key(key: &str) -> bool {
    crate::kinds::docker_values::valid_label_key(key)
}

/// Why `key` cannot be a `secret_env` variable, if it cannot. Its value reaches Docker as
/// `KEY=value … docker service update --env-add KEY`, in the CLI's own environment: the key
/// must be a shell variable name, and not one that changes how the shell, `timeout` or
/// the CLI run (where they look for programs, the CLI's configuration and daemon, the Go
/// runtime, the dynamic loader).
fn secret_env_key_problem(key: &str) -> Option<&'static str> {
    let shell_name = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !shell_name {
        return Some("a secret environment variable's name is letters, digits and `_`, not starting with a digit");
    }
    let upper = key.to_ascii_uppercase();
    const RESERVED: &[&str] = &[
        "PATH",
        "HOME",
        "IFS",
        "ENV",
        "TMPDIR",
        "SHELL",
        "POSIXLY_CORRECT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "GODEBUG",
        "GOGC",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GOTRACEBACK",
    ];
    let reserved = RESERVED.contains(&upper.as_str())
        || ["DOCKER_", "LD_", "LC_"]
            .iter()
            .any(|p| upper.starts_with(p))
        || upper == "LANG";
    reserved.then_some("the Docker CLI that sets it reads this variable itself (the value reaches Docker through the CLI's environment)")
}

/// `--mount` values are CSV: a comma or quote in a path would add fields of its own.
fn mount_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        Err("is not an absolute path")
    } else if path.chars().any(|c| c == ',' || c == '"' || c.is_control()) {
        Err("holds a comma, a quote or a control character, which `--mount` cannot carry")
    } else {
        Ok(())
    }
}

fn valid_volume_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Whether `path` is `root` or under it, component-wise.
pub fn is_within(path: &str, root: &str) -> bool {
    let path = path.trim_end_matches('/');
    let root = root.trim_end_matches('/');
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

// ---------------------------------------------------------------------------------------
// Comparing

/// A service as corral compares it: what a `swarm/service` declares, or a live service's
/// spec with what Docker fills in normalised away (see the module's documentation).
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    image: String,
    command: Vec<String>,
    /// `replicated`, `global`, or a job mode corral does not declare.
    mode: String,
    /// Replicated services only.
    replicas: Option<u64>,
    constraints: BTreeSet<String>,
    /// Spread descriptors, in order.
    preferences: Vec<String>,
    ports: BTreeSet<PortShape>,
    env: BTreeMap<String, String>,
    /// By target.
    mounts: BTreeMap<String, MountShape>,
    networks: BTreeSet<String>,
    update: UpdateShape,
    labels: BTreeMap<String, String>,
    /// Object names (versions) by target file.
    secrets: BTreeMap<String, String>,
    configs: BTreeMap<String, String>,
}

/// The versions of the objects a service uses, by class and name; `None` when not known
/// yet (a plan of a swarm without its key).
pub type Versions = BTreeMap<(ObjectClass, String), Option<String>>;

/// How a version not known yet reads in a plan.
const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// The file an object becomes in the container, as Docker records it: a secret's default
/// is its name (under `/run/secrets/`), a config's `/NAME`.
pub fn object_target(class: ObjectClass, object: &ObjectRef) -> String {
    match (&object.target, class) {
        (Some(target), _) => target.clone(),
        (None, ObjectClass::Secret) => object.source.clone(),
        (None, ObjectClass::Config) => format!("/{}", object.source),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortShape {
    published: u16,
    target: u16,
    protocol: String,
    mode: String,
}

impl PortShape {
    /// What `--publish-rm` matches on: every published port with this target, protocol
    /// and mode goes.
    fn removal_key(&self) -> (u16, &str, &str) {
        (self.target, &self.protocol, &self.mode)
    }

    fn shown(&self) -> String {
        match self.published {
            // A Compose port without a published one (`"9000"`): swarm picks it at creation,
            // and `docker service inspect` shows it under `Endpoint.Ports`.
            0 => format!(
                "{}/{} ({}; swarm assigns the published port)",
                self.target, self.protocol, self.mode
            ),
            published => format!(
                "{published}:{}/{} ({})",
                self.target, self.protocol, self.mode
            ),
        }
    }

    fn add_flag(&self) -> String {
        format!(
            "--publish-add {}",
            quote(&format!(
                "published={},target={},protocol={},mode={}",
                self.published, self.target, self.protocol, self.mode
            ))
        )
    }

    fn remove_flag(&self) -> String {
        format!(
            "--publish-rm {}",
            quote(&format!(
                "target={},protocol={},mode={}",
                self.target, self.protocol, self.mode
            ))
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MountShape {
    kind: String,
    source: String,
    readonly: bool,
}

impl MountShape {
    fn shown(&self) -> String {
        let readonly = if self.readonly { ", readonly" } else { "" };
        format!("{} {}{readonly}", self.kind, self.source)
    }

    /// `--mount`'s CSV value (checked at load to hold no comma or quote).
    fn csv(&self, target: &str) -> String {
        let readonly = if self.readonly { ",readonly" } else { "" };
        format!(
            "type={},source={},target={target}{readonly}",
            self.kind, self.source
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UpdateShape {
    parallelism: u64,
    delay: Duration,
    order: String,
    failure_action: String,
    monitor: Duration,
}

impl Default for UpdateShape {
    /// swarmkit's defaults (and the CLI's): parallelism 1, no delay, stop-first, pause,
    /// monitor 5 s.
    fn default() -> Self {
        UpdateShape {
            parallelism: 1,
            delay: Duration::ZERO,
            order: "stop-first".into(),
            failure_action: "pause".into(),
            monitor: Duration::from_secs(5),
        }
    }
}

impl UpdateShape {
    /// `(attribute, value as shown, flag)` for each field.
    fn fields(&self) -> [(&'static str, String, String); 5] {
        [
            (
                "update.parallelism",
                self.parallelism.to_string(),
                format!("--update-parallelism {}", self.parallelism),
            ),
            (
                "update.delay",
                crate::duration::format_go(self.delay),
                format!("--update-delay {}", crate::duration::format_go(self.delay)),
            ),
            (
                "update.order",
                self.order.clone(),
                format!("--update-order {}", quote(&self.order)),
            ),
            (
                "update.failure_action",
                self.failure_action.clone(),
                format!("--update-failure-action {}", quote(&self.failure_action)),
            ),
            (
                "update.monitor",
                crate::duration::format_go(self.monitor),
                format!(
                    "--update-monitor {}",
                    crate::duration::format_go(self.monitor)
                ),
            ),
        ]
    }

    /// A live `UpdateConfig`: none, and zero values, are swarmkit's defaults (a zero
    /// parallelism is a setting: all at once).
    fn live(config: Option<&UpdateConfig>) -> Self {
        let defaults = UpdateShape::default();
        let Some(config) = config else {
            return defaults;
        };
        UpdateShape {
            parallelism: config.parallelism,
            delay: config.delay,
            order: or_default(&config.order, defaults.order),
            failure_action: or_default(&config.failure_action, defaults.failure_action),
            monitor: if config.monitor.is_zero() {
                defaults.monitor
            } else {
                config.monitor
            },
        }
    }
}

fn or_default(value: &str, default: String) -> String {
    if value.is_empty() {
        default
    } else {
        value.to_owned()
    }
}

impl SwarmServiceSpec {
    /// The versions of the objects this service uses.
    pub fn versions(&self, facts: &ClusterFacts, purpose: Purpose) -> Result<Versions, FactError> {
        let mut versions = Versions::new();
        for ((class, name), value) in &self.objects {
            let id = ObjectId::declared(*class, name);
            let version = swarm_secret::wanted_version(&id, value, &self.scope, facts, purpose)?;
            versions.insert((*class, name.clone()), version);
        }
        Ok(versions)
    }

    /// The service as declared, its objects named by `versions`.
    fn shape(&self, versions: &Versions) -> Shape {
        let objects = |class: ObjectClass, refs: &[ObjectRef]| -> BTreeMap<String, String> {
            refs.iter()
                .map(|r| {
                    let version = versions
                        .get(&(class, r.source.clone()))
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| KNOWN_AFTER_APPLY.to_owned());
                    (object_target(class, r), version)
                })
                .collect()
        };
        let defaults = UpdateShape::default();
        let update = &self.update;
        Shape {
            image: self.image.clone(),
            command: self.command.clone(),
            mode: self.mode.word().to_owned(),
            replicas: match self.mode {
                Mode::Replicated => Some(self.replicas.map_or(1, u64::from)),
                Mode::Global => None,
            },
            constraints: self.constraints.iter().cloned().collect(),
            preferences: self
                .placement_preferences
                .iter()
                .map(|p| spread_descriptor(p).unwrap_or(p).to_owned())
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|p| PortShape {
                    published: p.published,
                    target: p.target,
                    protocol: p.protocol.word().to_owned(),
                    mode: p.mode.word().to_owned(),
                })
                .collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(
                    self.secret_env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.text().to_owned())),
                )
                .collect(),
            mounts: self
                .mounts
                .iter()
                .map(|m| {
                    let shape = MountShape {
                        kind: m.kind.word().to_owned(),
                        source: m.source.clone(),
                        readonly: m.readonly,
                    };
                    (m.target.clone(), shape)
                })
                .collect(),
            networks: self.networks.iter().cloned().collect(),
            update: UpdateShape {
                parallelism: update.parallelism.map_or(defaults.parallelism, u64::from),
                delay: update
                    .delay
                    .map_or(defaults.delay, DockerDuration::duration),
                order: update.order.map_or(defaults.order, |o| o.word().to_owned()),
                failure_action: update
                    .failure_action
                    .map_or(defaults.failure_action, |a| a.word().to_owned()),
                monitor: update
                    .monitor
                    .map_or(defaults.monitor, DockerDuration::duration),
            },
            labels: self
                .labels
                .iter()
                .filter(|(k, _)| !tool_label(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: objects(ObjectClass::Secret, &self.secrets),
            configs: objects(ObjectClass::Config, &self.configs),
        }
    }

    fn secret_keys(&self) -> BTreeSet<String> {
        self.secret_env.keys().cloned().collect()
    }
}

/// What the facts hold, instead of its value, for a `secret_env` variable whose live value
/// equals the configured one (compared when the facts are read, see [`redact_inspect`]).
const SECRET_SAME: &str = "@@corral-sensitive:same";
/// … for one whose value differs.
const SECRET_DIFFERS: &str = "@@corral-sensitive:differs";
/// … for a variable no `env` declares: its value is not needed, and may be a secret.
const UNDECLARED: &str = "@@corral-sensitive:undeclared";

/// `docker service inspect` output (one JSON object per line) with the environment values
/// that must not be kept (in a facts file, an error, a log) taken out, for `declared`
/// services by name: `env` values stay (the plan shows them anyway); a `secret_env` value
/// becomes [`SECRET_SAME`] or [`SECRET_DIFFERS`], compared here with the configured one;
/// every other value, of any service, goes. A line that is not JSON is withheld.
pub fn redact_inspect(output: &str, declared: &BTreeMap<String, &SwarmServiceSpec>) -> String {
    let mut out = String::with_capacity(output.len());
    for line in output.lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        let mut service = match parsed {
            Ok(value) if value.is_object() => value,
            // Docker's own messages ("This node is not a swarm manager") stay readable;
            // anything that looks like JSON but is not a whole object is withheld.
            _ if !line.trim_start().starts_with(['{', '[', '"']) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            _ => {
                out.push_str(&format!(
                    "(a line of {} bytes that is not a JSON object, withheld: it may hold environment values)\n",
                    line.len()
                ));
                continue;
            }
        };
        let name = service["Spec"]["Name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let spec = declared.get(&name).copied();
        for which in ["Spec", "PreviousSpec"] {
            let Some(env) = service
                .get_mut(which)
                .and_then(|s| s.pointer_mut("/TaskTemplate/ContainerSpec/Env"))
                .and_then(|e| e.as_array_mut())
            else {
                continue;
            };
            for entry in env.iter_mut() {
                let Some(text) = entry.as_str() else {
                    continue;
                };
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                let kept = match spec {
                    Some(spec) if spec.env.get(key).is_some_and(|v| v == value) => None,
                    // Another value than configured: it may be an earlier secret one.
                    Some(spec) if spec.env.contains_key(key) => Some(SECRET_DIFFERS),
                    Some(spec) => match spec.secret_env.get(key) {
                        Some(wanted) if wanted.text() == value => Some(SECRET_SAME),
                        Some(_) => Some(SECRET_DIFFERS),
                        None => Some(UNDECLARED),
                    },
                    None => Some(UNDECLARED),
                };
                if let Some(marker) = kept {
                    *entry = serde_json::Value::String(format!("{key}={marker}"));
                }
            }
        }
        out.push_str(&service.to_string());
        out.push('\n');
    }
    out
}

/// [`redact_inspect`]'s output with every secret comparison made unknown (as differing).
pub fn forget_comparisons(output: &str) -> String {
    output.replace(SECRET_SAME, SECRET_DIFFERS)
}

/// Labels that tools put on services, never compared: corral's ownership label and
/// those `docker stack deploy` adds (`com.docker.stack.namespace`, `…image`).
fn tool_label(key: &str) -> bool {
    key == MANAGED_LABEL || key.starts_with(STACK_LABEL_PREFIX)
}

/// The prefix of the labels `docker stack deploy` puts on what it creates.
pub const STACK_LABEL_PREFIX: &str = "com.docker.stack.";
/// The label naming the stack a service belongs to.
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// A live service as corral compares it; `network_names` maps network IDs to names.
fn live_shape(service: &SwarmService, network_names: &BTreeMap<String, String>) -> Shape {
    let spec = &service.spec;
    let container = &spec.task_template.container_spec;
    let (mode, replicas) = match &spec.mode {
        ServiceMode::Replicated { replicas } => ("replicated", Some(*replicas)),
        ServiceMode::Global {} => ("global", None),
        ServiceMode::ReplicatedJob { .. } => ("replicated-job", None),
        ServiceMode::GlobalJob {} => ("global-job", None),
    };
    Shape {
        image: container.image.clone(),
        command: container.args.clone(),
        mode: mode.to_owned(),
        replicas,
        constraints: spec
            .task_template
            .placement
            .constraints
            .iter()
            .cloned()
            .collect(),
        preferences: spec
            .task_template
            .placement
            .spreads()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        ports: spec
            .ports()
            .iter()
            .map(|p| PortShape {
                published: p.published_port,
                target: p.target_port,
                protocol: or_default(&p.protocol, "tcp".into()),
                mode: or_default(&p.publish_mode, "ingress".into()),
            })
            .collect(),
        env: container
            .env_map()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        mounts: container
            .mounts
            .iter()
            .map(|m| {
                let shape = MountShape {
                    kind: m.kind.clone(),
                    source: m.source.clone(),
                    readonly: m.read_only,
                };
                (m.target.clone(), shape)
            })
            .collect(),
        networks: spec
            .task_template
            .networks
            .iter()
            .map(|n| {
                network_names
                    .get(&n.target)
                    .cloned()
                    .unwrap_or_else(|| n.target.clone())
            })
            .collect(),
        update: UpdateShape::live(spec.update_config.as_ref()),
        labels: spec
            .labels
            .iter()
            .filter(|(k, _)| !tool_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secrets: container
            .secrets
            .iter()
            .map(|r| {
                let target = r.file.as_ref().map_or(&r.secret_name, |f| &f.name);
                (target.clone(), r.secret_name.clone())
            })
            .collect(),
        configs: container
            .configs
            .iter()
            .map(|r| {
                let target = r.file.as_ref().map_or(&r.config_name, |f| &f.name);
                (target.clone(), r.config_name.clone())
            })
            .collect(),
    }
}

/// An image reference as `(repository, tag, digest)`, the repository in the short form
/// Docker's CLI records (`docker.io/library/busybox` is `busybox`).
fn image_parts(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (repository, tag) = split_tag(name);
    let repository = [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ]
    .iter()
    .find_map(|prefix| repository.strip_prefix(prefix))
    .unwrap_or(repository);
    (repository, tag, digest)
}

/// Whether the live image is the one declared. Without a declared digest, the digest the
/// CLI pinned at creation (`--resolve-image`, `busybox` → `busybox:latest@sha256:…`) is
/// not a difference; with one, the digests must match.
fn same_image(declared: &str, live: &str) -> bool {
    let (declared_repository, declared_tag, declared_digest) = image_parts(declared);
    let (live_repository, live_tag, live_digest) = image_parts(live);
    if declared_repository != live_repository {
        return false;
    }
    match declared_digest {
        Some(digest) => {
            live_digest == Some(digest) && declared_tag.is_none_or(|t| live_tag == Some(t))
        }
        None => declared_tag.unwrap_or("latest") == live_tag.unwrap_or("latest"),
    }
}

/// A command as one line, each word quoted where the shell would need it.
fn words(command: &[String]) -> String {
    if command.is_empty() {
        "(the image's)".into()
    } else {
        command
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The value of `--args`, which the CLI splits with Go's shlex: every word single-quoted
/// (a quote inside as `'\''`), so that it comes back as it was.
fn args_value(command: &[String]) -> String {
    command
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<&str> = items.into_iter().map(String::as_str).collect();
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

fn ports_shown(ports: &BTreeSet<PortShape>) -> String {
    let shown: Vec<String> = ports.iter().map(PortShape::shown).collect();
    list(&shown)
}

/// What differs between the declared service and the live one, with what makes the live
/// one as declared.
#[derive(Debug, Default)]
struct Delta {
    attributes: Vec<AttrChange>,
    /// `docker service update` flags (quoted), in the order of the attributes.
    flags: Vec<String>,
    /// `--publish-rm` flags that must run in an update of their own first: they would
    /// also remove a port that stays (same target, protocol and mode), and the CLI does
    /// not add back a port the service already had.
    ports_first: Vec<String>,
    /// The mode differs: swarmkit cannot change it in place.
    mode_changed: bool,
    /// `secret_env` values, which reach the CLI in its environment (see [`cli_env`]): the
    /// flags name only their keys.
    secret_env: Vec<(String, String)>,
    /// The service has no project's label (made by hand): this change adopts it.
    adopting: bool,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The changed attributes' names, for step descriptions (names only: never a value).
    fn names(&self) -> String {
        self.attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn change(&mut self, attribute: AttrChange, flags: impl IntoIterator<Item = String>) {
        self.attributes.push(attribute);
        self.flags.extend(flags);
    }

    /// A set shown as one attribute: `{flag}-rm` for what goes, `{flag}-add` for what
    /// comes.
    fn set(&mut self, name: &str, have: &BTreeSet<String>, want: &BTreeSet<String>, flag: &str) {
        if have == want {
            return;
        }
        let flags = have
            .difference(want)
            .map(|gone| format!("{flag}-rm {}", quote(gone)))
            .chain(
                want.difference(have)
                    .map(|new| format!("{flag}-add {}", quote(new))),
            )
            .collect::<Vec<_>>();
        self.change(AttrChange::scalar(name, list(have), list(want)), flags);
    }

    /// Published ports. `--publish-rm` matches a port by target, protocol and mode, so a
    /// removal also takes the ports that stay with the same three; those are added back,
    /// after the removal ran in an update of its own (the CLI does not add a port the
    /// service had when the update started).
    fn ports(&mut self, have: &BTreeSet<PortShape>, want: &BTreeSet<PortShape>) {
        let removed_keys: BTreeSet<_> = have.difference(want).map(PortShape::removal_key).collect();
        let mut removals: Vec<String> = have
            .iter()
            .filter(|p| removed_keys.contains(&p.removal_key()))
            .map(PortShape::remove_flag)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let taken_too: Vec<&PortShape> = want
            .intersection(have)
            .filter(|p| removed_keys.contains(&p.removal_key()))
            .collect();
        if taken_too.is_empty() {
            self.flags.append(&mut removals);
        } else {
            self.ports_first.append(&mut removals);
        }
        let adds = want
            .difference(have)
            .chain(taken_too)
            .map(PortShape::add_flag)
            .collect::<Vec<_>>();
        self.change(
            AttrChange::scalar("ports", ports_shown(have), ports_shown(want)),
            adds,
        );
    }
}

fn scalar_or_absent(value: Option<String>) -> AttrValue {
    value.map_or(AttrValue::Absent, AttrValue::Scalar)
}

/// Compares the declared service `want` with the live one `have`; `secret` are the keys
/// of `env` whose values are never shown.
fn compare(want: &Shape, have: &Shape, secret: &BTreeSet<String>) -> Delta {
    let mut delta = Delta::default();
    if !same_image(&want.image, &have.image) {
        delta.change(
            AttrChange::scalar("image", &have.image, &want.image),
            [format!("--image {}", quote(&want.image))],
        );
    }
    if want.command != have.command {
        delta.change(
            AttrChange::scalar("command", words(&have.command), words(&want.command)),
            [format!("--args {}", quote(&args_value(&want.command)))],
        );
    }
    if want.mode != have.mode {
        delta.change(AttrChange::scalar("mode", &have.mode, &want.mode), []);
        delta.mode_changed = true;
    }
    if want.replicas != have.replicas {
        let shown = |replicas: Option<u64>| scalar_or_absent(replicas.map(|r| r.to_string()));
        delta.change(
            AttrChange::new("replicas", shown(have.replicas), shown(want.replicas)),
            want.replicas.map(|r| format!("--replicas {r}")),
        );
    }
    delta.set(
        "constraints",
        &have.constraints,
        &want.constraints,
        "--constraint",
    );
    if want.preferences != have.preferences {
        let spreads = |descriptors: &[String]| -> Vec<String> {
            descriptors.iter().map(|d| format!("spread={d}")).collect()
        };
        let (before, after) = (spreads(&have.preferences), spreads(&want.preferences));
        // Preferences are ordered: all go, then the declared ones come in order (the CLI
        // removes before it adds).
        let flags = before
            .iter()
            .map(|p| format!("--placement-pref-rm {}", quote(p)))
            .chain(
                after
                    .iter()
                    .map(|p| format!("--placement-pref-add {}", quote(p))),
            )
            .collect::<Vec<_>>();
        delta.change(
            AttrChange::scalar("placement_preferences", list(&before), list(&after)),
            flags,
        );
    }
    if want.ports != have.ports {
        delta.ports(&have.ports, &want.ports);
    }
    for key in keys(&want.env, &have.env) {
        let (mut before, after) = (have.env.get(key), want.env.get(key));
        // Compared with the configured value when the facts were read.
        if before.is_some_and(|v| v == SECRET_SAME) && secret.contains(key) {
            before = after;
        }
        if before == after {
            continue;
        }
        let shown = |value: Option<&String>, secret: bool| match value {
            None => AttrValue::Absent,
            Some(_) if secret => AttrValue::Sensitive,
            Some(value) => AttrValue::Scalar(value.clone()),
        };
        // A variable no longer declared may have been a secret one: its value is not shown;
        // nor one the facts kept only as compared.
        let before_secret = secret.contains(key)
            || after.is_none()
            || before.is_some_and(|v| v.starts_with("@@corral-sensitive:"));
        let flag = match after {
            Some(value) if secret.contains(key) => {
                delta.secret_env.push((key.clone(), value.clone()));
                format!("--env-add {}", quote(key))
            }
            Some(value) => format!("--env-add {}", quote(&format!("{key}={value}"))),
            None => format!("--env-rm {}", quote(key)),
        };
        delta.change(
            AttrChange::new(
                format!("env.{key}"),
                shown(before, before_secret),
                shown(after, secret.contains(key)),
            ),
            [flag],
        );
    }
    for target in keys(&want.mounts, &have.mounts) {
        let (before, after) = (have.mounts.get(target), want.mounts.get(target));
        if before == after {
            continue;
        }
        // `--mount-add` replaces a mount of the same target; `--mount-rm` of that target
        // would remove the new one too.
        let flag = match after {
            Some(mount) => format!("--mount-add {}", quote(&mount.csv(target))),
            None => format!("--mount-rm {}", quote(target)),
        };
        delta.change(
            AttrChange::new(
                format!("mounts.{target}"),
                scalar_or_absent(before.map(MountShape::shown)),
                scalar_or_absent(after.map(MountShape::shown)),
            ),
            [flag],
        );
    }
    delta.set("networks", &have.networks, &want.networks, "--network");
    for (class, have, want) in [
        (ObjectClass::Secret, &have.secrets, &want.secrets),
        (ObjectClass::Config, &have.configs, &want.configs),
    ] {
        let noun = class.noun();
        // `--secret-rm NAME` takes every target of that object: those that stay are added
        // back in the same update.
        let removed: BTreeSet<&String> = keys(want, have)
            .into_iter()
            .filter(|t| have.get(*t) != want.get(*t))
            .filter_map(|t| have.get(t))
            .collect();
        let kept: Vec<String> = want
            .iter()
            .filter(|(t, name)| have.get(*t) == Some(*name) && removed.contains(name))
            .map(|(t, name)| {
                format!(
                    "--{noun}-add {}",
                    quote(&format!("source={name},target={t}"))
                )
            })
            .collect();
        delta.flags.extend(kept);
        for target in keys(want, have) {
            let (before, after) = (have.get(target), want.get(target));
            if before == after {
                continue;
            }
            // `--secret-rm` goes by the object's name, `--secret-add` by source and
            // target: the new version takes the old one's file in one rolling update.
            let flags = before
                .map(|old| format!("--{noun}-rm {}", quote(old)))
                .into_iter()
                .chain(after.map(|new| {
                    format!(
                        "--{noun}-add {}",
                        quote(&format!("source={new},target={target}"))
                    )
                }));
            delta.change(
                AttrChange::new(
                    format!("{noun}s.{target}"),
                    scalar_or_absent(before.cloned()),
                    scalar_or_absent(after.cloned()),
                ),
                flags.collect::<Vec<_>>(),
            );
        }
    }
    for ((name, before, _), (_, after, flag)) in
        have.update.fields().into_iter().zip(want.update.fields())
    {
        if before != after {
            delta.change(AttrChange::scalar(name, before, after), [flag]);
        }
    }
    for key in keys(&want.labels, &have.labels) {
        let (before, after) = (have.labels.get(key), want.labels.get(key));
        if before == after {
            continue;
        }
        let flag = match after {
            Some(value) => format!("--label-add {}", quote(&format!("{key}={value}"))),
            None => format!("--label-rm {}", quote(key)),
        };
        delta.change(
            AttrChange::new(
                format!("labels.{key}"),
                scalar_or_absent(before.cloned()),
                scalar_or_absent(after.cloned()),
            ),
            [flag],
        );
    }
    delta
}

/// The keys of two maps, each once, in order.
fn keys<'a, V>(a: &'a BTreeMap<String, V>, b: &'a BTreeMap<String, V>) -> BTreeSet<&'a String> {
    a.keys().chain(b.keys()).collect()
}

/// The attributes of a service to create, as the plan shows them.
fn created(want: &Shape, secret: &BTreeSet<String>) -> Vec<AttrChange> {
    let new = |name: &str, value: String| {
        AttrChange::new(name, AttrValue::Absent, AttrValue::Scalar(value))
    };
    let mut attributes = vec![new("image", want.image.clone())];
    if !want.command.is_empty() {
        attributes.push(new("command", words(&want.command)));
    }
    attributes.push(new("mode", want.mode.clone()));
    if let Some(replicas) = want.replicas {
        attributes.push(new("replicas", replicas.to_string()));
    }
    if !want.constraints.is_empty() {
        attributes.push(new("constraints", list(&want.constraints)));
    }
    if !want.preferences.is_empty() {
        let spreads: Vec<String> = want
            .preferences
            .iter()
            .map(|d| format!("spread={d}"))
            .collect();
        attributes.push(new("placement_preferences", list(&spreads)));
    }
    if !want.ports.is_empty() {
        attributes.push(new("ports", ports_shown(&want.ports)));
    }
    for (key, value) in &want.env {
        let after = match secret.contains(key) {
            true => AttrValue::Sensitive,
            false => AttrValue::Scalar(value.clone()),
        };
        attributes.push(AttrChange::new(
            format!("env.{key}"),
            AttrValue::Absent,
            after,
        ));
    }
    for (target, mount) in &want.mounts {
        attributes.push(new(&format!("mounts.{target}"), mount.shown()));
    }
    if !want.networks.is_empty() {
        attributes.push(new("networks", list(&want.networks)));
    }
    for (target, version) in &want.secrets {
        attributes.push(new(&format!("secrets.{target}"), version.clone()));
    }
    for (target, version) in &want.configs {
        attributes.push(new(&format!("configs.{target}"), version.clone()));
    }
    for ((name, default, _), (_, value, _)) in UpdateShape::default()
        .fields()
        .into_iter()
        .zip(want.update.fields())
    {
        if value != default {
            attributes.push(new(name, value));
        }
    }
    for (key, value) in &want.labels {
        attributes.push(new(&format!("labels.{key}"), value.clone()));
    }
    attributes
}

// ---------------------------------------------------------------------------------------
// Deciding

/// What the plan does with one service, worked out once for both `diff` and `steps`.
enum Decision {
    Create,
    NoOp,
    Update(Delta),
    /// The mode changed: remove and create again.
    Replace(Delta),
    /// As declared, but its tasks do not all run (why, from the tasks): a forced update.
    Restart(String),
}

impl SwarmServiceSpec {
    fn decide(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Decision, FactError> {
        let Some((_, manager)) = &facts.manager else {
            crate::kinds::swarm_cluster::no_manager(facts)?;
            return Ok(Decision::Create);
        };
        let services = live_by_name(manager)?;
        let Some(service) = services.get(name) else {
            return Ok(Decision::Create);
        };
        let network_names = if service.spec.task_template.networks.is_empty() {
            std::sync::Arc::new(BTreeMap::new())
        } else {
            network_names(manager)?
        };
        let delta = compare(
            &self.shape(versions),
            &live_shape(service, &network_names),
            &self.secret_keys(),
        );
        let ours = service.spec.labels.get(MANAGED_LABEL) == Some(&self.scope.project);
        if delta.is_empty() {
            // A service corral does not manage is used as it is, running or not.
            return Ok(match not_running(name, manager, service)? {
                Some(why) if ours => Decision::Restart(why),
                _ => Decision::NoOp,
            });
        }
        let mut delta = delta;
        if !service.spec.labels.contains_key(MANAGED_LABEL) {
            // Made by hand and now declared (`corral import`): the first change takes it
            // over, labelling it in the same update.
            delta
                .attributes
                .push(crate::kinds::adopted_attribute(&self.scope.project));
            delta.flags.push(format!(
                "--label-add {}",
                quote(&format!("{MANAGED_LABEL}={}", self.scope.project))
            ));
            delta.adopting = true;
        } else if service.spec.labels.get(MANAGED_LABEL) != Some(&self.scope.project) {
            return Err(FactError::new(
                swarm::SERVICE_INSPECT_KEY,
                format!(
                    "service `{name}` exists, differs ({}), and was not created by project {}; corral does not change what it does not manage: remove it by hand or match the configuration to it",
                    delta.names(),
                    self.scope.project
                ),
            ));
        }
        Ok(match delta.mode_changed {
            true => Decision::Replace(delta),
            false => Decision::Update(delta),
        })
    }

    /// How long a create or update may take to get every task running: a base, plus the
    /// rolling update's delay and monitoring period for each batch of `parallelism` tasks
    /// (a global service has at most one task per member).
    pub fn wait_budget(&self) -> u64 {
        let update = self.shape(&Versions::new()).update;
        let tasks = match self.mode {
            Mode::Replicated => self.replicas.map_or(1, u64::from),
            Mode::Global => self.scope.members().len() as u64,
        };
        let batches = match update.parallelism {
            0 => 1,
            parallelism => tasks.div_ceil(parallelism),
        };
        let per_batch = (update.delay + update.monitor).as_secs() + 1;
        BASE_WAIT_SECONDS.saturating_add(batches.saturating_mul(per_batch))
    }

    /// `docker service create …` of this service.
    fn create_command(&self, name: &str, versions: &Versions) -> String {
        let want = self.shape(versions);
        let mut command = vec![
            "docker service create --detach=false --quiet".to_owned(),
            format!("--name {}", quote(name)),
            format!(
                "--label {}",
                quote(&format!("{MANAGED_LABEL}={}", self.scope.project))
            ),
        ];
        match want.replicas {
            Some(replicas) => command.push(format!("--replicas {replicas}")),
            None => command.push("--mode global".into()),
        }
        for constraint in &want.constraints {
            command.push(format!("--constraint {}", quote(constraint)));
        }
        for descriptor in &want.preferences {
            command.push(format!(
                "--placement-pref {}",
                quote(&format!("spread={descriptor}"))
            ));
        }
        for port in &want.ports {
            command.push(format!(
                "--publish {}",
                quote(&format!(
                    "published={},target={},protocol={},mode={}",
                    port.published, port.target, port.protocol, port.mode
                ))
            ));
        }
        for (key, value) in &want.env {
            match self.secret_env.contains_key(key) {
                // The value is in the CLI's environment (see `cli_env`).
                true => command.push(format!("--env {}", quote(key))),
                false => command.push(format!("--env {}", quote(&format!("{key}={value}")))),
            }
        }
        for (target, mount) in &want.mounts {
            command.push(format!("--mount {}", quote(&mount.csv(target))));
        }
        for network in &want.networks {
            command.push(format!("--network {}", quote(network)));
        }
        for (class, objects) in [
            (ObjectClass::Secret, &want.secrets),
            (ObjectClass::Config, &want.configs),
        ] {
            for (target, version) in objects {
                command.push(format!(
                    "--{} {}",
                    class.noun(),
                    quote(&format!("source={version},target={target}"))
                ));
            }
        }
        for (_, _, flag) in want.update.fields() {
            command.push(flag);
        }
        for (key, value) in &want.labels {
            command.push(format!("--label {}", quote(&format!("{key}={value}"))));
        }
        command.push(quote(&self.image));
        command.extend(self.command.iter().map(|arg| quote(arg)));
        command.join(" ")
    }

    /// [`converge_script`] of `command`, which the CLI runs with `secret_env` in its
    /// environment.
    fn converge(&self, name: &str, secret_env: &[(String, String)], command: &str) -> String {
        let least = match self.mode {
            Mode::Replicated => 0,
            Mode::Global => 1,
        };
        let env = cli_env(secret_env);
        converge_script(name, &env, command, self.wait_budget(), least)
    }

    /// Every `secret_env` variable with its value, for a create.
    fn secret_env_values(&self) -> Vec<(String, String)> {
        self.secret_env
            .iter()
            .map(|(k, v)| (k.clone(), v.text().to_owned()))
            .collect()
    }
}

/// Shell assignments (`KEY='value' `) that put `secret_env` values in the environment of
/// the command they precede: the Docker CLI's `--env KEY` / `--env-add KEY` without `=`
/// takes the value from its own environment (docker/cli `opts.ValidateEnv`, checked with the
/// hosts' 20.10 CLI). So a value is in the script, which `sh` reads on its standard input,
/// and in the environment of `timeout` and `docker`, which `/proc/PID/environ` shows only
/// to their owner: never in a command line, which `ps` shows every user. The keys are
/// shell names that none of those programs reads (`secret_env_key_problem`).
fn cli_env(secret_env: &[(String, String)]) -> String {
    secret_env
        .iter()
        .map(|(key, value)| format!("{key}={} ", quote(value)))
        .collect()
}

impl SwarmServiceSpec {}

/// Every service the manager sees.
fn live_services(manager: &HostFacts) -> Result<std::sync::Arc<Vec<SwarmService>>, FactError> {
    manager.parsed(swarm::SERVICE_INSPECT_KEY, swarm::parse_service_inspect)
}

/// The live services by name (the first of a name, as `docker service inspect NAME`).
fn live_by_name(
    manager: &HostFacts,
) -> Result<std::sync::Arc<BTreeMap<String, SwarmService>>, FactError> {
    manager.parsed(swarm::SERVICE_INSPECT_KEY, |key, out| {
        let mut by_name = BTreeMap::new();
        for service in swarm::parse_service_inspect(key, out)? {
            by_name.entry(service.spec.name.clone()).or_insert(service);
        }
        Ok(by_name)
    })
}

/// Why `service` does not run as declared (see [`swarm::not_running`]), from the manager's
/// one `service ls` (and `service ps` of the services that may be short) and its nodes;
/// `None` when it runs as declared, or when the facts hold no such reading (a facts file
/// saved by an older corral).
fn not_running(
    name: &str,
    manager: &HostFacts,
    service: &SwarmService,
) -> Result<Option<String>, FactError> {
    if manager.get(swarm::SERVICE_RUN_KEY).is_err() {
        return Ok(None);
    }
    let runs = manager.parsed(swarm::SERVICE_RUN_KEY, swarm::parse_service_run)?;
    let Some(run) = runs.get(name) else {
        return Ok(None);
    };
    let nodes = match run.global && manager.get(swarm::NODE_INSPECT_KEY).is_ok() {
        true => manager.parsed(swarm::NODE_INSPECT_KEY, swarm::parse_node_inspect)?,
        false => std::sync::Arc::new(Vec::new()),
    };
    let expected = match run.global && !nodes.is_empty() {
        true => swarm::global_expected(&nodes, &service.spec.task_template.placement.constraints),
        false => None,
    };
    let why = swarm::not_running(run, expected.as_deref(), &nodes);
    let updating = service
        .update_status
        .as_ref()
        .is_some_and(|status| status.state == swarm::UpdateState::Updating);
    Ok(why.map(|why| match updating {
        true => format!("{why} (Docker's update of it is still under way)"),
        false => why,
    }))
}

/// Overlay network names by ID.
fn network_names(
    manager: &HostFacts,
) -> Result<std::sync::Arc<BTreeMap<String, String>>, FactError> {
    manager.parsed(swarm::NETWORK_INSPECT_KEY, |key, out| {
        let networks = swarm::parse_network_inspect(key, out)?;
        Ok(networks
            .into_iter()
            .map(|n| (n.id, n.name))
            .collect::<BTreeMap<String, String>>())
    })
}

// ---------------------------------------------------------------------------------------
// Scripts

/// How the wait lists a service's tasks: `docker service ps --format`, `|`-separated.
const TASK_FORMAT: &str = "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}";

/// The tasks worth showing when a service does not converge (awk, on [`TASK_FORMAT`]
/// lines): those with an error, and those meant to run that do not.
const TASK_FILTER: &str = r#"$5 != "" || ($3 != "Shutdown" && $4 !~ /^Running/) { node = $2; if (node == "") node = "no node"; print $1 " on " node ": " $4 " " $5 }"#;

/// Runs `command` (a `docker service create|update --detach=false`) for at most `budget`
/// seconds, then waits for what is left of them until the service's tasks run: `service
/// ls` counts a replicated service's `running/desired` (desired is the replicas); a global
/// service is counted by node from `service ps` (nodes with a task Docker wants running or
/// ready to start, and those of them where it runs), because `service ls` counts only the
/// tasks desired running, and a task that failed and waits to restart is desired `ready`:
/// it printed `0/0` for a global service whose every task failed. Desired must be at least
/// `least`, and the two equal: a service
/// scaled down runs `2/1` until the task too many has stopped (a stack's deploy, which
/// does not wait itself, returns while it still runs). Fails with the tasks' errors when they
/// do not run in time, and at once when Docker paused or rolled back the update.
///
/// `docker service ps` lists a pending task with desired state `Ready`, not `Running`
/// (fixtures/cluster/service-ps/failures.json), so tasks are filtered here rather than
/// with `--filter desired-state=running`.
pub fn converge_script(name: &str, env: &str, command: &str, budget: u64, least: u8) -> String {
    const SCRIPT: &str = r#"budget=@BUDGET@
deadline=$(($(date +%s) + budget))
corral_tasks() {
  docker service ps --no-trunc --format '@TASK_FORMAT@' @NAME@ 2>/dev/null | awk -F'|' '@TASK_FILTER@' | head -n 6
}
rc=0
out=$(@RUN@ 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
  printf '%s\n' "$out" | tail -n 5
  corral_tasks
  echo "corral: docker failed (exit $rc) to change service "@NAME@
  exit 1
fi
while :; do
  info=$(docker service inspect --format '{{if .Spec.Mode.Global}}global{{else}}replicated{{end}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' @NAME@ 2>&1) || {
    printf '%s\n' "$info"
    echo "corral: service "@NAME@" cannot be read"
    exit 1
  }
  mode=${info%% *}
  state=${info#"$mode"}
  state=${state# }
  case $state in
  paused | rollback_started | rollback_paused | rollback_completed)
    corral_tasks
    echo "corral: Docker's update of service "@NAME@" ended $state: $(docker service inspect --format '{{.UpdateStatus.Message}}' @NAME@ 2>&1)"
    exit 1
    ;;
  esac
  if [ "$mode" = global ]; then
    counts=$(docker service ps --filter desired-state=running --filter desired-state=ready --format '{{.Node}}|{{.CurrentState}}' @NAME@ 2>/dev/null | awk -F'|' '{ split($2, s, " "); d[$1] = 1; if (s[1] == "Running") r[$1] = 1 } END { for (k in d) n++; for (k in r) m++; printf "%d/%d\n", m, n }')
  else
    counts=$(docker service ls --filter @FILTER@ --format '{{.Name}} {{.Replicas}}' 2>/dev/null | while read -r n r _; do [ "$n" = @NAME@ ] && echo "$r"; done)
  fi
  running=${counts%%/*}
  desired=${counts#*/}
  if [ "$state" != updating ] && [ -n "$counts" ] && [ "$running" -eq "$desired" ] && [ "$desired" -ge @LEAST@ ]; then
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    corral_tasks
    if [ -z "$counts" ]; then
      echo "corral: waited ${budget}s for the tasks of service "@NAME@": Docker lists none"
    elif [ "$mode" = global ]; then
      echo "corral: waited ${budget}s for global service "@NAME@" to run a task on each of the $desired nodes Docker placed one on: it runs on $running"
    else
      echo "corral: waited ${budget}s for the $desired tasks of service "@NAME@" to run: $running run"
    fi
    exit 1
  fi
  sleep 2
done
"#;
    let script = SCRIPT
        .replace("@TASK_FORMAT@", TASK_FORMAT)
        .replace("@TASK_FILTER@", TASK_FILTER)
        .replace("@BUDGET@", &budget.to_string())
        .replace("@LEAST@", &least.to_string())
        .replace("@FILTER@", &quote(&format!("name={name}")))
        .replace("@NAME@", &quote(name));
    // Last, and once: the environment and the command hold configuration values, never
    // rewritten.
    match script.split_once("@RUN@") {
        Some((head, tail)) => format!("{head}{env}timeout \"$budget\" {command}{tail}"),
        None => script,
    }
}

/// The services of `project` on the swarm that no `swarm/service` declares.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    Ok(live_services(manager)?
        .iter()
        .filter(|s| s.spec.labels.get(MANAGED_LABEL).map(String::as_str) == Some(project))
        // A stack's services are the stack's to prune.
        .filter(|s| !s.spec.labels.contains_key(STACK_NAMESPACE_LABEL))
        .map(|s| (Address::new(KIND, &s.spec.name, None), s))
        .filter(|(address, _)| !declared.contains(address))
        .map(|(address, s)| Orphan {
            address,
            attributes: vec![AttrChange::new(
                "image",
                AttrValue::Scalar(s.spec.task_template.container_spec.image.clone()),
                AttrValue::Absent,
            )],
            reason: None,
        })
        .collect())
}

impl SwarmServiceSpec {
    /// [`ClusterKind::diff`] with the objects' versions given.
    pub fn diff_with(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Diff, FactError> {
        Ok(match self.decide(name, facts, versions)? {
            Decision::Create => Diff {
                action: Some(Action::Create),
                attributes: created(&self.shape(versions), &self.secret_keys()),
                reason: None,
            },
            Decision::NoOp => Diff::update_if_changed(Vec::new()),
            Decision::Update(delta) => Diff {
                reason: delta.adopting.then(|| crate::kinds::adopted_reason("service")),
                ..Diff::update_if_changed(delta.attributes)
            },
            Decision::Restart(why) => Diff {
                action: Some(Action::Update),
                attributes: vec![AttrChange::scalar(TASKS_ATTRIBUTE, why, "all running")],
                reason: Some(
                    "its spec is as declared but its tasks do not all run: a forced update (`docker service update --force`) starts them again".into(),
                ),
            },
            Decision::Replace(delta) => Diff {
                action: Some(Action::Replace),
                attributes: delta.attributes,
                reason: Some(
                    "the mode cannot change in place (swarmkit: \"service mode change is not allowed\"): the service is removed and created again".into(),
                ),
            },
        })
    }

    /// [`ClusterKind::steps`] with the objects' versions given.
    pub fn steps_with(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Vec<ClusterStep>, FactError> {
        let leader = self.scope.leader(facts);
        let on = |description: String, script: String| ClusterStep {
            machine: leader.clone(),
            step: Step {
                description,
                script,
            },
            produces: None,
            always: false,
        };
        let project = &self.scope.project;
        Ok(match self.decide(name, facts, versions)? {
            Decision::NoOp => Vec::new(),
            Decision::Create => vec![on(
                format!("create service {name} and wait for its tasks"),
                self.converge(
                    name,
                    &self.secret_env_values(),
                    &self.create_command(name, versions),
                ),
            )],
            Decision::Update(delta) => {
                let mut script = match delta.adopting {
                    true => DockerObject::Service.adoptable_guard(name, project),
                    false => DockerObject::Service.owned_guard(name, project),
                };
                if !delta.ports_first.is_empty() {
                    script.push_str(&format!(
                        "timeout {} docker service update --detach=false --quiet {} {} >/dev/null || {{ echo 'corral: removing the ports of service '{} failed; exit 1; }}\n",
                        self.wait_budget(),
                        delta.ports_first.join(" "),
                        quote(name),
                        quote(name),
                    ));
                }
                let command = format!(
                    "docker service update --detach=false --quiet {} {}",
                    delta.flags.join(" "),
                    quote(name)
                );
                script.push_str(&self.converge(name, &delta.secret_env, &command));
                vec![on(
                    format!(
                        "update service {name} ({}) and wait for its tasks",
                        delta.names()
                    ),
                    script,
                )]
            }
            Decision::Restart(_) => {
                let mut script = DockerObject::Service.owned_guard(name, project);
                let command = format!(
                    "docker service update --detach=false --quiet --force {}",
                    quote(name)
                );
                script.push_str(&self.converge(name, &[], &command));
                vec![on(
                    format!("restart the tasks of service {name} (forced update: docker service update --force) and wait for them"),
                    script,
                )]
            }
            Decision::Replace(_) => {
                let q = quote(name);
                let mut script = DockerObject::Service.owned_guard(name, project);
                script.push_str(&format!("docker service rm {q} >/dev/null || exit 1\n"));
                script.push_str(&DockerObject::Service.wait_gone(name));
                script.push_str(&self.converge(
                    name,
                    &self.secret_env_values(),
                    &self.create_command(name, versions),
                ));
                vec![on(
                    format!(
                        "replace service {name} (mode {}) and wait for its tasks",
                        self.mode.word()
                    ),
                    script,
                )]
            }
        })
    }
}

impl ClusterKind for SwarmServiceSpec {
    crate::kinds::on_a_swarm!(scope);

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe(), kernel::probe()]
    }

    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            swarm::service_inspect_probe(),
            swarm::network_inspect_probe(),
            swarm::service_run_probe(),
            swarm::node_inspect_probe(),
        ]
    }

    /// Services are created and updated through a manager's API, several at once.
    fn shares_machines(&self) -> bool {
        true
    }

    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        self.diff_with(name, facts, &self.versions(facts, Purpose::Plan)?)
    }

    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        self.steps_with(name, facts, &self.versions(facts, Purpose::Apply)?)
    }

    fn warnings(&self, name: &str, facts: &ClusterFacts) -> Vec<String> {
        let mut warnings = Vec::new();
        let ingress: Vec<String> = self
            .ports
            .iter()
            .filter(|p| p.mode == PublishMode::Ingress)
            .map(|p| format!("{}/{}", p.published, p.protocol.word()))
            .collect();
        let without_ipvs = facts.kernels_without(|f| f.ipvs);
        if !ingress.is_empty() && !without_ipvs.is_empty() {
            warnings.push(format!(
                "swarm/service.{name} publishes {} in ingress mode, but the kernel of {} has no IPVS: Docker creates the service and the routing mesh drops its traffic without an error. Publish with `mode: host` (reached on the nodes that run a task), or use kernels with CONFIG_IP_VS",
                ingress.join(", "),
                without_ipvs.join(", ")
            ));
        }
        // A paused update leaves the service half on its new spec, which may already be the
        // configured one: the plan alone would show nothing.
        let paused = facts
            .manager
            .as_ref()
            .and_then(|(_, manager)| live_by_name(manager).ok())
            .and_then(|services| services.get(name).cloned())
            .and_then(|service| service.update_status)
            .filter(|status| {
                matches!(
                    status.state,
                    swarm::UpdateState::Paused | swarm::UpdateState::RollbackPaused
                )
            });
        if let Some(status) = paused {
            warnings.push(format!(
                "Docker paused the last update of swarm/service.{name}: {}. `docker service ps {name}` shows why; `docker service update --force {name}` retries it",
                status.message
            ));
        }
        // A node that is down runs no task, and a forced update would not change that: the
        // plan does not count it (see docs/src/running-state.md), but says so.
        if self.mode == Mode::Global {
            let down: Vec<String> = facts
                .manager
                .as_ref()
                .filter(|(_, manager)| manager.get(swarm::NODE_INSPECT_KEY).is_ok())
                .and_then(|(_, manager)| {
                    manager
                        .parsed(swarm::NODE_INSPECT_KEY, swarm::parse_node_inspect)
                        .ok()
                })
                .map(|nodes| {
                    nodes
                        .iter()
                        .filter(|n| n.status.state != swarm::NodeState::Ready)
                        .filter(|n| swarm::placeable(n, &self.constraints) == Some(true))
                        .map(|n| {
                            format!(
                                "{} ({})",
                                n.hostname(),
                                swarm::node_state_word(n.status.state)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !down.is_empty() {
                warnings.push(format!(
                    "swarm/service.{name} is global, but {} cannot run its task: the plan counts only the nodes that are up, and shows the service again when a node back up does not run it",
                    down.join(", ")
                ));
            }
        }
        let host_ports = self.ports.iter().any(|p| p.mode == PublishMode::Host);
        if host_ports && self.update.order == Some(UpdateOrder::StartFirst) {
            warnings.push(format!(
                "swarm/service.{name} updates start-first and publishes host-mode ports: a new task cannot bind a port its old task on the same node still holds (\"host-mode port already in use\", moby#36934). Use `order: stop-first`"
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;
    use crate::kinds::ClusterMember;

    fn scope(project: &str) -> SwarmScope {
        SwarmScope {
            cluster: "main".into(),
            managers: vec!["n1".into(), "n2".into()],
            workers: vec!["n3".into()],
            project: project.into(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn duration(text: &str) -> Option<DockerDuration> {
        Some(DockerDuration::parse(text).unwrap())
    }

    /// `api` as scripts/record-cluster-fixtures.sh creates it (secret and config aside),
    /// with the `RELEASE=2` its one update added.
    fn api() -> SwarmServiceSpec {
        SwarmServiceSpec {
            image: "local/busybox:1".into(),
            command: strings(&["sleep", "86400"]),
            replicas: Some(2),
            constraints: strings(&["node.labels.role==edge"]),
            placement_preferences: strings(&["spread=node.labels.zone"]),
            env: map(&[
                ("APP_ENV", "prod"),
                ("GREETING", "hello world"),
                ("RELEASE", "2"),
            ]),
            mounts: vec![
                ServiceMount {
                    kind: MountKind::Bind,
                    source: "/srv/api".into(),
                    target: "/srv/api".into(),
                    readonly: true,
                },
                ServiceMount {
                    kind: MountKind::Volume,
                    source: "api-cache".into(),
                    target: "/var/cache/api".into(),
                    readonly: false,
                },
            ],
            networks: strings(&["appnet", "dbnet"]),
            update: UpdatePolicy {
                parallelism: Some(2),
                delay: duration("10s"),
                order: Some(UpdateOrder::StartFirst),
                failure_action: Some(FailureAction::Rollback),
                monitor: duration("2s"),
            },
            labels: map(&[("tier", "app")]),
            secrets: vec![ObjectRef {
                source: "api_token".into(),
                target: None,
            }],
            configs: vec![ObjectRef {
                source: "api_conf".into(),
                target: Some("/etc/api.conf".into()),
            }],
            scope: scope("default"),
            ..SwarmServiceSpec::default()
        }
    }

    /// `agent` as the recording script creates it.
    fn agent() -> SwarmServiceSpec {
        SwarmServiceSpec {
            image: "local/busybox:1".into(),
            command: strings(&["httpd", "-f", "-p", "8080"]),
            mode: Mode::Global,
            ports: vec![Port {
                published: 8080,
                target: 8080,
                mode: PublishMode::Host,
                protocol: Protocol::Tcp,
            }],
            scope: scope("default"),
            ..SwarmServiceSpec::default()
        }
    }

    /// A manager's facts: the services of `case`, and the networks of the same lab.
    fn manager(case: &str) -> HostFacts {
        let mut facts = HostFacts::default();
        facts.probes.insert(
            swarm::SERVICE_INSPECT_KEY.into(),
            recorded::cluster("service-inspect", case, &swarm::service_inspect_probe()),
        );
        facts.probes.insert(
            swarm::NETWORK_INSPECT_KEY.into(),
            recorded::cluster(
                "network-inspect",
                "cluster",
                &swarm::network_inspect_probe(),
            ),
        );
        facts
    }

    fn facts(manager: &HostFacts) -> ClusterFacts<'_> {
        ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n2".into(), manager)),
            inventory: BTreeMap::new(),
        }
    }

    fn plan(spec: &SwarmServiceSpec, name: &str, manager: &HostFacts) -> (Diff, Vec<ClusterStep>) {
        let facts = facts(manager);
        (
            spec.diff_with(name, &facts, &recorded_versions()).unwrap(),
            spec.steps_with(name, &facts, &recorded_versions()).unwrap(),
        )
    }

    /// The objects the recorded `api` uses, as versions of `api_token` and `api_conf`.
    fn recorded_versions() -> Versions {
        Versions::from([
            (
                (ObjectClass::Secret, "api_token".into()),
                Some("api_token_v1".into()),
            ),
            (
                (ObjectClass::Config, "api_conf".into()),
                Some("api_conf_v1".into()),
            ),
        ])
    }

    /// A flag with its value quoted as the scripts quote it.
    fn flag(name: &str, value: &str) -> String {
        format!("{name} {}", quote(value))
    }

    fn names(diff: &Diff) -> Vec<&str> {
        diff.attributes.iter().map(|a| a.name.as_str()).collect()
    }

    /// Checks `script` with `sh -n`.
    fn assert_valid_sh(script: &str) {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_recorded_services_as_created_plan_nothing() {
        let manager = manager("cluster");
        for (name, spec) in [("api", api()), ("agent", agent())] {
            let (diff, steps) = plan(&spec, name, &manager);
            assert_eq!(diff.action(), Action::NoOp, "{name}: {diff:?}");
            assert!(steps.is_empty());
        }
    }

    #[test]
    fn defaults_written_out_plan_nothing_either() {
        let manager = manager("cluster");
        let spec = SwarmServiceSpec {
            replicas: None,
            update: UpdatePolicy {
                parallelism: Some(1),
                delay: duration("0"),
                order: Some(UpdateOrder::StopFirst),
                failure_action: Some(FailureAction::Pause),
                monitor: duration("5000ms"),
            },
            ..agent()
        };
        let (diff, _) = plan(&spec, "agent", &manager);
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    /// The facts keep no environment value that is not shown anyway: a secret one is
    /// compared as it is read and kept as same/differs; others' and undeclared ones go. The
    /// plan from the redacted facts is the plan from the real ones.
    #[test]
    fn facts_keep_no_secret_environment_value() {
        let mut spec = api();
        let greeting = spec.env.remove("GREETING").unwrap();
        spec.secret_env
            .insert("GREETING".into(), SecretEnv::with_value(&greeting));
        let raw = manager("cluster");
        let redact = |spec: &SwarmServiceSpec| {
            let mut facts = raw.clone();
            let declared = BTreeMap::from([("api".to_owned(), spec)]);
            let out = facts.probes.get_mut(swarm::SERVICE_INSPECT_KEY).unwrap();
            out.output = redact_inspect(&out.output, &declared);
            facts
        };
        let redacted = redact(&spec);
        let text = &redacted.probes[swarm::SERVICE_INSPECT_KEY].output;
        assert!(!text.contains("hello world"), "{text}");
        assert!(text.contains("GREETING=@@corral-sensitive:same"), "{text}");
        assert!(text.contains("APP_ENV=prod"), "{text}");
        assert_eq!(plan(&spec, "api", &redacted).0.action(), Action::NoOp);
        spec.secret_env
            .insert("GREETING".into(), SecretEnv::with_value("new"));
        let redacted = redact(&spec);
        assert!(redacted.probes[swarm::SERVICE_INSPECT_KEY]
            .output
            .contains("GREETING=@@corral-sensitive:differs"));
        assert_eq!(
            plan(&spec, "api", &redacted).0.attributes,
            plan(&spec, "api", &raw).0.attributes
        );
        // A service nothing declares keeps no value at all.
        let declared = BTreeMap::new();
        let text = redact_inspect(&raw.probes[swarm::SERVICE_INSPECT_KEY].output, &declared);
        assert!(
            !text.contains("hello world") && !text.contains("APP_ENV=prod"),
            "{text}"
        );
    }

    #[test]
    fn a_secret_env_value_is_compared_but_never_shown() {
        let manager = manager("cluster");
        let mut spec = api();
        let greeting = spec.env.remove("GREETING").unwrap();
        spec.secret_env
            .insert("GREETING".into(), SecretEnv::with_value(&greeting));
        assert_eq!(plan(&spec, "api", &manager).0.action(), Action::NoOp);

        spec.secret_env
            .insert("GREETING".into(), SecretEnv::with_value("s3cret 'value'"));
        let (diff, steps) = plan(&spec, "api", &manager);
        assert_eq!(
            diff.attributes,
            [AttrChange::new(
                "env.GREETING",
                AttrValue::Sensitive,
                AttrValue::Sensitive
            )]
        );
        assert!(!format!("{diff:?}").contains("s3cret"));
        assert!(!format!("{diff:?}").contains("hello world"));
        // Nor in the specification's debug form.
        assert!(
            format!("{spec:?}").contains(r#"secret_env: {"GREETING": SecretEnv"#),
            "{spec:?}"
        );
        assert!(!format!("{spec:?}").contains("s3cret"));
        let step = &steps[0].step;
        assert_eq!(
            step.description,
            "update service api (env.GREETING) and wait for its tasks"
        );
        // The value reaches the CLI in its environment, the flag names the key only.
        assert!(
            step.script.contains(&format!(
                "GREETING={} timeout \"$budget\" docker service update",
                quote("s3cret 'value'")
            )),
            "{}",
            step.script
        );
        assert!(step.script.contains(&flag("--env-add", "GREETING")));
        // Created: shown as sensitive too.
        let diff = spec.diff("api2", &facts(&manager)).unwrap();
        let greeting = diff
            .attributes
            .iter()
            .find(|a| a.name == "env.GREETING")
            .unwrap();
        assert_eq!(greeting.after, AttrValue::Sensitive);
        assert!(!format!("{diff:?}").contains("s3cret"));
    }

    /// Runs `script` as apply does (`sh -s`, the script on stdin) with a fake `docker` and
    /// `timeout` first on PATH, which record their argv and `$GREETING` and answer as a
    /// converged service would; returns (argv lines, values of `$GREETING` docker saw).
    fn run_with_fake_docker(script: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let fake = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let record = format!(
            "for a in \"$0\" \"$@\"; do printf 'argv %s\\n' \"$a\"; done >> {log}\n",
            log = quote(&log.display().to_string())
        );
        fake(
            "docker",
            &format!(
                "{record}printf 'env %s\\n' \"${{GREETING-(unset)}}\" >> {log}.env\ncase \"$*\" in\n*io.corral.managed*) echo default ;;\n'service ls'*) echo 'api 2/2'; echo 'web 1/1' ;;\nesac\nexit 0\n",
                log = quote(&log.display().to_string())
            ),
        );
        let real_timeout = String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", "command -v timeout"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        fake(
            "timeout",
            &format!("{record}exec {} \"$@\"\n", real_timeout.trim()),
        );
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .env("PATH", path)
            .env_remove("GREETING")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(crate::apply::change_script(script).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
        (read(&log), read(&log.with_extension("env")))
    }

    /// A service scaled down (as `docker stack deploy` leaves it, without waiting) runs
    /// `2/1` for a while: the wait goes on until the count is `1/1`, through a real `sh`
    /// with a fake `docker` that counts `2/1` once.
    #[test]
    fn the_wait_goes_on_while_a_service_scaled_down_runs_too_many_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            format!(
                "#!/bin/sh\ncase \"$*\" in\n'service ls'*) n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}; if [ $n -lt 2 ]; then echo 'web 2/1'; else echo 'web 1/1'; fi ;;\nesac\nexit 0\n",
                c = quote(&count.display().to_string())
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = converge_script("web", "", "true", 30, 0);
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2");
    }

    /// A `secret_env` value is never in a command line (`ps` shows those to every user):
    /// the create and the update give Docker's CLI `--env KEY` / `--env-add KEY` and the
    /// value in its environment, through a real `sh` reading the script on stdin.
    #[test]
    fn a_secret_env_value_is_in_no_command_line() {
        let manager = manager("cluster");
        let secret = "s3cret 'value' $(touch /nonexistent) \\\n; x";
        let mut spec = api();
        spec.env.remove("GREETING");
        spec.secret_env
            .insert("GREETING".into(), SecretEnv::with_value(secret));
        for (name, action) in [("api", "update"), ("web", "create")] {
            let steps = plan(&spec, name, &manager).1;
            assert_eq!(steps.len(), 1);
            let (argv, env) = run_with_fake_docker(&steps[0].step.script);
            assert!(
                argv.contains(&format!("argv service\nargv {action}\n")),
                "{argv}"
            );
            let flag = match action {
                "create" => "--env",
                _ => "--env-add",
            };
            assert!(
                argv.contains(&format!("argv {flag}\nargv GREETING\n")),
                "{argv}"
            );
            assert!(!argv.contains("s3cret"), "a value in argv:\n{argv}");
            // The CLI that creates or updates saw the value, whole.
            assert!(env.contains(&format!("env {secret}\n")), "{env}");
        }
    }

    #[test]
    fn a_variable_no_longer_declared_is_removed_without_showing_its_value() {
        let manager = manager("cluster");
        let mut spec = api();
        spec.env.remove("GREETING");
        let (diff, steps) = plan(&spec, "api", &manager);
        assert_eq!(
            diff.attributes,
            [AttrChange::new(
                "env.GREETING",
                AttrValue::Sensitive,
                AttrValue::Absent
            )]
        );
        assert!(steps[0].step.script.contains("--env-rm GREETING api"));
    }

    #[test]
    fn each_changed_attribute_is_shown_and_updated_with_its_flags() {
        type Change = fn(&mut SwarmServiceSpec);
        let cases: Vec<(Change, &[&str], Vec<String>)> = vec![
            (
                |s| s.image = "local/busybox:2".into(),
                &["image"],
                vec![flag("--image", "local/busybox:2")],
            ),
            (
                |s| s.command = strings(&["sleep", "it's late"]),
                &["command"],
                vec![flag("--args", r"'sleep' 'it'\''s late'")],
            ),
            (|s| s.replicas = Some(3), &["replicas"], vec![flag("--replicas", "3")]),
            (
                |s| s.constraints = strings(&["node.labels.role==edge", "node.role==worker"]),
                &["constraints"],
                vec![flag("--constraint-add", "node.role==worker")],
            ),
            (
                |s| s.constraints.clear(),
                &["constraints"],
                vec![flag("--constraint-rm", "node.labels.role==edge")],
            ),
            (
                |s| s.placement_preferences.insert(0, "spread=node.labels.rack".into()),
                &["placement_preferences"],
                vec![[
                    flag("--placement-pref-rm", "spread=node.labels.zone"),
                    flag("--placement-pref-add", "spread=node.labels.rack"),
                    flag("--placement-pref-add", "spread=node.labels.zone"),
                ]
                .join(" ")],
            ),
            (
                |s| {
                    s.ports.push(Port {
                        published: 80,
                        target: 8080,
                        mode: PublishMode::Ingress,
                        protocol: Protocol::Tcp,
                    })
                },
                &["ports"],
                vec![flag("--publish-add", "published=80,target=8080,protocol=tcp,mode=ingress")],
            ),
            (
                |s| {
                    s.env.insert("APP_ENV".into(), "staging".into());
                    s.env.insert("NEW".into(), "1".into());
                },
                &["env.APP_ENV", "env.NEW"],
                vec![flag("--env-add", "APP_ENV=staging"), flag("--env-add", "NEW=1")],
            ),
            (
                |s| s.mounts[0].readonly = false,
                &["mounts./srv/api"],
                vec![flag("--mount-add", "type=bind,source=/srv/api,target=/srv/api")],
            ),
            (
                |s| {
                    s.mounts.remove(1);
                },
                &["mounts./var/cache/api"],
                vec![flag("--mount-rm", "/var/cache/api")],
            ),
            (
                |s| s.networks = strings(&["appnet", "frontnet"]),
                &["networks"],
                vec!["--network-rm dbnet --network-add frontnet".into()],
            ),
            (
                |s| {
                    s.update = UpdatePolicy {
                        parallelism: Some(2),
                        ..UpdatePolicy::default()
                    }
                },
                &["update.delay", "update.order", "update.failure_action", "update.monitor"],
                vec!["--update-delay 0s --update-order stop-first --update-failure-action pause --update-monitor 5s".into()],
            ),
            (
                |s| {
                    s.labels.remove("tier");
                    s.labels.insert("owner".into(), "ops team".into());
                },
                &["labels.owner", "labels.tier"],
                vec![[flag("--label-add", "owner=ops team"), flag("--label-rm", "tier")].join(" ")],
            ),
        ];
        let manager = manager("cluster");
        for (change, attributes, flags) in cases {
            let mut spec = api();
            change(&mut spec);
            let (diff, steps) = plan(&spec, "api", &manager);
            assert_eq!(diff.action(), Action::Update, "{attributes:?}");
            assert_eq!(names(&diff), attributes);
            assert_eq!(steps.len(), 1);
            assert_eq!(steps[0].machine, "n2");
            let script = &steps[0].step.script;
            assert!(
                script.contains("docker service update --detach=false --quiet --"),
                "{script}"
            );
            for flag in flags {
                assert!(script.contains(&format!(" {flag} ")), "{flag}\n{script}");
            }
            assert!(script.contains(&DockerObject::Service.owned_guard("api", "default")));
            assert_valid_sh(script);
        }
    }

    #[test]
    fn shown_values_read_as_written() {
        let manager = manager("cluster");
        let mut spec = agent();
        spec.ports[0].published = 8081;
        spec.mounts.push(ServiceMount {
            kind: MountKind::Bind,
            source: "/srv/shared".into(),
            target: "/data".into(),
            readonly: true,
        });
        let (diff, steps) = plan(&spec, "agent", &manager);
        assert_eq!(
            diff.attributes,
            [
                AttrChange::scalar("ports", "8080:8080/tcp (host)", "8081:8080/tcp (host)"),
                AttrChange::new(
                    "mounts./data",
                    AttrValue::Absent,
                    AttrValue::Scalar("bind /srv/shared, readonly".into())
                ),
            ]
        );
        // `--publish-rm` goes by target, protocol and mode: the old port goes, the new one
        // comes, in one update.
        let script = &steps[0].step.script;
        let ports = [
            flag("--publish-rm", "target=8080,protocol=tcp,mode=host"),
            flag(
                "--publish-add",
                "published=8081,target=8080,protocol=tcp,mode=host",
            ),
        ];
        assert!(script.contains(&ports.join(" ")), "{script}");
    }

    #[test]
    fn ports_removed_with_a_port_that_stays_go_in_an_update_of_their_own() {
        let port = |published| PortShape {
            published,
            target: 80,
            protocol: "tcp".into(),
            mode: "ingress".into(),
        };
        let have = Shape {
            ports: BTreeSet::from([port(80), port(8080)]),
            ..api().shape(&Versions::new())
        };
        let want = Shape {
            ports: BTreeSet::from([port(80)]),
            ..api().shape(&Versions::new())
        };
        let delta = compare(&want, &have, &BTreeSet::new());
        assert_eq!(
            delta.ports_first,
            [flag("--publish-rm", "target=80,protocol=tcp,mode=ingress")]
        );
        assert_eq!(
            delta.flags,
            [flag(
                "--publish-add",
                "published=80,target=80,protocol=tcp,mode=ingress"
            )]
        );
    }

    #[test]
    fn a_mode_change_replaces_the_service() {
        let manager = manager("cluster");
        let spec = SwarmServiceSpec {
            mode: Mode::Replicated,
            ..agent()
        };
        let (diff, steps) = plan(&spec, "agent", &manager);
        assert_eq!(diff.action(), Action::Replace);
        assert_eq!(
            diff.attributes,
            [
                AttrChange::scalar("mode", "global", "replicated"),
                AttrChange::new("replicas", AttrValue::Absent, AttrValue::Scalar("1".into())),
            ]
        );
        assert!(diff
            .reason
            .unwrap()
            .contains("service mode change is not allowed"));
        let script = &steps[0].step.script;
        let guard = script
            .find(&DockerObject::Service.owned_guard("agent", "default"))
            .unwrap();
        let rm = script.find("docker service rm agent").unwrap();
        let create = script.find("docker service create").unwrap();
        assert!(guard < rm && rm < create, "{script}");
        assert!(script.contains("--replicas 1"));
        assert_valid_sh(script);
    }

    #[test]
    fn a_service_of_another_project_is_adopted_when_it_matches_and_never_changed() {
        let manager = manager("cluster");
        let adopted = SwarmServiceSpec {
            scope: scope("other"),
            ..api()
        };
        assert_eq!(plan(&adopted, "api", &manager).0.action(), Action::NoOp);
        let differs = SwarmServiceSpec {
            replicas: Some(5),
            ..adopted.clone()
        };
        let error = differs
            .diff_with("api", &facts(&manager), &recorded_versions())
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("differs (replicas), and was not created by project other; corral does not change what it does not manage"),
            "{error}"
        );
        assert!(differs
            .steps_with("api", &facts(&manager), &recorded_versions())
            .is_err());
    }

    #[test]
    fn a_new_version_of_a_secret_is_swapped_in_with_one_update() {
        let manager = manager("cluster");
        let mut versions = recorded_versions();
        versions.insert(
            (ObjectClass::Secret, "api_token".into()),
            Some("api_token_2f9c0a1b3d4e".into()),
        );
        let facts = facts(&manager);
        let diff = api().diff_with("api", &facts, &versions).unwrap();
        assert_eq!(diff.action(), Action::Update);
        assert_eq!(
            diff.attributes,
            [AttrChange::scalar(
                "secrets.api_token",
                "api_token_v1",
                "api_token_2f9c0a1b3d4e"
            )]
        );
        let steps = api().steps_with("api", &facts, &versions).unwrap();
        let script = &steps[0].step.script;
        assert!(
            script.contains(&format!(
                "docker service update --detach=false --quiet {} {} api",
                flag("--secret-rm", "api_token_v1"),
                flag(
                    "--secret-add",
                    "source=api_token_2f9c0a1b3d4e,target=api_token"
                )
            )),
            "{script}"
        );
        // Not known yet (a swarm without its key): shown so, never guessed.
        versions.insert((ObjectClass::Secret, "api_token".into()), None);
        let diff = api().diff_with("api", &facts, &versions).unwrap();
        assert_eq!(
            diff.attributes,
            [AttrChange::scalar(
                "secrets.api_token",
                "api_token_v1",
                KNOWN_AFTER_APPLY
            )]
        );
    }

    #[test]
    fn a_removed_target_keeps_the_other_targets_of_the_same_object() {
        let manager = manager("cluster");
        let facts = facts(&manager);
        // The recorded `api` has api_token_v1 at `api_token`; declared at a second target
        // too, then the recorded one dropped: `--secret-rm` (by name) would take both.
        let spec = SwarmServiceSpec {
            secrets: vec![ObjectRef {
                source: "api_token".into(),
                target: Some("/etc/token".into()),
            }],
            ..api()
        };
        let steps = spec
            .steps_with("api", &facts, &recorded_versions())
            .unwrap();
        let script = &steps[0].step.script;
        assert!(
            script.contains(&flag("--secret-rm", "api_token_v1")),
            "{script}"
        );
        assert!(
            script.contains(&flag(
                "--secret-add",
                "source=api_token_v1,target=/etc/token"
            )),
            "{script}"
        );
        let both = SwarmServiceSpec {
            secrets: vec![
                ObjectRef {
                    source: "api_token".into(),
                    target: None,
                },
                ObjectRef {
                    source: "api_token".into(),
                    target: Some("/etc/token".into()),
                },
            ],
            ..api()
        };
        let mut versions = recorded_versions();
        versions.insert(
            (ObjectClass::Secret, "api_token".into()),
            Some("api_token_v1".into()),
        );
        // Added at a second target only: nothing removed, nothing re-added.
        let script = &both.steps_with("api", &facts, &versions).unwrap()[0]
            .step
            .script;
        assert!(!script.contains("--secret-rm"), "{script}");
    }

    #[test]
    fn a_missing_service_is_created_with_corrals_label_and_waited_for() {
        let manager = manager("cluster");
        let spec = SwarmServiceSpec {
            secret_env: BTreeMap::from([("TOKEN".to_owned(), SecretEnv::with_value("t0ken"))]),
            ..api()
        };
        let (diff, steps) = plan(&spec, "web", &manager);
        assert_eq!(diff.action(), Action::Create);
        assert_eq!(
            names(&diff),
            [
                "image",
                "command",
                "mode",
                "replicas",
                "constraints",
                "placement_preferences",
                "env.APP_ENV",
                "env.GREETING",
                "env.RELEASE",
                "env.TOKEN",
                "mounts./srv/api",
                "mounts./var/cache/api",
                "networks",
                "secrets.api_token",
                "configs./etc/api.conf",
                "update.parallelism",
                "update.delay",
                "update.order",
                "update.failure_action",
                "update.monitor",
                "labels.tier",
            ]
        );
        assert!(!format!("{diff:?}").contains("t0ken"));
        let step = &steps[0];
        assert_eq!(step.machine, "n2");
        assert_eq!(
            step.step.description,
            "create service web and wait for its tasks"
        );
        let script = &step.step.script;
        let create = [
            "out=$(TOKEN=t0ken timeout \"$budget\" docker service create --detach=false --quiet --name web".into(),
            flag("--label", "io.corral.managed=default"),
            "--replicas 2".into(),
            flag("--constraint", "node.labels.role==edge"),
            flag("--placement-pref", "spread=node.labels.zone"),
            flag("--env", "APP_ENV=prod"),
            flag("--env", "GREETING=hello world"),
            flag("--env", "RELEASE=2"),
            flag("--env", "TOKEN"),
            flag("--mount", "type=bind,source=/srv/api,target=/srv/api,readonly"),
            flag("--mount", "type=volume,source=api-cache,target=/var/cache/api"),
            "--network appnet --network dbnet".into(),
            flag("--secret", "source=api_token_v1,target=api_token"),
            flag("--config", "source=api_conf_v1,target=/etc/api.conf"),
            "--update-parallelism 2 --update-delay 10s --update-order start-first --update-failure-action rollback --update-monitor 2s".into(),
            flag("--label", "tier=app"),
            "local/busybox:1 sleep 86400 2>&1) || rc=$?\n".into(),
        ];
        assert!(script.contains(&create.join(" ")), "{script}");
        // Waits for the tasks, within a budget that covers the rolling update.
        assert!(script.contains("budget=133\n"), "{script}");
        assert!(script.contains(&format!("docker service ls --filter {}", quote("name=web"))));
        assert!(script.contains("[ \"$desired\" -ge 0 ]"));
        assert_valid_sh(script);
    }

    #[test]
    fn a_swarm_created_by_the_same_apply_gets_the_service_on_its_first_manager() {
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: None,
            inventory: BTreeMap::new(),
        };
        let spec = agent();
        assert_eq!(spec.diff("agent", &facts).unwrap().action(), Action::Create);
        let steps = spec.steps("agent", &facts).unwrap();
        assert_eq!(steps[0].machine, "n1");
        let script = &steps[0].step.script;
        assert!(script.contains(&format!(
            "--mode global {}",
            flag(
                "--publish",
                "published=8080,target=8080,protocol=tcp,mode=host"
            )
        )));
        // A global service must run somewhere: at least one eligible node.
        assert!(script.contains("[ \"$desired\" -ge 1 ]"));
    }

    #[test]
    fn configuration_values_reach_docker_as_they_are() {
        let hostile = "$(touch /tmp/corral-pwned) `id` \"q\" 'q' \\ ; | & \n next";
        let spec = SwarmServiceSpec {
            command: strings(&["sh", "-c", hostile, "-"]),
            env: map(&[("V", hostile)]),
            labels: map(&[("note", hostile)]),
            constraints: strings(&["node.labels.x==$(id)"]),
            ..agent()
        };
        let command = spec.create_command("web", &Versions::new());
        // The words docker would receive, printed by sh one per line (NUL-separated here).
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -- {}; printf '%s\\0' \"$@\"",
                command.strip_prefix("docker ").unwrap()
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
        let argv: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_owned)
            .collect();
        assert!(argv.contains(&format!("V={hostile}")), "{argv:?}");
        assert!(argv.contains(&format!("note={hostile}")));
        assert!(argv.contains(&"node.labels.x==$(id)".to_owned()));
        assert!(argv.ends_with(&strings(&["local/busybox:1", "sh", "-c", hostile, "-"])));
        assert!(!std::path::Path::new("/tmp/corral-pwned").exists());
    }

    #[test]
    fn args_survive_the_clis_shlex() {
        let command = strings(&[
            "sh",
            "-c",
            "echo 'a b' \"$X\" \\n # not a comment",
            "",
            "it's",
        ]);
        assert_eq!(shlex::split(&args_value(&command)).unwrap(), command);
    }

    #[test]
    fn a_paused_update_plans_the_configured_command_again() {
        let manager = manager("failures");
        let (diff, steps) = plan(&agent(), "agent", &manager);
        assert_eq!(
            diff.attributes,
            [AttrChange::scalar("command", "false", "httpd -f -p 8080")]
        );
        let script = &steps[0].step.script;
        assert!(
            script.contains(&flag("--args", "'httpd' '-f' '-p' '8080'")),
            "{script}"
        );
    }

    #[test]
    fn services_of_the_project_that_are_not_declared_are_orphans() {
        let manager = manager("failures");
        let addresses = |declared: &BTreeSet<Address>, project: &str| -> Vec<String> {
            orphans(&manager, project, declared)
                .unwrap()
                .iter()
                .map(|o| o.address.to_string())
                .collect()
        };
        assert_eq!(
            addresses(&BTreeSet::new(), "default"),
            [
                "swarm/service.agent",
                "swarm/service.api",
                "swarm/service.stuck"
            ]
        );
        let declared = BTreeSet::from([
            Address::new(KIND, "api", None),
            Address::new(KIND, "agent", None),
        ]);
        assert_eq!(addresses(&declared, "default"), ["swarm/service.stuck"]);
        assert!(addresses(&BTreeSet::new(), "other").is_empty());
        let orphan = &orphans(&manager, "default", &declared).unwrap()[0];
        assert_eq!(
            orphan.attributes,
            [AttrChange::new(
                "image",
                AttrValue::Scalar("local/busybox:1".into()),
                AttrValue::Absent
            )]
        );
    }

    #[test]
    fn the_delete_script_refuses_a_service_of_another_project_and_is_idempotent() {
        let script = DockerObject::Service.delete_script("web", "my project");
        assert!(script.starts_with("set -e\nif docker service inspect web >/dev/null 2>&1; then\n"));
        assert!(script.contains(
            "index .Spec.Labels \"io.corral.managed\"}}' web)\" = 'my project' ] || { echo 'corral: service 'web' is not managed by project ''my project''; left alone'; exit 1; }"
        ), "{script}");
        let guard = script.find("index .Spec.Labels").unwrap();
        let rm = script.find("docker service rm web").unwrap();
        assert!(guard < rm);
        assert_valid_sh(&script);
    }

    #[test]
    fn ingress_ports_on_a_kernel_without_ipvs_are_a_warning() {
        let mut host = HostFacts::default();
        host.probes.insert(
            kernel::KEY.into(),
            recorded::cluster("kernel-features", "lab", &kernel::probe()),
        );
        let members = BTreeMap::from([(
            "n1".to_owned(),
            ClusterMember {
                ip: "10.0.0.1".parse().unwrap(),
                facts: &host,
            },
        )]);
        let facts = ClusterFacts {
            members,
            manager: None,
            inventory: BTreeMap::new(),
        };
        // The recorded agent publishes in host mode: nothing to say.
        assert!(agent().warnings("agent", &facts).is_empty());
        let mut spec = agent();
        spec.ports[0].mode = PublishMode::Ingress;
        let warnings = spec.warnings("agent", &facts);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .contains("publishes 8080/tcp in ingress mode, but the kernel of n1 has no IPVS"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("`mode: host`"));
    }

    #[test]
    fn a_paused_update_is_a_warning() {
        let paused = manager("failures");
        let warnings = agent().warnings("agent", &facts(&paused));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("Docker paused the last update of swarm/service.agent: update paused due to failure or early termination of task "),
            "{}",
            warnings[0]
        );
        // api's update completed.
        assert!(api().warnings("api", &facts(&paused)).is_empty());
    }

    #[test]
    fn start_first_with_host_ports_is_a_warning() {
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: None,
            inventory: BTreeMap::new(),
        };
        let mut spec = agent();
        spec.update.order = Some(UpdateOrder::StartFirst);
        let warnings = spec.warnings("agent", &facts);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("host-mode port already in use"));
    }

    #[test]
    fn an_image_without_digest_matches_the_one_docker_pinned() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(same_image("local/busybox:1", "local/busybox:1"));
        assert!(same_image("busybox", &format!("busybox:latest@{digest}")));
        assert!(same_image(
            "docker.io/library/busybox:1.36",
            &format!("busybox:1.36@{digest}")
        ));
        assert!(same_image(
            "registry.example:5000/app",
            "registry.example:5000/app:latest"
        ));
        assert!(same_image(
            &format!("busybox@{digest}"),
            &format!("busybox:latest@{digest}")
        ));
        assert!(!same_image(
            "busybox:1.36",
            &format!("busybox:1.37@{digest}")
        ));
        assert!(!same_image(
            &format!("busybox@{digest}"),
            &format!("busybox:latest@{other}")
        ));
        assert!(!same_image(&format!("busybox@{digest}"), "busybox:latest"));
        assert!(!same_image("registry.example:5000/app", "app"));
    }

    #[test]
    fn image_references_are_checked() {
        for good in [
            "busybox",
            "local/busybox:1",
            "registry.example:5000/team/app:1.4-rc_1",
            &format!("busybox@sha256:{}", "0".repeat(64)),
            "localhost/app",
        ] {
            assert_eq!(check_image(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-rm",
            "Busybox",
            "busy box",
            "app:",
            "app:-x",
            "app@sha256:xyz",
            "a//b",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_as_docker_takes_them() {
        let parsed = |text| DockerDuration::parse(text).map(DockerDuration::duration);
        assert_eq!(parsed("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parsed("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parsed("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parsed("0"), Ok(Duration::ZERO));
        for bad in ["", "10", "1.5s", "10 s", "-1s", "5d", "s", "99999999999h"] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
        for (text, shown) in [
            ("90s", "1m30s"),
            ("1500ms", "1s500ms"),
            ("0", "0s"),
            ("2h", "2h"),
        ] {
            assert_eq!(DockerDuration::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn a_service_that_does_not_converge_shows_its_failing_tasks() {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Row {
            name: String,
            node: String,
            desired_state: String,
            current_state: String,
            error: String,
        }
        // The recorded tasks, as TASK_FORMAT prints them.
        let recorded = recorded::cluster("service-ps", "failures", &swarm::service_ps_probe());
        let lines: String = recorded
            .output
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let r: Row = serde_json::from_str(l).unwrap();
                let fields = [r.name, r.node, r.desired_state, r.current_state, r.error];
                fields.join("|") + "\n"
            })
            .collect();
        let mut awk = std::process::Command::new("awk")
            .args(["-F|", TASK_FILTER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        awk.stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let shown = String::from_utf8(awk.wait_with_output().unwrap().stdout).unwrap();
        assert!(
            shown.contains("on no node: Pending")
                && shown.contains(
                    "\"no suitable node (scheduling constraints not satisfied on 3 nodes)\""
                ),
            "{shown}"
        );
        assert!(shown.contains(": Failed "), "{shown}");
        assert!(shown.contains("\"task: non-zero exit (1)\""), "{shown}");
        assert!(
            shown.contains("\"host-mode port already in use on 1 node\""),
            "{shown}"
        );
        // Running tasks, and tasks shut down without an error, are not shown.
        assert!(!shown.contains(": Running"), "{shown}");
        assert!(!shown.contains(": Shutdown"), "{shown}");
    }

    #[test]
    fn the_wait_covers_each_batch_of_the_rolling_update() {
        // api: 2 replicas, 2 at a time: one batch of 10 s delay + 2 s monitor.
        assert_eq!(api().wait_budget(), 120 + 13);
        // agent: global on 3 members, one at a time, 5 s monitor.
        assert_eq!(agent().wait_budget(), 120 + 3 * 6);
    }

    // -----------------------------------------------------------------------------------
    // Loading: checks and links

    const INVENTORY: &str = "kind: infrastructure/machine\nname: n1\nspecification: { hostname: n1, ip: 10.1.0.11 }\n---\nkind: infrastructure/machine\nname: n2\nspecification: { hostname: n2, ip: 10.1.0.12 }\n---\nkind: swarm/cluster\nname: main\nspecification: { managers: [n1], workers: [n2] }\n---\nkind: swarm/network\nname: appnet\nspecification: { subnet: 10.20.0.0/24 }\n---\nkind: gluster/volume\nname: shared\nspecification:\n  bricks: [{ machine: n1, path: /data/b }, { machine: n2, path: /data/b }]\n  mount: { machines: all, path: /srv/shared }\n---\n";

    fn load(service: &str) -> Result<crate::config::Config, crate::config::error::ConfigErrors> {
        load_with(service, &[])
    }

    /// [`load`] with `files` (name, bytes) beside the configuration.
    fn load_with(
        service: &str,
        files: &[(&str, &[u8])],
    ) -> Result<crate::config::Config, crate::config::error::ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let path = dir.path().join("site.yaml");
        std::fs::write(&path, format!("{INVENTORY}{service}")).unwrap();
        crate::config::load(&[path], &Default::default())
    }

    fn rendered(errors: &crate::config::error::ConfigErrors) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let mut out = String::new();
        for error in &errors.errors {
            handler.render_report(&mut out, error).unwrap();
        }
        out
    }

    #[test]
    fn a_service_comes_after_its_swarm_networks_and_gluster_volumes() {
        let config = load_with(
            "kind: swarm/service\nname: web\nspecification:\n  image: local/busybox:1\n  command: [httpd, -f, -p, \"8080\", -h, /]\n  mode: global\n  networks: [appnet]\n  ports: [{ published: 8080, target: 8080, mode: host }]\n  mounts: [{ type: bind, source: /srv/shared/www, target: /data }]\n  constraints: [\"node.labels.tier==front\"]\n  secret_env: { TOKEN: { source: token.txt } }\n  update: { delay: 10s, order: start-first }\n",
            &[("token.txt", b"hunter2\n")],
        )
        .unwrap_or_else(|e| panic!("{}", rendered(&e)));
        let web = config
            .resources
            .iter()
            .find(|r| r.address.kind == KIND)
            .unwrap();
        let implied: Vec<String> = web.implied.iter().map(Address::to_string).collect();
        assert_eq!(
            implied,
            [
                "swarm/cluster.main",
                "swarm/network.appnet",
                "gluster/volume.shared"
            ]
        );
        let crate::kinds::Spec::SwarmService(spec) = &web.spec else {
            panic!("not a service");
        };
        assert_eq!(spec.scope.managers, ["n1"]);
        assert_eq!(spec.update.delay, duration("10s"));
        assert_eq!(spec.command, ["httpd", "-f", "-p", "8080", "-h", "/"]);
        // Read from its file, without the line break an editor ends it with.
        assert_eq!(spec.secret_env["TOKEN"].text(), "hunter2");
    }

    /// A secret environment value is never written in the configuration (it would be in
    /// git and in the configuration's digest): refused, with the two forms as the hint, and
    /// never quoted; what cannot reach Docker through the CLI's environment is refused too.
    #[test]
    fn secret_env_values_come_from_the_environment_or_a_file_never_inline() {
        let errors = load_with(
            concat!(
                "kind: swarm/service\nname: web\nspecification:\n",
                "  image: local/busybox:1\n",
                "  secret_env:\n",
                "    INLINE: hunter2-inline-value\n",
                "    NUMBER: 12345\n",
                "    UNSET: { from_env: CORRAL_TEST_NEVER_SET_VARIABLE }\n",
                "    BOTH: { from_env: HOME, source: token.txt }\n",
                "    DOCKER_HOST: { source: token.txt }\n",
                "    PATH: { source: token.txt }\n",
                "    \"A-B\": { source: token.txt }\n",
                "    NUL: { source: nul.txt }\n",
                "    GOOD: { source: token.txt }\n",
            ),
            &[("token.txt", b"hunter2-file\n"), ("nul.txt", b"hunter2\0x")],
        )
        .unwrap_err();
        let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`A-B` cannot be a secret environment variable: a secret environment variable's name is letters, digits and `_`, not starting with a digit",
                "`BOTH` needs exactly one of `from_env:` and `source:`",
                "`DOCKER_HOST` cannot be a secret environment variable: the Docker CLI that sets it reads this variable itself (the value reaches Docker through the CLI's environment)",
                "the value of secret environment variable `INLINE` is written in the configuration",
                "the value of `NUL` holds a NUL byte, which no environment variable can",
                "the value of secret environment variable `NUMBER` is written in the configuration",
                "`PATH` cannot be a secret environment variable: the Docker CLI that sets it reads this variable itself (the value reaches Docker through the CLI's environment)",
                "the environment variable `CORRAL_TEST_NEVER_SET_VARIABLE` is not set",
            ]
        );
        let help = errors.errors[3].help.as_deref().unwrap_or_default();
        assert!(
            help.contains("`KEY: { from_env: VARIABLE }`")
                && help.contains("`KEY: { source: FILE }`"),
            "{help}"
        );
        let shown = rendered(&errors);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("site.yaml:"), "{shown}");
    }

    #[test]
    fn an_unknown_network_is_an_error_with_a_suggestion() {
        let errors = load(
            "kind: swarm/service\nname: web\nspecification:\n  image: local/busybox:1\n  networks: [appnet, apnet]\n",
        )
        .unwrap_err();
        assert_eq!(errors.errors.len(), 1, "{}", rendered(&errors));
        assert_eq!(
            errors.errors[0].message,
            "no `swarm/network` is named `apnet`"
        );
        assert_eq!(
            errors.errors[0].help.as_deref(),
            Some("did you mean `appnet`?")
        );
        assert!(rendered(&errors).contains("site.yaml:"));
    }

    #[test]
    fn checks_report_each_field_they_cannot_use() {
        let errors = load(concat!(
            "kind: swarm/service\nname: web\nspecification:\n",
            "  image: Local/Busybox\n",
            "  mode: global\n",
            "  replicas: 2\n",
            "  constraints: [\"node.labels.tier\"]\n",
            "  placement_preferences: [binpack]\n",
            "  ports: [{ published: 0, target: 80 }, { published: 443, target: 443 }, { published: 443, target: 8443 }]\n",
            "  env: { \"BAD KEY\": x, TOKEN: y }\n",
            "  secret_env: { TOKEN: hunter2-very-secret }\n",
            "  mounts: [{ type: bind, source: srv, target: /a }, { type: volume, source: \"a,b\", target: /a }]\n",
            "  labels: { io.corral.managed: x }\n",
        ))
        .unwrap_err();
        let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`Local/Busybox` is not an image reference: a repository path is lowercase letters, digits and `._-` between `/`",
                "`replicas` is for replicated services: a global service runs one task on every eligible node",
                "`node.labels.tier` is not a placement constraint",
                "`binpack` is not a placement preference",
                "a port is from 1 to 65535",
                "443/tcp is published twice",
                "`BAD KEY` cannot be an environment variable",
                "`TOKEN` is in both `env` and `secret_env`",
                "`srv` is not an absolute path",
                "`/a` is mounted twice",
                "`a,b` is not a volume name ([A-Za-z0-9] then [A-Za-z0-9_.-])",
                "`io.corral.managed` cannot be a label here",
            ]
        );
        let shown = rendered(&errors);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// A manager's facts of scripts/record-run-state-fixtures.sh's `case`: services, what
    /// runs, nodes.
    fn run_state_manager(case: &str) -> HostFacts {
        let checked = |fact: &str, probe: &Probe| {
            recorded::checked(
                &format!("run-state/{fact}/{case}"),
                probe,
                "run scripts/record-run-state-fixtures.sh",
            )
        };
        let mut facts = HostFacts::default();
        for (fact, probe) in [
            ("service-inspect", swarm::service_inspect_probe()),
            ("service-run", swarm::service_run_probe()),
            ("node-inspect", swarm::node_inspect_probe()),
        ] {
            facts
                .probes
                .insert(probe.key.clone(), checked(fact, &probe));
        }
        facts
    }

    /// `web` and `stuck` as scripts/record-run-state-fixtures.sh creates them.
    fn run_state_specs() -> [(&'static str, SwarmServiceSpec); 2] {
        let web = SwarmServiceSpec {
            image: "local/busybox:1".into(),
            command: strings(&[
                "sh",
                "-c",
                "mkdir -p /w && echo ok >/w/index.html && httpd -f -p 8080 -h /w",
            ]),
            mode: Mode::Global,
            ports: vec![Port {
                published: 18081,
                target: 8080,
                mode: PublishMode::Host,
                protocol: Protocol::Tcp,
            }],
            scope: scope("default"),
            ..SwarmServiceSpec::default()
        };
        let stuck = SwarmServiceSpec {
            image: "local/busybox:1".into(),
            command: strings(&["sleep", "86400"]),
            constraints: strings(&["node.labels.role==nowhere"]),
            scope: scope("default"),
            ..SwarmServiceSpec::default()
        };
        [("web", web), ("stuck", stuck)]
    }

    /// The plan compared specs only, and said nothing of a service whose tasks did not run
    /// (issue 22): now its tasks are compared too, the reason is the tasks', and the step is
    /// a forced update, labelled so.
    #[test]
    fn a_service_that_does_not_run_as_declared_is_drift_with_a_forced_update() {
        let converged = run_state_manager("converged");
        let (diff, steps) = plan(&run_state_specs()[0].1, "web", &converged);
        assert_eq!(diff.action, Some(Action::NoOp), "{diff:?}");
        assert!(steps.is_empty());

        let taken = run_state_manager("port-taken");
        let [(_, web), (_, stuck)] = run_state_specs();
        let (diff, steps) = plan(&web, "web", &taken);
        assert_eq!(diff.action, Some(Action::Update), "{diff:?}");
        assert_eq!(diff.attributes.len(), 1, "{diff:?}");
        let AttrValue::Scalar(why) = &diff.attributes[0].before else {
            panic!("{diff:?}")
        };
        assert!(
            why.starts_with("2/3 tasks running: n2: task failed: starting container failed:")
                && why.ends_with("port is already allocated"),
            "{why}"
        );
        assert!(diff
            .reason
            .unwrap()
            .contains("docker service update --force"));
        assert_eq!(steps.len(), 1);
        assert!(
            steps[0].step.description.contains("forced update"),
            "{}",
            steps[0].step.description
        );
        assert!(
            steps[0]
                .step
                .script
                .contains("docker service update --detach=false --quiet --force web"),
            "{}",
            steps[0].step.script
        );
        let (diff, _) = plan(&stuck, "stuck", &taken);
        assert_eq!(
            diff.attributes[0].before,
            AttrValue::Scalar("0/1 tasks running: stuck.1: task pending: no suitable node (scheduling constraints not satisfied on 3 nodes)".into())
        );
    }

    /// A global service's wait counted with `service ls`, which printed `0/0` for a service
    /// whose tasks failed (a task waiting to restart is desired `ready`, not counted): it
    /// counts nodes from `service ps`, says what it waited for, and prints the tasks' errors.
    #[test]
    fn the_wait_for_a_global_service_counts_its_nodes_and_names_the_errors() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\ncase \"$*\" in\n'service inspect --format {{if .Spec.Mode.Global}}'*) echo 'global ' ;;\n'service ls'*) echo 'web 0/0' ;;\n*desired-state=ready*) printf '%s\\n' 'n1|Running 9 seconds ago' 'n2|Ready 1 second ago' ;;\n'service ps --no-trunc'*) printf '%s\\n' 'web.x|n1|Running|Running 9 seconds ago|' 'web.y|n2|Ready|Ready 1 second ago|' 'web.y|n2|Shutdown|Failed 2 seconds ago|\"starting container failed: port is already allocated\"' ;;\nesac\nexit 0\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = converge_script("web", "", "true", 0, 1);
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    dir.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains("web.y on n2: Failed 2 seconds ago \"starting container failed: port is already allocated\""),
            "{said}"
        );
        assert!(
            said.contains("corral: waited 0s for global service web to run a task on each of the 2 nodes Docker placed one on: it runs on 1"),
            "{said}"
        );
    }
}
