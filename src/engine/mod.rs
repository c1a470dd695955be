//! The engine: the runner, events, checkpoint, lock and redaction.

pub mod redact;
