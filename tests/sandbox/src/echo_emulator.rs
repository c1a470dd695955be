//! The trivial shipped emulator `echo`: proves the emulator registration point end to end.
//!
//! `echo ARGS...` writes its arguments (space separated, newline ended) and then its stdin to
//! stdout. `echo exit N [MESSAGE...]` writes MESSAGE to stderr and exits with N, so tests can
//! drive non-zero exit codes through an emulator.

use futures::future::BoxFuture;

use crate::emulator::{Completed, Emulator, Invocation};

#[derive(Debug, Clone, Copy, Default)]
pub struct EchoEmulator;

impl Emulator for EchoEmulator {
    fn run(&self, invocation: Invocation) -> BoxFuture<'static, Completed> {
        Box::pin(async move { echo(invocation) })
    }
}

fn echo(invocation: Invocation) -> Completed {
    let args = invocation.argv.get(1..).unwrap_or_default();
    if let [first, code, message @ ..] = args
        && first == "exit"
    {
        return match code.parse::<i32>() {
            Ok(exit_code) => {
                let mut stderr = message.join(" ").into_bytes();
                if !stderr.is_empty() {
                    stderr.push(b'\n');
                }
                Completed::failure(exit_code, stderr)
            }
            Err(_) => Completed::failure(2, format!("echo: exit code {code:?} is not a number\n")),
        };
    }
    let mut stdout = args.join(" ").into_bytes();
    stdout.push(b'\n');
    stdout.extend_from_slice(&invocation.stdin);
    Completed::success(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn echoes_args_then_stdin() {
        let done = echo(Invocation {
            argv: argv(&["echo", "a", "b"]),
            stdin: b"in".to_vec(),
            ..Invocation::default()
        });
        assert_eq!(done, Completed::success("a b\nin"));
    }

    #[test]
    fn exit_sets_the_code_and_writes_the_message_to_stderr() {
        let done = echo(Invocation {
            argv: argv(&["echo", "exit", "3", "bad", "thing"]),
            ..Invocation::default()
        });
        assert_eq!(done, Completed::failure(3, "bad thing\n"));
        let done = echo(Invocation {
            argv: argv(&["echo", "exit", "x"]),
            ..Invocation::default()
        });
        assert_eq!(done.exit_code, 2);
    }
}
