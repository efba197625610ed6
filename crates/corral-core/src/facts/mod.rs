//! What is read from the hosts, as data, and the pure parsers of it.
//!
//! Every kind says which probes it needs on a machine (a probe is a key and a shell snippet).
//! All probes of one host go out as one generated script in one SSH round trip (`gather`),
//! and the output comes back split into per-probe sections with their exit codes. What is
//! kept is the raw output of each probe ([`HostFacts`]); kinds parse it with pure functions,
//! so the same parsing runs on live hosts, on saved facts files and on recorded fixtures.

pub mod gluster;
pub mod kernel;
pub mod parsed;
pub mod record;
mod saved;
pub mod swarm;
pub mod swarm_engine;
pub mod swarm_objects;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::Address;
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

/// Everything read from the hosts for a plan: each machine's own facts, and each
/// cluster's, read on one of its managers; with what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    /// Each machine's facts, by machine name.
    pub hosts: BTreeMap<String, HostFacts>,
    /// Each cluster's facts, by the address of the resource whose facts scope they are
    /// (see the kinds' `ClusterKind::facts_scope`).
    pub clusters: BTreeMap<Address, ClusterRead>,
    /// The machines that could not be read, and why.
    pub unreachable: BTreeMap<String, String>,
    /// The clusters none of whose managers answered, and why. (A cluster with no manager
    /// to ask, one not created yet, is in neither map.)
    pub unanswered: BTreeMap<Address, String>,
}

/// A cluster's facts: what one of its managers answered for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRead {
    /// The machine the facts were read on.
    pub manager: String,
    pub facts: HostFacts,
}

impl Gathered {
    /// Each host's digest and each cluster's, for a plan to tell that they changed since.
    pub fn digests(&self) -> FactsDigests {
        FactsDigests {
            hosts: self
                .hosts
                .iter()
                .map(|(m, f)| (m.clone(), f.digest()))
                .collect(),
            clusters: self
                .clusters
                .iter()
                .map(|(a, c)| (a.clone(), c.digest()))
                .collect(),
        }
    }
}

impl ClusterRead {
    /// The digest of the facts and the manager they were read on, as [`HostFacts::digest`]
    /// makes it of their saved form (so that plans saved before keep comparing equal).
    pub fn digest(&self) -> String {
        let manager = saved::manager_output(&self.manager);
        let mut probes: Vec<(&str, &ProbeOutput)> = self
            .facts
            .probes
            .iter()
            .map(|(k, o)| (k.as_str(), o))
            .chain([(saved::MANAGER_PROBE, &manager)])
            .collect();
        probes.sort_by(|a, b| a.0.cmp(b.0));
        digest_of(probes)
    }
}

/// The digest of each host's facts and each cluster's (see [`HostFacts::digest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsDigests {
    pub hosts: BTreeMap<String, String>,
    pub clusters: BTreeMap<Address, String>,
}

impl Serialize for FactsDigests {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        saved::join(&self.hosts, &self.clusters).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FactsDigests {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (hosts, clusters) =
            saved::split(BTreeMap::<String, String>::deserialize(deserializer)?);
        Ok(FactsDigests { hosts, clusters })
    }
}

/// Probes that read the host's clock: they differ at every reading, so they are left out of
/// [`HostFacts::digest`].
pub const CLOCK_PREFIX: &str = "clock:";

/// Everything read from one host, by probe key.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub probes: BTreeMap<String, ProbeOutput>,
    /// Probe outputs parsed once (see [`parsed`]); not part of the facts. A form parsed
    /// stays as it was parsed: edit `probes` (redaction) before anything is read of them.
    #[serde(skip)]
    pub parsed: parsed::Parsed,
}

/// Facts are their probes' outputs; what was parsed of them is derived.
impl PartialEq for HostFacts {
    fn eq(&self, other: &Self) -> bool {
        self.probes == other.probes
    }
}

impl Eq for HostFacts {}

impl fmt::Debug for HostFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFacts")
            .field("probes", &self.probes)
            .finish_non_exhaustive()
    }
}

impl HostFacts {
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
        digest_of(self.probes.iter().map(|(k, o)| (k.as_str(), o)))
    }
}

/// [`HostFacts::digest`] of probes in key order.
fn digest_of<'a>(probes: impl IntoIterator<Item = (&'a str, &'a ProbeOutput)>) -> String {
    let mut hasher = Sha256::new();
    for (key, out) in probes {
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
/// the recordings under `fixtures/facts/`). Its maps are the saved form of [`Gathered`]
/// (clusters among the hosts, under keys of their own): [`FactsFile::gathered`] and
/// [`FactsFile::new`] convert.
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

    /// The file of `gathered`, with the digest of the secrets it compared.
    pub fn new(gathered: &Gathered, secrets_digest: Option<String>) -> FactsFile {
        let (hosts, unreachable) = saved::join_gathered(gathered);
        FactsFile {
            format_version: Self::VERSION.to_owned(),
            hosts,
            unreachable,
            secrets_digest,
        }
    }

    /// The facts the file holds.
    pub fn gathered(&self) -> Gathered {
        Gathered::from_saved(self.hosts.clone(), self.unreachable.clone())
    }

    /// Reads a facts file, refusing other formats.
    pub fn read(path: &std::path::Path) -> Result<FactsFile, FactsFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| FactsFileError::Unreadable {
            path: path.to_owned(),
            error,
        })?;
        let file: FactsFile =
            serde_json::from_str(&text).map_err(|error| FactsFileError::NotFacts {
                path: path.to_owned(),
                error,
            })?;
        if file.format_version != Self::VERSION {
            return Err(FactsFileError::OtherFormat {
                path: path.to_owned(),
                found: file.format_version,
            });
        }
        Ok(file)
    }
}

impl Gathered {
    /// The facts held in their saved form (a facts file's `hosts` and `unreachable`, which
    /// tests and benchmarks also build): machines by name, clusters under keys of their
    /// own.
    pub fn from_saved(
        hosts: BTreeMap<String, HostFacts>,
        unreachable: BTreeMap<String, String>,
    ) -> Gathered {
        saved::split_gathered(hosts, unreachable)
    }
}

/// Why a facts file could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FactsFileError {
    #[error("cannot read the facts file `{}`: {error}", path.display())]
    #[diagnostic(
        code(corral::facts::file_unreadable),
        help("`corral facts -o FILE PATH…` writes one")
    )]
    Unreadable {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("`{}` is not a corral facts file: {error}", path.display())]
    #[diagnostic(
        code(corral::facts::not_a_facts_file),
        help("`--facts` reads what `corral facts -o FILE PATH…` wrote")
    )]
    NotFacts {
        path: std::path::PathBuf,
        error: serde_json::Error,
    },
    #[error(
        "`{}` has facts format {found}, this corral reads format {}; gather the facts again",
        path.display(),
        FactsFile::VERSION
    )]
    #[diagnostic(
        code(corral::facts::other_format),
        help("run `corral facts -o FILE PATH…` with this corral")
    )]
    OtherFormat {
        path: std::path::PathBuf,
        found: String,
    },
}

/// A probe's output that does not say what the kind needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(
    code(corral::facts::unusable),
    help(
        "the host answered probe `{probe}` with something corral cannot use; check the host \
         (or the facts file) and plan again"
    )
)]
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

/// Probe outputs recorded from the lab hosts (`scripts/record-fixtures.sh`), for tests.
#[cfg(any(test, feature = "testing"))]
pub mod recorded {
    use super::{FactsFile, HostFacts, ProbeOutput};

    /// The facts in `fixtures/facts/NAME.json`.
    pub fn gathered(name: &str) -> super::Gathered {
        let path = format!("{}/fixtures/facts/{name}.json", crate::testing::REPOSITORY);
        FactsFile::read(std::path::Path::new(&path))
            .unwrap_or_else(|e| panic!("{e}"))
            .gathered()
    }

    /// The facts of `machine` in `fixtures/facts/NAME.json`.
    pub fn host(name: &str, machine: &str) -> HostFacts {
        let path = format!("{}/fixtures/facts/{name}.json", crate::testing::REPOSITORY);
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
        let path = format!("{}/fixtures/{name}.json", crate::testing::REPOSITORY);
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
