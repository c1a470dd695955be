//! What stands in for the kubelet and the token machinery of kube-apiserver: it fills the API
//! server's extension slots (exec, port-forward, TokenRequest, TokenReview, service-account
//! bearer tokens) from the cluster file's pods, the OpenBao servers and the emulators.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::api_error::ApiError;
use crate::cluster_file::{DEX_PORT, ExecDecl, ForwardTarget, PodDecl};
use crate::dex_pods::{DexPods, is_ready};
use crate::emulated_pods::EmulatedPods;
use crate::emulator::EmulatorRegistry;
use crate::exec::{EXEC_PROTOCOLS, ExecBackend, ExecOptions, ProcessBackend, serve_exec};
use crate::extensions::{Extensions, HookFuture, HookRequest, RequestHook, TokenAuthenticator};
use crate::faults::FaultTarget;
use crate::openbao::OpenBao;
use crate::portforward::{PORTFORWARD_PROTOCOLS, PortTarget, ports_from_query, serve_portforward};
use crate::server_state::ServerState;
use crate::tokens::{ServiceAccountIdentity, TokenAuthority};

/// The port OpenBao listens on in its pod; a port-forward to it reaches the pod's server.
const OPENBAO_POD_PORT: u16 = 8200;

/// The pods' runtime: shared by the hooks it installs.
pub struct PodRuntime {
    openbao: Option<Arc<OpenBao>>,
    emulators: EmulatorRegistry,
    tokens: Arc<TokenAuthority>,
    /// Holds `vault` and `bao` links to the OpenBao binary, first on an OpenBao pod's PATH.
    bin_dir: Option<PathBuf>,
    /// Per-pod working and home directories, `DIR/pods/NS/NAME`.
    pods_dir: PathBuf,
    /// The cluster file's emulated instances, behind `emulator_instance` pods.
    emulated: Option<Arc<EmulatedPods>>,
    dex: Option<Arc<DexPods>>,
}

impl PodRuntime {
    /// Prepares `dir/bin` (when there are OpenBao servers) and `dir/pods`.
    pub fn new(
        dir: &Path,
        openbao: Option<Arc<OpenBao>>,
        emulators: EmulatorRegistry,
        tokens: Arc<TokenAuthority>,
    ) -> std::io::Result<Self> {
        let bin_dir = match &openbao {
            Some(openbao) => {
                let bin = dir.join("bin");
                std::fs::create_dir_all(&bin)?;
                for name in ["vault", "bao"] {
                    let link = bin.join(name);
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(openbao.binary(), &link)?;
                }
                Some(bin)
            }
            None => None,
        };
        let pods_dir = dir.join("pods");
        std::fs::create_dir_all(&pods_dir)?;
        Ok(Self {
            openbao,
            emulators,
            tokens,
            bin_dir,
            pods_dir,
            emulated: None,
            dex: None,
        })
    }

    /// Runs `emulator_instance` pods against these instances.
    pub fn with_emulated(mut self, emulated: Option<Arc<EmulatedPods>>) -> Self {
        self.emulated = emulated;
        self
    }

    /// Forwards Dex pods' port 5556 to these servers.
    pub fn with_dex(mut self, dex: Arc<DexPods>) -> Self {
        self.dex = Some(dex);
        self
    }

    fn pod_dir(&self, pod: &PodDecl) -> std::io::Result<PathBuf> {
        let dir = self.pods_dir.join(&pod.namespace).join(&pod.name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The extension slots, filled; `state` is the server they are installed in.
    pub fn extensions(self: &Arc<Self>, state: &Arc<ServerState>) -> Extensions {
        Extensions {
            exec: Some(Arc::new(ExecHook(self.clone()))),
            portforward: Some(Arc::new(PortForwardHook(self.clone()))),
            serviceaccount_token: Some(Arc::new(TokenRequestHook(self.clone()))),
            tokenreview: Some(Arc::new(TokenReviewHook(self.clone()))),
            authenticator: Some(Arc::new(ServiceAccountAuthenticator {
                tokens: self.tokens.clone(),
                state: Arc::downgrade(state),
            })),
        }
    }

    fn backend(&self, pod: &PodDecl) -> std::io::Result<ExecBackend> {
        Ok(match &pod.exec {
            Some(ExecDecl::Process(process)) => {
                let mut env = process.env.clone();
                let mut path_prepend = Vec::new();
                if let (Some(index), Some(openbao)) = (pod.openbao, &self.openbao) {
                    let addr = openbao.api_addr(index as usize);
                    env.entry("VAULT_ADDR".into()).or_insert_with(|| addr.clone());
                    env.entry("BAO_ADDR".into()).or_insert(addr);
                    path_prepend.extend(self.bin_dir.clone());
                }
                if !process.path.is_empty() {
                    let path: Vec<String> = process.path.iter().map(|d| d.display().to_string()).collect();
                    env.insert("PATH".into(), path.join(":"));
                }
                let cwd = self.pod_dir(pod)?;
                ExecBackend::Process(ProcessBackend { env, path_prepend, cwd: Some(cwd) })
            }
            Some(ExecDecl::EmulatorInstance(decl)) => match &self.emulated {
                Some(emulated) => ExecBackend::Process(emulated.backend(decl, self.pod_dir(pod)?)),
                None => ExecBackend::Failing(format!(
                    "error executing command in container: the sandbox runs no emulator instance {:?}",
                    decl.instance
                )),
            },
            Some(ExecDecl::Emulator(name)) => match self.emulators.get(name) {
                Some(emulator) => ExecBackend::Emulator(emulator),
                None => ExecBackend::Failing(format!(
                    "error executing command in container: the sandbox has no emulator {name:?} (known: {})",
                    self.emulators.names().join(", ")
                )),
            },
            None => ExecBackend::Failing(
                "error executing command in container: the cluster file declares no exec for this pod".into(),
            ),
        })
    }

    fn port_target(&self, object: &Value, pod: &PodDecl, port: u16) -> PortTarget {
        match pod.forward.get(&port.to_string()) {
            Some(ForwardTarget::Address(target)) => {
                return match target.parse::<SocketAddr>() {
                    Ok(address) => PortTarget::Address(address),
                    Err(_) => PortTarget::Unreachable(format!(
                        "forward target {target:?} is not host:port"
                    )),
                };
            }
            Some(ForwardTarget::Instance(name)) => {
                let address = self
                    .emulated
                    .as_ref()
                    .and_then(|e| e.service().http_addr(name));
                return match address {
                    Some(address) => PortTarget::Address(address),
                    None => PortTarget::Unreachable(format!(
                        "the sandbox runs no emulator instance {name:?}"
                    )),
                };
            }
            None => {}
        }
        if let (Some(_), Some(dex), DEX_PORT) = (&pod.dex, &self.dex, port) {
            // A Dex that lacks a Secret crash-loops: nothing listens on its port.
            return match dex.addr(&pod.namespace, &pod.name) {
                Some(address) if is_ready(object) => PortTarget::Address(address),
                _ => PortTarget::Unreachable(format!(
                    "failed to connect to localhost:{port} inside namespace: dial tcp4 127.0.0.1:{port}: connect: connection refused"
                )),
            };
        }
        if let (Some(index), Some(openbao), OPENBAO_POD_PORT) = (pod.openbao, &self.openbao, port) {
            return PortTarget::Address(openbao.socket_addr(index as usize));
        }
        PortTarget::Unreachable(format!(
            "failed to connect to localhost:{port} inside namespace: dial tcp4 127.0.0.1:{port}: connect: connection refused"
        ))
    }
}

fn bad_request(message: impl Into<String>) -> Response {
    ApiError::bad_request(message).into_response()
}

/// The pod object and its declaration, which the API layer has already found to exist.
fn pod_of(req: &HookRequest) -> Result<(Value, PodDecl), ApiError> {
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let name = req.name.as_deref().unwrap_or_default();
    let object = req.state.get_object("v1", "Pod", Some(namespace), name)?;
    // A pod created through the API has no declaration: it runs nothing, like a pod whose
    // image has no shell.
    let decl = req
        .state
        .cluster_file
        .pod(namespace, name)
        .cloned()
        .unwrap_or_else(|| PodDecl {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: BTreeMap::new(),
            containers: Vec::new(),
            phase: Default::default(),
            ready: false,
            exec: None,
            openbao: None,
            forward: BTreeMap::new(),
            dex: None,
        });
    Ok((object, decl))
}

/// Splits the request and upgrades it to a WebSocket speaking one of `protocols`.
async fn upgrade(
    req: HookRequest,
    protocols: &'static [&'static str],
) -> Result<(WebSocketUpgrade, String), Response> {
    let (mut parts, _body) = req.request.into_parts();
    let Ok(ws) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return Err(bad_request("Upgrade request required"));
    };
    let requested: Vec<String> = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .map(str::to_owned)
        .collect();
    let ws = ws.protocols(protocols.iter().copied());
    let Some(protocol) = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .map(str::to_owned)
    else {
        return Err(bad_request(format!(
            "requested protocol(s) are not supported: {requested:?}; supports {protocols:?}"
        )));
    };
    Ok((ws, protocol))
}

struct ExecHook(Arc<PodRuntime>);

impl RequestHook for ExecHook {
    fn handle(&self, req: HookRequest) -> HookFuture {
        let runtime = self.0.clone();
        Box::pin(async move {
            let query = req.request.uri().query().unwrap_or_default().to_owned();
            let mut options = match ExecOptions::from_query(&query) {
                Ok(options) => options,
                Err(error) => return bad_request(error.to_string()),
            };
            let (pod, decl) = match pod_of(&req) {
                Ok(found) => found,
                Err(error) => return error.into_response(),
            };
            let name = decl.name.clone();
            let containers: Vec<String> = pod["spec"]["containers"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c["name"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if options.container.is_empty() {
                match containers.as_slice() {
                    [only] => options.container = only.clone(),
                    _ => {
                        return bad_request(format!(
                            "a container name must be specified for pod {name}, choose one of: [{}]",
                            containers.join(" ")
                        ));
                    }
                }
            } else if !containers.contains(&options.container) {
                return bad_request(format!(
                    "container {} is not valid for pod {name}",
                    options.container
                ));
            }
            let state = req.state.clone();
            let namespace = decl.namespace.clone();
            let decision = state.faults.decide_exec(&FaultTarget {
                verb: "create",
                resource: "pods/exec",
                namespace: Some(&namespace),
                name: Some(&name),
            });
            if let Some(latency) = decision.latency {
                tokio::time::sleep(latency).await;
            }
            let backend = if decision.matched && decision.latency.is_none()
                || decision.error.is_some()
            {
                let exec_id = hex::encode(rand::random::<[u8; 32]>());
                ExecBackend::Failing(format!(
                    "error executing command in container: failed to exec in container: failed to create exec {exec_id:?}: context deadline exceeded"
                ))
            } else if pod["status"]["phase"] != "Running" {
                // The kubelet finds no running container; kube-apiserver's stream translator
                // has upgraded already and reports the failed upgrade to the kubelet.
                ExecBackend::Failing(format!(
                    "unable to upgrade connection: container not found ({:?})",
                    options.container
                ))
            } else {
                match runtime.backend(&decl) {
                    Ok(backend) => backend,
                    Err(error) => {
                        return ApiError::internal(format!(
                            "preparing pod {namespace}/{name}: {error}"
                        ))
                        .into_response();
                    }
                }
            };
            let (ws, protocol) = match upgrade(req, &EXEC_PROTOCOLS).await {
                Ok(upgraded) => upgraded,
                Err(response) => return response,
            };
            ws.on_upgrade(move |socket| async move {
                let outcome = serve_exec(socket, &protocol, options, backend).await;
                tracing::debug!(pod = %format!("{namespace}/{name}"), ?outcome, "exec finished");
            })
        })
    }
}

struct PortForwardHook(Arc<PodRuntime>);

impl RequestHook for PortForwardHook {
    fn handle(&self, req: HookRequest) -> HookFuture {
        let runtime = self.0.clone();
        Box::pin(async move {
            let query = req.request.uri().query().unwrap_or_default().to_owned();
            let ports = match ports_from_query(&query) {
                Ok(ports) => ports,
                Err(error) => return bad_request(error.to_string()),
            };
            let (pod, decl) = match pod_of(&req) {
                Ok(found) => found,
                Err(error) => return error.into_response(),
            };
            let uid = pod["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let running = pod["status"]["phase"] == "Running";
            let targets: Vec<(u16, PortTarget)> = ports
                .into_iter()
                .map(|port| {
                    let target = if running {
                        runtime.port_target(&pod, &decl, port)
                    } else {
                        PortTarget::Unreachable(format!("pod {} is not running", decl.name))
                    };
                    (port, target)
                })
                .collect();
            let (ws, _protocol) = match upgrade(req, &PORTFORWARD_PROTOCOLS).await {
                Ok(upgraded) => upgraded,
                Err(response) => return response,
            };
            ws.on_upgrade(
                move |socket| async move { serve_portforward(socket, &uid, targets).await },
            )
        })
    }
}

async fn json_body(
    req: HookRequest,
) -> Result<(Arc<ServerState>, Option<String>, Option<String>, Value), Response> {
    let HookRequest {
        state,
        namespace,
        name,
        request,
    } = req;
    let bytes = axum::body::to_bytes(request.into_body(), 3 * 1024 * 1024)
        .await
        .map_err(|_| bad_request("request body too large"))?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })?;
    Ok((state, namespace, name, body))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

struct TokenRequestHook(Arc<PodRuntime>);

impl RequestHook for TokenRequestHook {
    fn handle(&self, req: HookRequest) -> HookFuture {
        let runtime = self.0.clone();
        Box::pin(async move {
            let (state, namespace, name, body) = match json_body(req).await {
                Ok(parts) => parts,
                Err(response) => return response,
            };
            let namespace = namespace.unwrap_or_default();
            let name = name.unwrap_or_default();
            let account = match state.get_object("v1", "ServiceAccount", Some(&namespace), &name) {
                Ok(account) => account,
                Err(error) => return error.into_response(),
            };
            let identity = ServiceAccountIdentity {
                uid: account["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                namespace,
                name,
            };
            match runtime
                .tokens
                .token_request(&identity, &body, chrono::Utc::now())
            {
                Ok(answer) => json_response(StatusCode::CREATED, &answer),
                Err(error) => ApiError::new(422, "Invalid", error.to_string()).into_response(),
            }
        })
    }
}

struct TokenReviewHook(Arc<PodRuntime>);

impl RequestHook for TokenReviewHook {
    fn handle(&self, req: HookRequest) -> HookFuture {
        let runtime = self.0.clone();
        Box::pin(async move {
            let (state, _, _, body) = match json_body(req).await {
                Ok(parts) => parts,
                Err(response) => return response,
            };
            let uid_of = |ns: &str, name: &str| service_account_uid(&state, ns, name);
            match runtime
                .tokens
                .token_review(&body, uid_of, chrono::Utc::now())
            {
                Ok(answer) => json_response(StatusCode::CREATED, &answer),
                Err(error) => ApiError::new(422, "Invalid", error.to_string()).into_response(),
            }
        })
    }
}

fn service_account_uid(state: &ServerState, namespace: &str, name: &str) -> Option<String> {
    let account = state
        .get_object("v1", "ServiceAccount", Some(namespace), name)
        .ok()?;
    account["metadata"]["uid"].as_str().map(str::to_owned)
}

/// Accepts the service-account tokens the sandbox issued as bearer tokens, as kube-apiserver
/// does (OpenBao calls TokenReview with the token being reviewed as its credential).
struct ServiceAccountAuthenticator {
    tokens: Arc<TokenAuthority>,
    state: Weak<ServerState>,
}

impl TokenAuthenticator for ServiceAccountAuthenticator {
    fn authenticate(&self, token: &str) -> Option<String> {
        let state = self.state.upgrade()?;
        let reviewed = self.tokens.review(token, &[], chrono::Utc::now()).ok()?;
        let identity = reviewed.identity;
        let uid = service_account_uid(&state, &identity.namespace, &identity.name)?;
        (uid == identity.uid).then(|| identity.username())
    }
}
