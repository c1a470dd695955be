//! The live view for a terminal: a spinner line per running step with its message and
//! elapsed time; finished steps collapse to `✓ phase/step  done  1.2s` lines above them.
//! Lines go to stderr through indicatif; tables (plan, status, verify) to stdout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::events::{Event, Outcome, PhaseOutcome, StepState, TimedEvent};
use crate::report::format;
use crate::report::reporter::{Reporter, SharedWriter};
use crate::report::table;

pub struct TtyReporter {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    stdout: SharedWriter,
    colors: Colors,
}

struct Colors {
    ok: Style,
    skip: Style,
    fail: Style,
    warn: Style,
    dim: Style,
    bold: Style,
}

impl Colors {
    fn new(color: bool) -> Self {
        let s = |style: Style| style.force_styling(color);
        Colors {
            ok: s(Style::new().green()),
            skip: s(Style::new().dim()),
            fail: s(Style::new().red().bold()),
            warn: s(Style::new().yellow()),
            dim: s(Style::new().dim()),
            bold: s(Style::new().bold()),
        }
    }
}

impl TtyReporter {
    /// `color`: false for `--no-color` or `NO_COLOR`.
    pub fn new(color: bool) -> Self {
        Self::with_target(color, ProgressDrawTarget::stderr(), SharedWriter::stdout())
    }

    pub fn with_target(color: bool, target: ProgressDrawTarget, stdout: SharedWriter) -> Self {
        TtyReporter {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::default(),
            stdout,
            colors: Colors::new(color),
        }
    }

    fn line(&self, text: String) {
        let _ = self.multi.println(text);
    }

    fn table(&self, text: String) {
        self.multi.suspend(|| self.stdout.write_text(&text));
    }

    /// `✓ gitea/token  done  1.2s  created`, colored by outcome.
    fn finished_line(&self, step: &str, outcome: &Outcome, elapsed_ms: u64) -> String {
        let style = match outcome {
            Outcome::Done { .. } | Outcome::Unchanged { .. } => &self.colors.ok,
            Outcome::Skipped { .. } => &self.colors.skip,
            Outcome::Failed { .. } => &self.colors.fail,
            Outcome::Interrupted => &self.colors.warn,
        };
        let text = format!("{step}  {}", format::outcome(outcome, elapsed_ms));
        let text = if matches!(outcome, Outcome::Skipped { .. }) {
            self.colors.dim.apply_to(text).to_string()
        } else {
            text
        };
        format!("{} {text}", style.apply_to(format::symbol(outcome)))
    }

    fn state_style(&self, column: usize, raw: &str, padded: String) -> String {
        // Column 3 of plan (STATE) and 1 of status (STATE) carry the state words.
        let state = match raw.split(' ').next().unwrap_or_default() {
            "done" => Some(StepState::Done),
            "pending" => Some(StepState::Pending),
            "changed" => Some(StepState::Changed),
            "failed" => Some(StepState::Failed),
            "interrupted" => Some(StepState::Interrupted),
            _ => None,
        };
        match (column, state) {
            (1 | 3, Some(StepState::Done)) => self.colors.ok.apply_to(padded).to_string(),
            (1 | 3, Some(StepState::Changed | StepState::Interrupted)) => {
                self.colors.warn.apply_to(padded).to_string()
            }
            (1 | 3, Some(StepState::Failed)) => self.colors.fail.apply_to(padded).to_string(),
            (0, _) => self.colors.bold.apply_to(padded).to_string(),
            _ => padded,
        }
    }
}

impl Reporter for TtyReporter {
    fn report(&self, event: &TimedEvent) {
        match &event.event {
            Event::RunStarted {
                command,
                context,
                server,
                steps,
                ..
            } => self.line(
                self.colors
                    .dim
                    .apply_to(format!(
                        "bringup {command} · context {context} ({server}) · {steps} steps"
                    ))
                    .to_string(),
            ),
            Event::PhaseStarted { .. } => {}
            Event::PhaseFinished { phase, outcome } => {
                if let PhaseOutcome::NotRun { .. } = outcome {
                    self.line(format!(
                        "{} {}",
                        self.colors.warn.apply_to("·"),
                        format::phase(phase, outcome)
                    ));
                }
            }
            Event::StepStarted {
                step,
                kind,
                description,
            } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}",
                )
                .expect("a valid template")
                .tick_strings(&["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "✓"]);
                bar.set_style(style);
                bar.set_prefix(step.clone());
                bar.set_message(description.clone().unwrap_or_else(|| kind.clone()));
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bars
                    .lock()
                    .expect("bars poisoned")
                    .insert(step.clone(), bar);
            }
            Event::StepProgress { step, message } => {
                if let Some(bar) = self.bars.lock().expect("bars poisoned").get(step) {
                    bar.set_message(message.clone());
                }
            }
            Event::StepFinished {
                step,
                outcome,
                elapsed_ms,
                ..
            } => {
                if let Some(bar) = self.bars.lock().expect("bars poisoned").remove(step) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.line(self.finished_line(step, outcome, *elapsed_ms));
            }
            Event::Plan { rows, summary } => self.table(table::plan(rows, summary, &|c, r, p| {
                self.state_style(c, r, p)
            })),
            Event::Verify { rows, drift } => self.table(table::verify(rows, *drift, &|c, r, p| {
                self.state_style(c, r, p)
            })),
            Event::Status { checkpoint, rows } => {
                self.table(table::status(checkpoint, rows, &|c, r, p| {
                    self.state_style(c, r, p)
                }))
            }
            Event::Reset { .. } | Event::Unlocked { .. } => self.line(
                crate::report::PlainReporter::render(event)
                    .split_once(' ')
                    .map_or_else(String::new, |(_, l)| l.trim_end().into()),
            ),
            Event::Warning { message } => self.line(format!(
                "{} {message}",
                self.colors.warn.apply_to("warning:")
            )),
            Event::RunFinished {
                summary,
                elapsed_ms,
                ..
            } => {
                let lines = format::summary(summary, *elapsed_ms);
                let style = if summary.succeeded() {
                    &self.colors.ok
                } else {
                    &self.colors.fail
                };
                self.line(String::new());
                for (i, line) in lines.into_iter().enumerate() {
                    self.line(if i == 0 {
                        style.apply_to(line).to_string()
                    } else {
                        line
                    });
                }
            }
        }
    }

    fn suspend(&self, f: &mut dyn FnMut()) {
        self.multi.suspend(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_steps_collapse_to_symbol_lines() {
        let r = TtyReporter::with_target(
            false,
            ProgressDrawTarget::hidden(),
            SharedWriter::new(std::io::sink()),
        );
        assert_eq!(
            r.finished_line(
                "gitea/token",
                &Outcome::Done {
                    message: String::new()
                },
                1234
            ),
            "✓ gitea/token  done  1.2s"
        );
        assert_eq!(
            r.finished_line(
                "a/x",
                &Outcome::Skipped {
                    reason: "done".into()
                },
                0
            ),
            "↷ a/x  skipped (done)"
        );
        assert_eq!(
            r.finished_line(
                "a/x",
                &Outcome::Failed {
                    error: "boom".into()
                },
                20
            ),
            "✗ a/x  failed after 20ms: boom"
        );
    }

    #[test]
    fn color_is_off_when_asked() {
        let plain = TtyReporter::with_target(
            false,
            ProgressDrawTarget::hidden(),
            SharedWriter::new(std::io::sink()),
        );
        let colored = TtyReporter::with_target(
            true,
            ProgressDrawTarget::hidden(),
            SharedWriter::new(std::io::sink()),
        );
        let outcome = Outcome::Failed {
            error: "boom".into(),
        };
        assert!(!plain.finished_line("a/x", &outcome, 1).contains('\u{1b}'));
        assert!(colored.finished_line("a/x", &outcome, 1).contains('\u{1b}'));
    }
}
