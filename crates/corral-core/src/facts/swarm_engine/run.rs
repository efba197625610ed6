//! What runs ([`service_run_probe`]: `docker service ls`, then `docker service ps` of the
//! services whose tasks may not all run), printed from the Engine API's answers as the CLI
//! 20.10 prints them (docker/cli `cli/command/service/list.go`, `formatter.go`,
//! `cli/command/task/print.go`, `formatter.go`):
//! - a service line is `ID|MODE|REPLICAS|NAME`: the ID cut to 12 characters, the counts of
//!   the API's `ServiceStatus` (asked with `status=true`, as the CLI asks; counted from the
//!   tasks as the CLI counts them where a daemon older than API 1.41 leaves it out), with
//!   the CLI's suffixes for jobs and `max_replicas`; in the CLI's natural order of names;
//! - a task line is the CLI's `{{json .}}` of its task context: keys sorted, Go's escaping
//!   of `<`, `>` and `&`; the name `SERVICE.SLOT` or `SERVICE.NODE_ID`, the node's name
//!   as the CLI resolves it, the state with how long ago it was entered in the CLI's words
//!   (by the host's clock, read by the engine probe), the error quoted; sorted by name
//!   (natural order), the newest first within a slot.
//!
//! [`service_run_probe`]: super::super::swarm::service_run_probe

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{body, failed, Answer};
use crate::facts::swarm::TASKS_MARKER;
use crate::facts::ProbeOutput;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    spec: ServiceSpec,
    service_status: Option<Status>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceSpec {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    task_template: Template,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Mode {
    replicated: Option<serde_json::Value>,
    global: Option<serde_json::Value>,
    replicated_job: Option<Job>,
    global_job: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Job {
    total_completions: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Template {
    placement: Option<Placement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Placement {
    #[serde(default)]
    max_replicas: u64,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    #[serde(default)]
    running_tasks: u64,
    #[serde(default)]
    desired_tasks: u64,
    #[serde(default)]
    completed_tasks: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Task {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ServiceID", default)]
    service_id: String,
    #[serde(default)]
    slot: u64,
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    desired_state: String,
    #[serde(default)]
    status: TaskStatus,
    #[serde(default)]
    spec: TaskSpec,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskStatus {
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    err: String,
    #[serde(default)]
    port_status: PortStatus,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PortStatus {
    #[serde(default)]
    ports: Option<Vec<Port>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(default)]
    target_port: u32,
    #[serde(default)]
    published_port: u32,
    #[serde(default)]
    protocol: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskSpec {
    container_spec: Option<ContainerSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerSpec {
    #[serde(default)]
    image: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Node {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    description: NodeDescription,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeSpec {
    #[serde(default)]
    name: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeDescription {
    #[serde(default)]
    hostname: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeStatus {
    #[serde(default)]
    state: String,
}

impl Service {
    fn mode(&self) -> &'static str {
        let mode = &self.spec.mode;
        if mode.global.is_some() {
            "global"
        } else if mode.replicated.is_some() {
            "replicated"
        } else if mode.replicated_job.is_some() {
            "replicated job"
        } else if mode.global_job.is_some() {
            "global job"
        } else {
            ""
        }
    }

    /// The REPLICAS column, and the running and desired counts it starts with.
    fn replicas(&self) -> (String, u64, u64) {
        let zero = Status::default();
        let status = self.service_status.as_ref().unwrap_or(&zero);
        let (running, desired, completed) = (
            status.running_tasks,
            status.desired_tasks,
            status.completed_tasks,
        );
        let text = if let Some(job) = &self.spec.mode.replicated_job {
            let total = job.total_completions.unwrap_or(0);
            format!("{running}/{desired} ({completed}/{total} completed)")
        } else if self.spec.mode.global_job.is_some() {
            let total = desired + completed;
            format!("{running}/{desired} ({completed}/{total} completed)")
        } else {
            let max = match (self.mode(), &self.spec.task_template.placement) {
                ("replicated", Some(placement)) => placement.max_replicas,
                _ => 0,
            };
            match max {
                0 => format!("{running}/{desired}"),
                max => format!("{running}/{desired} (max {max} per node)"),
            }
        };
        (text, running, desired)
    }
}

/// The probe's output from the answers `clock`, `nodes`, `status` and `tasks`.
pub(super) fn printed(answers: &[(String, Answer)]) -> ProbeOutput {
    match lines(answers) {
        Ok(output) => ProbeOutput { rc: 0, output },
        Err(why) => failed(why),
    }
}

fn lines(answers: &[(String, Answer)]) -> Result<String, String> {
    let unreadable = |what: &str, e: serde_json::Error| {
        format!("the Docker Engine API's {what} cannot be read: {e}")
    };
    let mut services: Vec<Service> =
        serde_json::from_str(body(answers, "status")?).map_err(|e| unreadable("services", e))?;
    // The CLI's `service ps` ends in `|| true`: tasks that cannot be listed are left out.
    let tasks: Option<Vec<Task>> = match body(answers, "tasks").ok() {
        Some(body) => Some(serde_json::from_str(body).map_err(|e| unreadable("tasks", e))?),
        None => None,
    };
    let nodes: Vec<Node> = match body(answers, "nodes").ok() {
        Some(body) => serde_json::from_str(body).map_err(|e| unreadable("nodes", e))?,
        None => Vec::new(),
    };
    if services.iter().any(|s| s.service_status.is_none()) {
        count_from_tasks(&mut services, tasks.as_deref().unwrap_or(&[]), &nodes);
    }
    services.sort_by(|a, b| natural_order(&a.spec.name, &b.spec.name));
    let mut output = String::new();
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for service in &services {
        let (replicas, running, desired) = service.replicas();
        let id: String = service.id.chars().take(12).collect();
        output.push_str(&format!(
            "{id}|{}|{replicas}|{}\n",
            service.mode(),
            service.spec.name
        ));
        if service.mode() == "global" || running < desired {
            listed.insert(&service.id, &service.spec.name);
        }
    }
    if services.is_empty() {
        // `printf '%s\n' "$ls"` of nothing.
        output.push('\n');
    }
    if listed.is_empty() {
        return Ok(output);
    }
    output.push_str(TASKS_MARKER);
    output.push('\n');
    let Some(tasks) = tasks else {
        return Ok(output);
    };
    let now = clock(body(answers, "clock")?)?;
    let names: BTreeMap<&str, &str> = nodes
        .iter()
        .map(|n| {
            let name = [&n.spec.name, &n.description.hostname]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or(&n.id);
            (n.id.as_str(), name.as_str())
        })
        .collect();
    let mut rows: Vec<(String, SystemTime, String)> = Vec::new();
    for task in &tasks {
        let Some(service) = listed.get(task.service_id.as_str()) else {
            continue;
        };
        let name = match task.slot {
            0 => format!("{service}.{}", task.node_id),
            slot => format!("{service}.{slot}"),
        };
        let created = timestamp(&task.created_at);
        let line = task_line(task, &name, &names, now)?;
        rows.push((name, created, line));
    }
    // The CLI's sort.Stable: by name, then the newest first.
    rows.sort_by(|a, b| natural_order(&a.0, &b.0).then(b.1.cmp(&a.1)));
    for (_, _, line) in rows {
        output.push_str(&line);
        output.push('\n');
    }
    Ok(output)
}

/// The counts the CLI makes itself where the daemon (API before 1.41) sent no
/// `ServiceStatus`: desired, every task not meant to be shut down; running, those running
/// on a node that is not down.
fn count_from_tasks(services: &mut [Service], tasks: &[Task], nodes: &[Node]) {
    let up: Vec<&str> = nodes
        .iter()
        .filter(|n| n.status.state != "down")
        .map(|n| n.id.as_str())
        .collect();
    for service in services.iter_mut().filter(|s| s.service_status.is_none()) {
        let mut status = Status::default();
        for task in tasks.iter().filter(|t| t.service_id == service.id) {
            if task.desired_state != "shutdown" {
                status.desired_tasks += 1;
            }
            if up.contains(&task.node_id.as_str()) && task.status.state == "running" {
                status.running_tasks += 1;
            }
        }
        service.service_status = Some(status);
    }
}

/// A task's line: the CLI's `{{json .}}` of its task context.
fn task_line(
    task: &Task,
    name: &str,
    nodes: &BTreeMap<&str, &str>,
    now: SystemTime,
) -> Result<String, String> {
    let since = now
        .duration_since(timestamp(&task.status.timestamp))
        .unwrap_or_default();
    let ports: Vec<String> = task
        .status
        .port_status
        .ports
        .iter()
        .flatten()
        .map(|p| format!("*:{}->{}/{}", p.published_port, p.target_port, p.protocol))
        .collect();
    let fields: BTreeMap<&str, String> = BTreeMap::from([
        (
            "CurrentState",
            format!(
                "{} {} ago",
                capitalized(&task.status.state),
                human_duration(since).to_lowercase()
            ),
        ),
        ("DesiredState", capitalized(&task.desired_state)),
        (
            "Error",
            match task.status.err.is_empty() {
                true => String::new(),
                false => format!("\"{}\"", task.status.err),
            },
        ),
        ("ID", task.id.clone()),
        (
            "Image",
            task.spec
                .container_spec
                .as_ref()
                .map_or_else(String::new, |c| c.image.clone()),
        ),
        ("Name", name.to_owned()),
        (
            "Node",
            nodes
                .get(task.node_id.as_str())
                .map_or_else(|| task.node_id.clone(), |n| (*n).to_owned()),
        ),
        ("Ports", ports.join(",")),
    ]);
    let json = serde_json::to_string(&fields).map_err(|e| e.to_string())?;
    Ok(go_escaped(&json))
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; outside
/// strings JSON has none of them.
fn go_escaped(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The CLI's `PrettyPrint` of a state: its first letter upper-case.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The host's clock as the engine probe read it: whole seconds since the epoch (so a task
/// may read as changed up to a second later than the CLI would say).
fn clock(body: &str) -> Result<SystemTime, String> {
    let seconds: f64 = body
        .trim()
        .parse()
        .map_err(|_| format!("the host's clock cannot be read: `{}`", body.trim()))?;
    Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0)))
}

/// An RFC 3339 time as Docker writes them (nanoseconds, `Z`). Go's zero time (year 1) and
/// anything else before 1970 read as 1970: it only words how long ago, and sorts.
fn timestamp(text: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(text).unwrap_or(UNIX_EPOCH)
}

/// go-units' `HumanDuration`, as the CLI words how long ago a task changed state.
fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if seconds < 1 {
        "Less than a second".to_owned()
    } else if seconds == 1 {
        "1 second".to_owned()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// The CLI's order of names (fvbommel/sortorder's `NaturalLess`): runs of digits compare
/// as numbers (digits before other characters; with equal values, fewer leading zeros
/// first), the rest byte by byte; a name that is a prefix of another comes first.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (za, zb) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let order = (i - za)
            .cmp(&(j - zb))
            .then_with(|| a[za..i].cmp(&b[zb..j]))
            .then(za.cmp(&zb));
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's natural order, as sortorder's own tests have it.
    #[test]
    fn names_sort_as_the_cli_sorts_them() {
        let mut names = vec!["web10", "web2", "api", "web02", "web", "Web1", "1a", "a1"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            names,
            ["1a", "Web1", "a1", "api", "web", "web2", "web02", "web10"]
        );
    }

    /// go-units' wording at each of its bounds.
    #[test]
    fn durations_are_worded_as_the_cli_words_them() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86400, "2 weeks"),
            (60 * 86400, "2 months"),
            (2 * 365 * 86400, "2 years"),
        ];
        for (seconds, words) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(seconds)),
                words,
                "{seconds} s"
            );
        }
    }
}
