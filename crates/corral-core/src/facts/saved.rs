//! The saved form of [`Gathered`] facts, as facts files and saved plans keep them: one map
//! by name, where a cluster's entry sits among the machines under `@cluster ADDRESS` (a
//! name no machine can have) and names the manager its facts were read on in a probe of
//! its own. Files written by earlier versions of corral have this form, so it stays; only
//! this module knows those names, and nothing else sees them.

use std::collections::BTreeMap;

use super::{ClusterRead, Gathered, HostFacts, ProbeOutput};
use crate::address::Address;

/// What a cluster's key starts with.
const CLUSTER_PREFIX: &str = "@cluster ";

/// The probe, in a cluster's saved facts, that names the manager they were read on.
pub(super) const MANAGER_PROBE: &str = "corral:manager";

/// A cluster's key.
fn key(address: &Address) -> String {
    format!("{CLUSTER_PREFIX}{address}")
}

/// The cluster a key names; `None` for a machine's. (A key with the prefix and no
/// address is nobody's: no resource ever looked it up.)
fn cluster(key: &str) -> Option<Option<Address>> {
    key.strip_prefix(CLUSTER_PREFIX)
        .map(|address| Address::parse(address).ok())
}

/// The probe output that names the manager a cluster's facts were read on.
pub(super) fn manager_output(machine: &str) -> ProbeOutput {
    ProbeOutput {
        rc: 0,
        output: machine.to_owned(),
    }
}

/// One map of the saved form, from the machines' and the clusters' maps.
pub(super) fn join<T: Clone>(
    hosts: &BTreeMap<String, T>,
    clusters: &BTreeMap<Address, T>,
) -> BTreeMap<String, T> {
    hosts
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .chain(
            clusters
                .iter()
                .map(|(address, value)| (key(address), value.clone())),
        )
        .collect()
}

/// The machines' and the clusters' maps, from one map of the saved form.
pub(super) fn split<T>(saved: BTreeMap<String, T>) -> (BTreeMap<String, T>, BTreeMap<Address, T>) {
    let mut hosts = BTreeMap::new();
    let mut clusters = BTreeMap::new();
    for (key, value) in saved {
        match cluster(&key) {
            None => {
                hosts.insert(key, value);
            }
            Some(Some(address)) => {
                clusters.insert(address, value);
            }
            Some(None) => {}
        }
    }
    (hosts, clusters)
}

/// A facts file's `hosts` and `unreachable`, from gathered facts.
pub(super) fn join_gathered(
    gathered: &Gathered,
) -> (BTreeMap<String, HostFacts>, BTreeMap<String, String>) {
    let clusters: BTreeMap<Address, HostFacts> = gathered
        .clusters
        .iter()
        .map(|(address, read)| {
            let mut facts = read.facts.clone();
            facts
                .probes
                .insert(MANAGER_PROBE.to_owned(), manager_output(&read.manager));
            (address.clone(), facts)
        })
        .collect();
    (
        join(&gathered.hosts, &clusters),
        join(&gathered.unreachable, &gathered.unanswered),
    )
}

/// Gathered facts, from a facts file's `hosts` and `unreachable`. A cluster's entry that
/// names no manager is left out, as no resource ever planned from one.
pub(super) fn split_gathered(
    hosts: BTreeMap<String, HostFacts>,
    unreachable: BTreeMap<String, String>,
) -> Gathered {
    let (hosts, clusters) = split(hosts);
    let (unreachable, unanswered) = split(unreachable);
    let clusters = clusters
        .into_iter()
        .filter_map(|(address, mut facts)| {
            let manager = facts.probes.remove(MANAGER_PROBE)?.output;
            Some((address, ClusterRead { manager, facts }))
        })
        .collect();
    Gathered {
        hosts,
        clusters,
        unreachable,
        unanswered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FactsFile;

    /// A facts file written by corral before facts were typed (`fixtures/facts/
    /// lab-cluster.json`, recorded on the lab) reads as machines and clusters, each
    /// cluster with the manager it was read on; written again, it is the same file, and
    /// each cluster's digest is the one it had among the hosts (saved plans compare them).
    #[test]
    fn a_facts_file_of_the_saved_form_reads_as_hosts_and_clusters_and_back() {
        let path = format!(
            "{}/fixtures/facts/lab-cluster.json",
            crate::testing::REPOSITORY
        );
        let file = FactsFile::read(std::path::Path::new(&path)).unwrap();
        let gathered = file.gathered();
        assert_eq!(
            gathered.hosts.keys().collect::<Vec<_>>(),
            ["n1", "n2", "n3"]
        );
        let swarm = Address::new("swarm/cluster", "krill", None);
        let volume = Address::new("gluster/volume", "krill-data", None);
        assert_eq!(
            gathered.clusters.keys().collect::<Vec<_>>(),
            [&volume, &swarm]
        );
        let read = &gathered.clusters[&swarm];
        assert_eq!(read.manager, "n1");
        assert!(!read.facts.probes.contains_key(MANAGER_PROBE));
        assert!(read.facts.probes.contains_key("swarm:node-inspect"));

        let again = FactsFile::new(&gathered, file.secrets_digest.clone());
        assert_eq!(again.hosts, file.hosts);
        assert_eq!(again.unreachable, file.unreachable);
        let digests = gathered.digests();
        for (key, facts) in &file.hosts {
            let digest = match key.strip_prefix(CLUSTER_PREFIX) {
                Some(address) => &digests.clusters[&Address::parse(address).unwrap()],
                None => &digests.hosts[key],
            };
            assert_eq!(digest, &facts.digest(), "{key}");
        }
    }

    /// A facts file of another format is refused with what to do, under a code of its own.
    #[test]
    fn a_facts_file_of_another_format_is_refused_with_a_code() {
        use miette::Diagnostic;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("facts.json");
        std::fs::write(&path, r#"{"format_version": "1", "hosts": {}}"#).unwrap();
        let error = FactsFile::read(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}` has facts format 1, this corral reads format 2; gather the facts again",
                path.display()
            )
        );
        assert_eq!(
            error.code().unwrap().to_string(),
            "corral::facts::other_format"
        );
        assert!(error.help().is_some());
    }

    /// A cluster none of whose managers answered is saved among the unreachable hosts and
    /// read back as the cluster's; a plan's digests keep the same form.
    #[test]
    fn unanswered_clusters_and_digests_keep_the_saved_form() {
        let swarm = Address::new("swarm/cluster", "main", None);
        let gathered = Gathered {
            unreachable: BTreeMap::from([("n2".to_owned(), "refused".to_owned())]),
            unanswered: BTreeMap::from([(swarm.clone(), "no manager answered".to_owned())]),
            ..Gathered::default()
        };
        let file = FactsFile::new(&gathered, None);
        assert_eq!(
            file.unreachable.keys().collect::<Vec<_>>(),
            ["@cluster swarm/cluster.main", "n2"]
        );
        assert_eq!(file.gathered(), gathered);

        let digests = crate::facts::FactsDigests {
            hosts: BTreeMap::from([("n1".to_owned(), "a".to_owned())]),
            clusters: BTreeMap::from([(swarm, "b".to_owned())]),
        };
        let json = serde_json::to_string(&digests).unwrap();
        assert_eq!(json, r#"{"@cluster swarm/cluster.main":"b","n1":"a"}"#);
        assert_eq!(
            serde_json::from_str::<crate::facts::FactsDigests>(&json).unwrap(),
            digests
        );
    }
}
