//! Fault injection is reproducible for a seed, and the audit log records every request
//! with its kube verb and mutating classification; the CLI starts, dumps and stops.

mod common;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const FAULTY: &str = "namespaces: [bringup]\nfaults:\n  seed: 7\n  rules:\n    - { verbs: [patch], resource: configmaps, namespace: bringup, error: \"500\", rate: 0.5 }\n    - { verbs: [get], resource: configmaps, name: forbidden, error: \"403\" }\n    - { verbs: [get], resource: configmaps, name: busy, error: \"429\" }\n";

/// Sends 40 patches and returns which ones failed with 500.
async fn failure_pattern(dir: &std::path::Path) -> Vec<bool> {
    let sandbox = common::start(common::cluster_file(dir, FAULTY), dir).await;
    let client = common::client(&sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "bringup");
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    cms.create(&PostParams::default(), &c)
        .await
        .expect("create");
    let mut pattern = Vec::new();
    for i in 0..40 {
        let r = cms
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"i": i.to_string()}})),
            )
            .await;
        match r {
            Ok(_) => pattern.push(false),
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
                pattern.push(true);
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    let forbidden = cms.get("forbidden").await.expect_err("403");
    assert!(
        matches!(&forbidden, kube::Error::Api(s) if s.code == 403 && s.reason == "Forbidden"),
        "{forbidden:?}"
    );
    let resp = reqwest::get(format!(
        "{}/api/v1/namespaces/bringup/configmaps/busy",
        sandbox.url()
    ))
    .await
    .expect("get");
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let audit = bringup_sandbox::audit::read(sandbox.audit_path());
    let injected = audit
        .iter()
        .filter(|e| e.fault.as_deref() == Some("500"))
        .count();
    assert_eq!(injected, pattern.iter().filter(|p| **p).count());
    sandbox.shutdown().await;
    pattern
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_injects_the_same_faults() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let first = failure_pattern(a.path()).await;
    let second = failure_pattern(b.path()).await;
    assert_eq!(first, second);
    let failures = first.iter().filter(|f| **f).count();
    assert!(
        (8..=32).contains(&failures),
        "rate 0.5 injected {failures} of 40"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_verbs_and_mutations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "bringup");
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    cms.create(&PostParams::default(), &c)
        .await
        .expect("create");
    cms.get("c").await.expect("get");
    cms.list(&Default::default()).await.expect("list");
    cms.patch("c", &PatchParams::apply("t"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}))).await.expect("apply");
    let exec = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/namespaces/vault/pods/vault-0/exec?command=vault&command=status&stdout=true",
            sandbox.url()
        ))
        .send()
        .await
        .expect("exec");
    // A plain POST is no WebSocket upgrade: refused before anything runs, yet audited.
    assert_eq!(exec.status(), 400);
    let entries = bringup_sandbox::audit::read(sandbox.audit_path());
    let verbs: Vec<&str> = entries
        .iter()
        .filter(|e| e.resource.as_deref() == Some("configmaps"))
        .map(|e| e.verb.as_str())
        .collect();
    assert_eq!(verbs, vec!["create", "get", "list", "patch"]);
    assert_eq!(entries.iter().filter(|e| e.is_mutating()).count(), 2);
    let exec_entry = entries.iter().find(|e| e.is_exec()).expect("exec audited");
    assert_eq!(
        exec_entry.command.as_deref(),
        Some(&["vault".to_owned(), "status".to_owned()][..])
    );
    assert!(!exec_entry.is_mutating());
    sandbox.shutdown().await;
}

#[test]
fn the_cli_starts_detached_dumps_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sdir = dir.path().join("s");
    let bin = env!("CARGO_BIN_EXE_bringup-sandbox");
    let cluster = common::cluster("default.yaml");
    let up = std::process::Command::new(bin)
        .args(["up", "--detach", "--cluster"])
        .arg(&cluster)
        .arg("--dir")
        .arg(&sdir)
        .output()
        .expect("up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(sdir.join("kubeconfig").exists());
    let pid: u32 = std::fs::read_to_string(sdir.join("sandbox.pid"))
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    let dump = std::process::Command::new(bin)
        .args(["dump", "--dir"])
        .arg(&sdir)
        .output()
        .expect("dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains("kind: Pod")
            && text.contains("name: vault-0")
            && text.contains("kind: Namespace"),
        "{text}"
    );
    let down = std::process::Command::new(bin)
        .args(["down", "--dir"])
        .arg(&sdir)
        .output()
        .expect("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "the sandbox process is gone"
    );
    assert!(!sdir.join("kubeconfig").exists());
}
