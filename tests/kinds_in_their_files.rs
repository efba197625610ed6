//! "A new kind is its file (or folder) and one registry line", counted: no code outside
//! the kinds crate (`crates/corral-kinds/src/`) — nor its `lib.rs` outside the registry —
//! names a kind, by its module
//! (`swarm_secret::…`), its `Spec::` variant, or its `kind:` string. What central code
//! decides per kind is a method of the kind's trait, which the registry dispatches.
//! Tests (`#[cfg(test)] mod tests`, `tests/`) may name kinds: they build examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Code that still names kinds, and why; every other file must name none. Each entry is
/// a path prefix from the repository's root.
const EXCEPTIONS: &[(&str, &str)] = &[
    // `corral import` reads a kind's objects from hosts and writes its documents: a
    // per-kind feature of its own, in the CLI crate.
    ("src/import/", "corral import, per kind by nature"),
];

/// One registry line: `Variant(module::Spec) => Placement,`.
struct Registered {
    variant: String,
    module: String,
    kind: &'static str,
}

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The kinds crate's sources, each kind's folder or file among them.
const KINDS: &str = "crates/corral-kinds/src/";

/// The registry's lines, in order, with each kind's `kind:` string.
fn registry() -> (Vec<Registered>, String) {
    let text = std::fs::read_to_string(root().join(KINDS).join("lib.rs")).unwrap();
    let start = text.find("\nregistry! {").expect("the registry invocation");
    let end = start + text[start..].find("\n}\n").expect("the registry's end") + 3;
    let block = &text[start..end];
    let mut kinds = Vec::new();
    for line in block.lines().map(str::trim) {
        let Some((variant, rest)) = line.split_once('(') else {
            continue;
        };
        let Some((module, _)) = rest.split_once("::") else {
            continue;
        };
        kinds.push((variant.to_owned(), module.to_owned()));
    }
    assert_eq!(kinds.len(), corral::kinds::KNOWN_KINDS.len(), "{block}");
    let kinds = kinds
        .into_iter()
        .zip(corral::kinds::KNOWN_KINDS)
        .map(|((variant, module), kind)| Registered {
            variant,
            module,
            kind,
        })
        .collect();
    // The registry file without its registry and its module list.
    let rest: String = without_tests(&format!("{}{}", &text[..start], &text[end..]))
        .lines()
        .filter(|l| !(l.starts_with("pub mod ") || l.starts_with("mod ")) || !l.ends_with(';'))
        .map(|l| format!("{l}\n"))
        .collect();
    (kinds, rest)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` without its unit tests (a file's `#[cfg(test)] mod tests` comes last).
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(found) = text[at..].find("#[cfg(test)]") {
        let start = at + found;
        let next = text[start + 12..].trim_start();
        if next.starts_with("mod ") && !next.split('\n').next().unwrap_or("").ends_with(';') {
            return &text[..start];
        }
        at = start + 12;
    }
    text
}

/// Whether `needle` occurs in `line` where no identifier character comes just before.
fn names(line: &str, needle: &str) -> bool {
    line.match_indices(needle).any(|(i, _)| {
        !line[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// `(file, line number, line)` of every line of central code naming `kind`.
fn references(kind: &Registered, files: &[(String, String)]) -> Vec<(String, usize, String)> {
    let module = format!("{}::", kind.module);
    let variant = format!("Spec::{}", kind.variant);
    let literal = format!("\"{}\"", kind.kind);
    let mut found = Vec::new();
    for (file, text) in files {
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                // Prose and doc links name kinds freely; code does not.
                if !names(code, &variant) && !code.contains(&literal) {
                    continue;
                }
            }
            let variant_named = code.match_indices(&variant).any(|(i, _)| {
                !code[i + variant.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            // A `use` of the module (`use crate::kinds::swarm_secret as s;`) names it too.
            let imported = code.contains("use ")
                && code.contains("kinds::")
                && code
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == kind.module);
            if (names(code, &module) && !code.contains(&format!("facts::{module}")))
                || variant_named
                || imported
                || code.contains(&literal)
            {
                found.push((file.clone(), n + 1, line.to_owned()));
            }
        }
    }
    found
}

/// Central code's text by path from the root: every crate's sources outside the kinds
/// crate, and the registry file without its registry, all without their unit tests.
fn central(rest_of_registry: String) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    sources(&root().join("src"), &mut paths);
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        sources(&entry.unwrap().path().join("src"), &mut paths);
    }
    assert!(paths.len() > 100, "{paths:?}");
    let mut files = vec![(format!("{KINDS}lib.rs"), rest_of_registry)];
    for path in paths {
        let relative = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // A unit test module in a file of its own (`#[cfg(test)] mod tests;`) is a test.
        let test_module = path
            .file_stem()
            .is_some_and(|stem| stem == "tests" || stem.to_string_lossy().ends_with("_tests"));
        if relative.starts_with(KINDS) || test_module {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        files.push((relative, without_tests(&text).to_owned()));
    }
    files
}

#[test]
fn no_central_code_names_a_kind() {
    let (kinds, rest) = registry();
    let files = central(rest);
    let mut counts = BTreeMap::new();
    let mut offending = Vec::new();
    for kind in &kinds {
        let found = references(kind, &files);
        let (excepted, central): (Vec<_>, Vec<_>) = found.into_iter().partition(|(file, ..)| {
            EXCEPTIONS
                .iter()
                .any(|(prefix, _)| file.starts_with(prefix))
        });
        counts.insert(kind.kind, (central.len(), excepted.len()));
        for (file, line, text) in central {
            offending.push(format!("{file}:{line}: {} in `{}`", kind.kind, text.trim()));
        }
    }
    eprintln!("kind: central references, excepted references");
    for (kind, (central, excepted)) in &counts {
        eprintln!("{kind}: {central}, {excepted}");
    }
    assert!(
        offending.is_empty(),
        "central code names a kind; make it a method of the kind's trait (`crates/corral-kinds/src/lib.rs`) \
         that the kind implements in its own file:\n{}",
        offending.join("\n")
    );
}

/// The count sees a `match` arm on a kind in central code, in each of the forms it takes.
#[test]
fn a_match_arm_in_central_code_is_counted() {
    let (kinds, _) = registry();
    let secret = kinds.iter().find(|k| k.kind == "swarm/secret").unwrap();
    for arm in [
        "        Spec::SwarmSecret(s) => s.cluster.clone(),",
        "        crate::kinds::swarm_secret::KIND => true,",
        "        \"swarm/secret\" => true,",
        "use crate::kinds::swarm_secret as s;",
        "use crate::kinds::{swarm_secret, Step};",
    ] {
        let files = vec![("plan/mod.rs".to_owned(), format!("fn f() {{\n{arm}\n}}\n"))];
        assert_eq!(references(secret, &files).len(), 1, "{arm}");
    }
    // Not `Spec::SwarmSecretX`, nor a module of the same name elsewhere, nor prose.
    let files = vec![(
        "plan/mod.rs".to_owned(),
        "Spec::SwarmSecrets(s)\ncrate::facts::swarm_secret::X\n/// see [`swarm_secret::redact`]\n"
            .to_owned(),
    )];
    assert_eq!(references(secret, &files), Vec::new());
}
