//! The plan as Markdown for a pull-request comment: summary and problems first, a table of
//! changes, then each change's details in a collapsible section. The whole text stays below
//! [`LIMIT`] characters (GitHub refuses comments over 65,536); details that do not fit are
//! left out with a note saying so.

use std::fmt::Write as _;

use super::{human, printable, Style};
use crate::plan::{Action, Plan};

/// Upper bound of the rendered text, in characters.
pub const LIMIT: usize = 60_000;

fn describe(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace",
        Action::Delete => "destroy",
        Action::NoOp => "no change",
    }
}

/// A code fence longer than any run of backticks in `text`, so content cannot close it.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.max(2) + 1)
}

/// The human rendering with each line's `+` or `-` moved to the start of the line (the
/// indentation after it), where a `diff` block highlights it; other lines keep theirs.
/// Inside a file's hunk (after an `@@` line), a marker is only at the hunk's column: an
/// unchanged line whose text starts with `-` (a YAML list item) is not one.
fn diff_markers_first(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hunk: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let rest = &line[indent..];
        if rest.starts_with("@@") {
            hunk = Some(indent);
        } else if hunk.is_some_and(|column| indent < column) {
            hunk = None;
        }
        let is_marker = match hunk {
            Some(column) => indent == column && !rest.starts_with("@@"),
            None => true,
        };
        match rest.chars().next() {
            Some(marker @ ('+' | '-')) if indent > 0 && is_marker => {
                out.push(marker);
                out.push_str(&line[..indent]);
                out.push_str(&rest[1..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod marker_tests {
    use super::diff_markers_first;

    #[test]
    fn markers_move_to_the_start_and_context_stays() {
        let text = "  ~ os/file.a[n1]\n      + mode: \"0644\"\n      ~ content:\n          @@ -1,2 +1,2 @@\n           - item\n          -old\n          +new\n";
        assert_eq!(
            diff_markers_first(text),
            "  ~ os/file.a[n1]\n+       mode: \"0644\"\n      ~ content:\n          @@ -1,2 +1,2 @@\n           - item\n-          old\n+          new\n"
        );
    }
}

/// Renders the plan.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let c = plan.counts();
    if plan.is_empty() {
        if plan.is_complete() {
            out.push_str("### corral plan: no changes\n\n");
        } else {
            let _ = writeln!(
                out,
                "### corral plan: no changes on the {} host(s) read; {} could not be read\n",
                plan.facts_digests.len(),
                plan.unreachable.len()
            );
        }
    } else {
        let _ = writeln!(
            out,
            "### corral plan: {} to add, {} to change, {} to replace, {} to destroy\n",
            c.add, c.change, c.replace, c.destroy
        );
        if !plan.project.is_empty() {
            let _ = writeln!(out, "Project `{}`.\n", plan.project);
        }
    }
    if !plan.warnings.is_empty() {
        out.push_str("> [!WARNING]\n");
        for warning in &plan.warnings {
            let line = format!(
                "> - `{}`: {}\n",
                warning.address,
                printable(&warning.message)
                    .replace('\n', " ")
                    .replace('<', "&lt;")
            );
            if out.len() + line.len() > LIMIT / 4 {
                out.push_str("> - … and more warnings\n");
                break;
            }
            out.push_str(&line);
        }
        out.push('\n');
    }
    if !plan.is_complete() {
        out.push_str("> [!CAUTION]\n> The plan is incomplete.\n");
        let problems: Vec<String> = plan
            .unreachable
            .iter()
            .map(|h| {
                format!(
                    "host `{}` could not be read ({}): {}",
                    h.machine,
                    h.failure(),
                    h.message
                )
            })
            .chain(
                plan.errors
                    .iter()
                    .map(|p| format!("`{}`: {}", p.address, p.message)),
            )
            .collect();
        for (index, problem) in problems.iter().enumerate() {
            // Host text must not add Markdown or HTML of its own.
            let line = format!(
                "> - {}\n",
                printable(problem).replace('\n', " ").replace('<', "&lt;")
            );
            if out.len() + line.len() > LIMIT / 4 {
                let _ = writeln!(out, "> - … and {} more problems", problems.len() - index);
                break;
            }
            out.push_str(&line);
        }
        out.push('\n');
    }
    if plan.is_empty() {
        if plan.is_complete() {
            out.push_str("The hosts match the configuration.\n");
        }
        return out;
    }
    out.push_str("| | resource | action |\n|---|---|---|\n");
    let mut table_rows = 0;
    for change in &plan.resource_changes {
        let row = format!(
            "| `{}` | `{}` | {} |\n",
            change.action.symbol(),
            change.address,
            describe(change.action)
        );
        if out.len() + row.len() > LIMIT / 2 {
            break;
        }
        out.push_str(&row);
        table_rows += 1;
    }
    if table_rows < plan.resource_changes.len() {
        let _ = writeln!(
            out,
            "| | … {} more | |",
            plan.resource_changes.len() - table_rows
        );
    }
    out.push('\n');
    let note_room = 200;
    let mut shown = 0;
    for change in &plan.resource_changes {
        let mut text = String::new();
        human::render_change(&mut text, change, Style::default());
        let text = diff_markers_first(&printable(&text));
        let fence = fence(&text);
        let section = format!(
            "<details><summary><code>{} {}</code> ({})</summary>\n\n{fence}diff\n{}{fence}\n</details>\n\n",
            change.action.symbol(),
            change.address,
            describe(change.action),
            text
        );
        if out.len() + section.len() + note_room > LIMIT {
            break;
        }
        out.push_str(&section);
        shown += 1;
    }
    if shown < plan.resource_changes.len() {
        let _ = writeln!(
            out,
            "**Truncated:** the details of {} more changes do not fit in a comment; run `corral plan` for the whole plan.",
            plan.resource_changes.len() - shown
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::plan::{AttrChange, AttrValue, ResourceChange, FORMAT_VERSION};

    fn plan(changes: usize, content: &str) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            project: "web".into(),
            resource_changes: (0..changes)
                .map(|i| ResourceChange {
                    address: Address::new("os/file", &format!("f{i}"), Some("n1")),
                    machine: Some("n1".into()),
                    action: Action::Update,
                    attributes: vec![AttrChange::new(
                        "content",
                        AttrValue::Content("old\n".into()),
                        AttrValue::Content(content.into()),
                    )],
                    reason: None,
                    triggered_by: Vec::new(),
                })
                .collect(),
            unreachable: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            config_digest: String::new(),
            facts_digests: Default::default(),
            instances: changes,
        }
    }

    #[test]
    fn fits_a_comment_and_says_when_truncated() {
        let big = "x".repeat(2_000) + "\n";
        let text = render(&plan(100, &big));
        assert!(text.len() <= LIMIT, "{}", text.len());
        assert!(text.starts_with("### corral plan: 0 to add, 100 to change"));
        assert!(text.contains("**Truncated:**"));
        let small = render(&plan(3, "new\n"));
        assert!(!small.contains("Truncated"));
        assert_eq!(small.matches("<details>").count(), 3);
    }

    #[test]
    fn content_cannot_close_the_code_fence() {
        let text = render(&plan(1, "```\n<details>\n"));
        assert!(text.contains("````diff"), "{text}");
    }
}
