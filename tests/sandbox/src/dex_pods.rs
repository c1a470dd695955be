//! Dex pods: each serves its OIDC discovery document on a loopback listener (forwarded from the
//! pod's port 5556) and is Ready only while every Secret its config reads exists, as a real Dex
//! crash-loops until its secret env vars can be filled.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster_file::{ClusterFile, DexDecl};
use crate::pod_status::set_pod_ready;
use crate::server_state::ServerState;

/// How often the Secrets of Dex pods are looked at; a kubelet restarting a crash-looping Dex
/// is slower than this.
pub const DEX_RECHECK: Duration = Duration::from_millis(200);

/// The Dex servers of a sandbox, by pod (namespace, name).
pub struct DexPods {
    servers: BTreeMap<(String, String), SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl DexPods {
    /// Binds one discovery server per Dex pod of the cluster file on 127.0.0.1.
    pub async fn start(file: &ClusterFile) -> std::io::Result<Self> {
        let mut servers = BTreeMap::new();
        let mut tasks = Vec::new();
        for pod in &file.pods {
            let Some(dex) = &pod.dex else { continue };
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            servers.insert(
                (pod.namespace.clone(), pod.name.clone()),
                listener.local_addr()?,
            );
            let router = discovery_router(dex.issuer.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::error!(%error, "dex listener stopped");
                }
            }));
        }
        Ok(Self { servers, tasks })
    }

    /// Where the Dex of this pod listens.
    pub fn addr(&self, namespace: &str, name: &str) -> Option<SocketAddr> {
        self.servers
            .get(&(namespace.to_owned(), name.to_owned()))
            .copied()
    }

    /// Stops the listeners.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Runs [`sync_readiness`] every [`DEX_RECHECK`] until `shutdown` resolves.
    pub async fn run(state: Arc<ServerState>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            sync_readiness(&state);
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(DEX_RECHECK) => {}
            }
        }
    }
}

impl Drop for DexPods {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes each Dex pod Ready exactly when it is declared ready and all its Secrets exist;
/// writes only on a change, so watchers see one event per transition.
pub fn sync_readiness(state: &ServerState) {
    for pod in &state.cluster_file.pods {
        let Some(dex) = &pod.dex else { continue };
        let Ok(object) = state.get_object("v1", "Pod", Some(&pod.namespace), &pod.name) else {
            continue;
        };
        // A pod that is not Running never reports Ready (set_pod_ready would refuse anyway).
        let want = pod.ready
            && object["status"]["phase"] == "Running"
            && missing_secrets(state, dex).is_empty();
        let now = is_ready(&object);
        if want != now
            && let Err(error) = set_pod_ready(state, &pod.namespace, &pod.name, want)
        {
            tracing::warn!(pod = %format!("{}/{}", pod.namespace, pod.name), %error, "cannot update dex readiness");
        }
    }
}

/// The Secrets (`namespace/name`) of this Dex that do not exist.
pub fn missing_secrets(state: &ServerState, dex: &DexDecl) -> Vec<String> {
    dex.secret_refs()
        .filter(|(ns, name)| state.get_object("v1", "Secret", Some(ns), name).is_err())
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect()
}

/// Whether a Pod object's `Ready` condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Dex's discovery document (`server/handlers.go: discovery`, v2.45) for this issuer.
pub fn discovery_document(issuer: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/keys"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "device_authorization_endpoint": format!("{base}/device/code"),
        "introspection_endpoint": format!("{base}/token/introspect"),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "email", "groups", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": [
            "iss", "sub", "aud", "iat", "exp", "email", "email_verified", "locale", "name",
            "preferred_username", "at_hash"
        ]
    })
}

/// Serves the discovery document under the issuer's path, 404 elsewhere as Go's mux does.
fn discovery_router(issuer: String) -> Router {
    let path = reqwest::Url::parse(&issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let discovery = format!("{path}/.well-known/openid-configuration");
    Router::new().fallback(move |uri: Uri| {
        let issuer = issuer.clone();
        let discovery = discovery.clone();
        async move {
            if uri.path() == discovery {
                axum::Json(discovery_document(&issuer)).into_response()
            } else {
                not_found()
            }
        }
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_discovery_document_is_built_from_the_issuer() {
        let doc = discovery_document("https://dex.example.com");
        assert_eq!(doc["issuer"], "https://dex.example.com");
        assert_eq!(doc["token_endpoint"], "https://dex.example.com/token");
        let doc = discovery_document("https://example.com/dex/");
        assert_eq!(doc["jwks_uri"], "https://example.com/dex/keys");
    }

    fn state(dir: &std::path::Path, yaml: &str) -> ServerState {
        let file: ClusterFile = serde_yaml::from_str(yaml).unwrap();
        let audit = crate::audit::AuditLog::create(&dir.join("audit.jsonl")).unwrap();
        let state = ServerState::new(
            crate::registry::Registry::builtin(),
            file,
            "t".into(),
            audit,
            dir.to_owned(),
        );
        for ns in ["dex", "g"] {
            state
                .put_object(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .unwrap();
        }
        let pods = state.cluster_file.pods.clone();
        for (i, pod) in pods.iter().enumerate() {
            state.put_object(pod.to_object(i)).unwrap();
        }
        state
    }

    fn pod(state: &ServerState, name: &str) -> Value {
        state.get_object("v1", "Pod", Some("dex"), name).unwrap()
    }

    #[test]
    fn readiness_follows_the_secrets_and_is_written_only_on_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(
            dir.path(),
            "pods:\n- { name: up, namespace: dex, containers: [{name: dex}], dex: { issuer: 'https://d', secrets: [g/a, g/b] } }\n- { name: pending, namespace: dex, phase: Pending, containers: [{name: dex}], dex: { issuer: 'https://d', secrets: [g/a] } }\n",
        );
        let secret = |name: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "g"}});
        sync_readiness(&state);
        assert!(!is_ready(&pod(&state, "up")));
        state.put_object(secret("a")).unwrap();
        sync_readiness(&state);
        assert!(!is_ready(&pod(&state, "up")));
        assert_eq!(
            missing_secrets(&state, state.cluster_file.pods[0].dex.as_ref().unwrap()),
            ["g/b"]
        );
        state.put_object(secret("b")).unwrap();
        sync_readiness(&state);
        let ready = pod(&state, "up");
        assert!(is_ready(&ready));
        let pending = pod(&state, "pending");
        sync_readiness(&state);
        assert_eq!(
            pod(&state, "up")["metadata"]["resourceVersion"],
            ready["metadata"]["resourceVersion"]
        );
        assert_eq!(
            pod(&state, "pending")["metadata"]["resourceVersion"],
            pending["metadata"]["resourceVersion"],
            "a pod that is not Running stays unready without writes"
        );
        state.delete_object("v1", "Secret", Some("g"), "a").unwrap();
        sync_readiness(&state);
        assert!(!is_ready(&pod(&state, "up")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn discovery_is_served_under_the_issuer_path_only() {
        let file: ClusterFile = serde_yaml::from_str(
            "namespaces: [dex]\npods: [{ name: dex-0, namespace: dex, containers: [{name: dex}], dex: { issuer: 'https://example.com/dex', secrets: [a/b] } }]",
        )
        .unwrap();
        let pods = DexPods::start(&file).await.unwrap();
        let addr = pods.addr("dex", "dex-0").unwrap();
        let http = reqwest::Client::new();
        let doc: Value = http
            .get(format!(
                "http://{addr}/dex/.well-known/openid-configuration"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], "https://example.com/dex");
        let other = http
            .get(format!("http://{addr}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
    }
}
