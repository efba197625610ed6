//! The record corral keeps on each host of what it wrote there
//! (`/var/lib/corral/managed.json`), as data, and the pure reading of it from the
//! record's probe. The probe itself and what the engine does with the record (deletions,
//! the updated record) are `managed`'s; the kinds name their entries with the types here.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{FactError, HostFacts, ProbeOutput};

pub const PATH: &str = "/var/lib/corral/managed.json";
pub const PROBE_KEY: &str = "corral:managed";
/// 3: `owners` (older corrals would drop it when they rewrite the record, so they refuse).
pub const FORMAT_VERSION: u32 = 3;

/// The record of one host: what corral wrote there, by project and resource address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format_version: u32,
    pub projects: BTreeMap<String, BTreeMap<String, Entry>>,
    /// By project: the id of the configuration that owns the name (`project`).
    /// Kept when the project's entries here are all deleted: the name stays its.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<String, String>,
}

impl Record {
    /// What one project wrote on the host.
    pub fn project(&self, project: &str) -> BTreeMap<String, Entry> {
        self.projects.get(project).cloned().unwrap_or_default()
    }

    /// The entries of every project for `path`.
    pub fn entries_for<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.projects
            .values()
            .flat_map(BTreeMap::values)
            .filter(move |e| e.path.as_deref() == Some(path))
    }

    /// Whether corral created the file at `path` (for any project); `adopts_files` says
    /// whether a kind ever adopts a file (the registry's answer).
    pub fn created(&self, path: &str, adopts_files: impl Fn(&str) -> bool) -> bool {
        self.entries_for(path)
            .any(|e| e.origin_given(adopts_files(&e.kind)) == Some(Origin::Created))
    }
}

/// How a recorded file came to be corral's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// There was nothing at the path: removing the resource deletes the file.
    Created,
    /// A file was there: removing the resource restores it if corral kept it (it does at
    /// its first change), and otherwise leaves the file as it is.
    Adopted,
}

/// What one resource wrote on a host, enough to undo it without its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: String,
    /// A file the resource wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A systemd unit whose unit file the resource wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Whether corral created or adopted the file; absent in records of corral 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The file holds a secret: its original is never read back either.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl Entry {
    /// An entry for a file written by a resource of `kind`.
    pub fn file(kind: &str, path: &str) -> Entry {
        Entry {
            kind: kind.to_owned(),
            path: Some(path.to_owned()),
            unit: None,
            origin: None,
            sensitive: false,
        }
    }

    /// The origin, where known, given whether the entry's kind ever adopts a file. Files
    /// of kinds that never adopt one have corral's own names (sysctl files) or are unit
    /// files, which corral always treated as its own.
    pub fn origin_given(&self, kind_adopts_files: bool) -> Option<Origin> {
        self.origin
            .or((!kind_adopts_files).then_some(Origin::Created))
    }
}

/// Shell that prints the record as [`parse_record`] reads it: `record BASE64`, or
/// `record none` on a host corral never wrote to. The record probe starts with it.
pub fn read_script() -> String {
    let path = crate::shell::quote(PATH);
    format!("if [ -f {path} ]; then printf 'record '; base64 -w0 < {path}; echo; else echo 'record none'; fi\n")
}

/// Reads the record from the first line of the record probe's output (`record none` on a
/// host corral never wrote to, else `record BASE64`); the rest of the output (originals,
/// owed restarts) is `managed`'s to read.
pub fn parse_record(out: &ProbeOutput) -> Result<Record, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(PROBE_KEY, out));
    }
    let first = out.output.lines().next();
    match first.map(|l| l.split_once(' ').unwrap_or((l, ""))) {
        Some(("record", "none")) => Ok(Record::default()),
        Some(("record", encoded)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| FactError::new(PROBE_KEY, format!("{PATH} could not be read: {e}")))?;
            let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
                FactError::new(PROBE_KEY, format!("{PATH} is not a corral record: {e}"))
            })?;
            if record.format_version > FORMAT_VERSION {
                return Err(FactError::new(
                    PROBE_KEY,
                    format!(
                        "{PATH} was written by a newer corral (format {}); upgrade corral",
                        record.format_version
                    ),
                ));
            }
            Ok(record)
        }
        _ => Err(FactError::unexpected(PROBE_KEY, out)),
    }
}

/// The record of a host as gathered.
pub fn recorded(facts: &HostFacts) -> Result<Record, FactError> {
    parse_record(facts.get(PROBE_KEY)?)
}
