//! The loader's reading of files: each file parsed into documents with spans, each
//! document's envelope checked and its `specification` decoded with its kind's schema, and
//! secrets kept out of every message. [`super::load`] drives it; module uses are expanded
//! by the other half of [`Loader`], in `expand.rs`.

use super::expand::{Instance, ModuleDef};
use super::*;

pub(super) struct Loader<'a> {
    pub(super) options: &'a LoadOptions,
    pub(super) roots: &'a [PathBuf],
    pub(super) errors: &'a mut ConfigErrors,
    pub(super) digest: &'a mut ConfigDigest,
    pub(super) machines: BTreeMap<String, Machine>,
    pub(super) machine_origins: HashMap<String, Origin>,
    pub(super) resources: Vec<Resource>,
    /// First definition of each `kind.name`, to report duplicates.
    pub(super) seen: HashMap<(String, String), Origin>,
    /// Module folders read so far (canonical), `None` for one with errors (reported once).
    pub(super) modules: HashMap<PathBuf, Option<Rc<ModuleDef>>>,
    pub(super) expansions: Expansions,
}

/// The envelope fields of one document, with their nodes for error spans.
pub(super) struct Envelope<'n> {
    pub(super) kind: Option<(String, &'n Node)>,
    pub(super) name: Option<(String, &'n Node)>,
    pub(super) title: Option<String>,
    pub(super) specification: Option<&'n Node>,
    pub(super) depends_on: Vec<Address>,
    pub(super) lifecycle: Lifecycle,
}

impl Loader<'_> {
    pub(super) fn load_file(&mut self, path: &Path) {
        let Some((file, text, documents)) = self.parse_file(path, path.display().to_string())
        else {
            return;
        };
        // `layers.yaml`'s parent is `""`, which no path canonicalizes against: `.` is what
        // it means, for every `source:`, `compose:` and module a document names.
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let first_error = self.errors.errors.len();
        for document in &documents {
            self.load_document(&file, &dir, &document.root);
        }
        scrub_secrets(&mut self.errors.errors[first_error..], &text, &file.secrets);
    }

    /// Reads a YAML file into documents, its bytes into the digest, its secret values masked
    /// for diagnostics (named `name` in them); `None` when an error was reported.
    pub(super) fn parse_file(
        &mut self,
        path: &Path,
        name: String,
    ) -> Option<(Arc<SourceFile>, String, Vec<yaml::Document>)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.errors
                    .push(ConfigError::plain(format!("cannot read `{name}`: {e}")));
                return None;
            }
        };
        // Contents only, in load order: the same configuration named by relative or absolute
        // paths (as a saved plan names it) has the same digest.
        self.digest.update((bytes.len() as u64).to_le_bytes());
        self.digest.update(&bytes);
        self.digest.file(path, &bytes);
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let secrets = diagnostic::secret_spans_in_lines(&lossy, &secret_names());
                let file = Arc::new(SourceFile::new(name, &lossy, secrets));
                let origin = Origin {
                    file,
                    span: Span {
                        start: offset,
                        end: offset + 1,
                    },
                };
                self.errors.push(
                    ConfigError::at(&origin, "file is not valid UTF-8", "invalid byte here")
                        .with_help("save the file as UTF-8"),
                );
                return None;
            }
        };
        let parsed = yaml::parse_documents(&text);
        let names = secret_names();
        let secrets = match &parsed {
            Ok(documents) => documents
                .iter()
                .flat_map(|document| {
                    let kind = document.root.get("kind").and_then(Node::as_str);
                    let fields = secret_fields(kind);
                    let mut spans =
                        diagnostic::secret_spans(&text, &document.root, &fields, &names);
                    // A kind that holds secrets: a value where corral expects none may be one.
                    if !fields.is_empty() {
                        if let Some(schema) = kind.and_then(document_schema) {
                            spans.extend(diagnostic::unknown_field_spans(&document.root, schema));
                        }
                    }
                    spans
                })
                .collect(),
            Err(_) => diagnostic::secret_spans_in_lines(&text, &names),
        };
        let file = Arc::new(SourceFile::new(name, &text, secrets));
        let documents = match parsed {
            Ok(documents) => documents,
            Err(e) => {
                let origin = Origin {
                    file: file.clone(),
                    span: if e.message.contains("tab") {
                        tab_indentation(&text).unwrap_or(e.span)
                    } else {
                        e.span
                    },
                };
                let mut error =
                    ConfigError::at(&origin, format!("invalid YAML: {}", e.message), "here")
                        .with_help("check indentation (spaces, not tabs), quotes and brackets");
                if let Some((label, span)) = e.related {
                    error = error
                        .with_label(span, label)
                        .with_help("a key may appear only once in a mapping");
                }
                self.errors.push(error);
                return None;
            }
        };
        if documents.is_empty() {
            self.errors.push(
                ConfigError::plain(format!("`{}` holds no documents", file.name))
                    .with_help("every configuration file needs at least one `kind:` document; remove the file or add one"),
            );
            return None;
        }
        Some((file, text, documents))
    }

    pub(super) fn origin(file: &Arc<SourceFile>, span: Span) -> Origin {
        Origin {
            file: file.clone(),
            span,
        }
    }

    pub(super) fn de_error(&mut self, file: &Arc<SourceFile>, error: DeError) {
        self.de_error_with_hint(file, error, None);
    }

    /// Reports a decoding error, with `hint` as the help when there is no suggestion. An
    /// error about a value that may be secret does not quote it (serde's "invalid value:
    /// string "…"" would).
    pub(super) fn de_error_with_hint(
        &mut self,
        file: &Arc<SourceFile>,
        error: DeError,
        hint: Option<&str>,
    ) {
        let mut error = error;
        if file.holds_secret(error.span)
            && matches!(
                error.kind,
                yaml::DeErrorKind::InvalidValue | yaml::DeErrorKind::Custom
            )
        {
            error.message = "invalid value (not shown: this field may hold a secret)".into();
        }
        let suggestion = error.suggestion().map(|s| format!("did you mean `{s}`?"));
        let label = match &error.kind {
            yaml::DeErrorKind::UnknownField { .. } => "unknown field",
            yaml::DeErrorKind::MissingField { .. } => "in this mapping",
            _ => "here",
        };
        let help = suggestion.or_else(|| match &error.kind {
            yaml::DeErrorKind::MissingField { field } => {
                Some(format!("add `{field}:` to this mapping"))
            }
            yaml::DeErrorKind::UnknownField { expected, .. } if !expected.is_empty() => {
                Some(format!("known fields: {}", expected.join(", ")))
            }
            yaml::DeErrorKind::InvalidType => {
                indentation_hint(file, &error).or_else(|| hint.map(str::to_owned))
            }
            _ => hint.map(str::to_owned),
        });
        self.errors.push(
            ConfigError::at(&Self::origin(file, error.span), error.message, label)
                .with_help_opt(help),
        );
    }

    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &mut self,
        file: &Arc<SourceFile>,
        node: &Node,
    ) -> Option<T> {
        match from_node(node) {
            Ok(value) => Some(value),
            Err(e) => {
                self.de_error(file, e);
                None
            }
        }
    }

    pub(super) fn envelope<'n>(
        &mut self,
        file: &Arc<SourceFile>,
        root: &'n Node,
    ) -> Option<Envelope<'n>> {
        let Value::Map(entries) = &root.value else {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, root.span),
                    format!("a document must be a mapping, found {}", root.kind_name()),
                    "this document",
                )
                .with_help("each document starts with `kind:`, `name:` and `specification:`"),
            );
            return None;
        };
        // A Compose file beside the configuration (a directory is read whole): one error
        // that says what it is, not one per Compose key.
        if root.get("kind").is_none() && root.get("services").is_some() {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, root.span),
                    "this is a Compose file, not corral configuration",
                    "a Compose document (`services:`, no `kind:`)",
                )
                .with_help("corral reads every YAML file directly inside a directory it is given: put Compose files in a subdirectory (e.g. `stacks/`) and name them in a `swarm/stack`'s `compose:`"),
            );
            return None;
        }
        let mut envelope = Envelope {
            kind: None,
            name: None,
            title: None,
            specification: None,
            depends_on: Vec::new(),
            lifecycle: Lifecycle::default(),
        };
        for (key, value) in entries {
            let Some(key_text) = key.as_str() else {
                self.errors.push(ConfigError::at(
                    &Self::origin(file, key.span),
                    "document keys must be strings",
                    "this key",
                ));
                continue;
            };
            match key_text {
                "kind" => envelope.kind = self.decode::<String>(file, value).map(|k| (k, value)),
                "name" => envelope.name = self.decode::<String>(file, value).map(|n| (n, value)),
                "title" => envelope.title = self.decode(file, value),
                "specification" => envelope.specification = Some(value),
                "lifecycle" => envelope.lifecycle = self.decode(file, value).unwrap_or_default(),
                "version" => {}
                "provider" => {
                    if value.as_str() != Some("any") {
                        self.errors.push(
                            ConfigError::at(
                                &Self::origin(file, value.span),
                                "unsupported provider",
                                "only `any` is supported",
                            )
                            .with_help("corral accepts `provider: any` so that Epiphany documents load as they are; remove the field or set it to `any`"),
                        );
                    }
                }
                "depends_on" => envelope.depends_on = self.depends_on(file, value),
                other => {
                    let help = diagnostic::suggestion(other, ENVELOPE_KEYS, "document fields");
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, key.span),
                            format!("unknown document field `{other}`"),
                            "unknown field",
                        )
                        .with_help(help),
                    );
                }
            }
        }
        for (field, present) in [
            (
                "kind",
                envelope.kind.is_some() || root.get("kind").is_some(),
            ),
            (
                "name",
                envelope.name.is_some() || root.get("name").is_some(),
            ),
            ("specification", envelope.specification.is_some()),
        ] {
            if !present {
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, root.span),
                        format!("document has no `{field}`"),
                        "in this document",
                    )
                    .with_help("every document needs `kind:`, `name:` and `specification:`"),
                );
            }
        }
        Some(envelope)
    }

    pub(super) fn depends_on(&mut self, file: &Arc<SourceFile>, value: &Node) -> Vec<Address> {
        let Value::Seq(items) = &value.value else {
            self.errors.push(ConfigError::at(
                &Self::origin(file, value.span),
                format!(
                    "`depends_on` must be a list of addresses, found {}",
                    value.kind_name()
                ),
                "here",
            ));
            return Vec::new();
        };
        let mut addresses = Vec::new();
        for item in items {
            match item.as_str().map(Address::parse) {
                Some(Ok(address)) => addresses.push(address),
                Some(Err(e)) => self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, item.span),
                        e.to_string(),
                        "not an address",
                    )
                    .with_help(
                        "write `kind.name` (e.g. `os/package.base`) or `kind.name[machine]`",
                    ),
                ),
                None => self.errors.push(ConfigError::at(
                    &Self::origin(file, item.span),
                    format!("an address must be a string, found {}", item.kind_name()),
                    "here",
                )),
            }
        }
        addresses
    }

    pub(super) fn load_document(&mut self, file: &Arc<SourceFile>, dir: &Path, root: &Node) {
        let Some(envelope) = self.envelope(file, root) else {
            return;
        };
        let (Some((kind, kind_node)), Some((name, name_node)), Some(spec_node)) =
            (envelope.kind, envelope.name, envelope.specification)
        else {
            return;
        };
        if !crate::address::is_valid_name(&name) {
            self.errors.push(
                ConfigError::at(&Self::origin(file, name_node.span), format!("invalid name `{name}`"), "invalid name")
                    .with_help("names are lowercase letters, digits, `_`, `.` and `-`, starting with a letter or digit"),
            );
        }
        let known = kinds::KNOWN_KINDS.contains(&kind.as_str())
            || kind == machine::KIND
            || kind == module::KIND;
        if !known {
            if !self.options.ignore_unknown_kinds {
                let mut candidates: Vec<&str> = kinds::KNOWN_KINDS.to_vec();
                candidates.push(machine::KIND);
                candidates.push(module::KIND);
                let help = match diagnostic::nearest(&kind, candidates.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`? (pass --ignore-unknown-kinds to skip documents of other tools)"),
                    None => format!(
                        "known kinds: {}; pass --ignore-unknown-kinds to skip documents of other tools",
                        candidates.join(", ")
                    ),
                };
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(file, kind_node.span),
                        format!("unknown kind `{kind}`"),
                        "unknown kind",
                    )
                    .with_help(help),
                );
            }
            return;
        }
        let origin = Self::origin(file, root.span);
        if let Some(first) = self.seen.get(&(kind.clone(), name.clone())) {
            let mut error = ConfigError::at(
                &Self::origin(file, name_node.span),
                format!("duplicate {kind} named `{name}`"),
                "defined again here",
            )
            .with_help("names must be unique per kind; rename one of them");
            if Arc::ptr_eq(&first.file, file) {
                error = error.with_label(first.span, "first defined here");
            } else {
                error = error.with_help(format!(
                    "names must be unique per kind; the first `{name}` is at {first}"
                ));
            }
            self.errors.push(error);
            return;
        }
        self.seen
            .insert((kind.clone(), name.clone()), origin.clone());

        if kind == module::KIND {
            let instance = Instance {
                name,
                origin,
                depends_on: envelope.depends_on,
                depends_on_node: root.get("depends_on").cloned(),
            };
            let first_error = self.errors.errors.len();
            let name = instance.name.clone();
            self.load_module(
                file,
                dir,
                name_node,
                spec_node,
                instance,
                envelope.lifecycle,
            );
            if self.errors.errors.len() > first_error {
                self.expansions.failed.push(name);
            }
            return;
        }
        if kind == machine::KIND {
            match from_node::<MachineSpec>(spec_node) {
                // Kept even when its checks fail, so that what selects it reports nothing
                // more; the load fails anyway.
                Ok(spec) => {
                    spec.check(&mut CheckContext {
                        name: &name,
                        file,
                        spec: spec_node,
                        dir,
                        roots: self.roots,
                        allow_source_outside_config: self.options.allow_source_outside_config,
                        connecting: self.options.connecting,
                        errors: self.errors,
                        digest: self.digest,
                    });
                    self.machine_origins.insert(name.clone(), origin);
                    self.machines.insert(name.clone(), Machine { name, spec });
                }
                Err(e) => {
                    let hint = machine::hint(spec_node, e.span);
                    self.de_error_with_hint(file, e, hint);
                }
            }
            return;
        }
        let spec = match kinds::decode(&kind, spec_node) {
            Ok(spec) => spec,
            Err(e) => {
                self.de_error(file, e);
                return;
            }
        };
        let mut ctx = CheckContext {
            name: &name,
            file,
            spec: spec_node,
            dir,
            roots: self.roots,
            allow_source_outside_config: self.options.allow_source_outside_config,
            connecting: self.options.connecting,
            errors: self.errors,
            digest: self.digest,
        };
        let Some(spec) = spec.check(&mut ctx) else {
            return;
        };
        self.resources.push(Resource {
            address: Address::new(&kind, &name, None),
            title: envelope.title,
            depends_on: envelope.depends_on,
            implied: Vec::new(),
            lifecycle: envelope.lifecycle,
            spec,
            node: root.clone(),
            origin,
        });
    }
}

/// Replaces, in errors' messages and help, every line of a secret value (of four
/// characters or more, shorter ones would garble the text) with `(sensitive)`: messages are
/// written not to quote values, and this keeps it so whatever a kind's check writes.
pub(super) fn scrub_secrets(errors: &mut [ConfigError], text: &str, secrets: &[Span]) {
    let mut lines: Vec<&str> = secrets
        .iter()
        .filter_map(|span| text.get(span.start..span.end))
        .flat_map(str::lines)
        .map(|line| line.trim().trim_matches(['"', '\'']))
        .filter(|line| line.chars().count() >= 4)
        .collect();
    if lines.is_empty() {
        return;
    }
    // Longest first, so that a line containing another is replaced whole.
    lines.sort_unstable_by_key(|line| std::cmp::Reverse(line.len()));
    lines.dedup();
    let scrub = |text: &mut String| {
        for line in &lines {
            if text.contains(line) {
                *text = text.replace(line, "(sensitive)");
            }
        }
    };
    for error in errors {
        scrub(&mut error.message);
        if let Some(help) = &mut error.help {
            scrub(help);
        }
    }
}

/// YAML forbids tabs in indentation, and the parser reports them where the scan stopped
/// rather than at the tab; point at the first indenting tab instead.
pub(super) fn tab_indentation(text: &str) -> Option<Span> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(tab) = line[..indent].find('\t') {
            return Some(Span {
                start: offset + tab,
                end: offset + tab + 1,
            });
        }
        offset += line.len();
    }
    None
}
