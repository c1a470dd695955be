//! The real cluster, through kube-rs.

/// How to connect: kubeconfig path, context, or in-cluster.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub read_only: bool,
}

/// A cluster reached through kube-rs.
pub struct KubeCluster {
    pub(crate) client: kube::Client,
    pub(crate) context: String,
    pub(crate) server: String,
    pub(crate) read_only: bool,
}
