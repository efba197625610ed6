//! Apply at fleet size, on simulated hosts (no SSH): 1,000 machines × 2 files (the second
//! depending on the first), every step taking 20 ms, with `--parallelism 50`. Prints the
//! wall time against the ideal (steps × latency / slots), the most steps in flight and
//! their time-weighted mean. Run with `cargo bench --bench apply_fleet`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral::config::{self, LoadOptions};
use corral::facts::{FactsFile, HostFacts};
use corral::gather::probes_by_machine;
use corral::graph::{Filter, ResourceGraph};
use corral::planner::build;
use corral::transport::simulated::{Fleet, SimulatedHost};
use corral::transport::Host;

const MACHINES: usize = 1000;
const PARALLELISM: usize = 50;
const LATENCY: Duration = Duration::from_millis(20);

fn main() {
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
    text.push_str("kind: os/file\nname: a\nspecification: { machines: all, path: /etc/fleet/a, content: \"a\\n\", mode: \"0644\" }\n---\nkind: os/file\nname: b\nspecification: { machines: all, path: /etc/fleet/b, content: \"b\\n\", mode: \"0644\" }\ndepends_on: [os/file.a]\n");
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(&config_path, text).unwrap();
    let config = config::load(&[config_path], &LoadOptions::default()).unwrap();
    let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
    let recorded = format!(
        "{}/fixtures/facts/lab-converged.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let converged = FactsFile::read(Path::new(&recorded))
        .unwrap()
        .hosts
        .remove("n1")
        .unwrap();
    let login: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/fixtures/user/login-through-sudo.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let login = corral::facts::ProbeOutput {
        rc: login["rc"].as_i64().unwrap() as i32,
        output: login["output"].as_str().unwrap().to_owned(),
    };
    let facts: BTreeMap<String, HostFacts> = probes_by_machine(&config, &graph, &Filter::default())
        .into_iter()
        .map(|(machine, probes)| {
            let probes = probes
                .iter()
                .map(|p| {
                    // Both files absent, so both are created; the rest as recorded.
                    let key = match p.key.starts_with("file:content:/etc/fleet/") {
                        true => "file:content:/etc/corral-fixture-absent",
                        false => p.key.as_str(),
                    };
                    let output = match key {
                        "user:login" => login.clone(),
                        _ => converged.probes[key].clone(),
                    };
                    (p.key.clone(), output)
                })
                .collect();
            let facts = HostFacts {
                probes,
                parsed: Default::default(),
            };
            (machine, facts)
        })
        .collect();
    let plan = build::build(
        &config,
        &graph,
        &Filter::default(),
        &facts,
        &BTreeMap::new(),
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());

    let fleet = Fleet::new();
    let hosts: BTreeMap<String, Arc<dyn Host>> = (0..MACHINES)
        .map(|m| {
            let host = SimulatedHost {
                name: format!("m{m:04}"),
                fleet: fleet.clone(),
                latency: LATENCY,
                fail_on: Vec::new(),
            };
            (host.name.clone(), Arc::new(host) as Arc<dyn Host>)
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let report = runtime.block_on(corral::apply::apply(
        &config,
        &graph,
        &plan,
        &facts,
        &hosts,
        PARALLELISM,
        events,
        &stop,
    ));
    let wall = started.elapsed();
    assert!(report.succeeded(), "{:?}", report.failed.first());
    let steps = fleet.runs().len();
    let busy = fleet.busy();
    let ideal = LATENCY * steps as u32 / PARALLELISM as u32;
    println!("apply_fleet: {MACHINES} simulated hosts, {steps} steps of {LATENCY:?}, --parallelism {PARALLELISM}");
    println!(
        "wall {:.0} ms (ideal {:.0} ms, serial {:.0} ms); steps in flight: at most {}, mean {:.1} ({:.0}% of the slots)",
        wall.as_secs_f64() * 1000.0,
        ideal.as_secs_f64() * 1000.0,
        (LATENCY * steps as u32).as_secs_f64() * 1000.0,
        busy.max,
        busy.mean,
        busy.mean / PARALLELISM as f64 * 100.0
    );
}
