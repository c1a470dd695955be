//! The OpenBao bring-up (issue 4's "Must show"), end to end: the real `bringup` binary runs the
//! default phases (`phases/` with `phases/sandbox-values.yaml`) against the sandbox's real
//! OpenBao servers. Writes to OpenBao are counted twice: by OpenBao's own audit log (every
//! authenticated request) and by bringup's request log at `-vv` (every request, including the
//! unauthenticated `sys/init` and `sys/unseal`, which OpenBao does not audit).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{Env, VAULT_PHASE_FILES, assert_exit, copy_phase_files, repo, stderr, stdout};
use serde_json::{Value, json};

const CUSTODY: (&str, &str) = ("vault", "vault-init");

fn cluster(name: &str) -> PathBuf {
    repo().join("tests/sandbox/clusters").join(name)
}

fn env(cluster_file: &str) -> Env {
    Env::with_phase_files(&cluster(cluster_file), VAULT_PHASE_FILES)
}

/// `bringup COMMAND` with the sandbox's values: the API server OpenBao's Kubernetes auth
/// reaches, and with several servers the raft leader the followers join.
fn bringup_args(env: &Env, command: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    args.push("--values".into());
    args.push(
        repo()
            .join("phases/sandbox-values.yaml")
            .display()
            .to_string(),
    );
    args.push("--set".into());
    args.push(format!("vault.kubernetes_host={}", env.sandbox.url()));
    let openbao = env
        .sandbox
        .openbao()
        .expect("the cluster file runs OpenBao");
    if openbao.count() > 1 {
        args.push("--set".into());
        args.push(format!(
            "vault.raft_leader_api_addr={}",
            openbao.api_addr(0)
        ));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn bringup(env: &Env, command: &[&str], extra: &[&str]) -> Output {
    let args = bringup_args(env, command, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args)
}

fn run(env: &Env, extra: &[&str]) -> Output {
    bringup(env, &["run", "--yes"], extra)
}

fn addr(env: &Env, index: usize) -> String {
    env.sandbox.openbao().unwrap().api_addr(index)
}

/// One OpenBao API call straight to server `index` (not through bringup): status and body.
fn bao(
    env: &Env,
    index: usize,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/v1/{path}", addr(env, index));
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut request = reqwest::Client::new().request(method, url);
            if let Some(token) = token {
                request = request.header("X-Vault-Token", token);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("OpenBao answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
}

fn seal_status(env: &Env, index: usize) -> Value {
    bao(env, index, "GET", "sys/seal-status", None, None).1
}

fn custody(env: &Env) -> Option<BTreeMap<String, String>> {
    env.secret(CUSTODY.0, CUSTODY.1)
}

fn custody_object(env: &Env) -> Option<Value> {
    env.object("v1", "Secret", Some(CUSTODY.0), CUSTODY.1)
}

fn root_token(env: &Env) -> String {
    custody(env).expect("the custody Secret exists")["root_token"].clone()
}

/// The unseal keys and the root token: what must never leak.
fn key_material(env: &Env) -> Vec<String> {
    let stored = custody(env).expect("the custody Secret exists");
    let values: Vec<String> = stored
        .iter()
        .filter(|(k, _)| k.starts_with("unseal_key_") || *k == "root_token")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(values.len(), 6, "5 shares and the root token: {stored:?}");
    values
}

/// OpenBao's audit log entries (request lines only) from `skip` on.
fn openbao_requests(env: &Env, skip: usize) -> Vec<Value> {
    let path = env.sandbox.openbao().unwrap().audit_log_path();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "request")
        .skip(skip)
        .collect()
}

fn openbao_request_count(env: &Env) -> usize {
    openbao_requests(env, 0).len()
}

/// Requests bringup made with the root token that change something, from OpenBao's log. The
/// sandbox's External Secrets controller logs in on its own (without the root token).
fn root_writes(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .filter(|e| e["auth"]["display_name"] == "root")
        .filter(|e| !matches!(e["request"]["operation"].as_str(), Some("read" | "list")))
        .map(|e| format!("{} {}", e["request"]["operation"], e["request"]["path"]))
        .collect()
}

fn root_reads(requests: &[Value]) -> usize {
    requests
        .iter()
        .filter(|e| e["auth"]["display_name"] == "root")
        .filter(|e| matches!(e["request"]["operation"].as_str(), Some("read" | "list")))
        .count()
}

/// bringup's own log of its OpenBao requests at `-vv`: (method, path) of each.
fn logged_requests(stderr: &str) -> Vec<(String, String)> {
    let field = |line: &str, name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    stderr
        .lines()
        .filter(|l| l.contains("openbao request"))
        .map(|l| (field(l, "method"), field(l, "path")))
        .collect()
}

fn logged_writes(stderr: &str) -> Vec<(String, String)> {
    logged_requests(stderr)
        .into_iter()
        .filter(|(method, _)| method != "GET")
        .collect()
}

/// Mutating requests to the API server from `skip` on, the store controller's own left out.
fn cluster_writes(env: &Env, skip: usize) -> Vec<String> {
    env.audit()
        .into_iter()
        .skip(skip)
        .filter(|e| e.is_mutating())
        .filter(|e| e.user_agent != bringup_sandbox::controllers::USER_AGENT)
        .map(|e| format!("{} {}", e.verb, e.path))
        .collect()
}

fn store_ready(env: &Env) -> bool {
    env.object(
        "external-secrets.io/v1",
        "ClusterSecretStore",
        None,
        "vault-backend",
    )
    .and_then(|store| {
        store["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .map(|c| c["status"] == "True")
    })
    .unwrap_or(false)
}

/// A service-account token from the sandbox's TokenRequest API, as a pod would hold.
fn service_account_token(env: &Env, namespace: &str, name: &str) -> String {
    let url = format!(
        "{}/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        env.sandbox.url()
    );
    let bearer = env.sandbox.state().token.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let answer: Value = reqwest::Client::new()
                .post(url)
                .bearer_auth(bearer)
                .json(&json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": { "expirationSeconds": 600 },
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["status"]["token"].as_str().unwrap().to_owned()
        })
}

#[test]
fn one_run_initialises_unseals_configures_and_the_store_turns_ready() {
    let env = env("default.yaml");
    let before = seal_status(&env, 0);
    assert_eq!(before["initialized"], false);
    assert_eq!(before["sealed"], true);

    let output = run(&env, &[]);
    assert_exit(&output, 0);

    let stored = custody(&env).expect("the keys are in Secret vault/vault-init");
    for share in 0..5 {
        assert!(
            !stored[&format!("unseal_key_{share}")].is_empty(),
            "{stored:?}"
        );
    }
    let root = stored["root_token"].clone();
    assert!(!root.is_empty());
    let after = seal_status(&env, 0);
    assert_eq!(after["initialized"], true);
    assert_eq!(after["sealed"], false);
    assert_eq!(
        (after["t"].as_u64(), after["n"].as_u64()),
        (Some(3), Some(5))
    );

    let read = |path: &str| {
        let (status, body) = bao(&env, 0, "GET", path, Some(&root), None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let mounts = read("sys/mounts");
    assert_eq!(mounts["data"]["secret/"]["type"], "kv");
    assert_eq!(mounts["data"]["secret/"]["options"]["version"], "2");
    assert_eq!(
        read("sys/auth")["data"]["kubernetes/"]["type"],
        "kubernetes"
    );
    let policy = read("sys/policies/acl/eso-read");
    assert!(
        policy["data"]["policy"]
            .as_str()
            .unwrap()
            .contains("path \"secret/data/*\""),
        "{policy}"
    );
    let config = read("auth/kubernetes/config");
    assert_eq!(config["data"]["kubernetes_host"], env.sandbox.url());
    assert_eq!(
        config["data"]["kubernetes_ca_cert"],
        bringup_sandbox::tokens::CLUSTER_CA_PEM,
        "the CA came from ConfigMap vault/kube-root-ca.crt"
    );
    let role = read("auth/kubernetes/role/external-secrets");
    assert_eq!(
        role["data"]["bound_service_account_names"],
        json!(["external-secrets"])
    );
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        json!(["external-secrets"])
    );
    assert_eq!(role["data"]["token_policies"], json!(["eso-read"]));
    assert_eq!(role["data"]["token_ttl"], 3600);
    let kv = |path: &str| read(&format!("secret/data/{path}"))["data"]["data"].clone();
    let gitea = kv("sso/gitea");
    assert_eq!(gitea["client_id"], "gitea");
    assert_eq!(gitea["client_secret"].as_str().unwrap().len(), 32);
    assert_eq!(
        kv("sso/client-secrets")["authentik_api_token"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(kv("harbor/admin")["password"].as_str().unwrap().len(), 32);

    // A pod of External Secrets logs in through Kubernetes auth with the role (OpenBao asks
    // the sandbox's TokenReview), and the token it gets reads KV through eso-read.
    let jwt = service_account_token(&env, "external-secrets", "external-secrets");
    let (status, login) = bao(
        &env,
        0,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({ "role": "external-secrets", "jwt": jwt })),
    );
    assert_eq!(status, 200, "{login}");
    assert!(
        login["auth"]["policies"]
            .as_array()
            .unwrap()
            .contains(&json!("eso-read")),
        "{login}"
    );
    let eso_token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, secret) = bao(
        &env,
        0,
        "GET",
        "secret/data/sso/gitea",
        Some(&eso_token),
        None,
    );
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["data"]["data"]["client_id"], "gitea");
    let (status, _) = bao(&env, 0, "GET", "sys/mounts", Some(&eso_token), None);
    assert_eq!(status, 403, "eso-read reads KV and nothing else");
    let stranger = service_account_token(&env, "external-secrets", "default");
    let (status, _) = bao(
        &env,
        0,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({ "role": "external-secrets", "jwt": stranger })),
    );
    assert_eq!(status, 403, "the role is bound to one service account");

    assert!(
        store_ready(&env),
        "ClusterSecretStore vault-backend is Ready through the sandbox's real login"
    );
}

#[test]
fn a_second_run_writes_nothing_to_openbao_and_nothing_to_the_cluster_but_its_lease() {
    let env = env("default.yaml");
    assert_exit(&run(&env, &[]), 0);
    let custody_before = custody_object(&env);
    let versions = |env: &Env| {
        let root = root_token(env);
        ["sso/gitea", "sso/client-secrets", "harbor/admin"].map(|path| {
            bao(
                env,
                0,
                "GET",
                &format!("secret/metadata/{path}"),
                Some(&root),
                None,
            )
            .1["data"]["current_version"]
                .clone()
        })
    };
    let versions_before = versions(&env);
    let cluster_before = env.audit().len();
    let openbao_before = openbao_request_count(&env);

    let second = run(&env, &["-vv"]);
    assert_exit(&second, 0);

    let writes = cluster_writes(&env, cluster_before);
    assert!(
        writes.iter().all(|w| w.contains("/leases/")),
        "a rerun writes only its Lease: {writes:#?}"
    );
    assert_eq!(
        writes.len(),
        2,
        "take the Lease and give it back: {writes:#?}"
    );

    let requests = openbao_requests(&env, openbao_before);
    assert_eq!(root_writes(&requests), Vec::<String>::new());
    assert!(
        root_reads(&requests) >= 5,
        "OpenBao's log saw bringup's reads (the count is not vacuous): {requests:#?}"
    );
    let log = stderr(&second);
    assert_eq!(logged_writes(&log), vec![], "bringup sent only GETs");
    assert!(logged_requests(&log).len() >= 8, "{log}");
    assert_eq!(custody_object(&env), custody_before);
    assert_eq!(
        versions(&env),
        versions_before,
        "no KV path got a new version"
    );
}

#[test]
fn a_restarted_openbao_is_unsealed_by_the_next_run_and_nothing_else_is_done() {
    let env = env("default.yaml");
    assert_exit(&run(&env, &[]), 0);
    env.sandbox.restart_openbao(0).expect("OpenBao restarts");
    assert_eq!(seal_status(&env, 0)["sealed"], true);
    let custody_before = custody_object(&env);
    let cluster_before = env.audit().len();
    let openbao_before = openbao_request_count(&env);

    let output = run(&env, &["-vv"]);
    assert_exit(&output, 0);

    assert_eq!(seal_status(&env, 0)["sealed"], false);
    let log = stderr(&output);
    assert_eq!(
        logged_writes(&log),
        vec![("PUT".to_string(), "sys/unseal".to_string()); 3],
        "three keys of the threshold, nothing else"
    );
    let summary = stdout(&output);
    assert!(summary.contains("vault/unseal done"), "{summary}");
    for unchanged in ["vault/init", "vault/configure", "vault/seed"] {
        assert!(
            summary.contains(&format!("{unchanged} unchanged")),
            "{unchanged}: {summary}"
        );
    }
    assert_eq!(
        root_writes(&openbao_requests(&env, openbao_before)),
        Vec::<String>::new()
    );
    assert_eq!(custody_object(&env), custody_before);
    let writes = cluster_writes(&env, cluster_before);
    assert!(
        writes
            .iter()
            .all(|w| w.contains("/leases/") || w.contains("/configmaps/bringup-state")),
        "only the Lease and the checkpoint: {writes:#?}"
    );
}

#[test]
fn three_raft_servers_are_all_unsealed_and_joined() {
    let env = env("ha.yaml");
    for index in 0..3 {
        assert_eq!(seal_status(&env, index)["initialized"], false);
    }
    let output = run(&env, &[]);
    assert_exit(&output, 0);
    for index in 0..3 {
        let status = seal_status(&env, index);
        assert_eq!(status["sealed"], false, "server {index}: {status}");
        assert_eq!(status["initialized"], true, "server {index}: {status}");
    }
    let root = root_token(&env);
    let (status, raft) = bao(
        &env,
        0,
        "GET",
        "sys/storage/raft/configuration",
        Some(&root),
        None,
    );
    assert_eq!(status, 200, "{raft}");
    let mut nodes: Vec<String> = raft["data"]["config"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node_id"].as_str().unwrap().to_owned())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["vault-0", "vault-1", "vault-2"]);
    assert!(store_ready(&env));

    // A rerun finds all three unsealed and writes nothing.
    let again = run(&env, &["-vv"]);
    assert_exit(&again, 0);
    assert_eq!(logged_writes(&stderr(&again)), vec![]);
}

#[test]
fn a_changed_policy_or_role_is_rewritten_on_the_next_run_and_nothing_else() {
    let phases = tempfile::tempdir().unwrap();
    copy_phase_files(VAULT_PHASE_FILES, phases.path());
    let env = Env::from_paths(&cluster("default.yaml"), phases.path());
    assert_exit(&run(&env, &[]), 0);
    let root = root_token(&env);
    let kv_before = bao(&env, 0, "GET", "secret/data/sso/gitea", Some(&root), None).1;

    let file = phases.path().join("20-vault.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = text
        .replace(
            "capabilities = [\"read\"]",
            "capabilities = [\"read\", \"list\"]",
        )
        .replace("ttl: 1h", "ttl: 2h");
    assert_ne!(changed, text);
    std::fs::write(&file, changed).unwrap();
    let openbao_before = openbao_request_count(&env);

    let output = run(&env, &["-vv"]);
    assert_exit(&output, 0);

    let mut writes = logged_writes(&stderr(&output));
    writes.sort();
    assert_eq!(
        writes,
        [
            (
                "POST".to_string(),
                "auth/kubernetes/role/external-secrets".to_string()
            ),
            ("PUT".to_string(), "sys/policies/acl/eso-read".to_string()),
        ],
        "the policy and the role, nothing else"
    );
    let mut audited = root_writes(&openbao_requests(&env, openbao_before));
    audited.sort();
    assert_eq!(
        audited,
        [
            "\"update\" \"auth/kubernetes/role/external-secrets\"",
            "\"update\" \"sys/policies/acl/eso-read\"",
        ]
    );
    let policy = bao(
        &env,
        0,
        "GET",
        "sys/policies/acl/eso-read",
        Some(&root),
        None,
    )
    .1;
    assert!(
        policy["data"]["policy"]
            .as_str()
            .unwrap()
            .contains("\"read\", \"list\""),
        "{policy}"
    );
    let role = bao(
        &env,
        0,
        "GET",
        "auth/kubernetes/role/external-secrets",
        Some(&root),
        None,
    )
    .1;
    assert_eq!(role["data"]["token_ttl"], 7200);
    assert_eq!(
        bao(&env, 0, "GET", "secret/data/sso/gitea", Some(&root), None).1["data"],
        kv_before["data"]
    );
    let third = run(&env, &["-vv"]);
    assert_exit(&third, 0);
    assert_eq!(logged_writes(&stderr(&third)), vec![], "converged again");
}

#[test]
fn wiped_storage_with_keys_stored_stops_with_a_clear_error_and_touches_nothing() {
    let env = env("default.yaml");
    assert_exit(&run(&env, &[]), 0);
    let custody_before = custody_object(&env).unwrap();
    env.sandbox.wipe_openbao(0).expect("OpenBao is wiped");
    let cluster_before = env.audit().len();

    let output = run(&env, &["-vv"]);
    assert_exit(&output, 1);

    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(text.contains("vault/init"), "{text}");
    assert!(
        text.contains("Secret vault/vault-init"),
        "the error names the Secret: {text}"
    );
    assert!(text.contains("wiped"), "the error says why: {text}");
    assert_eq!(
        custody_object(&env).unwrap(),
        custody_before,
        "the keys Secret is byte-identical"
    );
    assert_eq!(seal_status(&env, 0)["initialized"], false, "no re-init");
    assert_eq!(logged_writes(&stderr(&output)), vec![]);
    let writes = cluster_writes(&env, cluster_before);
    assert!(
        writes
            .iter()
            .all(|w| w.contains("/leases/") || w.contains("/configmaps/bringup-state")),
        "{writes:#?}"
    );
}

/// What a kill left behind, and what the next run must do with it.
#[derive(Debug, PartialEq)]
enum AfterKill {
    /// OpenBao uninitialised: the rerun initialises it.
    Uninitialised,
    /// Keys stored: the rerun unseals with them.
    KeysStored,
    /// Initialised with keys nobody holds: what a client killed inside `sys/init` would leave
    /// (OpenBao finishes an init whose client is gone). The init worker exists so that this
    /// never happens; every kill test asserts it does not.
    InitialisedKeysLost,
}

/// How the run is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// SIGKILL to the `bringup` process.
    Process,
    /// SIGKILL to its whole process group, as a closed terminal or a killed job would.
    Group,
}

/// Starts `bringup run`, SIGKILLs it when `when` says so, waits until no process that claimed
/// the custody Secret is left, and returns what was left.
fn kill_run(
    env: &Env,
    kill: Kill,
    when: impl FnMut(&str, Duration) -> bool,
) -> (AfterKill, Vec<String>) {
    let mut seen = start_and_kill(env, kill, when);
    let state_at_kill = (seal_status(env, 0)["initialized"] == true, stored_keys(env));
    wait_for_claimant(env);
    let initialised = seal_status(env, 0)["initialized"] == true;
    let state = match (initialised, stored_keys(env)) {
        (false, false) => AfterKill::Uninitialised,
        (true, true) => AfterKill::KeysStored,
        (true, false) => AfterKill::InitialisedKeysLost,
        (false, true) => panic!("keys stored for an OpenBao that is not initialised: {seen:#?}"),
    };
    seen.push(format!(
        "(test) at the kill: initialised {}, keys stored {}",
        state_at_kill.0, state_at_kill.1
    ));
    (state, seen)
}

/// Starts `bringup run` and SIGKILLs it when `when` says so; returns the lines it printed.
fn start_and_kill(
    env: &Env,
    kill: Kill,
    mut when: impl FnMut(&str, Duration) -> bool,
) -> Vec<String> {
    use std::os::unix::process::CommandExt as _;
    let args = bringup_args(env, &["run", "--yes"], &[]);
    let mut command = env.bringup();
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if matches!(kill, Kill::Group) {
        command.process_group(0);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match lines_rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => {
                let hit = when(&line, started.elapsed());
                seen.push(line);
                if hit {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if when("", started.elapsed()) {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    match kill {
        Kill::Process => {
            let _ = child.kill();
        }
        Kill::Group => {
            let killed = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status()
                .unwrap();
            assert!(killed.success());
        }
    }
    let _ = child.wait();
    let _ = reader.join();
    // What the process wrote before it died but the loop had not read yet.
    seen.extend(lines_rx.try_iter());
    seen
}

fn stored_keys(env: &Env) -> bool {
    custody(env).is_some_and(|c| c.contains_key("unseal_key_0"))
}

/// While the custody Secret is claimed by a live process (the init worker of a killed run),
/// wait for it: that process is the one that stores the keys.
fn wait_for_claimant(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let claim = custody_object(env)
            .and_then(|s| {
                s["metadata"]["annotations"]["bringup.dev/vault-init-claim"]
                    .as_str()
                    .map(str::to_string)
            })
            .filter(|_| !stored_keys(env));
        let Some(claim) = claim else { return };
        let claim: Value = serde_json::from_str(&claim).unwrap();
        let pid = u32::try_from(claim["pid"].as_u64().unwrap()).unwrap();
        if !bringup::engine::lock::process_exists(pid) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the claimant {pid} is still running after 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rerun after a kill ends in the state an uninterrupted run would have, with the keys
/// that were stored (never new ones).
fn rerun_after_kill(env: &Env, state: &AfterKill, seen: &[String]) {
    assert_ne!(
        state,
        &AfterKill::InitialisedKeysLost,
        "OpenBao initialised with keys nobody holds: {seen:#?}"
    );
    let keys_before = custody(env).filter(|c| c.contains_key("unseal_key_0"));
    // The killed run could not release its Lease: the rerun is refused (exit 3) until it
    // expires (BRINGUP_LOCK_DURATION, 2s in tests), as an operator would see.
    let deadline = Instant::now() + Duration::from_secs(20);
    let output = loop {
        let output = run(env, &[]);
        if output.status.code() != Some(3) || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_exit(&output, 0);
    assert_eq!(seal_status(env, 0)["sealed"], false);
    let keys = custody(env).expect("keys stored");
    if let Some(before) = keys_before {
        assert_eq!(keys, before, "stored keys are never replaced");
    }
    assert!(store_ready(env));
}

#[test]
fn killed_before_or_after_the_init_request_the_keys_are_never_lost() {
    // Before `sys/init` is sent (the step has only read its Secret), and right after the keys
    // were stored.
    for (moment, trigger) in [
        ("vault/init started", AfterKill::Uninitialised),
        ("vault/init done", AfterKill::KeysStored),
        ("vault/unseal started", AfterKill::KeysStored),
    ] {
        let env = env("default.yaml");
        let (state, seen) = kill_run(&env, Kill::Process, |line, _| line.contains(moment));
        assert_eq!(state, trigger, "killed at `{moment}`: {seen:#?}");
        rerun_after_kill(&env, &state, &seen);
    }
}

#[test]
fn killed_inside_the_init_request_the_worker_still_stores_the_keys() {
    // `vault/init: initialising` is the worker's last word before `PUT sys/init`, which takes
    // OpenBao one to several seconds on raft (it says `initialized: true` within milliseconds,
    // and answers with the keys only at the end): SIGKILL lands before the request reaches
    // OpenBao and while OpenBao works. The run is gone every time; the keys come anyway, from
    // the worker it started, and the rerun unseals with exactly those.
    let mut outcomes = Vec::new();
    for (delay, kill) in [
        (0, Kill::Process),
        (20, Kill::Group),
        (100, Kill::Process),
        (300, Kill::Group),
        (600, Kill::Process),
    ] {
        let env = env("default.yaml");
        let mut at: Option<Instant> = None;
        let (state, seen) = kill_run(&env, kill, |line, _| {
            if at.is_none() && line.contains("vault/init: initialising") {
                at = Some(Instant::now());
            }
            at.is_some_and(|at| at.elapsed() >= Duration::from_millis(delay))
        });
        assert_eq!(
            state,
            AfterKill::KeysStored,
            "killed {delay}ms into the init request ({kill:?}): {seen:#?}"
        );
        assert!(
            !seen.iter().any(|l| l.contains("vault/init done")),
            "the run died before it saw the step finish (else this proves nothing): {seen:#?}"
        );
        // Inside the window: the run died after the worker's last word before `PUT sys/init`
        // and before the keys were in custody.
        assert!(
            seen.iter().any(|l| l.contains("keys stored false")),
            "killed {delay}ms in, the keys were already stored: {seen:#?}"
        );
        let initialised_at_kill = seen
            .iter()
            .any(|l| l.contains("at the kill: initialised true"));
        rerun_after_kill(&env, &state, &seen);
        outcomes.push((delay, kill, initialised_at_kill));
    }
    eprintln!("(delay ms, kill, OpenBao initialised when the run died): {outcomes:?}");
}

#[test]
fn a_rerun_started_while_the_killed_runs_worker_works_waits_for_its_keys() {
    let env = env("default.yaml");
    let seen = start_and_kill(&env, Kill::Process, |line, _| {
        line.contains("vault/init: initialising")
    });
    assert!(
        !stored_keys(&env),
        "killed before the keys were stored: {seen:#?}"
    );
    // At once: the killed run's Lease is taken over (its process is gone), and its worker is
    // still inside `sys/init`.
    let rerun = run(&env, &[]);
    assert_exit(&rerun, 0);
    let text = stdout(&rerun);
    // The probe sees the claim before it asks OpenBao anything; the apply then waits while the
    // worker lives (on a loaded machine the worker may be done by then).
    assert!(
        text.contains("vault/init: OpenBao is being initialised by process "),
        "the rerun saw the worker's claim: {text}"
    );
    assert!(
        text.lines().any(|l| l.contains("vault/init unchanged")),
        "and then found its keys, sending no sys/init of its own: {text}"
    );
    assert_eq!(seal_status(&env, 0)["sealed"], false);
    assert!(store_ready(&env));
}

#[test]
fn killed_at_spread_moments_the_keys_are_never_lost() {
    // SIGKILL from the start of the run, before, during and after `sys/init`.
    let mut outcomes = Vec::new();
    for delay in [50, 250, 600, 1200, 2500] {
        let env = env("default.yaml");
        let (state, seen) = kill_run(&env, Kill::Process, |_, elapsed| {
            elapsed >= Duration::from_millis(delay)
        });
        rerun_after_kill(&env, &state, &seen);
        outcomes.push((delay, state));
    }
    eprintln!("kill outcomes: {outcomes:?}");
}

#[test]
fn sigterm_during_the_init_request_lets_the_step_store_the_keys() {
    signal_during_the_init_request("-TERM", false);
}

#[test]
fn ctrl_c_at_the_terminal_during_the_init_request_lets_the_step_store_the_keys() {
    // A terminal's Ctrl-C is SIGINT to the whole foreground process group: the run's group,
    // which the init worker is not in.
    signal_during_the_init_request("-INT", true);
}

/// Sends `signal` to the run (or its process group) once its init worker is about to send
/// `sys/init`: the run stops after the step, with the keys stored, and exits 130.
fn signal_during_the_init_request(signal: &str, to_group: bool) {
    use std::os::unix::process::CommandExt as _;
    let env = env("default.yaml");
    let args = bringup_args(&env, &["run", "--yes"], &[]);
    let mut child = env
        .bringup()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines().map_while(Result::ok);
    for line in lines.by_ref() {
        if line.contains("vault/init: initialising") {
            break;
        }
    }
    let target = if to_group {
        format!("-{}", child.id())
    } else {
        child.id().to_string()
    };
    let sent = std::process::Command::new("kill")
        .args([signal, "--", &target])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("vault/init done")),
        "the running step finished: {rest:#?}"
    );
    assert_eq!(seal_status(&env, 0)["initialized"], true);
    assert!(custody(&env).unwrap().contains_key("unseal_key_0"));
    assert_exit(&run(&env, &[]), 0);
    assert_eq!(seal_status(&env, 0)["sealed"], false);
}

#[test]
fn keys_and_root_token_never_appear_in_output_logs_checkpoint_events_or_urls_and_plan_changes_nothing()
 {
    let env = env("default.yaml");

    // plan before anything: every Vault step listed, no write to the cluster or to OpenBao;
    // its probes read OpenBao through port-forwards.
    let plan = bringup(&env, &["plan", "--probe"], &["-vv"]);
    assert_exit(&plan, 0);
    let table = stdout(&plan);
    let line = |table: &str, step: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line(&table, "vault/init")
            .contains("probe: needs work (OpenBao pod vault/vault-0 is not initialised)"),
        "{table}"
    );
    assert!(
        line(&table, "vault/unseal").contains("probe: needs work (sealed: pod vault/vault-0)"),
        "{table}"
    );
    for step in [
        "vault/pods-ready",
        "vault/init",
        "vault/unseal",
        "vault/configure",
        "vault/seed",
        "external-secrets/vault-backend",
    ] {
        assert!(table.contains(step), "{step}: {table}");
    }
    assert_eq!(cluster_writes(&env, 0), Vec::<String>::new());
    assert_eq!(logged_writes(&stderr(&plan)), vec![]);
    assert_eq!(seal_status(&env, 0)["initialized"], false);

    let first = run(&env, &["-vvv", "-o", "json"]);
    assert_exit(&first, 0);
    assert!(
        logged_writes(&stderr(&first)).contains(&("PUT".to_string(), "sys/init".to_string())),
        "the init worker's log reaches the run's stderr, and is scanned below: {}",
        stderr(&first)
    );
    env.sandbox.restart_openbao(0).unwrap();
    // The second run uses the keys (unseal) and the root token (reads).
    let second = run(&env, &["-vvv"]);
    assert_exit(&second, 0);
    let cluster_before = env.audit().len();
    let probe = bringup(&env, &["plan", "--probe"], &["-vv"]);
    assert_exit(&probe, 0);
    let probed = stdout(&probe);
    for step in [
        "vault/init",
        "vault/unseal",
        "vault/configure",
        "vault/seed",
    ] {
        assert!(
            line(&probed, step).contains("probe: done"),
            "{step}: {probed}"
        );
    }
    let verify = bringup(&env, &["verify"], &["-vv"]);
    assert_exit(&verify, 0);
    assert_eq!(logged_writes(&stderr(&verify)), vec![]);
    assert_eq!(cluster_writes(&env, cluster_before), Vec::<String>::new());
    assert_eq!(logged_writes(&stderr(&probe)), vec![]);
    let probe_json = bringup(&env, &["plan", "--probe"], &["-o", "json"]);
    assert_exit(&probe_json, 0);

    let events = stdout(&first);
    assert!(
        events
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "-o json prints JSON events"
    );
    let places = [
        ("first run stdout (JSON events)", events),
        ("first run stderr at -vvv", stderr(&first)),
        ("second run stdout", stdout(&second)),
        ("second run stderr at -vvv", stderr(&second)),
        ("plan --probe", format!("{}{}", probed, stderr(&probe))),
        ("verify", format!("{}{}", stdout(&verify), stderr(&verify))),
        ("plan --probe -o json", stdout(&probe_json)),
        ("checkpoint", env.checkpoint_text()),
        (
            "request URLs in the audit log",
            env.audit()
                .iter()
                .map(|e| format!("{}?{}", e.path, e.query))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    assert!(
        places[1].1.contains("openbao request"),
        "-vvv logs requests"
    );
    use base64::Engine as _;
    for secret in key_material(&env) {
        // As written, and as a Secret body or a traced frame would carry it.
        let forms = [
            secret.clone(),
            base64::engine::general_purpose::STANDARD.encode(&secret),
            hex::encode(&secret),
        ];
        for (place, text) in &places {
            for form in &forms {
                assert!(!text.contains(form), "a key or token leaked into {place}");
            }
        }
    }
}

#[test]
fn the_default_phases_validate_and_external_secrets_follows_vault() {
    let bringup = |args: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("bringup"))
            .args(args)
            .args(["--phases", &repo().join("phases").display().to_string()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let validate = bringup(&["validate"]);
    assert_exit(&validate, 0);
    assert!(stdout(&validate).contains("no problems found"));
    let graph = bringup(&["graph"]);
    assert_exit(&graph, 0);
    assert!(
        stdout(&graph).contains("p_vault --> p_external_secrets"),
        "{}",
        stdout(&graph)
    );
}

#[test]
fn over_https_the_cluster_ca_is_verified_the_token_is_sent_and_openbao_trusts_the_same_ca() {
    // The sandbox serves HTTPS here, as every real API server does: a CA made at start, in the
    // kubeconfig and in `kube-root-ca.crt`, and a bearer token required on every request.
    let env = env("tls.yaml");
    assert!(env.sandbox.url().starts_with("https://"));
    let ca = env.sandbox.state().cluster_ca_pem().to_string();
    assert_ne!(
        ca,
        bringup_sandbox::tokens::CLUSTER_CA_PEM,
        "a CA of its own"
    );

    // A kubeconfig without the CA: the server's certificate cannot be verified, so bringup
    // stops before its first request gets an answer, and changes nothing.
    let kubeconfig = std::fs::read_to_string(env.sandbox.kubeconfig_path()).unwrap();
    let untrusted: String = kubeconfig
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    let untrusted_path = env.sandbox.dir().join("kubeconfig-without-ca");
    std::fs::write(&untrusted_path, untrusted).unwrap();
    let audit_before = env.audit().len();
    let refused = env
        .bringup()
        .env("KUBECONFIG", &untrusted_path)
        .args(bringup_args(&env, &["run", "--yes"], &[]))
        .output()
        .unwrap();
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("invalid peer certificate")
            && stderr(&refused).contains("check `certificate-authority-data` of the context"),
        "names the certificate problem and the fix: {}",
        stderr(&refused)
    );
    assert_eq!(env.audit().len(), audit_before, "no request got through");
    assert_eq!(seal_status(&env, 0)["initialized"], false);

    // With the kubeconfig as written: REST, exec-free port-forwards to OpenBao and the
    // Lease all go over TLS with the token (a request without one is refused here).
    let output = run(&env, &[]);
    assert_exit(&output, 0);
    assert_eq!(seal_status(&env, 0)["sealed"], false);
    let url = format!("{}/api/v1/namespaces", env.sandbox.url());
    let without_token = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                .build()
                .unwrap()
                .get(url)
                .send()
                .await
                .unwrap()
                .status()
        });
    assert_eq!(without_token.as_u16(), 401);

    // OpenBao's Kubernetes auth calls the API server over HTTPS with the CA bringup read from
    // ConfigMap vault/kube-root-ca.crt: the store's real login proves it trusts it.
    let (status, config) = bao(
        &env,
        0,
        "GET",
        "auth/kubernetes/config",
        Some(&root_token(&env)),
        None,
    );
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["data"]["kubernetes_host"], env.sandbox.url());
    assert_eq!(config["data"]["kubernetes_ca_cert"], ca);
    assert!(
        store_ready(&env),
        "the ClusterSecretStore logged in through TokenReview"
    );
}

#[test]
fn with_file_custody_the_worker_writes_the_key_file_and_a_rerun_waits_for_it() {
    // Custody in a 0600 file only (no Secret): the worker writes it, and the claim lives in a
    // file beside it, so a rerun started at once after the kill waits for the keys too.
    let env = env("default.yaml");
    let keys = env.sandbox.dir().join("vault-keys.json");
    let claim = env.sandbox.dir().join("vault-keys.json.claim");
    let file = env.phases.join("20-vault.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let custody = format!("custody: {{ file: {} }}", keys.display());
    std::fs::write(
        &file,
        text.replace("custody: { secret: vault/vault-init }", &custody),
    )
    .unwrap();

    let seen = start_and_kill(&env, Kill::Process, |line, _| {
        line.contains("vault/init: initialising")
    });
    assert!(
        !keys.exists() && claim.exists(),
        "the run died before the keys were written, with the worker's claim in place: {seen:#?}"
    );
    let rerun = run(&env, &[]);
    assert_exit(&rerun, 0);
    assert!(
        stdout(&rerun).contains("vault/init: OpenBao is being initialised by process "),
        "{}",
        stdout(&rerun)
    );
    assert_eq!(
        seal_status(&env, 0)["sealed"],
        false,
        "unsealed from the file"
    );
    assert!(store_ready(&env));

    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!claim.exists(), "the keys ended the claim");
    assert!(custody_object(&env).is_none(), "no Secret was asked for");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(stored["unseal_keys_b64"].as_array().unwrap().len(), 5);
}
