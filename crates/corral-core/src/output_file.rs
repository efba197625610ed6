//! The files commands are told to write (`plan -o`, `facts -o`, `man --dir`): one function,
//! [`write`], decides how. A regular file (or a name not yet taken) is written through a
//! private temporary file and a rename, so a reader never sees half of it; anything else the
//! name may be is never replaced by a file: `-` is stdout, a character device (`/dev/null`)
//! or a FIFO is written in place, a link is written through to its target, and a directory
//! (or a link to one), a block device or a socket is refused. Run as root, a rename over
//! `/dev/null` would break every program on the machine.
//!
//! It may not decide what to write, nor print anything but the bytes it is given.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The name that means stdout.
pub const STDOUT: &str = "-";

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OutputFileError {
    #[error("`{0}` is a directory; give the path of a file in it")]
    #[diagnostic(code(corral::output::directory))]
    Directory(PathBuf),
    #[error("`{0}` is a link to a directory; give the path of a file in it")]
    #[diagnostic(code(corral::output::link_to_directory))]
    LinkToDirectory(PathBuf),
    #[error(
        "`{0}` is a link to `{1}`, which does not exist; remove the link or give another path"
    )]
    #[diagnostic(code(corral::output::dangling_link))]
    DanglingLink(PathBuf, PathBuf),
    #[error("`{0}` is a {1}, which corral does not write to; give the path of a file")]
    #[diagnostic(code(corral::output::unwritable))]
    Unwritable(PathBuf, &'static str),
    #[error("cannot write `{path}`: {error}")]
    #[diagnostic(code(corral::output::io))]
    Io {
        path: PathBuf,
        /// In the message already: not a `source`, which a report would print again.
        error: std::io::Error,
    },
}

/// How [`write`] wrote the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// To stdout (`-`).
    Stdout,
    /// Into what is already there (a device, a FIFO, a link's target), as it is.
    InPlace,
    /// As a new regular file (mode 0600) renamed over the name.
    Replaced,
}

/// Whether `path` means stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT
}

/// How a path is written, decided from what is there now.
enum How {
    Stdout,
    /// A temporary file renamed over the name.
    Replace,
    /// Opened as it is, through a link if it is one; a regular file (a link's target) is
    /// truncated. `node` is the device and inode of what is not a link, which the opened
    /// file must still be.
    InPlace {
        truncate: bool,
        node: Option<(u64, u64)>,
    },
}

fn classify(path: &Path) -> Result<How, OutputFileError> {
    let io = |error| OutputFileError::Io {
        path: path.to_owned(),
        error,
    };
    if is_stdout(path) {
        return Ok(How::Stdout);
    }
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(How::Replace),
        Err(e) => return Err(io(e)),
    };
    let here = metadata.file_type();
    if here.is_file() {
        return Ok(How::Replace);
    }
    if here.is_dir() {
        return Err(OutputFileError::Directory(path.to_owned()));
    }
    let target = if here.is_symlink() {
        match fs::metadata(path) {
            Ok(metadata) => metadata.file_type(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let to = fs::read_link(path).unwrap_or_default();
                return Err(OutputFileError::DanglingLink(path.to_owned(), to));
            }
            Err(e) => return Err(io(e)),
        }
    } else {
        here
    };
    if target.is_dir() {
        return Err(OutputFileError::LinkToDirectory(path.to_owned()));
    }
    if target.is_block_device() {
        // Nobody means a plan on a raw disk; a typo must not cost one.
        return Err(OutputFileError::Unwritable(path.to_owned(), "block device"));
    }
    if target.is_socket() {
        return Err(OutputFileError::Unwritable(path.to_owned(), "socket"));
    }
    // A character device, a FIFO, or a link to one of those or to a regular file (such as
    // `/dev/stdout`): written as it is, never created, never replaced.
    Ok(How::InPlace {
        truncate: target.is_file(),
        node: (!here.is_symlink()).then(|| (metadata.dev(), metadata.ino())),
    })
}

/// Whether `path` can be written as [`write`] would: an error for what it refuses, before a
/// command spends minutes reading hosts to write it.
pub fn check(path: &Path) -> Result<(), OutputFileError> {
    classify(path).map(|_| ())
}

/// Writes `bytes` to `path` as the module documentation says. A new file gets mode 0600:
/// plans and facts describe hosts in detail.
pub fn write(path: &Path, bytes: &[u8]) -> Result<Written, OutputFileError> {
    let io = |error| OutputFileError::Io {
        path: path.to_owned(),
        error,
    };
    match classify(path)? {
        How::Stdout => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|()| stdout.flush())
                .map_err(io)?;
            Ok(Written::Stdout)
        }
        How::Replace => replace(path, bytes).map(|()| Written::Replaced),
        How::InPlace { truncate, node } => {
            let mut file = OpenOptions::new()
                .write(true)
                .truncate(truncate)
                .open(path)
                .map_err(io)?;
            // What was checked is what is written: a link put there since is refused.
            let opened = file.metadata().map_err(io)?;
            if node.is_some_and(|node| node != (opened.dev(), opened.ino())) {
                return Err(io(std::io::Error::other(
                    "it was replaced while corral was writing it",
                )));
            }
            file.write_all(bytes)
                .and_then(|()| file.flush())
                .map_err(io)?;
            Ok(Written::InPlace)
        }
    }
}

/// Writes a new file of our own next to `path` (never following what is there) and
/// renames it over `path`; the temporary file is removed if anything fails.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), OutputFileError> {
    let io = |error| OutputFileError::Io {
        path: path.to_owned(),
        error,
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".corral-tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::Command;

    fn run(program: &str, args: &[&std::ffi::OsStr]) {
        let status = Command::new(program).args(args).status().unwrap();
        assert!(status.success(), "{program} {args:?}");
    }

    /// `-o /dev/null` as root replaced `/dev/null` with a regular file. A character device
    /// (the null device, made with mknod in the test's directory) stays one, and takes the
    /// bytes; so does one reached through a link.
    #[test]
    fn a_character_device_is_written_in_place_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        run(
            "mknod",
            &[null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()],
        );
        let before = fs::symlink_metadata(&null).unwrap();
        assert_eq!(write(&null, b"{}\n").unwrap(), Written::InPlace);
        let after = fs::symlink_metadata(&null).unwrap();
        assert!(after.file_type().is_char_device(), "{after:?}");
        assert_eq!((after.ino(), after.rdev()), (before.ino(), before.rdev()));
        let link = dir.path().join("to-null");
        std::os::unix::fs::symlink(&null, &link).unwrap();
        assert_eq!(write(&link, b"{}\n").unwrap(), Written::InPlace);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            2,
            "no temporary file is left: {leftovers:?}"
        );
    }

    /// A FIFO is written in place: a reader gets the bytes and the FIFO stays a FIFO.
    #[test]
    fn a_fifo_is_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plan.fifo");
        run("mkfifo", &[fifo.as_os_str()]);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        assert_eq!(write(&fifo, b"the plan\n").unwrap(), Written::InPlace);
        assert_eq!(reader.join().unwrap(), b"the plan\n");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }

    /// A directory, or a link to one, is refused with an error that says so, and nothing
    /// is written in it.
    #[test]
    fn a_directory_or_a_link_to_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("plans");
        fs::create_dir(&sub).unwrap();
        assert!(check(&sub).is_err(), "refused before anything is read");
        let error = write(&sub, b"x").unwrap_err();
        assert!(matches!(error, OutputFileError::Directory(_)), "{error}");
        assert!(error.to_string().contains("is a directory"), "{error}");
        let link = dir.path().join("latest");
        std::os::unix::fs::symlink(&sub, &link).unwrap();
        let error = write(&link, b"x").unwrap_err();
        assert!(
            error.to_string().contains("is a link to a directory"),
            "{error}"
        );
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 0);
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let error = write(&dangling, b"x").unwrap_err();
        assert!(
            error.to_string().contains("which does not exist"),
            "{error}"
        );
        assert!(!dir.path().join("nowhere").exists());
    }

    /// A new name or a regular file: a new 0600 file renamed over it (a reader of the old
    /// file keeps the old content); a link to a regular file is written through.
    #[test]
    fn a_regular_file_is_replaced_by_a_private_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("facts.json");
        assert_eq!(write(&path, b"one").unwrap(), Written::Replaced);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let old = fs::File::open(&path).unwrap();
        assert_eq!(write(&path, b"two").unwrap(), Written::Replaced);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::io::read_to_string(old).unwrap(), "one");
        let link = dir.path().join("current.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(write(&link, b"three").unwrap(), Written::InPlace);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_dash_is_stdout() {
        assert!(is_stdout(Path::new("-")));
        assert!(!is_stdout(Path::new("./-")));
    }
}
