//! Shared test helpers: a minimal HTTP server exposing one pod's exec and port-forward, so the
//! protocol modules are tested with the real kube-rs client before the API server wires them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::exec::{EXEC_PROTOCOLS, ExecBackend, ExecOptions, serve_exec};
use crate::portforward::{PORTFORWARD_PROTOCOLS, PortTarget, ports_from_query, serve_portforward};

/// Serves `pods/{name}/exec` with `backend` and `pods/{name}/portforward` to `forward`
/// (pod port → local address) on a random port; returns a kube client for it.
pub async fn pod_server(backend: ExecBackend, forward: Vec<(u16, SocketAddr)>) -> kube::Client {
    pod_server_speaking(&EXEC_PROTOCOLS, backend, forward).await
}

/// As [`pod_server`], with exec limited to the given subprotocols (to test v4 alone).
pub async fn pod_server_speaking(
    exec_protocols: &'static [&'static str],
    backend: ExecBackend,
    forward: Vec<(u16, SocketAddr)>,
) -> kube::Client {
    let backend = Arc::new(backend);
    let forward = Arc::new(forward);
    let app = Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            get(move |ws: WebSocketUpgrade, RawQuery(query): RawQuery| {
                let backend = (*backend).clone();
                async move {
                    let options = match ExecOptions::from_query(&query.unwrap_or_default()) {
                        Ok(options) => options,
                        Err(error) => {
                            return (axum::http::StatusCode::BAD_REQUEST, error.to_string())
                                .into_response();
                        }
                    };
                    let ws = ws.protocols(exec_protocols.iter().copied());
                    let protocol = ws
                        .selected_protocol()
                        .map(|p| p.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    ws.on_upgrade(move |socket| async move {
                        serve_exec(socket, &protocol, options, backend).await;
                    })
                }
            }),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/portforward",
            get(move |ws: WebSocketUpgrade, RawQuery(query): RawQuery| {
                let forward = forward.clone();
                async move {
                    let ports = match ports_from_query(&query.unwrap_or_default()) {
                        Ok(ports) => ports,
                        Err(error) => {
                            return (axum::http::StatusCode::BAD_REQUEST, error.to_string())
                                .into_response();
                        }
                    };
                    let targets = ports
                        .into_iter()
                        .map(|port| {
                            let target = forward
                                .iter()
                                .find(|(p, _)| *p == port)
                                .map(|(_, address)| PortTarget::Address(*address))
                                .unwrap_or_else(|| PortTarget::Unreachable("no such port".into()));
                            (port, target)
                        })
                        .collect();
                    let response: Response = ws
                        .protocols(PORTFORWARD_PROTOCOLS)
                        .on_upgrade(move |socket| serve_portforward(socket, "uid-1", targets));
                    response
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = kube::Config::new(format!("http://{address}").parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// Starts one OpenBao server, initialises it with one key share and unseals it; returns it with
/// its root token.
pub async fn unsealed_openbao(dir: &std::path::Path) -> (crate::openbao::OpenBao, String) {
    let openbao = crate::openbao::OpenBao::start(dir, 1).await.unwrap();
    let addr = openbao.api_addr(0);
    let init = bao(
        &addr,
        "",
        "PUT",
        "sys/init",
        serde_json::json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    let key = init["keys"][0].as_str().unwrap().to_owned();
    bao(
        &addr,
        "",
        "PUT",
        "sys/unseal",
        serde_json::json!({ "key": key }),
    )
    .await;
    let root = init["root_token"].as_str().unwrap().to_owned();
    // A fresh raft node needs a moment to elect itself before it serves writes.
    for _ in 0..200 {
        let health = reqwest::get(format!("{addr}/v1/sys/health")).await.unwrap();
        if health.status() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    (openbao, root)
}

/// One OpenBao API call; panics on a non-success status, returns the JSON body (or null).
pub async fn bao(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = reqwest::Client::new()
        .request(method, format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Serves only `POST /apis/authentication.k8s.io/v1/tokenreviews` from `authority`, with the
/// given service accounts (namespace, name, uid) existing.
pub async fn tokenreview_server(
    authority: Arc<crate::tokens::TokenAuthority>,
    accounts: Vec<(String, String, String)>,
) -> String {
    let app = Router::new().route(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let authority = authority.clone();
            let accounts = accounts.clone();
            async move {
                let uid_of = |ns: &str, name: &str| {
                    accounts
                        .iter()
                        .find(|(n, a, _)| n == ns && a == name)
                        .map(|(_, _, uid)| uid.clone())
                };
                let review = authority
                    .token_review(&body, uid_of, chrono::Utc::now())
                    .unwrap();
                (axum::http::StatusCode::CREATED, axum::Json(review))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}
