//! Plans computed from facts recorded on lab hosts, rendered as operators and tools see
//! them. Same inputs, same bytes: each snapshot is also rendered twice and compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corral::config::{self, LoadOptions};
use corral::facts::{FactsFile, HostFacts};
use corral::graph::{Filter, ResourceGraph};
use corral::plan::Plan;
use corral::planner::build;
use corral::render::{self, Heading, RenderOptions, Style};

fn recorded(name: &str) -> BTreeMap<String, HostFacts> {
    FactsFile::read(Path::new(&format!("fixtures/facts/{name}.json")))
        .unwrap()
        .hosts
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

/// The project the recorded hosts' records belong to: `examples/`'s, derived from its
/// directory's name.
fn examples_project() -> LoadOptions {
    LoadOptions {
        project: "examples".into(),
        ..LoadOptions::default()
    }
}

fn plan(fixture: &str) -> Plan {
    plan_with(&recorded(fixture), &BTreeMap::new(), &Filter::default())
}

fn human(plan: &Plan) -> String {
    human_as(plan, RenderOptions::default())
}

fn human_as(plan: &Plan, options: RenderOptions) -> String {
    let text = render::human::render(plan, Style::default(), options);
    assert_eq!(
        text,
        render::human::render(plan, Style::default(), options),
        "rendering is deterministic"
    );
    text
}

const DRIFT: RenderOptions = RenderOptions {
    expand: false,
    heading: Heading::Drift,
};

const EXPANDED: RenderOptions = RenderOptions {
    expand: true,
    heading: Heading::Plan,
};

/// Identical changes on the three hosts are shown once, with the machines.
#[test]
fn fresh_hosts() {
    insta::assert_snapshot!(human(&plan("lab-fresh")));
}

/// `--expand`: every instance on its own, as the plan holds them.
#[test]
fn fresh_hosts_expanded() {
    insta::assert_snapshot!(human_as(&plan("lab-fresh"), EXPANDED));
}

/// 30 machines, 27 of them as the recorded n3: identical changes are one entry whose line
/// elides the middle of the list and whose heading lists every machine; the summary still
/// counts instances.
#[test]
fn thirty_machines_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yaml");
    let machines: String = (1..=30)
        .map(|i| {
            format!(
                "kind: infrastructure/machine\nname: n{i}\nspecification:\n  hostname: n{i}\n  ip: 10.213.0.{}\n  ssh: {{ user: root }}\n---\n",
                10 + i
            )
        })
        .collect();
    std::fs::write(&inventory, machines).unwrap();
    let config = config::load(
        &[PathBuf::from("examples"), inventory],
        &LoadOptions::default(),
    )
    .unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let mut facts = recorded("lab-fresh");
    let n3 = facts["n3"].clone();
    for i in 4..=30 {
        facts.insert(format!("n{i}"), n3.clone());
    }
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    let text = human(&plan);
    // Machines named in counting order (the changes are made in plan order: `--expand`).
    assert!(text.contains("on n1, n2 … n30 (30 machines)"), "{text}");
    insta::assert_snapshot!(text);
    insta::assert_snapshot!(
        "thirty_machines_grouped_markdown",
        render::markdown::render(&plan, RenderOptions::default())
    );
}

#[test]
fn converged_hosts_have_no_changes() {
    let plan = plan("lab-converged");
    assert!(plan.is_empty() && plan.is_complete());
    insta::assert_snapshot!(human(&plan));
    assert_eq!(
        human_as(&plan, DRIFT),
        "No drift. The hosts match the configuration.\n"
    );
    assert_eq!(
        render::markdown::render(&plan, DRIFT),
        "### corral drift: no drift\n\nThe hosts match the configuration.\n"
    );
}

#[test]
fn hand_made_drift() {
    insta::assert_snapshot!(human(&plan("lab-drift")));
}

/// `corral drift` says what drifted, then what apply would do about it.
#[test]
fn hand_made_drift_as_a_drift_report() {
    insta::assert_snapshot!(human_as(&plan("lab-drift"), DRIFT));
}

/// Per-host counts: every host read (n1 without changes too), in name order.
#[test]
fn drift_as_json() {
    insta::assert_snapshot!(render::json::render(&plan("lab-drift")));
}

#[test]
fn drift_as_markdown() {
    insta::assert_snapshot!(render::markdown::render(&plan("lab-drift"), DRIFT));
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
    // For dashboards: the host that could not be read has unknown counts, never zeros.
    let json: serde_json::Value = serde_json::from_str(&render::json::render(&plan)).unwrap();
    assert_eq!(
        json["hosts"]["n3"],
        serde_json::json!({"reachable": false, "add": null, "change": null, "replace": null, "destroy": null, "forget": null, "errors": 0})
    );
    assert_eq!(json["hosts"]["n2"]["change"], 2);
    assert_eq!(json["hosts"]["n1"]["change"], 0);
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
    let config = config::load(&paths, &examples_project()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    // The hosts as this configuration reads them (the originals of what it no longer
    // declares are read whole, for the diff of their restore).
    let facts = recorded("lab-converged-reduced");
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    insta::assert_snapshot!(human(&plan));

    // Another project owns nothing on these hosts, so it deletes nothing; it records what
    // it declares and finds already as configured (a hand-over), and changes nothing else.
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
    assert!(
        plan.resource_changes.iter().all(|c| c.is_record_only()),
        "{:?}",
        plan.resource_changes
    );
    assert_eq!(plan.resource_changes.len(), 3, "issue-net on 3 hosts");
}

/// A removed file corral adopted without keeping an original (it was already as
/// configured) stays on the host: the plan says it is forgotten, counts it as such, and
/// groups it across machines like any change, apart from the deletions.
#[test]
fn a_file_left_in_place_is_forgotten_not_destroyed() {
    use base64::Engine as _;
    let paths = [
        PathBuf::from("tests/inputs/e2e/reduced.yaml"),
        PathBuf::from("fixtures/inventory.yaml"),
    ];
    let config = config::load(&paths, &examples_project()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let mut facts = recorded("lab-converged-reduced");
    let path = "/etc/corral-example/api-token";
    let created_marker = format!("@created\t{}", corral::kinds::file::original_id(path));
    let b64 = base64::engine::general_purpose::STANDARD;
    for host in facts.values_mut() {
        // As corral records a file it found already as configured.
        let probe = host.probes.get_mut("corral:managed").unwrap();
        let mut lines: Vec<String> = Vec::new();
        for line in probe.output.lines() {
            if let Some(encoded) = line.strip_prefix("record ") {
                let mut record: serde_json::Value =
                    serde_json::from_slice(&b64.decode(encoded).unwrap()).unwrap();
                record["projects"]["examples"]["os/file.api-token"]["origin"] = "adopted".into();
                lines.push(format!("record {}", b64.encode(record.to_string())));
            } else if line != created_marker {
                lines.push(line.to_owned());
            }
        }
        probe.output = lines.join("\n") + "\n";
    }
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    let text = human(&plan);
    assert!(
        text.contains("  # os/file.api-token will be forgotten (left in place) on 3 machines\n"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to add, 0 to change, 0 to replace, 11 to destroy, 3 to forget."),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&render::json::render(&plan)).unwrap();
    assert_eq!(json["summary"]["forget"], 3);
    assert_eq!(json["hosts"]["n1"]["forget"], 1);
}

/// A resource whose file moved: the old file is undone (here restored: it was Debian's) and
/// the new one created, under the same address; a file now managed by another resource is
/// never deleted.
#[test]
fn moved_file_is_deleted_at_its_old_path() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("moved.yaml");
    std::fs::write(
        &config_path,
        "kind: os/file\nname: issue-net\nspecification:\n  machines: [n1]\n  path: /etc/issue.net.d/banner\n  content: \"Authorized access only\\n\"\n---\nkind: os/file\nname: motd-renamed\nspecification:\n  machines: [n1]\n  path: /etc/motd\n  content: \"x\\n\"\n",
    )
    .unwrap();
    let paths = [config_path, PathBuf::from("fixtures/inventory.yaml")];
    let config = config::load(&paths, &examples_project()).unwrap();
    let filter = Filter {
        machines: vec!["n1".into()],
        ..Filter::default()
    };
    let graph = ResourceGraph::build(&config, &filter).unwrap();
    let mut facts = recorded("lab-converged");
    facts.retain(|m, _| m == "n1");
    facts.get_mut("n1").unwrap().probes.insert(
        "file:content:/etc/issue.net.d/banner".into(),
        corral::facts::ProbeOutput {
            rc: 0,
            output: "absent\t/etc/issue.net.d\n".into(),
        },
    );
    let plan = build::build(&config, &graph, &filter, &facts, &BTreeMap::new());
    let summary: Vec<(String, &str)> = plan
        .resource_changes
        .iter()
        .map(|c| (c.address.to_string(), c.action.terraform_actions()[0]))
        .collect();
    let undone = |attribute: &str| -> Vec<String> {
        plan.resource_changes
            .iter()
            .filter(|c| c.action == corral::plan::Action::Delete)
            .filter_map(|c| match &c.attribute(attribute)?.after {
                corral::plan::AttrValue::Scalar(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    };
    // Debian's /etc/issue.net was adopted: its original goes back instead of a deletion.
    assert_eq!(undone("original"), ["/etc/issue.net"], "{summary:?}");
    let deleted: Vec<String> = plan
        .resource_changes
        .iter()
        .filter_map(|c| match &c.attribute("path")?.before {
            corral::plan::AttrValue::Scalar(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert!(
        !deleted.contains(&"/etc/motd".to_owned()),
        "the renamed resource keeps /etc/motd: {summary:?}"
    );
    assert!(
        summary.contains(&("os/file.issue-net[n1]".to_owned(), "delete")),
        "{summary:?}"
    );
    assert!(
        summary.contains(&("os/file.issue-net[n1]".to_owned(), "create")),
        "{summary:?}"
    );
}

/// Another project taking over converged hosts only records what it finds as configured:
/// recording is not a change, so no service restarts because of it.
#[test]
fn hand_over_records_without_restarting_services() {
    let paths = [
        PathBuf::from("examples"),
        PathBuf::from("fixtures/inventory.yaml"),
    ];
    let other = LoadOptions {
        project: "other".into(),
        ..LoadOptions::default()
    };
    let config = config::load(&paths, &other).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &recorded("lab-converged"),
        &BTreeMap::new(),
    );
    assert!(!plan.is_empty());
    let restarts: Vec<String> = plan
        .resource_changes
        .iter()
        .filter(|c| !c.is_record_only())
        .map(|c| c.address.to_string())
        .collect();
    assert!(restarts.is_empty(), "{restarts:?}");
}
