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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::kinds::swarm_service::{
    DockerDuration, FailureAction, Mode, MountKind, ObjectRef, Port, Protocol, PublishMode,
    ServiceMount, SwarmServiceSpec, UpdateOrder, UpdatePolicy,
};
use crate::config::error::{suggestion, ConfigErrors, Origin, SourceFile};
use crate::config::yaml::{parse_documents, Node, Span, Value};

// Temporary while the module is split: `variables` is still a child of this file.
#[path = "variables.rs"]
pub mod variables;
pub use variables::{Variable, Variables};

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

// ---------------------------------------------------------------------------------------
// Errors

/// Where errors go: each one once (an anchor used by several services would otherwise
/// report its errors once per use).
struct Report<'a> {
    file: &'a Arc<SourceFile>,
    errors: &'a mut ConfigErrors,
    seen: HashSet<(usize, usize, String)>,
    count: usize,
    /// `FILE:LINE:COL: message`, in the order found, each once.
    warnings: Vec<String>,
}

impl Report<'_> {
    /// What the CLI ignores or converts harmlessly: deployed, and said.
    fn warn(&mut self, span: Span, message: impl Into<String>) {
        let origin = Origin {
            file: self.file.clone(),
            span,
        };
        let warning = format!("{origin}: {}", message.into());
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>, label: &str, help: Option<String>) {
        let message = message.into();
        if !self.seen.insert((span.start, span.end, message.clone())) {
            return;
        }
        let origin = Origin {
            file: self.file.clone(),
            span,
        };
        self.errors.push_at(&origin, message, label).help = help;
        self.count += 1;
    }
}

// ---------------------------------------------------------------------------------------
// The file as yaml.v2 reads it

/// A value as the CLI sees it after yaml.v2 and interpolation: Go's types, keys strings.
#[derive(Debug, Clone, PartialEq)]
struct Item {
    value: Val,
    span: Span,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    /// Integers above `i64::MAX` (yaml.v2 gives them as `uint64`).
    UInt(u64),
    /// Always finite: infinities and NaN are refused (JSON cannot carry them to the CLI).
    Float(f64),
    Str(String),
    Seq(Vec<Item>),
    /// Keys unique; in document order, a merged key where it was first set.
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    key_span: Span,
    value: Item,
}

impl Item {
    fn get(&self, key: &str) -> Option<&Item> {
        self.entry(key).map(|e| &e.value)
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    fn entries(&self) -> &[Entry] {
        match &self.value {
            Val::Map(entries) => entries,
            _ => &[],
        }
    }

    fn items(&self) -> &[Item] {
        match &self.value {
            Val::Seq(items) => items,
            _ => &[],
        }
    }

    fn str(&self) -> Option<&str> {
        match &self.value {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn bool(&self) -> Option<bool> {
        match self.value {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An integer as the JSON schema sees one (a float with no fraction is one).
    fn int(&self) -> Option<i128> {
        match self.value {
            Val::Int(i) => Some(i.into()),
            Val::UInt(u) => Some(u.into()),
            Val::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => Some(f as i128),
            _ => None,
        }
    }

    /// A scalar as Go's `fmt.Sprint` prints it (what `environment` and labels hold); `None`
    /// for null and collections.
    fn go_string(&self) -> Option<String> {
        Some(match &self.value {
            Val::Str(s) => s.clone(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::UInt(u) => u.to_string(),
            Val::Float(f) => go_float(*f),
            Val::Null | Val::Seq(_) | Val::Map(_) => return None,
        })
    }

    fn found(&self) -> &'static str {
        match self.value {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) | Val::UInt(_) => "an integer",
            Val::Float(_) => "a number",
            Val::Str(_) => "a string",
            Val::Seq(_) => "a list",
            Val::Map(_) => "a mapping",
        }
    }

    /// The value as JSON, keys sorted: what opaque keys are compared by.
    fn json(&self) -> serde_json::Value {
        self.to_json(&|s| s.to_owned())
    }

    /// The value as JSON with every string passed through `string` (keys are not: the CLI
    /// interpolates values only).
    fn to_json(&self, string: &dyn Fn(&str) -> String) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::from(*i),
            Val::UInt(u) => J::from(*u),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Val::Str(s) => J::String(string(s)),
            Val::Seq(items) => J::Array(items.iter().map(|i| i.to_json(string)).collect()),
            Val::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json(string)))
                    .collect(),
            ),
        }
    }

    fn canonical(&self) -> String {
        self.json().to_string()
    }
}

/// How a scalar was written, which yaml.v2 needs and our tree does not keep: quoted
/// scalars are strings, plain ones are resolved by YAML 1.1's rules.
#[derive(Debug, Clone)]
struct ScalarStyleInfo {
    plain: bool,
    /// A tag other than `!!str`, as written.
    tag: Option<String>,
}

/// The style of every scalar and alias-of-a-scalar by its span, from a second pass of the
/// parser over the same text (the spans agree with [`parse_documents`]'s; a start alone
/// does not tell an empty plain value from the quoted key that follows it).
fn scalar_styles(text: &str) -> (Styles, Vec<(Span, String)>) {
    let char_bytes: Option<Vec<usize>> = (!text.is_ascii()).then(|| {
        text.char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect()
    });
    let byte = |index: usize| match &char_bytes {
        Some(table) => table.get(index).copied().unwrap_or(text.len()),
        None => index.min(text.len()),
    };
    let mut styles = Styles::new();
    let mut anchors: HashMap<usize, Option<ScalarStyleInfo>> = HashMap::new();
    let mut collection_tags = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((event, span))) = parser.next_event() {
        let start = byte(span.start.index());
        let at = Span {
            start,
            end: byte(span.end.index()).max(start),
        };
        match event {
            Event::Scalar(_, style, anchor, tag) => {
                // Block scalars' spans run over the trailing blank lines; ours do not.
                let end = match style {
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        start + text.get(start..at.end).map_or(0, |t| t.trim_end().len())
                    }
                    _ => at.end,
                };
                let tag = tag.and_then(|t| {
                    (!(t.is_yaml_core_schema() && t.suffix == "str"))
                        .then(|| format!("{}{}", t.handle, t.suffix))
                });
                let info = ScalarStyleInfo {
                    plain: style == ScalarStyle::Plain,
                    tag,
                };
                if anchor != 0 {
                    anchors.insert(anchor, Some(info.clone()));
                }
                styles.insert((start, end), info);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if anchor != 0 {
                    anchors.insert(anchor, None);
                }
                if let Some(tag) = tag {
                    if !(tag.is_yaml_core_schema() && matches!(tag.suffix.as_str(), "map" | "seq"))
                    {
                        collection_tags.push((at, format!("{}{}", tag.handle, tag.suffix)));
                    }
                }
            }
            Event::Alias(id) => {
                if let Some(Some(info)) = anchors.get(&id) {
                    styles.insert((at.start, at.end), info.clone());
                }
            }
            Event::DocumentEnd => anchors.clear(),
            _ => {}
        }
    }
    (styles, collection_tags)
}

/// Scalar styles by the span of the scalar (or of an alias to one).
type Styles = HashMap<(usize, usize), ScalarStyleInfo>;

/// Builds the [`Item`] tree from our YAML tree, as yaml.v2 and the CLI's interpolation
/// would see it, reporting what corral cannot carry over.
struct TreeBuilder<'r, 'a> {
    report: &'r mut Report<'a>,
    styles: Styles,
}

impl TreeBuilder<'_, '_> {
    fn build(&mut self, node: &Node) -> Item {
        let span = node.span;
        let value = match &node.value {
            Value::Seq(items) => Val::Seq(items.iter().map(|n| self.build(n)).collect()),
            Value::Map(pairs) => Val::Map(self.build_map(pairs)),
            _ => match self.scalar(node) {
                Val::Str(s) => Val::Str(self.interpolated(&s, span)),
                Val::Float(f) if !f.is_finite() => {
                    self.report.error(
                        span,
                        "an infinite or not-a-number value cannot be passed on to `docker stack deploy`",
                        "not a finite number",
                        Some("quote it if you mean the text".into()),
                    );
                    Val::Str(node.text.clone().unwrap_or_default())
                }
                other => other,
            },
        };
        Item { value, span }
    }

    /// A scalar as yaml.v2 resolves it, before interpolation.
    fn scalar(&mut self, node: &Node) -> Val {
        let text = node.text.clone().unwrap_or_default();
        let info = self.styles.get(&(node.span.start, node.span.end)).cloned();
        if let Some(tag) = info.as_ref().and_then(|i| i.tag.clone()) {
            self.report.error(
                node.span,
                format!("the YAML tag `{tag}` is not read here"),
                "tag",
                Some("write the value without a tag (quote it to make it a string)".into()),
            );
            return Val::Str(text);
        }
        match info {
            Some(ScalarStyleInfo { plain: true, .. }) => resolve_plain(&text),
            Some(ScalarStyleInfo { plain: false, .. }) => Val::Str(text),
            // Not seen by the second pass (it should not happen): trust our own tree.
            None => match &node.value {
                Value::Null => Val::Null,
                Value::Bool(b) => Val::Bool(*b),
                Value::Int(i) => Val::Int(*i),
                Value::Float(f) => Val::Float(*f),
                _ => Val::Str(text),
            },
        }
    }

    fn is_merge_key(&self, key: &Node) -> bool {
        key.text.as_deref() == Some("<<")
            && self
                .styles
                .get(&(key.span.start, key.span.end))
                .is_some_and(|info| info.plain && info.tag.is_none())
    }

    /// A mapping with yaml.v2's merge semantics: entries are set in document order, so a
    /// `<<` overrides keys written before it and is overridden by keys written after it;
    /// of a list of merged mappings, the first wins.
    fn build_map(&mut self, pairs: &[(Node, Node)]) -> Vec<Entry> {
        fn set(entries: &mut Vec<Entry>, entry: Entry) {
            match entries.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => *existing = entry,
                None => entries.push(entry),
            }
        }
        let mut entries = Vec::new();
        for (key, value) in pairs {
            if self.is_merge_key(key) {
                let merged = self.build(value);
                let wrong = |report: &mut Report, span| {
                    report.error(
                        span,
                        "a merge key `<<` takes a mapping or a list of mappings",
                        "not a mapping",
                        None,
                    )
                };
                match merged.value {
                    Val::Map(more) => more.into_iter().for_each(|e| set(&mut entries, e)),
                    Val::Seq(maps) => {
                        for map in maps.into_iter().rev() {
                            match map.value {
                                Val::Map(more) => {
                                    more.into_iter().for_each(|e| set(&mut entries, e))
                                }
                                _ => wrong(self.report, map.span),
                            }
                        }
                    }
                    _ => wrong(self.report, merged.span),
                }
                continue;
            }
            let Some(name) = self.key(key) else {
                continue;
            };
            let value = self.build(value);
            set(
                &mut entries,
                Entry {
                    key: name,
                    key_span: key.span,
                    value,
                },
            );
        }
        entries
    }

    /// A mapping key: the CLI wants strings, and YAML 1.1 makes `yes`, `1` or `~` others.
    fn key(&mut self, key: &Node) -> Option<String> {
        let resolved = match &key.value {
            Value::Seq(_) | Value::Map(_) => {
                self.report.error(
                    key.span,
                    "a mapping key must be a string",
                    "not a string",
                    None,
                );
                return None;
            }
            _ => self.scalar(key),
        };
        match resolved {
            Val::Str(s) => {
                if s.contains('\0') {
                    self.report
                        .error(key.span, "a key cannot hold a NUL byte", "NUL byte", None);
                    return None;
                }
                Some(s)
            }
            other => {
                let found = Item {
                    value: other,
                    span: key.span,
                }
                .found();
                let text = key.text.as_deref().unwrap_or_default();
                self.report.error(
                    key.span,
                    format!("the key `{text}` is read as {found}, and Compose keys are strings"),
                    "not a string",
                    Some(format!("quote it: `\"{text}\"` (YAML 1.1 reads yes/no/on/off, numbers and `~` as other types)")),
                );
                None
            }
        }
    }

    /// A string value as read; [`variables::interpolate`] substitutes its variables later,
    /// on the whole tree, where it knows the value's path.
    fn interpolated(&mut self, value: &str, span: Span) -> String {
        if value.contains('\0') {
            self.report.error(
                span,
                "a value cannot hold a NUL byte",
                "NUL byte",
                Some("Docker's API and the containers' environment cannot carry it".into()),
            );
        }
        value.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// The Compose schema (the 20.10 CLI's `config_schema_v3.N.json`), with what corral adds

/// What a value must be. Each variant is one of the schema's types or shared definitions.
#[derive(Clone, Copy)]
enum Ty {
    Any,
    Str,
    Int,
    Num,
    Bool,
    /// A string Go's `time.ParseDuration` reads (`10s`, `1m30s`, `1.5h`).
    Duration,
    Enum(&'static [&'static str]),
    /// `environment`, labels and `logging.options` values.
    StrNumNull,
    /// `driver_opts` values.
    StrNum,
    /// Items, and whether they must be unique (`uniqueItems`).
    List(&'static Ty, bool),
    /// A mapping with any keys.
    Dict(&'static Ty),
    Obj(&'static Obj),
    NullOr(&'static Ty),
    OneOf(&'static [Ty]),
}

/// A mapping with known keys.
struct Obj {
    fields: &'static [Field],
    /// `x-…` keys are allowed from format 3.N (`None`: never).
    extensions: Option<u8>,
    required: &'static [&'static str],
}

struct Field {
    name: &'static str,
    /// The first format version (3.N) with this key.
    since: u8,
    ty: Ty,
    note: Note,
}

/// Keys of the format that corral refuses anyway, and why.
#[derive(Clone, Copy)]
enum Note {
    None,
    /// `docker stack deploy` ignores the key (with a warning, or none); how to do it in swarm.
    Ignored(&'static str),
    /// `docker stack deploy` refuses the key; its own explanation.
    Refused(&'static str),
    /// `docker stack deploy` ignores the key and the service runs as the file means
    /// anyway: a warning saying why, and the deploy goes ahead.
    Harmless(&'static str),
    /// `restart`: the CLI says it ignores it, yet converts it to a restart policy when
    /// there is no `deploy.restart_policy` (`convertRestartPolicy`); see
    /// [`Loader::restart`].
    Restart,
}

const fn field(name: &'static str, since: u8, ty: Ty) -> Field {
    Field {
        name,
        since,
        ty,
        note: Note::None,
    }
}

const fn ignored(name: &'static str, since: u8, help: &'static str) -> Field {
    Field {
        name,
        since,
        ty: Ty::Any,
        note: Note::Ignored(help),
    }
}

const fn harmless(name: &'static str, ty: Ty, why: &'static str) -> Field {
    Field {
        name,
        since: 0,
        ty,
        note: Note::Harmless(why),
    }
}

const fn refused(name: &'static str, help: &'static str) -> Field {
    Field {
        name,
        since: 0,
        ty: Ty::Any,
        note: Note::Refused(help),
    }
}

const fn obj(fields: &'static [Field]) -> Obj {
    Obj {
        fields,
        extensions: None,
        required: &[],
    }
}

const LIST_OF_STRINGS: Ty = Ty::List(&Ty::Str, true);
const STRING_OR_LIST: Ty = Ty::OneOf(&[Ty::Str, LIST_OF_STRINGS]);
const LIST_OR_DICT: Ty = Ty::OneOf(&[Ty::Dict(&Ty::StrNumNull), LIST_OF_STRINGS]);
const DRIVER_OPTS: Ty = Ty::Dict(&Ty::StrNum);
const EXTERNAL: Ty = Ty::OneOf(&[Ty::Bool, Ty::Obj(&obj(&[field("name", 0, Ty::Str)]))]);
const COMMAND: Ty = Ty::OneOf(&[Ty::Str, Ty::List(&Ty::Str, false)]);
const ORDER: Ty = Ty::Enum(&["start-first", "stop-first"]);

const NO_PRIVILEGE: &str =
    "swarm services cannot have it; run such a container outside the stack, or remove the key";

static TOP: Obj = Obj {
    fields: &[
        // Checked by `read_version`.
        field("version", 0, Ty::Any),
        field("services", 0, Ty::Dict(&Ty::Obj(&SERVICE))),
        field("networks", 0, Ty::Dict(&Ty::NullOr(&Ty::Obj(&NETWORK)))),
        field("volumes", 0, Ty::Dict(&Ty::NullOr(&Ty::Obj(&VOLUME)))),
        field("secrets", 1, Ty::Dict(&Ty::Obj(&SECRET))),
        field("configs", 3, Ty::Dict(&Ty::Obj(&CONFIG))),
    ],
    extensions: Some(4),
    required: &[],
};

static SERVICE: Obj = Obj {
    fields: &[
        ignored("build", 0, "`docker stack deploy` builds nothing: build and push the image, and name it in `image:`"),
        field("cap_add", 0, LIST_OF_STRINGS),
        field("cap_drop", 0, LIST_OF_STRINGS),
        ignored("cgroupns_mode", 9, NO_PRIVILEGE),
        ignored("cgroup_parent", 0, NO_PRIVILEGE),
        field("command", 0, COMMAND),
        field("configs", 3, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&FILE_REFERENCE)]), false)),
        harmless("container_name", Ty::Str, "swarm names a service's containers itself (STACK_SERVICE.N.ID); other services reach it by its service name"),
        field("credential_spec", 3, Ty::Obj(&obj(&[
            field("config", 8, Ty::Str),
            field("file", 0, Ty::Str),
            field("registry", 0, Ty::Str),
        ]))),
        harmless("depends_on", LIST_OF_STRINGS, "swarm starts a stack's services in no order; a service that needs another must wait for it (retry, or a healthcheck)"),
        ignored("devices", 0, NO_PRIVILEGE),
        field("deploy", 0, Ty::NullOr(&Ty::Obj(&DEPLOY))),
        field("dns", 0, STRING_OR_LIST),
        field("dns_search", 0, STRING_OR_LIST),
        ignored("domainname", 0, "swarm services cannot set it; remove it"),
        field("entrypoint", 0, COMMAND),
        field("env_file", 0, STRING_OR_LIST),
        field("environment", 0, LIST_OR_DICT),
        harmless("expose", Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Num]), true), "services on a shared network reach every port of each other; `ports:` publishes one outside"),
        ignored("external_links", 0, "services reach each other by service name on a shared network: remove it, and attach both to one network"),
        field("extra_hosts", 0, LIST_OR_DICT),
        field("healthcheck", 0, Ty::Obj(&HEALTHCHECK)),
        field("hostname", 0, Ty::Str),
        field("image", 0, Ty::Str),
        field("init", 7, Ty::Bool),
        ignored("ipc", 0, NO_PRIVILEGE),
        field("isolation", 5, Ty::Str),
        field("labels", 0, LIST_OR_DICT),
        harmless("links", LIST_OF_STRINGS, "services reach each other by service name on a shared network"),
        field("logging", 0, Ty::Obj(&obj(&[
            field("driver", 0, Ty::Str),
            field("options", 0, Ty::Dict(&Ty::StrNumNull)),
        ]))),
        ignored("mac_address", 0, "swarm assigns addresses itself; remove it"),
        ignored("network_mode", 0, "swarm services attach to networks: use `networks:` (an external network `host` for the host's network)"),
        field("networks", 0, Ty::OneOf(&[
            LIST_OF_STRINGS,
            Ty::Dict(&Ty::NullOr(&Ty::Obj(&obj(&[
                field("aliases", 0, LIST_OF_STRINGS),
                ignored("ipv4_address", 0, "swarm assigns addresses on overlay networks itself; remove it"),
                ignored("ipv6_address", 0, "swarm assigns addresses on overlay networks itself; remove it"),
            ])))),
        ])),
        ignored("pid", 0, NO_PRIVILEGE),
        field("ports", 0, Ty::List(&Ty::OneOf(&[Ty::Num, Ty::Str, Ty::Obj(&PORT)]), true)),
        ignored("privileged", 0, NO_PRIVILEGE),
        field("read_only", 0, Ty::Bool),
        Field {
            name: "restart",
            since: 0,
            ty: Ty::Str,
            note: Note::Restart,
        },
        ignored("security_opt", 0, NO_PRIVILEGE),
        ignored("shm_size", 0, "swarm services cannot set it; mount a `tmpfs` volume at /dev/shm instead"),
        field("secrets", 1, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&FILE_REFERENCE)]), false)),
        field("sysctls", 0, LIST_OR_DICT),
        field("stdin_open", 0, Ty::Bool),
        field("stop_grace_period", 0, Ty::Duration),
        field("stop_signal", 0, Ty::Str),
        ignored("tmpfs", 0, "`docker stack deploy` drops it without a word: use a `volumes:` entry with `type: tmpfs`"),
        field("tty", 0, Ty::Bool),
        field("ulimits", 0, Ty::Dict(&Ty::OneOf(&[Ty::Int, Ty::Obj(&Obj {
            fields: &[field("hard", 0, Ty::Int), field("soft", 0, Ty::Int)],
            extensions: None,
            required: &["soft", "hard"],
        })]))),
        field("user", 0, Ty::Str),
        ignored("userns_mode", 0, NO_PRIVILEGE),
        field("volumes", 0, Ty::List(&Ty::OneOf(&[Ty::Str, Ty::Obj(&SERVICE_VOLUME)]), true)),
        field("working_dir", 0, Ty::Str),
        // Not in the schema: the CLI refuses them before it checks the schema.
        refused("extends", "Support for `extends` is not implemented yet."),
        refused("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
        refused("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
        refused("cpu_quota", "Set resource limits using deploy.resources"),
        refused("cpu_shares", "Set resource limits using deploy.resources"),
        refused("cpuset", "Set resource limits using deploy.resources"),
        refused("mem_limit", "Set resource limits using deploy.resources"),
        refused("memswap_limit", "Set resource limits using deploy.resources"),
    ],
    extensions: Some(7),
    required: &[],
};

static FILE_REFERENCE: Obj = obj(&[
    field("source", 0, Ty::Str),
    field("target", 0, Ty::Str),
    field("uid", 0, Ty::Str),
    field("gid", 0, Ty::Str),
    field("mode", 0, Ty::Num),
]);

static PORT: Obj = obj(&[
    field("mode", 0, Ty::Str),
    field("target", 0, Ty::Int),
    field("published", 0, Ty::Int),
    field("protocol", 0, Ty::Str),
]);

static SERVICE_VOLUME: Obj = Obj {
    fields: &[
        field("type", 0, Ty::Str),
        field("source", 0, Ty::Str),
        field("target", 0, Ty::Str),
        field("read_only", 0, Ty::Bool),
        field("consistency", 0, Ty::Str),
        field(
            "bind",
            0,
            Ty::Obj(&obj(&[field("propagation", 0, Ty::Str)])),
        ),
        field("volume", 0, Ty::Obj(&obj(&[field("nocopy", 0, Ty::Bool)]))),
        field("tmpfs", 6, Ty::Obj(&obj(&[field("size", 0, Ty::Int)]))),
    ],
    extensions: None,
    required: &["type"],
};

static HEALTHCHECK: Obj = obj(&[
    field("disable", 0, Ty::Bool),
    field("interval", 0, Ty::Duration),
    field("retries", 0, Ty::Num),
    field("test", 0, COMMAND),
    field("timeout", 0, Ty::Duration),
    field("start_period", 4, Ty::Duration),
]);

static UPDATE_CONFIG: Obj = obj(&[
    field("parallelism", 0, Ty::Int),
    field("delay", 0, Ty::Duration),
    field("failure_action", 0, Ty::Str),
    field("monitor", 0, Ty::Duration),
    field("max_failure_ratio", 0, Ty::Num),
    field("order", 4, ORDER),
]);

static DEPLOY: Obj = obj(&[
    field("mode", 0, Ty::Str),
    field("endpoint_mode", 2, Ty::Str),
    field("replicas", 0, Ty::Int),
    field("labels", 0, LIST_OR_DICT),
    field("rollback_config", 7, Ty::Obj(&UPDATE_CONFIG)),
    field("update_config", 0, Ty::Obj(&UPDATE_CONFIG)),
    field(
        "resources",
        0,
        Ty::Obj(&obj(&[
            field(
                "limits",
                0,
                Ty::Obj(&obj(&[
                    field("cpus", 0, Ty::Str),
                    field("memory", 0, Ty::Str),
                    field("pids", 9, Ty::Int),
                ])),
            ),
            field(
                "reservations",
                0,
                Ty::Obj(&obj(&[
                    field("cpus", 0, Ty::Str),
                    field("memory", 0, Ty::Str),
                    field(
                        "generic_resources",
                        5,
                        Ty::List(
                            &Ty::Obj(&obj(&[field(
                                "discrete_resource_spec",
                                0,
                                Ty::Obj(&obj(&[
                                    field("kind", 0, Ty::Str),
                                    field("value", 0, Ty::Num),
                                ])),
                            )])),
                            false,
                        ),
                    ),
                ])),
            ),
        ])),
    ),
    field(
        "restart_policy",
        0,
        Ty::Obj(&obj(&[
            field("condition", 0, Ty::Str),
            field("delay", 0, Ty::Duration),
            field("max_attempts", 0, Ty::Int),
            field("window", 0, Ty::Duration),
        ])),
    ),
    field(
        "placement",
        0,
        Ty::Obj(&obj(&[
            field("constraints", 0, Ty::List(&Ty::Str, false)),
            field(
                "preferences",
                3,
                Ty::List(&Ty::Obj(&obj(&[field("spread", 0, Ty::Str)])), false),
            ),
            field("max_replicas_per_node", 8, Ty::Int),
        ])),
    ),
]);

static NETWORK: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("driver", 0, Ty::Str),
        field("driver_opts", 0, DRIVER_OPTS),
        field(
            "ipam",
            0,
            Ty::Obj(&obj(&[
                field("driver", 0, Ty::Str),
                field(
                    "config",
                    0,
                    Ty::List(&Ty::Obj(&obj(&[field("subnet", 0, Ty::Str)])), false),
                ),
            ])),
        ),
        field("external", 0, EXTERNAL),
        field("internal", 0, Ty::Bool),
        field("attachable", 2, Ty::Bool),
        field("labels", 0, LIST_OR_DICT),
    ],
    extensions: Some(7),
    required: &[],
};

static VOLUME: Obj = Obj {
    fields: &[
        field("name", 4, Ty::Str),
        field("driver", 0, Ty::Str),
        field("driver_opts", 0, DRIVER_OPTS),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
    ],
    extensions: Some(7),
    required: &[],
};

static SECRET: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("file", 0, Ty::Str),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
        field("driver", 8, Ty::Str),
        field("driver_opts", 8, DRIVER_OPTS),
        field("template_driver", 8, Ty::Str),
    ],
    extensions: Some(7),
    required: &[],
};

static CONFIG: Obj = Obj {
    fields: &[
        field("name", 5, Ty::Str),
        field("file", 0, Ty::Str),
        field("external", 0, EXTERNAL),
        field("labels", 0, LIST_OR_DICT),
        field("template_driver", 8, Ty::Str),
    ],
    extensions: Some(7),
    required: &[],
};

impl Ty {
    fn expected(self) -> String {
        match self {
            Ty::Any => "anything".into(),
            Ty::Str => "a string".into(),
            Ty::Int => "an integer".into(),
            Ty::Num => "a number".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Duration => "a duration such as `10s` or `1m30s`".into(),
            Ty::Enum(words) => format!(
                "one of {}",
                words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::StrNumNull => "a string, a number or null".into(),
            Ty::StrNum => "a string or a number".into(),
            Ty::List(..) => "a list".into(),
            Ty::Dict(_) | Ty::Obj(_) => "a mapping".into(),
            Ty::NullOr(inner) => format!("{} or null", inner.expected()),
            Ty::OneOf(alternatives) => alternatives
                .iter()
                .map(|t| t.expected())
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    /// Whether a value of this kind is meant for this type (which alternative of a
    /// `OneOf` to check it against).
    fn accepts_kind(self, value: &Val) -> bool {
        match (self, value) {
            (Ty::Any, _) => true,
            (Ty::Str | Ty::Duration | Ty::Enum(_), Val::Str(_)) => true,
            (Ty::Int | Ty::Num, Val::Int(_) | Val::UInt(_) | Val::Float(_)) => true,
            (Ty::Bool, Val::Bool(_)) => true,
            (
                Ty::StrNumNull,
                Val::Str(_) | Val::Int(_) | Val::UInt(_) | Val::Float(_) | Val::Null,
            ) => true,
            (Ty::StrNum, Val::Str(_) | Val::Int(_) | Val::UInt(_) | Val::Float(_)) => true,
            (Ty::List(..), Val::Seq(_)) => true,
            (Ty::Dict(_) | Ty::Obj(_), Val::Map(_)) => true,
            (Ty::NullOr(_), Val::Null) => true,
            (Ty::NullOr(inner), other) => inner.accepts_kind(other),
            (Ty::OneOf(alternatives), other) => alternatives.iter().any(|t| t.accepts_kind(other)),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading

/// Top-level networks and volumes by key: the name the CLI gives them in this stack.
#[derive(Debug, Clone)]
struct NamedObject {
    name: String,
    /// What the CLI puts in every mount of a non-external volume (driver, options,
    /// labels), as canonical JSON.
    mount_options: Option<serde_json::Value>,
    /// Span of `external` when the object is one the stack does not create.
    external: Option<Span>,
}

struct Loader<'r, 'a> {
    report: &'r mut Report<'a>,
    dir: &'r Path,
    stack: &'r str,
    /// `3.N` the file is checked as (its own, or the one `render` writes).
    version: u8,
    version_given: bool,
    variables: &'r Variables,
    variables_used: BTreeSet<String>,
}

impl Loader<'_, '_> {
    fn load(&mut self, text: &str) -> Option<Compose> {
        let documents = match parse_documents(text) {
            Ok(documents) => documents,
            Err(e) => {
                let help = e.related.as_ref().map(|(label, span)| {
                    let (line, col) = self.report.file.line_col(span.start);
                    format!("{label} at {line}:{col}")
                });
                self.report.error(
                    e.span,
                    format!("not valid YAML: {}", e.message),
                    "here",
                    help,
                );
                return None;
            }
        };
        let document = match documents.as_slice() {
            [one] => one,
            [] => {
                let end = text.len();
                self.report.error(
                    Span { start: 0, end },
                    "the Compose file is empty",
                    "empty",
                    Some("write `version: \"3.8\"` and `services:`".into()),
                );
                return None;
            }
            [_, second, ..] => {
                self.report.error(
                    second.span,
                    "a Compose file is one YAML document; `docker stack deploy` would ignore this one",
                    "second document",
                    Some("remove the `---` and what follows, or deploy it as another stack".into()),
                );
                return None;
            }
        };
        let (styles, tags) = scalar_styles(text);
        for (span, tag) in tags {
            self.report.error(
                span,
                format!("the YAML tag `{tag}` is not read here"),
                "tag",
                Some("write the value without a tag".into()),
            );
        }
        let mut root = TreeBuilder {
            report: &mut *self.report,
            styles,
        }
        .build(&document.root);
        self.variables_used = variables::interpolate(&mut root, text, self.variables, self.report);
        if !matches!(root.value, Val::Map(_)) {
            self.report.error(
                root.span,
                format!("a Compose file is a mapping, not {}", root.found()),
                "not a mapping",
                Some("write `version: \"3.8\"` and `services:` at the top".into()),
            );
            return None;
        }
        let version = self.read_version(&root);
        for entry in root.entries() {
            if entry.key != "services" {
                self.check_entry(&TOP, entry, "");
            }
        }
        let networks = self.named_objects(root.get("networks"), "network");
        let volumes = self.named_objects(root.get("volumes"), "volume");
        let secrets = self.file_objects(root.get("secrets"), "secret");
        let configs = self.file_objects(root.get("configs"), "config");
        let mut services = BTreeMap::new();
        if let Some(entry) = root.entry("services") {
            if !matches!(entry.value.value, Val::Map(_)) {
                self.check_entry(&TOP, entry, "");
            }
            // Every check runs on every service, whatever was found before: a file with
            // five problems shows five.
            for service in entry.value.entries() {
                self.object_key(service, "service");
                let path = format!("services.{}", service.key);
                self.check(&service.value, Ty::Obj(&SERVICE), &path);
                if !matches!(service.value.value, Val::Map(_)) {
                    continue;
                }
                let defs = Definitions {
                    networks: &networks,
                    volumes: &volumes,
                    secrets: &secrets,
                    configs: &configs,
                };
                if let Some(converted) = self.service(service, &defs) {
                    services.insert(service.key.clone(), converted);
                }
            }
        }
        // The external networks the services use, as `convert.Networks` lists them for
        // `validateExternalNetworks` (which skips Docker's own: host, bridge, none).
        let used: BTreeSet<&String> = services
            .values()
            .flat_map(|s: &ComposeService| &s.spec.networks)
            .collect();
        let external_networks = networks
            .values()
            .filter(|n| used.contains(&n.name))
            .filter(|n| !matches!(n.name.as_str(), "host" | "bridge" | "none" | "default"))
            .filter(|n| !n.name.starts_with("container:"))
            .filter_map(|n| Some((n.name.clone(), n.external?)))
            .collect();
        Some(Compose {
            services,
            secrets,
            configs,
            external_networks,
            warnings: Vec::new(),
            root,
            version,
            stack: self.stack.to_owned(),
            variables_used: std::mem::take(&mut self.variables_used),
        })
    }

    /// The file's `3.N`, which the schema of its keys depends on; `None` when it names none.
    fn read_version(&mut self, root: &Item) -> Option<u8> {
        let item = root.get("version")?;
        let help = Some(format!(
            "write `version: \"3.{DEFAULT_VERSION}\"` (the 20.10 CLI reads \"3.0\" to \"3.{NEWEST_VERSION}\")"
        ));
        let Some(text) = item.str() else {
            let text = item.go_string().unwrap_or_default();
            self.report.error(
                item.span,
                format!("`version` must be a string, not {}", item.found()),
                "not a string",
                Some(format!("quote it: `version: \"{text}\"`")),
            );
            return None;
        };
        let minor = match text.strip_prefix("3") {
            Some("") => Some(0),
            Some(rest) => rest
                .strip_prefix('.')
                .filter(|m| m.len() == 1)
                .and_then(|m| m.parse::<u8>().ok()),
            None => None,
        };
        match minor {
            Some(minor) if minor <= NEWEST_VERSION => {
                self.version = minor;
                self.version_given = true;
                Some(minor)
            }
            _ => {
                self.report.error(
                    item.span,
                    format!(
                        "`docker stack deploy` (20.10) does not read Compose file format `{text}`"
                    ),
                    "unsupported version",
                    help,
                );
                None
            }
        }
    }

    // -- Schema ----------------------------------------------------------------------

    fn check(&mut self, item: &Item, ty: Ty, path: &str) {
        if !ty.accepts_kind(&item.value) {
            self.wrong_type(item, ty, path);
            return;
        }
        match ty {
            Ty::Any | Ty::Str | Ty::Num | Ty::Bool | Ty::StrNum | Ty::StrNumNull => {}
            Ty::Int => {
                if item.int().is_none() {
                    self.wrong_type(item, ty, path);
                }
            }
            Ty::Duration => {
                let text = item.str().unwrap_or_default();
                if crate::duration::parse_go(text).is_none() {
                    self.report.error(
                        item.span,
                        format!("`{path}` is not a duration: `{text}`"),
                        "not a duration",
                        Some("write a number with a unit (ns, us, ms, s, m, h), as in `10s` or `1m30s`".into()),
                    );
                }
            }
            Ty::Enum(words) => {
                let text = item.str().unwrap_or_default();
                if !words.contains(&text) {
                    self.report.error(
                        item.span,
                        format!("`{path}` cannot be `{text}`"),
                        "unknown value",
                        Some(format!("write {}", ty.expected())),
                    );
                }
            }
            Ty::List(inner, unique) => {
                let mut seen: Vec<String> = Vec::new();
                for (index, element) in item.items().iter().enumerate() {
                    self.check(element, *inner, &format!("{path}[{index}]"));
                    if unique {
                        let canonical = element.canonical();
                        if seen.contains(&canonical) {
                            self.report.error(
                                element.span,
                                format!("`{path}` lists this item twice"),
                                "again",
                                Some("remove one of them".into()),
                            );
                        }
                        seen.push(canonical);
                    }
                }
            }
            Ty::Dict(inner) => {
                for entry in item.entries() {
                    self.check(&entry.value, *inner, &format!("{path}.{}", entry.key));
                }
            }
            Ty::Obj(obj) => {
                for entry in item.entries() {
                    self.check_entry(obj, entry, path);
                }
                for required in obj.required {
                    if item.entry(required).is_none() {
                        self.report.error(
                            item.span,
                            format!("`{path}` needs `{required}`"),
                            "incomplete",
                            None,
                        );
                    }
                }
            }
            Ty::NullOr(inner) => {
                if item.value != Val::Null {
                    self.check(item, *inner, path);
                }
            }
            Ty::OneOf(alternatives) => {
                if let Some(alternative) = alternatives.iter().find(|t| t.accepts_kind(&item.value))
                {
                    self.check(item, *alternative, path);
                }
            }
        }
    }

    fn wrong_type(&mut self, item: &Item, ty: Ty, path: &str) {
        let help = match (&item.value, ty.accepts_kind(&Val::Str(String::new()))) {
            (Val::Bool(_), true) => Some(
                "YAML 1.1 (which the CLI reads) takes yes/no/on/off/true/false as booleans: quote the value".to_owned(),
            ),
            (Val::Int(_) | Val::UInt(_) | Val::Float(_), true) => Some("quote the value".to_owned()),
            _ => None,
        };
        self.report.error(
            item.span,
            format!("`{path}` must be {}, not {}", ty.expected(), item.found()),
            "wrong type",
            help,
        );
    }

    /// One key of a mapping with known keys: known (and in the file's version), an
    /// extension, or refused.
    fn check_entry(&mut self, obj: &Obj, entry: &Entry, parent: &str) {
        let path = match parent {
            "" => entry.key.clone(),
            _ => format!("{parent}.{}", entry.key),
        };
        if entry.key.starts_with("x-") {
            match obj.extensions {
                Some(since) => {
                    self.require_version(since, entry, &path);
                }
                None => self.unknown_key(obj, entry, parent),
            }
            return;
        }
        let Some(field) = obj.fields.iter().find(|f| f.name == entry.key) else {
            self.unknown_key(obj, entry, parent);
            return;
        };
        let refusal = match field.note {
            Note::Ignored(help) => Some((
                "ignores `{path}`, which changes what the file means: the service would run without it",
                "ignored by stack deploy",
                help,
            )),
            Note::Refused(help) => Some(("refuses `{path}`", "refused by stack deploy", help)),
            Note::Harmless(why) => {
                self.report.warn(
                    entry.key_span,
                    format!("`docker stack deploy` ignores `{path}`: {why}"),
                );
                None
            }
            Note::Restart | Note::None => None,
        };
        if let Some((what, label, help)) = refusal {
            self.report.error(
                entry.key_span,
                format!("`docker stack deploy` {}", what.replace("{path}", &path)),
                label,
                Some(help.into()),
            );
            return;
        }
        if self.require_version(field.since, entry, &path) {
            self.check(&entry.value, field.ty, &path);
        }
    }

    fn require_version(&mut self, since: u8, entry: &Entry, path: &str) -> bool {
        if since <= self.version {
            return true;
        }
        let this = match self.version_given {
            true => format!("this file is version 3.{}", self.version),
            false => format!("this file names no version, and is deployed as 3.{DEFAULT_VERSION}"),
        };
        self.report.error(
            entry.key_span,
            format!("`{path}` needs Compose file format 3.{since} or later ({this})"),
            "too new for the file's version",
            Some(format!("set `version: \"3.{since}\"` or later (the 20.10 CLI reads up to 3.{NEWEST_VERSION})")),
        );
        false
    }

    fn unknown_key(&mut self, obj: &Obj, entry: &Entry, parent: &str) {
        let known: Vec<&str> = obj
            .fields
            .iter()
            .filter(|f| matches!(f.note, Note::None | Note::Harmless(_) | Note::Restart))
            .filter(|f| f.since <= self.version)
            .map(|f| f.name)
            .collect();
        let place = match parent {
            "" => "at the top of a Compose file".to_owned(),
            _ => format!("in `{parent}`"),
        };
        self.report.error(
            entry.key_span,
            format!("`{}` is not a Compose key {place}", entry.key),
            "unknown key",
            Some(suggestion(&entry.key, &known, "keys")),
        );
    }

    // -- Top-level objects -----------------------------------------------------------

    /// Networks or volumes by key, with the names the CLI gives them.
    fn named_objects(
        &mut self,
        section: Option<&Item>,
        what: &str,
    ) -> BTreeMap<String, NamedObject> {
        let mut objects = BTreeMap::new();
        for entry in section.map(Item::entries).unwrap_or_default() {
            self.object_key(entry, what);
            let definition = &entry.value;
            let (external, external_name) = external_of(definition);
            let name = definition
                .get("name")
                .and_then(Item::str)
                .map(str::to_owned);
            let name = if external {
                if external_name.is_some() && name.is_some() {
                    self.report.error(
                        entry.key_span,
                        format!("{what} `{}` has both `external.name` and `name`", entry.key),
                        "conflicting names",
                        Some("keep `name:` (`external.name` is its deprecated form)".into()),
                    );
                }
                for key in [
                    "driver",
                    "driver_opts",
                    "labels",
                    "ipam",
                    "internal",
                    "attachable",
                ] {
                    if let Some(extra) = definition.entry(key) {
                        self.report.error(
                            extra.key_span,
                            format!("{what} `{}` is external: `{key}` would be ignored (it is not created)", entry.key),
                            "with `external`",
                            Some("remove it, or remove `external` to have the stack create it".into()),
                        );
                    }
                }
                external_name.or(name).unwrap_or_else(|| entry.key.clone())
            } else {
                name.unwrap_or_else(|| format!("{}_{}", self.stack, entry.key))
            };
            let mount_options = (what == "volume" && !external)
                .then(|| {
                    let options: serde_json::Map<String, serde_json::Value> =
                        ["driver", "driver_opts", "labels"]
                            .iter()
                            .filter_map(|k| definition.get(k).map(|v| ((*k).to_owned(), v.json())))
                            .collect();
                    (!options.is_empty()).then_some(serde_json::Value::Object(options))
                })
                .flatten();
            let external = external.then(|| {
                definition
                    .entry("external")
                    .map_or(entry.key_span, |e| e.value.span)
            });
            objects.insert(
                entry.key.clone(),
                NamedObject {
                    name,
                    mount_options,
                    external,
                },
            );
        }
        objects
    }

    /// Secrets or configs by key: a file corral makes an object of, or an existing object.
    fn file_objects(
        &mut self,
        section: Option<&Item>,
        what: &str,
    ) -> BTreeMap<String, ComposeObject> {
        let mut objects = BTreeMap::new();
        for entry in section.map(Item::entries).unwrap_or_default() {
            self.object_key(entry, what);
            let definition = &entry.value;
            if !matches!(definition.value, Val::Map(_)) {
                // The schema check said so.
                continue;
            }
            let (external, external_name) = external_of(definition);
            let name = definition
                .get("name")
                .and_then(Item::str)
                .map(str::to_owned);
            let file = definition.entry("file");
            if external {
                if external_name.is_some() && name.is_some() {
                    self.report.error(
                        entry.key_span,
                        format!("{what} `{}` has both `external.name` and `name`", entry.key),
                        "conflicting names",
                        Some("keep `name:` (`external.name` is its deprecated form)".into()),
                    );
                }
                for key in ["file", "labels", "driver", "driver_opts", "template_driver"] {
                    if let Some(extra) = definition.entry(key) {
                        self.report.error(
                            extra.key_span,
                            format!("{what} `{}` is external: `{key}` would be ignored", entry.key),
                            "with `external`",
                            Some(format!("remove it, or remove `external` to have corral create the {what} from `file:`")),
                        );
                    }
                }
                let span = definition
                    .entry("external")
                    .map_or(entry.key_span, |e| e.value.span);
                let name = external_name.or(name).unwrap_or_else(|| entry.key.clone());
                objects.insert(entry.key.clone(), ComposeObject::External { name, span });
                continue;
            }
            if let Some(given) = definition.entry("name") {
                let shown = given.value.str().unwrap_or_default();
                self.report.warn(
                    given.key_span,
                    format!("{what} `{}`: corral creates it as `{}_{}_<version>` (a new name for each new content, as `docker stack deploy` cannot update one), not `{shown}`; the services refer to it by its key as before", entry.key, self.stack, entry.key),
                );
            }
            let managed = |key: &str| {
                match key {
                "labels" => format!("corral labels the {what}s it creates itself: remove `labels:`"),
                _ => format!("corral creates {what}s from files only: remove `{key}:`, or create the {what} beforehand and declare it `external: true`"),
            }
            };
            for key in ["labels", "driver", "driver_opts", "template_driver"] {
                if let Some(extra) = definition.entry(key) {
                    self.report.error(
                        extra.key_span,
                        format!("corral cannot honour `{key}` of {what} `{}`", entry.key),
                        "not supported",
                        Some(managed(key)),
                    );
                }
            }
            match file.and_then(|f| f.value.str().map(|s| (s, f.value.span))) {
                Some((path, span)) if !path.is_empty() => {
                    objects.insert(
                        entry.key.clone(),
                        ComposeObject::File {
                            path: self.dir.join(path),
                            span,
                        },
                    );
                }
                _ => self.report.error(
                    entry.key_span,
                    format!("{what} `{}` has no `file:`", entry.key),
                    "no content",
                    Some(format!("write `file: PATH` (relative to the Compose file), or `external: true` for an existing {what}")),
                ),
            }
        }
        objects
    }

    fn object_key(&mut self, entry: &Entry, what: &str) {
        if !valid_object_key(&entry.key) {
            self.report.error(
                entry.key_span,
                format!("`{}` cannot be the name of a {what}", entry.key),
                "invalid name",
                Some("Compose names are letters, digits and `._-`".into()),
            );
        }
    }

    // -- Services --------------------------------------------------------------------

    fn service(&mut self, entry: &Entry, defs: &Definitions) -> Option<ComposeService> {
        let before = self.report.count;
        let service = &entry.value;
        let path = format!("services.{}", entry.key);
        let full_name = format!("{}_{}", self.stack, entry.key);
        if !valid_service_name(&full_name) {
            self.report.error(
                entry.key_span,
                format!("the service would be named `{full_name}`, which swarm refuses"),
                "invalid service name",
                Some("swarm service names are letters and digits, with `-` or `_` between them, 63 characters at most (no `.`)".into()),
            );
        }
        let mut spec = SwarmServiceSpec::default();
        let mut opaque = BTreeMap::new();
        match service.get("image").map(|i| i.str()) {
            Some(Some(image)) if !image.trim().is_empty() => spec.image = image.to_owned(),
            // The schema check said what it is instead; `build:` is refused already.
            Some(None) => {}
            None if service.get("build").is_some() => {}
            _ => self.report.error(
                service.get("image").map_or(entry.key_span, |i| i.span),
                format!("service `{}` names no image", entry.key),
                "no image",
                Some("write `image: NAME[:TAG]`: `docker stack deploy` builds nothing".into()),
            ),
        }
        if let Some(command) = service.get("command") {
            spec.command = self.command(command, &path);
        }
        spec.env = self.environment(service, &path);
        spec.networks = self.networks(service, defs, &mut opaque);
        spec.ports = self.ports(service.get("ports"), &path);
        spec.mounts = self.mounts(service.get("volumes"), defs, &mut opaque);
        spec.secrets = self.references(service.get("secrets"), defs.secrets, "secret", &mut opaque);
        spec.configs = self.references(service.get("configs"), defs.configs, "config", &mut opaque);
        if let Some(deploy) = service.get("deploy") {
            self.deploy(deploy, &path, &mut spec, &mut opaque);
        }
        for key in OPAQUE_SERVICE_KEYS {
            if let Some(value) = service.get(key) {
                opaque.insert((*key).to_owned(), value.canonical());
            }
        }
        if let Some(restart) = service.entry("restart") {
            self.restart(restart, service, &path, &mut opaque);
        }
        (self.report.count == before).then_some(ComposeService {
            spec,
            opaque,
            span: entry.key_span,
        })
    }

    /// `restart:` as the 20.10 CLI's `convertRestartPolicy` reads it: ignored when
    /// `deploy.restart_policy` is given, else `always`/`unless-stopped` are `condition: any`
    /// and `on-failure[:N]` is `condition: on-failure` with `max_attempts: N` (0 without N),
    /// kept as the `deploy.restart_policy` it amounts to. `no` is refused: the CLI drops
    /// it, and swarm's default restarts every task that ends.
    fn restart(
        &mut self,
        entry: &Entry,
        service: &Item,
        path: &str,
        opaque: &mut BTreeMap<String, String>,
    ) {
        let Some(text) = entry.value.str() else {
            // The schema check said so.
            return;
        };
        let path = format!("{path}.restart");
        if service
            .get("deploy")
            .and_then(|d| d.get("restart_policy"))
            .is_some()
        {
            self.report.warn(
                entry.key_span,
                format!("`docker stack deploy` ignores `{path}`: `deploy.restart_policy` decides"),
            );
            return;
        }
        // `opts.ParseRestartPolicy`: NAME[:COUNT], COUNT a Go int.
        let parts: Vec<&str> = text.split(':').collect();
        let (name, count) = match parts.as_slice() {
            [name] => (*name, Ok(0)),
            [name, count] => (*name, go_atoi(count).ok_or(())),
            _ => (text, Err(())),
        };
        let help =
            "write `always`, `unless-stopped` or `on-failure[:N]`, or `deploy.restart_policy`";
        let mut refuse = |message: String| {
            self.report.error(
                entry.value.span,
                message,
                "restart policy",
                Some(help.into()),
            )
        };
        let Ok(count) = count else {
            return refuse(format!(
                "`docker stack deploy` refuses `{path}: {text}`: invalid restart policy format, or a maximum retry count that is not an integer"
            ));
        };
        let policy = match name {
            "always" | "unless-stopped" => serde_json::json!({"condition": "any"}),
            "on-failure" if count >= 0 => {
                serde_json::json!({"condition": "on-failure", "max_attempts": count})
            }
            "on-failure" => {
                return refuse(format!(
                    "`{path}: {text}`: a negative retry count, which the 20.10 CLI turns into {} attempts",
                    count as u64
                ))
            }
            "no" | "" => {
                self.report.error(
                    entry.value.span,
                    format!("`docker stack deploy` ignores `{path}: \"{text}\"`, which changes what the file means: swarm restarts every task that ends unless told otherwise"),
                    "ignored by stack deploy",
                    Some("write `deploy: {restart_policy: {condition: none}}` for tasks that run once".into()),
                );
                return;
            }
            _ => return refuse(format!("`docker stack deploy` refuses `{path}`: unknown restart policy: {text}")),
        };
        let shown = match name {
            "on-failure" => format!("`condition: on-failure`, `max_attempts: {count}`"),
            _ => "`condition: any`".to_owned(),
        };
        self.report.warn(
            entry.key_span,
            format!("`docker stack deploy` converts `{path}: {text}` to `deploy.restart_policy` {shown}, as it would run the service anyway"),
        );
        opaque
            .entry("deploy.restart_policy".into())
            .or_insert_with(|| policy.to_string());
    }

    fn command(&mut self, command: &Item, path: &str) -> Vec<String> {
        match &command.value {
            Val::Str(text) => match split_command(text) {
                Ok(words) => words,
                Err(why) => {
                    self.report.error(
                        command.span,
                        format!("`{path}.command` cannot be split into arguments: {why}"),
                        "unbalanced",
                        Some("the CLI splits a string command like a shell (quotes, `\\`); or write a list".into()),
                    );
                    Vec::new()
                }
            },
            _ => command.items().iter().filter_map(Item::go_string).collect(),
        }
    }

    /// `env_file:` files, then `environment:` over them, as the CLI merges them.
    ///
    /// One thing the file alone cannot decide: the CLI replaces an empty value (`KEY=`,
    /// `KEY: ""`) with the deploying shell's variable of that name when it has one; an
    /// empty value is empty only if `docker stack deploy` runs in a clean environment.
    fn environment(&mut self, service: &Item, path: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(files) = service.get("env_file") {
            let files: Vec<&Item> = match &files.value {
                Val::Str(_) => vec![files],
                _ => files.items().iter().collect(),
            };
            for file in files {
                let name = file.str().unwrap_or_default();
                if let Some(bytes) = self.read_env_file(name, file.span) {
                    self.env_file(&bytes, name, file.span, &mut env);
                }
            }
        }
        let no_value = |report: &mut Report, span, key: &str| {
            report.error(
                span,
                format!("`{key}` has no value: `docker stack deploy` would take it from the environment of the shell that deploys"),
                "no value",
                Some(format!("write the value: `{key}=VALUE` (an empty value is `{key}=`)")),
            )
        };
        let Some(environment) = service.get("environment") else {
            return env;
        };
        match &environment.value {
            Val::Map(entries) => {
                for entry in entries {
                    match entry.value.go_string() {
                        Some(value) => {
                            self.env_key(&entry.key, entry.key_span, path);
                            env.insert(entry.key.clone(), value);
                        }
                        None => no_value(self.report, entry.key_span, &entry.key),
                    }
                }
            }
            _ => {
                for item in environment.items() {
                    let text = item.str().unwrap_or_default();
                    match text.split_once('=') {
                        Some((key, value)) => {
                            self.env_key(key, item.span, path);
                            env.insert(key.to_owned(), value.to_owned());
                        }
                        None => no_value(self.report, item.span, text),
                    }
                }
            }
        }
        env
    }

    /// An env file's bytes. Its values are shown in plans (and CI logs), so it must be a
    /// regular file under the Compose file's directory, links resolved: a file under
    /// review must not put the reviewer's files (`/proc/self/environ`) into a plan.
    fn read_env_file(&mut self, name: &str, span: Span) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let help = Some(
            "env files are read relative to the Compose file, and must be under its directory"
                .to_owned(),
        );
        let resolved = match path.canonicalize() {
            Ok(resolved) => resolved,
            Err(e) => {
                self.report.error(
                    span,
                    format!("cannot read the env file `{}`: {e}", path.display()),
                    "this file",
                    help,
                );
                return None;
            }
        };
        let inside = self
            .dir
            .canonicalize()
            .is_ok_and(|dir| resolved.starts_with(dir));
        if !inside || !resolved.is_file() {
            let why = match inside {
                false => "is outside the Compose file's directory",
                true => "is not a regular file",
            };
            self.report.error(
                span,
                format!("the env file `{}` {why}", resolved.display()),
                "this file",
                help,
            );
            return None;
        }
        match std::fs::read(&resolved) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.report.error(
                    span,
                    format!("cannot read the env file `{}`: {e}", path.display()),
                    "this file",
                    help,
                );
                None
            }
        }
    }

    fn env_key(&mut self, key: &str, span: Span, path: &str) {
        if key.is_empty() || key.contains('=') {
            self.report.error(
                span,
                format!("`{key}` cannot be a variable of `{path}.environment`"),
                "invalid name",
                Some("a variable's name is not empty and has no `=`".into()),
            );
        }
    }

    /// An env file as the CLI reads it (`opts.ParseEnvFile`): `KEY=VALUE` lines, the value
    /// verbatim (quotes and trailing spaces included), `#` comments, leading spaces dropped.
    fn env_file(
        &mut self,
        bytes: &[u8],
        name: &str,
        span: Span,
        env: &mut BTreeMap<String, String>,
    ) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (index, line) in lines.into_iter().enumerate() {
            let number = index + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Ok(line) = std::str::from_utf8(line) else {
                self.report.error(
                    span,
                    format!("the env file `{name}` is not UTF-8 at line {number}"),
                    "this file",
                    None,
                );
                continue;
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (variable, value) = match line.split_once('=') {
                Some((variable, value)) => (variable, Some(value)),
                None => (line, None),
            };
            let variable = variable.trim_start_matches([' ', '\t']);
            let problem = if variable.contains([' ', '\t']) {
                Some(format!("the variable `{variable}` contains whitespace"))
            } else if variable.is_empty() {
                Some("a line has no variable name".to_owned())
            } else if value.is_none() {
                Some(format!("`{variable}` has no value: `docker stack deploy` would take it from the environment of the shell that deploys"))
            } else if value.is_some_and(|v| v.contains('\0')) {
                Some(format!("the value of `{variable}` holds a NUL byte"))
            } else {
                None
            };
            match (problem, value) {
                (Some(problem), _) => self.report.error(
                    span,
                    format!("env file `{name}`, line {number}: {problem}"),
                    "this file",
                    Some("write `KEY=VALUE` lines (an empty value is `KEY=`)".into()),
                ),
                (None, Some(value)) => {
                    env.insert(variable.to_owned(), value.to_owned());
                }
                (None, None) => {}
            }
        }
    }

    /// The networks' names, sorted as the CLI sorts them; `default` when none is listed.
    fn networks(
        &mut self,
        service: &Item,
        defs: &Definitions,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<String> {
        let listed: Vec<(String, Span, Option<&Item>)> = match service.get("networks") {
            None => Vec::new(),
            Some(networks) => match &networks.value {
                Val::Map(entries) => entries
                    .iter()
                    .map(|e| (e.key.clone(), e.key_span, Some(&e.value)))
                    .collect(),
                _ => networks
                    .items()
                    .iter()
                    .map(|i| (i.str().unwrap_or_default().to_owned(), i.span, None))
                    .collect(),
            },
        };
        if listed.is_empty() {
            return vec![defs.network_name(self.stack, "default")];
        }
        let mut names = BTreeSet::new();
        for (key, span, settings) in listed {
            if key != "default" && !defs.networks.contains_key(&key) {
                let known: Vec<&str> = defs.networks.keys().map(String::as_str).collect();
                self.report.error(
                    span,
                    format!("the network `{key}` is not declared under the top-level `networks:`"),
                    "undefined network",
                    Some(match known.is_empty() {
                        true => format!("declare it: `networks: {{{key}: {{}}}}`"),
                        false => suggestion(&key, &known, "networks"),
                    }),
                );
                continue;
            }
            if let Some(aliases) = settings.and_then(|s| s.get("aliases")) {
                opaque.insert(format!("networks.{key}.aliases"), aliases.canonical());
            }
            names.insert(defs.network_name(self.stack, &key));
        }
        names.into_iter().collect()
    }

    fn ports(&mut self, ports: Option<&Item>, path: &str) -> Vec<Port> {
        let mut out: Vec<Port> = Vec::new();
        let mut written: Vec<String> = Vec::new();
        for item in ports.map(Item::items).unwrap_or_default() {
            // The same entry twice: the schema check said so (`uniqueItems`).
            let canonical = item.canonical();
            if written.contains(&canonical) {
                continue;
            }
            written.push(canonical);
            let port = match &item.value {
                Val::Map(_) => self.long_port(item),
                _ => match item.go_string() {
                    Some(text) => self.short_port(&text, item.span),
                    None => None,
                },
            };
            let Some(port) = port else {
                continue;
            };
            if port.published != 0
                && out
                    .iter()
                    .any(|p| p.published == port.published && p.protocol == port.protocol)
            {
                self.report.error(
                    item.span,
                    format!(
                        "`{path}.ports` publishes {}/{} twice",
                        port.published,
                        protocol_word(port.protocol)
                    ),
                    "again",
                    None,
                );
                continue;
            }
            out.push(port);
        }
        // The CLI sorts by published port (stable).
        out.sort_by_key(|p| p.published);
        out
    }

    /// `[IP:]PUBLISHED:TARGET[/PROTOCOL]`, as `nat.ParsePortSpec` reads it.
    fn short_port(&mut self, text: &str, span: Span) -> Option<Port> {
        let mut error = |message: String, help: &str| {
            self.report
                .error(span, message, "this port", Some(help.to_owned()));
            None
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (ip, published, target) = match parts.as_slice() {
            [target] => ("".to_owned(), "", *target),
            [published, target] => ("".to_owned(), *published, *target),
            [ip, published, target] => ((*ip).to_owned(), *published, *target),
            [ip @ .., published, target] => (ip.join(":"), *published, *target),
            [] => {
                return error(
                    format!("`{text}` is not a port"),
                    "write `PUBLISHED:TARGET`, e.g. `8080:80`",
                )
            }
        };
        let (target, protocol) = match target.split('/').collect::<Vec<_>>().as_slice() {
            [port] => (*port, "tcp"),
            [port, ""] => (*port, "tcp"),
            [port, protocol, ..] => (*port, *protocol),
            [] => (target, "tcp"),
        };
        if !ip.is_empty() {
            return error(
                format!("`{text}` names an address: `docker stack deploy` ignores it and publishes on every address"),
                "remove the address (a swarm port is published on all of a node's addresses)",
            );
        }
        if target.contains('-') || published.contains('-') {
            return error(
                format!("`{text}` is a range of ports, which corral does not handle"),
                "write one entry per port",
            );
        }
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return error(
                    format!("`{text}`: corral does not handle the protocol `{other}`"),
                    "use tcp or udp",
                )
            }
        };
        // No published port: swarm assigns one (from 30000) when the service is created.
        let published = match published {
            "" => Some(0),
            _ => port_number(published),
        };
        let (Some(published), Some(target)) = (published, port_number(target)) else {
            return error(
                format!("`{text}` is not a port mapping"),
                "ports are numbers from 1 to 65535, as in `8080:80`",
            );
        };
        Some(Port {
            published,
            target,
            mode: PublishMode::Ingress,
            protocol,
        })
    }

    fn long_port(&mut self, item: &Item) -> Option<Port> {
        let number = |key: &str| item.get(key).and_then(Item::int);
        let target = number("target");
        let mut ok = true;
        let mut port_of = |value: Option<i128>, key: &str| match value
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v > 0)
        {
            Some(port) => port,
            None => {
                let span = item.get(key).map_or(item.span, |v| v.span);
                self.report.error(
                    span,
                    format!("`{key}` must be a port, from 1 to 65535"),
                    "not a port",
                    None,
                );
                ok = false;
                0
            }
        };
        // No published port: swarm assigns one when the service is created.
        let published = match item.get("published") {
            None => 0,
            Some(_) => port_of(number("published"), "published"),
        };
        let target = port_of(target, "target");
        let protocol = match item.get("protocol").and_then(Item::str) {
            None | Some("tcp") => Protocol::Tcp,
            Some("udp") => Protocol::Udp,
            Some(other) => {
                self.report.error(
                    item.get("protocol").map_or(item.span, |p| p.span),
                    format!("corral does not handle the protocol `{other}`"),
                    "protocol",
                    Some("write `tcp` or `udp`".into()),
                );
                return None;
            }
        };
        let mode = match item.get("mode").and_then(Item::str) {
            None | Some("ingress") => PublishMode::Ingress,
            Some("host") => PublishMode::Host,
            Some(other) => {
                self.report.error(
                    item.get("mode").map_or(item.span, |p| p.span),
                    format!("`{other}` is not a publish mode"),
                    "mode",
                    Some("write `ingress` (the routing mesh) or `host`".into()),
                );
                return None;
            }
        };
        ok.then_some(Port {
            published,
            target,
            mode,
            protocol,
        })
    }

    fn mounts(
        &mut self,
        volumes: Option<&Item>,
        defs: &Definitions,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<ServiceMount> {
        let mut mounts: Vec<ServiceMount> = Vec::new();
        let mut targets = BTreeSet::new();
        let mut written: Vec<String> = Vec::new();
        for item in volumes.map(Item::items).unwrap_or_default() {
            // The same entry twice: the schema check said so (`uniqueItems`).
            let canonical = item.canonical();
            if written.contains(&canonical) {
                continue;
            }
            written.push(canonical);
            let volume = match &item.value {
                Val::Str(spec) => self.short_volume(spec, item.span),
                _ => self.long_volume(item),
            };
            let Some(volume) = volume else {
                continue;
            };
            if !volume.target.starts_with('/') {
                self.report.error(
                    item.span,
                    format!(
                        "the mount target `{}` is not an absolute path",
                        volume.target
                    ),
                    "relative target",
                    Some("write the path in the container from `/`".into()),
                );
                continue;
            }
            if !targets.insert(volume.target.clone()) {
                self.report.error(
                    item.span,
                    format!("`{}` is mounted twice", volume.target),
                    "again",
                    None,
                );
                continue;
            }
            let mut options = volume.options.clone();
            let kind = match volume.kind.as_str() {
                "bind" => {
                    if !volume.source.starts_with('/') {
                        let help = match volume.source.starts_with('~') {
                            true => "write the absolute path on the nodes (`~` is the home of whoever deploys)",
                            false => "write the absolute path on the nodes: the CLI resolves a relative one on the manager that deploys",
                        };
                        self.report.error(
                            item.span,
                            format!(
                                "the bind mount source `{}` is not an absolute path",
                                volume.source
                            ),
                            "relative source",
                            Some(help.into()),
                        );
                        continue;
                    }
                    MountKind::Bind
                }
                "volume" => MountKind::Volume,
                "tmpfs" => {
                    options.insert("type".into(), "tmpfs".into());
                    options.insert("read_only".into(), volume.read_only.into());
                    opaque.insert(
                        format!("volumes.{}", volume.target),
                        serde_json::Value::Object(options).to_string(),
                    );
                    continue;
                }
                // No `type`: the schema check said so.
                "" => continue,
                other => {
                    let help = match other {
                        "npipe" => "named pipes are Windows'; corral deploys to Linux nodes",
                        _ => "write `volume`, `bind` or `tmpfs`",
                    };
                    self.report.error(
                        item.span,
                        format!("corral does not handle mounts of type `{other}`"),
                        "mount type",
                        Some(help.into()),
                    );
                    continue;
                }
            };
            let mut source = volume.source.clone();
            if kind == MountKind::Volume && !source.is_empty() {
                match defs.volumes.get(&source) {
                    Some(named) => {
                        if let Some(definition) = &named.mount_options {
                            options.insert("definition".into(), definition.clone());
                        }
                        source = named.name.clone();
                    }
                    None => {
                        let known: Vec<&str> = defs.volumes.keys().map(String::as_str).collect();
                        self.report.error(
                            item.span,
                            format!("the volume `{source}` is not declared under the top-level `volumes:`"),
                            "undefined volume",
                            Some(match known.is_empty() {
                                true => format!("declare it: `volumes: {{{source}: {{}}}}`"),
                                false => suggestion(&source, &known, "volumes"),
                            }),
                        );
                        continue;
                    }
                }
            }
            if !options.is_empty() {
                opaque.insert(
                    format!("volumes.{}", volume.target),
                    serde_json::Value::Object(options).to_string(),
                );
            }
            mounts.push(ServiceMount {
                kind,
                source,
                target: volume.target,
                readonly: volume.read_only,
            });
        }
        mounts
    }

    /// `SOURCE:TARGET[:OPTIONS]` or `TARGET`, as the CLI's `ParseVolume` reads it.
    fn short_volume(&mut self, spec: &str, span: Span) -> Option<VolumeSpec> {
        let mut error = |message: String| {
            self.report.error(
                span,
                message,
                "this volume",
                Some("write `SOURCE:TARGET[:ro]`, where SOURCE is a volume's key or an absolute path".into()),
            );
            None
        };
        let mut volume = VolumeSpec::default();
        let mut options = None;
        if spec.is_empty() {
            return error("an empty volume".into());
        }
        // Go counts bytes here.
        if spec.len() <= 2 {
            volume.target = spec.to_owned();
        } else {
            let mut buffer = String::new();
            for c in spec.chars().map(Some).chain([None]) {
                let windows_drive = c == Some(':')
                    && buffer.chars().count() == 1
                    && buffer.chars().all(char::is_alphabetic);
                match c {
                    Some(':') if !windows_drive => {}
                    None => {}
                    Some(c) => {
                        buffer.push(c);
                        continue;
                    }
                }
                let part = std::mem::take(&mut buffer);
                if part.is_empty() {
                    return error(format!("`{spec}` has an empty part between colons"));
                }
                if volume.source.is_empty() && c.is_none() {
                    volume.target = part;
                } else if volume.source.is_empty() {
                    volume.source = part;
                } else if volume.target.is_empty() {
                    volume.target = part;
                } else if c.is_some() {
                    return error(format!("`{spec}` has too many colons"));
                } else {
                    options = Some(part);
                }
            }
        }
        volume.kind = match volume.source.chars().next() {
            None => "volume",
            Some('.' | '/' | '~') => "bind",
            Some(_) if volume.source.starts_with("\\\\") => "bind",
            Some(first) if first.is_alphabetic() && volume.source.chars().nth(1) == Some(':') => {
                "bind"
            }
            Some(_) => "volume",
        }
        .to_owned();
        for option in options.iter().flat_map(|o| o.split(',')) {
            match option {
                "ro" => volume.read_only = true,
                "rw" => volume.read_only = false,
                "nocopy" => {
                    volume.options.insert("nocopy".into(), true.into());
                }
                _ if PROPAGATIONS.contains(&option) => {
                    volume.options.insert("propagation".into(), option.into());
                }
                _ => {
                    return error(format!(
                        "`{spec}`: `docker stack deploy` ignores the option `{option}`"
                    ))
                }
            }
        }
        self.volume_options(&volume, span)?;
        Some(volume)
    }

    fn long_volume(&mut self, item: &Item) -> Option<VolumeSpec> {
        let text = |key: &str| {
            item.get(key)
                .and_then(Item::str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut volume = VolumeSpec {
            kind: text("type"),
            source: text("source"),
            target: text("target"),
            read_only: item.get("read_only").and_then(Item::bool).unwrap_or(false),
            options: serde_json::Map::new(),
        };
        if let Some(consistency) = item
            .get("consistency")
            .and_then(Item::str)
            .filter(|c| !c.is_empty())
        {
            volume
                .options
                .insert("consistency".into(), consistency.into());
        }
        if let Some(bind) = item.get("bind") {
            let propagation = bind
                .get("propagation")
                .and_then(Item::str)
                .unwrap_or_default();
            if !propagation.is_empty() && !PROPAGATIONS.contains(&propagation) {
                self.report.error(
                    bind.span,
                    format!("`{propagation}` is not a bind propagation"),
                    "propagation",
                    Some(format!("write one of {}", PROPAGATIONS.join(", "))),
                );
                return None;
            }
            volume
                .options
                .insert("propagation".into(), propagation.into());
        }
        if let Some(options) = item.get("volume") {
            volume.options.insert(
                "nocopy".into(),
                options
                    .get("nocopy")
                    .and_then(Item::bool)
                    .unwrap_or(false)
                    .into(),
            );
        }
        if let Some(tmpfs) = item.get("tmpfs") {
            let size = tmpfs.get("size").and_then(Item::int).unwrap_or(0);
            if size < 0 || size > i128::from(i64::MAX) {
                self.report.error(
                    tmpfs.span,
                    "a tmpfs size is a number of bytes",
                    "size",
                    None,
                );
                return None;
            }
            volume
                .options
                .insert("size".into(), serde_json::Value::from(size as i64));
        }
        if volume.target.is_empty() {
            self.report
                .error(item.span, "this mount has no `target`", "no target", None);
            return None;
        }
        self.volume_options(&volume, item.span)?;
        Some(volume)
    }

    /// What the CLI refuses to combine (`convert/volume.go`).
    fn volume_options(&mut self, volume: &VolumeSpec, span: Span) -> Option<()> {
        let has = |key: &str| volume.options.contains_key(key);
        let conflict = match volume.kind.as_str() {
            "volume" if has("propagation") => {
                Some("bind options are incompatible with type volume")
            }
            "volume" if has("size") => Some("tmpfs options are incompatible with type volume"),
            "bind" if has("nocopy") => Some("volume options are incompatible with type bind"),
            "bind" if has("size") => Some("tmpfs options are incompatible with type bind"),
            "bind" if volume.source.is_empty() => Some("a bind mount needs a source"),
            "tmpfs" if !volume.source.is_empty() => Some("a tmpfs mount has no source"),
            "tmpfs" if has("propagation") => Some("bind options are incompatible with type tmpfs"),
            "tmpfs" if has("nocopy") => Some("volume options are incompatible with type tmpfs"),
            _ => None,
        };
        match conflict {
            Some(why) => {
                self.report.error(
                    span,
                    format!("`docker stack deploy` refuses this mount: {why}"),
                    "this mount",
                    None,
                );
                None
            }
            None => Some(()),
        }
    }

    /// A service's `secrets:` or `configs:`: the top-level key, and the file in the
    /// container the CLI names (the key when no target is given).
    fn references(
        &mut self,
        list: Option<&Item>,
        objects: &BTreeMap<String, ComposeObject>,
        what: &str,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<ObjectRef> {
        let mut references: Vec<ObjectRef> = Vec::new();
        for item in list.map(Item::items).unwrap_or_default() {
            let source = match &item.value {
                Val::Str(source) => source.clone(),
                _ => item
                    .get("source")
                    .and_then(Item::str)
                    .unwrap_or_default()
                    .to_owned(),
            };
            if !objects.contains_key(&source) {
                let known: Vec<&str> = objects.keys().map(String::as_str).collect();
                self.report.error(
                    item.span,
                    format!("the {what} `{source}` is not declared under the top-level `{what}s:`"),
                    &format!("undefined {what}"),
                    Some(match known.is_empty() {
                        true => format!("declare it: `{what}s: {{{source}: {{file: PATH}}}}`"),
                        false => suggestion(&source, &known, &format!("{what}s")),
                    }),
                );
                continue;
            }
            let target = item
                .get("target")
                .and_then(Item::str)
                .filter(|t| !t.is_empty())
                .unwrap_or(&source)
                .to_owned();
            if references
                .iter()
                .any(|r| r.target.as_deref() == Some(target.as_str()))
            {
                self.report.error(
                    item.span,
                    format!("two {what}s would be the file `{target}`"),
                    "same target",
                    Some("give one of them another `target:`".into()),
                );
                continue;
            }
            // uid, gid and mode are filled in by the CLI (0, 0, 0444): only others are
            // worth showing.
            let uid = item
                .get("uid")
                .and_then(Item::str)
                .filter(|s| !s.is_empty())
                .unwrap_or("0");
            let gid = item
                .get("gid")
                .and_then(Item::str)
                .filter(|s| !s.is_empty())
                .unwrap_or("0");
            let mode = match item.get("mode") {
                None => Some(0o444),
                Some(mode) => mode.int().and_then(|m| u32::try_from(m).ok()),
            };
            let Some(mode) = mode else {
                let span = item.get("mode").map_or(item.span, |m| m.span);
                self.report.error(
                    span,
                    "a file mode is a whole number, such as 0440",
                    "not a mode",
                    None,
                );
                continue;
            };
            if (uid, gid, mode) != ("0", "0", 0o444) {
                let value = serde_json::json!({"uid": uid, "gid": gid, "mode": mode});
                opaque.insert(format!("{what}s.{source}"), value.to_string());
            }
            references.push(ObjectRef {
                source,
                target: Some(target),
            });
        }
        references.sort_by(|a, b| a.source.cmp(&b.source));
        references
    }

    fn deploy(
        &mut self,
        deploy: &Item,
        path: &str,
        spec: &mut SwarmServiceSpec,
        opaque: &mut BTreeMap<String, String>,
    ) {
        let mode = deploy.get("mode");
        spec.mode = match mode.and_then(Item::str).unwrap_or_default() {
            "" | "replicated" => Mode::Replicated,
            "global" => Mode::Global,
            other => {
                self.report.error(
                    mode.map_or(deploy.span, |m| m.span),
                    format!("`{other}` is not a mode `docker stack deploy` (20.10) knows"),
                    "unknown mode",
                    Some("write `replicated` (the default) or `global`".into()),
                );
                Mode::Replicated
            }
        };
        if let Some(replicas) = deploy.get("replicas") {
            if spec.mode == Mode::Global {
                self.report.error(
                    replicas.span,
                    "`replicas` is for replicated services: a global service runs one task on every eligible node",
                    "with `mode: global`",
                    Some("remove `replicas`, or the `mode: global`".into()),
                );
            }
            match replicas.int().map(u32::try_from) {
                Some(Ok(count)) => spec.replicas = Some(count),
                // Not an integer: the schema check said so.
                None => {}
                Some(Err(_)) => self.report.error(
                    replicas.span,
                    "`replicas` is a number of tasks, from 0",
                    "not a count",
                    None,
                ),
            }
        }
        if let Some(labels) = deploy.get("labels") {
            spec.labels = self.labels(labels, &format!("{path}.deploy.labels"));
        }
        if let Some(placement) = deploy.get("placement") {
            for constraint in placement
                .get("constraints")
                .map(Item::items)
                .unwrap_or_default()
            {
                let text = constraint.str().unwrap_or_default();
                if !crate::kinds::docker_values::valid_constraint(text) {
                    self.report.error(
                        constraint.span,
                        format!("`{text}` is not a placement constraint"),
                        "not a constraint",
                        Some("write `ATTRIBUTE==VALUE` or `ATTRIBUTE!=VALUE`, e.g. `node.labels.tier==front` or `node.role==manager`".into()),
                    );
                    continue;
                }
                spec.constraints.push(text.to_owned());
            }
            for preference in placement
                .get("preferences")
                .map(Item::items)
                .unwrap_or_default()
            {
                match preference
                    .get("spread")
                    .and_then(Item::str)
                    .filter(|s| !s.is_empty())
                {
                    Some(spread) => spec.placement_preferences.push(format!("spread={spread}")),
                    None => self.report.error(
                        preference.span,
                        "a placement preference needs `spread:`",
                        "no spread",
                        Some("write `spread: node.labels.KEY`".into()),
                    ),
                }
            }
            if let Some(max) = placement.get("max_replicas_per_node") {
                opaque.insert(
                    "deploy.placement.max_replicas_per_node".into(),
                    max.canonical(),
                );
            }
        }
        if let Some(update) = deploy.get("update_config") {
            spec.update = self.update_policy(update, opaque);
        }
        for key in OPAQUE_DEPLOY_KEYS {
            if let Some(value) = deploy.get(key) {
                opaque.insert(format!("deploy.{key}"), value.canonical());
            }
        }
    }

    /// Labels as the CLI reads them: `KEY=VALUE` or `KEY` (an empty value) in a list,
    /// numbers printed as Go prints them, null an empty value.
    fn labels(&mut self, labels: &Item, path: &str) -> BTreeMap<String, String> {
        let pairs: Vec<(String, String, Span)> = match &labels.value {
            Val::Map(entries) => entries
                .iter()
                .map(|e| {
                    (
                        e.key.clone(),
                        e.value.go_string().unwrap_or_default(),
                        e.key_span,
                    )
                })
                .collect(),
            _ => labels
                .items()
                .iter()
                .map(|i| {
                    let text = i.str().unwrap_or_default();
                    let (key, value) = text.split_once('=').unwrap_or((text, ""));
                    (key.to_owned(), value.to_owned(), i.span)
                })
                .collect(),
        };
        let mut out = BTreeMap::new();
        for (key, value, span) in pairs {
            if key.is_empty()
                || key.starts_with("io.corral.")
                || key.starts_with("com.docker.stack.")
            {
                self.report.error(
                    span,
                    format!("`{key}` cannot be a label of `{path}`"),
                    "reserved label",
                    Some(
                        "`com.docker.stack.*` labels are the CLI's, and `io.corral.*` corral's"
                            .into(),
                    ),
                );
                continue;
            }
            out.insert(key, value);
        }
        out
    }

    fn update_policy(
        &mut self,
        update: &Item,
        opaque: &mut BTreeMap<String, String>,
    ) -> UpdatePolicy {
        let mut policy = UpdatePolicy::default();
        if let Some(parallelism) = update.get("parallelism") {
            match parallelism.int().and_then(|p| u32::try_from(p).ok()) {
                Some(p) => policy.parallelism = Some(p),
                None => self.report.error(
                    parallelism.span,
                    "`parallelism` is a number of tasks, from 0",
                    "not a count",
                    None,
                ),
            }
        }
        let mut duration = |key: &str| -> Option<DockerDuration> {
            let item = update.get(key)?;
            let nanos = crate::duration::parse_go(item.str()?)?;
            if nanos < 0 {
                self.report.error(
                    item.span,
                    format!("`{key}` cannot be negative"),
                    "negative",
                    None,
                );
                return None;
            }
            // Zero is the default in Docker's eyes (a monitor of 0 is 5 s).
            (nanos > 0)
                .then(|| DockerDuration::parse(&format!("{nanos}ns")).ok())
                .flatten()
        };
        policy.delay = duration("delay");
        policy.monitor = duration("monitor");
        let action = update.get("failure_action");
        policy.failure_action = match action.and_then(Item::str).unwrap_or_default() {
            "" => None,
            "pause" => Some(FailureAction::Pause),
            "continue" => Some(FailureAction::Continue),
            "rollback" => Some(FailureAction::Rollback),
            other => {
                self.report.error(
                    action.map_or(update.span, |a| a.span),
                    format!("`{other}` is not a failure action"),
                    "unknown action",
                    Some("write `pause`, `continue` or `rollback`".into()),
                );
                None
            }
        };
        policy.order = match update.get("order").and_then(Item::str) {
            Some("start-first") => Some(UpdateOrder::StartFirst),
            Some("stop-first") => Some(UpdateOrder::StopFirst),
            _ => None,
        };
        if let Some(ratio) = update.get("max_failure_ratio") {
            opaque.insert(
                "deploy.update_config.max_failure_ratio".into(),
                ratio.canonical(),
            );
        }
        policy
    }
}

/// Service keys passed through as they are (see [`ComposeService::opaque`]).
const OPAQUE_SERVICE_KEYS: &[&str] = &[
    "cap_add",
    "cap_drop",
    "credential_spec",
    "dns",
    "dns_search",
    "entrypoint",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "init",
    "isolation",
    "labels",
    "logging",
    "read_only",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tty",
    "ulimits",
    "user",
    "working_dir",
];

const OPAQUE_DEPLOY_KEYS: &[&str] = &[
    "endpoint_mode",
    "resources",
    "restart_policy",
    "rollback_config",
];

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// One entry of a service's `volumes:`, short or long, before names are resolved.
#[derive(Debug, Default)]
struct VolumeSpec {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    /// What a mount has beyond kind, source, target and read-only (opaque).
    options: serde_json::Map<String, serde_json::Value>,
}

/// The top-level objects services refer to.
struct Definitions<'d> {
    networks: &'d BTreeMap<String, NamedObject>,
    volumes: &'d BTreeMap<String, NamedObject>,
    secrets: &'d BTreeMap<String, ComposeObject>,
    configs: &'d BTreeMap<String, ComposeObject>,
}

impl Definitions<'_> {
    fn network_name(&self, stack: &str, key: &str) -> String {
        match self.networks.get(key) {
            Some(network) => network.name.clone(),
            None => format!("{stack}_{key}"),
        }
    }
}

/// `external:` of a definition: whether it is external, and `external.name` if given.
fn external_of(definition: &Item) -> (bool, Option<String>) {
    match definition.get("external") {
        Some(Item {
            value: Val::Bool(external),
            ..
        }) => (*external, None),
        Some(
            external @ Item {
                value: Val::Map(_), ..
            },
        ) => (
            true,
            external.get("name").and_then(Item::str).map(str::to_owned),
        ),
        _ => (false, None),
    }
}

fn protocol_word(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A port from 1 to 65535, written in decimal digits (`strconv.ParseUint(_, 10, 16)`).
fn port_number(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

/// Compose's names of services, networks, volumes, secrets and configs: `^[a-zA-Z0-9._-]+$`.
fn valid_object_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// swarmkit's service names: `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most 63 characters.
fn valid_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

// ---------------------------------------------------------------------------------------
// Rendering for the deploy

impl Compose {
    /// The file to give `docker stack deploy -c -` (JSON is YAML), with: `version: "3.8"` if
    /// the file has none; every top-level secret/config replaced by an external reference
    /// to `NAME`, where `objects` maps (is_secret, key) → the versioned object name corral
    /// created (an entry it lacks keeps the name the file gives it); `extra_labels` added
    /// to every service's `deploy.labels`; `env_file` inlined into `environment` (the CLI
    /// would read those files on the manager, where they are not); everything else as
    /// written (opaque keys included), with merges applied and every `$` written `$$`
    /// again, since the CLI interpolates what it reads.
    pub fn render(
        &self,
        objects: &BTreeMap<(bool, String), String>,
        extra_labels: &BTreeMap<String, String>,
    ) -> String {
        use serde_json::Value as J;
        let escape = |s: &str| s.replace('$', "$$");
        let string = |s: &str| J::String(escape(s));
        let mut root = match self.root.to_json(&escape) {
            J::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        if self.version.is_none() {
            root.insert("version".into(), J::String(format!("3.{DEFAULT_VERSION}")));
        }
        let version = self.version.unwrap_or(DEFAULT_VERSION);
        for (is_secret, section, declared) in [
            (true, "secrets", &self.secrets),
            (false, "configs", &self.configs),
        ] {
            let Some(J::Object(entries)) = root.get_mut(section) else {
                continue;
            };
            for (key, definition) in entries.iter_mut() {
                let name = match (objects.get(&(is_secret, key.clone())), declared.get(key)) {
                    (Some(name), _) => name.clone(),
                    (None, Some(ComposeObject::External { name, .. })) => name.clone(),
                    (None, _) => format!("{}_{key}", self.stack),
                };
                // `name:` on secrets and configs is 3.5's; before, `external.name` says it.
                *definition = match version >= 5 {
                    true => serde_json::json!({"external": true, "name": string(&name)}),
                    false => serde_json::json!({"external": {"name": string(&name)}}),
                };
            }
        }
        if let Some(J::Object(services)) = root.get_mut("services") {
            for (key, service) in services.iter_mut() {
                let (Some(converted), J::Object(service)) = (self.services.get(key), service)
                else {
                    continue;
                };
                if service.remove("env_file").is_some() {
                    let environment = converted
                        .spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), string(v)))
                        .collect();
                    service.insert("environment".into(), J::Object(environment));
                }
                if extra_labels.is_empty() {
                    continue;
                }
                let deploy = service
                    .entry("deploy")
                    .or_insert_with(|| J::Object(serde_json::Map::new()));
                if !deploy.is_object() {
                    *deploy = J::Object(serde_json::Map::new());
                }
                if let J::Object(deploy) = deploy {
                    let labels = converted
                        .spec
                        .labels
                        .iter()
                        .chain(extra_labels)
                        .map(|(k, v)| (k.clone(), string(v)))
                        .collect();
                    deploy.insert("labels".into(), J::Object(labels));
                }
            }
        }
        let text = serde_json::to_string_pretty(&J::Object(root)).unwrap_or_default();
        yaml_printable(&text)
    }
}

/// JSON text with every character YAML 1.1 does not allow raw (DEL, C1 controls, …)
/// escaped: yaml.v2 refuses them even inside quotes, and JSON leaves them raw.
fn yaml_printable(text: &str) -> String {
    // NEL, LS and PS are line breaks to yaml.v2, even inside a quoted scalar: escaped, so
    // that the deployed value is the one compared.
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A0}'..='\u{2027}' | '\u{202A}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match printable(c) {
            true => out.push(c),
            false => out.push_str(&format!("\\u{:04x}", u32::from(c))),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Go's readings, as the CLI's libraries do them

/// A plain scalar as yaml.v2 (`resolve.go`) resolves it: YAML 1.1 booleans and nulls, Go's
/// `strconv.ParseInt(_, 0, 64)` integers (so `0644` is octal, `0x1F` hex), YAML-style
/// floats; everything else, timestamps included, a string.
fn resolve_plain(text: &str) -> Val {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Val::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Val::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Val::Bool(false)
        }
        ".nan" | ".NaN" | ".NAN" => return Val::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Val::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Val::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let float = |s: &str| {
        is_yaml_float(s)
            .then(|| s.parse::<f64>().ok())
            .flatten()
            // Go's ParseFloat fails on overflow: the scalar stays a string.
            .filter(|f| f.is_finite())
            .map(Val::Float)
    };
    match text.as_bytes().first() {
        Some(b'.') => float(text).unwrap_or_else(|| Val::Str(text.to_owned())),
        Some(b'+' | b'-' | b'0'..=b'9') => {
            let plain = text.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Val::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Val::UInt(u);
            }
            float(&plain).unwrap_or_else(|| Val::Str(text.to_owned()))
        }
        _ => Val::Str(text.to_owned()),
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.strip_prefix('.') {
        Some(fraction) => !fraction.is_empty() && digits(fraction) == fraction.len(),
        None => {
            let int = digits(mantissa);
            int > 0
                && match &mantissa[int..] {
                    "" => true,
                    rest => rest.strip_prefix('.').is_some_and(|f| digits(f) == f.len()),
                }
        }
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    });
    mantissa_ok && exponent_ok
}

/// Go's `strconv.ParseUint(s, 0, 64)`: `0x`, `0o`, `0b` prefixes, a leading `0` for octal.
fn go_parse_uint(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    let (radix, digits) = match bytes {
        [] => return None,
        [b'0', prefix, _, ..] if matches!(prefix.to_ascii_lowercase(), b'b' | b'o' | b'x') => {
            let radix = match prefix.to_ascii_lowercase() {
                b'b' => 2,
                b'o' => 8,
                _ => 16,
            };
            (radix, &s[2..])
        }
        [b'0', ..] => (8, &s[1..]),
        _ => (10, s),
    };
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.Atoi` (64-bit): an optional sign and decimal digits.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = i128::from(go_parse_uint(rest)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A float as Go's `fmt.Sprint` prints it (`%g` with the shortest digits: `1.5`, `1e+06`,
/// `0.0001`, `1.234567e+06`), which is what a number becomes in `environment:`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: Vec<char> = mantissa.chars().filter(char::is_ascii_digit).collect();
    let count = digits.len() as i32;
    let mut out = sign.to_owned();
    if !(-4..6).contains(&exponent) {
        out.push(digits.first().copied().unwrap_or('0'));
        if digits.len() > 1 {
            out.push('.');
            out.extend(&digits[1..]);
        }
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exponent_sign}{:02}", exponent.abs()));
        return out;
    }
    let point = exponent + 1;
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or('0')
    };
    if point > 0 {
        (0..point).for_each(|i| out.push(digit(i)));
    } else {
        out.push('0');
    }
    let decimals = (count - point).max(0);
    if decimals > 0 {
        out.push('.');
        (0..decimals).for_each(|i| out.push(digit(point + i)));
    }
    out
}

/// A string `command:` split as the CLI splits it (github.com/google/shlex): words
/// separated by spaces, tabs and newlines; `'…'` literal; `"…"` where `\` escapes any
/// character; `\` outside quotes escapes the next; `#` at the start of a word comments to
/// the end of the line.
fn split_command(text: &str) -> Result<Vec<String>, &'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Start,
        Word,
        Escaping,
        EscapingInQuotes,
        DoubleQuoted,
        SingleQuoted,
        Comment,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in text.chars().map(Some).chain([None]) {
        let space = matches!(c, Some(' ' | '\t' | '\r' | '\n'));
        state = match (state, c) {
            (State::Start, None) => break,
            (State::Start, _) if space => State::Start,
            (State::Start | State::Word, Some('"')) => State::DoubleQuoted,
            (State::Start | State::Word, Some('\'')) => State::SingleQuoted,
            (State::Start | State::Word, Some('\\')) => State::Escaping,
            (State::Start, Some('#')) => State::Comment,
            (State::Word, None) => {
                words.push(std::mem::take(&mut word));
                break;
            }
            (State::Word, _) if space => {
                words.push(std::mem::take(&mut word));
                State::Start
            }
            (State::Start | State::Word | State::Escaping, Some(c)) => {
                word.push(c);
                State::Word
            }
            (State::Escaping | State::EscapingInQuotes, None) => return Err("it ends with `\\`"),
            (State::EscapingInQuotes, Some(c)) => {
                word.push(c);
                State::DoubleQuoted
            }
            (State::DoubleQuoted | State::SingleQuoted, None) => {
                return Err("a quote is not closed")
            }
            (State::DoubleQuoted, Some('"')) | (State::SingleQuoted, Some('\'')) => State::Word,
            (State::DoubleQuoted, Some('\\')) => State::EscapingInQuotes,
            (State::DoubleQuoted | State::SingleQuoted, Some(c)) => {
                word.push(c);
                state
            }
            (State::Comment, None) => break,
            (State::Comment, Some('\n')) => State::Start,
            (State::Comment, Some(_)) => State::Comment,
        };
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse_documents;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/compose")
    }

    /// An error as a test reads it: message, line:col of its label, label, help.
    #[derive(Debug)]
    struct Reported {
        message: String,
        at: (usize, usize),
        label: String,
        help: String,
    }

    fn parse_text(name: &str, text: &str, stack: &str) -> (Option<Compose>, Vec<Reported>) {
        let file = Arc::new(SourceFile::new(name.into(), text, Vec::new()));
        let mut errors = ConfigErrors::default();
        let compose = parse(text, &file, &fixtures(), stack, &mut errors);
        let reported = errors
            .errors
            .iter()
            .map(|e| Reported {
                message: e.message.clone(),
                at: e
                    .labels
                    .first()
                    .map_or((0, 0), |l| file.line_col(l.offset())),
                label: e
                    .labels
                    .first()
                    .and_then(|l| l.label())
                    .unwrap_or_default()
                    .to_owned(),
                help: e.help.clone().unwrap_or_default(),
            })
            .collect();
        (compose, reported)
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(fixtures().join(name)).unwrap()
    }

    fn load(name: &str) -> Compose {
        let (compose, errors) = parse_text(name, &fixture(name), "app");
        assert!(errors.is_empty(), "{errors:#?}");
        compose.expect("no errors, so a Compose")
    }

    fn load_text(text: &str) -> Compose {
        let (compose, errors) = parse_text("inline.yml", text, "app");
        assert!(errors.is_empty(), "{errors:#?}");
        compose.expect("no errors, so a Compose")
    }

    fn errors_of(name: &str) -> Vec<Reported> {
        let (compose, errors) = parse_text(name, &fixture(name), "app");
        assert!(compose.is_none(), "errors give no Compose");
        errors
    }

    fn errors_of_text(text: &str) -> Vec<Reported> {
        let (compose, errors) = parse_text("inline.yml", text, "app");
        assert!(compose.is_none(), "expected errors");
        errors
    }

    /// The one error whose message contains `needle`.
    fn find<'e>(errors: &'e [Reported], needle: &str) -> &'e Reported {
        let found: Vec<&Reported> = errors
            .iter()
            .filter(|e| e.message.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "`{needle}` in {errors:#?}");
        found[0]
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn port(published: u16, target: u16, mode: PublishMode, protocol: Protocol) -> Port {
        Port {
            published,
            target,
            mode,
            protocol,
        }
    }

    fn reference(source: &str, target: &str) -> ObjectRef {
        ObjectRef {
            source: source.into(),
            target: Some(target.into()),
        }
    }

    fn duration(text: &str) -> Option<DockerDuration> {
        Some(DockerDuration::parse(text).unwrap())
    }

    // -----------------------------------------------------------------------------------
    // Conversion

    #[test]
    fn three_tier_services_convert_field_by_field() {
        let compose = load("three-tier.yml");
        assert_eq!(
            compose.services.keys().collect::<Vec<_>>(),
            ["api", "db", "proxy"]
        );

        let proxy = &compose.services["proxy"].spec;
        assert_eq!(proxy.image, "registry.example/proxy:2.4");
        assert_eq!(proxy.command, strings(&["nginx", "-g", "daemon off;"]));
        assert_eq!((proxy.mode, proxy.replicas), (Mode::Global, None));
        assert_eq!(
            proxy.ports,
            [
                port(80, 8080, PublishMode::Ingress, Protocol::Tcp),
                port(443, 8443, PublishMode::Host, Protocol::Tcp),
            ]
        );
        assert_eq!(proxy.networks, strings(&["app_front"]));
        assert_eq!(
            proxy.configs,
            [reference("proxy_conf", "/etc/nginx/conf.d/default.conf")]
        );
        assert_eq!(proxy.constraints, strings(&["node.labels.tier==edge"]));
        assert_eq!(proxy.labels, map(&[("traefik.enable", "false")]));
        assert_eq!(
            proxy.update,
            UpdatePolicy {
                parallelism: Some(1),
                delay: duration("10s"),
                order: Some(UpdateOrder::StartFirst),
                failure_action: None,
                monitor: None,
            }
        );

        let api = &compose.services["api"].spec;
        assert_eq!(
            api.command,
            strings(&["serve", "--port", "9000", "--name", "the api"])
        );
        // env_file first, `environment` over it; numbers as Go prints them; `$$` is `$`;
        // an env file's value verbatim (trailing spaces kept).
        assert_eq!(
            api.env,
            map(&[
                ("CACHE_URL", "redis://cache:6379/0"),
                ("DB_HOST", "db"),
                ("DB_PASSWORD_FILE", "/run/secrets/db_password"),
                ("EMPTY", ""),
                ("GREETING", "hello world  "),
                ("LOG_LEVEL", "info"),
                ("PRICE", "$5"),
                ("RATIO", "1.5"),
                ("WORKERS", "4"),
            ])
        );
        assert_eq!(api.networks, strings(&["app_back", "app_front"]));
        assert_eq!(api.secrets, [reference("db_password", "db_password")]);
        assert_eq!((api.mode, api.replicas), (Mode::Replicated, Some(3)));
        assert_eq!(api.labels, map(&[("team", "payments"), ("tier", "")]));
        assert_eq!(api.constraints, strings(&["node.role==worker"]));
        assert_eq!(
            api.placement_preferences,
            strings(&["spread=node.labels.zone"])
        );
        assert_eq!(
            api.update,
            UpdatePolicy {
                parallelism: Some(2),
                delay: duration("1m30s"),
                order: None,
                failure_action: Some(FailureAction::Rollback),
                monitor: duration("500ms"),
            }
        );

        let db = &compose.services["db"].spec;
        assert_eq!(db.image, "postgres:13");
        assert!(db.command.is_empty());
        assert_eq!(
            db.mounts,
            [
                ServiceMount {
                    kind: MountKind::Volume,
                    source: "app_db-data".into(),
                    target: "/var/lib/postgresql/data".into(),
                    readonly: false,
                },
                ServiceMount {
                    kind: MountKind::Bind,
                    source: "/srv/backups".into(),
                    target: "/backups".into(),
                    readonly: true,
                },
            ]
        );
        assert_eq!(db.networks, strings(&["app_back"]));
        assert_eq!(db.constraints, strings(&["node.labels.db == true"]));
        assert_eq!(db.replicas, None);

        assert_eq!(
            compose.secrets["db_password"],
            ComposeObject::File {
                path: fixtures().join("./secrets/db_password.txt"),
                span: compose.secrets["db_password"].span(),
            }
        );
        let ComposeObject::File { path, span } = &compose.configs["proxy_conf"] else {
            panic!("a file config");
        };
        assert_eq!(path, &fixtures().join("proxy/default.conf"));
        let text = fixture("three-tier.yml");
        assert_eq!(&text[span.start..span.end], "proxy/default.conf");
        let api_span = compose.services["api"].span;
        assert_eq!(&text[api_span.start..api_span.end], "api");
    }

    impl ComposeObject {
        fn span(&self) -> Span {
            match self {
                ComposeObject::File { span, .. } | ComposeObject::External { span, .. } => *span,
            }
        }
    }

    #[test]
    fn short_and_long_syntax_give_the_same_service() {
        let short = load("short-syntax.yml");
        let long = load("long-syntax.yml");
        let (short, long) = (&short.services["app"], &long.services["app"]);
        let json = |s: &SwarmServiceSpec| serde_json::to_value(s).unwrap();
        assert_eq!(json(&short.spec), json(&long.spec));
        assert_eq!(short.opaque, long.opaque);

        let spec = &short.spec;
        assert_eq!(spec.command, strings(&["worker", "--queue", "high prio"]));
        assert_eq!(
            spec.ports,
            [
                port(5353, 53, PublishMode::Ingress, Protocol::Udp),
                port(8080, 80, PublishMode::Ingress, Protocol::Tcp),
            ]
        );
        assert_eq!(spec.mounts[0].source, "app_cache");
        assert_eq!(spec.mounts[1].source, "/srv/app/config");
        assert!(spec.mounts[1].readonly);
        assert_eq!(spec.secrets, [reference("token", "token")]);
        // The CLI's default target of a config is its key, as of a secret.
        assert_eq!(spec.configs, [reference("app_conf", "app_conf")]);
        assert_eq!(spec.env, map(&[("EMPTY", ""), ("MODE", "fast")]));
        assert_eq!(spec.labels, map(&[("owner", "ops")]));
        assert_eq!(
            short.opaque,
            BTreeMap::from([(
                "volumes./var/cache/app".to_owned(),
                r#"{"nocopy":true}"#.to_owned()
            )])
        );
    }

    #[test]
    fn a_service_without_networks_is_on_the_stacks_default_network() {
        let short = load("short-syntax.yml");
        assert_eq!(
            short.services["app"].spec.networks,
            strings(&["app_default"])
        );
        let none = load("no-version.yml");
        assert_eq!(
            none.services["solo"].spec.networks,
            strings(&["app_default"])
        );
        // A `default` network of the file's own is what `default` resolves to.
        let named = load_text(
            "version: '3.5'\nservices:\n  s: {image: busybox}\nnetworks:\n  default:\n    name: shared-default\n",
        );
        assert_eq!(
            named.services["s"].spec.networks,
            strings(&["shared-default"])
        );
    }

    #[test]
    fn external_and_named_objects_keep_their_own_names() {
        let compose = load("external.yml");
        let web = &compose.services["web"];
        assert_eq!(
            web.spec.networks,
            strings(&["custom-net", "edge", "infra_shared"])
        );
        let sources: Vec<&str> = web.spec.mounts.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(sources, ["media-store", "web-data"]);
        // A service refers to a secret by its key in the file; the name it stands for is
        // the top-level object's.
        assert_eq!(
            web.spec.secrets,
            [
                reference("site_key", "site_key"),
                reference("tls_key", "tls_key")
            ]
        );
        assert_eq!(web.spec.configs, [reference("site", "site")]);
        let names = |objects: &BTreeMap<String, ComposeObject>| -> Vec<(String, String)> {
            objects
                .iter()
                .map(|(key, object)| match object {
                    ComposeObject::External { name, .. } => (key.clone(), name.clone()),
                    ComposeObject::File { .. } => panic!("{key} is external"),
                })
                .collect()
        };
        assert_eq!(
            names(&compose.secrets),
            [
                ("site_key".to_owned(), "prod_site_key".to_owned()),
                ("tls_key".to_owned(), "tls_key".to_owned())
            ]
        );
        assert_eq!(
            names(&compose.configs),
            [("site".to_owned(), "site_config_v3".to_owned())]
        );
        // A non-external volume with options puts them in each mount: opaque.
        let named = load_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    volumes: [data:/data]\nvolumes:\n  data:\n    driver: local\n    driver_opts: {type: nfs, o: 'addr=10.0.0.1'}\n",
        );
        assert_eq!(
            named.services["s"].opaque["volumes./data"],
            r#"{"definition":{"driver":"local","driver_opts":{"o":"addr=10.0.0.1","type":"nfs"}}}"#
        );
    }

    #[test]
    fn opaque_keys_are_collected_as_canonical_json() {
        let compose = load("three-tier.yml");
        let api = &compose.services["api"].opaque;
        assert_eq!(
            api.keys().collect::<Vec<_>>(),
            [
                "deploy.resources",
                "deploy.restart_policy",
                "deploy.update_config.max_failure_ratio",
                "healthcheck",
                "logging",
                "stop_grace_period",
                "user",
            ]
        );
        assert_eq!(
            api["deploy.resources"],
            r#"{"limits":{"cpus":"0.50","memory":"512M"}}"#
        );
        assert_eq!(api["deploy.update_config.max_failure_ratio"], "0.25");
        assert_eq!(
            api["logging"],
            r#"{"driver":"json-file","options":{"max-file":"3","max-size":"10m"}}"#
        );
        assert_eq!(api["user"], r#""1000:1000""#);
        assert_eq!(compose.services["proxy"].opaque["logging"], api["logging"]);
        let db = &compose.services["db"].opaque;
        assert_eq!(db["networks.back.aliases"], r#"["database"]"#);
        // 0400 is octal to yaml.v2: 256.
        assert_eq!(
            db["secrets.db_password"],
            r#"{"gid":"0","mode":256,"uid":"0"}"#
        );
    }

    #[test]
    fn yaml_1_1_scalars_read_as_the_cli_reads_them() {
        let compose = load_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    environment:\n      OCTAL: 0644\n      HEX: 0x1F\n      FLOAT: 1.50\n      BIG: 1e6\n      MILLION: 1234567.0\n      SMALL: 0.0001\n      EIGHT: 08\n      UNDERSCORE: 1_000\n      DATE: 2001-12-14\n      NEGATIVE: -0\n      QUOTED: '0644'\n      HUGE: 18446744073709551615\n",
        );
        assert_eq!(
            compose.services["s"].spec.env,
            map(&[
                ("BIG", "1e+06"),
                ("DATE", "2001-12-14"),
                ("EIGHT", "8"),
                ("FLOAT", "1.5"),
                ("HEX", "31"),
                ("HUGE", "18446744073709551615"),
                ("MILLION", "1.234567e+06"),
                ("NEGATIVE", "0"),
                ("OCTAL", "420"),
                ("QUOTED", "0644"),
                ("SMALL", "0.0001"),
                ("UNDERSCORE", "1000"),
            ])
        );
        // `yes` is a boolean, which `environment` does not take; a key `on` is not a string.
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    environment:\n      DEBUG: yes\n    labels:\n      on: x\n",
        );
        let debug = find(&errors, "services.s.environment.DEBUG");
        assert_eq!(debug.at, (6, 14));
        assert!(debug.help.contains("quote"), "{debug:?}");
        let key = find(&errors, "the key `on` is read as a boolean");
        assert_eq!(key.at, (8, 7));
    }

    #[test]
    fn merge_keys_apply_in_document_order_as_yaml_v2_does() {
        let compose = load_text(
            "version: '3.8'\nx-a: &a {A: from-a, B: from-a}\nx-b: &b {B: from-b, C: from-b}\nservices:\n  s:\n    image: busybox\n    environment:\n      A: before\n      <<: [*a, *b]\n      C: after\n  t:\n    <<: {image: alpine:3, command: [one]}\n    command: [two]\n",
        );
        // A merge overrides what comes before it, is overridden by what comes after; in a
        // list of merged mappings the first wins.
        assert_eq!(
            compose.services["s"].spec.env,
            map(&[("A", "from-a"), ("B", "from-a"), ("C", "after")])
        );
        let t = &compose.services["t"].spec;
        assert_eq!(
            (t.image.as_str(), t.command.clone()),
            ("alpine:3", strings(&["two"]))
        );
        // An alias of a scalar is read as the anchored scalar was written.
        let aliased = load_text(
            "version: '3.8'\nx-q: &q 'yes'\nx-n: &n 0x10\nservices:\n  s:\n    image: busybox\n    environment: {Q: *q, H: *n}\n",
        );
        assert_eq!(
            aliased.services["s"].spec.env,
            map(&[("H", "16"), ("Q", "yes")])
        );
        let errors = errors_of_text(
            "version: '3.8'\nx-b: &b yes\nservices:\n  s:\n    image: busybox\n    environment: {B: *b}\n",
        );
        assert_eq!(
            find(&errors, "must be a string, a number or null, not a boolean").at,
            (6, 22)
        );
        // A quoted `<<` is an ordinary (unknown) key.
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    '<<': {user: x}\n",
        );
        assert_eq!(find(&errors, "`<<` is not a Compose key").at, (5, 5));
        let errors =
            errors_of_text("version: '3.8'\nservices:\n  s:\n    image: busybox\n    <<: 3\n");
        find(&errors, "merge key");
    }

    // -----------------------------------------------------------------------------------
    // Errors

    #[test]
    fn unknown_keys_are_located_with_the_nearest_known_key() {
        let errors = errors_of("bad-keys.yml");
        // The misspelt key leaves the service without an image: said too, in the same pass.
        assert_eq!(errors.len(), 5, "{errors:#?}");
        find(&errors, "service `web` names no image");
        let imgae = find(&errors, "`imgae`");
        assert_eq!(
            imgae.message,
            "`imgae` is not a Compose key in `services.web`"
        );
        assert_eq!((imgae.at, imgae.label.as_str()), ((4, 5), "unknown key"));
        assert_eq!(imgae.help, "did you mean `image`?");
        let replcas = find(&errors, "`replcas`");
        assert_eq!(
            (replcas.at, replcas.help.as_str()),
            ((6, 7), "did you mean `replicas`?")
        );
        let constraint = find(&errors, "`constraint`");
        assert_eq!(
            (constraint.at, constraint.help.as_str()),
            ((8, 9), "did you mean `constraints`?")
        );
        let drivr = find(&errors, "`drivr`");
        assert_eq!(
            drivr.message,
            "`drivr` is not a Compose key in `networks.front`"
        );
        assert_eq!(drivr.help, "did you mean `driver`?");
        let far = errors_of_text("version: '3.8'\nzzz: 1\n");
        assert!(
            far[0].help.starts_with("known keys: version, services"),
            "{far:#?}"
        );
    }

    #[test]
    fn keys_stack_deploy_ignores_or_refuses_say_how_to_do_it_in_swarm() {
        let errors = errors_of("bad-ignored.yml");
        for (key, at, hint) in [
            ("build", (5, 5), "build and push the image"),
            ("tmpfs", (11, 5), "type: tmpfs"),
            ("network_mode", (16, 5), "networks:"),
            ("ipv4_address", (19, 9), "assigns addresses"),
        ] {
            let error = find(&errors, &format!(".{key}`"));
            assert!(
                error
                    .message
                    .starts_with("`docker stack deploy` ignores `services."),
                "{error:?}"
            );
            assert!(
                error.message.contains("which changes what the file means"),
                "{error:?}"
            );
            assert_eq!(error.at, at, "{key}");
            assert!(error.help.contains(hint), "{key}: {error:?}");
        }
        let extends = find(&errors, "refuses `services.app.extends`");
        assert_eq!(
            extends.help,
            "Support for `extends` is not implemented yet."
        );
        // container_name, depends_on, links, expose and restart are warnings (below).
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }

    /// What `docker stack deploy` deploys, corral deploys: a port without a published one
    /// (swarm assigns it), `name:` on a file secret or config (corral names the versions).
    #[test]
    fn target_only_ports_and_named_file_objects_are_accepted() {
        let compose = load_text(
            "version: \"3.8\"\nservices:\n  a:\n    image: busybox\n    ports: [\"9000\", \"9001/udp\", {target: 81, mode: host}, \"80:80\"]\n    secrets: [pw]\nsecrets:\n  pw: {file: secrets/db_password.txt, name: db_password}\n",
        );
        assert_eq!(
            compose.services["a"].spec.ports,
            vec![
                port(0, 9000, PublishMode::Ingress, Protocol::Tcp),
                port(0, 9001, PublishMode::Ingress, Protocol::Udp),
                port(0, 81, PublishMode::Host, Protocol::Tcp),
                port(80, 80, PublishMode::Ingress, Protocol::Tcp),
            ]
        );
        assert!(matches!(compose.secrets["pw"], ComposeObject::File { .. }));
        assert_eq!(compose.warnings.len(), 1, "{:#?}", compose.warnings);
        assert!(
            compose.warnings[0].starts_with(
                "inline.yml:8:39: secret `pw`: corral creates it as `app_pw_<version>`"
            ),
            "{:#?}",
            compose.warnings
        );
        // The deployed file refers to the version corral made.
        let objects = BTreeMap::from([((true, "pw".to_owned()), "app_pw_0123".to_owned())]);
        let rendered: serde_json::Value =
            serde_json::from_str(&compose.render(&objects, &BTreeMap::new())).unwrap();
        assert_eq!(
            rendered["secrets"]["pw"],
            serde_json::json!({"external": true, "name": "app_pw_0123"})
        );
    }

    /// Keys `docker stack deploy` ignores without changing what runs: deployed, with a
    /// warning at their line; `restart` converted as `convertRestartPolicy` converts it.
    #[test]
    fn keys_stack_deploy_ignores_harmlessly_are_warnings() {
        let compose = load_text(
            "version: \"3.8\"\nservices:\n  app:\n    image: busybox\n    container_name: app\n    depends_on: [db]\n    links: [db]\n    restart: always\n    expose: [\"80\", 81]\n  db:\n    image: busybox\n    restart: on-failure:3\n  once:\n    image: busybox\n    restart: on-failure\n  kept:\n    image: busybox\n    restart: unless-stopped\n    deploy: {restart_policy: {condition: none}}\n",
        );
        let warnings = &compose.warnings;
        for (needle, at) in [
            ("ignores `services.app.container_name`: swarm names", "5:5"),
            ("ignores `services.app.depends_on`: swarm starts", "6:5"),
            ("ignores `services.app.links`: services reach", "7:5"),
            ("ignores `services.app.expose`: services on a shared", "9:5"),
            ("converts `services.app.restart: always` to `deploy.restart_policy` `condition: any`", "8:5"),
            ("converts `services.db.restart: on-failure:3` to `deploy.restart_policy` `condition: on-failure`, `max_attempts: 3`", "12:5"),
            ("ignores `services.kept.restart`: `deploy.restart_policy` decides", "18:5"),
        ] {
            let found: Vec<&String> = warnings.iter().filter(|w| w.contains(needle)).collect();
            assert_eq!(found.len(), 1, "{needle} in {warnings:#?}");
            assert!(found[0].starts_with(&format!("inline.yml:{at}: ")), "{found:?}");
        }
        assert_eq!(warnings.len(), 8, "{warnings:#?}");
        // What runs: the policy the CLI makes, as `deploy.restart_policy` would say it.
        let policy = |service: &str| {
            compose.services[service]
                .opaque
                .get("deploy.restart_policy")
                .cloned()
        };
        assert_eq!(policy("app").as_deref(), Some(r#"{"condition":"any"}"#));
        assert_eq!(
            policy("db").as_deref(),
            Some(r#"{"condition":"on-failure","max_attempts":3}"#)
        );
        // 20.10 gives `on-failure` without a count `MaxAttempts: 0` (no limit).
        assert_eq!(
            policy("once").as_deref(),
            Some(r#"{"condition":"on-failure","max_attempts":0}"#)
        );
        assert_eq!(policy("kept").as_deref(), Some(r#"{"condition":"none"}"#));
        // What the CLI refuses, or would run otherwise than written, stays an error.
        let errors = errors_of_text(
            "version: \"3.8\"\nservices:\n  a: {image: busybox, restart: \"no\"}\n  b: {image: busybox, restart: sometimes}\n  c: {image: busybox, restart: \"on-failure:x\"}\n  d: {image: busybox, restart: \"on-failure:-1\"}\n  e: {image: busybox, restart: no}\n",
        );
        find(
            &errors,
            "ignores `services.a.restart: \"no\"`, which changes what the file means",
        );
        find(
            &errors,
            "refuses `services.b.restart`: unknown restart policy: sometimes",
        );
        find(&errors, "refuses `services.c.restart: on-failure:x`");
        find(
            &errors,
            "`services.d.restart: on-failure:-1`: a negative retry count",
        );
        // Unquoted, `no` is YAML 1.1's false, which the CLI's schema refuses.
        find(
            &errors,
            "`services.e.restart` must be a string, not a boolean",
        );
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }

    #[test]
    fn variables_without_a_value_are_errors_at_the_reference() {
        let errors = errors_of("bad-interpolation.yml");
        assert_eq!(errors.len(), 3, "{errors:#?}");
        let tag = find(&errors, "`${TAG}` has no value");
        assert_eq!((tag.at, tag.label.as_str()), ((4, 19), "no value"));
        assert!(tag.help.contains("`variables:`"), "{tag:?}");
        assert_eq!(find(&errors, "`$HOME` has no value").at, (6, 17));
        assert_eq!(find(&errors, "a `$` that starts no variable").at, (7, 17));
        let compose = load_text(
            "version: '3.8'\nx-note: costs $$5\nservices:\n  s:\n    image: busybox\n    command: echo $$HOME\n",
        );
        assert_eq!(
            compose.services["s"].spec.command,
            strings(&["echo", "$HOME"])
        );
    }

    #[test]
    fn values_corral_cannot_represent_are_errors_with_hints() {
        let errors = errors_of("bad-values.yml");
        let expect = [
            ("`FROM_SHELL` has no value", (6, 9), "FROM_SHELL=VALUE"),
            ("`./data` is not an absolute path", (8, 9), "on the manager"),
            (
                "`~/cache` is not an absolute path",
                (9, 9),
                "home of whoever deploys",
            ),
            ("is a range of ports", (11, 9), "one entry per port"),
            ("names an address", (13, 9), "remove the address"),
            (
                "`replicas` is for replicated services",
                (19, 17),
                "remove `replicas`",
            ),
            ("`replicated-job` is not a mode", (23, 13), "replicated"),
            (
                "the network `bakc` is not declared",
                (24, 16),
                "did you mean `back`?",
            ),
            ("the secret `nope` is not declared", (25, 15), "declare it"),
        ];
        for (needle, at, hint) in expect {
            let error = find(&errors, needle);
            assert_eq!(error.at, at, "{needle}");
            assert!(error.help.contains(hint), "{needle}: {error:?}");
        }
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    }

    #[test]
    fn env_files_are_read_as_the_cli_reads_them() {
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    env_file: [bad-env.env, missing.env]\n",
        );
        let from_shell = find(&errors, "line 2: `FROM_SHELL` has no value");
        assert_eq!(from_shell.at, (5, 16));
        find(
            &errors,
            "line 3: the variable `BAD KEY` contains whitespace",
        );
        let missing = find(&errors, "cannot read the env file");
        assert_eq!(missing.at, (5, 29));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        // Env files' values are shown in plans: only files of the Compose file's directory.
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    env_file: [../../Cargo.toml, secrets]\n",
        );
        find(&errors, "is outside the Compose file's directory");
        find(&errors, "is not a regular file");
    }

    #[test]
    fn versions_gate_keys_and_must_be_strings() {
        let errors = errors_of_text("version: 3.8\nservices:\n  s: {image: busybox}\n");
        let version = find(&errors, "`version` must be a string");
        assert_eq!(
            (version.at, version.help.as_str()),
            ((1, 10), "quote it: `version: \"3.8\"`")
        );
        let errors =
            errors_of_text("version: '3.2'\nservices:\n  s:\n    image: busybox\n    init: true\n");
        let init = find(&errors, "`services.s.init` needs Compose file format 3.7");
        assert_eq!(init.at, (5, 5));
        assert!(
            init.message.ends_with("(this file is version 3.2)"),
            "{init:?}"
        );
        let errors = errors_of_text(
            "services:\n  s:\n    image: busybox\n    deploy: {resources: {limits: {pids: 10}}}\n",
        );
        let pids = find(&errors, "needs Compose file format 3.9");
        assert!(
            pids.message
                .contains("names no version, and is deployed as 3.8"),
            "{pids:?}"
        );
        let errors = errors_of_text("version: '2.4'\nservices: {}\n");
        find(&errors, "does not read Compose file format `2.4`");
        let errors = errors_of_text("version: '3.0'\nx-top: 1\nservices: {}\n");
        find(&errors, "`x-top` needs Compose file format 3.4");
        load_text("version: '3'\nservices:\n  s: {image: busybox}\n");
        load_text("version: '3.7'\nservices:\n  s: {image: busybox, x-mine: 1}\nx-top: 1\n");
    }

    #[test]
    fn types_follow_the_compose_schema() {
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s:\n    image: busybox\n    user: 1000\n    read_only: 'yes'\n    stop_grace_period: 10\n    healthcheck: {interval: 10 s}\n    deploy: {replicas: 1.5}\n    ports: ['80:80', '80:80']\n    volumes: [{source: x, target: /x}]\n",
        );
        assert_eq!(
            find(
                &errors,
                "`services.s.user` must be a string, not an integer"
            )
            .help,
            "quote the value"
        );
        find(
            &errors,
            "`services.s.read_only` must be a boolean, not a string",
        );
        find(&errors, "`services.s.stop_grace_period` must be a duration");
        find(
            &errors,
            "`services.s.healthcheck.interval` is not a duration: `10 s`",
        );
        find(
            &errors,
            "`services.s.deploy.replicas` must be an integer, not a number",
        );
        assert_eq!(find(&errors, "lists this item twice").at, (10, 22));
        find(&errors, "`services.s.volumes[0]` needs `type`");
        assert_eq!(errors.len(), 7, "{errors:#?}");
    }

    #[test]
    fn objects_corral_cannot_manage_are_refused() {
        let errors = errors_of_text(
            "version: '3.8'\nservices:\n  s: {image: busybox}\nsecrets:\n  a: {file: a.txt, name: fixed}\n  b: {driver: vault}\n  c: {external: true, file: c.txt}\n  d: {}\nconfigs:\n  e: {file: e.conf, template_driver: golang}\n",
        );
        find(&errors, "corral cannot honour `driver` of secret `b`");
        find(&errors, "secret `b` has no `file:`");
        find(&errors, "secret `c` is external: `file` would be ignored");
        find(&errors, "secret `d` has no `file:`");
        find(
            &errors,
            "corral cannot honour `template_driver` of config `e`",
        );
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }

    #[test]
    fn whole_file_problems_are_errors() {
        find(&errors_of_text(""), "the Compose file is empty");
        find(
            &errors_of_text("- a\n- b\n"),
            "a Compose file is a mapping, not a list",
        );
        let second = errors_of_text("version: '3.8'\n---\nversion: '3.8'\n");
        assert_eq!(find(&second, "one YAML document").at, (2, 1));
        let yaml = errors_of_text("version: '3.8'\nservices: [\n");
        assert!(yaml[0].message.starts_with("not valid YAML"), "{yaml:?}");
        find(
            &errors_of_text("version: '3.8'\nservices:\n  s: {image: !!binary aGk=}\n"),
            "YAML tag `tag:yaml.org,2002:binary`",
        );
        let nul = errors_of_text("version: '3.8'\nservices:\n  s: {image: \"a\\0b\"}\n");
        find(&nul, "NUL byte");
        let name = errors_of_text("version: '3.8'\nservices:\n  my.web: {image: busybox}\n");
        find(&name, "`app_my.web`, which swarm refuses");
        find(
            &errors_of_text(
                "version: '3.8'\nservices:\n  s: {image: busybox, environment: {X: .inf}}\n",
            ),
            "infinite",
        );
    }

    // -----------------------------------------------------------------------------------
    // Rendering

    #[test]
    fn render_names_versioned_objects_adds_labels_and_inlines_env_files() {
        let compose = load("three-tier.yml");
        let objects = BTreeMap::from([
            (
                (true, "db_password".to_owned()),
                "app_db_password-3f2a".to_owned(),
            ),
            (
                (false, "proxy_conf".to_owned()),
                "app_proxy_conf-91bc".to_owned(),
            ),
        ]);
        let extra = map(&[("io.corral.managed", "site")]);
        let text = compose.render(&objects, &extra);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        // JSON is YAML: our YAML parser reads it too.
        assert_eq!(parse_documents(&text).unwrap().len(), 1);
        assert_eq!(json["version"], "3.8");
        assert_eq!(
            json["secrets"],
            serde_json::json!({"db_password": {"external": true, "name": "app_db_password-3f2a"}})
        );
        assert_eq!(
            json["configs"],
            serde_json::json!({"proxy_conf": {"external": true, "name": "app_proxy_conf-91bc"}})
        );
        assert!(!text.contains("\"file\""), "{text}");
        for service in ["api", "db", "proxy"] {
            assert_eq!(
                json["services"][service]["deploy"]["labels"]["io.corral.managed"],
                "site"
            );
        }
        let api = &json["services"]["api"];
        assert_eq!(api["deploy"]["labels"]["team"], "payments");
        assert!(api.get("env_file").is_none());
        assert_eq!(api["environment"]["GREETING"], "hello world  ");
        // `$` is written `$$` again: the CLI interpolates what it reads.
        assert_eq!(api["environment"]["PRICE"], "$$5");
        // Opaque keys and extensions as written, merges applied.
        assert_eq!(api["healthcheck"]["retries"], 3);
        assert_eq!(api["logging"]["options"]["max-size"], "10m");
        assert_eq!(api["deploy"]["resources"]["limits"]["memory"], "512M");
        assert_eq!(json["x-api-env"]["RATIO"], 1.5);
        assert_eq!(json["services"]["db"]["secrets"][0]["mode"], 256);

        // What the CLI reads back is what was planned.
        let again = load_text(&compose.render(&objects, &BTreeMap::new()));
        for (name, service) in &compose.services {
            let json = |s: &SwarmServiceSpec| serde_json::to_value(s).unwrap();
            assert_eq!(
                json(&again.services[name].spec),
                json(&service.spec),
                "{name}"
            );
            assert_eq!(again.services[name].opaque, service.opaque, "{name}");
        }
    }

    #[test]
    fn render_writes_a_version_and_the_external_form_the_version_allows() {
        let compose = load("no-version.yml");
        let json: serde_json::Value =
            serde_json::from_str(&compose.render(&BTreeMap::new(), &BTreeMap::new())).unwrap();
        assert_eq!(json["version"], "3.8");
        assert_eq!(json["services"]["solo"]["command"], "sleep 3600");
        let old = load_text(
            "version: '3.3'\nservices:\n  s: {image: busybox, configs: [c], secrets: [k]}\nsecrets:\n  k: {file: k.txt}\nconfigs:\n  c: {file: c.txt}\n",
        );
        let objects = BTreeMap::from([((true, "k".to_owned()), "app_k-1".to_owned())]);
        let json: serde_json::Value =
            serde_json::from_str(&old.render(&objects, &BTreeMap::new())).unwrap();
        assert_eq!(
            json["secrets"]["k"],
            serde_json::json!({"external": {"name": "app_k-1"}})
        );
        // Not given: the name the CLI would give it.
        assert_eq!(
            json["configs"]["c"],
            serde_json::json!({"external": {"name": "app_c"}})
        );
        // NEL, LS and PS are line breaks to yaml.v2 even when quoted: escaped.
        assert_eq!(
            yaml_printable("a\u{7f}b\u{85}c\u{2028}\u{a0}"),
            "a\\u007fb\\u0085c\\u2028\u{a0}"
        );
    }

    // -----------------------------------------------------------------------------------
    // Go's readings

    #[test]
    fn commands_split_as_google_shlex_splits_them() {
        let cases: &[(&str, &[&str])] = &[
            ("a b  c", &["a", "b", "c"]),
            ("a 'b c' \"d e\"", &["a", "b c", "d e"]),
            (r#""a\b" 'a\b' a\ b"#, &["ab", r"a\b", "a b"]),
            ("a#b #comment\nc", &["a#b", "c"]),
            ("'' x", &["", "x"]),
            ("pre'fix'\"ed\"", &["prefixed"]),
            ("", &[]),
        ];
        for (text, words) in cases {
            assert_eq!(split_command(text).unwrap(), strings(words), "{text:?}");
        }
        assert!(split_command("'open").is_err());
        assert!(split_command("end\\").is_err());
        assert!(split_command("\"a\\").is_err());
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        for (value, text) in [
            (0.0, "0"),
            (1.5, "1.5"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-10, "-2.5e-10"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float(value), text, "{value}");
        }
    }

    /// Mutated Compose files give errors, never panics.
    #[test]
    fn mutations_of_a_compose_file_never_panic() {
        let seed = fixture("three-tier.yml");
        let alphabet = b"-:[]{},&*!|>'\"#%@`?\t\n $\\~0x<";
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..400 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % (bytes.len() as u64 + 1)) as usize;
                let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            let (compose, errors) = parse_text("mutated.yml", &text, "app");
            assert_eq!(compose.is_some(), errors.is_empty());
            if let Some(compose) = compose {
                let rendered = compose.render(&BTreeMap::new(), &map(&[("x", "y")]));
                assert!(serde_json::from_str::<serde_json::Value>(&rendered).is_ok());
            }
        }
    }

    /// What corral does with a Compose file of the corpus, as `docker stack deploy` would.
    enum Expect {
        /// Deployed as written, without a word.
        Accept,
        /// Deployed, with this many warnings, each needle in one of them.
        Warn(usize, &'static [&'static str]),
        /// Refused with this many errors, each needle in one of them.
        Refuse(usize, &'static [&'static str]),
    }

    struct Case {
        file: &'static str,
        /// The docker/cli (20.10) function that decides, and what it does.
        cli: &'static str,
        /// What corral does (given the file's variables, when `variables`).
        expect: Expect,
        /// The file takes values from the environment (`${VAR}`).
        variables: bool,
    }

    /// Real Compose files (fixtures/compose/corpus, origins in its README): what corral does
    /// with each is what `docker stack deploy` does, but for what would change the file's
    /// meaning, which corral refuses and says why.
    #[test]
    fn real_compose_files_are_read_as_stack_deploy_reads_them() {
        use Expect::*;
        let cases = [
            Case { file: "voting-app-stack.yml", cli: "loader.Load, convert.Services: deploys", expect: Accept, variables: false },
            Case { file: "swarmpit.yml", cli: "no `version`: 20.10's schema.Version says 1.0 and schema.Validate refuses; 23.0+ read it as the newest 3.x; corral deploys it as 3.8", expect: Accept, variables: false },
            Case { file: "awesome-gitea-postgres.yml", cli: "convertRestartPolicy converts `restart: always`; GetDeprecatedProperties warns of `expose`", expect: Warn(3, &["services.gitea.restart: always", "services.db.restart: always", "services.db.expose"]), variables: false },
            Case { file: "awesome-nextcloud-postgres.yml", cli: "convertRestartPolicy; GetDeprecatedProperties (`expose`)", expect: Warn(3, &["services.nc.restart", "services.db.restart", "services.db.expose"]), variables: false },
            Case { file: "awesome-wordpress-mysql.yml", cli: "convertRestartPolicy; GetDeprecatedProperties (`expose`)", expect: Warn(3, &["services.db.restart", "services.wordpress.restart", "services.db.expose"]), variables: false },
            Case { file: "awesome-portainer.yml", cli: "GetDeprecatedProperties (`container_name`); convertRestartPolicy", expect: Warn(2, &["services.portainer.container_name", "services.portainer.restart"]), variables: false },
            Case { file: "awesome-minecraft.yml", cli: "convert.Volumes: `~` is the deploying user's home, on the manager", expect: Refuse(1, &["`~/minecraft_data` is not an absolute path"]), variables: false },
            Case { file: "awesome-prometheus-grafana.yml", cli: "loader.resolveVolumePaths: `./` resolves on the machine that deploys", expect: Refuse(2, &["`./prometheus` is not an absolute path", "`./grafana` is not an absolute path"]), variables: false },
            Case { file: "awesome-elasticsearch-logstash-kibana.yml", cli: "loader.resolveVolumePaths (`./` binds)", expect: Refuse(2, &["`./logstash/pipeline/logstash-nginx.config`", "`./logstash/nginx.log`"]), variables: false },
            Case { file: "awesome-nginx-golang.yml", cli: "GetUnsupportedProperties: `build` ignored, the service has no image; resolveVolumePaths (`./` bind)", expect: Refuse(2, &["ignores `services.backend.build`, which changes what the file means", "`./proxy/nginx.conf`"]), variables: false },
            Case { file: "awesome-traefik-golang.yml", cli: "GetUnsupportedProperties: `build` ignored, the service has no image", expect: Refuse(1, &["ignores `services.backend.build`"]), variables: false },
            Case { file: "voting-app-compose.yml", cli: "schema.Validate: `depends_on` conditions and `profiles` are not 3.x; `build` ignored; `./` binds", expect: Refuse(15, &["ignores `services.vote.build`", "`services.vote.depends_on` must be a list", "`profiles` is not a Compose key", "`./vote` is not an absolute path", "`127.0.0.1:9229:9229` names an address", "`services.seed.restart: \"no\"`"]), variables: false },
            // These take values from variables: each is given one, as a stack's `variables:`
            // would.
            Case { file: "swarmprom.yml", cli: "template.Substitute (`${ADMIN_USER:-admin}`, …); configs from files", expect: Accept, variables: true },
            Case { file: "swarmprom-traefik.yml", cli: "template.Substitute (`${DOMAIN?…}`); validateExternalNetworks needs `traefik-public` on the swarm (a plan error otherwise)", expect: Accept, variables: true },
            Case { file: "awesome-postgresql-pgadmin.yml", cli: "template.Substitute; GetDeprecatedProperties (`container_name`); convertRestartPolicy", expect: Warn(4, &["services.postgres.container_name", "services.pgadmin.container_name", "services.postgres.restart", "services.pgadmin.restart"]), variables: true },
            Case { file: "awesome-plex.yml", cli: "GetUnsupportedProperties: `network_mode: host` ignored, the service is on the stack's network", expect: Refuse(1, &["ignores `services.plex.network_mode`, which changes what the file means"]), variables: true },
            Case { file: "awesome-pihole-cloudflared-DoH.yml", cli: "convert.convertServiceNetworks drops `ipv4_address`", expect: Refuse(1, &["ignores `services.cloudflared.networks.dns-net.ipv4_address`, which changes what the file means"]), variables: true },
        ];
        let dir = fixtures().join("corpus");
        let listed: BTreeSet<&str> = cases.iter().map(|c| c.file).collect();
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yml"))
            .collect();
        on_disk.sort();
        assert_eq!(
            on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            listed,
            "every file of the corpus has a case"
        );
        for case in &cases {
            let text = std::fs::read_to_string(dir.join(case.file)).unwrap();
            let file = Arc::new(SourceFile::new(case.file.into(), &text, Vec::new()));
            let mut errors = ConfigErrors::default();
            // The variables a user gives such a file (an absolute path where it names one).
            let variables: Variables = match case.variables {
                false => Variables::new(),
                true => referenced_names(&text)
                    .into_iter()
                    .map(|name| {
                        let value = match name.contains("PATH") {
                            true => "/srv/data".to_owned(),
                            false => format!("{}-value", name.to_lowercase()),
                        };
                        let sensitive = false;
                        (name, variables::Variable { value, sensitive })
                    })
                    .collect(),
            };
            let compose = parse_all(&text, &file, &dir, "s", &variables, &mut errors);
            let errors: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
            let warnings = compose.map(|(c, _)| c.warnings).unwrap_or_default();
            let contains =
                |all: &[&str], needle: &str| all.iter().filter(|m| m.contains(needle)).count();
            let (file, cli) = (case.file, case.cli);
            let warnings: Vec<&str> = warnings.iter().map(String::as_str).collect();
            match case.expect {
                Accept => {
                    assert!(errors.is_empty(), "{file} ({cli}): {errors:#?}");
                    assert!(warnings.is_empty(), "{file} ({cli}): {warnings:#?}");
                }
                Warn(count, needles) => {
                    assert!(errors.is_empty(), "{file} ({cli}): {errors:#?}");
                    assert_eq!(warnings.len(), count, "{file} ({cli}): {warnings:#?}");
                    for needle in needles {
                        assert_eq!(
                            contains(&warnings, needle),
                            1,
                            "{file} ({cli}): `{needle}` in {warnings:#?}"
                        );
                    }
                }
                Refuse(count, needles) => {
                    assert_eq!(errors.len(), count, "{file} ({cli}): {errors:#?}");
                    for needle in needles {
                        assert_eq!(
                            contains(&errors, needle),
                            1,
                            "{file} ({cli}): `{needle}` in {errors:#?}"
                        );
                    }
                }
            }
        }
    }

    /// The names a file refers to with `$NAME` or `${NAME…}` (`$$` is no reference).
    fn referenced_names(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] != b'$' {
                at += 1;
                continue;
            }
            if bytes.get(at + 1) == Some(&b'$') {
                at += 2;
                continue;
            }
            let start = at + 1 + usize::from(bytes.get(at + 1) == Some(&b'{'));
            let end = (start..bytes.len())
                .find(|&i| !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_'))
                .unwrap_or(bytes.len());
            if end > start {
                names.insert(text[start..end].to_owned());
            }
            at = end.max(at + 1);
        }
        names
    }
}
