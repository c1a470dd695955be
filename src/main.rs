//! The `bringup` binary: parse, run, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    bringup::cli::main()
}
