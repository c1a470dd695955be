//! Key custody: where `vault-init` puts the unseal keys and the root token, and where the other
//! Vault kinds read them. A Secret (one key per share: `unseal_key_0`.., `root_token`), a 0600
//! file (JSON), or both. Stored keys are never overwritten; everything read is registered with
//! the redactor before it goes anywhere.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError, TypeRef};
use crate::engine::redact::Redactor;
use crate::phase::model::{ObjectName, VaultCustody};
use crate::steps::StepError;

/// Secret key prefix of the unseal key shares (`unseal_key_0`, `unseal_key_1`, ...).
pub const UNSEAL_KEY_PREFIX: &str = "unseal_key_";
pub const ROOT_TOKEN_KEY: &str = "root_token";
/// Set to `true` once `vault-root-token` revoked the root token (which is then removed).
pub const ROOT_TOKEN_REVOKED_KEY: &str = "root_token_revoked";
/// `true` when the shares are PGP ciphertext (Vault's `pgp_keys`): bringup cannot unseal with them.
pub const KEYS_PGP_KEY: &str = "unseal_keys_pgp";
/// The root token as PGP ciphertext (Vault's `root_token_pgp_key`).
pub const ROOT_TOKEN_PGP_KEY: &str = "root_token_pgp";
/// Marks a Secret that `vault-init` created before calling `sys/init`.
pub const RESERVED_ANNOTATION: &str = "bringup.dev/vault-init";
/// On a reserved Secret: the [`Claim`] of the process that is initialising OpenBao.
pub const CLAIM_ANNOTATION: &str = "bringup.dev/vault-init-claim";

/// Which process is between reserving custody and storing the keys, so that a rerun waits
/// for it instead of finding "initialised, no keys" while the keys are on their way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub host: String,
    pub pid: u32,
    /// After this, nobody waits for it any more, whether or not its process can be checked.
    pub until: chrono::DateTime<chrono::Utc>,
}

impl Claim {
    /// A claim by this process, for `duration`.
    pub fn mine(duration: std::time::Duration) -> Claim {
        Self::by(std::process::id(), duration)
    }

    /// A claim by process `pid` of this machine, for `duration`.
    pub fn by(pid: u32, duration: std::time::Duration) -> Claim {
        Claim {
            host: crate::engine::lock::hostname(),
            pid,
            until: chrono::Utc::now()
                + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Could its process still store keys? Not after `until`, nor when it is this very process
    /// (a retry of the step), nor when it ran on this machine and is gone. A process on another
    /// machine cannot be checked: it is given until `until`.
    pub fn may_be_running(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        if now > self.until {
            return false;
        }
        if self.host != crate::engine::lock::hostname() {
            return true;
        }
        self.pid != std::process::id() && crate::engine::lock::process_exists(self.pid)
    }
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// What custody holds.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKeys {
    /// The shares as Vault's `keys_base64` gave them.
    pub unseal_keys_b64: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_token_pgp: Option<String>,
    #[serde(default)]
    pub unseal_keys_pgp: bool,
    #[serde(default)]
    pub root_token_revoked: bool,
}

impl std::fmt::Debug for StoredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredKeys({} shares, root token {})",
            self.unseal_keys_b64.len(),
            self.root_token.is_some()
        )
    }
}

impl StoredKeys {
    fn register(&self, redactor: &Redactor) {
        for key in &self.unseal_keys_b64 {
            redactor.register(key);
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(key) {
                redactor.register(&hex::encode(raw));
            }
        }
        for token in [&self.root_token, &self.root_token_pgp]
            .into_iter()
            .flatten()
        {
            redactor.register(token);
        }
    }

    /// Keys bringup can unseal with (plain shares).
    pub fn usable_keys(&self) -> Option<&[String]> {
        (!self.unseal_keys_pgp && !self.unseal_keys_b64.is_empty())
            .then_some(self.unseal_keys_b64.as_slice())
    }
}

/// Custody as a step configured it.
pub struct Custody {
    pub secret: Option<ObjectName>,
    pub file: Option<PathBuf>,
    cluster: Arc<dyn Cluster>,
    redactor: Redactor,
}

impl Custody {
    pub fn new(
        spec: &VaultCustody,
        cluster: Arc<dyn Cluster>,
        redactor: Redactor,
    ) -> Result<Self, StepError> {
        if spec.secret.is_none() && spec.file.is_none() {
            return Err(StepError::Failed("`custody` names neither a `secret` nor a `file`: the keys would have nowhere to go".into()));
        }
        Ok(Custody {
            secret: spec.secret.clone(),
            file: spec.file.clone(),
            cluster,
            redactor,
        })
    }

    /// Where the keys are, for messages.
    pub fn describe(&self) -> String {
        let mut places = Vec::new();
        if let Some(secret) = &self.secret {
            places.push(format!("Secret {secret}"));
        }
        if let Some(file) = &self.file {
            places.push(format!("file {}", file.display()));
        }
        places.join(" and ")
    }

    /// The keys from the Secret, else from the file; `None` when neither holds shares.
    pub async fn read(&self) -> Result<Option<StoredKeys>, StepError> {
        if let Some(keys) = self.read_secret().await? {
            return Ok(Some(keys));
        }
        self.read_file()
    }

    /// The custody Secret as stored; `None` when none is configured or it does not exist.
    async fn secret_object(&self) -> Result<Option<(&ObjectName, Value)>, StepError> {
        let Some(name) = &self.secret else {
            return Ok(None);
        };
        Ok(self
            .cluster
            .get(&TypeRef::secret(), Some(&name.namespace), &name.name)
            .await?
            .map(|secret| (name, secret)))
    }

    /// The keys in the Secret; `None` when it is missing or holds no share.
    pub async fn read_secret(&self) -> Result<Option<StoredKeys>, StepError> {
        let Some((name, secret)) = self.secret_object().await? else {
            return Ok(None);
        };
        let data = secret["data"].as_object().cloned().unwrap_or_default();
        let decode = |key: &str| -> Result<Option<String>, StepError> {
            let Some(encoded) = data.get(key).and_then(Value::as_str) else {
                return Ok(None);
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| {
                    StepError::Failed(format!(
                        "Secret {name} key {key} is not base64; fix or restore it by hand"
                    ))
                })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                StepError::Failed(format!(
                    "Secret {name} key {key} is not text; fix or restore it by hand"
                ))
            })?;
            self.redactor.register(&text);
            Ok(Some(text))
        };
        let mut keys = StoredKeys::default();
        for index in 0.. {
            match decode(&format!("{UNSEAL_KEY_PREFIX}{index}"))? {
                Some(key) => keys.unseal_keys_b64.push(key),
                None => break,
            }
        }
        if keys.unseal_keys_b64.is_empty() {
            return Ok(None);
        }
        keys.root_token = decode(ROOT_TOKEN_KEY)?;
        keys.root_token_pgp = decode(ROOT_TOKEN_PGP_KEY)?;
        keys.unseal_keys_pgp = decode(KEYS_PGP_KEY)?.as_deref() == Some("true");
        keys.root_token_revoked = decode(ROOT_TOKEN_REVOKED_KEY)?.as_deref() == Some("true");
        keys.register(&self.redactor);
        Ok(Some(keys))
    }

    /// The keys in the file; `None` when no file is configured or it does not exist.
    pub fn read_file(&self) -> Result<Option<StoredKeys>, StepError> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StepError::Failed(format!(
                    "reading the key file {}: {e}",
                    path.display()
                )));
            }
        };
        let keys: StoredKeys = serde_json::from_str(&text).map_err(|e| {
            // serde's message can quote input: name only the line and column.
            StepError::Failed(format!(
                "the key file {} is not bringup's JSON (line {}, column {}); restore it by hand",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        keys.register(&self.redactor);
        Ok((!keys.unseal_keys_b64.is_empty()).then_some(keys))
    }

    /// Before `sys/init`: prove the Secret can be written (namespace exists, RBAC allows it) by
    /// creating it empty, so the write after init is a patch that is very unlikely to fail; and
    /// say who is about to initialise (an existing Secret without keys gets the claim). With
    /// file-only custody the claim goes into a file beside the key file.
    pub async fn reserve(&self, claim: &Claim) -> Result<(), StepError> {
        let Some(name) = &self.secret else {
            return self.write_claim_file(claim);
        };
        let annotations = json!({
            RESERVED_ANNOTATION: "keys are written here right after OpenBao answers sys/init",
            CLAIM_ANNOTATION: serde_json::to_string(claim).unwrap_or_default(),
        });
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": name.name, "namespace": name.namespace,
                "labels": {"app.kubernetes.io/managed-by": "bringup"},
                "annotations": annotations,
            },
        });
        let refused = |e: ClusterError| {
            StepError::Failed(format!(
                "cannot create the custody Secret {name} before initialising OpenBao (nothing was initialised): {e}"
            ))
        };
        match self.cluster.create(&secret).await {
            Ok(_) => Ok(()),
            Err(ClusterError::AlreadyExists { .. }) => {
                let patch = json!({"metadata": {"annotations": annotations}});
                self.patch_secret(name, &patch).await.map_err(refused)
            }
            Err(e) => Err(refused(e)),
        }
    }

    /// The claim on a reserved Secret that holds no keys yet: some process is initialising.
    pub async fn pending_claim(&self) -> Result<Option<Claim>, StepError> {
        if self.secret.is_none() {
            return Ok(self
                .claim_file()
                .filter(|path| {
                    self.file.as_ref().is_some_and(|keys| !keys.exists()) && path.exists()
                })
                .and_then(|path| std::fs::read_to_string(path).ok())
                .and_then(|text| serde_json::from_str(&text).ok()));
        }
        let Some((_, secret)) = self.secret_object().await? else {
            return Ok(None);
        };
        let has_keys = secret["data"]
            .as_object()
            .is_some_and(|data| data.contains_key(&format!("{UNSEAL_KEY_PREFIX}0")));
        let claim = secret["metadata"]["annotations"][CLAIM_ANNOTATION]
            .as_str()
            .and_then(|text| serde_json::from_str(text).ok());
        Ok(claim.filter(|_| !has_keys))
    }

    /// `<key file>.claim`, where file-only custody keeps its claim.
    fn claim_file(&self) -> Option<PathBuf> {
        let keys = self.file.as_ref()?;
        let mut name = keys.file_name()?.to_os_string();
        name.push(".claim");
        Some(keys.with_file_name(name))
    }

    fn write_claim_file(&self, claim: &Claim) -> Result<(), StepError> {
        let Some(path) = self.claim_file() else {
            return Ok(());
        };
        let text = serde_json::to_string(claim).unwrap_or_default();
        std::fs::write(&path, text).map_err(|e| {
            StepError::Failed(format!(
                "cannot write {} before initialising OpenBao (nothing was initialised): {e}",
                path.display()
            ))
        })
    }

    /// Writes a new key file: created exclusively with mode 0600, then fsynced with its
    /// directory, so the keys survive a crash the moment this returns. Never overwrites. The
    /// keys end a claim kept beside the file.
    pub fn write_file(&self, keys: &StoredKeys) -> Result<(), StepError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        write_new_private_file(path, keys).map_err(|e| {
            StepError::Failed(format!("writing the key file {}: {e}", path.display()))
        })?;
        if let Some(claim) = self.claim_file() {
            let _ = std::fs::remove_file(claim);
        }
        Ok(())
    }

    /// Writes the keys into the (reserved) Secret, with retries: this is the write that must
    /// not be lost.
    pub async fn write_secret(&self, keys: &StoredKeys) -> Result<(), StepError> {
        let Some(name) = &self.secret else {
            return Ok(());
        };
        let mut data = serde_json::Map::new();
        let encode =
            |text: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(text));
        for (index, key) in keys.unseal_keys_b64.iter().enumerate() {
            data.insert(format!("{UNSEAL_KEY_PREFIX}{index}"), encode(key));
        }
        if let Some(token) = &keys.root_token {
            data.insert(ROOT_TOKEN_KEY.into(), encode(token));
        }
        if let Some(token) = &keys.root_token_pgp {
            data.insert(ROOT_TOKEN_PGP_KEY.into(), encode(token));
        }
        if keys.unseal_keys_pgp {
            data.insert(KEYS_PGP_KEY.into(), encode("true"));
        }
        let patch = json!({"metadata": {"annotations": {RESERVED_ANNOTATION: null, CLAIM_ANNOTATION: null}}, "data": data});
        let mut last = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            match self.patch_secret(name, &patch).await {
                Ok(()) => return Ok(()),
                Err(ClusterError::NotFound { .. }) => {
                    let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": name.name, "namespace": name.namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "bringup"}},
                        "data": patch["data"].clone()});
                    secret["metadata"]
                        .as_object_mut()
                        .map(|m| m.remove("annotations"));
                    match self.cluster.create(&secret).await {
                        Ok(_) => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(StepError::Failed(format!(
            "writing the keys into Secret {name} failed: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// Sets or clears the root token in the Secret (the file is never rewritten).
    pub async fn set_root_token(
        &self,
        token: Option<&str>,
        revoked: bool,
    ) -> Result<(), StepError> {
        let Some(name) = &self.secret else {
            return Ok(());
        };
        let encode =
            |text: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(text));
        let patch = json!({"data": {
            ROOT_TOKEN_KEY: token.map(encode).unwrap_or(Value::Null),
            ROOT_TOKEN_REVOKED_KEY: if revoked { encode("true") } else { Value::Null },
        }});
        Ok(self.patch_secret(name, &patch).await?)
    }

    /// A JSON merge patch of the custody Secret.
    async fn patch_secret(&self, name: &ObjectName, patch: &Value) -> Result<(), ClusterError> {
        self.cluster
            .merge_patch(&TypeRef::secret(), Some(&name.namespace), &name.name, patch)
            .await
            .map(drop)
    }
}

fn write_new_private_file(path: &Path, keys: &StoredKeys) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let text = serde_json::to_string_pretty(keys).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The last resort when the Secret write failed after `sys/init` and no file was configured:
/// a 0600 file in the working directory, so the keys outlive this process.
pub fn emergency_file(keys: &StoredKeys) -> Result<PathBuf, std::io::Error> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let path = PathBuf::from(format!("vault-init-{stamp}.json"));
    write_new_private_file(&path, keys)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::Claim;
    use chrono::{Duration, Utc};

    #[test]
    fn a_claim_is_waited_for_only_while_its_process_may_still_store_keys() {
        let now = Utc::now();
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let here = |pid| Claim {
            host: crate::engine::lock::hostname(),
            pid,
            until: now + Duration::seconds(60),
        };
        assert!(here(other.id()).may_be_running(now), "a live process here");
        assert!(
            !here(other.id()).may_be_running(now + Duration::seconds(61)),
            "not past `until`"
        );
        assert!(
            !Claim::mine(std::time::Duration::from_secs(60)).may_be_running(now),
            "not this process itself (a retry of the step)"
        );
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(
            !here(other.id()).may_be_running(now),
            "a process that is gone"
        );
        let elsewhere = Claim {
            host: "another-machine.invalid".into(),
            ..here(other.id())
        };
        assert!(
            elsewhere.may_be_running(now),
            "another machine's process cannot be checked: it is given until `until`"
        );
        assert!(!elsewhere.may_be_running(now + Duration::seconds(61)));
    }
}
