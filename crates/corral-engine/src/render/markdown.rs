//! The plan as Markdown for a pull-request comment: summary and problems first, a table of
//! changes, then each change's details in a collapsible section; identical changes on
//! several machines are one row and one section (`group`), unless expanded. The whole text
//! stays below [`LIMIT`] characters (GitHub refuses comments over 65,536); details that do
//! not fit are left out with a note saying so.

use std::fmt::Write as _;

use super::group::{self, Entry};
use super::{human, Heading, RenderOptions, Style};
use crate::base::text::printable;
use crate::plan::{Action, Plan};

/// Upper bound of the rendered text, in characters.
pub const LIMIT: usize = 60_000;

fn describe(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace",
        Action::Delete => "destroy",
        Action::Forget => "forget (left in place)",
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

/// `text` as a CommonMark code span, on one line: whatever it holds (links, images,
/// `@mentions`, `#123`, HTML) is shown as text, never rendered. The fence is one backtick
/// longer than the longest run of backticks inside, and a space pads text that starts or
/// ends with a backtick (or with spaces on both sides, which CommonMark would strip).
fn code_span(text: &str) -> String {
    let text = printable(text).replace(['\n', '\r'], " ");
    if text.is_empty() {
        return "` `".to_owned();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' '));
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// `text` for raw HTML (a `<summary>`): `&`, `<`, `>` and quotes as entities.
fn html_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

/// The heading line and, for a drift report, what apply would do.
fn render_heading(out: &mut String, plan: &Plan, heading: Heading) {
    let counts = plan.counts();
    let (title, none) = match heading {
        Heading::Plan => ("corral plan", "no changes"),
        Heading::Drift => ("corral drift", "no drift"),
    };
    if plan.is_empty() {
        if plan.is_complete() {
            let _ = writeln!(out, "### {title}: {none}\n");
        } else {
            let _ = writeln!(
                out,
                "### {title}: {none} on the {} host(s) read; {} could not be read\n",
                super::read_hosts(plan),
                plan.unreachable.len()
            );
        }
        return;
    }
    match heading {
        Heading::Plan => {
            let _ = writeln!(out, "### {title}: {counts}\n");
        }
        Heading::Drift => {
            let _ = writeln!(
                out,
                "### {title}: {}\n\nTo bring them back, apply would make these changes: {counts}.\n",
                super::drift_summary(plan)
            );
        }
    }
    if !plan.project.is_empty() {
        let _ = writeln!(out, "Project {}.\n", code_span(&plan.project));
    }
}

/// Renders the plan, or (for `drift`) how the hosts differ.
pub fn render(plan: &Plan, options: RenderOptions) -> String {
    let mut out = String::new();
    render_heading(&mut out, plan, options.heading);
    if !plan.warnings.is_empty() {
        out.push_str("> [!WARNING]\n");
        for warning in &plan.warnings {
            // Host and Docker text: in a code span, so nothing in it is live.
            let line = format!(
                "> - {}: {}\n",
                code_span(&warning.address.to_string()),
                code_span(&warning.message)
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
                    "host {} could not be read ({}): {}",
                    code_span(&h.machine),
                    h.failure(),
                    code_span(&h.message)
                )
            })
            .chain(plan.errors.iter().map(|p| {
                format!(
                    "{}: {}",
                    code_span(&p.address.to_string()),
                    code_span(&p.message)
                )
            }))
            .collect();
        for (index, problem) in problems.iter().enumerate() {
            // Host text is in code spans: it adds no Markdown or HTML of its own.
            let line = format!("> - {problem}\n");
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
    let entries = group::entries(&plan.resource_changes, options.expand);
    render_table(&mut out, &entries);
    render_details(&mut out, &entries);
    out
}

/// One row per entry (machine names are plain `[a-z0-9_.-]`, safe in a table).
fn render_table(out: &mut String, entries: &[Entry<'_>]) {
    out.push_str("| | resource | action |\n|---|---|---|\n");
    let mut table_rows = 0;
    for entry in entries {
        // An address deleted from a host's record or a swarm's labels is host text too.
        let row = format!(
            "| `{}` | {}{} | {} |\n",
            entry.change.action.symbol(),
            code_span(&entry.address().to_string()).replace('|', "\\|"),
            entry.machines_suffix(),
            describe(entry.change.action)
        );
        if out.len() + row.len() > LIMIT / 2 {
            break;
        }
        out.push_str(&row);
        table_rows += 1;
    }
    if table_rows < entries.len() {
        let _ = writeln!(out, "| | … {} more | |", entries.len() - table_rows);
    }
    out.push('\n');
}

/// Each entry's human rendering in a collapsible section, while they fit the limit.
fn render_details(out: &mut String, entries: &[Entry<'_>]) {
    let note_room = 200;
    let mut shown = 0;
    for entry in entries {
        let mut text = String::new();
        human::render_entry(&mut text, entry, Style::default());
        let text = diff_markers_first(&printable(&text));
        let fence = fence(&text);
        let action = describe(entry.change.action);
        let label = if entry.is_group() {
            format!(
                " on {} ({} machines, {action})",
                entry.listed(),
                entry.machines.len()
            )
        } else {
            format!(" ({action})")
        };
        let section = format!(
            "<details><summary><code>{} {}</code>{label}</summary>\n\n{fence}diff\n{}{fence}\n</details>\n\n",
            entry.change.action.symbol(),
            html_escaped(&entry.address().to_string()),
            text
        );
        if out.len() + section.len() + note_room > LIMIT {
            break;
        }
        out.push_str(&section);
        shown += 1;
    }
    if shown < entries.len() {
        let _ = writeln!(
            out,
            "**Truncated:** the details of {} more changes do not fit in a comment; run `corral plan` for the whole plan.",
            entries.len() - shown
        );
    }
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
        let text = render(&plan(100, &big), RenderOptions::default());
        assert!(text.len() <= LIMIT, "{}", text.len());
        assert!(text.starts_with("### corral plan: 0 to add, 100 to change"));
        assert!(text.contains("**Truncated:**"));
        let small = render(&plan(3, "new\n"), RenderOptions::default());
        assert!(!small.contains("Truncated"));
        assert_eq!(small.matches("<details>").count(), 3);
    }

    /// Host and Docker text with links, a tracking pixel, mentions, references, HTML and
    /// backticks: each message is one code span, so none of it is live in a comment.
    #[test]
    fn host_text_is_inert_in_code_spans() {
        use crate::plan::{HostProblem, ResourceProblem};
        let hostile = "see [docs](https://evil.example) ![](https://evil.example/p.png) @admin #1 <img src=x> a`b ``c";
        let mut plan = plan(1, "new\n");
        plan.warnings.push(ResourceProblem {
            address: Address::new("swarm/service", "web", None),
            message: hostile.into(),
        });
        plan.errors.push(ResourceProblem {
            address: Address::new("os/file", "f0", Some("n1")),
            message: format!("`{hostile}"),
        });
        plan.unreachable.push(HostProblem {
            machine: "n2".into(),
            message: format!("{hostile}\nsecond line"),
        });
        let deleted = Address::new("os/<img src=x>|`a", "b", Some("n1"));
        plan.resource_changes[0].address = deleted;
        let text = render(&plan, RenderOptions::default());
        let inert = "```see [docs](https://evil.example) ![](https://evil.example/p.png) @admin #1 <img src=x> a`b ``c```";
        assert!(
            text.contains(&format!("> - `swarm/service.web`: {inert}\n")),
            "{text}"
        );
        assert!(
            text.contains("> - `os/file.f0[n1]`: ``` `see [docs]"),
            "a span starting with a backtick is padded: {text}"
        );
        assert!(
            text.contains("> - host `n2` could not be read (reading facts): ```see [docs]")
                && text.contains("``c second line```\n"),
            "{text}"
        );
        assert!(text.contains("| ``os/<img src=x>\\|`a.b[n1]`` |"), "{text}");
        assert!(
            text.contains("<summary><code>~ os/&lt;img src=x&gt;|`a.b[n1]</code>"),
            "{text}"
        );
    }

    #[test]
    fn code_spans_follow_commonmark() {
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span(" both "), "`  both  `");
        assert_eq!(code_span("two\nlines"), "`two lines`");
        assert_eq!(code_span(""), "` `");
    }

    #[test]
    fn content_cannot_close_the_code_fence() {
        let text = render(&plan(1, "```\n<details>\n"), RenderOptions::default());
        assert!(text.contains("````diff"), "{text}");
    }
}
