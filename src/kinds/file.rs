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

use super::{Claim, MachineKind, Step};
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

/// Inline content is decoded straight into [`Content`], so it is redacted wherever the
/// specification is debug-printed.
impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Content(s.into_bytes()))
    }
}

impl schemars::JsonSchema for Content {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Content".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(&self.0))
    }
}

impl Content {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.0))
    }
}

/// `os/file` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub machines: Selector,
    /// Absolute path on the machine.
    pub path: String,
    /// Inline content; exactly one of `content` and `source` is given.
    pub content: Option<Content>,
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
        body: Body,
    },
}

/// What was learnt about a regular file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Not a regular file.
    None,
    /// The whole content (files up to [`MAX_DIFF_BYTES`]).
    Content(Vec<u8>),
    /// Only its sha256 (larger files).
    Digest(String),
    /// Whether it equals the desired content, compared on the host: for sensitive files, so
    /// that not even a digest of the secret leaves the host.
    Compared { same: bool },
}

/// How a probe reads a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    /// Content when small enough, else digest.
    Content,
    /// Compare with this sha256 on the host.
    CompareWith(&'a str),
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

/// The probe for a path. Its output is `stat`'s line, then for a regular file one of
/// `base64 CONTENT`, `sha256 DIGEST  -` or `compare same|differs`.
pub fn probe(path: &str, read: Read) -> Probe {
    let p = quote(path);
    // One `stat`, whose size field (`$4` after `set --`) decides how to read the content.
    let mut script = format!(
        "s=$(stat -c '%a %U %G %s %F' -- {p} 2>&1) || {{ printf '%s\\n' \"$s\"; return 1; }}\nprintf '%s\\n' \"$s\"\n[ -f {p} ] && [ ! -L {p} ] || return 0\n"
    );
    match read {
        Read::Content => script.push_str(&format!(
            "set -- $s\nif [ \"$4\" -le {MAX_DIFF_BYTES} ]; then printf 'base64 '; base64 -w0 < {p}; echo; else printf 'sha256 '; sha256sum < {p}; fi\n"
        )),
        Read::CompareWith(sha) => script.push_str(&format!(
            "h=$(sha256sum < {p}) || return 1\nif [ \"${{h%% *}}\" = {sha} ]; then echo 'compare same'; else echo 'compare differs'; fi\n"
        )),
    }
    Probe {
        key: probe_key(path, read),
        script,
    }
}

/// The key of [`probe`]; it names how the file is read but never holds a digest.
pub fn probe_key(path: &str, read: Read) -> String {
    let how = match read {
        Read::Content => "content",
        Read::CompareWith(_) => "compare",
    };
    format!("file:{how}:{path}")
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
    let body = match lines.next().map(|l| l.split_once(' ').unwrap_or((l, ""))) {
        None => Body::None,
        Some(("base64", encoded)) => Body::Content(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| FactError::new(key, format!("content is not valid base64: {e}")))?,
        ),
        Some(("sha256", rest)) => {
            let sha = rest.split_whitespace().next().unwrap_or_default();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(FactError::new(
                    key,
                    format!("`{sha}` is not a sha256 digest"),
                ));
            }
            Body::Digest(sha.to_owned())
        }
        Some(("compare", "same")) => Body::Compared { same: true },
        Some(("compare", "differs")) => Body::Compared { same: false },
        Some(_) => return Err(FactError::unexpected(key, out)),
    };
    Ok(FileState::Present {
        mode,
        owner,
        group,
        size,
        file_type,
        body,
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
            let mode = desired.mode.unwrap_or(default_mode(desired));
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
            body,
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
            let before = match body {
                Body::Content(bytes) if bytes.as_slice() == desired.bytes => None,
                Body::Content(bytes) => Some(content_value(bytes, desired.sensitive)),
                Body::Digest(sha) if *sha == want_sha => None,
                Body::Digest(sha) if desired.sensitive => {
                    let _ = sha;
                    Some(AttrValue::Sensitive)
                }
                Body::Digest(sha) => Some(AttrValue::Opaque(format!(
                    "{size} bytes, sha256:{}",
                    &sha[..12.min(sha.len())]
                ))),
                Body::Compared { same: true } => None,
                Body::Compared { same: false } => Some(AttrValue::Sensitive),
                Body::None => Some(AttrValue::Opaque("unreadable".into())),
            };
            if let Some(before) = before {
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

/// The mode of a new file whose configuration sets none: secrets are readable by their
/// owner only.
fn default_mode(desired: &DesiredFile) -> &'static str {
    if desired.sensitive {
        "0600"
    } else {
        "0644"
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
            "h=$(sha256sum < \"$tmp\")\n[ \"${{h%% *}}\" = {} ]\n",
            hex::encode(Sha256::digest(desired.bytes))
        ));
        // Keep what the configuration does not manage from the file being replaced.
        script.push_str(&format!(
            "if [ -e \"$p\" ]; then chown --reference=\"$p\" -- \"$tmp\"; chmod --reference=\"$p\" -- \"$tmp\"; else chmod {} -- \"$tmp\"; fi\n",
            default_mode(desired)
        ));
        let target = "\"$tmp\"";
        push_attrs(
            &mut script,
            target,
            desired,
            owner.as_deref(),
            group.as_deref(),
        );
        // On disk before it replaces the old file, so a crash leaves one or the other.
        script.push_str("sync -- \"$tmp\"\nmv -f -- \"$tmp\" \"$p\"\n");
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
        || path.chars().any(|c| c.is_control() || c == '\\')
        || path
            .split('/')
            .skip(1)
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        ctx.error(
            &[field],
            format!("`{path}` is not an absolute file path"),
            "here",
        )
        .help = Some(
            "write an absolute path such as `/etc/motd`, without `.`, `..` or empty components, control characters, `\\` or a trailing `/`".into(),
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
            (Some(content), None) => self.bytes = content.clone(),
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

    /// Sensitive files are compared on the host; others are read back for a diff.
    fn read<'a>(&self, sha: &'a str) -> Read<'a> {
        if self.sensitive {
            Read::CompareWith(sha)
        } else {
            Read::Content
        }
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
        vec![probe(&self.path, self.read(&self.bytes.sha256()))]
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let sha = self.bytes.sha256();
        let key = probe_key(&self.path, self.read(&sha));
        let state = parse(&key, facts.get(&key)?)?;
        let (action, attributes) = diff_file(&key, "", &self.desired(), &state)?;
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: None,
        })
    }

    fn managed_entry(&self, _name: &str) -> Option<crate::managed::Entry> {
        Some(crate::managed::Entry {
            kind: KIND.to_owned(),
            path: Some(self.path.clone()),
            unit: None,
        })
    }

    fn claims(&self, _name: &str) -> Vec<Claim> {
        vec![Claim::new(
            format!("file {}", self.path),
            format!(
                "{} {:?} {:?} {:?}",
                self.bytes.sha256(),
                self.mode,
                self.owner,
                self.group
            ),
        )]
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

    fn state(fixture: &str, path: &str, read: Read) -> Result<FileState, FactError> {
        let key = probe_key(path, read);
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
        let state = state("lab-fresh", "/etc/corral-fixture-absent", Read::Content).unwrap();
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
        let state = state("lab-fresh", "/etc/issue.net", Read::Content).unwrap();
        let FileState::Present {
            mode,
            owner,
            file_type,
            body,
            ..
        } = &state
        else {
            panic!("{state:?}");
        };
        assert_eq!(
            (mode.as_str(), owner.as_str(), file_type.as_str()),
            ("644", "root", "regular file")
        );
        assert!(matches!(body, Body::Content(c) if c.starts_with(b"Debian GNU/Linux")));
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
        let state = state("lab-converged", "/etc/issue.net", Read::Content).unwrap();
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
    fn empty_file_has_empty_content() {
        let state = state("lab-fresh", "/etc/subgid", Read::Content).unwrap();
        assert!(
            matches!(&state, FileState::Present { size: 0, body: Body::Content(c), .. } if c.is_empty()),
            "{state:?}"
        );
    }

    /// A sensitive file is compared on the host: neither its content nor a digest of it
    /// comes back, and the plan shows only `(sensitive)`.
    #[test]
    fn sensitive_file_is_compared_on_the_host_and_never_shown() {
        let key = probe_key("/etc/hostname", Read::CompareWith("0"));
        assert_eq!(key, "file:compare:/etc/hostname");
        let out = recorded::probe("lab-fresh", "n1", &key);
        assert!(out.output.ends_with("compare differs\n"), "{out:?}");
        let state = parse(&key, &out).unwrap();
        let secret = DesiredFile {
            sensitive: true,
            ..desired("/etc/hostname", b"hunter2\n")
        };
        let (_, changes) = diff_file("k", "", &secret, &state).unwrap();
        assert_eq!(changes[0].before, AttrValue::Sensitive);
        assert_eq!(changes[0].after, AttrValue::Sensitive);
        assert!(!format!("{changes:?}").contains("hunter2"));
        let spec = FileSpec {
            machines: Selector::All,
            path: "/etc/hostname".into(),
            content: Some(Content(b"hunter2\n".to_vec())),
            source: None,
            mode: None,
            owner: None,
            group: None,
            sensitive: true,
            bytes: Content(b"hunter2\n".to_vec()),
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
        let probe_script = &spec.probes("secret")[0].script;
        assert!(
            !probe_script.contains("hunter2") && !probe_script.contains("base64"),
            "{probe_script}"
        );
    }

    #[test]
    fn directory_is_refused() {
        let state = state("lab-fresh", "/etc/ssh", Read::Content).unwrap();
        assert!(matches!(&state, FileState::Present { file_type, .. } if file_type == "directory"));
        let error = diff_file("k", "", &desired("/etc/ssh", b"x\n"), &state).unwrap_err();
        assert!(error.message.contains("is a directory"), "{error}");
    }

    #[test]
    fn path_below_a_file_is_an_error() {
        let error = state("lab-fresh", "/etc/hostname/child", Read::Content).unwrap_err();
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
