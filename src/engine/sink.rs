//! The event sink: the one door between the engine and a reporter. Every string of every
//! event passes through the redactor here, so no reporter can leak a secret.

use std::sync::Arc;

use crate::engine::events::{Event, TimedEvent};
use crate::engine::redact::Redactor;
use crate::report::Reporter;

/// Redacts events and hands them to the reporter. Cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    redactor: Redactor,
    reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("redactor", &self.redactor)
            .finish_non_exhaustive()
    }
}

impl EventSink {
    pub fn new(reporter: Arc<dyn Reporter>, redactor: Redactor) -> Self {
        EventSink { redactor, reporter }
    }

    pub fn emit(&self, event: Event) {
        let event = self.redact(event);
        self.reporter.report(&TimedEvent {
            timestamp: chrono::Utc::now(),
            event,
        });
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.emit(Event::Warning {
            message: message.into(),
        });
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn reporter(&self) -> &Arc<dyn Reporter> {
        &self.reporter
    }

    /// Every string field, at any depth, redacted: a field added later cannot be forgotten.
    fn redact(&self, event: Event) -> Event {
        let Ok(mut value) = serde_json::to_value(&event) else {
            return Event::Warning {
                message: "bug: an event could not be serialized for redaction".into(),
            };
        };
        if !self.redactor.redact_json(&mut value) {
            return event;
        }
        serde_json::from_value(value).unwrap_or_else(|_| Event::Warning {
            message: "bug: a redacted event could not be rebuilt".into(),
        })
    }
}
