//! The checkpoint's one writer: a task that serialises every write to the ConfigMap.
//!
//! Writes are conditional on the resourceVersion last seen. A 409 (someone changed the
//! ConfigMap, e.g. a `bringup reset` racing us) re-reads it and merges: keys this run
//! changed take our value, every other key takes the server's. Writes waiting in the queue
//! are folded into one request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, ClusterError, TypeRef};
use crate::engine::checkpoint::{
    CHECKPOINT_NAME, CHECKPOINT_SCHEMA, CLUSTER_KEY, Checkpoint, SCHEMA_KEY, StepRecord,
};
use crate::engine::error::EngineError;
use crate::engine::redact::Redactor;

/// How many times one write is retried after a conflict or a transient error.
const MAX_ATTEMPTS: u32 = 6;

enum Change {
    Put(String, String),
    Remove(String),
}

struct Request {
    changes: Vec<Change>,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to the writer task. Dropping every handle (or [`close`](Self::close)) ends the task.
pub struct CheckpointWriter {
    namespace: String,
    tx: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
}

impl CheckpointWriter {
    /// Starts the writer from the ConfigMap as read (`None` when there is none yet).
    pub fn spawn(
        cluster: Arc<dyn Cluster>,
        namespace: &str,
        identity: &str,
        current: Option<Value>,
        redactor: Redactor,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Writer {
            cluster,
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            current,
            ours: BTreeMap::new(),
            redactor,
        };
        CheckpointWriter {
            namespace: namespace.to_string(),
            tx,
            task: tokio::spawn(task.serve(rx)),
        }
    }

    /// Records a step's run; returns once the cluster has it.
    pub async fn put(&self, full_id: &str, record: &StepRecord) -> Result<(), EngineError> {
        let json = serde_json::to_string(record).expect("a step record serializes");
        self.send(vec![Change::Put(Checkpoint::key(full_id), json)])
            .await
    }

    /// Removes these data keys (`phase.step`, see [`Checkpoint::key`]).
    pub async fn remove(&self, keys: &[String]) -> Result<(), EngineError> {
        self.send(keys.iter().map(|key| Change::Remove(key.clone())).collect())
            .await
    }

    /// Waits for queued writes and ends the task.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }

    async fn send(&self, changes: Vec<Change>) -> Result<(), EngineError> {
        let (done, answer) = oneshot::channel();
        let object = Checkpoint::object_name(&self.namespace);
        let gone = || EngineError::CheckpointWrite {
            object: object.clone(),
            message: "the checkpoint writer stopped".into(),
        };
        self.tx
            .send(Request { changes, done })
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(|message| EngineError::CheckpointWrite {
                object: object.clone(),
                message,
            })
    }
}

struct Writer {
    cluster: Arc<dyn Cluster>,
    namespace: String,
    identity: String,
    current: Option<Value>,
    /// Every key this run changed, with its value (`None`: removed). These win a merge.
    ours: BTreeMap<String, Option<String>>,
    redactor: Redactor,
}

impl Writer {
    async fn serve(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            for request in &mut batch {
                for change in request.changes.drain(..) {
                    match change {
                        // Defence in depth: the runner redacts errors already.
                        Change::Put(key, value) => {
                            self.ours.insert(key, Some(self.redactor.redact(&value)))
                        }
                        Change::Remove(key) => self.ours.insert(key, None),
                    };
                }
            }
            let result = self
                .write()
                .await
                .map_err(|e| self.redactor.redact(&e.to_string()));
            for request in batch {
                let _ = request.done.send(result.clone());
            }
        }
    }

    async fn write(&mut self) -> Result<(), ClusterError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let object = self.desired();
            let result = match &self.current {
                None => self.cluster.create(&object).await,
                Some(_) => self.cluster.replace(&object).await,
            };
            match result {
                Ok(stored) => {
                    self.current = Some(stored);
                    return Ok(());
                }
                Err(
                    ClusterError::Conflict { .. }
                    | ClusterError::AlreadyExists { .. }
                    | ClusterError::NotFound { .. },
                ) if attempt < MAX_ATTEMPTS => {
                    self.current = self
                        .cluster
                        .get(
                            &TypeRef::config_map(),
                            Some(&self.namespace),
                            CHECKPOINT_NAME,
                        )
                        .await?;
                }
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The server's ConfigMap with our keys laid over it.
    fn desired(&self) -> Value {
        let mut object = self.current.clone().unwrap_or_else(|| {
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": CHECKPOINT_NAME,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "bringup"},
                },
            })
        });
        if !object.get("data").is_some_and(Value::is_object) {
            object["data"] = json!({});
        }
        let data = object["data"].as_object_mut().expect("data is an object");
        data.insert(SCHEMA_KEY.into(), json!(CHECKPOINT_SCHEMA.to_string()));
        data.entry(CLUSTER_KEY)
            .or_insert_with(|| json!(self.identity));
        for (key, value) in &self.ours {
            match value {
                Some(value) => data.insert(key.clone(), json!(value)),
                None => data.remove(key),
            };
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::engine::checkpoint::RecordStatus;

    fn record(fingerprint: &str) -> StepRecord {
        StepRecord {
            status: RecordStatus::Done,
            fingerprint: fingerprint.into(),
            started: None,
            finished: None,
            attempts: 1,
            error: None,
        }
    }

    fn fake() -> FakeCluster {
        let fake = FakeCluster::new();
        fake.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bringup"}}),
        );
        fake
    }

    fn stored(fake: &FakeCluster) -> serde_json::Map<String, Value> {
        fake.object(&TypeRef::config_map(), Some("bringup"), CHECKPOINT_NAME)
            .unwrap()["data"]
            .as_object()
            .unwrap()
            .clone()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn first_write_creates_with_schema_and_cluster() {
        let fake = fake();
        let writer = CheckpointWriter::spawn(
            Arc::new(fake.clone()),
            "bringup",
            "uid-1",
            None,
            Redactor::new(),
        );
        writer.put("a/x", &record("f1")).await.unwrap();
        writer.close().await;
        let data = stored(&fake);
        assert_eq!(data["schema"], "1");
        assert_eq!(data["cluster"], "uid-1");
        let written: StepRecord = serde_json::from_str(data["a.x"].as_str().unwrap()).unwrap();
        assert_eq!(written, record("f1"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn conflict_rereads_and_merges_our_keys_over_theirs() {
        let fake = fake();
        let writer = CheckpointWriter::spawn(
            Arc::new(fake.clone()),
            "bringup",
            "uid-1",
            None,
            Redactor::new(),
        );
        writer.put("a/x", &record("ours-1")).await.unwrap();

        // Someone else writes between our writes: a key of theirs, and a key we changed.
        let mut theirs = fake
            .object(&TypeRef::config_map(), Some("bringup"), CHECKPOINT_NAME)
            .unwrap();
        theirs["data"]["b.y"] = json!(serde_json::to_string(&record("theirs")).unwrap());
        theirs["data"]["a.x"] = json!(serde_json::to_string(&record("theirs-too")).unwrap());
        fake.insert(theirs);

        writer.put("a/z", &record("ours-2")).await.unwrap();
        writer.close().await;

        let data = stored(&fake);
        let read = |k: &str| {
            serde_json::from_str::<StepRecord>(data[k].as_str().unwrap())
                .unwrap()
                .fingerprint
        };
        assert_eq!(
            read("a.x"),
            "ours-1",
            "a key this run changed keeps our value"
        );
        assert_eq!(read("a.z"), "ours-2");
        assert_eq!(
            read("b.y"),
            "theirs",
            "a key we never touched keeps the server's value"
        );
        let replaces = fake.calls().iter().filter(|c| c.verb == "replace").count();
        assert_eq!(
            replaces,
            2,
            "one conflicting replace, one after the re-read: {:?}",
            fake.calls()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn values_are_redacted_before_they_are_written() {
        let fake = fake();
        let redactor = Redactor::new();
        redactor.register("canary-Zq81xT");
        let writer =
            CheckpointWriter::spawn(Arc::new(fake.clone()), "bringup", "uid-1", None, redactor);
        let mut failed = record("f");
        failed.status = RecordStatus::Failed;
        failed.error = Some("login with canary-Zq81xT refused".into());
        writer.put("a/x", &failed).await.unwrap();
        writer.close().await;
        let text = serde_json::to_string(&stored(&fake)).unwrap();
        assert!(!text.contains("canary-Zq81xT"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn remove_deletes_keys() {
        let fake = fake();
        let writer = CheckpointWriter::spawn(
            Arc::new(fake.clone()),
            "bringup",
            "uid-1",
            None,
            Redactor::new(),
        );
        writer.put("a/x", &record("1")).await.unwrap();
        writer.put("a/y", &record("1")).await.unwrap();
        writer.remove(&["a.x".to_string()]).await.unwrap();
        writer.close().await;
        let data = stored(&fake);
        assert!(!data.contains_key("a.x"));
        assert!(data.contains_key("a.y"));
    }
}
