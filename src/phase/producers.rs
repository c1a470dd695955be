//! Which step creates which Secret or ConfigMap key: for "add it to depends_on" advice in
//! validation and in lookup errors.

use std::collections::HashMap;

use crate::cluster::TypeRef;

use super::dag::PhaseSet;
use super::model::{Phase, StepKind};

/// The two kinds of object templates read data from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
}

impl ObjectKind {
    /// The template function that reads it.
    pub fn function(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::ConfigMap => "configmap",
        }
    }

    pub fn type_ref(self) -> TypeRef {
        match self {
            ObjectKind::Secret => TypeRef::secret(),
            ObjectKind::ConfigMap => TypeRef::config_map(),
        }
    }
}

type Key = (ObjectKind, String, String, String);

/// `(kind, namespace, name, key)` → the full ids of the steps that write it, in file order.
#[derive(Debug, Clone, Default)]
pub struct Producers {
    writers: HashMap<Key, Vec<String>>,
}

impl Producers {
    pub fn of(phases: &PhaseSet) -> Self {
        Self::of_phases(&phases.phases)
    }

    pub fn of_phases<'a>(phases: impl IntoIterator<Item = &'a Phase>) -> Self {
        let mut producers = Producers::default();
        for phase in phases {
            for step in &phase.steps {
                let full_id = format!("{}/{}", phase.name, step.id);
                let mut add = |kind: ObjectKind, ns: &str, name: &str, key: &str| {
                    producers
                        .writers
                        .entry((kind, ns.to_string(), name.to_string(), key.to_string()))
                        .or_default()
                        .push(full_id.clone());
                };
                match &step.kind {
                    StepKind::Secret(s) => s.keys.keys().for_each(|key| {
                        add(ObjectKind::Secret, &s.secret.namespace, &s.secret.name, key)
                    }),
                    StepKind::Prompt(p) => add(
                        ObjectKind::Secret,
                        &p.secret.secret.namespace,
                        &p.secret.secret.name,
                        &p.secret.key,
                    ),
                    StepKind::Exec(e) => {
                        if let Some(store) = &e.store {
                            store.data.keys().for_each(|key| {
                                add(
                                    ObjectKind::Secret,
                                    &store.secret.namespace,
                                    &store.secret.name,
                                    key,
                                )
                            })
                        }
                    }
                    StepKind::Http(h) => {
                        if let Some(store) = &h.store {
                            store.data.keys().for_each(|key| {
                                add(
                                    ObjectKind::Secret,
                                    &store.secret.namespace,
                                    &store.secret.name,
                                    key,
                                )
                            })
                        }
                    }
                    StepKind::Apply(a) => {
                        let kind = match (
                            a.manifest["apiVersion"].as_str(),
                            a.manifest["kind"].as_str(),
                        ) {
                            (Some("v1"), Some("Secret")) => ObjectKind::Secret,
                            (Some("v1"), Some("ConfigMap")) => ObjectKind::ConfigMap,
                            _ => continue,
                        };
                        let (Some(ns), Some(name)) = (
                            a.manifest["metadata"]["namespace"].as_str(),
                            a.manifest["metadata"]["name"].as_str(),
                        ) else {
                            continue;
                        };
                        for field in ["data", "stringData", "binaryData"] {
                            if let Some(map) = a.manifest[field].as_object() {
                                map.keys().for_each(|key| add(kind, ns, name, key));
                            }
                        }
                    }
                    StepKind::VaultInit(init) => {
                        if let Some(secret) = &init.custody.secret {
                            add(
                                ObjectKind::Secret,
                                &secret.namespace,
                                &secret.name,
                                "root_token",
                            );
                            for share in 0..init.secret_shares {
                                add(
                                    ObjectKind::Secret,
                                    &secret.namespace,
                                    &secret.name,
                                    &format!("unseal_key_{share}"),
                                );
                            }
                        }
                    }
                    StepKind::VaultRootToken(root) => {
                        if let Some(secret) = &root.custody.secret {
                            add(
                                ObjectKind::Secret,
                                &secret.namespace,
                                &secret.name,
                                "root_token",
                            );
                        }
                    }
                    StepKind::Wait(_)
                    | StepKind::VaultUnseal(_)
                    | StepKind::VaultConfig(_)
                    | StepKind::VaultKv(_) => {}
                }
            }
        }
        producers
    }

    /// The full ids of the steps that write this key.
    pub fn writers(&self, kind: ObjectKind, ns: &str, name: &str, key: &str) -> &[String] {
        self.writers
            .get(&(kind, ns.to_string(), name.to_string(), key.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first step (in file order) that writes this key.
    pub fn first(&self, kind: ObjectKind, ns: &str, name: &str, key: &str) -> Option<String> {
        self.writers(kind, ns, name, key).first().cloned()
    }
}
