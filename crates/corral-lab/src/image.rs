//! The lab's host image: built once from Debian packages by `build-image.sh` (embedded in the
//! binary) and cached in the Docker engine under a tag derived from the recipe, so a changed
//! recipe rebuilds and an unchanged one is reused.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::docker::Docker;
use super::{apt_sources, tool, LabError};

/// The recipe. Everything that shapes the image lives in this one file.
const BUILD_SCRIPT: &str = include_str!("build-image.sh");
/// Name under which the recipe is written into the scratch directory.
const BUILD_SCRIPT_NAME: &str = "build-image.sh";
/// Lines of the build log quoted in an error.
const LOG_TAIL_LINES: usize = 30;

/// `corral-host:<first 12 hex digits of the recipe's sha256>`.
pub fn host_image_tag() -> String {
    let mut hasher = Sha256::new();
    for (name, text) in recipe_files() {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let digest = hex::encode(hasher.finalize());
    format!("corral-host:{}", &digest[..12])
}

fn recipe_files() -> [(&'static str, &'static str); 1] {
    [(BUILD_SCRIPT_NAME, BUILD_SCRIPT)]
}

/// Returns the ID of the host image, building it first if the engine lacks it.
/// The build's output goes to `log`.
pub(crate) fn ensure_host_image(docker: &Docker, log: &Path) -> Result<String, LabError> {
    let tag = host_image_tag();
    if let Some(id) = docker.image_id(&tag)? {
        eprintln!("host image {tag} is cached");
        return Ok(id);
    }
    tool::require("debootstrap")?;
    if !is_root() {
        return Err(LabError::NeedsRoot { tag });
    }
    let mirror = apt_sources::find_mirror()?;
    let scratch = ScratchDir::create()?;
    for (name, text) in recipe_files() {
        let path = scratch.path.join(name);
        std::fs::write(&path, text).map_err(|source| LabError::Io {
            action: "write",
            path,
            source,
        })?;
    }
    eprintln!(
        "building host image {tag} from {mirror} (1–3 minutes; log: {})",
        log.display()
    );
    let started = Instant::now();
    run_build(docker, &scratch.path, &mirror, &tag, log)?;
    drop(scratch);
    let id = docker.image_id(&tag)?.ok_or_else(|| LabError::ImageBuild {
        tag: tag.clone(),
        log: log.to_owned(),
        tail: "the build finished but the image is not there".to_owned(),
    })?;
    eprintln!(
        "built host image {tag} in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(id)
}

/// Runs the recipe, writing all its output to `log`, echoing its `==>` steps to stderr and
/// keeping the last lines for the error.
fn run_build(
    docker: &Docker,
    workdir: &Path,
    mirror: &str,
    tag: &str,
    log: &Path,
) -> Result<(), LabError> {
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| LabError::Io {
            action,
            path,
            source,
        }
    };
    let mut log_file = std::fs::File::create(log).map_err(io_err("create", log))?;
    let stderr_file = log_file.try_clone().map_err(io_err("open", log))?;
    let lock = std::env::temp_dir().join("corral-host-image.lock");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut search = std::env::split_paths(&path).collect::<Vec<_>>();
    search.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    let mut cmd = Command::new("bash");
    cmd.arg(workdir.join(BUILD_SCRIPT_NAME))
        .arg(workdir)
        .arg(mirror)
        .arg(tag)
        .arg(docker.program())
        .arg(&lock)
        .env(
            "PATH",
            std::env::join_paths(search).unwrap_or_else(|_| path.clone()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_file));
    let mut child = cmd.spawn().map_err(|e| tool::spawn_error(&cmd, e))?;
    let mut tail = VecDeque::with_capacity(LOG_TAIL_LINES);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log_file, "{line}");
            if let Some(step) = line.strip_prefix("==> ") {
                eprintln!("  {step}");
            }
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    let status = child.wait().map_err(|e| tool::spawn_error(&cmd, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(LabError::ImageBuild {
            tag: tag.to_owned(),
            log: log.to_owned(),
            tail: Vec::from(tail).join("\n"),
        })
    }
}

/// Whether corral runs as root (debootstrap, chroot and mount need it).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A scratch directory for one build. The recipe removes the root file system it builds
/// there itself; dropping this unmounts whatever an interrupted build left mounted below it
/// and removes it, but never removes anything while a mount remains.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    const PREFIX: &'static str = "corral-host-build-";

    fn create() -> Result<Self, LabError> {
        Self::remove_abandoned();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("{}{}-{nanos:09}", Self::PREFIX, std::process::id()));
        std::fs::create_dir(&path).map_err(|source| LabError::Io {
            action: "create",
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    /// Scratch directories of builds whose `corral` was killed: the recipe removes its root
    /// file system itself, but not the directory holding it. One that still holds a root file
    /// system may belong to a recipe still running, and is left alone.
    fn remove_abandoned() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let pid = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(Self::PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            let Some(pid) = pid else { continue };
            let owner_alive = Path::new("/proc").join(pid.to_string()).exists();
            if !owner_alive && path.is_dir() && !path.join("rootfs").exists() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        for mount in mounts_below(&self.path) {
            let quiet = Command::new("umount")
                .arg(&mount)
                .stderr(Stdio::null())
                .status();
            if !quiet.is_ok_and(|s| s.success()) {
                let _ = Command::new("umount").arg("-l").arg(&mount).status();
            }
        }
        let left = mounts_below(&self.path);
        if left.is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!(
                "warning: left {} in place: still mounted below it: {}",
                self.path.display(),
                left.iter()
                    .map(|m| m.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

/// Mount points at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|mount| mount.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// `/proc/mounts` writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_twelve_hex_digits_of_the_recipe() {
        let tag = host_image_tag();
        let digits = tag.strip_prefix("corral-host:").expect("prefix");
        assert_eq!(digits.len(), 12);
        assert!(digits.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(tag, host_image_tag(), "stable");
    }

    #[test]
    fn recipe_installs_what_the_lab_promises() {
        for needle in [
            "openssh-server",
            "systemd-sysv",
            "docker.io",
            "glusterfs-server",
            "busybox-static",
            "--download-only tree",
            "systemctl enable glusterd ssh docker",
            "local/busybox:1",
            "CMD [\"/sbin/init\"]",
        ] {
            assert!(BUILD_SCRIPT.contains(needle), "recipe lacks {needle}");
        }
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b/proc"), "/tmp/a b/proc");
        assert_eq!(unescape_mount_path(r"/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/odd\0"), r"/odd\0");
    }
}
