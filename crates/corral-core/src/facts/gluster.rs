//! GlusterFS facts: the probes that read the trusted pool (`peer status`, `pool list`) and
//! volumes (`volume info`, `volume status`, `volume get`) through the CLI's `--xml` output,
//! what glusterd will check about a brick directory (its file system, whether it is a
//! mount point, the attributes of a brick in use), and a client's mount point (`findmnt`,
//! `/etc/fstab`); and pure parsers of that output into the typed facts `gluster/volume`
//! plans from.
//!
//! Nothing here runs a command or decides a change. Every parser is tested against outputs
//! recorded from real glusterd on lab hosts (`fixtures/cluster/`, made by
//! `scripts/record-cluster-fixtures.sh`), and each test checks that the fixture was recorded
//! with the probe's current script.
//!
//! What the recordings taught (GlusterFS 10.3, Debian 12):
//! - Success or failure is `opRet` (0 or -1), not the exit code: `volume info NAME` and
//!   `volume status NAME` exit 0 on a missing volume, `volume get` exits 1.
//! - A peer whose glusterd stopped keeps `stateStr` "Peer in Cluster" with `connected` 0
//!   (the human output's "(Disconnected)" is not in the XML); `volume status` then leaves that
//!   peer's brick and self-heal daemon out rather than listing them offline.
//! - `volume get VOL all` marks defaults with a ` (DEFAULT)` suffix, lists some options twice
//!   and leaves out `user.*` options, which only `volume info` (or `volume get VOL user.x`)
//!   shows.
//! - `volume create` sets `trusted.glusterfs.volume-id` on each brick directory, `volume
//!   start` adds `trusted.gfid`; glusterd does not create a brick's missing parents, and
//!   with `--xml` a failed `volume create` still exits 0 (steps run it without `--xml`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::{FactError, Probe, ProbeOutput};
use crate::shell::quote;

/// Key of [`peer_status_probe`].
pub const PEER_STATUS_KEY: &str = "gluster:peer-status";
/// Key of [`pool_list_probe`].
pub const POOL_LIST_KEY: &str = "gluster:pool-list";
/// Key of [`volume_info_probe`] for every volume.
pub const VOLUME_INFO_KEY: &str = "gluster:volume-info";
/// Keys of [`volume_status_probe`] start so.
const VOLUME_STATUS_PREFIX: &str = "gluster:volume-status:";
/// Keys of [`volume_get_probe`] start so.
const VOLUME_GET_PREFIX: &str = "gluster:volume-get:";

/// Every gluster command starts so: `--mode=script` answers its confirmations with yes
/// (nothing here asks any) and never waits on a terminal.
const GLUSTER: &str = "gluster --mode=script --xml";

/// Shell that a fact script runs before its probes when one of them calls `gluster`: it
/// defines a function `gluster` that runs the CLI in a mount namespace of its own where
/// geo-replication's `gsyncd` is `/bin/true`.
///
/// Every start of the CLI registers its commands, and registering `volume geo-replication`
/// runs `gsyncd --version` (cli/src/cli-cmd-volume.c, `cli_check_gsync_present`): a Python
/// start-up, three quarters of the CLI's cost (measured on a lab host, GlusterFS 10.3: 85 ms
/// of wall and 85 ms of CPU per `peer status`, 20 ms and 17 ms without it). With `true` in
/// its place the CLI leaves geo-replication's commands out, which no probe asks, and
/// prints the same bytes for every other (compared on a lab host: `peer status`, `pool
/// list`, `volume info`, `status`, `get`, a missing volume, a batch).
///
/// The namespace is private (`unshare -m` makes its mounts private, and it ends with the
/// CLI), so nothing on the host changes. Where it cannot be had (no `gsyncd` in the known
/// places, `unshare` refused: no `CAP_SYS_ADMIN`, a seccomp or LSM policy) the function is
/// not defined and the CLI runs as it is; where only the bind mount fails, the CLI runs in
/// the namespace as it is.
pub const QUICK_CLI: &str = r#"corral_gsyncd=
for corral_d in /usr/lib/*/glusterfs /usr/libexec/glusterfs /usr/lib/glusterfs; do
  if [ -x "$corral_d/gsyncd" ]; then corral_gsyncd=$corral_d/gsyncd; break; fi
done
if [ -n "$corral_gsyncd" ] && unshare -m true 2>/dev/null; then
  gluster() { unshare -m sh -c 'mount --bind /bin/true "$0" 2>/dev/null; exec gluster "$@"' "$corral_gsyncd" "$@"; }
fi
"#;

/// Whether `script` runs the gluster CLI (a word `gluster`; not a path holding it).
pub fn calls_cli(script: &str) -> bool {
    crate::shell::words(script).any(|word| word == "gluster")
}

/// The peers of the machine asked (not itself).
pub fn peer_status_probe() -> Probe {
    Probe {
        key: PEER_STATUS_KEY.to_owned(),
        script: format!("{GLUSTER} peer status"),
    }
}

/// The trusted pool: the peers and the machine asked, as `localhost`.
pub fn pool_list_probe() -> Probe {
    Probe {
        key: POOL_LIST_KEY.to_owned(),
        script: format!("{GLUSTER} pool list"),
    }
}

/// `volume info` of every volume (`None`) or of one.
pub fn volume_info_probe(volume: Option<&str>) -> Probe {
    match volume {
        None => Probe {
            key: VOLUME_INFO_KEY.to_owned(),
            script: format!("{GLUSTER} volume info"),
        },
        Some(volume) => Probe {
            key: format!("{VOLUME_INFO_KEY}:{volume}"),
            script: format!("{GLUSTER} volume info {}", quote(volume)),
        },
    }
}

/// `volume status` of a started volume: which brick and daemon processes run, on which port.
pub fn volume_status_probe(volume: &str) -> Probe {
    Probe {
        key: format!("{VOLUME_STATUS_PREFIX}{volume}"),
        script: format!("{GLUSTER} volume status {}", quote(volume)),
    }
}

/// Keys of [`volume_probe`] start so.
const VOLUME_PREFIX: &str = "gluster:volume:";

/// What a plan asks of volume `volume` on the member that answers for it, in one `gluster`
/// process: [`volume_info_probe`], [`volume_status_probe`] and [`volume_get_probe`] of every
/// option, as lines on the CLI's standard input (its batch mode; each `gluster` process
/// costs 50-100 ms of CPU). [`expand`] turns the answer into those three probes' outputs.
/// A name gluster would refuse (it takes letters, digits, `-` and `_`) is asked in three
/// processes instead, as no line of standard input may carry it.
pub fn volume_probe(volume: &str) -> Probe {
    let commands = volume_commands(volume);
    let plain = !volume.is_empty()
        && volume
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let script = match plain {
        true => format!(
            "printf '%s\\n' {} | {GLUSTER}",
            commands
                .iter()
                .map(|(_, words)| quote(&words.join(" ")))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        false => commands
            .iter()
            .map(|(_, words)| {
                let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
                format!("{GLUSTER} {}", quoted.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    Probe {
        key: format!("{VOLUME_PREFIX}{volume}"),
        script,
    }
}

/// The questions of [`volume_probe`], in order: the key each answer is kept under, and the
/// command's words.
fn volume_commands(volume: &str) -> [(String, Vec<String>); 3] {
    let words = |w: &[&str]| w.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    [
        (
            volume_info_probe(Some(volume)).key,
            words(&["volume", "info", volume]),
        ),
        (
            volume_status_probe(volume).key,
            words(&["volume", "status", volume]),
        ),
        (
            volume_get_probe(volume, None).key,
            words(&["volume", "get", volume, "all"]),
        ),
    ]
}

/// The line the CLI greets its standard input with, even in script mode.
const WELCOME: &str = "Welcome to gluster prompt, type 'help' to see the available commands.";

/// Replaces every [`volume_probe`] output in `facts` by the outputs of the three probes it
/// answered, one XML document each in the order asked. Their exit code is the batch's (the
/// parsers read gluster's `opRet`, not it). When the answer is not one document per
/// question (glusterd down: "Connection failed…"), each question gets what was printed
/// without documents, which its parser reports as it did for a question asked alone.
pub fn expand(facts: &mut super::HostFacts) {
    let batches: Vec<String> = facts
        .probes
        .keys()
        .filter(|k| k.starts_with(VOLUME_PREFIX))
        .cloned()
        .collect();
    for key in batches {
        let Some(out) = facts.probes.remove(&key) else {
            continue;
        };
        let volume = &key[VOLUME_PREFIX.len()..];
        for (key, output) in split_answers(&out.output, &volume_commands(volume)) {
            facts.probes.insert(key, ProbeOutput { rc: out.rc, output });
        }
    }
}

/// The answers of a batch, by key: each `<?xml` document in order, or the text outside
/// documents for all when their number is not that of the questions.
fn split_answers(output: &str, commands: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    const START: &str = "<?xml";
    const END: &str = "</cliOutput>";
    let mut documents = Vec::new();
    let mut other = String::new();
    let mut rest = output;
    loop {
        match rest.find(START) {
            Some(at) => {
                other.push_str(&rest[..at]);
                let body = &rest[at..];
                let next = body[START.len()..]
                    .find(START)
                    .map_or(body.len(), |n| n + START.len());
                // Up to the end of `</cliOutput>` and its newline: what follows is not
                // the document's (the CLI's greeting may come after it).
                let end = body[..next].find(END).map_or(next, |n| {
                    let end = n + END.len();
                    end + usize::from(body[end..].starts_with('\n'))
                });
                documents.push(body[..end].to_owned());
                rest = &body[end..];
            }
            None => {
                other.push_str(rest);
                break;
            }
        }
    }
    let other: String = other
        .lines()
        .filter(|line| line.trim() != WELCOME && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    commands
        .iter()
        .enumerate()
        .map(|(n, (key, _))| {
            let output = match documents.len() == commands.len() {
                true => documents[n].clone(),
                false => other.clone(),
            };
            (key.clone(), output)
        })
        .collect()
}

/// `volume get` of every option's effective value (`None`) or of one option.
pub fn volume_get_probe(volume: &str, option: Option<&str>) -> Probe {
    let option = option.unwrap_or("all");
    Probe {
        key: format!("{VOLUME_GET_PREFIX}{volume}:{option}"),
        script: format!("{GLUSTER} volume get {} {}", quote(volume), quote(option)),
    }
}

// ---------------------------------------------------------------------------------------
// The XML as the CLI prints it (cli/src/cli-xml-output.c).

/// `<cliOutput>`: the outcome, and the one answer element of the command.
#[derive(Deserialize)]
struct CliOutput {
    #[serde(rename = "opRet")]
    op_ret: i32,
    #[serde(rename = "opErrno", default)]
    op_errno: i32,
    #[serde(rename = "opErrstr", default)]
    op_errstr: String,
    #[serde(rename = "peerStatus", default)]
    peer_status: Option<PeerStatusXml>,
    #[serde(rename = "volInfo", default)]
    vol_info: Option<VolInfoXml>,
    #[serde(rename = "volStatus", default)]
    vol_status: Option<VolStatusXml>,
    #[serde(rename = "volGetopts", default)]
    vol_getopts: Option<VolGetoptsXml>,
}

#[derive(Deserialize)]
struct PeerStatusXml {
    #[serde(default)]
    peer: Vec<PeerXml>,
}

#[derive(Deserialize)]
struct PeerXml {
    uuid: String,
    hostname: String,
    #[serde(default)]
    hostnames: Option<HostnamesXml>,
    #[serde(deserialize_with = "zero_one")]
    connected: bool,
    #[serde(rename = "stateStr", default)]
    state_str: Option<String>,
}

#[derive(Deserialize)]
struct HostnamesXml {
    #[serde(default)]
    hostname: Vec<String>,
}

#[derive(Deserialize)]
struct VolInfoXml {
    volumes: VolumesXml,
}

#[derive(Deserialize)]
struct VolumesXml {
    #[serde(default)]
    volume: Vec<VolumeXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeXml {
    name: String,
    id: String,
    status: u32,
    brick_count: u32,
    dist_count: u32,
    replica_count: u32,
    #[serde(default)]
    arbiter_count: u32,
    #[serde(default)]
    disperse_count: u32,
    #[serde(default)]
    redundancy_count: u32,
    type_str: String,
    #[serde(default)]
    bricks: Option<BricksXml>,
    #[serde(default)]
    options: Option<OptionsXml>,
}

#[derive(Deserialize)]
struct BricksXml {
    #[serde(default)]
    brick: Vec<BrickXml>,
}

/// `<brick uuid="…">host:/path<name>host:/path</name>…</brick>`: the text before the
/// children repeats the name and is skipped.
#[derive(Deserialize)]
struct BrickXml {
    name: String,
    #[serde(rename = "hostUuid")]
    host_uuid: String,
    #[serde(rename = "isArbiter", default, deserialize_with = "zero_one")]
    is_arbiter: bool,
}

#[derive(Deserialize)]
struct OptionsXml {
    #[serde(default)]
    option: Vec<NameValueXml>,
}

#[derive(Deserialize)]
struct NameValueXml {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct VolStatusXml {
    volumes: VolStatusVolumesXml,
}

#[derive(Deserialize)]
struct VolStatusVolumesXml {
    #[serde(default)]
    volume: Vec<VolStatusVolumeXml>,
}

#[derive(Deserialize)]
struct VolStatusVolumeXml {
    #[serde(rename = "volName")]
    vol_name: String,
    #[serde(default)]
    node: Vec<StatusNodeXml>,
}

#[derive(Deserialize)]
struct StatusNodeXml {
    hostname: String,
    path: String,
    peerid: String,
    #[serde(deserialize_with = "zero_one")]
    status: bool,
    /// A number or `N/A`.
    port: String,
    pid: i64,
}

#[derive(Deserialize)]
struct VolGetoptsXml {
    #[serde(rename = "Opt", default)]
    opt: Vec<OptXml>,
}

#[derive(Deserialize)]
struct OptXml {
    #[serde(rename = "Option")]
    option: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// gluster's booleans: `0` / `1`.
fn zero_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match String::deserialize(deserializer)?.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(serde::de::Error::custom(format!(
            "expected 0 or 1, found {other:?}"
        ))),
    }
}

/// A command's answer: its `<cliOutput>`, whatever the exit code, or an error quoting what
/// was printed instead (glusterd down: "Connection failed. Please check if gluster daemon is
/// operational.").
fn cli_output(key: &str, out: &ProbeOutput) -> Result<CliOutput, FactError> {
    let Some(start) = out.output.find("<cliOutput>") else {
        return Err(FactError::unexpected(key, out));
    };
    quick_xml::de::from_str(&out.output[start..])
        .map_err(|e| FactError::new(key, format!("gluster's XML answer is unreadable: {e}")))
}

impl CliOutput {
    /// The error of a failed command (`opRet` -1), in gluster's words.
    fn failure(&self, key: &str) -> Option<FactError> {
        (self.op_ret != 0).then(|| {
            FactError::new(
                key,
                format!(
                    "gluster failed (opErrno {}): {}",
                    self.op_errno,
                    if self.op_errstr.is_empty() {
                        "no message"
                    } else {
                        &self.op_errstr
                    }
                ),
            )
        })
    }

    /// "Volume NAME does not exist" (`volume info NAME` says only "Volume does not exist").
    fn volume_missing(&self) -> bool {
        self.op_ret != 0
            && self.op_errstr.starts_with("Volume ")
            && self.op_errstr.ends_with(" does not exist")
    }
}

// ---------------------------------------------------------------------------------------
// Peers

/// A member of the trusted pool, as the machine asked sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uuid: String,
    /// The name it was probed by; `localhost` for the machine asked (in `pool list`).
    pub hostname: String,
    /// Every name and address the pool knows it by (empty for `localhost`).
    pub hostnames: Vec<String>,
    pub connected: bool,
    /// `stateStr`, e.g. "Peer in Cluster", "Accepted peer request"; none for `localhost`.
    pub state: Option<String>,
}

impl Peer {
    /// Whether the peer is a full, connected member: only then can it hold bricks.
    pub fn in_cluster(&self) -> bool {
        self.connected && self.state.as_deref() == Some("Peer in Cluster")
    }

    /// Whether the pool knows the peer by `name`.
    pub fn known_as(&self, name: &str) -> bool {
        self.hostname == name || self.hostnames.iter().any(|h| h == name)
    }
}

fn peers(key: &str, out: &ProbeOutput) -> Result<Vec<Peer>, FactError> {
    let cli = cli_output(key, out)?;
    if let Some(failure) = cli.failure(key) {
        return Err(failure);
    }
    let list = cli.peer_status.map(|p| p.peer).unwrap_or_default();
    Ok(list
        .into_iter()
        .map(|p| Peer {
            uuid: p.uuid,
            hostname: p.hostname,
            hostnames: p.hostnames.map(|h| h.hostname).unwrap_or_default(),
            connected: p.connected,
            state: p.state_str,
        })
        .collect())
}

/// Parses [`peer_status_probe`]'s output.
pub fn parse_peer_status(key: &str, out: &ProbeOutput) -> Result<Vec<Peer>, FactError> {
    peers(key, out)
}

/// Parses [`pool_list_probe`]'s output (the same shape as `peer status`).
pub fn parse_pool_list(key: &str, out: &ProbeOutput) -> Result<Vec<Peer>, FactError> {
    peers(key, out)
}

// ---------------------------------------------------------------------------------------
// Volumes

/// A volume as `volume info` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub id: String,
    pub state: VolumeState,
    /// `typeStr`: "Replicate", "Distribute", "Distributed-Replicate", "Disperse", …
    pub kind: String,
    pub brick_count: u32,
    pub dist_count: u32,
    /// Counts the arbiter: "replica 3 arbiter 1" is 3 and 1.
    pub replica_count: u32,
    pub arbiter_count: u32,
    pub disperse_count: u32,
    pub redundancy_count: u32,
    /// In order: consecutive bricks form a replica set.
    pub bricks: Vec<Brick>,
    /// Options set on the volume ("Options Reconfigured"), including the few glusterd sets
    /// itself at creation (`nfs.disable`, `transport.address-family`, …) and `user.*`.
    pub options: BTreeMap<String, String>,
}

impl Volume {
    /// The project that manages the volume (the `user.corral.project` option), if any.
    pub fn managed_by(&self) -> Option<&str> {
        self.options.get("user.corral.project").map(String::as_str)
    }
}

/// `status`: 0 Created, 1 Started, 2 Stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeState {
    Created,
    Started,
    Stopped,
    Other(u32),
}

impl VolumeState {
    fn from_code(code: u32) -> VolumeState {
        match code {
            0 => VolumeState::Created,
            1 => VolumeState::Started,
            2 => VolumeState::Stopped,
            other => VolumeState::Other(other),
        }
    }
}

/// A brick, `host:/path` as given at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brick {
    pub host: String,
    pub path: String,
    /// The peer UUID of the host.
    pub host_uuid: String,
    pub is_arbiter: bool,
}

impl Brick {
    fn from_name(name: &str, host_uuid: String, is_arbiter: bool) -> Option<Brick> {
        let (host, path) = name.split_once(":/")?;
        Some(Brick {
            host: host.to_owned(),
            path: format!("/{path}"),
            host_uuid,
            is_arbiter,
        })
    }
}

/// Parses [`volume_info_probe`]'s output. A named volume that does not exist is an empty
/// list, as a listing without it would be.
pub fn parse_volume_info(key: &str, out: &ProbeOutput) -> Result<Vec<Volume>, FactError> {
    let cli = cli_output(key, out)?;
    if (cli.op_ret != 0 && cli.op_errstr == "Volume does not exist") || cli.volume_missing() {
        return Ok(Vec::new());
    }
    if let Some(failure) = cli.failure(key) {
        return Err(failure);
    }
    let volumes = cli.vol_info.map(|v| v.volumes.volume).unwrap_or_default();
    volumes
        .into_iter()
        .map(|v| {
            let bricks = v
                .bricks
                .map(|b| b.brick)
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    Brick::from_name(&b.name, b.host_uuid, b.is_arbiter).ok_or_else(|| {
                        FactError::new(
                            key,
                            format!("brick `{}` of `{}` is not HOST:/PATH", b.name, v.name),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Volume {
                state: VolumeState::from_code(v.status),
                kind: v.type_str,
                brick_count: v.brick_count,
                dist_count: v.dist_count,
                replica_count: v.replica_count,
                arbiter_count: v.arbiter_count,
                disperse_count: v.disperse_count,
                redundancy_count: v.redundancy_count,
                bricks,
                options: v
                    .options
                    .map(|o| o.option)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| (o.name, o.value))
                    .collect(),
                name: v.name,
                id: v.id,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Volume status

/// What `volume status VOL` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStatusReply {
    Status(VolumeStatus),
    /// The volume exists but is not started: no processes to report.
    NotStarted,
    Missing,
}

/// The processes of a started volume, as seen from the machine asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStatus {
    pub name: String,
    /// Bricks on connected peers only: a brick of a disconnected peer is left out, not
    /// listed offline.
    pub bricks: Vec<BrickProcess>,
    /// Self-heal daemons and the like, one per connected peer.
    pub daemons: Vec<DaemonProcess>,
}

/// A brick's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickProcess {
    pub host: String,
    pub path: String,
    pub peer_id: String,
    pub online: bool,
    /// `None` when offline (`N/A`).
    pub port: Option<u16>,
    /// `None` when offline (`-1`).
    pub pid: Option<u32>,
}

/// A volume daemon's process, e.g. "Self-heal Daemon".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonProcess {
    pub name: String,
    /// The peer's name; `localhost` for the machine asked.
    pub host: String,
    pub peer_id: String,
    pub online: bool,
    pub pid: Option<u32>,
}

/// Parses [`volume_status_probe`]'s output.
pub fn parse_volume_status(key: &str, out: &ProbeOutput) -> Result<VolumeStatusReply, FactError> {
    let cli = cli_output(key, out)?;
    if cli.volume_missing() {
        return Ok(VolumeStatusReply::Missing);
    }
    if cli.op_ret != 0 && cli.op_errstr.ends_with(" is not started") {
        return Ok(VolumeStatusReply::NotStarted);
    }
    if let Some(failure) = cli.failure(key) {
        return Err(failure);
    }
    let volume = cli
        .vol_status
        .and_then(|s| s.volumes.volume.into_iter().next())
        .ok_or_else(|| FactError::new(key, "gluster's volume status names no volume"))?;
    let mut bricks = Vec::new();
    let mut daemons = Vec::new();
    for node in volume.node {
        let pid = u32::try_from(node.pid).ok();
        // Bricks have a path; daemons have the peer's name there.
        if node.path.starts_with('/') {
            bricks.push(BrickProcess {
                host: node.hostname,
                path: node.path,
                peer_id: node.peerid,
                online: node.status,
                port: node.port.parse().ok(),
                pid,
            });
        } else {
            daemons.push(DaemonProcess {
                name: node.hostname,
                host: node.path,
                peer_id: node.peerid,
                online: node.status,
                pid,
            });
        }
    }
    Ok(VolumeStatusReply::Status(VolumeStatus {
        name: volume.vol_name,
        bricks,
        daemons,
    }))
}

// ---------------------------------------------------------------------------------------
// Volume options

/// An option's effective value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionValue {
    pub value: String,
    /// Printed as `VALUE (DEFAULT)`: nobody set it.
    pub is_default: bool,
}

/// Parses [`volume_get_probe`]'s output: options by name, or `None` when the volume does
/// not exist. An option gluster does not know is an error (its message guesses names:
/// "Did you mean nfs.port?").
pub fn parse_volume_get(
    key: &str,
    out: &ProbeOutput,
) -> Result<Option<BTreeMap<String, OptionValue>>, FactError> {
    let cli = cli_output(key, out)?;
    if cli.volume_missing() {
        return Ok(None);
    }
    if let Some(failure) = cli.failure(key) {
        return Err(failure);
    }
    let opts = cli.vol_getopts.map(|g| g.opt).unwrap_or_default();
    Ok(Some(
        opts.into_iter()
            .map(|opt| {
                let value = match opt.value.strip_suffix(" (DEFAULT)") {
                    Some(value) => OptionValue {
                        value: value.to_owned(),
                        is_default: true,
                    },
                    None => OptionValue {
                        value: opt.value,
                        is_default: false,
                    },
                };
                (opt.option, value)
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------
// Digests

/// What a facts digest covers of a pool or volume probe's output: the parsed facts in an
/// order of their own, not the XML. glusterd lists the other peers' self-heal daemons in
/// the order their answers arrive, so two readings of an unchanged volume differ as text,
/// and a saved plan was refused as stale. Process IDs are left out: no plan reads them.
/// `None` for other probes, and for output that does not parse (digested as it is).
pub fn canonical(key: &str, out: &ProbeOutput) -> Option<String> {
    if key == PEER_STATUS_KEY || key == POOL_LIST_KEY {
        let mut peers = peers(key, out).ok()?;
        for peer in &mut peers {
            peer.hostnames.sort();
        }
        peers.sort_by(|a, b| (&a.uuid, &a.hostname).cmp(&(&b.uuid, &b.hostname)));
        Some(format!("{peers:?}"))
    } else if key
        .strip_prefix(VOLUME_INFO_KEY)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
    {
        // A volume's bricks stay in their order: consecutive bricks form a replica set.
        let mut volumes = parse_volume_info(key, out).ok()?;
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Some(format!("{volumes:?}"))
    } else if key.starts_with(VOLUME_STATUS_PREFIX) {
        Some(match parse_volume_status(key, out).ok()? {
            VolumeStatusReply::Status(status) => {
                let mut bricks: Vec<_> = status
                    .bricks
                    .iter()
                    .map(|b| (&b.host, &b.path, &b.peer_id, b.online, b.port))
                    .collect();
                bricks.sort();
                let mut daemons: Vec<_> = status
                    .daemons
                    .iter()
                    .map(|d| (&d.name, &d.host, &d.peer_id, d.online))
                    .collect();
                daemons.sort();
                format!("status {:?} {bricks:?} {daemons:?}", status.name)
            }
            other => format!("{other:?}"),
        })
    } else if key.starts_with(VOLUME_GET_PREFIX) {
        Some(format!("{:?}", parse_volume_get(key, out).ok()?))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Brick directories, on each brick machine

/// What glusterd will check about a brick directory before `volume create`, read on the
/// brick's machine: whether it exists, the file system its parent is on (glusterd refuses
/// the root file system without `force`), whether it is a mount point itself (refused
/// without `force`), and which of it and its parents carry the extended attributes of a
/// volume brick (refused without `force`: it is or was part of a volume). In a subshell:
/// its variables stay its own.
///
/// For a plain path (absolute, no empty, `.` or `..` component, no character `getfattr`
/// would escape) the parents are listed in the script, and one `getfattr -d` reads both
/// attributes of the path and every parent: 5 programs where [`brick_probe_walking`] runs
/// 14 for `/data/bricks/gv0` (a `dirname` per level, a `getfattr` per attribute and
/// level), with the same output. Any other path is walked.
pub fn brick_probe(path: &str) -> Probe {
    let Some(chain) = plain_ancestors(path) else {
        return brick_probe_walking(path);
    };
    let words = |paths: &[String]| -> String {
        paths.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ")
    };
    Probe {
        key: format!("gluster:brick:{path}"),
        script: format!(
            r##"(p={}
if [ -d "$p" ]; then echo exists; elif [ -e "$p" ]; then echo not-a-directory; fi
for d in {}; do [ ! -e "$d" ] || break; done
echo "filesystem $(findmnt -n -r -o TARGET -T "$d")"
if findmnt -M "$p" >/dev/null 2>&1; then echo mount-point; fi
if command -v getfattr >/dev/null; then
  set --; for d in {}; do if [ $# -gt 0 ] || [ -e "$d" ]; then set -- "$@" "$d"; fi; done
  a=$(getfattr --absolute-names -d -m '^trusted\.(glusterfs\.volume-id|gfid)$' -- "$@" 2>/dev/null)
  n='
'
  for d in "$@"; do
    case "$n$a$n" in *"$n# file: $d$n"*)
      b=${{a#*"# file: $d$n"}}; b=$n${{b%%"$n$n"*}}
      for x in trusted.glusterfs.volume-id trusted.gfid; do case $b in *"$n$x="*) echo "in-use $x $d" ;; esac; done ;;
    esac
  done
else echo no-getfattr; fi)"##,
            quote(path),
            words(&chain[1..]),
            words(&chain),
        ),
    }
}

/// `path` and each of its parents up to `/`, for a plain absolute path (see
/// [`brick_probe`]).
fn plain_ancestors(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    let components: Vec<&str> = rest.split('/').collect();
    let plain = |c: &&str| {
        !c.is_empty()
            && *c != "."
            && *c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+@:,=".contains(&b))
    };
    if !components.iter().all(plain) {
        return None;
    }
    let mut chain: Vec<String> = (1..=components.len())
        .rev()
        .map(|n| format!("/{}", components[..n].join("/")))
        .collect();
    chain.push("/".to_owned());
    Some(chain)
}

/// [`brick_probe`] for any path: walked up with `dirname`, a `getfattr` per attribute
/// and level.
pub fn brick_probe_walking(path: &str) -> Probe {
    Probe {
        key: format!("gluster:brick:{path}"),
        script: format!(
            r#"(p={}
if [ -d "$p" ]; then echo exists; elif [ -e "$p" ]; then echo not-a-directory; fi
d=$(dirname -- "$p"); while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
echo "filesystem $(findmnt -n -r -o TARGET -T "$d")"
if findmnt -M "$p" >/dev/null 2>&1; then echo mount-point; fi
if command -v getfattr >/dev/null; then
  d=$p; while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
  while :; do
    for a in trusted.glusterfs.volume-id trusted.gfid; do
      if getfattr --absolute-names -n "$a" -- "$d" >/dev/null 2>&1; then echo "in-use $a $d"; fi
    done
    [ "$d" = / ] && break
    d=$(dirname -- "$d")
  done
else echo no-getfattr; fi)"#,
            quote(path)
        ),
    }
}

/// What [`brick_probe`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrickDir {
    /// The path is a directory already.
    pub exists: bool,
    /// The path is something other than a directory.
    pub not_directory: bool,
    /// The mount point of the file system the brick's parent directory (or its nearest
    /// existing ancestor) is on: `/` is the root file system.
    pub filesystem: String,
    /// The path is a mount point itself.
    pub mount_point: bool,
    /// `(attribute, path)` for each volume attribute on the path or a parent.
    pub in_use: Vec<(String, String)>,
    /// `getfattr` (package `attr`) is missing, so `in_use` could not be read.
    pub no_getfattr: bool,
}

impl BrickDir {
    /// Whether the brick would be on the root file system.
    pub fn on_root_filesystem(&self) -> bool {
        self.filesystem == "/"
    }
}

/// Parses [`brick_probe`]'s output.
pub fn parse_brick(key: &str, out: &ProbeOutput) -> Result<BrickDir, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    let mut dir = BrickDir::default();
    for line in out.output.lines() {
        match line.split_once(' ').unwrap_or((line, "")) {
            ("exists", _) => dir.exists = true,
            ("not-a-directory", _) => dir.not_directory = true,
            ("mount-point", _) => dir.mount_point = true,
            ("no-getfattr", _) => dir.no_getfattr = true,
            ("filesystem", target) => dir.filesystem = target.trim().to_owned(),
            ("in-use", rest) => {
                let (attr, path) = rest.split_once(' ').unwrap_or((rest, ""));
                dir.in_use.push((attr.to_owned(), path.to_owned()));
            }
            ("", _) => {}
            _ => return Err(FactError::unexpected(key, out)),
        }
    }
    if dir.filesystem.is_empty() {
        return Err(FactError::new(
            key,
            format!(
                "findmnt named no file system for the brick's parent: {}",
                crate::base::text::tail(&out.output, 400)
            ),
        ));
    }
    Ok(dir)
}

// ---------------------------------------------------------------------------------------
// Client mounts, on each mount machine

/// What is mounted exactly at `path` (`-M`: `--target` would answer with the file system
/// the path is on).
pub fn mount_probe(path: &str) -> Probe {
    Probe {
        key: format!("gluster:mount:{path}"),
        script: format!(
            "findmnt -J -M {} -o SOURCE,TARGET,FSTYPE,OPTIONS",
            quote(path)
        ),
    }
}

/// A file system mounted at a path, as `findmnt` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Mounted {
    /// `host:/volume` for a Gluster volume.
    pub source: String,
    pub target: String,
    /// `fuse.glusterfs` for a Gluster volume.
    pub fstype: String,
    pub options: String,
}

impl Mounted {
    /// The volume, when a Gluster volume is mounted.
    pub fn gluster_volume(&self) -> Option<&str> {
        if self.fstype != "fuse.glusterfs" {
            return None;
        }
        self.source.split_once(":/").map(|(_, volume)| volume)
    }
}

/// Parses [`mount_probe`]'s output: `None` when nothing is mounted there (exit code 1,
/// no output).
pub fn parse_mount(key: &str, out: &ProbeOutput) -> Result<Option<Mounted>, FactError> {
    #[derive(Deserialize)]
    struct Findmnt {
        filesystems: Vec<Mounted>,
    }
    if out.rc == 1 && out.output.trim().is_empty() {
        return Ok(None);
    }
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    let found: Findmnt = serde_json::from_str(&out.output)
        .map_err(|e| FactError::new(key, format!("findmnt's JSON is unreadable: {e}")))?;
    // Mounted twice on the same point: the last one is what the path shows.
    Ok(found.filesystems.into_iter().last())
}

/// The `/etc/fstab` lines (not comments) that mount something at `path`.
pub fn fstab_probe(path: &str) -> Probe {
    Probe {
        key: format!("gluster:fstab:{path}"),
        script: format!(
            "if [ -e /etc/fstab ]; then awk '$1 !~ /^#/ && $2 == p' p={} /etc/fstab; fi",
            quote(path)
        ),
    }
}

/// One `/etc/fstab` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    /// The line as written.
    pub line: String,
    /// Its fields, split on blanks: source, mount point, type, options, dump, pass.
    pub fields: Vec<String>,
}

impl FstabEntry {
    pub fn fstype(&self) -> &str {
        self.fields.get(2).map_or("", String::as_str)
    }
}

/// Parses [`fstab_probe`]'s output.
pub fn parse_fstab(key: &str, out: &ProbeOutput) -> Result<Vec<FstabEntry>, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    Ok(out
        .output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| FstabEntry {
            line: line.to_owned(),
            fields: line.split_whitespace().map(str::to_owned).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests;
