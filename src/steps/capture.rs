//! Turning a command's stdout into `output`: text, JSON, the last JSON line, or a regex's
//! groups; and registering captured secrets with the redactor.

use regex::Regex;
use serde_json::{Map, Value};

use crate::engine::redact::Redactor;
use crate::phase::model::Capture;

/// Parses stdout as the capture says. The error never quotes stdout: it may hold a secret.
pub fn parse(capture: &Capture, stdout: &str) -> Result<Value, String> {
    match capture {
        Capture::Text => Ok(Value::String(
            stdout.trim_end_matches(['\n', '\r']).to_string(),
        )),
        Capture::Json => serde_json::from_str(stdout.trim()).map_err(|e| {
            format!(
                "stdout is not JSON ({} bytes, error at line {} column {})",
                stdout.len(),
                e.line(),
                e.column()
            )
        }),
        Capture::JsonLine => stdout
            .lines()
            .rev()
            .find_map(|line| {
                serde_json::from_str::<Value>(line.trim())
                    .ok()
                    .filter(|_| !line.trim().is_empty())
            })
            .ok_or_else(|| {
                format!(
                    "no line of stdout is JSON ({} lines)",
                    stdout.lines().count()
                )
            }),
        Capture::Regex(pattern) => {
            let regex = Regex::new(pattern)
                .map_err(|e| format!("capture regex `{pattern}` is invalid: {e}"))?;
            let found = regex.captures(stdout).ok_or_else(|| {
                format!(
                    "capture regex `{pattern}` does not match stdout ({} bytes)",
                    stdout.len()
                )
            })?;
            let mut output = Map::new();
            for name in regex.capture_names().flatten() {
                if let Some(m) = found.name(name) {
                    output.insert(name.to_string(), Value::String(m.as_str().to_string()));
                }
            }
            if output.is_empty() {
                let value = found
                    .get(1)
                    .or_else(|| found.get(0))
                    .map(|m| m.as_str())
                    .unwrap_or_default();
                output.insert("value".into(), Value::String(value.to_string()));
            }
            Ok(Value::Object(output))
        }
    }
}

/// Key names whose values are secrets wherever they appear in a captured value.
const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "sha1",
    "jwt",
    "credential",
    "private",
    "otp",
];

/// Whether a JSON key names a secret (`client_secret`, `sha1`, `root_token`, `keys_base64`).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// Registers the secrets of a captured value: a bare string or number is a secret as a whole;
/// inside objects, the leaves under secret-looking keys are. Names, ids and scopes stay
/// readable, so `renovate` in a token response does not mask every step id that contains it;
/// whatever a step stores in a Secret is registered by `store` regardless of its key.
pub fn register_leaves(redactor: &Redactor, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if is_secret_key(key) {
                    register_all(redactor, inner);
                } else if inner.is_object() || inner.is_array() {
                    register_leaves(redactor, inner);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .filter(|v| v.is_object())
            .for_each(|v| register_leaves(redactor, v)),
        leaf => register_all(redactor, leaf),
    }
}

/// Registers every string and number leaf.
fn register_all(redactor: &Redactor, value: &Value) {
    match value {
        Value::String(s) => redactor.register(s),
        Value::Number(n) => redactor.register(&n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| register_all(redactor, v)),
        Value::Object(map) => map.values().for_each(|v| register_all(redactor, v)),
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_trims_the_trailing_newline_only() {
        assert_eq!(parse(&Capture::Text, "  abc \n").unwrap(), json!("  abc "));
    }

    #[test]
    fn json_line_takes_the_last_json_line() {
        let stdout = "Logging in...\n{\"a\": 1}\nnoise\n{\"password\": \"p\"}\ndone\n";
        assert_eq!(
            parse(&Capture::JsonLine, stdout).unwrap(),
            json!({"password": "p"})
        );
        assert!(parse(&Capture::JsonLine, "no json here\n").is_err());
    }

    #[test]
    fn json_parse_error_does_not_quote_stdout() {
        let error = parse(&Capture::Json, "secret-value-xyz").unwrap_err();
        assert!(!error.contains("secret-value-xyz"), "{error}");
    }

    #[test]
    fn regex_named_groups_or_group_one() {
        let named = Capture::Regex(r"id=(?P<id>\d+) name=(?P<name>\w+)".into());
        assert_eq!(
            parse(&named, "x id=42 name=dex y").unwrap(),
            json!({"id": "42", "name": "dex"})
        );
        let first = Capture::Regex(r"created: ([0-9a-f]{40})".into());
        let token = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse(&first, &format!("Access token was created: {token}\n")).unwrap(),
            json!({"value": token})
        );
        assert!(parse(&first, "nothing").is_err());
    }

    #[test]
    fn registers_leaves_under_secret_keys_and_bare_values() {
        let redactor = Redactor::new();
        register_leaves(
            &redactor,
            &json!({"name": "renovate", "sha1": "0123456789abcdef", "nested": {"client_secret": ["first-secret"]},
                    "scopes": ["write:repository"], "keys_base64": ["a2V5LXNoYXJl"]}),
        );
        assert_eq!(
            redactor.redact("renovate 0123456789abcdef first-secret write:repository a2V5LXNoYXJl"),
            "renovate [redacted] [redacted] write:repository [redacted]"
        );
        register_leaves(&redactor, &json!("a-bare-captured-text"));
        assert_eq!(redactor.redact("a-bare-captured-text"), "[redacted]");
    }
}
