//! `corral lab`: a local lab of container hosts (TESTBED.md) to try configurations on and to
//! run the end-to-end tests against — real systemd, sshd, Docker and glusterd in containers on
//! a private Docker network.
//!
//! The lab drives the `docker` CLI and the OpenSSH client tools; it creates, and later removes,
//! only containers and a network labelled `io.corral.lab=<name>`, plus the cached host image
//! and the files in its directory. SSH traffic goes only to the lab's own hosts, with strict
//! host-key checking against keys scanned from them.

mod apt_sources;
mod docker;
mod image;
mod layout;
mod tool;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use apt_sources::MIRROR_ENV;
pub use image::host_image_tag;

use docker::{Docker, LabContainer};
use layout::{LabHost, LabLayout, HOST_LABEL, IP_LABEL, LAB_LABEL, LIGHT_LABEL};

/// How long fresh hosts get to boot (TESTBED.md measured 15–25 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a running lab gets to prove healthy before `up` recreates it.
const REUSE_TIMEOUT: Duration = Duration::from_secs(60);
/// The units a light host does not start.
const LIGHT_MASKS: [&str; 5] = [
    "docker.service",
    "docker.socket",
    "containerd.service",
    "glusterd.service",
    "corral-busybox-image.service",
];
/// The image every lab host imports into its own engine for Swarm service tests.
const SERVICE_IMAGE: &str = "local/busybox:1";

/// `corral lab ...` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Start (or reuse) a local lab of container hosts.
    Up(LabUpArgs),
    /// Remove the lab's containers and network.
    Down(LabArgs),
    /// Show the lab's hosts and whether sshd answers.
    Status(LabArgs),
}

/// Arguments every `lab` subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// Name of the lab: containers are NAME-n1, NAME-n2, …, the network NAME-net.
    #[arg(long, default_value = "corral")]
    pub name: String,
    /// Directory for the lab's SSH key, known_hosts, ssh_config and inventory.yaml.
    #[arg(long, default_value = ".corral-lab")]
    pub dir: PathBuf,
}

/// Arguments of `lab up`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub common: LabArgs,
    /// Number of hosts, n1 … nN.
    #[arg(long, default_value_t = 3)]
    pub machines: u32,
    /// The lab's network, an IPv4 /24; host nI gets the address .10+I.
    #[arg(long, default_value = "10.213.0.0/24")]
    pub subnet: String,
    /// Light hosts: systemd and sshd only, with the Docker engine and glusterd masked, so
    /// that 30 of them run on 2 cores (for OS kinds and connection benchmarks; no Swarm or
    /// Gluster).
    #[arg(long)]
    pub light: bool,
}

/// Why a `lab` command failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LabError {
    #[error("no Docker engine answers (`{command}`): {stderr}")]
    #[diagnostic(
        code(corral::lab::docker_unavailable),
        help(
            "run scripts/install-deps.sh, which installs docker.io and starts dockerd; or by \
             hand: apt-get install -y docker.io && (dockerd >/var/log/dockerd.log 2>&1 &)"
        )
    )]
    DockerUnavailable { command: String, stderr: String },

    #[error("`{program}` is not installed")]
    #[diagnostic(code(corral::lab::tool_missing), help("{help}"))]
    ToolMissing { program: String, help: String },

    #[error("`{command}` failed ({status}): {stderr}")]
    #[diagnostic(code(corral::lab::command_failed))]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    #[error("could not run `{command}`")]
    #[diagnostic(code(corral::lab::spawn))]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("could not {action} {}", path.display())]
    #[diagnostic(code(corral::lab::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid lab name {name:?}")]
    #[diagnostic(
        code(corral::lab::invalid_name),
        help(
            "use letters, digits, '_', '.' and '-' (at most 48), starting with a letter or digit"
        )
    )]
    InvalidName { name: String },

    #[error("invalid --machines {machines}")]
    #[diagnostic(
        code(corral::lab::invalid_machines),
        help("a lab has 1 to 244 hosts: they take the addresses .11 to .254 of its /24")
    )]
    InvalidMachines { machines: u32 },

    #[error("invalid --subnet {subnet:?}: {reason}")]
    #[diagnostic(
        code(corral::lab::invalid_subnet),
        help("give a private IPv4 /24 that no other network uses, e.g. --subnet 10.213.0.0/24")
    )]
    InvalidSubnet { subnet: String, reason: String },

    #[error("the subnet {subnet} is already used by another Docker network: {stderr}")]
    #[diagnostic(
        code(corral::lab::subnet_in_use),
        help("choose another --subnet, or remove that network (`docker network ls`)")
    )]
    SubnetInUse { subnet: String, stderr: String },

    #[error("found no Debian mirror in apt's sources ({searched})")]
    #[diagnostic(
        code(corral::lab::no_mirror),
        help(
            "the host image is bootstrapped from the mirror apt uses; add one to \
             /etc/apt/sources.list.d/debian.sources or set CORRAL_LAB_MIRROR to a Debian mirror URL"
        )
    )]
    NoMirror { searched: String },

    #[error("building the host image {tag} needs root")]
    #[diagnostic(
        code(corral::lab::needs_root),
        help("debootstrap, chroot and mount need root: run `corral lab up` once as root")
    )]
    NeedsRoot { tag: String },

    #[error("building the host image {tag} failed; full log: {}", log.display())]
    #[diagnostic(code(corral::lab::image_build), help("last lines of the log:\n{tail}"))]
    ImageBuild {
        tag: String,
        log: PathBuf,
        tail: String,
    },

    #[error("lab host {host} stopped (container {container} is {state})")]
    #[diagnostic(code(corral::lab::host_stopped), help("its last output:\n{logs}"))]
    HostStopped {
        host: String,
        container: String,
        state: String,
        logs: String,
    },

    #[error("lab host {host} did not become ready within {secs}s: {last}")]
    #[diagnostic(code(corral::lab::not_ready), help("{help}"))]
    NotReady {
        host: String,
        secs: u64,
        last: String,
        help: String,
    },
}

/// Runs a `corral lab` subcommand.
pub fn run(cmd: &LabCommand) -> Result<(), LabError> {
    match cmd {
        LabCommand::Up(args) => up(args),
        LabCommand::Down(args) => down(args),
        LabCommand::Status(args) => status(args),
    }
}

fn up(args: &LabUpArgs) -> Result<(), LabError> {
    let started = Instant::now();
    let layout = LabLayout::new(&args.common.name, args.machines, &args.subnet)?;
    let docker = Docker::locate();
    let engine = docker.engine_version()?;
    for program in ["ssh", "ssh-keygen", "ssh-keyscan"] {
        tool::require(program)?;
    }
    let dir = prepare_dir(&args.common.dir)?;
    let public_key = ensure_key(&dir, &layout.name)?;
    let image_id = image::ensure_host_image(&docker, &dir.join("build-image.log"))?;

    warn_of_inotify_limit(layout.hosts.len());
    let mut reused = false;
    let light = args.light;
    if running_lab_matches(&docker, &layout, &image_id, &public_key, light)? {
        eprintln!(
            "lab {} is already up with {} hosts on {}; checking it",
            layout.name,
            layout.hosts.len(),
            layout.subnet
        );
        match make_ready(&docker, &layout, &dir, REUSE_TIMEOUT, light) {
            Ok(()) => reused = true,
            Err(err) => eprintln!("the running lab is not healthy ({err}); recreating it"),
        }
    }
    if !reused {
        remove_lab(&docker, &layout)?;
        create_network(&docker, &layout)?;
        eprintln!(
            "starting {} hosts on {} ({})",
            layout.hosts.len(),
            layout.network,
            layout.subnet
        );
        for host in &layout.hosts {
            start_host(&docker, &layout, host, &public_key, light)?;
        }
        make_ready(&docker, &layout, &dir, BOOT_TIMEOUT, light)?;
    }
    write_file(&dir.join("inventory.yaml"), &layout::inventory(&layout))?;

    let ssh_config = dir.join("ssh_config");
    println!(
        "lab {} is up{} in {:.1}s: {}{} hosts on {} ({}), image {}, Docker {}",
        layout.name,
        if reused { " (reused)" } else { "" },
        started.elapsed().as_secs_f64(),
        layout.hosts.len(),
        if light { " light" } else { "" },
        layout.network,
        layout.subnet,
        host_image_tag(),
        engine
    );
    for host in &layout.hosts {
        println!("  {:<4} {:<15} {}", host.name, host.ip, host.container);
    }
    println!("in {}:", dir.display());
    println!("  id_ed25519, id_ed25519.pub  the lab's SSH key, authorized for root on every host");
    println!("  known_hosts                 host keys scanned from the lab hosts");
    println!(
        "  ssh_config                  ssh -F {} n1",
        shell_word(&ssh_config)
    );
    println!("  inventory.yaml              one infrastructure/machine per host");
    println!("export CORRAL_SSH_CONFIG={}", shell_word(&ssh_config));
    Ok(())
}

fn down(args: &LabArgs) -> Result<(), LabError> {
    layout::validate_name(&args.name)?;
    let docker = Docker::locate();
    docker.engine_version()?;
    let containers = docker.containers_labelled(LAB_LABEL, &args.name)?;
    docker.remove_containers(&containers)?;
    let networks = docker.networks_labelled(LAB_LABEL, &args.name)?;
    for network in &networks {
        docker.remove_network(network)?;
    }
    println!(
        "lab {}: removed {} container(s) and {} network(s); kept the host image and {}",
        args.name,
        containers.len(),
        networks.len(),
        args.dir.display()
    );
    Ok(())
}

fn status(args: &LabArgs) -> Result<(), LabError> {
    layout::validate_name(&args.name)?;
    let docker = Docker::locate();
    docker.engine_version()?;
    let ids = docker.containers_labelled(LAB_LABEL, &args.name)?;
    let containers = docker.inspect_containers(&ids)?;
    let network = layout::network_name(&args.name);
    if containers.is_empty() {
        println!(
            "lab {}: no hosts (start it with `corral lab up --name {}`)",
            args.name, args.name
        );
        return Ok(());
    }
    let subnet = docker
        .network(&network)?
        .map(|(subnet, _)| subnet)
        .unwrap_or_else(|| "missing".to_owned());
    let ssh_config = absolute(&args.dir).join("ssh_config");
    let have_config = ssh_config.is_file();
    let checks: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = containers
            .iter()
            .map(|c| {
                let ssh_config = &ssh_config;
                scope.spawn(move || {
                    if c.state != "running" {
                        "-".to_owned()
                    } else if !have_config {
                        format!("no {}", ssh_config.display())
                    } else {
                        match ssh_true(ssh_config, &c.host, 5) {
                            Ok(()) => "ok".to_owned(),
                            Err(why) => format!("failed: {why}"),
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| "check panicked".to_owned()))
            .collect()
    });
    println!("lab {}: network {} ({})", args.name, network, subnet);
    println!(
        "  {:<5} {:<15} {:<20} {:<10} SSH",
        "HOST", "IP", "CONTAINER", "STATE"
    );
    for (c, ssh) in containers.iter().zip(&checks) {
        println!(
            "  {:<5} {:<15} {:<20} {:<10} {}",
            c.host, c.ip, c.name, c.state, ssh
        );
    }
    Ok(())
}

/// Creates the lab directory (mode 0700: it holds a private key) and returns its absolute path.
fn prepare_dir(dir: &Path) -> Result<PathBuf, LabError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action: &'static str| {
        move |source| LabError::Io {
            action,
            path: dir.to_owned(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("set the mode of"))?;
    dir.canonicalize().map_err(io("resolve"))
}

fn absolute(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_owned())
    })
}

/// Generates the lab's key pair once; later runs reuse it. Returns the public key's path.
fn ensure_key(dir: &Path, lab: &str) -> Result<PathBuf, LabError> {
    let private = dir.join("id_ed25519");
    let public = dir.join("id_ed25519.pub");
    if !private.exists() {
        let _ = std::fs::remove_file(&public);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("corral-lab-{lab}"))
            .arg("-f")
            .arg(&private);
        tool::checked(&mut cmd)?;
    } else if !public.exists() {
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-y").arg("-f").arg(&private);
        let key = tool::checked(&mut cmd)?;
        write_file(&public, &key)?;
    }
    Ok(public)
}

fn write_file(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|source| LabError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })
}

/// Whether a lab of exactly this shape runs: the same hosts at the same addresses on the same
/// subnet, all running the current host image and authorizing the current key (a key made
/// anew, e.g. after the directory was removed, is not what the running hosts have mounted).
fn running_lab_matches(
    docker: &Docker,
    layout: &LabLayout,
    image_id: &str,
    public_key: &Path,
    light: bool,
) -> Result<bool, LabError> {
    let Some((subnet, label)) = docker.network(&layout.network)? else {
        return Ok(false);
    };
    if subnet != layout.subnet || label != layout.name {
        return Ok(false);
    }
    let ids = docker.containers_labelled(LAB_LABEL, &layout.name)?;
    let containers = docker.inspect_containers(&ids)?;
    let expected: Vec<LabContainer> = layout
        .hosts
        .iter()
        .map(|h| LabContainer {
            name: h.container.clone(),
            state: "running".to_owned(),
            image_id: image_id.to_owned(),
            host: h.name.clone(),
            ip: h.ip.to_string(),
            light: light.to_string(),
        })
        .collect();
    if containers != expected {
        return Ok(false);
    }
    let key = std::fs::read_to_string(public_key).map_err(|source| LabError::Io {
        action: "read",
        path: public_key.to_owned(),
        source,
    })?;
    for host in &layout.hosts {
        let mounted = docker.exec(&host.container, &["cat", "/root/.ssh/authorized_keys"])?;
        if String::from_utf8_lossy(&mounted.stdout).trim() != key.trim() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes this lab's containers and network, and leftovers with their names.
fn remove_lab(docker: &Docker, layout: &LabLayout) -> Result<(), LabError> {
    docker.remove_containers(&docker.containers_labelled(LAB_LABEL, &layout.name)?)?;
    // Separately: `docker rm` works on its arguments in parallel and trips over one container
    // named twice, by ID and by name.
    let names: Vec<String> = layout.hosts.iter().map(|h| h.container.clone()).collect();
    docker.remove_containers(&names)?;
    for network in docker.networks_labelled(LAB_LABEL, &layout.name)? {
        docker.remove_network(&network)?;
    }
    docker.remove_network(&layout.network)
}

fn create_network(docker: &Docker, layout: &LabLayout) -> Result<(), LabError> {
    let label = format!("{LAB_LABEL}={}", layout.name);
    let args = [
        "network",
        "create",
        "--subnet",
        &layout.subnet,
        "--label",
        &label,
        &layout.network,
    ];
    match docker.run(args) {
        Ok(_) => Ok(()),
        Err(LabError::CommandFailed { stderr, .. }) if stderr.contains("overlap") => {
            Err(LabError::SubnetInUse {
                subnet: layout.subnet.clone(),
                stderr,
            })
        }
        Err(err) => Err(err),
    }
}

/// The inotify instances one host's systemd and sshd take, with room to spare.
const INOTIFY_INSTANCES_PER_HOST: usize = 6;

/// A host whose systemd finds no inotify instance left exits with status 255 and no output;
/// say why before that happens.
fn warn_of_inotify_limit(hosts: usize) {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok());
    if let Some(limit) = limit.filter(|&l| l < hosts * INOTIFY_INSTANCES_PER_HOST) {
        eprintln!(
            "warning: fs.inotify.max_user_instances is {limit}, too few for {hosts} hosts running systemd: \
             some may exit at boot; raise it with `sysctl -w fs.inotify.max_user_instances=1024` \
             (scripts/install-deps.sh does)"
        );
    }
}

/// `docker run` for one host, with the flags of TESTBED.md §3 (no `--privileged`: the
/// machine's bounding set lacks CAP_SYS_RESOURCE) and systemd as PID 1; a light host's
/// systemd masks the Docker engine and glusterd (it reads `systemd.mask=` from its
/// arguments in a container, as from a kernel command line).
fn start_host(
    docker: &Docker,
    layout: &LabLayout,
    host: &LabHost,
    public_key: &Path,
    light: bool,
) -> Result<(), LabError> {
    let ip = host.ip.to_string();
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &host.container,
        "--hostname",
        &host.name,
        "--network",
        &layout.network,
        "--ip",
        &ip,
        "--network-alias",
        &host.name,
        "--label",
        &format!("{LAB_LABEL}={}", layout.name),
        "--label",
        &format!("{HOST_LABEL}={}", host.name),
        "--label",
        &format!("{IP_LABEL}={ip}"),
        "--label",
        &format!("{LIGHT_LABEL}={light}"),
        "--cap-add=ALL",
        "--cap-drop=SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        // Executable like a /tmp on the root file system; Docker's default is noexec.
        "--tmpfs",
        "/tmp:exec,mode=1777",
        // Bricks need a file system of their own, with trusted.* xattrs (TESTBED.md §3).
        "--tmpfs",
        "/data/bricks",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "-e",
        "container=docker",
        // systemd's clean shutdown signal.
        "--stop-signal",
        "SIGRTMIN+3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Glusterfs mounts (FUSE) need the device; a machine without it still gets a lab.
    if Path::new("/dev/fuse").exists() {
        args.extend(["--device".to_owned(), "/dev/fuse".to_owned()]);
    } else {
        eprintln!("warning: /dev/fuse is missing: glusterfs mounts will not work in the lab");
    }
    // Every host resolves every other by name without depending on Docker's DNS.
    for other in &layout.hosts {
        args.extend([
            "--add-host".to_owned(),
            format!("{}:{}", other.name, other.ip),
        ]);
    }
    args.extend([
        "-v".to_owned(),
        format!("{}:/root/.ssh/authorized_keys:ro", public_key.display()),
        host_image_tag(),
        "/sbin/init".to_owned(),
    ]);
    if light {
        args.extend(
            LIGHT_MASKS
                .iter()
                .map(|unit| format!("systemd.mask={unit}")),
        );
    }
    docker.run(&args)?;
    Ok(())
}

/// Waits until every host's systemd, Docker engine and service image are ready, seeds
/// known_hosts from the hosts, writes ssh_config and checks that `ssh HOST true` works.
fn make_ready(
    docker: &Docker,
    layout: &LabLayout,
    dir: &Path,
    timeout: Duration,
    light: bool,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    wait_for_hosts(docker, layout, timeout, deadline, light)?;
    let known_hosts = scan_host_keys(layout, timeout, deadline)?;
    write_file(&dir.join("known_hosts"), &known_hosts)?;
    let ssh_config = dir.join("ssh_config");
    write_file(&ssh_config, &layout::ssh_config(layout, dir))?;
    wait_for_ssh(layout, &ssh_config, timeout, deadline)
}

/// What one probe of a host found.
enum HostProbe {
    Ready,
    Waiting(String),
}

fn wait_for_hosts(
    docker: &Docker,
    layout: &LabLayout,
    timeout: Duration,
    deadline: Instant,
    light: bool,
) -> Result<(), LabError> {
    if light {
        eprintln!("waiting for systemd on every host");
    } else {
        eprintln!("waiting for systemd, docker and {SERVICE_IMAGE} on every host");
    }
    let mut pending: Vec<&LabHost> = layout.hosts.iter().collect();
    let mut last: Vec<String> = vec![String::new(); pending.len()];
    loop {
        let mut still = Vec::new();
        let mut still_last = Vec::new();
        for host in pending {
            match probe_host(docker, host, light)? {
                HostProbe::Ready => {}
                HostProbe::Waiting(why) => {
                    still.push(host);
                    still_last.push(why);
                }
            }
        }
        pending = still;
        last = if still_last.is_empty() {
            last
        } else {
            still_last
        };
        let Some(host) = pending.first() else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            let failed = docker
                .exec(
                    &host.container,
                    &["systemctl", "--failed", "--no-legend", "--plain"],
                )
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default();
            return Err(LabError::NotReady {
                host: host.name.clone(),
                secs: timeout.as_secs(),
                last: last.first().cloned().unwrap_or_default(),
                help: format!(
                    "failed units: {}; look inside with `docker exec -it {} journalctl -b`",
                    if failed.is_empty() { "none" } else { &failed },
                    host.container
                ),
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn probe_host(docker: &Docker, host: &LabHost, light: bool) -> Result<HostProbe, LabError> {
    let state = docker
        .run(["inspect", "--format", "{{.State.Status}}", &host.container])?
        .trim()
        .to_owned();
    if state != "running" {
        let logs = docker
            .output(["logs", "--tail", "30", &host.container])
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default();
        return Err(LabError::HostStopped {
            host: host.name.clone(),
            container: host.container.clone(),
            state,
            logs: logs.trim().to_owned(),
        });
    }
    let system = docker.exec(&host.container, &["systemctl", "is-system-running"])?;
    let system = String::from_utf8_lossy(&system.stdout).trim().to_owned();
    if system != "running" && system != "degraded" {
        let shown = if system.is_empty() { "not up" } else { &system };
        return Ok(HostProbe::Waiting(format!("systemd is {shown}")));
    }
    if light {
        return Ok(HostProbe::Ready);
    }
    let engine = docker.exec(
        &host.container,
        &["docker", "info", "--format", "{{.ServerVersion}}"],
    )?;
    if !engine.status.success() {
        return Ok(HostProbe::Waiting(format!(
            "systemd is {system}, but its Docker engine does not answer"
        )));
    }
    let image = docker.exec(
        &host.container,
        &["docker", "image", "inspect", SERVICE_IMAGE],
    )?;
    if !image.status.success() {
        return Ok(HostProbe::Waiting(format!(
            "systemd is {system}, but {SERVICE_IMAGE} is not imported"
        )));
    }
    if system == "degraded" {
        let failed = docker
            .exec(
                &host.container,
                &["systemctl", "--failed", "--no-legend", "--plain"],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        eprintln!(
            "warning: {} is degraded; failed units: {}",
            host.name,
            failed.replace('\n', "; ")
        );
    }
    Ok(HostProbe::Ready)
}

/// Host keys of every lab host, as known_hosts lines, scanned from the hosts themselves.
fn scan_host_keys(
    layout: &LabLayout,
    timeout: Duration,
    deadline: Instant,
) -> Result<String, LabError> {
    loop {
        let mut cmd = Command::new("ssh-keyscan");
        cmd.args(["-T", "5"]);
        cmd.args(layout.hosts.iter().map(|h| h.ip.to_string()));
        let out = tool::output(&mut cmd)?;
        let (lines, missing) = layout::known_hosts(layout, &String::from_utf8_lossy(&out.stdout));
        let Some(host) = missing.first() else {
            return Ok(lines);
        };
        if Instant::now() >= deadline {
            return Err(LabError::NotReady {
                host: host.clone(),
                secs: timeout.as_secs(),
                last: format!(
                    "sshd gave no host key to `{}`: {}",
                    tool::describe(&cmd),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                help: "check sshd in the host: `docker exec -it CONTAINER systemctl status ssh`"
                    .to_owned(),
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn wait_for_ssh(
    layout: &LabLayout,
    ssh_config: &Path,
    timeout: Duration,
    deadline: Instant,
) -> Result<(), LabError> {
    let mut pending: Vec<&LabHost> = layout.hosts.iter().collect();
    loop {
        let results: Vec<(&LabHost, Result<(), SshRefused>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = pending
                .iter()
                .map(|&host| scope.spawn(move || (host, ssh_true(ssh_config, &host.name, 10))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let failures: Vec<(&LabHost, SshRefused)> = results
            .into_iter()
            .filter_map(|(host, result)| result.err().map(|why| (host, why)))
            .collect();
        let Some((host, why)) = failures.first() else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(LabError::NotReady {
                host: host.name.clone(),
                secs: timeout.as_secs(),
                last: format!(
                    "`ssh -F {} {} true` failed: {why}",
                    ssh_config.display(),
                    host.name
                ),
                help:
                    "try it by hand with -v; the key is bind-mounted as /root/.ssh/authorized_keys"
                        .to_owned(),
            });
        }
        pending = failures.iter().map(|(host, _)| *host).collect();
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Why `ssh HOST true` did not work, for [`LabError::NotReady`]'s message.
#[derive(Debug, thiserror::Error)]
enum SshRefused {
    #[error("could not run ssh: {0}")]
    Spawn(#[source] std::io::Error),
    /// ssh's last stderr line.
    #[error("{0}")]
    Failed(String),
}

/// `ssh -F CONFIG HOST true`; the error is ssh's last stderr line.
fn ssh_true(ssh_config: &Path, host: &str, connect_timeout: u32) -> Result<(), SshRefused> {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(ssh_config)
        .arg("-o")
        .arg(format!("ConnectTimeout={connect_timeout}"))
        .args([host, "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(SshRefused::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(SshRefused::Failed(
            stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .to_owned(),
        ))
    }
}

/// A path as a shell word (quoted only if it must be).
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    shlex::try_quote(&text)
        .map(|q| q.into_owned())
        .unwrap_or(text)
}
