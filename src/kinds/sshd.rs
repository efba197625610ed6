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
//! it, `PubkeyAuthentication no`. A change is checked with `sshd -t` before sshd reloads,
//! and the previous file is put back when the check fails. Every change also runs under
//! the access guard (`apply::guard`): the host reverts it by itself unless a new login
//! works after it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file;
use super::{AccessGuard, Claim, Kind, MachineKind, Step};
use crate::config::{CheckContext, Selector};
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/sshd";

/// `sshd -T`, the effective configuration as `keyword value` lines (lowercase keywords).
const EFFECTIVE_KEY: &str = "sshd:effective";
/// Whether the main file includes the drop-in directory, and who corral logs in as.
const LOGIN_KEY: &str = "sshd:login";

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
                let help = crate::config::error::nearest(&lower, KEYWORDS.iter().copied())
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
                crate::facts::tail(out.output.trim(), 300)
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
        ]
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
        vec![Step {
            description: format!("write {path}, check it with sshd -t, reload sshd"),
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

    fn managed_entry(&self, name: &str) -> Option<crate::managed::Entry> {
        Some(crate::managed::Entry::file(KIND, &drop_in(name)))
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
