//! The redactor: every secret value is registered the moment it exists, and every output path
//! (terminal, logs, errors, checkpoint, JSON events) passes its text through here.

use std::sync::{Arc, RwLock};

use base64::Engine as _;

/// What a redacted value is replaced with.
pub const MASK: &str = "[redacted]";

/// Values shorter than this are not masked: masking `a` or `true` would garble every line,
/// and such values are not secrets worth the name.
pub const MIN_SECRET_LEN: usize = 6;

/// A shared, append-only set of secret values.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.inner.read().map(|v| v.len()).unwrap_or(0);
        write!(f, "Redactor({count} values)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value, its base64 form and each of its lines.
    pub fn register(&self, value: &str) {
        let mut forms = vec![
            value.to_string(),
            base64::engine::general_purpose::STANDARD.encode(value),
        ];
        forms.extend(value.lines().map(|line| line.trim().to_string()));
        let mut values = self.inner.write().expect("redactor lock poisoned");
        for form in forms {
            if form.len() >= MIN_SECRET_LEN && !values.contains(&form) {
                values.push(form);
            }
        }
        // Longest first, so a value that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Registers raw bytes if they are text.
    pub fn register_bytes(&self, value: &[u8]) {
        if let Ok(text) = std::str::from_utf8(value) {
            self.register(text);
        }
    }

    /// The text with every registered value replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let values = self.inner.read().expect("redactor lock poisoned");
        let mut out = text.to_string();
        for value in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts every string (and object key) inside a JSON value, in place. Returns whether
    /// anything was masked.
    pub fn redact_json(&self, value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => {
                if self.leaks(text) {
                    *text = self.redact(text);
                    return true;
                }
                false
            }
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |any, item| self.redact_json(item) | any),
            serde_json::Value::Object(map) => {
                let mut any = false;
                if map.keys().any(|k| self.leaks(k)) {
                    let entries = std::mem::take(map);
                    for (key, item) in entries {
                        map.insert(self.redact(&key), item);
                    }
                    any = true;
                }
                map.values_mut()
                    .fold(any, |any, item| self.redact_json(item) | any)
            }
            _ => false,
        }
    }

    /// Whether the text holds any registered value.
    pub fn leaks(&self, text: &str) -> bool {
        let values = self.inner.read().expect("redactor lock poisoned");
        values.iter().any(|v| text.contains(v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_values_and_their_base64() {
        let r = Redactor::new();
        r.register("s3cr3t-canary");
        let b64 = base64::engine::general_purpose::STANDARD.encode("s3cr3t-canary");
        assert_eq!(r.redact("token=s3cr3t-canary;"), "token=[redacted];");
        assert_eq!(r.redact(&format!("data: {b64}")), "data: [redacted]");
        assert!(!r.leaks("nothing here"));
    }

    #[test]
    fn longer_values_are_masked_first() {
        let r = Redactor::new();
        r.register("abcdef");
        r.register("abcdefghij");
        assert_eq!(r.redact("x abcdefghij y"), "x [redacted] y");
    }

    #[test]
    fn json_strings_and_keys_are_masked_at_any_depth() {
        let r = Redactor::new();
        r.register("s3cr3t-canary");
        let mut value = serde_json::json!({"a": ["x s3cr3t-canary"], "s3cr3t-canary": {"b": "s3cr3t-canary"}, "n": 1});
        assert!(r.redact_json(&mut value));
        assert_eq!(
            value,
            serde_json::json!({"a": ["x [redacted]"], "[redacted]": {"b": "[redacted]"}, "n": 1})
        );
        assert!(!r.redact_json(&mut value));
    }

    #[test]
    fn short_values_are_not_masked() {
        let r = Redactor::new();
        r.register("true");
        assert_eq!(r.redact("true"), "true");
    }
}
