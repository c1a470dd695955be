//! The HTTP API of an emulated Gitea/Forgejo instance (`routers/api/v1`): version, users,
//! personal access tokens and OAuth2 applications, with Gitea's auth rules and error bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::gitea::{
    Gitea, GiteaState, OAuth2App, TokenError, User, normalize_scopes, scopes_allow,
};
use super::random::{gitea_client_secret, sha256_hex};

/// The Router serving one instance's `/api/v1`.
pub fn router(gitea: Arc<Gitea>) -> Router {
    Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/users/{username}", get(get_user))
        .route(
            "/api/v1/users/{username}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/api/v1/users/{username}/tokens/{token}",
            axum::routing::delete(delete_token),
        )
        .route(
            "/api/v1/user/applications/oauth2",
            get(list_apps).post(create_app),
        )
        .route(
            "/api/v1/user/applications/oauth2/{id}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .with_state(gitea)
}

/// An early answer of a middleware-like check, boxed because a Response is large.
type Rejection = Box<Response>;

/// Who the request authenticated as (`services/auth`: basic, then token methods).
enum Caller {
    Anonymous,
    Password {
        uid: i64,
    },
    Token {
        uid: i64,
        scopes: Vec<String>,
        via_basic: bool,
    },
}

impl Caller {
    fn uid(&self) -> Option<i64> {
        match self {
            Self::Anonymous => None,
            Self::Password { uid } | Self::Token { uid, .. } => Some(*uid),
        }
    }

    fn is_basic(&self) -> bool {
        matches!(
            self,
            Self::Password { .. }
                | Self::Token {
                    via_basic: true,
                    ..
                }
        )
    }

    /// `tokenRequiresScopes`: only token callers are limited by scopes.
    fn lacks_scope(&self, required: &str) -> bool {
        matches!(self, Self::Token { scopes, .. } if !scopes_allow(scopes, required))
    }
}

fn json_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn error(state: &GiteaState, status: StatusCode, message: &str) -> Response {
    let url = format!("{}api/swagger", state.config.app_url);
    (status, axum::Json(json!({"message": message, "url": url}))).into_response()
}

/// `ctx.NotFound`: 1.24 adds the `errors` list.
fn not_found(state: &GiteaState, errors: Option<String>) -> Response {
    let url = format!("{}api/swagger", state.config.app_url);
    let message = "The target couldn't be found.";
    let body = if state.version().api_1_24_shapes() {
        json!({"message": message, "url": url, "errors": errors.map(|e| vec![e])})
    } else {
        json!({"message": message, "url": url})
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Binding errors of a required field (`gitea.com/go-chi/binding`); UNCONFIRMED shape.
fn required(field: &str) -> Response {
    let body =
        json!([{"fieldNames": [field], "classification": "RequiredError", "message": "Required"}]);
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// `verifyAuthWithOptions`: a signed-in user who must change their password is refused
/// everywhere with a message-only body (AppURL keeps its trailing slash, hence `//user`).
/// UNCONFIRMED: recalled from `routers/api/v1/api.go`, not re-read at the release tags.
fn authenticate(state: &mut GiteaState, headers: &HeaderMap) -> Result<Caller, Rejection> {
    let caller = identify(state, headers)?;
    let must_change = caller
        .uid()
        .and_then(|uid| state.user_by_id(uid))
        .is_some_and(|u| u.must_change_password);
    if must_change {
        let message = format!(
            "You must change your password. Change it at: {}/user/change_password",
            state.config.app_url
        );
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"message": message})),
            )
                .into_response(),
        ));
    }
    Ok(caller)
}

fn identify(state: &mut GiteaState, headers: &HeaderMap) -> Result<Caller, Rejection> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Caller::Anonymous);
    };
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    let token_caller = |state: &mut GiteaState, value: &str, via_basic: bool| {
        let now = Utc::now();
        state.tokens.iter_mut().find(|t| t.token == value).map(|t| {
            t.last_used = Some(now);
            Caller::Token {
                uid: t.uid,
                scopes: t.scopes.clone(),
                via_basic,
            }
        })
    };
    match scheme.to_ascii_lowercase().as_str() {
        // An unknown token leaves the request anonymous; the route then asks for auth.
        "token" | "bearer" => {
            Ok(token_caller(state, credential, false).unwrap_or(Caller::Anonymous))
        }
        "basic" => {
            let decoded = STANDARD
                .decode(credential)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (username, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            if !password.is_empty()
                && let Some(caller) = token_caller(state, password, true)
            {
                return Ok(caller);
            }
            if (password.is_empty() || password == "x-oauth-basic")
                && let Some(caller) = token_caller(state, username, true)
            {
                return Ok(caller);
            }
            match state.user(username) {
                Some(user) if user.password == password => Ok(Caller::Password { uid: user.id }),
                // `UserSignIn` answers a wrong password with ErrUserNotExist carrying the uid.
                Some(user) => {
                    let message = format!(
                        "user does not exist [uid: {}, name: {}]",
                        user.id, user.name
                    );
                    Err(Box::new(error(state, StatusCode::UNAUTHORIZED, &message)))
                }
                None => {
                    let message = format!("user does not exist [uid: 0, name: {username}]");
                    Err(Box::new(error(state, StatusCode::UNAUTHORIZED, &message)))
                }
            }
        }
        _ => Ok(Caller::Anonymous),
    }
}

fn scope_denied(state: &GiteaState, required: &str) -> Response {
    let message = format!("token does not have at least one of required scope(s): [{required}]");
    error(state, StatusCode::FORBIDDEN, &message)
}

async fn version(State(gitea): State<Arc<Gitea>>) -> Response {
    axum::Json(json!({"version": gitea.version().version_string()})).into_response()
}

fn user_json(state: &GiteaState, user: &User, show_email: bool) -> Value {
    let app = &state.config.app_url;
    json!({
        "id": user.id,
        "login": user.name,
        "login_name": "",
        "source_id": 0,
        "full_name": user.full_name,
        "email": if show_email { user.email.clone() } else { String::new() },
        "avatar_url": format!("{app}avatars/{}", &sha256_hex(&user.email)[..32]),
        "html_url": format!("{app}{}", user.name),
        "language": "",
        "is_admin": user.is_admin,
        "last_login": "0001-01-01T00:00:00Z",
        "created": json_time(user.created),
        "restricted": user.restricted,
        "active": user.is_active,
        "prohibit_login": false,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": user.name,
    })
}

async fn get_user(
    State(gitea): State<Arc<Gitea>>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = gitea.lock();
    let caller = match authenticate(&mut state, &headers) {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    if caller.lacks_scope("read:user") {
        return scope_denied(&state, "read:user");
    }
    match state.user(&username) {
        // UNCONFIRMED: anonymous callers see an empty email (KeepEmailPrivate-like behaviour).
        Some(user) => axum::Json(user_json(&state, user, caller.uid().is_some())).into_response(),
        None => {
            let detail = format!(
                "user redirect does not exist [name: {}]",
                username.to_lowercase()
            );
            not_found(&state, Some(detail))
        }
    }
}

/// The checks of the `/users/{username}/tokens` group, in Gitea's middleware order;
/// returns the caller and the context user's id.
fn token_route(
    state: &mut GiteaState,
    headers: &HeaderMap,
    username: &str,
    write: bool,
) -> Result<i64, Rejection> {
    let caller = authenticate(state, headers)?;
    let required = if write { "write:user" } else { "read:user" };
    if caller.lacks_scope(required) {
        return Err(Box::new(scope_denied(state, required)));
    }
    let basic_needed = write || !state.version().token_list_allows_token_auth();
    let authorised = if basic_needed {
        caller.is_basic()
    } else {
        caller.uid().is_some()
    };
    if !authorised {
        return Err(Box::new(error(
            state,
            StatusCode::UNAUTHORIZED,
            "auth required",
        )));
    }
    let Some(target) = state.user(username).map(|u| u.id) else {
        let detail = format!(
            "user redirect does not exist [name: {}]",
            username.to_lowercase()
        );
        return Err(Box::new(not_found(state, Some(detail))));
    };
    let doer_admin = caller
        .uid()
        .and_then(|uid| state.user_by_id(uid))
        .is_some_and(|u| u.is_admin);
    if !doer_admin && caller.uid() != Some(target) {
        return Err(Box::new(error(
            state,
            StatusCode::FORBIDDEN,
            "doer should be the site admin or be same as the contextUser",
        )));
    }
    Ok(target)
}

async fn list_tokens(
    State(gitea): State<Arc<Gitea>>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = gitea.lock();
    let uid = match token_route(&mut state, &headers, &username, false) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let version = state.version();
    let tokens: Vec<Value> = state
        .tokens
        .iter()
        .filter(|t| t.uid == uid)
        .map(|t| {
            let mut value = json!({
                "id": t.id,
                "name": t.name,
                "sha1": "",
                "token_last_eight": &t.token[t.token.len() - 8..],
            });
            if version.api_token_scopes() {
                value["scopes"] = json!(t.scopes);
            }
            if version.api_1_24_shapes() {
                value["created_at"] = json!(json_time(t.created));
                value["last_used_at"] = json!(
                    t.last_used
                        .map(json_time)
                        .unwrap_or_else(|| json_time(t.created))
                );
            }
            value
        })
        .collect();
    axum::Json(Value::Array(tokens)).into_response()
}

async fn create_token(
    State(gitea): State<Arc<Gitea>>,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = gitea.lock();
    let uid = match token_route(&mut state, &headers, &username, true) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return required("Name");
    }
    if state.tokens.iter().any(|t| t.uid == uid && t.name == name) {
        return error(
            &state,
            StatusCode::BAD_REQUEST,
            &TokenError::NameUsed.to_string(),
        );
    }
    let raw: Vec<String> = body["scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let version = state.version();
    let scopes = match normalize_scopes(&raw) {
        Ok(scopes) => scopes,
        Err(e) => return error(&state, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if scopes.is_empty() && version.api_token_scopes() {
        return error(
            &state,
            StatusCode::BAD_REQUEST,
            "access token must have a scope",
        );
    }
    let token = match state.create_token(uid, &name, scopes) {
        Ok(token) => token.clone(),
        Err(e) => return error(&state, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut value = json!({
        "id": token.id,
        "name": token.name,
        "sha1": token.token,
        "token_last_eight": &token.token[32..],
    });
    if version.api_token_scopes() {
        value["scopes"] = json!(token.scopes);
    }
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

async fn delete_token(
    State(gitea): State<Arc<Gitea>>,
    Path((username, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = gitea.lock();
    let uid = match token_route(&mut state, &headers, &username, true) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    // A value that parses as a number is an id, anything else a name (`DeleteAccessToken`).
    let mut id = token.parse::<i64>().unwrap_or(0);
    if id == 0 {
        let matches: Vec<i64> = state
            .tokens
            .iter()
            .filter(|t| t.uid == uid && t.name == token)
            .map(|t| t.id)
            .collect();
        match matches.as_slice() {
            [] => return not_found(&state, None),
            [only] => id = *only,
            _ => {
                let message = format!("multiple matches for token name '{token}'");
                return error(&state, StatusCode::UNPROCESSABLE_ENTITY, &message);
            }
        }
    }
    if !state.tokens.iter().any(|t| t.id == id && t.uid == uid) {
        let detail = format!("access token does not exist [sha: {id}]");
        return not_found(&state, Some(detail));
    }
    state.delete_token(id);
    StatusCode::NO_CONTENT.into_response()
}

/// The `/user/applications/oauth2` group: `reqToken` plus the `user` scope category.
fn app_route(state: &mut GiteaState, headers: &HeaderMap, write: bool) -> Result<i64, Rejection> {
    let caller = authenticate(state, headers)?;
    let required = if write { "write:user" } else { "read:user" };
    if caller.lacks_scope(required) {
        return Err(Box::new(scope_denied(state, required)));
    }
    caller
        .uid()
        .ok_or_else(|| Box::new(error(state, StatusCode::UNAUTHORIZED, "token is required")))
}

fn app_json(state: &GiteaState, app: &OAuth2App, show_secret: bool) -> Value {
    let mut value = json!({
        "id": app.id,
        "name": app.name,
        "client_id": app.client_id,
        "client_secret": if show_secret { app.client_secret.clone() } else { String::new() },
        "confidential_client": app.confidential_client,
        "redirect_uris": app.redirect_uris,
        "created": json_time(app.created),
    });
    if state.version().skip_secondary_authorization() {
        value["skip_secondary_authorization"] = json!(app.skip_secondary_authorization);
    }
    value
}

/// Body of POST and PATCH; both require `name` and `redirect_uris`.
fn app_body(body: &Bytes) -> Result<(String, Vec<String>, bool, bool), Rejection> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(Box::new(required("Name")));
    }
    let uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if uris.is_empty() {
        return Err(Box::new(required("RedirectURIs")));
    }
    let confidential = body["confidential_client"].as_bool().unwrap_or(false);
    let skip = body["skip_secondary_authorization"]
        .as_bool()
        .unwrap_or(false);
    Ok((name, uris, confidential, skip))
}

async fn list_apps(State(gitea): State<Arc<Gitea>>, headers: HeaderMap) -> Response {
    let mut state = gitea.lock();
    let uid = match app_route(&mut state, &headers, false) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let apps: Vec<Value> = state
        .apps
        .iter()
        .filter(|a| a.uid == uid)
        .map(|a| app_json(&state, a, false))
        .collect();
    axum::Json(Value::Array(apps)).into_response()
}

async fn create_app(State(gitea): State<Arc<Gitea>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = gitea.lock();
    let uid = match app_route(&mut state, &headers, true) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let (name, uris, confidential, skip) = match app_body(&body) {
        Ok(parts) => parts,
        Err(response) => return *response,
    };
    let skip = skip && state.version().skip_secondary_authorization();
    let app = state
        .create_app(uid, &name, uris, confidential, skip)
        .clone();
    (
        StatusCode::CREATED,
        axum::Json(app_json(&state, &app, true)),
    )
        .into_response()
}

fn find_app(state: &GiteaState, uid: i64, id: &str) -> Option<usize> {
    let id: i64 = id.parse().ok()?;
    state.apps.iter().position(|a| a.id == id && a.uid == uid)
}

async fn get_app(
    State(gitea): State<Arc<Gitea>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = gitea.lock();
    let uid = match app_route(&mut state, &headers, false) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    match find_app(&state, uid, &id) {
        Some(index) => axum::Json(app_json(&state, &state.apps[index], false)).into_response(),
        None => not_found(&state, None),
    }
}

async fn update_app(
    State(gitea): State<Arc<Gitea>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = gitea.lock();
    let uid = match app_route(&mut state, &headers, true) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let (name, uris, confidential, skip) = match app_body(&body) {
        Ok(parts) => parts,
        Err(response) => return *response,
    };
    let Some(index) = find_app(&state, uid, &id) else {
        return not_found(&state, None);
    };
    let skip = skip && state.version().skip_secondary_authorization();
    let app = &mut state.apps[index];
    app.name = name;
    app.redirect_uris = uris;
    app.confidential_client = confidential;
    app.skip_secondary_authorization = skip;
    // Every PATCH generates a new secret (`UpdateOauth2Application` → GenerateClientSecret).
    app.client_secret = gitea_client_secret();
    let app = app.clone();
    state.counters.oauth2_apps_patched += 1;
    axum::Json(app_json(&state, &app, true)).into_response()
}

async fn delete_app(
    State(gitea): State<Arc<Gitea>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = gitea.lock();
    let uid = match app_route(&mut state, &headers, true) {
        Ok(uid) => uid,
        Err(response) => return *response,
    };
    let Some(index) = find_app(&state, uid, &id) else {
        return not_found(&state, None);
    };
    state.apps.remove(index);
    state.counters.oauth2_apps_deleted += 1;
    StatusCode::NO_CONTENT.into_response()
}
