//! The ConfigMap `kube-root-ca.crt` that Kubernetes publishes in every namespace (the
//! controller-manager's root-ca-cert-publisher): clients outside a pod, such as OpenBao's
//! Kubernetes auth configured by bringup, read the cluster CA from it.

use serde_json::json;

use crate::ApiError;
use crate::server_state::ServerState;

/// The ConfigMap's name, as in Kubernetes.
pub const NAME: &str = "kube-root-ca.crt";

/// Creates `kube-root-ca.crt` (key `ca.crt`: the sandbox CA) in `namespace`.
pub fn publish(state: &ServerState, namespace: &str) -> Result<(), ApiError> {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": NAME, "namespace": namespace },
        "data": { "ca.crt": state.cluster_ca_pem() },
    });
    if let Some(rt) = state.registry.by_kind("v1", "ConfigMap") {
        crate::api::allocate(state, rt, &mut object);
    }
    state.put_object(object).map(|_| ())
}
