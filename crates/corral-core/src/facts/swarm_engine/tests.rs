use super::*;
use crate::facts::recorded;
use crate::facts::swarm::{self, canonical, refusal, ManagerRefusal};

/// The CLI probes the engine probe answers for, as recorded (project `bench`).
fn cli_probes() -> Vec<Probe> {
    answered("bench")
}

/// `fixtures/cluster/engine/CASE.json` (scripts/record-engine-fixtures.sh): the engine
/// probe's answer expanded as a fact script expands it, and the CLI's own answers recorded
/// in the same moment, by key; after checking that both were recorded with the current
/// scripts.
fn expanded_and_cli(case: &str) -> (BTreeMap<String, ProbeOutput>, BTreeMap<String, ProbeOutput>) {
    #[derive(Deserialize)]
    struct Cli {
        command: String,
        rc: i32,
        output: String,
    }
    #[derive(Deserialize)]
    struct Case {
        cli: BTreeMap<String, Cli>,
    }
    let (probes, folded) = fold(&cli_probes());
    let engine = probes.iter().find(|p| p.key == KEY).unwrap();
    let hint = "run scripts/record-engine-fixtures.sh";
    let name = format!("cluster/engine/{case}");
    let answer = recorded::checked(&name, engine, hint);
    let path = format!("{}/fixtures/{name}.json", crate::testing::REPOSITORY);
    let recorded: Case = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut cli = BTreeMap::new();
    for probe in cli_probes() {
        let alone = &recorded.cli[&probe.key];
        assert_eq!(alone.command, probe.script, "{path}: {hint}");
        cli.insert(
            probe.key.clone(),
            ProbeOutput {
                rc: alone.rc,
                output: alone.output.clone(),
            },
        );
    }
    // As the fact script leaves them: the folded probes printed nothing (the API could be
    // asked), the engine probe its answer.
    let mut outputs: BTreeMap<String, ProbeOutput> = probes
        .iter()
        .map(|p| {
            let out = match p.key == KEY {
                true => answer.clone(),
                false => ProbeOutput {
                    rc: 0,
                    output: String::new(),
                },
            };
            (p.key.clone(), out)
        })
        .collect();
    folded.expand(&mut outputs);
    (outputs, cli)
}

/// On a manager of a real swarm (3 managers, overlay networks, ten services), a worker, a
/// host whose dockerd is stopped and one in no swarm: what the Engine API answered, printed
/// as the CLI prints it, reads as the same facts as what the CLI printed in the same
/// moment (the digest's form: lists by ID), and refusals read as the same refusals.
#[test]
fn the_engine_api_reads_as_the_cli_does() {
    for case in ["manager", "worker", "daemon-down", "blank"] {
        let (expanded, cli) = expanded_and_cli(case);
        assert!(
            !expanded.contains_key(KEY),
            "{case}: the engine's own answer is not kept"
        );
        assert_eq!(expanded.len(), cli.len(), "{case}");
        for (key, alone) in &cli {
            let through_api = &expanded[key];
            assert_eq!(through_api.rc, alone.rc, "{case} {key}: {through_api:?}");
            match (canonical(key, through_api), canonical(key, alone)) {
                (Some(api), Some(cli)) => assert_eq!(api, cli, "{case} {key}"),
                // A refusal is digested as it is printed: the same text.
                _ => assert_eq!(through_api.output, alone.output, "{case} {key}"),
            }
        }
    }
    // What the cases are: a manager reads the cluster, the others are refused as before.
    let (manager, _) = expanded_and_cli("manager");
    let services = swarm::parse_service_inspect(
        swarm::SERVICE_INSPECT_KEY,
        &manager[swarm::SERVICE_INSPECT_KEY],
    )
    .unwrap();
    assert_eq!(services.len(), 10);
    assert_eq!(
        swarm::parse_node_inspect(swarm::NODE_INSPECT_KEY, &manager[swarm::NODE_INSPECT_KEY])
            .unwrap()
            .len(),
        3
    );
    // The project's key config is found by its name; the configs made by hand (the key
    // among them: it carries no label) are the adoptable ones.
    assert!(manager[OBJECTS_KEY].output.ends_with("key \"a2V5\"\n"));
    assert!(manager[OBJECTS_KEY]
        .output
        .starts_with("secret \"corral-engine-secret\" {\"tier\":\"db\"}\n"));
    let adoptable = &manager[&adoptable_probe().key].output;
    assert!(adoptable.contains("\"corral-engine-hand\" \"YnkgaGFuZA==\"\n"));
    assert!(!adoptable.contains("corral-engine-labelled"));
    let (worker, _) = expanded_and_cli("worker");
    assert_eq!(
        refusal(&worker[swarm::NODE_INSPECT_KEY]),
        Some(ManagerRefusal::Worker)
    );
    let (down, _) = expanded_and_cli("daemon-down");
    assert_eq!(
        refusal(&down[swarm::SERVICE_INSPECT_KEY]),
        Some(ManagerRefusal::DaemonDown)
    );
    let (blank, _) = expanded_and_cli("blank");
    assert_eq!(
        refusal(&blank[swarm::NODE_INSPECT_KEY]),
        Some(ManagerRefusal::NotInSwarm)
    );
}

/// The inspects are the API's own objects, byte for byte what the CLI printed (the CLI's
/// `{{json .}}` prints what the API sent, `service inspect` with the defaults filled in);
/// `docker info`'s line too.
#[test]
fn inspects_are_the_clis_bytes() {
    let (expanded, cli) = expanded_and_cli("manager");
    for key in [swarm::INFO_KEY, swarm::NODE_INSPECT_KEY] {
        let mut api: Vec<&str> = expanded[key].output.lines().collect();
        let mut alone: Vec<&str> = cli[key].output.lines().collect();
        api.sort();
        alone.sort();
        assert_eq!(api, alone, "{key}");
    }
    assert_eq!(
        expanded[swarm::SERVICE_INSPECT_KEY].output,
        cli[swarm::SERVICE_INSPECT_KEY].output,
        "in the order `service ls` sorts them"
    );
}

/// Probes are folded by key and script, whatever prefix their key carries (a manager's
/// question asked speculatively); others are left as they are; one engine probe asks what
/// the folded ones need, and each folded probe keeps its CLI script for hosts where the
/// API cannot be asked.
#[test]
fn fold_takes_the_cli_probes_it_answers_for() {
    let speculative = Probe {
        key: format!("@manager {}", swarm::NODE_INSPECT_KEY),
        script: swarm::node_inspect_probe().script,
    };
    let changed = Probe {
        key: swarm::SERVICE_INSPECT_KEY.to_owned(),
        script: "docker service inspect x".to_owned(),
    };
    let other = swarm::service_ls_probe();
    let (probes, folded) = fold(&[
        swarm::info_probe(),
        speculative.clone(),
        changed.clone(),
        other.clone(),
    ]);
    assert_eq!(probes.len(), 5);
    assert_eq!(probes[2], changed);
    assert_eq!(probes[3], other);
    assert!(probes[1]
        .script
        .starts_with("if [ -z \"${DOCKER_HOST-}\" ]"));
    assert!(probes[1].script.contains(&speculative.script));
    let engine = &probes[4];
    assert_eq!(engine.key, KEY);
    assert!(
        engine.script.contains("'info /info' 'nodes /nodes'"),
        "{}",
        engine.script
    );
    assert!(!engine.script.contains("services /services"));
    assert_eq!(folded.keys.len(), 2);
    // The objects probe is recognised whatever its project is called, quoting and all.
    for project in ["bench", "o'brien & co", "a b"] {
        let objects = crate::facts::swarm_objects::probe(project);
        let (probes, folded) = fold(&[objects]);
        assert_eq!(
            folded.keys,
            vec![(
                OBJECTS_KEY.to_owned(),
                Question::Objects {
                    key: crate::facts::swarm_objects::key_name(project)
                }
            )],
            "{project}"
        );
        assert!(
            probes[1].script.contains("'secrets /secrets'"),
            "{}",
            probes[1].script
        );
    }
    // Nothing to fold: nothing added.
    let (same, none) = fold(std::slice::from_ref(&other));
    assert_eq!(same, vec![other]);
    assert!(none.is_empty());
}

/// Where the API cannot be asked as the CLI would ask it (here `DOCKER_HOST` set), a real
/// `sh` runs no perl: the engine probe says so, and the folded probes' CLI outputs stay.
#[test]
fn without_the_api_the_cli_answers() {
    let (probes, folded) = fold(&cli_probes());
    let engine = probes.iter().find(|p| p.key == KEY).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", &engine.script])
        .env("DOCKER_HOST", "tcp://192.0.2.1:2375")
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, format!("{UNAVAILABLE}\n"));
    let cli = ProbeOutput {
        rc: 1,
        output: "printed by the CLI\n".to_owned(),
    };
    let mut outputs = BTreeMap::from([
        (
            KEY.to_owned(),
            ProbeOutput {
                rc: 0,
                output: printed,
            },
        ),
        (swarm::NODE_INSPECT_KEY.to_owned(), cli.clone()),
    ]);
    folded.expand(&mut outputs);
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[swarm::NODE_INSPECT_KEY], cli);
}

/// An answer cut short or mangled makes every folded probe fail, saying why; it is never
/// read as an empty cluster.
#[test]
fn a_mangled_answer_fails_the_folded_probes() {
    let (_, folded) = fold(&cli_probes());
    let (probes, _) = fold(&cli_probes());
    let engine = probes.iter().find(|p| p.key == KEY).unwrap();
    let whole = recorded::checked(
        "cluster/engine/manager",
        engine,
        "run scripts/record-engine-fixtures.sh",
    );
    let cut = whole.output[..whole.output.len() / 2].to_owned();
    for output in [
        cut,
        "@@engine nodes 200 999999\n{}\n".to_owned(),
        "garbage\n".to_owned(),
    ] {
        let mut outputs = BTreeMap::from([(KEY.to_owned(), ProbeOutput { rc: 0, output })]);
        folded.expand(&mut outputs);
        assert_eq!(outputs.len(), cli_probes().len());
        for out in outputs.values() {
            assert_eq!(out.rc, 1, "{out:?}");
            assert!(out.output.contains("could not be read"), "{out:?}");
        }
    }
}

/// What runs, from the API, is what `service ls` and `service ps` printed in the same
/// moment: the service lines byte for byte (IDs, modes, counts, the CLI's order), every
/// task of the services listed (the global ones here) with the same fields in the same
/// order, and how long ago each task changed in the CLI's words, within the second the
/// host's clock is read to.
#[test]
fn what_runs_is_the_clis_lines() {
    let (expanded, cli) = expanded_and_cli("manager");
    let key = swarm::SERVICE_RUN_KEY;
    let (api, alone) = (&expanded[key].output, &cli[key].output);
    let split = |text: &str| -> (String, Vec<String>) {
        let (services, tasks) = text.split_once("corral-tasks\n").unwrap();
        (
            services.to_owned(),
            tasks.lines().map(str::to_owned).collect(),
        )
    };
    let ((api_services, api_tasks), (cli_services, cli_tasks)) = (split(api), split(alone));
    assert_eq!(api_services, cli_services);
    assert_eq!(api_services.lines().count(), 10);
    assert!(!api_tasks.is_empty());
    assert_eq!(api_tasks.len(), cli_tasks.len(), "{api}\n{alone}");
    let without_since = |line: &str| {
        let mut row: BTreeMap<String, String> = serde_json::from_str(line).unwrap();
        let state = row.remove("CurrentState").unwrap();
        (row, state)
    };
    for (api_line, cli_line) in api_tasks.iter().zip(&cli_tasks) {
        let ((api_row, api_state), (cli_row, cli_state)) =
            (without_since(api_line), without_since(cli_line));
        assert_eq!(api_row, cli_row);
        if api_state == cli_state {
            assert_eq!(
                api_line, cli_line,
                "the CLI's bytes: keys sorted, Go's escapes"
            );
        }
        let seconds = |state: &str| -> Option<i64> {
            let words: Vec<&str> = state.split(' ').collect();
            match words[1..] {
                [n, "seconds", "ago"] => n.parse().ok(),
                [_, "second", "ago"] => Some(1),
                _ => None,
            }
        };
        match (seconds(&api_state), seconds(&cli_state)) {
            (Some(a), Some(c)) => assert!((a - c).abs() <= 1, "{api_state} / {cli_state}"),
            _ => assert_eq!(api_state, cli_state),
        }
    }
    let runs = |out: &ProbeOutput| swarm::parse_service_run(key, out).unwrap();
    let (mut from_api, mut from_cli) = (runs(&expanded[key]), runs(&cli[key]));
    for run in from_api.values_mut().chain(from_cli.values_mut()) {
        for task in run.tasks.iter_mut().flatten() {
            task.since.clear();
        }
    }
    assert_eq!(from_api, from_cli);
}
