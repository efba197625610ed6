//! YAML loading with source spans: a small tree of [`Node`]s that remember the byte range
//! they came from, and a serde deserializer over that tree whose errors point at the
//! offending node.
//!
//! serde_yaml is deprecated and cannot report where an error is, so we parse with
//! `saphyr-parser` and build our own tree. This module knows nothing about `kind:`
//! documents; it only turns text into spanned nodes and nodes into typed values.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};

/// Deeper nesting than this (aliases included) is refused, so that hostile input cannot
/// overflow the stack of the deserializer.
const MAX_DEPTH: usize = 128;

/// Aliases may not expand to more nodes than this in one stream ("billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;

/// A byte range in the source text, so that errors can underline what they are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.end.saturating_sub(span.start)).into()
    }
}

/// A YAML node with the byte range it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The resolved value (YAML 1.2 core schema for plain scalars).
    pub value: Value,
    /// Where the node is: a scalar's text (quotes included), a collection's first to last
    /// character; for an alias, the alias itself.
    pub span: Span,
    /// A scalar's text as written (`0644`, `yes`), after unescaping; `None` for collections.
    /// String-typed fields read this, so unquoted values keep their exact spelling.
    pub text: Option<String>,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Entries in source order; scalar keys are unique (duplicates are a parse error).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The value of `key` in a mapping, for reading envelope fields such as `kind:` before
    /// the document's type is known.
    /// The value of `key` in a mapping, or the item at index `key` (`"0"`, `"1"`, …) in a
    /// sequence.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            Value::Seq(items) => items.get(key.parse::<usize>().ok()?),
            _ => None,
        }
    }

    /// The text of a non-null scalar, as a `String` field would read it.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => self.text.as_deref(),
        }
    }

    /// What the node is, worded for error messages ("expected a string, found a mapping").
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// One YAML document of a multi-document stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The document's content.
    pub root: Node,
    /// From its `---` (if any) to the end of its content.
    pub span: Span,
}

/// Text that is not well-formed YAML (or that we refuse, such as duplicate keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub message: String,
    /// Where the error is; at least one character long unless the text is empty.
    pub span: Span,
    /// A second place worth showing, with its label: the first of two duplicate keys.
    pub related: Option<(String, Span)>,
}

/// Parses every document of a YAML stream. Empty documents (only comments, or a stray
/// `---`) are skipped, so an empty file gives an empty `Vec`.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| builder.scan_error(&e))?;
        let span = builder.span(span);
        match event {
            Event::DocumentStart(explicit) => builder.doc_start = explicit.then_some(span.start),
            Event::DocumentEnd => {
                if let Some(document) = builder.end_document() {
                    documents.push(document);
                }
            }
            Event::StreamEnd => break,
            event => builder.event(event, span)?,
        }
    }
    Ok(documents)
}

/// A collection whose end event has not come yet.
struct Frame {
    is_map: bool,
    start: usize,
    anchor: usize,
    /// Sequence items, or mapping keys and values alternating.
    items: Vec<Node>,
    /// Scalar keys seen in a mapping and where, to find duplicates in linear time.
    keys: std::collections::HashMap<ScalarKey, Span>,
}

/// A scalar mapping key, comparable and hashable (floats by their bits).
#[derive(Debug, PartialEq, Eq, Hash)]
enum ScalarKey {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    String(String),
}

impl ScalarKey {
    fn of(value: &Value) -> Option<ScalarKey> {
        Some(match value {
            Value::Null => ScalarKey::Null,
            Value::Bool(b) => ScalarKey::Bool(*b),
            Value::Int(i) => ScalarKey::Int(*i),
            Value::Float(f) => ScalarKey::Float(f.to_bits()),
            Value::String(s) => ScalarKey::String(s.clone()),
            Value::Seq(_) | Value::Map(_) => return None,
        })
    }
}

/// Turns parser events into a tree.
struct Builder<'t> {
    text: &'t str,
    /// Byte offset of each character, only for non-ASCII text (saphyr counts characters).
    char_bytes: Option<Vec<usize>>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    doc_start: Option<usize>,
    root: Option<Node>,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str) -> Self {
        let char_bytes = (!text.is_ascii()).then(|| {
            text.char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect()
        });
        Builder {
            text,
            char_bytes,
            stack: Vec::new(),
            anchors: HashMap::new(),
            alias_nodes: 0,
            doc_start: None,
            root: None,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.char_bytes {
            Some(table) => table.get(char_index).copied().unwrap_or(self.text.len()),
            None => char_index.min(self.text.len()),
        }
    }

    fn span(&self, span: saphyr_parser::Span) -> Span {
        let start = self.byte(span.start.index());
        Span {
            start,
            end: self.byte(span.end.index()).max(start),
        }
    }

    fn scan_error(&self, error: &ScanError) -> YamlError {
        let at = self.byte(error.marker().index());
        YamlError {
            message: error.info().to_string(),
            span: char_span(self.text, at),
            related: None,
        }
    }

    fn error(&self, message: String, span: Span) -> YamlError {
        YamlError {
            message,
            span: self.visible(span),
            related: None,
        }
    }

    /// Error spans are at least a character long, so there is something to underline.
    fn visible(&self, span: Span) -> Span {
        match span.start < span.end {
            true => span,
            false => char_span(self.text, span.start),
        }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let span = match style {
                    // Block scalars' spans run over the trailing blank lines.
                    ScalarStyle::Literal | ScalarStyle::Folded => Span {
                        start: span.start,
                        end: span.start + self.text[span.start..span.end].trim_end().len(),
                    },
                    _ => span,
                };
                let value = scalar_value(&text, style, tag.as_deref());
                let node = Node {
                    value,
                    span,
                    text: Some(text.into_owned()),
                };
                self.finish(node, anchor)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(self.error("nesting too deep".into(), span));
                }
                // Flow collections' start events end with the bracket; block ones end where
                // the first entry starts. Both may begin with an anchor or a tag.
                let before = self.text[..span.end].trim_end();
                let flow = before.ends_with(['[', '{']);
                self.stack.push(Frame {
                    is_map: matches!(event, Event::MappingStart(..)),
                    start: if flow { before.len() - 1 } else { span.end },
                    anchor,
                    items: Vec::new(),
                    keys: std::collections::HashMap::new(),
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(self.error("unbalanced collection end".into(), span));
                };
                let end = if span.start < span.end {
                    span.end
                } else {
                    frame.items.last().map_or(frame.start, |n| n.span.end)
                };
                let value = if frame.is_map {
                    let mut pairs = Vec::with_capacity(frame.items.len() / 2);
                    let mut items = frame.items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                } else {
                    Value::Seq(frame.items)
                };
                let span = Span {
                    start: frame.start,
                    end,
                };
                let node = Node {
                    value,
                    span,
                    text: None,
                };
                self.finish(node, frame.anchor)
            }
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(self.error(
                        "alias to an anchor not defined earlier in this document".into(),
                        span,
                    ));
                };
                let (count, depth) = measure(anchored);
                self.alias_nodes += count;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self.error("aliases expand to too many nodes".into(), span));
                }
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(self.error("nesting too deep".into(), span));
                }
                let node = Node {
                    span,
                    ..anchored.clone()
                };
                self.finish(node, 0)
            }
            _ => Ok(()),
        }
    }

    /// Records a complete node under its anchor and in its parent.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            // The anchor table holds a copy: count it like an alias expansion.
            self.alias_nodes += measure(&node).0;
            if self.alias_nodes > MAX_ALIAS_NODES {
                return Err(self.error("anchors copy too many nodes".into(), node.span));
            }
            self.anchors.insert(anchor, node.clone());
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        let is_key = parent.is_map && parent.items.len() % 2 == 0;
        let key = if is_key {
            ScalarKey::of(&node.value)
        } else {
            None
        };
        if let Some(key) = key {
            if let Some(&first) = parent.keys.get(&key) {
                let span = node.span;
                let mut error = self.error(
                    format!("duplicate key `{}`", node.as_str().unwrap_or("null")),
                    span,
                );
                error.related = Some(("first defined here".into(), self.visible(first)));
                return Err(error);
            }
            parent.keys.insert(key, node.span);
        }
        parent.items.push(node);
        Ok(())
    }

    fn end_document(&mut self) -> Option<Document> {
        self.stack.clear();
        self.anchors.clear();
        let start = self.doc_start.take();
        let root = self.root.take()?;
        if root.value == Value::Null && root.text.as_deref() == Some("") {
            return None;
        }
        let span = Span {
            start: start.unwrap_or(root.span.start),
            end: root.span.end,
        };
        Some(Document { root, span })
    }
}

/// A span of one character at byte `at` (the last character if `at` is the end).
fn char_span(text: &str, at: usize) -> Span {
    let mut start = at.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(c) = text[start..].chars().next() {
        return Span {
            start,
            end: start + c.len_utf8(),
        };
    }
    let last = text.chars().next_back().map_or(0, char::len_utf8);
    Span {
        start: start - last,
        end: start,
    }
}

/// Node count and depth of a tree, to bound what an alias may expand to.
fn measure(node: &Node) -> (usize, usize) {
    let children: Box<dyn Iterator<Item = &Node>> = match &node.value {
        Value::Seq(items) => Box::new(items.iter()),
        Value::Map(entries) => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
        _ => Box::new(std::iter::empty()),
    };
    children.fold((1, 1), |(count, depth), child| {
        let (c, d) = measure(child);
        (count + c, depth.max(d + 1))
    })
}

fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let forced_str = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
    if style != ScalarStyle::Plain || forced_str {
        return Value::String(text.to_string());
    }
    resolve_plain(text)
}

/// YAML 1.2 core schema resolution of a plain scalar. Integers too large for `i64` become
/// floats; their text is still kept in [`Node::text`].
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        let inf = if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Value::Float(inf);
    }
    let radix = |digits: &str, radix| {
        let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        valid
            .then(|| i64::from_str_radix(digits, radix).ok())
            .flatten()
    };
    let int = if let Some(hex) = s.strip_prefix("0x") {
        radix(hex, 16)
    } else if let Some(octal) = s.strip_prefix("0o") {
        radix(octal, 8)
    } else if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Value::Int(i);
    }
    if is_core_float(unsigned) {
        if let Ok(f) = s.parse() {
            return Value::Float(f);
        }
    }
    Value::String(s.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the sign already stripped.
fn is_core_float(s: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let int = digits(s);
    let mut rest = &s[int..];
    let mut frac = 0;
    if let Some(after) = rest.strip_prefix('.') {
        frac = digits(after);
        rest = &after[frac..];
    } else if int == 0 {
        return false;
    }
    if int + frac == 0 {
        return false;
    }
    match rest.strip_prefix(['e', 'E']) {
        None => rest.is_empty(),
        Some(exp) => {
            let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
            !exp.is_empty() && digits(exp) == exp.len()
        }
    }
}

/// Why a node could not be deserialized, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DeError {
    pub message: String,
    /// The innermost node the error is about: the key of an unknown field, the mapping
    /// that lacks a field, the value of the wrong type.
    pub span: Span,
    pub kind: DeErrorKind,
}

/// The kinds of [`DeError`] that callers treat differently (e.g. suggesting a field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeErrorKind {
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    MissingField {
        field: String,
    },
    InvalidType,
    InvalidValue,
    Custom,
}

impl DeError {
    /// For an unknown field, the expected field nearest to it, if it is a plausible typo.
    pub fn suggestion(&self) -> Option<String> {
        let DeErrorKind::UnknownField { field, expected } = &self.kind else {
            return None;
        };
        expected
            .iter()
            .map(|candidate| (strsim::jaro_winkler(field, candidate), candidate))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| candidate.clone())
    }
}

/// Deserializes a typed value from a node; errors carry the span of the innermost node.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer(node)).map_err(|e| e.into_public(node.span))
}

/// The deserializer's own error: like [`DeError`], but the span is filled in on the way
/// out by the innermost node that sees the error.
#[derive(Debug)]
struct Error {
    message: String,
    kind: DeErrorKind,
    span: Option<Span>,
}

impl Error {
    fn new(kind: DeErrorKind, message: String) -> Self {
        Error {
            message,
            kind,
            span: None,
        }
    }

    fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    fn into_public(self, fallback: Span) -> DeError {
        DeError {
            message: self.message,
            span: self.span.unwrap_or(fallback),
            kind: self.kind,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(DeErrorKind::Custom, msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let found = match unexp {
            Unexpected::Unit | Unexpected::Option => "null".to_string(),
            Unexpected::Bool(_) => "a boolean".into(),
            Unexpected::Signed(_) | Unexpected::Unsigned(_) => "an integer".into(),
            Unexpected::Float(_) => "a float".into(),
            Unexpected::Str(_) | Unexpected::Char(_) => "a string".into(),
            Unexpected::Seq => "a sequence".into(),
            Unexpected::Map => "a mapping".into(),
            other => other.to_string(),
        };
        let message = format!("invalid type: expected {}, found {found}", expectation(exp));
        Error::new(DeErrorKind::InvalidType, message)
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let message = format!("invalid value: {unexp}, expected {}", expectation(exp));
        Error::new(DeErrorKind::InvalidValue, message)
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        let message = format!("invalid length {len}, expected {}", expectation(exp));
        Error::new(DeErrorKind::InvalidValue, message)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let expected: Vec<_> = expected.iter().map(|v| format!("`{v}`")).collect();
        let message = format!(
            "unknown variant `{variant}`, expected one of {}",
            expected.join(", ")
        );
        Error::new(DeErrorKind::InvalidValue, message)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let kind = DeErrorKind::UnknownField {
            field: field.to_string(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        };
        Error::new(kind, format!("unknown field `{field}`"))
    }

    fn missing_field(field: &'static str) -> Self {
        let kind = DeErrorKind::MissingField {
            field: field.to_string(),
        };
        Error::new(kind, format!("missing field `{field}`"))
    }
}

/// serde's wording of what a visitor wants, in YAML terms ("struct FileSpec" → "a mapping").
fn expectation(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    if text == "a map" || text.starts_with("struct ") {
        "a mapping".into()
    } else {
        text
    }
}

fn invalid_type(node: &Node, exp: &dyn Expected) -> Error {
    let unexp = match &node.value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Int(i) => Unexpected::Signed(*i),
        Value::Float(f) => Unexpected::Float(*f),
        Value::String(s) => Unexpected::Str(s),
        Value::Seq(_) => Unexpected::Seq,
        Value::Map(_) => Unexpected::Map,
    };
    de::Error::invalid_type(unexp, exp)
}

/// Deserializes `node` with `seed`, blaming `node` for any error not yet located.
fn located<'de, S: DeserializeSeed<'de>>(seed: S, node: &Node) -> Result<S::Value, Error> {
    seed.deserialize(NodeDeserializer(node))
        .map_err(|e| e.at(node.span))
}

struct NodeDeserializer<'a>(&'a Node);

macro_rules! deserialize_int {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.value {
                Value::Int(i) => visitor.visit_i64(i),
                _ => Err(invalid_type(self.0, &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAccess(items.iter())),
            Value::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.value {
            Value::Bool(b) => visitor.visit_bool(b),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    deserialize_int! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.value {
            Value::Float(f) => visitor.visit_f64(f),
            Value::Int(i) => visitor.visit_i64(i),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    /// Any non-null scalar reads as its text, so `mode: 0644` gives "0644". Null is refused,
    /// so that a forgotten value (`name:`) is an error rather than an empty string.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_str() {
            Some(s) => visitor.visit_str(s),
            None => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::Seq(items) => visitor.visit_seq(SeqAccess(items.iter())),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    /// Unit variants are scalars (`mode: global`); others are single-key mappings
    /// (`replicated: {replicas: 2}`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::Map(entries) => match entries.as_slice() {
                [(variant, value)] => visitor.visit_enum(EnumAccess {
                    variant,
                    value: Some(value),
                }),
                _ => Err(de::Error::invalid_value(
                    Unexpected::Map,
                    &"a mapping with a single key",
                )),
            },
            _ if self.0.as_str().is_some() => visitor.visit_enum(EnumAccess {
                variant: self.0,
                value: None,
            }),
            _ => Err(invalid_type(self.0, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a>(std::slice::Iter<'a, Node>);

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|node| located(seed, node)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        located(seed, key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => located(seed, value),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    variant: &'a Node,
    value: Option<&'a Node>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = Error;
    type Variant = VariantAccess<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), Error> {
        Ok((located(seed, self.variant)?, VariantAccess(self.value)))
    }
}

/// The value of a variant written as a single-key mapping; `None` for a bare scalar.
struct VariantAccess<'a>(Option<&'a Node>);

impl<'de> de::VariantAccess<'de> for VariantAccess<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            Some(node) => located(std::marker::PhantomData::<()>, node),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.0 {
            Some(node) => located(seed, node),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Some(node) => de::Deserializer::deserialize_seq(NodeDeserializer(node), visitor)
                .map_err(|e| e.at(node.span)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Some(node) => de::Deserializer::deserialize_map(NodeDeserializer(node), visitor)
                .map_err(|e| e.at(node.span)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }
}

#[cfg(test)]
mod tests;
