//! The whole configuration as a kind's configuration-wide checks, redaction and secret
//! digests see it (`Kind::declare_config`, `config_warnings`, `plan_warnings`,
//! `redact_cluster_facts`, `seal_secrets`). The loader's `Config` is one (`config`
//! implements [`Declared`]); the kinds cannot name it, since the loader comes after them
//! (docs/src/architecture.md, "Layers").

use std::collections::BTreeMap;

use super::Spec;
use crate::address::Address;
use crate::base::machine::Machine;
use crate::base::selector::Selector;

/// The declared resources and the inventory.
pub trait Declared {
    /// Every resource in load order: its address and its specification.
    fn resources(&self) -> Box<dyn Iterator<Item = (&Address, &Spec)> + '_>;

    /// The inventory's machines by name.
    fn machines(&self) -> &BTreeMap<String, Machine>;

    /// The machines a selector picks, in name order.
    fn select<'a>(&'a self, selector: &'a Selector) -> Box<dyn Iterator<Item = &'a Machine> + 'a>;
}
