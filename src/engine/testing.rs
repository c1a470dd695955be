//! Test builders for the engine: phases and steps, a scripted executor, and a reporter that
//! remembers every event.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::engine::events::{Event, TimedEvent};
use crate::engine::executor::{ExecContext, Executor};
use crate::phase::model::{
    ExecStep, ObjectRef, Phase, PodSelector, PromptStep, SecretKeyRef, Step, StepKind, WaitFor,
    WaitStep,
};
use crate::report::Reporter;
use crate::steps::{Applied, Probe, StepError};

/// A once-step (exec).
pub fn once_step(id: &str) -> Step {
    Step {
        id: id.into(),
        description: None,
        mode: None,
        timeout: None,
        retries: None,
        kind: StepKind::Exec(ExecStep {
            pod: PodSelector {
                namespace: "apps".into(),
                name: Some("pod-0".into()),
                selector: None,
            },
            container: None,
            command: vec!["true".into()],
            stdin: None,
            accept_exit_codes: vec![0],
            skip_if: None,
            capture: None,
            sensitive: true,
            store: None,
        }),
    }
}

/// An ensure-step (wait).
pub fn ensure_step(id: &str) -> Step {
    Step {
        kind: StepKind::Wait(WaitStep {
            until: WaitFor::Object(ObjectRef {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("apps".into()),
                name: id.into(),
            }),
            interval: None,
        }),
        ..once_step(id)
    }
}

/// A prompt step answered by values key `key`.
pub fn prompt_step(id: &str, key: &str) -> Step {
    Step {
        kind: StepKind::Prompt(PromptStep {
            prompt: "admin password".into(),
            secret: SecretKeyRef {
                secret: "apps/admin".parse().unwrap(),
                key: "password".into(),
            },
            value: key.into(),
            hidden: true,
        }),
        ..once_step(id)
    }
}

/// A pid that no process has any more.
pub fn gone_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

pub fn phase(name: &str, depends_on: &[&str], steps: Vec<Step>) -> Phase {
    Phase {
        name: name.into(),
        description: None,
        depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        steps,
        file: format!("phases/{name}.yaml").into(),
    }
}

type ApplyFn = Arc<dyn Fn(u32) -> BoxFuture<'static, Result<Applied, StepError>> + Send + Sync>;

/// Applies succeed and are remembered; a probe says done for what was applied. Steps can be
/// scripted to fail, to wait, or to run arbitrary code.
#[derive(Default)]
pub struct FakeExecutor {
    scripts: Mutex<HashMap<String, ApplyFn>>,
    probes: Mutex<HashMap<String, Probe>>,
    applied: Mutex<HashSet<String>>,
    attempts: Mutex<HashMap<String, u32>>,
    calls: Mutex<Vec<String>>,
}

impl FakeExecutor {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `f(attempt)` (1-based) for the step's applies.
    pub fn script<F, Fut>(&self, full_id: &str, f: F)
    where
        F: Fn(u32) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Applied, StepError>> + Send + 'static,
    {
        self.scripts
            .lock()
            .unwrap()
            .insert(full_id.into(), Arc::new(move |n| Box::pin(f(n))));
    }

    pub fn fail(&self, full_id: &str, message: &str) {
        let message = message.to_string();
        self.script(full_id, move |_| {
            let message = message.clone();
            async move { Err(StepError::Failed(message)) }
        });
    }

    pub fn probe_answer(&self, full_id: &str, probe: Probe) {
        self.probes.lock().unwrap().insert(full_id.into(), probe);
    }

    pub fn forget(&self, full_id: &str) {
        self.applied.lock().unwrap().remove(full_id);
    }

    /// `probe a/x`, `apply a/x`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn applies(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.strip_prefix("apply ").map(str::to_string))
            .collect()
    }
}

#[async_trait]
impl Executor for FakeExecutor {
    async fn probe(&self, ctx: &ExecContext<'_>) -> Result<Probe, StepError> {
        let id = ctx.full_id();
        self.calls.lock().unwrap().push(format!("probe {id}"));
        if let Some(answer) = self.probes.lock().unwrap().get(&id) {
            return Ok(answer.clone());
        }
        Ok(if self.applied.lock().unwrap().contains(&id) {
            Probe::Done("present".into())
        } else {
            Probe::NeedsWork("missing".into())
        })
    }

    async fn apply(&self, ctx: &ExecContext<'_>) -> Result<Applied, StepError> {
        let id = ctx.full_id();
        self.calls.lock().unwrap().push(format!("apply {id}"));
        (ctx.progress)(format!("working on {id}"));
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(id.clone()).or_default();
            *n += 1;
            *n
        };
        let script = self.scripts.lock().unwrap().get(&id).cloned();
        let result = match script {
            Some(script) => script(attempt).await,
            None => Ok(Applied::Changed(format!("did {id}"))),
        };
        if result.is_ok() {
            self.applied.lock().unwrap().insert(id);
        }
        result
    }
}

/// Remembers every event.
#[derive(Default)]
pub struct MemoryReporter {
    events: Mutex<Vec<TimedEvent>>,
}

impl MemoryReporter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }

    /// Every event as its JSON line.
    pub fn json(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.to_json().to_string() + "\n")
            .collect()
    }
}

impl Reporter for MemoryReporter {
    fn report(&self, event: &TimedEvent) {
        self.events.lock().unwrap().push(event.clone());
    }
}
