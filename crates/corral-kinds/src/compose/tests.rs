//! Tests of the Compose reader: conversion, errors, rendering, Go's readings, and the
//! corpus of real Compose files.

use super::go_readings::{go_float, split_command};
use super::render::yaml_printable;
use super::*;
use crate::base::yaml::parse_documents;
use crate::swarm_service::{
    DockerDuration, FailureAction, Mode, MountKind, ObjectRef, Port, Protocol, PublishMode,
    ServiceMount, UpdateOrder, UpdatePolicy,
};

fn fixtures() -> PathBuf {
    Path::new(corral_core::testing::REPOSITORY).join("fixtures/compose")
}

/// An error as a test reads it: message, line:col of its label, label, help.
#[derive(Debug)]
struct Reported {
    message: String,
    at: (usize, usize),
    label: String,
    help: String,
}

fn parse_text(name: &str, text: &str, stack: &str) -> (Option<Compose>, Vec<Reported>) {
    let file = Arc::new(SourceFile::new(name.into(), text, Vec::new()));
    let mut errors = ConfigErrors::default();
    let compose = parse(text, &file, &fixtures(), stack, &mut errors);
    let reported = errors
        .errors
        .iter()
        .map(|e| Reported {
            message: e.message.clone(),
            at: e
                .labels
                .first()
                .map_or((0, 0), |l| file.line_col(l.offset())),
            label: e
                .labels
                .first()
                .and_then(|l| l.label())
                .unwrap_or_default()
                .to_owned(),
            help: e.help.clone().unwrap_or_default(),
        })
        .collect();
    (compose, reported)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn load(name: &str) -> Compose {
    let (compose, errors) = parse_text(name, &fixture(name), "app");
    assert!(errors.is_empty(), "{errors:#?}");
    compose.expect("no errors, so a Compose")
}

fn load_text(text: &str) -> Compose {
    let (compose, errors) = parse_text("inline.yml", text, "app");
    assert!(errors.is_empty(), "{errors:#?}");
    compose.expect("no errors, so a Compose")
}

fn errors_of(name: &str) -> Vec<Reported> {
    let (compose, errors) = parse_text(name, &fixture(name), "app");
    assert!(compose.is_none(), "errors give no Compose");
    errors
}

fn errors_of_text(text: &str) -> Vec<Reported> {
    let (compose, errors) = parse_text("inline.yml", text, "app");
    assert!(compose.is_none(), "expected errors");
    errors
}

/// The one error whose message contains `needle`.
fn find<'e>(errors: &'e [Reported], needle: &str) -> &'e Reported {
    let found: Vec<&Reported> = errors
        .iter()
        .filter(|e| e.message.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "`{needle}` in {errors:#?}");
    found[0]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn port(published: u16, target: u16, mode: PublishMode, protocol: Protocol) -> Port {
    Port {
        published,
        target,
        mode,
        protocol,
    }
}

fn reference(source: &str, target: &str) -> ObjectRef {
    ObjectRef {
        source: source.into(),
        target: Some(target.into()),
    }
}

fn duration(text: &str) -> Option<DockerDuration> {
    Some(DockerDuration::parse(text).unwrap())
}

// -----------------------------------------------------------------------------------
// Conversion

#[test]
fn three_tier_services_convert_field_by_field() {
    let compose = load("three-tier.yml");
    assert_eq!(
        compose.services.keys().collect::<Vec<_>>(),
        ["api", "db", "proxy"]
    );

    let proxy = &compose.services["proxy"].spec;
    assert_eq!(proxy.image, "registry.example/proxy:2.4");
    assert_eq!(proxy.command, strings(&["nginx", "-g", "daemon off;"]));
    assert_eq!((proxy.mode, proxy.replicas), (Mode::Global, None));
    assert_eq!(
        proxy.ports,
        [
            port(80, 8080, PublishMode::Ingress, Protocol::Tcp),
            port(443, 8443, PublishMode::Host, Protocol::Tcp),
        ]
    );
    assert_eq!(proxy.networks, strings(&["app_front"]));
    assert_eq!(
        proxy.configs,
        [reference("proxy_conf", "/etc/nginx/conf.d/default.conf")]
    );
    assert_eq!(proxy.constraints, strings(&["node.labels.tier==edge"]));
    assert_eq!(proxy.labels, map(&[("traefik.enable", "false")]));
    assert_eq!(
        proxy.update,
        UpdatePolicy {
            parallelism: Some(1),
            delay: duration("10s"),
            order: Some(UpdateOrder::StartFirst),
            failure_action: None,
            monitor: None,
        }
    );

    let api = &compose.services["api"].spec;
    assert_eq!(
        api.command,
        strings(&["serve", "--port", "9000", "--name", "the api"])
    );
    // env_file first, `environment` over it; numbers as Go prints them; `$$` is `$`;
    // an env file's value verbatim (trailing spaces kept).
    assert_eq!(
        api.env,
        map(&[
            ("CACHE_URL", "redis://cache:6379/0"),
            ("DB_HOST", "db"),
            ("DB_PASSWORD_FILE", "/run/secrets/db_password"),
            ("EMPTY", ""),
            ("GREETING", "hello world  "),
            ("LOG_LEVEL", "info"),
            ("PRICE", "$5"),
            ("RATIO", "1.5"),
            ("WORKERS", "4"),
        ])
    );
    assert_eq!(api.networks, strings(&["app_back", "app_front"]));
    assert_eq!(api.secrets, [reference("db_password", "db_password")]);
    assert_eq!((api.mode, api.replicas), (Mode::Replicated, Some(3)));
    assert_eq!(api.labels, map(&[("team", "payments"), ("tier", "")]));
    assert_eq!(api.constraints, strings(&["node.role==worker"]));
    assert_eq!(
        api.placement_preferences,
        strings(&["spread=node.labels.zone"])
    );
    assert_eq!(
        api.update,
        UpdatePolicy {
            parallelism: Some(2),
            delay: duration("1m30s"),
            order: None,
            failure_action: Some(FailureAction::Rollback),
            monitor: duration("500ms"),
        }
    );

    let db = &compose.services["db"].spec;
    assert_eq!(db.image, "postgres:13");
    assert!(db.command.is_empty());
    assert_eq!(
        db.mounts,
        [
            ServiceMount {
                kind: MountKind::Volume,
                source: "app_db-data".into(),
                target: "/var/lib/postgresql/data".into(),
                readonly: false,
            },
            ServiceMount {
                kind: MountKind::Bind,
                source: "/srv/backups".into(),
                target: "/backups".into(),
                readonly: true,
            },
        ]
    );
    assert_eq!(db.networks, strings(&["app_back"]));
    assert_eq!(db.constraints, strings(&["node.labels.db == true"]));
    assert_eq!(db.replicas, None);

    assert_eq!(
        compose.secrets["db_password"],
        ComposeObject::File {
            path: fixtures().join("./secrets/db_password.txt"),
            span: compose.secrets["db_password"].span(),
        }
    );
    let ComposeObject::File { path, span } = &compose.configs["proxy_conf"] else {
        panic!("a file config");
    };
    assert_eq!(path, &fixtures().join("proxy/default.conf"));
    let text = fixture("three-tier.yml");
    assert_eq!(&text[span.start..span.end], "proxy/default.conf");
    let api_span = compose.services["api"].span;
    assert_eq!(&text[api_span.start..api_span.end], "api");
}

impl ComposeObject {
    fn span(&self) -> Span {
        match self {
            ComposeObject::File { span, .. } | ComposeObject::External { span, .. } => *span,
        }
    }
}

#[test]
fn short_and_long_syntax_give_the_same_service() {
    let short = load("short-syntax.yml");
    let long = load("long-syntax.yml");
    let (short, long) = (&short.services["app"], &long.services["app"]);
    let json = |s: &SwarmServiceSpec| serde_json::to_value(s).unwrap();
    assert_eq!(json(&short.spec), json(&long.spec));
    assert_eq!(short.opaque, long.opaque);

    let spec = &short.spec;
    assert_eq!(spec.command, strings(&["worker", "--queue", "high prio"]));
    assert_eq!(
        spec.ports,
        [
            port(5353, 53, PublishMode::Ingress, Protocol::Udp),
            port(8080, 80, PublishMode::Ingress, Protocol::Tcp),
        ]
    );
    assert_eq!(spec.mounts[0].source, "app_cache");
    assert_eq!(spec.mounts[1].source, "/srv/app/config");
    assert!(spec.mounts[1].readonly);
    assert_eq!(spec.secrets, [reference("token", "token")]);
    // The CLI's default target of a config is its key, as of a secret.
    assert_eq!(spec.configs, [reference("app_conf", "app_conf")]);
    assert_eq!(spec.env, map(&[("EMPTY", ""), ("MODE", "fast")]));
    assert_eq!(spec.labels, map(&[("owner", "ops")]));
    assert_eq!(
        short.opaque,
        BTreeMap::from([(
            "volumes./var/cache/app".to_owned(),
            r#"{"nocopy":true}"#.to_owned()
        )])
    );
}

#[test]
fn a_service_without_networks_is_on_the_stacks_default_network() {
    let short = load("short-syntax.yml");
    assert_eq!(
        short.services["app"].spec.networks,
        strings(&["app_default"])
    );
    let none = load("no-version.yml");
    assert_eq!(
        none.services["solo"].spec.networks,
        strings(&["app_default"])
    );
    // A `default` network of the file's own is what `default` resolves to.
    let named = load_text(
        "version: '3.5'\nservices:\n  s: {image: busybox}\nnetworks:\n  default:\n    name: shared-default\n",
    );
    assert_eq!(
        named.services["s"].spec.networks,
        strings(&["shared-default"])
    );
}

#[test]
fn external_and_named_objects_keep_their_own_names() {
    let compose = load("external.yml");
    let web = &compose.services["web"];
    assert_eq!(
        web.spec.networks,
        strings(&["custom-net", "edge", "infra_shared"])
    );
    let sources: Vec<&str> = web.spec.mounts.iter().map(|m| m.source.as_str()).collect();
    assert_eq!(sources, ["media-store", "web-data"]);
    // A service refers to a secret by its key in the file; the name it stands for is
    // the top-level object's.
    assert_eq!(
        web.spec.secrets,
        [
            reference("site_key", "site_key"),
            reference("tls_key", "tls_key")
        ]
    );
    assert_eq!(web.spec.configs, [reference("site", "site")]);
    let names = |objects: &BTreeMap<String, ComposeObject>| -> Vec<(String, String)> {
        objects
            .iter()
            .map(|(key, object)| match object {
                ComposeObject::External { name, .. } => (key.clone(), name.clone()),
                ComposeObject::File { .. } => panic!("{key} is external"),
            })
            .collect()
    };
    assert_eq!(
        names(&compose.secrets),
        [
            ("site_key".to_owned(), "prod_site_key".to_owned()),
            ("tls_key".to_owned(), "tls_key".to_owned())
        ]
    );
    assert_eq!(
        names(&compose.configs),
        [("site".to_owned(), "site_config_v3".to_owned())]
    );
    // A non-external volume with options puts them in each mount: opaque.
    let named = load_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    volumes: [data:/data]\nvolumes:\n  data:\n    driver: local\n    driver_opts: {type: nfs, o: 'addr=10.0.0.1'}\n",
    );
    assert_eq!(
        named.services["s"].opaque["volumes./data"],
        r#"{"definition":{"driver":"local","driver_opts":{"o":"addr=10.0.0.1","type":"nfs"}}}"#
    );
}

#[test]
fn opaque_keys_are_collected_as_canonical_json() {
    let compose = load("three-tier.yml");
    let api = &compose.services["api"].opaque;
    assert_eq!(
        api.keys().collect::<Vec<_>>(),
        [
            "deploy.resources",
            "deploy.restart_policy",
            "deploy.update_config.max_failure_ratio",
            "healthcheck",
            "logging",
            "stop_grace_period",
            "user",
        ]
    );
    assert_eq!(
        api["deploy.resources"],
        r#"{"limits":{"cpus":"0.50","memory":"512M"}}"#
    );
    assert_eq!(api["deploy.update_config.max_failure_ratio"], "0.25");
    assert_eq!(
        api["logging"],
        r#"{"driver":"json-file","options":{"max-file":"3","max-size":"10m"}}"#
    );
    assert_eq!(api["user"], r#""1000:1000""#);
    assert_eq!(compose.services["proxy"].opaque["logging"], api["logging"]);
    let db = &compose.services["db"].opaque;
    assert_eq!(db["networks.back.aliases"], r#"["database"]"#);
    // 0400 is octal to yaml.v2: 256.
    assert_eq!(
        db["secrets.db_password"],
        r#"{"gid":"0","mode":256,"uid":"0"}"#
    );
}

#[test]
fn yaml_1_1_scalars_read_as_the_cli_reads_them() {
    let compose = load_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    environment:\n      OCTAL: 0644\n      HEX: 0x1F\n      FLOAT: 1.50\n      BIG: 1e6\n      MILLION: 1234567.0\n      SMALL: 0.0001\n      EIGHT: 08\n      UNDERSCORE: 1_000\n      DATE: 2001-12-14\n      NEGATIVE: -0\n      QUOTED: '0644'\n      HUGE: 18446744073709551615\n",
    );
    assert_eq!(
        compose.services["s"].spec.env,
        map(&[
            ("BIG", "1e+06"),
            ("DATE", "2001-12-14"),
            ("EIGHT", "8"),
            ("FLOAT", "1.5"),
            ("HEX", "31"),
            ("HUGE", "18446744073709551615"),
            ("MILLION", "1.234567e+06"),
            ("NEGATIVE", "0"),
            ("OCTAL", "420"),
            ("QUOTED", "0644"),
            ("SMALL", "0.0001"),
            ("UNDERSCORE", "1000"),
        ])
    );
    // `yes` is a boolean, which `environment` does not take; a key `on` is not a string.
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    environment:\n      DEBUG: yes\n    labels:\n      on: x\n",
    );
    let debug = find(&errors, "services.s.environment.DEBUG");
    assert_eq!(debug.at, (6, 14));
    assert!(debug.help.contains("quote"), "{debug:?}");
    let key = find(&errors, "the key `on` is read as a boolean");
    assert_eq!(key.at, (8, 7));
}

#[test]
fn merge_keys_apply_in_document_order_as_yaml_v2_does() {
    let compose = load_text(
        "version: '3.8'\nx-a: &a {A: from-a, B: from-a}\nx-b: &b {B: from-b, C: from-b}\nservices:\n  s:\n    image: busybox\n    environment:\n      A: before\n      <<: [*a, *b]\n      C: after\n  t:\n    <<: {image: alpine:3, command: [one]}\n    command: [two]\n",
    );
    // A merge overrides what comes before it, is overridden by what comes after; in a
    // list of merged mappings the first wins.
    assert_eq!(
        compose.services["s"].spec.env,
        map(&[("A", "from-a"), ("B", "from-a"), ("C", "after")])
    );
    let t = &compose.services["t"].spec;
    assert_eq!(
        (t.image.as_str(), t.command.clone()),
        ("alpine:3", strings(&["two"]))
    );
    // An alias of a scalar is read as the anchored scalar was written.
    let aliased = load_text(
        "version: '3.8'\nx-q: &q 'yes'\nx-n: &n 0x10\nservices:\n  s:\n    image: busybox\n    environment: {Q: *q, H: *n}\n",
    );
    assert_eq!(
        aliased.services["s"].spec.env,
        map(&[("H", "16"), ("Q", "yes")])
    );
    let errors = errors_of_text(
        "version: '3.8'\nx-b: &b yes\nservices:\n  s:\n    image: busybox\n    environment: {B: *b}\n",
    );
    assert_eq!(
        find(&errors, "must be a string, a number or null, not a boolean").at,
        (6, 22)
    );
    // A quoted `<<` is an ordinary (unknown) key.
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    '<<': {user: x}\n",
    );
    assert_eq!(find(&errors, "`<<` is not a Compose key").at, (5, 5));
    let errors = errors_of_text("version: '3.8'\nservices:\n  s:\n    image: busybox\n    <<: 3\n");
    find(&errors, "merge key");
}

// -----------------------------------------------------------------------------------
// Errors

#[test]
fn unknown_keys_are_located_with_the_nearest_known_key() {
    let errors = errors_of("bad-keys.yml");
    // The misspelt key leaves the service without an image: said too, in the same pass.
    assert_eq!(errors.len(), 5, "{errors:#?}");
    find(&errors, "service `web` names no image");
    let imgae = find(&errors, "`imgae`");
    assert_eq!(
        imgae.message,
        "`imgae` is not a Compose key in `services.web`"
    );
    assert_eq!((imgae.at, imgae.label.as_str()), ((4, 5), "unknown key"));
    assert_eq!(imgae.help, "did you mean `image`?");
    let replcas = find(&errors, "`replcas`");
    assert_eq!(
        (replcas.at, replcas.help.as_str()),
        ((6, 7), "did you mean `replicas`?")
    );
    let constraint = find(&errors, "`constraint`");
    assert_eq!(
        (constraint.at, constraint.help.as_str()),
        ((8, 9), "did you mean `constraints`?")
    );
    let drivr = find(&errors, "`drivr`");
    assert_eq!(
        drivr.message,
        "`drivr` is not a Compose key in `networks.front`"
    );
    assert_eq!(drivr.help, "did you mean `driver`?");
    let far = errors_of_text("version: '3.8'\nzzz: 1\n");
    assert!(
        far[0].help.starts_with("known keys: version, services"),
        "{far:#?}"
    );
}

#[test]
fn keys_stack_deploy_ignores_or_refuses_say_how_to_do_it_in_swarm() {
    let errors = errors_of("bad-ignored.yml");
    for (key, at, hint) in [
        ("build", (5, 5), "build and push the image"),
        ("tmpfs", (11, 5), "type: tmpfs"),
        ("network_mode", (16, 5), "networks:"),
        ("ipv4_address", (19, 9), "assigns addresses"),
    ] {
        let error = find(&errors, &format!(".{key}`"));
        assert!(
            error
                .message
                .starts_with("`docker stack deploy` ignores `services."),
            "{error:?}"
        );
        assert!(
            error.message.contains("which changes what the file means"),
            "{error:?}"
        );
        assert_eq!(error.at, at, "{key}");
        assert!(error.help.contains(hint), "{key}: {error:?}");
    }
    let extends = find(&errors, "refuses `services.app.extends`");
    assert_eq!(
        extends.help,
        "Support for `extends` is not implemented yet."
    );
    // container_name, depends_on, links, expose and restart are warnings (below).
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

/// What `docker stack deploy` deploys, corral deploys: a port without a published one
/// (swarm assigns it), `name:` on a file secret or config (corral names the versions).
#[test]
fn target_only_ports_and_named_file_objects_are_accepted() {
    let compose = load_text(
        "version: \"3.8\"\nservices:\n  a:\n    image: busybox\n    ports: [\"9000\", \"9001/udp\", {target: 81, mode: host}, \"80:80\"]\n    secrets: [pw]\nsecrets:\n  pw: {file: secrets/db_password.txt, name: db_password}\n",
    );
    assert_eq!(
        compose.services["a"].spec.ports,
        vec![
            port(0, 9000, PublishMode::Ingress, Protocol::Tcp),
            port(0, 9001, PublishMode::Ingress, Protocol::Udp),
            port(0, 81, PublishMode::Host, Protocol::Tcp),
            port(80, 80, PublishMode::Ingress, Protocol::Tcp),
        ]
    );
    assert!(matches!(compose.secrets["pw"], ComposeObject::File { .. }));
    assert_eq!(compose.warnings.len(), 1, "{:#?}", compose.warnings);
    assert!(
        compose.warnings[0]
            .starts_with("inline.yml:8:39: secret `pw`: corral creates it as `app_pw_<version>`"),
        "{:#?}",
        compose.warnings
    );
    // The deployed file refers to the version corral made.
    let objects = BTreeMap::from([((true, "pw".to_owned()), "app_pw_0123".to_owned())]);
    let rendered: serde_json::Value =
        serde_json::from_str(&compose.render(&objects, &BTreeMap::new())).unwrap();
    assert_eq!(
        rendered["secrets"]["pw"],
        serde_json::json!({"external": true, "name": "app_pw_0123"})
    );
}

/// Keys `docker stack deploy` ignores without changing what runs: deployed, with a
/// warning at their line; `restart` converted as `convertRestartPolicy` converts it.
#[test]
fn keys_stack_deploy_ignores_harmlessly_are_warnings() {
    let compose = load_text(
        "version: \"3.8\"\nservices:\n  app:\n    image: busybox\n    container_name: app\n    depends_on: [db]\n    links: [db]\n    restart: always\n    expose: [\"80\", 81]\n  db:\n    image: busybox\n    restart: on-failure:3\n  once:\n    image: busybox\n    restart: on-failure\n  kept:\n    image: busybox\n    restart: unless-stopped\n    deploy: {restart_policy: {condition: none}}\n",
    );
    let warnings = &compose.warnings;
    for (needle, at) in [
        ("ignores `services.app.container_name`: swarm names", "5:5"),
        ("ignores `services.app.depends_on`: swarm starts", "6:5"),
        ("ignores `services.app.links`: services reach", "7:5"),
        ("ignores `services.app.expose`: services on a shared", "9:5"),
        ("converts `services.app.restart: always` to `deploy.restart_policy` `condition: any`", "8:5"),
        ("converts `services.db.restart: on-failure:3` to `deploy.restart_policy` `condition: on-failure`, `max_attempts: 3`", "12:5"),
        ("ignores `services.kept.restart`: `deploy.restart_policy` decides", "18:5"),
    ] {
        let found: Vec<&String> = warnings.iter().filter(|w| w.contains(needle)).collect();
        assert_eq!(found.len(), 1, "{needle} in {warnings:#?}");
        assert!(found[0].starts_with(&format!("inline.yml:{at}: ")), "{found:?}");
    }
    assert_eq!(warnings.len(), 8, "{warnings:#?}");
    // What runs: the policy the CLI makes, as `deploy.restart_policy` would say it.
    let policy = |service: &str| {
        compose.services[service]
            .opaque
            .get("deploy.restart_policy")
            .cloned()
    };
    assert_eq!(policy("app").as_deref(), Some(r#"{"condition":"any"}"#));
    assert_eq!(
        policy("db").as_deref(),
        Some(r#"{"condition":"on-failure","max_attempts":3}"#)
    );
    // 20.10 gives `on-failure` without a count `MaxAttempts: 0` (no limit).
    assert_eq!(
        policy("once").as_deref(),
        Some(r#"{"condition":"on-failure","max_attempts":0}"#)
    );
    assert_eq!(policy("kept").as_deref(), Some(r#"{"condition":"none"}"#));
    // What the CLI refuses, or would run otherwise than written, stays an error.
    let errors = errors_of_text(
        "version: \"3.8\"\nservices:\n  a: {image: busybox, restart: \"no\"}\n  b: {image: busybox, restart: sometimes}\n  c: {image: busybox, restart: \"on-failure:x\"}\n  d: {image: busybox, restart: \"on-failure:-1\"}\n  e: {image: busybox, restart: no}\n",
    );
    find(
        &errors,
        "ignores `services.a.restart: \"no\"`, which changes what the file means",
    );
    find(
        &errors,
        "refuses `services.b.restart`: unknown restart policy: sometimes",
    );
    find(&errors, "refuses `services.c.restart: on-failure:x`");
    find(
        &errors,
        "`services.d.restart: on-failure:-1`: a negative retry count",
    );
    // Unquoted, `no` is YAML 1.1's false, which the CLI's schema refuses.
    find(
        &errors,
        "`services.e.restart` must be a string, not a boolean",
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn variables_without_a_value_are_errors_at_the_reference() {
    let errors = errors_of("bad-interpolation.yml");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let tag = find(&errors, "`${TAG}` has no value");
    assert_eq!((tag.at, tag.label.as_str()), ((4, 19), "no value"));
    assert!(tag.help.contains("`variables:`"), "{tag:?}");
    assert_eq!(find(&errors, "`$HOME` has no value").at, (6, 17));
    assert_eq!(find(&errors, "a `$` that starts no variable").at, (7, 17));
    let compose = load_text(
        "version: '3.8'\nx-note: costs $$5\nservices:\n  s:\n    image: busybox\n    command: echo $$HOME\n",
    );
    assert_eq!(
        compose.services["s"].spec.command,
        strings(&["echo", "$HOME"])
    );
}

#[test]
fn values_corral_cannot_represent_are_errors_with_hints() {
    let errors = errors_of("bad-values.yml");
    let expect = [
        ("`FROM_SHELL` has no value", (6, 9), "FROM_SHELL=VALUE"),
        ("`./data` is not an absolute path", (8, 9), "on the manager"),
        (
            "`~/cache` is not an absolute path",
            (9, 9),
            "home of whoever deploys",
        ),
        ("is a range of ports", (11, 9), "one entry per port"),
        ("names an address", (13, 9), "remove the address"),
        (
            "`replicas` is for replicated services",
            (19, 17),
            "remove `replicas`",
        ),
        ("`replicated-job` is not a mode", (23, 13), "replicated"),
        (
            "the network `bakc` is not declared",
            (24, 16),
            "did you mean `back`?",
        ),
        ("the secret `nope` is not declared", (25, 15), "declare it"),
    ];
    for (needle, at, hint) in expect {
        let error = find(&errors, needle);
        assert_eq!(error.at, at, "{needle}");
        assert!(error.help.contains(hint), "{needle}: {error:?}");
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

#[test]
fn env_files_are_read_as_the_cli_reads_them() {
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    env_file: [bad-env.env, missing.env]\n",
    );
    let from_shell = find(&errors, "line 2: `FROM_SHELL` has no value");
    assert_eq!(from_shell.at, (5, 16));
    find(
        &errors,
        "line 3: the variable `BAD KEY` contains whitespace",
    );
    let missing = find(&errors, "cannot read the env file");
    assert_eq!(missing.at, (5, 29));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    // Env files' values are shown in plans: only files of the Compose file's directory.
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    env_file: [../../Cargo.toml, secrets]\n",
    );
    find(&errors, "is outside the Compose file's directory");
    find(&errors, "is not a regular file");
}

#[test]
fn versions_gate_keys_and_must_be_strings() {
    let errors = errors_of_text("version: 3.8\nservices:\n  s: {image: busybox}\n");
    let version = find(&errors, "`version` must be a string");
    assert_eq!(
        (version.at, version.help.as_str()),
        ((1, 10), "quote it: `version: \"3.8\"`")
    );
    let errors =
        errors_of_text("version: '3.2'\nservices:\n  s:\n    image: busybox\n    init: true\n");
    let init = find(&errors, "`services.s.init` needs Compose file format 3.7");
    assert_eq!(init.at, (5, 5));
    assert!(
        init.message.ends_with("(this file is version 3.2)"),
        "{init:?}"
    );
    let errors = errors_of_text(
        "services:\n  s:\n    image: busybox\n    deploy: {resources: {limits: {pids: 10}}}\n",
    );
    let pids = find(&errors, "needs Compose file format 3.9");
    assert!(
        pids.message
            .contains("names no version, and is deployed as 3.8"),
        "{pids:?}"
    );
    let errors = errors_of_text("version: '2.4'\nservices: {}\n");
    find(&errors, "does not read Compose file format `2.4`");
    let errors = errors_of_text("version: '3.0'\nx-top: 1\nservices: {}\n");
    find(&errors, "`x-top` needs Compose file format 3.4");
    load_text("version: '3'\nservices:\n  s: {image: busybox}\n");
    load_text("version: '3.7'\nservices:\n  s: {image: busybox, x-mine: 1}\nx-top: 1\n");
}

#[test]
fn types_follow_the_compose_schema() {
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s:\n    image: busybox\n    user: 1000\n    read_only: 'yes'\n    stop_grace_period: 10\n    healthcheck: {interval: 10 s}\n    deploy: {replicas: 1.5}\n    ports: ['80:80', '80:80']\n    volumes: [{source: x, target: /x}]\n",
    );
    assert_eq!(
        find(
            &errors,
            "`services.s.user` must be a string, not an integer"
        )
        .help,
        "quote the value"
    );
    find(
        &errors,
        "`services.s.read_only` must be a boolean, not a string",
    );
    find(&errors, "`services.s.stop_grace_period` must be a duration");
    find(
        &errors,
        "`services.s.healthcheck.interval` is not a duration: `10 s`",
    );
    find(
        &errors,
        "`services.s.deploy.replicas` must be an integer, not a number",
    );
    assert_eq!(find(&errors, "lists this item twice").at, (10, 22));
    find(&errors, "`services.s.volumes[0]` needs `type`");
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

#[test]
fn objects_corral_cannot_manage_are_refused() {
    let errors = errors_of_text(
        "version: '3.8'\nservices:\n  s: {image: busybox}\nsecrets:\n  a: {file: a.txt, name: fixed}\n  b: {driver: vault}\n  c: {external: true, file: c.txt}\n  d: {}\nconfigs:\n  e: {file: e.conf, template_driver: golang}\n",
    );
    find(&errors, "corral cannot honour `driver` of secret `b`");
    find(&errors, "secret `b` has no `file:`");
    find(&errors, "secret `c` is external: `file` would be ignored");
    find(&errors, "secret `d` has no `file:`");
    find(
        &errors,
        "corral cannot honour `template_driver` of config `e`",
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn whole_file_problems_are_errors() {
    find(&errors_of_text(""), "the Compose file is empty");
    find(
        &errors_of_text("- a\n- b\n"),
        "a Compose file is a mapping, not a list",
    );
    let second = errors_of_text("version: '3.8'\n---\nversion: '3.8'\n");
    assert_eq!(find(&second, "one YAML document").at, (2, 1));
    let yaml = errors_of_text("version: '3.8'\nservices: [\n");
    assert!(yaml[0].message.starts_with("not valid YAML"), "{yaml:?}");
    find(
        &errors_of_text("version: '3.8'\nservices:\n  s: {image: !!binary aGk=}\n"),
        "YAML tag `tag:yaml.org,2002:binary`",
    );
    let nul = errors_of_text("version: '3.8'\nservices:\n  s: {image: \"a\\0b\"}\n");
    find(&nul, "NUL byte");
    let name = errors_of_text("version: '3.8'\nservices:\n  my.web: {image: busybox}\n");
    find(&name, "`app_my.web`, which swarm refuses");
    find(
        &errors_of_text(
            "version: '3.8'\nservices:\n  s: {image: busybox, environment: {X: .inf}}\n",
        ),
        "infinite",
    );
}

// -----------------------------------------------------------------------------------
// Rendering

#[test]
fn render_names_versioned_objects_adds_labels_and_inlines_env_files() {
    let compose = load("three-tier.yml");
    let objects = BTreeMap::from([
        (
            (true, "db_password".to_owned()),
            "app_db_password-3f2a".to_owned(),
        ),
        (
            (false, "proxy_conf".to_owned()),
            "app_proxy_conf-91bc".to_owned(),
        ),
    ]);
    let extra = map(&[("io.corral.managed", "site")]);
    let text = compose.render(&objects, &extra);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    // JSON is YAML: our YAML parser reads it too.
    assert_eq!(parse_documents(&text).unwrap().len(), 1);
    assert_eq!(json["version"], "3.8");
    assert_eq!(
        json["secrets"],
        serde_json::json!({"db_password": {"external": true, "name": "app_db_password-3f2a"}})
    );
    assert_eq!(
        json["configs"],
        serde_json::json!({"proxy_conf": {"external": true, "name": "app_proxy_conf-91bc"}})
    );
    assert!(!text.contains("\"file\""), "{text}");
    for service in ["api", "db", "proxy"] {
        assert_eq!(
            json["services"][service]["deploy"]["labels"]["io.corral.managed"],
            "site"
        );
    }
    let api = &json["services"]["api"];
    assert_eq!(api["deploy"]["labels"]["team"], "payments");
    assert!(api.get("env_file").is_none());
    assert_eq!(api["environment"]["GREETING"], "hello world  ");
    // `$` is written `$$` again: the CLI interpolates what it reads.
    assert_eq!(api["environment"]["PRICE"], "$$5");
    // Opaque keys and extensions as written, merges applied.
    assert_eq!(api["healthcheck"]["retries"], 3);
    assert_eq!(api["logging"]["options"]["max-size"], "10m");
    assert_eq!(api["deploy"]["resources"]["limits"]["memory"], "512M");
    assert_eq!(json["x-api-env"]["RATIO"], 1.5);
    assert_eq!(json["services"]["db"]["secrets"][0]["mode"], 256);

    // What the CLI reads back is what was planned.
    let again = load_text(&compose.render(&objects, &BTreeMap::new()));
    for (name, service) in &compose.services {
        let json = |s: &SwarmServiceSpec| serde_json::to_value(s).unwrap();
        assert_eq!(
            json(&again.services[name].spec),
            json(&service.spec),
            "{name}"
        );
        assert_eq!(again.services[name].opaque, service.opaque, "{name}");
    }
}

#[test]
fn render_writes_a_version_and_the_external_form_the_version_allows() {
    let compose = load("no-version.yml");
    let json: serde_json::Value =
        serde_json::from_str(&compose.render(&BTreeMap::new(), &BTreeMap::new())).unwrap();
    assert_eq!(json["version"], "3.8");
    assert_eq!(json["services"]["solo"]["command"], "sleep 3600");
    let old = load_text(
        "version: '3.3'\nservices:\n  s: {image: busybox, configs: [c], secrets: [k]}\nsecrets:\n  k: {file: k.txt}\nconfigs:\n  c: {file: c.txt}\n",
    );
    let objects = BTreeMap::from([((true, "k".to_owned()), "app_k-1".to_owned())]);
    let json: serde_json::Value =
        serde_json::from_str(&old.render(&objects, &BTreeMap::new())).unwrap();
    assert_eq!(
        json["secrets"]["k"],
        serde_json::json!({"external": {"name": "app_k-1"}})
    );
    // Not given: the name the CLI would give it.
    assert_eq!(
        json["configs"]["c"],
        serde_json::json!({"external": {"name": "app_c"}})
    );
    // NEL, LS and PS are line breaks to yaml.v2 even when quoted: escaped.
    assert_eq!(
        yaml_printable("a\u{7f}b\u{85}c\u{2028}\u{a0}"),
        "a\\u007fb\\u0085c\\u2028\u{a0}"
    );
}

// -----------------------------------------------------------------------------------
// Go's readings

#[test]
fn commands_split_as_google_shlex_splits_them() {
    let cases: &[(&str, &[&str])] = &[
        ("a b  c", &["a", "b", "c"]),
        ("a 'b c' \"d e\"", &["a", "b c", "d e"]),
        (r#""a\b" 'a\b' a\ b"#, &["ab", r"a\b", "a b"]),
        ("a#b #comment\nc", &["a#b", "c"]),
        ("'' x", &["", "x"]),
        ("pre'fix'\"ed\"", &["prefixed"]),
        ("", &[]),
    ];
    for (text, words) in cases {
        assert_eq!(split_command(text).unwrap(), strings(words), "{text:?}");
    }
    assert!(split_command("'open").is_err());
    assert!(split_command("end\\").is_err());
    assert!(split_command("\"a\\").is_err());
}

#[test]
fn floats_print_as_go_prints_them() {
    for (value, text) in [
        (0.0, "0"),
        (1.5, "1.5"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5e-10, "-2.5e-10"),
        (1e21, "1e+21"),
    ] {
        assert_eq!(go_float(value), text, "{value}");
    }
}

/// Mutated Compose files give errors, never panics.
#[test]
fn mutations_of_a_compose_file_never_panic() {
    let seed = fixture("three-tier.yml");
    for text in corral_core::testing::mutations(
        &seed,
        b"-:[]{},&*!|>'\"#%@`?\t\n $\\~0x<",
        0x2545_F491_4F6C_DD1D,
        400,
    ) {
        let (compose, errors) = parse_text("mutated.yml", &text, "app");
        assert_eq!(compose.is_some(), errors.is_empty());
        if let Some(compose) = compose {
            let rendered = compose.render(&BTreeMap::new(), &map(&[("x", "y")]));
            assert!(serde_json::from_str::<serde_json::Value>(&rendered).is_ok());
        }
    }
}

/// What corral does with a Compose file of the corpus, as `docker stack deploy` would.
enum Expect {
    /// Deployed as written, without a word.
    Accept,
    /// Deployed, with this many warnings, each needle in one of them.
    Warn(usize, &'static [&'static str]),
    /// Refused with this many errors, each needle in one of them.
    Refuse(usize, &'static [&'static str]),
}

struct Case {
    file: &'static str,
    /// The docker/cli (20.10) function that decides, and what it does.
    cli: &'static str,
    /// What corral does (given the file's variables, when `variables`).
    expect: Expect,
    /// The file takes values from the environment (`${VAR}`).
    variables: bool,
}

/// Real Compose files (fixtures/compose/corpus, origins in its README): what corral does
/// with each is what `docker stack deploy` does, but for what would change the file's
/// meaning, which corral refuses and says why.
#[test]
fn real_compose_files_are_read_as_stack_deploy_reads_them() {
    use Expect::*;
    let cases = [
        Case { file: "voting-app-stack.yml", cli: "loader.Load, convert.Services: deploys", expect: Accept, variables: false },
        Case { file: "swarmpit.yml", cli: "no `version`: 20.10's schema.Version says 1.0 and schema.Validate refuses; 23.0+ read it as the newest 3.x; corral deploys it as 3.8", expect: Accept, variables: false },
        Case { file: "awesome-gitea-postgres.yml", cli: "convertRestartPolicy converts `restart: always`; GetDeprecatedProperties warns of `expose`", expect: Warn(3, &["services.gitea.restart: always", "services.db.restart: always", "services.db.expose"]), variables: false },
        Case { file: "awesome-nextcloud-postgres.yml", cli: "convertRestartPolicy; GetDeprecatedProperties (`expose`)", expect: Warn(3, &["services.nc.restart", "services.db.restart", "services.db.expose"]), variables: false },
        Case { file: "awesome-wordpress-mysql.yml", cli: "convertRestartPolicy; GetDeprecatedProperties (`expose`)", expect: Warn(3, &["services.db.restart", "services.wordpress.restart", "services.db.expose"]), variables: false },
        Case { file: "awesome-portainer.yml", cli: "GetDeprecatedProperties (`container_name`); convertRestartPolicy", expect: Warn(2, &["services.portainer.container_name", "services.portainer.restart"]), variables: false },
        Case { file: "awesome-minecraft.yml", cli: "convert.Volumes: `~` is the deploying user's home, on the manager", expect: Refuse(1, &["`~/minecraft_data` is not an absolute path"]), variables: false },
        Case { file: "awesome-prometheus-grafana.yml", cli: "loader.resolveVolumePaths: `./` resolves on the machine that deploys", expect: Refuse(2, &["`./prometheus` is not an absolute path", "`./grafana` is not an absolute path"]), variables: false },
        Case { file: "awesome-elasticsearch-logstash-kibana.yml", cli: "loader.resolveVolumePaths (`./` binds)", expect: Refuse(2, &["`./logstash/pipeline/logstash-nginx.config`", "`./logstash/nginx.log`"]), variables: false },
        Case { file: "awesome-nginx-golang.yml", cli: "GetUnsupportedProperties: `build` ignored, the service has no image; resolveVolumePaths (`./` bind)", expect: Refuse(2, &["ignores `services.backend.build`, which changes what the file means", "`./proxy/nginx.conf`"]), variables: false },
        Case { file: "awesome-traefik-golang.yml", cli: "GetUnsupportedProperties: `build` ignored, the service has no image", expect: Refuse(1, &["ignores `services.backend.build`"]), variables: false },
        Case { file: "voting-app-compose.yml", cli: "schema.Validate: `depends_on` conditions and `profiles` are not 3.x; `build` ignored; `./` binds", expect: Refuse(15, &["ignores `services.vote.build`", "`services.vote.depends_on` must be a list", "`profiles` is not a Compose key", "`./vote` is not an absolute path", "`127.0.0.1:9229:9229` names an address", "`services.seed.restart: \"no\"`"]), variables: false },
        // These take values from variables: each is given one, as a stack's `variables:`
        // would.
        Case { file: "swarmprom.yml", cli: "template.Substitute (`${ADMIN_USER:-admin}`, …); configs from files", expect: Accept, variables: true },
        Case { file: "swarmprom-traefik.yml", cli: "template.Substitute (`${DOMAIN?…}`); validateExternalNetworks needs `traefik-public` on the swarm (a plan error otherwise)", expect: Accept, variables: true },
        Case { file: "awesome-postgresql-pgadmin.yml", cli: "template.Substitute; GetDeprecatedProperties (`container_name`); convertRestartPolicy", expect: Warn(4, &["services.postgres.container_name", "services.pgadmin.container_name", "services.postgres.restart", "services.pgadmin.restart"]), variables: true },
        Case { file: "awesome-plex.yml", cli: "GetUnsupportedProperties: `network_mode: host` ignored, the service is on the stack's network", expect: Refuse(1, &["ignores `services.plex.network_mode`, which changes what the file means"]), variables: true },
        Case { file: "awesome-pihole-cloudflared-DoH.yml", cli: "convert.convertServiceNetworks drops `ipv4_address`", expect: Refuse(1, &["ignores `services.cloudflared.networks.dns-net.ipv4_address`, which changes what the file means"]), variables: true },
    ];
    let dir = fixtures().join("corpus");
    let listed: BTreeSet<&str> = cases.iter().map(|c| c.file).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "every file of the corpus has a case"
    );
    for case in &cases {
        let text = std::fs::read_to_string(dir.join(case.file)).unwrap();
        let file = Arc::new(SourceFile::new(case.file.into(), &text, Vec::new()));
        let mut errors = ConfigErrors::default();
        // The variables a user gives such a file (an absolute path where it names one).
        let variables: Variables = match case.variables {
            false => Variables::new(),
            true => referenced_names(&text)
                .into_iter()
                .map(|name| {
                    let value = match name.contains("PATH") {
                        true => "/srv/data".to_owned(),
                        false => format!("{}-value", name.to_lowercase()),
                    };
                    let sensitive = false;
                    (name, variables::Variable { value, sensitive })
                })
                .collect(),
        };
        let compose = parse_all(&text, &file, &dir, "s", &variables, &mut errors);
        let errors: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
        let warnings = compose.map(|(c, _)| c.warnings).unwrap_or_default();
        let contains =
            |all: &[&str], needle: &str| all.iter().filter(|m| m.contains(needle)).count();
        let (file, cli) = (case.file, case.cli);
        let warnings: Vec<&str> = warnings.iter().map(String::as_str).collect();
        match case.expect {
            Accept => {
                assert!(errors.is_empty(), "{file} ({cli}): {errors:#?}");
                assert!(warnings.is_empty(), "{file} ({cli}): {warnings:#?}");
            }
            Warn(count, needles) => {
                assert!(errors.is_empty(), "{file} ({cli}): {errors:#?}");
                assert_eq!(warnings.len(), count, "{file} ({cli}): {warnings:#?}");
                for needle in needles {
                    assert_eq!(
                        contains(&warnings, needle),
                        1,
                        "{file} ({cli}): `{needle}` in {warnings:#?}"
                    );
                }
            }
            Refuse(count, needles) => {
                assert_eq!(errors.len(), count, "{file} ({cli}): {errors:#?}");
                for needle in needles {
                    assert_eq!(
                        contains(&errors, needle),
                        1,
                        "{file} ({cli}): `{needle}` in {errors:#?}"
                    );
                }
            }
        }
    }
}

/// The names a file refers to with `$NAME` or `${NAME…}` (`$$` is no reference).
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'$' {
            at += 1;
            continue;
        }
        if bytes.get(at + 1) == Some(&b'$') {
            at += 2;
            continue;
        }
        let start = at + 1 + usize::from(bytes.get(at + 1) == Some(&b'{'));
        let end = (start..bytes.len())
            .find(|&i| !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_'))
            .unwrap_or(bytes.len());
        if end > start {
            names.insert(text[start..end].to_owned());
        }
        at = end.max(at + 1);
    }
    names
}
