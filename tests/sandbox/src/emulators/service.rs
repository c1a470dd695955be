//! The emulator service: one loopback HTTP endpoint for CLI runs (`POST /cli/{instance}`) and
//! snapshots (`GET /state/{instance}`), plus each instance's product API on its own listener
//! so a pod's port can be forwarded to it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::cli_exchange::{CliOutput, CliRequest};
use super::gitea::Gitea;
use super::instance::{Instance, InstanceConfig, InstanceSnapshot};
use super::kanidm::Kanidm;

struct Running {
    instance: Instance,
    http_addr: SocketAddr,
}

/// Every emulated instance of a sandbox, served until dropped.
pub struct EmulatorService {
    cli_addr: SocketAddr,
    instances: Arc<BTreeMap<String, Running>>,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorService {
    /// Binds the CLI endpoint and one listener per instance on 127.0.0.1, ports chosen by the OS.
    pub async fn start(configs: Vec<InstanceConfig>) -> std::io::Result<Self> {
        let mut instances = BTreeMap::new();
        let mut tasks = Vec::new();
        for config in configs {
            let instance = Instance::new(config.product);
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let http_addr = listener.local_addr()?;
            tasks.push(serve(listener, instance.router()));
            instances.insert(
                config.name,
                Running {
                    instance,
                    http_addr,
                },
            );
        }
        let instances = Arc::new(instances);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let cli_addr = listener.local_addr()?;
        let router = Router::new()
            .route("/cli/{instance}", post(run_cli))
            .route("/state/{instance}", get(state))
            .with_state(instances.clone());
        tasks.push(serve(listener, router));
        Ok(Self {
            cli_addr,
            instances,
            tasks,
        })
    }

    /// What `BRINGUP_EMULATOR_URL` is set to in emulated pods.
    pub fn cli_url(&self) -> String {
        format!("http://{}", self.cli_addr)
    }

    /// The instances' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.instances.keys().cloned().collect()
    }

    /// Where the instance's product API listens; `None` for an unknown instance.
    pub fn http_addr(&self, instance: &str) -> Option<SocketAddr> {
        self.instances.get(instance).map(|r| r.http_addr)
    }

    pub fn snapshot(&self, instance: &str) -> Option<InstanceSnapshot> {
        self.instances.get(instance).map(|r| r.instance.snapshot())
    }

    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.get(name).map(|r| &r.instance)
    }

    pub fn gitea(&self, name: &str) -> Option<Arc<Gitea>> {
        match self.instance(name)? {
            Instance::Gitea(gitea) => Some(gitea.clone()),
            Instance::Kanidm(_) => None,
        }
    }

    pub fn kanidm(&self, name: &str) -> Option<Arc<Kanidm>> {
        match self.instance(name)? {
            Instance::Kanidm(kanidm) => Some(kanidm.clone()),
            Instance::Gitea(_) => None,
        }
    }

    /// Runs a command in-process, as `POST /cli/{instance}` would.
    pub fn run_cli(&self, instance: &str, request: &CliRequest) -> Option<CliOutput> {
        self.instance(instance).map(|i| i.run_cli(request))
    }
}

impl EmulatorService {
    /// Stops every listener; the state stays readable.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for EmulatorService {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "emulator listener stopped");
        }
    })
}

type Instances = Arc<BTreeMap<String, Running>>;

async fn run_cli(
    State(instances): State<Instances>,
    Path(name): Path<String>,
    axum::Json(request): axum::Json<CliRequest>,
) -> Response {
    match instances.get(&name) {
        Some(running) => axum::Json(running.instance.run_cli(&request).to_wire()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no emulated instance named {name}"),
        )
            .into_response(),
    }
}

async fn state(State(instances): State<Instances>, Path(name): Path<String>) -> Response {
    match instances.get(&name) {
        Some(running) => axum::Json(running.instance.snapshot()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no emulated instance named {name}"),
        )
            .into_response(),
    }
}
