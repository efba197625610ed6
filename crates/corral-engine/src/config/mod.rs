//! Stage 1: load YAML documents with source spans and check them.
//!
//! Loading reads every file, splits it into documents, checks each envelope and decodes each
//! `specification` with its kind's schema, then checks what needs the whole configuration
//! (duplicate names, machine selectors, `depends_on` targets). It collects every error it can
//! find instead of stopping at the first. It never touches a host.

pub mod identity;
pub mod module;

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

/// Lets every resource resolve what it names elsewhere in the configuration (its swarm,
/// networks, volumes), from a snapshot of the whole, and keeps the edges that gives.
fn link(
    config: &mut Config,
    broken: std::collections::BTreeSet<Address>,
    expansions: &Expansions,
    errors: &mut ConfigErrors,
) {
    let mut links = kinds::Links {
        project: config.project.clone(),
        broken,
        machines: config
            .machines
            .iter()
            .map(|(name, m)| (name.clone(), m.spec.labels.clone()))
            .collect(),
        machine_ips: config
            .machines
            .iter()
            .map(|(name, m)| (name.clone(), m.spec.ip))
            .collect(),
        ..kinds::Links::default()
    };
    kinds::declare_all(config, &mut links);
    for resource in &mut config.resources {
        let spec = resource.node.get("specification").unwrap_or(&resource.node);
        let mut ctx = kinds::LinkContext {
            name: resource.address.name.clone(),
            file: resource.origin.file.clone(),
            spec,
            errors,
        };
        let before = ctx.errors.errors.len();
        let implied = resource.spec.link(&links, &mut ctx);
        resource.implied = implied;
        if let Some(instance) = expansions.instance_of(&resource.address) {
            instance.annotate(&mut errors.errors[before..]);
        }
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

struct Loader<'a> {
    options: &'a LoadOptions,
    roots: &'a [PathBuf],
    errors: &'a mut ConfigErrors,
    digest: &'a mut ConfigDigest,
    machines: BTreeMap<String, Machine>,
    machine_origins: HashMap<String, Origin>,
    resources: Vec<Resource>,
    /// First definition of each `kind.name`, to report duplicates.
    seen: HashMap<(String, String), Origin>,
    /// Module folders read so far (canonical), `None` for one with errors (reported once).
    modules: HashMap<PathBuf, Option<Rc<ModuleDef>>>,
    expansions: Expansions,
}

/// A module's folder, read once however many documents use it.
struct ModuleDef {
    declaration: Arc<SourceFile>,
    inputs: Vec<DeclaredInput>,
    files: Vec<ModuleFile>,
}

/// One input of a module's `module.yaml`.
struct DeclaredInput {
    name: String,
    ty: module::InputType,
    default: Option<Node>,
    description: Option<String>,
    /// Where `module.yaml` declares it.
    origin: Origin,
}

/// One document file of a module.
struct ModuleFile {
    file: Arc<SourceFile>,
    /// The unmasked text, to scrub secrets from messages.
    text: String,
    /// Its directory as messages show it, for `source:` paths in its documents.
    dir: PathBuf,
    documents: Vec<Node>,
}

/// One use of a module (a `kind: module` document), for the checks after loading.
struct Instance {
    name: String,
    /// The use site's document.
    origin: Origin,
    depends_on: Vec<Address>,
    /// The use site's `depends_on` node, for errors about its entries.
    depends_on_node: Option<Node>,
}

impl Instance {
    /// Names the use site in errors found in what the instance expanded to (located in the
    /// module's files).
    fn annotate(&self, errors: &mut [ConfigError]) {
        let note = format!("from module `{}` used at {}", self.name, self.origin);
        for error in errors {
            error.help = Some(match error.help.take() {
                Some(help) => format!("{help}\n{note}"),
                None => note.clone(),
            });
        }
    }
}

/// Every module instance, and which instance each expanded resource came from.
#[derive(Default)]
struct Expansions {
    instances: Vec<Instance>,
    of_resource: HashMap<Address, usize>,
    /// Instances with errors: what depends on their resources reports nothing more.
    failed: Vec<String>,
}

impl Expansions {
    fn instance_of(&self, address: &Address) -> Option<&Instance> {
        self.of_resource
            .get(address)
            .map(|&index| &self.instances[index])
    }
}

/// The envelope fields of one document, with their nodes for error spans.
struct Envelope<'n> {
    kind: Option<(String, &'n Node)>,
    name: Option<(String, &'n Node)>,
    title: Option<String>,
    specification: Option<&'n Node>,
    depends_on: Vec<Address>,
    lifecycle: Lifecycle,
}

impl Loader<'_> {
    fn load_file(&mut self, path: &Path) {
        let Some((file, text, documents)) = self.parse_file(path, path.display().to_string())
        else {
            return;
        };
        // `layers.yaml`'s parent is `""`, which no path canonicalizes against: `.` is what
        // it means, for every `source:`, `compose:` and module a document names.
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let first_error = self.errors.errors.len();
        for document in &documents {
            self.load_document(&file, &dir, &document.root);
        }
        scrub_secrets(&mut self.errors.errors[first_error..], &text, &file.secrets);
    }

    /// Reads a YAML file into documents, its bytes into the digest, its secret values masked
    /// for diagnostics (named `name` in them); `None` when an error was reported.
    fn parse_file(
        &mut self,
        path: &Path,
        name: String,
    ) -> Option<(Arc<SourceFile>, String, Vec<yaml::Document>)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.errors
                    .push(ConfigError::plain(format!("cannot read `{name}`: {e}")));
                return None;
            }
        };
        // Contents only, in load order: the same configuration named by relative or absolute
        // paths (as a saved plan names it) has the same digest.
        self.digest.update((bytes.len() as u64).to_le_bytes());
        self.digest.update(&bytes);
        self.digest.file(path, &bytes);
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let secrets = diagnostic::secret_spans_in_lines(&lossy, &secret_names());
                let file = Arc::new(SourceFile::new(name, &lossy, secrets));
                let origin = Origin {
                    file,
                    span: Span {
                        start: offset,
                        end: offset + 1,
                    },
                };
                self.errors.push(
                    ConfigError::at(&origin, "file is not valid UTF-8", "invalid byte here")
                        .with_help("save the file as UTF-8"),
                );
                return None;
            }
        };
        let parsed = yaml::parse_documents(&text);
        let names = secret_names();
        let secrets = match &parsed {
            Ok(documents) => documents
                .iter()
                .flat_map(|document| {
                    let kind = document.root.get("kind").and_then(Node::as_str);
                    let fields = secret_fields(kind);
                    let mut spans =
                        diagnostic::secret_spans(&text, &document.root, &fields, &names);
                    // A kind that holds secrets: a value where corral expects none may be one.
                    if !fields.is_empty() {
                        if let Some(schema) = kind.and_then(document_schema) {
                            spans.extend(diagnostic::unknown_field_spans(&document.root, schema));
                        }
                    }
                    spans
                })
                .collect(),
            Err(_) => diagnostic::secret_spans_in_lines(&text, &names),
        };
        let file = Arc::new(SourceFile::new(name, &text, secrets));
        let documents = match parsed {
            Ok(documents) => documents,
            Err(e) => {
                let origin = Origin {
                    file: file.clone(),
                    span: if e.message.contains("tab") {
                        tab_indentation(&text).unwrap_or(e.span)
                    } else {
                        e.span
                    },
                };
                let mut error =
                    ConfigError::at(&origin, format!("invalid YAML: {}", e.message), "here")
                        .with_help("check indentation (spaces, not tabs), quotes and brackets");
                if let Some((label, span)) = e.related {
                    error = error
                        .with_label(span, label)
                        .with_help("a key may appear only once in a mapping");
                }
                self.errors.push(error);
                return None;
            }
        };
        if documents.is_empty() {
            self.errors.push(
                ConfigError::plain(format!("`{}` holds no documents", file.name))
                    .with_help("every configuration file needs at least one `kind:` document; remove the file or add one"),
            );
            return None;
        }
        Some((file, text, documents))
    }

    fn origin(file: &Arc<SourceFile>, span: Span) -> Origin {
        Origin {
            file: file.clone(),
            span,
        }
    }

    fn de_error(&mut self, file: &Arc<SourceFile>, error: DeError) {
        self.de_error_with_hint(file, error, None);
    }

    /// Reports a decoding error, with `hint` as the help when there is no suggestion. An
    /// error about a value that may be secret does not quote it (serde's "invalid value:
    /// string "…"" would).
    fn de_error_with_hint(&mut self, file: &Arc<SourceFile>, error: DeError, hint: Option<&str>) {
        let mut error = error;
        if file.holds_secret(error.span)
            && matches!(
                error.kind,
                yaml::DeErrorKind::InvalidValue | yaml::DeErrorKind::Custom
            )
        {
            error.message = "invalid value (not shown: this field may hold a secret)".into();
        }
        let suggestion = error.suggestion().map(|s| format!("did you mean `{s}`?"));
        let label = match &error.kind {
            yaml::DeErrorKind::UnknownField { .. } => "unknown field",
            yaml::DeErrorKind::MissingField { .. } => "in this mapping",
            _ => "here",
        };
        let help = suggestion.or_else(|| match &error.kind {
            yaml::DeErrorKind::MissingField { field } => {
                Some(format!("add `{field}:` to this mapping"))
            }
            yaml::DeErrorKind::UnknownField { expected, .. } if !expected.is_empty() => {
                Some(format!("known fields: {}", expected.join(", ")))
            }
            yaml::DeErrorKind::InvalidType => {
                indentation_hint(file, &error).or_else(|| hint.map(str::to_owned))
            }
            _ => hint.map(str::to_owned),
        });
        self.errors.push(
            ConfigError::at(&Self::origin(file, error.span), error.message, label)
                .with_help_opt(help),
        );
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &mut self,
        file: &Arc<SourceFile>,
        node: &Node,
    ) -> Option<T> {
        match from_node(node) {
            Ok(value) => Some(value),
            Err(e) => {
                self.de_error(file, e);
                None
            }
        }
    }

    fn envelope<'n>(&mut self, file: &Arc<SourceFile>, root: &'n Node) -> Option<Envelope<'n>> {
        let Value::Map(entries) = &root.value else {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, root.span),
                    format!("a document must be a mapping, found {}", root.kind_name()),
                    "this document",
                )
                .with_help("each document starts with `kind:`, `name:` and `specification:`"),
            );
            return None;
        };
        let mut envelope = Envelope {
            kind: None,
            name: None,
            title: None,
            specification: None,
            depends_on: Vec::new(),
            lifecycle: Lifecycle::default(),
        };
        for (key, value) in entries {
            let Some(key_text) = key.as_str() else {
                self.errors.push(ConfigError::at(
                    &Self::origin(file, key.span),
                    "document keys must be strings",
                    "this key",
                ));
                continue;
            };
            match key_text {
                "kind" => envelope.kind = self.decode::<String>(file, value).map(|k| (k, value)),
                "name" => envelope.name = self.decode::<String>(file, value).map(|n| (n, value)),
                "title" => envelope.title = self.decode(file, value),
                "specification" => envelope.specification = Some(value),
                "lifecycle" => envelope.lifecycle = self.decode(file, value).unwrap_or_default(),
                "version" => {}
                "provider" => {
                    if value.as_str() != Some("any") {
                        self.errors.push(
                            ConfigError::at(
                                &Self::origin(file, value.span),
                                "unsupported provider",
                                "only `any` is supported",
                            )
                            .with_help("corral accepts `provider: any` so that Epiphany documents load as they are; remove the field or set it to `any`"),
                        );
                    }
                }
                "depends_on" => envelope.depends_on = self.depends_on(file, value),
                other => {
                    let help = diagnostic::suggestion(other, ENVELOPE_KEYS, "document fields");
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, key.span),
                            format!("unknown document field `{other}`"),
                            "unknown field",
                        )
                        .with_help(help),
                    );
                }
            }
        }
        for (field, present) in [
            (
                "kind",
                envelope.kind.is_some() || root.get("kind").is_some(),
            ),
            (
                "name",
                envelope.name.is_some() || root.get("name").is_some(),
            ),
            ("specification", envelope.specification.is_some()),
        ] {
            if !present {
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, root.span),
                        format!("document has no `{field}`"),
                        "in this document",
                    )
                    .with_help("every document needs `kind:`, `name:` and `specification:`"),
                );
            }
        }
        Some(envelope)
    }

    fn depends_on(&mut self, file: &Arc<SourceFile>, value: &Node) -> Vec<Address> {
        let Value::Seq(items) = &value.value else {
            self.errors.push(ConfigError::at(
                &Self::origin(file, value.span),
                format!(
                    "`depends_on` must be a list of addresses, found {}",
                    value.kind_name()
                ),
                "here",
            ));
            return Vec::new();
        };
        let mut addresses = Vec::new();
        for item in items {
            match item.as_str().map(Address::parse) {
                Some(Ok(address)) => addresses.push(address),
                Some(Err(e)) => self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, item.span),
                        e.to_string(),
                        "not an address",
                    )
                    .with_help(
                        "write `kind.name` (e.g. `os/package.base`) or `kind.name[machine]`",
                    ),
                ),
                None => self.errors.push(ConfigError::at(
                    &Self::origin(file, item.span),
                    format!("an address must be a string, found {}", item.kind_name()),
                    "here",
                )),
            }
        }
        addresses
    }

    fn load_document(&mut self, file: &Arc<SourceFile>, dir: &Path, root: &Node) {
        let Some(envelope) = self.envelope(file, root) else {
            return;
        };
        let (Some((kind, kind_node)), Some((name, name_node)), Some(spec_node)) =
            (envelope.kind, envelope.name, envelope.specification)
        else {
            return;
        };
        if !crate::address::is_valid_name(&name) {
            self.errors.push(
                ConfigError::at(&Self::origin(file, name_node.span), format!("invalid name `{name}`"), "invalid name")
                    .with_help("names are lowercase letters, digits, `_`, `.` and `-`, starting with a letter or digit"),
            );
        }
        let known = kinds::KNOWN_KINDS.contains(&kind.as_str())
            || kind == machine::KIND
            || kind == module::KIND;
        if !known {
            if !self.options.ignore_unknown_kinds {
                let mut candidates: Vec<&str> = kinds::KNOWN_KINDS.to_vec();
                candidates.push(machine::KIND);
                candidates.push(module::KIND);
                let help = match diagnostic::nearest(&kind, candidates.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`? (pass --ignore-unknown-kinds to skip documents of other tools)"),
                    None => format!(
                        "known kinds: {}; pass --ignore-unknown-kinds to skip documents of other tools",
                        candidates.join(", ")
                    ),
                };
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, kind_node.span),
                        format!("unknown kind `{kind}`"),
                        "unknown kind",
                    )
                    .with_help(help),
                );
            }
            return;
        }
        let origin = Self::origin(file, root.span);
        if let Some(first) = self.seen.get(&(kind.clone(), name.clone())) {
            let mut error = ConfigError::at(
                &Self::origin(file, name_node.span),
                format!("duplicate {kind} named `{name}`"),
                "defined again here",
            )
            .with_help("names must be unique per kind; rename one of them");
            if Arc::ptr_eq(&first.file, file) {
                error = error.with_label(first.span, "first defined here");
            } else {
                error = error.with_help(format!(
                    "names must be unique per kind; the first `{name}` is at {first}"
                ));
            }
            self.errors.push(error);
            return;
        }
        self.seen
            .insert((kind.clone(), name.clone()), origin.clone());

        if kind == module::KIND {
            let instance = Instance {
                name,
                origin,
                depends_on: envelope.depends_on,
                depends_on_node: root.get("depends_on").cloned(),
            };
            let first_error = self.errors.errors.len();
            let name = instance.name.clone();
            self.load_module(
                file,
                dir,
                name_node,
                spec_node,
                instance,
                envelope.lifecycle,
            );
            if self.errors.errors.len() > first_error {
                self.expansions.failed.push(name);
            }
            return;
        }
        if kind == machine::KIND {
            match from_node::<MachineSpec>(spec_node) {
                // Kept even when its checks fail, so that what selects it reports nothing
                // more; the load fails anyway.
                Ok(spec) => {
                    spec.check(&mut CheckContext {
                        name: &name,
                        file,
                        spec: spec_node,
                        dir,
                        roots: self.roots,
                        allow_source_outside_config: self.options.allow_source_outside_config,
                        connecting: self.options.connecting,
                        errors: self.errors,
                        digest: self.digest,
                    });
                    self.machine_origins.insert(name.clone(), origin);
                    self.machines.insert(name.clone(), Machine { name, spec });
                }
                Err(e) => {
                    let hint = machine::hint(spec_node, e.span);
                    self.de_error_with_hint(file, e, hint);
                }
            }
            return;
        }
        let spec = match kinds::decode(&kind, spec_node) {
            Ok(spec) => spec,
            Err(e) => {
                self.de_error(file, e);
                return;
            }
        };
        let mut ctx = CheckContext {
            name: &name,
            file,
            spec: spec_node,
            dir,
            roots: self.roots,
            allow_source_outside_config: self.options.allow_source_outside_config,
            connecting: self.options.connecting,
            errors: self.errors,
            digest: self.digest,
        };
        let Some(spec) = spec.check(&mut ctx) else {
            return;
        };
        self.resources.push(Resource {
            address: Address::new(&kind, &name, None),
            title: envelope.title,
            depends_on: envelope.depends_on,
            implied: Vec::new(),
            lifecycle: envelope.lifecycle,
            spec,
            node: root.clone(),
            origin,
        });
    }
}

/// Modules: a `kind: module` document is expanded here into the documents of its module,
/// which are then loaded like any other (see [`module`]).
impl Loader<'_> {
    fn load_module(
        &mut self,
        file: &Arc<SourceFile>,
        dir: &Path,
        name_node: &Node,
        spec_node: &Node,
        instance: Instance,
        lifecycle: Lifecycle,
    ) {
        if !module::is_valid_instance_name(&instance.name) {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, name_node.span),
                    format!("invalid module instance name `{}`", instance.name),
                    "invalid name",
                )
                .with_help("a module instance's name is lowercase letters, digits, `_` and `-`, without dots: its resources are named `INSTANCE.NAME`"),
            );
            return;
        }
        let Some(spec) = self.decode::<module::ModuleUseSpec>(file, spec_node) else {
            return;
        };
        let source_span = span_at(spec_node, &["source"]);
        let resolved =
            match module::resolve(&spec.source, dir, self.roots, &self.options.module_path) {
                Ok(resolved) => resolved,
                Err((message, help)) => {
                    self.errors.push(
                        ConfigError::at(&Self::origin(file, source_span), message, "this module")
                            .with_help_opt((!help.is_empty()).then_some(help)),
                    );
                    return;
                }
            };
        if !resolved.inside && !self.options.allow_source_outside_config {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, source_span),
                    format!(
                        "module `{}` is `{}`, outside the configuration's directories",
                        spec.source,
                        resolved.dir.display()
                    ),
                    "this module",
                )
                .with_help("a module's documents are shown in plans: keep it under a directory given on the command line or in a `modules/` folder above one, name its parent folder with --module-path DIR (or CORRAL_MODULE_PATH) and use it by name, or pass --allow-source-outside-config"),
            );
            return;
        }
        let first_error = self.errors.errors.len();
        let def = self.module_def(&resolved.dir);
        instance.annotate(&mut self.errors.errors[first_error..]);
        let Some(def) = def else {
            return;
        };
        let Some(values) = self.module_inputs(file, spec_node, &spec.source, &instance, &def)
        else {
            return;
        };

        // Substitute, then name every document after the instance.
        let first_error = self.errors.errors.len();
        let mut sources = Vec::new();
        let mut documents = Vec::new();
        for (index, module_file) in def.files.iter().enumerate() {
            let before = self.errors.errors.len();
            for document in &module_file.documents {
                let mut problems = Vec::new();
                let expanded = module::substitute(document, &values, &mut problems);
                let failed = !problems.is_empty();
                for problem in problems {
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(&module_file.file, problem.span),
                            problem.message,
                            "here",
                        )
                        .with_help_opt(problem.help),
                    );
                }
                if !failed {
                    sources.push(index);
                    documents.push(expanded);
                }
            }
            scrub_secrets(
                &mut self.errors.errors[before..],
                &module_file.text,
                &module_file.file.secrets,
            );
        }
        instance.annotate(&mut self.errors.errors[first_error..]);
        module::prefix_names(&mut documents, &instance.name);

        let index = self.expansions.instances.len();
        for (source, document) in sources.into_iter().zip(&documents) {
            let module_file = &def.files[source];
            let (first_error, first_resource) = (self.errors.errors.len(), self.resources.len());
            self.load_document(&module_file.file, &module_file.dir, document);
            scrub_secrets(
                &mut self.errors.errors[first_error..],
                &module_file.text,
                &module_file.file.secrets,
            );
            instance.annotate(&mut self.errors.errors[first_error..]);
            // The use site's `depends_on` and `lifecycle` apply to every resource.
            for resource in &mut self.resources[first_resource..] {
                for target in &instance.depends_on {
                    if !resource.depends_on.contains(target) {
                        resource.depends_on.push(target.clone());
                    }
                }
                resource.lifecycle.prevent_destroy |= lifecycle.prevent_destroy;
                if resource.lifecycle.rolling.is_none() {
                    resource.lifecycle.rolling = lifecycle.rolling;
                }
                if resource.lifecycle.timeout.is_none() {
                    resource.lifecycle.timeout = lifecycle.timeout;
                }
                self.expansions
                    .of_resource
                    .insert(resource.address.clone(), index);
            }
        }
        self.expansions.instances.push(instance);
    }

    /// The module in `dir` (canonical), read the first time it is used.
    fn module_def(&mut self, dir: &Path) -> Option<Rc<ModuleDef>> {
        if let Some(def) = self.modules.get(dir) {
            return def.clone();
        }
        let def = self.read_module(dir).map(Rc::new);
        self.modules.insert(dir.to_path_buf(), def.clone());
        def
    }

    /// Reads a module's declaration and documents, and checks what does not depend on a
    /// use: the declaration, every `${inputs.…}` placeholder, no nested modules or machines.
    fn read_module(&mut self, dir: &Path) -> Option<ModuleDef> {
        let first_error = self.errors.errors.len();
        let shown_dir = module::shown(dir);
        let (declaration, _, documents) = self.parse_file(
            &dir.join(module::DECLARATION),
            format!("{shown_dir}/{}", module::DECLARATION),
        )?;
        if let Some(extra) = documents.get(1) {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(&declaration, extra.root.span),
                    "`module.yaml` holds one document, the module's declaration",
                    "another document",
                )
                .with_help("put the module's resources in other `*.yaml` files of its folder"),
            );
        }
        let root = &documents[0].root;
        let decoded: module::Declaration = self.decode(&declaration, root)?;
        let mut inputs = Vec::new();
        for (name, declared) in decoded.inputs {
            let key_span = root
                .get("inputs")
                .and_then(|inputs| match &inputs.value {
                    Value::Map(entries) => entries
                        .iter()
                        .find(|(key, _)| key.as_str() == Some(name.as_str()))
                        .map(|(key, _)| key.span),
                    _ => None,
                })
                .unwrap_or(root.span);
            if !module::is_valid_input_name(&name) {
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(&declaration, key_span),
                        format!("invalid input name `{name}`"),
                        "invalid name",
                    )
                    .with_help(
                        "input names are lowercase letters, digits and `_`, starting with a letter",
                    ),
                );
            }
            let default = root
                .get("inputs")
                .and_then(|inputs| inputs.get(&name))
                .and_then(|input| input.get("default"));
            let default = match default {
                Some(node) => match declared.ty.accept(node) {
                    Some(value) => Some(value),
                    None => {
                        self.errors.push(ConfigError::at(
                            &Self::origin(&declaration, node.span),
                            format!(
                                "the default of input `{name}` must be {}, found {}",
                                declared.ty.described(),
                                node.kind_name()
                            ),
                            "wrong type",
                        ));
                        None
                    }
                },
                None => None,
            };
            inputs.push(DeclaredInput {
                name,
                ty: declared.ty,
                default,
                description: declared.description,
                origin: Self::origin(&declaration, key_span),
            });
        }
        let declared: BTreeMap<String, module::InputType> =
            inputs.iter().map(|i| (i.name.clone(), i.ty)).collect();

        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                        && p.file_name().and_then(|n| n.to_str()) != Some(module::DECLARATION)
                })
                .collect(),
            Err(e) => {
                self.errors.push(ConfigError::plain(format!(
                    "cannot read module folder `{shown_dir}`: {e}"
                )));
                Vec::new()
            }
        };
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((file, text, documents)) =
                self.parse_file(&path, format!("{shown_dir}/{file_name}"))
            else {
                continue;
            };
            let before = self.errors.errors.len();
            for document in &documents {
                let kind = document.root.get("kind");
                match kind.and_then(Node::as_str) {
                    Some(module::KIND) => self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, kind.map_or(document.root.span, |k| k.span)),
                            "a module cannot use another module",
                            "nested module",
                        )
                        .with_help("modules do not nest (yet): use both modules from the configuration"),
                    ),
                    Some(machine::KIND) => self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, kind.map_or(document.root.span, |k| k.span)),
                            "a module cannot declare machines",
                            "a machine",
                        )
                        .with_help("machines belong to the inventory; give the module a selector input (`type: any`) instead"),
                    ),
                    _ => {}
                }
                for problem in module::check_placeholders(&document.root, &declared) {
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, problem.span),
                            problem.message,
                            "here",
                        )
                        .with_help_opt(problem.help),
                    );
                }
            }
            scrub_secrets(&mut self.errors.errors[before..], &text, &file.secrets);
            files.push(ModuleFile {
                file,
                text,
                dir: PathBuf::from(&shown_dir),
                documents: documents.into_iter().map(|d| d.root).collect(),
            });
        }
        (self.errors.errors.len() == first_error).then_some(ModuleDef {
            declaration,
            inputs,
            files,
        })
    }

    /// The value of every input of one use, given or defaulted; `None` when one is unknown,
    /// of the wrong type or missing (reported at the use site).
    fn module_inputs(
        &mut self,
        file: &Arc<SourceFile>,
        spec_node: &Node,
        source: &str,
        instance: &Instance,
        def: &ModuleDef,
    ) -> Option<BTreeMap<String, Node>> {
        let first_error = self.errors.errors.len();
        let inputs_node = spec_node.get("inputs");
        let mut values = BTreeMap::new();
        let mut given = std::collections::BTreeSet::new();
        let names: Vec<&str> = def.inputs.iter().map(|i| i.name.as_str()).collect();
        if let Some(Value::Map(entries)) = inputs_node.map(|n| &n.value) {
            for (key, value) in entries {
                let Some(name) = key.as_str() else {
                    continue;
                };
                given.insert(name.to_owned());
                let Some(declared) = def.inputs.iter().find(|i| i.name == name) else {
                    let help = match names.is_empty() {
                        true => format!("module `{source}` declares no inputs"),
                        false => diagnostic::suggestion(name, &names, "inputs"),
                    };
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, key.span),
                            format!("module `{source}` has no input `{name}`"),
                            "unknown input",
                        )
                        .with_help(format!(
                            "{help}\nthe module's inputs are declared in {}",
                            def.declaration.name
                        )),
                    );
                    continue;
                };
                match declared.ty.accept(value) {
                    Some(value) => {
                        values.insert(name.to_owned(), value);
                    }
                    None => self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, value.span),
                            format!(
                                "input `{name}` must be {}, found {}",
                                declared.ty.described(),
                                value.kind_name()
                            ),
                            "wrong type",
                        )
                        .with_help(format!(
                            "`{name}` is declared as {} at {}",
                            declared.ty.described(),
                            declared.origin
                        )),
                    ),
                }
            }
        }
        for declared in &def.inputs {
            if given.contains(&declared.name) {
                continue;
            }
            match &declared.default {
                Some(default) => {
                    values.insert(declared.name.clone(), default.clone());
                }
                None => {
                    let span = inputs_node.map_or(span_at(spec_node, &["source"]), |n| n.span);
                    let about = declared
                        .description
                        .as_deref()
                        .map(|d| format!(": {}", d.trim()))
                        .unwrap_or_default();
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, span),
                            format!(
                                "module `{}` does not give the required input `{}`",
                                instance.name, declared.name
                            ),
                            format!("no `{}` here", declared.name),
                        )
                        .with_help(format!(
                            "add `{}:` to `inputs:`; it is declared at {} as {}{about}",
                            declared.name,
                            declared.origin,
                            declared.ty.described()
                        )),
                    );
                }
            }
        }
        (self.errors.errors.len() == first_error).then_some(values)
    }
}

/// Replaces, in errors' messages and help, every line of a secret value (of four
/// characters or more, shorter ones would garble the text) with `(sensitive)`: messages are
/// written not to quote values, and this keeps it so whatever a kind's check writes.
fn scrub_secrets(errors: &mut [ConfigError], text: &str, secrets: &[Span]) {
    let mut lines: Vec<&str> = secrets
        .iter()
        .filter_map(|span| text.get(span.start..span.end))
        .flat_map(str::lines)
        .map(|line| line.trim().trim_matches(['"', '\'']))
        .filter(|line| line.chars().count() >= 4)
        .collect();
    if lines.is_empty() {
        return;
    }
    // Longest first, so that a line containing another is replaced whole.
    lines.sort_unstable_by_key(|line| std::cmp::Reverse(line.len()));
    lines.dedup();
    let scrub = |text: &mut String| {
        for line in &lines {
            if text.contains(line) {
                *text = text.replace(line, "(sensitive)");
            }
        }
    };
    for error in errors {
        scrub(&mut error.message);
        if let Some(help) = &mut error.help {
            scrub(help);
        }
    }
}

/// YAML forbids tabs in indentation, and the parser reports them where the scan stopped
/// rather than at the tab; point at the first indenting tab instead.
fn tab_indentation(text: &str) -> Option<Span> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(tab) = line[..indent].find('\t') {
            return Some(Span {
                start: offset + tab,
                end: offset + tab + 1,
            });
        }
        offset += line.len();
    }
    None
}

/// Checks that need every document: machine names in selectors and `depends_on` targets.
fn check_references(config: &Config, expansions: &Expansions, errors: &mut ConfigErrors) {
    let references = References {
        config,
        machine_names: config.machines.keys().map(String::as_str).collect(),
        addresses: config
            .resources
            .iter()
            .map(|r| r.address.to_string())
            .collect(),
        by_address: config.resources.iter().map(|r| (&r.address, r)).collect(),
    };
    let machine_names = &references.machine_names;
    let failed = |target: &Address| {
        expansions.failed.iter().any(|instance| {
            target
                .name
                .strip_prefix(instance.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    for resource in &config.resources {
        let first_error = errors.errors.len();
        let spec_node = resource.node.get("specification");
        if let Some(Selector::Names(names)) = resource.spec.selector() {
            for name in names {
                if config.machines.contains_key(name) {
                    continue;
                }
                let span = spec_node
                    .and_then(|s| s.get("machines"))
                    .and_then(|m| match &m.value {
                        Value::Seq(items) => items.iter().find(|i| i.as_str() == Some(name)),
                        _ => None,
                    })
                    .map_or(resource.origin.span, |n| n.span);
                let help = unknown_machine_help(name, machine_names);
                errors.push(
                    ConfigError::at(
                        &Origin {
                            file: resource.origin.file.clone(),
                            span,
                        },
                        format!("{} selects unknown machine `{name}`", resource.address),
                        "no such machine",
                    )
                    .with_help(help),
                );
            }
        }
        if let kinds::Placement::Cluster(kind) = resource.spec.placement() {
            for (field, name) in kind.machine_references() {
                if config.machines.contains_key(&name) {
                    continue;
                }
                // A dotted field is a path (`mount.machines`).
                let span = spec_node
                    .and_then(|s| field.split('.').try_fold(s, |node, key| node.get(key)))
                    .and_then(|f| match &f.value {
                        // `[n1, n2]`, or maps naming a machine (`bricks: [{machine: n1, …}]`).
                        Value::Seq(items) => items.iter().find_map(|i| {
                            let named = i.get("machine").unwrap_or(i);
                            (named.as_str() == Some(name.as_str())).then_some(named)
                        }),
                        _ => f.get(&name),
                    })
                    .map_or(resource.origin.span, |n| n.span);
                errors.push(
                    ConfigError::at(
                        &Origin {
                            file: resource.origin.file.clone(),
                            span,
                        },
                        format!(
                            "{} names unknown machine `{name}` in `{field}`",
                            resource.address
                        ),
                        "no such machine",
                    )
                    .with_help(unknown_machine_help(&name, machine_names)),
                );
            }
        }
        // An expanded resource's entries past its own are its use site's, checked there.
        let expanded_from = expansions.instance_of(&resource.address);
        let own = match resource.node.get("depends_on").map(|d| &d.value) {
            Some(Value::Seq(items)) if expanded_from.is_some() => items.len(),
            _ => usize::MAX,
        };
        for (index, target) in resource.depends_on.iter().enumerate().take(own) {
            let span = resource
                .node
                .get("depends_on")
                .and_then(|d| match &d.value {
                    Value::Seq(items) => items.get(index),
                    _ => None,
                })
                .map_or(resource.origin.span, |n| n.span);
            let origin = Origin {
                file: resource.origin.file.clone(),
                span,
            };
            let is_self = target.resource() == resource.address;
            let who = resource.address.to_string();
            if failed(target) && !references.by_address.contains_key(&target.resource()) {
                continue;
            }
            if let Some(error) = dependency_error(&references, &who, is_self, target, &origin) {
                errors.push(error);
            }
        }
        if let Some(instance) = expanded_from {
            instance.annotate(&mut errors.errors[first_error..]);
        }
    }
    for (index, instance) in expansions.instances.iter().enumerate() {
        for (at, target) in instance.depends_on.iter().enumerate() {
            let span = instance
                .depends_on_node
                .as_ref()
                .and_then(|d| match &d.value {
                    Value::Seq(items) => items.get(at),
                    _ => None,
                })
                .map_or(instance.origin.span, |n| n.span);
            let origin = Origin {
                file: instance.origin.file.clone(),
                span,
            };
            let is_self = expansions.of_resource.get(&target.resource()) == Some(&index);
            let who = format!("module `{}`", instance.name);
            if failed(target) && !references.by_address.contains_key(&target.resource()) {
                continue;
            }
            if let Some(error) = dependency_error(&references, &who, is_self, target, &origin) {
                errors.push(error);
            }
        }
    }
}

/// What the `depends_on` checks look things up in.
struct References<'a> {
    config: &'a Config,
    machine_names: Vec<&'a str>,
    addresses: Vec<String>,
    by_address: HashMap<&'a Address, &'a Resource>,
}

/// Why `who` cannot depend on `target` (written at `origin`), if it cannot: `target` is
/// itself (`is_self`), not declared, or an instance or machine that does not exist.
fn dependency_error(
    references: &References,
    who: &str,
    is_self: bool,
    target: &Address,
    origin: &Origin,
) -> Option<ConfigError> {
    let config = references.config;
    let resource_known = references.by_address.contains_key(&target.resource());
    let machine_known = target
        .machine
        .as_ref()
        .is_none_or(|m| config.machines.contains_key(m));
    // `kind.name[machine]` must name an instance that exists, not just a machine.
    let instance_known = match (
        &target.machine,
        references.by_address.get(&target.resource()),
    ) {
        (Some(machine), Some(target_resource)) => target_resource
            .spec
            .selector()
            .is_none_or(|s| config.select(s).any(|m| &m.name == machine)),
        _ => true,
    };
    if resource_known && machine_known && instance_known && !is_self {
        return None;
    }
    Some(if is_self {
        ConfigError::at(origin, format!("{who} depends on itself"), "here")
    } else if !resource_known {
        let candidates: Vec<&str> = references.addresses.iter().map(String::as_str).collect();
        ConfigError::at(
            origin,
            format!("{who} depends on `{target}`, which is not declared"),
            "no such resource",
        )
        .with_help(diagnostic::suggestion(
            &target.resource().to_string(),
            &candidates,
            "resources",
        ))
    } else if machine_known {
        ConfigError::at(
            origin,
            format!(
                "{who} depends on `{target}`, but {} does not select that machine",
                target.resource()
            ),
            "no such instance",
        )
        .with_help("depend on the resource as a whole, or on an instance it has")
    } else {
        ConfigError::at(
            origin,
            format!("{who} depends on `{target}`, but there is no such machine"),
            "no such machine",
        )
        .with_help(diagnostic::suggestion(
            target.machine.as_deref().unwrap_or_default(),
            &references.machine_names,
            "machines",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::check::Exposure;

    /// The identity is kept where the project's name comes from: never in an ancestor no
    /// one gave (two folders under `/` would put it in `/`).
    #[test]
    fn the_identity_is_kept_in_the_configurations_directory() {
        let root = tempfile::tempdir().unwrap();
        let (web, db) = (root.path().join("web"), root.path().join("db"));
        std::fs::create_dir(&web).unwrap();
        std::fs::create_dir(&db).unwrap();
        let (web, db) = (web.canonicalize().unwrap(), db.canonicalize().unwrap());
        let file = |d: &Path| d.join("a.yaml").display().to_string();
        let (w, d) = (file(&web), file(&db));
        assert_eq!(identity_dir([w.as_str(), w.as_str()].into_iter(), &[]), web);
        let roots = [db.clone(), web.clone()];
        assert_eq!(identity_dir([w.as_str()].into_iter(), &roots), web);
        assert_eq!(
            identity_dir([w.as_str(), d.as_str()].into_iter(), &roots),
            db
        );
        assert_eq!(identity_dir([w.as_str(), d.as_str()].into_iter(), &[]), web);
        assert_eq!(identity_dir(std::iter::empty(), &roots), db);
    }

    /// A plan error about a resource points at the setting it quotes (`owner: deploy`),
    /// or at `lifecycle.prevent_destroy`; the name only when nothing else fits.
    #[test]
    fn errors_about_a_resource_point_at_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "kind: infrastructure/machine\nname: n1\nspecification: {hostname: n1, ip: 10.0.0.1}\n---\nkind: os/file\nname: app\nlifecycle: { prevent_destroy: true }\nspecification:\n  machines: all\n  path: /etc/app\n  content: x\n  owner: deploy\n").unwrap();
        let config = load(&[path], &LoadOptions::default()).unwrap();
        let resource = &config.resources[0];
        let at = |origin: Origin| {
            let text = origin.to_string();
            text[text.find(':').unwrap() + 1..].to_owned()
        };
        assert_eq!(
            at(resource.origin_of_message("owner `deploy` does not exist")),
            "12:10"
        );
        assert_eq!(
            at(resource.origin_of_field(&["lifecycle", "prevent_destroy"])),
            "7:31"
        );
        assert_eq!(at(resource.origin_of_message("no quoted value")), "6:7");
        assert_eq!(
            at(resource.origin_of_message("`nowhere` is not set")),
            "6:7"
        );
    }

    #[test]
    fn every_kind_declares_its_secret_fields() {
        for kind in kinds::KNOWN_KINDS.iter().chain([&machine::KIND]) {
            assert!(
                secret_field_table().any(|(k, _)| k == kind),
                "{kind} has no line in SECRET_FIELDS"
            );
        }
        assert_eq!(secret_names(), ["content", "secret_env"]);
        assert_eq!(secret_fields(Some("os/sysctl")), Vec::<&[&str]>::new());
        assert_eq!(
            secret_fields(Some("os/flie")),
            [
                &["content"][..],
                &["content"],
                &["content"],
                &["secret_env"]
            ]
        );
    }

    /// A configuration directory `config/` with `site.yaml`, next to `outside.txt`.
    fn context_test(
        exposure: Exposure,
        allow: bool,
        source: &str,
    ) -> (Option<Vec<u8>>, Vec<String>) {
        let root = tempfile::tempdir().unwrap();
        let config_dir = root.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(root.path().join("outside.txt"), "CI_TOKEN=abc\n").unwrap();
        std::fs::write(config_dir.join("inside.txt"), "hello\n").unwrap();
        std::os::unix::fs::symlink("../outside.txt", config_dir.join("link.txt")).unwrap();
        let text = format!("source: {source}\n");
        let node = yaml::parse_documents(&text).unwrap().remove(0).root;
        let file = Arc::new(SourceFile::new("site.yaml".into(), &text, Vec::new()));
        let roots = config_roots(&[config_dir.join("site.yaml")]);
        let (mut errors, mut digest) = (ConfigErrors::default(), ConfigDigest::default());
        let mut ctx = CheckContext {
            name: "test",
            file: &file,
            spec: &node,
            dir: &config_dir,
            roots: &roots,
            allow_source_outside_config: allow,
            connecting: false,
            errors: &mut errors,
            digest: &mut digest,
        };
        let bytes = ctx.read_source_as(&["source"], source, exposure);
        let messages = errors.errors.into_iter().map(|e| e.message).collect();
        (bytes, messages)
    }

    #[test]
    fn sources_outside_the_configuration_are_read_only_for_sensitive_content() {
        use Exposure::{Sensitive, Shown};
        let outside = Some(b"CI_TOKEN=abc\n".to_vec());
        for source in ["../outside.txt", "link.txt"] {
            let (bytes, errors) = context_test(Shown, false, source);
            assert_eq!(bytes, None);
            assert!(
                errors[0].ends_with("outside.txt`, outside the configuration's directories"),
                "{errors:?}"
            );
            assert_eq!(
                context_test(Sensitive, false, source),
                (outside.clone(), vec![])
            );
            assert_eq!(context_test(Shown, true, source), (outside.clone(), vec![]));
        }
        let inside = (Some(b"hello\n".to_vec()), vec![]);
        assert_eq!(context_test(Shown, false, "inside.txt"), inside);
        assert_eq!(context_test(Shown, false, "../config/inside.txt"), inside);
        // Devices and directories are not files to copy, sensitive or not.
        let (bytes, errors) = context_test(Sensitive, false, "/dev/zero");
        assert_eq!(
            (bytes, errors),
            (
                None,
                vec!["`/dev/zero` is `/dev/zero`, a file of the kernel's".into()]
            )
        );
        // Nor the kernel's files, even for a secret (which may be anywhere else).
        let (bytes, errors) = context_test(Exposure::Secret, false, "/proc/self/environ");
        assert!(
            bytes.is_none() && errors[0].ends_with("a file of the kernel's"),
            "{errors:?}"
        );
        let (bytes, errors) = context_test(Sensitive, false, ".");
        assert!(bytes.is_none() && errors[0].ends_with("is not a regular file"));
    }

    #[test]
    fn decoding_errors_about_secret_values_do_not_quote_them() {
        let text = "content: hunter2\nmode: x\n";
        let file = Arc::new(SourceFile::new(
            "f.yaml".into(),
            text,
            vec![Span { start: 9, end: 16 }],
        ));
        let (mut errors, mut digest) = (ConfigErrors::default(), ConfigDigest::default());
        let options = LoadOptions::default();
        let mut loader = Loader {
            options: &options,
            roots: &[],
            errors: &mut errors,
            digest: &mut digest,
            machines: BTreeMap::new(),
            machine_origins: HashMap::new(),
            resources: Vec::new(),
            seen: HashMap::new(),
            modules: HashMap::new(),
            expansions: Expansions::default(),
        };
        let error = |span, kind| DeError {
            message: "invalid value: string \"hunter2\", expected a digest".into(),
            span,
            kind,
        };
        loader.de_error(
            &file,
            error(Span { start: 9, end: 16 }, yaml::DeErrorKind::InvalidValue),
        );
        loader.de_error(
            &file,
            error(Span { start: 9, end: 16 }, yaml::DeErrorKind::Custom),
        );
        loader.de_error(
            &file,
            error(Span { start: 23, end: 24 }, yaml::DeErrorKind::InvalidValue),
        );
        let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "invalid value (not shown: this field may hold a secret)",
                "invalid value (not shown: this field may hold a secret)",
                "invalid value: string \"hunter2\", expected a digest",
            ]
        );
    }

    #[test]
    fn messages_quoting_a_secret_are_scrubbed() {
        let text = "content: |\n  hunter2-line-one\n  abc\n";
        let secrets = [Span {
            start: 13,
            end: text.len() - 1,
        }];
        let mut errors = vec![ConfigError::plain("`hunter2-line-one\\nabc` is wrong")
            .with_help("not `hunter2-line-one`")];
        scrub_secrets(&mut errors, text, &secrets);
        assert_eq!(errors[0].message, "`(sensitive)\\nabc` is wrong");
        assert_eq!(errors[0].help.as_deref(), Some("not `(sensitive)`"));
    }

    /// A label typo or a machine missing from the inventory plans nothing: named, with the
    /// selector as written; a configuration without machines is refused with the cause.
    #[test]
    fn selectors_that_match_nothing_are_named_and_no_machines_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        let file = |labels: &str| {
            format!(
                "kind: os/file\nname: motd\nspecification:\n  machines: {{labels: {{{labels}}}}}\n  path: /etc/motd\n  content: hi\n"
            )
        };
        let machine = "kind: infrastructure/machine\nname: n1\nspecification:\n  hostname: n1\n  ip: 10.0.0.1\n  labels: {role: web}\n---\n";
        std::fs::write(&path, format!("{machine}{}", file("role: db"))).unwrap();
        let config = load(std::slice::from_ref(&path), &LoadOptions::default()).unwrap();
        let unmatched = config.unmatched_selectors();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].0.to_string(), "os/file.motd");
        assert_eq!(
            unmatched[0].1,
            "machines: {labels: {role: db}} matches no machine"
        );
        assert!(config.require_machines().is_ok());

        std::fs::write(&path, format!("{machine}{}", file("role: web"))).unwrap();
        let config = load(std::slice::from_ref(&path), &LoadOptions::default()).unwrap();
        assert!(config.unmatched_selectors().is_empty());

        std::fs::write(&path, file("role: web")).unwrap();
        let config = load(&[path], &LoadOptions::default()).unwrap();
        let refused = config.require_machines().unwrap_err();
        assert_eq!(
            refused.errors[0].to_string(),
            "the configuration declares no machines"
        );
    }
}

#[cfg(test)]
mod module_tests {
    use super::*;

    fn load_site() -> Config {
        let paths = [
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/inputs/inventory.yaml"
            )),
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/inputs/modules/site.yaml"
            )),
        ];
        match load(&paths, &LoadOptions::default()) {
            Ok(config) => config,
            Err(errors) => panic!("{:?}", errors.errors),
        }
    }

    fn resource<'c>(config: &'c Config, address: &str) -> &'c Resource {
        let address = Address::parse(address).unwrap();
        config
            .resources
            .iter()
            .find(|r| r.address == address)
            .unwrap_or_else(|| panic!("no {address}"))
    }

    fn specification(resource: &Resource) -> serde_json::Value {
        from_node(resource.node.get("specification").unwrap()).unwrap()
    }

    #[test]
    fn module_instances_expand_into_resources_named_after_them() {
        let config = load_site();
        let addresses: Vec<String> = config
            .resources
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        assert_eq!(
            addresses,
            [
                "os/sysctl.shared",
                "os/package.front.base",
                "os/file.front.conf",
                "os/file.front.index",
                "os/package.back.base",
                "os/file.back.conf",
                "os/file.back.index",
                "os/file.welcome.motd",
                "os/file.after-front",
            ]
        );
        // Named after the directory of the documents using the modules.
        assert_eq!(config.project, "modules");
        // `--target front` selects what instance `front` expanded to.
        let front: Vec<String> = config
            .module_instance("front")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            front,
            [
                "os/file.front.conf",
                "os/file.front.index",
                "os/package.front.base"
            ]
        );
        assert!(config.module_instance("os/file.front.conf").is_none());
        // Inputs keep their types; defaults fill the rest; `$${` is a literal `${`.
        let front_base = specification(resource(&config, "os/package.front.base"));
        assert_eq!(front_base["present"], serde_json::json!(["nginx", "curl"]));
        assert_eq!(front_base["machines"], serde_json::json!(["n1"]));
        let back_conf = specification(resource(&config, "os/file.back.conf"));
        assert_eq!(back_conf["path"], "/etc/web/port-9090.conf");
        assert_eq!(back_conf["content"], "listen 9090;\n# ${HOME} stays\n");
        let front_conf = specification(resource(&config, "os/file.front.conf"));
        assert_eq!(front_conf["path"], "/etc/web/port-8080.conf");
        let motd = specification(resource(&config, "os/file.welcome.motd"));
        assert_eq!(
            (&motd["content"], &motd["machines"], &motd["path"]),
            (&"Welcome\n".into(), &"all".into(), &"/etc/motd".into())
        );
        // Selectors given as inputs select.
        let back = resource(&config, "os/file.back.index");
        let selected: Vec<&str> = config
            .select(back.spec.selector().unwrap())
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(selected, ["n2"]);
        // Local dependencies follow the instance, outside ones stay, the use site's apply
        // to every resource, and so does its lifecycle.
        let depends = |address: &str| -> Vec<String> {
            resource(&config, address)
                .depends_on
                .iter()
                .map(Address::to_string)
                .collect()
        };
        assert_eq!(
            depends("os/file.front.conf"),
            ["os/package.front.base", "os/sysctl.shared"]
        );
        assert_eq!(depends("os/file.front.index"), ["os/file.front.conf"]);
        assert_eq!(depends("os/package.front.base"), Vec::<String>::new());
        assert_eq!(
            depends("os/file.back.index"),
            ["os/file.back.conf", "os/sysctl.shared"]
        );
        assert_eq!(depends("os/package.back.base"), ["os/sysctl.shared"]);
        assert_eq!(depends("os/file.after-front"), ["os/file.front.index"]);
        assert!(
            resource(&config, "os/file.back.conf")
                .lifecycle
                .prevent_destroy
        );
        assert!(
            !resource(&config, "os/file.front.conf")
                .lifecycle
                .prevent_destroy
        );
        // Errors about expanded resources point into the module.
        assert!(resource(&config, "os/file.front.conf")
            .origin
            .file
            .name
            .ends_with("tests/inputs/modules/web/site.yaml"));
    }

    /// A configuration in `root/config` using `root/modules/m`, whose files the digest covers.
    #[test]
    fn the_digest_covers_module_files_and_sources_outside_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let (config_dir, module_dir) = (root.path().join("config"), root.path().join("modules/m"));
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::create_dir_all(&module_dir).unwrap();
        std::fs::write(
            module_dir.join("module.yaml"),
            "inputs:\n  path: { type: string }\n",
        )
        .unwrap();
        let file = "kind: os/file\nname: f\nspecification:\n  machines: all\n  path: ${inputs.path}\n  content: \"a\\n\"\n";
        std::fs::write(module_dir.join("file.yaml"), file).unwrap();
        std::fs::write(
            config_dir.join("site.yaml"),
            "kind: module\nname: one\nspecification:\n  source: m\n  inputs: { path: /etc/one }\n",
        )
        .unwrap();
        let paths = [
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/inputs/inventory.yaml"
            )),
            config_dir.clone(),
        ];
        let digest = || {
            load(&paths, &LoadOptions::default())
                .map(|c| c.digest)
                .map_err(|e| e.errors)
        };
        let before = digest().unwrap();
        std::fs::write(module_dir.join("file.yaml"), file.replace("a\\n", "b\\n")).unwrap();
        assert_ne!(digest().unwrap(), before);

        // A module reached through a symbolic link to outside the configuration is refused.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(elsewhere.path().join("x")).unwrap();
        std::fs::write(elsewhere.path().join("x/module.yaml"), "inputs: {}\n").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("x"), config_dir.join("x")).unwrap();
        std::fs::write(
            config_dir.join("site.yaml"),
            "kind: module\nname: one\nspecification:\n  source: ./x\n",
        )
        .unwrap();
        let errors = digest().unwrap_err();
        assert!(
            errors[0]
                .message
                .ends_with("outside the configuration's directories"),
            "{errors:?}"
        );
    }
}
