//! `os/firewall`: one nftables table, `inet corral`, owned by corral.
//!
//! corral never flushes the ruleset: it replaces its own table in one `nft -f` transaction
//! (`table inet corral {}` / `delete table inet corral` / the table), so Docker's tables
//! (`ip filter`, `ip nat`, …, through iptables-nft) and anything else stay as they are. The
//! table has one chain, on the `input` hook: what comes to the host itself.
//!
//! Several resources may select a machine (a baseline, the Swarm ports, the Gluster ports):
//! each keeps its rules in a file of its own, `/etc/corral/firewall.d/NAME.nft` (`add rule
//! inet corral input …`, and the input policy), which the main file
//! (`/etc/corral/firewall.nft`, the same for every resource) includes after it made the
//! table again: one load is one transaction over every resource's rules. The input policy
//! is claimed: two resources wanting different policies on a machine is a load error. Traffic to
//! containers is forwarded (published ports are DNATed in `prerouting`), so Docker's
//! published ports keep working whatever the input policy; Swarm's own traffic (2377/tcp,
//! 7946/tcp+udp, 4789/udp, ESP) and Gluster's reach the host and need allow rules (the
//! `modules/swarm/ports` and `modules/gluster/ports` modules). Established and related
//! traffic, loopback and ICMP are always accepted, invalid packets dropped.
//!
//! The main file is loaded at boot by `corral-firewall.service`. Facts: the files, the
//! live table (`nft list table`), and the
//! digest of the live table corral saw after its last load (`/var/lib/corral/firewall.sha`),
//! so that a rule added or removed by hand shows as drift. Every change runs under the
//! access guard: the host loads the previous file again unless a new login works.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::file;
use super::{AccessGuard, Claim, Kind, LinkContext, Links, MachineKind, Step};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/firewall";

/// The ruleset corral loads, at apply and at boot: the table, then every resource's file.
pub const MAIN_PATH: &str = "/etc/corral/firewall.nft";
/// Where each resource's rules are.
const RULES_DIR: &str = "/etc/corral/firewall.d";
/// The digest of `nft list table inet corral` after corral's last load.
const SEEN_PATH: &str = "/var/lib/corral/firewall.sha";
/// The unit that loads [`RULES_PATH`] at boot.
const UNIT: &str = "corral-firewall.service";
const UNIT_PATH: &str = "/etc/systemd/system/corral-firewall.service";

const TABLE_KEY: &str = "firewall:table";
/// The listing of the live table after corral's last load, for the rules drift changed.
const SEEN_LISTING: &str = "/var/lib/corral/firewall.seen";
/// Where corral's connection comes from, as the host sees it.
const CONNECTION_KEY: &str = "firewall:connection";
/// At most this many differing lines of the live table are read.
const DRIFT_LINES: usize = 20;

/// `os/firewall` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallSpec {
    pub machines: Selector,
    /// What happens to incoming traffic that no rule of any resource allows: `drop` or
    /// `accept`. Set by one resource (a baseline); others only add rules. With no resource
    /// setting it, it is `accept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_policy: Option<Policy>,
    /// What may come in.
    #[serde(default)]
    pub allow: Vec<Rule>,
    /// Each rule's sources as networks, filled in at load (machine selectors resolved to
    /// the machines' addresses).
    #[serde(skip)]
    #[schemars(skip)]
    pub sources: Vec<Option<Vec<IpNet>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Drop,
    Accept,
}

/// One allow rule.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub protocol: Protocol,
    /// Destination ports (tcp and udp only): numbers, or ranges written `"8000-8100"`.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// Where from: `any` (the default), networks (`["10.0.0.0/24", "192.0.2.7"]`), or
    /// machines of the inventory (`{machines: all}`, `{machines: [n1]}`, `{machines:
    /// {labels: {role: edge}}}`).
    #[serde(default)]
    pub from: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Esp,
}

impl Protocol {
    fn word(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Esp => "esp",
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(into = "String")]
#[schemars(with = "PortSchema")]
pub struct PortRange(u16, u16);

/// How a port is written: a number or `"LOW-HIGH"`.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the schema's shape only
enum PortSchema {
    Number(u16),
    Range(String),
}

impl From<PortRange> for String {
    fn from(p: PortRange) -> String {
        p.to_string()
    }
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.0..=self.1).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 == self.1 {
            true => write!(f, "{}", self.0),
            false => write!(f, "{}-{}", self.0, self.1),
        }
    }
}

fn port<E: de::Error>(value: u64) -> Result<u16, E> {
    match u16::try_from(value) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(E::custom(format!("port {value} is out of range (1-65535)"))),
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port (1-65535) or a range \"LOW-HIGH\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                let p = port(v)?;
                Ok(PortRange(p, p))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("port {v} is out of range (1-65535)"))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                let parse = |s: &str| {
                    s.trim()
                        .parse::<u64>()
                        .map_err(|_| E::custom(format!("`{v}` is not a port or a range LOW-HIGH")))
                        .and_then(port)
                };
                let (low, high) = match v.split_once('-') {
                    Some((low, high)) => (parse(low)?, parse(high)?),
                    None => {
                        let p = parse(v)?;
                        (p, p)
                    }
                };
                if low > high {
                    return Err(E::custom(format!("the range `{v}` ends before it starts")));
                }
                Ok(PortRange(low, high))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Where a rule's traffic may come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Source {
    #[default]
    Any,
    Networks(Vec<IpNet>),
    Machines {
        machines: Selector,
    },
}

impl schemars::JsonSchema for Source {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Source".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let selector = generator.subschema_for::<Selector>();
        schemars::json_schema!({
            "description": "`any`, a list of networks (CIDR or address), or `{machines: SELECTOR}`",
            "anyOf": [
                { "const": "any" },
                { "type": "array", "items": { "type": "string" } },
                {
                    "type": "object",
                    "properties": { "machines": selector },
                    "required": ["machines"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A network written as a CIDR or an address.
fn network<E: de::Error>(text: &str) -> Result<IpNet, E> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            E::custom(format!(
                "`{text}` is not a network: write a CIDR (`10.0.0.0/24`) or an address"
            ))
        })
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Net(IpNet);
        impl<'de> Deserialize<'de> for Net {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                network(&text).map(Net)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Source;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`any`, a list of networks, or `{machines: …}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Source, E> {
                match v {
                    "any" => Ok(Source::Any),
                    other => Err(E::custom(format!(
                        "`{other}` is not a source: write `any`, a list of networks, or `{{machines: …}}`"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Source, A::Error> {
                let mut networks = Vec::new();
                while let Some(Net(net)) = seq.next_element()? {
                    networks.push(net);
                }
                Ok(Source::Networks(networks))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
                let mut machines = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "machines" => machines = Some(map.next_value::<Selector>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["machines"]));
                        }
                    }
                }
                machines
                    .map(|machines| Source::Machines { machines })
                    .ok_or_else(|| de::Error::missing_field("machines"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Kind for FirewallSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        for (index, rule) in self.allow.iter().enumerate() {
            let at = index.to_string();
            match (rule.protocol, rule.ports.is_empty()) {
                (Protocol::Esp, false) => {
                    ctx.error(&["allow", &at, "ports"], "ESP has no ports", "ports")
                        .help = Some("remove `ports` from the ESP rule".into());
                }
                (Protocol::Tcp | Protocol::Udp, true) => {
                    ctx.error(
                        &["allow", &at],
                        format!("a {} rule needs `ports`", rule.protocol.word()),
                        "no ports",
                    )
                    .help = Some("list the ports to open, e.g. `ports: [22]`".into());
                }
                _ => {}
            }
        }
        self
    }

    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        self.sources = self
            .allow
            .iter()
            .enumerate()
            .map(|(index, rule)| match &rule.from {
                Source::Any => None,
                Source::Networks(networks) => Some(networks.clone()),
                Source::Machines { machines } => {
                    let selected: Vec<IpNet> = links
                        .machines
                        .iter()
                        .filter(|(name, labels)| machines.matches(name, labels))
                        .filter_map(|(name, _)| links.machine_ips.get(name))
                        .map(|ip| IpNet::from(*ip))
                        .collect();
                    if selected.is_empty() {
                        ctx.error(
                            &["allow", &index.to_string(), "from"],
                            "these machines are none of the inventory's",
                            "selects nothing",
                        )
                        .help = Some("a rule from no machine allows nothing: fix the selector, or remove the rule".into());
                    }
                    Some(selected)
                }
            })
            .collect();
        // The policy comes last: a `drop` loaded before the rules that allow the cluster's
        // traffic would cut it meanwhile (the rules are all in the table once each is).
        match self.input_policy {
            Some(_) => links
                .firewall_rules
                .iter()
                .map(|name| Address::new(KIND, name, None))
                .collect(),
            None => Vec::new(),
        }
    }

    /// A firewall that only adds rules: the one that sets `drop` comes after it.
    fn declare(&self, address: &Address, links: &mut Links) {
        if self.input_policy.is_none() {
            links.firewall_rules.push(address.name.clone());
        }
    }

    /// Removing a resource's rules can cut corral's access as much as writing them.
    fn deletion_guard(change: &ResourceChange) -> Option<super::AccessGuard> {
        Some(super::AccessGuard {
            paths: vec![rules_path(&change.address.name), MAIN_PATH.into()],
            reload: RELOAD.into(),
        })
    }

    /// The table is loaded again without the resource's rules.
    fn after_file_deleted() -> String {
        REMOVE.into()
    }
}

impl FirewallSpec {
    fn policy(&self) -> Option<&'static str> {
        self.input_policy.map(|p| match p {
            Policy::Drop => "drop",
            Policy::Accept => "accept",
        })
    }

    /// This resource's rules, as the main file includes them.
    pub fn rules(&self, name: &str) -> String {
        let mut text =
            format!("# Managed by corral ({KIND}.{name}); local changes are overwritten.\n");
        if let Some(policy) = self.policy() {
            text.push_str(&format!(
                "add chain inet corral input {{ type filter hook input priority filter; policy {policy}; }}\n"
            ));
        }
        for (index, rule) in self.allow.iter().enumerate() {
            let sources = self.sources.get(index).cloned().flatten();
            let what = match rule.protocol {
                Protocol::Esp => "meta l4proto esp".to_owned(),
                p => {
                    let ports: Vec<String> = rule.ports.iter().map(PortRange::to_string).collect();
                    format!("{} dport {{ {} }}", p.word(), ports.join(", "))
                }
            };
            match sources {
                None => text.push_str(&format!("add rule inet corral input {what} accept\n")),
                Some(networks) => {
                    let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = networks
                        .into_iter()
                        .partition(|n| matches!(n, IpNet::V4(_)));
                    for (family, nets) in [("ip", v4), ("ip6", v6)] {
                        if nets.is_empty() {
                            continue;
                        }
                        let list: Vec<String> =
                            nets.iter().map(|n| n.trunc().to_string()).collect();
                        text.push_str(&format!(
                            "add rule inet corral input {family} saddr {{ {} }} {what} accept\n",
                            list.join(", ")
                        ));
                    }
                }
            }
        }
        text
    }

    /// How a file of this resource's differs from the host's.
    fn file_changes(
        &self,
        path: &str,
        text: &str,
        facts: &HostFacts,
    ) -> Result<(Action, Vec<AttrChange>), FactError> {
        file::root_file_changes(&file::root_file(path, text.as_bytes(), "0600"), facts)
    }
}

/// The file of resource `name`'s rules.
pub fn rules_path(name: &str) -> String {
    format!("{RULES_DIR}/{name}.nft")
}

/// The main file: the table made again, then every resource's rules, in one transaction.
/// The same for every resource.
pub fn main_file() -> String {
    format!(
        "# Managed by corral ({KIND}): table inet corral, then each resource's rules.\n# Replaces table inet corral only: Docker's and others' tables stay.\ntable inet corral {{}}\ndelete table inet corral\ntable inet corral {{\n\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tct state established,related accept\n\t\tct state invalid drop\n\t\tiif \"lo\" accept\n\t\tmeta l4proto {{ icmp, ipv6-icmp }} accept\n\t}}\n}}\ninclude \"{RULES_DIR}/*.nft\"\n"
    )
}

/// The live table's state: loaded or not, as corral last saw it or not, loaded at boot.
#[derive(Debug, PartialEq, Eq)]
struct Live {
    loaded: bool,
    as_seen: bool,
    at_boot: bool,
    /// Lines of the live listing that corral did not load (added outside corral).
    added: Vec<String>,
    /// Lines corral loaded that the live listing lacks (removed outside corral).
    removed: Vec<String>,
}

fn live(facts: &HostFacts) -> Result<Live, FactError> {
    let out = facts.get(TABLE_KEY)?;
    if out.rc != 0 {
        return Err(FactError::unexpected(TABLE_KEY, out));
    }
    let (mut now, mut seen, mut at_boot) = (None, None, false);
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for line in out.output.lines() {
        // `diff`'s lines: `> ` only in the live table, `< ` only in corral's last load.
        if let Some(rule) = line.strip_prefix("> ") {
            added.push(rule.trim().to_owned());
            continue;
        }
        if let Some(rule) = line.strip_prefix("< ") {
            removed.push(rule.trim().to_owned());
            continue;
        }
        match line.split_once(' ') {
            Some(("table", digest)) => now = Some(digest.to_owned()),
            Some(("seen", digest)) => seen = Some(digest.to_owned()),
            Some(("boot", state)) => at_boot = state == "enabled",
            _ => {}
        }
    }
    let loaded = now.as_deref().is_some_and(|d| d != "absent");
    Ok(Live {
        loaded,
        as_seen: loaded && now == seen,
        at_boot,
        added,
        removed,
    })
}

/// Loads the main file (the table, then every resource's rules) and notes the digest of
/// the table as loaded; once no resource's file is left, no table at all, and nothing at
/// boot.
pub const RELOAD: &str = "if [ -e /etc/corral/firewall.nft ] && ls /etc/corral/firewall.d/*.nft >/dev/null 2>&1; then if ! nft -f /etc/corral/firewall.nft; then echo 'corral: nft could not load /etc/corral/firewall.nft'; exit 1; fi; mkdir -p /var/lib/corral; nft list table inet corral > /var/lib/corral/firewall.seen; sha256sum < /var/lib/corral/firewall.seen | cut -d' ' -f1 > /var/lib/corral/firewall.sha; else nft delete table inet corral 2>/dev/null || true; systemctl disable corral-firewall.service >/dev/null 2>&1 || true; rm -f /etc/corral/firewall.nft /etc/systemd/system/corral-firewall.service /var/lib/corral/firewall.sha /var/lib/corral/firewall.seen; systemctl daemon-reload; fi";

/// Prints `ssh CLIENT CLIENT_PORT SERVER SERVER_PORT`: `$SSH_CONNECTION` of the login the
/// facts are read over. sudo drops it from the environment, so it is read from the nearest
/// process above that has it (sudo itself, or the login's shell); the probe runs as root.
const CONNECTION_PROBE: &str = r#"c=${SSH_CONNECTION:-}; p=$$
while [ -z "$c" ] && [ "$p" -gt 1 ]; do
  c=$(tr '\000' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p' | head -n 1)
  p=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f2); [ -n "$p" ] || p=1
done
echo "ssh $c""#;

/// Where corral connects from and the SSH port it connects to, as the host sees them;
/// `None` when the facts do not say (not over SSH, or facts of an older corral).
fn connection(facts: &HostFacts) -> Option<(IpAddr, u16)> {
    let out = facts.get(CONNECTION_KEY).ok().filter(|out| out.rc == 0)?;
    let line = out.output.lines().find_map(|l| l.strip_prefix("ssh "))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [client, _, _, port] = fields.as_slice() else {
        return None;
    };
    let client = match client.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some((client, port.parse().ok()?))
}

impl FirewallSpec {
    /// Why this resource would shut out corral's own connection (from `client` to SSH on
    /// `port`), if it would: its SSH rule admits other sources only, or, setting `drop`,
    /// it has no SSH rule.
    fn shuts_out(&self, client: IpAddr, port: u16) -> Option<String> {
        let ssh: Vec<usize> = (0..self.allow.len())
            .filter(|&i| {
                let rule = &self.allow[i];
                rule.protocol == Protocol::Tcp
                    && rule.ports.iter().any(|r| r.0 <= port && port <= r.1)
            })
            .collect();
        let admits = |i: usize| match self.sources.get(i).cloned().flatten() {
            None => true,
            Some(networks) => networks.iter().any(|n| n.contains(&client)),
        };
        if ssh.iter().any(|&i| admits(i)) {
            return None;
        }
        let consequence =
            "the next login would fail and the access guard would roll this change back";
        if let Some(&first) = ssh.first() {
            let sources: Vec<String> = self
                .sources
                .get(first)
                .cloned()
                .flatten()
                .unwrap_or_default()
                .iter()
                .map(|n| n.trunc().to_string())
                .collect();
            return Some(format!(
                "the rule for SSH ({port}/tcp, `allow[{first}]`) admits only {}, and corral connects from {client}: {consequence} (add {client} to its `from:`)",
                sources.join(", ")
            ));
        }
        (self.input_policy == Some(Policy::Drop)).then(|| {
            format!(
                "`input_policy: drop` with no rule for SSH ({port}/tcp), which corral connects over from {client}: unless another os/firewall resource on this machine opens it, {consequence}"
            )
        })
    }
}

/// What removing a resource does once its file is deleted.
pub const REMOVE: &str = RELOAD;

impl MachineKind for FirewallSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    /// A reload replaces the rules: one machine at a time, each proven healthy before the
    /// next, without a settle time.
    fn rolling(&self) -> Option<crate::base::envelope::Rolling> {
        Some(crate::base::envelope::Rolling::immediate())
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, name: &str) -> Vec<Probe> {
        vec![
            Probe {
                key: TABLE_KEY.into(),
                // The lines that differ from corral's last load, when it kept its listing.
                script: format!(
                    "if t=$(nft list table inet corral 2>/dev/null); then echo \"table $(printf '%s\\n' \"$t\" | sha256sum | cut -d' ' -f1)\"; if [ -f {SEEN_LISTING} ]; then printf '%s\\n' \"$t\" | diff -- {SEEN_LISTING} - | grep '^[<>] ' | head -n {DRIFT_LINES}; fi; else echo 'table absent'; fi; echo \"seen $(cat {SEEN_PATH} 2>/dev/null)\"; echo \"boot $(systemctl is-enabled {UNIT} 2>/dev/null)\""
                ),
            },
            Probe {
                key: CONNECTION_KEY.into(),
                script: CONNECTION_PROBE.into(),
            },
            file::probe(&rules_path(name), file::Read::Content),
            file::probe(MAIN_PATH, file::Read::Content),
        ]
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let own = rules_path(name);
        let (file_action, mut changes) = self.file_changes(&own, &self.rules(name), facts)?;
        changes.extend(self.file_changes(MAIN_PATH, &main_file(), facts)?.1);
        let live = live(facts)?;
        let (own_changes, main_changes): (Vec<AttrChange>, Vec<AttrChange>) = changes
            .into_iter()
            .partition(|c| c.name.starts_with(own.as_str()));
        let mut attributes = file::shown_as_part(&own, own_changes);
        attributes.extend(file::shown_as_part(MAIN_PATH, main_changes));
        let scalar = |s: &str| AttrValue::Scalar(s.to_owned());
        if !live.loaded {
            attributes.push(AttrChange::new(
                "table inet corral",
                scalar("(not loaded)"),
                scalar("loaded"),
            ));
        } else if !live.as_seen {
            // The rules themselves, when the host kept what corral loaded last.
            for rule in &live.added {
                attributes.push(AttrChange::new(
                    "table inet corral, added outside corral",
                    scalar(rule),
                    AttrValue::Absent,
                ));
            }
            for rule in &live.removed {
                attributes.push(AttrChange::new(
                    "table inet corral, removed outside corral",
                    AttrValue::Absent,
                    scalar(rule),
                ));
            }
            if live.added.is_empty() && live.removed.is_empty() {
                attributes.push(AttrChange::new(
                    "table inet corral",
                    scalar("changed outside corral"),
                    scalar("as configured"),
                ));
            }
        }
        if !live.at_boot {
            attributes.push(AttrChange::new(
                "loaded at boot",
                AttrValue::Bool(false),
                AttrValue::Bool(true),
            ));
        }
        Ok(file::diff_with_file(file_action, attributes))
    }

    fn steps(&self, name: &str, _change: &ResourceChange, _facts: &HostFacts) -> Vec<Step> {
        let own = rules_path(name);
        let (rules, main) = (self.rules(name), main_file());
        let unit = format!(
            "[Unit]\nDescription=corral's nftables table (inet corral)\nWants=network-pre.target\nAfter=nftables.service\nBefore=network-pre.target\nDefaultDependencies=no\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/sbin/nft -f {MAIN_PATH}\n\n[Install]\nWantedBy=multi-user.target\n"
        );
        let mut script =
            format!("set -e\nmkdir -p {RULES_DIR}\nchmod 700 /etc/corral {RULES_DIR}\n");
        // Checked before it replaces anything: `nft -c` reads the whole transaction (this
        // resource's new rules with the other resources' files) without loading it.
        script.push_str(&format!(
            "check=$(mktemp -d)\ntrap 'rm -rf \"$check\"' EXIT\nmkdir \"$check/d\"\nfor f in {RULES_DIR}/*.nft; do if [ -e \"$f\" ] && [ \"$f\" != {own} ]; then cp \"$f\" \"$check/d/\"; fi; done\nprintf '%s' {rules} > \"$check/d/\"{base}\nprintf '%s' {main} | sed \"s|{RULES_DIR}/|$check/d/|\" > \"$check/main.nft\"\nif ! out=$(nft -c -f \"$check/main.nft\" 2>&1); then printf '%s\\n' \"$out\"; echo 'corral: nft refused the ruleset'; exit 1; fi\n",
            own = quote(&own),
            rules = quote(&rules),
            main = quote(&main),
            base = quote(&format!("{name}.nft")),
        ));
        for (path, text, mode) in [
            (own.as_str(), rules.as_str(), "0600"),
            (MAIN_PATH, main.as_str(), "0600"),
            (UNIT_PATH, unit.as_str(), "0644"),
        ] {
            script.push_str(&file::write_script(&file::root_file(
                path,
                text.as_bytes(),
                mode,
            )));
        }
        script.push_str(&format!(
            "{RELOAD}\nsystemctl daemon-reload\nsystemctl enable {UNIT} >/dev/null 2>&1\n"
        ));
        vec![Step {
            description: format!(
                "check and load {own} with the other resources' rules (table inet corral), at boot too"
            ),
            script,
        }]
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        let mut claims = vec![Claim::new(format!("file {}", rules_path(name)), name)];
        if let Some(policy) = self.policy() {
            claims.push(Claim::new(
                "nftables input policy (table inet corral)",
                policy,
            ));
        }
        claims
    }

    fn managed_entry(&self, name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry::file(KIND, &rules_path(name)))
    }

    fn warnings(&self, _name: &str, facts: &HostFacts) -> Vec<String> {
        connection(facts)
            .and_then(|(client, port)| self.shuts_out(client, port))
            .into_iter()
            .collect()
    }

    fn access_guard(&self, name: &str) -> Option<AccessGuard> {
        Some(AccessGuard {
            paths: vec![rules_path(name), MAIN_PATH.into()],
            reload: RELOAD.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::yaml::{from_node, parse_documents};

    fn spec(yaml: &str) -> Result<FirewallSpec, String> {
        let node = parse_documents(yaml).unwrap().remove(0).root;
        from_node::<FirewallSpec>(&node).map_err(|e| e.message)
    }

    #[test]
    fn the_ruleset_replaces_its_own_table_only() {
        let mut firewall = spec(
            "machines: all\ninput_policy: drop\nallow:\n  - { protocol: tcp, ports: [22] }\n  - { protocol: tcp, ports: [2377, \"7946\"], from: { machines: all } }\n  - { protocol: udp, ports: [\"60000-61000\"], from: [10.1.2.3/16, \"2001:db8::1\"] }\n  - { protocol: esp, from: { machines: all } }\n",
        )
        .unwrap();
        let nets = |list: &[&str]| Some(list.iter().map(|n| n.parse().unwrap()).collect());
        firewall.sources = vec![
            None,
            nets(&["10.0.0.11/32", "10.0.0.12/32"]),
            nets(&["10.1.2.3/16", "2001:db8::1/128"]),
            nets(&["10.0.0.11/32", "10.0.0.12/32"]),
        ];
        let text = firewall.rules("cluster");
        for line in [
            "add chain inet corral input { type filter hook input priority filter; policy drop; }",
            "add rule inet corral input tcp dport { 22 } accept",
            "add rule inet corral input ip saddr { 10.0.0.11/32, 10.0.0.12/32 } tcp dport { 2377, 7946 } accept",
            // A network is written as its network address.
            "add rule inet corral input ip saddr { 10.1.0.0/16 } udp dport { 60000-61000 } accept",
            "add rule inet corral input ip6 saddr { 2001:db8::1/128 } udp dport { 60000-61000 } accept",
            "add rule inet corral input ip saddr { 10.0.0.11/32, 10.0.0.12/32 } meta l4proto esp accept",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let main = main_file();
        assert!(
            main.contains("table inet corral {}\ndelete table inet corral\ntable inet corral {\n"),
            "{main}"
        );
        assert!(
            main.contains("ct state established,related accept"),
            "{main}"
        );
        assert!(
            main.ends_with("include \"/etc/corral/firewall.d/*.nft\"\n"),
            "{main}"
        );
        assert!(!main.contains("flush") && !text.contains("flush"));
    }

    #[test]
    fn ports_and_sources_are_checked_where_written() {
        for (yaml, error) in [
            (
                "machines: all\nallow: [{ protocol: tcp, ports: [70000] }]",
                "port 70000 is out of range (1-65535)",
            ),
            (
                "machines: all\nallow: [{ protocol: tcp, ports: [0] }]",
                "port 0 is out of range",
            ),
            (
                "machines: all\nallow: [{ protocol: tcp, ports: [\"90-80\"] }]",
                "ends before it starts",
            ),
            (
                "machines: all\nallow: [{ protocol: tcp, ports: [22], from: [10.0.0.300/24] }]",
                "`10.0.0.300/24` is not a network",
            ),
            (
                "machines: all\nallow: [{ protocol: tcp, ports: [22], from: anywhere }]",
                "`anywhere` is not a source",
            ),
            ("machines: all\nallow: [{ protocol: icmp }]", "icmp"),
        ] {
            let message = spec(yaml).unwrap_err();
            assert!(message.contains(error), "{yaml}: {message}");
        }
    }

    #[test]
    fn the_live_table_is_compared_with_what_corral_loaded() {
        let facts = |output: &str| {
            let mut facts = HostFacts::default();
            facts.probes.insert(
                TABLE_KEY.into(),
                crate::facts::ProbeOutput {
                    rc: 0,
                    output: output.into(),
                },
            );
            facts
        };
        let loaded = live(&facts("table ab\nseen ab\nboot enabled\n")).unwrap();
        assert_eq!(
            loaded,
            Live {
                loaded: true,
                as_seen: true,
                at_boot: true,
                added: Vec::new(),
                removed: Vec::new(),
            }
        );
        let edited = live(&facts("table cd\nseen ab\nboot enabled\n")).unwrap();
        assert!(edited.loaded && !edited.as_seen);
        let none = live(&facts("table absent\nseen \nboot \n")).unwrap();
        assert_eq!(
            none,
            Live {
                loaded: false,
                as_seen: false,
                at_boot: false,
                added: Vec::new(),
                removed: Vec::new(),
            }
        );
    }

    fn recorded(case: &str, probe: &Probe) -> HostFacts {
        let mut facts = HostFacts::default();
        facts.probes.insert(
            probe.key.clone(),
            crate::facts::recorded::checked(
                &format!("firewall/{case}"),
                probe,
                "record it again on a lab host",
            ),
        );
        facts
    }

    fn probe(key: &str) -> Probe {
        let spec = spec("machines: all\n").unwrap();
        spec.probes("base")
            .into_iter()
            .find(|p| p.key == key)
            .unwrap()
    }

    /// Drift names the rules: a rule added by hand, and one corral loaded that is gone,
    /// from `nft list table` as the lab printed it after such edits.
    #[test]
    fn drift_shows_the_rules_that_differ() {
        let mut facts = recorded("table-edited", &probe(TABLE_KEY));
        let live = live(&facts).unwrap();
        assert!(live.loaded && !live.as_seen && live.at_boot);
        assert_eq!(live.added, ["tcp dport 8080 accept"]);
        assert_eq!(live.removed, ["meta l4proto { icmp, ipv6-icmp } accept"]);
        // The files as corral wrote them, so that the table is the only difference.
        let base =
            spec("machines: all\ninput_policy: drop\nallow:\n  - { protocol: tcp, ports: [22] }\n")
                .unwrap();
        for (case, path) in [
            ("rules-base", rules_path("base")),
            ("main", MAIN_PATH.to_owned()),
        ] {
            facts
                .probes
                .extend(recorded(case, &file::probe(&path, file::Read::Content)).probes);
        }
        let diff = base.diff("base", &facts).unwrap();
        let shown: Vec<(String, AttrValue, AttrValue)> = diff
            .attributes
            .into_iter()
            .map(|a| (a.name, a.before, a.after))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "table inet corral, added outside corral".to_owned(),
                    AttrValue::Scalar("tcp dport 8080 accept".into()),
                    AttrValue::Absent
                ),
                (
                    "table inet corral, removed outside corral".to_owned(),
                    AttrValue::Absent,
                    AttrValue::Scalar("meta l4proto { icmp, ipv6-icmp } accept".into())
                ),
            ]
        );
    }

    /// corral's own address, as the host saw it through sudo: a rule for SSH that leaves
    /// it out, or `drop` with no rule for SSH, is warned about; one that admits it is not.
    #[test]
    fn a_firewall_that_shuts_out_corral_is_warned_about() {
        let facts = recorded("connection-through-sudo", &probe(CONNECTION_KEY));
        let (client, port) = connection(&facts).unwrap();
        assert_eq!((client.to_string(), port), ("10.224.0.1".to_owned(), 22));
        let with = |yaml: &str, sources: Vec<Option<Vec<IpNet>>>| {
            let mut firewall = spec(yaml).unwrap();
            firewall.sources = sources;
            firewall.warnings("base", &facts)
        };
        let nets = |list: &[&str]| Some(list.iter().map(|n| n.parse().unwrap()).collect());
        let rule = "machines: all\ninput_policy: drop\nallow:\n  - { protocol: tcp, ports: [\"20-23\"], from: [10.9.9.0/24] }\n";
        let warned = with(rule, vec![nets(&["10.9.9.0/24"])]);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].contains("admits only 10.9.9.0/24, and corral connects from 10.224.0.1"),
            "{warned:?}"
        );
        let no_ssh = with(
            "machines: all\ninput_policy: drop\nallow:\n  - { protocol: tcp, ports: [80] }\n",
            vec![None],
        );
        assert!(
            no_ssh[0].contains("`input_policy: drop` with no rule for SSH (22/tcp)"),
            "{no_ssh:?}"
        );
        assert!(with(rule, vec![nets(&["10.9.9.0/24", "10.224.0.0/24"])]).is_empty());
        assert!(with(
            "machines: all\ninput_policy: drop\nallow:\n  - { protocol: tcp, ports: [22] }\n",
            vec![None]
        )
        .is_empty());
        // Only rules: another resource (the baseline) decides the policy and opens SSH.
        assert!(with(
            "machines: all\nallow:\n  - { protocol: tcp, ports: [80] }\n",
            vec![None]
        )
        .is_empty());
        // Facts of an older corral say nothing: no warning.
        assert!(spec(rule)
            .unwrap()
            .warnings("base", &HostFacts::default())
            .is_empty());
    }
}
