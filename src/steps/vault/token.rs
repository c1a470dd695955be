//! Vault tokens for the configuring kinds: a configured token, else the root token in custody,
//! else a temporary root token made from the stored unseal keys (generate-root), revoked when
//! the step ends. Also the generate-root OTP flow itself.

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use super::client::VaultClient;
use super::custody::Custody;
use crate::cluster::TypeRef;
use crate::phase::model::VaultToken;
use crate::steps::{StepContext, StepError};

/// A token in use by a step.
pub struct TokenLease {
    pub client: VaultClient,
    /// Made by generate-root for this step: revoked by [`TokenLease::release`].
    pub temporary: bool,
}

impl TokenLease {
    /// Revokes a temporary token; a configured or stored token is left alone.
    pub async fn release(self) -> Result<(), StepError> {
        if self.temporary {
            self.client
                .write(Method::POST, "auth/token/revoke-self", None)
                .await?;
        }
        Ok(())
    }
}

/// Whether the token is valid (`auth/token/lookup-self` answers 200; a read).
pub async fn token_works(client: &VaultClient) -> Result<bool, StepError> {
    let response = client
        .request(Method::GET, "auth/token/lookup-self", None)
        .await?;
    match response.status {
        200 => Ok(true),
        401 | 403 => Ok(false),
        _ => Err(client.unexpected(&Method::GET, "auth/token/lookup-self", &response)),
    }
}

/// A working token for `client`'s server, or an error saying what to do.
pub async fn obtain(
    ctx: &StepContext<'_>,
    client: &VaultClient,
    custody: &Custody,
    token: Option<&VaultToken>,
) -> Result<TokenLease, StepError> {
    let id = ctx.full_id();
    let mut tried = Vec::new();
    if let Some(token) = token {
        let r = &token.secret;
        let secret = ctx
            .cluster
            .get(
                &TypeRef::secret(),
                Some(&r.secret.namespace),
                &r.secret.name,
            )
            .await?;
        let value = secret
            .as_ref()
            .and_then(|s| s["data"][&r.key].as_str())
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok());
        match value {
            Some(value) => {
                ctx.redactor.register(&value);
                let candidate = client.with_token(value.trim());
                if token_works(&candidate).await? {
                    return Ok(TokenLease {
                        client: candidate,
                        temporary: false,
                    });
                }
                tried.push(format!("the token in {r} is not valid"));
            }
            None => tried.push(format!("Secret key {r} does not exist")),
        }
    }
    let stored = custody.read().await?;
    if token.is_none() {
        match stored
            .as_ref()
            .and_then(|k| k.root_token.as_ref().filter(|_| !k.root_token_revoked))
        {
            Some(root) => {
                let candidate = client.with_token(root);
                if token_works(&candidate).await? {
                    return Ok(TokenLease {
                        client: candidate,
                        temporary: false,
                    });
                }
                tried.push(format!(
                    "the root token in {} is not valid (revoked?)",
                    custody.describe()
                ));
            }
            None => tried.push(format!("{} holds no root token", custody.describe())),
        }
    }
    if let Some(keys) = stored.as_ref().and_then(|k| k.usable_keys()) {
        (ctx.progress)("making a temporary root token from the stored unseal keys".into());
        let root = generate_root(ctx, client, keys).await.map_err(|e| {
            StepError::Failed(format!(
                "step {id}: {}; and a temporary root token could not be made: {e}",
                tried.join("; ")
            ))
        })?;
        return Ok(TokenLease {
            client: client.with_token(&root),
            temporary: true,
        });
    }
    Err(StepError::Failed(format!(
        "step {id}: no usable OpenBao token: {}; and {} holds no usable unseal keys to make one. Put a token with the needed policies in a Secret and name it in `token: {{ secret: ns/name/key }}`",
        tried.join("; "),
        custody.describe()
    )))
}

/// generate-root with the OTP flow: start an attempt, give each key with the nonce until
/// complete, then XOR the decoded token with the OTP. Every intermediate value is registered
/// with the redactor the moment it arrives.
pub async fn generate_root(
    ctx: &StepContext<'_>,
    client: &VaultClient,
    keys: &[String],
) -> Result<String, StepError> {
    let client = client.without_token();
    let attempt = "sys/generate-root/attempt";
    let current = client.request(Method::GET, attempt, None).await?;
    if current.status == 405 {
        return Err(unauthed_generate_root_disabled(&client));
    }
    if current.body["started"].as_bool() == Some(true) {
        // An attempt from a run that died: its OTP is gone, so it can never be completed.
        client.write(Method::DELETE, attempt, None).await?;
    }
    let started = client
        .request(Method::PUT, attempt, Some(&json!({})))
        .await?;
    if started.status == 405 {
        return Err(unauthed_generate_root_disabled(&client));
    }
    if !started.is_success() {
        return Err(client.unexpected(&Method::PUT, attempt, &started));
    }
    let otp = started.body["otp"].as_str().unwrap_or_default().to_string();
    ctx.redactor.register(&otp);
    let nonce = started.body["nonce"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if otp.is_empty() || nonce.is_empty() {
        return Err(StepError::Failed(format!(
            "OpenBao {}: generate-root started without an OTP or a nonce",
            client.label()
        )));
    }
    let mut encoded = None;
    for key in keys {
        let answer = client
            .write(
                Method::PUT,
                "sys/generate-root/update",
                Some(&json!({"key": key, "nonce": nonce})),
            )
            .await?;
        if answer["complete"].as_bool() == Some(true) {
            let token = answer["encoded_token"]
                .as_str()
                .or(answer["encoded_root_token"].as_str())
                .unwrap_or_default();
            ctx.redactor.register(token);
            encoded = Some(token.to_string());
            break;
        }
    }
    let Some(encoded) = encoded else {
        let _ = client.request(Method::DELETE, attempt, None).await;
        return Err(StepError::Failed(format!(
            "OpenBao {}: generate-root did not complete with the {} stored keys (are they this server's keys?)",
            client.label(),
            keys.len()
        )));
    };
    let token = decode_root_token(&encoded, &otp).ok_or_else(|| {
        StepError::Failed(format!(
            "OpenBao {}: the generate-root answer could not be decoded with the OTP",
            client.label()
        ))
    })?;
    ctx.redactor.register(&token);
    Ok(token)
}

fn unauthed_generate_root_disabled(client: &VaultClient) -> StepError {
    StepError::Failed(format!(
        "OpenBao {}: sys/generate-root answered 405: OpenBao 2.5.3 and later disable the unauthenticated generate-root endpoints by default. \
         Set `disable_unauthed_generate_root_endpoints = false` on the listener for the time of this run, or put a token in a Secret and name it in `token:`",
        client.label()
    ))
}

/// `XOR(base64-raw-std-decode(encoded), otp)`.
pub fn decode_root_token(encoded: &str, otp: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .ok()?;
    if raw.len() != otp.len() {
        return None;
    }
    String::from_utf8(raw.iter().zip(otp.as_bytes()).map(|(a, b)| a ^ b).collect()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_otp_encoded_token() {
        let otp = "abcdefghijklmnopqrstuvwxyz01";
        let token = "s.0123456789ABCDEFGHIJKLMNO";
        let token = &token[..otp.len().min(token.len())];
        let otp = &otp[..token.len()];
        let xored: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored);
        assert_eq!(decode_root_token(&encoded, otp).as_deref(), Some(token));
        assert_eq!(decode_root_token(&encoded, "short"), None);
    }
}
