//! Shared helpers for the sandbox's integration tests.

use std::path::{Path, PathBuf};

use bringup_sandbox::{Sandbox, SandboxOptions};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// What a command run through kube-rs exec produced.
#[allow(
    dead_code,
    reason = "the tests that exec use it; the others share this module"
)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
}

#[allow(
    dead_code,
    reason = "the tests that exec use it; the others share this module"
)]
impl Ran {
    /// The exit code as kube-apiserver reports it: 0 on Success, else the ExitCode cause.
    pub fn code(&self) -> i32 {
        if self.status.status.as_deref() == Some("Success") {
            return 0;
        }
        self.status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse().ok())
            .unwrap_or(-1)
    }
}

/// Runs `command` in `ns/pod` through kube-rs exec as bringup does: stdin written and
/// closed, stdout and stderr read concurrently, then the status frame.
#[allow(
    dead_code,
    reason = "the tests that exec use it; the others share this module"
)]
pub async fn exec(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    command: &[&str],
    stdin: Option<&[u8]>,
) -> Ran {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = AttachParams::default()
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let mut attached = pods
        .exec(pod, command.to_vec(), &params)
        .await
        .expect("exec upgrades");
    let writer = attached.stdin();
    let feed = async move {
        if let (Some(mut writer), Some(input)) = (writer, stdin) {
            writer.write_all(input).await.expect("stdin");
            writer.shutdown().await.expect("stdin end");
        }
    };
    let mut out = attached.stdout().expect("stdout");
    let mut err = attached.stderr().expect("stderr");
    let status = attached.take_status().expect("status");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let ((), a, b) = tokio::join!(
        feed,
        out.read_to_end(&mut stdout),
        err.read_to_end(&mut stderr)
    );
    a.expect("read stdout");
    b.expect("read stderr");
    Ran {
        stdout,
        stderr,
        status: status.await.expect("a status frame"),
    }
}
