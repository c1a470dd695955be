//! Errors from the cluster seam, classified so callers can decide what to retry.

/// A failed call to the Kubernetes API.
///
/// Messages carry object names and statuses, never object contents: a Secret's data must not
/// reach an error.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: String, name: String },
    #[error("{kind} {name} was changed by someone else (resourceVersion conflict)")]
    Conflict { kind: String, name: String },
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// 5xx, 429, a dropped connection, a timeout: worth retrying with backoff.
    #[error("transient API error: {message}")]
    Transient { message: String },
    #[error("the API server rejected the request ({code} {reason}): {message}")]
    Rejected {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot connect to the cluster: {message}")]
    Connect { message: String },
    /// TLS refused the server's certificate: no retry changes that, the kubeconfig must.
    #[error(
        "cannot connect to the cluster: {message}; the API server's certificate is not signed by a CA this kubeconfig trusts: check `certificate-authority-data` of the context"
    )]
    Untrusted { message: String },
    #[error("no API resource for {0} on this server (is its CRD installed?)")]
    UnknownType(String),
    /// A mutating call on a read-only (plan/status/verify) cluster: a bug in bringup.
    #[error("bug: `{operation}` attempted during a read-only command (dry run); please report it")]
    DryRunViolation { operation: String },
    #[error("exec in pod {pod}: {message}")]
    Exec { pod: String, message: String },
    #[error("port-forward to pod {pod} port {port}: {message}")]
    PortForward {
        pod: String,
        port: u16,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl ClusterError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::Transient { .. } | ClusterError::Connect { .. }
        )
    }
}
