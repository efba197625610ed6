//! Stage 1: load YAML documents with source spans and check them.
//!
//! Loading reads every file, splits it into documents, checks each envelope and decodes each
//! `specification` with its kind's schema, then checks what needs the whole configuration
//! (duplicate names, machine selectors, `depends_on` targets). It collects every error it can
//! find instead of stopping at the first. It never touches a host.

mod expand;
pub mod identity;
mod loader;
pub mod module;
mod references;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::address::Address;
use crate::base::check::{span_at, CheckContext, ConfigDigest};
use crate::base::diagnostic::{self, ConfigError, ConfigErrors, Origin, SourceFile};
use crate::base::envelope::Lifecycle;
use crate::base::machine::{self, Machine, MachineSpec};
use crate::base::selector::Selector;
use crate::base::yaml::{self, from_node, DeError, Node, Span, Value};
use crate::kinds::{self, Spec};
use expand::Expansions;
use loader::Loader;
use references::{check_references, link};

/// What may be changed about loading.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Skip documents of kinds corral does not know instead of failing on them.
    pub ignore_unknown_kinds: bool,
    /// The project whose records on the hosts this configuration owns; empty means
    /// [`DEFAULT_PROJECT`].
    pub project: String,
    /// Read `source:` files outside the configuration's directories for resources that are
    /// not sensitive too (their content then appears in plans).
    pub allow_source_outside_config: bool,
    /// `--module-path`: folders where bare module names are looked up after the
    /// configuration's `modules/` folders; their modules are trusted like its own.
    pub module_path: Vec<PathBuf>,
    /// The command connects to the hosts: a machine's `identity_file` must exist on this
    /// machine. (`validate`, `graph` and `plan --facts` do not need the key, as in a CI job
    /// planning a pull request without SSH credentials.)
    pub connecting: bool,
}

/// The project of configurations whose directory gives no usable name.
pub const DEFAULT_PROJECT: &str = "default";

/// The fields of each kind that may hold a secret, as paths from the `specification` (`*`
/// for any item of a sequence or value of a mapping). Diagnostics never quote their values:
/// they are masked in the text that errors quote, in whatever document names them, and
/// their names are masked wherever they are keys (see [`diagnostic::secret_spans`]), so that a
/// misplaced or misspelt field stays hidden too. Every kind has a line, even an empty one
/// (a test checks it); documents of unknown kinds get every kind's fields.
fn secret_field_table(
) -> impl Iterator<Item = &'static (&'static str, &'static [&'static [&'static str]])> {
    const MACHINE: &[(&str, &[&[&str]])] = &[(machine::KIND, &[])];
    MACHINE.iter().chain(kinds::SECRET_FIELDS)
}

/// The secret fields of `kind`; every kind's for a kind corral does not know.
fn secret_fields(kind: Option<&str>) -> Vec<&'static [&'static str]> {
    match secret_field_table().find(|(k, _)| Some(*k) == kind) {
        Some((_, fields)) => fields.to_vec(),
        None => secret_field_table()
            .flat_map(|(_, fields)| fields.iter().copied())
            .collect(),
    }
}

/// The JSON Schema of a whole document of `kind` (a kind corral knows), made once.
fn document_schema(kind: &str) -> Option<&'static serde_json::Value> {
    static SCHEMAS: std::sync::OnceLock<Vec<(&'static str, serde_json::Value)>> =
        std::sync::OnceLock::new();
    SCHEMAS
        .get_or_init(kinds::schemas)
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, schema)| schema)
}

/// The names of every secret field, masked as keys anywhere.
fn secret_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = secret_field_table()
        .flat_map(|(_, fields)| fields.iter().filter_map(|path| path.last().copied()))
        .filter(|name| *name != "*")
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A declared resource: one document other than a machine.
#[derive(Debug, Clone)]
pub struct Resource {
    pub address: Address,
    pub title: Option<String>,
    pub depends_on: Vec<Address>,
    /// Resources this one comes after because its specification names them (a service's
    /// networks, its swarm): edges like `depends_on`, found at load (see `kinds::Spec::link`).
    pub implied: Vec<Address>,
    pub lifecycle: Lifecycle,
    pub spec: Spec,
    /// The whole document, kept for error spans found after decoding.
    pub node: Node,
    pub origin: Origin,
}

impl Resource {
    /// Where the document names this resource, for errors about the resource as a whole.
    pub fn origin_of_name(&self) -> Origin {
        Origin {
            file: self.origin.file.clone(),
            span: self.node.get("name").map_or(self.origin.span, |n| n.span),
        }
    }

    /// Where the document sets a field (`["lifecycle", "prevent_destroy"]`), for errors
    /// about that setting; the name when it is not written.
    pub fn origin_of_field(&self, path: &[&str]) -> Origin {
        let mut node = &self.node;
        for key in path {
            match node.get(key) {
                Some(child) => node = child,
                None => return self.origin_of_name(),
            }
        }
        Origin {
            file: self.origin.file.clone(),
            span: node.span,
        }
    }

    /// Where the specification holds `value` (a scalar, or a mapping's key: a path, a
    /// sysctl key, a user), the first in document order: the setting an error about that
    /// value is about. The name when the specification does not hold it.
    pub fn origin_of_value(&self, value: &str) -> Origin {
        fn find(node: &Node, value: &str) -> Option<Span> {
            match &node.value {
                Value::Seq(items) => items.iter().find_map(|i| find(i, value)),
                Value::Map(entries) => entries.iter().find_map(|(k, v)| {
                    (k.as_str() == Some(value))
                        .then_some(k.span)
                        .or_else(|| find(v, value))
                }),
                _ => (node.as_str() == Some(value)).then_some(node.span),
            }
        }
        match self
            .node
            .get("specification")
            .and_then(|spec| find(spec, value))
        {
            Some(span) => Origin {
                file: self.origin.file.clone(),
                span,
            },
            None => self.origin_of_name(),
        }
    }

    /// Where an error about this resource points: the setting holding the first value it
    /// quotes in backticks (`owner \`deploy\` does not exist`), else the name.
    pub fn origin_of_message(&self, message: &str) -> Origin {
        message
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|quoted| !quoted.is_empty())
            .map(|quoted| self.origin_of_value(quoted))
            .find(|origin| origin.span != self.origin_of_name().span)
            .unwrap_or_else(|| self.origin_of_name())
    }
}

/// A loaded, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Machines by name.
    pub machines: BTreeMap<String, Machine>,
    /// Resources in load order (files sorted, documents in file order).
    pub resources: Vec<Resource>,
    /// sha256 of every loaded file's bytes in load order, and of every file they read with
    /// `source:`; a saved plan is stale when this changes.
    pub digest: String,
    /// sha256 of each of those files by absolute path (a secret's source left out), so
    /// that a stale plan can name the file that changed.
    pub files: BTreeMap<String, String>,
    /// Whose records on the hosts this configuration reads and writes (`managed`).
    pub project: String,
    /// Which configuration this is, to the hosts' records ([`identity`]).
    pub identity: crate::config::identity::Identity,
    /// Each module instance (`kind: module` document) by name, with the resources it
    /// expanded to, so that `--target green` selects them all.
    pub module_instances: BTreeMap<String, Vec<Address>>,
}

impl Config {
    /// The resources module instance `name` expanded to (`None`: no such instance).
    pub fn module_instance(&self, name: &str) -> Option<&[Address]> {
        self.module_instances.get(name).map(Vec::as_slice)
    }
}

impl Config {
    /// The machines a selector picks, in name order.
    pub fn select<'a>(
        &'a self,
        selector: &'a Selector,
    ) -> Box<dyn Iterator<Item = &'a Machine> + 'a> {
        match selector {
            // Looked up by name: linear in the list, not in the inventory.
            Selector::Names(names) => {
                let names: std::collections::BTreeSet<&String> = names.iter().collect();
                Box::new(names.into_iter().filter_map(|n| self.machines.get(n)))
            }
            _ => Box::new(
                self.machines
                    .values()
                    .filter(move |m| selector.matches(&m.name, &m.spec.labels)),
            ),
        }
    }

    /// Refuses a configuration without machines, for the commands: it plans nothing, and
    /// a plan would say "No changes" as if the hosts matched, when the likely cause is the
    /// inventory left off the command line. (Loading alone accepts it, for partial files.)
    pub fn require_machines(&self) -> Result<(), ConfigErrors> {
        if !self.machines.is_empty() {
            return Ok(());
        }
        let mut errors = ConfigErrors::default();
        errors.push(
            ConfigError::plain("the configuration declares no machines").with_help(
                "add the inventory (the file of `kind: infrastructure/machine` documents) to \
                 the paths, e.g. `corral plan examples/three-layer/ .corral-lab/inventory.yaml` \
                 for the lab's",
            ),
        );
        Err(errors)
    }

    /// Per-machine resources whose selector picks no machine, each with a message quoting
    /// the selector. They plan nothing, silently; a label typo or a machine missing from
    /// the inventory is worth a warning in `plan` and `validate`.
    pub fn unmatched_selectors(&self) -> Vec<(&Address, String)> {
        self.resources
            .iter()
            .filter_map(|resource| {
                let selector = resource.spec.selector()?;
                let matched = self.select(selector).next().is_some();
                (!matched).then(|| {
                    (
                        &resource.address,
                        format!("machines: {selector} matches no machine"),
                    )
                })
            })
            .collect()
    }
}

/// What the kinds' configuration-wide checks (Compose and firewall warnings) read.
impl kinds::declared::Declared for Config {
    fn resources(&self) -> Box<dyn Iterator<Item = (&Address, &Spec)> + '_> {
        Box::new(self.resources.iter().map(|r| (&r.address, &r.spec)))
    }

    fn machines(&self) -> &BTreeMap<String, Machine> {
        &self.machines
    }

    fn select<'a>(&'a self, selector: &'a Selector) -> Box<dyn Iterator<Item = &'a Machine> + 'a> {
        Config::select(self, selector)
    }
}

const ENVELOPE_KEYS: &[&str] = &[
    "kind",
    "name",
    "title",
    "specification",
    "depends_on",
    "lifecycle",
    "provider",
    "version",
];

/// Loads and checks the configuration in `paths` (files, or directories whose `*.yaml` and
/// `*.yml` files are read in name order).
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Config, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let mut digest = ConfigDigest::default();
    let roots = config_roots(paths);
    let mut loader = Loader {
        options,
        roots: &roots,
        errors: &mut errors,
        digest: &mut digest,
        machines: BTreeMap::new(),
        machine_origins: HashMap::new(),
        resources: Vec::new(),
        seen: HashMap::new(),
        modules: HashMap::new(),
        expansions: Expansions::default(),
    };
    let files = collect_files(paths, loader.errors);
    if files.is_empty() && loader.errors.is_empty() {
        loader.errors.push(
            ConfigError::plain("no configuration files were given")
                .with_help("pass files or directories holding `*.yaml` documents"),
        );
    }
    for path in files {
        loader.load_file(&path);
    }
    let Loader {
        machines,
        resources,
        seen,
        expansions,
        ..
    } = loader;
    // An expanded resource belongs to the directory of the document that uses its module,
    // not to the module's folder.
    let files = || {
        resources
            .iter()
            .map(|r| match expansions.instance_of(&r.address) {
                Some(instance) => instance.origin.file.name.as_str(),
                None => r.origin.file.name.as_str(),
            })
    };
    let identity = match crate::config::identity::Identity::read(&identity_dir(files(), &roots)) {
        Ok(identity) => identity,
        Err(e) => {
            errors.push(ConfigError::plain(e.to_string()).with_help(format!(
                "`{}` holds the configuration's id, as its first apply wrote it: restore it from version control",
                crate::config::identity::FILE
            )));
            crate::config::identity::Identity::default()
        }
    };
    let project = if options.project.is_empty() {
        match project_of_files(files()) {
            Ok(project) => project,
            Err(dirs) => {
                errors.push(
                    ConfigError::plain(format!(
                        "the configuration's resources are in several directories ({}), so corral cannot name its project after one",
                        dirs.join(", ")
                    ))
                    .with_help("name the project with --project NAME (or CORRAL_PROJECT): it says whose records on the hosts this configuration reads, writes and deletes"),
                );
                DEFAULT_PROJECT.to_owned()
            }
        }
    } else {
        options.project.clone()
    };
    if !crate::address::is_valid_name(&project) {
        errors.push(
            ConfigError::plain(format!("invalid project name `{project}`"))
                .with_help("project names are lowercase letters, digits, `_`, `.` and `-`"),
        );
    }
    let mut config = Config {
        machines,
        resources,
        digest: String::new(),
        files: BTreeMap::new(),
        project,
        identity,
        module_instances: BTreeMap::new(),
    };
    for (address, &index) in &expansions.of_resource {
        config
            .module_instances
            .entry(expansions.instances[index].name.clone())
            .or_default()
            .push(address.clone());
    }
    for addresses in config.module_instances.values_mut() {
        addresses.sort();
    }
    check_references(&config, &expansions, &mut errors);
    // Documents that were written but did not load: what names them reports nothing more.
    let broken: std::collections::BTreeSet<Address> = seen
        .into_keys()
        .map(|(kind, name)| Address::new(&kind, &name, None))
        .filter(|address| !config.resources.iter().any(|r| &r.address == address))
        .collect();
    link(&mut config, broken, &expansions, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    (config.digest, config.files) = digest.finish();
    Ok(config)
}

/// For "expected a mapping (or a list), found null" at a key whose next line is no deeper
/// than the key: the likely cause, a block indented one level too little.
fn indentation_hint(file: &SourceFile, error: &DeError) -> Option<String> {
    let structured = ["mapping", "sequence", "list"]
        .iter()
        .any(|word| error.message.contains(word));
    if !(structured && error.message.ends_with("found null")) {
        return None;
    }
    let key = file.key_left_empty_by_indentation(error.span.start)?;
    Some(format!(
        "`{key}:` has no value: if the lines below it belong to it, indent them more than `{key}:`"
    ))
}

/// The help of an unknown machine: the nearest name, or, when no machine was loaded at
/// all, the likely cause (the inventory left off the command line).
fn unknown_machine_help(name: &str, machine_names: &[&str]) -> String {
    if machine_names.is_empty() {
        "no `infrastructure/machine` documents were loaded; pass the inventory file too".to_owned()
    } else {
        diagnostic::suggestion(name, machine_names, "machines")
    }
}

/// The directories given as PATHs, canonical: with the directory of the YAML file that
/// names it, where a `source:` may be. (A file given as PATH, such as an inventory kept
/// next to SSH keys, does not open its directory to other files' sources.)
fn config_roots(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .filter(|path| path.is_dir())
        .filter_map(|dir| dir.canonicalize().ok())
        .collect()
}

/// Where the configuration keeps its identity ([`crate::config::identity::FILE`]): the directory
/// of its resource documents (the one its project is named after); with documents in
/// several directories, the first directory given on the command line (never an ancestor
/// no one chose, such as `/`), else the first document's.
fn identity_dir<'a>(files: impl Iterator<Item = &'a str>, roots: &[PathBuf]) -> PathBuf {
    let dirs: Vec<PathBuf> = files
        .map(|name| {
            let dir = Path::new(name)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
        })
        .collect();
    match dirs.first() {
        Some(first) if dirs.iter().all(|d| d == first) => first.clone(),
        first => roots
            .first()
            .or(first)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(".")),
    }
}

/// The project of a configuration that names none: the name of the directory its
/// resource documents are in (not the inventory's), made a valid name, so that two
/// configuration folders applied to the same hosts are two projects whatever else is on
/// the command line. `default` for a configuration without resources; the directories
/// when the resources are in several (the operator must name the project).
pub fn derived_project(resources: &[Resource]) -> Result<String, Vec<String>> {
    project_of_files(resources.iter().map(|r| r.origin.file.name.as_str()))
}

/// The project named after the one directory `files` are in; see [`derived_project`].
pub fn project_of_files<'a>(files: impl Iterator<Item = &'a str>) -> Result<String, Vec<String>> {
    let dirs: std::collections::BTreeSet<PathBuf> = files
        .map(|name| {
            let file = Path::new(name);
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
        })
        .collect();
    let mut dirs = dirs.into_iter();
    let Some(dir) = dirs.next() else {
        return Ok(DEFAULT_PROJECT.to_owned());
    };
    let rest: Vec<PathBuf> = dirs.collect();
    if !rest.is_empty() {
        return Err(std::iter::once(dir)
            .chain(rest)
            .map(|d| d.display().to_string())
            .collect());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    Ok(if name.is_empty() {
        DEFAULT_PROJECT.to_owned()
    } else {
        name.to_owned()
    })
}

fn collect_files(paths: &[PathBuf], errors: &mut ConfigErrors) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && matches!(
                                    p.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml")
                                )
                        })
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        errors.push(
                            ConfigError::plain(format!(
                                "directory `{}` holds no `*.yaml` or `*.yml` files",
                                path.display()
                            ))
                            .with_help("corral reads the YAML files directly inside a directory, not its subdirectories"),
                        );
                    }
                    files.extend(found);
                }
                Err(e) => errors.push(ConfigError::plain(format!(
                    "cannot read directory `{}`: {e}",
                    path.display()
                ))),
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}

#[cfg(test)]
mod module_tests;
#[cfg(test)]
mod tests;
