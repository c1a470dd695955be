//! The `apply` kind: server-side apply of a templated manifest of any kind; the probe reports
//! drift (fields of the manifest that the live object does not hold) without writing; an
//! optional wait for a condition.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::cluster::TypeRef;
use crate::phase::model::{ApplyStep, ConditionWait, ObjectRef};
use crate::phase::template::Locals;

use super::wait::{Check, condition_check, poll};
use super::{Applied, Probe, StepContext, StepError};

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const WAIT_INTERVAL: Duration = Duration::from_secs(1);
/// How many drifted fields a probe names.
const DRIFT_SHOWN: usize = 5;

/// The rendered manifest and where it lives.
struct Manifest {
    object: Value,
    ty: TypeRef,
    namespace: Option<String>,
    name: String,
}

impl Manifest {
    fn render(ctx: &StepContext<'_>, spec: &ApplyStep) -> Result<Self, StepError> {
        let object = ctx
            .templates
            .render_json(&spec.manifest, &Locals::default())?;
        let ty = TypeRef::of(&object)
            .ok_or_else(|| StepError::Failed("the manifest has no apiVersion or kind".into()))?;
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| {
                StepError::Failed(format!("the {} manifest has no metadata.name", ty.kind))
            })?
            .to_string();
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
        Ok(Manifest {
            object,
            ty,
            namespace,
            name,
        })
    }

    fn shown(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.ty.kind, self.name),
            None => format!("{} {}", self.ty.kind, self.name),
        }
    }

    fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.ty.api_version.clone(),
            kind: self.ty.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// How long the optional wait may take.
pub fn wait_limit(_ctx: &StepContext<'_>, wait: &ConditionWait) -> Duration {
    wait.timeout.map_or(DEFAULT_WAIT, |t| t.0)
}

/// Read-only: is the object there, holding every field the manifest sets, and (with a wait)
/// in the wanted condition?
pub async fn probe(ctx: &StepContext<'_>, spec: &ApplyStep) -> Result<Probe, StepError> {
    let manifest = Manifest::render(ctx, spec)?;
    let Some(live) = ctx
        .cluster
        .get(&manifest.ty, manifest.namespace.as_deref(), &manifest.name)
        .await?
    else {
        return Ok(Probe::NeedsWork(format!("{} missing", manifest.shown())));
    };
    let drifted = drift(&manifest.object, &live);
    if !drifted.is_empty() {
        let mut named: Vec<&str> = drifted
            .iter()
            .take(DRIFT_SHOWN)
            .map(String::as_str)
            .collect();
        let more = drifted.len().saturating_sub(DRIFT_SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        named.sort_unstable();
        return Ok(Probe::NeedsWork(format!(
            "{} differs at {}{more}",
            manifest.shown(),
            named.join(", ")
        )));
    }
    if let Some(wait) = &spec.wait
        && let Check::NotYet(seen) = condition_check(
            &manifest.object_ref(),
            Some(&live),
            &wait.condition,
            &wait.status,
        )
    {
        return Ok(Probe::NeedsWork(seen));
    }
    Ok(Probe::Done(format!(
        "{} matches the manifest",
        manifest.shown()
    )))
}

/// Applies the manifest (field manager `bringup`), then waits for the condition if asked.
pub async fn apply(ctx: &StepContext<'_>, spec: &ApplyStep) -> Result<Applied, StepError> {
    let manifest = Manifest::render(ctx, spec)?;
    let before = ctx
        .cluster
        .get(&manifest.ty, manifest.namespace.as_deref(), &manifest.name)
        .await?;
    let applied = ctx.cluster.apply(&manifest.object, spec.force).await?;
    let version = |o: &Value| {
        o["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    };
    let mut did = match &before {
        None => Applied::Changed(format!("created {}", manifest.shown())),
        Some(old) if version(old) != version(&applied) => {
            Applied::Changed(format!("updated {}", manifest.shown()))
        }
        Some(_) => Applied::Unchanged(format!("{} already matches", manifest.shown())),
    };
    if let Some(wait) = &spec.wait {
        let object = manifest.object_ref();
        let ty = manifest.ty.clone();
        let seen = poll(ctx, wait_limit(ctx, wait), WAIT_INTERVAL, || {
            let (object, ty) = (&object, &ty);
            async move {
                let found = ctx
                    .cluster
                    .get(ty, object.namespace.as_deref(), &object.name)
                    .await?;
                Ok(condition_check(
                    object,
                    found.as_ref(),
                    &wait.condition,
                    &wait.status,
                ))
            }
        })
        .await?;
        did = match did {
            Applied::Changed(m) => Applied::Changed(format!("{m}; {seen}")),
            Applied::Unchanged(m) => Applied::Unchanged(format!("{m}; {seen}")),
        };
    }
    Ok(did)
}

/// Paths of the manifest's fields that the live object lacks or holds differently. Fields the
/// server adds are not drift; `status` is the server's. A Secret's `stringData` is compared
/// with the decoded `data`.
fn drift(manifest: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(fields) = manifest.as_object() else {
        return out;
    };
    for (key, wanted) in fields {
        match key.as_str() {
            "status" | "apiVersion" | "kind" => {}
            "stringData" if live["kind"] == "Secret" => {
                for (k, v) in wanted.as_object().into_iter().flatten() {
                    let decoded = live["data"][k]
                        .as_str()
                        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    if decoded.as_deref() != v.as_str() {
                        out.push(format!("stringData.{k}"));
                    }
                }
            }
            _ => compare(wanted, live.get(key).unwrap_or(&Value::Null), key, &mut out),
        }
    }
    out
}

fn compare(wanted: &Value, live: &Value, path: &str, out: &mut Vec<String>) {
    match (wanted, live) {
        (Value::Object(w), Value::Object(l)) => {
            for (key, value) in w {
                compare(
                    value,
                    l.get(key).unwrap_or(&Value::Null),
                    &format!("{path}.{key}"),
                    out,
                );
            }
        }
        (Value::Array(w), Value::Array(l)) if w.len() == l.len() => {
            for (i, (a, b)) in w.iter().zip(l).enumerate() {
                compare(a, b, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Null, Value::Null) => {}
        // A templated number renders as a string; the server holds the number.
        (Value::String(w), Value::Number(n)) if *w == n.to_string() => {}
        (Value::String(w), Value::Bool(b)) if *w == b.to_string() => {}
        (w, l) if w == l => {}
        _ => out.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::model::{ConditionWait, Duration as StepDuration, StepKind};
    use crate::steps::testing::{Bed, fake_with_namespaces};
    use serde_json::json;

    fn store_manifest(server: &str) -> Value {
        json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
               "metadata": {"name": "vault-backend", "labels": {"team": "platform"}},
               "spec": {"provider": {"vault": {"server": server, "path": "secret", "version": "v2"}},
                        "retry": {"maxRetries": 5}}})
    }

    fn spec(manifest: Value) -> ApplyStep {
        ApplyStep {
            manifest,
            force: false,
            wait: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn probe_reports_missing_then_drift_without_writing() {
        let fake = fake_with_namespaces(&[]);
        let step = spec(store_manifest("http://vault.vault:8200"));
        let bed = Bed::new(fake.clone(), StepKind::Apply(step.clone()));
        assert_eq!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::NeedsWork("ClusterSecretStore vault-backend missing".into())
        );

        // The live object carries what the server adds (status, defaults, other labels).
        let mut live = store_manifest("http://old.vault:8200");
        live["metadata"]["labels"]["added-by-server"] = json!("x");
        live["spec"]["provider"]["vault"]["auth"] = json!({"kubernetes": {}});
        live["status"] = json!({"conditions": []});
        fake.insert(live.clone());
        assert_eq!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::NeedsWork(
                "ClusterSecretStore vault-backend differs at spec.provider.vault.server".into()
            )
        );
        live["spec"]["provider"]["vault"]["server"] = json!("http://vault.vault:8200");
        fake.insert(live);
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
        assert!(fake.mutating_calls().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn apply_creates_then_reports_no_change() {
        let fake = fake_with_namespaces(&["apps"]);
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "settings", "namespace": "apps"}, "data": {"mode": "prod"}});
        let step = spec(manifest);
        let bed = Bed::new(fake.clone(), StepKind::Apply(step.clone()));
        assert_eq!(
            apply(&bed.ctx(), &step).await.unwrap(),
            Applied::Changed("created ConfigMap apps/settings".into())
        );
        assert_eq!(
            fake.object(&TypeRef::config_map(), Some("apps"), "settings")
                .unwrap()["data"]["mode"],
            "prod"
        );
        assert!(matches!(
            probe(&bed.ctx(), &step).await.unwrap(),
            Probe::Done(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn secret_string_data_is_compared_with_decoded_data() {
        let fake = fake_with_namespaces(&["apps"]);
        fake.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
                           "data": {"k": "dmFsdWU="}}));
        let same = spec(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
                               "stringData": {"k": "value"}}),
        );
        let bed = Bed::new(fake.clone(), StepKind::Apply(same.clone()));
        assert!(matches!(
            probe(&bed.ctx(), &same).await.unwrap(),
            Probe::Done(_)
        ));
        let other = spec(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "apps"},
                                "stringData": {"k": "other-value"}}),
        );
        assert_eq!(
            probe(&bed.ctx(), &other).await.unwrap(),
            Probe::NeedsWork("Secret apps/s differs at stringData.k".into())
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn apply_waits_for_the_condition() {
        let fake = fake_with_namespaces(&[]);
        let mut step = spec(store_manifest("http://vault.vault:8200"));
        step.wait = Some(ConditionWait {
            condition: "Ready".into(),
            status: "True".into(),
            timeout: Some(StepDuration(Duration::from_secs(5))),
        });
        let bed = Bed::new(fake.clone(), StepKind::Apply(step.clone()));
        let background = fake.clone();
        tokio::spawn(async move {
            // The controller marks the store Ready a little after it appears.
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if background
                    .object(
                        &TypeRef::new("external-secrets.io/v1", "ClusterSecretStore"),
                        None,
                        "vault-backend",
                    )
                    .is_some()
                {
                    break;
                }
            }
            background
                .merge_patch(
                    &TypeRef::new("external-secrets.io/v1", "ClusterSecretStore"),
                    None,
                    "vault-backend",
                    &json!({"status": {"conditions": [{"type": "Ready", "status": "True", "message": "store validated"}]}}),
                )
                .await
                .unwrap();
        });
        use crate::cluster::Cluster as _;
        let applied = apply(&bed.ctx(), &step).await.unwrap();
        assert_eq!(
            applied,
            Applied::Changed(
                "created ClusterSecretStore vault-backend; ClusterSecretStore vault-backend: Ready is True: store validated".into()
            )
        );
    }
}
