//! Rendering for the deploy: the file `docker stack deploy -c -` is given, with
//! versioned object names, extra labels and `env_file`s inlined.

use std::collections::BTreeMap;

use super::{Compose, ComposeObject, DEFAULT_VERSION};

impl Compose {
    /// The file to give `docker stack deploy -c -` (JSON is YAML), with: `version: "3.8"` if
    /// the file has none; every top-level secret/config replaced by an external reference
    /// to `NAME`, where `objects` maps (is_secret, key) → the versioned object name corral
    /// created (an entry it lacks keeps the name the file gives it); `extra_labels` added
    /// to every service's `deploy.labels`; `env_file` inlined into `environment` (the CLI
    /// would read those files on the manager, where they are not); everything else as
    /// written (opaque keys included), with merges applied and every `$` written `$$`
    /// again, since the CLI interpolates what it reads.
    pub fn render(
        &self,
        objects: &BTreeMap<(bool, String), String>,
        extra_labels: &BTreeMap<String, String>,
    ) -> String {
        use serde_json::Value as J;
        let escape = |s: &str| s.replace('$', "$$");
        let string = |s: &str| J::String(escape(s));
        let mut root = match self.root.to_json(&escape) {
            J::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        if self.version.is_none() {
            root.insert("version".into(), J::String(format!("3.{DEFAULT_VERSION}")));
        }
        let version = self.version.unwrap_or(DEFAULT_VERSION);
        for (is_secret, section, declared) in [
            (true, "secrets", &self.secrets),
            (false, "configs", &self.configs),
        ] {
            let Some(J::Object(entries)) = root.get_mut(section) else {
                continue;
            };
            for (key, definition) in entries.iter_mut() {
                let name = match (objects.get(&(is_secret, key.clone())), declared.get(key)) {
                    (Some(name), _) => name.clone(),
                    (None, Some(ComposeObject::External { name, .. })) => name.clone(),
                    (None, _) => format!("{}_{key}", self.stack),
                };
                // `name:` on secrets and configs is 3.5's; before, `external.name` says it.
                *definition = match version >= 5 {
                    true => serde_json::json!({"external": true, "name": string(&name)}),
                    false => serde_json::json!({"external": {"name": string(&name)}}),
                };
            }
        }
        if let Some(J::Object(services)) = root.get_mut("services") {
            for (key, service) in services.iter_mut() {
                let (Some(converted), J::Object(service)) = (self.services.get(key), service)
                else {
                    continue;
                };
                if service.remove("env_file").is_some() {
                    let environment = converted
                        .spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), string(v)))
                        .collect();
                    service.insert("environment".into(), J::Object(environment));
                }
                if extra_labels.is_empty() {
                    continue;
                }
                let deploy = service
                    .entry("deploy")
                    .or_insert_with(|| J::Object(serde_json::Map::new()));
                if !deploy.is_object() {
                    *deploy = J::Object(serde_json::Map::new());
                }
                if let J::Object(deploy) = deploy {
                    let labels = converted
                        .spec
                        .labels
                        .iter()
                        .chain(extra_labels)
                        .map(|(k, v)| (k.clone(), string(v)))
                        .collect();
                    deploy.insert("labels".into(), J::Object(labels));
                }
            }
        }
        let text = serde_json::to_string_pretty(&J::Object(root)).unwrap_or_default();
        yaml_printable(&text)
    }
}

/// JSON text with every character YAML 1.1 does not allow raw (DEL, C1 controls, …)
/// escaped: yaml.v2 refuses them even inside quotes, and JSON leaves them raw.
pub(super) fn yaml_printable(text: &str) -> String {
    // NEL, LS and PS are line breaks to yaml.v2, even inside a quoted scalar: escaped, so
    // that the deployed value is the one compared.
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A0}'..='\u{2027}' | '\u{202A}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match printable(c) {
            true => out.push(c),
            false => out.push_str(&format!("\\u{:04x}", u32::from(c))),
        }
    }
    out
}
