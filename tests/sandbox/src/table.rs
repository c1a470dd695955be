//! Server-side printing: the `meta.k8s.io/v1 Table` that `kubectl get` asks for, with the
//! columns the real server prints for each kind.

use serde_json::{Value, json};

use crate::registry::ResourceType;

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    let format = if matches!(name.as_bytes(), b"Name") {
        "name"
    } else {
        ""
    };
    Column {
        name,
        kind,
        format,
        description: "",
        priority,
    }
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let name = Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        priority: 0,
    };
    let age = col("Age", "string", 0);
    let mut cols = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => cols.push(col("Status", "string", 0)),
        ("", "configmaps") => cols.push(col("Data", "string", 0)),
        ("", "secrets") => {
            cols.push(col("Type", "string", 0));
            cols.push(col("Data", "string", 0));
        }
        ("", "pods") => {
            cols.push(col("Ready", "string", 0));
            cols.push(col("Status", "string", 0));
            cols.push(col("Restarts", "string", 0));
        }
        ("", "services") => {
            cols.push(col("Type", "string", 0));
            cols.push(col("Cluster-IP", "string", 0));
            cols.push(col("External-IP", "string", 0));
            cols.push(col("Port(s)", "string", 0));
        }
        ("", "serviceaccounts") => cols.push(col("Secrets", "string", 0)),
        ("", "endpoints") => cols.push(col("Endpoints", "string", 0)),
        ("apps", "deployments") => {
            cols.push(col("Ready", "string", 0));
            cols.push(col("Up-to-date", "string", 0));
            cols.push(col("Available", "string", 0));
        }
        ("apps", "statefulsets") => cols.push(col("Ready", "string", 0)),
        ("networking.k8s.io", "ingresses") => {
            cols.push(col("Class", "string", 0));
            cols.push(col("Hosts", "string", 0));
            cols.push(col("Address", "string", 0));
            cols.push(col("Ports", "string", 0));
        }
        ("coordination.k8s.io", "leases") => cols.push(col("Holder", "string", 0)),
        ("batch", "jobs") => {
            cols.push(col("Status", "string", 0));
            cols.push(col("Completions", "string", 0));
            cols.push(col("Duration", "string", 0));
        }
        _ => {}
    }
    cols.push(age);
    if rt.group.is_empty() && rt.plural == "pods" {
        cols.push(col("IP", "string", 1));
        cols.push(col("Node", "string", 1));
    }
    cols
}

/// kube's HumanDuration: `45s`, `3m12s`, `5h`, `2d3h`, `400d`.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

fn age(obj: &Value) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn count(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_object).map_or(0, |m| m.len() as i64)
}

fn str_at<'a>(obj: &'a Value, p: &str) -> &'a str {
    obj.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn cells(rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let mut c = vec![json!(str_at(obj, "/metadata/name"))];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => c.push(json!(str_at(obj, "/status/phase"))),
        ("", "configmaps") => c.push(json!(count(obj.get("data")) + count(obj.get("binaryData")))),
        ("", "secrets") => {
            c.push(json!(str_at(obj, "/type")));
            c.push(json!(count(obj.get("data"))));
        }
        ("", "pods") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            let phase = str_at(obj, "/status/phase");
            c.push(json!(format!("{ready}/{total}")));
            c.push(json!(
                if obj.pointer("/metadata/deletionTimestamp").is_some() {
                    "Terminating"
                } else {
                    phase
                }
            ));
            c.push(json!(restarts));
        }
        ("", "services") => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            c.push(json!(match str_at(obj, "/spec/type") {
                "" => "ClusterIP",
                t => t,
            }));
            c.push(json!(or_none(str_at(obj, "/spec/clusterIP").to_owned())));
            c.push(json!("<none>"));
            c.push(json!(or_none(ports.join(","))));
        }
        ("", "serviceaccounts") => c.push(json!(
            obj.get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        )),
        ("", "endpoints") => c.push(json!("<none>")),
        ("apps", "deployments") => {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            c.push(json!(format!("{ready}/{want}")));
            c.push(json!(
                obj.pointer("/status/updatedReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            ));
            c.push(json!(
                obj.pointer("/status/availableReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            ));
        }
        ("apps", "statefulsets") => {
            let want = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            c.push(json!(format!("{ready}/{want}")));
        }
        ("networking.k8s.io", "ingresses") => {
            let hosts: Vec<&str> = obj
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .map(|rs| rs.iter().filter_map(|r| r["host"].as_str()).collect())
                .unwrap_or_default();
            c.push(json!(or_none(
                str_at(obj, "/spec/ingressClassName").to_owned()
            )));
            c.push(json!(if hosts.is_empty() {
                "*".to_owned()
            } else {
                hosts.join(",")
            }));
            c.push(json!(""));
            c.push(json!(if obj.pointer("/spec/tls").is_some() {
                "80, 443"
            } else {
                "80"
            }));
        }
        ("coordination.k8s.io", "leases") => c.push(json!(str_at(obj, "/spec/holderIdentity"))),
        ("batch", "jobs") => {
            let succeeded = obj
                .pointer("/status/succeeded")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            c.push(json!(if succeeded >= want {
                "Complete"
            } else {
                "Running"
            }));
            c.push(json!(format!("{succeeded}/{want}")));
            c.push(json!(""));
        }
        _ => {}
    }
    c.push(json!(age(obj)));
    if rt.group.is_empty() && rt.plural == "pods" {
        c.push(json!(or_none(str_at(obj, "/status/podIP").to_owned())));
        c.push(json!(or_none(str_at(obj, "/spec/nodeName").to_owned())));
    }
    c
}

/// The object as `includeObject=Metadata` embeds it.
fn partial_metadata(obj: &Value) -> Value {
    let mut meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta })
}

/// A Table of these objects; `include_object` is the `includeObject` parameter
/// (`None`, `Metadata` (default) or `Object`).
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: u64,
    include_object: &str,
) -> Value {
    let column_definitions: Vec<Value> = columns(rt)
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority }))
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": cells(rt, o) });
            match include_object {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => row["object"] = partial_metadata(o),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version.to_string() },
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(185), "3m5s");
        assert_eq!(human_duration(1800), "30m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(3 * 86400), "3d");
    }

    #[test]
    fn configmap_rows_count_keys() {
        let r = Registry::builtin();
        let cm = r.by_plural("", "v1", "configmaps").expect("cm");
        let t = table(
            cm,
            &[json!({"metadata": {"name": "x"}, "data": {"a": "1", "b": "2"}})],
            5,
            "Metadata",
        );
        assert_eq!(t["rows"][0]["cells"][0], "x");
        assert_eq!(t["rows"][0]["cells"][1], 2);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
