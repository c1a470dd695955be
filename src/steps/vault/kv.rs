//! `vault-kv`: seed KV v2 paths. Missing keys are generated and written with check-and-set on
//! the version read, so a concurrent write is never lost; an existing key is never rewritten.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::Rng as _;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::VaultClient;
use super::custody::Custody;
use super::endpoint::Endpoint;
use super::token;
use crate::phase::model::{Alphabet, Encoding, Generator, RandomSpec, VaultKvStep};
use crate::phase::template::Locals;
use crate::steps::{Applied, Probe, StepContext, StepError};

/// How often a path is re-read and re-written when someone else wrote it in between.
const CAS_ATTEMPTS: usize = 5;

/// How long a freshly enabled kv v2 mount may take to finish its upgrade.
const UPGRADE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Read-only: which keys are missing.
pub async fn probe(ctx: &StepContext<'_>, spec: &VaultKvStep) -> Result<Probe, StepError> {
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let stored = custody.read().await?;
    let Some(root) = stored
        .and_then(|k| k.root_token.filter(|_| !k.root_token_revoked))
        .filter(|_| spec.token.is_none())
    else {
        return Ok(Probe::Unknown(
            "no stored root token to read KV with".into(),
        ));
    };
    let client = endpoint.client.with_token(&root);
    let mut missing = Vec::new();
    for (path, keys) in &spec.paths {
        let (_, data) = read(&client, &spec.mount, path).await?;
        missing.extend(
            keys.keys()
                .filter(|k| !data.contains_key(*k))
                .map(|k| format!("{path}:{k}")),
        );
    }
    Ok(if missing.is_empty() {
        Probe::Done("every key present".into())
    } else {
        Probe::NeedsWork(format!("missing {}", missing.join(", ")))
    })
}

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultKvStep) -> Result<Applied, StepError> {
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let lease = token::obtain(ctx, &endpoint.client, &custody, spec.token.as_ref()).await?;
    let mut written = Vec::new();
    let mut result = Ok(());
    for (path, keys) in &spec.paths {
        match seed(ctx, &lease.client, &spec.mount, path, keys).await {
            Ok(added) if added.is_empty() => {}
            Ok(added) => written.push(format!("{path} ({})", added.join(", "))),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let released = lease.release().await;
    result?;
    released?;
    Ok(if written.is_empty() {
        Applied::Unchanged("every key present".into())
    } else {
        Applied::Changed(format!("seeded {}", written.join("; ")))
    })
}

/// `(version, data)` of the path's current version; `(0, {})` when it was never written. A
/// deleted current version reads 404 but still carries its version number, which CAS needs.
async fn read(
    client: &VaultClient,
    mount: &str,
    path: &str,
) -> Result<(u64, Map<String, Value>), StepError> {
    let api_path = format!("{mount}/data/{path}");
    let deadline = std::time::Instant::now() + UPGRADE_WAIT;
    let mut response = client.request(Method::GET, &api_path, None).await?;
    // A kv v2 mount enabled a moment ago (by the vault-config step just before) answers 400
    // "Upgrading from non-versioned to versioned data" until it is ready.
    while response.status == 400
        && super::client::error_text(&response.body).contains("Upgrading")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        response = client.request(Method::GET, &api_path, None).await?;
    }
    match response.status {
        200 | 404 => {
            let version = response.body["data"]["metadata"]["version"]
                .as_u64()
                .unwrap_or(0);
            let data = response.body["data"]["data"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for value in data.values() {
                // Existing values are secrets too: a later error must not echo them.
                if let Some(text) = value.as_str() {
                    client.redactor().register(text);
                }
            }
            Ok((version, data))
        }
        _ => Err(client.unexpected(&Method::GET, &api_path, &response)),
    }
}

async fn seed(
    ctx: &StepContext<'_>,
    client: &VaultClient,
    mount: &str,
    path: &str,
    keys: &BTreeMap<String, Generator>,
) -> Result<Vec<String>, StepError> {
    let api_path = format!("{mount}/data/{path}");
    for _ in 0..CAS_ATTEMPTS {
        let (version, mut data) = read(client, mount, path).await?;
        let missing: Vec<&String> = keys.keys().filter(|k| !data.contains_key(*k)).collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        // Plain values first, so an htpasswd key can hash a password made in the same run.
        let mut ordered = missing.clone();
        ordered.sort_by_key(|k| matches!(keys[*k], Generator::Htpasswd(_)));
        for key in &ordered {
            let value = generate(ctx, path, key, &keys[*key], &data)?;
            ctx.redactor.register(&value);
            data.insert((*key).clone(), json!(value));
        }
        (ctx.progress)(format!(
            "writing {} missing key(s) at {mount}/{path}",
            missing.len()
        ));
        let response = client
            .request(
                Method::POST,
                &api_path,
                Some(&json!({"options": {"cas": version}, "data": data})),
            )
            .await?;
        if response.is_success() {
            return Ok(missing.into_iter().cloned().collect());
        }
        let detail = super::client::error_text(&response.body);
        if !(response.status == 400 && detail.contains("check-and-set")) {
            return Err(client.unexpected(&Method::POST, &api_path, &response));
        }
        // Someone wrote the path since we read it: read again and fill in only what is still missing.
    }
    Err(StepError::Transient(format!(
        "OpenBao {}: {mount}/{path} kept changing under check-and-set; it is retried",
        client.label()
    )))
}

fn generate(
    ctx: &StepContext<'_>,
    path: &str,
    key: &str,
    generator: &Generator,
    data: &Map<String, Value>,
) -> Result<String, StepError> {
    Ok(match generator {
        Generator::Random(spec) => random(spec),
        Generator::Template(template) => ctx.templates.render(template, &Locals::default())?,
        Generator::File(file) => std::fs::read_to_string(file).map_err(|e| {
            StepError::Failed(format!(
                "step {}: {path}:{key} from file {}: {e}",
                ctx.full_id(),
                file.display()
            ))
        })?,
        Generator::Htpasswd(spec) => {
            let password = data
                .get(&spec.password_key)
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "step {}: {path}:{key} hashes key {} which this path does not have",
                        ctx.full_id(),
                        spec.password_key
                    ))
                })?;
            let hash = bcrypt::hash_with_result(password, bcrypt::DEFAULT_COST).map_err(|e| {
                StepError::Failed(format!("step {}: {path}:{key}: bcrypt: {e}", ctx.full_id()))
            })?;
            format!(
                "{}:{}",
                spec.username,
                hash.format_for_version(bcrypt::Version::TwoY)
            )
        }
    })
}

/// Random characters from the alphabet, or random bytes in the encoding.
pub fn random(spec: &RandomSpec) -> String {
    let mut rng = rand::rng();
    if let Some(encoding) = spec.encoding {
        let mut bytes = vec![0u8; spec.length];
        rng.fill(bytes.as_mut_slice());
        return match encoding {
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
            Encoding::Hex => hex::encode(bytes),
        };
    }
    let chars: Vec<char> = match spec.alphabet.as_ref().unwrap_or(&Alphabet::Alnum) {
        Alphabet::Alnum => ('A'..='Z').chain('a'..='z').chain('0'..='9').collect(),
        Alphabet::AlnumSymbols => ('A'..='Z')
            .chain('a'..='z')
            .chain('0'..='9')
            .chain("!#%+,-.:=?@^_~".chars())
            .collect(),
        Alphabet::Hex => ('0'..='9').chain('a'..='f').collect(),
        Alphabet::Chars(chars) => chars.chars().collect(),
    };
    if chars.is_empty() {
        return String::new();
    }
    (0..spec.length)
        .map(|_| chars[rng.random_range(0..chars.len())])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BaoServer, Harness, from_yaml, initialised, url_target, writes};
    use crate::phase::model::{StepKind, VaultConfigStep, VaultKvStep};
    use crate::steps::{Applied, Probe};

    fn kv_step(server: &BaoServer) -> StepKind {
        let mut spec: VaultKvStep = from_yaml(
            r#"
vault: { url: "http://placeholder" }
paths:
  sso/gitea:
    client_id: { template: gitea }
    client_secret: { random: { length: 32 } }
  harbor/admin:
    password: { random: { length: 24, alphabet: alnum-symbols } }
"#,
        );
        spec.vault = url_target(server);
        StepKind::VaultKv(spec)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn kv_seeds_only_missing_keys_and_never_rewrites_one() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        let root = initialised(&harness, &server).await;
        let mut mount: VaultConfigStep = from_yaml(
            "vault: { url: x }\nmounts: { secret: { type: kv, options: { version: \"2\" } } }",
        );
        mount.vault = url_target(&server);
        harness.apply(StepKind::VaultConfig(mount)).await.unwrap();
        // The mount finishes its kv v2 upgrade first (the probe waits for it, as the step does).
        assert!(matches!(
            harness.probe(kv_step(&server)).await.unwrap(),
            Probe::NeedsWork(_)
        ));
        // Someone already set the client secret by hand.
        let response = reqwest::Client::new()
            .post(format!("{}/v1/secret/data/sso/gitea", server.url()))
            .header("X-Vault-Token", &root)
            .json(&serde_json::json!({"data": {"client_secret": "set-by-hand-canary"}}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());

        assert!(matches!(
            harness.probe(kv_step(&server)).await.unwrap(),
            Probe::NeedsWork(_)
        ));
        let first = harness.apply(kv_step(&server)).await.unwrap();
        assert!(matches!(first, Applied::Changed(_)), "{first:?}");
        let (_, gitea) = server.get("secret/data/sso/gitea", &root).await;
        assert_eq!(gitea["data"]["data"]["client_id"], "gitea");
        assert_eq!(
            gitea["data"]["data"]["client_secret"], "set-by-hand-canary",
            "an existing key is kept"
        );
        assert_eq!(gitea["data"]["metadata"]["version"], 2);
        let (_, harbor) = server.get("secret/data/harbor/admin", &root).await;
        let password = harbor["data"]["data"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(password.chars().count(), 24);

        let before = writes(server.port);
        let second = harness.apply(kv_step(&server)).await.unwrap();
        assert!(matches!(second, Applied::Unchanged(_)), "{second:?}");
        assert_eq!(
            writes(server.port),
            before,
            "nothing missing, nothing written"
        );
        let (_, harbor) = server.get("secret/data/harbor/admin", &root).await;
        assert_eq!(harbor["data"]["data"]["password"], password.as_str());
        assert!(matches!(
            harness.probe(kv_step(&server)).await.unwrap(),
            Probe::Done(_)
        ));
        harness.assert_no_leak(&[root, password, "set-by-hand-canary".into()]);
    }
}
