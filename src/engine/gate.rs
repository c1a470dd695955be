//! The confirmation gate: the CLI's decider is asked once, before the first change, and
//! every change waits for its answer.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::engine::settings::{Confirmation, Decider};
use crate::report::Reporter;

pub(crate) struct Gate {
    decider: Option<Arc<dyn Decider>>,
    reporter: Arc<dyn Reporter>,
    answer: OnceCell<bool>,
}

impl Gate {
    pub(crate) fn new(decider: Option<Arc<dyn Decider>>, reporter: Arc<dyn Reporter>) -> Self {
        Gate {
            decider,
            reporter,
            answer: OnceCell::new(),
        }
    }

    /// Whether changes may go ahead; asks on the first call only.
    pub(crate) async fn pass(&self, confirmation: &Confirmation) -> bool {
        *self
            .answer
            .get_or_init(|| async {
                let Some(decider) = self.decider.clone() else {
                    return true;
                };
                let reporter = self.reporter.clone();
                let confirmation = confirmation.clone();
                // The decider may block on a terminal prompt.
                tokio::task::spawn_blocking(move || {
                    let mut yes = false;
                    reporter.suspend(&mut || yes = decider.confirm(&confirmation));
                    yes
                })
                .await
                .unwrap_or(false)
            })
            .await
    }

    /// Whether the answer was no.
    pub(crate) fn declined(&self) -> bool {
        self.answer.get() == Some(&false)
    }
}
