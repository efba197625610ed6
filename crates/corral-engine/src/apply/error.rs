//! The apply stage's error: why a step, the proof of a new login, the read of a lock or a
//! rolling change's health check failed. The walk reports these per resource (as text in
//! its events); the session's own outcome is [`super::session::SessionError`], which
//! carries [`super::lock::LockError`].

use std::time::Duration;

use crate::transport::{describe, LoginError, TransportError};

/// What went wrong while applying, in the words the report shows.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    /// A step's script ended with a failure; `on` is ` on MACHINE` for a cluster step.
    #[error("{description}{on} failed with {ended}: {output}")]
    #[diagnostic(code(corral::apply::step_failed))]
    StepFailed {
        description: String,
        on: String,
        /// `exit code N` or `a signal`.
        ended: String,
        /// The end of what it printed, or why it is not shown.
        output: String,
    },
    /// A step ran past its deadline and was stopped.
    #[error(
        "{description}{on} did not finish within {} and was stopped (a longer `lifecycle: {{ timeout: … }}` gives it more time){}",
        describe(*.timeout),
        last_output(.output)
    )]
    #[diagnostic(
        code(corral::apply::step_timed_out),
        help("`lifecycle: {{ timeout: … }}` on the resource gives its steps more time")
    )]
    StepTimedOut {
        description: String,
        on: String,
        timeout: Duration,
        output: String,
    },
    /// A step could not be run at all.
    #[error("{description}{on}: {source}")]
    #[diagnostic(code(corral::apply::step_not_run))]
    StepNotRun {
        description: String,
        on: String,
        #[source]
        source: TransportError,
    },
    /// No new login worked within the time given to prove one.
    #[error("{source}; tried for {}", describe(*.within))]
    #[diagnostic(code(corral::apply::login_lost))]
    LoginLost {
        #[source]
        source: LoginError,
        within: Duration,
    },
    /// The change's steps used all the time there was before the host's rollback.
    #[error("no time was left to prove it before the rollback")]
    #[diagnostic(code(corral::apply::no_time_for_login))]
    NoTimeForLogin,
    /// A step uses a value (a join token) that no earlier step produced.
    #[error("no value `{name}` was produced by an earlier step")]
    #[diagnostic(code(corral::apply::value_not_produced))]
    ValueNotProduced { name: String },
    /// A short script (a lock's read, a health probe) was not answered in time.
    #[error("the host did not answer within {}", describe(*.within))]
    #[diagnostic(code(corral::apply::no_answer))]
    NoAnswer { within: Duration },
    /// A short script could not be run.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Transport(#[from] TransportError),
    /// A short script failed; the end of what it printed.
    #[error("{output}")]
    #[diagnostic(code(corral::apply::script_failed))]
    ScriptFailed { output: String },
    /// A lock script answered something else than its markers.
    #[error("unexpected answer: {output}")]
    #[diagnostic(code(corral::apply::unexpected_answer))]
    UnexpectedAnswer { output: String },
    /// `force-unlock` could not connect in time.
    #[error("did not answer within {} while connecting (raise --facts-timeout?)", describe(*.within))]
    #[diagnostic(code(corral::apply::connect_timeout))]
    ConnectTimeout { within: Duration },
    /// `force-unlock` could not read a machine's lock.
    #[error("cannot read the apply lock: {source}")]
    #[diagnostic(code(corral::apply::lock_unreadable))]
    LockUnreadable {
        #[source]
        source: Box<ApplyError>,
    },
    /// A health probe's answer could not be read.
    #[error("{0}")]
    #[diagnostic(code(corral::apply::unreadable_answer))]
    UnreadableAnswer(String),
    /// No manager of the swarm said how it is, each for the reason listed.
    #[error("no swarm manager answers ({})", .why.join("; "))]
    #[diagnostic(code(corral::apply::no_manager_answers))]
    NoManagerAnswers { why: Vec<String> },
    /// What the volumes still had to heal when the wait ended, one entry per volume.
    #[error("{}", .0.join("; "))]
    #[diagnostic(code(corral::apply::still_healing))]
    StillHealing(Vec<String>),
}

/// `; its last output: …` after a stopped step's message, when it printed anything.
fn last_output(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("; its last output: {output}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stopped step says so in the words the report has always used, with its output.
    #[test]
    fn a_stopped_step_reads_as_before() {
        let error = ApplyError::StepTimedOut {
            description: "restart sshd".into(),
            on: " on n1".into(),
            timeout: Duration::from_secs(120),
            output: "waiting".into(),
        };
        assert_eq!(
            error.to_string(),
            "restart sshd on n1 did not finish within 120 s and was stopped (a longer `lifecycle: { timeout: … }` gives it more time); its last output: waiting"
        );
        let silent = ApplyError::StepTimedOut {
            description: "restart sshd".into(),
            on: String::new(),
            timeout: Duration::from_secs(120),
            output: String::new(),
        };
        assert!(silent.to_string().ends_with("more time)"), "{silent}");
    }
}
