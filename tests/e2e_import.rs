//! `corral import` on a cluster built by hand: a lab of its own (three hosts), a swarm, an
//! overlay, a service with a config, a stack and a Gluster volume made with the Docker and
//! Gluster CLIs only; imported, planned ("No changes"), one line of the imported files
//! edited and applied (exactly that change), planned again.
//!
//! Ignored by a plain `cargo test`, like the other lab tests (`--include-ignored`); the lab
//! is taken down at the end, also when a step fails.

mod common;

use common::{assert_success, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LAB: &str = "corral-e2e-import";
const SUBNET: &str = "10.224.0.0/24";

/// The lab of this test; `Drop` takes it down whatever happened.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn up() -> Lab {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-import-lab");
        let lab = Lab { dir };
        common::lab_up(LAB, SUBNET, &lab.dir);
        lab
    }

    fn inventory(&self) -> String {
        self.dir.join("inventory.yaml").display().to_string()
    }

    /// Runs a command on a lab host with the host's own tools.
    fn sh(&self, machine: &str, command: &str) -> String {
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.dir.join("ssh_config"))
            .arg(machine)
            .arg(command)
            .output()
            .expect("ssh runs");
        assert_success(&out, &format!("ssh {machine} {command}"));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `corral ARGS…` with the lab's ssh_config.
    fn corral(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .env("CORRAL_SSH_CONFIG", self.dir.join("ssh_config"))
            .env("NO_COLOR", "1")
            .output()
            .expect("corral runs")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        common::lab_down(LAB, &self.dir);
    }
}

/// The cluster a team would have built by hand, with the CLIs only.
fn build_by_hand(lab: &Lab) {
    for n in ["n1", "n2", "n3"] {
        lab.sh(
            n,
            r#"printf '{"log-driver": "json-file", "log-opts": {"max-size": "10m"}}\n' > /etc/docker/daemon.json && systemctl restart docker"#,
        );
    }
    lab.sh(
        "n1",
        "docker swarm init --advertise-addr 10.224.0.11 >/dev/null",
    );
    let token = lab.sh("n1", "docker swarm join-token -q worker");
    for n in ["n2", "n3"] {
        lab.sh(
            n,
            &format!("docker swarm join --token {token} 10.224.0.11:2377 >/dev/null"),
        );
    }
    lab.sh(
        "n1",
        "docker node update --label-add zone=a n2 >/dev/null && docker node update --label-add zone=b n3 >/dev/null",
    );
    lab.sh(
        "n1",
        "docker network create --driver overlay --subnet 10.30.0.0/24 appnet >/dev/null",
    );
    lab.sh(
        "n1",
        "printf 'listen 80\\n' | docker config create app_conf - >/dev/null",
    );
    lab.sh(
        "n1",
        "docker service create --detach=false --quiet --no-resolve-image --name api --replicas 2 \
         --config source=app_conf,target=/etc/app.conf --env GREETING=hello \
         --publish published=8080,target=80 --network appnet --constraint node.role==worker \
         local/busybox:1 sleep 3600 >/dev/null",
    );
    // Settings corral does not model: written as comments, listed, and left as they are.
    lab.sh(
        "n1",
        "docker service create --detach=false --quiet --no-resolve-image --name worker \
         --limit-memory 64m --restart-condition on-failure local/busybox:1 sleep 3600 >/dev/null",
    );
    lab.sh(
        "n1",
        "mkdir -p /root/web && printf 'version: \"3.8\"\\nservices:\\n  agent:\\n    image: local/busybox:1\\n    command: [sleep, \"3600\"]\\n    deploy:\\n      mode: global\\n' > /root/web/compose.yaml && docker stack deploy --resolve-image never -c /root/web/compose.yaml web >/dev/null",
    );
    lab.sh(
        "n1",
        "gluster peer probe n2 >/dev/null && gluster peer probe n3 >/dev/null",
    );
    lab.sh(
        "n1",
        "for i in $(seq 30); do [ \"$(gluster pool list | grep -c Connected)\" = 3 ] && break; sleep 1; done; \
         gluster --mode=script volume create gv0 replica 3 n1:/data/bricks/gv0 n2:/data/bricks/gv0 n3:/data/bricks/gv0 >/dev/null \
         && gluster volume set gv0 performance.cache-size 64MB >/dev/null && gluster volume start gv0 >/dev/null",
    );
    for n in ["n1", "n2", "n3"] {
        lab.sh(
            n,
            "echo 'n1:/gv0 /mnt/gv0 glusterfs defaults,_netdev,backup-volfile-servers=n2:n3,x-systemd.requires=glusterd.service 0 0' >> /etc/fstab && mkdir -p /mnt/gv0 && for i in $(seq 30); do mount /mnt/gv0 2>/dev/null && break; sleep 1; done; findmnt /mnt/gv0 >/dev/null",
        );
    }
}

/// What a change elsewhere would touch: every service's update time and task IDs but
/// `api`'s, the nodes' labels, the volume's ID.
fn untouched_state(lab: &Lab) -> String {
    lab.sh(
        "n1",
        "for s in $(docker service ls --format '{{.Name}}' | grep -vx api); do docker service inspect --format '{{.Spec.Name}} {{.UpdatedAt}}' $s; docker service ps -q $s | sort; done; \
         docker node ls -q | xargs docker node inspect --format '{{.Description.Hostname}} {{json .Spec.Labels}}'; \
         docker network inspect --format '{{.Id}}' appnet; docker config inspect --format '{{.ID}}' app_conf; \
         gluster volume info gv0 | grep -E 'Volume ID|Status'",
    )
}

#[test]
#[ignore = "needs a lab of containers (cargo test --test e2e_import -- --include-ignored)"]
fn lab_import() {
    let lab = Lab::up();
    build_by_hand(&lab);
    let out_dir = lab.dir.join("infra");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = out_dir.to_str().unwrap();
    let inventory = lab.inventory();

    let import = lab.corral(&["import", &inventory, "--out", out]);
    assert_success(&import, "import");
    let report = String::from_utf8_lossy(&import.stdout).into_owned();
    for file in [
        "cluster.yaml",
        "networks.yaml",
        "services.yaml",
        "stacks.yaml",
        "volumes.yaml",
        "daemon.yaml",
    ] {
        assert!(out_dir.join(file).exists(), "{file} written:\n{report}");
    }
    let services = std::fs::read_to_string(out_dir.join("services.yaml")).unwrap();
    assert!(services.contains("GREETING: hello"), "{services}");
    for unmodelled in ["Resources", "RestartPolicy"] {
        assert!(
            report.contains(&format!("swarm/service.worker: TaskTemplate.{unmodelled}")),
            "listed: {report}"
        );
        assert!(
            services.contains(&format!("# not reproduced: TaskTemplate.{unmodelled}")),
            "{services}"
        );
    }

    // A second import into the same directory refuses, naming what it already declares.
    let again = lab.corral(&[
        "import", &inventory, "--out", out, "--force", "--only", "daemon",
    ]);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("docker/daemon.all"),
        "{}",
        text(&again)
    );

    let plan = lab.corral(&["plan", out, &inventory]);
    assert_success(&plan, "plan after import");
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("No changes"),
        "the import reproduces what runs:\n{report}\n{}",
        text(&plan)
    );

    // One line edited: exactly that change, the service adopted, nothing else touched.
    let before = untouched_state(&lab);
    std::fs::write(
        out_dir.join("services.yaml"),
        services.replace("GREETING: hello", "GREETING: hi"),
    )
    .unwrap();
    let plan = lab.corral(&["plan", "--format", "json", out, &inventory]);
    assert_success(&plan, "plan of the edit");
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let changes: Vec<&serde_json::Value> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["actions"][0] != "no-op")
        .collect();
    assert_eq!(changes.len(), 1, "{}", text(&plan));
    assert_eq!(
        changes[0]["address"],
        "swarm/service.api",
        "{}",
        text(&plan)
    );
    let shown = lab.corral(&["plan", out, &inventory]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("adopted"),
        "{}",
        text(&shown)
    );
    let apply = lab.corral(&["apply", "--auto-approve", out, &inventory]);
    assert_success(&apply, "apply of the edit");
    assert_eq!(
        lab.sh("n1", "docker service inspect --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}} {{index .Spec.Labels \"io.corral.managed\"}}' api"),
        "[\"GREETING=hi\"] infra"
    );
    assert_eq!(untouched_state(&lab), before, "nothing else changed");

    let plan = lab.corral(&["plan", out, &inventory]);
    assert_success(&plan, "plan after the apply");
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("No changes"),
        "{}",
        text(&plan)
    );

    // The volume made by hand: its first option change adopts it, bricks untouched.
    let volumes = std::fs::read_to_string(out_dir.join("volumes.yaml")).unwrap();
    let edited = volumes.replace(
        "performance.cache-size: \"64MB\"",
        "performance.cache-size: \"128MB\"",
    );
    assert_ne!(edited, volumes, "{volumes}");
    std::fs::write(out_dir.join("volumes.yaml"), edited).unwrap();
    let apply = lab.corral(&["apply", "--auto-approve", out, &inventory]);
    assert_success(&apply, "apply of the volume's option");
    assert!(
        String::from_utf8_lossy(&apply.stdout).contains("adopted"),
        "{}",
        text(&apply)
    );
    assert_eq!(
        lab.sh("n1", "gluster volume info gv0 | grep -E '^(performance.cache-size|user.corral.project):' | sort"),
        "performance.cache-size: 128MB\nuser.corral.project: infra"
    );
    let plan = lab.corral(&["plan", out, &inventory]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("No changes"),
        "{}",
        text(&plan)
    );
}
