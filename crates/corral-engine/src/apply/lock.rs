//! The per-host apply lock (SPEC §5): `/var/lib/corral/lock`, a directory made atomically
//! with `mkdir`, holding an `owner` file (who, on which workstation, which process, since
//! when). Two applies never change one host at the same time; a second one fails with the
//! holder's name, or waits up to `--lock-timeout`.
//!
//! A lock left by a killed apply is taken over when its holder is provably gone (see
//! [`Holder::gone`] and docs/src/locks.md): it was taken on this workstation (same machine
//! id, same process namespace) and the workstation rebooted since (another boot id), or its
//! process no longer runs, or that pid is now a process started later. The apply says so,
//! naming the holder, and takes it over only with `--take-over-stale-lock` (which
//! `--auto-approve` does not imply). Any other lock (another workstation, a record written
//! before corral kept these fields) stays until `corral force-unlock` removes it.
//!
//! Every lock script runs within [`SCRIPT_TIMEOUT`]: a host that does not answer cannot hold
//! up the others, and an interrupt (the `stop` flag) ends a wait for a lock at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::ApplyError;
use crate::facts::{Probe, ProbeOutput};
use crate::shell::quote;
use crate::transport::{Host, Limits, OutputBound, ScriptOutput, TransportError};

pub const PATH: &str = "/var/lib/corral/lock";

/// How long one lock script (take, release, read, remove) may take on a host.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a held lock is tried again while waiting for it.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Why the hosts could not all be locked; the locks already taken are released by then.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("{machine} is locked by {holder}: another apply is running there; if it was killed, run `corral force-unlock {machine} …` once you are sure")]
    #[diagnostic(
        code(corral::lock::held),
        help("wait for the other apply to finish, or pass --lock-timeout SECONDS to wait for it")
    )]
    Held { machine: String, holder: String },
    #[error("{machine} is locked by {holder}, from another workstation ({host}): corral cannot tell from here whether that apply still runs; once you are sure it does not, run `corral force-unlock {machine} …`")]
    #[diagnostic(
        code(corral::lock::foreign),
        help("ask on that workstation whether its apply still runs; --lock-timeout SECONDS waits for it")
    )]
    Foreign {
        machine: String,
        holder: String,
        host: String,
    },
    #[error("{machine} is locked by {holder}, which is gone: {why}. Run the apply again with --take-over-stale-lock to take the lock over")]
    #[diagnostic(
        code(corral::lock::stale),
        help("the apply that took it was killed or its workstation rebooted; --take-over-stale-lock takes the lock over (--auto-approve does not)")
    )]
    Stale {
        machine: String,
        holder: String,
        why: String,
    },
    #[error("{machine}: cannot take the apply lock: {message}")]
    #[diagnostic(
        code(corral::lock::failed),
        help("wait for the other apply to finish, or pass --lock-timeout SECONDS to wait for it")
    )]
    Failed { machine: String, message: String },
    #[error("interrupted while taking the apply locks")]
    #[diagnostic(code(corral::lock::interrupted))]
    Interrupted,
}

/// Who holds a lock: `account@host pid N`, then what tells later whether that process is
/// gone (`machine M pidns P boot B start S`, see [`Holder`]); the host adds the time. The
/// account is the one corral runs as (not `$USER`, which sudo, cron and containers leave
/// unset or stale).
pub fn owner() -> String {
    let user = account();
    let here = Workstation::this();
    let pid = std::process::id();
    let mut owner = format!("{user}@{} pid {pid}", here.host);
    if let (Some(machine), Some(pidns), Some(boot), Some(start)) =
        (&here.machine, &here.pidns, &here.boot, process_start(pid))
    {
        owner.push_str(&format!(
            " machine {machine} pidns {pidns} boot {boot} start {start}"
        ));
    }
    owner
}

/// What identifies this workstation and its processes: hostname (for people), machine id
/// (two workstations may share a name), process namespace (a container's pids are not its
/// host's) and boot id (a reboot ends every process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workstation {
    pub host: String,
    pub machine: Option<String>,
    pub pidns: Option<String>,
    pub boot: Option<String>,
}

impl Workstation {
    pub fn this() -> Workstation {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty() && !text.contains(char::is_whitespace))
        };
        Workstation {
            host: read("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "unknown-host".into()),
            machine: read("/etc/machine-id"),
            // `pid:[4026531836]`: the inode names the namespace.
            pidns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .and_then(|link| {
                    let text = link.to_string_lossy().into_owned();
                    let inode = text.strip_prefix("pid:[")?.strip_suffix(']')?.to_owned();
                    inode.bytes().all(|b| b.is_ascii_digit()).then_some(inode)
                }),
            boot: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat` field 22);
/// `None` when no such process runs here.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A lock's owner line, parsed: `ACCOUNT@HOST pid N [machine M pidns P boot B start S]
/// since TIME`. Records written before corral kept the bracketed fields parse with them
/// absent, and are never taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub machine: Option<String>,
    pub pidns: Option<String>,
    pub boot: Option<String>,
    pub start: Option<u64>,
}

/// What [`Holder::gone`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Its process still runs here: the apply is running.
    Running,
    /// Provably gone, and why.
    Gone(String),
    /// Taken on another workstation (or in another process namespace, or by a corral that
    /// did not record enough): nothing here can tell.
    Unknown { host: String },
}

impl Holder {
    pub fn parse(line: &str) -> Option<Holder> {
        let line = line.lines().next()?.trim();
        let line = line.split_once(" since ").map_or(line, |(head, _)| head);
        let mut words = line.split_whitespace();
        let (_, host) = words.next()?.rsplit_once('@')?;
        let mut holder = Holder {
            host: host.to_owned(),
            pid: 0,
            machine: None,
            pidns: None,
            boot: None,
            start: None,
        };
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            match key {
                "pid" => holder.pid = value.parse().ok()?,
                "machine" => holder.machine = Some(value.to_owned()),
                "pidns" => holder.pidns = Some(value.to_owned()),
                "boot" => holder.boot = Some(value.to_owned()),
                "start" => holder.start = value.parse().ok(),
                _ => {}
            }
        }
        (holder.pid != 0).then_some(holder)
    }

    /// Whether the holder is provably gone, seen from `here` (`start_of` tells when a pid
    /// started, [`process_start`] outside tests).
    pub fn gone(&self, here: &Workstation, start_of: impl Fn(u32) -> Option<u64>) -> Liveness {
        let unknown = || Liveness::Unknown {
            host: self.host.clone(),
        };
        let (Some(machine), Some(pidns), Some(boot), Some(start)) =
            (&self.machine, &self.pidns, &self.boot, self.start)
        else {
            return unknown();
        };
        if here.machine.as_ref() != Some(machine) || here.host != self.host {
            return unknown();
        }
        if here.boot.as_ref().is_some_and(|b| b != boot) {
            return Liveness::Gone(format!(
                "{} rebooted since it took the lock (boot id {boot}, now {})",
                self.host,
                here.boot.as_deref().unwrap_or_default()
            ));
        }
        if here.pidns.as_ref() != Some(pidns) || here.boot.is_none() {
            return unknown();
        }
        match start_of(self.pid) {
            None => Liveness::Gone(format!(
                "process {} no longer runs on {}",
                self.pid, self.host
            )),
            Some(now) if now > start => Liveness::Gone(format!(
                "pid {} on {} is now another process, started after the lock was taken",
                self.pid, self.host
            )),
            Some(_) => Liveness::Running,
        }
    }
}

/// The name of the account this process runs as: `id -un` (which asks NSS, so LDAP
/// accounts too), else the uid's line in `/etc/passwd`, else `uid N`.
fn account() -> String {
    let named = std::process::Command::new("id")
        .arg("-un")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty());
    if let Some(name) = named {
        return name;
    }
    let Some(uid) = own_uid() else {
        return "an unknown account".to_owned();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The real uid of this process, from `/proc/self/status`.
fn own_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The name of `uid` in a passwd file's text.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_owned())
    })
}

fn acquire_script(owner: &str) -> String {
    format!(
        "mkdir -p /var/lib/corral\nif mkdir {PATH} 2>/dev/null; then\n  if printf '%s since %s\\n' {} \"$(date -u +%FT%TZ)\" > {PATH}/owner; then\n    echo corral-lock-acquired\n  else\n    rm -rf {PATH}\n  fi\nelse\n  echo corral-lock-held\n  cat {PATH}/owner 2>/dev/null || echo 'an unknown owner'\nfi\n",
        quote(owner)
    )
}

/// Replaces the owner line with ours if it is still `seen` (what was found gone); a
/// `takeover` directory inside the lock makes two applies taking it over at once take
/// turns, and goes with the lock when it is released.
fn take_over_script(seen: &str, owner: &str) -> String {
    format!(
        "if mkdir {PATH}/takeover 2>/dev/null; then\n  if [ \"$(cat {PATH}/owner 2>/dev/null)\" = {seen} ] && printf '%s since %s\\n' {owner} \"$(date -u +%FT%TZ)\" > {PATH}/owner.new && mv {PATH}/owner.new {PATH}/owner; then\n    rmdir {PATH}/takeover && echo corral-lock-taken-over\n  else\n    rm -f {PATH}/owner.new; rmdir {PATH}/takeover; echo corral-lock-changed\n  fi\nelse\n  echo corral-lock-changed\nfi\n",
        seen = quote(seen),
        owner = quote(owner)
    )
}

fn release_script(owner: &str) -> String {
    format!(
        "case \"$(cat {PATH}/owner 2>/dev/null)\" in\n  {}' since '*) rm -rf {PATH} ;;\nesac\n",
        quote(owner)
    )
}

/// Prints `corral-no-lock`, or `corral-lock-held` and the owner line. Shell builtins
/// only: it runs in every plan's fact script (see [`probe`]).
fn read_script() -> String {
    format!(
        "if [ -d {PATH} ]; then\n  echo corral-lock-held\n  corral_owner=; if IFS= read -r corral_owner < {PATH}/owner || [ -n \"$corral_owner\" ]; then printf '%s\\n' \"$corral_owner\"; else echo 'an unknown owner (no owner file)'; fi 2>/dev/null\nelse\n  echo corral-no-lock\nfi\n"
    )
}

/// Removes the lock only if its owner line is still `holder` (what the operator saw).
fn force_release_script(holder: &str) -> String {
    format!(
        "if [ ! -d {PATH} ]; then\n  echo corral-no-lock\nelif [ \"$(cat {PATH}/owner 2>/dev/null || echo 'an unknown owner (no owner file)')\" = {} ]; then\n  rm -rf {PATH} && echo corral-lock-removed\nelse\n  echo corral-lock-changed\n  cat {PATH}/owner 2>/dev/null\nfi\n",
        quote(holder)
    )
}

async fn run(host: &dyn Host, script: &str) -> Result<ScriptOutput, ApplyError> {
    let limits = Limits::within(SCRIPT_TIMEOUT, OutputBound::KeepTail(64 * 1024));
    match host.run_script(script, limits).await {
        Ok(out) => Ok(out),
        Err(TransportError::DeadlinePassed { .. }) => Err(ApplyError::NoAnswer {
            within: SCRIPT_TIMEOUT,
        }),
        Err(e) => Err(e.into()),
    }
}

/// An owner line as people read it: without the fields that tell whether its process is
/// gone (`machine`, `pidns`, `boot`, `start`).
fn shown(line: &str) -> String {
    let mut words = line.split(' ').peekable();
    let mut kept = Vec::new();
    while let Some(word) = words.next() {
        if matches!(word, "machine" | "pidns" | "boot" | "start") && words.peek().is_some() {
            words.next();
            continue;
        }
        kept.push(word);
    }
    kept.join(" ")
}

/// The text after a marker line.
fn after(stdout: &str, marker: &str) -> Option<String> {
    stdout
        .split_once(&format!("{marker}\n"))
        .map(|(_, rest)| rest.trim().to_owned())
}

/// Locks every host in `hosts`, waiting up to `timeout` for locks others hold, and giving
/// up when `stop` is set (an interrupt). On failure the locks already taken are released
/// and the error names the holder.
pub async fn acquire(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    owner: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(), LockError> {
    acquire_taking_over(hosts, owner, timeout, stop, false).await
}

/// [`acquire`]; a lock whose holder is provably gone ([`Holder::gone`]) is taken over when
/// `take_over` is set, and otherwise fails at once with why (it is not waited for).
pub async fn acquire_taking_over(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    owner: &str,
    timeout: Duration,
    stop: &AtomicBool,
    take_over: bool,
) -> Result<(), LockError> {
    let here = Workstation::this();
    let started = Instant::now();
    let mut locked: BTreeMap<String, Arc<dyn Host>> = BTreeMap::new();
    for (machine, host) in hosts {
        let mut takeovers = 0;
        let outcome = loop {
            if stop.load(Ordering::SeqCst) {
                break Err((false, LockError::Interrupted));
            }
            let outcome = match run(host.as_ref(), &acquire_script(owner)).await {
                Ok(out)
                    if out.rc == Some(0)
                        && out.stdout.lines().any(|l| l == "corral-lock-acquired") =>
                {
                    Ok(())
                }
                Ok(out) if out.rc == Some(0) && out.stdout.contains("corral-lock-held\n") => {
                    let seen = after(&out.stdout, "corral-lock-held").unwrap_or_default();
                    // Host text: escaped before it reaches the operator's terminal.
                    let holder = crate::base::text::printable(&shown(&seen)).replace('\n', " ");
                    let liveness = Holder::parse(&seen)
                        .map(|h| h.gone(&here, process_start))
                        .unwrap_or(Liveness::Running);
                    match liveness {
                        Liveness::Running => Err((
                            true,
                            LockError::Held {
                                machine: machine.clone(),
                                holder,
                            },
                        )),
                        Liveness::Unknown { host } => Err((
                            true,
                            LockError::Foreign {
                                machine: machine.clone(),
                                holder,
                                host: crate::base::text::printable(&host).into_owned(),
                            },
                        )),
                        Liveness::Gone(why) if !take_over => Err((
                            false,
                            LockError::Stale {
                                machine: machine.clone(),
                                holder,
                                why: crate::base::text::printable(&why).into_owned(),
                            },
                        )),
                        Liveness::Gone(why) => {
                            match run(host.as_ref(), &take_over_script(&seen, owner)).await {
                                Ok(out)
                                    if out.rc == Some(0)
                                        && out
                                            .stdout
                                            .lines()
                                            .any(|l| l == "corral-lock-taken-over") =>
                                {
                                    eprintln!(
                                        "{machine}: took over the apply lock of {holder}: {}",
                                        crate::base::text::printable(&why)
                                    );
                                    Ok(())
                                }
                                // Released or taken over by another meanwhile: try again,
                                // a few times (a takeover cut short leaves its directory).
                                Ok(out) if out.rc == Some(0) && takeovers < 3 => {
                                    takeovers += 1;
                                    continue;
                                }
                                Ok(_) => Err((
                                    false,
                                    LockError::Failed {
                                        machine: machine.clone(),
                                        message: format!("the lock of {holder} could not be taken over ({PATH}/takeover may be left from a takeover cut short): once no apply runs there, run `corral force-unlock {machine} …`"),
                                    },
                                )),
                                Err(e) => Err((
                                    false,
                                    LockError::Failed {
                                        machine: machine.clone(),
                                        message: e.to_string(),
                                    },
                                )),
                            }
                        }
                    }
                }
                Ok(out) => Err((
                    false,
                    LockError::Failed {
                        machine: machine.clone(),
                        message: crate::base::text::tail(
                            &format!("{}{}", out.stdout, out.stderr),
                            400,
                        )
                        .to_owned(),
                    },
                )),
                Err(e) => Err((
                    false,
                    LockError::Failed {
                        machine: machine.clone(),
                        message: e.to_string(),
                    },
                )),
            };
            match outcome {
                Err((true, _)) if started.elapsed() < timeout => {
                    // Wait for the next try, but not past an interrupt.
                    let next = Instant::now() + RETRY_EVERY;
                    while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {
                locked.insert(machine.clone(), host.clone());
            }
            Err((held, error)) => {
                if !held {
                    // The lock may have been taken before the answer was lost; release
                    // checks the owner, so this never frees someone else's lock.
                    locked.insert(machine.clone(), host.clone());
                }
                release(&locked, owner).await;
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Releases this process's locks (never someone else's) on every host at once; returns the
/// hosts where that failed, with why.
pub async fn release(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    owner: &str,
) -> Vec<(String, String)> {
    let script = release_script(owner);
    let mut releasing = tokio::task::JoinSet::new();
    for (machine, host) in hosts {
        let (machine, host, script) = (machine.clone(), host.clone(), script.clone());
        releasing.spawn(async move {
            match run(host.as_ref(), &script).await {
                Ok(out) if out.rc == Some(0) => None,
                Ok(out) => Some((
                    machine,
                    crate::base::text::tail(&format!("{}{}", out.stdout, out.stderr), 400)
                        .to_owned(),
                )),
                Err(e) => Some((machine, e.to_string())),
            }
        });
    }
    let mut problems = Vec::new();
    while let Some(joined) = releasing.join_next().await {
        match joined {
            Ok(None) => {}
            Ok(Some(problem)) => problems.push(problem),
            Err(e) => problems.push((
                "(unknown)".to_owned(),
                format!("a lock release failed: {e}"),
            )),
        }
    }
    problems.sort();
    problems
}

/// Who holds the lock on `host`: `None` when there is no lock.
pub async fn holder(host: &dyn Host) -> Result<Option<String>, ApplyError> {
    let out = run(host, &read_script()).await?;
    if out.rc != Some(0) {
        return Err(script_failed(&out));
    }
    holder_in(&out.stdout).ok_or_else(|| ApplyError::UnexpectedAnswer {
        output: crate::base::text::tail(&out.stdout, 400).to_owned(),
    })
}

/// What [`read_script`] printed: no lock (`Some(None)`), its owner line, or none of these.
fn holder_in(stdout: &str) -> Option<Option<String>> {
    if stdout.lines().any(|l| l == "corral-no-lock") {
        return Some(None);
    }
    after(stdout, "corral-lock-held").map(Some)
}

/// Key of [`probe`].
pub const PROBE_KEY: &str = "corral:lock";

/// The lock read as one probe of a plan's fact script, so that the warning of a held lock
/// costs no round trip of its own. Its output is not a fact: the plan takes it out of the
/// facts before anything digests or saves them (an apply holding the lock would see it
/// differ from what its plan saw).
pub fn probe() -> Probe {
    Probe {
        key: PROBE_KEY.to_owned(),
        script: read_script(),
    }
}

/// A lock script's failure: the end of what it printed.
fn script_failed(out: &ScriptOutput) -> ApplyError {
    ApplyError::ScriptFailed {
        output: crate::base::text::tail(&format!("{}{}", out.stdout, out.stderr), 400).to_owned(),
    }
}

/// A lock found on a host: its holder as people read it, and why that holder is provably
/// gone ([`Holder::gone`]), if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub holder: String,
    pub gone: Option<String>,
}

/// Who holds the lock of each host whose [`probe`] answered that it is locked; a probe that
/// failed or printed something else is left out (the plan has read the host's facts).
pub fn holders_in(outputs: &BTreeMap<String, ProbeOutput>) -> BTreeMap<String, Found> {
    let here = Workstation::this();
    outputs
        .iter()
        .filter(|(_, out)| out.rc == 0)
        .filter_map(|(machine, out)| {
            let holder = holder_in(&out.output)??;
            Some((machine.clone(), found(&holder, &here)))
        })
        .collect()
}

/// An owner line read on a host, as [`Found`]: escaped for the terminal, and whether its
/// holder is provably gone.
fn found(holder: &str, here: &Workstation) -> Found {
    let gone = match Holder::parse(holder).map(|h| h.gone(here, process_start)) {
        Some(Liveness::Gone(why)) => Some(crate::base::text::printable(&why).into_owned()),
        _ => None,
    };
    // Host text: escaped before it reaches the operator's terminal.
    let holder = crate::base::text::printable(&shown(holder)).replace('\n', " ");
    Found { holder, gone }
}

/// What [`force_release`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForceRelease {
    Removed,
    /// There was no lock any more.
    Gone,
    /// Someone else holds it now (the owner line).
    Changed(String),
}

/// Removes the lock on `host` whoever holds it, but only if its holder is still `holder`.
pub async fn force_release(host: &dyn Host, holder: &str) -> Result<ForceRelease, ApplyError> {
    let out = run(host, &force_release_script(holder)).await?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    if out.rc == Some(0) && lines.contains(&"corral-lock-removed") {
        Ok(ForceRelease::Removed)
    } else if out.rc == Some(0) && lines.contains(&"corral-no-lock") {
        Ok(ForceRelease::Gone)
    } else if out.rc == Some(0) && lines.contains(&"corral-lock-changed") {
        Ok(ForceRelease::Changed(
            after(&out.stdout, "corral-lock-changed").unwrap_or_default(),
        ))
    } else {
        Err(script_failed(&out))
    }
}

/// A host whose `/var/lib/corral` is a directory of a test, through a real `sh`.
#[cfg(test)]
pub mod testing {
    use std::path::{Path, PathBuf};

    use crate::transport::{BoxFuture, Host, Limits, LocalHost, ScriptOutput, TransportError};

    pub struct ConfinedHost {
        pub root: PathBuf,
    }

    impl ConfinedHost {
        pub fn new(root: &Path) -> Self {
            ConfinedHost {
                root: root.to_owned(),
            }
        }

        pub fn lock_dir(&self) -> PathBuf {
            self.root.join("lock")
        }

        pub fn owner(&self) -> Option<String> {
            std::fs::read_to_string(self.lock_dir().join("owner")).ok()
        }
    }

    impl Host for ConfinedHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            Box::pin(async move {
                let script = script.replace("/var/lib/corral", &self.root.display().to_string());
                LocalHost.run_script(&script, limits).await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ConfinedHost;
    use super::*;

    fn hosts(dirs: &[&std::path::Path]) -> BTreeMap<String, Arc<dyn Host>> {
        dirs.iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    format!("n{}", i + 1),
                    Arc::new(ConfinedHost::new(d)) as Arc<dyn Host>,
                )
            })
            .collect()
    }

    /// The holder was `$USER`, which is unset or stale under sudo, cron and containers
    /// (`unknown@vm`): it is the account corral runs as. The child test (this binary again,
    /// with `$USER` set to another name) must not name that other user.
    #[test]
    fn the_holder_is_the_account_not_the_user_variable() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "apply::lock::tests::owner_names_the_account",
                "--nocapture",
            ])
            .env("USER", "not-the-account")
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn owner_names_the_account() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let name = String::from_utf8(id.stdout).unwrap().trim().to_owned();
        let owner = owner();
        assert!(owner.starts_with(&format!("{name}@")), "{owner}");
        assert!(
            shown(&owner).ends_with(&format!(" pid {}", std::process::id())),
            "{owner}"
        );
    }

    #[test]
    fn a_uid_is_named_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("ops"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert!(own_uid().is_some());
    }

    /// [`holders_in`] of [`probe`] run as the fact script of each of `hosts`.
    async fn holders(hosts: &BTreeMap<String, Arc<dyn Host>>) -> BTreeMap<String, Found> {
        let mut outputs = BTreeMap::new();
        for (machine, host) in hosts {
            let mut facts = crate::gather::read_host(host.as_ref(), &[probe()])
                .await
                .unwrap();
            outputs.insert(machine.clone(), facts.probes.remove(PROBE_KEY).unwrap());
        }
        holders_in(&outputs)
    }

    #[tokio::test]
    async fn holders_name_the_locked_hosts_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir(a.path().join("lock")).unwrap();
        std::fs::write(
            a.path().join("lock/owner"),
            "alice@laptop pid 42 since 2026-11-23T10:00:00Z\n",
        )
        .unwrap();
        let held = holders(&hosts(&[a.path(), b.path()])).await;
        assert_eq!(
            held,
            BTreeMap::from([(
                "n1".to_owned(),
                Found {
                    holder: "alice@laptop pid 42 since 2026-11-23T10:00:00Z".to_owned(),
                    gone: None
                }
            )])
        );
        // A lock of a killed apply of this workstation: shown short, with why it is gone.
        let dead = dead_pid();
        let boot = Workstation::this().boot.unwrap();
        std::fs::create_dir(b.path().join("lock")).unwrap();
        std::fs::write(
            b.path().join("lock/owner"),
            format!("{} since x\n", owner_of(dead, 1, &boot)),
        )
        .unwrap();
        let held = holders(&hosts(&[a.path(), b.path()])).await;
        assert_eq!(
            held["n2"],
            Found {
                holder: format!("ops@{} pid {dead} since x", Workstation::this().host),
                gone: Some(format!(
                    "process {dead} no longer runs on {}",
                    Workstation::this().host
                )),
            }
        );
    }

    #[tokio::test]
    async fn locks_are_taken_and_released() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let hosts = hosts(&[a.path(), b.path()]);
        let stop = AtomicBool::new(false);
        acquire(&hosts, "me pid 1", Duration::ZERO, &stop)
            .await
            .unwrap();
        assert!(a.path().join("lock/owner").exists() && b.path().join("lock/owner").exists());
        let seen = holder(hosts["n1"].as_ref()).await.unwrap().unwrap();
        assert!(seen.starts_with("me pid 1 since "), "{seen}");
        assert!(release(&hosts, "me pid 1").await.is_empty());
        assert!(!a.path().join("lock").exists() && !b.path().join("lock").exists());
        assert_eq!(holder(hosts["n1"].as_ref()).await.unwrap(), None);
    }

    /// Ctrl-C while waiting (`--lock-timeout`) for a lock another apply holds: the wait ends,
    /// the locks already taken are released, and the other apply's lock is left alone.
    #[tokio::test]
    async fn interrupt_while_waiting_for_a_lock_releases_the_locks_taken() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir(b.path().join("lock")).unwrap();
        std::fs::write(b.path().join("lock/owner"), "alice pid 42 since x\n").unwrap();
        let hosts = hosts(&[a.path(), b.path()]);
        let stop = Arc::new(AtomicBool::new(false));
        let waiting = {
            let (hosts, stop) = (hosts.clone(), stop.clone());
            tokio::spawn(async move {
                acquire(&hosts, "me pid 1", Duration::from_secs(600), &stop).await
            })
        };
        // n1 is locked by us once the wait for n2 has begun.
        while !a.path().join("lock/owner").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let outcome = waiting.await.unwrap();
        assert!(
            matches!(outcome, Err(LockError::Interrupted)),
            "{outcome:?}"
        );
        assert!(
            !a.path().join("lock").exists(),
            "our lock on n1 is released"
        );
        assert_eq!(
            std::fs::read_to_string(b.path().join("lock/owner")).unwrap(),
            "alice pid 42 since x\n",
            "alice's lock is untouched"
        );
    }

    #[tokio::test]
    async fn a_held_lock_names_its_holder() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir(b.path().join("lock")).unwrap();
        std::fs::write(b.path().join("lock/owner"), "alice pid 42 since x\n").unwrap();
        let hosts = hosts(&[a.path(), b.path()]);
        let error = acquire(&hosts, "me pid 1", Duration::ZERO, &AtomicBool::new(false))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("n2 is locked by alice pid 42 since x"),
            "{error}"
        );
        assert!(!a.path().join("lock").exists());
    }

    /// A dead pid of this workstation: a child spawned, killed and reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(process_start(pid), None, "pid {pid} is not reused yet");
        pid
    }

    /// The owner line a lock of `pid` on this workstation carries (as [`owner`] writes it).
    fn owner_of(pid: u32, start: u64, boot: &str) -> String {
        let here = Workstation::this();
        format!(
            "ops@{} pid {pid} machine {} pidns {} boot {boot} start {start}",
            here.host,
            here.machine.unwrap(),
            here.pidns.unwrap()
        )
    }

    fn lock_of(dir: &std::path::Path, owner: &str) {
        std::fs::create_dir(dir.join("lock")).unwrap();
        std::fs::write(
            dir.join("lock/owner"),
            format!("{owner} since 2026-12-07T09:00:00Z\n"),
        )
        .unwrap();
    }

    #[test]
    fn the_owner_records_this_workstation_and_process() {
        let owner = owner();
        let holder = Holder::parse(&format!("{owner} since x")).unwrap();
        let here = Workstation::this();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.host, here.host);
        assert_eq!(holder.boot, here.boot);
        assert!(holder.boot.is_some() && holder.machine.is_some() && holder.pidns.is_some());
        assert_eq!(holder.start, process_start(std::process::id()));
        assert_eq!(holder.gone(&here, process_start), Liveness::Running);
        assert_eq!(
            shown(&owner),
            format!("{}@{} pid {}", account(), here.host, std::process::id())
        );
    }

    /// The rule: gone only when provably so, from this workstation.
    #[test]
    fn a_holder_is_gone_only_when_provably_so() {
        let here = Workstation::this();
        let boot = here.boot.clone().unwrap();
        let me = std::process::id();
        let my_start = process_start(me).unwrap();
        let dead = dead_pid();
        let parse = |line: &str| Holder::parse(line).unwrap();
        // Its process no longer runs.
        let gone = parse(&owner_of(dead, 1, &boot)).gone(&here, process_start);
        assert!(
            matches!(&gone, Liveness::Gone(why) if why == &format!("process {dead} no longer runs on {}", here.host)),
            "{gone:?}"
        );
        // The pid is another process now, started after the lock.
        let reused = parse(&owner_of(me, my_start - 1, &boot)).gone(&here, process_start);
        assert!(
            matches!(&reused, Liveness::Gone(why) if why.contains("now another process")),
            "{reused:?}"
        );
        // The workstation rebooted: whatever runs under that pid now.
        let rebooted = parse(&owner_of(
            me,
            my_start,
            "00000000-0000-0000-0000-000000000000",
        ))
        .gone(&here, process_start);
        assert!(
            matches!(&rebooted, Liveness::Gone(why) if why.contains("rebooted")),
            "{rebooted:?}"
        );
        // Still running.
        assert_eq!(
            parse(&owner_of(me, my_start, &boot)).gone(&here, process_start),
            Liveness::Running
        );
        // Another workstation, another process namespace, an older record: unknown.
        let other = owner_of(dead, 1, &boot).replacen(&format!("@{} ", here.host), "@laptop ", 1);
        assert_eq!(
            parse(&other).gone(&here, process_start),
            Liveness::Unknown {
                host: "laptop".into()
            }
        );
        let pidns = owner_of(dead, 1, &boot)
            .replace(&format!("pidns {}", here.pidns.clone().unwrap()), "pidns 1");
        assert!(matches!(
            parse(&pidns).gone(&here, process_start),
            Liveness::Unknown { .. }
        ));
        let old = format!("ops@{} pid {dead} since 2026-11-23T10:00:00Z", here.host);
        assert!(matches!(
            parse(&old).gone(&here, process_start),
            Liveness::Unknown { .. }
        ));
    }

    /// A lock left by a killed apply of this workstation is named with why it is gone, and
    /// taken over only when asked; the new owner line is ours.
    #[tokio::test]
    async fn a_stale_lock_is_taken_over_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let boot = Workstation::this().boot.unwrap();
        let dead = dead_pid();
        let stale = owner_of(dead, 1, &boot);
        lock_of(dir.path(), &stale);
        let hosts = hosts(&[dir.path()]);
        let stop = AtomicBool::new(false);
        let error = acquire(&hosts, "me pid 1", Duration::from_secs(30), &stop)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, LockError::Stale { why, .. } if why.contains(&format!("process {dead} no longer runs"))),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "n1 is locked by ops@{} pid {dead} since",
                Workstation::this().host
            )) && message.contains("--take-over-stale-lock"),
            "{message}"
        );
        assert!(std::fs::read_to_string(dir.path().join("lock/owner"))
            .unwrap()
            .starts_with(&stale));
        acquire_taking_over(&hosts, "me pid 1", Duration::ZERO, &stop, true)
            .await
            .unwrap();
        let owner = std::fs::read_to_string(dir.path().join("lock/owner")).unwrap();
        assert!(owner.starts_with("me pid 1 since "), "{owner}");
        assert!(!dir.path().join("lock/takeover").exists());
        assert!(release(&hosts, "me pid 1").await.is_empty());
        assert!(!dir.path().join("lock").exists());
    }

    /// A live holder, or one of another workstation, is never taken over.
    #[tokio::test]
    async fn a_live_or_foreign_lock_is_never_taken_over() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let boot = Workstation::this().boot.unwrap();
        let me = std::process::id();
        let live = owner_of(me, process_start(me).unwrap(), &boot);
        lock_of(a.path(), &live);
        let foreign = owner_of(dead_pid(), 1, &boot).replacen(
            &format!("@{} ", Workstation::this().host),
            "@laptop ",
            1,
        );
        lock_of(b.path(), &foreign);
        let stop = AtomicBool::new(false);
        let error =
            acquire_taking_over(&hosts(&[a.path()]), "me pid 1", Duration::ZERO, &stop, true)
                .await
                .unwrap_err();
        assert!(matches!(error, LockError::Held { .. }), "{error:?}");
        let error =
            acquire_taking_over(&hosts(&[b.path()]), "me pid 1", Duration::ZERO, &stop, true)
                .await
                .unwrap_err();
        assert!(
            matches!(&error, LockError::Foreign { host, .. } if host == "laptop"),
            "{error:?}"
        );
        assert!(error.to_string().contains("force-unlock"), "{error}");
        for (dir, owner) in [(&a, &live), (&b, &foreign)] {
            assert!(std::fs::read_to_string(dir.path().join("lock/owner"))
                .unwrap()
                .starts_with(owner.as_str()));
        }
    }

    /// force-unlock removes a lock only if it is still the one the operator saw.
    #[tokio::test]
    async fn force_release_checks_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let host = ConfinedHost::new(dir.path());
        assert_eq!(holder(&host).await.unwrap(), None);
        assert_eq!(force_release(&host, "x").await.unwrap(), ForceRelease::Gone);
        std::fs::create_dir(host.lock_dir()).unwrap();
        std::fs::write(host.lock_dir().join("owner"), "alice pid 42 since x\n").unwrap();
        let seen = holder(&host).await.unwrap().unwrap();
        assert_eq!(seen, "alice pid 42 since x");
        assert_eq!(
            force_release(&host, "bob pid 7 since y").await.unwrap(),
            ForceRelease::Changed("alice pid 42 since x".into())
        );
        assert!(host.owner().is_some());
        assert_eq!(
            force_release(&host, &seen).await.unwrap(),
            ForceRelease::Removed
        );
        assert!(!host.lock_dir().exists());
    }
}
