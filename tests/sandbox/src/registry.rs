//! The resource registry: which kinds the sandbox serves, under which group, version and plural.

use serde::Serialize;

/// One served resource type, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub verbs: Vec<String>,
    /// Subresources served under `plural/{name}/{sub}`, with the kind each one takes.
    pub subresources: Vec<Subresource>,
    /// Whether the object carries `metadata.generation` (bumped on spec changes).
    pub has_generation: bool,
    /// Whether DELETE answers with the deleted object (otherwise a Status Success), as the
    /// real registry of that kind does.
    pub returns_deleted_object: bool,
    /// Whether the kind is a custom resource (served from a CRD on a real cluster).
    pub custom: bool,
}

/// A subresource such as `pods/exec`, with the kind and verbs the real server lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subresource {
    pub name: String,
    pub kind: String,
    pub group: String,
    pub version: String,
    pub verbs: Vec<String>,
}

const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: Vec::new(),
            verbs: CRUD.iter().map(|v| (*v).to_owned()).collect(),
            subresources: Vec::new(),
            has_generation: false,
            returns_deleted_object: false,
            custom: false,
        }
    }

    /// A custom resource type (CRD-served): generation tracked, DELETE returns the object.
    pub fn custom(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        let mut rt = Self::builtin(group, version, kind, plural, namespaced);
        rt.has_generation = true;
        rt.returns_deleted_object = true;
        rt.custom = true;
        rt
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    fn generation(mut self) -> Self {
        self.has_generation = true;
        self
    }

    fn returns_object(mut self) -> Self {
        self.returns_deleted_object = true;
        self
    }

    fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    fn sub(mut self, name: &str, kind_group: (&str, &str, &str), verbs: &[&str]) -> Self {
        let (group, version, kind) = kind_group;
        self.subresources.push(Subresource {
            name: name.to_owned(),
            kind: kind.to_owned(),
            group: group.to_owned(),
            version: version.to_owned(),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        });
        self
    }

    fn status(self) -> Self {
        let kind = self.kind.clone();
        let group = self.group.clone();
        let version = self.version.clone();
        self.sub(
            "status",
            (&group, &version, &kind),
            &["get", "patch", "update"],
        )
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name the real server uses in messages and Status details: `configmaps` for the core
    /// group, `deployments.apps` otherwise.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Every resource type the sandbox serves.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in kinds bringup and its products use.
    pub fn builtin() -> Self {
        let core = |kind: &str, plural: &str, namespaced: bool| {
            ResourceType::builtin("", "v1", kind, plural, namespaced)
        };
        let types = vec![
            core("Namespace", "namespaces", false)
                .short(&["ns"])
                .returns_object()
                .verbs(&[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ])
                .status(),
            core("ConfigMap", "configmaps", true).short(&["cm"]),
            core("Secret", "secrets", true),
            core("Pod", "pods", true)
                .short(&["po"])
                .generation()
                .returns_object()
                .sub("exec", ("", "v1", "PodExecOptions"), &["create", "get"])
                .sub(
                    "portforward",
                    ("", "v1", "PodPortForwardOptions"),
                    &["create", "get"],
                )
                .status(),
            core("Service", "services", true)
                .short(&["svc"])
                .verbs(&[
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ])
                .status(),
            core("Endpoints", "endpoints", true).short(&["ep"]),
            core("ServiceAccount", "serviceaccounts", true)
                .short(&["sa"])
                .sub(
                    "token",
                    ("authentication.k8s.io", "v1", "TokenRequest"),
                    &["create"],
                ),
            ResourceType::builtin("apps", "v1", "Deployment", "deployments", true)
                .short(&["deploy"])
                .generation()
                .status(),
            ResourceType::builtin("apps", "v1", "StatefulSet", "statefulsets", true)
                .short(&["sts"])
                .generation()
                .status(),
            ResourceType::builtin("networking.k8s.io", "v1", "Ingress", "ingresses", true)
                .short(&["ing"])
                .generation()
                .status(),
            ResourceType::builtin("coordination.k8s.io", "v1", "Lease", "leases", true),
            ResourceType::builtin("batch", "v1", "Job", "jobs", true)
                .generation()
                .status(),
            ResourceType::builtin(
                "authentication.k8s.io",
                "v1",
                "TokenReview",
                "tokenreviews",
                false,
            )
            .verbs(&["create"]),
            ResourceType::custom(
                "external-secrets.io",
                "v1",
                "ClusterSecretStore",
                "clustersecretstores",
                false,
            )
            .short(&["css"])
            .status(),
            ResourceType::custom(
                "external-secrets.io",
                "v1",
                "SecretStore",
                "secretstores",
                true,
            )
            .short(&["ss"])
            .status(),
            ResourceType::custom(
                "external-secrets.io",
                "v1",
                "ExternalSecret",
                "externalsecrets",
                true,
            )
            .short(&["es"])
            .status(),
        ];
        let mut types = types;
        for t in &mut types {
            if t.kind == "Endpoints" {
                t.singular = "endpoints".to_owned();
            }
        }
        Self { types }
    }

    /// Adds a type; a type with the same group and plural is replaced.
    pub fn add(&mut self, rt: ResourceType) {
        self.types
            .retain(|t| !(t.group == rt.group && t.plural == rt.plural));
        self.types.push(rt);
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type served at `group/version` under `plural`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The type of an object by its `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Groups in first-seen order (the core group excluded), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => {
                    versions.push(t.version.clone())
                }
                Some(_) => {}
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Types served at one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect()
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_types_by_plural_and_kind() {
        let r = Registry::builtin();
        let cm = r.by_plural("", "v1", "configmaps").expect("configmaps");
        assert_eq!(cm.kind, "ConfigMap");
        assert_eq!(cm.short_names, vec!["cm"]);
        let d = r.by_kind("apps/v1", "Deployment").expect("deployments");
        assert_eq!(d.qualified_plural(), "deployments.apps");
        assert!(r.by_plural("", "v1", "widgets").is_none());
        assert!(
            r.by_plural("", "v1", "pods")
                .expect("pods")
                .subresource("exec")
                .is_some()
        );
    }

    #[test]
    fn lists_groups_once_with_their_versions() {
        let r = Registry::builtin();
        let groups = r.groups();
        let names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "apps",
                "networking.k8s.io",
                "coordination.k8s.io",
                "batch",
                "authentication.k8s.io",
                "external-secrets.io"
            ]
        );
    }
}
