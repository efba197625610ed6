//! Tests of `swarm/cluster`: joins, roles, labels and quorum from recorded dockerd outputs,
//! and the join script run against real clients.

use super::*;
use crate::facts::HostFacts;
use crate::ClusterMember;
use std::net::IpAddr;

fn spec(managers: &[&str], workers: &[&str]) -> SwarmClusterSpec {
    SwarmClusterSpec {
        managers: managers.iter().map(|s| s.to_string()).collect(),
        workers: workers.iter().map(|s| s.to_string()).collect(),
        labels: BTreeMap::new(),
        availability: BTreeMap::new(),
        allow_even_managers: true,
        project: "default".into(),
    }
}

use crate::facts::recorded::cluster as recorded;

/// Members n1…n3 (lab addresses) with the `docker info` recorded in `cases`, and the
/// node inspect of the recorded 3-node swarm when a manager answers.
fn cluster(cases: [&str; 3]) -> (Vec<HostFacts>, Option<HostFacts>) {
    let members = cases
        .iter()
        .map(|case| {
            let mut facts = HostFacts::default();
            facts.probes.insert(
                swarm::INFO_KEY.into(),
                recorded("swarm-info", case, &swarm::info_probe()),
            );
            facts
        })
        .collect();
    let manager = (cases[0] != "blank").then(|| {
        let mut facts = HostFacts::default();
        facts.probes.insert(
            swarm::NODE_INSPECT_KEY.into(),
            recorded("node-inspect", "cluster", &swarm::node_inspect_probe()),
        );
        facts
    });
    (members, manager)
}

fn facts<'a>(members: &'a [HostFacts], manager: Option<&'a HostFacts>) -> ClusterFacts<'a> {
    let members = members
        .iter()
        .enumerate()
        .map(|(i, facts)| {
            let ip: IpAddr = format!("10.234.0.{}", 11 + i).parse().unwrap();
            (format!("n{}", i + 1), ClusterMember { ip, facts })
        })
        .collect();
    // The lab's inventory: n1…n3 at the recorded addresses.
    let inventory = (1..=3)
        .map(|i| {
            (
                format!("n{i}"),
                format!("10.234.0.{}", 10 + i).parse().unwrap(),
            )
        })
        .collect();
    ClusterFacts {
        members,
        manager: manager.map(|m| ("n1".to_owned(), m)),
        inventory,
    }
}

#[test]
fn blank_hosts_plan_an_init_and_joins_with_tokens_known_after_apply() {
    let (members, manager) = cluster(["blank", "blank", "blank"]);
    let facts = facts(&members, manager.as_ref());
    let spec = spec(&["n1"], &["n2", "n3"]);
    let diff = spec.diff("main", &facts).unwrap();
    assert_eq!(diff.action(), Action::Create);
    assert_eq!(
        diff.attributes[0],
        AttrChange::new(
            "n1",
            AttrValue::Scalar("(not in a swarm)".into()),
            AttrValue::Scalar("manager (initialises the swarm)".into())
        )
    );
    assert_eq!(
        diff.attributes.last().unwrap().after,
        AttrValue::Opaque(KNOWN_AFTER_APPLY.into())
    );
    let steps = spec.steps("main", &facts).unwrap();
    let shown: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.machine.as_str(), s.step.description.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            ("n1", "initialise the swarm on n1"),
            ("n1", "read the worker join token"),
            ("n2", "join n2 to the swarm as a worker"),
            ("n1", "read the worker join token"),
            ("n3", "join n3 to the swarm as a worker"),
            ("n1", "rotate the worker join token"),
        ]
    );
    assert!(steps[2]
        .step
        .script
        .contains("corral_token=@@corral-value:token-worker@@\n"));
    assert!(steps[2]
            .step
            .script
            .contains(r#"{"ListenAddr":"10.234.0.12:2377","AdvertiseAddr":"10.234.0.12","RemoteAddrs":["10.234.0.11:2377"],"JoinToken":"$corral_token"}"#));
    assert_eq!(steps[1].produces.as_deref(), Some("token-worker"));
    // The rotation runs even when a join failed, and only it.
    let always: Vec<bool> = steps.iter().map(|s| s.always).collect();
    assert_eq!(always, [false, false, false, false, false, true]);
    assert!(steps[5]
        .step
        .script
        .contains("  docker swarm join-token --rotate -q worker >/dev/null\n"));
}

const TOKEN: &str =
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";

/// `name` on this machine's PATH, with symbolic links resolved.
fn installed(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// A directory to be a join script's whole PATH: a fake `docker` that says the node is
/// active, a fake `curl` or `python3` (`client`) that answers `reply` (its body, a
/// newline and the status, as the real ones are made to print), and the real `sed`;
/// every one of them first appends its command line to `argv`, and the client keeps
/// its stdin in `stdin`.
fn fake_path(dir: &std::path::Path, client: Option<&str>, reply: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >> {}\n",
        quote(&dir.join("argv").display().to_string())
    );
    let sed = installed("sed").expect("sed is installed");
    let mut tools = vec![
        ("docker".to_owned(), format!("{record}echo active\n")),
        (
            "sed".to_owned(),
            format!(
                "{record}exec {} \"$@\"\n",
                quote(&sed.display().to_string())
            ),
        ),
    ];
    if let Some(client) = client {
        tools.push((
            client.to_owned(),
            format!(
                "{record}/bin/cat > {}\nprintf '%s' {}\n",
                quote(&dir.join("stdin").display().to_string()),
                quote(reply)
            ),
        ));
    }
    for (name, text) in tools {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// The join step of n2 as apply sends it (token filled in, wrapped as every change
/// script), run by a real `sh` with only `bin` on its PATH: exit code and output.
fn run_join(bin: &std::path::Path, socket: &str) -> (i32, String) {
    let script = join_script(
        &placeholder("token-worker"),
        "10.234.0.12".parse().unwrap(),
        "10.234.0.11".parse().unwrap(),
        socket,
    );
    let values = [("token-worker".to_owned(), TOKEN.to_owned())].into();
    let script = crate::plan::fill_values(&script, &values).unwrap();
    let out = corral_core::testing::output_with_stdin(
        std::process::Command::new("/bin/sh")
            .arg("-s")
            .env_clear()
            .env("PATH", bin)
            .stderr(std::process::Stdio::piped()),
        crate::shell::change_script(&script).as_bytes(),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

const JOIN_BODY: &str = r#"{"ListenAddr":"10.234.0.12:2377","AdvertiseAddr":"10.234.0.12","RemoteAddrs":["10.234.0.11:2377"],"JoinToken":"SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"}
"#;

/// The token reaches Docker on the client's stdin only, with curl and with python3:
/// no command line run by the step holds it, nor does its output.
#[test]
fn join_token_reaches_docker_on_stdin_only() {
    for client in ["curl", "python3"] {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_path(dir.path(), Some(client), "\n200");
        let (rc, output) = run_join(&bin, DOCKER_SOCKET);
        assert_eq!(rc, 0, "{client}: {output}");
        assert!(!output.contains(TOKEN), "{output}");
        let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
        assert!(!argv.contains("SWMTKN"), "{client}: {argv}");
        assert!(
            argv.contains(&format!("{}/{client} ", bin.display())),
            "{argv}"
        );
        let stdin = std::fs::read_to_string(dir.path().join("stdin")).unwrap();
        assert_eq!(stdin, JOIN_BODY, "{client}");
    }
}

/// Docker's refusal is the step's error, with its message (and never the token, even
/// when the message quotes it); a join Docker goes on with in the background is waited
/// for; a host with neither client is told so.
#[test]
fn join_failures_say_what_docker_said() {
    let run = |client: Option<&str>, reply: &str| {
        let dir = tempfile::tempdir().unwrap();
        run_join(&fake_path(dir.path(), client, reply), DOCKER_SOCKET)
    };
    let (rc, output) = run(
            Some("curl"),
            "{\"message\":\"rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster\"}\n\n400",
        );
    assert_eq!(rc, 1);
    assert_eq!(output, "corral: Docker refused the join (HTTP 400): rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster\n");
    let (rc, output) = run(
        Some("python3"),
        &format!("{{\"message\":\"invalid join token {TOKEN}\"}}\n\n400"),
    );
    assert_eq!(rc, 1);
    assert_eq!(
        output,
        "corral: Docker refused the join (HTTP 400): (not shown: it quotes the join token)\n"
    );
    let (rc, output) = run(
            Some("curl"),
            "{\"message\":\"Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \\\"docker info\\\" command to see the current swarm status of your node.\"}\n\n503",
        );
    assert_eq!(rc, 0, "{output}");
    assert_eq!(
        output,
        "corral: Docker goes on joining in the background; waiting for it\n"
    );
    let (rc, output) = run(None, "");
    assert_eq!(rc, 1);
    assert!(output.contains("neither curl nor python3"), "{output}");
}

/// A one-connection HTTP server on a Unix socket, as dockerd's: answers `status` and
/// `body`, and gives back the request it read.
fn engine_once(
    socket: &std::path::Path,
    status: &'static str,
    body: &'static str,
) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            request.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut content = vec![0; length];
        reader.read_exact(&mut content).unwrap();
        request.push_str(&String::from_utf8(content).unwrap());
        let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        reader.get_mut().write_all(reply.as_bytes()).unwrap();
        request
    })
}

/// With the real curl and the real python3, the join is a `POST /swarm/join` on the
/// daemon's socket whose body holds the token, and Docker's status decides.
#[test]
fn join_speaks_the_engine_api_with_the_real_clients() {
    for client in ["curl", "python3"] {
        let real = match client {
            // pyenv and the like put a shim first: the interpreter itself is wanted.
            "python3" => std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .ok()
                .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())),
            _ => installed(client),
        }
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("this test needs {client} (scripts/install-deps.sh installs it)")
        });
        for (status, body, rc) in [
                ("200 OK", "", 0),
                (
                    "503 Service Unavailable",
                    "{\"message\":\"This node is already part of a swarm. Use \\\"docker swarm leave\\\" to leave this swarm and join another one.\"}\n",
                    1,
                ),
            ] {
                let dir = tempfile::tempdir().unwrap();
                let bin = fake_path(dir.path(), None, "");
                std::os::unix::fs::symlink(&real, bin.join(client)).unwrap();
                let socket = dir.path().join("docker.sock");
                let server = engine_once(&socket, status, body);
                let (code, output) = run_join(&bin, &socket.display().to_string());
                let request = server.join().unwrap();
                assert_eq!(code, rc, "{client}: {output}");
                assert!(
                    request.starts_with("POST /swarm/join HTTP/1.1\r\n"),
                    "{client}: {request}"
                );
                assert!(request.ends_with(JOIN_BODY), "{client}: {request}");
                if rc == 1 {
                    assert_eq!(
                        output,
                        "corral: Docker refused the join (HTTP 503): This node is already part of a swarm. Use \\\"docker swarm leave\\\" to leave this swarm and join another one.\n",
                        "{client}"
                    );
                }
                let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap_or_default();
                assert!(!argv.contains("SWMTKN"), "{argv}");
            }
    }
}

/// The recorded swarm (n1 and n2 managers, n3 worker, labels role/zone) as configured:
/// nothing to do. A label changed and one removed show as exactly that.
#[test]
fn converged_swarm_is_a_no_op_and_labels_diff_per_key() {
    let (members, manager) = cluster(["leader", "manager", "worker"]);
    let facts = facts(&members, manager.as_ref());
    let mut spec = spec(&["n1", "n2"], &["n3"]);
    assert_eq!(spec.diff("main", &facts).unwrap().action(), Action::NoOp);
    spec.labels.insert(
        "n3".into(),
        [("role".to_owned(), "cache".to_owned())].into(),
    );
    let diff = spec.diff("main", &facts).unwrap();
    assert_eq!(diff.action(), Action::Update);
    assert_eq!(
        diff.attributes,
        [
            AttrChange::scalar("n3 labels.role", "db", "cache"),
            AttrChange::new(
                "n3 labels.zone",
                AttrValue::Scalar("c".into()),
                AttrValue::Absent
            ),
        ]
    );
    let steps = spec.steps("main", &facts).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].machine, "n1");
    let n3 = swarm::parse_info(swarm::INFO_KEY, &members[2].probes[swarm::INFO_KEY])
        .unwrap()
        .node_id;
    assert!(
            steps[0].step.script.contains(&format!(
                "docker node update --label-add 'io.corral.labels=role' --label-add 'role=cache' --label-rm zone {n3}"
            )),
            "{}",
            steps[0].step.script
        );
}

/// Labels set by hand exactly as declared (the recorded nodes have no
/// `io.corral.labels`, as after `corral import`) are no change; the first change of a
/// node's labels marks them as corral's in the same update.
#[test]
fn labels_set_by_hand_as_declared_are_adopted_without_a_change() {
    let (members, manager) = cluster(["leader", "manager", "worker"]);
    let facts = facts(&members, manager.as_ref());
    let mut spec = spec(&["n1", "n2"], &["n3"]);
    for (machine, role, zone) in [("n1", "edge", "a"), ("n2", "edge", "b"), ("n3", "db", "c")] {
        spec.labels.insert(
            machine.into(),
            [
                ("role".to_owned(), role.to_owned()),
                ("zone".to_owned(), zone.to_owned()),
            ]
            .into(),
        );
    }
    assert_eq!(spec.diff("main", &facts).unwrap().action(), Action::NoOp);
    assert!(spec.steps("main", &facts).unwrap().is_empty());
    spec.labels
        .get_mut("n3")
        .unwrap()
        .insert("zone".into(), "d".into());
    let diff = spec.diff("main", &facts).unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("n3 labels.zone", "c", "d")]
    );
    let script = &spec.steps("main", &facts).unwrap()[0].step.script;
    assert!(
        script.contains("--label-add 'io.corral.labels=role,zone'"),
        "{script}"
    );
}

/// A node listed with an availability gets it, on the manager, after its labels; the
/// recorded nodes are all active, so listing one as active changes nothing.
#[test]
fn availability_is_set_where_it_differs() {
    let (members, manager) = cluster(["leader", "manager", "worker"]);
    let facts = facts(&members, manager.as_ref());
    let mut spec = spec(&["n1", "n2"], &["n3"]);
    spec.availability
        .insert("n1".into(), NodeAvailability::Active);
    assert_eq!(spec.diff("main", &facts).unwrap().action(), Action::NoOp);
    spec.availability
        .insert("n3".into(), NodeAvailability::Drain);
    let diff = spec.diff("main", &facts).unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("n3 availability", "active", "drain")]
    );
    let steps = spec.steps("main", &facts).unwrap();
    assert_eq!(steps.len(), 1);
    assert!(steps[0]
        .step
        .script
        .contains("until out=$(docker node update --availability drain "));
}

/// A label swap: the machine no longer listed loses the labels corral set (named by
/// its marker) and keeps the ones set by hand; the newly listed one gets its labels and
/// the marker; labels already right only gain the marker.
#[test]
fn labels_corral_set_go_when_their_machine_is_no_longer_listed() {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let was_listed = map(&[("role", "active"), (LABELS_MARKER, "role"), ("zone", "a")]);
    assert_eq!(
        label_changes(None, &was_listed),
        (BTreeMap::new(), vec!["role".into(), LABELS_MARKER.into()])
    );
    assert_eq!(
        label_changes(None, &map(&[("zone", "a")])),
        (BTreeMap::new(), vec![])
    );
    let want = map(&[("role", "active")]);
    assert_eq!(
        label_changes(Some(&want), &map(&[("zone", "b")])),
        (
            map(&[("role", "active"), (LABELS_MARKER, "role")]),
            vec!["zone".into()]
        )
    );
    assert_eq!(
        label_changes(Some(&want), &map(&[("role", "active")])),
        (map(&[(LABELS_MARKER, "role")]), vec![])
    );
}

/// Demoting managers so that fewer than a majority of today's remain is refused with
/// the arithmetic and the way there; one of two, both reachable, is demoted (a swarm
/// can go back to one manager); promoting is fine.
#[test]
fn demotions_keep_a_quorum_and_a_refusal_says_the_way() {
    let (members, manager) = cluster(["leader", "manager", "worker"]);
    let recorded = facts(&members, manager.as_ref());
    let diff = spec(&["n1"], &["n2", "n3"])
        .diff("main", &recorded)
        .unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("n2", "manager", "worker")]
    );
    let steps = spec(&["n1"], &["n2", "n3"])
        .steps("main", &recorded)
        .unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].step.description, "demote n2");
    let diff = spec(&["n1", "n2", "n3"], &[])
        .diff("main", &recorded)
        .unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("n3", "worker", "manager")]
    );
    // Three managers (n1 stopped): n1 and n3 leaving at once is refused, with the way.
    let (members, manager) = stopped_leader();
    let mut cluster = facts(&members, Some(&manager));
    cluster.manager = Some(("n2".into(), &manager));
    let error = spec(&["n2"], &[]).diff("main", &cluster).unwrap_err();
    assert_eq!(
            error.message,
            "3 managers -> 1: demoting 2 of 3 at once loses the managers' quorum (2 of 3 must stay); go 3 -> 2 (with `allow_even_managers: true`), then 2 -> 1, one apply each"
        );
    assert_eq!(
        way_down(5, 1),
        "5 -> 3, 3 -> 2 (with `allow_even_managers: true`), then 2 -> 1"
    );
    assert_eq!(way_down(4, 3), "4 -> 3");
}

/// Members n1 and n2 of the recorded swarm whose leader's Docker stopped: n1 (down),
/// n2 (the new leader, read for the nodes); n3, a reachable manager, is not a member.
fn stopped_leader() -> (Vec<HostFacts>, HostFacts) {
    let member = |case: &str| {
        let mut facts = HostFacts::default();
        facts.probes.insert(
            swarm::INFO_KEY.into(),
            recorded("swarm-info", case, &swarm::info_probe()),
        );
        facts
    };
    let members = vec![member("daemon-down"), member("manager-down")];
    let mut manager = HostFacts::default();
    manager.probes.insert(
        swarm::NODE_INSPECT_KEY.into(),
        recorded("node-inspect", "manager-down", &swarm::node_inspect_probe()),
    );
    (members, manager)
}

/// A manager no longer listed is demoted first, and the plan says so; one of two
/// leaves that way while both answer.
#[test]
fn a_manager_that_leaves_is_demoted_first_and_the_plan_says_so() {
    let (members, manager) = cluster(["leader", "manager", "worker"]);
    let facts = facts(&members, manager.as_ref());
    let spec = spec(&["n1"], &["n3"]);
    let diff = spec.diff("main", &facts).unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar(
            "n2",
            "manager",
            "(demoted, drained, leaves the swarm, removed)"
        )]
    );
    assert_eq!(
            diff.reason.as_deref(),
            Some("n2 no longer listed: demoted to worker first (the other managers keep the quorum), then drained, made to leave and removed")
        );
    let steps: Vec<(String, String)> = spec
        .steps("main", &facts)
        .unwrap()
        .into_iter()
        .map(|s| (s.machine, s.step.description))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "n1".to_owned(),
                "demote n2 before it leaves the swarm".to_owned()
            ),
            ("n1".to_owned(), "drain n2".to_owned()),
            ("n2".to_owned(), "n2 leaves the swarm".to_owned()),
            ("n1".to_owned(), "remove n2 from the swarm".to_owned()),
        ]
    );
    // A worker that leaves is not demoted, and no reason is given.
    let diff = super::tests::spec(&["n1", "n2"], &[])
        .diff("main", &facts)
        .unwrap();
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar(
            "n3",
            "worker",
            "(drained, leaves the swarm, removed)"
        )]
    );
    assert_eq!(diff.reason, None);
}

/// The leader's dockerd stopped: the plan still works, read from another manager, and
/// leaves the stopped member as it is; a demotion that would leave fewer answering
/// managers than a majority (Docker refuses it) is refused in the plan.
#[test]
fn a_stopped_manager_does_not_stop_the_plan() {
    let (members, manager) = stopped_leader();
    let mut cluster = facts(&members, Some(&manager));
    cluster.manager = Some(("n2".into(), &manager));
    let both = spec(&["n1", "n2"], &[]);
    assert_eq!(both.manager_candidates(&cluster), ["n2"]);
    // n3 leaving would leave n1 (down) and n2: one of two answers.
    let error = both.diff("main", &cluster).unwrap_err();
    assert_eq!(
            error.message,
            "3 managers -> 2: n1 does not answer as a manager, so 1 of the 2 managers left would: Docker refuses a demotion without such a majority; start Docker on n1 first, or let n1 leave the swarm too (no longer listed)"
        );
    // Its role cannot change while its daemon is down.
    let error = spec(&["n2"], &["n1"]).diff("main", &cluster).unwrap_err();
    assert!(
        error.message.contains("n1's Docker daemon does not answer"),
        "{error}"
    );
}

/// What the managers answered a drain right after a demotion, in a `lab_end_to_end` run.
const OUT_OF_SEQUENCE: &str =
    "Error response from daemon: rpc error: code = Unknown desc = update out of sequence";

/// A node change is tried again while the managers answer "update out of sequence", and
/// not after any other failure, nor more than ten times; a real `sh` runs it with a
/// `docker` that fails `failures` times with `error` first (and a `sleep` that does not).
#[test]
fn a_node_change_out_of_sequence_is_tried_again() {
    use std::os::unix::fs::PermissionsExt;
    let run = |failures: u32, error: &str| -> (i32, String, usize) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let calls = dir.path().join("calls");
        let docker = format!(
            "#!/bin/sh\necho \"$*\" >> {calls}\nn=$(wc -l < {calls})\nif [ \"$n\" -le {failures} ]; then echo {error} >&2; exit 1; fi\necho x\n",
            calls = quote(&calls.display().to_string()),
            error = quote(error),
        );
        for (name, text) in [
            ("docker", docker.as_str()),
            ("sleep", "#!/bin/sh\n"),
            ("wc", ""),
        ] {
            if text.is_empty() {
                let real = installed(name).expect("installed");
                std::os::unix::fs::symlink(real, bin.join(name)).unwrap();
                continue;
            }
            std::fs::write(bin.join(name), text).unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(crate::shell::change_script(&retried(
                "docker node update --availability drain n3",
            )))
            .env_clear()
            .env("PATH", &bin)
            .output()
            .unwrap();
        let called = std::fs::read_to_string(&calls).unwrap_or_default();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            called.lines().count(),
        )
    };
    let (rc, out, calls) = run(2, OUT_OF_SEQUENCE);
    assert_eq!((rc, out.as_str(), calls), (0, "x\n", 3));
    let refused = "Error response from daemon: node n3 not found";
    let (rc, out, calls) = run(5, refused);
    assert_eq!((rc, calls), (1, 1));
    assert!(out.contains(refused), "{out}");
    let (rc, out, calls) = run(100, OUT_OF_SEQUENCE);
    assert_eq!((rc, calls), (1, 10));
    assert!(out.contains("update out of sequence"), "{out}");
}
