//! `os/sysctl`: kernel parameters, persisted in one `/etc/sysctl.d/` file per resource and
//! applied live.
//!
//! The live value (`sysctl -n`) is the truth for each key, so a value changed by hand shows
//! up as exactly that key; the persisted file is compared as a file. A key the kernel does
//! not have is an error at plan time, not a surprise at apply time.
//!
//! Keys are checked against sysctl's grammar at load time and written one way (see
//! [`canonical_key`]), so `net.ipv4.ip_forward` and `net/ipv4/ip_forward` are one key to
//! claim and compare, and no key can name a path outside `/proc/sys`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::file;
use super::{Claim, Kind, MachineKind, Step};
use crate::base::check::CheckContext;
use crate::base::selector::Selector;
use crate::facts::{FactError, HostFacts, Probe, ProbeOutput};
use crate::plan::{Action, AttrChange, Diff, ResourceChange};
use crate::shell::quote;

pub const KIND: &str = "os/sysctl";

/// `os/sysctl` specification.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SysctlSpec {
    pub machines: Selector,
    /// Keys (dotted as `sysctl -a` prints them, or `/`-separated) to values, applied in the
    /// order written.
    pub values: BTreeMap<String, String>,
    /// The canonical keys in the order the configuration writes them (set by `check`).
    #[serde(skip)]
    pub order: Vec<String>,
}

/// Where a resource's values are persisted. Later files win at boot, and Debian links
/// `/etc/sysctl.conf` in as `99-sysctl.conf`: `99-zz-` sorts after it.
pub fn persisted_path(name: &str) -> String {
    format!("/etc/sysctl.d/99-zz-corral-{name}.conf")
}

/// The components of a sysctl key, as named under `/proc/sys`. As in sysctl(8), `/` may
/// separate them instead of `.`: when the first separator is `/`, dots inside components
/// are literal (`net/ipv4/conf/eth0.100/rp_filter`, VLAN interface `eth0.100`); in
/// `.`-separated keys a `/` inside a component stands for such a dot
/// (`net.ipv4.conf.eth0/100.rp_filter`). `Err` says what is wrong.
pub fn key_components(key: &str) -> Result<Vec<String>, &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    let slash_separated = key
        .find(['.', '/'])
        .is_some_and(|at| key[at..].starts_with('/'));
    let components: Vec<String> = match slash_separated {
        true => key.split('/').map(str::to_owned).collect(),
        false => key.split('.').map(|c| c.replace('/', ".")).collect(),
    };
    for component in &components {
        if component.is_empty() {
            return Err("it starts or ends with a separator, or has two in a row");
        }
        if component == "." || component == ".." {
            return Err("it names `.` or `..`");
        }
        if !component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err("it holds a character keys do not have");
        }
    }
    if components[0].starts_with('-') {
        return Err("it starts with `-`");
    }
    Ok(components)
}

/// The one spelling of a key, for claims, probes, plans and the persisted file: dotted, as
/// `sysctl -a` prints it, with dots inside a component written `/`.
pub fn canonical_key(key: &str) -> Result<String, &'static str> {
    let components = key_components(key)?;
    let written: Vec<String> = components.iter().map(|c| c.replace('.', "/")).collect();
    Ok(written.join("."))
}

fn probe_key(key: &str) -> String {
    format!("sysctl:{key}")
}

/// Values as `sysctl -n` prints them, with runs of whitespace (tabs in multi-value keys such
/// as `net.ipv4.ip_local_port_range`) made single spaces.
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The probe of a key's live value, `sysctl -n KEY`. A fact script reads it from
/// [`live_value_path`] in its one `perl` where it can (see `file::batch`).
fn read_probe(key: &str) -> String {
    format!("sysctl -n {}", quote(key))
}

/// Where the kernel shows the live value of a key a probe of this kind reads (`sysctl:KEY`
/// running [`read_probe`]): `/proc/sys/` and the key's components joined by `/` (dots in a
/// component, written `/` in a canonical key, are dots in the path).
pub fn live_value_path(probe_key: &str, script: &str) -> Option<String> {
    let key = probe_key.strip_prefix("sysctl:")?;
    if read_probe(key) != script || canonical_key(key).ok()? != key {
        return None;
    }
    let path: String = key
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    Some(format!("/proc/sys/{path}"))
}

/// Parses the output of `sysctl -n KEY`: `Ok(None)` never happens; an unknown key is an
/// error that says so.
pub fn parse(probe: &str, key: &str, out: &ProbeOutput) -> Result<String, FactError> {
    if out.rc == 0 {
        return Ok(normalize(&out.output));
    }
    if out.output.contains("cannot stat") || out.output.contains("No such file or directory") {
        return Err(FactError::new(
            probe,
            format!(
                "the kernel has no sysctl key `{key}` (is the module that provides it loaded?)"
            ),
        ));
    }
    Err(FactError::unexpected(probe, out))
}

impl Kind for SysctlSpec {
    /// Checks keys and values, and writes every key in its [`canonical_key`] spelling.
    fn check(mut self, ctx: &mut CheckContext) -> Self {
        if self.values.is_empty() {
            ctx.error(&["values"], "`values` is empty", "here").help =
                Some("list at least one `key: value`, or remove the resource".into());
        }
        let mut canonical: BTreeMap<String, String> = BTreeMap::new();
        // The key as written, for each canonical key seen.
        let mut written: BTreeMap<String, &str> = BTreeMap::new();
        // In the file's order, so that a key spelt twice is reported where it comes again.
        let values = std::mem::take(&mut self.values);
        let mut in_order: Vec<(&String, &String)> = values.iter().collect();
        in_order.sort_by_key(|(key, _)| ctx.span_of_key(&["values", key]).start);
        for (key, value) in in_order {
            let shown = key.escape_debug();
            match canonical_key(key) {
                Err(why) => {
                    ctx.error_at_key(
                        &["values", key],
                        format!("`{shown}` is not a sysctl key: {why}"),
                        "here",
                    )
                    .help = Some(
                        "write keys as `sysctl -a` prints them, e.g. `net.ipv4.ip_forward`: names of letters, digits, `_` and `-`, separated by `.` (or `/`)".into(),
                    );
                }
                Ok(name) => match written.get(&name) {
                    Some(first) => {
                        ctx.error_at_key(
                            &["values", key],
                            format!("`{shown}` is the same sysctl key as `{first}`"),
                            "here",
                        )
                        .help = Some(
                            "sysctl reads `.` and `/` as the same separator; keep one of them"
                                .into(),
                        );
                    }
                    None => {
                        written.insert(name.clone(), key);
                        self.order.push(name.clone());
                        canonical.insert(name, value.clone());
                    }
                },
            }
            if value.contains(['\n', '\0']) || normalize(value).is_empty() {
                ctx.error(
                    &["values", key],
                    format!("the value of `{shown}` must be a non-empty single line"),
                    "here",
                );
            }
        }
        self.values = canonical;
        self
    }

    fn deletion_note() -> Option<&'static str> {
        Some("; live values stay until `sysctl --system` or a reboot")
    }
}

impl SysctlSpec {
    /// Keys and values in the order written (`sysctl -p` applies a file in its order).
    fn in_order(&self) -> Vec<(&String, &String)> {
        if self.order.is_empty() {
            return self.values.iter().collect();
        }
        self.order
            .iter()
            .filter_map(|key| self.values.get_key_value(key))
            .collect()
    }

    pub fn persisted(&self, name: &str) -> Vec<u8> {
        let mut text =
            format!("# Managed by corral ({KIND}.{name}); local changes are overwritten.\n");
        for (key, value) in self.in_order() {
            text.push_str(&format!("{key} = {}\n", normalize(value)));
        }
        text.into_bytes()
    }
}

impl MachineKind for SysctlSpec {
    fn selector(&self) -> &Selector {
        &self.machines
    }

    fn rank(&self) -> u8 {
        1
    }

    fn probes(&self, name: &str) -> Vec<Probe> {
        let mut probes: Vec<Probe> = self
            .values
            .keys()
            .map(|key| Probe {
                key: probe_key(key),
                script: read_probe(key),
            })
            .collect();
        probes.push(file::probe(&persisted_path(name), file::Read::Content));
        probes
    }

    fn diff(&self, name: &str, facts: &HostFacts) -> Result<Diff, FactError> {
        let mut attributes = Vec::new();
        for (key, value) in self.in_order() {
            let probe = probe_key(key);
            let live = parse(&probe, key, facts.get(&probe)?)?;
            let want = normalize(value);
            if live != want {
                attributes.push(AttrChange::scalar(key.as_str(), live, want));
            }
        }
        let path = persisted_path(name);
        let (file_action, file_changes) = self.persisted_changes(name, facts)?;
        // The file shows as its path (content) and `PATH mode`; owner and group are always root.
        attributes.extend(file::shown_as_part(&path, file_changes));
        Ok(file::diff_with_file(file_action, attributes))
    }

    fn managed_entry(&self, name: &str) -> Option<crate::facts::record::Entry> {
        Some(crate::facts::record::Entry::file(
            KIND,
            &persisted_path(name),
        ))
    }

    fn claims(&self, name: &str) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .values
            .iter()
            .map(|(key, value)| {
                // Keys are canonical once checked; a spec built otherwise is made so here.
                let key = canonical_key(key).unwrap_or_else(|_| key.clone());
                Claim::new(format!("sysctl key {key}"), normalize(value))
            })
            .collect();
        claims.push(Claim::new(format!("file {}", persisted_path(name)), name));
        claims
    }

    fn steps(&self, name: &str, _change: &ResourceChange, facts: &HostFacts) -> Vec<Step> {
        let path = persisted_path(name);
        let bytes = self.persisted(name);
        let mut script = String::new();
        match self.persisted_changes(name, facts) {
            Ok((Action::NoOp, _)) => {}
            Ok(_) => script.push_str(&file::write_script(&file::root_file(&path, &bytes, "0644"))),
            Err(e) => return vec![super::failing_step(&format!("apply {path}"), &e)],
        }
        script.push_str(&self.apply_and_check(&path));
        vec![Step {
            description: format!("apply {path}"),
            script,
        }]
    }
}

impl SysctlSpec {
    /// How the persisted file differs from the host's, as the file kind says (attributes
    /// named `PATH.content`, `PATH.mode`, …).
    fn persisted_changes(
        &self,
        name: &str,
        facts: &HostFacts,
    ) -> Result<(Action, Vec<AttrChange>), FactError> {
        let path = persisted_path(name);
        let bytes = self.persisted(name);
        file::root_file_changes(&file::root_file(&path, &bytes, "0644"), facts)
    }

    /// Shell text that applies the persisted file (keys in the order written), reads every
    /// value back, and applies the file again while the kernel changed some of them (setting
    /// `net.ipv4.ip_forward` resets `net.ipv4.conf.all.accept_redirects`, say); a value that
    /// still does not hold after three passes fails the step, named.
    pub fn apply_and_check(&self, path: &str) -> String {
        let mut checks = String::new();
        for (key, value) in self.in_order() {
            checks.push_str(&format!(
                "  v=$(sysctl -n {k}); set -f; set -- $v; set +f; [ \"$*\" = {want} ] || bad=\"$bad {k}\"\n",
                k = quote(key),
                want = quote(&normalize(value)),
            ));
        }
        format!(
            "pass=0\nwhile :; do\n  pass=$((pass + 1))\n  sysctl -q -p {p} || exit 1\n  bad=\n{checks}  [ -n \"$bad\" ] || break\n  if [ \"$pass\" -ge 3 ]; then echo \"corral: the kernel does not keep:$bad (another key of this resource or of the system resets them; write them after that key)\"; exit 1; fi\ndone\n",
            p = quote(path)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    #[test]
    fn keys_have_one_spelling_whatever_the_separator() {
        for (key, canonical) in [
            ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
            ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
            // A VLAN interface: dots in names are literal after a first `/` ...
            (
                "net/ipv4/conf/eth0.100/rp_filter",
                "net.ipv4.conf.eth0/100.rp_filter",
            ),
            // ... and written `/` in dotted keys.
            (
                "net.ipv4.conf.eth0/100.rp_filter",
                "net.ipv4.conf.eth0/100.rp_filter",
            ),
            ("kernel.sched_rt_runtime_us", "kernel.sched_rt_runtime_us"),
            ("vm/max_map_count", "vm.max_map_count"),
        ] {
            assert_eq!(canonical_key(key).as_deref(), Ok(canonical), "{key}");
            assert_eq!(canonical_key(canonical).as_deref(), Ok(canonical), "{key}");
        }
        assert_eq!(
            key_components("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            ["net", "ipv4", "conf", "eth0.100", "rp_filter"]
        );
    }

    #[test]
    fn keys_outside_the_grammar_are_refused() {
        for key in [
            "",
            "net..ipv4",
            "net.ipv4.",
            ".net.ipv4",
            "/net/ipv4",
            "net/ipv4/",
            "net//ipv4",
            "net/./ipv4",
            "net/../../etc/shadow",
            "net.ipv4.conf.//.rp_filter",
            "net.ipv4.conf./.rp_filter",
            "net.ipv4 ip_forward",
            "net.ipv4.ip_forward\n",
            "-a",
            "-n.x",
            "net.ipv4.*",
            "net.ipv4.$x",
            "kernel.ü",
        ] {
            assert!(key_components(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn claims_name_the_canonical_key() {
        let spec = SysctlSpec {
            machines: Selector::All,
            values: [("net/ipv4/ip_forward".to_owned(), "1".to_owned())].into(),
            order: Vec::new(),
        };
        assert_eq!(spec.claims("a")[0].key, "sysctl key net.ipv4.ip_forward");
    }

    #[test]
    fn live_value_is_read_and_normalized() {
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.conf.all.send_redirects");
        assert_eq!(
            parse("p", "net.ipv4.conf.all.send_redirects", &out).unwrap(),
            "1"
        );
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.ip_local_port_range");
        assert_eq!(
            out.output, "32768\t60999\n",
            "sysctl prints multi-value keys with a tab"
        );
        assert_eq!(
            parse("p", "net.ipv4.ip_local_port_range", &out).unwrap(),
            "32768 60999"
        );
    }

    #[test]
    fn unknown_key_is_a_clear_error() {
        let out = recorded::probe("lab-fresh", "n1", "sysctl:net.ipv4.no_such_key");
        assert_ne!(out.rc, 0);
        let error = parse("p", "net.ipv4.no_such_key", &out).unwrap_err();
        assert!(
            error
                .message
                .contains("has no sysctl key `net.ipv4.no_such_key`"),
            "{error}"
        );
    }

    fn spec() -> SysctlSpec {
        SysctlSpec {
            machines: Selector::All,
            values: [
                (
                    "net.ipv4.conf.all.send_redirects".to_owned(),
                    "0".to_owned(),
                ),
                ("net.ipv4.conf.all.log_martians".to_owned(), "1".to_owned()),
            ]
            .into(),
            // As examples/baseline.yaml writes them.
            order: vec![
                "net.ipv4.conf.all.send_redirects".to_owned(),
                "net.ipv4.conf.all.log_martians".to_owned(),
            ],
        }
    }

    #[test]
    fn fresh_host_gets_values_and_persisted_file() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-fresh", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::Create);
        let names: Vec<&str> = diff.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "net.ipv4.conf.all.send_redirects",
                "net.ipv4.conf.all.log_martians",
                "/etc/sysctl.d/99-zz-corral-baseline.conf",
            ],
            "in the order written"
        );
    }

    #[test]
    fn converged_host_is_a_no_op() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-converged", "n1"))
            .unwrap();
        assert_eq!(diff.action(), Action::NoOp, "{diff:?}");
    }

    #[test]
    fn hand_changed_value_is_exactly_that_key() {
        let diff = spec()
            .diff("baseline", &recorded::host("lab-drift", "n2"))
            .unwrap();
        assert_eq!(diff.action(), Action::Update);
        assert_eq!(
            diff.attributes,
            vec![AttrChange::scalar(
                "net.ipv4.conf.all.send_redirects",
                "1",
                "0"
            )]
        );
    }
}
