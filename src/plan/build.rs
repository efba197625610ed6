//! Building a [`Plan`] from the configuration, the graph and the facts: pure, no I/O.

use std::collections::BTreeMap;

use super::{Action, HostProblem, Plan, ResourceChange, ResourceProblem, FORMAT_VERSION};
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
    for index in graph.apply_order() {
        let instance = &graph.instances[index];
        let resource = &config.resources[instance.resource];
        let (Some(machine), Some(kind)) = (&instance.machine, resource.spec.per_machine()) else {
            continue;
        };
        let Some(host_facts) = facts.get(machine) else {
            continue;
        };
        match kind.diff(&resource.address.name, host_facts) {
            Ok(diff) if diff.action() == Action::NoOp => {}
            Ok(diff) => plan.resource_changes.push(ResourceChange {
                address: instance.address.clone(),
                machine: Some(machine.clone()),
                action: diff.action(),
                attributes: diff.attributes,
                reason: diff.reason,
            }),
            Err(e) => plan.errors.push(ResourceProblem {
                address: instance.address.clone(),
                message: format!("{machine}: {e}"),
            }),
        }
    }
    plan
}
