//! Where an HTTP step's requests go: a URL (TLS verified, with an optional CA and server
//! name), or a pod or Service port reached through a local port-forward.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::cluster::{LocalForward, TypeRef};
use crate::error_chain::error_chain;
use crate::phase::model::{CaSource, HttpAuth, HttpTarget, Tls};
use crate::phase::template::Locals;

use super::pod_target::PodTarget;
use super::secret_data::SecretData;
use super::{StepContext, StepError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a response body an error may quote.
pub const BODY_EXCERPT: usize = 300;

/// A ready-to-use target: a client, the base URL, and the forward that keeps it reachable.
pub struct HttpEndpoint {
    client: reqwest::Client,
    base: String,
    /// What messages call the target (never a URL with a query).
    pub shown: String,
    forward: Option<LocalForward>,
}

/// One request, rendered.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub auth: Option<&'a HttpAuth>,
    pub json: Option<&'a Value>,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or as a string when it is not JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }

    /// The start of the body, redacted, for an error.
    pub fn excerpt(&self, ctx: &StepContext<'_>) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let redacted = ctx.redactor.redact(text.trim());
        let cut: String = redacted.chars().take(BODY_EXCERPT).collect();
        if cut.len() < redacted.len() {
            format!("{cut}…")
        } else {
            cut
        }
    }
}

impl HttpEndpoint {
    pub async fn open(
        ctx: &StepContext<'_>,
        target: &HttpTarget,
        tls: Option<&Tls>,
    ) -> Result<Self, StepError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(super::timeouts::for_step(ctx.step))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = tls.and_then(|t| t.ca.as_ref()) {
            let pem = read_ca(ctx, ca).await?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                StepError::Failed(format!(
                    "the CA in {} is not a PEM certificate: {e}",
                    ca_name(ca)
                ))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        let server_name = tls.and_then(|t| t.server_name.as_deref());
        let (base, shown, forward) = match target {
            HttpTarget::Url(template) => {
                let rendered = ctx.templates.render(template, &Locals::default())?;
                let mut url = Url::parse(&rendered).map_err(|e| {
                    StepError::Failed(format!(
                        "target url `{}` is not a URL: {e}",
                        strip_query(&rendered)
                    ))
                })?;
                if let Some(name) = server_name {
                    // Connect to the URL's address but verify (and send SNI for) the given name.
                    let addr = resolve(&url).await?;
                    url.set_host(Some(name))
                        .map_err(|e| StepError::Failed(format!("server_name `{name}`: {e}")))?;
                    builder = builder.resolve(name, addr);
                }
                let shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
                (url.as_str().trim_end_matches('/').to_string(), shown, None)
            }
            HttpTarget::Service { service, port } => {
                let (pod, pod_port) =
                    PodTarget::behind_service(ctx.cluster.as_ref(), service, *port).await?;
                let forward =
                    LocalForward::start(ctx.cluster.clone(), &pod.namespace, &pod.name, pod_port)
                        .await?;
                let shown = format!("service {service} port {port} (pod {pod})");
                let (base, b) = forwarded_base(forward.addr, tls.is_some(), server_name, builder);
                builder = b;
                (base, shown, Some(forward))
            }
            HttpTarget::Pod { pod, port } => {
                let pod = PodTarget::resolve(ctx.cluster.as_ref(), pod).await?;
                let forward =
                    LocalForward::start(ctx.cluster.clone(), &pod.namespace, &pod.name, *port)
                        .await?;
                let shown = format!("pod {pod} port {port}");
                let (base, b) = forwarded_base(forward.addr, tls.is_some(), server_name, builder);
                builder = b;
                (base, shown, Some(forward))
            }
        };
        let client = builder
            .build()
            .map_err(|e| StepError::Failed(format!("http client: {}", e.without_url())))?;
        Ok(HttpEndpoint {
            client,
            base,
            shown,
            forward,
        })
    }

    /// Sends one request. Dropped connections and timeouts are transient; the error never
    /// carries the URL (its query may hold anything).
    pub async fn send(&self, ctx: &StepContext<'_>, call: &Call<'_>) -> Result<Answer, StepError> {
        let method = reqwest::Method::from_bytes(call.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| StepError::Failed(format!("`{}` is not an HTTP method", call.method)))?;
        let path = if call.path.starts_with('/') {
            call.path.to_string()
        } else {
            format!("/{}", call.path)
        };
        let url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| StepError::Failed(format!("path `{}`: {e}", strip_query(&path))))?;
        let mut request = self.client.request(method, url);
        for (name, value) in call.headers {
            request = request.header(name, value);
        }
        match call.auth {
            Some(HttpAuth::Basic { username, password }) => {
                let username = ctx.templates.render(username, &Locals::default())?;
                let password = ctx.templates.render(password, &Locals::default())?;
                ctx.redactor.register(&password);
                request = request.basic_auth(username, Some(password));
            }
            Some(HttpAuth::Bearer(token)) => {
                let token = ctx.templates.render(token, &Locals::default())?;
                ctx.redactor.register(&token);
                request = request.bearer_auth(token);
            }
            None => {}
        }
        if let Some(json) = call.json {
            request = request.json(json);
        }
        let what = format!(
            "{} {} to {}",
            call.method.to_ascii_uppercase(),
            strip_query(&path),
            self.shown
        );
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        Ok(Answer {
            status,
            body: body.to_vec(),
        })
    }

    fn transport_error(&self, what: &str, error: reqwest::Error) -> StepError {
        let mut message = format!("{what}: {}", error_chain(&error.without_url()));
        if let Some(reason) = self.forward.as_ref().and_then(LocalForward::last_error) {
            message.push_str(&format!(" (port-forward: {reason})"));
        }
        StepError::Transient(message)
    }
}

/// `http://127.0.0.1:PORT`, or https to the server name (default `localhost`) pinned to it.
fn forwarded_base(
    addr: SocketAddr,
    tls: bool,
    server_name: Option<&str>,
    builder: reqwest::ClientBuilder,
) -> (String, reqwest::ClientBuilder) {
    if !tls {
        return (format!("http://{addr}"), builder);
    }
    let name = server_name.unwrap_or("localhost");
    (
        format!("https://{name}:{}", addr.port()),
        builder.resolve(name, addr),
    )
}

async fn resolve(url: &Url) -> Result<SocketAddr, StepError> {
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| StepError::Transient(format!("cannot resolve host {host}")))
}

async fn read_ca(ctx: &StepContext<'_>, ca: &CaSource) -> Result<Vec<u8>, StepError> {
    match ca {
        CaSource::Secret(key) => SecretData::read(ctx.cluster.as_ref(), ctx.redactor, &key.secret)
            .await?
            .non_empty(&key.key)
            .map(|v| v.as_bytes().to_vec())
            .ok_or_else(|| StepError::Failed(format!("CA Secret key {key} is missing or empty"))),
        CaSource::Configmap(key) => {
            let map = ctx
                .cluster
                .get(
                    &TypeRef::config_map(),
                    Some(&key.secret.namespace),
                    &key.secret.name,
                )
                .await?
                .ok_or_else(|| {
                    StepError::Failed(format!("CA ConfigMap {} not found", key.secret))
                })?;
            map["data"][&key.key]
                .as_str()
                .map(|v| v.as_bytes().to_vec())
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "CA ConfigMap {} has no key {}",
                        key.secret, key.key
                    ))
                })
        }
        CaSource::File(path) => tokio::fs::read(path)
            .await
            .map_err(|e| StepError::Failed(format!("reading CA file {}: {e}", path.display()))),
    }
}

fn ca_name(ca: &CaSource) -> String {
    match ca {
        CaSource::Secret(key) => format!("Secret key {key}"),
        CaSource::Configmap(key) => format!("ConfigMap key {key}"),
        CaSource::File(path) => format!("file {}", path.display()),
    }
}

/// A path or URL without its query: the query may carry a value that must not be shown.
pub fn strip_query(text: &str) -> &str {
    text.split(['?', '#']).next().unwrap_or(text)
}
