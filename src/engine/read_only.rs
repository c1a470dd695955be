//! A read-only view of any cluster: plan, status and verify go through it, so the engine
//! itself guarantees a dry run makes no mutating call, whatever cluster it is handed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::cluster::{Cluster, ClusterError, ExecOutput, ExecRequest, Stream, TypeRef};

pub struct ReadOnlyCluster {
    inner: Arc<dyn Cluster>,
}

impl ReadOnlyCluster {
    /// The cluster itself when it is read-only already, a guard around it otherwise.
    pub fn wrap(cluster: Arc<dyn Cluster>) -> Arc<dyn Cluster> {
        if cluster.read_only() {
            cluster
        } else {
            Arc::new(ReadOnlyCluster { inner: cluster })
        }
    }

    fn refuse<T>(operation: String) -> Result<T, ClusterError> {
        Err(ClusterError::DryRunViolation { operation })
    }
}

fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("object");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!(
            "{kind} {ns}/{}",
            object["metadata"]["name"].as_str().unwrap_or("")
        ),
        None => format!(
            "{kind} {}",
            object["metadata"]["name"].as_str().unwrap_or("")
        ),
    }
}

#[async_trait]
impl Cluster for ReadOnlyCluster {
    fn context(&self) -> &str {
        self.inner.context()
    }
    fn server(&self) -> &str {
        self.inner.server()
    }
    fn read_only(&self) -> bool {
        true
    }
    async fn identity(&self) -> Result<String, ClusterError> {
        self.inner.identity().await
    }
    async fn get(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        self.inner.get(ty, namespace, name).await
    }
    async fn list(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.inner.list(ty, namespace, label_selector).await
    }
    async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        Self::refuse(format!("create {}", describe(object)))
    }
    async fn replace(&self, object: &Value) -> Result<Value, ClusterError> {
        Self::refuse(format!("replace {}", describe(object)))
    }
    async fn apply(&self, object: &Value, _force: bool) -> Result<Value, ClusterError> {
        Self::refuse(format!("apply {}", describe(object)))
    }
    async fn merge_patch(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
        _patch: &Value,
    ) -> Result<Value, ClusterError> {
        Self::refuse(format!(
            "patch {} {}/{name}",
            ty.kind,
            namespace.unwrap_or("")
        ))
    }
    async fn delete(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        Self::refuse(format!(
            "delete {} {}/{name}",
            ty.kind,
            namespace.unwrap_or("")
        ))
    }
    /// An exec may change anything: refused. Probes that need one (`skip_if: command`) say
    /// so through their own read-only path.
    async fn exec(&self, request: ExecRequest<'_>) -> Result<ExecOutput, ClusterError> {
        Self::refuse(format!("exec in pod {}/{}", request.namespace, request.pod))
    }
    /// A port-forward only reads; what is sent through it is the probe's responsibility.
    async fn connect(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Box<dyn Stream>, ClusterError> {
        self.inner.connect(namespace, pod, port).await
    }
}
