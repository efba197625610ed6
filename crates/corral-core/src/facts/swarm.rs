//! Docker Swarm facts: the probes that read a machine's swarm membership (`docker info`) and,
//! on one manager, the cluster's nodes, overlay networks, services and tasks; and pure parsers
//! of what those probes print into the typed facts the `swarm/*` kinds plan from.
//!
//! Nothing here runs a command or decides a change. Every parser is tested against outputs
//! recorded from real dockerd on lab hosts (`fixtures/cluster/`, made by
//! `scripts/record-cluster-fixtures.sh`), and each test checks that the fixture was recorded
//! with the probe's current script.
//!
//! What the recordings taught (Docker 20.10, Debian 12's `docker.io`):
//! - `--format json` is printed literally as the word `json` by CLI 20.10; every probe uses
//!   `--format '{{json .}}'`, which 20.10 and 28 both understand.
//! - The `ls` commands print booleans and labels as strings (`"Internal":"false"`,
//!   `"Labels":"tier=app,io.corral.managed=default"`); the inspects print real JSON. Plan from
//!   the inspects; the `ls` summaries are for status lines.
//! - Managers read the cluster; a worker's `node ls`/`service ls` fail with "Worker nodes
//!   can't be used…", and its `network ls` shows only the overlays it runs tasks on (in the
//!   lab: only `ingress`). See [`refusal`].
//! - A swarm without quorum still answers `docker info` (with `Error` set and an empty
//!   `Cluster.ID`) but refuses every cluster read with "The swarm does not have a leader".

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::{FactError, Probe, ProbeOutput};
use crate::base::text::tail;

/// Key of [`info_probe`], asked of every machine.
pub const INFO_KEY: &str = "swarm:info";
/// Key of [`node_ls_probe`], asked of one manager.
pub const NODE_LS_KEY: &str = "swarm:node-ls";
/// Key of [`node_inspect_probe`], asked of one manager.
pub const NODE_INSPECT_KEY: &str = "swarm:node-inspect";
/// Key of [`network_ls_probe`], asked of one manager.
pub const NETWORK_LS_KEY: &str = "swarm:network-ls";
/// Key of [`network_inspect_probe`], asked of one manager.
pub const NETWORK_INSPECT_KEY: &str = "swarm:network-inspect";
/// Key of [`service_ls_probe`], asked of one manager.
pub const SERVICE_LS_KEY: &str = "swarm:service-ls";
/// Key of [`service_inspect_probe`], asked of one manager.
pub const SERVICE_INSPECT_KEY: &str = "swarm:service-inspect";
/// Key of [`service_ps_probe`], asked of one manager.
pub const SERVICE_PS_KEY: &str = "swarm:service-ps";
/// Key of [`service_run_probe`], asked of one manager.
pub const SERVICE_RUN_KEY: &str = "swarm:service-run";

fn probe(key: &str, script: &str) -> Probe {
    Probe {
        key: key.to_owned(),
        script: script.to_owned(),
    }
}

/// `docker info`'s swarm section. The template prints the daemon's own error when it does not
/// answer: with a plain `{{json .Swarm}}`, CLI 20.10 prints only "reflect: indirection through
/// nil pointer…" there. It prints only the fields corral plans from, in a fixed order:
/// `RemoteManagers` comes in a different order at each call and the cluster's `Version` and
/// `UpdatedAt` move on their own, and a host's facts must read the same twice when nothing
/// changed (apply compares them again under its lock).
pub fn info_probe() -> Probe {
    probe(
        INFO_KEY,
        r#"docker info --format '{{if .ServerErrors}}{{range .ServerErrors}}{{println .}}{{end}}{{else}}{"NodeID":{{json .Swarm.NodeID}},"NodeAddr":{{json .Swarm.NodeAddr}},"LocalNodeState":{{json .Swarm.LocalNodeState}},"ControlAvailable":{{json .Swarm.ControlAvailable}},"Error":{{json .Swarm.Error}},"Nodes":{{json .Swarm.Nodes}},"Managers":{{json .Swarm.Managers}}{{if .Swarm.Cluster}},"Cluster":{"ID":{{json .Swarm.Cluster.ID}},"DefaultAddrPool":{{json .Swarm.Cluster.DefaultAddrPool}},"SubnetSize":{{json .Swarm.Cluster.SubnetSize}},"DataPathPort":{{json .Swarm.Cluster.DataPathPort}}}{{end}}}{{end}}'"#,
    )
}

/// `docker node ls`, one JSON object per node.
pub fn node_ls_probe() -> Probe {
    probe(NODE_LS_KEY, "docker node ls --format '{{json .}}'")
}

/// `docker node inspect` of every node, one JSON object per line. A node list that fails
/// (not a manager) is the probe's output and exit code.
pub fn node_inspect_probe() -> Probe {
    probe(
        NODE_INSPECT_KEY,
        "ids=$(docker node ls -q) && docker node inspect --format '{{json .}}' $ids",
    )
}

/// `docker network ls` of the overlay networks (`ingress` included).
pub fn network_ls_probe() -> Probe {
    probe(
        NETWORK_LS_KEY,
        "docker network ls --filter driver=overlay --format '{{json .}}'",
    )
}

/// `docker network inspect` of every overlay network; no output when there is none. Only
/// what a network is declared with is printed: the attached containers and peers change on
/// their own, and a cluster's facts must read the same twice when nothing changed (a saved
/// plan compares their digest).
pub fn network_inspect_probe() -> Probe {
    probe(
        NETWORK_INSPECT_KEY,
        r#"ids=$(docker network ls -q --filter driver=overlay) && if [ -n "$ids" ]; then docker network inspect --format '{"Name":{{json .Name}},"Id":{{json .Id}},"Scope":{{json .Scope}},"Driver":{{json .Driver}},"EnableIPv6":{{json .EnableIPv6}},"IPAM":{{json .IPAM}},"Internal":{{json .Internal}},"Attachable":{{json .Attachable}},"Ingress":{{json .Ingress}},"Options":{{json .Options}},"Labels":{{json .Labels}}}' $ids; fi"#,
    )
}

/// `docker service ls`, one JSON object per service.
pub fn service_ls_probe() -> Probe {
    probe(SERVICE_LS_KEY, "docker service ls --format '{{json .}}'")
}

/// `docker service inspect` of every service; no output when there is none.
pub fn service_inspect_probe() -> Probe {
    probe(
        SERVICE_INSPECT_KEY,
        r#"ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service inspect --format '{{json .}}' $ids; fi"#,
    )
}

/// `docker service ps` of every service: current tasks and the retained history.
pub fn service_ps_probe() -> Probe {
    probe(
        SERVICE_PS_KEY,
        r#"ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service ps --no-trunc --format '{{json .}}' $ids; fi"#,
    )
}

/// The marker line between [`service_run_probe`]'s services and their tasks.
pub(crate) const TASKS_MARKER: &str = "corral-tasks";

/// What runs: `docker service ls` (`ID|MODE|RUNNING/DESIRED|NAME`, one call for every
/// service), then, after a `corral-tasks` line, `docker service ps` (tasks and their
/// retained history, one JSON object each) of the services whose tasks may not all run, in
/// the same call: the replicated ones with fewer running than desired, and every global one.
/// A global service's count cannot tell: `service ls` counts as desired only the tasks
/// Docker wants running now, and a task waiting out its restart delay is `Ready`, not
/// counted (recorded: `2/2` on three active nodes, the third's task failing,
/// fixtures/cluster/service-run/port-taken.json). Which nodes should run one is decided from
/// the nodes' facts ([`global_expected`]). `service ps` is not filtered by desired state: a
/// failed task's error (the reason shown) is on the task Docker already shut down. A service
/// removed between the two calls makes `ps` complain; that is ignored (the list is read
/// again at apply).
pub fn service_run_probe() -> Probe {
    probe(
        SERVICE_RUN_KEY,
        r#"ls=$(docker service ls --format '{{.ID}}|{{.Mode}}|{{.Replicas}}|{{.Name}}') && printf '%s\n' "$ls" && ids=$(printf '%s\n' "$ls" | awk -F'|' 'NF >= 4 { split($3, c, /[\/ ]/); if ($2 == "global" || c[1] + 0 < c[2] + 0) print $1 }') && if [ -n "$ids" ]; then echo corral-tasks; docker service ps --no-trunc --format '{{json .}}' $ids 2>/dev/null || true; fi"#,
    )
}

/// `docker swarm join-token -q worker|manager`, on a manager. Its output is a secret: apply
/// reads it when a machine joins; it is never part of the facts a plan is saved with.
pub fn join_token_probe(role: NodeRole) -> Probe {
    let role = match role {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    };
    probe(
        &format!("swarm:join-token:{role}"),
        &format!("docker swarm join-token -q {role}"),
    )
}

/// Why a machine did not answer a cluster read (nodes, networks, services, tokens), so that
/// the planner can ask another manager or report the swarm as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerRefusal {
    /// dockerd does not answer.
    DaemonDown,
    /// The machine is in no swarm.
    NotInSwarm,
    /// The machine is a worker.
    Worker,
    /// The managers have no leader: too few of them are up (no quorum).
    NoQuorum,
}

impl ManagerRefusal {
    fn describe(self) -> &'static str {
        match self {
            ManagerRefusal::DaemonDown => "dockerd does not answer",
            ManagerRefusal::NotInSwarm => "this machine is in no swarm",
            ManagerRefusal::Worker => "this machine is a swarm worker, not a manager",
            ManagerRefusal::NoQuorum => {
                "the swarm has no leader (too few managers are up for a quorum)"
            }
        }
    }
}

/// Which refusal, if any, a probe's output is.
pub fn refusal(out: &ProbeOutput) -> Option<ManagerRefusal> {
    let text = &out.output;
    if text.contains("Cannot connect to the Docker daemon") {
        Some(ManagerRefusal::DaemonDown)
    } else if text.contains("Worker nodes can't be used to view or modify cluster state") {
        Some(ManagerRefusal::Worker)
    } else if text.contains("This node is not a swarm manager") {
        Some(ManagerRefusal::NotInSwarm)
    } else if text.contains("The swarm does not have a leader") {
        Some(ManagerRefusal::NoQuorum)
    } else {
        None
    }
}

/// The error for a probe that failed: a refusal in words, or the end of what it printed.
fn failed(key: &str, out: &ProbeOutput) -> FactError {
    match refusal(out) {
        Some(refused) => FactError::new(
            key,
            format!("{}: {}", refused.describe(), tail(&out.output, 300)),
        ),
        None => FactError::unexpected(key, out),
    }
}

/// One JSON object per non-empty line, as `--format '{{json .}}'` prints them. Errors never
/// quote the line: service specs carry environment values.
fn json_lines<T: DeserializeOwned>(key: &str, out: &ProbeOutput) -> Result<Vec<T>, FactError> {
    if out.rc != 0 {
        return Err(failed(key, out));
    }
    out.output
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            if !line.starts_with('{') {
                return Err(match refusal(out) {
                    Some(_) => failed(key, out),
                    None => FactError::new(
                        key,
                        format!(
                            "line {} is not what docker prints: {}",
                            index + 1,
                            tail(line, 200)
                        ),
                    ),
                });
            }
            serde_json::from_str(line).map_err(|e| {
                FactError::new(
                    key,
                    format!("line {} is not what docker prints: {e}", index + 1),
                )
            })
        })
        .collect()
}

/// `null` (Docker's empty map or list) as the empty value.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Docker's durations: integer nanoseconds.
fn nanoseconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_nanos(u64::deserialize(deserializer)?))
}

/// The `ls` commands' booleans: `"true"` / `"false"`.
fn string_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match String::deserialize(deserializer)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected \"true\" or \"false\", found {other:?}"
        ))),
    }
}

/// The `ls` commands' labels, `k=v,k2=v2`. A value holding a comma cannot be told apart
/// here; the inspects give labels as maps.
fn comma_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// docker info

/// A machine's own view of its swarm membership (`docker info`'s `Swarm`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    /// Empty outside a swarm.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// The address the node advertises (no port).
    pub node_addr: String,
    pub local_node_state: LocalNodeState,
    /// Whether this node is a manager.
    pub control_available: bool,
    /// Set, for example, when a manager sees no leader.
    pub error: String,
    /// The managers this node knows, with their `ip:port`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub remote_managers: Vec<RemoteManager>,
    /// Counts, on managers only (and not without quorum).
    #[serde(default)]
    pub nodes: Option<u32>,
    #[serde(default)]
    pub managers: Option<u32>,
    /// On managers only.
    #[serde(default)]
    pub cluster: Option<SwarmCluster>,
}

impl SwarmInfo {
    /// The cluster's ID, when this node knows it (a manager with a leader).
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// Whether the node is an active member of a swarm.
    pub fn is_member(&self) -> bool {
        self.local_node_state == LocalNodeState::Active
    }
}

/// `LocalNodeState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalNodeState {
    Inactive,
    Pending,
    Active,
    Error,
    Locked,
    /// Empty (a daemon that did not answer) or a state this corral does not know.
    #[serde(other)]
    Unknown,
}

/// One of `RemoteManagers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteManager {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// `ip:port`.
    #[serde(rename = "Addr")]
    pub addr: String,
}

/// What a manager knows of the cluster as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmCluster {
    /// Empty when the managers have no leader.
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_addr_pool: Vec<String>,
    #[serde(default)]
    pub subnet_size: u32,
    #[serde(default)]
    pub data_path_port: u32,
}

/// Parses [`info_probe`]'s output.
pub fn parse_info(key: &str, out: &ProbeOutput) -> Result<SwarmInfo, FactError> {
    let json = out
        .output
        .lines()
        .find(|line| line.starts_with('{'))
        .filter(|_| out.rc == 0);
    match json {
        Some(line) => serde_json::from_str(line).map_err(|e| {
            FactError::new(
                key,
                format!("docker info's swarm section is unreadable: {e}"),
            )
        }),
        None => Err(failed(key, out)),
    }
}

// ---------------------------------------------------------------------------------------
// docker node

/// A row of `docker node ls`: status words as the CLI prints them (`Ready`, `Active`,
/// `Leader`/`Reachable`/`Unreachable`/empty for workers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSummary {
    #[serde(rename = "ID")]
    pub id: String,
    pub hostname: String,
    pub status: String,
    pub availability: String,
    pub manager_status: String,
    pub engine_version: String,
    /// The node that answered.
    #[serde(rename = "Self")]
    pub is_self: bool,
    #[serde(rename = "TLSStatus")]
    pub tls_status: String,
}

/// Parses [`node_ls_probe`]'s output.
pub fn parse_node_ls(key: &str, out: &ProbeOutput) -> Result<Vec<NodeSummary>, FactError> {
    json_lines(key, out)
}

/// A swarm node as `docker node inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmNode {
    #[serde(rename = "ID")]
    pub id: String,
    /// What can be changed: role, availability, labels.
    pub spec: NodeSpec,
    pub description: NodeDescription,
    pub status: NodeStatus,
    /// Managers only.
    #[serde(default)]
    pub manager_status: Option<ManagerStatus>,
}

impl SwarmNode {
    pub fn hostname(&self) -> &str {
        &self.description.hostname
    }

    pub fn is_leader(&self) -> bool {
        self.manager_status.as_ref().is_some_and(|m| m.leader)
    }

    /// The node's address. A leader may report `Status.Addr` as `0.0.0.0` (moby#35437); its
    /// manager address then holds the real one, as community.docker's swarm module does.
    pub fn addr(&self) -> &str {
        let unusable = self.status.addr.is_empty() || self.status.addr == "0.0.0.0";
        match self.manager_status.as_ref().and_then(ManagerStatus::host) {
            Some(host) if unusable => host,
            _ => &self.status.addr,
        }
    }
}

/// `Spec` of a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    pub role: NodeRole,
    pub availability: Availability,
}

/// `Spec.Role`: what a node was made (a manager may be unreachable; see
/// [`ManagerStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Manager,
    Worker,
}

/// `Spec.Availability`: whether the scheduler may place tasks on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

/// The part of a node's `Description` the plan needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDescription {
    pub hostname: String,
    #[serde(default)]
    pub engine: NodeEngine,
}

/// The node's Docker engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeEngine {
    #[serde(default)]
    pub engine_version: String,
}

/// `Status` of a node, as the managers see it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    pub state: NodeState,
    /// Why, for a node that is not ready ("heartbeat failure").
    #[serde(default)]
    pub message: String,
    /// See [`SwarmNode::addr`].
    #[serde(default)]
    pub addr: String,
}

/// `Status.State`: a stopped node turns `down` after missed heartbeats; a re-elected
/// leader briefly shows the others as `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Unknown,
    Down,
    Ready,
    Disconnected,
}

/// `ManagerStatus` of a manager node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagerStatus {
    /// Absent (false) on all but the leader.
    #[serde(default)]
    pub leader: bool,
    pub reachability: Reachability,
    /// `ip:port` of the manager's raft endpoint.
    pub addr: String,
}

impl ManagerStatus {
    /// The host part of [`ManagerStatus::addr`], unless it is unspecified too.
    fn host(&self) -> Option<&str> {
        let (host, _port) = self.addr.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty() && host != "0.0.0.0" && host != "::").then_some(host)
    }
}

/// `ManagerStatus.Reachability`: whether the raft member answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    Unknown,
    Unreachable,
    Reachable,
}

/// Parses [`node_inspect_probe`]'s output.
pub fn parse_node_inspect(key: &str, out: &ProbeOutput) -> Result<Vec<SwarmNode>, FactError> {
    json_lines(key, out)
}

// ---------------------------------------------------------------------------------------
// docker network

/// The option Docker adds to every overlay network it creates (the VXLAN IDs it picked): not
/// part of what anybody declares.
pub const VXLANID_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// A row of `docker network ls`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSummary {
    /// Short (12 characters).
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    #[serde(deserialize_with = "string_bool")]
    pub internal: bool,
    #[serde(rename = "IPv6", deserialize_with = "string_bool")]
    pub ipv6: bool,
    /// Comma-joined `k=v`; see [`NetworkSummary::labels`].
    #[serde(rename = "Labels")]
    pub labels_text: String,
}

impl NetworkSummary {
    /// The labels, split at commas.
    pub fn labels(&self) -> BTreeMap<String, String> {
        comma_labels(&self.labels_text)
    }
}

/// Parses [`network_ls_probe`]'s output.
pub fn parse_network_ls(key: &str, out: &ProbeOutput) -> Result<Vec<NetworkSummary>, FactError> {
    json_lines(key, out)
}

/// An overlay network as `docker network inspect` shows it. Its driver, IPAM, options,
/// scope, attachable, internal and ingress cannot be changed in place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OverlayNetwork {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    /// Driver options, with Docker's own [`VXLANID_OPTION`]; `--opt encrypted` is
    /// `"encrypted": ""`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    /// `null` and `{}` both mean none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

impl OverlayNetwork {
    pub fn encrypted(&self) -> bool {
        self.options.contains_key("encrypted")
    }

    /// The options someone asked for: all but Docker's [`VXLANID_OPTION`].
    pub fn declared_options(&self) -> BTreeMap<&str, &str> {
        self.options
            .iter()
            .filter(|(key, _)| key.as_str() != VXLANID_OPTION)
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }
}

/// `IPAM` of a network: the pools it was created with (or Docker picked).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: Vec<IpamConfig>,
}

/// One IPAM pool; Docker fills in the gateway when only a subnet was given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(rename = "IPRange", default)]
    pub ip_range: String,
}

/// Parses [`network_inspect_probe`]'s output.
pub fn parse_network_inspect(
    key: &str,
    out: &ProbeOutput,
) -> Result<Vec<OverlayNetwork>, FactError> {
    json_lines(key, out)
}

// ---------------------------------------------------------------------------------------
// docker service

/// A row of `docker service ls`. Host-mode published ports do not show in `Ports`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSummary {
    /// Short (12 characters).
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// `replicated` or `global`.
    pub mode: String,
    /// `running/desired`, e.g. `2/2`, `0/1`.
    pub replicas: String,
    pub image: String,
    pub ports: String,
}

impl ServiceSummary {
    /// (running, desired) tasks, from [`ServiceSummary::replicas`]. Global services count
    /// only nodes that can run a task as desired, so running can exceed desired.
    pub fn task_counts(&self) -> Option<(u32, u32)> {
        let counts = self.replicas.split_whitespace().next()?;
        let (running, desired) = counts.split_once('/')?;
        Some((running.parse().ok()?, desired.parse().ok()?))
    }
}

/// Parses [`service_ls_probe`]'s output.
pub fn parse_service_ls(key: &str, out: &ProbeOutput) -> Result<Vec<ServiceSummary>, FactError> {
    json_lines(key, out)
}

/// A service as `docker service inspect` shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmService {
    #[serde(rename = "ID")]
    pub id: String,
    pub spec: ServiceSpec,
    /// The spec before the last update, which `--rollback` returns to.
    #[serde(default)]
    pub previous_spec: Option<ServiceSpec>,
    /// Absent until the service is first updated.
    #[serde(default)]
    pub update_status: Option<UpdateStatus>,
}

/// What a service is declared to be. When the CLI updates a service it also fills in
/// defaults it left out at creation (`RestartPolicy`, `StopGracePeriod`), so those do not
/// say what an operator asked for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    pub task_template: TaskTemplate,
    pub mode: ServiceMode,
    #[serde(default)]
    pub update_config: Option<UpdateConfig>,
    #[serde(default)]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default)]
    pub endpoint_spec: Option<EndpointSpec>,
}

impl ServiceSpec {
    /// Published ports (empty without an endpoint spec).
    pub fn ports(&self) -> &[PortConfig] {
        self.endpoint_spec
            .as_ref()
            .map(|e| e.ports.as_slice())
            .unwrap_or_default()
    }

    /// The networks its tasks attach to, each by its name where `names` (ID → name) has
    /// it, else by the ID the spec holds.
    pub fn network_names(&self, names: &BTreeMap<String, String>) -> Vec<String> {
        self.task_template
            .networks
            .iter()
            .map(|n| names.get(&n.target).unwrap_or(&n.target).clone())
            .collect()
    }
}

/// `TaskTemplate`: what every task of the service runs, where, and on which networks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskTemplate {
    pub container_spec: ContainerSpec,
    #[serde(default)]
    pub placement: Placement,
    /// Networks by ID, not by name: map them through [`OverlayNetwork::id`].
    #[serde(default, deserialize_with = "null_as_default")]
    pub networks: Vec<NetworkAttachment>,
    /// Raised by `docker service update --force`.
    #[serde(default)]
    pub force_update: u64,
}

/// `ContainerSpec`: the container every task runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    /// As given (`local/busybox:1`), or pinned with `@sha256:…` when the CLI could resolve
    /// it on a registry.
    pub image: String,
    /// The entrypoint override (`--entrypoint`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub command: Vec<String>,
    /// The arguments after the image.
    #[serde(default, deserialize_with = "null_as_default")]
    pub args: Vec<String>,
    /// `K=V`, in no stable order (an `--env-add` reorders them): compare as a set.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mounts: Vec<Mount>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<SecretReference>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub configs: Vec<ConfigReference>,
}

impl ContainerSpec {
    /// The environment as a map (the last of repeated keys wins, as in Docker).
    pub fn env_map(&self) -> BTreeMap<&str, &str> {
        self.env
            .iter()
            .map(|entry| entry.split_once('=').unwrap_or((entry.as_str(), "")))
            .collect()
    }
}

/// A mount of the container; compare as a set, by target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, …
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// A secret given to a service, by the versioned object's name and ID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    pub secret_name: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    #[serde(default)]
    pub file: Option<FileTarget>,
}

/// A config given to a service, by the versioned object's name and ID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    pub config_name: String,
    #[serde(rename = "ConfigID")]
    pub config_id: String,
    #[serde(default)]
    pub file: Option<FileTarget>,
}

/// Where a secret or config appears in the container. `UID`/`GID` are strings; `Mode` is
/// the decimal value of the permission bits (256 = 0400).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileTarget {
    /// A bare name lands under `/run/secrets/`; configs are absolute paths.
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "UID")]
    pub uid: String,
    #[serde(rename = "GID")]
    pub gid: String,
    #[serde(rename = "Mode")]
    pub mode: u32,
}

/// `Placement`: where tasks may run (constraints) and how they spread (preferences).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    /// As given, e.g. `node.labels.role==edge`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub preferences: Vec<PlacementPreference>,
}

impl Placement {
    /// The spread descriptors of the preferences, in order (`node.labels.zone`).
    pub fn spreads(&self) -> Vec<&str> {
        self.preferences
            .iter()
            .filter_map(|p| p.spread.as_ref())
            .map(|s| s.spread_descriptor.as_str())
            .collect()
    }
}

/// One placement preference; `spread` is the only kind Docker has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default)]
    pub spread: Option<Spread>,
}

/// `--placement-pref spread=DESCRIPTOR`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Spread {
    pub spread_descriptor: String,
}

/// A network the service's tasks attach to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    /// The network's full ID.
    pub target: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
}

/// `Mode`; it cannot change in place (swarmkit: "service mode change is not allowed").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum ServiceMode {
    Replicated {
        #[serde(rename = "Replicas", default)]
        replicas: u64,
    },
    Global {},
    ReplicatedJob {
        #[serde(rename = "MaxConcurrent", default)]
        max_concurrent: u64,
        #[serde(rename = "TotalCompletions", default)]
        total_completions: u64,
    },
    GlobalJob {},
}

/// `UpdateConfig` or `RollbackConfig`. Docker leaves out zero values (an `UpdateConfig`
/// without `Delay` has no delay).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    /// 0 updates all tasks at once.
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, deserialize_with = "nanoseconds")]
    pub delay: Duration,
    /// `pause`, `continue` or `rollback`.
    #[serde(default)]
    pub failure_action: String,
    #[serde(default, deserialize_with = "nanoseconds")]
    pub monitor: Duration,
    #[serde(default)]
    pub max_failure_ratio: f64,
    /// `stop-first` or `start-first`.
    #[serde(default)]
    pub order: String,
}

/// `EndpointSpec`: how the service is reached (virtual IP or DNS round robin) and what it
/// publishes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    /// `vip` or `dnsrr`.
    #[serde(default)]
    pub mode: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<PortConfig>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(default)]
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub target_port: u16,
    /// 0 when Docker picks one.
    #[serde(default)]
    pub published_port: u16,
    /// `ingress` (the routing mesh) or `host`.
    pub publish_mode: String,
}

/// `UpdateStatus`: how the last update (or rollback) went.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    pub state: UpdateState,
    #[serde(default)]
    pub started_at: Option<String>,
    /// Absent while updating or paused.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// "update completed", or why it paused ("update paused due to failure or early
    /// termination of task …").
    #[serde(default)]
    pub message: String,
}

/// `UpdateStatus.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
    #[serde(other)]
    Unknown,
}

/// Parses [`service_inspect_probe`]'s output.
pub fn parse_service_inspect(key: &str, out: &ProbeOutput) -> Result<Vec<SwarmService>, FactError> {
    json_lines(key, out)
}

// ---------------------------------------------------------------------------------------
// docker service ps

/// A row of `docker service ps` as printed.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskRow {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    image: String,
    node: String,
    desired_state: String,
    current_state: String,
    error: String,
    ports: String,
}

/// A task of a service: one replica slot (`api.1`) or, for a global service, one node
/// (`agent.<node ID>`); the history of a slot follows its current task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// `SERVICE.SLOT` or `SERVICE.NODE_ID`.
    pub name: String,
    pub image: String,
    /// Hostname of the node; empty while no node was found for it.
    pub node: String,
    pub desired_state: TaskState,
    pub state: TaskState,
    /// How long ago it entered [`Task::state`], in the CLI's words ("28 seconds ago").
    pub since: String,
    /// Docker's error, without the quotes the CLI puts around it; empty when none.
    pub error: String,
    /// Host-mode ports the task publishes, e.g. `*:8080->8080/tcp`.
    pub ports: String,
}

impl Task {
    /// The service's name.
    pub fn service(&self) -> &str {
        self.name.rsplit_once('.').map_or(&self.name, |(s, _)| s)
    }
}

/// Task states (swarmkit's `TaskState`), as the CLI prints them capitalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
    Other(String),
}

impl TaskState {
    fn from_word(word: &str) -> TaskState {
        match word.to_ascii_lowercase().as_str() {
            "new" => TaskState::New,
            "pending" => TaskState::Pending,
            "assigned" => TaskState::Assigned,
            "accepted" => TaskState::Accepted,
            "preparing" => TaskState::Preparing,
            "ready" => TaskState::Ready,
            "starting" => TaskState::Starting,
            "running" => TaskState::Running,
            "complete" => TaskState::Complete,
            "shutdown" => TaskState::Shutdown,
            "failed" => TaskState::Failed,
            "rejected" => TaskState::Rejected,
            "remove" => TaskState::Remove,
            "orphaned" => TaskState::Orphaned,
            _ => TaskState::Other(word.to_owned()),
        }
    }
}

/// Parses [`service_ps_probe`]'s output.
pub fn parse_service_ps(key: &str, out: &ProbeOutput) -> Result<Vec<Task>, FactError> {
    let rows: Vec<TaskRow> = json_lines(key, out)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (state, since) = row
                .current_state
                .split_once(' ')
                .unwrap_or((row.current_state.as_str(), ""));
            let error = row.error.trim();
            let error = error
                .strip_prefix('"')
                .and_then(|e| e.strip_suffix('"'))
                .unwrap_or(error);
            Task {
                state: TaskState::from_word(state),
                since: since.to_owned(),
                desired_state: TaskState::from_word(&row.desired_state),
                error: error.to_owned(),
                id: row.id,
                name: row.name,
                image: row.image,
                node: row.node,
                ports: row.ports,
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// What runs

/// A service as [`service_run_probe`] read it: Docker's counts, and its tasks when they were
/// listed (newest first within a slot, as `service ps` prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRun {
    /// Short (12 characters).
    pub id: String,
    pub name: String,
    pub global: bool,
    /// Tasks running, as `service ls` counts them.
    pub running: u32,
    /// Tasks Docker wants running now (see [`service_run_probe`] for a global service).
    pub desired: u32,
    /// `None` when not listed: a replicated service that runs all its tasks.
    pub tasks: Option<Vec<Task>>,
}

/// Parses [`service_run_probe`]'s output, by service name.
pub fn parse_service_run(
    key: &str,
    out: &ProbeOutput,
) -> Result<BTreeMap<String, ServiceRun>, FactError> {
    if out.rc != 0 {
        return Err(failed(key, out));
    }
    let (services, tasks) = match out.output.split_once(&format!("{TASKS_MARKER}\n")) {
        Some((services, tasks)) => (services, Some(tasks)),
        None => (out.output.as_str(), None),
    };
    let mut runs = BTreeMap::new();
    for line in services.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.splitn(4, '|').collect();
        let [id, mode, replicas, name] = fields[..] else {
            return Err(FactError::new(
                key,
                format!("unexpected service line: {}", tail(line, 200)),
            ));
        };
        // `2/2`, `1/2 (max 1 per node)`, a job's `0/1 (1/1 completed)`.
        let counts = replicas.split_whitespace().next().and_then(|counts| {
            let (running, desired) = counts.split_once('/')?;
            Some((running.parse().ok()?, desired.parse().ok()?))
        });
        let Some((running, desired)) = counts else {
            return Err(FactError::new(
                key,
                format!(
                    "unexpected task counts of service {name}: {}",
                    tail(replicas, 100)
                ),
            ));
        };
        let global = mode == "global";
        runs.insert(
            name.to_owned(),
            ServiceRun {
                id: id.to_owned(),
                name: name.to_owned(),
                global,
                running,
                desired,
                tasks: (global || running < desired).then(Vec::new),
            },
        );
    }
    if let Some(tasks) = tasks {
        let listed = ProbeOutput {
            rc: 0,
            output: tasks.to_owned(),
        };
        for task in parse_service_ps(key, &listed)? {
            if let Some(list) = runs
                .get_mut(task.service())
                .and_then(|run| run.tasks.as_mut())
            {
                list.push(task);
            }
        }
    }
    Ok(runs)
}

/// Hostnames of the nodes where a global service with `constraints` should run a task:
/// ready, active (a paused node keeps what it runs but gets nothing new, a drained one runs
/// nothing) and matching every constraint. `None` when a constraint names something the
/// nodes' facts do not hold (`engine.labels`, `node.platform`): Docker's own placement is
/// then trusted.
pub fn global_expected(nodes: &[SwarmNode], constraints: &[String]) -> Option<Vec<String>> {
    let mut expected = Vec::new();
    for node in nodes {
        if placeable(node, constraints)? && node.status.state == NodeState::Ready {
            expected.push(node.hostname().to_owned());
        }
    }
    Some(expected)
}

/// Whether a global service with `constraints` belongs on `node` whether or not the node is
/// up: active and matching every constraint (`None`: a constraint not known here).
pub fn placeable(node: &SwarmNode, constraints: &[String]) -> Option<bool> {
    let mut matches = node.spec.availability == Availability::Active;
    for constraint in constraints {
        matches &= node_matches(node, constraint)?;
    }
    Some(matches)
}

/// Whether `node` meets one placement constraint (`KEY==VALUE` or `KEY!=VALUE`); `None`
/// for a key not known here.
fn node_matches(node: &SwarmNode, constraint: &str) -> Option<bool> {
    let (key, equal, value) = match constraint.split_once("!=") {
        Some((key, value)) => (key, false, value),
        None => {
            let (key, value) = constraint.split_once("==")?;
            (key, true, value)
        }
    };
    let (key, value) = (key.trim(), value.trim());
    let actual = match key {
        "node.hostname" => Some(node.hostname().to_owned()),
        "node.id" => Some(node.id.clone()),
        "node.role" => Some(
            match node.spec.role {
                NodeRole::Manager => "manager",
                NodeRole::Worker => "worker",
            }
            .to_owned(),
        ),
        _ => match key.strip_prefix("node.labels.") {
            Some(label) => node.spec.labels.get(label).cloned(),
            None => return None,
        },
    };
    // Docker compares case-insensitively; a missing label never equals and always differs.
    let same = actual.is_some_and(|actual| actual.eq_ignore_ascii_case(value));
    Some(same == equal)
}

/// Why a service does not run as declared, in words (`1/3 tasks running: n2: task failed:
/// …; n3: no task (node down)`), or `None` when it does. `expected` is, for a global
/// service, the nodes that should run a task ([`global_expected`]; `None`: wherever Docker
/// placed one); `nodes` names the state of a node without a task.
///
/// A slot whose newest task completed and was not started again (a one-shot task, restart
/// policy `none` or `on-failure`) is done, not missing. Tasks on nodes not expected (paused,
/// drained, down) are not required.
pub fn not_running(
    run: &ServiceRun,
    expected: Option<&[String]>,
    nodes: &[SwarmNode],
) -> Option<String> {
    let tasks = run.tasks.as_deref().unwrap_or_default();
    // Slots in the order listed, each with its tasks newest first.
    let mut slots: Vec<(&str, Vec<&Task>)> = Vec::new();
    for task in tasks {
        match slots.iter_mut().find(|(slot, _)| *slot == task.name) {
            Some((_, list)) => list.push(task),
            None => slots.push((&task.name, vec![task])),
        }
    }
    let live = |task: &Task| task.desired_state != TaskState::Shutdown;
    let done = |list: &[&Task]| {
        list.first().is_some_and(|t| t.state == TaskState::Complete)
            && !list.iter().any(|t| live(t))
    };
    let why = |list: &[&Task]| -> String {
        let current = list.iter().find(|t| live(t)).or(list.first());
        let failed = list.iter().find(|t| !t.error.is_empty());
        match (current, failed) {
            (_, Some(failed)) => format!(
                "task {}: {}",
                state_word(&failed.state),
                crate::base::text::tail(&failed.error, 300)
            ),
            (Some(current), None) => format!("task {}", state_word(&current.state)),
            (None, None) => "no task".to_owned(),
        }
    };
    if !run.global {
        if run.running >= run.desired {
            return None;
        }
        let short: Vec<String> = slots
            .iter()
            .filter(|(_, list)| {
                !list
                    .iter()
                    .any(|t| live(t) && t.state == TaskState::Running)
            })
            .filter(|(_, list)| !done(list))
            .map(|(slot, list)| {
                let node = list
                    .iter()
                    .find(|t| live(t))
                    .or(list.first())
                    .map_or("", |t| &t.node);
                match node.is_empty() {
                    true => format!("{slot}: {}", why(list)),
                    false => format!("{slot} on {node}: {}", why(list)),
                }
            })
            .collect();
        if short.is_empty() && tasks.iter().any(|t| t.state == TaskState::Complete) {
            return None;
        }
        return Some(with_reasons(
            &format!("{}/{} tasks running", run.running, run.desired),
            &short,
        ));
    }
    let by_node = |node: &str| -> Vec<&Task> { tasks.iter().filter(|t| t.node == node).collect() };
    let runs_on = |node: &str| {
        by_node(node)
            .iter()
            .any(|t| live(t) && t.state == TaskState::Running)
    };
    let expected: Vec<String> = match expected {
        Some(expected) => expected.to_vec(),
        // Wherever Docker placed a task it still wants, on a node that is up.
        None => {
            let mut placed: Vec<String> = tasks
                .iter()
                .filter(|t| live(t))
                .map(|t| t.node.clone())
                .filter(|node| {
                    nodes
                        .iter()
                        .any(|n| n.hostname() == node && n.status.state == NodeState::Ready)
                })
                .collect();
            placed.sort();
            placed.dedup();
            placed
        }
    };
    let missing: Vec<&String> = expected.iter().filter(|node| !runs_on(node)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut reasons: Vec<String> = missing
        .iter()
        .map(|node| {
            let list = by_node(node);
            match list.is_empty() {
                true => format!("{node}: no task"),
                false => format!("{node}: {}", why(&list)),
            }
        })
        .collect();
    // Nodes that cannot run one now, named so that the count reads right.
    for node in nodes {
        let name = node.hostname();
        if expected.iter().any(|e| e == name) || runs_on(name) {
            continue;
        }
        if node.status.state != NodeState::Ready {
            reasons.push(format!(
                "{name}: no task (node {})",
                node_state_word(node.status.state)
            ));
        }
    }
    let running = expected.len() - missing.len();
    Some(with_reasons(
        &format!("{running}/{} tasks running", expected.len()),
        &reasons,
    ))
}

fn with_reasons(counts: &str, reasons: &[String]) -> String {
    match reasons.is_empty() {
        true => counts.to_owned(),
        false => format!("{counts}: {}", reasons.join("; ")),
    }
}

fn state_word(state: &TaskState) -> String {
    match state {
        TaskState::Other(word) => word.to_ascii_lowercase(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

pub fn node_state_word(state: NodeState) -> &'static str {
    match state {
        NodeState::Unknown => "unknown",
        NodeState::Down => "down",
        NodeState::Ready => "ready",
        NodeState::Disconnected => "disconnected",
    }
}

// ---------------------------------------------------------------------------------------
// Digests

/// What a facts digest covers of a swarm probe's output: the parsed facts, listed by ID,
/// not the text. The lists come in the order the CLI sorts them by (names, which nodes
/// may share) or the API returns them, and `service ps` says how long ago each task
/// changed ("Running 2 minutes ago"): two readings of an unchanged swarm must digest alike
/// (a saved plan compares them). `None` for other probes, and for output that does not
/// parse (a refusal, digested as it is).
pub fn canonical(key: &str, out: &ProbeOutput) -> Option<String> {
    fn by_id<T: std::fmt::Debug>(mut items: Vec<T>, id: impl Fn(&T) -> &str) -> String {
        items.sort_by(|a, b| id(a).cmp(id(b)));
        format!("{items:?}")
    }
    match key {
        INFO_KEY => {
            let mut info = parse_info(key, out).ok()?;
            info.remote_managers
                .sort_by(|a, b| a.node_id.cmp(&b.node_id));
            Some(format!("{info:?}"))
        }
        NODE_LS_KEY => Some(by_id(parse_node_ls(key, out).ok()?, |n| &n.id)),
        NODE_INSPECT_KEY => Some(by_id(parse_node_inspect(key, out).ok()?, |n| &n.id)),
        NETWORK_LS_KEY => Some(by_id(parse_network_ls(key, out).ok()?, |n| &n.id)),
        NETWORK_INSPECT_KEY => Some(by_id(parse_network_inspect(key, out).ok()?, |n| &n.id)),
        SERVICE_LS_KEY => Some(by_id(parse_service_ls(key, out).ok()?, |s| &s.id)),
        SERVICE_INSPECT_KEY => Some(by_id(parse_service_inspect(key, out).ok()?, |s| &s.id)),
        // Whether each service runs all its tasks, not which tasks: they come and go (a
        // failing task is replaced every few seconds) while the plan's step stays the same.
        SERVICE_RUN_KEY => {
            let runs = parse_service_run(key, out).ok()?;
            let shape: Vec<(String, bool, bool)> = runs
                .into_values()
                .map(|run| {
                    let short = run.running < run.desired
                        || run.tasks.iter().flatten().any(|t| {
                            t.desired_state != TaskState::Shutdown && t.state != TaskState::Running
                        });
                    (run.id, run.global, short)
                })
                .collect();
            Some(by_id(shape, |s| &s.0))
        }
        SERVICE_PS_KEY => {
            let mut tasks = parse_service_ps(key, out).ok()?;
            for task in &mut tasks {
                task.since.clear();
            }
            Some(by_id(tasks, |t| &t.id))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// docker swarm join-token

/// A join token. It never prints: `Debug` shows only its shape.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken(String);

impl JoinToken {
    /// The token, for the `docker swarm join` command line only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JoinToken(SWMTKN-1-…)")
    }
}

/// Parses [`join_token_probe`]'s output: `SWMTKN-1-<CA digest>-<secret>`. Output of another
/// shape is refused without being quoted, as it may hold the token.
pub fn parse_join_token(key: &str, out: &ProbeOutput) -> Result<JoinToken, FactError> {
    if out.rc != 0 {
        return Err(failed(key, out));
    }
    let token = out.output.trim();
    let parts: Vec<&str> = token.split('-').collect();
    let well_formed = matches!(parts.as_slice(), ["SWMTKN", "1", digest, secret]
        if [digest, secret].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric())));
    if well_formed {
        Ok(JoinToken(token.to_owned()))
    } else {
        Err(FactError::new(
            key,
            "docker swarm join-token printed something that is not a join token",
        ))
    }
}

#[cfg(test)]
mod tests;
