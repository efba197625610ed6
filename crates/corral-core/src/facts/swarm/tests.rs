//! Tests of the Swarm fact parsers, on outputs recorded from real dockerd
//! (`fixtures/cluster/`).

use super::*;

use crate::facts::recorded::cluster as recorded;

/// `service ps` says how long ago each task changed state ("Running 14 seconds ago"):
/// the same tasks read a minute apart digest alike, other tasks do not.
#[test]
fn tasks_read_a_minute_apart_digest_alike() {
    let probe = service_ps_probe();
    let facts = |case| crate::facts::HostFacts {
        probes: BTreeMap::from([(probe.key.clone(), recorded("service-ps", case, &probe))]),
        ..Default::default()
    };
    let (earlier, later) = (facts("a-minute-apart-1"), facts("a-minute-apart-2"));
    assert_ne!(
        earlier.probes, later.probes,
        "the recordings differ as text"
    );
    assert_eq!(earlier.digest(), later.digest());
    assert_ne!(facts("cluster").digest(), facts("failures").digest());
    assert_ne!(earlier.digest(), facts("cluster").digest());
}

/// The lists a plan reads digest as parsed facts by ID; a refusal as it is printed.
#[test]
fn swarm_lists_digest_their_parsed_facts_and_refusals_as_printed() {
    let cases = [
        ("swarm-info", "leader", info_probe()),
        ("node-inspect", "cluster", node_inspect_probe()),
        ("node-ls", "cluster", node_ls_probe()),
        ("network-ls", "cluster", network_ls_probe()),
        ("network-inspect", "cluster", network_inspect_probe()),
        ("service-ls", "cluster", service_ls_probe()),
        ("service-inspect", "cluster", service_inspect_probe()),
    ];
    for (fact, case, probe) in cases {
        let out = recorded(fact, case, &probe);
        let parsed = canonical(&probe.key, &out).unwrap_or_else(|| panic!("{fact}/{case}"));
        assert_ne!(parsed, out.output, "{fact}/{case}");
    }
    let refused = recorded("node-ls", "from-worker", &node_ls_probe());
    assert_eq!(canonical(NODE_LS_KEY, &refused), None);
    assert_eq!(canonical("swarm:join-token:worker", &refused), None);
}

fn info(case: &str) -> Result<SwarmInfo, FactError> {
    parse_info(INFO_KEY, &recorded("swarm-info", case, &info_probe()))
}

fn nodes(case: &str) -> Vec<SwarmNode> {
    parse_node_inspect(
        NODE_INSPECT_KEY,
        &recorded("node-inspect", case, &node_inspect_probe()),
    )
    .unwrap()
}

fn node<'a>(nodes: &'a [SwarmNode], hostname: &str) -> &'a SwarmNode {
    nodes.iter().find(|n| n.hostname() == hostname).unwrap()
}

fn services(case: &str) -> Vec<SwarmService> {
    parse_service_inspect(
        SERVICE_INSPECT_KEY,
        &recorded("service-inspect", case, &service_inspect_probe()),
    )
    .unwrap()
}

fn service<'a>(services: &'a [SwarmService], name: &str) -> &'a SwarmService {
    services.iter().find(|s| s.spec.name == name).unwrap()
}

fn tasks(case: &str) -> Vec<Task> {
    parse_service_ps(
        SERVICE_PS_KEY,
        &recorded("service-ps", case, &service_ps_probe()),
    )
    .unwrap()
}

#[test]
fn blank_host_is_in_no_swarm() {
    let info = info("blank").unwrap();
    assert_eq!(info.local_node_state, LocalNodeState::Inactive);
    assert!(!info.control_available && !info.is_member());
    assert_eq!(info.node_id, "");
    assert!(info.remote_managers.is_empty());
    assert_eq!(info.cluster_id(), None);
}

#[test]
fn leader_manager_and_worker_see_one_cluster() {
    let leader = info("leader").unwrap();
    let manager = info("manager").unwrap();
    let worker = info("worker").unwrap();
    assert!(leader.is_member() && leader.control_available);
    assert_eq!(leader.node_addr, "10.234.0.11");
    assert_eq!((leader.nodes, leader.managers), (Some(3), Some(2)));
    let cluster = leader.cluster_id().unwrap();
    assert_eq!(manager.cluster_id(), Some(cluster));
    assert_eq!(manager.node_addr, "10.234.0.12");
    assert_eq!(
        leader.cluster.as_ref().unwrap().default_addr_pool,
        ["10.0.0.0/8"]
    );
    // A worker knows neither the cluster ID nor counts (docker prints them as 0). The
    // managers it knows are not read: their order changes at every call.
    assert!(worker.is_member() && !worker.control_available);
    assert_eq!(worker.node_addr, "10.234.0.13");
    assert_eq!(worker.cluster_id(), None);
    assert_eq!(worker.managers, Some(0));
    assert!(worker.remote_managers.is_empty());
}

#[test]
fn manager_without_quorum_reports_the_error() {
    let info = info("no-quorum").unwrap();
    assert!(info.is_member() && info.control_available);
    // "The swarm does not have a leader", or a deadline, depending on the moment.
    assert!(!info.error.is_empty(), "{info:?}");
    assert_eq!(info.cluster_id(), None);
}

#[test]
fn manager_with_one_manager_down_still_has_quorum() {
    let info = info("manager-down").unwrap();
    assert_eq!(info.error, "");
    assert_eq!(info.managers, Some(3));
    assert!(info.cluster_id().is_some());
}

#[test]
fn stopped_daemon_is_an_error_naming_it() {
    let out = recorded("swarm-info", "daemon-down", &info_probe());
    assert_eq!(refusal(&out), Some(ManagerRefusal::DaemonDown));
    let err = parse_info(INFO_KEY, &out).unwrap_err();
    assert!(err.message.starts_with("dockerd does not answer"), "{err}");
    assert!(err.message.contains("Cannot connect to the Docker daemon"));
}

#[test]
fn node_ls_rows() {
    let out = recorded("node-ls", "cluster", &node_ls_probe());
    let rows = parse_node_ls(NODE_LS_KEY, &out).unwrap();
    let status: Vec<(&str, &str, &str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.hostname.as_str(),
                r.status.as_str(),
                r.manager_status.as_str(),
                r.is_self,
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("n1", "Ready", "Leader", true),
            ("n2", "Ready", "Reachable", false),
            ("n3", "Ready", "", false)
        ]
    );
    assert_eq!(rows[0].engine_version, "20.10.24+dfsg1");
}

#[test]
fn node_ls_shows_a_stopped_manager_down_and_unreachable() {
    let out = recorded("node-ls", "manager-down", &node_ls_probe());
    let rows = parse_node_ls(NODE_LS_KEY, &out).unwrap();
    let n1 = rows.iter().find(|r| r.hostname == "n1").unwrap();
    assert_eq!(
        (n1.status.as_str(), n1.manager_status.as_str()),
        ("Down", "Unreachable")
    );
    // Recorded on n2; n2 or n3 took over as leader.
    assert!(rows.iter().any(|r| r.is_self && r.hostname == "n2"));
    let leaders: Vec<&NodeSummary> = rows
        .iter()
        .filter(|r| r.manager_status == "Leader")
        .collect();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0].hostname, "n1");
}

#[test]
fn cluster_reads_refused_say_why() {
    for (fact, case, probe, why) in [
        (
            "node-ls",
            "not-in-swarm",
            node_ls_probe(),
            ManagerRefusal::NotInSwarm,
        ),
        (
            "node-ls",
            "from-worker",
            node_ls_probe(),
            ManagerRefusal::Worker,
        ),
        (
            "node-ls",
            "no-quorum",
            node_ls_probe(),
            ManagerRefusal::NoQuorum,
        ),
        (
            "service-inspect",
            "not-in-swarm",
            service_inspect_probe(),
            ManagerRefusal::NotInSwarm,
        ),
        (
            "service-inspect",
            "from-worker",
            service_inspect_probe(),
            ManagerRefusal::Worker,
        ),
        (
            "service-inspect",
            "no-quorum",
            service_inspect_probe(),
            ManagerRefusal::NoQuorum,
        ),
    ] {
        let out = recorded(fact, case, &probe);
        assert_eq!(out.rc, 1, "{fact}/{case}");
        assert_eq!(refusal(&out), Some(why), "{fact}/{case}");
        let err = if fact == "node-ls" {
            parse_node_ls(&probe.key, &out).map(|_| ()).unwrap_err()
        } else {
            parse_service_inspect(&probe.key, &out)
                .map(|_| ())
                .unwrap_err()
        };
        assert!(err.message.starts_with(why.describe()), "{err}");
    }
}

#[test]
fn node_inspect_roles_labels_and_managers() {
    let nodes = nodes("cluster");
    let n1 = node(&nodes, "n1");
    assert_eq!(n1.spec.role, NodeRole::Manager);
    assert!(n1.is_leader());
    assert_eq!(n1.addr(), "10.234.0.11");
    assert_eq!(n1.spec.labels["role"], "edge");
    assert_eq!(n1.spec.labels["zone"], "a");
    let n2 = node(&nodes, "n2");
    assert!(!n2.is_leader());
    let status = n2.manager_status.as_ref().unwrap();
    assert_eq!(status.reachability, Reachability::Reachable);
    assert_eq!(status.addr, "10.234.0.12:2377");
    let n3 = node(&nodes, "n3");
    assert_eq!(n3.spec.role, NodeRole::Worker);
    assert_eq!(n3.spec.availability, Availability::Active);
    assert_eq!(n3.manager_status, None);
    assert_eq!(n3.status.state, NodeState::Ready);
    assert_eq!(n3.addr(), "10.234.0.13");
    assert_eq!(
        n3.spec.labels,
        BTreeMap::from([("role".into(), "db".into()), ("zone".into(), "c".into())])
    );
    assert_eq!(n3.description.engine.engine_version, "20.10.24+dfsg1");
}

#[test]
fn node_inspect_of_a_stopped_manager() {
    let nodes = nodes("manager-down");
    let n1 = node(&nodes, "n1");
    assert_eq!(n1.status.state, NodeState::Down);
    assert!(n1.status.message.starts_with("heartbeat failure"));
    assert_eq!(
        n1.manager_status.as_ref().unwrap().reachability,
        Reachability::Unreachable
    );
    // n3 was promoted; n2 or n3 took over as leader and reports its real address (the
    // `0.0.0.0` of moby#35437 did not show on Docker 20.10 with --advertise-addr).
    assert_eq!(node(&nodes, "n3").spec.role, NodeRole::Manager);
    let leaders: Vec<&SwarmNode> = nodes.iter().filter(|n| n.is_leader()).collect();
    assert_eq!(leaders.len(), 1);
    let expected = match leaders[0].hostname() {
        "n2" => "10.234.0.12",
        "n3" => "10.234.0.13",
        other => panic!("{other} cannot lead: it is stopped"),
    };
    assert_eq!(leaders[0].addr(), expected);
}

#[test]
fn network_ls_booleans_and_labels_are_strings() {
    let out = recorded("network-ls", "cluster", &network_ls_probe());
    let rows = parse_network_ls(NETWORK_LS_KEY, &out).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["appnet", "dbnet", "ingress"]);
    assert!(rows
        .iter()
        .all(|r| r.driver == "overlay" && r.scope == "swarm"));
    assert!(rows.iter().all(|r| !r.internal && !r.ipv6));
    assert_eq!(
        rows[0].labels(),
        BTreeMap::from([
            ("io.corral.managed".into(), "default".into()),
            ("tier".into(), "app".into())
        ])
    );
    assert!(rows[1].labels().is_empty());
}

#[test]
fn network_inspect_encrypted_attachable_and_ingress() {
    let out = recorded("network-inspect", "cluster", &network_inspect_probe());
    let networks = parse_network_inspect(NETWORK_INSPECT_KEY, &out).unwrap();
    let by_name = |name: &str| networks.iter().find(|n| n.name == name).unwrap();
    let dbnet = by_name("dbnet");
    assert!(dbnet.encrypted());
    assert_eq!(dbnet.options["encrypted"], "");
    assert_eq!(
        dbnet.declared_options(),
        BTreeMap::from([("encrypted", "")])
    );
    assert!(dbnet.options.contains_key(VXLANID_OPTION));
    assert!(!dbnet.attachable && !dbnet.internal && !dbnet.ingress);
    assert_eq!(dbnet.scope, "swarm");
    assert_eq!(dbnet.ipam.config[0].subnet, "10.235.1.0/24");
    assert_eq!(dbnet.ipam.config[0].gateway, "10.235.1.1");
    assert!(dbnet.labels.is_empty());
    let appnet = by_name("appnet");
    assert!(appnet.attachable && !appnet.encrypted());
    assert!(appnet.declared_options().is_empty());
    assert_eq!(appnet.labels["io.corral.managed"], "default");
    assert_eq!(appnet.labels["tier"], "app");
    // Docker picked the gateway.
    assert_eq!(appnet.ipam.config[0].gateway, "10.235.2.1");
    assert!(by_name("ingress").ingress);
}

#[test]
fn worker_sees_only_overlays_it_runs_tasks_on() {
    let out = recorded("network-inspect", "from-worker", &network_inspect_probe());
    let networks = parse_network_inspect(NETWORK_INSPECT_KEY, &out).unwrap();
    let names: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ingress"]);
}

#[test]
fn no_overlay_network_prints_nothing() {
    let out = recorded("network-inspect", "blank", &network_inspect_probe());
    assert_eq!(out.rc, 0);
    assert!(parse_network_inspect(NETWORK_INSPECT_KEY, &out)
        .unwrap()
        .is_empty());
}

#[test]
fn service_ls_counts() {
    let out = recorded("service-ls", "failures", &service_ls_probe());
    let rows = parse_service_ls(SERVICE_LS_KEY, &out).unwrap();
    let counts = rows
        .iter()
        .map(|r| (r.name.as_str(), r.mode.as_str(), r.task_counts()))
        .collect::<Vec<_>>();
    // agent's counts move while its failed update settles.
    assert_eq!(counts[0].0, "agent");
    assert!(counts[0].2.is_some());
    assert_eq!(
        counts[1..],
        [
            ("api", "replicated", Some((2, 2))),
            ("stuck", "replicated", Some((0, 1)))
        ]
    );
    // Host-mode published ports do not show in `service ls`.
    assert_eq!(rows[0].ports, "");
    let out = recorded("service-ls", "cluster", &service_ls_probe());
    let rows = parse_service_ls(SERVICE_LS_KEY, &out).unwrap();
    assert_eq!(rows[0].task_counts(), Some((3, 3)));
}

#[test]
fn replicated_service_spec() {
    let services = services("cluster");
    let networks = parse_network_inspect(
        NETWORK_INSPECT_KEY,
        &recorded("network-inspect", "cluster", &network_inspect_probe()),
    )
    .unwrap();
    let api = service(&services, "api");
    let spec = &api.spec;
    assert_eq!(spec.mode, ServiceMode::Replicated { replicas: 2 });
    assert_eq!(spec.labels["io.corral.managed"], "default");
    let container = &spec.task_template.container_spec;
    assert_eq!(container.image, "local/busybox:1");
    assert_eq!(container.args, ["sleep", "86400"]);
    assert!(container.command.is_empty());
    assert_eq!(
        container.env_map(),
        BTreeMap::from([
            ("APP_ENV", "prod"),
            ("GREETING", "hello world"),
            ("RELEASE", "2")
        ])
    );
    assert_eq!(
        container.mounts,
        [
            Mount {
                kind: "bind".into(),
                source: "/srv/api".into(),
                target: "/srv/api".into(),
                read_only: true
            },
            Mount {
                kind: "volume".into(),
                source: "api-cache".into(),
                target: "/var/cache/api".into(),
                read_only: false
            }
        ]
    );
    let secret = &container.secrets[0];
    assert_eq!(secret.secret_name, "api_token_v1");
    let file = secret.file.as_ref().unwrap();
    assert_eq!((file.name.as_str(), file.mode), ("api_token", 0o400));
    let config = &container.configs[0];
    assert_eq!(config.config_name, "api_conf_v1");
    assert_eq!(config.file.as_ref().unwrap().name, "/etc/api.conf");
    let placement = &spec.task_template.placement;
    assert_eq!(placement.constraints, ["node.labels.role==edge"]);
    assert_eq!(placement.spreads(), ["node.labels.zone"]);
    // Networks are attached by ID.
    let mut attached: Vec<&str> = spec
        .task_template
        .networks
        .iter()
        .map(|a| {
            networks
                .iter()
                .find(|n| n.id == a.target)
                .map(|n| n.name.as_str())
                .unwrap()
        })
        .collect();
    attached.sort();
    assert_eq!(attached, ["appnet", "dbnet"]);
    let update = spec.update_config.as_ref().unwrap();
    assert_eq!(update.parallelism, 2);
    assert_eq!(update.delay, Duration::from_secs(10));
    assert_eq!(update.monitor, Duration::from_secs(2));
    assert_eq!(update.failure_action, "rollback");
    assert_eq!(update.order, "start-first");
    assert!(spec.ports().is_empty());
    // Updated once: the previous spec lacks the added variable.
    let status = api.update_status.as_ref().unwrap();
    assert_eq!(status.state, UpdateState::Completed);
    assert_eq!(status.message, "update completed");
    assert!(status.completed_at.is_some());
    let previous = api.previous_spec.as_ref().unwrap();
    assert!(!previous
        .task_template
        .container_spec
        .env_map()
        .contains_key("RELEASE"));
}

#[test]
fn global_service_with_a_host_mode_port() {
    let services = services("cluster");
    let agent = service(&services, "agent");
    assert_eq!(agent.spec.mode, ServiceMode::Global {});
    assert_eq!(
        agent.spec.ports(),
        [PortConfig {
            name: String::new(),
            protocol: "tcp".into(),
            target_port: 8080,
            published_port: 8080,
            publish_mode: "host".into()
        }]
    );
    assert_eq!(
        agent.spec.task_template.container_spec.args,
        ["httpd", "-f", "-p", "8080"]
    );
    assert!(agent.spec.task_template.placement.constraints.is_empty());
    // Never updated: no status, no previous spec, and no delay in the defaults.
    assert_eq!(agent.update_status, None);
    assert_eq!(agent.previous_spec, None);
    let update = agent.spec.update_config.as_ref().unwrap();
    assert_eq!(update.delay, Duration::ZERO);
    assert_eq!(
        (update.parallelism, update.failure_action.as_str()),
        (1, "pause")
    );
}

#[test]
fn failed_update_is_paused_with_its_reason() {
    let services = services("failures");
    let agent = service(&services, "agent");
    let status = agent.update_status.as_ref().unwrap();
    assert_eq!(status.state, UpdateState::Paused);
    assert!(status
        .message
        .starts_with("update paused due to failure or early termination of task"));
    assert_eq!(status.completed_at, None);
    assert_eq!(agent.spec.task_template.container_spec.args, ["false"]);
    assert_eq!(
        agent
            .previous_spec
            .as_ref()
            .unwrap()
            .task_template
            .container_spec
            .args,
        ["httpd", "-f", "-p", "8080"]
    );
    let stuck = service(&services, "stuck");
    assert_eq!(
        stuck.spec.task_template.placement.constraints,
        ["node.labels.role==nowhere"]
    );
}

#[test]
fn running_tasks_and_their_history() {
    let tasks = tasks("cluster");
    let agent: Vec<&Task> = tasks.iter().filter(|t| t.service() == "agent").collect();
    assert_eq!(agent.len(), 3);
    assert!(agent
        .iter()
        .all(|t| t.state == TaskState::Running && t.ports == "*:8080->8080/tcp"));
    let mut nodes: Vec<&str> = agent.iter().map(|t| t.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    // api was updated once: each slot has a running task and a shut down one.
    let api: Vec<(&str, &TaskState, &TaskState)> = tasks
        .iter()
        .filter(|t| t.service() == "api")
        .map(|t| (t.name.as_str(), &t.desired_state, &t.state))
        .collect();
    assert_eq!(
        api,
        [
            ("api.1", &TaskState::Running, &TaskState::Running),
            ("api.1", &TaskState::Shutdown, &TaskState::Shutdown),
            ("api.2", &TaskState::Running, &TaskState::Running),
            ("api.2", &TaskState::Shutdown, &TaskState::Shutdown)
        ]
    );
    assert!(tasks.iter().all(|t| t.error.is_empty()));
    assert!(tasks[0].since.ends_with(" ago"));
}

#[test]
fn pending_and_failed_tasks_carry_their_errors() {
    let tasks = tasks("failures");
    let stuck = tasks.iter().find(|t| t.service() == "stuck").unwrap();
    assert_eq!(stuck.state, TaskState::Pending);
    assert_eq!(stuck.desired_state, TaskState::Running);
    assert_eq!(stuck.node, "");
    assert_eq!(
        stuck.error,
        "no suitable node (scheduling constraints not satisfied on 3 nodes)"
    );
    let failed = tasks.iter().find(|t| t.state == TaskState::Failed).unwrap();
    assert_eq!(failed.service(), "agent");
    assert_eq!(failed.error, "task: non-zero exit (1)");
    assert_eq!(failed.desired_state, TaskState::Shutdown);
}

#[test]
fn join_token_has_the_token_shape_and_never_prints() {
    let probe = join_token_probe(NodeRole::Worker);
    let out = recorded("join-token", "worker", &probe);
    let token = parse_join_token(&probe.key, &out).unwrap();
    // The fixture holds a placeholder of the real token's shape.
    assert_eq!(token.expose().len(), "SWMTKN-1-".len() + 50 + 1 + 25);
    assert!(!format!("{token:?}").contains("xxxx"));
    assert_eq!(
        join_token_probe(NodeRole::Manager).script,
        "docker swarm join-token -q manager"
    );
}

#[test]
fn join_token_on_a_worker_is_refused() {
    let probe = join_token_probe(NodeRole::Worker);
    let out = recorded("join-token", "from-worker", &probe);
    assert_eq!(refusal(&out), Some(ManagerRefusal::Worker));
    assert!(parse_join_token(&probe.key, &out).is_err());
}

/// A fixture of scripts/record-run-state-fixtures.sh.
fn run_state(fact: &str, case: &str, probe: &Probe) -> ProbeOutput {
    crate::facts::recorded::checked(
        &format!("run-state/{fact}/{case}"),
        probe,
        "run scripts/record-run-state-fixtures.sh",
    )
}

fn runs(case: &str) -> BTreeMap<String, ServiceRun> {
    parse_service_run(
        SERVICE_RUN_KEY,
        &run_state("service-run", case, &service_run_probe()),
    )
    .unwrap()
}

fn run_nodes(case: &str) -> Vec<SwarmNode> {
    parse_node_inspect(
        NODE_INSPECT_KEY,
        &run_state("node-inspect", case, &node_inspect_probe()),
    )
    .unwrap()
}

/// Why `service` does not run in `case`, as the plan decides it.
fn why(case: &str, service: &str) -> Option<String> {
    let runs = runs(case);
    let nodes = run_nodes(case);
    let run = &runs[service];
    let expected = run.global.then(|| global_expected(&nodes, &[]).unwrap());
    not_running(run, expected.as_deref(), &nodes)
}

/// One `service ls` for every service; `service ps` only of those that may be short:
/// every global one, and a replicated one with fewer running than desired.
#[test]
fn run_state_lists_tasks_only_of_services_that_may_be_short() {
    let converged = runs("converged");
    assert_eq!(converged.keys().collect::<Vec<_>>(), ["api", "web"]);
    let api = &converged["api"];
    assert_eq!((api.global, api.running, api.desired), (false, 2, 2));
    assert_eq!(
        api.tasks, None,
        "a replicated service that runs is not listed"
    );
    let web = &converged["web"];
    assert_eq!((web.global, web.running, web.desired), (true, 3, 3));
    let tasks = web.tasks.as_ref().unwrap();
    let mut nodes: Vec<&str> = tasks.iter().map(|t| t.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    let taken = runs("port-taken");
    // Docker's count does not see the failing task: it waits, `Ready`, to restart.
    assert_eq!((taken["web"].running, taken["web"].desired), (2, 2));
    assert_eq!(taken["stuck"].tasks.as_ref().unwrap().len(), 1);
    assert_eq!(taken["api"].tasks, None);
}

#[test]
fn services_that_run_as_declared_have_no_reason() {
    for service in ["api", "web"] {
        assert_eq!(why("converged", service), None, "{service}");
    }
    assert_eq!(why("port-taken", "api"), None);
    // A one-shot task that completed and is not restarted is done.
    assert_eq!(why("port-taken", "oneshot"), None);
    // A drained node is not expected to run the global task (it still stops there).
    assert_eq!(why("drained", "web"), None);
    // A node that is down cannot: a warning says so, not the plan.
    assert_eq!(why("node-down", "web"), None);
}

/// The global service whose task fails on n2 (its host port taken): Docker counts
/// `2/2`, the plan sees n2 without a running task and says why, from the failed task.
#[test]
fn a_global_task_failing_on_a_node_is_named_with_its_error() {
    let why = why("port-taken", "web").unwrap();
    assert!(
            why.starts_with("2/3 tasks running: n2: task failed: starting container failed: driver failed programming external connectivity"),
            "{why}"
        );
    assert!(why.ends_with("port is already allocated"), "{why}");
    let why = super::not_running(&runs("port-taken")["stuck"], None, &[]).unwrap();
    assert_eq!(
            why,
            "0/1 tasks running: stuck.1: task pending: no suitable node (scheduling constraints not satisfied on 3 nodes)"
        );
}

/// Which nodes a global service belongs on: ready, active, and matching its constraints.
#[test]
fn global_services_are_expected_on_ready_active_matching_nodes() {
    let names = |nodes: Option<Vec<String>>| nodes.unwrap().join(" ");
    assert_eq!(
        names(global_expected(&run_nodes("converged"), &[])),
        "n1 n2 n3"
    );
    assert_eq!(names(global_expected(&run_nodes("drained"), &[])), "n1 n2");
    assert_eq!(
        names(global_expected(&run_nodes("node-down"), &[])),
        "n1 n2"
    );
    let nodes = run_nodes("converged");
    let only = |constraint: &str| global_expected(&nodes, &[constraint.to_owned()]);
    assert_eq!(names(only("node.role==manager")), "n1");
    assert_eq!(names(only("node.role!=manager")), "n2 n3");
    assert_eq!(names(only("node.hostname==n3")), "n3");
    assert_eq!(names(only("node.labels.zone==a")), "");
    assert_eq!(names(only("node.labels.zone!=a")), "n1 n2 n3");
    assert_eq!(only("engine.labels.disk==ssd"), None);
    // Unknown placement: wherever Docker keeps a task, on a node that is up.
    let runs = runs("port-taken");
    let why = not_running(&runs["web"], None, &nodes).unwrap();
    assert!(
        why.starts_with("2/3 tasks running: n2: task failed"),
        "{why}"
    );
}

/// A failing task is replaced every few seconds: the digest covers whether each service
/// runs, not which task does.
#[test]
fn run_state_digests_whether_services_run() {
    let converged = run_state("service-run", "converged", &service_run_probe());
    let taken = run_state("service-run", "port-taken", &service_run_probe());
    let digest = |out: &ProbeOutput| canonical(SERVICE_RUN_KEY, out).unwrap();
    assert_ne!(digest(&converged), digest(&taken));
    let mut later = taken.clone();
    later.output = later
        .output
        .replace("Failed 1 second ago", "Failed 9 seconds ago");
    assert_ne!(later.output, taken.output);
    assert_eq!(digest(&later), digest(&taken));
}
