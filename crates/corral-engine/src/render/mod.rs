//! Output: the plan as text for people (`human`), as JSON for tools (`json`), as Markdown
//! for pull requests (`markdown`), apply progress (`progress`) and apply's last words
//! (`report`). Rendering never decides anything; it only shows plan data.

pub mod group;
pub mod human;
pub mod json;
pub mod markdown;
pub mod progress;
pub mod report;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::Plan;

/// How a plan is shown, apart from colour: what the human and Markdown renderers need to
/// know about the command that prints it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Each instance's change on its own (`--expand`), instead of identical changes on
    /// several machines shown once.
    pub expand: bool,
    /// What the text says the changes are.
    pub heading: Heading,
}

/// What the changes of a plan are to the reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Heading {
    /// What apply will do (`plan`, `apply`, `show`).
    #[default]
    Plan,
    /// How the hosts differ from the configuration (`drift`): the same changes, which apply
    /// would make to bring them back.
    Drift,
}

/// The machines the plan read.
pub fn read_machines(plan: &Plan) -> impl Iterator<Item = &str> {
    plan.facts_digests.hosts.keys().map(String::as_str)
}

/// How many hosts the plan read.
pub fn read_hosts(plan: &Plan) -> usize {
    read_machines(plan).count()
}

/// What a drift report says drifted: `3 resource instance(s) on 2 host(s) differ from the
/// configuration`.
pub fn drift_summary(plan: &Plan) -> String {
    format!(
        "{} resource instance(s) on {} differ from the configuration",
        plan.resource_changes.len(),
        drift_extent(plan)
    )
}

/// Where the changes are, for a drift report: `2 host(s)`, `2 host(s) and the cluster`.
fn drift_extent(plan: &Plan) -> String {
    let hosts: BTreeSet<&str> = plan
        .resource_changes
        .iter()
        .filter_map(|c| c.machine.as_deref())
        .collect();
    let cluster = plan.resource_changes.iter().any(|c| c.machine.is_none());
    match (hosts.len(), cluster) {
        (0, _) => "the cluster".to_owned(),
        (n, false) => format!("{n} host(s)"),
        (n, true) => format!("{n} host(s) and the cluster"),
    }
}

/// `--no-color`, set once by `main` before anything prints.
static COLOR_REFUSED: AtomicBool = AtomicBool::new(false);

/// Turns colour off for the rest of the process (`--no-color`).
pub fn refuse_color() {
    COLOR_REFUSED.store(true, Ordering::Relaxed);
}

/// The one decision on colour, for plans, warnings, progress and diagnostics: never with
/// `--no-color` or with `NO_COLOR` set (to anything but the empty string). Terminals are
/// each caller's own question.
pub fn color_allowed() -> bool {
    !COLOR_REFUSED.load(Ordering::Relaxed)
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether output may be redrawn in place (spinners): not under CI (`CI` set to anything
/// but empty or `false`), whose logs keep every redraw as a line, even on a pseudo-terminal.
pub fn live_output_allowed() -> bool {
    color_allowed() && !in_ci(std::env::var("CI").ok().as_deref())
}

fn in_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("false") && v != "0")
}

/// Whether to colour output: only on a terminal, and only when [`color_allowed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && color_allowed(),
        }
    }

    /// [`Style::detect`] for text written on stderr.
    pub fn detect_stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal() && color_allowed(),
        }
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI services set `CI=true` (GitHub, GitLab) or `CI=1`; `CI=false` is a way to say no.
    #[test]
    fn ci_is_any_value_but_empty_and_false() {
        for (value, ci) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("woodpecker"), true),
        ] {
            assert_eq!(in_ci(value), ci, "{value:?}");
        }
    }
}
