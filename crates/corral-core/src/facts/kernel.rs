//! What a host's kernel can carry, for the plan's preflight warnings: ESP (IPsec), which an
//! encrypted overlay network needs between hosts, and IPVS, which Swarm's ingress routing
//! mesh needs. Docker accepts both configurations on a kernel without them and then drops
//! the traffic silently (TESTBED.md §6), so the plan says so before anything is created.
//!
//! The kernel's configuration is read where it is published (`/proc/config.gz`, or
//! `/boot/config-<release>`), and a loaded module counts as support; when neither says, the
//! answer is unknown and no warning is given.

use super::{FactError, Probe, ProbeOutput};

/// Key of [`probe`].
pub const KEY: &str = "kernel:features";

/// Reads the kernel options and modules that matter; prints `key=value` lines, then the
/// matching lines of the kernel configuration.
pub fn probe() -> Probe {
    Probe {
        key: KEY.to_owned(),
        script: r#"pattern='^(# )?CONFIG_(INET_ESP|IP_VS)( |=)'
if [ -r /proc/config.gz ]; then zcat /proc/config.gz 2>/dev/null | grep -E "$pattern"
elif [ -r "/boot/config-$(uname -r)" ]; then grep -E "$pattern" "/boot/config-$(uname -r)"
fi
[ -d /sys/module/esp4 ] && echo 'module=esp4'
[ -e /proc/net/ip_vs ] && echo 'module=ip_vs'
true"#
            .to_owned(),
    }
}

/// Whether the kernel has a feature, as far as the host can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Yes,
    No,
    Unknown,
}

/// What [`probe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// ESP (IP protocol 50), for encrypted overlay networks between hosts.
    pub esp: Support,
    /// IPVS, for ingress-mode published ports (the routing mesh).
    pub ipvs: Support,
}

/// Parses [`probe`]'s output.
pub fn parse(out: &ProbeOutput) -> Result<Features, FactError> {
    if out.rc != 0 {
        return Err(FactError::unexpected(KEY, out));
    }
    let support = |option: &str, module: &str| {
        let mut support = Support::Unknown;
        for line in out.output.lines().map(str::trim) {
            if line == format!("module={module}")
                || line == format!("CONFIG_{option}=y")
                || line == format!("CONFIG_{option}=m")
            {
                return Support::Yes;
            }
            if line == format!("# CONFIG_{option} is not set") {
                support = Support::No;
            }
        }
        support
    };
    Ok(Features {
        esp: support("INET_ESP", "esp4"),
        ipvs: support("IP_VS", "ip_vs"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::recorded;

    #[test]
    fn the_lab_kernel_has_neither_esp_nor_ipvs() {
        let out = recorded::cluster("kernel-features", "lab", &probe());
        assert_eq!(
            parse(&out).unwrap(),
            Features {
                esp: Support::No,
                ipvs: Support::No
            }
        );
    }
}
