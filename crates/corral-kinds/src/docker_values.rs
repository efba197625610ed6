//! Checks of values corral hands to Docker's CLI, shared by `swarm/service`, `swarm/stack`
//! (Compose files) and `swarm/network`: one rule each, so a value one kind accepts the
//! others accept too.

/// A placement constraint: `KEY==VALUE` or `KEY!=VALUE`, both sides non-empty, no control
/// characters (the CLI splits on the operator and Docker's scheduler reads the rest).
pub(crate) fn valid_constraint(constraint: &str) -> bool {
    let operator = constraint.find("==").or_else(|| constraint.find("!="));
    operator.is_some_and(|at| {
        !constraint[..at].trim().is_empty() && !constraint[at + 2..].trim().is_empty()
    }) && !constraint.chars().any(char::is_control)
}

/// A label (or environment) key as `--label KEY=VALUE` takes it: not empty, no leading `-`
/// (it would read as a flag), no `=` (where the value starts), no blank or control.
pub(crate) fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('-')
        && !key.contains('=')
        && !key.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_need_an_operator_and_both_sides() {
        for good in [
            "node.role==manager",
            "node.labels.zone != a",
            "engine.labels.x==y",
        ] {
            assert!(valid_constraint(good), "{good}");
        }
        for bad in ["node.role", "==manager", "node.role==", " != ", "a==b\n"] {
            assert!(!valid_constraint(bad), "{bad:?}");
        }
    }

    #[test]
    fn label_keys_cannot_read_as_flags_or_values() {
        for good in ["com.example.tier", "a", "io.corral.x"] {
            assert!(valid_label_key(good), "{good}");
        }
        for bad in ["", "-x", "a=b", "a b", "a\tb", "a\u{7}"] {
            assert!(!valid_label_key(bad), "{bad:?}");
        }
    }
}
