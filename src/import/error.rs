//! The import stage's error: why `corral import` wrote nothing. Host text in these
//! messages (what a fact said) is escaped by whoever shows it.

use std::path::PathBuf;

use crate::base::diagnostic::ConfigErrors;
use crate::kinds::docker_daemon::PATH as DAEMON_JSON;

/// Why an import stopped before writing (or while writing) the configuration.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error("{} is not empty: import into a new directory, or pass --force to add to it (nothing is overwritten, and resources it declares already are refused)", .dir.display())]
    #[diagnostic(code(corral::import::not_empty))]
    NotEmpty { dir: PathBuf },
    /// The output directory's path gives no project name.
    #[error("cannot name the project after {}: pass --project", .dirs.join(", "))]
    #[diagnostic(code(corral::import::project_name))]
    ProjectName { dirs: Vec<String> },
    /// The inventory does not load.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Inventory(#[from] ConfigErrors),
    /// Machines that could not be read, with why.
    #[error(
        "not every machine of the inventory could be read, and corral does not guess what they run:\n{}\nbring them back, or take them out of the inventory, and import again",
        .machines.iter().map(|(m, why)| format!("  {m}: {why}")).collect::<Vec<_>>().join("\n")
    )]
    #[diagnostic(code(corral::import::unreachable))]
    Unreachable { machines: Vec<(String, String)> },
    /// The output directory's own configuration does not load.
    #[error("the configuration already in {} does not load, so corral cannot tell which resources it declares: {}", .dir.display(), found(.errors.len()))]
    #[diagnostic(code(corral::import::declared_unreadable))]
    DeclaredUnreadable {
        dir: PathBuf,
        /// Shown after the message, each with its place.
        #[related]
        errors: Vec<crate::base::diagnostic::ConfigError>,
    },
    /// Resources the output directory declares already.
    #[error("the configuration already declares {}: not written twice (import the other resources with --only/--target, or remove these from the configuration first)", .addresses.join(", "))]
    #[diagnostic(code(corral::import::declared_already))]
    DeclaredAlready { addresses: Vec<String> },
    #[error("{} exists already; corral does not overwrite it", .path.display())]
    #[diagnostic(code(corral::import::exists))]
    Exists { path: PathBuf },
    #[error("cannot create {}: {error}", .path.display())]
    #[diagnostic(code(corral::import::create))]
    Create {
        path: PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}", .path.display())]
    #[diagnostic(code(corral::import::write))]
    Write {
        path: PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: std::io::Error,
    },
    /// Members of a swarm were read, no manager of it.
    #[error("{} are in a swarm, but no manager of it answered (a manager of the inventory must be reachable and have quorum): nothing of the swarm is written", .members.join(", "))]
    #[diagnostic(code(corral::import::no_manager))]
    NoManager { members: Vec<String> },
    /// `daemon.json` holds something else than a JSON object.
    #[error("{DAEMON_JSON} is not a JSON object ({error})")]
    #[diagnostic(code(corral::import::daemon_json))]
    DaemonJson {
        /// In the message already: not a `source`, which a report would print again.
        error: serde_json::Error,
    },
    #[error("{DAEMON_JSON} is not a small regular file")]
    #[diagnostic(code(corral::import::daemon_not_a_file))]
    DaemonNotAFile,
    /// A fact that could not be read (the fact's own message).
    #[error("{0}")]
    #[diagnostic(code(corral::import::fact))]
    Fact(String),
    /// What went wrong on one machine.
    #[error("{machine}: {error}")]
    #[diagnostic(code(corral::import::on_machine))]
    On {
        machine: String,
        /// In the message already: not a `source`, which a report would print again.
        error: Box<ImportError>,
    },
}

/// `found N errors in the configuration`, as [`ConfigErrors`] says it (its errors are
/// taken out of it, to be shown each with its place).
fn found(errors: usize) -> String {
    match errors {
        1 => "found 1 error in the configuration".to_owned(),
        n => format!("found {n} errors in the configuration"),
    }
}

impl ImportError {
    /// A fact's error, as read on `machine`.
    pub fn fact_on(machine: &str, error: impl std::fmt::Display) -> ImportError {
        ImportError::On {
            machine: machine.to_owned(),
            error: Box::new(ImportError::Fact(error.to_string())),
        }
    }
}
