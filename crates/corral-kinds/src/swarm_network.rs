//! `swarm/network`: an overlay network of a swarm.
//!
//! One instance per network, read on a live manager of its swarm (in the swarm's one manager
//! round trip). Docker cannot change a network in place (there is no `network update`), so
//! any difference in subnet, encryption, attachable, internal or labels is a replace: the
//! services attached to it are detached, the network removed and created again, and the
//! services attached again, in one step on a manager. A network corral did not create (no
//! `io.corral.managed` label of this project) is never replaced or removed: it is used as it
//! is when it matches, and is a plan error when it does not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    ClusterFacts, ClusterKind, ClusterStep, DockerObject, Kind, LinkContext, Links, NetworkLink,
    Orphan, Step, SwarmScope, MANAGED_LABEL,
};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::facts::swarm::{self, OverlayNetwork};
use crate::facts::{kernel, FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "swarm/network";

/// `swarm/network` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmNetworkSpec {
    /// The `swarm/cluster` the network belongs to; needed only when several are declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The network's subnet (CIDR); Docker picks one from its address pool when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Encrypt traffic between hosts (IPsec ESP; the hosts' kernels must support it).
    #[serde(default)]
    pub encrypted: bool,
    /// Let standalone containers attach (`docker run --network`).
    #[serde(default)]
    pub attachable: bool,
    /// No traffic out of the network.
    #[serde(default)]
    pub internal: bool,
    /// Labels of the network (corral adds its own `io.corral.managed`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The swarm, filled in at load.
    #[serde(skip)]
    #[schemars(skip)]
    pub scope: SwarmScope,
}

impl Kind for SwarmNetworkSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if let Some(subnet) = &self.subnet {
            match subnet.parse::<ipnet::IpNet>() {
                Ok(net) if net.trunc() != net => {
                    ctx.error(
                        &["subnet"],
                        format!("`{subnet}` has host bits set"),
                        "not a network address",
                    )
                    .help = Some(format!("did you mean `{}`?", net.trunc()));
                }
                Ok(_) => {}
                Err(_) => {
                    ctx.error(
                        &["subnet"],
                        format!("`{subnet}` is not a subnet"),
                        "expected CIDR",
                    )
                    .help = Some("write the subnet as address/prefix, e.g. `10.20.0.0/24`".into());
                }
            }
        }
        for (key, value) in &self.labels {
            if key == MANAGED_LABEL
                || !super::docker_values::valid_label_key(key)
                || value.chars().any(char::is_control)
            {
                ctx.error_at_key(
                    &["labels", key],
                    format!("`{key}` cannot be a label here"),
                    "here",
                )
                .help = Some(format!(
                    "label keys have no `=`, spaces or leading `-`, values are one line, and `{MANAGED_LABEL}` is corral's"
                ));
            }
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        let Some(scope) = links.swarm(self.cluster.as_deref(), ctx) else {
            return Vec::new();
        };
        // Overlapping subnets are accepted by Docker and then route wrongly (moby#37921).
        if let Some(mine) = self
            .subnet
            .as_deref()
            .and_then(|s| s.parse::<ipnet::IpNet>().ok())
        {
            for (name, other) in &links.networks {
                let same_swarm =
                    other.cluster.as_deref().unwrap_or(&scope.cluster) == scope.cluster;
                let theirs = other
                    .subnet
                    .as_deref()
                    .and_then(|s| s.parse::<ipnet::IpNet>().ok());
                let Some(theirs) = theirs else {
                    continue;
                };
                if name != &ctx.name
                    && same_swarm
                    && (mine.contains(&theirs) || theirs.contains(&mine))
                {
                    ctx.error(
                        &["subnet"],
                        format!("{mine} overlaps {theirs} of swarm/network.{name}"),
                        "overlapping subnet",
                    )
                    .help = Some("give each overlay network of a swarm its own subnet".into());
                }
            }
        }
        let address = scope.address();
        self.scope = scope;
        vec![address]
    }

    /// A network no longer declared may still be used by a service this apply moves off it.
    const DELETED_LAST: bool = true;

    fn declare(&self, address: &Address, links: &mut Links) {
        links
            .networks
            .insert(address.name.clone(), self.network_link());
    }

    fn orphan_delete_script(address: &Address, project: &str) -> Option<String> {
        Some(super::DockerObject::Network.delete_script(&address.name, project))
    }
}

impl SwarmNetworkSpec {
    /// What other resources may know of this network at load.
    pub fn network_link(&self) -> NetworkLink {
        NetworkLink {
            cluster: self.cluster.clone(),
            subnet: self.subnet.clone(),
        }
    }

    /// The attributes as configured, in the order the plan shows them.
    fn wanted(&self) -> Vec<(&'static str, String)> {
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            (
                "subnet",
                self.subnet
                    .clone()
                    .unwrap_or_else(|| "(chosen by Docker)".into()),
            ),
            ("encrypted", self.encrypted.to_string()),
            ("attachable", self.attachable.to_string()),
            ("internal", self.internal.to_string()),
            ("labels", labels),
        ]
    }

    /// The same attributes of a live network.
    fn live(&self, network: &OverlayNetwork) -> Vec<(&'static str, String)> {
        let subnet = match &self.subnet {
            // Not configured: whatever Docker chose is right.
            None => "(chosen by Docker)".to_owned(),
            Some(_) => network
                .ipam
                .config
                .iter()
                .map(|c| c.subnet.clone())
                .collect::<Vec<_>>()
                .join(","),
        };
        let labels = network
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != MANAGED_LABEL)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("subnet", subnet),
            ("encrypted", network.encrypted().to_string()),
            ("attachable", network.attachable.to_string()),
            ("internal", network.internal.to_string()),
            ("labels", labels),
        ]
    }

    /// The live network of this name, if the swarm has one.
    fn find(&self, name: &str, facts: &ClusterFacts) -> Result<Option<OverlayNetwork>, FactError> {
        let Some((_, manager)) = &facts.manager else {
            super::swarm_cluster::no_manager(facts)?;
            return Ok(None);
        };
        let networks = live_networks(manager)?;
        let mut found = networks.iter().filter(|n| n.name == name);
        let first = found.next().cloned();
        if found.next().is_some() {
            return Err(FactError::new(
                swarm::NETWORK_INSPECT_KEY,
                format!("the swarm has several networks named `{name}`; remove all but one by hand (`docker network ls`)"),
            ));
        }
        Ok(first)
    }

    fn create_script(&self, name: &str) -> String {
        create_command(
            name,
            Some(&self.scope.project),
            self.subnet.iter().map(String::as_str),
            [self.encrypted, self.attachable, self.internal],
            &self.labels,
        )
    }
}

/// The command that makes a network like `network` again (its subnets, options and
/// labels, corral's included), to put it back when a replace fails half-way.
fn create_like(name: &str, network: &OverlayNetwork) -> String {
    let labels: BTreeMap<String, String> = network
        .labels
        .iter()
        .filter(|(key, _)| key.as_str() != MANAGED_LABEL)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    create_command(
        name,
        network.labels.get(MANAGED_LABEL).map(String::as_str),
        network
            .ipam
            .config
            .iter()
            .map(|c| c.subnet.as_str())
            .filter(|s| !s.is_empty()),
        [network.encrypted(), network.attachable, network.internal],
        &labels,
    )
}

/// `docker network create` of an overlay: corral's label for `project` first, then the
/// subnets, the `[encrypted, attachable, internal]` switches and the other labels.
fn create_command<'a>(
    name: &str,
    project: Option<&str>,
    subnets: impl Iterator<Item = &'a str>,
    [encrypted, attachable, internal]: [bool; 3],
    labels: &BTreeMap<String, String>,
) -> String {
    let mut command = vec!["docker network create --driver overlay --scope swarm".to_owned()];
    let label = |key: &str, value: &str| format!("--label {}", quote(&format!("{key}={value}")));
    command.extend(project.map(|p| label(MANAGED_LABEL, p)));
    command.extend(subnets.map(|subnet| format!("--subnet {}", quote(subnet))));
    for (on, flag) in [
        (encrypted, "--opt encrypted"),
        (attachable, "--attachable"),
        (internal, "--internal"),
    ] {
        if on {
            command.push(flag.to_owned());
        }
    }
    command.extend(labels.iter().map(|(key, value)| label(key, value)));
    command.push(quote(name));
    format!("{} >/dev/null\n", command.join(" "))
}

/// Every overlay network the manager sees.
fn live_networks(manager: &HostFacts) -> Result<std::sync::Arc<Vec<OverlayNetwork>>, FactError> {
    manager.networks()
}

/// The names of the services attached to network `id`, from the manager's facts; an error
/// naming those that `project` does not manage: corral never detaches them.
fn services_using(manager: &HostFacts, id: &str, project: &str) -> Result<Vec<String>, FactError> {
    let services = manager.services()?;
    let (ours, others): (Vec<_>, Vec<_>) = services
        .iter()
        .filter(|s| {
            s.spec
                .task_template
                .networks
                .iter()
                .any(|n| n.target == id || id.starts_with(&n.target))
        })
        .partition(|s| s.spec.labels.get(MANAGED_LABEL).map(String::as_str) == Some(project));
    if !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|s| s.spec.name.as_str()).collect();
        return Err(FactError::new(
            swarm::SERVICE_INSPECT_KEY,
            format!(
                "the network must be replaced, and services {} that project {project} does not manage use it: corral does not detach them; move them off the network first",
                names.join(", ")
            ),
        ));
    }
    Ok(ours.into_iter().map(|s| s.spec.name.clone()).collect())
}

/// The networks of `project` on the swarm that no `swarm/network` declares.
pub fn orphans(
    manager: &HostFacts,
    project: &str,
    declared: &BTreeSet<Address>,
) -> Result<Vec<Orphan>, FactError> {
    Ok(live_networks(manager)?
        .iter()
        .filter(|n| n.labels.get(MANAGED_LABEL).map(String::as_str) == Some(project))
        .map(|n| (Address::new(KIND, &n.name, None), n))
        .filter(|(address, _)| !declared.contains(address))
        .map(|(address, n)| {
            let subnets: Vec<String> = n.ipam.config.iter().map(|c| c.subnet.clone()).collect();
            Orphan {
                address,
                attributes: vec![AttrChange::new(
                    "subnet",
                    AttrValue::Scalar(subnets.join(",")),
                    AttrValue::Absent,
                )],
                reason: None,
            }
        })
        .collect())
}

impl ClusterKind for SwarmNetworkSpec {
    super::on_a_swarm!(scope);

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe(), kernel::probe()]
    }

    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            swarm::network_inspect_probe(),
            swarm::service_inspect_probe(),
        ]
    }

    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        let wanted = self.wanted();
        let Some(network) = self.find(name, facts)? else {
            let mut attributes = vec![AttrChange::scalar("driver", "", "overlay")];
            attributes[0].before = AttrValue::Absent;
            attributes.extend(
                wanted
                    .into_iter()
                    .map(|(k, v)| AttrChange::new(k, AttrValue::Absent, AttrValue::Scalar(v))),
            );
            return Ok(Diff {
                action: Some(Action::Create),
                attributes,
                reason: None,
            });
        };
        let live = self.live(&network);
        let attributes: Vec<AttrChange> = live
            .into_iter()
            .zip(wanted)
            .filter(|((_, have), (_, want))| have != want)
            .map(|((key, have), (_, want))| AttrChange::scalar(key, have, want))
            .collect();
        if network.driver != "overlay" || network.scope != "swarm" || network.ingress {
            return Err(FactError::new(
                swarm::NETWORK_INSPECT_KEY,
                format!(
                    "`{name}` is a {} network of scope {}, not a swarm overlay; rename one of them",
                    network.driver, network.scope
                ),
            ));
        }
        if attributes.is_empty() {
            return Ok(Diff::update_if_changed(Vec::new()));
        }
        if network.labels.get(MANAGED_LABEL) != Some(&self.scope.project) {
            let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
            return Err(FactError::new(
                swarm::NETWORK_INSPECT_KEY,
                format!(
                    "network `{name}` exists, differs ({}), and was not created by project {}: corral does not replace what it does not manage; remove it by hand or match the configuration to it",
                    names.join(", "),
                    self.scope.project
                ),
            ));
        }
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        let manager = facts.manager.as_ref().map(|(_, f)| *f);
        let users = match manager {
            Some(manager) => services_using(manager, &network.id, &self.scope.project)?,
            None => Vec::new(),
        };
        let mut reason = format!(
            "{} cannot change in place: Docker has no network update",
            names.join(", ")
        );
        if !users.is_empty() {
            reason.push_str(&format!(
                "; services {} are detached and attached again around it",
                users.join(", ")
            ));
        }
        Ok(Diff {
            action: Some(Action::Replace),
            attributes,
            reason: Some(reason),
        })
    }

    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        let diff = self.diff(name, facts)?;
        let leader = self.scope.leader(facts);
        let on = |description: String, script: String| ClusterStep {
            machine: leader.clone(),
            step: Step {
                description,
                script,
            },
            produces: None,
            always: false,
        };
        Ok(match diff.action() {
            Action::Create => vec![on(
                format!("create overlay network {name}"),
                format!("set -e\n{}", self.create_script(name)),
            )],
            Action::Replace => {
                let network = self.find(name, facts)?.ok_or_else(|| {
                    FactError::new(swarm::NETWORK_INSPECT_KEY, "the network is gone")
                })?;
                let users = match &facts.manager {
                    Some((_, manager)) => {
                        services_using(manager, &network.id, &self.scope.project)?
                    }
                    None => Vec::new(),
                };
                let q = quote(name);
                let services: Vec<String> = users.iter().map(|s| quote(s)).collect();
                // A service the same apply deletes (no longer declared) may be gone.
                let on_service = |service: &str, flag: &str| {
                    format!("if docker service inspect {service} >/dev/null 2>&1; then docker service update --detach=false --quiet {flag} {q} {service} >/dev/null; fi\n")
                };
                // Ownership first; and should anything fail once services are detached, the
                // network is put back (as it was, else as configured) and they are attached
                // again.
                let mut script = String::from("set -e\n");
                script.push_str(&DockerObject::Network.owned_guard(name, &self.scope.project));
                if !services.is_empty() {
                    let mut body = format!(
                        "rc=$?\nif [ \"$rc\" -ne 0 ] && [ -n \"$detached\" ]; then\necho 'corral: the replace failed; putting the network and its services back'\ndocker network inspect {q} >/dev/null 2>&1 || {} || {} || true\n",
                        create_like(name, &network).trim_end(),
                        self.create_script(name).trim_end()
                    );
                    for service in &services {
                        body.push_str(
                            &on_service(service, "--network-add")
                                .replace(">/dev/null; fi", ">/dev/null || true; fi"),
                        );
                    }
                    body.push_str("fi\n");
                    script.push_str(&format!(
                        "detached=\ntrap {} EXIT\ntrap 'exit 1' HUP INT TERM\ndetached=1\n",
                        quote(&body)
                    ));
                }
                for service in &services {
                    script.push_str(&on_service(service, "--network-rm"));
                }
                script.push_str(&format!("docker network rm {q} >/dev/null\n"));
                script.push_str(&DockerObject::Network.wait_gone(name));
                script.push_str(&self.create_script(name));
                for service in &services {
                    script.push_str(&on_service(service, "--network-add"));
                }
                if !services.is_empty() {
                    script.push_str("detached=\n");
                }
                vec![on(format!("replace overlay network {name}"), script)]
            }
            _ => Vec::new(),
        })
    }

    fn warnings(&self, _name: &str, facts: &ClusterFacts) -> Vec<String> {
        if !self.encrypted {
            return Vec::new();
        }
        let without = facts.kernels_without(|f| f.esp);
        if without.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "encrypted, but the kernel of {} has no ESP (IPsec) support: Docker creates the network and then drops the traffic between hosts without an error. Use an unencrypted overlay on a private network, or kernels with CONFIG_INET_ESP",
            without.join(", ")
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;
    use crate::ClusterMember;

    fn spec(subnet: &str, encrypted: bool, labels: &[(&str, &str)]) -> SwarmNetworkSpec {
        SwarmNetworkSpec {
            subnet: Some(subnet.into()),
            encrypted,
            attachable: true,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            scope: SwarmScope {
                cluster: "main".into(),
                managers: vec!["n1".into(), "n2".into()],
                workers: vec!["n3".into()],
                project: "default".into(),
            },
            ..SwarmNetworkSpec::default()
        }
    }

    fn manager() -> HostFacts {
        let mut facts = HostFacts::default();
        for (fact, key, probe) in [
            (
                "network-inspect",
                swarm::NETWORK_INSPECT_KEY,
                swarm::network_inspect_probe(),
            ),
            (
                "service-inspect",
                swarm::SERVICE_INSPECT_KEY,
                swarm::service_inspect_probe(),
            ),
        ] {
            facts
                .probes
                .insert(key.into(), recorded::cluster(fact, "cluster", &probe));
        }
        facts
    }

    fn facts(manager: &HostFacts) -> ClusterFacts<'_> {
        ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), manager)),
            inventory: BTreeMap::new(),
        }
    }

    #[test]
    fn a_network_as_recorded_plans_nothing() {
        let manager = manager();
        let diff = spec("10.235.2.0/24", false, &[("tier", "app")])
            .diff("appnet", &facts(&manager))
            .unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    #[test]
    fn a_changed_subnet_replaces_the_network_around_its_services() {
        let manager = manager();
        let spec = spec("10.235.9.0/24", false, &[("tier", "app")]);
        let diff = spec.diff("appnet", &facts(&manager)).unwrap();
        assert_eq!(diff.action(), Action::Replace);
        assert_eq!(
            diff.attributes,
            [AttrChange::scalar(
                "subnet",
                "10.235.2.0/24",
                "10.235.9.0/24"
            )]
        );
        assert!(diff.reason.unwrap().contains("services api are detached"));
        let steps = spec.steps("appnet", &facts(&manager)).unwrap();
        let script = &steps[0].step.script;
        // Ownership is checked first; a failure once the service is detached makes the
        // network again and attaches it (the trap); then detach, remove, create, attach.
        let guard = script.find("is not managed by project").unwrap();
        let trap = script.find("trap '").unwrap();
        let rm = script.find("--network-rm appnet api").unwrap();
        let create = script.rfind("docker network create").unwrap();
        let add = script.rfind("--network-add appnet api").unwrap();
        assert!(
            guard < trap && trap < rm && rm < create && create < add,
            "{script}"
        );
        assert!(script.contains("--subnet 10.235.9.0/24"));
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{script}\n{syntax:?}");
    }

    /// A replace whose new network cannot be made puts the old one back and attaches its
    /// services again (run with a stand-in `docker` that refuses the new subnet).
    #[test]
    fn a_failed_replace_puts_the_network_and_its_services_back() {
        let manager = manager();
        let spec = spec("10.235.9.0/24", false, &[("tier", "app")]);
        let steps = spec.steps("appnet", &facts(&manager)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("docker");
        std::fs::write(
            &fake,
            r#"#!/bin/sh
d=$(dirname "$0"); echo "$*" >> "$d/calls"
case "$*" in
  "network inspect --format"*) echo default ;;
  "network inspect appnet") [ -e "$d/exists" ] ;;
  "network rm appnet") rm -f "$d/exists" ;;
  "network create"*10.235.9.0*) echo 'invalid pool request' >&2; exit 1 ;;
  "network create"*) touch "$d/exists" ;;
esac
"#,
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.path().join("exists"), "").unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &steps[0].step.script])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        let lines: Vec<&str> = calls.lines().collect();
        let at = |prefix: &str| lines.iter().rposition(|l| l.starts_with(prefix)).unwrap();
        assert!(
            at("service update --detach=false --quiet --network-rm appnet api")
                < at("network rm appnet")
                && at("network rm appnet") < at("network create")
                && at("network create")
                    < at("service update --detach=false --quiet --network-add appnet api"),
            "{calls}"
        );
        assert!(
            lines[at("network create")].contains("--subnet 10.235.2.0/24"),
            "the old network is made again: {calls}"
        );
    }

    /// Services of another project (or made by hand) on a network to replace are never
    /// detached: the replace is refused, naming them.
    #[test]
    fn a_network_used_by_services_of_others_is_not_replaced() {
        let manager = manager();
        let networks = live_networks(&manager).unwrap();
        let appnet = networks.iter().find(|n| n.name == "appnet").unwrap();
        assert_eq!(
            services_using(&manager, &appnet.id, "default").unwrap(),
            ["api"]
        );
        let error = services_using(&manager, &appnet.id, "other").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("services api that project other does not manage"),
            "{error}"
        );
    }

    #[test]
    fn a_network_corral_did_not_create_is_never_replaced() {
        let manager = manager();
        // dbnet was created by hand (no io.corral.managed label), encrypted.
        let error = spec("10.235.1.0/24", false, &[])
            .diff("dbnet", &facts(&manager))
            .unwrap_err();
        assert!(
            error.to_string().contains("not created by project default"),
            "{error}"
        );
        let matching = SwarmNetworkSpec {
            attachable: false,
            ..spec("10.235.1.0/24", true, &[])
        };
        let diff = matching.diff("dbnet", &facts(&manager)).unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    #[test]
    fn a_missing_network_is_created_with_corrals_label() {
        let manager = manager();
        let spec = spec("10.236.0.0/24", true, &[]);
        assert_eq!(
            spec.diff("frontnet", &facts(&manager)).unwrap().action(),
            Action::Create
        );
        let steps = spec.steps("frontnet", &facts(&manager)).unwrap();
        assert_eq!(steps[0].machine, "n1");
        let script = &steps[0].step.script;
        assert!(
            script.contains("docker network create --driver overlay --scope swarm --label ")
                && script.contains("io.corral.managed=default")
                && script.contains("--subnet 10.236.0.0/24 --opt encrypted --attachable frontnet"),
            "{script}"
        );
    }

    #[test]
    fn networks_of_the_project_that_are_not_declared_are_orphans() {
        let manager = manager();
        let none = orphans(&manager, "default", &BTreeSet::new()).unwrap();
        assert_eq!(
            none.iter()
                .map(|o| o.address.to_string())
                .collect::<Vec<_>>(),
            ["swarm/network.appnet"]
        );
        let declared = BTreeSet::from([Address::new(KIND, "appnet", None)]);
        assert!(orphans(&manager, "default", &declared).unwrap().is_empty());
        assert!(orphans(&manager, "other", &BTreeSet::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_encrypted_network_on_a_kernel_without_esp_is_a_warning() {
        let mut host = HostFacts::default();
        host.probes.insert(
            kernel::KEY.into(),
            recorded::cluster("kernel-features", "lab", &kernel::probe()),
        );
        let members = BTreeMap::from([(
            "n1".to_owned(),
            ClusterMember {
                ip: "10.0.0.1".parse().unwrap(),
                facts: &host,
            },
        )]);
        let facts = ClusterFacts {
            members,
            manager: None,
            inventory: BTreeMap::new(),
        };
        let warnings = spec("10.236.0.0/24", true, &[]).warnings("dbnet", &facts);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("kernel of n1 has no ESP"));
        assert!(spec("10.236.0.0/24", false, &[])
            .warnings("dbnet", &facts)
            .is_empty());
    }
}
