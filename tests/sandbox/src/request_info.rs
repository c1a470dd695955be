//! Parses a request path and query the way kube-apiserver's RequestInfo does: group,
//! version, namespace, resource, name, subresource and the kube verb.

/// What a request addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path addresses a resource (as opposed to discovery or OpenAPI).
    pub is_resource: bool,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Query pairs in order; `?&a=b` and repeated keys are kept as sent.
    pub query: Vec<(String, String)>,
}

impl RequestInfo {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    /// `resource` or `resource/subresource`, as audit and fault rules name it.
    pub fn resource_path(&self) -> String {
        match (&self.resource, &self.subresource) {
            (Some(r), Some(s)) => format!("{r}/{s}"),
            (Some(r), None) => r.clone(),
            _ => String::new(),
        }
    }

    pub fn parse(method: &str, path: &str, query: &str) -> Self {
        let query: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let mut info = Self {
            query,
            ..Self::default()
        };
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let rest: &[&str] = match parts.as_slice() {
            ["api", version, rest @ ..] => {
                info.version = (*version).to_owned();
                rest
            }
            ["apis", group, version, rest @ ..] => {
                info.group = (*group).to_owned();
                info.version = (*version).to_owned();
                rest
            }
            _ => return info,
        };
        if rest.is_empty() {
            return info;
        }
        info.is_resource = true;
        let mut rest = rest;
        let mut legacy_watch = false;
        if rest.first() == Some(&"watch") {
            legacy_watch = true;
            rest = &rest[1..];
        }
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = Some(rest[1].to_owned());
            // namespaces/{name}/status and /finalize are subresources of the namespace itself.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        info.resource = rest.first().map(|s| (*s).to_owned());
        if info.resource.as_deref() == Some("namespaces")
            && info.namespace.is_some()
            && rest.len() >= 2
        {
            // The namespace object itself: it is cluster-scoped.
            info.name = info.namespace.take();
            info.subresource = rest.get(2).map(|s| (*s).to_owned());
        } else {
            info.name = rest.get(1).map(|s| (*s).to_owned());
            info.subresource = rest.get(2).map(|s| (*s).to_owned());
        }
        let watch = legacy_watch || info.flag("watch");
        info.verb = match (method, info.name.is_some()) {
            ("GET" | "HEAD", true) if watch => "watch",
            ("GET" | "HEAD", true) => "get",
            ("GET" | "HEAD", false) if watch => "watch",
            ("GET" | "HEAD", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "",
        }
        .to_owned();
        // Exec and port-forward over a WebSocket arrive as GET; the real server authorizes
        // and audits them as create.
        if matches!(
            info.subresource.as_deref(),
            Some("exec" | "portforward" | "attach")
        ) && info.verb == "get"
        {
            info.verb = "create".to_owned();
        }
        info
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let i = RequestInfo::parse("GET", "/api/v1/namespaces/a/configmaps/x", "");
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_deref(),
                i.resource.as_deref(),
                i.name.as_deref()
            ),
            ("get", Some("a"), Some("configmaps"), Some("x"))
        );
        let i = RequestInfo::parse("GET", "/api/v1/namespaces/a", "");
        assert_eq!(
            (
                i.resource.as_deref(),
                i.name.as_deref(),
                i.namespace.as_deref()
            ),
            (Some("namespaces"), Some("a"), None)
        );
        let i = RequestInfo::parse("PUT", "/api/v1/namespaces/a/status", "");
        assert_eq!(
            (
                i.resource.as_deref(),
                i.name.as_deref(),
                i.subresource.as_deref()
            ),
            (Some("namespaces"), Some("a"), Some("status"))
        );
        let i = RequestInfo::parse(
            "GET",
            "/apis/apps/v1/deployments",
            "?&watch=true&labelSelector=a%3Db",
        );
        assert_eq!(i.verb, "watch");
        assert_eq!(i.param("labelSelector"), Some("a=b"));
        let i = RequestInfo::parse(
            "GET",
            "/api/v1/namespaces/v/pods/p/exec",
            "command=sh&command=-c&command=echo+hi",
        );
        assert_eq!(i.verb, "create");
        assert_eq!(i.params("command"), vec!["sh", "-c", "echo hi"]);
        let i = RequestInfo::parse("DELETE", "/api/v1/namespaces/a/secrets", "");
        assert_eq!(i.verb, "deletecollection");
        assert!(!RequestInfo::parse("GET", "/api/v1", "").is_resource);
    }
}
