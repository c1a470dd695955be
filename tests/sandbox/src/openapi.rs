//! OpenAPI v3: the /openapi/v3 index and one document per group version, with the PATCH
//! operations and `fieldValidation` parameters kubectl checks before it validates on the
//! server, and the schemas of our kinds (top level and metadata declared; nested objects
//! preserve unknown fields).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::registry::{Registry, ResourceType};

const META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Top-level fields of a kind besides apiVersion, kind and metadata; None when any field
/// goes (custom resources declared in the cluster file).
fn top_level(rt: &ResourceType) -> Option<&'static [&'static str]> {
    Some(match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "ConfigMap") => &["data", "binaryData", "immutable"],
        ("", "Secret") => &["data", "stringData", "type", "immutable"],
        ("", "Endpoints") => &["subsets"],
        ("", "ServiceAccount") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("coordination.k8s.io", "Lease") => &["spec"],
        (_, _) if rt.custom && rt.group != "external-secrets.io" => return None,
        _ => &["spec", "status"],
    })
}

/// Fields of `obj` the kind's schema does not declare, as dotted paths (`spec.foo` is not
/// reported: nested objects are open).
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = obj.as_object() else { return out };
    if let Some(allowed) = top_level(rt) {
        for k in m.keys() {
            if !["apiVersion", "kind", "metadata"].contains(&k.as_str())
                && !allowed.contains(&k.as_str())
            {
                out.push(k.clone());
            }
        }
    }
    if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
        for k in meta.keys() {
            if !META_FIELDS.contains(&k.as_str()) {
                out.push(format!("metadata.{k}"));
            }
        }
    }
    out
}

/// The schema name the real server uses: `io.k8s.api.core.v1.ConfigMap`,
/// `io.external-secrets.v1.ClusterSecretStore` for custom resources.
pub fn schema_name(rt: &ResourceType) -> String {
    if rt.custom {
        let reversed: Vec<&str> = rt.group.split('.').rev().collect();
        return format!("{}.{}.{}", reversed.join("."), rt.version, rt.kind);
    }
    let group = match rt.group.as_str() {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{group}.{}.{}", rt.version, rt.kind)
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn gvk(rt: &ResourceType) -> Value {
    json!({ "group": rt.group, "version": rt.version, "kind": rt.kind })
}

fn open_object(description: &str) -> Value {
    json!({ "type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": true })
}

fn kind_schema(rt: &ResourceType) -> Value {
    let mut props = Map::new();
    props.insert("apiVersion".into(), json!({ "type": "string", "description": "APIVersion defines the versioned schema of this representation of an object." }));
    props.insert("kind".into(), json!({ "type": "string", "description": "Kind is a string value representing the REST resource this object represents." }));
    props.insert("metadata".into(), json!({ "allOf": [{ "$ref": format!("#/components/schemas/{OBJECT_META}") }], "default": {}, "description": "Standard object's metadata." }));
    let mut schema = json!({
        "type": "object",
        "description": format!("{} of the sandbox API server.", rt.kind),
        "x-kubernetes-group-version-kind": [gvk(rt)],
    });
    match top_level(rt) {
        Some(fields) => {
            for f in fields {
                let s = match *f {
                    "data" if rt.kind == "Secret" => {
                        json!({ "type": "object", "additionalProperties": { "type": "string", "format": "byte" } })
                    }
                    "data" | "stringData" => {
                        json!({ "type": "object", "additionalProperties": { "type": "string", "default": "" } })
                    }
                    "binaryData" => {
                        json!({ "type": "object", "additionalProperties": { "type": "string", "format": "byte" } })
                    }
                    "immutable" | "automountServiceAccountToken" => json!({ "type": "boolean" }),
                    "type" => json!({ "type": "string" }),
                    "secrets" | "imagePullSecrets" | "subsets" => {
                        json!({ "type": "array", "items": open_object("") , "x-kubernetes-list-type": "atomic" })
                    }
                    other => open_object(other),
                };
                props.insert((*f).to_owned(), s);
            }
        }
        None => {
            schema["x-kubernetes-preserve-unknown-fields"] = json!(true);
        }
    }
    schema["properties"] = Value::Object(props);
    schema
}

fn object_meta_schema() -> Value {
    let mut props = Map::new();
    for f in META_FIELDS {
        let s = match *f {
            "labels" | "annotations" => {
                json!({ "type": "object", "additionalProperties": { "type": "string", "default": "" } })
            }
            "generation" | "deletionGracePeriodSeconds" => {
                json!({ "type": "integer", "format": "int64" })
            }
            "finalizers" => {
                json!({ "type": "array", "items": { "type": "string", "default": "" }, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge" })
            }
            "ownerReferences" => {
                json!({ "type": "array", "items": open_object("OwnerReference"), "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge" })
            }
            "managedFields" => {
                json!({ "type": "array", "items": open_object("ManagedFieldsEntry"), "x-kubernetes-list-type": "atomic" })
            }
            _ => json!({ "type": "string" }),
        };
        props.insert((*f).to_owned(), s);
    }
    json!({ "type": "object", "description": "ObjectMeta is metadata that all persisted resources must have.", "properties": props })
}

fn query_param(name: &str, description: &str, kind: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": kind, "uniqueItems": true } })
}

fn operation(
    rt: &ResourceType,
    action: &str,
    verb_id: &str,
    params: Vec<Value>,
    body: bool,
) -> Value {
    let group_id: String = if rt.group.is_empty() {
        "Core".into()
    } else {
        rt.group
            .split(['.', '-'])
            .next()
            .map(|g| {
                let mut c = g.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    let scope = if rt.namespaced { "Namespaced" } else { "" };
    let mut op = json!({
        "tags": [format!("{}_{}", rt.group, rt.version)],
        "operationId": format!("{verb_id}{group_id}{}{scope}{}", rt.version.to_ascii_uppercase(), rt.kind),
        "parameters": params,
        "responses": {
            "200": { "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{}", schema_name(rt)) } } } },
            "401": { "description": "Unauthorized" },
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(rt),
    });
    if body {
        let types: &[&str] = if action == "patch" {
            if rt.custom {
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]
            } else {
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml",
                ]
            }
        } else {
            &["*/*"]
        };
        let schema = if action == "patch" {
            json!({ "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch" })
        } else {
            json!({ "$ref": format!("#/components/schemas/{}", schema_name(rt)) })
        };
        let content: Map<String, Value> = types
            .iter()
            .map(|t| ((*t).to_owned(), json!({ "schema": schema })))
            .collect();
        op["requestBody"] = json!({ "content": content, "required": true });
    }
    op
}

fn write_params(with_force: bool) -> Vec<Value> {
    let mut p = vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
            "string",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
            "string",
        ),
    ];
    if with_force {
        p.push(query_param(
            "force",
            "Force is going to \"force\" Apply requests.",
            "boolean",
        ));
    }
    p
}

fn paths_for(rt: &ResourceType) -> Vec<(String, Value)> {
    let prefix = if rt.group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{}/{}", rt.group, rt.version)
    };
    let base = if rt.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{prefix}/{}", rt.plural)
    };
    let mut common = vec![query_param(
        "pretty",
        "If 'true', then the output is pretty printed.",
        "string",
    )];
    if rt.namespaced {
        common.push(json!({ "name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": { "type": "string", "uniqueItems": true } }));
    }
    let mut out = Vec::new();
    let mut collection = json!({ "parameters": common.clone() });
    if rt.supports("list") {
        collection["get"] = operation(
            rt,
            "list",
            "list",
            vec![
                query_param(
                    "labelSelector",
                    "A selector to restrict the list of returned objects by their labels.",
                    "string",
                ),
                query_param("watch", "Watch for changes.", "boolean"),
            ],
            false,
        );
    }
    if rt.supports("create") {
        collection["post"] = operation(rt, "post", "create", write_params(false), true);
    }
    if rt.supports("deletecollection") {
        collection["delete"] = operation(rt, "deletecollection", "deleteCollection", vec![], false);
    }
    out.push((base.clone(), collection));
    if rt.supports("get") {
        let mut item_params = common.clone();
        item_params.insert(0, json!({ "name": "name", "in": "path", "required": true, "description": format!("name of the {}", rt.kind), "schema": { "type": "string", "uniqueItems": true } }));
        let mut item = json!({ "parameters": item_params.clone() });
        item["get"] = operation(rt, "get", "read", vec![], false);
        if rt.supports("update") {
            item["put"] = operation(rt, "put", "replace", write_params(false), true);
        }
        if rt.supports("patch") {
            item["patch"] = operation(rt, "patch", "patch", write_params(true), true);
        }
        if rt.supports("delete") {
            item["delete"] = operation(
                rt,
                "delete",
                "delete",
                vec![query_param(
                    "dryRun",
                    "When present, indicates that modifications should not be persisted.",
                    "string",
                )],
                false,
            );
        }
        out.push((format!("{base}/{{name}}"), item));
        if rt.has_status() {
            let mut status = json!({ "parameters": item_params });
            status["get"] = operation(rt, "get", "read", vec![], false);
            status["put"] = operation(rt, "put", "replace", write_params(false), true);
            status["patch"] = operation(rt, "patch", "patch", write_params(true), true);
            for op in ["get", "put", "patch"] {
                let id = status[op]["operationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                status[op]["operationId"] = json!(format!("{id}Status"));
            }
            out.push((format!("{base}/{{name}}/status"), status));
        }
    }
    out
}

/// The document of one group version (`api/v1`, `apis/apps/v1`), or None.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for rt in types {
        for (p, v) in paths_for(rt) {
            paths.insert(p, v);
        }
        schemas.insert(schema_name(rt), kind_schema(rt));
    }
    schemas.insert(OBJECT_META.into(), object_meta_schema());
    schemas.insert("io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(), json!({ "type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body." }));
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR) },
        "paths": paths,
        "components": { "schemas": schemas, "securitySchemes": { "BearerToken": { "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header" } } },
    }))
}

fn hash(v: &Value) -> String {
    let digest = Sha256::digest(serde_json::to_vec(v).unwrap_or_default());
    hex::encode_upper(&digest[..32]).chars().take(128).collect()
}

/// The /openapi/v3 index with a content hash per document, as the real server serves it.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".into())];
    for (g, vs) in registry.groups() {
        for v in vs {
            gvs.push((g.clone(), v));
        }
    }
    for (g, v) in gvs {
        let (key, doc) = if g.is_empty() {
            (format!("api/{v}"), document(registry, "", &v))
        } else {
            (format!("apis/{g}/{v}"), document(registry, &g, &v))
        };
        if let Some(doc) = doc {
            paths.insert(
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", hash(&doc)) }),
            );
        }
    }
    json!({ "paths": paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        let r = Registry::builtin();
        let doc = document(&r, "", "v1").expect("core");
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Secret");
        let params = patch["parameters"].as_array().expect("params");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.Secret"].is_object());
        let es = document(&r, "external-secrets.io", "v1").expect("eso");
        assert!(
            es["paths"]["/apis/external-secrets.io/v1/clustersecretstores/{name}"]["patch"]
                .is_object()
        );
        assert!(
            index(&r)["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .expect("url")
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
    }

    #[test]
    fn unknown_fields_are_found_at_the_top_and_in_metadata() {
        let r = Registry::builtin();
        let secret = r.by_plural("", "v1", "secrets").expect("secrets");
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "labelz": {}}, "stringdata": {}});
        assert_eq!(
            unknown_fields(secret, &obj),
            vec!["stringdata".to_owned(), "metadata.labelz".to_owned()]
        );
    }
}
