//! What the CLI hands the engine: plain data (no clap), plus the confirmation hook.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::events::Command;
use crate::engine::selection::Selection;
use crate::engine::summary::PlanSummary;

/// Settings for every engine command. `RunSettings::default()` is a sensible run.
#[derive(Clone)]
pub struct RunSettings {
    pub selection: Selection,
    /// Phases run at once (`--jobs`), at least 1.
    pub jobs: usize,
    /// Where the checkpoint and the lock live (`--state-namespace`).
    pub state_namespace: String,
    /// The Lease's duration; renewed every third of it. Short in tests.
    pub lock_duration: Duration,
    /// Asked once before the first change; `None` is `--yes`.
    pub confirm: Option<Arc<dyn Decider>>,
    /// `plan --probe`: run every read-only probe and show what it finds.
    pub probe: bool,
    /// Names this run in the Lease's holder.
    pub run_id: String,
    /// The Lease's holderIdentity: `user@host pid=N run=ID`.
    pub holder: String,
    /// `--values` and `--set`, merged: answers for prompt steps, and part of fingerprints.
    pub values: serde_json::Value,
    /// Whether prompt steps may ask the operator (a terminal, and no `--yes`).
    pub interactive: bool,
    /// The first wait before retrying a transient failure; doubled each retry.
    pub retry_backoff: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        let run_id = new_run_id();
        RunSettings {
            selection: Selection::default(),
            jobs: 4,
            state_namespace: "bringup".into(),
            lock_duration: Duration::from_secs(30),
            confirm: None,
            probe: false,
            holder: crate::engine::lock::default_holder(&run_id),
            run_id,
            values: serde_json::Value::Object(Default::default()),
            interactive: false,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

impl std::fmt::Debug for RunSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSettings")
            .field("selection", &self.selection)
            .field("jobs", &self.jobs)
            .field("state_namespace", &self.state_namespace)
            .field("lock_duration", &self.lock_duration)
            .field("confirm", &self.confirm.is_some())
            .field("probe", &self.probe)
            .field("run_id", &self.run_id)
            .field("holder", &self.holder)
            .field("interactive", &self.interactive)
            .finish_non_exhaustive()
    }
}

/// Eight hex digits, enough to tell runs apart in a Lease.
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// What the operator is asked to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub command: Command,
    pub context: String,
    pub server: String,
    /// For `run`: what the checkpoint says will happen.
    pub plan: PlanSummary,
    /// For `reset`: the records that will be removed (`phase/step`).
    pub removes: Vec<String>,
}

/// The CLI's answer to "go ahead?". Called at most once per command, with the reporter's
/// live view suspended; it may block (dialoguer).
pub trait Decider: Send + Sync {
    fn confirm(&self, confirmation: &Confirmation) -> bool;
}

impl<F: Fn(&Confirmation) -> bool + Send + Sync> Decider for F {
    fn confirm(&self, confirmation: &Confirmation) -> bool {
        self(confirmation)
    }
}
