//! The REST API of an emulated Kanidm server (`server/core/src/https/v1*.rs`): the three-step
//! `/v1/auth`, `/v1/oauth2…` and `/v1/group…`, with kanidm's status mapping and `X-KANIDM-OPID`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::kanidm::{Attrs, AuthOutcome, Kanidm, KanidmState};
use super::kanidm_error::KanidmError;

const SESSION_HEADER: &str = "x-kanidm-auth-session-id";

/// The Router serving one server's HTTP API.
pub fn router(kanidm: Arc<Kanidm>) -> Router {
    Router::new()
        .route("/status", get(|| async { axum::Json(true) }))
        .route("/v1/auth", post(auth))
        .route("/v1/oauth2", get(oauth2_list))
        .route("/v1/oauth2/_basic", post(oauth2_create_basic))
        .route("/v1/oauth2/_public", post(oauth2_create_public))
        .route(
            "/v1/oauth2/{name}",
            get(oauth2_get).patch(oauth2_patch).delete(oauth2_delete),
        )
        .route("/v1/oauth2/{name}/_basic_secret", get(oauth2_basic_secret))
        .route(
            "/v1/oauth2/{name}/_scopemap/{group}",
            post(scopemap_set::<false>).delete(scopemap_delete::<false>),
        )
        .route(
            "/v1/oauth2/{name}/_sup_scopemap/{group}",
            post(scopemap_set::<true>).delete(scopemap_delete::<true>),
        )
        .route(
            "/v1/oauth2/{name}/_attr/{attr}",
            post(oauth2_attr_add).delete(oauth2_attr_remove),
        )
        .route("/v1/group", get(group_list).post(group_create))
        .route(
            "/v1/group/{id}",
            get(group_get).patch(group_patch).delete(group_delete),
        )
        .route("/v1/group/{id}/_attr/{attr}", post(group_attr_add))
        .route(
            "/oauth2/openid/{name}/.well-known/openid-configuration",
            get(discovery),
        )
        .layer(axum::middleware::map_response(add_opid))
        .with_state(kanidm)
}

async fn add_opid(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-kanidm-opid", value);
    }
    response
}

fn reply(result: Result<Value, KanidmError>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => (e.status(), axum::Json(e.body())).into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Checks the bearer session (privileged for writes), then runs `op` under the lock.
fn authorised(
    kanidm: &Kanidm,
    headers: &HeaderMap,
    write: bool,
    op: impl FnOnce(&mut KanidmState) -> Result<Value, KanidmError>,
) -> Response {
    let mut state = kanidm.lock();
    let result = bearer(headers)
        .ok_or(KanidmError::NotAuthenticated)
        .and_then(|token| state.session(&token, write).map(|_| ()))
        .and_then(|()| op(&mut state));
    reply(result)
}

fn proto_entry(body: &Bytes) -> Result<Attrs, KanidmError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| KanidmError::EmptyRequest)?;
    serde_json::from_value(value["attrs"].clone()).map_err(|_| KanidmError::EmptyRequest)
}

fn string_list(body: &Bytes) -> Result<Vec<String>, KanidmError> {
    serde_json::from_slice(body).map_err(|_| KanidmError::EmptyRequest)
}

fn entry_json(attrs: Attrs) -> Value {
    json!({"attrs": attrs})
}

async fn auth(State(kanidm): State<Arc<Kanidm>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let step = &body["step"];
    let mut state = kanidm.lock();
    let session_header = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let init = match (&step["init2"], &step["init"]) {
        (Value::Object(init), _) => Some((
            init.get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            init.get("privileged")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )),
        (_, Value::String(username)) => Some((username.clone(), false)),
        _ => None,
    };
    if let Some((username, privileged)) = init {
        return match state.auth_init(&username, privileged) {
            Ok(id) => {
                let mut response =
                    axum::Json(json!({"sessionid": id, "state": {"choose": ["password"]}}))
                        .into_response();
                if let Ok(value) = HeaderValue::from_str(&id) {
                    response.headers_mut().insert(SESSION_HEADER, value);
                }
                response
            }
            Err(e) => reply(Err(e)),
        };
    }
    let Some(id) = session_header else {
        return reply(Err(KanidmError::InvalidSessionState));
    };
    if let Some(mech) = step["begin"].as_str() {
        return reply(
            state
                .auth_begin(&id, mech)
                .map(|()| json!({"sessionid": id, "state": {"continue": ["password"]}})),
        );
    }
    if let Some(password) = step["cred"]["password"].as_str() {
        return reply(
            state
                .auth_password(&id, password)
                .map(|outcome| match outcome {
                    AuthOutcome::Success(token) => {
                        json!({"sessionid": id, "state": {"success": token}})
                    }
                    AuthOutcome::Denied(reason) => {
                        json!({"sessionid": id, "state": {"denied": reason}})
                    }
                }),
        );
    }
    reply(Err(KanidmError::EmptyRequest))
}

async fn oauth2_list(State(k): State<Arc<Kanidm>>, headers: HeaderMap) -> Response {
    authorised(&k, &headers, false, |s| {
        Ok(Value::Array(
            s.clients
                .iter()
                .map(|c| entry_json(s.oauth2_entry(c)))
                .collect(),
        ))
    })
}

async fn oauth2_create_basic(
    State(k): State<Arc<Kanidm>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_create(&proto_entry(&body)?, false)
            .map(|()| Value::Null)
    })
}

async fn oauth2_create_public(
    State(k): State<Arc<Kanidm>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_create(&proto_entry(&body)?, true)
            .map(|()| Value::Null)
    })
}

async fn oauth2_get(
    State(k): State<Arc<Kanidm>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    // A missing client is `200 null`, not a 404.
    authorised(&k, &headers, false, |s| {
        Ok(s.client(&name)
            .map(|c| entry_json(s.oauth2_entry(c)))
            .unwrap_or(Value::Null))
    })
}

async fn oauth2_patch(
    State(k): State<Arc<Kanidm>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_patch(&name, &proto_entry(&body)?)
            .map(|()| Value::Null)
    })
}

async fn oauth2_delete(
    State(k): State<Arc<Kanidm>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_delete(&name).map(|()| Value::Null)
    })
}

async fn oauth2_basic_secret(
    State(k): State<Arc<Kanidm>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    authorised(&k, &headers, false, |s| {
        s.oauth2_basic_secret(&name).map(|secret| json!(secret))
    })
}

/// `POST …/_scopemap/{group}` and, with `SUPPLEMENTARY`, `…/_sup_scopemap/{group}`.
async fn scopemap_set<const SUPPLEMENTARY: bool>(
    State(k): State<Arc<Kanidm>>,
    Path((name, group)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_set_scope_map(&name, &group, &string_list(&body)?, SUPPLEMENTARY)
            .map(|()| Value::Null)
    })
}

/// `DELETE …/_scopemap/{group}` and, with `SUPPLEMENTARY`, `…/_sup_scopemap/{group}`.
async fn scopemap_delete<const SUPPLEMENTARY: bool>(
    State(k): State<Arc<Kanidm>>,
    Path((name, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_delete_scope_map(&name, &group, SUPPLEMENTARY)
            .map(|()| Value::Null)
    })
}

async fn oauth2_attr_add(
    State(k): State<Arc<Kanidm>>,
    Path((name, attr)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_attr(&name, &attr, &string_list(&body)?, true)
            .map(|()| Value::Null)
    })
}

async fn oauth2_attr_remove(
    State(k): State<Arc<Kanidm>>,
    Path((name, attr)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.oauth2_attr(&name, &attr, &string_list(&body)?, false)
            .map(|()| Value::Null)
    })
}

async fn group_list(State(k): State<Arc<Kanidm>>, headers: HeaderMap) -> Response {
    authorised(&k, &headers, false, |s| {
        Ok(Value::Array(
            s.groups
                .iter()
                .map(|g| entry_json(s.group_entry(g)))
                .collect(),
        ))
    })
}

async fn group_create(State(k): State<Arc<Kanidm>>, headers: HeaderMap, body: Bytes) -> Response {
    authorised(&k, &headers, true, |s| {
        s.group_create(&proto_entry(&body)?).map(|()| Value::Null)
    })
}

async fn group_get(
    State(k): State<Arc<Kanidm>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    authorised(&k, &headers, false, |s| {
        Ok(s.group(&id)
            .map(|g| entry_json(s.group_entry(g)))
            .unwrap_or(Value::Null))
    })
}

/// Only `member` is modifiable here; any other attribute is refused as invalid.
async fn group_patch(
    State(k): State<Arc<Kanidm>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        let attrs = proto_entry(&body)?;
        for (attr, values) in &attrs {
            if attr != "member" {
                return Err(KanidmError::InvalidAttribute(attr.clone()));
            }
            s.group_add_members(&id, values)?;
        }
        Ok(Value::Null)
    })
}

async fn group_delete(
    State(k): State<Arc<Kanidm>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    authorised(&k, &headers, true, |s| {
        s.group_delete(&id).map(|()| Value::Null)
    })
}

async fn group_attr_add(
    State(k): State<Arc<Kanidm>>,
    Path((id, attr)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorised(&k, &headers, true, |s| {
        if attr != "member" {
            return Err(KanidmError::InvalidAttribute(attr));
        }
        s.group_add_members(&id, &string_list(&body)?)
            .map(|()| Value::Null)
    })
}

/// The per-client OIDC discovery document Dex reads (book `oauth2/examples.md`).
async fn discovery(State(k): State<Arc<Kanidm>>, Path(name): Path<String>) -> Response {
    let state = k.lock();
    if state.client(&name).is_none() {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(KanidmError::NoMatchingEntries.body()),
        )
            .into_response();
    }
    let origin = state.config.origin.trim_end_matches('/');
    let issuer = format!("{origin}/oauth2/openid/{name}");
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{origin}/ui/oauth2"),
        "token_endpoint": format!("{origin}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/public_key.jwk"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}
