//! Resource requests: get, list, watch, create, update, patch (JSON, merge, strategic,
//! server-side apply), delete and deletecollection, with kube-apiserver's semantics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api_error::ApiError;
use crate::managed_fields::{self, Scope};
use crate::openapi;
use crate::patch::{self, PatchType};
use crate::registry::ResourceType;
use crate::request_info::RequestInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server_state::ServerState;
use crate::store::WatchEvent;
use crate::table;

/// A JSON response with the given status code.
pub fn json_response(code: u16, body: &Value) -> Response {
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    (
        status,
        [("content-type", "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

/// The resource type a request addresses, checked against scope and subresource.
pub fn resource_type(state: &ServerState, info: &RequestInfo) -> Result<ResourceType, ApiError> {
    let resource = info.resource.as_deref().unwrap_or_default();
    let rt = state
        .registry
        .by_plural(&info.group, &info.version, resource)
        .ok_or_else(ApiError::no_route)?;
    if info.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &info.subresource
        && rt.subresource(sub).is_none()
    {
        return Err(ApiError::no_route());
    }
    Ok(rt.clone())
}

struct Ctx<'a> {
    state: &'a ServerState,
    info: &'a RequestInfo,
    rt: &'a ResourceType,
    headers: &'a HeaderMap,
}

impl Ctx<'_> {
    fn ns(&self) -> Option<&str> {
        self.info.namespace.as_deref()
    }

    fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or_default()
    }

    fn dry_run(&self) -> bool {
        self.info.param("dryRun") == Some("All")
    }

    fn status_sub(&self) -> bool {
        self.info.subresource.as_deref() == Some("status")
    }

    fn scope(&self) -> Scope {
        if self.status_sub() {
            Scope::Status
        } else {
            Scope::Main {
                has_status: self.rt.has_status(),
            }
        }
    }

    /// The field manager: the parameter, or the user agent up to its first `/`.
    fn manager(&self) -> String {
        if let Some(m) = self.info.param("fieldManager") {
            return m.to_owned();
        }
        let ua = self
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or(ua).to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Parses a JSON (or YAML, for apply) request body.
fn parse_body(body: &Bytes, yaml: bool) -> Result<Value, ApiError> {
    if yaml {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        return serde_yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"))
    })
}

/// Checks unknown fields per `fieldValidation` (Strict fails, Warn adds a Warning header).
fn field_validation(cx: &Ctx<'_>, obj: &Value) -> Result<Vec<String>, ApiError> {
    let unknown = openapi::unknown_fields(cx.rt, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    match cx.info.param("fieldValidation").unwrap_or("Warn") {
        "Strict" => {
            let texts: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                texts.join(", "),
                kind = cx.rt.kind,
                v = cx.rt.version
            )))
        }
        "Ignore" => Ok(Vec::new()),
        _ => Ok(unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()),
    }
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = format!("299 - \"{}\"", w.replace('"', "\\\"")).parse() {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// Carries status over from `old` on main-resource writes and everything but status on
/// status writes, as the real registries do for kinds with a status subresource.
fn scope_write(cx: &Ctx<'_>, old: &Value, mut new: Value) -> Value {
    if !cx.rt.has_status() {
        return new;
    }
    if cx.status_sub() {
        let mut out = old.clone();
        match new.get("status") {
            Some(s) => out["status"] = s.clone(),
            None => {
                if let Some(m) = out.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
            out["metadata"]["resourceVersion"] = rv;
        }
        if let Some(mf) = new.pointer("/metadata/managedFields").cloned() {
            out["metadata"]["managedFields"] = mf;
        }
        out
    } else {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        new
    }
}

/// What the real registries do to a new object's status.
fn initial_status(rt: &ResourceType, obj: &mut Value) {
    if !rt.has_status() {
        return;
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    if rt.group.is_empty() && rt.plural == "pods" {
        obj["status"] = json!({ "phase": "Pending", "qosClass": "BestEffort" });
    }
}

/// What the real server allocates on create: a Service's cluster IP.
pub fn allocate(state: &ServerState, rt: &ResourceType, obj: &mut Value) {
    if rt.group.is_empty() && rt.plural == "services" {
        if obj.pointer("/spec/type").is_none() {
            obj["spec"]["type"] = json!("ClusterIP");
        }
        if obj.pointer("/spec/clusterIP").is_none() && obj["spec"]["type"] != "ExternalName" {
            let n = state.store.resource_version();
            let ip = format!("10.96.{}.{}", (n / 250) % 250, n % 250 + 1);
            obj["spec"]["clusterIP"] = json!(ip);
            obj["spec"]["clusterIPs"] = json!([ip]);
        }
        if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports {
                if p.get("protocol").is_none() {
                    p["protocol"] = json!("TCP");
                }
                if p.get("targetPort").is_none() {
                    p["targetPort"] = p["port"].clone();
                }
            }
        }
    }
}

fn strip_for_list(rt: &ResourceType, mut obj: Value) -> Value {
    if !rt.custom
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("apiVersion");
        m.remove("kind");
    }
    obj
}

fn selectors(cx: &Ctx<'_>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(cx.info.param("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let allowed: &[&str] = match (cx.rt.group.as_str(), cx.rt.plural.as_str()) {
        ("", "pods") => &[
            "status.phase",
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.podIP",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        _ => &[],
    };
    let fields = FieldSelector::parse(cx.info.param("fieldSelector").unwrap_or_default(), allowed)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn object_response(cx: &Ctx<'_>, code: u16, obj: &Value) -> Response {
    if table::wants_table(cx.header("accept")) {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let t = table::table(
            cx.rt,
            std::slice::from_ref(obj),
            rv,
            cx.info.param("includeObject").unwrap_or("Metadata"),
        );
        return json_response(code, &t);
    }
    json_response(code, obj)
}

/// Serves one resource request (the extension subresources are routed elsewhere).
pub async fn handle(
    state: Arc<ServerState>,
    info: RequestInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let rt = resource_type(&state, &info)?;
    let verb = info.verb.clone();
    if !rt.supports(&verb) && info.subresource.is_none() {
        let action = match verb.as_str() {
            "create" => "create",
            "list" | "watch" => "list",
            "get" => "get",
            _ => verb.as_str(),
        };
        return Err(ApiError::method_not_supported(&rt, action));
    }
    let cx = Ctx {
        state: &state,
        info: &info,
        rt: &rt,
        headers: &headers,
    };
    match verb.as_str() {
        "get" => get(&cx),
        "list" => list(&cx),
        "watch" => watch(&cx),
        "create" => create(&cx, &body),
        "update" => update(&cx, &body),
        "patch" => patch_op(&cx, &body),
        "delete" => delete(&cx, &body),
        "deletecollection" => delete_collection(&cx),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn get(cx: &Ctx<'_>) -> Result<Response, ApiError> {
    cx.state
        .store
        .require_namespace(cx.rt, cx.ns())
        .or(Ok::<_, ApiError>(()))?;
    let obj = cx.state.store.get(cx.rt, cx.ns(), cx.name())?;
    Ok(object_response(cx, 200, &obj))
}

fn list(cx: &Ctx<'_>) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(cx)?;
    let (items, rv) = cx.state.store.list(cx.rt, cx.ns());
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    let start: usize = cx
        .info
        .param("continue")
        .filter(|c| !c.is_empty())
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    items = items.into_iter().skip(start).collect();
    if let Some(limit) = cx
        .info
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        meta["continue"] = json!(
            base64::engine::general_purpose::STANDARD.encode(format!("offset:{}", start + limit))
        );
        meta["remainingItemCount"] = json!(remaining);
    }
    if table::wants_table(cx.header("accept")) {
        let t = table::table(
            cx.rt,
            &items,
            rv,
            cx.info.param("includeObject").unwrap_or("Metadata"),
        );
        return Ok(json_response(200, &t));
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| strip_for_list(cx.rt, o))
        .collect();
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", cx.rt.kind),
            "apiVersion": cx.rt.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({ "type": event_type, "object": object })).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(cx: &Ctx<'_>) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(cx)?;
    let send_initial = cx.info.flag("sendInitialEvents");
    let since = match cx.info.param("resourceVersion") {
        _ if send_initial => None,
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let name = cx.info.name.clone();
    let namespace = cx.info.namespace.clone();
    let start = cx.state.store.watch(cx.rt, cx.ns(), since)?;
    let timeout = cx
        .info
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let bookmarks = cx.info.flag("allowWatchBookmarks");
    let rt = cx.rt.clone();
    let current_rv = cx.state.store.resource_version();
    let keep = move |e: &WatchEvent| {
        labels.matches(&e.object)
            && fields.matches(&e.object)
            && name.as_deref().is_none_or(|n| n == e.key.name)
            && namespace.as_deref().is_none_or(|n| n == e.key.namespace)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut live = start.live;
        let mut last_rv = since.unwrap_or(current_rv);
        for e in start.replay.iter().filter(|e| keep(e)) {
            if tx
                .send(watch_line(e.event_type.as_str(), &e.object))
                .await
                .is_err()
            {
                return;
            }
        }
        if let Some(max) = start.replay.iter().map(|e| e.resource_version).max() {
            last_rv = last_rv.max(max);
        }
        if send_initial && bookmarks {
            let bookmark = json!({
                "kind": rt.kind, "apiVersion": rt.api_version(),
                "metadata": { "resourceVersion": current_rv.max(last_rv).to_string(), "annotations": { "k8s.io/initial-events-end": "true" } }
            });
            if tx.send(watch_line("BOOKMARK", &bookmark)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                ev = live.recv() => match ev {
                    Ok(e) => {
                        if e.key.group != rt.group || e.key.plural != rt.plural || e.resource_version <= last_rv {
                            continue;
                        }
                        last_rv = e.resource_version;
                        if keep(&e) && tx.send(watch_line(e.event_type.as_str(), &e.object)).await.is_err() {
                            return;
                        }
                    }
                    // A slow watcher ends its watch; the client re-lists, as with the real server.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    Ok(resp)
}

fn create(cx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    if cx.info.name.is_some() {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ));
    }
    let mut obj = parse_body(body, false)?;
    if let (Some(path_ns), Some(body_ns)) = (
        cx.ns(),
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
    ) && path_ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let warnings = field_validation(cx, &obj)?;
    initial_status(cx.rt, &mut obj);
    allocate(cx.state, cx.rt, &mut obj);
    managed_fields::record_update(
        None,
        &mut obj,
        &cx.manager(),
        cx.scope(),
        None,
        &cx.rt.api_version(),
    );
    let created = cx.state.store.create(cx.rt, cx.ns(), obj, cx.dry_run())?;
    namespace_created(cx, &created)?;
    Ok(with_warnings(json_response(201, &created), &warnings))
}

/// What Kubernetes' controllers put in a new namespace right away: the root CA ConfigMap.
fn namespace_created(cx: &Ctx<'_>, created: &Value) -> Result<(), ApiError> {
    if !(cx.rt.group.is_empty() && cx.rt.plural == "namespaces") || cx.dry_run() {
        return Ok(());
    }
    let name = created
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    crate::root_ca::publish(cx.state, name)
}

fn update(cx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    let obj = parse_body(body, false)?;
    if let (Some(path_ns), Some(body_ns)) = (
        cx.ns(),
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
    ) && path_ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let warnings = field_validation(cx, &obj)?;
    cx.state.store.require_namespace(cx.rt, cx.ns())?;
    let old = cx.state.store.get(cx.rt, cx.ns(), cx.name())?;
    let mut new = scope_write(cx, &old, obj);
    let sub = cx.info.subresource.as_deref();
    managed_fields::record_update(
        Some(&old),
        &mut new,
        &cx.manager(),
        cx.scope(),
        sub,
        &cx.rt.api_version(),
    );
    let updated = cx
        .state
        .store
        .update(cx.rt, cx.ns(), cx.name(), new, cx.dry_run())?;
    Ok(with_warnings(json_response(200, &updated), &warnings))
}

fn patch_op(cx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    let patch_type = PatchType::from_content_type(cx.header("content-type")).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
            if cx.rt.custom { "" } else { ", application/strategic-merge-patch+json" }
        ))
    })?;
    if patch_type == PatchType::Strategic && cx.rt.custom {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let patch_body = parse_body(body, patch_type == PatchType::Apply)?;
    cx.state.store.require_namespace(cx.rt, cx.ns())?;
    if patch_type == PatchType::Apply {
        return apply(cx, patch_body);
    }
    // The real server retries a patch internally when the object moved underneath it,
    // unless the patch itself pins a resourceVersion.
    let pinned = patch_body.pointer("/metadata/resourceVersion").is_some();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let old = cx.state.store.get(cx.rt, cx.ns(), cx.name())?;
        let mut doc = old.clone();
        match patch_type {
            PatchType::Json => patch::json_patch(&mut doc, &patch_body)?,
            PatchType::Merge => patch::merge_patch(&mut doc, &patch_body)?,
            PatchType::Strategic => patch::strategic_merge_patch(&mut doc, &patch_body)?,
            PatchType::Apply => unreachable!("handled above"),
        }
        let warnings = field_validation(cx, &doc)?;
        if !pinned {
            doc["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        let mut new = scope_write(cx, &old, doc);
        let sub = cx.info.subresource.as_deref();
        managed_fields::record_update(
            Some(&old),
            &mut new,
            &cx.manager(),
            cx.scope(),
            sub,
            &cx.rt.api_version(),
        );
        match cx
            .state
            .store
            .update(cx.rt, cx.ns(), cx.name(), new, cx.dry_run())
        {
            Ok(updated) => return Ok(with_warnings(json_response(200, &updated), &warnings)),
            Err(e) if e.reason == "Conflict" && !pinned && attempts < 5 => continue,
            Err(e) => return Err(e),
        }
    }
}

fn apply(cx: &Ctx<'_>, config: Value) -> Result<Response, ApiError> {
    let Some(manager) = cx.info.param("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request(
            "PATCH, application/apply-patch+yaml requests must have fieldManager query parameter",
        ));
    };
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the object to apply is not a map",
        ));
    }
    let (cfg_group, cfg_version) =
        crate::registry::split_api_version(config["apiVersion"].as_str().unwrap_or_default());
    if config["kind"].as_str() != Some(cx.rt.kind.as_str())
        || cfg_group != cx.rt.group
        || cfg_version != cx.rt.version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            config["apiVersion"].as_str().unwrap_or_default(),
            cx.rt.api_version()
        )));
    }
    if let Some(n) = config.pointer("/metadata/name").and_then(Value::as_str)
        && n != cx.name()
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            cx.name()
        )));
    }
    if let (Some(path_ns), Some(body_ns)) = (
        cx.ns(),
        config
            .pointer("/metadata/namespace")
            .and_then(Value::as_str),
    ) && path_ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let unknown = openapi::unknown_fields(cx.rt, &config);
    if !unknown.is_empty() && cx.info.param("fieldValidation") == Some("Strict") {
        let texts: Vec<String> = unknown
            .iter()
            .map(|f| format!(".{f}: field not declared in schema"))
            .collect();
        return Err(ApiError::bad_request(format!(
            "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {}",
            cx.ns().unwrap_or_default(),
            cx.name(),
            cx.rt.group,
            cx.rt.version,
            cx.rt.kind,
            texts.join(", ")
        )));
    }
    let force = cx.info.flag("force");
    let sub = cx.info.subresource.as_deref();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let live = match cx.state.store.get(cx.rt, cx.ns(), cx.name()) {
            Ok(o) => Some(o),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e),
        };
        if live.is_none() && cx.status_sub() {
            return Err(ApiError::not_found(cx.rt, cx.name()));
        }
        let mut new = managed_fields::apply(
            live.as_ref(),
            &config,
            manager,
            force,
            cx.scope(),
            sub,
            &cx.rt.api_version(),
        )
        .map_err(|conflicts| ApiError::apply_conflict(cx.rt, cx.name(), &conflicts))?;
        let result = match &live {
            None => {
                initial_status(cx.rt, &mut new);
                allocate(cx.state, cx.rt, &mut new);
                cx.state
                    .store
                    .create(cx.rt, cx.ns(), new, cx.dry_run())
                    .and_then(|o| namespace_created(cx, &o).map(|()| (201, o)))
            }
            Some(old) => {
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                let new = scope_write(cx, old, new);
                cx.state
                    .store
                    .update(cx.rt, cx.ns(), cx.name(), new, cx.dry_run())
                    .map(|o| (200, o))
            }
        };
        match result {
            Ok((code, obj)) => return Ok(json_response(code, &obj)),
            Err(e) if (e.reason == "Conflict" || e.reason == "AlreadyExists") && attempts < 5 => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

fn delete_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details = json!({ "name": obj.pointer("/metadata/name").cloned().unwrap_or_default() });
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    details["kind"] = json!(rt.plural);
    details["uid"] = obj.pointer("/metadata/uid").cloned().unwrap_or_default();
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}

fn delete(cx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    let options: Value = if body.is_empty() {
        json!({})
    } else {
        parse_body(body, false)?
    };
    let precondition = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str);
    let dry_run = cx.dry_run()
        || options
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let mut deleted = cx
        .state
        .store
        .delete(cx.rt, cx.ns(), cx.name(), precondition, dry_run)?;
    if cx.rt.returns_deleted_object {
        if cx.rt.group.is_empty() && cx.rt.plural == "namespaces" {
            deleted["status"] = json!({ "phase": "Terminating" });
            deleted["metadata"]["deletionTimestamp"] =
                json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        return Ok(json_response(200, &deleted));
    }
    Ok(json_response(200, &delete_status(cx.rt, &deleted)))
}

fn delete_collection(cx: &Ctx<'_>) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(cx)?;
    let (items, _) = cx.state.store.list(cx.rt, cx.ns());
    let mut deleted = Vec::new();
    for o in items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
    {
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match cx
            .state
            .store
            .delete(cx.rt, ns.as_deref(), &name, None, cx.dry_run())
        {
            Ok(d) => deleted.push(strip_for_list(cx.rt, d)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", cx.rt.kind),
            "apiVersion": cx.rt.api_version(),
            "metadata": { "resourceVersion": cx.state.store.resource_version().to_string() },
            "items": deleted,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventType;

    #[test]
    fn watch_lines_are_newline_delimited_events() {
        let line = watch_line(EventType::Added.as_str(), &json!({"a": 1}));
        assert_eq!(&line[..], b"{\"object\":{\"a\":1},\"type\":\"ADDED\"}\n");
    }
}
