//! Changing a pod's readiness and phase at run time, as a kubelet would report them: through
//! the store, so watches see the change and the pod's status stays the one truth.

use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::cluster_file::PodPhase;
use crate::server_state::ServerState;

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Sets the pod's `Ready` and `ContainersReady` conditions and its containers' `ready`. A pod
/// that is not Running never reports Ready, as the kubelet would not.
pub fn set_pod_ready(
    state: &ServerState,
    namespace: &str,
    name: &str,
    ready: bool,
) -> Result<Value, ApiError> {
    let mut pod = state.get_object("v1", "Pod", Some(namespace), name)?;
    let ready = ready && pod["status"]["phase"] == "Running";
    apply_ready(&mut pod, ready);
    state.put_object(pod)
}

/// Sets the pod's phase; leaving Running also drops readiness and marks containers not started.
pub fn set_pod_phase(
    state: &ServerState,
    namespace: &str,
    name: &str,
    phase: PodPhase,
) -> Result<Value, ApiError> {
    let mut pod = state.get_object("v1", "Pod", Some(namespace), name)?;
    pod["status"]["phase"] = json!(phase.as_str());
    let running = phase == PodPhase::Running;
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for status in statuses {
            status["started"] = json!(running);
            status["state"] = if running {
                json!({ "running": { "startedAt": now() } })
            } else {
                json!({ "waiting": { "reason": "ContainerCreating" } })
            };
        }
    }
    if !running {
        apply_ready(&mut pod, false);
    }
    state.put_object(pod)
}

fn apply_ready(pod: &mut Value, ready: bool) {
    let status = if ready { "True" } else { "False" };
    if let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
        for condition in conditions {
            if condition["type"] == "Ready" || condition["type"] == "ContainersReady" {
                if condition["status"] != status {
                    condition["lastTransitionTime"] = json!(now());
                }
                condition["status"] = json!(status);
            }
        }
    }
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for container in statuses {
            container["ready"] = json!(ready);
        }
    }
}
