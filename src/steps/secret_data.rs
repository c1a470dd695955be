//! Reading a Secret's decoded keys and merging keys into it: every value read or written is
//! registered with the redactor, and only missing or changed keys are ever sent.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::{Cluster, TypeRef};
use crate::engine::redact::Redactor;
use crate::phase::model::{ObjectName, SecretKeyRef};

use super::StepError;

/// The label bringup puts on the Secrets it creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "bringup");

/// A Secret as bringup sees it: decoded keys, labels and annotations.
#[derive(Debug, Clone, Default)]
pub struct SecretData {
    pub exists: bool,
    pub values: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// What a Secret is created with when it does not exist yet.
#[derive(Debug, Clone, Default)]
pub struct SecretShape {
    pub secret_type: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl SecretData {
    /// Reads the Secret (`exists: false` when it does not), registering every value.
    pub async fn read(
        cluster: &dyn Cluster,
        redactor: &Redactor,
        name: &ObjectName,
    ) -> Result<Self, StepError> {
        let Some(object) = cluster
            .get(&TypeRef::secret(), Some(&name.namespace), &name.name)
            .await?
        else {
            return Ok(SecretData::default());
        };
        let mut values = BTreeMap::new();
        if let Some(data) = object.get("data").and_then(Value::as_object) {
            for (key, encoded) in data {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_str().unwrap_or_default())
                    .map_err(|_| {
                        StepError::Failed(format!("Secret {name} key {key} is not valid base64"))
                    })?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                redactor.register(&text);
                values.insert(key.clone(), text);
            }
        }
        Ok(SecretData {
            exists: true,
            values,
            labels: string_map(&object["metadata"]["labels"]),
            annotations: string_map(&object["metadata"]["annotations"]),
        })
    }

    /// Whether the Secret holds the key with a non-empty value (`skip_if: secret_key`).
    pub async fn has_key(
        cluster: &dyn Cluster,
        redactor: &Redactor,
        key: &SecretKeyRef,
    ) -> Result<bool, StepError> {
        Ok(Self::read(cluster, redactor, &key.secret)
            .await?
            .non_empty(&key.key)
            .is_some())
    }

    /// The key's value when it is present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Writes the keys whose value is missing or different, with one merge patch (or one
    /// create when the Secret does not exist). Returns the keys written; writes nothing when
    /// every key already holds its value.
    pub async fn write(
        cluster: &dyn Cluster,
        redactor: &Redactor,
        name: &ObjectName,
        values: &BTreeMap<String, String>,
        shape: &SecretShape,
    ) -> Result<Vec<String>, StepError> {
        for value in values.values() {
            redactor.register(value);
        }
        let current = Self::read(cluster, redactor, name).await?;
        let changed: BTreeMap<&String, &String> = values
            .iter()
            .filter(|(k, v)| current.values.get(*k) != Some(*v))
            .collect();
        let missing_labels: BTreeMap<&String, &String> = shape
            .labels
            .iter()
            .filter(|(k, v)| current.labels.get(*k) != Some(*v))
            .collect();
        let missing_annotations: BTreeMap<&String, &String> = shape
            .annotations
            .iter()
            .filter(|(k, v)| current.annotations.get(*k) != Some(*v))
            .collect();
        let encoded: serde_json::Map<String, Value> = changed
            .iter()
            .map(|(k, v)| (k.to_string(), json!(encode(v))))
            .collect();
        if !current.exists {
            let mut labels = shape.labels.clone();
            labels
                .entry(MANAGED_BY.0.into())
                .or_insert_with(|| MANAGED_BY.1.into());
            let secret = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name.name, "namespace": name.namespace, "labels": labels,
                             "annotations": shape.annotations},
                "type": shape.secret_type.as_deref().unwrap_or("Opaque"),
                "data": encoded,
            });
            cluster.create(&secret).await?;
        } else if !changed.is_empty()
            || !missing_labels.is_empty()
            || !missing_annotations.is_empty()
        {
            let mut patch = json!({});
            if !encoded.is_empty() {
                patch["data"] = Value::Object(encoded);
            }
            if !missing_labels.is_empty() {
                patch["metadata"]["labels"] = json!(missing_labels);
            }
            if !missing_annotations.is_empty() {
                patch["metadata"]["annotations"] = json!(missing_annotations);
            }
            cluster
                .merge_patch(
                    &TypeRef::secret(),
                    Some(&name.namespace),
                    &name.name,
                    &patch,
                )
                .await?;
        }
        Ok(changed.into_keys().cloned().collect())
    }
}

fn encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;

    fn name() -> ObjectName {
        "app/creds".parse().unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writes_only_changed_keys_and_registers_values() {
        let fake = FakeCluster::new();
        fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}));
        let redactor = Redactor::new();
        let first = BTreeMap::from([("a".to_string(), "value-one".to_string())]);
        let written = SecretData::write(&fake, &redactor, &name(), &first, &SecretShape::default())
            .await
            .unwrap();
        assert_eq!(written, vec!["a".to_string()]);
        let stored = fake
            .object(&TypeRef::secret(), Some("app"), "creds")
            .unwrap();
        assert_eq!(stored["metadata"]["labels"][MANAGED_BY.0], "bringup");
        assert_eq!(stored["type"], "Opaque");

        let second = BTreeMap::from([
            ("a".to_string(), "value-one".to_string()),
            ("b".to_string(), "value-two".to_string()),
        ]);
        let before = fake.mutating_calls().len();
        let written =
            SecretData::write(&fake, &redactor, &name(), &second, &SecretShape::default())
                .await
                .unwrap();
        assert_eq!(written, vec!["b".to_string()]);
        assert_eq!(fake.mutating_calls().len(), before + 1);

        let before = fake.mutating_calls().len();
        SecretData::write(&fake, &redactor, &name(), &second, &SecretShape::default())
            .await
            .unwrap();
        assert_eq!(
            fake.mutating_calls().len(),
            before,
            "an unchanged write sends nothing"
        );

        let read = SecretData::read(&fake, &redactor, &name()).await.unwrap();
        assert_eq!(read.non_empty("b"), Some("value-two"));
        assert_eq!(redactor.redact("x value-two y"), "x [redacted] y");
    }
}
