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
//!
//! [`cli_env`]: decide::cli_env

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::swarm_secret::{self, ObjectClass, ObjectValue};
use crate::SwarmScope;

mod check;
mod compare;
mod decide;
mod redact;
mod scripts;
#[cfg(test)]
mod tests;

pub use check::is_within;
pub use compare::{object_target, Versions};
pub use redact::{forget_comparisons, redact_inspect, STACK_LABEL_PREFIX, STACK_NAMESPACE_LABEL};
pub use scripts::{converge_script, orphans};

pub const KIND: &str = "swarm/service";

/// The attribute a service that does not run as declared shows (never a spec field).
pub const TASKS_ATTRIBUTE: &str = "tasks";

/// The plan's reason for a service whose spec is as declared but whose tasks do not all run
/// ([`TASKS_ATTRIBUTE`]).
pub const RESTART_REASON: &str = "its spec is as declared but its tasks do not all run: a forced update (`docker service update --force`) starts them again";

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
