//! `infrastructure/machine`: the inventory. Machines are not resources; they say where the
//! other kinds' instances live and how to reach them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub const KIND: &str = "infrastructure/machine";

/// One machine of the inventory, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
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
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub proxy_jump: Option<String>,
}

/// A machine of the loaded configuration.
#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub spec: MachineSpec,
}
