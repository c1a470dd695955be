//! In-process emulators of product CLIs that a pod's exec hands its command to, where no real
//! server can run on our machines (Gitea, Kanidm); the registry maps a cluster file's
//! `exec: { emulator: NAME }` to one of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

/// One exec as the emulator sees it: the whole command line, the pod's environment and all of
/// stdin (an emulator answers after stdin ends, as a CLI that reads its input first does).
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub stdin: Vec<u8>,
}

/// What the emulated command wrote and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completed {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Completed {
    pub fn success(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: stdout.into(),
            stderr: Vec::new(),
            exit_code: 0,
        }
    }

    pub fn failure(exit_code: i32, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: stderr.into(),
            exit_code,
        }
    }
}

/// A product CLI emulated in process. An emulator keeps its own state (users, tokens, ...)
/// behind `&self`, so it must be shareable between concurrent execs.
pub trait Emulator: Send + Sync {
    fn run(&self, invocation: Invocation) -> BoxFuture<'static, Completed>;
}

/// Emulators by the name a cluster file uses in `exec: { emulator: NAME }`.
#[derive(Clone, Default)]
pub struct EmulatorRegistry {
    emulators: BTreeMap<String, Arc<dyn Emulator>>,
}

impl std::fmt::Debug for EmulatorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl EmulatorRegistry {
    /// A registry with the emulators this crate ships (`echo`).
    pub fn with_builtin() -> Self {
        let mut registry = Self::default();
        registry.register("echo", Arc::new(crate::echo_emulator::EchoEmulator));
        registry
    }

    /// Adds or replaces the emulator known as `name`.
    pub fn register(&mut self, name: impl Into<String>, emulator: Arc<dyn Emulator>) {
        self.emulators.insert(name.into(), emulator);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Emulator>> {
        self.emulators.get(name).cloned()
    }

    pub fn names(&self) -> Vec<&str> {
        self.emulators.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builtin_registry_finds_echo_and_not_unknown_names() {
        let registry = EmulatorRegistry::with_builtin();
        assert_eq!(registry.names(), vec!["echo"]);
        assert!(registry.get("gitea").is_none());
        let echo = registry.get("echo").expect("echo is registered");
        let done = echo
            .run(Invocation {
                argv: vec!["echo".into(), "hi".into()],
                ..Invocation::default()
            })
            .await;
        assert_eq!(done, Completed::success("hi\n"));
    }

    #[tokio::test]
    async fn register_replaces_an_emulator_by_name() {
        struct Fixed;
        impl Emulator for Fixed {
            fn run(&self, _: Invocation) -> BoxFuture<'static, Completed> {
                Box::pin(async { Completed::failure(7, "no") })
            }
        }
        let mut registry = EmulatorRegistry::with_builtin();
        registry.register("echo", Arc::new(Fixed));
        let done = registry
            .get("echo")
            .unwrap()
            .run(Invocation::default())
            .await;
        assert_eq!(done.exit_code, 7);
    }
}
