//! The seam for what other modules add to the API server: exec, port-forward, token
//! requests, token reviews and token authentication.
//!
//! The API layer parses and authenticates the request, checks that the pod or service
//! account exists (answering 404 as the real server), records it in the audit log and
//! applies faults; then it hands the whole HTTP request to the slot. An empty slot answers
//! a real-looking Status error. Fill the slots before serving with
//! [`ServerState::set_extensions`](crate::server_state::ServerState::set_extensions).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;

use crate::server_state::ServerState;

pub type HookFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A request routed to an extension.
pub struct HookRequest {
    pub state: Arc<ServerState>,
    /// The namespace of the pod or service account (None for cluster-scoped tokenreviews).
    pub namespace: Option<String>,
    /// The pod or service account name (None for tokenreviews).
    pub name: Option<String>,
    /// The request as received (headers, query, body; upgradable to a WebSocket with
    /// `axum::extract::ws::WebSocketUpgrade::from_request`).
    pub request: Request,
}

/// Answers one kind of request (exec, portforward, token, tokenreview).
pub trait RequestHook: Send + Sync {
    fn handle(&self, req: HookRequest) -> HookFuture;
}

/// Recognises bearer tokens the sandbox issued besides the admin token (service-account
/// tokens); returns the username (`system:serviceaccount:ns:name`).
pub trait TokenAuthenticator: Send + Sync {
    fn authenticate(&self, token: &str) -> Option<String>;
}

/// The extension slots; `None` answers a Status error naming what is missing.
#[derive(Clone, Default)]
pub struct Extensions {
    /// `pods/{name}/exec` (GET with WebSocket upgrade, or POST).
    pub exec: Option<Arc<dyn RequestHook>>,
    /// `pods/{name}/portforward` (GET with WebSocket upgrade, or POST).
    pub portforward: Option<Arc<dyn RequestHook>>,
    /// `serviceaccounts/{name}/token` (POST TokenRequest).
    pub serviceaccount_token: Option<Arc<dyn RequestHook>>,
    /// `authentication.k8s.io/v1 tokenreviews` (POST TokenReview).
    pub tokenreview: Option<Arc<dyn RequestHook>>,
    /// Bearer tokens other than the admin token.
    pub authenticator: Option<Arc<dyn TokenAuthenticator>>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("exec", &self.exec.is_some())
            .field("portforward", &self.portforward.is_some())
            .field("serviceaccount_token", &self.serviceaccount_token.is_some())
            .field("tokenreview", &self.tokenreview.is_some())
            .field("authenticator", &self.authenticator.is_some())
            .finish()
    }
}
