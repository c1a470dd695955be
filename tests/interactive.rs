//! The paths that need a person: the confirmation before the first change and `prompt`
//! steps, driven through a pseudo-terminal (`script`), and their non-interactive refusals.

mod common;

use common::{Env, assert_exit, stderr};

/// Runs `bringup ARGS` on a pseudo-terminal and answers each question once its text is on
/// screen (`(question, answer)` in order); returns the exit code and everything shown.
fn on_terminal(env: &Env, args: &str, answers: &[(&str, &str)]) -> (i32, String) {
    use std::io::{Read as _, Write as _};
    let bringup = assert_cmd::cargo::cargo_bin("bringup");
    let mut child = std::process::Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{} {args}", bringup.display()),
            "/dev/null",
        ])
        .env("KUBECONFIG", env.sandbox.kubeconfig_path())
        .env("BRINGUP_PHASES", &env.phases)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = String::new();
    let mut transcript = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (question, answer) in answers {
        while !screen.contains(question) {
            assert!(
                std::time::Instant::now() < deadline,
                "`{question}` never appeared:\n{screen}"
            );
            if let Ok(bytes) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
                screen.push_str(&String::from_utf8_lossy(&bytes));
                transcript.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        // The question is on screen; give the prompt a moment to read the terminal.
        std::thread::sleep(std::time::Duration::from_millis(200));
        stdin.write_all(format!("{answer}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
        screen.clear();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    while let Ok(bytes) = rx.try_recv() {
        transcript.push_str(&String::from_utf8_lossy(&bytes));
    }
    (status.code().unwrap_or(-1), transcript)
}

#[test]
fn the_confirmation_names_context_server_and_plan_and_no_changes_nothing() {
    let env = Env::new("basic-cluster", "basic");
    let (code, screen) = on_terminal(&env, "run", &[("Go ahead?", "n")]);
    assert!(screen.contains("context:    sandbox"), "{screen}");
    assert!(screen.contains("API server: http://127.0.0.1:"), "{screen}");
    assert!(screen.contains("Plan: 5 to run"), "{screen}");
    assert_eq!(code, 130, "declined: {screen}");
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(
        writes
            .iter()
            .all(|e| e.resource.as_deref() == Some("leases")),
        "declining changed the cluster: {writes:#?}"
    );
    assert!(env.secret("global", "app.admin").is_none());

    let (code, screen) = on_terminal(&env, "run", &[("Go ahead?", "y")]);
    assert_eq!(code, 0, "{screen}");
    assert!(env.secret("global", "app.admin").is_some());
}

#[test]
fn a_prompt_step_asks_with_hidden_input_and_stores_the_answer() {
    let env = Env::new("basic-cluster", "prompting");
    let answer = "cf-t0ken-typed-by-a-person";
    let (code, screen) = on_terminal(
        &env,
        "run",
        &[("Go ahead?", "y"), ("Cloudflare API token", answer)],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains(answer),
        "the hidden answer was echoed: {screen}"
    );
    assert_eq!(
        env.secret("global", "cloudflare").unwrap()["api-token"],
        answer
    );
}

#[test]
fn a_prompt_without_a_terminal_or_value_fails_before_any_change_naming_the_set_flag() {
    let env = Env::new("basic-cluster", "prompting");
    let output = env.run(&["run", "--yes"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("--set cloudflare.token="),
        "{}",
        stderr(&output)
    );
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(
        writes
            .iter()
            .all(|e| e.resource.as_deref() == Some("leases")),
        "{writes:#?}"
    );

    assert_exit(
        &env.run(&[
            "run",
            "--yes",
            "--set",
            "cloudflare.token=from-the-flag-123",
        ]),
        0,
    );
    assert_eq!(
        env.secret("global", "cloudflare").unwrap()["api-token"],
        "from-the-flag-123"
    );
}
