//! The fact script: all probes of one host in one POSIX shell script, and the splitting of
//! its output back into per-probe sections.
//!
//! Each probe runs with stderr joined to stdout, between two marker lines that carry a
//! per-run nonce (so no probe output can fake a marker) and the probe's index:
//!
//! ```text
//! @@F <nonce> <index> [<start>]
//! ...probe output...
//! @@E <nonce> <index> <rc> [<end>]
//! ```
//!
//! The end marker starts with a newline of its own, so output without a final newline still
//! ends before it; that newline is removed when splitting. With timings asked for, each
//! marker also carries the host's clock: the first field of `/proc/uptime`, read by the
//! shell's builtin `read` (no exec; dash has no builtin clock and `$EPOCHREALTIME` is
//! bash's). It is monotonic and counts in hundredths of a second, so a probe shorter than
//! 10 ms reads as 0; a host without `/proc/uptime` prints `-` and its probes have no time.
//!
//! The script costs the host as little as it can: probe functions called in the script's
//! own shell (no subshell per probe), and the host-side watchdog set up once for the whole
//! script by the launcher (see `crate::transport::launcher`). Only probes that ask a daemon
//! or the package system (see [`can_hang`]) may take long or hang; when there are two or
//! more, they run in the background, [`CONCURRENCY`] at a time, each into a file of one
//! private temporary directory. The others (reading files) run in two lanes when there are
//! many ([`MIN_LANED`]), one in a single background subshell and one in the script's
//! shell, so that two cores share them. Fewer run all in the script's shell, with no
//! temporary directory. Two kinds of probe are answered together: those one `perl` reads
//! (files, sysctl values, accounts, corral's record: `kinds::file::batch`), first in the
//! script's own lane, and the units, in one `systemctl show` run as one slow probe
//! (`kinds::units`); each still prints its own section, and runs alone where the batch
//! cannot answer it.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::facts::gluster;
use crate::facts::swarm_engine::{self, Folded};
use crate::facts::{Probe, ProbeOutput};
use crate::kinds::file::{self, batch};
use crate::kinds::units;

/// The index of the unit probes asked together (see [`FactScript::build`]) among the
/// slow probes.
const UNITS: usize = usize::MAX;

/// How many slow probes (see [`can_hang`]) run at the same time on a host.
pub const CONCURRENCY: usize = 8;

/// From how many quick probes on, they run in two lanes (see [`FactScript::build`]). A
/// second lane costs three execs (`mktemp`, `cat`, `rm`) and a fork: worth it for the
/// 14 quick probes of `examples/baseline.yaml` (56 ms against 76 ms in one lane, on an
/// idle two-core host), not for the 7 of a small site (one lane: 29-31 ms wall and
/// 22 ms CPU against 37-65 ms and 25-26 ms, on a lab host of a loaded machine). A plan's
/// script also carries the read of the apply lock, which runs no program: that small
/// site's script has 8.
const MIN_LANED: usize = 9;

/// Commands that wait on a daemon, another host or the package system: a probe calling one
/// can take long or hang (`perl` is the Engine API's client, see
/// [`crate::facts::swarm_engine`]). Anything else a probe does is reading local files and
/// databases.
const SLOW_COMMANDS: [&str; 5] = ["docker", "gluster", "systemctl", "apt", "perl"];

/// Whether a probe's script calls one of [`SLOW_COMMANDS`] (`apt` covers `apt-get` and
/// `apt-cache`). Words inside paths (`/etc/docker/…`) do not count.
pub fn can_hang(script: &str) -> bool {
    crate::shell::words(script).any(|word| {
        SLOW_COMMANDS
            .iter()
            .any(|c| word == *c || (*c == "apt" && word.starts_with("apt-")))
    })
}

/// A generated fact script and what is needed to split its output.
#[derive(Debug, Clone)]
pub struct FactScript {
    pub text: String,
    nonce: String,
    keys: Vec<String>,
    /// The `docker` probes the Engine API answers, written back from its answer.
    engine: Folded,
}

/// The wall time of one probe on its host, from its markers' clock readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTime {
    pub key: String,
    pub time: Duration,
}

impl FactScript {
    /// Builds the script for `probes`, without timings; probes with the same key run once.
    pub fn new(probes: &[Probe]) -> Self {
        Self::build(probes, false)
    }

    /// Builds the script for `probes`; with `timings`, every marker carries the host's
    /// clock (two builtin `read`s per probe, no exec).
    ///
    /// A host answers in about the time of its slowest probe plus the sum of its quick
    /// ones. Where no temporary directory can be made (a read-only host), the slow probes
    /// run one after the other too.
    pub fn build(probes: &[Probe], timings: bool) -> Self {
        // The `docker` probes the Engine API answers: one `perl` instead of a `docker`
        // process each.
        let (probes, engine) = swarm_engine::fold(probes);
        let nonce = random_nonce();
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        let mut functions = String::new();
        let (mut quick, mut slow, mut files) = (Vec::new(), Vec::new(), Vec::new());
        let mut units = Vec::new();
        let mut file_function = false;
        for probe in &probes {
            if !seen.insert(probe.key.as_str()) {
                continue;
            }
            let index = keys.len();
            keys.push(probe.key.clone());
            // The file probes' shared function is defined once, not in each of them.
            let body = match probe.script.strip_prefix(file::probe_function()) {
                Some(call) => {
                    file_function = true;
                    call
                }
                None => &probe.script,
            };
            // A probe ends early with `return`, never `exit`: it runs in the script's own
            // shell. (A stray `exit` shows up as a missing end marker.)
            functions.push_str(&format!("p{index}() {{\n{}\n}}\n", body.trim_end()));
            if let Some(args) = batch::args(&probe.key, &probe.script)
                .or_else(|| crate::managed::reader_args(&probe.key, &probe.script))
            {
                files.push((index, args));
            } else if let Some(unit) = units::unit(&probe.key, &probe.script) {
                units.push((index, unit));
            } else if can_hang(&probe.script) {
                slow.push(index);
            } else {
                quick.push(index);
            }
        }
        // One section: start marker, the probe's output, end marker with its exit code
        // (and the clock at both ends with timings).
        let section = |index: usize| {
            if timings {
                format!("{{ corral_t; printf '@@F %s %s %s\\n' {nonce} {index} \"$corral_time\"; p{index} </dev/null 2>&1; corral_rc=$?; corral_t; printf '\\n@@E %s %s %s %s\\n' {nonce} {index} $corral_rc \"$corral_time\"; }}")
            } else {
                format!("{{ printf '@@F %s %s\\n' {nonce} {index}; p{index} </dev/null 2>&1; printf '\\n@@E %s %s %s\\n' {nonce} {index} $?; }}")
            }
        };
        // The unit probes: one `systemctl show` (kinds::units), run as one slow
        // probe would be, under the index UNITS.
        let units_function = units::function(&nonce, timings, &units, section);
        match units_function {
            Some(_) => slow.push(UNITS),
            None => slow.extend(units.iter().map(|(index, _)| *index)),
        }
        let job = |index: usize| {
            if index == UNITS {
                "corral_units".to_owned()
            } else {
                section(index)
            }
        };
        let inline =
            |indexes: &[usize]| -> String { indexes.iter().map(|&i| job(i) + "\n").collect() };
        // The probes that read files: one `perl` where the host has it (file::batch), in
        // the script's own lane, before its other quick probes.
        let files_function = batch::function(&nonce, timings, &files, section);
        let own_start = if files_function.is_some() {
            "corral_files\n"
        } else {
            ""
        };
        // Probes read from /dev/null: the script itself arrives on stdin (`sh -s`).
        let mut text = String::from("export LC_ALL=C\nexec 2>&1\n");
        if file_function {
            text.push_str(file::probe_function());
        }
        text.push_str(&functions);
        text.push_str(files_function.as_deref().unwrap_or_default());
        text.push_str(units_function.as_deref().unwrap_or_default());
        if probes.iter().any(|p| gluster::calls_cli(&p.script)) {
            text.push_str(gluster::QUICK_CLI);
        }
        if timings {
            text.push_str("corral_t() { read -r corral_time _ </proc/uptime || corral_time=-; } 2>/dev/null\n");
        }
        // Quick probes in two lanes: every other one in one background subshell, the rest
        // in the script's own shell meanwhile (measured on a 2-core host: 56 ms for the
        // example's 14 probes, against 66 ms with a subshell per probe and 76 ms all in one
        // lane; the probes' own execs are the cost, and two cores run them side by side).
        let (lane, own): (Vec<usize>, Vec<usize>) = if quick.len() >= MIN_LANED {
            let (lane, own): (Vec<_>, Vec<_>) =
                quick.iter().enumerate().partition(|(n, _)| n % 2 == 0);
            (
                lane.into_iter().map(|(_, &i)| i).collect(),
                own.into_iter().map(|(_, &i)| i).collect(),
            )
        } else {
            (Vec::new(), quick.clone())
        };
        if slow.len() < 2 && lane.is_empty() {
            // Nothing to overlap: no temporary directory, no background job.
            text.push_str(own_start);
            text.push_str(&inline(&quick));
            text.push_str(&inline(&slow));
        } else {
            text.push_str("if d=$(mktemp -d 2>/dev/null); then\ntrap 'rm -rf \"$d\"' EXIT\n");
            let mut outputs = Vec::new();
            if !lane.is_empty() {
                text.push_str(&format!("{{\n{}}} >\"$d/q\" &\n", inline(&lane)));
                outputs.push("\"$d/q\"".to_owned());
            }
            let (batched, alone) = match slow.len() {
                0 | 1 => (&[][..], &slow[..]),
                _ => (&slow[..], &[][..]),
            };
            for (n, batch) in batched.chunks(CONCURRENCY).enumerate() {
                for &index in batch {
                    text.push_str(&format!("{} >\"$d/{index}\" &\n", job(index)));
                    outputs.push(format!("\"$d/{index}\""));
                }
                // The script's own lane runs while the first slow ones wait on their daemons.
                if n == 0 {
                    text.push_str(own_start);
                    text.push_str(&inline(&own));
                }
                text.push_str("wait\n");
            }
            if batched.is_empty() {
                text.push_str(own_start);
                text.push_str(&inline(&own));
                text.push_str(&inline(alone));
                text.push_str("wait\n");
            }
            text.push_str(&format!("cat {}\nelse\n", outputs.join(" ")));
            text.push_str(own_start);
            text.push_str(&inline(&quick));
            text.push_str(&inline(&slow));
            text.push_str(":\nfi\n");
        }
        FactScript {
            text,
            nonce,
            keys,
            engine,
        }
    }

    /// Splits the script's output into one [`ProbeOutput`] per probe key.
    pub fn split(&self, stdout: &str) -> Result<BTreeMap<String, ProbeOutput>, SplitError> {
        self.split_timed(stdout).map(|(outputs, _)| outputs)
    }

    /// [`FactScript::split`], with the wall time of each probe whose markers carry the
    /// host's clock, in the order the probes ran.
    #[allow(clippy::type_complexity)]
    pub fn split_timed(
        &self,
        stdout: &str,
    ) -> Result<(BTreeMap<String, ProbeOutput>, Vec<ProbeTime>), SplitError> {
        let start_prefix = format!("@@F {} ", self.nonce);
        let end_prefix = format!("\n@@E {} ", self.nonce);
        let mut outputs = BTreeMap::new();
        let mut times = Vec::new();
        let mut rest = stdout;
        while let Some(pos) = rest.find(&start_prefix) {
            let after = &rest[pos + start_prefix.len()..];
            let (start_line, body) = after
                .split_once('\n')
                .ok_or(SplitError::StartUnterminated)?;
            let mut start_fields = start_line.split_whitespace();
            let index_text = start_fields.next().unwrap_or_default();
            let index: usize = index_text
                .parse()
                .map_err(|_| SplitError::BadIndex(start_line.to_owned()))?;
            let started = start_fields.next().and_then(clock);
            let end = body
                .find(&end_prefix)
                .ok_or(SplitError::NoEndMarker(index))?;
            let output = &body[..end];
            let marker_rest = &body[end + end_prefix.len()..];
            let (marker, remaining) = marker_rest.split_once('\n').unwrap_or((marker_rest, ""));
            let mut fields = marker.split_whitespace();
            let end_index: Option<usize> = fields.next().and_then(|f| f.parse().ok());
            let rc: Option<i32> = fields.next().and_then(|f| f.parse().ok());
            let ended = fields.next().and_then(clock);
            let (Some(end_index), Some(rc)) = (end_index, rc) else {
                return Err(SplitError::BadEndMarker(marker.to_owned()));
            };
            if end_index != index {
                return Err(SplitError::Mismatched {
                    index,
                    end: end_index,
                });
            }
            let key = self
                .keys
                .get(index)
                .ok_or(SplitError::UnknownIndex(index))?;
            if let (Some(started), Some(ended)) = (started, ended) {
                times.push(ProbeTime {
                    key: key.clone(),
                    time: Duration::from_millis(ended.saturating_sub(started) * 10),
                });
            }
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
            return Err(SplitError::Missing(missing.clone()));
        }
        self.engine.expand(&mut outputs);
        Ok((outputs, times))
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Why a fact script's output could not be split into its probes' outputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[diagnostic(
    code(corral::facts::script_output),
    help("the fact script was cut short or its output was mangled; read the host again")
)]
pub enum SplitError {
    #[error("a probe's start marker is not followed by a newline")]
    StartUnterminated,
    #[error("bad probe index `{0}`")]
    BadIndex(String),
    #[error("the output of probe {0} has no end marker (was the script cut short?)")]
    NoEndMarker(usize),
    #[error("malformed end marker `{0}`")]
    BadEndMarker(String),
    #[error("probe {index} ends with the marker of probe {end}")]
    Mismatched { index: usize, end: usize },
    #[error("unknown probe index {0}")]
    UnknownIndex(usize),
    #[error("no output for probe `{0}` (was the script cut short?)")]
    Missing(String),
}

/// A reading of `/proc/uptime` (`12345.67`) in hundredths of a second; `-` (no clock) or
/// anything else is none.
fn clock(text: &str) -> Option<u64> {
    let (seconds, hundredths) = text.split_once('.')?;
    if hundredths.len() != 2 {
        return None;
    }
    Some(seconds.parse::<u64>().ok()? * 100 + hundredths.parse::<u64>().ok()?)
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
    use std::process::Command;

    use corral_core::testing::run_sh;

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

    /// Without a writable temporary directory the slow probes run one after the other,
    /// with the same output.
    #[test]
    fn falls_back_to_sequential_probes_without_mktemp() {
        let probes: Vec<Probe> = (0..20)
            .map(|i| {
                let slow = if i % 2 == 0 { ": docker; " } else { "" };
                probe(
                    &format!("k{i}"),
                    &format!("{slow}echo {i}; return {}", i % 3),
                )
            })
            .collect();
        let script = FactScript::new(&probes);
        assert!(script.text.contains("mktemp"), "{}", script.text);
        let parallel = script.split(&run_sh(&script.text)).unwrap();
        let sequential = script
            .split(&run_sh(&format!(
                "mktemp() {{ return 1; }}\n{}",
                script.text
            )))
            .unwrap();
        assert_eq!(parallel, sequential);
        assert_eq!(parallel.len(), 20);
        assert_eq!(
            parallel["k7"],
            ProbeOutput {
                rc: 1,
                output: "7\n".into()
            }
        );
    }

    /// Which probes may hang: those asking a daemon or the package system, not those
    /// reading files (even under a daemon's directory).
    #[test]
    fn only_probes_asking_a_daemon_can_hang() {
        assert!(can_hang("out=$(docker info --format '{{json .}}')"));
        assert!(can_hang("timeout \"$budget\" docker service ls"));
        assert!(can_hang("gluster --mode=script volume info"));
        assert!(can_hang("systemctl show -p ActiveState x.service"));
        assert!(can_hang(
            "if [ -n \"$need\" ]; then apt-cache policy $need; fi"
        ));
        assert!(!can_hang("sysctl -n net.ipv4.ip_forward"));
        assert!(!can_hang(
            "cat /etc/docker/daemon.json; stat -c %a /etc/systemd/system"
        ));
        assert!(!can_hang("printf '%s\\n' \"${SUDO_USER:-$(id -un)}\""));
    }

    /// A script defines its quick `gluster` (facts::gluster::QUICK_CLI) only when a probe
    /// runs the CLI, and a real `sh` runs it: here no `gsyncd` is found, so `gluster` stays
    /// the command (a function would print `gluster is a shell function`).
    #[test]
    fn the_quick_gluster_cli_is_defined_where_a_probe_runs_gluster() {
        let cli = probe("peers", "gluster --mode=script --xml peer status");
        let path = probe("conf", "cat /etc/glusterfs/glusterd.vol");
        assert!(FactScript::new(&[cli.clone(), path.clone()])
            .text
            .contains(gluster::QUICK_CLI));
        assert!(!FactScript::new(&[path]).text.contains(gluster::QUICK_CLI));
        let kind = probe(
            "kind",
            "type gluster >/dev/null 2>&1 && type gluster | head -n 1 || echo none",
        );
        let script = FactScript::new(&[cli, kind]);
        let outputs = script.split(&run_sh(&script.text)).unwrap();
        if !std::path::Path::new("/usr/sbin/gluster").exists() {
            assert_eq!(outputs["kind"].output.trim(), "none");
        }
        assert!(!outputs["kind"].output.contains("function"));
    }

    /// The file probes are read by one `perl` (kinds::file::batch) in every layout of the
    /// script (alone, beside a slow probe, in lanes, with timings), each the same output as
    /// its probe run alone in a real `sh`; their shared function is defined once.
    #[test]
    fn file_probes_are_read_by_one_perl_as_the_shell_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("a"), b"alpha\n").unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        let files: Vec<Probe> = [
            file::probe(root.join("a").to_str().unwrap(), file::Read::Content),
            file::probe(root.join("d").to_str().unwrap(), file::Read::Metadata),
            file::probe(root.join("none/x").to_str().unwrap(), file::Read::Content),
        ]
        .into();
        let alone = |p: &Probe| {
            let out = Command::new("sh")
                .args(["-c", &format!("export LC_ALL=C\nexec 2>&1\n{}", p.script)])
                .output()
                .unwrap();
            (
                String::from_utf8(out.stdout).unwrap(),
                out.status.code().unwrap(),
            )
        };
        let quick: Vec<Probe> = (0..10)
            .map(|i| probe(&format!("k{i}"), &format!("echo {i}")))
            .collect();
        let slow = [
            probe("s1", ": systemctl; echo one"),
            probe("s2", ": docker; echo two"),
        ];
        let layouts: [Vec<Probe>; 4] = [
            files.clone(),
            [files.clone(), slow[..1].to_vec()].concat(),
            [files.clone(), slow.to_vec()].concat(),
            [files.clone(), quick, slow.to_vec()].concat(),
        ];
        for probes in layouts {
            for timings in [false, true] {
                let script = FactScript::build(&probes, timings);
                assert_eq!(script.text.matches("perl -e").count(), 1, "{}", script.text);
                assert_eq!(script.text.matches("corral_file() (").count(), 1);
                let (outputs, times) = script.split_timed(&run_sh(&script.text)).unwrap();
                assert_eq!(outputs.len(), probes.len());
                for p in &files {
                    let (output, rc) = alone(p);
                    assert_eq!((&outputs[&p.key].output, outputs[&p.key].rc), (&output, rc));
                }
                if let Some(slow) = outputs.get("s1") {
                    assert_eq!(slow.output, "one\n");
                }
                if timings {
                    assert!(times.iter().any(|t| t.key == files[0].key), "{times:?}");
                }
            }
        }
    }

    /// A few probes that read files run in the script's own shell: no temporary directory,
    /// no background job, no subshell; so does a single slow probe. Many run in two lanes.
    #[test]
    fn quick_probes_run_in_one_shell() {
        let mut probes: Vec<Probe> = (0..3)
            .map(|i| probe(&format!("k{i}"), &format!("echo $$ {i}")))
            .collect();
        probes.push(probe("unit", ": systemctl; echo $$"));
        let script = FactScript::new(&probes);
        for absent in ["mktemp", "&\n", "wait", "cat "] {
            assert!(!script.text.contains(absent), "{absent}: {}", script.text);
        }
        let outputs = script.split(&run_sh(&script.text)).unwrap();
        // `$$` is the script's shell wherever it is expanded; a subshell would not show
        // it differently, so check that the shell's state carries from probe to probe.
        let pid = outputs["unit"].output.trim().to_owned();
        assert!(outputs["k2"].output.starts_with(&format!("{pid} 2")));
        let chained = FactScript::new(&[
            probe("set", "corral_x=1"),
            probe("get", "echo ${corral_x:-unset}"),
        ]);
        let outputs = chained.split(&run_sh(&chained.text)).unwrap();
        assert_eq!(
            outputs["get"].output, "1\n",
            "one shell: a variable set by one probe is seen by the next"
        );
        // A small site's seven quick probes: one shell, as the two lanes' temporary
        // directory and background job cost more than they overlap.
        let seven: Vec<Probe> = (0..7)
            .map(|i| probe(&format!("k{i}"), &format!("echo {i}")))
            .collect();
        let single = FactScript::new(&seven);
        for absent in ["mktemp", "&\n", "wait", "cat "] {
            assert!(!single.text.contains(absent), "{absent}: {}", single.text);
        }
        assert_eq!(single.split(&run_sh(&single.text)).unwrap().len(), 7);
        let many: Vec<Probe> = (0..10)
            .map(|i| probe(&format!("k{i}"), &format!("echo {i}")))
            .collect();
        let laned = FactScript::new(&many);
        assert_eq!(laned.text.matches(" &\n").count(), 1, "{}", laned.text);
        let outputs = laned.split(&run_sh(&laned.text)).unwrap();
        assert_eq!(outputs.len(), 10);
        assert_eq!(outputs["k9"].output, "9\n");
    }

    /// A hanging slow probe (here `docker` stuck) does not hold back the quick ones, which
    /// print while it hangs; the deadline ends the whole script, probes included.
    #[tokio::test]
    async fn a_hanging_probe_is_ended_at_the_deadline_after_the_quick_ones_printed() {
        use crate::transport::{
            deadline_after, Host, Limits, LocalHost, OutputBound, TransportError,
        };
        let probes = [
            probe("hung", "docker() { sleep 600; }; docker info"),
            probe("other", ": systemctl; echo unit"),
            probe("quick", "echo quick"),
        ];
        let script = FactScript::new(&probes);
        let started = std::time::Instant::now();
        let limits = Limits {
            deadline: deadline_after(Duration::from_secs(1)),
            stdout: OutputBound::FailBeyond(1 << 20),
        };
        let error = LocalHost
            .run_script(&script.text, limits)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let TransportError::DeadlinePassed { output } = error else {
            panic!("{error:?}");
        };
        assert!(output.contains("\nquick\n\n@@E "), "{output}");
        assert!(
            !output.contains("\nunit\n"),
            "slow output is printed only at the end: {output}"
        );
        // Without the hang, all three answer.
        let fine = FactScript::new(&[
            probes[1].clone(),
            probes[2].clone(),
            probe("docker", ": docker; echo d"),
        ]);
        let outputs = fine.split(&run_sh(&fine.text)).unwrap();
        assert_eq!(outputs["other"].output, "unit\n");
        assert_eq!(outputs["docker"].output, "d\n");
    }

    /// Slow probes overlap: three of 0.6 s answer in well under their sum.
    #[test]
    fn slow_probes_overlap() {
        let probes: Vec<Probe> = (0..3)
            .map(|i| probe(&format!("s{i}"), &format!(": gluster; sleep 0.6; echo {i}")))
            .collect();
        let script = FactScript::new(&probes);
        let started = std::time::Instant::now();
        let outputs = script.split(&run_sh(&script.text)).unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(outputs["s2"].output, "2\n");
    }

    /// With timings, every probe's wall time on the host is read from its markers: a probe
    /// that sleeps 0.3 s takes about that, the others about nothing; without, none.
    #[test]
    fn timings_are_read_from_real_sh_output() {
        let probes = [
            probe("sleeps", "sleep 0.3; echo slept"),
            probe("quick", "echo quick"),
            probe("daemon1", ": docker; sleep 0.2"),
            probe("daemon2", ": docker; true"),
        ];
        let script = FactScript::build(&probes, true);
        let out = run_sh(&script.text);
        let (outputs, times) = script.split_timed(&out).unwrap();
        assert_eq!(outputs["sleeps"].output, "slept\n");
        let time = |k: &str| times.iter().find(|t| t.key == k).unwrap().time;
        assert_eq!(times.len(), 4, "{times:?}");
        assert!(time("sleeps") >= Duration::from_millis(280), "{times:?}");
        assert!(time("sleeps") < Duration::from_secs(2), "{times:?}");
        assert!(time("daemon1") >= Duration::from_millis(180), "{times:?}");
        assert!(time("quick") <= Duration::from_millis(50), "{times:?}");
        // No clock in the script unless asked for.
        let plain = FactScript::new(&probes);
        assert!(!plain.text.contains("uptime"));
        assert!(plain
            .split_timed(&run_sh(&plain.text))
            .unwrap()
            .1
            .is_empty());
        // A host without /proc/uptime: outputs, but no times.
        let dashed: String = out
            .lines()
            .map(|l| match l.starts_with("@@") {
                true => {
                    let mut f: Vec<&str> = l.split(' ').collect();
                    *f.last_mut().unwrap() = "-";
                    f.join(" ") + "\n"
                }
                false => format!("{l}\n"),
            })
            .collect();
        let (again, times) = script.split_timed(&dashed).unwrap();
        assert_eq!(again["quick"].output, "quick\n");
        assert!(times.is_empty());
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
