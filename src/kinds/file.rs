//! `os/file`: a file's content, mode and ownership.
//!
//! Reads `stat`, `sha256sum` and (unless sensitive or large) the content in base64; writes
//! through a temporary file in the same directory, verified by its digest and renamed over
//! the target, so a host never holds a half-written file. The probe, the parser and the
//! writer are shared with the kinds that own a file (sysctl's persisted values, unit files).

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{MachineKind, Step};
use crate::config::{CheckContext, Selector};
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::{quote, write_bytes};

pub const KIND: &str = "os/file";

/// Files up to this size are read back whole so that the plan can show a diff.
pub const MAX_DIFF_BYTES: u64 = 256 * 1024;

/// A file's bytes; `Debug` shows only the size so secrets cannot leak through logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Content(pub Vec<u8>);

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Content({} bytes)", self.0.len())
    }
}

impl Content {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.0))
    }
}

/// `os/file` specification.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub machines: Selector,
    /// Absolute path on the machine.
    pub path: String,
    /// Inline content; exactly one of `content` and `source` is given.
    pub content: Option<String>,
    /// A file relative to the document's file, copied as it is.
    pub source: Option<String>,
    /// Octal mode such as `"0644"`; left as it is on an existing file when not given.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Never show the content, in any output.
    #[serde(default)]
    pub sensitive: bool,
    #[serde(skip)]
    pub bytes: Content,
}

/// What a host says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Absent,
    Present {
        mode: String,
        owner: String,
        group: String,
        size: u64,
        /// `stat`'s `%F`: "regular file", "directory", "symbolic link", …
        file_type: String,
        /// For regular files.
        sha256: Option<String>,
        /// For regular files no larger than [`MAX_DIFF_BYTES`] when content was asked for.
        content: Option<Vec<u8>>,
    },
}

/// The desired state of a file, as the kinds that own one describe it.
#[derive(Debug, Clone)]
pub struct DesiredFile<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub mode: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    pub sensitive: bool,
}

/// The probe for a path; the key says whether content is read back, so two kinds reading the
/// same path with different needs do not collide.
pub fn probe(path: &str, with_content: bool) -> Probe {
    let p = quote(path);
    let mut script = format!(
        "stat -c '%a %U %G %s %F' -- {p} || exit\n[ -f {p} ] && [ ! -L {p} ] || exit 0\nsha256sum -- {p} | cut -c1-64\n"
    );
    if with_content {
        script.push_str(&format!(
            "if [ \"$(stat -c %s -- {p})\" -le {MAX_DIFF_BYTES} ]; then base64 -w0 -- {p}; fi\n"
        ));
    }
    Probe {
        key: probe_key(path, with_content),
        script,
    }
}

pub fn probe_key(path: &str, with_content: bool) -> String {
    format!(
        "file:{}:{path}",
        if with_content { "content" } else { "digest" }
    )
}

/// Parses the output of [`probe`].
pub fn parse(key: &str, out: &ProbeOutput) -> Result<FileState, FactError> {
    if out.rc != 0 {
        if out.output.contains("No such file or directory") {
            return Ok(FileState::Absent);
        }
        if out.output.contains("Not a directory") {
            return Err(FactError::new(
                key,
                "a parent of this path is not a directory",
            ));
        }
        return Err(FactError::unexpected(key, out));
    }
    let mut lines = out.output.lines();
    let stat = lines
        .next()
        .ok_or_else(|| FactError::new(key, "stat printed nothing"))?;
    let mut fields = stat.splitn(5, ' ');
    let mut next = |what: &str| {
        fields
            .next()
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| FactError::new(key, format!("stat output `{stat}` has no {what}")))
    };
    let mode = next("mode")?;
    let owner = next("owner")?;
    let group = next("group")?;
    let size = next("size")?
        .parse::<u64>()
        .map_err(|_| FactError::new(key, format!("stat output `{stat}` has a bad size")))?;
    let file_type = next("file type")?;
    let sha256 = lines
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    if let Some(sha) = &sha256 {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FactError::new(
                key,
                format!("`{sha}` is not a sha256 digest"),
            ));
        }
    }
    let content = match lines.next().map(str::trim) {
        Some(encoded) if sha256.is_some() => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| FactError::new(key, format!("content is not valid base64: {e}")))?,
        ),
        _ if sha256.is_some() && size == 0 => Some(Vec::new()),
        _ => None,
    };
    Ok(FileState::Present {
        mode,
        owner,
        group,
        size,
        file_type,
        sha256,
        content,
    })
}

/// `"0644"` → `"644"`, as `stat %a` prints it.
pub fn normalize_mode(mode: &str) -> String {
    let trimmed = mode.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn content_value(bytes: &[u8], sensitive: bool) -> AttrValue {
    if sensitive {
        return AttrValue::Sensitive;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() as u64 <= MAX_DIFF_BYTES => AttrValue::Content(text.to_owned()),
        _ => AttrValue::Opaque(format!(
            "{} bytes, sha256:{}",
            bytes.len(),
            &hex::encode(Sha256::digest(bytes))[..12]
        )),
    }
}

/// Compares a desired file with what the host has. `label` prefixes attribute names (the
/// sysctl kind calls its file `file`); an empty label gives `content`, `mode`, ….
pub fn diff_file(
    key: &str,
    label: &str,
    desired: &DesiredFile,
    state: &FileState,
) -> Result<(Action, Vec<AttrChange>), FactError> {
    let name = |attr: &str| {
        if label.is_empty() {
            attr.to_owned()
        } else {
            format!("{label}.{attr}")
        }
    };
    let want_content = content_value(desired.bytes, desired.sensitive);
    let mut changes = Vec::new();
    match state {
        FileState::Absent => {
            changes.push(AttrChange::new(
                name("content"),
                AttrValue::Absent,
                want_content,
            ));
            let mode = desired.mode.unwrap_or("0644");
            changes.push(AttrChange::new(
                name("mode"),
                AttrValue::Absent,
                AttrValue::Scalar(mode.to_owned()),
            ));
            for (attr, value) in [("owner", desired.owner), ("group", desired.group)] {
                if let Some(value) = value {
                    changes.push(AttrChange::new(
                        name(attr),
                        AttrValue::Absent,
                        AttrValue::Scalar(value.to_owned()),
                    ));
                }
            }
            Ok((Action::Create, changes))
        }
        FileState::Present {
            mode,
            owner,
            group,
            size,
            file_type,
            sha256,
            content,
        } => {
            if file_type != "regular file" {
                return Err(FactError::new(
                    key,
                    format!(
                        "{} is a {file_type}, not a regular file; corral will not replace it",
                        desired.path
                    ),
                ));
            }
            let want_sha = hex::encode(Sha256::digest(desired.bytes));
            if sha256.as_deref() != Some(want_sha.as_str()) {
                let before = match content {
                    Some(bytes) => content_value(bytes, desired.sensitive),
                    None if desired.sensitive => AttrValue::Sensitive,
                    None => AttrValue::Opaque(format!(
                        "{size} bytes, sha256:{}",
                        sha256.as_deref().map_or("?", |s| &s[..12.min(s.len())])
                    )),
                };
                changes.push(AttrChange::new(name("content"), before, want_content));
            }
            if let Some(want) = desired.mode {
                if normalize_mode(want) != *mode {
                    changes.push(AttrChange::scalar(
                        name("mode"),
                        format!("{mode:0>4}"),
                        want,
                    ));
                }
            }
            for (attr, want, have) in [
                ("owner", desired.owner, owner),
                ("group", desired.group, group),
            ] {
                if let Some(want) = want {
                    if want != have {
                        changes.push(AttrChange::scalar(name(attr), have.as_str(), want));
                    }
                }
            }
            let action = if changes.is_empty() {
                Action::NoOp
            } else {
                Action::Update
            };
            Ok((action, changes))
        }
    }
}

/// Shell text that makes `desired` true: a full atomic write when `write_content`, else only
/// ownership and mode.
pub fn write_script(desired: &DesiredFile, write_content: bool) -> String {
    let path = quote(desired.path);
    let owner = desired.owner.map(quote);
    let group = desired.group.map(quote);
    let mut script = String::from("set -eu\n");
    if write_content {
        script.push_str(&format!(
            "p={path}\nmkdir -p -- \"$(dirname -- \"$p\")\"\ntmp=\"$p.corral-tmp.$$\"\ntrap 'rm -f -- \"$tmp\"' EXIT\numask 077\n"
        ));
        script.push_str(&write_bytes("\"$tmp\"", desired.bytes));
        script.push_str(&format!(
            "printf '%s  %s\\n' {} \"$tmp\" | sha256sum -c --status\n",
            hex::encode(Sha256::digest(desired.bytes))
        ));
        // Keep what the configuration does not manage from the file being replaced.
        script.push_str("if [ -e \"$p\" ]; then chown --reference=\"$p\" -- \"$tmp\"; chmod --reference=\"$p\" -- \"$tmp\"; else chmod 0644 -- \"$tmp\"; fi\n");
        let target = "\"$tmp\"";
        push_attrs(
            &mut script,
            target,
            desired,
            owner.as_deref(),
            group.as_deref(),
        );
        script.push_str("mv -f -- \"$tmp\" \"$p\"\n");
    } else {
        push_attrs(
            &mut script,
            &path,
            desired,
            owner.as_deref(),
            group.as_deref(),
        );
    }
    script
}

fn push_attrs(
    script: &mut String,
    target: &str,
    desired: &DesiredFile,
    owner: Option<&str>,
    group: Option<&str>,
) {
    if let Some(owner) = owner {
        script.push_str(&format!("chown -- {owner} {target}\n"));
    }
    if let Some(group) = group {
        script.push_str(&format!("chgrp -- {group} {target}\n"));
    }
    if let Some(mode) = desired.mode {
        script.push_str(&format!("chmod -- {} {target}\n", quote(mode)));
    }
}

/// Checks a path, mode, owner and group the way every file-owning kind needs.
pub fn check_path(ctx: &mut CheckContext, field: &str, path: &str) {
    if !path.starts_with('/')
        || path.ends_with('/')
        || path.contains('\0')
        || path.split('/').any(|c| c == "..")
    {
        ctx.error(
            &[field],
            format!("`{path}` is not an absolute file path"),
            "here",
        )
        .help = Some(
            "write an absolute path such as `/etc/motd`, without `..` or a trailing `/`".into(),
        );
    }
}

fn check_mode(ctx: &mut CheckContext, mode: &str) {
    let digits = mode.len();
    if !(3..=4).contains(&digits) || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        ctx.error(
            &["mode"],
            format!("`{mode}` is not an octal file mode"),
            "here",
        )
        .help = Some("write the mode in octal and quoted, e.g. `mode: \"0644\"`".into());
    }
}

fn check_name(ctx: &mut CheckContext, field: &str, name: &str) {
    if !crate::shell::is_plain_word(name) || name.contains('/') {
        ctx.error(
            &[field],
            format!("`{name}` is not a valid user or group name"),
            "here",
        );
    }
}

impl FileSpec {
    pub fn check(mut self, ctx: &mut CheckContext) -> Self {
        check_path(ctx, "path", &self.path);
        if let Some(mode) = &self.mode {
            check_mode(ctx, mode);
        }
        for (field, value) in [("owner", &self.owner), ("group", &self.group)] {
            if let Some(value) = value {
                check_name(ctx, field, value);
            }
        }
        match (&self.content, &self.source) {
            (Some(content), None) => self.bytes = Content(content.clone().into_bytes()),
            (None, Some(source)) => {
                let source = source.clone();
                if let Some(bytes) = ctx.read_source(&["source"], &source) {
                    self.bytes = Content(bytes);
                }
            }
            (Some(_), Some(_)) => {
                ctx.error(
                    &["source"],
                    "`content` and `source` are both given",
                    "second content",
                )
                .help = Some("keep one of them".into());
            }
            (None, None) => {
                ctx.error(
                    &[],
                    "an os/file needs `content` or `source`",
                    "in this specification",
                )
                .help = Some("add `content: \"...\"` or `source: relative/path`".into());
            }
        }
        self
    }

    fn desired(&self) -> DesiredFile<'_> {
        DesiredFile {
            path: &self.path,
            bytes: &self.bytes.0,
            mode: self.mode.as_deref(),
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            sensitive: self.sensitive,
        }
    }
}

impl MachineKind for FileSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, _name: &str) -> Vec<Probe> {
        vec![probe(&self.path, !self.sensitive)]
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let key = probe_key(&self.path, !self.sensitive);
        let state = parse(&key, facts.get(&key)?)?;
        let (action, attributes) = diff_file(&key, "", &self.desired(), &state)?;
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: None,
        })
    }

    fn steps(&self, _name: &str, change: &ResourceChange) -> Vec<Step> {
        let write_content =
            change.action == Action::Create || change.attribute("content").is_some();
        vec![Step {
            description: format!("write {}", self.path),
            script: write_script(&self.desired(), write_content),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    fn state(fixture: &str, path: &str, with_content: bool) -> Result<FileState, FactError> {
        let key = probe_key(path, with_content);
        parse(&key, &recorded::probe(fixture, "n1", &key))
    }

    fn desired<'a>(path: &'a str, bytes: &'a [u8]) -> DesiredFile<'a> {
        DesiredFile {
            path,
            bytes,
            mode: Some("0644"),
            owner: Some("root"),
            group: Some("root"),
            sensitive: false,
        }
    }

    #[test]
    fn absent_file_is_created_with_its_attributes() {
        let state = state("lab-fresh", "/etc/corral-fixture-absent", true).unwrap();
        assert_eq!(state, FileState::Absent);
        let (action, changes) = diff_file(
            "k",
            "",
            &desired("/etc/corral-fixture-absent", b"x\n"),
            &state,
        )
        .unwrap();
        assert_eq!(action, Action::Create);
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["content", "mode", "owner", "group"]);
        assert_eq!(changes[0].after, AttrValue::Content("x\n".into()));
    }

    #[test]
    fn regular_file_with_other_content_is_a_content_diff() {
        let state = state("lab-fresh", "/etc/issue.net", true).unwrap();
        let FileState::Present {
            mode,
            owner,
            file_type,
            content,
            ..
        } = &state
        else {
            panic!("{state:?}");
        };
        assert_eq!(
            (mode.as_str(), owner.as_str(), file_type.as_str()),
            ("644", "root", "regular file")
        );
        assert!(content
            .as_ref()
            .is_some_and(|c| c.starts_with(b"Debian GNU/Linux")));
        let (action, changes) = diff_file(
            "k",
            "",
            &desired("/etc/issue.net", b"Authorized access only\n"),
            &state,
        )
        .unwrap();
        assert_eq!(action, Action::Update);
        assert_eq!(changes.len(), 1, "only the content differs: {changes:?}");
        assert!(
            matches!(&changes[0].before, AttrValue::Content(t) if t.starts_with("Debian GNU/Linux"))
        );
    }

    #[test]
    fn converged_file_is_a_no_op() {
        let state = state("lab-converged", "/etc/issue.net", true).unwrap();
        let (action, changes) = diff_file(
            "k",
            "",
            &desired("/etc/issue.net", b"Authorized access only\n"),
            &state,
        )
        .unwrap();
        assert_eq!((action, changes), (Action::NoOp, vec![]));
    }

    #[test]
    fn sensitive_file_is_read_by_digest_only_and_never_shown() {
        let state = state("lab-fresh", "/etc/hostname", false).unwrap();
        let FileState::Present {
            sha256, content, ..
        } = &state
        else {
            panic!("{state:?}");
        };
        assert!(sha256.is_some() && content.is_none());
        let secret = DesiredFile {
            sensitive: true,
            ..desired("/etc/hostname", b"hunter2\n")
        };
        let (_, changes) = diff_file("k", "", &secret, &state).unwrap();
        assert_eq!(changes[0].before, AttrValue::Sensitive);
        assert_eq!(changes[0].after, AttrValue::Sensitive);
        assert!(!format!("{changes:?}").contains("hunter2"));
    }

    #[test]
    fn directory_is_refused() {
        let state = state("lab-fresh", "/etc/ssh", true).unwrap();
        assert!(matches!(&state, FileState::Present { file_type, .. } if file_type == "directory"));
        let error = diff_file("k", "", &desired("/etc/ssh", b"x\n"), &state).unwrap_err();
        assert!(error.message.contains("is a directory"), "{error}");
    }

    #[test]
    fn path_below_a_file_is_an_error() {
        let error = state("lab-fresh", "/etc/hostname/child", true).unwrap_err();
        assert!(error.message.contains("not a directory"), "{error}");
    }

    #[test]
    fn modes_compare_as_stat_prints_them() {
        assert_eq!(normalize_mode("0644"), "644");
        assert_eq!(normalize_mode("4755"), "4755");
        assert_eq!(normalize_mode("0000"), "0");
    }

    /// The write script, run by a real `sh` against a temporary directory, leaves exactly
    /// the content and mode and no temporary file.
    #[test]
    fn write_script_writes_atomically_with_a_real_sh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/target.conf");
        let path_text = path.to_str().unwrap();
        let content = b"line 1\n'quoted' $(not run)\n";
        let file = DesiredFile {
            owner: None,
            group: None,
            mode: Some("0600"),
            ..desired(path_text, content)
        };
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(write_script(&file, true))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&path).unwrap(), content);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
