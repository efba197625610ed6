//! Loading: the Compose file checked against its schema and converted to the services
//! `docker stack deploy` creates, with names scoped to the stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::go_readings::{go_atoi, split_command};
use super::report::Report;
use super::schema::{Note, Obj, Ty, SERVICE, TOP};
use super::yaml_v2::{scalar_styles, Entry, Item, TreeBuilder, Val};
use super::{
    variables, Compose, ComposeObject, ComposeService, Variables, DEFAULT_VERSION, NEWEST_VERSION,
};
use crate::base::diagnostic::suggestion;
use crate::base::yaml::{parse_documents, Span};
use crate::swarm_service::{
    DockerDuration, FailureAction, Mode, MountKind, ObjectRef, Port, Protocol, PublishMode,
    ServiceMount, SwarmServiceSpec, UpdateOrder, UpdatePolicy,
};

/// Top-level networks and volumes by key: the name the CLI gives them in this stack.
#[derive(Debug, Clone)]
struct NamedObject {
    name: String,
    /// What the CLI puts in every mount of a non-external volume (driver, options,
    /// labels), as canonical JSON.
    mount_options: Option<serde_json::Value>,
    /// Span of `external` when the object is one the stack does not create.
    external: Option<Span>,
}

pub(super) struct Loader<'r, 'a> {
    pub(super) report: &'r mut Report<'a>,
    pub(super) dir: &'r Path,
    pub(super) stack: &'r str,
    /// `3.N` the file is checked as (its own, or the one `render` writes).
    pub(super) version: u8,
    pub(super) version_given: bool,
    pub(super) variables: &'r Variables,
    pub(super) variables_used: BTreeSet<String>,
}

impl Loader<'_, '_> {
    pub(super) fn load(&mut self, text: &str) -> Option<Compose> {
        let documents = match parse_documents(text) {
            Ok(documents) => documents,
            Err(e) => {
                let help = e.related.as_ref().map(|(label, span)| {
                    let (line, col) = self.report.file.line_col(span.start);
                    format!("{label} at {line}:{col}")
                });
                self.report.error(
                    e.span,
                    format!("not valid YAML: {}", e.message),
                    "here",
                    help,
                );
                return None;
            }
        };
        let document = match documents.as_slice() {
            [one] => one,
            [] => {
                let end = text.len();
                self.report.error(
                    Span { start: 0, end },
                    "the Compose file is empty",
                    "empty",
                    Some("write `version: \"3.8\"` and `services:`".into()),
                );
                return None;
            }
            [_, second, ..] => {
                self.report.error(
                    second.span,
                    "a Compose file is one YAML document; `docker stack deploy` would ignore this one",
                    "second document",
                    Some("remove the `---` and what follows, or deploy it as another stack".into()),
                );
                return None;
            }
        };
        let (styles, tags) = scalar_styles(text);
        for (span, tag) in tags {
            self.report.error(
                span,
                format!("the YAML tag `{tag}` is not read here"),
                "tag",
                Some("write the value without a tag".into()),
            );
        }
        let mut root = TreeBuilder {
            report: &mut *self.report,
            styles,
        }
        .build(&document.root);
        self.variables_used = variables::interpolate(&mut root, text, self.variables, self.report);
        if !matches!(root.value, Val::Map(_)) {
            self.report.error(
                root.span,
                format!("a Compose file is a mapping, not {}", root.found()),
                "not a mapping",
                Some("write `version: \"3.8\"` and `services:` at the top".into()),
            );
            return None;
        }
        let version = self.read_version(&root);
        for entry in root.entries() {
            if entry.key != "services" {
                self.check_entry(&TOP, entry, "");
            }
        }
        let networks = self.named_objects(root.get("networks"), "network");
        let volumes = self.named_objects(root.get("volumes"), "volume");
        let secrets = self.file_objects(root.get("secrets"), "secret");
        let configs = self.file_objects(root.get("configs"), "config");
        let mut services = BTreeMap::new();
        if let Some(entry) = root.entry("services") {
            if !matches!(entry.value.value, Val::Map(_)) {
                self.check_entry(&TOP, entry, "");
            }
            // Every check runs on every service, whatever was found before: a file with
            // five problems shows five.
            for service in entry.value.entries() {
                self.object_key(service, "service");
                let path = format!("services.{}", service.key);
                self.check(&service.value, Ty::Obj(&SERVICE), &path);
                if !matches!(service.value.value, Val::Map(_)) {
                    continue;
                }
                let defs = Definitions {
                    networks: &networks,
                    volumes: &volumes,
                    secrets: &secrets,
                    configs: &configs,
                };
                if let Some(converted) = self.service(service, &defs) {
                    services.insert(service.key.clone(), converted);
                }
            }
        }
        // The external networks the services use, as `convert.Networks` lists them for
        // `validateExternalNetworks` (which skips Docker's own: host, bridge, none).
        let used: BTreeSet<&String> = services
            .values()
            .flat_map(|s: &ComposeService| &s.spec.networks)
            .collect();
        let external_networks = networks
            .values()
            .filter(|n| used.contains(&n.name))
            .filter(|n| !matches!(n.name.as_str(), "host" | "bridge" | "none" | "default"))
            .filter(|n| !n.name.starts_with("container:"))
            .filter_map(|n| Some((n.name.clone(), n.external?)))
            .collect();
        Some(Compose {
            services,
            secrets,
            configs,
            external_networks,
            warnings: Vec::new(),
            root,
            version,
            stack: self.stack.to_owned(),
            variables_used: std::mem::take(&mut self.variables_used),
        })
    }

    /// The file's `3.N`, which the schema of its keys depends on; `None` when it names none.
    fn read_version(&mut self, root: &Item) -> Option<u8> {
        let item = root.get("version")?;
        let help = Some(format!(
            "write `version: \"3.{DEFAULT_VERSION}\"` (the 20.10 CLI reads \"3.0\" to \"3.{NEWEST_VERSION}\")"
        ));
        let Some(text) = item.str() else {
            let text = item.go_string().unwrap_or_default();
            self.report.error(
                item.span,
                format!("`version` must be a string, not {}", item.found()),
                "not a string",
                Some(format!("quote it: `version: \"{text}\"`")),
            );
            return None;
        };
        let minor = match text.strip_prefix("3") {
            Some("") => Some(0),
            Some(rest) => rest
                .strip_prefix('.')
                .filter(|m| m.len() == 1)
                .and_then(|m| m.parse::<u8>().ok()),
            None => None,
        };
        match minor {
            Some(minor) if minor <= NEWEST_VERSION => {
                self.version = minor;
                self.version_given = true;
                Some(minor)
            }
            _ => {
                self.report.error(
                    item.span,
                    format!(
                        "`docker stack deploy` (20.10) does not read Compose file format `{text}`"
                    ),
                    "unsupported version",
                    help,
                );
                None
            }
        }
    }

    // -- Schema ----------------------------------------------------------------------

    fn check(&mut self, item: &Item, ty: Ty, path: &str) {
        if !ty.accepts_kind(&item.value) {
            self.wrong_type(item, ty, path);
            return;
        }
        match ty {
            Ty::Any | Ty::Str | Ty::Num | Ty::Bool | Ty::StrNum | Ty::StrNumNull => {}
            Ty::Int => {
                if item.int().is_none() {
                    self.wrong_type(item, ty, path);
                }
            }
            Ty::Duration => {
                let text = item.str().unwrap_or_default();
                if crate::duration::parse_go(text).is_none() {
                    self.report.error(
                        item.span,
                        format!("`{path}` is not a duration: `{text}`"),
                        "not a duration",
                        Some("write a number with a unit (ns, us, ms, s, m, h), as in `10s` or `1m30s`".into()),
                    );
                }
            }
            Ty::Enum(words) => {
                let text = item.str().unwrap_or_default();
                if !words.contains(&text) {
                    self.report.error(
                        item.span,
                        format!("`{path}` cannot be `{text}`"),
                        "unknown value",
                        Some(format!("write {}", ty.expected())),
                    );
                }
            }
            Ty::List(inner, unique) => {
                let mut seen: Vec<String> = Vec::new();
                for (index, element) in item.items().iter().enumerate() {
                    self.check(element, *inner, &format!("{path}[{index}]"));
                    if unique {
                        let canonical = element.canonical();
                        if seen.contains(&canonical) {
                            self.report.error(
                                element.span,
                                format!("`{path}` lists this item twice"),
                                "again",
                                Some("remove one of them".into()),
                            );
                        }
                        seen.push(canonical);
                    }
                }
            }
            Ty::Dict(inner) => {
                for entry in item.entries() {
                    self.check(&entry.value, *inner, &format!("{path}.{}", entry.key));
                }
            }
            Ty::Obj(obj) => {
                for entry in item.entries() {
                    self.check_entry(obj, entry, path);
                }
                for required in obj.required {
                    if item.entry(required).is_none() {
                        self.report.error(
                            item.span,
                            format!("`{path}` needs `{required}`"),
                            "incomplete",
                            None,
                        );
                    }
                }
            }
            Ty::NullOr(inner) => {
                if item.value != Val::Null {
                    self.check(item, *inner, path);
                }
            }
            Ty::OneOf(alternatives) => {
                if let Some(alternative) = alternatives.iter().find(|t| t.accepts_kind(&item.value))
                {
                    self.check(item, *alternative, path);
                }
            }
        }
    }

    fn wrong_type(&mut self, item: &Item, ty: Ty, path: &str) {
        let help = match (&item.value, ty.accepts_kind(&Val::Str(String::new()))) {
            (Val::Bool(_), true) => Some(
                "YAML 1.1 (which the CLI reads) takes yes/no/on/off/true/false as booleans: quote the value".to_owned(),
            ),
            (Val::Int(_) | Val::UInt(_) | Val::Float(_), true) => Some("quote the value".to_owned()),
            _ => None,
        };
        self.report.error(
            item.span,
            format!("`{path}` must be {}, not {}", ty.expected(), item.found()),
            "wrong type",
            help,
        );
    }

    /// One key of a mapping with known keys: known (and in the file's version), an
    /// extension, or refused.
    fn check_entry(&mut self, obj: &Obj, entry: &Entry, parent: &str) {
        let path = match parent {
            "" => entry.key.clone(),
            _ => format!("{parent}.{}", entry.key),
        };
        if entry.key.starts_with("x-") {
            match obj.extensions {
                Some(since) => {
                    self.require_version(since, entry, &path);
                }
                None => self.unknown_key(obj, entry, parent),
            }
            return;
        }
        let Some(field) = obj.fields.iter().find(|f| f.name == entry.key) else {
            self.unknown_key(obj, entry, parent);
            return;
        };
        let refusal = match field.note {
            Note::Ignored(help) => Some((
                "ignores `{path}`, which changes what the file means: the service would run without it",
                "ignored by stack deploy",
                help,
            )),
            Note::Refused(help) => Some(("refuses `{path}`", "refused by stack deploy", help)),
            Note::Harmless(why) => {
                self.report.warn(
                    entry.key_span,
                    format!("`docker stack deploy` ignores `{path}`: {why}"),
                );
                None
            }
            Note::Restart | Note::None => None,
        };
        if let Some((what, label, help)) = refusal {
            self.report.error(
                entry.key_span,
                format!("`docker stack deploy` {}", what.replace("{path}", &path)),
                label,
                Some(help.into()),
            );
            return;
        }
        if self.require_version(field.since, entry, &path) {
            self.check(&entry.value, field.ty, &path);
        }
    }

    fn require_version(&mut self, since: u8, entry: &Entry, path: &str) -> bool {
        if since <= self.version {
            return true;
        }
        let this = match self.version_given {
            true => format!("this file is version 3.{}", self.version),
            false => format!("this file names no version, and is deployed as 3.{DEFAULT_VERSION}"),
        };
        self.report.error(
            entry.key_span,
            format!("`{path}` needs Compose file format 3.{since} or later ({this})"),
            "too new for the file's version",
            Some(format!("set `version: \"3.{since}\"` or later (the 20.10 CLI reads up to 3.{NEWEST_VERSION})")),
        );
        false
    }

    fn unknown_key(&mut self, obj: &Obj, entry: &Entry, parent: &str) {
        let known: Vec<&str> = obj
            .fields
            .iter()
            .filter(|f| matches!(f.note, Note::None | Note::Harmless(_) | Note::Restart))
            .filter(|f| f.since <= self.version)
            .map(|f| f.name)
            .collect();
        let place = match parent {
            "" => "at the top of a Compose file".to_owned(),
            _ => format!("in `{parent}`"),
        };
        self.report.error(
            entry.key_span,
            format!("`{}` is not a Compose key {place}", entry.key),
            "unknown key",
            Some(suggestion(&entry.key, &known, "keys")),
        );
    }

    // -- Top-level objects -----------------------------------------------------------

    /// Networks or volumes by key, with the names the CLI gives them.
    fn named_objects(
        &mut self,
        section: Option<&Item>,
        what: &str,
    ) -> BTreeMap<String, NamedObject> {
        let mut objects = BTreeMap::new();
        for entry in section.map(Item::entries).unwrap_or_default() {
            self.object_key(entry, what);
            let definition = &entry.value;
            let (external, external_name) = external_of(definition);
            let name = definition
                .get("name")
                .and_then(Item::str)
                .map(str::to_owned);
            let name = if external {
                if external_name.is_some() && name.is_some() {
                    self.report.error(
                        entry.key_span,
                        format!("{what} `{}` has both `external.name` and `name`", entry.key),
                        "conflicting names",
                        Some("keep `name:` (`external.name` is its deprecated form)".into()),
                    );
                }
                for key in [
                    "driver",
                    "driver_opts",
                    "labels",
                    "ipam",
                    "internal",
                    "attachable",
                ] {
                    if let Some(extra) = definition.entry(key) {
                        self.report.error(
                            extra.key_span,
                            format!("{what} `{}` is external: `{key}` would be ignored (it is not created)", entry.key),
                            "with `external`",
                            Some("remove it, or remove `external` to have the stack create it".into()),
                        );
                    }
                }
                external_name.or(name).unwrap_or_else(|| entry.key.clone())
            } else {
                name.unwrap_or_else(|| format!("{}_{}", self.stack, entry.key))
            };
            let mount_options = (what == "volume" && !external)
                .then(|| {
                    let options: serde_json::Map<String, serde_json::Value> =
                        ["driver", "driver_opts", "labels"]
                            .iter()
                            .filter_map(|k| definition.get(k).map(|v| ((*k).to_owned(), v.json())))
                            .collect();
                    (!options.is_empty()).then_some(serde_json::Value::Object(options))
                })
                .flatten();
            let external = external.then(|| {
                definition
                    .entry("external")
                    .map_or(entry.key_span, |e| e.value.span)
            });
            objects.insert(
                entry.key.clone(),
                NamedObject {
                    name,
                    mount_options,
                    external,
                },
            );
        }
        objects
    }

    /// Secrets or configs by key: a file corral makes an object of, or an existing object.
    fn file_objects(
        &mut self,
        section: Option<&Item>,
        what: &str,
    ) -> BTreeMap<String, ComposeObject> {
        let mut objects = BTreeMap::new();
        for entry in section.map(Item::entries).unwrap_or_default() {
            self.object_key(entry, what);
            let definition = &entry.value;
            if !matches!(definition.value, Val::Map(_)) {
                // The schema check said so.
                continue;
            }
            let (external, external_name) = external_of(definition);
            let name = definition
                .get("name")
                .and_then(Item::str)
                .map(str::to_owned);
            let file = definition.entry("file");
            if external {
                if external_name.is_some() && name.is_some() {
                    self.report.error(
                        entry.key_span,
                        format!("{what} `{}` has both `external.name` and `name`", entry.key),
                        "conflicting names",
                        Some("keep `name:` (`external.name` is its deprecated form)".into()),
                    );
                }
                for key in ["file", "labels", "driver", "driver_opts", "template_driver"] {
                    if let Some(extra) = definition.entry(key) {
                        self.report.error(
                            extra.key_span,
                            format!("{what} `{}` is external: `{key}` would be ignored", entry.key),
                            "with `external`",
                            Some(format!("remove it, or remove `external` to have corral create the {what} from `file:`")),
                        );
                    }
                }
                let span = definition
                    .entry("external")
                    .map_or(entry.key_span, |e| e.value.span);
                let name = external_name.or(name).unwrap_or_else(|| entry.key.clone());
                objects.insert(entry.key.clone(), ComposeObject::External { name, span });
                continue;
            }
            if let Some(given) = definition.entry("name") {
                let shown = given.value.str().unwrap_or_default();
                self.report.warn(
                    given.key_span,
                    format!("{what} `{}`: corral creates it as `{}_{}_<version>` (a new name for each new content, as `docker stack deploy` cannot update one), not `{shown}`; the services refer to it by its key as before", entry.key, self.stack, entry.key),
                );
            }
            let managed = |key: &str| {
                match key {
                "labels" => format!("corral labels the {what}s it creates itself: remove `labels:`"),
                _ => format!("corral creates {what}s from files only: remove `{key}:`, or create the {what} beforehand and declare it `external: true`"),
            }
            };
            for key in ["labels", "driver", "driver_opts", "template_driver"] {
                if let Some(extra) = definition.entry(key) {
                    self.report.error(
                        extra.key_span,
                        format!("corral cannot honour `{key}` of {what} `{}`", entry.key),
                        "not supported",
                        Some(managed(key)),
                    );
                }
            }
            match file.and_then(|f| f.value.str().map(|s| (s, f.value.span))) {
                Some((path, span)) if !path.is_empty() => {
                    objects.insert(
                        entry.key.clone(),
                        ComposeObject::File {
                            path: self.dir.join(path),
                            span,
                        },
                    );
                }
                _ => self.report.error(
                    entry.key_span,
                    format!("{what} `{}` has no `file:`", entry.key),
                    "no content",
                    Some(format!("write `file: PATH` (relative to the Compose file), or `external: true` for an existing {what}")),
                ),
            }
        }
        objects
    }

    fn object_key(&mut self, entry: &Entry, what: &str) {
        if !valid_object_key(&entry.key) {
            self.report.error(
                entry.key_span,
                format!("`{}` cannot be the name of a {what}", entry.key),
                "invalid name",
                Some("Compose names are letters, digits and `._-`".into()),
            );
        }
    }

    // -- Services --------------------------------------------------------------------

    fn service(&mut self, entry: &Entry, defs: &Definitions) -> Option<ComposeService> {
        let before = self.report.count;
        let service = &entry.value;
        let path = format!("services.{}", entry.key);
        let full_name = format!("{}_{}", self.stack, entry.key);
        if !valid_service_name(&full_name) {
            self.report.error(
                entry.key_span,
                format!("the service would be named `{full_name}`, which swarm refuses"),
                "invalid service name",
                Some("swarm service names are letters and digits, with `-` or `_` between them, 63 characters at most (no `.`)".into()),
            );
        }
        let mut spec = SwarmServiceSpec::default();
        let mut opaque = BTreeMap::new();
        match service.get("image").map(|i| i.str()) {
            Some(Some(image)) if !image.trim().is_empty() => spec.image = image.to_owned(),
            // The schema check said what it is instead; `build:` is refused already.
            Some(None) => {}
            None if service.get("build").is_some() => {}
            _ => self.report.error(
                service.get("image").map_or(entry.key_span, |i| i.span),
                format!("service `{}` names no image", entry.key),
                "no image",
                Some("write `image: NAME[:TAG]`: `docker stack deploy` builds nothing".into()),
            ),
        }
        if let Some(command) = service.get("command") {
            spec.command = self.command(command, &path);
        }
        spec.env = self.environment(service, &path);
        spec.networks = self.networks(service, defs, &mut opaque);
        spec.ports = self.ports(service.get("ports"), &path);
        spec.mounts = self.mounts(service.get("volumes"), defs, &mut opaque);
        spec.secrets = self.references(service.get("secrets"), defs.secrets, "secret", &mut opaque);
        spec.configs = self.references(service.get("configs"), defs.configs, "config", &mut opaque);
        if let Some(deploy) = service.get("deploy") {
            self.deploy(deploy, &path, &mut spec, &mut opaque);
        }
        for key in OPAQUE_SERVICE_KEYS {
            if let Some(value) = service.get(key) {
                opaque.insert((*key).to_owned(), value.canonical());
            }
        }
        if let Some(restart) = service.entry("restart") {
            self.restart(restart, service, &path, &mut opaque);
        }
        (self.report.count == before).then_some(ComposeService {
            spec,
            opaque,
            span: entry.key_span,
        })
    }

    /// `restart:` as the 20.10 CLI's `convertRestartPolicy` reads it: ignored when
    /// `deploy.restart_policy` is given, else `always`/`unless-stopped` are `condition: any`
    /// and `on-failure[:N]` is `condition: on-failure` with `max_attempts: N` (0 without N),
    /// kept as the `deploy.restart_policy` it amounts to. `no` is refused: the CLI drops
    /// it, and swarm's default restarts every task that ends.
    fn restart(
        &mut self,
        entry: &Entry,
        service: &Item,
        path: &str,
        opaque: &mut BTreeMap<String, String>,
    ) {
        let Some(text) = entry.value.str() else {
            // The schema check said so.
            return;
        };
        let path = format!("{path}.restart");
        if service
            .get("deploy")
            .and_then(|d| d.get("restart_policy"))
            .is_some()
        {
            self.report.warn(
                entry.key_span,
                format!("`docker stack deploy` ignores `{path}`: `deploy.restart_policy` decides"),
            );
            return;
        }
        // `opts.ParseRestartPolicy`: NAME[:COUNT], COUNT a Go int.
        let parts: Vec<&str> = text.split(':').collect();
        let (name, count) = match parts.as_slice() {
            [name] => (*name, Ok(0)),
            [name, count] => (*name, go_atoi(count).ok_or(())),
            _ => (text, Err(())),
        };
        let help =
            "write `always`, `unless-stopped` or `on-failure[:N]`, or `deploy.restart_policy`";
        let mut refuse = |message: String| {
            self.report.error(
                entry.value.span,
                message,
                "restart policy",
                Some(help.into()),
            )
        };
        let Ok(count) = count else {
            return refuse(format!(
                "`docker stack deploy` refuses `{path}: {text}`: invalid restart policy format, or a maximum retry count that is not an integer"
            ));
        };
        let policy = match name {
            "always" | "unless-stopped" => serde_json::json!({"condition": "any"}),
            "on-failure" if count >= 0 => {
                serde_json::json!({"condition": "on-failure", "max_attempts": count})
            }
            "on-failure" => {
                return refuse(format!(
                    "`{path}: {text}`: a negative retry count, which the 20.10 CLI turns into {} attempts",
                    count as u64
                ))
            }
            "no" | "" => {
                self.report.error(
                    entry.value.span,
                    format!("`docker stack deploy` ignores `{path}: \"{text}\"`, which changes what the file means: swarm restarts every task that ends unless told otherwise"),
                    "ignored by stack deploy",
                    Some("write `deploy: {restart_policy: {condition: none}}` for tasks that run once".into()),
                );
                return;
            }
            _ => return refuse(format!("`docker stack deploy` refuses `{path}`: unknown restart policy: {text}")),
        };
        let shown = match name {
            "on-failure" => format!("`condition: on-failure`, `max_attempts: {count}`"),
            _ => "`condition: any`".to_owned(),
        };
        self.report.warn(
            entry.key_span,
            format!("`docker stack deploy` converts `{path}: {text}` to `deploy.restart_policy` {shown}, as it would run the service anyway"),
        );
        opaque
            .entry("deploy.restart_policy".into())
            .or_insert_with(|| policy.to_string());
    }

    fn command(&mut self, command: &Item, path: &str) -> Vec<String> {
        match &command.value {
            Val::Str(text) => match split_command(text) {
                Ok(words) => words,
                Err(why) => {
                    self.report.error(
                        command.span,
                        format!("`{path}.command` cannot be split into arguments: {why}"),
                        "unbalanced",
                        Some("the CLI splits a string command like a shell (quotes, `\\`); or write a list".into()),
                    );
                    Vec::new()
                }
            },
            _ => command.items().iter().filter_map(Item::go_string).collect(),
        }
    }

    /// `env_file:` files, then `environment:` over them, as the CLI merges them.
    ///
    /// One thing the file alone cannot decide: the CLI replaces an empty value (`KEY=`,
    /// `KEY: ""`) with the deploying shell's variable of that name when it has one; an
    /// empty value is empty only if `docker stack deploy` runs in a clean environment.
    fn environment(&mut self, service: &Item, path: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Some(files) = service.get("env_file") {
            let files: Vec<&Item> = match &files.value {
                Val::Str(_) => vec![files],
                _ => files.items().iter().collect(),
            };
            for file in files {
                let name = file.str().unwrap_or_default();
                if let Some(bytes) = self.read_env_file(name, file.span) {
                    self.env_file(&bytes, name, file.span, &mut env);
                }
            }
        }
        let no_value = |report: &mut Report, span, key: &str| {
            report.error(
                span,
                format!("`{key}` has no value: `docker stack deploy` would take it from the environment of the shell that deploys"),
                "no value",
                Some(format!("write the value: `{key}=VALUE` (an empty value is `{key}=`)")),
            )
        };
        let Some(environment) = service.get("environment") else {
            return env;
        };
        match &environment.value {
            Val::Map(entries) => {
                for entry in entries {
                    match entry.value.go_string() {
                        Some(value) => {
                            self.env_key(&entry.key, entry.key_span, path);
                            env.insert(entry.key.clone(), value);
                        }
                        None => no_value(self.report, entry.key_span, &entry.key),
                    }
                }
            }
            _ => {
                for item in environment.items() {
                    let text = item.str().unwrap_or_default();
                    match text.split_once('=') {
                        Some((key, value)) => {
                            self.env_key(key, item.span, path);
                            env.insert(key.to_owned(), value.to_owned());
                        }
                        None => no_value(self.report, item.span, text),
                    }
                }
            }
        }
        env
    }

    /// An env file's bytes. Its values are shown in plans (and CI logs), so it must be a
    /// regular file under the Compose file's directory, links resolved: a file under
    /// review must not put the reviewer's files (`/proc/self/environ`) into a plan.
    fn read_env_file(&mut self, name: &str, span: Span) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let help = Some(
            "env files are read relative to the Compose file, and must be under its directory"
                .to_owned(),
        );
        let resolved = match path.canonicalize() {
            Ok(resolved) => resolved,
            Err(e) => {
                self.report.error(
                    span,
                    format!("cannot read the env file `{}`: {e}", path.display()),
                    "this file",
                    help,
                );
                return None;
            }
        };
        let inside = self
            .dir
            .canonicalize()
            .is_ok_and(|dir| resolved.starts_with(dir));
        if !inside || !resolved.is_file() {
            let why = match inside {
                false => "is outside the Compose file's directory",
                true => "is not a regular file",
            };
            self.report.error(
                span,
                format!("the env file `{}` {why}", resolved.display()),
                "this file",
                help,
            );
            return None;
        }
        match std::fs::read(&resolved) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.report.error(
                    span,
                    format!("cannot read the env file `{}`: {e}", path.display()),
                    "this file",
                    help,
                );
                None
            }
        }
    }

    fn env_key(&mut self, key: &str, span: Span, path: &str) {
        if key.is_empty() || key.contains('=') {
            self.report.error(
                span,
                format!("`{key}` cannot be a variable of `{path}.environment`"),
                "invalid name",
                Some("a variable's name is not empty and has no `=`".into()),
            );
        }
    }

    /// An env file as the CLI reads it (`opts.ParseEnvFile`): `KEY=VALUE` lines, the value
    /// verbatim (quotes and trailing spaces included), `#` comments, leading spaces dropped.
    fn env_file(
        &mut self,
        bytes: &[u8],
        name: &str,
        span: Span,
        env: &mut BTreeMap<String, String>,
    ) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (index, line) in lines.into_iter().enumerate() {
            let number = index + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Ok(line) = std::str::from_utf8(line) else {
                self.report.error(
                    span,
                    format!("the env file `{name}` is not UTF-8 at line {number}"),
                    "this file",
                    None,
                );
                continue;
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (variable, value) = match line.split_once('=') {
                Some((variable, value)) => (variable, Some(value)),
                None => (line, None),
            };
            let variable = variable.trim_start_matches([' ', '\t']);
            let problem = if variable.contains([' ', '\t']) {
                Some(format!("the variable `{variable}` contains whitespace"))
            } else if variable.is_empty() {
                Some("a line has no variable name".to_owned())
            } else if value.is_none() {
                Some(format!("`{variable}` has no value: `docker stack deploy` would take it from the environment of the shell that deploys"))
            } else if value.is_some_and(|v| v.contains('\0')) {
                Some(format!("the value of `{variable}` holds a NUL byte"))
            } else {
                None
            };
            match (problem, value) {
                (Some(problem), _) => self.report.error(
                    span,
                    format!("env file `{name}`, line {number}: {problem}"),
                    "this file",
                    Some("write `KEY=VALUE` lines (an empty value is `KEY=`)".into()),
                ),
                (None, Some(value)) => {
                    env.insert(variable.to_owned(), value.to_owned());
                }
                (None, None) => {}
            }
        }
    }

    /// The networks' names, sorted as the CLI sorts them; `default` when none is listed.
    fn networks(
        &mut self,
        service: &Item,
        defs: &Definitions,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<String> {
        let listed: Vec<(String, Span, Option<&Item>)> = match service.get("networks") {
            None => Vec::new(),
            Some(networks) => match &networks.value {
                Val::Map(entries) => entries
                    .iter()
                    .map(|e| (e.key.clone(), e.key_span, Some(&e.value)))
                    .collect(),
                _ => networks
                    .items()
                    .iter()
                    .map(|i| (i.str().unwrap_or_default().to_owned(), i.span, None))
                    .collect(),
            },
        };
        if listed.is_empty() {
            return vec![defs.network_name(self.stack, "default")];
        }
        let mut names = BTreeSet::new();
        for (key, span, settings) in listed {
            if key != "default" && !defs.networks.contains_key(&key) {
                let known: Vec<&str> = defs.networks.keys().map(String::as_str).collect();
                self.report.error(
                    span,
                    format!("the network `{key}` is not declared under the top-level `networks:`"),
                    "undefined network",
                    Some(match known.is_empty() {
                        true => format!("declare it: `networks: {{{key}: {{}}}}`"),
                        false => suggestion(&key, &known, "networks"),
                    }),
                );
                continue;
            }
            if let Some(aliases) = settings.and_then(|s| s.get("aliases")) {
                opaque.insert(format!("networks.{key}.aliases"), aliases.canonical());
            }
            names.insert(defs.network_name(self.stack, &key));
        }
        names.into_iter().collect()
    }

    fn ports(&mut self, ports: Option<&Item>, path: &str) -> Vec<Port> {
        let mut out: Vec<Port> = Vec::new();
        let mut written: Vec<String> = Vec::new();
        for item in ports.map(Item::items).unwrap_or_default() {
            // The same entry twice: the schema check said so (`uniqueItems`).
            let canonical = item.canonical();
            if written.contains(&canonical) {
                continue;
            }
            written.push(canonical);
            let port = match &item.value {
                Val::Map(_) => self.long_port(item),
                _ => match item.go_string() {
                    Some(text) => self.short_port(&text, item.span),
                    None => None,
                },
            };
            let Some(port) = port else {
                continue;
            };
            if port.published != 0
                && out
                    .iter()
                    .any(|p| p.published == port.published && p.protocol == port.protocol)
            {
                self.report.error(
                    item.span,
                    format!(
                        "`{path}.ports` publishes {}/{} twice",
                        port.published,
                        protocol_word(port.protocol)
                    ),
                    "again",
                    None,
                );
                continue;
            }
            out.push(port);
        }
        // The CLI sorts by published port (stable).
        out.sort_by_key(|p| p.published);
        out
    }

    /// `[IP:]PUBLISHED:TARGET[/PROTOCOL]`, as `nat.ParsePortSpec` reads it.
    fn short_port(&mut self, text: &str, span: Span) -> Option<Port> {
        let mut error = |message: String, help: &str| {
            self.report
                .error(span, message, "this port", Some(help.to_owned()));
            None
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (ip, published, target) = match parts.as_slice() {
            [target] => ("".to_owned(), "", *target),
            [published, target] => ("".to_owned(), *published, *target),
            [ip, published, target] => ((*ip).to_owned(), *published, *target),
            [ip @ .., published, target] => (ip.join(":"), *published, *target),
            [] => {
                return error(
                    format!("`{text}` is not a port"),
                    "write `PUBLISHED:TARGET`, e.g. `8080:80`",
                )
            }
        };
        let (target, protocol) = match target.split('/').collect::<Vec<_>>().as_slice() {
            [port] => (*port, "tcp"),
            [port, ""] => (*port, "tcp"),
            [port, protocol, ..] => (*port, *protocol),
            [] => (target, "tcp"),
        };
        if !ip.is_empty() {
            return error(
                format!("`{text}` names an address: `docker stack deploy` ignores it and publishes on every address"),
                "remove the address (a swarm port is published on all of a node's addresses)",
            );
        }
        if target.contains('-') || published.contains('-') {
            return error(
                format!("`{text}` is a range of ports, which corral does not handle"),
                "write one entry per port",
            );
        }
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return error(
                    format!("`{text}`: corral does not handle the protocol `{other}`"),
                    "use tcp or udp",
                )
            }
        };
        // No published port: swarm assigns one (from 30000) when the service is created.
        let published = match published {
            "" => Some(0),
            _ => port_number(published),
        };
        let (Some(published), Some(target)) = (published, port_number(target)) else {
            return error(
                format!("`{text}` is not a port mapping"),
                "ports are numbers from 1 to 65535, as in `8080:80`",
            );
        };
        Some(Port {
            published,
            target,
            mode: PublishMode::Ingress,
            protocol,
        })
    }

    fn long_port(&mut self, item: &Item) -> Option<Port> {
        let number = |key: &str| item.get(key).and_then(Item::int);
        let target = number("target");
        let mut ok = true;
        let mut port_of = |value: Option<i128>, key: &str| match value
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v > 0)
        {
            Some(port) => port,
            None => {
                let span = item.get(key).map_or(item.span, |v| v.span);
                self.report.error(
                    span,
                    format!("`{key}` must be a port, from 1 to 65535"),
                    "not a port",
                    None,
                );
                ok = false;
                0
            }
        };
        // No published port: swarm assigns one when the service is created.
        let published = match item.get("published") {
            None => 0,
            Some(_) => port_of(number("published"), "published"),
        };
        let target = port_of(target, "target");
        let protocol = match item.get("protocol").and_then(Item::str) {
            None | Some("tcp") => Protocol::Tcp,
            Some("udp") => Protocol::Udp,
            Some(other) => {
                self.report.error(
                    item.get("protocol").map_or(item.span, |p| p.span),
                    format!("corral does not handle the protocol `{other}`"),
                    "protocol",
                    Some("write `tcp` or `udp`".into()),
                );
                return None;
            }
        };
        let mode = match item.get("mode").and_then(Item::str) {
            None | Some("ingress") => PublishMode::Ingress,
            Some("host") => PublishMode::Host,
            Some(other) => {
                self.report.error(
                    item.get("mode").map_or(item.span, |p| p.span),
                    format!("`{other}` is not a publish mode"),
                    "mode",
                    Some("write `ingress` (the routing mesh) or `host`".into()),
                );
                return None;
            }
        };
        ok.then_some(Port {
            published,
            target,
            mode,
            protocol,
        })
    }

    fn mounts(
        &mut self,
        volumes: Option<&Item>,
        defs: &Definitions,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<ServiceMount> {
        let mut mounts: Vec<ServiceMount> = Vec::new();
        let mut targets = BTreeSet::new();
        let mut written: Vec<String> = Vec::new();
        for item in volumes.map(Item::items).unwrap_or_default() {
            // The same entry twice: the schema check said so (`uniqueItems`).
            let canonical = item.canonical();
            if written.contains(&canonical) {
                continue;
            }
            written.push(canonical);
            let volume = match &item.value {
                Val::Str(spec) => self.short_volume(spec, item.span),
                _ => self.long_volume(item),
            };
            let Some(volume) = volume else {
                continue;
            };
            if !volume.target.starts_with('/') {
                self.report.error(
                    item.span,
                    format!(
                        "the mount target `{}` is not an absolute path",
                        volume.target
                    ),
                    "relative target",
                    Some("write the path in the container from `/`".into()),
                );
                continue;
            }
            if !targets.insert(volume.target.clone()) {
                self.report.error(
                    item.span,
                    format!("`{}` is mounted twice", volume.target),
                    "again",
                    None,
                );
                continue;
            }
            let mut options = volume.options.clone();
            let kind = match volume.kind.as_str() {
                "bind" => {
                    if !volume.source.starts_with('/') {
                        let help = match volume.source.starts_with('~') {
                            true => "write the absolute path on the nodes (`~` is the home of whoever deploys)",
                            false => "write the absolute path on the nodes: the CLI resolves a relative one on the manager that deploys",
                        };
                        self.report.error(
                            item.span,
                            format!(
                                "the bind mount source `{}` is not an absolute path",
                                volume.source
                            ),
                            "relative source",
                            Some(help.into()),
                        );
                        continue;
                    }
                    MountKind::Bind
                }
                "volume" => MountKind::Volume,
                "tmpfs" => {
                    options.insert("type".into(), "tmpfs".into());
                    options.insert("read_only".into(), volume.read_only.into());
                    opaque.insert(
                        format!("volumes.{}", volume.target),
                        serde_json::Value::Object(options).to_string(),
                    );
                    continue;
                }
                // No `type`: the schema check said so.
                "" => continue,
                other => {
                    let help = match other {
                        "npipe" => "named pipes are Windows'; corral deploys to Linux nodes",
                        _ => "write `volume`, `bind` or `tmpfs`",
                    };
                    self.report.error(
                        item.span,
                        format!("corral does not handle mounts of type `{other}`"),
                        "mount type",
                        Some(help.into()),
                    );
                    continue;
                }
            };
            let mut source = volume.source.clone();
            if kind == MountKind::Volume && !source.is_empty() {
                match defs.volumes.get(&source) {
                    Some(named) => {
                        if let Some(definition) = &named.mount_options {
                            options.insert("definition".into(), definition.clone());
                        }
                        source = named.name.clone();
                    }
                    None => {
                        let known: Vec<&str> = defs.volumes.keys().map(String::as_str).collect();
                        self.report.error(
                            item.span,
                            format!("the volume `{source}` is not declared under the top-level `volumes:`"),
                            "undefined volume",
                            Some(match known.is_empty() {
                                true => format!("declare it: `volumes: {{{source}: {{}}}}`"),
                                false => suggestion(&source, &known, "volumes"),
                            }),
                        );
                        continue;
                    }
                }
            }
            if !options.is_empty() {
                opaque.insert(
                    format!("volumes.{}", volume.target),
                    serde_json::Value::Object(options).to_string(),
                );
            }
            mounts.push(ServiceMount {
                kind,
                source,
                target: volume.target,
                readonly: volume.read_only,
            });
        }
        mounts
    }

    /// `SOURCE:TARGET[:OPTIONS]` or `TARGET`, as the CLI's `ParseVolume` reads it.
    fn short_volume(&mut self, spec: &str, span: Span) -> Option<VolumeSpec> {
        let mut error = |message: String| {
            self.report.error(
                span,
                message,
                "this volume",
                Some("write `SOURCE:TARGET[:ro]`, where SOURCE is a volume's key or an absolute path".into()),
            );
            None
        };
        let mut volume = VolumeSpec::default();
        let mut options = None;
        if spec.is_empty() {
            return error("an empty volume".into());
        }
        // Go counts bytes here.
        if spec.len() <= 2 {
            volume.target = spec.to_owned();
        } else {
            let mut buffer = String::new();
            for c in spec.chars().map(Some).chain([None]) {
                let windows_drive = c == Some(':')
                    && buffer.chars().count() == 1
                    && buffer.chars().all(char::is_alphabetic);
                match c {
                    Some(':') if !windows_drive => {}
                    None => {}
                    Some(c) => {
                        buffer.push(c);
                        continue;
                    }
                }
                let part = std::mem::take(&mut buffer);
                if part.is_empty() {
                    return error(format!("`{spec}` has an empty part between colons"));
                }
                if volume.source.is_empty() && c.is_none() {
                    volume.target = part;
                } else if volume.source.is_empty() {
                    volume.source = part;
                } else if volume.target.is_empty() {
                    volume.target = part;
                } else if c.is_some() {
                    return error(format!("`{spec}` has too many colons"));
                } else {
                    options = Some(part);
                }
            }
        }
        volume.kind = match volume.source.chars().next() {
            None => "volume",
            Some('.' | '/' | '~') => "bind",
            Some(_) if volume.source.starts_with("\\\\") => "bind",
            Some(first) if first.is_alphabetic() && volume.source.chars().nth(1) == Some(':') => {
                "bind"
            }
            Some(_) => "volume",
        }
        .to_owned();
        for option in options.iter().flat_map(|o| o.split(',')) {
            match option {
                "ro" => volume.read_only = true,
                "rw" => volume.read_only = false,
                "nocopy" => {
                    volume.options.insert("nocopy".into(), true.into());
                }
                _ if PROPAGATIONS.contains(&option) => {
                    volume.options.insert("propagation".into(), option.into());
                }
                _ => {
                    return error(format!(
                        "`{spec}`: `docker stack deploy` ignores the option `{option}`"
                    ))
                }
            }
        }
        self.volume_options(&volume, span)?;
        Some(volume)
    }

    fn long_volume(&mut self, item: &Item) -> Option<VolumeSpec> {
        let text = |key: &str| {
            item.get(key)
                .and_then(Item::str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut volume = VolumeSpec {
            kind: text("type"),
            source: text("source"),
            target: text("target"),
            read_only: item.get("read_only").and_then(Item::bool).unwrap_or(false),
            options: serde_json::Map::new(),
        };
        if let Some(consistency) = item
            .get("consistency")
            .and_then(Item::str)
            .filter(|c| !c.is_empty())
        {
            volume
                .options
                .insert("consistency".into(), consistency.into());
        }
        if let Some(bind) = item.get("bind") {
            let propagation = bind
                .get("propagation")
                .and_then(Item::str)
                .unwrap_or_default();
            if !propagation.is_empty() && !PROPAGATIONS.contains(&propagation) {
                self.report.error(
                    bind.span,
                    format!("`{propagation}` is not a bind propagation"),
                    "propagation",
                    Some(format!("write one of {}", PROPAGATIONS.join(", "))),
                );
                return None;
            }
            volume
                .options
                .insert("propagation".into(), propagation.into());
        }
        if let Some(options) = item.get("volume") {
            volume.options.insert(
                "nocopy".into(),
                options
                    .get("nocopy")
                    .and_then(Item::bool)
                    .unwrap_or(false)
                    .into(),
            );
        }
        if let Some(tmpfs) = item.get("tmpfs") {
            let size = tmpfs.get("size").and_then(Item::int).unwrap_or(0);
            if size < 0 || size > i128::from(i64::MAX) {
                self.report.error(
                    tmpfs.span,
                    "a tmpfs size is a number of bytes",
                    "size",
                    None,
                );
                return None;
            }
            volume
                .options
                .insert("size".into(), serde_json::Value::from(size as i64));
        }
        if volume.target.is_empty() {
            self.report
                .error(item.span, "this mount has no `target`", "no target", None);
            return None;
        }
        self.volume_options(&volume, item.span)?;
        Some(volume)
    }

    /// What the CLI refuses to combine (`convert/volume.go`).
    fn volume_options(&mut self, volume: &VolumeSpec, span: Span) -> Option<()> {
        let has = |key: &str| volume.options.contains_key(key);
        let conflict = match volume.kind.as_str() {
            "volume" if has("propagation") => {
                Some("bind options are incompatible with type volume")
            }
            "volume" if has("size") => Some("tmpfs options are incompatible with type volume"),
            "bind" if has("nocopy") => Some("volume options are incompatible with type bind"),
            "bind" if has("size") => Some("tmpfs options are incompatible with type bind"),
            "bind" if volume.source.is_empty() => Some("a bind mount needs a source"),
            "tmpfs" if !volume.source.is_empty() => Some("a tmpfs mount has no source"),
            "tmpfs" if has("propagation") => Some("bind options are incompatible with type tmpfs"),
            "tmpfs" if has("nocopy") => Some("volume options are incompatible with type tmpfs"),
            _ => None,
        };
        match conflict {
            Some(why) => {
                self.report.error(
                    span,
                    format!("`docker stack deploy` refuses this mount: {why}"),
                    "this mount",
                    None,
                );
                None
            }
            None => Some(()),
        }
    }

    /// A service's `secrets:` or `configs:`: the top-level key, and the file in the
    /// container the CLI names (the key when no target is given).
    fn references(
        &mut self,
        list: Option<&Item>,
        objects: &BTreeMap<String, ComposeObject>,
        what: &str,
        opaque: &mut BTreeMap<String, String>,
    ) -> Vec<ObjectRef> {
        let mut references: Vec<ObjectRef> = Vec::new();
        for item in list.map(Item::items).unwrap_or_default() {
            let source = match &item.value {
                Val::Str(source) => source.clone(),
                _ => item
                    .get("source")
                    .and_then(Item::str)
                    .unwrap_or_default()
                    .to_owned(),
            };
            if !objects.contains_key(&source) {
                let known: Vec<&str> = objects.keys().map(String::as_str).collect();
                self.report.error(
                    item.span,
                    format!("the {what} `{source}` is not declared under the top-level `{what}s:`"),
                    &format!("undefined {what}"),
                    Some(match known.is_empty() {
                        true => format!("declare it: `{what}s: {{{source}: {{file: PATH}}}}`"),
                        false => suggestion(&source, &known, &format!("{what}s")),
                    }),
                );
                continue;
            }
            let target = item
                .get("target")
                .and_then(Item::str)
                .filter(|t| !t.is_empty())
                .unwrap_or(&source)
                .to_owned();
            if references
                .iter()
                .any(|r| r.target.as_deref() == Some(target.as_str()))
            {
                self.report.error(
                    item.span,
                    format!("two {what}s would be the file `{target}`"),
                    "same target",
                    Some("give one of them another `target:`".into()),
                );
                continue;
            }
            // uid, gid and mode are filled in by the CLI (0, 0, 0444): only others are
            // worth showing.
            let uid = item
                .get("uid")
                .and_then(Item::str)
                .filter(|s| !s.is_empty())
                .unwrap_or("0");
            let gid = item
                .get("gid")
                .and_then(Item::str)
                .filter(|s| !s.is_empty())
                .unwrap_or("0");
            let mode = match item.get("mode") {
                None => Some(0o444),
                Some(mode) => mode.int().and_then(|m| u32::try_from(m).ok()),
            };
            let Some(mode) = mode else {
                let span = item.get("mode").map_or(item.span, |m| m.span);
                self.report.error(
                    span,
                    "a file mode is a whole number, such as 0440",
                    "not a mode",
                    None,
                );
                continue;
            };
            if (uid, gid, mode) != ("0", "0", 0o444) {
                let value = serde_json::json!({"uid": uid, "gid": gid, "mode": mode});
                opaque.insert(format!("{what}s.{source}"), value.to_string());
            }
            references.push(ObjectRef {
                source,
                target: Some(target),
            });
        }
        references.sort_by(|a, b| a.source.cmp(&b.source));
        references
    }

    fn deploy(
        &mut self,
        deploy: &Item,
        path: &str,
        spec: &mut SwarmServiceSpec,
        opaque: &mut BTreeMap<String, String>,
    ) {
        let mode = deploy.get("mode");
        spec.mode = match mode.and_then(Item::str).unwrap_or_default() {
            "" | "replicated" => Mode::Replicated,
            "global" => Mode::Global,
            other => {
                self.report.error(
                    mode.map_or(deploy.span, |m| m.span),
                    format!("`{other}` is not a mode `docker stack deploy` (20.10) knows"),
                    "unknown mode",
                    Some("write `replicated` (the default) or `global`".into()),
                );
                Mode::Replicated
            }
        };
        if let Some(replicas) = deploy.get("replicas") {
            if spec.mode == Mode::Global {
                self.report.error(
                    replicas.span,
                    "`replicas` is for replicated services: a global service runs one task on every eligible node",
                    "with `mode: global`",
                    Some("remove `replicas`, or the `mode: global`".into()),
                );
            }
            match replicas.int().map(u32::try_from) {
                Some(Ok(count)) => spec.replicas = Some(count),
                // Not an integer: the schema check said so.
                None => {}
                Some(Err(_)) => self.report.error(
                    replicas.span,
                    "`replicas` is a number of tasks, from 0",
                    "not a count",
                    None,
                ),
            }
        }
        if let Some(labels) = deploy.get("labels") {
            spec.labels = self.labels(labels, &format!("{path}.deploy.labels"));
        }
        if let Some(placement) = deploy.get("placement") {
            for constraint in placement
                .get("constraints")
                .map(Item::items)
                .unwrap_or_default()
            {
                let text = constraint.str().unwrap_or_default();
                if !crate::docker_values::valid_constraint(text) {
                    self.report.error(
                        constraint.span,
                        format!("`{text}` is not a placement constraint"),
                        "not a constraint",
                        Some("write `ATTRIBUTE==VALUE` or `ATTRIBUTE!=VALUE`, e.g. `node.labels.tier==front` or `node.role==manager`".into()),
                    );
                    continue;
                }
                spec.constraints.push(text.to_owned());
            }
            for preference in placement
                .get("preferences")
                .map(Item::items)
                .unwrap_or_default()
            {
                match preference
                    .get("spread")
                    .and_then(Item::str)
                    .filter(|s| !s.is_empty())
                {
                    Some(spread) => spec.placement_preferences.push(format!("spread={spread}")),
                    None => self.report.error(
                        preference.span,
                        "a placement preference needs `spread:`",
                        "no spread",
                        Some("write `spread: node.labels.KEY`".into()),
                    ),
                }
            }
            if let Some(max) = placement.get("max_replicas_per_node") {
                opaque.insert(
                    "deploy.placement.max_replicas_per_node".into(),
                    max.canonical(),
                );
            }
        }
        if let Some(update) = deploy.get("update_config") {
            spec.update = self.update_policy(update, opaque);
        }
        for key in OPAQUE_DEPLOY_KEYS {
            if let Some(value) = deploy.get(key) {
                opaque.insert(format!("deploy.{key}"), value.canonical());
            }
        }
    }

    /// Labels as the CLI reads them: `KEY=VALUE` or `KEY` (an empty value) in a list,
    /// numbers printed as Go prints them, null an empty value.
    fn labels(&mut self, labels: &Item, path: &str) -> BTreeMap<String, String> {
        let pairs: Vec<(String, String, Span)> = match &labels.value {
            Val::Map(entries) => entries
                .iter()
                .map(|e| {
                    (
                        e.key.clone(),
                        e.value.go_string().unwrap_or_default(),
                        e.key_span,
                    )
                })
                .collect(),
            _ => labels
                .items()
                .iter()
                .map(|i| {
                    let text = i.str().unwrap_or_default();
                    let (key, value) = text.split_once('=').unwrap_or((text, ""));
                    (key.to_owned(), value.to_owned(), i.span)
                })
                .collect(),
        };
        let mut out = BTreeMap::new();
        for (key, value, span) in pairs {
            if key.is_empty()
                || key.starts_with("io.corral.")
                || key.starts_with("com.docker.stack.")
            {
                self.report.error(
                    span,
                    format!("`{key}` cannot be a label of `{path}`"),
                    "reserved label",
                    Some(
                        "`com.docker.stack.*` labels are the CLI's, and `io.corral.*` corral's"
                            .into(),
                    ),
                );
                continue;
            }
            out.insert(key, value);
        }
        out
    }

    fn update_policy(
        &mut self,
        update: &Item,
        opaque: &mut BTreeMap<String, String>,
    ) -> UpdatePolicy {
        let mut policy = UpdatePolicy::default();
        if let Some(parallelism) = update.get("parallelism") {
            match parallelism.int().and_then(|p| u32::try_from(p).ok()) {
                Some(p) => policy.parallelism = Some(p),
                None => self.report.error(
                    parallelism.span,
                    "`parallelism` is a number of tasks, from 0",
                    "not a count",
                    None,
                ),
            }
        }
        let mut duration = |key: &str| -> Option<DockerDuration> {
            let item = update.get(key)?;
            let nanos = crate::duration::parse_go(item.str()?)?;
            if nanos < 0 {
                self.report.error(
                    item.span,
                    format!("`{key}` cannot be negative"),
                    "negative",
                    None,
                );
                return None;
            }
            // Zero is the default in Docker's eyes (a monitor of 0 is 5 s).
            (nanos > 0)
                .then(|| DockerDuration::parse(&format!("{nanos}ns")).ok())
                .flatten()
        };
        policy.delay = duration("delay");
        policy.monitor = duration("monitor");
        let action = update.get("failure_action");
        policy.failure_action = match action.and_then(Item::str).unwrap_or_default() {
            "" => None,
            "pause" => Some(FailureAction::Pause),
            "continue" => Some(FailureAction::Continue),
            "rollback" => Some(FailureAction::Rollback),
            other => {
                self.report.error(
                    action.map_or(update.span, |a| a.span),
                    format!("`{other}` is not a failure action"),
                    "unknown action",
                    Some("write `pause`, `continue` or `rollback`".into()),
                );
                None
            }
        };
        policy.order = match update.get("order").and_then(Item::str) {
            Some("start-first") => Some(UpdateOrder::StartFirst),
            Some("stop-first") => Some(UpdateOrder::StopFirst),
            _ => None,
        };
        if let Some(ratio) = update.get("max_failure_ratio") {
            opaque.insert(
                "deploy.update_config.max_failure_ratio".into(),
                ratio.canonical(),
            );
        }
        policy
    }
}

/// Service keys passed through as they are (see [`ComposeService::opaque`]).
const OPAQUE_SERVICE_KEYS: &[&str] = &[
    "cap_add",
    "cap_drop",
    "credential_spec",
    "dns",
    "dns_search",
    "entrypoint",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "init",
    "isolation",
    "labels",
    "logging",
    "read_only",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tty",
    "ulimits",
    "user",
    "working_dir",
];

const OPAQUE_DEPLOY_KEYS: &[&str] = &[
    "endpoint_mode",
    "resources",
    "restart_policy",
    "rollback_config",
];

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// One entry of a service's `volumes:`, short or long, before names are resolved.
#[derive(Debug, Default)]
struct VolumeSpec {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    /// What a mount has beyond kind, source, target and read-only (opaque).
    options: serde_json::Map<String, serde_json::Value>,
}

/// The top-level objects services refer to.
struct Definitions<'d> {
    networks: &'d BTreeMap<String, NamedObject>,
    volumes: &'d BTreeMap<String, NamedObject>,
    secrets: &'d BTreeMap<String, ComposeObject>,
    configs: &'d BTreeMap<String, ComposeObject>,
}

impl Definitions<'_> {
    fn network_name(&self, stack: &str, key: &str) -> String {
        match self.networks.get(key) {
            Some(network) => network.name.clone(),
            None => format!("{stack}_{key}"),
        }
    }
}

/// `external:` of a definition: whether it is external, and `external.name` if given.
fn external_of(definition: &Item) -> (bool, Option<String>) {
    match definition.get("external") {
        Some(Item {
            value: Val::Bool(external),
            ..
        }) => (*external, None),
        Some(
            external @ Item {
                value: Val::Map(_), ..
            },
        ) => (
            true,
            external.get("name").and_then(Item::str).map(str::to_owned),
        ),
        _ => (false, None),
    }
}

fn protocol_word(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A port from 1 to 65535, written in decimal digits (`strconv.ParseUint(_, 10, 16)`).
fn port_number(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

/// Compose's names of services, networks, volumes, secrets and configs: `^[a-zA-Z0-9._-]+$`.
fn valid_object_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// swarmkit's service names: `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`, at most 63 characters.
fn valid_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}
