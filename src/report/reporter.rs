//! The reporter seam: the engine emits events, one reporter owns the terminal.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::engine::events::TimedEvent;

/// Turns events into output. Called from several tasks at once.
pub trait Reporter: Send + Sync {
    /// One event, already redacted.
    fn report(&self, event: &TimedEvent);

    /// Runs `f` with any live display hidden, so a prompt can use the terminal.
    fn suspend(&self, f: &mut dyn FnMut()) {
        f()
    }
}

/// The reporter for this process: JSON lines with `-o json`; the live view when stderr is
/// a terminal; plain timestamped lines otherwise. Color only on a terminal, without
/// `--no-color` and without `NO_COLOR`.
pub fn choose(json: bool, no_color: bool) -> Arc<dyn Reporter> {
    if json {
        return Arc::new(crate::report::JsonReporter::new(SharedWriter::stdout()));
    }
    let term = console::Term::stderr();
    if term.is_term() {
        let color = !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Arc::new(crate::report::TtyReporter::new(color))
    } else {
        Arc::new(crate::report::PlainReporter::new(SharedWriter::stdout()))
    }
}

/// A writer several reporters' lines can share (stdout, or a buffer in tests).
#[derive(Clone)]
pub struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedWriter {
    pub fn new(writer: impl Write + Send + 'static) -> Self {
        SharedWriter(Arc::new(Mutex::new(Box::new(writer))))
    }

    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }

    /// Writes whole text at once, so lines from concurrent phases never interleave. Output
    /// errors (a closed pipe) are ignored: the run's outcome does not depend on its output.
    pub fn write_text(&self, text: &str) {
        let mut writer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writer.write_all(text.as_bytes());
        let _ = writer.flush();
    }
}

impl std::fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWriter")
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A buffer behind a [`SharedWriter`], readable by the test.
    #[derive(Clone, Default)]
    pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }
}
