//! The whole pipeline — load, graph, facts, plan, apply — against this machine through
//! `LocalHost` (a real `sh`), confined to a temporary directory. It checks apply's
//! scheduling without a lab: a failure skips what `depends_on` it, not what is only ordered
//! after it, and a second plan after apply is empty.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use corral::apply::{self, Event};
use corral::config::{self, LoadOptions};
use corral::gather::{probes_by_machine, read_host};
use corral::graph::{Filter, ResourceGraph};
use corral::plan::Plan;
use corral::planner::build;
use corral::transport::{BoxFuture, Host, Limits, LocalHost, ScriptOutput, TransportError};

/// This machine through a real `sh`, with corral's own directory (`/var/lib/corral`: the
/// record, kept originals, markers) in the test's directory instead.
struct Confined {
    state: std::path::PathBuf,
}

impl Host for Confined {
    fn run_script<'a>(
        &'a self,
        script: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            let script = script.replace("/var/lib/corral", &self.state.display().to_string());
            LocalHost.run_script(&script, limits).await
        })
    }
}

fn confined(state: &Path) -> Confined {
    Confined {
        state: state.to_owned(),
    }
}

/// The configuration, with `broken`'s file checked by `check` before it is written: `false
/// %s` makes its step fail at apply time (a missing owner would be a plan error instead).
fn write_config(dir: &Path, check: &str) -> Vec<std::path::PathBuf> {
    let d = dir.display();
    let text = format!(
        r#"kind: infrastructure/machine
name: local
specification: {{ hostname: local, ip: 127.0.0.1 }}
---
kind: os/file
name: broken
specification:
  machines: all
  path: {d}/broken.conf
  content: "x\n"
  validate: "{check}"
---
kind: os/file
name: needs-broken
depends_on: [os/file.broken]
specification:
  machines: all
  path: {d}/needs-broken
  content: "never\n"
---
kind: os/file
name: independent
specification:
  machines: all
  path: {d}/sub/independent.conf
  content: "written\n"
  mode: "0640"
---
kind: os/service
name: ordered-after-files
specification:
  machines: all
  unit: corral-test-never-exists.service
  enabled: false
"#
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    vec![path]
}

async fn make_plan(
    paths: &[std::path::PathBuf],
    host: &dyn Host,
) -> (config::Config, ResourceGraph, Plan) {
    let config = config::load(paths, &LoadOptions::default()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let mut facts = BTreeMap::new();
    for (machine, probes) in probes_by_machine(&config, &graph, &Filter::default()) {
        facts.insert(machine, read_host(host, &probes).await.unwrap());
    }
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    (config, graph, plan)
}

#[tokio::test]
async fn failure_skips_dependents_only_and_apply_converges() {
    let dir = tempfile::tempdir().unwrap();
    // corral's own state (/var/lib/corral) of the "host", apart from the files it manages.
    let state = tempfile::tempdir().unwrap();
    let host = confined(state.path());
    let paths = write_config(dir.path(), "false %s");
    let (config, graph, plan) = make_plan(&paths, &host).await;
    let planned: Vec<String> = plan
        .resource_changes
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        planned,
        [
            "os/file.broken[local]",
            "os/file.independent[local]",
            "os/file.needs-broken[local]"
        ],
        "the disabled, absent unit needs nothing"
    );

    let hosts: BTreeMap<String, Arc<dyn Host>> = BTreeMap::from([(
        "local".to_owned(),
        Arc::new(confined(state.path())) as Arc<dyn Host>,
    )]);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let report = apply::apply(
        &config,
        &graph,
        &plan,
        &BTreeMap::new(),
        &hosts,
        4,
        sender,
        &Default::default(),
    )
    .await;
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }

    let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
    assert_eq!(applied, ["os/file.independent[local]"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0.to_string(), "os/file.broken[local]");
    assert!(
        report.failed[0].1.contains("write"),
        "{}",
        report.failed[0].1
    );
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        skipped,
        [(
            "os/file.needs-broken[local]".to_owned(),
            "os/file.broken[local]".to_owned()
        )]
    );
    assert!(events.iter().any(|e| matches!(e, Event::Skipped { .. })));

    let written = dir.path().join("sub/independent.conf");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(!dir.path().join("needs-broken").exists());

    assert!(
        !dir.path().join("broken.conf").exists(),
        "no half-written file"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "config.yaml and sub/: no temporary file left"
    );

    // Fix the cause; apply again converges, and then nothing is left to do.
    let paths = write_config(dir.path(), "true %s");
    let (config, graph, plan) = make_plan(&paths, &host).await;
    // `apply::apply` does not write corral's record on the host (the apply session does),
    // so the file written before shows as already right and only to be recorded.
    let changing: Vec<String> = plan
        .resource_changes
        .iter()
        .filter(|c| !c.is_record_only())
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        changing,
        ["os/file.broken[local]", "os/file.needs-broken[local]"],
        "{:?}",
        plan.resource_changes
    );
    let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
    let report = apply::apply(
        &config,
        &graph,
        &plan,
        &BTreeMap::new(),
        &hosts,
        4,
        sender,
        &Default::default(),
    )
    .await;
    assert!(report.succeeded(), "{report:?}");
    let (_, _, plan) = make_plan(&paths, &host).await;
    assert!(
        plan.resource_changes.iter().all(|c| c.is_record_only()),
        "{:?}",
        plan.resource_changes
    );
}

/// Interrupted before anything started (Ctrl-C): nothing runs, everything is reported as
/// skipped, and the host is untouched.
#[tokio::test]
async fn interrupted_apply_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // corral's own state (/var/lib/corral) of the "host", apart from the files it manages.
    let state = tempfile::tempdir().unwrap();
    let host = confined(state.path());
    let paths = write_config(dir.path(), "true %s");
    let (config, graph, plan) = make_plan(&paths, &host).await;
    assert!(!plan.is_empty());
    let hosts: BTreeMap<String, Arc<dyn Host>> = BTreeMap::from([(
        "local".to_owned(),
        Arc::new(confined(state.path())) as Arc<dyn Host>,
    )]);
    let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
    let stop = std::sync::atomic::AtomicBool::new(true);
    let report = apply::apply(
        &config,
        &graph,
        &plan,
        &BTreeMap::new(),
        &hosts,
        4,
        sender,
        &stop,
    )
    .await;
    assert!(
        report.applied.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.skipped.len(), plan.resource_changes.len());
    assert!(report
        .skipped
        .iter()
        .all(|(_, because)| because.to_string() == "corral.interrupt"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only config.yaml"
    );
}
