//! The swarm's documents: `swarm/cluster` (members, labels, availability), user overlay
//! `swarm/network`s, `swarm/service`s deployed one by one, and the `swarm/config`s and
//! `swarm/secret`s they use; stacks are [`super::stack`]'s.
//!
//! Everything is read on one manager (the first of the inventory that answers as one),
//! from the same probes the plan reads, and written with the attributes the plan compares.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{
    comment_lines, document, flow_list, ok_output, scalar, Document, Found, ImportError, Written,
};
use crate::address::Address;
use crate::facts::swarm::{
    self, Availability, NodeRole, OverlayNetwork, ServiceMode, SwarmNode, SwarmService,
};
use crate::facts::HostFacts;
use crate::kinds::swarm_cluster::LABELS_MARKER;
use crate::kinds::swarm_service::{STACK_LABEL_PREFIX, STACK_NAMESPACE_LABEL};
use crate::kinds::MANAGED_LABEL;

/// The name the imported `swarm/cluster` gets.
pub const CLUSTER_NAME: &str = "main";

/// What a manager says of its swarm.
pub struct Swarm<'f> {
    pub manager: &'f str,
    pub nodes: Vec<SwarmNode>,
    pub networks: Vec<OverlayNetwork>,
    pub services: Vec<SwarmService>,
    pub objects: Vec<super::LiveObject>,
    /// `docker service inspect` as printed, for what the parsed services leave out.
    pub raw: String,
}

impl<'f> Swarm<'f> {
    /// The swarm as the first manager of the inventory sees it; `None` when no machine is
    /// in a swarm; an error when members were read but no manager answered.
    pub fn read(found: &'f Found) -> Result<Option<Swarm<'f>>, ImportError> {
        let members: Vec<&str> = found
            .machines
            .iter()
            .filter(|m| {
                found
                    .facts
                    .get(&m.name)
                    .and_then(info)
                    .is_some_and(|i| i.is_member())
            })
            .map(|m| m.name.as_str())
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        let manager = super::first_with(found, |f| {
            info(f).is_some_and(|i| i.control_available && i.error.is_empty())
                && ok_output(f, swarm::NODE_INSPECT_KEY).is_some()
                && ok_output(f, swarm::SERVICE_INSPECT_KEY).is_some()
                && ok_output(f, swarm::NETWORK_INSPECT_KEY).is_some()
                && ok_output(f, super::OBJECTS_KEY).is_some()
        });
        let Some((manager, facts)) = manager else {
            return Err(ImportError::NoManager {
                members: members.iter().map(|m| m.to_string()).collect(),
            });
        };
        let parse_error = |e: crate::facts::FactError| ImportError::fact_on(manager, e);
        let get = |key: &str| facts.get(key).map_err(parse_error);
        Ok(Some(Swarm {
            manager,
            nodes: swarm::parse_node_inspect(
                swarm::NODE_INSPECT_KEY,
                get(swarm::NODE_INSPECT_KEY)?,
            )
            .map_err(parse_error)?,
            networks: swarm::parse_network_inspect(
                swarm::NETWORK_INSPECT_KEY,
                get(swarm::NETWORK_INSPECT_KEY)?,
            )
            .map_err(parse_error)?,
            services: swarm::parse_service_inspect(
                swarm::SERVICE_INSPECT_KEY,
                get(swarm::SERVICE_INSPECT_KEY)?,
            )
            .map_err(parse_error)?,
            objects: super::parse_objects(super::OBJECTS_KEY, get(super::OBJECTS_KEY)?)
                .map_err(parse_error)?,
            raw: get(swarm::SERVICE_INSPECT_KEY)?.output.clone(),
        }))
    }

    /// Network names by ID.
    pub fn network_names(&self) -> BTreeMap<String, String> {
        self.networks
            .iter()
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect()
    }

    pub fn object(&self, class: &str, name: &str) -> Option<&super::LiveObject> {
        self.objects
            .iter()
            .find(|o| o.class == class && o.name == name)
    }
}

fn info(facts: &HostFacts) -> Option<swarm::SwarmInfo> {
    swarm::parse_info(swarm::INFO_KEY, ok_output(facts, swarm::INFO_KEY)?).ok()
}

/// Whose a Docker object is: ours to write, or another corral project's (reported).
fn foreign(labels: &BTreeMap<String, String>, project: &str) -> Option<String> {
    labels
        .get(MANAGED_LABEL)
        .filter(|p| p.as_str() != project)
        .cloned()
}

/// The swarm's files: `cluster.yaml`, `networks.yaml`, `services.yaml` (with the configs
/// and secrets they use) and `stacks.yaml`. With `targets`, only the services and stacks
/// named (`swarm/service.api`, `swarm/stack.web` or a bare name), and what they use when
/// the directory does not have it yet.
pub fn write(found: &Found, targets: &[String]) -> Result<Vec<(String, Written)>, ImportError> {
    let Some(live) = Swarm::read(found)? else {
        return Ok(Vec::new());
    };
    let wanted = |kind: &str, name: &str| {
        targets.is_empty()
            || targets
                .iter()
                .any(|t| t == name || *t == format!("{kind}.{name}"))
    };
    let mut cluster = cluster(found, &live);
    let mut services = Written::default();
    let mut used_networks = BTreeSet::new();
    let mut used_objects = BTreeSet::new();
    let names = live.network_names();
    let mut sorted: Vec<&SwarmService> = live.services.iter().collect();
    sorted.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let mut foreign_found = Vec::new();
    for service in &sorted {
        if service.spec.labels.contains_key(STACK_NAMESPACE_LABEL) {
            continue;
        }
        let name = &service.spec.name;
        if let Some(other) = foreign(&service.spec.labels, &found.project) {
            foreign_found.push(format!("service {name} (project {other})"));
            continue;
        }
        if !wanted(crate::kinds::swarm_service::KIND, name) {
            continue;
        }
        let mut body = Written::default();
        let text = service_document(
            service,
            &names,
            &live,
            &mut body,
            &mut used_networks,
            &mut used_objects,
        );
        body.documents.push(Document {
            address: Address::new(crate::kinds::swarm_service::KIND, name, None),
            text,
            dependency: false,
        });
        services = super::merge_written([services, body]);
    }
    let mut stacks =
        super::stack::write(found, &live, &wanted, &mut used_networks, &mut used_objects);
    for other in stacks.1.drain(..) {
        foreign_found.push(other);
    }
    let stacks = stacks.0;
    let mut networks = Written::default();
    for network in user_networks(&live) {
        if let Some(other) = foreign(&network.labels, &found.project) {
            foreign_found.push(format!("network {} (project {other})", network.name));
            continue;
        }
        if !targets.is_empty() && !used_networks.contains(&network.name) {
            continue;
        }
        let text = network_document(network, &mut networks);
        networks.documents.push(Document {
            address: Address::new(crate::kinds::swarm_network::KIND, &network.name, None),
            text,
            dependency: !targets.is_empty(),
        });
    }
    objects(
        found,
        &live,
        &used_objects,
        &mut services,
        !targets.is_empty(),
        &mut foreign_found,
    );
    if !foreign_found.is_empty() {
        cluster.notes.push(super::Note {
            at: format!("swarm/cluster.{CLUSTER_NAME}"),
            text: format!(
                "objects of another corral project, left to it: {}",
                foreign_found.join(", ")
            ),
        });
    }
    if !targets.is_empty() {
        for document in &mut cluster.documents {
            document.dependency = true;
        }
    }
    Ok(vec![
        ("cluster.yaml".to_owned(), cluster),
        ("networks.yaml".to_owned(), networks),
        ("services.yaml".to_owned(), services),
        ("stacks.yaml".to_owned(), stacks),
    ])
}

/// The `swarm/cluster`: managers (the leader first: it would initialise a new swarm),
/// workers, labels and availability other than active, by machine.
fn cluster(found: &Found, live: &Swarm) -> Written {
    let mut written = Written::default();
    let address = format!("swarm/cluster.{CLUSTER_NAME}");
    let mut by_machine: Vec<(&str, &SwarmNode)> = Vec::new();
    let mut spec = String::new();
    for node in &live.nodes {
        let machine = found
            .machines
            .iter()
            .find(|m| m.ip.to_string() == node.addr())
            .or_else(|| found.machine_named(node.hostname()));
        match machine {
            Some(m) => by_machine.push((m.name.as_str(), node)),
            None => {
                spec.push_str(&written.note(
                    &address,
                    format!(
                        "node {} ({}) is in the swarm but not in the inventory: add a machine for it, or the plan refuses to go on",
                        node.hostname(),
                        node.addr()
                    ),
                ));
            }
        }
    }
    let order = |name: &str| found.machines.iter().position(|m| m.name == name);
    by_machine.sort_by_key(|(m, node)| (!node.is_leader(), order(m)));
    let role = |r: NodeRole| {
        by_machine
            .iter()
            .filter(|(_, n)| n.spec.role == r)
            .map(|(m, _)| m.to_string())
            .collect::<Vec<_>>()
    };
    let (managers, mut workers) = (role(NodeRole::Manager), role(NodeRole::Worker));
    workers.sort_by_key(|m| order(m));
    let _ = writeln!(spec, "  managers: {}", flow_list(&managers));
    if !workers.is_empty() {
        let _ = writeln!(spec, "  workers: {}", flow_list(&workers));
    }
    if managers.len() % 2 == 0 {
        spec.push_str("  allow_even_managers: true\n");
    }
    let mut in_order = by_machine.clone();
    in_order.sort_by_key(|(m, _)| order(m));
    let labelled: Vec<&(&str, &SwarmNode)> = in_order
        .iter()
        .filter(|(_, n)| n.spec.labels.keys().any(|k| k != LABELS_MARKER))
        .collect();
    if !labelled.is_empty() {
        spec.push_str("  labels:\n");
        for (machine, node) in labelled {
            let pairs: Vec<String> = node
                .spec
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != LABELS_MARKER)
                .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
                .collect();
            let _ = writeln!(spec, "    {machine}: {{{}}}", pairs.join(", "));
        }
    }
    let unavailable: Vec<String> = in_order
        .iter()
        .filter_map(|(machine, node)| {
            let word = match node.spec.availability {
                Availability::Active => return None,
                Availability::Pause => "pause",
                Availability::Drain => "drain",
            };
            Some(format!("    {machine}: {word}\n"))
        })
        .collect();
    if !unavailable.is_empty() {
        spec.push_str("  availability:\n");
        spec.push_str(&unavailable.concat());
    }
    let before = comment_lines(
        &format!(
            "Read on {}; the swarm keeps running as it is.",
            live.manager
        ),
        "",
    );
    written.documents.push(Document {
        address: Address::new(crate::kinds::swarm_cluster::KIND, CLUSTER_NAME, None),
        text: document(
            crate::kinds::swarm_cluster::KIND,
            CLUSTER_NAME,
            &before,
            &spec,
        ),
        dependency: false,
    });
    written
}

/// The overlays a person made: not `ingress`, not a stack's own (the stack makes them).
pub fn user_networks<'s>(live: &'s Swarm) -> Vec<&'s OverlayNetwork> {
    let mut networks: Vec<&OverlayNetwork> = live
        .networks
        .iter()
        .filter(|n| n.driver == "overlay" && n.scope == "swarm" && !n.ingress)
        .filter(|n| !n.labels.contains_key(STACK_NAMESPACE_LABEL))
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    networks.dedup_by(|a, b| a.name == b.name);
    networks
}

/// A `swarm/network`.
fn network_document(network: &OverlayNetwork, written: &mut Written) -> String {
    let address = format!("swarm/network.{}", network.name);
    let mut spec = String::new();
    let subnets: Vec<&str> = network
        .ipam
        .config
        .iter()
        .map(|c| c.subnet.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(first) = subnets.first() {
        let _ = writeln!(spec, "  subnet: {}", scalar(first));
    }
    if subnets.len() > 1 {
        spec.push_str(&written.note(
            &address,
            format!("more subnets than one ({})", subnets.join(", ")),
        ));
    }
    for c in &network.ipam.config {
        if !c.ip_range.is_empty() {
            spec.push_str(&written.note(&address, format!("IP range {}", c.ip_range)));
        }
    }
    if network.enable_ipv6 {
        spec.push_str(&written.note(&address, "IPv6"));
    }
    for (on, key) in [
        (network.encrypted(), "encrypted"),
        (network.attachable, "attachable"),
        (network.internal, "internal"),
    ] {
        if on {
            let _ = writeln!(spec, "  {key}: true");
        }
    }
    let others: Vec<String> = network
        .declared_options()
        .into_iter()
        .filter(|(k, _)| *k != "encrypted")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !others.is_empty() {
        spec.push_str(&written.note(&address, format!("driver options {}", others.join(", "))));
    }
    labels_block(&network.labels, "  ", &mut spec);
    document(crate::kinds::swarm_network::KIND, &network.name, "", &spec)
}

/// `labels:` without the tools' own.
fn labels_block(labels: &BTreeMap<String, String>, indent: &str, out: &mut String) {
    let own: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != MANAGED_LABEL && !k.starts_with(STACK_LABEL_PREFIX))
        .collect();
    if own.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}labels:");
    for (key, value) in own {
        let _ = writeln!(out, "{indent}  {}: {}", scalar(key), scalar(value));
    }
}

/// The image as a person names it: the digest Docker pinned at creation left out (the
/// plan does not compare it unless one is written).
pub fn image_name(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

/// A Go duration as Docker's CLI takes it (`10s`, `1m30s`, `500ms`).
pub fn duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        let s = d.as_secs();
        match (s / 3600, s % 3600 / 60, s % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, 0) => format!("{m}m"),
            (0, m, s) => format!("{m}m{s}s"),
            (h, m, s) => format!("{h}h{m}m{s}s"),
        }
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A `swarm/service` deployed by hand.
fn service_document(
    service: &SwarmService,
    network_names: &BTreeMap<String, String>,
    live: &Swarm,
    written: &mut Written,
    used_networks: &mut BTreeSet<String>,
    used_objects: &mut BTreeSet<(String, String)>,
) -> String {
    let spec = &service.spec;
    let name = &spec.name;
    let address = format!("swarm/service.{name}");
    let container = &spec.task_template.container_spec;
    let mut out = String::new();
    let note = |written: &mut Written, out: &mut String, text: String| {
        out.push_str(&written.note(&address, text));
    };
    let _ = writeln!(out, "  image: {}", scalar(image_name(&container.image)));
    if let Some(raw) = raw_specs(live).get(name) {
        for setting in unmodelled(raw) {
            note(written, &mut out, setting);
        }
    }
    if !container.command.is_empty() {
        note(
            written,
            &mut out,
            format!("entrypoint {}", flow_list(&container.command)),
        );
    }
    if !container.args.is_empty() {
        let _ = writeln!(out, "  command: {}", flow_list(&container.args));
    }
    match &spec.mode {
        ServiceMode::Replicated { replicas } => {
            if *replicas != 1 {
                let _ = writeln!(out, "  replicas: {replicas}");
            }
        }
        ServiceMode::Global {} => out.push_str("  mode: global\n"),
        ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob {} => {
            note(
                written,
                &mut out,
                "a job service (corral runs services only)".into(),
            );
        }
    }
    let placement = &spec.task_template.placement;
    if !placement.constraints.is_empty() {
        let _ = writeln!(out, "  constraints: {}", flow_list(&placement.constraints));
    }
    let spreads: Vec<String> = placement
        .spreads()
        .into_iter()
        .map(|s| format!("spread={s}"))
        .collect();
    if !spreads.is_empty() {
        let _ = writeln!(out, "  placement_preferences: {}", flow_list(&spreads));
    }
    let ports = spec.ports();
    if !ports.is_empty() {
        out.push_str("  ports:\n");
        for port in ports {
            if port.published_port == 0 {
                note(
                    written,
                    &mut out,
                    format!("port {} not published", port.target_port),
                );
                continue;
            }
            let _ = write!(
                out,
                "    - {{published: {}, target: {}",
                port.published_port, port.target_port
            );
            if port.publish_mode == "host" {
                out.push_str(", mode: host");
            }
            if port.protocol == "udp" {
                out.push_str(", protocol: udp");
            } else if !port.protocol.is_empty() && port.protocol != "tcp" {
                note(written, &mut out, format!("protocol {}", port.protocol));
            }
            out.push_str("}\n");
        }
    }
    let env = container.env_map();
    if !env.is_empty() {
        out.push_str("  env:\n");
        for (key, value) in env {
            let _ = writeln!(out, "    {}: {}", scalar(key), scalar(value));
        }
    }
    if !container.mounts.is_empty() {
        out.push_str("  mounts:\n");
        for mount in &container.mounts {
            if mount.kind != "bind" && mount.kind != "volume" {
                note(
                    written,
                    &mut out,
                    format!("{} mount at {}", mount.kind, mount.target),
                );
                continue;
            }
            let _ = write!(
                out,
                "    - {{type: {}, source: {}, target: {}",
                mount.kind,
                scalar(&mount.source),
                scalar(&mount.target)
            );
            if mount.read_only {
                out.push_str(", readonly: true");
            }
            out.push_str("}\n");
        }
    }
    let networks = spec.network_names(network_names);
    if !networks.is_empty() {
        used_networks.extend(networks.iter().cloned());
        let _ = writeln!(out, "  networks: {}", flow_list(&networks));
    }
    for (class, refs) in [
        (
            "secret",
            container
                .secrets
                .iter()
                .map(|r| (&r.secret_name, &r.file))
                .collect::<Vec<_>>(),
        ),
        (
            "config",
            container
                .configs
                .iter()
                .map(|r| (&r.config_name, &r.file))
                .collect::<Vec<_>>(),
        ),
    ] {
        if refs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {class}s:");
        for (source, file) in refs {
            used_objects.insert((class.to_owned(), source.clone()));
            let default = match class {
                "secret" => source.clone(),
                _ => format!("/{source}"),
            };
            let target = file.as_ref().map_or(default.clone(), |f| f.name.clone());
            let _ = write!(out, "    - {{source: {}", scalar(source));
            if target != default {
                let _ = write!(out, ", target: {}", scalar(&target));
            }
            out.push_str("}\n");
            if let Some(file) = file {
                if file.mode != 0o444 || file.uid != "0" || file.gid != "0" {
                    note(
                        written,
                        &mut out,
                        format!(
                            "{class} {source}: file mode {:o}, owner {}:{}",
                            file.mode, file.uid, file.gid
                        ),
                    );
                }
            }
            if live.object(class, source).is_none() {
                note(
                    written,
                    &mut out,
                    format!("{class} {source} is not on the swarm"),
                );
            }
        }
    }
    update_block(
        spec.update_config.as_ref(),
        "  ",
        "update",
        &mut out,
        |k, v| format!("{k}: {v}"),
    );
    labels_block(&spec.labels, "  ", &mut out);
    document(crate::kinds::swarm_service::KIND, name, "", &out)
}

/// The update policy fields that differ from swarmkit's defaults (parallelism 1, no delay,
/// stop-first, pause, monitor 5 s), under `heading`.
pub fn update_block(
    config: Option<&swarm::UpdateConfig>,
    indent: &str,
    heading: &str,
    out: &mut String,
    field: impl Fn(&str, String) -> String,
) {
    let Some(config) = config else {
        return;
    };
    let mut fields = Vec::new();
    if config.parallelism != 1 {
        fields.push(field("parallelism", config.parallelism.to_string()));
    }
    if !config.delay.is_zero() {
        fields.push(field("delay", duration(config.delay)));
    }
    if !config.order.is_empty() && config.order != "stop-first" {
        fields.push(field("order", config.order.clone()));
    }
    if !config.failure_action.is_empty() && config.failure_action != "pause" {
        fields.push(field("failure_action", config.failure_action.clone()));
    }
    if !config.monitor.is_zero() && config.monitor != std::time::Duration::from_secs(5) {
        fields.push(field("monitor", duration(config.monitor)));
    }
    if fields.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{heading}:");
    for f in fields {
        let _ = writeln!(out, "{indent}  {f}");
    }
}

/// The environment variable an imported secret's value is read from.
pub fn secret_variable(name: &str) -> String {
    let mut variable: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_uppercase(),
            false => '_',
        })
        .collect();
    variable.insert_str(0, "SECRET_");
    variable
}

/// The `swarm/config`s (data into `configs/NAME`) and `swarm/secret`s (`from_env:`) the
/// services use, or every one made by hand when nothing was targeted.
fn objects(
    found: &Found,
    live: &Swarm,
    used: &BTreeSet<(String, String)>,
    written: &mut Written,
    dependency: bool,
    foreign_found: &mut Vec<String>,
) {
    let mut objects: Vec<&super::LiveObject> = live.objects.iter().collect();
    objects.sort_by(|a, b| (&a.class, &a.name).cmp(&(&b.class, &b.name)));
    for object in objects {
        let key = (object.class.clone(), object.name.clone());
        if !used.contains(&key) {
            // Corral's own versions, a stack's objects and the unused: only what a service
            // deployed one by one uses is written.
            continue;
        }
        if object.labels.contains_key(STACK_NAMESPACE_LABEL) {
            continue;
        }
        if let Some(other) = foreign(&object.labels, &found.project) {
            foreign_found.push(format!(
                "{} {} (project {other})",
                object.class, object.name
            ));
            continue;
        }
        let name = &object.name;
        let (kind, spec, before) = match object.class.as_str() {
            "config" => {
                let relative = format!("configs/{name}");
                written
                    .files
                    .push((relative.clone().into(), object.bytes().unwrap_or_default()));
                (
                    crate::kinds::swarm_secret::CONFIG_KIND,
                    format!("  source: {}\n", scalar(&relative)),
                    String::new(),
                )
            }
            _ => {
                let variable = secret_variable(name);
                written
                    .fill_in
                    .push((variable.clone(), format!("the value of secret {name}")));
                (
                    crate::kinds::swarm_secret::KIND,
                    format!("  from_env: {variable}\n"),
                    comment_lines(
                        &format!("Docker never shows a secret's value: set {variable} to it. Adopting it creates a corral version of it\nand rolls the services that use it once (see docs/src/import.md)."),
                        "",
                    ),
                )
            }
        };
        written.documents.push(Document {
            address: Address::new(kind, name, None),
            text: document(kind, name, &before, &spec),
            dependency,
        });
    }
}

/// The settings of a service's inspected `Spec` that corral does not model and that are
/// not Docker's defaults, as `Path = value` (values shortened): what the import notes.
pub fn unmodelled(spec: &serde_json::Value) -> Vec<String> {
    use serde_json::{json, Value};
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(|v| v.is_null() || v == &json!({})),
        Value::Number(n) => n.as_f64() == Some(0.0),
    };
    let shown = |v: &Value| {
        let text = v.to_string();
        match text.chars().count() > 80 {
            true => format!("{}…", text.chars().take(80).collect::<String>()),
            false => text,
        }
    };
    let mut found = Vec::new();
    let check = |path: &str, value: &Value, known: &[&str], defaults: &[(&str, Value)]| {
        let mut found = Vec::new();
        let Some(object) = value.as_object() else {
            return found;
        };
        for (key, value) in object {
            if known.contains(&key.as_str()) || empty(value) {
                continue;
            }
            if defaults.iter().any(|(k, d)| k == key && d == value) {
                continue;
            }
            found.push(format!("{path}{key} = {}", shown(value)));
        }
        found
    };
    let template = &spec["TaskTemplate"];
    let container = &template["ContainerSpec"];
    // The stack's own label on the containers is the CLI's.
    let mut container = container.clone();
    if let Some(labels) = container["Labels"].as_object_mut() {
        labels.retain(|k, _| !k.starts_with(STACK_LABEL_PREFIX));
    }
    found.extend(check(
        "ContainerSpec.",
        &container,
        &[
            "Image", "Args", "Env", "Mounts", "Secrets", "Configs", "Command",
        ],
        &[
            ("StopGracePeriod", json!(10_000_000_000u64)),
            ("Isolation", json!("default")),
        ],
    ));
    found.extend(check(
        "TaskTemplate.",
        template,
        &[
            "ContainerSpec",
            "Placement",
            "Networks",
            "ForceUpdate",
            "RestartPolicy",
        ],
        &[("Runtime", json!("container"))],
    ));
    let restart = &template["RestartPolicy"];
    let default_restart = json!({"Condition": "any", "Delay": 5_000_000_000u64, "MaxAttempts": 0});
    if !restart.is_null() && restart != &default_restart {
        found.push(format!("TaskTemplate.RestartPolicy = {}", shown(restart)));
    }
    found.extend(check(
        "TaskTemplate.Placement.",
        &template["Placement"],
        &["Constraints", "Preferences", "Platforms"],
        &[],
    ));
    let default_rollback = json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000u64, "MaxFailureRatio": 0, "Order": "stop-first"});
    if !spec["RollbackConfig"].is_null() && spec["RollbackConfig"] != default_rollback {
        found.push(format!(
            "RollbackConfig = {}",
            shown(&spec["RollbackConfig"])
        ));
    }
    if spec["UpdateConfig"]["MaxFailureRatio"]
        .as_f64()
        .unwrap_or(0.0)
        != 0.0
    {
        found.push(format!(
            "UpdateConfig.MaxFailureRatio = {}",
            spec["UpdateConfig"]["MaxFailureRatio"]
        ));
    }
    if let Some(mode) = spec["EndpointSpec"]["Mode"]
        .as_str()
        .filter(|m| *m != "vip")
    {
        found.push(format!("EndpointSpec.Mode = {mode}"));
    }
    found
}

/// Each service's inspected `Spec` as JSON, by name, from the manager's output.
pub fn raw_specs(live: &Swarm) -> BTreeMap<String, serde_json::Value> {
    live.raw
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let spec = v.get("Spec")?.clone();
            Some((spec.get("Name")?.as_str()?.to_owned(), spec))
        })
        .collect()
}
