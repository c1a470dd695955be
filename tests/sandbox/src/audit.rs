//! The audit log: one JSON line per request in DIR/audit.jsonl, and a reader for tests.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One request as the sandbox saw and answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// RFC 3339 with microseconds.
    pub time: String,
    /// The kube verb (get, list, watch, create, update, patch, delete, deletecollection),
    /// empty for non-resource paths such as discovery.
    pub verb: String,
    /// The HTTP method.
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The HTTP status answered; 0 for a dropped connection.
    pub code: u16,
    pub user_agent: String,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
    /// The command of an exec request, from its `command` query parameters.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The fault injected into this request, if any (`500`, `429`, `409`, `403`, `drop`).
    #[serde(default)]
    pub fault: Option<String>,
}

/// Subresources whose `create` opens a stream or asks a question rather than changing an
/// object.
const CONNECT_SUBRESOURCES: &[&str] = &["exec", "portforward", "attach", "token", "log", "proxy"];

impl AuditEntry {
    /// Whether the request asked to change stored objects: create, update, patch, delete or
    /// deletecollection of a resource, not counting exec, port-forward, token requests and
    /// token reviews, which store nothing.
    pub fn is_mutating(&self) -> bool {
        let write = matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        let connect = self
            .subresource
            .as_deref()
            .is_some_and(|s| CONNECT_SUBRESOURCES.contains(&s));
        let review = matches!(
            self.resource.as_deref(),
            Some("tokenreviews" | "subjectaccessreviews" | "selfsubjectaccessreviews")
        );
        write && !connect && !review
    }

    pub fn is_exec(&self) -> bool {
        self.subresource.as_deref() == Some("exec")
    }
}

/// The writer side, shared by every request.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    pub fn record(&self, entry: &AuditEntry) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(&line) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }
}

/// Reads every entry of an audit log; unreadable lines are skipped.
pub fn read(path: impl AsRef<Path>) -> Vec<AuditEntry> {
    let Ok(file) = File::open(path.as_ref()) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(verb: &str, resource: &str, sub: Option<&str>) -> AuditEntry {
        AuditEntry {
            time: String::new(),
            verb: verb.into(),
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            code: 200,
            user_agent: String::new(),
            resource: Some(resource.into()),
            namespace: None,
            name: None,
            subresource: sub.map(Into::into),
            command: None,
            fault: None,
        }
    }

    #[test]
    fn classifies_mutating_requests() {
        assert!(entry("create", "configmaps", None).is_mutating());
        assert!(entry("patch", "pods", Some("status")).is_mutating());
        assert!(entry("deletecollection", "secrets", None).is_mutating());
        assert!(!entry("get", "configmaps", None).is_mutating());
        assert!(!entry("watch", "configmaps", None).is_mutating());
        assert!(!entry("create", "pods", Some("exec")).is_mutating());
        assert!(!entry("create", "tokenreviews", None).is_mutating());
    }

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::create(&path).expect("create");
        log.record(&entry("create", "configmaps", None));
        log.record(&entry("get", "configmaps", None));
        let entries = read(&path);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries.iter().filter(|e| e.is_mutating()).count(), 1);
    }
}
