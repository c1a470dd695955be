//! Fault injection: per rule, a seeded RNG decides for each matching request whether it
//! fails, so the same seed and request sequence inject the same faults.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster_file::{FaultError, FaultRuleDecl, FaultsDecl};

/// What a request is, for matching against rules.
#[derive(Debug, Clone, Copy)]
pub struct FaultTarget<'a> {
    pub verb: &'a str,
    /// The plural resource, or `resource/subresource`.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The outcome for one request: wait, then maybe fail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultDecision {
    pub latency: Option<Duration>,
    pub error: Option<FaultError>,
    /// Some rule matched and drew: an exec rule needs no `error` to make the exec fail.
    pub matched: bool,
}

struct Rule {
    decl: FaultRuleDecl,
    rng: Mutex<StdRng>,
}

/// The fault rules of a cluster file with their RNGs.
#[derive(Default)]
pub struct Faults {
    rules: Vec<Rule>,
}

impl Faults {
    pub fn new(decl: Option<&FaultsDecl>) -> Self {
        let Some(decl) = decl else {
            return Self::default();
        };
        let rules = decl
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule {
                decl: r.clone(),
                // One stream per rule: traffic that matches only one rule does not shift the
                // other rules' draws.
                rng: Mutex::new(StdRng::seed_from_u64(decl.seed.wrapping_add(i as u64))),
            })
            .collect();
        Self { rules }
    }

    fn matches(rule: &FaultRuleDecl, t: &FaultTarget<'_>) -> bool {
        (rule.verbs.is_empty() || rule.verbs.iter().any(|v| v == t.verb))
            && rule.resource.as_deref().is_none_or(|r| r == t.resource)
            && rule
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == t.namespace)
            && rule.name.as_deref().is_none_or(|n| Some(n) == t.name)
    }

    fn draw(rule: &Rule) -> bool {
        if rule.decl.rate >= 1.0 {
            return true;
        }
        let mut rng = rule.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.random::<f64>() < rule.decl.rate
    }

    fn decide_with(&self, t: &FaultTarget<'_>, exec: bool) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for rule in self.rules.iter().filter(|r| r.decl.exec == exec) {
            if !Self::matches(&rule.decl, t) || !Self::draw(rule) {
                continue;
            }
            decision.matched = true;
            if let Some(l) = rule.decl.latency {
                decision.latency = Some(decision.latency.unwrap_or_default() + l);
            }
            if decision.error.is_none() {
                decision.error = rule.decl.error;
            }
        }
        decision
    }

    /// The fault for an API request (rules without `exec: true`).
    pub fn decide(&self, t: &FaultTarget<'_>) -> FaultDecision {
        self.decide_with(t, false)
    }

    /// The fault for an exec command (rules with `exec: true`), for the exec implementation.
    pub fn decide_exec(&self, t: &FaultTarget<'_>) -> FaultDecision {
        self.decide_with(t, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(seed: u64) -> Faults {
        let decl: FaultsDecl = serde_yaml::from_str(&format!(
            "seed: {seed}\nrules:\n  - {{ verbs: [patch], resource: configmaps, namespace: b, error: \"500\", rate: 0.5 }}\n  - {{ verbs: [get], resource: secrets, latency: 5ms }}"
        ))
        .expect("faults");
        Faults::new(Some(&decl))
    }

    fn sequence(f: &Faults) -> Vec<bool> {
        let t = FaultTarget {
            verb: "patch",
            resource: "configmaps",
            namespace: Some("b"),
            name: Some("x"),
        };
        (0..64).map(|_| f.decide(&t).error.is_some()).collect()
    }

    #[test]
    fn same_seed_same_faults() {
        let a = sequence(&faults(7));
        assert_eq!(a, sequence(&faults(7)));
        assert_ne!(a, sequence(&faults(8)));
        let hits = a.iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "rate 0.5 gave {hits} of 64");
    }

    #[test]
    fn only_matching_requests_fail() {
        let f = faults(1);
        let other = FaultTarget {
            verb: "get",
            resource: "configmaps",
            namespace: Some("b"),
            name: None,
        };
        assert_eq!(f.decide(&other), FaultDecision::default());
        let slow = FaultTarget {
            verb: "get",
            resource: "secrets",
            namespace: None,
            name: None,
        };
        assert_eq!(f.decide(&slow).latency, Some(Duration::from_millis(5)));
    }
}
