//! Values for templates (`values.*`): defaults from `<phases dir>/values.yaml`, deep-merged
//! with each `--values FILE` in order, then each `--set a.b.c=v` (later wins).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The file in the phases directory that holds default values.
pub const DEFAULTS_FILE: &str = "values.yaml";

/// A problem with a values file or a `--set` flag.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("{}: cannot read values file: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("--set {flag}: {message}")]
    Set { flag: String, message: String },
}

/// The merged values: always a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Values(Value);

impl Default for Values {
    fn default() -> Self {
        Values(Value::Object(Map::new()))
    }
}

impl Values {
    /// Defaults from `dir/values.yaml` (when present), then `files` in order, then `sets` in
    /// order (`a.b.c=v`).
    pub fn load(dir: &Path, files: &[PathBuf], sets: &[String]) -> Result<Values, ValuesError> {
        let mut values = Values::default();
        let defaults = dir.join(DEFAULTS_FILE);
        if defaults.is_file() {
            values.merge(read_file(&defaults)?);
        }
        for file in files {
            values.merge(read_file(file)?);
        }
        for flag in sets {
            values.set(flag)?;
        }
        Ok(values)
    }

    /// Values from a JSON object (tests, embedding).
    pub fn from_json(value: Value) -> Values {
        match value {
            Value::Object(_) => Values(value),
            _ => Values::default(),
        }
    }

    pub fn as_json(&self) -> &Value {
        &self.0
    }

    pub fn into_json(self) -> Value {
        self.0
    }

    /// The value at a dotted path below `values` (`["gitea", "admin"]`).
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        path.iter()
            .try_fold(&self.0, |value, key| value.as_object()?.get(key.as_ref()))
    }

    /// Deep merge: objects merge key by key, anything else is replaced.
    pub fn merge(&mut self, other: Value) {
        merge(&mut self.0, other);
    }

    /// Applies one `--set a.b.c=v`.
    pub fn set(&mut self, flag: &str) -> Result<(), ValuesError> {
        let error = |message: String| ValuesError::Set {
            flag: flag.to_string(),
            message,
        };
        let Some((key, text)) = flag.split_once('=') else {
            return Err(error(format!(
                "missing `=VALUE`: write it as --set {flag}=VALUE"
            )));
        };
        let path = parse_key(key).map_err(error)?;
        let mut node = &mut self.0;
        for segment in &path {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            node = node
                .as_object_mut()
                .expect("made an object above")
                .entry(segment.clone())
                .or_insert(Value::Null);
        }
        *node = scalar(text);
        Ok(())
    }
}

/// Parses a dotted values key (`gitea.admin-user`) into its segments.
pub fn parse_key(key: &str) -> Result<Vec<String>, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("the key before `=` is empty: write it as --set KEY=VALUE, e.g. --set gitea.host=git.example.com".into());
    }
    let mut path = Vec::new();
    for segment in key.split('.') {
        if segment.is_empty() {
            return Err(format!(
                "key `{key}` has an empty segment: separate names with single dots, e.g. gitea.admin.user"
            ));
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "key `{key}` has an invalid segment `{segment}`: use letters, digits, `_` and `-` separated by dots"
            ));
        }
        path.push(segment.to_string());
    }
    Ok(path)
}

/// `true`/`false` become booleans, integers become numbers, anything else stays a string
/// (`007` stays a string: a leading zero usually means an identifier, not a number).
fn scalar(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let integer = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if integer && let Ok(number) = text.parse::<i64>() {
        return Value::from(number);
    }
    Value::String(text.to_string())
}

fn merge(base: &mut Value, other: Value) {
    match (base, other) {
        (Value::Object(base), Value::Object(other)) => {
            for (key, value) in other {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, other) => *base = other,
    }
}

fn read_file(file: &Path) -> Result<Value, ValuesError> {
    let text = std::fs::read_to_string(file).map_err(|source| ValuesError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let value: Value = serde_yaml::from_str(&text).map_err(|error| {
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ValuesError::Parse {
            file: file.to_path_buf(),
            line,
            column,
            message: strip_location(&error.to_string()),
        }
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ValuesError::Parse {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: "a values file must be a mapping of names to values (e.g. `gitea: {host: git.example.com}`)".into(),
        }),
    }
}

/// serde_yaml appends ` at line L column C`; the position is already in front.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_then_files_then_sets_later_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "values.yaml",
            "gitea:\n  host: git.local\n  admin: gitea_admin\nreplicas: 1\n",
        );
        let extra = write(dir.path(), "prod.yaml", "gitea:\n  host: git.example.com\n");
        let values = Values::load(
            dir.path(),
            &[extra],
            &[
                "replicas=3".into(),
                "gitea.tls=true".into(),
                "gitea.zip=007".into(),
                "name=".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            values.as_json(),
            &json!({"gitea": {"host": "git.example.com", "admin": "gitea_admin", "tls": true, "zip": "007"},
                    "replicas": 3, "name": ""})
        );
        assert_eq!(
            values.get(&["gitea", "host"]),
            Some(&json!("git.example.com"))
        );
        assert_eq!(values.get(&["gitea", "nope"]), None);
    }

    #[test]
    fn set_replaces_a_scalar_with_an_object() {
        let mut values = Values::from_json(json!({"a": 1}));
        values.set("a.b=x").unwrap();
        values.set("n=-12").unwrap();
        assert_eq!(values.as_json(), &json!({"a": {"b": "x"}, "n": -12}));
    }

    #[test]
    fn malformed_set_names_the_flag_and_the_fix() {
        let mut values = Values::default();
        let no_equals = values.set("gitea.host").unwrap_err().to_string();
        assert_eq!(
            no_equals,
            "--set gitea.host: missing `=VALUE`: write it as --set gitea.host=VALUE"
        );
        let empty_segment = values.set("gitea..host=x").unwrap_err().to_string();
        assert!(
            empty_segment
                .starts_with("--set gitea..host=x: key `gitea..host` has an empty segment"),
            "{empty_segment}"
        );
        let empty_key = values.set("=x").unwrap_err().to_string();
        assert!(
            empty_key.contains("the key before `=` is empty"),
            "{empty_key}"
        );
    }

    #[test]
    fn a_broken_values_file_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.yaml", "gitea:\n  host: [unclosed\n");
        let error = Values::load(dir.path(), std::slice::from_ref(&bad), &[])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(&format!("{}:", bad.display())), "{error}");
        assert!(!error.contains(" at line "), "{error}");
        let list = write(dir.path(), "list.yaml", "- a\n");
        let error = Values::load(dir.path(), &[list], &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":1:1: a values file must be a mapping"),
            "{error}"
        );
    }
}
