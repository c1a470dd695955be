//! The commands around a run: `--force`, `reset`, `verify` and `status`, end to end.

mod common;

use common::{Env, assert_exit, normalize, stdout};

fn stamp(env: &Env) -> String {
    env.secret("demo", "stamp").expect("demo/stamp exists")["value"].clone()
}

#[test]
fn a_done_once_step_is_skipped_without_a_request_until_forced() {
    let env = Env::new("shell-cluster", "once");
    assert_exit(&env.run(&["run", "--yes"]), 0);
    let first = stamp(&env);

    let before = env.audit().len();
    assert_exit(&env.run(&["run", "--yes"]), 0);
    assert_eq!(stamp(&env), first, "a done once-step ran again");
    let execs = env
        .audit()
        .into_iter()
        .skip(before)
        .filter(|e| e.is_exec())
        .count();
    assert_eq!(execs, 0, "a done once-step touched its pod");

    assert_exit(&env.run(&["run", "--yes", "--force"]), 0);
    assert_ne!(
        stamp(&env),
        first,
        "--force did not run the once-step again"
    );
}

#[test]
fn reset_forgets_a_step_so_it_runs_again() {
    let env = Env::new("shell-cluster", "once");
    assert_exit(&env.run(&["run", "--yes"]), 0);
    let first = stamp(&env);

    assert_exit(&env.run(&["reset", "--step", "once/stamp", "--yes"]), 0);
    let plan = env.run(&["plan"]);
    assert_exit(&plan, 0);
    insta::assert_snapshot!("plan_after_reset", normalize(&stdout(&plan)));
    assert_exit(&env.run(&["run", "--yes"]), 0);
    assert_ne!(stamp(&env), first, "the reset step did not run again");
    assert_eq!(env.secret("global", "shared").unwrap().len(), 1);
}

#[test]
fn verify_reports_drift_and_run_repairs_it() {
    let env = Env::new("shell-cluster", "once");
    assert_exit(&env.run(&["run", "--yes"]), 0);
    assert_exit(&env.run(&["verify"]), 0);

    env.sandbox
        .state()
        .delete_object("v1", "Secret", Some("global"), "shared")
        .unwrap();
    let before = env.audit().len();
    let drift = env.run(&["verify"]);
    assert_exit(&drift, 1);
    insta::assert_snapshot!("verify_with_drift", normalize(&stdout(&drift)));
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .skip(before)
        .filter(|e| e.is_mutating())
        .collect();
    assert!(writes.is_empty(), "verify wrote: {writes:#?}");

    assert_exit(&env.run(&["run", "--yes"]), 0);
    assert_exit(&env.run(&["verify"]), 0);
    assert_eq!(
        env.secret("global", "shared").unwrap()["password"].len(),
        20
    );
}

#[test]
fn status_and_json_events_tell_the_same_story() {
    let env = Env::new("shell-cluster", "once");
    let run = env.run(&["run", "--yes", "-o", "json"]);
    assert_exit(&run, 0);
    let events: Vec<serde_json::Value> = stdout(&run)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is one JSON event"))
        .collect();
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(finished, ["once/stamp", "once/shared"]);
    assert_eq!(events.last().unwrap()["event"], "run_finished");

    let status = env.run(&["status", "-o", "json"]);
    assert_exit(&status, 0);
    let text = stdout(&status);
    assert!(
        text.contains("once/stamp") && text.contains("done"),
        "{text}"
    );
}
