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
