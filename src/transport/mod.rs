//! The only code that touches a host. A [`Host`] runs a shell script and returns its output;
//! [`ssh::SshHost`] does it over one multiplexed OpenSSH connection per machine, and
//! [`LocalHost`] on this machine (for `--facts`-free tests and tools).

pub mod ssh;

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// What a script printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutput {
    /// `None` when the process was killed by a signal.
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for ScriptOutput {
    fn from(output: std::process::Output) -> Self {
        ScriptOutput {
            rc: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A failure to run anything at all on a host (as opposed to a command that failed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    pub message: String,
}

impl TransportError {
    pub fn new(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
        }
    }
}

/// A boxed future, so [`Host`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere scripts run.
pub trait Host: Send + Sync {
    /// Runs `script` with `sh -s` (as root, through `sudo -n` when needed), feeding it on
    /// stdin so that no value ever appears in a process list and no length limit applies.
    fn run_script<'a>(
        &'a self,
        script: &'a str,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>>;
}

/// This machine, through a local `sh`.
#[derive(Debug, Default)]
pub struct LocalHost;

impl Host for LocalHost {
    fn run_script<'a>(
        &'a self,
        script: &'a str,
    ) -> BoxFuture<'a, Result<ScriptOutput, TransportError>> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new("sh")
                .arg("-s")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| TransportError::new(format!("cannot start sh: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(script.as_bytes()).await.map_err(|e| {
                    TransportError::new(format!("cannot write the script to sh: {e}"))
                })?;
            }
            let output = child
                .wait_with_output()
                .await
                .map_err(|e| TransportError::new(format!("sh failed: {e}")))?;
            Ok(ScriptOutput::from(output))
        })
    }
}
