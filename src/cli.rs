//! Command-line definitions (clap) and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::lab::LabCommand;

/// Reconcile Linux clusters toward a declared state: plan, review, apply.
#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about,
    propagate_version = true,
    after_help = crate::exit::ExitStatus::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No colour in plans, progress and errors (as the `NO_COLOR` environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration (YAML, kinds, references, cycles) without contacting any host.
    Validate(LoadArgs),
    /// Read the hosts and show what apply would change.
    Plan(PlanArgs),
    /// Plan, ask for confirmation, and carry out the changes; or carry out a saved plan
    /// (`corral apply PLANFILE`) if the configuration and the hosts are as it saw them.
    Apply(ApplyArgs),
    /// Plan for a schedule: exit 0 when the hosts match, 2 when they drifted, 1 on error.
    Drift(PlanArgs),
    /// Read the hosts and save their facts, so that `plan --facts` can run without SSH.
    Facts(FactsArgs),
    /// Print the resource graph in Graphviz DOT.
    Graph(GraphArgs),
    /// Write the configuration of what the machines of an inventory run (a swarm, its
    /// services and stacks, volumes, daemon settings), so that corral can adopt them: the
    /// next `plan DIR INVENTORY` says "No changes".
    Import(ImportArgs),
    /// Print a saved plan (`plan -o PLANFILE`) as `plan` printed it, in any format, without
    /// reading the configuration or the hosts.
    Show(ShowArgs),
    /// Warm SSH connections kept by `--keep-connections`.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Remove the apply locks left behind by an apply that was killed, on one machine
    /// (`force-unlock n1 PATH…`), several (`n1,n2`) or all (`--all PATH…`): shows who holds
    /// each and asks first.
    #[command(
        override_usage = "corral force-unlock [OPTIONS] <MACHINE[,MACHINE…]> <PATH>...\n       corral force-unlock [OPTIONS] --all <PATH>..."
    )]
    ForceUnlock(ForceUnlockArgs),
    /// A local lab of container hosts for trying configurations.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Print the shell completion script (e.g. `corral completions bash >
    /// ~/.local/share/bash-completion/completions/corral`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// `corral completions SHELL`.
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `corral man [--dir DIR]`.
#[derive(Debug, Args, Clone)]
pub struct ManArgs {
    /// Write `corral.1` and a page per command (`corral-plan.1`, …) into this directory
    /// instead of printing `corral.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Where the configuration is and how to load it.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Configuration files, or directories of `*.yaml`/`*.yml` files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Skip documents of kinds corral does not know (e.g. other tools' documents).
    #[arg(long)]
    pub ignore_unknown_kinds: bool,
    /// The project this configuration is: what it writes on hosts is recorded under this
    /// name, and only that project's resources are deleted when removed from the
    /// configuration. Default: the name of the configuration's directory (the first PATH
    /// that is a directory, else the directory of the first file), so two folders applied
    /// to the same hosts never delete each other's resources.
    #[arg(long, env = "CORRAL_PROJECT", value_name = "NAME")]
    pub project: Option<String>,
    /// Read `source:` files that resolve (symbolic links followed) outside the directories
    /// given as PATH (a directory PATH, or a file PATH's directory) for resources that are
    /// not `sensitive` too. Without it such a `source:` is an error, because its content
    /// would be shown in the plan: a configuration under review could otherwise print the
    /// reviewer's files (`/proc/self/environ`) into CI logs and pull-request comments.
    #[arg(long)]
    pub allow_source_outside_config: bool,
    /// A folder of shared modules: a bare `source: a/b` not found in a `modules/` folder
    /// next to the configuration is looked up as DIR/a/b, in the order given (repeatable;
    /// CORRAL_MODULE_PATH holds DIRs separated by `:`). Its modules are trusted like the
    /// configuration's own.
    #[arg(
        long,
        env = "CORRAL_MODULE_PATH",
        value_name = "DIR",
        value_delimiter = ':'
    )]
    pub module_path: Vec<PathBuf>,
}

/// How to reach hosts.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// An ssh_config file to use instead of ~/.ssh/config (ssh -F).
    #[arg(long, env = "CORRAL_SSH_CONFIG", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Hosts read or changed at the same time.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Seconds to wait for an SSH connection.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,
    /// Seconds a host may take to connect and answer its fact script; a host that takes
    /// longer is reported like an unreachable one, and the others are still planned.
    #[arg(
        long,
        env = "CORRAL_FACTS_TIMEOUT",
        default_value_t = 120,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub facts_timeout: u64,
    /// Keep the SSH connections open for this idle time after corral ends (`90s`, `10m`,
    /// `1h`; at most a day), so that the next plan or apply of the same hosts with the same
    /// SSH settings skips the handshake; `corral connections close` ends them. Default:
    /// no connection outlives corral.
    #[arg(
        long,
        env = "CORRAL_KEEP_CONNECTIONS",
        value_name = "DURATION",
        value_parser = parse_keep
    )]
    pub keep_connections: Option<std::time::Duration>,
    /// Print after the plan, on stderr, where reading the hosts took its time: per host its
    /// connection and fact script, per probe its time on the host, and the critical path.
    #[arg(long)]
    pub timings: bool,
}

/// The longest `--keep-connections`: a forgotten master should not last the week.
const MAX_KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `--keep-connections`: a duration (`90s`, `10m`, `1h`, `1h30m`) of at least a second and
/// at most a day; `0` keeps nothing.
fn parse_keep(text: &str) -> Result<std::time::Duration, KeepError> {
    let duration = match text.trim() {
        "0" => std::time::Duration::ZERO,
        text => humantime::parse_duration(text)?,
    };
    if duration > MAX_KEEP {
        return Err(KeepError::TooLong);
    }
    if !duration.is_zero() && duration < std::time::Duration::from_secs(1) {
        return Err(KeepError::TooShort);
    }
    Ok(duration)
}

/// Why a `--keep-connections` value is refused (clap prints it after the value).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeepError {
    #[error("{0}; write a duration such as 90s, 10m or 1h")]
    NotADuration(#[from] humantime::DurationError),
    #[error("at most 24h")]
    TooLong,
    #[error("at least 1s (or 0 to keep nothing)")]
    TooShort,
}

/// `corral connections …`.
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// End every SSH connection kept by `--keep-connections` (of this user).
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

/// What to plan and how to reach it: shared by `plan`, `drift` and `apply`.
#[derive(Debug, Args, Clone)]
pub struct SelectArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Plan only this resource (`os/file.site`) or instance (`os/file.site[n1]`), and what
    /// it depends on; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Leave this resource (`os/file.site`) or instance (`os/file.site[n1]`), and what
    /// depends on it, out; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub exclude: Vec<String>,
    /// Only work on this machine; repeatable.
    #[arg(long, value_name = "MACHINE")]
    pub limit: Vec<String>,
}

/// Options of `graph`: the configuration, and which part of its graph to print.
#[derive(Debug, Args, Clone)]
pub struct GraphArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Print only this resource (`os/file.site`) or instance (`os/file.site[n1]`), and what
    /// it depends on; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Leave this resource (`os/file.site`) or instance (`os/file.site[n1]`), and what
    /// depends on it, out; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub exclude: Vec<String>,
    /// Only this machine's instances; repeatable.
    #[arg(long, value_name = "MACHINE")]
    pub limit: Vec<String>,
}

/// Options of `import`.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Inventory files or directories (`infrastructure/machine` documents).
    #[arg(required = true, value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// The directory to write the configuration into; its name is the project's.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into a directory that has files already (never over a file, never a resource
    /// it declares already).
    #[arg(long)]
    pub force: bool,
    /// Import only this area; repeatable.
    #[arg(long, value_enum)]
    pub only: Vec<crate::import::Area>,
    /// Import only this service or stack (`swarm/service.api`, `swarm/stack.web`, or a
    /// name), and what it uses that DIR does not declare yet; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// The project the configuration will be (default: DIR's name, as for `plan DIR`).
    #[arg(long, env = "CORRAL_PROJECT", value_name = "NAME")]
    pub project: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Options of `plan` and `drift`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Exit 2 when there are changes, 0 when there are none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How to print the plan: for people, as versioned JSON for tools, or as Markdown for
    /// a pull-request comment.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also save the plan to this file, for `corral apply FILE` (mode 0600, no secrets).
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Plan from a facts file saved by `corral facts` instead of reading the hosts.
    #[arg(long, value_name = "FACTSFILE")]
    pub facts: Option<PathBuf>,
    /// Show each machine's change on its own, instead of identical changes on several
    /// machines once with the list of machines.
    #[arg(long)]
    pub expand: bool,
}

/// Options of `apply`.
#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Seconds to wait for another apply's lock on a host before giving up.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// Take over an apply lock whose holder is provably gone: taken on this workstation by
    /// a process that no longer runs, or before the workstation rebooted. Never implied by
    /// --auto-approve; a lock from another workstation is never taken over.
    #[arg(long)]
    pub take_over_stale_lock: bool,
    /// Show each machine's change on its own, instead of identical changes on several
    /// machines once with the list of machines.
    #[arg(long)]
    pub expand: bool,
}

/// Options of `show`.
#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// The saved plan.
    pub planfile: PathBuf,
    /// How to print it.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Show each machine's change on its own, instead of identical changes on several
    /// machines once with the list of machines.
    #[arg(long)]
    pub expand: bool,
}

/// Options of `facts`.
#[derive(Debug, Args, Clone)]
pub struct FactsArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Where to write the facts (JSON).
    #[arg(short, long, value_name = "FACTSFILE")]
    pub output: PathBuf,
}

/// Options of `force-unlock`. The machines come first among the positional arguments
/// (`n1` or `n1,n2`), then the configuration's paths; with `--all`, only the paths. (Machine
/// names never hold a comma, so the list is unambiguous; the paths stay `LoadArgs`', so
/// force-unlock loads a configuration as every other command does.)
#[derive(Debug, Args, Clone)]
pub struct ForceUnlockArgs {
    /// `MACHINE[,MACHINE…]` (unless --all), then the configuration's files or directories.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Every machine of the configuration, instead of a list.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Remove the lock without asking (needed without a terminal).
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kept_connections_last_a_readable_duration_of_at_most_a_day() {
        assert_eq!(parse_keep("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_keep("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_keep("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_keep("0"), Ok(Duration::ZERO));
        assert!(parse_keep("2d")
            .unwrap_err()
            .to_string()
            .contains("at most 24h"));
        assert!(parse_keep("500ms")
            .unwrap_err()
            .to_string()
            .contains("at least 1s"));
        assert!(parse_keep("soon")
            .unwrap_err()
            .to_string()
            .contains("such as 90s"));
    }
}
