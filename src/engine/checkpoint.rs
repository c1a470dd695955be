//! The checkpoint: a ConfigMap that records, per step, its last run. Read here; written
//! only through the [`CheckpointWriter`](crate::engine::checkpoint_writer::CheckpointWriter).
//!
//! Data keys: `schema` (`"1"`), `cluster` (the UID of namespace `kube-system`), and one key
//! per step, `phase.step` (ids are `[a-z0-9-]`, so `.` cannot clash), holding a JSON
//! [`StepRecord`]. It never holds a secret value: errors are redacted before they are written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{Cluster, TypeRef};
use crate::engine::error::EngineError;
use crate::engine::events::StepState;

/// The checkpoint schema this build reads and writes.
pub const CHECKPOINT_SCHEMA: u32 = 1;
/// The ConfigMap's name; its namespace is `--state-namespace`.
pub const CHECKPOINT_NAME: &str = "bringup-state";
pub const SCHEMA_KEY: &str = "schema";
pub const CLUSTER_KEY: &str = "cluster";

/// One step's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub status: RecordStatus,
    pub fingerprint: String,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Attempts since the step last succeeded, transient retries included.
    pub attempts: u32,
    /// The redacted error of a failed step.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Running,
    Done,
    Failed,
}

impl StepRecord {
    /// The step's state against its current fingerprint.
    pub fn state(&self, fingerprint: &str) -> StepState {
        match self.status {
            RecordStatus::Running => StepState::Interrupted,
            RecordStatus::Failed => StepState::Failed,
            RecordStatus::Done if self.fingerprint == fingerprint => StepState::Done,
            RecordStatus::Done => StepState::Changed,
        }
    }
}

/// The checkpoint as read at the start of a command.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub namespace: String,
    /// The ConfigMap as read (with its resourceVersion), `None` when there is none yet.
    pub object: Option<Value>,
    /// The cluster identity it was written for.
    pub cluster: Option<String>,
    /// Records by full id `phase/step`.
    pub records: BTreeMap<String, StepRecord>,
    /// Keys that could not be read as records: their steps count as pending.
    pub unreadable: Vec<String>,
}

impl Checkpoint {
    /// No checkpoint yet (a fresh cluster, or a missing state namespace).
    pub fn empty(namespace: &str) -> Self {
        Checkpoint {
            namespace: namespace.to_string(),
            ..Default::default()
        }
    }

    /// `namespace/bringup-state`, for messages.
    pub fn object_name(namespace: &str) -> String {
        format!("{namespace}/{CHECKPOINT_NAME}")
    }

    /// The ConfigMap data key of a step: `phase/step` → `phase.step`.
    pub fn key(full_id: &str) -> String {
        full_id.replacen('/', ".", 1)
    }

    /// Reads the checkpoint and checks it belongs to this cluster and this schema.
    pub async fn read(
        cluster: &dyn Cluster,
        namespace: &str,
        identity: &str,
    ) -> Result<Checkpoint, EngineError> {
        let object = cluster
            .get(&TypeRef::config_map(), Some(namespace), CHECKPOINT_NAME)
            .await
            .map_err(EngineError::cluster(format!(
                "reading checkpoint {}",
                Self::object_name(namespace)
            )))?;
        let checkpoint = match object {
            Some(object) => Self::parse(namespace, object)?,
            None => Self::empty(namespace),
        };
        checkpoint.check_cluster(identity)?;
        Ok(checkpoint)
    }

    /// Parses a checkpoint ConfigMap; a newer schema is an error, not a guess.
    pub fn parse(namespace: &str, object: Value) -> Result<Checkpoint, EngineError> {
        let name = Self::object_name(namespace);
        let data = object
            .get("data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(schema) = data.get(SCHEMA_KEY) {
            let text = schema.as_str().unwrap_or_default();
            match text.parse::<u32>() {
                Ok(n) if n <= CHECKPOINT_SCHEMA => {}
                Ok(_) => {
                    return Err(EngineError::NewerSchema {
                        object: name,
                        found: text.into(),
                        supported: CHECKPOINT_SCHEMA,
                    });
                }
                Err(_) => {
                    return Err(EngineError::BadCheckpoint {
                        object: name,
                        message: format!("key `schema` is `{text}`, expected a number"),
                    });
                }
            }
        }
        let mut checkpoint = Checkpoint {
            namespace: namespace.to_string(),
            cluster: data
                .get(CLUSTER_KEY)
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Default::default()
        };
        for (key, value) in &data {
            if key == SCHEMA_KEY || key == CLUSTER_KEY {
                continue;
            }
            let Some((phase, step)) = key.split_once('.') else {
                checkpoint.unreadable.push(key.clone());
                continue;
            };
            match value.as_str().map(serde_json::from_str::<StepRecord>) {
                Some(Ok(record)) => {
                    checkpoint.records.insert(format!("{phase}/{step}"), record);
                }
                _ => checkpoint.unreadable.push(key.clone()),
            }
        }
        checkpoint.object = Some(object);
        Ok(checkpoint)
    }

    /// A checkpoint written for another cluster stops every command that would use it.
    pub fn check_cluster(&self, identity: &str) -> Result<(), EngineError> {
        match &self.cluster {
            Some(recorded) if recorded != identity => Err(EngineError::WrongCluster {
                object: Self::object_name(&self.namespace),
                recorded: recorded.clone(),
                current: identity.to_string(),
            }),
            _ => Ok(()),
        }
    }

    pub fn record(&self, full_id: &str) -> Option<&StepRecord> {
        self.records.get(full_id)
    }

    /// The step's state: pending without a record.
    pub fn state(&self, full_id: &str, fingerprint: &str) -> StepState {
        self.record(full_id)
            .map_or(StepState::Pending, |r| r.state(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config_map(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CHECKPOINT_NAME, "namespace": "bringup"}, "data": data})
    }

    #[test]
    fn records_parse_and_states_follow_fingerprints() {
        let record = json!({"status": "done", "fingerprint": "sha256:aa", "started": null, "finished": null, "attempts": 1, "error": null});
        let running = json!({"status": "running", "fingerprint": "sha256:aa", "started": null, "finished": null, "attempts": 1, "error": null});
        let cp = Checkpoint::parse(
            "bringup",
            config_map(json!({"schema": "1", "cluster": "uid", "a.x": record.to_string(), "a.y": running.to_string(), "a.z": "{not json"})),
        )
        .unwrap();
        assert_eq!(cp.state("a/x", "sha256:aa"), StepState::Done);
        assert_eq!(cp.state("a/x", "sha256:bb"), StepState::Changed);
        assert_eq!(cp.state("a/y", "sha256:aa"), StepState::Interrupted);
        assert_eq!(cp.state("a/z", "sha256:aa"), StepState::Pending);
        assert_eq!(cp.unreadable, vec!["a.z".to_string()]);
    }

    #[test]
    fn newer_schema_is_refused_with_exit_3() {
        let err = Checkpoint::parse("bringup", config_map(json!({"schema": "2"}))).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(
            err.to_string(),
            "checkpoint bringup/bringup-state has schema 2, newer than this bringup understands (1); upgrade bringup"
        );
    }

    #[test]
    fn another_clusters_checkpoint_is_refused() {
        let cp = Checkpoint::parse(
            "bringup",
            config_map(json!({"schema": "1", "cluster": "other-uid"})),
        )
        .unwrap();
        let err = cp.check_cluster("this-uid").unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string()
                .contains("written for cluster other-uid, but this cluster is this-uid"),
            "{err}"
        );
    }
}
