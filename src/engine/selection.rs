//! Which steps a command works on: `--phase`, `--from`, `--step`, `--force`, and the
//! dependency check that keeps `--phase` from running on top of undone work.

use std::collections::BTreeSet;

use crate::engine::checkpoint::Checkpoint;
use crate::engine::error::EngineError;
use crate::engine::events::StepState;
use crate::phase::model::Phase;

/// What the operator asked for. Empty means every step of every phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--phase`: only these phases.
    pub phases: Vec<String>,
    /// `--from`: a phase or `phase/step`; everything from there on in run order.
    pub from: Option<String>,
    /// `--step`: exactly these `phase/step` ids.
    pub steps: Vec<String>,
    /// `--force`: run once-steps even though the checkpoint says done.
    pub force: bool,
    /// `--ignore-dependencies`: run selected phases whose dependencies are not done.
    pub ignore_dependencies: bool,
}

impl Selection {
    /// The selected steps' full ids. Fails on names that do not exist (exit 2).
    pub fn resolve(&self, phases: &[Phase]) -> Result<BTreeSet<String>, EngineError> {
        let known_phase = |name: &str| phases.iter().any(|p| p.name == name);
        let known_step = |id: &str| {
            id.split_once('/').is_some_and(|(p, s)| {
                phases
                    .iter()
                    .any(|ph| ph.name == p && ph.steps.iter().any(|st| st.id == s))
            })
        };
        let step_ids: Vec<String> = phases
            .iter()
            .flat_map(|ph| {
                ph.steps
                    .iter()
                    .map(move |st| format!("{}/{}", ph.name, st.id))
            })
            .collect();
        let did_you_mean = |word: &str, candidates: &mut dyn Iterator<Item = &str>| {
            crate::phase::suggest::closest(word, candidates)
                .map(|best| format!("; did you mean `{best}`?"))
                .unwrap_or_default()
        };
        let mut problems = Vec::new();
        for name in &self.phases {
            if !known_phase(name) {
                let hint = did_you_mean(name, &mut phases.iter().map(|p| p.name.as_str()));
                problems.push(format!(
                    "--phase `{name}`: no such phase{hint} (phases: {})",
                    names(phases)
                ));
            }
        }
        for id in &self.steps {
            if !known_step(id) {
                let hint = did_you_mean(id, &mut step_ids.iter().map(String::as_str));
                problems.push(format!(
                    "--step `{id}`: no such step{hint}; write it as phase/step, as `bringup plan` lists them"
                ));
            }
        }
        if let Some(from) = &self.from {
            let ok = if from.contains('/') {
                known_step(from)
            } else {
                known_phase(from)
            };
            if !ok {
                let mut candidates = phases
                    .iter()
                    .map(|p| p.name.as_str())
                    .chain(step_ids.iter().map(String::as_str));
                let hint = did_you_mean(from, &mut candidates);
                problems.push(format!(
                    "--from `{from}`: no such phase or phase/step{hint}"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::BadSelection(problems.join("; ")));
        }

        let mut started = self.from.is_none();
        let mut selected = BTreeSet::new();
        for phase in phases {
            for step in &phase.steps {
                let full_id = format!("{}/{}", phase.name, step.id);
                if let Some(from) = &self.from
                    && (*from == phase.name || *from == full_id)
                {
                    started = true;
                }
                let in_phases = self.phases.is_empty() || self.phases.contains(&phase.name);
                let in_steps = self.steps.is_empty() || self.steps.contains(&full_id);
                if started && in_phases && in_steps {
                    selected.insert(full_id);
                }
            }
        }
        Ok(selected)
    }

    /// A selected phase may not run while a phase it depends on — and that this run will not
    /// run — is not done in the checkpoint, unless `--ignore-dependencies`.
    pub fn check_dependencies(
        &self,
        phases: &[Phase],
        selected: &BTreeSet<String>,
        checkpoint: &Checkpoint,
        fingerprint: &dyn Fn(&str) -> String,
    ) -> Result<(), EngineError> {
        if self.ignore_dependencies {
            return Ok(());
        }
        let has_selected = |phase: &Phase| {
            phase
                .steps
                .iter()
                .any(|s| selected.contains(&format!("{}/{}", phase.name, s.id)))
        };
        for phase in phases.iter().filter(|p| has_selected(p)) {
            let mut missing = Vec::new();
            let mut detail = Vec::new();
            for dependency in &phase.depends_on {
                let Some(dep) = phases.iter().find(|p| &p.name == dependency) else {
                    continue;
                };
                if has_selected(dep) {
                    continue;
                }
                let undone: Vec<String> = dep
                    .steps
                    .iter()
                    .map(|s| format!("{}/{}", dep.name, s.id))
                    .filter_map(|id| match checkpoint.state(&id, &fingerprint(&id)) {
                        StepState::Done => None,
                        state => Some(format!("{id} {state}")),
                    })
                    .collect();
                if !undone.is_empty() {
                    missing.push(dependency.clone());
                    detail.extend(undone);
                }
            }
            if !missing.is_empty() {
                return Err(EngineError::DependenciesNotDone {
                    phase: phase.name.clone(),
                    dependencies: missing,
                    detail,
                });
            }
        }
        Ok(())
    }
}

fn names(phases: &[Phase]) -> String {
    phases
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{once_step, phase};

    fn phases() -> Vec<Phase> {
        vec![
            phase("a", &[], vec![once_step("x"), once_step("y")]),
            phase("b", &["a"], vec![once_step("x")]),
            phase("c", &[], vec![once_step("x"), once_step("y")]),
        ]
    }

    fn ids(set: BTreeSet<String>) -> Vec<String> {
        set.into_iter().collect()
    }

    #[test]
    fn empty_selection_takes_everything() {
        assert_eq!(
            ids(Selection::default().resolve(&phases()).unwrap()),
            ["a/x", "a/y", "b/x", "c/x", "c/y"]
        );
    }

    #[test]
    fn phase_from_and_step_select_what_they_say() {
        let sel = |s: Selection| ids(s.resolve(&phases()).unwrap());
        assert_eq!(
            sel(Selection {
                phases: vec!["b".into()],
                ..Default::default()
            }),
            ["b/x"]
        );
        assert_eq!(
            sel(Selection {
                from: Some("a/y".into()),
                ..Default::default()
            }),
            ["a/y", "b/x", "c/x", "c/y"]
        );
        assert_eq!(
            sel(Selection {
                from: Some("b".into()),
                ..Default::default()
            }),
            ["b/x", "c/x", "c/y"]
        );
        assert_eq!(
            sel(Selection {
                steps: vec!["c/y".into(), "a/x".into()],
                ..Default::default()
            }),
            ["a/x", "c/y"]
        );
    }

    #[test]
    fn unknown_names_are_bad_input_all_at_once() {
        let err = Selection {
            phases: vec!["nope".into()],
            steps: vec!["a/zz".into()],
            from: Some("q".into()),
            ..Default::default()
        }
        .resolve(&phases())
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("--phase `nope`: no such phase (phases: a, b, c)"),
            "{text}"
        );
        assert!(text.contains("--step `a/zz`"), "{text}");
        assert!(text.contains("--from `q`"), "{text}");
    }

    #[test]
    fn a_phase_whose_dependency_is_not_done_is_refused_naming_the_flag() {
        let phases = phases();
        let selection = Selection {
            phases: vec!["b".into()],
            ..Default::default()
        };
        let selected = selection.resolve(&phases).unwrap();
        let err = selection
            .check_dependencies(&phases, &selected, &Checkpoint::empty("bringup"), &|_| {
                "f".into()
            })
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "phase `b` depends on `a`, not done in the checkpoint (a/x pending, a/y pending); run them first, or pass --ignore-dependencies to run `b` anyway"
        );
        let ignoring = Selection {
            ignore_dependencies: true,
            ..selection
        };
        ignoring
            .check_dependencies(&phases, &selected, &Checkpoint::empty("bringup"), &|_| {
                "f".into()
            })
            .unwrap();
    }
}
