//! Reading a script's stdout and stderr with a bound on what is kept, for both transports:
//! a host that prints without end must cost corral neither unbounded memory nor its run.
//!
//! The buffers live outside the reading future, so what was read before a deadline is still
//! there when the future is dropped.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{OutputBound, TransportError};

/// How much of stderr is kept: its end, which says why a script failed.
pub const STDERR_TAIL: usize = 64 * 1024;

/// The bytes read so far from one stream, within its bound.
#[derive(Debug)]
pub struct Capture {
    bound: OutputBound,
    bytes: Vec<u8>,
    /// Bytes dropped from the front (only with [`OutputBound::KeepTail`]).
    dropped: u64,
}

impl Capture {
    pub fn new(bound: OutputBound) -> Self {
        Capture {
            bound,
            bytes: Vec::new(),
            dropped: 0,
        }
    }

    /// Adds `chunk`; fails once a [`OutputBound::FailBeyond`] limit is passed.
    fn push(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        self.bytes.extend_from_slice(chunk);
        match self.bound {
            OutputBound::FailBeyond(limit) if self.bytes.len() > limit => {
                Err(TransportError::OutputTooLarge { limit })
            }
            OutputBound::FailBeyond(_) => Ok(()),
            // Trimmed in steps of `limit`, so each byte is moved a bounded number of times.
            OutputBound::KeepTail(limit) if self.bytes.len() > limit.saturating_mul(2) => {
                let cut = self.bytes.len() - limit;
                self.bytes.drain(..cut);
                self.dropped += cut as u64;
                Ok(())
            }
            OutputBound::KeepTail(_) => Ok(()),
        }
    }

    /// What was kept, as text; a cut tail starts with `…` (and may start mid-character,
    /// which the lossy conversion shows as a replacement character).
    pub fn text(&self) -> String {
        let (kept, cut) = match self.bound {
            OutputBound::KeepTail(limit) if self.bytes.len() > limit => {
                (&self.bytes[self.bytes.len() - limit..], true)
            }
            _ => (&self.bytes[..], self.dropped > 0),
        };
        let text = String::from_utf8_lossy(kept);
        if cut {
            format!("…{text}")
        } else {
            text.into_owned()
        }
    }

    /// Reads `stream` to its end into this capture.
    pub async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        mut stream: R,
    ) -> Result<(), TransportError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = stream
                .read(&mut chunk)
                .await
                .map_err(|e| TransportError::Failed(format!("cannot read the output: {e}")))?;
            if read == 0 {
                return Ok(());
            }
            self.push(&chunk[..read])?;
        }
    }
}

/// Reads stdout and stderr at the same time (a full pipe would block the script), each into
/// its capture; the first failure (stdout past its limit) ends both.
pub async fn read_both<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    out: &mut Capture,
    err: &mut Capture,
) -> Result<(), TransportError>
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let read_out = async {
        match stdout {
            Some(stream) => out.read_from(stream).await,
            None => Ok(()),
        }
    };
    let read_err = async {
        match stderr {
            Some(stream) => err.read_from(stream).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(read_out, read_err).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keep_tail_keeps_only_the_end() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut capture = Capture::new(OutputBound::KeepTail(100));
        capture.read_from(&data[..]).await.unwrap();
        assert!(capture.bytes.len() <= 200);
        let text = capture.text();
        assert!(text.starts_with('…'));
        let expected = String::from_utf8_lossy(&data[data.len() - 100..]).into_owned();
        assert_eq!(text, format!("…{expected}"));
    }

    #[tokio::test]
    async fn fail_beyond_stops_reading() {
        let data = vec![b'x'; 5000];
        let mut capture = Capture::new(OutputBound::FailBeyond(1000));
        let error = capture.read_from(&data[..]).await.unwrap_err();
        assert!(matches!(
            error,
            TransportError::OutputTooLarge { limit: 1000 }
        ));
    }

    #[tokio::test]
    async fn small_output_is_kept_whole() {
        let mut capture = Capture::new(OutputBound::KeepTail(100));
        capture.read_from(&b"hello\n"[..]).await.unwrap();
        assert_eq!(capture.text(), "hello\n");
        let mut capture = Capture::new(OutputBound::FailBeyond(100));
        capture.read_from(&b"hello\n"[..]).await.unwrap();
        assert_eq!(capture.text(), "hello\n");
    }
}
