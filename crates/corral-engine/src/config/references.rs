//! Checks that need every document at once: what each resource names elsewhere in the
//! configuration (its swarm, networks, volumes: [`link`]), machine names in selectors, and
//! `depends_on` targets, with the cycles and dangling references they can form.

use super::*;

/// Lets every resource resolve what it names elsewhere in the configuration (its swarm,
/// networks, volumes), from a snapshot of the whole, and keeps the edges that gives.
pub(super) fn link(
    config: &mut Config,
    broken: std::collections::BTreeSet<Address>,
    expansions: &Expansions,
    errors: &mut ConfigErrors,
) {
    let mut links = kinds::Links {
        project: config.project.clone(),
        broken,
        machines: config
            .machines
            .iter()
            .map(|(name, m)| (name.clone(), m.spec.labels.clone()))
            .collect(),
        machine_ips: config
            .machines
            .iter()
            .map(|(name, m)| (name.clone(), m.spec.ip))
            .collect(),
        ..kinds::Links::default()
    };
    kinds::declare_all(config, &mut links);
    for resource in &mut config.resources {
        let spec = resource.node.get("specification").unwrap_or(&resource.node);
        let mut ctx = kinds::LinkContext {
            name: resource.address.name.clone(),
            file: resource.origin.file.clone(),
            spec,
            errors,
        };
        let before = ctx.errors.errors.len();
        let implied = resource.spec.link(&links, &mut ctx);
        resource.implied = implied;
        if let Some(instance) = expansions.instance_of(&resource.address) {
            instance.annotate(&mut errors.errors[before..]);
        }
    }
}

/// Checks that need every document: machine names in selectors and `depends_on` targets.
pub(super) fn check_references(
    config: &Config,
    expansions: &Expansions,
    errors: &mut ConfigErrors,
) {
    let references = References {
        config,
        machine_names: config.machines.keys().map(String::as_str).collect(),
        addresses: config
            .resources
            .iter()
            .map(|r| r.address.to_string())
            .collect(),
        by_address: config.resources.iter().map(|r| (&r.address, r)).collect(),
    };
    let machine_names = &references.machine_names;
    let failed = |target: &Address| {
        expansions.failed.iter().any(|instance| {
            target
                .name
                .strip_prefix(instance.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    for resource in &config.resources {
        let first_error = errors.errors.len();
        let spec_node = resource.node.get("specification");
        if let Some(Selector::Names(names)) = resource.spec.selector() {
            for name in names {
                if config.machines.contains_key(name) {
                    continue;
                }
                let span = spec_node
                    .and_then(|s| s.get("machines"))
                    .and_then(|m| match &m.value {
                        Value::Seq(items) => items.iter().find(|i| i.as_str() == Some(name)),
                        _ => None,
                    })
                    .map_or(resource.origin.span, |n| n.span);
                let help = unknown_machine_help(name, machine_names);
                errors.push(
                    ConfigError::at(
                        &Origin {
                            file: resource.origin.file.clone(),
                            span,
                        },
                        format!("{} selects unknown machine `{name}`", resource.address),
                        "no such machine",
                    )
                    .with_help(help),
                );
            }
        }
        if let kinds::Placement::Cluster(kind) = resource.spec.placement() {
            for (field, name) in kind.machine_references() {
                if config.machines.contains_key(&name) {
                    continue;
                }
                // A dotted field is a path (`mount.machines`).
                let span = spec_node
                    .and_then(|s| field.split('.').try_fold(s, |node, key| node.get(key)))
                    .and_then(|f| match &f.value {
                        // `[n1, n2]`, or maps naming a machine (`bricks: [{machine: n1, …}]`).
                        Value::Seq(items) => items.iter().find_map(|i| {
                            let named = i.get("machine").unwrap_or(i);
                            (named.as_str() == Some(name.as_str())).then_some(named)
                        }),
                        _ => f.get(&name),
                    })
                    .map_or(resource.origin.span, |n| n.span);
                errors.push(
                    ConfigError::at(
                        &Origin {
                            file: resource.origin.file.clone(),
                            span,
                        },
                        format!(
                            "{} names unknown machine `{name}` in `{field}`",
                            resource.address
                        ),
                        "no such machine",
                    )
                    .with_help(unknown_machine_help(&name, machine_names)),
                );
            }
        }
        // An expanded resource's entries past its own are its use site's, checked there.
        let expanded_from = expansions.instance_of(&resource.address);
        let own = match resource.node.get("depends_on").map(|d| &d.value) {
            Some(Value::Seq(items)) if expanded_from.is_some() => items.len(),
            _ => usize::MAX,
        };
        for (index, target) in resource.depends_on.iter().enumerate().take(own) {
            let span = resource
                .node
                .get("depends_on")
                .and_then(|d| match &d.value {
                    Value::Seq(items) => items.get(index),
                    _ => None,
                })
                .map_or(resource.origin.span, |n| n.span);
            let origin = Origin {
                file: resource.origin.file.clone(),
                span,
            };
            let is_self = target.resource() == resource.address;
            let who = resource.address.to_string();
            if failed(target) && !references.by_address.contains_key(&target.resource()) {
                continue;
            }
            if let Some(error) = dependency_error(&references, &who, is_self, target, &origin) {
                errors.push(error);
            }
        }
        if let Some(instance) = expanded_from {
            instance.annotate(&mut errors.errors[first_error..]);
        }
    }
    for (index, instance) in expansions.instances.iter().enumerate() {
        for (at, target) in instance.depends_on.iter().enumerate() {
            let span = instance
                .depends_on_node
                .as_ref()
                .and_then(|d| match &d.value {
                    Value::Seq(items) => items.get(at),
                    _ => None,
                })
                .map_or(instance.origin.span, |n| n.span);
            let origin = Origin {
                file: instance.origin.file.clone(),
                span,
            };
            let is_self = expansions.of_resource.get(&target.resource()) == Some(&index);
            let who = format!("module `{}`", instance.name);
            if failed(target) && !references.by_address.contains_key(&target.resource()) {
                continue;
            }
            if let Some(error) = dependency_error(&references, &who, is_self, target, &origin) {
                errors.push(error);
            }
        }
    }
}

/// What the `depends_on` checks look things up in.
pub(super) struct References<'a> {
    pub(super) config: &'a Config,
    pub(super) machine_names: Vec<&'a str>,
    pub(super) addresses: Vec<String>,
    pub(super) by_address: HashMap<&'a Address, &'a Resource>,
}

/// Why `who` cannot depend on `target` (written at `origin`), if it cannot: `target` is
/// itself (`is_self`), not declared, or an instance or machine that does not exist.
pub(super) fn dependency_error(
    references: &References,
    who: &str,
    is_self: bool,
    target: &Address,
    origin: &Origin,
) -> Option<ConfigError> {
    let config = references.config;
    let resource_known = references.by_address.contains_key(&target.resource());
    let machine_known = target
        .machine
        .as_ref()
        .is_none_or(|m| config.machines.contains_key(m));
    // `kind.name[machine]` must name an instance that exists, not just a machine.
    let instance_known = match (
        &target.machine,
        references.by_address.get(&target.resource()),
    ) {
        (Some(machine), Some(target_resource)) => target_resource
            .spec
            .selector()
            .is_none_or(|s| config.select(s).any(|m| &m.name == machine)),
        _ => true,
    };
    if resource_known && machine_known && instance_known && !is_self {
        return None;
    }
    Some(if is_self {
        ConfigError::at(origin, format!("{who} depends on itself"), "here")
    } else if !resource_known {
        let candidates: Vec<&str> = references.addresses.iter().map(String::as_str).collect();
        ConfigError::at(
            origin,
            format!("{who} depends on `{target}`, which is not declared"),
            "no such resource",
        )
        .with_help(diagnostic::suggestion(
            &target.resource().to_string(),
            &candidates,
            "resources",
        ))
    } else if machine_known {
        ConfigError::at(
            origin,
            format!(
                "{who} depends on `{target}`, but {} does not select that machine",
                target.resource()
            ),
            "no such instance",
        )
        .with_help("depend on the resource as a whole, or on an instance it has")
    } else {
        ConfigError::at(
            origin,
            format!("{who} depends on `{target}`, but there is no such machine"),
            "no such machine",
        )
        .with_help(diagnostic::suggestion(
            target.machine.as_deref().unwrap_or_default(),
            &references.machine_names,
            "machines",
        ))
    })
}
