//! The one entry point: parse the command line, set up logging and the runtime, run the
//! subcommand, and turn its outcome into an exit code (0 done, 1 failed, 2 bad input,
//! 3 lock or wrong cluster, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use super::args::{Cli, Command};
use super::session::{Failure, Session};
use super::{graph, init_worker, logging};
use crate::steps::vault::init_worker::WORKER_ARG;

pub fn main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref() == Some(WORKER_ARG.as_ref()) {
        return init_worker::main();
    }
    if let Ok(program) = std::env::current_exe() {
        crate::steps::vault::init_worker::enable(program);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let session = Session::new(&cli.global);
    logging::init(cli.global.verbose, session.redactor.clone());

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(dispatch(cli, session));
    // Port-forwards and watches may still hold tasks; the outcome is decided.
    runtime.shutdown_background();
    ExitCode::from(code)
}

async fn dispatch(cli: Cli, session: Session) -> u8 {
    let cancel = CancellationToken::new();
    spawn_interrupt_handler(cancel.clone());
    let outcome = match cli.command {
        Command::Validate => session.validate(),
        Command::Graph(args) => graph::print(&session, args.format),
        Command::Plan(args) => session.plan(&args).await,
        Command::Run(args) => session.run(&args, cancel).await,
        Command::Status => session.status().await,
        Command::Verify(args) => session.verify(&args).await,
        Command::Reset(args) => session.reset(&args).await,
        Command::Unlock => session.unlock().await,
    };
    match outcome {
        Ok(()) => 0,
        Err(Failure { code, message }) => {
            if let Some(message) = message {
                eprintln!("{}", session.redactor.redact(&message));
            }
            code
        }
    }
}

/// The first Ctrl-C asks the run to stop after its running steps and release the lock; a
/// second one exits at once (the next run resumes either way). SIGTERM (a Job's pod being
/// stopped, `kill`) is a first Ctrl-C only: a step in the middle of `vault-init` must get to
/// store the keys OpenBao has just answered with, and nobody is there to press it twice.
fn spawn_interrupt_handler(cancel: CancellationToken) {
    let on_term = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupt: finishing the running steps and releasing the lock (Ctrl-C again to quit now)"
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::spawn(async move {
            if term.recv().await.is_some() {
                eprintln!("terminated: finishing the running steps and releasing the lock");
                on_term.cancel();
            }
        });
    }
}
