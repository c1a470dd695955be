//! The `http` kind: one request to a URL or a forwarded pod/service port, judged by its
//! status; its JSON response can be stored in a Secret.

use crate::phase::model::{HttpRequest, HttpStep, SkipIf};
use crate::phase::template::Locals;

use super::http_endpoint::{Answer, Call, HttpEndpoint, strip_query};
use super::lookup_result::LookupResult;
use super::secret_data::SecretData;
use super::{Applied, Probe, StepContext, StepError, capture, store};

/// Read-only: what `skip_if` says, if it can be asked without a write (a port-forward is a
/// write to the API server; a request other than GET or HEAD may be one to the service).
pub async fn probe(ctx: &StepContext<'_>, spec: &HttpStep) -> Result<Probe, StepError> {
    let skip = probe_skip_if(ctx, spec).await?;
    let Some(lookup) = &spec.lookup else {
        return Ok(skip);
    };
    if matches!(skip, Probe::Done(_)) {
        return Ok(skip);
    }
    let safe_method = matches!(
        lookup.request.method.to_ascii_uppercase().as_str(),
        "GET" | "HEAD"
    );
    // A read-only command may port-forward (it stores nothing) but sends only GET.
    if ctx.cluster.read_only() && !safe_method {
        return Ok(Probe::Unknown(format!(
            "lookup sends {}, which a read-only command does not",
            lookup.request.method.to_ascii_uppercase()
        )));
    }
    let endpoint = HttpEndpoint::open(ctx, &spec.target, spec.tls.as_ref()).await?;
    let found = LookupResult::list(ctx, spec, lookup, &endpoint).await?;
    Ok(if found.is_done() {
        Probe::Done(found.describe())
    } else {
        Probe::NeedsWork(found.describe())
    })
}

async fn probe_skip_if(ctx: &StepContext<'_>, spec: &HttpStep) -> Result<Probe, StepError> {
    match &spec.skip_if {
        None => Ok(Probe::Unknown(
            "no skip_if: only the checkpoint knows whether it ran".into(),
        )),
        Some(SkipIf::SecretKey(key)) => Ok(
            if SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, key).await? {
                Probe::Done(format!("Secret key {key} present"))
            } else {
                Probe::NeedsWork(format!("Secret key {key} missing"))
            },
        ),
        Some(SkipIf::Request(request)) => {
            let safe_method =
                matches!(request.method.to_ascii_uppercase().as_str(), "GET" | "HEAD");
            // A port-forward stores nothing, so a dry run may open one; a non-GET request
            // might change the service behind it.
            if ctx.cluster.read_only() && !safe_method {
                return Ok(Probe::Unknown(format!(
                    "skip_if sends {}, which a read-only command does not",
                    request.method.to_ascii_uppercase()
                )));
            }
            let endpoint = HttpEndpoint::open(ctx, &spec.target, spec.tls.as_ref()).await?;
            let answer = send(ctx, spec, &endpoint, request, &Locals::default()).await?;
            let what = describe(ctx, request, &Locals::default());
            Ok(if expected(request, answer.status) {
                Probe::Done(format!("skip_if {what} answered {}", answer.status))
            } else {
                Probe::NeedsWork(format!("skip_if {what} answered {}", answer.status))
            })
        }
        Some(SkipIf::Command { .. }) => Err(command_not_for_http()),
    }
}

/// Sends the request unless `skip_if` holds; stores from the response.
pub async fn apply(ctx: &StepContext<'_>, spec: &HttpStep) -> Result<Applied, StepError> {
    match &spec.skip_if {
        Some(SkipIf::SecretKey(key))
            if SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, key).await? =>
        {
            return Ok(Applied::Unchanged(format!(
                "skipped: Secret key {key} present"
            )));
        }
        Some(SkipIf::Command { .. }) => return Err(command_not_for_http()),
        _ => {}
    }
    let endpoint = HttpEndpoint::open(ctx, &spec.target, spec.tls.as_ref()).await?;
    if let Some(SkipIf::Request(check)) = &spec.skip_if {
        let answer = send(ctx, spec, &endpoint, check, &Locals::default()).await?;
        if expected(check, answer.status) {
            return Ok(Applied::Unchanged(format!(
                "skipped: {} answered {}",
                describe(ctx, check, &Locals::default()),
                answer.status
            )));
        }
    }
    let mut deleted = 0;
    if let Some(lookup) = &spec.lookup {
        let found = LookupResult::list(ctx, spec, lookup, &endpoint).await?;
        for item in &found.others {
            let Some(delete) = &lookup.delete else {
                return Err(StepError::Failed(format!(
                    "{}, and the step has no `lookup.delete`: delete them by hand, or add `lookup.delete` so bringup replaces them",
                    found.describe()
                )));
            };
            let locals = Locals {
                item: Some(item.clone()),
                ..Locals::default()
            };
            let what = format!(
                "lookup delete {} to {}",
                describe(ctx, delete, &locals),
                endpoint.shown
            );
            (ctx.progress)(what.clone());
            let answer = send(ctx, spec, &endpoint, delete, &locals).await?;
            if !expected(delete, answer.status) {
                return Err(unexpected(ctx, &what, delete, &answer));
            }
            deleted += 1;
        }
        if !found.kept.is_empty() {
            let message = format!("{}; kept it", found.describe());
            return Ok(if deleted == 0 {
                Applied::Unchanged(message)
            } else {
                Applied::Changed(format!("{message}, deleted {deleted} other(s)"))
            });
        }
    }
    let request = &spec.request;
    let what = format!(
        "{} to {}",
        describe(ctx, request, &Locals::default()),
        endpoint.shown
    );
    (ctx.progress)(what.clone());
    let answer = send(ctx, spec, &endpoint, request, &Locals::default()).await?;
    if !expected(request, answer.status) {
        return Err(unexpected(ctx, &what, request, &answer));
    }
    let response = answer.value();
    if spec.sensitive {
        capture::register_leaves(ctx.redactor, &response);
    }
    let mut did = format!("{what} answered {}", answer.status);
    if deleted > 0 {
        did = format!("deleted {deleted} stale match(es); {did}");
    }
    if let Some(target) = &spec.store {
        let locals = Locals {
            response: Some(response),
            ..Locals::default()
        };
        did.push_str(&store::store_and_describe(ctx, target, &locals).await?);
    }
    Ok(Applied::Changed(did))
}

/// `METHOD /path` as the request goes out (templates rendered, the query left off, which may
/// carry a value that must not be shown), for messages; the template itself if it cannot render.
pub(super) fn describe(ctx: &StepContext<'_>, request: &HttpRequest, locals: &Locals) -> String {
    let path = ctx
        .templates
        .render(&request.path, locals)
        .unwrap_or_else(|_| request.path.clone());
    format!(
        "{} {}",
        request.method.to_ascii_uppercase(),
        strip_query(&path)
    )
}

pub(super) async fn send(
    ctx: &StepContext<'_>,
    spec: &HttpStep,
    endpoint: &HttpEndpoint,
    request: &HttpRequest,
    locals: &Locals,
) -> Result<Answer, StepError> {
    let path = ctx.templates.render(&request.path, locals)?;
    let headers = request
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), ctx.templates.render(v, locals)?)))
        .collect::<Result<_, StepError>>()?;
    let json = request
        .json
        .as_ref()
        .map(|j| ctx.templates.render_json(j, locals))
        .transpose()?;
    let call = Call {
        method: &request.method,
        path: &path,
        headers: &headers,
        auth: spec.auth.as_ref(),
        json: json.as_ref(),
    };
    let answer = endpoint.send(ctx, &call).await?;
    if answer.status >= 500 || answer.status == 429 {
        if expected(request, answer.status) {
            return Ok(answer);
        }
        let what = format!(
            "{} {} to {}",
            request.method.to_ascii_uppercase(),
            strip_query(&path),
            endpoint.shown
        );
        return Err(StepError::Transient(format!(
            "{what} answered {}: {}",
            answer.status,
            answer.excerpt(ctx)
        )));
    }
    Ok(answer)
}

/// The request's `expect`, or any 2xx.
pub(super) fn expected(request: &HttpRequest, status: u16) -> bool {
    if request.expect.is_empty() {
        (200..300).contains(&status)
    } else {
        request.expect.contains(&status)
    }
}

pub(super) fn unexpected(
    ctx: &StepContext<'_>,
    what: &str,
    request: &HttpRequest,
    answer: &Answer,
) -> StepError {
    let wanted = if request.expect.is_empty() {
        "2xx".to_string()
    } else {
        request
            .expect
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    };
    StepError::Failed(format!(
        "{what} answered {} (expected {wanted}): {}",
        answer.status,
        answer.excerpt(ctx)
    ))
}

fn command_not_for_http() -> StepError {
    StepError::Failed(
        "skip_if `command` is for exec steps; an http step takes `request` or `secret_key`".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::model::{HttpAuth, HttpTarget, PodSelector, StepKind, Store};
    use crate::steps::pod_target::tests::pod;
    use crate::steps::testing::{Bed, fake_with_namespaces, secret_key};
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use base64::Engine as _;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    const PASSWORD: &str = "admin-password-canary";
    const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A tiny Gitea: basic auth on the token routes, a token list, token creation.
    async fn server(hits: Arc<Mutex<Vec<String>>>) -> SocketAddr {
        let authorized = |headers: &HeaderMap| {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("gitea_admin:{PASSWORD}"))
            );
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
        };
        let hits_get = hits.clone();
        let hits_post = hits.clone();
        let app = Router::new()
            .route(
                "/api/v1/users/gitea_admin/tokens",
                get(move |headers: HeaderMap| async move {
                    hits_get.lock().unwrap().push("GET".into());
                    if !authorized(&headers) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "auth required"})));
                    }
                    (StatusCode::OK, axum::Json(json!([])))
                })
                .post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                    hits_post.lock().unwrap().push(format!("POST {}", body["name"].as_str().unwrap_or_default()));
                    if !authorized(&headers) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "auth required"})));
                    }
                    if body["name"] == "duplicate" {
                        return (
                            StatusCode::BAD_REQUEST,
                            axum::Json(json!({"message": format!("access token name has been used already; you sent {PASSWORD}")})),
                        );
                    }
                    (StatusCode::CREATED, axum::Json(json!({"id": 1, "name": body["name"], "sha1": TOKEN})))
                }),
            )
            .route("/flaky", post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later") }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn spec(target: HttpTarget, name: &str) -> HttpStep {
        HttpStep {
            target,
            auth: Some(HttpAuth::Basic {
                username: "gitea_admin".into(),
                password: PASSWORD.into(),
            }),
            tls: None,
            skip_if: None,
            lookup: None,
            request: HttpRequest {
                method: "POST".into(),
                path: "/api/v1/users/gitea_admin/tokens".into(),
                headers: BTreeMap::new(),
                json: Some(json!({"name": name, "scopes": ["write:repository"]})),
                expect: vec![201],
            },
            sensitive: true,
            store: Some(Store {
                secret: "global-secrets/gitea.renovate".parse().unwrap(),
                data: BTreeMap::from([("token".to_string(), "{{ response.sha1 }}".to_string())]),
                labels: BTreeMap::new(),
            }),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn posts_with_basic_auth_and_stores_from_the_response() {
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let addr = server(hits.clone()).await;
        let step = spec(HttpTarget::Url(format!("http://{addr}")), "renovate");
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        let applied = apply(&bed.ctx(), &step).await.unwrap();
        assert!(
            matches!(&applied, Applied::Changed(m) if m.ends_with("answered 201; stored token in Secret global-secrets/gitea.renovate")),
            "{applied:?}"
        );
        assert_eq!(
            secret_key(&bed.fake, "global-secrets", "gitea.renovate", "token").unwrap(),
            TOKEN
        );
        assert_eq!(bed.redactor.redact(TOKEN), "[redacted]");
        assert_eq!(*hits.lock().unwrap(), vec!["POST renovate".to_string()]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unexpected_status_names_it_with_a_redacted_body() {
        let addr = server(Arc::default()).await;
        let step = spec(HttpTarget::Url(format!("http://{addr}")), "duplicate");
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        let error = apply(&bed.ctx(), &step).await.unwrap_err();
        assert!(!error.is_transient());
        let text = error.to_string();
        assert!(text.starts_with("POST /api/v1/users/gitea_admin/tokens to http://127.0.0.1 answered 400 (expected 201)"), "{text}");
        assert!(
            text.contains("access token name has been used already") && text.contains("[redacted]"),
            "{text}"
        );
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(bed.fake.mutating_calls().is_empty(), "nothing stored");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wrong_credentials_fail_and_5xx_is_transient() {
        let addr = server(Arc::default()).await;
        let mut step = spec(HttpTarget::Url(format!("http://{addr}")), "renovate");
        step.auth = Some(HttpAuth::Basic {
            username: "gitea_admin".into(),
            password: "wrong-password".into(),
        });
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        assert!(
            apply(&bed.ctx(), &step)
                .await
                .unwrap_err()
                .to_string()
                .contains("answered 401")
        );

        step.request.path = "/flaky".into();
        step.request.expect = vec![];
        let error = apply(&bed.ctx(), &step).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(
            error.to_string().contains("answered 503: try later"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn skip_if_request_and_secret_key() {
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let addr = server(hits.clone()).await;
        let mut step = spec(HttpTarget::Url(format!("http://{addr}")), "renovate");
        step.skip_if = Some(SkipIf::Request(HttpRequest {
            method: "GET".into(),
            path: "/api/v1/users/gitea_admin/tokens".into(),
            headers: BTreeMap::new(),
            json: None,
            expect: vec![200],
        }));
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]).read_only_view(),
            StepKind::Http(step.clone()),
        );
        assert!(
            matches!(probe(&bed.ctx(), &step).await.unwrap(), Probe::Done(_)),
            "a GET to a URL is fine in a dry run"
        );
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(
            *hits.lock().unwrap(),
            vec!["GET".to_string(), "GET".to_string()]
        );

        step.skip_if = Some(SkipIf::SecretKey(
            serde_json::from_value(json!("global-secrets/gitea.renovate/token")).unwrap(),
        ));
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::NeedsWork(_)
        ));
        apply(&bed.ctx(), &step).await.unwrap();
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(
            hits.lock()
                .unwrap()
                .iter()
                .filter(|h| h.starts_with("POST"))
                .count(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn reaches_a_service_through_a_port_forward() {
        let addr = server(Arc::default()).await;
        let fake = fake_with_namespaces(&["global-secrets", "gitea"])
            .with_forward("gitea", "gitea-0", 3000, addr);
        fake.insert(pod("gitea", "gitea-0", json!({"app": "gitea"}), true));
        fake.insert(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gitea-http", "namespace": "gitea"},
            "spec": {"selector": {"app": "gitea"}, "ports": [{"port": 3000, "targetPort": "http"}]}}));
        let step = spec(
            HttpTarget::Service {
                service: "gitea/gitea-http".parse().unwrap(),
                port: 3000,
            },
            "renovate",
        );
        let bed = Bed::new(fake.clone(), StepKind::Http(step.clone()));
        let applied = apply(&bed.ctx(), &step).await.unwrap();
        assert!(
            matches!(&applied, Applied::Changed(m) if m.contains("to service gitea/gitea-http port 3000 (pod gitea/gitea-0)")),
            "{applied:?}"
        );
        assert_eq!(
            secret_key(&fake, "global-secrets", "gitea.renovate", "token").unwrap(),
            TOKEN
        );

        // A pod port nothing listens on: the error says why the forward failed.
        let mut step = spec(
            HttpTarget::Pod {
                pod: PodSelector {
                    namespace: "gitea".into(),
                    name: Some("gitea-0".into()),
                    selector: None,
                },
                port: 9999,
            },
            "renovate",
        );
        step.skip_if = None;
        let bed = Bed::new(fake, StepKind::Http(step.clone()));
        let error = apply(&bed.ctx(), &step).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().contains("port-forward"), "{error}");
    }

    /// A Gitea-like token list: names unique, values shown only on creation.
    async fn token_server(tokens: Arc<Mutex<Vec<(u64, String, String)>>>) -> SocketAddr {
        use axum::extract::Path;
        use axum::routing::delete;
        let (list, create, remove) = (tokens.clone(), tokens.clone(), tokens);
        let next = Arc::new(std::sync::atomic::AtomicU64::new(2));
        let app = Router::new()
            .route(
                "/tokens",
                get(move || async move {
                    let items: Vec<Value> = list.lock().unwrap().iter()
                        .map(|(id, name, value)| json!({"id": id, "name": name, "sha1": "", "token_last_eight": &value[value.len() - 8..]}))
                        .collect();
                    axum::Json(Value::Array(items))
                })
                .post(move |axum::Json(body): axum::Json<Value>| async move {
                    let mut tokens = create.lock().unwrap();
                    let name = body["name"].as_str().unwrap_or_default().to_string();
                    if tokens.iter().any(|(_, n, _)| *n == name) {
                        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "access token name has been used already"})));
                    }
                    let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let value = format!("{id:040}");
                    tokens.push((id, name.clone(), value.clone()));
                    (StatusCode::CREATED, axum::Json(json!({"id": id, "name": name, "sha1": value})))
                }),
            )
            .route(
                "/tokens/{id}",
                delete(move |Path(id): Path<u64>| async move {
                    let mut tokens = remove.lock().unwrap();
                    let before = tokens.len();
                    tokens.retain(|(i, _, _)| *i != id);
                    if tokens.len() < before { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn lookup_spec(addr: SocketAddr) -> HttpStep {
        let mut step = spec(HttpTarget::Url(format!("http://{addr}")), "renovate");
        step.request.path = "/tokens".into();
        step.lookup = Some(Box::new(serde_yaml::from_str(r#"
            request: { path: /tokens }
            match: { name: renovate }
            keep: { token_last_eight: "{{ secret('global-secrets', 'gitea.renovate', 'token', default='')[-8:] }}" }
            delete: { method: DELETE, path: "/tokens/{{ item.id }}", expect: [204, 404] }
        "#).unwrap()));
        step
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lookup_keeps_the_stored_token_and_replaces_one_whose_secret_was_lost() {
        let tokens: Arc<Mutex<Vec<(u64, String, String)>>> = Arc::default();
        tokens
            .lock()
            .unwrap()
            .push((1, "other".into(), format!("{:040}", 99)));
        let addr = token_server(tokens.clone()).await;
        let step = lookup_spec(addr);
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        let names = || {
            tokens
                .lock()
                .unwrap()
                .iter()
                .map(|(id, n, _)| format!("{id}:{n}"))
                .collect::<Vec<_>>()
        };

        // Nothing named renovate: created and stored.
        assert!(
            matches!(probe(&bed.ctx(), &step).await.unwrap(), Probe::NeedsWork(m) if m == "lookup found no match")
        );
        apply(&bed.ctx(), &step).await.unwrap();
        let first = secret_key(&bed.fake, "global-secrets", "gitea.renovate", "token").unwrap();
        assert_eq!(names(), ["1:other", "2:renovate"]);

        // Stored and live: done, nothing sent but the listing.
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(names(), ["1:other", "2:renovate"]);

        // The Secret is lost: the live token cannot be read again, so it is replaced.
        bed.fake.insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gitea.renovate", "namespace": "global-secrets"}, "data": {}}));
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::NeedsWork(_)
        ));
        let applied = apply(&bed.ctx(), &step).await.unwrap();
        assert!(
            matches!(&applied, Applied::Changed(m) if m.starts_with("deleted 1 stale match(es); POST /tokens")),
            "{applied:?}"
        );
        assert_eq!(names(), ["1:other", "3:renovate"]);
        let progress = bed.progress.lock().unwrap().clone();
        assert!(
            progress
                .iter()
                .any(|m| m.starts_with("lookup delete DELETE /tokens/2 to http://")),
            "the path as sent, not its template: {progress:?}"
        );
        let second = secret_key(&bed.fake, "global-secrets", "gitea.renovate", "token").unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with('3'));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lookup_without_delete_refuses_to_duplicate_and_without_keep_found_is_done() {
        let tokens: Arc<Mutex<Vec<(u64, String, String)>>> = Arc::default();
        tokens
            .lock()
            .unwrap()
            .push((5, "renovate".into(), format!("{:040}", 5)));
        let addr = token_server(tokens.clone()).await;
        let mut step = lookup_spec(addr);
        step.lookup.as_mut().unwrap().delete = None;
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Http(step.clone()),
        );
        let error = apply(&bed.ctx(), &step).await.unwrap_err().to_string();
        assert!(
            error.contains(
                "lookup found 1 match(es), none to keep, and the step has no `lookup.delete`"
            ),
            "{error}"
        );

        step.lookup.as_mut().unwrap().keep = None;
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert!(matches!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(tokens.lock().unwrap().len(), 1);
        assert!(bed.fake.mutating_calls().is_empty());
    }
}
