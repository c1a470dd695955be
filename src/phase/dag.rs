//! The phase DAG: phases in run order (dependencies first, file order breaks ties), with
//! the transitive dependencies and dependents of each.

use std::collections::{BTreeSet, HashMap};

use super::model::{Phase, Step};

/// A phase set that cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("phase `{0}` is defined twice")]
    Duplicate(String),
    #[error("phase `{phase}` depends on `{missing}`, which no phase file defines")]
    Missing { phase: String, missing: String },
    /// The phases of one cycle, the first repeated at the end: `a -> b -> a`.
    #[error("phases depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Every phase, in topological order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseSet {
    /// Dependencies before dependents; among phases free to run, file order.
    pub phases: Vec<Phase>,
}

impl PhaseSet {
    /// Orders phases given in file order. Fails on duplicate names, missing dependencies
    /// and cycles (validation reports those with positions first; this is the backstop).
    pub fn new(phases: Vec<Phase>) -> Result<PhaseSet, DagError> {
        let index: HashMap<&str, usize> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        if index.len() != phases.len() {
            let mut seen = BTreeSet::new();
            let duplicate = phases
                .iter()
                .find(|p| !seen.insert(p.name.as_str()))
                .expect("a name repeats");
            return Err(DagError::Duplicate(duplicate.name.clone()));
        }
        for phase in &phases {
            if let Some(missing) = phase
                .depends_on
                .iter()
                .find(|d| !index.contains_key(d.as_str()))
            {
                return Err(DagError::Missing {
                    phase: phase.name.clone(),
                    missing: missing.clone(),
                });
            }
        }
        if let Some(cycle) = find_cycle(&phases) {
            return Err(DagError::Cycle(cycle));
        }
        // Kahn's algorithm, always taking the ready phase that comes first in file order.
        let mut waiting: Vec<usize> = phases.iter().map(|p| dedup(&p.depends_on).len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); phases.len()];
        for (i, phase) in phases.iter().enumerate() {
            for dependency in dedup(&phase.depends_on) {
                dependents[index[dependency]].push(i);
            }
        }
        let mut ready: BTreeSet<usize> = (0..phases.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(phases.len());
        while let Some(next) = ready.pop_first() {
            order.push(next);
            for &dependent in &dependents[next] {
                waiting[dependent] -= 1;
                if waiting[dependent] == 0 {
                    ready.insert(dependent);
                }
            }
        }
        let mut slots: Vec<Option<Phase>> = phases.into_iter().map(Some).collect();
        Ok(PhaseSet {
            phases: order
                .into_iter()
                .map(|i| slots[i].take().expect("each phase placed once"))
                .collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Everything `name` needs, directly or not, in run order.
    pub fn dependencies(&self, name: &str) -> Vec<&Phase> {
        let mut needed = BTreeSet::new();
        let mut stack = vec![name];
        while let Some(current) = stack.pop() {
            for dependency in self
                .get(current)
                .map(|p| p.depends_on.as_slice())
                .unwrap_or_default()
            {
                if needed.insert(dependency.as_str()) {
                    stack.push(dependency);
                }
            }
        }
        self.phases
            .iter()
            .filter(|p| needed.contains(p.name.as_str()))
            .collect()
    }

    /// Everything that needs `name`, directly or not, in run order.
    pub fn dependents(&self, name: &str) -> Vec<&Phase> {
        self.phases
            .iter()
            .filter(|p| self.dependencies(&p.name).iter().any(|d| d.name == name))
            .collect()
    }

    /// A step by its full id `phase/step`.
    pub fn step(&self, full_id: &str) -> Option<(&Phase, &Step)> {
        let (phase, step) = full_id.split_once('/')?;
        let phase = self.get(phase)?;
        Some((phase, phase.steps.iter().find(|s| s.id == step)?))
    }

    /// Every step with its phase, in run order.
    pub fn steps(&self) -> impl Iterator<Item = (&Phase, &Step)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }
}

fn dedup(names: &[String]) -> BTreeSet<&str> {
    names.iter().map(String::as_str).collect()
}

/// The first cycle found, walking phases in file order: `[a, b, a]`.
pub fn find_cycle(phases: &[Phase]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        at: usize,
        phases: &[Phase],
        index: &HashMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        marks[at] = Mark::OnPath;
        path.push(at);
        for dependency in &phases[at].depends_on {
            let Some(&next) = index.get(dependency.as_str()) else {
                continue;
            };
            match marks[next] {
                Mark::OnPath => {
                    let start = path.iter().position(|&p| p == next).expect("on the path");
                    let mut cycle: Vec<String> = path[start..]
                        .iter()
                        .map(|&i| phases[i].name.clone())
                        .collect();
                    cycle.push(phases[next].name.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, phases, index, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[at] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; phases.len()];
    for start in 0..phases.len() {
        if marks[start] == Mark::New
            && let Some(cycle) = visit(start, phases, &index, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, depends_on: &[&str]) -> Phase {
        Phase {
            name: name.into(),
            description: None,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            steps: Vec::new(),
            file: format!("{name}.yaml").into(),
        }
    }

    fn names(phases: &[&Phase]) -> Vec<String> {
        phases.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn dependencies_first_and_file_order_breaks_ties() {
        let set = PhaseSet::new(vec![
            phase("gitea", &["shared", "kanidm"]),
            phase("zeta", &[]),
            phase("kanidm", &["shared"]),
            phase("shared", &[]),
            phase("alpha", &[]),
        ])
        .unwrap();
        let order: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["zeta", "shared", "kanidm", "gitea", "alpha"]);
        assert_eq!(names(&set.dependencies("gitea")), ["shared", "kanidm"]);
        assert_eq!(names(&set.dependents("shared")), ["kanidm", "gitea"]);
        assert!(set.dependencies("zeta").is_empty());
    }

    #[test]
    fn cycles_are_named_in_order() {
        let phases = vec![
            phase("a", &["b"]),
            phase("b", &["c"]),
            phase("c", &["a"]),
            phase("d", &[]),
        ];
        assert_eq!(
            find_cycle(&phases),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(
            PhaseSet::new(phases).unwrap_err().to_string(),
            "phases depend on each other in a cycle: a -> b -> c -> a"
        );
        assert_eq!(
            find_cycle(&[phase("self", &["self"])]),
            Some(vec!["self".into(), "self".into()])
        );
    }

    #[test]
    fn missing_and_duplicate_phases_are_refused() {
        assert_eq!(
            PhaseSet::new(vec![phase("a", &["nope"])]).unwrap_err(),
            DagError::Missing {
                phase: "a".into(),
                missing: "nope".into()
            }
        );
        assert_eq!(
            PhaseSet::new(vec![phase("a", &[]), phase("a", &[])]).unwrap_err(),
            DagError::Duplicate("a".into())
        );
    }
}
