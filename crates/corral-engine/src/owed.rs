//! Restarts and reloads a change leaves owed, recorded on the host until they are done.
//!
//! A service that `depends_on` something takes up its change by a restart (or reload) in
//! the same apply. When that apply is cut short (`--target` of the file alone, a killed
//! apply, a failed step), systemd keeps no trace of a missed reload, so the debt is kept
//! on the host: the step that changes a dependency first writes one file per service and
//! cause under [`DIR`] (link-safe and atomic, as every write), and the service's restart
//! removes them once it succeeds. The records probe reads them in the facts round trip,
//! and the plan restarts (or reloads) a service with a debt, saying since when and why.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::config::Config;
use crate::facts::FactError;
use crate::kinds::file;
use crate::kinds::{Placement, Step};
use crate::plan::{Diff, ResourceChange};
use crate::shell::quote;

/// Where debts are kept (root only): `SERVICE.CAUSE`, each a hash of what it names.
pub const DIR: &str = "/var/lib/corral/owed";

/// A restart (or reload) a service owes, as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    pub project: String,
    /// The service instance (`os/service.web[n1]`).
    pub service: String,
    /// The instance whose change it has not taken up (`os/file.web-config[n1]`).
    pub because: String,
    /// When the debt was recorded (seconds since the epoch, the host's clock: the file's
    /// modification time, as the record is written once and never rewritten).
    #[serde(skip)]
    pub since: u64,
}

/// The name of `service`'s debts in `project`, the first part of each file's name.
fn service_id(project: &str, service: &Address) -> String {
    let digest = Sha256::digest(format!("{project}\n{service}").as_bytes());
    hex::encode(&digest[..16])
}

fn file_name(project: &str, service: &Address, because: &Address) -> String {
    let cause = Sha256::digest(because.to_string().as_bytes());
    format!(
        "{}.{}",
        service_id(project, service),
        hex::encode(&cause[..8])
    )
}

/// Shell text that records that `service` owes a restart because of `because`, unless it
/// already does (the first record keeps its time).
pub fn record_script(project: &str, service: &Address, because: &Address) -> String {
    let path = format!("{DIR}/{}", file_name(project, service, because));
    let owed = Owed {
        project: project.to_owned(),
        service: service.to_string(),
        because: because.to_string(),
        since: 0,
    };
    let text = serde_json::to_string(&owed).unwrap_or_default() + "\n";
    let write = file::write_script(&file::root_file(&path, text.as_bytes(), "0600"));
    format!("if [ ! -e {} ]; then\n{write}fi\n", quote(&path))
}

/// Shell text that removes every debt of `service` in `project`, from within [`DIR`]
/// entered without following a link (nothing to do when it does not exist).
pub fn clear_script(project: &str, service: &Address) -> String {
    let id = service_id(project, service);
    format!(
        "(\nset -eu\n{}rm -f -- {id}.*\n)\nrc=$?; [ \"$rc\" -eq 0 ] || exit \"$rc\"\n",
        file::enter_directory(&format!("{DIR}/{id}"), false)
    )
}

/// The part of the records probe that prints every debt, one line each:
/// `@owed<TAB>NAME<TAB>MTIME<TAB>BASE64`.
pub fn probe() -> String {
    format!(
        "for o in {DIR}/*; do\n  [ -f \"$o\" ] && [ ! -L \"$o\" ] || continue\n  printf '@owed\\t%s\\t%s\\t' \"${{o##*/}}\" \"$(stat -c %Y -- \"$o\")\"; base64 -w0 < \"$o\"; echo\ndone\n"
    )
}

/// One `@owed` line of [`probe`] (without its tag).
pub fn parse_line(line: &str, key: &str) -> Result<Owed, FactError> {
    let bad = |why: &str| FactError::new(key, format!("{DIR}: {why}"));
    let mut fields = line.splitn(3, '\t');
    let (Some(name), Some(mtime), Some(encoded)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad("a debt could not be read"));
    };
    let name = crate::base::text::printable(name);
    let not_corrals = || {
        bad(&format!(
            "{name} is not corral's record of an owed restart; remove it"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| not_corrals())?;
    let mut owed: Owed = serde_json::from_slice(&bytes).map_err(|_| not_corrals())?;
    owed.since = mtime.parse().map_err(|_| not_corrals())?;
    Ok(owed)
}

/// The services on `change`'s machine that take up its change by a restart or reload:
/// every resource selecting that machine that `depends_on` the changed resource there and
/// restarts when it changes, whether or not this apply changes it (`--target`); each with
/// what it owes (`restart` or `reload`).
pub fn dependents(config: &Config, change: &Address) -> Vec<(Address, &'static str)> {
    let Some(machine) = change.machine.as_deref() else {
        return Vec::new();
    };
    let Some(labels) = config.machines.get(machine).map(|m| &m.spec.labels) else {
        return Vec::new();
    };
    config
        .resources
        .iter()
        .filter(|r| {
            r.depends_on.iter().any(|target| {
                target.kind == change.kind
                    && target.name == change.name
                    && target.machine.as_deref().is_none_or(|m| m == machine)
            })
        })
        .filter_map(|r| match r.spec.placement() {
            // A service's choice does not depend on its diff (see `service.rs`): no facts
            // of it are needed, so a service left out by `--target` is found too. (Its
            // unit file changing would make a reload a restart: that diff is the plan's.)
            Placement::Machines(kind)
                if kind.selector().matches(machine, labels)
                    && kind.restarts_when_dependencies_change(&Diff::default()) =>
            {
                let owes = match kind.reloads_instead_of_restarting(&Diff::default()) {
                    true => "reload",
                    false => "restart",
                };
                Some((
                    Address::new(&r.address.kind, &r.address.name, Some(machine)),
                    owes,
                ))
            }
            _ => None,
        })
        .collect()
}

/// `steps` of `change` with the debts it makes recorded first, in its first script, and
/// the service's own debts cleared by a last step when it takes up its dependencies'
/// changes (it runs only when the restart succeeded).
pub fn around(config: &Config, change: &ResourceChange, steps: &mut Vec<Step>) {
    if steps.is_empty() || change.is_record_only() {
        return;
    }
    let record: String = dependents(config, &change.address)
        .iter()
        .map(|(service, _)| record_script(&config.project, service, &change.address))
        .collect();
    if let Some(first) = steps.first_mut() {
        first.script = format!("{record}{}", first.script);
    }
    if !change.triggered_by.is_empty() {
        steps.push(Step {
            description: "record that it owes no restart or reload".into(),
            script: clear_script(&config.project, &change.address),
        });
    }
}

/// When a debt was recorded, to the minute (so one apply's debts on several machines read
/// the same): `2026-12-07 07:04 UTC`.
pub fn since(seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds - seconds % 60);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} UTC", text.replace('T', " ").trim_end_matches(":00Z"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::Action;

    /// Runs shell text with a real `sh`, corral's directory (`/var/lib/corral`) in `root`.
    fn sh(script: &str, root: &Path) -> std::process::Output {
        let script = script.replace("/var/lib/corral", root.to_str().unwrap());
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    /// The debts on the "host" at `root`, as the records probe reads them.
    fn read(root: &Path) -> Vec<Owed> {
        let out = sh(&crate::managed::probe(&[]).script, root);
        let output = crate::facts::ProbeOutput {
            rc: out.status.code().unwrap(),
            output: String::from_utf8(out.stdout).unwrap(),
        };
        crate::managed::parse(&output).unwrap().owed
    }

    /// A web server that reloads when its configuration file changes, on `local`.
    fn config(dir: &Path) -> Config {
        let path = dir.join("c.yaml");
        std::fs::write(
            &path,
            format!(
                "kind: infrastructure/machine\nname: local\nspecification: {{ hostname: local, ip: 127.0.0.1 }}\n---\nkind: os/file\nname: web-config\nspecification: {{ machines: all, path: {}/web.conf, content: \"x\\n\" }}\n---\nkind: os/service\nname: web\ndepends_on: [os/file.web-config]\nspecification: {{ machines: all, unit: web, active: true, on_change: reload }}\n---\nkind: os/service\nname: stopped\ndepends_on: [os/file.web-config]\nspecification: {{ machines: all, unit: stopped, active: false }}\n",
                dir.display()
            ),
        )
        .unwrap();
        crate::config::load(&[path], &Default::default()).unwrap()
    }

    fn change(address: &str, triggered_by: &[&str]) -> ResourceChange {
        ResourceChange {
            address: Address::parse(address).unwrap(),
            machine: Some("local".into()),
            action: Action::Update,
            attributes: Vec::new(),
            reason: None,
            triggered_by: triggered_by
                .iter()
                .map(|a| Address::parse(a).unwrap())
                .collect(),
        }
    }

    /// The step that changes a file a running service depends on records the debt before
    /// it writes: when the write fails (or the apply is killed), the debt is on the host.
    /// A service that is to stay stopped owes nothing.
    #[test]
    fn the_debt_is_on_the_host_before_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("corral");
        let config = config(dir.path());
        let conf = dir.path().join("web.conf");
        // A directory where the file goes: the write fails.
        std::fs::create_dir(&conf).unwrap();
        let mut steps = vec![Step {
            description: "write".into(),
            script: file::write_script(&file::root_file(conf.to_str().unwrap(), b"x\n", "0644")),
        }];
        around(
            &config,
            &change("os/file.web-config[local]", &[]),
            &mut steps,
        );
        assert_eq!(steps.len(), 1, "a file clears nothing");
        let out = sh(&steps[0].script, &root);
        assert!(!out.status.success(), "{out:?}");
        let owed = read(&root);
        assert_eq!(
            owed.iter()
                .map(|o| (o.service.as_str(), o.because.as_str(), o.project.as_str()))
                .collect::<Vec<_>>(),
            [(
                "os/service.web[local]",
                "os/file.web-config[local]",
                config.project.as_str()
            )]
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(owed[0].since.abs_diff(now) < 60, "{owed:?}");
        // Recorded again (a second targeted apply): the first time stays.
        let debt = std::fs::read_dir(root.join("owed"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let touched = std::process::Command::new("touch")
            .args(["-d", "@1700000000"])
            .arg(&debt)
            .status()
            .unwrap();
        assert!(touched.success());
        std::fs::remove_dir(&conf).unwrap();
        let out = sh(&steps[0].script, &root);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(&conf).unwrap(), b"x\n");
        assert_eq!(read(&root)[0].since, 1_700_000_000);
    }

    /// The restart that takes up the change clears the service's debts, whatever caused
    /// them, and only its own.
    #[test]
    fn the_restart_clears_the_services_debts_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("corral");
        let config = config(dir.path());
        let web = Address::parse("os/service.web[local]").unwrap();
        let other = Address::parse("os/service.web[local]").unwrap();
        let cause = |name: &str| Address::parse(&format!("os/file.{name}[local]")).unwrap();
        // Nothing recorded yet: nothing to clear, and no error.
        let project = &config.project;
        assert!(sh(&clear_script(project, &web), &root).status.success());
        let record = [
            record_script(project, &web, &cause("a")),
            record_script(project, &web, &cause("b")),
            record_script("other-project", &other, &cause("a")),
        ]
        .concat();
        assert!(sh(&record, &root).status.success());
        assert_eq!(read(&root).len(), 3);
        let mut steps = vec![Step {
            description: "reload".into(),
            script: "set -e\ntrue\n".into(),
        }];
        around(
            &config,
            &change("os/service.web[local]", &["os/file.web-config[local]"]),
            &mut steps,
        );
        assert_eq!(steps.len(), 2, "{steps:?}");
        for step in &steps {
            let out = sh(&step.script, &root);
            assert!(out.status.success(), "{out:?}");
        }
        let left: Vec<String> = read(&root).into_iter().map(|o| o.project).collect();
        assert_eq!(left, ["other-project"]);
    }

    /// A link where the debts are kept is never written through.
    #[test]
    fn debts_are_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("corral");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("owed")).unwrap();
        let web = Address::parse("os/service.web[local]").unwrap();
        let cause = Address::parse("os/file.a[local]").unwrap();
        let out = sh(&record_script("default", &web, &cause), &root);
        assert!(!out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("symbolic link"));
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn since_is_given_to_the_minute() {
        assert_eq!(since(1_700_000_059), "2023-11-14 22:14 UTC");
    }
}
