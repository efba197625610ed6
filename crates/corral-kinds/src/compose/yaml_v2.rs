//! The Compose file as Go's yaml.v2 reads it: YAML 1.1 scalars, merge keys in document
//! order, and what corral cannot carry over from our YAML tree reported.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::go_readings::{go_float, resolve_plain};
use super::report::Report;
use crate::base::yaml::{Node, Span, Value};

/// A value as the CLI sees it after yaml.v2 and interpolation: Go's types, keys strings.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Item {
    pub(super) value: Val,
    pub(super) span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
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
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_span: Span,
    pub(super) value: Item,
}

impl Item {
    pub(super) fn get(&self, key: &str) -> Option<&Item> {
        self.entry(key).map(|e| &e.value)
    }

    pub(super) fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    pub(super) fn entries(&self) -> &[Entry] {
        match &self.value {
            Val::Map(entries) => entries,
            _ => &[],
        }
    }

    pub(super) fn items(&self) -> &[Item] {
        match &self.value {
            Val::Seq(items) => items,
            _ => &[],
        }
    }

    pub(super) fn str(&self) -> Option<&str> {
        match &self.value {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn bool(&self) -> Option<bool> {
        match self.value {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An integer as the JSON schema sees one (a float with no fraction is one).
    pub(super) fn int(&self) -> Option<i128> {
        match self.value {
            Val::Int(i) => Some(i.into()),
            Val::UInt(u) => Some(u.into()),
            Val::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => Some(f as i128),
            _ => None,
        }
    }

    /// A scalar as Go's `fmt.Sprint` prints it (what `environment` and labels hold); `None`
    /// for null and collections.
    pub(super) fn go_string(&self) -> Option<String> {
        Some(match &self.value {
            Val::Str(s) => s.clone(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::UInt(u) => u.to_string(),
            Val::Float(f) => go_float(*f),
            Val::Null | Val::Seq(_) | Val::Map(_) => return None,
        })
    }

    pub(super) fn found(&self) -> &'static str {
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
    pub(super) fn json(&self) -> serde_json::Value {
        self.to_json(&|s| s.to_owned())
    }

    /// The value as JSON with every string passed through `string` (keys are not: the CLI
    /// interpolates values only).
    pub(super) fn to_json(&self, string: &dyn Fn(&str) -> String) -> serde_json::Value {
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

    pub(super) fn canonical(&self) -> String {
        self.json().to_string()
    }
}

/// How a scalar was written, which yaml.v2 needs and our tree does not keep: quoted
/// scalars are strings, plain ones are resolved by YAML 1.1's rules.
#[derive(Debug, Clone)]
pub(super) struct ScalarStyleInfo {
    plain: bool,
    /// A tag other than `!!str`, as written.
    tag: Option<String>,
}

/// The style of every scalar and alias-of-a-scalar by its span, from a second pass of the
/// parser over the same text (the spans agree with [`parse_documents`]'s; a start alone
/// does not tell an empty plain value from the quoted key that follows it).
///
/// [`parse_documents`]: crate::base::yaml::parse_documents
pub(super) fn scalar_styles(text: &str) -> (Styles, Vec<(Span, String)>) {
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
pub(super) type Styles = HashMap<(usize, usize), ScalarStyleInfo>;

/// Builds the [`Item`] tree from our YAML tree, as yaml.v2 and the CLI's interpolation
/// would see it, reporting what corral cannot carry over.
pub(super) struct TreeBuilder<'r, 'a> {
    pub(super) report: &'r mut Report<'a>,
    pub(super) styles: Styles,
}

impl TreeBuilder<'_, '_> {
    pub(super) fn build(&mut self, node: &Node) -> Item {
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
    ///
    /// [`variables::interpolate`]: super::variables::interpolate
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
