//! The shape of a lab — its hosts, their names and addresses — and the files `lab up` writes
//! for it (`ssh_config`, `known_hosts`, `inventory.yaml`). Pure functions of the layout, so
//! they are tested without Docker.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use super::LabError;

/// Host `nI` gets the address `.10+I` of the lab's /24.
const FIRST_HOST_OFFSET: u8 = 10;
/// `.10 + 244 = .254`, the last usable address of a /24.
pub(crate) const MAX_MACHINES: u32 = 244;

/// Label put on every container and network of a lab; its value is the lab's name.
pub(crate) const LAB_LABEL: &str = "io.corral.lab";
/// Label naming the lab host a container plays (`n1`, …).
pub(crate) const HOST_LABEL: &str = "io.corral.lab.host";
/// Label holding the lab host's address.
pub(crate) const IP_LABEL: &str = "io.corral.lab.ip";
/// Label saying whether the host is light (no Docker engine or glusterd running).
pub(crate) const LIGHT_LABEL: &str = "io.corral.lab.light";

/// One lab host: `n1` at `10.213.0.11` in the container `corral-n1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabHost {
    pub name: String,
    pub ip: Ipv4Addr,
    pub container: String,
}

/// A lab's name, network and hosts, derived from `lab up`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabLayout {
    pub name: String,
    pub network: String,
    pub subnet: String,
    pub hosts: Vec<LabHost>,
}

impl LabLayout {
    pub(crate) fn new(name: &str, machines: u32, subnet: &str) -> Result<Self, LabError> {
        validate_name(name)?;
        if machines == 0 || machines > MAX_MACHINES {
            return Err(LabError::InvalidMachines { machines });
        }
        let base = parse_subnet(subnet)?;
        let hosts = (1..=machines)
            .map(|i| {
                let [a, b, c, _] = base.octets();
                // machines <= 244 keeps this within one octet.
                let last = FIRST_HOST_OFFSET.saturating_add(u8::try_from(i).unwrap_or(u8::MAX));
                LabHost {
                    name: format!("n{i}"),
                    ip: Ipv4Addr::new(a, b, c, last),
                    container: format!("{name}-n{i}"),
                }
            })
            .collect();
        Ok(Self {
            name: name.to_owned(),
            network: network_name(name),
            subnet: format!("{base}/24"),
            hosts,
        })
    }
}

pub(crate) fn network_name(lab: &str) -> String {
    format!("{lab}-net")
}

/// Lab names become container names, network names and label values.
pub(crate) fn validate_name(name: &str) -> Result<(), LabError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 48 {
        Ok(())
    } else {
        Err(LabError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Parses `a.b.c.0/24`; only /24 networks are supported.
pub(crate) fn parse_subnet(subnet: &str) -> Result<Ipv4Addr, LabError> {
    let invalid = |reason: &str| LabError::InvalidSubnet {
        subnet: subnet.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, prefix) = subnet
        .split_once('/')
        .ok_or_else(|| invalid("expected an IPv4 /24 such as 10.213.0.0/24"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| invalid("not an IPv4 address before the '/'"))?;
    if prefix != "24" {
        return Err(invalid("only /24 subnets are supported"));
    }
    if addr.octets()[3] != 0 {
        return Err(invalid("the address of a /24 ends in .0"));
    }
    Ok(addr)
}

/// `ssh_config` with one block per host, matching both its name and its address.
pub(crate) fn ssh_config(layout: &LabLayout, dir: &Path) -> String {
    let key = config_path(&dir.join("id_ed25519"));
    let known_hosts = config_path(&dir.join("known_hosts"));
    let mut out = format!(
        "# Written by `corral lab up` for the lab {:?}; rewritten by each `lab up`.\n",
        layout.name
    );
    for host in &layout.hosts {
        let _ = write!(
            out,
            "\nHost {name} {ip}\n    \
             HostName {ip}\n    \
             User root\n    \
             IdentityFile {key}\n    \
             IdentitiesOnly yes\n    \
             UserKnownHostsFile {known_hosts}\n    \
             StrictHostKeyChecking yes\n    \
             # OpenSSH's default post-quantum exchange costs about twice as much (TESTBED.md §6).\n    \
             KexAlgorithms curve25519-sha256\n    \
             BatchMode yes\n    \
             ConnectTimeout 10\n",
            name = host.name,
            ip = host.ip,
        );
    }
    out
}

/// ssh_config takes double quotes around arguments with spaces.
fn config_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().any(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text
    }
}

/// `inventory.yaml`: one `infrastructure/machine` document per host.
pub(crate) fn inventory(layout: &LabLayout) -> String {
    layout
        .hosts
        .iter()
        .map(|host| {
            format!(
                "kind: infrastructure/machine\n\
                 name: {name}\n\
                 specification:\n  \
                 hostname: {name}\n  \
                 ip: {ip}\n  \
                 ssh: {{ user: root }}\n  \
                 labels: {{ lab: {lab} }}\n",
                name = host.name,
                ip = host.ip,
                lab = layout.name,
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Turns `ssh-keyscan` output (`IP TYPE KEY` lines) into known_hosts lines naming each host
/// by both its name and address. Returns the lines and the hosts that answered no key.
pub(crate) fn known_hosts(layout: &LabLayout, keyscan: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    for host in &layout.hosts {
        let ip = host.ip.to_string();
        let mut keys: Vec<String> = keyscan
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let (who, kind, key) = (words.next()?, words.next()?, words.next()?);
                (who == ip).then(|| format!("{},{} {} {}\n", host.name, ip, kind, key))
            })
            .collect();
        if keys.is_empty() {
            missing.push(host.name.clone());
        }
        keys.sort();
        keys.dedup();
        out.extend(keys);
    }
    (out, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> LabLayout {
        LabLayout::new("corral", 3, "10.213.0.0/24").expect("valid layout")
    }

    #[test]
    fn hosts_are_numbered_from_dot_eleven() {
        let layout = three();
        let hosts: Vec<_> = layout
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.ip.to_string(), h.container.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("n1", "10.213.0.11".to_owned(), "corral-n1"),
                ("n2", "10.213.0.12".to_owned(), "corral-n2"),
                ("n3", "10.213.0.13".to_owned(), "corral-n3"),
            ]
        );
        assert_eq!(layout.network, "corral-net");
        assert_eq!(layout.subnet, "10.213.0.0/24");
    }

    #[test]
    fn the_largest_lab_ends_at_dot_254() {
        let layout = LabLayout::new("big", MAX_MACHINES, "10.1.2.0/24").expect("valid");
        assert_eq!(
            layout.hosts.last().map(|h| h.ip),
            Some(Ipv4Addr::new(10, 1, 2, 254))
        );
        assert!(matches!(
            LabLayout::new("big", MAX_MACHINES + 1, "10.1.2.0/24"),
            Err(LabError::InvalidMachines { .. })
        ));
        assert!(matches!(
            LabLayout::new("big", 0, "10.1.2.0/24"),
            Err(LabError::InvalidMachines { .. })
        ));
    }

    #[test]
    fn subnets_other_than_a_slash_24_are_refused() {
        for bad in [
            "10.213.0.0",
            "10.213.0.0/16",
            "10.213.0.5/24",
            "nope/24",
            "",
        ] {
            assert!(
                matches!(parse_subnet(bad), Err(LabError::InvalidSubnet { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_must_suit_docker() {
        for good in ["corral", "e2e-swarm_1", "a.b"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "a/b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inventory_has_one_machine_document_per_host() {
        let layout = LabLayout::new("corral", 2, "10.213.0.0/24").expect("valid");
        assert_eq!(
            inventory(&layout),
            "\
kind: infrastructure/machine
name: n1
specification:
  hostname: n1
  ip: 10.213.0.11
  ssh: { user: root }
  labels: { lab: corral }
---
kind: infrastructure/machine
name: n2
specification:
  hostname: n2
  ip: 10.213.0.12
  ssh: { user: root }
  labels: { lab: corral }
"
        );
    }

    #[test]
    fn ssh_config_matches_name_and_address_with_absolute_paths() {
        let layout = LabLayout::new("corral", 1, "10.213.0.0/24").expect("valid");
        let config = ssh_config(&layout, Path::new("/w/my lab"));
        assert!(config.contains("\nHost n1 10.213.0.11\n    HostName 10.213.0.11\n"));
        assert!(config.contains("    IdentityFile \"/w/my lab/id_ed25519\"\n"));
        assert!(config.contains("    UserKnownHostsFile \"/w/my lab/known_hosts\"\n"));
        assert!(config.contains("    StrictHostKeyChecking yes\n"));
        assert!(config.contains("    KexAlgorithms curve25519-sha256\n"));
        assert!(config.contains("    IdentitiesOnly yes\n"));
        assert!(config.contains("    User root\n"));
    }

    #[test]
    fn known_hosts_names_hosts_by_name_and_address() {
        let layout = three();
        let scan = "\
# 10.213.0.11:22 SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7
10.213.0.11 ssh-ed25519 AAAAkey1
10.213.0.12 ssh-ed25519 AAAAkey2
10.213.0.12 ecdsa-sha2-nistp256 AAAAkey2e
10.9.9.9 ssh-ed25519 AAAAstranger
";
        let (lines, missing) = known_hosts(&layout, scan);
        assert_eq!(
            lines,
            "n1,10.213.0.11 ssh-ed25519 AAAAkey1\n\
             n2,10.213.0.12 ecdsa-sha2-nistp256 AAAAkey2e\n\
             n2,10.213.0.12 ssh-ed25519 AAAAkey2\n"
        );
        assert_eq!(missing, ["n3"]);
    }
}
