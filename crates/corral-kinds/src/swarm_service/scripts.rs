//! Scripts: the wait a create or update runs under ([`converge_script`]), the services of
//! a project no `swarm/service` declares, and a service's plan diff and steps.

use std::collections::BTreeSet;

use super::compare::{created, Versions};
use super::decide::{live_by_name, live_services, Decision};
use super::redact::STACK_NAMESPACE_LABEL;
use super::{
    Mode, PublishMode, SwarmServiceSpec, UpdateOrder, KIND, RESTART_REASON, TASKS_ATTRIBUTE,
};
use crate::address::Address;
use crate::facts::swarm;
use crate::facts::{kernel, FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;
use crate::swarm_secret::Purpose;
use crate::{ClusterFacts, ClusterKind, ClusterStep, DockerObject, Orphan, Step, MANAGED_LABEL};

/// How the wait lists a service's tasks: `docker service ps --format`, `|`-separated.
pub(super) const TASK_FORMAT: &str =
    "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}";

/// The tasks worth showing when a service does not converge (awk, on [`TASK_FORMAT`]
/// lines): those with an error, and those meant to run that do not.
pub(super) const TASK_FILTER: &str = r#"$5 != "" || ($3 != "Shutdown" && $4 !~ /^Running/) { node = $2; if (node == "") node = "no node"; print $1 " on " node ": " $4 " " $5 }"#;

/// Runs `command` (a `docker service create|update --detach=false`) for at most `budget`
/// seconds, then waits for what is left of them until the service's tasks run: `service
/// ls` counts a replicated service's `running/desired` (desired is the replicas); a global
/// service is counted by node from `service ps` (nodes with a task Docker wants running or
/// ready to start, and those of them where it runs), because `service ls` counts only the
/// tasks desired running, and a task that failed and waits to restart is desired `ready`:
/// it printed `0/0` for a global service whose every task failed. Desired must be at least
/// `least`, and the two equal: a service
/// scaled down runs `2/1` until the task too many has stopped (a stack's deploy, which
/// does not wait itself, returns while it still runs). Fails with the tasks' errors when they
/// do not run in time, and at once when Docker paused or rolled back the update.
///
/// `docker service ps` lists a pending task with desired state `Ready`, not `Running`
/// (fixtures/cluster/service-ps/failures.json), so tasks are filtered here rather than
/// with `--filter desired-state=running`.
pub fn converge_script(name: &str, env: &str, command: &str, budget: u64, least: u8) -> String {
    const SCRIPT: &str = r#"budget=@BUDGET@
deadline=$(($(date +%s) + budget))
corral_tasks() {
  docker service ps --no-trunc --format '@TASK_FORMAT@' @NAME@ 2>/dev/null | awk -F'|' '@TASK_FILTER@' | head -n 6
}
rc=0
out=$(@RUN@ 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
  printf '%s\n' "$out" | tail -n 5
  corral_tasks
  echo "corral: docker failed (exit $rc) to change service "@NAME@
  exit 1
fi
while :; do
  info=$(docker service inspect --format '{{if .Spec.Mode.Global}}global{{else}}replicated{{end}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' @NAME@ 2>&1) || {
    printf '%s\n' "$info"
    echo "corral: service "@NAME@" cannot be read"
    exit 1
  }
  mode=${info%% *}
  state=${info#"$mode"}
  state=${state# }
  case $state in
  paused | rollback_started | rollback_paused | rollback_completed)
    corral_tasks
    echo "corral: Docker's update of service "@NAME@" ended $state: $(docker service inspect --format '{{.UpdateStatus.Message}}' @NAME@ 2>&1)"
    exit 1
    ;;
  esac
  if [ "$mode" = global ]; then
    counts=$(docker service ps --filter desired-state=running --filter desired-state=ready --format '{{.Node}}|{{.CurrentState}}' @NAME@ 2>/dev/null | awk -F'|' '{ split($2, s, " "); d[$1] = 1; if (s[1] == "Running") r[$1] = 1 } END { for (k in d) n++; for (k in r) m++; printf "%d/%d\n", m, n }')
  else
    counts=$(docker service ls --filter @FILTER@ --format '{{.Name}} {{.Replicas}}' 2>/dev/null | while read -r n r _; do [ "$n" = @NAME@ ] && echo "$r"; done)
  fi
  running=${counts%%/*}
  desired=${counts#*/}
  if [ "$state" != updating ] && [ -n "$counts" ] && [ "$running" -eq "$desired" ] && [ "$desired" -ge @LEAST@ ]; then
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    corral_tasks
    if [ -z "$counts" ]; then
      echo "corral: waited ${budget}s for the tasks of service "@NAME@": Docker lists none"
    elif [ "$mode" = global ]; then
      echo "corral: waited ${budget}s for global service "@NAME@" to run a task on each of the $desired nodes Docker placed one on: it runs on $running"
    else
      echo "corral: waited ${budget}s for the $desired tasks of service "@NAME@" to run: $running run"
    fi
    exit 1
  fi
  sleep 2
done
"#;
    let script = SCRIPT
        .replace("@TASK_FORMAT@", TASK_FORMAT)
        .replace("@TASK_FILTER@", TASK_FILTER)
        .replace("@BUDGET@", &budget.to_string())
        .replace("@LEAST@", &least.to_string())
        .replace("@FILTER@", &quote(&format!("name={name}")))
        .replace("@NAME@", &quote(name));
    // Last, and once: the environment and the command hold configuration values, never
    // rewritten.
    match script.split_once("@RUN@") {
        Some((head, tail)) => format!("{head}{env}timeout \"$budget\" {command}{tail}"),
        None => script,
    }
}

/// The services of `project` on the swarm that no `swarm/service` declares.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    Ok(live_services(manager)?
        .iter()
        .filter(|s| s.spec.labels.get(MANAGED_LABEL).map(String::as_str) == Some(project))
        // A stack's services are the stack's to prune.
        .filter(|s| !s.spec.labels.contains_key(STACK_NAMESPACE_LABEL))
        .map(|s| (Address::new(KIND, &s.spec.name, None), s))
        .filter(|(address, _)| !declared.contains(address))
        .map(|(address, s)| Orphan {
            address,
            attributes: vec![AttrChange::new(
                "image",
                AttrValue::Scalar(s.spec.task_template.container_spec.image.clone()),
                AttrValue::Absent,
            )],
            reason: None,
        })
        .collect())
}

impl SwarmServiceSpec {
    /// [`ClusterKind::diff`] with the objects' versions given.
    pub fn diff_with(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Diff, FactError> {
        Ok(match self.decide(name, facts, versions)? {
            Decision::Create => Diff {
                action: Some(Action::Create),
                attributes: created(&self.shape(versions), &self.secret_keys()),
                reason: None,
            },
            Decision::NoOp => Diff::update_if_changed(Vec::new()),
            Decision::Update(delta) => Diff {
                reason: delta.adopting.then(|| crate::adopted_reason("service")),
                ..Diff::update_if_changed(delta.attributes)
            },
            Decision::Restart(why) => Diff {
                action: Some(Action::Update),
                attributes: vec![AttrChange::scalar(TASKS_ATTRIBUTE, why, "all running")],
                reason: Some(RESTART_REASON.into()),
            },
            Decision::Replace(delta) => Diff {
                action: Some(Action::Replace),
                attributes: delta.attributes,
                reason: Some(
                    "the mode cannot change in place (swarmkit: \"service mode change is not allowed\"): the service is removed and created again".into(),
                ),
            },
        })
    }

    /// [`ClusterKind::steps`] with the objects' versions given.
    pub fn steps_with(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Vec<ClusterStep>, FactError> {
        let leader = self.scope.leader(facts);
        let on = |description: String, script: String| ClusterStep {
            machine: leader.clone(),
            step: Step {
                description,
                script,
            },
            produces: None,
            always: false,
        };
        let project = &self.scope.project;
        Ok(match self.decide(name, facts, versions)? {
            Decision::NoOp => Vec::new(),
            Decision::Create => vec![on(
                format!("create service {name} and wait for its tasks"),
                self.converge(
                    name,
                    &self.secret_env_values(),
                    &self.create_command(name, versions),
                ),
            )],
            Decision::Update(delta) => {
                let mut script = match delta.adopting {
                    true => DockerObject::Service.adoptable_guard(name, project),
                    false => DockerObject::Service.owned_guard(name, project),
                };
                if !delta.ports_first.is_empty() {
                    script.push_str(&format!(
                        "timeout {} docker service update --detach=false --quiet {} {} >/dev/null || {{ echo 'corral: removing the ports of service '{} failed; exit 1; }}\n",
                        self.wait_budget(),
                        delta.ports_first.join(" "),
                        quote(name),
                        quote(name),
                    ));
                }
                let command = format!(
                    "docker service update --detach=false --quiet {} {}",
                    delta.flags.join(" "),
                    quote(name)
                );
                script.push_str(&self.converge(name, &delta.secret_env, &command));
                vec![on(
                    format!(
                        "update service {name} ({}) and wait for its tasks",
                        delta.names()
                    ),
                    script,
                )]
            }
            Decision::Restart(_) => vec![on(
                format!("restart the tasks of service {name} (forced update: docker service update --force) and wait for them"),
                self.restart_script(name),
            )],
            Decision::Replace(_) => {
                let q = quote(name);
                let mut script = DockerObject::Service.owned_guard(name, project);
                script.push_str(&format!("docker service rm {q} >/dev/null || exit 1\n"));
                script.push_str(&DockerObject::Service.wait_gone(name));
                script.push_str(&self.converge(
                    name,
                    &self.secret_env_values(),
                    &self.create_command(name, versions),
                ));
                vec![on(
                    format!(
                        "replace service {name} (mode {}) and wait for its tasks",
                        self.mode.word()
                    ),
                    script,
                )]
            }
        })
    }
}

impl ClusterKind for SwarmServiceSpec {
    crate::on_a_swarm!(scope);

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe(), kernel::probe()]
    }

    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            swarm::service_inspect_probe(),
            swarm::network_inspect_probe(),
            swarm::service_run_probe(),
            swarm::node_inspect_probe(),
        ]
    }

    /// Services are created and updated through a manager's API, several at once.
    fn shares_machines(&self) -> bool {
        true
    }

    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        self.diff_with(name, facts, &self.versions(facts, Purpose::Plan)?)
    }

    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        self.steps_with(name, facts, &self.versions(facts, Purpose::Apply)?)
    }

    fn warnings(&self, name: &str, facts: &ClusterFacts) -> Vec<String> {
        let mut warnings = Vec::new();
        let ingress: Vec<String> = self
            .ports
            .iter()
            .filter(|p| p.mode == PublishMode::Ingress)
            .map(|p| format!("{}/{}", p.published, p.protocol.word()))
            .collect();
        let without_ipvs = facts.kernels_without(|f| f.ipvs);
        if !ingress.is_empty() && !without_ipvs.is_empty() {
            warnings.push(format!(
                "swarm/service.{name} publishes {} in ingress mode, but the kernel of {} has no IPVS: Docker creates the service and the routing mesh drops its traffic without an error. Publish with `mode: host` (reached on the nodes that run a task), or use kernels with CONFIG_IP_VS",
                ingress.join(", "),
                without_ipvs.join(", ")
            ));
        }
        // A paused update leaves the service half on its new spec, which may already be the
        // configured one: the plan alone would show nothing.
        let paused = facts
            .manager
            .as_ref()
            .and_then(|(_, manager)| live_by_name(manager).ok())
            .and_then(|services| services.get(name).cloned())
            .and_then(|service| service.update_status)
            .filter(|status| {
                matches!(
                    status.state,
                    swarm::UpdateState::Paused | swarm::UpdateState::RollbackPaused
                )
            });
        if let Some(status) = paused {
            warnings.push(format!(
                "Docker paused the last update of swarm/service.{name}: {}. `docker service ps {name}` shows why; `docker service update --force {name}` retries it",
                status.message
            ));
        }
        // A node that is down runs no task, and a forced update would not change that: the
        // plan does not count it (see docs/src/running-state.md), but says so.
        if self.mode == Mode::Global {
            let down: Vec<String> = facts
                .manager
                .as_ref()
                .filter(|(_, manager)| manager.get(swarm::NODE_INSPECT_KEY).is_ok())
                .and_then(|(_, manager)| manager.nodes().ok())
                .map(|nodes| {
                    nodes
                        .iter()
                        .filter(|n| n.status.state != swarm::NodeState::Ready)
                        .filter(|n| swarm::placeable(n, &self.constraints) == Some(true))
                        .map(|n| {
                            format!(
                                "{} ({})",
                                n.hostname(),
                                swarm::node_state_word(n.status.state)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !down.is_empty() {
                warnings.push(format!(
                    "swarm/service.{name} is global, but {} cannot run its task: the plan counts only the nodes that are up, and shows the service again when a node back up does not run it",
                    down.join(", ")
                ));
            }
        }
        let host_ports = self.ports.iter().any(|p| p.mode == PublishMode::Host);
        if host_ports && self.update.order == Some(UpdateOrder::StartFirst) {
            warnings.push(format!(
                "swarm/service.{name} updates start-first and publishes host-mode ports: a new task cannot bind a port its old task on the same node still holds (\"host-mode port already in use\", moby#36934). Use `order: stop-first`"
            ));
        }
        warnings
    }
}
