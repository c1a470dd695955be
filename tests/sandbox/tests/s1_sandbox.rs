//! The S1 cluster (clusters/s1.yaml and s1-kanidm13.yaml) through real clients: kube-rs exec
//! into the emulated Gitea and Kanidm pods (a real `sh`, `su`, `"$(cat)"`), the Gitea API
//! through a kube-rs port-forward, Dex readiness following its Secrets, and ExternalSecrets of
//! the kubernetes provider synced by the sandbox.

mod common;

use std::time::Duration;

use bringup_sandbox::emulators::{GiteaSnapshot, InstanceSnapshot, KanidmSnapshot};
use bringup_sandbox::{Sandbox, audit};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GITEA_POD: &str = "gitea-6b8f9c7d5-k2m4p";
const DEX_POD: &str = "dex-7d9c5b8f6-q8w2n";

/// What a script printed, as text, and how it ended.
struct Ran {
    stdout: String,
    stderr: String,
    code: i32,
}

/// Runs `sh -c SCRIPT` in `ns/pod`, with `stdin` fed and closed.
async fn exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    script: &str,
    stdin: Option<&str>,
) -> Ran {
    let ran = common::exec(
        client,
        ns,
        pod,
        &["sh", "-c", script],
        stdin.map(str::as_bytes),
    )
    .await;
    Ran {
        code: ran.code(),
        stdout: String::from_utf8(ran.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(ran.stderr).expect("utf-8 stderr"),
    }
}

fn gitea(sandbox: &Sandbox) -> GiteaSnapshot {
    match sandbox.emulators().expect("emulators").snapshot("gitea") {
        Some(InstanceSnapshot::Gitea(snapshot)) => snapshot,
        other => panic!("gitea instance: {other:?}"),
    }
}

fn kanidm(sandbox: &Sandbox) -> KanidmSnapshot {
    match sandbox.emulators().expect("emulators").snapshot("kanidm") {
        Some(InstanceSnapshot::Kanidm(snapshot)) => snapshot,
        other => panic!("kanidm instance: {other:?}"),
    }
}

/// One HTTP/1.1 request over a kube-rs port-forward to the pod's port; the raw answer.
async fn http_through_forward(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    port: u16,
    request: &str,
) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .expect("port-forward upgrades");
    let mut stream = forwarder.take_stream(port).expect("the port's stream");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    drop(stream);
    let _ = forwarder.join().await;
    String::from_utf8(answer).expect("utf-8 answer")
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn put_secret(client: &kube::Client, ns: &str, name: &str, data: Value) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "namespace": ns },
        "stringData": data,
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitea_cli_runs_only_through_su_git_and_takes_a_secret_on_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("s1.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;

    let as_root = exec(&client, "gitea", GITEA_POD, "gitea admin auth list", None).await;
    assert_eq!(as_root.code, 1, "{}{}", as_root.stdout, as_root.stderr);
    assert!(
        as_root
            .stdout
            .contains("Gitea is not supposed to be run as root"),
        "{}",
        as_root.stdout
    );

    let listed = exec(
        &client,
        "gitea",
        GITEA_POD,
        "su git -c 'gitea admin auth list'",
        None,
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.stdout, "ID\tName\tType\tEnabled\n");

    let secret = "dex-gitea-client-secret-canary-7f3a";
    let add = "su git -c 'gitea admin auth add-oauth --name Dex --provider openidConnect --key gitea --secret \"$(cat)\" --auto-discover-url https://dex.example.com/.well-known/openid-configuration'";
    let added = exec(&client, "gitea", GITEA_POD, add, Some(secret)).await;
    assert_eq!(added.code, 0, "{}{}", added.stdout, added.stderr);
    let snapshot = gitea(&sandbox);
    assert_eq!(snapshot.auth_sources.len(), 1);
    assert_eq!(snapshot.auth_sources[0].name, "Dex");
    assert_eq!(snapshot.auth_sources[0].client_id, "gitea");
    assert_eq!(
        snapshot.auth_sources[0].client_secret_sha256,
        bringup_sandbox::emulators::random::sha256_hex(secret)
    );

    let again = exec(
        &client,
        "gitea",
        GITEA_POD,
        "su git -c 'gitea admin auth list'",
        None,
    )
    .await;
    assert_eq!(
        again.stdout,
        "ID\tName\tType\tEnabled\n1\tDex\tOAuth2\ttrue\n"
    );

    // Every exec is in the audit log with its command line, and the secret is in none.
    let execs: Vec<_> = audit::read(sandbox.audit_path())
        .into_iter()
        .filter(|e| e.is_exec())
        .collect();
    assert_eq!(execs.len(), 4);
    assert!(
        execs
            .iter()
            .all(|e| e.command.as_ref().is_some_and(|c| c[0] == "sh"))
    );
    let log = std::fs::read_to_string(sandbox.audit_path()).expect("audit log");
    assert!(!log.contains(secret));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kanidm_recovers_the_admin_and_logs_in_with_the_password_on_stdin_in_both_versions() {
    for (file, version) in [("s1.yaml", "1.7"), ("s1-kanidm13.yaml", "1.3")] {
        let dir = tempfile::tempdir().expect("tempdir");
        let sandbox = common::start(common::cluster(file), dir.path()).await;
        let client = common::client(&sandbox).await;
        assert!(kanidm(&sandbox).version.starts_with(version));

        let recovered = exec(
            &client,
            "kanidm",
            "kanidm-0",
            "kanidmd recover-account --output json idm_admin",
            None,
        )
        .await;
        assert_eq!(recovered.code, 0, "{}", recovered.stderr);
        let password = recovered
            .stdout
            .lines()
            .find_map(|l| {
                serde_json::from_str::<Value>(l).ok()?["password"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no JSON line in {:?}", recovered.stdout));
        assert_eq!(
            kanidm(&sandbox).counters.recover_account.get("idm_admin"),
            Some(&1)
        );

        let login =
            "KANIDM_PASSWORD=\"$(cat)\" kanidm login -H https://idm.example.com -D idm_admin";
        let logged_in = exec(&client, "kanidm", "kanidm-0", login, Some(&password)).await;
        assert_eq!(logged_in.code, 0, "{}", logged_in.stderr);
        assert_eq!(
            logged_in.stdout,
            "Login Success for idm_admin@idm.example.com\n"
        );
        // The login is cached under the pod's HOME: the next exec is authenticated.
        let group = exec(
            &client,
            "kanidm",
            "kanidm-0",
            "kanidm group create editor -H https://idm.example.com -D idm_admin",
            None,
        )
        .await;
        assert_eq!(group.code, 0, "{}", group.stderr);
        assert!(kanidm(&sandbox).groups.iter().any(|g| g.name == "editor"));

        let wrong = exec(
            &client,
            "kanidm",
            "kanidm-0",
            login,
            Some("not-the-password"),
        )
        .await;
        assert_eq!(wrong.code, 1);
        let log = std::fs::read_to_string(sandbox.audit_path()).expect("audit log");
        assert!(!log.contains(&password));
        sandbox.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitea_api_answers_through_a_kube_rs_port_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("s1.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let version = http_through_forward(
        &client,
        "gitea",
        GITEA_POD,
        3000,
        "GET /api/v1/version HTTP/1.1\r\nHost: gitea\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(version.starts_with("HTTP/1.1 200"), "{version}");
    assert!(
        version.contains(&format!("\"version\":\"{}\"", gitea(&sandbox).version)),
        "{version}"
    );

    use base64::Engine;
    let admin = Api::<Secret>::namespaced(client.clone(), "gitea")
        .get("gitea-admin-secret")
        .await
        .expect("the admin Secret");
    let data = admin.data.expect("data");
    let basic = base64::engine::general_purpose::STANDARD.encode(
        [
            data["username"].0.as_slice(),
            b":",
            data["password"].0.as_slice(),
        ]
        .concat(),
    );
    let tokens = http_through_forward(
        &client,
        "gitea",
        GITEA_POD,
        3000,
        &format!("GET /api/v1/users/gitea_admin/tokens HTTP/1.1\r\nHost: gitea\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        tokens.starts_with("HTTP/1.1 200"),
        "the admin Secret matches the instance: {tokens}"
    );
    assert!(
        tokens.ends_with("[]\n") || tokens.ends_with("[]"),
        "{tokens}"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dex_is_ready_only_while_its_secrets_exist_and_serves_its_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("s1.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "dex");
    let discovery =
        "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: dex\r\nConnection: close\r\n\r\n";

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pod_ready(&pods.get(DEX_POD).await.expect("dex pod")));
    let pf = pods
        .portforward(DEX_POD, &[5556])
        .await
        .expect("port-forward upgrades");
    let mut pf = pf;
    let error = pf.take_error(5556).expect("error channel").await;
    assert!(error.is_some_and(|e| e.contains("connection refused")));

    put_secret(
        &client,
        "global-secrets",
        "kanidm.dex",
        json!({"client_id": "dex", "client_secret": "a"}),
    )
    .await;
    put_secret(
        &client,
        "global-secrets",
        "dex.gitea",
        json!({"client_secret": "b"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !pod_ready(&pods.get(DEX_POD).await.expect("dex pod")),
        "one Secret is still missing"
    );

    put_secret(
        &client,
        "global-secrets",
        "dex.grafana",
        json!({"client_secret": "c"}),
    )
    .await;
    wait_for("dex Ready", async || {
        pod_ready(&pods.get(DEX_POD).await.ok()?).then_some(())
    })
    .await;
    let answer = http_through_forward(&client, "dex", DEX_POD, 5556, discovery).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("\"issuer\":\"https://dex.example.com\""),
        "{answer}"
    );

    Api::<Secret>::namespaced(client.clone(), "global-secrets")
        .delete("dex.gitea", &DeleteParams::default())
        .await
        .expect("deleted");
    wait_for("dex not Ready", async || {
        (!pod_ready(&pods.get(DEX_POD).await.ok()?)).then_some(())
    })
    .await;
    sandbox.shutdown().await;
}

fn external_secrets() -> ApiResource {
    ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: "ExternalSecret".into(),
        plural: "externalsecrets".into(),
    }
}

fn ready(object: &DynamicObject) -> Option<(String, String)> {
    let condition = object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    Some((
        condition["status"].as_str()?.to_owned(),
        condition["reason"].as_str()?.to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn external_secrets_of_the_global_secrets_store_are_synced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("s1.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    let renovate: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "renovate", &external_secrets());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "renovate");

    let failing = wait_for("renovate-secret SecretSyncedError", async || {
        let es = renovate.get("renovate-secret").await.ok()?;
        ready(&es).filter(|(status, _)| status == "False")
    })
    .await;
    assert_eq!(failing.1, "SecretSyncedError");
    assert!(
        secrets
            .get_opt("renovate-secret")
            .await
            .expect("get")
            .is_none()
    );

    put_secret(
        &client,
        "global-secrets",
        "gitea.renovate",
        json!({"token": "t0k3n"}),
    )
    .await;
    let target = wait_for("renovate-secret synced", async || {
        secrets.get_opt("renovate-secret").await.ok()?
    })
    .await;
    let data = target.data.expect("data");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["RENOVATE_TOKEN"]);
    assert_eq!(data["RENOVATE_TOKEN"].0, b"t0k3n");
    let labels = target.metadata.labels.expect("labels");
    assert_eq!(labels["reconcile.external-secrets.io/managed"], "true");
    let synced = wait_for("renovate-secret Ready", async || {
        let es = renovate.get("renovate-secret").await.ok()?;
        ready(&es).filter(|(status, _)| status == "True")
    })
    .await;
    assert_eq!(synced.1, "SecretSynced");

    // A change of the remote value reaches the target; a settled target is not rewritten.
    let remote: Api<Secret> = Api::namespaced(client.clone(), "global-secrets");
    let mut changed = remote.get("gitea.renovate").await.expect("remote");
    changed.data = Some([("token".to_owned(), k8s_openapi::ByteString(b"n3w".to_vec()))].into());
    remote
        .replace("gitea.renovate", &PostParams::default(), &changed)
        .await
        .expect("replaced");
    let updated = wait_for("new token synced", async || {
        let s = secrets.get("renovate-secret").await.ok()?;
        (s.data.as_ref()?["RENOVATE_TOKEN"].0 == b"n3w").then_some(s)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = secrets.get("renovate-secret").await.expect("target");
    assert_eq!(
        later.metadata.resource_version,
        updated.metadata.resource_version
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rootless_forgejo_pod_runs_its_cli_directly_and_refuses_su() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = common::cluster_file(
        dir.path(),
        r#"
namespaces: [forgejo]
emulators:
  - name: forgejo
    product: { product: gitea, version: { flavor: forgejo, major: 11 }, admin: null, app_url: "http://forgejo/", run_user: git, run_uid: 1000, config_path: /data/gitea/conf/app.ini }
pods:
  - name: forgejo-0
    namespace: forgejo
    containers: [{ name: forgejo }]
    exec: { emulator_instance: { instance: forgejo, uid: 1000 } }
"#,
    );
    let sandbox = common::start(file, dir.path()).await;
    let client = common::client(&sandbox).await;
    let listed = exec(
        &client,
        "forgejo",
        "forgejo-0",
        "forgejo admin auth list",
        None,
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.stdout, "ID\tName\tType\tEnabled\n");
    let su = exec(
        &client,
        "forgejo",
        "forgejo-0",
        "su git -c 'forgejo admin auth list'",
        None,
    )
    .await;
    assert_eq!(su.code, 1);
    assert_eq!(su.stderr, "su: must be suid to work properly\n");
    // HOME is the pod's own directory under the sandbox dir.
    let home = exec(&client, "forgejo", "forgejo-0", "echo \"$HOME\"", None).await;
    assert_eq!(
        home.stdout.trim(),
        sandbox
            .dir()
            .join("pods/forgejo/forgejo-0")
            .display()
            .to_string()
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn external_secrets_extract_whole_secrets_and_fail_on_a_missing_property() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = common::start(common::cluster("s1.yaml"), dir.path()).await;
    let client = common::client(&sandbox).await;
    put_secret(
        &client,
        "global-secrets",
        "woodpecker.agent",
        json!({"secret": "s", "extra": "e"}),
    )
    .await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "bringup", &external_secrets());
    let es: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": { "name": "agent", "namespace": "bringup" },
        "spec": {
            "secretStoreRef": { "kind": "ClusterSecretStore", "name": "global-secrets" },
            "target": { "name": "agent-copy" },
            "dataFrom": [{ "extract": { "key": "woodpecker.agent" } }],
            "data": [{ "secretKey": "nope", "remoteRef": { "key": "woodpecker.agent", "property": "missing" } }],
        },
    }))
    .expect("an ExternalSecret");
    api.create(&PostParams::default(), &es)
        .await
        .expect("created");
    let failing = wait_for("agent SecretSyncedError", async || {
        ready(&api.get("agent").await.ok()?).filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(failing.1, "SecretSyncedError");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "bringup");
    assert!(secrets.get_opt("agent-copy").await.expect("get").is_none());

    let mut fixed = api.get("agent").await.expect("es");
    fixed.data["spec"]["data"][0]["remoteRef"]["property"] = json!("secret");
    api.replace("agent", &PostParams::default(), &fixed)
        .await
        .expect("replaced");
    let copy = wait_for("agent-copy", async || {
        secrets.get_opt("agent-copy").await.ok()?
    })
    .await;
    let data = copy.data.expect("data");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["extra", "nope", "secret"]);
    assert_eq!(data["nope"].0, b"s");
    let owner = &copy.metadata.owner_references.expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ExternalSecret", "agent")
    );
    sandbox.shutdown().await;
}
