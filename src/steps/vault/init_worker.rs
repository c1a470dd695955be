//! `vault-init`'s worker: the irreversible part of init (reserve custody, `PUT sys/init`, store
//! the keys) runs in a detached copy of `bringup`, so that a `bringup` killed while OpenBao is
//! answering does not take the only copy of the keys with it. OpenBao finishes an init whose
//! client hung up; the worker is a client that does not hang up when the run dies.
//!
//! The run hands the worker a [`Job`] (plain data: how to reach the cluster and the server,
//! the step) on its stdin and reads [`Report`]s, one JSON line each, from its stdout. The
//! worker sits in its own process group, so a Ctrl-C at the terminal reaches only the run, and
//! it ignores SIGINT, SIGTERM and SIGHUP while it works; its log reaches the run's stderr
//! through a pipe, never the terminal directly. What it cannot survive is its own
//! SIGKILL or the machine dying: see docs/vault.md, "The init window".

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::custody::{Claim, Custody};
use super::endpoint::{Endpoint, Route};
use crate::cluster::{Cluster, ConnectOptions, KubeCluster};
use crate::engine::redact::Redactor;
use crate::phase::model::VaultInitStep;
use crate::steps::{Applied, StepContext, StepError};

/// The first argument that makes `bringup` a worker instead of parsing a command line.
pub const WORKER_ARG: &str = "__vault-init-worker";

/// The program that serves [`WORKER_ARG`]; set by the `bringup` binary. Unset (library use,
/// unit tests), init runs in the calling process.
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Declares that `program WORKER_ARG` runs [`serve`]: the binary calls this once at start.
pub fn enable(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

/// What the worker is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    /// `phase/step`, for messages.
    pub step: String,
    pub cluster: ConnectOptions,
    pub route: Route,
    pub spec: VaultInitStep,
    /// The run's `-v` count, so the worker logs what the run would have.
    pub verbosity: u8,
}

/// One line of the worker's answer. Texts are redacted by the worker before they are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    Progress(String),
    Changed(String),
    Failed { message: String, transient: bool },
}

/// Runs init in a worker and waits for its answer. `None` when no worker can be used (no
/// program declared, a cluster another process cannot reach): the caller inits in-process.
pub async fn run(
    ctx: &StepContext<'_>,
    endpoint: &Endpoint,
    custody: &Custody,
    spec: &VaultInitStep,
) -> Option<Result<Applied, StepError>> {
    let program = PROGRAM.get()?;
    let cluster = ctx.cluster.reconnect()?;
    let job = Job {
        step: ctx.full_id(),
        cluster,
        route: endpoint.route.clone(),
        spec: spec.clone(),
        verbosity: current_verbosity(),
    };
    let mut command = tokio::process::Command::new(program);
    command
        .arg(WORKER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its log comes through this run: a process outside the terminal's foreground group
        // that writes to it is stopped (SIGTTOU) where the terminal has `tostop` set.
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C at the terminal goes to the run's group only.
        .process_group(0)
        // Outlive this run whatever happens to it: that is the point.
        .kill_on_drop(false);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            (ctx.progress)(format!(
                "cannot start the init worker ({e}); initialising from this process"
            ));
            return None;
        }
    };
    let pid = child.id().unwrap_or_default();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // The worker waits for its job. Before it can send anything, the custody Secret names it as
    // the claimant, so a run started after this one is killed waits for it rather than racing
    // it to `sys/init`. Killed before the job is written, the worker reads nothing and exits.
    if let Err(e) = custody
        .reserve(&Claim::by(pid, super::init::CLAIM_FOR))
        .await
    {
        drop(stdin);
        let _ = child.wait().await;
        return Some(Err(e));
    }
    let text = serde_json::to_vec(&job).expect("a job serialises");
    // A worker that cannot read its job answers nothing: that is reported below.
    let _ = stdin.write_all(&text).await;
    let _ = stdin.shutdown().await;
    drop(stdin);

    let log = child.stderr.take().expect("stderr is piped");
    let redactor = ctx.redactor.clone();
    let relay = tokio::spawn(async move {
        use std::io::Write as _;
        let mut lines = BufReader::new(log).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(std::io::stderr().lock(), "{}", redactor.redact(&line));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let mut outcome = None;
    while let Ok(Some(line)) = lines.next_line().await {
        match serde_json::from_str::<Report>(&line) {
            Ok(Report::Progress(message)) => (ctx.progress)(message),
            Ok(Report::Changed(message)) => outcome = Some(Ok(Applied::Changed(message))),
            Ok(Report::Failed { message, transient }) => {
                outcome = Some(Err(if transient {
                    StepError::Transient(message)
                } else {
                    StepError::Failed(message)
                }))
            }
            Err(_) => tracing::warn!(pid, "the init worker wrote a line that is not a report"),
        }
    }
    let status = child.wait().await;
    let _ = relay.await;
    Some(outcome.unwrap_or_else(|| {
        Err(StepError::Failed(format!(
            "step {}: the init worker (pid {pid}) ended without an answer ({}); re-run `bringup run`: \
             it finds OpenBao uninitialised and initialises it, or finds the keys in custody",
            job.step,
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        )))
    }))
}

/// The worker's work, in the worker process: connect on its own, open the route, and keep the
/// keys. Every report goes to `report`, redacted.
pub async fn serve(job: Job, redactor: &Redactor, report: &(dyn Fn(Report) + Send + Sync)) {
    let progress = |message: String| report(Report::Progress(redactor.redact(&message)));
    let work = async {
        let cluster: Arc<dyn Cluster> = Arc::new(KubeCluster::connect(job.cluster.clone()).await?);
        let endpoint = Endpoint::open(cluster.clone(), &job.route, &job.step, redactor).await?;
        let custody = Custody::new(&job.spec.custody, cluster, redactor.clone())?;
        super::init::keep(
            &job.step, &endpoint, &custody, &job.spec, redactor, &progress,
        )
        .await
    };
    // Never outlive the claim a later run honours: past it, that run decides on its own.
    let outcome = tokio::time::timeout(super::init::CLAIM_FOR, work)
        .await
        .unwrap_or(Err(StepError::Timeout(super::init::CLAIM_FOR)));
    report(match outcome {
        Ok(applied) => Report::Changed(redactor.redact(match &applied {
            Applied::Changed(m) | Applied::Unchanged(m) => m,
        })),
        Err(e) => Report::Failed {
            message: redactor.redact(&e.to_string()),
            transient: e.is_transient(),
        },
    });
}

/// The `-v` count that gives the log level in force (see `cli::logging`).
fn current_verbosity() -> u8 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::TRACE => 3,
        LevelFilter::DEBUG => 2,
        LevelFilter::INFO => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_travel_as_one_json_line_each() {
        for report in [
            Report::Progress("initialising".into()),
            Report::Changed("done".into()),
            Report::Failed {
                message: "no".into(),
                transient: true,
            },
        ] {
            let line = serde_json::to_string(&report).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Report>(&line).unwrap(), report);
        }
    }
}
