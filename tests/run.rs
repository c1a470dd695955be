//! The core promises of `bringup run` and `bringup plan`, proven against the sandbox with
//! the real binary: first run, no-op rerun counted from the audit log, plan changes nothing,
//! selection flags, the lock, and secrets never reaching any output.

mod common;

use common::{CANARY, Env, assert_exit, normalize, stderr, stdout};

#[test]
fn first_run_creates_everything_and_a_second_changes_nothing() {
    let env = Env::new("basic-cluster", "basic");

    let first = env.run(&["run", "--yes"]);
    assert_exit(&first, 0);
    let admin = env.secret("global", "app.admin").expect("app.admin exists");
    assert_eq!(admin.keys().collect::<Vec<_>>(), ["htpasswd", "password"]);
    assert_eq!(admin["password"].len(), 24);
    assert!(
        bcrypt::verify(
            &admin["password"],
            admin["htpasswd"].trim_start_matches("admin:")
        )
        .unwrap()
    );
    let derived = env
        .secret("global", "app.derived")
        .expect("app.derived exists");
    assert_eq!(derived["copy"], CANARY);
    assert_eq!(derived["token"].len(), 32, "16 random bytes, hex");
    let settings = env
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .expect("settings exists");
    assert_eq!(settings["data"]["greeting"], "hello");

    let before = env.audit().len();
    let second = env.run(&["run", "--yes"]);
    assert_exit(&second, 0);
    // The sandbox's own controllers (External Secrets, polling every 500ms) are not the run.
    let requests: Vec<_> = env
        .audit()
        .into_iter()
        .skip(before)
        .filter(|e| e.user_agent != bringup_sandbox::controllers::USER_AGENT)
        .collect();
    let writes: Vec<_> = requests.iter().filter(|e| e.is_mutating()).collect();
    assert!(
        writes
            .iter()
            .all(|e| e.resource.as_deref() == Some("leases")),
        "a no-op rerun writes only its Lease: {writes:#?}"
    );
    assert_eq!(
        writes.len(),
        2,
        "take the Lease and give it back: {writes:#?}"
    );
    // Reads: the cluster identity, the Lease, the checkpoint, and one probe read per ensure
    // step: 3 secret steps, the applied ConfigMap, the waited-on ConfigMap. The template of
    // app.derived's `copy` key is not rendered: the key exists, so its source is not read.
    let reads = requests.len() - writes.len();
    assert_eq!(
        reads,
        3 + 5,
        "{:#?}",
        requests
            .iter()
            .map(|e| (&e.verb, &e.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        env.secret("global", "app.admin").unwrap(),
        admin,
        "no Secret value changed"
    );
}

#[test]
fn plan_before_between_and_after_runs_makes_no_mutating_request() {
    let env = Env::new("basic-cluster", "basic");
    let plan_writes = |env: &Env, args: &[&str]| {
        let before = env.audit().len();
        let output = env.run(args);
        assert_exit(&output, 0);
        let writes: Vec<_> = env
            .audit()
            .into_iter()
            .skip(before)
            .filter(|e| e.is_mutating())
            .collect();
        assert!(
            writes.is_empty(),
            "`bringup {}` wrote: {writes:#?}",
            args.join(" ")
        );
        normalize(&stdout(&output))
    };

    insta::assert_snapshot!("plan_before_any_run", plan_writes(&env, &["plan"]));
    assert_exit(&env.run(&["run", "--yes", "--phase", "other"]), 0);
    insta::assert_snapshot!("plan_after_one_phase", plan_writes(&env, &["plan"]));
    assert_exit(&env.run(&["run", "--yes"]), 0);
    insta::assert_snapshot!("plan_after_the_run", plan_writes(&env, &["plan"]));
    insta::assert_snapshot!(
        "plan_probe_after_the_run",
        plan_writes(&env, &["plan", "--probe"])
    );
    insta::assert_snapshot!("status_after_the_run", plan_writes(&env, &["status"]));
}

#[test]
fn plan_on_a_fresh_cluster_makes_only_reads() {
    let env = Env::new("basic-cluster", "basic");
    assert_exit(&env.run(&["plan"]), 0);
    assert_exit(&env.run(&["plan", "-o", "json"]), 0);
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.is_mutating())
        .collect();
    assert!(writes.is_empty(), "plan wrote: {writes:#?}");
    assert!(
        env.object("v1", "Namespace", None, "bringup").is_none(),
        "plan created the state namespace"
    );
}

#[test]
fn phase_refuses_when_its_dependencies_are_not_done() {
    let env = Env::new("basic-cluster", "basic");
    let refused = env.run(&["run", "--yes", "--phase", "config"]);
    assert_exit(&refused, 2);
    let message = stderr(&refused);
    assert!(message.contains("--ignore-dependencies"), "{message}");
    assert!(message.contains("secrets"), "{message}");
    assert!(
        env.object("v1", "ConfigMap", Some("demo"), "settings")
            .is_none()
    );

    assert_exit(&env.run(&["run", "--yes", "--phase", "secrets"]), 0);
    assert!(
        env.secret("global", "registry.admin").is_none(),
        "--phase ran another phase"
    );
    assert_exit(&env.run(&["run", "--yes", "--phase", "config"]), 0);
    assert!(
        env.object("v1", "ConfigMap", Some("demo"), "settings")
            .is_some()
    );
}

#[test]
fn ignore_dependencies_runs_the_phase_anyway() {
    let env = Env::new("basic-cluster", "basic");
    assert_exit(
        &env.run(&["run", "--yes", "--phase", "config", "--ignore-dependencies"]),
        0,
    );
    assert!(
        env.object("v1", "ConfigMap", Some("demo"), "settings")
            .is_some()
    );
    assert!(env.secret("global", "app.admin").is_none());
}

#[test]
fn from_runs_that_step_and_everything_after_it() {
    let env = Env::new("basic-cluster", "basic");
    assert_exit(
        &env.run(&[
            "run",
            "--yes",
            "--from",
            "secrets/derived",
            "--ignore-dependencies",
        ]),
        0,
    );
    assert!(
        env.secret("global", "app.admin").is_none(),
        "--from ran a step before it"
    );
    assert!(env.secret("global", "app.derived").is_some());
    assert!(
        env.object("v1", "ConfigMap", Some("demo"), "settings")
            .is_some()
    );
}

#[test]
fn a_changed_value_marks_the_step_changed_and_runs_it_again() {
    let env = Env::new("basic-cluster", "basic");
    assert_exit(&env.run(&["run", "--yes"]), 0);
    let plan = env.run(&["plan", "--set", "greeting=bonjour"]);
    assert_exit(&plan, 0);
    let text = stdout(&plan);
    let line = text
        .lines()
        .find(|l| l.starts_with("config/settings "))
        .expect("config/settings row");
    assert!(line.contains("changed"), "{text}");
    assert_exit(&env.run(&["run", "--yes", "--set", "greeting=bonjour"]), 0);
    let settings = env
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .unwrap();
    assert_eq!(settings["data"]["greeting"], "bonjour");
}

#[test]
fn a_run_without_a_terminal_and_without_yes_changes_nothing() {
    let env = Env::new("basic-cluster", "basic");
    let refused = env.run(&["run"]);
    assert_exit(&refused, 2);
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .filter(|e| e.is_mutating() && !e.path.contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
}

#[test]
fn a_second_run_while_the_first_holds_the_lock_exits_3_naming_the_holder() {
    let env = Env::new("basic-cluster", "waiting");
    let mut first = start_holding_the_lock(&env, "30s");
    let second = env.run(&["run", "--yes"]);
    assert_exit(&second, 3);
    let message = stderr(&second);
    assert!(message.contains("is held by"), "{message}");
    assert!(
        message.contains(&format!("pid={}", first.0.id())),
        "names the holder's pid: {message}"
    );

    let_the_waiting_phase_finish(&env);
    let status = first.0.wait().expect("first run ends");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_killed_runs_lock_is_taken_over_at_once_on_the_same_machine() {
    let env = Env::new("basic-cluster", "waiting");
    let mut child = start_holding_the_lock(&env, "60s");
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    // The Lease would live another minute, but its holder's process is gone.
    let next = env.run(&["run", "--yes", "--phase", "other"]);
    assert_exit(&next, 0);
    let text = stdout(&next);
    let warning = text
        .lines()
        .find(|l| l.contains("took over lease bringup/bringup-lock from `"))
        .unwrap_or_else(|| panic!("the takeover is reported: {text}"));
    assert!(
        warning.contains(&format!(" pid={} ", child.0.id()))
            && warning.ends_with("whose process on this machine is gone"),
        "{warning}"
    );
}

#[test]
fn a_lock_held_from_another_machine_is_taken_over_once_its_duration_passes() {
    let env = Env::new("basic-cluster", "basic");
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let state = env.sandbox.state();
    state
        .put_object(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "bringup"}}))
        .unwrap();
    state
        .put_object(
            serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "bringup-lock", "namespace": "bringup"},
            "spec": {"holderIdentity": "ann@elsewhere pid=1 run=0000beef machine=00000000",
                     "leaseDurationSeconds": 2, "acquireTime": now, "renewTime": now}}),
        )
        .unwrap();

    // Nobody here can tell whether that run lives: it keeps the lock for its duration...
    let early = env.run(&["run", "--yes", "--phase", "other"]);
    assert_exit(&early, 3);
    assert!(
        stderr(&early).contains("ann@elsewhere pid=1"),
        "{}",
        stderr(&early)
    );
    // ...and once it expired, the next run takes it over.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let later = env.run(&["run", "--yes"]);
    assert_exit(&later, 0);
    assert!(
        stdout(&later).contains(
            "took over lease bringup/bringup-lock from `ann@elsewhere pid=1 run=0000beef machine=00000000`, which stopped renewing it at "
        ),
        "the takeover is reported: {}",
        stdout(&later)
    );
}

#[test]
fn ctrl_c_during_a_wait_stops_the_run_at_once_and_the_next_run_finishes_it() {
    let env = Env::new("basic-cluster", "waiting");
    let mut first = start_holding_the_lock(&env, "30s");
    // The wait (60s timeout) is under way.
    wait_until(|| env.checkpoint_text().contains("wait-for-go.go"));
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &first.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let mut status = None;
    wait_until(|| {
        status = first.0.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(130));
    assert!(
        env.object("v1", "ConfigMap", Some("demo"), "go").is_none(),
        "the run stopped while the wait still had nothing to see"
    );
    let lease = env
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("bringup"),
            "bringup-lock",
        )
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_none_or(str::is_empty),
        "the lock was released: {lease}"
    );

    let_the_waiting_phase_finish(&env);
    let wait_status = |env: &Env| {
        let checkpoint = env
            .object("v1", "ConfigMap", Some("bringup"), "bringup-state")
            .unwrap();
        let record: serde_json::Value =
            serde_json::from_str(checkpoint["data"]["wait-for-go.go"].as_str().unwrap()).unwrap();
        record["status"].as_str().unwrap().to_string()
    };
    assert_eq!(wait_status(&env), "running", "interrupted, not done");
    let next = env.run(&["run", "--yes"]);
    assert_exit(&next, 0);
    assert_eq!(wait_status(&env), "done");
}

#[test]
fn unlock_breaks_a_held_lock() {
    let env = Env::new("basic-cluster", "waiting");
    // A live holder (say, a run stuck on another terminal).
    let _holder = start_holding_the_lock(&env, "60s");
    assert_exit(&env.run(&["run", "--yes", "--phase", "other"]), 3);
    assert_exit(&env.run(&["unlock"]), 0);
    assert_exit(&env.run(&["run", "--yes", "--phase", "other"]), 0);
}

#[test]
fn canary_secrets_never_reach_output_logs_checkpoint_events_or_urls() {
    let env = Env::new("basic-cluster", "basic");
    let run = env.run(&["run", "--yes", "-vvv"]);
    assert_exit(&run, 0);
    let json = env.run(&["run", "--yes", "--force", "-o", "json", "-vvv"]);
    assert_exit(&json, 0);
    let plan = env.run(&["plan", "--probe", "-vvv"]);
    assert_exit(&plan, 0);

    let mut secrets: Vec<String> = vec![CANARY.into()];
    for (ns, name) in [
        ("global", "app.admin"),
        ("global", "app.derived"),
        ("global", "registry.admin"),
    ] {
        secrets.extend(env.secret(ns, name).unwrap().into_values());
    }
    let checkpoint = env.checkpoint_text();
    assert!(!checkpoint.is_empty(), "the checkpoint exists");
    let urls: String = env
        .audit()
        .iter()
        .map(|e| format!("{}?{}\n", e.path, e.query))
        .collect();
    for (what, text) in [
        ("run stdout", stdout(&run)),
        ("run stderr at -vvv", stderr(&run)),
        ("JSON events", stdout(&json)),
        ("JSON run stderr", stderr(&json)),
        ("plan stdout", stdout(&plan)),
        ("plan stderr", stderr(&plan)),
        ("checkpoint", checkpoint),
        ("audit URLs", urls),
    ] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret value reached the {what}"
            );
        }
    }
    assert!(
        stderr(&run).lines().count() > 10,
        "-vvv logged something to scan"
    );
}

/// Starts a run of the `waiting` phases, which holds the lock (with this lease duration)
/// until ConfigMap demo/go exists, and returns once the lock is taken.
fn start_holding_the_lock(env: &Env, lock_duration: &str) -> KillOnDrop {
    let child = env
        .bringup()
        .args(["run", "--yes"])
        .env("BRINGUP_LOCK_DURATION", lock_duration)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run starts");
    let child = KillOnDrop(child);
    wait_until(|| {
        env.object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("bringup"),
            "bringup-lock",
        )
        .is_some_and(|l| {
            l["spec"]["holderIdentity"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
        })
    });
    child
}

/// Creates the ConfigMap the `waiting` phase waits for.
fn let_the_waiting_phase_finish(env: &Env) {
    env.sandbox
        .state()
        .put_object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "go", "namespace": "demo"}}))
        .unwrap();
}

/// Kills the child if the test panics before it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within 20s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
