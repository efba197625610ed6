//! Running the external programs the lab drives (docker, ssh-keygen, ssh-keyscan, ssh,
//! debootstrap) and turning their failures into [`LabError`]s that name the command and carry
//! its stderr. Nothing here knows what the commands are for.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::LabError;

/// Directories searched after `PATH`: debootstrap and friends live in sbin, which a non-root
/// `PATH` often lacks.
const SBIN_DIRS: [&str; 4] = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin"];

/// The command line of `cmd` as a shell would read it, for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    match shlex::try_quote(&word) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => format!("{word:?}"),
    }
}

/// Runs `cmd` to completion and returns its output whatever its exit status; fails only when
/// it cannot be started (a missing program becomes [`LabError::ToolMissing`]).
pub(crate) fn output(cmd: &mut Command) -> Result<Output, LabError> {
    cmd.output().map_err(|source| spawn_error(cmd, source))
}

/// Runs `cmd` and returns its stdout; a non-zero exit is an error carrying its stderr.
pub(crate) fn checked(cmd: &mut Command) -> Result<String, LabError> {
    let out = output(cmd)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(cmd, &out))
    }
}

/// The error for a command that ran and exited unsuccessfully.
pub(crate) fn failed(cmd: &Command, out: &Output) -> LabError {
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    LabError::CommandFailed {
        command: describe(cmd),
        status: out.status.to_string(),
        stderr,
    }
}

pub(crate) fn spawn_error(cmd: &Command, source: std::io::Error) -> LabError {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    if source.kind() == std::io::ErrorKind::NotFound {
        LabError::ToolMissing {
            help: install_help(&program),
            program,
        }
    } else {
        LabError::Spawn {
            command: describe(cmd),
            source,
        }
    }
}

/// How to get `program` on Debian.
pub(crate) fn install_help(program: &str) -> String {
    let package = match program {
        "docker" | "dockerd" => "docker.io",
        "ssh" | "ssh-keygen" | "ssh-keyscan" => "openssh-client",
        "debootstrap" => "debootstrap",
        other => other,
    };
    format!(
        "run scripts/install-deps.sh, or install it yourself: \
         apt-get update && apt-get install -y {package}"
    )
}

/// Finds `program` on `PATH` or in the usual sbin directories.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Fails with [`LabError::ToolMissing`] unless `program` can be found.
pub(crate) fn require(program: &str) -> Result<PathBuf, LabError> {
    find_program(program).ok_or_else(|| LabError::ToolMissing {
        program: program.to_owned(),
        help: install_help(program),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_words_a_shell_would_split() {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.args(["run", "--name", "corral-n1", "-c", "a b"]);
        assert_eq!(
            describe(&cmd),
            "/usr/bin/docker run --name corral-n1 -c 'a b'"
        );
    }

    #[test]
    fn missing_program_is_reported_with_install_help() {
        let mut cmd = Command::new("corral-no-such-program-xyz");
        match output(&mut cmd) {
            Err(LabError::ToolMissing { program, help }) => {
                assert_eq!(program, "corral-no-such-program-xyz");
                assert!(help.contains("install-deps.sh"), "{help}");
            }
            other => panic!("expected ToolMissing, got {other:?}"),
        }
    }

    #[test]
    fn failed_command_carries_its_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        match checked(&mut cmd) {
            Err(LabError::CommandFailed {
                command, stderr, ..
            }) => {
                assert_eq!(command, "sh -c 'echo boom >&2; exit 3'");
                assert_eq!(stderr, "boom");
            }
            other => panic!("expected CommandFailed, got {other:?}"),
        }
    }
}
