//! Stage 2: resource instances and the order between them.
//!
//! One node per resource instance (`kind.name[machine]` for per-machine kinds). Edges point
//! from what must happen first to what comes after. They come from `depends_on` and from
//! what the kinds know: on one machine, packages come before files and sysctls, which come
//! before services. To keep the graph linear in size, a group of nodes that must all finish
//! before another group starts is joined through one *barrier* node instead of an edge for
//! every pair. A cycle is an error that names every address in it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::address::Address;
use crate::base::diagnostic::{ConfigError, ConfigErrors, Origin};
use crate::config::Config;
use crate::kinds::Placement;

/// One instance of a resource.
#[derive(Debug, Clone)]
pub struct Instance {
    pub address: Address,
    /// Index into `Config::resources`.
    pub resource: usize,
    pub machine: Option<String>,
    pub rank: u8,
}

/// A node of the graph.
#[derive(Debug, Clone)]
pub enum Node {
    /// Index into [`ResourceGraph::instances`].
    Instance(usize),
    /// Joins "all of these before any of those"; does nothing itself.
    Barrier,
}

/// Why one node comes before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Only order (packages before files before services on a machine): when the first
    /// fails, the second still runs.
    Order,
    /// A real dependency (`depends_on`): when the first fails, the second is skipped.
    Depends,
    /// One machine after another (a Docker daemon restart): when the first fails, the
    /// second is skipped, but `--target` and `--exclude` do not follow it (a target's
    /// restart does not bring the other machines' along).
    Serial,
}

/// The rank of cluster instances: the walk takes them after the machines' own work when
/// both are ready. Their order against per-machine resources comes from `depends_on`.
pub const CLUSTER_RANK: u8 = 10;

/// Ready nodes are taken lowest rank first, then by address (its place among all the
/// instances' addresses, so that the heap compares integers, not strings); barriers after
/// instances.
type WalkKey = (u8, u8, u64, usize);

/// Each instance's place in address order, as a number that compares as its address
/// does (equal addresses share one): its resource's rank among the resources' kinds and
/// names, then its machine's among the machines, no machine first. Only the few
/// resources and machines are sorted, not every instance's address.
fn places(instances: &[Instance]) -> Vec<u64> {
    // The instances of one resource share its kind and name; each distinct name and
    // machine gets a slot, ranked once all are known.
    let (mut names, mut name_slots) = (Vec::<(&str, &str)>::new(), HashMap::new());
    let (mut machines, mut machine_slots) = (Vec::<&str>::new(), HashMap::new());
    let mut last: Option<(usize, usize)> = None;
    let mut slots: Vec<(usize, Option<usize>)> = Vec::with_capacity(instances.len());
    for instance in instances {
        let name = match last {
            Some((resource, name)) if resource == instance.resource => name,
            _ => *name_slots.entry(instance.resource).or_insert_with(|| {
                names.push((&instance.address.kind, &instance.address.name));
                names.len() - 1
            }),
        };
        last = Some((instance.resource, name));
        let machine = instance.address.machine.as_deref().map(|machine| {
            *machine_slots.entry(machine).or_insert_with(|| {
                machines.push(machine);
                machines.len() - 1
            })
        });
        slots.push((name, machine));
    }
    let name_ranks = dense_ranks(&names);
    let machine_ranks = dense_ranks(&machines);
    let per_name = machines.len() as u64 + 1;
    slots
        .into_iter()
        .map(|(name, machine)| {
            name_ranks[name] * per_name + machine.map_or(0, |m| machine_ranks[m] + 1)
        })
        .collect()
}

/// The rank of each of `items` in their order, equal items sharing a rank.
fn dense_ranks<T: Ord>(items: &[T]) -> Vec<u64> {
    let mut sorted: Vec<usize> = (0..items.len()).collect();
    sorted.sort_by(|a, b| items[*a].cmp(&items[*b]));
    let mut ranks = vec![0; items.len()];
    for (at, &item) in sorted.iter().enumerate() {
        ranks[item] = match at {
            0 => 0,
            _ if items[sorted[at - 1]] == items[item] => ranks[sorted[at - 1]],
            _ => ranks[sorted[at - 1]] + 1,
        };
    }
    ranks
}

/// A deterministic topological walk of the graph: a node becomes ready when every node
/// before it is done. The plan's order and apply's schedule are the same walk.
pub struct Walk<'g> {
    graph: &'g ResourceGraph,
    indegree: Vec<usize>,
    /// Each instance's place in address order ([`places`]).
    place: Vec<u64>,
    ready: BinaryHeap<Reverse<WalkKey>>,
}

impl<'g> Walk<'g> {
    pub fn new(graph: &'g ResourceGraph) -> Self {
        let indegree: Vec<usize> = graph
            .graph
            .node_indices()
            .map(|n| {
                graph
                    .graph
                    .neighbors_directed(n, Direction::Incoming)
                    .count()
            })
            .collect();
        let place = places(&graph.instances);
        let mut walk = Walk {
            graph,
            indegree,
            place,
            ready: BinaryHeap::new(),
        };
        for node in graph.graph.node_indices() {
            if walk.indegree[node.index()] == 0 {
                walk.push(node);
            }
        }
        walk
    }

    fn push(&mut self, node: NodeIndex) {
        let key = match self.graph.graph[node] {
            Node::Instance(i) => (self.graph.instances[i].rank, 0, self.place[i], node.index()),
            Node::Barrier => (0, 1, 0, node.index()),
        };
        self.ready.push(Reverse(key));
    }

    /// The next ready node, if any.
    pub fn next_ready(&mut self) -> Option<NodeIndex> {
        self.ready
            .pop()
            .map(|Reverse((_, _, _, index))| NodeIndex::new(index))
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Marks `node` done (whatever its outcome), making ready what only waited for it.
    pub fn done(&mut self, node: NodeIndex) {
        for next in self
            .graph
            .graph
            .neighbors_directed(node, Direction::Outgoing)
        {
            self.indegree[next.index()] -= 1;
            if self.indegree[next.index()] == 0 {
                self.push(next);
            }
        }
    }
}

/// Which instances to plan (`--target`, `--exclude`, `--limit`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Plan only these (and what they depend on); empty means everything.
    pub targets: Vec<Address>,
    /// Leave these (and what depends on them) out.
    pub excludes: Vec<Address>,
    /// Only instances on these machines; empty means every machine.
    pub machines: Vec<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.excludes.is_empty() && self.machines.is_empty()
    }
}

/// The resource graph of a configuration.
#[derive(Debug, Clone, Default)]
pub struct ResourceGraph {
    pub graph: DiGraph<Node, Edge>,
    pub instances: Vec<Instance>,
    /// Node of each instance, by instance index.
    pub nodes: Vec<NodeIndex>,
    /// Instances that `--target` did not select but pulled in as dependencies: why (the
    /// plan says so, so that a targeted plan with more in it does not surprise).
    pub pulled_in: HashMap<Address, String>,
}

impl ResourceGraph {
    /// Builds the graph of every instance in `config`, then keeps what `filter` selects.
    pub fn build(config: &Config, filter: &Filter) -> Result<ResourceGraph, ConfigErrors> {
        let mut graph = ResourceGraph::default();
        let mut by_resource: HashMap<&Address, Vec<usize>> = HashMap::new();
        for (index, resource) in config.resources.iter().enumerate() {
            let mut add = |address: Address, machine: Option<String>, rank: u8| {
                let instance = graph.instances.len();
                graph.instances.push(Instance {
                    address,
                    resource: index,
                    machine,
                    rank,
                });
                let node = graph.graph.add_node(Node::Instance(instance));
                graph.nodes.push(node);
                by_resource
                    .entry(&resource.address)
                    .or_default()
                    .push(instance);
            };
            match resource.spec.placement() {
                Placement::Machines(kind) => {
                    for machine in config.select(kind.selector()) {
                        let address = Address::new(
                            &resource.address.kind,
                            &resource.address.name,
                            Some(&machine.name),
                        );
                        add(address, Some(machine.name.clone()), kind.rank());
                    }
                }
                // One instance for the whole cluster, after what the machines do (rank).
                Placement::Cluster(_) => add(resource.address.clone(), None, CLUSTER_RANK),
            }
        }
        // Explicit first: the per-machine default order yields wherever it contradicts them.
        graph.add_explicit_edges(config, &by_resource);
        let exempt = graph.explicitly_reordered();
        graph.add_rank_edges(&exempt);
        graph.add_serial_edges(config, &by_resource);
        graph.check_claims(config)?;
        graph.check_cycles(config)?;
        if !filter.is_empty() {
            graph = graph.filtered(filter);
        }
        Ok(graph)
    }

    /// Instances that `depends_on` (directly or not) puts after something of a higher rank
    /// on their machine — a file written once a service runs: the default order would put
    /// them before it, contradicting the explicit edge, so they are not placed before the
    /// higher ranks (they still come after the lower ones).
    fn explicitly_reordered(&self) -> HashSet<usize> {
        let mut exempt = HashSet::new();
        for (index, instance) in self.instances.iter().enumerate() {
            // What this instance depends on, through `depends_on` edges (and barriers).
            let start = self.nodes[index];
            let mut stack: Vec<NodeIndex> = self
                .graph
                .edges_directed(start, Direction::Incoming)
                .filter(|e| *e.weight() == Edge::Depends)
                .map(|e| e.source())
                .collect();
            let mut seen: HashSet<NodeIndex> = HashSet::new();
            while let Some(node) = stack.pop() {
                if !seen.insert(node) {
                    continue;
                }
                if let Node::Instance(i) = self.graph[node] {
                    let before = &self.instances[i];
                    if before.machine == instance.machine && before.rank > instance.rank {
                        exempt.insert(index);
                    }
                }
                stack.extend(
                    self.graph
                        .edges_directed(node, Direction::Incoming)
                        .filter(|e| *e.weight() == Edge::Depends)
                        .map(|e| e.source()),
                );
            }
        }
        exempt
    }

    /// On each machine, every instance of one rank after every instance of the lower
    /// ranks; instances `depends_on` puts after a higher rank (`exempt`) come after the lower
    /// ranks but before nothing. These edges only order: a failure does not skip across
    /// them, and they never close a cycle (only explicit edges can).
    fn add_rank_edges(&mut self, exempt: &HashSet<usize>) {
        let mut by_machine: BTreeMap<&str, BTreeMap<u8, Vec<usize>>> = BTreeMap::new();
        for (index, instance) in self.instances.iter().enumerate() {
            if let Some(machine) = &instance.machine {
                by_machine
                    .entry(machine)
                    .or_default()
                    .entry(instance.rank)
                    .or_default()
                    .push(index);
            }
        }
        let mut edges = Vec::new();
        for ranks in by_machine.values() {
            // The latest rank's instances that later ranks wait for.
            let mut frontier: Vec<usize> = Vec::new();
            for group in ranks.values() {
                if !frontier.is_empty() {
                    edges.push((frontier.clone(), group.clone()));
                }
                let waited_for: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|i| !exempt.contains(i))
                    .collect();
                if !waited_for.is_empty() {
                    frontier = waited_for;
                }
            }
        }
        for (before, after) in edges {
            self.join(&before, &after, Edge::Order);
        }
    }

    /// The instances of every rolling resource (see [`crate::rolling`]: a Docker daemon
    /// restart, an sshd reload, or any per-machine resource with `lifecycle.rolling`),
    /// chained per kind in machine order, whichever resource they belong to: two resources
    /// selecting different managers must not restart them together. With `parallel: N`,
    /// each instance waits for the one N places before it (the smallest N of the kind's
    /// resources), and is skipped when it failed (a failed restart must not spread).
    fn add_serial_edges(&mut self, config: &Config, by_resource: &HashMap<&Address, Vec<usize>>) {
        let mut by_kind: BTreeMap<&str, (usize, Vec<usize>)> = BTreeMap::new();
        for resource in &config.resources {
            let Placement::Machines(kind) = resource.spec.placement() else {
                continue;
            };
            let Some(rolling) = resource.lifecycle.rolling.or_else(|| kind.rolling()) else {
                continue;
            };
            if let Some(instances) = by_resource.get(&resource.address) {
                let (parallel, chain) = by_kind
                    .entry(resource.spec.kind())
                    .or_insert((usize::MAX, Vec::new()));
                *parallel = (*parallel).min(rolling.parallel.get() as usize);
                chain.extend(instances);
            }
        }
        for (parallel, chain) in by_kind.into_values() {
            // Machine by machine: every instance on a machine before those on the machine
            // `parallel` places later. Instances on one machine are not chained to each
            // other (a machine runs one step at a time anyway, in the order their own
            // edges give: chaining them by name closed cycles with `depends_on`).
            let mut by_machine: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for index in chain {
                let machine = self.instances[index].machine.as_deref().unwrap_or_default();
                by_machine.entry(machine).or_default().push(index);
            }
            let groups: Vec<Vec<usize>> = by_machine.into_values().collect();
            for (before, after) in groups.iter().zip(groups.iter().skip(parallel)) {
                self.join(before, after, Edge::Serial);
            }
        }
    }

    /// Edges so that every instance in `before` precedes every one in `after`: direct edges
    /// when one side has a single instance, else through a barrier (linear either way).
    fn join(&mut self, before: &[usize], after: &[usize], edge: Edge) {
        if before.len() == 1 || after.len() == 1 {
            for &b in before {
                for &a in after {
                    self.graph.add_edge(self.nodes[b], self.nodes[a], edge);
                }
            }
            return;
        }
        let barrier = self.graph.add_node(Node::Barrier);
        for &b in before {
            self.graph.add_edge(self.nodes[b], barrier, edge);
        }
        for &a in after {
            self.graph.add_edge(barrier, self.nodes[a], edge);
        }
    }

    /// `depends_on`: a per-machine instance depends on the same machine's instance of the
    /// target when there is one, otherwise on every instance of the target.
    fn add_explicit_edges(&mut self, config: &Config, by_resource: &HashMap<&Address, Vec<usize>>) {
        let mut all_of: HashMap<Address, NodeIndex> = HashMap::new();
        for resource in &config.resources {
            let Some(dependents) = by_resource.get(&resource.address) else {
                continue;
            };
            for target in resource.depends_on.iter().chain(&resource.implied) {
                let Some(candidates) = by_resource.get(&target.resource()) else {
                    continue;
                };
                let candidates: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&c| target.covers(&self.instances[c].address))
                    .collect();
                // The target's instance on each machine, for same-machine edges.
                let on_machine: HashMap<&str, usize> = if target.machine.is_none() {
                    candidates
                        .iter()
                        .filter_map(|&c| Some((self.instances[c].machine.as_deref()?, c)))
                        .collect()
                } else {
                    HashMap::new()
                };
                let mut same = Vec::new();
                let mut unmatched = Vec::new();
                for &dependent in dependents {
                    let machine = self.instances[dependent].machine.as_deref();
                    match machine.and_then(|m| on_machine.get(m)) {
                        Some(&c) => same.push((c, dependent)),
                        None => unmatched.push(dependent),
                    }
                }
                for (c, dependent) in same {
                    self.graph
                        .add_edge(self.nodes[c], self.nodes[dependent], Edge::Depends);
                }
                if unmatched.is_empty() || candidates.is_empty() {
                    continue;
                }
                if candidates.len() == 1 || unmatched.len() == 1 {
                    self.join(&candidates, &unmatched, Edge::Depends);
                } else {
                    let barrier = *all_of.entry(target.clone()).or_insert_with(|| {
                        let barrier = self.graph.add_node(Node::Barrier);
                        for &c in &candidates {
                            self.graph.add_edge(self.nodes[c], barrier, Edge::Depends);
                        }
                        barrier
                    });
                    for &d in &unmatched {
                        self.graph.add_edge(barrier, self.nodes[d], Edge::Depends);
                    }
                }
            }
        }
    }

    /// Two instances on one machine must not manage the same thing (a file, a sysctl key, a
    /// package, a unit) differently: each apply would undo the other, and no plan would
    /// ever be empty.
    fn check_claims(&self, config: &Config) -> Result<(), ConfigErrors> {
        // Claims are the same on every machine: computed once per resource.
        let claims: Vec<Vec<crate::kinds::Claim>> = config
            .resources
            .iter()
            .map(|r| match r.spec.placement() {
                Placement::Machines(kind) => kind.claims(&r.address.name),
                // Cluster resources claim nothing on a machine.
                Placement::Cluster(_) => Vec::new(),
            })
            .collect();
        // Only a key claimed in two different states can be claimed differently on a
        // machine: the rest are not looked at per instance (at fleet size that was most of
        // building the graph).
        let mut states: HashMap<&str, &str> = HashMap::new();
        let mut contested: HashSet<&str> = HashSet::new();
        for claim in claims.iter().flatten() {
            let state = states.entry(&claim.key).or_insert(&claim.state);
            if *state != claim.state {
                contested.insert(&claim.key);
            }
        }
        let claims: Vec<Vec<&crate::kinds::Claim>> = claims
            .iter()
            .map(|c| {
                c.iter()
                    .filter(|c| contested.contains(c.key.as_str()))
                    .collect()
            })
            .collect();
        let mut owners: HashMap<(&str, &str), (usize, &str)> = HashMap::new();
        let mut reported = HashSet::new();
        let mut errors = ConfigErrors::default();
        for (index, instance) in self.instances.iter().enumerate() {
            if claims[instance.resource].is_empty() {
                continue;
            }
            let resource = &config.resources[instance.resource];
            let Some(machine) = instance.machine.as_deref() else {
                continue;
            };
            for claim in &claims[instance.resource] {
                match owners.entry((machine, claim.key.as_str())) {
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert((index, claim.state.as_str()));
                    }
                    std::collections::hash_map::Entry::Occupied(slot) => {
                        let (first, state) = slot.get();
                        let first_resource = self.instances[*first].resource;
                        if *state == claim.state.as_str() || first_resource == instance.resource {
                            continue;
                        }
                        if !reported.insert((first_resource, instance.resource, claim.key.as_str()))
                        {
                            continue;
                        }
                        let other = &config.resources[first_resource];
                        // The settings that name the thing (`path: /etc/motd`).
                        let thing = claim.key.split_once(' ').map_or("", |(_, thing)| thing);
                        errors.push(
                            ConfigError::at(
                                &resource.origin_of_value(thing),
                                format!(
                                    "{} and {} both manage {} (on {machine}), differently",
                                    resource.address, other.address, claim.key
                                ),
                                "second owner",
                            )
                            .with_help(format!(
                                "one resource may manage each file, sysctl key, package or unit; make them agree or remove one (the other is at {})",
                                other.origin_of_value(thing)
                            )),
                        );
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_cycles(&self, config: &Config) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::default();
        for component in tarjan_scc(&self.graph) {
            let cyclic = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&n| self.graph.contains_edge(n, n));
            if !cyclic {
                continue;
            }
            let mut addresses: Vec<&Address> = component
                .iter()
                .filter_map(|&n| match self.graph[n] {
                    Node::Instance(i) => Some(&self.instances[i].address),
                    Node::Barrier => None,
                })
                .collect();
            addresses.sort();
            let first = addresses
                .first()
                .and_then(|a| self.instances.iter().find(|i| &&i.address == a))
                .map(|i| &config.resources[i.resource]);
            let list = addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let message = format!("dependency cycle between {list}");
            let error = match first {
                Some(resource) => {
                    let span = resource.node.get("depends_on").map_or(resource.origin.span, |n| n.span);
                    ConfigError::at(
                        &Origin {
                            file: resource.origin.file.clone(),
                            span,
                        },
                        message,
                        "part of the cycle",
                    )
                }
                None => ConfigError::plain(message),
            }
            .with_help("remove one of the `depends_on` entries that close the cycle (kinds also order packages → files/sysctls → services on each machine)");
            errors.push(error);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The subgraph `filter` selects: targets and what they depend on, minus excluded
    /// instances and their dependents, on the limited machines.
    fn filtered(&self, filter: &Filter) -> ResourceGraph {
        let on_machine = |i: &Instance| {
            filter.machines.is_empty()
                || i.machine
                    .as_ref()
                    .is_some_and(|m| filter.machines.contains(m))
        };
        let mut keep: HashSet<NodeIndex> = HashSet::new();
        let mut pulled_in = HashMap::new();
        if filter.targets.is_empty() {
            keep.extend(self.graph.node_indices());
        } else {
            // Each node with the instance that needs it (none for a target).
            let mut stack: Vec<(NodeIndex, Option<usize>)> = self
                .instances
                .iter()
                .enumerate()
                .filter(|(_, i)| filter.targets.iter().any(|t| t.covers(&i.address)))
                .map(|(index, _)| (self.nodes[index], None))
                .collect();
            let mut needed_by: HashMap<usize, usize> = HashMap::new();
            while let Some((node, by)) = stack.pop() {
                if !keep.insert(node) {
                    continue;
                }
                let by = match self.graph[node] {
                    Node::Instance(i) => {
                        if let Some(by) = by {
                            needed_by.insert(i, by);
                        }
                        Some(i)
                    }
                    Node::Barrier => by,
                };
                stack.extend(
                    self.linked(node, Direction::Incoming)
                        .into_iter()
                        .map(|n| (n, by)),
                );
            }
            pulled_in = needed_by
                .iter()
                .map(|(&i, &by)| {
                    // The target at the end of the chain of dependents.
                    let mut target = by;
                    while let Some(&next) = needed_by.get(&target) {
                        target = next;
                    }
                    let dependent = &self.instances[by].address;
                    let why = if target == by {
                        format!(
                            "also planned because {dependent}, selected by --target, depends on it"
                        )
                    } else {
                        format!(
                            "also planned because {dependent} depends on it, for --target {}",
                            self.instances[target].address
                        )
                    };
                    (self.instances[i].address.clone(), why)
                })
                .collect();
        }
        let mut stack: Vec<NodeIndex> = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| filter.excludes.iter().any(|e| e.covers(&i.address)) || !on_machine(i))
            .map(|(index, _)| self.nodes[index])
            .collect();
        let mut dropped = HashSet::new();
        while let Some(node) = stack.pop() {
            if dropped.insert(node) {
                // Dependents of an excluded instance go too, but not those of an instance
                // on another machine: --limit only narrows where corral works.
                if let Node::Instance(i) = self.graph[node] {
                    if !on_machine(&self.instances[i]) {
                        continue;
                    }
                }
                stack.extend(self.linked(node, Direction::Outgoing));
            }
        }
        let mut result = ResourceGraph {
            pulled_in,
            ..ResourceGraph::default()
        };
        let mut map = HashMap::new();
        for node in self.graph.node_indices() {
            if !keep.contains(&node) || dropped.contains(&node) {
                continue;
            }
            let new = match &self.graph[node] {
                Node::Instance(i) => {
                    let index = result.instances.len();
                    result.instances.push(self.instances[*i].clone());
                    let new = result.graph.add_node(Node::Instance(index));
                    result.nodes.push(new);
                    new
                }
                Node::Barrier => result.graph.add_node(Node::Barrier),
            };
            map.insert(node, new);
        }
        for edge in self.graph.raw_edges() {
            if let (Some(&a), Some(&b)) = (map.get(&edge.source()), map.get(&edge.target())) {
                result.graph.add_edge(a, b, edge.weight);
            }
        }
        result
    }

    /// Nodes after `node` that its failure makes skip: its dependents and, for a serial
    /// kind, the next machine's instance.
    pub fn skipped_after(&self, node: NodeIndex) -> Vec<NodeIndex> {
        self.graph
            .edges_directed(node, Direction::Outgoing)
            .filter(|e| matches!(e.weight(), Edge::Depends | Edge::Serial))
            .map(|e| e.target())
            .collect()
    }

    /// Nodes joined to `node` by real dependencies (not mere ordering) in `direction`.
    pub fn linked(&self, node: NodeIndex, direction: Direction) -> Vec<NodeIndex> {
        self.graph
            .edges_directed(node, direction)
            .filter(|e| *e.weight() == Edge::Depends)
            .map(|e| match direction {
                Direction::Incoming => e.source(),
                Direction::Outgoing => e.target(),
            })
            .collect()
    }

    /// Instance indices in apply order: a topological order that, among the instances ready
    /// at the same time, takes lower ranks first, then addresses in order. Deterministic.
    pub fn apply_order(&self) -> Vec<usize> {
        let mut walk = Walk::new(self);
        let mut order = Vec::with_capacity(self.instances.len());
        while let Some(node) = walk.next_ready() {
            if let Node::Instance(i) = self.graph[node] {
                order.push(i);
            }
            walk.done(node);
        }
        order
    }

    /// The graph in Graphviz DOT; barriers are drawn as points.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph corral {\n  rankdir=LR;\n  node [shape=box];\n");
        let name = |n: NodeIndex| match self.graph[n] {
            Node::Instance(i) => format!("\"{}\"", self.instances[i].address),
            Node::Barrier => format!("\"barrier{}\"", n.index()),
        };
        for node in self.graph.node_indices() {
            match self.graph[node] {
                Node::Instance(_) => {
                    let _ = writeln!(dot, "  {};", name(node));
                }
                Node::Barrier => {
                    let _ = writeln!(dot, "  {} [shape=point];", name(node));
                }
            }
        }
        let mut edges: Vec<(String, String, Edge)> = self
            .graph
            .raw_edges()
            .iter()
            .map(|e| (name(e.source()), name(e.target()), e.weight))
            .collect();
        edges.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        for (a, b, edge) in edges {
            let style = match edge {
                Edge::Order => " [style=dashed]",
                Edge::Depends => "",
                Edge::Serial => " [style=bold]",
            };
            let _ = writeln!(dot, "  {a} -> {b}{style};");
        }
        dot.push_str("}\n");
        dot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, LoadOptions};

    fn load_yaml(yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let inventory = "kind: infrastructure/machine\nname: a\nspecification: { hostname: a, ip: 10.0.0.1 }\n---\nkind: infrastructure/machine\nname: b\nspecification: { hostname: b, ip: 10.0.0.2 }\n---\n";
        std::fs::write(&path, format!("{inventory}{yaml}")).unwrap();
        config::load(&[path], &LoadOptions::default()).unwrap()
    }

    fn graph(yaml: &str, filter: &Filter) -> (Config, ResourceGraph) {
        let config = load_yaml(yaml);
        let graph = ResourceGraph::build(&config, filter).unwrap();
        (config, graph)
    }

    /// An instance's place compares with any other's as their addresses do, equal
    /// addresses sharing one: on the examples, and on instances made out of order, with a
    /// cluster instance (no machine) and one address twice.
    #[test]
    fn places_compare_as_addresses_do() {
        let root = std::path::Path::new(corral_core::testing::REPOSITORY);
        let paths = [root.join("examples"), root.join("fixtures/inventory.yaml")];
        let config = config::load(&paths, &LoadOptions::default()).unwrap();
        let examples = ResourceGraph::build(&config, &Filter::default())
            .unwrap()
            .instances;
        let instance = |resource, kind: &str, name: &str, machine: Option<&str>| Instance {
            address: Address::new(kind, name, machine),
            resource,
            machine: machine.map(str::to_owned),
            rank: 0,
        };
        let made = vec![
            instance(0, "os/file", "motd", Some("n2")),
            instance(0, "os/file", "motd", Some("n10")),
            instance(1, "os/file", "issue", Some("n2")),
            instance(2, "swarm/cluster", "main", None),
            instance(0, "os/file", "motd", Some("a")),
            instance(3, "os/file", "motd", Some("n2")),
            instance(4, "os/file", "issue", Some("n1")),
        ];
        for instances in [examples, made] {
            assert!(instances.len() > 5);
            let places = places(&instances);
            for (a, first) in instances.iter().enumerate() {
                for (b, second) in instances.iter().enumerate() {
                    assert_eq!(
                        places[a].cmp(&places[b]),
                        first.address.cmp(&second.address),
                        "{} against {}",
                        first.address,
                        second.address
                    );
                }
            }
        }
    }

    fn order(graph: &ResourceGraph) -> Vec<String> {
        graph
            .apply_order()
            .into_iter()
            .map(|i| graph.instances[i].address.to_string())
            .collect()
    }

    /// Docker daemons restart one machine at a time, across resources: two resources
    /// selecting different machines (managers, say) never restart them together; a swarm
    /// forms after them.
    #[test]
    fn daemon_restarts_are_one_machine_at_a_time_across_resources() {
        let yaml = "kind: docker/daemon\nname: za\nspecification: { machines: [a], settings: { icc: false } }\n---\nkind: docker/daemon\nname: zb\nspecification: { machines: [b], settings: { debug: true } }\n---\nkind: swarm/cluster\nname: main\nspecification: { managers: [a], workers: [b] }\n";
        let (_, graph) = graph(yaml, &Filter::default());
        let node = |address: &str| {
            graph.nodes[graph
                .instances
                .iter()
                .position(|i| i.address.to_string() == address)
                .unwrap()]
        };
        let after_a = graph.skipped_after(node("docker/daemon.za[a]"));
        assert!(
            after_a.contains(&node("docker/daemon.zb[b]")),
            "{after_a:?}"
        );
        // A target's restart does not bring the other machine's along.
        let targeted = Filter {
            targets: vec![Address::parse("docker/daemon.zb").unwrap()],
            ..Filter::default()
        };
        let (_, narrowed) = super::tests::graph(yaml, &targeted);
        let kept: Vec<String> = narrowed
            .instances
            .iter()
            .map(|i| i.address.to_string())
            .collect();
        assert_eq!(kept, ["docker/daemon.zb[b]"]);
        let after_b = graph.linked(node("docker/daemon.zb[b]"), Direction::Outgoing);
        assert!(after_b.contains(&node("swarm/cluster.main")), "{after_b:?}");
    }

    /// Kinds that restart something roll by default (an sshd reload one machine after the
    /// other); `lifecycle.rolling` makes any per-machine resource roll, and its `parallel`
    /// lets that many go at once.
    #[test]
    fn rolling_resources_chain_their_machines_parallel_at_a_time() {
        let serial = |yaml: &str| {
            let (_, graph) = graph(yaml, &Filter::default());
            graph
                .graph
                .raw_edges()
                .iter()
                .filter(|e| e.weight == Edge::Serial)
                .count()
        };
        let sshd = "kind: os/sshd\nname: h\nspecification: { machines: all, settings: { MaxAuthTries: \"3\" } }\n";
        assert_eq!(serial(sshd), 1);
        let two = "kind: os/sshd\nname: h\nlifecycle: { rolling: { parallel: 2 } }\nspecification: { machines: all, settings: { MaxAuthTries: \"3\" } }\n";
        assert_eq!(serial(two), 0);
        let file =
            "kind: os/file\nname: f\nspecification: { machines: all, path: /x, content: x }\n";
        assert_eq!(serial(file), 0);
        let rolled = "kind: os/file\nname: f\nlifecycle: { rolling: { wait: 5s } }\nspecification: { machines: all, path: /x, content: x }\n";
        assert_eq!(serial(rolled), 1);
    }

    /// Rolling resources of one kind that depend on each other against their names' order
    /// (a firewall's drop policy after the rules of other resources, as the hardening
    /// baseline has it) roll machine by machine without a cycle: all of machine a's
    /// instances before any of b's, and a failure on a skips b's.
    #[test]
    fn rolling_resources_depending_on_each_other_roll_by_machine_without_a_cycle() {
        let yaml = "kind: os/firewall\nname: a-policy\ndepends_on: [os/firewall.z-ports]\nspecification: { machines: all, input_policy: drop }\n---\nkind: os/firewall\nname: z-ports\nspecification: { machines: all, allow: [{ protocol: tcp, ports: [22] }] }\n";
        let (_, graph) = graph(yaml, &Filter::default());
        let node = |address: &str| {
            let index = graph
                .instances
                .iter()
                .position(|i| i.address.to_string() == address)
                .unwrap();
            graph.nodes[index]
        };
        for before in ["os/firewall.a-policy[a]", "os/firewall.z-ports[a]"] {
            for after in ["os/firewall.a-policy[b]", "os/firewall.z-ports[b]"] {
                assert!(
                    petgraph::algo::has_path_connecting(
                        &graph.graph,
                        node(before),
                        node(after),
                        None
                    ),
                    "{before} before {after}"
                );
            }
        }
        let mut doomed = HashMap::new();
        let failed = graph.instances[0].address.clone();
        crate::apply::doom(&graph, node("os/firewall.z-ports[a]"), &failed, &mut doomed);
        assert!(
            doomed.contains_key(&node("os/firewall.a-policy[b]")),
            "{doomed:?}"
        );
        assert!(
            doomed.contains_key(&node("os/firewall.z-ports[b]")),
            "{doomed:?}"
        );
    }

    const KINDS: &str = "kind: os/service\nname: s\nspecification: { machines: all, unit: x, active: true }\n---\nkind: os/file\nname: f\nspecification: { machines: all, path: /x, content: x }\n---\nkind: os/package\nname: p\nspecification: { machines: [a], present: [tree] }\n";

    #[test]
    fn kinds_are_ordered_per_machine_whatever_the_file_order() {
        let (_, graph) = graph(KINDS, &Filter::default());
        assert_eq!(
            order(&graph),
            [
                "os/package.p[a]",
                "os/file.f[a]",
                "os/file.f[b]",
                "os/service.s[a]",
                "os/service.s[b]"
            ]
        );
        // Only ordering: nothing is linked by a real dependency.
        assert!(graph
            .graph
            .raw_edges()
            .iter()
            .all(|e| e.weight == Edge::Order));
    }

    #[test]
    fn depends_on_links_the_same_machine_instance() {
        let yaml = format!("{KINDS}---\nkind: os/file\nname: g\ndepends_on: [os/file.f]\nspecification: {{ machines: all, path: /y, content: y }}\n");
        let (_, graph) = graph(&yaml, &Filter::default());
        let node = |address: &str| {
            graph.nodes[graph
                .instances
                .iter()
                .position(|i| i.address.to_string() == address)
                .unwrap()]
        };
        let linked: Vec<NodeIndex> = graph.linked(node("os/file.f[a]"), Direction::Outgoing);
        assert_eq!(linked, [node("os/file.g[a]")]);
    }

    #[test]
    fn depends_on_a_resource_on_other_machines_waits_for_all_of_it() {
        let yaml = "kind: os/file\nname: f\nspecification: { machines: [a], path: /x, content: x }\n---\nkind: os/file\nname: g\ndepends_on: [os/file.f]\nspecification: { machines: [b], path: /y, content: y }\n";
        let (_, graph) = graph(yaml, &Filter::default());
        assert_eq!(order(&graph), ["os/file.f[a]", "os/file.g[b]"]);
        let f = graph.nodes[0];
        assert_eq!(graph.linked(f, Direction::Outgoing), [graph.nodes[1]]);
    }

    #[test]
    fn exclude_drops_dependents_and_limit_keeps_one_machine() {
        let yaml = format!("{KINDS}---\nkind: os/file\nname: g\ndepends_on: [os/file.f]\nspecification: {{ machines: all, path: /y, content: y }}\n");
        let filter = Filter {
            excludes: vec![Address::parse("os/file.f[a]").unwrap()],
            machines: vec!["a".into()],
            ..Filter::default()
        };
        let (_, graph) = graph(&yaml, &filter);
        assert_eq!(order(&graph), ["os/package.p[a]", "os/service.s[a]"]);
    }

    /// `--target` keeps what the target depends on, and says why for each of those.
    #[test]
    fn target_says_why_it_pulls_in_dependencies() {
        let yaml = "kind: os/file\nname: f\nspecification: { machines: [a], path: /x, content: x }\n---\nkind: os/file\nname: g\ndepends_on: [os/file.f]\nspecification: { machines: [a], path: /y, content: y }\n---\nkind: os/file\nname: h\ndepends_on: [os/file.g]\nspecification: { machines: [a], path: /z, content: z }\n";
        let filter = Filter {
            targets: vec![Address::parse("os/file.h").unwrap()],
            ..Filter::default()
        };
        let (_, graph) = graph(yaml, &filter);
        assert_eq!(
            order(&graph),
            ["os/file.f[a]", "os/file.g[a]", "os/file.h[a]"]
        );
        let why = |a: &str| graph.pulled_in.get(&Address::parse(a).unwrap()).cloned();
        assert_eq!(
            why("os/file.g[a]").as_deref(),
            Some("also planned because os/file.h[a], selected by --target, depends on it")
        );
        assert_eq!(
            why("os/file.f[a]").as_deref(),
            Some("also planned because os/file.g[a] depends on it, for --target os/file.h[a]")
        );
        assert_eq!(why("os/file.h[a]"), None);
    }

    #[test]
    fn dot_draws_barriers_as_points_and_ordering_dashed() {
        let (_, graph) = graph(KINDS, &Filter::default());
        let dot = graph.to_dot();
        assert!(dot.starts_with("digraph corral {"));
        assert!(
            dot.contains("\"os/package.p[a]\" -> \"os/file.f[a]\" [style=dashed];"),
            "{dot}"
        );
    }

    /// Explicit beats implicit: a file written once a service runs (`depends_on` the
    /// service) is not a cycle with the default packages → files → services order; it
    /// still comes after the packages.
    #[test]
    fn depends_on_a_higher_rank_overrides_the_default_order() {
        let yaml = format!("{KINDS}---\nkind: os/file\nname: marker\ndepends_on: [os/service.s]\nspecification: {{ machines: [a], path: /run/marker, content: up }}\n");
        let (_, graph) = graph(&yaml, &Filter::default());
        let order = order(&graph);
        let at = |a: &str| order.iter().position(|o| o == a).unwrap();
        assert!(at("os/service.s[a]") < at("os/file.marker[a]"), "{order:?}");
        assert!(at("os/package.p[a]") < at("os/file.marker[a]"), "{order:?}");
        assert!(at("os/package.p[a]") < at("os/service.s[a]"), "{order:?}");
        // A real cycle of explicit edges is still one.
        let cycle = format!("{yaml}---\nkind: os/file\nname: m2\ndepends_on: [os/file.marker]\nspecification: {{ machines: [a], path: /run/m2, content: x }}\n");
        let cycle = cycle.replace(
            "name: s\nspecification",
            "name: s\ndepends_on: [os/file.m2]\nspecification",
        );
        let config = load_yaml(&cycle);
        let errors = ResourceGraph::build(&config, &Filter::default()).unwrap_err();
        let messages: Vec<String> = errors.errors.iter().map(|e| e.message.clone()).collect();
        assert!(
            messages.iter().any(|m| m.contains(
                "dependency cycle between os/file.m2[a], os/file.marker[a], os/service.s[a]"
            )),
            "{messages:?}"
        );
    }
}
