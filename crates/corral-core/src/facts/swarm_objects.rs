//! The secrets and configs on a swarm, as read on a manager (names and labels, never
//! data), and the pure parser of that reading. The probe, and the redaction that replaces
//! the project's key with the versions it names, are the secret kind's.

use std::collections::BTreeMap;

use super::{FactError, ProbeOutput};

/// Key of the objects probe (`kinds`' swarm secret probe), asked of one manager.
pub const OBJECTS_KEY: &str = "swarm:objects";

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
