//! `os/login-defs`: settings of `/etc/login.defs` (password ageing, the default umask, the
//! password hash), edited key by key in place.
//!
//! `login.defs` is the `login` package's configuration file, with no drop-in directory:
//! corral rewrites the lines of the keys it manages and leaves every other line, comment
//! and key as it found them. shadow reads the file top to bottom and keeps the last value
//! of a key, so that is the value compared; a managed key's first line is rewritten, later
//! lines of it are dropped, and a key the file does not set is added at its end.
//!
//! One resource of this kind per machine (it claims the file). Removing it from the
//! configuration leaves the settings as they are: the file was the package's, not corral's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::file::{self, Body, FileState};
use super::{Claim, Kind, MachineKind, Step};
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/login-defs";

/// The file edited.
pub const PATH: &str = "/etc/login.defs";

/// `os/login-defs` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginDefsSpec {
    pub machines: Selector,
    /// Keys as `login.defs` writes them (`PASS_MAX_DAYS`, `UMASK`, `ENCRYPT_METHOD`) to
    /// values (`"365"`, `"027"`, `SHA512`).
    pub settings: BTreeMap<String, String>,
}

/// Whether `key` is a `login.defs` key: capitals, digits and `_`, starting with a capital.
fn is_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `value` can be written as one `login.defs` value: a single line of printable
/// characters, neither empty nor starting with `#` (shadow would read a comment).
fn is_value(value: &str) -> bool {
    let trimmed = value.trim();
    !trimmed.is_empty()
        && !trimmed.starts_with('#')
        && !trimmed.starts_with('"')
        && value.chars().all(|c| !c.is_control())
}

/// A setting line: its key and value (shadow's reading: the first word, then the rest
/// without surrounding blanks and double quotes). `None` for comments and blank lines.
fn setting(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, rest) = line
        .split_once([' ', '\t'])
        .unwrap_or((line.trim_end(), ""));
    let value = rest.trim_matches([' ', '\t', '\r']);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((key, value))
}

/// The values the file sets, the last of each key winning as in shadow's `getdef.c`.
pub fn effective(text: &str) -> BTreeMap<&str, &str> {
    text.lines().filter_map(setting).collect()
}

/// `text` with `settings` made true: a key's first line rewritten as `KEY<TAB>VALUE`,
/// its later lines dropped, and keys the file does not set appended under a comment
/// naming the resource.
pub fn edited(text: &str, settings: &BTreeMap<String, String>, name: &str) -> String {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let managed = setting(line).and_then(|(key, _)| settings.get_key_value(key));
        match managed {
            None => out.push_str(line),
            Some((key, value)) => {
                if seen.insert(key.as_str()) {
                    out.push_str(&format!("{key}\t{}\n", value.trim()));
                }
            }
        }
    }
    let missing: Vec<_> = settings
        .iter()
        .filter(|(key, _)| !seen.contains(key.as_str()))
        .collect();
    if !missing.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("\n# Set by corral ({KIND}.{name}).\n"));
        for (key, value) in missing {
            out.push_str(&format!("{key}\t{}\n", value.trim()));
        }
    }
    out
}

impl Kind for LoginDefsSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.settings.is_empty() {
            ctx.error(&["settings"], "`settings` is empty", "here").help =
                Some("list at least one `KEY: value`, or remove the resource".into());
        }
        for (key, value) in &self.settings {
            if !is_key(key) {
                ctx.error_at_key(
                    &["settings", key],
                    format!("`{}` is not a login.defs key", key.escape_debug()),
                    "here",
                )
                .help = Some(
                    "keys are written in capitals, digits and `_`, as in login.defs(5): `PASS_MAX_DAYS`, `UMASK`".into(),
                );
            }
            if !is_value(value) {
                ctx.error(
                    &["settings", key],
                    format!(
                        "the value of `{}` must be a single line, not empty, not starting with `#` or `\"`",
                        key.escape_debug()
                    ),
                    "here",
                );
            }
        }
        self
    }
}

impl LoginDefsSpec {
    /// The file's text, from the facts of its probe.
    fn current(facts: &HostFacts) -> Result<String, FactError> {
        let key = file::probe_key(PATH, file::Read::Content);
        match file::parse(&key, facts.get(&key)?)? {
            FileState::Present {
                body: Body::Content(bytes),
                file_type,
                ..
            } if file::is_regular(&file_type) => String::from_utf8(bytes).map_err(|_| {
                FactError::new(
                    &key,
                    format!("{PATH} is not UTF-8 text; corral edits only text"),
                )
            }),
            FileState::Present { file_type, .. } if !file::is_regular(&file_type) => Err(
                FactError::new(&key, format!("{PATH} is a {file_type}, not a regular file")),
            ),
            FileState::Present { .. } => Err(FactError::new(
                &key,
                format!(
                    "{PATH} is too large to edit (over {} bytes)",
                    file::MAX_DIFF_BYTES
                ),
            )),
            FileState::Absent { .. } => Err(FactError::new(
                &key,
                format!("{PATH} is missing: is the `login` package installed?"),
            )),
            FileState::Link { at, target } => Err(FactError::new(
                &key,
                format!(
                    "{at} is a symbolic link (to {target}); corral edits no file through a link"
                ),
            )),
            FileState::NotDirectory { at } => {
                Err(FactError::new(&key, format!("{at} is not a directory")))
            }
        }
    }
}

impl MachineKind for LoginDefsSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, _name: &str) -> Vec<Probe> {
        vec![file::probe(PATH, file::Read::Content)]
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let text = Self::current(facts)?;
        let have = effective(&text);
        let attributes: Vec<AttrChange> = self
            .settings
            .iter()
            .filter(|(key, value)| have.get(key.as_str()).copied() != Some(value.trim()))
            .map(|(key, value)| {
                let before = have
                    .get(key.as_str())
                    .map_or(AttrValue::Absent, |v| AttrValue::Scalar((*v).to_owned()));
                AttrChange::new(key.as_str(), before, AttrValue::Scalar(value.trim().into()))
            })
            .collect();
        Ok(Diff {
            action: Some(match attributes.is_empty() {
                true => Action::NoOp,
                false => Action::Update,
            }),
            attributes,
            reason: None,
        })
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .settings
            .iter()
            .map(|(key, value)| Claim::new(format!("login.defs key {key}"), value.trim()))
            .collect();
        // One resource edits the file: a second one's plan would be stale after the first.
        claims.push(Claim::new(format!("file {PATH}"), name));
        claims
    }

    fn steps(&self, name: &str, _change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let description = format!("edit {PATH}");
        let text = match Self::current(facts) {
            Ok(text) => text,
            Err(e) => return vec![super::failing_step(&description, &e)],
        };
        vec![Step {
            description,
            script: edit_script(PATH, &text, &edited(&text, &self.settings, name)),
        }]
    }
}

/// Shell text that replaces the file at `path` read at plan time (`old`) with `new`, keeping
/// its owner and mode, and refuses when the file changed since: its edit would undo that
/// change.
fn edit_script(path: &str, old: &str, new: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(old.as_bytes()));
    let desired = file::DesiredFile {
        path,
        bytes: new.as_bytes(),
        mode: None,
        owner: None,
        group: None,
        sensitive: false,
        keep_original: false,
    };
    format!(
        "h=$(dd if={p} iflag=nofollow status=none | sha256sum) || exit 1\n[ \"${{h%% *}}\" = {digest} ] || {{ echo {changed}; exit 1; }}\n{write}",
        p = quote(path),
        changed = quote(&format!("corral: {path} changed since the plan; plan again")),
        write = file::write_script(&desired),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    /// Debian 12's `/etc/login.defs` as a fresh lab host has it, and as the baseline's
    /// settings leave it (recorded by scripts/record-login-defs-fixtures.sh).
    fn fresh() -> HostFacts {
        recorded::host("lab-login-defs-fresh", "n1")
    }

    fn converged() -> HostFacts {
        recorded::host("lab-login-defs-converged", "n1")
    }

    fn text(facts: &HostFacts) -> String {
        LoginDefsSpec::current(facts).unwrap()
    }

    fn spec(settings: &[(&str, &str)]) -> LoginDefsSpec {
        LoginDefsSpec {
            machines: Selector::All,
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn baseline() -> LoginDefsSpec {
        spec(&[
            ("PASS_MAX_DAYS", "365"),
            ("PASS_MIN_DAYS", "1"),
            ("PASS_WARN_AGE", "7"),
            ("UMASK", "027"),
            ("ENCRYPT_METHOD", "YESCRYPT"),
            ("SHA_CRYPT_MIN_ROUNDS", "5000"),
            ("SHA_CRYPT_MAX_ROUNDS", "50000"),
        ])
    }

    #[test]
    fn debian_defaults_are_read_as_shadow_reads_them() {
        let text = text(&fresh());
        let have = effective(&text);
        assert_eq!(have.get("PASS_MAX_DAYS"), Some(&"99999"));
        assert_eq!(have.get("UMASK"), Some(&"022"));
        assert_eq!(have.get("ENCRYPT_METHOD"), Some(&"SHA512"));
        assert_eq!(have.get("SHA_CRYPT_MIN_ROUNDS"), None, "commented out");
        // A quoted value loses its quotes, as shadow reads it.
        assert_eq!(
            effective("ENV_PATH \"PATH=/bin\"\n").get("ENV_PATH"),
            Some(&"PATH=/bin")
        );
        assert_eq!(
            effective("UMASK 022\nUMASK\t077\n").get("UMASK"),
            Some(&"077")
        );
    }

    #[test]
    fn fresh_host_shows_each_key_it_changes() {
        let diff = baseline().diff("b", &fresh()).unwrap();
        assert_eq!(diff.action(), Action::Update);
        let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ENCRYPT_METHOD",
                "PASS_MAX_DAYS",
                "PASS_MIN_DAYS",
                "SHA_CRYPT_MAX_ROUNDS",
                "SHA_CRYPT_MIN_ROUNDS",
                "UMASK"
            ],
            "PASS_WARN_AGE is already 7"
        );
        let added = &diff.attributes[3];
        assert_eq!(added.before, AttrValue::Absent);
    }

    /// The edit keeps every other line, and once made, the same settings plan nothing.
    #[test]
    fn edit_touches_only_managed_lines_and_converges() {
        let old = text(&fresh());
        let new = edited(&old, &baseline().settings, "b");
        let removed: Vec<&str> = old
            .lines()
            .filter(|l| !new.lines().any(|n| n == *l))
            .collect();
        assert_eq!(
            removed,
            [
                "UMASK\t\t022",
                "PASS_MAX_DAYS\t99999",
                "PASS_MIN_DAYS\t0",
                "ENCRYPT_METHOD SHA512"
            ]
        );
        assert!(new.contains("\nUMASK\t027\n"), "in place");
        assert!(
            new.ends_with("\n# Set by corral (os/login-defs.b).\nSHA_CRYPT_MAX_ROUNDS\t50000\nSHA_CRYPT_MIN_ROUNDS\t5000\n"),
            "{new}"
        );
        assert_eq!(edited(&new, &baseline().settings, "b"), new, "idempotent");
        let after = effective(&new);
        for (key, value) in &baseline().settings {
            assert_eq!(after.get(key.as_str()), Some(&value.as_str()), "{key}");
        }
        // Later lines of a key are dropped: the first one now holds the value.
        assert_eq!(
            edited(
                "UMASK 022\n# x\nUMASK 002",
                &spec(&[("UMASK", "027")]).settings,
                "b"
            ),
            "UMASK\t027\n# x\n"
        );
    }

    /// The step runs through a real `sh`: it edits a copy of the recorded file in place,
    /// and refuses a file that changed since the plan.
    #[test]
    fn step_edits_the_file_and_refuses_one_changed_since_the_plan() {
        let old = text(&fresh());
        let new = edited(&old, &baseline().settings, "b");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("login.defs");
        // Never the real path: the tests may run as root.
        let script = edit_script(path.to_str().unwrap(), &old, &new);
        let run = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap()
        };
        std::fs::write(&path, format!("{old}# hand\n")).unwrap();
        let out = run(&script);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("changed since the plan"),
            "{out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{old}# hand\n")
        );
        if !nix_root() {
            // The write sets owners through chown, which needs root; the digest check above
            // is what runs before it.
            return;
        }
        std::fs::write(&path, &old).unwrap();
        let out = run(&script);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
    }

    fn nix_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n")
    }

    /// The host after the baseline's apply: nothing to do, and the edit that would be made
    /// is the file as it is.
    #[test]
    fn converged_file_is_a_no_op() {
        let diff = baseline().diff("b", &converged()).unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
        let now = text(&converged());
        // As the module's instance `base` named it.
        assert_eq!(edited(&now, &baseline().settings, "base.login-defs"), now);
        assert_eq!(
            edited(&text(&fresh()), &baseline().settings, "base.login-defs"),
            now,
            "the edit planned on the fresh host is what the host holds after it"
        );
    }

    #[test]
    fn keys_and_values_outside_the_grammar_are_refused() {
        for key in ["PASS_MAX_DAYS", "UMASK", "SHA_CRYPT_MIN_ROUNDS"] {
            assert!(is_key(key), "{key}");
        }
        for key in ["", "umask", "_X", "PASS MAX", "X\n", "X=1", "1X"] {
            assert!(!is_key(key), "{key:?}");
        }
        for value in ["", " ", "#027", "\"x\"", "1\nUMASK 000", "a\rb"] {
            assert!(!is_value(value), "{value:?}");
        }
        assert!(is_value("PATH=/usr/bin:/bin"));
    }
}
