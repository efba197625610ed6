//! `os/sshd`: sshd settings, in a drop-in that sshd reads before its main file.
//!
//! Debian's `sshd_config` starts with `Include /etc/ssh/sshd_config.d/*.conf` (a main file
//! without it gets it at its top), and sshd keeps the first value it reads of a keyword, so a drop-in named `00-corral-NAME.conf`
//! wins over the main file and over later drop-ins. The truth is `sshd -T` (the effective
//! configuration, `Match` blocks aside): a setting that another file overrides shows as
//! drift, as does one changed by hand.
//!
//! A setting that would lock out the user corral connects as is refused in the plan, with
//! the reason: `PermitRootLogin no` (or `forced-commands-only`) when connecting as root,
//! `AllowUsers`/`AllowGroups` that leave that user out, `DenyUsers`/`DenyGroups` that name
//! it, `PubkeyAuthentication no`; and, at load, forbidding TCP forwarding on a machine
//! that another machine's `ssh.proxy_jump` goes through. A change is checked with
//! `sshd -t` before sshd reloads, and the previous file is put back when the check fails.
//! Every change also runs under the access guard (`apply::guard`): the host reverts it by
//! itself unless a new login works after it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file;
use super::{AccessGuard, Claim, Kind, LinkContext, Links, MachineKind, Step};
use crate::address::Address;
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/sshd";

/// `sshd -T`, the effective configuration as `keyword value` lines (lowercase keywords).
const EFFECTIVE_KEY: &str = "sshd:effective";
/// Whether the main file includes the drop-in directory, and who corral logs in as.
const LOGIN_KEY: &str = "sshd:login";
/// The setting lines of sshd's files, in the order sshd reads them ([`files_listing`]).
const FILES_KEY: &str = "sshd:files";
/// Where sshd reads drop-ins from.
const DROP_IN_DIR: &str = "/etc/ssh/sshd_config.d";

/// A shell snippet that prints the setting lines of sshd's main file `main` and of the
/// drop-ins `DIR/*.conf` in the order sshd reads them, one per line as `PHASE<TAB>FILE<TAB>
/// LINE<TAB>TEXT`: phase 1 is the main file above its `Include DIR/*.conf`, 2 the drop-ins
/// in name order, 3 the main file below the Include (without an Include, as corral will
/// write it: at the top). Comments, blank lines and `Match` blocks (which `sshd -T` leaves
/// out too) are not printed. sshd keeps the first value it reads of a keyword, so the
/// first line of a keyword here is the one in effect.
fn files_listing(main: &str, dir: &str) -> String {
    let include = format!(
        "^[[:space:]]*include[[:space:]]+{}/\\*\\.conf",
        dir.replace('.', "\\.")
    );
    format!(
        r#"(m={main}; n=$(grep -Ein {include} "$m" 2>/dev/null | head -n 1 | cut -d: -f1)
set -- {dir}/*.conf; [ -e "$1" ] || set --
[ -r "$m" ] || m=/dev/null
awk -v n="${{n:-0}}" 'FNR == 1 {{ inmatch = 0 }} phase == 1 && FNR >= n {{ next }} phase == 3 && FNR <= n {{ next }} {{ sub(/^[ \t]+/, "") }} /^#/ || /^$/ {{ next }} tolower($1) == "match" {{ inmatch = 1 }} !inmatch {{ print phase "\t" FILENAME "\t" FNR "\t" $0 }}' phase=1 "$m" phase=2 "$@" phase=3 "$m")"#,
        main = quote(main),
        include = quote(&include),
        dir = quote(dir),
    )
}

/// A line of [`files_listing`] that sets a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SettingLine {
    /// 1 above the main file's Include, 2 a drop-in, 3 below the Include.
    phase: u8,
    file: String,
    line: u32,
    /// Lowercase.
    keyword: String,
    value: String,
}

/// Parses [`files_listing`]'s output, in order.
fn setting_lines(out: &ProbeOutput) -> Vec<SettingLine> {
    out.output
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(4, '\t');
            let phase = fields.next()?.parse().ok()?;
            let file = fields.next()?.to_owned();
            let number = fields.next()?.parse().ok()?;
            let text = fields.next()?.trim();
            // `Keyword value` or `Keyword=value`.
            let end = text.find(|c: char| c.is_whitespace() || c == '=')?;
            let value = text[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
            Some(SettingLine {
                phase,
                file,
                line: number,
                keyword: text[..end].to_ascii_lowercase(),
                value: value.trim().to_owned(),
            })
        })
        .collect()
}

/// The keywords `sshd -T` prints (OpenSSH 9.2, Debian 12), from
/// `fixtures/sshd/effective.json`, plus those it takes but does not print.
pub const KEYWORDS: &[&str] = &[
    "acceptenv",
    "addressfamily",
    "allowagentforwarding",
    "allowgroups",
    "allowstreamlocalforwarding",
    "allowtcpforwarding",
    "allowusers",
    "authenticationmethods",
    "authorizedkeyscommand",
    "authorizedkeyscommanduser",
    "authorizedkeysfile",
    "authorizedprincipalscommand",
    "authorizedprincipalscommanduser",
    "authorizedprincipalsfile",
    "banner",
    "casignaturealgorithms",
    "channeltimeout",
    "chrootdirectory",
    "ciphers",
    "clientalivecountmax",
    "clientaliveinterval",
    "compression",
    "denygroups",
    "denyusers",
    "disableforwarding",
    "exposeauthinfo",
    "fingerprinthash",
    "forcecommand",
    "gatewayports",
    "gssapiauthentication",
    "gssapicleanupcredentials",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapistorecredentialsonrekey",
    "gssapistrictacceptorcheck",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedusesnamefrompacketonly",
    "hostcertificate",
    "hostkey",
    "hostkeyagent",
    "hostkeyalgorithms",
    "ignorerhosts",
    "ignoreuserknownhosts",
    "ipqos",
    "kbdinteractiveauthentication",
    "kerberosauthentication",
    "kerberosorlocalpasswd",
    "kerberosticketcleanup",
    "kexalgorithms",
    "listenaddress",
    "logingracetime",
    "loglevel",
    "logverbose",
    "macs",
    "maxauthtries",
    "maxsessions",
    "maxstartups",
    "modulifile",
    "permitemptypasswords",
    "permitlisten",
    "permitopen",
    "permitrootlogin",
    "permittty",
    "permittunnel",
    "permituserenvironment",
    "permituserrc",
    "persourcemaxstartups",
    "persourcenetblocksize",
    "pidfile",
    "port",
    "printlastlog",
    "printmotd",
    "pubkeyacceptedalgorithms",
    "pubkeyauthentication",
    "pubkeyauthoptions",
    "rekeylimit",
    "requiredrsasize",
    "revokedkeys",
    "securitykeyprovider",
    "setenv",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "strictmodes",
    "subsystem",
    "syslogfacility",
    "tcpkeepalive",
    "trustedusercakeys",
    "unusedconnectiontimeout",
    "usedns",
    "usepam",
    "versionaddendum",
    "x11displayoffset",
    "x11forwarding",
    "x11uselocalhost",
    "xauthlocation",
    // Taken in sshd_config, never printed by `sshd -T`.
    "challengeresponseauthentication",
    "passwordauthentication",
];

/// `os/sshd` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshdSpec {
    pub machines: Selector,
    /// sshd_config keywords (any case) to values, e.g. `PermitRootLogin:
    /// prohibit-password`, `X11Forwarding: "no"`.
    pub settings: BTreeMap<String, String>,
}

/// The drop-in of resource `name`.
pub fn drop_in(name: &str) -> String {
    format!("/etc/ssh/sshd_config.d/00-corral-{name}.conf")
}

impl Kind for SshdSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if self.settings.is_empty() {
            ctx.error(&["settings"], "`settings` is empty", "here").help =
                Some("list at least one `Keyword: value`, or remove the resource".into());
        }
        let mut seen: BTreeMap<String, &String> = BTreeMap::new();
        for (key, value) in &self.settings {
            let lower = key.to_ascii_lowercase();
            let known = KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(key));
            if !known || matches!(lower.as_str(), "match" | "include") {
                let why = match lower.as_str() {
                    "match" | "include" => format!(
                        "`{key}` is not a setting corral writes (it changes which settings apply)"
                    ),
                    _ => format!("`{key}` is not an sshd keyword"),
                };
                let help = crate::base::diagnostic::nearest(&lower, KEYWORDS.iter().copied())
                    .map(|n| {
                        format!("did you mean `{n}`? (keywords as `sshd -T` prints them, any case)")
                    })
                    .unwrap_or_else(|| {
                        "see `sshd -T` on a host for the keywords sshd takes".into()
                    });
                ctx.error_at_key(&["settings", key], why, "unknown keyword")
                    .help = Some(help);
            }
            if let Some(first) = seen.insert(lower, key) {
                ctx.error_at_key(
                    &["settings", key],
                    format!("`{key}` is `{first}` again (keywords are not case-sensitive)"),
                    "again",
                );
            }
            if ALGORITHM_KEYWORDS.contains(&key.to_ascii_lowercase().as_str())
                && value.trim_start().starts_with(['+', '-', '^'])
            {
                ctx.error(
                    &["settings", key],
                    format!("write `{key}` as the whole list: a `+`, `-` or `^` list resolves against OpenSSH's defaults, and `sshd -T` prints the whole list"),
                    "a relative list",
                );
            }
            if value.trim().is_empty() || value.contains(['\n', '\r', '\0', '#']) {
                ctx.error(
                    &["settings", key],
                    format!("the value of `{key}` must be one line, without `#`"),
                    "here",
                );
            }
        }
        self
    }

    /// Refuses settings that forbid TCP forwarding on a machine that other machines'
    /// `ssh.proxy_jump` goes through: their connections are forwarded there (`ssh -W`), so
    /// the next connection to them would fail, and the access guard, which logs in to
    /// this machine only, would not see it.
    fn link(&mut self, links: &Links, ctx: &mut LinkContext) -> Vec<Address> {
        let Some((key, value)) = self.forbids_forwarding() else {
            return Vec::new();
        };
        for (machine, behind) in &links.jumped_through {
            let labels = links.machines.get(machine).cloned().unwrap_or_default();
            if self.machines.matches(machine, &labels) {
                ctx.error(
                    &["settings", key.as_str()],
                    format!(
                        "`{key} {value}` on {machine}, which {} reach through (`ssh.proxy_jump`): corral could no longer connect to them",
                        behind.join(", ")
                    ),
                    "here",
                )
                .help = Some(format!(
                    "allow the forwarding a jump needs there (`AllowTcpForwarding local`), or leave {machine} out of this resource's machines"
                ));
            }
        }
        Vec::new()
    }

    /// The machines others jump through, which a setting here could cut off.
    fn declare_config(config: &dyn crate::declared::Declared, links: &mut Links) {
        links.jumped_through = jumped_through(config.machines());
    }

    /// Removing a drop-in can cut corral's access as much as writing it.
    fn deletion_guard(change: &ResourceChange) -> Option<super::AccessGuard> {
        Some(super::AccessGuard {
            paths: vec![drop_in(&change.address.name)],
            reload: RELOAD.into(),
        })
    }

    /// sshd reads its settings at reload: without the drop-in, the main file's apply.
    fn after_file_deleted() -> String {
        format!("{RELOAD}\n")
    }
}

impl SshdSpec {
    /// The setting that forbids the local TCP forwarding a jump host does (`ssh -W`).
    fn forbids_forwarding(&self) -> Option<(String, String)> {
        self.settings.iter().find_map(|(key, value)| {
            let value = value.trim().to_ascii_lowercase();
            let forbids = match key.to_ascii_lowercase().as_str() {
                "allowtcpforwarding" => value == "no" || value == "remote",
                "disableforwarding" => value == "yes",
                _ => false,
            };
            forbids.then(|| (key.clone(), value))
        })
    }
}

/// The host of one `[user@]host[:port]` hop of `ssh.proxy_jump` (without brackets).
fn hop_host(hop: &str) -> &str {
    let rest = hop.rsplit_once('@').map_or(hop, |(_, rest)| rest);
    match rest.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
        None => rest.split(':').next().unwrap_or(rest),
    }
}

/// Each machine of the inventory that other machines' `ssh.proxy_jump` goes through (a
/// hop naming its name, hostname or address), with those machines.
pub fn jumped_through(
    machines: &BTreeMap<String, crate::base::machine::Machine>,
) -> BTreeMap<String, Vec<String>> {
    let mut through: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (behind, machine) in machines {
        let Some(jump) = &machine.spec.ssh.proxy_jump else {
            continue;
        };
        for host in jump.split(',').map(hop_host) {
            let hop = machines.iter().find(|(name, m)| {
                *name == host || m.spec.hostname == host || m.spec.ip.to_string() == host
            });
            if let Some((name, _)) = hop {
                if name != behind {
                    let list = through.entry(name.clone()).or_default();
                    if !list.contains(behind) {
                        list.push(behind.clone());
                    }
                }
            }
        }
    }
    through
}

/// Keywords whose values `sshd -T` prints in seconds, whatever the unit written (`5m`).
const TIME_KEYWORDS: &[&str] = &[
    "logingracetime",
    "clientaliveinterval",
    "unusedconnectiontimeout",
];

/// Keywords whose values add up across files (the main file's and a drop-in's): the
/// declared values must all be among the live ones.
const ADDITIVE_KEYWORDS: &[&str] = &[
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "port",
    "listenaddress",
    "hostkey",
    "acceptenv",
];

/// Algorithm lists, written whole: `+`, `-` and `^` lists resolve against OpenSSH's
/// defaults, which `sshd -T` prints whole, so they would never compare equal.
const ALGORITHM_KEYWORDS: &[&str] = &[
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
];

/// sshd's time format (`90`, `5m`, `1h30m`) in seconds.
fn seconds(value: &str) -> Option<u64> {
    let (mut total, mut number) = (0u64, String::new());
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    if !number.is_empty() {
        total += number.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Values as `sshd -T` prints them, for comparing: case does not matter (`VERBOSE`,
/// `yes`), times are seconds, and the aliases it normalises are one (`prohibit-password`
/// prints as `without-password`).
fn normalize(key: &str, value: &str) -> String {
    let word = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    if TIME_KEYWORDS.contains(&key) {
        if let Some(seconds) = seconds(&word) {
            return seconds.to_string();
        }
    }
    match (key, word.as_str()) {
        ("permitrootlogin", "prohibit-password") => "without-password".into(),
        _ => word,
    }
}

/// Whether the live value holds the declared one.
fn holds(key: &str, have: &str, want: &str) -> bool {
    match ADDITIVE_KEYWORDS.contains(&key) {
        true => {
            let live: Vec<&str> = have.split_whitespace().collect();
            want.split_whitespace().all(|w| live.contains(&w))
        }
        false => have == want,
    }
}

/// The effective value of every keyword (several lines of one keyword joined by spaces).
fn effective(out: &ProbeOutput) -> Result<BTreeMap<String, String>, FactError> {
    if out.rc != 0 {
        return Err(FactError::new(
            EFFECTIVE_KEY,
            format!(
                "`sshd -T` failed (exit {}): {}",
                out.rc,
                crate::base::text::tail(out.output.trim(), 300)
            ),
        ));
    }
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for line in out.output.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        values
            .entry(key.to_owned())
            .and_modify(|v| {
                v.push(' ');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    Ok(values)
}

/// Who corral logs in as, and what sshd's main file says.
#[derive(Debug, Default)]
struct Login {
    user: String,
    groups: Vec<String>,
    includes_drop_ins: bool,
}

fn login(out: &ProbeOutput) -> Result<Login, FactError> {
    let mut login = Login::default();
    for line in out.output.lines() {
        match line.split_once(' ') {
            Some(("user", user)) => login.user = user.to_owned(),
            Some(("groups", groups)) => {
                login.groups = groups.split_whitespace().map(str::to_owned).collect()
            }
            Some(("include", yes)) => login.includes_drop_ins = yes == "yes",
            _ => {}
        }
    }
    if login.user.is_empty() {
        return Err(FactError::unexpected(LOGIN_KEY, out));
    }
    Ok(login)
}

/// `sshd_config` patterns (`*`, `?`, `!` negation not supported: refused below) against
/// a name.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let pattern = pattern.split('@').next().unwrap_or(pattern);
    go(pattern.as_bytes(), name.as_bytes())
}

impl SshdSpec {
    /// `sshd -T`: the effective configuration.
    fn effective_probe() -> Probe {
        Probe {
            key: EFFECTIVE_KEY.into(),
            script: "sshd -T 2>&1".into(),
        }
    }

    fn value(&self, keyword: &str) -> Option<String> {
        self.settings
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(k, v)| normalize(&k.to_ascii_lowercase(), v))
    }

    /// Why the settings would lock out `login`'s user, if they would.
    fn lockout(&self, login: &Login) -> Option<String> {
        let user = &login.user;
        if user == "root" {
            if let Some(v) = self.value("permitrootlogin") {
                if v == "no" || v == "forced-commands-only" {
                    return Some(format!("`PermitRootLogin {v}` while corral connects as root: the next login would fail"));
                }
            }
        }
        if self.value("pubkeyauthentication").as_deref() == Some("no") {
            return Some("`PubkeyAuthentication no`: corral logs in with a key".into());
        }
        if let Some(users) = self.value("allowusers") {
            if !users.split_whitespace().any(|p| glob(p, user)) {
                return Some(format!(
                    "`AllowUsers {users}` leaves out {user}, the user corral connects as"
                ));
            }
        }
        if let Some(groups) = self.value("allowgroups") {
            if !groups
                .split_whitespace()
                .any(|p| login.groups.iter().any(|g| glob(p, g)))
            {
                return Some(format!(
                    "`AllowGroups {groups}` names no group of {user}, the user corral connects as"
                ));
            }
        }
        if let Some(users) = self.value("denyusers") {
            if users.split_whitespace().any(|p| glob(p, user)) {
                return Some(format!(
                    "`DenyUsers {users}` names {user}, the user corral connects as"
                ));
            }
        }
        if let Some(groups) = self.value("denygroups") {
            if groups
                .split_whitespace()
                .any(|p| login.groups.iter().any(|g| glob(p, g)))
            {
                return Some(format!(
                    "`DenyGroups {groups}` names a group of {user}, the user corral connects as"
                ));
            }
        }
        None
    }

    /// The settings not in effect (`live`, from `sshd -T`) that a line read before the
    /// drop-in of `name` sets, with that line.
    fn overridden<'f>(
        &self,
        name: &str,
        live: &BTreeMap<String, String>,
        files: &'f [SettingLine],
    ) -> Vec<(&str, &'f SettingLine)> {
        let ours = drop_in(name);
        self.settings
            .iter()
            .filter_map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                // Values that add up across files are not overridden by another file.
                if ADDITIVE_KEYWORDS.contains(&lower.as_str()) {
                    return None;
                }
                let want = normalize(&lower, value);
                let have = normalize(&lower, live.get(&lower)?);
                if have == want {
                    return None;
                }
                let first = files.iter().find(|l| l.keyword == lower)?;
                let before = first.phase == 1 || (first.phase == 2 && first.file < ours);
                (before && normalize(&lower, &first.value) != want).then_some((key.as_str(), first))
            })
            .collect()
    }

    /// Checks, after the reload, that `sshd -T` shows every setting: one still not in
    /// effect fails the step, naming the line that sets it first (sshd keeps the first
    /// value it reads). `main` and `dir` are sshd's files (tests pass their own).
    fn effect_check(&self, main: &str, dir: &str) -> String {
        let mut script = format!(
            r#"t=$(sshd -T 2>&1) || {{ printf '%s\n' "$t"; echo 'corral: sshd -T failed after the reload'; exit 1; }}
files=$( {listing} )
bad=0
set -f
corral_in_effect() {{
  have=$(printf '%s\n' "$t" | awk -v k="$1" '$1 == k {{ for (i = 2; i <= NF; i++) v = v (v == "" ? "" : " ") $i; found = 1 }} END {{ if (found) print "=" tolower(v) }}')
  [ -n "$have" ] || return 0
  have=${{have#=}}
  case "$1:$have" in permitrootlogin:prohibit-password) have=without-password ;; esac
  if [ "$3" = 1 ]; then
    missing=
    for w in $2; do case " $have " in *" $w "*) ;; *) missing=1 ;; esac; done
    [ -n "$missing" ] || return 0
  else
    [ "$have" != "$2" ] || return 0
  fi
  at=$(printf '%s\n' "$files" | awk -F '\t' -v k="$1" '{{ split($4, w, /[ \t=]+/) }} tolower(w[1]) == k {{ print $2 ":" $3 ": " $4; exit }}')
  if [ -n "$at" ]; then
    printf 'corral: %s is "%s" after the reload, not "%s": %s sets it first, and sshd keeps the first value it reads; remove it there\n' "$4" "$have" "$2" "$at"
  else
    printf 'corral: %s is "%s" after the reload, not "%s", and no line of %s or %s sets it first\n' "$4" "$have" "$2" {main} {dir_conf}
  fi
  bad=1
}}
"#,
            listing = files_listing(main, dir),
            main = quote(main),
            dir_conf = quote(&format!("{dir}/*.conf")),
        );
        for (key, value) in &self.settings {
            let lower = key.to_ascii_lowercase();
            let additive = u8::from(ADDITIVE_KEYWORDS.contains(&lower.as_str()));
            script.push_str(&format!(
                "corral_in_effect {} {} {additive} {}\n",
                quote(&lower),
                quote(&normalize(&lower, value)),
                quote(key)
            ));
        }
        script.push_str("set +f\n[ \"$bad\" = 0 ] || exit 1\n");
        script
    }

    fn file_text(&self, name: &str) -> Vec<u8> {
        let mut text =
            format!("# Managed by corral ({KIND}.{name}); local changes are overwritten.\n");
        for (key, value) in &self.settings {
            text.push_str(&format!("{key} {}\n", value.trim()));
        }
        text.into_bytes()
    }

    fn file_changes(
        &self,
        name: &str,
        facts: &HostFacts,
    ) -> Result<(Action, Vec<AttrChange>), FactError> {
        let path = drop_in(name);
        let bytes = self.file_text(name);
        file::root_file_changes(&file::root_file(&path, &bytes, "0644"), facts)
    }
}

impl MachineKind for SshdSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    /// A reload re-executes sshd: one machine at a time, each proven healthy before the
    /// next, without a settle time.
    fn rolling(&self) -> Option<crate::base::envelope::Rolling> {
        Some(crate::base::envelope::Rolling::immediate())
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, name: &str) -> Vec<Probe> {
        vec![
            Self::effective_probe(),
            Probe {
                key: LOGIN_KEY.into(),
                script: r#"u=${SUDO_USER:-$(id -un)}; echo "user $u"; echo "groups $(id -Gn "$u")"; if grep -Eiq '^[[:space:]]*include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config; then echo 'include yes'; else echo 'include no'; fi"#.into(),
            },
            file::probe(&drop_in(name), file::Read::Content),
            Probe {
                key: FILES_KEY.into(),
                script: files_listing(MAIN_CONFIG, DROP_IN_DIR),
            },
        ]
    }

    /// A setting that a file sshd reads before corral's drop-in sets otherwise: sshd keeps
    /// that value, and the change would never take effect.
    fn warnings(&self, name: &str, facts: &HostFacts) -> Vec<String> {
        let (Ok(live), Ok(files)) = (
            facts.get(EFFECTIVE_KEY).and_then(effective),
            facts.get(FILES_KEY).map(setting_lines),
        ) else {
            return Vec::new();
        };
        self.overridden(name, &live, &files)
            .into_iter()
            .map(|(key, setter)| {
                format!(
                    "{key} {} in {}:{} is read before corral's {} and sshd keeps the first value it reads: the change will not take effect (apply fails after the reload); remove it there",
                    setter.value,
                    setter.file,
                    setter.line,
                    drop_in(name)
                )
            })
            .collect()
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let login = login(facts.get(LOGIN_KEY)?)?;
        if let Some(why) = self.lockout(&login) {
            return Err(FactError::new(
                EFFECTIVE_KEY,
                format!("refused: {why}. Connect as another user (`ssh: {{user: …}}` in the inventory), or change the setting"),
            ));
        }
        let live = effective(facts.get(EFFECTIVE_KEY)?)?;
        let mut attributes = Vec::new();
        // Without the Include, no drop-in is read: it goes at the top of the main file.
        if !login.includes_drop_ins {
            attributes.push(AttrChange::new(
                format!("{MAIN_CONFIG} Include"),
                AttrValue::Absent,
                AttrValue::Scalar(INCLUDE.into()),
            ));
        }
        for (key, value) in &self.settings {
            let lower = key.to_ascii_lowercase();
            let want = normalize(&lower, value);
            let have = live.get(&lower).map(|v| normalize(&lower, v));
            // A keyword `sshd -T` does not print is compared through the file only.
            if have.as_ref().is_some_and(|h| !holds(&lower, h, &want)) {
                attributes.push(AttrChange::scalar(
                    key.as_str(),
                    have.unwrap_or_default(),
                    want,
                ));
            }
        }
        let path = drop_in(name);
        let (file_action, file_changes) = self.file_changes(name, facts)?;
        attributes.extend(file::shown_as_part(&path, file_changes));
        Ok(file::diff_with_file(file_action, attributes))
    }

    fn steps(&self, name: &str, _change: &ResourceChange, _facts: &HostFacts) -> Vec<Step> {
        let path = drop_in(name);
        let bytes = self.file_text(name);
        let kept = format!("{path}.corral-previous");
        // Kept and put back through the link-safe write (`file::keep_script`), like the
        // guard's files.
        let mut script = format!("set -e\n{}", file::keep_script(&path, &kept));
        // The Include, made sure of: written at the top (sshd keeps the first value it
        // reads, so drop-ins then win), through a temporary file in the same directory.
        script.push_str(&format!(
            "if ! grep -Eiq '^[[:space:]]*include[[:space:]]+/etc/ssh/sshd_config\\.d/\\*\\.conf' {main}; then\n  [ ! -L {main} ] || {{ echo 'corral: '{main}' is a link; left alone'; exit 1; }}\n  t=$(mktemp /etc/ssh/.corral-sshd_config.XXXXXX)\n  {{ printf '%s\\n' {include}; cat {main}; }} > \"$t\"\n  chmod --reference={main} \"$t\"\n  mv -f \"$t\" {main}\nfi\n",
            main = quote(MAIN_CONFIG),
            include = quote(INCLUDE),
        ));
        script.push_str(&file::write_script(&file::root_file(&path, &bytes, "0644")));
        let forget = format!("rm -f -- {k} {k}.absent {k}.link\n", k = quote(&kept));
        script.push_str(&format!(
            "if ! out=$(sshd -t 2>&1); then\n{put_back}{forget}  printf '%s\\n' \"$out\"\n  echo 'corral: sshd -t refused the settings; the previous file is back'\n  exit 1\nfi\n{forget}{reload}\n",
            put_back = file::put_back_script(&path, &kept),
            reload = RELOAD
        ));
        // "Apply complete!" is said only of settings sshd now has.
        script.push_str(&self.effect_check(MAIN_CONFIG, DROP_IN_DIR));
        vec![Step {
            description: format!(
                "write {path}, check it with sshd -t, reload sshd, check sshd -T has the settings"
            ),
            script,
        }]
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                Claim::new(format!("sshd setting {lower}"), normalize(&lower, v))
            })
            .collect();
        claims.push(Claim::new(format!("file {}", drop_in(name)), name));
        claims
    }

    fn managed_entry(&self, name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry::file(KIND, &drop_in(name)))
    }

    fn access_guard(&self, name: &str) -> Option<AccessGuard> {
        Some(AccessGuard {
            paths: vec![drop_in(name), MAIN_CONFIG.into()],
            reload: RELOAD.into(),
        })
    }
}

/// sshd's main file, and the line that makes it read the drop-ins.
const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";
const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf";

/// Reloads sshd (Debian's unit is `ssh`): running sessions stay.
pub const RELOAD: &str = "systemctl reload ssh 2>/dev/null || systemctl reload sshd";

#[cfg(test)]
mod tests {
    use super::*;

    /// A jump host's name, from any form `proxy_jump` takes.
    #[test]
    fn a_hop_is_named_by_its_host() {
        assert_eq!(hop_host("u@[fe80::1]:22"), "fe80::1");
        assert_eq!(hop_host("bastion"), "bastion");
    }

    fn recorded() -> ProbeOutput {
        crate::facts::recorded::checked(
            "sshd/effective",
            &SshdSpec::effective_probe(),
            "record it again on a lab host",
        )
    }

    fn spec(settings: &[(&str, &str)]) -> SshdSpec {
        SshdSpec {
            machines: Selector::All,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn root() -> Login {
        Login {
            user: "root".into(),
            groups: vec!["root".into()],
            includes_drop_ins: true,
        }
    }

    /// The step through a real `sh`, with `/etc/ssh` in a scratch directory: settings
    /// `sshd -t` refuses put the previous drop-in back, through the link-safe write, and
    /// leave no kept copy behind.
    #[test]
    fn refused_settings_put_the_previous_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc/ssh");
        std::fs::create_dir_all(etc.join("sshd_config.d")).unwrap();
        std::fs::write(etc.join("sshd_config"), format!("{INCLUDE}\n")).unwrap();
        let file = etc.join("sshd_config.d/00-corral-h.conf");
        std::fs::write(&file, "MaxAuthTries 3\n").unwrap();
        let spec = spec(&[("MaxAuthTries", "4")]);
        let change = ResourceChange {
            address: crate::address::Address::new(KIND, "h", Some("n1")),
            machine: Some("n1".into()),
            action: crate::plan::Action::Update,
            attributes: Vec::new(),
            reason: None,
            triggered_by: Vec::new(),
        };
        let steps = spec.steps("h", &change, &HostFacts::default());
        let script = steps[0]
            .script
            .replace("/etc/ssh", &etc.display().to_string())
            .replace("sshd -t", "false")
            .replace(RELOAD, "true");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("the previous file is back"),
            "{out:?}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "MaxAuthTries 3\n");
        let left: Vec<_> = std::fs::read_dir(etc.join("sshd_config.d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["00-corral-h.conf"]);
    }

    #[test]
    fn every_keyword_sshd_prints_is_known() {
        let live = effective(&recorded()).unwrap();
        for key in live.keys() {
            assert!(KEYWORDS.contains(&key.as_str()), "{key}");
        }
        assert_eq!(live["maxauthtries"], "6");
        // Several lines of one keyword are one value.
        assert_eq!(live["listenaddress"], "[::]:22 0.0.0.0:22");
    }

    #[test]
    fn values_compare_as_sshd_prints_them() {
        assert_eq!(
            normalize("permitrootlogin", "prohibit-password"),
            "without-password"
        );
        assert_eq!(normalize("x11forwarding", "No"), "no");
        // Case does not matter to the comparison (`sshd -T` prints `LogLevel VERBOSE`); a
        // path changed only in case still shows in the drop-in's diff.
        assert_eq!(
            normalize("loglevel", "verbose"),
            normalize("loglevel", "VERBOSE")
        );
        assert_eq!(normalize("banner", "/etc/Issue  net"), "/etc/issue net");
        assert_eq!(normalize("clientaliveinterval", "5m"), "300");
        assert_eq!(normalize("logingracetime", "1h30s"), "3630");
        assert_eq!(normalize("logingracetime", "30"), "30");
        // Values that add up across files hold when the live list has them all.
        assert!(holds("allowusers", "admin root deploy", "root deploy"));
        assert!(!holds("allowusers", "admin", "root"));
        assert!(!holds("maxauthtries", "3 6", "3"));
    }

    #[test]
    fn settings_that_lock_out_the_connecting_user_are_refused() {
        for (settings, why) in [
            (vec![("PermitRootLogin", "no")], "PermitRootLogin no"),
            (
                vec![("permitrootlogin", "forced-commands-only")],
                "forced-commands-only",
            ),
            (vec![("PubkeyAuthentication", "no")], "logs in with a key"),
            (vec![("AllowUsers", "admin deploy")], "leaves out root"),
            (vec![("AllowGroups", "sudo")], "names no group of root"),
            (vec![("DenyUsers", "r*t")], "names root"),
        ] {
            let refusal = spec(&settings).lockout(&root()).unwrap_or_default();
            assert!(refusal.contains(why), "{settings:?}: {refusal}");
        }
        for settings in [
            vec![("PermitRootLogin", "prohibit-password")],
            vec![("AllowUsers", "admin root@10.0.0.*")],
            vec![("AllowGroups", "ro?t")],
            vec![("PasswordAuthentication", "no")],
        ] {
            assert_eq!(spec(&settings).lockout(&root()), None, "{settings:?}");
        }
        let admin = Login {
            user: "admin".into(),
            groups: vec!["admin".into(), "sudo".into()],
            includes_drop_ins: true,
        };
        assert_eq!(spec(&[("PermitRootLogin", "no")]).lockout(&admin), None);
    }
}

#[cfg(test)]
mod include_tests {
    use super::*;

    #[test]
    fn the_include_is_made_sure_of_with_the_probes_own_test() {
        let spec = SshdSpec {
            machines: Selector::All,
            settings: [("X11Forwarding".to_owned(), "no".to_owned())].into(),
        };
        let change = ResourceChange {
            address: crate::address::Address::new(KIND, "h", Some("n1")),
            machine: Some("n1".into()),
            action: Action::Update,
            attributes: Vec::new(),
            reason: None,
            triggered_by: Vec::new(),
        };
        let script = &spec.steps("h", &change, &HostFacts::default())[0].script;
        let test = r"grep -Eiq '^[[:space:]]*include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf'";
        assert!(script.contains(test), "{script}");
        assert!(spec.probes("h")[1].script.contains(test));
        assert!(
            script.contains(
                "printf '%s\\n' 'Include /etc/ssh/sshd_config.d/*.conf'; cat /etc/ssh/sshd_config;"
            ),
            "{script}"
        );
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{syntax:?}");
    }
}
#[cfg(test)]
mod override_tests {
    use super::*;

    /// `sshd -T` and the setting lines of sshd's files with `0-hand.conf` (MaxAuthTries 9)
    /// read before corral's `00-corral-hardening.conf` (scripts/record-sshd-fixtures.sh).
    fn recorded(case: &str, probe: &Probe) -> ProbeOutput {
        crate::facts::recorded::checked(
            &format!("sshd/{case}"),
            probe,
            "run scripts/record-sshd-fixtures.sh",
        )
    }

    fn hardening(max_auth_tries: &str) -> SshdSpec {
        SshdSpec {
            machines: Selector::All,
            settings: [
                ("MaxAuthTries".to_owned(), max_auth_tries.to_owned()),
                ("X11Forwarding".to_owned(), "no".to_owned()),
            ]
            .into(),
        }
    }

    fn facts() -> HostFacts {
        let probes = hardening("3").probes("hardening");
        let files = probes.iter().find(|p| p.key == FILES_KEY).unwrap();
        HostFacts {
            probes: BTreeMap::from([
                (
                    EFFECTIVE_KEY.to_owned(),
                    recorded("hand-override", &SshdSpec::effective_probe()),
                ),
                (FILES_KEY.to_owned(), recorded("files-hand-override", files)),
            ]),
            ..Default::default()
        }
    }

    /// A file read before corral's drop-in (`0-hand.conf: MaxAuthTries 9`) kept sshd at 9:
    /// apply said "Apply complete!" and every plan showed the same change. The plan warns,
    /// naming the file and line; settings in effect are not warned about.
    #[test]
    fn a_setting_that_a_file_read_first_overrides_is_warned_about() {
        let warnings = hardening("3").warnings("hardening", &facts());
        assert_eq!(
            warnings,
            ["MaxAuthTries 9 in /etc/ssh/sshd_config.d/0-hand.conf:1 is read before corral's /etc/ssh/sshd_config.d/00-corral-hardening.conf and sshd keeps the first value it reads: the change will not take effect (apply fails after the reload); remove it there"]
        );
        assert_eq!(
            hardening("9").warnings("hardening", &facts()),
            Vec::<String>::new()
        );
    }

    /// The setting lines come in sshd's read order: the main file above its Include, the
    /// drop-ins by name, the rest of the main file; `Match` blocks and comments left out.
    #[test]
    fn setting_lines_come_in_the_order_sshd_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let drop_ins = dir.path().join("d");
        std::fs::create_dir(&drop_ins).unwrap();
        let main = dir.path().join("sshd_config");
        std::fs::write(
            &main,
            format!(
                "Port 2222\n# a comment\n  Include {}/*.conf\nMaxAuthTries=4\n",
                drop_ins.display()
            ),
        )
        .unwrap();
        std::fs::write(
            drop_ins.join("b.conf"),
            "X11Forwarding no\nMatch User ops\n  MaxAuthTries 2\n",
        )
        .unwrap();
        std::fs::write(drop_ins.join("a.conf"), "\tLogLevel VERBOSE\n").unwrap();
        std::fs::write(drop_ins.join("ignored.txt"), "MaxAuthTries 1\n").unwrap();
        let listing = files_listing(&main.display().to_string(), &drop_ins.display().to_string());
        let out = std::process::Command::new("sh")
            .args(["-c", &listing])
            .output()
            .unwrap();
        let lines = setting_lines(&ProbeOutput {
            rc: 0,
            output: String::from_utf8(out.stdout).unwrap(),
        });
        let seen: Vec<(u8, String, u32, &str, &str)> = lines
            .iter()
            .map(|l| {
                let file = l.file.rsplit('/').next().unwrap().to_owned();
                (l.phase, file, l.line, l.keyword.as_str(), l.value.as_str())
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "sshd_config".into(), 1, "port", "2222"),
                (2, "a.conf".into(), 1, "loglevel", "VERBOSE"),
                (2, "b.conf".into(), 1, "x11forwarding", "no"),
                (3, "sshd_config".into(), 4, "maxauthtries", "4"),
            ]
        );
    }

    /// Runs `spec`'s check after the reload through a real `sh`, with sshd's files in a
    /// temporary directory as the lab had them and `sshd -T` answering as it did there.
    fn run_check(spec: &SshdSpec) -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let drop_ins = dir.path().join("sshd_config.d");
        std::fs::create_dir(&drop_ins).unwrap();
        let main = dir.path().join("sshd_config");
        std::fs::write(
            &main,
            format!(
                "# Debian's main file, shortened\nInclude {}/*.conf\nX11Forwarding yes\n",
                drop_ins.display()
            ),
        )
        .unwrap();
        std::fs::write(drop_ins.join("0-hand.conf"), "MaxAuthTries 9\n").unwrap();
        std::fs::write(
            drop_ins.join("00-corral-hardening.conf"),
            String::from_utf8(spec.file_text("hardening")).unwrap(),
        )
        .unwrap();
        let effective = dir.path().join("effective");
        let recorded = recorded("hand-override", &SshdSpec::effective_probe());
        std::fs::write(&effective, recorded.output).unwrap();
        let script = format!(
            "sshd() {{ cat {}; }}\n{}",
            quote(&effective.display().to_string()),
            spec.effect_check(&main.display().to_string(), &drop_ins.display().to_string())
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    /// After the reload, `sshd -T` must show every managed setting: one a file read first
    /// overrides fails the step, naming that file and line, instead of "Apply complete!".
    #[test]
    fn a_setting_not_in_effect_after_the_reload_fails_the_step_naming_the_file() {
        let (code, text) = run_check(&hardening("3"));
        assert_eq!(code, 1, "{text}");
        assert!(
            text.starts_with("corral: MaxAuthTries is \"9\" after the reload, not \"3\": "),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("/sshd_config.d/0-hand.conf:1: MaxAuthTries 9 sets it first, and sshd keeps the first value it reads; remove it there"),
            "{text}"
        );
        assert!(!text.contains("X11Forwarding"), "{text}");
        let (code, text) = run_check(&hardening("9"));
        assert_eq!((code, text.as_str()), (0, ""));
        // The step runs the check after the reload.
        let change = ResourceChange {
            address: crate::address::Address::new(KIND, "hardening", Some("n1")),
            machine: Some("n1".into()),
            action: Action::Update,
            attributes: Vec::new(),
            reason: None,
            triggered_by: Vec::new(),
        };
        let spec = hardening("3");
        let script = &spec.steps("hardening", &change, &HostFacts::default())[0].script;
        let check = spec.effect_check(MAIN_CONFIG, DROP_IN_DIR);
        assert!(script.ends_with(&check), "{script}");
        assert!(script.find(RELOAD) < script.find(&check));
    }
}
