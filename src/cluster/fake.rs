//! An in-memory cluster for unit tests: objects with resourceVersions, conflicts, label
//! selectors, scripted exec, and a count of every call.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Cluster, ClusterError, ExecOutput, ExecRequest, Stream, TypeRef};

type Key = (TypeRef, Option<String>, String);
type ExecHandler = Arc<dyn Fn(&ExecRequest<'_>) -> ExecOutput + Send + Sync>;

/// A call made to the fake, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub verb: &'static str,
    pub what: String,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    /// `(namespace, pod, port)` → a local address that `connect` dials instead; a `None`
    /// port stands for every port of the pod.
    forwards: BTreeMap<(String, String, Option<u16>), SocketAddr>,
    resource_version: u64,
    calls: Vec<Call>,
}

/// The fake. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
    exec: Option<ExecHandler>,
    read_only: bool,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCluster {
    pub fn new() -> Self {
        let fake = FakeCluster {
            state: Arc::default(),
            exec: None,
            read_only: false,
        };
        fake.insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "kube-system", "uid": "fake-cluster-uid"}}));
        fake
    }

    /// A view of the same state that refuses mutating calls.
    pub fn read_only_view(&self) -> Self {
        FakeCluster {
            read_only: true,
            ..self.clone()
        }
    }

    /// Answers every exec with this handler.
    pub fn with_exec(
        mut self,
        handler: impl Fn(&ExecRequest<'_>) -> ExecOutput + Send + Sync + 'static,
    ) -> Self {
        self.exec = Some(Arc::new(handler));
        self
    }

    /// Makes `connect` to `namespace/pod:port` dial this local address (a test server).
    pub fn with_forward(self, namespace: &str, pod: &str, port: u16, to: SocketAddr) -> Self {
        self.add_forward(namespace, pod, Some(port), to);
        self
    }

    /// A Running pod `namespace/name` with these labels whose every port is the local server
    /// at `to` (its namespace is created when missing). Views of this fake share it.
    pub fn add_pod(&self, namespace: &str, name: &str, labels: Value, to: impl Into<SocketAddr>) {
        let to = to.into();
        if self
            .object(&TypeRef::namespace(), None, namespace)
            .is_none()
        {
            self.insert(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            );
        }
        self.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "status": {"phase": "Running"}}));
        self.add_forward(namespace, name, None, to);
    }

    /// Creates the namespace when missing, without counting a call.
    pub fn ensure_namespace(&self, namespace: &str) {
        if self
            .object(&TypeRef::namespace(), None, namespace)
            .is_none()
        {
            self.insert(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            );
        }
    }

    /// `port: None` forwards every port of the pod.
    fn add_forward(&self, namespace: &str, pod: &str, port: Option<u16>, to: SocketAddr) {
        let mut state = self.state.lock().unwrap();
        state
            .forwards
            .insert((namespace.to_string(), pod.to_string(), port), to);
    }

    /// Puts an object in place without counting a call.
    pub fn insert(&self, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        let key = key_of(&object).expect("object has apiVersion, kind and name");
        state.objects.insert(key, object);
    }

    /// The object as stored, without counting a call.
    pub fn object(&self, ty: &TypeRef, namespace: Option<&str>, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(ty.clone(), namespace.map(str::to_string), name.to_string()))
            .cloned()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls that would change the cluster.
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !matches!(c.verb, "get" | "list" | "identity"))
            .collect()
    }

    fn record(&self, verb: &'static str, what: String) -> Result<(), ClusterError> {
        self.state.lock().unwrap().calls.push(Call {
            verb,
            what: what.clone(),
        });
        // A port-forward changes nothing, as in KubeCluster and ReadOnlyCluster.
        if self.read_only && !matches!(verb, "get" | "list" | "identity" | "connect") {
            return Err(ClusterError::DryRunViolation {
                operation: format!("{verb} {what}"),
            });
        }
        Ok(())
    }

    fn store(&self, mut object: Value, expect_new: Option<bool>) -> Result<Value, ClusterError> {
        let key = key_of(&object)
            .ok_or_else(|| ClusterError::Other("object lacks apiVersion, kind or name".into()))?;
        let mut state = self.state.lock().unwrap();
        let existing = state.objects.get(&key).cloned();
        let name = display(&key);
        match (expect_new, &existing) {
            (Some(true), Some(_)) => {
                return Err(ClusterError::AlreadyExists {
                    kind: key.0.kind.clone(),
                    name,
                });
            }
            (Some(false), None) => {
                return Err(ClusterError::NotFound {
                    kind: key.0.kind.clone(),
                    name,
                });
            }
            (Some(false), Some(current)) => {
                let wanted = object["metadata"]["resourceVersion"].as_str();
                if wanted.is_some() && wanted != current["metadata"]["resourceVersion"].as_str() {
                    return Err(ClusterError::Conflict {
                        kind: key.0.kind.clone(),
                        name,
                    });
                }
            }
            _ => {}
        }
        if let Some(ns) = &key.1 {
            let ns_key = (TypeRef::namespace(), None, ns.clone());
            if !state.objects.contains_key(&ns_key) {
                return Err(ClusterError::NotFound {
                    kind: "Namespace".into(),
                    name: ns.clone(),
                });
            }
        }
        state.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        if let Some(data) = object.get_mut("stringData").map(Value::take) {
            use base64::Engine as _;
            if let Value::Object(map) = data {
                for (k, v) in map {
                    let encoded = base64::engine::general_purpose::STANDARD
                        .encode(v.as_str().unwrap_or_default());
                    object["data"][k] = json!(encoded);
                }
            }
            object.as_object_mut().unwrap().remove("stringData");
        }
        state.objects.insert(key, object.clone());
        Ok(object)
    }
}

fn key_of(object: &Value) -> Option<Key> {
    let ty = TypeRef::of(object)?;
    let name = object["metadata"]["name"].as_str()?.to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    Some((ty, namespace, name))
}

fn display(key: &Key) -> String {
    match &key.1 {
        Some(ns) => format!("{ns}/{}", key.2),
        None => key.2.clone(),
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// `a=b,c!=d,e` label selectors: enough for tests.
fn matches_selector(object: &Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                labels[k.trim().trim_end_matches('=')].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels.get(k).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
}

#[async_trait]
impl Cluster for FakeCluster {
    fn context(&self) -> &str {
        "fake"
    }
    fn server(&self) -> &str {
        "https://fake.invalid"
    }
    fn read_only(&self) -> bool {
        self.read_only
    }

    async fn identity(&self) -> Result<String, ClusterError> {
        self.record("identity", "kube-system".into())?;
        Ok(self
            .object(&TypeRef::namespace(), None, "kube-system")
            .and_then(|ns| ns["metadata"]["uid"].as_str().map(str::to_string))
            .unwrap_or_default())
    }

    async fn get(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        self.record(
            "get",
            format!("{} {}/{}", ty.kind, namespace.unwrap_or(""), name),
        )?;
        Ok(self.object(ty, namespace, name))
    }

    async fn list(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.record("list", format!("{} {}", ty.kind, namespace.unwrap_or("")))?;
        let state = self.state.lock().unwrap();
        Ok(state
            .objects
            .iter()
            .filter(|((t, ns, _), _)| {
                t == ty && (namespace.is_none() || ns.as_deref() == namespace)
            })
            .map(|(_, o)| o)
            .filter(|o| label_selector.is_none_or(|s| matches_selector(o, s)))
            .cloned()
            .collect())
    }

    async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        self.record(
            "create",
            key_of(object).map(|k| display(&k)).unwrap_or_default(),
        )?;
        self.store(object.clone(), Some(true))
    }

    async fn replace(&self, object: &Value) -> Result<Value, ClusterError> {
        self.record(
            "replace",
            key_of(object).map(|k| display(&k)).unwrap_or_default(),
        )?;
        self.store(object.clone(), Some(false))
    }

    async fn apply(&self, object: &Value, _force: bool) -> Result<Value, ClusterError> {
        self.record(
            "apply",
            key_of(object).map(|k| display(&k)).unwrap_or_default(),
        )?;
        let key = key_of(object)
            .ok_or_else(|| ClusterError::Other("object lacks apiVersion, kind or name".into()))?;
        let mut merged = self
            .object(&key.0, key.1.as_deref(), &key.2)
            .unwrap_or(Value::Null);
        let mut patch = object.clone();
        patch["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        if merged.is_null() {
            merged = patch;
        } else {
            merge(&mut merged, &patch);
        }
        self.store(merged, None)
    }

    async fn merge_patch(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        self.record(
            "patch",
            format!("{} {}/{}", ty.kind, namespace.unwrap_or(""), name),
        )?;
        let mut current =
            self.object(ty, namespace, name)
                .ok_or_else(|| ClusterError::NotFound {
                    kind: ty.kind.clone(),
                    name: name.into(),
                })?;
        merge(&mut current, patch);
        self.store(current, None)
    }

    async fn delete(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        self.record(
            "delete",
            format!("{} {}/{}", ty.kind, namespace.unwrap_or(""), name),
        )?;
        let key = (ty.clone(), namespace.map(str::to_string), name.to_string());
        Ok(self.state.lock().unwrap().objects.remove(&key).is_some())
    }

    async fn exec(&self, request: ExecRequest<'_>) -> Result<ExecOutput, ClusterError> {
        self.record("exec", format!("{}/{}", request.namespace, request.pod))?;
        match &self.exec {
            Some(handler) => Ok(handler(&request)),
            None => Err(ClusterError::Exec {
                pod: request.pod.into(),
                message: "the fake has no exec handler".into(),
            }),
        }
    }

    async fn connect(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Box<dyn Stream>, ClusterError> {
        self.record("connect", format!("{namespace}/{pod}:{port}"))?;
        let port_error = |message: String| ClusterError::PortForward {
            pod: format!("{namespace}/{pod}"),
            port,
            message,
        };
        let target = {
            let state = self.state.lock().unwrap();
            let key = |port| (namespace.to_string(), pod.to_string(), port);
            state
                .forwards
                .get(&key(Some(port)))
                .or_else(|| state.forwards.get(&key(None)))
                .copied()
        };
        match target {
            Some(addr) => match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => Ok(Box::new(stream)),
                Err(e) => Err(port_error(e.to_string())),
            },
            None => Err(port_error(
                "the fake has no forward for this pod port".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replace_with_stale_resource_version_conflicts() {
        let fake = FakeCluster::new();
        fake.insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}));
        let cm =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"}});
        let created = fake.create(&cm).await.unwrap();
        let mut stale = created.clone();
        fake.replace(&created).await.unwrap();
        stale["data"] = json!({"k": "v"});
        assert!(matches!(
            fake.replace(&stale).await,
            Err(ClusterError::Conflict { .. })
        ));
    }

    #[tokio::test]
    async fn read_only_view_refuses_writes() {
        let fake = FakeCluster::new().read_only_view();
        let ns = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}});
        assert!(matches!(
            fake.create(&ns).await,
            Err(ClusterError::DryRunViolation { .. })
        ));
    }
}
