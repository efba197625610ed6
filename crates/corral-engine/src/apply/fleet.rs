//! Apply at fleet size, on simulated hosts ([`crate::transport::simulated`]): 1,000
//! machines planned from facts recorded on the lab, walked with 50 slots on tokio's paused
//! clock, so that what is checked is the schedule (slots in flight, order, skips), not how
//! fast this machine is.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{self, LoadOptions};
use crate::facts::{HostFacts, ProbeOutput};
use crate::gather::probes_by_machine;
use crate::graph::{Filter, ResourceGraph};
use crate::planner::build;
use crate::transport::simulated::{Fleet, Run, SimulatedHost};
use crate::transport::Host;

const MACHINES: usize = 1000;
const PARALLELISM: usize = 50;
const LATENCY: Duration = Duration::from_millis(20);
/// Machines with the Docker daemon resource, a rolling kind (one machine at a time; its
/// wait after each machine is set to 0 here, so that the walk's schedule is what is measured).
const DAEMONS: usize = 10;

/// A recorded output for each probe: files absent (so both files are created), the Docker
/// daemon and the record as on a fresh lab host, the rest as on a converged one.
fn recorded_for(converged: &HostFacts, fresh: &HostFacts, key: &str) -> ProbeOutput {
    let from = |facts: &HostFacts, k: &str| {
        facts
            .probes
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("no recorded {k}"))
    };
    if key == crate::managed::PROBE_KEY
        || key == "file:content:/etc/docker/daemon.json"
        || key == "systemd:docker.service"
    {
        from(fresh, key)
    } else if key == "user:login" {
        let path = format!(
            "{}/fixtures/user/login-through-sudo.json",
            corral_core::testing::REPOSITORY
        );
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        ProbeOutput {
            rc: value["rc"].as_i64().unwrap() as i32,
            output: value["output"].as_str().unwrap().to_owned(),
        }
    } else if key.starts_with("file:content:/etc/fleet/") {
        from(converged, "file:content:/etc/corral-fixture-absent")
    } else {
        from(converged, key)
    }
}

fn path(name: &str) -> String {
    format!("/etc/fleet/{name}")
}

#[tokio::test(start_paused = true)]
async fn a_thousand_hosts_keep_every_slot_busy_in_order_and_skip_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for m in 0..MACHINES {
        let _ = write!(
            text,
            "kind: infrastructure/machine\nname: m{m:04}\nspecification: {{ hostname: m{m:04}, ip: 10.{}.{}.{} }}\n---\n",
            100 + m / 65536,
            (m / 256) % 256,
            m % 256
        );
    }
    let daemons: Vec<String> = (0..DAEMONS).map(|m| format!("m{m:04}")).collect();
    let _ = write!(
        text,
        "kind: os/file\nname: a\nspecification: {{ machines: all, path: {}, content: \"a\\n\", mode: \"0644\" }}\n---\nkind: os/file\nname: b\nspecification: {{ machines: all, path: {}, content: \"b\\n\", mode: \"0644\" }}\ndepends_on: [os/file.a]\n---\nkind: docker/daemon\nname: d\nlifecycle: {{ rolling: {{ wait: 0 }} }}\nspecification: {{ machines: [{}], settings: {{ icc: false }} }}\n",
        path("a"),
        path("b"),
        daemons.join(", ")
    );
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(&config_path, text).unwrap();
    let config = config::load(&[config_path], &LoadOptions::default()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let (converged, fresh) = (
        crate::facts::recorded::host("lab-converged", "n1"),
        crate::facts::recorded::host("lab-fresh", "n1"),
    );
    let facts: BTreeMap<String, HostFacts> = probes_by_machine(&config, &graph, &Filter::default())
        .into_iter()
        .map(|(machine, probes)| {
            let probes = probes
                .iter()
                .map(|p| (p.key.clone(), recorded_for(&converged, &fresh, &p.key)))
                .collect();
            (
                machine,
                HostFacts {
                    probes,
                    parsed: Default::default(),
                },
            )
        })
        .collect();
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);

    // File a fails on ten machines, the daemon on the fourth.
    let failing_a: Vec<String> = (500..510).map(|m| format!("m{m:04}")).collect();
    let fleet = Fleet::new();
    let hosts: BTreeMap<String, Arc<dyn Host>> = (0..MACHINES)
        .map(|m| {
            let name = format!("m{m:04}");
            let mut fail_on = Vec::new();
            if failing_a.contains(&name) {
                fail_on.push(path("a"));
            }
            if m == 3 {
                fail_on.push("daemon.json".to_owned());
            }
            let host = SimulatedHost {
                name: name.clone(),
                fleet: fleet.clone(),
                latency: LATENCY,
                fail_on,
            };
            (name, Arc::new(host) as Arc<dyn Host>)
        })
        .collect();
    let (events, _) = mpsc::unbounded_channel();
    let stop = AtomicBool::new(false);
    let report = super::apply(
        &config,
        &graph,
        &plan,
        &facts,
        &hosts,
        PARALLELISM,
        events,
        &stop,
    )
    .await;

    // What failed is reported, and what depends on it skipped, never sent to its host.
    let failed: Vec<String> = report.failed.iter().map(|(a, _)| a.to_string()).collect();
    let mut expected: Vec<String> = failing_a
        .iter()
        .map(|m| format!("os/file.a[{m}]"))
        .chain(["docker/daemon.d[m0003]".to_owned()])
        .collect();
    let mut sorted = failed.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    let skipped: Vec<String> = report.skipped.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(
        skipped.len(),
        failing_a.len() + (DAEMONS - 4),
        "{skipped:?}"
    );
    for m in &failing_a {
        assert!(skipped.contains(&format!("os/file.b[{m}]")), "{skipped:?}");
    }
    for m in 4..DAEMONS {
        assert!(
            skipped.contains(&format!("docker/daemon.d[m{m:04}]")),
            "{skipped:?}"
        );
    }
    assert_eq!(
        report.applied.len(),
        2 * MACHINES - 2 * failing_a.len() + 3,
        "{:?}",
        report.applied.len()
    );

    let runs = fleet.runs();
    let mut by_host: HashMap<&str, Vec<&Run>> = HashMap::new();
    for run in &runs {
        by_host.entry(&run.host).or_default().push(run);
    }
    let of = |runs: &[&Run], needle: &str| -> Vec<(tokio::time::Instant, tokio::time::Instant)> {
        runs.iter()
            .filter(|r| r.script.contains(needle))
            .map(|r| (r.started, r.ended))
            .collect()
    };
    for (host, runs) in &mut by_host {
        // One step at a time on each host.
        runs.sort_by_key(|r| r.started);
        for pair in runs.windows(2) {
            assert!(pair[1].started >= pair[0].ended, "{host}: steps overlap");
        }
        // b after a, and never after a failed a.
        let (a, b) = (of(runs, &path("a")), of(runs, &path("b")));
        assert_eq!(a.len(), 1, "{host}");
        if failing_a.iter().any(|m| m == host) {
            assert!(b.is_empty(), "{host}: b ran after a failed");
        } else {
            assert_eq!(b.len(), 1, "{host}");
            assert!(b[0].0 >= a[0].1, "{host}: b started before a ended");
        }
    }
    // The daemon, one machine at a time in machine order, and none after the failed one.
    let mut daemon_runs: Vec<(&str, tokio::time::Instant, tokio::time::Instant)> = runs
        .iter()
        .filter(|r| r.script.contains("daemon.json"))
        .map(|r| (r.host.as_str(), r.started, r.ended))
        .collect();
    daemon_runs.sort_by_key(|r| r.1);
    let machines: Vec<&str> = daemon_runs.iter().map(|r| r.0).collect();
    assert_eq!(machines, ["m0000", "m0001", "m0002", "m0003"]);
    for pair in daemon_runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "daemon restarts overlap");
    }

    // Every slot busy: 50 steps in flight at most, and nearly all the time.
    let busy = fleet.busy();
    let steps = runs.len();
    eprintln!(
        "{steps} steps: at most {} in flight, {:.1} on average over {:?}",
        busy.max, busy.mean, busy.span
    );
    assert_eq!(busy.max, PARALLELISM);
    assert!(busy.mean >= 0.9 * PARALLELISM as f64, "{busy:?}");
}
