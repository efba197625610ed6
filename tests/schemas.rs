//! `schemas/` holds a JSON Schema per kind, generated from the types corral decodes with.
//! These tests keep the files, and the book's kind pages made from them, in sync with the
//! code (regenerate both with `CORRAL_UPDATE_SCHEMAS=1 cargo test --test schemas`) and
//! validate every example and fixture against them.

use std::path::{Path, PathBuf};

use corral::base::yaml::{from_node, parse_documents};
use corral::schema;
use serde_json::Value;

fn schema_file(name: &str) -> PathBuf {
    Path::new("schemas").join(name)
}

fn generated() -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = schema::documents()
        .into_iter()
        .map(|(kind, schema)| (schema::file_name(kind), schema))
        .collect();
    files.push(("corral.json".to_owned(), schema::any_document()));
    files.push((
        "module-declaration.json".to_owned(),
        schema::module_declaration(),
    ));
    files
}

#[test]
fn schema_files_match_the_code() {
    let update = std::env::var_os("CORRAL_UPDATE_SCHEMAS").is_some();
    for (name, schema) in generated() {
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = schema_file(&name);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is out of date: run `CORRAL_UPDATE_SCHEMAS=1 cargo test --test schemas`",
            path.display()
        );
    }
}

/// The book's page per kind (`docs/src/kinds/`), written from the same schemas and the
/// hand-kept notes in `docs/kind-notes/`: regenerated with the schemas, checked like them.
#[test]
fn kind_pages_match_the_code() {
    let update = std::env::var_os("CORRAL_UPDATE_SCHEMAS").is_some();
    let pages = Path::new("docs/src/kinds");
    let mut expected = Vec::new();
    for (kind, schema) in schema::documents() {
        let name = corral::kind_pages::file_name(kind);
        let notes =
            std::fs::read_to_string(Path::new("docs/kind-notes").join(&name)).unwrap_or_default();
        let text = corral::kind_pages::page(kind, &schema, &notes);
        let path = pages.join(&name);
        expected.push(name);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is out of date: run `CORRAL_UPDATE_SCHEMAS=1 cargo test --test schemas`",
            path.display()
        );
    }
    // Every page is in the book's summary, and no page of a kind that is gone stays.
    let summary = std::fs::read_to_string("docs/src/SUMMARY.md").unwrap();
    for name in &expected {
        assert!(
            summary.contains(&format!("(kinds/{name})")),
            "docs/src/SUMMARY.md does not link kinds/{name}"
        );
    }
    for entry in std::fs::read_dir(pages).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            expected.contains(&name) || name == "README.md",
            "docs/src/kinds/{name} is no kind's page"
        );
    }
    for entry in std::fs::read_dir("docs/kind-notes").unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            expected.contains(&name),
            "docs/kind-notes/{name} is no kind's notes"
        );
    }
}

/// Every document in `path` (a file or directory), as JSON, with where it came from.
fn documents(path: &Path) -> Vec<(String, Value)> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (index, doc) in parse_documents(&text).unwrap().into_iter().enumerate() {
            let value: Value = from_node(&doc.root).unwrap();
            docs.push((format!("{} document {}", file.display(), index + 1), value));
        }
    }
    docs
}

fn validator(kind: &str) -> jsonschema::Validator {
    let path = schema_file(&schema::file_name(kind));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    validator(kind)
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn examples_and_fixtures_match_the_schemas() {
    let mut checked = 0;
    for path in [
        "examples",
        "fixtures/record",
        "fixtures/inventory.yaml",
        "tests/inputs/e2e",
        "tests/inputs/inventory.yaml",
    ] {
        for (origin, doc) in documents(Path::new(path)) {
            let problems = problems(&doc);
            assert!(problems.is_empty(), "{origin}: {problems:?}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} documents checked");
}

/// Every module's `module.yaml` under `modules/` matches the declaration schema.
#[test]
fn module_declarations_match_their_schema() {
    let text = std::fs::read_to_string(schema_file("module-declaration.json")).unwrap();
    let validator =
        jsonschema::validator_for(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    fn declarations(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                declarations(&path, found);
            } else if path.file_name().is_some_and(|n| n == "module.yaml") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    declarations(Path::new("modules"), &mut found);
    assert!(found.len() >= 4, "{found:?}");
    for path in found {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = from_node(&parse_documents(&text).unwrap().remove(0).root).unwrap();
        let problems: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
    }
    // A misspelt input field is caught.
    let bad: Value = serde_json::json!({"inputs": {"x": {"type": "string", "defualt": "a"}}});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn schemas_reject_what_the_loader_rejects() {
    let docs = documents(Path::new("tests/inputs/errors/unknown-field.yaml"));
    assert!(
        !problems(&docs[0].1).is_empty(),
        "a misspelt field is caught"
    );
    let docs = documents(Path::new("tests/inputs/errors/missing-field.yaml"));
    assert!(
        !problems(&docs[0].1).is_empty(),
        "a missing field is caught"
    );
    let docs = documents(Path::new("tests/inputs/errors/selector-typo.yaml"));
    assert!(!problems(&docs[0].1).is_empty(), "a bad selector is caught");
}
