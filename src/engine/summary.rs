//! What a run did, and what a plan would do: the counts the reporters print and the
//! confirmation shows.

use serde::{Deserialize, Serialize};

/// The end of a run: counts, failures, phases that did not run, and how to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Steps that changed something.
    pub done: usize,
    /// Steps that ran (or probed) and found nothing to do.
    pub unchanged: usize,
    /// Once-steps skipped because the checkpoint records them done.
    pub skipped: usize,
    pub failed: Vec<FailedStep>,
    /// Phases that did not run, and why.
    pub not_run: Vec<NotRunPhase>,
    /// Selected steps that did not run (their phase failed, was blocked, or the run stopped).
    pub steps_not_run: usize,
    pub interrupted: bool,
    /// The next move, when there is one: `re-run `bringup run` to resume at vault/unseal`.
    pub resume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStep {
    /// `phase/step`.
    pub step: String,
    /// Redacted.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRunPhase {
    pub phase: String,
    pub reason: String,
}

impl Summary {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && !self.interrupted
    }
}

/// What a run would do, from the checkpoint alone (Terraform's "Plan: ..." line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Pending, failed or interrupted steps (and, with `--probe`, ensure steps with drift).
    pub to_run: usize,
    /// Done once-steps that will be skipped, and (with `--probe`) done ensure-steps whose
    /// probe found no drift.
    pub done: usize,
    /// Done steps whose definition changed: they run again.
    pub changed: usize,
    /// Done ensure-steps not probed by this plan: probed on every run, applied only on drift.
    pub to_check: usize,
}

impl PlanSummary {
    /// Whether a run would change anything for sure (ensure steps may still find drift).
    pub fn has_work(&self) -> bool {
        self.to_run + self.changed > 0
    }
}

impl std::fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan: {} to run, {} done, {} changed",
            self.to_run, self.done, self.changed
        )?;
        if self.to_check > 0 {
            write!(f, ", {} to check", self.to_check)?;
        }
        write!(f, ".")
    }
}
