//! The plan for tools: a versioned JSON document close in spirit to `terraform show -json`.
//! Sensitive values appear only as `{"sensitive": true}`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::plan::{AttrValue, Plan};

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'a str,
    project: &'a str,
    complete: bool,
    summary: Value,
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
        resource_changes,
        unreachable: &plan.unreachable,
        errors: &plan.errors,
        warnings: &plan.warnings,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
