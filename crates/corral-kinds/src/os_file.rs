//! `os/file`: a file's content, mode and ownership, written and read through
//! [`super::file`], which every kind that owns a file shares.

use serde::{Deserialize, Serialize};

use super::file::{
    account_key, account_probe, check_path, diff_file, parse, probe, probe_key,
    write_checked_script, Content, DesiredFile, FileState, Read, ORIGINAL_ATTR,
};
use super::{Claim, Kind, MachineKind, Step};
use crate::base::check::{CheckContext, Exposure};
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Diff, ResourceChange};

pub const KIND: &str = "os/file";

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
    /// A command that checks the new content before it replaces the file, with `%s` for
    /// the new file's path: `nginx -t -c %s`, `visudo -cf %s`. Run as root on the host;
    /// when it fails, the file is not replaced and the step fails with its output.
    pub validate: Option<String>,
    #[serde(skip)]
    pub bytes: Content,
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

impl Kind for FileSpec {
    const SECRET_FIELDS: &'static [&'static [&'static str]] = &[&["content"]];

    fn check(mut self, ctx: &mut CheckContext) -> Self {
        check_path(ctx, "path", &self.path);
        if let Some(mode) = &self.mode {
            check_mode(ctx, mode);
        }
        for (field, value) in [("owner", &self.owner), ("group", &self.group)] {
            if let Some(value) = value {
                check_name(ctx, field, value);
            }
        }
        if let Some(command) = &self.validate {
            if !command.contains("%s") || command.chars().any(char::is_control) {
                ctx.error(
                    &["validate"],
                    "`validate` must be one line with `%s` where the new file's path goes",
                    "here",
                )
                .help = Some("e.g. `validate: \"nginx -t -c %s\"`".into());
            }
        }
        match (&self.content, &self.source) {
            (Some(content), None) => self.bytes = content.clone(),
            (None, Some(source)) => {
                let source = source.clone();
                if let Some(bytes) =
                    ctx.read_source_as(&["source"], &source, Exposure::of(self.sensitive))
                {
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

    /// A file may be found at the path, adopted, and put back when the resource goes.
    const ADOPTS_FILES: bool = true;
}

impl FileSpec {
    /// Sensitive files are compared on the host; others are read back for a diff.
    fn read<'a>(&self, sha: &'a str) -> Read<'a> {
        if self.sensitive {
            Read::CompareWith(sha)
        } else {
            Read::Content
        }
    }

    /// The key of this file's probe: [`probe_key`] holds no digest, so none is made.
    fn key(&self) -> String {
        probe_key(&self.path, self.read(""))
    }

    fn desired(&self, keep_original: bool) -> DesiredFile<'_> {
        DesiredFile {
            path: &self.path,
            bytes: &self.bytes.0,
            mode: self.mode.as_deref(),
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            sensitive: self.sensitive,
            keep_original,
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
        let mut probes = vec![probe(&self.path, self.read(&self.bytes.sha256()))];
        probes.extend(self.owner.as_deref().map(|u| account_probe("passwd", u)));
        probes.extend(self.group.as_deref().map(|g| account_probe("group", g)));
        probes
    }

    fn unmet(&self, _name: &str, facts: &HostFacts) -> Vec<String> {
        [
            ("passwd", "owner", &self.owner),
            ("group", "group", &self.group),
        ]
        .into_iter()
        .filter_map(|(database, what, name)| {
            let name = name.as_deref()?;
            let out = facts.get(&account_key(database, name)).ok()?;
            // getent: 0 found, 2 not found; anything else says nothing for sure.
            (out.rc == 2).then(|| format!("{what} `{name}` does not exist"))
        })
        .collect()
    }

    fn diff(&self, _name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let key = self.key();
        let state = parse(&key, facts.get(&key)?)?;
        let (mut action, mut attributes) = diff_file(&key, "", &self.desired(true), &state)?;
        // A file corral created itself has no original to keep: the host's marker says so,
        // or (for files written before markers) the record (read only for files that
        // change, so converged plans stay cheap).
        if attributes.iter().any(|a| a.name == ORIGINAL_ATTR)
            && crate::facts::record::recorded(facts)?.created(&self.path, crate::adopts_files)
        {
            (action, attributes) = diff_file(&key, "", &self.desired(false), &state)?;
        }
        Ok(Diff {
            action: Some(action),
            attributes,
            reason: None,
        })
    }

    fn modified_at(&self, _name: &str, facts: &HostFacts) -> Option<u64> {
        let key = self.key();
        match parse(&key, facts.get(&key).ok()?).ok()? {
            FileState::Present { modified, .. } => Some(modified),
            _ => None,
        }
    }

    fn managed_entry(&self, _name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry {
            sensitive: self.sensitive,
            ..crate::facts::record::Entry::file(KIND, &self.path)
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

    fn steps(&self, _name: &str, _change: &ResourceChange, _facts: &HostFacts) -> Vec<Step> {
        // The host decides (a package may have put a file there since the plan): keep what
        // is found, mark what is created.
        let keep_original = true;
        vec![Step {
            description: format!("write {}", self.path),
            script: write_checked_script(&self.desired(keep_original), self.validate.as_deref()),
        }]
    }
}
