//! A test bed for step kinds: a fake cluster, templates, a redactor and a recording
//! progress sink, from which a `StepContext` is made.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::cluster::fake::FakeCluster;
use crate::engine::redact::Redactor;
use crate::phase::model::{Step, StepKind};
use crate::phase::template::Templater;

use super::{NoPrompter, Prompter, StepContext};

pub(crate) struct Bed {
    pub fake: FakeCluster,
    pub cluster: Arc<dyn Cluster>,
    pub templates: Templater,
    pub redactor: Redactor,
    pub step: Step,
    pub progress: Arc<Mutex<Vec<String>>>,
    progress_sink: Box<dyn Fn(String) + Send + Sync>,
    pub prompter: Box<dyn Prompter>,
}

impl Bed {
    pub fn new(fake: FakeCluster, kind: StepKind) -> Self {
        Self::with_values(fake, kind, json!({}))
    }

    pub fn with_values(fake: FakeCluster, kind: StepKind, values: Value) -> Self {
        let redactor = Redactor::new();
        let cluster: Arc<dyn Cluster> = Arc::new(fake.clone());
        let progress: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = progress.clone();
        Bed {
            templates: Templater::new(values, Some(cluster.clone()), redactor.clone()),
            cluster,
            fake,
            redactor,
            step: Step {
                id: "test".into(),
                description: None,
                mode: None,
                timeout: None,
                retries: None,
                kind,
            },
            progress,
            progress_sink: Box::new(move |m| sink.lock().unwrap().push(m)),
            prompter: Box::new(NoPrompter),
        }
    }

    pub fn ctx(&self) -> StepContext<'_> {
        StepContext {
            phase: "tests",
            step: &self.step,
            cluster: self.cluster.clone(),
            templates: &self.templates,
            redactor: &self.redactor,
            progress: &self.progress_sink,
            prompter: self.prompter.as_ref(),
        }
    }
}

/// A fake with these namespaces.
pub(crate) fn fake_with_namespaces(names: &[&str]) -> FakeCluster {
    let fake = FakeCluster::new();
    for name in names {
        fake.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
    }
    fake
}

/// A Secret's decoded key from the fake.
pub(crate) fn secret_key(fake: &FakeCluster, ns: &str, name: &str, key: &str) -> Option<String> {
    use base64::Engine as _;
    let object = fake.object(&crate::cluster::TypeRef::secret(), Some(ns), name)?;
    let encoded = object["data"][key].as_str()?;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    )
    .ok()
}
