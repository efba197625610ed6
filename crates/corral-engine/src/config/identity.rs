//! A configuration's identity: the random id, kept in [`FILE`] beside its documents, that
//! tells the hosts' records which configuration owns a project's name (see `project`).

use std::path::{Path, PathBuf};

/// The file, in the configuration's directory, that holds its id.
pub const FILE: &str = ".corral-project";

/// A configuration's identity: where it is kept and, once an apply made it, the id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `DIR/.corral-project`, DIR being the directory of the resource documents.
    pub file: PathBuf,
    /// `None` until the first apply of this configuration writes the file.
    pub id: Option<String>,
}

impl Identity {
    /// The identity kept in `dir`: the file's id if it exists. An unreadable or malformed
    /// file is an error (never silently another identity).
    pub fn read(dir: &Path) -> Result<Identity, IdentityError> {
        let file = dir.join(FILE);
        let id = match std::fs::read_to_string(&file) {
            Ok(text) => Some(parse(&text).map_err(|problem| IdentityError::Malformed {
                file: file.clone(),
                problem,
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(IdentityError::Unreadable { file, error }),
        };
        Ok(Identity { file, id })
    }

    /// The id, made and written into [`FILE`] when there is none yet (the first apply).
    /// Returns whether it was made now. The file is created, never replaced: should another
    /// process have made one meanwhile, that one is read.
    pub fn ensure(&mut self) -> Result<bool, IdentityError> {
        if self.id.is_some() {
            return Ok(false);
        }
        let id = new_id();
        let text = format!(
            "# corral: the identity of this configuration. Commit this file: it tells corral's\n# records on the hosts that this configuration owns its project's name, so that another\n# configuration under the same name is refused instead of deleting this one's resources.\n{id}\n"
        );
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        match written {
            Ok(()) => {
                self.id = Some(id);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                *self = Identity::read(self.file.parent().unwrap_or(Path::new(".")))?;
                Ok(false)
            }
            Err(error) => Err(IdentityError::Unwritable {
                file: self.file.clone(),
                error,
            }),
        }
    }
}

/// Why a configuration's identity file cannot be read or written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IdentityError {
    #[error("{} cannot be read: {error}", .file.display())]
    #[diagnostic(code(corral::project::unreadable), help("{RESTORE}"))]
    Unreadable {
        file: PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: std::io::Error,
    },
    #[error("{}: {problem}", .file.display())]
    #[diagnostic(code(corral::project::malformed), help("{RESTORE}"))]
    Malformed { file: PathBuf, problem: IdProblem },
    #[error("cannot write {}: {error}", .file.display())]
    #[diagnostic(
        code(corral::project::unwritable),
        help("an apply records on the hosts which configuration owns the project; make the configuration's directory writable")
    )]
    Unwritable {
        file: PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: std::io::Error,
    },
}

/// What to do about an identity file that cannot be read.
const RESTORE: &str = "`.corral-project` holds the configuration's id, as its first apply wrote it: restore it from version control";

/// What is wrong with the text of a [`FILE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdProblem {
    #[error("holds no id (one line of 8 to 64 letters, digits, `-` or `_`)")]
    NoId,
    #[error("holds more than one id line")]
    SeveralIds,
    #[error("`{0}` is not an id (8 to 64 letters, digits, `-` or `_`)")]
    NotAnId(String),
}

/// 16 random bytes in hex: what two configurations never share by accident.
fn new_id() -> String {
    hex::encode(crate::random::bytes::<16>())
}

/// The id in a [`FILE`]'s text: its one line that is neither blank nor a `#` comment.
fn parse(text: &str) -> Result<String, IdProblem> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(id) = lines.next() else {
        return Err(IdProblem::NoId);
    };
    if lines.next().is_some() {
        return Err(IdProblem::SeveralIds);
    }
    let valid = (8..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(IdProblem::NotAnId(id.to_owned()));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_one_id_line_and_is_made_once() {
        assert_eq!(parse("# note\n\n  abcdef0123  \n").unwrap(), "abcdef0123");
        for bad in [
            "",
            "# only\n",
            "a b c d e f g h\n",
            "short\n",
            "abcdefgh\nijklmnop\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut identity = Identity::read(dir.path()).unwrap();
        assert_eq!(identity.id, None);
        assert!(identity.ensure().unwrap());
        let id = identity.id.clone().unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(Identity::read(dir.path()).unwrap().id, Some(id.clone()));
        // Made once: a second ensure, or one racing the first, reads the file.
        assert!(!identity.ensure().unwrap());
        let mut late = Identity {
            file: identity.file.clone(),
            id: None,
        };
        assert!(!late.ensure().unwrap());
        assert_eq!(late.id, Some(id));
        std::fs::write(&identity.file, "no way\n").unwrap();
        assert!(Identity::read(dir.path())
            .unwrap_err()
            .to_string()
            .contains("is not an id"));
    }
}
