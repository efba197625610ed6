//! Redaction: `docker service inspect` output with the environment values that must not be
//! kept taken out, and the labels tools put on services.

use std::collections::BTreeMap;

use super::SwarmServiceSpec;
use crate::MANAGED_LABEL;

/// What the facts hold, instead of its value, for a `secret_env` variable whose live value
/// equals the configured one (compared when the facts are read, see [`redact_inspect`]).
pub(super) const SECRET_SAME: &str = "@@corral-sensitive:same";
/// … for one whose value differs.
const SECRET_DIFFERS: &str = "@@corral-sensitive:differs";
/// … for a variable no `env` declares: its value is not needed, and may be a secret.
const UNDECLARED: &str = "@@corral-sensitive:undeclared";

/// `docker service inspect` output (one JSON object per line) with the environment values
/// that must not be kept (in a facts file, an error, a log) taken out, for `declared`
/// services by name: `env` values stay (the plan shows them anyway); a `secret_env` value
/// becomes [`SECRET_SAME`] or [`SECRET_DIFFERS`], compared here with the configured one;
/// every other value, of any service, goes. A line that is not JSON is withheld.
pub fn redact_inspect(output: &str, declared: &BTreeMap<String, &SwarmServiceSpec>) -> String {
    let mut out = String::with_capacity(output.len());
    for line in output.lines() {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        let mut service = match parsed {
            Ok(value) if value.is_object() => value,
            // Docker's own messages ("This node is not a swarm manager") stay readable;
            // anything that looks like JSON but is not a whole object is withheld.
            _ if !line.trim_start().starts_with(['{', '[', '"']) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            _ => {
                out.push_str(&format!(
                    "(a line of {} bytes that is not a JSON object, withheld: it may hold environment values)\n",
                    line.len()
                ));
                continue;
            }
        };
        let name = service["Spec"]["Name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let spec = declared.get(&name).copied();
        for which in ["Spec", "PreviousSpec"] {
            let Some(env) = service
                .get_mut(which)
                .and_then(|s| s.pointer_mut("/TaskTemplate/ContainerSpec/Env"))
                .and_then(|e| e.as_array_mut())
            else {
                continue;
            };
            for entry in env.iter_mut() {
                let Some(text) = entry.as_str() else {
                    continue;
                };
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                let kept = match spec {
                    Some(spec) if spec.env.get(key).is_some_and(|v| v == value) => None,
                    // Another value than configured: it may be an earlier secret one.
                    Some(spec) if spec.env.contains_key(key) => Some(SECRET_DIFFERS),
                    Some(spec) => match spec.secret_env.get(key) {
                        Some(wanted) if wanted.text() == value => Some(SECRET_SAME),
                        Some(_) => Some(SECRET_DIFFERS),
                        None => Some(UNDECLARED),
                    },
                    None => Some(UNDECLARED),
                };
                if let Some(marker) = kept {
                    *entry = serde_json::Value::String(format!("{key}={marker}"));
                }
            }
        }
        out.push_str(&service.to_string());
        out.push('\n');
    }
    out
}

/// [`redact_inspect`]'s output with every secret comparison made unknown (as differing).
pub fn forget_comparisons(output: &str) -> String {
    output.replace(SECRET_SAME, SECRET_DIFFERS)
}

/// Labels that tools put on services, never compared: corral's ownership label and
/// those `docker stack deploy` adds (`com.docker.stack.namespace`, `…image`).
pub(super) fn tool_label(key: &str) -> bool {
    key == MANAGED_LABEL || key.starts_with(STACK_LABEL_PREFIX)
}

/// The prefix of the labels `docker stack deploy` puts on what it creates.
pub const STACK_LABEL_PREFIX: &str = "com.docker.stack.";
/// The label naming the stack a service belongs to.
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
