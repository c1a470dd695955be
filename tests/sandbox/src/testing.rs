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
