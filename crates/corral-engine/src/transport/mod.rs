//! The only code that touches a host. A [`Host`] runs a shell script within [`Limits`] (a
//! deadline and a bound on the output kept) and returns its output; [`ssh::SshHost`] does
//! it over one multiplexed OpenSSH connection per machine, and [`LocalHost`] on this machine
//! (for `--facts`-free tests and tools).
//!
//! No run may hang corral: at its deadline a script is abandoned and its processes killed
//! (locally at once; remotely by a watchdog started with it, a few seconds later, since the
//! SSH multiplexing protocol cannot signal a remote process). Output beyond the bound is
//! dropped or fails the run, as the caller chose.

pub mod capture;
pub mod simulated;
pub mod ssh;

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use capture::{Capture, STDERR_TAIL};

/// What a script printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutput {
    /// `None` when the process was killed by a signal.
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutput {
    /// The one conversion from a finished process to a [`ScriptOutput`], for both transports.
    fn finished(rc: Option<i32>, stdout: &Capture, stderr: &Capture) -> Self {
        ScriptOutput {
            rc,
            stdout: stdout.text(),
            stderr: stderr.text(),
        }
    }
}

/// What `sudo -n` prints, alone on its line, when the sudoers rule wants a password (as
/// recorded in `fixtures/sudo/`): it refuses before the script starts.
const SUDO_WANTS_PASSWORD: &str = "sudo: a password is required";

/// Whom a host's scripts run as, for the messages that name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub machine: String,
    /// The user set in the inventory; `None` when ssh picks it (its config, the local user).
    pub user: Option<String>,
}

impl ScriptOutput {
    /// The run as it is, or, when `sudo -n` refused it for want of a password, the error
    /// that says what to do: otherwise the caller sees an empty output (a fact script "cut
    /// short", a step that failed without a word of its own).
    pub fn unless_sudo_refused(self, login: &Login) -> Result<ScriptOutput, TransportError> {
        let refused = self.rc == Some(1)
            && self.stdout.is_empty()
            && self
                .stderr
                .lines()
                .any(|line| line.trim() == SUDO_WANTS_PASSWORD);
        if !refused {
            return Ok(self);
        }
        let user = match &login.user {
            Some(user) => user.as_str(),
            None => "the user corral logs in as",
        };
        Err(TransportError::Failed(format!(
            "sudo on {} needs a password for {user}: allow NOPASSWD for corral's commands \
             (it runs `sudo -n sh`) or connect as root",
            login.machine
        )))
    }
}

/// Why a script gave no [`ScriptOutput`] (as opposed to a script that failed): the
/// transport stage's error.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum TransportError {
    /// Nothing could be run, or the connection broke.
    #[error("{0}")]
    #[diagnostic(code(corral::transport::failed))]
    Failed(String),
    /// The deadline passed first; the script's processes were killed (or will be by the
    /// watchdog on the host). `output` is the end of what it had printed.
    #[error("the deadline passed before the script finished")]
    #[diagnostic(code(corral::transport::deadline))]
    DeadlinePassed { output: String },
    /// The connection could not start the remote shell, or lost it: unlike a script's own
    /// failure, a new connection may do better.
    #[error("{0}")]
    #[diagnostic(code(corral::transport::disconnected))]
    Disconnected(String),
    /// Stdout passed [`OutputBound::FailBeyond`]; reading stopped and the script was killed.
    #[error("the script printed more than {}, more than corral reads", bytes(*.limit))]
    #[diagnostic(code(corral::transport::output_too_large))]
    OutputTooLarge { limit: usize },
}

/// Why a new login ([`Host::fresh_login`]) did not prove that corral can still reach the
/// host and run commands as root there.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoginError {
    /// The try ran out of its time (the caller says how long it tried in all).
    #[error("no answer")]
    #[diagnostic(code(corral::transport::login_no_answer))]
    NoAnswer,
    /// `ssh` could not be started on this machine.
    #[error("cannot run ssh: {0}")]
    #[diagnostic(code(corral::transport::login_spawn))]
    Spawn(#[source] std::io::Error),
    /// The login worked, `sudo -n true` did not.
    #[error("it logged in, but `sudo -n true` as {user} failed: corral could no longer run anything as root there")]
    #[diagnostic(code(corral::transport::login_without_sudo))]
    WithoutSudo { user: String },
    /// The login ran something else than the command corral sent.
    #[error("the login ran, but not corral's command (a ForceCommand?)")]
    #[diagnostic(code(corral::transport::login_not_corrals_command))]
    NotCorralsCommand,
    /// ssh failed; the end of what it printed (host text, escaped where it is shown).
    #[error("{0}")]
    #[diagnostic(code(corral::transport::login_refused))]
    Refused(String),
}

/// What is kept of a script's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputBound {
    /// All of it, up to this many bytes; more fails the run ([`TransportError::OutputTooLarge`]).
    /// For output that is parsed, where a cut would be wrong.
    FailBeyond(usize),
    /// Its last bytes only, up to this many. For output that is only shown.
    KeepTail(usize),
}

/// The bounds of one script run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// When the run is abandoned.
    pub deadline: Instant,
    pub stdout: OutputBound,
}

impl Limits {
    /// A run of at most `timeout` from now.
    pub fn within(timeout: Duration, stdout: OutputBound) -> Self {
        Limits {
            deadline: deadline_after(timeout),
            stdout,
        }
    }
}

/// `now + timeout`, saturating far in the future instead of overflowing.
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// A duration as people read it in messages: `120 s`, `30 min`, `2 h`.
pub fn describe(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_millis() > 0 && seconds < 10 {
        format!("{:.1} s", duration.as_secs_f64())
    } else if seconds < 600 || seconds % 60 != 0 {
        format!("{seconds} s")
    } else if seconds % 3600 == 0 {
        format!("{} h", seconds / 3600)
    } else {
        format!("{} min", seconds / 60)
    }
}

/// A byte count as people read it: `64 MiB`, `512 KiB`, `100 bytes`.
pub fn bytes(count: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if count >= MIB && count % MIB == 0 {
        format!("{} MiB", count / MIB)
    } else if count >= 1024 && count % 1024 == 0 {
        format!("{} KiB", count / 1024)
    } else {
        format!("{count} bytes")
    }
}

/// A boxed future, so [`Host`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere scripts run.
pub trait Host: Send + Sync {
    /// Runs `script` with `sh -s` (as root, through `sudo -n` when needed), feeding it on
    /// stdin so that no value ever appears in a process list and no length limit applies,
    /// within `limits`.
    fn run_script<'a>(
        &'a self,
        script: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>>;

    /// Logs in again over a connection of its own (not the one scripts run on, which
    /// survives a broken sshd) and runs `true`: whether a new login still works. Hosts
    /// reached otherwise than over SSH have nothing to prove.
    fn fresh_login<'a>(&'a self, _timeout: Duration) -> BoxFuture<'a, Result<(), LoginError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether this connection is a warm one an earlier run kept: if it fails, a new one
    /// is tried once (the host may have rebooted since).
    fn reused(&self) -> bool {
        false
    }

    /// A reused connection that failed: the next connection to the host must not find it
    /// again. Others have nothing to do.
    fn discard_reused(&self) {}
}

/// Seconds the host-side watchdog waits past corral's own deadline before it ends a script:
/// corral's kill comes first when the connection works, the watchdog when it does not.
const WATCHDOG_GRACE: u64 = 5;

/// The command line that starts `sh -s` for a script: under a watchdog (`timeout`, which
/// ends the script's whole process group, background probes included) set a little past
/// `deadline`, and with `sudo` through `sudo -n` (never prompting) unless already root.
/// The command run through sudo is still `sh`, as the privilege model promises. Nothing
/// reads stdin before the final `sh -s`. A `/usr/bin/timeout` that is a file of its own
/// (coreutils', not a link to busybox) is taken as it is, with no process run to try it
/// (two execs on every host at every session); any other `timeout` must first end a `true`
/// with `-k`, and a host without a working one runs the script without a watchdog. sudo speaks C (`LC_ALL=C`), so that its refusal reads the same
/// whatever locale the login passed on.
pub fn launcher(deadline: Instant, sudo: bool) -> String {
    let seconds = deadline.saturating_duration_since(Instant::now()).as_secs() + 1 + WATCHDOG_GRACE;
    let watched = format!(
        "if [ -f /usr/bin/timeout ] && [ ! -h /usr/bin/timeout ]; then exec /usr/bin/timeout -k 5 {seconds} sh -s; elif timeout -k 5 1 true </dev/null >/dev/null 2>&1; then exec timeout -k 5 {seconds} sh -s; else exec sh -s; fi"
    );
    // Where no sudo is needed, the launcher's own shell runs the watchdog: no `sh -c` exec
    // in between, and for root (whose name sshd puts in LOGNAME) no `id` either: every
    // exec here is paid on every host at every run.
    if sudo {
        let quoted = crate::shell::quote(&watched);
        format!("if [ \"${{LOGNAME-}}\" = root ] || [ \"$(id -u)\" -eq 0 ]; then {watched}; else exec env LC_ALL=C sudo -n sh -c {quoted}; fi")
    } else {
        watched
    }
}

/// Writes the script to the shell's stdin and closes it. A shell that exits before reading
/// all of it (`exit` early) is not an error: its exit code says what happened.
async fn send_script<W: AsyncWrite + Unpin>(
    stdin: Option<W>,
    script: &str,
) -> Result<(), TransportError> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let written = async {
        stdin.write_all(script.as_bytes()).await?;
        stdin.shutdown().await
    };
    match written.await {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(TransportError::Failed(
            format!("cannot send the script: {e}"),
        )),
        _ => Ok(()),
    }
}

/// This machine, through a local `sh`.
#[derive(Debug, Default)]
pub struct LocalHost;

impl Host for LocalHost {
    fn run_script<'a>(
        &'a self,
        script: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            // Its own process group, so that a deadline kills everything the script started.
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(launcher(limits.deadline, false))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| TransportError::Failed(format!("cannot start sh: {e}")))?;
            let group = child.id();
            let mut out = Capture::new(limits.stdout);
            let mut err = Capture::new(OutputBound::KeepTail(STDERR_TAIL));
            let (stdin, stdout, stderr) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take());
            let work = async {
                tokio::try_join!(
                    send_script(stdin, script),
                    capture::read_both(stdout, stderr, &mut out, &mut err)
                )?;
                child
                    .wait()
                    .await
                    .map_err(|e| TransportError::Failed(format!("sh failed: {e}")))
            };
            let outcome = tokio::time::timeout_at(limits.deadline, work).await;
            match outcome {
                Ok(Ok(status)) => Ok(ScriptOutput::finished(status.code(), &out, &err)),
                Ok(Err(error)) => {
                    kill_group(group);
                    Err(error)
                }
                Err(_) => {
                    kill_group(group);
                    Err(TransportError::DeadlinePassed { output: out.text() })
                }
            }
        })
    }
}

/// Kills a local process group (a script and everything it started).
fn kill_group(group: Option<u32>) {
    if let Some(group) = group {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s KILL -- -{group} 2>/dev/null"))
            .stdin(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(timeout: Duration) -> Limits {
        Limits::within(timeout, OutputBound::FailBeyond(1024 * 1024))
    }

    #[tokio::test]
    async fn local_host_runs_a_script() {
        let out = LocalHost
            .run_script(
                "echo out; echo err >&2; exit 3",
                limits(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        assert_eq!(out.rc, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    /// A script that hangs is abandoned at its deadline, with what it printed so far, and
    /// everything it started (a background process too) is killed.
    #[tokio::test]
    async fn a_hung_script_is_killed_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pids");
        let script = format!(
            "echo started\nsleep 600 &\necho $! > {m}\nsleep 600\necho never\n",
            m = marker.display()
        );
        let error = LocalHost
            .run_script(&script, limits(Duration::from_millis(500)))
            .await
            .unwrap_err();
        let TransportError::DeadlinePassed { output } = error else {
            panic!("{error:?}");
        };
        assert_eq!(output, "started\n");
        let pid = std::fs::read_to_string(&marker).unwrap();
        // Dead: gone, or a zombie not yet reaped by whoever inherited it. SIGKILL lands
        // asynchronously, so look a few times.
        let stat = format!("/proc/{}/stat", pid.trim());
        let dead = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
            })
        };
        for _ in 0..100 {
            if dead() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(dead(), "the background sleep was killed");
    }

    /// Output past a `FailBeyond` bound fails the run instead of filling memory.
    #[tokio::test]
    async fn endless_output_fails_the_run() {
        let error = LocalHost
            .run_script(
                "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done",
                Limits::within(Duration::from_secs(60), OutputBound::FailBeyond(100_000)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, TransportError::OutputTooLarge { limit: 100_000 }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the script printed more than 100000 bytes, more than corral reads"
        );
    }

    /// A step's output is cut to its end, and the step still finishes.
    #[tokio::test]
    async fn long_output_keeps_its_tail() {
        let out = LocalHost
            .run_script(
                "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; echo last",
                Limits::within(Duration::from_secs(60), OutputBound::KeepTail(1000)),
            )
            .await
            .unwrap();
        assert_eq!(out.rc, Some(0));
        assert!(out.stdout.starts_with('…'), "{}", &out.stdout[..50]);
        assert!(out.stdout.ends_with("line 19999\nlast\n"));
        assert!(out.stdout.len() <= 1000 + '…'.len_utf8());
    }

    #[test]
    fn launcher_runs_under_a_watchdog_past_the_deadline() {
        let text = launcher(deadline_after(Duration::from_secs(100)), true);
        assert!(text.contains("exec /usr/bin/timeout -k 5 10"), "{text}");
        assert!(text.contains("exec timeout -k 5 10"), "{text}");
        // What sudo runs is `sh`, as ever.
        assert!(
            text.contains("else exec env LC_ALL=C sudo -n sh -c 'if [ -f /usr/bin/timeout ]"),
            "{text}"
        );
        assert!(!launcher(deadline_after(Duration::from_secs(1)), false).contains("sudo"));
    }

    /// Logged in as root, the launcher knows it from `LOGNAME` without running `id`, and
    /// starts the watchdog from its own shell: the only `sh` it starts is the script's
    /// (`sh`, `id` and `true` in PATH log their calls), and where `/usr/bin/timeout` is
    /// coreutils' it is not tried on a `true` first; the script still runs.
    #[test]
    fn launcher_as_root_starts_only_the_watchdog_and_the_script_shell() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        for (name, real) in [
            ("id", "/usr/bin/id"),
            ("sh", "/bin/sh"),
            ("true", "/bin/true"),
        ] {
            let wrapper = dir.path().join(name);
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >> '{}'\nexec {real} \"$@\"\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        for sudo in [true, false] {
            let _ = std::fs::remove_file(&log);
            let out = corral_core::testing::output_with_stdin(
                std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(launcher(deadline_after(Duration::from_secs(30)), sudo))
                    .env("LOGNAME", "root")
                    .env("PATH", &path),
                b"echo ran\n",
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
            let coreutils =
                std::fs::symlink_metadata("/usr/bin/timeout").is_ok_and(|m| m.is_file());
            assert_eq!(
                std::fs::read_to_string(&log).unwrap(),
                if coreutils {
                    "sh -s\n"
                } else {
                    "true \nsh -s\n"
                },
                "sudo: {sudo}"
            );
        }
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(describe(Duration::from_secs(120)), "120 s");
        assert_eq!(describe(Duration::from_secs(1800)), "30 min");
        assert_eq!(describe(Duration::from_secs(7200)), "2 h");
        assert_eq!(describe(Duration::from_millis(500)), "0.5 s");
        assert_eq!(bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(bytes(100), "100 bytes");
    }

    /// Tried as a new user would: sudo wanting a password gave a "cut short" fact script.
    /// The run `sudo -n` refused (recorded on a lab host) is an error that says what to do;
    /// a script that fails on its own is its output, as ever.
    #[test]
    fn sudo_wanting_a_password_is_an_error_that_says_what_to_do() {
        let text = std::fs::read_to_string(format!(
            "{}/fixtures/sudo/password-required.json",
            corral_core::testing::REPOSITORY
        ))
        .unwrap();
        let recorded: serde_json::Value = serde_json::from_str(&text).unwrap();
        let refused = ScriptOutput {
            rc: recorded["rc"].as_i64().map(|rc| rc as i32),
            stdout: recorded["stdout"].as_str().unwrap().to_owned(),
            stderr: recorded["stderr"].as_str().unwrap().to_owned(),
        };
        let login = |user: Option<&str>| Login {
            machine: "tb1".into(),
            user: user.map(str::to_owned),
        };
        let error = refused
            .clone()
            .unless_sudo_refused(&login(Some("ops")))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "sudo on tb1 needs a password for ops: allow NOPASSWD for corral's commands \
             (it runs `sudo -n sh`) or connect as root"
        );
        let error = refused
            .clone()
            .unless_sudo_refused(&login(None))
            .unwrap_err();
        assert!(error.to_string().contains("for the user corral logs in as"));
        let failed_alone = ScriptOutput {
            stdout: "apt-get: unable to lock\n".into(),
            ..refused
        };
        assert_eq!(
            failed_alone
                .clone()
                .unless_sudo_refused(&login(Some("ops")))
                .unwrap(),
            failed_alone
        );
    }
}
