//! Errors of the engine's commands, each mapped to the process exit code the CLI returns.

use crate::cluster::ClusterError;
use crate::engine::summary::Summary;

/// Why a command stopped. Every message is redacted before it is built: step errors reach
/// this type only through [`Summary`], whose texts went through the redactor.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A flag names something that does not exist, or flags contradict each other.
    #[error("{0}")]
    BadSelection(String),

    #[error(
        "phase `{phase}` depends on {}, not done in the checkpoint ({}); run them first, or pass --ignore-dependencies to run `{phase}` anyway",
        quote_list(.dependencies), .detail.join(", ")
    )]
    DependenciesNotDone {
        phase: String,
        dependencies: Vec<String>,
        detail: Vec<String>,
    },

    #[error(
        "{} without an answer and no terminal to ask: {}",
        if .missing.len() == 1 { "a prompt step would run" } else { "prompt steps would run" },
        .missing.iter().map(|m| format!("step {} needs --set {}=...", m.step, m.key)).collect::<Vec<_>>().join("; ")
    )]
    MissingValues { missing: Vec<MissingValue> },

    #[error(
        "lease {namespace}/{name} is held by `{holder}` since {since}; wait for that run to finish, or if it is dead, wait {expires_in_s}s for the lease to expire or run `bringup unlock`"
    )]
    LockHeld {
        namespace: String,
        name: String,
        holder: String,
        since: String,
        expires_in_s: u64,
    },

    #[error(
        "lost lease {namespace}/{name} to `{holder}` during the run; stopped after the current step; check who runs bringup against this cluster, then re-run `bringup run` to resume"
    )]
    LockLost {
        namespace: String,
        name: String,
        holder: String,
    },

    #[error(
        "checkpoint {object} was written for cluster {recorded}, but this cluster is {current}; check --context, or use another --state-namespace"
    )]
    WrongCluster {
        object: String,
        recorded: String,
        current: String,
    },

    #[error(
        "checkpoint {object} has schema {found}, newer than this bringup understands ({supported}); upgrade bringup"
    )]
    NewerSchema {
        object: String,
        found: String,
        supported: u32,
    },

    #[error(
        "checkpoint {object} is unreadable: {message}; inspect it with kubectl, or remove it with `bringup reset --all`"
    )]
    BadCheckpoint { object: String, message: String },

    #[error("cannot write checkpoint {object}: {message}; re-run `bringup run` to resume")]
    CheckpointWrite { object: String, message: String },

    #[error("{during}")]
    Cluster {
        during: String,
        #[source]
        source: ClusterError,
    },

    #[error("{}", failed_message(.0))]
    StepsFailed(Box<Summary>),

    #[error(
        "bug: the probe of step {step} attempted `{operation}` during a read-only command; please report it"
    )]
    DryRunViolation { step: String, operation: String },

    #[error("{count} of {total} probed steps found drift; run `bringup run` to converge")]
    Drift { count: usize, total: usize },

    #[error("interrupted; re-run `bringup run` to resume")]
    Interrupted(Box<Summary>),

    #[error("stopped at the operator's request before any change")]
    Declined,
}

/// A prompt step that would run without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingValue {
    /// `phase/step`.
    pub step: String,
    /// The values key that answers it.
    pub key: String,
}

impl EngineError {
    /// The process exit code: 1 a step failed (or drift, or the cluster failed us), 2 bad input,
    /// 3 lock held or lost / wrong cluster / checkpoint we cannot read, 130 interrupted.
    ///
    /// Declining the confirmation counts as an interruption: nothing failed, nothing changed.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::BadSelection(_)
            | EngineError::DependenciesNotDone { .. }
            | EngineError::MissingValues { .. } => 2,
            EngineError::LockHeld { .. }
            | EngineError::LockLost { .. }
            | EngineError::WrongCluster { .. }
            | EngineError::NewerSchema { .. }
            | EngineError::BadCheckpoint { .. } => 3,
            EngineError::Interrupted(_) | EngineError::Declined => 130,
            EngineError::CheckpointWrite { .. }
            | EngineError::Cluster { .. }
            | EngineError::StepsFailed(_)
            | EngineError::DryRunViolation { .. }
            | EngineError::Drift { .. } => 1,
        }
    }

    /// The run's summary, when the run got far enough to have one.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            EngineError::StepsFailed(summary) | EngineError::Interrupted(summary) => Some(summary),
            _ => None,
        }
    }

    pub(crate) fn cluster(during: impl Into<String>) -> impl FnOnce(ClusterError) -> EngineError {
        let during = during.into();
        move |source| EngineError::Cluster { during, source }
    }
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn failed_message(summary: &Summary) -> String {
    let mut message = summary
        .failed
        .iter()
        .map(|f| format!("step {} failed: {}", f.step, f.error))
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(resume) = &summary.resume {
        message.push_str("; ");
        message.push_str(resume);
    }
    message
}
