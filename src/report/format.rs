//! Text shared by the human reporters: durations, outcome words, summary lines.

use std::time::Duration;

use crate::engine::events::{Outcome, PhaseOutcome};
use crate::engine::summary::Summary;

/// `350ms`, `1.2s`, `2m03s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

pub fn millis(ms: u64) -> String {
    duration(Duration::from_millis(ms))
}

/// What a finished step line says after the step id: `done  1.2s: created token`.
pub fn outcome(outcome: &Outcome, elapsed_ms: u64) -> String {
    let took = millis(elapsed_ms);
    let with = |word: &str, message: &str| {
        if message.is_empty() {
            format!("{word}  {took}")
        } else {
            format!("{word}  {took}  {message}")
        }
    };
    match outcome {
        Outcome::Done { message } => with("done", message),
        Outcome::Unchanged { message } => with("unchanged", message),
        Outcome::Skipped { reason } => format!("skipped ({reason})"),
        Outcome::Failed { error } => format!("failed after {took}: {error}"),
        Outcome::Interrupted => format!("interrupted after {took}"),
    }
}

/// `✓`, `↷`, `✗`, `!`.
pub fn symbol(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Done { .. } | Outcome::Unchanged { .. } => "✓",
        Outcome::Skipped { .. } => "↷",
        Outcome::Failed { .. } => "✗",
        Outcome::Interrupted => "!",
    }
}

/// A phase's end, when it is worth a line of its own.
pub fn phase(name: &str, outcome: &PhaseOutcome) -> String {
    match outcome {
        PhaseOutcome::Ok => format!("phase {name} done"),
        PhaseOutcome::Failed { step } => format!("phase {name} failed at {step}"),
        PhaseOutcome::NotRun { reason } => format!("phase {name} not run: {reason}"),
        PhaseOutcome::Interrupted => format!("phase {name} interrupted"),
    }
}

/// `finished in 3.2s: 4 done, 1 unchanged, 2 skipped, 1 failed, 2 not run`, then one line
/// per failure and the way to resume.
pub fn summary(summary: &Summary, elapsed_ms: u64) -> Vec<String> {
    let head = if summary.interrupted {
        "interrupted after"
    } else {
        "finished in"
    };
    let mut counts = vec![
        format!("{} done", summary.done),
        format!("{} unchanged", summary.unchanged),
        format!("{} skipped", summary.skipped),
    ];
    if !summary.failed.is_empty() {
        counts.push(format!("{} failed", summary.failed.len()));
    }
    if summary.steps_not_run > 0 {
        counts.push(format!("{} not run", summary.steps_not_run));
    }
    let mut lines = vec![format!(
        "{head} {}: {}",
        millis(elapsed_ms),
        counts.join(", ")
    )];
    lines.extend(
        summary
            .failed
            .iter()
            .map(|f| format!("failed: {}: {}", f.step, f.error)),
    );
    lines.extend(
        summary
            .not_run
            .iter()
            .map(|p| format!("not run: phase {}: {}", p.phase, p.reason)),
    );
    lines.extend(summary.resume.clone());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(350)), "350ms");
        assert_eq!(duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(duration(Duration::from_secs(123)), "2m03s");
    }
}
