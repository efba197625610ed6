//! Resource addresses: `kind.name` for a resource and `kind.name[machine]` for one of its
//! per-machine instances (SPEC §3). Addresses are how operators name things in `depends_on`,
//! `--target` and `--exclude`, and how the plan names every change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The address of a resource or of one per-machine instance of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Address {
    pub kind: String,
    pub name: String,
    pub machine: Option<String>,
}

impl Address {
    pub fn new(kind: &str, name: &str, machine: Option<&str>) -> Self {
        Address {
            kind: kind.to_owned(),
            name: name.to_owned(),
            machine: machine.map(str::to_owned),
        }
    }

    /// The resource this instance belongs to (the address without `[machine]`).
    pub fn resource(&self) -> Address {
        Address {
            machine: None,
            ..self.clone()
        }
    }

    /// Whether `self`, used as a filter (`--target`, `depends_on`), names `other`: a
    /// resource address names all its instances, an instance address only itself.
    pub fn covers(&self, other: &Address) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && (self.machine.is_none() || self.machine == other.machine)
    }

    /// Parses `kind.name` or `kind.name[machine]`, the kind with its namespace (`os/file`).
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let error = |problem| AddressError {
            text: text.to_owned(),
            problem,
        };
        let (body, machine) = match text.strip_suffix(']') {
            Some(rest) => {
                let (body, machine) = rest
                    .split_once('[')
                    .ok_or_else(|| error(AddressProblem::UnopenedBracket))?;
                if machine.is_empty() {
                    return Err(error(AddressProblem::EmptyMachine));
                }
                (body, Some(machine))
            }
            None => (text, None),
        };
        let slash = body.find('/').ok_or_else(|| error(AddressProblem::Shape))?;
        let dot = body[slash..]
            .find('.')
            .map(|i| i + slash)
            .ok_or_else(|| error(AddressProblem::Shape))?;
        let (kind, name) = (&body[..dot], &body[dot + 1..]);
        if kind.is_empty() || name.is_empty() {
            return Err(error(AddressProblem::Shape));
        }
        if let Some(bad) = [name]
            .into_iter()
            .chain(machine)
            .find(|n| !is_valid_name(n))
        {
            return Err(error(AddressProblem::InvalidName(bad.to_owned())));
        }
        Ok(Address::new(kind, name, machine))
    }
}

/// Why a text is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{text}` {problem}")]
#[diagnostic(code(corral::address::invalid))]
pub struct AddressError {
    pub text: String,
    pub problem: AddressProblem,
}

/// What is wrong with a text read as an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressProblem {
    #[error("has a `]` without a `[`")]
    UnopenedBracket,
    #[error("has an empty machine name")]
    EmptyMachine,
    #[error("is not an address: {EXPECTED}")]
    Shape,
    #[error("is not an address: `{0}` is not a valid name")]
    InvalidName(String),
}

/// What an address looks like, as errors say it (and `--target`'s help).
pub const EXPECTED: &str =
    "write `kind.name` (`os/file.site`) or `kind.name[machine]` (`os/file.site[n1]`)";

/// Names of resources and machines: `[a-z0-9][a-z0-9_.-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)?;
        if let Some(machine) = &self.machine {
            write!(f, "[{machine}]")?;
        }
        Ok(())
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.to_string()
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(text: String) -> Result<Self, AddressError> {
        Address::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in [
            "os/sysctl.baseline[n2]",
            "swarm/network.appnet",
            "gluster/volume.krill-data",
        ] {
            assert_eq!(Address::parse(text).unwrap().to_string(), text);
        }
        let a = Address::parse("os/file.issue.net[n1]").unwrap();
        assert_eq!((a.kind.as_str(), a.name.as_str()), ("os/file", "issue.net"));
    }

    #[test]
    fn rejects_malformed_addresses() {
        for text in [
            "sysctl",
            "os/sysctl",
            "os/sysctl.",
            "os/sysctl.x[",
            "os/sysctl.x[]",
        ] {
            assert!(Address::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn resource_address_covers_its_instances() {
        let resource = Address::parse("os/file.motd").unwrap();
        let instance = Address::parse("os/file.motd[n1]").unwrap();
        assert!(resource.covers(&instance));
        assert!(!instance.covers(&Address::parse("os/file.motd[n2]").unwrap()));
    }
}
