//! Before anything runs: each selected step's state from the checkpoint alone, what a run
//! would do with it, and the checks that must pass before the first change (dependencies of
//! a partial selection, answers for prompt steps).

use std::collections::{BTreeSet, HashMap};

use crate::engine::checkpoint::Checkpoint;
use crate::engine::error::{EngineError, MissingValue};
use crate::engine::events::{Finding, StepState};
use crate::engine::fingerprint::fingerprint;
use crate::engine::settings::RunSettings;
use crate::engine::summary::PlanSummary;
use crate::phase::model::{Mode, Phase, Step, StepKind};

/// A selected step, located and assessed.
#[derive(Debug, Clone)]
pub(crate) struct PlannedStep {
    pub phase: usize,
    pub step: usize,
    pub full_id: String,
    pub state: StepState,
}

/// Where a step lands in the plan summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// Nothing to do: a done once-step, or (with `--probe`) a done ensure-step whose probe
    /// found it in place.
    Done,
    /// Runs: never run, failed, interrupted, or forced.
    ToRun,
    /// Runs because its definition changed.
    Changed,
    /// Probed, applied only on drift.
    ToCheck,
}

pub(crate) fn bucket(mode: Mode, state: StepState, force: bool, probe: Option<Finding>) -> Bucket {
    match (mode, state) {
        (_, StepState::Changed) => Bucket::Changed,
        (Mode::Once, StepState::Done) if force => Bucket::ToRun,
        (Mode::Once, StepState::Done) => Bucket::Done,
        (Mode::Ensure, StepState::Done) if probe == Some(Finding::NeedsWork) => Bucket::ToRun,
        // Probed just now and found in place: nothing to check, as far as a plan can tell.
        (Mode::Ensure, StepState::Done) if probe == Some(Finding::Done) => Bucket::Done,
        (Mode::Ensure, StepState::Done) => Bucket::ToCheck,
        _ => Bucket::ToRun,
    }
}

pub(crate) fn add(summary: &mut PlanSummary, bucket: Bucket) {
    match bucket {
        Bucket::Done => summary.done += 1,
        Bucket::ToRun => summary.to_run += 1,
        Bucket::Changed => summary.changed += 1,
        Bucket::ToCheck => summary.to_check += 1,
    }
}

/// Everything known before the first cluster change.
#[derive(Debug, Clone)]
pub(crate) struct Preflight {
    /// Selected steps in run order.
    pub steps: Vec<PlannedStep>,
    /// Fingerprints of every step (selected or not) by full id.
    pub fingerprints: HashMap<String, String>,
    pub summary: PlanSummary,
}

impl Preflight {
    /// Assesses the selection against the checkpoint; no checks.
    pub(crate) fn assess(
        settings: &RunSettings,
        phases: &[Phase],
        selected: &BTreeSet<String>,
        checkpoint: &Checkpoint,
    ) -> Self {
        let mut fingerprints = HashMap::new();
        let mut steps = Vec::new();
        let mut summary = PlanSummary::default();
        for (p, phase) in phases.iter().enumerate() {
            for (s, step) in phase.steps.iter().enumerate() {
                let full_id = format!("{}/{}", phase.name, step.id);
                let print = fingerprint(step, &settings.values);
                if selected.contains(&full_id) {
                    let state = checkpoint.state(&full_id, &print);
                    add(
                        &mut summary,
                        bucket(step.mode(), state, settings.selection.force, None),
                    );
                    steps.push(PlannedStep {
                        phase: p,
                        step: s,
                        full_id: full_id.clone(),
                        state,
                    });
                }
                fingerprints.insert(full_id, print);
            }
        }
        Preflight {
            steps,
            fingerprints,
            summary,
        }
    }

    /// Assesses, then refuses what must not start: a phase on top of undone dependencies,
    /// a prompt step that would run with no answer and nobody to ask.
    pub(crate) fn check(
        settings: &RunSettings,
        phases: &[Phase],
        selected: &BTreeSet<String>,
        checkpoint: &Checkpoint,
    ) -> Result<Self, EngineError> {
        let preflight = Self::assess(settings, phases, selected, checkpoint);
        preflight.check_dependencies(settings, phases, selected, checkpoint)?;
        let missing = preflight.missing_values(settings, phases);
        if !missing.is_empty() {
            return Err(EngineError::MissingValues { missing });
        }
        Ok(preflight)
    }

    pub(crate) fn check_dependencies(
        &self,
        settings: &RunSettings,
        phases: &[Phase],
        selected: &BTreeSet<String>,
        checkpoint: &Checkpoint,
    ) -> Result<(), EngineError> {
        let lookup = |id: &str| self.fingerprints.get(id).cloned().unwrap_or_default();
        settings
            .selection
            .check_dependencies(phases, selected, checkpoint, &lookup)
    }

    /// Prompt steps that will run without an answer in the values, on a run that cannot ask.
    pub(crate) fn missing_values(
        &self,
        settings: &RunSettings,
        phases: &[Phase],
    ) -> Vec<MissingValue> {
        if settings.interactive {
            return Vec::new();
        }
        self.steps
            .iter()
            .filter_map(|planned| {
                let step = self.step(phases, planned);
                let StepKind::Prompt(prompt) = &step.kind else {
                    return None;
                };
                if bucket(step.mode(), planned.state, settings.selection.force, None)
                    == Bucket::Done
                {
                    return None;
                }
                if value_of(&settings.values, &prompt.value).is_some() {
                    return None;
                }
                Some(MissingValue {
                    step: planned.full_id.clone(),
                    key: prompt.value.clone(),
                })
            })
            .collect()
    }

    pub(crate) fn step<'p>(&self, phases: &'p [Phase], planned: &PlannedStep) -> &'p Step {
        &phases[planned.phase].steps[planned.step]
    }

    pub(crate) fn fingerprint(&self, full_id: &str) -> &str {
        self.fingerprints
            .get(full_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// A values key, as written in `--set a.b=...`: the dotted path, or the literal key.
pub fn value_of<'v>(values: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
    values
        .get(key)
        .or_else(|| key.split('.').try_fold(values, |v, part| v.get(part)))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{phase, prompt_step};

    #[test]
    fn a_prompt_without_answer_on_a_non_interactive_run_names_the_set_key() {
        let phases = vec![phase(
            "gitea",
            &[],
            vec![prompt_step("admin", "gitea.admin_password")],
        )];
        let selected = BTreeSet::from(["gitea/admin".to_string()]);
        let settings = RunSettings::default();
        let err = Preflight::check(&settings, &phases, &selected, &Checkpoint::empty("bringup"))
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "a prompt step would run without an answer and no terminal to ask: step gitea/admin needs --set gitea.admin_password=..."
        );

        let answered = RunSettings {
            values: json!({"gitea": {"admin_password": "x"}}),
            ..RunSettings::default()
        };
        Preflight::check(&answered, &phases, &selected, &Checkpoint::empty("bringup")).unwrap();
        let interactive = RunSettings {
            interactive: true,
            ..RunSettings::default()
        };
        Preflight::check(
            &interactive,
            &phases,
            &selected,
            &Checkpoint::empty("bringup"),
        )
        .unwrap();
    }
}
