//! `gluster/volume`: a GlusterFS volume, the trusted pool its bricks need, and its client
//! mounts.
//!
//! One instance per volume. Every brick machine tells its own view of the pool (`peer
//! status`) and what glusterd will check about its brick directories (root file system,
//! mount point, the extended attributes of a brick that is or was part of a volume); every
//! mount machine tells what is mounted at the mount point and what `/etc/fstab` says about
//! it. One brick machine whose glusterd answers is then asked for the volume (`volume info`,
//! `volume status`, `volume get VOL all`).
//!
//! In one resource, in this order: the other brick machines are probed from the first one,
//! by the names the bricks use, until they are `Peer in Cluster`; brick directories are
//! created; the volume is created (`replica N [arbiter 1]`, bricks in the order written, so
//! that consecutive bricks form a replica set) and marked with `user.corral.project`;
//! options are set (diffed against what `volume get` shows); the volume is started; and it
//! is mounted on each mount machine through an `/etc/fstab` line (`_netdev`, the other
//! brick machines as `backup-volfile-servers`, and on brick machines
//! `x-systemd.requires=glusterd.service`).
//!
//! What it refuses: layouts that gluster's script mode would accept silently (replica 2
//! without an arbiter, two bricks of a replica set on one machine) at load; `force` unless
//! the configuration opts in for bricks on the root file system, and never for a brick
//! that is or was part of a volume; changing the bricks or replica count of an existing
//! volume (removing bricks that hold data is refused; growing is not supported yet); and
//! changing a volume that is not marked as this project's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ClusterFacts, ClusterKind, ClusterStep, Kind, LinkContext, Links, Step};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::base::diagnostic::ConfigError;
use crate::base::yaml::Value;
use crate::facts::gluster::{self, BrickDir, Peer, Volume, VolumeState, VolumeStatusReply};
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::quote;

pub const KIND: &str = "gluster/volume";

/// The volume option that marks a volume as created by a project (its value).
pub const PROJECT_OPTION: &str = "user.corral.project";

/// Every gluster command a step runs: `--mode=script` never waits on a terminal (and says
/// yes to every question, which is why the checks here come first).
const GLUSTER: &str = "gluster --mode=script";

/// An awk program over `gluster --xml volume status NAME` (one record a `<node>`): exits 0
/// when there are bricks (nodes whose path is absolute, not a self-heal daemon's host) and
/// every one is online (`<status>1</status>`).
const ALL_BRICKS_ONLINE: &str = r"/<path>\// { bricks++; if ($0 !~ /<status>1<\/status>/) offline++ } END { exit !(bricks > 0 && offline == 0) }";

/// How long a started volume's bricks get to come online before its mounts.
const BRICKS_ONLINE_SECONDS: u32 = 60;

/// `gluster/volume` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlusterVolumeSpec {
    /// Copies of every file: consecutive bricks, in the order written, form replica sets of
    /// this many. Leave it out for a distributed volume (no copies). 3, or 3 with an
    /// arbiter; 2 is refused (split-brain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// The last brick of each replica set of 3 holds only metadata (`replica 3 arbiter 1`):
    /// two copies of the data, and a tie-breaker against split-brain. `true`, or `1` as the
    /// gluster CLI counts it (`0` is `false`).
    #[serde(default, deserialize_with = "arbiter_flag")]
    #[schemars(with = "ArbiterSchema")]
    pub arbiter: bool,
    /// The bricks, in order: machine and directory. A brick directory belongs on a file
    /// system of its own (not a mount point itself: a directory below one).
    pub bricks: Vec<BrickSpec>,
    /// Volume options (`volume set`), compared with what `volume get` shows. Options left
    /// out are not reset.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Mount the volume on these machines, through `/etc/fstab`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<MountSpec>,
    /// Allow bricks on the root file system: gluster refuses them unless `volume create`
    /// runs with `force`, which corral then passes. `force` also overrides gluster's checks
    /// for bricks that are mount points or part of a volume, so corral checks those itself
    /// first and still refuses them. (The lab keeps `/data/bricks` on a file system of its
    /// own, so bricks below it do not need this.)
    #[serde(default)]
    pub allow_root_partition_bricks: bool,
    /// The project, filled in at load: set as `user.corral.project` on the volumes corral
    /// creates, and required on the volumes it changes.
    #[serde(skip)]
    #[schemars(skip)]
    pub project: String,
    /// The machines `mount.machines` selects, filled in at load.
    #[serde(skip)]
    #[schemars(skip)]
    pub mount_machines: Vec<String>,
}

/// How `arbiter:` is written: a boolean, or gluster's count of arbiter bricks per set.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the schema's shape only
enum ArbiterSchema {
    Flag(bool),
    Count(#[schemars(range(min = 0, max = 1))] u8),
}

/// Reads `arbiter:` as a boolean or as the gluster CLI spells it (`replica 3 arbiter 1`):
/// a replica set has at most one arbiter brick, so 1 is `true` and 0 `false`; any other
/// count is refused with what to write.
fn arbiter_flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct Flag;
    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("`true`, `false`, or gluster's arbiter count 1 or 0")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                other => Err(E::custom(format!(
                    "`arbiter: {other}`: a replica set of 3 has at most one arbiter brick; write `arbiter: 1` (or `true`) for `replica 3 arbiter 1`, or leave it out"
                ))),
            }
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<bool, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
    }
    deserializer.deserialize_any(Flag)
}

/// One brick: a directory on a machine, named `machine:path` in the volume. The machine's
/// name is the name gluster knows the peer by, so it must resolve on every brick machine.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrickSpec {
    pub machine: String,
    /// Absolute path of the brick directory; created when missing.
    pub path: String,
}

/// Where the volume is mounted.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    pub machines: crate::base::selector::Selector,
    /// Absolute path of the mount point; created when missing.
    pub path: String,
}

/// A path corral writes into brick names, fstab lines and `awk` variables: absolute, plain,
/// without blanks, `\` or `:`.
fn plain_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == ':')
        && !path
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == "." || c == "..")
}

const PATH_HELP: &str = "write an absolute path such as `/data/bricks/shared`, without `.`, `..` or empty components, blanks, `:`, `\\` or a trailing `/`";

/// Reports an error at a field of brick `index` (the list itself when it cannot be found).
fn brick_error<'c>(
    ctx: &'c mut CheckContext,
    index: usize,
    field: &str,
    message: String,
    label: &str,
) -> &'c mut ConfigError {
    let span = match ctx.spec.get("bricks").map(|b| &b.value) {
        Some(Value::Seq(items)) => items
            .get(index)
            .map(|item| item.get(field).map_or(item.span, |f| f.span)),
        _ => None,
    };
    let span = span.unwrap_or_else(|| ctx.span_of(&["bricks"]));
    let origin = ctx.origin(span);
    ctx.errors.push(ConfigError::at(&origin, message, label));
    ctx.errors.errors.last_mut().expect("just pushed")
}

/// A volume option name gluster accepts (`performance.cache-size`).
fn valid_option_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(['.', '-'])
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Kind for GlusterVolumeSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.bricks.is_empty() {
            ctx.error(&["bricks"], "a volume needs at least one brick", "here")
                .help =
                Some("list the bricks, e.g. `- { machine: n1, path: /data/bricks/shared }`".into());
        }
        let mut seen = BTreeSet::new();
        for (index, brick) in self.bricks.iter().enumerate() {
            if !plain_path(&brick.path) {
                brick_error(
                    ctx,
                    index,
                    "path",
                    format!(
                        "brick path `{}` is not an absolute path corral can use",
                        brick.path
                    ),
                    "here",
                )
                .help = Some(PATH_HELP.into());
            }
            if !seen.insert((brick.machine.as_str(), brick.path.as_str())) {
                brick_error(
                    ctx,
                    index,
                    "path",
                    format!("brick {}:{} is listed twice", brick.machine, brick.path),
                    "again here",
                );
            }
        }
        let count = self.bricks.len();
        match self.replica {
            None if self.arbiter => {
                ctx.error(&["arbiter"], "an arbiter needs `replica: 3`", "here")
                    .help = Some("write `replica: 3` with `arbiter: true`: two data bricks and an arbiter in each set of 3".into());
            }
            None => {}
            Some(replica) if replica < 2 => {
                ctx.error(
                    &["replica"],
                    format!("replica {replica} keeps no copies"),
                    "here",
                )
                .help = Some(
                    "leave `replica` out for a distributed volume, or use `replica: 3`".into(),
                );
            }
            Some(2) if !self.arbiter => {
                ctx.error(
                    &["replica"],
                    "replica 2 without an arbiter risks split-brain (two copies cannot outvote each other), and gluster's script mode would accept it without asking",
                    "split-brain risk",
                )
                .help = Some("use `replica: 3`, or `replica: 3` with `arbiter: true` for two data copies and a metadata-only arbiter".into());
            }
            Some(replica) if self.arbiter && replica != 3 => {
                ctx.error(
                    &["arbiter"],
                    format!("an arbiter needs replica 3, not {replica}"),
                    "here",
                )
                .help = Some("write `replica: 3` with `arbiter: true`: two data bricks and an arbiter in each set of 3".into());
            }
            Some(replica) => {
                let replica = replica as usize;
                if count % replica != 0 {
                    ctx.error(
                        &["bricks"],
                        format!(
                            "{count} bricks are not a multiple of replica {replica}: {} full set(s) and {} brick(s) left over",
                            count / replica,
                            count % replica
                        ),
                        "here",
                    )
                    .help = Some(format!(
                        "list {} or {} bricks",
                        (count / replica).max(1) * replica,
                        (count / replica + 1) * replica
                    ));
                } else {
                    for (set, bricks) in self.bricks.chunks(replica).enumerate() {
                        for (offset, brick) in bricks.iter().enumerate() {
                            let first = bricks.iter().position(|b| b.machine == brick.machine);
                            if first.is_some_and(|first| first < offset) {
                                let index = set * replica + offset;
                                brick_error(
                                    ctx,
                                    index,
                                    "machine",
                                    format!(
                                        "replica set {} has two bricks on {}: losing that machine loses both copies",
                                        set + 1,
                                        brick.machine
                                    ),
                                    "same machine as another brick of its set",
                                )
                                .help = Some(format!(
                                    "consecutive bricks form a replica set of {replica}: put each brick of a set on its own machine"
                                ));
                            }
                        }
                    }
                }
            }
        }
        for (key, value) in &self.options {
            if key == PROJECT_OPTION {
                ctx.error_at_key(
                    &["options", key],
                    format!(
                        "`{PROJECT_OPTION}` is corral's: it marks the volumes a project created"
                    ),
                    "here",
                );
            } else if !valid_option_name(key) {
                ctx.error_at_key(
                    &["options", key],
                    format!("`{key}` is not a volume option name"),
                    "here",
                )
                .help = Some("option names are letters, digits, `.`, `-` and `_`, e.g. `performance.cache-size`".into());
            }
            if value.is_empty() || value.chars().any(char::is_control) {
                ctx.error(
                    &["options", key],
                    format!("the value of `{key}` must be one non-empty line"),
                    "here",
                );
            }
        }
        if let Some(mount) = &self.mount {
            if !plain_path(&mount.path) {
                ctx.error(
                    &["mount", "path"],
                    format!(
                        "mount path `{}` is not an absolute path corral can use",
                        mount.path
                    ),
                    "here",
                )
                .help = Some(PATH_HELP.into());
            }
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        self.project = links.project.clone();
        if let Some(mount) = &self.mount {
            self.mount_machines = links
                .machines
                .iter()
                .filter(|(name, labels)| mount.machines.matches(name, labels))
                .map(|(name, _)| name.clone())
                .collect();
            // Names that are not machines are reported by the loader already.
            let names = matches!(mount.machines, crate::base::selector::Selector::Names(_));
            if self.mount_machines.is_empty() && !names {
                ctx.error(&["mount", "machines"], "this selects no machine", "here")
                    .help = Some("name the machines that mount the volume, or `all`".into());
            }
        }
        Vec::new()
    }

    /// Its mount point, when it mounts itself on machines: a bind mount under it comes
    /// after it.
    fn declare(&self, address: &Address, links: &mut Links) {
        if let Some(path) = self.mount_path() {
            links
                .gluster_mounts
                .insert(address.name.clone(), path.to_owned());
        }
    }
}

impl GlusterVolumeSpec {
    /// Where the volume is mounted on its client machines, if it is.
    pub fn mount_path(&self) -> Option<&str> {
        self.mount.as_ref().map(|m| m.path.as_str())
    }

    /// The brick machines, each once, in the order of their first brick.
    fn brick_machines(&self) -> Vec<&str> {
        let mut machines: Vec<&str> = Vec::new();
        for brick in &self.bricks {
            if !machines.contains(&brick.machine.as_str()) {
                machines.push(&brick.machine);
            }
        }
        machines
    }

    /// The brick paths, each once.
    fn brick_paths(&self) -> BTreeSet<&str> {
        self.bricks.iter().map(|b| b.path.as_str()).collect()
    }

    /// `replica 3 arbiter 1`, or nothing for a distributed volume: the arguments of
    /// `volume create` before the bricks.
    fn layout_args(&self) -> String {
        match self.replica {
            Some(replica) if self.arbiter => format!(" replica {replica} arbiter 1"),
            Some(replica) => format!(" replica {replica}"),
            None => String::new(),
        }
    }

    /// The layout as the plan and errors say it.
    fn layout(&self) -> String {
        describe_layout(
            self.bricks.len() as u32,
            self.replica.unwrap_or(1),
            u32::from(self.arbiter),
        )
    }

    /// The bricks as the plan shows them: `n1:/p, n2:/p, n3:/p (arbiter)`.
    fn brick_list(&self) -> String {
        let replica = self.replica.unwrap_or(1) as usize;
        self.bricks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let arbiter = self.arbiter && i % replica == replica - 1;
                format!(
                    "{}:{}{}",
                    b.machine,
                    b.path,
                    if arbiter { " (arbiter)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The fstab line that mounts the volume on `machine`: from the first brick machine,
    /// falling back to the others for the volume file, and after glusterd on a machine
    /// that runs one of the bricks (the boot-time mount fails otherwise).
    pub fn fstab_line(&self, name: &str, machine: &str, path: &str) -> String {
        let servers = self.brick_machines();
        let mut options = String::from("defaults,_netdev");
        if servers.len() > 1 {
            options.push_str(&format!(
                ",backup-volfile-servers={}",
                servers[1..].join(":")
            ));
        }
        if servers.contains(&machine) {
            options.push_str(",x-systemd.requires=glusterd.service");
        }
        format!(
            "{}:/{name} {path} glusterfs {options} 0 0",
            servers.first().copied().unwrap_or_default()
        )
    }
}

/// `3 bricks: replica 3 arbiter 1 (1 set of 3)` / `2 bricks: distributed`.
fn describe_layout(bricks: u32, replica: u32, arbiter: u32) -> String {
    if replica <= 1 {
        return format!("{bricks} brick(s), distributed (no copies)");
    }
    let sets = bricks / replica;
    let arbiter = if arbiter > 0 { " arbiter 1" } else { "" };
    format!("{bricks} bricks, replica {replica}{arbiter} ({sets} set(s) of {replica})")
}

/// gluster's own spellings of on and off (`gf_string2boolean`), so that `yes` in the
/// configuration matches `on` on the volume.
fn same_value(a: &str, b: &str) -> bool {
    fn boolean(v: &str) -> Option<bool> {
        match v.to_ascii_lowercase().as_str() {
            "on" | "yes" | "true" | "enable" => Some(true),
            "off" | "no" | "false" | "disable" => Some(false),
            _ => None,
        }
    }
    a == b || matches!((boolean(a), boolean(b)), (Some(x), Some(y)) if x == y)
}

fn state_name(state: VolumeState) -> String {
    match state {
        VolumeState::Created => "Created".into(),
        VolumeState::Started => "Started".into(),
        VolumeState::Stopped => "Stopped".into(),
        VolumeState::Other(code) => format!("status {code}"),
    }
}

/// An option whose value changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OptionChange {
    key: String,
    before: Option<String>,
    after: String,
}

/// The volume as the member that answered for it sees it.
struct LiveVolume {
    volume: Volume,
    /// Every option's effective value (`volume get VOL all`; no `user.*` options).
    effective: BTreeMap<String, String>,
}

/// Waits until every brick of volume `name` is online, for at most
/// [`BRICKS_ONLINE_SECONDS`]; then fails naming the volume and showing its status.
fn wait_for_bricks(name: &str) -> String {
    let q = quote(name);
    let program = quote(ALL_BRICKS_ONLINE);
    let message = quote(&format!(
        "corral: the bricks of gluster volume {name} are not all online {BRICKS_ONLINE_SECONDS} s after its start"
    ));
    // What the facts read (the same command its recorded outputs were made with).
    let status = gluster::volume_status_probe(name).script;
    format!(
        "i=0\nuntil {status} 2>/dev/null | awk -v RS='</node>' {program}; do\n  i=$((i+1))\n  if [ \"$i\" -ge {BRICKS_ONLINE_SECONDS} ]; then echo {message}; {GLUSTER} volume status {q} || true; exit 1; fi\n  sleep 1\ndone\n"
    )
}

/// What a mount machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountChange {
    machine: String,
    /// The fstab lines for the mount point now (joined), when they must be replaced.
    fstab_before: Option<String>,
    /// The line to write, when the fstab must change.
    fstab_after: Option<String>,
    /// The volume is not mounted yet.
    mount: bool,
}

/// A volume to create.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Creation {
    /// Bricks on the root file system, which need `force` (the spec allows it).
    root_bricks: Vec<String>,
}

/// What the facts say, and what must change: what `diff` shows and `steps` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Analysis {
    /// The first brick machine: peers are probed and the volume created from it.
    first: String,
    /// Where the steps on the volume run: the member that answered for it, or `first`.
    runner: String,
    /// Brick machines in `first`'s pool already (with `first`).
    pool: Vec<String>,
    /// Brick machines `first` must probe.
    probes: Vec<String>,
    /// The volume's state, when it exists.
    state: Option<VolumeState>,
    create: Option<Creation>,
    options: Vec<OptionChange>,
    start: bool,
    mounts: Vec<MountChange>,
    /// The volume has no project's option (made by hand): this change adopts it.
    adopt: bool,
}

fn member_facts<'f>(facts: &ClusterFacts<'f>, machine: &str) -> Result<&'f HostFacts, FactError> {
    facts
        .members
        .get(machine)
        .map(|m| m.facts)
        .ok_or_else(|| FactError::new(machine, format!("no facts were read from {machine}")))
}

/// `machine`'s peers, or why its glusterd does not answer.
fn peers_of(facts: &ClusterFacts, machine: &str) -> Result<Vec<Peer>, FactError> {
    let key = gluster::PEER_STATUS_KEY;
    let out = member_facts(facts, machine)?.get(key)?;
    gluster::parse_peer_status(key, out).map_err(|e| {
        FactError::new(
            key,
            format!("glusterd on {machine} does not answer: {}", e.message),
        )
    })
}

impl GlusterVolumeSpec {
    /// The volume as the member that answered for the cluster sees it, if it exists, with
    /// every option's effective value.
    fn live_volume(
        &self,
        name: &str,
        facts: &ClusterFacts,
    ) -> Result<Option<LiveVolume>, FactError> {
        let Some((_, manager)) = &facts.manager else {
            return Ok(None);
        };
        let probe = gluster::volume_info_probe(Some(name));
        let volumes = gluster::parse_volume_info(&probe.key, manager.get(&probe.key)?)?;
        let Some(volume) = volumes.into_iter().find(|v| v.name == name) else {
            return Ok(None);
        };
        let probe = gluster::volume_get_probe(name, None);
        let effective = gluster::parse_volume_get(&probe.key, manager.get(&probe.key)?)?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        Ok(Some(LiveVolume { volume, effective }))
    }

    /// Refuses an existing volume whose bricks or replica differ from the configuration,
    /// saying why.
    fn check_layout(&self, name: &str, volume: &Volume) -> Result<(), FactError> {
        let live: Vec<(String, String)> = volume
            .bricks
            .iter()
            .map(|b| (b.host.clone(), b.path.clone()))
            .collect();
        let want: Vec<(String, String)> = self
            .bricks
            .iter()
            .map(|b| (b.machine.clone(), b.path.clone()))
            .collect();
        let replica = self.replica.unwrap_or(1);
        let arbiter = u32::from(self.arbiter);
        let live_replica = volume.replica_count.max(1);
        if live == want
            && live_replica == replica
            && volume.arbiter_count == arbiter
            && volume.disperse_count == 0
        {
            return Ok(());
        }
        let show = |bricks: &[(String, String)]| {
            bricks
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let dropped: Vec<(String, String)> =
            live.iter().filter(|b| !want.contains(b)).cloned().collect();
        let added: Vec<(String, String)> =
            want.iter().filter(|b| !live.contains(b)).cloned().collect();
        let why = if volume.disperse_count > 0 {
            format!(
                "it is a dispersed volume ({} bricks, redundancy {}), which corral does not manage",
                volume.brick_count, volume.redundancy_count
            )
        } else if !dropped.is_empty() || replica < live_replica {
            format!(
                "removing bricks or copies that hold data is refused (the configuration drops {}): migrate the data and remove them by hand (`gluster volume remove-brick`), then match the configuration to the volume",
                if dropped.is_empty() {
                    format!("replica {live_replica} → {replica}")
                } else {
                    show(&dropped)
                }
            )
        } else if !added.is_empty() || replica > live_replica {
            format!(
                "growing a volume (adding {}) is not supported yet: run `gluster volume add-brick` by hand, then match the configuration to the volume",
                if added.is_empty() {
                    format!("replica {live_replica} → {replica}")
                } else {
                    show(&added)
                }
            )
        } else {
            "the same bricks in another order or with another arbiter form other replica sets: corral does not re-shape a volume; write the bricks as the volume has them".into()
        };
        Err(FactError::new(
            &gluster::volume_info_probe(Some(name)).key,
            format!(
                "volume {name} exists as {} [{}]; the configuration asks for {} [{}]: {why}",
                describe_layout(volume.brick_count, live_replica, volume.arbiter_count),
                show(&live),
                self.layout(),
                show(&want),
            ),
        ))
    }

    /// What glusterd would refuse about the bricks of a volume to create, refused here
    /// first; the bricks that need `force` (root file system, allowed by the spec).
    fn check_new_bricks(&self, facts: &ClusterFacts) -> Result<Creation, FactError> {
        let mut root_bricks = Vec::new();
        for brick in &self.bricks {
            let probe = gluster::brick_probe(&brick.path);
            let out = member_facts(facts, &brick.machine)?.get(&probe.key)?;
            let dir: BrickDir = gluster::parse_brick(&probe.key, out)?;
            let at = format!("{}:{}", brick.machine, brick.path);
            let refuse = |message: String| Err(FactError::new(&probe.key, message));
            if dir.not_directory {
                return refuse(format!("brick {at} exists and is not a directory"));
            }
            if let Some((attribute, path)) = dir.in_use.first() {
                return refuse(format!(
                    "brick {at} is or was part of a volume ({attribute} is set on {path}): corral never creates a volume on it, with or without force; use a new directory, or clear the old brick by hand once its data is not needed"
                ));
            }
            if dir.mount_point {
                return refuse(format!(
                    "brick {at} is a mount point: gluster wants a directory below it (say {}/brick), so that a missing file system leaves the brick missing rather than empty",
                    brick.path
                ));
            }
            if dir.on_root_filesystem() {
                if !self.allow_root_partition_bricks {
                    return refuse(format!(
                        "brick {at} would be on the root file system: give bricks a file system of their own, or set `allow_root_partition_bricks: true` (volume create then runs with force)"
                    ));
                }
                if dir.no_getfattr {
                    return refuse(format!(
                        "brick {at} needs force (root file system), and {} cannot tell whether it was part of a volume: getfattr is missing (install the `attr` package)",
                        brick.machine
                    ));
                }
                root_bricks.push(at);
            }
        }
        Ok(Creation { root_bricks })
    }

    /// The mount machines' changes, refusing a mount point that something else uses.
    fn mount_changes(
        &self,
        name: &str,
        facts: &ClusterFacts,
    ) -> Result<Vec<MountChange>, FactError> {
        let Some(mount) = &self.mount else {
            return Ok(Vec::new());
        };
        let mut changes = Vec::new();
        for machine in &self.mount_machines {
            let host = member_facts(facts, machine)?;
            let probe = gluster::mount_probe(&mount.path);
            let mounted = gluster::parse_mount(&probe.key, host.get(&probe.key)?)?;
            if let Some(mounted) = &mounted {
                if mounted.gluster_volume() != Some(name) {
                    return Err(FactError::new(
                        &probe.key,
                        format!(
                            "{machine}: {} is already the mount point of {} ({}); corral mounts volume {name} only on a free mount point",
                            mount.path, mounted.source, mounted.fstype
                        ),
                    ));
                }
            }
            let probe = gluster::fstab_probe(&mount.path);
            let entries = gluster::parse_fstab(&probe.key, host.get(&probe.key)?)?;
            for entry in &entries {
                let volume = entry.fields[0].split_once(":/").map(|(_, v)| v);
                if entry.fstype() != "glusterfs" || volume != Some(name) {
                    return Err(FactError::new(
                        &probe.key,
                        format!(
                            "{machine}: /etc/fstab mounts something else at {}: `{}`; remove that line by hand or mount the volume elsewhere",
                            mount.path, entry.line
                        ),
                    ));
                }
            }
            let line = self.fstab_line(name, machine, &mount.path);
            let want: Vec<&str> = line.split_whitespace().collect();
            let fstab_ok = matches!(entries.as_slice(), [only] if only.fields == want);
            let (fstab_before, fstab_after) = if fstab_ok {
                (None, None)
            } else {
                let before = entries
                    .iter()
                    .map(|e| e.line.trim().to_owned())
                    .collect::<Vec<_>>()
                    .join("\n");
                ((!before.is_empty()).then_some(before), Some(line))
            };
            if fstab_after.is_some() || mounted.is_none() {
                changes.push(MountChange {
                    machine: machine.clone(),
                    fstab_before,
                    fstab_after,
                    mount: mounted.is_none(),
                });
            }
        }
        Ok(changes)
    }

    fn analyse(&self, name: &str, facts: &ClusterFacts) -> Result<Analysis, FactError> {
        let machines = self.brick_machines();
        let Some(first) = machines.first().map(|m| m.to_string()) else {
            return Err(FactError::new(KIND, "the volume has no bricks"));
        };
        let mut peers = BTreeMap::new();
        for machine in &machines {
            peers.insert(*machine, peers_of(facts, machine)?);
        }
        let mut pool = vec![first.clone()];
        let mut probes = Vec::new();
        for machine in &machines[1..] {
            match peers[first.as_str()].iter().find(|p| p.known_as(machine)) {
                Some(peer) if peer.in_cluster() => pool.push(machine.to_string()),
                Some(peer) => {
                    return Err(FactError::new(
                        gluster::PEER_STATUS_KEY,
                        format!(
                            "{first} sees its peer {machine} as {} ({}): gluster needs every brick machine connected and `Peer in Cluster`",
                            peer.state.as_deref().unwrap_or("in no state"),
                            if peer.connected { "connected" } else { "disconnected" }
                        ),
                    ))
                }
                None if !peers[machine].is_empty() => {
                    let theirs: Vec<&str> =
                        peers[machine].iter().map(|p| p.hostname.as_str()).collect();
                    return Err(FactError::new(
                        gluster::PEER_STATUS_KEY,
                        format!(
                            "{machine} is in another trusted pool (its peers: {}), which {first} is not in: gluster refuses to probe it; detach it from that pool by hand first",
                            theirs.join(", ")
                        ),
                    ));
                }
                None => probes.push(machine.to_string()),
            }
        }
        let runner = facts
            .manager
            .as_ref()
            .map_or_else(|| first.clone(), |(m, _)| m.clone());
        let mounts = self.mount_changes(name, facts)?;
        let Some(LiveVolume { volume, effective }) = self.live_volume(name, facts)? else {
            let creation = self.check_new_bricks(facts)?;
            return Ok(Analysis {
                runner: first.clone(),
                first,
                pool,
                probes,
                state: None,
                create: Some(creation),
                options: self
                    .options
                    .iter()
                    .map(|(k, v)| OptionChange {
                        key: k.clone(),
                        before: None,
                        after: v.clone(),
                    })
                    .collect(),
                start: true,
                mounts,
                adopt: false,
            });
        };
        self.check_layout(name, &volume)?;
        let options: Vec<OptionChange> = self
            .options
            .iter()
            .filter_map(|(key, want)| {
                // What was set is what `volume info` lists; otherwise the default.
                let have = volume.options.get(key).or_else(|| effective.get(key));
                match have {
                    Some(have) if same_value(have, want) => None,
                    _ => Some(OptionChange {
                        key: key.clone(),
                        before: have.cloned(),
                        after: want.clone(),
                    }),
                }
            })
            .collect();
        let start = volume.state != VolumeState::Started;
        let changes = start || !options.is_empty();
        // Made by hand and now declared (`corral import`): its first change takes it over.
        let adopt = changes && volume.managed_by().is_none();
        if changes && !adopt && volume.managed_by() != Some(self.project.as_str()) {
            let mut differences: Vec<String> = options.iter().map(|o| o.key.clone()).collect();
            if start {
                differences.push(format!("status {}", state_name(volume.state)));
            }
            return Err(FactError::new(
                &gluster::volume_info_probe(Some(name)).key,
                format!(
                    "volume {name} exists, differs ({}), and is not managed by project {} ({PROJECT_OPTION} is {}): corral does not change what it does not manage; change it by hand or match the configuration to it",
                    differences.join(", "),
                    self.project,
                    volume
                        .managed_by()
                        .map_or_else(|| "not set".to_owned(), |p| format!("`{p}`"))
                ),
            ));
        }
        Ok(Analysis {
            first,
            runner,
            pool,
            probes,
            state: Some(volume.state),
            create: None,
            options,
            start,
            mounts,
            adopt,
        })
    }
}

/// Refuses, when a step runs, a volume that is not `project`'s.
fn owned_guard(name: &str, project: &str) -> String {
    format!(
        "[ \"$({GLUSTER} volume get {q} {PROJECT_OPTION} | awk '$1 == \"{PROJECT_OPTION}\" {{ print $2 }}')\" = {p} ] || {{ echo 'corral: volume '{q}' is not managed by project '{p}'; left alone'; exit 1; }}\n",
        q = quote(name),
        p = quote(project)
    )
}

/// [`owned_guard`] that also lets through a volume no project set its option on.
fn adoptable_guard(name: &str, project: &str) -> String {
    format!(
        "case \"$({GLUSTER} volume get {q} {PROJECT_OPTION} | awk '$1 == \"{PROJECT_OPTION}\" {{ print $2 }}')\" in {p}|''|'(null)') ;; *) echo 'corral: volume '{q}' is managed by another project; left alone'; exit 1 ;; esac\n",
        q = quote(name),
        p = quote(project)
    )
}

/// Fails when `path` or a parent carries the attributes of a volume brick.
fn unused_brick_guard(path: &str) -> String {
    format!(
        r#"p={}
if command -v getfattr >/dev/null; then
  d=$p; while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
  while :; do
    for a in trusted.glusterfs.volume-id trusted.gfid; do
      if getfattr --absolute-names -n "$a" -- "$d" >/dev/null 2>&1; then echo "corral: $p is or was part of a volume ($a on $d); not used"; exit 1; fi
    done
    [ "$d" = / ] && break
    d=$(dirname -- "$d")
  done
fi
mkdir -p -- "$p"
"#,
        quote(path)
    )
}

impl ClusterKind for GlusterVolumeSpec {
    /// Brick machines in the order of their bricks, then the other mount machines.
    fn members(&self) -> Vec<String> {
        let mut members: Vec<String> = self
            .brick_machines()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for machine in &self.mount_machines {
            if !members.contains(machine) {
                members.push(machine.clone());
            }
        }
        members
    }

    fn machine_references(&self) -> Vec<(&'static str, String)> {
        let mut references: Vec<(&'static str, String)> = self
            .bricks
            .iter()
            .map(|b| ("bricks", b.machine.clone()))
            .collect();
        if let Some(MountSpec {
            machines: crate::base::selector::Selector::Names(names),
            ..
        }) = &self.mount
        {
            references.extend(names.iter().map(|n| ("mount.machines", n.clone())));
        }
        references
    }

    /// Every member runs every probe (the fact script is per host): the pool's view, the
    /// brick directories and the mount point. Each answers harmlessly where it does not
    /// apply, and only the brick machines' and mount machines' answers are read.
    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        let mut probes = vec![gluster::peer_status_probe()];
        probes.extend(self.brick_paths().into_iter().map(gluster::brick_probe));
        if let Some(path) = self.mount_path() {
            probes.push(gluster::mount_probe(path));
            probes.push(gluster::fstab_probe(path));
        }
        probes
    }

    /// `volume info`, `volume status` and `volume get … all` in one `gluster` process,
    /// kept as those three probes' outputs (see [`gluster::expand`]).
    fn manager_probes(&self, name: &str) -> Vec<Probe> {
        vec![gluster::volume_probe(name)]
    }

    /// Brick machines whose glusterd answers, in the order of their bricks.
    fn manager_candidates(&self, facts: &ClusterFacts) -> Vec<String> {
        self.brick_machines()
            .into_iter()
            .filter(|machine| peers_of(facts, machine).is_ok())
            .map(str::to_owned)
            .collect()
    }

    fn diff(&self, name: &str, facts: &ClusterFacts) -> Result<Diff, FactError> {
        let analysis = self.analyse(name, facts)?;
        let mut attributes = Vec::new();
        if !analysis.probes.is_empty() {
            attributes.push(AttrChange::scalar(
                "peers",
                analysis.pool.join(", "),
                self.brick_machines().join(", "),
            ));
        }
        if let Some(creation) = &analysis.create {
            let new = |key: &str, value: String| {
                AttrChange::new(key, AttrValue::Absent, AttrValue::Scalar(value))
            };
            attributes.push(new("bricks", self.brick_list()));
            attributes.push(new("layout", self.layout()));
            if !creation.root_bricks.is_empty() {
                attributes.push(new(
                    "force",
                    format!(
                        "bricks on the root file system: {} (allow_root_partition_bricks)",
                        creation.root_bricks.join(", ")
                    ),
                ));
            }
            attributes.push(new(
                &format!("options.{PROJECT_OPTION}"),
                self.project.clone(),
            ));
        }
        for option in &analysis.options {
            attributes.push(AttrChange::new(
                format!("options.{}", option.key),
                option
                    .before
                    .clone()
                    .map_or(AttrValue::Absent, AttrValue::Scalar),
                AttrValue::Scalar(option.after.clone()),
            ));
        }
        if analysis.start {
            attributes.push(AttrChange::new(
                "status",
                analysis
                    .state
                    .map_or(AttrValue::Absent, |s| AttrValue::Scalar(state_name(s))),
                AttrValue::Scalar("Started".into()),
            ));
        }
        for mount in &analysis.mounts {
            if let Some(after) = &mount.fstab_after {
                attributes.push(AttrChange::new(
                    format!("fstab[{}]", mount.machine),
                    mount
                        .fstab_before
                        .clone()
                        .map_or(AttrValue::Absent, AttrValue::Scalar),
                    AttrValue::Scalar(after.clone()),
                ));
            }
            if mount.mount {
                attributes.push(AttrChange::new(
                    format!("mounted[{}]", mount.machine),
                    AttrValue::Bool(false),
                    AttrValue::Bool(true),
                ));
            }
        }
        if analysis.adopt {
            attributes.push(super::adopted_attribute(&self.project));
        }
        let action = if analysis.create.is_some() {
            Action::Create
        } else if attributes.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: analysis.adopt.then(|| {
                format!("adopted: the volume was made by hand; this change also sets {PROJECT_OPTION}, and corral manages it from now on (its bricks and data are not touched)")
            }),
        })
    }

    fn steps(&self, name: &str, facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        let analysis = self.analyse(name, facts)?;
        let on = |machine: &str, description: String, script: String| ClusterStep {
            machine: machine.to_owned(),
            step: Step {
                description,
                script,
            },
            produces: None,
            always: false,
        };
        let q = quote(name);
        let mut steps = Vec::new();
        if !analysis.probes.is_empty() {
            let mut script = String::from("set -e\n");
            for peer in &analysis.probes {
                script.push_str(&format!("{GLUSTER} peer probe {}\n", quote(peer)));
            }
            // Until `first` sees every new peer in the pool and connected.
            script.push_str(&format!(
                r#"i=0
until {GLUSTER} peer status | awk -v want={} 'BEGIN {{ n = split(want, w, " ") }} /^Hostname: / {{ host = $2 }} /^State: Peer in Cluster \(Connected\)/ {{ ok[host] = 1 }} END {{ for (i = 1; i <= n; i++) if (!(w[i] in ok)) exit 1 }}'; do
  i=$((i + 1)); [ "$i" -le 60 ] || {{ echo 'corral: the peers did not join the pool within 60 s'; {GLUSTER} peer status; exit 1; }}
  sleep 1
done
"#,
                quote(&analysis.probes.join(" "))
            ));
            steps.push(on(
                &analysis.first,
                format!(
                    "probe gluster peers {} from {}",
                    analysis.probes.join(", "),
                    analysis.first
                ),
                script,
            ));
        }
        if let Some(creation) = &analysis.create {
            for machine in self.brick_machines() {
                let mut script = String::from("set -e\n");
                for brick in self.bricks.iter().filter(|b| b.machine == machine) {
                    script.push_str(&unused_brick_guard(&brick.path));
                }
                steps.push(on(
                    machine,
                    format!("create the brick directories of volume {name} on {machine}"),
                    script,
                ));
            }
            let bricks: Vec<String> = self
                .bricks
                .iter()
                .map(|b| quote(&format!("{}:{}", b.machine, b.path)))
                .collect();
            let force = if creation.root_bricks.is_empty() {
                ""
            } else {
                " force"
            };
            steps.push(on(
                &analysis.first,
                format!("create gluster volume {name}"),
                format!(
                    "set -e\n{GLUSTER} volume create {q}{} {}{force}\n{GLUSTER} volume set {q} {PROJECT_OPTION} {}\n",
                    self.layout_args(),
                    bricks.join(" "),
                    quote(&self.project)
                ),
            ));
        }
        if analysis.adopt {
            steps.push(on(
                &analysis.runner,
                format!("adopt gluster volume {name} (set {PROJECT_OPTION})"),
                format!(
                    "set -e\n{}{GLUSTER} volume set {q} {PROJECT_OPTION} {}\n",
                    adoptable_guard(name, &self.project),
                    quote(&self.project)
                ),
            ));
        }
        if !analysis.options.is_empty() {
            let mut script = format!("set -e\n{}", owned_guard(name, &self.project));
            for option in &analysis.options {
                script.push_str(&format!(
                    "{GLUSTER} volume set {q} {} {}\n",
                    quote(&option.key),
                    quote(&option.after)
                ));
            }
            let keys: Vec<&str> = analysis.options.iter().map(|o| o.key.as_str()).collect();
            steps.push(on(
                &analysis.runner,
                format!("set options of gluster volume {name}: {}", keys.join(", ")),
                script,
            ));
        }
        if analysis.start {
            // `volume start` returns before every brick process listens; a mount made then
            // finds too few bricks for its quorum and fails, so the step waits for them.
            steps.push(on(
                &analysis.runner,
                format!("start gluster volume {name}"),
                format!(
                    "set -e\n{}{GLUSTER} volume info {q} | grep -q '^Status: Started$' || {GLUSTER} volume start {q}\n{}",
                    owned_guard(name, &self.project),
                    wait_for_bricks(name)
                ),
            ));
        }
        let path = self.mount_path().unwrap_or_default();
        for mount in &analysis.mounts {
            let p = quote(path);
            let mut script = format!("set -e\nmkdir -p -- {p}\n");
            if let Some(line) = &mount.fstab_after {
                // The other lines kept as they are, written in a private directory next to
                // the file (never through a link), given the file's owner and mode, synced,
                // and renamed over it at once.
                script.push_str(&format!(
                    "if [ -L /etc/fstab ] || {{ [ -e /etc/fstab ] && [ ! -f /etc/fstab ]; }}; then echo 'corral: /etc/fstab is not a regular file; not writing it'; exit 1; fi\ntouch /etc/fstab\nd=$(mktemp -d /etc/.corral-fstab.XXXXXXXX)\ntrap 'rm -rf \"$d\"' EXIT\nawk '$1 ~ /^#/ || $2 != p' p={p} /etc/fstab > \"$d/f\"\nprintf '%s\\n' {} >> \"$d/f\"\nchown --reference=/etc/fstab \"$d/f\"\nchmod --reference=/etc/fstab \"$d/f\"\nsync -- \"$d/f\"\nmv -T -- \"$d/f\" /etc/fstab\nrmdir -- \"$d\"\ntrap - EXIT\nif [ -d /run/systemd/system ]; then systemctl daemon-reload; fi\n",
                    quote(line)
                ));
            }
            if mount.mount {
                script.push_str(&format!("findmnt -M {p} >/dev/null 2>&1 || mount {p}\n"));
            }
            steps.push(on(
                &mount.machine,
                format!("mount gluster volume {name} at {path} on {}", mount.machine),
                script,
            ));
        }
        Ok(steps)
    }

    /// Bricks of the started volume whose process is not running.
    fn warnings(&self, name: &str, facts: &ClusterFacts) -> Vec<String> {
        let Some((_, manager)) = &facts.manager else {
            return Vec::new();
        };
        let probe = gluster::volume_status_probe(name);
        let Some(VolumeStatusReply::Status(status)) = manager
            .get(&probe.key)
            .ok()
            .and_then(|out| gluster::parse_volume_status(&probe.key, out).ok())
        else {
            return Vec::new();
        };
        status
            .bricks
            .iter()
            .filter(|b| !b.online)
            .map(|b| {
                format!(
                    "brick {}:{} of gluster volume {name} is offline (its process is not running); `gluster volume start {name} force` starts it again",
                    b.host, b.path
                )
            })
            .collect()
    }

    fn rolling_keeps(&self) -> Option<super::Keeps> {
        let mut machines: Vec<String> = self.bricks.iter().map(|b| b.machine.clone()).collect();
        machines.dedup();
        Some(super::Keeps::Bricks(machines))
    }
}

#[cfg(test)]
mod tests;
