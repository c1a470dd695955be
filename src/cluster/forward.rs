//! A local TCP listener whose connections are forwarded to a pod port, so ordinary HTTP
//! clients can reach a pod through the API server.

use std::net::SocketAddr;

/// A live forward; dropping it stops the listener.
pub struct LocalForward {
    pub addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}
