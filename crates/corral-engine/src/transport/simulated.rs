//! A simulated fleet: hosts that run no script but take a scripted time over each and
//! fail the ones that name a chosen text, recording when every script started and ended.
//! For measuring apply's scheduling at fleet size (how many steps are in flight, in which
//! order) without a thousand machines; the time is tokio's, so a test with a paused clock
//! runs it in no time and the same figures come out.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{BoxFuture, Host, Limits, ScriptOutput, TransportError};

/// One script as the fleet ran it.
#[derive(Debug, Clone)]
pub struct Run {
    pub host: String,
    pub script: String,
    pub started: Instant,
    pub ended: Instant,
    pub failed: bool,
}

/// What every host of a simulated fleet ran, in the order the scripts ended.
#[derive(Debug, Default)]
pub struct Fleet {
    runs: Mutex<Vec<Run>>,
}

/// How busy a fleet was: the most scripts in flight at once, and their mean over the time
/// from the first start to the last end (weighted by time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Busy {
    pub max: usize,
    pub mean: f64,
    pub span: Duration,
}

impl Fleet {
    pub fn new() -> Arc<Self> {
        Arc::new(Fleet::default())
    }

    /// Every script run so far.
    pub fn runs(&self) -> Vec<Run> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many scripts were in flight: at most, and on average over the time any ran.
    pub fn busy(&self) -> Busy {
        let runs = self.runs();
        // Ends before starts at the same instant: a slot freed and taken again is one slot.
        let mut edges: Vec<(Instant, i64)> = runs
            .iter()
            .flat_map(|r| [(r.started, 1), (r.ended, -1)])
            .collect();
        edges.sort();
        let (mut now, mut max, mut area) = (0i64, 0i64, 0f64);
        for pair in edges.windows(2) {
            now += pair[0].1;
            max = max.max(now);
            area += now as f64 * (pair[1].0 - pair[0].0).as_secs_f64();
        }
        let span = match (edges.first(), edges.last()) {
            (Some(first), Some(last)) => last.0 - first.0,
            _ => Duration::ZERO,
        };
        Busy {
            max: max as usize,
            mean: if span.is_zero() {
                0.0
            } else {
                area / span.as_secs_f64()
            },
            span,
        }
    }
}

/// One host of a [`Fleet`]: each script takes `latency` and succeeds, except those that
/// contain one of `fail_on`, which exit 1.
#[derive(Debug, Clone)]
pub struct SimulatedHost {
    pub name: String,
    pub fleet: Arc<Fleet>,
    pub latency: Duration,
    pub fail_on: Vec<String>,
}

impl Host for SimulatedHost {
    fn run_script<'a>(
        &'a self,
        script: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            let started = Instant::now();
            let left = limits.deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(self.latency.min(left)).await;
            let failed = self.fail_on.iter().any(|needle| script.contains(needle));
            self.fleet
                .runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Run {
                    host: self.name.clone(),
                    script: script.to_owned(),
                    started,
                    ended: Instant::now(),
                    failed,
                });
            if self.latency > left {
                return Err(TransportError::DeadlinePassed {
                    output: String::new(),
                });
            }
            Ok(ScriptOutput {
                rc: Some(i32::from(failed)),
                stdout: if failed {
                    "simulated failure\n".into()
                } else {
                    String::new()
                },
                stderr: String::new(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::OutputBound;

    #[tokio::test(start_paused = true)]
    async fn busy_counts_overlapping_scripts_by_time() {
        let fleet = Fleet::new();
        let host = |name: &str, ms| SimulatedHost {
            name: name.into(),
            fleet: fleet.clone(),
            latency: Duration::from_millis(ms),
            fail_on: vec!["boom".into()],
        };
        let (a, b) = (host("a", 100), host("b", 50));
        let limits = || Limits::within(Duration::from_secs(60), OutputBound::KeepTail(100));
        // a runs 0-100 ms, b 0-50 ms: 2 in flight for half the time, 1 for the rest.
        let (ra, rb) = tokio::join!(
            a.run_script("true", limits()),
            b.run_script("boom", limits())
        );
        assert_eq!(ra.unwrap().rc, Some(0));
        assert_eq!(rb.unwrap().rc, Some(1));
        let busy = fleet.busy();
        assert_eq!(busy.max, 2);
        assert_eq!(busy.span, Duration::from_millis(100));
        assert!((busy.mean - 1.5).abs() < 1e-9, "{busy:?}");
    }
}
