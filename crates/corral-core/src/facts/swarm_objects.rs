//! The secrets and configs on a swarm, as read on a manager (names and labels, never
//! data), the probes that read them and the pure parser of that reading. The redaction that
//! replaces the project's key with the versions it names is the secret kind's.

use std::collections::BTreeMap;

use super::{FactError, Probe, ProbeOutput};
use crate::shell::quote;

/// Key of the objects probe ([`probe`]), asked of one manager.
pub const OBJECTS_KEY: &str = "swarm:objects";

/// The label corral puts on the Docker objects it creates, with the project as value.
pub const MANAGED_LABEL: &str = "io.corral.managed";

/// The key's config on the swarm.
pub fn key_name(project: &str) -> String {
    format!("corral-key.{project}")
}

/// On a manager: every secret and config (name and labels, never data), and this
/// project's key. Sorted, so that nothing changed reads the same.
pub fn probe(project: &str) -> Probe {
    probe_with_key(&key_name(project))
}

/// [`probe`] of the key config named `key`.
pub(crate) fn probe_with_key(key: &str) -> Probe {
    let script = format!(
        r#"ids=$(docker secret ls -q) && if [ -n "$ids" ]; then docker secret inspect --format 'secret {{{{json .Spec.Name}}}} {{{{json .Spec.Labels}}}}' $ids | sort; fi && ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format 'config {{{{json .Spec.Name}}}} {{{{json .Spec.Labels}}}}' $ids | sort; fi && if docker config inspect {key} >/dev/null 2>&1; then docker config inspect --format 'key {{{{json .Spec.Data}}}}' {key}; else echo 'key absent'; fi"#,
        key = quote(key)
    );
    Probe {
        key: OBJECTS_KEY.to_owned(),
        script,
    }
}

/// The key config a [`probe`] script asks for, if `script` is one.
pub(crate) fn key_asked(script: &str) -> Option<String> {
    let (_, rest) = script.split_once(" && if docker config inspect ")?;
    let (quoted, _) = rest.split_once(" >/dev/null 2>&1; then ")?;
    let key = match shlex::split(quoted)?.as_slice() {
        [key] => key.clone(),
        _ => return None,
    };
    (probe_with_key(&key).script == script).then_some(key)
}

/// Where a manager lists the configs no project labelled, with their data, for
/// [`adoptable_probe`].
pub const ADOPTABLE_KEY: &str = "swarm:adoptable-configs";

/// On a manager: the configs made by hand (no [`MANAGED_LABEL`]), name and data, so that a
/// declared config with the same name and value is taken over as it is (see the secret
/// kind's `redact_adoptable`) instead of being made again and swapped into its services.
pub fn adoptable_probe() -> Probe {
    Probe {
        key: ADOPTABLE_KEY.to_owned(),
        script: format!(
            r#"ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '{{{{if not (index .Spec.Labels "{MANAGED_LABEL}")}}}}{{{{json .Spec.Name}}}} {{{{json .Spec.Data}}}}{{{{end}}}}' $ids | grep -v '^$' | sort; fi; true"#
        ),
    }
}

/// Secret or config: the same story, two Docker nouns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectClass {
    Secret,
    Config,
}

impl ObjectClass {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectClass::Secret => "secret",
            ObjectClass::Config => "config",
        }
    }
}

/// A secret or config on the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    pub class: ObjectClass,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What the objects probe found, once redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveObjects {
    pub objects: Vec<LiveObject>,
    /// Whether the swarm has this project's key.
    pub key: bool,
    /// The versions the configuration wants, by the object's label, named with the key.
    pub versions: BTreeMap<String, String>,
}

pub const KEY_PRESENT: &str = "key present";
pub const KEY_ABSENT: &str = "key absent";

/// Parses the objects probe's output once the kind has redacted it (the key replaced by
/// [`KEY_PRESENT`] or [`KEY_ABSENT`] and `version LABEL NAME` lines).
pub fn parse(key: &str, out: &ProbeOutput) -> Result<LiveObjects, FactError> {
    if out.rc != 0 {
        return Err(FactError::new(
            key,
            format!(
                "listing secrets and configs failed (exit {}): {}",
                out.rc,
                out.output.trim()
            ),
        ));
    }
    let mut live = LiveObjects::default();
    for line in out.output.lines() {
        let bad = || FactError::new(key, format!("unexpected line `{line}`"));
        if line == KEY_PRESENT {
            live.key = true;
        } else if line == KEY_ABSENT {
            live.key = false;
        } else if let Some(rest) = line.strip_prefix("version ") {
            let (label, name) = rest.split_once(' ').ok_or_else(bad)?;
            live.versions.insert(label.to_owned(), name.to_owned());
        } else {
            let (class, rest) = match line.split_once(' ') {
                Some(("secret", rest)) => (ObjectClass::Secret, rest),
                Some(("config", rest)) => (ObjectClass::Config, rest),
                _ => return Err(bad()),
            };
            let mut stream =
                serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
            let name = stream.next().and_then(Result::ok).ok_or_else(bad)?;
            let labels = stream.next().and_then(Result::ok).ok_or_else(bad)?;
            let name = name.as_str().ok_or_else(bad)?.to_owned();
            let labels: BTreeMap<String, String> = match labels {
                serde_json::Value::Null => BTreeMap::new(),
                other => serde_json::from_value(other).map_err(|_| bad())?,
            };
            live.objects.push(LiveObject {
                class,
                name,
                labels,
            });
        }
    }
    Ok(live)
}
