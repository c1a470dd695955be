//! The HTTP server: accepts connections, authenticates, injects faults, routes discovery,
//! OpenAPI, resources and extension subresources, and writes the audit log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::api::{self, json_response};
use crate::api_error::ApiError;
use crate::audit::AuditEntry;
use crate::cluster_file::FaultError;
use crate::discovery;
use crate::extensions::{HookRequest, RequestHook};
use crate::faults::FaultTarget;
use crate::openapi;
use crate::registry::ResourceType;
use crate::request_info::RequestInfo;
use crate::server_state::ServerState;

/// A connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Lets a handler close its connection without answering (the `drop` fault).
#[derive(Clone)]
struct ConnectionKill(Arc<Notify>);

/// The largest request body accepted, as the real server's limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Serves connections from `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let state_tls = state.tls.as_ref().map(|tls| tls.acceptor());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let kill = Arc::new(Notify::new());
        let state = state.clone();
        let mut conn_shutdown = shutdown.clone();
        let conn_kill = kill.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(ConnectionKill(conn_kill.clone()));
            let state = state.clone();
            async move { Ok::<_, Infallible>(dispatch(state, req.map(Body::new)).await) }
        });
        let tls = state_tls.clone();
        tokio::spawn(async move {
            let serve = async {
                let io: Box<dyn Io> = match tls {
                    None => Box::new(stream),
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => Box::new(stream),
                        // A client that does not trust the CA hangs up in the handshake.
                        Err(_) => return,
                    },
                };
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades()
                    .await;
            };
            tokio::select! {
                _ = serve => {}
                _ = kill.notified() => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

/// A request with a bearer token must carry a token the sandbox knows (401 otherwise). Over
/// plain http a request without one is admitted: client-go (kubectl) never sends credentials
/// there, so the sandbox behaves as kube-apiserver's old insecure port did. Over https a
/// token is required, as on a real server.
fn authorized(state: &ServerState, req: &Request) -> bool {
    let Some(auth) = req.headers().get("authorization") else {
        return state.tls.is_none();
    };
    let Some(token) = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    if token == state.token {
        return true;
    }
    state
        .extensions()
        .authenticator
        .is_some_and(|a| a.authenticate(token).is_some())
}

fn is_public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn dispatch(state: Arc<ServerState>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let info = RequestInfo::parse(&method, &path, &query);
    let command = info.params("command");
    let mut entry = AuditEntry {
        time: now(),
        verb: info.verb.clone(),
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        code: 0,
        user_agent,
        resource: info.resource.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        subresource: info.subresource.clone(),
        command: (info.subresource.as_deref() == Some("exec") && !command.is_empty())
            .then(|| command.iter().map(|c| (*c).to_owned()).collect()),
        fault: None,
    };
    let kill = req.extensions().get::<ConnectionKill>().cloned();
    let response = if !is_public(&path) && !authorized(&state, &req) {
        ApiError::unauthorized().into_response()
    } else {
        let mut injected = None;
        if info.is_resource {
            let resource = info.resource_path();
            let decision = state.faults.decide(&FaultTarget {
                verb: &info.verb,
                resource: &resource,
                namespace: info.namespace.as_deref(),
                name: info.name.as_deref(),
            });
            if let Some(l) = decision.latency {
                tokio::time::sleep(l).await;
            }
            injected = decision.error;
        }
        match injected {
            Some(FaultError::Drop) => {
                entry.fault = Some("drop".into());
                state.audit.record(&entry);
                tracing::debug!(%method, %path, "fault: dropping the connection");
                if let Some(k) = kill {
                    k.0.notify_one();
                }
                return std::future::pending().await;
            }
            Some(fault) => {
                entry.fault = Some(fault_name(fault).into());
                fault_response(&state, &info, fault)
            }
            None => route(state.clone(), info, req).await,
        }
    };
    entry.code = response.status().as_u16();
    state.audit.record(&entry);
    tracing::debug!(%method, %path, code = entry.code, elapsed_us = started.elapsed().as_micros() as u64, "request");
    response
}

fn fault_name(f: FaultError) -> &'static str {
    match f {
        FaultError::InternalError => "500",
        FaultError::TooManyRequests => "429",
        FaultError::Conflict => "409",
        FaultError::Forbidden => "403",
        FaultError::Drop => "drop",
    }
}

fn fault_response(state: &ServerState, info: &RequestInfo, fault: FaultError) -> Response {
    let rt = state
        .registry
        .by_plural(
            &info.group,
            &info.version,
            info.resource.as_deref().unwrap_or_default(),
        )
        .cloned()
        .unwrap_or_else(|| {
            ResourceType::custom(
                &info.group,
                &info.version,
                "Unknown",
                info.resource.as_deref().unwrap_or_default(),
                true,
            )
        });
    let name = info.name.as_deref().unwrap_or_default();
    let err = match fault {
        FaultError::InternalError => ApiError::internal("etcdserver: request timed out"),
        FaultError::TooManyRequests => ApiError::too_many_requests(1),
        FaultError::Conflict => ApiError::conflict(&rt, name),
        FaultError::Forbidden => ApiError::forbidden(
            &rt,
            &info.verb,
            info.name.as_deref(),
            info.namespace.as_deref(),
        ),
        FaultError::Drop => ApiError::internal("dropped"),
    };
    err.into_response()
}

fn text(code: StatusCode, body: &str) -> Response {
    (
        code,
        [("content-type", "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn page_not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

fn json_or_404(v: Option<Value>) -> Response {
    match v {
        Some(v) => json_response(200, &v),
        None => page_not_found(),
    }
}

async fn route(state: Arc<ServerState>, info: RequestInfo, req: Request) -> Response {
    if info.is_resource {
        return resource(state, info, req).await;
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let server_address = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    match parts.as_slice() {
        ["version"] => json_response(200, &discovery::version()),
        ["healthz"] | ["livez"] | ["readyz"] => text(StatusCode::OK, "ok"),
        ["api"] => json_response(200, &discovery::core_versions(&server_address)),
        ["api", v] => json_or_404(discovery::resource_list(&state.registry, "", v)),
        ["apis"] => json_response(200, &discovery::group_list(&state.registry)),
        ["apis", g] => json_or_404(discovery::group(&state.registry, g)),
        ["apis", g, v] => json_or_404(discovery::resource_list(&state.registry, g, v)),
        ["openapi", "v3"] => json_response(200, &openapi::index(&state.registry)),
        ["openapi", "v3", "api", v] => json_or_404(openapi::document(&state.registry, "", v)),
        ["openapi", "v3", "apis", g, v] => json_or_404(openapi::document(&state.registry, g, v)),
        _ => page_not_found(),
    }
}

/// Subresources served by an extension slot, by (group, resource, subresource).
fn hook_for(
    state: &ServerState,
    info: &RequestInfo,
) -> Option<(&'static str, Option<Arc<dyn RequestHook>>)> {
    let ext = state.extensions();
    match (
        info.group.as_str(),
        info.resource.as_deref(),
        info.subresource.as_deref(),
    ) {
        ("", Some("pods"), Some("exec")) => Some(("exec", ext.exec)),
        ("", Some("pods"), Some("portforward")) => Some(("port-forward", ext.portforward)),
        ("", Some("serviceaccounts"), Some("token")) => {
            Some(("token request", ext.serviceaccount_token))
        }
        ("authentication.k8s.io", Some("tokenreviews"), None) => {
            Some(("token review", ext.tokenreview))
        }
        _ => None,
    }
}

async fn resource(state: Arc<ServerState>, info: RequestInfo, req: Request) -> Response {
    if let Some((what, slot)) = hook_for(&state, &info) {
        let rt = match api::resource_type(&state, &info) {
            Ok(rt) => rt,
            Err(e) => return e.into_response(),
        };
        if info.verb != "create" {
            return ApiError::method_not_supported(&rt, &info.verb).into_response();
        }
        if let Some(name) = &info.name {
            if let Err(e) = state
                .store
                .require_namespace(&rt, info.namespace.as_deref())
            {
                return e.into_response();
            }
            if let Err(e) = state.store.get(&rt, info.namespace.as_deref(), name) {
                return e.into_response();
            }
        }
        return match slot {
            Some(hook) => {
                hook.handle(HookRequest {
                    state: state.clone(),
                    namespace: info.namespace.clone(),
                    name: info.name.clone(),
                    request: req,
                })
                .await
            }
            None => ApiError::internal(format!("{what} is not wired into this sandbox build"))
                .into_response(),
        };
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            )
            .into_response();
        }
    };
    match api::handle(state, info, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Binds 127.0.0.1 on `port` (0 for a random one).
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
