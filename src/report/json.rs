//! The JSON reporter: one JSON object per event and line, with `event` and `timestamp`.

use crate::engine::events::TimedEvent;
use crate::report::reporter::{Reporter, SharedWriter};

pub struct JsonReporter {
    out: SharedWriter,
}

impl JsonReporter {
    pub fn new(out: SharedWriter) -> Self {
        JsonReporter { out }
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: &TimedEvent) {
        self.out.write_text(&format!("{}\n", event.to_json()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Event, Outcome};
    use crate::report::reporter::testing::Buffer;

    #[test]
    fn one_object_per_line_with_event_and_timestamp() {
        let buffer = Buffer::default();
        let reporter = JsonReporter::new(SharedWriter::new(buffer.clone()));
        let timestamp = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .to_utc();
        reporter.report(&TimedEvent {
            timestamp,
            event: Event::StepFinished {
                step: "a/x".into(),
                kind: "exec".into(),
                outcome: Outcome::Skipped {
                    reason: "done".into(),
                },
                elapsed_ms: 0,
            },
        });
        let text = buffer.text();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"event": "step_finished", "timestamp": "2024-05-01T12:00:00.000Z", "step": "a/x", "kind": "exec",
                "outcome": {"status": "skipped", "reason": "done"}, "elapsed_ms": 0})
        );
    }
}
