//! Stage 5: carry out a plan.
//!
//! Apply walks the graph the plan was made from and runs only the changes the plan names.
//! Each host does one resource at a time (a host's package manager and init system are not
//! made for concurrent changes); different hosts work in parallel, up to `parallelism`.
//! When a resource fails, everything that depends on it is skipped and the rest goes on.
//! Every step runs within a deadline (the resource's `lifecycle.timeout`, else
//! [`DEFAULT_STEP_TIMEOUT`]); a step past it is stopped and fails like any other.
//!
//! [`session`] wraps a walk in what makes it safe to run against shared hosts: the locks,
//! the re-read under them, interrupts and the record of what corral wrote.

pub mod guard;
pub mod interrupt;
pub mod lock;
pub mod session;
mod timeout;

pub use timeout::StepTimeout;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::address::Address;
use crate::config::Config;
use crate::facts::tail;
use crate::graph::{Node, ResourceGraph, Walk};
use crate::kinds::Step;
use crate::plan::{Action, Plan, ResourceChange};
use crate::transport::{describe, Host, Limits, OutputBound, TransportError};

/// How long a step may run when its resource sets no `lifecycle.timeout`: generous, as an
/// upgrade of many packages is slow, but not forever.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How much of a step's output is kept: its end, which the error message quotes.
pub const STEP_OUTPUT_TAIL: usize = 64 * 1024;

/// Something that happened during apply, for the progress display.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        machine: String,
        address: Address,
        step: String,
    },
    Finished {
        machine: String,
        address: Address,
        elapsed: Duration,
        error: Option<String>,
    },
    Skipped {
        machine: String,
        address: Address,
        because: Address,
    },
}

impl Event {
    pub fn machine(&self) -> &str {
        match self {
            Event::Started { machine, .. }
            | Event::Finished { machine, .. }
            | Event::Skipped { machine, .. } => machine,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started {
                machine,
                address,
                step,
            } => write!(f, "{machine}: {address}: {step}"),
            Event::Finished {
                machine,
                address,
                elapsed,
                error: None,
            } => write!(
                f,
                "{machine}: {address}: done ({:.1}s)",
                elapsed.as_secs_f64()
            ),
            Event::Finished {
                machine,
                address,
                error: Some(error),
                ..
            } => write!(
                f,
                "{machine}: {address}: FAILED: {}",
                crate::render::printable(error)
            ),
            Event::Skipped {
                machine,
                address,
                because,
            } => write!(f, "{machine}: {address}: skipped, because {because} failed"),
        }
    }
}

/// What apply did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub applied: Vec<Address>,
    pub failed: Vec<(Address, String)>,
    pub skipped: Vec<(Address, Address)>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// Runs every change of `plan` on `hosts`, in the order of `graph`.
#[allow(clippy::too_many_arguments)] // what the plan was made from, where, and how
pub async fn apply(
    config: &Config,
    graph: &ResourceGraph,
    plan: &Plan,
    facts: &BTreeMap<String, crate::facts::HostFacts>,
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    parallelism: usize,
    events: mpsc::UnboundedSender<Event>,
    stop: &AtomicBool,
) -> Report {
    // Deletions are not graph nodes (they run first); an instance may have both, when what
    // it writes moved.
    let changes: HashMap<&Address, &ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| (&c.address, c))
        .collect();
    let mut walk = Walk::new(graph);
    let mut waiting: Vec<NodeIndex> = Vec::new();
    let mut busy: HashSet<String> = HashSet::new();
    // How many resources that share their machines work on each.
    let mut shared: HashMap<String, usize> = HashMap::new();
    // Node → the failed address that makes it skip.
    let mut doomed: HashMap<NodeIndex, Address> = HashMap::new();
    let mut report = Report::default();
    delete(plan, false, hosts, parallelism, &events, stop, &mut report).await;
    let mut running = JoinSet::new();

    loop {
        // Settle every ready node that needs no host work; queue the rest.
        while let Some(node) = walk.next_ready() {
            let work = match graph.graph[node] {
                Node::Instance(i) => {
                    let instance = &graph.instances[i];
                    changes.get(&instance.address).map(|c| (i, *c))
                }
                Node::Barrier => None,
            };
            match (work, doomed.get(&node).cloned()) {
                (Some((i, _)), Some(because)) => {
                    let instance = &graph.instances[i];
                    let _ = events.send(Event::Skipped {
                        machine: instance.machine.clone().unwrap_or_default(),
                        address: instance.address.clone(),
                        because: because.clone(),
                    });
                    report.skipped.push((instance.address.clone(), because));
                    walk.done(node);
                }
                (Some(_), None) => waiting.push(node),
                (None, _) => walk.done(node),
            }
        }
        // Interrupted: start nothing new, let what runs finish.
        if stop.load(Ordering::SeqCst) {
            waiting.clear();
        }
        // Start what can start: one resource per host, `parallelism` hosts at a time.
        let mut still_waiting = Vec::new();
        for node in waiting.drain(..) {
            let Node::Instance(i) = graph.graph[node] else {
                continue;
            };
            let instance = &graph.instances[i];
            let resource = &config.resources[instance.resource];
            // A cluster resource works on all its members, one step at a time.
            let (machines, cluster_steps) = match resource.spec.placement() {
                crate::kinds::Placement::Machines(_) => {
                    (vec![instance.machine.clone().unwrap_or_default()], None)
                }
                crate::kinds::Placement::Cluster(kind) => {
                    let (machines, steps) = cluster_work(config, kind, resource, facts);
                    (machines, Some(steps))
                }
            };
            // A kind that only asks a manager's API (services) shares its machines with
            // others of its kind: it takes only the machines its steps run on, and only from
            // resources that need them to themselves.
            let sharing = match resource.spec.placement() {
                crate::kinds::Placement::Cluster(kind) => kind.shares_machines(),
                crate::kinds::Placement::Machines(_) => false,
            };
            let held: Vec<String> = match (&cluster_steps, sharing) {
                (Some(Ok(steps)), true) => {
                    let mut held: Vec<String> = steps.iter().map(|s| s.machine.clone()).collect();
                    held.sort();
                    held.dedup();
                    held
                }
                _ => machines.clone(),
            };
            let blocked = if sharing {
                held.iter().any(|m| busy.contains(m)) || running.len() >= parallelism.max(1)
            } else {
                machines
                    .iter()
                    .any(|m| busy.contains(m) || shared.get(m).is_some_and(|n| *n > 0))
                    || busy.len() + machines.len() > parallelism.max(machines.len())
            };
            if blocked {
                still_waiting.push(node);
                continue;
            }
            let machine = machines[0].clone();
            let timeout = resource
                .lifecycle
                .timeout
                .map_or(DEFAULT_STEP_TIMEOUT, StepTimeout::duration);
            let change = changes[&instance.address].clone();
            let mut guarded = None;
            // A change that only records what is already as configured runs nothing; the
            // record is written after the walk.
            let steps = match resource.spec.placement() {
                _ if change.is_record_only() => Vec::new(),
                crate::kinds::Placement::Machines(kind) => {
                    let empty = crate::facts::HostFacts::default();
                    let host_facts = facts.get(&machine).unwrap_or(&empty);
                    guarded = kind.access_guard(&resource.address.name);
                    kind.steps(&resource.address.name, &change, host_facts)
                }
                crate::kinds::Placement::Cluster(_) => {
                    let steps = cluster_steps.unwrap_or_else(|| Ok(Vec::new()));
                    let members: BTreeMap<String, Arc<dyn Host>> = machines
                        .iter()
                        .filter_map(|m| Some((m.clone(), hosts.get(m)?.clone())))
                        .collect();
                    for m in &held {
                        if sharing {
                            *shared.entry(m.clone()).or_default() += 1;
                        } else {
                            busy.insert(m.clone());
                        }
                    }
                    let events = events.clone();
                    let address = instance.address.clone();
                    let held = held.clone();
                    running.spawn(async move {
                        let error = match steps {
                            Ok(steps) => {
                                run_cluster_steps(&members, &address, steps, timeout, &events).await
                            }
                            Err(e) => Some(format!("cannot work out the steps: {e}")),
                        };
                        (node, held, sharing, address, error)
                    });
                    continue;
                }
            };
            let Some(host) = hosts.get(&machine).cloned() else {
                report.failed.push((
                    instance.address.clone(),
                    format!("no connection to {machine}"),
                ));
                doom(graph, node, &instance.address, &mut doomed);
                walk.done(node);
                continue;
            };
            busy.insert(machine.clone());
            let events = events.clone();
            let address = instance.address.clone();
            running.spawn(async move {
                let error = match guarded.filter(|_| !steps.is_empty()) {
                    Some(guard) => {
                        run_guarded_steps(
                            host.as_ref(),
                            &machine,
                            &address,
                            steps,
                            &guard,
                            timeout,
                            &events,
                        )
                        .await
                    }
                    None => {
                        run_steps(host.as_ref(), &machine, &address, steps, timeout, &events).await
                    }
                };
                (node, vec![machine], false, address, error)
            });
        }
        waiting = still_waiting;
        if walk.has_ready() {
            continue;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((node, machines, sharing, address, error)) => {
                for machine in &machines {
                    if sharing {
                        if let Some(count) = shared.get_mut(machine) {
                            *count -= 1;
                        }
                    } else {
                        busy.remove(machine);
                    }
                }
                match error {
                    None => report.applied.push(address),
                    Some(message) => {
                        doom(graph, node, &address, &mut doomed);
                        report.failed.push((address, message));
                    }
                }
                walk.done(node);
            }
            Err(e) => {
                // A panicked task cannot say which node it was; stop scheduling new work.
                report
                    .failed
                    .push((Address::new("corral", "internal", None), e.to_string()));
                break;
            }
        }
    }
    // What never ran, because apply was interrupted (or stopped on an internal error).
    let settled: HashSet<&Address> = report
        .applied
        .iter()
        .chain(report.failed.iter().map(|(a, _)| a))
        .chain(report.skipped.iter().map(|(a, _)| a))
        .collect();
    let interrupt = Address::new("corral", "interrupt", None);
    let never_ran: Vec<Address> = changes
        .keys()
        .filter(|a| !settled.contains(*a))
        .map(|a| (*a).clone())
        .collect();
    for address in never_ran {
        report.skipped.push((address, interrupt.clone()));
    }
    // What resources still used until the walk changed them (a network its services left).
    delete(plan, true, hosts, parallelism, &events, stop, &mut report).await;
    report
}

/// What a cluster resource's change runs and where: its steps, from the facts the plan was
/// made from, and the machines it works on (its members, and any other machine a step runs
/// on, such as a node that leaves). Apply takes them busy and the session locks them.
pub(crate) fn cluster_work(
    config: &Config,
    kind: &dyn crate::kinds::ClusterKind,
    resource: &crate::config::Resource,
    facts: &BTreeMap<String, crate::facts::HostFacts>,
) -> (
    Vec<String>,
    Result<Vec<crate::kinds::ClusterStep>, crate::facts::FactError>,
) {
    let cluster = crate::facts::cluster_facts(config, kind, &resource.address, facts);
    let steps = kind.steps(&resource.address.name, &cluster);
    let mut machines = kind.members();
    for step in steps.iter().flatten() {
        if !machines.contains(&step.machine) {
            machines.push(step.machine.clone());
        }
    }
    (machines, steps)
}

/// A script that changes a host, as sent: one brace group, read whole before it runs, with
/// stdin from /dev/null (stdin is the script itself, and apt or a maintainer script must not
/// eat the rest of it) and stderr joined to stdout, in the C locale (scripts read what
/// programs print, such as `stat`'s "regular file", which a translation would change).
pub fn change_script(body: &str) -> String {
    format!(
        "export LC_ALL=C\nexec 2>&1\n{{\n{}\n}} </dev/null\n",
        body.trim_end()
    )
}

/// Runs a resource's steps in order on its host, each within `timeout`, reporting
/// progress; the first failure stops them and is returned.
async fn run_steps(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let started = Instant::now();
    let mut error = None;
    for step in steps {
        let _ = events.send(Event::Started {
            machine: machine.to_owned(),
            address: address.clone(),
            step: step.description.clone(),
        });
        if let Err(message) =
            run_step(host, &step.description, &step.script, timeout, None, false).await
        {
            error = Some(message);
            break;
        }
    }
    let _ = events.send(Event::Finished {
        machine: machine.to_owned(),
        address: address.clone(),
        elapsed: started.elapsed(),
        error: error.clone(),
    });
    error
}

/// Runs a change that can cut corral's own access (see [`guard`]): the rollback armed
/// first, the steps, then a new login; the rollback disarmed when it works, and carried out
/// otherwise (now, or by the host's timer when the connection no longer works).
async fn run_guarded_steps(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: &crate::kinds::AccessGuard,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let started = Instant::now();
    let unit = guard::unit(address);
    let step_started = |description: &str| {
        let _ = events.send(Event::Started {
            machine: machine.to_owned(),
            address: address.clone(),
            step: description.to_owned(),
        });
    };
    let timeout = timeout.min(guard::STEPS_TIMEOUT);
    let run = |step: Step| async move {
        step_started(&step.description);
        run_step(host, &step.description, &step.script, timeout, None, false).await
    };
    let mut error = None;
    let short = Duration::from_secs(30);
    if let Err(message) = run(guard::arm(access, &unit)).await {
        error = Some(message);
    } else {
        for step in steps {
            if let Err(message) = run(step).await {
                error = Some(message);
                break;
            }
        }
        let login = match &error {
            Some(_) => None,
            None => {
                step_started("log in again over a new connection");
                Some(fresh_login_within(host, guard::LOGIN_TIMEOUT).await)
            }
        };
        match login {
            Some(Ok(())) => {
                if let Err(message) = run(guard::disarm(&unit)).await {
                    error = Some(message);
                }
            }
            failed => {
                let restored = tokio::time::timeout(short, run(guard::restore_now(&unit)))
                    .await
                    .is_ok_and(|r| r.is_ok());
                let how = match restored {
                    true => "put back now",
                    false => "the host puts things back by itself within a few seconds",
                };
                error = Some(match failed {
                    Some(Err(why)) => format!(
                        "rolled back: a new SSH login failed after the change ({why}); {how}"
                    ),
                    _ => format!("rolled back: {} ({how})", error.unwrap_or_default()),
                });
            }
        }
    }
    let _ = events.send(Event::Finished {
        machine: machine.to_owned(),
        address: address.clone(),
        elapsed: started.elapsed(),
        error: error.clone(),
    });
    error
}

/// Tries new logins until one works or `within` has passed: a reloaded sshd re-executes
/// itself and refuses connections for a moment, which says nothing about the change.
async fn fresh_login_within(host: &dyn Host, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match host.fresh_login(left.max(Duration::from_secs(1))).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs one step's script on `host` within `timeout`: what it printed, or why it failed.
/// `on` names the machine in the error (a cluster resource's steps run on several); the
/// output of a `secret` step (a join token) is never part of the error.
async fn run_step(
    host: &dyn Host,
    description: &str,
    script: &str,
    timeout: Duration,
    on: Option<&str>,
    secret: bool,
) -> Result<String, String> {
    let on = on.map(|m| format!(" on {m}")).unwrap_or_default();
    let shown = |output: &str| {
        if secret {
            "(output not shown: it may hold a secret)".to_owned()
        } else {
            tail(output, 600).to_owned()
        }
    };
    let limits = Limits::within(timeout, OutputBound::KeepTail(STEP_OUTPUT_TAIL));
    match host.run_script(&change_script(script), limits).await {
        Ok(out) if out.rc == Some(0) => Ok(out.stdout),
        Ok(out) => {
            let rc = out
                .rc
                .map_or("a signal".to_owned(), |rc| format!("exit code {rc}"));
            Err(format!(
                "{description}{on} failed with {rc}: {}",
                shown(&out.stdout)
            ))
        }
        Err(TransportError::DeadlinePassed { output }) => {
            let output = shown(&output);
            Err(format!(
                "{description}{on} did not finish within {} and was stopped (a longer `lifecycle: {{ timeout: … }}` gives it more time){}",
                describe(timeout),
                if output.is_empty() {
                    String::new()
                } else {
                    format!("; its last output: {output}")
                }
            ))
        }
        Err(e) => Err(format!("{description}{on}: {e}")),
    }
}

/// Runs a cluster resource's steps in order, each on its member, passing what a step
/// produces (a join token) to later ones in memory: it is filled into their scripts, which
/// go to the host on stdin, and never shown. A producing step's output is left out of its
/// error for the same reason.
async fn run_cluster_steps(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    address: &Address,
    steps: Vec<crate::kinds::ClusterStep>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let started = Instant::now();
    let mut values: HashMap<String, String> = HashMap::new();
    let mut error = None;
    let mut last_machine = String::new();
    for cluster_step in steps {
        let machine = cluster_step.machine.clone();
        last_machine = machine.clone();
        let description = &cluster_step.step.description;
        let Some(host) = hosts.get(&machine) else {
            error = Some(format!("{description}: no connection to {machine}"));
            break;
        };
        let _ = events.send(Event::Started {
            machine: machine.clone(),
            address: address.clone(),
            step: description.clone(),
        });
        let script = match fill_values(&cluster_step.step.script, &values) {
            Ok(script) => script,
            Err(name) => {
                error = Some(format!(
                    "{description}: no value `{name}` was produced by an earlier step"
                ));
                break;
            }
        };
        let secret = cluster_step.produces.is_some();
        match run_step(
            host.as_ref(),
            description,
            &script,
            timeout,
            Some(&machine),
            secret,
        )
        .await
        {
            Ok(stdout) => {
                if let Some(name) = cluster_step.produces {
                    let value = stdout.trim().to_owned();
                    if value.is_empty() {
                        error = Some(format!("{description} printed nothing"));
                        break;
                    }
                    values.insert(name, value);
                }
            }
            Err(message) => {
                error = Some(message);
                break;
            }
        }
    }
    let _ = events.send(Event::Finished {
        machine: last_machine,
        address: address.clone(),
        elapsed: started.elapsed(),
        error: error.clone(),
    });
    error
}

/// `script` with every placeholder of a produced value replaced by the quoted value; the
/// name of a value that was not produced is the error.
pub fn fill_values(script: &str, values: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(start) = rest.find("@@corral-value:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "@@corral-value:".len()..];
        let Some(end) = after.find("@@") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| name.to_owned())?;
        out.push_str(&crate::shell::quote(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Deletions run first (or, with `last`, those [`crate::kinds::deleted_last`] after the
/// walk), one at a time on each host and `parallelism` hosts at once; they are not in the
/// graph (their resources are gone from the configuration). Once `stop` is set, no new
/// deletion starts.
#[allow(clippy::too_many_arguments)] // which deletions, where, and how
async fn delete(
    plan: &Plan,
    last: bool,
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    parallelism: usize,
    events: &mpsc::UnboundedSender<Event>,
    stop: &AtomicBool,
    report: &mut Report,
) {
    let mut queues: BTreeMap<String, VecDeque<ResourceChange>> = BTreeMap::new();
    for change in plan
        .resource_changes
        .iter()
        .filter(|c| c.action == Action::Delete && crate::kinds::deleted_last(&c.address) == last)
    {
        queues
            .entry(change.machine.clone().unwrap_or_default())
            .or_default()
            .push_back(change.clone());
    }
    queues.retain(|machine, changes| {
        if hosts.contains_key(machine) {
            return true;
        }
        for change in changes.drain(..) {
            report
                .failed
                .push((change.address, format!("no connection to {machine}")));
        }
        false
    });
    let mut busy: HashSet<String> = HashSet::new();
    let mut running = JoinSet::new();
    loop {
        if !stop.load(Ordering::SeqCst) {
            for (machine, changes) in &mut queues {
                if busy.len() >= parallelism.max(1) {
                    break;
                }
                if busy.contains(machine) {
                    continue;
                }
                let Some(change) = changes.pop_front() else {
                    continue;
                };
                busy.insert(machine.clone());
                let (host, machine, events) =
                    (hosts[machine].clone(), machine.clone(), events.clone());
                let project = plan.project.clone();
                running.spawn(async move {
                    let steps = crate::managed::delete_steps(&change, &project);
                    let error = match crate::kinds::deletion_guard(&change) {
                        Some(access) => {
                            run_guarded_steps(
                                host.as_ref(),
                                &machine,
                                &change.address,
                                steps,
                                &access,
                                DEFAULT_STEP_TIMEOUT,
                                &events,
                            )
                            .await
                        }
                        None => {
                            run_steps(
                                host.as_ref(),
                                &machine,
                                &change.address,
                                steps,
                                DEFAULT_STEP_TIMEOUT,
                                &events,
                            )
                            .await
                        }
                    };
                    (machine, change.address, error)
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((machine, address, error)) => {
                busy.remove(&machine);
                match error {
                    None => report.applied.push(address),
                    Some(message) => report.failed.push((address, message)),
                }
            }
            Err(e) => report.failed.push((
                Address::new("corral", "internal", None),
                format!("a deletion task failed: {e}"),
            )),
        }
    }
    // What never started: interrupted, or its host's task panicked.
    let because = match stop.load(Ordering::SeqCst) {
        true => Address::new("corral", "interrupt", None),
        false => Address::new("corral", "internal", None),
    };
    for change in queues.into_values().flatten() {
        report.skipped.push((change.address, because.clone()));
    }
}

/// Marks everything that depends on a failed node (through `depends_on` edges, not mere
/// ordering) as skipped because of `failed`.
fn doom(
    graph: &ResourceGraph,
    node: NodeIndex,
    failed: &Address,
    doomed: &mut HashMap<NodeIndex, Address>,
) {
    let dependents = |n: NodeIndex| graph.skipped_after(n);
    let mut stack = dependents(node);
    while let Some(next) = stack.pop() {
        if doomed.contains_key(&next) {
            continue;
        }
        doomed.insert(next, failed.clone());
        stack.extend(dependents(next));
    }
}

/// Plans and hosts for tests of apply and its session, on this machine.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::config::{self, Config, LoadOptions};
    use crate::facts::gather::{probes_by_machine, read_host};
    use crate::graph::{Filter, ResourceGraph};
    use crate::plan::{build, Plan};
    use crate::transport::Host;

    /// One machine, `local`, and the documents in `resources` (with `{d}` replaced by `dir`).
    pub fn write_config(dir: &Path, resources: &str) -> Vec<std::path::PathBuf> {
        let text = format!(
            "kind: infrastructure/machine\nname: local\nspecification: {{ hostname: local, ip: 127.0.0.1 }}\n---\n{}",
            resources.replace("{d}", &dir.display().to_string())
        );
        let path = dir.join("config.yaml");
        std::fs::write(&path, text).unwrap();
        vec![path]
    }

    /// The configuration in `paths`, its graph, and its plan from `host`'s facts.
    pub async fn plan(
        paths: &[std::path::PathBuf],
        host: &dyn Host,
    ) -> (Config, ResourceGraph, Plan) {
        let config = config::load(paths, &LoadOptions::default()).unwrap();
        let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
        let mut facts = BTreeMap::new();
        for (machine, probes) in probes_by_machine(&config, &graph, &Filter::default()) {
            facts.insert(machine, read_host(host, &probes).await.unwrap());
        }
        let plan = build::build(
            &config,
            &graph,
            &Filter::default(),
            &facts,
            &BTreeMap::new(),
        );
        (config, graph, plan)
    }

    /// Whether `script` is a change script (a step or a record write), not a fact script.
    pub fn is_change(script: &str) -> bool {
        script.starts_with("export LC_ALL=C\nexec 2>&1\n{")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{is_change, plan, write_config};
    use super::*;
    use crate::transport::{BoxFuture, LocalHost, ScriptOutput};

    /// This machine with its `/var/lib/corral` in a test's directory, except that the
    /// steps of scripts naming `needle` hang.
    struct HangingHost {
        needle: String,
        confined: crate::apply::lock::testing::ConfinedHost,
    }

    impl Host for HangingHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            if is_change(script) && script.contains(&self.needle) {
                LocalHost.run_script("echo working on it; sleep 600", limits)
            } else {
                self.confined.run_script(script, limits)
            }
        }
    }

    /// A step that hangs fails at its resource's `lifecycle.timeout` with a message saying
    /// so; what depends on it is skipped, the rest is applied, and the walk finishes.
    #[tokio::test]
    async fn a_hung_step_fails_at_its_deadline_and_the_walk_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_config(
            dir.path(),
            r#"kind: os/file
name: slow
lifecycle: { timeout: "1s" }
specification: { machines: all, path: "{d}/hangs.conf", content: "x\n" }
---
kind: os/file
name: after-slow
depends_on: [os/file.slow]
specification: { machines: all, path: "{d}/dependent.conf", content: "x\n" }
---
kind: os/file
name: independent
specification: { machines: all, path: "{d}/independent.conf", content: "x\n" }
"#,
        );
        let state = tempfile::tempdir().unwrap();
        let confined = crate::apply::lock::testing::ConfinedHost::new(state.path());
        let (config, graph, plan) = plan(&paths, &confined).await;
        assert_eq!(plan.resource_changes.len(), 3);
        let host = HangingHost {
            needle: "hangs.conf".into(),
            confined,
        };
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(host) as Arc<dyn Host>)]);
        let (sender, _receiver) = mpsc::unbounded_channel();
        let stop = AtomicBool::new(false);
        let report = apply(
            &config,
            &graph,
            &plan,
            &BTreeMap::new(),
            &hosts,
            4,
            sender,
            &stop,
        )
        .await;

        let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
        assert_eq!(applied, ["os/file.independent[local]"]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        let (failed, message) = &report.failed[0];
        assert_eq!(failed.to_string(), "os/file.slow[local]");
        assert!(
            message.contains("did not finish within 1 s and was stopped"),
            "{message}"
        );
        assert!(
            message.ends_with("its last output: working on it"),
            "{message}"
        );
        let skipped: Vec<(String, String)> = report
            .skipped
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            skipped,
            [(
                "os/file.after-slow[local]".to_owned(),
                "os/file.slow[local]".to_owned()
            )]
        );
    }

    #[test]
    fn a_bad_timeout_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_config(
            dir.path(),
            "kind: os/file\nname: f\nlifecycle: { timeout: soon }\nspecification: { machines: all, path: /tmp/x, content: x }\n",
        );
        let errors = crate::config::load(&paths, &Default::default()).unwrap_err();
        let text = format!("{errors:?}");
        assert!(text.contains("`soon` is not a duration"), "{text}");
    }
}
