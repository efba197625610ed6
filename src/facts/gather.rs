//! Reading many hosts at once: one connection and one fact script per host, hosts read
//! concurrently up to a bound. A host that cannot be reached is recorded, not fatal: the
//! others are still read and planned.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::script::FactScript;
use super::{HostFacts, Probe};
use crate::config::{Config, Machine};
use crate::graph::{Filter, ResourceGraph};
use crate::transport::ssh::{SshHost, SshOptions};
use crate::transport::Host;

/// Facts of every host that answered, the problem of every host that did not, and the open
/// connections (apply reuses them).
#[derive(Default)]
pub struct Gathered {
    pub facts: BTreeMap<String, HostFacts>,
    pub unreachable: BTreeMap<String, String>,
    pub hosts: BTreeMap<String, Arc<SshHost>>,
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
        .map(|m| (m.clone(), vec![crate::managed::probe()]))
        .collect();
    for instance in &graph.instances {
        let resource = &config.resources[instance.resource];
        if let (Some(machine), Some(kind)) = (&instance.machine, resource.spec.per_machine()) {
            probes
                .entry(machine.clone())
                .or_insert_with(|| vec![crate::managed::probe()])
                .extend(kind.probes(&resource.address.name));
        }
    }
    probes
}

/// Runs one fact script on `host` and splits its output.
pub async fn read_host(host: &dyn Host, probes: &[Probe]) -> Result<HostFacts, String> {
    let script = FactScript::new(probes);
    let output = host.run_script(&script.text).await.map_err(|e| e.message)?;
    let probes = script.split(&output.stdout).map_err(|e| {
        format!(
            "could not read the fact script's output ({e}); the shell said: {}",
            super::tail(&output.stderr, 400)
        )
    })?;
    Ok(HostFacts { probes })
}

/// Connects to every machine in `probes` and reads it, at most `parallelism` at a time.
pub async fn gather(
    config: &Config,
    probes: BTreeMap<String, Vec<Probe>>,
    options: &SshOptions,
    parallelism: usize,
) -> Gathered {
    let semaphore = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, probes) in probes {
        let Some(machine) = config.machines.get(&name).cloned() else {
            continue;
        };
        let semaphore = semaphore.clone();
        let options = options.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let result = read_machine(&machine, &probes, &options).await;
            (name, result)
        });
    }
    let mut gathered = Gathered::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok((host, facts)))) => {
                gathered.facts.insert(name.clone(), facts);
                gathered.hosts.insert(name, Arc::new(host));
            }
            Ok((name, Err(message))) => {
                gathered.unreachable.insert(name, message);
            }
            Err(e) => {
                // A panicking task is a bug; keep going with the other hosts.
                eprintln!("internal error while reading a host: {e}");
            }
        }
    }
    gathered
}

async fn read_machine(
    machine: &Machine,
    probes: &[Probe],
    options: &SshOptions,
) -> Result<(SshHost, HostFacts), String> {
    let host = SshHost::connect(machine, options)
        .await
        .map_err(|e| e.message)?;
    match read_host(&host, probes).await {
        Ok(facts) => Ok((host, facts)),
        Err(message) => {
            host.close().await;
            Err(message)
        }
    }
}
