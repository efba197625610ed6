//! Rolling changes: a change that restarts something on several machines (dockerd, sshd,
//! a firewall reload, package upgrades) goes `parallel` machines at a time, and each
//! machine is proven healthy before the next begins (docs/src/rolling.md; the setting is
//! [`Rolling`](crate::base::envelope::Rolling)).
//!
//! Healthy means as healthy as just before its restart began: the same swarm nodes Ready,
//! no fewer managers reachable, every global task that ran on a node running there again,
//! replicated services at their count, no task newly failing, and the heal queue of every
//! Gluster volume with a brick on the machine empty. The judgements here are pure functions
//! on what `docker node ls`, `docker service ls`/`service ps` and `gluster volume heal VOL
//! info` print (recorded under fixtures/rolling by scripts/record-rolling-fixtures.sh);
//! `apply::rolling` runs the commands and waits on them.

use std::collections::{BTreeMap, BTreeSet};

use crate::facts::swarm::{NodeSummary, ServiceSummary, Task, TaskState};
use crate::facts::{FactError, Probe, ProbeOutput};

/// Why a machine's restart would cost its swarm its quorum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum RollingError {
    /// `down` names the managers that are not reachable.
    #[error(
        "restarting {machine} would leave {left} of {managers} swarm managers reachable, fewer than a majority ({majority}){}",
        if down.is_empty() { String::new() } else { format!(": {}", down.join(", ")) }
    )]
    #[diagnostic(code(corral::rolling::quorum))]
    Quorum {
        machine: String,
        left: usize,
        managers: usize,
        majority: usize,
        down: Vec<String>,
    },
}

// ---------------------------------------------------------------------------------------
// Swarm health

/// What a manager says of the swarm at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: Vec<NodeSummary>,
    pub services: Vec<ServiceSummary>,
    pub tasks: Vec<Task>,
}

/// What [`judge`] found wrong: `waiting` is what a restart makes false for a while (the
/// node coming back, its tasks starting); `broken` is what the restart does not explain (another
/// machine lost, a task failing), on which corral stops rather than go on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub waiting: Vec<String>,
    pub broken: Vec<String>,
}

impl Verdict {
    pub fn healthy(&self) -> bool {
        self.waiting.is_empty() && self.broken.is_empty()
    }
}

fn is_reachable_manager(node: &NodeSummary) -> bool {
    node.status == "Ready" && matches!(node.manager_status.as_str(), "Leader" | "Reachable")
}

fn is_manager(node: &NodeSummary) -> bool {
    !node.manager_status.is_empty()
}

fn describe_node(node: &NodeSummary) -> String {
    if is_manager(node) {
        format!(
            "{} is {} (manager {})",
            node.hostname, node.status, node.manager_status
        )
    } else {
        format!("{} is {}", node.hostname, node.status)
    }
}

/// Whether restarting `machine` leaves a majority of the managers reachable; the error
/// names the managers that are not. A swarm that has every manager reachable and still
/// cannot spare one (one manager, or two with `allow_even_managers`) is restarted anyway:
/// it has no other way to take a change, its Raft state is on disk, and the next machine
/// waits until the restarted one is reachable again. What is refused is making a swarm
/// that has already lost a manager lose its majority.
pub fn quorum_allows(nodes: &[NodeSummary], machine: &str) -> Result<(), RollingError> {
    let managers = nodes.iter().filter(|n| is_manager(n)).count();
    if managers == 0 {
        return Ok(());
    }
    let reachable = nodes.iter().filter(|n| is_reachable_manager(n)).count();
    let restarted = nodes
        .iter()
        .any(|n| n.hostname == machine && is_reachable_manager(n));
    let left = reachable - usize::from(restarted);
    let majority = managers / 2 + 1;
    if left >= majority || reachable == managers {
        return Ok(());
    }
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| is_manager(n) && !is_reachable_manager(n))
        .map(describe_node)
        .collect();
    Err(RollingError::Quorum {
        machine: machine.to_owned(),
        left,
        managers,
        majority,
        down,
    })
}

/// Tasks meant to run (desired state Running).
fn desired_running(tasks: &[Task]) -> impl Iterator<Item = &Task> {
    tasks
        .iter()
        .filter(|t| t.desired_state == TaskState::Running)
}

/// (service, node) of every task running as desired.
fn running_on(tasks: &[Task]) -> BTreeSet<(&str, &str)> {
    desired_running(tasks)
        .filter(|t| t.state == TaskState::Running)
        .map(|t| (t.service(), t.node.as_str()))
        .collect()
}

fn state_word(state: &TaskState) -> String {
    match state {
        TaskState::Other(word) => word.clone(),
        other => format!("{other:?}"),
    }
}

/// Services with a task that failed or was rejected.
fn failing_services(tasks: &[Task]) -> BTreeSet<&str> {
    tasks
        .iter()
        .filter(|t| matches!(t.state, TaskState::Failed | TaskState::Rejected))
        .map(Task::service)
        .collect()
}

/// Whether the swarm, `now`, is as healthy as `before` `machine`'s restart began.
pub fn judge(before: &Snapshot, now: &Snapshot, machine: &str) -> Verdict {
    let mut verdict = Verdict::default();
    let now_node = |name: &str| now.nodes.iter().find(|n| n.hostname == name);
    for old in &before.nodes {
        let Some(new) = now_node(&old.hostname) else {
            verdict
                .broken
                .push(format!("{} left the swarm", old.hostname));
            continue;
        };
        let worse = (old.status == "Ready" && new.status != "Ready")
            || (is_reachable_manager(old) && !is_reachable_manager(new))
            || (old.availability != new.availability);
        if !worse {
            continue;
        }
        if old.hostname == machine {
            verdict.waiting.push(describe_node(new));
        } else {
            verdict.broken.push(describe_node(new));
        }
    }
    let reachable = |s: &Snapshot| s.nodes.iter().filter(|n| is_reachable_manager(n)).count();
    if reachable(now) < reachable(before) && verdict.broken.is_empty() && verdict.waiting.is_empty()
    {
        verdict.waiting.push(format!(
            "{} swarm managers reachable, {} before",
            reachable(now),
            reachable(before)
        ));
    }
    let mode = |s: &Snapshot, name: &str| {
        s.services
            .iter()
            .find(|svc| svc.name == name)
            .map(|svc| svc.mode.clone())
    };
    // Global tasks back where they ran.
    let running_now = running_on(&now.tasks);
    for (service, node) in running_on(&before.tasks) {
        if mode(now, service).as_deref() != Some("global") || running_now.contains(&(service, node))
        {
            continue;
        }
        let state = desired_running(&now.tasks)
            .find(|t| t.service() == service && t.node == node)
            .map_or("no task".to_owned(), |t| state_word(&t.state));
        verdict.waiting.push(format!(
            "{service} (global) not running on {node} yet ({state})"
        ));
    }
    // Replicated services back at their count, when they were.
    let running_count = |s: &Snapshot, service: &str| {
        running_on(&s.tasks)
            .iter()
            .filter(|(svc, _)| *svc == service)
            .count()
    };
    for svc in now.services.iter().filter(|s| s.mode == "replicated") {
        let Some((_, desired)) = svc.task_counts() else {
            continue;
        };
        let desired = desired as usize;
        let was = before
            .services
            .iter()
            .any(|s| s.name == svc.name && running_count(before, &s.name) >= desired);
        let runs = running_count(now, &svc.name);
        if was && runs < desired {
            verdict
                .waiting
                .push(format!("{}: {runs} of {desired} tasks running", svc.name));
        }
    }
    // Tasks failing since, in services that were not failing before.
    let failing_before = failing_services(&before.tasks);
    let known: BTreeSet<&str> = before.tasks.iter().map(|t| t.id.as_str()).collect();
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for task in &now.tasks {
        let service = task.service();
        let failed = matches!(task.state, TaskState::Failed | TaskState::Rejected);
        if !failed
            || known.contains(task.id.as_str())
            || failing_before.contains(service)
            || !named.insert(service)
        {
            continue;
        }
        let error = if task.error.is_empty() {
            String::new()
        } else {
            format!(": {}", task.error)
        };
        verdict.broken.push(format!(
            "task {} {} on {}{error}",
            task.name,
            state_word(&task.state).to_lowercase(),
            if task.node.is_empty() {
                "no node"
            } else {
                &task.node
            }
        ));
    }
    verdict
}

// ---------------------------------------------------------------------------------------
// Gluster heal queues

/// The probe that lists what `volume` still has to heal, brick by brick.
pub fn heal_info_probe(volume: &str) -> Probe {
    Probe {
        key: format!("gluster:heal-info:{volume}"),
        script: format!(
            "gluster --mode=script volume heal {} info",
            crate::shell::quote(volume)
        ),
    }
}

/// One brick's part of `gluster volume heal VOL info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickHeal {
    /// `host:/path`.
    pub brick: String,
    /// `Connected`, or why not (`Transport endpoint is not connected`).
    pub status: String,
    /// Entries to heal; `None` when the brick could not say (`-`).
    pub entries: Option<u64>,
}

impl BrickHeal {
    pub fn clean(&self) -> bool {
        self.status == "Connected" && self.entries == Some(0)
    }
}

/// Parses [`heal_info_probe`]'s output. A volume that does not exist yet, or is not
/// started, has no bricks serving and nothing to heal: no bricks.
pub fn parse_heal_info(key: &str, out: &ProbeOutput) -> Result<Vec<BrickHeal>, FactError> {
    if out.rc != 0
        && (out.output.contains("does not exist") || out.output.contains("is not started"))
    {
        return Ok(Vec::new());
    }
    if out.rc != 0 {
        return Err(FactError::new(
            key,
            format!(
                "gluster volume heal info failed (exit code {}): {}",
                out.rc,
                out.output.trim()
            ),
        ));
    }
    let mut bricks: Vec<BrickHeal> = Vec::new();
    for line in out.output.lines() {
        if let Some(brick) = line.strip_prefix("Brick ") {
            bricks.push(BrickHeal {
                brick: brick.trim().to_owned(),
                status: String::new(),
                entries: None,
            });
        } else if let Some(status) = line.strip_prefix("Status: ") {
            if let Some(last) = bricks.last_mut() {
                last.status = status.trim().to_owned();
            }
        } else if let Some(count) = line.strip_prefix("Number of entries: ") {
            if let Some(last) = bricks.last_mut() {
                last.entries = count.trim().parse().ok();
            }
        }
    }
    if bricks.is_empty() {
        return Err(FactError::new(
            key,
            "gluster volume heal info listed no bricks",
        ));
    }
    Ok(bricks)
}

/// What `volume` still has to heal, in words naming each brick that is not clean; `None`
/// when every brick is connected with nothing to heal.
pub fn heal_pending(volume: &str, bricks: &[BrickHeal]) -> Option<String> {
    let dirty: Vec<String> = bricks
        .iter()
        .filter(|b| !b.clean())
        .map(|b| match (b.status.as_str(), b.entries) {
            ("Connected", Some(n)) => format!("{} {n} entries", b.brick),
            ("Connected", None) => format!("{} entries unknown", b.brick),
            (status, _) => format!("{} {}", b.brick, status.to_lowercase()),
        })
        .collect();
    if dirty.is_empty() {
        None
    } else {
        Some(format!(
            "volume {volume} has entries to heal: {}",
            dirty.join(", ")
        ))
    }
}

/// Which declared volumes have a brick on each machine, for the heal checks.
pub fn volumes_by_machine(volumes: &[(String, Vec<String>)]) -> BTreeMap<String, Vec<String>> {
    let mut by_machine: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (volume, machines) in volumes {
        for machine in machines {
            let list = by_machine.entry(machine.clone()).or_default();
            if !list.contains(volume) {
                list.push(volume.clone());
            }
        }
    }
    by_machine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded::checked;
    use crate::facts::swarm;

    fn out(fact: &str, case: &str, probe: &Probe) -> ProbeOutput {
        checked(
            &format!("rolling/{fact}/{case}"),
            probe,
            "run scripts/record-rolling-fixtures.sh",
        )
    }

    /// A manager's view: `node` and `tasks` from the recorded cases named.
    fn snapshot(nodes: &str, services: &str, tasks: &str) -> Snapshot {
        let (n, s, t) = (
            swarm::node_ls_probe(),
            swarm::service_ls_probe(),
            swarm::service_ps_probe(),
        );
        Snapshot {
            nodes: swarm::parse_node_ls(&n.key, &out("node-ls", nodes, &n)).unwrap(),
            services: swarm::parse_service_ls(&s.key, &out("service-ls", services, &s)).unwrap(),
            tasks: swarm::parse_service_ps(&t.key, &out("service-ps", tasks, &t)).unwrap(),
        }
    }

    fn healthy() -> Snapshot {
        snapshot("healthy", "healthy", "healthy")
    }

    #[test]
    fn a_healthy_swarm_is_as_healthy_as_itself() {
        let verdict = judge(&healthy(), &healthy(), "n3");
        assert!(verdict.healthy(), "{verdict:?}");
    }

    #[test]
    fn the_restarted_node_down_is_waited_for() {
        let verdict = judge(
            &healthy(),
            &snapshot("node-down", "node-down", "node-down"),
            "n3",
        );
        assert!(verdict.broken.is_empty(), "{verdict:?}");
        assert!(
            verdict
                .waiting
                .contains(&"n3 is Down (manager Unreachable)".to_owned()),
            "{verdict:?}"
        );
        // Its global task is not back: web ran on n3 before.
        assert!(
            verdict
                .waiting
                .iter()
                .any(|w| w.starts_with("web (global) not running on n3")),
            "{verdict:?}"
        );
    }

    /// A node Ready again is not enough: the global task that ran on it must run again.
    #[test]
    fn a_node_back_is_not_done_until_its_global_tasks_run() {
        let verdict = judge(&healthy(), &snapshot("back", "healthy", "back"), "n3");
        assert!(verdict.broken.is_empty(), "{verdict:?}");
        assert_eq!(verdict.waiting.len(), 1, "{verdict:?}");
        assert!(
            verdict.waiting[0].starts_with("web (global) not running on n3 yet ("),
            "{verdict:?}"
        );
    }

    #[test]
    fn another_node_lost_while_one_restarts_is_broken_and_named() {
        let verdict = judge(
            &healthy(),
            &snapshot("node-down", "node-down", "node-down"),
            "n1",
        );
        assert_eq!(
            verdict.broken,
            vec!["n3 is Down (manager Unreachable)".to_owned()]
        );
    }

    #[test]
    fn a_task_failing_since_is_broken_and_one_pending_waited_for() {
        let before = healthy();
        let now = snapshot("healthy", "failing", "failing");
        let verdict = judge(&before, &now, "n3");
        assert!(
            verdict
                .broken
                .iter()
                .any(|b| b.starts_with("task crash.1 failed on n")
                    && b.ends_with(": task: non-zero exit (1)")),
            "{verdict:?}"
        );
        // `stuck` never ran: not a service this restart broke, but its failing sibling is.
        assert!(
            !verdict.waiting.iter().any(|w| w.starts_with("stuck")),
            "{verdict:?}"
        );
        // Already failing before: as healthy as before.
        let verdict = judge(&now, &now, "n3");
        assert!(verdict.healthy(), "{verdict:?}");
    }

    #[test]
    fn quorum_allows_one_manager_of_three_down_at_a_time() {
        let nodes = healthy().nodes;
        assert_eq!(quorum_allows(&nodes, "n2"), Ok(()));
        let down = snapshot("node-down", "node-down", "node-down").nodes;
        // n3 is down: restarting n1 would leave n2 alone.
        assert_eq!(
            quorum_allows(&down, "n1").map_err(|e| e.to_string()),
            Err("restarting n1 would leave 1 of 3 swarm managers reachable, fewer than a majority (2): n3 is Down (manager Unreachable)".into())
        );
        // Restarting the one that is down changes nothing.
        assert_eq!(quorum_allows(&down, "n3"), Ok(()));
    }

    /// One or two managers, all reachable: no restart leaves a majority, and none can be
    /// avoided. The same swarms with a manager down refuse it. (The recorded swarm, with
    /// managers taken out of it.)
    #[test]
    fn a_swarm_that_cannot_spare_a_manager_is_restarted_only_while_all_are_reachable() {
        let only = |nodes: Vec<NodeSummary>, kept: &[&str]| -> Vec<NodeSummary> {
            nodes
                .into_iter()
                .filter(|n| kept.contains(&n.hostname.as_str()))
                .collect()
        };
        assert_eq!(quorum_allows(&only(healthy().nodes, &["n1"]), "n1"), Ok(()));
        assert_eq!(
            quorum_allows(&only(healthy().nodes, &["n1", "n2"]), "n1"),
            Ok(())
        );
        let down = snapshot("node-down", "node-down", "node-down").nodes;
        assert_eq!(
            quorum_allows(&only(down, &["n1", "n3"]), "n1").map_err(|e| e.to_string()),
            Err("restarting n1 would leave 0 of 2 swarm managers reachable, fewer than a majority (2): n3 is Down (manager Unreachable)".into())
        );
    }

    fn heal(case: &str) -> Vec<BrickHeal> {
        let probe = heal_info_probe("gv");
        parse_heal_info(&probe.key, &out("heal-info", case, &probe)).unwrap()
    }

    #[test]
    fn heal_queues_name_the_volume_and_each_brick_not_clean() {
        assert_eq!(heal_pending("gv", &heal("healthy")), None);
        assert_eq!(
            heal_pending("gv", &heal("heal-queue")).as_deref(),
            Some("volume gv has entries to heal: n1:/data/bricks/gv 5 entries, n2:/data/bricks/gv 5 entries, n3:/data/bricks/gv transport endpoint is not connected")
        );
        let healing = heal("healing");
        assert!(healing.iter().any(|b| !b.clean()), "{healing:?}");
        assert!(heal_pending("gv", &healing).is_some());
    }

    /// Daemon settings applied before the volume is created: nothing to heal, not an error
    /// to wait on until the step timeout.
    #[test]
    fn a_volume_not_created_yet_has_nothing_to_heal() {
        let probe = heal_info_probe("absent");
        let out = out("heal-info", "no-such-volume", &probe);
        let bricks = parse_heal_info(&probe.key, &out).unwrap();
        assert_eq!(heal_pending("absent", &bricks), None);
    }
}
