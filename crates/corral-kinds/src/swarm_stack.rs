//! `swarm/stack`: an operator's own Compose file, deployed with `docker stack deploy`.
//!
//! The plan compares each of the file's services with the live service the deploy made
//! (`STACK_SERVICE`), attribute by attribute, as `swarm/service` does (the Compose file is
//! converted to the same declaration, see [`super::compose`], and Docker's defaults are
//! normalised away the same way), so that an unchanged file plans nothing. Services gone
//! from the file are pruned, only this stack's. Compose keys corral does not model are
//! passed to Docker as written and compared by a digest kept in a label
//! (`io.corral.opaque`): the plan says which service's pass-through keys changed.
//! What runs is compared as for `swarm/service` (docs/src/running-state.md): a service as
//! declared whose tasks do not all run gets a forced update, since a deploy of an unchanged
//! file would not start them again.
//!
//! The file's own `secrets:` and `configs:` with `file:` become versioned objects as
//! `swarm/secret` makes them (`STACK_KEY_<keyed digest>`): `docker stack deploy` alone fails
//! once such a file changes, since an object's data cannot. `external: true` entries may
//! name a `swarm/secret` or `swarm/config` of the configuration, whose current version is
//! filled in. The deploy reads the rewritten file on its standard input: nothing is copied
//! to the manager's disk, and the values travel as the secrets' do.
//!
//! `variables:` give the file's `${VAR}` references their values, as `docker stack deploy`
//! would take them from its shell (see [`compose::variables`] for how they are read): a
//! literal (`DOMAIN: example.org`), or a value from outside the configuration,
//! `{ from_env: NAME }` (the operator's environment variable, read at load) or
//! `{ source: FILE }` (one line break at its end dropped). Those two are sensitive unless
//! `sensitive: false` says otherwise: never shown in plans (an environment entry holding
//! one is compared as a `secret_env` is, and any other attribute holding one is masked),
//! nor in errors, nor in the configuration's digest (as a secret file's content). A literal
//! is never sensitive: a secret is not written in the configuration, which lands in git.
//! The deploy gets the file with the values substituted on its standard input, like the
//! objects' values, never on a command line. A declared variable the file never refers to
//! is a plan warning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::compose::{self, Compose, ComposeObject, Variable, Variables};
use super::swarm_secret::{self, ObjectClass, ObjectClassKind, ObjectId, ObjectValue, Purpose};
use super::swarm_service::{self, Versions, STACK_NAMESPACE_LABEL};
use super::{
    ClusterFacts, ClusterKind, ClusterStep, Kind, LinkContext, Links, Orphan, Step, SwarmScope,
    MANAGED_LABEL,
};
use crate::address::Address;
use crate::base::check::{CheckContext, Exposure};
use crate::base::diagnostic::{ConfigError, Origin, SourceFile};
use crate::facts::swarm;
use crate::facts::{kernel, FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "swarm/stack";

/// The label holding a digest of a service's pass-through Compose keys.
pub const OPAQUE_LABEL: &str = "io.corral.opaque";

/// `swarm/stack` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmStackSpec {
    /// The `swarm/cluster` it runs on; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The Compose file, relative to this file.
    pub compose: String,
    /// Values for the Compose file's `${VAR}` references, by name: a literal, or
    /// `{ from_env: NAME }` / `{ source: FILE }` (sensitive unless `sensitive: false`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, StackVariable>,
    #[serde(skip)]
    #[schemars(skip)]
    pub loaded: Option<Arc<Loaded>>,
    #[serde(skip)]
    #[schemars(skip)]
    pub scope: SwarmScope,
    /// External objects of the file that are `swarm/secret`s or `swarm/config`s of the
    /// configuration, by class and Compose key: their name and value.
    #[serde(skip)]
    #[schemars(skip)]
    pub declared_objects: BTreeMap<(ObjectClass, String), (String, ObjectValue)>,
    /// External networks of the file that are `swarm/network`s of the configuration.
    #[serde(skip)]
    #[schemars(skip)]
    pub declared_networks: BTreeSet<String>,
}

/// A `variables:` entry: a literal, or where a value kept out of the configuration is.
/// `Debug` and `Serialize` never show a value read from outside.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct StackVariable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
}

impl std::fmt::Debug for StackVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.literal, &self.from_env, &self.source) {
            (Some(literal), _, _) => write!(f, "{literal:?}"),
            (_, Some(name), _) => write!(f, "from_env {name}"),
            (_, _, Some(path)) => write!(f, "source {path}"),
            _ => f.write_str("(no value)"),
        }
    }
}

/// A scalar is a literal (YAML's numbers and booleans as written in the configuration,
/// as Compose users write `PORT: 8080`); a mapping names where the value is.
impl<'de> Deserialize<'de> for StackVariable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Place {
            #[serde(default)]
            from_env: Option<String>,
            #[serde(default)]
            source: Option<String>,
            #[serde(default)]
            sensitive: Option<bool>,
        }
        struct Visitor;
        fn literal(value: String) -> StackVariable {
            StackVariable {
                literal: Some(value),
                ..StackVariable::default()
            }
        }
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StackVariable;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value, `{ from_env: VARIABLE }` or `{ source: FILE }`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StackVariable, A::Error> {
                let place = Place::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(StackVariable {
                    literal: None,
                    from_env: place.from_env,
                    source: place.source,
                    sensitive: place.sensitive,
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StackVariable, E> {
                Ok(literal(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StackVariable, E> {
                Ok(literal(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StackVariable, E> {
                Ok(literal(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StackVariable, E> {
                Ok(literal(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<StackVariable, E> {
                Ok(literal(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for StackVariable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StackVariable".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A literal value, or where a value kept out of the configuration is: `{ from_env: NAME }` (an environment variable of the operator's) or `{ source: FILE }` (a file, relative to this file); those are sensitive (never shown) unless `sensitive: false`.",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                {
                    "type": "object",
                    "properties": {
                        "from_env": { "type": "string" },
                        "source": { "type": "string" },
                        "sensitive": { "type": "boolean" }
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// The Compose file as loaded.
pub struct Loaded {
    pub compose: Compose,
    /// The Compose file, for the places of errors found when the plan is made.
    pub file: Arc<SourceFile>,
    /// The values of the file's own objects (`file:`), by class and key.
    pub values: BTreeMap<(ObjectClass, String), ObjectValue>,
    /// The values of the sensitive variables, masked wherever the plan would show them.
    pub sensitive: Vec<String>,
    /// What the plan warns of: declared variables the file never refers to.
    pub warnings: Vec<String>,
}

/// The file's values may hold sensitive variables: only its name is shown.
impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("file", &self.file.name)
            .field(
                "services",
                &self.compose.services.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Kind for SwarmStackSpec {
    fn check(mut self, ctx: &mut CheckContext) -> Self {
        let Some(bytes) = ctx.read_source_as(&["compose"], &self.compose, Exposure::Shown) else {
            return self;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            ctx.error(&["compose"], "the Compose file is not UTF-8", "this file");
            return self;
        };
        let path = ctx.dir.join(&self.compose);
        let dir = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| ctx.dir.to_path_buf());
        let file = Arc::new(SourceFile::new(
            path.display().to_string(),
            &text,
            Vec::new(),
        ));
        let stack = ctx.name.to_owned();
        let Some(variables) = self.read_variables(ctx) else {
            return self;
        };
        let sensitive: Vec<String> = variables
            .values()
            .filter(|v| v.sensitive && !v.value.is_empty())
            .map(|v| v.value.clone())
            .collect();
        let first_error = ctx.errors.errors.len();
        let parsed = compose::parse_all(&text, &file, &dir, &stack, &variables, ctx.errors);
        for error in &mut ctx.errors.errors[first_error..] {
            error.message = mask(&error.message, &sensitive);
            error.help = error.help.as_deref().map(|help| mask(help, &sensitive));
        }
        let Some((mut compose, ok)) = parsed else {
            return self;
        };
        let warnings = variables
            .keys()
            .filter(|name| !compose.variables_used.contains(*name))
            .map(|name| {
                format!(
                    "the variable `{name}` is declared, and the Compose file `{}` never refers to it",
                    self.compose
                )
            })
            .collect();
        // An environment value holding a sensitive variable is compared as a service's
        // `secret_env` is: never shown, and only as same/differs in the facts.
        for service in compose.services.values_mut() {
            let spec = &mut service.spec;
            let secret: Vec<String> = spec
                .env
                .iter()
                .filter(|(_, value)| holds_any(value, &sensitive))
                .map(|(key, _)| key.clone())
                .collect();
            for key in secret {
                if let Some(value) = spec.env.remove(&key) {
                    spec.secret_env
                        .insert(key, swarm_service::SecretEnv::with_value(&value));
                }
            }
        }
        let mut values = BTreeMap::new();
        for (class, objects) in [
            (ObjectClass::Secret, &compose.secrets),
            (ObjectClass::Config, &compose.configs),
        ] {
            for (key, object) in objects {
                let ComposeObject::File { path, span } = object else {
                    continue;
                };
                let origin = Origin {
                    file: file.clone(),
                    span: *span,
                };
                let id = ObjectId::of_stack(class, &stack, key);
                if id.prefix.len() > swarm_secret::MAX_NAME {
                    ctx.errors.push(
                        ConfigError::at(
                            &origin,
                            format!(
                                "`{}` is {} characters: a {} of a stack is named STACK_KEY, at most {} characters, to leave room for its version",
                                id.prefix,
                                id.prefix.len(),
                                class.noun(),
                                swarm_secret::MAX_NAME
                            ),
                            "name too long",
                        )
                        .with_help("shorten the key, or the stack's name"),
                    );
                    continue;
                }
                match read_object(path, class) {
                    Ok(bytes) => {
                        values.insert((class, key.clone()), ObjectValue::new(bytes));
                    }
                    Err(message) => ctx.errors.push(
                        ConfigError::at(&origin, message, "this file").with_help(
                            "`file:` paths are relative to the Compose file; the value is read here and sent to the swarm",
                        ),
                    ),
                }
            }
        }
        // The objects' files are checked even when the Compose file has errors: every
        // error in one pass.
        if ok {
            self.loaded = Some(Arc::new(Loaded {
                compose,
                file,
                values,
                sensitive,
                warnings,
            }));
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        let Some(scope) = links.swarm(self.cluster.as_deref(), ctx) else {
            return Vec::new();
        };
        let mut after = vec![scope.address()];
        let Some(loaded) = self.loaded.clone() else {
            self.scope = scope;
            return after;
        };
        for (class, objects) in [
            (ObjectClass::Secret, &loaded.compose.secrets),
            (ObjectClass::Config, &loaded.compose.configs),
        ] {
            for (key, object) in objects {
                let ComposeObject::External { name, .. } = object else {
                    continue;
                };
                if let Some((cluster, value)) = links.objects.get(&(class, name.clone())) {
                    if cluster.as_deref().unwrap_or(&scope.cluster) != scope.cluster {
                        ctx.error(
                            &["compose"],
                            format!(
                                "the Compose file's {} `{key}` is {}.{name}, of another swarm",
                                class.noun(),
                                class.kind()
                            ),
                            "another swarm's",
                        );
                        continue;
                    }
                    self.declared_objects
                        .insert((class, key.clone()), (name.clone(), value.clone()));
                    after.push(Address::new(class.kind(), name, None));
                }
            }
        }
        for service in loaded.compose.services.values() {
            for network in &service.spec.networks {
                if links.networks.contains_key(network) {
                    self.declared_networks.insert(network.clone());
                    let address = Address::new(super::swarm_network::KIND, network, None);
                    if !after.contains(&address) {
                        after.push(address);
                    }
                }
            }
            for mount in &service.spec.mounts {
                if mount.kind != swarm_service::MountKind::Bind {
                    continue;
                }
                for (volume, path) in &links.gluster_mounts {
                    let address = Address::new(super::gluster_volume::KIND, volume, None);
                    if swarm_service::is_within(&mount.source, path) && !after.contains(&address) {
                        after.push(address);
                    }
                }
            }
        }
        self.scope = scope;
        after
    }

    /// Its Docker services (a `swarm/service` of the same name would fight the stack over
    /// one), and who uses each secret and config it names but does not declare.
    fn declare(&self, address: &Address, links: &mut Links) {
        let name = &address.name;
        for (service, _) in self.declared_services(name) {
            links.stack_services.insert(service, name.clone());
        }
        for (class, name) in self.external_objects() {
            let users = links.object_users.entry((class, name)).or_default();
            if !users.contains(address) {
                users.push(address.clone());
            }
        }
    }

    /// Its own objects' values, then its sensitive variables.
    fn secret_values<'a>(&'a self, name: &'a str) -> Vec<super::SecretValue<'a>> {
        use std::borrow::Cow;
        let objects = self
            .own_objects(name)
            .into_iter()
            .map(|(id, value)| super::SecretValue {
                pass: 1,
                parts: vec![
                    Cow::Owned(id.label.into_bytes()),
                    Cow::Borrowed(value.bytes()),
                ],
            });
        let variables = self
            .sensitive_values()
            .iter()
            .map(|value| super::SecretValue {
                pass: 2,
                parts: vec![
                    Cow::Borrowed(name.as_bytes()),
                    Cow::Borrowed(value.as_bytes()),
                ],
            });
        objects.chain(variables).collect()
    }

    fn config_warnings(config: &dyn crate::declared::Declared) -> Vec<(Address, String)> {
        compose_warnings(config)
    }

    fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
        Some(delete_script(&address.name, project))
    }
}

impl SwarmStackSpec {
    /// The `variables:` with their values, read as a `swarm/secret`'s are; `None` when
    /// one cannot be read (each reported at its field).
    fn read_variables(&self, ctx: &mut CheckContext) -> Option<Variables> {
        const FORMS: &str =
            "write `NAME: VALUE`, `NAME: { from_env: VARIABLE }` or `NAME: { source: FILE }`";
        let mut variables = Variables::new();
        let mut failed = false;
        for (name, variable) in &self.variables {
            let at = ["variables", name.as_str()];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                ctx.error_at_key(&at, format!("`{name}` cannot be a variable's name"), "here")
                    .help = Some("letters, digits and `_`, not starting with a digit: the names a Compose file's `${NAME}` can refer to".into());
                failed = true;
                continue;
            }
            if let Some(literal) = &variable.literal {
                variables.insert(
                    name.clone(),
                    Variable {
                        value: literal.clone(),
                        sensitive: false,
                    },
                );
                continue;
            }
            let given = [variable.from_env.as_deref(), variable.source.as_deref()];
            if given.iter().flatten().count() != 1 {
                ctx.error(
                    &at,
                    format!("the variable `{name}` needs exactly one of `from_env:` and `source:`"),
                    "here",
                )
                .help = Some(FORMS.into());
                failed = true;
                continue;
            }
            let sensitive = variable.sensitive.unwrap_or(true);
            let exposure = match sensitive {
                true => Exposure::Secret,
                false => Exposure::Shown,
            };
            let Some((field, mut bytes, _)) = swarm_secret::read_value(
                ctx,
                &at,
                variable.source.as_deref(),
                variable.from_env.as_deref(),
                exposure,
            ) else {
                failed = true;
                continue;
            };
            swarm_secret::drop_final_line_break(field, &mut bytes);
            let Ok(value) = String::from_utf8(bytes) else {
                ctx.error(
                    &["variables", name.as_str(), field],
                    format!("the value of `{name}` is not UTF-8, which a Compose file is"),
                    "this value",
                );
                failed = true;
                continue;
            };
            if value.contains('\0') {
                ctx.error(
                    &["variables", name.as_str(), field],
                    format!("the value of `{name}` holds a NUL byte"),
                    "this value",
                );
                failed = true;
                continue;
            }
            // A value that is not sensitive is part of what the configuration is (a saved
            // plan made with another is stale); a sensitive one is not, as a secret file's.
            if !sensitive && field == "from_env" {
                for part in [name.as_bytes(), value.as_bytes()] {
                    ctx.digest.update((part.len() as u64).to_le_bytes());
                    ctx.digest.update(part);
                }
            }
            variables.insert(name.clone(), Variable { value, sensitive });
        }
        (!failed).then_some(variables)
    }
}

/// Whether `text` holds any of the `sensitive` values.
fn holds_any(text: &str, sensitive: &[String]) -> bool {
    sensitive.iter().any(|value| text.contains(value.as_str()))
}

/// `text` with each sensitive value replaced by `(sensitive)`, longest first.
fn mask(text: &str, sensitive: &[String]) -> String {
    let mut values: Vec<&String> = sensitive.iter().collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.into_iter().fold(text.to_owned(), |text, value| {
        text.replace(value.as_str(), "(sensitive)")
    })
}

/// Whether a side of an attribute of the plan holds a sensitive variable's value.
fn masked(value: &AttrValue, sensitive: &[String]) -> bool {
    match value {
        AttrValue::Scalar(text) | AttrValue::Content(text) | AttrValue::Opaque(text) => {
            holds_any(text, sensitive)
        }
        _ => false,
    }
}

/// Reads a Compose `file:` object: a regular file of a size Docker takes.
fn read_object(path: &std::path::Path, class: ObjectClass) -> Result<Vec<u8>, String> {
    let resolved = path
        .canonicalize()
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|root| resolved.starts_with(root))
    {
        return Err(format!(
            "`{}` is `{}`, a file of the kernel's, not a value",
            path.display(),
            resolved.display()
        ));
    }
    if !resolved.is_file() {
        return Err(format!("`{}` is not a regular file", resolved.display()));
    }
    let size = resolved.metadata().map(|m| m.len()).unwrap_or(0);
    if size > class.max_bytes() as u64 {
        return Err(format!(
            "`{}` is {size} bytes: Docker takes a {} of at most {} KiB",
            path.display(),
            class.noun(),
            class.max_bytes() / 1024
        ));
    }
    let bytes =
        std::fs::read(&resolved).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if bytes.is_empty() {
        return Err(format!(
            "`{}` is empty: Docker refuses an empty {}",
            path.display(),
            class.noun()
        ));
    }
    Ok(bytes)
}

impl SwarmStackSpec {
    /// The names the file's `external: true` secrets and configs refer to.
    pub fn external_objects(&self) -> Vec<(ObjectClass, String)> {
        let Some(loaded) = &self.loaded else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for (class, objects) in [
            (ObjectClass::Secret, &loaded.compose.secrets),
            (ObjectClass::Config, &loaded.compose.configs),
        ] {
            for object in objects.values() {
                if let ComposeObject::External { name, .. } = object {
                    names.push((class, name.clone()));
                }
            }
        }
        names
    }

    /// The values of its sensitive variables, which a saved plan's facts were compared
    /// with (kept only as part of an argon2id hash, see [`super::seal_secrets`]).
    pub fn sensitive_values(&self) -> &[String] {
        self.loaded
            .as_deref()
            .map_or(&[], |l| l.sensitive.as_slice())
    }

    /// The file's own objects (`file:`) with their values.
    pub fn own_objects(&self, name: &str) -> Vec<(ObjectId, &ObjectValue)> {
        let Some(loaded) = &self.loaded else {
            return Vec::new();
        };
        loaded
            .values
            .iter()
            .map(|((class, key), value)| (ObjectId::of_stack(*class, name, key), value))
            .collect()
    }

    /// The file's services as declared, by Docker name (for the facts' redaction).
    pub fn declared_services(&self, name: &str) -> Vec<(String, &swarm_service::SwarmServiceSpec)> {
        let Some(loaded) = &self.loaded else {
            return Vec::new();
        };
        loaded
            .compose
            .services
            .iter()
            .map(|(service, declared)| (self.service_name(name, service), &declared.spec))
            .collect()
    }

    fn loaded(&self) -> Result<&Loaded, FactError> {
        self.loaded.as_deref().ok_or_else(|| {
            FactError::new(swarm::SERVICE_INSPECT_KEY, "the Compose file did not load")
        })
    }

    /// The Docker service of Compose service `service`.
    fn service_name(&self, name: &str, service: &str) -> String {
        format!("{name}_{service}")
    }

    /// Every object the file's services refer to, by class and Compose key: the version of
    /// the file's own and of the configuration's, the name of any other external one.
    pub fn versions(
        &self,
        name: &str,
        facts: &ClusterFacts,
        purpose: Purpose,
    ) -> Result<Versions, FactError> {
        let loaded = self.loaded()?;
        let mut versions = Versions::new();
        for (class, objects) in [
            (ObjectClass::Secret, &loaded.compose.secrets),
            (ObjectClass::Config, &loaded.compose.configs),
        ] {
            for (key, object) in objects {
                let version = match object {
                    ComposeObject::File { .. } => {
                        let id = ObjectId::of_stack(class, name, key);
                        let value = loaded
                            .values
                            .get(&(class, key.clone()))
                            .cloned()
                            .unwrap_or_default();
                        swarm_secret::wanted_version(&id, &value, &self.scope, facts, purpose)?
                    }
                    ComposeObject::External {
                        name: external,
                        span,
                    } => match self.declared_objects.get(&(class, key.clone())) {
                        Some((declared, value)) => swarm_secret::wanted_version(
                            &ObjectId::declared(class, declared),
                            value,
                            &self.scope,
                            facts,
                            purpose,
                        )?,
                        None => {
                            let origin = Origin {
                                file: loaded.file.clone(),
                                span: *span,
                            };
                            external_on_swarm(class, key, external, &origin, facts)?;
                            Some(external.clone())
                        }
                    },
                };
                versions.insert((class, key.clone()), version);
            }
        }
        Ok(versions)
    }

    /// Fails unless every external network the services use is a `swarm/network` of the
    /// configuration or a swarm-scoped network the swarm has: `docker stack deploy` would
    /// fail with "network … is declared as external, but could not be found" in the apply
    /// (`validateExternalNetworks`).
    fn check_external_networks(&self, facts: &ClusterFacts) -> Result<(), FactError> {
        let loaded = self.loaded()?;
        let missing: Vec<(&String, &crate::base::yaml::Span)> = loaded
            .compose
            .external_networks
            .iter()
            .filter(|(name, _)| !self.declared_networks.contains(*name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let live = match &facts.manager {
            Some((_, manager)) => manager.networks()?,
            None => Arc::new(Vec::new()),
        };
        for (network, span) in missing {
            if live
                .iter()
                .any(|n| &n.name == network && n.scope == "swarm")
            {
                continue;
            }
            let origin = Origin {
                file: loaded.file.clone(),
                span: *span,
            };
            return Err(FactError::new(
                swarm::NETWORK_INSPECT_KEY,
                format!(
                    "{origin}: the Compose file's network `{network}` is external, and neither a `swarm/network` of the configuration nor an overlay network of the swarm: `docker stack deploy` would fail with \"network {network:?} is declared as external, but could not be found\"; declare it with a `swarm/network` document, create it on the swarm first (`docker network create -d overlay {network}`), or remove `external` to have the stack create it"
                ),
            ));
        }
        Ok(())
    }

    /// The file's services as `swarm/service`s of this stack's swarm, by Docker name.
    fn services(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, swarm_service::SwarmServiceSpec>, FactError> {
        let loaded = self.loaded()?;
        Ok(loaded
            .compose
            .services
            .iter()
            .map(|(service, declared)| {
                let mut spec = declared.spec.clone();
                spec.scope = self.scope.clone();
                spec.labels
                    .insert(OPAQUE_LABEL.into(), opaque_digest(&declared.opaque));
                (self.service_name(name, service), spec)
            })
            .collect())
    }

    /// This stack's live services, by name.
    fn live(
        &self,
        name: &str,
        facts: &ClusterFacts,
    ) -> Result<BTreeMap<String, swarm::SwarmService>, FactError> {
        let Some((_, manager)) = &facts.manager else {
            return Ok(BTreeMap::new());
        };
        let services = manager.services()?;
        Ok(services
            .iter()
            .filter(|s| s.spec.labels.get(STACK_NAMESPACE_LABEL).map(String::as_str) == Some(name))
            .map(|s| (s.spec.name.clone(), s.clone()))
            .collect())
    }

    /// What changes, service by service: the attributes (named `SERVICE.attribute`), the
    /// services whose mode changes (removed before the deploy), and the services the
    /// deploy changes.
    fn analyse(
        &self,
        name: &str,
        facts: &ClusterFacts,
        purpose: Purpose,
    ) -> Result<Analysis, FactError> {
        if facts.manager.is_none() {
            super::swarm_cluster::no_manager(facts)?;
        }
        let versions = self.versions(name, facts, purpose)?;
        self.check_external_networks(facts)?;
        let live = self.live(name, facts)?;
        let project = &self.scope.project;
        // Services of no project (deployed by hand) are adopted; another project's not.
        let foreign: Vec<&str> = live
            .values()
            .filter(|s| {
                s.spec
                    .labels
                    .get(MANAGED_LABEL)
                    .is_some_and(|p| p != project)
            })
            .map(|s| s.spec.name.as_str())
            .collect();
        if !foreign.is_empty() {
            return Err(FactError::new(
                swarm::SERVICE_INSPECT_KEY,
                format!(
                    "stack {name} on the swarm has services that project {project} did not deploy ({}): corral does not deploy over (and prune) another's stack; remove it (`docker stack rm {name}`) or give this stack another name",
                    foreign.join(", ")
                ),
            ));
        }
        let loaded = self.loaded()?;
        let mut analysis = Analysis {
            created: live.is_empty(),
            ..Analysis::default()
        };
        for (docker_name, spec) in self.services(name)? {
            let service = docker_name[name.len() + 1..].to_owned();
            let mut diff = spec.diff_with(&docker_name, facts, &versions)?;
            // The digest label says only "changed": shown as the keys passed through.
            for attribute in &mut diff.attributes {
                if attribute.name == format!("labels.{OPAQUE_LABEL}") {
                    let keys: Vec<&str> = loaded.compose.services[&service]
                        .opaque
                        .keys()
                        .map(String::as_str)
                        .collect();
                    attribute.name = "passed_through".into();
                    attribute.after = AttrValue::Opaque(if keys.is_empty() {
                        "none".into()
                    } else {
                        keys.join(", ")
                    });
                    if attribute.before != AttrValue::Absent {
                        attribute.before = AttrValue::Opaque("as deployed before".into());
                    }
                }
            }
            if diff.attributes.is_empty() && diff.action() == Action::Update {
                continue;
            }
            // As declared, but its tasks do not all run (swarm/service's own rules): a
            // deploy of an unchanged file would not start them again, a forced update does.
            if let [only] = diff.attributes.as_slice() {
                if only.name == swarm_service::TASKS_ATTRIBUTE {
                    let mut attribute = only.clone();
                    attribute.name = format!("{service}.{}", attribute.name);
                    analysis.attributes.push(attribute);
                    analysis.restarted.push((docker_name, spec));
                    continue;
                }
            }
            // A new service with nothing passed through: nothing to say.
            diff.attributes.retain(|a| {
                !(a.name == "passed_through"
                    && a.before == AttrValue::Absent
                    && a.after == AttrValue::Opaque("none".into()))
            });
            // A service deployed by hand that matches: adopted by the stack's next deploy,
            // not a change of its own.
            if diff.attributes.iter().all(|a| a.name == super::ADOPTED) {
                continue;
            }
            match diff.action() {
                Action::NoOp => continue,
                Action::Replace => analysis.replaced.push(docker_name.clone()),
                _ => {}
            }
            analysis.changed.push((docker_name.clone(), spec));
            for mut attribute in diff.attributes {
                attribute.name = format!("{service}.{}", attribute.name);
                analysis.attributes.push(attribute);
            }
        }
        let declared: BTreeSet<String> = loaded
            .compose
            .services
            .keys()
            .map(|s| self.service_name(name, s))
            .collect();
        for (docker_name, service) in &live {
            if declared.contains(docker_name) {
                continue;
            }
            let short = docker_name
                .strip_prefix(&format!("{name}_"))
                .unwrap_or(docker_name);
            analysis.attributes.push(AttrChange::new(
                short.to_owned(),
                AttrValue::Scalar(format!(
                    "service {}",
                    service.spec.task_template.container_spec.image
                )),
                AttrValue::Absent,
            ));
            analysis.pruned.push(docker_name.clone());
        }
        // The file's own objects: a new version shows with the services it restarts.
        for (class, objects) in [
            (ObjectClass::Secret, &loaded.compose.secrets),
            (ObjectClass::Config, &loaded.compose.configs),
        ] {
            for (key, object) in objects {
                if !matches!(object, ComposeObject::File { .. }) {
                    continue;
                }
                let id = ObjectId::of_stack(class, name, key);
                let wanted = versions.get(&(class, key.clone())).cloned().flatten();
                if facts
                    .manager
                    .as_ref()
                    .and_then(|(_, m)| swarm_secret::adopted(m, &id))
                    .is_some_and(|adopted| Some(&adopted) == wanted.as_ref())
                {
                    // Deployed by hand with this value: the services keep it.
                    continue;
                }
                let old: Vec<String> = match &facts.manager {
                    Some((_, manager)) => {
                        let services = manager.services()?;
                        let objects = swarm_secret::live(manager)?;
                        let old: Vec<&swarm_secret::LiveObject> =
                            id.versions_in(&objects, project).collect();
                        for object in old.iter().filter(|o| Some(&o.name) != wanted.as_ref()) {
                            swarm_secret::check_unused(object, &services, project)?;
                        }
                        old.iter().map(|o| o.name.clone()).collect()
                    }
                    None => Vec::new(),
                };
                if wanted.as_ref().is_some_and(|w| old.contains(w)) {
                    continue;
                }
                let before = match old.is_empty() {
                    true => AttrValue::Absent,
                    false => AttrValue::Scalar(old.join(", ")),
                };
                analysis.attributes.push(AttrChange::new(
                    format!("{}s.{key}", class.noun()),
                    before,
                    AttrValue::Scalar(
                        wanted
                            .clone()
                            .unwrap_or_else(|| "(known after apply)".into()),
                    ),
                ));
                analysis.objects.push((
                    id,
                    loaded
                        .values
                        .get(&(class, key.clone()))
                        .cloned()
                        .unwrap_or_default(),
                    wanted,
                ));
            }
        }
        for attribute in &mut analysis.attributes {
            // Both sides: the value deployed before held the variable's value of then,
            // which the configuration no longer knows to mask.
            if masked(&attribute.before, &loaded.sensitive)
                || masked(&attribute.after, &loaded.sensitive)
            {
                for side in [&mut attribute.before, &mut attribute.after] {
                    if *side != AttrValue::Absent {
                        *side = AttrValue::Sensitive;
                    }
                }
            }
        }
        analysis.versions = versions;
        Ok(analysis)
    }

    /// The file to deploy: objects by their versions, corral's labels on every service.
    pub fn rendered(&self, name: &str, versions: &Versions) -> Result<String, FactError> {
        let loaded = self.loaded()?;
        let mut objects = BTreeMap::new();
        for ((class, key), version) in versions {
            let version = version.clone().ok_or_else(|| {
                FactError::new(
                    swarm_secret::OBJECTS_KEY,
                    format!("the version of {} {key} is not known", class.noun()),
                )
            })?;
            objects.insert((*class == ObjectClass::Secret, key.clone()), version);
        }
        let labels = BTreeMap::from([(MANAGED_LABEL.to_owned(), self.scope.project.clone())]);
        let text = loaded.compose.render(&objects, &labels);
        let mut document: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            FactError::new(
                swarm::SERVICE_INSPECT_KEY,
                format!("the rewritten Compose file of stack {name} is not JSON: {e}"),
            )
        })?;
        for (service, declared) in &loaded.compose.services {
            let deploy = &mut document["services"][service]["deploy"];
            if deploy.is_null() {
                *deploy = serde_json::json!({});
            }
            let labels = &mut deploy["labels"];
            if labels.is_null() {
                *labels = serde_json::json!({});
            }
            labels[OPAQUE_LABEL] = serde_json::Value::String(opaque_digest(&declared.opaque));
        }
        Ok(document.to_string())
    }
}

/// Fails unless the swarm has the external object `external` that Compose key `key` (at
/// `origin`) names and no `swarm/secret` or `swarm/config` of the configuration declares:
/// `docker stack deploy` would fail with "secret not found" half way through the apply.
pub fn external_on_swarm(
    class: ObjectClass,
    key: &str,
    external: &str,
    origin: &Origin,
    facts: &ClusterFacts,
) -> Result<(), FactError> {
    let on_swarm = match &facts.manager {
        Some((_, manager)) => swarm_secret::live(manager)?
            .objects
            .iter()
            .any(|o| o.class == class && o.name == external),
        None => false,
    };
    if on_swarm {
        return Ok(());
    }
    let (noun, kind) = (class.noun(), class.kind());
    Err(FactError::new(
        swarm_secret::OBJECTS_KEY,
        format!(
            "{origin}: the Compose file's {noun} `{key}` is external `{external}`, which no `{kind}` of the configuration declares and the swarm does not have: declare it with a `{kind}` document (whose current version the stack then gets), or create the {noun} `{external}` on the swarm first"
        ),
    ))
}

/// What the stacks' Compose files say `docker stack deploy` ignores or converts (keys
/// such as `container_name`, `restart`) and the `variables:` it never refers to: deployed,
/// and shown as warnings by `validate` and
/// `plan` (and in the plan's JSON).
pub fn compose_warnings(config: &dyn super::declared::Declared) -> Vec<(Address, String)> {
    let mut warnings = Vec::new();
    for (address, spec) in config.resources() {
        let super::Spec::SwarmStack(stack) = spec else {
            continue;
        };
        // The Compose file's own warnings, then the variables it never refers to.
        if let Some(loaded) = &stack.loaded {
            for warning in loaded.compose.warnings.iter().chain(&loaded.warnings) {
                warnings.push((address.clone(), warning.clone()));
            }
        }
    }
    warnings
}

/// What a stack's plan found.
#[derive(Default)]
struct Analysis {
    /// No service of the stack runs yet.
    created: bool,
    attributes: Vec<AttrChange>,
    /// The services the deploy creates or changes, by Docker name.
    changed: Vec<(String, swarm_service::SwarmServiceSpec)>,
    /// Those whose mode changes: removed before the deploy.
    replaced: Vec<String>,
    /// Live services of the stack no longer in the file.
    pruned: Vec<String>,
    /// Services as declared whose tasks do not all run: a forced update each, by Docker
    /// name.
    restarted: Vec<(String, swarm_service::SwarmServiceSpec)>,
    /// New versions of the file's own objects: what, its value, its name.
    objects: Vec<(ObjectId, ObjectValue, Option<String>)>,
    versions: Versions,
}

impl Analysis {
    /// Whether the stack's file must be deployed: any change but forced updates.
    fn deploys(&self) -> bool {
        self.attributes.len() > self.restarted.len()
    }

    /// The plan's reason: services removed before the deploy, services restarted.
    fn reason(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if !self.replaced.is_empty() {
            reasons.push(format!(
                "the mode of {} cannot change in place: removed before the deploy creates them again",
                self.replaced.join(", ")
            ));
        }
        for (service, _) in &self.restarted {
            reasons.push(format!("{service}: {}", swarm_service::RESTART_REASON));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// A short digest of a service's pass-through keys and their values.
fn opaque_digest(opaque: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (key, value) in opaque {
        for part in [key, value] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The stacks of `project` on the swarm that no `swarm/stack` declares: those with services,
/// and those whose own secrets and configs are left (a removal that Docker refused half
/// way). An object of one that a service of no project of corral's uses is a plan error.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    let services = manager.services()?;
    let objects = swarm_secret::live(manager)?;
    let mut stacks: BTreeMap<String, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for service in services.iter() {
        let labels = &service.spec.labels;
        if labels.get(MANAGED_LABEL).map(String::as_str) != Some(project) {
            continue;
        }
        if let Some(stack) = labels.get(STACK_NAMESPACE_LABEL) {
            stacks
                .entry(stack.clone())
                .or_default()
                .0
                .push(&service.spec.name);
        }
    }
    for object in &objects.objects {
        if object.labels.get(MANAGED_LABEL).map(String::as_str) != Some(project) {
            continue;
        }
        let Some(stack) = object
            .labels
            .get(swarm_secret::OBJECT_LABEL)
            .and_then(|l| l.strip_prefix("swarm/stack."))
            .and_then(|rest| rest.split_once('/'))
            .map(|(stack, _)| stack)
        else {
            continue;
        };
        if declared.contains(&Address::new(KIND, stack, None)) {
            continue;
        }
        swarm_secret::check_unused(object, &services, project)?;
        stacks
            .entry(stack.to_owned())
            .or_default()
            .1
            .push(&object.name);
    }
    Ok(stacks
        .into_iter()
        .map(|(stack, found)| (Address::new(KIND, &stack, None), found))
        .filter(|(address, _)| !declared.contains(address))
        .map(|(address, (services, objects))| {
            let mut attributes = Vec::new();
            for (name, items) in [("services", services), ("objects", objects)] {
                if !items.is_empty() {
                    attributes.push(AttrChange::new(
                        name,
                        AttrValue::Scalar(items.join(", ")),
                        AttrValue::Absent,
                    ));
                }
            }
            Orphan {
                address,
                attributes,
                reason: None,
            }
        })
        .collect())
}

/// Removes stack `name` of `project`, then, once its services are gone, the versions of
/// its own objects.
pub fn delete_script(name: &str, project: &str) -> String {
    let filter = quote(&format!("label={STACK_NAMESPACE_LABEL}={name}"));
    let mut script = format!(
        "set -e\nfor s in $(docker service ls -q --filter {filter}); do\n  [ \"$(docker service inspect --format '{{{{index .Spec.Labels \"{MANAGED_LABEL}\"}}}}' \"$s\")\" = {project} ] || {{ echo 'corral: stack '{q}' has services of another project; left alone'; exit 1; }}\ndone\ndocker stack rm {q} >/dev/null\ni=0\nwhile [ -n \"$(docker service ls -q --filter {filter})\" ]; do\n  i=$((i + 1)); [ \"$i\" -le 60 ] || {{ echo 'corral: the stack was not removed within 60 s'; exit 1; }}\n  sleep 1\ndone\n",
        q = quote(name),
        project = quote(project),
    );
    script.push_str(&remove_old_objects(name, project, &[]));
    script
}

/// Removes the versions of the stack's own objects other than `keep`.
fn remove_old_objects(name: &str, project: &str, keep: &[String]) -> String {
    let mut script = String::new();
    for class in [ObjectClass::Secret, ObjectClass::Config] {
        let noun = class.noun();
        let keep_pattern: String = keep.iter().map(|k| format!(" {} ", k)).collect();
        // A here-document, not a pipe: the loop runs in this shell, so a refused removal
        // (Docker's "in use by service …") fails the step.
        script.push_str(&format!(
            "list=$(docker {noun} ls --filter {managed} --format '{{{{.Name}}}} {{{{.Labels}}}}') || exit 1\nwhile read -r n labels; do\n  [ -n \"$n\" ] || continue\n  case $labels in *{prefix}*) ;; *) continue ;; esac\n  case {keep} in *\" $n \"*) continue ;; esac\n  docker {noun} rm \"$n\" >/dev/null || exit 1\ndone <<CORRAL_EOF\n$list\nCORRAL_EOF\n",
            managed = quote(&format!("label={MANAGED_LABEL}={project}")),
            prefix = quote(&format!("{}=swarm/stack.{name}/", swarm_secret::OBJECT_LABEL)),
            keep = quote(&keep_pattern),
        ));
    }
    script
}

impl SwarmStackSpec {
    /// The deploy of the stack's file, its objects first, and the wait for the services it
    /// changes.
    fn deploy_script(
        &self,
        name: &str,
        facts: &ClusterFacts,
        analysis: &Analysis,
    ) -> Result<String, FactError> {
        let project = &self.scope.project;
        let mut script = String::from("set -e\n");
        if !analysis.objects.is_empty() {
            script.push_str(&swarm_secret::key_preamble(&self.scope, facts)?);
        }
        for (id, value, version) in &analysis.objects {
            let version = version.as_ref().ok_or_else(|| {
                FactError::new(
                    swarm_secret::OBJECTS_KEY,
                    "the swarm's key is there, but the facts do not name this version",
                )
            })?;
            script.push_str(&swarm_secret::create_script(id, version, value, project));
        }
        for service in &analysis.replaced {
            script.push_str(&super::DockerObject::Service.owned_guard(service, project));
            script.push_str(&format!(
                "docker service rm {} >/dev/null\n",
                quote(service)
            ));
            script.push_str(&super::DockerObject::Service.wait_gone(service));
        }
        use base64::Engine;
        let file = base64::engine::general_purpose::STANDARD
            .encode(self.rendered(name, &analysis.versions)?);
        script.push_str(&format!(
            "out=$(printf '%s' {file} | base64 -d | env -i PATH=\"$PATH\" HOME=\"$HOME\" docker stack deploy --prune --resolve-image changed -c - {q} 2>&1) || {{ printf '%s\\n' \"$out\" | tail -n 8; echo 'corral: docker stack deploy failed'; exit 1; }}\nset +e\n",
            file = quote(&file),
            q = quote(name),
        ));
        for (service, spec) in &analysis.changed {
            let least = match spec.mode {
                swarm_service::Mode::Replicated => 0,
                swarm_service::Mode::Global => 1,
            };
            script.push_str(&format!(
                "(\n{}\n) || exit 1\n",
                swarm_service::converge_script(service, "", "true", spec.wait_budget(), least)
            ));
        }
        for service in &analysis.pruned {
            script.push_str(&super::DockerObject::Service.wait_gone(service));
        }
        let keep: Vec<String> = analysis.versions.values().flatten().cloned().collect();
        script.push_str(&remove_old_objects(name, project, &keep));
        Ok(script)
    }
}

/// What a deploy changes, for its step's description.
fn deployed(analysis: &Analysis) -> String {
    let mut what: Vec<String> = analysis.changed.iter().map(|(s, _)| s.clone()).collect();
    what.extend(analysis.pruned.iter().map(|s| format!("{s} (pruned)")));
    match what.is_empty() {
        true => "objects".into(),
        false => what.join(", "),
    }
}

impl ClusterKind for SwarmStackSpec {
    super::on_a_swarm!(scope);

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe(), kernel::probe()]
    }

    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            swarm::service_inspect_probe(),
            swarm::network_inspect_probe(),
            swarm_secret::probe(&self.scope.project),
            swarm_secret::adoptable_probe(),
            // What runs, as for `swarm/service` (docs/src/running-state.md).
            swarm::service_run_probe(),
            swarm::node_inspect_probe(),
        ]
    }

    fn shares_machines(&self) -> bool {
        true
    }

    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        let analysis = self.analyse(name, facts, Purpose::Plan)?;
        if analysis.attributes.is_empty() {
            return Ok(Diff::update_if_changed(Vec::new()));
        }
        Ok(Diff {
            action: Some(match analysis.created {
                true => Action::Create,
                false => Action::Update,
            }),
            reason: analysis.reason(),
            attributes: analysis.attributes,
        })
    }

    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        let analysis = self.analyse(name, facts, Purpose::Apply)?;
        if analysis.attributes.is_empty() {
            return Ok(Vec::new());
        }
        let mut script = String::new();
        let mut what = Vec::new();
        if analysis.deploys() {
            script.push_str(&self.deploy_script(name, facts, &analysis)?);
            what.push(format!(
                "deploy stack {name} ({}) and wait for its tasks",
                deployed(&analysis)
            ));
        }
        // After the deploy: it would not start these tasks again.
        for (service, spec) in &analysis.restarted {
            script.push_str(&format!(
                "(\n{}\n) || exit 1\n",
                spec.restart_script(service)
            ));
        }
        if !analysis.restarted.is_empty() {
            let services: Vec<&str> = analysis.restarted.iter().map(|(s, _)| s.as_str()).collect();
            what.push(format!(
                "restart the tasks of {} (forced update: docker service update --force) and wait for them",
                services.join(", ")
            ));
        }
        Ok(vec![ClusterStep {
            machine: self.scope.leader(facts),
            step: Step {
                description: what.join("; then "),
                script,
            },
            produces: None,
            always: false,
        }])
    }
}
