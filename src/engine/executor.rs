//! The executor seam: how the runner has a step probed or applied. `StepsExecutor` is the
//! real one (the step kinds in `crate::steps`); tests use fakes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cluster::Cluster;
use crate::engine::redact::Redactor;
use crate::phase::model::Step;
use crate::phase::template::Templater;
use crate::steps::{Applied, Probe, Prompter, StepContext, StepError};

/// What the runner gives an executor for one step.
pub struct ExecContext<'a> {
    pub phase: &'a str,
    pub step: &'a Step,
    /// Read-only for plan and verify.
    pub cluster: Arc<dyn Cluster>,
    pub redactor: &'a Redactor,
    /// A short progress message for the live view.
    pub progress: &'a (dyn Fn(String) + Send + Sync),
}

impl ExecContext<'_> {
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.phase, self.step.id)
    }
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Read-only: is the step's work done?
    async fn probe(&self, ctx: &ExecContext<'_>) -> Result<Probe, StepError>;
    /// Do the step's work, idempotently.
    async fn apply(&self, ctx: &ExecContext<'_>) -> Result<Applied, StepError>;
}

/// Runs steps with the step kinds of `crate::steps`.
pub struct StepsExecutor {
    templates: Templater,
    prompter: Arc<dyn Prompter>,
}

impl StepsExecutor {
    /// `templates` must read through the same cluster the command is given (read-only for
    /// plan and verify).
    pub fn new(templates: Templater, prompter: Arc<dyn Prompter>) -> Self {
        StepsExecutor {
            templates,
            prompter,
        }
    }

    fn context<'a>(&'a self, ctx: &'a ExecContext<'a>) -> StepContext<'a> {
        StepContext {
            phase: ctx.phase,
            step: ctx.step,
            cluster: ctx.cluster.clone(),
            templates: &self.templates,
            redactor: ctx.redactor,
            progress: ctx.progress,
            prompter: self.prompter.as_ref(),
        }
    }
}

#[async_trait]
impl Executor for StepsExecutor {
    async fn probe(&self, ctx: &ExecContext<'_>) -> Result<Probe, StepError> {
        crate::steps::probe(&self.context(ctx)).await
    }

    async fn apply(&self, ctx: &ExecContext<'_>) -> Result<Applied, StepError> {
        crate::steps::apply(&self.context(ctx)).await
    }
}
