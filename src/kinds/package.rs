//! `os/package`: apt packages present (optionally pinned, `name=version`) or absent.
//!
//! Reads `dpkg-query` for every named package at once; only status `ii` counts as
//! installed (`rc`, removed with configuration left, counts as absent).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MachineKind, Step};
use crate::config::{CheckContext, Selector};
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/package";

/// `os/package` specification.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    pub machines: Selector,
    /// Packages to install: `name` or `name=version`.
    #[serde(default)]
    pub present: Vec<String>,
    /// Packages to remove (configuration files are kept, as with `apt-get remove`).
    #[serde(default)]
    pub absent: Vec<String>,
    /// Run `apt-get update` before installing.
    #[serde(default)]
    pub update_cache: bool,
}

/// An installed package as `dpkg-query` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: String,
}

/// Parses `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' NAMES…`:
/// installed packages by name. rc 1 with "no packages found matching" lines is normal.
pub fn parse(key: &str, out: &ProbeOutput) -> Result<BTreeMap<String, Installed>, FactError> {
    let mut installed = BTreeMap::new();
    for line in out.output.lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(name), Some(version), Some(status)) => {
                if status.trim_end() == "ii" {
                    installed.insert(
                        name.to_owned(),
                        Installed {
                            version: version.to_owned(),
                        },
                    );
                }
            }
            _ if line.starts_with("dpkg-query: no packages found matching ") => {}
            _ if line.trim().is_empty() => {}
            _ => return Err(FactError::unexpected(key, out)),
        }
    }
    if out.rc != 0 && !(out.rc == 1 && out.output.contains("no packages found matching")) {
        return Err(FactError::unexpected(key, out));
    }
    Ok(installed)
}

/// Splits `name=version`.
fn split(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('=') {
        Some((name, version)) => (name, Some(version)),
        None => (entry, None),
    }
}

fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | ':'))
}

const NOT_INSTALLED: &str = "(not installed)";
const INSTALLED: &str = "(installed)";

impl PackageSpec {
    pub fn check(self, ctx: &mut CheckContext) -> Self {
        if self.present.is_empty() && self.absent.is_empty() {
            ctx.error(&[], "an os/package needs `present` or `absent` packages", "in this specification");
        }
        let mut seen = BTreeMap::new();
        for (field, entries) in [("present", &self.present), ("absent", &self.absent)] {
            for entry in entries {
                let (name, version) = split(entry);
                let version_ok = version.is_none_or(|v| {
                    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '~' | ':'))
                });
                if !valid_package_name(name) || !version_ok {
                    ctx.error(&[field], format!("`{entry}` is not a package name (or `name=version`)"), "in this list")
                        .help = Some("Debian package names are lowercase letters, digits, `+`, `-` and `.`".into());
                } else if field == "absent" && version.is_some() {
                    ctx.error(&[field], format!("`{entry}`: packages to remove take no version"), "in this list");
                }
                if let Some(first) = seen.insert(name.to_owned(), field) {
                    ctx.error(&[field], format!("package `{name}` is listed twice (also in `{first}`)"), "in this list");
                }
            }
        }
        self
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.present.iter().chain(&self.absent).map(|e| split(e).0)
    }
}

impl MachineKind for PackageSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        0
    }

    fn probes(&self, name: &str) -> Vec<Probe> {
        let names: Vec<String> = self.names().map(quote).collect();
        vec![Probe {
            key: format!("dpkg:{name}"),
            script: format!(
                "dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\n' {}",
                names.join(" ")
            ),
        }]
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let key = format!("dpkg:{name}");
        let installed = parse(&key, facts.get(&key)?)?;
        let mut attributes = Vec::new();
        for entry in &self.present {
            let (package, version) = split(entry);
            let want = version.unwrap_or(INSTALLED);
            match (installed.get(package), version) {
                (None, _) => attributes.push(AttrChange::new(package, AttrValue::Scalar(NOT_INSTALLED.into()), AttrValue::Scalar(want.into()))),
                (Some(have), Some(version)) if have.version != version => {
                    attributes.push(AttrChange::scalar(package, have.version.as_str(), version))
                }
                _ => {}
            }
        }
        for package in &self.absent {
            if let Some(have) = installed.get(package.as_str()) {
                attributes.push(AttrChange::scalar(package.as_str(), have.version.as_str(), NOT_INSTALLED));
            }
        }
        Ok(Diff::update_if_changed(attributes))
    }

    fn steps(&self, _name: &str, change: &ResourceChange) -> Vec<Step> {
        let apt = "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=120";
        let changed = |package: &str| change.attribute(package).is_some();
        let install: Vec<String> = self
            .present
            .iter()
            .filter(|e| changed(split(e).0))
            .map(|e| quote(e))
            .collect();
        let remove: Vec<String> = self.absent.iter().filter(|p| changed(p)).map(|p| quote(p)).collect();
        let mut steps = Vec::new();
        if !install.is_empty() {
            let update = if self.update_cache { format!("{apt} update\n") } else { String::new() };
            steps.push(Step {
                description: format!("install {}", install.join(" ")),
                script: format!("set -e\n{update}{apt} install {}\n", install.join(" ")),
            });
        }
        if !remove.is_empty() {
            steps.push(Step {
                description: format!("remove {}", remove.join(" ")),
                script: format!("set -e\n{apt} remove {}\n", remove.join(" ")),
            });
        }
        steps
    }
}
