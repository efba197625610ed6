//! Stage 5: carry out a plan.
//!
//! Apply walks the graph the plan was made from and runs only the changes the plan names.
//! Each host does one resource at a time (a host's package manager and init system are not
//! made for concurrent changes); different hosts work in parallel, up to `parallelism`.
//! When a resource fails, everything that depends on it is skipped and the rest goes on.

pub mod lock;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;
use petgraph::Direction;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::address::Address;
use crate::config::Config;
use crate::facts::tail;
use crate::graph::{Node, ResourceGraph, Walk};
use crate::kinds::Step;
use crate::plan::{Action, Plan, ResourceChange};
use crate::transport::Host;

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
pub async fn apply(
    config: &Config,
    graph: &ResourceGraph,
    plan: &Plan,
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
    // Node → the failed address that makes it skip.
    let mut doomed: HashMap<NodeIndex, Address> = HashMap::new();
    let mut report = Report::default();
    delete(plan, hosts, parallelism, &events, &mut report).await;
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
            let machine = instance.machine.clone().unwrap_or_default();
            if busy.contains(&machine) || busy.len() >= parallelism.max(1) {
                still_waiting.push(node);
                continue;
            }
            let resource = &config.resources[instance.resource];
            let change = changes[&instance.address].clone();
            let steps = resource
                .spec
                .per_machine()
                .map(|k| k.steps(&resource.address.name, &change))
                .unwrap_or_default();
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
                let error = run_steps(host.as_ref(), &machine, &address, steps, &events).await;
                (node, machine, address, error)
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
            Ok((node, machine, address, error)) => {
                busy.remove(&machine);
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
    report
}

/// A script that changes a host, as sent: one brace group, read whole before it runs, with
/// stdin from /dev/null (stdin is the script itself, and apt or a maintainer script must not
/// eat the rest of it) and stderr joined to stdout.
pub fn change_script(body: &str) -> String {
    format!("exec 2>&1\n{{\n{}\n}} </dev/null\n", body.trim_end())
}

/// Runs a resource's steps in order on its host, reporting progress; the first failure
/// stops them and is returned.
async fn run_steps(
    host: &dyn Host,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
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
        match host.run_script(&change_script(&step.script)).await {
            Ok(out) if out.rc == Some(0) => {}
            Ok(out) => {
                let rc = out
                    .rc
                    .map_or("a signal".to_owned(), |rc| format!("exit code {rc}"));
                error = Some(format!(
                    "{} failed with {rc}: {}",
                    step.description,
                    tail(&out.stdout, 600)
                ));
                break;
            }
            Err(e) => {
                error = Some(format!("{}: {e}", step.description));
                break;
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

/// Deletions run first, one host at a time each and `parallelism` hosts at once; they are
/// not in the graph (their resources are gone from the configuration) and nothing depends
/// on them.
async fn delete(
    plan: &Plan,
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    parallelism: usize,
    events: &mpsc::UnboundedSender<Event>,
    report: &mut Report,
) {
    let mut by_machine: BTreeMap<String, Vec<ResourceChange>> = BTreeMap::new();
    for change in plan
        .resource_changes
        .iter()
        .filter(|c| c.action == Action::Delete)
    {
        by_machine
            .entry(change.machine.clone().unwrap_or_default())
            .or_default()
            .push(change.clone());
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    let mut running = JoinSet::new();
    for (machine, changes) in by_machine {
        let Some(host) = hosts.get(&machine).cloned() else {
            for change in changes {
                report
                    .failed
                    .push((change.address, format!("no connection to {machine}")));
            }
            continue;
        };
        let (semaphore, events) = (semaphore.clone(), events.clone());
        running.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let mut results = Vec::new();
            for change in changes {
                let steps = crate::managed::delete_steps(&change);
                let error =
                    run_steps(host.as_ref(), &machine, &change.address, steps, &events).await;
                results.push((change.address, error));
            }
            results
        });
    }
    while let Some(joined) = running.join_next().await {
        let results = joined.unwrap_or_else(|e| {
            vec![(
                Address::new("corral", "internal", None),
                Some(format!("a deletion task failed: {e}")),
            )]
        });
        for (address, error) in results {
            match error {
                None => report.applied.push(address),
                Some(message) => report.failed.push((address, message)),
            }
        }
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
    let dependents = |n: NodeIndex| graph.linked(n, Direction::Outgoing);
    let mut stack = dependents(node);
    while let Some(next) = stack.pop() {
        if doomed.contains_key(&next) {
            continue;
        }
        doomed.insert(next, failed.clone());
        stack.extend(dependents(next));
    }
}
