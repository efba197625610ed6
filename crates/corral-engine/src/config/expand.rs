//! The loader's expansion of modules: a `kind: module` document's folder read once (its
//! declaration and its files), its inputs checked and substituted, and its documents loaded
//! like any other under the instance's name. What expansion means, apart from reading
//! files, is in [`super::module`].

use super::loader::{scrub_secrets, Loader};
use super::*;

/// A module's folder, read once however many documents use it.
pub(super) struct ModuleDef {
    pub(super) declaration: Arc<SourceFile>,
    pub(super) inputs: Vec<DeclaredInput>,
    pub(super) files: Vec<ModuleFile>,
}

/// One input of a module's `module.yaml`.
pub(super) struct DeclaredInput {
    pub(super) name: String,
    pub(super) ty: module::InputType,
    pub(super) default: Option<Node>,
    pub(super) description: Option<String>,
    /// Where `module.yaml` declares it.
    pub(super) origin: Origin,
}

/// One document file of a module.
pub(super) struct ModuleFile {
    pub(super) file: Arc<SourceFile>,
    /// The unmasked text, to scrub secrets from messages.
    pub(super) text: String,
    /// Its directory as messages show it, for `source:` paths in its documents.
    pub(super) dir: PathBuf,
    pub(super) documents: Vec<Node>,
}

/// One use of a module (a `kind: module` document), for the checks after loading.
pub(super) struct Instance {
    pub(super) name: String,
    /// The use site's document.
    pub(super) origin: Origin,
    pub(super) depends_on: Vec<Address>,
    /// The use site's `depends_on` node, for errors about its entries.
    pub(super) depends_on_node: Option<Node>,
}

impl Instance {
    /// Names the use site in errors found in what the instance expanded to (located in the
    /// module's files).
    pub(super) fn annotate(&self, errors: &mut [ConfigError]) {
        let note = format!("from module `{}` used at {}", self.name, self.origin);
        for error in errors {
            error.help = Some(match error.help.take() {
                Some(help) => format!("{help}\n{note}"),
                None => note.clone(),
            });
        }
    }
}

/// Every module instance, and which instance each expanded resource came from.
#[derive(Default)]
pub(super) struct Expansions {
    pub(super) instances: Vec<Instance>,
    pub(super) of_resource: HashMap<Address, usize>,
    /// Instances with errors: what depends on their resources reports nothing more.
    pub(super) failed: Vec<String>,
}

impl Expansions {
    pub(super) fn instance_of(&self, address: &Address) -> Option<&Instance> {
        self.of_resource
            .get(address)
            .map(|&index| &self.instances[index])
    }
}

/// Modules: a `kind: module` document is expanded here into the documents of its module,
/// which are then loaded like any other (see [`module`]).
impl Loader<'_> {
    pub(super) fn load_module(
        &mut self,
        file: &Arc<SourceFile>,
        dir: &Path,
        name_node: &Node,
        spec_node: &Node,
        instance: Instance,
        lifecycle: Lifecycle,
    ) {
        if !module::is_valid_instance_name(&instance.name) {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, name_node.span),
                    format!("invalid module instance name `{}`", instance.name),
                    "invalid name",
                )
                .with_help("a module instance's name is lowercase letters, digits, `_` and `-`, without dots: its resources are named `INSTANCE.NAME`"),
            );
            return;
        }
        let Some(spec) = self.decode::<module::ModuleUseSpec>(file, spec_node) else {
            return;
        };
        let source_span = span_at(spec_node, &["source"]);
        let resolved =
            match module::resolve(&spec.source, dir, self.roots, &self.options.module_path) {
                Ok(resolved) => resolved,
                Err((message, help)) => {
                    self.errors.push(
                        ConfigError::at(&Self::origin(file, source_span), message, "this module")
                            .with_help_opt((!help.is_empty()).then_some(help)),
                    );
                    return;
                }
            };
        if !resolved.inside && !self.options.allow_source_outside_config {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(file, source_span),
                    format!(
                        "module `{}` is `{}`, outside the configuration's directories",
                        spec.source,
                        resolved.dir.display()
                    ),
                    "this module",
                )
                .with_help("a module's documents are shown in plans: keep it under a directory given on the command line or in a `modules/` folder above one, name its parent folder with --module-path DIR (or CORRAL_MODULE_PATH) and use it by name, or pass --allow-source-outside-config"),
            );
            return;
        }
        let first_error = self.errors.errors.len();
        let def = self.module_def(&resolved.dir);
        instance.annotate(&mut self.errors.errors[first_error..]);
        let Some(def) = def else {
            return;
        };
        let Some(values) = self.module_inputs(file, spec_node, &spec.source, &instance, &def)
        else {
            return;
        };

        // Substitute, then name every document after the instance.
        let first_error = self.errors.errors.len();
        let mut sources = Vec::new();
        let mut documents = Vec::new();
        for (index, module_file) in def.files.iter().enumerate() {
            let before = self.errors.errors.len();
            for document in &module_file.documents {
                let mut problems = Vec::new();
                let expanded = module::substitute(document, &values, &mut problems);
                let failed = !problems.is_empty();
                for problem in problems {
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(&module_file.file, problem.span),
                            problem.message,
                            "here",
                        )
                        .with_help_opt(problem.help),
                    );
                }
                if !failed {
                    sources.push(index);
                    documents.push(expanded);
                }
            }
            scrub_secrets(
                &mut self.errors.errors[before..],
                &module_file.text,
                &module_file.file.secrets,
            );
        }
        instance.annotate(&mut self.errors.errors[first_error..]);
        module::prefix_names(&mut documents, &instance.name);

        let index = self.expansions.instances.len();
        for (source, document) in sources.into_iter().zip(&documents) {
            let module_file = &def.files[source];
            let (first_error, first_resource) = (self.errors.errors.len(), self.resources.len());
            self.load_document(&module_file.file, &module_file.dir, document);
            scrub_secrets(
                &mut self.errors.errors[first_error..],
                &module_file.text,
                &module_file.file.secrets,
            );
            instance.annotate(&mut self.errors.errors[first_error..]);
            // The use site's `depends_on` and `lifecycle` apply to every resource.
            for resource in &mut self.resources[first_resource..] {
                for target in &instance.depends_on {
                    if !resource.depends_on.contains(target) {
                        resource.depends_on.push(target.clone());
                    }
                }
                resource.lifecycle.prevent_destroy |= lifecycle.prevent_destroy;
                if resource.lifecycle.rolling.is_none() {
                    resource.lifecycle.rolling = lifecycle.rolling;
                }
                if resource.lifecycle.timeout.is_none() {
                    resource.lifecycle.timeout = lifecycle.timeout;
                }
                self.expansions
                    .of_resource
                    .insert(resource.address.clone(), index);
            }
        }
        self.expansions.instances.push(instance);
    }

    /// The module in `dir` (canonical), read the first time it is used.
    pub(super) fn module_def(&mut self, dir: &Path) -> Option<Rc<ModuleDef>> {
        if let Some(def) = self.modules.get(dir) {
            return def.clone();
        }
        let def = self.read_module(dir).map(Rc::new);
        self.modules.insert(dir.to_path_buf(), def.clone());
        def
    }

    /// Reads a module's declaration and documents, and checks what does not depend on a
    /// use: the declaration, every `${inputs.…}` placeholder, no nested modules or machines.
    pub(super) fn read_module(&mut self, dir: &Path) -> Option<ModuleDef> {
        let first_error = self.errors.errors.len();
        let shown_dir = module::shown(dir);
        let (declaration, _, documents) = self.parse_file(
            &dir.join(module::DECLARATION),
            format!("{shown_dir}/{}", module::DECLARATION),
        )?;
        if let Some(extra) = documents.get(1) {
            self.errors.push(
                ConfigError::at(
                    &Self::origin(&declaration, extra.root.span),
                    "`module.yaml` holds one document, the module's declaration",
                    "another document",
                )
                .with_help("put the module's resources in other `*.yaml` files of its folder"),
            );
        }
        let root = &documents[0].root;
        let decoded: module::Declaration = self.decode(&declaration, root)?;
        let mut inputs = Vec::new();
        for (name, declared) in decoded.inputs {
            let key_span = root
                .get("inputs")
                .and_then(|inputs| match &inputs.value {
                    Value::Map(entries) => entries
                        .iter()
                        .find(|(key, _)| key.as_str() == Some(name.as_str()))
                        .map(|(key, _)| key.span),
                    _ => None,
                })
                .unwrap_or(root.span);
            if !module::is_valid_input_name(&name) {
                self.errors.push(
                    ConfigError::at(
                        &Self::origin(&declaration, key_span),
                        format!("invalid input name `{name}`"),
                        "invalid name",
                    )
                    .with_help(
                        "input names are lowercase letters, digits and `_`, starting with a letter",
                    ),
                );
            }
            let default = root
                .get("inputs")
                .and_then(|inputs| inputs.get(&name))
                .and_then(|input| input.get("default"));
            let default = match default {
                Some(node) => match declared.ty.accept(node) {
                    Some(value) => Some(value),
                    None => {
                        self.errors.push(ConfigError::at(
                            &Self::origin(&declaration, node.span),
                            format!(
                                "the default of input `{name}` must be {}, found {}",
                                declared.ty.described(),
                                node.kind_name()
                            ),
                            "wrong type",
                        ));
                        None
                    }
                },
                None => None,
            };
            inputs.push(DeclaredInput {
                name,
                ty: declared.ty,
                default,
                description: declared.description,
                origin: Self::origin(&declaration, key_span),
            });
        }
        let declared: BTreeMap<String, module::InputType> =
            inputs.iter().map(|i| (i.name.clone(), i.ty)).collect();

        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                        && p.file_name().and_then(|n| n.to_str()) != Some(module::DECLARATION)
                })
                .collect(),
            Err(e) => {
                self.errors.push(ConfigError::plain(format!(
                    "cannot read module folder `{shown_dir}`: {e}"
                )));
                Vec::new()
            }
        };
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((file, text, documents)) =
                self.parse_file(&path, format!("{shown_dir}/{file_name}"))
            else {
                continue;
            };
            let before = self.errors.errors.len();
            for document in &documents {
                let kind = document.root.get("kind");
                match kind.and_then(Node::as_str) {
                    Some(module::KIND) => self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, kind.map_or(document.root.span, |k| k.span)),
                            "a module cannot use another module",
                            "nested module",
                        )
                        .with_help("modules do not nest (yet): use both modules from the configuration"),
                    ),
                    Some(machine::KIND) => self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, kind.map_or(document.root.span, |k| k.span)),
                            "a module cannot declare machines",
                            "a machine",
                        )
                        .with_help("machines belong to the inventory; give the module a selector input (`type: any`) instead"),
                    ),
                    _ => {}
                }
                for problem in module::check_placeholders(&document.root, &declared) {
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(&file, problem.span),
                            problem.message,
                            "here",
                        )
                        .with_help_opt(problem.help),
                    );
                }
            }
            scrub_secrets(&mut self.errors.errors[before..], &text, &file.secrets);
            files.push(ModuleFile {
                file,
                text,
                dir: PathBuf::from(&shown_dir),
                documents: documents.into_iter().map(|d| d.root).collect(),
            });
        }
        (self.errors.errors.len() == first_error).then_some(ModuleDef {
            declaration,
            inputs,
            files,
        })
    }

    /// The value of every input of one use, given or defaulted; `None` when one is unknown,
    /// of the wrong type or missing (reported at the use site).
    pub(super) fn module_inputs(
        &mut self,
        file: &Arc<SourceFile>,
        spec_node: &Node,
        source: &str,
        instance: &Instance,
        def: &ModuleDef,
    ) -> Option<BTreeMap<String, Node>> {
        let first_error = self.errors.errors.len();
        let inputs_node = spec_node.get("inputs");
        let mut values = BTreeMap::new();
        let mut given = std::collections::BTreeSet::new();
        let names: Vec<&str> = def.inputs.iter().map(|i| i.name.as_str()).collect();
        if let Some(Value::Map(entries)) = inputs_node.map(|n| &n.value) {
            for (key, value) in entries {
                let Some(name) = key.as_str() else {
                    continue;
                };
                given.insert(name.to_owned());
                let Some(declared) = def.inputs.iter().find(|i| i.name == name) else {
                    let help = match names.is_empty() {
                        true => format!("module `{source}` declares no inputs"),
                        false => diagnostic::suggestion(name, &names, "inputs"),
                    };
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, key.span),
                            format!("module `{source}` has no input `{name}`"),
                            "unknown input",
                        )
                        .with_help(format!(
                            "{help}\nthe module's inputs are declared in {}",
                            def.declaration.name
                        )),
                    );
                    continue;
                };
                match declared.ty.accept(value) {
                    Some(value) => {
                        values.insert(name.to_owned(), value);
                    }
                    None => self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, value.span),
                            format!(
                                "input `{name}` must be {}, found {}",
                                declared.ty.described(),
                                value.kind_name()
                            ),
                            "wrong type",
                        )
                        .with_help(format!(
                            "`{name}` is declared as {} at {}",
                            declared.ty.described(),
                            declared.origin
                        )),
                    ),
                }
            }
        }
        for declared in &def.inputs {
            if given.contains(&declared.name) {
                continue;
            }
            match &declared.default {
                Some(default) => {
                    values.insert(declared.name.clone(), default.clone());
                }
                None => {
                    let span = inputs_node.map_or(span_at(spec_node, &["source"]), |n| n.span);
                    let about = declared
                        .description
                        .as_deref()
                        .map(|d| format!(": {}", d.trim()))
                        .unwrap_or_default();
                    self.errors.push(
                        ConfigError::at(
                            &Self::origin(file, span),
                            format!(
                                "module `{}` does not give the required input `{}`",
                                instance.name, declared.name
                            ),
                            format!("no `{}` here", declared.name),
                        )
                        .with_help(format!(
                            "add `{}:` to `inputs:`; it is declared at {} as {}{about}",
                            declared.name,
                            declared.origin,
                            declared.ty.described()
                        )),
                    );
                }
            }
        }
        (self.errors.errors.len() == first_error).then_some(values)
    }
}
