//! Errors as the real API server reports them: a `metav1.Status` with reason, code, details
//! and the exact message texts clients match on.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// A failed API request, rendered as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = json!({ "name": name });
    if !rt.group.is_empty() {
        d["group"] = json!(rt.group);
    }
    d["kind"] = json!(rt.plural);
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `configmaps "x" not found`
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_plural()),
        )
        .with_details(details(rt, name))
    }

    /// `namespaces "x" not found`, for a namespaced request into a missing namespace.
    pub fn namespace_not_found(name: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{name}\" not found"))
            .with_details(json!({ "name": name, "kind": "namespaces" }))
    }

    /// `configmaps "x" already exists`
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
        )
        .with_details(details(rt, name))
    }

    /// The optimistic-concurrency failure of an update with a stale resourceVersion.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified_plural()
            ),
        )
        .with_details(details(rt, name))
    }

    /// A server-side apply conflict with other field managers.
    pub fn apply_conflict(rt: &ResourceType, name: &str, conflicts: &[(String, String)]) -> Self {
        let version = &rt.version;
        let message = if let [(manager, field)] = conflicts {
            format!(
                "Apply failed with 1 conflict: conflict with \"{manager}\" using {}: {field}",
                rt.api_version()
            )
        } else {
            let mut m = format!("Apply failed with {} conflicts: ", conflicts.len());
            let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
            for (manager, field) in conflicts {
                match by_manager.iter_mut().find(|(m, _)| m == manager) {
                    Some((_, fields)) => fields.push(field),
                    None => by_manager.push((manager, vec![field])),
                }
            }
            let parts: Vec<String> = by_manager
                .iter()
                .map(|(manager, fields)| {
                    let mut s = format!("conflicts with \"{manager}\" using {}:", rt.api_version());
                    for f in fields {
                        s.push_str(&format!("\n- {f}"));
                    }
                    s
                })
                .collect();
            m.push_str(&parts.join("\n"));
            m
        };
        let _ = version;
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{manager}\" using {}", rt.api_version()),
                    "field": field,
                })
            })
            .collect();
        let mut d = details(rt, name);
        d["causes"] = json!(causes);
        Self::new(409, "Conflict", message).with_details(d)
    }

    /// A validation failure: `ConfigMap "x" is invalid: field: Invalid value: ...`.
    pub fn invalid(rt: &ResourceType, name: &str, causes: &[(String, String, String)]) -> Self {
        let texts: Vec<String> = causes
            .iter()
            .map(|(_, field, msg)| format!("{field}: {msg}"))
            .collect();
        let message = if texts.len() == 1 {
            format!("{} \"{name}\" is invalid: {}", rt.kind, texts[0])
        } else {
            format!("{} \"{name}\" is invalid: [{}]", rt.kind, texts.join(", "))
        };
        let mut d = json!({ "name": name });
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d["kind"] = json!(rt.kind);
        d["causes"] = json!(
            causes
                .iter()
                .map(|(reason, field, msg)| json!({ "reason": reason, "message": msg, "field": field }))
                .collect::<Vec<_>>()
        );
        Self::new(422, "Invalid", message).with_details(d)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_supported(rt: &ResourceType, action: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{action} is not supported on resources of kind \"{}\"",
                rt.qualified_plural()
            ),
        )
        .with_details(json!({ "group": rt.group, "kind": rt.plural }))
    }

    /// The answer for a path the server has no handler for.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(
        rt: &ResourceType,
        verb: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Self {
        let subject = match name {
            Some(n) => format!("{} \"{n}\" is forbidden", rt.qualified_plural()),
            None => format!("{} is forbidden", rt.qualified_plural()),
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_owned(),
        };
        let message = format!(
            "{subject}: User \"system:admin\" cannot {verb} resource \"{}\" in API group \"{}\"{scope}",
            rt.plural, rt.group
        );
        let mut d = json!({});
        if let Some(n) = name {
            d["name"] = json!(n);
        }
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d["kind"] = json!(rt.plural);
        Self::new(403, "Forbidden", message).with_details(d)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({ "causes": [{ "message": message }] }))
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({ "retryAfterSeconds": retry_after }));
        e.retry_after = Some(retry_after);
        e
    }

    /// The watch answer for a resourceVersion older than the kept history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (
            code,
            [("content-type", "application/json")],
            serde_json::to_vec(&self.status()).unwrap_or_default(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn messages_match_the_real_server() {
        let r = Registry::builtin();
        let cm = r.by_plural("", "v1", "configmaps").expect("cm");
        let deploy = r.by_plural("apps", "v1", "deployments").expect("deploy");
        assert_eq!(
            ApiError::not_found(cm, "x").message,
            "configmaps \"x\" not found"
        );
        assert_eq!(
            ApiError::already_exists(deploy, "x").message,
            "deployments.apps \"x\" already exists"
        );
        let conflict = ApiError::conflict(cm, "x");
        assert_eq!(
            conflict.message,
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let status = ApiError::not_found(deploy, "web").status();
        assert_eq!(
            status["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
    }
}
