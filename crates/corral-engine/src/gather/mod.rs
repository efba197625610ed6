//! Stage 3: read the hosts.
//!
//! Reading many hosts at once: one connection and one fact script per host, hosts read
//! concurrently up to a bound. A host that cannot be reached, or does not answer within its
//! deadline (connecting and reading together), is recorded like an unreachable one, not
//! fatal: the others are still read and planned. A fact script's output is bounded too.

pub mod script;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::script::{FactScript, ProbeTime, SplitError};
use crate::base::machine::Machine;
use crate::config::Config;
use crate::facts::{ClusterRead, Gathered, HostFacts, Probe};
use crate::graph::{Filter, ResourceGraph};
use crate::kinds::Placement;
use crate::transport::ssh::{SshHost, SshOptions};
use crate::transport::{
    bytes, deadline_after, describe, BoxFuture, Host, Limits, OutputBound, TransportError,
};

/// How long one host may take to connect and answer its fact script, unless
/// `--facts-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The most a fact script may print; a host that prints more is not read (every probe's
/// output is kept in memory, and saved in facts files).
pub const MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// How hosts are read.
#[derive(Debug, Clone, Copy)]
pub struct GatherOptions {
    /// Hosts read at the same time.
    pub parallelism: usize,
    /// The deadline of one host, connecting and reading together.
    pub timeout: Duration,
    /// Time each host's round trip and each probe on its host (`--timings`).
    pub timings: bool,
}

/// Where one host's facts took their time (`--timings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTimings {
    /// Making the connection (nothing when a kept one was reused).
    pub connect: Duration,
    /// Running the fact script, from sending it to its last byte.
    pub script: Duration,
    /// Each probe's wall time on the host, by the host's clock.
    pub probes: Vec<ProbeTime>,
}

/// What reading the hosts gave: the facts (of every host that answered, the problem of
/// every host that did not), and the open connections (apply reuses them).
pub struct Connected<H = SshHost> {
    pub facts: Gathered,
    pub connections: BTreeMap<String, Arc<H>>,
    /// With `--timings`: where each host read took its time.
    pub timings: BTreeMap<String, HostTimings>,
}

impl<H> Default for Connected<H> {
    fn default() -> Self {
        Connected {
            facts: Gathered::default(),
            connections: BTreeMap::new(),
            timings: BTreeMap::new(),
        }
    }
}

/// Why a host could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReadError {
    #[error("did not answer within {} while connecting", describe(*timeout))]
    #[diagnostic(
        code(corral::facts::connect_timeout),
        help("check that the host is up and its SSH port reachable; a slow one needs a longer --facts-timeout")
    )]
    ConnectTimeout { timeout: Duration },
    #[error(
        "did not answer within {} while reading facts (a probe may be hung, e.g. on a stuck mount; if the host is only slow, raise --facts-timeout)",
        describe(*timeout)
    )]
    #[diagnostic(
        code(corral::facts::read_timeout),
        help("look for a hung process on the host (`ps -eo stat,args | grep ^D`)")
    )]
    ReadTimeout { timeout: Duration },
    #[error(
        "its fact script printed more than {}, more than corral reads from a host (is a managed file very large?)",
        bytes(*limit)
    )]
    #[diagnostic(
        code(corral::facts::too_much_output),
        help("corral reads managed files whole; keep them under the bound")
    )]
    TooMuchOutput { limit: usize },
    #[error("could not read the fact script's output ({error}); the shell said: {stderr}")]
    #[diagnostic(
        code(corral::facts::script_output),
        help("the host's shell did not run the fact script through; its words above say why")
    )]
    Unsplittable { error: SplitError, stderr: String },
    /// The connection failed, or the script could not be run.
    #[error("{0}")]
    #[diagnostic(code(corral::facts::transport))]
    Transport(TransportError),
}

impl ReadError {
    /// The connection failed (not the script): a new connection may do better.
    fn disconnected(&self) -> bool {
        matches!(self, ReadError::Transport(TransportError::Disconnected(_)))
    }

    /// How a failed run of the fact script reads, for a script that ran until `timeout`.
    fn of_run(error: TransportError, timeout: Duration) -> ReadError {
        match error {
            TransportError::DeadlinePassed { .. } => ReadError::ReadTimeout { timeout },
            TransportError::OutputTooLarge { limit } => ReadError::TooMuchOutput { limit },
            other => ReadError::Transport(other),
        }
    }
}

/// How a machine is connected to: over SSH for runs, otherwise in tests.
pub trait Connect: Send + Sync + 'static {
    type Host: Host + 'static;
    fn connect<'a>(
        &'a self,
        machine: &'a Machine,
    ) -> BoxFuture<'a, Result<Self::Host, TransportError>>;
}

/// Connects with [`SshHost::connect`].
pub struct SshConnect(pub SshOptions);

impl Connect for SshConnect {
    type Host = SshHost;
    fn connect<'a>(
        &'a self,
        machine: &'a Machine,
    ) -> BoxFuture<'a, Result<SshHost, TransportError>> {
        Box::pin(SshHost::connect(machine, &self.0))
    }
}

/// The probes each machine needs for the instances of `graph`, in instance order. Every
/// machine of the inventory (within `--limit`) is read for its record of what corral wrote
/// there, so that a host whose resources were all removed still gets its deletions.
pub fn probes_by_machine(
    config: &Config,
    graph: &ResourceGraph,
    filter: &Filter,
) -> BTreeMap<String, Vec<Probe>> {
    let mut probes: BTreeMap<String, Vec<Probe>> = config
        .machines
        .keys()
        .filter(|m| filter.machines.is_empty() || filter.machines.contains(m))
        .map(|m| (m.clone(), Vec::new()))
        .collect();
    for instance in &graph.instances {
        let resource = &config.resources[instance.resource];
        let name = &resource.address.name;
        match resource.spec.placement() {
            Placement::Machines(kind) => {
                if let Some(machine) = &instance.machine {
                    probes
                        .entry(machine.clone())
                        .or_default()
                        .extend(kind.probes(name));
                }
            }
            // Every member tells its own view of the cluster in the same round trip; the
            // first member (the first declared manager, the first brick machine), which
            // most often is the one to answer for the cluster, is asked the manager's
            // questions too (see `read_clusters`).
            Placement::Cluster(kind) => {
                let members = kind.members();
                for member in &members {
                    if filter.machines.is_empty() || filter.machines.contains(member) {
                        probes
                            .entry(member.clone())
                            .or_default()
                            .extend(kind.member_probes(name));
                    }
                }
                if let Some(first) = members.first() {
                    if filter.machines.is_empty() || filter.machines.contains(first) {
                        probes
                            .entry(first.clone())
                            .or_default()
                            .extend(kind.manager_probes(name).into_iter().map(speculative));
                    }
                }
            }
        }
    }
    // Every machine's record first, with the paths the configuration still declares there
    // (whose kept originals need no diff, so their content is not read).
    for (machine, list) in probes.iter_mut() {
        let labels = config.machines.get(machine).map(|m| &m.spec.labels);
        let declared: Vec<String> = config
            .resources
            .iter()
            .filter_map(|r| match r.spec.placement() {
                Placement::Machines(kind)
                    if labels.is_some_and(|l| kind.selector().matches(machine, l)) =>
                {
                    kind.managed_entry(&r.address.name)?.path
                }
                _ => None,
            })
            .collect();
        // The record first, then what every host answers for some kind (who corral logs
        // in as: a plan must not delete that user's way to root).
        let every = crate::kinds::every_host_probes();
        list.splice(
            0..0,
            std::iter::once(crate::managed::probe(&declared)).chain(every),
        );
    }
    probes
}

/// The resources that read any of the probes `keys` on `machine` (as [`probes_by_machine`]
/// asks them), and corral's record of the host when it is among them: what a change on the
/// host is a change to, for the operator.
pub fn readers(
    config: &Config,
    graph: &ResourceGraph,
    machine: &str,
    keys: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for instance in &graph.instances {
        let resource = &config.resources[instance.resource];
        let name = &resource.address.name;
        let read = match resource.spec.placement() {
            Placement::Machines(kind) if instance.machine.as_deref() == Some(machine) => {
                kind.probes(name)
            }
            Placement::Cluster(kind) if kind.members().iter().any(|m| m == machine) => {
                kind.member_probes(name)
            }
            _ => continue,
        };
        let address = resource.address.to_string();
        if read.iter().any(|p| keys.contains(&p.key)) && !names.contains(&address) {
            names.push(address);
        }
    }
    if keys.contains(crate::managed::PROBE_KEY) {
        names.push("corral's record of the host".to_owned());
    }
    names
}

/// Where a manager probe asked of a member in the first round trip keeps its output, apart
/// from the member's own facts.
const SPECULATIVE: &str = "@manager ";

fn speculative(probe: Probe) -> Probe {
    Probe {
        key: format!("{SPECULATIVE}{}", probe.key),
        script: probe.script,
    }
}

/// Whether a probe is a manager's question asked of a member in the first round trip.
pub fn is_speculative(key: &str) -> bool {
    key.starts_with(SPECULATIVE)
}

/// Takes the manager probes a member answered in the first round trip out of its facts
/// (they are the cluster's, see `read_clusters`), by their own keys. (Apply's re-read
/// under its lock does not ask them: see [`is_speculative`].)
fn take_speculative(facts: &mut HostFacts) -> BTreeMap<String, crate::facts::ProbeOutput> {
    let keys: Vec<String> = facts
        .probes
        .keys()
        .filter(|k| is_speculative(k))
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| {
            let out = facts.probes.remove(&k)?;
            Some((k[SPECULATIVE.len()..].to_owned(), out))
        })
        .collect()
}

/// The second round trip: for each cluster resource of `graph`, its manager probes on the
/// first live manager its kind names from the members' facts (the next one when that one
/// does not answer). The result is kept in the clusters' facts with the manager's name. A
/// cluster none of whose candidates answered is recorded as unanswered; one without
/// candidates (not created yet) has no entry.
pub async fn read_clusters<H: Host + 'static>(
    config: &Config,
    graph: &ResourceGraph,
    connected: &mut Connected<H>,
    timeout: Duration,
) {
    let gathered = &mut connected.facts;
    // One round trip per facts scope: every resource on a swarm shares its swarm's.
    let mut scopes: BTreeMap<crate::address::Address, (Vec<Probe>, Vec<String>, bool)> =
        BTreeMap::new();
    for instance in &graph.instances {
        let resource = &config.resources[instance.resource];
        let Placement::Cluster(kind) = resource.spec.placement() else {
            continue;
        };
        let scope = kind
            .facts_scope()
            .unwrap_or_else(|| resource.address.clone());
        let is_root = scope == resource.address;
        let entry = scopes.entry(scope.clone()).or_default();
        entry.0.extend(kind.manager_probes(&resource.address.name));
        // The scope's own resource says who can answer; another one only when it is not
        // planned (`--target`).
        if is_root || (!entry.2 && entry.1.is_empty()) {
            let facts = cluster_facts(config, kind, &scope, gathered);
            entry.1 = kind.manager_candidates(&facts);
            entry.2 = is_root;
        }
    }
    // What the first members answered for their clusters in the first round trip.
    let mut answered: BTreeMap<String, BTreeMap<String, crate::facts::ProbeOutput>> =
        BTreeMap::new();
    for (machine, facts) in gathered.hosts.iter_mut() {
        let taken = take_speculative(facts);
        if !taken.is_empty() {
            answered.insert(machine.clone(), taken);
        }
    }
    // The scopes whose best candidate already answered need no second round trip; the
    // others are read at the same time.
    let mut reading = tokio::task::JoinSet::new();
    // Which scope each read is for, should its task fail without saying.
    let mut reads = std::collections::HashMap::new();
    for (scope, (probes, candidates, _)) in scopes {
        if let Some(first) = candidates.first() {
            if let Some(outputs) = answered.get(first) {
                if probes.iter().all(|p| outputs.contains_key(&p.key)) {
                    let mut facts = HostFacts::default();
                    for probe in &probes {
                        facts
                            .probes
                            .insert(probe.key.clone(), outputs[&probe.key].clone());
                    }
                    settle(config, &mut facts);
                    let manager = first.clone();
                    gathered
                        .clusters
                        .insert(scope, ClusterRead { manager, facts });
                    continue;
                }
            }
        }
        let hosts: Vec<(String, Option<Arc<H>>)> = candidates
            .iter()
            .map(|c| (c.clone(), connected.connections.get(c).cloned()))
            .collect();
        let task_scope = scope.clone();
        let task = reading.spawn(async move {
            let mut problems = Vec::new();
            for (candidate, host) in hosts {
                let Some(host) = host else {
                    problems.push(format!("{candidate} was not read"));
                    continue;
                };
                match read_host_within(host.as_ref(), &probes, timeout).await {
                    Ok(facts) => {
                        let manager = candidate;
                        return (scope, Ok(ClusterRead { manager, facts }));
                    }
                    Err(error) => problems.push(format!("{candidate}: {error}")),
                }
            }
            (scope, Err(problems))
        });
        reads.insert(task.id(), task_scope);
    }
    let gathered = &mut connected.facts;
    while let Some(joined) = reading.join_next_with_id().await {
        match joined {
            Ok((_, (scope, Ok(mut read)))) => {
                settle(config, &mut read.facts);
                gathered.clusters.insert(scope, read);
            }
            // No candidate (a cluster not created yet): no entry.
            Ok((_, (_, Err(problems)))) if problems.is_empty() => {}
            Ok((_, (scope, Err(problems)))) => {
                let message = format!("no manager of {scope} answered ({})", problems.join("; "));
                gathered.unanswered.insert(scope, message);
            }
            Err(e) => {
                if let Some(scope) = reads.remove(&e.id()) {
                    gathered
                        .unanswered
                        .insert(scope, format!("the cluster's read failed: {e}"));
                }
            }
        }
    }
}

/// A cluster's facts as kept once read: the answers of questions asked together (a
/// volume's, in one `gluster` process) as the probes they answer, then what must never be
/// kept taken out.
fn settle(config: &Config, facts: &mut HostFacts) {
    crate::facts::gluster::expand(facts);
    crate::kinds::redact_cluster_facts(config, facts);
}

/// Runs one fact script on `host` within [`DEFAULT_TIMEOUT`] and splits its output.
pub async fn read_host(host: &dyn Host, probes: &[Probe]) -> Result<HostFacts, ReadError> {
    read_host_within(host, probes, DEFAULT_TIMEOUT).await
}

/// Runs one fact script on `host` within `timeout` and splits its output.
pub async fn read_host_within(
    host: &dyn Host,
    probes: &[Probe],
    timeout: Duration,
) -> Result<HostFacts, ReadError> {
    read_host_until(host, probes, deadline_after(timeout), timeout).await
}

/// Runs one fact script on `host` until `deadline` (the end of `timeout`, which messages
/// name) and splits its output.
async fn read_host_until(
    host: &dyn Host,
    probes: &[Probe],
    deadline: Instant,
    timeout: Duration,
) -> Result<HostFacts, ReadError> {
    read_host_once(host, probes, deadline, timeout, false)
        .await
        .map(|(facts, _)| facts)
}

/// [`read_host_until`], saying whether the connection failed; with `timings`, also each
/// probe's time on the host.
async fn read_host_once(
    host: &dyn Host,
    probes: &[Probe],
    deadline: Instant,
    timeout: Duration,
    timings: bool,
) -> Result<(HostFacts, Vec<ProbeTime>), ReadError> {
    let script = FactScript::build(probes, timings);
    let limits = Limits {
        deadline,
        stdout: OutputBound::FailBeyond(MAX_OUTPUT),
    };
    let output = host
        .run_script(&script.text, limits)
        .await
        .map_err(|e| ReadError::of_run(e, timeout))?;
    let (probes, times) =
        script
            .split_timed(&output.stdout)
            .map_err(|error| ReadError::Unsplittable {
                error,
                stderr: crate::base::text::tail(&output.stderr, 400).to_owned(),
            })?;
    Ok((
        HostFacts {
            probes,
            ..HostFacts::default()
        },
        times,
    ))
}

/// Connects to every machine in `probes` over SSH and reads it, at most
/// `options.parallelism` at a time, each within `options.timeout` from the start of its
/// connection.
pub async fn gather(
    config: &Config,
    probes: BTreeMap<String, Vec<Probe>>,
    ssh: &SshOptions,
    options: GatherOptions,
) -> Connected {
    gather_with(config, probes, Arc::new(SshConnect(ssh.clone())), options).await
}

/// [`gather`], connecting with `connect`.
pub async fn gather_with<C: Connect>(
    config: &Config,
    probes: BTreeMap<String, Vec<Probe>>,
    connect: Arc<C>,
    options: GatherOptions,
) -> Connected<C::Host> {
    let semaphore = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, probes) in probes {
        let Some(machine) = config.machines.get(&name).cloned() else {
            continue;
        };
        let (semaphore, connect) = (semaphore.clone(), connect.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let result = read_machine(connect.as_ref(), &machine, &probes, options).await;
            (name, result)
        });
    }
    let mut connected = Connected::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok((host, facts, timings)))) => {
                if options.timings {
                    connected.timings.insert(name.clone(), timings);
                }
                connected.facts.hosts.insert(name.clone(), facts);
                connected.connections.insert(name, Arc::new(host));
            }
            Ok((name, Err(error))) => {
                connected.facts.unreachable.insert(name, error.to_string());
            }
            Err(e) => {
                // A panicking task is a bug; keep going with the other hosts.
                eprintln!("internal error while reading a host: {e}");
            }
        }
    }
    connected
}

/// How many of a host's slowest probes the timings name.
const SLOWEST_SHOWN: usize = 3;

/// The `--timings` table: one row per host read, the slowest first, with its connection,
/// its fact script's round trip and its slowest probes by the host's clock; then the
/// critical path (the slowest host, which the whole read waited for, and why).
pub fn render_timings(timings: &BTreeMap<String, HostTimings>) -> String {
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let slowest = |t: &HostTimings| -> Vec<String> {
        let mut probes: Vec<&ProbeTime> = t.probes.iter().collect();
        probes.sort_by(|a, b| b.time.cmp(&a.time).then(a.key.cmp(&b.key)));
        probes
            .iter()
            .take(SLOWEST_SHOWN)
            .map(|p| format!("{} {}", crate::base::text::printable(&p.key), ms(p.time)))
            .collect()
    };
    let mut rows: Vec<(&String, &HostTimings)> = timings.iter().collect();
    rows.sort_by(|a, b| {
        (b.1.connect + b.1.script)
            .cmp(&(a.1.connect + a.1.script))
            .then(a.0.cmp(b.0))
    });
    let width = rows.iter().map(|(h, _)| h.len()).max().unwrap_or(0).max(4);
    let mut text = format!(
        "Timings (probes by the host's clock, in steps of 10 ms):\n  {:width$}  {:>9}  {:>9}  {:>11}  slowest probes\n",
        "host", "total", "connect", "fact script"
    );
    for (host, t) in &rows {
        text.push_str(&format!(
            "  {:width$}  {:>9}  {:>9}  {:>11}  {}\n",
            crate::base::text::printable(host),
            ms(t.connect + t.script),
            ms(t.connect),
            ms(t.script),
            slowest(t).join(", ")
        ));
    }
    if let Some((host, t)) = rows.first() {
        let probes: Duration = t.probes.iter().map(|p| p.time).sum();
        text.push_str(&format!(
            "Critical path: {} ({}: connecting {}, fact script {}, its probes {} summed, some side by side); slowest probes: {}\n",
            crate::base::text::printable(host),
            ms(t.connect + t.script),
            ms(t.connect),
            ms(t.script),
            ms(probes),
            match slowest(t) {
                names if names.is_empty() => "none timed".to_owned(),
                names => names.join(", "),
            }
        ));
    }
    text
}

/// Connects to one machine and reads it, both within `options.timeout`. A connection still
/// being made at the deadline is dropped (for SSH, that kills its `ssh`); a host that does
/// not answer is dropped too, which closes its connection.
async fn read_machine<C: Connect>(
    connect: &C,
    machine: &Machine,
    probes: &[Probe],
    options: GatherOptions,
) -> Result<(C::Host, HostFacts, HostTimings), ReadError> {
    let deadline = deadline_after(options.timeout);
    let started = Instant::now();
    let host = connect_until(connect, machine, deadline, options.timeout).await?;
    let connected = Instant::now();
    let timed = |connected: Instant, times| HostTimings {
        connect: connected - started,
        script: connected.elapsed(),
        probes: times,
    };
    match read_host_once(&host, probes, deadline, options.timeout, options.timings).await {
        Ok((facts, times)) => Ok((host, facts, timed(connected, times))),
        // A warm connection kept since an earlier run may be dead (the host rebooted):
        // discarded, and the next connection is a new one.
        Err(error) if error.disconnected() && host.reused() && Instant::now() < deadline => {
            host.discard_reused();
            drop(host);
            let host = connect_until(connect, machine, deadline, options.timeout).await?;
            let connected = Instant::now();
            let (facts, times) =
                read_host_once(&host, probes, deadline, options.timeout, options.timings).await?;
            Ok((host, facts, timed(connected, times)))
        }
        Err(error) => Err(error),
    }
}

/// Connects to `machine` before `deadline` (the end of `timeout`, which messages name).
async fn connect_until<C: Connect>(
    connect: &C,
    machine: &Machine,
    deadline: Instant,
    timeout: Duration,
) -> Result<C::Host, ReadError> {
    match tokio::time::timeout_at(deadline, connect.connect(machine)).await {
        Ok(connected) => connected.map_err(ReadError::Transport),
        Err(_) => Err(ReadError::ConnectTimeout { timeout }),
    }
}

/// What a cluster resource plans from, out of the gathered facts: its members' facts
/// (the members that were read) with their addresses, and its manager's (read for its
/// facts scope, see [`crate::kinds::ClusterKind::facts_scope`]).
pub fn cluster_facts<'a>(
    config: &crate::config::Config,
    kind: &dyn crate::kinds::ClusterKind,
    address: &crate::address::Address,
    gathered: &'a crate::facts::Gathered,
) -> crate::kinds::ClusterFacts<'a> {
    let members = kind
        .members()
        .into_iter()
        .filter_map(|m| {
            let ip = config.machines.get(&m)?.spec.ip;
            let facts = gathered.hosts.get(&m)?;
            Some((m, crate::kinds::ClusterMember { ip, facts }))
        })
        .collect();
    let scope = kind.facts_scope();
    let manager = gathered
        .clusters
        .get(scope.as_ref().unwrap_or(address))
        .map(|read| (read.manager.clone(), &read.facts));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, LoadOptions};
    use crate::graph::Filter;
    use crate::planner::build;
    use crate::transport::{LocalHost, ScriptOutput};

    /// Machines as the test names them: `silent` never connects, `stuck` hangs in its fact
    /// script, `chatty` prints without end; the others are this machine.
    struct TestConnect;

    enum TestHost {
        Local,
        Stuck,
        Chatty,
    }

    impl Host for TestHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            match self {
                TestHost::Local => LocalHost.run_script(script, limits),
                TestHost::Stuck => LocalHost.run_script("echo reading; sleep 600", limits),
                TestHost::Chatty => LocalHost.run_script("yes corral", limits),
            }
        }
    }

    impl Connect for TestConnect {
        type Host = TestHost;
        fn connect<'a>(
            &'a self,
            machine: &'a Machine,
        ) -> BoxFuture<'a, Result<TestHost, TransportError>> {
            Box::pin(async move {
                match machine.name.as_str() {
                    "silent" => std::future::pending().await,
                    "stuck" => Ok(TestHost::Stuck),
                    "chatty" => Ok(TestHost::Chatty),
                    _ => Ok(TestHost::Local),
                }
            })
        }
    }

    /// The timings table puts the slowest host first, its slowest probes first, and names
    /// it as the critical path; the probe times are read from real `sh` output.
    #[tokio::test]
    async fn timings_name_the_slowest_host_and_its_slowest_probes() {
        let probes = [
            Probe {
                key: "naps".into(),
                script: "sleep 0.2".into(),
            },
            Probe {
                key: "quick".into(),
                script: "echo quick".into(),
            },
        ];
        let limits_for = || Duration::from_secs(10);
        let host = TestHost::Local;
        let deadline = deadline_after(limits_for());
        let (_, times) = read_host_once(&host, &probes, deadline, limits_for(), true)
            .await
            .unwrap();
        let slow = HostTimings {
            connect: Duration::from_millis(120),
            script: Duration::from_millis(250),
            probes: times,
        };
        let fast = HostTimings {
            connect: Duration::from_millis(100),
            script: Duration::from_millis(30),
            probes: Vec::new(),
        };
        let table = render_timings(&BTreeMap::from([
            ("a-fast".to_owned(), fast),
            ("b-slow".to_owned(), slow),
        ]));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[2].trim_start().starts_with("b-slow"), "{table}");
        assert!(lines[3].trim_start().starts_with("a-fast"), "{table}");
        let critical = lines[4];
        assert!(
            critical.starts_with("Critical path: b-slow (370 ms"),
            "{table}"
        );
        let naps = critical.find("naps 2").unwrap_or_else(|| panic!("{table}"));
        let quick = critical.find("quick ").unwrap_or_else(|| panic!("{table}"));
        assert!(naps < quick, "{table}");
    }

    /// A host that hangs (connecting or in a probe) is reported like an unreachable one
    /// after the deadline, saying what it was doing; one that prints without end is not
    /// read past the bound; the others are read and planned.
    #[tokio::test]
    async fn hung_hosts_are_reported_after_the_deadline_and_the_others_planned() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for (i, name) in ["ok", "stuck", "silent", "chatty"].iter().enumerate() {
            text.push_str(&format!(
                "kind: infrastructure/machine\nname: {name}\nspecification: {{ hostname: {name}, ip: 127.0.0.{} }}\n---\n",
                i + 1
            ));
        }
        text.push_str(&format!(
            "kind: os/file\nname: motd\nspecification:\n  machines: all\n  path: {}/motd\n  content: \"hi\\n\"\n",
            dir.path().display()
        ));
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        let config = config::load(&[path], &LoadOptions::default()).unwrap();
        let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
        let probes = probes_by_machine(&config, &graph, &Filter::default());
        let options = GatherOptions {
            parallelism: 4,
            timeout: Duration::from_secs(1),
            timings: false,
        };
        let gathered = gather_with(&config, probes, Arc::new(TestConnect), options).await;

        let gathered = gathered.facts;
        assert_eq!(gathered.hosts.keys().collect::<Vec<_>>(), ["ok"]);
        assert_eq!(
            gathered.unreachable["silent"],
            "did not answer within 1 s while connecting"
        );
        assert!(
            gathered.unreachable["stuck"]
                .starts_with("did not answer within 1 s while reading facts"),
            "{}",
            gathered.unreachable["stuck"]
        );
        assert!(
            gathered.unreachable["chatty"].contains("printed more than 64 MiB"),
            "{}",
            gathered.unreachable["chatty"]
        );

        let plan = build::plan(&config, &graph, &Filter::default(), &gathered);
        assert_eq!(plan.unreachable.len(), 3);
        let planned: Vec<String> = plan
            .resource_changes
            .iter()
            .map(|c| c.address.to_string())
            .collect();
        assert_eq!(planned, ["os/file.motd[ok]"]);
    }
}
