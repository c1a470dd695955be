//! Starting and stopping a sandbox: load the cluster file, seed the store, serve, write the
//! kubeconfig. `Sandbox` runs on the caller's runtime; `SandboxHandle` on its own thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::cluster_file::ClusterFile;
use crate::controllers::StoreController;
use crate::dex_pods::DexPods;
use crate::emulated_pods::EmulatedPods;
use crate::emulator::EmulatorRegistry;
use crate::emulators::EmulatorService;
use crate::external_secret_controller::ExternalSecretController;
use crate::openbao::OpenBao;
use crate::pod_runtime::PodRuntime;
use crate::registry::{Registry, ResourceType};
use crate::server;
use crate::server_state::ServerState;
use crate::tokens::TokenAuthority;

/// What to start.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub cluster_file: PathBuf,
    /// Where the kubeconfig and audit log go; created if missing.
    pub dir: PathBuf,
    /// The port on 127.0.0.1; a random free one when None.
    pub port: Option<u16>,
}

/// A running sandbox API server.
pub struct Sandbox {
    state: Arc<ServerState>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The OpenBao servers behind the pods; they stop when the sandbox does.
    openbao: Option<Arc<OpenBao>>,
    /// The store, ExternalSecret and Dex readiness controllers.
    controllers: Vec<tokio::task::JoinHandle<()>>,
    emulated: Option<Arc<EmulatedPods>>,
    dex: Arc<DexPods>,
}

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn seed(state: &ServerState) -> anyhow::Result<()> {
    let file = &state.cluster_file;
    let mut namespaces: Vec<&str> = SYSTEM_NAMESPACES.to_vec();
    for ns in &file.namespaces {
        if !namespaces.contains(&ns.as_str()) {
            namespaces.push(ns);
        }
    }
    for ns in &namespaces {
        state
            .put_object(
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } }),
            )
            .with_context(|| format!("creating namespace {ns}"))?;
        state
            .put_object(json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "default", "namespace": ns } }))
            .with_context(|| format!("creating serviceaccount {ns}/default"))?;
        crate::root_ca::publish(state, ns)
            .with_context(|| format!("creating configmap {ns}/{}", crate::root_ca::NAME))?;
    }
    for (i, pod) in file.pods.iter().enumerate() {
        state.put_object(pod.to_object(i)).with_context(|| {
            format!(
                "creating pod {}/{} (is its namespace listed under namespaces?)",
                pod.namespace, pod.name
            )
        })?;
    }
    for obj in &file.objects {
        let what = format!(
            "{} {}/{}",
            obj["kind"].as_str().unwrap_or("?"),
            obj.pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or(""),
            obj.pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        );
        let mut obj = obj.clone();
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        if let Some(rt) = state.registry.by_kind(&api_version, &kind) {
            crate::api::allocate(state, rt, &mut obj);
        }
        state
            .put_object(obj)
            .with_context(|| format!("creating object {what} from the cluster file"))?;
    }
    Ok(())
}

/// `DIR/env`: shell-sourceable addresses of what the sandbox runs (`KUBERNETES_HOST=...`,
/// `BAO_ADDR_0=...`, `EMULATOR_HTTP_GITEA=127.0.0.1:PORT`).
fn write_env_file(
    dir: &Path,
    api_server: &str,
    openbao: Option<&OpenBao>,
    emulators: Option<&EmulatorService>,
) -> anyhow::Result<()> {
    let mut text = format!(
        "KUBECONFIG={}\nKUBERNETES_HOST={api_server}\n",
        dir.join("kubeconfig").display()
    );
    if let Some(emulators) = emulators {
        text.push_str(&format!("EMULATOR_CLI_URL={}\n", emulators.cli_url()));
        for name in emulators.names() {
            if let Some(addr) = emulators.http_addr(&name) {
                let var: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                text.push_str(&format!("EMULATOR_HTTP_{var}={addr}\n"));
            }
        }
    }
    if let Some(openbao) = openbao {
        text.push_str(&format!("BAO_BIN={}\n", openbao.binary().display()));
        text.push_str(&format!(
            "BAO_AUDIT_LOG={}\n",
            openbao.audit_log_path().display()
        ));
        for index in 0..openbao.count() {
            text.push_str(&format!("BAO_ADDR_{index}={}\n", openbao.api_addr(index)));
        }
    }
    let path = dir.join("env");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sandbox {
    /// Starts the server; when this returns, DIR/kubeconfig exists and requests are served.
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Self> {
        Self::start_with_emulators(options, EmulatorRegistry::with_builtin()).await
    }

    /// As [`Sandbox::start`], with the exec emulators pods may name (`exec: { emulator: NAME }`).
    pub async fn start_with_emulators(
        options: SandboxOptions,
        emulators: EmulatorRegistry,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&options.dir)
            .with_context(|| format!("creating sandbox dir {}", options.dir.display()))?;
        // Absolute: the OpenBao servers run in their own directories, where a relative
        // `--dir .sandbox` would point nowhere.
        let mut options = options;
        options.dir = std::fs::canonicalize(&options.dir)
            .with_context(|| format!("resolving sandbox dir {}", options.dir.display()))?;
        let cluster_file = ClusterFile::load(&options.cluster_file)?;
        let mut registry = Registry::builtin();
        for r in &cluster_file.resources {
            registry.add(ResourceType::custom(
                &r.group,
                &r.version,
                &r.kind,
                &r.plural,
                r.namespaced,
            ));
        }
        let audit_path = options.dir.join("audit.jsonl");
        // A fresh log per start: tests count requests from zero.
        std::fs::write(&audit_path, b"")
            .with_context(|| format!("creating {}", audit_path.display()))?;
        let audit = AuditLog::create(&audit_path)
            .with_context(|| format!("opening {}", audit_path.display()))?;
        let tls = match cluster_file.tls {
            false => None,
            true => Some(Arc::new(
                crate::tls::Tls::generate().context("making the cluster CA")?,
            )),
        };
        let state = Arc::new(
            ServerState::new(
                registry,
                cluster_file,
                random_token(),
                audit,
                options.dir.clone(),
            )
            .with_tls(tls),
        );
        let scheme = if state.tls.is_some() { "https" } else { "http" };
        seed(&state)?;
        let servers = state.cluster_file.openbao.as_ref().map_or(0, |o| o.servers) as usize;
        let openbao = match servers {
            0 => None,
            n => Some(Arc::new(
                OpenBao::start(&options.dir.join("openbao"), n)
                    .await
                    .context("starting the OpenBao servers")?,
            )),
        };
        let emulated = match state.cluster_file.emulators.as_slice() {
            [] => None,
            configs => Some(Arc::new(
                EmulatedPods::start(&options.dir, configs.to_vec())
                    .await
                    .context("starting the emulated instances")?,
            )),
        };
        if let Some(emulated) = &emulated {
            state.set_emulators(emulated.service().clone());
        }
        let dex = Arc::new(
            DexPods::start(&state.cluster_file)
                .await
                .context("starting the Dex pods' servers")?,
        );
        let runtime = Arc::new(
            PodRuntime::new(
                &options.dir,
                openbao.clone(),
                emulators,
                Arc::new(TokenAuthority::new()),
            )
            .context("preparing the pods' directories")?
            .with_emulated(emulated.clone())
            .with_dex(dex.clone()),
        );
        state.set_extensions(runtime.extensions(&state));
        let (listener, addr) = server::bind(options.port.unwrap_or(0))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port.unwrap_or(0)))?;
        write_env_file(
            &options.dir,
            &format!("{scheme}://{addr}"),
            openbao.as_deref(),
            emulated.as_ref().map(|e| e.service().as_ref()),
        )?;
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, state.clone(), rx));
        let mut controllers = Vec::new();
        {
            let mut config = kube::Config::new(
                format!("{scheme}://{addr}")
                    .parse()
                    .context("the sandbox URL")?,
            );
            config.root_cert = state.tls.as_ref().map(|tls| vec![tls.ca_der.clone()]);
            config.auth_info.token = Some(state.token.clone().into());
            // Its requests are ESO's, not the client's under test: the audit log tells them apart.
            config.headers.push((
                axum::http::header::USER_AGENT,
                axum::http::HeaderValue::from_static(crate::controllers::USER_AGENT),
            ));
            let client =
                kube::Client::try_from(config).context("a client for the store controller")?;
            let addrs = openbao
                .as_ref()
                .map(|o| (0..o.count()).map(|i| o.api_addr(i)).collect())
                .unwrap_or_default();
            let stopped = |mut stop: watch::Receiver<bool>| async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            controllers.push(tokio::spawn(
                StoreController::new(client.clone(), addrs).run(stopped(shutdown.subscribe())),
            ));
            controllers.push(tokio::spawn(
                ExternalSecretController::new(client).run(stopped(shutdown.subscribe())),
            ));
            controllers.push(tokio::spawn(DexPods::run(
                state.clone(),
                stopped(shutdown.subscribe()),
            )));
        }
        let sandbox = Self {
            state,
            addr,
            shutdown,
            task,
            openbao,
            controllers,
            emulated,
            dex,
        };
        crate::kubeconfig::write(
            &sandbox.kubeconfig_path(),
            &sandbox.url(),
            &sandbox.state.token,
            sandbox.state.tls.as_ref().map(|tls| tls.ca_pem.as_str()),
        )
        .with_context(|| format!("writing {}", sandbox.kubeconfig_path().display()))?;
        tracing::info!(url = %sandbox.url(), dir = %options.dir.display(), "sandbox API server ready");
        Ok(sandbox)
    }

    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state.dir.join("kubeconfig")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.state.dir.join("audit.jsonl")
    }

    /// The shared state: store, cluster file, extension slots.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The OpenBao servers behind the pods (to restart or wipe one in a test).
    pub fn openbao(&self) -> Option<&Arc<OpenBao>> {
        self.openbao.as_ref()
    }

    /// The emulated Gitea/Forgejo and Kanidm instances (snapshots, counters), `None` when the
    /// cluster file declares no `emulators`.
    pub fn emulators(&self) -> Option<&Arc<EmulatorService>> {
        self.emulated.as_ref().map(|e| e.service())
    }

    /// Stops accepting, closes open connections, waits for the server task and stops the
    /// controllers, the emulators, the Dex servers and the OpenBao servers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        for controller in self.controllers {
            let _ = controller.await;
        }
        if let Some(emulated) = &self.emulated {
            emulated.service().stop();
        }
        self.dex.stop();
        if let Some(openbao) = &self.openbao {
            openbao.stop();
        }
    }
}

/// A sandbox on its own thread and runtime, for tests that run binaries; stops on drop.
pub struct SandboxHandle {
    url: String,
    dir: PathBuf,
    state: Arc<ServerState>,
    openbao: Option<Arc<OpenBao>>,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SandboxHandle {
    pub fn start(options: SandboxOptions) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sandbox".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(
                            anyhow::Error::from(e).context("building the sandbox runtime")
                        ));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Sandbox::start(options).await {
                        Ok(sandbox) => {
                            let _ = ready_tx.send(Ok((
                                sandbox.url(),
                                sandbox.state().clone(),
                                sandbox.openbao().cloned(),
                                tokio::runtime::Handle::current(),
                            )));
                            let _ = stop_rx.await;
                            sandbox.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (url, state, openbao, runtime) = ready_rx
            .recv()
            .context("the sandbox thread ended before it was ready")??;
        let dir = state.dir.clone();
        Ok(Self {
            url,
            dir,
            state,
            openbao,
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The emulated Gitea/Forgejo and Kanidm instances, to read their snapshots and counters
    /// (`handle.emulators().unwrap().gitea("gitea").unwrap().snapshot()`); `None` when the
    /// cluster file declares no `emulators`. The state stays readable after the sandbox stops.
    pub fn emulators(&self) -> Option<&Arc<EmulatorService>> {
        self.state.emulators()
    }

    /// The OpenBao servers behind the pods, for their addresses.
    pub fn openbao(&self) -> Option<&Arc<OpenBao>> {
        self.openbao.as_ref()
    }

    /// Stops OpenBao server `index` and starts it again on its data: it comes back sealed.
    pub fn restart_openbao(&self, index: usize) -> anyhow::Result<()> {
        self.on_openbao(index, |openbao| async move { openbao.restart(index).await })
    }

    /// Stops OpenBao server `index`, deletes its data and starts it again uninitialised.
    pub fn wipe_openbao(&self, index: usize) -> anyhow::Result<()> {
        self.on_openbao(index, |openbao| async move { openbao.wipe(index).await })
    }

    /// Runs `work` on the sandbox's runtime: the servers it starts die with the thread that
    /// spawned them (PR_SET_PDEATHSIG), so they must be spawned from the sandbox's own workers.
    fn on_openbao<F, Fut>(&self, index: usize, work: F) -> anyhow::Result<()>
    where
        F: FnOnce(Arc<OpenBao>) -> Fut,
        Fut:
            std::future::Future<Output = Result<(), crate::openbao::OpenBaoError>> + Send + 'static,
    {
        let openbao = self
            .openbao
            .clone()
            .filter(|o| index < o.count())
            .with_context(|| format!("the sandbox runs no OpenBao server {index}"))?;
        let (done, wait) = std::sync::mpsc::channel();
        let task = work(openbao);
        self.runtime.spawn(async move {
            let _ = done.send(task.await);
        });
        wait.recv()
            .context("the sandbox stopped while OpenBao was restarting")?
            .map_err(anyhow::Error::from)
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
