//! SSH with the `openssh` crate: one master connection per machine (ControlMaster), every
//! command multiplexed over it through the native mux protocol.
//!
//! Host keys are checked strictly (`StrictHostKeyChecking=yes`): corral never adds or accepts
//! an unknown key by itself. `~/.ssh/config` (or `--ssh-config`), the agent and the machine's
//! `ssh:` settings are honoured, in that order of increasing precedence.

use std::path::PathBuf;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use super::{BoxFuture, Host, ScriptOutput, TransportError};
use crate::config::Machine;

/// Settings shared by every connection of a run.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Passed to ssh as `-F`.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Where control sockets live; must be short (a socket path fits in 107 bytes).
    pub control_dir: PathBuf,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config_file: None,
            connect_timeout: Duration::from_secs(10),
            control_dir: std::env::temp_dir(),
        }
    }
}

/// An open connection to one machine.
pub struct SshHost {
    session: Session,
}

impl SshHost {
    /// Opens the master connection.
    pub async fn connect(
        machine: &Machine,
        options: &SshOptions,
    ) -> Result<SshHost, TransportError> {
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(KnownHosts::Strict)
            .connect_timeout(options.connect_timeout)
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(&options.control_dir);
        if let Some(file) = &options.config_file {
            builder.config_file(file);
        }
        let ssh = &machine.spec.ssh;
        if let Some(user) = &ssh.user {
            builder.user(user.clone());
        }
        if let Some(port) = ssh.port {
            builder.port(port);
        }
        if let Some(identity) = &ssh.identity_file {
            builder.keyfile(expand_home(identity));
        }
        if let Some(jump) = &ssh.proxy_jump {
            builder.jump_hosts([jump]);
        }
        let destination = machine.spec.ip.to_string();
        let session = builder.connect_mux(&destination).await.map_err(|e| {
            let detail = error_chain(&e);
            let hint = if detail.contains("Host key verification failed") {
                " (corral checks host keys strictly: verify the host's key fingerprint, then add it to known_hosts)"
            } else {
                ""
            };
            TransportError::new(format!(
                "cannot connect to {} ({destination}) over SSH: {detail}{hint}",
                machine.name
            ))
        })?;
        Ok(SshHost { session })
    }

    /// Closes the master connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

impl Host for SshHost {
    fn run_script<'a>(
        &'a self,
        script: &'a str,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            // Root runs the script itself; anyone else through `sudo -n` (never prompting),
            // whatever user ~/.ssh/config chose. Nothing reads stdin before the `exec`.
            let mut command = self.session.command("sh");
            command
                .arg("-c")
                .arg("if [ \"$(id -u)\" -eq 0 ]; then exec sh -s; else exec sudo -n sh -s; fi");
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .await
                .map_err(|e| {
                    TransportError::new(format!("cannot start a remote shell: {}", error_chain(&e)))
                })?;
            if let Some(mut stdin) = child.stdin().take() {
                stdin
                    .write_all(script.as_bytes())
                    .await
                    .map_err(|e| TransportError::new(format!("cannot send the script: {e}")))?;
                stdin
                    .shutdown()
                    .await
                    .map_err(|e| TransportError::new(format!("cannot send the script: {e}")))?;
            }
            let output = child.wait_with_output().await.map_err(|e| {
                TransportError::new(format!("the remote shell failed: {}", error_chain(&e)))
            })?;
            Ok(ScriptOutput::from(output))
        })
    }
}

/// `~/x` → `$HOME/x`, as ssh itself would for `IdentityFile`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// An error and its causes on one line; ssh's own log lines are the useful part.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        let cause_text = cause_text.trim();
        if !cause_text.is_empty() && !text.contains(cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text.replace('\n', " "));
        }
        source = cause.source();
    }
    text
}
