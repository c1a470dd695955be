//! `vault-root-token`: revoke the root token once configuration is done (custody keeps a
//! `root_token_revoked` marker instead of a dead token), or make a new one from the stored
//! unseal keys with generate-root and put it in custody.

use reqwest::Method;

use super::custody::Custody;
use super::endpoint::Endpoint;
use super::token;
use crate::phase::model::{RootTokenAction, VaultRootTokenStep};
use crate::steps::{Applied, Probe, StepContext, StepError};

pub async fn probe(ctx: &StepContext<'_>, spec: &VaultRootTokenStep) -> Result<Probe, StepError> {
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let stored = custody.read().await?;
    let root = stored
        .as_ref()
        .and_then(|k| k.root_token.clone().filter(|_| !k.root_token_revoked));
    let works = match &root {
        Some(root) => token::token_works(&endpoint.client.with_token(root)).await?,
        None => false,
    };
    Ok(match (spec.action, works) {
        (RootTokenAction::Revoke, false) => Probe::Done("no valid root token in custody".into()),
        (RootTokenAction::Revoke, true) => {
            Probe::NeedsWork("the root token in custody is valid".into())
        }
        (RootTokenAction::Generate, true) => {
            Probe::Done("the root token in custody is valid".into())
        }
        (RootTokenAction::Generate, false) => {
            Probe::NeedsWork("no valid root token in custody".into())
        }
    })
}

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultRootTokenStep) -> Result<Applied, StepError> {
    let id = ctx.full_id();
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let stored = custody.read().await?.ok_or_else(|| {
        StepError::Failed(format!(
            "step {id}: {} holds no keys; run the vault-init step first",
            custody.describe()
        ))
    })?;
    match spec.action {
        RootTokenAction::Revoke => {
            let Some(root) = stored
                .root_token
                .as_ref()
                .filter(|_| !stored.root_token_revoked)
            else {
                return Ok(Applied::Unchanged(
                    "the root token was already revoked".into(),
                ));
            };
            let client = endpoint.client.with_token(root);
            let outcome = if token::token_works(&client).await? {
                (ctx.progress)(format!("revoking the root token on {}", endpoint.name));
                client
                    .write(Method::POST, "auth/token/revoke-self", None)
                    .await?;
                "revoked the root token"
            } else {
                "the root token in custody was no longer valid"
            };
            custody.set_root_token(None, true).await?;
            Ok(Applied::Changed(format!(
                "{outcome}; {} marks it revoked",
                custody.describe()
            )))
        }
        RootTokenAction::Generate => {
            if let Some(root) = stored
                .root_token
                .as_ref()
                .filter(|_| !stored.root_token_revoked)
                && token::token_works(&endpoint.client.with_token(root)).await?
            {
                return Ok(Applied::Unchanged(
                    "the root token in custody is valid".into(),
                ));
            }
            let keys = stored.usable_keys().ok_or_else(|| {
                StepError::Failed(format!(
                    "step {id}: {} holds no plain unseal keys to run generate-root with",
                    custody.describe()
                ))
            })?;
            if custody.secret.is_none() {
                return Err(StepError::Failed(format!(
                    "step {id}: a generated root token needs a custody Secret to go to (the key file is never rewritten)"
                )));
            }
            (ctx.progress)(format!("generating a root token on {}", endpoint.name));
            let root = token::generate_root(ctx, &endpoint.client, keys).await?;
            custody.set_root_token(Some(&root), false).await?;
            Ok(Applied::Changed(format!(
                "generated a root token; it is in {}",
                custody.describe()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        BaoServer, Harness, from_yaml, init_step, initialised, unseal_step, url_target,
    };
    use crate::phase::model::{
        RootTokenAction, StepKind, VaultConfigStep, VaultCustody, VaultRootTokenStep,
    };
    use crate::steps::{Applied, Probe};

    fn root_step(server: &BaoServer, action: RootTokenAction) -> StepKind {
        StepKind::VaultRootToken(VaultRootTokenStep {
            vault: url_target(server),
            custody: VaultCustody::default(),
            action,
        })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_revoked_root_token_is_replaced_by_generate_root_and_config_still_works() {
        let server =
            BaoServer::start_node("n0", "disable_unauthed_generate_root_endpoints = false").await;
        let harness = Harness::new();
        let old_root = initialised(&harness, &server).await;

        let revoked = harness
            .apply(root_step(&server, RootTokenAction::Revoke))
            .await
            .unwrap();
        assert!(matches!(revoked, Applied::Changed(_)), "{revoked:?}");
        assert_eq!(
            server.get("auth/token/lookup-self", &old_root).await.0,
            403,
            "the old root token is dead"
        );
        assert_eq!(
            harness
                .secret_key("vault", "vault-init", "root_token_revoked")
                .as_deref(),
            Some("true")
        );
        assert_eq!(harness.custody().1, None);
        assert!(matches!(
            harness
                .apply(root_step(&server, RootTokenAction::Revoke))
                .await
                .unwrap(),
            Applied::Unchanged(_)
        ));
        assert!(matches!(
            harness
                .probe(root_step(&server, RootTokenAction::Revoke))
                .await
                .unwrap(),
            Probe::Done(_)
        ));

        // Configuration after the revoke: a temporary root token is made and revoked again.
        let mut config: VaultConfigStep = from_yaml(
            "vault: { url: x }\npolicies: { probe-only: 'path \"x/*\" { capabilities = [\"read\"] }' }",
        );
        config.vault = url_target(&server);
        let configured = harness.apply(StepKind::VaultConfig(config)).await.unwrap();
        assert!(matches!(configured, Applied::Changed(_)), "{configured:?}");
        assert_eq!(harness.custody().1, None, "the temporary token is not kept");

        assert!(matches!(
            harness
                .probe(root_step(&server, RootTokenAction::Generate))
                .await
                .unwrap(),
            Probe::NeedsWork(_)
        ));
        let generated = harness
            .apply(root_step(&server, RootTokenAction::Generate))
            .await
            .unwrap();
        assert!(matches!(generated, Applied::Changed(_)), "{generated:?}");
        let new_root = harness.custody().1.expect("a new root token in custody");
        assert_eq!(
            harness.secret_key("vault", "vault-init", "root_token_revoked"),
            None
        );
        let (status, lookup) = server.get("auth/token/lookup-self", &new_root).await;
        assert_eq!(status, 200);
        assert_eq!(lookup["data"]["policies"], serde_json::json!(["root"]));
        let (status, _) = server.get("sys/policies/acl/probe-only", &new_root).await;
        assert_eq!(status, 200);

        let (keys, _) = harness.custody();
        let mut canaries = keys;
        canaries.extend([old_root, new_root]);
        harness.assert_no_leak(&canaries);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn generate_root_explains_when_openbao_disabled_it() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        harness.apply(init_step(url_target(&server))).await.unwrap();
        harness
            .apply(unseal_step(url_target(&server)))
            .await
            .unwrap();
        server.wait_active().await;
        harness
            .apply(root_step(&server, RootTokenAction::Revoke))
            .await
            .unwrap();
        let error = harness
            .apply(root_step(&server, RootTokenAction::Generate))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("disable_unauthed_generate_root_endpoints = false"),
            "{error}"
        );
    }
}
