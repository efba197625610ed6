//! A file on a host, for every kind that owns one (`os/file`, in [`super::os_file`];
//! sysctl's persisted values, unit files, drop-ins) and for corral's own records.
//!
//! Reads `stat`, `sha256sum` and (unless sensitive or large) the content in base64; writes
//! through a temporary file in the same directory, verified by its digest and renamed over
//! the target, so a host never holds a half-written file; keeps the original of a file it
//! adopts, to put back when the resource goes.

use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::check::CheckContext;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff};
use crate::shell::{quote, write_bytes};

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

/// What a host says about a path. Nothing at or above the path is ever followed when it is
/// a symbolic link: the probe reports the link itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Nothing at the path; `missing_parent` names the first directory above it that does
    /// not exist either (created by apply).
    Absent { missing_parent: Option<String> },
    /// A symbolic link at the path (`at` = the path) or at a directory above it.
    Link { at: String, target: String },
    /// Something above the path that is not a directory.
    NotDirectory { at: String },
    Present {
        mode: String,
        owner: String,
        group: String,
        size: u64,
        /// Last modification, in seconds since the epoch (`stat`'s `%Y`).
        modified: u64,
        /// `stat`'s `%F`: "regular file", "regular empty file", "directory", …
        file_type: String,
        body: Body,
        /// Whether corral keeps the file that was here before it first changed it.
        original_kept: bool,
        /// Whether corral created the file (the host keeps a marker).
        created_by_corral: bool,
    },
}

impl FileState {
    /// An absent file whose directory exists.
    pub const ABSENT: FileState = FileState::Absent {
        missing_parent: None,
    };
}

/// Whether `stat %F` names a regular file (GNU stat says "regular empty file" for size 0).
pub fn is_regular(file_type: &str) -> bool {
    matches!(file_type, "regular file" | "regular empty file")
}

/// What was learnt about a regular file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Not a regular file, or not read.
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
    /// Type, mode and owner only, never the bytes.
    Metadata,
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
    /// Keep the file found at the path (if any, and if none is kept yet) before replacing
    /// it, so that removing the resource restores it.
    pub keep_original: bool,
}

/// Where corral keeps the files it found before it first changed them (root only).
pub const ORIGINALS_DIR: &str = "/var/lib/corral/originals";

/// The name under [`ORIGINALS_DIR`] of the original of `path`.
pub fn original_id(path: &str) -> String {
    hex::encode(&Sha256::digest(path.as_bytes())[..16])
}

/// A shell function `corral_file PATH HOW ID` that prints what is at PATH, one fact per line,
/// following no symbolic link at or above it:
///
/// ```text
/// link<TAB>AT<TAB>TARGET     a link at the path or at a directory above it
/// absent<TAB>AT              nothing at AT (the path, or the first missing directory)
/// notdir<TAB>AT              AT, above the path, is not a directory
/// stat MODE OWNER GROUP SIZE MTIME TYPE
/// original kept              corral keeps the file that was here before it
/// created by corral          corral created the file (nothing was there)
/// base64 CONTENT | sha256 DIGEST  - | compare same|differs
/// ```
///
/// HOW is `content`, `meta` or a sha256 to compare with; ID is the path's
/// [`original_id`]. The function walks down from `/` with `cd -P`, one directory at a
/// time, and reads names relative to the directory it stands in, so a link swapped in
/// above the path after the walk cannot redirect the read; it runs in a subshell, so its
/// variables and directory stay its own. Bytes are read with
/// `dd iflag=nofollow`, so a link swapped in after the checks fails the read instead of
/// leaking what it points to.
pub const PROBE_FUNCTION: &str = r#"corral_file() (
  p=$1; how=$2; id=$3; q=; r=${p#/}
  cd / || exit 1
  while :; do
    case $r in */*) ;; *) break ;; esac
    c=${r%%/*}; r=${r#*/}; q=$q/$c
    if [ -L "$c" ]; then printf 'link\t%s\t%s\n' "$q" "$(readlink -- "$c" | tr -d '\n\t')"; exit 0; fi
    [ -e "$c" ] || { printf 'absent\t%s\n' "$q"; exit 0; }
    [ -d "$c" ] || { printf 'notdir\t%s\n' "$q"; exit 0; }
    cd -P -- "$c" || exit 1
  done
  [ "$(pwd -P)" = "${q:-/}" ] || { echo "corral: a directory above $p was replaced while it was read"; exit 1; }
  if [ -L "$r" ]; then printf 'link\t%s\t%s\n' "$p" "$(readlink -- "$r" | tr -d '\n\t')"; exit 0; fi
  [ -e "$r" ] || { printf 'absent\t%s\n' "$p"; exit 0; }
  s=$(stat -c '%a %U %G %s %Y %F' -- "$r") || exit 1
  printf 'stat %s\n' "$s"
  [ ! -e "ORIGINALS/$id" ] || echo 'original kept'
  [ ! -e "ORIGINALS/$id.created" ] || echo 'created by corral'
  case $s in *' regular file'|*' regular empty file') ;; *) exit 0 ;; esac
  set -- $s
  case $how in
    meta) ;;
    content)
      if [ "$4" -le MAXBYTES ]; then printf 'base64 '; dd if="$r" iflag=nofollow status=none | base64 -w0; echo
      else printf 'sha256 '; dd if="$r" iflag=nofollow status=none | sha256sum; fi ;;
    *)
      h=$(dd if="$r" iflag=nofollow status=none | sha256sum) || exit 1
      if [ "${h%% *}" = "$how" ]; then echo 'compare same'; else echo 'compare differs'; fi ;;
  esac
)
"#;

/// [`PROBE_FUNCTION`] with its constants filled in, made once: every file probe of every
/// host carries it.
pub fn probe_function() -> &'static str {
    static FUNCTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FUNCTION.get_or_init(|| {
        PROBE_FUNCTION
            .replace("ORIGINALS", ORIGINALS_DIR)
            .replace("MAXBYTES", &MAX_DIFF_BYTES.to_string())
    })
}

/// The probe for a path; its output is parsed by [`parse`].
pub fn probe(path: &str, read: Read) -> Probe {
    let how = match read {
        Read::Content => "content".to_owned(),
        Read::CompareWith(sha) => quote(sha),
        Read::Metadata => "meta".to_owned(),
    };
    Probe {
        key: probe_key(path, read),
        script: format!(
            "{}corral_file {} {how} {}",
            probe_function(),
            quote(path),
            original_id(path)
        ),
    }
}

/// The key of [`probe`]; it names how the file is read but never holds a digest.
pub fn probe_key(path: &str, read: Read) -> String {
    let how = match read {
        Read::Content => "content",
        Read::CompareWith(_) => "compare",
        Read::Metadata => "meta",
    };
    format!("file:{how}:{path}")
}

/// Parses the output of [`probe`].
pub fn parse(key: &str, out: &ProbeOutput) -> Result<FileState, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    let path = key_path(key).unwrap_or_default();
    parse_lines(path, out.output.lines()).map_err(|message| {
        FactError::new(
            key,
            format!(
                "{message} (the probe printed: {})",
                crate::base::text::tail(&out.output, 300)
            ),
        )
    })
}

/// Parses the lines [`PROBE_FUNCTION`] printed for one path.
pub fn parse_lines<'a>(
    path: &str,
    mut lines: impl Iterator<Item = &'a str>,
) -> Result<FileState, String> {
    let first = lines.next().ok_or("the probe printed nothing")?;
    if let Some(rest) = first.strip_prefix("link\t") {
        let (at, target) = rest.split_once('\t').unwrap_or((rest, ""));
        return Ok(FileState::Link {
            at: at.to_owned(),
            target: target.to_owned(),
        });
    }
    if let Some(at) = first.strip_prefix("absent\t") {
        return Ok(FileState::Absent {
            missing_parent: (at != path).then(|| at.to_owned()),
        });
    }
    if let Some(at) = first.strip_prefix("notdir\t") {
        return Ok(FileState::NotDirectory { at: at.to_owned() });
    }
    let stat = first
        .strip_prefix("stat ")
        .ok_or_else(|| format!("unexpected line `{first}`"))?;
    let mut fields = stat.splitn(6, ' ');
    let mut next = |what: &str| {
        fields
            .next()
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("stat output `{stat}` has no {what}"))
    };
    let mode = next("mode")?;
    let owner = next("owner")?;
    let group = next("group")?;
    let size = next("size")?
        .parse::<u64>()
        .map_err(|_| format!("stat output `{stat}` has a bad size"))?;
    let modified = next("modification time")?
        .parse::<u64>()
        .map_err(|_| format!("stat output `{stat}` has a bad modification time"))?;
    let file_type = next("file type")?;
    let mut body = Body::None;
    let mut original_kept = false;
    let mut created_by_corral = false;
    for line in lines {
        match line.split_once(' ').unwrap_or((line, "")) {
            ("original", "kept") => original_kept = true,
            ("created", "by corral") => created_by_corral = true,
            ("base64", encoded) => {
                body = Body::Content(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .map_err(|e| format!("content is not valid base64: {e}"))?,
                )
            }
            ("sha256", rest) => {
                let sha = rest.split_whitespace().next().unwrap_or_default();
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("`{sha}` is not a sha256 digest"));
                }
                body = Body::Digest(sha.to_owned());
            }
            ("compare", "same") => body = Body::Compared { same: true },
            ("compare", "differs") => body = Body::Compared { same: false },
            _ => return Err(format!("unexpected line `{line}`")),
        }
    }
    Ok(FileState::Present {
        mode,
        owner,
        group,
        size,
        modified,
        file_type,
        body,
        original_kept,
        created_by_corral,
    })
}

/// The path a [`probe_key`] names.
fn key_path(key: &str) -> Option<&str> {
    key.strip_prefix("file:")?.split_once(':').map(|(_, p)| p)
}

/// The key of [`account_probe`].
pub fn account_key(database: &str, name: &str) -> String {
    format!("getent:{database}:{name}")
}

/// Whether a user (`passwd`) or group (`group`) exists: `getent` exits 0 or 2.
pub fn account_probe(database: &str, name: &str) -> Probe {
    Probe {
        key: account_key(database, name),
        script: format!("getent {database} {} >/dev/null", quote(name)),
    }
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

/// The attribute that says corral keeps the file it replaces, to restore it later.
pub const ORIGINAL_ATTR: &str = "original";

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
    // Made only for a change: most files are as configured.
    let want_content = || content_value(desired.bytes, desired.sensitive);
    let mut changes = Vec::new();
    match state {
        FileState::Absent { missing_parent } => {
            if let Some(parent) = missing_parent {
                changes.push(AttrChange::new(
                    name("directory"),
                    AttrValue::Absent,
                    AttrValue::Scalar(format!("{parent} (created, mode 0755)")),
                ));
            }
            changes.push(AttrChange::new(
                name("content"),
                AttrValue::Absent,
                want_content(),
            ));
            let mode = desired.mode.unwrap_or(default_mode(desired.sensitive));
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
        FileState::Link { at, target } => {
            let what = if at == desired.path {
                format!("{at} is a symbolic link (to {target})")
            } else {
                format!(
                    "{at}, above {}, is a symbolic link (to {target})",
                    desired.path
                )
            };
            Err(FactError::new(
                key,
                format!("{what}; corral never writes through or replaces a symbolic link: manage the real path, or remove the link"),
            ))
        }
        FileState::NotDirectory { at } => Err(FactError::new(
            key,
            format!("{at}, above {}, is not a directory", desired.path),
        )),
        FileState::Present {
            mode,
            owner,
            group,
            size,
            file_type,
            body,
            original_kept,
            created_by_corral,
            ..
        } => {
            if !is_regular(file_type) {
                return Err(FactError::new(
                    key,
                    format!(
                        "{} is a {file_type}, not a regular file; corral will not replace it",
                        desired.path
                    ),
                ));
            }
            let before = match body {
                Body::Content(bytes) if bytes.as_slice() == desired.bytes => None,
                Body::Content(bytes) => Some(content_value(bytes, desired.sensitive)),
                Body::Digest(sha) if *sha == hex::encode(Sha256::digest(desired.bytes)) => None,
                Body::Digest(_) if desired.sensitive => Some(AttrValue::Sensitive),
                Body::Digest(sha) => Some(AttrValue::Opaque(format!(
                    "{size} bytes, sha256:{}",
                    &sha[..12.min(sha.len())]
                ))),
                Body::Compared { same: true } => None,
                Body::Compared { same: false } => Some(AttrValue::Sensitive),
                Body::None => Some(AttrValue::Opaque("unreadable".into())),
            };
            if let Some(before) = before {
                changes.push(AttrChange::new(name("content"), before, want_content()));
            }
            // A secret ends readable by its owner only, whatever mode the file had.
            let want_mode = desired
                .mode
                .or(desired.sensitive.then_some(default_mode(true)));
            if let Some(want) = want_mode {
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
            if changes.is_empty() {
                return Ok((Action::NoOp, changes));
            }
            if desired.keep_original && !original_kept && !created_by_corral {
                changes.push(AttrChange::new(
                    name(ORIGINAL_ATTR),
                    AttrValue::Absent,
                    AttrValue::Scalar(format!(
                        "kept in {ORIGINALS_DIR}, restored when this resource is removed"
                    )),
                ));
            }
            Ok((Action::Update, changes))
        }
    }
}

/// The mode of a new file whose configuration sets none: secrets are readable by their
/// owner only.
fn default_mode(sensitive: bool) -> &'static str {
    if sensitive {
        "0600"
    } else {
        "0644"
    }
}

/// Shell text that walks from `/` down to the directory of `path` with `cd -P`, one
/// directory at a time (creating missing ones, 0755, when `create`; else ending the
/// subshell with success, there being nothing to do), refusing a symbolic link at any
/// level, and checks that the shell's directory really is that directory. Later commands
/// name files relative to it, so a link planted above the path cannot redirect them. Sets
/// `$d` (the directory) and `$b` (the file's name).
pub fn enter_directory(path: &str, create: bool) -> String {
    let mut script = walk_to_directory(path, create);
    script.push_str(
        "if [ -L \"$b\" ]; then echo \"corral: $d/$b is a symbolic link; corral never writes through or replaces one\"; exit 1; fi\n",
    );
    script
}

/// [`enter_directory`] without its check of the path itself, for a caller that handles a
/// link at the path on its own ([`keep_script`] leaves it alone).
fn walk_to_directory(path: &str, create: bool) -> String {
    let (dir, base) = match path.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((dir, base)) => (dir, base),
        None => ("/", path),
    };
    let mut script = format!("d={}; b={}\ncd /\n", quote(dir), quote(base));
    let missing = if create {
        "[ -d \"$c\" ] || mkdir -m 0755 -- \"$c\""
    } else {
        "[ -d \"$c\" ] || exit 0"
    };
    script.push_str(&format!(
        "r=${{d#/}}\nwhile [ -n \"$r\" ]; do\n  c=${{r%%/*}}; case $r in */*) r=${{r#*/}} ;; *) r= ;; esac\n  if [ -L \"$c\" ]; then echo \"corral: $(pwd -P)/$c is a symbolic link; corral never writes through one\"; exit 1; fi\n  {missing}\n  cd -P -- \"$c\"\ndone\n"
    ));
    script.push_str(
        "[ \"$(pwd -P)\" = \"$d\" ] || { echo \"corral: $d is reached through a symbolic link\"; exit 1; }\n",
    );
    script
}

/// Ends the calling script with the subshell's exit code when it failed. (Not `( … ) ||
/// exit`: on the left of `||`, `set -e` is ignored inside the subshell.)
const SUBSHELL_RESULT: &str = "rc=$?; [ \"$rc\" -eq 0 ] || exit \"$rc\"\n";

/// Shell text that makes a private directory (0700, `mktemp -d`) in `$d`, the shell's
/// directory, and enters it, checking it is that directory and nobody else's: what is
/// written in it cannot be swapped for a link by anyone who can write in `$d`.
const ENTER_PRIVATE: &str = "w=$(mktemp -d ./.corral-XXXXXXXX)\nw=${w#./}\ntrap 'rm -rf -- \"${d%/}/$w\"' EXIT\ncd -P -- \"$w\"\n[ \"$(pwd -P)\" = \"${d%/}/$w\" ] && [ \"$(stat -c '%u %a' .)\" = '0 700' ] || { echo \"corral: the private directory ${d%/}/$w was replaced\"; exit 1; }\numask 077\n";

/// Shell text that renames the private directory's file `f` over `$b` in its parent
/// (`mv -T`, which replaces a name and follows no link), after checking the parent is
/// still `$d`, and removes the private directory.
const MOVE_INTO_PLACE: &str = "[ \"$(cd -P .. && pwd -P)\" = \"$d\" ] || { echo \"corral: the private directory left $d during the write\"; exit 1; }\nif [ -L \"../$b\" ]; then echo \"corral: $d/$b became a symbolic link during the write\"; exit 1; fi\nmv -T -- f \"../$b\"\ncd -P ..\nrmdir -- \"$w\"\n";

/// Shell text that makes `desired` true with a full atomic write, in a subshell (its
/// directory changes and traps stay inside) that fails the calling script when it fails.
/// A root-owned file a kind writes as part of its resource (a sysctl's persisted file, an
/// sshd drop-in, a firewall's rules): never sensitive, no original kept.
pub fn root_file<'a>(path: &'a str, bytes: &'a [u8], mode: &'static str) -> DesiredFile<'a> {
    DesiredFile {
        path,
        bytes,
        mode: Some(mode),
        owner: Some("root"),
        group: Some("root"),
        sensitive: false,
        keep_original: false,
    }
}

/// How such a file differs from the host's, read from the facts of [`probe`] with
/// [`Read::Content`] (attributes named `PATH.content`, `PATH.mode`, …).
pub fn root_file_changes(
    desired: &DesiredFile,
    facts: &HostFacts,
) -> Result<(Action, Vec<AttrChange>), FactError> {
    let key = probe_key(desired.path, Read::Content);
    let state = parse(&key, facts.get(&key)?)?;
    diff_file(&key, desired.path, desired, &state)
}

/// The changes of a file a kind writes as part of its resource (a sysctl's persisted
/// file, an sshd drop-in, a firewall's rules), as the plan shows them: the content under
/// the file's path, the mode as `PATH mode` (owner and group are always root's).
pub fn shown_as_part(path: &str, changes: Vec<AttrChange>) -> Vec<AttrChange> {
    changes
        .into_iter()
        .filter_map(|mut c| {
            c.name = match c.name.strip_prefix(path)? {
                ".content" => path.to_owned(),
                ".mode" if c.before != AttrValue::Absent => format!("{path} mode"),
                _ => return None,
            };
            Some(c)
        })
        .collect()
}

/// The diff of a resource whose file is its substance: created with its file, else
/// updated when any attribute changes.
pub fn diff_with_file(file_action: Action, attributes: Vec<AttrChange>) -> Diff {
    let action = match (file_action, attributes.is_empty()) {
        (Action::Create, _) => Action::Create,
        (_, true) => Action::NoOp,
        (_, false) => Action::Update,
    };
    Diff {
        action: Some(action),
        attributes,
        reason: None,
    }
}

pub fn write_script(desired: &DesiredFile) -> String {
    write_checked_script(desired, None)
}

/// [`write_script`], with `validate` (a command with `%s` for the new file's path, such as
/// `nginx -t -c %s`) run on the new file before it replaces the old one: when it fails,
/// the old file stays and the step fails with the command's output.
///
/// The new file is written in a private directory inside the target's directory (see
/// [`ENTER_PRIVATE`]), checked against its sha256, given its owner (before its mode, so
/// that `chown` cannot clear a setuid bit) and mode, synced, then renamed over the target.
/// Mode, owner and group that the configuration does not set are kept from the file being
/// replaced. With `keep_original`, the host itself records how the file came to be
/// corral's, whatever the plan expected: a file found there (unless corral created it) is
/// first copied with its owner and mode to [`ORIGINALS_DIR`]; a file that was not there
/// gets a `.created` marker. Removing the resource then restores, or deletes.
pub fn write_checked_script(desired: &DesiredFile, validate: Option<&str>) -> String {
    let mut script = String::from("(\nset -eu\n");
    script.push_str(&enter_directory(desired.path, true));
    script.push_str(
        "old=\nif [ -e \"$b\" ]; then\n  old=$(stat -c '%u %g %a %F' -- \"$b\")\n  case $old in *' regular file'|*' regular empty file') ;; *) echo \"corral: $d/$b is not a regular file\"; exit 1 ;; esac\nfi\n",
    );
    let id = original_id(desired.path);
    let originals = quote(ORIGINALS_DIR);
    if desired.keep_original {
        // The marker first: an original of a secret is never read back, even if the apply
        // is killed half-way.
        let sensitive = if desired.sensitive {
            format!("  : > {originals}/{id}.sensitive\n")
        } else {
            String::new()
        };
        script.push_str(&format!(
            "if [ -n \"$old\" ] && [ ! -e {originals}/{id} ] && [ ! -e {originals}/{id}.created ]; then\n  mkdir -p -m 0700 {originals}\n{sensitive}  o=$(mktemp {originals}/.{id}.XXXXXXXX)\n  dd if=\"$b\" iflag=nofollow of=\"$o\" status=none\n  set -- $old\n  chown -- \"$1:$2\" \"$o\"\n  chmod -- \"$3\" \"$o\"\n  printf '%s\\n' {} > {originals}/{id}.path\n  sync -- \"$o\"\n  mv -T -- \"$o\" {originals}/{id}\nfi\n",
            quote(desired.path)
        ));
        if desired.sensitive {
            script.push_str(&format!(
                "[ ! -e {originals}/{id} ] || : > {originals}/{id}.sensitive\n"
            ));
        }
    }
    let owner = desired.owner.map_or("\"${1:-0}\"".to_owned(), quote);
    let group = desired.group.map_or("\"${2:-0}\"".to_owned(), quote);
    let mode = match (desired.mode, desired.sensitive) {
        (Some(mode), _) => quote(mode),
        (None, true) => default_mode(true).to_owned(),
        (None, false) => "\"${3:-0644}\"".to_owned(),
    };
    script.push_str(ENTER_PRIVATE);
    script.push_str(&write_bytes("f", desired.bytes));
    script.push_str(&format!(
        "h=$(sha256sum < f)\n[ \"${{h%% *}}\" = {} ] || {{ echo \"corral: the written file does not match its digest\"; exit 1; }}\nset -- $old\nchown -- {owner} f\nchgrp -- {group} f\nchmod -- {mode} f\nsync -- f\n",
        hex::encode(Sha256::digest(desired.bytes))
    ));
    if let Some(command) = validate {
        // The path as the command's own argument: `%s` stays one word even inside quotes.
        let command = command.replace("%s", "\"$1\"");
        script.push_str(&format!(
            "if ! sh -c {} sh \"$(pwd -P)/f\" </dev/null; then echo \"corral: the new content of $d/$b failed its check; the file was not replaced\"; exit 1; fi\n",
            quote(&command)
        ));
    }
    if desired.keep_original {
        // Before the rename: a file in place always has its origin recorded.
        script.push_str(&format!(
            "if [ -z \"$old\" ] && [ ! -e {originals}/{id} ]; then mkdir -p -m 0700 {originals}; : > {originals}/{id}.created; fi\n"
        ));
    }
    script.push_str(MOVE_INTO_PLACE);
    script.push_str("trap - EXIT\n)\n");
    script.push_str(SUBSHELL_RESULT);
    script
}

/// Shell text that deletes the file at `path` if it is there, in a subshell like
/// [`write_script`]: never through a link, never a link or anything but a regular file;
/// and forgets that corral created it.
pub fn delete_script(path: &str) -> String {
    let marker = format!("{}/{}.created", quote(ORIGINALS_DIR), original_id(path));
    format!(
        "(\nset -eu\n{}if [ -e \"$b\" ]; then\n  case $(stat -c %F -- \"$b\") in 'regular file'|'regular empty file') rm -f -- \"$b\" ;; *) echo \"corral: $d/$b is not a regular file; not deleting it\"; exit 1 ;; esac\nfi\nrm -f -- {marker}\n)\n{SUBSHELL_RESULT}",
        enter_directory(path, false)
    )
}

/// Shell text that puts back the original of `path` kept by [`write_script`], with its
/// owner and mode, atomically, and then forgets it.
pub fn restore_script(path: &str) -> String {
    let id = original_id(path);
    let o = format!("{}/{id}", quote(ORIGINALS_DIR));
    format!(
        "(\nset -eu\np={p}\n[ -f {o} ] || {{ echo \"corral: the original of $p is no longer in {dir}\"; exit 1; }}\n{enter}{copy}rm -f -- {o} {o}.path {o}.sensitive {o}.created\n)\n{SUBSHELL_RESULT}",
        p = quote(path),
        dir = ORIGINALS_DIR,
        enter = enter_directory(path, true),
        copy = copy_into_place(&o),
    )
}

/// Shell text, run in `$d` after [`enter_directory`], that replaces `$b` with a copy of
/// `kept` (shell text naming a root-owned file in a directory only root can write), with
/// its owner and mode: the one link-safe write of a kept file ([`ENTER_PRIVATE`],
/// [`MOVE_INTO_PLACE`]), for originals and the access guard's files alike.
fn copy_into_place(kept: &str) -> String {
    format!(
        "{ENTER_PRIVATE}dd if={kept} iflag=nofollow of=f status=none\nset -- $(stat -c '%u %g %a' -- {kept})\nchown -- \"$1:$2\" f\nchmod -- \"$3\" f\nsync -- f\n{MOVE_INTO_PLACE}trap - EXIT\n"
    )
}

/// Shell text that keeps the file at `path` as `kept` (a path in a directory only root
/// can write), with its owner and mode, for [`put_back_script`]; nothing at the path
/// leaves a marker `KEPT.absent`, a symbolic link at the path a marker `KEPT.link` (every
/// write refuses to replace one, so the change leaves it as it is, and so does the put
/// back). Never reads through a link above the path; anything but a regular file fails the
/// calling script, as corral would not replace it either. In a subshell, like
/// [`write_script`].
pub fn keep_script(path: &str, kept: &str) -> String {
    let k = quote(kept);
    format!(
        "(\nset -eu\nrm -f -- {k} {k}.absent {k}.link\n: > {k}.absent\n{walk}if [ -L \"$b\" ]; then\n  : > {k}.link\nelif [ -e \"$b\" ]; then\n  case $(stat -c %F -- \"$b\") in 'regular file'|'regular empty file') ;; *) echo \"corral: $d/$b is not a regular file\"; exit 1 ;; esac\n  dd if=\"$b\" iflag=nofollow of={k} status=none\n  set -- $(stat -c '%u %g %a' -- \"$b\")\n  chown -- \"$1:$2\" {k}\n  chmod -- \"$3\" {k}\nfi\n[ ! -e {k} ] && [ ! -e {k}.link ] || rm -f -- {k}.absent\n)\n{SUBSHELL_RESULT}",
        walk = walk_to_directory(path, false),
    )
}

/// Shell text that makes `path` again what [`keep_script`] kept as `kept`: the kept file
/// written back through the link-safe write of every other write (a private directory
/// beside the path, then `mv -T`), or the file deleted when there was none (never a link,
/// nor anything but a regular file), or nothing when a link was there. Never through a
/// link at or above the path: one planted since is reported and left alone. In a
/// subshell, like [`write_script`]; the kept files stay.
pub fn put_back_script(path: &str, kept: &str) -> String {
    let k = quote(kept);
    format!(
        "(\nset -eu\n[ ! -e {k}.link ] || exit 0\nif [ -e {k}.absent ]; then\n{enter}  if [ -e \"$b\" ]; then\n    case $(stat -c %F -- \"$b\") in 'regular file'|'regular empty file') rm -f -- \"$b\" ;; *) echo \"corral: $d/$b is not a regular file; not deleting it\"; exit 1 ;; esac\n  fi\n  exit 0\nfi\n[ -f {k} ] || {{ echo \"corral: the kept copy of \"{p}\" is gone\"; exit 1; }}\n{enter}{copy})\n{SUBSHELL_RESULT}",
        p = quote(path),
        enter = enter_directory(path, false),
        copy = copy_into_place(&k),
    )
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

pub mod batch;

#[cfg(test)]
mod tests;
