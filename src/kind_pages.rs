//! The book's page per kind (`docs/src/kinds/*.md`), written from the kind's JSON Schema,
//! that is from the doc comments of the types the loader decodes with, so the reference
//! cannot say other than the code. A kind's prose beyond its fields (how it decides, what
//! it refuses) is kept by hand in `docs/kind-notes/KIND.md` and appended. `tests/schemas.rs`
//! fails when a checked-in page differs from what this writes.

use serde_json::{Map, Value};

/// How deep nested objects are unfolded into their own rows (`update.monitor`).
const MAX_DEPTH: usize = 4;

/// The page's file name: `os/file` → `os-file.md`.
pub fn file_name(kind: &str) -> String {
    format!("{}.md", kind.replace('/', "-"))
}

/// The page of `kind`, from its document schema, with `notes` (Markdown, may be empty)
/// after the generated reference.
pub fn page(kind: &str, schema: &Value, notes: &str) -> String {
    let defs = schema.get("$defs").and_then(Value::as_object);
    let spec = &schema["properties"]["specification"];
    let mut out = format!(
        "<!-- Generated from the code by `CORRAL_UPDATE_SCHEMAS=1 cargo test --test schemas`;\n     \
         edit the doc comments of the spec types, or docs/kind-notes/{}. -->\n\n# {kind}\n\n",
        file_name(kind)
    );
    if let Some(description) = description(spec) {
        out.push_str(&description);
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "Every document has the [envelope](../configuration.md#the-envelope) `kind: {kind}`, \
         `name`, `specification` and optionally `title`, `depends_on` and `lifecycle`. Editors \
         check it with the JSON Schema `schemas/{}`.\n\n",
        crate::schema::file_name(kind)
    ));
    out.push_str("## Specification\n\n");
    let mut rows = Vec::new();
    fields(spec, defs, "", 0, &mut rows);
    if rows.is_empty() {
        out.push_str("Any value (see below).\n");
    } else {
        out.push_str("| field | type | required | default | description |\n");
        out.push_str("|---|---|---|---|---|\n");
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    let notes = notes.trim();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(notes);
        out.push('\n');
    }
    out
}

/// Follows `$ref: #/$defs/NAME` (also when wrapped as `anyOf: [$ref, null]`).
fn resolve<'a>(schema: &'a Value, defs: Option<&'a Map<String, Value>>) -> &'a Value {
    let target = schema
        .get("$ref")
        .or_else(|| non_null_branch(schema).and_then(|b| b.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs?.get(name));
    match target {
        Some(found) => found,
        None => match non_null_branch(schema) {
            Some(branch) => branch,
            None => schema,
        },
    }
}

/// The one branch of `anyOf: [X, {type: null}]`.
fn non_null_branch(schema: &Value) -> Option<&Value> {
    let branches = schema.get("anyOf")?.as_array()?;
    let mut others = branches.iter().filter(|b| b["type"] != "null");
    match (others.next(), others.next()) {
        (Some(one), None) if branches.len() == 2 => Some(one),
        _ => None,
    }
}

/// The field's own description, else its type's.
fn description(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// One row per property of the object `schema`, nested objects unfolded with their path.
fn fields(
    schema: &Value,
    defs: Option<&Map<String, Value>>,
    prefix: &str,
    depth: usize,
    rows: &mut Vec<String>,
) {
    let object = resolve(schema, defs);
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let path = format!("{prefix}{name}");
        let target = resolve(property, defs);
        let text = description(property)
            .or_else(|| description(target))
            .unwrap_or_default();
        let default = match property.get("default") {
            Some(Value::Array(a)) if a.is_empty() => String::new(),
            // An object's default is its fields' defaults, listed on their own rows.
            Some(Value::Object(_)) => String::new(),
            Some(value) => format!("`{value}`"),
            None => String::new(),
        };
        rows.push(format!(
            "| `{path}` | {} | {} | {} | {} |",
            cell(&type_of(property, defs, 0)),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            cell(&default),
            cell(&text)
        ));
        if depth + 1 < MAX_DEPTH {
            let items = target.get("items").map(|i| resolve(i, defs));
            if target.get("properties").is_some() {
                fields(target, defs, &format!("{path}."), depth + 1, rows);
            } else if let Some(items) = items.filter(|i| i.get("properties").is_some()) {
                fields(items, defs, &format!("{path}[]."), depth + 1, rows);
            }
        }
    }
}

/// A short type: `string`, `list of string`, `map of string`, `"a" \| "b"`, `object`.
fn type_of(schema: &Value, defs: Option<&Map<String, Value>>, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "value".into();
    }
    let schema = resolve(schema, defs);
    if let Some(constant) = schema.get("const") {
        return format!("`{constant}`");
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let mut names: Vec<String> = Vec::new();
            for branch in branches.iter().filter(|b| b["type"] != "null") {
                let name = type_of(branch, defs, depth + 1);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            return names.join(" or ");
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    let named: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("list of {}", type_of(items, defs, depth + 1)),
                None => "list".into(),
            },
            "object" => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) | None => "object".into(),
                Some(Value::Bool(true)) => "map".into(),
                Some(values) => format!("map of {}", type_of(values, defs, depth + 1)),
            },
            other => other.to_owned(),
        })
        .collect();
    match named.is_empty() {
        true => "any".into(),
        false => named.join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_lists_fields_with_nested_paths_types_and_defaults() {
        let schema = json!({
            "$defs": {
                "Policy": {
                    "type": "object",
                    "description": "How updates roll.",
                    "properties": { "delay": { "type": "string", "description": "Between\n tasks." } }
                },
                "Mode": { "type": "string", "enum": ["replicated", "global"] }
            },
            "properties": { "specification": {
                "description": "`x/y` specification.",
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": { "type": "string", "description": "The image | tag." },
                    "mode": { "$ref": "#/$defs/Mode", "default": "replicated" },
                    "update": { "anyOf": [{ "$ref": "#/$defs/Policy" }, { "type": "null" }] },
                    "env": { "type": "object", "additionalProperties": { "type": "string" }, "default": {} },
                    "ports": { "type": "array", "items": { "type": "integer" } }
                }
            }}
        });
        let page = page("x/y", &schema, "## Notes\n\nBy hand.\n");
        for line in [
            "# x/y\n\n`x/y` specification.\n",
            "| `image` | string | yes |  | The image \\| tag. |",
            "| `mode` | `\"replicated\"` or `\"global\"` |  | `\"replicated\"` |  |",
            "| `update` | object |  |  | How updates roll. |",
            "| `update.delay` | string |  |  | Between tasks. |",
            "| `env` | map of string |  |  |  |",
            "| `ports` | list of integer |  |  |  |",
            "schemas/x-y.json",
            "\n## Notes\n\nBy hand.\n",
        ] {
            assert!(page.contains(line), "`{line}` missing from\n{page}");
        }
    }
}
