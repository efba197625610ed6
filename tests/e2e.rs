//! End to end on real hosts: a lab of three containers with systemd, sshd, dockerd and
//! glusterd (TESTBED.md), brought up by `corral lab up` under its own name and subnet, and
//! removed at the end, also when a step fails.
//!
//! Ignored by a plain `cargo test`, and reported as ignored: `scripts/test.sh` (which installs
//! and starts what the lab needs) runs it with `--run-ignored all`.

mod common;

use common::{assert_success, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const LAB: &str = "corral-e2e";
const SUBNET: &str = "10.223.0.0/24";
const MACHINES: [&str; 3] = ["n1", "n2", "n3"];

/// The lab of this test; `Drop` takes it down whatever happened.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn up() -> Lab {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-lab");
        let lab = Lab { dir };
        common::lab_up(LAB, SUBNET, &lab.dir);
        lab
    }

    fn inventory(&self) -> String {
        self.dir.join("inventory.yaml").display().to_string()
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// Runs a command on a lab host with the host's own tools.
    fn sh(&self, machine: &str, command: &str) -> String {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .arg(machine)
            .arg(command)
            .output()
            .expect("ssh runs");
        assert_success(&out, &format!("ssh {machine} {command}"));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `corral ARGS… CONFIG… INVENTORY` with the lab's ssh_config; plans are expanded
    /// (each instance on its own), as the checks below look for instances.
    fn corral(&self, args: &[&str], config: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if matches!(args.first(), Some(&("plan" | "drift" | "apply"))) {
            all.insert(1, "--expand".to_owned());
        }
        all.extend(config.iter().map(|s| s.to_string()));
        all.push(self.inventory());
        self.corral_exact(&all)
    }

    /// `corral ARGS…` with the lab's ssh_config and nothing added.
    fn corral_exact(&self, all: &[String]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
        command
            .args(all)
            .env("CORRAL_SSH_CONFIG", self.ssh_config())
            // Examples copied under the target directory find the repository's modules
            // wherever that directory is (CARGO_TARGET_DIR may be outside the repository).
            .env(
                "CORRAL_MODULE_PATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/modules"),
            )
            .env("NO_COLOR", "1");
        command.output().expect("corral runs")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        common::lab_down(LAB, &self.dir);
    }
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}:\n{}", text(out));
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Addresses of the changes in a JSON plan.
fn planned_addresses(out: &Output) -> Vec<String> {
    let plan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", text(out)));
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
#[ignore = "end-to-end on a lab of containers; scripts/test.sh runs it (--run-ignored all)"]
fn lab_end_to_end() {
    let lab = Lab::up();
    apply_to_fresh_hosts(&lab);
    links_are_never_followed(&lab);
    empty_file_converges(&lab);
    first_apply_ends_services_on_their_configuration(&lab);
    another_folder_never_deletes_this_ones_resources(&lab);
    sysctls_converge_in_one_apply(&lab);
    hand_made_drift_is_exactly_that_change(&lab);
    ci_example_scripts_report_drift_and_plan_pull_requests(&lab);
    warm_connections_are_reused_until_a_setting_changes(&lab);
    changed_dependency_restarts_service(&lab);
    a_targeted_apply_leaves_a_reload_owed_until_it_is_done(&lab);
    failed_step_skips_dependents_only(&lab);
    removed_resources_are_deleted(&lab);
    lock_blocks_a_second_apply(&lab);
    hung_host_is_reported_after_its_deadline(&lab);
    timings_name_each_host_and_the_critical_path(&lab);
    hung_step_fails_at_its_deadline(&lab);
    interrupt_during_a_lock_wait_leaves_no_lock_and_no_master(&lab);
    a_plan_ends_its_masters_without_ssh_exit(&lab);
    locks_are_named_by_account_warned_and_unlocked_together(&lab);
    saved_plan_is_applied_as_reviewed_or_refused_when_stale(&lab);
    swarm_from_blank_hosts_in_one_apply(&lab);
    compose_keys_stack_deploy_accepts_are_deployed(&lab);
    a_stack_service_that_does_not_run_is_restarted(&lab);
    cluster_layer_on_the_swarm(&lab);
    a_service_that_does_not_run_is_drift_until_restarted(&lab);
    a_manager_that_allows_few_sessions_gets_every_service(&lab);
    a_real_stack_takes_its_variables(&lab);
    saved_plans_with_a_gluster_volume_are_never_falsely_stale(&lab);
    sshd_changes_that_cut_access_are_rolled_back(&lab);
    sshd_setting_a_file_read_first_overrides_is_warned_and_fails(&lab);
    corral_keeps_its_own_way_in(&lab);
    unreachable_host_is_named_and_others_planned(&lab);
    drop(lab);
    examples_converge_from_blank_hosts();
    three_layer_example_rotates_and_follows_its_compose_file();
}

/// The example (all four OS kinds) applied to fresh hosts takes effect, as the hosts' own
/// commands see it, and a second plan has nothing to do.
fn apply_to_fresh_hosts(lab: &Lab) {
    let plan = lab.corral(&["plan", "--detailed-exitcode"], &["examples/"]);
    assert_code(&plan, 2, "plan of fresh hosts shows changes");
    assert!(
        stdout(&plan).contains("os/package.base[n1]"),
        "{}",
        text(&plan)
    );
    // Without --expand, the same change on the three hosts is shown once.
    let grouped = lab.corral_exact(&["plan".to_owned(), "examples/".to_owned(), lab.inventory()]);
    assert!(
        stdout(&grouped).contains("~ os/package.base on n1, n2, n3 (3 machines)"),
        "{}",
        text(&grouped)
    );
    let secret = std::fs::read_to_string("examples/files/api-token.txt").unwrap();
    assert!(
        stdout(&plan)
            .lines()
            .any(|l| l.trim_start().starts_with("+ content:") && l.ends_with("(sensitive)")),
        "{}",
        text(&plan)
    );
    assert!(
        !text(&plan).contains(secret.trim()),
        "the secret is never printed"
    );

    let apply = lab.corral(&["apply", "--auto-approve"], &["examples/"]);
    assert_success(&apply, "apply examples");
    assert!(
        stdout(&apply).contains("Apply complete!"),
        "{}",
        text(&apply)
    );
    assert!(
        !text(&apply).contains(secret.trim()),
        "the secret is never printed"
    );

    batched_probes_print_what_each_probe_prints_alone(lab);

    let issue_sha = hex::encode(Sha256::digest(b"Authorized access only\n"));
    for machine in MACHINES {
        assert_eq!(
            lab.sh(machine, "sysctl -n net.ipv4.conf.all.send_redirects"),
            "0"
        );
        assert_eq!(
            lab.sh(machine, "sysctl -n net.ipv4.conf.all.log_martians"),
            "1"
        );
        assert_eq!(
            lab.sh(
                machine,
                "cat /etc/sysctl.d/99-zz-corral-baseline.conf | grep -v '^#'"
            ),
            "net.ipv4.conf.all.send_redirects = 0\nnet.ipv4.conf.all.log_martians = 1",
            "in the order written"
        );
        assert_eq!(
            lab.sh(machine, "stat -c '%a %U %G' /etc/issue.net"),
            "644 root root"
        );
        assert_eq!(
            lab.sh(machine, "stat -c '%a' /etc/corral-example/api-token"),
            "600"
        );
        assert_eq!(
            lab.sh(machine, "cat /etc/corral-example/api-token"),
            secret.trim()
        );
        assert_eq!(
            lab.sh(machine, "sha256sum /etc/issue.net | cut -c1-64"),
            issue_sha
        );
        assert_eq!(
            lab.sh(machine, "ls /etc/ | grep -c corral-tmp || true"),
            "0",
            "no temporary file left"
        );
        assert_eq!(
            lab.sh(machine, "dpkg-query -W -f='${db:Status-Abbrev}' tree"),
            "ii"
        );
        assert_eq!(
            lab.sh(
                machine,
                "dpkg-query -W -f='${db:Status-Abbrev}' ufw 2>/dev/null || echo gone"
            ),
            "rc",
            "ufw removed, its configuration kept"
        );
        assert_eq!(
            lab.sh(
                machine,
                "systemctl show -p ActiveState -p UnitFileState corral-heartbeat.service"
            ),
            "ActiveState=active\nUnitFileState=enabled"
        );
    }
    let motd = std::fs::read("examples/files/motd.txt").unwrap();
    assert_eq!(
        lab.sh("n1", "sha256sum /etc/motd | cut -c1-64"),
        hex::encode(Sha256::digest(&motd))
    );
    assert_ne!(
        lab.sh("n3", "sha256sum /etc/motd | cut -c1-64"),
        hex::encode(Sha256::digest(&motd)),
        "n3 is not selected"
    );

    let replan = lab.corral(&["plan", "--detailed-exitcode"], &["examples/"]);
    assert_code(&replan, 0, "plan right after apply has no changes");
    assert!(stdout(&replan).contains("No changes."), "{}", text(&replan));
}

/// A link planted at a managed path, or above it, is reported as a link in the plan (never
/// the content it points to) and apply refuses: the file it points to is untouched.
fn links_are_never_followed(lab: &Lab) {
    let config = "tests/inputs/e2e/links.yaml";
    lab.sh(
        "n1",
        "ln -sfn /etc/shadow /etc/corral-e2e-link && mkdir -p /srv && ln -sfn /etc /srv/corral-e2e-dir",
    );
    let shadow = lab.sh("n1", "sha256sum /etc/shadow; stat -c '%a %U' /etc/shadow");
    let plan = lab.corral(&["plan", "--project", "e2e-links"], &[config]);
    assert_code(&plan, 1, "plan with links at managed paths");
    let shown = text(&plan);
    assert!(
        shown.contains("/etc/corral-e2e-link is a symbolic link (to /etc/shadow)"),
        "{shown}"
    );
    assert!(
        shown.contains("/srv/corral-e2e-dir, above /srv/corral-e2e-dir/corral-e2e-above, is a symbolic link (to /etc)"),
        "{shown}"
    );
    assert!(
        !shown.contains("root:"),
        "never the linked file's content: {shown}"
    );
    let apply = lab.corral(
        &["apply", "--auto-approve", "--project", "e2e-links"],
        &[config],
    );
    assert_code(&apply, 1, "apply with links at managed paths");
    assert_eq!(
        lab.sh("n1", "sha256sum /etc/shadow; stat -c '%a %U' /etc/shadow"),
        shadow,
        "/etc/shadow untouched"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /etc/corral-e2e-above && echo written || echo absent"
        ),
        "absent"
    );
    lab.sh("n1", "rm -f /etc/corral-e2e-link /srv/corral-e2e-dir");
}

/// An empty file applies once; then plans are empty (GNU stat calls it a "regular empty
/// file").
fn empty_file_converges(lab: &Lab) {
    let config = "tests/inputs/e2e/empty.yaml";
    let args = ["apply", "--auto-approve", "--project", "e2e-empty"];
    assert_success(&lab.corral(&args, &[config]), "apply an empty file");
    assert_eq!(
        lab.sh("n2", "stat -c '%s %F' /etc/corral-e2e-empty"),
        "0 regular empty file"
    );
    let plan = lab.corral(
        &["plan", "--detailed-exitcode", "--project", "e2e-empty"],
        &[config],
    );
    assert_code(&plan, 0, "plan after applying an empty file");
    assert_success(&lab.corral(&args, &[config]), "apply again");
}

/// What a web request to `port` on `machine` answers, with the host's own bash.
fn http_get(lab: &Lab, machine: &str, port: u16) -> String {
    lab.sh(
        machine,
        &format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'"),
    )
}

/// nginx with a site, applied to a host without nginx: Debian's package starts nginx on
/// its default configuration, the site is written after, and nginx must end serving it
/// (restarted at apply time whatever the plan said). Then a site file changed after nginx
/// started (a missed restart) shows as a restart, never as "No changes".
fn first_apply_ends_services_on_their_configuration(lab: &Lab) {
    let web = "tests/inputs/e2e/web/";
    let apply = lab.corral(&["apply", "--auto-approve"], &[web]);
    assert_success(&apply, "apply nginx with a site");
    assert!(
        http_get(lab, "n1", 8081).contains("served by corral's site"),
        "nginx runs on the new site"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[web]),
        0,
        "converged after one apply",
    );
    lab.sh("n1", "sleep 1; touch /etc/nginx/conf.d/corral-e2e.conf");
    let plan = lab.corral(&["plan", "--format", "json"], &[web]);
    assert_eq!(
        planned_addresses(&plan),
        ["os/service.nginx[n1]"],
        "{}",
        text(&plan)
    );
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        json["resource_changes"][0]["reason"],
        "restarted because os/file.site[n1] changed after it started"
    );
    assert_eq!(json["project"], "web", "the project is the folder's name");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[web]),
        "apply the missed restart",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[web]),
        0,
        "converged again",
    );
}

/// Another configuration folder applied to the same hosts is another project: it plans
/// and applies its own resources and deletes none of the first folder's.
fn another_folder_never_deletes_this_ones_resources(lab: &Lab) {
    let db = "tests/inputs/e2e/db/";
    let plan = lab.corral(&["plan", "--format", "json"], &[db]);
    assert_success(&plan, "plan of another folder");
    assert_eq!(planned_addresses(&plan), ["os/file.db-tuning[n1]"]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["project"], "db");
    assert_eq!(json["summary"]["destroy"], 0);
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[db]),
        "apply another folder",
    );
    assert!(http_get(lab, "n1", 8081).contains("served by corral's site"));
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &["tests/inputs/e2e/web/"]),
        0,
        "the first folder is untouched",
    );
    a_copy_under_the_same_folder_name_is_refused(lab);
}

/// Another team's copy of `db/` (a folder of the same name elsewhere, so the same project
/// `db`) is refused, naming both configurations, before it plans `db`'s file for deletion;
/// whether it never applied (no id yet) or has an id of its own. The first apply of `db/`
/// wrote its id into `db/.corral-project` and the hosts' records.
fn a_copy_under_the_same_folder_name_is_refused(lab: &Lab) {
    let ours = std::fs::read_to_string("tests/inputs/e2e/db/.corral-project").unwrap();
    let ours = ours
        .lines()
        .rfind(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    assert!(
        lab.sh("n1", "cat /var/lib/corral/managed.json")
            .contains(&format!("\"db\": \"{ours}\"")),
        "the hosts' records name db's owner"
    );
    let other = tempfile::tempdir().unwrap();
    let copy = other.path().join("db");
    std::fs::create_dir(&copy).unwrap();
    // Their own resource under the same name: `db`'s file would be their orphan.
    std::fs::write(
        copy.join("theirs.yaml"),
        "kind: os/file\nname: theirs\nspecification: { machines: [n2], path: /etc/corral-e2e-theirs, content: \"x\\n\" }\n",
    )
    .unwrap();
    let copy_arg = format!("{}/", copy.display());
    for id in [None, Some("0123456789abcdef0123456789abcdef")] {
        if let Some(id) = id {
            std::fs::write(copy.join(".corral-project"), format!("{id}\n")).unwrap();
        }
        let plan = lab.corral(&["plan", "--format", "json"], &[&copy_arg]);
        assert_code(
            &plan,
            1,
            "a plan under another configuration's project name",
        );
        let shown = text(&plan);
        assert!(
            shown.contains("project `db` belongs to another configuration")
                && shown.contains(&format!("configuration {ours}")),
            "{shown}"
        );
        assert!(
            !shown.contains("os/file.db-tuning"),
            "nothing of db's is planned: {shown}"
        );
        if let Some(id) = id {
            assert!(
                shown.contains(&format!("this one is configuration {id}")),
                "{shown}"
            );
        }
        let apply = lab.corral(&["apply", "--auto-approve"], &[&copy_arg]);
        assert_code(
            &apply,
            1,
            "an apply under another configuration's project name",
        );
    }
    assert_eq!(
        lab.sh(
            "n2",
            "test -e /etc/corral-e2e-theirs && echo exists || echo absent"
        ),
        "absent"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &["tests/inputs/e2e/db/"]),
        0,
        "db is untouched",
    );
}

/// Keys whose order matters (the second resets the first) converge in one apply: keys are
/// applied in the order written, read back, and applied again while the kernel changed one.
fn sysctls_converge_in_one_apply(lab: &Lab) {
    let config = "tests/inputs/e2e/forwarding.yaml";
    lab.sh("n2", "sysctl -q -w net.ipv4.ip_forward=0");
    let args = ["apply", "--auto-approve", "--project", "e2e-sysctl"];
    assert_success(&lab.corral(&args, &[config]), "apply forwarding");
    assert_eq!(
        lab.sh(
            "n2",
            "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.accept_redirects"
        ),
        "1\n1"
    );
    assert_code(
        &lab.corral(
            &["plan", "--detailed-exitcode", "--project", "e2e-sysctl"],
            &[config],
        ),
        0,
        "one apply converges",
    );
}

/// A sysctl and a file changed by hand on n2 show up as exactly those changes, and apply
/// puts them back.
fn hand_made_drift_is_exactly_that_change(lab: &Lab) {
    lab.sh("n2", "sysctl -q -w net.ipv4.conf.all.send_redirects=1 && echo 'edited by hand' >> /etc/issue.net");

    let drift = lab.corral(&["drift", "--format", "json"], &["examples/"]);
    assert_code(&drift, 2, "drift finds the hand-made changes");
    assert_eq!(
        planned_addresses(&drift),
        ["os/file.issue-net[n2]", "os/sysctl.baseline[n2]"]
    );
    let plan: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    let sysctl = &plan["resource_changes"][1];
    assert_eq!(
        sysctl["before"],
        serde_json::json!({"net.ipv4.conf.all.send_redirects": "1"})
    );
    assert_eq!(
        sysctl["after"],
        serde_json::json!({"net.ipv4.conf.all.send_redirects": "0"})
    );
    assert_eq!(
        plan["resource_changes"][0]["before"]["content"],
        "Authorized access only\nedited by hand\n"
    );

    let human = lab.corral(&["plan"], &["examples/"]);
    assert_success(&human, "plan");
    let shown = stdout(&human);
    assert!(
        shown.contains("~ net.ipv4.conf.all.send_redirects: \"1\" -> \"0\""),
        "{shown}"
    );
    assert!(shown.contains("-edited by hand"), "{shown}");
    assert!(
        shown.contains("Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy."),
        "{shown}"
    );

    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply after drift",
    );
    assert_eq!(
        lab.sh("n2", "sysctl -n net.ipv4.conf.all.send_redirects"),
        "0"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &["examples/"]),
        0,
        "converged again",
    );
}

/// The scripts of examples/ci/ as their GitHub jobs run them, on the lab: the nightly job
/// saves the facts and reports no drift, then the drift made by hand (exit 2, the report
/// naming it); the pull-request job plans a changed configuration from those facts without
/// SSH (exit 0, the comment under its marker) and reports a broken one (exit 1, the error
/// in the comment).
fn ci_example_scripts_report_drift_and_plan_pull_requests(lab: &Lab) {
    let work = tempfile::tempdir().unwrap();
    let script = |name: &str, args: &[&str]| {
        let mut command = Command::new(Path::new("examples/ci").join(name));
        command
            .args(args)
            .env("CORRAL", env!("CARGO_BIN_EXE_corral"))
            .env("CORRAL_SSH_CONFIG", lab.ssh_config())
            .env("NO_COLOR", "1");
        command.output().expect("the script runs")
    };
    let out = work.path().join("nightly");
    let out = out.to_str().unwrap();
    let inventory = lab.inventory();

    let converged = script("nightly.sh", &[out, "examples/", &inventory]);
    assert_code(&converged, 0, "nightly on converged hosts");
    let report = std::fs::read_to_string(Path::new(out).join("drift.md")).unwrap();
    assert!(report.contains("### corral drift: no drift"), "{report}");

    lab.sh("n3", "echo 'edited by hand' >> /etc/issue.net");
    let drifted = script("nightly.sh", &[out, "examples/", &inventory]);
    assert_code(&drifted, 2, "nightly after a change by hand");
    let report = std::fs::read_to_string(Path::new(out).join("drift.md")).unwrap();
    assert!(report.contains("os/file.issue-net"), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with('-') && l.ends_with(" edited by hand")),
        "{report}"
    );
    let facts = Path::new(out).join("facts.json");

    // The pull request changes the motd; planned from the facts, with no SSH settings.
    let branch = work.path().join("examples");
    copy_tree(Path::new("examples"), &branch);
    let motd = branch.join("files/motd.txt");
    let text = std::fs::read_to_string(&motd).unwrap();
    std::fs::write(&motd, format!("{text}Reviewed in a pull request.\n")).unwrap();
    let pr = work.path().join("pr");
    // As the pull-request job runs it: no SSH settings.
    let pr_plan = || {
        Command::new("examples/ci/pr-plan.sh")
            .args([facts.to_str().unwrap(), pr.to_str().unwrap()])
            .args([
                "--project",
                "examples",
                branch.to_str().unwrap(),
                &inventory,
            ])
            .env("CORRAL", env!("CARGO_BIN_EXE_corral"))
            .env("CORRAL_SSH_CONFIG", "/nonexistent/ssh_config")
            .output()
            .unwrap()
    };
    let plan = pr_plan();
    assert_code(&plan, 0, "pull-request plan");
    let comment = std::fs::read_to_string(pr.join("comment.md")).unwrap();
    assert!(comment.starts_with("<!-- corral-plan -->\n"), "{comment}");
    assert!(
        added_line(&comment, "Reviewed in a pull request."),
        "{comment}"
    );
    assert!(comment.contains("os/file.motd"), "{comment}");

    // A resource new since the snapshot has no facts in it: the rest is planned, and the
    // comment says why not all of it (exit 1).
    std::fs::write(
        branch.join("new.yaml"),
        "kind: os/file\nname: banner\nspecification:\n  machines: all\n  path: /etc/corral-banner\n  content: \"hi\\n\"\n",
    )
    .unwrap();
    let partial = pr_plan();
    assert_code(
        &partial,
        1,
        "pull-request plan with a resource new since the snapshot",
    );
    let comment = std::fs::read_to_string(pr.join("comment.md")).unwrap();
    assert!(
        added_line(&comment, "Reviewed in a pull request."),
        "{comment}"
    );
    assert!(
        comment.contains("corral could not plan everything"),
        "{comment}"
    );
    assert!(comment.contains("os/file.banner"), "{comment}");
    std::fs::remove_file(branch.join("new.yaml")).unwrap();

    std::fs::write(branch.join("broken.yaml"), "kind: os/file\nname: [oops\n").unwrap();
    let broken = pr_plan();
    assert_code(&broken, 1, "pull-request plan of a broken configuration");
    let comment = std::fs::read_to_string(pr.join("comment.md")).unwrap();
    assert!(comment.contains("corral plan failed"), "{comment}");
    assert!(comment.contains("broken.yaml"), "{comment}");

    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply after the nightly drift",
    );
}

/// `--keep-connections`: the masters of one plan are there for the next (the same master
/// processes answer, and sshd sees no new login), a changed known_hosts makes new ones, and
/// `connections close` ends them all. In a runtime directory of the test's own.
fn warm_connections_are_reused_until_a_setting_changes(lab: &Lab) {
    let runtime = tempfile::tempdir().unwrap();
    let warm = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("CORRAL_SSH_CONFIG", lab.ssh_config())
            .env("NO_COLOR", "1");
        command.output().expect("corral runs")
    };
    let plan = |what: &str| {
        let out = warm(&[
            "plan",
            "--keep-connections",
            "60s",
            "--detailed-exitcode",
            "examples/",
            &lab.inventory(),
        ]);
        assert_code(&out, 0, what);
    };
    let kept = runtime.path().join("corral-connections");
    // The pid of the master behind each kept socket, by socket name.
    let masters = || -> std::collections::BTreeMap<String, String> {
        std::fs::read_dir(&kept)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .map(|socket| {
                let out = Command::new("ssh")
                    .args(["-F", "/dev/null", "-S"])
                    .arg(&socket)
                    .args(["-O", "check", "corral-master"])
                    .output()
                    .unwrap();
                let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                let name = socket.file_name().unwrap().to_string_lossy().into_owned();
                (name, said)
            })
            .collect()
    };

    // Logins sshd accepted on n1 (this count's own login included).
    let logins = || -> usize {
        lab.sh(
            "n1",
            "journalctl -q --no-pager -u ssh | grep -c 'Accepted publickey' || true",
        )
        .parse()
        .unwrap()
    };

    plan("first warm plan");
    let first = masters();
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        first.values().all(|m| m.starts_with("Master running")),
        "{first:?}"
    );
    let before = logins();
    plan("second warm plan");
    assert_eq!(logins(), before + 1, "no new login but the count's own");
    assert_eq!(masters(), first, "the same masters answer");

    let known_hosts = lab.dir.join("known_hosts");
    let keys = std::fs::read_to_string(&known_hosts).unwrap();
    std::fs::write(
        &known_hosts,
        format!("{keys}# a line that changes the file\n"),
    )
    .unwrap();
    plan("plan after known_hosts changed");
    std::fs::write(&known_hosts, keys).unwrap();
    let after = masters();
    assert_eq!(
        after.len(),
        6,
        "three new masters next to the old: {after:?}"
    );

    let closed = warm(&["connections", "close"]);
    assert_success(&closed, "connections close");
    assert!(
        stdout(&closed).contains("Closed 6 kept SSH connections."),
        "{}",
        text(&closed)
    );
    assert!(masters().is_empty());
}

/// Whether a Markdown plan's diff adds a line reading `text` (`+` starts the line).
fn added_line(markdown: &str, text: &str) -> bool {
    markdown
        .lines()
        .any(|l| l.starts_with('+') && l.trim_end().ends_with(text))
}

/// A configuration file a running service `depends_on` changes: the plan says the service
/// restarts, and apply restarts it (a new main PID).
fn changed_dependency_restarts_service(lab: &Lab) {
    let unit = "corral-heartbeat.service";
    let pid_before = lab.sh("n3", &format!("systemctl show -p MainPID --value {unit}"));
    lab.sh("n3", "echo INTERVAL=5 > /etc/default/corral-heartbeat");
    let plan = lab.corral(&["plan", "--format", "json"], &["examples/"]);
    assert_success(&plan, "plan");
    assert_eq!(
        planned_addresses(&plan),
        ["os/file.heartbeat-config[n3]", "os/service.heartbeat[n3]"]
    );
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        json["resource_changes"][1]["reason"],
        "restarted because os/file.heartbeat-config[n3] changes"
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply",
    );
    let pid_after = lab.sh("n3", &format!("systemctl show -p MainPID --value {unit}"));
    assert_ne!(pid_before, pid_after, "the service was restarted");
    assert_ne!(pid_after, "0", "and runs");
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &["examples/"]),
        0,
        "converged again",
    );
}

/// `apply --target` of a file alone leaves the service that reloads on it owing the
/// reload (systemd keeps no trace of one): the host records it, the next plan reloads the
/// service saying since when and why, and that apply clears it.
fn a_targeted_apply_leaves_a_reload_owed_until_it_is_done(lab: &Lab) {
    let owed = ["tests/inputs/e2e/owed.yaml"];
    let apply = ["apply", "--auto-approve", "--project", "e2e-owed"];
    assert_success(&lab.corral(&apply, &owed), "apply of the reloading service");
    let reloads = || lab.sh("n1", "cat /run/corral-owed.reloads 2>/dev/null | wc -l");
    let before = reloads();
    lab.sh("n1", "echo RATE=1 > /etc/default/corral-owed");
    let targeted = [&apply[..], &["--target", "os/file.owed-config"]].concat();
    assert_success(&lab.corral(&targeted, &owed), "apply --target of the file");
    assert_eq!(reloads(), before, "the service was left out");
    let plan = lab.corral(
        &["plan", "--format", "json", "--project", "e2e-owed"],
        &owed,
    );
    assert_success(&plan, "plan");
    assert_eq!(planned_addresses(&plan), ["os/service.owed[n1]"]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let reason = json["resource_changes"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.starts_with("reload owed since ")
            && reason.ends_with(" UTC, because os/file.owed-config[n1] changed"),
        "{reason}"
    );
    assert_success(&lab.corral(&apply, &owed), "apply of what is owed");
    assert_eq!(
        reloads().parse::<u32>().unwrap(),
        before.parse::<u32>().unwrap() + 1,
        "reloaded once"
    );
    assert_code(
        &lab.corral(
            &["plan", "--detailed-exitcode", "--project", "e2e-owed"],
            &owed,
        ),
        0,
        "nothing owed any more",
    );
}

/// A failing step skips what depends on it and nothing else; apply exits 1 and says so.
fn failed_step_skips_dependents_only(lab: &Lab) {
    let failing = "tests/inputs/e2e/failing-step.yaml";
    // A project of its own, so that this configuration does not delete the examples.
    let out = lab.corral(
        &["apply", "--auto-approve", "--project", "e2e-failing"],
        &[failing],
    );
    assert_code(&out, 1, "apply with a failing step");
    let shown = stdout(&out);
    assert!(shown.contains("failed:  os/package.missing[n1]"), "{shown}");
    assert!(
        shown
            .contains("skipped: os/file.after-missing[n1] (because os/package.missing[n1] failed)"),
        "{shown}"
    );
    assert!(shown.contains("2 applied, 1 failed, 1 skipped"), "{shown}");
    assert_eq!(
        lab.sh("n1", "cat /etc/corral-independent"),
        "independent",
        "only ordered after the package"
    );
    assert_eq!(lab.sh("n2", "cat /etc/corral-independent"), "independent");
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /etc/corral-after-missing && echo exists || echo absent"
        ),
        "absent"
    );
}

/// Resources removed from the configuration: what corral created for them is deleted
/// (files, the persisted sysctl file, the unit), what it found and changed (Debian's
/// /etc/motd) is put back as it was, what is still declared stays, and re-applying the full
/// configuration brings everything back.
fn removed_resources_are_deleted(lab: &Lab) {
    let debian_motd = lab.sh("n3", "sha256sum /etc/motd; stat -c '%a %U %G' /etc/motd");
    // The same configuration as examples/ with resources taken out, as its team would
    // commit it: the same project and the same id (`.corral-project`).
    let team = tempfile::tempdir().unwrap();
    std::fs::copy(
        "tests/inputs/e2e/reduced.yaml",
        team.path().join("reduced.yaml"),
    )
    .unwrap();
    std::fs::copy(
        "examples/.corral-project",
        team.path().join(".corral-project"),
    )
    .unwrap();
    let reduced = team.path().join("reduced.yaml");
    let reduced = reduced.to_str().unwrap();
    let plan = lab.corral(
        &["plan", "--format", "json", "--project", "examples"],
        &[reduced],
    );
    assert_success(&plan, "plan of the reduced configuration");
    let mut expected = Vec::new();
    for machine in MACHINES {
        expected.push(format!("os/file.api-token[{machine}]"));
        expected.push(format!("os/file.heartbeat-config[{machine}]"));
        if machine != "n3" {
            expected.push(format!("os/file.motd[{machine}]"));
        }
        expected.push(format!("os/service.heartbeat[{machine}]"));
        expected.push(format!("os/sysctl.baseline[{machine}]"));
    }
    assert_eq!(planned_addresses(&plan), expected);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["actions"] == serde_json::json!(["delete"])));
    let human = lab.corral(&["plan", "--project", "examples"], &[reduced]);
    assert!(
        stdout(&human).contains("Plan: 0 to add, 0 to change, 0 to replace, 14 to destroy."),
        "{}",
        text(&human)
    );
    assert!(
        stdout(&human)
            .contains("~ original: \"kept in /var/lib/corral/originals\" -> \"/etc/motd\"")
            && stdout(&human).contains("+The programs included with the Debian GNU/Linux system"),
        "the restore is shown with its diff: {}",
        text(&human)
    );

    assert_success(
        &lab.corral(
            &["apply", "--auto-approve", "--project", "examples"],
            &[reduced],
        ),
        "apply of the reduced configuration",
    );
    for machine in MACHINES {
        assert_eq!(
            lab.sh(machine, "ls /etc/default/corral-heartbeat /etc/sysctl.d/99-zz-corral-baseline.conf /etc/systemd/system/corral-heartbeat.service 2>/dev/null | wc -l"),
            "0",
            "deleted on {machine}"
        );
        // Debian's motd is back where corral had replaced it; n3's was never touched.
        assert_eq!(
            lab.sh(machine, "sha256sum /etc/motd; stat -c '%a %U %G' /etc/motd"),
            debian_motd,
            "Debian's /etc/motd on {machine}"
        );
        assert_eq!(
            lab.sh(machine, "cat /var/lib/corral/originals/*.path"),
            "/etc/issue.net",
            "only /etc/issue.net's original is still kept on {machine}"
        );
        assert_eq!(
            lab.sh(
                machine,
                "systemctl show -p LoadState --value corral-heartbeat.service"
            ),
            "not-found"
        );
        assert_eq!(
            lab.sh(machine, "cat /etc/issue.net"),
            "Authorized access only",
            "still declared"
        );
        assert_eq!(
            lab.sh(
                machine,
                "cat /etc/corral-independent 2>/dev/null || echo gone"
            ),
            if machine == "n3" {
                "gone"
            } else {
                "independent"
            },
            "another project's file stays"
        );
    }
    assert_code(
        &lab.corral(
            &["plan", "--detailed-exitcode", "--project", "examples"],
            &[reduced],
        ),
        0,
        "nothing left to delete",
    );

    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply the examples again",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &["examples/"]),
        0,
        "converged again",
    );
}

/// A host locked by another apply: apply fails naming the holder and changes nothing on any
/// host; once the lock is gone, apply works and leaves no lock behind.
fn lock_blocks_a_second_apply(lab: &Lab) {
    lab.sh(
        "n2",
        "mkdir -p /var/lib/corral/lock && echo 'alice@laptop pid 42 since 2026-11-23T10:00:00Z' > /var/lib/corral/lock/owner",
    );
    for machine in ["n1", "n2"] {
        lab.sh(machine, "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    }
    let out = lab.corral(
        &["apply", "--auto-approve", "--lock-timeout", "1"],
        &["examples/"],
    );
    assert_code(&out, 1, "apply on a locked host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("n2 is locked by alice@laptop pid 42 since 2026-11-23T10:00:00Z"),
        "{}",
        text(&out)
    );
    for machine in ["n1", "n2"] {
        assert_eq!(
            lab.sh(machine, "sysctl -n net.ipv4.conf.all.log_martians"),
            "0",
            "nothing changed on {machine}"
        );
    }
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /var/lib/corral/lock && echo held || echo free"
        ),
        "free",
        "n1's lock was released"
    );

    lab.sh("n2", "rm -rf /var/lib/corral/lock");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply once the lock is gone",
    );
    for machine in MACHINES {
        assert_eq!(
            lab.sh(
                machine,
                "test -e /var/lib/corral/lock && echo held || echo free"
            ),
            "free"
        );
    }
}

/// Makes `command` on `machine` hang (a wrapper that sleeps) until [`unhang`].
fn hang(lab: &Lab, machine: &str, command: &str) {
    lab.sh(
        machine,
        &format!("mv /usr/bin/{command} /usr/bin/{command}.real && printf '#!/bin/sh\\nsleep 600\\nexec /usr/bin/{command}.real \"$@\"\\n' > /usr/bin/{command} && chmod +x /usr/bin/{command}"),
    );
}

fn unhang(lab: &Lab, machine: &str, command: &str) {
    lab.sh(
        machine,
        &format!("mv -f /usr/bin/{command}.real /usr/bin/{command}"),
    );
}

/// No SSH master (nor its control directory) of the corral process `pid` is left.
fn assert_no_master(pid: u32) {
    let masters = Command::new("pgrep")
        .args(["-f", &format!("corral-{pid}-")])
        .output()
        .unwrap();
    assert!(
        masters.stdout.is_empty(),
        "masters of corral {pid} outlived it: {}",
        String::from_utf8_lossy(&masters.stdout)
    );
}

/// A plan ends its SSH masters over their control sockets, not with an `ssh -O exit` each
/// (30-80 ms of a run on a loaded machine): no `ssh -O exit` runs (an `ssh` in PATH logs
/// every call), and no master outlives corral.
fn a_plan_ends_its_masters_without_ssh_exit(lab: &Lab) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ssh.log");
    let real = Command::new("sh")
        .args(["-c", "command -v ssh"])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    let wrapper = dir.path().join("ssh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["plan", "examples/"])
        .arg(lab.inventory())
        .env("CORRAL_SSH_CONFIG", lab.ssh_config())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0, "plan with a logging ssh");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("-M -f -N"),
        "masters start with ssh: {calls}"
    );
    assert!(!calls.contains("-O exit"), "masters ended by ssh: {calls}");
    assert_no_master(pid);
}

/// `--timings` prints, after the plan, a row per host with its slowest probes timed on
/// the host, and names the critical path.
fn timings_name_each_host_and_the_critical_path(lab: &Lab) {
    let out = lab.corral(&["plan", "--timings"], &["examples/"]);
    let shown = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        shown.contains("Timings (probes by the host's clock"),
        "{shown}"
    );
    for host in ["n1", "n2", "n3"] {
        assert!(
            shown
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{host} ")) && l.ends_with(" ms")),
            "{shown}"
        );
    }
    assert!(shown.contains("Critical path: n"), "{shown}");
}

/// A host whose probe hangs (a stuck `dpkg-query`) is reported after `--facts-timeout`, like an
/// unreachable one, and the others are planned; the host's watchdog ends the stuck probe.
fn hung_host_is_reported_after_its_deadline(lab: &Lab) {
    lab.sh("n1", "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    // The package database stuck (`dpkg-query` waits); files are read by the fact
    // script's `perl`, which runs no `stat`.
    hang(lab, "n2", "dpkg-query");
    let out = lab.corral(&["plan", "--facts-timeout", "5"], &["examples/"]);
    unhang(lab, "n2", "dpkg-query");
    assert_code(&out, 1, "plan with a hung host");
    let shown = text(&out);
    assert!(shown.contains("host n2 could not be read"), "{shown}");
    assert!(
        shown.contains("did not answer within 5 s while reading facts"),
        "{shown}"
    );
    assert!(
        shown.contains("~ os/sysctl.baseline[n1]"),
        "n1 still planned: {shown}"
    );
    std::thread::sleep(std::time::Duration::from_secs(8));
    assert_eq!(
        lab.sh("n2", "pgrep -fx 'sleep 600' || echo none"),
        "none",
        "the watchdog ended the stuck probe"
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply once the host answers",
    );
}

/// A step that hangs fails at its resource's deadline; what depends on it is skipped and
/// every lock is released.
fn hung_step_fails_at_its_deadline(lab: &Lab) {
    let config = "tests/inputs/e2e/hung-step.yaml";
    let out = lab.corral(
        &["apply", "--auto-approve", "--project", "e2e-hung"],
        &[config],
    );
    assert_code(&out, 1, "apply with a hung step");
    let shown = text(&out);
    assert!(
        shown.contains("did not finish within 5 s and was stopped"),
        "{shown}"
    );
    assert!(
        shown.contains("skipped: os/file.after-slow[n1] (because os/file.slow[n1] failed)"),
        "{shown}"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /var/lib/corral/lock && echo held || echo free"
        ),
        "free"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /etc/corral-e2e-slow && echo written || echo absent"
        ),
        "absent",
        "no half-written file"
    );
}

/// A plan warns of each locked host with its holder; an apply's lock names the account
/// corral runs as, whatever `$USER` says; force-unlock removes the locks of several
/// machines (`n1,n2`) or of all (`--all`) at once.
fn locks_are_named_by_account_warned_and_unlocked_together(lab: &Lab) {
    let alice = "alice@laptop pid 42 since 2026-11-23T10:00:00Z";
    let plant = |machine: &str| {
        lab.sh(
            machine,
            &format!(
                "mkdir -p /var/lib/corral/lock && echo '{alice}' > /var/lib/corral/lock/owner"
            ),
        )
    };
    plant("n1");
    plant("n2");
    let plan = lab.corral(&["plan"], &["examples/"]);
    assert_success(&plan, "plan on locked hosts");
    for machine in ["n1", "n2"] {
        assert!(
            stdout(&plan).contains(&format!(
                "Warning: infrastructure/machine.{machine}: {machine} is locked by {alice}: "
            )),
            "{}",
            text(&plan)
        );
    }
    assert!(!stdout(&plan).contains("n3 is locked"), "{}", text(&plan));

    // An apply that holds n1 (it takes the locks in order) and waits for n2's.
    let account = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    lab.sh("n1", "rm -rf /var/lib/corral/lock");
    // Only hosts with changes are locked: give n1 and n2 one each.
    for machine in ["n1", "n2"] {
        lab.sh(machine, "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args([
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "60",
            "examples/",
        ])
        .arg(lab.inventory())
        .env("CORRAL_SSH_CONFIG", lab.ssh_config())
        .env("USER", "not-the-account")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut owner = String::new();
    for _ in 0..240 {
        owner = lab.sh("n1", "cat /var/lib/corral/lock/owner 2>/dev/null || true");
        if owner.contains(&format!("pid {pid} ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();
    assert!(
        owner.starts_with(&format!("{account}@")),
        "the lock names the account `{account}`, not $USER: {owner}"
    );

    let inventory = lab.inventory();
    let unlock = |selection: &[&str]| {
        let mut args: Vec<String> = vec!["force-unlock".into(), "--force".into()];
        args.extend(selection.iter().map(|s| s.to_string()));
        args.extend(["examples/".to_owned(), inventory.clone()]);
        lab.corral_exact(&args)
    };
    plant("n1");
    let both = unlock(&["n1,n2"]);
    assert_success(&both, "force-unlock n1,n2");
    for machine in ["n1", "n2"] {
        assert!(
            stdout(&both).contains(&format!("{machine} is locked by {alice}."))
                && stdout(&both).contains(&format!("Removed the apply lock on {machine}.")),
            "{}",
            text(&both)
        );
    }
    plant("n3");
    let all = unlock(&["--all"]);
    assert_success(&all, "force-unlock --all");
    assert!(
        stdout(&all).contains("n1 has no apply lock")
            && stdout(&all).contains("Removed the apply lock on n3."),
        "{}",
        text(&all)
    );
    for machine in MACHINES {
        assert_eq!(
            lab.sh(
                machine,
                "test -e /var/lib/corral/lock && echo held || echo free"
            ),
            "free",
            "{machine}"
        );
    }
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "converge again after the interrupted apply",
    );
}

/// Ctrl-C while waiting for another apply's lock: corral exits 130, keeps none of the locks
/// it took, leaves the other holder's lock alone and no SSH master behind; force-unlock
/// then removes the stale lock.
fn interrupt_during_a_lock_wait_leaves_no_lock_and_no_master(lab: &Lab) {
    let alice = "alice@laptop pid 42 since 2026-11-23T10:00:00Z";
    lab.sh(
        "n2",
        &format!("mkdir -p /var/lib/corral/lock && echo '{alice}' > /var/lib/corral/lock/owner"),
    );
    for machine in ["n1", "n2"] {
        lab.sh(machine, "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args([
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "120",
            "examples/",
        ])
        .arg(lab.inventory())
        .env("CORRAL_SSH_CONFIG", lab.ssh_config())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut waited = 0;
    while !lab
        .sh("n1", "cat /var/lib/corral/lock/owner 2>/dev/null || true")
        .contains(&format!("pid {pid} "))
    {
        waited += 1;
        assert!(waited < 120, "corral never took n1's lock");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 130, "apply interrupted during a lock wait");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Interrupted while waiting for the apply locks"),
        "{}",
        text(&out)
    );
    assert_eq!(
        lab.sh(
            "n1",
            "test -e /var/lib/corral/lock && echo held || echo free"
        ),
        "free"
    );
    assert_eq!(lab.sh("n2", "cat /var/lib/corral/lock/owner"), alice);
    assert_no_master(pid);

    let refused = lab.corral_exact(&[
        "force-unlock".into(),
        "n2".into(),
        "examples/".into(),
        lab.inventory(),
    ]);
    assert_code(&refused, 1, "force-unlock without a terminal or --force");
    let unlocked = lab.corral_exact(&[
        "force-unlock".into(),
        "--force".into(),
        "n2".into(),
        "examples/".into(),
        lab.inventory(),
    ]);
    assert_success(&unlocked, "force-unlock --force");
    assert!(
        text(&unlocked).contains(&format!("n2 is locked by {alice}")),
        "{}",
        text(&unlocked)
    );
    assert_eq!(
        lab.sh(
            "n2",
            "test -e /var/lib/corral/lock && echo held || echo free"
        ),
        "free"
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &["examples/"]),
        "apply once the lock is gone",
    );
}

/// `plan -o` saves a plan (mode 0600); `apply PLANFILE` carries it out without asking, but
/// refuses, touching nothing, when a host changed since.
fn saved_plan_is_applied_as_reviewed_or_refused_when_stale(lab: &Lab) {
    use std::os::unix::fs::PermissionsExt;
    let file = lab.dir.join("reviewed.plan");
    let file_arg = file.display().to_string();
    let apply_saved = || lab.corral_exact(&["apply".to_owned(), file_arg.clone()]);
    lab.sh("n1", "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    assert_success(
        &lab.corral(&["plan", "-o", &file_arg], &["examples/"]),
        "plan -o",
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    lab.sh("n2", "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    let stale = apply_saved();
    assert_code(&stale, 1, "applying a stale plan");
    assert!(
        String::from_utf8_lossy(&stale.stderr)
            .contains("saved plan is stale: hosts changed since the plan was saved: n2"),
        "{}",
        text(&stale)
    );
    assert_eq!(
        lab.sh("n1", "sysctl -n net.ipv4.conf.all.log_martians"),
        "0",
        "nothing touched"
    );

    assert_success(
        &lab.corral(&["plan", "-o", &file_arg], &["examples/"]),
        "plan -o again",
    );
    let applied = apply_saved();
    assert_success(&applied, "apply PLANFILE (no confirmation asked)");
    for machine in ["n1", "n2"] {
        assert_eq!(
            lab.sh(machine, "sysctl -n net.ipv4.conf.all.log_martians"),
            "1"
        );
    }
    assert_code(
        &apply_saved(),
        1,
        "a saved plan applies once: the hosts changed",
    );
}

/// A swarm from blank hosts in one apply: init on the first manager, workers joined with
/// tokens read during the apply (never printed), labels set; then an empty plan; a label
/// change is exactly that; demoting a majority of the managers is refused.
/// Runs `run` while every lab host samples, in a loop and as the unprivileged user
/// `nobody`, every process's command line (`ps -eo args` and `/proc/*/cmdline`, what any
/// local user reads): what `run` returned, and each sampled line that held a swarm join
/// token (`SWMTKN-`). A token planted on each host first (a process whose argv holds
/// `SWMTKN-control`) must be seen, or the sampler saw nothing and this fails.
fn argv_with_tokens<T>(lab: &Lab, run: impl FnOnce() -> T) -> (T, Vec<String>) {
    // The pattern is written so that grep's own command line does not match it.
    let sampler = "n=0; touch /tmp/corral-argv-ready; while [ ! -e /tmp/corral-argv-stop ]; do n=$((n+1)); ps -eo args | grep -e 'SWMTK[N]-'; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -e 'SWMTK[N]-'; done; echo \"samples $n\"";
    let ssh = |machine: &str| {
        let mut command = Command::new("ssh");
        command.arg("-F").arg(lab.ssh_config()).arg(machine);
        command
    };
    let samplers: Vec<_> = MACHINES
        .iter()
        .map(|machine| {
            lab.sh(
                machine,
                "rm -f /tmp/corral-argv-stop /tmp/corral-argv-ready",
            );
            ssh(machine)
                .arg(format!(
                    "setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c {}",
                    shell_quote(sampler)
                ))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("ssh runs")
        })
        .collect();
    for machine in MACHINES {
        lab.sh(
            machine,
            "i=0; until [ -e /tmp/corral-argv-ready ]; do i=$((i+1)); [ $i -le 100 ] || exit 1; sleep 0.1; done; (sh -c 'sleep 2' sh SWMTKN-control </dev/null >/dev/null 2>&1 &)",
        );
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let result = run();
    let mut found = Vec::new();
    for (machine, sampler) in MACHINES.iter().zip(samplers) {
        lab.sh(machine, "touch /tmp/corral-argv-stop");
        let out = sampler.wait_with_output().expect("the sampler ends");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("SWMTKN-control"),
            "the sampler on {machine} never saw the planted token: {text}"
        );
        let samples: u32 = text
            .lines()
            .find_map(|l| l.strip_prefix("samples "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(samples > 10, "{machine} sampled {samples} times only");
        found.extend(
            text.lines()
                .filter(|l| l.contains("SWMTKN-") && !l.contains("SWMTKN-control"))
                .map(|l| format!("{machine}: {l}")),
        );
    }
    (result, found)
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A Compose file as users write them, which `docker stack deploy` deploys: no `version:`,
/// a port without a published one, a file secret with `name:`, `container_name` and
/// `restart`. Planned with warnings (text and JSON), deployed as the CLI converts it (the
/// restart policy, a port swarm assigns, corral's version of the secret), then plans empty.
/// An external network the swarm lacks is a plan error at its line.
fn compose_keys_stack_deploy_accepts_are_deployed(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let app = dir.join("keys");
    std::fs::create_dir_all(&app).unwrap();
    // A configuration of its own (project `keys`), with the swarm it deploys to.
    std::fs::copy(dir.join("cluster.yaml"), app.join("cluster.yaml")).unwrap();
    let cluster = app.join("cluster.yaml").display().to_string();
    std::fs::write(app.join("token.txt"), "corral-keys-e2e\n").unwrap();
    let compose = "services:\n  web:\n    image: local/busybox:1\n    container_name: web\n    restart: on-failure:3\n    command: [sh, -c, \"test -s /run/secrets/token && exec httpd -f -p 9000 -h /run/secrets\"]\n    ports: [\"9000\"]\n    secrets: [token]\nsecrets:\n  token: { file: ./token.txt, name: keys_token }\n";
    std::fs::write(app.join("compose.yaml"), compose).unwrap();
    let stack = app.join("stack.yaml");
    std::fs::write(
        &stack,
        "kind: swarm/stack\nname: keys\nspecification:\n  compose: compose.yaml\n",
    )
    .unwrap();
    let stack = stack.display().to_string();
    let plan = lab.corral(&["plan"], &[&cluster, &stack]);
    assert_success(&plan, "plan a stack with keys stack deploy ignores");
    let shown = text(&plan);
    for expected in [
        "compose.yaml:4:5: `docker stack deploy` ignores `services.web.container_name`",
        "compose.yaml:5:5: `docker stack deploy` converts `services.web.restart: on-failure:3`",
        "compose.yaml:10:31: secret `token`: corral creates it as `keys_token_<version>`",
        "9000/tcp (ingress; swarm assigns the published port)",
    ] {
        assert!(shown.contains(expected), "{expected}:\n{shown}");
    }
    let json = lab.corral(&["plan", "--format", "json"], &[&cluster, &stack]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("services.web.container_name"), "{json}");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&cluster, &stack]),
        "apply the stack",
    );
    let inspect = lab.sh(
        "n1",
        "docker service inspect keys_web --format '{{json .Spec.TaskTemplate.RestartPolicy.Condition}} {{json .Spec.TaskTemplate.RestartPolicy.MaxAttempts}} {{json .Spec.EndpointSpec.Ports}} {{range .Endpoint.Ports}}{{.PublishedPort}}{{end}} {{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}'",
    );
    let fields: Vec<&str> = inspect.split(' ').collect();
    assert_eq!(
        fields[..3],
        [
            "\"on-failure\"",
            "3",
            r#"[{"Protocol":"tcp","TargetPort":9000,"PublishMode":"ingress"}]"#
        ],
        "{inspect}"
    );
    let assigned: u16 = fields[3].parse().unwrap();
    assert!(assigned >= 30000, "swarm assigns from 30000: {inspect}");
    assert!(fields[4].starts_with("keys_token_"), "{inspect}");
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&cluster, &stack]),
        0,
        "the stack applied plans empty",
    );
    // An external network neither declared nor on the swarm: refused at plan.
    std::fs::write(
        app.join("compose.yaml"),
        format!(
            "{}networks:\n  front: {{ external: true, name: nowhere }}\n",
            compose.replace(
                "    secrets: [token]\n",
                "    secrets: [token]\n    networks: [front]\n"
            )
        ),
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&cluster, &stack]);
    assert_code(&plan, 1, "a missing external network is a plan error");
    assert!(
        text(&plan).contains("the Compose file's network `nowhere` is external"),
        "{}",
        text(&plan)
    );
    lab.sh(
        "n1",
        "docker stack rm keys >/dev/null && while docker service inspect keys_web >/dev/null 2>&1; do sleep 1; done; sleep 2; docker secret ls -q --filter name=keys_token_ | xargs -r docker secret rm >/dev/null",
    );
}

/// A stack's service as declared whose task failed and is not started again (restart
/// condition none, its container killed) is drift with the tasks' reason, exit 2; apply runs
/// a forced update of that service alone (a deploy of the unchanged file would not start
/// it), the next plan is empty, and the stack is removed. About 15 s.
fn a_stack_service_that_does_not_run_is_restarted(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let app = dir.join("shortstack");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(dir.join("cluster.yaml"), app.join("cluster.yaml")).unwrap();
    let cluster = app.join("cluster.yaml").display().to_string();
    std::fs::write(
        app.join("compose.yaml"),
        // Stops at once and is watched 1 s: the forced update stays short.
        "services:\n  once:\n    image: local/busybox:1\n    command: [sh, -c, \"trap 'exit 0' TERM; sleep 86400 & wait\"]\n    deploy:\n      replicas: 1\n      restart_policy: { condition: none }\n      update_config: { monitor: 1s }\n",
    )
    .unwrap();
    let stack = app.join("stack.yaml");
    std::fs::write(
        &stack,
        "kind: swarm/stack\nname: shortstack\nspecification:\n  compose: compose.yaml\n",
    )
    .unwrap();
    let stack = stack.display().to_string();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&cluster, &stack]),
        "apply stack shortstack",
    );
    let node = lab.sh(
        "n1",
        "docker service ps --filter desired-state=running --format '{{.Node}}' shortstack_once",
    );
    lab.sh(
        &node,
        "docker kill $(docker ps -q --filter label=com.docker.swarm.service.name=shortstack_once) >/dev/null",
    );
    lab.sh(
        "n1",
        "for i in $(seq 30); do docker service ps --format '{{.CurrentState}}' shortstack_once | grep -q ^Failed && exit 0; sleep 1; done; exit 1",
    );
    let plan = lab.corral(&["plan", "--detailed-exitcode"], &[&cluster, &stack]);
    assert_code(&plan, 2, "a stack service whose task failed is drift");
    let shown = stdout(&plan);
    assert!(
        shown.contains("~ once.tasks: \"0/1 tasks running: shortstack_once.1 on ")
            && shown
                .contains("shortstack_once: its spec is as declared but its tasks do not all run"),
        "{shown}"
    );
    let apply = lab.corral(&["apply", "--auto-approve"], &[&cluster, &stack]);
    assert_success(&apply, "apply restarts the stack's service");
    assert!(
        text(&apply).contains("restart the tasks of shortstack_once (forced update")
            && !text(&apply).contains("deploy stack shortstack"),
        "{}",
        text(&apply)
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&cluster, &stack]),
        0,
        "the stack's service runs again",
    );
    lab.sh(
        "n1",
        "docker stack rm shortstack >/dev/null && while docker service inspect shortstack_once >/dev/null 2>&1; do sleep 1; done; while docker network inspect shortstack_default >/dev/null 2>&1; do sleep 1; done",
    );
}

fn swarm_from_blank_hosts_in_one_apply(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("cluster.yaml");
    std::fs::copy("tests/inputs/e2e/swarm/cluster.yaml", &config).unwrap();
    let config = config.display().to_string();
    let plan = lab.corral(&["plan"], &[&config]);
    assert_success(&plan, "plan a swarm");
    let shown = stdout(&plan);
    assert!(shown.contains("+ swarm/cluster.main"), "{shown}");
    assert!(
        shown.contains("manager (initialises the swarm)") && shown.contains("(known after apply)"),
        "{shown}"
    );
    let (apply, seen) =
        argv_with_tokens(lab, || lab.corral(&["apply", "--auto-approve"], &[&config]));
    assert_success(&apply, "apply a swarm");
    assert_eq!(seen, Vec::<String>::new(), "join tokens on command lines");
    let token = lab.sh("n1", "docker swarm join-token -q worker");
    assert!(
        !text(&apply).contains(&token) && !text(&plan).contains(&token),
        "the join token is never printed"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}' | sort"
        ),
        "n1 Leader\nn2 \nn3"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker node inspect n2 --format '{{.Spec.Labels.tier}}'"
        ),
        "front"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "a swarm applied plans empty",
    );

    let text_of = |config: &str| std::fs::read_to_string(config).unwrap();
    std::fs::write(
        &config,
        text_of(&config).replace("tier: front", "tier: back"),
    )
    .unwrap();
    let plan = lab.corral(&["plan", "--format", "json"], &[&config]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(
        json["resource_changes"][0]["before"],
        serde_json::json!({"n2 labels.tier": "front"})
    );
    assert_eq!(
        json["resource_changes"][0]["after"],
        serde_json::json!({"n2 labels.tier": "back"})
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "relabel",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker node inspect n2 --format '{{.Spec.Labels.tier}}'"
        ),
        "back"
    );

    // Three managers, then a plan that would demote two of them at once.
    std::fs::write(
        &config,
        text_of(&config).replace(
            "managers: [n1]\n  workers: [n2, n3]",
            "managers: [n1, n2, n3]",
        ),
    )
    .unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "promote",
    );
    assert_eq!(
        lab.sh("n1", "docker info --format '{{.Swarm.Managers}}'"),
        "3"
    );
    std::fs::write(
        &config,
        text_of(&config).replace(
            "managers: [n1, n2, n3]",
            "managers: [n1]\n  workers: [n2, n3]",
        ),
    )
    .unwrap();
    let refused = lab.corral(&["plan"], &[&config]);
    assert_code(&refused, 1, "plan demoting two of three managers");
    assert!(
        text(&refused)
            .contains("3 managers -> 1: demoting 2 of 3 at once loses the managers' quorum (2 of 3 must stay); go 3 -> 2 (with `allow_even_managers: true`), then 2 -> 1, one apply each"),
        "{}",
        text(&refused)
    );

    // The leader's Docker stops: the plan still works, read from another manager.
    std::fs::write(
        &config,
        text_of(&config).replace(
            "managers: [n1]\n  workers: [n2, n3]",
            "managers: [n1, n2, n3]",
        ),
    )
    .unwrap();
    lab.sh("n1", "systemctl stop docker.service docker.socket");
    let mut code = None;
    for _ in 0..30 {
        let plan = lab.corral(&["plan", "--detailed-exitcode"], &[&config]);
        code = plan.status.code();
        if code == Some(0) {
            break;
        }
        // The remaining managers elect a new leader first.
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    lab.sh("n1", "systemctl start docker.service");
    assert_eq!(code, Some(0), "plan with the leader's Docker stopped");
    lab.sh(
        "n1",
        "i=0; until [ \"$(docker info --format '{{.Swarm.LocalNodeState}}')\" = active ]; do i=$((i+1)); [ $i -le 60 ] || exit 1; sleep 1; done",
    );

    // A machine no longer listed leaves: n3 (a manager) is demoted, drained, leaves and is
    // removed; two managers remain (a majority of three).
    std::fs::write(
        &config,
        text_of(&config).replace(
            "managers: [n1, n2, n3]",
            "managers: [n1, n2]\n  allow_even_managers: true",
        ),
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&config]);
    assert!(
        stdout(&plan).contains("n3 no longer listed: demoted to worker first")
            && stdout(&plan)
                .contains("n3: \"manager\" -> (demoted, drained, leaves the swarm, removed)"),
        "{}",
        text(&plan)
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "remove n3 from the swarm",
    );
    assert_eq!(
        lab.sh("n1", "docker node ls --format '{{.Hostname}}' | sort"),
        "n1\nn2"
    );
    assert_eq!(
        lab.sh("n3", "docker info --format '{{.Swarm.LocalNodeState}}'"),
        "inactive"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "converged after the removal",
    );

    // Back to one manager: one of two, both reachable, is demoted; then n2 is promoted
    // again for the tests after this one.
    let two = "managers: [n1, n2]\n  allow_even_managers: true";
    std::fs::write(
        &config,
        text_of(&config).replace(two, "managers: [n1]\n  workers: [n2]"),
    )
    .unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "demote one of two managers",
    );
    assert_eq!(
        lab.sh("n1", "docker info --format '{{.Swarm.Managers}}'"),
        "1"
    );
    std::fs::write(
        &config,
        text_of(&config).replace("managers: [n1]\n  workers: [n2]", two),
    )
    .unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "promote n2 again",
    );
}

/// On the swarm left by the previous test (managers n1 and n2): n3 joins back as a worker
/// in the same apply that writes every daemon's settings (one restart at a time) and
/// creates two networks; the encrypted one is a warning on this kernel; a changed subnet
/// replaces its network; a network no longer declared is removed, and one made by hand is
/// left alone.
fn cluster_layer_on_the_swarm(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let config = dir.join("cluster.yaml");
    let text_of = |config: &Path| std::fs::read_to_string(config).unwrap();
    std::fs::write(
        &config,
        text_of(&config).replace(
            "managers: [n1, n2]\n  allow_even_managers: true",
            "managers: [n1, n2]\n  allow_even_managers: true\n  workers: [n3]",
        ),
    )
    .unwrap();
    let layer = dir.join("layer.yaml");
    std::fs::copy("tests/inputs/e2e/cluster/layer.yaml", &layer).unwrap();
    // The service's secret environment value, in a file of the operator's.
    std::fs::write(dir.join("probe-token.txt"), "corral-canary-7f3a\n").unwrap();
    let (config, layer) = (config.display().to_string(), layer.display().to_string());
    lab.sh(
        "n1",
        "docker network create --driver overlay handmade >/dev/null",
    );
    let plan = lab.corral(&["plan"], &[&config, &layer]);
    assert_success(&plan, "plan the cluster layer");
    let shown = stdout(&plan);
    for expected in [
        "~ docker/daemon.hardened[n3]",
        "+ swarm/network.appnet",
        "+ swarm/network.dbnet",
        "Warning: swarm/network.dbnet: encrypted, but the kernel of n1, n2, n3 has no ESP",
    ] {
        assert!(shown.contains(expected), "{expected}:\n{shown}");
    }
    // n3 joins with the worker token of now, which the apply then rotates.
    let before = lab.sh("n1", "docker swarm join-token -q worker");
    let (apply, seen) = argv_with_tokens(lab, || {
        lab.corral(&["apply", "--auto-approve"], &[&config, &layer])
    });
    assert_success(&apply, "apply the cluster layer");
    assert_eq!(seen, Vec::<String>::new(), "join tokens on command lines");
    assert!(
        stdout(&apply).contains("rotate the worker join token"),
        "{}",
        text(&apply)
    );
    let after = lab.sh("n1", "docker swarm join-token -q worker");
    assert!(
        after.starts_with("SWMTKN-") && after != before,
        "the join token used is rotated"
    );
    assert!(
        !text(&apply).contains(&before),
        "the join token is never printed"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker node ls --format '{{.Hostname}} {{.Status}}' | sort"
        ),
        "n1 Ready\nn2 Ready\nn3 Ready"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker network inspect appnet --format '{{index .Labels \"io.corral.managed\"}} {{(index .IPAM.Config 0).Subnet}} {{.Attachable}}'"
        ),
        "swarm 10.241.1.0/24 true"
    );
    assert!(lab
        .sh("n3", "cat /etc/docker/daemon.json")
        .contains("\"max-size\": \"10m\""));
    // The service's secret environment value is in no output and no facts file.
    let facts_file = dir.join("facts.json");
    let facts = lab.corral(
        &["facts", "-o", facts_file.to_str().unwrap()],
        &[&config, &layer],
    );
    assert_success(&facts, "facts of the cluster layer");
    let canary = "corral-canary-7f3a";
    let recorded = std::fs::read_to_string(&facts_file).unwrap();
    assert!(!recorded.contains(canary));
    assert!(
        recorded.contains("PROBE_TOKEN=@@corral-sensitive:same"),
        "the secret is compared when the facts are read"
    );
    assert!(!text(&plan).contains(canary) && !text(&apply).contains(canary));
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config, &layer]),
        0,
        "the cluster layer applied plans empty",
    );
    secret_env_is_in_no_process_list(lab, &dir, &config, &layer);

    // A changed subnet replaces the network, with the service on it detached and attached
    // again around it; dbnet, no longer declared, is removed; the network made by hand stays.
    let original = text_of(Path::new(&layer));
    let changed = original.replace("10.241.1.0/24", "10.241.3.0/24");
    let dbnet = changed
        .find("---\nkind: swarm/network\nname: dbnet")
        .unwrap();
    let service = changed.find("---\nkind: swarm/service").unwrap();
    let reduced = format!("{}{}", &changed[..dbnet], &changed[service..]);
    std::fs::write(&layer, &reduced).unwrap();
    let plan = lab.corral(&["plan"], &[&config, &layer]);
    let shown = stdout(&plan);
    assert!(shown.contains("-/+ swarm/network.appnet"), "{shown}");
    assert!(shown.contains("services probe are detached"), "{shown}");
    assert!(shown.contains("- swarm/network.dbnet"), "{shown}");
    assert!(!shown.contains("handmade"), "{shown}");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config, &layer]),
        "replace and remove networks",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service inspect probe --format '{{len .Spec.TaskTemplate.Networks}}'"
        ),
        "1"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config, &layer]),
        0,
        "converged after the replace",
    );

    // The service no longer declared is removed.
    std::fs::write(
        &layer,
        &reduced[..reduced.find("---\nkind: swarm/service").unwrap()],
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&config, &layer]);
    assert!(
        stdout(&plan).contains("- swarm/service.probe"),
        "{}",
        text(&plan)
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config, &layer]),
        "remove the service",
    );
    assert_eq!(lab.sh("n1", "docker service ls --format '{{.Name}}'"), "");
    assert_eq!(
        lab.sh(
            "n1",
            "docker network ls --filter driver=overlay --format '{{.Name}}' | sort"
        ),
        "appnet\nhandmade\ningress"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config, &layer]),
        0,
        "converged after the service's removal",
    );

    // A node drained for maintenance.
    std::fs::write(
        &config,
        text_of(Path::new(&config)).replace(
            "  workers: [n3]",
            "  workers: [n3]\n  availability: { n3: drain }",
        ),
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&config, &layer]);
    assert!(
        stdout(&plan).contains("n3 availability: \"active\" -> \"drain\""),
        "{}",
        text(&plan)
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config, &layer]),
        "drain n3",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker node inspect n3 --format '{{.Spec.Availability}}'"
        ),
        "drain"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config, &layer]),
        0,
        "converged after the drain",
    );
}

/// A service whose spec is as declared but whose tasks do not all run (its host port taken
/// on n2 by a container of the test's) is drift with the tasks' reason, exit 2; apply
/// brings it back, the next plan is empty, and the service and the container are removed.
/// Runs after `cluster_layer_on_the_swarm` (n3 drained: the global service runs on n1, n2).
fn a_service_that_does_not_run_is_drift_until_restarted(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let files = [dir.join("cluster.yaml"), dir.join("layer.yaml")].map(|p| p.display().to_string());
    let extra = dir.join("runcheck.yaml");
    std::fs::write(
        &extra,
        // Stops at once and is watched 1 s: the forced update stays short.
        "kind: swarm/service\nname: runcheck\nspecification:\n  image: local/busybox:1\n  command: [sh, -c, \"trap 'exit 0' TERM; sleep 86400 & wait\"]\n  mode: global\n  ports:\n    - { published: 18089, target: 8080, mode: host }\n  update: { parallelism: 0, monitor: 1s }\n",
    )
    .unwrap();
    let with = [
        files[0].as_str(),
        files[1].as_str(),
        extra.to_str().unwrap(),
    ];
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &with),
        "create runcheck",
    );
    lab.sh(
        "n2",
        "docker rm -f $(docker ps -q --filter label=com.docker.swarm.service.name=runcheck) >/dev/null && docker run -d --name corral-runcheck-squat -p 18089:8080 local/busybox:1 sleep 600 >/dev/null",
    );
    // Docker starts the task again after its restart delay (5 s), which then fails.
    let deadline = Instant::now() + Duration::from_secs(40);
    let plan = loop {
        let plan = lab.corral(&["plan", "--detailed-exitcode"], &with);
        if stdout(&plan).contains("port is already allocated") || Instant::now() > deadline {
            break plan;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_code(&plan, 2, "a service whose task fails on n2 is drift");
    let shown = stdout(&plan);
    for expected in [
        "~ swarm/service.runcheck",
        "1/2 tasks running: n2: task failed: starting container failed:",
        "docker service update --force",
    ] {
        assert!(shown.contains(expected), "{expected}:\n{shown}");
    }
    lab.sh("n2", "docker rm -f corral-runcheck-squat >/dev/null");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &with),
        "bring runcheck back",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &with),
        0,
        "runcheck runs as declared",
    );
    std::fs::remove_file(&extra).unwrap();
    let files = files.each_ref().map(|f| f.as_str());
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &files),
        "remove runcheck",
    );
    assert_eq!(
        lab.sh("n1", "docker service ls -q --filter name=runcheck"),
        ""
    );
}

/// sshd refuses sessions beyond its `MaxSessions` per connection, and a manager gets up
/// to `--parallelism` service steps at once over one: with `MaxSessions 2` on the manager,
/// six new services are all created in one apply (a refused session is asked for again;
/// nothing ran for it), where they failed with "Session open refused by peer" before.
fn a_manager_that_allows_few_sessions_gets_every_service(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let files = [dir.join("cluster.yaml"), dir.join("layer.yaml")].map(|p| p.display().to_string());
    let extra = dir.join("sessions.yaml");
    let names: Vec<String> = (1..=6).map(|i| format!("sessions{i}")).collect();
    let documents: Vec<String> = names
        .iter()
        .map(|name| format!("kind: swarm/service\nname: {name}\nspecification:\n  image: local/busybox:1\n  command: [sh, -c, \"trap 'exit 0' TERM; sleep 86400 & wait\"]\n  replicas: 1\n  update: {{ monitor: 1s }}\n"))
        .collect();
    std::fs::write(&extra, documents.join("---\n")).unwrap();
    let with = [
        files[0].as_str(),
        files[1].as_str(),
        extra.to_str().unwrap(),
    ];
    // Read first of sshd's drop-ins; a reload applies it to new connections only, and
    // every corral run here starts its own.
    let limit = "/etc/ssh/sshd_config.d/00-00-e2e-sessions.conf";
    lab.sh("n1", &format!("printf 'MaxSessions 2\\n' > {limit}"));
    reload_sshd(lab, "n1");
    let created = lab.corral(&["apply", "--auto-approve", "--parallelism", "10"], &with);
    lab.sh("n1", &format!("rm -f {limit}"));
    reload_sshd(lab, "n1");
    assert_success(
        &created,
        "six services on a manager that allows two sessions",
    );
    std::fs::remove_file(&extra).unwrap();
    let files = files.each_ref().map(|f| f.as_str());
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &files),
        "remove the six services",
    );
    assert_eq!(
        lab.sh("n1", "docker service ls -q --filter name=sessions"),
        ""
    );
}

/// Reloads `machine`'s sshd and returns once it listens again. A reload re-executes sshd,
/// which closes its listening sockets and binds new ones: a connection in between is
/// refused. Done when every listener on port 22 is a socket the old process did not have.
fn reload_sshd(lab: &Lab, machine: &str) {
    let script = r#"listeners() { ss -Hltne 'sport = :22' | grep -o 'ino:[0-9]*' | sort; }
before=$(listeners)
systemctl reload ssh
for _ in $(seq 300); do
  now=$(listeners)
  if [ -n "$now" ] && [ "$(echo "$now" | wc -l)" = "$(echo "$before" | wc -l)" ] \
    && [ -z "$(comm -12 <(echo "$before") <(echo "$now"))" ]; then exit 0; fi
  sleep 0.1
done
echo "sshd did not listen again within 30 s ($before, now $now)" >&2; exit 1"#;
    lab.sh(machine, &format!("bash -c {}", shell_quote(script)));
}

/// Runs `run` while every node's process list is sampled in a loop (`ps -ww -eo args`, as
/// any local user could see it) into `/tmp/ps-samples` there; returns what `run` returned.
fn with_process_samples<T>(lab: &Lab, run: impl FnOnce() -> T) -> T {
    let sample = "rm -f /tmp/ps-stop /tmp/ps-samples; end=$(($(date +%s) + 300)); while [ ! -e /tmp/ps-stop ] && [ \"$(date +%s)\" -lt \"$end\" ]; do ps -ww -eo args >> /tmp/ps-samples; done";
    let samplers: Vec<_> = MACHINES
        .iter()
        .map(|machine| {
            Command::new("ssh")
                .arg("-F")
                .arg(lab.ssh_config())
                .arg(machine)
                .arg(sample)
                .spawn()
                .expect("ssh runs")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let result = run();
    for machine in MACHINES {
        lab.sh(machine, "touch /tmp/ps-stop");
    }
    for mut sampler in samplers {
        let _ = sampler.wait();
    }
    result
}

/// How many of `machine`'s process samples (see [`with_process_samples`]) show any of
/// `patterns`.
fn samples_matching(lab: &Lab, machine: &str, patterns: &[&str]) -> u32 {
    let patterns: Vec<String> = patterns
        .iter()
        .map(|p| format!("-e {}", shell_quote(p)))
        .collect();
    let count = lab.sh(
        machine,
        &format!("grep -c {} /tmp/ps-samples || true", patterns.join(" ")),
    );
    count
        .parse()
        .unwrap_or_else(|_| panic!("{machine}: no count of samples: {count:?}"))
}

/// A new `secret_env` value rolls out with `docker service update`, and no host's process
/// list shows it (nor the old one) at any time: `ps` is sampled in a loop on every node
/// during the apply, as any local user could, and the samples must have caught the update.
fn secret_env_is_in_no_process_list(lab: &Lab, dir: &Path, config: &str, layer: &str) {
    let (old, new) = ("corral-canary-7f3a", "corral-canary-rotated-91c2");
    std::fs::write(dir.join("probe-token.txt"), format!("{new}\n")).unwrap();
    let apply = with_process_samples(lab, || {
        lab.corral(&["apply", "--auto-approve"], &[config, layer])
    });
    assert_success(&apply, "roll out a new secret environment value");
    assert!(
        text(&apply).contains("update service probe (env.PROBE_TOKEN)"),
        "{}",
        text(&apply)
    );
    let mut updates = 0;
    for machine in MACHINES {
        assert_eq!(
            samples_matching(lab, machine, &[old, new]),
            0,
            "{machine}'s process list showed a secret value"
        );
        updates += samples_matching(lab, machine, &["docker service update"]);
    }
    assert!(
        updates > 0,
        "no sample caught the update: the check saw nothing"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service inspect probe --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'"
        ),
        format!("[\"PROBE_TOKEN={new}\"]")
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[config, layer]),
        0,
        "the new secret environment value applied plans empty",
    );
}

/// A real stack that takes its domain from the deploying shell (dockerswarm.rocks'
/// `thelounge.yml`, its image tag made `${LOUNGE_TAG:-latest}`) deploys with the domain
/// from the operator's environment (`from_env`) and the default tag; the domain is on no
/// command line of any host during the deploy, nor in the plan; then it is removed again.
fn a_real_stack_takes_its_variables(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let (config, layer) = (dir.join("cluster.yaml"), dir.join("layer.yaml"));
    let cluster = std::fs::read_to_string(&config).unwrap();
    let labelled = cluster.replacen(
        "  labels:\n",
        "  labels:\n    n1: { thelounge.thelounge-data: \"true\" }\n",
        1,
    );
    assert_ne!(
        labelled, cluster,
        "the cluster's labels are where they were"
    );
    std::fs::write(&config, labelled).unwrap();
    std::fs::copy(
        "fixtures/compose/real/thelounge-lab.yml",
        dir.join("thelounge-lab.yml"),
    )
    .unwrap();
    let lounge = dir.join("lounge.yaml");
    std::fs::write(
        &lounge,
        "kind: swarm/network\nname: traefik-public\nspecification:\n  subnet: 10.250.9.0/24\n---\nkind: swarm/stack\nname: lounge\nspecification:\n  compose: thelounge-lab.yml\n  variables:\n    DOMAIN: { from_env: LOUNGE_DOMAIN }\n",
    )
    .unwrap();
    // No registry: the image is busybox under the stack's name, sleeping.
    for machine in MACHINES {
        lab.sh(machine, "c=$(docker create local/busybox:1) && docker commit --change 'CMD [\"sleep\",\"86400\"]' \"$c\" thelounge/thelounge:latest >/dev/null && docker rm \"$c\" >/dev/null");
    }
    let canary = "lounge.canary-5d1e.example";
    let paths: Vec<String> = [&config, &layer, &lounge]
        .iter()
        .map(|p| p.display().to_string())
        .chain([lab.inventory()])
        .collect();
    let run = |args: &[&str], paths: &[String]| {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .args(paths)
            .env("CORRAL_SSH_CONFIG", lab.ssh_config())
            .env("NO_COLOR", "1")
            .env("LOUNGE_DOMAIN", canary)
            .output()
            .expect("corral runs")
    };
    let plan = run(&["plan"], &paths);
    assert_success(&plan, "plan the stack");
    assert!(
        stdout(&plan).contains("+ swarm/stack.lounge") && !text(&plan).contains(canary),
        "{}",
        text(&plan)
    );
    let apply = with_process_samples(lab, || run(&["apply", "--auto-approve"], &paths));
    assert_success(&apply, "deploy the stack with its variables");
    assert!(!text(&apply).contains(canary), "{}", text(&apply));
    let mut deploys = 0;
    for machine in MACHINES {
        assert_eq!(
            samples_matching(lab, machine, &[canary]),
            0,
            "{machine}'s process list showed the variable's value"
        );
        deploys += samples_matching(lab, machine, &["docker stack deploy"]);
    }
    assert!(
        deploys > 0,
        "no sample caught the deploy: the check saw nothing"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service inspect lounge_app --format '{{.Spec.TaskTemplate.ContainerSpec.Image}} {{index .Spec.Labels \"traefik.http.routers.thelounge-https.rule\"}}'"
        ),
        format!("thelounge/thelounge:latest Host(`{canary}`)")
    );
    assert_code(
        &run(&["plan", "--detailed-exitcode"], &paths),
        0,
        "the stack deployed plans empty",
    );
    // Gone again, with its network and the label, for the checks after this one.
    std::fs::write(&config, cluster).unwrap();
    std::fs::remove_file(&lounge).unwrap();
    let paths = [paths[0].clone(), paths[1].clone(), paths[3].clone()];
    assert_success(
        &run(&["apply", "--auto-approve"], &paths),
        "remove the stack",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service ls --filter name=lounge_ --format '{{.Name}}'"
        ),
        ""
    );
}

/// `volume status` lists a volume's self-heal daemons in varying order, and a saved plan
/// was refused as stale in 2 of 5 tries right after `plan -o`: ten rounds of `plan -o` and
/// `apply PLANFILE` (each changing an option, so that apply runs) all apply, on the swarm
/// of the cluster layer with a Gluster volume.
fn saved_plans_with_a_gluster_volume_are_never_falsely_stale(lab: &Lab) {
    let dir = lab.dir.join("swarm");
    let volume = dir.join("volume.yaml");
    std::fs::copy("tests/inputs/e2e/gluster/volume.yaml", &volume).unwrap();
    let configs: Vec<String> = ["cluster.yaml", "layer.yaml", "volume.yaml"]
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let configs: Vec<&str> = configs.iter().map(String::as_str).collect();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &configs),
        "apply a gluster volume",
    );
    volume_questions_are_kept_as_asked_alone(lab, &configs);
    the_quick_gluster_cli_prints_what_the_cli_prints(lab);
    brick_probes_read_the_attributes_as_the_walk_does(lab);
    let file = lab.dir.join("volume.plan").display().to_string();
    let original = std::fs::read_to_string(&volume).unwrap();
    for round in 1..=10 {
        let size = if round % 2 == 1 { "64MB" } else { "32MB" };
        std::fs::write(
            &volume,
            original.replace(
                "performance.cache-size: 32MB",
                &format!("performance.cache-size: {size}"),
            ),
        )
        .unwrap();
        assert_success(
            &lab.corral(&["plan", "-o", &file], &configs),
            &format!("plan -o, round {round}"),
        );
        assert_success(
            &lab.corral_exact(&["apply".to_owned(), file.clone()]),
            &format!("apply PLANFILE right after plan -o, round {round}"),
        );
        assert_eq!(
            lab.sh(
                "n1",
                "gluster --mode=script volume get shared performance.cache-size | awk 'NR > 2 { print $2 }'"
            ),
            size
        );
    }
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &configs),
        0,
        "the volume plans empty after the rounds",
    );
}

/// On a real host (n1, converged on `examples/`), a fact script's batched probes (the
/// record, files, sysctl values and accounts read by one `perl`, the units asked in one
/// `systemctl show`) give each probe the output and exit code it has run alone in `sh`:
/// files with an original kept, created by corral, sensitive, a directory, links, missing
/// and non-directory paths; sysctl values with a tab; accounts found and not, who logs
/// in; units loaded, enabled, not found; in every layout of the script, with and without
/// timings.
fn batched_probes_print_what_each_probe_prints_alone(lab: &Lab) {
    use corral::facts::Probe;
    use corral::gather::script::FactScript;
    use corral::kinds::{file, service};
    let mut probes: Vec<Probe> = [
        "/etc/issue.net",
        "/etc/motd",
        "/etc/default/corral-heartbeat",
        "/etc/corral-example/api-token",
        "/etc/mtab",
        "/etc/ssh/sshd_config",
        "/etc/passwd/below",
        "/etc/no-such-dir/file",
    ]
    .iter()
    .map(|path| file::probe(path, file::Read::Content))
    .collect();
    probes.push(file::probe("/etc/ssh", file::Read::Metadata));
    // The sensitive file as a plan reads it: compared by digest on the host.
    let token = hex::encode(Sha256::digest(
        std::fs::read("examples/files/api-token.txt").unwrap(),
    ));
    probes.push(file::probe(
        "/etc/corral-example/api-token",
        file::Read::CompareWith(&token),
    ));
    probes.push(file::probe("/var/lib/corral/owed", file::Read::Content));
    for (database, name) in [
        ("passwd", "root"),
        ("group", "root"),
        ("passwd", "corral-no-such-user"),
    ] {
        probes.push(file::account_probe(database, name));
    }
    probes.push(corral::kinds::user::login_probe());
    // corral's record, with the originals of the files examples/ changed, one declared.
    probes.push(corral::managed::probe(&["/etc/issue.net".to_owned()]));
    for key in [
        "net.ipv4.conf.all.log_martians",
        "net.ipv4.ip_local_port_range",
    ] {
        probes.push(Probe {
            key: format!("sysctl:{key}"),
            script: format!("sysctl -n {}", corral::shell::quote(key)),
        });
    }
    for unit in [
        "ssh.service",
        "glusterd.service",
        "corral-heartbeat.service",
        "no-such.service",
    ] {
        probes.push(service::unit_probe(unit));
    }
    let run = |script: &str| {
        let out = corral_core::testing::output_with_stdin(
            Command::new("ssh")
                .arg("-F")
                .arg(lab.ssh_config())
                .args(["n1", "sh -s"]),
            script.as_bytes(),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let mut alone_script = String::new();
    for (index, probe) in probes.iter().enumerate() {
        alone_script.push_str(&format!(
            "printf '@@alone {index}\\n'; sh -c {}; printf '\\n@@rc %s\\n' $?\n",
            shell_quote(&format!("export LC_ALL=C\nexec 2>&1\n{}", probe.script))
        ));
    }
    let alone = run(&alone_script);
    let mut expected = std::collections::BTreeMap::new();
    for part in alone.split("@@alone ").skip(1) {
        let (index, rest) = part.split_once('\n').unwrap();
        let (output, rc) = rest.rsplit_once("\n@@rc ").unwrap();
        let probe = &probes[index.parse::<usize>().unwrap()];
        expected.insert(
            probe.key.clone(),
            (output.to_owned(), rc.trim().parse::<i32>().unwrap()),
        );
    }
    assert_eq!(expected.len(), probes.len(), "{alone}");
    assert!(expected["file:content:/etc/issue.net"]
        .0
        .contains("original kept"));
    assert!(expected["systemd:no-such.service"]
        .0
        .contains("LoadState=not-found"));
    assert!(expected["corral:managed"].0.contains("@original\t"));
    assert!(expected["file:compare:/etc/corral-example/api-token"]
        .0
        .contains("compare same"));
    let slow = Probe {
        key: "slow".into(),
        script: ": docker; echo slow".into(),
    };
    let quick: Vec<Probe> = (0..10)
        .map(|i| Probe {
            key: format!("k{i}"),
            script: format!("echo {i}"),
        })
        .collect();
    for (n, layout) in [
        probes.clone(),
        [probes.clone(), vec![slow.clone()]].concat(),
        [probes.clone(), quick, vec![slow]].concat(),
    ]
    .into_iter()
    .enumerate()
    {
        for timings in [false, true] {
            let script = FactScript::build(&layout, timings);
            // What the batches answered: the files `perl` read (its indexes), and in the
            // first layout, where the units run in the script's own shell, the blocks.
            let out = run(&format!(
                "{}printf '@@done %s|%s\\n' \"$corral_done\" \"${{corral_n:-}}\"\n",
                script.text
            ));
            let (answered, blocks) = out
                .rsplit_once("@@done ")
                .unwrap()
                .1
                .trim()
                .split_once('|')
                .unwrap();
            assert_eq!(
                answered.split_whitespace().count(),
                17,
                "the record, every file, sysctl key and account but the missing one: {out}"
            );
            if n == 0 {
                assert_eq!(blocks, "4", "one systemctl for the four units: {out}");
            }
            let outputs = script.split(&out).unwrap();
            for (key, (output, rc)) in &expected {
                assert_eq!(
                    (&outputs[key].output, outputs[key].rc),
                    (output, *rc),
                    "{key} (timings: {timings})"
                );
            }
        }
    }
}

/// On a brick machine of a started volume, the brick probe that reads the attributes of
/// the path and its parents in one `getfattr` prints what the walk with a `getfattr` per
/// attribute and level prints: the brick in use, its parent, paths below and beside it.
fn brick_probes_read_the_attributes_as_the_walk_does(lab: &Lab) {
    use corral::facts::gluster::{brick_probe, brick_probe_walking};
    for path in [
        "/data/bricks/shared",
        "/data/bricks",
        "/data/bricks/shared/.glusterfs",
        "/data/bricks/shared/missing/deeper",
        "/data/bricks/other",
    ] {
        let (one, walked) = (brick_probe(path), brick_probe_walking(path));
        assert_ne!(one.script, walked.script);
        let run = |script: &str| lab.sh("n1", &format!("sh -c {}", shell_quote(script)));
        let out = run(&one.script);
        assert_eq!(out, run(&walked.script), "{path}");
        if path == "/data/bricks/shared" {
            assert!(
                out.contains("in-use trusted.glusterfs.volume-id /data/bricks/shared")
                    && out.contains("in-use trusted.gfid /data/bricks/shared"),
                "{out}"
            );
        }
    }
}

/// On a real GlusterFS host the fact scripts' `gluster` (QUICK_CLI: the CLI without its
/// `gsyncd --version`) is the function, and prints the same bytes as the CLI for every
/// question a plan asks, alone and in a batch, with the same exit codes.
fn the_quick_gluster_cli_prints_what_the_cli_prints(lab: &Lab) {
    use corral_core::facts::gluster::QUICK_CLI;
    let asked = "printf '%s\\n' 'peer status' 'volume info shared' | command gluster --mode=script --xml; for q in 'peer status' 'pool list' 'volume info' 'volume status shared' 'volume get shared all' 'volume info missing'; do command gluster --mode=script --xml $q; echo \"rc $?\"; done";
    let plain = lab.sh("n2", asked);
    // In `sh`, as fact scripts run.
    let quick = format!(
        "{QUICK_CLI}type gluster | head -n 1; {}",
        asked.replace("command gluster", "gluster")
    );
    let quick = lab.sh("n2", &format!("sh -c {}", shell_quote(&quick)));
    let (kind, quick) = quick.split_once('\n').unwrap();
    assert_eq!(
        kind, "gluster is a shell function",
        "QUICK_CLI on a real host"
    );
    assert!(plain.contains("<volGetopts>") && plain.contains("<peerStatus>"));
    // `volume status` lists the self-heal daemons in varying order; the rest is the same.
    let stable = |text: &str| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    assert_eq!(stable(quick), stable(&plain));
}

/// The volume's three questions, asked in one `gluster` process, are kept in the facts as
/// the three probes they answer (and the batch itself not at all), with the volume read.
fn volume_questions_are_kept_as_asked_alone(lab: &Lab, configs: &[&str]) {
    let file = lab.dir.join("volume-facts.json");
    assert_success(
        &lab.corral(&["facts", "-o", file.to_str().unwrap()], configs),
        "facts of the volume",
    );
    let recorded = std::fs::read_to_string(&file).unwrap();
    for key in [
        "gluster:volume-info:shared",
        "gluster:volume-status:shared",
        "gluster:volume-get:shared:all",
    ] {
        assert!(
            recorded.contains(&format!("\"{key}\"")),
            "{key} is not in the facts"
        );
    }
    assert!(!recorded.contains("\"gluster:volume:shared\""));
    assert!(recorded.contains("<volGetopts>") && recorded.contains("<volStatus>"));
}

/// Each cluster example converges from blank hosts in one apply and plans empty after:
/// the Krill-like cluster serves on every node what its pinned controller writes to the
/// replicated volume; the active/passive pair's application moves to the passive node with
/// a label swap, and goes on writing to the same data.
fn examples_converge_from_blank_hosts() {
    for example in ["krill", "active-passive"] {
        let lab = Lab::up();
        let dir = lab.dir.join(example);
        // Nothing a previous run wrote there (the hardening modules) may join this apply.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(format!("examples/{example}")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        let config = dir.display().to_string();
        let apply = lab.corral(&["apply", "--auto-approve"], &[&config]);
        assert_success(&apply, &format!("apply examples/{example} to blank hosts"));
        assert_code(
            &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
            0,
            &format!("examples/{example} applied plans empty"),
        );
        match example {
            "krill" => {
                // The controller (pinned to n1) writes the status page on the volume; the
                // global status service serves it on every node's host port.
                assert_eq!(
                    lab.sh("n1", "docker service ps controller --filter desired-state=running --format '{{.Node}}'"),
                    "n1"
                );
                for machine in MACHINES {
                    let mut page = String::new();
                    for _ in 0..30 {
                        page = lab.sh(machine, "busybox wget -qO- http://127.0.0.1:9100/index.html 2>/dev/null || true");
                        if !page.is_empty() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                    assert!(
                        page.contains("UTC"),
                        "{machine} serves the status page: {page:?}"
                    );
                }
                hardening_modules_keep_the_cluster_working(&lab, &dir);
            }
            _ => {
                let config_file = dir.join("pair.yaml");
                let swapped = std::fs::read_to_string(&config_file)
                    .unwrap()
                    .replace("n1: { role: active }", "n1: { role: was-active }")
                    .replace("n2: { role: passive }", "n2: { role: active }")
                    .replace("n1: { role: was-active }", "n1: { role: passive }");
                std::fs::write(&config_file, swapped).unwrap();
                let plan = lab.corral(&["plan"], &[&config]);
                assert!(
                    stdout(&plan).contains("n2 labels.role: \"passive\" -> \"active\""),
                    "{}",
                    text(&plan)
                );
                assert_success(
                    &lab.corral(&["apply", "--auto-approve"], &[&config]),
                    "swap the active and passive labels",
                );
                let mut journal = String::new();
                for _ in 0..30 {
                    journal = lab.sh("n1", "tail -n 1 /srv/ha/journal");
                    if journal.starts_with("n2 ") {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                assert!(
                    journal.starts_with("n2 "),
                    "the application writes from n2: {journal:?}"
                );
                assert!(
                    lab.sh("n2", "grep -c '^n1 ' /srv/ha/journal")
                        .parse::<u32>()
                        .unwrap()
                        > 0,
                    "what it wrote on n1 is still there"
                );
                assert_code(
                    &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
                    0,
                    "the swap applied plans empty",
                );
            }
        }
    }
}

/// With one host down, plan names it and still plans the others; exit code 1.
fn unreachable_host_is_named_and_others_planned(lab: &Lab) {
    lab.sh("n1", "sysctl -q -w net.ipv4.conf.all.log_martians=0");
    let stop = Command::new("docker")
        .args(["stop", "-t", "1", &format!("{LAB}-n3")])
        .output()
        .unwrap();
    assert_success(&stop, "docker stop n3");

    let out = lab.corral(&["plan", "--connect-timeout", "3"], &["examples/"]);
    assert_code(&out, 1, "plan with an unreachable host");
    let shown = stdout(&out);
    assert!(
        shown.contains("~ os/sysctl.baseline[n1]"),
        "n1 is still planned:\n{}",
        text(&out)
    );
    assert!(
        shown.contains("host n3 could not be read"),
        "{}",
        text(&out)
    );
    assert!(
        shown.contains("10.223.0.13"),
        "the error names the address:\n{}",
        text(&out)
    );
    assert!(!shown.contains("[n2]"), "n2 is in sync:\n{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the plan is incomplete"),
        "{}",
        text(&out)
    );

    // Apply refuses an incomplete plan and touches nothing; leaving the dead host out works.
    let refused = lab.corral(
        &["apply", "--auto-approve", "--connect-timeout", "3"],
        &["examples/"],
    );
    assert_code(&refused, 1, "apply with an unreachable host");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refusing to apply an incomplete plan"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        lab.sh("n1", "sysctl -n net.ipv4.conf.all.log_martians"),
        "0",
        "nothing touched"
    );
    let limited = lab.corral(
        &["apply", "--auto-approve", "--limit", "n1", "--limit", "n2"],
        &["examples/"],
    );
    assert_success(&limited, "apply without the dead host");
    assert_eq!(
        lab.sh("n1", "sysctl -n net.ipv4.conf.all.log_martians"),
        "1"
    );
}

/// Copies a directory tree of regular files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The 3-layer example converges from blank hosts in one apply and plans empty. A new
/// secret value is one rotation, naming what it restarts; applied, the container reads it,
/// the old object is gone, and the value is in no output, saved plan, facts file, host
/// record, log or process list. An edit of the Compose file plans exactly its attributes;
/// a service taken out of it is that service's removal only.
fn three_layer_example_rotates_and_follows_its_compose_file() {
    let lab = Lab::up();
    let dir = lab.dir.join("three-layer");
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(Path::new("examples/three-layer"), &dir);
    let config = dir.display().to_string();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply examples/three-layer to blank hosts",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "examples/three-layer applied plans empty",
    );
    // The stack's own config, served on the front node.
    let page = lab.sh("n3", "busybox wget -qO- http://127.0.0.1:8088/index.html");
    assert!(page.contains("shop"), "{page:?}");

    // Rotation, with a canary value.
    let canary = "corral-e2e-canary-4b1d7e";
    std::fs::write(dir.join("secrets/db_password.txt"), canary).unwrap();
    let plan = lab.corral(&["plan"], &[&config]);
    let shown = stdout(&plan);
    assert_eq!(shown.matches("~ swarm/secret.").count(), 1, "{shown}");
    assert!(shown.contains("restarts: \"swarm/stack.shop\""), "{shown}");
    assert!(
        shown.contains("api.secrets.db_password") && shown.contains("db.secrets.db_password"),
        "{shown}"
    );
    let saved = dir.join("rotation.plan");
    let facts = dir.join("facts.json");
    let mut outputs = vec![plan];
    outputs.push(lab.corral(&["plan", "-o", saved.to_str().unwrap()], &[&config]));
    outputs.push(lab.corral(&["facts", "-o", facts.to_str().unwrap()], &[&config]));
    // The process lists of the hosts and of this machine, sampled while the apply runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, ssh_config) = (done.clone(), lab.ssh_config());
        std::thread::spawn(move || {
            let mut seen = String::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for machine in MACHINES {
                    let out = Command::new("ssh")
                        .arg("-F")
                        .arg(&ssh_config)
                        .args([machine, "ps -eo args"])
                        .output()
                        .unwrap();
                    seen.push_str(&String::from_utf8_lossy(&out.stdout));
                }
                let local = Command::new("ps").args(["-eo", "args"]).output().unwrap();
                seen.push_str(&String::from_utf8_lossy(&local.stdout));
            }
            seen
        })
    };
    let apply = lab.corral_exact(&["apply".into(), saved.display().to_string()]);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let processes = watcher.join().unwrap();
    assert_success(&apply, "apply the rotation as planned");
    outputs.push(apply);
    let db = lab.sh(
        "n1",
        "docker exec $(docker ps -q -f name=shop_db) cat /run/secrets/db_password",
    );
    assert_eq!(db, canary, "the container reads the new value");
    let versions = lab.sh(
        "n1",
        "docker secret ls --format '{{.Name}}' | grep -c '^db_password_'",
    );
    assert_eq!(versions, "1", "the old version is gone");
    let replan = lab.corral(&["plan", "--detailed-exitcode"], &[&config]);
    assert_code(&replan, 0, "the rotation applied plans empty");
    outputs.push(replan);
    for out in &outputs {
        assert!(!text(out).contains(canary), "{}", text(out));
    }
    for file in [&saved, &facts] {
        let content = std::fs::read_to_string(file).unwrap();
        assert!(
            !content.contains(canary),
            "{} holds the value",
            file.display()
        );
    }
    assert!(
        !processes.contains(canary),
        "a process list showed the value"
    );
    for machine in MACHINES {
        let found = lab.sh(
            machine,
            &format!("grep -rl {canary} /var/lib/corral 2>/dev/null; journalctl --no-pager 2>/dev/null | grep -c {canary} || true"),
        );
        assert_eq!(found, "0", "{machine}'s records or journal hold the value");
    }

    // One service's image and replicas in the Compose file: exactly those two.
    for machine in MACHINES {
        lab.sh(machine, "docker tag local/busybox:1 local/busybox:2");
    }
    let compose = dir.join("app/compose.yaml");
    let original = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        original
            .replace(
                "  api:\n    image: local/busybox:1",
                "  api:\n    image: local/busybox:2",
            )
            .replace("replicas: 1", "replicas: 2"),
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&config]);
    let shown = stdout(&plan);
    assert!(
        shown.contains("~ api.image:    \"local/busybox:1\" -> \"local/busybox:2\"")
            && shown.contains("~ api.replicas: \"1\" -> \"2\""),
        "{shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{shown}"
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply the edit",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service ls --filter name=shop_api --format '{{.Replicas}} {{.Image}}'"
        ),
        "2/2 local/busybox:2"
    );
    // Scaled down again: the apply says done once the task too many has stopped (its
    // `sleep`, PID 1, ignores SIGTERM: `2/1` for Docker's 10 s grace period), not at `2/1`.
    std::fs::write(
        &compose,
        std::fs::read_to_string(&compose)
            .unwrap()
            .replace("replicas: 2", "replicas: 1"),
    )
    .unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "scale the stack's service down",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service ls --filter name=shop_api --format '{{.Replicas}}'"
        ),
        "1/1"
    );

    // The front service taken out of the file: its removal only.
    let current = std::fs::read_to_string(&compose).unwrap();
    let start = current.find("  web:\n").unwrap();
    let end = current.find("networks:\n  dbnet").unwrap();
    std::fs::write(
        &compose,
        format!("{}{}", &current[..start], &current[end..])
            .replace("configs:\n  web_index: { file: ./index.html }\n", ""),
    )
    .unwrap();
    let plan = lab.corral(&["plan"], &[&config]);
    let shown = stdout(&plan);
    assert!(
        shown.contains("- web:") && !shown.contains("api."),
        "{shown}"
    );
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply the removal",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "docker service ls --format '{{.Name}}' | grep -c '^shop_' || true"
        ),
        "2"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "the removal applied plans empty",
    );
}

/// A file sshd reads before corral's drop-in (`0-hand.conf: MaxSessions 9`) kept its value:
/// apply said "Apply complete!" and every plan showed the same change. The plan warns,
/// naming the file; apply fails after the reload, naming it (and puts the file back); once
/// the file is gone, the setting takes effect and the plan is empty.
fn sshd_setting_a_file_read_first_overrides_is_warned_and_fails(lab: &Lab) {
    let dir = lab.dir.join("sshd-override");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("site.yaml"),
        "kind: os/sshd\nname: override\nspecification:\n  machines: [n3]\n  settings:\n    MaxSessions: \"4\"\n",
    )
    .unwrap();
    let config = dir.display().to_string();
    lab.sh(
        "n3",
        "printf 'MaxSessions 9\\n' > /etc/ssh/sshd_config.d/0-hand.conf",
    );
    let plan = lab.corral(&["plan"], &[&config]);
    assert_success(&plan, "plan a setting a file read first overrides");
    assert!(
        text(&plan).contains("MaxSessions 9 in /etc/ssh/sshd_config.d/0-hand.conf:1 is read before corral's /etc/ssh/sshd_config.d/00-corral-override.conf"),
        "{}",
        text(&plan)
    );
    let apply = lab.corral(&["apply", "--auto-approve"], &[&config]);
    assert_code(&apply, 1, "apply of a setting that does not take effect");
    assert!(
        text(&apply).contains("corral: MaxSessions is \"9\" after the reload, not \"4\": /etc/ssh/sshd_config.d/0-hand.conf:1: MaxSessions 9 sets it first"),
        "{}",
        text(&apply)
    );
    assert!(
        !text(&apply).contains("Apply complete!"),
        "{}",
        text(&apply)
    );
    lab.sh("n3", "rm /etc/ssh/sshd_config.d/0-hand.conf");
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply once the file is gone",
    );
    assert_eq!(
        lab.sh("n3", "sshd -T | grep '^maxsessions '"),
        "maxsessions 4"
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "the setting in effect plans empty",
    );
}

/// `os/sshd`: settings converge and plan empty; one that locks out the user corral
/// connects as is refused in the plan; one that breaks key login is applied, the new login
/// fails, and the host is as before and reachable; removing the resource gives sshd its
/// own settings back.
fn sshd_changes_that_cut_access_are_rolled_back(lab: &Lab) {
    let dir = lab.dir.join("sshd");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.display().to_string();
    let site = dir.join("site.yaml");
    let write = |settings: &str| {
        std::fs::write(
            &site,
            format!("kind: os/sshd\nname: hardening\nspecification:\n  machines: all\n  settings:\n{settings}"),
        )
        .unwrap();
    };
    let good = "    X11Forwarding: \"no\"\n    MaxAuthTries: \"3\"\n    PermitRootLogin: prohibit-password\n";
    write(good);
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply sshd settings",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "sshd settings applied plan empty",
    );
    assert_eq!(
        lab.sh("n2", "sshd -T | grep '^maxauthtries '"),
        "maxauthtries 3"
    );

    write("    PermitRootLogin: \"no\"\n");
    let refused = lab.corral(&["plan"], &[&config]);
    assert_code(&refused, 1, "a setting that locks out root");
    assert!(
        text(&refused).contains("refused: `PermitRootLogin no` while corral connects as root"),
        "{}",
        text(&refused)
    );

    write(&format!(
        "{good}    AuthorizedKeysFile: /nonexistent/keys\n"
    ));
    let before = lab.sh(
        "n1",
        "sha256sum /etc/ssh/sshd_config.d/00-corral-hardening.conf",
    );
    let broken = lab.corral(&["apply", "--auto-approve", "--limit", "n1"], &[&config]);
    assert_code(&broken, 1, "a setting that breaks key login");
    assert!(
        text(&broken).contains("rolled back: a new SSH login failed after the change"),
        "{}",
        text(&broken)
    );
    assert_eq!(
        lab.sh(
            "n1",
            "sha256sum /etc/ssh/sshd_config.d/00-corral-hardening.conf"
        ),
        before,
        "the file is as before"
    );
    assert_eq!(
        lab.sh("n1", "sshd -T | grep '^authorizedkeysfile '"),
        "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2"
    );
    assert_eq!(
        lab.sh(
            "n1",
            "systemctl list-units --all --no-legend 'corral-guard-*' | wc -l"
        ),
        "0",
        "no rollback timer is left"
    );

    // A firewall that forgets the SSH port: the new login fails, the rules go back.
    std::fs::write(
        dir.join("firewall.yaml"),
        "kind: os/firewall\nname: locked\nspecification:\n  machines: [n1]\n  input_policy: drop\n  allow:\n    - { protocol: tcp, ports: [2222] }\n",
    )
    .unwrap();
    write(good);
    let locked = lab.corral(&["apply", "--auto-approve", "--limit", "n1"], &[&config]);
    assert_code(&locked, 1, "a firewall without the SSH port");
    assert!(
        text(&locked).contains("os/firewall.locked[n1]")
            && text(&locked).contains("rolled back: a new SSH login failed after the change"),
        "{}",
        text(&locked)
    );
    assert_eq!(
        lab.sh(
            "n1",
            "nft list table inet corral >/dev/null 2>&1 && echo loaded || echo absent"
        ),
        "absent"
    );
    std::fs::remove_file(dir.join("firewall.yaml")).unwrap();

    // Gone from the configuration: the drop-in goes and sshd reloads.
    std::fs::remove_file(&site).unwrap();
    std::fs::write(
        dir.join("marker.yaml"),
        "kind: os/file\nname: marker\nspecification:\n  machines: all\n  path: /etc/corral-e2e-sshd\n  content: \"x\\n\"\n",
    )
    .unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "remove the sshd settings",
    );
    assert_eq!(
        lab.sh("n2", "sshd -T | grep '^maxauthtries '"),
        "maxauthtries 6"
    );
}

/// Connecting as `ops` through sudo: applies prove a new login and `sudo -n true`; a
/// firewall whose SSH rule leaves out corral's own address is warned about; a rule added
/// by hand shows as drift, by itself; removing `os/user.ops` (its sudoers drop-in) is
/// refused in the plan.
fn corral_keeps_its_own_way_in(lab: &Lab) {
    let dir = lab.dir.join("way-in");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.display().to_string();
    let key = std::fs::read_to_string(lab.dir.join("id_ed25519.pub")).unwrap();
    let users = dir.join("users.yaml");
    let users_text = format!(
        "kind: os/user\nname: ops\nspecification:\n  machines: [n1]\n  name: ops\n  authorized_keys: [\"{}\"]\n  sudo: {{ commands: ALL, nopasswd: true }}\n",
        key.trim()
    );
    std::fs::write(&users, &users_text).unwrap();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "create ops as root",
    );
    // The same hosts, n1 reached as ops.
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replacen(
        "ssh: { user: root }",
        "ssh: { user: ops }",
        1,
    );
    let as_ops_inventory = lab.dir.join("ops-inventory.yaml");
    std::fs::write(&as_ops_inventory, inventory).unwrap();
    let as_ops = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.insert(1, "--expand".into());
        all.push(config.clone());
        all.push(as_ops_inventory.display().to_string());
        lab.corral_exact(&all)
    };
    let firewall = dir.join("firewall.yaml");
    std::fs::write(
        &firewall,
        "kind: os/firewall\nname: way-in\nspecification:\n  machines: [n1]\n  input_policy: drop\n  allow:\n    - { protocol: tcp, ports: [22], from: [192.0.2.0/24] }\n",
    )
    .unwrap();
    let warned = as_ops(&["plan"]);
    assert!(
        text(&warned).contains("admits only 192.0.2.0/24, and corral connects from 10.223.0.1"),
        "{}",
        text(&warned)
    );
    std::fs::write(
        &firewall,
        "kind: os/firewall\nname: way-in\nspecification:\n  machines: [n1]\n  input_policy: drop\n  allow:\n    - { protocol: tcp, ports: [22] }\n",
    )
    .unwrap();
    let applied = as_ops(&["apply", "--auto-approve"]);
    assert_success(&applied, "a firewall applied as ops");
    assert!(
        text(&applied).contains("a new login and sudo work: disarm the rollback"),
        "{}",
        text(&applied)
    );
    lab.sh("n1", "nft add rule inet corral input tcp dport 8080 accept");
    let drift = as_ops(&["drift"]);
    assert_code(&drift, 2, "a rule added by hand");
    assert!(
        text(&drift).contains("table inet corral, added outside corral:")
            && text(&drift).contains("\"tcp dport 8080 accept\""),
        "{}",
        text(&drift)
    );
    std::fs::remove_file(&firewall).unwrap();
    std::fs::remove_file(&users).unwrap();
    // A configuration is never empty: one harmless resource stays.
    std::fs::write(
        dir.join("keep.yaml"),
        "kind: os/file\nname: way-in-kept\nspecification: { machines: [n1], path: /tmp/corral-way-in, content: \"kept\\n\" }\n",
    )
    .unwrap();
    let refused = as_ops(&["plan"]);
    assert_code(&refused, 1, "removing the connecting user's sudo");
    assert!(
        text(&refused).contains("refused: removing /etc/sudoers.d/corral-ops (os/user.ops is no longer in the configuration) would take away the sudo right of ops"),
        "{}",
        text(&refused)
    );
    // As root, both go: the firewall table and the drop-in.
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "remove the firewall and the drop-in as root",
    );
    assert_eq!(
        lab.sh(
            "n1",
            "nft list table inet corral >/dev/null 2>&1 && echo loaded || echo absent; ls /etc/sudoers.d/corral-ops 2>&1 | grep -c 'No such'"
        ),
        "absent\n1"
    );
}

/// The hardening baseline and the Swarm and Gluster port modules applied to the running
/// Krill-like cluster: the firewall drops what they do not allow, yet the services answer
/// on their host ports, the volume stays mounted, key login works, and a plan is empty.
fn hardening_modules_keep_the_cluster_working(lab: &Lab, dir: &Path) {
    std::fs::write(
        dir.join("hardening.yaml"),
        "kind: module\nname: base\nspecification:\n  source: hardening/baseline\n  inputs:\n    packages: [tree]\n    audit_machines: []\n    debian_kernel_machines: []\n    kernel_machines: []\n---\nkind: module\nname: swarm-ports\nspecification:\n  source: swarm/ports\n  inputs:\n    machines: all\n    managers: [n1, n2, n3]\n---\nkind: module\nname: gluster-ports\nspecification:\n  source: gluster/ports\n  inputs:\n    machines: all\n",
    )
    .unwrap();
    let config = dir.display().to_string();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &[&config]),
        "apply the hardening modules to the cluster",
    );
    assert_code(
        &lab.corral(&["plan", "--detailed-exitcode"], &[&config]),
        0,
        "the hardened cluster plans empty",
    );
    for machine in MACHINES {
        assert_eq!(
            lab.sh(
                machine,
                "nft list chain inet corral input | grep -c 'policy drop'"
            ),
            "1"
        );
        let page = lab.sh(
            machine,
            "busybox wget -qO- http://127.0.0.1:9100/index.html 2>/dev/null || true",
        );
        assert!(
            page.contains("UTC"),
            "{machine} still serves the status page: {page:?}"
        );
        assert_eq!(
            lab.sh(machine, "findmnt -n -o FSTYPE /srv/krill"),
            "fuse.glusterfs"
        );
    }
    // From another host: the host port through the firewall (forwarded, not input).
    let across = lab.sh(
        "n2",
        "busybox wget -qO- http://10.223.0.11:9100/index.html 2>/dev/null || true",
    );
    assert!(across.contains("UTC"), "n1's host port from n2: {across:?}");
    assert_eq!(
        lab.sh("n1", "docker node ls --format '{{.Status}}' | sort -u"),
        "Ready",
        "the swarm's nodes still talk"
    );
    // A mount made after the firewall (a new client, a reboot) reaches every brick: the
    // bricks' ports are random in glusterd's range, all of which the module opens.
    assert_eq!(
        lab.sh(
            "n2",
            "mkdir -p /mnt/check && mount -t glusterfs n1:/krill-data /mnt/check && findmnt -n -o FSTYPE /mnt/check && umount /mnt/check",
        ),
        "fuse.glusterfs"
    );
}
