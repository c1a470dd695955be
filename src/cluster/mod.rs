//! The seam to Kubernetes: a trait the engine and the steps talk to, a kube-rs implementation,
//! and an in-memory fake for unit tests.
//!
//! Objects travel as `serde_json::Value` (the API's own JSON), addressed by [`TypeRef`] and
//! name, so every kind — custom resources included — goes through one path.

mod error;
mod forward;
mod kube_cluster;

pub mod fake;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use error::ClusterError;
pub use forward::LocalForward;
pub use kube_cluster::{ConnectOptions, KubeCluster};

/// `apiVersion` + `kind` of a type of object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeRef {
    pub api_version: String,
    pub kind: String,
}

impl TypeRef {
    pub fn new(api_version: &str, kind: &str) -> Self {
        TypeRef {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }
    pub fn secret() -> Self {
        Self::new("v1", "Secret")
    }
    pub fn config_map() -> Self {
        Self::new("v1", "ConfigMap")
    }
    pub fn namespace() -> Self {
        Self::new("v1", "Namespace")
    }
    pub fn pod() -> Self {
        Self::new("v1", "Pod")
    }
    pub fn service() -> Self {
        Self::new("v1", "Service")
    }
    pub fn lease() -> Self {
        Self::new("coordination.k8s.io/v1", "Lease")
    }
    pub fn ingress() -> Self {
        Self::new("networking.k8s.io/v1", "Ingress")
    }

    /// The type of a manifest, from its `apiVersion` and `kind`.
    pub fn of(object: &Value) -> Option<Self> {
        Some(Self::new(
            object.get("apiVersion")?.as_str()?,
            object.get("kind")?.as_str()?,
        ))
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// What a command run in a pod produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The remote exit code (0 on success).
    pub exit_code: i32,
}

/// A command to run in a pod.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: Option<&'a str>,
    pub command: &'a [String],
    /// Written to the command's stdin, which is then closed. `None` gives no stdin.
    pub stdin: Option<&'a [u8]>,
    pub timeout: Duration,
}

/// A bidirectional byte stream (a port-forward connection).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// The Kubernetes API as bringup uses it.
///
/// A `read_only` cluster (plan, status, verify) answers every mutating call with
/// [`ClusterError::DryRunViolation`]: that is a bug in bringup, and it must fail loudly.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The kubeconfig context (or `in-cluster`).
    fn context(&self) -> &str;
    /// The API server URL.
    fn server(&self) -> &str;
    fn read_only(&self) -> bool;
    /// How another process of this machine connects to the same cluster, as this one did;
    /// `None` when it cannot (an in-memory fake, a cluster built from a ready configuration).
    fn reconnect(&self) -> Option<ConnectOptions> {
        None
    }

    /// The cluster's identity: the UID of namespace `kube-system`.
    async fn identity(&self) -> Result<String, ClusterError>;

    /// `Ok(None)` when the object does not exist.
    async fn get(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError>;
    /// Objects of a type, in a namespace (or all), optionally filtered by a label selector.
    async fn list(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError>;
    /// Create; `AlreadyExists` when it does.
    async fn create(&self, object: &Value) -> Result<Value, ClusterError>;
    /// Replace; the object's `metadata.resourceVersion` makes it conditional (`Conflict`).
    async fn replace(&self, object: &Value) -> Result<Value, ClusterError>;
    /// Server-side apply with field manager `bringup`.
    async fn apply(&self, object: &Value, force: bool) -> Result<Value, ClusterError>;
    /// JSON merge patch.
    async fn merge_patch(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError>;
    /// Delete; `Ok(false)` when it was already gone.
    async fn delete(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError>;

    /// Run a command in a pod, stdout and stderr read concurrently.
    async fn exec(&self, request: ExecRequest<'_>) -> Result<ExecOutput, ClusterError>;
    /// One connection to a pod's port.
    async fn connect(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Box<dyn Stream>, ClusterError>;
}
