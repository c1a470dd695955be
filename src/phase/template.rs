//! Templates: minijinja with `secret()`, `configmap()`, `ingress_host()`, `values.*`, and the
//! `output`/`response` of the step that captured them. Everything read from a Secret is
//! registered with the redactor the moment it is read.

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::engine::redact::Redactor;

/// Variables local to one step: what it captured.
#[derive(Debug, Clone, Default)]
pub struct Locals {
    /// The exec step's captured stdout.
    pub output: Option<serde_json::Value>,
    /// The http step's response body (JSON, or a string).
    pub response: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    /// The template text (never a rendered value).
    pub template: String,
    pub message: String,
}

/// Renders templates against values and the cluster.
pub struct Templater {
    pub values: serde_json::Value,
    pub cluster: Option<Arc<dyn Cluster>>,
    pub redactor: Redactor,
}

impl Templater {
    pub fn new(values: serde_json::Value, cluster: Option<Arc<dyn Cluster>>, redactor: Redactor) -> Self {
        Templater { values, cluster, redactor }
    }

    /// Renders one template string. Must be called on a multi-threaded tokio runtime: the
    /// lookup functions block on cluster reads.
    pub fn render(&self, template: &str, locals: &Locals) -> Result<String, TemplateError> {
        // Placeholder until the minijinja implementation lands: plain text passes through, and
        // a template that is one `{{ output.a.b }}`/`{{ response.a }}`/`{{ values.a }}` path is
        // looked up, so step kinds can be tested.
        let not_yet = || TemplateError { template: template.into(), message: "templating is not implemented yet".into() };
        if !(template.contains("{{") || template.contains("{%")) {
            return Ok(template.to_string());
        }
        let path = template.trim().strip_prefix("{{").and_then(|t| t.strip_suffix("}}")).ok_or_else(not_yet)?.trim();
        let mut parts = path.split('.');
        let mut value = match parts.next() {
            Some("output") => locals.output.as_ref(),
            Some("response") => locals.response.as_ref(),
            Some("values") => Some(&self.values),
            _ => None,
        }
        .ok_or_else(not_yet)?;
        for part in parts {
            value = value.get(part).ok_or_else(not_yet)?;
        }
        Ok(match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Renders every string inside a JSON value.
    pub fn render_json(&self, value: &serde_json::Value, locals: &Locals) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.render(s, locals)?),
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(|v| self.render_json(v, locals)).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| Ok((self.render(k, locals)?, self.render_json(v, locals)?))).collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }
}
