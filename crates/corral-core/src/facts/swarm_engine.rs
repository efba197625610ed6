//! Asking dockerd through its Engine API, in one process, what several `docker` CLI probes
//! ask: a host's `docker info`, and a manager's node, overlay network and service inspects,
//! its secrets and configs and the configs it may adopt (see [`answered`]).
//!
//! Each `docker` process costs 20-30 ms of CPU to start, and a manager's probes ran eleven
//! of them. [`fold`] replaces those probes in a fact script by one [`KEY`] probe: a `perl`
//! (perl-base is part of every Debian and Ubuntu system; curl is not) that sends the same
//! requests the CLI sends over `/var/run/docker.sock`, one HTTP/1.0 request per answer, and
//! prints each answer with its status and length. [`Folded::expand`] then writes every
//! folded probe's output as the CLI would have printed it, so parsers, digests, facts files
//! and recordings stay those of the CLI: the inspects are the API's own objects (the CLI's
//! `{{json .}}` prints what the API sent, and `service inspect` asks with
//! `insertDefaults=true` as the CLI does); `docker info`, `network inspect` and the
//! objects' listings print the same fields their templates pick, sorted as `sort` sorts; a daemon that does not answer, and an error response,
//! read as the CLI's messages ("Cannot connect to the Docker daemon…", "Error response from
//! daemon: …"), which [`super::swarm::refusal`] recognises.
//!
//! Where the API cannot be asked as the CLI would ask it (no `perl`, no socket at the
//! default path, `DOCKER_HOST` or `DOCKER_CONTEXT` set), the folded probes run their CLI
//! scripts as before: each keeps its script behind the same test, and the engine probe then
//! says so and is not used. A docker context chosen in the CLI's `config.json` is not
//! followed (corral runs as root, whose CLI talks to the local daemon).
//!
//! Recorded from a real dockerd, the API's answer and the CLI's at the same moment
//! (`scripts/record-engine-fixtures.sh`, `fixtures/cluster/engine/`): the tests check that
//! they read as the same facts.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::swarm::{
    info_probe, network_inspect_probe, node_inspect_probe, service_inspect_probe, service_run_probe,
};
use super::swarm_objects::{
    adoptable_probe, key_asked, probe_with_key, MANAGED_LABEL, OBJECTS_KEY,
};
use super::{Probe, ProbeOutput};
use crate::shell::quote;

/// Key of the engine probe [`fold`] adds.
pub const KEY: &str = "swarm:engine";

/// When the API can be asked as the CLI would ask it: shell builtins only.
const USABLE: &str = "[ -z \"${DOCKER_HOST-}\" ] && [ -z \"${DOCKER_CONTEXT-}\" ] && [ -S /var/run/docker.sock ] && command -v perl >/dev/null 2>&1";

/// What the engine probe prints when the API cannot be asked (see [`USABLE`]).
const UNAVAILABLE: &str = "corral-engine-unavailable";

/// What the CLI prints when dockerd does not answer on its socket.
const DAEMON_DOWN: &str =
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/// The client: for each `NAME PATH` argument, one request, and its answer as `@@engine NAME
/// STATUS LENGTH`, the body (LENGTH bytes) and a newline; STATUS is `down` when the socket
/// does not answer. `services` is answered by one `service` section per service, each
/// asked as `docker service inspect` asks (a service removed meanwhile is left out, as it
/// is gone). `NAME -` is answered with the host's clock (whole seconds since the epoch:
/// perl-base has no Time::HiRes). No single quote: it is sent inside one.
const CLIENT: &str = r#"use Socket;
sub get {
  my ($path) = @_;
  socket(my $s, PF_UNIX, SOCK_STREAM, 0) or return (q{down}, q{});
  connect($s, pack_sockaddr_un(q{/var/run/docker.sock})) or return (q{down}, q{});
  syswrite($s, qq{GET $path HTTP/1.0\r\nHost: docker\r\n\r\n}) or return (q{down}, q{});
  local $/; my $r = <$s>; close $s;
  defined $r or return (q{down}, q{});
  my ($head, $body) = split /\r\n\r\n/, $r, 2;
  my ($code) = $head =~ m{^HTTP/\d\.\d (\d{3})};
  return (defined $code ? $code : q{0}, defined $body ? $body : q{});
}
sub answer { my ($name, $code, $body) = @_; print qq{\@\@engine $name $code }, length($body), qq{\n$body\n}; }
for my $ask (@ARGV) {
  my ($name, $path) = split / /, $ask, 2;
  if ($path eq q{-}) { answer($name, q{200}, time); next; }
  my ($code, $body) = get($path);
  if ($name eq q{services} && $code eq q{200}) {
    answer($name, $code, q{});
    my %seen;
    for my $id ($body =~ /\{"ID":"([0-9A-Za-z]+)"/g) {
      next if $seen{$id}++;
      my ($c, $b) = get(qq{/services/$id?insertDefaults=true});
      answer(q{service}, $c, $b) unless $c eq q{404};
    }
  } else {
    answer($name, $code, $body);
  }
}"#;

/// One question the engine probe answers in place of a CLI probe.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Question {
    Info,
    Nodes,
    Networks,
    Services,
    /// The secrets and configs, and the project's key config named so.
    Objects {
        key: String,
    },
    /// The configs no project labelled, with their data.
    Adoptable,
    /// What runs: `service ls`, then `service ps` of the services short of tasks.
    Run,
}

impl Question {
    /// The questions whose CLI probe is always the same.
    const FIXED: [Question; 6] = [
        Question::Info,
        Question::Nodes,
        Question::Networks,
        Question::Services,
        Question::Adoptable,
        Question::Run,
    ];

    /// The question `probe` asks, if the engine probe answers it: a CLI probe of one, under
    /// its own key or a prefixed one, with its script unchanged.
    fn of(probe: &Probe) -> Option<Question> {
        let same = |cli: Probe| probe.script == cli.script && probe.key.ends_with(&cli.key);
        if let Some(question) = Question::FIXED.into_iter().find(|q| same(q.cli())) {
            return Some(question);
        }
        if probe.key.ends_with(OBJECTS_KEY) {
            return key_asked(&probe.script).map(|key| Question::Objects { key });
        }
        None
    }

    /// The CLI probe this question replaces.
    fn cli(&self) -> Probe {
        match self {
            Question::Info => info_probe(),
            Question::Nodes => node_inspect_probe(),
            Question::Networks => network_inspect_probe(),
            Question::Services => service_inspect_probe(),
            Question::Objects { key } => probe_with_key(key),
            Question::Adoptable => adoptable_probe(),
            Question::Run => service_run_probe(),
        }
    }

    /// The requests it needs, by name and path: the CLI's own requests, without its API
    /// version (the daemon's is the one the CLI negotiates).
    fn requests(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Question::Info => &[("info", "/info")],
            Question::Nodes => &[("nodes", "/nodes")],
            // {"driver":{"overlay":true}}, as `network ls --filter driver=overlay` sends it.
            Question::Networks => &[(
                "networks",
                "/networks?filters=%7B%22driver%22%3A%7B%22overlay%22%3Atrue%7D%7D",
            )],
            Question::Services => &[("services", "/services")],
            Question::Objects { .. } => &[("secrets", "/secrets"), ("configs", "/configs")],
            Question::Adoptable => &[("configs", "/configs")],
            // `clock` is the host's, for how long ago each task changed.
            Question::Run => &[
                ("clock", "-"),
                ("nodes", "/nodes"),
                ("status", "/services?status=true"),
                ("tasks", "/tasks"),
            ],
        }
    }
}

/// Every CLI probe the engine probe answers for, with the objects probe of `project`.
pub fn answered(project: &str) -> Vec<Probe> {
    let mut probes: Vec<Probe> = Question::FIXED.iter().map(Question::cli).collect();
    probes.push(super::swarm_objects::probe(project));
    probes
}

/// The probes [`fold`] folded into the engine probe: their keys, each with its question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    keys: Vec<(String, Question)>,
}

/// Folds the probes of `probes` that the engine probe answers (a CLI probe of
/// [`Question`]'s, under its own key or a prefixed one such as a manager's question asked
/// speculatively) and adds that probe, when there is any. Each folded probe keeps its CLI
/// script, run only where the API cannot be asked.
pub fn fold(probes: &[Probe]) -> (Vec<Probe>, Folded) {
    let mut folded = Folded::default();
    let mut out: Vec<Probe> = probes
        .iter()
        .map(|probe| match Question::of(probe) {
            Some(question) => {
                folded.keys.push((probe.key.clone(), question));
                Probe {
                    key: probe.key.clone(),
                    script: format!("if {USABLE}; then :; else\n{}\nfi", probe.script),
                }
            }
            None => probe.clone(),
        })
        .collect();
    let mut requests: Vec<(&str, &str)> = folded
        .keys
        .iter()
        .flat_map(|(_, q)| q.requests().iter().copied())
        .collect();
    requests.sort();
    requests.dedup();
    if !requests.is_empty() && !probes.iter().any(|p| p.key == KEY) {
        let asks: Vec<String> = requests
            .iter()
            .map(|(name, path)| quote(&format!("{name} {path}")))
            .collect();
        out.push(Probe {
            key: KEY.to_owned(),
            script: format!(
                "if {USABLE}; then perl -e '{CLIENT}' {}; else echo {UNAVAILABLE}; fi",
                asks.join(" ")
            ),
        });
    }
    (out, folded)
}

/// One answer of the engine probe.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// dockerd did not answer on its socket.
    Down,
    Http {
        status: u16,
        body: String,
    },
}

impl Folded {
    /// Whether nothing was folded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Writes every folded probe's output in `outputs` from the engine probe's answer, as
    /// the CLI would have printed it, and takes the engine probe's output out. Where the
    /// API could not be asked the folded probes ran the CLI, and their outputs stay. An
    /// answer that cannot be read makes every folded probe fail, saying why.
    pub fn expand(&self, outputs: &mut BTreeMap<String, ProbeOutput>) {
        if self.keys.is_empty() {
            return;
        }
        let Some(engine) = outputs.remove(KEY) else {
            return;
        };
        if engine.output.trim_end() == UNAVAILABLE {
            return;
        }
        let answers = answers(&engine.output);
        for (key, question) in &self.keys {
            let output = match &answers {
                Ok(answers) => printed(question, answers),
                Err(why) => ProbeOutput {
                    rc: 1,
                    output: format!(
                        "corral: the Docker Engine API's answer could not be read ({why}; the probe exited {})\n",
                        engine.rc
                    ),
                },
            };
            outputs.insert(key.clone(), output);
        }
    }
}

/// Splits the engine probe's output into its `(name, answer)` sections, in order.
fn answers(output: &str) -> Result<Vec<(String, Answer)>, String> {
    let mut found = Vec::new();
    let mut rest = output;
    while !rest.is_empty() {
        let (line, after) = rest
            .split_once('\n')
            .ok_or_else(|| "a section header is cut short".to_owned())?;
        let mut fields = line.split(' ');
        let (Some("@@engine"), Some(name), Some(status), Some(length), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(format!(
                "unexpected line `{}`",
                crate::base::text::tail(line, 80)
            ));
        };
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad length in `{line}`"))?;
        let body = after
            .get(..length)
            .ok_or_else(|| format!("the answer to `{name}` is cut short"))?;
        rest = after[length..]
            .strip_prefix('\n')
            .ok_or_else(|| format!("the answer to `{name}` is longer than it said"))?;
        let answer = match status {
            "down" => Answer::Down,
            _ => Answer::Http {
                status: status
                    .parse()
                    .map_err(|_| format!("bad status in `{line}`"))?,
                body: body.to_owned(),
            },
        };
        found.push((name.to_owned(), answer));
    }
    Ok(found)
}

/// The answer named `name`, if it was asked.
fn find<'a>(answers: &'a [(String, Answer)], name: &str) -> Option<&'a Answer> {
    answers.iter().find(|(n, _)| n == name).map(|(_, a)| a)
}

/// The body of the answer named `name` when dockerd answered it, or why not in the CLI's
/// words: not asked, dockerd down, or its error response.
fn body<'a>(answers: &'a [(String, Answer)], name: &str) -> Result<&'a str, String> {
    match find(answers, name) {
        None => Err(format!("the Docker Engine API was not asked `{name}`")),
        Some(Answer::Down) => Err(DAEMON_DOWN.to_owned()),
        Some(Answer::Http { status: 200, body }) => Ok(body),
        Some(Answer::Http { body, .. }) => Err(error_response(body)),
    }
}

/// The output of `question`'s CLI probe, from the engine's answers.
fn printed(question: &Question, answers: &[(String, Answer)]) -> ProbeOutput {
    match question {
        Question::Objects { key } => return objects_printed(key, answers),
        Question::Run => return run::printed(answers),
        Question::Adoptable => {
            // The CLI script ends in `true`: whatever happens, it exits 0.
            let mut out = match body(answers, "configs").and_then(adoptable) {
                Ok(lines) => ProbeOutput {
                    rc: 0,
                    output: lines.iter().map(|l| format!("{l}\n")).collect(),
                },
                Err(why) => failed(why),
            };
            out.rc = 0;
            return out;
        }
        _ => {}
    }
    let (name, _) = question.requests()[0];
    // `docker info`'s template prints the error (and a line) and exits 0.
    if *question == Question::Info && find(answers, name) == Some(&Answer::Down) {
        return ProbeOutput {
            rc: 0,
            output: format!("{DAEMON_DOWN}\n\n"),
        };
    }
    let body = match body(answers, name) {
        Ok(body) => body,
        Err(why) => return failed(why),
    };
    let lines = match question {
        Question::Info => info(body).map(|line| vec![line]),
        Question::Nodes => items(body),
        Question::Networks => networks(body),
        _ => services(answers),
    };
    match lines {
        Ok(lines) => ProbeOutput {
            rc: 0,
            output: lines.iter().map(|l| format!("{l}\n")).collect(),
        },
        Err(why) => failed(why),
    }
}

/// A probe that failed, saying `message` as the CLI says its errors.
fn failed(message: String) -> ProbeOutput {
    ProbeOutput {
        rc: 1,
        output: format!("{message}\n"),
    }
}

/// An error response as the CLI prints it: `Error response from daemon: MESSAGE`.
fn error_response(body: &str) -> String {
    #[derive(Deserialize)]
    struct Error {
        message: String,
    }
    let message = serde_json::from_str::<Error>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| body.trim().to_owned());
    format!("Error response from daemon: {message}")
}

/// A JSON array's elements, each as the API encoded it (the CLI's `{{json .}}`).
fn items(body: &str) -> Result<Vec<String>, String> {
    let items: Vec<Box<RawValue>> = serde_json::from_str(body)
        .map_err(|e| format!("the Docker Engine API sent no list: {e}"))?;
    Ok(items.into_iter().map(|i| i.get().to_owned()).collect())
}

/// A field as the CLI's template prints it: the API's JSON, or the Go zero value of a field
/// the API left out (`omitempty`).
fn field(value: &Option<Box<RawValue>>, zero: &str) -> String {
    value
        .as_ref()
        .map_or_else(|| zero.to_owned(), |v| v.get().to_owned())
}

/// A JSON object's fields, each as the API encoded it.
type Fields = BTreeMap<String, Box<RawValue>>;

/// The object `{"NAME":VALUE,…}` of `fields` as a CLI template that prints `{{json .NAME}}`
/// of each, in that order: the API's JSON, or the Go zero value (`ZERO`) of a field the
/// API left out.
fn picked(object: &Fields, fields: &[(&str, &str)]) -> String {
    let values: Vec<String> = fields
        .iter()
        .map(|(name, zero)| {
            let value = object.get(*name).map_or(*zero, |v| v.get());
            format!("\"{name}\":{value}")
        })
        .collect();
    format!("{{{}}}", values.join(","))
}

/// What `docker info`'s template prints of `.Swarm` (see [`info_probe`]), and of
/// `.Swarm.Cluster` when there is one.
const INFO_FIELDS: [(&str, &str); 7] = [
    ("NodeID", "\"\""),
    ("NodeAddr", "\"\""),
    ("LocalNodeState", "\"\""),
    ("ControlAvailable", "false"),
    ("Error", "\"\""),
    ("Nodes", "0"),
    ("Managers", "0"),
];
const CLUSTER_FIELDS: [(&str, &str); 4] = [
    ("ID", "\"\""),
    ("DefaultAddrPool", "null"),
    ("SubnetSize", "0"),
    ("DataPathPort", "0"),
];

/// `docker info`'s line (see [`info_probe`]).
fn info(body: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Info {
        swarm: Fields,
    }
    let unreadable =
        |e: serde_json::Error| format!("the Docker Engine API's info cannot be read: {e}");
    let info: Info = serde_json::from_str(body).map_err(unreadable)?;
    let mut line = picked(&info.swarm, &INFO_FIELDS);
    let cluster: Option<Fields> = match info.swarm.get("Cluster") {
        Some(raw) => serde_json::from_str(raw.get()).map_err(unreadable)?,
        None => None,
    };
    if let Some(cluster) = cluster {
        line.pop();
        line.push_str(&format!(
            ",\"Cluster\":{}}}",
            picked(&cluster, &CLUSTER_FIELDS)
        ));
    }
    Ok(line)
}

/// What `docker network inspect`'s template prints (see [`network_inspect_probe`]).
const NETWORK_FIELDS: [(&str, &str); 11] = [
    ("Name", "\"\""),
    ("Id", "\"\""),
    ("Scope", "\"\""),
    ("Driver", "\"\""),
    ("EnableIPv6", "false"),
    ("IPAM", "{\"Driver\":\"\",\"Options\":null,\"Config\":null}"),
    ("Internal", "false"),
    ("Attachable", "false"),
    ("Ingress", "false"),
    ("Options", "null"),
    ("Labels", "null"),
];

/// `docker network inspect`'s lines: the fields its template picks, of each overlay
/// network.
fn networks(body: &str) -> Result<Vec<String>, String> {
    let networks: Vec<Fields> = serde_json::from_str(body)
        .map_err(|e| format!("the Docker Engine API's networks cannot be read: {e}"))?;
    Ok(networks
        .iter()
        .map(|n| picked(n, &NETWORK_FIELDS))
        .collect())
}

/// A secret or config as the API lists it: what the objects probes print of it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Object {
    spec: ObjectSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ObjectSpec {
    name: Box<RawValue>,
    labels: Option<Box<RawValue>>,
    data: Option<Box<RawValue>>,
}

impl Object {
    fn name(&self) -> String {
        serde_json::from_str(self.spec.name.get()).unwrap_or_default()
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.spec
            .labels
            .as_ref()
            .and_then(|l| serde_json::from_str::<Option<BTreeMap<String, String>>>(l.get()).ok())
            .flatten()
            .unwrap_or_default()
    }
}

fn listed(body: &str, noun: &str) -> Result<Vec<Object>, String> {
    serde_json::from_str(body)
        .map_err(|e| format!("the Docker Engine API's {noun}s cannot be read: {e}"))
}

/// The objects probe's output (see [`probe_with_key`]): `secret NAME LABELS` lines, then
/// `config NAME LABELS` lines, each sorted, then the key's data or `key absent`; a listing
/// that fails ends the output with its error, as the CLI's `&&` chain does.
fn objects_printed(key: &str, answers: &[(String, Answer)]) -> ProbeOutput {
    let mut output = String::new();
    let mut lines_of = |noun: &str| -> Result<Vec<Object>, String> {
        let objects = listed(body(answers, &format!("{noun}s"))?, noun)?;
        let mut lines: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{noun} {} {}",
                    o.spec.name.get(),
                    field(&o.spec.labels, "null")
                )
            })
            .collect();
        lines.sort();
        for line in lines {
            output.push_str(&line);
            output.push('\n');
        }
        Ok(objects)
    };
    let listed = lines_of("secret").and_then(|_| lines_of("config"));
    match listed {
        Ok(configs) => {
            match configs.iter().find(|c| c.name() == key) {
                Some(config) => {
                    output.push_str(&format!("key {}\n", field(&config.spec.data, "null")))
                }
                None => output.push_str("key absent\n"),
            }
            ProbeOutput { rc: 0, output }
        }
        Err(why) => ProbeOutput {
            rc: 1,
            output: format!("{output}{why}\n"),
        },
    }
}

/// The adoptable probe's lines (see [`adoptable_probe`]): `NAME DATA` of every config
/// without [`MANAGED_LABEL`], sorted.
fn adoptable(body: &str) -> Result<Vec<String>, String> {
    let mut lines: Vec<String> = listed(body, "config")?
        .iter()
        .filter(|c| !c.labels().contains_key(MANAGED_LABEL))
        .map(|c| format!("{} {}", c.spec.name.get(), field(&c.spec.data, "null")))
        .collect();
    lines.sort();
    Ok(lines)
}

/// `docker service inspect`'s lines: each service as asked alone, by name as `service ls`
/// sorts them. A service whose inspect failed fails the whole, as it does in the CLI.
fn services(answers: &[(String, Answer)]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Named {
        spec: Spec,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Spec {
        #[serde(default)]
        name: String,
    }
    let mut services = Vec::new();
    for (name, answer) in answers {
        if name != "service" {
            continue;
        }
        match answer {
            Answer::Http { status: 200, body } => {
                let named: Named = serde_json::from_str(body)
                    .map_err(|e| format!("the Docker Engine API's service cannot be read: {e}"))?;
                services.push((named.spec.name, body.trim_end().to_owned()));
            }
            Answer::Http { body, .. } => return Err(error_response(body)),
            Answer::Down => return Err(DAEMON_DOWN.to_owned()),
        }
    }
    services.sort();
    Ok(services.into_iter().map(|(_, body)| body).collect())
}

mod run;

#[cfg(test)]
mod tests;
