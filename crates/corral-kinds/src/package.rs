//! `os/package`: apt packages present (optionally pinned, `name=version`) or absent.
//!
//! Reads `dpkg-query` for every named package at once; only status `ii` counts as
//! installed (`rc`, removed with configuration left, counts as absent).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Claim, Kind, MachineKind, Step};
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/package";

/// `os/package` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
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

/// Separates `dpkg-query`'s output from `apt-cache policy`'s in the probe.
const POLICY_MARKER: &str = "@policy";

/// What `apt-cache policy` knows of a package: the candidate and every version it can
/// install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub candidate: Option<String>,
    pub versions: Vec<String>,
}

/// Parses `apt-cache policy NAMES…`; a package apt does not know has no block at all.
pub fn parse_policy(text: &str) -> BTreeMap<String, Policy> {
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    let mut current: Option<&mut Policy> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            current = Some(policies.entry(name.to_owned()).or_default());
            continue;
        }
        let Some(policy) = current.as_deref_mut() else {
            continue;
        };
        let trimmed = line.trim_start();
        if let Some(candidate) = trimmed.strip_prefix("Candidate: ") {
            policy.candidate = (candidate != "(none)").then(|| candidate.to_owned());
        } else if line.starts_with("     ") || line.starts_with(" *** ") {
            // Version table: `     VERSION PRIORITY` (or ` *** ` for the installed one);
            // deeper lines are the sources.
            let fields: Vec<&str> = trimmed
                .trim_start_matches("*** ")
                .split_whitespace()
                .collect();
            if let [version, priority] = fields.as_slice() {
                if priority.parse::<i32>().is_ok() && !line.starts_with("        ") {
                    policy.versions.push((*version).to_owned());
                }
            }
        }
    }
    policies
}

/// Parses `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' NAMES…`:
/// installed packages by name. rc 1 with "no packages found matching" lines is normal.
pub fn parse(key: &str, out: &ProbeOutput) -> Result<BTreeMap<String, Installed>, FactError> {
    parse_with_policy(key, out).map(|(installed, _)| installed)
}

/// [`parse`], and what apt can install of the packages to install.
#[allow(clippy::type_complexity)]
pub fn parse_with_policy(
    key: &str,
    out: &ProbeOutput,
) -> Result<(BTreeMap<String, Installed>, BTreeMap<String, Policy>), FactError> {
    let (dpkg, policy) = match out.output.split_once(&format!("{POLICY_MARKER}\n")) {
        Some((dpkg, policy)) => (dpkg, parse_policy(policy)),
        None => (out.output.as_str(), BTreeMap::new()),
    };
    let mut installed = BTreeMap::new();
    for line in dpkg.lines() {
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
    Ok((installed, policy))
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
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

const NOT_INSTALLED: &str = "(not installed)";
const INSTALLED: &str = "(installed)";

impl Kind for PackageSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.present.is_empty() && self.absent.is_empty() {
            ctx.error(
                &[],
                "an os/package needs `present` or `absent` packages",
                "in this specification",
            );
        }
        let mut seen = BTreeMap::new();
        for (field, entries) in [("present", &self.present), ("absent", &self.absent)] {
            for entry in entries {
                let (name, version) = split(entry);
                let version_ok = version.is_none_or(|v| {
                    !v.is_empty()
                        && v.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '~' | ':')
                        })
                });
                if !valid_package_name(name) || !version_ok {
                    ctx.error(
                        &[field],
                        format!("`{entry}` is not a package name (or `name=version`)"),
                        "in this list",
                    )
                    .help = Some(
                        "Debian package names are lowercase letters, digits, `+`, `-` and `.` (no `:arch`)"
                            .into(),
                    );
                } else if field == "absent" && version.is_some() {
                    ctx.error(
                        &[field],
                        format!("`{entry}`: packages to remove take no version"),
                        "in this list",
                    );
                }
                if let Some(first) = seen.insert(name.to_owned(), field) {
                    ctx.error(
                        &[field],
                        format!("package `{name}` is listed twice (also in `{first}`)"),
                        "in this list",
                    );
                }
            }
        }
        self
    }

    /// A package installed by the same apply may bring the user or group another
    /// resource needs (postgresql's `postgres`).
    const MAY_PROVIDE: bool = true;
}

impl PackageSpec {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.present.iter().chain(&self.absent).map(|e| split(e).0)
    }
}

impl MachineKind for PackageSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    /// An upgrade restarts the services it touches: one machine at a time, each proven healthy before the
    /// next, without a settle time.
    fn rolling(&self) -> Option<crate::base::envelope::Rolling> {
        Some(crate::base::envelope::Rolling::immediate())
    }

    fn rank(&self) -> u8 {
        0
    }

    /// `dpkg-query` for every package, then (after a `@policy` line) `apt-cache policy` for
    /// the packages still to install (not installed, or not at their pinned version), so
    /// that a name or version apt does not know is a plan error on that host rather than a
    /// failed apply; a converged host runs no `apt-cache` at all. The exit code is
    /// dpkg-query's.
    fn probes(&self, name: &str) -> Vec<Probe> {
        let names: Vec<String> = self.names().map(quote).collect();
        let policy = if self.present.is_empty() {
            String::new()
        } else {
            // Which of the wanted packages dpkg does not show as installed at their pin.
            let want = quote(&self.present.join(" "));
            format!(
                "need=$(printf '%s\\n' \"$out\" | awk -F '\\t' -v want={want} 'BEGIN {{ n = split(want, w, \" \"); for (i = 1; i <= n; i++) {{ split(w[i], nv, \"=\"); m[nv[1]] = 1; v[nv[1]] = nv[2] }} }} $3 ~ /^ii/ && (v[$1] == \"\" || v[$1] == $2) {{ delete m[$1] }} END {{ for (k in m) print k }}')\nif [ -n \"$need\" ]; then echo '{POLICY_MARKER}'; apt-cache policy $need 2>&1; fi\n"
            )
        };
        vec![Probe {
            key: format!("dpkg:{name}"),
            script: format!(
                "out=$(dpkg-query -W -f='${{Package}}\\t${{Version}}\\t${{db:Status-Abbrev}}\\n' {} 2>&1)\nrc=$?\nprintf '%s\\n' \"$out\"\n{policy}return $rc",
                names.join(" ")
            ),
        }]
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let changes = self.changes(name, facts)?;
        let refreshes = self.update_cache && !changes.install.is_empty();
        let mut diff = Diff::update_if_changed(changes.attributes);
        // A step the attributes do not show, which reaches the network and changes what
        // apt will install: the reviewer sees it.
        if refreshes {
            diff.reason = Some(UPDATE_FIRST.into());
        }
        Ok(diff)
    }

    fn claims(&self, _name: &str) -> Vec<Claim> {
        let present = self.present.iter().map(|e| {
            let (name, version) = split(e);
            Claim::new(format!("package {name}"), format!("present {version:?}"))
        });
        let absent = self
            .absent
            .iter()
            .map(|name| Claim::new(format!("package {name}"), "absent"));
        present.chain(absent).collect()
    }

    fn steps(&self, name: &str, _change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let changes = match self.changes(name, facts) {
            Ok(changes) => changes,
            Err(e) => return vec![super::failing_step("install and remove packages", &e)],
        };
        // Keep locally changed configuration files without asking (no one can answer), and
        // allow a pin to an older version.
        let apt = "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=120 \\\n  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";
        let install: Vec<String> = changes.install.iter().map(|e| quote(e)).collect();
        let remove: Vec<String> = changes.remove.iter().map(|p| quote(p)).collect();
        let mut steps = Vec::new();
        if !install.is_empty() {
            let update = if self.update_cache {
                format!("{apt} update\n")
            } else {
                String::new()
            };
            steps.push(Step {
                description: format!("install {}", install.join(" ")),
                script: format!(
                    "set -e\n{update}{apt} --allow-downgrades install {}\n",
                    install.join(" ")
                ),
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

/// The reason of a change that installs with `update_cache: true`.
const UPDATE_FIRST: &str =
    "the package lists are refreshed first (`update_cache: true` runs `apt-get update`)";

/// What a package resource changes on one host, decided once from its facts: the plan
/// shows `attributes`, the steps act on `install` and `remove`.
struct PackageChanges<'a> {
    /// Entries of `present` (`name` or `name=version`) to install.
    install: Vec<&'a str>,
    /// Packages of `absent` to remove.
    remove: Vec<&'a str>,
    attributes: Vec<AttrChange>,
}

impl PackageSpec {
    fn changes(&self, name: &str, facts: &HostFacts) -> Result<PackageChanges<'_>, FactError> {
        let key = format!("dpkg:{name}");
        let (installed, policy) = parse_with_policy(&key, facts.get(&key)?)?;
        let mut attributes = Vec::new();
        let (mut install, mut remove) = (Vec::new(), Vec::new());
        let mut unknown = Vec::new();
        for entry in &self.present {
            let (package, version) = split(entry);
            let want = version.unwrap_or(INSTALLED);
            let needed = installed
                .get(package)
                .is_none_or(|have| version.is_some_and(|v| v != have.version));
            // With `update_cache`, the lists are refreshed first: what they will hold is
            // not known yet.
            if needed && !self.update_cache {
                let known = policy.get(package).cloned().unwrap_or_default();
                match version {
                    None if known.candidate.is_none() => {
                        unknown.push(format!("apt has no package `{package}`"))
                    }
                    Some(v) if !known.versions.iter().any(|k| k == v) => unknown.push(format!(
                        "apt has no version `{v}` of `{package}` (it has: {})",
                        if known.versions.is_empty() {
                            "none".to_owned()
                        } else {
                            known.versions.join(", ")
                        }
                    )),
                    _ => {}
                }
            }
            match (installed.get(package), version) {
                (None, _) => {
                    install.push(entry.as_str());
                    attributes.push(AttrChange::new(
                        package,
                        AttrValue::Scalar(NOT_INSTALLED.into()),
                        AttrValue::Scalar(want.into()),
                    ))
                }
                (Some(have), Some(version)) if have.version != version => {
                    install.push(entry.as_str());
                    attributes.push(AttrChange::scalar(package, have.version.as_str(), version))
                }
                _ => {}
            }
        }
        for package in &self.absent {
            if let Some(have) = installed.get(package.as_str()) {
                remove.push(package.as_str());
                attributes.push(AttrChange::scalar(
                    package.as_str(),
                    have.version.as_str(),
                    NOT_INSTALLED,
                ));
            }
        }
        if !unknown.is_empty() {
            return Err(FactError::new(
                &key,
                format!(
                    "{} on this host; check the name, or set `update_cache: true` if its package lists are old",
                    unknown.join("; ")
                ),
            ));
        }
        Ok(PackageChanges {
            install,
            remove,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;
    use crate::plan::Action;

    #[test]
    fn installed_unknown_and_removed_packages() {
        let out = recorded::probe("lab-fresh", "n1", "dpkg:unknown");
        assert_eq!(out.rc, 1, "dpkg-query exits 1 when a name matches nothing");
        let installed = parse("dpkg:unknown", &out).unwrap();
        assert!(installed.contains_key("openssh-server"));
        assert!(!installed.contains_key("no-such-package-corral"));
        assert!(!installed.contains_key("telnet"));
    }

    #[test]
    fn only_status_ii_counts_as_installed() {
        let out = ProbeOutput {
            rc: 0,
            output: "ufw\t0.36.2-1\trc \ntree\t2.1.0-1\tii \n".into(),
        };
        let installed = parse("k", &out).unwrap();
        assert_eq!(installed.keys().collect::<Vec<_>>(), ["tree"]);
    }

    fn spec() -> PackageSpec {
        PackageSpec {
            machines: Selector::All,
            present: vec!["tree".into()],
            absent: vec!["ufw".into()],
            update_cache: false,
        }
    }

    #[test]
    fn fresh_host_installs_and_removes() {
        let facts = recorded::host("lab-fresh", "n1");
        let diff = spec().diff("base", &facts).unwrap();
        assert_eq!(diff.action(), Action::Update);
        assert_eq!(
            diff.attributes[0],
            AttrChange::scalar("tree", NOT_INSTALLED, INSTALLED)
        );
        assert_eq!(diff.attributes[1].name, "ufw");
        assert_eq!(
            diff.attributes[1].after,
            AttrValue::Scalar(NOT_INSTALLED.into())
        );
        let change = ResourceChange {
            address: crate::address::Address::new(KIND, "base", Some("n1")),
            machine: Some("n1".into()),
            action: diff.action(),
            attributes: diff.attributes,
            reason: None,
            triggered_by: Vec::new(),
        };
        let steps = spec().steps("base", &change, &facts);
        assert_eq!(steps.len(), 2);
        assert!(
            steps[0].script.contains("install tree"),
            "{}",
            steps[0].script
        );
        assert!(
            steps[1].script.contains("remove ufw"),
            "{}",
            steps[1].script
        );
    }

    #[test]
    fn converged_host_is_a_no_op() {
        let diff = spec()
            .diff("base", &recorded::host("lab-converged", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    #[test]
    fn pinned_version_differs() {
        // Refreshed lists may hold 9.9-1: planned, not refused.
        let pinned = PackageSpec {
            present: vec!["tree=9.9-1".into()],
            absent: vec![],
            update_cache: true,
            ..spec()
        };
        let probe = recorded::probe("lab-converged", "n1", "dpkg:base");
        let facts = HostFacts {
            probes: [("dpkg:pinned".to_owned(), probe)].into(),
            ..HostFacts::default()
        };
        let diff = pinned.diff("pinned", &facts).unwrap();
        assert_eq!(diff.attributes.len(), 1);
        assert_eq!(diff.attributes[0].after, AttrValue::Scalar("9.9-1".into()));
    }

    /// `update_cache: true` ran `apt-get update` unseen: the plan says so when it installs,
    /// and not when it only removes (no update runs then).
    #[test]
    fn update_cache_is_shown_when_packages_are_installed() {
        let facts = recorded::host("lab-fresh", "n1");
        let refreshed = PackageSpec {
            update_cache: true,
            ..spec()
        };
        let diff = refreshed.diff("base", &facts).unwrap();
        assert_eq!(diff.reason.as_deref(), Some(UPDATE_FIRST));
        assert_eq!(spec().diff("base", &facts).unwrap().reason, None);
        let removing_only = PackageSpec {
            present: vec![],
            ..refreshed
        };
        let diff = removing_only.diff("base", &facts).unwrap();
        assert_eq!(diff.action(), Action::Update, "{diff:?}");
        assert_eq!(diff.reason, None);
    }

    /// A name apt does not know, or a version it cannot install, is a plan error on that
    /// host (as apt-cache policy shows), not a step that is sure to fail; with
    /// `update_cache` the refreshed lists are not known yet, so it plans.
    #[test]
    fn unknown_package_or_version_is_a_plan_error() {
        let facts = recorded::host("lab-fresh", "n1");
        let unknown = PackageSpec {
            present: vec!["no-such-package-corral".into(), "openssh-server".into()],
            absent: vec![],
            ..spec()
        };
        let error = unknown.diff("unknown", &facts).unwrap_err();
        assert!(
            error
                .message
                .contains("apt has no package `no-such-package-corral`"),
            "{error}"
        );
        let pinned = PackageSpec {
            present: vec!["less=0.0.1-corral".into()],
            absent: vec![],
            ..spec()
        };
        let error = pinned.diff("pinned-unknown", &facts).unwrap_err();
        assert!(
            error
                .message
                .contains("apt has no version `0.0.1-corral` of `less` (it has: 590-2.1~deb12u2)"),
            "{error}"
        );
        let refreshed = PackageSpec {
            update_cache: true,
            ..unknown
        };
        assert_eq!(
            refreshed.diff("unknown", &facts).unwrap().attributes[0].name,
            "no-such-package-corral"
        );
    }

    /// Only packages still to install are asked of apt (a converged host runs no
    /// apt-cache); apt knows nothing of a name it has no package for.
    #[test]
    fn policy_lists_candidate_and_versions() {
        let out = recorded::probe("lab-fresh", "n1", "dpkg:base");
        let (_, policy) = parse_with_policy("k", &out).unwrap();
        assert_eq!(
            policy["tree"],
            Policy {
                candidate: Some("2.1.0-1".into()),
                versions: vec!["2.1.0-1".into()]
            }
        );
        let out = recorded::probe("lab-fresh", "n1", "dpkg:unknown");
        let (_, policy) = parse_with_policy("k", &out).unwrap();
        assert!(policy.is_empty(), "openssh-server is installed: {policy:?}");
        let out = recorded::probe("lab-converged", "n1", "dpkg:base");
        assert!(!out.output.contains("@policy"), "{out:?}");
    }
}
