//! The HTTP client for one Vault/OpenBao server: a base URL, TLS verification on, and an
//! optional token sent as `X-Vault-Token`. Every error names the server, the method, the path
//! and the status, with a truncated, redacted body.

use std::net::SocketAddr;

use reqwest::Method;
use serde_json::Value;

use crate::engine::redact::Redactor;
use crate::error_chain::error_chain;
use crate::steps::StepError;

/// How much of an error body goes into a message.
const BODY_LIMIT: usize = 300;

/// A client for one server.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    label: String,
    redactor: Redactor,
    /// A dry run (`plan --probe`, `verify`): only GET goes out.
    read_only: bool,
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct VaultResponse {
    pub status: u16,
    pub body: Value,
}

impl VaultResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl VaultClient {
    /// `base` is the server's root (`http://127.0.0.1:8200`); `label` names it in messages.
    pub fn new(base: &str, label: &str, redactor: Redactor) -> Result<Self, StepError> {
        Self::with_tls(base, label, None, None, redactor)
    }

    /// With a CA to trust (PEM) besides the system roots, and a host name pinned to an
    /// address (a server name over a port-forward).
    pub fn with_tls(
        base: &str,
        label: &str,
        ca_pem: Option<&[u8]>,
        resolve: Option<(&str, SocketAddr)>,
        redactor: Redactor,
    ) -> Result<Self, StepError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                StepError::Failed(format!("OpenBao {label}: the CA is not PEM: {e}"))
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((host, addr)) = resolve {
            builder = builder.resolve(host, addr);
        }
        let http = builder.build().map_err(|e| {
            StepError::Failed(format!("OpenBao {label}: cannot build an HTTP client: {e}"))
        })?;
        Ok(VaultClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: None,
            label: label.to_string(),
            redactor,
            read_only: false,
        })
    }

    /// The same client, refusing every request but GET: a probe in a dry run that tries to
    /// write is a bug, and must fail loudly rather than change OpenBao.
    pub fn into_read_only(self) -> VaultClient {
        VaultClient {
            read_only: true,
            ..self
        }
    }

    /// The same client, sending this token.
    pub fn with_token(&self, token: &str) -> VaultClient {
        self.redactor.register(token);
        VaultClient {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// The same client, without a token.
    pub fn without_token(&self) -> VaultClient {
        VaultClient {
            token: None,
            ..self.clone()
        }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Names the server in messages (`pod vault/vault-0`, or the URL).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request to `/v1/<path>` and returns whatever status came back. Only transport
    /// failures are errors here.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<VaultResponse, StepError> {
        if self.read_only && method != Method::GET {
            return Err(StepError::Cluster(
                crate::cluster::ClusterError::DryRunViolation {
                    operation: format!("{method} /v1/{path} to OpenBao {}", self.label),
                },
            ));
        }
        #[cfg(test)]
        super::testing::record(&self.base, method.as_str(), path);
        let url = format!("{}/v1/{}", self.base, path.trim_start_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            // reqwest's message holds the URL, which holds no secret: paths are never secret.
            StepError::Transient(self.redactor.redact(&format!(
                "OpenBao {}: {method} /v1/{path}: {}",
                self.label,
                error_chain(&e)
            )))
        })?;
        let status = response.status().as_u16();
        // Method, path and status only: paths are never secret, bodies and tokens may be.
        tracing::debug!(server = %self.label, %method, path, status, "openbao request");
        let text = response.text().await.map_err(|e| {
            StepError::Transient(self.redactor.redact(&format!(
                "OpenBao {}: {method} /v1/{path}: reading the answer: {e}",
                self.label
            )))
        })?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(VaultResponse { status, body })
    }

    /// GET: `Some(body)` on 200, `None` on 404, an error otherwise.
    pub async fn read(&self, path: &str) -> Result<Option<Value>, StepError> {
        let response = self.request(Method::GET, path, None).await?;
        match response.status {
            200 => Ok(Some(response.body)),
            404 => Ok(None),
            _ => Err(self.unexpected(&Method::GET, path, &response)),
        }
    }

    /// A write (PUT, POST, DELETE): the body on 2xx, an error otherwise.
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, StepError> {
        let response = self.request(method.clone(), path, body).await?;
        if response.is_success() {
            Ok(response.body)
        } else {
            Err(self.unexpected(&method, path, &response))
        }
    }

    /// The error for an answer the caller did not expect: 5xx and 429 are transient.
    pub fn unexpected(&self, method: &Method, path: &str, response: &VaultResponse) -> StepError {
        let detail = error_text(&response.body);
        let message = self.redactor.redact(&format!(
            "OpenBao {}: {method} /v1/{path} answered {}: {}",
            self.label,
            response.status,
            truncate(&detail, BODY_LIMIT)
        ));
        if response.status >= 500 || response.status == 429 {
            StepError::Transient(message)
        } else {
            StepError::Failed(message)
        }
    }
}

/// Vault's `{"errors": [...]}`, or the body itself.
pub fn error_text(body: &Value) -> String {
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Some(_) => "(no error message)".into(),
        None => match body {
            Value::Null => "(empty body)".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(limit).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_only_client_refuses_writes_before_sending_them() {
        // Nothing listens on port 9: a request that went out would fail as a transport error.
        let client = VaultClient::new(
            "http://127.0.0.1:9",
            "pod vault/vault-0",
            Redactor::default(),
        )
        .unwrap()
        .into_read_only();
        for method in [Method::PUT, Method::POST, Method::DELETE] {
            let refused = client.request(method, "sys/unseal", None).await;
            assert!(
                matches!(
                    refused,
                    Err(StepError::Cluster(
                        crate::cluster::ClusterError::DryRunViolation { .. }
                    ))
                ),
                "{refused:?}"
            );
        }
        let read = client.request(Method::GET, "sys/seal-status", None).await;
        assert!(matches!(read, Err(StepError::Transient(_))), "{read:?}");
        assert!(client.with_token("t").read_only, "a token does not lift it");
    }
}
