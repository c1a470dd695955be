//! The read-only commands: `plan` (what a run would do), `verify` (what every probe finds)
//! and `status` (what the checkpoint recorded). None takes the lock; each goes through a
//! read-only view of the cluster, so a mutating call is a loud bug, never a change.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cluster::{Cluster, ClusterError};
use crate::engine::checkpoint::Checkpoint;
use crate::engine::error::EngineError;
use crate::engine::events::{Command, Event, Finding, PlanRow, StatusRow, StepState};
use crate::engine::executor::{ExecContext, Executor};
use crate::engine::preflight::{Preflight, add, bucket};
use crate::engine::read_only::ReadOnlyCluster;
use crate::engine::settings::RunSettings;
use crate::engine::sink::EventSink;
use crate::engine::summary::PlanSummary;
use crate::phase::model::{Mode, Phase};
use crate::steps::{Probe, StepError};

/// What `plan` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanReport {
    pub rows: Vec<PlanRow>,
    pub summary: PlanSummary,
}

/// The selected steps with their states, and with `settings.probe` what each probe finds.
/// Zero mutating calls, no lock.
pub async fn plan(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: EventSink,
) -> Result<PlanReport, EngineError> {
    let cluster = ReadOnlyCluster::wrap(cluster);
    let (selected, checkpoint) = start(settings, phases, &*cluster, &events, Command::Plan).await?;
    let preflight = Preflight::assess(settings, phases, &selected, &checkpoint);
    // What a run would refuse, said now rather than at run time.
    if let Err(e) = preflight.check_dependencies(settings, phases, &selected, &checkpoint) {
        events.warn(format!("`bringup run` would refuse: {e}"));
    }
    let missing = preflight.missing_values(settings, phases);
    if !missing.is_empty() {
        events.warn(format!(
            "`bringup run` without a terminal would refuse: {}",
            EngineError::MissingValues { missing }
        ));
    }

    let mut rows = Vec::new();
    let mut summary = PlanSummary::default();
    for planned in &preflight.steps {
        let step = preflight.step(phases, planned);
        let record = checkpoint.record(&planned.full_id);
        let mut detail = Vec::new();
        match planned.state {
            StepState::Changed => detail.push("definition changed since it ran".to_string()),
            StepState::Failed => detail.push(format!(
                "failed: {}",
                record.and_then(|r| r.error.clone()).unwrap_or_default()
            )),
            StepState::Interrupted => detail.push("left running by an earlier run".into()),
            StepState::Done if step.mode() == Mode::Once && settings.selection.force => {
                detail.push("--force: runs again".into())
            }
            StepState::Done if step.mode() == Mode::Ensure => {
                detail.push("probed on every run".into())
            }
            StepState::Done | StepState::Pending => {}
        }
        let probe = if settings.probe {
            let (finding, message) = probe_once(
                &*executor,
                &cluster,
                &events,
                phases,
                planned.phase,
                planned.step,
            )
            .await?;
            detail.push(format!("probe: {finding} ({message})"));
            Some(finding)
        } else {
            None
        };
        add(
            &mut summary,
            bucket(step.mode(), planned.state, settings.selection.force, probe),
        );
        rows.push(PlanRow {
            step: planned.full_id.clone(),
            kind: step.kind.name().into(),
            mode: step.mode(),
            state: planned.state,
            probe,
            detail: detail.join("; "),
        });
    }
    events.emit(Event::Plan {
        rows: rows.clone(),
        summary,
    });
    Ok(PlanReport { rows, summary })
}

/// Runs every selected step's probe and reports drift: `Err(Drift)` (exit 1) when a probe
/// finds work to do or fails. Zero mutating calls, no lock.
pub async fn verify(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: Arc<dyn Cluster>,
    executor: Arc<dyn Executor>,
    events: EventSink,
) -> Result<Vec<PlanRow>, EngineError> {
    let cluster = ReadOnlyCluster::wrap(cluster);
    let (selected, checkpoint) =
        start(settings, phases, &*cluster, &events, Command::Verify).await?;
    let preflight = Preflight::assess(settings, phases, &selected, &checkpoint);
    let mut rows = Vec::new();
    for planned in &preflight.steps {
        let step = preflight.step(phases, planned);
        let (finding, message) = probe_once(
            &*executor,
            &cluster,
            &events,
            phases,
            planned.phase,
            planned.step,
        )
        .await?;
        rows.push(PlanRow {
            step: planned.full_id.clone(),
            kind: step.kind.name().into(),
            mode: step.mode(),
            state: planned.state,
            probe: Some(finding),
            detail: message,
        });
    }
    let drift = rows
        .iter()
        .filter(|r| matches!(r.probe, Some(Finding::NeedsWork | Finding::Error)))
        .count();
    events.emit(Event::Verify {
        rows: rows.clone(),
        drift,
    });
    if drift > 0 {
        return Err(EngineError::Drift {
            count: drift,
            total: rows.len(),
        });
    }
    Ok(rows)
}

/// The checkpoint's record of each selected step (and, without a selection, of records
/// whose steps no longer exist).
pub async fn status(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: Arc<dyn Cluster>,
    events: EventSink,
) -> Result<Vec<StatusRow>, EngineError> {
    let cluster = ReadOnlyCluster::wrap(cluster);
    let (selected, checkpoint) =
        start(settings, phases, &*cluster, &events, Command::Status).await?;
    let preflight = Preflight::assess(settings, phases, &selected, &checkpoint);
    let mut rows: Vec<StatusRow> = preflight
        .steps
        .iter()
        .map(|planned| {
            let record = checkpoint.record(&planned.full_id);
            StatusRow {
                step: planned.full_id.clone(),
                state: planned.state,
                defined: true,
                started: record.and_then(|r| r.started),
                finished: record.and_then(|r| r.finished),
                attempts: record.map_or(0, |r| r.attempts),
                error: record.and_then(|r| r.error.clone()),
            }
        })
        .collect();
    if settings.selection == Default::default() {
        for (id, record) in checkpoint
            .records
            .iter()
            .filter(|(id, _)| !preflight.fingerprints.contains_key(*id))
        {
            rows.push(StatusRow {
                step: id.clone(),
                state: record.state(&record.fingerprint),
                defined: false,
                started: record.started,
                finished: record.finished,
                attempts: record.attempts,
                error: record.error.clone(),
            });
        }
    }
    events.emit(Event::Status {
        checkpoint: Checkpoint::object_name(&settings.state_namespace),
        rows: rows.clone(),
    });
    Ok(rows)
}

async fn start(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: &dyn Cluster,
    events: &EventSink,
    command: Command,
) -> Result<(BTreeSet<String>, Checkpoint), EngineError> {
    let selected = settings.selection.resolve(phases)?;
    events.emit(Event::RunStarted {
        command,
        context: cluster.context().into(),
        server: cluster.server().into(),
        steps: selected.len(),
        run_id: settings.run_id.clone(),
    });
    let identity = cluster.identity().await.map_err(EngineError::cluster(
        "reading the cluster identity (namespace kube-system)",
    ))?;
    let checkpoint = Checkpoint::read(cluster, &settings.state_namespace, &identity).await?;
    for key in &checkpoint.unreadable {
        events.warn(format!(
            "checkpoint {} key `{key}` is unreadable; its step counts as pending",
            Checkpoint::object_name(&settings.state_namespace)
        ));
    }
    Ok((selected, checkpoint))
}

async fn probe_once(
    executor: &dyn Executor,
    cluster: &Arc<dyn Cluster>,
    events: &EventSink,
    phases: &[Phase],
    phase: usize,
    step: usize,
) -> Result<(Finding, String), EngineError> {
    let phase = &phases[phase];
    let step = &phase.steps[step];
    let full_id = format!("{}/{}", phase.name, step.id);
    let progress_events = events.clone();
    let progress = move |message: String| {
        progress_events.emit(Event::StepProgress {
            step: full_id.clone(),
            message,
        })
    };
    let ctx = ExecContext {
        phase: &phase.name,
        step,
        cluster: cluster.clone(),
        redactor: events.redactor(),
        progress: &progress,
    };
    Ok(match executor.probe(&ctx).await {
        Ok(Probe::Done(m)) => (Finding::Done, m),
        Ok(Probe::NeedsWork(m)) => (Finding::NeedsWork, m),
        Ok(Probe::Unknown(m)) => (Finding::Unknown, m),
        // A probe that tries to change something is a bug: stop loudly, never as a row.
        Err(StepError::Cluster(ClusterError::DryRunViolation { operation })) => {
            return Err(EngineError::DryRunViolation {
                step: ctx.full_id(),
                operation,
            });
        }
        Err(e) => (Finding::Error, events.redactor().redact(&e.to_string())),
    })
}
