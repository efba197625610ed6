//! What is read from the hosts, as data, and the pure parsers of it.
//!
//! Every kind says which probes it needs on a machine (a probe is a key and a shell snippet).
//! All probes of one host go out as one generated script in one SSH round trip (`gather`),
//! and the output comes back split into per-probe sections with their exit codes. What is
//! kept is the raw output of each probe ([`HostFacts`]); kinds parse it with pure functions,
//! so the same parsing runs on live hosts, on saved facts files and on recorded fixtures.

pub mod gluster;
pub mod kernel;
pub mod swarm;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::text::tail;

/// One thing to ask a host: a key unique on that host and the shell snippet that answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub key: String,
    pub script: String,
}

/// What a probe printed (stdout and stderr together) and its exit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutput {
    pub rc: i32,
    pub output: String,
}

/// Where the facts a cluster resource read on one of its managers are kept among the
/// hosts' facts: a name no machine can have.
pub fn cluster_key(address: &crate::address::Address) -> String {
    format!("@cluster {address}")
}

/// Whether a key of the gathered facts is a cluster's rather than a machine's.
pub fn is_cluster_key(key: &str) -> bool {
    key.starts_with("@cluster ")
}

/// The address of the cluster resource whose facts a key holds; `None` for a machine's.
pub fn cluster_of_key(key: &str) -> Option<&str> {
    key.strip_prefix("@cluster ")
}

/// A key of the gathered facts as messages name it: the machine, or `the cluster of
/// swarm/cluster.main` (the key itself is internal and never shown).
pub fn describe_key(key: &str) -> String {
    match cluster_of_key(key) {
        Some(address) => format!("the cluster of {address}"),
        None => key.to_owned(),
    }
}

/// The probe, in a cluster's facts, that names the manager they were read on.
pub const MANAGER_KEY: &str = "corral:manager";

/// What a cluster resource plans from, out of the gathered facts: its members' facts
/// (the members that were read) with their addresses, and its manager's (read for its
/// facts scope, see [`crate::kinds::ClusterKind::facts_scope`]).
pub fn cluster_facts<'a>(
    config: &crate::config::Config,
    kind: &dyn crate::kinds::ClusterKind,
    address: &crate::address::Address,
    facts: &'a BTreeMap<String, HostFacts>,
) -> crate::kinds::ClusterFacts<'a> {
    let members = kind
        .members()
        .into_iter()
        .filter_map(|m| {
            let ip = config.machines.get(&m)?.spec.ip;
            let facts = facts.get(&m)?;
            Some((m, crate::kinds::ClusterMember { ip, facts }))
        })
        .collect();
    let scope = kind.facts_scope();
    let manager = facts
        .get(&cluster_key(scope.as_ref().unwrap_or(address)))
        .and_then(|f| {
            let name = f.probes.get(MANAGER_KEY)?.output.clone();
            Some((name, f))
        });
    let inventory = config
        .machines
        .iter()
        .map(|(name, m)| (name.clone(), m.spec.ip))
        .collect();
    crate::kinds::ClusterFacts {
        members,
        manager,
        inventory,
    }
}

/// Probes that read the host's clock: they differ at every reading, so they are left out of
/// [`HostFacts::digest`].
pub const CLOCK_PREFIX: &str = "clock:";

/// Everything read from one host, by probe key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub probes: BTreeMap<String, ProbeOutput>,
    /// Probe outputs parsed once (see [`HostFacts::parsed`]); not part of the facts.
    #[serde(skip)]
    pub parsed: Parsed,
}

/// Parsed forms of probe outputs, each made once however many resources read it: every
/// service on a swarm reads the same `docker service inspect` of all services, and planning
/// must stay linear in services. Equal to any other (it is derived from the probes).
#[derive(Default)]
pub struct Parsed(
    std::sync::Mutex<
        std::collections::HashMap<
            (String, std::any::TypeId),
            std::sync::Arc<dyn std::any::Any + Send + Sync>,
        >,
    >,
);

impl Clone for Parsed {
    fn clone(&self) -> Self {
        Parsed::default()
    }
}

impl PartialEq for Parsed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Parsed {}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parsed")
    }
}

impl HostFacts {
    /// The output of probe `key` parsed by `parse`, parsed once for these facts and then
    /// shared; a parse that fails is not kept.
    pub fn parsed<T: Send + Sync + 'static>(
        &self,
        key: &str,
        parse: impl FnOnce(&str, &ProbeOutput) -> Result<T, FactError>,
    ) -> Result<std::sync::Arc<T>, FactError> {
        let slot = (key.to_owned(), std::any::TypeId::of::<T>());
        if let Some(found) = self.parsed.0.lock().expect("not poisoned").get(&slot) {
            if let Ok(found) = found.clone().downcast::<T>() {
                return Ok(found);
            }
        }
        let value = std::sync::Arc::new(parse(key, self.get(key)?)?);
        self.parsed
            .0
            .lock()
            .expect("not poisoned")
            .insert(slot, value.clone());
        Ok(value)
    }

    /// The output of a probe; a missing key means the probe was never run, which is a bug
    /// in corral or a facts file gathered for another configuration.
    pub fn get(&self, key: &str) -> Result<&ProbeOutput, FactError> {
        self.probes.get(key).ok_or_else(|| FactError {
            probe: key.to_owned(),
            message: "no output was gathered for this probe (is the facts file from another configuration?)".into(),
        })
    }

    /// Digest of the facts, so a saved plan (and apply, under its lock) can tell that a
    /// host changed since. It covers each probe's [`canonical`] form: the host's clock
    /// ([`CLOCK_PREFIX`] probes), the order a list comes in and how long ago a task
    /// changed are not changes.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (key, out) in &self.probes {
            if key.starts_with(CLOCK_PREFIX) {
                continue;
            }
            hasher.update(key.as_bytes());
            hasher.update([0]);
            hasher.update(out.rc.to_le_bytes());
            match canonical(key, out) {
                Some(parsed) => {
                    hasher.update(b"parsed ");
                    hasher.update(parsed.as_bytes());
                }
                None => {
                    hasher.update(b"output ");
                    hasher.update(out.output.as_bytes());
                }
            }
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }
}

impl HostFacts {
    /// The digest of each probe's [`canonical`] form (the clock's left out), so that a
    /// stale saved plan can say which probes, and so which resources, saw a change.
    pub fn probe_digests(&self) -> BTreeMap<String, String> {
        self.probes
            .iter()
            .filter(|(key, _)| !key.starts_with(CLOCK_PREFIX))
            .map(|(key, out)| {
                let mut hasher = Sha256::new();
                hasher.update(out.rc.to_le_bytes());
                match canonical(key, out) {
                    Some(parsed) => hasher.update(parsed.as_bytes()),
                    None => hasher.update(out.output.as_bytes()),
                }
                (key.clone(), hex::encode(hasher.finalize()))
            })
            .collect()
    }
}

/// The form of a probe's output that [`HostFacts::digest`] covers, for probes whose output
/// varies between readings of an unchanged host (lists in varying order, relative times):
/// the facts parsed and put in an order of their own. `None`: the output as it is, which
/// every other probe prints in a fixed order (their scripts sort or read files).
pub fn canonical(key: &str, out: &ProbeOutput) -> Option<String> {
    gluster::canonical(key, out).or_else(|| swarm::canonical(key, out))
}

/// Facts saved by `corral facts`, read by `plan --facts` (and by tests and benchmarks, from
/// the recordings under `fixtures/facts/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactsFile {
    pub format_version: String,
    pub hosts: BTreeMap<String, HostFacts>,
    #[serde(default)]
    pub unreachable: BTreeMap<String, String>,
    /// What the secret values were compared with when the facts were read (an argon2id
    /// hash of them, salted per file, see `kinds::seal_secrets`): facts read with other
    /// secrets say nothing about whether the live ones match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_digest: Option<String>,
}

impl FactsFile {
    /// Version of the facts file format.
    /// 2: the managers' secrets and configs, and `secrets_digest` an argon2id hash.
    pub const VERSION: &'static str = "2";

    /// Reads a facts file, refusing other formats.
    pub fn read(path: &std::path::Path) -> Result<FactsFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the facts file `{}`: {e}", path.display()))?;
        let file: FactsFile = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a corral facts file: {e}", path.display()))?;
        if file.format_version != Self::VERSION {
            return Err(format!(
                "`{}` has facts format {}, this corral reads format {}; gather the facts again",
                path.display(),
                file.format_version,
                Self::VERSION
            ));
        }
        Ok(file)
    }
}

/// A probe's output that does not say what the kind needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactError {
    pub probe: String,
    pub message: String,
}

impl FactError {
    pub fn new(probe: &str, message: impl Into<String>) -> Self {
        FactError {
            probe: probe.to_owned(),
            message: message.into(),
        }
    }

    /// An error for a probe that exited unexpectedly, quoting the end of what it printed.
    pub fn unexpected(probe: &str, out: &ProbeOutput) -> Self {
        FactError::new(
            probe,
            format!("exited with {}: {}", out.rc, tail(&out.output, 400)),
        )
    }
}

impl fmt::Display for FactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// Probe outputs recorded from the lab hosts (`scripts/record-fixtures.sh`), for tests.
#[cfg(test)]
pub mod recorded {
    use super::{FactsFile, HostFacts, ProbeOutput};

    /// The facts of `machine` in `fixtures/facts/NAME.json`.
    pub fn host(name: &str, machine: &str) -> HostFacts {
        let path = format!("{}/fixtures/facts/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let mut file =
            FactsFile::read(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        file.hosts
            .remove(machine)
            .unwrap_or_else(|| panic!("{path} has no {machine}"))
    }

    /// The output recorded in `fixtures/cluster/FACT/CASE.json` (by
    /// scripts/record-cluster-fixtures.sh), after checking that it was recorded with
    /// `probe`'s script: a changed probe cannot keep passing on stale output.
    pub fn cluster(fact: &str, case: &str, probe: &super::Probe) -> ProbeOutput {
        checked(
            &format!("cluster/{fact}/{case}"),
            probe,
            "run scripts/record-cluster-fixtures.sh",
        )
    }

    /// The output recorded in `fixtures/NAME.json` (`{command, rc, output}`), after checking
    /// that it was recorded with `probe`'s script (`hint` says how to record it again).
    pub fn checked(name: &str, probe: &super::Probe, hint: &str) -> ProbeOutput {
        #[derive(serde::Deserialize)]
        struct Recorded {
            command: String,
            rc: i32,
            output: String,
        }
        let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let recorded: Recorded =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            recorded.command, probe.script,
            "{path} was recorded with another command: {hint}"
        );
        ProbeOutput {
            rc: recorded.rc,
            output: recorded.output,
        }
    }

    /// One probe's recorded output.
    pub fn probe(name: &str, machine: &str, key: &str) -> ProbeOutput {
        host(name, machine)
            .probes
            .get(key)
            .cloned()
            .unwrap_or_else(|| {
                panic!("fixtures/facts/{name}.json has no probe {key} for {machine}")
            })
    }
}
