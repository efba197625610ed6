//! The plan, as plain data (stage 4, `planner`, makes it).
//!
//! A [`Plan`] is computed from the configuration and the facts, apart from how it is shown
//! (`render`) and how it is carried out (`apply`). It holds no secret: sensitive values are
//! recorded only as [`AttrValue::Sensitive`], and apply re-reads them from the configuration.

use serde::{Deserialize, Serialize};

use crate::address::Address;

/// Version of the JSON plan format; bump on incompatible changes.
/// 1.1: the `forget` action and count.
pub const FORMAT_VERSION: &str = "1.1";

/// What will happen to one resource instance, with Terraform's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
    /// A resource removed from the configuration whose traces on the host stay as they are
    /// (a file corral neither created nor kept an original of): only corral's record of it
    /// goes. Terraform's `forget`.
    Forget,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Forget => ".",
        }
    }

    /// Terraform's `actions` list for the JSON format.
    pub fn terraform_actions(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
            Action::Forget => &["forget"],
        }
    }

    /// Whether the change removes a resource from the configuration's record: a deletion,
    /// or forgetting what stays in place. Both run before (or after) the graph's walk.
    pub fn is_removal(self) -> bool {
        matches!(self, Action::Delete | Action::Forget)
    }
}

/// One side of an attribute change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum AttrValue {
    /// The attribute does not exist on that side (a file not yet created, a package not
    /// installed).
    Absent,
    /// A short value shown inline, quoted.
    Scalar(String),
    /// A yes/no setting.
    Bool(bool),
    /// Text content shown as a unified diff.
    Content(String),
    /// A value that cannot be shown (too large, binary): a description such as its digest.
    Opaque(String),
    /// A secret: never shown, in any format.
    Sensitive,
}

/// A before → after pair for one attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: AttrValue,
    pub after: AttrValue,
}

impl AttrChange {
    pub fn new(name: impl Into<String>, before: AttrValue, after: AttrValue) -> Self {
        AttrChange {
            name: name.into(),
            before,
            after,
        }
    }

    pub fn scalar(
        name: impl Into<String>,
        before: impl Into<String>,
        after: impl Into<String>,
    ) -> Self {
        AttrChange::new(
            name,
            AttrValue::Scalar(before.into()),
            AttrValue::Scalar(after.into()),
        )
    }
}

/// What a kind decided for one instance: the action and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    pub action: Option<Action>,
    pub attributes: Vec<AttrChange>,
    pub reason: Option<String>,
}

impl Diff {
    /// No change, or an update when any attribute differs.
    pub fn update_if_changed(attributes: Vec<AttrChange>) -> Self {
        let action = if attributes.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
        Diff {
            action: Some(action),
            attributes,
            reason: None,
        }
    }

    pub fn action(&self) -> Action {
        self.action.unwrap_or(Action::NoOp)
    }
}

/// A planned change to one resource instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: Address,
    pub machine: Option<String>,
    pub action: Action,
    pub attributes: Vec<AttrChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Changes to what this instance depends on that make it act (a service restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggered_by: Vec<Address>,
}

/// The attribute of a change that only records, on the host, that corral manages what is
/// already as configured.
pub const RECORD_ATTR: &str = "record";

impl ResourceChange {
    pub fn attribute(&self, name: &str) -> Option<&AttrChange> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Whether the change only updates corral's record on the host: no step runs for it.
    pub fn is_record_only(&self) -> bool {
        records_only(&self.attributes)
    }
}

/// Whether changed `attributes` only record, on the host, what is already as configured.
pub fn records_only(attributes: &[AttrChange]) -> bool {
    matches!(attributes, [only] if only.name == RECORD_ATTR)
}

/// A host that could not be read, and why; the plan is incomplete without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProblem {
    pub machine: String,
    pub message: String,
}

impl HostProblem {
    /// A host problem with ssh's line endings (`\r\n`) made plain.
    pub fn new(machine: &str, message: &str) -> Self {
        HostProblem {
            machine: machine.to_owned(),
            message: message
                .replace("\r\n", "\n")
                .replace('\r', "")
                .trim()
                .to_owned(),
        }
    }

    /// What failed, in a word or two, from the message: for the one line per host.
    pub fn failure(&self) -> &'static str {
        let m = self.message.as_str();
        if m.contains("did not answer within") {
            "deadline"
        } else if m.contains("Host key verification failed")
            || m.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || m.contains("No ED25519 host key is known")
            || m.contains("host key")
        {
            "host key"
        } else if m.contains("Permission denied") || m.contains("Too many authentication failures")
        {
            "authentication"
        } else if m.contains("sudo:")
            || m.contains("a password is required")
            || (m.starts_with("sudo on ") && m.contains("needs a password"))
        {
            "sudo"
        } else if m.contains("cannot connect")
            || m.contains("Connection")
            || m.contains("connect to host")
        {
            "connection"
        } else {
            "reading facts"
        }
    }
}

/// A resource instance whose facts did not let corral decide what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceProblem {
    pub address: Address,
    pub message: String,
}

/// The result of planning: changes in apply order, and what kept the plan from being
/// complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// Whose records on the hosts the plan reads and writes (deletions, `record`).
    #[serde(default)]
    pub project: String,
    /// Changes in apply order; no-ops are left out.
    pub resource_changes: Vec<ResourceChange>,
    /// Hosts that could not be read; their resources are not in the plan.
    pub unreachable: Vec<HostProblem>,
    /// Instances whose facts were unusable (an unknown sysctl key, say).
    pub errors: Vec<ResourceProblem>,
    /// What the facts say will not work as configured, though it can be applied (an
    /// encrypted overlay on a kernel without ESP): shown, never blocking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ResourceProblem>,
    /// sha256 of the configuration the plan was made from.
    pub config_digest: String,
    /// sha256 of each host's facts, and of each cluster's.
    pub facts_digests: crate::facts::FactsDigests,
    /// How many instances were compared.
    pub instances: usize,
}

impl Plan {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.resource_changes.is_empty()
    }

    /// True when every host was read and every instance was decided.
    pub fn is_complete(&self) -> bool {
        self.unreachable.is_empty() && self.errors.is_empty()
    }

    /// Counts for the summary line: add, change, replace, destroy.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for change in &self.resource_changes {
            counts.record(change.action);
        }
        counts
    }
}

/// Numbers for `Plan: N to add, N to change, N to replace, N to destroy.`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    /// Removed resources left in place (only the record of them goes).
    pub forget: usize,
}

/// `N to add, N to change, N to replace, N to destroy`, and `, N to forget` when some are
/// left in place, as every plan format says it.
impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to replace, {} to destroy",
            self.add, self.change, self.replace, self.destroy
        )?;
        if self.forget > 0 {
            write!(f, ", {} to forget", self.forget)?;
        }
        Ok(())
    }
}

impl Counts {
    /// Counts one change of `action` (a no-op counts nowhere).
    pub fn record(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.destroy += 1,
            Action::Forget => self.forget += 1,
            Action::NoOp => {}
        }
    }
}

/// Where a value read by an earlier step of the same apply goes in a script (quoted when
/// it is filled in, on the host's stdin only: never in a plan, a log or an error).
pub fn placeholder(name: &str) -> String {
    format!("{PLACEHOLDER_OPEN}{name}@@")
}

const PLACEHOLDER_OPEN: &str = "@@corral-value:";

/// A [`placeholder`] whose value no earlier step produced, by the value's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value `{0}` was produced by an earlier step")]
pub struct NotProduced(pub String);

/// `script` with every [`placeholder`] replaced by its value, shell-quoted.
pub fn fill_values(
    script: &str,
    values: &std::collections::HashMap<String, String>,
) -> Result<String, NotProduced> {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(start) = rest.find(PLACEHOLDER_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PLACEHOLDER_OPEN.len()..];
        let Some(end) = after.find("@@") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values
            .get(name)
            .ok_or_else(|| NotProduced(name.to_owned()))?;
        out.push_str(&crate::shell::quote(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ssh ends its lines with `\r\n`; a host problem is one clean message, and says in a
    /// word what failed.
    #[test]
    fn host_problems_are_clean_and_classified() {
        let problem = HostProblem::new(
            "n1",
            "cannot connect to n1 (10.0.0.1) over SSH: Host key verification failed.\r\n",
        );
        assert!(!problem.message.contains('\r'), "{problem:?}");
        assert_eq!(problem.failure(), "host key");
        for (message, failure) in [
            (
                "ssh: connect to host 10.0.0.1 port 22: Connection refused",
                "connection",
            ),
            (
                "root@10.0.0.1: Permission denied (publickey).",
                "authentication",
            ),
            ("sudo: a password is required", "sudo"),
            (
                "sudo on n1 needs a password for ops: allow NOPASSWD for corral's commands",
                "sudo",
            ),
            ("did not answer within 5 s while reading facts", "deadline"),
        ] {
            assert_eq!(
                HostProblem::new("n1", message).failure(),
                failure,
                "{message}"
            );
        }
    }
}
