//! The command line on recorded facts (`plan --facts`): no host, no lab.

use assert_cmd::Command;

fn plan(extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["plan", "examples/", "fixtures/inventory.yaml"])
        .args(["--facts", "fixtures/facts/lab-converged.json"])
        .args(extra)
        .assert()
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// A `--target` that names nothing is an error with the nearest address, not a plan that
/// silently does nothing.
#[test]
fn target_typo_is_an_error_with_the_nearest_address() {
    let assert = plan(&["--target", "os/file.motdd"]).code(1);
    let said = stderr(&assert);
    assert!(
        said.contains("--target: `os/file.motdd` names no resource"),
        "{said}"
    );
    assert!(said.contains("did you mean `os/file.motd`?"), "{said}");
    let assert = plan(&["--exclude", "os/sysctl.baseline[n9]"]).code(1);
    assert!(stderr(&assert).contains("--exclude"), "{}", stderr(&assert));
}

#[test]
fn existing_targets_plan() {
    plan(&["--target", "os/file.motd", "--detailed-exitcode"]).code(0);
    plan(&[
        "--target",
        "os/file.motd[n1]",
        "--exclude",
        "os/sysctl.baseline",
    ])
    .code(0);
}

/// The help shows the address form that works.
#[test]
fn help_shows_addresses() {
    let out = Command::cargo_bin("corral")
        .unwrap()
        .args(["plan", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("`os/file.site`") && help.contains("`os/file.site[n1]`"),
        "{help}"
    );
}

/// A converged cluster (swarm, network, services, volume) planned from its recorded facts,
/// as a pull request's CI does without reaching the hosts: what the managers said is in
/// the facts file, and the plan is empty.
#[test]
fn a_converged_cluster_plans_empty_from_its_facts_file() {
    let assert = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["plan", "examples/krill/", "fixtures/inventory.yaml"])
        .args(["--facts", "fixtures/facts/lab-cluster.json"])
        .arg("--detailed-exitcode")
        .assert();
    let out = assert.get_output();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three-layer example (a secret, a stack from a Compose file) planned from facts
/// recorded after it converged: empty; then edits of a copy, planned from the same facts.
#[test]
fn a_converged_stack_plans_empty_and_each_edit_exactly_from_its_facts_file() {
    let plan = |dir: &std::path::Path| {
        let out = Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(["plan", "--project", "three-layer"])
            .arg(dir)
            .args(["fixtures/inventory.yaml"])
            .args(["--facts", "fixtures/facts/lab-stack.json"])
            .args(["--detailed-exitcode", "--format", "json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text, err)
    };
    let example = std::path::Path::new("examples/three-layer");
    let (code, out, err) = plan(example);
    assert_eq!(code, Some(0), "{out}{err}");

    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path();
    for sub in ["", "app", "secrets"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(example.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    let compose = dir.join("app/compose.yaml");
    let original = std::fs::read_to_string(&compose).unwrap();
    let changes = |out: &str| -> Vec<(String, Vec<String>)> {
        let plan: serde_json::Value = serde_json::from_str(out).unwrap();
        plan["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["actions"] != serde_json::json!(["no-op"]))
            .map(|c| {
                // Attribute names, in order (serde_json's maps keep them sorted).
                let names = c["after"]
                    .as_object()
                    .map(|a| a.keys().cloned().collect())
                    .unwrap_or_default();
                (c["address"].as_str().unwrap().to_owned(), names)
            })
            .collect()
    };

    // One service's image and replicas: exactly those two attributes.
    let edited = original
        .replace(
            "  api:\n    image: local/busybox:1",
            "  api:\n    image: local/busybox:2",
        )
        .replace("replicas: 1", "replicas: 3");
    std::fs::write(&compose, edited).unwrap();
    let (code, out, err) = plan(dir);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(
        changes(&out),
        [(
            "swarm/stack.shop".to_owned(),
            vec!["api.image".to_owned(), "api.replicas".to_owned()]
        )],
        "{out}"
    );

    // A service gone from the file: its removal only. (Its config stays declared: a facts
    // file names versions only for the very secret values it was read with.)
    let start = original.find("  web:\n").unwrap();
    let end = original.find("networks:\n  dbnet").unwrap();
    let without_web = format!("{}{}", &original[..start], &original[end..]);
    std::fs::write(&compose, without_web).unwrap();
    let (code, out, err) = plan(dir);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(
        changes(&out),
        [("swarm/stack.shop".to_owned(), vec!["web".to_owned()])],
        "{out}"
    );
}

/// A stack of the same name that another project deployed is never deployed over (and
/// pruned): a plan error naming its services.
#[test]
fn a_stack_another_project_deployed_is_a_plan_error() {
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["plan", "--project", "another", "examples/three-layer"])
        .args([
            "fixtures/inventory.yaml",
            "--facts",
            "fixtures/facts/lab-stack.json",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("stack shop on the swarm has services that project another did not deploy (shop_api, shop_db, shop_web)"),
        "{text}"
    );
}

/// `corral show PLANFILE` prints a saved plan as `plan` printed it, in each format,
/// without the configuration or the hosts; anything else is an error that says so.
#[test]
fn show_prints_a_saved_plan_as_plan_did() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("reviewed.plan");
    let corral = |args: &[&str]| {
        Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    };
    for format in ["human", "json", "markdown"] {
        let planned = corral(&[
            "plan",
            "--project",
            "three-layer",
            "examples/three-layer",
            "fixtures/inventory.yaml",
            "--facts",
            "fixtures/facts/lab-stack.json",
            "--format",
            format,
            "-o",
            saved.to_str().unwrap(),
        ]);
        assert_eq!(planned.status.code(), Some(0), "{planned:?}");
        let shown = corral(&["show", saved.to_str().unwrap(), "--format", format]);
        assert_eq!(shown.status.code(), Some(0), "{shown:?}");
        assert_eq!(
            String::from_utf8_lossy(&shown.stdout),
            String::from_utf8_lossy(&planned.stdout),
            "{format}"
        );
    }
    let not_a_plan = corral(&["show", "examples/baseline.yaml"]);
    assert_eq!(not_a_plan.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_a_plan.stderr).contains("is not a saved plan"));
}

/// `drift` says what drifted (exit 2) or that nothing did (exit 0); `plan` groups identical
/// changes on several machines unless `--expand`.
#[test]
fn drift_reports_and_plan_groups_unless_expanded() {
    let corral = |args: &[&str], facts: &str| {
        Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(args)
            .args(["examples/", "fixtures/inventory.yaml", "--facts", facts])
            .output()
            .unwrap()
    };
    let stdout =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let drifted = corral(&["drift"], "fixtures/facts/lab-drift.json");
    assert_eq!(drifted.status.code(), Some(2), "{drifted:?}");
    assert!(stdout(&drifted).starts_with("Drift: 3 resource instance(s) on 2 host(s)"));
    let in_sync = corral(&["drift"], "fixtures/facts/lab-converged.json");
    assert_eq!(in_sync.status.code(), Some(0), "{in_sync:?}");
    assert_eq!(
        stdout(&in_sync),
        "No drift. The hosts match the configuration.\n"
    );
    let markdown = corral(
        &["drift", "--format", "markdown"],
        "fixtures/facts/lab-drift.json",
    );
    assert!(stdout(&markdown).starts_with("### corral drift: "));

    let grouped = corral(&["plan"], "fixtures/facts/lab-fresh.json");
    assert!(stdout(&grouped).contains("+ os/sysctl.baseline on n1, n2, n3 (3 machines)\n"));
    let expanded = corral(&["plan", "--expand"], "fixtures/facts/lab-fresh.json");
    assert!(stdout(&expanded).contains("+ os/sysctl.baseline[n2]\n"));
    assert!(!stdout(&expanded).contains("machines)"));
}

/// Tried as a new user would: the configuration without its inventory planned "No
/// changes" and exited 0. It is an error that names the likely cause, in every command.
#[test]
fn a_configuration_without_machines_is_an_error_naming_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        "kind: os/sysctl\nname: baseline\nspecification:\n  machines: all\n  values: {kernel.kptr_restrict: \"2\"}\n",
    )
    .unwrap();
    for command in ["validate", "plan"] {
        let out = Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .arg(command)
            .arg(&site)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("the configuration declares no machines"),
            "{command}: {said}"
        );
        assert!(said.contains("inventory"), "{command}: {said}");
    }
    // Names of machines that no inventory declares: each error says the same.
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["validate", "examples/three-layer/layers.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("names unknown machine `n1` in `managers`"),
        "{said}"
    );
    assert!(
        said.contains("documents were loaded; pass the inventory"),
        "{said}"
    );
}

/// A selector that matches no machine plans nothing: `validate` and `plan` warn, naming
/// the resource and quoting the selector.
#[test]
fn a_selector_matching_no_machine_is_a_warning_naming_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("db.yaml");
    std::fs::write(
        &extra,
        "kind: os/file\nname: db-motd\nspecification:\n  machines: {labels: {role: db}}\n  path: /etc/motd.db\n  content: hi\n",
    )
    .unwrap();
    let warning = "Warning: os/file.db-motd: machines: {labels: {role: db}} matches no machine";
    let validated = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args([
            "validate",
            "--project",
            "examples",
            "examples/",
            "fixtures/inventory.yaml",
        ])
        .arg(&extra)
        .output()
        .unwrap();
    assert_eq!(validated.status.code(), Some(0), "{validated:?}");
    let said = String::from_utf8_lossy(&validated.stderr);
    assert!(said.contains(warning), "{said}");
    let planned = plan(&["--project", "examples", extra.to_str().unwrap()]).code(0);
    let out = String::from_utf8_lossy(&planned.get_output().stdout).into_owned();
    assert!(out.contains(warning), "{out}");
}

/// With `CORRAL_SSH_CONFIG` set, clap's usage line for a missing PATH showed
/// `--ssh-config <FILE>` as if it were required.
#[test]
fn options_from_the_environment_do_not_read_as_required_in_the_usage_line() {
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("CORRAL_SSH_CONFIG", "/nonexistent/ssh_config")
        .env("CORRAL_PROJECT", "site")
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("<PATH>"), "{said}");
    assert!(
        said.contains("Usage: corral plan [OPTIONS] <PATH>..."),
        "{said}"
    );
    assert!(!said.contains("--ssh-config"), "{said}");
}

/// Completions and manual pages come from the clap definitions: the bash script knows the
/// commands, the page is roff naming corral, and `--dir` writes a page per command.
#[test]
fn completions_and_man_pages_come_from_the_command_line_definitions() {
    let corral = |args: &[&str]| {
        Command::cargo_bin("corral")
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    let bash = corral(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0), "{bash:?}");
    let script = String::from_utf8_lossy(&bash.stdout);
    for command in [
        "validate",
        "plan",
        "apply",
        "drift",
        "show",
        "force-unlock",
        "--ssh-config",
    ] {
        assert!(
            script.contains(command),
            "{command} missing from:\n{script}"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = corral(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("corral"),
            "{shell}"
        );
    }
    assert_eq!(corral(&["completions", "tcsh"]).status.code(), Some(1));
    let man = corral(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{man:?}");
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH corral 1"), "{page}");
    assert!(page.contains(".SH NAME\ncorral"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let written = corral(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(written.status.code(), Some(0), "{written:?}");
    let plan = std::fs::read_to_string(pages.join("corral-plan.1")).unwrap();
    assert!(plan.contains(".TH corral-plan 1"), "{plan}");
    assert!(pages.join("corral.1").exists());
}

/// On a terminal (a pseudo-terminal from `script`), plans and errors are coloured unless
/// `--no-color` (anywhere on the line) or `NO_COLOR` says otherwise.
#[test]
fn no_color_turns_colour_off_in_plans_and_errors() {
    if std::process::Command::new("script")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to give corral a terminal");
        return;
    }
    let corral = assert_cmd::cargo::cargo_bin("corral");
    let on_a_terminal = |args: &str, no_color_env: bool| {
        let mut command = std::process::Command::new("script");
        command
            .args(["-qec", &format!("{} {args}", corral.display()), "/dev/null"])
            .env_remove("NO_COLOR");
        if no_color_env {
            command.env("NO_COLOR", "1");
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains('\x1b')
    };
    let plan = "plan examples/ fixtures/inventory.yaml --facts fixtures/facts/lab-drift.json";
    let error = "validate tests/inputs/inventory.yaml tests/inputs/errors/wrong-type.yaml";
    assert!(
        on_a_terminal(plan, false),
        "the plan is coloured on a terminal"
    );
    assert!(
        on_a_terminal(error, false),
        "errors are coloured on a terminal"
    );
    assert!(!on_a_terminal(&format!("{plan} --no-color"), false));
    assert!(!on_a_terminal(&format!("--no-color {error}"), false));
    assert!(!on_a_terminal(plan, true));
}

/// A reload an earlier apply left owed (`--target` of the file alone, recorded on n2 in
/// fixtures/facts/lab-owed.json) is planned, with since when and why, even with nothing
/// else to change and with `--target` of the service; `--target` of the file alone does
/// not plan it.
#[test]
fn an_owed_reload_is_planned_until_it_is_done() {
    let plan = |extra: &[&str]| {
        let out = Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args([
                "plan",
                "--project",
                "e2e-owed",
                "tests/inputs/e2e/owed.yaml",
            ])
            .args([
                "fixtures/inventory.yaml",
                "--facts",
                "fixtures/facts/lab-owed.json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for extra in [&[][..], &["--target", "os/service.owed"]] {
        let shown = plan(extra);
        assert!(
            shown.contains("# os/service.owed[n2] will be updated in place\n  # (reload owed since 2026-12-07 07:30 UTC, because os/file.owed-config[n2] changed)"),
            "{shown}"
        );
        assert!(
            shown.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
            "{shown}"
        );
    }
    assert!(plan(&["--target", "os/file.owed-config"]).contains("No changes."));
}

/// `--target` of a file a running service depends on says the service is left owing its
/// restart.
#[test]
fn a_targeted_change_says_what_it_leaves_owed() {
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("examples");
    std::fs::create_dir_all(examples.join("files")).unwrap();
    for entry in std::fs::read_dir("examples/files").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            examples.join("files").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let baseline = std::fs::read_to_string("examples/baseline.yaml")
        .unwrap()
        .replace("content: \"INTERVAL=30\\n\"", "content: \"INTERVAL=10\\n\"");
    assert!(baseline.contains("INTERVAL=10"));
    std::fs::write(examples.join("baseline.yaml"), baseline).unwrap();
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("plan")
        .arg(&examples)
        .args(["fixtures/inventory.yaml", "--expand"])
        .args(["--target", "os/file.heartbeat-config[n1]"])
        .args(["--facts", "fixtures/facts/lab-converged.json"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        plan.contains("(os/service.heartbeat[n1] is not in this apply: it will owe a restart, which plans show until it is done)"),
        "{plan}"
    );
}

/// `on_change: reload`: a changed input makes the plan say the running service is
/// reloaded, not restarted.
#[test]
fn a_service_that_reloads_on_change_is_planned_as_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let examples = dir.path().join("examples");
    std::fs::create_dir_all(examples.join("files")).unwrap();
    for entry in std::fs::read_dir("examples/files").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            examples.join("files").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let baseline = std::fs::read_to_string("examples/baseline.yaml")
        .unwrap()
        .replace("content: \"INTERVAL=30\\n\"", "content: \"INTERVAL=10\\n\"")
        .replace(
            "  unit: corral-heartbeat.service\n",
            "  unit: corral-heartbeat.service\n  on_change: reload\n",
        );
    assert!(baseline.contains("on_change: reload") && baseline.contains("INTERVAL=10"));
    std::fs::write(examples.join("baseline.yaml"), baseline).unwrap();
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("plan")
        .arg(&examples)
        .args([
            "fixtures/inventory.yaml",
            "--target",
            "os/service.heartbeat[n1]",
        ])
        .args(["--facts", "fixtures/facts/lab-converged.json"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        plan.contains("(reloaded because os/file.heartbeat-config[n1] changes)"),
        "{plan}"
    );
}

/// `corral facts … -o /dev/null` as root replaced `/dev/null` with a regular file. Every
/// `-o`: a character device (made with mknod) or a FIFO is written in place, `-` is stdout
/// (the plan for the reader then goes to stderr), a directory is refused.
#[test]
fn output_files_never_replace_devices_fifos_or_directories() {
    use std::os::unix::fs::FileTypeExt as _;
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success());
    plan(&["-o", null.to_str().unwrap()]).code(0);
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "{kind:?}");

    let fifo = dir.path().join("plan.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    plan(&["-o", fifo.to_str().unwrap()]).code(0);
    assert!(reader.join().unwrap().contains("\"corral_saved_plan\""));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    let assert = plan(&["-o", dir.path().to_str().unwrap()]).code(1);
    assert!(
        stderr(&assert).contains("is a directory"),
        "{}",
        stderr(&assert)
    );

    let assert = plan(&["-o", "-"]).code(0);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let saved: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(saved.get("corral_saved_plan").is_some(), "{stdout}");
    assert!(
        stderr(&assert).contains("No changes."),
        "{}",
        stderr(&assert)
    );
}

/// A plan that is incomplete because of a resource (not a host) does not suggest `--limit`;
/// with `--format json` the hint says where in the JSON the problems are, and with a host
/// that could not be read, `--limit` is suggested.
#[test]
fn incomplete_plans_say_where_the_problems_are_and_suggest_limit_only_for_hosts() {
    let plan = |format: &str, facts: &str| {
        Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(["plan", "--project", "another", "examples/three-layer"])
            .args(["fixtures/inventory.yaml", "--facts", facts])
            .args(["--format", format])
            .output()
            .unwrap()
    };
    // As one line: miette wraps long messages.
    let said = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let human = plan("human", "fixtures/facts/lab-stack.json");
    assert_eq!(human.status.code(), Some(1));
    assert!(said(&human).contains("listed above"), "{}", said(&human));
    assert!(!said(&human).contains("--limit"), "{}", said(&human));
    let json = plan("json", "fixtures/facts/lab-stack.json");
    assert!(
        said(&json)
            .contains("in the JSON plan on stdout, in its `unreachable` and `errors` fields"),
        "{}",
        said(&json)
    );
    assert!(!said(&json).contains("above"), "{}", said(&json));
    let dir = tempfile::tempdir().unwrap();
    let mut facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read("fixtures/facts/lab-stack.json").unwrap()).unwrap();
    facts["hosts"].as_object_mut().unwrap().remove("n3");
    let without_n3 = dir.path().join("facts.json");
    std::fs::write(&without_n3, facts.to_string()).unwrap();
    let host = plan("human", without_n3.to_str().unwrap());
    assert!(said(&host).contains("with --limit"), "{}", said(&host));
}

/// The `--target` error and its help agree on what an address is.
#[test]
fn a_malformed_target_says_what_an_address_is() {
    let assert = plan(&["--target", "site"]).code(1);
    let said = stderr(&assert);
    assert!(
        said.contains("`site` is not an address: write `kind.name` (`os/file.site`)"),
        "{said}"
    );
    assert!(!said.contains("namespace"), "{said}");
}

/// `graph` takes `--target`, `--exclude` and `--limit` as `plan` does: the part of the
/// graph such a plan covers, and the same errors for a typo.
#[test]
fn graph_prints_the_part_a_target_and_limit_select() {
    let graph = |extra: &[&str]| {
        Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(["graph", "examples/", "fixtures/inventory.yaml"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = graph(&["--target", "os/service.heartbeat", "--limit", "n2"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(
        dot.contains("\"os/file.heartbeat-config[n2]\" -> \"os/service.heartbeat[n2]\";"),
        "{dot}"
    );
    assert!(
        !dot.contains("[n1]") && !dot.contains("os/file.motd"),
        "{dot}"
    );
    let out = graph(&["--exclude", "os/file.motd"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("os/file.motd"));
    let out = graph(&["--target", "os/file.motdd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `os/file.motd`?"));
}

/// `force-unlock` takes one machine as before, several as `n1,n2`, or `--all`; a machine
/// list without the configuration, or an unknown machine, is an error before any host is
/// reached.
#[test]
fn force_unlock_takes_a_list_of_machines_or_all() {
    let unlock = |args: &[&str]| {
        let out = Command::cargo_bin("corral")
            .unwrap()
            .env("NO_COLOR", "1")
            .arg("force-unlock")
            .args(args)
            .write_stdin("")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        (out.status.code(), said)
    };
    let config = ["examples/", "fixtures/inventory.yaml"];
    let (code, said) = unlock(&["n1,n2"]);
    assert_eq!(code, Some(1));
    assert!(
        said.contains("needs the machines, then the configuration's paths"),
        "{said}"
    );
    let (code, said) = unlock(&[&["n1,n9"][..], &config].concat());
    assert_eq!(code, Some(1));
    assert!(said.contains("there is no machine `n9`"), "{said}");
    // Past the selection: each form stops only at the missing confirmation.
    for args in [&["n2"][..], &["n1,n2"], &["--all"]] {
        let (code, said) = unlock(&[args, &config].concat());
        assert_eq!(code, Some(1), "{args:?}");
        assert!(said.contains("stdin is not a terminal"), "{args:?}: {said}");
    }
    let (_, said) = unlock(&["--all", "examples/", "fixtures/nowhere.yaml"]);
    assert!(
        !said.contains("no machine"),
        "--all takes every argument as a path: {said}"
    );
}

/// `--target INSTANCE` selects every resource a module instance expanded to (and what
/// they depend on), nothing of the other instances. (The recorded facts are the
/// examples', so each selected instance is an error naming it: that is what is checked.)
#[test]
fn target_of_a_module_instance_selects_its_resources() {
    let out = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .args([
            "plan",
            "tests/inputs/modules/site.yaml",
            "fixtures/inventory.yaml",
        ])
        .args([
            "--facts",
            "fixtures/facts/lab-converged.json",
            "--target",
            "front",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut planned: Vec<&str> = plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["address"].as_str().unwrap())
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        [
            "os/file.front.conf[n1]",
            "os/file.front.index[n1]",
            "os/package.front.base[n1]",
            "os/sysctl.shared[n1]"
        ],
        "{plan}"
    );
}

/// A Compose key `docker stack deploy` ignores harmlessly is a warning of `validate`, at the
/// Compose file's line, and the configuration is valid.
#[test]
fn a_compose_key_stack_deploy_ignores_and_an_unused_variable_are_validate_warnings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "version: \"3.8\"\nservices:\n  web:\n    image: local/busybox:1\n    container_name: web\n",
    )
    .unwrap();
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        "kind: swarm/cluster\nname: main\nspecification: { managers: [n1] }\n---\nkind: swarm/stack\nname: app\nspecification: { compose: compose.yaml, variables: { UNUSED: x } }\n",
    )
    .unwrap();
    let validated = Command::cargo_bin("corral")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("validate")
        .arg(&site)
        .arg("fixtures/inventory.yaml")
        .output()
        .unwrap();
    assert_eq!(validated.status.code(), Some(0), "{validated:?}");
    let said = String::from_utf8_lossy(&validated.stderr);
    assert!(
        said.contains("Warning: swarm/stack.app: ")
            && said.contains(
                "compose.yaml:5:5: `docker stack deploy` ignores `services.web.container_name`"
            ),
        "{said}"
    );
    // A variable the file never refers to is said by validate too, once.
    assert_eq!(
        said.matches("the variable `UNUSED` is declared, and the Compose file `compose.yaml` never refers to it").count(),
        1,
        "{said}"
    );
}

/// `corral validate layers.yaml inv.yaml` from inside the configuration's folder: a bare
/// file name's directory is `""`, which `source:` and `compose:` paths were resolved
/// against and refused as outside the configuration; `./layers.yaml` was accepted.
#[test]
fn relative_paths_resolve_from_a_bare_file_name_in_the_current_folder() {
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path();
    let example = std::path::Path::new("examples/three-layer");
    for sub in ["", "app", "secrets"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(example.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    std::fs::copy("fixtures/inventory.yaml", dir.join("inv.yaml")).unwrap();
    for layers in ["layers.yaml", "./layers.yaml"] {
        let out = Command::cargo_bin("corral")
            .unwrap()
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(["validate", "--project", "three-layer", layers, "inv.yaml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{layers}: {out:?}");
    }
}

/// The exit statuses are listed where an operator looks: `corral --help` and the man page.
#[test]
fn help_and_man_list_the_exit_statuses() {
    let corral = |args: &[&str]| {
        Command::cargo_bin("corral")
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    let help = corral(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    let help = String::from_utf8_lossy(&help.stdout);
    let man = corral(&["man"]);
    let man = String::from_utf8_lossy(&man.stdout);
    for text in [&*help, &*man] {
        assert!(text.contains("Exit status:"), "{text}");
        for line in ["2    success with changes", "143  terminated (SIGTERM)"] {
            assert!(text.contains(line), "`{line}` missing from {text}");
        }
    }
}

/// `import` printed an inventory that does not load as a Rust struct
/// (`ConfigErrors { errors: [ConfigError { message: …`): it flattened the diagnostic with
/// `{e:?}`. It is reported as `validate` reports it, with the place and the hint.
#[test]
fn import_reports_a_broken_inventory_as_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "kind: infrastructure/machine\nname: n1\nspec:\n  ip: 10.0.0.1\n",
    )
    .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("corral"))
        .env("NO_COLOR", "1")
        .arg("import")
        .arg(&inventory)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains("ConfigError"), "{said}");
    assert!(said.contains("unknown document field `spec`"), "{said}");
    assert!(said.contains("did you mean `specification`?"), "{said}");
    assert!(said.contains("inventory.yaml:3:1"), "{said}");
}

/// A signal outside an apply's locks ends the run at once, with 130, though the command is
/// still waiting on a host (here an ssh whose proxy never answers, so nothing leaves this
/// machine); the status is decided in `main`, not by `process::exit` in the handler.
#[test]
fn an_interrupt_while_reading_hosts_exits_130_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ssh_config = dir.path().join("ssh_config");
    std::fs::write(
        &ssh_config,
        "Host *\n  ProxyCommand sleep 60\n  StrictHostKeyChecking yes\n  UserKnownHostsFile /dev/null\n",
    )
    .unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("corral"))
        .env("NO_COLOR", "1")
        .args([
            "plan",
            "examples/",
            "fixtures/inventory.yaml",
            "--ssh-config",
        ])
        .arg(&ssh_config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(said.contains("Interrupted."), "{said}");
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}: {said}",
        sent.elapsed()
    );
}
