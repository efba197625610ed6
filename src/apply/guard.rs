//! Changes that can cut corral's own access (sshd settings, the firewall, the connecting
//! user's keys) revert themselves unless a new login proves they did not.
//!
//! Before the change, the host is given a timer (a transient systemd unit) that puts the
//! files the change may write back as they were (or removes those that did not exist) and
//! runs the kind's reload, [`DEADLINE`] later. Then the change runs; then corral logs in
//! again over a connection of its own (the multiplexed one survives a broken sshd and
//! proves nothing) and runs `true`. Success stops the timer. Failure puts things back at
//! once when the connection still works, and otherwise leaves it to the timer: either way
//! the resource fails, "rolled back", and what depends on it is skipped.

use std::time::Duration;

use crate::address::Address;
use crate::kinds::{AccessGuard, Step};
use crate::shell::quote;

/// How long a host waits for the new login before it puts things back.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// How long the new login may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The systemd unit (and the directory under `/var/lib/corral/guard/`) of one guarded
/// change: named by a digest of the address, so that no name needs quoting for systemd.
pub fn unit(address: &Address) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(address.to_string().as_bytes());
    format!("corral-guard-{}", &hex::encode(digest)[..16])
}

fn dir(unit: &str) -> String {
    format!("/var/lib/corral/guard/{unit}")
}

/// Keeps the guarded files and arms the timer that restores them.
pub fn arm(guard: &AccessGuard, unit: &str) -> Step {
    let dir = dir(unit);
    let mut keep = String::new();
    // Restored as root, maybe in a directory its user owns (`~/.ssh`): never through a
    // link at or above the path (a directory swapped for a link in the meantime is left
    // alone), and a link at the path itself is replaced, not followed.
    let mut restore = String::from(
        "#!/bin/sh\ncorral_linked() { d=$(dirname \"$1\"); while [ \"$d\" != / ] && [ \"$d\" != . ]; do [ -L \"$d\" ] && return 0; d=$(dirname \"$d\"); done; return 1; }\n",
    );
    for (index, path) in guard.paths.iter().enumerate() {
        let (p, kept) = (quote(path), quote(&format!("{dir}/{index}")));
        keep.push_str(&format!(
            "if [ -e {p} ] || [ -L {p} ]; then cp -a {p} {kept}; else : > {kept}.absent; fi\n"
        ));
        restore.push_str(&format!(
            "if corral_linked {p}; then echo 'corral: a directory above '{p}' is a link now; left alone'; elif [ -e {kept}.absent ]; then rm -f {p}; else rm -f {p}; cp -a {kept} {p}; fi\n"
        ));
    }
    restore.push_str(&guard.reload);
    // Done: a second run (the timer, after a restore cut short) finds nothing to do.
    restore.push_str(&format!("\nrm -rf {}\n", quote(&dir)));
    let script = format!(
        "set -e\nsystemctl stop {u}.timer {u}.service >/dev/null 2>&1 || true\nsystemctl reset-failed {u}.timer {u}.service >/dev/null 2>&1 || true\nrm -rf {d}\nmkdir -p {d}\nchmod 700 {d}\n{keep}printf '%s' {restore} > {d}/restore\nsystemd-run --quiet --unit={u} --on-active={secs}s --timer-property=AccuracySec=1s /bin/sh {d}/restore\n",
        u = unit,
        d = quote(&dir),
        restore = quote(&restore),
        secs = DEADLINE.as_secs(),
    );
    Step {
        description: format!(
            "arm the rollback (the host puts things back in {} s unless a new login works)",
            DEADLINE.as_secs()
        ),
        script,
    }
}

/// Stops the timer: the new login worked. A timer that already fired (the change took
/// longer than the deadline) put things back: the change did not hold, and says so.
pub fn disarm(unit: &str) -> Step {
    Step {
        description: "a new login works: disarm the rollback".into(),
        script: format!(
            "if ! systemctl is-active --quiet {u}.timer || [ ! -e {d}/restore ]; then echo 'corral: the rollback ran before the new login was proven (the change took longer than {secs} s): run apply again'; exit 1; fi\nsystemctl stop {u}.timer >/dev/null 2>&1 || true\nrm -rf {d}\n",
            u = unit,
            d = quote(&dir(unit)),
            secs = DEADLINE.as_secs(),
        ),
    }
}

/// Puts things back now. The timer stops only after the restore: a restore cut short (the
/// session lost) is finished by the timer.
pub fn restore_now(unit: &str) -> Step {
    Step {
        description: "put things back as they were".into(),
        script: format!(
            "if [ -e {d}/restore ]; then /bin/sh {d}/restore; fi\nsystemctl stop {u}.timer >/dev/null 2>&1 || true\n",
            u = unit,
            d = quote(&dir(unit))
        ),
    }
}

/// How long a guarded change's steps may take: well inside the deadline, so that the
/// timer never fires under a change still being made.
pub const STEPS_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` with `sh` in a scratch directory standing in for `/`.
    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap()
    }

    #[test]
    fn the_restore_script_puts_back_a_file_and_removes_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, created) = (dir.path().join("kept.conf"), dir.path().join("new.conf"));
        std::fs::write(&kept, "before\n").unwrap();
        let access = AccessGuard {
            paths: vec![kept.display().to_string(), created.display().to_string()],
            reload: format!(
                "echo reloaded > {}",
                quote(&dir.path().join("reload").display().to_string())
            ),
        };
        let unit = "corral-guard-test";
        let guard_dir = dir.path().join("guard");
        // The arm step without systemd: keep the files and write the restore script.
        let arm = arm(&access, unit)
            .script
            .replace(
                &quote(&super::dir(unit)),
                &quote(&guard_dir.display().to_string()),
            )
            .replace("systemd-run", "true")
            .replace("systemctl", "true");
        assert!(sh(&arm).status.success(), "{arm}");
        std::fs::write(&kept, "after\n").unwrap();
        std::fs::write(&created, "new\n").unwrap();
        let restore = restore_now(unit)
            .script
            .replace(
                &quote(&super::dir(unit)),
                &quote(&guard_dir.display().to_string()),
            )
            .replace("systemctl", "true");
        let out = sh(&restore);
        assert!(out.status.success(), "{restore}: {out:?}");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "before\n");
        assert!(!created.exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("reload")).unwrap(),
            "reloaded\n"
        );
        assert!(!guard_dir.exists());
    }

    #[test]
    fn the_restore_script_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (home, elsewhere) = (dir.path().join("home"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let keys = home.join(".ssh/authorized_keys");
        std::fs::write(&keys, "before\n").unwrap();
        let access = AccessGuard {
            paths: vec![keys.display().to_string()],
            reload: String::new(),
        };
        let unit = "corral-guard-link";
        let guard_dir = dir.path().join("guard");
        let local = |script: String| {
            script
                .replace(
                    &quote(&super::dir(unit)),
                    &quote(&guard_dir.display().to_string()),
                )
                .replace("systemd-run", "true")
                .replace("systemctl", "true")
        };
        assert!(sh(&local(arm(&access, unit).script)).status.success());
        // The user swaps ~/.ssh for a link to another directory.
        std::fs::remove_dir_all(home.join(".ssh")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.join(".ssh")).unwrap();
        let out = sh(&local(restore_now(unit).script));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("is a link now; left alone"),
            "{out:?}"
        );
        assert!(!elsewhere.join("authorized_keys").exists());
    }

    #[test]
    fn units_are_named_by_digest() {
        let unit = unit(&Address::new("os/sshd", "a b;rm", Some("n1")));
        assert!(
            unit.starts_with("corral-guard-") && unit.len() == 29,
            "{unit}"
        );
        assert!(unit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
