//! `run`: phases in dependency order, independent ones at once up to `jobs`, the steps of a
//! phase in order, each recorded in the checkpoint under the lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterError};
use crate::engine::checkpoint::{Checkpoint, RecordStatus, StepRecord};
use crate::engine::checkpoint_writer::CheckpointWriter;
use crate::engine::clock;
use crate::engine::error::EngineError;
use crate::engine::events::{Command, Event, Outcome, PhaseOutcome, StepState};
use crate::engine::executor::{ExecContext, Executor};
use crate::engine::gate::Gate;
use crate::engine::lock::{Acquired, Lock};
use crate::engine::preflight::{PlannedStep, Preflight};
use crate::engine::settings::{Confirmation, RunSettings};
use crate::engine::sink::EventSink;
use crate::engine::summary::{FailedStep, NotRunPhase, Summary};
use crate::phase::model::{Mode, Phase, Step, StepKind};
use crate::steps::{Applied, Probe, StepError};

/// How long one attempt of a step may take when the step names no timeout. Kinds have
/// their own, shorter defaults; this only bounds a step that hangs.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Transient failures are retried this many times unless the step says otherwise.
pub const DEFAULT_RETRIES: u32 = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the selected steps. `phases` in dependency order (the loader's order).
///
/// Returns the summary when every selected step is done; otherwise an error whose
/// [`exit_code`](EngineError::exit_code) the CLI returns. The summary is also reported as
/// the last event.
pub async fn run(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: EventSink,
    cancel: CancellationToken,
) -> Result<Summary, EngineError> {
    let started = Instant::now();
    let selected = settings.selection.resolve(phases)?;
    events.emit(Event::RunStarted {
        command: Command::Run,
        context: cluster.context().into(),
        server: cluster.server().into(),
        steps: selected.len(),
        run_id: settings.run_id.clone(),
    });
    let result = run_under_lock(
        settings, phases, &selected, cluster, executor, &events, cancel,
    )
    .await;
    let summary = match &result {
        Ok(summary) => Some(summary),
        Err(e) => e.summary(),
    };
    if let Some(summary) = summary {
        events.emit(Event::RunFinished {
            command: Command::Run,
            summary: summary.clone(),
            elapsed_ms: clock::millis(started.elapsed()),
        });
    }
    result
}

async fn run_under_lock(
    settings: &RunSettings,
    phases: &[Phase],
    selected: &BTreeSet<String>,
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: &EventSink,
    cancel: CancellationToken,
) -> Result<Summary, EngineError> {
    let namespace = settings.state_namespace.as_str();
    let identity = cluster.identity().await.map_err(EngineError::cluster(
        "reading the cluster identity (namespace kube-system)",
    ))?;
    let gate = Arc::new(Gate::new(
        settings.confirm.clone(),
        events.reporter().clone(),
    ));
    let confirmation = |plan| Confirmation {
        command: Command::Run,
        context: cluster.context().into(),
        server: cluster.server().into(),
        plan,
        removes: Vec::new(),
    };

    let acquired = match Lock::acquire(
        cluster.clone(),
        namespace,
        &settings.holder,
        settings.lock_duration,
    )
    .await?
    {
        Acquired::NamespaceMissing => {
            // A fresh cluster: nothing recorded yet. Everything that must hold before the
            // first change is checked against an empty checkpoint, then the namespace is
            // created — the first change, so the operator is asked first.
            let preflight =
                Preflight::check(settings, phases, selected, &Checkpoint::empty(namespace))?;
            if !gate.pass(&confirmation(preflight.summary)).await {
                return Err(EngineError::Declined);
            }
            create_namespace(&*cluster, namespace).await?;
            Lock::acquire(
                cluster.clone(),
                namespace,
                &settings.holder,
                settings.lock_duration,
            )
            .await?
        }
        held => held,
    };
    let Acquired::Held { lock, took_over } = acquired else {
        return Err(EngineError::cluster(format!(
            "taking the lock in namespace {namespace}"
        ))(ClusterError::Other(
            "the namespace is still missing after it was created".into(),
        )));
    };
    if let Some(previous) = took_over {
        let why = if previous.process_gone() {
            "whose process on this machine is gone".to_string()
        } else {
            format!(
                "which stopped renewing it{}",
                previous
                    .renewed
                    .map(|t| format!(" at {}", clock::rfc3339(t)))
                    .unwrap_or_default()
            )
        };
        events.warn(format!(
            "took over lease {namespace}/{} from `{}`, {why}",
            crate::engine::lock::LOCK_NAME,
            previous.identity,
        ));
    }

    let result = run_locked(
        settings, phases, selected, cluster, executor, events, cancel, &lock, gate, identity,
    )
    .await;
    if let Err(e) = lock.release().await {
        // The lease expires on its own; the run's outcome matters more.
        events.warn(format!(
            "{e}; the lock frees itself after {}s",
            settings.lock_duration.as_secs()
        ));
    }
    result
}

async fn create_namespace(cluster: &dyn Cluster, namespace: &str) -> Result<(), EngineError> {
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": "bringup"}},
    });
    match cluster.create(&object).await {
        Ok(_) | Err(ClusterError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(EngineError::cluster(format!(
            "creating the state namespace {namespace} (--state-namespace)"
        ))(e)),
    }
}

/// Everything a phase task needs, shared.
struct RunCtx {
    phases: Vec<Phase>,
    preflight: Preflight,
    checkpoint: Checkpoint,
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: EventSink,
    writer: CheckpointWriter,
    gate: Arc<Gate>,
    confirmation: Confirmation,
    force: bool,
    retry_backoff: Duration,
    cancel: CancellationToken,
    lost: CancellationToken,
    tally: Mutex<Summary>,
}

impl RunCtx {
    fn stopping(&self) -> bool {
        self.cancel.is_cancelled() || self.lost.is_cancelled() || self.gate.declined()
    }

    fn tally(&self, f: impl FnOnce(&mut Summary)) {
        f(&mut self.tally.lock().expect("tally poisoned"));
    }

    fn selected_steps(&self, phase: usize) -> Vec<&PlannedStep> {
        self.preflight
            .steps
            .iter()
            .filter(|s| s.phase == phase)
            .collect()
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the run's parts, gathered once into RunCtx"
)]
async fn run_locked(
    settings: &RunSettings,
    phases: &[Phase],
    selected: &BTreeSet<String>,
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: &EventSink,
    cancel: CancellationToken,
    lock: &Lock,
    gate: Arc<Gate>,
    identity: String,
) -> Result<Summary, EngineError> {
    let namespace = settings.state_namespace.as_str();
    let checkpoint = Checkpoint::read(&*cluster, namespace, &identity).await?;
    for key in &checkpoint.unreadable {
        events.warn(format!(
            "checkpoint {} key `{key}` is unreadable; its step counts as pending",
            Checkpoint::object_name(namespace)
        ));
    }
    let preflight = Preflight::check(settings, phases, selected, &checkpoint)?;
    let writer = CheckpointWriter::spawn(
        cluster.clone(),
        namespace,
        &identity,
        checkpoint.object.clone(),
        events.redactor().clone(),
    );
    let confirmation = Confirmation {
        command: Command::Run,
        context: cluster.context().into(),
        server: cluster.server().into(),
        plan: preflight.summary,
        removes: Vec::new(),
    };
    let ctx = Arc::new(RunCtx {
        phases: phases.to_vec(),
        preflight,
        checkpoint,
        cluster,
        executor,
        events: events.clone(),
        writer,
        gate,
        confirmation,
        force: settings.selection.force,
        retry_backoff: settings.retry_backoff,
        cancel,
        lost: lock.lost().clone(),
        tally: Mutex::new(Summary::default()),
    });
    schedule(ctx.clone(), settings.jobs.max(1)).await;

    if ctx.gate.declined() {
        return Err(EngineError::Declined);
    }
    let mut summary = ctx.tally.lock().expect("tally poisoned").clone();
    if ctx.lost.is_cancelled() {
        return Err(EngineError::LockLost {
            namespace: namespace.into(),
            name: crate::engine::lock::LOCK_NAME.into(),
            holder: lock.lost_to().unwrap_or_else(|| "someone else".into()),
        });
    }
    let first_failed = ctx
        .preflight
        .steps
        .iter()
        .find(|s| summary.failed.iter().any(|f| f.step == s.full_id));
    if let Some(step) = first_failed {
        summary.resume = Some(format!(
            "re-run `bringup run` to resume at {}",
            step.full_id
        ));
    }
    if ctx.cancel.is_cancelled() {
        summary.interrupted = true;
        summary
            .resume
            .get_or_insert_with(|| "re-run `bringup run` to resume".into());
        return Err(EngineError::Interrupted(Box::new(summary)));
    }
    if !summary.failed.is_empty() {
        return Err(EngineError::StepsFailed(Box::new(summary)));
    }
    Ok(summary)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhaseStatus {
    Waiting,
    Running,
    Ok,
    /// Failed, interrupted, or not run: its dependants do not run.
    Stopped {
        failed: bool,
    },
}

/// Starts each phase once its dependencies finished OK, at most `jobs` at once.
async fn schedule(ctx: Arc<RunCtx>, jobs: usize) {
    let order: Vec<usize> = (0..ctx.phases.len())
        .filter(|&p| !ctx.selected_steps(p).is_empty())
        .collect();
    let index: HashMap<&str, usize> = order
        .iter()
        .map(|&p| (ctx.phases[p].name.as_str(), p))
        .collect();
    let mut status: HashMap<usize, PhaseStatus> =
        order.iter().map(|&p| (p, PhaseStatus::Waiting)).collect();
    let mut running = JoinSet::new();
    loop {
        for &p in &order {
            if status[&p] != PhaseStatus::Waiting {
                continue;
            }
            // Dependencies outside this run were checked by the preflight.
            let deps: Vec<usize> = ctx.phases[p]
                .depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect();
            if let Some(&blocker) = deps
                .iter()
                .find(|d| matches!(status[d], PhaseStatus::Stopped { .. }))
            {
                let name = &ctx.phases[blocker].name;
                let reason = match status[&blocker] {
                    PhaseStatus::Stopped { failed: true } => {
                        format!("depends on failed phase {name}")
                    }
                    _ => format!("depends on phase {name}, which did not finish"),
                };
                not_run(&ctx, p, reason);
                status.insert(p, PhaseStatus::Stopped { failed: false });
                continue;
            }
            if deps.iter().all(|d| status[d] == PhaseStatus::Ok)
                && running.len() < jobs
                && !ctx.stopping()
            {
                status.insert(p, PhaseStatus::Running);
                let ctx = ctx.clone();
                running.spawn(async move { (p, run_phase(&ctx, p).await) });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (p, outcome) = joined.expect("a phase task panicked");
        status.insert(
            p,
            match outcome {
                PhaseOutcome::Ok => PhaseStatus::Ok,
                PhaseOutcome::Failed { .. } => PhaseStatus::Stopped { failed: true },
                PhaseOutcome::NotRun { .. } | PhaseOutcome::Interrupted => {
                    PhaseStatus::Stopped { failed: false }
                }
            },
        );
    }
    for &p in &order {
        if status[&p] == PhaseStatus::Waiting {
            not_run(&ctx, p, "the run stopped before it".into());
        }
    }
}

fn not_run(ctx: &RunCtx, phase: usize, reason: String) {
    let name = ctx.phases[phase].name.clone();
    let steps = ctx.selected_steps(phase).len();
    ctx.events.emit(Event::PhaseFinished {
        phase: name.clone(),
        outcome: PhaseOutcome::NotRun {
            reason: reason.clone(),
        },
    });
    ctx.tally(|t| {
        t.not_run.push(NotRunPhase {
            phase: name,
            reason,
        });
        t.steps_not_run += steps;
    });
}

async fn run_phase(ctx: &RunCtx, phase: usize) -> PhaseOutcome {
    let name = ctx.phases[phase].name.clone();
    ctx.events.emit(Event::PhaseStarted {
        phase: name.clone(),
    });
    let steps = ctx.selected_steps(phase);
    let mut outcome = PhaseOutcome::Ok;
    for (i, planned) in steps.iter().enumerate() {
        let end = if ctx.stopping() {
            StepEnd::Stopped
        } else {
            run_step(ctx, planned).await
        };
        match end {
            StepEnd::Ok => continue,
            StepEnd::Failed => {
                outcome = PhaseOutcome::Failed {
                    step: planned.full_id.clone(),
                }
            }
            StepEnd::Stopped => outcome = PhaseOutcome::Interrupted,
        }
        let remaining = steps.len() - i - usize::from(matches!(end, StepEnd::Failed));
        ctx.tally(|t| t.steps_not_run += remaining);
        break;
    }
    ctx.events.emit(Event::PhaseFinished {
        phase: name,
        outcome: outcome.clone(),
    });
    outcome
}

enum StepEnd {
    Ok,
    Failed,
    /// Cancelled, lock lost, or the operator declined: not recorded as failed.
    Stopped,
}

/// Why an attempt loop gave up.
enum Halt {
    Failed(String),
    Interrupted,
}

async fn run_step(ctx: &RunCtx, planned: &PlannedStep) -> StepEnd {
    let step = ctx.preflight.step(&ctx.phases, planned);
    let phase = ctx.phases[planned.phase].name.as_str();
    let full_id = planned.full_id.as_str();
    let kind = step.kind.name();
    let fingerprint = ctx.preflight.fingerprint(full_id).to_string();
    let previous = ctx.checkpoint.record(full_id);
    let finish = |outcome: Outcome, started: Instant| {
        ctx.events.emit(Event::StepFinished {
            step: full_id.into(),
            kind: kind.into(),
            outcome,
            elapsed_ms: clock::millis(started.elapsed()),
        });
    };
    let started = Instant::now();

    if step.mode() == Mode::Once && planned.state == StepState::Done && !ctx.force {
        ctx.tally(|t| t.skipped += 1);
        finish(
            Outcome::Skipped {
                reason: "done".into(),
            },
            started,
        );
        return StepEnd::Ok;
    }
    ctx.events.emit(Event::StepStarted {
        step: full_id.into(),
        kind: kind.into(),
        description: step.description.clone(),
    });
    let events = ctx.events.clone();
    let progress_id = full_id.to_string();
    let progress = move |message: String| {
        events.emit(Event::StepProgress {
            step: progress_id.clone(),
            message,
        })
    };
    let exec = ExecContext {
        phase,
        step,
        cluster: ctx.cluster.clone(),
        redactor: ctx.events.redactor(),
        progress: &progress,
    };

    let record = |status, attempts, error: Option<String>, started_at| StepRecord {
        status,
        fingerprint: fingerprint.clone(),
        started: Some(started_at),
        finished: (status != RecordStatus::Running).then(Utc::now),
        attempts,
        error: error.map(|e| ctx.events.redactor().redact(&e)),
    };
    let started_at = Utc::now();
    let prior_attempts = previous
        .filter(|r| r.status != RecordStatus::Done)
        .map_or(0, |r| r.attempts);

    if step.mode() == Mode::Ensure {
        match attempt(ctx, &exec, Call::Probe).await {
            (Ok(Answer::Probe(Probe::Done(message))), _) => {
                // No drift. Record it only if the checkpoint does not say so already: a no-op
                // rerun writes nothing.
                if planned.state != StepState::Done {
                    if !ctx.gate.pass(&ctx.confirmation).await {
                        return StepEnd::Stopped;
                    }
                    if let Err(e) = ctx
                        .writer
                        .put(
                            full_id,
                            &record(RecordStatus::Done, prior_attempts, None, started_at),
                        )
                        .await
                    {
                        return fail(ctx, full_id, e.to_string(), &finish, started);
                    }
                }
                ctx.tally(|t| t.unchanged += 1);
                finish(Outcome::Unchanged { message }, started);
                return StepEnd::Ok;
            }
            (Ok(Answer::Probe(Probe::NeedsWork(why) | Probe::Unknown(why))), _) => progress(why),
            (Ok(Answer::Applied(_)), _) => unreachable!("a probe answers a probe"),
            (Err(Halt::Interrupted), _) => {
                finish(Outcome::Interrupted, started);
                return StepEnd::Stopped;
            }
            (Err(Halt::Failed(error)), attempts) => {
                if ctx.gate.pass(&ctx.confirmation).await {
                    let failed = record(
                        RecordStatus::Failed,
                        prior_attempts + attempts,
                        Some(error.clone()),
                        started_at,
                    );
                    let _ = ctx.writer.put(full_id, &failed).await;
                }
                return fail(ctx, full_id, error, &finish, started);
            }
        }
    }

    if !ctx.gate.pass(&ctx.confirmation).await {
        return StepEnd::Stopped;
    }
    if let Err(e) = ctx
        .writer
        .put(
            full_id,
            &record(RecordStatus::Running, prior_attempts + 1, None, started_at),
        )
        .await
    {
        return fail(ctx, full_id, e.to_string(), &finish, started);
    }
    let (result, attempts) = attempt(ctx, &exec, Call::Apply).await;
    let attempts = prior_attempts + attempts;
    match result {
        Ok(Answer::Applied(applied)) => {
            if let Err(e) = ctx
                .writer
                .put(
                    full_id,
                    &record(RecordStatus::Done, attempts, None, started_at),
                )
                .await
            {
                return fail(ctx, full_id, e.to_string(), &finish, started);
            }
            let outcome = match applied {
                Applied::Changed(message) => {
                    ctx.tally(|t| t.done += 1);
                    Outcome::Done { message }
                }
                Applied::Unchanged(message) => {
                    ctx.tally(|t| t.unchanged += 1);
                    Outcome::Unchanged { message }
                }
            };
            finish(outcome, started);
            StepEnd::Ok
        }
        Ok(Answer::Probe(_)) => unreachable!("an apply answers an apply"),
        // Left `running` in the checkpoint: the next run runs it again.
        Err(Halt::Interrupted) => {
            finish(Outcome::Interrupted, started);
            StepEnd::Stopped
        }
        Err(Halt::Failed(error)) => {
            let failed = record(
                RecordStatus::Failed,
                attempts,
                Some(error.clone()),
                started_at,
            );
            if let Err(e) = ctx.writer.put(full_id, &failed).await {
                ctx.events.warn(e.to_string());
            }
            fail(ctx, full_id, error, &finish, started)
        }
    }
}

fn fail(
    ctx: &RunCtx,
    full_id: &str,
    error: String,
    finish: &dyn Fn(Outcome, Instant),
    started: Instant,
) -> StepEnd {
    let error = ctx.events.redactor().redact(&error);
    ctx.tally(|t| {
        t.failed.push(FailedStep {
            step: full_id.into(),
            error: error.clone(),
        })
    });
    finish(Outcome::Failed { error }, started);
    StepEnd::Failed
}

#[derive(Clone, Copy)]
enum Call {
    Probe,
    Apply,
}

enum Answer {
    Probe(Probe),
    Applied(Applied),
}

/// May a Ctrl-C drop this call half-way? A probe and a `wait` only read, and a wait can take
/// minutes, so the run stops at once; anything that writes is let finish (a `vault-init` in
/// the middle of `sys/init` above all).
fn abandonable(step: &Step, call: Call) -> bool {
    matches!(call, Call::Probe) || matches!(step.kind, StepKind::Wait(_))
}

/// One call with its timeout, retried with exponential backoff while it fails transiently.
/// Returns the attempts made.
async fn attempt(ctx: &RunCtx, exec: &ExecContext<'_>, call: Call) -> (Result<Answer, Halt>, u32) {
    let step: &Step = exec.step;
    let timeout = step.timeout.map_or(DEFAULT_STEP_TIMEOUT, |t| t.0);
    let retries = step.retries.unwrap_or(DEFAULT_RETRIES);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let work = async {
            match call {
                Call::Probe => ctx.executor.probe(exec).await.map(Answer::Probe),
                Call::Apply => ctx.executor.apply(exec).await.map(Answer::Applied),
            }
        };
        let bounded = tokio::time::timeout(timeout, work);
        let outcome = if abandonable(step, call) {
            tokio::select! {
                _ = ctx.cancel.cancelled() => return (Err(Halt::Interrupted), attempts),
                outcome = bounded => outcome,
            }
        } else {
            bounded.await
        };
        let error = match outcome {
            Ok(Ok(answer)) => return (Ok(answer), attempts),
            Ok(Err(error)) => error,
            Err(_) if ctx.cancel.is_cancelled() => return (Err(Halt::Interrupted), attempts),
            Err(_) => StepError::Timeout(timeout),
        };
        let message = ctx.events.redactor().redact(&error.to_string());
        if !error.is_transient() || attempts > retries {
            let message = if attempts > 1 {
                format!("{message} (after {attempts} attempts)")
            } else {
                message
            };
            return (Err(Halt::Failed(message)), attempts);
        }
        let backoff = ctx
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(attempts - 1))
            .min(MAX_BACKOFF);
        (exec.progress)(format!(
            "{message}; retrying in {}",
            crate::report::format::duration(backoff)
        ));
        tokio::select! {
            _ = ctx.cancel.cancelled() => return (Err(Halt::Interrupted), attempts),
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}
