//! `store`: render a step's data templates over what it captured and merge them into a Secret.

use std::collections::BTreeMap;

use crate::phase::model::Store;
use crate::phase::template::Locals;

use super::StepContext;
use super::StepError;
use super::secret_data::{SecretData, SecretShape};

/// Renders every `data` template with `locals`, registers the values as secrets, and merges
/// them into the Secret (created with the managed-by label when missing; an existing Secret
/// keeps its labels and gets the store's). Returns the keys that changed.
async fn store(
    ctx: &StepContext<'_>,
    store: &Store,
    locals: &Locals,
) -> Result<Vec<String>, StepError> {
    let mut values = BTreeMap::new();
    for (key, template) in &store.data {
        let value = ctx.templates.render(template, locals)?;
        ctx.redactor.register(&value);
        values.insert(key.clone(), value);
    }
    let shape = SecretShape {
        secret_type: None,
        labels: store.labels.clone(),
        annotations: BTreeMap::new(),
    };
    SecretData::write(
        ctx.cluster.as_ref(),
        ctx.redactor,
        &store.secret,
        &values,
        &shape,
    )
    .await
}

/// [`store`], and what it did as a suffix for the step's message: `; stored token in Secret
/// global-secrets/gitea.renovate`, or nothing when every value was already there.
pub async fn store_and_describe(
    ctx: &StepContext<'_>,
    target: &Store,
    locals: &Locals,
) -> Result<String, StepError> {
    let written = store(ctx, target, locals).await?;
    Ok(if written.is_empty() {
        String::new()
    } else {
        format!(
            "; stored {} in Secret {}",
            written.join(", "),
            target.secret
        )
    })
}
