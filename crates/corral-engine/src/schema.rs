//! JSON Schemas of the document kinds, for editors (yaml-language-server) and for checking
//! examples. They are generated from the very types the loader decodes specifications
//! into, so they cannot disagree with corral; `schemas/*.json` are written from here and a
//! test keeps the files in sync.

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::base::envelope::document;
use crate::base::machine::{self, MachineSpec};
use crate::config::module;

/// `(kind, schema)` for every kind, in a stable order.
pub fn documents() -> Vec<(&'static str, Value)> {
    let mut documents = vec![(machine::KIND, document::<MachineSpec>(machine::KIND))];
    documents.extend(crate::kinds::schemas());
    documents.push((module::KIND, module_use()));
    documents
}

/// A `kind: module` document: the envelope, whose name has no dots (it prefixes the
/// expanded resources' names), and `specification: {source, inputs}`.
fn module_use() -> Value {
    let mut schema = document::<module::ModuleUseSpec>(module::KIND);
    schema["properties"]["name"]["pattern"] = json!("^[a-z0-9][a-z0-9_-]*$");
    schema
}

/// A module's declaration (`module.yaml`): its description and typed inputs.
pub fn module_declaration() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator
        .into_root_schema_for::<module::Declaration>()
        .to_value();
    schema["title"] = json!("corral module declaration (module.yaml)");
    schema
}

/// The file a kind's schema is kept in: `os/file` → `os-file.json`.
pub fn file_name(kind: &str) -> String {
    format!("{}.json", kind.replace('/', "-"))
}

/// A schema accepting any corral document, by its `kind`.
pub fn any_document() -> Value {
    let kinds: Vec<Value> = documents()
        .iter()
        .map(|(kind, _)| {
            json!({
                "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
                "then": { "$ref": file_name(kind) }
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "corral document",
        "type": "object",
        "required": ["kind", "name", "specification"],
        "allOf": kinds
    })
}
