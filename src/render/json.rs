//! The plan for tools: a versioned JSON document close in spirit to `terraform show -json`,
//! one change per resource instance (never grouped), with counts per host for schedulers and
//! dashboards. Sensitive values appear only as `{"sensitive": true}`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::plan::{Action, AttrValue, Plan};

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'a str,
    project: &'a str,
    complete: bool,
    summary: Value,
    hosts: BTreeMap<&'a str, HostSummary>,
    resource_changes: Vec<Value>,
    unreachable: &'a [crate::plan::HostProblem],
    errors: &'a [crate::plan::ResourceProblem],
    warnings: &'a [crate::plan::ResourceProblem],
}

fn value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Absent => Value::Null,
        AttrValue::Scalar(s) | AttrValue::Content(s) => Value::String(s.clone()),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Opaque(s) => json!({ "opaque": s }),
        AttrValue::Sensitive => json!({ "sensitive": true }),
    }
}

/// One host's part of the plan: its changes counted like the summary, and the instances
/// that could not be planned. The counts of a host that could not be read are unknown
/// (`null`), never zero.
#[derive(Serialize, Default, Clone, Copy)]
struct HostSummary {
    reachable: bool,
    add: Option<usize>,
    change: Option<usize>,
    replace: Option<usize>,
    destroy: Option<usize>,
    errors: usize,
}

/// Every host the plan read (with or without changes) and every host it could not read.
/// Changes to cluster objects (no machine) are only in the summary.
fn hosts(plan: &Plan) -> BTreeMap<&str, HostSummary> {
    let read = HostSummary {
        reachable: true,
        add: Some(0),
        change: Some(0),
        replace: Some(0),
        destroy: Some(0),
        errors: 0,
    };
    let mut hosts: BTreeMap<&str, HostSummary> = BTreeMap::new();
    for machine in plan
        .facts_digests
        .keys()
        .filter(|k| !crate::facts::is_cluster_key(k))
    {
        hosts.insert(machine, read);
    }
    for host in &plan.unreachable {
        hosts.insert(&host.machine, HostSummary::default());
    }
    for change in &plan.resource_changes {
        let Some(machine) = change.machine.as_deref() else {
            continue;
        };
        let host = hosts.entry(machine).or_insert(read);
        let count = match change.action {
            Action::Create => &mut host.add,
            Action::Update => &mut host.change,
            Action::Replace => &mut host.replace,
            Action::Delete => &mut host.destroy,
            Action::NoOp => continue,
        };
        *count = Some(count.unwrap_or(0) + 1);
    }
    for problem in &plan.errors {
        if let Some(machine) = problem.address.machine.as_deref() {
            hosts.entry(machine).or_insert(read).errors += 1;
        }
    }
    hosts
}

/// Renders the plan as pretty JSON.
pub fn render(plan: &Plan) -> String {
    let counts = plan.counts();
    let resource_changes = plan
        .resource_changes
        .iter()
        .map(|change| {
            let mut before = Map::new();
            let mut after = Map::new();
            for attr in &change.attributes {
                before.insert(attr.name.clone(), value(&attr.before));
                after.insert(attr.name.clone(), value(&attr.after));
            }
            json!({
                "address": change.address.to_string(),
                "resource": change.address.resource().to_string(),
                "machine": change.machine,
                "actions": change.action.terraform_actions(),
                "before": before,
                "after": after,
                "reason": change.reason,
            })
        })
        .collect();
    let doc = JsonPlan {
        format_version: &plan.format_version,
        project: &plan.project,
        complete: plan.is_complete(),
        summary: json!({
            "add": counts.add,
            "change": counts.change,
            "replace": counts.replace,
            "destroy": counts.destroy,
        }),
        hosts: hosts(plan),
        resource_changes,
        unreachable: &plan.unreachable,
        errors: &plan.errors,
        warnings: &plan.warnings,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
