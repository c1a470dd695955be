//! `vault-init`: initialise OpenBao once and put the unseal keys and root token in custody
//! before anything else happens. Stored keys are never overwritten; keys stored while OpenBao
//! says it is uninitialised mean its storage was wiped, and the step stops without a change.

use reqwest::Method;
use serde_json::json;

use super::custody::{self, Claim, Custody, StoredKeys};
use super::endpoint::Endpoint;
use crate::engine::redact::Redactor;
use crate::phase::model::VaultInitStep;
use crate::steps::{Applied, Probe, StepContext, StepError};

/// Read-only: initialised with keys stored → done.
pub async fn probe(ctx: &StepContext<'_>, spec: &VaultInitStep) -> Result<Probe, StepError> {
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let mut stored = custody.read().await?.is_some();
    if !stored {
        // Before OpenBao is asked anything: it holds `GET sys/init` while an init is under way.
        if let Some(claim) = custody.pending_claim().await?
            && claim.may_be_running(chrono::Utc::now())
        {
            return Ok(Probe::Unknown(format!(
                "OpenBao is being initialised by {claim}; its keys go to {}",
                custody.describe()
            )));
        }
        // A claimant that finished between the two reads has stored its keys.
        stored = custody.read().await?.is_some();
    }
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let initialized = initialized(&endpoint).await?;
    Ok(match (initialized, stored) {
        (true, true) => Probe::Done(format!(
            "OpenBao {} is initialised; its keys are in {}",
            endpoint.name,
            custody.describe()
        )),
        (false, false) => Probe::NeedsWork(format!("OpenBao {} is not initialised", endpoint.name)),
        (true, false) => Probe::Unknown(format!(
            "OpenBao {} is initialised but {} holds no keys",
            endpoint.name,
            custody.describe()
        )),
        (false, true) => Probe::Unknown(format!(
            "keys are stored in {} but OpenBao {} is not initialised (wiped storage?)",
            custody.describe(),
            endpoint.name
        )),
    })
}

/// How long a claim on the custody Secret holds off another run when its process cannot be
/// checked (another machine): the worker's own bound, the init request's timeout and the
/// custody write's retries, with room to spare.
pub const CLAIM_FOR: std::time::Duration = std::time::Duration::from_secs(180);

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultInitStep) -> Result<Applied, StepError> {
    let id = ctx.full_id();
    check_spec(&id, spec)?;
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let name = &endpoint.name;
    wait_for_claim(ctx, &custody).await?;
    let initialized = initialized(&endpoint).await?;
    let in_secret = custody.read_secret().await?;
    let in_file = custody.read_file()?;

    if initialized {
        if in_secret.is_some() || (custody.secret.is_none() && in_file.is_some()) {
            return Ok(Applied::Unchanged(format!(
                "OpenBao {name} is initialised; its keys are in {}",
                custody.describe()
            )));
        }
        if let Some(keys) = in_file {
            (ctx.progress)(format!(
                "storing the keys from {} into the custody Secret",
                custody.describe()
            ));
            custody.write_secret(&keys).await?;
            return Ok(Applied::Changed(format!(
                "OpenBao {name} was initialised by an interrupted run; its keys were recovered from the key file into {}",
                custody.describe()
            )));
        }
        // A claim left behind names the process that sent sys/init and died before storing.
        let how = match custody.pending_claim().await? {
            Some(claim) => format!(
                "It was initialised by {claim}, bringup's init worker, which ended (killed, or its machine lost) before it stored OpenBao's answer."
            ),
            None => "Either it was initialised outside bringup, or bringup's init worker was killed (SIGKILL, a machine lost) before it stored OpenBao's answer.".to_string(),
        };
        return Err(StepError::Failed(format!(
            "step {id}: OpenBao {name} is already initialised but {} holds no unseal keys. {how} If you hold the keys, store them as {} (`{}0`.. and `{}`) and re-run; \
             if a `vault-init-*.json` file was left in the working directory, it holds them. Without the keys this OpenBao cannot be unsealed again: \
             re-initialising means wiping its storage and every secret in it",
            custody.describe(),
            custody
                .secret
                .as_ref()
                .map(|s| format!("Secret {s}"))
                .unwrap_or_else(|| "the key file".into()),
            custody::UNSEAL_KEY_PREFIX,
            custody::ROOT_TOKEN_KEY,
        )));
    }

    if in_secret.is_some() || in_file.is_some() {
        return Err(StepError::Failed(format!(
            "step {id}: {} holds unseal keys but OpenBao {name} says it is not initialised: its storage was wiped or replaced. \
             Nothing was changed. If the old data can be restored (volume snapshot, raft snapshot), restore it and re-run; \
             to start over with an empty OpenBao, move the old keys away by hand (delete or rename {}) and re-run",
            custody.describe(),
            custody.describe(),
        )));
    }

    if let Some(outcome) = super::init_worker::run(ctx, &endpoint, &custody, spec).await {
        return outcome;
    }
    keep(&id, &endpoint, &custody, spec, ctx.redactor, ctx.progress).await
}

/// The irreversible part: reserve custody, `PUT sys/init`, and store what OpenBao answers.
/// Run by the init worker (a detached process that outlives a killed `bringup`), or in this
/// process when no worker can be started.
pub async fn keep(
    id: &str,
    endpoint: &Endpoint,
    custody: &Custody,
    spec: &VaultInitStep,
    redactor: &Redactor,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Applied, StepError> {
    let name = &endpoint.name;
    custody.reserve(&Claim::mine(CLAIM_FOR)).await?;
    progress(format!(
        "initialising OpenBao {name} ({} shares, threshold {})",
        spec.secret_shares, spec.secret_threshold
    ));
    let mut request =
        json!({"secret_shares": spec.secret_shares, "secret_threshold": spec.secret_threshold});
    if !spec.pgp_keys.is_empty() {
        request["pgp_keys"] = json!(spec.pgp_keys);
    }
    if let Some(key) = &spec.root_token_pgp_key {
        request["root_token_pgp_key"] = json!(key);
    }
    let answer = endpoint
        .client
        .write(Method::PUT, "sys/init", Some(&request))
        .await?;
    // From here until custody is written the keys exist only in this process: register them
    // first, then write the fsynced file, then the Secret.
    let keys = keys_from_answer(&answer, spec);
    for key in &keys.unseal_keys_b64 {
        redactor.register(key);
    }
    for key in answer["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
    {
        redactor.register(key);
    }
    for token in [&keys.root_token, &keys.root_token_pgp]
        .into_iter()
        .flatten()
    {
        redactor.register(token);
    }
    if keys.unseal_keys_b64.is_empty() {
        return Err(StepError::Failed(format!(
            "step {id}: OpenBao {name} answered sys/init without keys (auto-unseal seal?); nothing stored"
        )));
    }
    let file_result = custody.write_file(&keys);
    let secret_result = custody.write_secret(&keys).await;
    match (file_result, secret_result) {
        (Ok(()), Ok(())) => Ok(Applied::Changed(format!(
            "initialised OpenBao {name}; {} unseal keys and the root token are in {}",
            keys.unseal_keys_b64.len(),
            custody.describe()
        ))),
        (file_result, secret_result) => {
            let mut problems = Vec::new();
            let mut safe = Vec::new();
            match file_result {
                Err(e) => problems.push(e.to_string()),
                Ok(()) if custody.file.is_some() => {
                    safe.push(custody.file.as_ref().unwrap().display().to_string())
                }
                Ok(()) => {}
            }
            match secret_result {
                Err(e) => problems.push(e.to_string()),
                Ok(()) if custody.secret.is_some() => {
                    safe.push(format!("Secret {}", custody.secret.as_ref().unwrap()))
                }
                Ok(()) => {}
            }
            if safe.is_empty() {
                match custody::emergency_file(&keys) {
                    Ok(path) => safe.push(format!(
                        "the emergency file {} (0600; move it somewhere safe now)",
                        path.display()
                    )),
                    Err(e) => problems.push(format!(
                        "writing an emergency key file in the working directory: {e}"
                    )),
                }
            }
            let kept = if safe.is_empty() {
                "THE KEYS ARE LOST: OpenBao must be wiped and initialised again".to_string()
            } else {
                format!("the keys are in {}", safe.join(" and "))
            };
            Err(StepError::Failed(format!(
                "step {id}: OpenBao {name} was initialised but custody failed: {}; {kept}",
                problems.join("; ")
            )))
        }
    }
}

/// An interrupted run's init worker may still be between `sys/init` and the custody write:
/// while the process that claimed the custody Secret lives, wait for it to store the keys.
async fn wait_for_claim(ctx: &StepContext<'_>, custody: &Custody) -> Result<(), StepError> {
    let mut told = false;
    while let Some(claim) = custody.pending_claim().await? {
        if !claim.may_be_running(chrono::Utc::now()) {
            break;
        }
        if !told {
            (ctx.progress)(format!(
                "waiting for {claim}, which is initialising OpenBao for an interrupted run, to store the keys in {}",
                custody.describe()
            ));
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(())
}

fn check_spec(id: &str, spec: &VaultInitStep) -> Result<(), StepError> {
    if spec.secret_threshold == 0 || spec.secret_threshold > spec.secret_shares {
        return Err(StepError::Failed(format!(
            "step {id}: secret_threshold {} must be between 1 and secret_shares {}",
            spec.secret_threshold, spec.secret_shares
        )));
    }
    if !spec.pgp_keys.is_empty() && spec.pgp_keys.len() != usize::from(spec.secret_shares) {
        return Err(StepError::Failed(format!(
            "step {id}: pgp_keys needs one key per share ({})",
            spec.secret_shares
        )));
    }
    Ok(())
}

async fn initialized(endpoint: &Endpoint) -> Result<bool, StepError> {
    let body = endpoint.client.read("sys/init").await?.unwrap_or_default();
    body["initialized"].as_bool().ok_or_else(|| {
        StepError::Failed(format!(
            "OpenBao {}: sys/init answered without `initialized`",
            endpoint.name
        ))
    })
}

fn keys_from_answer(answer: &serde_json::Value, spec: &VaultInitStep) -> StoredKeys {
    let strings = |v: &serde_json::Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let token = answer["root_token"].as_str().map(str::to_string);
    StoredKeys {
        unseal_keys_b64: strings(&answer["keys_base64"]),
        root_token: token.clone().filter(|_| spec.root_token_pgp_key.is_none()),
        root_token_pgp: token.filter(|_| spec.root_token_pgp_key.is_some()),
        unseal_keys_pgp: !spec.pgp_keys.is_empty(),
        root_token_revoked: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BaoServer, Harness, init_step, requests, url_target, writes};
    use crate::cluster::TypeRef;
    use crate::phase::model::{StepKind, VaultCustody};
    use crate::steps::{Applied, Probe};

    #[tokio::test(flavor = "multi_thread")]
    async fn init_stores_the_keys_once_and_never_shows_them() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        let probe = harness.probe(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(probe, Probe::NeedsWork(_)), "{probe:?}");
        assert!(writes(server.port).is_empty(), "a probe writes nothing");
        assert!(
            harness.fake().mutating_calls().is_empty(),
            "a probe changes no object"
        );

        let first = harness.apply(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(first, Applied::Changed(_)), "{first:?}");
        let (keys, root) = harness.custody();
        assert_eq!(keys.len(), 3);
        let root = root.expect("root token stored");
        let (_, status) = server.get("sys/seal-status", "").await;
        assert_eq!(status["initialized"], true);
        assert_eq!(status["n"], 3);
        assert_eq!(status["t"], 2);

        let second = harness.apply(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(second, Applied::Unchanged(_)), "{second:?}");
        let inits: Vec<_> = writes(server.port)
            .into_iter()
            .filter(|(_, p)| p == "sys/init")
            .collect();
        assert_eq!(
            inits.len(),
            1,
            "sys/init written once: {:?}",
            requests(server.port)
        );
        assert!(matches!(
            harness.probe(init_step(url_target(&server))).await.unwrap(),
            Probe::Done(_)
        ));

        let mut canaries = keys.clone();
        canaries.push(root.clone());
        harness.assert_no_leak(&canaries);
        assert_eq!(
            harness.redactor.redact(&format!("{} {root}", keys[0])),
            "[redacted] [redacted]"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wiped_storage_with_stored_keys_stops_and_touches_nothing() {
        let mut server = BaoServer::start().await;
        let harness = Harness::new();
        harness.apply(init_step(url_target(&server))).await.unwrap();
        let before = harness
            .fake()
            .object(&TypeRef::secret(), Some("vault"), "vault-init")
            .unwrap();
        server.wipe().await;
        let writes_before = writes(server.port).len();

        let error = harness
            .apply(init_step(url_target(&server)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Secret vault/vault-init") && error.contains("wiped"),
            "{error}"
        );
        assert!(error.contains("Nothing was changed"), "{error}");
        let after = harness
            .fake()
            .object(&TypeRef::secret(), Some("vault"), "vault-init")
            .unwrap();
        assert_eq!(before, after, "the keys Secret is untouched");
        assert_eq!(
            writes(server.port).len(),
            writes_before,
            "no write to OpenBao"
        );
        let (_, status) = server.get("sys/init", "").await;
        assert_eq!(status["initialized"], false);
        assert!(matches!(
            harness.probe(init_step(url_target(&server))).await.unwrap(),
            Probe::Unknown(_)
        ));
        let (keys, root) = harness.custody();
        let mut canaries = keys;
        canaries.extend(root);
        harness.assert_no_leak(&canaries);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_killed_after_reserving_the_secret_initialises_on_rerun() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        // What a run killed between reserving the Secret and sys/init leaves: an empty Secret.
        harness
            .fake()
            .insert(serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "vault-init", "namespace": "vault",
                         "annotations": {super::custody::RESERVED_ANNOTATION: "pending"}}}));
        let applied = harness.apply(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(applied, Applied::Changed(_)), "{applied:?}");
        assert_eq!(harness.custody().0.len(), 3);
        let secret = harness
            .fake()
            .object(&TypeRef::secret(), Some("vault"), "vault-init")
            .unwrap();
        assert!(
            secret["metadata"]["annotations"]
                .get(super::custody::RESERVED_ANNOTATION)
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn initialised_without_stored_keys_explains_recovery() {
        let server = BaoServer::start().await;
        server.init_outside(1, 1).await;
        let harness = Harness::new();
        let error = harness
            .apply(init_step(url_target(&server)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("already initialised") && error.contains("holds no unseal keys"),
            "{error}"
        );
        assert!(
            error.contains("unseal_key_0"),
            "names the layout to restore: {error}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_run_killed_before_the_secret_write_recovers_from_the_key_file() {
        let server = BaoServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.json");
        let harness = Harness::new();
        let custody = VaultCustody {
            secret: Some("vault/vault-init".parse().unwrap()),
            file: Some(file.clone()),
        };
        let step = |custody: VaultCustody| {
            let StepKind::VaultInit(mut spec) = init_step(url_target(&server)) else {
                unreachable!()
            };
            spec.custody = custody;
            StepKind::VaultInit(spec)
        };
        harness.apply(step(custody.clone())).await.unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (keys, _) = harness.custody();

        // The state a kill between the file write and the Secret write leaves behind.
        harness
            .fake()
            .insert(serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "vault-init", "namespace": "vault"}}));
        let recovered = harness.apply(step(custody)).await.unwrap();
        assert!(
            matches!(&recovered, Applied::Changed(m) if m.contains("recovered")),
            "{recovered:?}"
        );
        assert_eq!(harness.custody().0, keys);
        harness.assert_no_leak(&keys);
    }

    /// A reserved custody Secret claimed by process `pid` of this machine.
    fn claimed_secret(pid: u32) -> serde_json::Value {
        let claim = super::custody::Claim {
            host: crate::engine::lock::hostname(),
            pid,
            until: chrono::Utc::now() + chrono::Duration::seconds(60),
        };
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "vault-init", "namespace": "vault", "annotations": {
                super::custody::RESERVED_ANNOTATION: "pending",
                super::custody::CLAIM_ANNOTATION: serde_json::to_string(&claim).unwrap()}}})
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_rerun_waits_for_a_live_claimant_to_store_the_keys_and_inits_nothing() {
        use base64::Engine as _;
        let server = BaoServer::start().await;
        // An interrupted run's worker: OpenBao is initialised, its keys are on their way.
        let answer = server.init_outside(3, 2).await;
        let mut worker = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let harness = Harness::new();
        harness.fake().insert(claimed_secret(worker.id()));
        let fake = harness.fake().clone();
        let keys: Vec<String> = answer["keys_base64"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let stored = keys.clone();
        let storing = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            let encode = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
            let data: serde_json::Map<_, _> = stored
                .iter()
                .enumerate()
                .map(|(i, k)| (format!("unseal_key_{i}"), encode(k).into()))
                .collect();
            use crate::cluster::Cluster as _;
            fake.merge_patch(
                &TypeRef::secret(),
                Some("vault"),
                "vault-init",
                &serde_json::json!({"data": data, "metadata": {"annotations": {
                    super::custody::RESERVED_ANNOTATION: null, super::custody::CLAIM_ANNOTATION: null}}}),
            )
            .await
            .unwrap();
        });
        let probe = harness.probe(init_step(url_target(&server))).await.unwrap();
        assert!(
            matches!(&probe, Probe::Unknown(m) if m.contains(&format!("being initialised by process {}", worker.id()))),
            "{probe:?}"
        );
        let applied = harness.apply(init_step(url_target(&server))).await.unwrap();
        storing.await.unwrap();
        worker.kill().unwrap();
        let _ = worker.wait();
        assert!(matches!(applied, Applied::Unchanged(_)), "{applied:?}");
        assert_eq!(harness.custody().0, keys, "the claimant's keys, untouched");
        let messages = harness.messages.lock().unwrap().clone();
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("waiting for process")),
            "{messages:?}"
        );
        assert_eq!(
            writes(server.port),
            vec![],
            "bringup wrote nothing to OpenBao (the claimant's init came from outside)"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_claim_whose_process_is_gone_is_not_waited_for() {
        let server = BaoServer::start().await;
        let pid = crate::engine::testing::gone_pid();
        let harness = Harness::new();
        harness.fake().insert(claimed_secret(pid));
        let applied = harness.apply(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(applied, Applied::Changed(_)), "{applied:?}");
        assert_eq!(harness.custody().0.len(), 3);
        let messages = harness.messages.lock().unwrap().clone();
        assert!(
            !messages.iter().any(|m| m.starts_with("waiting for")),
            "{messages:?}"
        );
        let secret = harness
            .fake()
            .object(&TypeRef::secret(), Some("vault"), "vault-init")
            .unwrap();
        assert!(
            secret["metadata"]["annotations"]
                .get(super::custody::CLAIM_ANNOTATION)
                .is_none(),
            "the stored keys end the claim: {secret}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn initialised_with_a_dead_claimant_names_the_worker_that_lost_the_keys() {
        let server = BaoServer::start().await;
        // What a worker killed inside its own sys/init leaves: OpenBao initialised, the
        // Secret still reserved and claimed by a process that is gone.
        server.init_outside(1, 1).await;
        let pid = crate::engine::testing::gone_pid();
        let harness = Harness::new();
        harness.fake().insert(claimed_secret(pid));
        let error = harness
            .apply(init_step(url_target(&server)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("initialised by process {pid} on "))
                && error.contains("bringup's init worker, which ended"),
            "{error}"
        );
        assert!(writes(server.port).is_empty(), "nothing sent to OpenBao");
    }

    /// A PGP public key (ed25519 + cv25519, test only; its secret half was never kept).
    const TEST_PGP_KEY: &str = "mDMEawOoMBYJKwYBBAHaRw8BAQdAPheou6Kg0AUPxOotmdqyqvEauGPgaErgkdj2nHRPI6q0I2JyaW5ndXAgdGVzdCA8dGVzdEBicmluZ3VwLmludmFsaWQ+iJYEExYIAD4WIQR/67Tkd9aUpdcCtMRmY+CvQguWBwUCawOoMAIbAQUJiYNXkAULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRBmY+CvQguWB2OpAP4ydV4l9E2cGd7vRKwD/f+eDnL3rOTxoXc+kfiEMQPJxQD/WPz2VyfXEIp/u79GBJY3jR1FgufospV0f/LIbfv/5g+4OARrA6gwEgorBgEEAZdVAQUBAQdAglEgxE65US9Sc9U+Q6SEPnf5UMK751fDGjMOdRaVwzQDAQgHiH4EGBYIACYWIQR/67Tkd9aUpdcCtMRmY+CvQguWBwUCawOoMAIbDAUJiYNXkAAKCRBmY+CvQguWB0oiAP4zAH8+gWMnzGlvX/VRJHKO1NlLSmLBsqMupFPba2N0mwEA6YMJNW/RZeCW6uCyTMfWJsU1p8vyxiR2sCjzIJDHbAE=";

    #[tokio::test(flavor = "multi_thread")]
    async fn pgp_encrypted_keys_are_stored_as_ciphertext_and_unseal_says_it_cannot_use_them() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        let StepKind::VaultInit(mut spec) = init_step(url_target(&server)) else {
            unreachable!()
        };
        spec.pgp_keys = vec![TEST_PGP_KEY.to_string(); 3];
        spec.root_token_pgp_key = Some(TEST_PGP_KEY.to_string());
        let applied = harness.apply(StepKind::VaultInit(spec)).await.unwrap();
        assert!(matches!(applied, Applied::Changed(_)), "{applied:?}");
        assert_eq!(harness.custody().0.len(), 3);
        assert_eq!(harness.custody().1, None, "no plain root token");
        assert!(
            harness
                .secret_key("vault", "vault-init", "root_token_pgp")
                .is_some()
        );
        assert_eq!(
            harness
                .secret_key("vault", "vault-init", "unseal_keys_pgp")
                .as_deref(),
            Some("true")
        );
        let error = harness
            .apply(super::super::testing::unseal_step(url_target(&server)))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("PGP-encrypted"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unwritable_custody_secret_stops_before_init() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        let StepKind::VaultInit(mut spec) = init_step(url_target(&server)) else {
            unreachable!()
        };
        spec.custody = VaultCustody {
            secret: Some("missing-namespace/vault-init".parse().unwrap()),
            file: None,
        };
        let error = harness
            .apply(StepKind::VaultInit(spec))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("nothing was initialised"), "{error}");
        let (_, status) = server.get("sys/init", "").await;
        assert_eq!(status["initialized"], false);
        assert!(writes(server.port).is_empty());
    }
}
