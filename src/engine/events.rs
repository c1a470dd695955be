//! Events: everything the engine tells a reporter, from the start of a command to its
//! summary. Serializable, one JSON object per line for `-o json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::summary::{PlanSummary, Summary};
use crate::phase::model::Mode;

/// The command an event stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Run,
    Plan,
    Status,
    Verify,
    Reset,
    Unlock,
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Run => "run",
            Command::Plan => "plan",
            Command::Status => "status",
            Command::Verify => "verify",
            Command::Reset => "reset",
            Command::Unlock => "unlock",
        })
    }
}

/// One thing that happened. Every string in it is redacted by the
/// [`EventSink`](crate::engine::sink::EventSink) before a reporter sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        command: Command,
        context: String,
        server: String,
        steps: usize,
        run_id: String,
    },
    PhaseStarted {
        phase: String,
    },
    PhaseFinished {
        phase: String,
        outcome: PhaseOutcome,
    },
    /// `step` is the full id, `phase/step`.
    StepStarted {
        step: String,
        kind: String,
        description: Option<String>,
    },
    StepProgress {
        step: String,
        message: String,
    },
    StepFinished {
        step: String,
        kind: String,
        outcome: Outcome,
        elapsed_ms: u64,
    },
    /// The rows of `plan` (and of `verify`, where `probe` is always set).
    Plan {
        rows: Vec<PlanRow>,
        summary: PlanSummary,
    },
    Verify {
        rows: Vec<PlanRow>,
        drift: usize,
    },
    Status {
        checkpoint: String,
        rows: Vec<StatusRow>,
    },
    /// `reset`: the records removed (`phase/step`, or raw keys of unreadable records).
    Reset {
        checkpoint: String,
        removed: Vec<String>,
    },
    /// `unlock`: who held the lock (`None`: it was free).
    Unlocked {
        lease: String,
        holder: Option<String>,
        since: Option<DateTime<Utc>>,
    },
    Warning {
        message: String,
    },
    RunFinished {
        command: Command,
        summary: Summary,
        elapsed_ms: u64,
    },
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// It changed something.
    Done {
        message: String,
    },
    /// Not run: the checkpoint says it is done.
    Skipped {
        reason: String,
    },
    /// Ran or probed, and there was nothing to do.
    Unchanged {
        message: String,
    },
    Failed {
        error: String,
    },
    /// The run was cancelled while this step ran; it stays `running` in the checkpoint.
    Interrupted,
}

/// How a phase ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PhaseOutcome {
    Ok,
    Failed { step: String },
    NotRun { reason: String },
    Interrupted,
}

/// A step's state as the checkpoint tells it, before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Never run (or reset).
    Pending,
    Done,
    /// Done, but its definition changed since: it runs again.
    Changed,
    Failed,
    /// Left `running` by a run that died or was stopped: it runs again.
    Interrupted,
}

impl std::fmt::Display for StepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepState::Pending => "pending",
            StepState::Done => "done",
            StepState::Changed => "changed",
            StepState::Failed => "failed",
            StepState::Interrupted => "interrupted",
        })
    }
}

/// What a read-only probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Done,
    NeedsWork,
    Unknown,
    /// The probe itself failed.
    Error,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Finding::Done => "done",
            Finding::NeedsWork => "needs work",
            Finding::Unknown => "unknown",
            Finding::Error => "probe failed",
        })
    }
}

/// One selected step in a plan or verify table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRow {
    pub step: String,
    pub kind: String,
    pub mode: Mode,
    pub state: StepState,
    pub probe: Option<Finding>,
    pub detail: String,
}

/// One step in `status`: the checkpoint's record of its last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRow {
    pub step: String,
    pub state: StepState,
    /// False for a record whose step no longer exists in the phase files.
    pub defined: bool,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub error: Option<String>,
}

/// An event with the time it was emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    pub timestamp: DateTime<Utc>,
    pub event: Event,
}

impl TimedEvent {
    /// The JSON line for `-o json`: the event's fields plus `timestamp`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.event).unwrap_or_else(
            |e| serde_json::json!({"event": "warning", "message": format!("bug: event not serializable: {e}")}),
        );
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                "timestamp".into(),
                serde_json::Value::String(crate::engine::clock::rfc3339(self.timestamp)),
            );
        }
        value
    }
}
