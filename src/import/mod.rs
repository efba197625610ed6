//! `corral import`: the configuration of what the machines of an inventory run.
//!
//! The machines are read as `plan` reads them (the same probes, one round trip per host,
//! see [`probes`]), and each area's writer turns the facts into documents a person would
//! write: one file per area, documents in a stable order, defaults left out, selectors
//! where the machines agree. The import is proven by the plan: run right after it, `corral
//! plan DIR INVENTORY` says "No changes". What corral cannot reproduce is written as a
//! comment where it belongs and listed at the end of the output ([`Note`]), never
//! dropped silently. Objects of another corral project are reported and left out.

pub mod daemon;
mod error;
pub mod gluster;
pub mod stack;
pub mod swarm;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use error::ImportError;

use crate::address::Address;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};

/// The areas `--only` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Area {
    /// `swarm/cluster`, networks, services, stacks, configs and secrets.
    Swarm,
    /// `gluster/volume`s and their mounts.
    Gluster,
    /// `docker/daemon` settings.
    Daemon,
}

/// One machine of the inventory, in inventory order.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub name: String,
    pub ip: IpAddr,
    pub labels: BTreeMap<String, String>,
}

/// What the import read: the machines' facts, by machine.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The project the configuration will be (its objects are ours; another's are not).
    pub project: String,
    pub machines: Vec<MachineInfo>,
    pub facts: BTreeMap<String, HostFacts>,
}

impl Found {
    /// The machine an address or host name names.
    pub fn machine_named(&self, host: &str) -> Option<&MachineInfo> {
        self.machines
            .iter()
            .find(|m| m.name == host)
            .or_else(|| self.machines.iter().find(|m| m.ip.to_string() == host))
    }

    /// The selector for `names` as a person would write it: `all` when every machine is
    /// in it, a label every one of them has and no other machine has, or the names.
    pub fn selector(&self, names: &[String]) -> String {
        if names.len() == self.machines.len()
            && self.machines.iter().all(|m| names.contains(&m.name))
        {
            return "all".into();
        }
        let inside: Vec<&MachineInfo> = self
            .machines
            .iter()
            .filter(|m| names.contains(&m.name))
            .collect();
        if let Some(first) = inside.first() {
            for (key, value) in &first.labels {
                let has = |m: &MachineInfo| m.labels.get(key) == Some(value);
                if inside.iter().all(|m| has(m))
                    && self
                        .machines
                        .iter()
                        .filter(|m| has(m))
                        .all(|m| names.contains(&m.name))
                {
                    return format!("{{labels: {{{}: {}}}}}", scalar(key), scalar(value));
                }
            }
        }
        flow_list(names)
    }
}

/// Something an import could not write as it runs: the comment at its place and the line
/// listed at the end of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The resource it belongs to (`swarm/service.api`).
    pub at: String,
    pub text: String,
}

/// One document written, with its address (to refuse duplicates) and its YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub address: Address,
    pub text: String,
    /// Written only when the directory does not declare it yet (what `--target`ed services
    /// use), instead of being refused as a duplicate.
    pub dependency: bool,
}

/// What a writer makes of the facts: its file's documents, files they refer to (by path
/// relative to the output directory), the notes, and the variables to fill in.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub documents: Vec<Document>,
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub notes: Vec<Note>,
    /// Environment variables the configuration reads (secrets' values), with what for.
    pub fill_in: Vec<(String, String)>,
}

impl Written {
    pub fn note(&mut self, at: impl Into<String>, text: impl Into<String>) -> String {
        let note = Note {
            at: at.into(),
            text: text.into(),
        };
        let comment = comment_lines(&format!("not reproduced: {}", note.text), "");
        self.notes.push(note);
        comment
    }

    fn extend(&mut self, other: Written) {
        self.documents.extend(other.documents);
        self.files.extend(other.files);
        self.notes.extend(other.notes);
        self.fill_in.extend(other.fill_in);
    }
}

/// Probe keys of the import's own questions (what the plan's probes do not ask).
pub const OBJECTS_KEY: &str = "import:objects";
pub const FSTAB_KEY: &str = "import:fstab";
/// corral's record of the host (its first line, what [`record::parse_record`] reads):
/// which project wrote which file.
///
/// [`record::parse_record`]: crate::facts::record::parse_record
pub const RECORD_KEY: &str = "import:record";

/// Every probe each machine answers, in one fact script: the plan's own for the swarm,
/// the daemon settings and the volumes, and two of the import's (the configs' data, which
/// the plan compares through versions; every glusterfs line of `/etc/fstab`, whose mount
/// points the plan is told). A probe that does not apply on a host fails harmlessly there
/// (`docker node ls` on a worker) and its answer is not read.
pub fn probes() -> Vec<Probe> {
    vec![
        crate::facts::swarm::info_probe(),
        crate::facts::swarm::node_inspect_probe(),
        crate::facts::swarm::network_inspect_probe(),
        crate::facts::swarm::service_inspect_probe(),
        objects_probe(),
        crate::kinds::file::probe(
            crate::kinds::docker_daemon::PATH,
            crate::kinds::file::Read::Content,
        ),
        crate::facts::gluster::volume_info_probe(None),
        Probe {
            key: RECORD_KEY.into(),
            script: crate::facts::record::read_script(),
        },
        Probe {
            key: FSTAB_KEY.into(),
            script:
                "if [ -e /etc/fstab ]; then awk '$1 !~ /^#/ && $3 == \"glusterfs\"' /etc/fstab; fi"
                    .into(),
        },
    ]
}

/// Every config (with its data, which the configuration will hold in a `source:` file) and
/// every secret (name and labels: Docker never shows a secret's value), one JSON line each.
fn objects_probe() -> Probe {
    Probe {
        key: OBJECTS_KEY.into(),
        script: r#"ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '{"Class":"config","Name":{{json .Spec.Name}},"Labels":{{json .Spec.Labels}},"Data":{{json .Spec.Data}}}' $ids; fi && ids=$(docker secret ls -q) && if [ -n "$ids" ]; then docker secret inspect --format '{"Class":"secret","Name":{{json .Spec.Name}},"Labels":{{json .Spec.Labels}}}' $ids; fi"#.into(),
    }
}

/// A secret or config as [`objects_probe`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LiveObject {
    pub class: String,
    pub name: String,
    #[serde(default, deserialize_with = "null_map")]
    pub labels: BTreeMap<String, String>,
    /// Base64, configs only.
    #[serde(default)]
    pub data: Option<String>,
}

fn null_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<BTreeMap<String, String>>::deserialize(deserializer)?.unwrap_or_default())
}

impl LiveObject {
    /// The config's bytes.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(self.data.as_deref()?)
            .ok()
    }
}

/// Parses [`objects_probe`]'s output.
pub fn parse_objects(key: &str, out: &ProbeOutput) -> Result<Vec<LiveObject>, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    out.output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| FactError::new(key, format!("unreadable object line ({e})")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Writing YAML by hand: JSON strings are YAML scalars, so anything that is not plainly safe
// is written as one.

/// A string as a YAML scalar: bare when YAML (1.1 and 1.2) reads it back as that string,
/// else double-quoted.
pub fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '@' | '+'))
        && !text.starts_with(['-', '.', '@'])
        && !looks_typed(text);
    match plain {
        true => text.to_owned(),
        false => serde_json::to_string(text).unwrap_or_default(),
    }
}

/// Whether YAML 1.1 or 1.2 would read `text` as something other than a string.
fn looks_typed(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~" | "nan" | "inf"
    ) || text.starts_with(|c: char| c.is_ascii_digit() || c == '+')
}

/// `[a, b]`.
pub fn flow_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| scalar(i)).collect();
    format!("[{}]", items.join(", "))
}

/// `text` as comment lines, each indented by `indent`.
pub fn comment_lines(text: &str, indent: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "{indent}# {line}");
    }
    out
}

/// A document: `kind`, `name` and the specification's lines (already indented by two).
pub fn document(kind: &str, name: &str, before: &str, spec: &str) -> String {
    let mut text = String::new();
    text.push_str(before);
    let _ = writeln!(text, "kind: {kind}\nname: {}", scalar(name));
    match spec.is_empty() {
        true => text.push_str("specification: {}\n"),
        false => {
            text.push_str("specification:\n");
            text.push_str(spec);
        }
    }
    text
}

/// A file of documents.
pub fn file_text(heading: &str, documents: &[&Document]) -> String {
    let mut text = comment_lines(heading, "");
    for (i, document) in documents.iter().enumerate() {
        if i > 0 || !text.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&document.text);
    }
    text
}

// ---------------------------------------------------------------------------------------
// The command

/// Reads the machines of `inventory` and writes their configuration into `request.out`, as
/// the project `project` (default: the directory's name); returns what to print.
pub async fn run(
    request: &Request,
    inventory: &[PathBuf],
    project: Option<&str>,
    ssh: &crate::transport::ssh::SshOptions,
    options: crate::gather::GatherOptions,
) -> Result<String, ImportError> {
    let non_empty = std::fs::read_dir(&request.out).is_ok_and(|mut e| e.next().is_some());
    if non_empty && !request.force {
        return Err(ImportError::NotEmpty {
            dir: request.out.clone(),
        });
    }
    let declared = declared_in(&request.out, inventory)?;
    let project = match project {
        Some(project) => project.to_owned(),
        None => {
            let marker = request.out.join("x.yaml");
            crate::config::project_of_files(std::iter::once(marker.to_string_lossy().as_ref()))
                .map_err(|dirs| ImportError::ProjectName { dirs })?
        }
    };
    let load = crate::config::LoadOptions {
        project: project.clone(),
        connecting: true,
        ..Default::default()
    };
    let config = crate::config::load(inventory, &load)?;
    config.require_machines()?;
    let probes: BTreeMap<String, Vec<Probe>> = config
        .machines
        .keys()
        .map(|m| (m.clone(), probes()))
        .collect();
    let mut gathered = crate::gather::gather(&config, probes, ssh, options).await;
    for (_, host) in std::mem::take(&mut gathered.connections) {
        if let Ok(host) = std::sync::Arc::try_unwrap(host) {
            host.close().await;
        }
    }
    if !gathered.facts.unreachable.is_empty() {
        return Err(ImportError::Unreachable {
            machines: gathered.facts.unreachable.into_iter().collect(),
        });
    }
    let mut machines: Vec<MachineInfo> = config
        .machines
        .values()
        .map(|m| MachineInfo {
            name: m.name.clone(),
            ip: m.spec.ip,
            labels: m.spec.labels.clone(),
        })
        .collect();
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    let found = Found {
        project,
        machines,
        facts: gathered.facts.hosts,
    };
    let mut areas = write_all(&found, request)?;
    without_duplicates(&mut areas, &declared)?;
    if areas.is_empty() {
        return Ok("Nothing to import: the machines run nothing corral would write (or DIR declares it all).\n".into());
    }
    write_out(&request.out, &areas)
}

/// What the command was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The directory written into.
    pub out: PathBuf,
    /// Whether a directory with files in it may be written into.
    pub force: bool,
    /// The areas imported (every one when empty).
    pub only: Vec<Area>,
    /// The services and stacks imported (every one when empty).
    pub targets: Vec<String>,
}

impl Request {
    fn wants(&self, area: Area) -> bool {
        self.only.is_empty() || self.only.contains(&area)
    }
}

/// Every area's documents from the facts, by output file name.
pub fn write_all(
    found: &Found,
    request: &Request,
) -> Result<BTreeMap<String, Written>, ImportError> {
    let mut areas = BTreeMap::new();
    if request.wants(Area::Swarm) {
        for (file, written) in swarm::write(found, &request.targets)? {
            areas.insert(file, written);
        }
    }
    if request.wants(Area::Daemon) && request.targets.is_empty() {
        areas.insert("daemon.yaml".to_owned(), daemon::write(found)?);
    }
    if request.wants(Area::Gluster) && request.targets.is_empty() {
        areas.insert("volumes.yaml".to_owned(), gluster::write(found)?);
    }
    areas.retain(|_, w| !w.documents.is_empty());
    Ok(areas)
}

/// What the directory already declares, by address (empty for a new directory).
pub fn declared_in(dir: &Path, inventory: &[PathBuf]) -> Result<BTreeSet<String>, ImportError> {
    let has_yaml = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                matches!(
                    e.path().extension().and_then(|x| x.to_str()),
                    Some("yaml" | "yml")
                )
            })
        })
        .unwrap_or(false);
    if !has_yaml {
        return Ok(BTreeSet::new());
    }
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(inventory.iter().cloned());
    let options = crate::config::LoadOptions {
        ignore_unknown_kinds: true,
        ..Default::default()
    };
    let config = crate::config::load(&paths, &options).map_err(|errors| {
        ImportError::DeclaredUnreadable {
            dir: dir.to_owned(),
            errors: errors.errors,
        }
    })?;
    Ok(config
        .resources
        .iter()
        .map(|r| r.address.to_string())
        .collect())
}

/// Drops the dependencies the directory already declares; refuses the other documents it
/// declares, naming them.
pub fn without_duplicates(
    areas: &mut BTreeMap<String, Written>,
    declared: &BTreeSet<String>,
) -> Result<(), ImportError> {
    let mut duplicates = Vec::new();
    for written in areas.values_mut() {
        written.documents.retain(|d| {
            let address = d.address.to_string();
            if !declared.contains(&address) {
                return true;
            }
            if !d.dependency {
                duplicates.push(address);
            }
            false
        });
    }
    areas.retain(|_, w| !w.documents.is_empty());
    match duplicates.is_empty() {
        true => Ok(()),
        false => Err(ImportError::DeclaredAlready {
            addresses: duplicates,
        }),
    }
}

/// A file name in `dir` not taken yet: `name`, else `stem-2.yaml`, `stem-3.yaml`, …
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    if !path.exists() {
        return path;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "yaml"));
    (2..)
        .map(|n| dir.join(format!("{stem}-{n}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

/// Writes the areas into `dir` (never over an existing file) and returns the report.
pub fn write_out(dir: &Path, areas: &BTreeMap<String, Written>) -> Result<String, ImportError> {
    let create = |path: &Path| {
        std::fs::create_dir_all(path).map_err(|error| ImportError::Create {
            path: path.to_owned(),
            error,
        })
    };
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|error| ImportError::Write {
            path: path.to_owned(),
            error,
        })
    };
    create(dir)?;
    let mut report = String::new();
    let mut notes = Vec::new();
    let mut fill_in = Vec::new();
    for (name, written) in areas {
        for (relative, bytes) in &written.files {
            let path = dir.join(relative);
            if path.exists() {
                return Err(ImportError::Exists { path });
            }
            if let Some(parent) = path.parent() {
                create(parent)?;
            }
            write(&path, bytes)?;
        }
        let path = free_name(dir, name);
        let documents: Vec<&Document> = written.documents.iter().collect();
        let text = file_text(
            "Written by `corral import` from what the machines run; edit it as your own.",
            &documents,
        );
        write(&path, text.as_bytes())?;
        let addresses: Vec<String> = written
            .documents
            .iter()
            .map(|d| d.address.to_string())
            .collect();
        let _ = writeln!(report, "Wrote {}: {}", path.display(), addresses.join(", "));
        notes.extend(written.notes.iter().cloned());
        fill_in.extend(written.fill_in.iter().cloned());
    }
    if !fill_in.is_empty() {
        let _ = writeln!(
            report,
            "\nSet these variables before `corral plan` (values Docker never shows):"
        );
        for (variable, what) in &fill_in {
            let _ = writeln!(report, "  {variable}: {what}");
        }
    }
    if notes.is_empty() {
        let _ = writeln!(report, "\nEverything read was written.");
    } else {
        let _ = writeln!(
            report,
            "\nNot reproduced ({}; each is a comment at its place):",
            notes.len()
        );
        for note in &notes {
            let _ = writeln!(report, "  {}: {}", note.at, note.text);
        }
    }
    Ok(report)
}

/// The probes' facts of the first machine (inventory order) where `usable` holds.
pub fn first_with(
    found: &Found,
    usable: impl Fn(&HostFacts) -> bool,
) -> Option<(&str, &HostFacts)> {
    found
        .machines
        .iter()
        .filter_map(|m| Some((m.name.as_str(), found.facts.get(&m.name)?)))
        .find(|(_, f)| usable(f))
}

/// A probe's output, when it ran and succeeded.
pub fn ok_output<'f>(facts: &'f HostFacts, key: &str) -> Option<&'f ProbeOutput> {
    facts.probes.get(key).filter(|o| o.rc == 0)
}

/// Several writers' results as one.
pub fn merge_written(parts: impl IntoIterator<Item = Written>) -> Written {
    let mut all = Written::default();
    for part in parts {
        all.extend(part);
    }
    all
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Facts from recorded fixtures, and loading written files back as configuration.
    use super::*;

    /// The lab's three machines (fixtures were recorded on 10.234.0.0/24, n1 to n3).
    pub fn machines() -> Vec<MachineInfo> {
        (1..=3)
            .map(|i| MachineInfo {
                name: format!("n{i}"),
                ip: format!("10.234.0.1{i}").parse().unwrap(),
                labels: BTreeMap::from([("lab".to_owned(), "corral".to_owned())]),
            })
            .collect()
    }

    /// The recorded output of `probe` in fixtures/cluster/`fact`/`case`.json.
    pub fn recorded(fact: &str, case: &str, probe: &Probe) -> ProbeOutput {
        crate::facts::recorded::cluster(fact, case, probe)
    }

    /// Writes `areas` into a temporary directory with an inventory of [`machines`], and
    /// loads it back as a configuration.
    pub fn load_back(
        areas: &BTreeMap<String, Written>,
    ) -> (tempfile::TempDir, crate::config::Config) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("infra");
        write_out(&out, areas).unwrap();
        let inventory = dir.path().join("inventory.yaml");
        let mut text = String::new();
        for m in machines() {
            text.push_str(&format!(
                "---\nkind: infrastructure/machine\nname: {}\nspecification:\n  hostname: {}\n  ip: {}\n  ssh: {{ user: root }}\n  labels: {{ lab: corral }}\n",
                m.name, m.name, m.ip
            ));
        }
        std::fs::write(&inventory, text).unwrap();
        let config = crate::config::load(&[out, inventory], &Default::default())
            .unwrap_or_else(|e| panic!("the written configuration loads: {e:?}"));
        (dir, config)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::facts::swarm as facts;
    use crate::kinds::Spec;

    /// n1's facts as recorded on the fixtures' swarm (leader n1, manager n2, worker n3,
    /// networks dbnet and appnet, services agent and api), with no configs or secrets.
    fn swarm_found(project: &str) -> Found {
        let mut n1 = HostFacts::default();
        for (fact, probe) in [
            ("swarm-info", facts::info_probe()),
            ("node-inspect", facts::node_inspect_probe()),
            ("network-inspect", facts::network_inspect_probe()),
            ("service-inspect", facts::service_inspect_probe()),
        ] {
            let case = if fact == "swarm-info" {
                "leader"
            } else {
                "cluster"
            };
            n1.probes
                .insert(probe.key.clone(), recorded(fact, case, &probe));
        }
        n1.probes.insert(
            OBJECTS_KEY.into(),
            ProbeOutput {
                rc: 0,
                output: String::new(),
            },
        );
        Found {
            project: project.into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), n1)]),
        }
    }

    fn swarm_request() -> Request {
        Request {
            out: PathBuf::new(),
            force: false,
            only: vec![Area::Swarm],
            targets: vec![],
        }
    }

    #[test]
    fn scalars_read_back_as_the_same_strings() {
        for (text, written) in [
            ("plain", "plain"),
            ("yes", "\"yes\""),
            ("0400", "\"0400\""),
            ("a b", "\"a b\""),
            ("node.role==worker", "\"node.role==worker\""),
            ("", "\"\""),
            ("-x", "\"-x\""),
        ] {
            assert_eq!(scalar(text), written, "{text}");
        }
    }

    #[test]
    fn the_swarm_round_trips_through_its_files() {
        let found = swarm_found("default");
        let areas = write_all(&found, &swarm_request()).unwrap();
        let cluster = &areas["cluster.yaml"].documents[0].text;
        assert!(cluster.contains("managers: [n1, n2]"), "{cluster}");
        assert!(cluster.contains("workers: [n3]"), "{cluster}");
        // The networks alone load back (the services name secrets this fixture lacks).
        let mut only = areas.clone();
        only.retain(|name, _| name == "cluster.yaml" || name == "networks.yaml");
        let (_dir, config) = load_back(&only);
        let nodes = facts::parse_node_inspect(
            facts::NODE_INSPECT_KEY,
            &found.facts["n1"].probes[facts::NODE_INSPECT_KEY],
        )
        .unwrap();
        let networks = facts::parse_network_inspect(
            facts::NETWORK_INSPECT_KEY,
            &found.facts["n1"].probes[facts::NETWORK_INSPECT_KEY],
        )
        .unwrap();
        for resource in &config.resources {
            match &resource.spec {
                Spec::SwarmCluster(spec) => {
                    for node in &nodes {
                        let machine = node.hostname();
                        let mut want = node.spec.labels.clone();
                        want.remove(crate::kinds::swarm_cluster::LABELS_MARKER);
                        assert_eq!(spec.labels.get(machine), Some(&want), "{machine}");
                        let listed = match node.spec.role {
                            facts::NodeRole::Manager => &spec.managers,
                            facts::NodeRole::Worker => &spec.workers,
                        };
                        assert!(listed.iter().any(|m| m == machine), "{machine}");
                    }
                }
                Spec::SwarmNetwork(spec) => {
                    let live = networks
                        .iter()
                        .find(|n| n.name == resource.address.name)
                        .unwrap();
                    assert_eq!(spec.encrypted, live.encrypted());
                    assert_eq!(spec.attachable, live.attachable);
                    assert_eq!(spec.internal, live.internal);
                    assert_eq!(
                        spec.subnet.as_deref(),
                        live.ipam.config.first().map(|c| c.subnet.as_str())
                    );
                }
                _ => {}
            }
        }
        let names: Vec<&str> = config
            .resources
            .iter()
            .map(|r| r.address.name.as_str())
            .collect();
        assert!(!names.contains(&"ingress"), "{names:?}");
    }

    #[test]
    fn services_are_written_with_what_the_plan_compares_and_notes_for_the_rest() {
        let areas = write_all(&swarm_found("default"), &swarm_request()).unwrap();
        let services = &areas["services.yaml"];
        let text: String = services.documents.iter().map(|d| d.text.clone()).collect();
        assert!(text.contains("mode: global"), "{text}");
        // The fixture's secret and config are not listed by this (empty) objects output:
        // said, never guessed.
        assert!(
            services
                .notes
                .iter()
                .any(|n| n.text.contains("is not on the swarm")),
            "{:?}",
            services.notes
        );
        assert!(text.contains("# not reproduced:"), "{text}");
        assert!(text.contains("replicas: 2"), "{text}");
        assert!(text.contains("tier: app"), "{text}");
        assert!(!text.contains("io.corral.managed"), "{text}");
    }

    #[test]
    fn another_projects_objects_are_reported_not_written() {
        let areas = write_all(&swarm_found("infra"), &swarm_request()).unwrap();
        assert!(!areas.contains_key("services.yaml"), "{areas:?}");
        let notes = &areas["cluster.yaml"].notes;
        assert!(
            notes
                .iter()
                .any(|n| n.text.contains("service api (project default)")),
            "{notes:?}"
        );
    }

    #[test]
    fn daemon_settings_round_trip_grouped_where_machines_agree() {
        let key = crate::kinds::file::probe_key(
            crate::kinds::docker_daemon::PATH,
            crate::kinds::file::Read::Content,
        );
        let facts = |fixture: &str, machine: &str| {
            let mut f = HostFacts::default();
            f.probes.insert(
                key.clone(),
                crate::facts::recorded::probe(fixture, machine, &key),
            );
            f
        };
        // Three machines with the same file: one document for all.
        let mut found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: ["n1", "n2", "n3"]
                .iter()
                .map(|m| (m.to_string(), facts("lab-cluster", m)))
                .collect(),
        };
        let written = daemon::write(&found).unwrap();
        assert_eq!(written.documents.len(), 1);
        assert!(written.documents[0].text.contains("machines: all"));
        let (_dir, config) = load_back(&BTreeMap::from([("daemon.yaml".to_owned(), written)]));
        let Spec::DockerDaemon(spec) = &config.resources[0].spec else {
            panic!("a daemon document");
        };
        let live = daemon::settings(&key, &found.facts["n1"]).unwrap().unwrap();
        assert_eq!(spec.settings, live);
        // Without the file on n3: the two others, by name.
        found
            .facts
            .insert("n3".into(), facts("lab-converged", "n3"));
        let written = daemon::write(&found).unwrap();
        assert!(
            written.documents[0].text.contains("machines: [n1, n2]"),
            "{:?}",
            written.documents
        );
    }

    /// A `daemon.json` another project's resource wrote (krill's `docker/daemon.logging`,
    /// by corral's record on each lab host) is left to it, with a note per machine; the
    /// project's own import of it writes it as before.
    #[test]
    fn a_daemon_json_of_another_project_is_left_to_it() {
        let key = crate::kinds::file::probe_key(
            crate::kinds::docker_daemon::PATH,
            crate::kinds::file::Read::Content,
        );
        let facts = |machine: &str| {
            let mut f = HostFacts::default();
            let recorded = |k: &str| crate::facts::recorded::probe("lab-cluster", machine, k);
            f.probes.insert(key.clone(), recorded(&key));
            // The record probe prints the first line of the plan's record probe.
            let managed = recorded(crate::facts::record::PROBE_KEY);
            let first = managed.output.lines().next().unwrap().to_owned();
            assert!(first.starts_with("record ") && first != "record none");
            f.probes.insert(
                RECORD_KEY.into(),
                ProbeOutput {
                    rc: 0,
                    output: format!("{first}\n"),
                },
            );
            f
        };
        let found = |project: &str| Found {
            project: project.into(),
            machines: machines(),
            facts: ["n1", "n2", "n3"]
                .iter()
                .map(|m| (m.to_string(), facts(m)))
                .collect(),
        };
        let written = daemon::write(&found("infra")).unwrap();
        assert!(written.documents.is_empty(), "{:?}", written.documents);
        assert_eq!(written.notes.len(), 3);
        assert!(
            written.notes[0].text.contains("project krill's"),
            "{:?}",
            written.notes
        );
        let written = daemon::write(&found("krill")).unwrap();
        assert_eq!(written.documents.len(), 1);
        assert!(written.notes.is_empty());
    }

    #[test]
    fn duplicates_are_refused_by_name_and_dependencies_dropped() {
        let doc = |kind: &str, name: &str, dependency| Document {
            address: Address::new(kind, name, None),
            text: String::new(),
            dependency,
        };
        let mut areas = BTreeMap::from([(
            "services.yaml".to_owned(),
            Written {
                documents: vec![
                    doc("swarm/network", "appnet", true),
                    doc("swarm/service", "api", false),
                ],
                ..Default::default()
            },
        )]);
        let declared = BTreeSet::from(["swarm/network.appnet".to_owned()]);
        without_duplicates(&mut areas, &declared).unwrap();
        assert_eq!(areas["services.yaml"].documents.len(), 1);
        let declared = BTreeSet::from(["swarm/service.api".to_owned()]);
        let error = without_duplicates(&mut areas, &declared)
            .unwrap_err()
            .to_string();
        assert!(error.contains("swarm/service.api"), "{error}");
    }

    #[test]
    fn a_volume_round_trips_with_its_bricks_options_and_mounts() {
        let info = crate::facts::gluster::volume_info_probe(None);
        let fstab = crate::facts::gluster::fstab_probe("/mnt/gv0");
        let mut n1 = HostFacts::default();
        n1.probes
            .insert(info.key.clone(), recorded("volume-info", "started", &info));
        // The recorded fstab line of gv0, under the import's own key.
        n1.probes
            .insert(FSTAB_KEY.into(), recorded("fstab", "gv0", &fstab));
        let mut found = Found {
            project: "default".into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), n1)]),
        };
        let written = gluster::write(&found).unwrap();
        let text = &written.documents[0].text;
        assert!(text.contains("replica: 3"), "{text}");
        assert!(text.contains("arbiter: true"), "{text}");
        assert!(text.contains("performance.cache-size: \"64MB\""), "{text}");
        assert!(
            !text.contains("nfs.disable"),
            "creation defaults left out: {text}"
        );
        assert!(!text.contains("user.corral.project"), "{text}");
        let (_dir, config) = load_back(&BTreeMap::from([("volumes.yaml".to_owned(), written)]));
        let Spec::GlusterVolume(spec) = &config.resources[0].spec else {
            panic!("a volume");
        };
        let bricks: Vec<String> = spec
            .bricks
            .iter()
            .map(|b| format!("{}:{}", b.machine, b.path))
            .collect();
        assert_eq!(
            bricks,
            [
                "n1:/data/bricks/gv0",
                "n2:/data/bricks/gv0",
                "n3:/data/bricks/gv0"
            ]
        );
        assert_eq!(spec.mount.as_ref().unwrap().path, "/mnt/gv0");
        // Another project's volume is reported, not written.
        found.project = "other".into();
        let written = gluster::write(&found).unwrap();
        assert!(written.documents.is_empty());
        assert!(
            written.notes[0].text.contains("project default"),
            "{:?}",
            written.notes
        );
    }
}

#[cfg(test)]
mod adoption {
    //! The import of a cluster built by hand (fixtures/import, recorded by
    //! scripts/record-import-fixtures.sh), loaded back and planned against the same facts.
    use super::test_support::*;
    use super::*;
    use crate::facts::swarm as facts;
    use crate::kinds::{ClusterFacts, Placement};
    use crate::plan::Action;

    fn by_hand(fact: &str, probe: &Probe) -> ProbeOutput {
        import_case(fact, "by-hand", probe)
    }

    fn import_case(fact: &str, case: &str, probe: &Probe) -> ProbeOutput {
        crate::facts::recorded::checked(
            &format!("import/{fact}/{case}"),
            probe,
            "run scripts/record-import-fixtures.sh",
        )
    }

    /// n1, the manager, as the import and the plan read it.
    fn manager() -> HostFacts {
        manager_of("by-hand")
    }

    /// n1 as recorded in `case` (`by-hand`, or `voting`: the example-voting-app stack
    /// deployed by hand).
    fn manager_of(case: &str) -> HostFacts {
        let mut n1 = HostFacts::default();
        let info = facts::info_probe();
        n1.probes
            .insert(info.key.clone(), recorded("swarm-info", "leader", &info));
        for (fact, probe) in [
            ("service-inspect", facts::service_inspect_probe()),
            ("network-inspect", facts::network_inspect_probe()),
            ("node-inspect", facts::node_inspect_probe()),
            ("objects", objects_probe()),
            ("adoptable", crate::kinds::swarm_secret::adoptable_probe()),
        ] {
            n1.probes
                .insert(probe.key.clone(), import_case(fact, case, &probe));
        }
        n1
    }

    /// The swarm's files as the import writes them from the facts recorded in `case`.
    fn swarm_written(case: &str) -> BTreeMap<String, Written> {
        let found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), manager_of(case))]),
        };
        write_all(
            &found,
            &Request {
                out: PathBuf::new(),
                force: false,
                only: vec![Area::Swarm],
                targets: vec![],
            },
        )
        .unwrap()
    }

    /// The written files, `edit` applied to them, loaded back; and each swarm resource's
    /// plan against the recorded facts.
    fn plan_after_import(
        edit: impl Fn(&str) -> String,
    ) -> Vec<(String, crate::plan::Diff, Vec<String>)> {
        plan_after_import_of("by-hand", edit)
    }

    fn plan_after_import_of(
        case: &str,
        edit: impl Fn(&str) -> String,
    ) -> Vec<(String, crate::plan::Diff, Vec<String>)> {
        let mut areas = swarm_written(case);
        for written in areas.values_mut() {
            for document in &mut written.documents {
                document.text = edit(&document.text);
            }
        }
        let (_dir, config) = load_back(&areas);
        let mut planned = manager_of(case);
        crate::kinds::redact_cluster_facts(&config, &mut planned);
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), &planned)),
            inventory: BTreeMap::new(),
        };
        config
            .resources
            .iter()
            .filter(|r| r.address.kind != crate::kinds::swarm_cluster::KIND)
            .filter_map(|r| match r.spec.placement() {
                Placement::Cluster(kind) => {
                    let diff = kind
                        .diff(&r.address.name, &facts)
                        .unwrap_or_else(|e| panic!("{}: {e}", r.address));
                    let steps = kind
                        .steps(&r.address.name, &facts)
                        .unwrap()
                        .into_iter()
                        .map(|s| s.step.script)
                        .collect();
                    Some((r.address.to_string(), diff, steps))
                }
                Placement::Machines(_) => None,
            })
            .collect()
    }

    #[test]
    fn what_was_built_by_hand_is_written_whole() {
        let areas = swarm_written("by-hand");
        // Docker's defaults (restart policy, empty resources, stop grace period…) are not
        // settings of a person's: nothing to note.
        let notes: Vec<&Note> = areas.values().flat_map(|w| &w.notes).collect();
        assert!(notes.is_empty(), "{notes:?}");
        let compose = &areas["stacks.yaml"].files;
        let (_, text) = compose
            .iter()
            .find(|(p, _)| p.ends_with("compose.yaml"))
            .unwrap();
        let text = String::from_utf8_lossy(text);
        assert!(text.contains("mode: global"), "{text}");
        assert!(text.contains("motd: {file: ./motd}"), "{text}");
    }

    #[test]
    fn what_was_built_by_hand_plans_no_changes() {
        let planned = plan_after_import(str::to_owned);
        let addresses: Vec<&str> = planned.iter().map(|(a, _, _)| a.as_str()).collect();
        for wanted in [
            "swarm/service.api",
            "swarm/config.app_conf",
            "swarm/network.appnet",
            "swarm/stack.web",
        ] {
            assert!(addresses.contains(&wanted), "{addresses:?}");
        }
        for (address, diff, steps) in &planned {
            assert_eq!(diff.action(), Action::NoOp, "{address}: {diff:?}");
            assert!(steps.is_empty(), "{address}: {steps:?}");
        }
    }

    /// A public stack file deployed by hand (example-voting-app): its named volume is the
    /// stack's own (`vote_db-data` on the host), declared at the top level under its key,
    /// and the written file plans no changes.
    #[test]
    fn a_public_stack_with_a_volume_of_its_own_is_written_and_plans_no_changes() {
        let areas = swarm_written("voting");
        let (_, text) = areas["stacks.yaml"]
            .files
            .iter()
            .find(|(p, _)| p.ends_with("vote/compose.yaml"))
            .unwrap();
        let text = String::from_utf8_lossy(text);
        assert!(
            text.contains("source: db-data, target: /var/lib/postgresql/data}"),
            "{text}"
        );
        assert!(text.contains("volumes:\n  db-data: {}\n"), "{text}");
        let planned = plan_after_import_of("voting", str::to_owned);
        assert!(
            planned.iter().any(|(a, _, _)| a == "swarm/stack.vote"),
            "{planned:?}"
        );
        for (address, diff, steps) in &planned {
            assert_eq!(diff.action(), Action::NoOp, "{address}: {diff:?}");
            assert!(steps.is_empty(), "{address}: {steps:?}");
        }
    }

    #[test]
    fn the_first_change_of_a_service_made_by_hand_adopts_it_and_changes_only_that() {
        let planned = plan_after_import(|text| text.replace("GREETING: hello", "GREETING: hi"));
        for (address, diff, steps) in &planned {
            if address != "swarm/service.api" {
                assert_eq!(diff.action(), Action::NoOp, "{address}: {diff:?}");
                continue;
            }
            assert_eq!(diff.action(), Action::Update);
            let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["env.GREETING", crate::kinds::ADOPTED], "{diff:?}");
            assert!(
                diff.reason.as_deref().unwrap().starts_with("adopted"),
                "{diff:?}"
            );
            let script = &steps[0];
            assert!(
                script.contains("--label-add 'io.corral.managed=infra'"),
                "{script}"
            );
            assert!(script.contains("--env-add 'GREETING=hi'"), "{script}");
            // The guard lets a service without a label through, and no other project's.
            assert!(script.contains("in infra|''|"), "{script}");
        }
    }

    #[test]
    fn a_hand_written_fstab_line_is_mounted_and_noted_as_rewritten() {
        let info = crate::facts::gluster::volume_info_probe(None);
        let fstab = Probe {
            key: FSTAB_KEY.into(),
            script: probes()
                .into_iter()
                .find(|p| p.key == FSTAB_KEY)
                .unwrap()
                .script,
        };
        let facts = |with_volume: bool| {
            let mut f = HostFacts::default();
            if with_volume {
                f.probes
                    .insert(info.key.clone(), by_hand("volume-info", &info));
            }
            f.probes.insert(FSTAB_KEY.into(), by_hand("fstab", &fstab));
            f
        };
        let found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: BTreeMap::from([
                ("n1".to_owned(), facts(true)),
                ("n2".to_owned(), facts(false)),
                ("n3".to_owned(), facts(false)),
            ]),
        };
        let written = gluster::write(&found).unwrap();
        let text = &written.documents[0].text;
        assert!(text.contains("machines: all\n    path: /mnt/gv0"), "{text}");
        assert!(
            text.contains("# not reproduced: n1's /etc/fstab line"),
            "{text}"
        );
        assert_eq!(written.notes.len(), 3, "{:?}", written.notes);
    }

    #[test]
    fn a_targeted_service_brings_what_it_uses_as_dependencies() {
        let found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), manager())]),
        };
        let areas = write_all(
            &found,
            &Request {
                out: PathBuf::new(),
                force: false,
                only: vec![],
                targets: vec!["swarm/service.api".into()],
            },
        )
        .unwrap();
        let documents: Vec<(String, bool)> = areas
            .values()
            .flat_map(|w| &w.documents)
            .map(|d| (d.address.to_string(), d.dependency))
            .collect();
        assert_eq!(
            documents,
            [
                ("swarm/cluster.main".to_owned(), true),
                ("swarm/network.appnet".to_owned(), true),
                ("swarm/service.api".to_owned(), false),
                ("swarm/config.app_conf".to_owned(), true),
            ]
        );
    }

    #[test]
    fn a_swarm_without_a_manager_that_answers_is_refused_not_guessed() {
        // n1 answers as a worker, and no manager of the inventory was read.
        let info = facts::info_probe();
        let mut n1 = HostFacts::default();
        n1.probes
            .insert(info.key.clone(), recorded("swarm-info", "worker", &info));
        let found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), n1)]),
        };
        let error = swarm::write(&found, &[]).err().unwrap().to_string();
        assert!(error.contains("no manager of it answered"), "{error}");
    }

    #[test]
    fn a_changed_config_value_is_a_new_version_not_an_adoption() {
        // The config's data no longer equals the hand-made one: corral makes its own.
        let found = Found {
            project: "infra".into(),
            machines: machines(),
            facts: BTreeMap::from([("n1".to_owned(), manager())]),
        };
        let mut areas = write_all(
            &found,
            &Request {
                out: PathBuf::new(),
                force: false,
                only: vec![Area::Swarm],
                targets: vec![],
            },
        )
        .unwrap();
        let services = areas.get_mut("services.yaml").unwrap();
        let (_, data) = services
            .files
            .iter_mut()
            .find(|(p, _)| p.ends_with("app_conf"))
            .unwrap();
        assert_eq!(data.as_slice(), b"listen 80\n");
        *data = b"listen 81\n".to_vec();
        let (_dir, config) = load_back(&areas);
        let mut planned = manager();
        crate::kinds::redact_cluster_facts(&config, &mut planned);
        assert!(
            !planned.probes[crate::kinds::swarm_secret::ADOPTABLE_KEY]
                .output
                .contains("app_conf"),
            "{:?}",
            planned.probes[crate::kinds::swarm_secret::ADOPTABLE_KEY]
        );
    }
}
