//! The engine's commands end to end against the in-memory cluster and a scripted executor:
//! what a run writes, what a rerun does not, what plan never does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::TypeRef;
use crate::cluster::fake::{Call, FakeCluster};
use crate::engine::checkpoint::{CHECKPOINT_NAME, RecordStatus, StepRecord};
use crate::engine::events::{Event, Outcome, PhaseOutcome, StepState};
use crate::engine::lock::LOCK_NAME;
use crate::engine::testing::{
    FakeExecutor, MemoryReporter, ensure_step, once_step, phase, prompt_step,
};
use crate::engine::{
    Confirmation, EngineError, EventSink, Redactor, ResetScope, RunSettings, Selection, plan,
    reset, run, status, unlock, verify,
};
use crate::phase::model::{Phase, StepKind};
use crate::steps::{Applied, Probe, StepError};

const NS: &str = "bringup";

fn phases() -> Vec<Phase> {
    vec![
        phase(
            "shared",
            &[],
            vec![ensure_step("secrets"), once_step("seed")],
        ),
        phase("gitea", &["shared"], vec![once_step("token")]),
    ]
}

fn settings() -> RunSettings {
    RunSettings {
        retry_backoff: Duration::from_millis(1),
        ..RunSettings::default()
    }
}

fn sink() -> (EventSink, Arc<MemoryReporter>) {
    let reporter = MemoryReporter::new();
    (EventSink::new(reporter.clone(), Redactor::new()), reporter)
}

async fn run_with(
    settings: &RunSettings,
    phases: &[Phase],
    fake: &FakeCluster,
    executor: &Arc<FakeExecutor>,
) -> (
    Result<crate::engine::Summary, EngineError>,
    Arc<MemoryReporter>,
) {
    let (events, reporter) = sink();
    let result = run(
        settings,
        phases,
        Arc::new(fake.clone()),
        executor.clone(),
        events,
        CancellationToken::new(),
    )
    .await;
    (result, reporter)
}

fn records(fake: &FakeCluster) -> std::collections::BTreeMap<String, StepRecord> {
    let Some(cm) = fake.object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME) else {
        return Default::default();
    };
    cm["data"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains('.'))
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v.as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn outcomes(reporter: &MemoryReporter) -> Vec<(String, Outcome)> {
    reporter
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepFinished { step, outcome, .. } => Some((step, outcome)),
            _ => None,
        })
        .collect()
}

fn call(verb: &'static str, what: &str) -> Call {
    Call {
        verb,
        what: what.into(),
    }
}

fn fingerprint_of(phases: &[Phase], full_id: &str) -> String {
    let (p, s) = full_id.split_once('/').unwrap();
    let step = phases
        .iter()
        .find(|ph| ph.name == p)
        .unwrap()
        .steps
        .iter()
        .find(|st| st.id == s)
        .unwrap();
    crate::engine::fingerprint::fingerprint(step, &json!({}))
}

fn put_record(fake: &FakeCluster, key: &str, record: Value) {
    let mut cm = fake
        .object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME)
        .unwrap();
    cm["data"][key] = json!(record.to_string());
    fake.insert(cm);
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_does_everything_and_a_rerun_touches_nothing() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = phases();

    let (result, _) = run_with(&settings(), &phases, &fake, &executor).await;
    let summary = result.unwrap();
    assert_eq!(
        (summary.done, summary.unchanged, summary.skipped),
        (3, 0, 0)
    );
    assert_eq!(
        executor.applies(),
        ["shared/secrets", "shared/seed", "gitea/token"]
    );
    let recorded = records(&fake);
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        ["gitea.token", "shared.secrets", "shared.seed"]
    );
    for (key, record) in &recorded {
        assert_eq!(record.status, RecordStatus::Done, "{key}");
        assert_eq!(record.attempts, 1, "{key}");
        assert!(record.finished.is_some(), "{key}");
    }
    assert_eq!(
        recorded["gitea.token"].fingerprint,
        fingerprint_of(&phases, "gitea/token")
    );
    let cm = fake
        .object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME)
        .unwrap();
    assert_eq!(cm["data"]["cluster"], "fake-cluster-uid");
    assert_eq!(cm["data"]["schema"], "1");
    let checkpoint_before = cm.clone();

    let before = fake.calls().len();
    let executor_before = executor.calls().len();
    let (result, reporter) = run_with(&settings(), &phases, &fake, &executor).await;
    let summary = result.unwrap();
    assert_eq!(
        (summary.done, summary.unchanged, summary.skipped),
        (0, 1, 2)
    );
    assert_eq!(
        fake.calls()[before..],
        [
            call("identity", "kube-system"),
            call("get", &format!("Lease {NS}/{LOCK_NAME}")),
            call("replace", &format!("{NS}/{LOCK_NAME}")),
            call("get", &format!("ConfigMap {NS}/{CHECKPOINT_NAME}")),
            call("replace", &format!("{NS}/{LOCK_NAME}")),
        ],
        "a no-op rerun reads the checkpoint, takes and gives back the lock, nothing else"
    );
    assert_eq!(
        executor.calls()[executor_before..],
        ["probe shared/secrets"],
        "only the ensure step is probed"
    );
    assert_eq!(
        fake.object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME)
            .unwrap(),
        checkpoint_before,
        "no timestamp refresh"
    );
    assert_eq!(
        outcomes(&reporter),
        [
            (
                "shared/secrets".to_string(),
                Outcome::Unchanged {
                    message: "present".into()
                }
            ),
            (
                "shared/seed".to_string(),
                Outcome::Skipped {
                    reason: "done".into()
                }
            ),
            (
                "gitea/token".to_string(),
                Outcome::Skipped {
                    reason: "done".into()
                }
            ),
        ]
    );
    let lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    assert!(
        lease["spec"].get("holderIdentity").is_none(),
        "the lock is given back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_definition_runs_again() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let mut phases = phases();
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();

    let StepKind::Exec(exec) = &mut phases[1].steps[0].kind else {
        panic!()
    };
    exec.command.push("--scopes=write:repository".into());
    let report = plan(
        &settings(),
        &phases,
        Arc::new(fake.read_only_view()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap();
    let token = report
        .rows
        .iter()
        .find(|r| r.step == "gitea/token")
        .unwrap();
    assert_eq!(token.state, StepState::Changed);

    let before = executor.applies().len();
    let (result, _) = run_with(&settings(), &phases, &fake, &executor).await;
    result.unwrap();
    assert_eq!(executor.applies()[before..], ["gitea/token"]);
    assert_eq!(
        records(&fake)["gitea.token"].fingerprint,
        fingerprint_of(&phases, "gitea/token")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_left_running_runs_again() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = phases();
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();
    put_record(
        &fake,
        "shared.seed",
        json!({"status": "running", "fingerprint": fingerprint_of(&phases, "shared/seed"), "started": "2024-01-01T00:00:00Z",
               "finished": null, "attempts": 1, "error": null}),
    );
    let report = plan(
        &settings(),
        &phases,
        Arc::new(fake.read_only_view()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap();
    assert_eq!(report.rows[1].state, StepState::Interrupted);

    let before = executor.applies().len();
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(executor.applies()[before..], ["shared/seed"]);
    let seed = &records(&fake)["shared.seed"];
    assert_eq!(seed.status, RecordStatus::Done);
    assert_eq!(seed.attempts, 2, "the interrupted attempt counts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_stops_its_phase_and_dependants_while_independent_phases_finish() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = vec![
        phase(
            "vault",
            &[],
            vec![once_step("init"), once_step("unseal"), once_step("config")],
        ),
        phase("eso", &["vault"], vec![once_step("store")]),
        phase("apps", &["eso"], vec![once_step("seed")]),
        phase("gitea", &[], vec![once_step("token")]),
    ];
    executor.fail(
        "vault/unseal",
        "OpenBao answered 503 sealed after 2 of 3 keys",
    );
    let (result, reporter) = run_with(&settings(), &phases, &fake, &executor).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let summary = err.summary().unwrap();
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].step, "vault/unseal");
    assert_eq!(
        summary.resume.as_deref(),
        Some("re-run `bringup run` to resume at vault/unseal")
    );
    assert_eq!(
        summary.steps_not_run, 3,
        "vault/config, eso/store, apps/seed"
    );
    assert_eq!(
        err.to_string(),
        "step vault/unseal failed: OpenBao answered 503 sealed after 2 of 3 keys; re-run `bringup run` to resume at vault/unseal"
    );

    let mut applied = executor.applies();
    applied.sort();
    assert_eq!(applied, ["gitea/token", "vault/init", "vault/unseal"]);
    let recorded = records(&fake);
    assert_eq!(recorded["vault.unseal"].status, RecordStatus::Failed);
    assert_eq!(
        recorded["vault.unseal"].error.as_deref(),
        Some("OpenBao answered 503 sealed after 2 of 3 keys")
    );
    assert!(!recorded.contains_key("vault.config"));

    let not_run: Vec<_> = reporter
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::PhaseFinished {
                phase,
                outcome: PhaseOutcome::NotRun { reason },
            } => Some((phase, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        not_run,
        [
            (
                "eso".to_string(),
                "depends on failed phase vault".to_string()
            ),
            (
                "apps".to_string(),
                "depends on phase eso, which did not finish".to_string()
            ),
        ]
    );

    // Fixed: the rerun resumes at the failed step.
    let fixed = FakeExecutor::new();
    run_with(&settings(), &phases, &fake, &fixed)
        .await
        .0
        .unwrap();
    assert_eq!(
        fixed.applies(),
        ["vault/unseal", "vault/config", "eso/store", "apps/seed"]
    );
    assert_eq!(
        records(&fake)["vault.unseal"].attempts,
        2,
        "attempts since the last success"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_phases_run_at_the_same_time() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = vec![
        phase("a", &[], vec![once_step("x")]),
        phase("b", &[], vec![once_step("x")]),
    ];
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    for id in ["a/x", "b/x"] {
        let barrier = barrier.clone();
        executor.script(id, move |_| {
            let barrier = barrier.clone();
            async move {
                // Both steps must be inside apply at once, or this times out.
                tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                    .await
                    .map_err(|_| StepError::Failed("the other phase never ran alongside".into()))?;
                Ok(Applied::Changed("met".into()))
            }
        });
    }
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();

    // With one job they would never meet.
    let fake = FakeCluster::new();
    let serial = FakeExecutor::new();
    serial.script("a/x", |_| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Applied::Changed("slow".into()))
    });
    let (_, reporter) = run_with(
        &RunSettings {
            jobs: 1,
            ..settings()
        },
        &phases,
        &fake,
        &serial,
    )
    .await;
    let order: Vec<String> = reporter
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepStarted { step, .. } => Some(format!("start {step}")),
            Event::StepFinished { step, .. } => Some(format!("end {step}")),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["start a/x", "end a/x", "start b/x", "end b/x"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_stops_the_run_naming_the_holder() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    let now = crate::engine::clock::micro_time(chrono::Utc::now());
    let mut lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    lease["spec"] = json!({"holderIdentity": "alice@laptop pid=42 run=deadbeef", "leaseDurationSeconds": 30,
                           "acquireTime": now, "renewTime": now});
    fake.insert(lease);

    let before = fake.mutating_calls().len();
    let (result, _) = run_with(
        &RunSettings {
            selection: Selection {
                force: true,
                ..Default::default()
            },
            ..settings()
        },
        &phases(),
        &fake,
        &executor,
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("held by `alice@laptop pid=42 run=deadbeef` since 20"),
        "{err}"
    );
    assert_eq!(fake.mutating_calls().len(), before, "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_is_taken_over_with_a_warning() {
    let fake = FakeCluster::new();
    fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    let old = crate::engine::clock::micro_time(chrono::Utc::now() - chrono::Duration::seconds(300));
    fake.insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LOCK_NAME, "namespace": NS},
        "spec": {"holderIdentity": "killed run", "leaseDurationSeconds": 30, "acquireTime": old, "renewTime": old}}));
    let executor = FakeExecutor::new();
    let (result, reporter) = run_with(&settings(), &phases(), &fake, &executor).await;
    result.unwrap();
    assert_eq!(executor.applies().len(), 3);
    let warning = reporter.events().into_iter().find_map(|e| match e {
        Event::Warning { message } => Some(message),
        _ => None,
    });
    assert!(warning.unwrap().starts_with(
        "took over lease bringup/bringup-lock from `killed run`, which stopped renewing it at "
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_clusters_checkpoint_stops_the_run_before_any_step() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    let mut cm = fake
        .object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME)
        .unwrap();
    cm["data"]["cluster"] = json!("some-other-uid");
    fake.insert(cm);

    let fresh = FakeExecutor::new();
    let (result, _) = run_with(
        &RunSettings {
            selection: Selection {
                force: true,
                ..Default::default()
            },
            ..settings()
        },
        &phases(),
        &fake,
        &fresh,
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        "checkpoint bringup/bringup-state was written for cluster some-other-uid, but this cluster is fake-cluster-uid; check --context, or use another --state-namespace"
    );
    assert!(fresh.calls().is_empty());
    let lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    assert!(
        lease["spec"].get("holderIdentity").is_none(),
        "the lock is given back"
    );

    let plan_err = plan(
        &settings(),
        &phases(),
        Arc::new(fake.read_only_view()),
        fresh,
        sink().0,
    )
    .await
    .unwrap_err();
    assert_eq!(plan_err.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflicting_checkpoint_write_rereads_and_merges() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = phases();
    let intruder = fake.clone();
    // While gitea/token runs, someone else writes the checkpoint (a key of their own).
    executor.script("gitea/token", move |_| {
        let intruder = intruder.clone();
        async move {
            let mut cm = intruder.object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME).unwrap();
            cm["data"]["other.step"] = json!("{\"status\":\"done\",\"fingerprint\":\"f\",\"started\":null,\"finished\":null,\"attempts\":1,\"error\":null}");
            intruder.insert(cm);
            Ok(Applied::Changed("made".into()))
        }
    });
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();
    let recorded = records(&fake);
    assert_eq!(
        recorded["gitea.token"].status,
        RecordStatus::Done,
        "our write landed after the conflict"
    );
    assert_eq!(recorded["shared.seed"].status, RecordStatus::Done);
    assert!(
        recorded.contains_key("other.step"),
        "their key survived the merge"
    );
    let conflicts = fake
        .calls()
        .iter()
        .filter(|c| c.verb == "get" && c.what.starts_with("ConfigMap"))
        .count();
    assert_eq!(
        conflicts, 2,
        "the initial read and one re-read after the 409"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_makes_no_mutating_call_and_reports_states() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = phases();

    let report = plan(
        &settings(),
        &phases,
        Arc::new(fake.read_only_view()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap();
    assert!(report.rows.iter().all(|r| r.state == StepState::Pending));
    assert_eq!(
        report.summary.to_string(),
        "Plan: 3 to run, 0 done, 0 changed."
    );

    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();

    let before = fake.calls().len();
    // Given a writable cluster, plan still cannot write: it wraps it read-only itself.
    let report = plan(
        &RunSettings {
            probe: true,
            ..settings()
        },
        &phases,
        Arc::new(fake.clone()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap();
    assert!(report.rows.iter().all(|r| r.state == StepState::Done));
    assert_eq!(
        report.summary.to_string(),
        "Plan: 0 to run, 3 done, 0 changed.",
        "the ensure step's probe found it in place: done, not `to check`"
    );
    assert_eq!(
        report.rows[0].detail,
        "probed on every run; probe: done (present)"
    );
    assert!(
        fake.calls()[before..]
            .iter()
            .all(|c| matches!(c.verb, "get" | "identity")),
        "{:?}",
        &fake.calls()[before..]
    );
    assert!(executor.applies().len() == 3, "plan never applies");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_canary_never_leaves_the_redactor() {
    const CANARY: &str = "canary-5ecret-Vx93";
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let redactor = Redactor::new();
    let registering = redactor.clone();
    executor.script("shared/seed", move |_| {
        let registering = registering.clone();
        async move {
            registering.register(CANARY);
            Err(StepError::Failed(format!(
                "gitea refused password {CANARY}"
            )))
        }
    });
    let reporter = MemoryReporter::new();
    let events = EventSink::new(reporter.clone(), redactor.clone());
    let err = run(
        &settings(),
        &phases(),
        Arc::new(fake.clone()),
        executor.clone(),
        events,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();

    assert!(!err.to_string().contains(CANARY), "{err}");
    assert!(
        err.to_string()
            .contains("gitea refused password [redacted]")
    );
    let json = reporter.json();
    assert!(!json.contains(CANARY));
    assert!(json.contains("[redacted]"));
    let checkpoint = fake
        .object(&TypeRef::config_map(), Some(NS), CHECKPOINT_NAME)
        .unwrap()
        .to_string();
    assert!(!checkpoint.contains(CANARY), "{checkpoint}");
    use base64::Engine as _;
    assert!(!checkpoint.contains(&base64::engine::general_purpose::STANDARD.encode(CANARY)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_confirmation_changes_nothing() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let asked = Arc::new(std::sync::Mutex::new(Vec::<Confirmation>::new()));
    let log = asked.clone();
    let settings = RunSettings {
        confirm: Some(Arc::new(move |c: &Confirmation| {
            log.lock().unwrap().push(c.clone());
            false
        })),
        ..settings()
    };
    let (result, _) = run_with(&settings, &phases(), &fake, &executor).await;
    let err = result.unwrap_err();
    assert!(matches!(err, EngineError::Declined));
    assert_eq!(err.exit_code(), 130);
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].context.as_str(), asked[0].server.as_str()),
        ("fake", "https://fake.invalid")
    );
    assert_eq!(
        asked[0].plan.to_string(),
        "Plan: 3 to run, 0 done, 0 changed."
    );
    assert!(executor.calls().is_empty());
    assert_eq!(
        fake.mutating_calls(),
        [call("create", &format!("{NS}/{LOCK_NAME}"))],
        "only the failed lease create, before the namespace existed"
    );
    assert!(fake.object(&TypeRef::namespace(), None, NS).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn confirmation_is_asked_once_and_not_on_a_no_op_rerun() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let settings = RunSettings {
        confirm: Some(Arc::new(move |_: &Confirmation| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            true
        })),
        ..settings()
    };
    run_with(&settings, &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    run_with(&settings, &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "nothing to change, nothing to ask"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_without_an_answer_fails_before_any_change() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = vec![phase(
        "gitea",
        &[],
        vec![
            once_step("token"),
            prompt_step("admin", "gitea_admin_password"),
        ],
    )];
    let (result, _) = run_with(&settings(), &phases, &fake, &executor).await;
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .contains("step gitea/admin needs --set gitea_admin_password=..."),
        "{err}"
    );
    assert!(executor.calls().is_empty());
    assert!(
        fake.object(&TypeRef::namespace(), None, NS).is_none(),
        "not even the state namespace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_and_counted() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    executor.script("gitea/token", |attempt| async move {
        if attempt < 3 {
            Err(StepError::Transient("502 bad gateway".into()))
        } else {
            Ok(Applied::Changed("made".into()))
        }
    });
    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(records(&fake)["gitea.token"].attempts, 3);

    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    executor.script("gitea/token", |_| async {
        Err(StepError::Transient("502 bad gateway".into()))
    });
    let err = run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap_err();
    assert_eq!(
        executor
            .applies()
            .iter()
            .filter(|a| *a == "gitea/token")
            .count(),
        4,
        "one try and three retries"
    );
    assert!(
        err.to_string()
            .contains("502 bad gateway (after 4 attempts)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn phase_selection_checks_dependencies_and_force_reruns() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let only_gitea = RunSettings {
        selection: Selection {
            phases: vec!["gitea".into()],
            ..Default::default()
        },
        ..settings()
    };
    let err = run_with(&only_gitea, &phases(), &fake, &executor)
        .await
        .0
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--ignore-dependencies"), "{err}");
    assert!(executor.calls().is_empty());

    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    let before = executor.applies().len();
    run_with(&only_gitea, &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(executor.applies().len(), before, "done once-step skipped");

    let forced = RunSettings {
        selection: Selection {
            force: true,
            ..only_gitea.selection.clone()
        },
        ..settings()
    };
    run_with(&forced, &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(executor.applies()[before..], ["gitea/token"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_lets_the_running_step_finish_and_releases_the_lock() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    executor.script("shared/seed", move |_| {
        let trigger = trigger.clone();
        async move {
            trigger.cancel();
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Applied::Changed("finished anyway".into()))
        }
    });
    let (events, _) = sink();
    let err = run(
        &settings(),
        &phases(),
        Arc::new(fake.clone()),
        executor.clone(),
        events,
        cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 130);
    assert!(err.summary().unwrap().interrupted);
    assert_eq!(executor.applies(), ["shared/secrets", "shared/seed"]);
    assert_eq!(
        records(&fake)["shared.seed"].status,
        RecordStatus::Done,
        "the running step finished and was recorded"
    );
    assert!(!records(&fake).contains_key("gitea.token"));
    let lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_wait_at_once_and_leaves_it_to_the_next_run() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // `shared/secrets` is a wait: it would hold the run until its 30-minute timeout.
    executor.script("shared/secrets", move |_| {
        trigger.cancel();
        std::future::pending()
    });
    let (events, _) = sink();
    let stopped = tokio::time::timeout(
        Duration::from_secs(60),
        run(
            &settings(),
            &phases(),
            Arc::new(fake.clone()),
            executor.clone(),
            events,
            cancel,
        ),
    )
    .await
    .expect("the run stopped without waiting for the wait step");
    let err = stopped.unwrap_err();
    assert_eq!(err.exit_code(), 130);
    assert!(err.summary().unwrap().interrupted);
    assert_eq!(
        executor.applies(),
        ["shared/secrets"],
        "nothing else started"
    );
    assert_eq!(
        records(&fake)["shared.secrets"].status,
        RecordStatus::Running,
        "left `running`: the next run waits again"
    );
    let lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn losing_the_lock_stops_after_the_current_step() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let thief = fake.clone();
    executor.script("shared/seed", move |_| {
        let thief = thief.clone();
        async move {
            let mut lease = thief
                .object(&TypeRef::lease(), Some(NS), LOCK_NAME)
                .unwrap();
            lease["spec"]["holderIdentity"] = json!("bob@desk pid=9 run=0000beef");
            thief.insert(lease);
            // Wait until a renewal ran into the thief (its conflict makes it re-read the Lease).
            let seen = thief.calls().len();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !thief.calls()[seen..]
                .iter()
                .any(|c| c.verb == "get" && c.what.starts_with("Lease"))
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no renewal noticed the new holder"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Applied::Changed("done".into()))
        }
    });
    let settings = RunSettings {
        lock_duration: Duration::from_millis(1500),
        ..settings()
    };
    let err = run_with(&settings, &phases(), &fake, &executor)
        .await
        .0
        .unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert!(
        err.to_string()
            .contains("lost lease bringup/bringup-lock to `bob@desk pid=9 run=0000beef`"),
        "{err}"
    );
    assert_eq!(executor.applies(), ["shared/secrets", "shared/seed"]);
    let lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    assert_eq!(
        lease["spec"]["holderIdentity"], "bob@desk pid=9 run=0000beef",
        "not released from under its new holder"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_drift_with_exit_1() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    executor.probe_answer(
        "gitea/token",
        Probe::Unknown("a once-step without skip_if".into()),
    );
    let rows = verify(
        &settings(),
        &phases(),
        Arc::new(fake.read_only_view()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2].probe,
        Some(crate::engine::events::Finding::Unknown),
        "unknown is not drift"
    );

    executor.forget("shared/secrets");
    let err = verify(
        &settings(),
        &phases(),
        Arc::new(fake.read_only_view()),
        executor.clone(),
        sink().0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        "1 of 3 probed steps found drift; run `bringup run` to converge"
    );

    // The next run repairs it: the ensure step finds the drift and applies.
    let before = executor.applies().len();
    run_with(&settings(), &phases(), &fake, &executor)
        .await
        .0
        .unwrap();
    assert_eq!(executor.applies()[before..], ["shared/secrets"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reset_and_unlock() {
    let fake = FakeCluster::new();
    let executor = FakeExecutor::new();
    let phases = phases();
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();
    put_record(
        &fake,
        "gone.step",
        json!({"status": "done", "fingerprint": "f", "started": null, "finished": null, "attempts": 1, "error": null}),
    );

    let before = fake.mutating_calls().len();
    let rows = status(&settings(), &phases, Arc::new(fake.clone()), sink().0)
        .await
        .unwrap();
    assert_eq!(fake.mutating_calls().len(), before, "status writes nothing");
    assert_eq!(
        rows.iter()
            .map(|r| (r.step.as_str(), r.state, r.defined))
            .collect::<Vec<_>>(),
        [
            ("shared/secrets", StepState::Done, true),
            ("shared/seed", StepState::Done, true),
            ("gitea/token", StepState::Done, true),
            ("gone/step", StepState::Done, false),
        ]
    );

    let only_gitea = RunSettings {
        selection: Selection {
            phases: vec!["gitea".into()],
            ..Default::default()
        },
        ..settings()
    };
    let removed = reset(
        &only_gitea,
        &phases,
        Arc::new(fake.clone()),
        sink().0,
        ResetScope::Selection,
    )
    .await
    .unwrap();
    assert_eq!(removed, ["gitea/token"]);
    assert!(!records(&fake).contains_key("gitea.token"));
    assert!(records(&fake).contains_key("shared.seed"));

    let removed = reset(
        &settings(),
        &phases,
        Arc::new(fake.clone()),
        sink().0,
        ResetScope::All,
    )
    .await
    .unwrap();
    assert_eq!(removed.len(), 3);
    assert!(records(&fake).is_empty());

    let now = crate::engine::clock::micro_time(chrono::Utc::now());
    let mut lease = fake.object(&TypeRef::lease(), Some(NS), LOCK_NAME).unwrap();
    lease["spec"] = json!({"holderIdentity": "alice", "leaseDurationSeconds": 30, "acquireTime": now, "renewTime": now});
    fake.insert(lease);
    let holder = unlock(&settings(), Arc::new(fake.clone()), sink().0)
        .await
        .unwrap();
    assert_eq!(holder.unwrap().identity, "alice");
    run_with(&settings(), &phases, &fake, &executor)
        .await
        .0
        .unwrap();
}

/// A probe that writes: the bug plan must refuse loudly.
struct WritingProbe;

#[async_trait::async_trait]
impl crate::engine::Executor for WritingProbe {
    async fn probe(&self, ctx: &crate::engine::ExecContext<'_>) -> Result<Probe, StepError> {
        ctx.cluster
            .create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "oops"}}))
            .await?;
        Ok(Probe::Done("wrote".into()))
    }
    async fn apply(&self, _: &crate::engine::ExecContext<'_>) -> Result<Applied, StepError> {
        unreachable!("plan never applies")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_that_writes_during_plan_fails_loudly_and_writes_nothing() {
    let fake = FakeCluster::new();
    let settings = RunSettings {
        probe: true,
        ..settings()
    };
    let err = plan(
        &settings,
        &phases(),
        Arc::new(fake.clone()),
        Arc::new(WritingProbe),
        sink().0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        "bug: the probe of step shared/secrets attempted `create Namespace oops` during a read-only command; please report it"
    );
    assert!(fake.mutating_calls().is_empty());
    assert!(fake.object(&TypeRef::namespace(), None, "oops").is_none());
}
