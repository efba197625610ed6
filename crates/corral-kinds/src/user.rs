//! `os/user`: a local user, its supplementary groups, shell, home, authorized keys, password
//! lock and a sudoers drop-in.
//!
//! The truth is the host's account database, read in the one round trip: `getent passwd`,
//! `id -Gn`, `passwd -S` (whether the password is locked), the authorized_keys file and the
//! sudoers drop-in (both through `file::probe`, never through a link). The plan is worked
//! out once, as a typed [`Decision`], from which both the diff and the steps are made.
//!
//! What this kind may not do: remove a home directory (`present: false` runs `userdel`
//! without `-r`), change the uid of an existing user (its files would keep the old one),
//! create missing groups (a plan error names them), or cut the access of the user corral
//! connects as: removing it, giving it a shell that refuses logins, or an empty exclusive
//! key list are refused in the plan, and every change runs under the access guard
//! (`apply::guard`), which puts the authorized_keys file and the sudoers drop-in back unless
//! a new login works after the change.

use serde::{Deserialize, Serialize};

use super::file::{self, DesiredFile, FileState};
use super::{AccessGuard, Claim, Kind, MachineKind, Step};
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, AttrValue, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/user";

/// Who corral logs in as (the user behind `sudo`, if any).
const LOGIN_KEY: &str = "user:login";
/// Whether `visudo` is there to check a sudoers drop-in.
const VISUDO_KEY: &str = "user:visudo";

/// Regular users' uids on Debian (`UID_MIN`, `UID_MAX` of `/etc/login.defs`).
pub const UID_RANGE: std::ops::RangeInclusive<u32> = 1000..=60000;

/// Key types sshd accepts in authorized_keys lines.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Shells that refuse logins.
const NO_LOGIN_SHELLS: &[&str] = &[
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
];

fn yes() -> bool {
    true
}

/// `os/user` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub machines: Selector,
    /// The user's name: `[a-z_][a-z0-9_-]*`, at most 32 characters.
    pub name: String,
    /// The uid of a new user (1000-60000); an existing user's uid is never changed.
    pub uid: Option<u32>,
    /// Supplementary groups, exactly (the user leaves others); they must exist.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Login shell; `/bin/bash` when not given.
    pub shell: Option<String>,
    /// Home directory; `/home/NAME` when not given. A change moves it (`usermod -m`).
    pub home: Option<String>,
    /// Public key lines, `TYPE BASE64 [comment]`.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// `true`: the file holds exactly these keys; `false`: they are added, others kept.
    #[serde(default = "yes")]
    pub exclusive_keys: bool,
    /// `true`: the password is locked (`usermod -L`) and cannot be used to log in;
    /// `false`: corral leaves the password alone.
    #[serde(default = "yes")]
    pub locked_password: bool,
    /// A sudoers drop-in, `/etc/sudoers.d/corral-NAME`, checked with `visudo` first.
    pub sudo: Option<Sudo>,
    /// `false` removes the user (`userdel`, never its home) and its sudoers drop-in.
    #[serde(default = "yes")]
    pub present: bool,
}

/// What the user may run as root.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sudo {
    /// `ALL`, or absolute command paths (with arguments), separated by commas.
    #[serde(default = "all")]
    pub commands: String,
    /// Whether sudo asks for no password.
    #[serde(default)]
    pub nopasswd: bool,
}

fn all() -> String {
    "ALL".into()
}

/// Whether `name` is a user or group name corral accepts.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The type and base64 blob of a public key line `TYPE BASE64 [comment]`; `Err` says what
/// is wrong.
pub fn parse_key(line: &str) -> Result<(&str, &str), String> {
    if line.chars().any(char::is_control) {
        return Err("it must be one line, without control characters".into());
    }
    let mut words = line.split_whitespace();
    let kind = words.next().ok_or("it is empty")?;
    if !KEY_TYPES.contains(&kind) {
        return Err(format!(
            "`{kind}` is not a public key type (expected one of {})",
            KEY_TYPES.join(", ")
        ));
    }
    let blob = words.next().ok_or("the base64 key is missing")?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "the key is not valid base64".to_owned())?;
    // The blob is SSH strings (a 32-bit length, then bytes), the first its own type, and
    // as many as the type has.
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
        let Some(field) = len.and_then(|len| rest.get(4..4 + len)) else {
            return Err(format!("the base64 key is not a `{kind}` key (truncated)"));
        };
        rest = &rest[4 + field.len()..];
        fields.push(field);
    }
    // Fields, the type included: ed25519 key; ecdsa curve and point; rsa e and n; and the
    // application of security keys.
    let expected = match kind {
        "ssh-ed25519" => 2,
        "ssh-rsa" | "sk-ssh-ed25519@openssh.com" => 3,
        "sk-ecdsa-sha2-nistp256@openssh.com" => 4,
        _ => 3,
    };
    if fields.first() != Some(&kind.as_bytes())
        || fields.len() != expected
        || (kind.contains("ed25519") && fields[1].len() != 32)
    {
        return Err(format!("the base64 key is not a `{kind}` key"));
    }
    Ok((kind, blob))
}

/// The `(type, blob)` of a line of an authorized_keys file, options before the type
/// allowed; `None` for comments, blank and unreadable lines.
fn key_of_line(line: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first().is_none_or(|w| w.starts_with('#')) {
        return None;
    }
    let at = words.iter().position(|w| KEY_TYPES.contains(w))?;
    Some((words[at], words.get(at + 1)?))
}

fn check_absolute(ctx: &mut CheckContext, field: &str, path: &str) {
    file::check_path(ctx, field, path);
}

impl Kind for UserSpec {
    fn check(self, ctx: &mut CheckContext) -> Self {
        if !valid_name(&self.name) {
            ctx.error(
                &["name"],
                format!("`{}` is not a valid user name", self.name.escape_debug()),
                "here",
            )
            .help = Some(
                "a user name is a lowercase letter or `_`, then lowercase letters, digits, `_` or `-`, at most 32 characters".into(),
            );
        }
        if let Some(uid) = self.uid {
            if !UID_RANGE.contains(&uid) {
                ctx.error(
                    &["uid"],
                    format!(
                        "uid {uid} is out of range ({}-{}, Debian's regular users)",
                        UID_RANGE.start(),
                        UID_RANGE.end()
                    ),
                    "here",
                )
                .help = Some("leave `uid` out to let useradd pick the next free one".into());
            }
        }
        for (index, group) in self.groups.iter().enumerate() {
            let at = index.to_string();
            if !valid_name(group) {
                ctx.error(
                    &["groups", &at],
                    format!("`{}` is not a valid group name", group.escape_debug()),
                    "here",
                );
            } else if self.groups[..index].contains(group) {
                ctx.error(
                    &["groups", &at],
                    format!("`{group}` is listed twice"),
                    "again",
                );
            }
        }
        if let Some(shell) = &self.shell {
            check_absolute(ctx, "shell", shell);
        }
        if let Some(home) = &self.home {
            check_absolute(ctx, "home", home);
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (index, line) in self.authorized_keys.iter().enumerate() {
            let at = index.to_string();
            match parse_key(line) {
                Err(why) => {
                    ctx.error(
                        &["authorized_keys", &at],
                        format!("not a public key line: {why}"),
                        "here",
                    )
                    .help = Some(
                        "write the line of the `.pub` file: `TYPE BASE64 [comment]`, e.g. `ssh-ed25519 AAAAC3Nza… alice@laptop`".into(),
                    );
                }
                Ok(key) if seen.contains(&key) => {
                    ctx.error(
                        &["authorized_keys", &at],
                        "this key is listed twice",
                        "again",
                    );
                }
                Ok(key) => seen.push(key),
            }
        }
        if let Some(sudo) = &self.sudo {
            let commands: Vec<&str> = sudo.commands.split(',').map(str::trim).collect();
            let bad = sudo
                .commands
                .chars()
                .any(|c| c.is_control() || matches!(c, '#' | '\\' | '!'))
                || commands.iter().any(|c| *c != "ALL" && !c.starts_with('/'));
            if bad {
                ctx.error(
                    &["sudo", "commands"],
                    format!(
                        "`{}` is not a list of commands sudo can take",
                        sudo.commands.escape_debug()
                    ),
                    "here",
                )
                .help = Some(
                    "write `ALL`, or absolute command paths separated by commas: `/usr/bin/systemctl restart nginx, /usr/bin/journalctl`".into(),
                );
            }
        }
        self
    }

    /// Removing a sudoers drop-in can cut corral's access as much as writing it.
    fn deletion_guard(change: &ResourceChange) -> Option<super::AccessGuard> {
        match change.attribute("path").map(|a| &a.before) {
            Some(crate::plan::AttrValue::Scalar(path)) => Some(super::AccessGuard {
                paths: vec![path.clone()],
                reload: String::new(),
            }),
            _ => None,
        }
    }

    fn deletion_lockout(change: &ResourceChange, facts: &HostFacts) -> Option<String> {
        deletion_lockout(change, facts)
    }

    fn every_host_probes() -> Vec<Probe> {
        vec![login_probe()]
    }
}

/// An account as `getent passwd` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses `getent passwd NAME`: `None` when there is no such user (exit 2).
pub fn parse_passwd(key: &str, out: &ProbeOutput) -> Result<Option<Account>, FactError> {
    match out.rc {
        2 => return Ok(None),
        0 => {}
        _ => return Err(FactError::unexpected(key, out)),
    }
    let line = out.output.lines().next().unwrap_or_default();
    let fields: Vec<&str> = line.split(':').collect();
    let (Some(uid), Some(gid), Some(home), Some(shell)) = (
        fields.get(2).and_then(|u| u.parse().ok()),
        fields.get(3).and_then(|g| g.parse().ok()),
        fields.get(5),
        fields.get(6),
    ) else {
        return Err(FactError::new(
            key,
            format!("`getent passwd` printed an unreadable line: {line}"),
        ));
    };
    Ok(Some(Account {
        uid,
        gid,
        home: home.to_string(),
        shell: shell.to_string(),
    }))
}

/// Parses `id -Gn NAME`: the primary group, then the supplementary ones (sorted).
pub fn parse_groups(key: &str, out: &ProbeOutput) -> Result<(String, Vec<String>), FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    let mut words = out.output.split_whitespace();
    let primary = words
        .next()
        .ok_or_else(|| FactError::unexpected(key, out))?
        .to_owned();
    let mut others: Vec<String> = words.filter(|g| *g != primary).map(str::to_owned).collect();
    others.sort();
    others.dedup();
    Ok((primary, others))
}

/// Parses `passwd -S NAME` (`NAME L|P|NP DATE …`): whether the password is locked.
pub fn parse_locked(key: &str, out: &ProbeOutput) -> Result<bool, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(key, out));
    }
    match out.output.split_whitespace().nth(1) {
        Some("L") => Ok(true),
        Some("P" | "NP") => Ok(false),
        _ => Err(FactError::unexpected(key, out)),
    }
}

/// What the account itself needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountChange {
    Keep,
    Create,
    Modify {
        shell: Option<String>,
        home: Option<String>,
        groups: Option<Vec<String>>,
    },
    Remove,
}

/// What the sudoers drop-in needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SudoChange {
    Keep,
    Write(Vec<u8>),
    Delete,
}

/// Everything one plan decides for one machine: what the diff shows and the steps do.
#[derive(Debug, Clone)]
struct Decision {
    action: Action,
    attributes: Vec<AttrChange>,
    account: AccountChange,
    lock: bool,
    /// The authorized_keys content to write (with `~/.ssh` made right first).
    keys: Option<(Vec<u8>, String)>,
    sudo: SudoChange,
}

impl UserSpec {
    fn shell(&self) -> &str {
        self.shell.as_deref().unwrap_or("/bin/bash")
    }

    fn home(&self) -> String {
        self.home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", self.name))
    }

    fn keys_path(&self) -> String {
        format!("{}/.ssh/authorized_keys", self.home())
    }

    fn ssh_dir(&self) -> String {
        format!("{}/.ssh", self.home())
    }

    /// The sudoers drop-in of this user.
    pub fn sudoers_path(&self) -> String {
        format!("/etc/sudoers.d/corral-{}", self.name)
    }

    /// Whether corral manages the authorized_keys file at all.
    fn manages_keys(&self) -> bool {
        self.exclusive_keys || !self.authorized_keys.is_empty()
    }

    fn key(&self, what: &str) -> String {
        format!("user:{what}:{}", self.name)
    }

    fn passwd_probe(&self) -> Probe {
        Probe {
            key: self.key("passwd"),
            script: format!("getent passwd {}", quote(&self.name)),
        }
    }

    fn groups_probe(&self) -> Probe {
        Probe {
            key: self.key("groups"),
            script: format!("id -Gn {} 2>&1", quote(&self.name)),
        }
    }

    fn lock_probe(&self) -> Probe {
        Probe {
            key: self.key("lock"),
            script: format!("passwd -S {} 2>&1", quote(&self.name)),
        }
    }

    fn login_probe() -> Probe {
        Probe {
            key: LOGIN_KEY.into(),
            script: r#"printf '%s\n' "${SUDO_USER:-$(id -un)}""#.into(),
        }
    }

    fn sudoers_text(&self, name: &str) -> Option<Vec<u8>> {
        let sudo = self.sudo.as_ref()?;
        let tag = if sudo.nopasswd { "NOPASSWD: " } else { "" };
        Some(
            format!(
                "# Managed by corral ({KIND}.{name}); local changes are overwritten.\n{} ALL=(ALL:ALL) {tag}{}\n",
                self.name,
                sudo.commands.trim()
            )
            .into_bytes(),
        )
    }

    /// The authorized_keys content wanted, given what the file holds now.
    fn keys_text(&self, state: &FileState, key: &str) -> Result<Vec<u8>, FactError> {
        let mut text = String::new();
        if !self.exclusive_keys {
            match state {
                FileState::Present {
                    body: file::Body::Content(bytes),
                    ..
                } => text = String::from_utf8_lossy(bytes).into_owned(),
                FileState::Present { .. } => {
                    return Err(FactError::new(
                        key,
                        format!("{} is too large to merge keys into", self.keys_path()),
                    ))
                }
                _ => {}
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
        }
        let present: Vec<(String, String)> = text
            .lines()
            .filter_map(key_of_line)
            .map(|(t, b)| (t.to_owned(), b.to_owned()))
            .collect();
        for line in &self.authorized_keys {
            let (t, b) = parse_key(line).map_err(|why| FactError::new(key, why))?;
            if !present.iter().any(|(pt, pb)| pt == t && pb == b) {
                text.push_str(line.trim());
                text.push('\n');
            }
        }
        Ok(text.into_bytes())
    }

    /// Why the wanted state would cut off the user corral connects as, if it would.
    fn lockout(&self) -> Option<String> {
        let user = &self.name;
        if !self.present {
            return Some(format!("removing {user}, the user corral connects as"));
        }
        if NO_LOGIN_SHELLS.contains(&self.shell()) {
            return Some(format!(
                "`shell: {}` for {user}, the user corral connects as: the next login would fail",
                self.shell()
            ));
        }
        if self.exclusive_keys && self.authorized_keys.is_empty() {
            return Some(format!(
                "an empty exclusive key list for {user}, the user corral connects as: its keys would all be removed"
            ));
        }
        None
    }

    /// Why the wanted sudo setting would stop `sudo -n sh` for this user, if it would (a
    /// drop-in removed, a password asked, commands other than `ALL`).
    fn sudo_lockout(&self) -> Option<String> {
        let user = &self.name;
        let Some(sudo) = &self.sudo else {
            return Some(format!(
                "removing {}, the sudo right of {user}, the user corral connects as through sudo",
                self.sudoers_path()
            ));
        };
        if !sudo.nopasswd {
            return Some(format!(
                "`nopasswd: false` for {user}, the user corral connects as through `sudo -n`, which never answers a password prompt"
            ));
        }
        if !sudo.commands.split(',').any(|c| c.trim() == "ALL") {
            return Some(format!(
                "`commands: {}` for {user}, the user corral connects as: corral runs its scripts with `sudo -n sh`, which needs `ALL`",
                sudo.commands.trim()
            ));
        }
        None
    }

    fn decide(&self, name: &str, facts: &HostFacts) -> Result<Decision, FactError> {
        let login = facts.get(LOGIN_KEY)?;
        if login.rc == 0 && login.output.trim() == self.name {
            if let Some(why) = self.lockout() {
                return Err(FactError::new(
                    LOGIN_KEY,
                    format!("refused: {why}. Connect as another user (`ssh: {{user: …}}` in the inventory), or change the resource"),
                ));
            }
        }
        let passwd_key = self.key("passwd");
        let account = parse_passwd(&passwd_key, facts.get(&passwd_key)?)?;
        let sudo_path = self.sudoers_path();
        let sudo_key = file::probe_key(&sudo_path, file::Read::Content);
        let sudo_state = file::parse(&sudo_key, facts.get(&sudo_key)?)?;
        let mut attributes = Vec::new();
        let mut decision = Decision {
            action: Action::NoOp,
            attributes: Vec::new(),
            account: AccountChange::Keep,
            lock: false,
            keys: None,
            sudo: SudoChange::Keep,
        };

        if !self.present {
            if let Some(account) = &account {
                attributes.push(AttrChange::new(
                    "user",
                    AttrValue::Scalar(format!("{} (uid {})", self.name, account.uid)),
                    AttrValue::Absent,
                ));
                attributes.push(AttrChange::new(
                    "home",
                    AttrValue::Scalar(account.home.clone()),
                    AttrValue::Scalar(format!("{} (kept)", account.home)),
                ));
                decision.account = AccountChange::Remove;
            }
            if let Some(change) = sudo_deletion(&sudo_key, &sudo_path, &sudo_state)? {
                attributes.push(change);
                decision.sudo = SudoChange::Delete;
            }
            decision.action = if attributes.is_empty() {
                Action::NoOp
            } else {
                Action::Update
            };
            decision.attributes = attributes;
            return Ok(decision);
        }

        let want_groups: Vec<String> = {
            let mut g = self.groups.clone();
            g.sort();
            g
        };
        let primary;
        match &account {
            None => {
                decision.account = AccountChange::Create;
                decision.action = Action::Create;
                let uid = self
                    .uid
                    .map_or("(the next free one)".into(), |u| u.to_string());
                attributes.push(AttrChange::new(
                    "uid",
                    AttrValue::Absent,
                    AttrValue::Scalar(uid),
                ));
                if !want_groups.is_empty() {
                    attributes.push(AttrChange::new(
                        "groups",
                        AttrValue::Absent,
                        AttrValue::Scalar(want_groups.join(", ")),
                    ));
                }
                attributes.push(AttrChange::new(
                    "shell",
                    AttrValue::Absent,
                    AttrValue::Scalar(self.shell().into()),
                ));
                attributes.push(AttrChange::new(
                    "home",
                    AttrValue::Absent,
                    AttrValue::Scalar(self.home()),
                ));
                if self.locked_password {
                    attributes.push(AttrChange::new(
                        "password",
                        AttrValue::Absent,
                        AttrValue::Scalar("locked".into()),
                    ));
                    decision.lock = true;
                }
                // useradd makes a group of the user's name (USERGROUPS_ENAB).
                primary = self.name.clone();
            }
            Some(account) => {
                if let Some(uid) = self.uid {
                    if uid != account.uid {
                        return Err(FactError::new(
                            &passwd_key,
                            format!(
                                "refused: {} has uid {}, and changing it to {uid} would leave its files with the old one; change it by hand (usermod -u, then chown its files), or leave `uid` out",
                                self.name, account.uid
                            ),
                        ));
                    }
                }
                let groups_key = self.key("groups");
                let (primary_group, have_groups) =
                    parse_groups(&groups_key, facts.get(&groups_key)?)?;
                let want_groups: Vec<String> = want_groups
                    .into_iter()
                    .filter(|g| *g != primary_group)
                    .collect();
                let mut modify = (None, None, None);
                if have_groups != want_groups {
                    attributes.push(AttrChange::scalar(
                        "groups",
                        have_groups.join(", "),
                        want_groups.join(", "),
                    ));
                    modify.2 = Some(want_groups);
                }
                if account.shell != self.shell() {
                    attributes.push(AttrChange::scalar("shell", &account.shell, self.shell()));
                    modify.0 = Some(self.shell().to_owned());
                }
                if account.home != self.home() {
                    attributes.push(AttrChange::scalar(
                        "home",
                        &account.home,
                        format!("{} (moved)", self.home()),
                    ));
                    modify.1 = Some(self.home());
                }
                if modify != (None, None, None) {
                    decision.account = AccountChange::Modify {
                        shell: modify.0,
                        home: modify.1,
                        groups: modify.2,
                    };
                }
                if self.locked_password {
                    let lock_key = self.key("lock");
                    if !parse_locked(&lock_key, facts.get(&lock_key)?)? {
                        attributes.push(AttrChange::scalar("password", "usable", "locked"));
                        decision.lock = true;
                    }
                }
                primary = primary_group;
            }
        }

        if self.manages_keys() {
            let path = self.keys_path();
            let key = file::probe_key(&path, file::Read::Content);
            let state = file::parse(&key, facts.get(&key)?)?;
            let bytes = self.keys_text(&state, &key)?;
            let desired = keys_file(&path, &bytes, &self.name, &primary);
            let (file_action, changes) =
                file::diff_file(&key, "authorized_keys", &desired, &state)?;
            let mut changed = file_action != Action::NoOp;
            attributes.extend(changes.into_iter().filter_map(|mut c| {
                if c.name == "authorized_keys.directory" {
                    return None;
                }
                if c.name == "authorized_keys.content" {
                    c.name = "authorized_keys".into();
                }
                Some(c)
            }));
            // `~/.ssh` itself: 0700, the user's.
            let dir = self.ssh_dir();
            let dir_key = file::probe_key(&dir, file::Read::Metadata);
            match file::parse(&dir_key, facts.get(&dir_key)?)? {
                FileState::Present {
                    mode,
                    owner,
                    file_type,
                    ..
                } => {
                    if file_type != "directory" {
                        return Err(FactError::new(
                            &dir_key,
                            format!("{dir} is a {file_type}, not a directory"),
                        ));
                    }
                    if mode != "700" {
                        attributes.push(AttrChange::scalar(
                            ".ssh mode",
                            format!("{mode:0>4}"),
                            "0700",
                        ));
                        changed = true;
                    }
                    if owner != self.name && account.is_some() {
                        attributes.push(AttrChange::scalar(".ssh owner", owner, &self.name));
                        changed = true;
                    }
                }
                FileState::Link { at, target } => {
                    return Err(FactError::new(
                        &dir_key,
                        format!("{at} is a symbolic link (to {target}); corral never writes through one"),
                    ));
                }
                FileState::NotDirectory { at } => {
                    return Err(FactError::new(
                        &dir_key,
                        format!("{at}, above {dir}, is not a directory"),
                    ));
                }
                FileState::Absent { .. } => changed = true,
            }
            if changed {
                decision.keys = Some((bytes, primary));
            }
        }

        match self.sudoers_text(name) {
            Some(bytes) => {
                let (sudo_action, changes) = file::diff_file(
                    &sudo_key,
                    &sudo_path,
                    &sudoers_file(&sudo_path, &bytes),
                    &sudo_state,
                )?;
                attributes.extend(changes.into_iter().map(|mut c| {
                    if c.name == format!("{sudo_path}.content") {
                        c.name = sudo_path.clone();
                    }
                    c
                }));
                if sudo_action != Action::NoOp {
                    decision.sudo = SudoChange::Write(bytes);
                }
            }
            None => {
                if let Some(change) = sudo_deletion(&sudo_key, &sudo_path, &sudo_state)? {
                    attributes.push(change);
                    decision.sudo = SudoChange::Delete;
                }
            }
        }
        // Scripts reach root through `sudo -n sh`: a change of the connecting user's
        // drop-in that would stop that is corral cutting its own way in.
        if decision.sudo != SudoChange::Keep && connecting_through_sudo(facts) == Some(&self.name) {
            if let Some(why) = self.sudo_lockout() {
                return Err(FactError::new(
                    LOGIN_KEY,
                    format!("refused: {why}. Keep `sudo: {{commands: ALL, nopasswd: true}}`, or connect as another user first (`ssh: {{user: …}}` in the inventory)"),
                ));
            }
        }

        if decision.action != Action::Create && !attributes.is_empty() {
            decision.action = Action::Update;
        }
        decision.attributes = attributes;
        Ok(decision)
    }

    /// The script that creates or modifies the account, and locks its password.
    fn account_script(&self, decision: &Decision) -> String {
        let name = quote(&self.name);
        let mut script = String::from("set -e\n");
        match &decision.account {
            AccountChange::Keep => {}
            AccountChange::Create => {
                let mut args = format!(
                    "useradd -m -s {} -d {}",
                    quote(self.shell()),
                    quote(&self.home())
                );
                if let Some(uid) = self.uid {
                    args.push_str(&format!(" -u {uid}"));
                }
                if !self.groups.is_empty() {
                    args.push_str(&format!(" -G {}", quote(&self.groups.join(","))));
                }
                script.push_str(&format!("{args} -- {name}\n"));
            }
            AccountChange::Modify {
                shell,
                home,
                groups,
            } => {
                let mut args = String::from("usermod");
                if let Some(shell) = shell {
                    args.push_str(&format!(" -s {}", quote(shell)));
                }
                if let Some(home) = home {
                    args.push_str(&format!(" -d {} -m", quote(home)));
                }
                if let Some(groups) = groups {
                    args.push_str(&format!(" -G {}", quote(&groups.join(","))));
                }
                script.push_str(&format!("{args} -- {name}\n"));
            }
            AccountChange::Remove => {
                script.push_str(&format!("userdel -- {name}\n"));
            }
        }
        if decision.lock {
            script.push_str(&format!("usermod -L -- {name}\n"));
        }
        script
    }

    /// The script that makes `~/.ssh` (0700, the user's, never through a link) and writes
    /// the authorized_keys file in it.
    fn keys_script(&self, bytes: &[u8], group: &str) -> String {
        let dir = self.ssh_dir();
        let path = self.keys_path();
        let owner = format!("{}:{group}", self.name);
        let mut script = format!(
            "(\nset -eu\n[ -d {home} ] || {{ echo \"corral: \"{home}\" does not exist; create the home directory first\"; exit 1; }}\n",
            home = quote(&self.home())
        );
        script.push_str(&file::enter_directory(&dir, false));
        script.push_str(&format!(
            "[ -e \"$b\" ] || mkdir -m 0700 -- \"$b\"\ncd -P -- \"$b\"\n[ \"$(pwd -P)\" = {dir} ] || {{ echo \"corral: \"{dir}\" is reached through a symbolic link\"; exit 1; }}\nchown -- {owner} .\nchmod 0700 .\n)\nrc=$?; [ \"$rc\" -eq 0 ] || exit \"$rc\"\n",
            dir = quote(&dir),
            owner = quote(&owner)
        ));
        script.push_str(&file::write_script(&keys_file(
            &path, bytes, &self.name, group,
        )));
        script
    }
}

/// The user corral logs in as when it reaches root through sudo (not when it logs in as
/// root), from the facts of [`UserSpec::login_probe`].
fn connecting_through_sudo(facts: &HostFacts) -> Option<&str> {
    let out = facts.get(LOGIN_KEY).ok().filter(|out| out.rc == 0)?;
    Some(out.output.trim()).filter(|user| !user.is_empty() && *user != "root")
}

/// The probe of who corral logs in as, read on every machine (see `gather`): the
/// plan of a deletion needs it even where no `os/user` is declared any more.
pub fn login_probe() -> Probe {
    UserSpec::login_probe()
}

/// Why deleting what `change` removes (a resource no longer in the configuration) would
/// cut off the user corral connects as, if it would: its sudoers drop-in gone.
pub fn deletion_lockout(change: &ResourceChange, facts: &HostFacts) -> Option<String> {
    if change.address.kind != KIND {
        return None;
    }
    let user = connecting_through_sudo(facts)?;
    let path = format!("/etc/sudoers.d/corral-{user}");
    let removed = change.attributes.iter().any(|a| {
        a.name == "path"
            && a.before == AttrValue::Scalar(path.clone())
            && a.after == AttrValue::Absent
    });
    removed.then(|| {
        format!(
            "refused: removing {path} ({} is no longer in the configuration) would take away the sudo right of {user}, the user corral connects as. Keep the document (with `sudo:`), or connect as another user first (`ssh: {{user: …}}` in the inventory)",
            change.address.resource()
        )
    })
}

/// The change that deletes the sudoers drop-in, when there is one.
fn sudo_deletion(
    key: &str,
    path: &str,
    state: &FileState,
) -> Result<Option<AttrChange>, FactError> {
    match state {
        FileState::Absent { .. } => Ok(None),
        FileState::Link { at, target } => Err(FactError::new(
            key,
            format!("{at} is a symbolic link (to {target}); corral never removes one"),
        )),
        FileState::NotDirectory { at } => Err(FactError::new(
            key,
            format!("{at}, above {path}, is not a directory"),
        )),
        FileState::Present { body, .. } => {
            let before = match body {
                file::Body::Content(bytes) => {
                    AttrValue::Content(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => AttrValue::Opaque("present".into()),
            };
            Ok(Some(AttrChange::new(path, before, AttrValue::Absent)))
        }
    }
}

fn keys_file<'a>(
    path: &'a str,
    bytes: &'a [u8],
    owner: &'a str,
    group: &'a str,
) -> DesiredFile<'a> {
    DesiredFile {
        path,
        bytes,
        mode: Some("0600"),
        owner: Some(owner),
        group: Some(group),
        sensitive: false,
        keep_original: false,
    }
}

fn sudoers_file<'a>(path: &'a str, bytes: &'a [u8]) -> DesiredFile<'a> {
    DesiredFile {
        path,
        bytes,
        mode: Some("0440"),
        owner: Some("root"),
        group: Some("root"),
        sensitive: false,
        keep_original: false,
    }
}

impl MachineKind for UserSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, _name: &str) -> Vec<Probe> {
        let mut probes = vec![
            Self::login_probe(),
            self.passwd_probe(),
            self.groups_probe(),
            self.lock_probe(),
            file::probe(&self.sudoers_path(), file::Read::Content),
        ];
        if self.present && self.manages_keys() {
            probes.push(file::probe(&self.keys_path(), file::Read::Content));
            probes.push(file::probe(&self.ssh_dir(), file::Read::Metadata));
        }
        if self.present {
            probes.extend(self.groups.iter().map(|g| file::account_probe("group", g)));
        }
        if self.present && self.sudo.is_some() {
            probes.push(Probe {
                key: VISUDO_KEY.into(),
                script: "command -v visudo".into(),
            });
        }
        probes
    }

    fn unmet(&self, _name: &str, facts: &HostFacts) -> Vec<String> {
        if !self.present {
            return Vec::new();
        }
        let mut unmet: Vec<String> = self
            .groups
            .iter()
            .filter(|g| {
                facts
                    .get(&file::account_key("group", g))
                    .is_ok_and(|out| out.rc == 2)
            })
            .map(|g| format!("group `{g}` does not exist"))
            .collect();
        if self.sudo.is_some() && facts.get(VISUDO_KEY).is_ok_and(|out| out.rc != 0) {
            unmet.push("`visudo` is not installed (package sudo)".into());
        }
        unmet
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let decision = self.decide(name, facts)?;
        Ok(Diff {
            action: Some(decision.action),
            attributes: decision.attributes,
            reason: None,
        })
    }

    fn steps(&self, name: &str, _change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let decision = match self.decide(name, facts) {
            Ok(decision) => decision,
            Err(e) => {
                return vec![super::failing_step(
                    &format!("change user {}", self.name),
                    &e,
                )]
            }
        };
        let mut steps = Vec::new();
        let sudo_path = self.sudoers_path();
        if decision.account == AccountChange::Remove {
            if decision.sudo == SudoChange::Delete {
                steps.push(Step {
                    description: format!("remove {sudo_path}"),
                    script: file::delete_script(&sudo_path),
                });
            }
            steps.push(Step {
                description: format!("remove user {} (its home is kept)", self.name),
                script: self.account_script(&decision),
            });
            return steps;
        }
        if decision.account != AccountChange::Keep || decision.lock {
            let what = match decision.account {
                AccountChange::Create => "create",
                _ => "change",
            };
            steps.push(Step {
                description: format!("{what} user {}", self.name),
                script: self.account_script(&decision),
            });
        }
        if let Some((bytes, group)) = &decision.keys {
            steps.push(Step {
                description: format!("write {}", self.keys_path()),
                script: self.keys_script(bytes, group),
            });
        }
        match &decision.sudo {
            SudoChange::Keep => {}
            SudoChange::Write(bytes) => steps.push(Step {
                description: format!("write {sudo_path}, checked with visudo"),
                script: file::write_checked_script(
                    &sudoers_file(&sudo_path, bytes),
                    Some("visudo -c -q -f %s"),
                ),
            }),
            SudoChange::Delete => steps.push(Step {
                description: format!("remove {sudo_path}"),
                script: file::delete_script(&sudo_path),
            }),
        }
        steps
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        vec![
            Claim::new(format!("user {}", self.name), name),
            Claim::new(format!("file {}", self.sudoers_path()), name),
        ]
    }

    fn managed_entry(&self, _name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry::file(
            KIND,
            &self.sudoers_path(),
        ))
    }

    fn access_guard(&self, _name: &str) -> Option<AccessGuard> {
        // Decided without facts: every change is guarded, as the user may be corral's own.
        Some(AccessGuard {
            paths: vec![self.keys_path(), self.sudoers_path()],
            reload: "true".into(),
        })
    }
}

#[cfg(test)]
mod tests;
