//! The command line's own errors: what `commands` refuses before or after the
//! stages run (a selection that names nothing, a plan that is incomplete, a confirmation
//! that cannot be asked). The stages' errors pass through as they are.

use crate::address::AddressError;

/// How to name the machines to `force-unlock`.
const UNLOCK_USAGE: &str =
    "write `corral force-unlock MACHINE[,MACHINE…] PATH…`, or `corral force-unlock --all PATH…`";

/// Why a command refused to go on.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CommandError {
    /// `--target`/`--exclude` is not an address.
    #[error("--{flag}: {error}")]
    #[diagnostic(
        code(corral::command::bad_address),
        help("`corral graph PATH…` lists the addresses of a configuration")
    )]
    BadAddress {
        flag: &'static str,
        error: AddressError,
    },
    /// `--target`/`--exclude` names nothing corral knows.
    #[error("--{flag}: `{address}` names no resource of the configuration, nor one corral recorded on the hosts")]
    #[diagnostic(code(corral::command::unknown_address), help("{help}"))]
    UnknownAddress {
        flag: &'static str,
        address: String,
        help: String,
    },
    #[error("--limit: there is no machine `{machine}`")]
    #[diagnostic(code(corral::command::unknown_limit), help("{help}"))]
    UnknownLimit { machine: String, help: String },
    #[error("there is no machine `{name}` in the configuration")]
    #[diagnostic(code(corral::command::unknown_machine), help("{help}"))]
    UnknownMachine { name: String, help: String },
    /// Hosts that could not be read, resources that could not be planned.
    #[error("the plan is incomplete: {what}")]
    #[diagnostic(code(corral::command::incomplete_plan), help("{help}"))]
    IncompletePlan { what: String, help: String },
    /// `apply` or `force-unlock` would ask, and cannot.
    #[error("{command} needs a confirmation and stdin is not a terminal")]
    #[diagnostic(
        code(corral::command::no_terminal),
        help("run {command} in a terminal to confirm, or pass {flag}")
    )]
    NoTerminal {
        command: &'static str,
        flag: &'static str,
    },
    #[error("force-unlock needs the machines, then the configuration's paths")]
    #[diagnostic(code(corral::command::unlock_usage), help("{UNLOCK_USAGE}"))]
    UnlockWithoutMachines,
    #[error("force-unlock names no machine")]
    #[diagnostic(code(corral::command::unlock_usage), help("{UNLOCK_USAGE}"))]
    UnlockNamesNoMachine,
}
