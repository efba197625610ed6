//! Tests of `os/user`: names, keys, sudo, the connecting user's access, and the plan from
//! recorded hosts.

use super::*;
use std::collections::BTreeMap;

const ALICE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdz4etBzwvD8SM3UoPZSi7Fn1koCyMsQgWQG51CdyQU alice@laptop";
const BOB: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLhG/4GKklk7CkU/MHn9msWA/IjnU31z1d098Veke1G1EYgSwUKw20lf4sgov6XgvgPRfs9af3GenY1zwfs5zbI= bob";
const CAROL: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCBaydFE5YmyldQi4yFKn3srgvBlt3/wfulwVVK+IRFPGG/tuNVj46fYtojY3Lth0Cs/RhC2gDQpT932IbGp8eDbU8NPFt64J0wViXvZ4nLwvFtmPHfbwDC0empYAQo3LFfAHTdtlk10yilF8sH1PYcuDUad7NvNYCVr7M4++w6SnkO6Y3LhywxytjWYSZHAGPPUR8sK4cHSu2EPDan+2RSWdyRH10oCiUtSCaXbQjeXEWSAGf/Rz1rrDdfQdOm+I4LRobKwDHYFEdHca4HlUisDKqmGAzJbMF4gOfyALdyJMPZryM9ieP71xzrCtQQnG1tnNbF4X8wfSx/VcloIB7n carol";

/// A probe's output recorded on the lab, `fixtures/user/CASE.json`, after checking
/// that it was recorded with the probe's own command.
fn recorded(case: &str, probe: &Probe) -> ProbeOutput {
    crate::facts::recorded::checked(
        &format!("user/{case}"),
        probe,
        "record it again on a lab host",
    )
}

fn spec(name: &str) -> UserSpec {
    UserSpec {
        machines: Selector::All,
        name: name.into(),
        uid: None,
        groups: Vec::new(),
        shell: None,
        home: None,
        authorized_keys: vec![ALICE.into()],
        exclusive_keys: true,
        locked_password: true,
        sudo: None,
        present: true,
    }
}

/// Facts of a host from recorded cases: `(probe, case)` for each probe of `spec`.
fn facts(spec: &UserSpec, cases: &[(&str, &str)]) -> HostFacts {
    let mut probes = BTreeMap::new();
    for probe in spec.probes("r") {
        let case = cases
            .iter()
            .find(|(key, _)| probe.key.starts_with(key))
            .map(|(_, case)| *case)
            .unwrap_or_else(|| panic!("no case for {}", probe.key));
        probes.insert(probe.key.clone(), recorded(case, &probe));
    }
    HostFacts {
        probes,
        ..Default::default()
    }
}

#[test]
fn names_follow_useradd() {
    for name in ["deploy", "_svc", "a-b_1", &"x".repeat(32)] {
        assert!(valid_name(name), "{name}");
    }
    for name in [
        "",
        "Deploy",
        "1x",
        "-x",
        "a.b",
        "a b",
        "a;rm",
        &"x".repeat(33),
    ] {
        assert!(!valid_name(name), "{name}");
    }
}

#[test]
fn public_keys_are_checked_down_to_their_fields() {
    for key in [ALICE, BOB, CAROL] {
        assert!(parse_key(key).is_ok(), "{key}");
    }
    assert_eq!(
        parse_key(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdz4etBzwvD8SM3UoPZSi7Fn1koCyMsQgWQG51CdyQU"
        )
        .unwrap()
        .0,
        "ssh-ed25519",
        "the comment is optional"
    );
    for (key, why) in [
        ("", "empty"),
        ("ssh-dss AAAA", "not a public key type"),
        ("ssh-ed25519", "missing"),
        ("ssh-ed25519 !!!", "base64"),
        // An RSA key under the ed25519 type.
        (
            &CAROL.replacen("ssh-rsa", "ssh-ed25519", 1),
            "not a `ssh-ed25519` key",
        ),
        // Cut short.
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ+not+a+key",
            "not a `ssh-ed25519` key",
        ),
        (&format!("{ALICE}\nssh-rsa x"), "one line"),
    ] {
        let error = parse_key(key).unwrap_err();
        assert!(error.contains(why), "{key}: {error}");
    }
}

#[test]
fn authorized_keys_lines_are_read_with_options_and_comments() {
    assert_eq!(
        key_of_line(&format!("from=\"10.0.0.1\" {ALICE}")),
        Some((
            "ssh-ed25519",
            "AAAAC3NzaC1lZDI1NTE5AAAAIOdz4etBzwvD8SM3UoPZSi7Fn1koCyMsQgWQG51CdyQU"
        ))
    );
    assert_eq!(key_of_line("# ssh-ed25519 AAAA"), None);
    assert_eq!(key_of_line(""), None);
}

#[test]
fn additive_keys_keep_the_others_and_add_once() {
    let mut spec = spec("deploy");
    spec.exclusive_keys = false;
    spec.authorized_keys = vec![ALICE.into(), BOB.into()];
    let state = FileState::Present {
        mode: "600".into(),
        owner: "deploy".into(),
        group: "deploy".into(),
        size: 0,
        modified: 0,
        file_type: "regular file".into(),
        body: file::Body::Content(format!("# mine\n{CAROL}\nfrom=\"x\" {ALICE}").into_bytes()),
        original_kept: false,
        created_by_corral: false,
    };
    let text = String::from_utf8(spec.keys_text(&state, "k").unwrap()).unwrap();
    assert_eq!(
        text,
        format!("# mine\n{CAROL}\nfrom=\"x\" {ALICE}\n{BOB}\n")
    );
    spec.exclusive_keys = true;
    let text = String::from_utf8(spec.keys_text(&state, "k").unwrap()).unwrap();
    assert_eq!(text, format!("{ALICE}\n{BOB}\n"));
}

#[test]
fn the_connecting_user_is_never_cut_off() {
    let mut gone = spec("admin");
    gone.present = false;
    let mut nologin = spec("admin");
    nologin.shell = Some("/usr/sbin/nologin".into());
    let mut no_keys = spec("admin");
    no_keys.authorized_keys.clear();
    for (spec, why) in [
        (gone, "removing admin"),
        (nologin, "`shell: /usr/sbin/nologin`"),
        (no_keys, "empty exclusive key list"),
    ] {
        assert!(spec.lockout().unwrap_or_default().contains(why), "{why}");
    }
    let mut additive = spec("admin");
    additive.authorized_keys.clear();
    additive.exclusive_keys = false;
    assert_eq!(additive.lockout(), None);
    assert_eq!(spec("admin").lockout(), None);
}

/// Facts of a host corral reads as `ops` through sudo (recorded on the lab).
fn through_sudo() -> HostFacts {
    let probe = UserSpec::login_probe();
    HostFacts {
        probes: BTreeMap::from([(probe.key.clone(), recorded("login-through-sudo", &probe))]),
        ..Default::default()
    }
}

#[test]
fn the_connecting_users_sudo_is_never_narrowed_away() {
    assert_eq!(connecting_through_sudo(&through_sudo()), Some("ops"));
    // Logged in as root, sudo is not corral's way in.
    let root = facts_of(&recorded_spec(), "missing");
    assert_eq!(connecting_through_sudo(&root), None);
    let full = Sudo {
        commands: "ALL".into(),
        nopasswd: true,
    };
    let with = |sudo: Option<Sudo>| UserSpec {
        sudo,
        ..spec("ops")
    };
    assert_eq!(with(Some(full.clone())).sudo_lockout(), None);
    for (sudo, why) in [
        (
            None,
            "removing /etc/sudoers.d/corral-ops, the sudo right of ops",
        ),
        (
            Some(Sudo {
                nopasswd: false,
                ..full.clone()
            }),
            "`nopasswd: false` for ops",
        ),
        (
            Some(Sudo {
                commands: "/usr/bin/apt, /usr/bin/systemctl".into(),
                ..full.clone()
            }),
            "`commands: /usr/bin/apt, /usr/bin/systemctl` for ops",
        ),
    ] {
        let refused = with(sudo).sudo_lockout().unwrap_or_default();
        assert!(refused.contains(why), "{refused}");
    }
}

#[test]
fn sudoers_line_names_the_user_and_the_commands() {
    let mut spec = spec("deploy");
    spec.sudo = Some(Sudo {
        commands: "ALL".into(),
        nopasswd: true,
    });
    assert_eq!(
            String::from_utf8(spec.sudoers_text("ops").unwrap()).unwrap(),
            "# Managed by corral (os/user.ops); local changes are overwritten.\ndeploy ALL=(ALL:ALL) NOPASSWD: ALL\n"
        );
}

#[test]
fn account_commands_quote_every_value() {
    let mut spec = spec("deploy");
    spec.shell = Some("/bin/my shell".into());
    spec.groups = vec!["docker".into(), "adm".into()];
    spec.uid = Some(1500);
    let decision = Decision {
        action: Action::Create,
        attributes: Vec::new(),
        account: AccountChange::Create,
        lock: true,
        keys: None,
        sudo: SudoChange::Keep,
    };
    assert_eq!(
            spec.account_script(&decision),
            "set -e\nuseradd -m -s '/bin/my shell' -d /home/deploy -u 1500 -G 'docker,adm' -- deploy\nusermod -L -- deploy\n"
        );
}

/// The keys script, run by a real `sh` in a scratch home, makes `.ssh` 0700 and the
/// file 0600, and refuses a `.ssh` that is a link.
#[test]
fn keys_are_written_in_a_private_ssh_directory_never_through_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let group = String::from_utf8(
        std::process::Command::new("id")
            .arg("-gn")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut spec = spec(user.trim());
    spec.home = Some(home.display().to_string());
    let run = |script: &str| {
        // The private directory check expects root: the test may not be root.
        let script = script.replace("'0 700'", "\"$(id -u) 700\"").replace(
            file::ORIGINALS_DIR,
            &dir.path().join("originals").display().to_string(),
        );
        std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap()
    };
    let out = run(&spec.keys_script(b"key\n", group.trim()));
    assert!(out.status.success(), "{out:?}");
    let ssh = home.join(".ssh");
    assert_eq!(
        std::fs::metadata(&ssh).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let keys = ssh.join("authorized_keys");
    assert_eq!(std::fs::read(&keys).unwrap(), b"key\n");
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // A `.ssh` swapped for a link to elsewhere is refused, and elsewhere untouched.
    std::fs::remove_dir_all(&ssh).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &ssh).unwrap();
    let out = run(&spec.keys_script(b"key\n", group.trim()));
    assert!(!out.status.success(), "{out:?}");
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}

/// The spec the fixtures were recorded with (resource `deploy`).
fn recorded_spec() -> UserSpec {
    UserSpec {
        groups: vec!["adm".into()],
        sudo: Some(Sudo {
            commands: "ALL".into(),
            nopasswd: true,
        }),
        ..spec("deploy")
    }
}

fn case(case: &str) -> Vec<(&'static str, String)> {
    let at = |probe: &str| match (probe, case) {
        ("login" | "visudo" | "group-adm", _) => format!("{probe}-missing"),
        _ => format!("{probe}-{case}"),
    };
    vec![
        ("user:login", at("login")),
        ("user:passwd", at("passwd")),
        ("user:groups", at("groups")),
        ("user:lock", at("lock")),
        ("file:content:/etc/sudoers", at("sudoers")),
        ("file:content:/home", at("keys")),
        ("file:meta:", at("ssh-dir")),
        ("getent:group:adm", at("group-adm")),
        ("getent:group:nosuch", "group-nosuch-missing".into()),
        ("user:visudo", at("visudo")),
    ]
}

fn facts_of(spec: &UserSpec, name: &str) -> HostFacts {
    let cases = case(name);
    let cases: Vec<(&str, &str)> = cases.iter().map(|(k, c)| (*k, c.as_str())).collect();
    facts(spec, &cases)
}

#[test]
fn missing_user_is_created_with_everything() {
    let spec = recorded_spec();
    let facts = facts_of(&spec, "missing");
    assert!(spec.unmet("deploy", &facts).is_empty());
    let diff = spec.diff("deploy", &facts).unwrap();
    assert_eq!(diff.action(), Action::Create);
    let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "uid",
            "groups",
            "shell",
            "home",
            "password",
            "authorized_keys",
            "authorized_keys.mode",
            "authorized_keys.owner",
            "authorized_keys.group",
            "/etc/sudoers.d/corral-deploy",
            "/etc/sudoers.d/corral-deploy.mode",
            "/etc/sudoers.d/corral-deploy.owner",
            "/etc/sudoers.d/corral-deploy.group",
        ]
    );
    let change = ResourceChange {
        address: crate::address::Address::new(KIND, "deploy", Some("n1")),
        machine: Some("n1".into()),
        action: diff.action(),
        attributes: diff.attributes,
        reason: None,
        triggered_by: Vec::new(),
    };
    let steps: Vec<String> = spec
        .steps("deploy", &change, &facts)
        .into_iter()
        .map(|s| s.description)
        .collect();
    assert_eq!(
        steps,
        [
            "create user deploy",
            "write /home/deploy/.ssh/authorized_keys",
            "write /etc/sudoers.d/corral-deploy, checked with visudo",
        ]
    );
}

#[test]
fn existing_user_as_configured_is_a_no_op() {
    let spec = recorded_spec();
    let diff = spec.diff("deploy", &facts_of(&spec, "existing")).unwrap();
    assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
}

#[test]
fn unlocked_password_and_removed_keys_file_show_as_drift() {
    let spec = recorded_spec();
    let diff = spec.diff("deploy", &facts_of(&spec, "drift")).unwrap();
    assert_eq!(diff.action(), Action::Update);
    assert_eq!(
        diff.attributes[0],
        AttrChange::scalar("password", "usable", "locked")
    );
    assert_eq!(diff.attributes[1].name, "authorized_keys");
    assert_eq!(diff.attributes[1].before, AttrValue::Absent);
}

#[test]
fn changes_of_an_existing_user_are_attributes() {
    let mut spec = recorded_spec();
    spec.groups.clear();
    spec.shell = Some("/bin/sh".into());
    spec.sudo = None;
    spec.authorized_keys = vec![BOB.into()];
    let diff = spec.diff("deploy", &facts_of(&spec, "existing")).unwrap();
    let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "groups",
            "shell",
            "authorized_keys",
            "/etc/sudoers.d/corral-deploy"
        ]
    );
    assert_eq!(diff.attributes[0], AttrChange::scalar("groups", "adm", ""));
    assert_eq!(diff.attributes[3].after, AttrValue::Absent);
}

#[test]
fn a_uid_change_is_refused() {
    let mut spec = recorded_spec();
    spec.uid = Some(1500);
    let error = spec
        .diff("deploy", &facts_of(&spec, "existing"))
        .unwrap_err();
    assert!(error.message.contains("has uid 1000"), "{error}");
}

#[test]
fn a_missing_group_is_named() {
    let mut spec = recorded_spec();
    spec.groups.push("nosuch".into());
    let facts = facts_of(&spec, "missing");
    assert_eq!(
        spec.unmet("deploy", &facts),
        ["group `nosuch` does not exist"]
    );
}

#[test]
fn removal_keeps_the_home_and_removes_the_drop_in() {
    let mut spec = recorded_spec();
    spec.present = false;
    let facts = facts_of(&spec, "existing");
    let diff = spec.diff("deploy", &facts).unwrap();
    let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["user", "home", "/etc/sudoers.d/corral-deploy"]);
    let decision = spec.decide("deploy", &facts).unwrap();
    assert_eq!(
        spec.account_script(&decision),
        "set -e\nuserdel -- deploy\n"
    );
    assert!(spec
        .diff("deploy", &facts_of(&spec, "missing"))
        .unwrap()
        .attributes
        .is_empty());
}
