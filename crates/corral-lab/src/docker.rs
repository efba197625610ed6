//! The `docker` CLI as the lab uses it: engine check, images, networks and containers,
//! `docker exec` probes. Every failure names the docker command and carries docker's stderr.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::layout::{HOST_LABEL, IP_LABEL, LAB_LABEL, LIGHT_LABEL};
use super::{tool, LabError};

/// Debian's docker.io client; another `docker` earlier on `PATH` may belong to a different
/// engine (TESTBED.md §1).
const DEBIAN_DOCKER: &str = "/usr/bin/docker";

/// A docker client binary.
#[derive(Debug, Clone)]
pub(crate) struct Docker {
    program: PathBuf,
}

/// A lab container as `docker inspect` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabContainer {
    pub name: String,
    pub state: String,
    pub image_id: String,
    pub host: String,
    pub ip: String,
    /// `true` or `false`: see [`super::layout::LIGHT_LABEL`].
    pub light: String,
}

impl Docker {
    pub(crate) fn locate() -> Self {
        let debian = PathBuf::from(DEBIAN_DOCKER);
        let program = if debian.exists() {
            debian
        } else {
            PathBuf::from("docker")
        };
        Self { program }
    }

    pub(crate) fn program(&self) -> &std::path::Path {
        &self.program
    }

    pub(crate) fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        cmd
    }

    /// Runs docker and returns its stdout; a non-zero exit is an error with docker's stderr.
    pub(crate) fn run<I, S>(&self, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        tool::checked(&mut self.command(args))
    }

    /// Runs docker and returns its output whatever the exit status.
    pub(crate) fn output<I, S>(&self, args: I) -> Result<Output, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        tool::output(&mut self.command(args))
    }

    /// The engine's version, or [`LabError::DockerUnavailable`] when no engine answers.
    pub(crate) fn engine_version(&self) -> Result<String, LabError> {
        // `docker info --format` hides "Cannot connect to the Docker daemon" behind a template
        // error; `docker version` reports it plainly.
        let mut cmd = self.command(["version", "--format", "{{.Server.Version}}"]);
        let out = tool::output(&mut cmd)?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !version.is_empty() {
            Ok(version)
        } else {
            Err(LabError::DockerUnavailable {
                command: tool::describe(&cmd),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// The ID of the image `reference`, or `None` if there is no such image.
    pub(crate) fn image_id(&self, reference: &str) -> Result<Option<String>, LabError> {
        let mut cmd = self.command(["image", "inspect", "--format", "{{.Id}}", reference]);
        let out = tool::output(&mut cmd)?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()));
        }
        if is_not_found(&out) {
            Ok(None)
        } else {
            Err(tool::failed(&cmd, &out))
        }
    }

    /// The subnet and lab label of the network `name`, or `None` if it does not exist.
    pub(crate) fn network(&self, name: &str) -> Result<Option<(String, String)>, LabError> {
        let format = format!(
            "{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{end}}}}\t{{{{index .Labels \"{LAB_LABEL}\"}}}}"
        );
        let mut cmd = self.command(["network", "inspect", "--format", &format, name]);
        let out = tool::output(&mut cmd)?;
        if !out.status.success() {
            return if is_not_found(&out) {
                Ok(None)
            } else {
                Err(tool::failed(&cmd, &out))
            };
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (subnet, label) = text.trim_end().split_once('\t').unwrap_or((&text, ""));
        Ok(Some((subnet.trim().to_owned(), label.trim().to_owned())))
    }

    /// IDs of all containers (running or not) carrying `label=value`.
    pub(crate) fn containers_labelled(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<String>, LabError> {
        let filter = format!("label={label}={value}");
        let out = self.run(["ps", "-a", "-q", "--no-trunc", "--filter", &filter])?;
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    /// IDs of networks carrying `label=value`.
    pub(crate) fn networks_labelled(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<String>, LabError> {
        let filter = format!("label={label}={value}");
        let out = self.run(["network", "ls", "-q", "--no-trunc", "--filter", &filter])?;
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    /// The lab containers among `ids`, sorted by host number.
    pub(crate) fn inspect_containers(&self, ids: &[String]) -> Result<Vec<LabContainer>, LabError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let format = format!(
            "{{{{.Name}}}}\t{{{{.State.Status}}}}\t{{{{.Image}}}}\t\
             {{{{index .Config.Labels \"{HOST_LABEL}\"}}}}\t{{{{index .Config.Labels \"{IP_LABEL}\"}}}}\t\
             {{{{index .Config.Labels \"{LIGHT_LABEL}\"}}}}"
        );
        let mut args = vec!["inspect".to_owned(), "--format".to_owned(), format];
        args.extend(ids.iter().cloned());
        let out = self.run(args)?;
        let mut containers: Vec<LabContainer> = out
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                Some(LabContainer {
                    name: f.next()?.trim_start_matches('/').to_owned(),
                    state: f.next()?.to_owned(),
                    image_id: f.next()?.to_owned(),
                    host: f.next()?.to_owned(),
                    ip: f.next()?.to_owned(),
                    light: f.next()?.to_owned(),
                })
            })
            .collect();
        containers.sort_by_key(|c| host_number(&c.host));
        Ok(containers)
    }

    /// Removes containers by name or ID, with their anonymous volumes; absent ones are fine.
    pub(crate) fn remove_containers(&self, names: &[String]) -> Result<(), LabError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm".to_owned(), "-f".to_owned(), "-v".to_owned()];
        args.extend(names.iter().cloned());
        let mut cmd = self.command(&args);
        let out = tool::output(&mut cmd)?;
        if out.status.success() || only_not_found(&out) {
            Ok(())
        } else {
            Err(tool::failed(&cmd, &out))
        }
    }

    /// Removes a network by name or ID; an absent one is fine.
    pub(crate) fn remove_network(&self, name: &str) -> Result<(), LabError> {
        let mut cmd = self.command(["network", "rm", name]);
        let out = tool::output(&mut cmd)?;
        if out.status.success() || only_not_found(&out) {
            Ok(())
        } else {
            Err(tool::failed(&cmd, &out))
        }
    }

    /// `docker exec CONTAINER ARGS…`, output whatever the exit status.
    pub(crate) fn exec(&self, container: &str, args: &[&str]) -> Result<Output, LabError> {
        let mut all = vec!["exec", container];
        all.extend_from_slice(args);
        self.output(all)
    }
}

/// `n12` → 12, for ordering; anything else sorts last.
fn host_number(host: &str) -> u32 {
    host.strip_prefix('n')
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

fn is_not_found(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    stderr.contains("no such") || stderr.contains("not found")
}

/// Every error line says the object does not exist (docker rm with several names).
fn only_not_found(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some() && lines.all(|l| l.contains("no such") || l.contains("not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_sort_by_number_not_text() {
        let mut hosts = vec!["n10", "n2", "x", "n1"];
        hosts.sort_by_key(|h| host_number(h));
        assert_eq!(hosts, ["n1", "n2", "n10", "x"]);
    }
}
