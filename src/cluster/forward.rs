//! A local TCP listener whose connections are forwarded to a pod port, so ordinary HTTP
//! clients can reach a pod through the API server.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Cluster, ClusterError};

/// A live forward; dropping it stops the listener.
pub struct LocalForward {
    pub addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl LocalForward {
    /// Listens on `127.0.0.1:0` and pipes each accepted connection through
    /// `cluster.connect(namespace, pod, port)`.
    pub async fn start(cluster: Arc<dyn Cluster>, namespace: &str, pod: &str, port: u16) -> Result<LocalForward, ClusterError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| ClusterError::PortForward {
            pod: format!("{namespace}/{pod}"),
            port,
            message: format!("cannot listen on 127.0.0.1: {e}"),
        })?;
        let addr = listener.local_addr().map_err(|e| ClusterError::PortForward {
            pod: format!("{namespace}/{pod}"),
            port,
            message: e.to_string(),
        })?;
        let (namespace, pod) = (namespace.to_string(), pod.to_string());
        let task = tokio::spawn(async move {
            while let Ok((mut local, _)) = listener.accept().await {
                let cluster = cluster.clone();
                let (namespace, pod) = (namespace.clone(), pod.clone());
                tokio::spawn(async move {
                    // A failed connection drops the local socket: the client sees the error.
                    if let Ok(mut remote) = cluster.connect(&namespace, &pod, port).await {
                        let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                    }
                });
            }
        });
        Ok(LocalForward { addr, task })
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}
