//! Discovery documents: /version, /api, /api/v1, /apis and /apis/{group}/{version}.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The Kubernetes version the sandbox reports (kubectl warns beyond one minor of skew).
pub const MAJOR: &str = "1";
pub const MINOR: &str = "37";

pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "emulationMajor": MAJOR,
        "emulationMinor": MINOR,
        "minCompatibilityMajor": MAJOR,
        "minCompatibilityMinor": "36",
        "gitVersion": format!("v{MAJOR}.{MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{name}/{v}"), "version": v }))
        .collect();
    json!({ "name": name, "versions": vs, "preferredVersion": vs[0] })
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/{group}`, or None for an unknown group.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    registry
        .groups()
        .iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut v = group_json(g, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

fn categories(rt: &ResourceType) -> Option<Vec<&'static str>> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods" | "services")
        | ("apps", "deployments" | "statefulsets")
        | ("batch", "jobs") => Some(vec!["all"]),
        ("external-secrets.io", _) => Some(vec!["external-secrets"]),
        _ => None,
    }
}

/// The APIResourceList of one group version, or None when nothing is served there.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for rt in types {
        let mut r = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs,
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if let Some(c) = categories(rt) {
            r["categories"] = json!(c);
        }
        resources.push(r);
        for sub in &rt.subresources {
            let mut s = json!({
                "name": format!("{}/{}", rt.plural, sub.name),
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if sub.group != rt.group || sub.version != rt.version {
                s["group"] = json!(sub.group);
                s["version"] = json!(sub.version);
            }
            resources.push(s);
        }
    }
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_subresources_with_their_group() {
        let list = resource_list(&Registry::builtin(), "", "v1").expect("v1");
        let resources = list["resources"].as_array().expect("resources");
        let token = resources
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .expect("token");
        assert_eq!(token["group"], "authentication.k8s.io");
        assert_eq!(token["kind"], "TokenRequest");
        let exec = resources
            .iter()
            .find(|r| r["name"] == "pods/exec")
            .expect("exec");
        assert_eq!(exec["verbs"], json!(["create", "get"]));
        let cm = resources
            .iter()
            .find(|r| r["name"] == "configmaps")
            .expect("cm");
        assert_eq!(cm["shortNames"], json!(["cm"]));
        assert!(resource_list(&Registry::builtin(), "nope", "v1").is_none());
    }
}
