//! Tests of the shared file probe and diff: states read from recorded hosts, originals
//! kept, links refused.

use super::*;
use crate::base::selector::Selector;
use crate::facts::recorded;
use crate::os_file::FileSpec;
use crate::MachineKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn state(fixture: &str, path: &str, read: Read) -> Result<FileState, FactError> {
    let key = probe_key(path, read);
    parse(&key, &recorded::probe(fixture, "n1", &key))
}

fn desired<'a>(path: &'a str, bytes: &'a [u8]) -> DesiredFile<'a> {
    DesiredFile {
        path,
        bytes,
        mode: Some("0644"),
        owner: Some("root"),
        group: Some("root"),
        sensitive: false,
        keep_original: false,
    }
}

#[test]
fn absent_file_is_created_with_its_attributes() {
    let state = state("lab-fresh", "/etc/corral-fixture-absent", Read::Content).unwrap();
    assert_eq!(state, FileState::ABSENT);
    let (action, changes) = diff_file(
        "k",
        "",
        &desired("/etc/corral-fixture-absent", b"x\n"),
        &state,
    )
    .unwrap();
    assert_eq!(action, Action::Create);
    let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["content", "mode", "owner", "group"]);
    assert_eq!(changes[0].after, AttrValue::Content("x\n".into()));
}

#[test]
fn missing_parent_directories_are_shown() {
    let path = "/etc/corral-fixture-dir/sub/file";
    let state = state("lab-fresh", path, Read::Content).unwrap();
    assert_eq!(
        state,
        FileState::Absent {
            missing_parent: Some("/etc/corral-fixture-dir".into())
        }
    );
    let (action, changes) = diff_file("k", "", &desired(path, b"x\n"), &state).unwrap();
    assert_eq!(action, Action::Create);
    assert_eq!(changes[0].name, "directory");
}

#[test]
fn regular_file_with_other_content_is_a_content_diff() {
    let state = state("lab-fresh", "/etc/issue.net", Read::Content).unwrap();
    let FileState::Present {
        mode,
        owner,
        file_type,
        body,
        ..
    } = &state
    else {
        panic!("{state:?}");
    };
    assert_eq!(
        (mode.as_str(), owner.as_str(), file_type.as_str()),
        ("644", "root", "regular file")
    );
    assert!(matches!(body, Body::Content(c) if c.starts_with(b"Debian GNU/Linux")));
    let (action, changes) = diff_file(
        "k",
        "",
        &desired("/etc/issue.net", b"Authorized access only\n"),
        &state,
    )
    .unwrap();
    assert_eq!(action, Action::Update);
    assert_eq!(changes.len(), 1, "only the content differs: {changes:?}");
    assert!(
        matches!(&changes[0].before, AttrValue::Content(t) if t.starts_with("Debian GNU/Linux"))
    );
}

/// A file corral did not create is kept before its first change, and the plan says so.
#[test]
fn first_change_of_a_found_file_keeps_the_original() {
    let state = state("lab-fresh", "/etc/issue.net", Read::Content).unwrap();
    let adopting = DesiredFile {
        keep_original: true,
        ..desired("/etc/issue.net", b"Authorized access only\n")
    };
    let (_, changes) = diff_file("k", "", &adopting, &state).unwrap();
    assert_eq!(changes.last().unwrap().name, ORIGINAL_ATTR, "{changes:?}");
    // Once kept, it is kept: later changes do not announce it again.
    let converged = state_with_original_kept(state);
    let (_, changes) = diff_file("k", "", &adopting, &converged).unwrap();
    assert!(
        changes.iter().all(|c| c.name != ORIGINAL_ATTR),
        "{changes:?}"
    );
}

fn state_with_original_kept(state: FileState) -> FileState {
    match state {
        FileState::Present {
            mode,
            owner,
            group,
            size,
            modified,
            file_type,
            body,
            ..
        } => FileState::Present {
            mode,
            owner,
            group,
            size,
            modified,
            file_type,
            body,
            original_kept: true,
            created_by_corral: false,
        },
        other => other,
    }
}

#[test]
fn converged_file_is_a_no_op() {
    let state = state("lab-converged", "/etc/issue.net", Read::Content).unwrap();
    assert!(
        matches!(
            state,
            FileState::Present {
                original_kept: true,
                ..
            }
        ),
        "corral kept Debian's /etc/issue.net when it first changed it: {state:?}"
    );
    let (action, changes) = diff_file(
        "k",
        "",
        &desired("/etc/issue.net", b"Authorized access only\n"),
        &state,
    )
    .unwrap();
    assert_eq!((action, changes), (Action::NoOp, vec![]));
}

/// GNU stat calls a file of size 0 a "regular empty file"; an empty file wanted empty
/// is converged, not an error.
#[test]
fn empty_file_wanted_empty_is_converged() {
    let state = state("lab-fresh", "/etc/corral-fixture-empty", Read::Content).unwrap();
    assert!(
        matches!(&state, FileState::Present { size: 0, body: Body::Content(c), file_type, .. } if c.is_empty() && file_type == "regular empty file"),
        "{state:?}"
    );
    let (action, changes) =
        diff_file("k", "", &desired("/etc/corral-fixture-empty", b""), &state).unwrap();
    assert_eq!((action, changes), (Action::NoOp, vec![]));
    let (action, changes) = diff_file(
        "k",
        "",
        &desired("/etc/corral-fixture-empty", b"x\n"),
        &state,
    )
    .unwrap();
    assert_eq!(action, Action::Update);
    assert_eq!(changes[0].before, AttrValue::Content(String::new()));
}

/// A link at the path is reported as a link, never read through: the plan cannot show
/// the content of the file it points to.
#[test]
fn link_at_the_path_is_reported_and_refused() {
    let state = state("lab-fresh", "/etc/corral-fixture-link", Read::Content).unwrap();
    assert_eq!(
        state,
        FileState::Link {
            at: "/etc/corral-fixture-link".into(),
            target: "/etc/shadow".into()
        }
    );
    let error = diff_file(
        "k",
        "",
        &desired("/etc/corral-fixture-link", b"x\n"),
        &state,
    )
    .unwrap_err();
    assert!(
        error.message.contains("symbolic link (to /etc/shadow)"),
        "{error}"
    );
}

#[test]
fn link_above_the_path_is_reported_and_refused() {
    let state = state("lab-fresh", "/bin/corral-fixture", Read::Content).unwrap();
    assert_eq!(
        state,
        FileState::Link {
            at: "/bin".into(),
            target: "usr/bin".into()
        }
    );
    let error = diff_file("k", "", &desired("/bin/corral-fixture", b"x\n"), &state).unwrap_err();
    assert!(
        error.message.contains("/bin, above /bin/corral-fixture"),
        "{error}"
    );
}

/// A sensitive file is compared on the host: neither its content nor a digest of it
/// comes back, and the plan shows only `(sensitive)`.
#[test]
fn sensitive_file_is_compared_on_the_host_and_never_shown() {
    let key = probe_key("/etc/hostname", Read::CompareWith("0"));
    assert_eq!(key, "file:compare:/etc/hostname");
    let out = recorded::probe("lab-fresh", "n1", &key);
    assert!(out.output.ends_with("compare differs\n"), "{out:?}");
    let state = parse(&key, &out).unwrap();
    let secret = DesiredFile {
        sensitive: true,
        mode: None,
        ..desired("/etc/hostname", b"hunter2\n")
    };
    let (_, changes) = diff_file("k", "", &secret, &state).unwrap();
    assert_eq!(changes[0].before, AttrValue::Sensitive);
    assert_eq!(changes[0].after, AttrValue::Sensitive);
    // /etc/hostname is 0644: a secret there ends 0600.
    assert_eq!(
        changes[1],
        AttrChange::scalar("mode", "0644", "0600"),
        "{changes:?}"
    );
    assert!(!format!("{changes:?}").contains("hunter2"));
    let spec = FileSpec {
        machines: Selector::All,
        path: "/etc/hostname".into(),
        content: Some(Content(b"hunter2\n".to_vec())),
        source: None,
        mode: None,
        owner: None,
        group: None,
        sensitive: true,
        validate: None,
        bytes: Content(b"hunter2\n".to_vec()),
    };
    assert!(!format!("{spec:?}").contains("hunter2"));
    let probe_script = &spec.probes("secret")[0].script;
    assert!(
        !probe_script.contains("hunter2") && !probe_script.contains("base64 -d"),
        "{probe_script}"
    );
}

#[test]
fn directory_is_refused() {
    let state = state("lab-fresh", "/etc/ssh", Read::Content).unwrap();
    assert!(matches!(&state, FileState::Present { file_type, .. } if file_type == "directory"));
    let error = diff_file("k", "", &desired("/etc/ssh", b"x\n"), &state).unwrap_err();
    assert!(error.message.contains("is a directory"), "{error}");
}

#[test]
fn path_below_a_file_is_an_error() {
    let state = state("lab-fresh", "/etc/hostname/child", Read::Content).unwrap();
    assert_eq!(
        state,
        FileState::NotDirectory {
            at: "/etc/hostname".into()
        }
    );
    let error = diff_file("k", "", &desired("/etc/hostname/child", b"x\n"), &state).unwrap_err();
    assert!(error.message.contains("not a directory"), "{error}");
}

#[test]
fn modes_compare_as_stat_prints_them() {
    assert_eq!(normalize_mode("0644"), "644");
    assert_eq!(normalize_mode("4755"), "4755");
    assert_eq!(normalize_mode("0000"), "0");
}

/// Runs shell text with a real `sh`; originals go to `originals` instead of
/// [`ORIGINALS_DIR`], so tests never touch this machine's corral directory.
fn sh(script: &str, originals: &Path) -> std::process::Output {
    let script = script.replace(ORIGINALS_DIR, originals.to_str().unwrap());
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The write script, run by a real `sh` against a temporary directory, leaves exactly
/// the content and mode and no temporary file.
#[test]
fn write_script_writes_atomically_with_a_real_sh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/target.conf");
    let path_text = path.to_str().unwrap();
    let content = b"line 1\n'quoted' $(not run)\n";
    let file = DesiredFile {
        owner: None,
        group: None,
        mode: Some("0600"),
        ..desired(path_text, content)
    };
    let out = sh(&write_script(&file), dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(entries(path.parent().unwrap()), ["target.conf"]);
}

/// A link planted at the managed path is neither followed nor replaced: the file it
/// points to is untouched and the step fails, naming the link.
#[test]
fn write_refuses_a_link_at_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("shadow");
    std::fs::write(&victim, "root:secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("motd");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = sh(
        &write_script(&desired(link.to_str().unwrap(), b"owned\n")),
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is a symbolic link"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"root:secret\n");
    assert_eq!(mode_of(&victim), 0o640);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(entries(dir.path()), ["motd", "shadow"], "no temporary left");
}

/// A link above the path is not followed either, and no directory is made through it.
#[test]
fn write_refuses_a_link_above_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("site")).unwrap();
    let path = dir.path().join("site/new/index.html");
    let out = sh(
        &write_script(&desired(path.to_str().unwrap(), b"x\n")),
        dir.path(),
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        entries(&elsewhere).is_empty(),
        "nothing made through the link"
    );
}

/// `chown` clears setuid and setgid bits, so owner goes first, mode last: a kept
/// 4755 stays 4755 when the owner changes.
#[test]
fn setuid_bit_survives_an_owner_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tool");
    std::fs::write(&path, "old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let file = DesiredFile {
        owner: Some("nobody"),
        group: None,
        mode: None,
        ..desired(path.to_str().unwrap(), b"new\n")
    };
    let out = sh(&write_script(&file), dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode_of(&path), 0o4755);
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), uid);
}

/// A secret replacing a world-readable file ends 0600 unless `mode` says otherwise.
#[test]
fn sensitive_file_replacing_a_readable_one_ends_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = DesiredFile {
        sensitive: true,
        mode: None,
        owner: None,
        group: None,
        ..desired(path.to_str().unwrap(), b"s3cret\n")
    };
    let out = sh(&write_script(&file), dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode_of(&path), 0o600);
}

/// The first change of a found file keeps it (content, owner and mode); restoring puts
/// it back exactly and forgets the copy; deleting removes only a regular file.
#[test]
fn original_is_kept_then_restored() {
    let dir = tempfile::tempdir().unwrap();
    let originals = dir.path().join("originals");
    let path = dir.path().join("etc/motd");
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(&path, "Debian's motd\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let path_text = path.to_str().unwrap();
    let adopting = DesiredFile {
        keep_original: true,
        mode: Some("0644"),
        ..desired(path_text, b"corral's motd\n")
    };
    for _ in 0..2 {
        let out = sh(&write_script(&adopting), &originals);
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"corral's motd\n");
    let id = original_id(path_text);
    assert_eq!(
        std::fs::read(originals.join(&id)).unwrap(),
        b"Debian's motd\n",
        "the second write keeps the first original"
    );
    assert_eq!(mode_of(&originals.join(&id)), 0o640);
    assert_eq!(
        std::fs::read_to_string(originals.join(format!("{id}.path"))).unwrap(),
        format!("{path_text}\n")
    );
    let out = sh(&restore_script(path_text), &originals);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"Debian's motd\n");
    assert_eq!(mode_of(&path), 0o640);
    assert!(entries(&originals).is_empty(), "{:?}", entries(&originals));
    assert_eq!(entries(path.parent().unwrap()), ["motd"]);
}

#[test]
fn delete_removes_a_file_but_never_a_link_or_through_one() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = sh(&delete_script(link.to_str().unwrap()), dir.path());
    assert!(!out.status.success(), "{out:?}");
    assert!(victim.exists() && link.exists());
    let out = sh(&delete_script(victim.to_str().unwrap()), dir.path());
    assert!(out.status.success(), "{out:?}");
    assert!(!victim.exists());
    // Already gone, or its directory too: nothing to do.
    let out = sh(&delete_script(victim.to_str().unwrap()), dir.path());
    assert!(out.status.success(), "{out:?}");
    let gone = dir.path().join("no/such/file");
    let out = sh(&delete_script(gone.to_str().unwrap()), dir.path());
    assert!(out.status.success(), "{out:?}");
}

/// The probe, run by a real `sh`, reports links for what they are, at or above the
/// path, and never prints what a link points to.
#[test]
fn probe_reports_links_without_reading_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "TOPSECRET\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    for path in [link.clone(), link.join("below")] {
        let path = path.to_str().unwrap();
        let probe = probe(path, Read::Content);
        let out = sh(&probe.script, dir.path());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("VE9QU0VDUkVU") && !text.contains("TOPSECRET"),
            "{text}"
        );
        let state = parse(
            &probe.key,
            &ProbeOutput {
                rc: out.status.code().unwrap(),
                output: text.into_owned(),
            },
        )
        .unwrap();
        assert_eq!(
            state,
            FileState::Link {
                at: link.to_str().unwrap().into(),
                target: secret.to_str().unwrap().into()
            }
        );
    }
}

/// A failing `validate` leaves the old file in place and fails the step with the
/// check's output; a passing one lets the write go ahead.
#[test]
fn validate_checks_the_new_content_before_it_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.conf");
    std::fs::write(&path, "good\n").unwrap();
    let file = desired(path.to_str().unwrap(), b"broken\n");
    let check = "grep -q good %s || { echo 'syntax error in' %s; false; }";
    let out = sh(&write_checked_script(&file, Some(check)), dir.path());
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("syntax error in") && said.contains("failed its check"),
        "{said}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"good\n");
    assert_eq!(entries(dir.path()), ["site.conf"], "no temporary left");
    let file = desired(path.to_str().unwrap(), b"good and new\n");
    let out = sh(&write_checked_script(&file, Some(check)), dir.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"good and new\n");
}

/// Any failing command fails the write and the calling script, even one that goes on
/// after it (`set -e` is ignored in a subshell on the left of `||`, so the script does
/// not use that form), and nothing is left behind.
#[test]
fn failing_command_fails_the_whole_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.conf");
    let file = DesiredFile {
        owner: Some("no-such-user-corral"),
        ..desired(path.to_str().unwrap(), b"x\n")
    };
    let script = format!("{}echo after", write_script(&file));
    let out = sh(&script, dir.path());
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

/// An attacker who can write in the target's directory swaps the fresh private
/// directory for a link to a directory of theirs (holding `f`, a link to a victim)
/// between `mktemp -d` and entering it: the write notices and fails, and the victim is
/// untouched. (A `mktemp` that wins the race every time stands in for the attacker.)
#[test]
fn swapped_private_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["bin", "etc/app", "evil", "originals"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let victim = root.join("victim");
    std::fs::write(&victim, "root:SECRET\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink(&victim, root.join("evil/f")).unwrap();
    let target = root.join("etc/app/site.conf");
    std::fs::write(&target, "old\n").unwrap();
    let mktemp = root.join("bin/mktemp");
    std::fs::write(
            &mktemp,
            format!(
                "#!/bin/sh\nout=$(/usr/bin/mktemp \"$@\") || exit\ncase \"$1\" in -d) mv \"$out\" \"$out.moved\"; ln -s {} \"$out\" ;; esac\necho \"$out\"\n",
                root.join("evil").display()
            ),
        )
        .unwrap();
    std::fs::set_permissions(&mktemp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = write_script(&desired(target.to_str().unwrap(), b"new\n"))
        .replace(ORIGINALS_DIR, root.join("originals").to_str().unwrap());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                root.join("bin").display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"root:SECRET\n");
    assert_eq!(mode_of(&victim), 0o640);
    assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"old\n");
}

/// A file that appeared after the plan (a package installed it in the same apply) is
/// kept before corral replaces it, and a file corral creates is marked as its own: the
/// host, not the plan, says which, so removing the resource restores or deletes rightly.
#[test]
fn the_host_records_whether_a_file_was_found_or_created() {
    let dir = tempfile::tempdir().unwrap();
    let originals = dir.path().join("originals");
    let found = dir.path().join("found.conf");
    std::fs::write(&found, "from the package\n").unwrap();
    let created = dir.path().join("created.conf");
    for path in [&found, &created] {
        let file = DesiredFile {
            keep_original: true,
            ..desired(path.to_str().unwrap(), b"corral's\n")
        };
        let out = sh(&write_script(&file), &originals);
        assert!(out.status.success(), "{out:?}");
    }
    let found_id = original_id(found.to_str().unwrap());
    let created_id = original_id(created.to_str().unwrap());
    assert_eq!(
        std::fs::read(originals.join(&found_id)).unwrap(),
        b"from the package\n"
    );
    assert!(originals.join(format!("{created_id}.created")).exists());
    assert!(!originals.join(&created_id).exists());
    // Written again: still corral's own, nothing kept.
    let file = DesiredFile {
        keep_original: true,
        ..desired(created.to_str().unwrap(), b"changed\n")
    };
    assert!(sh(&write_script(&file), &originals).status.success());
    assert!(!originals.join(&created_id).exists());
    // Deleting forgets the marker.
    assert!(sh(&delete_script(created.to_str().unwrap()), &originals)
        .status
        .success());
    assert!(!originals.join(format!("{created_id}.created")).exists());
}
