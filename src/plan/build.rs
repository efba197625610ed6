//! Building a [`Plan`] from the configuration, the graph and the facts: pure, no I/O.

use std::collections::{BTreeMap, HashSet};

use super::{Action, HostProblem, Plan, ResourceChange, ResourceProblem, FORMAT_VERSION};
use crate::address::Address;
use crate::config::Config;
use crate::facts::HostFacts;
use crate::graph::ResourceGraph;

/// Diffs every instance of `graph` against the facts of its machine, in apply order.
pub fn build(
    config: &Config,
    graph: &ResourceGraph,
    facts: &BTreeMap<String, HostFacts>,
    unreachable: &BTreeMap<String, String>,
) -> Plan {
    let mut plan = Plan {
        format_version: FORMAT_VERSION.to_owned(),
        resource_changes: Vec::new(),
        unreachable: unreachable
            .iter()
            .map(|(machine, message)| HostProblem {
                machine: machine.clone(),
                message: message.clone(),
            })
            .collect(),
        errors: Vec::new(),
        config_digest: config.digest.clone(),
        facts_digests: facts.iter().map(|(m, f)| (m.clone(), f.digest())).collect(),
        instances: graph.instances.len(),
    };
    // Instances with a change so far; apply order puts dependencies first.
    let mut changed: HashSet<Address> = HashSet::new();
    for index in graph.apply_order() {
        let instance = &graph.instances[index];
        let resource = &config.resources[instance.resource];
        let (Some(machine), Some(kind)) = (&instance.machine, resource.spec.per_machine()) else {
            continue;
        };
        let Some(host_facts) = facts.get(machine) else {
            if !unreachable.contains_key(machine)
                && !plan.unreachable.iter().any(|h| &h.machine == machine)
            {
                // Never silently plan without a host: that would look complete.
                plan.unreachable.push(HostProblem {
                    machine: machine.clone(),
                    message: "no facts were gathered for this host".into(),
                });
            }
            continue;
        };
        let mut diff = match kind.diff(&resource.address.name, host_facts) {
            Ok(diff) => diff,
            Err(e) => {
                plan.errors.push(ResourceProblem {
                    address: instance.address.clone(),
                    message: format!("{machine}: {e}"),
                });
                continue;
            }
        };
        let triggered_by: Vec<Address> = if kind.restarts_when_dependencies_change(&diff) {
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
        if !triggered_by.is_empty() {
            let list = triggered_by
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            diff.reason = Some(match diff.reason {
                Some(reason) => format!("{reason}; also restarted because {list} changes"),
                None => format!("restarted because {list} changes"),
            });
            if diff.action() == Action::NoOp {
                diff.action = Some(Action::Update);
            }
        }
        if diff.action() == Action::NoOp {
            continue;
        }
        changed.insert(instance.address.clone());
        plan.resource_changes.push(ResourceChange {
            address: instance.address.clone(),
            machine: Some(machine.clone()),
            action: diff.action(),
            attributes: diff.attributes,
            reason: diff.reason,
            triggered_by,
        });
    }
    plan
}
