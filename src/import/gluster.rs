//! `gluster/volume`s: bricks in order, replica and arbiter, the options set on the volume
//! that are not the ones glusterd sets itself at creation, and the mounts found in
//! `/etc/fstab` (machines mounting the volume at the same path).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{document, ok_output, scalar, Document, Found, ImportError, Written};
use crate::address::Address;
use crate::facts::gluster::{self, Volume, VolumeState};
use crate::kinds::gluster_volume::{GlusterVolumeSpec, KIND, PROJECT_OPTION};

/// Options glusterd sets on every new volume (with these values): not a person's choice.
const CREATION_DEFAULTS: &[(&str, &str)] = &[
    ("transport.address-family", "inet"),
    ("nfs.disable", "on"),
    ("performance.client-io-threads", "off"),
    ("storage.fips-mode-rchecksum", "on"),
    ("cluster.granular-entry-heal", "on"),
];

/// The volumes, as the first machine of the inventory in a trusted pool lists them.
pub fn write(found: &Found) -> Result<Written, ImportError> {
    let key = gluster::volume_info_probe(None).key;
    let Some((machine, facts)) = super::first_with(found, |f| {
        ok_output(f, &key).is_some_and(|o| gluster::parse_volume_info(&key, o).is_ok())
    }) else {
        return Ok(Written::default());
    };
    let output = facts
        .get(&key)
        .map_err(|e| ImportError::Fact(e.to_string()))?;
    let volumes =
        gluster::parse_volume_info(&key, output).map_err(|e| ImportError::fact_on(machine, e))?;
    let mut written = Written::default();
    let mut volumes: Vec<&Volume> = volumes.iter().collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    for volume in volumes {
        volume_document(found, volume, &mut written);
    }
    Ok(written)
}

/// Where machines mount a volume: the path, the machines, and each one's fstab line.
type MountPoint = (String, Vec<String>, Vec<(String, String)>);

/// Which machines mount `name` where, from their fstab lines, the most machines first.
fn mounts(found: &Found, name: &str) -> Vec<MountPoint> {
    let mut by_path: Vec<MountPoint> = Vec::new();
    for machine in &found.machines {
        let Some(out) = found
            .facts
            .get(&machine.name)
            .and_then(|f| ok_output(f, super::FSTAB_KEY))
        else {
            continue;
        };
        let Ok(entries) = gluster::parse_fstab(super::FSTAB_KEY, out) else {
            continue;
        };
        for entry in entries {
            let volume = entry.fields[0].split_once(":/").map(|(_, v)| v);
            if volume != Some(name) || entry.fields.len() < 2 {
                continue;
            }
            let path = entry.fields[1].clone();
            match by_path.iter_mut().find(|(p, _, _)| *p == path) {
                Some((_, machines, lines)) => {
                    machines.push(machine.name.clone());
                    lines.push((machine.name.clone(), entry.line.clone()));
                }
                None => by_path.push((
                    path,
                    vec![machine.name.clone()],
                    vec![(machine.name.clone(), entry.line.clone())],
                )),
            }
        }
    }
    by_path.sort_by_key(|m| std::cmp::Reverse(m.1.len()));
    by_path
}

fn volume_document(found: &Found, volume: &Volume, written: &mut Written) {
    let name = &volume.name;
    let address = format!("{KIND}.{name}");
    if let Some(other) = volume.managed_by().filter(|p| *p != found.project) {
        written.notes.push(super::Note {
            at: address,
            text: format!("volume of project {other}, left to it"),
        });
        return;
    }
    if volume.disperse_count > 0 {
        written.notes.push(super::Note {
            at: address,
            text:
                "a dispersed volume (corral manages distributed and replicated ones): not written"
                    .into(),
        });
        return;
    }
    let mut spec = String::new();
    let mut bricks = Vec::new();
    for brick in &volume.bricks {
        match found.machine_named(&brick.host) {
            Some(m) => bricks.push((m.name.clone(), brick.path.clone())),
            None => {
                written.notes.push(super::Note {
                    at: address.clone(),
                    text: format!(
                        "brick {}:{} is on no machine of the inventory: the volume is not written",
                        brick.host, brick.path
                    ),
                });
                return;
            }
        }
    }
    if volume.replica_count > 1 {
        let _ = writeln!(spec, "  replica: {}", volume.replica_count);
    }
    if volume.arbiter_count > 0 {
        spec.push_str("  arbiter: true\n");
    }
    spec.push_str("  bricks:\n");
    for (machine, path) in &bricks {
        let _ = writeln!(spec, "    - {{machine: {machine}, path: {}}}", scalar(path));
    }
    let options: BTreeMap<&String, &String> = volume
        .options
        .iter()
        .filter(|(k, v)| {
            k.as_str() != PROJECT_OPTION && !CREATION_DEFAULTS.contains(&(k.as_str(), v.as_str()))
        })
        .collect();
    if !options.is_empty() {
        spec.push_str("  options:\n");
        for (key, value) in options {
            let _ = writeln!(spec, "    {}: {}", scalar(key), scalar(value));
        }
    }
    if volume.state != VolumeState::Started {
        spec.push_str(&written.note(
            &address,
            "the volume is not started: the first apply starts it",
        ));
    }
    let mut found_mounts = mounts(found, name).into_iter();
    if let Some((path, machines, lines)) = found_mounts.next() {
        let _ = writeln!(
            spec,
            "  mount:\n    machines: {}\n    path: {}",
            found.selector(&machines),
            scalar(&path)
        );
        // The line corral writes, which the plan compares field by field.
        let mut model = GlusterVolumeSpec {
            bricks: bricks
                .iter()
                .map(|(machine, path)| crate::kinds::gluster_volume::BrickSpec {
                    machine: machine.clone(),
                    path: path.clone(),
                })
                .collect(),
            ..Default::default()
        };
        model.mount_machines = machines.clone();
        for (machine, line) in lines {
            let want = model.fstab_line(name, &machine, &path);
            let same = line.split_whitespace().eq(want.split_whitespace());
            if !same {
                spec.push_str(&written.note(
                    &address,
                    format!("{machine}'s /etc/fstab line `{line}` differs from corral's; the first apply writes `{want}`"),
                ));
            }
        }
    }
    for (path, machines, _) in found_mounts {
        spec.push_str(&written.note(
            &address,
            format!("also mounted at {path} on {}", machines.join(", ")),
        ));
    }
    written.documents.push(Document {
        address: Address::new(KIND, name, None),
        text: document(KIND, name, "", &spec),
        dependency: false,
    });
}
