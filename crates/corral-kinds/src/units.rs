//! The unit probes of one fact script ([`crate::service::unit_probe`], which `os/service`
//! and `docker/daemon` ask) asked of systemd in one `systemctl show`.
//!
//! Each [`unit_probe`] is a `systemctl` process: 5-8 ms of a lab host's CPU,
//! systemd's answer included, and a hardening plan asks about several units. `systemctl
//! show` of several units prints one block per unit, in the order given, separated by an
//! empty line; the script splits that output with the shell's parameter expansion (no
//! process) and prints each probe's section as the probe alone would have. Only units with
//! plain names are asked together (a name systemd would escape draws a warning that belongs
//! to its own probe); where the batch fails (no systemd, no bus) or prints another number
//! of blocks, every probe runs alone, with its own error.

use crate::service::{unit_probe, SHOW_PROPERTIES};
use crate::shell::quote;

/// The unit a probe asks about, where the probe is [`unit_probe`]'s and the name plain
/// (letters, digits, `:_.@-`, as systemd keeps them unescaped).
pub fn unit(key: &str, script: &str) -> Option<String> {
    let unit = key.strip_prefix("systemd:")?;
    let plain = !unit.is_empty()
        && !unit.starts_with('-')
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.@-".contains(&b));
    (plain && unit_probe(unit).script == script).then(|| unit.to_owned())
}

/// A shell function `corral_units` that asks systemd about the units of `probes` (each an
/// index and its [`unit`]) at once and prints each probe's section, or, where that fails,
/// runs `section(index)` for each. None for fewer than two units.
pub fn function(
    nonce: &str,
    timings: bool,
    probes: &[(usize, String)],
    section: impl Fn(usize) -> String,
) -> Option<String> {
    if probes.len() < 2 {
        return None;
    }
    let names: Vec<String> = probes.iter().map(|(_, unit)| quote(unit)).collect();
    let (clock, start, end) = if timings {
        (
            "corral_t; corral_s=$corral_time\n",
            " \"$corral_s\"",
            " \"$corral_time\"",
        )
    } else {
        ("", "", "")
    };
    let mut text = format!(
        "corral_units() {{\ncorral_nl='\n'\n{clock}if corral_o=$(systemctl show --timestamp=unix -p {SHOW_PROPERTIES} -- {} 2>/dev/null); then\n  corral_n=0; corral_r=$corral_o\n  while :; do\n    corral_n=$((corral_n + 1))\n    case $corral_r in *\"$corral_nl$corral_nl\"*) corral_r=${{corral_r#*\"$corral_nl$corral_nl\"}} ;; *) break ;; esac\n  done\nelse\n  corral_n=0\nfi\n",
        names.join(" ")
    );
    if timings {
        text.push_str("corral_t\n");
    }
    text.push_str(&format!(
        "if [ \"$corral_n\" = {} ]; then\ncorral_r=$corral_o\n",
        probes.len()
    ));
    for (index, _) in probes {
        text.push_str(&format!(
            "corral_b=${{corral_r%%\"$corral_nl$corral_nl\"*}}; corral_r=${{corral_r#*\"$corral_nl$corral_nl\"}}\nprintf '@@F %s %s{}\\n%s\\n\\n@@E %s %s 0{}\\n' {nonce} {index}{start} \"$corral_b\" {nonce} {index}{end}\n",
            if timings { " %s" } else { "" },
            if timings { " %s" } else { "" },
        ));
    }
    text.push_str("else\n");
    for (index, _) in probes {
        text.push_str(&section(*index));
        text.push('\n');
    }
    text.push_str("fi\n}\n");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_unit_probes_are_asked_together() {
        let probe = unit_probe("ssh.service");
        assert_eq!(
            unit(&probe.key, &probe.script).as_deref(),
            Some("ssh.service")
        );
        let odd = unit_probe("bad name");
        assert_eq!(unit(&odd.key, &odd.script), None);
        assert_eq!(
            unit("systemd:x.service", "systemctl status x.service"),
            None
        );
        assert_eq!(unit("dpkg:x", &probe.script), None);
    }
}
