//! The hardening baseline (`modules/hardening/baseline`) on a running Swarm + Gluster
//! cluster, on a lab of its own (three containers with systemd, sshd, dockerd and glusterd,
//! brought up by `corral lab up` and removed at the end, also when a step fails): the
//! cluster keeps working, the next plan is empty, and an independent auditor (Lynis)
//! scores the host at least as the module's README says.
//!
//! Ignored by a plain `cargo test`: `scripts/test.sh` runs it with `--run-ignored all`.

mod common;

use common::{assert_success, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LAB: &str = "corral-e2e-harden";
const SUBNET: &str = "10.225.0.0/24";
const MACHINES: [&str; 3] = ["n1", "n2", "n3"];

/// Lynis 3.0.8's hardening index of a lab host under the baseline, as the module's README
/// records it, less a margin for the checks that vary from run to run (package updates).
const LYNIS_INDEX_AT_LEAST: u32 = 82 - 4;

/// Kernel parameters the baseline sets that are global to the kernel: a lab host is a
/// container, so they are the machine's running the test, put back when the lab goes.
const GLOBAL_KERNEL_KEYS: &[&str] = &[
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.perf_event_paranoid",
    "kernel.core_uses_pid",
    "kernel.randomize_va_space",
    "fs.suid_dumpable",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
    "fs.protected_fifos",
    "fs.protected_regular",
    "dev.tty.ldisc_autoload",
];

/// The lab of this test; `Drop` puts the kernel's global values back and takes it down,
/// whatever happened.
struct Lab {
    dir: PathBuf,
    /// `key=value` of [`GLOBAL_KERNEL_KEYS`] before the baseline, once read.
    kernel_before: Vec<String>,
}

impl Lab {
    fn up() -> Lab {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-harden-lab");
        let lab = Lab {
            dir,
            kernel_before: Vec::new(),
        };
        common::lab_up(LAB, SUBNET, &lab.dir);
        lab
    }

    fn inventory(&self) -> String {
        self.dir.join("inventory.yaml").display().to_string()
    }

    /// Runs a command on a lab host; `Err` with its output when it fails.
    fn try_sh(&self, machine: &str, command: &str) -> Result<String, String> {
        let out = Command::new("ssh")
            .arg("-q")
            .arg("-F")
            .arg(self.dir.join("ssh_config"))
            .arg(machine)
            .arg(command)
            .output()
            .expect("ssh runs");
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            false => Err(text(&out)),
        }
    }

    fn sh(&self, machine: &str, command: &str) -> String {
        self.try_sh(machine, command)
            .unwrap_or_else(|e| panic!("ssh {machine} {command} failed:\n{e}"))
    }

    /// `corral ARGS… CONFIG INVENTORY` with the lab's ssh_config and the repository's
    /// modules.
    fn corral(&self, args: &[&str], config: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .arg(config)
            .arg(self.inventory())
            .env("CORRAL_SSH_CONFIG", self.dir.join("ssh_config"))
            .env(
                "CORRAL_MODULE_PATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/modules"),
            )
            .env("NO_COLOR", "1")
            .output()
            .expect("corral runs")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.kernel_before.is_empty() {
            let restore = format!("sysctl -q -w {}", self.kernel_before.join(" "));
            if let Err(e) = self.try_sh("n1", &restore) {
                eprintln!("could not put the kernel's values back: {e}");
            }
        }
        common::lab_down(LAB, &self.dir);
    }
}

fn assert_plans_empty(lab: &Lab, config: &str, what: &str) {
    let out = lab.corral(&["plan", "--detailed-exitcode"], config);
    assert_eq!(out.status.code(), Some(0), "{what}:\n{}", text(&out));
}

/// The baseline as a lab can take it: no auditd (a container may not control the kernel's
/// audit) and no Debian-kernel-only sysctls (the lab's kernel has no Yama); with the ports
/// of Swarm and Gluster, as an operator writes it.
const HARDENING: &str = "kind: module
name: base
specification:
  source: hardening/baseline
  inputs:
    audit_machines: []
    debian_kernel_machines: []
---
kind: module
name: swarm-ports
specification:
  source: swarm/ports
  inputs: { machines: all, managers: [n1, n2, n3] }
---
kind: module
name: gluster-ports
specification:
  source: gluster/ports
  inputs: { machines: all }
";

#[test]
#[ignore = "end-to-end on a lab of containers; scripts/test.sh runs it (--run-ignored all)"]
fn lab_hardening() {
    let mut lab = Lab::up();
    // The Krill-like cluster (examples/krill): a swarm of three managers, an overlay
    // network, global services on host ports, a replica-3 Gluster volume mounted on all.
    let cluster = lab.dir.join("krill");
    let _ = std::fs::remove_dir_all(&cluster);
    std::fs::create_dir_all(&cluster).unwrap();
    std::fs::copy("examples/krill/cluster.yaml", cluster.join("cluster.yaml")).unwrap();
    let cluster = cluster.display().to_string();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &cluster),
        "apply examples/krill",
    );
    lab.kernel_before = GLOBAL_KERNEL_KEYS
        .iter()
        .map(|key| format!("{key}={}", lab.sh("n1", &format!("sysctl -n {key}"))))
        .collect();

    // The baseline, a project of its own applied to the running cluster.
    let hardening = lab.dir.join("hardening");
    let _ = std::fs::remove_dir_all(&hardening);
    std::fs::create_dir_all(&hardening).unwrap();
    std::fs::write(hardening.join("hardening.yaml"), HARDENING).unwrap();
    let hardening = hardening.display().to_string();
    assert_success(
        &lab.corral(&["apply", "--auto-approve"], &hardening),
        "apply the baseline to the running cluster",
    );
    assert_plans_empty(&lab, &hardening, "the baseline applied plans empty");
    assert_plans_empty(&lab, &cluster, "the cluster under the baseline plans empty");

    the_cluster_keeps_working(&lab);
    the_settings_hold(&lab);
    lynis_scores_at_least_the_documented_index(&lab);
}

/// Services answer on their host ports (also from another host, through the firewall),
/// a service reaches every task of another over the overlay, and what one host writes on
/// the volume the others read.
fn the_cluster_keeps_working(lab: &Lab) {
    assert_eq!(
        lab.sh("n1", "docker node ls --format '{{.Status}}' | sort -u"),
        "Ready",
        "the swarm's nodes still talk"
    );
    for machine in MACHINES {
        let mut page = String::new();
        for _ in 0..30 {
            page = lab.sh(
                machine,
                "busybox wget -qO- http://127.0.0.1:9100/index.html 2>/dev/null || true",
            );
            if page.contains("UTC") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        assert!(
            page.contains("UTC"),
            "{machine} serves the status page: {page:?}"
        );
    }
    let across = lab.sh(
        "n2",
        "busybox wget -qO- http://10.225.0.11:9100/index.html 2>/dev/null || true",
    );
    assert!(across.contains("UTC"), "n1's host port from n2: {across:?}");

    // Overlay: from the edge task on n1, every status task by its overlay address (one per
    // node, so two of them across VXLAN between hosts).
    let edge = lab.sh("n1", "docker ps -q -f name=edge | head -n 1");
    assert!(!edge.is_empty(), "an edge task runs on n1");
    let tasks = lab.sh(
        "n1",
        &format!("docker exec {edge} nslookup tasks.status | awk '/^Address/ && !/#/ {{print $NF}}' | grep -v ':53$'"),
    );
    let addresses: Vec<&str> = tasks.lines().collect();
    assert_eq!(addresses.len(), 3, "a status task per node: {tasks}");
    for address in addresses {
        let page = lab.sh(
            "n1",
            &format!("docker exec {edge} wget -qO- http://{address}:9100/index.html"),
        );
        assert!(
            page.contains("UTC"),
            "status task {address} over the overlay: {page:?}"
        );
    }

    // The volume: written on n1 through its mount, read back on the others.
    let stamp = lab.sh("n1", "date +%s%N");
    lab.sh("n1", &format!("echo {stamp} > /srv/krill/hardening-check"));
    for machine in ["n2", "n3"] {
        assert_eq!(
            lab.sh(machine, "findmnt -n -o FSTYPE /srv/krill"),
            "fuse.glusterfs"
        );
        assert_eq!(lab.sh(machine, "cat /srv/krill/hardening-check"), stamp);
    }
}

/// What the baseline set, as the hosts' own programs read it.
fn the_settings_hold(lab: &Lab) {
    for machine in MACHINES {
        let sshd = lab.sh(machine, "sshd -T");
        for line in [
            "allowtcpforwarding no",
            "x11forwarding no",
            "loglevel VERBOSE",
            "maxauthtries 3",
            "clientalivecountmax 2",
            "banner /etc/issue.net",
        ] {
            assert!(
                sshd.lines().any(|l| l == line),
                "{machine}: sshd -T has no `{line}`"
            );
        }
        assert_eq!(
            lab.sh(
                machine,
                "awk '$1 == \"UMASK\" || $1 == \"PASS_MAX_DAYS\" {print $1, $2}' /etc/login.defs"
            ),
            "UMASK 027\nPASS_MAX_DAYS 365"
        );
        assert_eq!(
            lab.sh(machine, "modprobe -n -v dccp 2>&1 || true"),
            "install /bin/false"
        );
        assert_eq!(
            lab.sh(machine, "cat /etc/modprobe.d/*.conf | grep -c '^install \\(fuse\\|overlay\\|vxlan\\|br_netfilter\\|ip_vs\\) ' || true"),
            "0",
            "nothing Docker or Gluster loads is blocked"
        );
        assert_eq!(
            lab.sh(machine, "sysctl -n net.ipv4.ip_forward"),
            "1",
            "forwarding stays Docker's"
        );
        assert_eq!(
            lab.sh(machine, "grep -h '^\\*' /etc/security/limits.d/*.conf"),
            "* hard core 0"
        );
        assert_eq!(
            lab.sh(machine, "dpkg-query -W -f='${Status}\\n' libpam-tmpdir libpam-pwquality debsums apt-listchanges | sort -u"),
            "install ok installed"
        );
        assert!(
            lab.sh(machine, "grep -c pam_pwquality /etc/pam.d/common-password")
                .parse::<u32>()
                .unwrap_or(0)
                > 0,
            "{machine}: pam_pwquality is in the PAM stack"
        );
    }
}

/// Lynis (Debian's package), installed on n1 and run there: its hardening index.
fn lynis_scores_at_least_the_documented_index(lab: &Lab) {
    lab.sh(
        "n1",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null 2>&1 || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null)",
    );
    lab.sh(
        "n1",
        "lynis audit system --quick --no-colors >/dev/null 2>&1",
    );
    let index = lab.sh(
        "n1",
        "sed -n 's/^hardening_index=//p' /var/log/lynis-report.dat",
    );
    let index: u32 = index
        .parse()
        .unwrap_or_else(|_| panic!("no hardening index in Lynis' report: {index:?}"));
    assert!(
        index >= LYNIS_INDEX_AT_LEAST,
        "Lynis' hardening index {index} is below {LYNIS_INDEX_AT_LEAST} (modules/hardening/baseline/README.md); its warnings and suggestions:\n{}",
        lab.sh("n1", "grep -E '^(warning|suggestion)' /var/log/lynis-report.dat")
    );
}
