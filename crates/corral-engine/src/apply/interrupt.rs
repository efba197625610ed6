//! SIGINT and SIGTERM for a whole run that connects to hosts, in one place.
//!
//! - Outside a lock session (reading hosts, planning, at the confirmation prompt): corral
//!   ends its SSH masters and exits (130 for SIGINT, 143 for SIGTERM).
//! - Inside one (from the first lock taken to the last released), the first signal asks
//!   the session to stop: a wait for a lock ends, running steps finish, nothing new starts,
//!   the record is written and every lock is released. A second signal aborts at once:
//!   the locks are released right away (each host gets [`ABORT_RELEASE_TIMEOUT`]) even
//!   though steps that were running may still finish on their hosts, then the masters end
//!   and corral exits: [`aborted`] tells `main`, which alone turns it into the exit code.
//!
//! It may not decide anything about a plan or a host; it only stops and cleans up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::exit::ExitStatus;
use crate::transport::ssh::Masters;
use crate::transport::Host;

/// How long an abort waits for the locks to be released.
pub const ABORT_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wakes [`aborted`] once a signal has aborted the run.
static ABORTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The exit code of the signal that aborted the run (130 or 143).
static ABORT_CODE: AtomicU8 = AtomicU8::new(130);

/// Resolves once a signal has aborted the run (its locks released and its masters ended),
/// with the status to exit with. `main` races the command against it: the command may be
/// waiting on a host that will never answer, and the exit status is still decided there.
pub async fn aborted() -> ExitStatus {
    ABORTED.notified().await;
    ExitStatus::of_signal(ABORT_CODE.load(Ordering::SeqCst))
}

/// The locks a session holds (or is taking): released on abort.
struct HeldLocks {
    hosts: BTreeMap<String, Arc<dyn Host>>,
    owner: String,
}

/// What a signal does, given the state of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Stop gracefully: the session finishes what runs and releases its locks.
    Stop,
    /// Release the locks quickly, end the masters and exit.
    Abort,
}

/// The run's answer to SIGINT and SIGTERM; see the module documentation.
pub struct Interrupts {
    masters: Option<Arc<Masters>>,
    stop: AtomicBool,
    signals: AtomicUsize,
    /// The exit code of the last signal: 130 (SIGINT) or 143 (SIGTERM).
    exit_code: AtomicU8,
    locks: Mutex<Option<HeldLocks>>,
}

impl Interrupts {
    /// Interrupts for a run whose SSH masters are `masters` (none for runs on this machine);
    /// nothing listens for signals until [`Interrupts::listen`].
    pub fn new(masters: Option<Arc<Masters>>) -> Arc<Interrupts> {
        Arc::new(Interrupts {
            masters,
            stop: AtomicBool::new(false),
            signals: AtomicUsize::new(0),
            exit_code: AtomicU8::new(130),
            locks: Mutex::new(None),
        })
    }

    /// Starts listening for SIGINT and SIGTERM (needs a Tokio runtime).
    pub fn listen(self: &Arc<Self>) {
        let interrupts = self.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                eprintln!("Warning: cannot handle Ctrl-C; an interrupt now leaves SSH connections and locks behind");
                return;
            };
            loop {
                let status = tokio::select! {
                    _ = interrupt.recv() => ExitStatus::Interrupted,
                    _ = terminate.recv() => ExitStatus::Terminated,
                };
                if interrupts.on_signal(status.code()) == Response::Abort {
                    interrupts.abort().await;
                    ABORT_CODE.store(status.code(), Ordering::SeqCst);
                    ABORTED.notify_one();
                    return;
                }
            }
        });
    }

    fn locks(&self) -> MutexGuard<'_, Option<HeldLocks>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one signal (`exit_code` 130 for SIGINT, 143 for SIGTERM) and says what to do
    /// about it.
    pub fn on_signal(&self, exit_code: u8) -> Response {
        self.exit_code.store(exit_code, Ordering::SeqCst);
        let count = self.signals.fetch_add(1, Ordering::SeqCst) + 1;
        let in_session = self.locks().is_some();
        match (in_session, count) {
            (true, 1) => {
                eprintln!("\nInterrupted: finishing the steps in progress, starting no new ones, then releasing the host locks. Interrupt again to abort at once (the locks are still released; steps in progress may then finish on their hosts unwatched).");
                self.stop.store(true, Ordering::SeqCst);
                Response::Stop
            }
            (true, _) => {
                eprintln!("\nAborting: releasing the host locks and closing the connections.");
                self.stop.store(true, Ordering::SeqCst);
                Response::Abort
            }
            (false, _) => {
                eprintln!("\nInterrupted.");
                self.stop.store(true, Ordering::SeqCst);
                Response::Abort
            }
        }
    }

    /// Set once a stop was asked for; the session and the walk read it.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// How a run that stopped for a signal exits: 130 after SIGINT, 143 after SIGTERM.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::of_signal(self.exit_code.load(Ordering::SeqCst))
    }

    /// A lock session begins: these hosts are being locked by `owner`.
    pub fn begin_session(&self, hosts: &BTreeMap<String, Arc<dyn Host>>, owner: &str) {
        *self.locks() = Some(HeldLocks {
            hosts: hosts.clone(),
            owner: owner.to_owned(),
        });
    }

    /// The session released its locks.
    pub fn end_session(&self) {
        *self.locks() = None;
    }

    /// Releases the session's locks (quickly: [`ABORT_RELEASE_TIMEOUT`] at most) and ends
    /// every SSH master. The caller exits afterwards.
    pub async fn abort(&self) {
        let held = self.locks().take();
        if let Some(held) = held {
            let release = super::lock::release(&held.hosts, &held.owner);
            match tokio::time::timeout(ABORT_RELEASE_TIMEOUT, release).await {
                Ok(problems) => {
                    for (machine, problem) in problems {
                        eprintln!("Error: the apply lock stays on {machine} ({problem}); remove it with `corral force-unlock {machine} …`");
                    }
                }
                Err(_) => eprintln!(
                    "Error: not every host answered within {} to release its apply lock; check them with `corral force-unlock`",
                    crate::transport::describe(ABORT_RELEASE_TIMEOUT)
                ),
            }
        }
        if let Some(masters) = &self.masters {
            masters.end_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lock::testing::ConfinedHost;
    use super::*;

    #[test]
    fn signals_outside_a_session_abort_and_inside_stop_first() {
        let interrupts = Interrupts::new(None);
        assert_eq!(interrupts.on_signal(130), Response::Abort);

        let interrupts = Interrupts::new(None);
        interrupts.begin_session(&BTreeMap::new(), "me");
        assert_eq!(interrupts.on_signal(130), Response::Stop);
        assert!(interrupts.stop_requested());
        assert_eq!(interrupts.on_signal(130), Response::Abort);
    }

    /// A second interrupt during a session releases its locks and ends the masters.
    #[tokio::test]
    async fn abort_releases_the_locks_and_ends_the_masters() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let hosts: BTreeMap<String, Arc<dyn Host>> = [("n1", a.path()), ("n2", b.path())]
            .into_iter()
            .map(|(m, d)| {
                (
                    m.to_owned(),
                    Arc::new(ConfinedHost::new(d)) as Arc<dyn Host>,
                )
            })
            .collect();
        let stop = AtomicBool::new(false);
        super::super::lock::acquire(&hosts, "me pid 1", Duration::ZERO, &stop)
            .await
            .unwrap();
        let control = tempfile::tempdir().unwrap();
        let masters = Masters::create_in(control.path()).unwrap();
        let dir = masters.dir().to_owned();
        let interrupts = Interrupts::new(Some(masters));
        interrupts.begin_session(&hosts, "me pid 1");
        assert_eq!(interrupts.on_signal(130), Response::Stop);
        assert_eq!(interrupts.on_signal(130), Response::Abort);
        interrupts.abort().await;
        assert!(!a.path().join("lock").exists() && !b.path().join("lock").exists());
        assert!(!dir.exists(), "the control directory is gone");
    }
}
