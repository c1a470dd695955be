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
    let root = stored.as_ref().and_then(|k| k.root_token.clone().filter(|_| !k.root_token_revoked));
    let works = match &root {
        Some(root) => token::token_works(&endpoint.client.with_token(root)).await?,
        None => false,
    };
    Ok(match (spec.action, works) {
        (RootTokenAction::Revoke, false) => Probe::Done("no valid root token in custody".into()),
        (RootTokenAction::Revoke, true) => Probe::NeedsWork("the root token in custody is valid".into()),
        (RootTokenAction::Generate, true) => Probe::Done("the root token in custody is valid".into()),
        (RootTokenAction::Generate, false) => Probe::NeedsWork("no valid root token in custody".into()),
    })
}

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultRootTokenStep) -> Result<Applied, StepError> {
    let id = ctx.full_id();
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let stored = custody.read().await?.ok_or_else(|| {
        StepError::Failed(format!("step {id}: {} holds no keys; run the vault-init step first", custody.describe()))
    })?;
    match spec.action {
        RootTokenAction::Revoke => {
            let Some(root) = stored.root_token.as_ref().filter(|_| !stored.root_token_revoked) else {
                return Ok(Applied::Unchanged("the root token was already revoked".into()));
            };
            let client = endpoint.client.with_token(root);
            let outcome = if token::token_works(&client).await? {
                (ctx.progress)(format!("revoking the root token on {}", endpoint.name));
                client.write(Method::POST, "auth/token/revoke-self", None).await?;
                "revoked the root token"
            } else {
                "the root token in custody was no longer valid"
            };
            custody.set_root_token(None, true).await?;
            Ok(Applied::Changed(format!("{outcome}; {} marks it revoked", custody.describe())))
        }
        RootTokenAction::Generate => {
            if let Some(root) = stored.root_token.as_ref().filter(|_| !stored.root_token_revoked)
                && token::token_works(&endpoint.client.with_token(root)).await?
            {
                return Ok(Applied::Unchanged("the root token in custody is valid".into()));
            }
            let keys = stored.usable_keys().ok_or_else(|| {
                StepError::Failed(format!("step {id}: {} holds no plain unseal keys to run generate-root with", custody.describe()))
            })?;
            if custody.secret.is_none() {
                return Err(StepError::Failed(format!(
                    "step {id}: a generated root token needs a custody Secret to go to (the key file is never rewritten)"
                )));
            }
            (ctx.progress)(format!("generating a root token on {}", endpoint.name));
            let root = token::generate_root(ctx, &endpoint.client, keys).await?;
            custody.set_root_token(Some(&root), false).await?;
            Ok(Applied::Changed(format!("generated a root token; it is in {}", custody.describe())))
        }
    }
}
