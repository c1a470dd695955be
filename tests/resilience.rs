//! A run that dies or meets a faulty API server loses nothing: killed with SIGKILL at 20
//! moments, or hit by 500s, 409s, 429s and dropped connections, the next runs finish with
//! the same end state as an uninterrupted run, and no Secret value changes once written.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, assert_exit, stderr};

type Secrets = BTreeMap<String, BTreeMap<String, String>>;

const SECRETS: &[(&str, &str)] = &[
    ("global", "app.admin"),
    ("global", "app.derived"),
    ("global", "registry.admin"),
];

fn secrets(env: &Env) -> Secrets {
    SECRETS
        .iter()
        .filter_map(|(ns, name)| {
            env.secret(ns, name)
                .map(|data| (format!("{ns}/{name}"), data))
        })
        .collect()
}

/// What an uninterrupted run leaves: which Secrets with which keys, and the ConfigMap.
fn shape(env: &Env) -> (BTreeMap<String, Vec<String>>, Option<serde_json::Value>) {
    let keys = secrets(env)
        .into_iter()
        .map(|(name, data)| (name, data.into_keys().collect()))
        .collect();
    let settings = env
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .map(|cm| cm["data"].clone());
    (keys, settings)
}

/// Every value that existed before still has the same value.
#[track_caller]
fn assert_no_value_changed(before: &Secrets, after: &Secrets, context: &str) {
    for (secret, data) in before {
        for (key, value) in data {
            assert_eq!(
                after.get(secret).and_then(|d| d.get(key)),
                Some(value),
                "{context}: {secret} key {key} changed or vanished"
            );
        }
    }
}

/// Runs until a run succeeds: a killed run's lock expires after its duration (1s here).
fn run_to_completion(env: &Env, tries: usize) -> Vec<std::process::Output> {
    let mut outputs = Vec::new();
    for _ in 0..tries {
        let output = env
            .bringup()
            .args(["run", "--yes"])
            .env("BRINGUP_LOCK_DURATION", "1s")
            .output()
            .unwrap();
        let code = output.status.code();
        outputs.push(output);
        match code {
            Some(0) => return outputs,
            Some(3) => std::thread::sleep(Duration::from_millis(400)),
            _ => {}
        }
    }
    let last = outputs.last().unwrap();
    panic!("no run succeeded in {tries} tries; last:\n{}", stderr(last));
}

#[test]
fn killed_at_20_moments_the_next_run_finishes_the_same_end_state() {
    let reference = Env::new("basic-cluster", "basic");
    let started = std::time::Instant::now();
    assert_exit(&reference.run(&["run", "--yes"]), 0);
    let full_run = started.elapsed();
    let expected = shape(&reference);

    for moment in 0..20u32 {
        let env = Env::new("basic-cluster", "basic");
        let mut child = env
            .bringup()
            .args(["run", "--yes"])
            .env("BRINGUP_LOCK_DURATION", "1s")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the whole run, from process start to the last step.
        std::thread::sleep(full_run * moment / 19);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let written = secrets(&env);

        run_to_completion(&env, 10);
        assert_eq!(shape(&env), expected, "killed at moment {moment} of 20");
        assert_no_value_changed(
            &written,
            &secrets(&env),
            &format!("killed at moment {moment}"),
        );

        // And the run after that changes nothing.
        let finished = secrets(&env);
        assert_exit(&env.run(&["run", "--yes"]), 0);
        assert_eq!(secrets(&env), finished);
    }
}

#[test]
fn injected_faults_are_retried_or_fail_clearly_and_a_rerun_finishes() {
    let env = Env::new("faulty-cluster", "basic");
    let mut written = Secrets::new();
    let mut finished = false;
    for attempt in 0..12 {
        let output = env
            .bringup()
            .args(["run", "--yes"])
            .env("BRINGUP_LOCK_DURATION", "1s")
            .output()
            .unwrap();
        let text = stderr(&output);
        assert!(
            !text.contains("panicked"),
            "attempt {attempt} panicked:\n{text}"
        );
        match output.status.code() {
            Some(0) => {
                finished = true;
                break;
            }
            Some(1) | Some(3) => {
                assert!(
                    !text.trim().is_empty() || !output.stdout.is_empty(),
                    "a failed run says why"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            other => panic!("attempt {attempt} exited {other:?}:\n{text}"),
        }
        let now = secrets(&env);
        assert_no_value_changed(&written, &now, &format!("attempt {attempt}"));
        written = now;
    }
    assert!(finished, "no run finished against the faulty API server");

    let reference = Env::new("basic-cluster", "basic");
    assert_exit(&reference.run(&["run", "--yes"]), 0);
    assert_eq!(shape(&env), shape(&reference));
    let faults = env.audit().iter().filter(|e| e.fault.is_some()).count();
    assert!(faults >= 5, "the faults were really injected ({faults})");
}
