//! Field ownership for server-side apply: `metadata.managedFields` entries in FieldsV1
//! form, updated on every write, with apply conflicts between managers.
//!
//! Lists are owned atomically (as a whole); that is enough for the kinds bringup applies.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A path of map keys from the object root to an owned field.
pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// Which part of an object a write touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status` excluded when the kind has a status subresource.
    Main { has_status: bool },
    /// The status subresource: only `status`.
    Status,
}

fn in_scope(path: &[String], scope: Scope) -> bool {
    let Some(first) = path.first() else {
        return false;
    };
    if first == "apiVersion" || first == "kind" {
        return false;
    }
    if first == "metadata"
        && path
            .get(1)
            .is_some_and(|f| SERVER_META.contains(&f.as_str()))
    {
        return false;
    }
    match scope {
        Scope::Main { has_status } => !(has_status && first == "status"),
        Scope::Status => first == "status",
    }
}

fn leaves(v: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone());
        }
        _ => {}
    }
}

/// The owned-field leaves of an object within a scope.
pub fn field_set(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    leaves(obj, &mut Vec::new(), &mut out);
    out.retain(|p| in_scope(p, scope));
    out
}

pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

/// `.data.key`, as conflict messages name a field.
pub fn path_string(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// Encodes a field set as FieldsV1.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for (i, seg) in path.iter().enumerate() {
            let child = node
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fields nodes are objects");
            let intermediate = i + 1 < path.len();
            let is_metadata_root = i == 0 && seg == "metadata";
            if intermediate && !is_metadata_root {
                child.insert(".".into(), json!({}));
            }
            node = child;
        }
    }
    Value::Object(root)
}

/// Decodes FieldsV1 into a field set; list element keys (`k:`, `v:`, `i:`) own the list.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(node: &Map<String, Value>, prefix: &mut FieldPath, out: &mut FieldSet) {
        let mut has_children = false;
        for (k, child) in node {
            if let Some(field) = k.strip_prefix("f:") {
                has_children = true;
                prefix.push(field.to_owned());
                match child.as_object() {
                    Some(m) => walk(m, prefix, out),
                    None => {
                        out.insert(prefix.clone());
                    }
                }
                prefix.pop();
            } else if k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:") {
                has_children = true;
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
        if !has_children && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
    }
    let mut out = FieldSet::new();
    if let Some(m) = v.as_object() {
        walk(m, &mut Vec::new(), &mut out);
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub subresource: Option<String>,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

pub fn read_entries(obj: &Value) -> Vec<ManagerEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| ManagerEntry {
                    manager: e["manager"].as_str().unwrap_or_default().to_owned(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_owned(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    time: e["time"].as_str().unwrap_or_default().to_owned(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[ManagerEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn entry_mut<'a>(
    entries: &'a mut Vec<ManagerEntry>,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
    api_version: &str,
) -> &'a mut ManagerEntry {
    let pos = entries.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource.as_deref() == subresource
    });
    let i = match pos {
        Some(i) => i,
        None => {
            entries.push(ManagerEntry {
                manager: manager.to_owned(),
                operation: operation.to_owned(),
                subresource: subresource.map(str::to_owned),
                api_version: api_version.to_owned(),
                time: now(),
                fields: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    &mut entries[i]
}

/// Records a create, update or non-apply patch: the manager takes the fields it changed,
/// other managers lose them, removed fields leave every manager.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
    subresource: Option<&str>,
    api_version: &str,
) {
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let new_set = field_set(new, scope);
    let old_set = field_set(old_obj, scope);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| value_at(new, p) != value_at(old_obj, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    let mut entries = read_entries(old_obj);
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let entry = entry_mut(&mut entries, manager, "Update", subresource, api_version);
    entry.fields.extend(changed);
    entry.time = now();
    write_entries(new, &entries);
}

fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for p in parents {
        match node.get_mut(p) {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(m) = node.as_object_mut() {
        m.remove(last);
    }
}

/// Removes maps left empty by field removal, unless the applied config has them.
fn prune_empty(obj: &mut Value, config: &Value) {
    if let Some(m) = obj.as_object_mut() {
        let keys: Vec<String> = m.keys().cloned().collect();
        for k in keys {
            let cfg = config.get(&k).cloned().unwrap_or(Value::Null);
            if let Some(child) = m.get_mut(&k)
                && child.is_object()
            {
                let was_empty = child.as_object().is_some_and(Map::is_empty);
                prune_empty(child, &cfg);
                let now_empty = child.as_object().is_some_and(Map::is_empty);
                if now_empty && !was_empty && !cfg.is_object() {
                    m.remove(&k);
                }
            }
        }
    }
}

fn deep_merge(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

/// Server-side apply of `config` by `manager` onto `live` (None when the object does not
/// exist yet). Returns the new object, or the conflicts `(manager, .field)` when another
/// manager owns a field with a different value and `force` is off.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    scope: Scope,
    subresource: Option<&str>,
    api_version: &str,
) -> Result<Value, Vec<(String, String)>> {
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);
    let config_set = field_set(config, scope);
    let mut entries = read_entries(live_obj);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| e.manager != manager) {
        for p in e.fields.intersection(&config_set) {
            if value_at(live_obj, p) != value_at(config, p) {
                conflicts.push((e.manager.clone(), path_string(p)));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut new = live_obj.clone();
    let others: FieldSet = entries
        .iter()
        .filter(|e| e.manager != manager)
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let previous: FieldSet = entries
        .iter()
        .filter(|e| {
            e.manager == manager
                && e.operation == "Apply"
                && e.subresource.as_deref() == subresource
        })
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    for p in previous
        .iter()
        .filter(|p| !config_set.contains(*p) && !others.contains(*p))
    {
        remove_path(&mut new, p);
    }
    prune_empty(&mut new, config);
    deep_merge(&mut new, config);
    if force {
        for e in entries.iter_mut().filter(|e| e.manager != manager) {
            e.fields.retain(|p| {
                !config_set.contains(p) || value_at(live_obj, p) == value_at(config, p)
            });
        }
    }
    let entry = entry_mut(&mut entries, manager, "Apply", subresource, api_version);
    if entry.fields != config_set {
        entry.time = now();
    }
    entry.fields = config_set;
    write_entries(&mut new, &entries);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Scope = Scope::Main { has_status: false };

    #[test]
    fn fields_v1_round_trips_and_matches_the_real_shape() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"}});
        let set = field_set(&obj, MAIN);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflicts_with_another_manager_unless_forced() {
        let cfg_a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "a"}});
        let live = apply(None, &cfg_a, "alice", false, MAIN, None, "v1").expect("first apply");
        let cfg_b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "b"}});
        let conflicts =
            apply(Some(&live), &cfg_b, "bob", false, MAIN, None, "v1").expect_err("conflict");
        assert_eq!(conflicts, vec![("alice".to_owned(), ".data.k".to_owned())]);
        let forced = apply(Some(&live), &cfg_b, "bob", true, MAIN, None, "v1").expect("forced");
        assert_eq!(forced["data"]["k"], "b");
        let owners = read_entries(&forced);
        assert!(owners.iter().all(|e| e.manager == "bob"));
        // The same value is shared ownership, not a conflict.
        apply(Some(&live), &cfg_a, "carol", false, MAIN, None, "v1").expect("same value");
    }

    #[test]
    fn reapply_removes_fields_the_manager_dropped() {
        let cfg = json!({"metadata": {"name": "x"}, "data": {"a": "1", "b": "2"}});
        let live = apply(None, &cfg, "m", false, MAIN, None, "v1").expect("apply");
        let cfg2 = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        let live2 = apply(Some(&live), &cfg2, "m", false, MAIN, None, "v1").expect("reapply");
        assert_eq!(live2["data"], json!({"a": "1"}));
    }

    #[test]
    fn updates_take_ownership_from_appliers() {
        let cfg = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        let live = apply(None, &cfg, "m", false, MAIN, None, "v1").expect("apply");
        let mut updated = live.clone();
        updated["data"]["a"] = json!("2");
        record_update(Some(&live), &mut updated, "kubectl-edit", MAIN, None, "v1");
        let entries = read_entries(&updated);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "kubectl-edit");
    }
}
