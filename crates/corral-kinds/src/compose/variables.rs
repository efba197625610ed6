//! Variables in a Compose file (`$VAR`, `${VAR:-default}`, …), substituted as `docker stack
//! deploy` substitutes them from its shell's environment, but from the stack's `variables:`.
//!
//! The substitution follows the 20.10 CLI (`cli/compose/template/template.go`,
//! `Substitute`; unchanged up to docker/cli 29), not compose-go, which `docker compose`
//! uses and which differs: compose-go expands a variable inside a default
//! (`${A:-$B}`), the CLI takes the default literally. So:
//! - `$$` is a literal `$`;
//! - `$NAME` and `${NAME}` (NAME `[_a-zA-Z][_a-zA-Z0-9]*`) are the variable's value;
//! - `${NAME:-default}` (unset or empty), `${NAME-default}` (unset) give the default, which
//!   is everything up to the first `}`, `$`s included (`${PW:-$2y$05$abc}`);
//! - `${NAME:?message}` (unset or empty), `${NAME?message}` (unset) are errors;
//! - any other `$` is an error (the CLI's "invalid interpolation format");
//! - a substituted value is never read again, so a bcrypt or apr1 hash keeps its `$`s.
//!
//! The CLI's quirks are kept, since the file means what the CLI makes of it: the
//! operators are found by `strings.Contains` in the order `:-`, `-`, `:?`, `?`, so
//! `${NAME:?must-be-set}` is the variable `NAME:?must` (never set) with the default
//! `be-set`; and the unbraced form takes them too (`$NAME-x` is `${NAME-x}`). A lookup of
//! a name that no variable can have is an error saying how the CLI reads it: the CLI
//! would deploy the default where the author meant a required variable.
//!
//! Where corral is stricter than the CLI: a variable without a value and without a default
//! is an error naming it (the CLI makes it empty), and every error in a string is
//! reported (the CLI keeps only the last substitution's). Values are interpolated
//! everywhere in the file, keys never, and the CLI's casts after interpolation are applied
//! (`cli/compose/loader/interpolate.go`, `interpolateTypeCastMapping`): `replicas:
//! ${N:-2}` is the integer 2.

use std::collections::{BTreeMap, BTreeSet};

use super::report::Report;
use super::yaml_v2::{Item, Val};
use crate::base::yaml::Span;

/// A variable's value, and whether it is masked in plans and diagnostics.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variable {
    pub value: String,
    pub sensitive: bool,
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sensitive {
            true => f.write_str("(sensitive)"),
            false => write!(f, "{:?}", self.value),
        }
    }
}

/// The stack's variables by name.
pub type Variables = BTreeMap<String, Variable>;

/// What went wrong at one `$` of a string: its byte range in the string, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: std::ops::Range<usize>,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A `$` that starts no variable.
    Invalid,
    /// `${NAME}` or `$NAME` with no such variable and no default.
    Unset { name: String },
    /// `${NAME:?message}` or `${NAME?message}` unset (or empty).
    Required { name: String, message: String },
}

/// One string substituted: the result (with `""` for what failed), the names looked up,
/// and what failed.
#[derive(Debug, Default)]
pub struct Substituted {
    pub value: String,
    pub looked_up: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Substitutes the variables in `template`, as the CLI's `template.Substitute` with
/// `DefaultSubstituteFuncs`. `lookup` gives a variable's value, `None` when unset.
pub fn substitute(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Substituted {
    let mut out = Substituted::default();
    let bytes = template.as_bytes();
    let mut i = 0;
    while let Some(offset) = template[i..].find('$') {
        let start = i + offset;
        out.value.push_str(&template[i..start]);
        let (end, substitution) = match_at(template, start);
        i = end;
        let Some(substitution) = substitution else {
            if bytes.get(start + 1) == Some(&b'$') {
                out.value.push('$');
            } else {
                out.problems.push(Problem {
                    at: start..(start + 1),
                    kind: ProblemKind::Invalid,
                });
            }
            continue;
        };
        let at = start..end;
        let mut get = |name: &str| {
            out.looked_up.push(name.to_owned());
            lookup(name)
        };
        // `softDefault`, `hardDefault`, `requiredNonEmpty`, `required`, in this order,
        // each applied when its operator is anywhere in the substitution.
        let value = if let Some((name, default)) = substitution.split_once(":-") {
            get(name)
                .filter(|v| !v.is_empty())
                .unwrap_or(default.into())
        } else if let Some((name, default)) = substitution.split_once('-') {
            get(name).unwrap_or(default.into())
        } else if let Some((name, message)) = substitution.split_once(":?") {
            match get(name).filter(|v| !v.is_empty()) {
                Some(value) => value,
                None => {
                    out.problems.push(required(at, name, message));
                    String::new()
                }
            }
        } else if let Some((name, message)) = substitution.split_once('?') {
            match get(name) {
                Some(value) => value,
                None => {
                    out.problems.push(required(at, name, message));
                    String::new()
                }
            }
        } else {
            match get(substitution) {
                Some(value) => value,
                None => {
                    out.problems.push(Problem {
                        at,
                        kind: ProblemKind::Unset {
                            name: substitution.to_owned(),
                        },
                    });
                    String::new()
                }
            }
        };
        out.value.push_str(&value);
    }
    out.value.push_str(&template[i..]);
    out
}

fn required(at: std::ops::Range<usize>, name: &str, message: &str) -> Problem {
    Problem {
        at,
        kind: ProblemKind::Required {
            name: name.to_owned(),
            message: message.to_owned(),
        },
    }
}

/// The CLI's pattern at the `$` at `start`:
/// `\$(?i:(?P<escaped>\$)|(?P<named>S)|{(?P<braced>S)}|(?P<invalid>))` with
/// `S = [_a-z][_a-z0-9]*(?::?[-?][^}]*)?`. Returns where the match ends and the named or
/// braced substitution; `None` for an escaped `$$` (end past it) and for an invalid `$`
/// (end after it).
fn match_at(template: &str, start: usize) -> (usize, Option<&str>) {
    let bytes = template.as_bytes();
    let after = start + 1;
    match bytes.get(after) {
        Some(b'$') => (after + 1, None),
        Some(b'{') => match subst(template, after + 1) {
            Some(end) if bytes.get(end) == Some(&b'}') => {
                (end + 1, Some(&template[after + 1..end]))
            }
            _ => (after, None),
        },
        _ => match subst(template, after) {
            Some(end) => (end, Some(&template[after..end])),
            None => (after, None),
        },
    }
}

/// The end of `S` matched at `from`, if it matches there.
fn subst(template: &str, from: usize) -> Option<usize> {
    let bytes = template.as_bytes();
    let name_char =
        |b: u8, first: bool| b == b'_' || b.is_ascii_alphabetic() || (!first && b.is_ascii_digit());
    if !bytes.get(from).is_some_and(|&b| name_char(b, true)) {
        return None;
    }
    let mut end = from + 1;
    while bytes.get(end).is_some_and(|&b| name_char(b, false)) {
        end += 1;
    }
    let mut operator = end;
    if bytes.get(operator) == Some(&b':') {
        operator += 1;
    }
    if matches!(bytes.get(operator), Some(b'-' | b'?')) {
        end = operator + 1;
        end += template[end..].find('}').unwrap_or(template.len() - end);
    }
    Some(end)
}

/// A name the CLI can look up but no environment variable (so no `variables:` entry) can
/// have: what `${NAME:?must-be-set}` reads as.
fn plausible_name(name: &str) -> bool {
    name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// What the CLI casts a value to after interpolation, by its path (`*` any key, `[]` any
/// item): `interpolateTypeCastMapping` of the 20.10 CLI's `cli/compose/loader`.
#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_of(path: &[&str]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        (parts.len() == path.len() && parts.iter().zip(path).all(|(p, k)| *p == "*" || p == k))
            .then_some(*cast)
    })
}

impl Cast {
    /// Go's `strconv.Atoi`, `strconv.ParseFloat` (decimal forms), and the CLI's `toBoolean`.
    fn apply(self, value: &str) -> Result<Val, &'static str> {
        match self {
            Cast::Int => {
                let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("an integer");
                }
                value.parse().map(Val::Int).map_err(|_| "an integer")
            }
            Cast::Float => value.parse::<f64>().map(Val::Float).map_err(|_| "a number"),
            Cast::Bool => match value.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(Val::Bool(true)),
                "n" | "no" | "false" | "off" => Ok(Val::Bool(false)),
                _ => Err("a boolean (true/false, yes/no, on/off, y/n)"),
            },
        }
    }
}

/// Interpolates every string value of the file (`root`, built from `text`), reporting each
/// problem at the reference in the Compose file. Returns the names looked up.
pub(super) fn interpolate(
    root: &mut Item,
    text: &str,
    variables: &Variables,
    report: &mut Report,
) -> BTreeSet<String> {
    let mut walk = Walk {
        text,
        variables,
        report,
        looked_up: BTreeSet::new(),
        path: Vec::new(),
    };
    walk.item(root);
    walk.looked_up
}

struct Walk<'w, 'a> {
    text: &'w str,
    variables: &'w Variables,
    report: &'w mut Report<'a>,
    looked_up: BTreeSet<String>,
    path: Vec<String>,
}

impl Walk<'_, '_> {
    fn item(&mut self, item: &mut Item) {
        match &mut item.value {
            Val::Map(entries) => {
                for entry in entries {
                    self.path.push(entry.key.clone());
                    self.item(&mut entry.value);
                    self.path.pop();
                }
            }
            Val::Seq(items) => {
                for item in items {
                    self.path.push("[]".into());
                    self.item(item);
                    self.path.pop();
                }
            }
            Val::Str(template) if template.contains('$') => {
                let template = template.clone();
                self.string(item, &template);
            }
            _ => {}
        }
    }

    fn string(&mut self, item: &mut Item, template: &str) {
        let variables = self.variables;
        let done = substitute(template, &|name| {
            variables.get(name).map(|v| v.value.clone())
        });
        for name in &done.looked_up {
            self.looked_up.insert(name.clone());
        }
        let span = item.span;
        for problem in &done.problems {
            let reference = &template[problem.at.clone()];
            let at = self.locate(span, reference);
            let (message, label, help) = match &problem.kind {
                ProblemKind::Invalid => (
                    "a `$` that starts no variable: `docker stack deploy` refuses it (invalid interpolation format)".to_owned(),
                    "lone `$`",
                    "write `$$` for a literal `$`; a variable is `$NAME` or `${NAME}`".to_owned(),
                ),
                ProblemKind::Unset { name } => (
                    format!("`{reference}` has no value: the stack declares no variable `{name}` (`docker stack deploy` would make it empty, or take it from the shell that deploys)"),
                    "no value",
                    format!("declare it in the `swarm/stack`'s `variables:` (`{name}: VALUE`, or `{name}: {{ from_env: NAME }}`), or give a default: `${{{name}:-VALUE}}`"),
                ),
                ProblemKind::Required { name, message } => (
                    match message.is_empty() {
                        true => format!("required variable `{name}` is missing a value"),
                        false => format!("required variable `{name}` is missing a value: {message}"),
                    },
                    "required",
                    format!("declare it in the `swarm/stack`'s `variables:` (`{name}: VALUE`, or `{name}: {{ from_env: NAME }}`)"),
                ),
            };
            self.report.error(at, message, label, Some(help));
        }
        for name in done.looked_up.iter().filter(|n| !plausible_name(n)) {
            let reference = template
                .find(&format!("{{{name}"))
                .and_then(|start| {
                    let end = start + template[start..].find('}')? + 1;
                    template.get(start.checked_sub(1)?..end)
                })
                .unwrap_or(template);
            let at = self.locate(span, reference);
            self.report.error(
                at,
                format!("`docker stack deploy` reads `{reference}` as the variable `{name}`, which no variable can be: the operators are found in the order `:-`, `-`, `:?`, `?`, so a `-` in an error message makes it a default"),
                "read otherwise",
                Some("write the message without `-`, or the default with `:-`".into()),
            );
        }
        if !done.problems.is_empty() {
            item.value = Val::Str(done.value);
            return;
        }
        // The CLI casts only what interpolation changed (`newValue != value`).
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        item.value = match cast_of(&path).filter(|_| done.value != template) {
            None => Val::Str(done.value),
            Some(cast) => match cast.apply(&done.value) {
                Ok(value) => value,
                Err(expected) => {
                    let shown = self.shown(&done.value);
                    self.report.error(
                        span,
                        format!("`{template}` is {shown} after interpolation, and `{}` must be {expected}", path.join(".")),
                        "not cast",
                        Some("`docker stack deploy` casts this value after interpolation, and would fail".into()),
                    );
                    // Of the type wanted, so that the schema's check does not say it again
                    // (the file is refused: the value goes nowhere).
                    match cast {
                        Cast::Int => Val::Int(0),
                        Cast::Float => Val::Float(0.0),
                        Cast::Bool => Val::Bool(false),
                    }
                }
            },
        };
    }

    /// A value for a message: masked if it holds a sensitive variable's value.
    fn shown(&self, value: &str) -> String {
        let sensitive = self
            .variables
            .values()
            .any(|v| v.sensitive && !v.value.is_empty() && value.contains(&v.value));
        match sensitive {
            true => "(a sensitive value)".into(),
            false => format!("`{value}`"),
        }
    }

    /// The span of `reference` inside the scalar at `span`, when the file has it as
    /// written there (a plain or quoted scalar without escapes); else the scalar's.
    fn locate(&self, span: Span, reference: &str) -> Span {
        let written = self.text.get(span.start..span.end).unwrap_or_default();
        match written.find(reference) {
            Some(offset) if !reference.is_empty() => Span {
                start: span.start + offset,
                end: span.start + offset + reference.len(),
            },
            _ => span,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        // docker/cli `template_test.go`'s `defaults`, and a bcrypt hash.
        match name {
            "FOO" => Some("first".into()),
            "BAR" => Some(String::new()),
            "HASH" => Some("$2y$05$abcdefghijklmnopqrstuv".into()),
            _ => None,
        }
    }

    fn ok(template: &str) -> String {
        let done = substitute(template, &lookup);
        assert_eq!(done.problems, [], "{template}");
        done.value
    }

    fn problems(template: &str) -> Vec<ProblemKind> {
        substitute(template, &lookup)
            .problems
            .into_iter()
            .map(|p| p.kind)
            .collect()
    }

    /// Cases from docker/cli `cli/compose/template/template_test.go` (v20.10.24), named by
    /// their test, and the cases the CLI's reading decides beyond them.
    #[test]
    fn substitution_follows_the_clis_template_package() {
        let table = [
            // TestEscaped, TestSubstituteNoMatch
            ("$${foo}", "${foo}"),
            ("foo", "foo"),
            // TestValueNoDefault
            ("This $FOO var", "This first var"),
            ("This ${FOO} var", "This first var"),
            // TestNoValueWithDefault
            ("ok ${missing:-def}", "ok def"),
            ("ok ${missing-def}", "ok def"),
            // TestEmptyValueWithSoftDefault, TestValueWithSoftDefault
            ("ok ${BAR:-def}", "ok def"),
            ("ok ${FOO:-def}", "ok first"),
            // TestEmptyValueWithHardDefault, TestNonAlphanumericDefault
            ("ok ${BAR-def}", "ok "),
            ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
            // TestDefaultsForMandatoryVariables
            ("ok ${FOO:?err}", "ok first"),
            ("ok ${FOO?err}", "ok first"),
            ("ok ${BAR?err}", "ok "),
            // A `$` in a default is literal (compose-go's `ok ${BAR:-$FOO}` gives `ok first`;
            // the CLI does not expand it), and the default ends at the first `}`.
            ("${PW:-$2y$05$abc}", "$2y$05$abc"),
            ("ok ${BAR:-$FOO}", "ok $FOO"),
            ("${A:-${B}}", "${B}"),
            // A substituted value is not read again.
            ("$HASH", "$2y$05$abcdefghijklmnopqrstuv"),
            ("user:${HASH}", "user:$2y$05$abcdefghijklmnopqrstuv"),
            ("$$FOO $FOO", "$FOO first"),
            // Names are matched case-insensitively by the pattern, looked up as written.
            ("${foo-lower}", "lower"),
            // The unbraced form takes the operators too, up to the end or a `}`.
            ("$missing-x/y}z", "x/y}z"),
            ("$FOO:8080", "first:8080"),
            ("$FOO.x", "first.x"),
            // `${NAME:?a-b}`: `-` is looked for before `:?`.
            ("${FOO:?must-be-set}", "be-set"),
        ];
        for (template, expected) in table {
            assert_eq!(ok(template), expected, "{template}");
        }
    }

    #[test]
    fn invalid_templates_and_missing_values_are_problems() {
        // TestInvalid
        for template in [
            "${", "$}", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "5 $", "$1",
        ] {
            assert_eq!(problems(template), [ProblemKind::Invalid], "{template}");
        }
        // TestMandatoryVariableErrors
        let required = |name: &str, message: &str| ProblemKind::Required {
            name: name.into(),
            message: message.into(),
        };
        let table = [
            (
                "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
                required("UNSET_VAR", "Mandatory Variable Unset"),
            ),
            (
                "not ok ${BAR:?Mandatory Variable Empty}",
                required("BAR", "Mandatory Variable Empty"),
            ),
            ("not ok ${UNSET_VAR:?}", required("UNSET_VAR", "")),
            (
                "not ok ${UNSET_VAR?Mandatory Variable Unset}",
                required("UNSET_VAR", "Mandatory Variable Unset"),
            ),
            ("not ok ${UNSET_VAR?}", required("UNSET_VAR", "")),
        ];
        for (template, expected) in table {
            assert_eq!(problems(template), [expected], "{template}");
        }
        // TestNoValueNoDefault: the CLI makes them empty; corral names them.
        assert_eq!(
            problems("This ${missing} var"),
            [ProblemKind::Unset {
                name: "missing".into()
            }]
        );
        assert_eq!(ok("This ${BAR} var"), "This  var");
        // Every problem of a string, at its reference.
        let done = substitute("$A and ${B:?b} $", &lookup);
        let at: Vec<_> = done.problems.iter().map(|p| p.at.clone()).collect();
        assert_eq!(at, [0..2, 7..14, 15..16]);
    }

    #[test]
    fn casts_follow_the_clis_mapping() {
        assert!(matches!(
            cast_of(&["services", "web", "deploy", "replicas"]),
            Some(Cast::Int)
        ));
        assert!(matches!(
            cast_of(&["services", "web", "ports", "[]", "published"]),
            Some(Cast::Int)
        ));
        assert!(matches!(
            cast_of(&["networks", "n", "external"]),
            Some(Cast::Bool)
        ));
        assert!(cast_of(&["services", "web", "image"]).is_none());
        assert_eq!(Cast::Int.apply("+2"), Ok(Val::Int(2)));
        assert!(Cast::Int.apply("2.0").is_err());
        assert!(Cast::Int.apply("").is_err());
        assert_eq!(Cast::Bool.apply("ON"), Ok(Val::Bool(true)));
        assert_eq!(Cast::Float.apply("0.5"), Ok(Val::Float(0.5)));
    }
}
