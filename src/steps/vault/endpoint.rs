//! Reaching a Vault target: a URL, or pods through port-forwards. An [`Endpoint`] owns its
//! forward, so the client stays usable exactly as long as the endpoint lives.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::client::VaultClient;
use crate::cluster::{LocalForward, TypeRef};
use crate::engine::redact::Redactor;
use crate::phase::model::{CaSource, PodSelector, Tls, VaultTarget};
use crate::phase::template::Locals;
use crate::steps::{StepContext, StepError};

/// One reachable server.
pub struct Endpoint {
    pub client: VaultClient,
    /// `pod ns/name` or the URL, for messages.
    pub name: String,
    /// The pod's name when the target is a pod.
    pub pod: Option<String>,
    /// How it was reached, for a helper process that must reach it on its own.
    pub route: Route,
    _forward: Option<LocalForward>,
}

impl Endpoint {
    /// The target's single server: the URL, the named pod, or the first running pod (by name)
    /// matching the selector.
    pub async fn one(ctx: &StepContext<'_>, target: &VaultTarget) -> Result<Endpoint, StepError> {
        let mut all = Self::resolve(ctx, target, false).await?;
        Ok(all.remove(0))
    }

    /// Every server of the target: the URL, the named pod, or every pod matching the selector.
    pub async fn all(
        ctx: &StepContext<'_>,
        target: &VaultTarget,
    ) -> Result<Vec<Endpoint>, StepError> {
        Self::resolve(ctx, target, true).await
    }

    async fn resolve(
        ctx: &StepContext<'_>,
        target: &VaultTarget,
        every: bool,
    ) -> Result<Vec<Endpoint>, StepError> {
        let mut endpoints = Self::connect(ctx, target, every).await?;
        if ctx.cluster.read_only() {
            for endpoint in &mut endpoints {
                endpoint.client = endpoint.client.clone().into_read_only();
            }
        }
        Ok(endpoints)
    }

    async fn connect(
        ctx: &StepContext<'_>,
        target: &VaultTarget,
        every: bool,
    ) -> Result<Vec<Endpoint>, StepError> {
        let id = ctx.full_id();
        match (&target.url, &target.pod) {
            (Some(url), None) => {
                let url = ctx.templates.render(url, &Locals::default())?;
                Ok(vec![url_endpoint(ctx, &url, target.tls.as_ref()).await?])
            }
            (None, Some(pod)) => {
                let names = pod_names(ctx, pod, every).await?;
                let mut endpoints = Vec::with_capacity(names.len());
                for name in names {
                    endpoints.push(
                        pod_endpoint(ctx, &pod.namespace, &name, target.port, target.tls.as_ref())
                            .await?,
                    );
                }
                Ok(endpoints)
            }
            _ => Err(StepError::Failed(format!(
                "step {id}: `vault` needs exactly one of `url` and `pod`"
            ))),
        }
    }
}

async fn pod_names(
    ctx: &StepContext<'_>,
    pod: &PodSelector,
    every: bool,
) -> Result<Vec<String>, StepError> {
    let id = ctx.full_id();
    match (&pod.name, &pod.selector) {
        (Some(name), None) => Ok(vec![name.clone()]),
        (None, Some(selector)) => {
            let pods = ctx
                .cluster
                .list(&TypeRef::pod(), Some(&pod.namespace), Some(selector))
                .await?;
            let mut names: Vec<(String, bool)> = pods
                .iter()
                .filter_map(|p| {
                    let name = p["metadata"]["name"].as_str()?.to_string();
                    let running = p["status"]["phase"].as_str() == Some("Running");
                    Some((name, running))
                })
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(StepError::Transient(format!(
                    "step {id}: no pod in namespace {} matches `{selector}` yet; is OpenBao deployed?",
                    pod.namespace
                )));
            }
            if every {
                if let Some((name, _)) = names.iter().find(|(_, running)| !running) {
                    return Err(StepError::Transient(format!(
                        "step {id}: pod {}/{name} is not running yet; it is retried, or re-run `bringup run` once it runs",
                        pod.namespace
                    )));
                }
                Ok(names.into_iter().map(|(n, _)| n).collect())
            } else {
                names.into_iter().find(|(_, running)| *running).map(|(n, _)| vec![n]).ok_or_else(|| {
                    StepError::Transient(format!("step {id}: no pod matching `{selector}` in namespace {} is running yet", pod.namespace))
                })
            }
        }
        _ => Err(StepError::Failed(format!(
            "step {id}: `vault.pod` needs exactly one of `name` and `selector`"
        ))),
    }
}

/// How to reach one server, resolved from the step's target (templates rendered, CA read):
/// plain data, so a helper process can open the same endpoint on its own connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub via: Via,
    /// PEM of the CA to trust besides the system roots (a CA is not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// The name the certificate is checked against, when it differs from the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Url(String),
    Pod {
        namespace: String,
        pod: String,
        port: u16,
    },
}

impl Endpoint {
    /// Opens a resolved route: a port-forward for a pod, and a client with its TLS settings.
    /// `step` names the step in messages.
    pub async fn open(
        cluster: std::sync::Arc<dyn crate::cluster::Cluster>,
        route: &Route,
        step: &str,
        redactor: &Redactor,
    ) -> Result<Endpoint, StepError> {
        let ca = route.ca_pem.as_deref().map(str::as_bytes);
        match &route.via {
            Via::Pod {
                namespace,
                pod,
                port,
            } => {
                let forward = LocalForward::start(cluster, namespace, pod, *port).await?;
                let name = format!("pod {namespace}/{pod}");
                let client = match &route.server_name {
                    None if ca.is_none() => VaultClient::new(
                        &format!("http://{}", forward.addr),
                        &name,
                        redactor.clone(),
                    )?,
                    None => {
                        return Err(StepError::Failed(format!(
                            "step {step}: `vault.tls` on a pod target needs `server_name`: the name in OpenBao's certificate"
                        )));
                    }
                    Some(server_name) => VaultClient::with_tls(
                        &format!("https://{server_name}:{}", forward.addr.port()),
                        &name,
                        ca,
                        Some((server_name, forward.addr)),
                        redactor.clone(),
                    )?,
                };
                Ok(Endpoint {
                    client,
                    name,
                    pod: Some(pod.clone()),
                    route: route.clone(),
                    _forward: Some(forward),
                })
            }
            Via::Url(url) => {
                let client = match &route.server_name {
                    None => VaultClient::with_tls(url, url, ca, None, redactor.clone())?,
                    Some(server_name) => {
                        // Connect to the URL's address but check the certificate for `server_name`.
                        let parsed = reqwest::Url::parse(url).map_err(|e| {
                            StepError::Failed(format!(
                                "step {step}: `vault.url` {url} is not a URL: {e}"
                            ))
                        })?;
                        let host = parsed.host_str().unwrap_or_default().to_string();
                        let port = parsed.port_or_known_default().unwrap_or(8200);
                        let addr = tokio::net::lookup_host((host.as_str(), port))
                            .await
                            .ok()
                            .and_then(|mut a| a.next())
                            .ok_or_else(|| {
                                StepError::Transient(format!("step {step}: cannot resolve {host}"))
                            })?;
                        let mut base = parsed.clone();
                        base.set_host(Some(server_name)).map_err(|e| {
                            StepError::Failed(format!(
                                "step {step}: server name {server_name}: {e}"
                            ))
                        })?;
                        VaultClient::with_tls(
                            base.as_str(),
                            url,
                            ca,
                            Some((server_name, addr)),
                            redactor.clone(),
                        )?
                    }
                };
                Ok(Endpoint {
                    client,
                    name: url.clone(),
                    pod: None,
                    route: route.clone(),
                    _forward: None,
                })
            }
        }
    }
}

async fn pod_endpoint(
    ctx: &StepContext<'_>,
    namespace: &str,
    pod: &str,
    port: u16,
    tls: Option<&Tls>,
) -> Result<Endpoint, StepError> {
    let (ca_pem, server_name) = match tls {
        None => (None, None),
        Some(tls) => {
            let server_name = tls.server_name.as_deref().ok_or_else(|| {
                StepError::Failed(format!(
                    "step {}: `vault.tls` on a pod target needs `server_name`: the name in OpenBao's certificate",
                    ctx.full_id()
                ))
            })?;
            (
                read_ca(ctx, tls.ca.as_ref()).await?,
                Some(ctx.templates.render(server_name, &Locals::default())?),
            )
        }
    };
    let route = Route {
        via: Via::Pod {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            port,
        },
        ca_pem,
        server_name,
    };
    Endpoint::open(ctx.cluster.clone(), &route, &ctx.full_id(), ctx.redactor).await
}

async fn url_endpoint(
    ctx: &StepContext<'_>,
    url: &str,
    tls: Option<&Tls>,
) -> Result<Endpoint, StepError> {
    let server_name = match tls.and_then(|t| t.server_name.as_deref()) {
        Some(name) => Some(ctx.templates.render(name, &Locals::default())?),
        None => None,
    };
    let route = Route {
        via: Via::Url(url.to_string()),
        ca_pem: read_ca(ctx, tls.and_then(|t| t.ca.as_ref())).await?,
        server_name,
    };
    Endpoint::open(ctx.cluster.clone(), &route, &ctx.full_id(), ctx.redactor).await
}

/// The CA's PEM text, from a file, a Secret key or a ConfigMap key.
async fn read_ca(
    ctx: &StepContext<'_>,
    ca: Option<&CaSource>,
) -> Result<Option<String>, StepError> {
    let id = ctx.full_id();
    let bytes = match ca {
        None => return Ok(None),
        Some(CaSource::File(path)) => std::fs::read(path).map_err(|e| {
            StepError::Failed(format!(
                "step {id}: reading the CA file {}: {e}",
                path.display()
            ))
        })?,
        Some(CaSource::Secret(r)) => {
            let secret = ctx
                .cluster
                .get(
                    &TypeRef::secret(),
                    Some(&r.secret.namespace),
                    &r.secret.name,
                )
                .await?;
            let encoded = secret.as_ref().and_then(|s| s["data"][&r.key].as_str()).ok_or_else(|| {
                StepError::Failed(format!("step {id}: the CA Secret key {r} does not exist; create it or fix `vault.tls.ca`"))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| {
                    StepError::Failed(format!(
                        "step {id}: the CA Secret key {r} is not base64: {e}"
                    ))
                })?
        }
        Some(CaSource::Configmap(r)) => {
            let map = ctx
                .cluster
                .get(
                    &TypeRef::config_map(),
                    Some(&r.secret.namespace),
                    &r.secret.name,
                )
                .await?;
            let text = map.as_ref().and_then(|m| m["data"][&r.key].as_str()).ok_or_else(|| {
                StepError::Failed(format!("step {id}: the CA ConfigMap key {r} does not exist; create it or fix `vault.tls.ca`"))
            })?;
            text.as_bytes().to_vec()
        }
    };
    String::from_utf8(bytes).map(Some).map_err(|_| {
        StepError::Failed(format!(
            "step {id}: the CA is not PEM text; fix `vault.tls.ca`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{
        BaoServer, Harness, TEST_TLS_CA, init_step, pod_target, unseal_step,
    };
    use crate::cluster::TypeRef;
    use crate::phase::model::{CaSource, Tls, VaultTarget};
    use crate::steps::Probe;

    fn https_url(server: &BaoServer, ca: Option<CaSource>) -> VaultTarget {
        VaultTarget {
            url: Some(format!("https://127.0.0.1:{}", server.port)),
            pod: None,
            port: 8200,
            tls: Some(Tls {
                ca,
                server_name: Some("openbao.test".into()),
            }),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tls_is_verified_against_the_named_ca_and_server_name() {
        let server = BaoServer::start_tls().await;
        let harness = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, TEST_TLS_CA).unwrap();

        let error = harness
            .probe(init_step(https_url(&server, None)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("certificate"),
            "an unknown CA is refused: {error}"
        );

        let probe = harness
            .probe(init_step(https_url(&server, Some(CaSource::File(ca_file)))))
            .await
            .unwrap();
        assert!(matches!(probe, Probe::NeedsWork(_)), "{probe:?}");

        // A pod target over a port-forward, with the CA from a Secret.
        use base64::Engine as _;
        harness
            .fake()
            .insert(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "openbao-tls", "namespace": "vault"},
            "data": {"ca.crt": base64::engine::general_purpose::STANDARD.encode(TEST_TLS_CA)}}));
        harness.cluster.add_pod(
            "vault",
            "vault-0",
            json!({"app": "openbao"}),
            ([127, 0, 0, 1], server.port),
        );
        let mut pod = pod_target("vault", Some("vault-0"), None);
        pod.tls = Some(Tls {
            ca: Some(CaSource::Secret(
                serde_json::from_value(json!("vault/openbao-tls/ca.crt")).unwrap(),
            )),
            server_name: Some("openbao.test".into()),
        });
        harness.apply(init_step(pod.clone())).await.unwrap();
        harness.apply(unseal_step(pod.clone())).await.unwrap();
        let (_, status) = server.get("sys/seal-status", "").await;
        assert_eq!(status["sealed"], false);
        assert!(
            harness
                .fake()
                .object(&TypeRef::secret(), Some("vault"), "vault-init")
                .is_some()
        );

        pod.tls = Some(Tls {
            ca: None,
            server_name: None,
        });
        let error = harness
            .probe(unseal_step(pod))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("server_name"), "{error}");
    }
}
