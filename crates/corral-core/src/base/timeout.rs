//! `lifecycle: { timeout: … }`: how long each apply step of a resource may run. Written as
//! whole seconds (`600`) or as a duration string of numbers with units `s`, `m` (or `min`)
//! and `h`, as in `"90s"`, `"20m"`, `"1h30m"`; from 1 second to 24 hours.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest a step may be given: past a day it is hung, not slow.
const MAX_SECONDS: u64 = 24 * 3600;

/// A resource's step deadline, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimeout(Duration);

impl StepTimeout {
    pub fn duration(self) -> Duration {
        self.0
    }

    fn from_seconds(seconds: u64) -> Result<Self, TimeoutError> {
        if (1..=MAX_SECONDS).contains(&seconds) {
            Ok(StepTimeout(Duration::from_secs(seconds)))
        } else {
            Err(TimeoutError::OutOfRange {
                seconds: seconds.into(),
            })
        }
    }

    /// Parses `"600"`, `"90s"`, `"20m"`, `"20min"`, `"1h30m"`, `"1h 30m"`.
    pub fn parse(text: &str) -> Result<Self, TimeoutError> {
        let invalid = || TimeoutError::NotADuration {
            text: text.to_owned(),
        };
        let seconds = crate::duration::parse_timeout_seconds(text).ok_or_else(invalid)?;
        StepTimeout::from_seconds(seconds)
    }
}

/// Why a step timeout (or a duration read as one) is refused; the loader places it in the
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum TimeoutError {
    #[error("`{text}` is not a duration: write seconds (600) or a duration such as \"90s\", \"20m\" or \"1h30m\"")]
    #[diagnostic(code(corral::duration::invalid))]
    NotADuration { text: String },
    #[error("a timeout is from 1 second to 24 hours, not {seconds} seconds")]
    #[diagnostic(code(corral::duration::out_of_range))]
    OutOfRange { seconds: i128 },
}

impl fmt::Display for StepTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs())
    }
}

impl Serialize for StepTimeout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0.as_secs())
    }
}

impl<'de> Deserialize<'de> for StepTimeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StepTimeoutVisitor)
    }
}

struct StepTimeoutVisitor;

impl Visitor<'_> for StepTimeoutVisitor {
    type Value = StepTimeout;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("seconds (600) or a duration such as \"20m\"")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<StepTimeout, E> {
        StepTimeout::from_seconds(value).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<StepTimeout, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(TimeoutError::OutOfRange {
                seconds: value.into(),
            })),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<StepTimeout, E> {
        StepTimeout::parse(value).map_err(E::custom)
    }
}

impl schemars::JsonSchema for StepTimeout {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepTimeout".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How long each apply step of this resource may run before it is stopped and fails (30 minutes when not set): seconds, or a duration such as \"90s\", \"20m\", \"1h30m\"; from 1 second to 24 hours.",
            "oneOf": [
                { "type": "integer", "minimum": 1, "maximum": MAX_SECONDS },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*(s|m|min|h)?(\\s*[0-9]+\\s*(s|m|min|h))*\\s*$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> Result<u64, String> {
        StepTimeout::parse(text)
            .map(|t| t.duration().as_secs())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations_parse() {
        assert_eq!(seconds("600"), Ok(600));
        assert_eq!(seconds("90s"), Ok(90));
        assert_eq!(seconds("20m"), Ok(1200));
        assert_eq!(seconds("20min"), Ok(1200));
        assert_eq!(seconds("1h30m"), Ok(5400));
        assert_eq!(seconds(" 1h 30m 5s "), Ok(5405));
        assert_eq!(seconds("24h"), Ok(86400));
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "",
            "0",
            "0s",
            "25h",
            "1h 30",
            "20 minutes",
            "-5",
            "1.5h",
            "m",
            "99999999999999999999h",
        ] {
            assert!(seconds(text).is_err(), "{text:?} was accepted");
        }
        assert!(seconds("25h")
            .unwrap_err()
            .contains("from 1 second to 24 hours"));
    }
}
