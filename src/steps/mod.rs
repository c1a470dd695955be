//! Step kinds: each has a read-only probe and an idempotent apply. The kinds are matched
//! here, in one place; each kind lives in its own file.

pub mod vault;

use std::sync::Arc;

use crate::cluster::{Cluster, ClusterError};
use crate::engine::redact::Redactor;
use crate::phase::model::{Step, StepKind};
use crate::phase::template::{Locals, TemplateError, Templater};

/// What a step is given to do its work.
pub struct StepContext<'a> {
    pub phase: &'a str,
    pub step: &'a Step,
    pub cluster: Arc<dyn Cluster>,
    pub templates: &'a Templater,
    pub redactor: &'a Redactor,
    /// Reports a short progress message for the live view (already safe to show: the
    /// reporter redacts again anyway).
    pub progress: &'a (dyn Fn(String) + Send + Sync),
    /// Answers `prompt` steps: the CLI layer owns the terminal, the engine only asks.
    pub prompter: &'a dyn Prompter,
}

impl StepContext<'_> {
    /// `phase/step`, for messages.
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.phase, self.step.id)
    }
}

/// Asks the operator for a value. Implemented by the CLI (dialoguer) and by tests.
pub trait Prompter: Send + Sync {
    /// `Ok(None)` when no one can be asked (not a terminal, or `--yes`).
    fn ask(&self, question: &str, hidden: bool) -> Result<Option<String>, String>;
}

/// A prompter that can never ask (non-interactive runs).
pub struct NoPrompter;

impl Prompter for NoPrompter {
    fn ask(&self, _question: &str, _hidden: bool) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// What a read-only probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The work is done; the string says what was seen (`3 keys present`).
    Done(String),
    /// The work is needed; the string says why (`key password missing`).
    NeedsWork(String),
    /// Cannot tell without changing something (a once step with no `skip_if`) or without
    /// data an earlier step produces.
    Unknown(String),
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// It changed the cluster (or a service); the string says what.
    Changed(String),
    /// Nothing needed doing (an ensure step without drift, a `skip_if` that held).
    Unchanged(String),
}

/// A step that failed. The message names the object and the next move; it is redacted
/// before anyone sees it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The step ran and the outcome was wrong (exit code, HTTP status, parse failure).
    #[error("{0}")]
    Failed(String),
    /// Worth retrying: a dropped connection, a 5xx, a 429.
    #[error("{0}")]
    Transient(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl StepError {
    pub fn is_transient(&self) -> bool {
        match self {
            StepError::Cluster(e) => e.is_transient(),
            StepError::Transient(_) => true,
            _ => false,
        }
    }
}

/// Read-only: is this step's work done?
pub async fn probe(ctx: &StepContext<'_>) -> Result<Probe, StepError> {
    let _ = (ctx, Locals::default());
    match &ctx.step.kind {
        StepKind::VaultInit(spec) => vault::init::probe(ctx, spec).await,
        StepKind::VaultUnseal(spec) => vault::unseal::probe(ctx, spec).await,
        StepKind::VaultConfig(spec) => vault::config::probe(ctx, spec).await,
        StepKind::VaultKv(spec) => vault::kv::probe(ctx, spec).await,
        StepKind::VaultRootToken(spec) => vault::root_token::probe(ctx, spec).await,
        StepKind::Secret(_) | StepKind::Apply(_) | StepKind::Exec(_) | StepKind::Http(_) | StepKind::Wait(_) | StepKind::Prompt(_) => {
            Ok(Probe::Unknown("not implemented yet".into()))
        }
    }
}

/// Do the step's work, idempotently.
pub async fn apply(ctx: &StepContext<'_>) -> Result<Applied, StepError> {
    match &ctx.step.kind {
        StepKind::VaultInit(spec) => vault::init::apply(ctx, spec).await,
        StepKind::VaultUnseal(spec) => vault::unseal::apply(ctx, spec).await,
        StepKind::VaultConfig(spec) => vault::config::apply(ctx, spec).await,
        StepKind::VaultKv(spec) => vault::kv::apply(ctx, spec).await,
        StepKind::VaultRootToken(spec) => vault::root_token::apply(ctx, spec).await,
        _ => Err(StepError::Failed(format!("step kind `{}` is not implemented yet", ctx.step.kind.name()))),
    }
}
