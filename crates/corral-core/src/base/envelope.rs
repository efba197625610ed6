//! What every document has besides its specification: the `lifecycle:` settings (with
//! how its machines roll and how long a step may run) and the JSON Schema of a whole
//! document, which each kind's schema is made from.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::timeout::{StepTimeout, TimeoutError};

/// `lifecycle:` settings of a resource.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default)]
    pub prevent_destroy: bool,
    /// How long each apply step of this resource may run before it is stopped and fails;
    /// 30 minutes when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<StepTimeout>,
    /// How the machines of a per-machine resource change: `parallel` at a time, each proven
    /// healthy and then watched for `wait` before the next (docs/src/rolling.md). Kinds that
    /// restart something (`docker/daemon`, `os/sshd`, `os/firewall`, `os/package`) roll by
    /// default; others roll when this is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<Rolling>,
}

/// `lifecycle: { rolling: { parallel: 1, wait: 10s } }`: how many machines of a rolling
/// kind change at once, and how long a machine must stay healthy after its change before
/// the next begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rolling {
    /// Machines changed at once, from 1; 1 when not set.
    #[serde(default = "one")]
    #[schemars(with = "u32", range(min = 1))]
    pub parallel: NonZeroU32,
    /// How long a machine must stay healthy once it is, before the next one's change
    /// begins (Swarm's `update_config.monitor`); 10 s when not set.
    #[serde(default = "ten_seconds")]
    #[schemars(with = "String")]
    pub wait: Wait,
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

fn ten_seconds() -> Wait {
    Wait(Duration::from_secs(10))
}

impl Default for Rolling {
    fn default() -> Self {
        Rolling {
            parallel: NonZeroU32::MIN,
            wait: ten_seconds(),
        }
    }
}

impl Rolling {
    /// One machine at a time, the next as soon as this one is healthy.
    pub fn immediate() -> Rolling {
        Rolling {
            parallel: NonZeroU32::MIN,
            wait: Wait(Duration::ZERO),
        }
    }
}

/// A settle time: `0`, seconds, or a duration string (`"10s"`, `"2m"`), up to an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Wait {
    pub fn parse(text: &str) -> Result<Wait, WaitError> {
        let trimmed = text.trim();
        if trimmed == "0" || trimmed == "0s" {
            return Ok(Wait(Duration::ZERO));
        }
        let duration = StepTimeout::parse(trimmed)?.duration();
        if duration > Duration::from_secs(3600) {
            return Err(WaitError::TooLong {
                text: text.to_owned(),
            });
        }
        Ok(Wait(duration))
    }
}

/// Why a rolling wait is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum WaitError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Duration(#[from] TimeoutError),
    #[error("a rolling wait is at most an hour, not `{text}`")]
    #[diagnostic(code(corral::rolling::wait_too_long))]
    TooLong { text: String },
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs())
    }
}

impl Serialize for Wait {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => s.to_string(),
            Raw::Text(t) => t,
        };
        Wait::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The schema of a whole document of `kind` whose specification is `T`.
pub fn document<T: JsonSchema>(kind: &str) -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let lifecycle = generator.subschema_for::<Lifecycle>().to_value();
    let mut spec = generator.root_schema_for::<T>().to_value();
    let mut defs = Map::new();
    if let Some(object) = spec.as_object_mut() {
        object.remove("$schema");
        if let Some(Value::Object(found)) = object.remove("$defs") {
            defs.extend(found);
        }
    }
    for (name, schema) in generator.take_definitions(true) {
        defs.entry(name).or_insert(schema);
    }
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": kind,
        "type": "object",
        "properties": {
            "kind": { "const": kind },
            "name": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$" },
            "title": { "type": "string" },
            "specification": spec,
            "depends_on": {
                "type": "array",
                "items": { "type": "string", "pattern": "^[a-z0-9_-]+/[a-z0-9_-]+\\.[a-z0-9][a-z0-9_.-]*(\\[[a-z0-9][a-z0-9_.-]*\\])?$" }
            },
            "lifecycle": lifecycle,
            "provider": { "const": "any" },
            "version": { "type": "string" }
        },
        "required": ["kind", "name", "specification"],
        "additionalProperties": false
    });
    if !defs.is_empty() {
        schema["$defs"] = Value::Object(defs);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_durations() {
        let rolling: Rolling = serde_json::from_str(r#"{"wait": "2s"}"#).unwrap();
        assert_eq!(rolling.parallel.get(), 1);
        assert_eq!(rolling.wait, Wait(Duration::from_secs(2)));
        let rolling: Rolling = serde_json::from_str(r#"{"parallel": 2, "wait": 0}"#).unwrap();
        assert_eq!(rolling.wait, Wait(Duration::ZERO));
        assert!(serde_json::from_str::<Rolling>(r#"{"wait": "soon"}"#).is_err());
        assert!(serde_json::from_str::<Rolling>(r#"{"parallel": 0}"#).is_err());
    }
}
