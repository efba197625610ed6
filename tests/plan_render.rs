//! Plans computed from facts recorded on lab hosts, rendered as operators and tools see
//! them. Same inputs, same bytes: each snapshot is also rendered twice and compared.

use std::collections::BTreeMap;
use std::path::PathBuf;

use corral::config::{self, LoadOptions};
use corral::facts::HostFacts;
use corral::graph::{Filter, ResourceGraph};
use corral::plan::{build, Plan};
use corral::render::{self, Style};

fn recorded(name: &str) -> BTreeMap<String, HostFacts> {
    let text = std::fs::read_to_string(format!("fixtures/facts/{name}.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(file["hosts"].clone()).unwrap()
}

fn plan_with(
    facts: &BTreeMap<String, HostFacts>,
    unreachable: &BTreeMap<String, String>,
    filter: &Filter,
) -> Plan {
    let paths = [
        PathBuf::from("examples"),
        PathBuf::from("fixtures/inventory.yaml"),
    ];
    let config = config::load(&paths, &LoadOptions::default()).unwrap();
    let graph = ResourceGraph::build(&config, filter).unwrap();
    build::build(&config, &graph, filter, facts, unreachable)
}

fn plan(fixture: &str) -> Plan {
    plan_with(&recorded(fixture), &BTreeMap::new(), &Filter::default())
}

fn human(plan: &Plan) -> String {
    let text = render::human::render(plan, Style::default());
    assert_eq!(
        text,
        render::human::render(plan, Style::default()),
        "rendering is deterministic"
    );
    text
}

#[test]
fn fresh_hosts() {
    insta::assert_snapshot!(human(&plan("lab-fresh")));
}

#[test]
fn converged_hosts_have_no_changes() {
    let plan = plan("lab-converged");
    assert!(plan.is_empty() && plan.is_complete());
    insta::assert_snapshot!(human(&plan));
}

#[test]
fn hand_made_drift() {
    insta::assert_snapshot!(human(&plan("lab-drift")));
}

#[test]
fn drift_as_json() {
    insta::assert_snapshot!(render::json::render(&plan("lab-drift")));
}

#[test]
fn drift_as_markdown() {
    insta::assert_snapshot!(render::markdown::render(&plan("lab-drift")));
}

#[test]
fn unreachable_host_is_reported_and_the_others_planned() {
    let mut facts = recorded("lab-drift");
    facts.remove("n3");
    let unreachable = BTreeMap::from([(
        "n3".to_owned(),
        "cannot connect to n3 (10.213.0.13) over SSH: failed to connect to the remote host: Connection timed out".to_owned(),
    )]);
    let plan = plan_with(&facts, &unreachable, &Filter::default());
    assert!(!plan.is_complete());
    insta::assert_snapshot!(human(&plan));
}

#[test]
fn target_limits_the_plan_to_an_address_and_what_it_depends_on() {
    let filter = Filter {
        targets: vec![corral::address::Address::parse("os/service.heartbeat[n1]").unwrap()],
        ..Filter::default()
    };
    let plan = plan_with(&recorded("lab-fresh"), &BTreeMap::new(), &filter);
    let addresses: Vec<String> = plan
        .resource_changes
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        addresses,
        ["os/file.heartbeat-config[n1]", "os/service.heartbeat[n1]"],
        "`depends_on` comes along; what is only ordered before it does not"
    );
}

#[test]
fn limit_keeps_one_machine() {
    let filter = Filter {
        machines: vec!["n2".into()],
        ..Filter::default()
    };
    let plan = plan_with(&recorded("lab-fresh"), &BTreeMap::new(), &filter);
    assert!(plan
        .resource_changes
        .iter()
        .all(|c| c.machine.as_deref() == Some("n2")));
    assert_eq!(plan.resource_changes.len(), 7, "glusterd already runs");
}

#[test]
fn removed_resources_are_planned_for_deletion() {
    let paths = [
        PathBuf::from("tests/inputs/e2e/reduced.yaml"),
        PathBuf::from("fixtures/inventory.yaml"),
    ];
    let config = config::load(&paths, &LoadOptions::default()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let facts = recorded("lab-converged");
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    insta::assert_snapshot!(human(&plan));

    // Another project owns nothing on these hosts, so it deletes nothing.
    let other = LoadOptions {
        project: "other".into(),
        ..LoadOptions::default()
    };
    let config = config::load(&paths, &other).unwrap();
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    assert!(plan.is_empty(), "{:?}", plan.resource_changes);
}
