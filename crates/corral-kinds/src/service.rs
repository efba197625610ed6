//! `os/service`: a systemd unit enabled and/or active, optionally with its unit file.
//!
//! Reads `systemctl show` and, when the unit file is managed, the file under
//! `/etc/systemd/system/`. A changed unit file is written atomically, followed by
//! `daemon-reload` and a restart when the unit should be running. A unit that does not
//! exist yet (its package is installed by the same apply) plans as a change rather than an
//! error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file::{self, Content, DesiredFile};
use super::{Claim, Kind, MachineKind, Step};
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/service";

/// `os/service` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub machines: Selector,
    /// Unit name; `.service` is added when it has no suffix.
    pub unit: String,
    pub enabled: Option<bool>,
    pub active: Option<bool>,
    /// What a change to something this service `depends_on` does to it while it runs:
    /// `restart` (the default) or `reload` (`systemctl reload`, never a restart: a unit
    /// that cannot reload fails the step; a changed unit file still restarts it).
    #[serde(default)]
    pub on_change: OnChange,
    /// Unit file content, written to `/etc/systemd/system/UNIT`.
    pub content: Option<Content>,
    /// Unit file relative to the document's file.
    pub source: Option<String>,
    #[serde(skip)]
    pub bytes: Option<Content>,
}

/// How a running service takes up changed inputs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OnChange {
    #[default]
    Restart,
    Reload,
}

/// What `systemctl show` says about a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub load_state: String,
    pub active_state: String,
    pub unit_file_state: String,
    /// When the unit last became active (seconds since the epoch), if it ever did.
    pub active_since: Option<u64>,
}

impl UnitState {
    pub fn exists(&self) -> bool {
        self.load_state != "not-found"
    }

    pub fn is_enabled(&self) -> bool {
        matches!(
            self.unit_file_state.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated"
        )
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "reloading" | "activating"
        )
    }
}

pub const SHOW_PROPERTIES: &str = "LoadState,ActiveState,UnitFileState,ActiveEnterTimestamp";

/// What systemd says of `unit` (parsed by [`parse`]); the key is `systemd:UNIT`.
pub fn unit_probe(unit: &str) -> Probe {
    Probe {
        key: format!("systemd:{unit}"),
        script: format!(
            "systemctl show --timestamp=unix -p {SHOW_PROPERTIES} -- {}",
            quote(unit)
        ),
    }
}

/// Parses `systemctl show --timestamp=unix -p LoadState,ActiveState,UnitFileState,ActiveEnterTimestamp UNIT`.
pub fn parse(key: &str, out: &ProbeOutput) -> Result<UnitState, FactError> {
    if out.rc != 0 {
        let hint = if out.output.contains("has not been booted with systemd")
            || out.output.contains("Failed to connect to bus")
        {
            "systemd is not running on this host; os/service needs systemd as PID 1"
        } else {
            ""
        };
        let mut error = FactError::unexpected(key, out);
        if !hint.is_empty() {
            error.message = format!("{hint} ({})", error.message);
        }
        return Err(error);
    }
    let values: BTreeMap<&str, &str> = out
        .output
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| {
        values
            .get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| FactError::new(key, format!("systemctl show printed no {k}")))
    };
    Ok(UnitState {
        load_state: get("LoadState")?,
        active_state: get("ActiveState")?,
        unit_file_state: get("UnitFileState")?,
        active_since: values
            .get("ActiveEnterTimestamp")
            .and_then(|v| v.strip_prefix('@'))
            .and_then(|v| v.parse().ok()),
    })
}

/// Before → after of a yes/no setting of a unit that may not exist yet.
fn switch(name: &str, exists: bool, before: bool, after: bool) -> AttrChange {
    let before = if exists {
        AttrValue::Bool(before)
    } else {
        AttrValue::Scalar(NO_SUCH_UNIT.into())
    };
    AttrChange::new(name, before, AttrValue::Bool(after))
}

const NO_SUCH_UNIT: &str = "(no such unit)";

const UNIT_FILE: &str = "unit_file";

impl Kind for ServiceSpec {
    const SECRET_FIELDS: &'static [&'static [&'static str]] = &[&["content"]];

    fn check(mut self, ctx: &mut CheckContext) -> Self {
        if !self.unit.contains('.') {
            self.unit.push_str(".service");
        }
        if !crate::shell::is_plain_word(&self.unit) || self.unit.contains('/') {
            ctx.error(
                &["unit"],
                format!("`{}` is not a systemd unit name", self.unit),
                "here",
            );
        }
        match (&self.content, &self.source) {
            (Some(content), None) => self.bytes = Some(content.clone()),
            (None, Some(source)) => {
                let source = source.clone();
                self.bytes = ctx.read_source(&["source"], &source).map(Content);
            }
            (Some(_), Some(_)) => {
                ctx.error(
                    &["source"],
                    "`content` and `source` are both given",
                    "second unit file",
                );
            }
            (None, None) => {}
        }
        if self.enabled.is_none() && self.active.is_none() && self.bytes.is_none() {
            ctx.error(
                &[],
                "an os/service needs at least one of `enabled`, `active`, `content`, `source`",
                "in this specification",
            );
        }
        self
    }
}

impl ServiceSpec {
    fn unit_path(&self) -> String {
        format!("/etc/systemd/system/{}", self.unit)
    }

    fn unit_file(&self) -> Option<DesiredFile<'_>> {
        let bytes = self.bytes.as_ref()?;
        Some(DesiredFile {
            path: "",
            bytes: &bytes.0,
            mode: Some("0644"),
            owner: Some("root"),
            group: Some("root"),
            sensitive: false,
            // An administrator's own unit file found there is kept, and put back when the
            // resource is removed.
            keep_original: true,
        })
    }

    fn key(&self) -> String {
        format!("systemd:{}", self.unit)
    }
}

/// What a service resource changes on one host, decided once from its facts: the plan
/// shows `diff`, the steps act on the rest.
struct ServiceChanges {
    diff: Diff,
    /// The unit file is written.
    unit_file: bool,
    /// `enabled` changes.
    enabled: bool,
    /// `active` changes (the unit starts or stops).
    active: bool,
}

impl ServiceSpec {
    fn changes(&self, facts: &HostFacts) -> Result<ServiceChanges, FactError> {
        let key = self.key();
        let state = parse(&key, facts.get(&key)?)?;
        let mut attributes = Vec::new();
        let mut action = Action::Update;
        if let Some(desired) = self.unit_file() {
            let path = self.unit_path();
            let desired = DesiredFile {
                path: &path,
                ..desired
            };
            let file_key = file::probe_key(&path, file::Read::Content);
            let file_state = file::parse(&file_key, facts.get(&file_key)?)?;
            let (file_action, changes) = file::diff_file(&file_key, "", &desired, &file_state)?;
            if file_action == Action::Create {
                action = Action::Create;
            }
            attributes.extend(
                changes
                    .into_iter()
                    .filter(|c| c.name == "content")
                    .map(|mut c| {
                        c.name = UNIT_FILE.into();
                        c
                    }),
            );
        }
        let missing = !state.exists() && self.bytes.is_none();
        if self.enabled == Some(false) && state.is_enabled() && state.unit_file_state != "enabled" {
            return Err(FactError::new(
                &key,
                format!(
                    "{} is {} and cannot be disabled; remove `enabled: false` (or mask the unit)",
                    self.unit, state.unit_file_state
                ),
            ));
        }
        if let Some(enabled) = self.enabled {
            if missing || state.is_enabled() != enabled {
                attributes.push(switch("enabled", !missing, state.is_enabled(), enabled));
            }
        }
        if let Some(active) = self.active {
            if missing || state.is_active() != active {
                attributes.push(switch("active", !missing, state.is_active(), active));
            }
        }
        let unit_changed = attributes.iter().any(|a| a.name == UNIT_FILE);
        let running = state.is_active() && self.active != Some(false);
        let reason = (unit_changed && running)
            .then(|| "the unit file changed, so the running unit is restarted".to_owned());
        if attributes.is_empty() {
            action = Action::NoOp;
        }
        Ok(ServiceChanges {
            unit_file: unit_changed,
            enabled: attributes.iter().any(|a| a.name == "enabled"),
            active: attributes.iter().any(|a| a.name == "active"),
            diff: Diff {
                action: Some(action),
                attributes,
                reason,
            },
        })
    }
}

impl MachineKind for ServiceSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        2
    }

    fn probes(&self, _name: &str) -> Vec<Probe> {
        let mut probes = vec![unit_probe(&self.unit)];
        if self.bytes.is_some() {
            probes.push(file::probe(&self.unit_path(), file::Read::Content));
        }
        probes
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        Ok(self.changes(facts)?.diff)
    }

    fn managed_entry(&self, _name: &str) -> Option<crate::facts::record::Entry> {
        self.bytes.as_ref().map(|_| crate::facts::record::Entry {
            unit: Some(self.unit.clone()),
            ..crate::facts::record::Entry::file(KIND, &self.unit_path())
        })
    }

    fn claims(&self, _name: &str) -> Vec<Claim> {
        let unit_file = self.bytes.as_ref().map(Content::sha256);
        let mut claims = vec![Claim::new(
            format!("unit {}", self.unit),
            format!("{:?} {:?} {unit_file:?}", self.enabled, self.active),
        )];
        if let Some(sha) = unit_file {
            claims.push(Claim::new(format!("file {}", self.unit_path()), sha));
        }
        claims
    }

    /// Whatever its state at plan time: a service installed and started by its package in
    /// the same apply (nginx) must still end on the new configuration.
    fn restarts_when_dependencies_change(&self, _diff: &Diff) -> bool {
        self.active != Some(false)
    }

    /// A changed unit file is a restart whatever `on_change` says (see `steps`).
    fn reloads_instead_of_restarting(&self, diff: &Diff) -> bool {
        self.on_change == OnChange::Reload && !diff.attributes.iter().any(|a| a.name == UNIT_FILE)
    }

    fn started_at(&self, _name: &str, facts: &HostFacts) -> Option<u64> {
        if self.active == Some(false) || self.on_change == OnChange::Reload {
            return None;
        }
        let state = parse(&self.key(), facts.get(&self.key()).ok()?).ok()?;
        state.is_active().then_some(state.active_since?)
    }

    fn steps(&self, _name: &str, change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let changes = match self.changes(facts) {
            Ok(changes) => changes,
            Err(e) => return vec![super::failing_step(&format!("configure {}", self.unit), &e)],
        };
        let unit = quote(&self.unit);
        let mut script = String::from("set -e\n");
        let unit_changed = changes.unit_file;
        if unit_changed {
            if let Some(desired) = self.unit_file() {
                let path = self.unit_path();
                script.push_str(&file::write_script(&DesiredFile {
                    path: &path,
                    ..desired
                }));
                script.push_str("systemctl daemon-reload\n");
            }
        }
        if let Some(enabled) = self.enabled {
            if changes.enabled {
                let verb = if enabled { "enable" } else { "disable" };
                script.push_str(&format!("systemctl {verb} -- {unit}\n"));
            }
        }
        let starts = changes.active;
        let triggered = !change.triggered_by.is_empty();
        let restart = unit_changed || triggered;
        // A reload never turns into a restart (`reload-or-restart` would, for a unit that
        // cannot reload); a changed unit file needs a restart whatever `on_change` says.
        let take_up = match self.on_change {
            OnChange::Reload if !unit_changed => "reload",
            _ => "restart",
        };
        match self.active {
            // Decided on the host when the step runs: a package may have started the
            // service on its default configuration since the plan was made; one not
            // running starts on the new configuration.
            Some(true) if restart && take_up == "reload" => script.push_str(&format!(
                "if systemctl is-active --quiet -- {unit}; then systemctl reload -- {unit}; else systemctl start -- {unit}; fi\n"
            )),
            Some(true) if restart => script.push_str(&format!("systemctl {take_up} -- {unit}\n")),
            Some(true) if starts => script.push_str(&format!("systemctl start -- {unit}\n")),
            Some(false) if starts => script.push_str(&format!("systemctl stop -- {unit}\n")),
            None if restart => script.push_str(&format!(
                "if systemctl is-active --quiet -- {unit}; then systemctl {take_up} -- {unit}; fi\n"
            )),
            _ => {}
        }
        vec![Step {
            description: format!("configure {}", self.unit),
            script,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    #[test]
    fn running_enabled_unit() {
        let out = recorded::probe("lab-fresh", "n1", "systemd:ssh.service");
        let state = parse("k", &out).unwrap();
        assert!(
            state.exists() && state.is_active() && state.is_enabled(),
            "{state:?}"
        );
    }

    #[test]
    fn missing_unit_plans_a_change_not_an_error() {
        let out = recorded::probe("lab-fresh", "n1", "systemd:no-such-unit-corral.service");
        assert_eq!(
            out.rc, 0,
            "systemctl show exits 0 for a unit it does not know"
        );
        let state = parse("k", &out).unwrap();
        assert_eq!(state.load_state, "not-found");
        let spec = ServiceSpec {
            machines: Selector::All,
            unit: "no-such-unit-corral.service".into(),
            enabled: Some(true),
            active: None,
            on_change: OnChange::Restart,
            content: None,
            source: None,
            bytes: None,
        };
        let diff = spec
            .diff("missing", &recorded::host("lab-fresh", "n1"))
            .unwrap();
        assert_eq!(diff.attributes, vec![switch("enabled", false, false, true)]);
    }

    fn heartbeat() -> ServiceSpec {
        let text = std::fs::read_to_string(format!(
            "{}/examples/baseline.yaml",
            corral_core::testing::REPOSITORY
        ))
        .unwrap();
        let start = text.find("[Unit]").unwrap();
        let end = text[start..].find("---").unwrap() + start;
        let content: String = text[start..end]
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        ServiceSpec {
            machines: Selector::All,
            unit: "corral-heartbeat.service".into(),
            enabled: Some(true),
            active: Some(true),
            on_change: OnChange::Restart,
            content: None,
            source: None,
            bytes: Some(Content(format!("{}\n", content.trim_end()).into_bytes())),
        }
    }

    #[test]
    fn new_unit_file_is_created_enabled_and_started() {
        let facts = recorded::host("lab-fresh", "n1");
        let diff = heartbeat().diff("heartbeat", &facts).unwrap();
        assert_eq!(diff.action(), Action::Create);
        let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["unit_file", "enabled", "active"]);
        let change = ResourceChange {
            address: crate::address::Address::new(KIND, "heartbeat", Some("n1")),
            machine: Some("n1".into()),
            action: diff.action(),
            attributes: diff.attributes,
            reason: diff.reason,
            triggered_by: Vec::new(),
        };
        let script = &heartbeat().steps("heartbeat", &change, &facts)[0].script;
        let order = ["daemon-reload", "systemctl enable", "systemctl restart"]
            .map(|s| script.find(s).unwrap());
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{script}");
    }

    #[test]
    fn converged_unit_is_a_no_op() {
        let diff = heartbeat()
            .diff("heartbeat", &recorded::host("lab-converged", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    fn change(attributes: Vec<AttrChange>, triggered_by: &[&str]) -> ResourceChange {
        ResourceChange {
            address: crate::address::Address::new(KIND, "heartbeat", Some("n1")),
            machine: Some("n1".into()),
            action: Action::Update,
            attributes,
            reason: None,
            triggered_by: triggered_by
                .iter()
                .map(|a| crate::address::Address::parse(a).unwrap())
                .collect(),
        }
    }

    /// A running service whose configuration changes in the same apply restarts (or
    /// reloads, with `on_change: reload`); one being created with its unit file restarts
    /// too, which starts it or, if its package started it on the default configuration
    /// meanwhile, restarts it on the new one.
    #[test]
    fn service_with_changed_inputs_ends_on_them() {
        let converged = recorded::host("lab-converged", "n1");
        let triggered = change(vec![], &["os/file.site[n1]"]);
        let script = &heartbeat().steps("heartbeat", &triggered, &converged)[0].script;
        assert!(
            script.contains("systemctl restart -- corral-heartbeat.service"),
            "{script}"
        );
        let reload = ServiceSpec {
            on_change: OnChange::Reload,
            ..heartbeat()
        };
        let script = &reload.steps("heartbeat", &triggered, &converged)[0].script;
        assert!(
            script.contains(
                "if systemctl is-active --quiet -- corral-heartbeat.service; then systemctl reload -- corral-heartbeat.service; else systemctl start -- corral-heartbeat.service; fi"
            ) && !script.contains("restart"),
            "a reload never restarts: {script}"
        );
        let fresh = recorded::host("lab-fresh", "n1");
        let script = &heartbeat().steps("heartbeat", &triggered, &fresh)[0].script;
        assert!(
            script.contains("systemctl restart -- corral-heartbeat.service")
                && !script.contains("systemctl start"),
            "{script}"
        );
    }

    /// The plan says "reloaded" only when the step reloads: a changed unit file restarts.
    #[test]
    fn a_changed_unit_file_is_planned_as_a_restart_even_with_reload() {
        let reload = ServiceSpec {
            on_change: OnChange::Reload,
            ..heartbeat()
        };
        let fresh = reload
            .diff("heartbeat", &recorded::host("lab-fresh", "n1"))
            .unwrap();
        assert!(fresh.attributes.iter().any(|a| a.name == UNIT_FILE));
        assert!(!reload.reloads_instead_of_restarting(&fresh));
        let converged = reload
            .diff("heartbeat", &recorded::host("lab-converged", "n1"))
            .unwrap();
        assert!(reload.reloads_instead_of_restarting(&converged));
        assert!(!heartbeat().reloads_instead_of_restarting(&converged));
    }

    /// systemd says when a unit became active; a reload leaves no trace, so a service
    /// that reloads on change gives no start time to compare with.
    #[test]
    fn start_time_comes_from_systemd() {
        let facts = recorded::host("lab-converged", "n1");
        let started = heartbeat().started_at("heartbeat", &facts).unwrap();
        assert!(started > 1_700_000_000, "{started}");
        let reload = ServiceSpec {
            on_change: OnChange::Reload,
            ..heartbeat()
        };
        assert_eq!(reload.started_at("heartbeat", &facts), None);
    }
}
