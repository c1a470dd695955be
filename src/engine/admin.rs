//! The commands that manage bringup's own state: `reset` (forget checkpoint records) and
//! `unlock` (break the lock).

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::checkpoint_writer::CheckpointWriter;
use crate::engine::error::EngineError;
use crate::engine::events::{Command, Event};
use crate::engine::gate::Gate;
use crate::engine::lock::{Acquired, LOCK_NAME, Lock, LockHolder};
use crate::engine::settings::{Confirmation, RunSettings};
use crate::engine::sink::EventSink;
use crate::engine::summary::PlanSummary;
use crate::phase::model::Phase;

/// Which records `reset` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetScope {
    /// Every record, including those of steps that no longer exist.
    All,
    /// The steps `settings.selection` selects (`--phase`, `--step`), and records of removed
    /// steps in the selected phases.
    Selection,
}

/// Removes checkpoint records under the lock, after the operator confirmed. Returns the
/// removed step ids. The steps run again on the next `bringup run`.
pub async fn reset(
    settings: &RunSettings,
    phases: &[Phase],
    cluster: Arc<dyn Cluster>,
    events: EventSink,
    scope: ResetScope,
) -> Result<Vec<String>, EngineError> {
    let namespace = settings.state_namespace.as_str();
    let selected = settings.selection.resolve(phases)?;
    events.emit(Event::RunStarted {
        command: Command::Reset,
        context: cluster.context().into(),
        server: cluster.server().into(),
        steps: selected.len(),
        run_id: settings.run_id.clone(),
    });
    let identity = cluster.identity().await.map_err(EngineError::cluster(
        "reading the cluster identity (namespace kube-system)",
    ))?;
    let lock = match Lock::acquire(
        cluster.clone(),
        namespace,
        &settings.holder,
        settings.lock_duration,
    )
    .await?
    {
        Acquired::Held { lock, .. } => lock,
        Acquired::NamespaceMissing => {
            events.emit(Event::Reset {
                checkpoint: Checkpoint::object_name(namespace),
                removed: Vec::new(),
            });
            return Ok(Vec::new());
        }
    };
    let result = reset_locked(settings, &selected, &cluster, &events, scope, &identity).await;
    if let Err(e) = lock.release().await {
        events.warn(format!(
            "{e}; the lock frees itself after {}s",
            settings.lock_duration.as_secs()
        ));
    }
    result
}

async fn reset_locked(
    settings: &RunSettings,
    selected: &std::collections::BTreeSet<String>,
    cluster: &Arc<dyn Cluster>,
    events: &EventSink,
    scope: ResetScope,
    identity: &str,
) -> Result<Vec<String>, EngineError> {
    let namespace = settings.state_namespace.as_str();
    let checkpoint = Checkpoint::read(&**cluster, namespace, identity).await?;
    let mut removed: Vec<String> = checkpoint
        .records
        .keys()
        .filter(|id| match scope {
            ResetScope::All => true,
            ResetScope::Selection => {
                selected.contains(*id)
                    || id.split_once('/').is_some_and(|(phase, _)| {
                        settings.selection.phases.iter().any(|p| p == phase)
                    })
            }
        })
        .cloned()
        .collect();
    let mut keys: Vec<String> = removed.iter().map(|id| Checkpoint::key(id)).collect();
    if scope == ResetScope::All {
        keys.extend(checkpoint.unreadable.iter().cloned());
        removed.extend(checkpoint.unreadable.iter().cloned());
    }
    if !removed.is_empty() {
        let gate = Gate::new(settings.confirm.clone(), events.reporter().clone());
        let confirmation = Confirmation {
            command: Command::Reset,
            context: cluster.context().into(),
            server: cluster.server().into(),
            plan: PlanSummary::default(),
            removes: removed.clone(),
        };
        if !gate.pass(&confirmation).await {
            return Err(EngineError::Declined);
        }
        let writer = CheckpointWriter::spawn(
            cluster.clone(),
            namespace,
            identity,
            checkpoint.object.clone(),
            events.redactor().clone(),
        );
        writer.remove(&keys).await?;
        writer.close().await;
    }
    events.emit(Event::Reset {
        checkpoint: Checkpoint::object_name(namespace),
        removed: removed.clone(),
    });
    Ok(removed)
}

/// Breaks the lock whoever holds it. Returns who held it (`None`: it was free).
pub async fn unlock(
    settings: &RunSettings,
    cluster: Arc<dyn Cluster>,
    events: EventSink,
) -> Result<Option<LockHolder>, EngineError> {
    events.emit(Event::RunStarted {
        command: Command::Unlock,
        context: cluster.context().into(),
        server: cluster.server().into(),
        steps: 0,
        run_id: settings.run_id.clone(),
    });
    let holder = Lock::break_lock(&*cluster, &settings.state_namespace).await?;
    events.emit(Event::Unlocked {
        lease: format!("{}/{LOCK_NAME}", settings.state_namespace),
        holder: holder.as_ref().map(|h| h.identity.clone()),
        since: holder.as_ref().and_then(|h| h.acquired),
    });
    Ok(holder)
}
