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
use crate::kinds::{file, AccessGuard, Step};
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
    // Restored as root, maybe in a directory its user owns (`~/.ssh`): through the
    // link-safe write of every other write (`file::put_back_script`), never through a
    // link at or above the path. Each path on its own: one that cannot be put back does
    // not keep the others, or the reload, from running.
    let mut restore = format!("#!/bin/sh\nfailed=\n: > {}/fired\n", quote(&dir));
    for (index, path) in guard.paths.iter().enumerate() {
        let kept = format!("{dir}/{index}");
        keep.push_str(&file::keep_script(path, &kept));
        restore.push_str(&format!(
            "(\n{})\n[ \"$?\" -eq 0 ] || failed=1\n",
            file::put_back_script(path, &kept)
        ));
    }
    restore.push_str(&guard.reload);
    // Done: a second run (the timer, after a restore cut short) finds nothing to do. What
    // could not be put back stays kept, for the operator.
    restore.push_str(&format!(
        "\nif [ -n \"$failed\" ]; then echo 'corral: not everything could be put back; the kept files are in '{d}; exit 1; fi\nrm -rf {d}\n",
        d = quote(&dir)
    ));
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

/// What the disarm says when the timer was quicker than the new login.
pub const ROLLBACK_RAN: &str = "the rollback ran before the new login was proven";

/// Stops the timer: the new login worked. The timer is stopped first, then asked whether
/// it fired: a restore that ran, or runs, means the change did not hold, and says so.
pub fn disarm(unit: &str) -> Step {
    Step {
        description: "a new login and sudo work: disarm the rollback".into(),
        script: format!(
            "systemctl stop {u}.timer >/dev/null 2>&1 || true\nif [ -e {d}/fired ] || [ ! -e {d}/restore ] || systemctl is-active --quiet {u}.service; then echo 'corral: {ROLLBACK_RAN} (the change took longer than {secs} s): run apply again'; exit 1; fi\nrm -rf {d}\n",
            u = unit,
            d = quote(&dir(unit)),
            secs = DEADLINE.as_secs(),
        ),
    }
}

/// Puts things back now. The timer stops only after a restore that worked: one cut short
/// (the session lost) or that failed is tried again by the timer.
pub fn restore_now(unit: &str) -> Step {
    Step {
        description: "put things back as they were".into(),
        script: format!(
            "if [ -e {d}/restore ]; then /bin/sh {d}/restore || exit 1; fi\nsystemctl stop {u}.timer >/dev/null 2>&1 || true\n",
            u = unit,
            d = quote(&dir(unit))
        ),
    }
}

/// How long a guarded change's steps may take, all together, counted from the start of
/// the arm step (a little before the timer starts): with the new login
/// ([`LOGIN_TIMEOUT`]) and the disarm ([`DISARM_MARGIN`]) after them, well inside
/// [`DEADLINE`], so that the timer never fires under a change still being made.
pub const STEPS_BUDGET: Duration = Duration::from_secs(60);

/// What is kept for the disarm after the new login, before the timer fires.
pub const DISARM_MARGIN: Duration = Duration::from_secs(10);

/// A step needs at least this much time to be worth starting.
const LEAST: Duration = Duration::from_secs(1);

/// The time of one guarded change, shared by its steps, its new login and its disarm:
/// each gets only what the change has left, never its own full timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The steps' share, from the start of the arm step.
    pub steps: Duration,
    /// The longest the new login may take.
    pub login: Duration,
    /// When the host's timer fires, from the start of the arm step.
    pub deadline: Duration,
}

impl Budget {
    pub const STANDARD: Budget = Budget {
        steps: STEPS_BUDGET,
        login: LOGIN_TIMEOUT,
        deadline: DEADLINE,
    };

    /// How long a step started `elapsed` after the arm step may run: its own `timeout`,
    /// cut to what the steps have left; `None` when less than a second is left, and the
    /// step must not start.
    pub fn step(&self, elapsed: Duration, timeout: Duration) -> Option<Duration> {
        let left = self.steps.checked_sub(elapsed)?;
        (left >= LEAST).then(|| left.min(timeout))
    }

    /// How long the new login, started `elapsed` after the arm step, may take: up to
    /// [`Budget::login`], and never so long that the disarm would come after the timer.
    pub fn login(&self, elapsed: Duration) -> Option<Duration> {
        let left = self
            .deadline
            .checked_sub(DISARM_MARGIN)?
            .checked_sub(elapsed)?;
        (left >= LEAST).then(|| left.min(self.login))
    }

    /// How long the disarm, started `elapsed` after the arm step, may take: until the
    /// timer fires (it checks the timer is still waiting, so a late one says so).
    pub fn disarm(&self, elapsed: Duration) -> Duration {
        self.deadline.saturating_sub(elapsed).max(LEAST)
    }
}

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

    /// A guard script of `unit` run here: its directory in `guard_dir`, and no systemd (the
    /// timer is never armed; a restore runs only when asked).
    fn on_this_machine(script: &str, unit: &str, guard_dir: &std::path::Path) -> String {
        script
            .replace(
                &quote(&super::dir(unit)),
                &quote(&guard_dir.display().to_string()),
            )
            .replace("systemd-run", "true")
            .replace("systemctl", "true")
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
        let local = |script: String| on_this_machine(&script, unit, &guard_dir);
        assert!(sh(&local(arm(&access, unit).script)).status.success());
        // The user swaps ~/.ssh for a link to another directory.
        std::fs::remove_dir_all(home.join(".ssh")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.join(".ssh")).unwrap();
        let out = sh(&local(restore_now(unit).script));
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains("is a symbolic link; corral never writes through one"),
            "{out:?}"
        );
        assert!(!out.status.success());
        assert!(!elsewhere.join("authorized_keys").exists());
    }

    /// The restore runs as root in a directory its user owns: a user who keeps swapping
    /// the file for a link to a file of root's must never get root to write there.
    #[test]
    fn a_link_raced_against_the_restore_never_redirects_it() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("home/.ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let sentinel = dir.path().join("shadow");
        std::fs::write(&sentinel, "root's\n").unwrap();
        let keys = ssh.join("authorized_keys");
        let access = AccessGuard {
            paths: vec![keys.display().to_string()],
            reload: String::new(),
        };
        let unit = "corral-guard-race";
        let guard_dir = dir.path().join("guard");
        let local = |script: String| on_this_machine(&script, unit, &guard_dir);
        let (mut refused, mut restored) = (0, 0);
        for _ in 0..150 {
            let _ = std::fs::remove_file(&keys);
            std::fs::write(&keys, "before\n").unwrap();
            assert!(sh(&local(arm(&access, unit).script)).status.success());
            std::fs::write(&keys, "after\n").unwrap();
            let stop = AtomicBool::new(false);
            let out = std::thread::scope(|scope| {
                scope.spawn(|| {
                    let link = ssh.join("planted");
                    while !stop.load(Ordering::Relaxed) {
                        let _ = std::fs::remove_file(&link);
                        let _ = std::os::unix::fs::symlink(&sentinel, &link);
                        let _ = std::fs::rename(&link, &keys);
                        std::thread::yield_now();
                        let _ = std::fs::remove_file(&keys);
                        std::thread::yield_now();
                    }
                });
                let out = sh(&local(restore_now(unit).script));
                stop.store(true, Ordering::Relaxed);
                out
            });
            assert_eq!(
                std::fs::read_to_string(&sentinel).unwrap(),
                "root's\n",
                "{out:?}"
            );
            match out.status.success() {
                true => restored += 1,
                false => refused += 1,
            }
        }
        assert_eq!(
            std::fs::symlink_metadata(&sentinel).unwrap().len(),
            7,
            "the sentinel is still a file of its own"
        );
        // Both outcomes happened: the race was real, and the restore still worked.
        eprintln!("{restored} restored, {refused} refused a link");
    }

    #[test]
    fn each_step_gets_only_what_the_change_has_left() {
        let budget = Budget::STANDARD;
        let s = Duration::from_secs;
        // The first step: its own timeout when that is shorter than the budget…
        assert_eq!(budget.step(s(0), s(30)), Some(s(30)));
        // …else the budget: one step alone never runs past it.
        assert_eq!(budget.step(s(0), s(600)), Some(STEPS_BUDGET));
        // Four steps of 25 s each (a user change): the third gets 10 s, the fourth none.
        assert_eq!(budget.step(s(50), s(60)), Some(s(10)));
        assert_eq!(budget.step(s(60), s(60)), None);
        assert_eq!(budget.step(s(75), s(60)), None);
        // Less than a second is not worth starting.
        assert_eq!(budget.step(Duration::from_millis(59_500), s(60)), None);
        // The new login: its full 20 s after a quick change…
        assert_eq!(budget.login(s(5)), Some(LOGIN_TIMEOUT));
        // …and after the slowest change still ends with the disarm's margin to spare.
        assert_eq!(budget.login(s(60)), Some(LOGIN_TIMEOUT));
        assert_eq!(budget.login(s(70)), Some(s(10)));
        assert_eq!(budget.login(s(80)), None);
        // The steps, the login and the disarm margin fit in the deadline.
        assert!(STEPS_BUDGET + LOGIN_TIMEOUT + DISARM_MARGIN <= DEADLINE);
        // Every step, whatever its own timeout, ends before the login's share begins.
        for elapsed in 0..=90 {
            if let Some(left) = budget.step(s(elapsed), s(600)) {
                assert!(s(elapsed) + left <= STEPS_BUDGET, "{elapsed}");
            }
            if let Some(left) = budget.login(s(elapsed)) {
                assert!(s(elapsed) + left + DISARM_MARGIN <= DEADLINE, "{elapsed}");
            }
        }
        assert_eq!(budget.disarm(s(85)), s(5));
        assert_eq!(budget.disarm(s(95)), Duration::from_secs(1));
    }

    /// One truth for the guard's timings: the book's account of the guard
    /// (docs/src/concepts/access-guard.md) states the constants the code runs with.
    #[test]
    fn the_readme_states_the_guards_timings() {
        let readme = include_str!("../../../../docs/src/concepts/access-guard.md");
        let start = readme
            .find("**Changes that can cut corral's own access revert themselves**")
            .unwrap();
        let end = readme[start..].find("\n- **").unwrap();
        let text = readme[start..start + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for claim in [
            format!("and reloads, {} s later", DEADLINE.as_secs()),
            format!("its steps sharing {} s", STEPS_BUDGET.as_secs()),
            format!("retrying for up to {} s", LOGIN_TIMEOUT.as_secs()),
            format!("never past {} s before the timer", DISARM_MARGIN.as_secs()),
        ] {
            assert!(text.contains(&claim), "README lacks `{claim}`");
        }
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
