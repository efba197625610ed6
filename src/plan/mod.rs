//! Stage 4: the plan, as plain data.
//!
//! A [`Plan`] is computed from the configuration and the facts, apart from how it is shown
//! (`render`) and how it is carried out (`apply`). It holds no secret: sensitive values are
//! recorded only as [`AttrValue::Sensitive`], and apply re-reads them from the configuration.

pub mod build;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// Version of the JSON plan format; bump on incompatible changes.
/// 1.1: the `forget` action and count.
pub const FORMAT_VERSION: &str = "1.1";

/// What will happen to one resource instance, with Terraform's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
    /// A resource removed from the configuration whose traces on the host stay as they are
    /// (a file corral neither created nor kept an original of): only corral's record of it
    /// goes. Terraform's `forget`.
    Forget,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Forget => ".",
        }
    }

    /// Terraform's `actions` list for the JSON format.
    pub fn terraform_actions(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
            Action::Forget => &["forget"],
        }
    }

    /// Whether the change removes a resource from the configuration's record: a deletion,
    /// or forgetting what stays in place. Both run before (or after) the graph's walk.
    pub fn is_removal(self) -> bool {
        matches!(self, Action::Delete | Action::Forget)
    }
}

/// One side of an attribute change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum AttrValue {
    /// The attribute does not exist on that side (a file not yet created, a package not
    /// installed).
    Absent,
    /// A short value shown inline, quoted.
    Scalar(String),
    /// A yes/no setting.
    Bool(bool),
    /// Text content shown as a unified diff.
    Content(String),
    /// A value that cannot be shown (too large, binary): a description such as its digest.
    Opaque(String),
    /// A secret: never shown, in any format.
    Sensitive,
}

/// A before → after pair for one attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: AttrValue,
    pub after: AttrValue,
}

impl AttrChange {
    pub fn new(name: impl Into<String>, before: AttrValue, after: AttrValue) -> Self {
        AttrChange {
            name: name.into(),
            before,
            after,
        }
    }

    pub fn scalar(
        name: impl Into<String>,
        before: impl Into<String>,
        after: impl Into<String>,
    ) -> Self {
        AttrChange::new(
            name,
            AttrValue::Scalar(before.into()),
            AttrValue::Scalar(after.into()),
        )
    }
}

/// What a kind decided for one instance: the action and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    pub action: Option<Action>,
    pub attributes: Vec<AttrChange>,
    pub reason: Option<String>,
}

impl Diff {
    /// No change, or an update when any attribute differs.
    pub fn update_if_changed(attributes: Vec<AttrChange>) -> Self {
        let action = if attributes.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
        Diff {
            action: Some(action),
            attributes,
            reason: None,
        }
    }

    pub fn action(&self) -> Action {
        self.action.unwrap_or(Action::NoOp)
    }
}

/// A planned change to one resource instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: Address,
    pub machine: Option<String>,
    pub action: Action,
    pub attributes: Vec<AttrChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Changes to what this instance depends on that make it act (a service restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggered_by: Vec<Address>,
}

/// The attribute of a change that only records, on the host, that corral manages what is
/// already as configured.
pub const RECORD_ATTR: &str = "record";

impl ResourceChange {
    pub fn attribute(&self, name: &str) -> Option<&AttrChange> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Whether the change only updates corral's record on the host: no step runs for it.
    pub fn is_record_only(&self) -> bool {
        records_only(&self.attributes)
    }
}

/// Whether changed `attributes` only record, on the host, what is already as configured.
pub fn records_only(attributes: &[AttrChange]) -> bool {
    matches!(attributes, [only] if only.name == RECORD_ATTR)
}

/// A host that could not be read, and why; the plan is incomplete without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProblem {
    pub machine: String,
    pub message: String,
}

impl HostProblem {
    /// A host problem with ssh's line endings (`\r\n`) made plain.
    pub fn new(machine: &str, message: &str) -> Self {
        HostProblem {
            machine: machine.to_owned(),
            message: message
                .replace("\r\n", "\n")
                .replace('\r', "")
                .trim()
                .to_owned(),
        }
    }

    /// What failed, in a word or two, from the message: for the one line per host.
    pub fn failure(&self) -> &'static str {
        let m = self.message.as_str();
        if m.contains("did not answer within") {
            "deadline"
        } else if m.contains("Host key verification failed")
            || m.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || m.contains("No ED25519 host key is known")
            || m.contains("host key")
        {
            "host key"
        } else if m.contains("Permission denied") || m.contains("Too many authentication failures")
        {
            "authentication"
        } else if m.contains("sudo:")
            || m.contains("a password is required")
            || (m.starts_with("sudo on ") && m.contains("needs a password"))
        {
            "sudo"
        } else if m.contains("cannot connect")
            || m.contains("Connection")
            || m.contains("connect to host")
        {
            "connection"
        } else {
            "reading facts"
        }
    }
}

/// A resource instance whose facts did not let corral decide what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceProblem {
    pub address: Address,
    pub message: String,
}

/// The result of planning: changes in apply order, and what kept the plan from being
/// complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// Whose records on the hosts the plan reads and writes (deletions, `record`).
    #[serde(default)]
    pub project: String,
    /// Changes in apply order; no-ops are left out.
    pub resource_changes: Vec<ResourceChange>,
    /// Hosts that could not be read; their resources are not in the plan.
    pub unreachable: Vec<HostProblem>,
    /// Instances whose facts were unusable (an unknown sysctl key, say).
    pub errors: Vec<ResourceProblem>,
    /// What the facts say will not work as configured, though it can be applied (an
    /// encrypted overlay on a kernel without ESP): shown, never blocking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ResourceProblem>,
    /// sha256 of the configuration the plan was made from.
    pub config_digest: String,
    /// sha256 of each host's facts.
    pub facts_digests: BTreeMap<String, String>,
    /// How many instances were compared.
    pub instances: usize,
}

impl Plan {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.resource_changes.is_empty()
    }

    /// True when every host was read and every instance was decided.
    pub fn is_complete(&self) -> bool {
        self.unreachable.is_empty() && self.errors.is_empty()
    }

    /// Counts for the summary line: add, change, replace, destroy.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for change in &self.resource_changes {
            counts.record(change.action);
        }
        counts
    }
}

/// A plan saved by `plan -o`, with what is needed to check, at apply time, that the
/// configuration and the hosts are still as the plan saw them. Holds no secret: sensitive
/// values are only ever [`AttrValue::Sensitive`] in a plan.
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
    pub fn read(path: &std::path::Path) -> Option<Result<SavedPlan, String>> {
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value.get("corral_saved_plan")?;
        Some(
            serde_json::from_value::<SavedPlan>(value)
                .map_err(|e| {
                    format!(
                        "`{}` is not a plan this corral can read: {e}",
                        path.display()
                    )
                })
                .and_then(|saved| {
                    if saved.corral_saved_plan == Self::VERSION {
                        Ok(saved)
                    } else {
                        Err(format!(
                            "`{}` was saved by another version of corral (format {}); plan again",
                            path.display(),
                            saved.corral_saved_plan
                        ))
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
        facts: &BTreeMap<String, crate::facts::HostFacts>,
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
        let changed: Vec<String> = self
            .plan
            .facts_digests
            .iter()
            .filter(|(machine, digest)| fresh.facts_digests.get(*machine) != Some(*digest))
            .map(|(machine, _)| machine)
            .chain(
                fresh
                    .facts_digests
                    .keys()
                    .filter(|m| !self.plan.facts_digests.contains_key(*m)),
            )
            .map(|key| match self.changed_probes(key, facts) {
                Some(keys) => {
                    let names = readers(key, &keys);
                    match names.as_slice() {
                        [] => key.clone(),
                        [a] => format!("{key} ({a})"),
                        [a, b] => format!("{key} ({a}, {b})"),
                        [a, b, rest @ ..] => format!("{key} ({a}, {b} and {} more)", rest.len()),
                    }
                }
                None => describe_facts(key, facts),
            })
            .collect();
        (!changed.is_empty()).then_some(Staleness::HostsChanged(changed))
    }
}

impl SavedPlan {
    /// The probes of machine `key` whose output changed since the plan was saved; `None`
    /// for a cluster's facts, or when the plan kept no probe digests (an older corral).
    fn changed_probes(
        &self,
        key: &str,
        facts: &BTreeMap<String, crate::facts::HostFacts>,
    ) -> Option<std::collections::BTreeSet<String>> {
        if crate::facts::is_cluster_key(key) {
            return None;
        }
        let saved = self.probe_digests.get(key)?;
        let now = facts
            .get(key)
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

/// How a key of the gathered facts is named to the operator: a machine by its name, a
/// cluster's facts (`@cluster ADDRESS`, an internal key) as the cluster of the resource and
/// the machine they were read on.
fn describe_facts(key: &str, facts: &BTreeMap<String, crate::facts::HostFacts>) -> String {
    let Some(address) = key.strip_prefix("@cluster ") else {
        return key.to_owned();
    };
    let manager = facts
        .get(key)
        .and_then(|f| f.probes.get(crate::facts::MANAGER_KEY))
        .map(|out| out.output.trim())
        .filter(|name| !name.is_empty());
    match manager {
        Some(manager) => format!("the cluster of {address} (read on {manager})"),
        None => format!("the cluster of {address}"),
    }
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
    /// The machines, and clusters, whose facts differ from the saved plan's.
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
                machines
                    .iter()
                    .map(|m| crate::facts::describe_key(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Staleness::AlreadyApplied => {
                f.write_str("the hosts already match the configuration: this plan, or the same changes, was applied")
            }
        }
    }
}

/// Numbers for `Plan: N to add, N to change, N to replace, N to destroy.`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    /// Removed resources left in place (only the record of them goes).
    pub forget: usize,
}

/// `N to add, N to change, N to replace, N to destroy`, and `, N to forget` when some are
/// left in place, as every plan format says it.
impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to replace, {} to destroy",
            self.add, self.change, self.replace, self.destroy
        )?;
        if self.forget > 0 {
            write!(f, ", {} to forget", self.forget)?;
        }
        Ok(())
    }
}

impl Counts {
    /// Counts one change of `action` (a no-op counts nowhere).
    pub fn record(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.destroy += 1,
            Action::Forget => self.forget += 1,
            Action::NoOp => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key a cluster's facts are kept under is internal: a stale plan names the
    /// cluster by its resource.
    #[test]
    fn a_changed_cluster_is_named_by_its_resource() {
        let key = crate::facts::cluster_key(&crate::address::Address::new(
            "gluster/volume",
            "shared",
            None,
        ));
        let text = Staleness::HostsChanged(vec!["n1".into(), key]).to_string();
        assert_eq!(
            text,
            "hosts changed since the plan was saved: n1, the cluster of gluster/volume.shared"
        );
    }

    /// ssh ends its lines with `\r\n`; a host problem is one clean message, and says in a
    /// word what failed.
    #[test]
    fn host_problems_are_clean_and_classified() {
        let problem = HostProblem::new(
            "n1",
            "cannot connect to n1 (10.0.0.1) over SSH: Host key verification failed.\r\n",
        );
        assert!(!problem.message.contains('\r'), "{problem:?}");
        assert_eq!(problem.failure(), "host key");
        for (message, failure) in [
            (
                "ssh: connect to host 10.0.0.1 port 22: Connection refused",
                "connection",
            ),
            (
                "root@10.0.0.1: Permission denied (publickey).",
                "authentication",
            ),
            ("sudo: a password is required", "sudo"),
            (
                "sudo on n1 needs a password for ops: allow NOPASSWD for corral's commands",
                "sudo",
            ),
            ("did not answer within 5 s while reading facts", "deadline"),
        ] {
            assert_eq!(
                HostProblem::new("n1", message).failure(),
                failure,
                "{message}"
            );
        }
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
            facts_digests: BTreeMap::from([("n1".to_owned(), digest.to_owned())]),
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
        let (config, facts) = (crate::config::Config::default(), BTreeMap::new());
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
        let cluster = crate::facts::cluster_key(&Address::new("swarm/cluster", "main", None));
        let facts_of = |manager: &str, info: &str, file: &str| {
            BTreeMap::from([
                (
                    cluster.clone(),
                    crate::facts::HostFacts {
                        probes: BTreeMap::from([
                            (crate::facts::MANAGER_KEY.to_owned(), output(manager)),
                            ("swarm:info".to_owned(), output(info)),
                        ]),
                        ..Default::default()
                    },
                ),
                (
                    "n1".to_owned(),
                    crate::facts::HostFacts {
                        probes: BTreeMap::from([
                            (motd.clone(), output(file)),
                            ("dpkg:tree".to_owned(), output("ii")),
                        ]),
                        ..Default::default()
                    },
                ),
            ])
        };
        let plan_of = |config: &crate::config::Config,
                       facts: &BTreeMap<String, crate::facts::HostFacts>| {
            Plan {
                format_version: FORMAT_VERSION.to_owned(),
                project: config.project.clone(),
                resource_changes: Vec::new(),
                unreachable: Vec::new(),
                errors: Vec::new(),
                warnings: Vec::new(),
                config_digest: config.digest.clone(),
                facts_digests: facts.iter().map(|(k, f)| (k.clone(), f.digest())).collect(),
                instances: 2,
            }
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
            probe_digests: BTreeMap::from([("n1".to_owned(), facts["n1"].probe_digests())]),
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
