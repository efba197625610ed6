//! `kind: module`: a folder of ordinary `kind:` documents with declared inputs, used by a
//! document that names it (`source:`) and gives the inputs. The loader expands each use into
//! ordinary documents before any check that needs the whole configuration, so `validate`,
//! `plan` and `graph` see only the expanded resources.
//!
//! This module holds what expansion is, apart from reading files: finding a module's folder,
//! its declaration (`module.yaml`), checking and substituting `${inputs.NAME}`, and naming
//! the expanded resources after the instance (`motd` of instance `web` is `web.motd`). The
//! loader (`config/expand.rs`) reads the files, reports the errors and loads the result like
//! any other document. It never touches a host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::address::Address;
use crate::base::yaml::{Node, Span, Value};

/// The kind of a use site.
pub const KIND: &str = "module";

/// The file of a module's folder that declares its inputs.
pub const DECLARATION: &str = "module.yaml";

/// The folder bare `source:` names are looked up in.
pub const MODULES_DIR: &str = "modules";

/// The `specification` of a use site.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleUseSpec {
    /// The module: `a/b` is the folder `modules/a/b` found next to this file, the
    /// configuration's directories or one of their parents; `./x` and `../x` are folders
    /// relative to this file.
    pub source: String,
    /// Values of the module's inputs, by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, serde_json::Value>,
}

/// A module's `module.yaml`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    #[serde(default)]
    pub description: Option<String>,
    /// The inputs, by name; one without a `default` is required.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputDeclaration>,
}

/// One declared input.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputDeclaration {
    #[serde(rename = "type")]
    pub ty: InputType,
    /// The value when the use site gives none; without it the input is required.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// What an input holds. `any` takes whatever is given (a machine selector: `all`, a list of
/// names or `{labels: …}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Boolean,
    List,
    Map,
    Any,
}

impl InputType {
    /// Worded for messages ("must be a string").
    pub fn described(self) -> &'static str {
        match self {
            InputType::String => "a string",
            InputType::Integer => "an integer",
            InputType::Boolean => "a boolean",
            InputType::List => "a list",
            InputType::Map => "a map",
            InputType::Any => "any value",
        }
    }

    /// The value as the module sees it, or `None` when it is not of this type. A string
    /// input takes any scalar as its text (`port: 80` for a string is `"80"`), as string
    /// fields of the kinds do.
    pub fn accept(self, node: &Node) -> Option<Node> {
        let ok = match (self, &node.value) {
            (InputType::Any, _)
            | (InputType::Integer, Value::Int(_))
            | (InputType::Boolean, Value::Bool(_))
            | (InputType::List, Value::Seq(_))
            | (InputType::Map, Value::Map(_))
            | (InputType::String, Value::String(_)) => true,
            (InputType::String, Value::Int(_) | Value::Bool(_) | Value::Float(_)) => {
                let text = node.as_str()?.to_owned();
                return Some(Node {
                    value: Value::String(text.clone()),
                    span: node.span,
                    text: Some(text),
                });
            }
            _ => false,
        };
        ok.then(|| node.clone())
    }

    /// Whether a value of this type may stand inside a longer string (`"v${inputs.x}"`).
    fn is_scalar(self) -> bool {
        matches!(
            self,
            InputType::String | InputType::Integer | InputType::Boolean
        )
    }
}

/// Names of instances: resource names without dots, since a dot separates the instance from
/// the module's own names.
pub fn is_valid_instance_name(name: &str) -> bool {
    crate::address::is_valid_name(name) && !name.contains('.')
}

/// Names of inputs: `[a-z][a-z0-9_]*`.
pub fn is_valid_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Where a module's folder is, canonical, and the directories it may be in.
#[derive(Debug)]
pub struct Resolved {
    pub dir: PathBuf,
    /// Whether the folder (symbolic links resolved) is inside the configuration's
    /// directories, the using file's directory or a `modules/` folder found above them.
    pub inside: bool,
}

/// Finds the folder `source` names for a file in `file_dir`, given the configuration's
/// (canonical) directories `roots` and the module search path `search` (`--module-path`,
/// looked in after the `modules/` folders, as Ansible's roles path). `Err` is the message
/// and a help.
pub fn resolve(
    source: &str,
    file_dir: &Path,
    roots: &[PathBuf],
    search: &[PathBuf],
) -> Result<Resolved, (String, String)> {
    let file_dir = file_dir
        .canonicalize()
        .unwrap_or_else(|_| file_dir.to_path_buf());
    let mut bases: Vec<PathBuf> = Vec::new();
    for start in std::iter::once(&file_dir).chain(roots) {
        for ancestor in start.ancestors() {
            if !bases.iter().any(|b| b == ancestor) {
                bases.push(ancestor.to_path_buf());
            }
        }
    }
    let module_dirs: Vec<PathBuf> = bases
        .iter()
        .filter_map(|b| b.join(MODULES_DIR).canonicalize().ok())
        .collect();
    let is_path = source.starts_with("./") || source.starts_with("../") || source.starts_with('/');
    let found = if is_path {
        let dir = file_dir.join(source);
        if !dir.join(DECLARATION).is_file() {
            return Err((
                format!("`{source}` is not a module: there is no `{}`", dir.join(DECLARATION).display()),
                "a module is a folder holding `module.yaml`; `./` and `../` paths are relative to this file".into(),
            ));
        }
        dir
    } else {
        let valid = !source.is_empty()
            && source.split('/').all(|s| {
                !matches!(s, "" | "." | "..")
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
        if !valid {
            return Err((
                format!("`{source}` is not a module name"),
                "name a module under `modules/` as `a/b`, or a folder relative to this file as `./x` or `../x`".into(),
            ));
        }
        match bases
            .iter()
            .map(|b| b.join(MODULES_DIR))
            .chain(search.iter().cloned())
            .map(|d| d.join(source))
            .find(|d| d.join(DECLARATION).is_file())
        {
            Some(dir) => dir,
            None => {
                let searched = match search {
                    [] => String::new(),
                    dirs => format!(
                        ", then as `DIR/{source}` in the module path ({})",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err((
                    format!("module `{source}` not found"),
                    format!("`{source}` is looked up as `{MODULES_DIR}/{source}/{DECLARATION}` in this file's directory, the configuration's directories and their parents{searched}; write `./{source}` for a folder next to this file, or name a folder of shared modules with --module-path DIR (or CORRAL_MODULE_PATH)"),
                ));
            }
        }
    };
    let dir = found.canonicalize().map_err(|e| {
        (
            format!("cannot read module folder `{}`: {e}", found.display()),
            String::new(),
        )
    })?;
    let search: Vec<PathBuf> = search
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .collect();
    let inside = roots
        .iter()
        .chain(std::iter::once(&file_dir))
        .chain(&module_dirs)
        .chain(&search)
        .any(|allowed| dir.starts_with(allowed));
    Ok(Resolved { dir, inside })
}

/// A path as messages show it: relative to the working directory when it is below it.
pub fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    match cwd.as_deref().and_then(|cwd| path.strip_prefix(cwd).ok()) {
        Some(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// A problem found in a module's text: where, what, and a help.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

const OPEN: &str = "${inputs.";

/// The input a scalar that is exactly `${inputs.NAME}` names.
fn whole_placeholder(text: &str) -> Option<&str> {
    let name = text.strip_prefix(OPEN)?.strip_suffix('}')?;
    (!name.contains('}')).then_some(name)
}

/// Pieces of a string: literal text (with `$${` already read as `${`) and placeholders.
enum Piece<'t> {
    Text(String),
    Input(&'t str),
}

/// Splits `text` into literal text and `${inputs.NAME}` placeholders; `None` when the
/// string holds neither a placeholder nor an escape (it stays as written).
fn pieces(text: &str) -> Option<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut special = false;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            literal.push_str("${");
            rest = after;
            special = true;
            continue;
        }
        if let Some((name, after)) = tail.strip_prefix(OPEN).and_then(|t| t.split_once('}')) {
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Input(name));
            rest = after;
            special = true;
            continue;
        }
        literal.push('$');
        rest = &tail[1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    special.then_some(pieces)
}

/// Checks every placeholder of a module document against the declared inputs: an unknown
/// name, or a list or map inside a longer string. Done once per module, whatever its uses.
pub fn check_placeholders(node: &Node, declared: &BTreeMap<String, InputType>) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk_strings(node, &mut |span, text, whole_allowed| {
        let unknown = |name: &str| {
            Problem {
            span,
            message: format!("unknown input `{name}` in `{OPEN}{name}}}`"),
            help: Some(match declared.is_empty() {
                true => "the module declares no inputs: declare it under `inputs:` in `module.yaml`, or write `$${` for a literal `${`".into(),
                false => {
                    let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                    crate::base::diagnostic::suggestion(name, &names, "inputs")
                }
            }),
        }
        };
        if let Some(name) = whole_placeholder(text).filter(|_| whole_allowed) {
            if !declared.contains_key(name) {
                problems.push(unknown(name));
            }
            return;
        }
        for piece in pieces(text).unwrap_or_default() {
            let Piece::Input(name) = piece else { continue };
            match declared.get(name) {
                None => problems.push(unknown(name)),
                Some(ty) if !ty.is_scalar() && *ty != InputType::Any => problems.push(Problem {
                    span,
                    message: format!(
                        "input `{name}` is {}, which cannot stand inside a string",
                        ty.described()
                    ),
                    help: Some(format!(
                        "write `{OPEN}{name}}}` alone as the whole value to put the {} here",
                        match ty {
                            InputType::List => "list",
                            _ => "map",
                        }
                    )),
                }),
                Some(_) => {}
            }
        }
    });
    problems
}

/// Calls `f` with every string scalar below `node` (keys too, which take only text: the
/// flag says whether a whole-value placeholder may put a list or map there).
fn walk_strings(node: &Node, f: &mut impl FnMut(Span, &str, bool)) {
    match &node.value {
        Value::String(text) => f(node.span, text, true),
        Value::Seq(items) => items.iter().for_each(|item| walk_strings(item, f)),
        Value::Map(entries) => {
            for (key, value) in entries {
                if let Value::String(text) = &key.value {
                    f(key.span, text, false);
                }
                walk_strings(value, f);
            }
        }
        _ => {}
    }
}

/// `node` with its inputs substituted: a scalar that is exactly `${inputs.NAME}` becomes the
/// input's value with its type (located at the placeholder, so errors about it point into
/// the module); a placeholder inside a longer string becomes the input's text; `$${` is a
/// literal `${`. `values` holds every declared input; problems are values that cannot be
/// put where they are (a list given to an `any` input used inside a string).
pub fn substitute(
    node: &Node,
    values: &BTreeMap<String, Node>,
    problems: &mut Vec<Problem>,
) -> Node {
    match &node.value {
        Value::String(text) => {
            if let Some(value) = whole_placeholder(text).and_then(|name| values.get(name)) {
                return relocated(value, node.span);
            }
            interpolated(node, text, values, problems)
        }
        Value::Seq(items) => Node {
            value: Value::Seq(
                items
                    .iter()
                    .map(|i| substitute(i, values, problems))
                    .collect(),
            ),
            ..node.clone()
        },
        Value::Map(entries) => Node {
            value: Value::Map(
                entries
                    .iter()
                    .map(|(key, value)| {
                        let key = match &key.value {
                            Value::String(text) => interpolated(key, text, values, problems),
                            _ => key.clone(),
                        };
                        (key, substitute(value, values, problems))
                    })
                    .collect(),
            ),
            ..node.clone()
        },
        _ => node.clone(),
    }
}

fn interpolated(
    node: &Node,
    text: &str,
    values: &BTreeMap<String, Node>,
    problems: &mut Vec<Problem>,
) -> Node {
    let Some(pieces) = pieces(text) else {
        return node.clone();
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Input(name) => match values.get(name).and_then(|v| match &v.value {
                Value::Seq(_) | Value::Map(_) | Value::Null => None,
                _ => v.as_str(),
            }) {
                Some(value) => out.push_str(value),
                None => problems.push(Problem {
                    span: node.span,
                    message: format!(
                        "input `{name}` is {}, which cannot stand inside a string",
                        values.get(name).map_or("not declared", Node::kind_name)
                    ),
                    help: Some(format!("write `{OPEN}{name}}}` alone as the whole value, or give the input a string, a number or a boolean")),
                }),
            },
        }
    }
    Node {
        value: Value::String(out.clone()),
        span: node.span,
        text: Some(out),
    }
}

/// A copy of `node` located at `span` throughout (an input's value, from another file, put
/// where its placeholder was).
fn relocated(node: &Node, span: Span) -> Node {
    let value = match &node.value {
        Value::Seq(items) => Value::Seq(items.iter().map(|i| relocated(i, span)).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (relocated(k, span), relocated(v, span)))
                .collect(),
        ),
        other => other.clone(),
    };
    Node {
        value,
        span,
        text: node.text.clone(),
    }
}

fn set_string(node: &mut Node, text: String) {
    node.value = Value::String(text.clone());
    node.text = Some(text);
}

/// Names the documents of one instance after it: `name: motd` becomes `web.motd`, and a
/// `depends_on` entry naming a document of the same instance (by its local name) follows
/// it; entries naming anything else stay as written.
pub fn prefix_names(documents: &mut [Node], instance: &str) {
    let local: BTreeSet<(String, String)> = documents
        .iter()
        .filter_map(|d| {
            Some((
                d.get("kind")?.as_str()?.to_owned(),
                d.get("name")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    for document in documents {
        let Value::Map(entries) = &mut document.value else {
            continue;
        };
        for (key, value) in entries.iter_mut() {
            match key.as_str() {
                Some("name") => {
                    if let Some(name) = value.as_str() {
                        let prefixed = format!("{instance}.{name}");
                        set_string(value, prefixed);
                    }
                }
                Some("depends_on") => {
                    let Value::Seq(items) = &mut value.value else {
                        continue;
                    };
                    for item in items {
                        let Some(Ok(target)) = item.as_str().map(Address::parse) else {
                            continue;
                        };
                        if local.contains(&(target.kind.clone(), target.name.clone())) {
                            let prefixed = Address::new(
                                &target.kind,
                                &format!("{instance}.{}", target.name),
                                target.machine.as_deref(),
                            );
                            set_string(item, prefixed.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::yaml::parse_documents;

    fn node(text: &str) -> Node {
        parse_documents(text).unwrap().remove(0).root
    }

    fn values(text: &str) -> BTreeMap<String, Node> {
        match node(text).value {
            Value::Map(entries) => entries
                .into_iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
                .collect(),
            _ => panic!("not a map"),
        }
    }

    fn plain(node: &Node) -> serde_json::Value {
        crate::base::yaml::from_node(node).unwrap()
    }

    #[test]
    fn whole_placeholders_keep_the_input_type() {
        let doc = node("machines: ${inputs.machines}\nport: ${inputs.port}\nlabels: ${inputs.labels}\nflag: '${inputs.flag}'\n");
        let values = values("machines: [n1, n2]\nport: 8080\nlabels: {role: edge}\nflag: true\n");
        let mut problems = Vec::new();
        let out = substitute(&doc, &values, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            plain(&out),
            serde_json::json!({"machines": ["n1", "n2"], "port": 8080, "labels": {"role": "edge"}, "flag": true})
        );
        // The value is located at the placeholder, in the module's text.
        let placeholder = doc.get("machines").unwrap().span;
        let Value::Seq(items) = &out.get("machines").unwrap().value else {
            panic!()
        };
        assert!(items.iter().all(|i| i.span == placeholder));
        // `all` as a selector too.
        let out = substitute(&doc, &values_with("machines", "all"), &mut problems);
        assert_eq!(out.get("machines").unwrap().as_str(), Some("all"));
    }

    fn values_with(name: &str, yaml: &str) -> BTreeMap<String, Node> {
        let mut v = values("port: 1\nlabels: {}\nflag: false\n");
        v.insert(name.to_owned(), node(yaml));
        v
    }

    #[test]
    fn placeholders_inside_strings_take_the_text_and_dollar_dollar_escapes() {
        let doc = node("path: /etc/${inputs.name}.conf\ncontent: \"port=${inputs.port} on=${inputs.flag} $${HOME} $${inputs.name} ${HOME}\"\n${inputs.name}.key: x\n");
        let values = values("name: web\nport: 80\nflag: true\n");
        let mut problems = Vec::new();
        let out = substitute(&doc, &values, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            plain(&out),
            serde_json::json!({"path": "/etc/web.conf", "content": "port=80 on=true ${HOME} ${inputs.name} ${HOME}", "web.key": "x"})
        );
    }

    #[test]
    fn lists_cannot_stand_inside_strings() {
        let doc = node("path: /etc/${inputs.machines}\n");
        let mut problems = Vec::new();
        substitute(&doc, &values("machines: [n1]\n"), &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "input `machines` is a sequence, which cannot stand inside a string"
        );
        assert_eq!(problems[0].span, doc.get("path").unwrap().span);
    }

    #[test]
    fn placeholders_are_checked_against_the_declaration() {
        let declared: BTreeMap<String, InputType> = [
            ("text".to_owned(), InputType::String),
            ("machines".to_owned(), InputType::List),
        ]
        .into();
        let doc = node(
            "a: ${inputs.txt}\nb: x${inputs.machines}\nc: ${inputs.machines}\nd: $${inputs.nope}\n",
        );
        let problems = check_placeholders(&doc, &declared);
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown input `txt` in `${inputs.txt}`",
                "input `machines` is a list, which cannot stand inside a string"
            ]
        );
        assert_eq!(problems[0].help.as_deref(), Some("did you mean `text`?"));
    }

    #[test]
    fn names_are_prefixed_and_local_dependencies_follow() {
        let mut docs: Vec<Node> = parse_documents(
            "kind: os/package\nname: base\nspecification: {}\n---\nkind: os/file\nname: motd\ndepends_on:\n  - os/package.base\n  - os/package.base[n1]\n  - os/package.other\n  - os/file.base\nspecification: {}\n",
        )
        .unwrap()
        .into_iter()
        .map(|d| d.root)
        .collect();
        prefix_names(&mut docs, "web");
        assert_eq!(docs[0].get("name").unwrap().as_str(), Some("web.base"));
        assert_eq!(
            plain(docs[1].get("depends_on").unwrap()),
            serde_json::json!([
                "os/package.web.base",
                "os/package.web.base[n1]",
                "os/package.other",
                "os/file.base"
            ])
        );
        let address = Address::parse("os/package.web.base[n1]").unwrap();
        assert_eq!(
            (address.name.as_str(), address.machine.as_deref()),
            ("web.base", Some("n1"))
        );
    }

    #[test]
    fn inputs_are_checked_by_type() {
        let int = node("80");
        assert_eq!(
            InputType::String.accept(&int).unwrap().value,
            Value::String("80".into())
        );
        assert!(InputType::Integer.accept(&node("eighty")).is_none());
        assert!(InputType::List.accept(&node("[a]")).is_some());
        assert!(InputType::Map.accept(&node("[a]")).is_none());
        assert!(InputType::Any.accept(&node("{labels: {a: b}}")).is_some());
        assert!(is_valid_instance_name("web-1") && !is_valid_instance_name("web.1"));
    }

    /// A shared folder of modules outside the configuration, named by `--module-path`: bare
    /// names are found there after the configuration's own `modules/`, and trusted.
    #[test]
    fn bare_sources_are_found_on_the_module_path_and_trusted() {
        let shared = tempfile::tempdir().unwrap();
        let module = shared.path().join("team/web");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join(DECLARATION), "inputs: {}\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("infra");
        std::fs::create_dir_all(&config).unwrap();
        let roots = [config.canonicalize().unwrap()];
        let missing = resolve("team/web", &config, &roots, &[]).unwrap_err();
        assert!(missing.1.contains("--module-path"), "{missing:?}");
        let search = [root.path().join("nothing"), shared.path().to_owned()];
        let found = resolve("team/web", &config, &roots, &search).unwrap();
        assert_eq!(found.dir, module.canonicalize().unwrap());
        assert!(found.inside, "a module on the module path is trusted");
        // The configuration's own `modules/` comes first.
        let own = root.path().join("modules/team/web");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join(DECLARATION), "inputs: {}\n").unwrap();
        let found = resolve("team/web", &config, &roots, &search).unwrap();
        assert_eq!(found.dir, own.canonicalize().unwrap());
        // A path (not a bare name) outside both is still outside.
        let path = format!("{}", module.display());
        assert!(!resolve(&path, &config, &roots, &[]).unwrap().inside);
    }

    #[test]
    fn bare_sources_are_found_in_a_modules_folder_above() {
        let root = tempfile::tempdir().unwrap();
        let module = root.path().join("modules/a/b");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join(DECLARATION), "inputs: {}\n").unwrap();
        let config = root.path().join("examples/x");
        std::fs::create_dir_all(&config).unwrap();
        let found = resolve("a/b", &config, &[], &[]).unwrap();
        assert_eq!(found.dir, module.canonicalize().unwrap());
        assert!(found.inside);
        let relative = resolve("../../modules/a/b", &config, &[], &[]).unwrap();
        assert_eq!(relative.dir, found.dir);
        assert!(resolve("a/c", &config, &[], &[])
            .unwrap_err()
            .0
            .contains("not found"));
        assert!(resolve("a/../b", &config, &[], &[]).is_err());
        assert!(resolve("./nothing", &config, &[], &[]).is_err());
    }
}
