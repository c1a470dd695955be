//! Step kinds: each has a read-only probe and an idempotent apply. The kinds are matched
//! here, in one place; each kind lives in its own file.

mod apply;
mod capture;
mod exec;
mod http;
mod http_endpoint;
mod lookup_result;
mod pod_target;
mod prompt;
mod secret;
mod secret_data;
mod store;
mod timeouts;
pub mod vault;
mod wait;

#[cfg(test)]
mod testing;

use std::sync::Arc;

use crate::cluster::{Cluster, ClusterError};
use crate::engine::redact::Redactor;
use crate::phase::model::{Step, StepKind};
use crate::phase::template::{TemplateError, Templater};

pub use capture::{parse as parse_capture, register_leaves};
pub use pod_target::PodTarget;
pub use secret::random_value;
pub use secret_data::{MANAGED_BY, SecretData, SecretShape};
pub use timeouts::for_step as step_timeout;

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

/// Read-only: is this step's work done? A template that cannot render yet (it reads a
/// Secret an earlier step creates) makes the answer `Unknown`, not an error.
pub async fn probe(ctx: &StepContext<'_>) -> Result<Probe, StepError> {
    let limit = timeouts::for_step(ctx.step);
    let work = async {
        match &ctx.step.kind {
            StepKind::Secret(spec) => secret::probe(ctx, spec).await,
            StepKind::Apply(spec) => apply::probe(ctx, spec).await,
            StepKind::Exec(spec) => exec::probe(ctx, spec).await,
            StepKind::Http(spec) => http::probe(ctx, spec).await,
            StepKind::Wait(spec) => wait::probe(ctx, spec).await,
            StepKind::Prompt(spec) => prompt::probe(ctx, spec).await,
            StepKind::VaultInit(spec) => vault::init::probe(ctx, spec).await,
            StepKind::VaultUnseal(spec) => vault::unseal::probe(ctx, spec).await,
            StepKind::VaultConfig(spec) => vault::config::probe(ctx, spec).await,
            StepKind::VaultKv(spec) => vault::kv::probe(ctx, spec).await,
            StepKind::VaultRootToken(spec) => vault::root_token::probe(ctx, spec).await,
        }
    };
    match tokio::time::timeout(limit, work).await {
        Err(_) => Err(StepError::Timeout(limit)),
        Ok(Err(StepError::Template(e))) => Ok(Probe::Unknown(format!("cannot render yet: {e}"))),
        Ok(result) => result,
    }
}

/// Do the step's work, idempotently, within the step's timeout.
pub async fn apply(ctx: &StepContext<'_>) -> Result<Applied, StepError> {
    let limit = timeouts::for_step(ctx.step);
    let work = async {
        match &ctx.step.kind {
            StepKind::Secret(spec) => secret::apply(ctx, spec).await,
            StepKind::Apply(spec) => apply::apply(ctx, spec).await,
            StepKind::Exec(spec) => exec::apply(ctx, spec).await,
            StepKind::Http(spec) => http::apply(ctx, spec).await,
            StepKind::Wait(spec) => wait::apply(ctx, spec).await,
            StepKind::Prompt(spec) => prompt::apply(ctx, spec).await,
            StepKind::VaultInit(spec) => vault::init::apply(ctx, spec).await,
            StepKind::VaultUnseal(spec) => vault::unseal::apply(ctx, spec).await,
            StepKind::VaultConfig(spec) => vault::config::apply(ctx, spec).await,
            StepKind::VaultKv(spec) => vault::kv::apply(ctx, spec).await,
            StepKind::VaultRootToken(spec) => vault::root_token::apply(ctx, spec).await,
        }
    };
    // Waits keep their own deadline and say what they last saw; this guard is the backstop.
    let guard = match &ctx.step.kind {
        StepKind::Wait(_) => limit + timeouts::GRACE,
        StepKind::Apply(spec) => {
            limit
                + spec
                    .wait
                    .as_ref()
                    .map_or(std::time::Duration::ZERO, |w| apply::wait_limit(ctx, w))
        }
        _ => limit,
    };
    tokio::time::timeout(guard, work)
        .await
        .unwrap_or(Err(StepError::Timeout(guard)))
}
