//! `swarm/service` as the loader reads it: its checks and its links to the swarm, networks
//! and volumes, through the public loader (a kind's own unit tests cannot load a whole
//! configuration: the loader is a later stage, docs/src/architecture.md "Layers").

use corral::address::Address;
use corral::kinds::swarm_service::{DockerDuration, KIND};

fn duration(text: &str) -> Option<DockerDuration> {
    Some(DockerDuration::parse(text).unwrap())
}

const INVENTORY: &str = "kind: infrastructure/machine\nname: n1\nspecification: { hostname: n1, ip: 10.1.0.11 }\n---\nkind: infrastructure/machine\nname: n2\nspecification: { hostname: n2, ip: 10.1.0.12 }\n---\nkind: swarm/cluster\nname: main\nspecification: { managers: [n1], workers: [n2] }\n---\nkind: swarm/network\nname: appnet\nspecification: { subnet: 10.20.0.0/24 }\n---\nkind: gluster/volume\nname: shared\nspecification:\n  bricks: [{ machine: n1, path: /data/b }, { machine: n2, path: /data/b }]\n  mount: { machines: all, path: /srv/shared }\n---\n";

fn load(service: &str) -> Result<corral::config::Config, corral::base::diagnostic::ConfigErrors> {
    load_with(service, &[])
}

/// [`load`] with `files` (name, bytes) beside the configuration.
fn load_with(
    service: &str,
    files: &[(&str, &[u8])],
) -> Result<corral::config::Config, corral::base::diagnostic::ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let path = dir.path().join("site.yaml");
    std::fs::write(&path, format!("{INVENTORY}{service}")).unwrap();
    corral::config::load(&[path], &Default::default())
}

fn rendered(errors: &corral::base::diagnostic::ConfigErrors) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let mut out = String::new();
    for error in &errors.errors {
        handler.render_report(&mut out, error).unwrap();
    }
    out
}

#[test]
fn a_service_comes_after_its_swarm_networks_and_gluster_volumes() {
    let config = load_with(
        "kind: swarm/service\nname: web\nspecification:\n  image: local/busybox:1\n  command: [httpd, -f, -p, \"8080\", -h, /]\n  mode: global\n  networks: [appnet]\n  ports: [{ published: 8080, target: 8080, mode: host }]\n  mounts: [{ type: bind, source: /srv/shared/www, target: /data }]\n  constraints: [\"node.labels.tier==front\"]\n  secret_env: { TOKEN: { source: token.txt } }\n  update: { delay: 10s, order: start-first }\n",
        &[("token.txt", b"hunter2\n")],
    )
    .unwrap_or_else(|e| panic!("{}", rendered(&e)));
    let web = config
        .resources
        .iter()
        .find(|r| r.address.kind == KIND)
        .unwrap();
    let implied: Vec<String> = web.implied.iter().map(Address::to_string).collect();
    assert_eq!(
        implied,
        [
            "swarm/cluster.main",
            "swarm/network.appnet",
            "gluster/volume.shared"
        ]
    );
    let corral::kinds::Spec::SwarmService(spec) = &web.spec else {
        panic!("not a service");
    };
    assert_eq!(spec.scope.managers, ["n1"]);
    assert_eq!(spec.update.delay, duration("10s"));
    assert_eq!(spec.command, ["httpd", "-f", "-p", "8080", "-h", "/"]);
    // Read from its file, without the line break an editor ends it with.
    assert_eq!(spec.secret_env["TOKEN"].text(), "hunter2");
}

/// A secret environment value is never written in the configuration (it would be in
/// git and in the configuration's digest): refused, with the two forms as the hint, and
/// never quoted; what cannot reach Docker through the CLI's environment is refused too.
#[test]
fn secret_env_values_come_from_the_environment_or_a_file_never_inline() {
    let errors = load_with(
        concat!(
            "kind: swarm/service\nname: web\nspecification:\n",
            "  image: local/busybox:1\n",
            "  secret_env:\n",
            "    INLINE: hunter2-inline-value\n",
            "    NUMBER: 12345\n",
            "    UNSET: { from_env: CORRAL_TEST_NEVER_SET_VARIABLE }\n",
            "    BOTH: { from_env: HOME, source: token.txt }\n",
            "    DOCKER_HOST: { source: token.txt }\n",
            "    PATH: { source: token.txt }\n",
            "    \"A-B\": { source: token.txt }\n",
            "    NUL: { source: nul.txt }\n",
            "    GOOD: { source: token.txt }\n",
        ),
        &[("token.txt", b"hunter2-file\n"), ("nul.txt", b"hunter2\0x")],
    )
    .unwrap_err();
    let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`A-B` cannot be a secret environment variable: a secret environment variable's name is letters, digits and `_`, not starting with a digit",
            "`BOTH` needs exactly one of `from_env:` and `source:`",
            "`DOCKER_HOST` cannot be a secret environment variable: the Docker CLI that sets it reads this variable itself (the value reaches Docker through the CLI's environment)",
            "the value of secret environment variable `INLINE` is written in the configuration",
            "the value of `NUL` holds a NUL byte, which no environment variable can",
            "the value of secret environment variable `NUMBER` is written in the configuration",
            "`PATH` cannot be a secret environment variable: the Docker CLI that sets it reads this variable itself (the value reaches Docker through the CLI's environment)",
            "the environment variable `CORRAL_TEST_NEVER_SET_VARIABLE` is not set",
        ]
    );
    let help = errors.errors[3].help.as_deref().unwrap_or_default();
    assert!(
        help.contains("`KEY: { from_env: VARIABLE }`") && help.contains("`KEY: { source: FILE }`"),
        "{help}"
    );
    let shown = rendered(&errors);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("site.yaml:"), "{shown}");
}

#[test]
fn an_unknown_network_is_an_error_with_a_suggestion() {
    let errors = load(
        "kind: swarm/service\nname: web\nspecification:\n  image: local/busybox:1\n  networks: [appnet, apnet]\n",
    )
    .unwrap_err();
    assert_eq!(errors.errors.len(), 1, "{}", rendered(&errors));
    assert_eq!(
        errors.errors[0].message,
        "no `swarm/network` is named `apnet`"
    );
    assert_eq!(
        errors.errors[0].help.as_deref(),
        Some("did you mean `appnet`?")
    );
    assert!(rendered(&errors).contains("site.yaml:"));
}

#[test]
fn checks_report_each_field_they_cannot_use() {
    let errors = load(concat!(
        "kind: swarm/service\nname: web\nspecification:\n",
        "  image: Local/Busybox\n",
        "  mode: global\n",
        "  replicas: 2\n",
        "  constraints: [\"node.labels.tier\"]\n",
        "  placement_preferences: [binpack]\n",
        "  ports: [{ published: 0, target: 80 }, { published: 443, target: 443 }, { published: 443, target: 8443 }]\n",
        "  env: { \"BAD KEY\": x, TOKEN: y }\n",
        "  secret_env: { TOKEN: hunter2-very-secret }\n",
        "  mounts: [{ type: bind, source: srv, target: /a }, { type: volume, source: \"a,b\", target: /a }]\n",
        "  labels: { io.corral.managed: x }\n",
    ))
    .unwrap_err();
    let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`Local/Busybox` is not an image reference: a repository path is lowercase letters, digits and `._-` between `/`",
            "`replicas` is for replicated services: a global service runs one task on every eligible node",
            "`node.labels.tier` is not a placement constraint",
            "`binpack` is not a placement preference",
            "a port is from 1 to 65535",
            "443/tcp is published twice",
            "`BAD KEY` cannot be an environment variable",
            "`TOKEN` is in both `env` and `secret_env`",
            "`srv` is not an absolute path",
            "`/a` is mounted twice",
            "`a,b` is not a volume name ([A-Za-z0-9] then [A-Za-z0-9_.-])",
            "`io.corral.managed` cannot be a label here",
        ]
    );
    let shown = rendered(&errors);
    assert!(!shown.contains("hunter2"), "{shown}");
}
