//! Which configuration owns a project name.
//!
//! A project's name comes from its folder (`infra/`) unless `--project` names it, so two
//! teams who copied the same example get the same name, and each apply would delete the
//! other's resources as orphans. So a configuration has an identity: a random id that its
//! first apply writes into [`FILE`] in the configuration's directory, for the team to
//! commit. Every host record corral writes names, per project, the id of the configuration
//! that wrote it ([`crate::managed::Record::owners`]); a swarm's owner is what its members'
//! records say. A plan of a configuration whose id is not the one the records name is
//! refused ([`Conflict`]) before anything is planned for deletion. Records made before
//! corral recorded owners are claimed by the next apply (which locks those hosts too, and
//! says so), so a configuration applied before owners existed needs nothing new.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::identity::{Identity, FILE};

/// The kind of the plan's refusal (`corral/project.infra`).
pub const KIND: &str = "corral/project";

/// What one host's record says of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub machine: String,
    /// The id of the configuration the record names as the project's owner.
    pub owner: Option<String>,
    /// The record holds what the project wrote there, or the host is a member of a swarm
    /// the configuration declares (whose objects the project may own): without an owner,
    /// it is claimed.
    pub holds: bool,
}

/// Another configuration owns the project: the plan is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub project: String,
    /// This configuration's identity.
    pub ours: Identity,
    /// The owner the records name, and the hosts whose records name it.
    pub theirs: String,
    pub machines: Vec<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.ours.file.display();
        let (project, theirs) = (&self.project, &self.theirs);
        write!(
            f,
            "project `{project}` belongs to another configuration: the records on {} name configuration {theirs}, ",
            self.machines.join(", ")
        )?;
        match &self.ours.id {
            Some(ours) => write!(
                f,
                "and this one is configuration {ours} ({file}); nothing is planned, so that neither deletes the other's resources. Give this configuration a project of its own with --project NAME (or CORRAL_PROJECT); if both are the same configuration, put the committed {FILE} back"
            ),
            None => write!(
                f,
                "and this one has no {file} yet; nothing is planned, so that neither deletes the other's resources. If this is the configuration that applied project `{project}` (a clone without the committed file), write `{theirs}` into {file} and commit it; otherwise give it a project of its own with --project NAME (or CORRAL_PROJECT)"
            ),
        }
    }
}

/// The decision: the hosts to claim for `ours` (holding the project's records without an
/// owner), or the conflict with the first other owner the records name.
pub fn decide(project: &str, ours: &Identity, held: &[Held]) -> Result<Vec<String>, Conflict> {
    let mut others: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for host in held {
        match &host.owner {
            Some(owner) if Some(owner) != ours.id.as_ref() => {
                others
                    .entry(owner.as_str())
                    .or_default()
                    .push(host.machine.clone());
            }
            _ => {}
        }
    }
    if let Some((theirs, machines)) = others.into_iter().next() {
        return Err(Conflict {
            project: project.to_owned(),
            ours: ours.clone(),
            theirs: theirs.to_owned(),
            machines,
        });
    }
    Ok(held
        .iter()
        .filter(|h| h.holds && h.owner.is_none())
        .map(|h| h.machine.clone())
        .collect())
}

/// What each readable host's record says of the configuration's project. Members of a
/// swarm the configuration declares that answers hold the project's records too.
pub fn held(config: &crate::config::Config, gathered: &crate::facts::Gathered) -> Vec<Held> {
    let mut members = std::collections::BTreeSet::new();
    for resource in &config.resources {
        let crate::kinds::Placement::Cluster(kind) = resource.spec.placement() else {
            continue;
        };
        if !kind.members_hold_records() {
            continue;
        }
        let cluster = crate::gather::cluster_facts(config, kind, &resource.address, gathered);
        if cluster.manager.is_some() {
            members.extend(cluster.members.keys().cloned());
        }
    }
    gathered
        .hosts
        .iter()
        .filter_map(|(machine, host)| {
            // An unreadable record is the deletions' plan error already.
            let record = crate::managed::recorded(host).ok()?;
            Some(Held {
                machine: machine.clone(),
                owner: record.owners.get(&config.project).cloned(),
                holds: record.projects.contains_key(&config.project) || members.contains(machine),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn ours(id: Option<&str>) -> Identity {
        Identity {
            file: PathBuf::from("/work/infra/.corral-project"),
            id: id.map(str::to_owned),
        }
    }

    fn host(machine: &str, owner: Option<&str>, holds: bool) -> Held {
        Held {
            machine: machine.into(),
            owner: owner.map(str::to_owned),
            holds,
        }
    }

    /// Records of another configuration under the same name refuse the plan, naming both.
    #[test]
    fn another_configurations_records_refuse_the_plan_naming_both() {
        let held = [
            host("n1", Some("aaaaaaaa"), true),
            host("n2", None, true),
            host("n3", Some("aaaaaaaa"), false),
        ];
        let conflict = decide("infra", &ours(Some("bbbbbbbb")), &held).unwrap_err();
        assert_eq!(conflict.theirs, "aaaaaaaa");
        assert_eq!(conflict.machines, ["n1", "n3"]);
        let message = conflict.to_string();
        assert!(message.contains("project `infra` belongs to another configuration: the records on n1, n3 name configuration aaaaaaaa, and this one is configuration bbbbbbbb (/work/infra/.corral-project)"), "{message}");
        assert!(message.contains("--project NAME"), "{message}");
        // A configuration that never applied (no file) is refused too, and told how to
        // join its own project when it is a clone without the committed file.
        let message = decide("infra", &ours(None), &held).unwrap_err().to_string();
        assert!(
            message.contains("write `aaaaaaaa` into /work/infra/.corral-project"),
            "{message}"
        );
    }

    /// Its own records, and hosts without any, need nothing; records without an owner are
    /// claimed, and only where the project has something.
    #[test]
    fn own_records_pass_and_ownerless_ones_are_claimed() {
        let held = [
            host("n1", Some("bbbbbbbb"), true),
            host("n2", None, true),
            host("n3", None, false),
        ];
        assert_eq!(
            decide("infra", &ours(Some("bbbbbbbb")), &held).unwrap(),
            ["n2"]
        );
        assert_eq!(decide("infra", &ours(None), &held[1..]).unwrap(), ["n2"]);
        assert!(decide("infra", &ours(None), &[]).unwrap().is_empty());
    }

    /// A plan of `infra/` against a host whose record holds `project`'s file `/etc/old`
    /// (no longer declared) owned by `owner`.
    fn plan_against(owner: Option<&str>, id: Option<&str>) -> crate::plan::Plan {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let infra = dir.path().join("infra");
        std::fs::create_dir(&infra).unwrap();
        std::fs::write(infra.join("c.yaml"), "kind: infrastructure/machine\nname: n1\nspecification: {hostname: n1, ip: 10.0.0.1}\n---\nkind: os/file\nname: new\nspecification: {machines: all, path: /etc/new, content: x}\n").unwrap();
        if let Some(id) = id {
            std::fs::write(infra.join(FILE), format!("{id}\n")).unwrap();
        }
        let config = crate::config::load(&[infra], &Default::default()).unwrap();
        assert_eq!(config.project, "infra");
        let mut record = crate::managed::Record::default();
        record.projects.entry("infra".into()).or_default().insert(
            "os/file.old".into(),
            crate::managed::Entry {
                origin: Some(crate::managed::Origin::Created),
                ..crate::managed::Entry::file("os/file", "/etc/old")
            },
        );
        if let Some(owner) = owner {
            record.owners.insert("infra".into(), owner.into());
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&record).unwrap());
        let mut host = crate::facts::HostFacts::default();
        host.probes.insert(
            crate::managed::PROBE_KEY.into(),
            crate::facts::ProbeOutput {
                rc: 0,
                output: format!("record {encoded}\n"),
            },
        );
        let filter = crate::graph::Filter::default();
        let graph = crate::graph::ResourceGraph::build(&config, &filter).unwrap();
        let facts = BTreeMap::from([("n1".to_owned(), host)]);
        crate::planner::build::build(&config, &graph, &filter, &facts, &BTreeMap::new())
    }

    /// The whole plan: another configuration's records refuse it before `/etc/old` (theirs)
    /// is planned for deletion; records without an owner are claimed and their orphan
    /// deleted; the owner's own plan deletes it.
    #[test]
    fn a_plan_under_anothers_name_deletes_nothing() {
        let refused = plan_against(Some("aaaaaaaa"), Some("bbbbbbbb"));
        assert!(refused.resource_changes.is_empty(), "{refused:?}");
        assert_eq!(refused.errors.len(), 1);
        assert!(refused.errors[0].message.contains("configuration aaaaaaaa"));
        let refused = plan_against(Some("aaaaaaaa"), None);
        assert!(refused.resource_changes.is_empty(), "{refused:?}");

        // Records without an owner are this configuration's to claim: its orphan is deleted
        // (the apply claims them); the owner's own plan deletes it too.
        for (owner, id) in [
            (None, None),
            (None, Some("bbbbbbbb")),
            (Some("bbbbbbbb"), Some("bbbbbbbb")),
        ] {
            let plan = plan_against(owner, id);
            // (The declared file's own probe is not in these facts: its error only.)
            assert!(
                plan.errors.iter().all(|e| e.address.kind != KIND),
                "{plan:?}"
            );
            let deleted: Vec<String> = plan
                .resource_changes
                .iter()
                .filter(|c| c.action == crate::plan::Action::Delete)
                .map(|c| c.address.to_string())
                .collect();
            assert_eq!(deleted, ["os/file.old[n1]"]);
        }
    }

    /// The members of a declared swarm that answers hold the project's records (its
    /// objects on the swarm): a legacy swarm's members are claimed, not only the hosts with
    /// files of the project.
    #[test]
    fn members_of_a_declared_swarm_hold_the_projects_records() {
        let root = corral_core::testing::REPOSITORY;
        let config = crate::config::load(
            &[
                PathBuf::from(format!("{root}/examples/krill/")),
                PathBuf::from(format!("{root}/fixtures/inventory.yaml")),
            ],
            &Default::default(),
        )
        .unwrap();
        let file = crate::facts::FactsFile::read(Path::new(&format!(
            "{root}/fixtures/facts/lab-cluster.json"
        )))
        .unwrap();
        // No files of the project on the hosts: only the swarm makes them hold its records.
        let mut gathered = file.gathered();
        for facts in gathered.hosts.values_mut() {
            facts.probes.insert(
                crate::managed::PROBE_KEY.into(),
                crate::facts::ProbeOutput {
                    rc: 0,
                    output: "record none\n".into(),
                },
            );
        }
        let held = held(&config, &gathered);
        let holding: Vec<&str> = held
            .iter()
            .filter(|h| h.holds)
            .map(|h| h.machine.as_str())
            .collect();
        assert_eq!(holding, ["n1", "n2", "n3"], "{held:?}");
        assert!(held.iter().all(|h| h.owner.is_none()));
        let ours = Identity::default();
        assert_eq!(
            decide(&config.project, &ours, &held).unwrap(),
            ["n1", "n2", "n3"]
        );
    }
}
