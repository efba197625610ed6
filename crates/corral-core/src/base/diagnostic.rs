//! Configuration diagnostics: every error names the file, points at the offending text and,
//! where it can, says what was probably meant.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

use super::yaml::{Node, Span, Value};

/// One loaded configuration file, kept whole so that diagnostics can quote it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the operator gave it (relative paths stay relative in messages).
    pub name: String,
    /// The text as diagnostics quote it: the file's text with every secret value masked
    /// (same length, same lines, so every span still points at the right place).
    pub text: Arc<str>,
    /// Where the masked secret values are.
    pub secrets: Vec<Span>,
}

impl SourceFile {
    /// A file whose `text` is quoted in diagnostics with the bytes of `secrets` masked.
    pub fn new(name: String, text: &str, secrets: Vec<Span>) -> Self {
        SourceFile {
            name,
            text: mask(text, &secrets).into(),
            secrets,
        }
    }

    /// Whether `span` overlaps a secret value, so that a message about it must not quote it.
    pub fn holds_secret(&self, span: Span) -> bool {
        self.secrets
            .iter()
            .any(|s| span.start < s.end.max(s.start + 1) && s.start < span.end.max(span.start + 1))
    }

    pub fn named_source(&self) -> NamedSource<Arc<str>> {
        NamedSource::new(self.name.clone(), self.text.clone()).with_language("yaml")
    }

    /// The key of an empty value at `offset` (`ssh:` and the end of its line) when the
    /// next line is no deeper than the key: what was meant to be under it is not, which
    /// YAML reads as a null and sibling keys. `None` when the layout says nothing of it.
    pub fn key_left_empty_by_indentation(&self, offset: usize) -> Option<&str> {
        let text: &str = &self.text;
        let offset = offset.min(text.len());
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let (line, below) = text[line_start..]
            .split_once('\n')
            .unwrap_or((&text[line_start..], ""));
        // The empty value's span may start at the colon or after it.
        let key = line.trim_end().strip_suffix(':')?;
        if offset > line_start + key.len() + 1 {
            return None;
        }
        let indent = indentation(key);
        let key = key.trim().trim_start_matches("- ").trim();
        let next = below
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
        (!key.is_empty() && indentation(next) <= indent).then_some(key)
    }

    /// 1-based line and column of a byte offset, for plain-text messages.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// How many spaces (and `- ` of a sequence item) a line starts with.
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '-']).len()
}

/// Where a document or value came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.file.line_col(self.span.start);
        write!(f, "{}:{line}:{col}", self.file.name)
    }
}

/// A single problem found in the configuration.
#[derive(Debug)]
pub struct ConfigError {
    pub message: String,
    pub source: Option<NamedSource<Arc<str>>>,
    pub labels: Vec<LabeledSpan>,
    pub help: Option<String>,
}

impl ConfigError {
    /// An error about a span of a file, with `label` under the underlined text.
    pub fn at(origin: &Origin, message: impl Into<String>, label: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            source: Some(origin.file.named_source()),
            labels: vec![LabeledSpan::new_primary_with_span(
                Some(label.into()),
                SourceSpan::from(origin.span),
            )],
            help: None,
        }
    }

    /// An error that has no place in a file (an unreadable path, say).
    pub fn plain(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            source: None,
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Adds a secondary label, e.g. "first defined here"; it must be in the same file.
    pub fn with_label(mut self, span: Span, label: impl Into<String>) -> Self {
        self.labels.push(LabeledSpan::new_with_span(
            Some(label.into()),
            SourceSpan::from(span),
        ));
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn help(&self) -> Option<Box<dyn fmt::Display + '_>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

/// Every error found in a configuration, reported together.
#[derive(Debug, Default)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// Reports an error at `origin`, for the caller to add help to.
    pub fn push_at(
        &mut self,
        origin: &Origin,
        message: impl Into<String>,
        label: &str,
    ) -> &mut ConfigError {
        self.errors.push(ConfigError::at(origin, message, label));
        self.errors.last_mut().expect("just pushed")
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.len() {
            1 => write!(f, "found 1 error in the configuration"),
            n => write!(f, "found {n} errors in the configuration"),
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl Diagnostic for ConfigErrors {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A "did you mean" hint, or a list of what is allowed when nothing is close.
pub fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("known {what}: {}", candidates.join(", ")),
    }
}

// Secrets in diagnostics. miette quotes the lines around an error, so the text it is given
// has every value that may hold a secret masked: a misspelt `sensitve: true` or a bad `mode`
// next to `content:` must not print the content to a terminal or a CI log.

/// What masked bytes become.
const MASK: char = '*';

/// `text` with the bytes of `secrets` masked, except line breaks, the indentation of
/// continuation lines and a value's surrounding quotes: lengths and lines stay as they
/// were, so every span still points at the same text.
fn mask(text: &str, secrets: &[Span]) -> String {
    let mut masked = vec![false; text.len()];
    for span in secrets {
        let end = span.end.min(text.len());
        let Some(value) = text.get(span.start..end) else {
            continue;
        };
        let quoted = value.len() >= 2
            && (value.starts_with('"') && value.ends_with('"')
                || value.starts_with('\'') && value.ends_with('\''));
        let (start, end) = match quoted {
            true => (span.start + 1, end - 1),
            false => (span.start, end),
        };
        let mut indentation = false;
        for (at, byte) in text.as_bytes()[start..end].iter().enumerate() {
            match byte {
                b'\n' | b'\r' => indentation = true,
                b' ' | b'\t' if indentation => {}
                _ => {
                    indentation = false;
                    masked[start + at] = true;
                }
            }
        }
    }
    text.char_indices()
        .map(|(at, c)| match masked[at] {
            true => MASK.to_string().repeat(c.len_utf8()),
            false => c.to_string(),
        })
        .collect()
}

/// Whether a mapping key names a field that may hold a secret: one of `names`, or a likely
/// misspelling of one (`contnet:`).
pub fn is_secret_key(key: &str, names: &[&str]) -> bool {
    // Case too: `CONTENT:` is a typo of `content:` as much as `contnet:` is.
    let key = key.to_lowercase();
    // A service's `secrets:` lists which secrets it uses, by name: not a typo of
    // `secret_env`, and never a value.
    if key == "secrets" && !names.contains(&"secrets") {
        return false;
    }
    names.contains(&key.as_str()) || nearest(&key, names.iter().copied()).is_some()
}

/// Where the secret values of a parsed document are: the value of every key that
/// [`is_secret_key`], wherever it is in the document (a misplaced `content:` too), and what
/// each of `paths` (from the `specification`, `*` for any item or value) names. An alias in
/// such a place (`content: *token`) also hides the values it copies.
pub fn secret_spans(text: &str, root: &Node, paths: &[&[&str]], names: &[&str]) -> Vec<Span> {
    fn by_key<'n>(node: &'n Node, names: &[&str], found: &mut Vec<&'n Node>) {
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    match key.as_str() {
                        Some(key) if is_secret_key(key, names) => found.push(value),
                        _ => by_key(value, names, found),
                    }
                }
            }
            Value::Seq(items) => items.iter().for_each(|item| by_key(item, names, found)),
            _ => {}
        }
    }
    fn by_path<'n>(node: &'n Node, path: &[&str], found: &mut Vec<&'n Node>) {
        let Some((first, rest)) = path.split_first() else {
            found.push(node);
            return;
        };
        match (&node.value, *first) {
            (Value::Seq(items), "*") => items.iter().for_each(|n| by_path(n, rest, found)),
            (Value::Map(entries), "*") => entries.iter().for_each(|(_, n)| by_path(n, rest, found)),
            (_, key) => {
                if let Some(child) = node.get(key) {
                    by_path(child, rest, found);
                }
            }
        }
    }
    fn every<'n>(node: &'n Node, all: &mut Vec<&'n Node>) {
        all.push(node);
        match &node.value {
            Value::Map(entries) => entries.iter().for_each(|(k, v)| {
                every(k, all);
                every(v, all);
            }),
            Value::Seq(items) => items.iter().for_each(|n| every(n, all)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    by_key(root, names, &mut found);
    if let Some(spec) = root.get("specification") {
        for path in paths {
            by_path(spec, path, &mut found);
        }
    }
    let is_alias = |node: &Node| {
        text.get(node.span.start..)
            .is_some_and(|t| t.starts_with('*'))
    };
    let mut spans: Vec<Span> = found.iter().map(|n| n.span).collect();
    let aliases: Vec<&Node> = found.into_iter().filter(|n| is_alias(n)).collect();
    if !aliases.is_empty() {
        let mut all = Vec::new();
        every(root, &mut all);
        for node in all {
            if !is_alias(node) && aliases.iter().any(|a| a.value == node.value) {
                spans.push(node.span);
            }
        }
    }
    spans
}

/// The values of the fields of a document that its kind's JSON Schema (`schema`, with its
/// `$defs`) does not know, at any depth: in a kind that holds secrets, a value put where
/// corral does not expect it (`specification: { value: … }`, a natural guess) may be one,
/// and the unknown-field error quotes the lines around it. Keys stay shown, so that the
/// error still says which field it is.
pub fn unknown_field_spans(root: &Node, schema: &serde_json::Value) -> Vec<Span> {
    /// The schema `schema` stands for: `$ref`s followed (to `#/$defs/NAME` only, a few
    /// levels at most), and the object alternatives of `anyOf`/`oneOf`/`allOf`.
    fn alternatives<'s>(
        schema: &'s serde_json::Value,
        defs: &'s serde_json::Value,
        depth: usize,
        out: &mut Vec<&'s serde_json::Value>,
    ) {
        if depth > 16 {
            return;
        }
        if let Some(reference) = schema.get("$ref").and_then(|r| r.as_str()) {
            if let Some(def) = reference
                .strip_prefix("#/$defs/")
                .and_then(|name| defs.get(name))
            {
                alternatives(def, defs, depth + 1, out);
            }
            return;
        }
        let mut combined = false;
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(items) = schema.get(key).and_then(|i| i.as_array()) {
                combined = true;
                for item in items {
                    alternatives(item, defs, depth + 1, out);
                }
            }
        }
        if !combined || schema.get("properties").is_some() {
            out.push(schema);
        }
    }
    fn walk(
        node: &Node,
        schema: &serde_json::Value,
        defs: &serde_json::Value,
        found: &mut Vec<Span>,
    ) {
        let mut schemas = Vec::new();
        alternatives(schema, defs, 0, &mut schemas);
        match &node.value {
            Value::Map(entries) => {
                for (key, value) in entries {
                    let key = key.as_str().unwrap_or_default();
                    // The schemas this field's value has, in every alternative that knows it.
                    let mut known = false;
                    let mut open = false;
                    let mut children = Vec::new();
                    for s in &schemas {
                        if let Some(child) = s.get("properties").and_then(|p| p.get(key)) {
                            known = true;
                            children.push(child);
                        } else if let Some(extra) = s.get("additionalProperties") {
                            if extra.as_bool() != Some(false) {
                                open = true;
                                if extra.is_object() {
                                    children.push(extra);
                                }
                            }
                        } else if s.get("properties").is_none() {
                            // Not an object schema (a string alternative): no judgement.
                            open = true;
                        }
                    }
                    if !known && !open {
                        found.push(value.span);
                        continue;
                    }
                    for child in children {
                        walk(value, child, defs, found);
                    }
                }
            }
            Value::Seq(items) => {
                for s in &schemas {
                    if let Some(item_schema) = s.get("items") {
                        for item in items {
                            walk(item, item_schema, defs, found);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    let mut found = Vec::new();
    walk(root, schema, &defs, &mut found);
    found.sort_by_key(|s| (s.start, s.end));
    found.dedup();
    found
}

/// Where secret values probably are in text that is not YAML the parser accepts (so there
/// is no tree to ask), line by line: after every `KEY:` whose key [`is_secret_key`], the
/// rest of the line, a quoted value up to its closing quote on whatever line that is, and
/// the lines after it that are indented more than the key (block scalars `|` and `>`,
/// multi-line plain scalars, anything nested) or blank.
pub fn secret_spans_in_lines(text: &str, names: &[&str]) -> Vec<Span> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        lines.push((offset, content));
        offset += line.len();
    }
    let indent = |line: &str| line.len() - line.trim_start_matches([' ', '\t']).len();
    let mut spans = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let (start, line) = lines[index];
        index += 1;
        let Some((key_column, value_at)) = secret_key(line, names) else {
            continue;
        };
        let value = line[value_at..].trim_start_matches([' ', '\t']);
        let value_start = start + line.len() - value.len();
        match value.chars().next() {
            // A block scalar's header (`|`, `>-`, `|2+`) is not part of its value.
            Some('|' | '>') if is_block_header(value) => {}
            Some(quote @ ('"' | '\'')) => {
                let end = closing_quote(text, value_start, quote).unwrap_or(text.len());
                spans.push(Span {
                    start: value_start,
                    end,
                });
                while index < lines.len() && lines[index].0 < end {
                    index += 1;
                }
                continue;
            }
            _ => spans.push(Span {
                start: value_start,
                end: start + line.len(),
            }),
        }
        while let Some(&(start, line)) = lines.get(index) {
            if !line.trim().is_empty() && indent(line) <= key_column {
                break;
            }
            spans.push(Span {
                start: start + indent(line),
                end: start + line.len(),
            });
            index += 1;
        }
    }
    spans
}

/// The first `KEY:` on a line (block or flow, key plain or quoted) whose key
/// [`is_secret_key`]: the key's column and where its value starts.
fn secret_key(line: &str, names: &[&str]) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    for (at, &byte) in bytes.iter().enumerate() {
        let boundary = at == 0 || matches!(bytes[at - 1], b' ' | b'\t' | b'{' | b',');
        if !boundary {
            continue;
        }
        let quote = matches!(byte, b'"' | b'\'').then_some(byte);
        let key_start = at + usize::from(quote.is_some());
        let key_len = bytes[key_start..]
            .iter()
            .take_while(|&&b| is_key_byte(b))
            .count();
        if key_len == 0 {
            continue;
        }
        let mut after = key_start + key_len;
        if let Some(quote) = quote {
            if bytes.get(after) != Some(&quote) {
                continue;
            }
            after += 1;
        }
        while matches!(bytes.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if bytes.get(after) != Some(&b':')
            || !matches!(bytes.get(after + 1), None | Some(b' ' | b'\t'))
        {
            continue;
        }
        if is_secret_key(&line[key_start..key_start + key_len], names) {
            return Some((at, after + 1));
        }
    }
    None
}

/// `|` or `>` with at most a chomping and an indentation indicator, and nothing after.
fn is_block_header(value: &str) -> bool {
    let indicators = value[1..].trim_end_matches([' ', '\t']);
    indicators.len() <= 2
        && indicators
            .bytes()
            .all(|b| matches!(b, b'+' | b'-' | b'1'..=b'9'))
}

/// One past the quote that closes the scalar opened by `quote` at `open` (`\"` escapes a
/// double quote, `''` is a single quote inside single quotes).
fn closing_quote(text: &str, open: usize, quote: char) -> Option<usize> {
    let mut chars = text[open + 1..].char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            '\'' if quote == '\'' && chars.peek().is_some_and(|&(_, c)| c == '\'') => {
                chars.next();
            }
            c if c == quote => return Some(open + 1 + at + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::yaml::parse_documents;

    const NAMES: &[&str] = &["content"];

    fn masked_tree(text: &str, paths: &[&[&str]]) -> String {
        let spans = parse_documents(text)
            .unwrap()
            .iter()
            .flat_map(|d| secret_spans(text, &d.root, paths, NAMES))
            .collect::<Vec<_>>();
        mask(text, &spans)
    }

    fn masked_lines(text: &str) -> String {
        mask(text, &secret_spans_in_lines(text, NAMES))
    }

    /// Same bytes, same line breaks: every span of the original points at the same place.
    fn assert_same_shape(text: &str, masked: &str) {
        assert_eq!(text.len(), masked.len(), "{masked}");
        let breaks = |t: &str| t.match_indices('\n').map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(breaks(text), breaks(masked), "{masked}");
    }

    #[test]
    fn masking_keeps_offsets_lines_and_quotes() {
        let text = "path: /a\ncontent: \"hunter2 «ü» 🚀\"\nmode: x\n";
        let masked = masked_tree(text, &[]);
        assert_same_shape(text, &masked);
        assert_eq!(
            masked,
            format!(
                "path: /a\ncontent: \"{}\"\nmode: x\n",
                "*".repeat("hunter2 «ü» 🚀".len())
            )
        );
    }

    #[test]
    fn parsed_secrets_are_found_by_name_anywhere_by_path_and_through_aliases() {
        let text = "\
kind: x
content: hunter2-misplaced
token: &t hunter2-anchored
specification:
  files:
    - contnet: |
        hunter2-block
        hunter2-block-again
      mode: '0644'
  copy: *t
  content: *t
  env:
    - {name: A, value: hunter2-by-path}
";
        let masked = masked_tree(text, &[&["env", "*", "value"]]);
        assert_same_shape(text, &masked);
        assert!(!masked.contains("hunter2"), "{masked}");
        for kept in ["kind: x", "mode: '0644'", "copy: *t", "name: A"] {
            assert!(masked.contains(kept), "{kept}: {masked}");
        }
    }

    #[test]
    fn unparsed_secrets_are_found_line_by_line() {
        let text = "\
machines: [n1
content: hunter2-plain
  hunter2-plain-continued
path: /a
- content: |-
    hunter2-block

    hunter2-after-blank
  mode: '0644'
- {path: /b, \"content\": 'hunter2-flow''s', mode: '0600'}
content: \"hunter2-quoted \\\" still
hunter2-unindented\" # after
content: |hunter2-not-a-header
content: >2 # hunter2-comment
   hunter2-folded
contents: hunter2-typo
context_lines: 3
";
        let masked = masked_lines(text);
        assert_same_shape(text, &masked);
        assert!(!masked.contains("hunter2"), "{masked}");
        for kept in [
            "machines: [n1",
            "path: /a",
            "- content: |-\n",
            "  mode: '0644'",
            "{path: /b, \"content\": '",
            "\" # after",
        ] {
            assert!(masked.contains(kept), "{kept}: {masked}");
        }
        // An unclosed quote hides the rest of the file.
        let text = "a: 1\ncontent: \"hunter2\nb: hunter2\n";
        assert!(!masked_lines(text).contains("hunter2"));
    }

    #[test]
    fn only_secret_fields_and_their_misspellings_are_secret() {
        for key in ["content", "contnet", "contents", "Content"] {
            assert!(is_secret_key(key, NAMES), "{key}");
        }
        let fields = [
            "kind",
            "name",
            "title",
            "specification",
            "depends_on",
            "lifecycle",
            "machines",
            "path",
            "source",
            "mode",
            "owner",
            "group",
            "sensitive",
            "present",
            "absent",
            "update_cache",
            "values",
            "unit",
            "enabled",
            "active",
            "hostname",
            "ip",
            "ssh",
            "labels",
            "user",
            "port",
            "identity_file",
            "proxy_jump",
        ];
        for key in fields {
            assert!(!is_secret_key(key, NAMES), "{key}");
        }
    }

    #[test]
    fn spans_overlapping_a_secret_hold_it() {
        let file = SourceFile::new(
            "f".into(),
            "content: abcd\n",
            vec![Span { start: 9, end: 13 }],
        );
        assert_eq!(&*file.text, "content: ****\n");
        assert!(file.holds_secret(Span { start: 9, end: 13 }));
        assert!(file.holds_secret(Span { start: 12, end: 12 }));
        assert!(!file.holds_secret(Span { start: 0, end: 7 }));
        assert!(!file.holds_secret(Span { start: 13, end: 14 }));
    }

    #[test]
    fn secret_keys_are_found_whatever_their_case() {
        assert!(is_secret_key("CONTENT", &["content"]));
        assert!(is_secret_key("Content", &["content"]));
        assert!(!is_secret_key("mode", &["content"]));
    }

    /// An empty value whose next line is no deeper than its key names the key; an empty
    /// value followed by a deeper block, or a value on the line, does not.
    #[test]
    fn keys_left_empty_by_indentation_are_found() {
        let file = |text: &str| SourceFile::new("f.yaml".into(), text, Vec::new());
        let text = "spec:\n  values:\n  kernel.x: \"1\"\n";
        let after_colon = text.find("values:").unwrap() + "values:".len();
        assert_eq!(
            file(text).key_left_empty_by_indentation(after_colon),
            Some("values")
        );
        assert_eq!(
            file(text).key_left_empty_by_indentation(after_colon - 1),
            Some("values")
        );
        let deeper = "spec:\n  values:\n    kernel.x: \"1\"\n";
        assert_eq!(
            file(deeper).key_left_empty_by_indentation(after_colon),
            None
        );
        let item = "- ssh:\n  user: root\n";
        assert_eq!(file(item).key_left_empty_by_indentation(6), Some("ssh"));
        let last = "spec:\n  values:";
        assert_eq!(file(last).key_left_empty_by_indentation(last.len()), None);
    }
}
