//! Step fingerprints: a hash of what a step does, so a done step whose definition changed
//! runs again.
//!
//! DESIGN.md says "after templating"; we hash *before* templating, on purpose. Rendering a
//! template may read the cluster (`secret()`, `ingress_host()`), and a no-op rerun must skip
//! a done once-step with zero requests. So the fingerprint covers what the phase files and
//! the values say — the step's definition and every `values.*` it references — and nothing
//! the cluster says. A change in cluster-derived inputs is what ensure-steps and `skip_if`
//! are for. The hash is of the whole input, so a referenced secret value never appears in
//! it in the clear.
//!
//! The step's `description`, `timeout` and `retries` are left out: rewording a description
//! or allowing more time does not change what the step does, and must not re-run a
//! once-step that, say, created an API token.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::phase::model::Step;

/// `sha256:<hex>` of the step's canonical definition and the values it references.
pub fn fingerprint(step: &Step, values: &Value) -> String {
    let mut definition = serde_json::to_value(step).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut definition {
        for cosmetic in ["description", "timeout", "retries"] {
            map.remove(cosmetic);
        }
    }
    let mut referenced: BTreeMap<String, Value> = BTreeMap::new();
    collect_references(&definition, &mut |path| {
        let key = serde_json::to_string(&path).unwrap_or_default();
        referenced
            .entry(key)
            .or_insert_with(|| lookup(values, &path).cloned().unwrap_or(Value::Null));
    });
    let input = serde_json::json!({"step": definition, "values": referenced});
    let mut canonical = String::new();
    write_canonical(&input, &mut canonical);
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// JSON with object keys sorted at every depth, whatever map order serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Calls `found` with every `values.a.b` / `values['a']` path in any string of the
/// definition; a bare `values` (the whole object, e.g. `values | tojson`) yields `[]`.
fn collect_references(value: &Value, found: &mut dyn FnMut(Vec<String>)) {
    match value {
        Value::String(text) => scan(text, found),
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            scan(k, found);
            collect_references(v, found);
        }),
        _ => {}
    }
}

fn scan(text: &str, found: &mut dyn FnMut(Vec<String>)) {
    const WORD: &str = "values";
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = 0;
    while let Some(offset) = text[start..].find(WORD) {
        let at = start + offset;
        start = at + WORD.len();
        if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b'.') {
            continue;
        }
        if bytes.get(start).copied().is_some_and(is_ident) {
            continue;
        }
        let mut path = Vec::new();
        let mut i = start;
        loop {
            match bytes.get(i) {
                Some(b'.') => {
                    let end = text[i + 1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(text.len(), |e| i + 1 + e);
                    if end == i + 1 {
                        break;
                    }
                    path.push(text[i + 1..end].to_string());
                    i = end;
                }
                Some(b'[') => {
                    let quote = match bytes.get(i + 1) {
                        Some(q @ (b'\'' | b'"')) => *q as char,
                        _ => break,
                    };
                    let Some(close) = text[i + 2..].find(quote) else {
                        break;
                    };
                    path.push(text[i + 2..i + 2 + close].to_string());
                    i = i + 2 + close + 1;
                    if bytes.get(i) == Some(&b']') {
                        i += 1;
                    } else {
                        break;
                    }
                }
                _ => break,
            }
        }
        found(path);
    }
}

fn lookup<'v>(values: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(values, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::once_step;

    #[test]
    fn same_definition_same_fingerprint_and_changes_show() {
        let values = json!({});
        let a = once_step("a");
        assert_eq!(
            fingerprint(&a, &values),
            fingerprint(&once_step("a"), &values)
        );
        assert!(fingerprint(&a, &values).starts_with("sha256:"));

        let mut changed = once_step("a");
        if let crate::phase::model::StepKind::Exec(exec) = &mut changed.kind {
            exec.command.push("--more".into());
        }
        assert_ne!(fingerprint(&a, &values), fingerprint(&changed, &values));
    }

    #[test]
    fn description_and_timeout_do_not_count() {
        let values = json!({});
        let mut reworded = once_step("a");
        reworded.description = Some("now with better words".into());
        reworded.timeout = Some(crate::phase::model::Duration(
            std::time::Duration::from_secs(9),
        ));
        assert_eq!(
            fingerprint(&once_step("a"), &values),
            fingerprint(&reworded, &values)
        );
    }

    #[test]
    fn referenced_values_count_and_others_do_not() {
        let mut step = once_step("a");
        if let crate::phase::model::StepKind::Exec(exec) = &mut step.kind {
            exec.command = vec![
                "echo".into(),
                "{{ values.gitea.admin }} {{ values['org'] }}".into(),
            ];
        }
        let base = fingerprint(
            &step,
            &json!({"gitea": {"admin": "root"}, "org": "acme", "other": 1}),
        );
        assert_eq!(
            base,
            fingerprint(
                &step,
                &json!({"gitea": {"admin": "root"}, "org": "acme", "other": 2})
            )
        );
        assert_ne!(
            base,
            fingerprint(&step, &json!({"gitea": {"admin": "admin"}, "org": "acme"}))
        );
        assert_ne!(
            base,
            fingerprint(&step, &json!({"gitea": {"admin": "root"}, "org": "other"}))
        );
    }

    #[test]
    fn references_are_parsed_precisely() {
        let mut paths = Vec::new();
        scan(
            "{{ values.a.b }} {{ myvalues.x }} {{ values['c d'] }} {{ values | tojson }} {{ x.values.y }}",
            &mut |p| paths.push(p),
        );
        assert_eq!(
            paths,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["c d".into()],
                vec![]
            ]
        );
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let mut a = String::new();
        let mut b = String::new();
        write_canonical(&json!({"x": 1, "y": [{"b": 2, "a": 1}]}), &mut a);
        let mut map = serde_json::Map::new();
        map.insert("y".into(), json!([{"a": 1, "b": 2}]));
        map.insert("x".into(), json!(1));
        write_canonical(&Value::Object(map), &mut b);
        assert_eq!(a, b);
    }
}
