//! The engine: the runner, events, checkpoint, lock and redaction.
//!
//! # The API the CLI calls
//!
//! The CLI fills a [`RunSettings`] (plain data: selection, jobs, state namespace, lock
//! duration, the confirmation [`Decider`] or `None` for `--yes`, `probe`, run id and holder,
//! values, whether prompts may ask) and an [`EventSink`] (a [`Reporter`](crate::report::Reporter)
//! from `crate::report` plus the shared [`Redactor`]), then calls one of:
//!
//! ```text
//! run(&settings, &phases, cluster, executor, events, cancel)  -> Result<Summary, EngineError>
//! plan(&settings, &phases, cluster, executor, events)         -> Result<PlanReport, EngineError>
//! verify(&settings, &phases, cluster, executor, events)       -> Result<Vec<PlanRow>, EngineError>
//! status(&settings, &phases, cluster, events)                 -> Result<Vec<StatusRow>, EngineError>
//! reset(&settings, &phases, cluster, events, ResetScope)      -> Result<Vec<String>, EngineError>
//! unlock(&settings, cluster, events)                          -> Result<Option<LockHolder>, EngineError>
//! ```
//!
//! - `phases: &[Phase]` in dependency order, file order breaking ties (what the loader's
//!   `PhaseSet` holds); dependencies are read from each phase's `depends_on`.
//! - `cluster: Arc<dyn Cluster>`; plan, verify and status wrap it read-only themselves.
//! - `executor: Arc<dyn Executor>`: [`StepsExecutor::new(templater, prompter)`](StepsExecutor),
//!   whose templater reads through the same cluster.
//! - `cancel`: a `CancellationToken` the CLI cancels on Ctrl-C; the run finishes the running
//!   steps that write, drops the ones that only read (waits, probes), releases the lock and
//!   returns [`EngineError::Interrupted`].
//! - Every error maps to the process exit code with [`EngineError::exit_code`]: 1 a step
//!   failed (or drift), 2 bad input, 3 lock held / wrong cluster / newer checkpoint schema,
//!   130 interrupted or declined.
//! - The engine never prints and never prompts: output is events; the one question ("go
//!   ahead?") goes to the `Decider`, once, before the first change, with the reporter's live
//!   view suspended.

mod admin;
pub mod checkpoint;
pub mod checkpoint_writer;
pub mod clock;
mod error;
pub mod events;
mod executor;
pub mod fingerprint;
mod gate;
mod inspect;
pub mod lock;
mod preflight;
pub mod read_only;
pub mod redact;
mod runner;
pub mod selection;
mod settings;
pub mod sink;
pub mod summary;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use admin::{ResetScope, reset, unlock};
pub use error::{EngineError, MissingValue};
pub use events::{Event, Outcome, PlanRow, StatusRow, TimedEvent};
pub use executor::{ExecContext, Executor, StepsExecutor};
pub use inspect::{PlanReport, plan, status, verify};
pub use lock::LockHolder;
pub use preflight::value_of;
pub use redact::Redactor;
pub use runner::{DEFAULT_RETRIES, DEFAULT_STEP_TIMEOUT, run};
pub use selection::Selection;
pub use settings::{Confirmation, Decider, RunSettings, new_run_id};
pub use sink::EventSink;
pub use summary::{PlanSummary, Summary};
