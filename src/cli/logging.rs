//! Logs for `-v`, `-vv`, `-vvv`, on stderr, every line passed through the redactor: a secret
//! must not reach a log at any verbosity.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::engine::Redactor;

pub fn init(verbose: u8, redactor: Redactor) {
    let filter = match verbose {
        0 => return,
        1 => "bringup=info",
        2 => "bringup=debug,kube=info",
        // Not `trace` for every crate: tungstenite and hyper trace the raw frames of exec
        // and port-forward streams, whose payloads (OpenBao's answer to sys/init, a recovered
        // password, a fresh token) reach the log before bringup has read them and registered
        // them as secrets, and as hex, which no redactor would recognise.
        _ => "bringup=trace,kube=debug,info",
    };
    let filter = EnvFilter::try_from_env("BRINGUP_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr { redactor })
        .with_ansi(false)
        .try_init();
}

#[derive(Clone)]
struct RedactingStderr {
    redactor: Redactor,
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingLine;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine {
            redactor: self.redactor.clone(),
            buffer: Vec::new(),
        }
    }
}

/// Buffers one log event and writes it redacted when dropped (tracing makes one writer per
/// event), so a secret split across writes is still caught.
struct RedactingLine {
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl Write for RedactingLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::stderr().write_all(self.redactor.redact(&text).as_bytes());
    }
}
