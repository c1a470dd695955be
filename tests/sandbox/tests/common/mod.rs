//! Shared helpers for the sandbox's integration tests.

use std::path::{Path, PathBuf};

use bringup_sandbox::{Sandbox, SandboxOptions};

pub fn cluster(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clusters")
        .join(name)
}

/// Writes a cluster file into `dir` and returns its path.
pub fn cluster_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("cluster.yaml");
    std::fs::write(&path, text).expect("write cluster file");
    path
}

pub async fn start(cluster_file: PathBuf, dir: &Path) -> Sandbox {
    Sandbox::start(SandboxOptions {
        cluster_file,
        dir: dir.join("sandbox"),
        port: None,
    })
    .await
    .expect("sandbox starts")
}

pub async fn client(sandbox: &Sandbox) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}
