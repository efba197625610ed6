//! Checks at load: each field of a `swarm/service` checked before anything runs (image
//! references, keys, ports, mount paths, `secret_env` read from the operator's environment
//! or a file), and its links to the networks, volumes and objects it uses.

use std::collections::BTreeSet;

use super::compare::object_target;
use super::redact::{tool_label, STACK_LABEL_PREFIX};
use super::{Mode, MountKind, SwarmServiceSpec};
use crate::address::Address;
use crate::base::check::{CheckContext, Exposure};
use crate::base::diagnostic::{suggestion, ConfigError, Origin};
use crate::base::yaml::{Node, Span, Value};
use crate::swarm_secret::{self, ObjectClass, ObjectClassKind, ObjectValue};
use crate::{Kind, LinkContext, Links};

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
            if !crate::docker_values::valid_constraint(constraint) {
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
                || !crate::docker_values::valid_label_key(key)
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
                    after.push(Address::new(crate::swarm_network::KIND, network, None));
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
                let address = Address::new(crate::gluster_volume::KIND, volume, None);
                if is_within(&mount.source, path) && !after.contains(&address) {
                    after.push(address);
                }
            }
        }
        self.scope = scope;
        after
    }

    /// Who uses each secret and config: a new version of one restarts them.
    fn declare(&self, address: &Address, links: &mut Links) {
        for (class, refs) in [
            (ObjectClass::Secret, &self.secrets),
            (ObjectClass::Config, &self.configs),
        ] {
            for r in refs {
                let users = links
                    .object_users
                    .entry((class, r.source.clone()))
                    .or_default();
                if !users.contains(address) {
                    users.push(address.clone());
                }
            }
        }
    }

    fn secret_values<'a>(&'a self, name: &'a str) -> Vec<crate::SecretValue<'a>> {
        use std::borrow::Cow;
        self.secret_env
            .iter()
            .map(|(key, value)| crate::SecretValue {
                pass: 0,
                parts: vec![
                    Cow::Borrowed(name.as_bytes()),
                    Cow::Borrowed(key.as_bytes()),
                    Cow::Borrowed(value.value.bytes()),
                ],
            })
            .collect()
    }

    /// The environment values of services, those of stacks included (see
    /// [`super::redact_inspect`]).
    fn redact_cluster_facts(
        config: &dyn crate::declared::Declared,
        facts: &mut crate::facts::HostFacts,
    ) {
        let Some(out) = facts
            .probes
            .get_mut(crate::facts::swarm::SERVICE_INSPECT_KEY)
        else {
            return;
        };
        let mut declared = std::collections::BTreeMap::new();
        for (address, spec) in config.resources() {
            match spec {
                crate::Spec::SwarmService(s) => {
                    declared.insert(address.name.clone(), s);
                }
                crate::Spec::SwarmStack(s) => declared.extend(s.declared_services(&address.name)),
                _ => {}
            }
        }
        out.output = super::redact_inspect(&out.output, &declared);
    }

    fn forget_secret_comparisons(facts: &mut crate::facts::HostFacts) {
        if let Some(out) = facts
            .probes
            .get_mut(crate::facts::swarm::SERVICE_INSPECT_KEY)
        {
            out.output = super::forget_comparisons(&out.output);
        }
    }

    fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
        Some(crate::DockerObject::Service.delete_script(&address.name, project))
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
pub(super) fn check_image(image: &str) -> Result<(), &'static str> {
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
pub(super) fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(colon) => (&name[..last + colon], Some(&name[last + colon + 1..])),
        None => (name, None),
    }
}

/// The descriptor of `spread=DESCRIPTOR`.
pub(super) fn spread_descriptor(preference: &str) -> Option<&str> {
    preference.strip_prefix("spread=").filter(|d| {
        !d.is_empty()
            && !d
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '"' || c == '=')
    })
}

fn valid_env_key(key: &str) -> bool {
    crate::docker_values::valid_label_key(key)
}

/// Why `key` cannot be a `secret_env` variable, if it cannot. Its value reaches Docker as
/// `KEY=value … docker service update --env-add KEY`, in the CLI's own environment: the key
/// must be a shell variable name, and not one that changes how the shell, `timeout` or
/// the CLI run (where they look for programs, the CLI's configuration and daemon, the Go
/// runtime, the dynamic loader).
pub(super) fn secret_env_key_problem(key: &str) -> Option<&'static str> {
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
