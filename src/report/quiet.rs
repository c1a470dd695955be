//! `-q`: only warnings, failures and the final summary reach the reporter underneath.

use std::sync::Arc;

use crate::engine::events::{Event, Outcome, TimedEvent};
use crate::report::Reporter;

pub fn quiet(inner: Arc<dyn Reporter>) -> Arc<dyn Reporter> {
    Arc::new(Quiet { inner })
}

struct Quiet {
    inner: Arc<dyn Reporter>,
}

impl Reporter for Quiet {
    fn report(&self, event: &TimedEvent) {
        let keep = match &event.event {
            Event::StepFinished { outcome, .. } => matches!(outcome, Outcome::Failed { .. }),
            Event::Warning { .. } | Event::RunFinished { .. } => true,
            Event::Plan { .. }
            | Event::Verify { .. }
            | Event::Status { .. }
            | Event::Reset { .. }
            | Event::Unlocked { .. } => true,
            _ => false,
        };
        if keep {
            self.inner.report(event);
        }
    }

    fn suspend(&self, f: &mut dyn FnMut()) {
        self.inner.suspend(f)
    }
}
