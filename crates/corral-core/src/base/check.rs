//! What a kind's checks work with: the document being checked, where its `source:` files may
//! come from, and the digest of everything read. The loader (`config`) makes one
//! [`CheckContext`] per document; the kinds only use it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::diagnostic::{ConfigError, ConfigErrors, Origin, SourceFile};
use super::yaml::{Node, Span, Value};

/// Whether a resource's content can appear in plans (and so in CI logs and pull-request
/// comments); a `source:` outside the configuration is refused for content that would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Shown in plans as a diff.
    Shown,
    /// Never shown (`sensitive: true`).
    Sensitive,
    /// A secret's value: never shown, and left out of the configuration's digest (which a
    /// saved plan holds), since an unkeyed digest helps guess a weak value. Its changes
    /// show in the versions the manager's facts name (see `kinds::swarm_secret`).
    Secret,
}

impl Exposure {
    pub fn of(sensitive: bool) -> Self {
        match sensitive {
            true => Exposure::Sensitive,
            false => Exposure::Shown,
        }
    }
}

/// What a kind's checks may use: the document being checked and a place to report errors.
/// Span of a field below `node` (e.g. `["values", "kernel.x"]`), falling back to the
/// closest enclosing node.
pub fn span_at(node: &Node, path: &[&str]) -> Span {
    let mut node = node;
    for key in path {
        match node.get(key) {
            Some(child) => node = child,
            None => break,
        }
    }
    node.span
}

pub struct CheckContext<'a> {
    /// The resource's name.
    pub name: &'a str,
    pub file: &'a Arc<SourceFile>,
    /// The `specification` node.
    pub spec: &'a Node,
    /// Directory of the file, for `source:` paths.
    pub dir: &'a Path,
    /// The configuration's directories (canonical), which `source:` files must be in.
    pub roots: &'a [PathBuf],
    /// `--allow-source-outside-config`.
    pub allow_source_outside_config: bool,
    /// Whether this command connects to the hosts (so an identity file must exist here).
    pub connecting: bool,
    pub errors: &'a mut ConfigErrors,
    /// Extra bytes the configuration depends on (files read with `source:`).
    pub digest: &'a mut ConfigDigest,
}

/// The digest of everything a configuration was loaded from, and each file's own.
#[derive(Default)]
pub struct ConfigDigest {
    all: Sha256,
    files: BTreeMap<String, String>,
}

impl ConfigDigest {
    /// Adds bytes to the digest of the whole.
    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.all.update(bytes);
    }

    /// Notes the digest of the file at `path` on its own. A sensitive source's is noted
    /// too: it says no more than the digest of the whole, which holds its bytes beside
    /// files anyone reviewing the configuration has.
    pub fn file(&mut self, path: &Path, bytes: &[u8]) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        self.files.insert(
            path.display().to_string(),
            hex::encode(Sha256::digest(bytes)),
        );
    }

    /// The digest of the whole, in hex, and each file's own by absolute path.
    pub fn finish(self) -> (String, BTreeMap<String, String>) {
        (hex::encode(self.all.finalize()), self.files)
    }
}

impl CheckContext<'_> {
    /// Span of a field of the specification (e.g. `["values", "kernel.x"]`), falling back
    /// to the closest enclosing node.
    pub fn span_of(&self, path: &[&str]) -> Span {
        span_at(self.spec, path)
    }

    /// Span of the key of a field (`kernel.x` itself for `["values", "kernel.x"]`), falling
    /// back to the closest enclosing node.
    pub fn span_of_key(&self, path: &[&str]) -> Span {
        let Some((last, parents)) = path.split_last() else {
            return self.spec.span;
        };
        let mut node = self.spec;
        for key in parents {
            match node.get(key) {
                Some(child) => node = child,
                None => return node.span,
            }
        }
        match &node.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(key, _)| key.as_str() == Some(last))
                .map_or(node.span, |(key, _)| key.span),
            _ => node.span,
        }
    }

    pub fn origin(&self, span: Span) -> Origin {
        Origin {
            file: self.file.clone(),
            span,
        }
    }

    /// Reports an error at a field of the specification.
    pub fn error(
        &mut self,
        path: &[&str],
        message: impl Into<String>,
        label: &str,
    ) -> &mut ConfigError {
        let origin = self.origin(self.span_of(path));
        self.errors.push_at(&origin, message, label)
    }

    /// Reports an error at the key of a field (a sysctl key, say) rather than its value.
    pub fn error_at_key(
        &mut self,
        path: &[&str],
        message: impl Into<String>,
        label: &str,
    ) -> &mut ConfigError {
        let origin = self.origin(self.span_of_key(path));
        self.errors.push_at(&origin, message, label)
    }

    /// Reads a file named by a `source:` field of a resource whose content is shown in
    /// plans; see [`CheckContext::read_source_as`].
    pub fn read_source(&mut self, path_field: &[&str], relative: &str) -> Option<Vec<u8>> {
        self.read_source_as(path_field, relative, Exposure::Shown)
    }

    /// Reads a file named by a `source:` field, relative to the document's file. It must be
    /// a regular file, and (symbolic links resolved) inside the configuration's directories
    /// unless its content is never shown or `--allow-source-outside-config` was given: a
    /// configuration under review must not put the reviewer's files (`/proc/self/environ`
    /// holds a CI job's secrets) into the plan it prints.
    pub fn read_source_as(
        &mut self,
        path_field: &[&str],
        relative: &str,
        exposure: Exposure,
    ) -> Option<Vec<u8>> {
        const RELATIVE: &str = "`source:` paths are relative to the file that names them";
        let path = self.dir.join(relative);
        let unreadable = |ctx: &mut Self, e: std::io::Error| {
            ctx.error(
                path_field,
                format!("cannot read `{}`: {e}", path.display()),
                "this file",
            )
            .help = Some(RELATIVE.into());
        };
        let resolved = match path.canonicalize() {
            Ok(resolved) => resolved,
            Err(e) => {
                unreadable(self, e);
                return None;
            }
        };
        let own_dir = self.dir.canonicalize().ok();
        let inside = self
            .roots
            .iter()
            .chain(own_dir.as_ref())
            .any(|root| resolved.starts_with(root));
        if !inside && exposure == Exposure::Shown && !self.allow_source_outside_config {
            self.error(
                path_field,
                format!(
                    "`{relative}` is `{}`, outside the configuration's directories",
                    resolved.display()
                ),
                "this file",
            )
            .help = Some(
                "the content of a file that is not sensitive is shown in plans (and CI logs and pull-request comments): move the file under a directory given on the command line, set `sensitive: true`, or pass --allow-source-outside-config".into(),
            );
            return None;
        }
        // The kernel's files hold the reviewer's or the operator's own secrets
        // (`/proc/self/environ`), never a configuration's value.
        if ["/proc", "/sys", "/dev"]
            .iter()
            .any(|root| resolved.starts_with(root))
        {
            self.error(
                path_field,
                format!(
                    "`{relative}` is `{}`, a file of the kernel's",
                    resolved.display()
                ),
                "this file",
            )
            .help = Some("name a regular file holding the value".into());
            return None;
        }
        if !resolved.is_file() {
            self.error(
                path_field,
                format!("`{}` is not a regular file", resolved.display()),
                "this file",
            )
            .help = Some(RELATIVE.into());
            return None;
        }
        match std::fs::read(&resolved) {
            Ok(bytes) => {
                self.digest.update(relative.as_bytes());
                if exposure != Exposure::Secret {
                    self.digest.update(&bytes);
                    self.digest.file(&resolved, &bytes);
                }
                Some(bytes)
            }
            Err(e) => {
                unreadable(self, e);
                None
            }
        }
    }
}
