//! Building a [`Plan`] from the configuration, the graph and the facts: pure, no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::address::Address;
use crate::config::Config;
use crate::facts::{FactError, FactsDigests, Gathered, HostFacts};
use crate::graph::{Filter, ResourceGraph};
use crate::kinds::Placement;
use crate::managed;
use crate::plan::{
    Action, AttrChange, AttrValue, Diff, HostProblem, Plan, ResourceChange, ResourceProblem,
    FORMAT_VERSION, RECORD_ATTR,
};

/// [`plan`] from facts in their saved form: a facts file's `hosts` and `unreachable` (see
/// [`Gathered::from_saved`]), as tests and benchmarks hold them.
pub fn build(
    config: &Config,
    graph: &ResourceGraph,
    filter: &Filter,
    facts: &BTreeMap<String, HostFacts>,
    unreachable: &BTreeMap<String, String>,
) -> Plan {
    let gathered = Gathered::from_saved(facts.clone(), unreachable.clone());
    plan(config, graph, filter, &gathered)
}

/// Diffs every instance of `graph` against the facts of its machine (of its cluster), in
/// apply order.
pub fn plan(config: &Config, graph: &ResourceGraph, filter: &Filter, gathered: &Gathered) -> Plan {
    let hosts = &gathered.hosts;
    // The hosts' digests need nothing else of the plan: at fleet size they are made on a
    // core of their own meanwhile (the walk in apply order runs on one).
    let (digests, mut plan) = alongside(
        threads(hosts.len() * DIGEST_COST) > 1,
        || digests(hosts),
        || plan_apart(config, graph, filter, gathered),
    );
    plan.facts_digests.hosts = digests;
    plan
}

/// `apart()` on a thread of its own when `threads`, while `here()` runs on this one.
fn alongside<A: Send, B>(
    threads: bool,
    apart: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    if !threads {
        return (apart(), here());
    }
    std::thread::scope(|scope| {
        let apart = scope.spawn(apart);
        let here = here();
        match apart.join() {
            Ok(apart) => (apart, here),
            // A kind's panic is a bug: shown as it would be without threads.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// [`plan`], but for the hosts' facts digests.
fn plan_apart(
    config: &Config,
    graph: &ResourceGraph,
    filter: &Filter,
    gathered: &Gathered,
) -> Plan {
    let (facts, unreachable) = (&gathered.hosts, &gathered.unreachable);
    let mut plan = Plan {
        format_version: FORMAT_VERSION.to_owned(),
        project: config.project.clone(),
        resource_changes: Vec::new(),
        // A cluster no manager of which answered is its resource's error (plan_cluster).
        unreachable: unreachable
            .iter()
            .map(|(machine, message)| HostProblem::new(machine, message))
            .collect(),
        errors: Vec::new(),
        warnings: Vec::new(),
        config_digest: config.digest.clone(),
        facts_digests: FactsDigests {
            hosts: BTreeMap::new(),
            clusters: gathered
                .clusters
                .iter()
                .map(|(a, c)| (a.clone(), c.digest()))
                .collect(),
        },
        instances: graph.instances.len(),
    };
    for (address, message) in config.unmatched_selectors() {
        plan.warnings.push(ResourceProblem {
            address: address.clone(),
            message,
        });
    }
    for (address, message) in crate::kinds::config_warnings(config) {
        plan.warnings.push(ResourceProblem { address, message });
    }
    for (address, message) in crate::kinds::plan_warnings(config) {
        plan.warnings.push(ResourceProblem { address, message });
    }
    // Another configuration's records under the same project name: nothing is planned,
    // so nothing of theirs is deleted as this one's orphan.
    let held = crate::project::held(config, gathered);
    // (Records without an owner are claimed by the apply: apply::session.)
    if let Err(conflict) = crate::project::decide(&config.project, &config.identity, &held) {
        plan.errors.push(ResourceProblem {
            address: Address::new(crate::project::KIND, &config.project, None),
            message: conflict.to_string(),
        });
        return plan;
    }
    // Each instance's own diff reads its host's facts alone: made side by side on the other
    // cores while this one finds the apply order.
    let threads = threads(graph.instances.len());
    let (mut diffs, (records, deleted_last, order)) = alongside(
        threads > 1,
        || host_diffs(config, graph, facts, threads),
        || {
            let records = plan_deletions(config, filter, facts, &mut plan);
            let deleted_last = plan_orphans(config, graph, filter, gathered, &mut plan);
            (records, deleted_last, graph.apply_order())
        },
    );
    // Only what some resource depends on is ever looked up in `changed` (restarts, users
    // a package brings) or has dependents owing it a restart: at fleet size, keeping every
    // changed address would cost more than the rest of the walk.
    let depended: HashSet<(&str, &str)> = config
        .resources
        .iter()
        .flat_map(|r| &r.depends_on)
        .map(|t| (t.kind.as_str(), t.name.as_str()))
        .collect();
    let is_depended = |a: &Address| depended.contains(&(a.kind.as_str(), a.name.as_str()));
    // The same, per resource, asked once.
    let resource_depended: Vec<bool> = config
        .resources
        .iter()
        .map(|r| is_depended(&r.address))
        .collect();
    // Instances with a change so far; apply order puts dependencies first.
    let mut changed: HashSet<Address> = HashSet::new();
    let mut planned: Option<HashSet<&Address>> = None;
    // Each host's facts and record by its number in `facts` (HostDiff::host).
    let hosts: Vec<(&HostFacts, Option<&managed::HostRecord>)> = facts
        .iter()
        .map(|(machine, host)| (host, records.get(machine.as_str())))
        .collect();
    // The machines said to have no facts, once each.
    let mut factless: HashSet<&str> = HashSet::new();
    for index in order {
        let instance = &graph.instances[index];
        let resource = &config.resources[instance.resource];
        let host_diff = diffs[index].take();
        let kind = match resource.spec.placement() {
            Placement::Machines(kind) => kind,
            Placement::Cluster(kind) => {
                if let Some(change) = plan_cluster(config, kind, resource, gathered, &mut plan) {
                    if is_depended(&change.address) {
                        changed.insert(change.address.clone());
                    }
                    plan.resource_changes.push(change);
                }
                continue;
            }
        };
        let Some(machine) = &instance.machine else {
            // Per-machine instances always have one (graph::ResourceGraph::build).
            plan.errors.push(ResourceProblem {
                address: instance.address.clone(),
                message: "internal error: a per-machine instance without a machine".into(),
            });
            continue;
        };
        let Some(HostDiff {
            host,
            diff,
            warnings,
            unmet,
            started,
        }) = host_diff
        else {
            if facts.contains_key(machine) {
                // Made for every per-machine instance with facts (host_diffs).
                plan.errors.push(ResourceProblem {
                    address: instance.address.clone(),
                    message: "internal error: an instance planned without its diff".into(),
                });
            } else if !unreachable.contains_key(machine) && factless.insert(machine) {
                // Never silently plan without a host: that would look complete.
                plan.unreachable.push(HostProblem {
                    machine: machine.clone(),
                    message: "no facts were gathered for this host".into(),
                });
            }
            continue;
        };
        let (host_facts, record) = hosts[host];
        let mut diff = match diff {
            Ok(diff) => diff,
            Err(e) => {
                plan.errors.push(ResourceProblem {
                    address: instance.address.clone(),
                    message: format!(
                        "{machine}: {e} ({})",
                        resource.origin_of_message(&e.to_string())
                    ),
                });
                continue;
            }
        };
        for message in warnings {
            plan.warnings.push(ResourceProblem {
                address: instance.address.clone(),
                message: format!("{machine}: {message}"),
            });
        }
        if !unmet.is_empty() {
            // A package installed by this apply may bring the user (postgresql's postgres).
            let from_package = resource.depends_on.iter().any(|target| {
                crate::kinds::may_provide(&target.kind)
                    && changed.contains(&Address::new(&target.kind, &target.name, Some(machine)))
            });
            if !from_package {
                plan.errors.push(ResourceProblem {
                    address: instance.address.clone(),
                    message: format!(
                        "{machine}: {} on this host (if a package creates it, add it to `depends_on`) ({})",
                        unmet.join(", "),
                        resource.origin_of_message(&unmet.join(", "))
                    ),
                });
                continue;
            }
        }
        let restarts = kind.restarts_when_dependencies_change(&diff);
        let mut triggered_by: Vec<Address> = if restarts {
            resource
                .depends_on
                .iter()
                .map(|target| match target.machine {
                    Some(_) => target.clone(),
                    None => Address::new(&target.kind, &target.name, Some(machine)),
                })
                .filter(|target| changed.contains(target))
                .collect()
        } else {
            Vec::new()
        };
        let mut why = "changes";
        // Inputs changed after the service started, by anyone (a missed restart, a file
        // edited by hand): it restarts, so "No changes" is never said of a stale service.
        if triggered_by.is_empty() && restarts {
            if let Some(started) = started {
                triggered_by = newer_dependencies(config, resource, machine, host_facts, started);
                why = "changed after it started";
            }
        }
        // What an earlier apply changed and left this service owing (`--target`, a kill):
        // the host's record says so until the restart or reload is done.
        let owed = match (restarts, record) {
            (true, Some(host)) => owed_by(host, &config.project, &instance.address, &triggered_by),
            _ => Vec::new(),
        };
        if !triggered_by.is_empty() || !owed.is_empty() {
            let list = triggered_by
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let starting = diff.action() == Action::Create
                || diff.attributes.iter().any(|a| a.name == "active");
            let (taken_up, owing) = match kind.reloads_instead_of_restarting(&diff) {
                true => ("reloaded", "reload"),
                false => ("restarted", "restart"),
            };
            let mut what = if triggered_by.is_empty() {
                Vec::new()
            } else if starting {
                vec![format!("started after {list} {why}; {taken_up} instead if something (its package) started it meanwhile")]
            } else {
                vec![format!("{taken_up} because {list} {why}")]
            };
            if let Some(since) = owed.iter().map(|(_, since)| *since).min() {
                let causes: Vec<String> = owed.iter().map(|(a, _)| a.to_string()).collect();
                what.push(format!(
                    "{owing} owed since {}, because {} changed",
                    crate::owed::since(since),
                    causes.join(", ")
                ));
                triggered_by.extend(owed.into_iter().map(|(a, _)| a));
            }
            let what = what.join("; ");
            diff.reason = Some(match diff.reason {
                Some(reason) => format!("{reason}; also {what}"),
                None => what,
            });
            if diff.action() == Action::NoOp {
                diff.action = Some(Action::Update);
            }
        }
        if diff.action() == Action::NoOp {
            // As configured, but not in this project's record (a killed apply, a file that
            // was already right, a hand-over from another project): record it, so that
            // removing it later undoes what it should and nothing is orphaned.
            // A host corral never wrote to (a cluster built by hand, then imported): what
            // is already as configured is adopted as it is, and recorded by the first apply
            // that changes the host, so that the plan right after an import is empty. (A
            // host another project wrote to is handed over: recorded now, as before.)
            let Some(record) = record.filter(|r| !r.record.projects.is_empty()) else {
                continue;
            };
            let Some(entry) = kind.managed_entry(&resource.address.name) else {
                continue;
            };
            let recorded = record
                .record
                .projects
                .get(&config.project)
                .and_then(|entries| entries.get(&resource.address.to_string()));
            if recorded.is_some_and(|r| r.path == entry.path && r.unit == entry.unit) {
                continue;
            }
            diff.action = Some(Action::Update);
            diff.attributes = vec![AttrChange::new(
                RECORD_ATTR,
                AttrValue::Absent,
                AttrValue::Scalar(format!("managed by project {}", config.project)),
            )];
            diff.reason =
                Some("already as configured; corral records on the host that it manages it".into());
        }
        // Only real changes make dependents restart: recording what is already right does not.
        if !crate::plan::records_only(&diff.attributes) && resource_depended[instance.resource] {
            changed.insert(instance.address.clone());
            // A service this apply leaves out (`--target`) is told by the host's record.
            let planned =
                planned.get_or_insert_with(|| graph.instances.iter().map(|i| &i.address).collect());
            let left_out: Vec<String> = crate::owed::dependents(config, &instance.address)
                .into_iter()
                .filter(|(service, _)| !planned.contains(service))
                .map(|(service, owes)| format!("{service} is not in this apply: it will owe a {owes}, which plans show until it is done"))
                .collect();
            if !left_out.is_empty() {
                let what = left_out.join("; ");
                diff.reason = Some(match diff.reason {
                    Some(reason) => format!("{reason}; {what}"),
                    None => what,
                });
            }
        }
        plan.resource_changes.push(ResourceChange {
            address: instance.address.clone(),
            machine: Some(machine.clone()),
            action: diff.action(),
            attributes: diff.attributes,
            reason: diff.reason,
            triggered_by,
        });
    }
    // Shown where they run: after the rest.
    plan.resource_changes.extend(deleted_last);
    for change in &mut plan.resource_changes {
        if let Some(why) = graph.pulled_in.get(&change.address) {
            change.reason = Some(match change.reason.take() {
                Some(reason) => format!("{reason}; {why}"),
                None => why.clone(),
            });
        }
    }
    plan
}

/// What planning one per-machine instance reads from its host's facts alone.
#[derive(Debug, PartialEq)]
struct HostDiff {
    /// Its host's number, in the order of the facts' machines.
    host: usize,
    diff: Result<Diff, FactError>,
    /// The kind's warnings, when the diff is a change.
    warnings: Vec<String>,
    /// What the host lacks for it (a user, a group), when the diff could be made.
    unmet: Vec<String>,
    /// When what it runs last started ([`crate::kinds::MachineKind::started_at`]), when
    /// it restarts as what it depends on changes.
    started: Option<u64>,
}

/// Threads to make `items` diffs or digests on: one per core, but one below 4,096 items,
/// where starting threads costs more than they save.
fn threads(items: usize) -> usize {
    match items {
        0..4096 => 1,
        _ => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    }
}

/// The [`HostDiff`] of each instance of `graph` that is planned per machine and whose
/// host's facts were gathered (`None` for the rest), by instance, made on `threads`
/// threads. Each reads only its own host's facts (whose parsed forms are shared behind a
/// lock), so they are made side by side, and before the apply order is known: most of a
/// plan's time at fleet size. They are made host by host (instances go resource by
/// resource), so that a host's facts are still in the cache for its next instance.
fn host_diffs(
    config: &Config,
    graph: &ResourceGraph,
    facts: &BTreeMap<String, HostFacts>,
    threads: usize,
) -> Vec<Option<HostDiff>> {
    let hosts: Vec<&HostFacts> = facts.values().collect();
    let numbers: HashMap<&str, usize> = facts
        .keys()
        .enumerate()
        .map(|(number, machine)| (machine.as_str(), number))
        .collect();
    // The host each instance is diffed against, by number.
    let host_of: Vec<Option<usize>> = graph
        .instances
        .iter()
        .map(
            |instance| match config.resources[instance.resource].spec.placement() {
                Placement::Machines(_) => numbers.get(instance.machine.as_deref()?).copied(),
                Placement::Cluster(_) => None,
            },
        )
        .collect();
    // The instances, host by host (a counting sort).
    let mut next = vec![0; hosts.len() + 1];
    for &host in host_of.iter().flatten() {
        next[host + 1] += 1;
    }
    for host in 0..hosts.len() {
        next[host + 1] += next[host];
    }
    let mut by_host = vec![(0, 0); next[hosts.len()]];
    for (index, host) in host_of.iter().enumerate() {
        if let Some(host) = *host {
            by_host[next[host]] = (index, host);
            next[host] += 1;
        }
    }
    let one = |&(index, host): &(usize, usize)| {
        let resource = &config.resources[graph.instances[index].resource];
        let Placement::Machines(kind) = resource.spec.placement() else {
            return None;
        };
        let host_facts = hosts[host];
        let name = &resource.address.name;
        let diff = kind.diff(name, host_facts);
        let (warnings, unmet) = match &diff {
            Ok(d) if d.action() != Action::NoOp => (
                kind.warnings(name, host_facts),
                kind.unmet(name, host_facts),
            ),
            Ok(_) => (Vec::new(), kind.unmet(name, host_facts)),
            Err(_) => (Vec::new(), Vec::new()),
        };
        let started = match &diff {
            Ok(d) if kind.restarts_when_dependencies_change(d) => kind.started_at(name, host_facts),
            _ => None,
        };
        Some(HostDiff {
            host,
            diff,
            warnings,
            unmet,
            started,
        })
    };
    let mut diffs: Vec<Option<HostDiff>> = graph.instances.iter().map(|_| None).collect();
    for (&(index, _), diff) in by_host.iter().zip(in_order(&by_host, threads, one)) {
        diffs[index] = diff;
    }
    diffs
}

/// `each` of every item, in the items' order, made on `threads` threads (each a run of
/// consecutive items).
fn in_order<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    each: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 {
        return items.iter().map(each).collect();
    }
    let each = &each;
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(each).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| match part.join() {
                Ok(done) => done,
                // A kind's panic is a bug: shown as it would be without threads.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// A host's digest costs about as much as this many instances' diffs.
const DIGEST_COST: usize = 50;

/// Each host's facts digest (SHA-256 of every probe).
fn digests(facts: &BTreeMap<String, HostFacts>) -> BTreeMap<String, String> {
    facts
        .iter()
        .map(|(machine, host)| (machine.clone(), host.digest()))
        .collect()
}

/// The change of a cluster resource, from its members' facts and its manager's. A member
/// that could not be read, or a cluster no manager of which answered, makes it a plan
/// error: a cluster is never planned from part of its members.
fn plan_cluster(
    config: &Config,
    kind: &dyn crate::kinds::ClusterKind,
    resource: &crate::config::Resource,
    gathered: &Gathered,
    plan: &mut Plan,
) -> Option<ResourceChange> {
    let missing: Vec<String> = kind
        .members()
        .into_iter()
        .filter(|m| !gathered.hosts.contains_key(m))
        .collect();
    let scope = kind
        .facts_scope()
        .unwrap_or_else(|| resource.address.clone());
    // A resource on a swarm plans from the swarm's manager: a member that could not be
    // read only leaves its preflight checks undone. A cluster itself is never planned
    // from part of its members.
    let problem = if !missing.is_empty() && kind.facts_scope().is_none() {
        Some(format!(
            "members {} could not be read; a cluster is not planned from part of it",
            missing.join(", ")
        ))
    } else {
        if !missing.is_empty() {
            plan.warnings.push(ResourceProblem {
                address: resource.address.clone(),
                message: format!(
                    "members {} could not be read: what their kernels can carry is not checked",
                    missing.join(", ")
                ),
            });
        }
        gathered.unanswered.get(&scope).cloned()
    };
    if let Some(message) = problem {
        plan.errors.push(ResourceProblem {
            address: resource.address.clone(),
            message,
        });
        return None;
    }
    let cluster = crate::gather::cluster_facts(config, kind, &resource.address, gathered);
    for message in kind.warnings(&resource.address.name, &cluster) {
        plan.warnings.push(ResourceProblem {
            address: resource.address.clone(),
            message,
        });
    }
    match kind.diff(&resource.address.name, &cluster) {
        Ok(diff) if diff.action() == Action::NoOp => None,
        Ok(diff) if diff.action() == Action::Replace && resource.lifecycle.prevent_destroy => {
            plan.errors.push(ResourceProblem {
                address: resource.address.clone(),
                message: format!(
                    "must be replaced ({}), and `lifecycle.prevent_destroy` forbids it ({})",
                    diff.reason.unwrap_or_default(),
                    resource.origin_of_field(&["lifecycle", "prevent_destroy"])
                ),
            });
            None
        }
        Ok(diff) => Some(ResourceChange {
            address: resource.address.clone(),
            machine: None,
            action: diff.action(),
            attributes: diff.attributes,
            reason: diff.reason,
            triggered_by: Vec::new(),
        }),
        Err(e) => {
            plan.errors.push(ResourceProblem {
                address: resource.address.clone(),
                message: format!("{e} ({})", resource.origin_of_message(&e.to_string())),
            });
            None
        }
    }
}

/// Cluster objects this project created that no resource declares any more (a service,
/// a network), found by the resource that owns each facts scope (the swarm), from its
/// manager's facts; deleted on that manager, before anything else runs, except those
/// returned (networks, which services may use until the apply moves them off): they are
/// deleted last.
fn plan_orphans(
    config: &Config,
    graph: &ResourceGraph,
    filter: &Filter,
    gathered: &Gathered,
    plan: &mut Plan,
) -> Vec<ResourceChange> {
    let declared: std::collections::BTreeSet<Address> = config
        .resources
        .iter()
        .filter(|r| matches!(r.spec.placement(), Placement::Cluster(_)))
        .map(|r| r.address.clone())
        .collect();
    let mut last = Vec::new();
    let mut asked = HashSet::new();
    for instance in &graph.instances {
        let resource = &config.resources[instance.resource];
        let Placement::Cluster(kind) = resource.spec.placement() else {
            continue;
        };
        if kind.facts_scope().is_some() || !asked.insert(&resource.address) {
            continue;
        }
        let cluster = crate::gather::cluster_facts(config, kind, &resource.address, gathered);
        let Some((manager, _)) = &cluster.manager else {
            continue;
        };
        let orphans = match kind.orphans(&resource.address.name, &cluster, &declared) {
            Ok(orphans) => orphans,
            Err(e) => {
                plan.errors.push(ResourceProblem {
                    address: resource.address.clone(),
                    message: format!("cannot tell which objects are no longer declared: {e}"),
                });
                continue;
            }
        };
        for orphan in orphans {
            let targeted = filter.targets.is_empty()
                || filter.targets.iter().any(|t| t.covers(&orphan.address));
            let excluded = filter.excludes.iter().any(|e| e.covers(&orphan.address));
            if !targeted || excluded {
                continue;
            }
            let change = ResourceChange {
                address: orphan.address,
                machine: Some(manager.clone()),
                action: Action::Delete,
                attributes: orphan.attributes,
                reason: Some(orphan.reason.unwrap_or_else(|| {
                    format!(
                        "created by project {}, no longer in the configuration",
                        config.project
                    )
                })),
                triggered_by: Vec::new(),
            };
            if crate::kinds::deleted_last(&change.address) {
                last.push(change);
            } else {
                plan.resource_changes.push(change);
            }
        }
    }
    last
}

/// The instances on `machine` that `resource` depends on whose managed thing was modified
/// after `started` (seconds since the epoch).
fn newer_dependencies(
    config: &Config,
    resource: &crate::config::Resource,
    machine: &str,
    facts: &HostFacts,
    started: u64,
) -> Vec<Address> {
    resource
        .depends_on
        .iter()
        .filter(|target| target.machine.as_deref().is_none_or(|m| m == machine))
        .filter_map(|target| {
            let dependency = config
                .resources
                .iter()
                .find(|r| r.address.kind == target.kind && r.address.name == target.name)?;
            let Placement::Machines(kind) = dependency.spec.placement() else {
                return None;
            };
            let modified = kind.modified_at(&dependency.address.name, facts)?;
            (modified > started).then(|| Address::new(&target.kind, &target.name, Some(machine)))
        })
        .collect()
}

/// The restarts `service` owes in `project` on a host, by cause with the earliest time it
/// was recorded, leaving out causes that `triggered_by` already names (they change now).
fn owed_by(
    host: &managed::HostRecord,
    project: &str,
    service: &Address,
    triggered_by: &[Address],
) -> Vec<(Address, u64)> {
    let service = service.to_string();
    let mut owed: BTreeMap<String, u64> = BTreeMap::new();
    for debt in host
        .owed
        .iter()
        .filter(|d| d.project == project && d.service == service)
    {
        let since = owed.entry(debt.because.clone()).or_insert(debt.since);
        *since = (*since).min(debt.since);
    }
    owed.into_iter()
        .filter_map(|(because, since)| Some((Address::parse(&because).ok()?, since)))
        .filter(|(because, _)| !triggered_by.contains(because))
        .collect()
}

/// Deletions come first: what a host's record says this project wrote for a resource that
/// the configuration no longer declares there, or that a declared resource no longer
/// writes (its path changed, its unit file was dropped). Nothing is deleted that a declared
/// resource or another project now manages (a renamed resource keeps its file); `--target`
/// and `--exclude` narrow deletions as they narrow everything else.
/// Returns every readable host's record.
fn plan_deletions<'f>(
    config: &Config,
    filter: &Filter,
    facts: &'f BTreeMap<String, HostFacts>,
    plan: &mut Plan,
) -> HashMap<&'f str, managed::HostRecord> {
    let mut records = HashMap::new();
    for (machine, host_facts) in facts {
        let host = match managed::host_record(host_facts) {
            Ok(host_record) => host_record,
            Err(e) => {
                plan.errors.push(ResourceProblem {
                    address: Address::new("corral", "managed", Some(machine)),
                    message: format!("{machine}: {e}"),
                });
                continue;
            }
        };
        let record = &host.record;
        let resources = record.project(&config.project);
        records.insert(machine.as_str(), host.clone());
        if resources.is_empty() {
            continue;
        }
        let Some(labels) = config.machines.get(machine).map(|m| &m.spec.labels) else {
            continue;
        };
        // What each declared resource writes here now, and every file claimed by anyone.
        let mut declared: BTreeMap<String, Option<managed::Entry>> = BTreeMap::new();
        let mut claimed = HashSet::new();
        for resource in &config.resources {
            let Placement::Machines(kind) = resource.spec.placement() else {
                continue;
            };
            if kind.selector().matches(machine, labels) {
                let name = &resource.address.name;
                declared.insert(resource.address.to_string(), kind.managed_entry(name));
                claimed.extend(kind.claims(name).into_iter().map(|c| c.key));
            }
        }
        for (project, entries) in &record.projects {
            if project != &config.project {
                claimed.extend(
                    entries
                        .values()
                        .filter_map(|e| e.path.as_ref())
                        .map(|p| format!("file {p}")),
                );
            }
        }
        for (address, entry) in &resources {
            let still_written = match declared.get(address) {
                None => false,
                Some(Some(now)) => now.path == entry.path,
                // Declared, but no longer writing a file (a unit file dropped).
                Some(None) => false,
            };
            if still_written {
                continue;
            }
            let Ok(resource) = Address::parse(address) else {
                continue;
            };
            let instance = Address::new(&resource.kind, &resource.name, Some(machine));
            let targeted =
                filter.targets.is_empty() || filter.targets.iter().any(|t| t.covers(&instance));
            let excluded = filter.excludes.iter().any(|e| e.covers(&instance));
            let taken = entry
                .path
                .as_ref()
                .is_some_and(|p| claimed.contains(&format!("file {p}")));
            if targeted && !excluded && !taken {
                let change = managed::deletion(instance, machine, entry, &host);
                match crate::kinds::deletion_lockout(&change, host_facts) {
                    Some(why) => plan.errors.push(ResourceProblem {
                        address: change.address,
                        message: format!("{machine}: {why}"),
                    }),
                    None => plan.resource_changes.push(change),
                }
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diffs made on several threads come back by instance, as one thread makes them: the
    /// plan's order, and so its bytes, do not depend on the cores.
    #[test]
    fn diffs_on_threads_keep_the_apply_order() {
        let root = std::path::Path::new(corral_core::testing::REPOSITORY);
        let paths = [root.join("examples"), root.join("fixtures/inventory.yaml")];
        let config = crate::config::load(&paths, &crate::config::LoadOptions::default()).unwrap();
        let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
        let facts = crate::facts::FactsFile::read(&root.join("fixtures/facts/lab-drift.json"))
            .unwrap()
            .hosts;
        let one = host_diffs(&config, &graph, &facts, 1);
        let changes = one
            .iter()
            .flatten()
            .filter(|d| d.diff.as_ref().is_ok_and(|d| d.action() != Action::NoOp))
            .count();
        // A few changes among many no-ops: out of order, they would move.
        assert!(
            changes > 0 && changes < one.len() / 2,
            "the drifted hosts have changes to keep in order: {one:?}"
        );
        for threads in [2, 3, 7] {
            let many = host_diffs(&config, &graph, &facts, threads);
            assert_eq!(one, many, "{threads} threads");
        }
    }
}
