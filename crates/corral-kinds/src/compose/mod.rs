//! Compose files deployed as `swarm/stack`s: parsed with source locations, converted to the
//! services `docker stack deploy` creates, and rendered again for the deploy.
//!
//! A stack names an operator's existing Compose file, and corral shows per stack service
//! what changes against the services the last `docker stack deploy` made. For that it must
//! know exactly what the CLI (20.10, on our hosts) turns the file into, so this module
//! reproduces the CLI's loader and converter (`cli/compose/loader`, `cli/compose/convert`):
//! - YAML is read as Go's yaml.v2 reads it: YAML 1.1 plain scalars (`yes` is a boolean,
//!   `0400` an octal integer, `08` a float), merge keys `<<` applied in document order (a
//!   merged key overrides an explicit key written before the `<<`);
//! - keys are checked against the Compose schema of the file's version (3.0 to 3.9), and
//!   values have the types the CLI's schema wants (`environment` values are strings,
//!   numbers or null, never booleans);
//! - names are scoped as the CLI scopes them: `STACK_KEY` unless `name:` or `external:`
//!   says otherwise; a service that lists no network is on `STACK_default`;
//! - a string `command:` is split by the CLI's own lexer (google/shlex, not POSIX);
//! - numbers in string maps (`environment`, `deploy.labels`) are printed as Go prints them.
//!
//! Variables (`${VAR}`) are substituted from the stack's `variables:` as the CLI would from
//! its shell's environment (see [`variables`]), before any value is checked.
//!
//! What corral cannot reproduce is an error, never a silent drop: a variable that has no
//! value, environment entries with no value, relative bind mounts (they resolve on the
//! manager), keys the CLI ignores where the service would then run otherwise than the file
//! says (`build`, `privileged`, `network_mode`, …). Keys it ignores harmlessly
//! (`container_name`, `depends_on`, `expose`, `links`) and `restart` (which it converts)
//! are warnings. Every check runs on every service: all the errors of a file show at once.
//! docs/src/compose.md (the book's page) lists every key and what corral does with it.
//! Keys corral passes through without modelling them are kept as opaque JSON per service.
//! One dependence on the deploying shell remains, which no file can avoid: the CLI gives an
//! empty environment value (`KEY=`) the shell's variable of that name if it has one, so
//! `docker stack deploy` must run in a clean environment (`env -i`).
//!
//! This module reads `env_file:` files (the CLI would read them on the manager, where they
//! are not); it does not read secret or config files, and touches no host.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::base::diagnostic::{ConfigErrors, SourceFile};
use crate::base::yaml::Span;
use crate::swarm_service::SwarmServiceSpec;

mod go_readings;
mod load;
mod render;
mod report;
mod schema;
#[cfg(test)]
mod tests;
pub mod variables;
mod yaml_v2;

use load::Loader;
use report::Report;
pub use variables::{Variable, Variables};
use yaml_v2::Item;

/// The label the CLI puts on every service, network, secret and config of a stack, with
/// the stack's name: what `docker stack ps/rm` find a stack's objects by.
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The label the CLI puts on every service with the image as the file names it, to tell at
/// the next deploy whether the image changed (and keep the digest it pinned if not).
pub const STACK_IMAGE_LABEL: &str = "com.docker.stack.image";

/// The version `render` writes into a file that names none: the CLI refuses a file without
/// one, and 3.8 is the newest format the hosts' Docker Engine (19.03+) reads.
const DEFAULT_VERSION: u8 = 8;
/// The newest format the 20.10 CLI knows (`config_schema_v3.9.json`).
const NEWEST_VERSION: u8 = 9;

// ---------------------------------------------------------------------------------------
// What a Compose file declares

/// A Compose file read for one stack: its services as `swarm/service`s would declare them,
/// and its top-level secrets and configs.
#[derive(Debug, Clone)]
pub struct Compose {
    /// The stack's services by their name in the file (the Docker service is `STACK_NAME`).
    pub services: BTreeMap<String, ComposeService>,
    /// Top-level `secrets:` / `configs:` by key.
    pub secrets: BTreeMap<String, ComposeObject>,
    pub configs: BTreeMap<String, ComposeObject>,
    /// The external networks the services use, by the name they refer to, with the span
    /// of their `external`: the plan checks that the swarm or the configuration has them.
    pub external_networks: BTreeMap<String, Span>,
    /// What `docker stack deploy` ignores or converts without changing what the file
    /// means, each `FILE:LINE:COL: message`: shown as warnings by `validate` and `plan`.
    pub warnings: Vec<String>,
    /// The file as the CLI reads it (merges applied, `$$` unescaped), for `render`.
    root: Item,
    /// `3.N` of the file's `version:`, `None` when it names none.
    version: Option<u8>,
    stack: String,
    /// The variables the file refers to (declared or not).
    pub variables_used: BTreeSet<String>,
}

/// A top-level secret or config: a file corral turns into a (versioned) object, or an
/// object that exists already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeObject {
    /// `file: PATH`: resolved against the Compose file's directory (not read here); span of
    /// the path for errors.
    File { path: PathBuf, span: Span },
    /// `external: true` (optionally `name: X`): the name it refers to (X, or the key).
    External { name: String, span: Span },
}

/// One service of the stack.
#[derive(Debug, Clone)]
pub struct ComposeService {
    /// The service as a `swarm/service` would declare it, with names resolved as `docker
    /// stack deploy` resolves them for this stack: networks `STACK_net` (or the external or
    /// `name:` name; `STACK_default` when the service lists none, sorted as the CLI sorts
    /// them), named volumes `STACK_vol` (or external/`name:`), secrets and configs with
    /// `source` the top-level Compose key and `target` as the CLI fills it in (the key, for
    /// both: Docker puts a config with a relative target at `/KEY`), `labels` from
    /// `deploy.labels` (without the two `com.docker.stack.*` labels the CLI adds).
    pub spec: SwarmServiceSpec,
    /// Compose keys of this service that corral passes through to `docker stack deploy`
    /// without modelling them (`healthcheck`, `logging`, `user`, `deploy.resources`, …, and
    /// per item: `volumes./TARGET` for mount options, `secrets.KEY` for uid/gid/mode,
    /// `networks.KEY.aliases`): key path → canonical JSON of the value as the CLI reads it.
    /// The plan shows these as opaque (changed or unchanged by digest).
    pub opaque: BTreeMap<String, String>,
    /// Span of the service's key in the Compose file, for errors.
    pub span: Span,
}

/// Parses `text` (the Compose file `file`, read by the caller) for stack `stack`, reporting
/// every error (file:line:col inside the Compose file, with a hint) into `errors`; `None`
/// when any error was reported. `dir` is the Compose file's directory: `env_file:` files
/// are read from it, and `file:` paths of secrets and configs resolved against it.
pub fn parse(
    text: &str,
    file: &Arc<SourceFile>,
    dir: &Path,
    stack: &str,
    errors: &mut ConfigErrors,
) -> Option<Compose> {
    match parse_all(text, file, dir, stack, &Variables::new(), errors) {
        Some((compose, true)) => Some(compose),
        _ => None,
    }
}

/// Like [`parse`], with the stack's variables substituted, and returning what was read
/// even when errors were reported (with `false`), so that the caller's own checks (the
/// `file:`s of secrets and configs) run in the same pass; `None` only when the file is not
/// a Compose mapping at all.
pub fn parse_all(
    text: &str,
    file: &Arc<SourceFile>,
    dir: &Path,
    stack: &str,
    variables: &Variables,
    errors: &mut ConfigErrors,
) -> Option<(Compose, bool)> {
    let mut report = Report {
        file,
        errors,
        seen: HashSet::new(),
        count: 0,
        warnings: Vec::new(),
    };
    let compose = Loader {
        report: &mut report,
        dir,
        stack,
        version: DEFAULT_VERSION,
        version_given: false,
        variables,
        variables_used: BTreeSet::new(),
    }
    .load(text);
    let ok = report.count == 0;
    compose.map(|mut compose| {
        compose.warnings = report.warnings;
        (compose, ok)
    })
}
