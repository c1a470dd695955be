//! A local TCP listener whose connections are forwarded to a pod port, so ordinary HTTP
//! clients can reach a pod through the API server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

use super::{Cluster, ClusterError};

/// A live forward; dropping it stops the listener.
pub struct LocalForward {
    pub addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl LocalForward {
    /// Listens on `127.0.0.1:0` and pipes every accepted connection to `pod:port` through
    /// [`Cluster::connect`], one port-forward stream per connection.
    pub async fn start(
        cluster: Arc<dyn Cluster>,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Self, ClusterError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            ClusterError::Other(format!(
                "binding a local port for pod {namespace}/{pod}: {e}"
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| ClusterError::Other(format!("local port: {e}")))?;
        let last_error: Arc<Mutex<Option<String>>> = Arc::default();
        let errors = last_error.clone();
        let (namespace, pod) = (namespace.to_string(), pod.to_string());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut local, _)) = listener.accept().await {
                let (cluster, namespace, pod, errors) = (
                    cluster.clone(),
                    namespace.clone(),
                    pod.clone(),
                    errors.clone(),
                );
                // Aborting the listener task drops the set, which aborts the live connections.
                connections.spawn(async move {
                    match cluster.connect(&namespace, &pod, port).await {
                        Ok(mut remote) => {
                            let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "port-forward connection failed");
                            *errors.lock().expect("forward error lock poisoned") =
                                Some(e.to_string());
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(LocalForward {
            addr,
            task,
            last_error,
        })
    }

    /// Why the last forwarded connection could not be opened, if it could not: a client that
    /// sees its connection closed learns the reason here.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .expect("forward error lock poisoned")
            .clone()
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}
