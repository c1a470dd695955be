//! The plain reporter: one timestamped line per event (RFC 3339, UTC), for pipes and logs.
//! Tables are printed as they are, without timestamps.

use crate::engine::clock;
use crate::engine::events::{Event, TimedEvent};
use crate::report::format;
use crate::report::reporter::{Reporter, SharedWriter};
use crate::report::table;

pub struct PlainReporter {
    out: SharedWriter,
}

impl PlainReporter {
    pub fn new(out: SharedWriter) -> Self {
        PlainReporter { out }
    }

    /// The text for one event (empty for events that print nothing).
    pub fn render(event: &TimedEvent) -> String {
        let ts = clock::rfc3339(event.timestamp);
        let lines: Vec<String> = match &event.event {
            Event::RunStarted {
                command,
                context,
                server,
                steps,
                run_id,
            } => {
                vec![format!(
                    "bringup {command} on context {context} ({server}): {steps} steps, run {run_id}"
                )]
            }
            Event::PhaseStarted { phase } => vec![format!("phase {phase} started")],
            Event::PhaseFinished { phase, outcome } => vec![format::phase(phase, outcome)],
            Event::StepStarted {
                step,
                kind,
                description,
            } => vec![match description {
                Some(d) => format!("{step} started ({kind}: {d})"),
                None => format!("{step} started ({kind})"),
            }],
            Event::StepProgress { step, message } => vec![format!("{step}: {message}")],
            Event::StepFinished {
                step,
                outcome,
                elapsed_ms,
                ..
            } => {
                vec![format!("{step} {}", format::outcome(outcome, *elapsed_ms))]
            }
            Event::Plan { rows, summary } => return table::plan(rows, summary, &table::no_style),
            Event::Verify { rows, drift } => return table::verify(rows, *drift, &table::no_style),
            Event::Status { checkpoint, rows } => {
                return table::status(checkpoint, rows, &table::no_style);
            }
            Event::Reset {
                checkpoint,
                removed,
            } if removed.is_empty() => {
                vec![format!("nothing to reset in {checkpoint}")]
            }
            Event::Reset {
                checkpoint,
                removed,
            } => {
                vec![format!(
                    "removed {} records from {checkpoint}: {}",
                    removed.len(),
                    removed.join(", ")
                )]
            }
            Event::Unlocked {
                lease,
                holder: Some(holder),
                since,
            } => vec![format!(
                "freed lease {lease}, held by `{holder}`{}",
                since
                    .map(|s| format!(" since {}", clock::rfc3339(s)))
                    .unwrap_or_default()
            )],
            Event::Unlocked {
                lease,
                holder: None,
                ..
            } => vec![format!("lease {lease} was not held")],
            Event::Warning { message } => vec![format!("warning: {message}")],
            Event::RunFinished {
                summary,
                elapsed_ms,
                ..
            } => format::summary(summary, *elapsed_ms),
        };
        lines
            .into_iter()
            .map(|line| format!("{ts} {line}\n"))
            .collect()
    }
}

impl Reporter for PlainReporter {
    fn report(&self, event: &TimedEvent) {
        self.out.write_text(&Self::render(event));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::engine::RunSettings;
    use crate::engine::redact::Redactor;
    use crate::engine::sink::EventSink;
    use crate::engine::testing::{FakeExecutor, ensure_step, once_step, phase};
    use crate::report::reporter::testing::Buffer;

    fn filters() -> Vec<(&'static str, &'static str)> {
        vec![
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
            (r"\b\d+(\.\d)?(ms|s)\b", "[DURATION]"),
            (r"run [0-9a-f]{8}", "run [RUN]"),
        ]
    }

    /// A run where one phase fails and its dependant does not run, as a pipe shows it.
    #[tokio::test(flavor = "multi_thread")]
    async fn plain_lines_of_a_failing_run() {
        let fake = FakeCluster::new();
        let phases = vec![
            phase(
                "shared",
                &[],
                vec![ensure_step("secrets"), once_step("seed")],
            ),
            phase("gitea", &["shared"], vec![once_step("token")]),
            phase("woodpecker", &["gitea"], vec![once_step("oauth")]),
        ];
        let executor = FakeExecutor::new();
        executor.fail(
            "gitea/token",
            "POST /api/v1/users/admin/tokens answered 500",
        );
        let buffer = Buffer::default();
        let reporter = Arc::new(PlainReporter::new(SharedWriter::new(buffer.clone())));
        let events = EventSink::new(reporter, Redactor::new());
        let settings = RunSettings {
            jobs: 1,
            ..RunSettings::default()
        };
        let err = crate::engine::run(
            &settings,
            &phases,
            Arc::new(fake),
            executor,
            events,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        insta::with_settings!({filters => filters()}, {
            insta::assert_snapshot!(buffer.text());
        });
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn plan_table_with_every_state() {
        let fake = FakeCluster::new();
        let phases = vec![
            phase(
                "shared",
                &[],
                vec![ensure_step("secrets"), once_step("seed")],
            ),
            phase(
                "gitea",
                &["shared"],
                vec![
                    once_step("token"),
                    once_step("oauth-source"),
                    once_step("admin"),
                ],
            ),
        ];
        let executor = FakeExecutor::new();
        let quiet = EventSink::new(
            crate::engine::testing::MemoryReporter::new(),
            Redactor::new(),
        );
        let settings = RunSettings::default();
        executor.fail(
            "gitea/oauth-source",
            "exec in pod gitea/gitea-0: exit code 1",
        );
        let _ = crate::engine::run(
            &settings,
            &phases,
            Arc::new(fake.clone()),
            executor.clone(),
            quiet,
            CancellationToken::new(),
        )
        .await;

        // gitea/token changed since; gitea/admin left running by a killed run.
        let mut changed = phases.clone();
        if let crate::phase::model::StepKind::Exec(exec) = &mut changed[1].steps[0].kind {
            exec.command.push("--scopes=all".into());
        }
        let mut cm = fake
            .object(
                &crate::cluster::TypeRef::config_map(),
                Some("bringup"),
                "bringup-state",
            )
            .unwrap();
        let running = json!({"status": "running", "fingerprint": "x", "started": "2024-01-01T00:00:00Z", "finished": null, "attempts": 1, "error": null});
        cm["data"]["gitea.admin"] = json!(running.to_string());
        fake.insert(cm);

        let buffer = Buffer::default();
        let events = EventSink::new(
            Arc::new(PlainReporter::new(SharedWriter::new(buffer.clone()))),
            Redactor::new(),
        );
        let report = crate::engine::plan(
            &settings,
            &changed,
            Arc::new(fake.read_only_view()),
            executor,
            events,
        )
        .await
        .unwrap();
        assert_eq!(
            report.summary.to_string(),
            "Plan: 2 to run, 1 done, 1 changed, 1 to check."
        );
        insta::with_settings!({filters => filters()}, {
            insta::assert_snapshot!(buffer.text());
        });
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn status_table_after_a_failed_run() {
        let fake = FakeCluster::new();
        let phases = vec![
            phase(
                "shared",
                &[],
                vec![ensure_step("secrets"), once_step("seed")],
            ),
            phase(
                "gitea",
                &["shared"],
                vec![once_step("token"), once_step("oauth")],
            ),
        ];
        let executor = FakeExecutor::new();
        executor.fail(
            "gitea/token",
            "POST /api/v1/users/admin/tokens answered 422: token name taken",
        );
        let quiet = EventSink::new(
            crate::engine::testing::MemoryReporter::new(),
            Redactor::new(),
        );
        let settings = RunSettings::default();
        let _ = crate::engine::run(
            &settings,
            &phases,
            Arc::new(fake.clone()),
            executor,
            quiet,
            CancellationToken::new(),
        )
        .await;
        let buffer = Buffer::default();
        let events = EventSink::new(
            Arc::new(PlainReporter::new(SharedWriter::new(buffer.clone()))),
            Redactor::new(),
        );
        crate::engine::status(&settings, &phases, Arc::new(fake.read_only_view()), events)
            .await
            .unwrap();
        insta::with_settings!({filters => filters()}, {
            insta::assert_snapshot!(buffer.text());
        });
    }
}
