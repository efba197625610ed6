//! Stage 4: planning. [`build`] diffs every instance against the facts of its machine;
//! a [`SavedPlan`] is a plan kept for a later apply, with what tells whether it is stale.

pub mod build;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// A plan saved by `plan -o`, with what is needed to check, at apply time, that the
/// configuration and the hosts are still as the plan saw them. Holds no secret: sensitive
/// values are only ever [`AttrValue::Sensitive`](crate::plan::AttrValue::Sensitive) in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Marks the file as a saved plan (and its format version).
    pub corral_saved_plan: u32,
    /// The configuration paths, absolute.
    pub paths: Vec<std::path::PathBuf>,
    pub project: String,
    pub ignore_unknown_kinds: bool,
    pub targets: Vec<String>,
    pub excludes: Vec<String>,
    pub limit: Vec<String>,
    pub plan: Plan,
    /// sha256 of each configuration file by absolute path (`Config::files`), to name the
    /// file that changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_files: BTreeMap<String, String>,
    /// The secret values the hosts were compared with, sealed (`kinds::seal_secrets`): a
    /// changed secret file or variable changes those comparisons, not the configuration's
    /// digest, and is said to be that rather than "hosts changed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<String>,
    /// Each machine's digest of each probe (`HostFacts::probe_digests`), to name the
    /// resources whose facts changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probe_digests: BTreeMap<String, BTreeMap<String, String>>,
}

impl SavedPlan {
    pub const VERSION: u32 = 1;

    /// Reads `path` if it is a saved plan; `None` for anything else (e.g. YAML).
    pub fn read(path: &std::path::Path) -> Option<Result<SavedPlan, SavedPlanError>> {
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value.get("corral_saved_plan")?;
        Some(
            serde_json::from_value::<SavedPlan>(value)
                .map_err(|error| SavedPlanError::Unreadable {
                    path: path.to_owned(),
                    error,
                })
                .and_then(|saved| {
                    if saved.corral_saved_plan == Self::VERSION {
                        Ok(saved)
                    } else {
                        Err(SavedPlanError::OtherVersion {
                            path: path.to_owned(),
                            version: saved.corral_saved_plan,
                        })
                    }
                }),
        )
    }

    /// Why a fresh plan of the same configuration (`config`, read with `facts`) shows that
    /// this one is stale, if it does. `readers` names the resources that read some probes
    /// of a machine (`gather::readers`).
    pub fn staleness(
        &self,
        fresh: &Plan,
        config: &crate::config::Config,
        gathered: &crate::facts::Gathered,
        readers: &dyn Fn(&str, &std::collections::BTreeSet<String>) -> Vec<String>,
    ) -> Option<Staleness> {
        if fresh.config_digest != self.plan.config_digest {
            return Some(Staleness::ConfigChanged(changed_files(
                &self.config_files,
                &config.files,
            )));
        }
        // The hosts' facts compare secret values; new ones change those comparisons.
        if let Some(sealed) = &self.secrets {
            if !crate::kinds::same_secrets(config, Some(sealed)) {
                return Some(Staleness::SecretsChanged);
            }
        }
        // Its hosts changed too (by this very plan), but "hosts changed" would send the
        // operator looking for someone else's edit.
        if !self.plan.is_empty() && fresh.is_empty() && fresh.is_complete() {
            return Some(Staleness::AlreadyApplied);
        }
        let (saved, now) = (&self.plan.facts_digests, &fresh.facts_digests);
        let clusters = changed_keys(&saved.clusters, &now.clusters)
            .map(|address| describe_cluster(address, gathered));
        let hosts = changed_keys(&saved.hosts, &now.hosts).map(|machine| {
            let keys = self.changed_probes(machine, gathered);
            let names = keys.map(|keys| readers(machine, &keys)).unwrap_or_default();
            match names.as_slice() {
                [] => machine.clone(),
                [a] => format!("{machine} ({a})"),
                [a, b] => format!("{machine} ({a}, {b})"),
                [a, b, rest @ ..] => format!("{machine} ({a}, {b} and {} more)", rest.len()),
            }
        });
        let changed: Vec<String> = clusters.chain(hosts).collect();
        (!changed.is_empty()).then_some(Staleness::HostsChanged(changed))
    }
}

/// The keys whose digests differ between `saved` and `now`: changed or gone, then new.
fn changed_keys<'a, K: Ord>(
    saved: &'a BTreeMap<K, String>,
    now: &'a BTreeMap<K, String>,
) -> impl Iterator<Item = &'a K> {
    saved
        .iter()
        .filter(|(key, digest)| now.get(*key) != Some(*digest))
        .map(|(key, _)| key)
        .chain(now.keys().filter(|key| !saved.contains_key(*key)))
}

impl SavedPlan {
    /// The probes of `machine` whose output changed since the plan was saved; `None` when
    /// the plan kept no probe digests (an older corral).
    fn changed_probes(
        &self,
        machine: &str,
        gathered: &crate::facts::Gathered,
    ) -> Option<std::collections::BTreeSet<String>> {
        let saved = self.probe_digests.get(machine)?;
        let now = gathered
            .hosts
            .get(machine)
            .map(|f| f.probe_digests())
            .unwrap_or_default();
        Some(
            saved
                .iter()
                .filter(|(probe, digest)| now.get(*probe) != Some(*digest))
                .map(|(probe, _)| probe.clone())
                .chain(now.keys().filter(|p| !saved.contains_key(*p)).cloned())
                .collect(),
        )
    }
}

/// The files whose digests differ between `saved` and `now`, each with what happened to
/// it: `FILE changed`, `FILE added`, `FILE removed`.
fn changed_files(saved: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut changed = Vec::new();
    for (file, digest) in saved {
        match now.get(file) {
            Some(now) if now == digest => {}
            Some(_) => changed.push(format!("{file} changed")),
            None => changed.push(format!("{file} removed")),
        }
    }
    changed.extend(
        now.keys()
            .filter(|file| !saved.contains_key(*file))
            .map(|file| format!("{file} added")),
    );
    changed
}

/// How a cluster's facts are named to the operator: as the cluster of the resource, and
/// the machine they were read on.
fn describe_cluster(
    address: &crate::address::Address,
    gathered: &crate::facts::Gathered,
) -> String {
    let manager = gathered
        .clusters
        .get(address)
        .map(|read| read.manager.trim())
        .filter(|name| !name.is_empty());
    match manager {
        Some(manager) => format!("the cluster of {address} (read on {manager})"),
        None => format!("the cluster of {address}"),
    }
}

/// Why a file that says it is a saved plan cannot be used: the plan stage's error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    #[error("`{}` is not a plan this corral can read: {error}", .path.display())]
    #[diagnostic(
        code(corral::plan::unreadable),
        help("save the plan again with `corral plan -o PLANFILE`")
    )]
    Unreadable {
        path: std::path::PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: serde_json::Error,
    },
    #[error("`{}` was saved by another version of corral (format {version}); plan again", .path.display())]
    #[diagnostic(code(corral::plan::other_version))]
    OtherVersion {
        path: std::path::PathBuf,
        version: u32,
    },
    /// `show` was given a file that is no saved plan.
    #[error("`{}` is not a saved plan", .path.display())]
    #[diagnostic(
        code(corral::plan::not_a_plan),
        help("save a plan with `corral plan -o PLANFILE`")
    )]
    NotAPlan { path: std::path::PathBuf },
    /// A fresh plan shows the saved one is stale.
    #[error("saved plan is stale: {0}")]
    #[diagnostic(code(corral::plan::stale), help("{}", .0.help()))]
    Stale(Staleness),
    /// The fresh plan differs from the saved one though nothing it was made from changed.
    #[error("the saved plan does not match what its configuration and facts plan (was the file edited?)")]
    #[diagnostic(
        code(corral::plan::edited),
        help("run `corral plan -o PLANFILE` again and review the new plan")
    )]
    Edited,
}

/// Why a saved plan can no longer be applied as reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// The configuration's files that changed (`FILE changed`, `added`, `removed`); empty
    /// when the plan does not say which (saved by an older corral, or a secret's file
    /// named anew).
    ConfigChanged(Vec<String>),
    /// A secret value (a secret's `source:` file or its variable) is not what the hosts
    /// were compared with.
    SecretsChanged,
    /// The clusters and the machines whose facts differ from the saved plan's, as the
    /// operator knows them (a cluster by its resource, a machine with what reads it).
    HostsChanged(Vec<String>),
    /// The hosts now match the configuration: the plan (or the same changes) was applied.
    AlreadyApplied,
}

impl Staleness {
    /// What the operator can do about it.
    pub fn help(&self) -> &'static str {
        match self {
            Staleness::AlreadyApplied => {
                "nothing is left to do; `corral plan` shows the hosts match the configuration"
            }
            _ => "run `corral plan -o PLANFILE` again and review the new plan",
        }
    }
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Staleness::ConfigChanged(files) if files.is_empty() => {
                f.write_str("the configuration changed since the plan was saved")
            }
            Staleness::ConfigChanged(files) => write!(
                f,
                "the configuration changed since the plan was saved: {}",
                files.join(", ")
            ),
            Staleness::SecretsChanged => f.write_str(
                "a secret value of the configuration (a secret's `source:` file or its environment variable) changed since the plan was saved, so the hosts were compared with the old one",
            ),
            Staleness::HostsChanged(machines) => write!(
                f,
                "hosts changed since the plan was saved: {}",
                machines.join(", ")
            ),
            Staleness::AlreadyApplied => {
                f.write_str("the hosts already match the configuration: this plan, or the same changes, was applied")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::plan::{Action, ResourceChange, FORMAT_VERSION};

    /// The key a saved plan keeps a cluster's digest under is internal: a stale plan
    /// (here one saved by an older corral) names the cluster by its resource.
    #[test]
    fn a_changed_cluster_is_named_by_its_resource() {
        let digests = |cluster: &str, n1: &str| -> crate::facts::FactsDigests {
            serde_json::from_str(&format!(
                r#"{{"@cluster gluster/volume.shared":"{cluster}","n1":"{n1}"}}"#
            ))
            .unwrap()
        };
        let plan = |facts_digests| Plan {
            format_version: FORMAT_VERSION.to_owned(),
            project: "p".into(),
            resource_changes: Vec::new(),
            unreachable: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            config_digest: "config".into(),
            facts_digests,
            instances: 1,
        };
        let saved = SavedPlan {
            corral_saved_plan: SavedPlan::VERSION,
            paths: Vec::new(),
            project: "p".into(),
            ignore_unknown_kinds: false,
            targets: Vec::new(),
            excludes: Vec::new(),
            limit: Vec::new(),
            plan: plan(digests("a", "b")),
            config_files: BTreeMap::new(),
            secrets: None,
            probe_digests: BTreeMap::new(),
        };
        let config = crate::config::Config::default();
        let gathered = crate::facts::Gathered::default();
        let fresh = plan(digests("c", "d"));
        let text = saved
            .staleness(&fresh, &config, &gathered, &|_, _| Vec::new())
            .unwrap()
            .to_string();
        assert_eq!(
            text,
            "hosts changed since the plan was saved: the cluster of gluster/volume.shared, n1"
        );
    }

    /// A saved plan applied twice said "hosts changed", sending the operator looking for
    /// someone's edit; it says it was already applied, and a host changed otherwise still
    /// names the host.
    #[test]
    fn a_saved_plan_applied_twice_is_stale_as_already_applied() {
        let plan = |changes: Vec<ResourceChange>, digest: &str| Plan {
            format_version: FORMAT_VERSION.to_owned(),
            project: "p".into(),
            resource_changes: changes,
            unreachable: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            config_digest: "config".into(),
            facts_digests: crate::facts::FactsDigests {
                hosts: BTreeMap::from([("n1".to_owned(), digest.to_owned())]),
                ..Default::default()
            },
            instances: 1,
        };
        let change = ResourceChange {
            address: Address::new("os/sysctl", "baseline", Some("n1")),
            machine: Some("n1".into()),
            action: Action::Update,
            attributes: Vec::new(),
            reason: None,
            triggered_by: Vec::new(),
        };
        let saved = SavedPlan {
            corral_saved_plan: SavedPlan::VERSION,
            paths: Vec::new(),
            project: "p".into(),
            ignore_unknown_kinds: false,
            targets: Vec::new(),
            excludes: Vec::new(),
            limit: Vec::new(),
            plan: plan(vec![change.clone()], "before"),
            config_files: BTreeMap::new(),
            secrets: None,
            probe_digests: BTreeMap::new(),
        };
        let (config, facts) = (
            crate::config::Config::default(),
            crate::facts::Gathered::default(),
        );
        let staleness = |fresh: &Plan| saved.staleness(fresh, &config, &facts, &|_, _| Vec::new());
        assert_eq!(staleness(&plan(vec![change.clone()], "before")), None);
        let applied = staleness(&plan(Vec::new(), "after")).unwrap();
        assert_eq!(applied, Staleness::AlreadyApplied);
        assert_eq!(
            applied.to_string(),
            "the hosts already match the configuration: this plan, or the same changes, was applied"
        );
        let edited = staleness(&plan(vec![change], "after")).unwrap();
        assert_eq!(
            edited.to_string(),
            "hosts changed since the plan was saved: n1"
        );
        let mut other_config = plan(Vec::new(), "after");
        other_config.config_digest = "edited".into();
        assert_eq!(
            staleness(&other_config),
            Some(Staleness::ConfigChanged(Vec::new()))
        );
    }

    /// A stale plan said "hosts changed: @cluster gluster/volume.shared" when a local file
    /// had changed (a secret's source), and named the cluster by corral's internal key. It
    /// names the file that changed, says a secret value changed, and names a cluster by
    /// its resource and the machine its facts were read on.
    #[test]
    fn a_stale_plan_says_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "site.yaml",
            "kind: infrastructure/machine\nname: n1\nspecification: { hostname: n1, ip: 10.0.0.1 }\n---\nkind: swarm/cluster\nname: main\nspecification: { managers: [n1] }\n---\nkind: swarm/secret\nname: db\nspecification: { source: db.txt }\n---\nkind: os/file\nname: motd\nspecification: { machines: all, path: /etc/motd, source: motd.txt }\n",
        );
        write("db.txt", "first password");
        write("motd.txt", "hello\n");
        let load = || {
            let options = crate::config::LoadOptions::default();
            crate::config::load(&[dir.path().to_owned()], &options)
                .unwrap_or_else(|e| panic!("{:?}", e.errors))
        };
        let config = load();
        let graph =
            crate::graph::ResourceGraph::build(&config, &crate::graph::Filter::default()).unwrap();
        let readers = |machine: &str, keys: &std::collections::BTreeSet<String>| {
            crate::gather::readers(&config, &graph, machine, keys)
        };
        let motd = crate::kinds::file::probe_key("/etc/motd", crate::kinds::file::Read::Content);
        let cluster = Address::new("swarm/cluster", "main", None);
        let facts_of = |manager: &str, info: &str, file: &str| crate::facts::Gathered {
            clusters: BTreeMap::from([(
                cluster.clone(),
                crate::facts::ClusterRead {
                    manager: manager.to_owned(),
                    facts: crate::facts::HostFacts {
                        probes: BTreeMap::from([("swarm:info".to_owned(), output(info))]),
                        ..Default::default()
                    },
                },
            )]),
            hosts: BTreeMap::from([(
                "n1".to_owned(),
                crate::facts::HostFacts {
                    probes: BTreeMap::from([
                        (motd.clone(), output(file)),
                        ("dpkg:tree".to_owned(), output("ii")),
                    ]),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let plan_of = |config: &crate::config::Config, facts: &crate::facts::Gathered| Plan {
            format_version: FORMAT_VERSION.to_owned(),
            project: config.project.clone(),
            resource_changes: Vec::new(),
            unreachable: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            config_digest: config.digest.clone(),
            facts_digests: facts.digests(),
            instances: 2,
        };
        let facts = facts_of("n1", "one", "stat 644 root root 6 1 regular file");
        let saved = SavedPlan {
            corral_saved_plan: SavedPlan::VERSION,
            paths: Vec::new(),
            project: config.project.clone(),
            ignore_unknown_kinds: false,
            targets: Vec::new(),
            excludes: Vec::new(),
            limit: Vec::new(),
            plan: plan_of(&config, &facts),
            config_files: config.files.clone(),
            secrets: Some(crate::kinds::seal_secrets(&config)),
            probe_digests: BTreeMap::from([("n1".to_owned(), facts.hosts["n1"].probe_digests())]),
        };
        assert_eq!(
            saved.staleness(&plan_of(&config, &facts), &config, &facts, &readers),
            None
        );

        // A machine's facts changed: named with the resource that reads them.
        let edited = facts_of("n1", "one", "stat 600 root root 6 2 regular file");
        let why = saved
            .staleness(&plan_of(&config, &edited), &config, &edited, &readers)
            .unwrap();
        assert_eq!(
            why.to_string(),
            "hosts changed since the plan was saved: n1 (os/file.motd)"
        );

        // The cluster's facts changed: named by its resource and manager.
        let moved = facts_of("n1", "two", "stat 644 root root 6 1 regular file");
        let why = saved
            .staleness(&plan_of(&config, &moved), &config, &moved, &readers)
            .unwrap();
        assert_eq!(
            why.to_string(),
            "hosts changed since the plan was saved: the cluster of swarm/cluster.main (read on n1)"
        );

        // The secret's file changed: its comparisons on the hosts changed with it.
        write("db.txt", "second password");
        let config = load();
        let why = saved
            .staleness(&plan_of(&config, &moved), &config, &moved, &readers)
            .unwrap();
        assert_eq!(why, Staleness::SecretsChanged);
        assert!(
            why.to_string()
                .starts_with("a secret value of the configuration"),
            "{why}"
        );
        assert!(!why.to_string().contains("password"));

        // A file read with `source:` changed: named.
        write("motd.txt", "hello again\n");
        let config = load();
        let why = saved
            .staleness(&plan_of(&config, &facts), &config, &facts, &readers)
            .unwrap();
        let motd = std::path::absolute(dir.path().join("motd.txt")).unwrap();
        let motd = motd.canonicalize().unwrap();
        assert_eq!(
            why.to_string(),
            format!(
                "the configuration changed since the plan was saved: {} changed",
                motd.display()
            )
        );
    }

    fn output(text: &str) -> crate::facts::ProbeOutput {
        crate::facts::ProbeOutput {
            rc: 0,
            output: text.to_owned(),
        }
    }
}
