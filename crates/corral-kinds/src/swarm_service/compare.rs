//! Comparing: a declared service and a live one as the same [`Shape`], with what Docker
//! fills in normalised away, and the attribute changes between them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::check::{split_tag, spread_descriptor};
use super::redact::{tool_label, SECRET_SAME};
use super::{DockerDuration, Mode, ObjectRef, SwarmServiceSpec};
use crate::facts::swarm::{ServiceMode, SwarmService, UpdateConfig};
use crate::facts::FactError;
use crate::plan::{AttrChange, AttrValue};
use crate::shell::quote;
use crate::swarm_secret::{self, ObjectClass, ObjectId, Purpose};
use crate::ClusterFacts;

/// A service as corral compares it: what a `swarm/service` declares, or a live service's
/// spec with what Docker fills in normalised away (see the module's documentation).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shape {
    pub(super) image: String,
    pub(super) command: Vec<String>,
    /// `replicated`, `global`, or a job mode corral does not declare.
    pub(super) mode: String,
    /// Replicated services only.
    pub(super) replicas: Option<u64>,
    pub(super) constraints: BTreeSet<String>,
    /// Spread descriptors, in order.
    pub(super) preferences: Vec<String>,
    pub(super) ports: BTreeSet<PortShape>,
    pub(super) env: BTreeMap<String, String>,
    /// By target.
    pub(super) mounts: BTreeMap<String, MountShape>,
    pub(super) networks: BTreeSet<String>,
    pub(super) update: UpdateShape,
    pub(super) labels: BTreeMap<String, String>,
    /// Object names (versions) by target file.
    pub(super) secrets: BTreeMap<String, String>,
    pub(super) configs: BTreeMap<String, String>,
}

/// The versions of the objects a service uses, by class and name; `None` when not known
/// yet (a plan of a swarm without its key).
pub type Versions = BTreeMap<(ObjectClass, String), Option<String>>;

/// How a version not known yet reads in a plan.
pub(super) const KNOWN_AFTER_APPLY: &str = "(known after apply)";

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
pub(super) struct PortShape {
    pub(super) published: u16,
    pub(super) target: u16,
    pub(super) protocol: String,
    pub(super) mode: String,
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
pub(super) struct MountShape {
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
    pub(super) fn csv(&self, target: &str) -> String {
        let readonly = if self.readonly { ",readonly" } else { "" };
        format!(
            "type={},source={},target={target}{readonly}",
            self.kind, self.source
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UpdateShape {
    pub(super) parallelism: u64,
    pub(super) delay: Duration,
    order: String,
    failure_action: String,
    pub(super) monitor: Duration,
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
    pub(super) fn fields(&self) -> [(&'static str, String, String); 5] {
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
    pub(super) fn shape(&self, versions: &Versions) -> Shape {
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

    pub(super) fn secret_keys(&self) -> BTreeSet<String> {
        self.secret_env.keys().cloned().collect()
    }
}

/// A live service as corral compares it; `network_names` maps network IDs to names.
pub(super) fn live_shape(
    service: &SwarmService,
    network_names: &BTreeMap<String, String>,
) -> Shape {
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
        networks: spec.network_names(network_names).into_iter().collect(),
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
pub(super) fn same_image(declared: &str, live: &str) -> bool {
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
pub(super) fn args_value(command: &[String]) -> String {
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
pub(super) struct Delta {
    pub(super) attributes: Vec<AttrChange>,
    /// `docker service update` flags (quoted), in the order of the attributes.
    pub(super) flags: Vec<String>,
    /// `--publish-rm` flags that must run in an update of their own first: they would
    /// also remove a port that stays (same target, protocol and mode), and the CLI does
    /// not add back a port the service already had.
    pub(super) ports_first: Vec<String>,
    /// The mode differs: swarmkit cannot change it in place.
    pub(super) mode_changed: bool,
    /// `secret_env` values, which reach the CLI in its environment (see [`cli_env`]): the
    /// flags name only their keys.
    ///
    /// [`cli_env`]: super::decide::cli_env
    pub(super) secret_env: Vec<(String, String)>,
    /// The service has no project's label (made by hand): this change adopts it.
    pub(super) adopting: bool,
}

impl Delta {
    pub(super) fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The changed attributes' names, for step descriptions (names only: never a value).
    pub(super) fn names(&self) -> String {
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
pub(super) fn compare(want: &Shape, have: &Shape, secret: &BTreeSet<String>) -> Delta {
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
pub(super) fn created(want: &Shape, secret: &BTreeSet<String>) -> Vec<AttrChange> {
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
