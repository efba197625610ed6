//! `swarm/cluster`: which machines form a Docker Swarm, as managers or workers, and their
//! node labels.
//!
//! One instance for the whole cluster. Each member is read for its own view of the swarm
//! (`docker info`), and one live manager for the nodes' roles and labels (`docker node
//! inspect`). A blank cluster is initialised on the first manager; other managers join one
//! at a time, then workers, each with a join token read from a manager when the step runs
//! and never printed, saved or logged. Role changes that would leave the swarm without a
//! majority of its managers are refused in the plan, with the arithmetic.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{
    ClusterFacts, ClusterKind, ClusterStep, Kind, LinkContext, Links, Orphan, Step, SwarmScope,
};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::facts::swarm::{self, NodeRole, SwarmInfo, SwarmNode};
use crate::facts::{FactError, Probe};
use crate::plan::{placeholder, Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "swarm/cluster";

/// `swarm/cluster` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwarmClusterSpec {
    /// Manager machines; the first initialises a new swarm. An odd number: 3 managers
    /// tolerate one failure, 5 two.
    pub managers: Vec<String>,
    /// Worker machines.
    #[serde(default)]
    pub workers: Vec<String>,
    /// Node labels by machine (`{n1: {tier: front}}`). A machine listed here has exactly
    /// these labels; a member no longer listed loses the labels corral set on it (their
    /// keys are kept in the node label `io.corral.labels`), and keeps the others.
    #[serde(default)]
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Node availability by machine (`{n3: drain}`): `active`, `pause` (no new tasks) or
    /// `drain` (its tasks move to other nodes). Machines not listed are left as they are.
    #[serde(default)]
    pub availability: BTreeMap<String, NodeAvailability>,
    /// Allow an even number of managers, which tolerates no more failures than one fewer.
    #[serde(default)]
    pub allow_even_managers: bool,
    /// The project, filled in at load: its Docker objects are the ones deleted when no
    /// longer declared.
    #[serde(skip)]
    #[schemars(skip)]
    pub project: String,
}

/// Whether the scheduler gives a node tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeAvailability {
    Active,
    Pause,
    Drain,
}

impl NodeAvailability {
    fn word(self) -> &'static str {
        match self {
            NodeAvailability::Active => "active",
            NodeAvailability::Pause => "pause",
            NodeAvailability::Drain => "drain",
        }
    }

    fn of(live: swarm::Availability) -> Self {
        match live {
            swarm::Availability::Active => NodeAvailability::Active,
            swarm::Availability::Pause => NodeAvailability::Pause,
            swarm::Availability::Drain => NodeAvailability::Drain,
        }
    }
}

/// The attribute that shows the join tokens the apply reads.
const TOKENS: &str = "join tokens";
const KNOWN_AFTER_APPLY: &str = "known after apply";

fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    }
}

/// A Docker label key or value corral will pass to `docker node update`.
fn valid_label(text: &str, key: bool) -> bool {
    !text.is_empty()
        && !text.chars().any(char::is_control)
        && !(key
            && (text.contains(['=', ','])
                || text.starts_with('-')
                || text.starts_with("io.corral.")
                || text.contains(char::is_whitespace)))
}

impl Kind for SwarmClusterSpec {
    /// After the Docker daemon settings of its members: a restart during a join fails it.
    fn link(&mut self, links: &Links, _ctx: &mut LinkContext) -> Vec<Address> {
        self.project = links.project.clone();
        let members: Vec<&String> = self.members_in_order().collect();
        links
            .daemons
            .iter()
            .filter(|(_, selector)| {
                members.iter().any(|m| {
                    links
                        .machines
                        .get(m.as_str())
                        .is_some_and(|labels| selector.matches(m, labels))
                })
            })
            .map(|(name, _)| Address::new(super::docker_daemon::KIND, name, None))
            .collect()
    }

    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.managers.is_empty() {
            ctx.error(&["managers"], "a swarm needs at least one manager", "here")
                .help = Some("list the manager machines, e.g. `managers: [n1]`".into());
        }
        let mut seen = BTreeSet::new();
        for (field, names) in [("managers", &self.managers), ("workers", &self.workers)] {
            for name in names {
                if !seen.insert(name.as_str()) {
                    ctx.error(
                        &[field],
                        format!("machine `{name}` is listed twice (a machine is either a manager or a worker)"),
                        "in this list",
                    );
                }
            }
        }
        let count = self.managers.len();
        if count % 2 == 0 && count > 0 && !self.allow_even_managers {
            ctx.error(
                &["managers"],
                format!(
                    "{count} managers tolerate {} failure(s), no more than {}: an even number of managers adds risk, not resilience",
                    count / 2 - 1,
                    count - 1
                ),
                "here",
            )
            .help = Some(format!(
                "use {} or {} managers, or set `allow_even_managers: true` for a deliberate step",
                count - 1,
                count + 1
            ));
        }
        for machine in self.availability.keys() {
            if !seen.contains(machine.as_str()) {
                ctx.error(
                    &["availability", machine],
                    format!(
                        "`{machine}` has an availability but is neither a manager nor a worker"
                    ),
                    "here",
                );
            }
        }
        for (machine, labels) in &self.labels {
            if !seen.contains(machine.as_str()) {
                ctx.error(
                    &["labels", machine],
                    format!("`{machine}` has labels but is neither a manager nor a worker"),
                    "here",
                );
            }
            for (key, value) in labels {
                if !valid_label(key, true) || !valid_label(value, false) {
                    ctx.error(
                        &["labels", machine, key],
                        format!("`{key}={value}` is not a node label"),
                        "here",
                    )
                    .help = Some(
                        "label keys have no `=`, `,`, spaces or leading `-`, and `io.corral.` is corral's own; values are one line".into(),
                    );
                }
            }
        }
        self
    }

    fn declare(&self, address: &Address, links: &mut Links) {
        let scope = self.scope(&address.name, &links.project);
        links.swarms.insert(address.name.clone(), scope);
    }

    /// A port the swarm needs that a firewall of the configuration does not open.
    fn plan_warnings(config: &dyn crate::declared::Declared) -> Vec<(Address, String)> {
        firewall_warnings(config)
    }
}

impl SwarmClusterSpec {
    fn role_of(&self, machine: &str) -> NodeRole {
        if self.managers.iter().any(|m| m == machine) {
            NodeRole::Manager
        } else {
            NodeRole::Worker
        }
    }

    /// Members in join order: managers first, in the order written, then workers.
    fn members_in_order(&self) -> impl Iterator<Item = &String> {
        self.managers.iter().chain(&self.workers)
    }
}

/// The node label that lists the label keys corral set on a node (`tier,zone`), so that a
/// machine no longer listed under `labels` loses those (and only those): a label swap
/// between two machines moves what is pinned by it.
pub const LABELS_MARKER: &str = "io.corral.labels";

/// The labels to add (or change) and remove on a node that has `have`, for `want` (the
/// machine's entry under `labels`, if it has one). A listed machine ends with exactly its
/// labels and the marker naming their keys; one not listed loses the keys its marker names,
/// and the marker; labels corral never set on an unlisted machine are left alone.
fn label_changes(
    want: Option<&BTreeMap<String, String>>,
    have: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut add = BTreeMap::new();
    let mut remove = Vec::new();
    match want {
        Some(want) => {
            let marker = want.keys().cloned().collect::<Vec<_>>().join(",");
            for (key, value) in want.iter().chain([(&LABELS_MARKER.to_owned(), &marker)]) {
                if have.get(key) != Some(value) {
                    add.insert(key.clone(), value.clone());
                }
            }
            remove.extend(
                have.keys()
                    .filter(|k| !want.contains_key(*k) && k.as_str() != LABELS_MARKER)
                    .cloned(),
            );
        }
        None => {
            if let Some(marker) = have.get(LABELS_MARKER) {
                remove.extend(
                    marker
                        .split(',')
                        .filter(|k| have.contains_key(*k))
                        .map(str::to_owned),
                );
                remove.push(LABELS_MARKER.to_owned());
            }
        }
    }
    (add, remove)
}

/// What the facts say about the cluster, and what must change.
struct Analysis<'a> {
    /// Node by machine, for members already in the swarm (from the manager's view).
    nodes: BTreeMap<&'a str, SwarmNode>,
    /// The manager steps run on: the bootstrap manager, or a live one.
    leader: String,
    blank: bool,
    joins: Vec<&'a str>,
    role_changes: Vec<(&'a str, NodeRole)>,
    /// Labels to add or change, and to remove, by member.
    labels: Vec<(&'a str, BTreeMap<String, String>, Vec<String>)>,
    /// Availability to set, by member, with what it is now (`None`: joining).
    availability: Vec<(&'a str, Option<NodeAvailability>, NodeAvailability)>,
    /// Nodes of the swarm that are no longer members, by inventory machine: drained, made
    /// to leave, and removed.
    removals: Vec<(String, SwarmNode)>,
}

impl SwarmClusterSpec {
    fn analyse<'a>(&'a self, facts: &ClusterFacts) -> Result<Analysis<'a>, FactError> {
        let mut infos = BTreeMap::new();
        // Members whose Docker daemon does not answer: the swarm is read from a manager,
        // and they are left as they are (a stopped manager must not stop the plan).
        let mut down: Vec<&str> = Vec::new();
        for machine in self.members_in_order() {
            let member = facts.members.get(machine).ok_or_else(|| {
                FactError::new(swarm::INFO_KEY, format!("{machine} was not read"))
            })?;
            let out = member.facts.get(swarm::INFO_KEY)?;
            if swarm::refusal(out) == Some(swarm::ManagerRefusal::DaemonDown) {
                down.push(machine.as_str());
                continue;
            }
            let info = swarm::parse_info(swarm::INFO_KEY, out)?;
            if matches!(
                info.local_node_state,
                swarm::LocalNodeState::Pending
                    | swarm::LocalNodeState::Error
                    | swarm::LocalNodeState::Locked
            ) {
                return Err(FactError::new(
                    swarm::INFO_KEY,
                    format!(
                        "{machine}'s swarm state is {:?}{}; resolve it on the host first",
                        info.local_node_state,
                        if info.error.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", info.error)
                        }
                    ),
                ));
            }
            infos.insert(machine.as_str(), info);
        }
        let blank = down.is_empty() && infos.values().all(|i| !i.is_member());
        // One swarm only: every manager that knows its cluster must know the same one.
        let clusters: BTreeSet<&str> = infos.values().filter_map(SwarmInfo::cluster_id).collect();
        if clusters.len() > 1 {
            return Err(FactError::new(
                swarm::INFO_KEY,
                "the members belong to different swarms; make a member leave the wrong one first (`docker swarm leave`)",
            ));
        }
        let nodes_by_id: BTreeMap<String, SwarmNode> = match &facts.manager {
            Some((_, manager)) => swarm::parse_node_inspect(
                swarm::NODE_INSPECT_KEY,
                manager.get(swarm::NODE_INSPECT_KEY)?,
            )?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect(),
            None => BTreeMap::new(),
        };
        if !blank && facts.manager.is_none() {
            return Err(FactError::new(
                swarm::NODE_INSPECT_KEY,
                "no manager of the swarm answered; corral needs one to read the nodes",
            ));
        }
        let mut nodes = BTreeMap::new();
        for (machine, info) in &infos {
            if info.is_member() {
                if let Some(node) = nodes_by_id.get(&info.node_id) {
                    nodes.insert(*machine, node.clone());
                }
            }
        }
        // A member that does not answer is found by the address it advertises.
        for machine in &down {
            let ip = facts.members[*machine].ip.to_string();
            match nodes_by_id.values().find(|n| n.addr() == ip) {
                Some(node) => {
                    nodes.insert(*machine, node.clone());
                }
                None => {
                    return Err(FactError::new(
                        swarm::INFO_KEY,
                        format!("{machine}'s Docker daemon does not answer and it is not in the swarm; start Docker on it first"),
                    ))
                }
            }
        }
        let leader = match &facts.manager {
            Some((manager, _)) => manager.clone(),
            None => self.managers[0].clone(),
        };
        let mut joins = Vec::new();
        let mut role_changes = Vec::new();
        for machine in self.members_in_order() {
            let want = self.role_of(machine);
            match nodes.get(machine.as_str()) {
                None => joins.push(machine.as_str()),
                Some(node) if node.spec.role != want => role_changes.push((machine.as_str(), want)),
                Some(_) => {}
            }
        }
        // Nodes that no member is: to leave the swarm, found in the inventory by address.
        let mut removals = Vec::new();
        for node in nodes_by_id.values() {
            if nodes.values().any(|n| n.id == node.id) {
                continue;
            }
            let machine = facts
                .inventory
                .iter()
                .find(|(_, ip)| ip.to_string() == node.addr())
                .map(|(m, _)| m.clone())
                .ok_or_else(|| {
                    FactError::new(
                        swarm::NODE_INSPECT_KEY,
                        format!(
                            "node {} ({}) is in the swarm but no machine of the inventory has that address; corral cannot make it leave (`docker node rm` it by hand once it is down)",
                            node.hostname(),
                            node.addr()
                        ),
                    )
                })?;
            removals.push((machine, node.clone()));
        }
        if let Some((machine, _)) = role_changes.iter().find(|(m, _)| down.contains(m)) {
            return Err(FactError::new(
                swarm::INFO_KEY,
                format!("{machine}'s Docker daemon does not answer; its role cannot change until it does"),
            ));
        }
        let mut leaving: Vec<(&str, NodeRole)> = role_changes.clone();
        for (machine, node) in &removals {
            if node.spec.role == NodeRole::Manager {
                leaving.push((machine.as_str(), NodeRole::Worker));
            }
        }
        let mut all_nodes = nodes.clone();
        for (machine, node) in &removals {
            all_nodes.insert(machine.as_str(), node.clone());
        }
        self.check_quorum(&all_nodes, &leaving)?;
        let mut labels = Vec::new();
        for machine in self.members_in_order() {
            let have = nodes
                .get(machine.as_str())
                .map(|n| n.spec.labels.clone())
                .unwrap_or_default();
            let (add, remove) = label_changes(self.labels.get(machine), &have);
            // Labels set by hand exactly as declared (`corral import`): adopted, and marked
            // as corral's by the first change of them, not a change of their own.
            let adopted = remove.is_empty()
                && add.keys().all(|k| k == LABELS_MARKER)
                && !have.contains_key(LABELS_MARKER);
            if !adopted && (!add.is_empty() || !remove.is_empty()) {
                labels.push((machine.as_str(), add, remove));
            }
        }
        let mut availability = Vec::new();
        for (machine, want) in &self.availability {
            let have = nodes
                .get(machine.as_str())
                .map(|n| NodeAvailability::of(n.spec.availability));
            // A node joins active.
            if have.unwrap_or(NodeAvailability::Active) != *want {
                availability.push((machine.as_str(), have, *want));
            }
        }
        Ok(Analysis {
            availability,
            removals,
            nodes,
            leader,
            blank,
            joins,
            role_changes,
            labels,
        })
    }

    /// Demotions in one apply must leave a majority of today's managers (the raft cannot
    /// lose more at once), except one of two, which the other carries while both answer;
    /// and the managers left (those promoted counted) must have a majority that answers,
    /// as Docker requires of each demotion. A refusal says how to get there.
    fn check_quorum(
        &self,
        nodes: &BTreeMap<&str, SwarmNode>,
        changes: &[(&str, NodeRole)],
    ) -> Result<(), FactError> {
        let managers: Vec<(&str, &SwarmNode)> = nodes
            .iter()
            .filter(|(_, n)| n.spec.role == NodeRole::Manager)
            .map(|(m, n)| (*m, n))
            .collect();
        let now = managers.len();
        let demoted: Vec<&str> = changes
            .iter()
            .filter(|(_, role)| *role == NodeRole::Worker)
            .map(|(m, _)| *m)
            .collect();
        if demoted.is_empty() {
            return Ok(());
        }
        let promoted = changes.len() - demoted.len();
        let stay = now - demoted.len().min(now);
        let after = stay + promoted;
        let refuse = |message: String| Err(FactError::new(swarm::NODE_INSPECT_KEY, message));
        let one_of_two = now == 2 && demoted.len() == 1;
        if stay * 2 <= now && !one_of_two {
            let way = match promoted {
                0 => format!("go {}, one apply each", way_down(now, after.max(1))),
                _ => format!(
                    "promote the new managers in one apply first, then go {}, one apply each",
                    way_down(now + promoted, after.max(1))
                ),
            };
            return refuse(format!(
                "{now} managers -> {after}: demoting {} of {now} at once loses the managers' quorum ({} of {now} must stay); {way}",
                demoted.len(),
                now / 2 + 1
            ));
        }
        let silent: Vec<&str> = managers
            .iter()
            .filter(|(m, n)| {
                !demoted.contains(m)
                    && n.manager_status
                        .as_ref()
                        .is_none_or(|s| s.reachability != swarm::Reachability::Reachable)
            })
            .map(|(m, _)| *m)
            .collect();
        let answering = after - silent.len().min(after);
        if answering * 2 <= after {
            let silent = silent.join(", ");
            return refuse(format!(
                "{now} managers -> {after}: {silent} does not answer as a manager, so {answering} of the {after} managers left would: Docker refuses a demotion without such a majority; start Docker on {silent} first, or let {silent} leave the swarm too (no longer listed)"
            ));
        }
        Ok(())
    }
}

/// The way from `now` managers down to `want`, each step one apply that keeps a majority
/// (one of two is the last): `3 -> 2 (with `allow_even_managers: true`), then 2 -> 1`.
fn way_down(now: usize, want: usize) -> String {
    let mut steps = Vec::new();
    let mut count = now;
    while count > want {
        let next = match count {
            2 => 1,
            _ => want.max(count - (count - 1) / 2),
        };
        let even = match next % 2 {
            0 => " (with `allow_even_managers: true`)",
            _ => "",
        };
        steps.push(format!("{count} -> {next}{even}"));
        count = next;
    }
    match steps.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}, then {last}", rest.join(", ")),
        None => format!("{now} -> {want}"),
    }
}

/// The port of the swarm's cluster API, which every node reaches on the managers.
const MANAGER_PORT: u16 = 2377;

/// Where the configuration's firewalls and its swarms disagree: a manager whose input
/// policy is `drop` with no rule opening the cluster API (2377/tcp) to every other member
/// (a `swarm/ports` module whose `managers:` still lists the old managers), so joins and
/// the raft would fail there. Plan warnings, by `swarm/cluster` resource.
pub fn firewall_warnings(config: &dyn super::declared::Declared) -> Vec<(Address, String)> {
    use super::firewall::{Policy, Protocol};
    let selected =
        |selector| -> BTreeSet<&str> { config.select(selector).map(|m| m.name.as_str()).collect() };
    let mut dropping: BTreeSet<&str> = BTreeSet::new();
    // Per firewall rule opening the port: its resource, its machines, and its sources
    // (`None`: any).
    let mut openings = Vec::new();
    for (address, spec) in config.resources() {
        let super::Spec::Firewall(firewall) = spec else {
            continue;
        };
        let machines = selected(&firewall.machines);
        if firewall.input_policy == Some(Policy::Drop) {
            dropping.extend(&machines);
        }
        for (index, rule) in firewall.allow.iter().enumerate() {
            if rule.protocol == Protocol::Tcp && rule.ports.iter().any(|p| p.contains(MANAGER_PORT))
            {
                let sources = firewall.sources.get(index).cloned().flatten();
                openings.push((address, machines.clone(), sources));
            }
        }
    }
    let mut warnings = Vec::new();
    for (address, spec) in config.resources() {
        let super::Spec::SwarmCluster(cluster) = spec else {
            continue;
        };
        let opened_on: BTreeSet<&str> = openings
            .iter()
            .flat_map(|(_, machines, _)| machines.iter().copied())
            .collect();
        for manager in cluster
            .managers
            .iter()
            .filter(|m| dropping.contains(m.as_str()))
        {
            let rules: Vec<_> = openings
                .iter()
                .filter(|(_, machines, _)| machines.contains(manager.as_str()))
                .collect();
            let unreached: Vec<&str> = cluster
                .members_in_order()
                .filter(|member| *member != manager)
                .filter(|member| {
                    let Some(ip) = config.machines().get(member.as_str()).map(|m| m.spec.ip) else {
                        return false;
                    };
                    !rules.iter().any(|(_, _, sources)| match sources {
                        None => true,
                        Some(nets) => nets.iter().any(|net| net.contains(&ip)),
                    })
                })
                .map(String::as_str)
                .collect();
            if unreached.is_empty() {
                continue;
            }
            let now = match opened_on.is_empty() {
                true => "no os/firewall rule opens it on any machine".to_owned(),
                false => {
                    let by: BTreeSet<String> =
                        openings.iter().map(|(a, _, _)| a.to_string()).collect();
                    format!(
                        "{} open{} it on {} only",
                        by.into_iter().collect::<Vec<_>>().join(", "),
                        if openings.len() == 1 { "s" } else { "" },
                        opened_on.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                }
            };
            let message = match rules.is_empty() {
                true => format!(
                    "{manager} is a manager, but its firewall drops {MANAGER_PORT}/tcp (the cluster API: joins, the managers' raft): {now}; list {manager} in the `managers:` input of the swarm/ports module (the managers of {})",
                    address
                ),
                false => format!(
                    "{manager} is a manager, but its firewall lets {MANAGER_PORT}/tcp (the cluster API) in from {} only, not from {}; list every member in the `machines:` input of the swarm/ports module",
                    match rules.len() { 1 => "the rule's sources", _ => "the rules' sources" },
                    unreached.join(", ")
                ),
            };
            warnings.push((address.clone(), message));
        }
    }
    warnings
}

/// Members that say they can answer for the swarm (a manager with control available),
/// `managers` first in their order, then any other member.
pub fn live_managers(managers: &[String], facts: &ClusterFacts) -> Vec<String> {
    let mut candidates: Vec<String> = Vec::new();
    let all = managers
        .iter()
        .chain(facts.members.keys().filter(|m| !managers.contains(m)));
    for machine in all {
        let live = facts
            .members
            .get(machine)
            .and_then(|m| m.swarm_info())
            .is_some_and(|i| i.is_member() && i.control_available);
        if live && !candidates.contains(machine) {
            candidates.push(machine.clone());
        }
    }
    candidates
}

/// For a resource on a swarm that no manager answered for: an error when a member says it
/// is in a swarm already (its managers are down or have lost quorum: planning a create
/// would be wrong); `Ok` when the swarm is still to be made (the same apply creates it).
pub fn no_manager(facts: &ClusterFacts) -> Result<(), FactError> {
    let in_swarm: Vec<&str> = facts
        .members
        .iter()
        .filter(|(_, m)| m.swarm_info().is_some_and(|i| i.is_member()))
        .map(|(machine, _)| machine.as_str())
        .collect();
    if in_swarm.is_empty() {
        return Ok(());
    }
    Err(FactError::new(
        swarm::INFO_KEY,
        format!(
            "{} are in a swarm, but no manager can answer for it (managers down, or quorum lost); corral plans nothing on it until one does",
            in_swarm.join(", ")
        ),
    ))
}

impl SwarmClusterSpec {
    /// The swarm as the resources placed on it see it.
    pub fn scope(&self, name: &str, project: &str) -> SwarmScope {
        SwarmScope {
            cluster: name.to_owned(),
            managers: self.managers.clone(),
            workers: self.workers.clone(),
            project: project.to_owned(),
        }
    }
}

impl ClusterKind for SwarmClusterSpec {
    fn members(&self) -> Vec<String> {
        self.members_in_order().cloned().collect()
    }

    fn machine_references(&self) -> Vec<(&'static str, String)> {
        let managers = self.managers.iter().map(|m| ("managers", m.clone()));
        let workers = self.workers.iter().map(|m| ("workers", m.clone()));
        let labels = self.labels.keys().map(|m| ("labels", m.clone()));
        managers.chain(workers).chain(labels).collect()
    }

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![swarm::info_probe()]
    }

    /// The nodes, and every network and service: what the resources on the swarm plan
    /// from, and this project's objects that are no longer declared.
    fn manager_probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            swarm::node_inspect_probe(),
            swarm::network_inspect_probe(),
            swarm::service_inspect_probe(),
            super::swarm_secret::probe(&self.project),
        ]
    }

    fn manager_candidates(&self, facts: &ClusterFacts) -> Vec<String> {
        live_managers(&self.managers, facts)
    }

    fn orphans(
        &self,
        _name: &str,
        facts: &ClusterFacts,
        declared: &BTreeSet<Address>,
    ) -> Result<Vec<Orphan>, FactError> {
        let Some((_, manager)) = &facts.manager else {
            return Ok(Vec::new());
        };
        let project = &self.project;
        // Stacks and services before the networks they use; secrets and configs last.
        let mut orphans = super::swarm_stack::orphans(manager, project, declared)?;
        orphans.extend(super::swarm_service::orphans(manager, project, declared)?);
        orphans.extend(super::swarm_network::orphans(manager, project, declared)?);
        orphans.extend(super::swarm_secret::orphans(manager, project, declared)?);
        Ok(orphans)
    }

    fn diff(&self, _name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        let analysis = self.analyse(facts)?;
        let mut attributes = Vec::new();
        let not_member = || AttrValue::Scalar("(not in a swarm)".into());
        for machine in &analysis.joins {
            let mut role = role_name(self.role_of(machine)).to_owned();
            if analysis.blank && *machine == self.managers[0] {
                role.push_str(" (initialises the swarm)");
            }
            attributes.push(AttrChange::new(
                *machine,
                not_member(),
                AttrValue::Scalar(role),
            ));
        }
        for (machine, role) in &analysis.role_changes {
            let before = role_name(analysis.nodes[machine].spec.role);
            attributes.push(AttrChange::scalar(*machine, before, role_name(*role)));
        }
        for (machine, add, remove) in &analysis.labels {
            let have = analysis.nodes.get(machine).map(|n| &n.spec.labels);
            let shown = |key: &String| key.as_str() != LABELS_MARKER;
            // Only the marker changes: labels already as configured, now owned by corral.
            if add.keys().chain(remove.iter()).all(|k| !shown(k)) {
                if let Some(keys) = add.get(LABELS_MARKER) {
                    attributes.push(AttrChange::new(
                        format!("{machine} labels managed"),
                        AttrValue::Absent,
                        AttrValue::Scalar(keys.clone()),
                    ));
                }
                continue;
            }
            for (key, value) in add.iter().filter(|(k, _)| shown(k)) {
                let before = have
                    .and_then(|l| l.get(key))
                    .map_or(AttrValue::Absent, |v| AttrValue::Scalar(v.clone()));
                attributes.push(AttrChange::new(
                    format!("{machine} labels.{key}"),
                    before,
                    AttrValue::Scalar(value.clone()),
                ));
            }
            for key in remove.iter().filter(|k| shown(k)) {
                let before = have.and_then(|l| l.get(key)).cloned().unwrap_or_default();
                attributes.push(AttrChange::new(
                    format!("{machine} labels.{key}"),
                    AttrValue::Scalar(before),
                    AttrValue::Absent,
                ));
            }
        }
        for (machine, have, want) in &analysis.availability {
            attributes.push(AttrChange::scalar(
                format!("{machine} availability"),
                have.unwrap_or(NodeAvailability::Active).word(),
                want.word(),
            ));
        }
        for (machine, node) in &analysis.removals {
            let what = match node.spec.role {
                NodeRole::Manager => "(demoted, drained, leaves the swarm, removed)",
                NodeRole::Worker => "(drained, leaves the swarm, removed)",
            };
            attributes.push(AttrChange::new(
                machine.as_str(),
                AttrValue::Scalar(role_name(node.spec.role).to_owned()),
                AttrValue::Scalar(what.into()),
            ));
        }
        // Said in words too: a manager that leaves is demoted first, which the quorum
        // arithmetic counted.
        let demoted_first: Vec<&str> = analysis
            .removals
            .iter()
            .filter(|(_, n)| n.spec.role == NodeRole::Manager)
            .map(|(m, _)| m.as_str())
            .collect();
        let reason = (!demoted_first.is_empty()).then(|| {
            format!(
                "{} no longer listed: demoted to worker first (the other managers keep the quorum), then drained, made to leave and removed",
                demoted_first.join(", ")
            )
        });
        if analysis
            .joins
            .iter()
            .any(|m| !(analysis.blank && *m == self.managers[0]))
        {
            attributes.push(AttrChange::new(
                TOKENS,
                AttrValue::Absent,
                AttrValue::Opaque(KNOWN_AFTER_APPLY.into()),
            ));
        }
        let action = if attributes.is_empty() {
            Action::NoOp
        } else if analysis.blank {
            Action::Create
        } else {
            Action::Update
        };
        Ok(Diff {
            action: Some(action),
            attributes,
            reason,
        })
    }

    fn steps(&self, _name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        let analysis = self.analyse(facts)?;
        let ip =
            |machine: &str| {
                facts.members.get(machine).map(|m| m.ip).ok_or_else(|| {
                    FactError::new(swarm::INFO_KEY, format!("{machine} was not read"))
                })
            };
        let leader = analysis.leader.clone();
        let leader_ip = ip(&leader)?;
        let mut steps = Vec::new();
        let on = |machine: &str, description: String, script: String, produces: Option<String>| {
            ClusterStep {
                machine: machine.to_owned(),
                step: Step {
                    description,
                    script,
                },
                produces,
                always: false,
            }
        };
        // Roles whose join token this apply reads: rotated once the joins are done.
        let mut read: BTreeSet<&str> = BTreeSet::new();
        for machine in &analysis.joins {
            let address = ip(machine)?;
            if analysis.blank && *machine == self.managers[0] {
                let address = quote(&address.to_string());
                steps.push(on(
                    machine,
                    format!("initialise the swarm on {machine}"),
                    format!("set -e\ndocker swarm init --advertise-addr {address} --listen-addr {address}:2377\n{}", wait_active()),
                    None,
                ));
                continue;
            }
            let role = role_name(self.role_of(machine));
            read.insert(role);
            let token = format!("token-{role}");
            steps.push(on(
                &leader,
                format!("read the {role} join token"),
                format!("docker swarm join-token -q {role}\n"),
                Some(token.clone()),
            ));
            steps.push(on(
                machine,
                format!("join {machine} to the swarm as a {role}"),
                join_script(&placeholder(&token), address, leader_ip, DOCKER_SOCKET),
                None,
            ));
        }
        // A token read once is dead once the joins are done, whether or not they worked.
        if !read.is_empty() {
            let rotate: String = read
                .iter()
                .map(|role| format!("  docker swarm join-token --rotate -q {role} >/dev/null\n"))
                .collect();
            steps.push(ClusterStep {
                always: true,
                ..on(
                    &leader,
                    format!(
                        "rotate the {} join token{}",
                        read.iter().copied().collect::<Vec<_>>().join(" and "),
                        if read.len() > 1 { "s" } else { "" }
                    ),
                    // A leader that never became a manager (its init failed) has no tokens.
                    format!("set -e\nif [ \"$(docker info --format '{{{{.Swarm.ControlAvailable}}}}')\" = true ]; then\n{rotate}fi\n"),
                    None,
                )
            });
        }
        let node_id = |machine: &str| -> String {
            match analysis.nodes.get(machine) {
                Some(node) => quote(&node.id),
                None => placeholder(&format!("node-{machine}")),
            }
        };
        // Node IDs of machines that joined in this apply, for the manager's updates.
        let updated: BTreeSet<&str> = analysis
            .labels
            .iter()
            .map(|(m, _, _)| *m)
            .chain(analysis.availability.iter().map(|(m, _, _)| *m))
            .collect();
        for machine in updated {
            if !analysis.nodes.contains_key(machine) {
                steps.push(on(
                    machine,
                    format!("read {machine}'s node ID"),
                    "docker info --format '{{.Swarm.NodeID}}'\n".into(),
                    Some(format!("node-{machine}")),
                ));
            }
        }
        for (machine, role) in &analysis.role_changes {
            let verb = match role {
                NodeRole::Manager => "promote",
                NodeRole::Worker => "demote",
            };
            // One at a time, each a reachable manager (or gone from the raft) before the next.
            let until = match role {
                NodeRole::Manager => "reachable",
                NodeRole::Worker => "",
            };
            let id = node_id(machine);
            steps.push(on(
                &leader,
                format!("{verb} {machine}"),
                format!(
                    "set -e\n{}{}",
                    retried(&format!("docker node {verb} {id}")),
                    wait_until(
                        &format!("[ \"$(docker node inspect {id} --format '{{{{if .ManagerStatus}}}}{{{{.ManagerStatus.Reachability}}}}{{{{end}}}}')\" = '{until}' ]"),
                        &format!("corral: {machine} did not settle as a {}", role_name(*role)),
                    )
                ),
                None,
            ));
        }
        for (machine, add, remove) in &analysis.labels {
            let mut args = String::new();
            for (key, value) in add {
                args.push_str(&format!(
                    " --label-add {}",
                    quote(&format!("{key}={value}"))
                ));
            }
            for key in remove {
                args.push_str(&format!(" --label-rm {}", quote(key)));
            }
            steps.push(on(
                &leader,
                format!("set {machine}'s node labels"),
                retried(&format!("docker node update{args} {}", node_id(machine))),
                None,
            ));
        }
        for (machine, _, want) in &analysis.availability {
            steps.push(on(
                &leader,
                format!("set {machine}'s availability to {}", want.word()),
                retried(&format!(
                    "docker node update --availability {} {}",
                    want.word(),
                    node_id(machine)
                )),
                None,
            ));
        }
        // Nodes no longer members: a manager is demoted first (the quorum check counted
        // it), then drained, made to leave, and removed once the managers see it down.
        for (machine, node) in &analysis.removals {
            let id = quote(&node.id);
            if node.spec.role == NodeRole::Manager {
                steps.push(on(
                    &leader,
                    format!("demote {machine} before it leaves the swarm"),
                    format!(
                        "set -e\n{}{}",
                        retried(&format!("docker node demote {id}")),
                        wait_until(
                            &format!("[ -z \"$(docker node inspect {id} --format '{{{{if .ManagerStatus}}}}x{{{{end}}}}')\" ]"),
                            &format!("corral: {machine} stayed a manager"),
                        )
                    ),
                    None,
                ));
            }
            steps.push(on(
                &leader,
                format!("drain {machine}"),
                retried(&format!("docker node update --availability drain {id}")),
                None,
            ));
            // A demoted manager learns its new role after the leader has recorded it; it
            // refuses to leave until it has (recorded on a lab: "…participating as a
            // manager").
            steps.push(on(
                machine,
                format!("{machine} leaves the swarm"),
                format!(
                    "set -e\n{}docker swarm leave\n",
                    wait_until(
                        "[ \"$(docker info --format '{{.Swarm.ControlAvailable}}')\" = false ]",
                        &format!("corral: {machine} still acts as a manager after its demotion"),
                    )
                ),
                None,
            ));
            steps.push(on(
                &leader,
                format!("remove {machine} from the swarm"),
                format!(
                    "set -e\n{}docker node rm {id}\n",
                    wait_until(
                        &format!("[ \"$(docker node inspect {id} --format '{{{{.Status.State}}}}')\" = down ]"),
                        &format!("corral: the managers never saw {machine} down"),
                    )
                ),
                None,
            ));
        }
        Ok(steps)
    }

    /// The members of a swarm that answers hold the project's records: its objects.
    fn members_hold_records(&self) -> bool {
        true
    }

    fn rolling_keeps(&self) -> Option<super::Keeps> {
        Some(super::Keeps::Managers {
            members: self.managers.iter().chain(&self.workers).cloned().collect(),
            managers: self.managers.clone(),
        })
    }
}

/// Shell lines that run `command` (a change of a node), again while the managers answer
/// "update out of sequence": the node changed between the CLI's read of it and its write
/// (recorded on a lab: a drain right after a demotion, whose role change the managers were
/// still writing), which swarmkit means to be retried. At most ten tries, a second apart;
/// any other failure fails at once, with what the CLI said.
fn retried(command: &str) -> String {
    format!(
        "n=0\nuntil out=$({command} 2>&1); do\n  case $out in *'update out of sequence'*) ;; *) printf '%s\\n' \"$out\"; exit 1 ;; esac\n  n=$((n + 1)); [ \"$n\" -lt 10 ] || {{ printf '%s\\n' \"$out\"; exit 1; }}\n  sleep 1\ndone\nprintf '%s\\n' \"$out\"\n"
    )
}

/// Shell lines that wait, a second at a time and for at most a minute, until `condition`
/// (a shell test) holds, and otherwise fail saying `failure`.
fn wait_until(condition: &str, failure: &str) -> String {
    format!(
        "i=0\nuntil {condition}; do\n  i=$((i + 1)); [ \"$i\" -le 60 ] || {{ echo {}; exit 1; }}\n  sleep 1\ndone\n",
        quote(failure)
    )
}

/// Every join ends with the node active, or fails.
fn wait_active() -> String {
    wait_until(
        "[ \"$(docker info --format '{{.Swarm.LocalNodeState}}')\" = active ]",
        "corral: the node did not become active in the swarm",
    )
}

/// Where the Docker Engine API answers on a host.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// For a host without curl: POSTs stdin to the path `argv[2]` on the socket `argv[1]` and
/// prints the reply's body, a newline and its status, as `curl -w '\n%{http_code}'` does.
const PYTHON_POST: &str = r#"import http.client, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])
try:
    c = Unix("localhost")
    c.request("POST", sys.argv[2], sys.stdin.buffer.read(), {"Content-Type": "application/json"})
    r = c.getresponse()
    sys.stdout.write(r.read().decode("utf-8", "replace") + "\n" + str(r.status))
except OSError as e:
    sys.stderr.write("corral: cannot reach the Docker daemon at %s: %s\n" % (sys.argv[1], e))
    sys.exit(1)
"#;

/// Shell function `corral_engine_post PATH`: POSTs its stdin to the Docker Engine API at
/// `socket`, with curl or else python3, and sets `corral_status` (the HTTP status) and
/// `corral_body`. The body never reaches a command line: it stays on stdin.
fn engine_post(socket: &str) -> String {
    let socket = quote(socket);
    let python = quote(PYTHON_POST);
    format!(
        r#"corral_engine_post() {{
  if command -v curl >/dev/null 2>&1; then
    corral_reply=$(curl -sS --unix-socket {socket} -H 'Content-Type: application/json' --data-binary @- -w '\n%{{http_code}}' "http://localhost$1") || {{ echo 'corral: curl could not reach the Docker daemon at '{socket}; return 1; }}
  elif command -v python3 >/dev/null 2>&1; then
    corral_reply=$(python3 -c {python} {socket} "$1") || return 1
  else
    echo 'corral: this host has neither curl nor python3; corral needs one of them to call the Docker API, so that no secret is on a command line (install curl)'
    return 1
  fi
  corral_status=${{corral_reply##*[!0-9]}}
  corral_body=${{corral_reply%"$corral_status"}}
}}
"#
    )
}

/// The script that joins a machine at `address` to the swarm of the manager at `leader`,
/// with the token that the shell word `token` holds (a placeholder filled in at apply).
/// The token goes to Docker in the body of `POST /swarm/join` on the daemon's socket, from
/// a here-document: no command line of the host ever holds it, nor does what the step
/// prints. A join that Docker says goes on in the background is waited for, not retried.
fn join_script(token: &str, address: IpAddr, leader: IpAddr, socket: &str) -> String {
    let listen = SocketAddr::new(address, 2377);
    let remote = SocketAddr::new(leader, 2377);
    let post = engine_post(socket);
    let wait_active = wait_active();
    // Only `case` and here-documents see the token: shell syntax, not commands.
    format!(
        r#"set -e
corral_token={token}
case $corral_token in
  SWMTKN-*) ;;
  *) echo 'corral: what the manager printed is not a join token'; exit 1 ;;
esac
case $corral_token in
  *[!A-Za-z0-9-]*) echo 'corral: what the manager printed is not a join token'; exit 1 ;;
esac
{post}corral_engine_post /swarm/join <<CORRAL_JOIN
{{"ListenAddr":"{listen}","AdvertiseAddr":"{address}","RemoteAddrs":["{remote}"],"JoinToken":"$corral_token"}}
CORRAL_JOIN
if [ "$corral_status" != 200 ]; then
  corral_message=$(sed -n 's/^.*"message" *: *"\(.*\)".*$/\1/p' <<CORRAL_REPLY
$corral_body
CORRAL_REPLY
)
  case $corral_message in
    '') corral_message=$corral_body ;;
  esac
  case $corral_message in
    *"$corral_token"*) corral_message='(not shown: it quotes the join token)' ;;
  esac
  case $corral_message in
    *'Timeout was reached before node'*) echo 'corral: Docker goes on joining in the background; waiting for it' ;;
    *) printf 'corral: Docker refused the join (HTTP %s): %s\n' "$corral_status" "$corral_message"; exit 1 ;;
  esac
fi
{wait_active}"#
    )
}

#[cfg(test)]
mod tests;
