//! What the lab tests share: running the built `corral`, showing and checking its output,
//! and a lab of a test's own, brought up fresh and taken down.
//!
//! Each lab test file is its own crate and uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `corral ARGS…`, without colour.
pub fn corral(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("corral runs")
}

/// A command's stdout and stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}",
        out.status.code(),
        text(out)
    );
}

/// Brings up the three-host lab `name` on `subnet` in `dir`. Fresh hosts every run:
/// `lab up` would reuse a healthy lab left by a killed run, so that one goes first.
pub fn lab_up(name: &str, subnet: &str, dir: &Path) {
    let dir = dir.to_str().unwrap();
    let _ = corral(&["lab", "down", "--name", name, "--dir", dir]);
    let out = corral(&[
        "lab",
        "up",
        "--name",
        name,
        "--machines",
        "3",
        "--subnet",
        subnet,
        "--dir",
        dir,
    ]);
    assert_success(&out, "lab up");
}

/// Takes the lab `name` down; for `Drop`, so a failure is said, not raised.
pub fn lab_down(name: &str, dir: &Path) {
    let out = corral(&[
        "lab",
        "down",
        "--name",
        name,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    if !out.status.success() {
        eprintln!("lab down failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}
