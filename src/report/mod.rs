//! Reporters: turn engine events into terminal output. A live indicatif view on a TTY,
//! timestamped lines on a pipe, JSON lines with `-o json`. indicatif lives only here.

pub mod format;
mod json;
mod plain;
mod quiet;
mod reporter;
mod table;
mod tty;

pub use json::JsonReporter;
pub use plain::PlainReporter;
pub use quiet::quiet;
pub use reporter::{Reporter, SharedWriter, choose};
pub use tty::TtyReporter;
