//! The patch types the API server accepts: JSON patch, JSON merge patch and strategic
//! merge patch (maps merge, lists with a known merge key merge by key, `$patch` directives).

use serde_json::{Map, Value};

use crate::api_error::ApiError;

/// The patch type of a PATCH request, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// The merge key of lists the strategic merge patch merges by element, by field name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        "tolerations" => "key",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

/// Lists of scalars that the strategic merge patch merges as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a JSON patch (RFC 6902).
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    json_patch::patch(doc, &ops).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// Applies a JSON merge patch (RFC 7386).
pub fn merge_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "json: cannot unmarshal into Go value of type map[string]interface {}",
        ));
    }
    json_patch::merge(doc, patch);
    Ok(())
}

/// Applies a strategic merge patch.
pub fn strategic_merge_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Some(p) = patch.as_object() else {
        return Err(ApiError::bad_request(
            "json: cannot unmarshal into Go value of type map[string]interface {}",
        ));
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    merge_map(doc.as_object_mut().expect("object"), p);
    Ok(())
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        target.clear();
        for (k, v) in patch.iter().filter(|(k, _)| !k.starts_with('$')) {
            target.insert(k.clone(), strip_directives(v));
        }
        return;
    }
    let retain: Option<Vec<String>> = patch.get("$retainKeys").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) =
                (target.get_mut(field), value.as_array())
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(pm) if pm.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target.remove(key);
            }
            Value::Object(pm) => {
                let entry = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                merge_map(entry.as_object_mut().expect("object"), pm);
            }
            Value::Array(items) => {
                let merged = match (target.get(key), merge_key(key)) {
                    (Some(Value::Array(existing)), Some(mk)) => {
                        merge_list_by_key(existing, items, mk)
                    }
                    (Some(Value::Array(existing)), None) if is_set_list(key) => {
                        let mut out = existing.clone();
                        for i in items {
                            if !out.contains(i) {
                                out.push(i.clone());
                            }
                        }
                        out
                    }
                    _ => items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .map(strip_directives)
                        .collect(),
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    if let Some(keep) = retain {
        target.retain(|k, _| keep.contains(k));
    }
}

fn merge_list_by_key(existing: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = existing.to_vec();
    for item in patch {
        let id = item.get(key).cloned();
        let pos = id
            .as_ref()
            .and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let directive = item.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                out.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => {
                if let (Some(target), Some(pm)) = (out[i].as_object_mut(), item.as_object()) {
                    merge_map(target, pm);
                }
            }
            (None, _) => out.push(strip_directives(item)),
        }
    }
    out
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut doc = json!({"data": {"a": "1", "b": "2"}});
        merge_patch(&mut doc, &json!({"data": {"a": null, "c": "3"}})).expect("merge");
        assert_eq!(doc, json!({"data": {"b": "2", "c": "3"}}));
    }

    #[test]
    fn json_patch_applies_and_reports_failed_tests() {
        let mut doc = json!({"data": {"a": "1"}});
        json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/data/b", "value": "2"}]),
        )
        .expect("patch");
        assert_eq!(doc["data"]["b"], "2");
        let err = json_patch(
            &mut doc,
            &json!([{"op": "test", "path": "/data/a", "value": "x"}]),
        )
        .expect_err("test op fails");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        strategic_merge_patch(
            &mut doc,
            &json!({"spec": {"containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}],
                              "$setElementOrder/containers": [{"name": "a"}]}}),
        )
        .expect("smp");
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "a", "image": "z"}]}})
        );
    }

    #[test]
    fn strategic_merge_replaces_plain_lists_and_deletes_nulls() {
        let mut doc = json!({"spec": {"args": ["a"], "x": 1}, "metadata": {"finalizers": ["f1"]}});
        strategic_merge_patch(
            &mut doc,
            &json!({"spec": {"args": ["b"], "x": null}, "metadata": {"finalizers": ["f2"]}}),
        )
        .expect("smp");
        assert_eq!(
            doc,
            json!({"spec": {"args": ["b"]}, "metadata": {"finalizers": ["f1", "f2"]}})
        );
    }
}
