//! The real cluster, through kube-rs: dynamic objects, lazy per-group-version discovery,
//! error classification, exec and port-forward.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, AttachParams, DeleteParams, DynamicObject, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::gvk::GroupVersion;
use kube::discovery::{self, Scope};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Cluster, ClusterError, ExecOutput, ExecRequest, Stream, TypeRef};
use crate::error_chain::error_chain;

/// The field manager bringup's server-side applies are recorded under.
pub const FIELD_MANAGER: &str = "bringup";

/// How to connect: kubeconfig path, context, or in-cluster.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ConnectOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub read_only: bool,
}

/// Where a type of object lives in the API.
#[derive(Debug, Clone)]
struct Resolved {
    resource: ApiResource,
    namespaced: bool,
}

/// A cluster reached through kube-rs.
pub struct KubeCluster {
    pub(crate) client: kube::Client,
    pub(crate) context: String,
    pub(crate) server: String,
    pub(crate) read_only: bool,
    /// How this connection was made, for a helper process that must reach the same cluster
    /// (`None` for a cluster built from a ready configuration).
    options: Option<ConnectOptions>,
    /// Types resolved so far: a group-version is discovered when one of its kinds is first
    /// used, and all its kinds are remembered.
    types: RwLock<HashMap<TypeRef, Resolved>>,
}

impl KubeCluster {
    /// Connects as kubectl would: `--kubeconfig`, else `KUBECONFIG`/`~/.kube/config`, else the
    /// in-cluster service account; `--context` picks a context of the kubeconfig.
    pub async fn connect(options: ConnectOptions) -> Result<Self, ClusterError> {
        let connect_error = |message: String| ClusterError::Connect { message };
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            ..KubeConfigOptions::default()
        };
        let (config, context) = match (&options.kubeconfig, &options.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    connect_error(format!("reading kubeconfig {}: {e}", path.display()))
                })?;
                let context = options
                    .context
                    .clone()
                    .or_else(|| kubeconfig.current_context.clone());
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                    .await
                    .map_err(|e| connect_error(format!("kubeconfig {}: {e}", path.display())))?;
                (config, context.unwrap_or_default())
            }
            (None, Some(context)) => {
                let config = kube::Config::from_kubeconfig(&kube_options)
                    .await
                    .map_err(|e| connect_error(format!("context `{context}`: {e}")))?;
                (config, context.clone())
            }
            (None, None) => {
                let config = kube::Config::infer().await.map_err(|e| {
                    connect_error(format!(
                        "no kubeconfig (set KUBECONFIG or pass --kubeconfig) and not in a cluster: {e}"
                    ))
                })?;
                let context = Kubeconfig::read()
                    .ok()
                    .and_then(|k| k.current_context)
                    .unwrap_or_else(|| "in-cluster".to_string());
                (config, context)
            }
        };
        let mut cluster = Self::from_config(config, context, options.read_only)?;
        // A relative kubeconfig path must still name the same file from another process.
        let kubeconfig = options
            .kubeconfig
            .map(|path| std::path::absolute(&path).unwrap_or(path));
        cluster.options = Some(ConnectOptions {
            kubeconfig,
            context: options.context,
            read_only: options.read_only,
        });
        Ok(cluster)
    }

    /// A cluster from a ready kube-rs configuration.
    pub fn from_config(
        mut config: kube::Config,
        context: String,
        read_only: bool,
    ) -> Result<Self, ClusterError> {
        // Retries belong to the engine, which bounds them per step and knows what is safe to
        // repeat; kube's own layer would retry 503s for minutes and hide requests from counts.
        config.default_retry = false;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Connect {
            message: format!("{server}: {e}"),
        })?;
        Ok(KubeCluster {
            client,
            context,
            server,
            read_only,
            options: None,
            types: RwLock::default(),
        })
    }

    fn refuse_in_dry_run(&self, operation: impl FnOnce() -> String) -> Result<(), ClusterError> {
        if self.read_only {
            return Err(ClusterError::DryRunViolation {
                operation: operation(),
            });
        }
        Ok(())
    }

    /// The API resource of a type: well-known types from a table, others by discovering
    /// their group-version (one request, remembered).
    async fn resolve(&self, ty: &TypeRef) -> Result<Resolved, ClusterError> {
        if let Some(found) = self.types.read().expect("type cache poisoned").get(ty) {
            return Ok(found.clone());
        }
        if let Some(found) = well_known(ty) {
            self.types
                .write()
                .expect("type cache poisoned")
                .insert(ty.clone(), found.clone());
            return Ok(found);
        }
        // A miss asks the server again even if this group-version was seen before: a CRD
        // applied earlier in the run may have added the kind since.
        let gv: GroupVersion = ty
            .api_version
            .parse()
            .map_err(|_| ClusterError::UnknownType(ty.to_string()))?;
        let group = match discovery::pinned_group(&self.client, &gv).await {
            Ok(group) => group,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(ClusterError::UnknownType(ty.to_string()));
            }
            Err(e) => return Err(map_error(e, &ty.kind, &ty.api_version)),
        };
        let mut types = self.types.write().expect("type cache poisoned");
        for (resource, caps) in group.versioned_resources(&gv.version) {
            let key = TypeRef::new(&ty.api_version, &resource.kind);
            let namespaced = caps.scope == Scope::Namespaced;
            types.insert(
                key,
                Resolved {
                    resource,
                    namespaced,
                },
            );
        }
        drop(types);
        self.types
            .read()
            .expect("type cache poisoned")
            .get(ty)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownType(ty.to_string()))
    }

    async fn api(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        let resolved = self.resolve(ty).await?;
        match (resolved.namespaced, namespace) {
            (true, Some(ns)) => Ok(Api::namespaced_with(
                self.client.clone(),
                ns,
                &resolved.resource,
            )),
            (false, _) => Ok(Api::all_with(self.client.clone(), &resolved.resource)),
            (true, None) => Err(ClusterError::Other(format!(
                "{} {name} is namespaced: give it a metadata.namespace",
                ty.kind
            ))),
        }
    }

    async fn api_for(
        &self,
        object: &Value,
    ) -> Result<(Api<DynamicObject>, TypeRef, String), ClusterError> {
        let ty = TypeRef::of(object)
            .ok_or_else(|| ClusterError::Other("the object has no apiVersion or kind".into()))?;
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| {
                ClusterError::Other(format!("the {} object has no metadata.name", ty.kind))
            })?
            .to_string();
        let api = self
            .api(&ty, object["metadata"]["namespace"].as_str(), &name)
            .await?;
        Ok((api, ty, name))
    }
}

/// The types bringup touches on every run, resolved without asking the server.
fn well_known(ty: &TypeRef) -> Option<Resolved> {
    let (plural, namespaced) = match (ty.api_version.as_str(), ty.kind.as_str()) {
        ("v1", "Namespace") => ("namespaces", false),
        ("v1", "Secret") => ("secrets", true),
        ("v1", "ConfigMap") => ("configmaps", true),
        ("v1", "Pod") => ("pods", true),
        ("v1", "Service") => ("services", true),
        ("v1", "ServiceAccount") => ("serviceaccounts", true),
        ("v1", "Endpoints") => ("endpoints", true),
        ("v1", "PersistentVolumeClaim") => ("persistentvolumeclaims", true),
        ("apps/v1", "Deployment") => ("deployments", true),
        ("apps/v1", "StatefulSet") => ("statefulsets", true),
        ("apps/v1", "DaemonSet") => ("daemonsets", true),
        ("batch/v1", "Job") => ("jobs", true),
        ("coordination.k8s.io/v1", "Lease") => ("leases", true),
        ("networking.k8s.io/v1", "Ingress") => ("ingresses", true),
        _ => return None,
    };
    let gv: GroupVersion = ty.api_version.parse().ok()?;
    let gvk = kube::api::GroupVersionKind::gvk(&gv.group, &gv.version, &ty.kind);
    Some(Resolved {
        resource: ApiResource::from_gvk_with_plural(&gvk, plural),
        namespaced,
    })
}

/// `ns/name` or `name`, for messages.
fn object_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// Classifies a kube-rs error: the API's Status reason decides, then the transport.
pub(crate) fn map_error(error: kube::Error, kind: &str, name: &str) -> ClusterError {
    match error {
        kube::Error::Api(status) => {
            let details = status.details.as_ref();
            let kind = details
                .map(|d| d.kind.as_str())
                .filter(|k| !k.is_empty())
                .unwrap_or(kind)
                .to_string();
            let name = details
                .map(|d| d.name.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or(name)
                .to_string();
            match status.reason.as_str() {
                "NotFound" => ClusterError::NotFound { kind, name },
                "AlreadyExists" => ClusterError::AlreadyExists { kind, name },
                "Conflict" => ClusterError::Conflict { kind, name },
                "Forbidden" => ClusterError::Forbidden {
                    message: status.message.clone(),
                },
                _ if status.code >= 500 || status.code == 429 => ClusterError::Transient {
                    message: format!("{} {}: {}", status.code, status.reason, status.message),
                },
                _ if status.code == 404 => ClusterError::NotFound { kind, name },
                _ if status.code == 409 => ClusterError::Conflict { kind, name },
                _ if status.code == 403 => ClusterError::Forbidden {
                    message: status.message.clone(),
                },
                _ => ClusterError::Rejected {
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                },
            }
        }
        kube::Error::HyperError(e) => transport_error(error_chain(&e)),
        kube::Error::Service(e) => transport_error(error_chain(e.as_ref())),
        kube::Error::ReadEvents(e) => ClusterError::Transient {
            message: e.to_string(),
        },
        kube::Error::UpgradeConnection(e) => upgrade_error(e, name),
        kube::Error::Auth(e) => ClusterError::Connect {
            message: format!("authentication: {e}"),
        },
        kube::Error::RustlsTls(e) => ClusterError::Connect {
            message: format!("tls: {e}"),
        },
        other => ClusterError::Other(other.to_string()),
    }
}

/// A request that got no answer: worth retrying, unless TLS refused the server's certificate,
/// which no retry changes.
fn transport_error(message: String) -> ClusterError {
    if message.contains("invalid peer certificate") {
        ClusterError::Untrusted { message }
    } else {
        ClusterError::Transient { message }
    }
}

/// A failed WebSocket upgrade (exec, port-forward): the API server's HTTP status decides.
fn upgrade_error(error: kube::client::UpgradeConnectionError, pod: &str) -> ClusterError {
    use kube::client::UpgradeConnectionError as U;
    match &error {
        U::ProtocolSwitch(code) if code.as_u16() == 404 => ClusterError::NotFound {
            kind: "Pod".into(),
            name: pod.to_string(),
        },
        U::ProtocolSwitch(code) if code.as_u16() == 403 => ClusterError::Forbidden {
            message: format!("upgrading the connection to pod {pod}"),
        },
        U::ProtocolSwitch(code) if code.is_server_error() || code.as_u16() == 429 => {
            ClusterError::Transient {
                message: format!("upgrading the connection to pod {pod}: {code}"),
            }
        }
        _ => ClusterError::Transient {
            message: error_chain(&error),
        },
    }
}

fn to_dynamic(object: &Value) -> Result<DynamicObject, ClusterError> {
    serde_json::from_value(object.clone())
        .map_err(|e| ClusterError::Other(format!("not a Kubernetes object: {e}")))
}

fn to_value(object: DynamicObject, ty: &TypeRef) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    // List items come without apiVersion and kind; callers expect every object to carry them.
    if value.is_object() {
        value["apiVersion"] = Value::String(ty.api_version.clone());
        value["kind"] = Value::String(ty.kind.clone());
    }
    value
}

#[async_trait]
impl Cluster for KubeCluster {
    fn context(&self) -> &str {
        &self.context
    }
    fn server(&self) -> &str {
        &self.server
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn reconnect(&self) -> Option<ConnectOptions> {
        self.options.clone()
    }

    async fn identity(&self) -> Result<String, ClusterError> {
        let namespace = self
            .get(&TypeRef::namespace(), None, "kube-system")
            .await?
            .ok_or_else(|| ClusterError::NotFound {
                kind: "Namespace".into(),
                name: "kube-system".into(),
            })?;
        namespace["metadata"]["uid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClusterError::Other("namespace kube-system has no uid".into()))
    }

    async fn get(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let api = self.api(ty, namespace, name).await?;
        match api.get_opt(name).await {
            Ok(found) => Ok(found.map(|o| to_value(o, ty))),
            Err(e) => Err(map_error(e, &ty.kind, &object_name(namespace, name))),
        }
    }

    async fn list(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let resolved = self.resolve(ty).await?;
        let api: Api<DynamicObject> = match namespace {
            Some(ns) if resolved.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resolved.resource)
            }
            _ => Api::all_with(self.client.clone(), &resolved.resource),
        };
        let mut params = ListParams::default();
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let list = api
            .list(&params)
            .await
            .map_err(|e| map_error(e, &ty.kind, namespace.unwrap_or("")))?;
        Ok(list.items.into_iter().map(|o| to_value(o, ty)).collect())
    }

    async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        let (api, ty, name) = self.api_for(object).await?;
        let shown = object_name(object["metadata"]["namespace"].as_str(), &name);
        self.refuse_in_dry_run(|| format!("create {} {shown}", ty.kind))?;
        let created = api
            .create(&PostParams::default(), &to_dynamic(object)?)
            .await;
        created
            .map(|o| to_value(o, &ty))
            .map_err(|e| map_error(e, &ty.kind, &shown))
    }

    async fn replace(&self, object: &Value) -> Result<Value, ClusterError> {
        let (api, ty, name) = self.api_for(object).await?;
        let shown = object_name(object["metadata"]["namespace"].as_str(), &name);
        self.refuse_in_dry_run(|| format!("replace {} {shown}", ty.kind))?;
        let replaced = api
            .replace(&name, &PostParams::default(), &to_dynamic(object)?)
            .await;
        replaced
            .map(|o| to_value(o, &ty))
            .map_err(|e| map_error(e, &ty.kind, &shown))
    }

    async fn apply(&self, object: &Value, force: bool) -> Result<Value, ClusterError> {
        let (api, ty, name) = self.api_for(object).await?;
        let shown = object_name(object["metadata"]["namespace"].as_str(), &name);
        self.refuse_in_dry_run(|| format!("apply {} {shown}", ty.kind))?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        let applied = api.patch(&name, &params, &Patch::Apply(object)).await;
        applied
            .map(|o| to_value(o, &ty))
            .map_err(|e| map_error(e, &ty.kind, &shown))
    }

    async fn merge_patch(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        let shown = object_name(namespace, name);
        self.refuse_in_dry_run(|| format!("patch {} {shown}", ty.kind))?;
        let api = self.api(ty, namespace, name).await?;
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await;
        patched
            .map(|o| to_value(o, ty))
            .map_err(|e| map_error(e, &ty.kind, &shown))
    }

    async fn delete(
        &self,
        ty: &TypeRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        let shown = object_name(namespace, name);
        self.refuse_in_dry_run(|| format!("delete {} {shown}", ty.kind))?;
        let api = self.api(ty, namespace, name).await?;
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(map_error(e, &ty.kind, &shown)),
        }
    }

    async fn exec(&self, request: ExecRequest<'_>) -> Result<ExecOutput, ClusterError> {
        let pod = object_name(Some(request.namespace), request.pod);
        // Exec is a `create` on pods/exec: it may change anything in the pod.
        self.refuse_in_dry_run(|| format!("exec in pod {pod}"))?;
        let run = exec_in_pod(&self.client, &request, &pod);
        match tokio::time::timeout(request.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::Exec {
                pod,
                message: format!("the command did not finish within {:?}", request.timeout),
            }),
        }
    }

    async fn connect(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Box<dyn Stream>, ClusterError> {
        let shown = object_name(Some(namespace), pod);
        // Allowed in a dry run, as by the engine's ReadOnlyCluster: a port-forward (RBAC's
        // `create` on pods/portforward) changes nothing; what a probe sends through it is the
        // probe's responsibility (the OpenBao client refuses anything but GET then).
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut forwarder =
            api.portforward(pod, &[port])
                .await
                .map_err(|e| match map_error(e, "Pod", &shown) {
                    ClusterError::Other(message) => ClusterError::PortForward {
                        pod: shown.clone(),
                        port,
                        message,
                    },
                    other => other,
                })?;
        let stream = forwarder
            .take_stream(port)
            .ok_or_else(|| ClusterError::PortForward {
                pod: shown.clone(),
                port,
                message: "the forwarder returned no stream".into(),
            })?;
        Ok(Box::new(stream))
    }
}

async fn exec_in_pod(
    client: &kube::Client,
    request: &ExecRequest<'_>,
    pod: &str,
) -> Result<ExecOutput, ClusterError> {
    let exec_error = |message: String| ClusterError::Exec {
        pod: pod.to_string(),
        message,
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), request.namespace);
    let mut params = AttachParams::default()
        .stdin(request.stdin.is_some())
        .stdout(true)
        .stderr(true);
    if let Some(container) = request.container {
        params = params.container(container);
    }
    let mut process = api
        .exec(
            request.pod,
            request.command.iter().map(String::as_str),
            &params,
        )
        .await
        .map_err(|e| map_error(e, "Pod", pod))?;
    let status = process.take_status();
    let mut stdout_reader = process.stdout();
    let mut stderr_reader = process.stderr();
    let stdin_writer = process.stdin();

    let write_stdin = async {
        if let (Some(mut writer), Some(bytes)) = (stdin_writer, request.stdin) {
            // A command that exits without reading its stdin closes the pipe: not an error.
            let _ = writer.write_all(bytes).await;
            let _ = writer.shutdown().await;
        }
    };
    let read_stdout = async {
        let mut buffer = Vec::new();
        if let Some(reader) = stdout_reader.as_mut() {
            reader.read_to_end(&mut buffer).await.map(|_| buffer)
        } else {
            Ok(buffer)
        }
    };
    let read_stderr = async {
        let mut buffer = Vec::new();
        if let Some(reader) = stderr_reader.as_mut() {
            reader.read_to_end(&mut buffer).await.map(|_| buffer)
        } else {
            Ok(buffer)
        }
    };
    let ((), stdout, stderr) = tokio::join!(write_stdin, read_stdout, read_stderr);
    let stdout = stdout.map_err(|e| exec_error(format!("reading stdout: {e}")))?;
    let stderr = stderr.map_err(|e| exec_error(format!("reading stderr: {e}")))?;
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    process.join().await.map_err(|e| ClusterError::Transient {
        message: format!("exec in pod {pod}: {e}"),
    })?;
    let exit_code = match status {
        None => {
            return Err(exec_error(
                "the connection closed before the command's exit status arrived".into(),
            ));
        }
        Some(status) => {
            // The same wire shape as kube's own Status, whose helpers we want.
            let status: kube::core::Status = serde_json::to_value(status)
                .and_then(serde_json::from_value)
                .map_err(|e| exec_error(format!("unreadable exit status: {e}")))?;
            exit_code_of(&status).map_err(exec_error)?
        }
    };
    Ok(ExecOutput {
        stdout,
        stderr,
        exit_code,
    })
}

/// The exit code in an exec's final Status: `Success`, or `Failure` with reason
/// `NonZeroExitCode` and the code in the `ExitCode` cause. Any other failure (no such
/// container, command not found) is an error, not an exit code.
fn exit_code_of(status: &kube::core::Status) -> Result<i32, String> {
    if status.is_success() {
        return Ok(0);
    }
    if status.reason == "NonZeroExitCode" {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.iter().find(|c| c.reason == "ExitCode"))
            .and_then(|c| c.message.parse::<i32>().ok());
        return code
            .ok_or_else(|| format!("non-zero exit without an exit code: {}", status.message));
    }
    Err(if status.message.is_empty() {
        format!("exec failed ({})", status.reason)
    } else {
        status.message.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::{StatusCause, StatusDetails};

    fn status(reason: &str, code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("boom", reason)
                .with_code(code)
                .with_details(StatusDetails {
                    name: "s1".into(),
                    group: String::new(),
                    kind: "secrets".into(),
                    uid: String::new(),
                    causes: vec![],
                    retry_after_seconds: 0,
                }),
        ))
    }

    #[test]
    fn api_status_reasons_map_to_error_variants() {
        assert!(
            matches!(map_error(status("NotFound", 404), "Secret", "a/s1"), ClusterError::NotFound { name, .. } if name == "s1")
        );
        assert!(matches!(
            map_error(status("AlreadyExists", 409), "Secret", "a/s1"),
            ClusterError::AlreadyExists { .. }
        ));
        assert!(matches!(
            map_error(status("Conflict", 409), "Secret", "a/s1"),
            ClusterError::Conflict { .. }
        ));
        assert!(matches!(
            map_error(status("Forbidden", 403), "Secret", "a/s1"),
            ClusterError::Forbidden { .. }
        ));
        assert!(map_error(status("InternalError", 500), "Secret", "a/s1").is_transient());
        assert!(map_error(status("TooManyRequests", 429), "Secret", "a/s1").is_transient());
        assert!(matches!(
            map_error(status("Invalid", 422), "Secret", "a/s1"),
            ClusterError::Rejected { code: 422, .. }
        ));
    }

    #[test]
    fn exit_code_comes_from_the_exit_code_cause() {
        let mut failed = Status::failure(
            "command terminated with non-zero exit code",
            "NonZeroExitCode",
        );
        failed.details = Some(StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason: "ExitCode".into(),
                message: "3".into(),
                field: String::new(),
            }],
            retry_after_seconds: 0,
        });
        assert_eq!(exit_code_of(&failed), Ok(3));
        assert_eq!(exit_code_of(&Status::success()), Ok(0));
        assert!(exit_code_of(&Status::failure("container not found", "InternalError")).is_err());
    }

    /// A minimal API server: a namespace, a discovery document for `example.com/v1`, one
    /// Widget, Status errors; it records every request.
    async fn mock_api(requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> String {
        use axum::http::{Method, StatusCode, Uri};
        use serde_json::json;
        let status = |code: u16, reason: &str, name: &str, kind: &str| {
            (
                StatusCode::from_u16(code).unwrap(),
                axum::Json(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                                  "reason": reason, "message": format!("{kind} \"{name}\" {reason}"),
                                  "details": {"name": name, "kind": kind}}),
                ),
            )
        };
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
            let requests = requests.clone();
            async move {
                requests.lock().unwrap().push(format!("{method} {}", uri.path()));
                match (method.as_str(), uri.path()) {
                    ("GET", "/api/v1/namespaces/kube-system") => (
                        StatusCode::OK,
                        axum::Json(json!({"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": "kube-system", "uid": "uid-1234"}})),
                    ),
                    ("GET", "/apis/example.com/v1") => (
                        StatusCode::OK,
                        axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "example.com/v1",
                            "resources": [{"name": "widgets", "singularName": "widget", "namespaced": true,
                                           "kind": "Widget", "verbs": ["get", "list", "create", "patch"]}]})),
                    ),
                    ("GET", "/apis/example.com/v1/namespaces/app/widgets/w1") => (
                        StatusCode::OK,
                        axum::Json(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                                          "metadata": {"name": "w1", "namespace": "app"}, "spec": {"size": 3}})),
                    ),
                    ("GET", "/apis/missing.example.com/v1") => status(404, "NotFound", "", ""),
                    ("POST", "/api/v1/namespaces/app/secrets") => status(409, "AlreadyExists", "s1", "secrets"),
                    ("GET", "/api/v1/namespaces/app/configmaps/busy") => status(500, "InternalError", "busy", "configmaps"),
                    (_, path) => status(404, "NotFound", path.rsplit('/').next().unwrap_or_default(), ""),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn cluster(url: &str, read_only: bool) -> KubeCluster {
        let config = kube::Config::new(url.parse().unwrap());
        KubeCluster::from_config(config, "mock".into(), read_only).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn talks_to_the_api_with_few_requests_and_classified_errors() {
        let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let url = mock_api(requests.clone()).await;
        let cluster = cluster(&url, false);
        assert_eq!(cluster.identity().await.unwrap(), "uid-1234");
        assert_eq!(cluster.server(), url);

        let widget = TypeRef::new("example.com/v1", "Widget");
        let found = cluster
            .get(&widget, Some("app"), "w1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found["spec"]["size"], 3);
        assert!(
            cluster
                .get(&widget, Some("app"), "w2")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            cluster
                .get(&TypeRef::secret(), Some("app"), "nope")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            *requests.lock().unwrap(),
            vec![
                "GET /api/v1/namespaces/kube-system",
                "GET /apis/example.com/v1",
                "GET /apis/example.com/v1/namespaces/app/widgets/w1",
                "GET /apis/example.com/v1/namespaces/app/widgets/w2",
                "GET /api/v1/namespaces/app/secrets/nope",
            ],
            "one discovery request for the custom group-version, none for core types"
        );

        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "app"}});
        assert!(
            matches!(cluster.create(&secret).await, Err(ClusterError::AlreadyExists { name, .. }) if name == "s1")
        );
        let busy = cluster
            .get(&TypeRef::config_map(), Some("app"), "busy")
            .await
            .unwrap_err();
        assert!(busy.is_transient(), "{busy}");
        let unknown = TypeRef::new("missing.example.com/v1", "Gadget");
        assert!(matches!(
            cluster.get(&unknown, Some("app"), "g").await,
            Err(ClusterError::UnknownType(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn read_only_refuses_writes_before_any_request() {
        let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let url = mock_api(requests.clone()).await;
        let cluster = cluster(&url, true);
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "app"}});
        assert!(matches!(
            cluster.create(&secret).await,
            Err(ClusterError::DryRunViolation { .. })
        ));
        assert!(matches!(
            cluster.apply(&secret, false).await,
            Err(ClusterError::DryRunViolation { .. })
        ));
        let patch = serde_json::json!({});
        let refused = cluster
            .merge_patch(&TypeRef::secret(), Some("app"), "s1", &patch)
            .await;
        assert!(matches!(refused, Err(ClusterError::DryRunViolation { .. })));
        assert!(matches!(
            cluster.delete(&TypeRef::secret(), Some("app"), "s1").await,
            Err(ClusterError::DryRunViolation { .. })
        ));
        let command = vec!["true".to_string()];
        let exec = ExecRequest {
            namespace: "app",
            pod: "p",
            container: None,
            command: &command,
            stdin: None,
            timeout: std::time::Duration::from_secs(1),
        };
        assert!(matches!(
            cluster.exec(exec).await,
            Err(ClusterError::DryRunViolation { .. })
        ));
        // A port-forward is allowed (it changes nothing; probes read OpenBao through one).
        assert!(
            requests.lock().unwrap().is_empty(),
            "{:?}",
            requests.lock().unwrap()
        );
    }

    #[test]
    fn well_known_types_need_no_discovery() {
        let secret = well_known(&TypeRef::secret()).unwrap();
        assert_eq!(secret.resource.plural, "secrets");
        assert!(secret.namespaced);
        let ingress = well_known(&TypeRef::ingress()).unwrap();
        assert_eq!(ingress.resource.group, "networking.k8s.io");
        assert!(!well_known(&TypeRef::namespace()).unwrap().namespaced);
    }
}
