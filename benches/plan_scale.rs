//! Planning at scale, from facts recorded on the lab (no SSH): 10,000 machines × 50
//! resources, with the cluster layer (every machine in one swarm, its daemon settings, two
//! overlay networks), against 1,000 and 5,000 machines measured in the same run; then
//! 1,000 services on one swarm and in one stack. The sizes are alternated run by run (the
//! machine may be shared). Prints the median of each phase, the ratios between the sizes
//! (5 and 2 when planning is linear), whether the goals hold (10,000 machines under 2 s
//! within 2.2x of 5,000; 1,000 services under 200 ms) and the peak memory. Run with
//! `cargo bench --bench plan_scale`, or `-- machines`, `-- services`, `-- stack` for one
//! case, `-- 20000` for 10,000 against 20,000 machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral::address::Address;
use corral::config::{self, LoadOptions};
use corral::facts::{FactsFile, Gathered, HostFacts, ProbeOutput};
use corral::gather::probes_by_machine;
use corral::graph::{Filter, ResourceGraph};
use corral::planner::build;
use corral::render::{self, Style};

/// The allocator the `corral` binary uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RESOURCES: usize = 50;
const RUNS: usize = 7;

/// Writes an inventory of `machines` machines and 50 resources selecting all of them.
fn write_config(dir: &Path, machines: usize) -> Vec<PathBuf> {
    let mut inventory = String::new();
    for m in 0..machines {
        let _ = write!(
            inventory,
            "kind: infrastructure/machine\nname: m{m:04}\nspecification:\n  hostname: m{m:04}\n  ip: 10.{}.{}.{}\n  labels: {{ rack: r{} }}\n---\n",
            m / 65536 + 100,
            (m / 256) % 256,
            m % 256,
            m % 10
        );
    }
    let mut resources = String::new();
    for r in 0..RESOURCES {
        let doc = match r % 5 {
            0 | 1 => format!("kind: os/file\nname: f{r}\nspecification:\n  machines: all\n  path: /etc/corral-bench/f{r}\n  content: \"Authorized access only\\n\"\n  mode: \"0644\"\n"),
            2 => format!("kind: os/sysctl\nname: s{r}\nspecification:\n  machines: all\n  values:\n    net.ipv4.conf.all.send_redirects: \"0\"\n    net.ipv4.conf.all.log_martians: \"1\"\n"),
            3 => format!("kind: os/package\nname: p{r}\nspecification:\n  machines: {{ labels: {{ rack: r{} }} }}\n  present: [tree]\n  absent: [ufw]\n", r % 10),
            _ => format!("kind: os/service\nname: u{r}\nspecification:\n  machines: all\n  unit: ssh\n  enabled: true\n  active: true\n"),
        };
        resources.push_str(&doc);
        resources.push_str("---\n");
    }
    // The cluster layer: every machine in one swarm (3 managers), its daemon settings, two
    // overlay networks; blank hosts, so the swarm and all of it plan to be created.
    let workers: Vec<String> = (3..machines).map(|m| format!("m{m:04}")).collect();
    let _ = write!(
        resources,
        "kind: docker/daemon\nname: hardened\nspecification:\n  machines: all\n  settings: {{ log-driver: journald, icc: false }}\n---\nkind: swarm/cluster\nname: main\nspecification:\n  managers: [m0000, m0001, m0002]\n  workers: [{}]\n---\nkind: swarm/network\nname: appnet\nspecification:\n  subnet: 10.240.1.0/24\n---\nkind: swarm/network\nname: dbnet\nspecification:\n  subnet: 10.240.2.0/24\n",
        workers.join(", ")
    );
    let paths = vec![dir.join("inventory.yaml"), dir.join("resources.yaml")];
    std::fs::write(&paths[0], inventory).unwrap();
    std::fs::write(&paths[1], resources).unwrap();
    paths
}

/// Host n1 of a recording under `fixtures/facts/`.
fn recorded_host(name: &str) -> HostFacts {
    let path = format!("{}/fixtures/facts/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut file = FactsFile::read(std::path::Path::new(&path)).unwrap();
    file.hosts.remove("n1").unwrap()
}

/// The recording `fixtures/facts/NAME.json`, and the `docker service inspect` line of
/// service `service` in the facts of the cluster `scope`.
fn recorded_service(name: &str, scope: &Address, service: &str) -> (Gathered, String) {
    let path = format!("{}/fixtures/facts/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let recorded = FactsFile::read(Path::new(&path)).unwrap().gathered();
    let line = recorded.clusters[scope].facts.probes["swarm:service-inspect"]
        .output
        .lines()
        .find(|l| l.contains(&format!("\"Name\":\"{service}\"")))
        .unwrap()
        .to_owned();
    (recorded, line)
}

/// The recorded hosts' facts, with the cluster `scope`'s `docker service inspect` output
/// replaced by `inspect`.
fn with_services(recorded: &Gathered, scope: &Address, inspect: String) -> Gathered {
    let mut facts = recorded.clone();
    facts
        .clusters
        .get_mut(scope)
        .unwrap()
        .facts
        .probes
        .get_mut("swarm:service-inspect")
        .unwrap()
        .output = inspect;
    facts
}

/// The output recorded in `fixtures/cluster/FACT/CASE.json`.
fn cluster_fixture(fact: &str, case: &str) -> ProbeOutput {
    fixture(&format!("cluster/{fact}"), case)
}

/// The output recorded in `fixtures/DIR/CASE.json`.
fn fixture(dir: &str, case: &str) -> ProbeOutput {
    let path = format!("{}/fixtures/{dir}/{case}.json", env!("CARGO_MANIFEST_DIR"));
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    ProbeOutput {
        rc: value["rc"].as_i64().unwrap() as i32,
        output: value["output"].as_str().unwrap().to_owned(),
    }
}

/// Host n1 of the fresh lab recording, read once.
fn fresh_host() -> &'static HostFacts {
    static HOST: std::sync::OnceLock<HostFacts> = std::sync::OnceLock::new();
    HOST.get_or_init(|| recorded_host("lab-fresh"))
}

/// The record probe's output on a fresh lab host.
fn fresh_record() -> &'static ProbeOutput {
    static RECORD: std::sync::OnceLock<ProbeOutput> = std::sync::OnceLock::new();
    RECORD.get_or_init(|| fresh_host().probes[corral::managed::PROBE_KEY].clone())
}

/// A recorded output standing in for each probe key, by what the probe reads.
fn recorded_for(recorded: &HostFacts, key: &str) -> ProbeOutput {
    let pick = |k: &str| {
        recorded
            .probes
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("fixture has no {k}"))
    };
    if key.starts_with("@manager ") {
        // The first member asked the manager's questions of a swarm not made yet.
        cluster_fixture("node-ls", "not-in-swarm")
    } else if key == corral::facts::swarm::INFO_KEY {
        cluster_fixture("swarm-info", "blank")
    } else if key == "user:login" {
        // Who corral logs in as, asked of every machine.
        fixture("user", "login-through-sudo")
    } else if key == corral::facts::kernel::KEY {
        cluster_fixture("kernel-features", "lab")
    } else if key == corral::managed::PROBE_KEY {
        // Hosts corral never wrote to (as recorded on a fresh lab host): nothing to delete.
        fresh_record().clone()
    } else if key == "file:content:/etc/docker/daemon.json" || key == "systemd:docker.service" {
        fresh_host().probes[key].clone()
    } else if key.starts_with("file:content:/etc/sysctl.d/") {
        pick("file:content:/etc/sysctl.d/99-zz-corral-baseline.conf")
    } else if key.starts_with("file:") {
        pick("file:content:/etc/issue.net")
    } else if key.starts_with("dpkg:") {
        pick("dpkg:base")
    } else {
        pick(key)
    }
}

struct Timings {
    load: Duration,
    graph: Duration,
    plan: Duration,
    render: Duration,
    instances: usize,
    changes: usize,
}

fn run_once(paths: &[PathBuf], recorded: &HostFacts) -> Timings {
    let t = Instant::now();
    let config = config::load(paths, &LoadOptions::default()).expect("bench config loads");
    let load = t.elapsed();
    let t = Instant::now();
    let graph = ResourceGraph::build(&config, &Filter::default()).expect("bench graph builds");
    let graph_time = t.elapsed();
    let probes = probes_by_machine(&config, &graph, &Filter::default());
    let hosts: BTreeMap<String, HostFacts> = probes
        .into_iter()
        .map(|(machine, probes)| {
            let facts = HostFacts {
                parsed: Default::default(),
                probes: probes
                    .iter()
                    .map(|p| (p.key.clone(), recorded_for(recorded, &p.key)))
                    .collect(),
            };
            (machine, facts)
        })
        .collect();
    let facts = Gathered {
        hosts,
        ..Gathered::default()
    };
    let t = Instant::now();
    let plan = build::plan(&config, &graph, &Filter::default(), &facts);
    let plan_time = t.elapsed();
    let t = Instant::now();
    let text = render::human::render(&plan, Style::default(), Default::default());
    let render_time = t.elapsed();
    assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());
    std::hint::black_box(text);
    Timings {
        load,
        graph: graph_time,
        plan: plan_time,
        render: render_time,
        instances: plan.instances,
        changes: plan.resource_changes.len(),
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Plans each of `sizes` machines `RUNS` times, the sizes alternated run by run so that a
/// change in the machine's load shows in all of them alike; prints each size's medians and
/// returns each size's median total.
fn measure(sizes: &[usize], recorded: &HostFacts) -> Vec<Duration> {
    let dirs: Vec<tempfile::TempDir> = sizes.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<Vec<PathBuf>> = sizes
        .iter()
        .zip(&dirs)
        .map(|(&machines, dir)| write_config(dir.path(), machines))
        .collect();
    let mut runs: Vec<Vec<Timings>> = sizes.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for (size, paths) in paths.iter().enumerate() {
            runs[size].push(run_once(paths, recorded));
        }
    }
    sizes
        .iter()
        .zip(&runs)
        .map(|(machines, runs)| {
            let phase = |f: fn(&Timings) -> Duration| median(runs.iter().map(f).collect());
            let total = median(
                runs.iter()
                    .map(|t| t.load + t.graph + t.plan + t.render)
                    .collect(),
            );
            println!(
                "{machines:>5} machines × {RESOURCES} resources: {} instances, {} changes; median total {:>8.1} ms (load {:.1}, graph {:.1}, plan {:.1}, render {:.1})",
                runs[0].instances,
                runs[0].changes,
                ms(total),
                ms(phase(|t| t.load)),
                ms(phase(|t| t.graph)),
                ms(phase(|t| t.plan)),
                ms(phase(|t| t.render)),
            );
            total
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `services` services on a converged 3-node swarm, from the recording of
/// examples/krill/ (`fixtures/facts/lab-cluster.json`): the manager's `docker service
/// inspect` holds each service's own copy of the recorded `controller`. Returns the median
/// time to load, build the graph and plan.
fn measure_services(services: usize) -> Duration {
    let scope = &Address::new("swarm/cluster", "krill", None);
    let (recorded, controller) = recorded_service("lab-cluster", scope, "controller");
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::new();
    for m in 1..=3 {
        let _ = write!(config, "kind: infrastructure/machine\nname: n{m}\nspecification: {{ hostname: n{m}, ip: 10.213.0.1{m} }}\n---\n");
    }
    config.push_str("kind: swarm/cluster\nname: krill\nspecification: { managers: [n1, n2, n3], labels: { n1: { krill.controller: \"true\" } } }\n---\nkind: swarm/network\nname: krill\nspecification: { subnet: 10.250.0.0/24, attachable: true }\n");
    let mut inspect = String::new();
    for i in 0..services {
        let name = format!("svc{i:05}");
        let _ = write!(config, "---\nkind: swarm/service\nname: {name}\nspecification:\n  image: local/busybox:1\n  command: [sh, -c, \"mkdir -p /srv/krill/www /srv/krill/status && while :; do date > /srv/krill/status/index.html; sleep 5; done\"]\n  constraints: [\"node.labels.krill.controller==true\"]\n  networks: [krill]\n  env: {{ KRILL_MODE: cluster }}\n  mounts: [{{ type: bind, source: /srv/krill, target: /srv/krill }}]\n");
        inspect.push_str(
            &controller.replace("\"Name\":\"controller\"", &format!("\"Name\":\"{name}\"")),
        );
        inspect.push('\n');
    }
    let config_path = dir.path().join("cluster.yaml");
    std::fs::write(&config_path, config).unwrap();
    let facts = with_services(&recorded, scope, inspect);
    let (total, changes) = time_plans(
        std::slice::from_ref(&config_path),
        &LoadOptions::default(),
        &facts,
    );
    println!(
        "{services:>5} services on a converged swarm: {changes} changes; median {:>8.1} ms",
        ms(total)
    );
    total
}

/// The median time to load `paths`, build the graph and plan from `facts` (fresh copies
/// each run), and the number of changes planned.
fn time_plans(paths: &[PathBuf], options: &LoadOptions, facts: &Gathered) -> (Duration, usize) {
    let runs: Vec<(Duration, usize)> = (0..RUNS)
        .map(|_| {
            let facts = facts.clone();
            let t = Instant::now();
            let config = config::load(paths, options).expect("bench config loads");
            let graph = ResourceGraph::build(&config, &Filter::default()).unwrap();
            let plan = build::plan(&config, &graph, &Filter::default(), &facts);
            assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());
            (t.elapsed(), plan.resource_changes.len())
        })
        .collect();
    (median(runs.iter().map(|r| r.0).collect()), runs[0].1)
}

/// A stack of `services` services from one Compose file, converged, from the recording of
/// examples/three-layer/ (`fixtures/facts/lab-stack.json`): each service is a copy of the
/// recorded `shop_api`. Returns the median time to load, build the graph and plan.
fn measure_stack(services: usize) -> Duration {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/three-layer");
    let scope = &Address::new("swarm/cluster", "layers", None);
    let (recorded, api) = recorded_service("lab-stack", scope, "shop_api");
    let dir = tempfile::tempdir().unwrap();
    let compose_in = std::fs::read_to_string(example.join("app/compose.yaml")).unwrap();
    let start = compose_in.find("  api:\n").unwrap();
    let end = compose_in.find("  web:\n").unwrap();
    let api_text = &compose_in[start..end];
    let mut compose = String::from("version: \"3.8\"\nservices:\n");
    // The monitoring agent, as recorded; the stack's services, copies of `shop_api`.
    let mut inspect: String = recorded.clusters[scope].facts.probes["swarm:service-inspect"]
        .output
        .lines()
        .filter(|l| l.contains("\"Name\":\"node-agent\""))
        .map(|l| format!("{l}\n"))
        .collect();
    for i in 0..services {
        let name = format!("s{i:05}");
        compose.push_str(&api_text.replacen("  api:\n", &format!("  {name}:\n"), 1));
        inspect.push_str(&api.replace(
            "\"Name\":\"shop_api\"",
            &format!("\"Name\":\"shop_{name}\""),
        ));
        inspect.push('\n');
    }
    compose.push_str(&compose_in[compose_in.find("networks:\n  dbnet").unwrap()..]);
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("app/compose.yaml"), compose).unwrap();
    for file in ["layers.yaml", "app/index.html", "secrets/db_password.txt"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    let inventory = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/inventory.yaml");
    let paths = vec![dir.path().to_path_buf(), inventory];
    let facts = with_services(&recorded, scope, inspect);
    let options = LoadOptions {
        project: "three-layer".into(),
        ..LoadOptions::default()
    };
    let (total, changes) = time_plans(&paths, &options, &facts);
    println!(
        "{services:>5} services of a converged stack: {changes} changes; median {:>8.1} ms",
        ms(total)
    );
    total
}

fn main() {
    // `cargo bench --bench plan_scale -- machines|services|stack|20000`: only those cases
    // (`20000`: 10,000 against 20,000 machines); cargo's own `--bench` flag is not one.
    let cases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |case: &str| cases.is_empty() || cases.iter().any(|c| c == case);
    let recorded = recorded_host("lab-converged");
    println!("plan_scale: medians of {RUNS} runs, from recorded lab facts, no SSH");
    if wanted("machines") {
        let totals = measure(&[1000, 5000, 10000], &recorded);
        let (small, half, large) = (totals[0], totals[1], totals[2]);
        let double = large.as_secs_f64() / half.as_secs_f64();
        println!(
            "ratio 5000/1000 machines: {:.2}; ratio 10000/5000 machines: {double:.2} (linear: 5.0 and 2.0; goal: at most 2.2)",
            half.as_secs_f64() / small.as_secs_f64(),
        );
        println!(
            "10000 machines × 50 resources plan in under two seconds, linearly: {}",
            if large < Duration::from_secs(2) && double <= 2.2 {
                "yes"
            } else {
                "NO"
            }
        );
    }
    if cases.iter().any(|c| c == "20000") {
        let totals = measure(&[10000, 20000], &recorded);
        println!(
            "ratio 20000/10000 machines: {:.2} (linear: 2.0; goal: at most 2.2)",
            totals[1].as_secs_f64() / totals[0].as_secs_f64()
        );
    }
    if wanted("services") {
        let (few, many) = (measure_services(100), measure_services(1000));
        println!(
            "ratio 1000/100 services: {:.2} (linear: 10.0); 1000 services in under 200 ms: {}",
            many.as_secs_f64() / few.as_secs_f64(),
            if many < Duration::from_millis(200) {
                "yes"
            } else {
                "NO"
            }
        );
    }
    if wanted("stack") {
        let (few, many) = (measure_stack(100), measure_stack(1000));
        println!(
            "ratio 1000/100 stack services: {:.2} (linear: 10.0)",
            many.as_secs_f64() / few.as_secs_f64()
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
    }
}
