//! The live view as a person sees it: the run under a pseudo-terminal (`script`), its output
//! fed through a terminal emulator, and the final screen snapshot-tested.

mod common;

use common::{Env, normalize};

/// The final screen of `bringup ARGS` run on a 100x30 pseudo-terminal.
fn screen(env: &Env, args: &str) -> String {
    let bringup = assert_cmd::cargo::cargo_bin("bringup");
    let command = format!("stty cols 100 rows 30; {} {args}", bringup.display());
    let raw = std::process::Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command, "/dev/null"])
        .env("KUBECONFIG", env.sandbox.kubeconfig_path())
        .env("BRINGUP_PHASES", &env.phases)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .output()
        .expect("`script` (util-linux) runs: it gives bringup a pseudo-terminal");
    let mut parser = vt100::Parser::new(30, 100, 0);
    parser.process(&raw.stdout);
    let rows: Vec<String> = parser
        .screen()
        .rows(0, 100)
        .map(|row| row.trim_end().to_string())
        .collect();
    normalize(rows.join("\n").trim_end())
}

#[test]
fn the_live_view_collapses_finished_steps_to_one_line_each() {
    let env = Env::new("basic-cluster", "basic");
    let first = screen(&env, "run --yes --jobs 1");
    insta::assert_snapshot!("live_view_first_run", first);
    let second = screen(&env, "run --yes --jobs 1");
    insta::assert_snapshot!("live_view_second_run", second);
}

#[test]
fn the_live_view_shows_a_failed_step_and_how_to_resume() {
    let env = Env::new("basic-cluster", "failing");
    let failed = screen(&env, "run --yes --jobs 1");
    assert!(failed.contains('✗'), "{failed}");
    insta::assert_snapshot!("live_view_failed_run", failed);
}
