//! The External Secrets sync controller the sandbox runs in place of ESO for the kubernetes
//! provider: each ExternalSecret (external-secrets.io/v1) whose store uses `provider.kubernetes`
//! is synced from the store's remote namespace into its target Secret, with the `Ready`
//! condition ESO writes (`SecretSynced` / `SecretSyncedError`).
//!
//! Like the store controller it is a client of the sandbox's own API, under the same user
//! agent, so the audit log tells its requests from the tests'. It writes only on a change, so a
//! settled cluster stays still. ExternalSecrets of other providers are left alone.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// How often every ExternalSecret is synced again; `spec.refreshInterval` is not honoured.
pub const RESYNC: Duration = Duration::from_millis(500);

/// The label ESO puts on the Secrets it manages.
pub const MANAGED_LABEL: &str = "reconcile.external-secrets.io/managed";

const REASON_SYNCED: &str = "SecretSynced";
const REASON_ERROR: &str = "SecretSyncedError";
const MSG_SYNCED: &str = "secret synced";
const MSG_ERROR: &str = "could not get secret data from provider";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "external-secrets.io".into(),
        version: "v1".into(),
        api_version: "external-secrets.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Why an ExternalSecret could not be synced; kept for tests and logged, as ESO logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("store {kind} {name} not found")]
    StoreNotFound { kind: String, name: String },
    #[error("store {kind} {name} is not ready")]
    StoreNotReady { kind: String, name: String },
    #[error("store {kind} {name} does not use the kubernetes provider")]
    NotKubernetes { kind: String, name: String },
    #[error("Secret {namespace}/{name} not found")]
    RemoteNotFound { namespace: String, name: String },
    #[error("property {property} not found in Secret {namespace}/{name}")]
    PropertyNotFound {
        namespace: String,
        name: String,
        property: String,
    },
    #[error("target Secret {namespace}/{name} is owned by another resource")]
    TargetOwned { namespace: String, name: String },
    #[error("the API answered: {0}")]
    Api(String),
}

impl From<kube::Error> for SyncError {
    fn from(error: kube::Error) -> Self {
        Self::Api(error.to_string())
    }
}

/// Syncs every kubernetes-provider ExternalSecret of the sandbox.
pub struct ExternalSecretController {
    client: kube::Client,
    last_errors: BTreeMap<(String, String), SyncError>,
}

impl ExternalSecretController {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            last_errors: BTreeMap::new(),
        }
    }

    /// Why each ExternalSecret that is not synced is not, by (namespace, name).
    pub fn last_errors(&self) -> &BTreeMap<(String, String), SyncError> {
        &self.last_errors
    }

    /// Runs until `shutdown` resolves, a sweep every [`RESYNC`].
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.sweep().await {
                tracing::debug!(%error, "external secret sweep failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    /// One pass over all ExternalSecrets; public so tests can drive it step by step.
    pub async fn sweep(&mut self) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &resource("ExternalSecret", "externalsecrets"),
        );
        let mut seen = Vec::new();
        for es in api.list(&ListParams::default()).await?.items {
            let namespace = es.metadata.namespace.clone().unwrap_or_default();
            let name = es.metadata.name.clone().unwrap_or_default();
            let key = (namespace.clone(), name.clone());
            seen.push(key.clone());
            let result = match self.store_provider(&es).await {
                Ok(None) => continue,
                Ok(Some(remote_namespace)) => self.sync(&es, &remote_namespace).await,
                Err(error) => Err(error),
            };
            match &result {
                Ok(()) => {
                    self.last_errors.remove(&key);
                }
                Err(error) => {
                    tracing::info!(externalsecret = %format!("{namespace}/{name}"), %error, "external secret not synced");
                    self.last_errors.insert(key, error.clone());
                }
            }
            self.write_condition(&es, result.is_ok()).await?;
        }
        self.last_errors.retain(|key, _| seen.contains(key));
        Ok(())
    }

    /// The remote namespace of the ExternalSecret's store, `None` when the store is of
    /// another provider (not this controller's business).
    async fn store_provider(&self, es: &DynamicObject) -> Result<Option<String>, SyncError> {
        let reference = &es.data["spec"]["secretStoreRef"];
        let kind = reference["kind"]
            .as_str()
            .unwrap_or("SecretStore")
            .to_owned();
        let name = reference["name"].as_str().unwrap_or_default().to_owned();
        let store = match kind.as_str() {
            "ClusterSecretStore" => {
                Api::<DynamicObject>::all_with(
                    self.client.clone(),
                    &resource("ClusterSecretStore", "clustersecretstores"),
                )
                .get_opt(&name)
                .await?
            }
            _ => {
                Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    es.metadata.namespace.as_deref().unwrap_or_default(),
                    &resource("SecretStore", "secretstores"),
                )
                .get_opt(&name)
                .await?
            }
        };
        let Some(store) = store else {
            return Err(SyncError::StoreNotFound { kind, name });
        };
        let provider = &store.data["spec"]["provider"];
        let Some(kubernetes) = provider.get("kubernetes").filter(|k| k.is_object()) else {
            return if provider.is_object() {
                Ok(None)
            } else {
                Err(SyncError::NotKubernetes { kind, name })
            };
        };
        let ready = store.data["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if !ready {
            return Err(SyncError::StoreNotReady { kind, name });
        }
        Ok(Some(
            kubernetes["remoteNamespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
        ))
    }

    async fn remote(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, ByteString>, SyncError> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await?
            .ok_or_else(|| SyncError::RemoteNotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
        Ok(secret.data.unwrap_or_default())
    }

    /// The target Secret's data: `spec.dataFrom[].extract` first, then `spec.data[]`, later
    /// entries winning, as ESO merges them.
    async fn wanted_data(
        &self,
        es: &DynamicObject,
        remote_namespace: &str,
    ) -> Result<BTreeMap<String, ByteString>, SyncError> {
        let mut data = BTreeMap::new();
        let spec = &es.data["spec"];
        for from in spec["dataFrom"].as_array().into_iter().flatten() {
            if let Some(key) = from["extract"]["key"].as_str() {
                data.extend(self.remote(remote_namespace, key).await?);
            }
        }
        for entry in spec["data"].as_array().into_iter().flatten() {
            let secret_key = entry["secretKey"].as_str().unwrap_or_default();
            let key = entry["remoteRef"]["key"].as_str().unwrap_or_default();
            let remote = self.remote(remote_namespace, key).await?;
            let value =
                match entry["remoteRef"]["property"].as_str() {
                    Some(property) => remote.get(property).cloned().ok_or_else(|| {
                        SyncError::PropertyNotFound {
                            namespace: remote_namespace.to_owned(),
                            name: key.to_owned(),
                            property: property.to_owned(),
                        }
                    })?,
                    // Without a property the kubernetes provider returns the whole Secret as JSON.
                    None => {
                        let map: BTreeMap<&String, String> = remote
                            .iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect();
                        ByteString(serde_json::to_vec(&map).unwrap_or_default())
                    }
                };
            data.insert(secret_key.to_owned(), value);
        }
        Ok(data)
    }

    async fn sync(&self, es: &DynamicObject, remote_namespace: &str) -> Result<(), SyncError> {
        let data = self.wanted_data(es, remote_namespace).await?;
        let namespace = es.metadata.namespace.clone().unwrap_or_default();
        let es_name = es.metadata.name.clone().unwrap_or_default();
        let target = es.data["spec"]["target"]["name"]
            .as_str()
            .unwrap_or(&es_name)
            .to_owned();
        let owner = OwnerReference {
            api_version: "external-secrets.io/v1".into(),
            kind: "ExternalSecret".into(),
            name: es_name,
            uid: es.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let api = Api::<Secret>::namespaced(self.client.clone(), &namespace);
        match api.get_opt(&target).await? {
            None => {
                let mut secret = Secret {
                    data: Some(data),
                    type_: Some("Opaque".into()),
                    ..Secret::default()
                };
                secret.metadata.name = Some(target);
                secret.metadata.namespace = Some(namespace);
                secret.metadata.labels =
                    Some(BTreeMap::from([(MANAGED_LABEL.into(), "true".into())]));
                secret.metadata.owner_references = Some(vec![owner]);
                api.create(&PostParams::default(), &secret).await?;
            }
            Some(mut secret) => {
                let owners = secret.metadata.owner_references.clone().unwrap_or_default();
                if owners
                    .iter()
                    .any(|o| o.controller == Some(true) && o.uid != owner.uid)
                {
                    return Err(SyncError::TargetOwned {
                        namespace,
                        name: target,
                    });
                }
                let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
                let unchanged = secret.data.as_ref() == Some(&data)
                    && labels.get(MANAGED_LABEL).map(String::as_str) == Some("true")
                    && owners.iter().any(|o| o.uid == owner.uid);
                if unchanged {
                    return Ok(());
                }
                labels.insert(MANAGED_LABEL.into(), "true".into());
                if !owners.iter().any(|o| o.uid == owner.uid) {
                    secret
                        .metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(owner);
                }
                secret.data = Some(data);
                secret.string_data = None;
                api.replace(&target, &PostParams::default(), &secret)
                    .await?;
            }
        }
        Ok(())
    }

    async fn write_condition(&self, es: &DynamicObject, synced: bool) -> Result<(), kube::Error> {
        let (status, reason, message) = match synced {
            true => ("True", REASON_SYNCED, MSG_SYNCED),
            false => ("False", REASON_ERROR, MSG_ERROR),
        };
        let current = es.data["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or(Value::Null);
        if current["status"] == status && current["reason"] == reason {
            return Ok(());
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut new_status = json!({
            "conditions": [{
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
            }],
            "refreshTime": now,
        });
        if synced {
            let target = es.data["spec"]["target"]["name"]
                .as_str()
                .or(es.metadata.name.as_deref())
                .unwrap_or_default();
            new_status["binding"] = json!({ "name": target });
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            es.metadata.namespace.as_deref().unwrap_or_default(),
            &resource("ExternalSecret", "externalsecrets"),
        );
        api.patch_status(
            es.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": new_status })),
        )
        .await?;
        Ok(())
    }
}
