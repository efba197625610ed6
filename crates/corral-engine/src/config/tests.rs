//! Tests of the loader: the project's identity, errors pointing at settings, secrets kept
//! out of errors, and selectors.

use super::loader::scrub_secrets;
use super::*;
use crate::base::check::Exposure;

/// The identity is kept where the project's name comes from: never in an ancestor no
/// one gave (two folders under `/` would put it in `/`).
#[test]
fn the_identity_is_kept_in_the_configurations_directory() {
    let root = tempfile::tempdir().unwrap();
    let (web, db) = (root.path().join("web"), root.path().join("db"));
    std::fs::create_dir(&web).unwrap();
    std::fs::create_dir(&db).unwrap();
    let (web, db) = (web.canonicalize().unwrap(), db.canonicalize().unwrap());
    let file = |d: &Path| d.join("a.yaml").display().to_string();
    let (w, d) = (file(&web), file(&db));
    assert_eq!(identity_dir([w.as_str(), w.as_str()].into_iter(), &[]), web);
    let roots = [db.clone(), web.clone()];
    assert_eq!(identity_dir([w.as_str()].into_iter(), &roots), web);
    assert_eq!(
        identity_dir([w.as_str(), d.as_str()].into_iter(), &roots),
        db
    );
    assert_eq!(identity_dir([w.as_str(), d.as_str()].into_iter(), &[]), web);
    assert_eq!(identity_dir(std::iter::empty(), &roots), db);
}

/// A plan error about a resource points at the setting it quotes (`owner: deploy`),
/// or at `lifecycle.prevent_destroy`; the name only when nothing else fits.
#[test]
fn errors_about_a_resource_point_at_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "kind: infrastructure/machine\nname: n1\nspecification: {hostname: n1, ip: 10.0.0.1}\n---\nkind: os/file\nname: app\nlifecycle: { prevent_destroy: true }\nspecification:\n  machines: all\n  path: /etc/app\n  content: x\n  owner: deploy\n").unwrap();
    let config = load(&[path], &LoadOptions::default()).unwrap();
    let resource = &config.resources[0];
    let at = |origin: Origin| {
        let text = origin.to_string();
        text[text.find(':').unwrap() + 1..].to_owned()
    };
    assert_eq!(
        at(resource.origin_of_message("owner `deploy` does not exist")),
        "12:10"
    );
    assert_eq!(
        at(resource.origin_of_field(&["lifecycle", "prevent_destroy"])),
        "7:31"
    );
    assert_eq!(at(resource.origin_of_message("no quoted value")), "6:7");
    assert_eq!(
        at(resource.origin_of_message("`nowhere` is not set")),
        "6:7"
    );
}

#[test]
fn every_kind_declares_its_secret_fields() {
    for kind in kinds::KNOWN_KINDS.iter().chain([&machine::KIND]) {
        assert!(
            secret_field_table().any(|(k, _)| k == kind),
            "{kind} has no line in SECRET_FIELDS"
        );
    }
    assert_eq!(secret_names(), ["content", "secret_env"]);
    assert_eq!(secret_fields(Some("os/sysctl")), Vec::<&[&str]>::new());
    assert_eq!(
        secret_fields(Some("os/flie")),
        [
            &["content"][..],
            &["content"],
            &["content"],
            &["secret_env"]
        ]
    );
}

/// A configuration directory `config/` with `site.yaml`, next to `outside.txt`.
fn context_test(exposure: Exposure, allow: bool, source: &str) -> (Option<Vec<u8>>, Vec<String>) {
    let root = tempfile::tempdir().unwrap();
    let config_dir = root.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(root.path().join("outside.txt"), "CI_TOKEN=abc\n").unwrap();
    std::fs::write(config_dir.join("inside.txt"), "hello\n").unwrap();
    std::os::unix::fs::symlink("../outside.txt", config_dir.join("link.txt")).unwrap();
    let text = format!("source: {source}\n");
    let node = yaml::parse_documents(&text).unwrap().remove(0).root;
    let file = Arc::new(SourceFile::new("site.yaml".into(), &text, Vec::new()));
    let roots = config_roots(&[config_dir.join("site.yaml")]);
    let (mut errors, mut digest) = (ConfigErrors::default(), ConfigDigest::default());
    let mut ctx = CheckContext {
        name: "test",
        file: &file,
        spec: &node,
        dir: &config_dir,
        roots: &roots,
        allow_source_outside_config: allow,
        connecting: false,
        errors: &mut errors,
        digest: &mut digest,
    };
    let bytes = ctx.read_source_as(&["source"], source, exposure);
    let messages = errors.errors.into_iter().map(|e| e.message).collect();
    (bytes, messages)
}

#[test]
fn sources_outside_the_configuration_are_read_only_for_sensitive_content() {
    use Exposure::{Sensitive, Shown};
    let outside = Some(b"CI_TOKEN=abc\n".to_vec());
    for source in ["../outside.txt", "link.txt"] {
        let (bytes, errors) = context_test(Shown, false, source);
        assert_eq!(bytes, None);
        assert!(
            errors[0].ends_with("outside.txt`, outside the configuration's directories"),
            "{errors:?}"
        );
        assert_eq!(
            context_test(Sensitive, false, source),
            (outside.clone(), vec![])
        );
        assert_eq!(context_test(Shown, true, source), (outside.clone(), vec![]));
    }
    let inside = (Some(b"hello\n".to_vec()), vec![]);
    assert_eq!(context_test(Shown, false, "inside.txt"), inside);
    assert_eq!(context_test(Shown, false, "../config/inside.txt"), inside);
    // Devices and directories are not files to copy, sensitive or not.
    let (bytes, errors) = context_test(Sensitive, false, "/dev/zero");
    assert_eq!(
        (bytes, errors),
        (
            None,
            vec!["`/dev/zero` is `/dev/zero`, a file of the kernel's".into()]
        )
    );
    // Nor the kernel's files, even for a secret (which may be anywhere else).
    let (bytes, errors) = context_test(Exposure::Secret, false, "/proc/self/environ");
    assert!(
        bytes.is_none() && errors[0].ends_with("a file of the kernel's"),
        "{errors:?}"
    );
    let (bytes, errors) = context_test(Sensitive, false, ".");
    assert!(bytes.is_none() && errors[0].ends_with("is not a regular file"));
}

#[test]
fn decoding_errors_about_secret_values_do_not_quote_them() {
    let text = "content: hunter2\nmode: x\n";
    let file = Arc::new(SourceFile::new(
        "f.yaml".into(),
        text,
        vec![Span { start: 9, end: 16 }],
    ));
    let (mut errors, mut digest) = (ConfigErrors::default(), ConfigDigest::default());
    let options = LoadOptions::default();
    let mut loader = Loader {
        options: &options,
        roots: &[],
        errors: &mut errors,
        digest: &mut digest,
        machines: BTreeMap::new(),
        machine_origins: HashMap::new(),
        resources: Vec::new(),
        seen: HashMap::new(),
        modules: HashMap::new(),
        expansions: Expansions::default(),
    };
    let error = |span, kind| DeError {
        message: "invalid value: string \"hunter2\", expected a digest".into(),
        span,
        kind,
    };
    loader.de_error(
        &file,
        error(Span { start: 9, end: 16 }, yaml::DeErrorKind::InvalidValue),
    );
    loader.de_error(
        &file,
        error(Span { start: 9, end: 16 }, yaml::DeErrorKind::Custom),
    );
    loader.de_error(
        &file,
        error(Span { start: 23, end: 24 }, yaml::DeErrorKind::InvalidValue),
    );
    let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "invalid value (not shown: this field may hold a secret)",
            "invalid value (not shown: this field may hold a secret)",
            "invalid value: string \"hunter2\", expected a digest",
        ]
    );
}

#[test]
fn messages_quoting_a_secret_are_scrubbed() {
    let text = "content: |\n  hunter2-line-one\n  abc\n";
    let secrets = [Span {
        start: 13,
        end: text.len() - 1,
    }];
    let mut errors =
        vec![ConfigError::plain("`hunter2-line-one\\nabc` is wrong")
            .with_help("not `hunter2-line-one`")];
    scrub_secrets(&mut errors, text, &secrets);
    assert_eq!(errors[0].message, "`(sensitive)\\nabc` is wrong");
    assert_eq!(errors[0].help.as_deref(), Some("not `(sensitive)`"));
}

/// A label typo or a machine missing from the inventory plans nothing: named, with the
/// selector as written; a configuration without machines is refused with the cause.
#[test]
fn selectors_that_match_nothing_are_named_and_no_machines_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yaml");
    let file = |labels: &str| {
        format!(
            "kind: os/file\nname: motd\nspecification:\n  machines: {{labels: {{{labels}}}}}\n  path: /etc/motd\n  content: hi\n"
        )
    };
    let machine = "kind: infrastructure/machine\nname: n1\nspecification:\n  hostname: n1\n  ip: 10.0.0.1\n  labels: {role: web}\n---\n";
    std::fs::write(&path, format!("{machine}{}", file("role: db"))).unwrap();
    let config = load(std::slice::from_ref(&path), &LoadOptions::default()).unwrap();
    let unmatched = config.unmatched_selectors();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0].0.to_string(), "os/file.motd");
    assert_eq!(
        unmatched[0].1,
        "machines: {labels: {role: db}} matches no machine"
    );
    assert!(config.require_machines().is_ok());

    std::fs::write(&path, format!("{machine}{}", file("role: web"))).unwrap();
    let config = load(std::slice::from_ref(&path), &LoadOptions::default()).unwrap();
    assert!(config.unmatched_selectors().is_empty());

    std::fs::write(&path, file("role: web")).unwrap();
    let config = load(&[path], &LoadOptions::default()).unwrap();
    let refused = config.require_machines().unwrap_err();
    assert_eq!(
        refused.errors[0].to_string(),
        "the configuration declares no machines"
    );
}
