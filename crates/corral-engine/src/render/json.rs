//! The plan for tools: a versioned JSON document close in spirit to `terraform show -json`,
//! one change per resource instance (never grouped), with counts per host for schedulers and
//! dashboards. Sensitive values appear only as `{"sensitive": true}`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::plan::{AttrValue, Counts, Plan};

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
#[derive(Serialize)]
struct HostSummary {
    reachable: bool,
    add: Option<usize>,
    change: Option<usize>,
    replace: Option<usize>,
    destroy: Option<usize>,
    forget: Option<usize>,
    errors: usize,
}

/// Every host the plan read (with or without changes) and every host it could not read.
/// Changes to cluster objects (no machine) are only in the summary.
fn hosts(plan: &Plan) -> BTreeMap<&str, HostSummary> {
    // Per host: its changes counted, and its instances that could not be planned.
    let mut tally: BTreeMap<&str, (Counts, usize)> = super::read_machines(plan)
        .map(|machine| (machine, Default::default()))
        .collect();
    for change in &plan.resource_changes {
        if let Some(machine) = change.machine.as_deref() {
            tally.entry(machine).or_default().0.record(change.action);
        }
    }
    for problem in &plan.errors {
        if let Some(machine) = problem.address.machine.as_deref() {
            tally.entry(machine).or_default().1 += 1;
        }
    }
    let unreachable: BTreeSet<&str> = plan
        .unreachable
        .iter()
        .map(|h| h.machine.as_str())
        .collect();
    for machine in &unreachable {
        tally.entry(machine).or_default();
    }
    tally
        .into_iter()
        .map(|(machine, (counts, errors))| {
            let known = !unreachable.contains(machine);
            let host = HostSummary {
                reachable: known,
                add: known.then_some(counts.add),
                change: known.then_some(counts.change),
                replace: known.then_some(counts.replace),
                destroy: known.then_some(counts.destroy),
                forget: known.then_some(counts.forget),
                errors,
            };
            (machine, host)
        })
        .collect()
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
            "forget": counts.forget,
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
