//! SSH with the `openssh` crate: one master connection per machine (ControlMaster), every
//! command multiplexed over it through the native mux protocol.
//!
//! Host keys are checked strictly (`StrictHostKeyChecking=yes`): corral never adds or accepts
//! an unknown key by itself. `~/.ssh/config` (or `--ssh-config`), the agent and the machine's
//! `ssh:` settings are honoured, in that order of increasing precedence.
//!
//! No master outlives corral. The crate would start them with `ControlPersist=yes` and only
//! ask them to stop listening when closed, which leaves a master running for as long as a
//! hung remote command keeps a session open. So corral starts each master itself, in a
//! control directory of its own ([`Masters`]: mode 0700, one per process, removed at the
//! end), and:
//! - ends every master with `ssh -O exit` (which drops open sessions too) when its host is
//!   closed or dropped, at the end of the run, on an interrupt and on a panic;
//! - keeps one idle connection to each master's control socket (a tether) for as long as
//!   the process lives, and starts masters with `ControlPersist=10s`: a master whose tether
//!   is gone (corral was killed with SIGKILL) ends 10 s after its last session.
//!
//! Unless the operator asks for warm connections (`--keep-connections DURATION`): then the
//! masters live in one control directory per user ([`kept_dir`]: mode 0700, owned by the
//! user, refused otherwise), start with `ControlPersist=DURATION`, and are left running at
//! the end of a run for the next one to reuse. A master is found by a key of everything
//! that shapes the connection ([`settings_key`]: the machine, `ssh -G`'s resolved settings,
//! the known-hosts files' contents and the identity files' metadata), so a changed host
//! key, address, user, port, key or ssh_config never reuses a master made with the old
//! ones. A run never ends a kept master (another corral may be using it), not even when
//! interrupted: it lets go of it; `corral connections close` ends them all.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openssh::Session;

use super::capture::{self, Capture, STDERR_TAIL};
use super::{launcher, send_script, BoxFuture, Host, Limits, OutputBound, ScriptOutput};
use super::{LoginError, TransportError};
use crate::base::machine::Machine;

/// How long a master stays after its last session once its tether is gone.
const CONTROL_PERSIST_SECONDS: u64 = 10;

/// How long ending one master (`ssh -O exit`) may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A control socket path must fit in `sun_path` (108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 100;

/// Room a control directory leaves for a file name in it (`<pid>.<index>.log`, or a kept
/// master's key).
const SOCKET_NAME_ROOM: usize = 32;

/// Hex digits of a kept master's key (96 bits).
const KEY_HEX_DIGITS: usize = 24;

/// Settings shared by every connection of a run.
#[derive(Clone)]
pub struct SshOptions {
    /// Passed to ssh as `-F`.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where the masters live and how they end.
    pub masters: Arc<Masters>,
}

/// The SSH masters of this process and their control directory: every master corral
/// starts is registered here before it starts, so that it can be ended however corral ends.
#[derive(Debug)]
pub struct Masters {
    dir: PathBuf,
    /// `Some(idle)`: warm connections, kept for `idle` after their last use.
    keep: Option<Duration>,
    next: AtomicUsize,
    open: Mutex<BTreeMap<usize, Master>>,
    ended: AtomicBool,
}

#[derive(Debug)]
struct Master {
    socket: PathBuf,
    /// Held open for the life of the process; see the module documentation.
    tether: Option<UnixStream>,
    /// A warm master at its shared socket: never ended by a run (another corral may be
    /// using it), only let go of.
    kept: bool,
    /// The shared socket's inode when this run took it, so that a run that finds it broken
    /// removes that name only if it still is that socket.
    inode: Option<u64>,
}

impl Masters {
    /// Makes this process's control directory (mode 0700) in the first of
    /// `$XDG_RUNTIME_DIR`, the temporary directory and `/tmp` where socket paths fit.
    pub fn create() -> std::io::Result<Arc<Masters>> {
        let mut parents: Vec<PathBuf> = Vec::new();
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            parents.push(PathBuf::from(runtime));
        }
        parents.push(std::env::temp_dir());
        parents.push(PathBuf::from("/tmp"));
        let mut last_error = None;
        for parent in parents.iter().filter(|p| p.is_absolute()) {
            match Masters::create_in(parent) {
                Ok(masters) => return Ok(masters),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no directory for SSH sockets")))
    }

    /// Makes a control directory in `parent`.
    pub fn create_in(parent: &Path) -> std::io::Result<Arc<Masters>> {
        let pid = std::process::id();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = parent.join(format!("corral-{pid}-{:x}", nanos ^ attempt));
            if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
                return Err(std::io::Error::other(format!(
                    "{} is too long a path for SSH control sockets",
                    parent.display()
                )));
            }
            // `create` (not `create_all`) fails on anything already there, link or not.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    remove_stale(parent, &dir);
                    return Ok(Masters::in_dir(dir, None));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("cannot make a control directory"))
    }

    /// Warm connections: masters in the user's kept directory ([`kept_dir`]), started
    /// with `ControlPersist` of `idle` and left running at the end of the run.
    pub fn kept(idle: Duration) -> std::io::Result<Arc<Masters>> {
        Ok(Masters::in_dir(kept_dir(true)?, Some(idle)))
    }

    /// No master yet, in `dir` (made and checked already), kept for `keep` if `Some`.
    fn in_dir(dir: PathBuf, keep: Option<Duration>) -> Arc<Masters> {
        Arc::new(Masters {
            dir,
            keep,
            next: AtomicUsize::new(0),
            open: Mutex::new(BTreeMap::new()),
            ended: AtomicBool::new(false),
        })
    }

    /// The control directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open(&self) -> MutexGuard<'_, BTreeMap<usize, Master>> {
        // A panic while holding the lock leaves the map as it was; ending masters must work
        // even then (the panic hook ends them).
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a master about to start: its index, control socket and log file.
    fn reserve(&self) -> Result<(usize, PathBuf, PathBuf), TransportError> {
        if self.ended.load(Ordering::SeqCst) {
            return Err(TransportError::Failed(
                "corral is ending its SSH connections".into(),
            ));
        }
        let index = self.next.fetch_add(1, Ordering::SeqCst);
        // The pid keeps the names of processes sharing the kept directory apart.
        let socket = self.dir.join(format!("{}.{index}", std::process::id()));
        let log = self.log(index);
        self.open().insert(
            index,
            Master {
                socket: socket.clone(),
                tether: None,
                kept: false,
                inode: None,
            },
        );
        Ok((index, socket, log))
    }

    fn tie(&self, index: usize, tether: UnixStream) {
        if let Some(master) = self.open().get_mut(&index) {
            master.tether = Some(tether);
        }
    }

    /// Registers a running kept master found at `socket`, tethered by `tether`.
    fn adopt(&self, socket: &Path, tether: UnixStream) -> Result<usize, TransportError> {
        let (index, _, _) = self.reserve()?;
        if let Some(master) = self.open().get_mut(&index) {
            master.socket = socket.to_owned();
            master.tether = Some(tether);
            master.kept = true;
            master.inode = inode_of(socket);
        }
        Ok(index)
    }

    /// Makes the master `index` (just started at its own socket) the kept master at
    /// `shared`, by a hard link as ssh does for its own ControlPath. Another corral that
    /// linked one first wins; this master then stays private to the run. Returns the socket
    /// to use.
    fn share(&self, index: usize, shared: &Path) -> PathBuf {
        let mut open = self.open();
        let Some(master) = open.get_mut(&index) else {
            return shared.to_owned();
        };
        if std::fs::hard_link(&master.socket, shared).is_ok() {
            let _ = std::fs::remove_file(&master.socket);
            master.socket = shared.to_owned();
            master.kept = true;
            master.inode = inode_of(shared);
        }
        master.socket.clone()
    }

    /// The commands that end every registered master of this run's own (not a kept one)
    /// whose socket exists, one each.
    pub fn exit_commands(&self) -> Vec<std::process::Command> {
        self.own_sockets().iter().map(|s| exit_command(s)).collect()
    }

    /// The control sockets of every registered master of this run's own (not a kept one)
    /// that exist.
    fn own_sockets(&self) -> Vec<PathBuf> {
        self.open()
            .values()
            .filter(|m| !m.kept && m.socket.exists())
            .map(|m| m.socket.clone())
            .collect()
    }

    /// The log file of master `index` (its socket's name and `.log`).
    fn log(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{}.{index}.log", std::process::id()))
    }

    /// Ends one master now (synchronously, within a few seconds); a kept one is only let
    /// go of: another corral may be running commands over it. This run's sessions on it
    /// end with the run (the host's watchdog ends what they started).
    fn end(&self, index: usize) {
        let master = self.open().remove(&index);
        if let Some(master) = master.filter(|m| !m.kept) {
            if master.socket.exists() {
                end_masters(&[master.socket], EXIT_TIMEOUT);
            }
            let _ = std::fs::remove_file(self.log(index));
        }
    }

    /// [`Masters::end`], without blocking the runtime.
    async fn end_async(&self, index: usize) {
        let master = self.open().remove(&index);
        if let Some(master) = master.filter(|m| !m.kept) {
            if master.socket.exists() {
                let socket = [master.socket];
                let _ =
                    tokio::task::spawn_blocking(move || end_masters(&socket, EXIT_TIMEOUT)).await;
            }
            let _ = std::fs::remove_file(self.log(index));
        }
    }

    /// A kept master that failed this run (its host may have rebooted): its shared name is
    /// removed, if it still is the socket this run took, so that the next connection makes
    /// a new master; the old one ends by itself (its connection is gone, or at its idle
    /// time), and whoever still uses it keeps it until then.
    fn unshare(&self, index: usize) {
        let master = self.open().remove(&index);
        if let Some(master) = master.filter(|m| m.kept) {
            if master.inode.is_some() && inode_of(&master.socket) == master.inode {
                let _ = std::fs::remove_file(&master.socket);
            }
        }
    }

    /// Ends every master if the main thread panics (the process is then ending). A panic in
    /// a task is caught by the runtime and the run goes on, so it ends nothing; the run
    /// ends the masters itself.
    pub fn end_on_panic(self: &Arc<Self>) {
        let masters = Arc::downgrade(self);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("main") {
                if let Some(masters) = masters.upgrade() {
                    masters.end_all();
                }
            }
            previous(info);
        }));
    }

    /// Ends every master of this run's own at once, lets go of the kept ones (they stay
    /// for the next run, or for another corral using them now), and removes the control
    /// directory (a private one) or this run's logs in it (the kept one). For the end of a
    /// run, an interrupt and a panic alike; safe to call from a signal path, and more than
    /// once; no master can start afterwards.
    pub fn end_all(&self) {
        self.ended.store(true, Ordering::SeqCst);
        end_masters(&self.own_sockets(), EXIT_TIMEOUT);
        let ended = std::mem::take(&mut *self.open());
        if self.keep.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        for index in ended.keys() {
            let _ = std::fs::remove_file(self.log(*index));
        }
    }
}

impl Drop for Masters {
    fn drop(&mut self) {
        self.end_all();
    }
}

/// The inode of the file at `path` (not followed), if there is one.
fn inode_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.ino())
}

/// The user's directory of kept masters: `$XDG_RUNTIME_DIR/corral-connections`, else
/// `corral-connections-<uid>` in the temporary directory. Made (mode 0700) when `create`;
/// refused unless it is a directory (not a link) of this user's that no one else can
/// enter: anyone who could put a socket there could stand in for a host.
pub fn kept_dir(create: bool) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")?.uid();
    let name = format!("corral-connections-{uid}");
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() => runtime.join("corral-connections"),
        _ => std::env::temp_dir().join(&name),
    };
    // A temporary directory too deep for socket paths (CI runners' work trees): /tmp.
    let dir = if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
        Path::new("/tmp").join(&name)
    } else {
        dir
    };
    check_kept_dir(dir, uid, create)
}

/// [`kept_dir`] at `dir`, for the user `uid`.
fn check_kept_dir(dir: PathBuf, uid: u32, create: bool) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if dir.as_os_str().len() + SOCKET_NAME_ROOM > MAX_SOCKET_PATH {
        return Err(std::io::Error::other(format!(
            "{} is too long a path for SSH control sockets",
            dir.display()
        )));
    }
    if create {
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    let problem = if !meta.is_dir() {
        Some("it is not a directory".to_owned())
    } else if meta.uid() != uid {
        Some(format!(
            "it belongs to uid {}, not to uid {uid}",
            meta.uid()
        ))
    } else if meta.permissions().mode() & 0o077 != 0 {
        Some(format!(
            "its mode is {:o}: others can enter it",
            meta.permissions().mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(std::io::Error::other(format!(
            "refusing {} for SSH connections: {problem} (remove it, or fix it with chmod 700)",
            dir.display()
        ))),
        None => Ok(dir),
    }
}

/// `corral connections close`: ends every kept master of this user. Returns how many were
/// running.
pub fn close_kept() -> std::io::Result<usize> {
    use std::os::unix::fs::FileTypeExt;
    let dir = match kept_dir(false) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut running = Vec::new();
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        if of_a_running_corral(&path) {
            continue;
        }
        let is_socket = entry.file_type().is_ok_and(|t| t.is_socket());
        if is_socket && UnixStream::connect(&path).is_ok() {
            running.push(path);
        } else if is_socket || path.extension().is_some_and(|e| e == "log") {
            let _ = std::fs::remove_file(&path);
        }
    }
    end_masters(&running, EXIT_TIMEOUT);
    for socket in &running {
        let _ = std::fs::remove_file(socket);
    }
    Ok(running.len())
}

/// Whether `path` is a file of a corral still running: `<pid>.<index>` (a master that has
/// no shared name, or its log) whose process is alive. Those end with their run.
fn of_a_running_corral(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('.'))
        .and_then(|(pid, _)| process_alive(pid))
        == Some(true)
}

/// Whether the process `pid` (digits) runs, as `/proc` shows; `None` when `pid` is not a
/// process id.
fn process_alive(pid: &str) -> Option<bool> {
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Path::new("/proc").join(pid).exists())
}

/// The key of a kept master for `machine`: a digest of everything that shapes its
/// connection. `ssh -G` resolves the settings as the connection would (ssh_config, Match
/// and Include, the command-line options); the known-hosts files it names are read whole,
/// so a changed host key changes the key; the identity files it names count by size and
/// modification time. The connect timeout is left out: it shapes no live connection.
pub async fn settings_key(
    machine: &Machine,
    options: &SshOptions,
) -> Result<String, TransportError> {
    let mut command = std::process::Command::new("ssh");
    command.arg("-G");
    connection_options(&mut command, machine, options);
    let output = tokio::process::Command::from(command)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| TransportError::Failed(format!("cannot run ssh -G: {e}")))?;
    if !output.status.success() {
        return Err(TransportError::Failed(format!(
            "ssh -G cannot read the SSH settings of {}: {}",
            machine.name,
            crate::base::text::tail(String::from_utf8_lossy(&output.stderr).trim(), 300)
        )));
    }
    let mut settings = String::from_utf8_lossy(&output.stdout).into_owned();
    // A master lives as long as it was started to: a shorter --keep-connections must not
    // reuse one started for a day.
    settings.push_str(&format!("corral-keep {:?}\n", options.masters.keep));
    Ok(key_of(&machine.name, &settings, |path| {
        let path = crate::base::machine::expand_home(path);
        std::fs::read(&path).ok()
    }))
}

/// [`settings_key`] from `ssh -G`'s output, reading files with `read`.
fn key_of(machine: &str, settings: &str, read: impl Fn(&str) -> Option<Vec<u8>>) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut hasher = Sha256::new();
    hasher.update(machine.as_bytes());
    hasher.update([0]);
    for line in settings.lines() {
        let (name, value) = line.split_once(' ').unwrap_or((line, ""));
        if name == "connecttimeout" {
            continue;
        }
        hasher.update(line.as_bytes());
        hasher.update([b'\n']);
        let files: Vec<&str> = match name {
            "userknownhostsfile" | "globalknownhostsfile" => value.split_whitespace().collect(),
            _ => Vec::new(),
        };
        for file in files {
            match read(file) {
                // A `%` token ssh left unexpanded names a file corral cannot read as ssh
                // would: never reuse such a master.
                _ if file.contains('%') => hasher.update(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                        .to_le_bytes(),
                ),
                Some(bytes) => hasher.update(Sha256::digest(&bytes)),
                None => hasher.update(b"absent"),
            }
        }
        if matches!(name, "identityfile" | "certificatefile") {
            let meta = std::fs::metadata(crate::base::machine::expand_home(value)).ok();
            let stamp = meta.map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
            hasher.update(format!("{stamp:?}").as_bytes());
        }
    }
    let digest = hex::encode(hasher.finalize());
    digest[..KEY_HEX_DIGITS].to_owned()
}

/// Removes the control directories that processes killed with SIGKILL left in `parent`
/// (`corral-<pid>-…` of ours, whose process is gone; their masters ended by themselves).
/// Without `/proc` nothing is known to be gone, so nothing is removed.
fn remove_stale(parent: &Path, ours: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(ours).map(|m| m.uid()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(alive) = name
            .to_str()
            .and_then(|n| n.strip_prefix("corral-"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| process_alive(pid))
        else {
            continue;
        };
        let path = entry.path();
        let ours_to_remove = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid)
            && path != ours
            && !alive;
        if ours_to_remove {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// `ssh -O exit` for a control socket: the master ends at once, open sessions included.
/// No configuration file is read (`-F /dev/null`): only the socket matters.
fn exit_command(socket: &Path) -> std::process::Command {
    let mut command = std::process::Command::new("ssh");
    command
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-S"])
        .arg(socket)
        .args(["-O", "exit", "corral-master"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Ends the masters at `sockets` at once and waits, within `timeout`, until each has ended
/// (closed its control socket). corral speaks ssh's control protocol itself
/// (PROTOCOL.mux: a hello each way, then `MUX_C_TERMINATE`, what `ssh -O exit` sends):
/// starting an `ssh -O exit` per master cost each run 30-80 ms of wall time on a loaded
/// machine, more than the rest of corral's own work. A socket that does not answer like a
/// master gets its `ssh -O exit` after all.
fn end_masters(sockets: &[PathBuf], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut ending = Vec::new();
    let mut fallback = Vec::new();
    for socket in sockets {
        match send_terminate(socket, timeout) {
            Ok(stream) => ending.push(stream),
            Err(_) => fallback.push(exit_command(socket)),
        }
    }
    std::thread::scope(|scope| {
        if !fallback.is_empty() {
            scope.spawn(|| run_all(fallback, timeout));
        }
        for stream in ending {
            wait_for_close(stream, deadline);
        }
    });
}

/// The control protocol's words (PROTOCOL.mux in OpenSSH's sources).
const MUX_MSG_HELLO: u32 = 0x0000_0001;
const MUX_VERSION: u32 = 4;
const MUX_C_TERMINATE: u32 = 0x1000_0005;

/// Connects to the master at `socket`, sends its hello and the request to end, and reads
/// the master's hello: the stream, once a master answered.
fn send_terminate(socket: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    use std::io::{Read, Write};
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // Each packet is its length, then the message; the request id is 1.
    let request: Vec<u8> = [8, MUX_MSG_HELLO, MUX_VERSION, 8, MUX_C_TERMINATE, 1]
        .iter()
        .flat_map(|word: &u32| word.to_be_bytes())
        .collect();
    stream.write_all(&request)?;
    let mut hello = [0u8; 8];
    stream.read_exact(&mut hello)?;
    let length = u32::from_be_bytes([hello[0], hello[1], hello[2], hello[3]]);
    let kind = u32::from_be_bytes([hello[4], hello[5], hello[6], hello[7]]);
    if kind != MUX_MSG_HELLO || length < 8 {
        return Err(std::io::Error::other("not an SSH master's hello"));
    }
    Ok(stream)
}

/// Reads `stream` until the master closes it (it has ended; it may not answer the request
/// first) or `deadline` passes.
fn wait_for_close(mut stream: UnixStream, deadline: Instant) {
    use std::io::Read;
    let mut sink = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Runs `commands` at the same time and waits for them, killing any still running after
/// `timeout`.
fn run_all(commands: Vec<std::process::Command>, timeout: Duration) {
    let mut children: Vec<std::process::Child> = commands
        .into_iter()
        .filter_map(|mut c| c.spawn().ok())
        .collect();
    let started = Instant::now();
    while !children.is_empty() {
        children.retain_mut(|child| !matches!(child.try_wait(), Ok(Some(_)) | Err(_)));
        if started.elapsed() > timeout {
            for child in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An open connection to one machine; its master ends when it is closed or dropped.
pub struct SshHost {
    session: Session,
    index: usize,
    masters: Arc<Masters>,
    closed: bool,
    /// Runs over a kept master that an earlier run started.
    reused: bool,
    /// The `ssh` command line of a login of its own (no master, no control socket), to
    /// prove that a new connection still works after a change to sshd or the firewall.
    fresh_login: Vec<std::ffi::OsString>,
    /// Whom scripts run as, for the error when sudo wants a password.
    login: super::Login,
    /// Scripts running over this connection at once, kept under sshd's `MaxSessions`.
    sessions: tokio::sync::Semaphore,
}

impl SshHost {
    /// Starts the master connection, or with warm connections reuses the kept one made
    /// with the same settings. Dropping this future kills an `ssh` still connecting.
    pub async fn connect(
        machine: &Machine,
        options: &SshOptions,
    ) -> Result<SshHost, TransportError> {
        if options.masters.keep.is_none() {
            return SshHost::start(machine, options).await;
        }
        let key = settings_key(machine, options).await?;
        let shared = options.masters.dir.join(key);
        if let Some(host) = SshHost::reuse(machine, options, &shared)? {
            return Ok(host);
        }
        let mut host = SshHost::start(machine, options).await?;
        let socket = host.masters.share(host.index, &shared);
        host.session = Session::resume_mux(socket.into_boxed_path(), None);
        Ok(host)
    }

    /// The kept master at `shared`, if one runs there; a socket no master answers on
    /// (its master ended) is removed.
    fn reuse(
        machine: &Machine,
        options: &SshOptions,
        shared: &Path,
    ) -> Result<Option<SshHost>, TransportError> {
        let tether = match UnixStream::connect(shared) {
            Ok(tether) => tether,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let _ = std::fs::remove_file(shared);
                }
                return Ok(None);
            }
        };
        let masters = options.masters.clone();
        let index = masters.adopt(shared, tether)?;
        Ok(Some(SshHost {
            session: Session::resume_mux(shared.to_owned().into_boxed_path(), None),
            index,
            masters,
            closed: false,
            reused: true,
            fresh_login: fresh_login(machine, options),
            login: login(machine),
            sessions: tokio::sync::Semaphore::new(SESSIONS_PER_CONNECTION),
        }))
    }

    /// Starts a master of this run's own. A connection sshd refused or closed before the
    /// key exchange (sshd restarting: a reload re-executes it and rebinds its port; or
    /// over `MaxStartups`) is tried again, [`CONNECT_RETRIES`] times, further apart each
    /// time; the caller's connect deadline bounds it all.
    async fn start(machine: &Machine, options: &SshOptions) -> Result<SshHost, TransportError> {
        let mut retries = 0;
        loop {
            match SshHost::start_once(machine, options).await {
                Err(Attempt::NotListening(_)) if retries < CONNECT_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(250) * 2u32.pow(retries)).await;
                }
                Err(Attempt::NotListening(error) | Attempt::Failed(error)) => return Err(error),
                Ok(host) => return Ok(host),
            }
        }
    }

    async fn start_once(machine: &Machine, options: &SshOptions) -> Result<SshHost, Attempt> {
        let masters = options.masters.clone();
        let (index, socket, log) = masters.reserve()?;
        // Until the host exists, this guard ends the master on every way out (an error, or
        // this future dropped at a deadline).
        let mut guard = EndOnDrop {
            masters: &masters,
            index: Some(index),
        };
        let destination = machine.spec.ip.to_string();
        let mut command =
            tokio::process::Command::from(master_command(machine, options, &socket, &log));
        command.kill_on_drop(true);
        let status = command.status().await.map_err(|e| {
            TransportError::Failed(format!(
                "cannot run ssh to connect to {}: {e}",
                machine.name
            ))
        })?;
        if !status.success() {
            let detail = std::fs::read_to_string(&log).unwrap_or_default();
            let detail = detail
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let detail = crate::base::text::tail(&detail, 600);
            let detail = if detail.is_empty() {
                format!("ssh failed ({status})")
            } else {
                detail.to_owned()
            };
            let hint = if detail.contains("Host key verification failed") {
                " (corral checks host keys strictly: verify the host's key fingerprint, then add it to known_hosts)"
            } else {
                ""
            };
            let error = TransportError::Failed(format!(
                "cannot connect to {} ({destination}) over SSH: {detail}{hint}",
                machine.name
            ));
            return Err(if sshd_not_listening(&detail) {
                Attempt::NotListening(error)
            } else {
                Attempt::Failed(error)
            });
        }
        let tether = UnixStream::connect(&socket).map_err(|e| {
            TransportError::Failed(format!(
                "connected to {} but cannot reach the SSH master's socket: {e}",
                machine.name
            ))
        })?;
        masters.tie(index, tether);
        guard.index = None;
        drop(guard);
        if masters.keep.is_some() {
            // What a kept master logs later is of no use to anyone.
            let _ = std::fs::remove_file(&log);
        }
        Ok(SshHost {
            session: Session::resume_mux(socket.into_boxed_path(), None),
            index,
            masters,
            closed: false,
            reused: false,
            fresh_login: fresh_login(machine, options),
            login: login(machine),
            sessions: tokio::sync::Semaphore::new(SESSIONS_PER_CONNECTION),
        })
    }

    /// The normal end of the run's use of this host: its master ends, unless it is a kept
    /// one (warm connections).
    pub async fn close(mut self) {
        self.closed = true;
        self.masters.end_async(self.index).await;
    }
}

/// Who corral logs in as on `machine`, for messages.
fn login(machine: &Machine) -> super::Login {
    super::Login {
        machine: machine.name.clone(),
        user: machine.spec.ssh.user.clone(),
    }
}

/// The argument vector of [`login_command`].
fn fresh_login(machine: &Machine, options: &SshOptions) -> Vec<std::ffi::OsString> {
    let login = login_command(machine, options);
    std::iter::once(login.get_program().to_owned())
        .chain(login.get_args().map(|a| a.to_owned()))
        .collect()
}

impl Drop for SshHost {
    fn drop(&mut self) {
        if !self.closed {
            self.masters.end(self.index);
        }
    }
}

/// Ends a master on drop unless disarmed (`index: None`).
struct EndOnDrop<'a> {
    masters: &'a Masters,
    index: Option<usize>,
}

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            self.masters.end(index);
        }
    }
}

/// The `ssh` command that starts a machine's master in the background (`-f -N`).
fn master_command(
    machine: &Machine,
    options: &SshOptions,
    socket: &Path,
    log: &Path,
) -> std::process::Command {
    let mut command = std::process::Command::new("ssh");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .arg("-E")
        .arg(log)
        .arg("-S")
        .arg(socket)
        .args(["-M", "-f", "-N"]);
    let persist = options
        .masters
        .keep
        .map_or(CONTROL_PERSIST_SECONDS, |idle| idle.as_secs().max(1));
    command.args(["-o", &format!("ControlPersist={persist}s")]);
    connection_options(&mut command, machine, options);
    command
}

/// What the new login prints when it could run a command as root: a login that runs
/// something else (a `ForceCommand`) does not prove that corral's scripts would run.
const LOGIN_PROOF: &str = "corral-login-proof";

/// What it prints when it logged in but `sudo -n true` failed.
const NO_SUDO: &str = "corral-login-without-sudo";

/// What the new login runs: as a user other than root, `sudo -n true` too, as every
/// script corral runs goes through `sudo -n`. (`sh -c` with one quoted word, so that any
/// login shell reads it alike.)
fn login_proof_command() -> String {
    let script = format!(
        "if [ \"$(id -u)\" -eq 0 ] || LC_ALL=C sudo -n true </dev/null >/dev/null 2>&1; then echo {LOGIN_PROOF}; else echo {NO_SUDO}; fi"
    );
    format!("sh -c {}", crate::shell::quote(&script))
}

/// `ssh … HOST sh -c PROOF` over a connection of its own: no master, no control socket, so
/// that it goes through sshd and the firewall as a new login does.
fn login_command(machine: &Machine, options: &SshOptions) -> std::process::Command {
    let mut command = std::process::Command::new("ssh");
    command
        .stdin(Stdio::null())
        .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"]);
    connection_options(&mut command, machine, options);
    command.arg(login_proof_command());
    command
}

/// What every connection to `machine` is made with, ending with `-- ADDRESS`.
fn connection_options(
    command: &mut std::process::Command,
    machine: &Machine,
    options: &SshOptions,
) {
    command
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args([
            "-o",
            &format!(
                "ConnectTimeout={}",
                options.connect_timeout.as_secs().max(1)
            ),
        ])
        .args(["-o", "ServerAliveInterval=15"]);
    let ssh = &machine.spec.ssh;
    if let Some(port) = ssh.port {
        command.arg("-p").arg(port.to_string());
    }
    if let Some(user) = &ssh.user {
        command.arg("-l").arg(user);
    }
    if let Some(identity) = &ssh.identity_file {
        // Only that key, as ssh would do with `IdentitiesOnly`.
        command.args(["-o", "IdentitiesOnly=yes", "-i"]);
        command.arg(crate::base::machine::expand_home(identity));
    }
    if let Some(file) = &options.config_file {
        command.arg("-F").arg(file);
    }
    if let Some(jump) = &ssh.proxy_jump {
        command.arg("-J").arg(jump);
    }
    // `--` so that no address is ever read as an option.
    command.arg("--").arg(machine.spec.ip.to_string());
}

impl Host for SshHost {
    fn reused(&self) -> bool {
        self.reused
    }

    fn discard_reused(&self) {
        if self.reused {
            self.masters.unshare(self.index);
        }
    }

    fn fresh_login<'a>(&'a self, timeout: Duration) -> BoxFuture<'a, Result<(), LoginError>> {
        Box::pin(async move {
            let (program, args) = self
                .fresh_login
                .split_first()
                .expect("ssh and its arguments");
            let mut command = tokio::process::Command::new(program);
            command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let run = async { command.output().await.map_err(LoginError::Spawn) };
            match tokio::time::timeout(timeout, run).await {
                // The caller says how long it tried in all (it tries again until then).
                Err(_) => Err(LoginError::NoAnswer),
                Ok(Err(e)) => Err(e),
                Ok(Ok(out))
                    if out.status.success()
                        && String::from_utf8_lossy(&out.stdout).trim() == LOGIN_PROOF =>
                {
                    Ok(())
                }
                Ok(Ok(out))
                    if out.status.success()
                        && String::from_utf8_lossy(&out.stdout).trim() == NO_SUDO =>
                {
                    Err(LoginError::WithoutSudo {
                        user: self
                            .login
                            .user
                            .clone()
                            .unwrap_or_else(|| "the SSH user".to_owned()),
                    })
                }
                Ok(Ok(out)) if out.status.success() => Err(LoginError::NotCorralsCommand),
                Ok(Ok(out)) => {
                    let detail = String::from_utf8_lossy(&out.stderr);
                    Err(LoginError::Refused(
                        crate::base::text::tail(detail.trim(), 300).to_owned(),
                    ))
                }
            }
        })
    }

    fn run_script<'a>(
        &'a self,
        script: &'a str,
        limits: Limits,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            let mut out = Capture::new(limits.stdout);
            let mut err = Capture::new(OutputBound::KeepTail(STDERR_TAIL));
            // Dropped at the deadline: the mux session closes, the master sends the remote
            // shell EOF, and the watchdog started with it ends it on the host.
            let work = async {
                let mut command = self.session.command("sh");
                command
                    .arg("-c")
                    .arg(launcher(limits.deadline, true))
                    .stdin(openssh::Stdio::piped())
                    .stdout(openssh::Stdio::piped())
                    .stderr(openssh::Stdio::piped());
                // Held until the script ends: the session is sshd's until then.
                let _session = self.sessions.acquire().await.map_err(|_| {
                    TransportError::Disconnected("the connection is closing".into())
                })?;
                let mut refusals = 0;
                let mut child = loop {
                    match command.spawn().await {
                        Ok(child) => break child,
                        // Nothing started on the host: a session sshd refused (more open
                        // than its `MaxSessions`, e.g. another corral on a kept master)
                        // is asked for again once one may have ended.
                        Err(e) if refused_session(&e) && refusals < SESSION_RETRIES => {
                            refusals += 1;
                            let pause = (100 * refusals).min(1_000);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        Err(e) => {
                            return Err(TransportError::Disconnected(format!(
                                "cannot start a remote shell: {}{}",
                                error_chain(&e),
                                if refused_session(&e) {
                                    format!(" (sshd kept refusing a session: its MaxSessions is below the {SESSIONS_PER_CONNECTION} scripts corral runs at once over a connection, or other clients share the connection)")
                                } else {
                                    String::new()
                                }
                            )))
                        }
                    }
                };
                let stdin = child.stdin().take();
                let stdout = child.stdout().take();
                let stderr = child.stderr().take();
                tokio::try_join!(
                    send_script(stdin, script),
                    capture::read_both(stdout, stderr, &mut out, &mut err)
                )?;
                match child.wait().await {
                    Ok(status) => Ok(status.code()),
                    // The crate turns exit code 127 into an error.
                    Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(Some(127))
                    }
                    Err(e) => Err(TransportError::Disconnected(format!(
                        "the remote shell failed: {}",
                        error_chain(&e)
                    ))),
                }
            };
            match tokio::time::timeout_at(limits.deadline, work).await {
                Ok(Ok(rc)) => {
                    ScriptOutput::finished(rc, &out, &err).unless_sudo_refused(&self.login)
                }
                Ok(Err(error)) => Err(error),
                Err(_) => Err(TransportError::DeadlinePassed { output: out.text() }),
            }
        })
    }
}

/// Scripts that run at once over one connection. sshd refuses sessions beyond its
/// `MaxSessions` per connection (10 by default, and in CIS-hardened configurations), and a
/// swarm's manager gets up to `--parallelism` service steps at once, besides facts.
const SESSIONS_PER_CONNECTION: usize = 8;

/// How often a session sshd refused is asked for again, 100 ms more apart each time up to
/// a second (about a minute in all, within the script's own deadline).
const SESSION_RETRIES: u64 = 64;

/// How often a connection sshd was not there to take is tried again (0.5, 1 and 2 s
/// later).
const CONNECT_RETRIES: u32 = 3;

/// How one try at starting a master ended, when it did not.
enum Attempt {
    /// Nothing answered on the port, or sshd closed the connection before the key
    /// exchange: worth another try.
    NotListening(TransportError),
    Failed(TransportError),
}

impl From<TransportError> for Attempt {
    fn from(error: TransportError) -> Attempt {
        Attempt::Failed(error)
    }
}

/// Whether ssh's log of a failed connection says that sshd was not there to take it:
/// the port refused (sshd restarting rebinds it), or sshd closed the connection before
/// the key exchange (a re-executing sshd, or `MaxStartups` full). Never a timeout, a
/// host key or a login refused.
fn sshd_not_listening(log: &str) -> bool {
    log.contains("Connection refused")
        || log.contains("kex_exchange_identification: Connection closed by remote host")
        || log.contains("kex_exchange_identification: read: Connection reset by peer")
}

/// Whether sshd refused to open a session on the connection (the mux master's answer when
/// `MaxSessions` are open): nothing ran on the host.
fn refused_session(error: &openssh::Error) -> bool {
    error_chain(error).contains("Session open refused by peer")
}

/// An error and its causes on one line; ssh's own log lines are the useful part.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        let cause_text = cause_text.trim();
        if !cause_text.is_empty() && !text.contains(cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text.replace('\n', " "));
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a port that refused, or an sshd that dropped the connection before the key
    /// exchange, is tried again; a timeout, a login refused and an unknown host key are
    /// not (logs of real masters, scripts/record-ssh-fixtures.sh).
    #[test]
    fn only_an_sshd_not_there_is_tried_again() {
        let root = corral_core::testing::REPOSITORY;
        let read = |case: &str| {
            std::fs::read_to_string(format!("{root}/fixtures/ssh/{case}.log")).unwrap()
        };
        for case in ["refused", "maxstartups"] {
            assert!(sshd_not_listening(&read(case)), "{case}");
        }
        for case in ["timeout", "denied", "host-key"] {
            assert!(!sshd_not_listening(&read(case)), "{case}");
        }
    }

    /// The new login's command proves a root login, and proves nothing for a user whose
    /// `sudo -n` fails (here `nobody`, whom no sudoers file names), through a real `sh`.
    #[test]
    fn the_login_proof_needs_root_or_a_working_sudo() {
        let proof = login_proof_command();
        let root = std::process::Command::new("sh")
            .args(["-c", &proof])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&root.stdout).trim(), LOGIN_PROOF);
        let nobody = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                &proof,
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&nobody.stdout).trim(),
            NO_SUDO,
            "{nobody:?}"
        );
    }

    fn machine() -> Machine {
        Machine {
            name: "n1".into(),
            spec: crate::base::machine::MachineSpec {
                hostname: "n1".into(),
                ip: "10.0.0.1".parse().unwrap(),
                ssh: Default::default(),
                labels: Default::default(),
            },
        }
    }

    fn args(command: &std::process::Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// Every registered master whose socket exists gets its `ssh -O exit`; ending them all
    /// removes the control directory, and no master can start afterwards.
    #[test]
    fn ending_the_masters_removes_the_control_directory() {
        let parent = tempfile::tempdir().unwrap();
        let masters = Masters::create_in(parent.path()).unwrap();
        let dir = masters.dir().to_owned();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let mut sockets = Vec::new();
        for _ in 0..3 {
            let (_, socket, _) = masters.reserve().unwrap();
            sockets.push(socket);
        }
        // Two masters started (their sockets exist); the third never did.
        for socket in &sockets[..2] {
            std::fs::write(socket, "").unwrap();
        }
        let commands = masters.exit_commands();
        assert_eq!(commands.len(), 2);
        for (command, socket) in commands.iter().zip(&sockets) {
            assert_eq!(command.get_program(), "ssh");
            let args = args(command);
            let s = args.iter().position(|a| a == "-S").unwrap();
            assert_eq!(args[s + 1], socket.display().to_string());
            assert!(args.windows(2).any(|w| w == ["-O", "exit"]), "{args:?}");
        }
        masters.end_all();
        assert!(!dir.exists());
        assert!(masters.exit_commands().is_empty());
        assert!(masters.reserve().is_err());
    }

    /// A directory left by a corral killed with SIGKILL is removed by the next one; another
    /// live process's is not.
    #[test]
    fn stale_control_directories_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        // No process has pid 0 in /proc; this one does.
        let stale = parent.path().join("corral-0-abc");
        let live = parent
            .path()
            .join(format!("corral-{}-abc", std::process::id()));
        let other = parent.path().join("corral-base");
        for dir in [&stale, &live, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        let masters = Masters::create_in(parent.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.exists() && other.exists() && masters.dir().exists());
    }

    #[test]
    fn dropping_the_masters_removes_the_control_directory() {
        let parent = tempfile::tempdir().unwrap();
        let masters = Masters::create_in(parent.path()).unwrap();
        let dir = masters.dir().to_owned();
        assert!(dir.exists());
        drop(masters);
        assert!(!dir.exists());
    }

    /// The kept directory is made private, and refused when others could enter it or it
    /// is a link (someone else's socket there would stand in for a host).
    #[test]
    fn the_kept_directory_must_be_private() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let parent = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(parent.path()).unwrap().uid();
        let dir = parent.path().join("kept");
        assert!(check_kept_dir(dir.clone(), uid, false).is_err(), "absent");
        let made = check_kept_dir(dir.clone(), uid, true).unwrap();
        assert_eq!(
            std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = check_kept_dir(dir.clone(), uid, true).unwrap_err();
        assert!(
            refused.to_string().contains("others can enter it"),
            "{refused}"
        );
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(parent.path(), &link).unwrap();
        let refused = check_kept_dir(link, uid, true).unwrap_err();
        assert!(refused.to_string().contains("not a directory"), "{refused}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let refused = check_kept_dir(dir, uid + 1, true).unwrap_err();
        assert!(refused.to_string().contains("belongs to uid"), "{refused}");
    }

    /// The same settings give the same key; anything that shapes the connection (a host
    /// key in a known-hosts file, the user, the address) another; the connect timeout not.
    #[test]
    fn a_kept_master_is_found_by_all_its_settings() {
        let settings = "host 10.0.0.1\nuser root\nport 22\nconnecttimeout 10\n\
                        userknownhostsfile /k/known_hosts /k/known_hosts2\n";
        let keys = |text: &'static str| {
            move |path: &str| (path == "/k/known_hosts").then(|| text.as_bytes().to_vec())
        };
        let key = key_of("n1", settings, keys("n1 ssh-ed25519 AAAA1"));
        assert_eq!(key.len(), KEY_HEX_DIGITS);
        assert_eq!(key, key_of("n1", settings, keys("n1 ssh-ed25519 AAAA1")));
        let other_timeout = settings.replace("connecttimeout 10", "connecttimeout 30");
        assert_eq!(
            key,
            key_of("n1", &other_timeout, keys("n1 ssh-ed25519 AAAA1"))
        );
        assert_ne!(key, key_of("n1", settings, keys("n1 ssh-ed25519 AAAA2")));
        assert_ne!(key, key_of("n2", settings, keys("n1 ssh-ed25519 AAAA1")));
        let other_user = settings.replace("user root", "user ops");
        assert_ne!(key, key_of("n1", &other_user, keys("n1 ssh-ed25519 AAAA1")));
        let unexpanded = settings.replace("/k/known_hosts2", "%d/known_hosts");
        assert_ne!(
            key_of("n1", &unexpanded, keys("n1 ssh-ed25519 AAAA1")),
            key_of("n1", &unexpanded, keys("n1 ssh-ed25519 AAAA1")),
            "a file ssh would find by a token corral cannot expand: never reused"
        );
    }

    /// A kept master is never ended by a run (another corral may be using it), not even
    /// by an interrupt: its shared socket stays; one that lost the race to share is the
    /// run's own and ends. A run that finds a kept master broken removes its name, unless
    /// the name is another socket by then.
    #[test]
    fn kept_masters_outlive_runs_and_interrupts() {
        let parent = tempfile::tempdir().unwrap();
        let masters = Masters::in_dir(parent.path().to_owned(), Some(Duration::from_secs(60)));
        let shared = parent.path().join("0123456789abcdef01234567");
        let (kept, socket, _) = masters.reserve().unwrap();
        std::fs::write(&socket, "").unwrap();
        assert_eq!(masters.share(kept, &shared), shared);
        assert!(!socket.exists(), "the run's own name goes once shared");
        let (lost, socket, _) = masters.reserve().unwrap();
        std::fs::write(&socket, "").unwrap();
        assert_eq!(
            masters.share(lost, &shared),
            socket,
            "another master was shared first"
        );
        let master_command = {
            let options = SshOptions {
                config_file: None,
                connect_timeout: Duration::from_secs(7),
                masters: masters.clone(),
            };
            master_command(&machine(), &options, &socket, &socket)
        };
        assert!(args(&master_command).contains(&"ControlPersist=60s".to_owned()));
        let exits = masters.exit_commands();
        assert_eq!(exits.len(), 1, "only the run's own master is ended");
        assert!(args(&exits[0]).contains(&socket.display().to_string()));
        masters.end_all();
        assert!(shared.exists(), "the kept master stays");
        assert!(parent.path().exists());

        // A later run adopts it, finds it broken and removes its name.
        let masters = Masters::in_dir(parent.path().to_owned(), Some(Duration::from_secs(60)));
        let tether = std::os::unix::net::UnixListener::bind(parent.path().join("l")).unwrap();
        let stream = UnixStream::connect(parent.path().join("l")).unwrap();
        let adopted = masters.adopt(&shared, stream).unwrap();
        masters.unshare(adopted);
        assert!(!shared.exists());
        // One whose name was taken by a new socket meanwhile leaves that one alone.
        std::fs::write(&shared, "").unwrap();
        let stream = UnixStream::connect(parent.path().join("l")).unwrap();
        let adopted = masters.adopt(&shared, stream).unwrap();
        std::fs::write(parent.path().join("new"), "").unwrap();
        std::fs::rename(parent.path().join("new"), &shared).unwrap();
        masters.unshare(adopted);
        assert!(shared.exists(), "another run's new master keeps its name");
        drop(tether);
    }

    /// Masters never persist on their own: an idle timeout, not `ControlPersist=yes`.
    #[test]
    fn masters_start_with_a_bounded_control_persist() {
        let parent = tempfile::tempdir().unwrap();
        let options = SshOptions {
            config_file: None,
            connect_timeout: Duration::from_secs(7),
            masters: Masters::create_in(parent.path()).unwrap(),
        };
        let command = master_command(
            &machine(),
            &options,
            Path::new("/run/c/0"),
            Path::new("/run/c/0.log"),
        );
        let args = args(&command);
        assert!(args.contains(&"ControlPersist=10s".to_owned()), "{args:?}");
        assert!(!args.iter().any(|a| a == "ControlPersist=yes"));
        assert!(args.contains(&"StrictHostKeyChecking=yes".to_owned()));
        assert!(args.contains(&"ConnectTimeout=7".to_owned()));
        assert_eq!(args[args.len() - 2..], ["--", "10.0.0.1"]);
    }
}
