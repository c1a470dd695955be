//! The process side of `vault-init`'s worker (`bringup __vault-init-worker`): read the job
//! from stdin, hold out against the signals that stop a run, do the work, and answer in JSON
//! lines on stdout. The work itself is `steps::vault::init_worker::serve`.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use super::logging;
use crate::engine::Redactor;
use crate::steps::vault::init_worker::{Job, Report, serve};

pub fn main() -> ExitCode {
    let mut text = String::new();
    let job: Job = match std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(e) => {
            // Not a run's job (someone typed the hidden argument): nothing was done.
            let _ = writeln!(
                std::io::stderr(),
                "error: `bringup {}` is started by `bringup run` only: {e}",
                crate::steps::vault::init_worker::WORKER_ARG
            );
            return ExitCode::from(2);
        }
    };
    let redactor = Redactor::new();
    logging::init(job.verbosity, redactor.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            answer(&Report::Failed {
                message: format!(
                    "the init worker cannot start its runtime: {e}; nothing was initialised"
                ),
                transient: false,
            });
            return ExitCode::from(1);
        }
    };
    let failed = runtime.block_on(async {
        // Registering a handler replaces the default action (exit): the run that started this
        // worker may be stopped, and its terminal closed, while OpenBao answers sys/init.
        let _held: Vec<_> = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ]
        .into_iter()
        .filter_map(|kind| signal(kind).ok())
        .collect();
        let failed = std::sync::atomic::AtomicBool::new(false);
        serve(job, &redactor, &|report| {
            if matches!(report, Report::Failed { .. }) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            answer(&report);
        })
        .await;
        failed.into_inner()
    });
    runtime.shutdown_background();
    ExitCode::from(u8::from(failed))
}

/// One report line; a run that is gone (a closed pipe) is no reason to stop.
fn answer(report: &Report) {
    let mut line = serde_json::to_string(report).expect("a report serialises");
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    let _ = std::io::stdout().lock().flush();
}
