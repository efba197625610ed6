//! Tests of `swarm/service`: checks at load, comparison, redaction, decisions and the
//! scripts (run through a real `sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::check::check_image;
use super::compare::{args_value, compare, same_image, PortShape, Shape, KNOWN_AFTER_APPLY};
use super::scripts::TASK_FILTER;
use super::*;
use crate::address::Address;
use crate::facts::{kernel, recorded, swarm, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;
use crate::swarm_secret::ObjectClass;
use crate::{ClusterFacts, ClusterKind, ClusterMember, ClusterStep, DockerObject, SwarmScope};

fn scope(project: &str) -> SwarmScope {
    SwarmScope {
        cluster: "main".into(),
        managers: vec!["n1".into(), "n2".into()],
        workers: vec!["n3".into()],
        project: project.into(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn duration(text: &str) -> Option<DockerDuration> {
    Some(DockerDuration::parse(text).unwrap())
}

/// `api` as scripts/record-cluster-fixtures.sh creates it (secret and config aside),
/// with the `RELEASE=2` its one update added.
fn api() -> SwarmServiceSpec {
    SwarmServiceSpec {
        image: "local/busybox:1".into(),
        command: strings(&["sleep", "86400"]),
        replicas: Some(2),
        constraints: strings(&["node.labels.role==edge"]),
        placement_preferences: strings(&["spread=node.labels.zone"]),
        env: map(&[
            ("APP_ENV", "prod"),
            ("GREETING", "hello world"),
            ("RELEASE", "2"),
        ]),
        mounts: vec![
            ServiceMount {
                kind: MountKind::Bind,
                source: "/srv/api".into(),
                target: "/srv/api".into(),
                readonly: true,
            },
            ServiceMount {
                kind: MountKind::Volume,
                source: "api-cache".into(),
                target: "/var/cache/api".into(),
                readonly: false,
            },
        ],
        networks: strings(&["appnet", "dbnet"]),
        update: UpdatePolicy {
            parallelism: Some(2),
            delay: duration("10s"),
            order: Some(UpdateOrder::StartFirst),
            failure_action: Some(FailureAction::Rollback),
            monitor: duration("2s"),
        },
        labels: map(&[("tier", "app")]),
        secrets: vec![ObjectRef {
            source: "api_token".into(),
            target: None,
        }],
        configs: vec![ObjectRef {
            source: "api_conf".into(),
            target: Some("/etc/api.conf".into()),
        }],
        scope: scope("default"),
        ..SwarmServiceSpec::default()
    }
}

/// `agent` as the recording script creates it.
fn agent() -> SwarmServiceSpec {
    SwarmServiceSpec {
        image: "local/busybox:1".into(),
        command: strings(&["httpd", "-f", "-p", "8080"]),
        mode: Mode::Global,
        ports: vec![Port {
            published: 8080,
            target: 8080,
            mode: PublishMode::Host,
            protocol: Protocol::Tcp,
        }],
        scope: scope("default"),
        ..SwarmServiceSpec::default()
    }
}

/// A manager's facts: the services of `case`, and the networks of the same lab.
fn manager(case: &str) -> HostFacts {
    let mut facts = HostFacts::default();
    facts.probes.insert(
        swarm::SERVICE_INSPECT_KEY.into(),
        recorded::cluster("service-inspect", case, &swarm::service_inspect_probe()),
    );
    facts.probes.insert(
        swarm::NETWORK_INSPECT_KEY.into(),
        recorded::cluster(
            "network-inspect",
            "cluster",
            &swarm::network_inspect_probe(),
        ),
    );
    facts
}

fn facts(manager: &HostFacts) -> ClusterFacts<'_> {
    ClusterFacts {
        members: BTreeMap::new(),
        manager: Some(("n2".into(), manager)),
        inventory: BTreeMap::new(),
    }
}

fn plan(spec: &SwarmServiceSpec, name: &str, manager: &HostFacts) -> (Diff, Vec<ClusterStep>) {
    let facts = facts(manager);
    (
        spec.diff_with(name, &facts, &recorded_versions()).unwrap(),
        spec.steps_with(name, &facts, &recorded_versions()).unwrap(),
    )
}

/// The objects the recorded `api` uses, as versions of `api_token` and `api_conf`.
fn recorded_versions() -> Versions {
    Versions::from([
        (
            (ObjectClass::Secret, "api_token".into()),
            Some("api_token_v1".into()),
        ),
        (
            (ObjectClass::Config, "api_conf".into()),
            Some("api_conf_v1".into()),
        ),
    ])
}

/// A flag with its value quoted as the scripts quote it.
fn flag(name: &str, value: &str) -> String {
    format!("{name} {}", quote(value))
}

fn names(diff: &Diff) -> Vec<&str> {
    diff.attributes.iter().map(|a| a.name.as_str()).collect()
}

/// Checks `script` with `sh -n`.
fn assert_valid_sh(script: &str) {
    let out = std::process::Command::new("sh")
        .args(["-n", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_recorded_services_as_created_plan_nothing() {
    let manager = manager("cluster");
    for (name, spec) in [("api", api()), ("agent", agent())] {
        let (diff, steps) = plan(&spec, name, &manager);
        assert_eq!(diff.action(), Action::NoOp, "{name}: {diff:?}");
        assert!(steps.is_empty());
    }
}

#[test]
fn defaults_written_out_plan_nothing_either() {
    let manager = manager("cluster");
    let spec = SwarmServiceSpec {
        replicas: None,
        update: UpdatePolicy {
            parallelism: Some(1),
            delay: duration("0"),
            order: Some(UpdateOrder::StopFirst),
            failure_action: Some(FailureAction::Pause),
            monitor: duration("5000ms"),
        },
        ..agent()
    };
    let (diff, _) = plan(&spec, "agent", &manager);
    assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
}

/// The facts keep no environment value that is not shown anyway: a secret one is
/// compared as it is read and kept as same/differs; others' and undeclared ones go. The
/// plan from the redacted facts is the plan from the real ones.
#[test]
fn facts_keep_no_secret_environment_value() {
    let mut spec = api();
    let greeting = spec.env.remove("GREETING").unwrap();
    spec.secret_env
        .insert("GREETING".into(), SecretEnv::with_value(&greeting));
    let raw = manager("cluster");
    let redact = |spec: &SwarmServiceSpec| {
        let mut facts = raw.clone();
        let declared = BTreeMap::from([("api".to_owned(), spec)]);
        let out = facts.probes.get_mut(swarm::SERVICE_INSPECT_KEY).unwrap();
        out.output = redact_inspect(&out.output, &declared);
        facts
    };
    let redacted = redact(&spec);
    let text = &redacted.probes[swarm::SERVICE_INSPECT_KEY].output;
    assert!(!text.contains("hello world"), "{text}");
    assert!(text.contains("GREETING=@@corral-sensitive:same"), "{text}");
    assert!(text.contains("APP_ENV=prod"), "{text}");
    assert_eq!(plan(&spec, "api", &redacted).0.action(), Action::NoOp);
    spec.secret_env
        .insert("GREETING".into(), SecretEnv::with_value("new"));
    let redacted = redact(&spec);
    assert!(redacted.probes[swarm::SERVICE_INSPECT_KEY]
        .output
        .contains("GREETING=@@corral-sensitive:differs"));
    assert_eq!(
        plan(&spec, "api", &redacted).0.attributes,
        plan(&spec, "api", &raw).0.attributes
    );
    // A service nothing declares keeps no value at all.
    let declared = BTreeMap::new();
    let text = redact_inspect(&raw.probes[swarm::SERVICE_INSPECT_KEY].output, &declared);
    assert!(
        !text.contains("hello world") && !text.contains("APP_ENV=prod"),
        "{text}"
    );
}

#[test]
fn a_secret_env_value_is_compared_but_never_shown() {
    let manager = manager("cluster");
    let mut spec = api();
    let greeting = spec.env.remove("GREETING").unwrap();
    spec.secret_env
        .insert("GREETING".into(), SecretEnv::with_value(&greeting));
    assert_eq!(plan(&spec, "api", &manager).0.action(), Action::NoOp);

    spec.secret_env
        .insert("GREETING".into(), SecretEnv::with_value("s3cret 'value'"));
    let (diff, steps) = plan(&spec, "api", &manager);
    assert_eq!(
        diff.attributes,
        [AttrChange::new(
            "env.GREETING",
            AttrValue::Sensitive,
            AttrValue::Sensitive
        )]
    );
    assert!(!format!("{diff:?}").contains("s3cret"));
    assert!(!format!("{diff:?}").contains("hello world"));
    // Nor in the specification's debug form.
    assert!(
        format!("{spec:?}").contains(r#"secret_env: {"GREETING": SecretEnv"#),
        "{spec:?}"
    );
    assert!(!format!("{spec:?}").contains("s3cret"));
    let step = &steps[0].step;
    assert_eq!(
        step.description,
        "update service api (env.GREETING) and wait for its tasks"
    );
    // The value reaches the CLI in its environment, the flag names the key only.
    assert!(
        step.script.contains(&format!(
            "GREETING={} timeout \"$budget\" docker service update",
            quote("s3cret 'value'")
        )),
        "{}",
        step.script
    );
    assert!(step.script.contains(&flag("--env-add", "GREETING")));
    // Created: shown as sensitive too.
    let diff = spec.diff("api2", &facts(&manager)).unwrap();
    let greeting = diff
        .attributes
        .iter()
        .find(|a| a.name == "env.GREETING")
        .unwrap();
    assert_eq!(greeting.after, AttrValue::Sensitive);
    assert!(!format!("{diff:?}").contains("s3cret"));
}

/// Runs `script` as apply does (`sh -s`, the script on stdin) with a fake `docker` and
/// `timeout` first on PATH, which record their argv and `$GREETING` and answer as a
/// converged service would; returns (argv lines, values of `$GREETING` docker saw).
fn run_with_fake_docker(script: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let record = format!(
        "for a in \"$0\" \"$@\"; do printf 'argv %s\\n' \"$a\"; done >> {log}\n",
        log = quote(&log.display().to_string())
    );
    fake(
        "docker",
        &format!(
            "{record}printf 'env %s\\n' \"${{GREETING-(unset)}}\" >> {log}.env\ncase \"$*\" in\n*io.corral.managed*) echo default ;;\n'service ls'*) echo 'api 2/2'; echo 'web 1/1' ;;\nesac\nexit 0\n",
            log = quote(&log.display().to_string())
        ),
    );
    let real_timeout = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v timeout"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    fake(
        "timeout",
        &format!("{record}exec {} \"$@\"\n", real_timeout.trim()),
    );
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = corral_core::testing::output_with_stdin(
        std::process::Command::new("sh")
            .arg("-s")
            .env("PATH", path)
            .env_remove("GREETING")
            .stderr(std::process::Stdio::piped()),
        crate::shell::change_script(script).as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    (read(&log), read(&log.with_extension("env")))
}

/// A service scaled down (as `docker stack deploy` leaves it, without waiting) runs
/// `2/1` for a while: the wait goes on until the count is `1/1`, through a real `sh`
/// with a fake `docker` that counts `2/1` once.
#[test]
fn the_wait_goes_on_while_a_service_scaled_down_runs_too_many_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let docker = dir.path().join("docker");
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n'service ls'*) n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}; if [ $n -lt 2 ]; then echo 'web 2/1'; else echo 'web 1/1'; fi ;;\nesac\nexit 0\n",
            c = quote(&count.display().to_string())
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = converge_script("web", "", "true", 30, 0);
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2");
}

/// A `secret_env` value is never in a command line (`ps` shows those to every user):
/// the create and the update give Docker's CLI `--env KEY` / `--env-add KEY` and the
/// value in its environment, through a real `sh` reading the script on stdin.
#[test]
fn a_secret_env_value_is_in_no_command_line() {
    let manager = manager("cluster");
    let secret = "s3cret 'value' $(touch /nonexistent) \\\n; x";
    let mut spec = api();
    spec.env.remove("GREETING");
    spec.secret_env
        .insert("GREETING".into(), SecretEnv::with_value(secret));
    for (name, action) in [("api", "update"), ("web", "create")] {
        let steps = plan(&spec, name, &manager).1;
        assert_eq!(steps.len(), 1);
        let (argv, env) = run_with_fake_docker(&steps[0].step.script);
        assert!(
            argv.contains(&format!("argv service\nargv {action}\n")),
            "{argv}"
        );
        let flag = match action {
            "create" => "--env",
            _ => "--env-add",
        };
        assert!(
            argv.contains(&format!("argv {flag}\nargv GREETING\n")),
            "{argv}"
        );
        assert!(!argv.contains("s3cret"), "a value in argv:\n{argv}");
        // The CLI that creates or updates saw the value, whole.
        assert!(env.contains(&format!("env {secret}\n")), "{env}");
    }
}

#[test]
fn a_variable_no_longer_declared_is_removed_without_showing_its_value() {
    let manager = manager("cluster");
    let mut spec = api();
    spec.env.remove("GREETING");
    let (diff, steps) = plan(&spec, "api", &manager);
    assert_eq!(
        diff.attributes,
        [AttrChange::new(
            "env.GREETING",
            AttrValue::Sensitive,
            AttrValue::Absent
        )]
    );
    assert!(steps[0].step.script.contains("--env-rm GREETING api"));
}

#[test]
fn each_changed_attribute_is_shown_and_updated_with_its_flags() {
    type Change = fn(&mut SwarmServiceSpec);
    let cases: Vec<(Change, &[&str], Vec<String>)> = vec![
        (
            |s| s.image = "local/busybox:2".into(),
            &["image"],
            vec![flag("--image", "local/busybox:2")],
        ),
        (
            |s| s.command = strings(&["sleep", "it's late"]),
            &["command"],
            vec![flag("--args", r"'sleep' 'it'\''s late'")],
        ),
        (|s| s.replicas = Some(3), &["replicas"], vec![flag("--replicas", "3")]),
        (
            |s| s.constraints = strings(&["node.labels.role==edge", "node.role==worker"]),
            &["constraints"],
            vec![flag("--constraint-add", "node.role==worker")],
        ),
        (
            |s| s.constraints.clear(),
            &["constraints"],
            vec![flag("--constraint-rm", "node.labels.role==edge")],
        ),
        (
            |s| s.placement_preferences.insert(0, "spread=node.labels.rack".into()),
            &["placement_preferences"],
            vec![[
                flag("--placement-pref-rm", "spread=node.labels.zone"),
                flag("--placement-pref-add", "spread=node.labels.rack"),
                flag("--placement-pref-add", "spread=node.labels.zone"),
            ]
            .join(" ")],
        ),
        (
            |s| {
                s.ports.push(Port {
                    published: 80,
                    target: 8080,
                    mode: PublishMode::Ingress,
                    protocol: Protocol::Tcp,
                })
            },
            &["ports"],
            vec![flag("--publish-add", "published=80,target=8080,protocol=tcp,mode=ingress")],
        ),
        (
            |s| {
                s.env.insert("APP_ENV".into(), "staging".into());
                s.env.insert("NEW".into(), "1".into());
            },
            &["env.APP_ENV", "env.NEW"],
            vec![flag("--env-add", "APP_ENV=staging"), flag("--env-add", "NEW=1")],
        ),
        (
            |s| s.mounts[0].readonly = false,
            &["mounts./srv/api"],
            vec![flag("--mount-add", "type=bind,source=/srv/api,target=/srv/api")],
        ),
        (
            |s| {
                s.mounts.remove(1);
            },
            &["mounts./var/cache/api"],
            vec![flag("--mount-rm", "/var/cache/api")],
        ),
        (
            |s| s.networks = strings(&["appnet", "frontnet"]),
            &["networks"],
            vec!["--network-rm dbnet --network-add frontnet".into()],
        ),
        (
            |s| {
                s.update = UpdatePolicy {
                    parallelism: Some(2),
                    ..UpdatePolicy::default()
                }
            },
            &["update.delay", "update.order", "update.failure_action", "update.monitor"],
            vec!["--update-delay 0s --update-order stop-first --update-failure-action pause --update-monitor 5s".into()],
        ),
        (
            |s| {
                s.labels.remove("tier");
                s.labels.insert("owner".into(), "ops team".into());
            },
            &["labels.owner", "labels.tier"],
            vec![[flag("--label-add", "owner=ops team"), flag("--label-rm", "tier")].join(" ")],
        ),
    ];
    let manager = manager("cluster");
    for (change, attributes, flags) in cases {
        let mut spec = api();
        change(&mut spec);
        let (diff, steps) = plan(&spec, "api", &manager);
        assert_eq!(diff.action(), Action::Update, "{attributes:?}");
        assert_eq!(names(&diff), attributes);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].machine, "n2");
        let script = &steps[0].step.script;
        assert!(
            script.contains("docker service update --detach=false --quiet --"),
            "{script}"
        );
        for flag in flags {
            assert!(script.contains(&format!(" {flag} ")), "{flag}\n{script}");
        }
        assert!(script.contains(&DockerObject::Service.owned_guard("api", "default")));
        assert_valid_sh(script);
    }
}

#[test]
fn shown_values_read_as_written() {
    let manager = manager("cluster");
    let mut spec = agent();
    spec.ports[0].published = 8081;
    spec.mounts.push(ServiceMount {
        kind: MountKind::Bind,
        source: "/srv/shared".into(),
        target: "/data".into(),
        readonly: true,
    });
    let (diff, steps) = plan(&spec, "agent", &manager);
    assert_eq!(
        diff.attributes,
        [
            AttrChange::scalar("ports", "8080:8080/tcp (host)", "8081:8080/tcp (host)"),
            AttrChange::new(
                "mounts./data",
                AttrValue::Absent,
                AttrValue::Scalar("bind /srv/shared, readonly".into())
            ),
        ]
    );
    // `--publish-rm` goes by target, protocol and mode: the old port goes, the new one
    // comes, in one update.
    let script = &steps[0].step.script;
    let ports = [
        flag("--publish-rm", "target=8080,protocol=tcp,mode=host"),
        flag(
            "--publish-add",
            "published=8081,target=8080,protocol=tcp,mode=host",
        ),
    ];
    assert!(script.contains(&ports.join(" ")), "{script}");
}

#[test]
fn ports_removed_with_a_port_that_stays_go_in_an_update_of_their_own() {
    let port = |published| PortShape {
        published,
        target: 80,
        protocol: "tcp".into(),
        mode: "ingress".into(),
    };
    let have = Shape {
        ports: BTreeSet::from([port(80), port(8080)]),
        ..api().shape(&Versions::new())
    };
    let want = Shape {
        ports: BTreeSet::from([port(80)]),
        ..api().shape(&Versions::new())
    };
    let delta = compare(&want, &have, &BTreeSet::new());
    assert_eq!(
        delta.ports_first,
        [flag("--publish-rm", "target=80,protocol=tcp,mode=ingress")]
    );
    assert_eq!(
        delta.flags,
        [flag(
            "--publish-add",
            "published=80,target=80,protocol=tcp,mode=ingress"
        )]
    );
}

#[test]
fn a_mode_change_replaces_the_service() {
    let manager = manager("cluster");
    let spec = SwarmServiceSpec {
        mode: Mode::Replicated,
        ..agent()
    };
    let (diff, steps) = plan(&spec, "agent", &manager);
    assert_eq!(diff.action(), Action::Replace);
    assert_eq!(
        diff.attributes,
        [
            AttrChange::scalar("mode", "global", "replicated"),
            AttrChange::new("replicas", AttrValue::Absent, AttrValue::Scalar("1".into())),
        ]
    );
    assert!(diff
        .reason
        .unwrap()
        .contains("service mode change is not allowed"));
    let script = &steps[0].step.script;
    let guard = script
        .find(&DockerObject::Service.owned_guard("agent", "default"))
        .unwrap();
    let rm = script.find("docker service rm agent").unwrap();
    let create = script.find("docker service create").unwrap();
    assert!(guard < rm && rm < create, "{script}");
    assert!(script.contains("--replicas 1"));
    assert_valid_sh(script);
}

#[test]
fn a_service_of_another_project_is_adopted_when_it_matches_and_never_changed() {
    let manager = manager("cluster");
    let adopted = SwarmServiceSpec {
        scope: scope("other"),
        ..api()
    };
    assert_eq!(plan(&adopted, "api", &manager).0.action(), Action::NoOp);
    let differs = SwarmServiceSpec {
        replicas: Some(5),
        ..adopted.clone()
    };
    let error = differs
        .diff_with("api", &facts(&manager), &recorded_versions())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("differs (replicas), and was not created by project other; corral does not change what it does not manage"),
        "{error}"
    );
    assert!(differs
        .steps_with("api", &facts(&manager), &recorded_versions())
        .is_err());
}

#[test]
fn a_new_version_of_a_secret_is_swapped_in_with_one_update() {
    let manager = manager("cluster");
    let mut versions = recorded_versions();
    versions.insert(
        (ObjectClass::Secret, "api_token".into()),
        Some("api_token_2f9c0a1b3d4e".into()),
    );
    let facts = facts(&manager);
    let diff = api().diff_with("api", &facts, &versions).unwrap();
    assert_eq!(diff.action(), Action::Update);
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar(
            "secrets.api_token",
            "api_token_v1",
            "api_token_2f9c0a1b3d4e"
        )]
    );
    let steps = api().steps_with("api", &facts, &versions).unwrap();
    let script = &steps[0].step.script;
    assert!(
        script.contains(&format!(
            "docker service update --detach=false --quiet {} {} api",
            flag("--secret-rm", "api_token_v1"),
            flag(
                "--secret-add",
                "source=api_token_2f9c0a1b3d4e,target=api_token"
            )
        )),
        "{script}"
    );
    // Not known yet (a swarm without its key): shown so, never guessed.
    versions.insert((ObjectClass::Secret, "api_token".into()), None);
    let diff = api().diff_with("api", &facts, &versions).unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar(
            "secrets.api_token",
            "api_token_v1",
            KNOWN_AFTER_APPLY
        )]
    );
}

#[test]
fn a_removed_target_keeps_the_other_targets_of_the_same_object() {
    let manager = manager("cluster");
    let facts = facts(&manager);
    // The recorded `api` has api_token_v1 at `api_token`; declared at a second target
    // too, then the recorded one dropped: `--secret-rm` (by name) would take both.
    let spec = SwarmServiceSpec {
        secrets: vec![ObjectRef {
            source: "api_token".into(),
            target: Some("/etc/token".into()),
        }],
        ..api()
    };
    let steps = spec
        .steps_with("api", &facts, &recorded_versions())
        .unwrap();
    let script = &steps[0].step.script;
    assert!(
        script.contains(&flag("--secret-rm", "api_token_v1")),
        "{script}"
    );
    assert!(
        script.contains(&flag(
            "--secret-add",
            "source=api_token_v1,target=/etc/token"
        )),
        "{script}"
    );
    let both = SwarmServiceSpec {
        secrets: vec![
            ObjectRef {
                source: "api_token".into(),
                target: None,
            },
            ObjectRef {
                source: "api_token".into(),
                target: Some("/etc/token".into()),
            },
        ],
        ..api()
    };
    let mut versions = recorded_versions();
    versions.insert(
        (ObjectClass::Secret, "api_token".into()),
        Some("api_token_v1".into()),
    );
    // Added at a second target only: nothing removed, nothing re-added.
    let script = &both.steps_with("api", &facts, &versions).unwrap()[0]
        .step
        .script;
    assert!(!script.contains("--secret-rm"), "{script}");
}

#[test]
fn a_missing_service_is_created_with_corrals_label_and_waited_for() {
    let manager = manager("cluster");
    let spec = SwarmServiceSpec {
        secret_env: BTreeMap::from([("TOKEN".to_owned(), SecretEnv::with_value("t0ken"))]),
        ..api()
    };
    let (diff, steps) = plan(&spec, "web", &manager);
    assert_eq!(diff.action(), Action::Create);
    assert_eq!(
        names(&diff),
        [
            "image",
            "command",
            "mode",
            "replicas",
            "constraints",
            "placement_preferences",
            "env.APP_ENV",
            "env.GREETING",
            "env.RELEASE",
            "env.TOKEN",
            "mounts./srv/api",
            "mounts./var/cache/api",
            "networks",
            "secrets.api_token",
            "configs./etc/api.conf",
            "update.parallelism",
            "update.delay",
            "update.order",
            "update.failure_action",
            "update.monitor",
            "labels.tier",
        ]
    );
    assert!(!format!("{diff:?}").contains("t0ken"));
    let step = &steps[0];
    assert_eq!(step.machine, "n2");
    assert_eq!(
        step.step.description,
        "create service web and wait for its tasks"
    );
    let script = &step.step.script;
    let create = [
        "out=$(TOKEN=t0ken timeout \"$budget\" docker service create --detach=false --quiet --name web".into(),
        flag("--label", "io.corral.managed=default"),
        "--replicas 2".into(),
        flag("--constraint", "node.labels.role==edge"),
        flag("--placement-pref", "spread=node.labels.zone"),
        flag("--env", "APP_ENV=prod"),
        flag("--env", "GREETING=hello world"),
        flag("--env", "RELEASE=2"),
        flag("--env", "TOKEN"),
        flag("--mount", "type=bind,source=/srv/api,target=/srv/api,readonly"),
        flag("--mount", "type=volume,source=api-cache,target=/var/cache/api"),
        "--network appnet --network dbnet".into(),
        flag("--secret", "source=api_token_v1,target=api_token"),
        flag("--config", "source=api_conf_v1,target=/etc/api.conf"),
        "--update-parallelism 2 --update-delay 10s --update-order start-first --update-failure-action rollback --update-monitor 2s".into(),
        flag("--label", "tier=app"),
        "local/busybox:1 sleep 86400 2>&1) || rc=$?\n".into(),
    ];
    assert!(script.contains(&create.join(" ")), "{script}");
    // Waits for the tasks, within a budget that covers the rolling update.
    assert!(script.contains("budget=133\n"), "{script}");
    assert!(script.contains(&format!("docker service ls --filter {}", quote("name=web"))));
    assert!(script.contains("[ \"$desired\" -ge 0 ]"));
    assert_valid_sh(script);
}

#[test]
fn a_swarm_created_by_the_same_apply_gets_the_service_on_its_first_manager() {
    let facts = ClusterFacts {
        members: BTreeMap::new(),
        manager: None,
        inventory: BTreeMap::new(),
    };
    let spec = agent();
    assert_eq!(spec.diff("agent", &facts).unwrap().action(), Action::Create);
    let steps = spec.steps("agent", &facts).unwrap();
    assert_eq!(steps[0].machine, "n1");
    let script = &steps[0].step.script;
    assert!(script.contains(&format!(
        "--mode global {}",
        flag(
            "--publish",
            "published=8080,target=8080,protocol=tcp,mode=host"
        )
    )));
    // A global service must run somewhere: at least one eligible node.
    assert!(script.contains("[ \"$desired\" -ge 1 ]"));
}

#[test]
fn configuration_values_reach_docker_as_they_are() {
    let hostile = "$(touch /tmp/corral-pwned) `id` \"q\" 'q' \\ ; | & \n next";
    let spec = SwarmServiceSpec {
        command: strings(&["sh", "-c", hostile, "-"]),
        env: map(&[("V", hostile)]),
        labels: map(&[("note", hostile)]),
        constraints: strings(&["node.labels.x==$(id)"]),
        ..agent()
    };
    let command = spec.create_command("web", &Versions::new());
    // The words docker would receive, printed by sh one per line (NUL-separated here).
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -- {}; printf '%s\\0' \"$@\"",
            command.strip_prefix("docker ").unwrap()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let argv: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_owned)
        .collect();
    assert!(argv.contains(&format!("V={hostile}")), "{argv:?}");
    assert!(argv.contains(&format!("note={hostile}")));
    assert!(argv.contains(&"node.labels.x==$(id)".to_owned()));
    assert!(argv.ends_with(&strings(&["local/busybox:1", "sh", "-c", hostile, "-"])));
    assert!(!std::path::Path::new("/tmp/corral-pwned").exists());
}

#[test]
fn args_survive_the_clis_shlex() {
    let command = strings(&[
        "sh",
        "-c",
        "echo 'a b' \"$X\" \\n # not a comment",
        "",
        "it's",
    ]);
    assert_eq!(shlex::split(&args_value(&command)).unwrap(), command);
}

#[test]
fn a_paused_update_plans_the_configured_command_again() {
    let manager = manager("failures");
    let (diff, steps) = plan(&agent(), "agent", &manager);
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("command", "false", "httpd -f -p 8080")]
    );
    let script = &steps[0].step.script;
    assert!(
        script.contains(&flag("--args", "'httpd' '-f' '-p' '8080'")),
        "{script}"
    );
}

#[test]
fn services_of_the_project_that_are_not_declared_are_orphans() {
    let manager = manager("failures");
    let addresses = |declared: &BTreeSet<Address>, project: &str| -> Vec<String> {
        orphans(&manager, project, declared)
            .unwrap()
            .iter()
            .map(|o| o.address.to_string())
            .collect()
    };
    assert_eq!(
        addresses(&BTreeSet::new(), "default"),
        [
            "swarm/service.agent",
            "swarm/service.api",
            "swarm/service.stuck"
        ]
    );
    let declared = BTreeSet::from([
        Address::new(KIND, "api", None),
        Address::new(KIND, "agent", None),
    ]);
    assert_eq!(addresses(&declared, "default"), ["swarm/service.stuck"]);
    assert!(addresses(&BTreeSet::new(), "other").is_empty());
    let orphan = &orphans(&manager, "default", &declared).unwrap()[0];
    assert_eq!(
        orphan.attributes,
        [AttrChange::new(
            "image",
            AttrValue::Scalar("local/busybox:1".into()),
            AttrValue::Absent
        )]
    );
}

#[test]
fn the_delete_script_refuses_a_service_of_another_project_and_is_idempotent() {
    let script = DockerObject::Service.delete_script("web", "my project");
    assert!(script.starts_with("set -e\nif docker service inspect web >/dev/null 2>&1; then\n"));
    assert!(script.contains(
        "index .Spec.Labels \"io.corral.managed\"}}' web)\" = 'my project' ] || { echo 'corral: service 'web' is not managed by project ''my project''; left alone'; exit 1; }"
    ), "{script}");
    let guard = script.find("index .Spec.Labels").unwrap();
    let rm = script.find("docker service rm web").unwrap();
    assert!(guard < rm);
    assert_valid_sh(&script);
}

#[test]
fn ingress_ports_on_a_kernel_without_ipvs_are_a_warning() {
    let mut host = HostFacts::default();
    host.probes.insert(
        kernel::KEY.into(),
        recorded::cluster("kernel-features", "lab", &kernel::probe()),
    );
    let members = BTreeMap::from([(
        "n1".to_owned(),
        ClusterMember {
            ip: "10.0.0.1".parse().unwrap(),
            facts: &host,
        },
    )]);
    let facts = ClusterFacts {
        members,
        manager: None,
        inventory: BTreeMap::new(),
    };
    // The recorded agent publishes in host mode: nothing to say.
    assert!(agent().warnings("agent", &facts).is_empty());
    let mut spec = agent();
    spec.ports[0].mode = PublishMode::Ingress;
    let warnings = spec.warnings("agent", &facts);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .contains("publishes 8080/tcp in ingress mode, but the kernel of n1 has no IPVS"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("`mode: host`"));
}

#[test]
fn a_paused_update_is_a_warning() {
    let paused = manager("failures");
    let warnings = agent().warnings("agent", &facts(&paused));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("Docker paused the last update of swarm/service.agent: update paused due to failure or early termination of task "),
        "{}",
        warnings[0]
    );
    // api's update completed.
    assert!(api().warnings("api", &facts(&paused)).is_empty());
}

#[test]
fn start_first_with_host_ports_is_a_warning() {
    let facts = ClusterFacts {
        members: BTreeMap::new(),
        manager: None,
        inventory: BTreeMap::new(),
    };
    let mut spec = agent();
    spec.update.order = Some(UpdateOrder::StartFirst);
    let warnings = spec.warnings("agent", &facts);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("host-mode port already in use"));
}

#[test]
fn an_image_without_digest_matches_the_one_docker_pinned() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let other = format!("sha256:{}", "b".repeat(64));
    assert!(same_image("local/busybox:1", "local/busybox:1"));
    assert!(same_image("busybox", &format!("busybox:latest@{digest}")));
    assert!(same_image(
        "docker.io/library/busybox:1.36",
        &format!("busybox:1.36@{digest}")
    ));
    assert!(same_image(
        "registry.example:5000/app",
        "registry.example:5000/app:latest"
    ));
    assert!(same_image(
        &format!("busybox@{digest}"),
        &format!("busybox:latest@{digest}")
    ));
    assert!(!same_image(
        "busybox:1.36",
        &format!("busybox:1.37@{digest}")
    ));
    assert!(!same_image(
        &format!("busybox@{digest}"),
        &format!("busybox:latest@{other}")
    ));
    assert!(!same_image(&format!("busybox@{digest}"), "busybox:latest"));
    assert!(!same_image("registry.example:5000/app", "app"));
}

#[test]
fn image_references_are_checked() {
    for good in [
        "busybox",
        "local/busybox:1",
        "registry.example:5000/team/app:1.4-rc_1",
        &format!("busybox@sha256:{}", "0".repeat(64)),
        "localhost/app",
    ] {
        assert_eq!(check_image(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "-rm",
        "Busybox",
        "busy box",
        "app:",
        "app:-x",
        "app@sha256:xyz",
        "a//b",
    ] {
        assert!(check_image(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_parse_as_docker_takes_them() {
    let parsed = |text| DockerDuration::parse(text).map(DockerDuration::duration);
    assert_eq!(parsed("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parsed("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parsed("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parsed("0"), Ok(Duration::ZERO));
    for bad in ["", "10", "1.5s", "10 s", "-1s", "5d", "s", "99999999999h"] {
        assert!(parsed(bad).is_err(), "{bad}");
    }
    for (text, shown) in [
        ("90s", "1m30s"),
        ("1500ms", "1s500ms"),
        ("0", "0s"),
        ("2h", "2h"),
    ] {
        assert_eq!(DockerDuration::parse(text).unwrap().to_string(), shown);
    }
}

#[test]
fn a_service_that_does_not_converge_shows_its_failing_tasks() {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Row {
        name: String,
        node: String,
        desired_state: String,
        current_state: String,
        error: String,
    }
    // The recorded tasks, as TASK_FORMAT prints them.
    let recorded = recorded::cluster("service-ps", "failures", &swarm::service_ps_probe());
    let lines: String = recorded
        .output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let r: Row = serde_json::from_str(l).unwrap();
            let fields = [r.name, r.node, r.desired_state, r.current_state, r.error];
            fields.join("|") + "\n"
        })
        .collect();
    let mut awk = std::process::Command::new("awk")
        .args(["-F|", TASK_FILTER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    awk.stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let shown = String::from_utf8(awk.wait_with_output().unwrap().stdout).unwrap();
    assert!(
        shown.contains("on no node: Pending")
            && shown
                .contains("\"no suitable node (scheduling constraints not satisfied on 3 nodes)\""),
        "{shown}"
    );
    assert!(shown.contains(": Failed "), "{shown}");
    assert!(shown.contains("\"task: non-zero exit (1)\""), "{shown}");
    assert!(
        shown.contains("\"host-mode port already in use on 1 node\""),
        "{shown}"
    );
    // Running tasks, and tasks shut down without an error, are not shown.
    assert!(!shown.contains(": Running"), "{shown}");
    assert!(!shown.contains(": Shutdown"), "{shown}");
}

#[test]
fn the_wait_covers_each_batch_of_the_rolling_update() {
    // api: 2 replicas, 2 at a time: one batch of 10 s delay + 2 s monitor.
    assert_eq!(api().wait_budget(), 120 + 13);
    // agent: global on 3 members, one at a time, 5 s monitor.
    assert_eq!(agent().wait_budget(), 120 + 3 * 6);
}

/// A manager's facts of scripts/record-run-state-fixtures.sh's `case`: services, what
/// runs, nodes.
fn run_state_manager(case: &str) -> HostFacts {
    let checked = |fact: &str, probe: &Probe| {
        recorded::checked(
            &format!("run-state/{fact}/{case}"),
            probe,
            "run scripts/record-run-state-fixtures.sh",
        )
    };
    let mut facts = HostFacts::default();
    for (fact, probe) in [
        ("service-inspect", swarm::service_inspect_probe()),
        ("service-run", swarm::service_run_probe()),
        ("node-inspect", swarm::node_inspect_probe()),
    ] {
        facts
            .probes
            .insert(probe.key.clone(), checked(fact, &probe));
    }
    facts
}

/// `web` and `stuck` as scripts/record-run-state-fixtures.sh creates them.
fn run_state_specs() -> [(&'static str, SwarmServiceSpec); 2] {
    let web = SwarmServiceSpec {
        image: "local/busybox:1".into(),
        command: strings(&[
            "sh",
            "-c",
            "mkdir -p /w && echo ok >/w/index.html && httpd -f -p 8080 -h /w",
        ]),
        mode: Mode::Global,
        ports: vec![Port {
            published: 18081,
            target: 8080,
            mode: PublishMode::Host,
            protocol: Protocol::Tcp,
        }],
        scope: scope("default"),
        ..SwarmServiceSpec::default()
    };
    let stuck = SwarmServiceSpec {
        image: "local/busybox:1".into(),
        command: strings(&["sleep", "86400"]),
        constraints: strings(&["node.labels.role==nowhere"]),
        scope: scope("default"),
        ..SwarmServiceSpec::default()
    };
    [("web", web), ("stuck", stuck)]
}

/// The plan compared specs only, and said nothing of a service whose tasks did not run
/// (issue 22): now its tasks are compared too, the reason is the tasks', and the step is
/// a forced update, labelled so.
#[test]
fn a_service_that_does_not_run_as_declared_is_drift_with_a_forced_update() {
    let converged = run_state_manager("converged");
    let (diff, steps) = plan(&run_state_specs()[0].1, "web", &converged);
    assert_eq!(diff.action, Some(Action::NoOp), "{diff:?}");
    assert!(steps.is_empty());

    let taken = run_state_manager("port-taken");
    let [(_, web), (_, stuck)] = run_state_specs();
    let (diff, steps) = plan(&web, "web", &taken);
    assert_eq!(diff.action, Some(Action::Update), "{diff:?}");
    assert_eq!(diff.attributes.len(), 1, "{diff:?}");
    let AttrValue::Scalar(why) = &diff.attributes[0].before else {
        panic!("{diff:?}")
    };
    assert!(
        why.starts_with("2/3 tasks running: n2: task failed: starting container failed:")
            && why.ends_with("port is already allocated"),
        "{why}"
    );
    assert!(diff
        .reason
        .unwrap()
        .contains("docker service update --force"));
    assert_eq!(steps.len(), 1);
    assert!(
        steps[0].step.description.contains("forced update"),
        "{}",
        steps[0].step.description
    );
    assert!(
        steps[0]
            .step
            .script
            .contains("docker service update --detach=false --quiet --force web"),
        "{}",
        steps[0].step.script
    );
    let (diff, _) = plan(&stuck, "stuck", &taken);
    assert_eq!(
        diff.attributes[0].before,
        AttrValue::Scalar("0/1 tasks running: stuck.1: task pending: no suitable node (scheduling constraints not satisfied on 3 nodes)".into())
    );
}

/// A global service's wait counted with `service ls`, which printed `0/0` for a service
/// whose tasks failed (a task waiting to restart is desired `ready`, not counted): it
/// counts nodes from `service ps`, says what it waited for, and prints the tasks' errors.
#[test]
fn the_wait_for_a_global_service_counts_its_nodes_and_names_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker");
    std::fs::write(
        &docker,
        "#!/bin/sh\ncase \"$*\" in\n'service inspect --format {{if .Spec.Mode.Global}}'*) echo 'global ' ;;\n'service ls'*) echo 'web 0/0' ;;\n*desired-state=ready*) printf '%s\\n' 'n1|Running 9 seconds ago' 'n2|Ready 1 second ago' ;;\n'service ps --no-trunc'*) printf '%s\\n' 'web.x|n1|Running|Running 9 seconds ago|' 'web.y|n2|Ready|Ready 1 second ago|' 'web.y|n2|Shutdown|Failed 2 seconds ago|\"starting container failed: port is already allocated\"' ;;\nesac\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = converge_script("web", "", "true", 0, 1);
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("web.y on n2: Failed 2 seconds ago \"starting container failed: port is already allocated\""),
        "{said}"
    );
    assert!(
        said.contains("corral: waited 0s for global service web to run a task on each of the 2 nodes Docker placed one on: it runs on 1"),
        "{said}"
    );
}
