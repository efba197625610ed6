//! `swarm/secret` and `swarm/config`: values given to services as files, as Docker objects.
//!
//! Docker's secrets and configs are immutable, so a value is a *version*: an object named
//! `NAME_<digest>` where the digest is an HMAC of the value under a key kept on the swarm
//! (a config of corral's, `corral-key.<project>`), so that the name does not help anyone
//! guess a weak value. Services name the object by `NAME`; corral fills in the current
//! version. A new value is a new object, swapped into every service that uses it (one
//! rolling update each), the old one removed after the walk, when nothing uses it.
//!
//! Values never leave this process except towards Docker, on a manager: they are read at
//! load (a `source:` file, or the operator's environment with `from_env:`), and the
//! manager's facts hold only the versions' names. The key is read in the manager's round
//! trip and replaced, as soon as it is read, by the names of the versions the configuration
//! wants (see [`redact`]): no facts file, saved plan or log holds the key or an unkeyed
//! digest of a value. A value is sent to the manager in the step's script, which goes to
//! `sh` on its standard input, and reaches `docker secret create` on a pipe: never in a
//! command line.
//!
//! A swarm with no key yet (a first apply) plans the versions as "known after apply"; the
//! apply makes a key, creates it on the swarm with the first object, and names every
//! version with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{
    ClusterFacts, ClusterKind, ClusterStep, DockerObject, Kind, LinkContext, Links, Orphan, Step,
    SwarmScope, MANAGED_LABEL,
};
use crate::address::Address;
use crate::base::check::{CheckContext, Exposure};
use crate::facts::swarm;
pub use crate::facts::swarm_objects::{
    parse, LiveObject, LiveObjects, ObjectClass, KEY_ABSENT, KEY_PRESENT, OBJECTS_KEY,
};
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "swarm/secret";
pub const CONFIG_KIND: &str = "swarm/config";

/// The label that names what a versioned object is a version of: the address of the
/// resource (`swarm/secret.db_password`), or of the stack and its key.
pub const OBJECT_LABEL: &str = "io.corral.object";

/// Docker's limits on an object's data (swarmkit `MaxSecretSize`, `MaxConfigSize`).
const MAX_SECRET_BYTES: usize = 500 * 1024;
const MAX_CONFIG_BYTES: usize = 1000 * 1024;

/// Hex digits of the keyed digest in a version's name.
const VERSION_DIGITS: usize = 12;

/// Object names are at most 64 characters; a version adds `_` and the digest.
pub const MAX_NAME: usize = 64 - 1 - VERSION_DIGITS;

/// What the kinds know of a class of object: its kind, its Docker noun in
/// `DockerObject`, and Docker's limit on its data.
pub trait ObjectClassKind {
    fn kind(self) -> &'static str;
    fn docker(self) -> DockerObject;
    fn max_bytes(self) -> usize;
}

impl ObjectClassKind for ObjectClass {
    fn kind(self) -> &'static str {
        match self {
            ObjectClass::Secret => KIND,
            ObjectClass::Config => CONFIG_KIND,
        }
    }

    fn docker(self) -> DockerObject {
        match self {
            ObjectClass::Secret => DockerObject::Secret,
            ObjectClass::Config => DockerObject::Config,
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            ObjectClass::Secret => MAX_SECRET_BYTES,
            ObjectClass::Config => MAX_CONFIG_BYTES,
        }
    }
}

/// A value read at load. `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObjectValue(Option<Arc<Vec<u8>>>);

impl ObjectValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        ObjectValue(Some(Arc::new(bytes)))
    }

    pub fn bytes(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl fmt::Debug for ObjectValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({} bytes)", self.bytes().len())
    }
}

/// An inline value, refused for secrets; `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Inline(String);

impl fmt::Debug for Inline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(inline value)")
    }
}

/// What a version is a version of, and how its objects are named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectId {
    pub class: ObjectClass,
    /// [`OBJECT_LABEL`]'s value.
    pub label: String,
    /// The name before `_<digest>`.
    pub prefix: String,
}

impl ObjectId {
    /// A `swarm/secret` or `swarm/config` resource.
    pub fn declared(class: ObjectClass, name: &str) -> Self {
        ObjectId {
            class,
            label: format!("{}.{name}", class.kind()),
            prefix: name.to_owned(),
        }
    }

    /// A secret or config of a Compose file's own (`file:`), in stack `stack`.
    pub fn of_stack(class: ObjectClass, stack: &str, key: &str) -> Self {
        ObjectId {
            class,
            label: format!("swarm/stack.{stack}/{}s/{key}", class.noun()),
            prefix: format!("{stack}_{key}"),
        }
    }

    /// The version of `value` under `key`.
    fn version(&self, key: &[u8], value: &ObjectValue) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        for part in [
            b"corral object version 1".as_slice(),
            self.class.noun().as_bytes(),
            self.label.as_bytes(),
            value.bytes(),
        ] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("{}_{}", self.prefix, &digest[..VERSION_DIGITS])
    }
}

// ---------------------------------------------------------------------------------------
// Declaring

/// `swarm/secret` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmSecretSpec {
    /// The `swarm/cluster` it lives on; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// A file holding the value, relative to this file (it may be outside the
    /// configuration's directories: it is never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An environment variable of the operator holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// Refused: a secret's value is never written in the configuration.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub content: Option<Inline>,
    #[serde(skip)]
    #[schemars(skip)]
    pub object: Declared,
}

/// `swarm/config` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfigSpec {
    /// The `swarm/cluster` it lives on; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// A file holding the value, relative to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// An environment variable of the operator holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// The value, written here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip)]
    #[schemars(skip)]
    pub object: Declared,
}

/// What both kinds know once loaded and linked.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub value: ObjectValue,
    pub scope: SwarmScope,
    /// Where the value comes from, as the plan shows it (`file secrets/db.txt`, `$DB_PW`).
    pub origin: String,
    /// The services and stacks that use it, which a new version restarts.
    pub users: Vec<Address>,
}

impl Kind for SwarmSecretSpec {
    const SECRET_FIELDS: &'static [&'static [&'static str]] = &[&["content"]];

    fn check(mut self, ctx: &mut CheckContext) -> Self {
        if self.content.is_some() {
            ctx.error_at_key(
                &["content"],
                "a secret's value is never written in the configuration",
                "inline secret",
            )
            .help = Some(
                "put the value in a file outside version control and name it with `source:`, or in an environment variable named with `from_env:`".into(),
            );
            return self;
        }
        self.object = load_value(
            ctx,
            ObjectClass::Secret,
            self.source.as_deref(),
            self.from_env.as_deref(),
            None,
        );
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        link(
            &mut self.object,
            self.cluster.as_deref(),
            ObjectClass::Secret,
            links,
            ctx,
        )
    }

    /// A secret no longer declared may still be used by a service this apply moves off it.
    const DELETED_LAST: bool = true;

    fn declare(&self, address: &Address, links: &mut Links) {
        links.objects.insert(
            (ObjectClass::Secret, address.name.clone()),
            (self.cluster.clone(), self.object.value.clone()),
        );
    }

    fn secret_values<'a>(&'a self, name: &'a str) -> Vec<super::SecretValue<'a>> {
        vec![object_value(
            ObjectId::declared(ObjectClass::Secret, name),
            &self.object.value,
        )]
    }

    /// Secrets' and configs' values alike, of every resource that declares one.
    fn redact_cluster_facts(config: &dyn crate::declared::Declared, facts: &mut HostFacts) {
        if let Some(out) = facts.probes.get_mut(OBJECTS_KEY) {
            out.output = redact(&out.output, &declared_objects(config));
        }
        if let Some(out) = facts.probes.get_mut(ADOPTABLE_KEY) {
            out.output = redact_adoptable(&out.output, &declared_objects(config));
        }
    }

    /// Secrets' and configs' versions alike.
    fn forget_secret_comparisons(facts: &mut HostFacts) {
        if let Some(out) = facts.probes.get_mut(OBJECTS_KEY) {
            out.output = forget_versions(&out.output);
        }
    }

    fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
        Some(delete_script(ObjectClass::Secret, address, project))
    }
}

/// A secret's or config's value as part of the digest facts files are sealed with.
fn object_value(id: ObjectId, value: &ObjectValue) -> super::SecretValue<'_> {
    super::SecretValue {
        pass: 1,
        parts: vec![
            std::borrow::Cow::Owned(id.label.into_bytes()),
            std::borrow::Cow::Borrowed(value.bytes()),
        ],
    }
}

/// Every secret and config value the configuration declares, with what it is a value of.
pub fn declared_objects(config: &dyn crate::declared::Declared) -> Vec<(ObjectId, &ObjectValue)> {
    let mut objects = Vec::new();
    for (address, spec) in config.resources() {
        let name = &address.name;
        match spec {
            super::Spec::SwarmSecret(s) => objects.push((
                ObjectId::declared(ObjectClass::Secret, name),
                &s.object.value,
            )),
            super::Spec::SwarmConfig(s) => objects.push((
                ObjectId::declared(ObjectClass::Config, name),
                &s.object.value,
            )),
            super::Spec::SwarmStack(s) => objects.extend(s.own_objects(name)),
            _ => {}
        }
    }
    objects
}

impl Kind for SwarmConfigSpec {
    fn check(mut self, ctx: &mut CheckContext) -> Self {
        self.object = load_value(
            ctx,
            ObjectClass::Config,
            self.source.as_deref(),
            self.from_env.as_deref(),
            self.content.as_deref(),
        );
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        link(
            &mut self.object,
            self.cluster.as_deref(),
            ObjectClass::Config,
            links,
            ctx,
        )
    }

    /// As a secret's (see [`SwarmSecretSpec`], which also redacts configs' values).
    const DELETED_LAST: bool = true;

    fn declare(&self, address: &Address, links: &mut Links) {
        links.objects.insert(
            (ObjectClass::Config, address.name.clone()),
            (self.cluster.clone(), self.object.value.clone()),
        );
    }

    fn secret_values<'a>(&'a self, name: &'a str) -> Vec<super::SecretValue<'a>> {
        vec![object_value(
            ObjectId::declared(ObjectClass::Config, name),
            &self.object.value,
        )]
    }

    fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
        Some(delete_script(ObjectClass::Config, address, project))
    }
}

/// Reads the value from exactly one of its places, reporting what is wrong at the field.
fn load_value(
    ctx: &mut CheckContext,
    class: ObjectClass,
    source: Option<&str>,
    from_env: Option<&str>,
    content: Option<&str>,
) -> Declared {
    let given: Vec<&str> = [
        source.map(|_| "source"),
        from_env.map(|_| "from_env"),
        content.map(|_| "content"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let places = match class {
        ObjectClass::Secret => "`source:` (a file) or `from_env:` (an environment variable)",
        ObjectClass::Config => {
            "`source:` (a file), `from_env:` (an environment variable) or `content:`"
        }
    };
    if given.len() != 1 {
        let message = match given.len() {
            0 => format!("a {} needs its value: give {places}", class.noun()),
            _ => format!("{} are all given: give one", given.join(" and ")),
        };
        ctx.error(&[], message, "here").help = Some(format!("exactly one of {places}"));
        return Declared::default();
    }
    let (field, bytes, origin) = if content.is_none() {
        let exposure = match class {
            ObjectClass::Secret => Exposure::Secret,
            ObjectClass::Config => Exposure::Sensitive,
        };
        let Some(read) = read_value(ctx, &[], source, from_env, exposure) else {
            return Declared::default();
        };
        read
    } else {
        let content = content.unwrap_or_default();
        (
            "content",
            content.as_bytes().to_vec(),
            "the configuration".to_owned(),
        )
    };
    if bytes.is_empty() || bytes.len() > class.max_bytes() {
        ctx.error(
            &[field],
            format!(
                "the value is {} bytes: Docker takes a {} of 1 byte to {} KiB",
                bytes.len(),
                class.noun(),
                class.max_bytes() / 1024
            ),
            "this value",
        );
        return Declared::default();
    }
    Declared {
        value: ObjectValue::new(bytes),
        scope: SwarmScope::default(),
        origin,
        users: Vec::new(),
    }
}

/// A value read from a `source:` file loses one final line break (`\n` or `\r\n`), which
/// editors add and no one means as part of a value; one from the environment is kept whole.
pub fn drop_final_line_break(field: &str, bytes: &mut Vec<u8>) {
    if field != "source" {
        return;
    }
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.pop();
    }
}

/// Reads a value that is never written in the configuration: the file `source` (relative
/// to the document; with [`Exposure::Secret`], left out of the configuration's digest, since
/// its changes show elsewhere) or the operator's environment variable `from_env`, whichever
/// is given (the caller checks that one is). Errors are reported at the field under `base`
/// (the path of the mapping holding the two in the specification). Returns the field read,
/// the bytes, and where they came from as a plan shows it (`file secrets/db.txt`, `$DB_PW`).
/// `swarm/secret`, `swarm/config` and a service's `secret_env` read their values here.
pub fn read_value(
    ctx: &mut CheckContext,
    base: &[&str],
    source: Option<&str>,
    from_env: Option<&str>,
    exposure: Exposure,
) -> Option<(&'static str, Vec<u8>, String)> {
    let at = |field: &'static str| -> Vec<&str> {
        base.iter().copied().chain(std::iter::once(field)).collect()
    };
    if let Some(path) = source {
        let bytes = ctx.read_source_as(&at("source"), path, exposure)?;
        return Some(("source", bytes, format!("file {path}")));
    }
    let variable = from_env?;
    let valid = variable
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && variable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        ctx.error(
            &at("from_env"),
            format!("`{variable}` is not an environment variable name"),
            "not a variable",
        )
        .help = Some("letters, digits and `_`, not starting with a digit".into());
        return None;
    }
    match std::env::var_os(variable) {
        Some(value) => {
            use std::os::unix::ffi::OsStringExt;
            Some(("from_env", value.into_vec(), format!("${variable}")))
        }
        None => {
            ctx.error(
                &at("from_env"),
                format!("the environment variable `{variable}` is not set"),
                "unset",
            )
            .help = Some(format!(
                "export {variable} in the environment corral runs in (the value is read at every plan and apply, and never shown)"
            ));
            None
        }
    }
}

fn link(
    object: &mut Declared,
    cluster: Option<&str>,
    class: ObjectClass,
    links: &Links,
    ctx: &mut LinkContext,
) -> Vec<Address> {
    if ctx.name.len() > MAX_NAME {
        ctx.error(
            &[],
            format!(
                "`{}` is {} characters: a {} name is at most {MAX_NAME}, to leave room for its version",
                ctx.name,
                ctx.name.len(),
                class.noun()
            ),
            "name too long",
        );
    }
    let Some(scope) = links.swarm(cluster, ctx) else {
        return Vec::new();
    };
    object.users = links
        .object_users
        .get(&(class, ctx.name.clone()))
        .cloned()
        .unwrap_or_default();
    let after = vec![scope.address()];
    object.scope = scope;
    after
}

// ---------------------------------------------------------------------------------------
// Facts

pub use crate::facts::swarm_objects::{adoptable_probe, key_name, probe, ADOPTABLE_KEY};

/// [`adoptable_probe`]'s output reduced to `adopted LABEL NAME` lines: the configs whose
/// name is a declared object's and whose data is its value; the data is not kept.
pub fn redact_adoptable(output: &str, declared: &[(ObjectId, &ObjectValue)]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for line in output.lines() {
        let mut stream = serde_json::Deserializer::from_str(line).into_iter::<String>();
        let (Some(Ok(name)), Some(Ok(data))) = (stream.next(), stream.next()) else {
            continue;
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
            continue;
        };
        for (id, value) in declared {
            if id.class == ObjectClass::Config && id.prefix == name && value.bytes() == bytes {
                out.push_str(&format!("adopted {} {name}\n", id.label));
            }
        }
    }
    out
}

/// The config made by hand that `id` adopts, if the manager's facts name one (the name
/// the services use now).
pub fn adopted(manager: &HostFacts, id: &ObjectId) -> Option<String> {
    let out = manager.probes.get(ADOPTABLE_KEY)?;
    out.output.lines().find_map(|line| {
        let rest = line.strip_prefix("adopted ")?;
        let (label, name) = rest.rsplit_once(' ')?;
        (label == id.label).then(|| name.to_owned())
    })
}

impl ObjectId {
    /// This project's versions of this object among `live`'s.
    pub fn versions_in<'a>(
        &'a self,
        live: &'a LiveObjects,
        project: &'a str,
    ) -> impl Iterator<Item = &'a LiveObject> + 'a {
        live.objects.iter().filter(move |o| {
            o.class == self.class
                && o.labels.get(OBJECT_LABEL) == Some(&self.label)
                && o.labels.get(MANAGED_LABEL).map(String::as_str) == Some(project)
        })
    }
}

/// [`probe`]'s output with the key taken out: replaced by `key present` and the names of
/// the versions of `declared` values under it (or `key absent`). Anything the key line
/// cannot be read from goes too.
pub fn redact(output: &str, declared: &[(ObjectId, &ObjectValue)]) -> String {
    let mut out = String::with_capacity(output.len());
    for line in output.lines() {
        let Some(data) = line.strip_prefix("key ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if data == "absent" {
            out.push_str(KEY_ABSENT);
            out.push('\n');
            continue;
        }
        use base64::Engine;
        let key = serde_json::from_str::<String>(data)
            .ok()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
        let Some(key) = key else {
            out.push_str("(the key's line could not be read, withheld)\n");
            continue;
        };
        out.push_str(KEY_PRESENT);
        out.push('\n');
        let mut versions: Vec<(&str, String)> = declared
            .iter()
            .map(|(id, value)| (id.label.as_str(), id.version(&key, value)))
            .collect();
        versions.sort();
        versions.dedup();
        for (label, name) in versions {
            out.push_str(&format!("version {label} {name}\n"));
        }
    }
    out
}

/// [`redact`]'s output with the versions forgotten (they were named for other values).
pub fn forget_versions(output: &str) -> String {
    output
        .lines()
        .filter(|l| !l.starts_with("version "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The live objects, from a manager's facts.
pub fn live(manager: &HostFacts) -> Result<Arc<LiveObjects>, FactError> {
    manager.secret_objects()
}

/// What a version's name is needed for: a plan says "known after apply" for one it cannot
/// name yet; an apply names it with a key of its own when the swarm has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Plan,
    Apply,
}

/// The key this apply creates on a swarm that has none, shared by every step that names a
/// version on that swarm (made once per process).
fn session_key(scope: &SwarmScope) -> String {
    static KEYS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    keys.entry(format!("{}\0{}", scope.project, scope.cluster))
        .or_insert_with(|| hex::encode(crate::random::bytes::<32>()))
        .clone()
}

/// The name of the version of `value` the configuration wants, `None` when it cannot be
/// known yet (a plan of a swarm without a key, or facts whose versions were forgotten).
pub fn wanted_version(
    id: &ObjectId,
    value: &ObjectValue,
    scope: &SwarmScope,
    facts: &ClusterFacts,
    purpose: Purpose,
) -> Result<Option<String>, FactError> {
    if let Some(name) = facts.manager.as_ref().and_then(|(_, m)| adopted(m, id)) {
        return Ok(Some(name));
    }
    let live = match &facts.manager {
        Some((_, manager)) => Some(live(manager)?),
        None => None,
    };
    if let Some(live) = live.as_ref().filter(|l| l.key) {
        return Ok(live.versions.get(&id.label).cloned());
    }
    Ok(match purpose {
        Purpose::Plan => None,
        Purpose::Apply => Some(id.version(session_key(scope).as_bytes(), value)),
    })
}

/// Shell text that makes sure the swarm has the key every version of this apply is named
/// with: creates it when missing, and fails when another one is there (made by another
/// apply at the same time), since the names would then be wrong.
pub fn key_preamble(scope: &SwarmScope, facts: &ClusterFacts) -> Result<String, FactError> {
    let has_key = match &facts.manager {
        Some((_, manager)) => live(manager)?.key,
        None => false,
    };
    if has_key {
        return Ok(String::new());
    }
    use base64::Engine;
    let key = session_key(scope);
    let data = format!(
        "\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    );
    Ok(format!(
        "if ! docker config inspect {name} >/dev/null 2>&1; then\n  printf '%s' {key} | docker config create --label {managed} --label io.corral.role=hmac-key {name} - >/dev/null || true\nfi\n[ \"$(docker config inspect --format '{{{{json .Spec.Data}}}}' {name} 2>&1)\" = {data} ] || {{ echo 'corral: the swarm has another key for naming versions (another apply made it at the same time?): run the apply again'; exit 1; }}\n",
        name = quote(&key_name(&scope.project)),
        key = quote(&key),
        managed = quote(&format!("{MANAGED_LABEL}={}", scope.project)),
        data = quote(&data),
    ))
}

/// Shell text that creates version `name` of `id` holding `value` (when it does not exist
/// yet: a step run again). The value reaches Docker on a pipe, base64 in the script.
pub fn create_script(id: &ObjectId, name: &str, value: &ObjectValue, project: &str) -> String {
    use base64::Engine;
    let noun = id.class.noun();
    format!(
        "if ! docker {noun} inspect {q} >/dev/null 2>&1; then\n  printf '%s' {data} | base64 -d | docker {noun} create --label {managed} --label {object} {q} - >/dev/null || exit 1\nfi\n",
        q = quote(name),
        data = quote(&base64::engine::general_purpose::STANDARD.encode(value.bytes())),
        managed = quote(&format!("{MANAGED_LABEL}={project}")),
        object = quote(&format!("{OBJECT_LABEL}={}", id.label)),
    )
}

// ---------------------------------------------------------------------------------------
// Deciding

/// A declared object as the cluster layer plans it.
struct Object<'a> {
    id: ObjectId,
    declared: &'a Declared,
}

enum Decision {
    NoOp,
    /// No version yet.
    Create(Option<String>),
    /// Other versions only: a new one, swapped in.
    Rotate {
        old: Vec<String>,
        new: Option<String>,
    },
}

impl Object<'_> {
    fn decide(&self, facts: &ClusterFacts, purpose: Purpose) -> Result<Decision, FactError> {
        let scope = &self.declared.scope;
        if facts.manager.is_none() {
            super::swarm_cluster::no_manager(facts)?;
        }
        if facts
            .manager
            .as_ref()
            .is_some_and(|(_, m)| adopted(m, &self.id).is_some())
        {
            // Made by hand with this value: its services keep it until the value changes.
            return Ok(Decision::NoOp);
        }
        let wanted = wanted_version(&self.id, &self.declared.value, scope, facts, purpose)?;
        let old: Vec<String> = match &facts.manager {
            Some((_, manager)) => self
                .id
                .versions_in(&*live(manager)?, &scope.project)
                .map(|o| o.name.clone())
                .collect(),
            None => Vec::new(),
        };
        if let Some(wanted) = &wanted {
            if old.contains(wanted) {
                return Ok(Decision::NoOp);
            }
        }
        Ok(match old.is_empty() {
            true => Decision::Create(wanted),
            false => Decision::Rotate { old, new: wanted },
        })
    }

    /// Whether the swarm has an object of this name that no project labelled: one this
    /// object takes over (`corral import` writes the secrets the services use).
    fn made_by_hand(&self, facts: &ClusterFacts) -> Result<bool, FactError> {
        let Some((_, manager)) = &facts.manager else {
            return Ok(false);
        };
        Ok(live(manager)?.objects.iter().any(|o| {
            o.class == self.id.class
                && o.name == self.id.prefix
                && !o.labels.contains_key(MANAGED_LABEL)
        }))
    }

    fn shown(version: &Option<String>) -> AttrValue {
        AttrValue::Scalar(
            version
                .clone()
                .unwrap_or_else(|| "(known after apply)".into()),
        )
    }

    fn diff(&self, facts: &ClusterFacts) -> Result<Diff, FactError> {
        let users: Vec<String> = self.declared.users.iter().map(Address::to_string).collect();
        Ok(match self.decide(facts, Purpose::Plan)? {
            Decision::NoOp => Diff::update_if_changed(Vec::new()),
            Decision::Create(new) => Diff {
                action: Some(Action::Create),
                attributes: vec![
                    AttrChange::new("version", AttrValue::Absent, Self::shown(&new)),
                    AttrChange::new(
                        "value",
                        AttrValue::Absent,
                        AttrValue::Scalar(format!("from {}", self.declared.origin)),
                    ),
                ],
                reason: self.made_by_hand(facts)?.then(|| {
                    let noun = self.id.class.noun();
                    format!(
                        "adopts the {noun} `{}` made by hand: its value cannot be compared, so a version of corral's is created from {} and swapped into the services that use it{} (one rolling update); the old {noun} is left as it is",
                        self.id.prefix,
                        self.declared.origin,
                        match users.is_empty() {
                            true => String::new(),
                            false => format!(" ({})", users.join(", ")),
                        }
                    )
                }),
            },
            Decision::Rotate { old, new } => {
                let mut attributes = vec![AttrChange::new(
                    "version",
                    AttrValue::Scalar(old.join(", ")),
                    Self::shown(&new),
                )];
                if !users.is_empty() {
                    attributes.push(AttrChange::new(
                        "restarts",
                        AttrValue::Absent,
                        AttrValue::Scalar(users.join(", ")),
                    ));
                }
                Diff {
                    action: Some(Action::Update),
                    attributes,
                    reason: Some(format!(
                        "a new value: Docker's {}s cannot change, so a new version is created, swapped into the services that use it, and the old one removed after",
                        self.id.class.noun()
                    )),
                }
            }
        })
    }

    fn steps(&self, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        let scope = &self.declared.scope;
        let name = match self.decide(facts, Purpose::Apply)? {
            Decision::NoOp => return Ok(Vec::new()),
            Decision::Create(name) | Decision::Rotate { new: name, .. } => name,
        };
        let name = name.ok_or_else(|| {
            FactError::new(
                OBJECTS_KEY,
                "the swarm's key is there, but the facts do not name this version (were they read for other values?)",
            )
        })?;
        let mut script = String::from("set -e\n");
        script.push_str(&key_preamble(scope, facts)?);
        script.push_str(&create_script(
            &self.id,
            &name,
            &self.declared.value,
            &scope.project,
        ));
        Ok(vec![ClusterStep {
            machine: scope.leader(facts),
            step: Step {
                description: format!("create {} version {name}", self.id.class.noun()),
                script,
            },
            produces: None,
            always: false,
        }])
    }
}

macro_rules! cluster_object {
    ($spec:ty, $class:expr) => {
        impl $spec {
            fn object(&self, name: &str) -> Object<'_> {
                Object {
                    id: ObjectId::declared($class, name),
                    declared: &self.object,
                }
            }
        }

        impl ClusterKind for $spec {
            super::on_a_swarm!(object.scope);

            fn member_probes(&self, _name: &str) -> Vec<Probe> {
                vec![swarm::info_probe()]
            }

            fn manager_probes(&self, _name: &str) -> Vec<Probe> {
                vec![probe(&self.object.scope.project), adoptable_probe()]
            }

            fn shares_machines(&self) -> bool {
                true
            }

            fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
                self.object(name).diff(facts)
            }

            fn steps(
                &self,
                name: &str,
                facts: &ClusterFacts,
            ) -> Result<Vec<ClusterStep>, FactError> {
                self.object(name).steps(facts)
            }
        }
    };
}

cluster_object!(SwarmSecretSpec, ObjectClass::Secret);
cluster_object!(SwarmConfigSpec, ObjectClass::Config);

/// Versions of this project's objects that are no longer wanted: every version of an
/// object no resource declares (`declared` holds the resources, and the stacks that own
/// objects of their own), and the old versions of one whose wanted version is known (an
/// instance address names each: `swarm/secret.db[db_1a2b3c4d5e6f]`). Deleted after the
/// walk, once the services use the new versions. One that a service of no project of
/// corral's uses would never be free: a plan error naming the service.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    let live = live(manager)?;
    let services = manager.services()?;
    let mut orphans = Vec::new();
    let mut whole: BTreeMap<Address, Vec<&LiveObject>> = BTreeMap::new();
    for object in &live.objects {
        if object.labels.get(MANAGED_LABEL).map(String::as_str) != Some(project) {
            continue;
        }
        let Some(label) = object.labels.get(OBJECT_LABEL) else {
            continue;
        };
        // A stack's own objects are its step's to remove.
        if label.starts_with("swarm/stack.") {
            continue;
        }
        // Only an address of the object's own kind: a label naming anything else (a
        // service) never turns into its deletion.
        let Ok(owner) = Address::parse(label) else {
            continue;
        };
        if owner.kind != object.class.kind() || owner.machine.is_some() {
            continue;
        }
        if !declared.contains(&owner) {
            whole.entry(owner).or_default().push(object);
            continue;
        }
        match live.versions.get(label) {
            Some(wanted) if *wanted != object.name => {
                check_unused(object, &services, project)?;
                orphans.push(Orphan {
                    address: Address::new(&owner.kind, &owner.name, Some(&object.name)),
                    attributes: vec![AttrChange::new(
                        "version",
                        AttrValue::Scalar(object.name.clone()),
                        AttrValue::Absent,
                    )],
                    reason: Some(format!(
                        "an earlier version of {owner}, removed once the services use the current one"
                    )),
                });
            }
            _ => {}
        }
    }
    for (owner, objects) in whole {
        for object in &objects {
            check_unused(object, &services, project)?;
        }
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        orphans.push(Orphan {
            address: owner,
            attributes: vec![AttrChange::new(
                "version",
                AttrValue::Scalar(names.join(", ")),
                AttrValue::Absent,
            )],
            reason: None,
        });
    }
    Ok(orphans)
}

/// Fails when a service that is not `project`'s uses `object`.
pub fn check_unused(
    object: &LiveObject,
    services: &[swarm::SwarmService],
    project: &str,
) -> Result<(), FactError> {
    let users: Vec<&str> = services
        .iter()
        .filter(|s| s.spec.labels.get(MANAGED_LABEL).map(String::as_str) != Some(project))
        .filter(|s| {
            let container = &s.spec.task_template.container_spec;
            match object.class {
                ObjectClass::Secret => container
                    .secrets
                    .iter()
                    .any(|r| r.secret_name == object.name),
                ObjectClass::Config => container
                    .configs
                    .iter()
                    .any(|r| r.config_name == object.name),
            }
        })
        .map(|s| s.spec.name.as_str())
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(FactError::new(
        OBJECTS_KEY,
        format!(
            "{} {} is no longer wanted, but service {} uses it, which project {project} does not manage: corral never removes it from under a service; take it off that service first",
            object.class.noun(),
            object.name,
            users.join(", ")
        ),
    ))
}

/// Deletes what an orphan address names: one version (`[name]`), or every version of the
/// object; refuses objects that are not `project`'s. Docker itself refuses one in use.
pub fn delete_script(class: ObjectClass, address: &Address, project: &str) -> String {
    let docker = class.docker();
    match &address.machine {
        Some(version) => docker.delete_script(version, project),
        None => {
            let noun = class.noun();
            format!(
                "set -e\nfor id in $(docker {noun} ls -q --filter {managed} --filter {object}); do\n  docker {noun} rm \"$id\" >/dev/null\ndone\n",
                managed = quote(&format!("label={MANAGED_LABEL}={project}")),
                object = quote(&format!("label={OBJECT_LABEL}={}", address.resource())),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{recorded, ProbeOutput};

    const PROJECT: &str = "try12";
    /// The values the recorded swarm's versions hold.
    const DB_PW: &str = "rotated-canary-5521";
    const APP_CONF: &str = "level=info\n";

    fn scope() -> SwarmScope {
        SwarmScope {
            cluster: "main".into(),
            managers: vec!["n1".into(), "n2".into(), "n3".into()],
            workers: Vec::new(),
            project: PROJECT.into(),
        }
    }

    fn secret(value: &str) -> SwarmSecretSpec {
        SwarmSecretSpec {
            source: Some("db_pw.txt".into()),
            object: Declared {
                value: ObjectValue::new(value.as_bytes().to_vec()),
                scope: scope(),
                origin: "file db_pw.txt".into(),
                users: vec![Address::new("swarm/service", "app", None)],
            },
            ..SwarmSecretSpec::default()
        }
    }

    /// The recorded manager facts, redacted as gathering does for `declared` values.
    fn manager(declared: &[(ObjectId, &ObjectValue)]) -> HostFacts {
        let mut out = recorded::cluster("objects", "rotated", &probe(PROJECT));
        out.output = redact(&out.output, declared);
        let mut facts = HostFacts::default();
        facts.probes.insert(OBJECTS_KEY.into(), out);
        facts.probes.insert(
            swarm::SERVICE_INSPECT_KEY.into(),
            recorded::cluster(
                "service-inspect",
                "cluster",
                &swarm::service_inspect_probe(),
            ),
        );
        facts
    }

    fn facts(manager: &HostFacts) -> ClusterFacts<'_> {
        ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), manager)),
            inventory: BTreeMap::new(),
        }
    }

    fn db_pw() -> ObjectId {
        ObjectId::declared(ObjectClass::Secret, "db_pw")
    }

    #[test]
    fn a_secret_made_by_hand_is_adopted_with_a_version_of_corrals_and_says_so() {
        // scripts/record-import-fixtures.sh: `docker secret create db_pw`, no corral key.
        let mut spec = secret("the operator's value");
        spec.object.scope.project = "infra".into();
        let out = recorded::checked(
            "import/swarm-objects/by-hand",
            &probe("infra"),
            "run scripts/record-import-fixtures.sh",
        );
        let mut manager = HostFacts::default();
        manager.probes.insert(OBJECTS_KEY.into(), out);
        let diff = spec.object("db_pw").diff(&facts(&manager)).unwrap();
        assert_eq!(diff.action(), Action::Create);
        let reason = diff.reason.unwrap_or_default();
        assert!(
            reason.starts_with("adopts the secret `db_pw` made by hand"),
            "{reason}"
        );
        assert!(reason.contains("swarm/service.app"), "{reason}");
        // A secret of another name is only created.
        let diff = spec.object("api_key").diff(&facts(&manager)).unwrap();
        assert_eq!(diff.reason, None);
    }

    #[test]
    fn the_key_is_replaced_by_the_names_the_swarm_gave_the_same_values() {
        let (db, conf) = (
            ObjectValue::new(DB_PW.into()),
            ObjectValue::new(APP_CONF.into()),
        );
        let declared = [
            (db_pw(), &db),
            (ObjectId::declared(ObjectClass::Config, "app_conf"), &conf),
        ];
        let raw = recorded::cluster("objects", "rotated", &probe(PROJECT)).output;
        let redacted = redact(&raw, &declared);
        // The names the recorded apply gave these values with the same key.
        let live_name = |label: &str| {
            raw.lines()
                .find(|l| l.contains(&format!("\"{OBJECT_LABEL}\":\"{label}\"")))
                .and_then(|l| l.split('"').nth(1))
                .unwrap()
                .to_owned()
        };
        for label in ["swarm/secret.db_pw", "swarm/config.app_conf"] {
            let line = format!("version {label} {}\n", live_name(label));
            assert!(redacted.contains(&line), "{line} in {redacted}");
        }
        let key_line = raw.lines().find(|l| l.starts_with("key ")).unwrap();
        assert!(!redacted.contains(&key_line[5..20]), "{redacted}");
        assert!(!redacted.contains(DB_PW));
        let live = parse(
            OBJECTS_KEY,
            &ProbeOutput {
                rc: 0,
                output: redacted.clone(),
            },
        )
        .unwrap();
        assert!(live.key);
        assert_eq!(live.objects.len(), 3);
        assert_eq!(db_pw().versions_in(&live, PROJECT).count(), 1);
        assert_eq!(db_pw().versions_in(&live, "other").count(), 0);
        // Forgotten, as for a facts file read with other values: no version is known.
        let forgotten = parse(
            OBJECTS_KEY,
            &ProbeOutput {
                rc: 0,
                output: forget_versions(&redacted),
            },
        )
        .unwrap();
        assert!(forgotten.key && forgotten.versions.is_empty());
    }

    #[test]
    fn the_same_value_plans_nothing_and_a_new_one_a_rotation_that_names_its_services() {
        let same = secret(DB_PW);
        let manager = manager(&[(db_pw(), &same.object.value)]);
        assert_eq!(
            same.diff("db_pw", &facts(&manager)).unwrap().action(),
            Action::NoOp
        );
        assert!(same.steps("db_pw", &facts(&manager)).unwrap().is_empty());

        let new = secret("another-value");
        let manager = manager_for(&new);
        let diff = new.diff("db_pw", &facts(&manager)).unwrap();
        assert_eq!(diff.action(), Action::Update);
        let shown = format!("{diff:?}");
        assert!(shown.contains("db_pw_") && shown.contains("swarm/service.app"));
        assert!(!shown.contains("another-value"));
        let steps = new.steps("db_pw", &facts(&manager)).unwrap();
        let script = &steps[0].step.script;
        assert!(!steps[0].step.description.contains("another-value"));
        // The value travels base64 on a pipe, never as an argument; no key is made: the
        // swarm has one.
        assert!(!script.contains("another-value") && !script.contains("corral-key"));
        assert!(
            script.contains("| base64 -d | docker secret create"),
            "{script}"
        );
    }

    fn manager_for(spec: &SwarmSecretSpec) -> HostFacts {
        manager(&[(db_pw(), &spec.object.value)])
    }

    #[test]
    fn old_versions_and_undeclared_objects_are_orphans_and_the_key_is_not() {
        let new = secret("another-value");
        let rotated = manager_for(&new);
        let declared = BTreeSet::from([Address::new(KIND, "db_pw", None)]);
        let orphans = orphans(&rotated, PROJECT, &declared).unwrap();
        let addresses: Vec<String> = orphans.iter().map(|o| o.address.to_string()).collect();
        let live = live(&rotated).unwrap();
        let id = db_pw();
        let recorded = &id.versions_in(&live, PROJECT).next().unwrap().name;
        assert_eq!(
            addresses,
            [
                format!("swarm/secret.db_pw[{recorded}]"),
                "swarm/config.app_conf".to_owned()
            ]
        );
        // The same value: nothing of the secret's goes.
        let same = manager(&[(db_pw(), &secret(DB_PW).object.value)]);
        assert_eq!(orphans_of(&same, &declared), ["swarm/config.app_conf"]);
        // Another project's objects are never orphans of this one.
        assert!(super::orphans(&same, "other", &declared)
            .unwrap()
            .is_empty());
    }

    fn orphans_of(manager: &HostFacts, declared: &BTreeSet<Address>) -> Vec<String> {
        orphans(manager, PROJECT, declared)
            .unwrap()
            .iter()
            .map(|o| o.address.to_string())
            .collect()
    }

    #[test]
    fn an_object_a_foreign_service_uses_is_never_removed() {
        let manager = manager(&[]);
        let services = swarm::parse_service_inspect(
            swarm::SERVICE_INSPECT_KEY,
            manager.get(swarm::SERVICE_INSPECT_KEY).unwrap(),
        )
        .unwrap();
        // The recorded `api` (project `default`) uses api_token_v1.
        let object = LiveObject {
            class: ObjectClass::Secret,
            name: "api_token_v1".into(),
            labels: BTreeMap::new(),
        };
        let error = check_unused(&object, &services, "other").unwrap_err();
        assert!(error.to_string().contains("service api uses it"), "{error}");
        assert!(check_unused(&object, &services, "default").is_ok());
    }

    #[test]
    fn without_a_key_a_plan_cannot_name_versions_and_an_apply_makes_the_key() {
        let mut out = recorded::cluster("objects", "rotated", &probe(PROJECT));
        out.output = out
            .output
            .lines()
            .filter(|l| l.starts_with("secret ") || l.starts_with("config \"app"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            + "key absent\n";
        out.output = redact(&out.output, &[]);
        let mut manager = HostFacts::default();
        manager.probes.insert(OBJECTS_KEY.into(), out);
        let spec = secret("a value");
        let facts = facts(&manager);
        let shown = format!("{:?}", spec.diff("db_pw", &facts).unwrap());
        assert!(shown.contains("known after apply"), "{shown}");
        let script = &spec.steps("db_pw", &facts).unwrap()[0].step.script;
        assert!(script.contains("docker config create --label 'io.corral.managed=try12' --label io.corral.role=hmac-key corral-key.try12 -"), "{script}");
        // Every step of this apply names versions with the same key.
        let version = wanted_version(
            &db_pw(),
            &spec.object.value,
            &scope(),
            &facts,
            Purpose::Apply,
        )
        .unwrap()
        .unwrap();
        assert!(script.contains(&version));
        assert_eq!(
            wanted_version(
                &db_pw(),
                &spec.object.value,
                &scope(),
                &facts,
                Purpose::Plan
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn deleting_a_version_or_every_version_of_an_object() {
        let one = delete_script(
            ObjectClass::Secret,
            &Address::new(KIND, "db_pw", Some("db_pw_4d89c41d94fc")),
            PROJECT,
        );
        assert!(one.contains("docker secret rm db_pw_4d89c41d94fc"), "{one}");
        assert!(one.contains("io.corral.managed"), "{one}");
        let all = delete_script(
            ObjectClass::Config,
            &Address::new(CONFIG_KIND, "app_conf", None),
            PROJECT,
        );
        assert!(
            all.contains("label=io.corral.object=swarm/config.app_conf"),
            "{all}"
        );
    }
}
