//! The GitHub side of examples/ci/: `drift-issue.sh` and `post-comment.sh` drive the GitHub
//! CLI, which cannot reach GitHub from here. A stand-in `gh` on PATH records each call and
//! answers the two queries the scripts make (the open drift issue; the comment carrying the
//! marker) from the environment, so the tests check what the scripts ask GitHub to do.
//! The corral side of the jobs (nightly.sh, pr-plan.sh) runs against the lab in tests/e2e.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory with the stand-in `gh` and the log of its calls.
struct FakeGh {
    dir: tempfile::TempDir,
}

impl FakeGh {
    fn new() -> FakeGh {
        let dir = tempfile::tempdir().unwrap();
        let gh = dir.path().join("gh");
        std::fs::write(
            &gh,
            r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$GH_LOG"
previous=
for arg in "$@"; do
    [[ $previous == --body-file ]] && cp "$arg" "$GH_LOG.body"
    previous=$arg
done
case "$1 $2" in
"issue list") printf '%s' "${OPEN_ISSUE:-}" ;;
"api --paginate") printf '%s' "${COMMENT_ID:-}" ;;
esac
"#,
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeGh { dir }
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(Path::new("examples/ci").join(script))
            .args(args)
            .env("PATH", path)
            .env("GH_LOG", self.log_path())
            .env("GITHUB_REPOSITORY", "acme/infra")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

fn succeeded(out: &Output) -> bool {
    if !out.status.success() {
        eprintln!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

#[test]
fn drift_opens_an_issue_then_updates_it_and_no_drift_closes_it() {
    let gh = FakeGh::new();
    let report = gh.file("drift.md", "### corral drift: 1 resource instance on n3\n");

    assert!(succeeded(&gh.run("drift-issue.sh", &["2", &report], &[])));
    let calls = gh.calls();
    assert!(
        calls[0].starts_with("label create corral-drift"),
        "{calls:?}"
    );
    assert!(calls[1].starts_with("issue list --label corral-drift --state open"));
    assert!(
        calls[2].starts_with("issue create --title corral: the hosts drifted")
            && calls[2].contains("--label corral-drift --body-file"),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 3);

    let gh = FakeGh::new();
    let report = gh.file("drift.md", "### corral drift\n");
    assert!(succeeded(&gh.run(
        "drift-issue.sh",
        &["2", &report],
        &[("OPEN_ISSUE", "17")]
    )));
    let calls = gh.calls();
    assert!(
        calls[2].starts_with("issue edit 17 --body-file"),
        "{calls:?}"
    );

    let gh = FakeGh::new();
    let out = gh.run("drift-issue.sh", &["0", &report], &[("OPEN_ISSUE", "17")]);
    assert!(succeeded(&out));
    let calls = gh.calls();
    assert!(
        calls[1].starts_with("issue close 17 --comment No drift"),
        "{calls:?}"
    );

    let gh = FakeGh::new();
    let out = gh.run("drift-issue.sh", &["0", &report], &[]);
    assert!(succeeded(&out));
    assert_eq!(gh.calls().len(), 1, "only the query: nothing to close");
}

/// A failed drift run (exit 1) fails the job and leaves the issue alone.
#[test]
fn a_failed_drift_run_touches_no_issue() {
    let gh = FakeGh::new();
    let report = gh.file("drift.md", "");
    let out = gh.run("drift-issue.sh", &["1", &report], &[("OPEN_ISSUE", "17")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(gh.calls().is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("left as it is"));
}

/// A report longer than an issue can hold is cut, and says so (the stand-in keeps the
/// body file it was given).
#[test]
fn a_long_report_is_cut_to_what_an_issue_holds() {
    let gh = FakeGh::new();
    let report = gh.file("drift.md", &"x".repeat(70_000));
    assert!(succeeded(&gh.run("drift-issue.sh", &["2", &report], &[])));
    let body = std::fs::read_to_string(gh.dir.path().join("calls.body")).unwrap();
    assert!(body.len() < 65_536, "{}", body.len());
    assert!(body.contains("The report is cut here"));
}

#[test]
fn the_plan_comment_is_posted_once_then_updated() {
    let gh = FakeGh::new();
    let comment = gh.file("comment.md", "<!-- corral-plan -->\n### corral plan\n");

    assert!(succeeded(&gh.run(
        "post-comment.sh",
        &["42", &comment],
        &[]
    )));
    let calls = gh.calls();
    assert!(
        calls[0].starts_with("api --paginate repos/acme/infra/issues/42/comments"),
        "{calls:?}"
    );
    assert!(
        calls[0].contains(r#"startswith("<!-- corral-plan -->")"#),
        "{calls:?}"
    );
    assert!(
        calls[0].contains(r#".user.login == "github-actions[bot]""#),
        "only the workflow's own comment is updated: {calls:?}"
    );
    assert_eq!(
        calls[1],
        format!("api --method POST repos/acme/infra/issues/42/comments -F body=@{comment}")
    );

    let gh = FakeGh::new();
    let comment = gh.file("comment.md", "<!-- corral-plan -->\n### corral plan\n");
    assert!(succeeded(&gh.run(
        "post-comment.sh",
        &["42", &comment],
        &[("COMMENT_ID", "9001")]
    )));
    assert_eq!(
        gh.calls()[1],
        format!("api --method PATCH repos/acme/infra/issues/comments/9001 -F body=@{comment}")
    );
}

/// A comment file without the marker would never be found again: refused.
#[test]
fn a_comment_without_its_marker_is_refused() {
    let gh = FakeGh::new();
    let comment = gh.file("comment.md", "### corral plan\n");
    let out = gh.run("post-comment.sh", &["42", &comment], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(gh.calls().is_empty());
}

/// The steps of every job of a workflow in examples/ci/github/.
/// Read with corral's own YAML reader, into JSON values.
fn workflow(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new("examples/ci/github").join(name)).unwrap();
    let documents = corral::base::yaml::parse_documents(&text).unwrap();
    corral::base::yaml::from_node(&documents[0].root).unwrap()
}

fn steps(workflow: &serde_json::Value) -> Vec<&serde_json::Value> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap())
        .collect()
}

/// `actions/checkout` keeps the job token in .git/config unless told not to, where every
/// later step (and the pull request's own scripts) could read it.
#[test]
fn no_checkout_keeps_the_job_token() {
    for name in ["corral-plan.yml", "corral-drift.yml"] {
        let workflow = workflow(name);
        let checkouts: Vec<_> = steps(&workflow)
            .into_iter()
            .filter(|step| {
                step["uses"]
                    .as_str()
                    .is_some_and(|uses| uses.starts_with("actions/checkout@"))
            })
            .collect();
        assert!(!checkouts.is_empty(), "{name}");
        for step in checkouts {
            assert_eq!(
                step["with"]["persist-credentials"].as_bool(),
                Some(false),
                "{name}: {step:?}"
            );
        }
    }
}

/// In the pull-request job the pull request's files are data: every script that runs
/// (with the token or the facts in reach) comes from the base branch's checkout.
#[test]
fn pull_request_plans_run_only_the_base_branchs_scripts() {
    let workflow = workflow("corral-plan.yml");
    let steps = steps(&workflow);
    let base = steps
        .iter()
        .find(|step| step["with"]["path"].as_str() == Some("base"))
        .expect("a checkout of the base branch at base/");
    assert_eq!(
        base["with"]["ref"].as_str(),
        Some("${{ github.event.pull_request.base.sha }}")
    );
    let mut scripts = 0;
    for step in &steps {
        let Some(run) = step["run"].as_str() else {
            continue;
        };
        for (at, _) in run.match_indices("examples/ci/") {
            scripts += 1;
            assert!(
                run[..at].ends_with("base/"),
                "a script of the pull request's own checkout runs: {run}"
            );
        }
        if run.contains("pr-plan.sh") {
            assert!(
                step["env"]["GH_TOKEN"].is_null(),
                "the plan step reads the pull request's configuration: no token"
            );
        }
        assert!(
            !run.contains("--passphrase ") && !run.contains("--passphrase="),
            "a passphrase on a command line: {run}"
        );
    }
    assert_eq!(scripts, 2, "pr-plan.sh and post-comment.sh");
}

/// The nightly job holds the SSH key: only the default branch's copy of the workflow may
/// run it, and the facts it uploads are encrypted (artifacts are readable by anyone who
/// can read the repository).
#[test]
fn the_nightly_key_is_kept_to_the_default_branch_and_its_facts_encrypted() {
    let workflow = workflow("corral-drift.yml");
    let job = &workflow["jobs"]["drift"];
    assert!(
        job["environment"].as_str().is_some(),
        "the key lives in an Environment restricted to the default branch"
    );
    assert!(job["if"]
        .as_str()
        .is_some_and(|guard| guard.contains("default_branch")));
    let upload = steps(&workflow)
        .into_iter()
        .find(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|uses| uses.starts_with("actions/upload-artifact@"))
        })
        .expect("the facts artifact");
    assert!(upload["with"]["path"]
        .as_str()
        .is_some_and(|path| path.ends_with(".gpg")));
    for step in steps(&workflow) {
        let run = step["run"].as_str().unwrap_or_default();
        assert!(!run.contains("--passphrase ") && !run.contains("--passphrase="));
    }
}
