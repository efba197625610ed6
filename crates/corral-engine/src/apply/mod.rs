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

mod error;
pub mod guard;
pub mod interrupt;
pub mod lock;
pub mod rolling;
pub mod session;

#[cfg(test)]
mod fleet;

use crate::base::timeout::StepTimeout;
pub use error::ApplyError;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::address::Address;
use crate::base::text::tail;
use crate::config::Config;
use crate::graph::{Node, ResourceGraph, Walk};
use crate::kinds::Step;
use crate::plan::{Plan, ResourceChange};
use crate::shell::change_script;
use crate::transport::{Host, Limits, OutputBound, TransportError};

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
                crate::base::text::printable(error)
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

/// [`run`] with facts in their saved form (see [`crate::facts::Gathered::from_saved`]), as
/// tests hold them.
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
    let gathered = crate::facts::Gathered::from_saved(facts.clone(), BTreeMap::new());
    run(
        config,
        graph,
        plan,
        &gathered,
        hosts,
        parallelism,
        events,
        stop,
    )
    .await
}

/// Runs every change of `plan` on `hosts`, in the order of `graph`.
#[allow(clippy::too_many_arguments)] // what the plan was made from, where, and how
pub async fn run(
    config: &Config,
    graph: &ResourceGraph,
    plan: &Plan,
    gathered: &crate::facts::Gathered,
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
        .filter(|c| !c.action.is_removal())
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
    delete(
        plan,
        false,
        &HashMap::new(),
        hosts,
        parallelism,
        &events,
        stop,
        &mut report,
    )
    .await;
    let mut running = JoinSet::new();
    let health = Arc::new(rolling::Health::from_config(config));
    let all_hosts = Arc::new(hosts.clone());

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
        let mut nodes = waiting.drain(..);
        while let Some(node) = nodes.next() {
            // Every slot taken: no node can start (see `blocked` below), so the rest wait
            // without a look; a scan of every waiting node at each finished step made a
            // fleet's walk quadratic.
            if running.len() >= parallelism.max(1) && busy.len() >= parallelism.max(1) {
                still_waiting.push(node);
                still_waiting.extend(nodes.by_ref());
                break;
            }
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
                    let (machines, steps) = cluster_work(config, kind, resource, gathered);
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
            let mut rolls = None;
            // A change that only records what is already as configured runs nothing; the
            // record is written after the walk.
            let steps = match resource.spec.placement() {
                _ if change.is_record_only() => Vec::new(),
                crate::kinds::Placement::Machines(kind) => {
                    let empty = crate::facts::HostFacts::default();
                    let host_facts = gathered.hosts.get(&machine).unwrap_or(&empty);
                    guarded = kind.access_guard(&resource.address.name);
                    rolls = resource.lifecycle.rolling.or_else(|| kind.rolling());
                    let mut steps = kind.steps(&resource.address.name, &change, host_facts);
                    // Restarts this change makes owed are on the host before it is made.
                    crate::owed::around(config, &change, &mut steps);
                    steps
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
            let (health, all_hosts) = (health.clone(), all_hosts.clone());
            running.spawn(async move {
                let error = match (
                    rolls.filter(|_| !steps.is_empty()),
                    guarded.filter(|_| !steps.is_empty()),
                ) {
                    (Some(setting), guard) => {
                        rolling::run(
                            &all_hosts,
                            &health,
                            setting,
                            &machine,
                            &address,
                            steps,
                            guard.as_ref(),
                            timeout,
                            &events,
                        )
                        .await
                    }
                    (None, guard) => {
                        let (host, access) = (host.as_ref(), guard.as_ref());
                        run_change(host, &machine, &address, steps, access, timeout, &events).await
                    }
                };
                (node, vec![machine], false, address, error)
            });
        }
        drop(nodes);
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
    // What resources still used until the walk changed them (a network its services left),
    // but not what a service or stack that did not change still uses.
    let kept = still_used(config, &report);
    delete(
        plan,
        true,
        &kept,
        hosts,
        parallelism,
        &events,
        stop,
        &mut report,
    )
    .await;
    report
}

/// The resources (secrets, configs, networks) that a failed or skipped resource names in
/// its specification, with that resource: their old versions or the objects themselves
/// are still in use by it, so the deletions after the walk leave them.
fn still_used(config: &Config, report: &Report) -> HashMap<Address, Address> {
    let mut kept = HashMap::new();
    let unfinished = report
        .failed
        .iter()
        .map(|(a, _)| a)
        .chain(report.skipped.iter().map(|(a, _)| a));
    for address in unfinished {
        let resource = config
            .resources
            .iter()
            .find(|r| r.address.kind == address.kind && r.address.name == address.name);
        for used in resource.iter().flat_map(|r| &r.implied) {
            kept.entry(used.clone()).or_insert_with(|| address.clone());
        }
    }
    kept
}

/// What a cluster resource's change runs and where: its steps, from the facts the plan was
/// made from, and the machines it works on (its members, and any other machine a step runs
/// on, such as a node that leaves). Apply takes them busy and the session locks them.
pub(crate) fn cluster_work(
    config: &Config,
    kind: &dyn crate::kinds::ClusterKind,
    resource: &crate::config::Resource,
    gathered: &crate::facts::Gathered,
) -> (
    Vec<String>,
    Result<Vec<crate::kinds::ClusterStep>, crate::facts::FactError>,
) {
    let cluster = crate::gather::cluster_facts(config, kind, &resource.address, gathered);
    let steps = kind.steps(&resource.address.name, &cluster);
    let mut machines = kind.members();
    for step in steps.iter().flatten() {
        if !machines.contains(&step.machine) {
            machines.push(step.machine.clone());
        }
    }
    (machines, steps)
}

/// Runs a resource's steps on its host, each within `timeout`, reporting progress (behind
/// the access guard `access` when the change can cut corral's own access); the first
/// failure stops them and is returned.
async fn run_change(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: Option<&crate::kinds::AccessGuard>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let work = change(host, machine, address, steps, access, timeout, events);
    reported(machine, address, events, work).await
}

/// The work of [`run_change`], without the `Finished` event (a rolling change sends it
/// after its checks): the steps in order, or [`guarded_change`] with the standard budget.
async fn change(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: Option<&crate::kinds::AccessGuard>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    match access {
        Some(access) => {
            let budget = guard::Budget::STANDARD;
            guarded_change(
                host, machine, address, steps, access, timeout, budget, events,
            )
            .await
        }
        None => run_step_list(host, machine, address, steps, timeout, events).await,
    }
}

/// Runs `work`, a resource's change on `machine`, and reports it `Finished` with its time
/// and error.
pub(super) async fn reported(
    machine: &str,
    address: &Address,
    events: &mpsc::UnboundedSender<Event>,
    work: impl std::future::Future<Output = Option<String>>,
) -> Option<String> {
    let started = Instant::now();
    let error = work.await;
    let _ = events.send(Event::Finished {
        machine: machine.to_owned(),
        address: address.clone(),
        elapsed: started.elapsed(),
        error: error.clone(),
    });
    error
}

/// The steps of a change in order, each reported as it starts.
async fn run_step_list(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let mut error = None;
    for step in steps {
        let _ = events.send(Event::Started {
            machine: machine.to_owned(),
            address: address.clone(),
            step: step.description.clone(),
        });
        if let Err(e) = run_step(host, &step.description, &step.script, timeout, None, false).await
        {
            error = Some(e.to_string());
            break;
        }
    }
    error
}

/// A change that can cut corral's own access (see [`guard`]), within `budget`: the
/// rollback armed first, the steps, then a new login; the rollback disarmed when it works,
/// and carried out otherwise (now, or by the host's timer when the connection no longer
/// works). Every step, the new login and the disarm get only what the change has left of
/// the budget, so that nothing is written after the host's timer has put things back.
#[allow(clippy::too_many_arguments)]
async fn guarded_change(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: &crate::kinds::AccessGuard,
    timeout: Duration,
    budget: guard::Budget,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let unit = guard::unit(address);
    let step_started = |description: &str| {
        let _ = events.send(Event::Started {
            machine: machine.to_owned(),
            address: address.clone(),
            step: description.to_owned(),
        });
    };
    let run = |step: Step, timeout: Duration| async move {
        step_started(&step.description);
        run_step(host, &step.description, &step.script, timeout, None, false).await
    };
    // The clock starts before the timer does: what is left is never overstated.
    let armed = Instant::now();
    let short = Duration::from_secs(30);
    let arm = guard::arm(access, &unit);
    if let Err(e) = run(arm, timeout.min(budget.steps)).await {
        return Some(e.to_string());
    }
    // When the host puts things back by itself, at the latest (its timer started during
    // the arm step), for messages.
    let reverts_by = std::time::SystemTime::now() + budget.deadline;
    let reverts = format!(
        "the host puts things back by itself by {} (its timer {unit}.timer, {} s after the change began)",
        humantime::format_rfc3339_seconds(reverts_by),
        budget.deadline.as_secs()
    );
    let mut error = None;
    for step in steps {
        let Some(left) = budget.step(armed.elapsed(), timeout) else {
            error = Some(format!(
                "{}: not started, as the change's steps had used up their {} s (the host's rollback fires {} s after the change began)",
                step.description,
                budget.steps.as_secs(),
                budget.deadline.as_secs()
            ));
            break;
        };
        if let Err(e) = run(step, left).await {
            error = Some(e.to_string());
            break;
        }
    }
    let login = match &error {
        Some(_) => None,
        None => {
            step_started("log in again over a new connection, and sudo -n true");
            Some(match budget.login(armed.elapsed()) {
                Some(within) => fresh_login_within(host, within).await,
                None => Err(ApplyError::NoTimeForLogin),
            })
        }
    };
    match login {
        Some(Ok(())) => {
            let disarm = guard::disarm(&unit);
            match run(disarm, budget.disarm(armed.elapsed())).await {
                Ok(_) => None,
                Err(e) if e.to_string().contains(guard::ROLLBACK_RAN) => Some(e.to_string()),
                Err(e) => Some(format!(
                    "the new login worked, but the rollback could not be disarmed ({e}); {reverts}: let it, fix the cause, and run apply again"
                )),
            }
        }
        failed => {
            let how = match tokio::time::timeout(short, run(guard::restore_now(&unit), short)).await
            {
                Ok(Ok(_)) => "put back now".to_owned(),
                Ok(Err(e)) if !matches!(e, ApplyError::StepTimedOut { .. }) => {
                    format!("putting back failed ({e}); {reverts}")
                }
                _ => reverts,
            };
            Some(match failed {
                Some(Err(why)) => {
                    format!("rolled back: a new SSH login failed after the change ({why}); {how}")
                }
                _ => format!("rolled back: {} ({how})", error.unwrap_or_default()),
            })
        }
    }
}

/// Tries new logins until one works or `within` has passed: a reloaded sshd re-executes
/// itself and refuses connections for a moment, which says nothing about the change. The
/// error is the last try's, with the time tried in all (not the last try's share of it).
async fn fresh_login_within(host: &dyn Host, within: Duration) -> Result<(), ApplyError> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match host.fresh_login(left.max(Duration::from_secs(1))).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(ApplyError::LoginLost {
                source: error,
                within,
            });
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
) -> Result<String, ApplyError> {
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
        Ok(out) => Err(ApplyError::StepFailed {
            description: description.to_owned(),
            on,
            ended: out
                .rc
                .map_or("a signal".to_owned(), |rc| format!("exit code {rc}")),
            output: shown(&out.stdout),
        }),
        Err(TransportError::DeadlinePassed { output }) => Err(ApplyError::StepTimedOut {
            description: description.to_owned(),
            on,
            timeout,
            output: shown(&output),
        }),
        Err(source) => Err(ApplyError::StepNotRun {
            description: description.to_owned(),
            on,
            source,
        }),
    }
}

/// Runs a cluster resource's steps in order, each on its member, passing what a step
/// produces (a join token) to later ones in memory: it is filled into their scripts, which
/// go to the host on stdin, and never shown. A producing step's output is left out of its
/// error for the same reason. The first failure stops the steps, except those marked
/// `always` (a cleanup), whose own failures are added to it.
async fn run_cluster_steps(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    address: &Address,
    steps: Vec<crate::kinds::ClusterStep>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let started = Instant::now();
    let mut values: HashMap<String, String> = HashMap::new();
    let mut error: Option<String> = None;
    let mut last_machine = String::new();
    let fail = |error: &mut Option<String>, message: String| {
        *error = Some(match error.take() {
            None => message,
            Some(first) => format!("{first}; then {message}"),
        });
    };
    for cluster_step in steps {
        if error.is_some() && !cluster_step.always {
            continue;
        }
        let machine = cluster_step.machine.clone();
        last_machine = machine.clone();
        let description = &cluster_step.step.description;
        let Some(host) = hosts.get(&machine) else {
            fail(
                &mut error,
                format!("{description}: no connection to {machine}"),
            );
            continue;
        };
        let _ = events.send(Event::Started {
            machine: machine.clone(),
            address: address.clone(),
            step: description.clone(),
        });
        let script = match fill_values(&cluster_step.step.script, &values) {
            Ok(script) => script,
            Err(e) => {
                fail(&mut error, format!("{description}: {e}"));
                continue;
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
                        fail(&mut error, format!("{description} printed nothing"));
                        continue;
                    }
                    values.insert(name, value);
                }
            }
            Err(e) => fail(&mut error, e.to_string()),
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

/// `script` with every placeholder of a produced value replaced by the quoted value; a
/// value that was not produced is the error.
pub fn fill_values(script: &str, values: &HashMap<String, String>) -> Result<String, ApplyError> {
    crate::plan::fill_values(script, values)
        .map_err(|crate::plan::NotProduced(name)| ApplyError::ValueNotProduced { name })
}

/// Deletions run first (or, with `last`, those [`crate::kinds::deleted_last`] after the
/// walk), one at a time on each host and `parallelism` hosts at once; they are not in the
/// graph (their resources are gone from the configuration). Once `stop` is set, no new
/// deletion starts.
#[allow(clippy::too_many_arguments)] // which deletions, where, and how
async fn delete(
    plan: &Plan,
    last: bool,
    kept: &HashMap<Address, Address>,
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
        .filter(|c| c.action.is_removal() && crate::kinds::deleted_last(&c.address) == last)
    {
        // A version (`swarm/secret.db[db_1a2b…]`) is kept with its resource.
        let resource = Address::new(&change.address.kind, &change.address.name, None);
        if let Some(user) = kept.get(&resource) {
            let _ = events.send(Event::Skipped {
                machine: change.machine.clone().unwrap_or_default(),
                address: change.address.clone(),
                because: user.clone(),
            });
            report.skipped.push((change.address.clone(), user.clone()));
            continue;
        }
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
                    let access = crate::kinds::deletion_guard(&change);
                    let error = run_change(
                        host.as_ref(),
                        &machine,
                        &change.address,
                        steps,
                        access.as_ref(),
                        DEFAULT_STEP_TIMEOUT,
                        &events,
                    )
                    .await;
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
pub(crate) fn doom(
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
    use crate::gather::{probes_by_machine, read_host};
    use crate::graph::{Filter, ResourceGraph};
    use crate::plan::Plan;
    use crate::planner::build;
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
    use crate::plan::Action;
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

    /// The old version of a secret that a failed service still uses is kept: the deletions
    /// after the walk skip it, naming the service, and go on with the others.
    #[tokio::test]
    async fn objects_a_failed_service_still_uses_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db.txt"), "pw").unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(
            &path,
            "kind: infrastructure/machine\nname: n1\nspecification: { hostname: n1, ip: 10.1.0.11 }\n---\nkind: swarm/cluster\nname: main\nspecification: { managers: [n1] }\n---\nkind: swarm/secret\nname: db\nspecification: { source: db.txt }\n---\nkind: swarm/secret\nname: other\nspecification: { source: db.txt }\n---\nkind: swarm/service\nname: web\nspecification: { image: local/busybox:1, secrets: [{ source: db }] }\n",
        )
        .unwrap();
        let config = crate::config::load(&[path], &Default::default()).unwrap();
        let web = Address::new("swarm/service", "web", None);
        let mut report = Report {
            failed: vec![(web.clone(), "rolling update failed".into())],
            ..Report::default()
        };
        let kept = still_used(&config, &report);
        let db = Address::new("swarm/secret", "db", None);
        assert_eq!(kept.get(&db), Some(&web));
        let old_version = |name: &str| ResourceChange {
            address: Address::new("swarm/secret", name, Some(&format!("{name}_0123456789ab"))),
            machine: Some("n1".into()),
            action: Action::Delete,
            attributes: Vec::new(),
            reason: None,
            triggered_by: Vec::new(),
        };
        let plan = Plan {
            format_version: crate::plan::FORMAT_VERSION.to_owned(),
            project: "p".into(),
            resource_changes: vec![old_version("db"), old_version("other")],
            unreachable: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            config_digest: String::new(),
            facts_digests: Default::default(),
            instances: 0,
        };
        let (sender, _receiver) = mpsc::unbounded_channel();
        let stop = AtomicBool::new(false);
        // No connection to n1: whatever is not kept fails for that, and shows it was tried.
        delete(
            &plan,
            true,
            &kept,
            &BTreeMap::new(),
            1,
            &sender,
            &stop,
            &mut report,
        )
        .await;
        assert_eq!(report.skipped, [(old_version("db").address, web.clone())]);
        assert_eq!(report.failed.len(), 2);
        assert_eq!(report.failed[1].0, old_version("other").address);
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

    /// A failed step stops the steps after it, except a cleanup (`always`), which still
    /// runs, with the values produced before; its own failure is added to the first.
    #[tokio::test]
    async fn a_cleanup_step_runs_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let d = crate::shell::quote(&dir.path().display().to_string());
        let step =
            |script: String, produces: Option<&str>, always: bool| crate::kinds::ClusterStep {
                machine: "local".into(),
                step: crate::kinds::Step {
                    description: "a step".into(),
                    script,
                },
                produces: produces.map(str::to_owned),
                always,
            };
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(LocalHost) as Arc<dyn Host>)]);
        let (sender, _receiver) = mpsc::unbounded_channel();
        let error = run_cluster_steps(
            &hosts,
            &Address::new("swarm/cluster", "main", None),
            vec![
                step("echo produced-value".into(), Some("v"), false),
                step("echo first failure; exit 3".into(), None, false),
                step(format!("touch {d}/skipped"), None, false),
                step(
                    format!(
                        "printf '%s' {} > {d}/cleanup; echo cleanup failure; exit 4",
                        crate::plan::placeholder("v")
                    ),
                    None,
                    true,
                ),
            ],
            Duration::from_secs(10),
            &sender,
        )
        .await
        .unwrap();
        assert!(!dir.path().join("skipped").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cleanup")).unwrap(),
            "produced-value"
        );
        assert!(
            error.starts_with("a step on local failed with exit code 3: first failure; then a step on local failed with exit code 4: cleanup failure"),
            "{error}"
        );
    }

    /// This machine with `/var/lib/corral` in a test's directory and no systemd: the
    /// guard's timer is never armed, its restore runs only when asked.
    struct NoTimerHost(crate::apply::lock::testing::ConfinedHost);

    impl Host for NoTimerHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            Box::pin(async move {
                let script = script
                    .replace("systemd-run", "true")
                    .replace("systemctl", "true");
                self.0.run_script(&script, limits).await
            })
        }
    }

    /// A guarded change's steps share one budget: a step that starts late gets only what
    /// is left (and is stopped at its end), and one that would start with nothing left
    /// does not start; neither writes anything after the budget.
    #[tokio::test]
    async fn guarded_steps_share_one_budget() {
        let state = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let host = NoTimerHost(crate::apply::lock::testing::ConfinedHost::new(state.path()));
        let marker = |name: &str| work.path().join(name);
        let step = |sleep: &str, name: &str| Step {
            description: format!("step {name}"),
            script: format!(
                "sleep {sleep}; : > {}",
                crate::shell::quote(&marker(name).display().to_string())
            ),
        };
        let access = crate::kinds::AccessGuard {
            paths: vec![marker("guarded").display().to_string()],
            reload: String::new(),
        };
        let budget = guard::Budget {
            steps: Duration::from_secs(4),
            login: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
        };
        let (sender, _receiver) = mpsc::unbounded_channel();
        let address = Address::new("os/user", "ops", Some("local"));
        // The second step starts with about 2 s left and would take 3.
        let error = guarded_change(
            &host,
            "local",
            &address,
            vec![step("2", "one"), step("3", "two"), step("0", "three")],
            &access,
            Duration::from_secs(60),
            budget,
            &sender,
        )
        .await
        .unwrap();
        assert!(marker("one").exists());
        assert!(!marker("two").exists(), "{error}");
        assert!(!marker("three").exists(), "{error}");
        assert!(error.starts_with("rolled back: step two"), "{error}");
        assert!(error.contains("and was stopped"), "{error}");
        // The second step would start with less than a second left: it never starts.
        let error = guarded_change(
            &host,
            "local",
            &address,
            vec![step("3.5", "four"), step("0", "five")],
            &access,
            Duration::from_secs(60),
            budget,
            &sender,
        )
        .await
        .unwrap();
        assert!(marker("four").exists());
        assert!(!marker("five").exists(), "{error}");
        assert!(
            error.contains("step five: not started, as the change's steps had used up their 4 s"),
            "{error}"
        );
    }

    /// The disarm refused (sudo gone, say): the error says when the host puts things back.
    struct NoDisarmHost(NoTimerHost);

    impl Host for NoDisarmHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            match script.contains("/fired ] ||") {
                true => LocalHost.run_script("echo 'sudo: a password is required'; exit 1", limits),
                false => self.0.run_script(script, limits),
            }
        }
    }

    #[tokio::test]
    async fn a_failed_disarm_says_when_the_host_reverts() {
        let state = tempfile::tempdir().unwrap();
        let host = NoDisarmHost(NoTimerHost(crate::apply::lock::testing::ConfinedHost::new(
            state.path(),
        )));
        let (sender, _receiver) = mpsc::unbounded_channel();
        let error = guarded_change(
            &host,
            "local",
            &Address::new("os/user", "ops", Some("local")),
            vec![Step {
                description: "change".into(),
                script: "true".into(),
            }],
            &crate::kinds::AccessGuard {
                paths: vec![state.path().join("keys").display().to_string()],
                reload: String::new(),
            },
            Duration::from_secs(60),
            guard::Budget::STANDARD,
            &sender,
        )
        .await
        .unwrap();
        let year = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        assert!(
            error.contains("the rollback could not be disarmed")
                && error.contains("sudo: a password is required")
                && error.contains(&format!(
                    "the host puts things back by itself by {}",
                    &year[..4]
                ))
                && error.contains("(its timer corral-guard-"),
            "{error}"
        );
    }

    /// A host whose new logins never answer, each try taking all the time it is given.
    struct SilentLogin;

    impl Host for SilentLogin {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            LocalHost.run_script(script, limits)
        }

        fn fresh_login<'a>(
            &'a self,
            timeout: Duration,
        ) -> BoxFuture<'a, Result<(), crate::transport::LoginError>> {
            Box::pin(async move {
                tokio::time::sleep(timeout.min(Duration::from_millis(1500))).await;
                Err(crate::transport::LoginError::NoAnswer)
            })
        }
    }

    /// The login's failure states the time tried in all, as the README does, not the
    /// share of the last try.
    #[tokio::test]
    async fn a_failed_new_login_says_how_long_it_was_tried() {
        let error = fresh_login_within(&SilentLogin, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "no answer; tried for 3 s");
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
