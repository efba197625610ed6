//! The per-host apply lock (SPEC §5): `/var/lib/corral/lock`, a directory made atomically
//! with `mkdir`, holding an `owner` file (who, which process, since when). Two applies never
//! change one host at the same time; a second one fails with the holder's name, or waits up
//! to `--lock-timeout`. A lock left by a killed apply stays until someone removes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shell::quote;
use crate::transport::Host;

pub const PATH: &str = "/var/lib/corral/lock";

/// Who holds a lock: `user@host pid N`; the host adds the time.
pub fn owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{} pid {}", host.trim(), std::process::id())
}

fn acquire_script(owner: &str) -> String {
    format!(
        "mkdir -p /var/lib/corral\nif mkdir {PATH} 2>/dev/null; then\n  if printf '%s since %s\\n' {} \"$(date -u +%FT%TZ)\" > {PATH}/owner; then\n    echo corral-lock-acquired\n  else\n    rm -rf {PATH}\n  fi\nelse\n  echo corral-lock-held\n  cat {PATH}/owner 2>/dev/null || echo 'an unknown owner'\nfi\n",
        quote(owner)
    )
}

fn release_script(owner: &str) -> String {
    format!(
        "case \"$(cat {PATH}/owner 2>/dev/null)\" in\n  {}' since '*) rm -rf {PATH} ;;\nesac\n",
        quote(owner)
    )
}

/// Locks every host in `hosts`, waiting up to `timeout` for locks others hold. On failure
/// the locks already taken are released and the error names the holder.
pub async fn acquire(
    hosts: &BTreeMap<String, Arc<dyn Host>>,
    owner: &str,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut locked: Vec<&String> = Vec::new();
    for (machine, host) in hosts {
        loop {
            let out = host
                .run_script(&acquire_script(owner))
                .await
                .map_err(|e| format!("{machine}: cannot take the apply lock: {e}"));
            let outcome = match out {
                Ok(out)
                    if out.rc == Some(0)
                        && out.stdout.lines().any(|l| l == "corral-lock-acquired") =>
                {
                    Ok(())
                }
                Ok(out) if out.rc == Some(0) && out.stdout.contains("corral-lock-held\n") => {
                    let holder = out
                        .stdout
                        .split_once("corral-lock-held\n")
                        .map_or("", |(_, rest)| rest)
                        .trim()
                        .to_owned();
                    Err((true, format!(
                        "{machine} is locked by {holder}: another apply is running there; if it was killed, remove {PATH} on {machine} once you are sure"
                    )))
                }
                Ok(out) => Err((
                    false,
                    format!(
                        "{machine}: cannot take the apply lock: {}",
                        crate::facts::tail(&format!("{}{}", out.stdout, out.stderr), 400)
                    ),
                )),
                Err(message) => Err((false, message)),
            };
            match outcome {
                Ok(()) => {
                    locked.push(machine);
                    break;
                }
                Err((true, _)) if started.elapsed() < timeout => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err((held, message)) => {
                    let mut taken: BTreeMap<String, Arc<dyn Host>> = locked
                        .iter()
                        .map(|m| ((*m).clone(), hosts[*m].clone()))
                        .collect();
                    if !held {
                        // The lock may have been taken before the answer was lost; release
                        // checks the owner, so this never frees someone else's lock.
                        taken.insert(machine.clone(), host.clone());
                    }
                    release(&taken, owner).await;
                    return Err(message);
                }
            }
        }
    }
    Ok(())
}

/// Releases this process's locks (never someone else's).
pub async fn release(hosts: &BTreeMap<String, Arc<dyn Host>>, owner: &str) {
    let script = release_script(owner);
    for host in hosts.values() {
        let _ = host.run_script(&script).await;
    }
}
