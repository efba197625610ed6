//! What corral has written on a host, recorded on the host itself in
//! `/var/lib/corral/managed.json` (SPEC §2: facts are the truth, there is no central state).
//! Records are kept per project (`--project`, default `default`), so configurations applied
//! to the same hosts under different projects never delete each other's resources.
//!
//! When a resource that wrote something (a file, a persisted sysctl file, a unit file) is
//! removed from the configuration, the record is how the next plan knows to delete what it
//! wrote. Packages and services without a unit file leave nothing to delete: corral stops
//! managing them and leaves them as they are (list packages under `absent` to remove them).
//! Only hosts that the configuration still selects are read, so a machine taken out of the
//! inventory keeps what corral wrote there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::kinds::file::{self, DesiredFile};
use crate::kinds::Step;
use crate::plan::{Action, AttrChange, AttrValue, ResourceChange};
use crate::shell::quote;

pub const PATH: &str = "/var/lib/corral/managed.json";
pub const PROBE_KEY: &str = "corral:managed";
const FORMAT_VERSION: u32 = 1;

/// The record of one host: what corral wrote there, by project and resource address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub format_version: u32,
    pub projects: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl Record {
    /// What one project wrote on the host.
    pub fn project(&self, project: &str) -> BTreeMap<String, Entry> {
        self.projects.get(project).cloned().unwrap_or_default()
    }
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
}

pub fn probe() -> Probe {
    Probe {
        key: PROBE_KEY.to_owned(),
        script: format!("cat {}", quote(PATH)),
    }
}

/// Parses the record; a host corral never wrote to has none.
pub fn parse(out: &ProbeOutput) -> Result<Record, FactError> {
    if out.rc != 0 {
        if out.output.contains("No such file or directory") {
            return Ok(Record::default());
        }
        return Err(FactError::unexpected(PROBE_KEY, out));
    }
    let record: Record = serde_json::from_str(&out.output)
        .map_err(|e| FactError::new(PROBE_KEY, format!("{PATH} is not a corral record: {e}")))?;
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

/// The record of a host as gathered.
pub fn recorded(facts: &HostFacts) -> Result<Record, FactError> {
    parse(facts.get(PROBE_KEY)?)
}

/// The plan's change that deletes what `entry` recorded.
pub fn deletion(address: Address, machine: &str, entry: &Entry) -> ResourceChange {
    let mut attributes = Vec::new();
    if let Some(unit) = &entry.unit {
        attributes.push(AttrChange::new(
            "unit",
            AttrValue::Scalar(unit.clone()),
            AttrValue::Absent,
        ));
    }
    if let Some(path) = &entry.path {
        attributes.push(AttrChange::new(
            "path",
            AttrValue::Scalar(path.clone()),
            AttrValue::Absent,
        ));
    }
    let reason = if entry.kind == crate::kinds::sysctl::KIND {
        "no longer in the configuration; live values stay until `sysctl --system` or a reboot"
    } else {
        "no longer in the configuration"
    };
    ResourceChange {
        address,
        machine: Some(machine.to_owned()),
        action: Action::Delete,
        attributes,
        reason: Some(reason.to_owned()),
        triggered_by: Vec::new(),
    }
}

/// The commands that delete what a [`deletion`] names. A unit file is removed; the unit
/// is stopped and disabled only when no packaged unit of that name takes over (removing an
/// override of `docker.service` must not stop Docker), else it restarts on the packaged one.
pub fn delete_steps(change: &ResourceChange) -> Vec<Step> {
    let value = |name: &str| match change.attribute(name).map(|a| &a.before) {
        Some(AttrValue::Scalar(value)) => Some(value.clone()),
        _ => None,
    };
    let mut script = String::from("set -e\n");
    let mut what = Vec::new();
    let path = value("path");
    match (value("unit"), &path) {
        (Some(unit), Some(path)) => {
            let (u, p) = (quote(&unit), quote(path));
            script.push_str(&format!(
                "if [ -e /lib/systemd/system/{u} ] || [ -e /usr/lib/systemd/system/{u} ]; then\n  rm -f -- {p}\n  systemctl daemon-reload\n  systemctl try-restart -- {u}\nelse\n  systemctl disable --now -- {u} || true\n  rm -f -- {p}\n  systemctl daemon-reload\nfi\n"
            ));
            what.push(path.clone());
        }
        (_, Some(path)) => {
            script.push_str(&format!("rm -f -- {}\n", quote(path)));
            what.push(path.clone());
        }
        (_, None) => {}
    }
    vec![Step {
        description: format!("delete {}", what.join(" ")),
        script,
    }]
}

/// A host's record after an apply: deletions that succeeded leave the project's record;
/// resources applied with success enter it (replacing any older entry for the same file or
/// unit, as when a resource is renamed).
pub fn updated(
    old: &Record,
    machine: &str,
    config: &crate::config::Config,
    plan: &crate::plan::Plan,
    applied: &std::collections::HashSet<&Address>,
) -> Record {
    let mut record = old.clone();
    let resources = record.projects.entry(config.project.clone()).or_default();
    for change in &plan.resource_changes {
        if change.machine.as_deref() != Some(machine) || !applied.contains(&change.address) {
            continue;
        }
        let resource_address = change.address.resource();
        let key = resource_address.to_string();
        if change.action == Action::Delete {
            resources.remove(&key);
            continue;
        }
        let entry = config
            .resources
            .iter()
            .find(|r| r.address == resource_address)
            .and_then(|r| r.spec.per_machine()?.managed_entry(&r.address.name));
        if let Some(entry) = entry {
            resources.retain(|k, e| {
                k == &key
                    || (e.path.is_none() || e.path != entry.path)
                        && (e.unit.is_none() || e.unit != entry.unit)
            });
            resources.insert(key, entry);
        }
    }
    record.projects.retain(|_, resources| !resources.is_empty());
    record
}

/// Shell text that replaces the host's record atomically.
pub fn write_script(record: &Record) -> String {
    let record = Record {
        format_version: FORMAT_VERSION,
        projects: record.projects.clone(),
    };
    let text = serde_json::to_string_pretty(&record).unwrap_or_default() + "\n";
    file::write_script(
        &DesiredFile {
            path: PATH,
            bytes: text.as_bytes(),
            mode: Some("0600"),
            owner: Some("root"),
            group: Some("root"),
            sensitive: false,
        },
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded as fixtures;

    #[test]
    fn fresh_host_has_no_record() {
        let out = fixtures::probe("lab-fresh", "n1", PROBE_KEY);
        assert_eq!(out.rc, 1);
        assert_eq!(parse(&out).unwrap(), Record::default());
    }

    #[test]
    fn applied_host_records_what_corral_wrote() {
        let record = parse(&fixtures::probe("lab-converged", "n1", PROBE_KEY)).unwrap();
        let resources = record.project("default");
        let addresses: Vec<&str> = resources.keys().map(String::as_str).collect();
        assert_eq!(
            addresses,
            [
                "os/file.api-token",
                "os/file.heartbeat-config",
                "os/file.issue-net",
                "os/file.motd",
                "os/service.heartbeat",
                "os/sysctl.baseline"
            ]
        );
        assert_eq!(
            resources["os/service.heartbeat"].unit.as_deref(),
            Some("corral-heartbeat.service")
        );
    }

    #[test]
    fn deleting_a_unit_stops_it_unless_a_packaged_unit_takes_over() {
        let entry = Entry {
            kind: "os/service".into(),
            path: Some("/etc/systemd/system/x y.service".into()),
            unit: Some("x y.service".into()),
        };
        let change = deletion(Address::new("os/service", "x", Some("n1")), "n1", &entry);
        let script = &delete_steps(&change)[0].script;
        assert!(
            script.contains("systemctl disable --now -- 'x y.service'"),
            "{script}"
        );
        assert!(
            script.contains("rm -f -- '/etc/systemd/system/x y.service'"),
            "{script}"
        );
        assert!(
            script.contains("then\n  rm -f -- '/etc/systemd/system/x y.service'\n  systemctl daemon-reload\n  systemctl try-restart -- 'x y.service'\nelse"),
            "a packaged unit of the same name takes over instead: {script}"
        );
        assert!(
            script.ends_with("systemctl daemon-reload\nfi\n"),
            "{script}"
        );
    }
}
