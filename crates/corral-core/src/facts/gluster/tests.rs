//! Tests of the Gluster fact parsers, on outputs recorded from real glusterd
//! (`fixtures/cluster/`).

use super::*;

use crate::facts::recorded::cluster as recorded;

fn peer_status(case: &str) -> Vec<Peer> {
    let probe = peer_status_probe();
    parse_peer_status(&probe.key, &recorded("peer-status", case, &probe)).unwrap()
}

/// The batch of `volume_probe` split by `expand`, and the same three questions asked
/// alone in the same moment (scripts/record-volume-batch-fixtures.sh).
fn batch_and_alone(
    case: &str,
    volume: &str,
) -> (super::super::HostFacts, Vec<(String, ProbeOutput)>) {
    let batch = volume_probe(volume);
    let mut facts = super::super::HostFacts::default();
    facts
        .probes
        .insert(batch.key.clone(), recorded("volume", case, &batch));
    expand(&mut facts);
    let alone = [
        ("volume-info", volume_info_probe(Some(volume))),
        ("volume-status", volume_status_probe(volume)),
        ("volume-get", volume_get_probe(volume, None)),
    ]
    .map(|(fact, probe)| {
        let out = recorded(fact, &format!("batch-{case}"), &probe);
        (probe.key, out)
    });
    (facts, alone.into())
}

/// One `gluster` process answers what three did, and each answer reads as the same
/// question asked alone: a started volume, one that does not exist.
#[test]
fn a_volume_asked_in_one_batch_reads_as_asked_alone() {
    for (case, volume) in [("started", "krill-data"), ("missing", "nosuch")] {
        let (facts, alone) = batch_and_alone(case, volume);
        assert_eq!(facts.probes.len(), 3, "{case}: {:?}", facts.probes.keys());
        for (key, out) in &alone {
            let split = facts.get(key).unwrap();
            let read = canonical(key, split);
            assert!(read.is_some(), "{case}: {key} does not parse");
            assert_eq!(read, canonical(key, out), "{case}: {key}");
        }
    }
    let (facts, _) = batch_and_alone("started", "krill-data");
    let key = volume_status_probe("krill-data").key;
    let VolumeStatusReply::Status(status) = parse_volume_status(&key, &facts.probes[&key]).unwrap()
    else {
        panic!("the volume is started")
    };
    assert_eq!(status.bricks.len(), 3);
    let key = volume_get_probe("krill-data", None).key;
    let options = parse_volume_get(&key, &facts.probes[&key])
        .unwrap()
        .unwrap();
    assert_eq!(options["performance.client-io-threads"].value, "off");
    let key = volume_info_probe(Some("nosuch")).key;
    let (missing, _) = batch_and_alone("missing", "nosuch");
    assert_eq!(parse_volume_info(&key, &missing.probes[&key]).unwrap(), []);
}

/// With glusterd down the CLI answers the batch once, without a document: every
/// question fails naming it, as each did alone.
#[test]
fn a_batch_to_a_stopped_glusterd_fails_each_question() {
    let (facts, alone) = batch_and_alone("daemon-down", "krill-data");
    for (key, out) in &alone {
        let split = facts.get(key).unwrap();
        let alone = parse_volume_info(key, out).unwrap_err();
        assert!(alone.message.contains("Connection failed"), "{alone}");
        let err = match key.starts_with(VOLUME_STATUS_PREFIX) {
            true => parse_volume_status(key, split).map(|_| ()).unwrap_err(),
            false if key.starts_with(VOLUME_GET_PREFIX) => {
                parse_volume_get(key, split).map(|_| ()).unwrap_err()
            }
            false => parse_volume_info(key, split).map(|_| ()).unwrap_err(),
        };
        assert!(err.message.contains("Connection failed"), "{key}: {err}");
        assert!(!err.message.contains("Welcome"), "{key}: {err}");
    }
}

/// A name no line of the CLI's input may carry is asked in three processes, quoted.
#[test]
fn a_volume_name_gluster_refuses_is_asked_alone_and_quoted() {
    let probe = volume_probe("a b;x");
    assert!(!probe.script.contains("printf"), "{}", probe.script);
    assert_eq!(probe.script.matches("gluster ").count(), 3);
    assert!(probe.script.contains("'a b;x'"), "{}", probe.script);
}

fn volumes(case: &str, probe: &Probe) -> Vec<Volume> {
    parse_volume_info(&probe.key, &recorded("volume-info", case, probe)).unwrap()
}

/// Facts holding only `volume status gv0` as recorded in `case`.
fn status_facts(case: &str) -> crate::facts::HostFacts {
    let probe = volume_status_probe("gv0");
    let out = recorded("volume-status", case, &probe);
    crate::facts::HostFacts {
        probes: BTreeMap::from([(probe.key, out)]),
        ..Default::default()
    }
}

/// `apply PLANFILE` right after `plan -o` was refused as stale in 2 of 5 tries: glusterd
/// lists the other peers' self-heal daemons in the order their answers arrive. Two
/// readings of the unchanged volume (recorded one after the other, in both orders)
/// digest alike; a brick whose process died digests otherwise.
#[test]
fn volume_status_digests_alike_whatever_order_the_daemons_come_in() {
    let (first, second) = (
        status_facts("daemons-in-order"),
        status_facts("daemons-reordered"),
    );
    assert_ne!(first.probes, second.probes, "the recordings differ as text");
    assert_eq!(first.digest(), second.digest());
    assert_ne!(
        status_facts("started").digest(),
        status_facts("brick-down").digest()
    );
    // What the digest covers: the facts parsed, in order, without process IDs.
    let probe = volume_status_probe("gv0");
    let canonical = |case| canonical(&probe.key, &recorded("volume-status", case, &probe)).unwrap();
    assert_eq!(
        canonical("daemons-in-order"),
        canonical("daemons-reordered")
    );
    assert!(!canonical("started").contains("pid"));
    assert_eq!(canonical("missing"), "Missing");
}

/// The pool's and volumes' other probes digest their parsed facts too, each reading
/// distinct from the others; output that does not parse is digested as it is.
#[test]
fn pool_and_volume_probes_digest_their_parsed_facts() {
    let peers = peer_status_probe();
    let info = volume_info_probe(Some("gv0"));
    let get = volume_get_probe("gv0", None);
    let one = volume_get_probe("gv0", Some("performance.cache-size"));
    let forms = [
        canonical(&peers.key, &recorded("peer-status", "cluster", &peers)),
        canonical(&peers.key, &recorded("peer-status", "peer-down", &peers)),
        canonical(&info.key, &recorded("volume-info", "named", &info)),
        canonical(&info.key, &recorded("volume-info", "missing", &info)),
        canonical(&get.key, &recorded("volume-get", "all", &get)),
        canonical(&one.key, &recorded("volume-get", "one", &one)),
    ];
    let forms: Vec<String> = forms.into_iter().map(Option::unwrap).collect();
    let distinct: std::collections::BTreeSet<&String> = forms.iter().collect();
    assert_eq!(distinct.len(), forms.len());
    let down = recorded("peer-status", "daemon-down", &peers);
    assert_eq!(canonical(&peers.key, &down), None, "{down:?}");
    assert_eq!(canonical("gluster:brick:/data/bricks/gv0", &down), None);
}

fn status(case: &str) -> VolumeStatusReply {
    let probe = volume_status_probe("gv0");
    parse_volume_status(&probe.key, &recorded("volume-status", case, &probe)).unwrap()
}

fn get(
    case: &str,
    option: Option<&str>,
) -> Result<Option<BTreeMap<String, OptionValue>>, FactError> {
    let probe = volume_get_probe("gv0", option);
    parse_volume_get(&probe.key, &recorded("volume-get", case, &probe))
}

#[test]
fn blank_host_has_no_peers_and_no_volumes() {
    assert!(peer_status("blank").is_empty());
    assert!(volumes("blank", &volume_info_probe(None)).is_empty());
    let probe = pool_list_probe();
    let pool = parse_pool_list(&probe.key, &recorded("pool-list", "blank", &probe)).unwrap();
    assert_eq!(pool.len(), 1);
    assert_eq!(pool[0].hostname, "localhost");
    assert!(pool[0].connected && pool[0].state.is_none() && pool[0].hostnames.is_empty());
}

#[test]
fn probed_peers_are_in_cluster() {
    let peers = peer_status("cluster");
    let names: Vec<&str> = peers.iter().map(|p| p.hostname.as_str()).collect();
    assert_eq!(names, ["n2", "n3"]);
    assert!(peers.iter().all(Peer::in_cluster));
    assert!(peers[0].known_as("n2") && !peers[0].known_as("n3"));
    // n2 sees n1 (which probed it) and n3.
    let from_n2 = peer_status("from-n2");
    let mut names: Vec<&str> = from_n2.iter().map(|p| p.hostname.as_str()).collect();
    names.sort();
    assert_eq!(names, ["n1", "n3"]);
    assert!(from_n2.iter().all(Peer::in_cluster));
    let probe = pool_list_probe();
    let pool = parse_pool_list(&probe.key, &recorded("pool-list", "cluster", &probe)).unwrap();
    let names: Vec<&str> = pool.iter().map(|p| p.hostname.as_str()).collect();
    assert_eq!(names, ["n2", "n3", "localhost"]);
    // The pool's localhost is n1: n2 knows n1 by the UUID the pool gives localhost.
    let n1 = from_n2.iter().find(|p| p.hostname == "n1").unwrap();
    assert_eq!(pool[2].uuid, n1.uuid);
}

#[test]
fn stopped_glusterd_is_a_disconnected_peer_still_in_cluster() {
    let peers = peer_status("peer-down");
    let n3 = peers.iter().find(|p| p.hostname == "n3").unwrap();
    assert!(!n3.connected);
    assert_eq!(n3.state.as_deref(), Some("Peer in Cluster"));
    assert!(!n3.in_cluster());
    assert!(peers
        .iter()
        .find(|p| p.hostname == "n2")
        .unwrap()
        .in_cluster());
}

#[test]
fn replica_3_arbiter_1_volume() {
    let volumes = volumes("started", &volume_info_probe(None));
    assert_eq!(volumes.len(), 1);
    let gv0 = &volumes[0];
    assert_eq!(gv0.name, "gv0");
    assert_eq!(gv0.state, VolumeState::Started);
    assert_eq!(gv0.kind, "Replicate");
    assert_eq!(
        (
            gv0.brick_count,
            gv0.replica_count,
            gv0.arbiter_count,
            gv0.dist_count
        ),
        (3, 3, 1, 1)
    );
    let bricks: Vec<(&str, &str, bool)> = gv0
        .bricks
        .iter()
        .map(|b| (b.host.as_str(), b.path.as_str(), b.is_arbiter))
        .collect();
    assert_eq!(
        bricks,
        [
            ("n1", "/data/bricks/gv0", false),
            ("n2", "/data/bricks/gv0", false),
            ("n3", "/data/bricks/gv0", true)
        ]
    );
    // Brick hosts carry the peers' UUIDs.
    let peers = peer_status("cluster");
    let n3 = peers.iter().find(|p| p.hostname == "n3").unwrap();
    assert_eq!(gv0.bricks[2].host_uuid, n3.uuid);
    assert_eq!(gv0.managed_by(), Some("default"));
    assert_eq!(gv0.options["performance.cache-size"], "64MB");
    // Set by glusterd itself at creation.
    assert_eq!(gv0.options["nfs.disable"], "on");
    assert_eq!(gv0.options.len(), 7);
}

#[test]
fn created_volume_is_not_started() {
    let volumes = volumes("created", &volume_info_probe(None));
    assert_eq!(volumes[0].state, VolumeState::Created);
    assert_eq!(volumes[0].managed_by(), Some("default"));
    assert_eq!(status("not-started"), VolumeStatusReply::NotStarted);
}

#[test]
fn volume_info_by_name() {
    let volumes = volumes("named", &volume_info_probe(Some("gv0")));
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].id.len(), 36);
    // Missing: exit code 0, opRet -1, "Volume does not exist" without the name.
    let probe = volume_info_probe(Some("gv0"));
    let out = recorded("volume-info", "missing", &probe);
    assert_eq!(out.rc, 0);
    assert!(out
        .output
        .contains("<opErrstr>Volume does not exist</opErrstr>"));
    assert!(parse_volume_info(&probe.key, &out).unwrap().is_empty());
}

#[test]
fn volume_info_with_a_peer_down_still_lists_every_brick() {
    let volumes = volumes("peer-down", &volume_info_probe(None));
    assert_eq!(volumes[0].state, VolumeState::Started);
    assert_eq!(volumes[0].bricks.len(), 3);
}

#[test]
fn started_volume_processes() {
    let VolumeStatusReply::Status(status) = status("started") else {
        panic!("gv0 is started")
    };
    assert_eq!(status.name, "gv0");
    assert_eq!(status.bricks.len(), 3);
    assert!(status
        .bricks
        .iter()
        .all(|b| b.online && b.port.is_some() && b.pid.is_some()));
    assert_eq!(status.bricks[2].host, "n3");
    assert_eq!(status.bricks[2].path, "/data/bricks/gv0");
    // The machine asked first, then the others in no fixed order.
    let mut daemons: Vec<(&str, &str, bool)> = status
        .daemons
        .iter()
        .map(|d| (d.name.as_str(), d.host.as_str(), d.online))
        .collect();
    daemons[1..].sort();
    assert_eq!(
        daemons,
        [
            ("Self-heal Daemon", "localhost", true),
            ("Self-heal Daemon", "n2", true),
            ("Self-heal Daemon", "n3", true)
        ]
    );
}

#[test]
fn killed_brick_is_offline_without_port_or_pid() {
    let VolumeStatusReply::Status(status) = status("brick-down") else {
        panic!("gv0 is started")
    };
    let n2 = status.bricks.iter().find(|b| b.host == "n2").unwrap();
    assert_eq!((n2.online, n2.port, n2.pid), (false, None, None));
    assert!(status
        .bricks
        .iter()
        .filter(|b| b.host != "n2")
        .all(|b| b.online));
}

#[test]
fn disconnected_peer_is_left_out_of_volume_status() {
    let VolumeStatusReply::Status(status) = status("peer-down") else {
        panic!("gv0 is started")
    };
    let hosts: Vec<&str> = status.bricks.iter().map(|b| b.host.as_str()).collect();
    assert_eq!(hosts, ["n1", "n2"]);
    assert!(status.daemons.iter().all(|d| d.host != "n3"));
}

#[test]
fn missing_volume_status_and_options() {
    assert_eq!(status("missing"), VolumeStatusReply::Missing);
    let probe = volume_get_probe("gv0", None);
    let out = recorded("volume-get", "missing", &probe);
    assert_eq!(out.rc, 1);
    assert_eq!(parse_volume_get(&probe.key, &out).unwrap(), None);
}

#[test]
fn all_options_mark_defaults_and_leave_out_user_options() {
    let options = get("all", None).unwrap().unwrap();
    assert!(options.len() > 300, "{}", options.len());
    assert_eq!(
        options["performance.cache-size"],
        OptionValue {
            value: "64MB".into(),
            is_default: false
        }
    );
    assert_eq!(
        options["cluster.min-free-disk"],
        OptionValue {
            value: "10%".into(),
            is_default: true
        }
    );
    assert!(!options.contains_key("user.corral.project"));
    assert!(!options["nfs.disable"].is_default);
}

#[test]
fn one_option_and_a_user_option() {
    let one = get("one", Some("performance.cache-size")).unwrap().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one["performance.cache-size"].value, "64MB");
    let user = get("user-option", Some("user.corral.project"))
        .unwrap()
        .unwrap();
    assert_eq!(
        user["user.corral.project"],
        OptionValue {
            value: "default".into(),
            is_default: false
        }
    );
}

#[test]
fn unknown_option_is_an_error_with_gluster_s_guess() {
    let err = get("unknown-option", Some("no.such.option")).unwrap_err();
    assert!(err.message.starts_with("gluster failed"), "{err}");
    assert!(err.message.contains("Did you mean"), "{err}");
}

#[test]
fn stopped_glusterd_is_an_error_quoting_the_cli() {
    let probe = peer_status_probe();
    let out = recorded("peer-status", "daemon-down", &probe);
    assert_eq!(out.rc, 1);
    let err = parse_peer_status(&probe.key, &out).unwrap_err();
    assert!(
        err.message
            .contains("Connection failed. Please check if gluster daemon is operational."),
        "{err}"
    );
}

/// Recorded with the walking probe (`scripts/record-cluster-fixtures.sh`), which prints
/// what the plan's probe prints (`lab_end_to_end` compares them on real bricks).
fn brick(case: &str, path: &str) -> BrickDir {
    let probe = brick_probe_walking(path);
    assert_eq!(probe.key, brick_probe(path).key);
    parse_brick(&probe.key, &recorded("brick", case, &probe)).unwrap()
}

#[test]
fn brick_directories_as_glusterd_will_check_them() {
    // Missing, below the lab's brick file system.
    let blank = brick("blank", "/data/bricks/gv0");
    assert_eq!(
        blank,
        BrickDir {
            filesystem: "/data/bricks".into(),
            ..BrickDir::default()
        }
    );
    assert!(!blank.on_root_filesystem());
    assert!(brick("root-partition", "/srv/bricks/gv0").on_root_filesystem());
    let mount_point = brick("mount-point", "/data/bricks");
    assert!(mount_point.exists && mount_point.mount_point);
    // After `volume create` and `start`: both attributes on the brick itself.
    let in_use = brick("in-use", "/data/bricks/gv0");
    assert!(in_use.exists && !in_use.no_getfattr);
    assert_eq!(
        in_use.in_use,
        [
            (
                "trusted.glusterfs.volume-id".to_owned(),
                "/data/bricks/gv0".to_owned()
            ),
            ("trusted.gfid".to_owned(), "/data/bricks/gv0".to_owned())
        ]
    );
}

#[test]
fn brick_paths_are_quoted_and_the_probe_keeps_its_variables() {
    let script = brick_probe("/a b").script;
    assert!(
        script.starts_with("(p='/a b'\n") && script.ends_with(')'),
        "{script}"
    );
}

#[test]
fn mounts_and_fstab_lines() {
    let probe = mount_probe("/mnt/gv0");
    let none = parse_mount(&probe.key, &recorded("mount", "not-mounted", &probe)).unwrap();
    assert_eq!(none, None);
    let gv0 = parse_mount(&probe.key, &recorded("mount", "mounted", &probe))
        .unwrap()
        .unwrap();
    assert_eq!(
        (gv0.source.as_str(), gv0.gluster_volume()),
        ("n1:/gv0", Some("gv0"))
    );
    let probe = mount_probe("/data/bricks");
    let tmpfs = parse_mount(&probe.key, &recorded("mount", "other-fs", &probe))
        .unwrap()
        .unwrap();
    assert_eq!(
        (tmpfs.fstype.as_str(), tmpfs.gluster_volume()),
        ("tmpfs", None)
    );
    let probe = fstab_probe("/mnt/gv0");
    assert!(parse_fstab(&probe.key, &recorded("fstab", "blank", &probe))
        .unwrap()
        .is_empty());
    let lines = parse_fstab(&probe.key, &recorded("fstab", "gv0", &probe)).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].fstype(), "glusterfs");
    assert_eq!(lines[0].fields[0], "n1:/gv0");
}

#[test]
fn volume_names_are_quoted() {
    assert_eq!(
        volume_get_probe("a b", Some("x;y")).script,
        "gluster --mode=script --xml volume get 'a b' 'x;y'"
    );
}

/// A plain path's probe lists its parents and reads the attributes in one `getfattr`;
/// an odd one is walked. Both print the same for paths on this machine (a real `sh` and
/// `findmnt`; the lab test compares them on bricks with the attributes set).
#[test]
fn plain_brick_paths_list_their_parents_and_print_what_the_walk_prints() {
    let planned = brick_probe("/data/bricks/gv0").script;
    assert!(
        planned.contains("for d in /data/bricks /data /; do")
            && planned.contains("for d in /data/bricks/gv0 /data/bricks /data /; do")
            && !planned.contains("dirname"),
        "{planned}"
    );
    for odd in ["/a b", "/a/../b", "/a//b", "/a/", "relative"] {
        assert_eq!(brick_probe(odd), brick_probe_walking(odd), "{odd}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(root.join("bricks/gv0")).unwrap();
    std::fs::write(root.join("file"), b"x").unwrap();
    let run = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("exec 2>&1\n{script}")])
            .output()
            .unwrap();
        (String::from_utf8(out.stdout).unwrap(), out.status.code())
    };
    for path in [
        "bricks/gv0",
        "bricks",
        "missing/deeper",
        "file",
        "file/below",
    ] {
        let path = root.join(path).display().to_string();
        let (listed, walked) = (brick_probe(&path), brick_probe_walking(&path));
        assert_ne!(listed.script, walked.script, "{path}");
        let out = run(&listed.script);
        assert!(out.0.contains("filesystem "), "{path}: {out:?}");
        assert_eq!(out, run(&walked.script), "{path}");
    }
}
