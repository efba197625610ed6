//! `swarm/stack`s: the services `docker stack deploy` made (their
//! `com.docker.stack.namespace` label), each stack written as a Compose file that
//! reproduces what runs, with its own configs' data next to it.
//!
//! The stack's own secrets cannot be read back: the file names them as external objects,
//! so the services keep them as they are (see docs/src/import.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::swarm::{image_name, update_block, Swarm};
use super::{comment_lines, document, scalar, Document, Found, Written};
use crate::address::Address;
use crate::facts::swarm::{ServiceMode, SwarmService};
use crate::kinds::compose::STACK_IMAGE_LABEL;
use crate::kinds::swarm_service::{STACK_LABEL_PREFIX, STACK_NAMESPACE_LABEL};
use crate::kinds::MANAGED_LABEL;

/// A string for a Compose file: `$` doubled (the file's values are interpolated).
fn cscalar(text: &str) -> String {
    scalar(&text.replace('$', "$$"))
}

fn clist(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| cscalar(i)).collect();
    format!("[{}]", items.join(", "))
}

/// The stacks' documents (`stacks.yaml`) and Compose files, and the objects of other
/// projects found.
pub fn write(
    found: &Found,
    live: &Swarm,
    wanted: &dyn Fn(&str, &str) -> bool,
    used_networks: &mut BTreeSet<String>,
    _used_objects: &mut BTreeSet<(String, String)>,
) -> (Written, Vec<String>) {
    let mut stacks: BTreeMap<&str, Vec<&SwarmService>> = BTreeMap::new();
    for service in &live.services {
        if let Some(stack) = service.spec.labels.get(STACK_NAMESPACE_LABEL) {
            stacks.entry(stack.as_str()).or_default().push(service);
        }
    }
    let mut written = Written::default();
    let mut foreign = Vec::new();
    for (stack, mut services) in stacks {
        let others: Vec<&str> = services
            .iter()
            .filter_map(|s| s.spec.labels.get(MANAGED_LABEL))
            .filter(|p| p.as_str() != found.project)
            .map(String::as_str)
            .collect();
        if let Some(other) = others.first() {
            foreign.push(format!("stack {stack} (project {other})"));
            continue;
        }
        if !wanted(crate::kinds::swarm_stack::KIND, stack) {
            continue;
        }
        services.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        let address = format!("swarm/stack.{stack}");
        let mut notes = String::new();
        let compose = compose_file(
            stack,
            &services,
            live,
            &address,
            &mut written,
            &mut notes,
            used_networks,
        );
        let relative = format!("stacks/{stack}/compose.yaml");
        written
            .files
            .push((relative.clone().into(), compose.into_bytes()));
        let spec = format!("{notes}  compose: {}\n", scalar(&relative));
        written.documents.push(Document {
            address: Address::new(crate::kinds::swarm_stack::KIND, stack, None),
            text: document(crate::kinds::swarm_stack::KIND, stack, "", &spec),
            dependency: false,
        });
    }
    (written, foreign)
}

/// The Compose file of `stack`: its services as the CLI made them, its own networks and
/// configs, the rest external.
fn compose_file(
    stack: &str,
    services: &[&SwarmService],
    live: &Swarm,
    address: &str,
    written: &mut Written,
    notes: &mut String,
    used_networks: &mut BTreeSet<String>,
) -> String {
    let prefix = format!("{stack}_");
    let names = live.network_names();
    let raw_specs = super::swarm::raw_specs(live);
    let own_network = |name: &str| -> Option<String> {
        let network = live.networks.iter().find(|n| n.name == name)?;
        (network
            .labels
            .get(STACK_NAMESPACE_LABEL)
            .map(String::as_str)
            == Some(stack))
        .then(|| name.strip_prefix(&prefix).unwrap_or(name).to_owned())
    };
    let mut networks: BTreeMap<String, bool> = BTreeMap::new(); // key → external
    let mut configs: BTreeMap<String, String> = BTreeMap::new(); // key → top-level text
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    let mut volumes: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::from("version: \"3.8\"\nservices:\n");
    for service in services {
        let spec = &service.spec;
        let short = spec.name.strip_prefix(&prefix).unwrap_or(&spec.name);
        let container = &spec.task_template.container_spec;
        let _ = writeln!(out, "  {}:", scalar(short));
        let image = spec
            .labels
            .get(STACK_IMAGE_LABEL)
            .map_or_else(|| image_name(&container.image).to_owned(), Clone::clone);
        let _ = writeln!(out, "    image: {}", cscalar(&image));
        if let Some(raw) = raw_specs.get(&spec.name) {
            for setting in super::swarm::unmodelled(raw) {
                notes.push_str(&written.note(address, format!("{short}: {setting}")));
            }
        }
        if !container.command.is_empty() {
            notes.push_str(&written.note(
                address,
                format!("{short}: entrypoint {}", clist(&container.command)),
            ));
        }
        if !container.args.is_empty() {
            let _ = writeln!(out, "    command: {}", clist(&container.args));
        }
        let env = container.env_map();
        if !env.is_empty() {
            out.push_str("    environment:\n");
            for (key, value) in env {
                let _ = writeln!(out, "      {}: {}", scalar(key), cscalar(value));
            }
        }
        let ports = spec.ports();
        if !ports.is_empty() {
            out.push_str("    ports:\n");
            for port in ports {
                let protocol = if port.protocol.is_empty() {
                    "tcp"
                } else {
                    &port.protocol
                };
                let mode = if port.publish_mode.is_empty() {
                    "ingress"
                } else {
                    &port.publish_mode
                };
                let _ = write!(out, "      - {{target: {}, ", port.target_port);
                if port.published_port != 0 {
                    let _ = write!(out, "published: {}, ", port.published_port);
                }
                let _ = writeln!(out, "protocol: {protocol}, mode: {mode}}}");
            }
        }
        if !container.mounts.is_empty() {
            out.push_str("    volumes:\n");
            for mount in &container.mounts {
                let _ = write!(out, "      - {{type: {}, ", scalar(&mount.kind));
                // A named volume is declared at the top level: the stack's own by its key
                // (`docker stack deploy` prefixed it with the stack's name), any other as
                // external, so that the deploy keeps its name. An anonymous one has none.
                let source = match (mount.kind.as_str(), mount.source.as_str()) {
                    (_, "") => None,
                    ("volume", source) => Some(match source.strip_prefix(&prefix) {
                        Some(key) if !key.is_empty() => {
                            volumes.insert(key.to_owned(), "{}".to_owned());
                            key.to_owned()
                        }
                        _ => {
                            volumes.insert(
                                source.to_owned(),
                                format!("{{external: true, name: {}}}", cscalar(source)),
                            );
                            source.to_owned()
                        }
                    }),
                    (_, source) => Some(source.to_owned()),
                };
                if let Some(source) = source {
                    let _ = write!(out, "source: {}, ", cscalar(&source));
                }
                let _ = write!(out, "target: {}", cscalar(&mount.target));
                if mount.read_only {
                    out.push_str(", read_only: true");
                }
                out.push_str("}\n");
            }
        }
        let attached = spec.network_names(&names);
        let only_default = attached.len() == 1 && attached[0] == format!("{prefix}default");
        if !only_default && !attached.is_empty() {
            let mut keys = Vec::new();
            for name in &attached {
                match own_network(name) {
                    Some(key) => {
                        networks.entry(key.clone()).or_insert(false);
                        keys.push(key);
                    }
                    None => {
                        used_networks.insert(name.clone());
                        networks.insert(name.clone(), true);
                        keys.push(name.clone());
                    }
                }
            }
            let _ = writeln!(out, "    networks: {}", clist(&keys));
        }
        for (class, refs, top) in [
            (
                "config",
                container
                    .configs
                    .iter()
                    .map(|r| (&r.config_name, &r.file))
                    .collect::<Vec<_>>(),
                &mut configs,
            ),
            (
                "secret",
                container
                    .secrets
                    .iter()
                    .map(|r| (&r.secret_name, &r.file))
                    .collect::<Vec<_>>(),
                &mut secrets,
            ),
        ] {
            if refs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "    {class}s:");
            for (name, file) in refs {
                let object = live.object(class, name);
                let own = object.is_some_and(|o| {
                    o.labels.get(STACK_NAMESPACE_LABEL).map(String::as_str) == Some(stack)
                }) && name.starts_with(&prefix);
                let key = match own {
                    true => name[prefix.len()..].to_owned(),
                    false => name.clone(),
                };
                let target = file
                    .as_ref()
                    .map_or_else(|| key.clone(), |f| f.name.clone());
                let _ = writeln!(
                    out,
                    "      - {{source: {}, target: {}}}",
                    scalar(&key),
                    cscalar(&target)
                );
                let entry = match (own, class, object) {
                    (true, "config", Some(object)) => {
                        let relative = format!("stacks/{stack}/{key}");
                        written
                            .files
                            .push((relative.into(), object.bytes().unwrap_or_default()));
                        format!("{{file: ./{key}}}")
                    }
                    (true, _, _) => {
                        notes.push_str(&written.note(
                            address,
                            format!("secret {name}: its value cannot be read back; the Compose file names it as external, and the services keep it"),
                        ));
                        format!("{{external: true, name: {}}}", cscalar(name))
                    }
                    (false, _, _) => format!("{{external: true, name: {}}}", cscalar(name)),
                };
                top.insert(key, entry);
            }
        }
        let mut deploy = String::new();
        match &spec.mode {
            ServiceMode::Replicated { replicas } => {
                if *replicas != 1 {
                    let _ = writeln!(deploy, "      replicas: {replicas}");
                }
            }
            ServiceMode::Global {} => deploy.push_str("      mode: global\n"),
            _ => {
                notes.push_str(&written.note(address, format!("{short}: a job service")));
            }
        }
        let placement = &spec.task_template.placement;
        let spreads = placement.spreads();
        if !placement.constraints.is_empty() || !spreads.is_empty() {
            deploy.push_str("      placement:\n");
            if !placement.constraints.is_empty() {
                let _ = writeln!(
                    deploy,
                    "        constraints: {}",
                    clist(&placement.constraints)
                );
            }
            if !spreads.is_empty() {
                deploy.push_str("        preferences:\n");
                for s in spreads {
                    let _ = writeln!(deploy, "          - spread: {}", cscalar(s));
                }
            }
        }
        update_block(
            spec.update_config.as_ref(),
            "      ",
            "update_config",
            &mut deploy,
            |k, v| format!("{k}: {}", cscalar(&v)),
        );
        let labels: Vec<(&String, &String)> = spec
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != MANAGED_LABEL && !k.starts_with(STACK_LABEL_PREFIX))
            .filter(|(k, _)| k.as_str() != crate::kinds::swarm_stack::OPAQUE_LABEL)
            .collect();
        if !labels.is_empty() {
            deploy.push_str("      labels:\n");
            for (k, v) in labels {
                let _ = writeln!(deploy, "        {}: {}", scalar(k), cscalar(v));
            }
        }
        if !deploy.is_empty() {
            out.push_str("    deploy:\n");
            out.push_str(&deploy);
        }
    }
    for (heading, entries) in [
        (
            "networks",
            networks
                .into_iter()
                .map(|(key, external)| {
                    let text = match external {
                        true => format!("{{external: true, name: {}}}", cscalar(&key)),
                        false => "{}".to_owned(),
                    };
                    (key, text)
                })
                .collect::<BTreeMap<_, _>>(),
        ),
        ("volumes", volumes),
        ("configs", configs),
        ("secrets", secrets),
    ] {
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{heading}:");
        for (key, text) in entries {
            let _ = writeln!(out, "  {}: {text}", scalar(&key));
        }
    }
    let mut file = comment_lines(
        &format!("Stack {stack} as `docker stack deploy` made it; written by `corral import`."),
        "",
    );
    file.push_str(&out);
    file
}
