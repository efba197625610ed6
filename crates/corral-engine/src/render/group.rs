//! Identical changes on several machines, shown once: the entries the human and Markdown
//! renderers print, so a plan of 30 machines reads as a plan of its resources.
//!
//! Only changes that are equal but for their machine are grouped (same kind and name, same
//! action, reason and attributes before and after; a reason or trigger naming an instance on
//! the change's own machine, `os/file.conf[n1]` on n1, counts as the same on each machine and
//! is shown as `os/file.conf[same machine]`), and only while they follow each other in
//! the plan: the plan lists changes in apply order, so a group never moves a change across
//! another, and reading the grouped plan top to bottom is still the apply order.
//! Removals (deleted or forgotten resources) are planned machine by machine, but each host
//! runs its own in order, apart from the others: within a run of removals, one joins an
//! equal removal on another machine as long as no removal of its own machine comes between
//! them, so each machine's order is kept.
//! Pure: each change is compared with the first member of an entry before it.
//! This module may not decide anything about the plan; JSON stays per instance.

use std::borrow::Cow;

use crate::address::Address;
use crate::plan::ResourceChange;

/// What stands for each member's own machine in a group's reason.
const SAME_MACHINE: &str = "[same machine]";

/// At most this many machines are named on a group's line; more are elided in the middle.
pub const LISTED: usize = 4;

/// What the renderers print for one or more changes: a change on its own, or a change that
/// several machines share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The first member: what every member does.
    pub change: &'a ResourceChange,
    /// Every member's machine, in plan order, when the entry groups several changes; empty
    /// for a change shown on its own.
    pub machines: Vec<&'a str>,
}

impl<'a> Entry<'a> {
    /// A change shown on its own.
    pub fn single(change: &'a ResourceChange) -> Self {
        Entry {
            change,
            machines: Vec::new(),
        }
    }

    /// Whether the entry stands for changes on several machines.
    pub fn is_group(&self) -> bool {
        self.machines.len() > 1
    }

    /// How many resource instances the entry stands for.
    pub fn instances(&self) -> usize {
        self.machines.len().max(1)
    }

    /// The address shown: the resource's for a group, the instance's otherwise.
    pub fn address(&self) -> Address {
        if self.is_group() {
            self.change.address.resource()
        } else {
            self.change.address.clone()
        }
    }

    /// The reason shown: a group's names instances on each member's own machine as
    /// `[same machine]`.
    pub fn reason(&self) -> Option<Cow<'a, str>> {
        let reason = self.change.reason.as_deref()?;
        match (self.is_group(), self.change.machine.as_deref()) {
            (true, Some(machine)) => Some(relative(reason, machine)),
            _ => Some(Cow::Borrowed(reason)),
        }
    }

    /// `on n1, n2 … n30 (30 machines)` for a group, nothing otherwise.
    pub fn machines_suffix(&self) -> String {
        if !self.is_group() {
            return String::new();
        }
        format!(" on {} ({} machines)", self.listed(), self.machines.len())
    }

    /// The machines as a group's line names them: `n1, n2 … n30`.
    pub fn listed(&self) -> String {
        short_list(&self.named())
    }

    /// The machines in the order people count them (`n2` before `n10`), for the group's
    /// lists; `--expand` shows the order the changes are made in.
    pub fn named(&self) -> Vec<&'a str> {
        let mut named = self.machines.clone();
        named.sort_by_cached_key(|name| NaturalKey::of(name));
        named
    }

    /// Whether the group's line leaves machines out, so the whole list is shown apart.
    pub fn is_elided(&self) -> bool {
        self.machines.len() > LISTED
    }

    /// Whether the entry stands for a change on `machine` (any machine, for a cluster's).
    fn touches(&self, machine: Option<&str>) -> bool {
        match (self.machines.as_slice(), machine) {
            (_, None) => true,
            ([], Some(machine)) => self.change.machine.as_deref().is_none_or(|m| m == machine),
            (members, Some(machine)) => members.contains(&machine),
        }
    }

    fn join(&mut self, change: &'a ResourceChange) -> bool {
        if !same_but_machine(self.change, change) {
            return false;
        }
        if self.machines.is_empty() {
            self.machines.extend(self.change.machine.as_deref());
        }
        self.machines.extend(change.machine.as_deref());
        true
    }
}

/// The plan's changes as entries, in plan order: identical consecutive changes on several
/// machines grouped, or each change on its own when `expand`.
pub fn entries(changes: &[ResourceChange], expand: bool) -> Vec<Entry<'_>> {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    // Where the current run of removals starts among the entries.
    let mut removals: Option<usize> = None;
    for change in changes {
        let joined = if expand {
            false
        } else if change.action.is_removal() {
            let start = *removals.get_or_insert(entries.len());
            // After the last entry of the run on this change's machine: joining there keeps
            // that machine's order.
            let machine = change.machine.as_deref();
            let after = entries[start..]
                .iter()
                .rposition(|e| e.touches(machine))
                .map_or(start, |i| start + i + 1);
            entries[after..].iter_mut().any(|e| e.join(change))
        } else {
            removals = None;
            entries.last_mut().is_some_and(|last| last.join(change))
        };
        if !joined {
            entries.push(Entry::single(change));
        }
    }
    entries
}

/// Whether `a` and `b` are the same change on two different machines. `triggered_by` names
/// instances on each change's own machine, so those count as equal.
fn same_but_machine(a: &ResourceChange, b: &ResourceChange) -> bool {
    let (Some(machine_a), Some(machine_b)) = (&a.machine, &b.machine) else {
        return false;
    };
    machine_a != machine_b
        && a.address.kind == b.address.kind
        && a.address.name == b.address.name
        && a.action == b.action
        && a.reason.as_deref().map(|r| relative(r, machine_a))
            == b.reason.as_deref().map(|r| relative(r, machine_b))
        && a.attributes == b.attributes
        && a.triggered_by.len() == b.triggered_by.len()
        && a.triggered_by.iter().zip(&b.triggered_by).all(|(x, y)| {
            x.kind == y.kind
                && x.name == y.name
                && (x.machine == y.machine
                    || (x.machine.as_ref() == Some(machine_a)
                        && y.machine.as_ref() == Some(machine_b)))
        })
}

/// `text` with the instances on `machine` (`[machine]`) named relative to it.
fn relative<'t>(text: &'t str, machine: &str) -> Cow<'t, str> {
    let own = format!("[{machine}]");
    if text.contains(&own) {
        Cow::Owned(text.replace(&own, SAME_MACHINE))
    } else {
        Cow::Borrowed(text)
    }
}

/// Compares names with their runs of digits as numbers: `n2` < `n10`.
#[cfg(test)]
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    NaturalKey::of(a).cmp(&NaturalKey::of(b))
}

/// A name split once into its runs of digits and of the rest, to sort many names in
/// [`natural_order`] without splitting them again at every comparison (20,000 machines
/// named in string order, `m1000` before `m10000` before `m1001`, are far from sorted).
#[derive(PartialEq, Eq)]
struct NaturalKey<'a> {
    chunks: Vec<(bool, &'a str)>,
    name: &'a str,
}

impl<'a> NaturalKey<'a> {
    fn of(name: &'a str) -> Self {
        let mut chunks = Vec::new();
        let mut rest = name;
        while let Some(first) = rest.chars().next() {
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            chunks.push((digits, &rest[..end]));
            rest = &rest[end..];
        }
        NaturalKey { chunks, name }
    }
}

impl Ord for NaturalKey<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A run of digits by its value: fewer significant digits first, then digit by digit.
        fn number(digits: &str) -> (usize, &str) {
            let significant = digits.trim_start_matches('0');
            (significant.len(), significant)
        }
        for (x, y) in self.chunks.iter().zip(&other.chunks) {
            let order = match (x, y) {
                ((true, x), (true, y)) => number(x).cmp(&number(y)),
                ((_, x), (_, y)) => x.cmp(y),
            };
            if order.is_ne() {
                return order;
            }
        }
        self.chunks
            .len()
            .cmp(&other.chunks.len())
            .then(self.name.cmp(other.name))
    }
}

impl PartialOrd for NaturalKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Every machine when there are at most [`LISTED`]; otherwise the first two and the last,
/// the middle elided: `n1, n2 … n30`.
fn short_list(machines: &[&str]) -> String {
    match machines {
        [first, second, .., last] if machines.len() > LISTED => {
            format!("{first}, {second} … {last}")
        }
        _ => machines.join(", "),
    }
}

/// The whole list of machines, in lines of at most about `width` characters.
pub fn wrapped_list(machines: &[&str], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (index, machine) in machines.iter().enumerate() {
        let last = index + 1 == machines.len();
        let item = if last {
            (*machine).to_owned()
        } else {
            format!("{machine},")
        };
        if !line.is_empty() && line.len() + 1 + item.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, AttrChange};

    fn change(name: &str, machine: &str, after: &str) -> ResourceChange {
        ResourceChange {
            address: Address::new("os/sysctl", name, Some(machine)),
            machine: Some(machine.into()),
            action: Action::Update,
            attributes: vec![AttrChange::scalar("net.ipv4.ip_forward", "1", after)],
            reason: None,
            triggered_by: Vec::new(),
        }
    }

    fn shown(entries: &[Entry<'_>]) -> Vec<String> {
        entries
            .iter()
            .map(|e| format!("{}{}", e.address(), e.machines_suffix()))
            .collect()
    }

    #[test]
    fn identical_consecutive_changes_are_one_entry() {
        let changes: Vec<ResourceChange> = (1..=30)
            .map(|i| change("baseline", &format!("n{i}"), "0"))
            .collect();
        let entries = entries(&changes, false);
        assert_eq!(
            shown(&entries),
            ["os/sysctl.baseline on n1, n2 … n30 (30 machines)"]
        );
        assert_eq!(entries[0].instances(), 30);
        assert_eq!(super::entries(&changes, true).len(), 30, "--expand");
    }

    #[test]
    fn a_different_value_or_resource_starts_a_new_entry() {
        let changes = [
            change("baseline", "n1", "0"),
            change("baseline", "n2", "0"),
            change("baseline", "n3", "2"),
            change("other", "n4", "2"),
            change("baseline", "n5", "2"),
        ];
        assert_eq!(
            shown(&entries(&changes, false)),
            [
                "os/sysctl.baseline on n1, n2 (2 machines)",
                "os/sysctl.baseline[n3]",
                "os/sysctl.other[n4]",
                "os/sysctl.baseline[n5]",
            ],
            "never grouped across a change between them, so the order stays the apply order"
        );
    }

    #[test]
    fn cluster_changes_and_other_triggers_are_never_grouped() {
        let mut a = change("baseline", "n1", "0");
        let mut b = change("baseline", "n2", "0");
        a.triggered_by = vec![Address::new("os/file", "conf", Some("n1"))];
        b.triggered_by = vec![Address::new("os/file", "conf", Some("n2"))];
        assert_eq!(entries(&[a.clone(), b.clone()], false).len(), 1);
        b.triggered_by = vec![Address::new("os/file", "conf", Some("n3"))];
        assert_eq!(entries(&[a.clone(), b], false).len(), 2);
        let mut cluster = a.clone();
        cluster.machine = None;
        cluster.address.machine = None;
        assert_eq!(entries(&[cluster.clone(), cluster], false).len(), 2);
    }

    #[test]
    fn reasons_naming_the_own_machine_are_the_same_change() {
        let mut a = change("baseline", "n1", "0");
        let mut b = change("baseline", "n2", "0");
        a.reason = Some("restarted because os/file.conf[n1] changed".into());
        b.reason = Some("restarted because os/file.conf[n2] changed".into());
        let pair = [a.clone(), b.clone()];
        let grouped = entries(&pair, false);
        assert_eq!(grouped.len(), 1);
        assert_eq!(
            grouped[0].reason().as_deref(),
            Some("restarted because os/file.conf[same machine] changed")
        );
        b.reason = Some("restarted because os/file.conf[n1] changed".into());
        assert_eq!(
            entries(&[a.clone(), b], false).len(),
            2,
            "n2 restarts for n1's file, not its own"
        );
        assert_eq!(
            Entry::single(&a).reason().as_deref(),
            Some("restarted because os/file.conf[n1] changed")
        );
    }

    fn removal(name: &str, machine: &str, action: Action) -> ResourceChange {
        ResourceChange {
            address: Address::new("os/file", name, Some(machine)),
            machine: Some(machine.into()),
            action,
            attributes: vec![AttrChange::new(
                "path",
                crate::plan::AttrValue::Scalar(format!("/etc/{name}")),
                crate::plan::AttrValue::Absent,
            )],
            reason: Some("no longer in the configuration".into()),
            triggered_by: Vec::new(),
        }
    }

    /// Removals are planned machine by machine (a, b on n1, then a, b on n2) and each host
    /// runs its own in order: they group across machines as changes do, without changing
    /// any machine's order.
    #[test]
    fn removals_are_grouped_across_machines_keeping_each_machines_order() {
        let changes = [
            removal("a", "n1", Action::Delete),
            removal("b", "n1", Action::Forget),
            removal("a", "n2", Action::Delete),
            removal("b", "n2", Action::Forget),
            removal("b", "n3", Action::Forget),
            removal("a", "n3", Action::Delete),
            change("baseline", "n1", "0"),
            removal("a", "n4", Action::Delete),
        ];
        assert_eq!(
            shown(&entries(&changes, false)),
            [
                "os/file.a on n1, n2 (2 machines)",
                "os/file.b on n1, n2, n3 (3 machines)",
                // n3 removes b before a: a cannot join the group above b.
                "os/file.a[n3]",
                "os/sysctl.baseline[n1]",
                // Never across a change that is not a removal.
                "os/file.a[n4]",
            ]
        );
        assert_eq!(entries(&changes, true).len(), changes.len(), "--expand");
    }

    #[test]
    fn machines_are_named_in_counting_order() {
        let mut names = vec!["n10", "n2", "web-1", "n1", "n02", "db"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(names, ["db", "n1", "n02", "n2", "n10", "web-1"]);
    }

    #[test]
    fn long_lists_wrap() {
        let names: Vec<String> = (1..=30).map(|i| format!("node{i:02}")).collect();
        let machines: Vec<&str> = names.iter().map(String::as_str).collect();
        let lines = wrapped_list(&machines, 40);
        assert!(lines.iter().all(|l| l.len() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), machines.join(", "));
    }
}
