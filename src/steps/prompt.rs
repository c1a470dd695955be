//! The `prompt` kind: a value only the operator knows, taken from `--set`/`--values` or asked
//! on the terminal, kept in a Secret; a value already kept there is never asked again.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::phase::model::PromptStep;

use super::secret_data::{SecretData, SecretShape};
use super::{Applied, Probe, StepContext, StepError};

/// Read-only: is the answer already in its Secret?
pub async fn probe(ctx: &StepContext<'_>, spec: &PromptStep) -> Result<Probe, StepError> {
    if SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, &spec.secret).await? {
        return Ok(Probe::Done(format!("Secret key {} present", spec.secret)));
    }
    let source = if lookup(&ctx.templates.values, &spec.value).is_some() {
        "from values"
    } else {
        "to be asked"
    };
    Ok(Probe::NeedsWork(format!(
        "Secret key {} missing ({source}: {})",
        spec.secret, spec.value
    )))
}

/// Keeps the answer: from values first, then the prompter; fails naming the `--set` key.
pub async fn apply(ctx: &StepContext<'_>, spec: &PromptStep) -> Result<Applied, StepError> {
    if SecretData::has_key(ctx.cluster.as_ref(), ctx.redactor, &spec.secret).await? {
        return Ok(Applied::Unchanged(format!(
            "Secret key {} present",
            spec.secret
        )));
    }
    let answer = match lookup(&ctx.templates.values, &spec.value) {
        Some(value) => value,
        None => {
            let asked = ctx
                .prompter
                .ask(&spec.prompt, spec.hidden)
                .map_err(|e| StepError::Failed(format!("asking for {}: {e}", spec.value)))?;
            asked.filter(|a| !a.is_empty()).ok_or_else(|| {
                StepError::Failed(format!(
                    "no value for `{key}`: pass `--set {key}=...` or put it in a --values file, or run on a terminal to be asked",
                    key = spec.value
                ))
            })?
        }
    };
    ctx.redactor.register(&answer);
    let values = BTreeMap::from([(spec.secret.key.clone(), answer)]);
    SecretData::write(
        ctx.cluster.as_ref(),
        ctx.redactor,
        &spec.secret.secret,
        &values,
        &SecretShape::default(),
    )
    .await?;
    Ok(Applied::Changed(format!(
        "stored the answer in Secret key {}",
        spec.secret
    )))
}

/// A values entry by its dotted key: a literal `a.b` key first (as `--set a.b=x` may give),
/// then the nested path.
fn lookup(values: &Value, key: &str) -> Option<String> {
    let found = values
        .get(key)
        .or_else(|| key.split('.').try_fold(values, |v, part| v.get(part)))?;
    match found {
        Value::String(s) => Some(s.clone()),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::model::StepKind;
    use crate::steps::Prompter;
    use crate::steps::testing::{Bed, fake_with_namespaces, secret_key};
    use serde_json::json;

    struct Answers(
        Option<String>,
        std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>>,
    );

    impl Prompter for Answers {
        fn ask(&self, question: &str, hidden: bool) -> Result<Option<String>, String> {
            self.1.lock().unwrap().push((question.to_string(), hidden));
            Ok(self.0.clone())
        }
    }

    fn spec() -> PromptStep {
        PromptStep {
            prompt: "Cloudflare API token".into(),
            secret: serde_json::from_value(json!("global-secrets/cloudflare/token")).unwrap(),
            value: "cloudflare.token".into(),
            hidden: true,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn takes_the_value_from_values_without_asking() {
        let bed = Bed::with_values(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Prompt(spec()),
            json!({"cloudflare": {"token": "from-values-token"}}),
        );
        assert_eq!(
            probe(&bed.ctx(), &spec()).await.unwrap(),
            Probe::NeedsWork("Secret key global-secrets/cloudflare/token missing (from values: cloudflare.token)".into())
        );
        assert!(matches!(
            apply(&bed.ctx(), &spec()).await.unwrap(),
            Applied::Changed(_)
        ));
        assert_eq!(
            secret_key(&bed.fake, "global-secrets", "cloudflare", "token").unwrap(),
            "from-values-token"
        );
        assert!(bed.redactor.leaks("from-values-token"));
        assert!(matches!(
            probe(&bed.ctx(), &spec()).await.unwrap(),
            Probe::Done(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn asks_the_prompter_hidden_and_never_again_once_stored() {
        let mut bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Prompt(spec()),
        );
        let asked: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>> = Default::default();
        bed.prompter = Box::new(Answers(Some("typed-token-123".into()), asked.clone()));
        apply(&bed.ctx(), &spec()).await.unwrap();
        assert_eq!(
            secret_key(&bed.fake, "global-secrets", "cloudflare", "token").unwrap(),
            "typed-token-123"
        );
        assert!(matches!(
            apply(&bed.ctx(), &spec()).await.unwrap(),
            Applied::Unchanged(_)
        ));
        assert_eq!(
            *asked.lock().unwrap(),
            vec![("Cloudflare API token".to_string(), true)]
        );
        assert_eq!(bed.redactor.redact("typed-token-123"), "[redacted]");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn without_value_or_terminal_fails_naming_the_set_key() {
        let bed = Bed::new(
            fake_with_namespaces(&["global-secrets"]),
            StepKind::Prompt(spec()),
        );
        let error = apply(&bed.ctx(), &spec()).await.unwrap_err().to_string();
        assert!(
            error.starts_with("no value for `cloudflare.token`: pass `--set cloudflare.token=...`"),
            "{error}"
        );
        assert!(bed.fake.mutating_calls().is_empty());
    }

    #[test]
    fn looks_up_flat_and_nested_keys() {
        assert_eq!(
            lookup(&json!({"a.b": "flat"}), "a.b").as_deref(),
            Some("flat")
        );
        assert_eq!(lookup(&json!({"a": {"b": 5}}), "a.b").as_deref(), Some("5"));
        assert_eq!(lookup(&json!({"a": {"b": {}}}), "a.b"), None);
    }
}
