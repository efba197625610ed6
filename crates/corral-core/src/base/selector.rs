//! Machine selectors: `machines: all`, `machines: [n1, n2]` or
//! `machines: {labels: {role: edge}}`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Which machines a per-machine resource applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Selector {
    All,
    Names(Vec<String>),
    Labels(BTreeMap<String, String>),
}

impl Selector {
    /// Whether a machine with this name and these labels is selected.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::All => true,
            Selector::Names(names) => names.iter().any(|n| n == name),
            Selector::Labels(wanted) => wanted.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

/// The selector as it is written in YAML flow style (`all`, `[n1, n2]`,
/// `{labels: {role: db}}`), for messages that quote it back to the operator.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Selector::All => f.write_str("all"),
            Selector::Names(names) => write!(f, "[{}]", names.join(", ")),
            Selector::Labels(labels) => {
                let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{labels: {{{}}}}}", pairs.join(", "))
            }
        }
    }
}

impl schemars::JsonSchema for Selector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Selector".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Machines: `all`, a list of machine names, or `{labels: {key: value}}`.",
            "oneOf": [
                { "const": "all" },
                { "type": "array", "items": { "type": "string" } },
                {
                    "type": "object",
                    "properties": {
                        "labels": { "type": "object", "additionalProperties": { "type": "string" } }
                    },
                    "required": ["labels"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SelectorVisitor)
    }
}

struct SelectorVisitor;

const EXPECTED: &str = "`all`, a list of machine names, or `{labels: {key: value}}`";

impl<'de> Visitor<'de> for SelectorVisitor {
    type Value = Selector;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Selector, E> {
        if v == "all" {
            Ok(Selector::All)
        } else {
            Err(E::custom(format!(
                "invalid machine selector `{v}`: expected {EXPECTED} (a single machine is written `[{v}]`)"
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Selector, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element::<String>()? {
            names.push(name);
        }
        Ok(Selector::Names(names))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Selector, A::Error> {
        let mut labels = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "labels" {
                return Err(de::Error::unknown_field(&key, &["labels"]));
            }
            labels = Some(map.next_value::<BTreeMap<String, String>>()?);
        }
        labels
            .map(Selector::Labels)
            .ok_or_else(|| de::Error::missing_field("labels"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_written_in_yaml() {
        assert_eq!(Selector::All.to_string(), "all");
        assert_eq!(
            Selector::Names(vec!["n1".into(), "n2".into()]).to_string(),
            "[n1, n2]"
        );
        let labels = BTreeMap::from([
            ("role".to_owned(), "db".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ]);
        assert_eq!(
            Selector::Labels(labels).to_string(),
            "{labels: {role: db, zone: a}}"
        );
    }
}
