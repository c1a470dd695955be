//! What a person reads when the command line is wrong: every bad flag, value or selection
//! gets a clear error and exit 2, before any cluster call. The texts are snapshot-tested.

mod common;

use common::{Env, assert_exit, fixtures, normalize, stderr, stdout};

fn bringup(args: &[&str]) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("bringup"))
        .args(args)
        .env("BRINGUP_PHASES", fixtures().join("e2e/basic"))
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .env_remove("BRINGUP_LOCK_DURATION")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("bringup runs")
}

/// Asserts exit 2 with no cluster contact (the kubeconfig does not exist, so any attempt
/// would fail with exit 1 and a connection error), and returns stderr for the snapshot.
fn bad_input(args: &[&str]) -> String {
    let output = bringup(args);
    assert_exit(&output, 2);
    let text = stderr(&output);
    assert!(
        !text.contains("cannot connect"),
        "bad input reached the cluster: {text}"
    );
    text.replace(&fixtures().display().to_string(), "[fixtures]")
}

#[test]
fn bad_flags_are_refused_with_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        ("unknown_flag", &["run", "--frobnicate"]),
        ("unknown_subcommand", &["deploy"]),
        ("jobs_zero", &["run", "--jobs", "0"]),
        ("jobs_not_a_number", &["run", "--jobs", "many"]),
        ("output_format", &["plan", "-o", "yaml"]),
        ("set_without_equals", &["plan", "--set", "greeting"]),
        ("set_empty_key", &["plan", "--set", "=x"]),
        (
            "values_file_missing",
            &["plan", "--values", "/nonexistent/values.yaml"],
        ),
        (
            "phases_dir_missing",
            &["plan", "--phases", "/nonexistent/phases"],
        ),
        ("reset_without_scope", &["reset"]),
        (
            "reset_two_scopes",
            &["reset", "--all", "--phase", "secrets"],
        ),
        ("lock_duration", &["run", "--lock-duration", "soon"]),
        ("quiet_and_verbose", &["run", "-q", "-v"]),
        ("graph_format", &["graph", "--format", "png"]),
    ];
    for (name, args) in cases {
        insta::assert_snapshot!(format!("bad_flag_{name}"), bad_input(args), &args.join(" "));
    }
}

#[test]
fn a_values_file_with_bad_yaml_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, "greeting: hello\n  bad: [indent\n").unwrap();
    let text = bad_input(&["plan", "--values", file.to_str().unwrap()])
        .replace(&dir.path().display().to_string(), "[dir]");
    assert!(text.contains("values.yaml"), "{text}");
    insta::assert_snapshot!("bad_values_yaml", text);
}

#[test]
fn a_value_the_phases_need_and_nobody_set_names_the_set_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-a.yaml"),
        "schema: bringup/v1\nphase: a\nsteps:\n  - id: s\n    kind: secret\n    secret: ns/name\n    keys:\n      k: { template: \"{{ values.missing.key }}\" }\n",
    )
    .unwrap();
    let text = bad_input(&["validate", "--phases", dir.path().to_str().unwrap()])
        .replace(&dir.path().display().to_string(), "[dir]");
    assert!(text.contains("--set missing=VALUE"), "{text}");
    insta::assert_snapshot!("unset_value", text);
}

#[test]
fn selections_naming_unknown_phases_or_steps_are_refused() {
    // These are checked against the phase files after connecting... unless they are caught
    // first: assert they are refused with exit 2 and a suggestion, against a real sandbox.
    let env = Env::new("basic-cluster", "basic");
    for (name, args) in [
        ("unknown_phase", vec!["run", "--yes", "--phase", "secret"]),
        (
            "unknown_step",
            vec!["run", "--yes", "--step", "secrets/admn"],
        ),
        ("from_unknown", vec!["plan", "--from", "nowhere"]),
        ("step_without_phase", vec!["plan", "--step", "admin"]),
    ] {
        let output = env.run(&args);
        assert_exit(&output, 2);
        insta::assert_snapshot!(
            format!("selection_{name}"),
            normalize(&stderr(&output)),
            &args.join(" ")
        );
    }
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(
        writes.is_empty(),
        "a refused selection changed the cluster: {writes:#?}"
    );
}

#[test]
fn help_texts() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("run_help", vec!["run", "--help"]),
        ("plan_help", vec!["plan", "--help"]),
    ] {
        let output = bringup(&args);
        assert_exit(&output, 0);
        insta::assert_snapshot!(name, stdout(&output));
    }
}

#[test]
fn validate_and_graph_need_no_cluster() {
    let output = bringup(&["validate"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "3 phases, 5 steps: no problems found\n");
    let graph = bringup(&["graph"]);
    assert_exit(&graph, 0);
    insta::assert_snapshot!("graph_mermaid", stdout(&graph));
    let dot = bringup(&["graph", "--format", "dot"]);
    assert_exit(&dot, 0);
    insta::assert_snapshot!("graph_dot", stdout(&dot));
}
