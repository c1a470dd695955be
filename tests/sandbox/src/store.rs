//! The object store: every object by resource, namespace and name, one global
//! resourceVersion counter, and the event history that watches resume from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::api_error::ApiError;
use crate::registry::ResourceType;

/// How many past events a watch can resume from; older resourceVersions answer 410 Expired.
const HISTORY: usize = 10_000;

/// Where an object lives: cluster-scoped objects have an empty namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }
}

/// ADDED, MODIFIED or DELETED, as the watch protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub resource_version: u64,
    pub key: ObjectKey,
    pub event_type: EventType,
    pub object: Value,
}

struct Inner {
    resource_version: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<WatchEvent>,
    /// The resourceVersion of the newest event dropped from `history`.
    history_floor: u64,
}

/// What a watch starts from: the events to replay, then the live channel.
pub struct WatchStart {
    pub replay: Vec<WatchEvent>,
    pub live: broadcast::Receiver<WatchEvent>,
}

/// The sandbox's objects. All methods are synchronous and short; the lock is never held
/// across an await.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// The object without the fields the server owns, for deciding whether anything changed.
fn content(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            m.remove(f);
        }
    }
    c
}

/// The part of an object whose change bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    c
}

const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Checks what the real server's decoding and validation reject for our kinds.
fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = meta_str(obj, "name").unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid(
            rt,
            "",
            &[(
                "FieldValueRequired".into(),
                "metadata.name".into(),
                "Required value: name or generateName is required".into(),
            )],
        ));
    }
    let ok = if rt.plural == "namespaces" || rt.plural == "services" {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if !ok {
        let rule = if rt.plural == "namespaces" || rt.plural == "services" {
            DNS_LABEL_MSG
        } else {
            DNS_SUBDOMAIN_MSG
        };
        return Err(ApiError::invalid(
            rt,
            name,
            &[(
                "FieldValueInvalid".into(),
                "metadata.name".into(),
                format!("Invalid value: \"{name}\": {rule}"),
            )],
        ));
    }
    let cannot = |detail: &str| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {detail}",
            kind = rt.kind,
            v = rt.version
        ))
    };
    if rt.group.is_empty() && (rt.plural == "configmaps" || rt.plural == "secrets") {
        for field in ["data", "stringData"] {
            if let Some(data) = obj.get(field) {
                let Some(map) = data.as_object() else {
                    return Err(cannot(&format!(
                        "json: cannot unmarshal {} into Go struct field {}.{field} of type map[string]string",
                        json_type(data),
                        rt.kind
                    )));
                };
                for v in map.values() {
                    let Some(s) = v.as_str() else {
                        let ty = if rt.plural == "secrets" && field == "data" {
                            "[]uint8"
                        } else {
                            "string"
                        };
                        return Err(cannot(&format!(
                            "json: cannot unmarshal {} into Go struct field {}.{field} of type {ty}",
                            json_type(v),
                            rt.kind
                        )));
                    };
                    if rt.plural == "secrets"
                        && field == "data"
                        && base64::engine::general_purpose::STANDARD.decode(s).is_err()
                    {
                        return Err(cannot("illegal base64 data at input byte 0"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Defaults and conversions the real server applies to every write of a kind.
fn normalize(rt: &ResourceType, obj: &mut Value) {
    if rt.group.is_empty() && rt.plural == "secrets" {
        if let Some(Value::Object(string_data)) =
            obj.as_object_mut().and_then(|o| o.remove("stringData"))
        {
            if !obj.get("data").is_some_and(Value::is_object) {
                obj["data"] = json!({});
            }
            let data = obj["data"].as_object_mut().expect("data is an object");
            for (k, v) in string_data {
                let s = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
        if obj.get("type").is_none() {
            obj["type"] = json!("Opaque");
        }
    }
    if rt.group.is_empty() && rt.plural == "namespaces" {
        let name = meta_str(obj, "name").unwrap_or_default().to_owned();
        let meta = meta_mut(obj);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
        if obj.pointer("/spec/finalizers").is_none() {
            obj["spec"] = json!({ "finalizers": ["kubernetes"] });
        }
        if obj.pointer("/status/phase").is_none() {
            obj["status"] = json!({ "phase": "Active" });
        }
    }
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::new(Inner {
                resource_version: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_floor: 0,
            }),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    fn emit(&self, inner: &mut Inner, event: WatchEvent) {
        if inner.history.len() >= HISTORY
            && let Some(old) = inner.history.pop_front()
        {
            inner.history_floor = old.resource_version;
        }
        inner.history.push_back(event.clone());
        // No receivers is normal: nobody watches.
        let _ = self.events.send(event);
    }

    fn namespace_exists(inner: &Inner, namespace: &str) -> bool {
        inner.objects.contains_key(&ObjectKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: namespace.to_owned(),
        })
    }

    /// Fails with `namespaces "x" not found` when a namespaced request names a missing namespace.
    pub fn require_namespace(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        if let (true, Some(ns)) = (rt.namespaced, namespace)
            && !Self::namespace_exists(&self.lock(), ns)
        {
            return Err(ApiError::namespace_not_found(ns));
        }
        Ok(())
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&ObjectKey::new(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// Objects of a type, in one namespace or all, sorted by namespace and name, with the
    /// resourceVersion of the list.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|(k, _)| {
                k.group == rt.group
                    && k.plural == rt.plural
                    && (namespace.is_none()
                        || !rt.namespaced
                        || Some(k.namespace.as_str()) == namespace)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.resource_version)
    }

    /// Stores a new object: validation, defaults, uid, creationTimestamp, generation and
    /// resourceVersion as the real server sets them.
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let generate = meta_str(&obj, "generateName").map(str::to_owned);
        if meta_str(&obj, "name").unwrap_or_default().is_empty()
            && let Some(prefix) = generate
        {
            let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_owned();
            meta_mut(&mut obj).insert("name".into(), json!(format!("{prefix}{suffix}")));
        }
        validate(rt, &obj)?;
        normalize(rt, &mut obj);
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        {
            let meta = meta_mut(&mut obj);
            if rt.namespaced {
                meta.insert("namespace".into(), json!(namespace.unwrap_or("default")));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now()));
            meta.remove("resourceVersion");
            meta.remove("deletionTimestamp");
            if rt.has_generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        let namespace = if rt.namespaced {
            Some(namespace.unwrap_or("default"))
        } else {
            None
        };
        let key = ObjectKey::new(rt, namespace, &name);
        let mut inner = self.lock();
        if let Some(ns) = namespace
            && !Self::namespace_exists(&inner, ns)
        {
            return Err(ApiError::namespace_not_found(ns));
        }
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        if dry_run {
            meta_mut(&mut obj).insert(
                "resourceVersion".into(),
                json!(inner.resource_version.to_string()),
            );
            return Ok(obj);
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key.clone(), obj.clone());
        self.emit(
            &mut inner,
            WatchEvent {
                resource_version: rv,
                key,
                event_type: EventType::Added,
                object: obj.clone(),
            },
        );
        Ok(obj)
    }

    /// Replaces an existing object. A resourceVersion in `obj` must match the stored one
    /// (409 Conflict otherwise); server-owned metadata is carried over; an update that
    /// changes nothing keeps the resourceVersion and sends no event, as the real server does.
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let body_name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        if body_name.is_empty() {
            meta_mut(&mut obj).insert("name".into(), json!(name));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        validate(rt, &obj)?;
        normalize(rt, &mut obj);
        let key = ObjectKey::new(rt, namespace, name);
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let old_rv = meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        if let Some(rv) = meta_str(&obj, "resourceVersion")
            && !rv.is_empty()
            && rv != old_rv
        {
            return Err(ApiError::conflict(rt, name));
        }
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let meta = meta_mut(&mut obj);
            for f in ["uid", "creationTimestamp", "deletionTimestamp"] {
                match old_meta.get(f) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            if rt.namespaced {
                meta.insert("namespace".into(), json!(key.namespace));
            } else {
                meta.remove("namespace");
            }
            meta.insert("resourceVersion".into(), json!(old_rv));
        }
        if rt.has_generation {
            let old_gen = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = if spec_part(&old) == spec_part(&obj) {
                old_gen
            } else {
                old_gen + 1
            };
            meta_mut(&mut obj).insert("generation".into(), json!(generation));
        } else {
            meta_mut(&mut obj).remove("generation");
        }
        if content(&old) == content(&obj) {
            return Ok(old);
        }
        if dry_run {
            return Ok(obj);
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key.clone(), obj.clone());
        self.emit(
            &mut inner,
            WatchEvent {
                resource_version: rv,
                key,
                event_type: EventType::Modified,
                object: obj.clone(),
            },
        );
        Ok(obj)
    }

    /// Removes an object; a namespace takes its objects with it at once. `precondition_rv`
    /// is the resourceVersion of DeleteOptions.preconditions.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let key = ObjectKey::new(rt, namespace, name);
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let old_rv = meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_owned();
        if let Some(want) = precondition_rv
            && want != old_rv
        {
            let mut e = ApiError::conflict(rt, name);
            e.message = format!(
                "Operation cannot be fulfilled on {} \"{name}\": the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({old_rv}). The object might have been modified",
                rt.qualified_plural()
            );
            return Err(e);
        }
        if dry_run {
            return Ok(old);
        }
        let mut victims = Vec::new();
        if rt.group.is_empty() && rt.plural == "namespaces" {
            victims.extend(
                inner
                    .objects
                    .keys()
                    .filter(|k| k.namespace == name)
                    .cloned(),
            );
        }
        victims.push(key);
        let mut last = old.clone();
        for k in victims {
            let Some(mut obj) = inner.objects.remove(&k) else {
                continue;
            };
            inner.resource_version += 1;
            let rv = inner.resource_version;
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
            last = obj.clone();
            self.emit(
                &mut inner,
                WatchEvent {
                    resource_version: rv,
                    key: k,
                    event_type: EventType::Deleted,
                    object: obj,
                },
            );
        }
        Ok(last)
    }

    /// Stores an object as given (apart from uid, timestamps and resourceVersion), creating or
    /// replacing it without the API's checks on status. For seeding and for tests.
    pub fn put(&self, rt: &ResourceType, obj: Value) -> Result<Value, ApiError> {
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let namespace = meta_str(&obj, "namespace").map(str::to_owned);
        let exists = self.get(rt, namespace.as_deref(), &name).is_ok();
        if exists {
            let mut obj = obj;
            meta_mut(&mut obj).remove("resourceVersion");
            self.update(rt, namespace.as_deref(), &name, obj, false)
        } else {
            self.create(rt, namespace.as_deref(), obj, false)
        }
    }

    /// Starts a watch: events after `since` (or a synthetic ADDED for every existing object
    /// when `since` is None), then the live channel. Fails with 410 Expired when `since` is
    /// older than the kept history.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        since: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let live = self.events.subscribe();
        let matches = |k: &ObjectKey| {
            k.group == rt.group
                && k.plural == rt.plural
                && (namespace.is_none()
                    || !rt.namespaced
                    || Some(k.namespace.as_str()) == namespace)
        };
        let replay = match since {
            None => inner
                .objects
                .iter()
                .filter(|(k, _)| matches(k))
                .map(|(k, v)| WatchEvent {
                    resource_version: meta_str(v, "resourceVersion")
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0),
                    key: k.clone(),
                    event_type: EventType::Added,
                    object: v.clone(),
                })
                .collect(),
            Some(rv) => {
                if rv < inner.history_floor {
                    return Err(ApiError::expired(rv, inner.history_floor + 1));
                }
                inner
                    .history
                    .iter()
                    .filter(|e| e.resource_version > rv && matches(&e.key))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart { replay, live })
    }

    /// Every stored object, for dumps.
    pub fn all(&self) -> Vec<(ObjectKey, Value)> {
        self.lock()
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn setup() -> (Store, Registry) {
        let store = Store::new();
        let reg = Registry::builtin();
        let ns = reg.by_plural("", "v1", "namespaces").expect("ns").clone();
        store
            .create(&ns, None, json!({"metadata": {"name": "a"}}), false)
            .expect("ns a");
        (store, reg)
    }

    #[test]
    fn create_sets_server_fields_and_rejects_duplicates() {
        let (store, reg) = setup();
        let cm = reg.by_plural("", "v1", "configmaps").expect("cm");
        let obj = store
            .create(
                cm,
                Some("a"),
                json!({"metadata": {"name": "x"}, "data": {"k": "v"}}),
                false,
            )
            .expect("create");
        assert_eq!(obj["kind"], "ConfigMap");
        assert!(obj.pointer("/metadata/uid").is_some());
        assert!(obj.pointer("/metadata/generation").is_none());
        let err = store
            .create(cm, Some("a"), json!({"metadata": {"name": "x"}}), false)
            .expect_err("duplicate");
        assert_eq!(err.reason, "AlreadyExists");
        let err = store
            .create(
                cm,
                Some("missing"),
                json!({"metadata": {"name": "x"}}),
                false,
            )
            .expect_err("missing ns");
        assert_eq!(err.message, "namespaces \"missing\" not found");
    }

    #[test]
    fn update_checks_resource_version_and_skips_no_ops() {
        let (store, reg) = setup();
        let cm = reg.by_plural("", "v1", "configmaps").expect("cm");
        let obj = store
            .create(
                cm,
                Some("a"),
                json!({"metadata": {"name": "x"}, "data": {"k": "v"}}),
                false,
            )
            .expect("create");
        let same = store
            .update(cm, Some("a"), "x", obj.clone(), false)
            .expect("no-op");
        assert_eq!(
            same["metadata"]["resourceVersion"],
            obj["metadata"]["resourceVersion"]
        );
        let mut changed = obj.clone();
        changed["data"]["k"] = json!("w");
        let new = store
            .update(cm, Some("a"), "x", changed.clone(), false)
            .expect("update");
        assert_ne!(
            new["metadata"]["resourceVersion"],
            obj["metadata"]["resourceVersion"]
        );
        let err = store
            .update(cm, Some("a"), "x", changed, false)
            .expect_err("stale");
        assert_eq!(err.reason, "Conflict");
    }

    #[test]
    fn secrets_fold_string_data_and_deployments_count_generations() {
        let (store, reg) = setup();
        let secret = reg.by_plural("", "v1", "secrets").expect("secrets");
        let s = store
            .create(
                secret,
                Some("a"),
                json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
                false,
            )
            .expect("secret");
        assert_eq!(s["data"]["k"], "dg==");
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
        let deploy = reg.by_plural("apps", "v1", "deployments").expect("deploy");
        let d = store
            .create(
                deploy,
                Some("a"),
                json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}}),
                false,
            )
            .expect("deploy");
        assert_eq!(d["metadata"]["generation"], 1);
        let mut d2 = d.clone();
        d2["metadata"]["labels"] = json!({"x": "y"});
        let d2 = store
            .update(deploy, Some("a"), "d", d2, false)
            .expect("labels");
        assert_eq!(d2["metadata"]["generation"], 1);
        let mut d3 = d2.clone();
        d3["spec"]["replicas"] = json!(2);
        let d3 = store
            .update(deploy, Some("a"), "d", d3, false)
            .expect("spec");
        assert_eq!(d3["metadata"]["generation"], 2);
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let (store, reg) = setup();
        let cm = reg.by_plural("", "v1", "configmaps").expect("cm");
        let ns = reg.by_plural("", "v1", "namespaces").expect("ns");
        store
            .create(cm, Some("a"), json!({"metadata": {"name": "x"}}), false)
            .expect("cm");
        store.delete(ns, None, "a", None, false).expect("delete ns");
        assert_eq!(store.get(cm, Some("a"), "x").expect_err("gone").code, 404);
    }

    #[test]
    fn watch_replays_history_after_a_resource_version() {
        let (store, reg) = setup();
        let cm = reg.by_plural("", "v1", "configmaps").expect("cm");
        let rv = store.resource_version();
        store
            .create(cm, Some("a"), json!({"metadata": {"name": "x"}}), false)
            .expect("cm");
        let start = store.watch(cm, Some("a"), Some(rv)).expect("watch");
        assert_eq!(start.replay.len(), 1);
        assert_eq!(start.replay[0].event_type, EventType::Added);
        let start = store
            .watch(cm, Some("a"), Some(store.resource_version()))
            .expect("watch");
        assert!(start.replay.is_empty());
    }
}
