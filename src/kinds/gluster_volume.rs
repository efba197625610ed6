//! `gluster/volume`: a GlusterFS volume and its client mounts. (Skeleton: being written.)

use serde::{Deserialize, Serialize};

use super::{ClusterFacts, ClusterKind, ClusterStep, Kind};
use crate::config::CheckContext;
use crate::facts::{gluster, FactError, Probe};
use crate::plan::Diff;

pub const KIND: &str = "gluster/volume";

/// `gluster/volume` specification.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlusterVolumeSpec {
    #[serde(default)]
    pub replica: Option<u32>,
    #[serde(default)]
    pub bricks: Vec<Brick>,
    #[serde(default)]
    pub mount: Option<Mount>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Brick {
    pub machine: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub machines: crate::config::Selector,
    pub path: String,
}

impl Kind for GlusterVolumeSpec {
    fn check(self, _ctx: &mut CheckContext) -> Self {
        self
    }
}

impl GlusterVolumeSpec {
    /// Where the volume is mounted on its client machines, if it is.
    pub fn mount_path(&self) -> Option<&str> {
        self.mount.as_ref().map(|m| m.path.as_str())
    }
}

impl ClusterKind for GlusterVolumeSpec {
    fn members(&self) -> Vec<String> {
        self.bricks.iter().map(|b| b.machine.clone()).collect()
    }

    fn machine_references(&self) -> Vec<(&'static str, String)> {
        self.bricks
            .iter()
            .map(|b| ("bricks", b.machine.clone()))
            .collect()
    }

    fn member_probes(&self, _name: &str) -> Vec<Probe> {
        vec![gluster::peer_status_probe()]
    }

    fn manager_probes(&self, name: &str) -> Vec<Probe> {
        vec![gluster::volume_info_probe(Some(name))]
    }

    fn manager_candidates(&self, _facts: &ClusterFacts) -> Vec<String> {
        Vec::new()
    }

    fn diff(&self, _name: &str, _facts: &ClusterFacts) -> Result<Diff, FactError> {
        Err(FactError::new("gluster", "gluster/volume is being written"))
    }

    fn steps(&self, _name: &str, _facts: &ClusterFacts) -> Result<Vec<ClusterStep>, FactError> {
        Ok(Vec::new())
    }
}
