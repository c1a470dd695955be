//! The phase DAG as Mermaid and Graphviz DOT text.
//!
//! Edges point from a dependency to its dependent, the way the run flows: `shared-secrets
//! --> gitea` reads "shared-secrets runs before gitea" (gitea `depends_on` shared-secrets).
//! Nodes are labelled with the phase name and its step count; DOT adds the description as
//! a tooltip.

use std::fmt::Write;

use super::dag::PhaseSet;
use super::model::Phase;

/// A Mermaid flowchart, left to right.
pub fn mermaid(set: &PhaseSet) -> String {
    let mut out = String::from("flowchart LR\n");
    for phase in &set.phases {
        writeln!(
            out,
            "    {}[\"{}<br/>{}\"]",
            mermaid_id(&phase.name),
            mermaid_text(&phase.name),
            steps(phase)
        )
        .unwrap();
    }
    for (dependency, dependent) in edges(set) {
        writeln!(
            out,
            "    {} --> {}",
            mermaid_id(dependency),
            mermaid_id(dependent)
        )
        .unwrap();
    }
    out
}

/// A Graphviz digraph, left to right.
pub fn dot(set: &PhaseSet) -> String {
    let mut out = String::from("digraph phases {\n    rankdir=LR;\n    node [shape=box];\n");
    for phase in &set.phases {
        write!(
            out,
            "    \"{}\" [label=\"{}\\n{}\"",
            dot_text(&phase.name),
            dot_text(&phase.name),
            steps(phase)
        )
        .unwrap();
        if let Some(description) = &phase.description {
            write!(out, ", tooltip=\"{}\"", dot_text(description)).unwrap();
        }
        out.push_str("];\n");
    }
    for (dependency, dependent) in edges(set) {
        writeln!(
            out,
            "    \"{}\" -> \"{}\";",
            dot_text(dependency),
            dot_text(dependent)
        )
        .unwrap();
    }
    out.push_str("}\n");
    out
}

/// `(dependency, dependent)` pairs, in run order of the dependent, then `depends_on` order.
fn edges(set: &PhaseSet) -> Vec<(&str, &str)> {
    let mut edges = Vec::new();
    for phase in &set.phases {
        for dependency in &phase.depends_on {
            let edge = (dependency.as_str(), phase.name.as_str());
            if !edges.contains(&edge) {
                edges.push(edge);
            }
        }
    }
    edges
}

fn steps(phase: &Phase) -> String {
    match phase.steps.len() {
        1 => "1 step".into(),
        n => format!("{n} steps"),
    }
}

/// Mermaid ids cannot hold `-` safely (`a-->b` parses as an edge); phase names are
/// `[a-z0-9-]`, so replacing `-` by `_` keeps them distinct.
fn mermaid_id(name: &str) -> String {
    format!("p_{}", name.replace('-', "_"))
}

fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::model::{Step, StepKind, WaitFor, WaitStep};

    fn phase(name: &str, depends_on: &[&str], steps: usize) -> Phase {
        let step = |i: usize| Step {
            id: format!("s{i}"),
            description: None,
            mode: None,
            timeout: None,
            retries: None,
            kind: StepKind::Wait(WaitStep {
                until: WaitFor::Pods {
                    namespace: "ns".into(),
                    selector: "app=x".into(),
                    count: None,
                },
                interval: None,
            }),
        };
        Phase {
            name: name.into(),
            description: Some(format!("the \"{name}\" phase")),
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            steps: (0..steps).map(step).collect(),
            file: format!("{name}.yaml").into(),
        }
    }

    fn set() -> PhaseSet {
        PhaseSet::new(vec![
            phase("shared-secrets", &[], 2),
            phase("gitea", &["shared-secrets", "kanidm"], 1),
            phase("kanidm", &["shared-secrets"], 3),
        ])
        .unwrap()
    }

    #[test]
    fn mermaid_points_from_dependency_to_dependent() {
        assert_eq!(
            mermaid(&set()),
            "flowchart LR\n    p_shared_secrets[\"shared-secrets<br/>2 steps\"]\n    p_kanidm[\"kanidm<br/>3 steps\"]\n    p_gitea[\"gitea<br/>1 step\"]\n    p_shared_secrets --> p_kanidm\n    p_shared_secrets --> p_gitea\n    p_kanidm --> p_gitea\n"
        );
    }

    #[test]
    fn dot_escapes_descriptions() {
        let dot = dot(&set());
        assert!(
            dot.starts_with("digraph phases {\n    rankdir=LR;\n"),
            "{dot}"
        );
        assert!(
            dot.contains(
                "\"gitea\" [label=\"gitea\\n1 step\", tooltip=\"the \\\"gitea\\\" phase\"];"
            ),
            "{dot}"
        );
        assert!(dot.contains("    \"kanidm\" -> \"gitea\";\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
    }
}
