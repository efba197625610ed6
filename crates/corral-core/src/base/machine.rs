//! `infrastructure/machine`: the inventory. Machines are not resources; they say where the
//! other kinds' instances live and how to reach them.
//!
//! The `ssh:` settings become arguments of the operator's own `ssh` (`-l`, `-p`, `-i`, `-J`),
//! and ssh hands some of them to a local shell (`-J` becomes a ProxyCommand) or expands
//! `%`-tokens and `${ENV}` in them (`-i`). So each is checked against its grammar at load
//! time: no configuration value may reach a local shell or a token expansion, whoever wrote
//! the inventory (a pull request planned by CI, say).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::check::CheckContext;
use super::yaml::{Node, Span};

pub const KIND: &str = "infrastructure/machine";

/// One machine of the inventory, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// The machine's host name (a DNS name); corral connects to `ip`.
    pub hostname: String,
    pub ip: IpAddr,
    #[serde(default)]
    pub ssh: SshSpec,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// How to reach a machine; anything left out comes from `~/.ssh/config` (or the file given
/// with `--ssh-config`), as with plain `ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// A POSIX user name: letters, digits, `.`, `_`, `-`, not starting with `-`.
    pub user: Option<String>,
    /// 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// A path, `~/` allowed; no `%`, `$` or control characters, not starting with `-`.
    pub identity_file: Option<String>,
    /// Jump hosts, `[user@]host[:port]` separated by commas; host is a DNS name, an IPv4
    /// address or a bracketed IPv6 address.
    pub proxy_jump: Option<String>,
}

/// A machine of the loaded configuration.
#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub spec: MachineSpec,
}

const USER_HELP: &str =
    "a user name is letters, digits, `.`, `_` and `-`, and does not start with `-`";
const PORT_HELP: &str = "a port is a number from 1 to 65535";
const IDENTITY_FILE_HELP: &str = "write a path to the key file (`~/` may start it); ssh would expand `%` and `$` in it, so they are not allowed, nor control characters or a leading `-`";
const PROXY_JUMP_HELP: &str = "write jump hosts as `[user@]host[:port]`, separated by commas; host is a DNS name, an IPv4 address or an IPv6 address in brackets (ssh runs this value through a shell, so nothing else is allowed)";
const HOSTNAME_HELP: &str =
    "a host name is dot-separated labels of letters, digits, `-` and `_`, e.g. `n1.example.com`";
const IP_HELP: &str = "write an IPv4 or IPv6 address, e.g. `10.0.0.5`";

impl MachineSpec {
    /// Checks what reaches the operator's `ssh` (and the host name) against its grammar.
    pub fn check(&self, ctx: &mut CheckContext) {
        if !is_dns_name(&self.hostname) {
            ctx.error(
                &["hostname"],
                format!("`{}` is not a host name", self.hostname),
                "here",
            )
            .help = Some(HOSTNAME_HELP.into());
        }
        let ssh = &self.ssh;
        if let Some(user) = &ssh.user {
            if !is_user_name(user) {
                ctx.error(
                    &["ssh", "user"],
                    format!("`{}` is not a valid SSH user name", user.escape_debug()),
                    "here",
                )
                .help = Some(USER_HELP.into());
            }
        }
        if ssh.port == Some(0) {
            ctx.error(
                &["ssh", "port"],
                "port 0 is not a port to connect to",
                "here",
            )
            .help = Some(PORT_HELP.into());
        }
        if let Some(path) = &ssh.identity_file {
            if let Err(why) = check_identity_file(path) {
                ctx.error(
                    &["ssh", "identity_file"],
                    format!(
                        "`{}` is not a usable identity file: {why}",
                        path.escape_debug()
                    ),
                    "here",
                )
                .help = Some(IDENTITY_FILE_HELP.into());
            } else if ctx.connecting && !expand_home(path).is_file() {
                // ssh would silently try other keys and fail with "Permission denied".
                ctx.error(
                    &["ssh", "identity_file"],
                    format!(
                        "there is no identity file `{}` on this machine",
                        expand_home(path).display()
                    ),
                    "here",
                )
                .help = Some(
                    "give the path of an existing private key, or leave `identity_file` out to use the agent and ~/.ssh/config".into(),
                );
            }
        }
        if let Some(jump) = &ssh.proxy_jump {
            if let Err(hop) = check_proxy_jump(jump) {
                ctx.error(
                    &["ssh", "proxy_jump"],
                    format!("`{}` is not a jump host", hop.escape_debug()),
                    "here",
                )
                .help = Some(PROXY_JUMP_HELP.into());
            }
        }
    }
}

/// The grammar of the field whose value holds `span`, as a hint for errors found while
/// decoding (`port: 70000`, `ip: 10.0.0`).
pub fn hint(spec: &Node, span: Span) -> Option<&'static str> {
    let fields: [(&[&str], &str); 6] = [
        (&["hostname"], HOSTNAME_HELP),
        (&["ip"], IP_HELP),
        (&["ssh", "user"], USER_HELP),
        (&["ssh", "port"], PORT_HELP),
        (&["ssh", "identity_file"], IDENTITY_FILE_HELP),
        (&["ssh", "proxy_jump"], PROXY_JUMP_HELP),
    ];
    fields.into_iter().find_map(|(path, help)| {
        let node = path.iter().try_fold(spec, |node, key| node.get(key))?;
        (node.span.start <= span.start && span.end <= node.span.end).then_some(help)
    })
}

/// POSIX portable user names: the portable filename characters, no leading `-`.
fn is_user_name(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 256
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Dot-separated labels of letters, digits, `-` and `_` (`_` for names of `~/.ssh/config`
/// host aliases), each 1 to 63 characters, not starting or ending with `-`.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}

/// A jump host's host: a DNS name, an IPv4 address or a bracketed IPv6 address. Names that
/// look like addresses (all digits and dots) must be addresses.
fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().is_ok();
    }
    is_dns_name(host)
}

fn is_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// One `[user@]host[:port]` hop.
fn is_hop(hop: &str) -> bool {
    let (user, rest) = match hop.split_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, hop),
    };
    let (host, port) = if rest.starts_with('[') {
        match rest.find(']') {
            Some(end) => {
                let (host, after) = rest.split_at(end + 1);
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    user.is_none_or(is_user_name) && is_host(host) && port.is_none_or(is_port)
}

/// `Err(hop)` names the first hop that is not `[user@]host[:port]`.
fn check_proxy_jump(jump: &str) -> Result<(), &str> {
    match jump.split(',').find(|hop| !is_hop(hop)) {
        Some(hop) => Err(hop),
        None => Ok(()),
    }
}

/// `~/x` → `$HOME/x`, as ssh itself reads `IdentityFile`.
pub fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(path),
    }
}

fn check_identity_file(path: &str) -> Result<(), IdentityFileProblem> {
    if path.is_empty() {
        return Err(IdentityFileProblem::Empty);
    }
    if path.starts_with('-') {
        return Err(IdentityFileProblem::Dash);
    }
    if path.contains(['%', '$']) {
        return Err(IdentityFileProblem::Expansion);
    }
    if path.chars().any(char::is_control) {
        return Err(IdentityFileProblem::Control);
    }
    if path.starts_with('~') && !path.starts_with("~/") {
        return Err(IdentityFileProblem::Tilde);
    }
    Ok(())
}

/// Why an `identity_file` is refused (said after the path, in a configuration error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum IdentityFileProblem {
    #[error("it is empty")]
    Empty,
    #[error("it starts with `-`")]
    Dash,
    #[error("it holds `%` or `$`")]
    Expansion,
    #[error("it holds a control character")]
    Control,
    #[error("only `~/` may start it")]
    Tilde,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_jump_takes_hops_and_nothing_else() {
        for good in [
            "bastion",
            "jump.example.com",
            "admin@bastion:2222",
            "10.0.0.1",
            "ops@10.0.0.1:22",
            "[2001:db8::1]",
            "u@[::1]:2200",
            "a@b,c:22,[::1]",
            "bastion_prod",
        ] {
            assert_eq!(check_proxy_jump(good), Ok(()), "{good}");
        }
        for (bad, hop) in [
            ("u|touch${IFS}/tmp/x|@h", "u|touch${IFS}/tmp/x|@h"),
            ("h;id", "h;id"),
            ("a,,b", ""),
            ("", ""),
            ("ssh://u@h:22", "ssh://u@h:22"),
            ("-oProxyCommand=id", "-oProxyCommand=id"),
            ("u@h:0", "u@h:0"),
            ("u@h:65536", "u@h:65536"),
            ("h:22:22", "h:22:22"),
            ("a@b@c", "a@b@c"),
            ("::1", "::1"),
            ("[::1", "[::1"),
            ("[::1]x", "[::1]x"),
            ("[fe80::1%eth0]", "[fe80::1%eth0]"),
            ("999.1.1.1", "999.1.1.1"),
            ("h$(id)", "h$(id)"),
            ("good,h `id`", "h `id`"),
            ("%h", "%h"),
            ("-bad.example", "-bad.example"),
            ("h\n", "h\n"),
        ] {
            assert_eq!(check_proxy_jump(bad), Err(hop), "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_posix_portable() {
        for good in ["root", "deploy", "a.b_c-d", "_svc", "1"] {
            assert!(is_user_name(good), "{good}");
        }
        for bad in [
            "",
            "-oProxyCommand=id",
            "u|id",
            "a b",
            "u%h",
            "u$X",
            "ü",
            "a@b",
        ] {
            assert!(!is_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn identity_files_cannot_expand() {
        for good in ["~/.ssh/id_ed25519", "/etc/corral/key", "keys/lab key"] {
            assert_eq!(check_identity_file(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-oProxyCommand=id",
            "~/.ssh/%u",
            "${HOME}/key",
            "/tmp/a\nb",
            "~root/.ssh/id",
        ] {
            assert!(check_identity_file(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_names_are_dns_names() {
        for good in ["n1", "node-1.example.com", "vm_1", "a"] {
            assert!(is_dns_name(good), "{good}");
        }
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "a b",
            "a;b",
            &"x".repeat(64),
        ] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
    }
}
