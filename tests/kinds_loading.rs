//! Kinds' behaviour that needs the whole loader: a kind's checks of the configuration, a
//! Compose file read beside its document, module expansion. These tests were the kinds'
//! own unit tests; the kinds crate cannot load a configuration (the loader is a later
//! stage, `corral-engine`), so they load one here through the public loader, as
//! `tests/swarm_service_loading.rs` does for `swarm/service`.

mod sshd {
    /// Forbidding TCP forwarding on a machine others jump through would cut them off
    /// (checked: without the check, this configuration loads).
    #[test]
    fn forwarding_forbidden_on_a_jump_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let machines = "kind: infrastructure/machine\nname: bastion\nspecification:\n  hostname: bastion\n  ip: 10.0.0.1\n---\nkind: infrastructure/machine\nname: inner\nspecification:\n  hostname: inner\n  ip: 10.0.1.1\n  ssh: { proxy_jump: \"admin@10.0.0.1:2222\" }\n";
        let sshd = |machines: &str, value: &str| {
            format!("---\nkind: os/sshd\nname: s\nspecification:\n  machines: {machines}\n  settings:\n    AllowTcpForwarding: \"{value}\"\n")
        };
        let load = |text: String| {
            let path = dir.path().join("c.yaml");
            std::fs::write(&path, text).unwrap();
            corral::config::load(&[path], &Default::default())
                .map(|_| ())
                .map_err(|e| {
                    let messages: Vec<String> = e.errors.into_iter().map(|e| e.message).collect();
                    messages.join("\n")
                })
        };
        let error = load(format!("{machines}{}", sshd("all", "no"))).unwrap_err();
        assert!(
            error.contains("`AllowTcpForwarding no` on bastion, which inner reach through"),
            "{error}"
        );
        assert!(load(format!("{machines}{}", sshd("[inner]", "no"))).is_ok());
        assert!(load(format!("{machines}{}", sshd("all", "local"))).is_ok());
        assert!(load(format!("{machines}{}", sshd("all", "remote"))).is_err());
    }
}

mod sysctl {
    /// Keys are persisted, applied and shown in the order written, not sorted: a key that
    /// resets others (`net.ipv4.ip_forward` resets `…accept_redirects`) can come first.
    #[test]
    fn keys_keep_the_order_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "kind: os/sysctl\nname: fwd\nspecification:\n  machines: all\n  values:\n    net.ipv4.ip_forward: \"1\"\n    net/ipv4/conf/all/accept_redirects: \"0\"\n",
        )
        .unwrap();
        let config = corral::config::load(&[path], &Default::default()).unwrap();
        let corral::kinds::Spec::Sysctl(spec) = &config.resources[0].spec else {
            panic!("not a sysctl");
        };
        let text = String::from_utf8(spec.persisted("fwd")).unwrap();
        assert!(
            text.ends_with("net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.accept_redirects = 0\n"),
            "{text}"
        );
        let script = spec.apply_and_check("/etc/sysctl.d/99-zz-corral-fwd.conf");
        let forward = script.find("sysctl -n net.ipv4.ip_forward").unwrap();
        let redirects = script
            .find("sysctl -n net.ipv4.conf.all.accept_redirects")
            .unwrap();
        assert!(forward < redirects, "{script}");
    }
}

mod user {
    use corral::kinds::user::*;
    use std::collections::BTreeMap;

    use corral::facts::{HostFacts, Probe, ProbeOutput};

    /// Facts of a host corral reads as `ops` through sudo (recorded on the lab,
    /// `fixtures/user/login-through-sudo.json`).
    fn through_sudo() -> HostFacts {
        let probe: Probe = login_probe();
        let output: ProbeOutput = corral::facts::recorded::checked(
            "user/login-through-sudo",
            &probe,
            "record it again on a lab host",
        );
        HostFacts {
            probes: BTreeMap::from([(probe.key.clone(), output)]),
            ..Default::default()
        }
    }

    /// The `os/user.ops` document removed while corral connects as ops: deleting its
    /// drop-in is refused; another user's is not, nor a drop-in left in place.
    #[test]
    fn deleting_the_connecting_users_sudo_right_is_refused() {
        let facts = through_sudo();
        let host = corral::managed::HostRecord::default();
        let removal = |user: &str| {
            corral::managed::deletion(
                corral::address::Address::new(KIND, user, Some("n1")),
                "n1",
                &corral::facts::record::Entry {
                    origin: Some(corral::managed::Origin::Created),
                    ..corral::facts::record::Entry::file(
                        KIND,
                        &format!("/etc/sudoers.d/corral-{user}"),
                    )
                },
                &host,
            )
        };
        let refused = deletion_lockout(&removal("ops"), &facts).unwrap_or_default();
        assert!(
            refused.contains("refused: removing /etc/sudoers.d/corral-ops (os/user.ops is no longer in the configuration) would take away the sudo right of ops"),
            "{refused}"
        );
        assert_eq!(deletion_lockout(&removal("deploy"), &facts), None);
        let left = corral::managed::deletion(
            corral::address::Address::new(KIND, "ops", Some("n1")),
            "n1",
            &corral::facts::record::Entry {
                origin: Some(corral::managed::Origin::Adopted),
                ..corral::facts::record::Entry::file(KIND, "/etc/sudoers.d/corral-ops")
            },
            &host,
        );
        assert_eq!(deletion_lockout(&left, &facts), None);
    }
}

mod swarm_cluster {
    use corral::kinds::swarm_cluster::*;

    /// The configuration's warnings with the real `swarm/ports` module (copied next to it)
    /// used with `inputs`, three managers, and a baseline firewall whose input policy is
    /// `policy`.
    fn ports_warnings(inputs: &str, policy: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("modules/swarm/ports");
        std::fs::create_dir_all(&module).unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/swarm/ports");
        for file in ["module.yaml", "ports.yaml"] {
            std::fs::copy(repo.join(file), module.join(file)).unwrap();
        }
        let mut text = String::new();
        for i in 1..=3 {
            text.push_str(&format!(
                "kind: infrastructure/machine\nname: n{i}\nspecification: {{ hostname: n{i}, ip: 10.0.0.{i} }}\n---\n"
            ));
        }
        text.push_str(&format!(
            "kind: swarm/cluster\nname: main\nspecification: {{ managers: [n1, n2, n3] }}\n---\nkind: os/firewall\nname: baseline\nspecification:\n  machines: all\n  input_policy: {policy}\n  allow: [{{ protocol: tcp, ports: [22] }}]\n---\nkind: module\nname: swarm-ports\nspecification:\n  source: swarm/ports\n  inputs: {inputs}\n"
        ));
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        let config = corral::config::load(&[path], &Default::default()).unwrap();
        firewall_warnings(&config)
            .into_iter()
            .map(|(address, message)| format!("{address}: {message}"))
            .collect()
    }

    /// Managers promoted while `swarm/ports` opens 2377/tcp on the old managers only (or
    /// from some members only) are warned about; lists that agree, or a firewall that
    /// accepts by default, are not.
    #[test]
    fn a_firewall_that_disagrees_with_the_managers_is_warned_about() {
        assert_eq!(
            ports_warnings("{ machines: [n1, n2, n3], managers: [n1] }", "drop"),
            [
                "swarm/cluster.main: n2 is a manager, but its firewall drops 2377/tcp (the cluster API: joins, the managers' raft): os/firewall.swarm-ports.managers opens it on n1 only; list n2 in the `managers:` input of the swarm/ports module (the managers of swarm/cluster.main)",
                "swarm/cluster.main: n3 is a manager, but its firewall drops 2377/tcp (the cluster API: joins, the managers' raft): os/firewall.swarm-ports.managers opens it on n1 only; list n3 in the `managers:` input of the swarm/ports module (the managers of swarm/cluster.main)",
            ]
        );
        let from_two = ports_warnings("{ machines: [n1, n2], managers: all }", "drop");
        assert_eq!(from_two.len(), 2, "{from_two:?}");
        assert_eq!(
            from_two[0],
            "swarm/cluster.main: n1 is a manager, but its firewall lets 2377/tcp (the cluster API) in from the rule's sources only, not from n3; list every member in the `machines:` input of the swarm/ports module"
        );
        assert!(ports_warnings("{ machines: all, managers: [n1, n2, n3] }", "drop").is_empty());
        assert!(ports_warnings("{ machines: all, managers: [n1] }", "accept").is_empty());
    }
}

mod gluster_volume {
    /// Loads `specification` (YAML) of a `gluster/volume` named gv0 with an inventory of
    /// n1…n4; the errors' messages with the text each points at.
    fn load_errors(specification: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let mut text = String::new();
        for (i, m) in ["n1", "n2", "n3", "n4"].iter().enumerate() {
            text.push_str(&format!(
                "kind: infrastructure/machine\nname: {m}\nspecification: {{ hostname: {m}, ip: 10.0.0.{} }}\n---\n",
                i + 1
            ));
        }
        text.push_str(&format!(
            "kind: gluster/volume\nname: gv0\nspecification:\n{specification}"
        ));
        std::fs::write(&path, &text).unwrap();
        match corral::config::load(&[path], &corral::config::LoadOptions::default()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .errors
                .iter()
                .map(|e| {
                    let at = e.labels.first().map_or(String::new(), |l| {
                        text[l.offset()..l.offset() + l.len()].to_owned()
                    });
                    (e.message.clone(), at)
                })
                .collect(),
        }
    }

    const THREE: &str = "  bricks:\n    - { machine: n1, path: /b/v }\n    - { machine: n2, path: /b/v }\n    - { machine: n3, path: /b/v }\n";

    #[test]
    fn a_well_formed_volume_loads_and_resolves_its_mount_machines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let text = format!(
            "kind: infrastructure/machine\nname: n1\nspecification: {{ hostname: n1, ip: 10.0.0.1, labels: {{ role: app }} }}\n---\nkind: infrastructure/machine\nname: n2\nspecification: {{ hostname: n2, ip: 10.0.0.2 }}\n---\nkind: infrastructure/machine\nname: n3\nspecification: {{ hostname: n3, ip: 10.0.0.3 }}\n---\nkind: gluster/volume\nname: gv0\nspecification:\n  replica: 3\n  arbiter: true\n{THREE}  mount: {{ machines: {{ labels: {{ role: app }} }}, path: /srv/v }}\n"
        );
        std::fs::write(&path, &text).unwrap();
        let config = corral::config::load(&[path], &corral::config::LoadOptions::default())
            .unwrap_or_else(|e| {
                panic!(
                    "{:?}",
                    e.errors.iter().map(|e| &e.message).collect::<Vec<_>>()
                )
            });
        let corral::kinds::Spec::GlusterVolume(volume) = &config.resources[0].spec else {
            panic!("not a volume")
        };
        assert_eq!(volume.mount_machines, ["n1"]);
        assert_eq!(volume.project, config.project);
    }

    #[test]
    fn replica_arithmetic_is_checked_at_load() {
        let errors = load_errors(&format!("  replica: 2\n{THREE}"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]
            .0
            .starts_with("replica 2 without an arbiter risks split-brain"));
        assert_eq!(errors[0].1, "2");
        let errors = load_errors(&format!("  replica: 2\n  arbiter: true\n{THREE}"));
        assert_eq!(errors[0].0, "an arbiter needs replica 3, not 2");
        let errors = load_errors(&format!("  arbiter: true\n{THREE}"));
        assert_eq!(errors[0].0, "an arbiter needs `replica: 3`");
        let errors = load_errors(&format!(
            "  replica: 3\n{THREE}    - {{ machine: n4, path: /b/v }}\n"
        ));
        assert_eq!(
            errors[0].0,
            "4 bricks are not a multiple of replica 3: 1 full set(s) and 1 brick(s) left over"
        );
    }

    /// `arbiter: 1`, as the gluster CLI spells it, was refused as "expected a boolean,
    /// found an integer": 1 is `true` and 0 `false`; another count says what to write.
    #[test]
    fn arbiter_is_written_as_a_boolean_or_as_gluster_counts_it() {
        assert_eq!(
            load_errors(&format!("  replica: 3\n  arbiter: 1\n{THREE}")),
            []
        );
        // 1 is an arbiter, 0 none: only an arbiter needs a replica count.
        let errors = load_errors(&format!("  arbiter: 1\n{THREE}"));
        assert_eq!(errors[0].0, "an arbiter needs `replica: 3`");
        assert_eq!(load_errors(&format!("  arbiter: 0\n{THREE}")), []);
        let errors = load_errors(&format!("  replica: 3\n  arbiter: 2\n{THREE}"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].0,
            "`arbiter: 2`: a replica set of 3 has at most one arbiter brick; write `arbiter: 1` (or `true`) for `replica 3 arbiter 1`, or leave it out"
        );
        assert_eq!(errors[0].1, "2");
        let errors = load_errors(&format!("  replica: 3\n  arbiter: yes\n{THREE}"));
        assert_eq!(
            errors[0].0,
            "invalid type: expected `true`, `false`, or gluster's arbiter count 1 or 0, found a string"
        );
    }

    #[test]
    fn two_bricks_of_a_replica_set_on_one_machine_are_refused_where_written() {
        let errors = load_errors(
            "  replica: 3\n  bricks:\n    - { machine: n1, path: /b/v }\n    - { machine: n2, path: /b/v }\n    - { machine: n1, path: /c/v }\n    - { machine: n1, path: /d/v }\n    - { machine: n2, path: /d/v }\n    - { machine: n3, path: /d/v }\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].0,
            "replica set 1 has two bricks on n1: losing that machine loses both copies"
        );
        assert_eq!(errors[0].1, "n1");
    }

    #[test]
    fn paths_must_be_absolute_and_options_corral_s_own_are_refused() {
        let errors = load_errors(
            "  bricks:\n    - { machine: n1, path: b/v }\n  options: { user.corral.project: x }\n  mount: { machines: all, path: /srv/a b }\n",
        );
        let messages: Vec<&str> = errors.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "brick path `b/v` is not an absolute path corral can use",
                "`user.corral.project` is corral's: it marks the volumes a project created",
                "mount path `/srv/a b` is not an absolute path corral can use"
            ]
        );
        assert_eq!(errors[0].1, "b/v");
    }

    #[test]
    fn unknown_brick_and_mount_machines_are_reported() {
        let errors = load_errors(
            "  bricks:\n    - { machine: n9, path: /b/v }\n  mount: { machines: [n8], path: /m }\n",
        );
        let messages: Vec<&str> = errors.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "gluster/volume.gv0 names unknown machine `n9` in `bricks`",
                "gluster/volume.gv0 names unknown machine `n8` in `mount.machines`"
            ]
        );
    }
}

mod swarm_stack {
    use corral::kinds::swarm_stack::*;
    use std::collections::BTreeMap;

    use corral::base::diagnostic::Origin;
    use corral::facts::{swarm, HostFacts};
    use corral::kinds::swarm_secret::{self, ObjectClass, Purpose};
    use corral::kinds::swarm_service::{self, Versions};
    use corral::kinds::{ClusterFacts, ClusterKind};
    use corral::plan::{Action, AttrValue};

    use corral::facts::recorded;

    /// Stack `app` of a configuration whose Compose file names the external secrets
    /// `secrets` (key → name), none of them declared.
    fn stack(secrets: &[(&str, &str)]) -> SwarmStackSpec {
        let mut compose = String::from(
            "version: \"3.8\"\nservices:\n  web:\n    image: local/busybox:1\n    secrets:\n",
        );
        for (key, _) in secrets {
            compose.push_str(&format!("      - {key}\n"));
        }
        compose.push_str("secrets:\n");
        for (key, name) in secrets {
            compose.push_str(&format!("  {key}: {{ external: true, name: {name} }}\n"));
        }
        stack_of(&compose, "")
    }

    /// Stack `app` of Compose file `compose`, in a configuration with `more` documents.
    fn stack_of(compose: &str, more: &str) -> SwarmStackSpec {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(
            &path,
            format!("kind: infrastructure/machine\nname: n1\nspecification: {{ hostname: n1, ip: 10.1.0.11 }}\n---\nkind: swarm/cluster\nname: main\nspecification: {{ managers: [n1] }}\n---\nkind: swarm/stack\nname: app\nspecification: {{ compose: compose.yaml }}\n{more}"),
        )
        .unwrap();
        let config = corral::config::load(&[path], &Default::default()).unwrap();
        let resource = config
            .resources
            .into_iter()
            .find(|r| r.address.kind == KIND)
            .unwrap();
        match resource.spec {
            corral::kinds::Spec::SwarmStack(spec) => spec,
            _ => panic!("not a stack"),
        }
    }

    /// The recorded swarm: secret `db_pw_e5e823937fe3`, no secret `db_pw`.
    fn manager() -> HostFacts {
        let mut facts = HostFacts::default();
        let mut objects = recorded::cluster("objects", "rotated", &swarm_secret::probe("try12"));
        // As gathering leaves it: the key replaced by the versions the configuration wants.
        objects.output = swarm_secret::redact(&objects.output, &[]);
        facts
            .probes
            .insert(swarm_secret::OBJECTS_KEY.into(), objects);
        facts.probes.insert(
            swarm::NETWORK_INSPECT_KEY.into(),
            recorded::cluster(
                "network-inspect",
                "cluster",
                &swarm::network_inspect_probe(),
            ),
        );
        facts.probes.insert(
            swarm::SERVICE_INSPECT_KEY.into(),
            recorded::cluster(
                "service-inspect",
                "cluster",
                &swarm::service_inspect_probe(),
            ),
        );
        facts
    }

    /// An external secret that no `swarm/secret` declares must be on the swarm: the plan
    /// says so at the Compose file's line, instead of a deploy failing with "secret not
    /// found" in the apply.
    #[test]
    fn an_external_object_neither_declared_nor_on_the_swarm_is_a_plan_error() {
        let manager = manager();
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), &manager)),
            inventory: BTreeMap::new(),
        };
        let on_swarm = stack(&[("db", "db_pw_e5e823937fe3")]);
        let versions = on_swarm.versions("app", &facts, Purpose::Plan).unwrap();
        assert_eq!(
            versions[&(ObjectClass::Secret, "db".to_owned())].as_deref(),
            Some("db_pw_e5e823937fe3")
        );
        let missing = stack(&[("db", "db_pw")]);
        let error = missing.diff("app", &facts).unwrap_err().to_string();
        assert!(error.contains("compose.yaml:8:"), "{error}");
        assert!(
            error.contains("the Compose file's secret `db` is external `db_pw`, which no `swarm/secret` of the configuration declares and the swarm does not have"),
            "{error}"
        );
        // A swarm made by the same apply has none.
        let empty = ClusterFacts {
            members: BTreeMap::new(),
            manager: None,
            inventory: BTreeMap::new(),
        };
        assert!(external_on_swarm(
            ObjectClass::Secret,
            "db",
            "db_pw_e5e823937fe3",
            &Origin {
                file: on_swarm.loaded.as_ref().unwrap().file.clone(),
                span: corral::base::yaml::Span { start: 0, end: 1 },
            },
            &empty
        )
        .is_err());
    }

    /// An external network the services use must be a `swarm/network` of the configuration
    /// or on the swarm: the plan says so at the Compose file's line, instead of `docker
    /// stack deploy` failing in the apply (`validateExternalNetworks`).
    #[test]
    fn an_external_network_neither_declared_nor_on_the_swarm_is_a_plan_error() {
        let manager = manager();
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), &manager)),
            inventory: BTreeMap::new(),
        };
        let compose = |network: &str| {
            format!("version: \"3.8\"\nservices:\n  web:\n    image: local/busybox:1\n    networks: [front]\n  other:\n    image: local/busybox:1\n    networks: [host]\nnetworks:\n  front:\n    external: true\n    name: {network}\n  host:\n    external: true\n  unused:\n    external: true\n")
        };
        // On the swarm (the recording has appnet and dbnet); `host` is Docker's own, and
        // `unused` no service uses: neither is looked for.
        assert!(stack_of(&compose("appnet"), "").diff("app", &facts).is_ok());
        let missing = stack_of(&compose("frontnet"), "");
        let error = missing.diff("app", &facts).unwrap_err().to_string();
        assert!(error.contains("compose.yaml:11:15:"), "{error}");
        assert!(
            error.contains("the Compose file's network `frontnet` is external, and neither a `swarm/network` of the configuration nor an overlay network of the swarm"),
            "{error}"
        );
        // Declared in the configuration: the same apply creates it first.
        let declared = stack_of(
            &compose("frontnet"),
            "---\nkind: swarm/network\nname: frontnet\nspecification: { subnet: 10.99.0.0/24 }\n",
        );
        assert!(declared.declared_networks.contains("frontnet"));
        assert!(declared.diff("app", &facts).is_ok());
    }

    /// Stack `app` of `compose` with `variables` (YAML flow mapping), or the errors.
    fn stack_with(compose: &str, variables: &str) -> Result<SwarmStackSpec, String> {
        let config = load_with(compose, variables)?;
        let resource = config
            .resources
            .into_iter()
            .find(|r| r.address.kind == KIND)
            .unwrap();
        match resource.spec {
            corral::kinds::Spec::SwarmStack(spec) => Ok(spec),
            _ => panic!("not a stack"),
        }
    }

    /// The configuration of stack `app` of `compose` with `variables`, or the errors.
    fn load_with(compose: &str, variables: &str) -> Result<corral::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(
            &path,
            format!("kind: infrastructure/machine\nname: n1\nspecification: {{ hostname: n1, ip: 10.1.0.11 }}\n---\nkind: swarm/cluster\nname: main\nspecification: {{ managers: [n1] }}\n---\nkind: swarm/stack\nname: app\nspecification: {{ compose: compose.yaml, variables: {variables} }}\n"),
        )
        .unwrap();
        corral::config::load(&[path], &Default::default()).map_err(|e| format!("{e:?}"))
    }

    /// Variables fill the file as the CLI would (defaults, casts, a bcrypt hash kept as it
    /// is); a sensitive one is in the file deployed, and nowhere in the plan or an error.
    #[test]
    fn variables_fill_the_file_and_sensitive_ones_are_never_shown() {
        const PASSWORD: &str = "pw-0f6c1e2d-never-shown";
        std::env::set_var("CORRAL_TEST_STACK_PASSWORD", PASSWORD);
        let compose = "version: \"3.8\"\nservices:\n  web:\n    image: \"local/busybox:${TAG:-1}\"\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n      HTPASSWD: admin:${HASH}\n      DOMAIN: $DOMAIN\n    deploy:\n      replicas: ${REPLICAS:-2}\n      labels:\n        - \"auth=${DB_PASSWORD}\"\n";
        let variables = "{ DOMAIN: example.org, HASH: '$2y$05$abc', DB_PASSWORD: { from_env: CORRAL_TEST_STACK_PASSWORD }, UNUSED: x }";
        let stack = stack_with(compose, variables).unwrap();
        let loaded = stack.loaded.as_ref().unwrap();
        let web = &loaded.compose.services["web"].spec;
        assert_eq!(web.image, "local/busybox:1");
        assert_eq!(web.replicas, Some(2));
        assert_eq!(web.env["HTPASSWD"], "admin:$2y$05$abc");
        assert_eq!(web.env["DOMAIN"], "example.org");
        assert!(!web.env.contains_key("DB_PASSWORD"));
        assert_eq!(web.secret_env["DB_PASSWORD"].text(), PASSWORD);
        assert_eq!(
            loaded.warnings,
            ["the variable `UNUSED` is declared, and the Compose file `compose.yaml` never refers to it"]
        );
        assert!(!format!("{stack:?}").contains(PASSWORD));

        let manager = manager();
        let facts = ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), &manager)),
            inventory: BTreeMap::new(),
        };
        let diff = stack.diff("app", &facts).unwrap();
        let shown = format!("{:?}", diff.attributes);
        assert!(!shown.contains(PASSWORD), "{shown}");
        for name in ["web.env.DB_PASSWORD", "web.labels.auth"] {
            let attribute = diff.attributes.iter().find(|a| a.name == name).unwrap();
            assert_eq!(attribute.after, AttrValue::Sensitive, "{name}");
        }
        // The deploy's file: the value, and `$` written `$$` so that the CLI reads a `$`.
        let file = stack.rendered("app", &Versions::new()).unwrap();
        assert!(file.contains(PASSWORD), "{file}");
        assert!(file.contains("admin:$$2y$$05$$abc"), "{file}");
        // The deploy reads the file on its standard input: no command line holds it.
        let steps = stack.steps("app", &facts).unwrap();
        let script = &steps[0].step.script;
        assert!(
            !script.contains(PASSWORD),
            "the script holds the value only encoded"
        );
        assert!(script.contains("docker stack deploy --prune --resolve-image changed -c - "));

        // An error about a value holding it does not quote it.
        let cast = compose.replace("${REPLICAS:-2}", "${DB_PASSWORD}");
        let error = stack_with(&cast, variables).unwrap_err();
        assert!(error.contains("after interpolation"), "{error}");
        assert!(!error.contains(PASSWORD), "{error}");
        // Without variables, a default is enough.
        let plain = stack_with(
            "version: \"3.8\"\nservices:\n  web:\n    image: \"local/busybox:${TAG:-1}\"\n",
            "{}",
        )
        .unwrap();
        assert_eq!(
            plain.loaded.as_ref().unwrap().compose.services["web"]
                .spec
                .image,
            "local/busybox:1"
        );
    }

    /// A saved plan's facts were compared with the sensitive values of then: another value
    /// since is noticed, as a `secret_env`'s is, through the argon2id seal of them all.
    #[test]
    fn sensitive_variables_are_sealed_with_the_facts() {
        let compose = "version: \"3.8\"\nservices:\n  web:\n    image: local/busybox:1\n    environment:\n      PW: $PW\n";
        let variables = "{ PW: { from_env: CORRAL_TEST_STACK_SEALED } }";
        std::env::set_var("CORRAL_TEST_STACK_SEALED", "first-value");
        let first = load_with(compose, variables).unwrap();
        let sealed = corral::kinds::seal_secrets(&first);
        assert_ne!(sealed, "none");
        assert!(!sealed.contains("first-value"));
        assert!(corral::kinds::same_secrets(&first, Some(&sealed)));
        std::env::set_var("CORRAL_TEST_STACK_SEALED", "second-value");
        let second = load_with(compose, variables).unwrap();
        assert!(!corral::kinds::same_secrets(&second, Some(&sealed)));
    }

    /// The Compose file of scripts/record-stack-run-state-fixtures.sh, as declared (corral
    /// adds the labels), with `api`'s replicas `replicas`.
    fn recorded_stack(replicas: u32) -> SwarmStackSpec {
        let mut stack = stack_of(
            &format!(
                r#"version: "3.8"
services:
  web:
    image: local/busybox:1
    command: ["sh", "-c", "mkdir -p /w && echo ok >/w/index.html && httpd -f -p 8080 -h /w"]
    ports:
      - {{ target: 8080, published: 18082, mode: host }}
    deploy:
      mode: global
  api:
    image: local/busybox:1
    command: ["sleep", "86400"]
    deploy:
      replicas: {replicas}
"#
            ),
            "",
        );
        // The recording's project.
        stack.scope.project = "default".into();
        stack
    }

    /// The manager's facts of the recorded stack `app` in state `case`.
    fn stack_manager(case: &str) -> HostFacts {
        let mut facts = HostFacts::default();
        for (fact, probe) in [
            ("service-run", swarm::service_run_probe()),
            ("node-inspect", swarm::node_inspect_probe()),
            ("service-inspect", swarm::service_inspect_probe()),
            ("network-inspect", swarm::network_inspect_probe()),
        ] {
            let output = recorded::checked(
                &format!("stack-run-state/{fact}/{case}"),
                &probe,
                "run scripts/record-stack-run-state-fixtures.sh",
            );
            facts.probes.insert(probe.key, output);
        }
        facts
    }

    fn on(manager: &HostFacts) -> ClusterFacts<'_> {
        ClusterFacts {
            members: BTreeMap::new(),
            manager: Some(("n1".into(), manager)),
            inventory: BTreeMap::new(),
        }
    }

    /// The stack's plan reads what runs, as swarm/service's does.
    #[test]
    fn a_stack_probes_what_runs() {
        let keys: Vec<String> = recorded_stack(2)
            .manager_probes("app")
            .into_iter()
            .map(|p| p.key)
            .collect();
        for key in [swarm::SERVICE_RUN_KEY, swarm::NODE_INSPECT_KEY] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
    }

    /// A stack service as declared whose tasks do not all run (recorded: app_web's port
    /// taken on n2) is a change with the tasks' reason, and its step is a forced update of
    /// that service alone: a deploy of the unchanged file would not start the task again.
    #[test]
    fn a_stack_service_short_of_tasks_is_restarted_by_a_forced_update() {
        let stack = recorded_stack(2);
        let converged = stack_manager("converged");
        let diff = stack.diff("app", &on(&converged)).unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{:?}", diff.attributes);
        assert!(stack.steps("app", &on(&converged)).unwrap().is_empty());

        let short = stack_manager("short");
        let diff = stack.diff("app", &on(&short)).unwrap();
        assert_eq!(diff.action(), Action::Update);
        let [tasks] = diff.attributes.as_slice() else {
            panic!("{:?}", diff.attributes);
        };
        assert_eq!(tasks.name, "web.tasks");
        let AttrValue::Scalar(why) = &tasks.before else {
            panic!("{:?}", tasks.before);
        };
        assert!(
            why.starts_with("2/3 tasks running: n2: ") && why.contains("port is already allocated"),
            "{why}"
        );
        assert_eq!(tasks.after, AttrValue::Scalar("all running".into()));
        assert_eq!(
            diff.reason.as_deref(),
            Some(format!("app_web: {}", swarm_service::RESTART_REASON).as_str())
        );

        let steps = stack.steps("app", &on(&short)).unwrap();
        let [step] = steps.as_slice() else {
            panic!("{} steps", steps.len());
        };
        assert_eq!(
            step.step.description,
            "restart the tasks of app_web (forced update: docker service update --force) and wait for them"
        );
        let script = &step.step.script;
        assert!(!script.contains("docker stack deploy"), "{script}");
        assert_eq!(
            script.matches("docker service update").count(),
            1,
            "{script}"
        );
        assert!(
            script.contains("docker service update --detach=false --quiet --force app_web"),
            "{script}"
        );
        assert!(script.contains("is not managed by project"), "{script}");
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    /// A stack whose file changed and whose other service is short: the deploy first (it
    /// would not start the task again), then the forced update, both in the step's name.
    #[test]
    fn a_changed_stack_is_deployed_before_its_short_service_is_restarted() {
        let stack = recorded_stack(3);
        let short = stack_manager("short");
        let diff = stack.diff("app", &on(&short)).unwrap();
        let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["api.replicas", "web.tasks"]);
        let steps = stack.steps("app", &on(&short)).unwrap();
        let [step] = steps.as_slice() else {
            panic!("{} steps", steps.len());
        };
        assert_eq!(
            step.step.description,
            "deploy stack app (app_api) and wait for its tasks; then restart the tasks of app_web (forced update: docker service update --force) and wait for them"
        );
        let script = &step.step.script;
        let deploy = script.find("docker stack deploy").unwrap();
        let forced = script
            .find("docker service update --detach=false --quiet --force app_web")
            .unwrap();
        assert!(deploy < forced, "{script}");
        assert!(!script.contains("--force app_api"), "{script}");
    }
}
