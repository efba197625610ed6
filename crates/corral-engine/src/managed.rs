//! What corral has written on a host, recorded on the host itself in
//! `/var/lib/corral/managed.json` (SPEC §2: facts are the truth, there is no central state).
//! Records are kept per project (`--project`, default `default`), so configurations applied
//! to the same hosts under different projects never delete each other's resources; each
//! project's record names the configuration that owns the name (see `project`).
//!
//! When a resource that wrote something (a file, a persisted sysctl file, a unit file) is
//! removed from the configuration, the record is how the next plan knows what to undo. A
//! file corral created is deleted; a file it found and changed (adopted) is put back as it
//! was, from the original kept under [`file::ORIGINALS_DIR`] at the first change; a file
//! whose origin corral cannot tell is left in place. Packages and services without a unit
//! file leave nothing to delete: corral stops managing them and leaves them as they are
//! (list packages under `absent` to remove them).

use std::collections::BTreeMap;

use crate::address::Address;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::kinds::file::{self, DesiredFile, FileState};
use crate::kinds::Step;
use crate::plan::{Action, AttrChange, AttrValue, ResourceChange};
use crate::shell::quote;

use crate::facts::record::FORMAT_VERSION;
pub use crate::facts::record::{Entry, Origin, Record, PATH, PROBE_KEY};

/// The origin of `entry`, where known. Files of kinds that never adopt one have corral's
/// own names (sysctl files) or are unit files, which corral always treated as its own.
pub fn origin(entry: &Entry) -> Option<Origin> {
    entry.origin_given(crate::kinds::adopts_files(&entry.kind))
}

/// What a host holds for planning deletions: the record and the originals corral keeps,
/// each with the file now at its path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRecord {
    pub record: Record,
    /// By [`file::original_id`]: the kept original and the file now at its path.
    pub originals: BTreeMap<String, (FileState, FileState)>,
    /// The [`file::original_id`]s of files corral created (the host keeps a marker).
    pub created: std::collections::BTreeSet<String>,
    /// Restarts and reloads owed, of every project ([`crate::owed`]).
    pub owed: Vec<crate::owed::Owed>,
}

/// Reads the record and, for every kept original, the original and the current file,
/// through [`file::PROBE_FUNCTION`]. Their bytes are read only for a diff of a restore to
/// come: never for a sensitive file, nor for a path a resource still declares on this
/// machine (`declared`), so a converged host reads no content here.
pub fn probe(declared: &[String]) -> Probe {
    let dir = file::ORIGINALS_DIR;
    let declared = if declared.is_empty() {
        "declared() { return 1; }\n".to_owned()
    } else {
        let patterns: Vec<String> = declared.iter().map(|p| quote(p)).collect();
        format!(
            "declared() {{ case $1 in {}) return 0 ;; esac; return 1; }}\n",
            patterns.join("|")
        )
    };
    Probe {
        key: PROBE_KEY.to_owned(),
        script: format!(
            "{function}{declared}{record}for o in {dir}/*.path; do\n  [ -f \"$o\" ] || continue\n  cid=${{o##*/}}; cid=${{cid%.path}}\n  IFS= read -r kept < \"$o\" || [ -n \"$kept\" ] || kept=\n  chow=content; [ ! -e {dir}/$cid.sensitive ] || chow=meta\n  ! declared \"$kept\" || chow=meta\n  printf '@original\\t%s\\n' \"$cid\"\n  corral_file {dir}/$cid $chow none\n  printf '@current\\t%s\\n' \"$cid\"\n  corral_file \"$kept\" $chow \"$cid\"\ndone\nfor o in {dir}/*.created; do\n  [ -f \"$o\" ] || continue\n  cid=${{o##*/}}; printf '@created\\t%s\\n' \"${{cid%.created}}\"\ndone\n{owed}",
            function = file::probe_function(),
            record = crate::facts::record::read_script(),
            owed = crate::owed::probe(),
        ),
    }
}

/// The arguments of the fact script's one `perl` (`kinds::file::batch`) for [`probe`]'s
/// script, read back from it (the paths still declared, then regenerated to be sure they
/// were read right): the declared paths joined by newlines, `managed`, and where owed
/// restarts are kept. None for any other probe, or where a declared path holds a newline.
pub fn reader_args(key: &str, script: &str) -> Option<String> {
    if key != PROBE_KEY {
        return None;
    }
    let line = script
        .strip_prefix(file::probe_function())?
        .lines()
        .next()?;
    let declared = if line == "declared() { return 1; }" {
        Vec::new()
    } else {
        let patterns = line
            .strip_prefix("declared() { case $1 in ")?
            .strip_suffix(") return 0 ;; esac; return 1; }")?;
        case_patterns(patterns)?
    };
    if declared.iter().any(|p| p.contains('\n')) || probe(&declared).script != script {
        return None;
    }
    Some(format!(
        "{} managed {}",
        quote(&declared.join("\n")),
        quote(crate::owed::DIR)
    ))
}

/// The words of a `case` pattern list as [`probe`] writes it (`quote`d words joined by
/// `|`), unquoted; none where a word does not read as one.
fn case_patterns(text: &str) -> Option<Vec<String>> {
    let mut words = vec![String::new()];
    let (mut quoted, mut escaped) = (None, false);
    for c in text.chars() {
        let word = words.last_mut()?;
        if escaped {
            escaped = false;
        } else {
            match (quoted, c) {
                (None, '|') => {
                    words.push(String::new());
                    continue;
                }
                (None, '\'' | '"') => quoted = Some(c),
                (Some(q), c) if c == q => quoted = None,
                (None | Some('"'), '\\') => escaped = true,
                _ => {}
            }
        }
        word.push(c);
    }
    words
        .iter()
        .map(|word| match shlex::split(word)?.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
        .collect()
}

/// Parses the output of [`probe`]; a host corral never wrote to has no record.
/// One `TAG ID` line and the lines up to the next section.
fn section<'a>(
    lines: &mut std::iter::Peekable<std::str::Lines<'a>>,
    tag: &str,
) -> Option<(String, Vec<&'a str>)> {
    let id = lines.next()?.strip_prefix(tag)?.to_owned();
    let mut body = Vec::new();
    while let Some(line) = lines.next_if(|l| !l.starts_with('@')) {
        body.push(line);
    }
    Some((id, body))
}

pub fn parse(out: &ProbeOutput) -> Result<HostRecord, FactError> {
    let record = crate::facts::record::parse_record(out)?;
    let mut lines = out.output.lines().peekable();
    lines.next();
    let mut originals = BTreeMap::new();
    let mut created = std::collections::BTreeSet::new();
    let mut owed = Vec::new();
    // Sections: `@original ID`, its file's lines, `@current ID`, that file's lines.
    while lines.peek().is_some() {
        let bad = || FactError::unexpected(PROBE_KEY, out);
        if let Some(id) = lines.peek().and_then(|l| l.strip_prefix("@created\t")) {
            created.insert(id.to_owned());
            lines.next();
            continue;
        }
        if let Some(line) = lines.peek().and_then(|l| l.strip_prefix("@owed\t")) {
            owed.push(crate::owed::parse_line(line, PROBE_KEY)?);
            lines.next();
            continue;
        }
        let (id, original) = section(&mut lines, "@original\t").ok_or_else(bad)?;
        let (current_id, current) = section(&mut lines, "@current\t").ok_or_else(bad)?;
        if current_id != id {
            return Err(bad());
        }
        let parse = |lines: Vec<&str>| {
            file::parse_lines("", lines.into_iter())
                .map_err(|e| FactError::new(PROBE_KEY, format!("original {id}: {e}")))
        };
        originals.insert(id.clone(), (parse(original)?, parse(current)?));
    }
    Ok(HostRecord {
        record,
        originals,
        created,
        owed,
    })
}

/// The record of a host as gathered.
pub fn recorded(facts: &HostFacts) -> Result<Record, FactError> {
    host_record(facts).map(|h| h.record)
}

/// The record of a host and the originals it keeps, as gathered.
pub fn host_record(facts: &HostFacts) -> Result<HostRecord, FactError> {
    parse(facts.get(PROBE_KEY)?)
}

/// Why a removed resource's file is left as it is.
const LEFT_IN_PLACE: &str = "left in place (corral did not create it and kept no original)";

/// The plan's change that undoes what `entry` recorded: deletes what corral created,
/// restores what it adopted, and forgets (leaves in place) a file it cannot tell.
pub fn deletion(
    address: Address,
    machine: &str,
    entry: &Entry,
    host: &HostRecord,
) -> ResourceChange {
    let mut attributes = Vec::new();
    let mut reason = "no longer in the configuration".to_owned();
    // Nothing to undo on the host (see `delete_steps`): only the record of it goes.
    let mut action = if entry.path.is_some() {
        Action::Delete
    } else {
        Action::Forget
    };
    if let Some(unit) = &entry.unit {
        attributes.push(AttrChange::new(
            "unit",
            AttrValue::Scalar(unit.clone()),
            AttrValue::Absent,
        ));
    }
    if let Some(path) = &entry.path {
        // What the host says first (it saw the file when corral wrote it), then the record.
        let id = file::original_id(path);
        let kept = host.originals.get(&id);
        let created = host.created.contains(&id) || origin(entry) == Some(Origin::Created);
        match (kept, created) {
            (None, true) => attributes.push(AttrChange::new(
                "path",
                AttrValue::Scalar(path.clone()),
                AttrValue::Absent,
            )),
            (Some((original, current)), _) => {
                attributes.push(AttrChange::new(
                    file::ORIGINAL_ATTR,
                    AttrValue::Scalar(format!("kept in {}", file::ORIGINALS_DIR)),
                    AttrValue::Scalar(path.clone()),
                ));
                attributes.extend(restore_attributes(original, current, entry.sensitive));
                reason
                    .push_str("; corral puts back the file that was here before its first change");
            }
            _ => {
                action = Action::Forget;
                attributes.push(AttrChange::new(
                    "path",
                    AttrValue::Scalar(path.clone()),
                    AttrValue::Scalar(LEFT_IN_PLACE.to_owned()),
                ))
            }
        }
    }
    if let Some(note) = crate::kinds::deletion_note(&entry.kind) {
        reason.push_str(note);
    }
    ResourceChange {
        address,
        machine: Some(machine.to_owned()),
        action,
        attributes,
        reason: Some(reason),
        triggered_by: Vec::new(),
    }
}

/// What restoring `original` over `current` changes, as attributes (content as a diff).
fn restore_attributes(
    original: &FileState,
    current: &FileState,
    sensitive: bool,
) -> Vec<AttrChange> {
    let value = |state: &FileState| -> AttrValue {
        match state {
            _ if sensitive => AttrValue::Sensitive,
            FileState::Present {
                body: file::Body::Content(bytes),
                ..
            } => match std::str::from_utf8(bytes) {
                Ok(text) => AttrValue::Content(text.to_owned()),
                Err(_) => AttrValue::Opaque(format!("{} bytes", bytes.len())),
            },
            FileState::Present {
                body: file::Body::Digest(sha),
                size,
                ..
            } => AttrValue::Opaque(format!(
                "{size} bytes, sha256:{}",
                &sha[..12.min(sha.len())]
            )),
            FileState::Present { .. } => AttrValue::Opaque("unreadable".into()),
            _ => AttrValue::Absent,
        }
    };
    let (before, after) = (value(current), value(original));
    let mut attributes = Vec::new();
    if before != after || sensitive {
        attributes.push(AttrChange::new("content", before, after));
    }
    if let (
        FileState::Present {
            mode: m1,
            owner: o1,
            group: g1,
            ..
        },
        FileState::Present {
            mode: m0,
            owner: o0,
            group: g0,
            ..
        },
    ) = (current, original)
    {
        for (name, now, then) in [("mode", m1, m0), ("owner", o1, o0), ("group", g1, g0)] {
            if now != then {
                let pad = |m: &String| {
                    if name == "mode" {
                        format!("{m:0>4}")
                    } else {
                        m.clone()
                    }
                };
                attributes.push(AttrChange::scalar(name, pad(now), pad(then)));
            }
        }
    }
    attributes
}

/// The commands that carry out a [`deletion`]. A unit file is removed; the unit is stopped
/// and disabled only when no packaged unit of that name takes over (removing an override
/// of `docker.service` must not stop Docker), else it restarts on the packaged one.
pub fn delete_steps(change: &ResourceChange, project: &str) -> Vec<Step> {
    // A cluster object (a service, a network), removed on a manager.
    if let Some(script) = crate::kinds::orphan_delete_script(&change.address, project) {
        return vec![Step {
            description: format!("remove {}", change.address),
            script,
        }];
    }
    let value = |name: &str| match change.attribute(name).map(|a| &a.before) {
        Some(AttrValue::Scalar(value)) => Some(value.clone()),
        _ => None,
    };
    let leave = matches!(
        change.attribute("path").map(|a| &a.after),
        Some(AttrValue::Scalar(_))
    );
    // An adopted file: its original goes back (the attribute's `after` is the path).
    if let Some(AttrValue::Scalar(path)) = change.attribute(file::ORIGINAL_ATTR).map(|a| &a.after) {
        let mut script = file::restore_script(path);
        // A unit file put back: systemd reads it again, and a running unit runs on it.
        if let Some(unit) = value("unit") {
            script.push_str(&format!(
                "systemctl daemon-reload\nsystemctl try-restart -- {}\n",
                quote(&unit)
            ));
        }
        return vec![Step {
            description: format!("restore {path}"),
            script,
        }];
    }
    let Some(path) = value("path").filter(|_| !leave) else {
        return Vec::new();
    };
    let mut script = String::from("set -e\n");
    match value("unit") {
        Some(unit) => {
            let u = quote(&unit);
            let remove = file::delete_script(&path);
            script.push_str(&format!(
                "if [ -e /lib/systemd/system/{u} ] || [ -e /usr/lib/systemd/system/{u} ]; then\n{remove}  systemctl daemon-reload\n  systemctl try-restart -- {u}\nelse\n  systemctl disable --now -- {u} || true\n{remove}  systemctl daemon-reload\nfi\n"
            ));
        }
        None => script.push_str(&file::delete_script(&path)),
    }
    // What the kind runs without the file (sshd reloads, the firewall loads again).
    script.push_str(&crate::kinds::after_file_deleted(&change.address.kind));
    vec![Step {
        description: format!("delete {path}"),
        script,
    }]
}

/// A host's record after an apply: deletions that succeeded leave the project's record;
/// resources applied with success enter it, with how corral came to own their file
/// (replacing any older entry for the same file or unit, as when a resource is renamed).
pub fn updated(
    old: &Record,
    machine: &str,
    config: &crate::config::Config,
    plan: &crate::plan::Plan,
    applied: &std::collections::HashSet<&Address>,
) -> Record {
    let mut record = old.clone();
    let resources = record.projects.entry(config.project.clone()).or_default();
    for change in &plan.resource_changes {
        if change.machine.as_deref() != Some(machine) || !applied.contains(&change.address) {
            continue;
        }
        let resource_address = change.address.resource();
        let key = resource_address.to_string();
        if change.action.is_removal() {
            resources.remove(&key);
            continue;
        }
        let entry = config
            .resources
            .iter()
            .find(|r| r.address == resource_address)
            .and_then(|r| match r.spec.placement() {
                crate::kinds::Placement::Machines(kind) => kind.managed_entry(&r.address.name),
                // Cluster objects are recorded on the cluster (labels), not on a host.
                crate::kinds::Placement::Cluster(_) => None,
            });
        if let Some(mut entry) = entry {
            entry.origin = Some(if change.action == Action::Create {
                Origin::Created
            } else if change.attribute(file::ORIGINAL_ATTR).is_some() {
                Origin::Adopted
            } else {
                // Already corral's (another project's, or recorded before): as it was; a
                // file found as configured is adopted, without an original to restore.
                entry
                    .path
                    .as_deref()
                    .and_then(|p| old.entries_for(p).find_map(origin))
                    .or(origin(&entry))
                    .unwrap_or(Origin::Adopted)
            });
            resources.retain(|k, e| {
                k == &key
                    || (e.path.is_none() || e.path != entry.path)
                        && (e.unit.is_none() || e.unit != entry.unit)
            });
            resources.insert(key, entry);
        }
    }
    record.projects.retain(|_, resources| !resources.is_empty());
    if let Some(id) = &config.identity.id {
        record.owners.insert(config.project.clone(), id.clone());
    }
    record
}

/// Shell text that replaces the host's record atomically.
pub fn write_script(record: &Record) -> String {
    let record = Record {
        format_version: FORMAT_VERSION,
        projects: record.projects.clone(),
        owners: record.owners.clone(),
    };
    let text = serde_json::to_string_pretty(&record).unwrap_or_default() + "\n";
    file::write_script(&DesiredFile {
        path: PATH,
        bytes: text.as_bytes(),
        mode: Some("0600"),
        owner: Some("root"),
        group: Some("root"),
        sensitive: false,
        keep_original: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded as fixtures;

    /// The declared paths are read back from the probe's own script, whatever their
    /// characters; one with a newline is left to the shell.
    #[test]
    fn the_reader_gets_the_declared_paths_back() {
        assert_eq!(
            reader_args(PROBE_KEY, &probe(&[]).script).as_deref(),
            Some("'' managed /var/lib/corral/owed")
        );
        let odd = [
            "/etc/plain".to_owned(),
            "/etc/a b|c".to_owned(),
            "/etc/it's \"here\"".to_owned(),
            "/etc/$(x)*".to_owned(),
        ];
        let args = reader_args(PROBE_KEY, &probe(&odd).script).unwrap();
        let words = shlex::split(&args).unwrap();
        assert_eq!(words[0], odd.join("\n"));
        assert_eq!(
            reader_args(PROBE_KEY, &probe(&["/etc/a\nb".to_owned()]).script),
            None
        );
        assert_eq!(reader_args("other", &probe(&[]).script), None);
    }

    /// On a "host" in a temporary directory (corral's directory moved there) with a record,
    /// originals of files changed since, declared and not, sensitive, with a link where the
    /// file was, files corral created and a debt, the fact script's `perl` prints the
    /// record probe's output as the shell does, and answers it (real `sh` and `perl`).
    #[test]
    fn the_reader_prints_the_record_probe_as_the_shell_does() {
        use crate::gather::script::FactScript;
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let corral = root.join("corral");
        let originals = corral.join("originals");
        std::fs::create_dir_all(&originals).unwrap();
        std::fs::create_dir_all(corral.join("owed")).unwrap();
        std::fs::write(corral.join("managed.json"), b"{\"version\": 3}\n").unwrap();
        let mut declared = Vec::new();
        for (name, sensitive, is_declared, link) in [
            ("motd", false, false, false),
            ("issue", false, true, false),
            ("token", true, false, false),
            ("linked", false, false, true),
        ] {
            let path = root.join(name);
            let path_text = path.to_str().unwrap().to_owned();
            let id = file::original_id(&path_text);
            std::fs::write(originals.join(&id), format!("was {name}\n")).unwrap();
            std::fs::write(
                originals.join(format!("{id}.path")),
                format!("{path_text}\n"),
            )
            .unwrap();
            if sensitive {
                std::fs::write(originals.join(format!("{id}.sensitive")), b"").unwrap();
            }
            if link {
                std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
            } else {
                std::fs::write(&path, format!("now {name}\n")).unwrap();
            }
            if is_declared {
                declared.push(path_text);
            }
        }
        std::fs::write(originals.join("0123abcd.created"), b"").unwrap();
        std::fs::write(corral.join("owed").join("web"), b"{\"unit\": \"web\"}").unwrap();
        let probe = probe(&declared);
        let moved = |text: &str| text.replace("/var/lib/corral", corral.to_str().unwrap());
        let alone = std::process::Command::new("sh")
            .arg("-c")
            .arg(moved(&format!(
                "export LC_ALL=C\nexec 2>&1\n{}",
                probe.script
            )))
            .output()
            .unwrap();
        let alone = String::from_utf8(alone.stdout).unwrap();
        assert!(alone.contains("@owed\tweb\t") && alone.contains("@created\t0123abcd"));
        assert_eq!(alone.matches("@original\t").count(), 4, "{alone}");
        let script = FactScript::new(std::slice::from_ref(&probe));
        let out = corral_core::testing::run_sh(&moved(&format!(
            "{}echo \"@@done $corral_done\"\n",
            script.text
        )));
        assert_eq!(out.rsplit_once("@@done ").unwrap().1.trim(), "0", "{out}");
        let outputs = script.split(&out).unwrap();
        assert_eq!(outputs[PROBE_KEY].output, alone);
        assert_eq!(outputs[PROBE_KEY].rc, 0);
    }

    #[test]
    fn fresh_host_has_no_record() {
        let out = fixtures::probe("lab-fresh", "n1", PROBE_KEY);
        assert_eq!(parse(&out).unwrap(), HostRecord::default());
    }

    #[test]
    fn applied_host_records_what_corral_wrote_and_how() {
        let host = parse(&fixtures::probe("lab-converged", "n1", PROBE_KEY)).unwrap();
        let resources = host.record.project("examples");
        let origins: Vec<(&str, Option<Origin>)> = resources
            .iter()
            .map(|(address, entry)| (address.as_str(), entry.origin))
            .collect();
        assert_eq!(
            origins,
            [
                ("os/file.api-token", Some(Origin::Created)),
                ("os/file.heartbeat-config", Some(Origin::Created)),
                ("os/file.issue-net", Some(Origin::Adopted)),
                ("os/file.motd", Some(Origin::Adopted)),
                ("os/service.heartbeat", Some(Origin::Created)),
                ("os/sysctl.baseline", Some(Origin::Created)),
            ]
        );
        assert!(resources["os/file.api-token"].sensitive);
        assert_eq!(
            resources["os/service.heartbeat"].unit.as_deref(),
            Some("corral-heartbeat.service")
        );
        // Debian's /etc/issue.net and /etc/motd were kept at their first change; as both
        // are still declared, their content is not read (no restore is coming).
        let kept = &host.originals[&file::original_id("/etc/issue.net")];
        assert!(
            matches!(
                &kept.0,
                FileState::Present {
                    body: file::Body::None,
                    size: 20,
                    ..
                }
            ),
            "{kept:?}"
        );
        assert_eq!(host.originals.len(), 2, "{:?}", host.originals.keys());
        // Read by a configuration that no longer declares /etc/motd: its original is read.
        let host = parse(&fixtures::probe("lab-converged-reduced", "n1", PROBE_KEY)).unwrap();
        let kept = &host.originals[&file::original_id("/etc/motd")];
        assert!(
            matches!(&kept.0, FileState::Present { body: file::Body::Content(c), .. } if c.starts_with(b"\nThe programs included with the Debian")),
            "{kept:?}"
        );
    }

    fn removal(entry: Entry, fixture: &str) -> ResourceChange {
        let host = parse(&fixtures::probe(fixture, "n1", PROBE_KEY)).unwrap();
        deletion(
            Address::new(&entry.kind.clone(), "x", Some("n1")),
            "n1",
            &entry,
            &host,
        )
    }

    /// Removing a resource that adopted a distribution file puts the file back, shown as a
    /// diff; it never deletes it.
    #[test]
    fn adopted_file_is_restored_not_deleted() {
        let change = removal(
            Entry {
                origin: Some(Origin::Adopted),
                ..Entry::file(crate::kinds::os_file::KIND, "/etc/motd")
            },
            "lab-converged-reduced",
        );
        let motd = std::fs::read_to_string(format!(
            "{}/examples/files/motd.txt",
            corral_core::testing::REPOSITORY
        ))
        .unwrap();
        let (before, after) = change
            .attribute("content")
            .map(|a| (&a.before, &a.after))
            .unwrap();
        assert_eq!(before, &AttrValue::Content(motd));
        assert!(
            matches!(after, AttrValue::Content(text) if text.starts_with("\nThe programs included with the Debian")),
            "{after:?}"
        );
        let steps = delete_steps(&change, "default");
        assert_eq!(steps[0].description, "restore /etc/motd");
        assert!(
            !steps[0].script.contains("rm -f -- \"$b\""),
            "{}",
            steps[0].script
        );
    }

    /// A file corral cannot tell the origin of (a corral 0.1 record) or adopted without an
    /// original (it was already as configured) is left in place.
    #[test]
    fn file_of_unknown_origin_is_left_in_place() {
        for origin in [None, Some(Origin::Adopted)] {
            let change = removal(
                Entry {
                    origin,
                    ..Entry::file(crate::kinds::os_file::KIND, "/etc/ssh/sshd_config")
                },
                "lab-converged",
            );
            assert_eq!(
                change.attribute("path").map(|a| &a.after),
                Some(&AttrValue::Scalar(LEFT_IN_PLACE.into()))
            );
            assert!(delete_steps(&change, "default").is_empty());
            assert_eq!(change.action, Action::Forget, "counted as what happens");
        }
    }

    #[test]
    fn created_file_is_deleted() {
        let change = removal(
            Entry {
                origin: Some(Origin::Created),
                ..Entry::file(crate::kinds::os_file::KIND, "/etc/default/corral-heartbeat")
            },
            "lab-converged",
        );
        let steps = delete_steps(&change, "default");
        assert_eq!(steps[0].description, "delete /etc/default/corral-heartbeat");
        assert!(
            steps[0].script.contains("rm -f -- \"$b\""),
            "{}",
            steps[0].script
        );
    }

    /// A sensitive adopted file restores without either side's content in the plan.
    #[test]
    fn sensitive_original_is_never_shown() {
        let host = parse(&fixtures::probe("lab-converged", "n1", PROBE_KEY)).unwrap();
        let (original, current) = &host.originals[&file::original_id("/etc/issue.net")];
        let attributes = restore_attributes(original, current, true);
        assert_eq!(
            attributes[0],
            AttrChange::new("content", AttrValue::Sensitive, AttrValue::Sensitive)
        );
        assert!(!format!("{attributes:?}").contains("Debian"));
    }

    #[test]
    fn deleting_a_unit_stops_it_unless_a_packaged_unit_takes_over() {
        let entry = Entry {
            unit: Some("x y.service".into()),
            ..Entry::file("os/service", "/etc/systemd/system/x y.service")
        };
        let change = deletion(
            Address::new("os/service", "x", Some("n1")),
            "n1",
            &entry,
            &HostRecord::default(),
        );
        let script = &delete_steps(&change, "default")[0].script;
        assert!(
            script.contains("systemctl disable --now -- 'x y.service'"),
            "{script}"
        );
        assert!(
            script.contains("d=/etc/systemd/system; b='x y.service'"),
            "{script}"
        );
        assert!(
            script.contains("then\n(\nset -eu\nd=/etc/systemd/system"),
            "a packaged unit of the same name takes over instead: {script}"
        );
        assert!(
            script.ends_with("systemctl daemon-reload\nfi\n"),
            "{script}"
        );
    }

    /// The record after an apply says how each file came to be corral's.
    #[test]
    fn applied_changes_record_their_origin() {
        let change = |name: &str, action, attributes| ResourceChange {
            address: Address::new(crate::kinds::os_file::KIND, name, Some("n1")),
            machine: Some("n1".into()),
            action,
            attributes,
            reason: None,
            triggered_by: Vec::new(),
        };
        let kept = AttrChange::new(
            file::ORIGINAL_ATTR,
            AttrValue::Absent,
            AttrValue::Scalar("kept".into()),
        );
        let yaml = "kind: infrastructure/machine\nname: n1\nspecification: {hostname: n1, ip: 10.0.0.1}\n---\nkind: os/file\nname: new\nspecification: {machines: all, path: /etc/new, content: x}\n---\nkind: os/file\nname: found\nspecification: {machines: all, path: /etc/found, content: x}\n---\nkind: os/file\nname: right\nspecification: {machines: all, path: /etc/right, content: x}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        let options = crate::config::LoadOptions {
            project: "default".into(),
            ..Default::default()
        };
        let mut config = crate::config::load(&[path], &options).unwrap();
        config.identity.id = Some("0123456789abcdef".into());
        let plan = crate::plan::Plan {
            warnings: Vec::new(),
            format_version: String::new(),
            project: "default".into(),
            resource_changes: vec![
                change("new", Action::Create, vec![]),
                change("found", Action::Update, vec![kept]),
                change("right", Action::Update, vec![]),
            ],
            unreachable: vec![],
            errors: vec![],
            config_digest: String::new(),
            facts_digests: Default::default(),
            instances: 3,
        };
        let applied = plan.resource_changes.iter().map(|c| &c.address).collect();
        let record = updated(&Record::default(), "n1", &config, &plan, &applied);
        let origins: Vec<_> = record.projects["default"]
            .iter()
            .map(|(a, e)| (a.as_str(), e.origin))
            .collect();
        assert_eq!(
            origins,
            [
                ("os/file.found", Some(Origin::Adopted)),
                ("os/file.new", Some(Origin::Created)),
                ("os/file.right", Some(Origin::Adopted)),
            ]
        );
        // The record names the configuration that owns the project.
        assert_eq!(record.owners["default"], "0123456789abcdef");
    }
}
