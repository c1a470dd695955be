//! Finding the pod a step talks to: by name, by label selector (first Ready pod by name), or
//! behind a Service (its selector, and the pod port its `targetPort` names).

use serde_json::Value;

use crate::cluster::{Cluster, TypeRef};
use crate::phase::model::{ObjectName, PodSelector};

use super::StepError;

/// A pod, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PodTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl PodTarget {
    /// The named pod (it must be Running: a sealed Vault is not Ready yet must be reachable),
    /// or the first Ready pod by name that matches the selector.
    pub async fn resolve(cluster: &dyn Cluster, selector: &PodSelector) -> Result<Self, StepError> {
        let namespace = &selector.namespace;
        if let Some(name) = &selector.name {
            let pod = cluster
                .get(&TypeRef::pod(), Some(namespace), name)
                .await?
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "pod {namespace}/{name} not found; check the step's `pod.name`"
                    ))
                })?;
            let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
            if phase != "Running" {
                return Err(StepError::Transient(format!(
                    "pod {namespace}/{name} is {phase}, not Running"
                )));
            }
            return Ok(PodTarget {
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
        let Some(labels) = &selector.selector else {
            return Err(StepError::Failed(format!(
                "no pod named in namespace {namespace}: give `pod.name` or `pod.selector`"
            )));
        };
        Self::first_ready(cluster, namespace, labels).await
    }

    /// The first Ready pod, by name, matching a label selector.
    pub async fn first_ready(
        cluster: &dyn Cluster,
        namespace: &str,
        labels: &str,
    ) -> Result<Self, StepError> {
        let mut pods = cluster
            .list(&TypeRef::pod(), Some(namespace), Some(labels))
            .await?;
        pods.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        let total = pods.len();
        match pods.iter().find(|p| is_ready(p)) {
            Some(pod) => Ok(PodTarget {
                namespace: namespace.to_string(),
                name: pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }),
            // Pods that exist but are not Ready yet are worth waiting for; none at all may be too
            // (a rollout in progress), so both are transient.
            None if total == 0 => Err(StepError::Transient(format!(
                "no pod matches {labels} in namespace {namespace}"
            ))),
            None => Err(StepError::Transient(format!(
                "no Ready pod matches {labels} in namespace {namespace} ({total} pod{}, none Ready)",
                if total == 1 { "" } else { "s" }
            ))),
        }
    }

    /// The Ready pod behind a Service, and the pod port that the Service's `port` targets.
    pub async fn behind_service(
        cluster: &dyn Cluster,
        service: &ObjectName,
        port: u16,
    ) -> Result<(Self, u16), StepError> {
        let object = cluster
            .get(&TypeRef::service(), Some(&service.namespace), &service.name)
            .await?
            .ok_or_else(|| StepError::Failed(format!("Service {service} not found")))?;
        let selector = object["spec"]["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "Service {service} has no pod selector: name a pod target instead"
                ))
            })?;
        let ports = object["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(service_port) = ports
            .iter()
            .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        else {
            let known: Vec<String> = ports
                .iter()
                .filter_map(|p| p["port"].as_u64())
                .map(|p| p.to_string())
                .collect();
            return Err(StepError::Failed(format!(
                "Service {service} has no port {port} (it has {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        let pod = Self::first_ready(cluster, &service.namespace, &selector).await?;
        let target_port = match &service_port["targetPort"] {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or(port),
            Value::String(named) => {
                let object = cluster
                    .get(&TypeRef::pod(), Some(&pod.namespace), &pod.name)
                    .await?
                    .ok_or_else(|| StepError::Transient(format!("pod {pod} went away")))?;
                named_port(&object, named).ok_or_else(|| {
                    StepError::Failed(format!(
                        "Service {service} port {port} targets the port named `{named}`, which no container of pod {pod} declares"
                    ))
                })?
            }
            _ => port,
        };
        Ok((pod, target_port))
    }
}

/// Ready, and not on its way out.
pub fn is_ready(pod: &Value) -> bool {
    pod["metadata"]
        .get("deletionTimestamp")
        .is_none_or(Value::is_null)
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn named_port(pod: &Value, name: &str) -> Option<u16> {
    pod["spec"]["containers"]
        .as_array()?
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use serde_json::json;

    /// A pod in the fake with labels, readiness and container ports.
    pub(crate) fn pod(ns: &str, name: &str, labels: Value, ready: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"containers": [{"name": "main", "ports": [{"name": "http", "containerPort": 3000}]}]},
               "status": {"phase": "Running",
                          "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn picks_the_first_ready_pod_by_name() {
        let fake = FakeCluster::new();
        fake.insert(pod("gitea", "gitea-2", json!({"app": "gitea"}), true));
        fake.insert(pod("gitea", "gitea-0", json!({"app": "gitea"}), false));
        fake.insert(pod("gitea", "gitea-1", json!({"app": "gitea"}), true));
        let found = PodTarget::first_ready(&fake, "gitea", "app=gitea")
            .await
            .unwrap();
        assert_eq!(found.name, "gitea-1");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn says_what_it_found_when_no_pod_is_ready() {
        let fake = FakeCluster::new();
        fake.insert(pod("gitea", "gitea-0", json!({"app": "gitea"}), false));
        fake.insert(pod("gitea", "gitea-1", json!({"app": "gitea"}), false));
        let error = PodTarget::first_ready(&fake, "gitea", "app=gitea")
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no Ready pod matches app=gitea in namespace gitea (2 pods, none Ready)"
        );
        assert!(error.is_transient());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn service_resolves_to_a_ready_pod_and_its_named_target_port() {
        let fake = FakeCluster::new();
        fake.insert(pod("gitea", "gitea-0", json!({"app": "gitea"}), true));
        fake.insert(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "gitea-http", "namespace": "gitea"},
            "spec": {"selector": {"app": "gitea"}, "ports": [{"port": 80, "targetPort": "http"}]}}));
        let service: ObjectName = "gitea/gitea-http".parse().unwrap();
        let (pod, port) = PodTarget::behind_service(&fake, &service, 80)
            .await
            .unwrap();
        assert_eq!((pod.name.as_str(), port), ("gitea-0", 3000));
        let error = PodTarget::behind_service(&fake, &service, 3000)
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Service gitea/gitea-http has no port 3000 (it has 80)"
        );
    }
}
