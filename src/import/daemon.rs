//! `docker/daemon`: the settings of each machine's `/etc/docker/daemon.json`, one document
//! per group of machines whose settings are equal (`machines: all` when every machine
//! agrees). Machines without the file, or with an empty one, get no document; nor do
//! machines whose file another project wrote (corral's record on the host says so): it is
//! that project's, and a note says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{document, ok_output, scalar, Document, Found, ImportError, Written};
use crate::address::Address;
use crate::kinds::docker_daemon::{KIND, PATH};
use crate::kinds::file::{self, Body, FileState, Read};

/// The settings of `daemon.json` on a machine: `None` when there is no file (or no Docker).
pub fn settings(
    key: &str,
    facts: &crate::facts::HostFacts,
) -> Result<Option<Map<String, Value>>, ImportError> {
    let Some(out) = ok_output(facts, key) else {
        return Ok(None);
    };
    let state = file::parse(key, out).map_err(|e| ImportError::Fact(e.to_string()))?;
    match state {
        FileState::Present {
            body: Body::Content(bytes),
            ..
        } => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| ImportError::DaemonJson { error })
        }
        FileState::Absent { .. } => Ok(None),
        _ => Err(ImportError::DaemonNotAFile),
    }
}

/// The documents, in the order of their first machine.
pub fn write(found: &Found) -> Result<Written, ImportError> {
    let key = file::probe_key(PATH, Read::Content);
    let mut written = Written::default();
    let mut groups: Vec<(Map<String, Value>, Vec<String>)> = Vec::new();
    for machine in &found.machines {
        let Some(facts) = found.facts.get(&machine.name) else {
            continue;
        };
        let on = |error| ImportError::On {
            machine: machine.name.clone(),
            error: Box::new(error),
        };
        if let Some(other) = written_by_another(found, facts) {
            written.notes.push(super::Note {
                at: format!("{KIND} on {}", machine.name),
                text: format!(
                    "{PATH} is project {other}'s (corral's record on the machine), left to it"
                ),
            });
            continue;
        }
        let Some(settings) = settings(&key, facts).map_err(on)? else {
            continue;
        };
        if settings.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(s, _)| *s == settings) {
            Some((_, names)) => names.push(machine.name.clone()),
            None => groups.push((settings, vec![machine.name.clone()])),
        }
    }
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (settings, names) in groups {
        let selector = found.selector(&names);
        let base = match selector.as_str() {
            "all" => "all".to_owned(),
            _ if names.len() == 1 => names[0].clone(),
            _ => "group".to_owned(),
        };
        let count = taken.entry(base.clone()).or_insert(0);
        *count += 1;
        let name = match *count {
            1 => base,
            n => format!("{base}-{n}"),
        };
        let mut spec = format!("  machines: {selector}\n  settings:\n");
        for (key, value) in &settings {
            let _ = writeln!(spec, "    {}: {}", scalar(key), json_value(value));
        }
        written.documents.push(Document {
            address: Address::new(KIND, &name, None),
            text: document(KIND, &name, "", &spec),
            dependency: false,
        });
    }
    Ok(written)
}

/// The project other than the import's whose resource wrote `daemon.json` on the machine,
/// by the record the import read there (none when it could not be read: an import of a
/// cluster built by hand finds no record).
fn written_by_another(found: &Found, facts: &crate::facts::HostFacts) -> Option<String> {
    let out = ok_output(facts, super::RECORD_KEY)?;
    let record = crate::facts::record::parse_record(out).ok()?;
    record
        .projects
        .iter()
        .filter(|(project, _)| **project != found.project)
        .find(|(_, entries)| entries.values().any(|e| e.path.as_deref() == Some(PATH)))
        .map(|(project, _)| project.clone())
}

/// A JSON value as YAML (flow style; JSON is YAML), strings as [`scalar`]s.
fn json_value(value: &Value) -> String {
    match value {
        Value::String(s) => scalar(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(json_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(k), json_value(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}
