//! What apply says when it is done: everything applied, what failed and what was skipped
//! because of it, or (after an interrupt) what was left for the next apply.

use std::fmt::Write as _;

use super::Style;
use crate::apply::Report;
use crate::base::text::printable;

/// Whether a skipped change never started because apply was interrupted (rather than
/// because something it depends on failed).
fn interrupted_before(because: &crate::address::Address) -> bool {
    because.kind == "corral" && because.name == "interrupt"
}

/// The report after the progress lines; `interrupted` when a stop was asked for.
pub fn render(report: &Report, interrupted: bool, style: Style) -> String {
    let mut out = String::from("\n");
    if report.succeeded() && !interrupted {
        let _ = writeln!(
            out,
            "{} {} applied.",
            style.green("Apply complete!"),
            report.applied.len()
        );
        return out;
    }
    let not_started = report
        .skipped
        .iter()
        .filter(|(_, because)| interrupted_before(because))
        .count();
    if interrupted {
        let _ = writeln!(
            out,
            "{} {} applied, {} failed, {} not started, {} skipped.",
            style.yellow("Apply interrupted:"),
            report.applied.len(),
            report.failed.len(),
            not_started,
            report.skipped.len() - not_started
        );
    } else {
        let _ = writeln!(
            out,
            "{} {} applied, {} failed, {} skipped.",
            style.red("Apply finished with errors:"),
            report.applied.len(),
            report.failed.len(),
            report.skipped.len()
        );
    }
    for (address, message) in &report.failed {
        let _ = writeln!(out, "  failed:  {address}: {}", printable(message));
    }
    for (address, because) in &report.skipped {
        if interrupted_before(because) {
            let _ = writeln!(out, "  skipped: {address} (interrupted before it started)");
        } else {
            let _ = writeln!(out, "  skipped: {address} (because {because} failed)");
        }
    }
    if interrupted {
        let fix = if report.failed.is_empty() {
            ""
        } else {
            " (fix the cause of the failures first)"
        };
        let _ = writeln!(
            out,
            "The steps in progress finished and nothing else was started; the locks are released. `corral plan` shows what is left, and `corral apply` finishes it{fix}: every step is re-planned from fresh facts."
        );
    } else {
        out.push_str(
            "Run apply again once the cause is fixed: every step is re-planned from fresh facts.\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn report() -> Report {
        let interrupt = Address::new("corral", "interrupt", None);
        Report {
            applied: vec![Address::new("os/file", "a", Some("n1"))],
            failed: Vec::new(),
            skipped: vec![
                (Address::new("os/file", "b", Some("n1")), interrupt.clone()),
                (Address::new("os/file", "c", Some("n2")), interrupt),
            ],
        }
    }

    /// A clean interrupt is no error whose cause needs fixing: it says what was left and
    /// how to finish.
    #[test]
    fn an_interrupted_apply_says_what_is_left_not_what_to_fix() {
        let text = render(&report(), true, Style::default());
        assert!(
            text.starts_with(
                "\nApply interrupted: 1 applied, 0 failed, 2 not started, 0 skipped.\n"
            ),
            "{text}"
        );
        assert!(text.contains("  skipped: os/file.b[n1] (interrupted before it started)\n"));
        assert!(
            text.contains("`corral apply` finishes it: every step"),
            "{text}"
        );
        assert!(
            !text.contains("finished with errors") && !text.contains("once the cause is fixed")
        );
    }

    #[test]
    fn failures_say_to_fix_the_cause() {
        let mut report = report();
        report.skipped.clear();
        report
            .failed
            .push((Address::new("os/file", "b", Some("n1")), "no space".into()));
        let text = render(&report, false, Style::default());
        assert!(text.contains("Apply finished with errors: 1 applied, 1 failed, 0 skipped."));
        assert!(text.contains("once the cause is fixed"));
        let interrupted = super::render(&report, true, Style::default());
        assert!(
            interrupted.contains("(fix the cause of the failures first)"),
            "{interrupted}"
        );
        report.failed.clear();
        assert_eq!(
            super::render(&report, false, Style::default()),
            "\nApply complete! 1 applied.\n"
        );
    }
}
