//! corral's exit statuses, in one place: every command returns one, `main` alone turns it
//! into the process's exit code, and `corral --help` and the man page list them. Schedulers
//! and bots read them (SPEC: 0 success, 1 error, 2 changes with `--detailed-exitcode` and
//! `drift`), so 2 is never an error: a usage error is 1, not clap's 2.

/// How a run of corral ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; for `plan --detailed-exitcode` and `drift`, also "nothing to change".
    Success,
    /// Something failed, was refused or cancelled, a host could not be read, or the command
    /// line was wrong.
    Error,
    /// `plan --detailed-exitcode` and `drift`: success, and there are changes (drift).
    Changes,
    /// Ended by SIGINT (Ctrl-C), after releasing its locks.
    Interrupted,
    /// Ended by SIGTERM, after releasing its locks.
    Terminated,
}

impl ExitStatus {
    /// Every status, in the order `--help` lists them.
    pub const ALL: [ExitStatus; 5] = [
        ExitStatus::Success,
        ExitStatus::Error,
        ExitStatus::Changes,
        ExitStatus::Interrupted,
        ExitStatus::Terminated,
    ];

    /// The list in `corral --help` and the man page (a constant, as clap's `after_help`
    /// takes one); a test keeps it equal to [`ExitStatus::ALL`].
    pub const HELP: &'static str = "Exit status:\n  0    success (plan, drift: no changes)\n  1    error, refusal, cancellation, unreachable host or usage error\n  2    success with changes (plan --detailed-exitcode, drift)\n  130  interrupted (SIGINT), locks released\n  143  terminated (SIGTERM), locks released";

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
            // 128 + the signal's number, as a shell reports a process the signal ended.
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }

    /// Success or error.
    pub fn failed_if(failed: bool) -> ExitStatus {
        if failed {
            ExitStatus::Error
        } else {
            ExitStatus::Success
        }
    }

    /// The status of a run ended by the signal with this exit code (130 or 143); any
    /// other code reads as SIGINT's.
    pub fn of_signal(code: u8) -> ExitStatus {
        match code {
            143 => ExitStatus::Terminated,
            _ => ExitStatus::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meaning(status: ExitStatus) -> &'static str {
        match status {
            ExitStatus::Success => "success (plan, drift: no changes)",
            ExitStatus::Error => "error, refusal, cancellation, unreachable host or usage error",
            ExitStatus::Changes => "success with changes (plan --detailed-exitcode, drift)",
            ExitStatus::Interrupted => "interrupted (SIGINT), locks released",
            ExitStatus::Terminated => "terminated (SIGTERM), locks released",
        }
    }

    #[test]
    fn the_help_lists_every_status_with_its_code() {
        let listed: String = ExitStatus::ALL
            .iter()
            .map(|s| format!("\n  {:<4} {}", s.code(), meaning(*s)))
            .collect();
        assert_eq!(ExitStatus::HELP, format!("Exit status:{listed}"));
    }

    #[test]
    fn codes_are_the_spec_s() {
        let codes: Vec<u8> = ExitStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 130, 143]);
        assert_eq!(ExitStatus::of_signal(143), ExitStatus::Terminated);
        assert_eq!(ExitStatus::of_signal(130), ExitStatus::Interrupted);
        assert_eq!(ExitStatus::failed_if(true), ExitStatus::Error);
        assert_eq!(ExitStatus::failed_if(false), ExitStatus::Success);
    }
}
