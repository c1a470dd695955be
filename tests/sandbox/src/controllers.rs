//! The External Secrets store controller the sandbox runs in place of ESO: it validates each
//! ClusterSecretStore and SecretStore (external-secrets.io/v1) as ESO does, by really logging
//! in to OpenBao with the store's Kubernetes auth, or by really reading the kubernetes
//! provider's remote namespace, and writes the `Ready` condition ESO would write.
//!
//! It is a client of the sandbox's own API, like ESO is of a real one: it lists the stores,
//! asks for service-account tokens through TokenRequest and patches `status`.
//!
//! Which OpenBao a `spec.provider.vault.server` URL reaches: a loopback address of one of the
//! sandbox's servers is that server; a host whose first label is `vault-N` or `openbao-N` (a pod's
//! DNS name, as in `http://vault-1.vault-internal:8200`) is server N; any other host (a Service
//! such as `http://vault.vault.svc:8200`) is server 0, where bringup initialises the cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller's user agent, by which the audit log tells its requests from the tests'.
pub const USER_AGENT: &str = "external-secrets/sandbox-store-controller";

/// How often a store that is not Ready is checked again.
pub const NOT_READY_RECHECK: Duration = Duration::from_secs(1);
/// How often a Ready store is checked again (a removed role turns it NotReady).
pub const READY_RECHECK: Duration = Duration::from_secs(10);

const MSG_VALID: &str = "store validated";
const MSG_CLIENT: &str = "unable to create client";
const MSG_VALIDATE: &str = "unable to validate store";

/// The two store kinds, which differ only in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreKind {
    ClusterSecretStore,
    SecretStore,
}

impl StoreKind {
    fn resource(self) -> ApiResource {
        let (kind, plural) = match self {
            Self::ClusterSecretStore => ("ClusterSecretStore", "clustersecretstores"),
            Self::SecretStore => ("SecretStore", "secretstores"),
        };
        ApiResource {
            group: "external-secrets.io".into(),
            version: "v1".into(),
            api_version: "external-secrets.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }
}

/// Why a store is not Ready: ESO's condition text plus the underlying error, which ESO puts in
/// an Event and the sandbox keeps in [`StoreController::last_errors`] and its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure {
    pub message: &'static str,
    pub error: String,
}

fn client_failure(error: impl Into<String>) -> StoreFailure {
    StoreFailure {
        message: MSG_CLIENT,
        error: error.into(),
    }
}

fn validation_failure(error: impl Into<String>) -> StoreFailure {
    StoreFailure {
        message: MSG_VALIDATE,
        error: error.into(),
    }
}

/// Picks the OpenBao server a store's `server` URL reaches (see the module documentation).
pub fn openbao_index_for(server_url: &str, api_addrs: &[String]) -> Option<usize> {
    let url = reqwest::Url::parse(server_url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let loopback = ["127.0.0.1", "localhost"].contains(&host);
    if loopback {
        return api_addrs.iter().position(|addr| {
            reqwest::Url::parse(addr).is_ok_and(|a| a.port_or_known_default() == Some(port))
        });
    }
    let first_label = host.split('.').next().unwrap_or(host);
    let numbered = ["vault-", "openbao-"]
        .iter()
        .find_map(|prefix| first_label.strip_prefix(prefix))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < api_addrs.len());
    Some(numbered.unwrap_or(0)).filter(|_| !api_addrs.is_empty())
}

/// Logs in at `auth/<mount>/login` and revokes the token again, as ESO's Vault client does
/// when the validation's client is closed. The error is OpenBao's own answer.
pub async fn vault_kubernetes_login(
    http: &reqwest::Client,
    api_addr: &str,
    mount_path: &str,
    role: &str,
    jwt: &str,
) -> Result<(), String> {
    let url = format!(
        "{}/v1/auth/{}/login",
        api_addr.trim_end_matches('/'),
        mount_path.trim_matches('/')
    );
    let response = http
        .post(&url)
        .json(&json!({ "role": role, "jwt": jwt }))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let errors = body["errors"].as_array().map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        });
        return Err(format!(
            "Error making API request.\n\nURL: PUT {url}\nCode: {}. Errors:\n\n* {}",
            status.as_u16(),
            errors.unwrap_or_default()
        ));
    }
    let Some(token) = body["auth"]["client_token"].as_str() else {
        return Err(format!(
            "POST {url}: answered {status} without auth.client_token"
        ));
    };
    let _ = http
        .post(format!(
            "{}/v1/auth/token/revoke-self",
            api_addr.trim_end_matches('/')
        ))
        .header("X-Vault-Token", token)
        .send()
        .await;
    Ok(())
}

#[derive(Debug, Clone)]
struct Checked {
    generation: i64,
    next: Instant,
}

/// Validates every store in the sandbox and keeps its `Ready` condition true to what a real
/// login or read would find.
pub struct StoreController {
    client: kube::Client,
    openbao_addrs: Vec<String>,
    http: reqwest::Client,
    checked: BTreeMap<(StoreKind, String, String), Checked>,
    last_errors: BTreeMap<(StoreKind, String, String), String>,
}

impl StoreController {
    pub fn new(client: kube::Client, openbao_addrs: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            client,
            openbao_addrs,
            http,
            checked: BTreeMap::new(),
            last_errors: BTreeMap::new(),
        }
    }

    /// The underlying error of each store that is not Ready, by (kind, namespace, name).
    pub fn last_errors(&self) -> &BTreeMap<(StoreKind, String, String), String> {
        &self.last_errors
    }

    /// Runs until `shutdown` resolves: every second, validates the stores that are new,
    /// changed (generation), NotReady, or Ready for longer than [`READY_RECHECK`].
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.sweep().await {
                tracing::debug!(%error, "store controller sweep failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(NOT_READY_RECHECK) => {}
            }
        }
    }

    /// One pass over all stores; public so tests can drive the controller step by step.
    pub async fn sweep(&mut self) -> Result<(), kube::Error> {
        let mut seen = Vec::new();
        for kind in [StoreKind::ClusterSecretStore, StoreKind::SecretStore] {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.resource());
            for store in api.list(&ListParams::default()).await?.items {
                let namespace = store.metadata.namespace.clone().unwrap_or_default();
                let name = store.metadata.name.clone().unwrap_or_default();
                let key = (kind, namespace, name);
                seen.push(key.clone());
                let generation = store.metadata.generation.unwrap_or_default();
                let due = self
                    .checked
                    .get(&key)
                    .is_none_or(|c| c.generation != generation || Instant::now() >= c.next);
                if !due {
                    continue;
                }
                let result = self.validate(kind, &store).await;
                let ready = result.is_ok();
                match &result {
                    Ok(()) => {
                        self.last_errors.remove(&key);
                    }
                    Err(failure) => {
                        tracing::info!(kind = ?kind, namespace = %key.1, name = %key.2, error = %failure.error, "store not ready");
                        self.last_errors.insert(key.clone(), failure.error.clone());
                    }
                }
                self.write_condition(kind, &store, result).await?;
                let wait = if ready {
                    READY_RECHECK
                } else {
                    NOT_READY_RECHECK
                };
                self.checked.insert(
                    key,
                    Checked {
                        generation,
                        next: Instant::now() + wait,
                    },
                );
            }
        }
        self.checked.retain(|key, _| seen.contains(key));
        self.last_errors.retain(|key, _| seen.contains(key));
        Ok(())
    }

    async fn write_condition(
        &self,
        kind: StoreKind,
        store: &DynamicObject,
        result: Result<(), StoreFailure>,
    ) -> Result<(), kube::Error> {
        let (status, reason, message) = match &result {
            Ok(()) => ("True", "Valid", MSG_VALID),
            Err(failure) => ("False", "InvalidProviderConfig", failure.message),
        };
        let current = store.data["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or(Value::Null);
        if current["status"] == status
            && current["reason"] == reason
            && current["message"] == message
        {
            return Ok(());
        }
        // The transition time moves only when the status does, as in ESO's SetExternalSecretCondition.
        let transition = match current["status"] == status {
            true => current["lastTransitionTime"].clone(),
            false => Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
        };
        let mut new_status = json!({
            "conditions": [{
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": transition,
            }]
        });
        if result.is_ok() {
            new_status["capabilities"] = json!("ReadWrite");
        }
        let name = store.metadata.name.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> = match (&store.metadata.namespace, kind) {
            (Some(ns), StoreKind::SecretStore) => {
                Api::namespaced_with(self.client.clone(), ns, &kind.resource())
            }
            _ => Api::all_with(self.client.clone(), &kind.resource()),
        };
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": new_status })),
        )
        .await?;
        Ok(())
    }

    async fn validate(&self, kind: StoreKind, store: &DynamicObject) -> Result<(), StoreFailure> {
        let provider = &store.data["spec"]["provider"];
        let store_namespace = store.metadata.namespace.clone();
        if provider["vault"].is_object() {
            self.validate_vault(kind, store_namespace.as_deref(), &provider["vault"])
                .await
        } else if provider["kubernetes"].is_object() {
            self.validate_kubernetes(kind, store_namespace.as_deref(), &provider["kubernetes"])
                .await
        } else {
            Err(client_failure(
                "the sandbox validates only the vault and kubernetes providers",
            ))
        }
    }

    async fn validate_vault(
        &self,
        kind: StoreKind,
        store_namespace: Option<&str>,
        vault: &Value,
    ) -> Result<(), StoreFailure> {
        let server = vault["server"].as_str().unwrap_or_default();
        let kubernetes = &vault["auth"]["kubernetes"];
        if !kubernetes.is_object() {
            return Err(client_failure(
                "the sandbox validates only the vault provider's kubernetes auth",
            ));
        }
        let mount_path = kubernetes["mountPath"].as_str().unwrap_or("kubernetes");
        let role = kubernetes["role"].as_str().unwrap_or_default();
        let jwt = self
            .kubernetes_auth_jwt(kind, store_namespace, kubernetes)
            .await?;
        let index = openbao_index_for(server, &self.openbao_addrs)
            .ok_or_else(|| client_failure(format!("no OpenBao server answers {server:?}")))?;
        let api_addr = match reqwest::Url::parse(server) {
            Ok(url) if ["127.0.0.1", "localhost"].contains(&url.host_str().unwrap_or_default()) => {
                server.to_owned()
            }
            _ => self.openbao_addrs[index].clone(),
        };
        vault_kubernetes_login(&self.http, &api_addr, mount_path, role, &jwt)
            .await
            .map_err(client_failure)
    }

    /// The JWT ESO would log in with: a TokenRequest for `serviceAccountRef`, the key of
    /// `secretRef`, or (neither) ESO's own service account `external-secrets/external-secrets`.
    async fn kubernetes_auth_jwt(
        &self,
        kind: StoreKind,
        store_namespace: Option<&str>,
        auth: &Value,
    ) -> Result<String, StoreFailure> {
        let reference_namespace = |reference: &Value| match (kind, store_namespace) {
            (StoreKind::SecretStore, Some(ns)) => Ok(ns.to_owned()),
            _ => reference["namespace"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| client_failure("ClusterSecretStore references need a namespace")),
        };
        if let Some(secret_ref) = auth.get("secretRef").filter(|r| r.is_object()) {
            let namespace = reference_namespace(secret_ref)?;
            let name = secret_ref["name"].as_str().unwrap_or_default();
            let key = secret_ref["key"].as_str().unwrap_or("token");
            let secret = Api::<Secret>::namespaced(self.client.clone(), &namespace)
                .get(name)
                .await
                .map_err(|e| {
                    client_failure(format!("cannot read Secret {namespace}/{name}: {e}"))
                })?;
            let value = secret.data.unwrap_or_default().remove(key).ok_or_else(|| {
                client_failure(format!("Secret {namespace}/{name} has no key {key:?}"))
            })?;
            return String::from_utf8(value.0).map_err(|_| {
                client_failure(format!("Secret {namespace}/{name} key {key:?} is not text"))
            });
        }
        let (namespace, name, audiences) =
            match auth.get("serviceAccountRef").filter(|r| r.is_object()) {
                Some(reference) => (
                    reference_namespace(reference)?,
                    reference["name"].as_str().unwrap_or_default().to_owned(),
                    reference["audiences"].clone(),
                ),
                None => (
                    "external-secrets".to_owned(),
                    "external-secrets".to_owned(),
                    Value::Null,
                ),
            };
        self.request_token(&namespace, &name, audiences).await
    }

    async fn request_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: Value,
    ) -> Result<String, StoreFailure> {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": { "audiences": audiences, "expirationSeconds": 600 },
        });
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
        let answer: Value = api
            .create_subresource("token", name, &PostParams::default(), &body)
            .await
            .map_err(|e| {
                client_failure(format!(
                    "cannot create a token for ServiceAccount {namespace}/{name}: {e}"
                ))
            })?;
        answer["status"]["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                client_failure(format!(
                    "TokenRequest for {namespace}/{name} returned no token"
                ))
            })
    }

    async fn validate_kubernetes(
        &self,
        kind: StoreKind,
        store_namespace: Option<&str>,
        kubernetes: &Value,
    ) -> Result<(), StoreFailure> {
        let auth = &kubernetes["auth"];
        if let Some(reference) = auth.get("serviceAccount").filter(|r| r.is_object()) {
            let namespace = match (kind, store_namespace) {
                (StoreKind::SecretStore, Some(ns)) => ns.to_owned(),
                _ => reference["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_owned(),
            };
            let name = reference["name"].as_str().unwrap_or_default();
            self.request_token(&namespace, name, reference["audiences"].clone())
                .await?;
        }
        let remote = kubernetes["remoteNamespace"].as_str().unwrap_or("default");
        Api::<Namespace>::all(self.client.clone())
            .get(remote)
            .await
            .map_err(|e| validation_failure(format!("cannot read namespace {remote}: {e}")))?;
        Api::<Secret>::namespaced(self.client.clone(), remote)
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| {
                validation_failure(format!("cannot list Secrets in namespace {remote}: {e}"))
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bao, tokenreview_server, unsealed_openbao};
    use crate::tokens::{ServiceAccountIdentity, TokenAuthority};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread")]
    async fn openbao_kubernetes_auth_accepts_sandbox_tokens_through_token_review() {
        let dir = tempfile::tempdir().unwrap();
        let (openbao, root) = unsealed_openbao(dir.path()).await;
        let addr = openbao.api_addr(0);
        let authority = Arc::new(TokenAuthority::new());
        let eso = ServiceAccountIdentity {
            namespace: "external-secrets".into(),
            name: "external-secrets".into(),
            uid: "0b8e1f6e-1111-4222-8333-444455556666".into(),
        };
        let accounts = vec![(eso.namespace.clone(), eso.name.clone(), eso.uid.clone())];
        let kubernetes_host = tokenreview_server(authority.clone(), accounts).await;
        bao(
            &addr,
            &root,
            "POST",
            "sys/auth/kubernetes",
            json!({"type": "kubernetes"}),
        )
        .await;
        bao(&addr, &root, "POST", "auth/kubernetes/config", json!({"kubernetes_host": kubernetes_host, "kubernetes_ca_cert": crate::tokens::CLUSTER_CA_PEM})).await;
        let jwt = authority.issue(&eso, &[], 600, Utc::now());
        let http = reqwest::Client::new();

        let before = vault_kubernetes_login(&http, &addr, "kubernetes", "eso", &jwt)
            .await
            .unwrap_err();
        assert!(
            before.contains("Code: 400") && before.contains("invalid role name"),
            "{before}"
        );

        bao(
            &addr,
            &root,
            "POST",
            "auth/kubernetes/role/eso",
            json!({
                "bound_service_account_names": ["external-secrets"],
                "bound_service_account_namespaces": ["external-secrets"],
                "token_policies": ["default"],
            }),
        )
        .await;
        vault_kubernetes_login(&http, &addr, "kubernetes", "eso", &jwt)
            .await
            .expect("login through TokenReview");

        let stranger = ServiceAccountIdentity {
            name: "default".into(),
            ..eso.clone()
        };
        let refused = authority.issue(&stranger, &[], 600, Utc::now());
        let error = vault_kubernetes_login(&http, &addr, "kubernetes", "eso", &refused)
            .await
            .unwrap_err();
        assert!(error.contains("Code: 403"), "{error}");

        // A token TokenReview rejects (signed by another sandbox) is refused by OpenBao too.
        let forged = TokenAuthority::new().issue(&eso, &[], 600, Utc::now());
        let error = vault_kubernetes_login(&http, &addr, "kubernetes", "eso", &forged)
            .await
            .unwrap_err();
        assert!(error.contains("permission denied"), "{error}");
    }

    #[test]
    fn server_urls_map_to_openbao_servers_by_the_documented_rule() {
        let addrs = vec![
            "http://127.0.0.1:41000".to_owned(),
            "http://127.0.0.1:41001".to_owned(),
        ];
        assert_eq!(openbao_index_for("http://127.0.0.1:41001", &addrs), Some(1));
        assert_eq!(
            openbao_index_for("http://localhost:41000/", &addrs),
            Some(0)
        );
        assert_eq!(openbao_index_for("http://127.0.0.1:9", &addrs), None);
        assert_eq!(
            openbao_index_for("http://vault-1.vault-internal:8200", &addrs),
            Some(1)
        );
        assert_eq!(
            openbao_index_for("http://openbao-0.openbao-internal:8200", &addrs),
            Some(0)
        );
        assert_eq!(
            openbao_index_for("http://vault.vault.svc:8200", &addrs),
            Some(0)
        );
        assert_eq!(
            openbao_index_for("http://vault-7.vault-internal:8200", &addrs),
            Some(0)
        );
        assert_eq!(openbao_index_for("http://vault:8200", &[]), None);
        assert_eq!(openbao_index_for("not a url", &addrs), None);
    }
}
