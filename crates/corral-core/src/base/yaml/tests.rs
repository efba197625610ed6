//! Tests of the YAML layer: spans, core-schema scalars, located errors with hints,
//! duplicate keys, aliases and the refusal of alias bombs.

use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

fn one(text: &str) -> Node {
    let mut docs = parse_documents(text).expect("valid YAML");
    assert_eq!(docs.len(), 1, "expected one document");
    docs.remove(0).root
}

fn de_err<T: de::DeserializeOwned + fmt::Debug>(text: &str) -> DeError {
    from_node::<T>(&one(text)).expect_err("expected a deserialization error")
}

fn slice(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    path: String,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct Spec {
    files: Vec<File>,
    #[serde(default)]
    port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    kind: String,
    specification: Spec,
}

#[test]
fn multi_document_stream_skips_empty_documents() {
    let text = "# header\nkind: a\n---\n# only a comment\n---\nkind: b\n...\n---\n";
    let docs = parse_documents(text).unwrap();
    let kinds: Vec<_> = docs
        .iter()
        .map(|d| d.root.get("kind").and_then(Node::as_str))
        .collect();
    assert_eq!(kinds, [Some("a"), Some("b")]);
    assert_eq!(slice(text, docs[0].span), "kind: a");
    assert_eq!(slice(text, docs[1].span), "---\nkind: b");
}

#[test]
fn empty_and_comment_only_files_have_no_documents() {
    for text in [
        "",
        "\n\n",
        "# just a comment\n# and another",
        "---\n",
        "---\n# c\n---\n",
    ] {
        assert_eq!(parse_documents(text).unwrap(), [], "{text:?}");
    }
}

#[test]
fn spans_point_at_the_source_text() {
    let text = "kind: os/file\nspec:\n  list:\n    - a\n    - 'b'\n  flow: {x: [1, 2]}\n  lit: |\n    hello\n\n";
    let root = one(text);
    assert_eq!(slice(text, root.span), text.trim_end());
    let spec = root.get("spec").unwrap();
    assert_eq!(line_col(text, spec.span.start), (3, 3));
    let list = spec.get("list").unwrap();
    assert_eq!(slice(text, list.span), "- a\n    - 'b'");
    let Value::Seq(items) = &list.value else {
        panic!("not a sequence")
    };
    assert_eq!(slice(text, items[1].span), "'b'");
    assert_eq!(line_col(text, items[1].span.start), (5, 7));
    let flow = spec.get("flow").unwrap();
    assert_eq!(slice(text, flow.span), "{x: [1, 2]}");
    assert_eq!(slice(text, flow.get("x").unwrap().span), "[1, 2]");
    assert_eq!(slice(text, spec.get("lit").unwrap().span), "hello");
    assert_eq!(spec.get("lit").unwrap().as_str(), Some("hello\n"));
}

#[test]
fn plain_scalars_resolve_per_core_schema() {
    let scalars = [
        "~",
        "null",
        "",
        "True",
        "FALSE",
        "0x1F",
        "0o17",
        "0644",
        "-12",
        "1.5",
        ".5",
        "1e3",
        "-.INF",
        ".nan",
        "yes",
        "1_000",
        "0x",
        "'1'",
        "\"true\"",
        "!!str 12",
        "99999999999999999999",
    ];
    let text: String = scalars.iter().map(|s| format!("- {s}\n")).collect();
    let Value::Seq(items) = one(&text).value else {
        panic!("not a sequence")
    };
    let values: Vec<_> = items.into_iter().map(|n| n.value).collect();
    let s = |s: &str| Value::String(s.into());
    assert_eq!(
        values[..10],
        [
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(31),
            Value::Int(15),
            Value::Int(644),
            Value::Int(-12),
            Value::Float(1.5),
        ]
    );
    assert_eq!(
        values[10..13],
        [
            Value::Float(0.5),
            Value::Float(1000.0),
            Value::Float(f64::NEG_INFINITY)
        ]
    );
    assert!(matches!(values[13], Value::Float(f) if f.is_nan()));
    assert_eq!(
        values[14..],
        [
            s("yes"),
            s("1_000"),
            s("0x"),
            s("1"),
            s("true"),
            s("12"),
            Value::Float(1e20)
        ]
    );
}

#[test]
fn plain_scalars_deserialize_into_strings_as_written() {
    let map: BTreeMap<String, String> = from_node(&one(
        "mode: 0644\nvalue: 1\nenabled: yes\nratio: 1.50\non: TRUE\n1: x\n",
    ))
    .unwrap();
    let expected = [
        ("1", "x"),
        ("enabled", "yes"),
        ("mode", "0644"),
        ("on", "TRUE"),
        ("ratio", "1.50"),
        ("value", "1"),
    ];
    assert_eq!(
        map,
        expected.map(|(k, v)| (k.to_string(), v.to_string())).into()
    );
}

#[test]
fn deserializes_config_shapes() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Global,
        Replicated { replicas: u32 },
        Pinned(String),
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Machines {
        All(String),
        Names(Vec<String>),
        Labels { labels: BTreeMap<String, String> },
    }
    #[derive(Debug, Deserialize, PartialEq)]
    struct Service {
        modes: Vec<Mode>,
        machines: Vec<Machines>,
        weight: f64,
        big: u64,
        enabled: bool,
        title: Option<String>,
        #[serde(default)]
        missing: Vec<u8>,
    }
    let text = "modes: [global, {replicated: {replicas: 3}}, {pinned: n1}]\n\
                    machines: [all, [n1, n2], {labels: {role: edge}}]\n\
                    weight: 2\nbig: 4000000000\nenabled: true\ntitle: ~\n";
    let service: Service = from_node(&one(text)).unwrap();
    assert_eq!(
        service.modes,
        [
            Mode::Global,
            Mode::Replicated { replicas: 3 },
            Mode::Pinned("n1".into())
        ]
    );
    assert_eq!(service.machines[0], Machines::All("all".into()));
    assert_eq!(
        service.machines[1],
        Machines::Names(vec!["n1".into(), "n2".into()])
    );
    let labels = BTreeMap::from([("role".to_string(), "edge".to_string())]);
    assert_eq!(service.machines[2], Machines::Labels { labels });
    assert_eq!(
        (service.weight, service.big, service.enabled),
        (2.0, 4_000_000_000, true)
    );
    assert_eq!((service.title, service.missing), (None, vec![]));
    let json: serde_json::Value = from_node(&one("a: [1, x, 1.5, null, true]")).unwrap();
    assert_eq!(json, serde_json::json!({"a": [1, "x", 1.5, null, true]}));
}

#[test]
fn unknown_field_points_at_the_nested_key_and_suggests() {
    let text = "kind: os/file\nspecification:\n  files:\n    - path: /a\n    - path: /b\n      mdoe: 0644\n";
    let err = de_err::<Doc>(text);
    assert_eq!(err.message, "unknown field `mdoe`");
    assert_eq!(slice(text, err.span), "mdoe");
    assert_eq!(line_col(text, err.span.start), (6, 7));
    let expected = vec!["path".to_string(), "mode".to_string()];
    assert_eq!(
        err.kind,
        DeErrorKind::UnknownField {
            field: "mdoe".into(),
            expected
        }
    );
    assert_eq!(err.suggestion(), Some("mode".into()));
    let far = de_err::<File>("path: /a\nzzzzzz: 1\n");
    assert_eq!(far.suggestion(), None);
}

#[test]
fn missing_field_points_at_the_mapping() {
    let text = "kind: x\nspecification:\n  files:\n    - mode: '0644'\n      owner_typo_free: 1\n";
    let err = de_err::<Doc>("kind: x\nspecification:\n  files:\n    - mode: '0644'\n");
    assert_eq!(err.message, "missing field `path`");
    assert_eq!(
        err.kind,
        DeErrorKind::MissingField {
            field: "path".into()
        }
    );
    assert_eq!(
        slice(
            "kind: x\nspecification:\n  files:\n    - mode: '0644'\n",
            err.span
        ),
        "mode: '0644'"
    );
    // deny_unknown_fields reports the unknown key before the missing one.
    assert!(matches!(
        de_err::<Doc>(text).kind,
        DeErrorKind::UnknownField { .. }
    ));
}

#[test]
fn invalid_type_points_at_the_value() {
    let text = "kind: x\nspecification:\n  files:\n    - path: [a, b]\n";
    let err = de_err::<Doc>(text);
    assert_eq!(
        err.message,
        "invalid type: expected a string, found a sequence"
    );
    assert_eq!(err.kind, DeErrorKind::InvalidType);
    assert_eq!(slice(text, err.span), "[a, b]");

    let text = "kind: x\nspecification: just text\n";
    let err = de_err::<Doc>(text);
    assert_eq!(
        err.message,
        "invalid type: expected a mapping, found a string"
    );
    assert_eq!(slice(text, err.span), "just text");

    let text = "kind: x\nspecification: {files: [], port: '80'}\n";
    let err = de_err::<Doc>(text);
    assert_eq!(err.message, "invalid type: expected u16, found a string");
    assert_eq!(slice(text, err.span), "'80'");

    let text = "kind:\nspecification: {files: []}\n";
    assert_eq!(
        de_err::<Doc>(text).message,
        "invalid type: expected a string, found null"
    );
}

#[test]
fn invalid_value_points_at_the_value() {
    let text = "kind: x\nspecification:\n  files: []\n  port: 70000\n";
    let err = de_err::<Doc>(text);
    assert_eq!(err.kind, DeErrorKind::InvalidValue);
    assert_eq!(err.message, "invalid value: integer `70000`, expected u16");
    assert_eq!(slice(text, err.span), "70000");

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Global,
        Replicated,
    }
    let text = "[global, replicatd]";
    let err = de_err::<Vec<Mode>>(text);
    assert_eq!(
        err.message,
        "unknown variant `replicatd`, expected one of `global`, `replicated`"
    );
    assert_eq!(slice(text, err.span), "replicatd");
}

#[test]
fn custom_errors_point_at_the_value() {
    fn cidr<'de, D: de::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        match s.contains('/') {
            true => Ok(s),
            false => Err(de::Error::custom(format!("`{s}` is not a CIDR"))),
        }
    }
    #[derive(Debug, Deserialize)]
    struct Rule {
        #[serde(deserialize_with = "cidr")]
        source: String,
    }
    let rule: Rule = from_node(&one("source: 10.0.0.0/8")).unwrap();
    assert_eq!(rule.source, "10.0.0.0/8");
    let text = "rules:\n  - source: 10.0.0.0/8\n  - source: 10.0.0.1\n";
    let err = de_err::<BTreeMap<String, Vec<Rule>>>(text);
    assert_eq!(err.kind, DeErrorKind::Custom);
    assert_eq!(err.message, "`10.0.0.1` is not a CIDR");
    assert_eq!(slice(text, err.span), "10.0.0.1");

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Flag(bool),
        List(Vec<u8>),
    }
    let ok: Vec<Either> = from_node(&one("[true, [1, 2]]")).unwrap();
    assert_eq!(ok, [Either::Flag(true), Either::List(vec![1, 2])]);
    let text = "value: {a: 1}";
    let err = de_err::<BTreeMap<String, Either>>(text);
    assert_eq!(err.kind, DeErrorKind::Custom);
    assert_eq!(slice(text, err.span), "{a: 1}");
}

#[test]
fn duplicate_keys_are_errors() {
    let text = "a: 1\nb:\n  c: 1\n  'c': 2\n";
    let err = parse_documents(text).unwrap_err();
    assert_eq!(err.message, "duplicate key `c`");
    assert_eq!(slice(text, err.span), "'c'");
    let (label, first) = err.related.expect("first key label");
    assert_eq!(
        (label.as_str(), slice(text, first)),
        ("first defined here", "c")
    );
    assert_eq!(line_col(text, first.start), (3, 3));
    // Different types are different keys.
    assert!(parse_documents("1: a\n'1': b\n").is_ok());
}

#[test]
fn malformed_yaml_gives_a_located_error() {
    let cases = [
        ("a:\n\t- b\n", (2, 2)),
        ("a: \"unclosed\nb: c\n", (1, 4)),
        ("a:\n  b: 1\n c: 2\n", (3, 2)),
        ("a: [1, 2\n", (1, 9)),
        ("a: b: c\n", (1, 5)),
    ];
    for (text, at) in cases {
        let err = parse_documents(text).unwrap_err();
        assert!(
            err.span.end > err.span.start && err.span.end <= text.len(),
            "{text:?}: {err:?}"
        );
        assert_eq!(line_col(text, err.span.start), at, "{text:?}: {err}");
    }
    let err = parse_documents("a: &x 1\n---\nb: *x\n").unwrap_err();
    assert_eq!(
        err.message,
        "alias to an anchor not defined earlier in this document"
    );
    let err = parse_documents("a: *nowhere\n").unwrap_err();
    assert!(err.span.end <= "a: *nowhere\n".len());
}

#[test]
fn errors_after_non_ascii_text_use_byte_offsets() {
    let text = "title: «Ünïcödé» 🚀\nb: 'x\n";
    let err = parse_documents(text).unwrap_err();
    assert!(text.get(err.span.start..err.span.end).is_some());
    assert_eq!(line_col(text, err.span.start), (2, 4));

    let text = "kind: «ü» 🚀\nspecification: {files: [{path: /ä, mödé: x}]}\n";
    let err = de_err::<Doc>(text);
    assert_eq!(slice(text, err.span), "mödé");
    let err = parse_documents("é: 1\né: 2").unwrap_err();
    assert_eq!(slice("é: 1\né: 2", err.span), "é");
}

#[test]
fn aliases_clone_the_anchored_node() {
    let text = "base: &base {path: /a, mode: '0600'}\ncopy: *base\nlist: &l [1, 2]\nagain: *l\n\
             block: !!seq &b\n  - x\nsame: *b\n";
    let root = one(text);
    let (base, copy) = (root.get("base").unwrap(), root.get("copy").unwrap());
    assert_eq!(base.value, copy.value);
    assert_eq!(slice(text, base.span), "{path: /a, mode: '0600'}");
    assert_eq!(slice(text, copy.span), "*base");
    assert_eq!(
        root.get("again").unwrap().value,
        root.get("list").unwrap().value
    );
    assert_eq!(slice(text, root.get("block").unwrap().span), "- x");
    assert_eq!(
        root.get("same").unwrap().value,
        root.get("block").unwrap().value
    );
    let file: File = from_node(copy).unwrap();
    assert_eq!(
        (file.path.as_str(), file.mode.as_deref()),
        ("/a", Some("0600"))
    );
    // `<<` is an ordinary key.
    assert!(one("a: &a {x: 1}\nb: {<<: *a}\n")
        .get("b")
        .unwrap()
        .get("<<")
        .is_some());
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let err = parse_documents(&bomb).unwrap_err();
    assert_eq!(err.message, "aliases expand to too many nodes");

    // Anchors alone, nested, without a single alias: each anchored node is copied into
    // the anchor table, so copies add up like alias expansions (found at 815 MB for a
    // 113 KiB file before they were counted).
    let mut nested = String::new();
    for i in 0..60 {
        nested.push_str(&format!("&n{i} [{}, ", vec!["x"; 1000].join(", ")));
    }
    nested.push_str("end");
    nested.push_str(&"]".repeat(60));
    let err = parse_documents(&nested).unwrap_err();
    assert_eq!(err.message, "anchors copy too many nodes");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_documents(&deep).is_err());
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(parse_documents(&ok).is_ok());
}

#[test]
fn node_helpers() {
    let root = one("a: x\nb: 0644\nc: ~\nd: [1]\ne: {}\nf: 1.5\ng: false\n");
    assert_eq!(root.get("a").and_then(Node::as_str), Some("x"));
    assert_eq!(root.get("b").and_then(Node::as_str), Some("0644"));
    assert_eq!(root.get("c").and_then(Node::as_str), None);
    assert_eq!(root.get("zz"), None);
    assert_eq!(root.get("a").unwrap().get("a"), None);
    let kinds: Vec<_> = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|k| root.get(k).unwrap().kind_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "a string",
            "an integer",
            "null",
            "a sequence",
            "a mapping",
            "a float",
            "a boolean"
        ]
    );
    assert_eq!(root.kind_name(), "a mapping");
    let source: miette::SourceSpan = Span { start: 3, end: 7 }.into();
    assert_eq!((source.offset(), source.len()), (3, 4));
}

/// Mutated documents must give errors, never panics.
#[test]
fn mutations_of_a_valid_document_never_panic() {
    let seed_doc = "kind: >-\n  os/file\nspecification:\n  files:\n    - &f {path: \"/etc/ü\", mode: '0644'}\n    - *f\n  port: 22\n---\nkind: x\nspecification:\n  files:\n    - path: /b\n      mode: 0600\n";
    let docs = parse_documents(seed_doc).unwrap();
    let doc: Doc = from_node(&docs[0].root).unwrap();
    assert_eq!((doc.kind.as_str(), doc.specification.port), ("os/file", 22));
    assert_eq!(doc.specification.files[1].path, "/etc/ü");
    for text in crate::testing::mutations(
        seed_doc,
        b"-:[]{},&*!|>'\"#%@`?\t\n \\~0x",
        0x9E37_79B9_7F4A_7C15,
        500,
    ) {
        if let Ok(docs) = parse_documents(&text) {
            for doc in docs {
                let _ = from_node::<Doc>(&doc.root);
                let _ = from_node::<serde_json::Value>(&doc.root);
                assert!(text.get(doc.span.start..doc.span.end).is_some());
            }
        } else if let Err(err) = parse_documents(&text) {
            assert!(text.get(err.span.start..err.span.end).is_some(), "{text:?}");
        }
    }
}
