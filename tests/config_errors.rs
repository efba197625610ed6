//! Every kind of configuration mistake renders as a located, helpful diagnostic. Snapshots
//! are miette's graphical output without colour at a fixed width, exactly as operators see
//! it (`corral validate`).

use std::path::PathBuf;

use corral::config::{self, LoadOptions};
use corral::graph::{Filter, ResourceGraph};
use miette::{GraphicalReportHandler, GraphicalTheme};

/// Loads `tests/inputs/errors/NAME.yaml` with the shared inventory and renders the errors.
fn render_errors(name: &str) -> String {
    render_errors_with(name, 1)
}

/// Like [`render_errors`], quoting `context_lines` lines around each error.
fn render_errors_with(name: &str, context_lines: usize) -> String {
    let paths = vec![
        PathBuf::from("tests/inputs/inventory.yaml"),
        PathBuf::from(format!("tests/inputs/errors/{name}.yaml")),
    ];
    let errors = match config::load(&paths, &LoadOptions::default()) {
        Ok(config) => match ResourceGraph::build(&config, &Filter::default()) {
            Ok(_) => panic!("{name}: expected errors, the configuration loaded"),
            Err(errors) => errors,
        },
        Err(errors) => errors,
    };
    render(&errors, context_lines)
}

fn render(errors: &dyn miette::Diagnostic, context_lines: usize) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_context_lines(context_lines);
    let mut out = String::new();
    handler.render_report(&mut out, errors).unwrap();
    out
}

macro_rules! error_snapshot {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            insta::assert_snapshot!($file, render_errors($file));
        }
    };
}

error_snapshot!(malformed_yaml, "malformed-yaml");
error_snapshot!(tab_indentation, "tab-indentation");
error_snapshot!(unknown_kind, "unknown-kind");
error_snapshot!(unknown_field_suggests_nearest, "unknown-field");
error_snapshot!(unknown_envelope_field, "unknown-envelope-field");
error_snapshot!(wrong_type, "wrong-type");
error_snapshot!(missing_field, "missing-field");
error_snapshot!(duplicate_name, "duplicate-name");
error_snapshot!(unknown_machine, "unknown-machine");
error_snapshot!(dangling_depends_on, "dangling-depends-on");
error_snapshot!(cycle_names_every_address, "cycle");
error_snapshot!(empty_file, "empty-file");
error_snapshot!(non_utf8, "non-utf8");
error_snapshot!(bad_values, "bad-values");
error_snapshot!(missing_source, "missing-source");
error_snapshot!(selector_typo, "selector-typo");
error_snapshot!(all_errors_at_once, "many-errors");
error_snapshot!(conflicting_claims, "conflicting-claims");
error_snapshot!(depends_on_missing_instance, "dangling-instance");
error_snapshot!(ssh_proxy_jump_cannot_run_commands, "ssh-proxy-jump");
error_snapshot!(ssh_settings_follow_their_grammar, "ssh-settings");
error_snapshot!(secret_next_to_a_misspelt_field, "secret-next-to-typo");
error_snapshot!(secret_next_to_a_bad_mode, "secret-next-to-bad-mode");
error_snapshot!(secret_block_scalar, "secret-block-scalar");
error_snapshot!(secret_in_malformed_yaml, "secret-malformed-yaml");
error_snapshot!(sysctl_keys_follow_the_grammar, "sysctl-keys");
error_snapshot!(
    sysctl_key_spelt_with_slashes_is_the_same_key,
    "conflicting-sysctl-keys"
);
error_snapshot!(source_outside_the_configuration, "source-outside");
error_snapshot!(swarm_networks_and_daemon_settings, "swarm");
error_snapshot!(swarm_members_and_subnets, "swarm-members");
error_snapshot!(network_without_a_swarm, "swarm-without-cluster");
error_snapshot!(gluster_bricks_replicas_and_mounts, "gluster");
error_snapshot!(stack_variables_are_read_as_secrets_are, "stack-variables");
error_snapshot!(stack_references_without_values, "stack-references");
error_snapshot!(a_compose_file_is_named_as_one, "compose-file");

/// The exploit inventory of the safety issue: `proxy_jump` would reach a local shell
/// through ssh's ProxyCommand. Loading it fails, at the value.
#[test]
fn proxy_jump_with_shell_commands_is_refused_at_its_line() {
    let paths = vec![PathBuf::from("tests/inputs/errors/ssh-proxy-jump.yaml")];
    let errors = config::load(&paths, &LoadOptions::default()).expect_err("the load must fail");
    assert_eq!(errors.errors.len(), 1, "{}", render(&errors, 1));
    let error = &errors.errors[0];
    assert_eq!(error.message, "`u|touch${IFS}/tmp/x|@h` is not a jump host");
    assert!(error
        .help
        .as_deref()
        .unwrap_or_default()
        .contains("[user@]host[:port]"));
    let rendered = render(&errors, 1);
    assert!(
        rendered.contains("tests/inputs/errors/ssh-proxy-jump.yaml:10:17"),
        "{rendered}"
    );
}

/// No secret of the fixtures (each holds `hunter2`) appears anywhere in what operators see,
/// even with the whole file quoted around each error.
#[test]
fn secrets_never_appear_in_diagnostics() {
    for name in [
        "secret-next-to-typo",
        "secret-next-to-bad-mode",
        "secret-block-scalar",
        "secret-malformed-yaml",
        "secret-unknown-field",
    ] {
        let rendered = render_errors_with(name, 1000);
        assert!(!rendered.contains("hunter2"), "{name}:\n{rendered}");
        let text = std::fs::read_to_string(format!("tests/inputs/errors/{name}.yaml")).unwrap();
        let (masked, secret) = (
            rendered.matches('*').count(),
            text.matches("hunter2").count(),
        );
        assert!(masked > 0 && secret > 0, "{name}:\n{rendered}");
    }
    // The errors themselves are still there.
    let rendered = render_errors_with("secret-next-to-bad-mode", 1000);
    assert!(
        rendered.contains("`0999` is not an octal file mode"),
        "{rendered}"
    );
    let rendered = render_errors_with("secret-next-to-typo", 1000);
    assert!(rendered.contains("unknown field `sensitve`"), "{rendered}");
    assert!(rendered.contains("unknown field `contnet`"), "{rendered}");
}

/// A `source:` outside the configuration's directories (absolute, through `..`, or through
/// a symbolic link inside them) would put the operator's files into the plan.
#[test]
fn source_outside_the_configuration_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let config_dir = root.path().join("config");
    std::fs::create_dir_all(config_dir.join("files")).unwrap();
    std::fs::write(root.path().join("outside.txt"), "CI_TOKEN=abc\n").unwrap();
    std::fs::write(config_dir.join("files/motd.txt"), "hello\n").unwrap();
    std::os::unix::fs::symlink(root.path().join("outside.txt"), config_dir.join("link.txt"))
        .unwrap();
    let document = |name: &str, source: &str| {
        format!("kind: os/file\nname: {name}\nspecification:\n  machines: all\n  path: /etc/{name}\n  source: {source}\n---\n")
    };
    let text = [
        document("environ", "/proc/self/environ"),
        document("dotdot", "../outside.txt"),
        document("link", "link.txt"),
        document("inside", "files/motd.txt"),
    ]
    .concat();
    std::fs::write(config_dir.join("site.yaml"), &text).unwrap();
    let paths = vec![
        PathBuf::from("tests/inputs/inventory.yaml"),
        config_dir.clone(),
    ];
    let errors = config::load(&paths, &LoadOptions::default()).expect_err("must be refused");
    let rendered = render(&errors, 1);
    let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{rendered}");
    for (message, source) in
        messages
            .iter()
            .zip(["/proc/self/environ", "../outside.txt", "link.txt"])
    {
        assert!(
            message.starts_with(&format!("`{source}` is `/"))
                && message.ends_with("outside the configuration's directories"),
            "{message}"
        );
    }
    for line in [6, 13, 20] {
        assert!(
            rendered.contains(&format!("site.yaml:{line}:11")),
            "{rendered}"
        );
    }
    assert!(!rendered.contains("CI_TOKEN"), "{rendered}");

    // The operator may allow it (not the kernel's files: never a value to copy), and a
    // file PATH's own directory is the tree too.
    let options = LoadOptions {
        allow_source_outside_config: true,
        ..LoadOptions::default()
    };
    let errors = config::load(&paths, &options).expect_err("the kernel's file");
    assert_eq!(errors.errors.len(), 1, "{}", render(&errors, 1));
    assert!(errors.errors[0].message.ends_with("a file of the kernel's"));
    let allowed: String = text.split_inclusive("---\n").skip(1).collect();
    std::fs::write(config_dir.join("site.yaml"), &allowed).unwrap();
    let config = config::load(&paths, &options).expect("allowed by the operator");
    assert_eq!(config.resources.len(), 3);
    let only_inside = text.split("---\n").nth(3).unwrap();
    std::fs::write(config_dir.join("site.yaml"), only_inside).unwrap();
    let paths = vec![
        PathBuf::from("tests/inputs/inventory.yaml"),
        config_dir.join("site.yaml"),
    ];
    config::load(&paths, &LoadOptions::default()).expect("inside the tree");

    // An inventory given as a file PATH does not open its directory to other files'
    // sources: the SSH key kept next to a lab's inventory stays out of plans.
    let lab = root.path().join("lab");
    std::fs::create_dir_all(&lab).unwrap();
    std::fs::write(lab.join("id_ed25519"), "PRIVATE KEY\n").unwrap();
    std::fs::copy("tests/inputs/inventory.yaml", lab.join("inventory.yaml")).unwrap();
    std::fs::write(
        config_dir.join("site.yaml"),
        document("key", "../lab/id_ed25519"),
    )
    .unwrap();
    let paths = vec![config_dir.clone(), lab.join("inventory.yaml")];
    let errors =
        config::load(&paths, &LoadOptions::default()).expect_err("a key next to the inventory");
    assert!(
        errors.errors[0]
            .message
            .ends_with("outside the configuration's directories"),
        "{}",
        render(&errors, 1)
    );
}

#[test]
fn unknown_kinds_can_be_ignored() {
    let paths = vec![
        PathBuf::from("tests/inputs/inventory.yaml"),
        PathBuf::from("tests/inputs/errors/unknown-kind.yaml"),
    ];
    let options = LoadOptions {
        ignore_unknown_kinds: true,
        ..LoadOptions::default()
    };
    let config = config::load(&paths, &options).expect("unknown kinds are skipped");
    assert_eq!(config.machines.len(), 2);
    assert!(config.resources.is_empty());
}

/// A missing identity file is an error for commands that connect, and not for those that
/// need no key (`validate`, `graph`, `plan --facts` in a pull-request job).
#[test]
fn missing_identity_file_matters_only_when_connecting() {
    let paths = vec![PathBuf::from("tests/inputs/errors/ssh-settings.yaml")];
    let messages = |connecting: bool| -> Vec<String> {
        let options = LoadOptions {
            connecting,
            ..LoadOptions::default()
        };
        config::load(&paths, &options)
            .expect_err("bad settings")
            .errors
            .iter()
            .map(|e| e.message.clone())
            .collect()
    };
    let missing = "there is no identity file `/nonexistent/corral-key` on this machine";
    assert!(messages(true).iter().any(|m| m == missing));
    assert!(!messages(false).iter().any(|m| m == missing));
}

error_snapshot!(secrets_configs_and_stacks, "objects");
error_snapshot!(
    unknown_fields_of_a_kind_with_secrets,
    "secret-unknown-field"
);

#[test]
fn an_inline_secret_value_is_never_quoted() {
    let rendered = render_errors("objects");
    assert!(!rendered.contains("hunter2-inline-canary"), "{rendered}");
}

/// Loads `tests/inputs/modules/NAME.yaml` (documents using the modules of that folder) with
/// the shared inventory and renders the errors.
fn render_module_errors(name: &str) -> String {
    let paths = vec![
        PathBuf::from("tests/inputs/inventory.yaml"),
        PathBuf::from(format!("tests/inputs/modules/{name}.yaml")),
    ];
    let errors = config::load(&paths, &LoadOptions::default()).expect_err("expected errors");
    render(&errors, 1)
}

macro_rules! module_error_snapshot {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            insta::assert_snapshot!(concat!("module-", $file), render_module_errors($file));
        }
    };
}

// Inputs: an unknown one (with the nearest), a missing one, wrong types, located at the use
// site with the declaration's place in the help.
module_error_snapshot!(module_inputs_are_checked_at_the_use_site, "inputs");
// An unknown field in a module's document: located in the module, naming each use site.
module_error_snapshot!(module_document_errors_name_the_use_site, "field");
// A module not found, a nested module, unknown and misplaced placeholders, a misspelt
// `source`; what depends on a failed instance's resources reports nothing more.
module_error_snapshot!(module_sources_and_placeholders, "source");

error_snapshot!(hardening_kinds, "hardening");
// A bad user name, malformed public keys (not base64 of its type, an unknown type), a uid
// out of range.
error_snapshot!(user_kind, "user");

// "expected a mapping, found null" alone did not say why: the block under the key is not
// indented more than the key.
error_snapshot!(
    mis_indented_mapping_hints_at_indentation,
    "mis-indented-mapping"
);

// A Compose file with five problems, three of them in one service, shows all five at once
// (the missing `configs:` file too), not one per `validate`.
error_snapshot!(every_compose_error_in_one_pass, "compose-five");
