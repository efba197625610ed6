//! An apply session: what happens between a confirmed plan and its report, from the first
//! lock taken to the last released.
//!
//! 1. Lock every host that changes, all before any is touched (waiting up to
//!    `--lock-timeout` for another apply).
//! 2. Read those hosts again under the lock: another apply may have changed them while the
//!    plan waited for its confirmation; any difference makes the plan stale.
//! 3. Walk the plan ([`super::apply`]).
//! 4. Update each changed host's record of what corral wrote there (`managed.json`), from
//!    the facts read under the lock.
//! 5. Release the locks.
//!
//! Every host operation has a deadline, and the run's [`Interrupts`] know the locks from the
//! start of step 1 to the end of step 5, so that an interrupt or an abort releases them.
//! The session never prints; it returns what happened.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::interrupt::Interrupts;
use super::lock::{self, LockError};
use super::{Event, Report};
use crate::address::Address;
use crate::config::Config;
use crate::facts::HostFacts;
use crate::gather;
use crate::graph::{Filter, ResourceGraph};
use crate::plan::Plan;
use crate::transport::{describe, Host, Limits, OutputBound, TransportError};

/// How long writing a host's record may take.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

/// How a session runs.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// How long to wait for another apply's lock.
    pub lock_timeout: Duration,
    /// Take over a lock whose holder is provably gone (`--take-over-stale-lock`).
    pub take_over_stale_lock: bool,
    /// The deadline of reading one host again under its lock.
    pub facts_timeout: Duration,
    /// Hosts changed at the same time.
    pub parallelism: usize,
}

/// Why a session changed nothing. Its locks are released by then.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum SessionError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error("the plan is stale: hosts changed since it was made: {}", .0.join(", "))]
    #[diagnostic(
        code(corral::apply::stale_plan),
        help("plan again and review the new plan")
    )]
    Stale(Vec<String>),
    #[error("interrupted before any host was changed")]
    #[diagnostic(code(corral::apply::interrupted))]
    Interrupted,
}

/// What a walk did, and the records that could not be written.
#[derive(Debug, Clone)]
pub struct Applied {
    pub report: Report,
    pub record_errors: Vec<String>,
    /// Hosts whose records of the project named no owner and now name this configuration.
    pub claimed: Vec<String>,
}

/// The end of a session.
#[derive(Debug)]
pub struct Outcome {
    pub applied: Result<Applied, SessionError>,
    /// Hosts whose lock could not be released, with why.
    pub unreleased: Vec<(String, String)>,
}

/// Everything a session works on.
pub struct Session<'a> {
    pub config: &'a Config,
    pub graph: &'a ResourceGraph,
    pub filter: &'a Filter,
    pub plan: &'a Plan,
    /// The facts the plan was made from (cluster resources work out their steps from them).
    pub facts: &'a crate::facts::Gathered,
    /// A connection to every host that was read.
    pub hosts: &'a BTreeMap<String, Arc<dyn Host>>,
    pub interrupts: &'a Interrupts,
    pub options: SessionOptions,
}

impl Session<'_> {
    /// Runs the session; see the module documentation.
    pub async fn run(&self, events: mpsc::UnboundedSender<Event>) -> Outcome {
        let plan = self.plan;
        // Only the hosts that change are locked (and only they get a record); a cluster
        // resource's change changes all its members.
        let mut machines: std::collections::BTreeSet<String> = plan
            .resource_changes
            .iter()
            .filter_map(|c| c.machine.clone())
            .collect();
        for change in plan.resource_changes.iter().filter(|c| c.machine.is_none()) {
            let Some(resource) = self
                .config
                .resources
                .iter()
                .find(|r| r.address == change.address)
            else {
                continue;
            };
            if let crate::kinds::Placement::Cluster(kind) = resource.spec.placement() {
                // Its members and the machines its steps run on (a node that leaves).
                machines.extend(super::cluster_work(self.config, kind, resource, self.facts).0);
            }
        }
        // Records of the project that name no owner yet (made before corral recorded owners)
        // are claimed for this configuration: those hosts are locked and recorded too. (A
        // plan under another configuration's name never gets here: build refuses it.)
        let held = crate::project::held(self.config, self.facts);
        let claims = crate::project::decide(&self.config.project, &self.config.identity, &held)
            .unwrap_or_default();
        machines.extend(claims.iter().cloned());
        let changing: BTreeMap<String, Arc<dyn Host>> = self
            .hosts
            .iter()
            .filter(|(machine, _)| machines.contains(*machine))
            .map(|(machine, host)| (machine.clone(), host.clone()))
            .collect();
        let owner = lock::owner();
        self.interrupts.begin_session(&changing, &owner);
        let applied = self
            .locked(&changing, &owner, events)
            .await
            .map(|mut applied| {
                let failed = |m: &String| {
                    applied
                        .record_errors
                        .iter()
                        .any(|e| e.starts_with(&format!("{m}:")))
                };
                applied.claimed = claims.iter().filter(|m| !failed(m)).cloned().collect();
                applied
            });
        let unreleased = match &applied {
            // A failed acquire released what it took.
            Err(SessionError::Lock(_)) => Vec::new(),
            _ => lock::release(&changing, &owner).await,
        };
        self.interrupts.end_session();
        Outcome {
            applied,
            unreleased,
        }
    }

    async fn locked(
        &self,
        changing: &BTreeMap<String, Arc<dyn Host>>,
        owner: &str,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Applied, SessionError> {
        let stop = self.interrupts.stop_flag();
        lock::acquire_taking_over(
            changing,
            owner,
            self.options.lock_timeout,
            stop,
            self.options.take_over_stale_lock,
        )
        .await?;
        let fresh = self.read_again(changing).await?;
        if self.interrupts.stop_requested() {
            return Err(SessionError::Interrupted);
        }
        let report = super::run(
            self.config,
            self.graph,
            self.plan,
            self.facts,
            self.hosts,
            self.options.parallelism,
            events,
            stop,
        )
        .await;
        let record_errors = self.record(&report, &fresh, changing).await;
        Ok(Applied {
            report,
            record_errors,
            claimed: Vec::new(),
        })
    }

    /// Reads the changing hosts again, all at once; the plan holds only if each reads as it
    /// did when it was planned.
    async fn read_again(
        &self,
        changing: &BTreeMap<String, Arc<dyn Host>>,
    ) -> Result<BTreeMap<String, HostFacts>, SessionError> {
        let mut probes = gather::probes_by_machine(self.config, self.graph, self.filter);
        let mut reading = tokio::task::JoinSet::new();
        for (machine, host) in changing {
            let (machine, host) = (machine.clone(), host.clone());
            // The host's own facts, as the plan kept them: the cluster's questions asked of
            // it in the first round trip are not asked again.
            let mut probes = probes.remove(&machine).unwrap_or_default();
            probes.retain(|p| !gather::is_speculative(&p.key));
            let timeout = self.options.facts_timeout;
            reading.spawn(async move {
                let facts = gather::read_host_within(host.as_ref(), &probes, timeout).await;
                (machine, facts)
            });
        }
        let mut fresh = BTreeMap::new();
        let mut moved = Vec::new();
        while let Some(joined) = reading.join_next().await {
            match joined {
                Ok((machine, Ok(facts)))
                    if self.plan.facts_digests.hosts.get(&machine) == Some(&facts.digest()) =>
                {
                    fresh.insert(machine, facts);
                }
                Ok((machine, Ok(_))) => moved.push(machine),
                Ok((machine, Err(message))) => moved.push(format!("{machine} ({message})")),
                Err(e) => moved.push(format!("a host could not be read ({e})")),
            }
        }
        if moved.is_empty() {
            Ok(fresh)
        } else {
            moved.sort();
            Err(SessionError::Stale(moved))
        }
    }

    /// Updates each changed host's record of what corral wrote there, from the facts read
    /// under the lock.
    async fn record(
        &self,
        report: &Report,
        fresh: &BTreeMap<String, HostFacts>,
        changing: &BTreeMap<String, Arc<dyn Host>>,
    ) -> Vec<String> {
        let applied: HashSet<&Address> = report.applied.iter().collect();
        let mut errors = Vec::new();
        for (machine, facts) in fresh {
            let Ok(old) = crate::managed::recorded(facts) else {
                continue;
            };
            let new = crate::managed::updated(&old, machine, self.config, self.plan, &applied);
            if new == old {
                continue;
            }
            let Some(host) = changing.get(machine) else {
                continue;
            };
            let script = crate::shell::change_script(&crate::managed::write_script(&new));
            let limits = Limits::within(RECORD_TIMEOUT, OutputBound::KeepTail(64 * 1024));
            let problem = match host.run_script(&script, limits).await {
                Ok(out) if out.rc == Some(0) => continue,
                Ok(out) => crate::base::text::printable(crate::base::text::tail(&out.stdout, 400))
                    .into_owned(),
                Err(TransportError::DeadlinePassed { .. }) => {
                    format!(
                        "the host did not answer within {}",
                        describe(RECORD_TIMEOUT)
                    )
                }
                Err(e) => e.to_string(),
            };
            errors.push(format!(
                "{machine}: cannot update {}: {problem}",
                crate::managed::PATH
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::super::lock::testing::ConfinedHost;
    use super::super::testing::{is_change, plan, write_config};
    use super::*;
    use crate::facts::Gathered;
    use crate::transport::{BoxFuture, ScriptOutput};

    /// `plan` applied on `hosts` as `corral apply` runs it, with no wait for a lock and
    /// four hosts at once.
    async fn run(
        config: &Config,
        graph: &ResourceGraph,
        facts: &Gathered,
        plan: &Plan,
        hosts: &BTreeMap<String, Arc<dyn Host>>,
        interrupts: &Interrupts,
        take_over_stale_lock: bool,
    ) -> Outcome {
        let session = Session {
            config,
            graph,
            facts,
            filter: &Filter::default(),
            plan,
            hosts,
            interrupts,
            options: SessionOptions {
                lock_timeout: Duration::ZERO,
                take_over_stale_lock,
                facts_timeout: Duration::from_secs(60),
                parallelism: 4,
            },
        };
        let (sender, _receiver) = mpsc::unbounded_channel();
        session.run(sender).await
    }

    /// A host whose `/var/lib/corral` is a test directory, where Ctrl-C is pressed while
    /// the first step runs.
    struct InterruptedHost {
        inner: ConfinedHost,
        interrupts: Arc<Interrupts>,
        pressed: AtomicBool,
    }

    impl Host for InterruptedHost {
        fn run_script<'a>(
            &'a self,
            script: &'a str,
            limits: Limits,
        ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
            if is_change(script) && !self.pressed.swap(true, Ordering::SeqCst) {
                self.interrupts.on_signal(130);
            }
            self.inner.run_script(script, limits)
        }
    }

    /// Ctrl-C during apply: the running step finishes, nothing new starts, what was applied
    /// is recorded, and the lock is released.
    #[tokio::test]
    async fn an_interrupt_during_apply_finishes_the_step_and_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("var-lib-corral");
        std::fs::create_dir(&root).unwrap();
        let paths = write_config(
            dir.path(),
            "kind: os/file\nname: a\nspecification: { machines: all, path: \"{d}/a.conf\", content: \"a\\n\" }\n---\nkind: os/file\nname: b\nspecification: { machines: all, path: \"{d}/b.conf\", content: \"b\\n\" }\n",
        );
        let interrupts = Interrupts::new(None);
        let host = InterruptedHost {
            inner: ConfinedHost::new(&root),
            interrupts: interrupts.clone(),
            pressed: AtomicBool::new(false),
        };
        let (config, graph, plan) = plan(&paths, &host).await;
        assert_eq!(plan.resource_changes.len(), 2);
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(host) as Arc<dyn Host>)]);
        let outcome = run(
            &config,
            &graph,
            &Gathered::default(),
            &plan,
            &hosts,
            &interrupts,
            false,
        )
        .await;

        assert!(interrupts.stop_requested());
        assert!(outcome.unreleased.is_empty(), "{:?}", outcome.unreleased);
        assert!(!root.join("lock").exists(), "the lock is released");
        let applied = outcome.applied.unwrap();
        assert!(
            applied.record_errors.is_empty(),
            "{:?}",
            applied.record_errors
        );
        let report = applied.report;
        assert_eq!(
            report.applied.len(),
            1,
            "the running step finished: {report:?}"
        );
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        assert_eq!(report.skipped[0].1.to_string(), "corral.interrupt");
        let record = std::fs::read_to_string(root.join("managed.json")).unwrap();
        assert!(
            record.contains(&report.applied[0].resource().to_string()),
            "{record}"
        );
    }

    /// Records made before corral recorded owners: the apply claims them (the host's record
    /// then names this configuration) and says so.
    #[tokio::test]
    async fn a_claim_is_made_by_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("var-lib-corral");
        std::fs::create_dir(&root).unwrap();
        let paths = write_config(
            dir.path(),
            "kind: os/file\nname: a\nspecification: { machines: all, path: \"{d}/a.conf\", content: \"a\\n\" }\n",
        );
        let project = crate::config::load(&paths, &Default::default())
            .unwrap()
            .project;
        std::fs::write(
            root.join("managed.json"),
            format!("{{\"format_version\": 2, \"projects\": {{\"{project}\": {{\"os/file.a\": {{\"kind\": \"os/file\", \"path\": \"{}/a.conf\", \"origin\": \"created\"}}}}}}}}", dir.path().display()),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(crate::config::identity::FILE),
            "0123456789abcdef\n",
        )
        .unwrap();
        let host = ConfinedHost::new(&root);
        let (config, graph, plan) = plan(&paths, &host).await;
        let mut facts = Gathered::default();
        for (machine, probes) in
            crate::gather::probes_by_machine(&config, &graph, &Filter::default())
        {
            let read = crate::gather::read_host(&host, &probes).await.unwrap();
            facts.hosts.insert(machine, read);
        }
        let addresses: Vec<String> = plan
            .resource_changes
            .iter()
            .map(|c| c.address.to_string())
            .collect();
        assert_eq!(addresses, ["os/file.a[local]"], "{plan:?}");
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(host) as Arc<dyn Host>)]);
        let interrupts = Interrupts::new(None);
        let applied = run(&config, &graph, &facts, &plan, &hosts, &interrupts, false)
            .await
            .applied
            .unwrap();
        assert!(applied.report.succeeded(), "{:?}", applied.report);
        assert_eq!(applied.claimed, ["local"]);
        let record = std::fs::read_to_string(root.join("managed.json")).unwrap();
        assert!(
            record.contains(&format!("\"{project}\": \"0123456789abcdef\"")),
            "{record}"
        );
    }

    /// Ctrl-C before the locks are all taken: nothing changes and no lock stays.
    #[tokio::test]
    async fn an_interrupt_before_apply_changes_nothing_and_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("var-lib-corral");
        std::fs::create_dir(&root).unwrap();
        let paths = write_config(
            dir.path(),
            "kind: os/file\nname: a\nspecification: { machines: all, path: \"{d}/a.conf\", content: \"a\\n\" }\n",
        );
        let host = ConfinedHost::new(&root);
        let (config, graph, plan) = plan(&paths, &host).await;
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(host) as Arc<dyn Host>)]);
        let interrupts = Interrupts::new(None);
        interrupts.begin_session(&hosts, "someone");
        interrupts.on_signal(143);
        let outcome = run(
            &config,
            &graph,
            &Gathered::default(),
            &plan,
            &hosts,
            &interrupts,
            false,
        )
        .await;
        assert!(matches!(
            outcome.applied,
            Err(SessionError::Lock(LockError::Interrupted))
        ));
        assert!(!root.join("lock").exists());
        assert!(!dir.path().join("a.conf").exists());
    }

    /// An apply killed while it held the lock (a real process of this workstation, killed):
    /// the next apply names it as gone and stops, and with `--take-over-stale-lock` takes
    /// the lock over, applies and releases it.
    #[tokio::test]
    async fn a_lock_of_a_killed_apply_is_taken_over_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("var-lib-corral");
        std::fs::create_dir(&root).unwrap();
        let paths = write_config(
            dir.path(),
            "kind: os/file\nname: a\nspecification: { machines: all, path: \"{d}/a.conf\", content: \"a\\n\" }\n",
        );
        let mut killed = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = killed.id();
        let start = lock::process_start(pid).unwrap();
        killed.kill().unwrap();
        killed.wait().unwrap();
        let here = lock::Workstation::this();
        let stale = format!(
            "ops@{} pid {pid} machine {} pidns {} boot {} start {start} since 2026-12-07T09:00:00Z\n",
            here.host,
            here.machine.unwrap(),
            here.pidns.unwrap(),
            here.boot.unwrap()
        );
        std::fs::create_dir(root.join("lock")).unwrap();
        std::fs::write(root.join("lock/owner"), &stale).unwrap();
        let host = ConfinedHost::new(&root);
        let (config, graph, plan) = plan(&paths, &host).await;
        let hosts: BTreeMap<String, Arc<dyn Host>> =
            BTreeMap::from([("local".to_owned(), Arc::new(host) as Arc<dyn Host>)]);
        let interrupts = Interrupts::new(None);
        for take_over_stale_lock in [false, true] {
            let outcome = run(
                &config,
                &graph,
                &Gathered::default(),
                &plan,
                &hosts,
                &interrupts,
                take_over_stale_lock,
            )
            .await;
            match take_over_stale_lock {
                false => {
                    assert!(
                        matches!(&outcome.applied, Err(SessionError::Lock(LockError::Stale { why, .. })) if why.contains(&format!("process {pid} no longer runs"))),
                        "{:?}",
                        outcome.applied.err()
                    );
                    assert_eq!(
                        std::fs::read_to_string(root.join("lock/owner")).unwrap(),
                        stale
                    );
                    assert!(!dir.path().join("a.conf").exists());
                }
                true => {
                    assert!(outcome.applied.unwrap().report.succeeded());
                    assert!(outcome.unreleased.is_empty(), "{:?}", outcome.unreleased);
                    assert!(
                        !root.join("lock").exists(),
                        "the lock taken over is released"
                    );
                    assert_eq!(
                        std::fs::read_to_string(dir.path().join("a.conf")).unwrap(),
                        "a\n"
                    );
                }
            }
        }
    }
}
