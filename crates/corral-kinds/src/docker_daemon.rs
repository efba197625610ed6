//! `docker/daemon`: settings of the Docker daemon, merged into `/etc/docker/daemon.json`.
//!
//! Each top-level key of `settings` replaces that key of the file; keys the configuration
//! does not name are kept as they are (a `data-root` set by hand stays). The file is
//! compared as JSON, so a file that says the same in another layout is left alone. A change
//! writes the file (keeping the original, which removing the resource restores) and
//! restarts dockerd, then waits until the node is back: in the swarm again and, on a
//! manager, able to answer for it; the rolling check then waits for the rest of the swarm.
//! Instances of one resource change one machine at a time (see [`MachineKind::rolling`] and
//! [`crate::rolling`]), so a swarm's managers never restart together and lose quorum.
//! `live-restore` is refused on swarm members: Docker does not support it there.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::file::{self, DesiredFile, FileState, Read};
use super::{Claim, Kind, LinkContext, Links, MachineKind, Step};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};

pub const KIND: &str = "docker/daemon";

/// Where dockerd reads its settings.
pub const PATH: &str = "/etc/docker/daemon.json";

/// `docker/daemon` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerDaemonSpec {
    pub machines: Selector,
    /// `daemon.json` keys to values (`log-driver`, `icc`, `userland-proxy`,
    /// `no-new-privileges`, …); each replaces that key of the file, others are kept.
    pub settings: Map<String, Value>,
}

impl Kind for DockerDaemonSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.settings.is_empty() {
            ctx.error(&["settings"], "no settings to merge", "empty")
                .help =
                Some("name at least one daemon.json key, e.g. `log-driver: journald`".into());
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        if self.settings.get("live-restore") == Some(&Value::Bool(true)) {
            let members: Vec<&str> = links
                .machines
                .iter()
                .filter(|(name, labels)| self.machines.matches(name, labels))
                .filter(|(name, _)| links.swarms.values().any(|s| s.members().contains(name)))
                .map(|(name, _)| name.as_str())
                .collect();
            if !members.is_empty() {
                ctx.error(
                    &["settings", "live-restore"],
                    format!(
                        "live-restore is not supported on swarm members ({})",
                        members.join(", ")
                    ),
                    "refused",
                )
                .help = Some("Docker refuses to start with live-restore in swarm mode; remove the setting for these machines".into());
            }
        }
        Vec::new()
    }

    /// The machines it configures: a swarm forms after its members' daemons are.
    fn declare(&self, address: &Address, links: &mut Links) {
        links
            .daemons
            .insert(address.name.clone(), self.machines.clone());
    }
}

impl DockerDaemonSpec {
    /// The file as it should be, from what the host has, or `None` when it already says
    /// the same.
    fn merged(&self, facts: &HostFacts) -> Result<(FileState, Option<Vec<u8>>), FactError> {
        let key = file::probe_key(PATH, Read::Content);
        let state = file::parse(&key, facts.get(&key)?)?;
        let current: Map<String, Value> = match &state {
            FileState::Absent { .. } => Map::new(),
            FileState::Present {
                body: file::Body::Content(bytes),
                ..
            } => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    Map::new()
                } else {
                    serde_json::from_slice(bytes).map_err(|e| {
                        FactError::new(
                            &key,
                            format!("{PATH} is not a JSON object ({e}); dockerd would not start with it either: fix it by hand"),
                        )
                    })?
                }
            }
            FileState::Present { .. } => {
                return Err(FactError::new(
                    &key,
                    format!("{PATH} is not a small regular file; corral merges only into one"),
                ))
            }
            // Links and the rest: the file kind's diff says what is wrong.
            _ => Map::new(),
        };
        let mut merged = current.clone();
        for (key, value) in &self.settings {
            merged.insert(key.clone(), value.clone());
        }
        if merged == current && matches!(state, FileState::Present { .. }) {
            return Ok((state, None));
        }
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(merged)).expect("JSON values");
        bytes.push(b'\n');
        Ok((state, Some(bytes)))
    }
}

/// Checks a new `daemon.json` with dockerd before it replaces the old one, when this
/// dockerd can (`--validate` came with Docker 23).
const VALIDATE: &str =
    "if dockerd --help 2>&1 | grep -q -- --validate; then dockerd --validate --config-file %s; fi";

/// The systemd unit of dockerd.
const UNIT: &str = "docker.service";

/// Whether dockerd runs and started before `daemon.json` was last written (a restart that
/// failed or was interrupted, a file edited by hand): it runs on older settings.
/// A file dated in the host's future (a clock set back since) says nothing about it; a
/// host whose systemd cannot say when dockerd started is not restarted on a guess.
fn restart_pending(state: &FileState, facts: &HostFacts) -> Result<bool, FactError> {
    let FileState::Present { modified, .. } = state else {
        return Ok(false);
    };
    let now: Option<u64> = facts.get(CLOCK_KEY)?.output.trim().parse().ok();
    if now.is_none_or(|now| *modified > now) {
        return Ok(false);
    }
    let probe = super::service::unit_probe(UNIT);
    let Ok(unit) = super::service::parse(&probe.key, facts.get(&probe.key)?) else {
        return Ok(false);
    };
    Ok(unit.is_active() && unit.active_since.is_some_and(|since| since < *modified))
}

/// The host's clock, in seconds since the epoch (left out of the facts' digest, see
/// [`crate::facts::CLOCK_PREFIX`]).
const CLOCK_KEY: &str = "clock:now";

fn clock_probe() -> Probe {
    Probe {
        key: CLOCK_KEY.to_owned(),
        script: "date +%s".to_owned(),
    }
}

fn desired(bytes: &[u8]) -> DesiredFile<'_> {
    DesiredFile {
        path: PATH,
        bytes,
        mode: None,
        owner: None,
        group: None,
        sensitive: false,
        keep_original: true,
    }
}

/// Restarts dockerd and waits until the node is what it was in the swarm: active again
/// and, on a manager, able to answer for it with this node Ready. Whether the rest of the
/// swarm is as healthy as before (other nodes, tasks, volumes) is the rolling check's to
/// say, after this step (`apply::rolling`), which names what is not.
const RESTART: &str = r#"before=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)
systemctl restart docker || { echo 'corral: dockerd did not restart:'; journalctl -u docker.service -n 20 --no-pager 2>&1 | tail -n 20; exit 1; }
back() {
  now=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || return 1
  case $before in
    'active true') [ "$now" = 'active true' ] && [ "$(docker node inspect self --format '{{.Status.State}}' 2>/dev/null)" = ready ] ;;
    'active '*) [ "${now%% *}" = active ] ;;
    *) true ;;
  esac
}
i=0
until back; do
  i=$((i + 1)); [ "$i" -le 120 ] || { echo "corral: dockerd did not come back as it was ($before) within 120 s"; exit 1; }
  sleep 1
done
"#;

impl MachineKind for DockerDaemonSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    /// With files: after packages (docker.io), before services.
    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, _name: &str) -> Vec<Probe> {
        vec![
            file::probe(PATH, Read::Content),
            super::service::unit_probe(UNIT),
            clock_probe(),
        ]
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let (state, bytes) = self.merged(facts)?;
        let Some(bytes) = bytes else {
            if restart_pending(&state, facts)? {
                return Ok(Diff {
                    action: Some(Action::Update),
                    attributes: vec![AttrChange::new(
                        "dockerd",
                        AttrValue::Scalar("started before daemon.json last changed".into()),
                        AttrValue::Scalar("restarted".into()),
                    )],
                    reason: Some(format!(
                        "{PATH} changed after dockerd started: it runs on older settings"
                    )),
                });
            }
            return Ok(Diff::update_if_changed(Vec::new()));
        };
        let key = file::probe_key(PATH, Read::Content);
        let (action, attributes) = file::diff_file(&key, "", &desired(&bytes), &state)?;
        let action = match action {
            Action::NoOp => Action::NoOp,
            _ => Action::Update,
        };
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: Some("dockerd restarts, one machine at a time".into()),
        })
    }

    fn steps(&self, _name: &str, _change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let bytes = match self.merged(facts) {
            Ok((_, Some(bytes))) => bytes,
            // The file is right; dockerd may still run on older settings.
            Ok((state, None)) => {
                return match restart_pending(&state, facts) {
                    Ok(true) => vec![Step {
                        description: "restart dockerd and wait for it".into(),
                        script: RESTART.to_owned(),
                    }],
                    Ok(false) => Vec::new(),
                    Err(e) => vec![super::failing_step("restart dockerd", &e)],
                }
            }
            Err(e) => {
                return vec![Step {
                    description: format!("merge {PATH}"),
                    script: format!("echo {}; exit 1\n", crate::shell::quote(&e.to_string())),
                }]
            }
        };
        vec![
            Step {
                description: format!("write {PATH}"),
                // dockerd checks the new file itself where it can (Docker 23 and later).
                script: file::write_checked_script(&desired(&bytes), Some(VALIDATE)),
            },
            Step {
                description: "restart dockerd and wait for it".into(),
                script: RESTART.to_owned(),
            },
        ]
    }

    /// Dockerd's tasks take a moment to settle: 10 s watched before the next machine.
    fn rolling(&self) -> Option<crate::base::envelope::Rolling> {
        Some(crate::base::envelope::Rolling::default())
    }

    fn managed_entry(&self, _name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry::file(KIND, PATH))
    }

    fn claims(&self, _name: &str) -> Vec<Claim> {
        vec![Claim::new(
            format!("file {PATH}"),
            serde_json::to_string(&self.settings).unwrap_or_default(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    fn spec(settings: &str) -> DockerDaemonSpec {
        DockerDaemonSpec {
            machines: Selector::All,
            settings: serde_json::from_str(settings).unwrap(),
        }
    }

    /// The clock the daemon reads (to ignore a file dated in the future) changes at every
    /// reading: it must not make apply's lock re-read, or a saved plan, see a changed host.
    #[test]
    fn the_clock_is_not_a_change_of_the_host() {
        let facts = recorded::host("lab-fresh", "n1");
        let mut later = facts.clone();
        later.probes.get_mut(CLOCK_KEY).unwrap().output = "4102444800\n".into();
        assert_eq!(facts.digest(), later.digest());
        later
            .probes
            .get_mut(&file::probe_key(PATH, Read::Content))
            .unwrap()
            .output
            .push('x');
        assert_ne!(facts.digest(), later.digest());
    }

    #[test]
    fn settings_merge_into_the_file_and_restart_dockerd() {
        let facts = recorded::host("lab-fresh", "n1");
        let spec = spec(r#"{"log-driver": "journald", "icc": false}"#);
        let diff = spec.diff("hardened", &facts).unwrap();
        assert_eq!(diff.action(), Action::Update, "{diff:?}");
        let change = ResourceChange {
            address: Address::new(KIND, "hardened", Some("n1")),
            machine: Some("n1".into()),
            action: diff.action(),
            attributes: diff.attributes,
            reason: diff.reason,
            triggered_by: Vec::new(),
        };
        let steps = spec.steps("hardened", &change, &facts);
        assert_eq!(steps.len(), 2);
        assert!(steps[1].script.contains("systemctl restart docker"));
    }
}
