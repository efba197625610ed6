//! The plan for people, in Terraform's style: changes in apply order, each with its
//! attributes before → after, file content as a unified diff, secrets as `(sensitive)`, and a
//! summary line. Identical changes on several machines are shown once (`group`), unless
//! expanded; the summary still counts instances. Same plan, same bytes.

use std::fmt::Write as _;

use similar::TextDiff;

use super::group::{self, Entry};
use super::{Heading, RenderOptions, Style};
use crate::base::text::printable;
use crate::plan::{Action, AttrChange, AttrValue, Plan};

/// Renders the whole plan: what apply will do, or (for `drift`) how the hosts differ.
pub fn render(plan: &Plan, style: Style, options: RenderOptions) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        render_nothing(&mut out, plan, style, options.heading);
    } else {
        out.push_str(&opening(plan, options.heading));
        for entry in group::entries(&plan.resource_changes, options.expand) {
            out.push('\n');
            render_entry(&mut out, &entry, style);
        }
        let _ = write!(out, "\n{} {}.", style.bold("Plan:"), plan.counts());
        if !plan.project.is_empty() {
            let _ = write!(out, " Project: {}.", plan.project);
        }
        let unread = plan.unreachable.len();
        if unread > 0 {
            let _ = write!(
                out,
                " Only {} host(s) were read; {unread} could not be.",
                super::read_hosts(plan)
            );
        }
        out.push('\n');
    }
    render_problems(&mut out, plan, style);
    out
}

/// The line above the changes.
fn opening(plan: &Plan, heading: Heading) -> String {
    match heading {
        Heading::Plan => "corral will perform the following actions, in this order:\n".to_owned(),
        Heading::Drift => format!(
            "Drift: {}.\nTo bring them back, apply would make these changes, in this order:\n",
            super::drift_summary(plan)
        ),
    }
}

/// What an empty plan says: nothing to do, or nothing known where hosts could not be read.
fn render_nothing(out: &mut String, plan: &Plan, style: Style, heading: Heading) {
    let read = super::read_hosts(plan);
    let unread = plan.unreachable.len();
    let (none, checked) = match heading {
        Heading::Plan => ("No changes", "planned"),
        Heading::Drift => ("No drift", "checked for drift"),
    };
    if plan.is_complete() {
        let _ = writeln!(
            out,
            "{} The hosts match the configuration.",
            style.green(&format!("{none}."))
        );
    } else if read == 0 && unread > 0 {
        let _ = writeln!(out, "Nothing was {checked}: no host could be read.");
    } else if unread > 0 {
        let _ = writeln!(
            out,
            "{none} on the {read} host(s) that could be read; {unread} could not be read."
        );
    } else {
        let _ = writeln!(out, "{none}, but some resources could not be {checked}.");
    }
}

/// Warnings, hosts that could not be read and instances that could not be planned.
pub fn render_problems(out: &mut String, plan: &Plan, style: Style) {
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(
            out,
            "{} {}: {}",
            style.yellow("Warning:"),
            warning.address,
            printable(&warning.message)
        );
    }
    if plan.is_complete() {
        return;
    }
    out.push('\n');
    for host in &plan.unreachable {
        let _ = writeln!(
            out,
            "{} host {} could not be read ({}); its resources are not in this plan.\n  {}",
            style.red("Error:"),
            host.machine,
            host.failure(),
            printable(&host.message)
        );
    }
    for problem in &plan.errors {
        let _ = writeln!(
            out,
            "{} {}: {}",
            style.red("Error:"),
            problem.address,
            printable(&problem.message)
        );
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Forget => "will be forgotten (left in place)",
        Action::NoOp => "is unchanged",
    }
}

fn symbol(action: Action, style: Style) -> String {
    let s = action.symbol();
    match action {
        Action::Create => style.green(s),
        Action::Update => style.yellow(s),
        Action::Delete | Action::Replace => style.red(s),
        Action::NoOp | Action::Forget => s.to_owned(),
    }
}

/// One entry of the plan: a change, or a change several machines share (named on its
/// lines, the whole list under its heading when the line elides some).
pub fn render_entry(out: &mut String, entry: &Entry<'_>, style: Style) {
    let change = entry.change;
    let address = entry.address().to_string();
    let _ = write!(
        out,
        "  {} {} {}",
        style.bold("#"),
        style.bold(&address),
        describe(change.action)
    );
    if entry.is_group() {
        let _ = write!(out, " on {} machines", entry.machines.len());
    }
    if entry.is_elided() {
        out.push(':');
        for line in group::wrapped_list(&entry.named(), LIST_WIDTH) {
            let _ = write!(out, "\n  #   {line}");
        }
    }
    match entry.reason() {
        Some(reason) => {
            let _ = writeln!(out, "\n  # ({reason})");
        }
        None => out.push('\n'),
    }
    let _ = writeln!(
        out,
        "  {} {address}{}",
        symbol(change.action, style),
        entry.machines_suffix()
    );
    let width = change
        .attributes
        .iter()
        .filter(|a| is_inline(a))
        .map(|a| a.name.chars().count())
        .max()
        .unwrap_or(0);
    for attr in &change.attributes {
        render_attr(out, attr, width, style);
    }
}

/// Width of a group's machine list under its heading, so it fits 100 columns.
const LIST_WIDTH: usize = 90;

fn is_inline(attr: &AttrChange) -> bool {
    !matches!(attr.before, AttrValue::Content(_)) && !matches!(attr.after, AttrValue::Content(_))
}

fn attr_action(attr: &AttrChange) -> Action {
    match (&attr.before, &attr.after) {
        (AttrValue::Absent, _) => Action::Create,
        (_, AttrValue::Absent) => Action::Delete,
        _ => Action::Update,
    }
}

fn render_attr(out: &mut String, attr: &AttrChange, width: usize, style: Style) {
    let action = attr_action(attr);
    let sym = symbol(action, style);
    if !is_inline(attr) {
        let _ = writeln!(out, "      {sym} {}:", attr.name);
        let before = match &attr.before {
            AttrValue::Content(text) => text.as_str(),
            _ => "",
        };
        let after = match &attr.after {
            AttrValue::Content(text) => text.as_str(),
            _ => "",
        };
        for side in [&attr.before, &attr.after] {
            if !matches!(side, AttrValue::Content(_) | AttrValue::Absent) {
                let _ = writeln!(out, "          ({})", value(side));
            }
        }
        render_diff(out, before, after, style);
        return;
    }
    let pad = width.saturating_sub(attr.name.chars().count());
    let name = format!("{}:{}", attr.name, " ".repeat(pad));
    let _ = match action {
        Action::Create => writeln!(out, "      {sym} {name} {}", value(&attr.after)),
        Action::Delete => writeln!(out, "      {sym} {name} {}", value(&attr.before)),
        _ if attr.before == AttrValue::Sensitive && attr.after == AttrValue::Sensitive => {
            writeln!(out, "      {sym} {name} (sensitive value)")
        }
        _ => writeln!(
            out,
            "      {sym} {name} {} -> {}",
            value(&attr.before),
            value(&attr.after)
        ),
    };
}

/// A value as shown inline: strings quoted and escaped; corral's own placeholders such as
/// `(not installed)` bare.
fn value(v: &AttrValue) -> String {
    match v {
        AttrValue::Absent => "(none)".to_owned(),
        AttrValue::Scalar(s) if s.starts_with('(') && s.ends_with(')') => s.clone(),
        AttrValue::Scalar(s) | AttrValue::Content(s) => {
            serde_json::to_string(s).unwrap_or_default()
        }
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Opaque(s) => format!("({s})"),
        AttrValue::Sensitive => "(sensitive)".to_owned(),
    }
}

/// A unified diff of two texts, indented under its attribute.
fn render_diff(out: &mut String, before: &str, after: &str, style: Style) {
    if before.is_empty() && after.is_empty() {
        return;
    }
    let diff = TextDiff::from_lines(before, after);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .to_string();
    for line in unified.lines() {
        let line = printable(line);
        let line = match line.as_bytes().first() {
            Some(b'+') => style.green(&line),
            Some(b'-') => style.red(&line),
            _ => line.into_owned(),
        };
        let _ = writeln!(out, "          {line}");
    }
}
