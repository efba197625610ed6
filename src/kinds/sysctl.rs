//! `os/sysctl`: kernel parameters, persisted in one `/etc/sysctl.d/` file per resource and
//! applied live.
//!
//! The live value (`sysctl -n`) is the truth for each key, so a value changed by hand shows
//! up as exactly that key; the persisted file is compared as a file. A key the kernel does
//! not have is an error at plan time, not a surprise at apply time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file::{self, DesiredFile};
use super::{Claim, MachineKind, Step};
use crate::config::{CheckContext, Selector};
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/sysctl";

/// `os/sysctl` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SysctlSpec {
    pub machines: Selector,
    /// Keys (dotted, as `sysctl` prints them) to values.
    pub values: BTreeMap<String, String>,
}

/// Where a resource's values are persisted. Later files win at boot, and Debian links
/// `/etc/sysctl.conf` in as `99-sysctl.conf`: `99-zz-` sorts after it.
pub fn persisted_path(name: &str) -> String {
    format!("/etc/sysctl.d/99-zz-corral-{name}.conf")
}

fn probe_key(key: &str) -> String {
    format!("sysctl:{key}")
}

/// Values as `sysctl -n` prints them, with runs of whitespace (tabs in multi-value keys such
/// as `net.ipv4.ip_local_port_range`) made single spaces.
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the output of `sysctl -n KEY`: `Ok(None)` never happens; an unknown key is an
/// error that says so.
pub fn parse(probe: &str, key: &str, out: &ProbeOutput) -> Result<String, FactError> {
    if out.rc == 0 {
        return Ok(normalize(&out.output));
    }
    if out.output.contains("cannot stat") || out.output.contains("No such file or directory") {
        return Err(FactError::new(
            probe,
            format!(
                "the kernel has no sysctl key `{key}` (is the module that provides it loaded?)"
            ),
        ));
    }
    Err(FactError::unexpected(probe, out))
}

impl SysctlSpec {
    pub fn check(self, ctx: &mut CheckContext) -> Self {
        if self.values.is_empty() {
            ctx.error(&["values"], "`values` is empty", "here").help =
                Some("list at least one `key: value`, or remove the resource".into());
        }
        for (key, value) in &self.values {
            let valid = !key.is_empty()
                && !key.starts_with(['.', '/', '-'])
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !valid {
                ctx.error(
                    &["values", key],
                    format!("`{key}` is not a sysctl key"),
                    "here",
                )
                .help = Some(
                    "write keys as `sysctl -a` prints them, e.g. `net.ipv4.ip_forward`".into(),
                );
            }
            if value.contains(['\n', '\0']) || normalize(value).is_empty() {
                ctx.error(
                    &["values", key],
                    format!("the value of `{key}` must be a non-empty single line"),
                    "here",
                );
            }
        }
        self
    }

    fn persisted(&self, name: &str) -> Vec<u8> {
        let mut text =
            format!("# Managed by corral ({KIND}.{name}); local changes are overwritten.\n");
        for (key, value) in &self.values {
            text.push_str(&format!("{key} = {}\n", normalize(value)));
        }
        text.into_bytes()
    }
}

impl MachineKind for SysctlSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, name: &str) -> Vec<Probe> {
        let mut probes: Vec<Probe> = self
            .values
            .keys()
            .map(|key| Probe {
                key: probe_key(key),
                script: format!("sysctl -n {}", quote(key)),
            })
            .collect();
        probes.push(file::probe(&persisted_path(name), file::Read::Content));
        probes
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let mut attributes = Vec::new();
        for (key, value) in &self.values {
            let probe = probe_key(key);
            let live = parse(&probe, key, facts.get(&probe)?)?;
            let want = normalize(value);
            if live != want {
                attributes.push(AttrChange::scalar(key.as_str(), live, want));
            }
        }
        let path = persisted_path(name);
        let key = file::probe_key(&path, file::Read::Content);
        let state = file::parse(&key, facts.get(&key)?)?;
        let bytes = self.persisted(name);
        let desired = persisted_file(&path, &bytes);
        let (file_action, file_changes) = file::diff_file(&key, &path, &desired, &state)?;
        // The file shows as its path (content) and `PATH mode`; owner and group are always root.
        attributes.extend(file_changes.into_iter().filter_map(|mut c| {
            c.name = match c.name.strip_prefix(path.as_str())? {
                ".content" => path.clone(),
                ".mode" if c.before != AttrValue::Absent => format!("{path} mode"),
                _ => return None,
            };
            Some(c)
        }));
        let action = match (file_action, attributes.is_empty()) {
            (Action::Create, _) => Action::Create,
            (_, true) => Action::NoOp,
            (_, false) => Action::Update,
        };
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: None,
        })
    }

    fn managed_entry(&self, name: &str) -> Option<crate::managed::Entry> {
        Some(crate::managed::Entry {
            kind: KIND.to_owned(),
            path: Some(persisted_path(name)),
            unit: None,
        })
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .values
            .iter()
            .map(|(key, value)| Claim::new(format!("sysctl key {key}"), normalize(value)))
            .collect();
        claims.push(Claim::new(format!("file {}", persisted_path(name)), name));
        claims
    }

    fn steps(&self, name: &str, change: &ResourceChange) -> Vec<Step> {
        let path = persisted_path(name);
        let bytes = self.persisted(name);
        let mut script = String::new();
        if change.attributes.iter().any(|a| a.name.starts_with(&path)) {
            script.push_str(&file::write_script(&persisted_file(&path, &bytes), true));
        }
        script.push_str(&format!("sysctl -q -p {}\n", quote(&path)));
        vec![Step {
            description: format!("apply {path}"),
            script,
        }]
    }
}

fn persisted_file<'a>(path: &'a str, bytes: &'a [u8]) -> DesiredFile<'a> {
    DesiredFile {
        path,
        bytes,
        mode: Some("0644"),
        owner: Some("root"),
        group: Some("root"),
        sensitive: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    #[test]
    fn live_value_is_read_and_normalized() {
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.conf.all.send_redirects");
        assert_eq!(
            parse("p", "net.ipv4.conf.all.send_redirects", &out).unwrap(),
            "1"
        );
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.ip_local_port_range");
        assert_eq!(
            out.output, "32768\t60999\n",
            "sysctl prints multi-value keys with a tab"
        );
        assert_eq!(
            parse("p", "net.ipv4.ip_local_port_range", &out).unwrap(),
            "32768 60999"
        );
    }

    #[test]
    fn unknown_key_is_a_clear_error() {
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.no_such_key");
        assert_ne!(out.rc, 0);
        let error = parse("p", "net.ipv4.no_such_key", &out).unwrap_err();
        assert!(
            error
                .message
                .contains("has no sysctl key `net.ipv4.no_such_key`"),
            "{error}"
        );
    }

    fn spec() -> SysctlSpec {
        SysctlSpec {
            machines: Selector::All,
            values: [
                (
                    "net.ipv4.conf.all.send_redirects".to_owned(),
                    "0".to_owned(),
                ),
                ("net.ipv4.conf.all.log_martians".to_owned(), "1".to_owned()),
            ]
            .into(),
        }
    }

    #[test]
    fn fresh_host_gets_values_and_persisted_file() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-fresh", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::Create);
        let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "net.ipv4.conf.all.log_martians",
                "net.ipv4.conf.all.send_redirects",
                "/etc/sysctl.d/99-zz-corral-baseline.conf",
            ]
        );
    }

    #[test]
    fn converged_host_is_a_no_op() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-converged", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    #[test]
    fn hand_changed_value_is_exactly_that_key() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-drift", "n2"))
            .unwrap();
        assert_eq!(diff.action(), Action::Update);
        assert_eq!(
            diff.attributes,
            vec![AttrChange::scalar(
                "net.ipv4.conf.all.send_redirects",
                "1",
                "0"
            )]
        );
    }
}
