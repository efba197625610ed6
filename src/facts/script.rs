//! The fact script: all probes of one host in one POSIX shell script, and the splitting of
//! its output back into per-probe sections.
//!
//! Each probe runs in a subshell with stderr joined to stdout, between two marker lines that
//! carry a per-run nonce (so no probe output can fake a marker) and the probe's index:
//!
//! ```text
//! @@F <nonce> <index>
//! ...probe output...
//! @@E <nonce> <index> <rc>
//! ```
//!
//! The end marker starts with a newline of its own, so output without a final newline still
//! ends before it; that newline is removed when splitting.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use super::{Probe, ProbeOutput};

/// A generated fact script and what is needed to split its output.
/// How many probes run at the same time on a host.
pub const CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct FactScript {
    pub text: String,
    nonce: String,
    keys: Vec<String>,
}

impl FactScript {
    /// Builds the script for `probes`; probes with the same key run once.
    ///
    /// Probes run [`CONCURRENCY`] at a time on the host, each into its own file of a private
    /// temporary directory, and are printed in order afterwards: a host answers in about the
    /// time of its slowest probes rather than the sum of all. Where no temporary directory
    /// can be made (a read-only host), they run one after the other.
    pub fn new(probes: &[Probe]) -> Self {
        let nonce = random_nonce();
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        let mut functions = String::new();
        for probe in probes {
            if !seen.insert(probe.key.as_str()) {
                continue;
            }
            let index = keys.len();
            keys.push(probe.key.clone());
            // A probe ends early with `return`, never `exit`: in the sequential fallback it runs
            // in the script's own shell. (A stray `exit` shows up as a missing end marker.)
            functions.push_str(&format!("p{index}() {{\n{}\n}}\n", probe.script.trim_end()));
        }
        let count = keys.len();
        // One section: start marker, the probe's output, end marker with its exit code.
        let section = |index: usize| {
            format!("{{ printf '@@F %s %s\\n' {nonce} {index}; p{index} </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {nonce} {index} $?; }}")
        };
        // Probes read from /dev/null: the script itself arrives on stdin (`sh -s`).
        let mut text = format!("export LC_ALL=C\nexec 2>&1\n{functions}");
        text.push_str("if d=$(mktemp -d 2>/dev/null); then\ntrap 'rm -rf \"$d\"' EXIT\n");
        for index in 0..count {
            text.push_str(&format!("{} >\"$d/{index}\" &\n", section(index)));
            if (index + 1) % CONCURRENCY == 0 {
                text.push_str("wait\n");
            }
        }
        text.push_str("wait\n");
        if count > 0 {
            let files: Vec<String> = (0..count).map(|i| format!("\"$d/{i}\"")).collect();
            text.push_str(&format!("cat {}\n", files.join(" ")));
        }
        text.push_str("else\n");
        for index in 0..count {
            text.push_str(&section(index));
            text.push('\n');
        }
        text.push_str(":\nfi\n");
        FactScript { text, nonce, keys }
    }

    /// Splits the script's output into one [`ProbeOutput`] per probe key.
    pub fn split(&self, stdout: &str) -> Result<BTreeMap<String, ProbeOutput>, String> {
        let start_prefix = format!("@@F {} ", self.nonce);
        let end_prefix = format!("\n@@E {} ", self.nonce);
        let mut outputs = BTreeMap::new();
        let mut rest = stdout;
        while let Some(pos) = rest.find(&start_prefix) {
            let after = &rest[pos + start_prefix.len()..];
            let (index_text, body) = after
                .split_once('\n')
                .ok_or("a probe's start marker is not followed by a newline")?;
            let index: usize = index_text
                .trim()
                .parse()
                .map_err(|_| format!("bad probe index `{index_text}`"))?;
            let end = body.find(&end_prefix).ok_or_else(|| {
                format!("the output of probe {index} has no end marker (was the script cut short?)")
            })?;
            let output = &body[..end];
            let marker_rest = &body[end + end_prefix.len()..];
            let (marker, remaining) = marker_rest.split_once('\n').unwrap_or((marker_rest, ""));
            let mut fields = marker.split_whitespace();
            let end_index: Option<usize> = fields.next().and_then(|f| f.parse().ok());
            let rc: Option<i32> = fields.next().and_then(|f| f.parse().ok());
            let (Some(end_index), Some(rc)) = (end_index, rc) else {
                return Err(format!("malformed end marker `{marker}`"));
            };
            if end_index != index {
                return Err(format!(
                    "probe {index} ends with the marker of probe {end_index}"
                ));
            }
            let key = self
                .keys
                .get(index)
                .ok_or_else(|| format!("unknown probe index {index}"))?;
            outputs.insert(
                key.clone(),
                ProbeOutput {
                    rc,
                    output: output.to_owned(),
                },
            );
            rest = remaining;
        }
        if let Some(missing) = self.keys.iter().find(|k| !outputs.contains_key(*k)) {
            return Err(format!(
                "no output for probe `{missing}` (was the script cut short?)"
            ));
        }
        Ok(outputs)
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

fn random_nonce() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn run_sh(script: &str) -> String {
        let mut child = Command::new("sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    }

    fn probe(key: &str, script: &str) -> Probe {
        Probe {
            key: key.into(),
            script: script.into(),
        }
    }

    /// Runs a real `sh` over probes whose output is awkward: no final newline, stderr,
    /// non-zero exit, a `return` inside the probe, and text that looks like a marker.
    #[test]
    fn splits_real_sh_output_per_probe() {
        let probes = [
            probe("plain", "echo hello"),
            probe("no-newline", "printf 'a\\nb'"),
            probe("stderr", "echo oops >&2; false"),
            probe("returns", "return 7"),
            probe("fake-marker", "echo '@@E 0 0 0'; echo '@@F x 1'"),
            probe("plain", "echo duplicate key runs once"),
            probe("empty", "true"),
        ];
        let script = FactScript::new(&probes);
        let outputs = script.split(&run_sh(&script.text)).unwrap();
        let get = |k: &str| outputs.get(k).unwrap();
        assert_eq!(
            get("plain"),
            &ProbeOutput {
                rc: 0,
                output: "hello\n".into()
            }
        );
        assert_eq!(get("no-newline").output, "a\nb");
        assert_eq!(
            get("stderr"),
            &ProbeOutput {
                rc: 1,
                output: "oops\n".into()
            }
        );
        assert_eq!(get("returns").rc, 7);
        assert_eq!(get("fake-marker").output, "@@E 0 0 0\n@@F x 1\n");
        assert_eq!(
            get("empty"),
            &ProbeOutput {
                rc: 0,
                output: String::new()
            }
        );
        assert_eq!(outputs.len(), 6);
    }

    /// Without a writable temporary directory the probes run one after the other, with
    /// the same output.
    #[test]
    fn falls_back_to_sequential_probes_without_mktemp() {
        let probes: Vec<Probe> = (0..20)
            .map(|i| probe(&format!("k{i}"), &format!("echo {i}; return {}", i % 3)))
            .collect();
        let script = FactScript::new(&probes);
        let parallel = script.split(&run_sh(&script.text)).unwrap();
        let sequential = script
            .split(&run_sh(&format!(
                "mktemp() {{ return 1; }}\n{}",
                script.text
            )))
            .unwrap();
        assert_eq!(parallel, sequential);
        assert_eq!(
            parallel["k7"],
            ProbeOutput {
                rc: 1,
                output: "7\n".into()
            }
        );
    }

    #[test]
    fn a_cut_short_output_is_an_error() {
        let script = FactScript::new(&[probe("a", "echo a"), probe("b", "echo b")]);
        let full = run_sh(&script.text);
        let cut = &full[..full.len() / 2];
        assert!(script.split(cut).is_err());
        assert!(script.split("").is_err());
    }
}
