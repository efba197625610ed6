//! Deciding: what the plan does with one service (create, nothing, update, replace,
//! restart) from the live services the manager read, and the commands a create or update
//! runs (`secret_env` values in the CLI's environment, see [`cli_env`]).

use std::collections::BTreeMap;

use super::compare::{compare, live_shape, Delta, Versions};
use super::scripts::converge_script;
use super::{Mode, SwarmServiceSpec, BASE_WAIT_SECONDS};
use crate::facts::swarm::{self, SwarmService};
use crate::facts::{FactError, HostFacts};
use crate::shell::quote;
use crate::swarm_secret::ObjectClass;
use crate::{ClusterFacts, DockerObject, MANAGED_LABEL};

/// What the plan does with one service, worked out once for both `diff` and `steps`.
pub(super) enum Decision {
    Create,
    NoOp,
    Update(Delta),
    /// The mode changed: remove and create again.
    Replace(Delta),
    /// As declared, but its tasks do not all run (why, from the tasks): a forced update.
    Restart(String),
}

impl SwarmServiceSpec {
    pub(super) fn decide(
        &self,
        name: &str,
        facts: &ClusterFacts,
        versions: &Versions,
    ) -> Result<Decision, FactError> {
        let Some((_, manager)) = &facts.manager else {
            crate::swarm_cluster::no_manager(facts)?;
            return Ok(Decision::Create);
        };
        let services = live_by_name(manager)?;
        let Some(service) = services.get(name) else {
            return Ok(Decision::Create);
        };
        let network_names = if service.spec.task_template.networks.is_empty() {
            std::sync::Arc::new(BTreeMap::new())
        } else {
            network_names(manager)?
        };
        let delta = compare(
            &self.shape(versions),
            &live_shape(service, &network_names),
            &self.secret_keys(),
        );
        let ours = service.spec.labels.get(MANAGED_LABEL) == Some(&self.scope.project);
        if delta.is_empty() {
            // A service corral does not manage is used as it is, running or not.
            return Ok(match not_running(name, manager, service)? {
                Some(why) if ours => Decision::Restart(why),
                _ => Decision::NoOp,
            });
        }
        let mut delta = delta;
        if !service.spec.labels.contains_key(MANAGED_LABEL) {
            // Made by hand and now declared (`corral import`): the first change takes it
            // over, labelling it in the same update.
            delta
                .attributes
                .push(crate::adopted_attribute(&self.scope.project));
            delta.flags.push(format!(
                "--label-add {}",
                quote(&format!("{MANAGED_LABEL}={}", self.scope.project))
            ));
            delta.adopting = true;
        } else if service.spec.labels.get(MANAGED_LABEL) != Some(&self.scope.project) {
            return Err(FactError::new(
                swarm::SERVICE_INSPECT_KEY,
                format!(
                    "service `{name}` exists, differs ({}), and was not created by project {}; corral does not change what it does not manage: remove it by hand or match the configuration to it",
                    delta.names(),
                    self.scope.project
                ),
            ));
        }
        Ok(match delta.mode_changed {
            true => Decision::Replace(delta),
            false => Decision::Update(delta),
        })
    }

    /// How long a create or update may take to get every task running: a base, plus the
    /// rolling update's delay and monitoring period for each batch of `parallelism` tasks
    /// (a global service has at most one task per member).
    pub fn wait_budget(&self) -> u64 {
        let update = self.shape(&Versions::new()).update;
        let tasks = match self.mode {
            Mode::Replicated => self.replicas.map_or(1, u64::from),
            Mode::Global => self.scope.members().len() as u64,
        };
        let batches = match update.parallelism {
            0 => 1,
            parallelism => tasks.div_ceil(parallelism),
        };
        let per_batch = (update.delay + update.monitor).as_secs() + 1;
        BASE_WAIT_SECONDS.saturating_add(batches.saturating_mul(per_batch))
    }

    /// `docker service create …` of this service.
    pub(super) fn create_command(&self, name: &str, versions: &Versions) -> String {
        let want = self.shape(versions);
        let mut command = vec![
            "docker service create --detach=false --quiet".to_owned(),
            format!("--name {}", quote(name)),
            format!(
                "--label {}",
                quote(&format!("{MANAGED_LABEL}={}", self.scope.project))
            ),
        ];
        match want.replicas {
            Some(replicas) => command.push(format!("--replicas {replicas}")),
            None => command.push("--mode global".into()),
        }
        for constraint in &want.constraints {
            command.push(format!("--constraint {}", quote(constraint)));
        }
        for descriptor in &want.preferences {
            command.push(format!(
                "--placement-pref {}",
                quote(&format!("spread={descriptor}"))
            ));
        }
        for port in &want.ports {
            command.push(format!(
                "--publish {}",
                quote(&format!(
                    "published={},target={},protocol={},mode={}",
                    port.published, port.target, port.protocol, port.mode
                ))
            ));
        }
        for (key, value) in &want.env {
            match self.secret_env.contains_key(key) {
                // The value is in the CLI's environment (see `cli_env`).
                true => command.push(format!("--env {}", quote(key))),
                false => command.push(format!("--env {}", quote(&format!("{key}={value}")))),
            }
        }
        for (target, mount) in &want.mounts {
            command.push(format!("--mount {}", quote(&mount.csv(target))));
        }
        for network in &want.networks {
            command.push(format!("--network {}", quote(network)));
        }
        for (class, objects) in [
            (ObjectClass::Secret, &want.secrets),
            (ObjectClass::Config, &want.configs),
        ] {
            for (target, version) in objects {
                command.push(format!(
                    "--{} {}",
                    class.noun(),
                    quote(&format!("source={version},target={target}"))
                ));
            }
        }
        for (_, _, flag) in want.update.fields() {
            command.push(flag);
        }
        for (key, value) in &want.labels {
            command.push(format!("--label {}", quote(&format!("{key}={value}"))));
        }
        command.push(quote(&self.image));
        command.extend(self.command.iter().map(|arg| quote(arg)));
        command.join(" ")
    }

    /// [`converge_script`] of `command`, which the CLI runs with `secret_env` in its
    /// environment.
    pub(super) fn converge(
        &self,
        name: &str,
        secret_env: &[(String, String)],
        command: &str,
    ) -> String {
        let least = match self.mode {
            Mode::Replicated => 0,
            Mode::Global => 1,
        };
        let env = cli_env(secret_env);
        converge_script(name, &env, command, self.wait_budget(), least)
    }

    /// The forced update (`docker service update --force`) of service `name`, which this
    /// project must manage, that starts its tasks again, and the wait until they run: the
    /// step of a service, or of a stack's service, whose spec is as declared but whose tasks
    /// do not all run.
    pub fn restart_script(&self, name: &str) -> String {
        let mut script = DockerObject::Service.owned_guard(name, &self.scope.project);
        let command = format!(
            "docker service update --detach=false --quiet --force {}",
            quote(name)
        );
        script.push_str(&self.converge(name, &[], &command));
        script
    }

    /// Every `secret_env` variable with its value, for a create.
    pub(super) fn secret_env_values(&self) -> Vec<(String, String)> {
        self.secret_env
            .iter()
            .map(|(k, v)| (k.clone(), v.text().to_owned()))
            .collect()
    }
}

/// Shell assignments (`KEY='value' `) that put `secret_env` values in the environment of
/// the command they precede: the Docker CLI's `--env KEY` / `--env-add KEY` without `=`
/// takes the value from its own environment (docker/cli `opts.ValidateEnv`, checked with the
/// hosts' 20.10 CLI). So a value is in the script, which `sh` reads on its standard input,
/// and in the environment of `timeout` and `docker`, which `/proc/PID/environ` shows only
/// to their owner: never in a command line, which `ps` shows every user. The keys are
/// shell names that none of those programs reads (`secret_env_key_problem`).
pub(super) fn cli_env(secret_env: &[(String, String)]) -> String {
    secret_env
        .iter()
        .map(|(key, value)| format!("{key}={} ", quote(value)))
        .collect()
}

impl SwarmServiceSpec {}

/// Every service the manager sees.
pub(super) fn live_services(
    manager: &HostFacts,
) -> Result<std::sync::Arc<Vec<SwarmService>>, FactError> {
    manager.services()
}

/// The live services by name (the first of a name, as `docker service inspect NAME`).
pub(super) fn live_by_name(
    manager: &HostFacts,
) -> Result<std::sync::Arc<BTreeMap<String, SwarmService>>, FactError> {
    manager.services_by_name()
}

/// Why `service` does not run as declared (see [`swarm::not_running`]), from the manager's
/// one `service ls` (and `service ps` of the services that may be short) and its nodes;
/// `None` when it runs as declared, or when the facts hold no such reading (a facts file
/// saved by an older corral).
fn not_running(
    name: &str,
    manager: &HostFacts,
    service: &SwarmService,
) -> Result<Option<String>, FactError> {
    if manager.get(swarm::SERVICE_RUN_KEY).is_err() {
        return Ok(None);
    }
    let runs = manager.service_runs()?;
    let Some(run) = runs.get(name) else {
        return Ok(None);
    };
    let nodes = match run.global && manager.get(swarm::NODE_INSPECT_KEY).is_ok() {
        true => manager.nodes()?,
        false => std::sync::Arc::new(Vec::new()),
    };
    let expected = match run.global && !nodes.is_empty() {
        true => swarm::global_expected(&nodes, &service.spec.task_template.placement.constraints),
        false => None,
    };
    let why = swarm::not_running(run, expected.as_deref(), &nodes);
    let updating = service
        .update_status
        .as_ref()
        .is_some_and(|status| status.state == swarm::UpdateState::Updating);
    Ok(why.map(|why| match updating {
        true => format!("{why} (Docker's update of it is still under way)"),
        false => why,
    }))
}

/// Overlay network names by ID.
fn network_names(
    manager: &HostFacts,
) -> Result<std::sync::Arc<BTreeMap<String, String>>, FactError> {
    manager.network_names()
}
