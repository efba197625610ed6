//! One machine of a rolling change (see [`crate::rolling`]): before its steps, the swarm
//! must keep a majority of its managers reachable without it, and the Gluster volumes with a
//! brick on it must have nothing left to heal; after them, the swarm must be as healthy as
//! just before, and stay so for the `wait`, before the next machine's change may begin.
//! Swarm and volumes are the ones the configuration declares; what answers for them is
//! their other members first (the restarted machine last).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::mpsc;

use super::{change, ApplyError, Event};
use crate::address::Address;
use crate::base::envelope::Rolling;
use crate::config::Config;
use crate::facts::swarm::{self, NodeSummary};
use crate::facts::{Probe, ProbeOutput};
use crate::kinds::{Keeps, Placement, Step};
use crate::rolling::{self, Snapshot};
use crate::shell::change_script;
use crate::transport::{Host, Limits, OutputBound};

/// How long one health question may take on one machine (a machine cut off answers
/// nothing).
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two looks at the cluster.
const POLL: Duration = Duration::from_secs(2);
/// How long something the restart does not explain (another machine lost, a task failing)
/// may last before corral stops: a leader election leaves nodes `Unknown` for a moment.
const BROKEN_GRACE: Duration = Duration::from_secs(15);

/// The cluster each machine belongs to, as the configuration declares it.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Machine → the managers of its swarm.
    managers: BTreeMap<String, Vec<String>>,
    /// Machine → (volume, machines with its bricks) for each volume with a brick on it.
    volumes: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

impl Health {
    pub fn from_config(config: &Config) -> Health {
        let mut health = Health::default();
        for resource in &config.resources {
            let Placement::Cluster(kind) = resource.spec.placement() else {
                continue;
            };
            match kind.rolling_keeps() {
                Some(Keeps::Managers { members, managers }) => {
                    for member in members {
                        health.managers.insert(member, managers.clone());
                    }
                }
                Some(Keeps::Bricks(machines)) => {
                    for machine in &machines {
                        health
                            .volumes
                            .entry(machine.clone())
                            .or_default()
                            .push((resource.address.name.clone(), machines.clone()));
                    }
                }
                None => {}
            }
        }
        health
    }
}

/// Runs one probe on `host`, as a fact script runs it.
async fn ask(host: &dyn Host, probe: &Probe) -> Result<ProbeOutput, ApplyError> {
    let limits = Limits::within(ASK_TIMEOUT, OutputBound::KeepTail(super::STEP_OUTPUT_TAIL));
    match host.run_script(&change_script(&probe.script), limits).await {
        Ok(out) => Ok(ProbeOutput {
            rc: out.rc.unwrap_or(-1),
            output: out.stdout,
        }),
        Err(e) => Err(e.into()),
    }
}

/// `candidates` with `machine` last: the others answer while it restarts.
fn others_first(candidates: &[String], machine: &str) -> Vec<String> {
    let mut order: Vec<String> = candidates
        .iter()
        .filter(|m| *m != machine)
        .cloned()
        .collect();
    if candidates.iter().any(|m| m == machine) {
        order.push(machine.to_owned());
    }
    order
}

/// The swarm as the first manager that answers sees it; `None` when every manager that
/// answers is in no swarm (or has no dockerd running) yet, as on blank hosts whose daemon
/// settings come before the swarm. The error says why each did not answer.
async fn snapshot(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    managers: &[String],
    machine: &str,
) -> Result<Option<Snapshot>, ApplyError> {
    let mut why = Vec::new();
    let mut outside = 0;
    for manager in others_first(managers, machine) {
        let Some(host) = hosts.get(&manager) else {
            why.push(format!("{manager}: not connected"));
            continue;
        };
        let (n, s, t) = (
            swarm::node_ls_probe(),
            swarm::service_ls_probe(),
            swarm::service_ps_probe(),
        );
        match ask(host.as_ref(), &n).await {
            Ok(out)
                if out.rc != 0
                    && matches!(
                        swarm::refusal(&out),
                        Some(swarm::ManagerRefusal::NotInSwarm | swarm::ManagerRefusal::DaemonDown)
                    ) =>
            {
                outside += 1;
                why.push(format!("{manager}: in no swarm"));
                continue;
            }
            _ => {}
        }
        let read = async {
            let nodes = ask(host.as_ref(), &n).await?;
            let nodes: Vec<NodeSummary> = swarm::parse_node_ls(&n.key, &nodes)
                .map_err(|e| ApplyError::UnreadableAnswer(e.to_string()))?;
            let services = ask(host.as_ref(), &s).await?;
            let services = swarm::parse_service_ls(&s.key, &services)
                .map_err(|e| ApplyError::UnreadableAnswer(e.to_string()))?;
            let tasks = ask(host.as_ref(), &t).await?;
            let tasks = swarm::parse_service_ps(&t.key, &tasks)
                .map_err(|e| ApplyError::UnreadableAnswer(e.to_string()))?;
            Ok::<_, ApplyError>(Snapshot {
                nodes,
                services,
                tasks,
            })
        };
        match read.await {
            Ok(snapshot) => return Ok(Some(snapshot)),
            Err(e) => why.push(format!("{manager}: {}", e.to_string().trim())),
        }
    }
    if outside == managers.len() {
        return Ok(None);
    }
    Err(ApplyError::NoManagerAnswers { why })
}

/// What the volumes with a brick on `machine` still have to heal, one line per volume;
/// empty when nothing.
async fn heal_queues(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    volumes: &[(String, Vec<String>)],
    machine: &str,
) -> Vec<String> {
    let mut pending = Vec::new();
    for (volume, machines) in volumes {
        let probe = rolling::heal_info_probe(volume);
        let mut why = Vec::new();
        let mut answered = false;
        for peer in others_first(machines, machine) {
            let Some(host) = hosts.get(&peer) else {
                continue;
            };
            let parsed = ask(host.as_ref(), &probe).await.and_then(|out| {
                rolling::parse_heal_info(&probe.key, &out)
                    .map_err(|e| ApplyError::UnreadableAnswer(e.to_string()))
            });
            match parsed {
                Ok(bricks) => {
                    pending.extend(rolling::heal_pending(volume, &bricks));
                    answered = true;
                    break;
                }
                Err(e) => why.push(format!("{peer}: {}", e.to_string().trim())),
            }
        }
        if !answered {
            pending.push(format!(
                "volume {volume}: no brick machine says what it has to heal ({})",
                why.join("; ")
            ));
        }
    }
    pending
}

/// Runs `steps` on `machine` as one machine of a rolling change (see the module's doc),
/// within `timeout` for the steps and again for the checks; reports like
/// [`super::run_change`].
#[allow(clippy::too_many_arguments)]
pub async fn run(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    health: &Health,
    rolling: Rolling,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: Option<&crate::kinds::AccessGuard>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let work = checked_change(
        hosts, health, rolling, machine, address, steps, access, timeout, events,
    );
    super::reported(machine, address, events, work).await
}

#[allow(clippy::too_many_arguments)]
async fn checked_change(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    health: &Health,
    rolling: Rolling,
    machine: &str,
    address: &Address,
    steps: Vec<Step>,
    access: Option<&crate::kinds::AccessGuard>,
    timeout: Duration,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<String> {
    let Some(host) = hosts.get(machine) else {
        return Some(format!("no connection to {machine}"));
    };
    let step = |description: &str| {
        let _ = events.send(Event::Started {
            machine: machine.to_owned(),
            address: address.clone(),
            step: description.to_owned(),
        });
    };
    let managers = health.managers.get(machine).cloned().unwrap_or_default();
    let volumes = health.volumes.get(machine).cloned().unwrap_or_default();
    let deadline = Instant::now() + timeout;

    // Before: the quorum without this machine, and nothing left to heal.
    let before = if managers.is_empty() {
        None
    } else {
        step("check that the swarm keeps a majority of managers without this machine");
        match snapshot(hosts, &managers, machine).await {
            Ok(Some(before)) => {
                if let Err(e) = rolling::quorum_allows(&before.nodes, machine) {
                    return Some(format!("not started: {e}"));
                }
                Some(before)
            }
            // No swarm yet: nothing of it to keep.
            Ok(None) => None,
            Err(e) => {
                return Some(format!(
                    "not started: cannot tell whether the swarm keeps its quorum without {machine}: {e}"
                ))
            }
        }
    };
    if !volumes.is_empty() {
        step("wait until the volumes with a brick here have nothing to heal");
        if let Err(pending) = until_healed(hosts, &volumes, machine, deadline).await {
            return Some(format!(
                "not started: {pending} (waited {} s; a brick that restarts now could leave a replica set without a good copy)",
                timeout.as_secs()
            ));
        }
    }

    let error = change(
        host.as_ref(),
        machine,
        address,
        steps,
        access,
        timeout,
        events,
    )
    .await;
    if let Some(e) = error {
        return Some(e);
    }

    // After: as healthy as before, and still so after the wait.
    step(&format!(
        "wait until the cluster is as healthy as before, then watch it {} s",
        rolling.wait.0.as_secs()
    ));
    let deadline = Instant::now() + timeout;
    let mut broken_since: Option<Instant> = None;
    let mut healthy_since: Option<Instant> = None;
    loop {
        let mut waiting = Vec::new();
        let mut broken = Vec::new();
        if let Some(before) = &before {
            match snapshot(hosts, &managers, machine).await {
                Ok(Some(now)) => {
                    let verdict = rolling::judge(before, &now, machine);
                    waiting.extend(verdict.waiting);
                    broken.extend(verdict.broken);
                }
                Ok(None) => waiting.push("no swarm manager is in the swarm".to_owned()),
                Err(e) => waiting.push(e.to_string()),
            }
        }
        // With a machine lost, glusterd waits for it too (up to its ping timeout): the heal
        // queues cannot change the verdict, and asking them would only delay it.
        if broken.is_empty() {
            waiting.extend(heal_queues(hosts, &volumes, machine).await);
        }
        let now = Instant::now();
        if broken.is_empty() {
            broken_since = None;
        } else if now.duration_since(*broken_since.get_or_insert(now)) >= BROKEN_GRACE {
            return Some(format!(
                "{machine} was changed, but the cluster is not as healthy as before: {}; stopping before the next machine{}",
                broken.join(", "),
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(" (also: {})", waiting.join(", "))
                }
            ));
        }
        if waiting.is_empty() && broken.is_empty() {
            let since = *healthy_since.get_or_insert(now);
            if now.duration_since(since) >= rolling.wait.0 {
                return None;
            }
        } else {
            healthy_since = None;
        }
        if now >= deadline {
            let all: Vec<String> = broken.into_iter().chain(waiting).collect();
            return Some(format!(
                "{machine} was changed, but the cluster was not as healthy as before within {} s: {}; stopping before the next machine",
                timeout.as_secs(),
                all.join(", ")
            ));
        }
        let pause = match healthy_since {
            Some(since) => rolling
                .wait
                .0
                .saturating_sub(now.duration_since(since))
                .min(POLL),
            None => POLL,
        };
        tokio::time::sleep(pause.max(Duration::from_millis(200))).await;
    }
}

/// Waits until every volume in `volumes` has nothing to heal, or `deadline`: then what is
/// still pending.
async fn until_healed(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    volumes: &[(String, Vec<String>)],
    machine: &str,
    deadline: Instant,
) -> Result<(), ApplyError> {
    loop {
        let pending = heal_queues(hosts, volumes, machine).await;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApplyError::StillHealing(pending));
        }
        tokio::time::sleep(POLL).await;
    }
}
