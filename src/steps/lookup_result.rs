//! An http step's `lookup`: list what the API holds, pick the items that are ours (`match`),
//! and split them into the one to keep (`keep`, usually "the one our stored secret belongs
//! to") and the others, which the step deletes before creating a fresh one.

use serde_json::Value;

use crate::phase::model::{HttpStep, Lookup};
use crate::phase::template::Locals;

use super::http_endpoint::HttpEndpoint;
use super::{StepContext, StepError, capture};

/// The matches of a lookup, split by `keep`.
#[derive(Debug, Default)]
pub struct LookupResult {
    /// Matches to keep: with `keep`, those whose fields equal it; without, every match.
    pub kept: Vec<Value>,
    /// Matches that are not kept.
    pub others: Vec<Value>,
}

impl LookupResult {
    /// Sends the list request and sorts its items.
    pub async fn list(
        ctx: &StepContext<'_>,
        spec: &HttpStep,
        lookup: &Lookup,
        endpoint: &HttpEndpoint,
    ) -> Result<Self, StepError> {
        let request = &lookup.request;
        let answer = super::http::send(ctx, spec, endpoint, request, &Locals::default()).await?;
        let what = format!(
            "lookup {} to {}",
            super::http::describe(ctx, request, &Locals::default()),
            endpoint.shown
        );
        if !super::http::expected(request, answer.status) {
            return Err(super::http::unexpected(ctx, &what, request, &answer));
        }
        let body = answer.value();
        if spec.sensitive {
            capture::register_leaves(ctx.redactor, &body);
        }
        let list = match &lookup.items {
            Some(pointer) => body.pointer(pointer),
            None => Some(&body),
        };
        let Some(Value::Array(items)) = list else {
            return Err(StepError::Failed(format!(
                "{what}: the answer has no list at `{}`; set `lookup.items` to the JSON pointer of the list (e.g. `/results`)",
                lookup.items.as_deref().unwrap_or("")
            )));
        };
        let render_all = |fields: &std::collections::BTreeMap<String, String>| {
            fields
                .iter()
                .map(|(field, template)| {
                    Ok((
                        field.clone(),
                        ctx.templates.render(template, &Locals::default())?,
                    ))
                })
                .collect::<Result<Vec<_>, StepError>>()
        };
        let wanted = render_all(&lookup.matches)?;
        let keep = lookup.keep.as_ref().map(render_all).transpose()?;
        let mut result = LookupResult::default();
        for item in items.iter().filter(|item| fields_equal(item, &wanted)) {
            let kept = match &keep {
                None => true,
                Some(keep) => keep.iter().all(|(_, v)| !v.is_empty()) && fields_equal(item, keep),
            };
            if kept {
                result.kept.push(item.clone());
            } else {
                result.others.push(item.clone());
            }
        }
        Ok(result)
    }

    /// Nothing to create and nothing to delete.
    pub fn is_done(&self) -> bool {
        !self.kept.is_empty() && self.others.is_empty()
    }

    /// Counts only: items may hold anything.
    pub fn describe(&self) -> String {
        match (self.kept.len(), self.others.len()) {
            (0, 0) => "lookup found no match".into(),
            (0, others) => format!("lookup found {others} match(es), none to keep"),
            (kept, 0) => format!("lookup found {kept} match(es) to keep"),
            (kept, others) => {
                format!("lookup found {kept} match(es) to keep and {others} other(s)")
            }
        }
    }
}

/// Whether every field of the item (a key, or a JSON pointer starting with `/`) has the
/// value as text: strings as they are, numbers and booleans as JSON writes them.
fn fields_equal(item: &Value, fields: &[(String, String)]) -> bool {
    fields.iter().all(|(field, wanted)| {
        let found = if field.starts_with('/') {
            item.pointer(field)
        } else {
            item.get(field)
        };
        match found {
            Some(Value::String(text)) => text == wanted,
            Some(value @ (Value::Number(_) | Value::Bool(_))) => &value.to_string() == wanted,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_compare_as_text_by_key_or_pointer() {
        let item = json!({"id": 7, "name": "renovate", "meta": {"confidential": true}});
        let field = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(fields_equal(&item, &field("name", "renovate")));
        assert!(fields_equal(&item, &field("id", "7")));
        assert!(fields_equal(&item, &field("/meta/confidential", "true")));
        assert!(!fields_equal(&item, &field("name", "Renovate")));
        assert!(!fields_equal(&item, &field("missing", "")));
        assert!(fields_equal(&item, &[]));
    }
}
