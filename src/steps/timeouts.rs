//! How long one attempt of a step may take, when the step does not say.

use std::time::Duration;

use crate::phase::model::{Step, StepKind};

/// The step's `timeout`, else its kind's default: commands and waits get minutes, the rest
/// a minute.
pub fn for_step(step: &Step) -> Duration {
    step.timeout.map(|t| t.0).unwrap_or(match &step.kind {
        StepKind::Exec(_) | StepKind::Wait(_) => Duration::from_secs(300),
        // Unseal and join walk every replica; configuration is many small requests.
        StepKind::VaultInit(_)
        | StepKind::VaultUnseal(_)
        | StepKind::VaultConfig(_)
        | StepKind::VaultKv(_)
        | StepKind::VaultRootToken(_) => Duration::from_secs(180),
        StepKind::Http(_) | StepKind::Secret(_) | StepKind::Apply(_) | StepKind::Prompt(_) => {
            Duration::from_secs(60)
        }
    })
}

/// Extra time the outer guard allows a step that keeps its own deadline (waits), so its own,
/// more telling, timeout message wins.
pub const GRACE: Duration = Duration::from_secs(5);
