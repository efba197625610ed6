//! Tests of `gluster/volume`: its plan from recorded glusterd outputs and its refusals.

use super::*;
use crate::base::selector::Selector;
use crate::facts::recorded::cluster as recorded;
use crate::ClusterMember;

const BRICKS: &str = "/data/bricks/gv0";
const MOUNT: &str = "/mnt/gv0";

/// The recorded volume: gv0, replica 3 arbiter 1 on n1…n3, `performance.cache-size`
/// 64MB, project `default`, mounted on n1.
fn spec() -> GlusterVolumeSpec {
    GlusterVolumeSpec {
        replica: Some(3),
        arbiter: true,
        bricks: ["n1", "n2", "n3"]
            .iter()
            .map(|m| BrickSpec {
                machine: m.to_string(),
                path: BRICKS.into(),
            })
            .collect(),
        options: BTreeMap::from([("performance.cache-size".into(), "64MB".into())]),
        mount: Some(MountSpec {
            machines: Selector::Names(vec!["n1".into()]),
            path: MOUNT.into(),
        }),
        project: "default".into(),
        mount_machines: vec!["n1".into()],
        ..GlusterVolumeSpec::default()
    }
}

/// Facts of one host: `(fact, case, probe)` recorded outputs.
fn host(recordings: &[(&str, &str, Probe)]) -> HostFacts {
    let mut facts = HostFacts::default();
    for (fact, case, probe) in recordings {
        facts
            .probes
            .insert(probe.key.clone(), recorded(fact, case, probe));
    }
    facts
}

fn peers(case: &str) -> (&'static str, &str, Probe) {
    ("peer-status", case, gluster::peer_status_probe())
}

/// The brick fixtures were recorded with the walking probe (`scripts/record-cluster-fixtures.sh`);
/// the plan's probe prints the same on real bricks (checked by `lab_end_to_end`), under the
/// same key.
fn brick<'c>(case: &'c str, path: &str) -> (&'static str, &'c str, Probe) {
    ("brick", case, gluster::brick_probe_walking(path))
}

fn mounted<'c>(case: &'c str, path: &str) -> (&'static str, &'c str, Probe) {
    ("mount", case, gluster::mount_probe(path))
}

fn fstab(case: &str) -> (&'static str, &str, Probe) {
    ("fstab", case, gluster::fstab_probe(MOUNT))
}

/// The answer of the member asked for the volume: `volume info gv0`, `volume status
/// gv0` and `volume get gv0 all` as recorded in these cases.
fn manager(info: &str, status: &str, get: &str) -> HostFacts {
    host(&[
        ("volume-info", info, gluster::volume_info_probe(Some("gv0"))),
        ("volume-status", status, gluster::volume_status_probe("gv0")),
        ("volume-get", get, gluster::volume_get_probe("gv0", None)),
    ])
}

fn facts<'a>(members: &'a [(&str, HostFacts)], manager: &'a HostFacts) -> ClusterFacts<'a> {
    ClusterFacts {
        members: members
            .iter()
            .enumerate()
            .map(|(i, (name, facts))| {
                (
                    name.to_string(),
                    ClusterMember {
                        ip: format!("10.234.0.{}", 11 + i).parse().unwrap(),
                        facts,
                    },
                )
            })
            .collect(),
        manager: Some(("n1".into(), manager)),
        inventory: BTreeMap::new(),
    }
}

/// The lab as the recorder left gv0: started, options set, mounted on n1.
fn converged() -> (Vec<(&'static str, HostFacts)>, HostFacts) {
    let members = vec![
        (
            "n1",
            host(&[
                peers("cluster"),
                brick("in-use", BRICKS),
                mounted("mounted", MOUNT),
                fstab("gv0"),
            ]),
        ),
        ("n2", host(&[peers("from-n2")])),
        ("n3", host(&[peers("from-n3")])),
    ];
    (members, manager("named", "started", "all"))
}

/// Hosts as `lab up` makes them: no peers, no volume, brick directories missing on
/// their own file system, nothing mounted. (The brick, mount and fstab probes were
/// recorded on n1; a blank n2 and n3 answer the same.)
fn blank(path: &str, brick_case: &str) -> (Vec<(&'static str, HostFacts)>, HostFacts) {
    let member = |peer_case: &str| {
        host(&[
            peers(peer_case),
            brick(brick_case, path),
            mounted("not-mounted", MOUNT),
            fstab("blank"),
        ])
    };
    let members = vec![
        ("n1", member("blank")),
        ("n2", member("blank-n2")),
        ("n3", member("blank-n3")),
    ];
    (members, manager("missing", "missing", "missing"))
}

fn all_mounts(mut spec: GlusterVolumeSpec) -> GlusterVolumeSpec {
    spec.mount = Some(MountSpec {
        machines: Selector::All,
        path: MOUNT.into(),
    });
    spec.mount_machines = vec!["n1".into(), "n2".into(), "n3".into()];
    spec
}

fn names(diff: &Diff) -> Vec<&str> {
    diff.attributes.iter().map(|a| a.name.as_str()).collect()
}

#[test]
fn the_recorded_volume_plans_nothing() {
    let (members, manager) = converged();
    let facts = facts(&members, &manager);
    let spec = spec();
    let diff = spec.diff("gv0", &facts).unwrap();
    assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    assert!(spec.steps("gv0", &facts).unwrap().is_empty());
    assert!(spec.warnings("gv0", &facts).is_empty());
    // gluster's other spellings of on/off are the same value.
    let mut yes = spec.clone();
    yes.options.insert("nfs.disable".into(), "yes".into());
    assert_eq!(yes.diff("gv0", &facts).unwrap().action(), Action::NoOp);
    assert_eq!(spec.manager_candidates(&facts), ["n1", "n2", "n3"]);
}

#[test]
fn blank_hosts_get_peers_bricks_volume_options_start_and_mounts_in_order() {
    let (members, manager) = blank(BRICKS, "blank");
    let facts = facts(&members, &manager);
    let spec = all_mounts(spec());
    let diff = spec.diff("gv0", &facts).unwrap();
    assert_eq!(diff.action(), Action::Create);
    assert_eq!(
        names(&diff),
        [
            "peers",
            "bricks",
            "layout",
            "options.user.corral.project",
            "options.performance.cache-size",
            "status",
            "fstab[n1]",
            "mounted[n1]",
            "fstab[n2]",
            "mounted[n2]",
            "fstab[n3]",
            "mounted[n3]"
        ]
    );
    assert_eq!(
        diff.attributes[0],
        AttrChange::scalar("peers", "n1", "n1, n2, n3")
    );
    assert_eq!(
        diff.attributes[1].after,
        AttrValue::Scalar(
            "n1:/data/bricks/gv0, n2:/data/bricks/gv0, n3:/data/bricks/gv0 (arbiter)".into()
        )
    );
    let steps = spec.steps("gv0", &facts).unwrap();
    let order: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.machine.as_str(), s.step.description.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("n1", "probe gluster peers n2, n3 from n1"),
            ("n1", "create the brick directories of volume gv0 on n1"),
            ("n2", "create the brick directories of volume gv0 on n2"),
            ("n3", "create the brick directories of volume gv0 on n3"),
            ("n1", "create gluster volume gv0"),
            (
                "n1",
                "set options of gluster volume gv0: performance.cache-size"
            ),
            ("n1", "start gluster volume gv0"),
            ("n1", "mount gluster volume gv0 at /mnt/gv0 on n1"),
            ("n2", "mount gluster volume gv0 at /mnt/gv0 on n2"),
            ("n3", "mount gluster volume gv0 at /mnt/gv0 on n3"),
        ]
    );
    assert!(steps[0]
        .step
        .script
        .contains("gluster --mode=script peer probe n2\ngluster --mode=script peer probe n3\n"));
    assert!(steps[1].step.script.contains("mkdir -p -- \"$p\""));
    let create = &steps[4].step.script;
    assert!(
            create.contains(
                "gluster --mode=script volume create gv0 replica 3 arbiter 1 n1:/data/bricks/gv0 n2:/data/bricks/gv0 n3:/data/bricks/gv0\n"
            ),
            "{create}"
        );
    assert!(create.contains("volume set gv0 user.corral.project default\n"));
    assert!(steps[5]
        .step
        .script
        .contains("volume set gv0 performance.cache-size 64MB\n"));
    assert!(steps[7]
            .step
            .script
            .contains("n1:/gv0 /mnt/gv0 glusterfs defaults,_netdev,backup-volfile-servers=n2:n3,x-systemd.requires=glusterd.service 0 0"));
    assert!(steps[7]
        .step
        .script
        .ends_with("findmnt -M /mnt/gv0 >/dev/null 2>&1 || mount /mnt/gv0\n"));
}

/// The wait after a start reads `volume status --xml` as recorded on the lab: all
/// bricks online passes, one brick process down (or no volume) waits.
#[test]
fn the_start_waits_until_every_brick_is_online() {
    let online = |fixture: &str| {
        let output = crate::facts::recorded::cluster(
            "volume-status",
            fixture,
            &gluster::volume_status_probe("gv0"),
        )
        .output;
        let mut awk = std::process::Command::new("awk")
            .args(["-v", "RS=</node>", ALL_BRICKS_ONLINE])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        awk.stdin
            .take()
            .unwrap()
            .write_all(output.as_bytes())
            .unwrap();
        awk.wait().unwrap().success()
    };
    assert!(online("started"));
    assert!(!online("brick-down"));
    assert!(!online("missing"));
    assert!(!online("not-started"));
}

#[test]
fn the_fstab_line_names_the_other_brick_machines_and_waits_for_glusterd_on_servers() {
    let spec = spec();
    assert_eq!(
        spec.fstab_line("gv0", "n4", "/srv/shared"),
        "n1:/gv0 /srv/shared glusterfs defaults,_netdev,backup-volfile-servers=n2:n3 0 0"
    );
    let single = GlusterVolumeSpec {
        replica: None,
        arbiter: false,
        bricks: spec.bricks[..1].to_vec(),
        ..spec
    };
    assert_eq!(
        single.fstab_line("gv0", "n1", "/m"),
        "n1:/gv0 /m glusterfs defaults,_netdev,x-systemd.requires=glusterd.service 0 0"
    );
}

#[test]
fn a_created_volume_that_is_not_started_is_started() {
    let members = vec![
        ("n1", host(&[peers("cluster")])),
        ("n2", host(&[peers("from-n2")])),
        ("n3", host(&[peers("from-n3")])),
    ];
    let manager = manager("created-named", "not-started", "created");
    let facts = facts(&members, &manager);
    let spec = GlusterVolumeSpec {
        mount: None,
        mount_machines: Vec::new(),
        ..spec()
    };
    let diff = spec.diff("gv0", &facts).unwrap();
    assert_eq!(diff.action(), Action::Update);
    assert_eq!(
        diff.attributes,
        [AttrChange::scalar("status", "Created", "Started")]
    );
    let steps = spec.steps("gv0", &facts).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].machine, "n1");
    let script = &steps[0].step.script;
    assert!(
        script.contains("awk '$1 == \"user.corral.project\" { print $2 }')\" = default ]"),
        "{script}"
    );
    assert!(script.contains("gluster --mode=script volume info gv0 | grep -q '^Status: Started$' || gluster --mode=script volume start gv0\n"));
    assert!(script.ends_with(&wait_for_bricks("gv0")));
}

#[test]
fn a_changed_option_is_set_on_the_volume() {
    let (members, manager) = converged();
    let facts = facts(&members, &manager);
    let mut spec = spec();
    spec.options
        .insert("performance.cache-size".into(), "128MB".into());
    // Never set: compared with its default, as `volume get` shows it.
    spec.options
        .insert("cluster.min-free-disk".into(), "10%".into());
    spec.options
        .insert("network.ping-timeout".into(), "10".into());
    let diff = spec.diff("gv0", &facts).unwrap();
    assert_eq!(diff.action(), Action::Update);
    assert_eq!(
        diff.attributes,
        [
            AttrChange::scalar("options.network.ping-timeout", "42", "10"),
            AttrChange::scalar("options.performance.cache-size", "64MB", "128MB"),
        ]
    );
    let steps = spec.steps("gv0", &facts).unwrap();
    assert_eq!(steps.len(), 1);
    assert!(steps[0].step.script.ends_with(
            "volume set gv0 network.ping-timeout 10\ngluster --mode=script volume set gv0 performance.cache-size 128MB\n"
        ));
}

#[test]
fn changing_the_bricks_of_an_existing_volume_is_refused() {
    let (members, manager) = converged();
    let facts = facts(&members, &manager);
    // Another set of three: growth.
    let mut grown = spec();
    for m in ["n1", "n2", "n3"] {
        grown.bricks.push(BrickSpec {
            machine: m.into(),
            path: "/data/bricks/gv0b".into(),
        });
    }
    let error = grown.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("exists as 3 bricks, replica 3 arbiter 1 (1 set(s) of 3)"),
        "{error}"
    );
    assert!(
        error.contains("asks for 6 bricks, replica 3 arbiter 1 (2 set(s) of 3)"),
        "{error}"
    );
    assert!(error.contains("not supported yet"), "{error}");
    // A brick moved: the old one holds data.
    let mut moved = spec();
    moved.bricks[2].path = "/data/bricks/other".into();
    let error = moved.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
            error.contains("removing bricks or copies that hold data is refused (the configuration drops n3:/data/bricks/gv0)"),
            "{error}"
        );
    assert!(moved.steps("gv0", &facts).is_err());
    // No arbiter any more: the same bricks would form other sets.
    let plain = GlusterVolumeSpec {
        arbiter: false,
        ..spec()
    };
    let error = plain.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("corral does not re-shape a volume"),
        "{error}"
    );
}

#[test]
fn a_volume_of_another_project_is_used_as_it_is_and_never_changed() {
    let (members, manager) = converged();
    let facts = facts(&members, &manager);
    let other = GlusterVolumeSpec {
        project: "other".into(),
        ..spec()
    };
    assert_eq!(other.diff("gv0", &facts).unwrap().action(), Action::NoOp);
    let mut changed = other.clone();
    changed
        .options
        .insert("performance.cache-size".into(), "128MB".into());
    let error = changed.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
            error.contains("differs (performance.cache-size), and is not managed by project other (user.corral.project is `default`)"),
            "{error}"
        );
}

#[test]
fn bricks_on_the_root_file_system_need_the_opt_in_and_then_force() {
    let path = "/srv/bricks/gv0";
    let (members, manager) = blank(path, "root-partition");
    let facts = facts(&members, &manager);
    let mut spec = spec();
    for brick in &mut spec.bricks {
        brick.path = path.into();
    }
    let error = spec.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("brick n1:/srv/bricks/gv0 would be on the root file system"),
        "{error}"
    );
    spec.allow_root_partition_bricks = true;
    let diff = spec.diff("gv0", &facts).unwrap();
    assert!(names(&diff).contains(&"force"), "{diff:?}");
    let steps = spec.steps("gv0", &facts).unwrap();
    let create = steps
        .iter()
        .find(|s| s.step.description == "create gluster volume gv0")
        .unwrap();
    assert!(
        create.step.script.contains("n3:/srv/bricks/gv0 force\n"),
        "{}",
        create.step.script
    );
}

#[test]
fn bricks_in_use_or_on_a_mount_point_are_refused_even_with_the_opt_in() {
    // gv0's bricks after the recorder created it: what a deleted volume leaves too.
    let (members, manager) = blank(BRICKS, "in-use");
    let facts = facts(&members, &manager);
    let spec = GlusterVolumeSpec {
        allow_root_partition_bricks: true,
        ..spec()
    };
    let error = spec.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
            error.contains("brick n1:/data/bricks/gv0 is or was part of a volume (trusted.glusterfs.volume-id is set on /data/bricks/gv0)"),
            "{error}"
        );
    let (members, manager) = blank("/data/bricks", "mount-point");
    let facts = self::facts(&members, &manager);
    let mut on_mount = spec.clone();
    for brick in &mut on_mount.bricks {
        brick.path = "/data/bricks".into();
    }
    let error = on_mount.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("brick n1:/data/bricks is a mount point"),
        "{error}"
    );
}

#[test]
fn a_mount_point_used_by_another_file_system_is_refused() {
    let (mut members, manager) = converged();
    // /data/bricks is the lab's brick file system (a tmpfs).
    members[0].1 = host(&[peers("cluster"), mounted("other-fs", "/data/bricks")]);
    let facts = facts(&members, &manager);
    let spec = GlusterVolumeSpec {
        mount: Some(MountSpec {
            machines: Selector::Names(vec!["n1".into()]),
            path: "/data/bricks".into(),
        }),
        ..spec()
    };
    let error = spec.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("n1: /data/bricks is already the mount point of tmpfs (tmpfs)"),
        "{error}"
    );
}

#[test]
fn a_brick_machine_in_another_pool_is_refused() {
    let (mut members, manager) = blank(BRICKS, "blank");
    // n2 is in a pool with n1 and n3, of which the blank n1 knows nothing.
    members[1].1 = host(&[peers("from-n2")]);
    let facts = facts(&members, &manager);
    let error = spec().diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.contains("n2 is in another trusted pool (its peers: n1, n3), which n1 is not in"),
        "{error}"
    );
}

#[test]
fn a_brick_machine_whose_glusterd_is_down_is_an_error_and_not_asked() {
    let (mut members, manager) = converged();
    members[0].1 = host(&[peers("peer-down"), mounted("mounted", MOUNT), fstab("gv0")]);
    members[2].1 = host(&[peers("daemon-down")]);
    let facts = facts(&members, &manager);
    let spec = spec();
    assert_eq!(spec.manager_candidates(&facts), ["n1", "n2"]);
    let error = spec.diff("gv0", &facts).unwrap_err().to_string();
    assert!(
        error.starts_with("glusterd on n3 does not answer: "),
        "{error}"
    );
    assert!(error.contains("Connection failed"), "{error}");
}

#[test]
fn an_offline_brick_is_a_warning() {
    let (members, _) = converged();
    let manager = manager("named", "brick-down", "all");
    let facts = facts(&members, &manager);
    let warnings = spec().warnings("gv0", &facts);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("brick n2:/data/bricks/gv0 of gluster volume gv0 is offline"),
        "{warnings:?}"
    );
}

#[test]
fn members_are_brick_machines_then_the_other_mount_machines() {
    let spec = GlusterVolumeSpec {
        mount_machines: vec!["n0".into(), "n2".into(), "n4".into()],
        ..spec()
    };
    assert_eq!(spec.members(), ["n1", "n2", "n3", "n0", "n4"]);
    let keys: Vec<String> = spec
        .member_probes("gv0")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "gluster:peer-status",
            "gluster:brick:/data/bricks/gv0",
            "gluster:mount:/mnt/gv0",
            "gluster:fstab:/mnt/gv0"
        ]
    );
}
