//! What one resource may know about the others when it links: [`Links`], a snapshot of
//! the whole configuration that each kind fills with what it declares
//! ([`super::Kind::declare`]) and reads what it names from ([`super::Kind::link`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::address::Address;
use crate::base::diagnostic::{ConfigError, ConfigErrors, Origin, SourceFile};
use crate::base::selector::Selector;
use crate::base::yaml::Node;

use super::{swarm_cluster, swarm_network, swarm_secret, SwarmScope};

/// What one resource may know about the others when it links (see [`super::Spec::link`]): a
/// snapshot of the whole configuration, taken once every document is loaded.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub project: String,
    /// Each `swarm/cluster` by name.
    pub swarms: BTreeMap<String, SwarmScope>,
    /// Each `swarm/network` by name, with the swarm it names (`cluster:`), if any, and its
    /// subnet.
    pub networks: BTreeMap<String, NetworkLink>,
    /// Each `docker/daemon` by name, with the machines it selects: a swarm forms after its
    /// members' daemons are configured (a restart during a join fails it).
    pub daemons: BTreeMap<String, Selector>,
    /// The mount point of each `gluster/volume` that mounts itself on machines, by volume.
    pub gluster_mounts: BTreeMap<String, String>,
    /// Resources written in the configuration that did not load (their own errors are
    /// reported): a reference to one is not reported again.
    pub broken: BTreeSet<Address>,
    /// The machines of the inventory, with their labels.
    pub machines: BTreeMap<String, BTreeMap<String, String>>,
    /// The machines of the inventory, with their addresses.
    pub machine_ips: BTreeMap<String, IpAddr>,
    /// Each machine that other machines' `ssh.proxy_jump` goes through, with those
    /// machines (see [`super::sshd::jumped_through`]).
    pub jumped_through: BTreeMap<String, Vec<String>>,
    /// Each `os/firewall` that only adds rules (sets no input policy): the one that sets
    /// `drop` comes after them, so that no allowed traffic is dropped in between.
    pub firewall_rules: Vec<String>,
    /// Each `swarm/secret` and `swarm/config` by class and name, with the swarm it names
    /// and its value.
    pub objects:
        BTreeMap<(swarm_secret::ObjectClass, String), (Option<String>, swarm_secret::ObjectValue)>,
    /// The Docker services of the stacks, with the stack of each: a `swarm/service` of the
    /// same name would fight the stack over it.
    pub stack_services: BTreeMap<String, String>,
    /// The services and stacks that use each secret and config, which a new version
    /// restarts.
    pub object_users: BTreeMap<(swarm_secret::ObjectClass, String), Vec<Address>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkLink {
    pub cluster: Option<String>,
    pub subnet: Option<String>,
}

impl Links {
    /// Whether `address` names a resource that is declared (loaded or not).
    pub fn declares(&self, address: &Address) -> bool {
        self.broken.contains(address)
            || match address.kind.as_str() {
                swarm_cluster::KIND => self.swarms.contains_key(&address.name),
                swarm_network::KIND => self.networks.contains_key(&address.name),
                _ => false,
            }
    }

    /// The swarm a resource placed on one belongs to: the one it names in `cluster:`, or
    /// the only one. Reports an error at `cluster` (or the specification) otherwise.
    pub fn swarm(&self, named: Option<&str>, ctx: &mut LinkContext) -> Option<SwarmScope> {
        match named {
            Some(name) => match self.swarms.get(name) {
                Some(scope) => Some(scope.clone()),
                None if self
                    .broken
                    .contains(&Address::new(swarm_cluster::KIND, name, None)) =>
                {
                    None
                }
                None => {
                    let known: Vec<&str> = self.swarms.keys().map(String::as_str).collect();
                    ctx.error(
                        &["cluster"],
                        format!("no `swarm/cluster` is named `{name}`"),
                        "unknown swarm",
                    )
                    .help = Some(if known.is_empty() {
                        "declare the swarm with a `swarm/cluster` document".into()
                    } else {
                        crate::base::diagnostic::suggestion(name, &known, "swarms")
                    });
                    None
                }
            },
            None => match self.swarms.len() {
                1 => self.swarms.values().next().cloned(),
                _ if self.broken.iter().any(|a| a.kind == swarm_cluster::KIND) => None,
                0 => {
                    ctx.error(
                        &[],
                        "this resource lives on a swarm, and no `swarm/cluster` is declared",
                        "no swarm",
                    )
                    .help = Some(
                        "declare the swarm with a `swarm/cluster` document (managers, workers)"
                            .into(),
                    );
                    None
                }
                _ => {
                    let known: Vec<&str> = self.swarms.keys().map(String::as_str).collect();
                    ctx.error(&[], format!("several swarms are declared ({}): say which one this resource lives on", known.join(", ")), "which swarm?")
                        .help = Some(format!("add `cluster: {}` to the specification", known[0]));
                    None
                }
            },
        }
    }
}

/// Where a resource reports what linking found wrong: at a field of its specification.
pub struct LinkContext<'a> {
    /// The resource's own name.
    pub name: String,
    pub file: Arc<SourceFile>,
    /// The `specification` node.
    pub spec: &'a Node,
    pub errors: &'a mut ConfigErrors,
}

impl LinkContext<'_> {
    /// Reports an error at a field of the specification (the specification itself for an
    /// empty path).
    pub fn error(
        &mut self,
        path: &[&str],
        message: impl Into<String>,
        label: &str,
    ) -> &mut ConfigError {
        let origin = Origin {
            file: self.file.clone(),
            span: crate::base::check::span_at(self.spec, path),
        };
        self.errors.push_at(&origin, message, label)
    }
}
