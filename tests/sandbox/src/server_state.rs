//! The state every request handler shares: registry, store, cluster file, audit log,
//! faults and extension slots; plus object access by apiVersion and kind for tests and
//! extensions.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use crate::api_error::ApiError;
use crate::audit::AuditLog;
use crate::cluster_file::ClusterFile;
use crate::emulators::EmulatorService;
use crate::extensions::Extensions;
use crate::faults::Faults;
use crate::registry::{Registry, ResourceType};
use crate::store::Store;

pub struct ServerState {
    pub registry: Registry,
    pub store: Store,
    /// The parsed cluster file, with the pods' exec, openbao and forward stanzas.
    pub cluster_file: ClusterFile,
    /// The admin bearer token written into the kubeconfig.
    pub token: String,
    pub audit: AuditLog,
    pub faults: Faults,
    pub dir: PathBuf,
    /// With the cluster file's `tls: true`: the cluster CA and the serving certificate.
    pub tls: Option<Arc<crate::tls::Tls>>,
    extensions: RwLock<Extensions>,
    emulators: OnceLock<Arc<EmulatorService>>,
}

impl ServerState {
    pub fn new(
        registry: Registry,
        cluster_file: ClusterFile,
        token: String,
        audit: AuditLog,
        dir: PathBuf,
    ) -> Self {
        let faults = Faults::new(cluster_file.faults.as_ref());
        Self {
            registry,
            store: Store::new(),
            cluster_file,
            token,
            audit,
            faults,
            dir,
            tls: None,
            extensions: RwLock::new(Extensions::default()),
            emulators: OnceLock::new(),
        }
    }

    /// Serves HTTPS with this CA and certificate.
    pub fn with_tls(mut self, tls: Option<Arc<crate::tls::Tls>>) -> Self {
        self.tls = tls;
        self
    }

    /// The cluster CA, PEM: the one HTTPS is served with, else a fixed one nothing verifies
    /// against (see `tokens::CLUSTER_CA_PEM`).
    pub fn cluster_ca_pem(&self) -> &str {
        self.tls
            .as_ref()
            .map_or(crate::tokens::CLUSTER_CA_PEM, |tls| tls.ca_pem.as_str())
    }

    pub fn extensions(&self) -> Extensions {
        self.extensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_extensions(&self, extensions: Extensions) {
        *self.extensions.write().unwrap_or_else(|e| e.into_inner()) = extensions;
    }

    /// The emulated Gitea/Forgejo and Kanidm instances of the cluster file's `emulators`, for
    /// tests to read snapshots and counters (`emulators().gitea("gitea")`); `None` when the
    /// cluster file declares none.
    pub fn emulators(&self) -> Option<&Arc<EmulatorService>> {
        self.emulators.get()
    }

    /// Installs the emulator service; a second call is ignored.
    pub fn set_emulators(&self, emulators: Arc<EmulatorService>) {
        let _ = self.emulators.set(emulators);
    }

    fn resource(&self, api_version: &str, kind: &str) -> Result<&ResourceType, ApiError> {
        self.registry.by_kind(api_version, kind).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("no matches for kind \"{kind}\" in version \"{api_version}\""),
            )
        })
    }

    /// The object of this kind, or 404.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.store
            .get(self.resource(api_version, kind)?, namespace, name)
    }

    /// Objects of a kind in one namespace or all.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        Ok(self
            .store
            .list(self.resource(api_version, kind)?, namespace)
            .0)
    }

    /// Creates or replaces an object as given, status included (by its apiVersion, kind,
    /// metadata.namespace and metadata.name).
    pub fn put_object(&self, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        self.store.put(self.resource(&api_version, &kind)?, obj)
    }

    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.store.delete(
            self.resource(api_version, kind)?,
            namespace,
            name,
            None,
            false,
        )
    }

    /// The uid of namespace kube-system, which bringup takes as the cluster's identity.
    pub fn cluster_uid(&self) -> String {
        self.get_object("v1", "Namespace", None, "kube-system")
            .ok()
            .and_then(|ns| {
                ns.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }
}
