//! Every kind of configuration mistake renders as a located, helpful diagnostic. Snapshots
//! are miette's graphical output without colour at a fixed width, exactly as operators see
//! it (`corral validate`).

use std::path::PathBuf;

use corral::config::{self, LoadOptions};
use corral::graph::{Filter, ResourceGraph};
use miette::{GraphicalReportHandler, GraphicalTheme};

/// Loads `tests/inputs/errors/NAME.yaml` with the shared inventory and renders the errors.
fn render_errors(name: &str) -> String {
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
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, &errors).unwrap();
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
