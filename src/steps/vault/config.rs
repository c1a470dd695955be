//! `vault-config`: converge secrets engines, auth methods (with their config and roles) and ACL
//! policies. Everything is read first and written only where it differs, so a converged
//! OpenBao gets no write at all. Re-enabling a mount is never used as an existence test.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::VaultClient;
use super::custody::Custody;
use super::endpoint::Endpoint;
use super::token;
use crate::phase::model::{VaultAuthMethod, VaultConfigStep, VaultMount};
use crate::phase::template::Locals;
use crate::steps::{Applied, Probe, StepContext, StepError};

/// The step after templating.
struct Desired {
    mounts: BTreeMap<String, VaultMount>,
    auth: BTreeMap<String, VaultAuthMethod>,
    policies: BTreeMap<String, String>,
}

/// Read-only: what would be written.
pub async fn probe(ctx: &StepContext<'_>, spec: &VaultConfigStep) -> Result<Probe, StepError> {
    let desired = render(ctx, spec)?;
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    // A probe must not make a root token: without a usable token it cannot tell.
    let stored = custody.read().await?;
    let root = stored
        .as_ref()
        .and_then(|k| k.root_token.clone().filter(|_| !k.root_token_revoked));
    let client = match (&spec.token, root) {
        (None, Some(root)) => endpoint.client.with_token(&root),
        _ => {
            return Ok(Probe::Unknown(
                "no stored root token to read the configuration with".into(),
            ));
        }
    };
    if !token::token_works(&client).await? {
        return Ok(Probe::Unknown("the stored root token is not valid".into()));
    }
    let changes = plan(&client, &desired).await?;
    Ok(if changes.is_empty() {
        Probe::Done("configuration matches".into())
    } else {
        Probe::NeedsWork(summary(&changes))
    })
}

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultConfigStep) -> Result<Applied, StepError> {
    let desired = render(ctx, spec)?;
    let endpoint = Endpoint::one(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let lease = token::obtain(ctx, &endpoint.client, &custody, spec.token.as_ref()).await?;
    let result = converge(ctx, &lease.client, &desired).await;
    let released = lease.release().await;
    let changes = result?;
    released?;
    Ok(if changes.is_empty() {
        Applied::Unchanged("configuration matches".into())
    } else {
        Applied::Changed(summary(&changes))
    })
}

fn summary(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| c.what.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(ctx: &StepContext<'_>, spec: &VaultConfigStep) -> Result<Desired, StepError> {
    let locals = Locals::default();
    let t = |s: &str| ctx.templates.render(s, &locals);
    let mut mounts = BTreeMap::new();
    for (path, mount) in &spec.mounts {
        let mut mount = mount.clone();
        mount.engine = t(&mount.engine)?;
        mount.description = mount.description.as_deref().map(t).transpose()?;
        mount.options = mount
            .options
            .iter()
            .map(|(k, v)| Ok((k.clone(), t(v)?)))
            .collect::<Result<_, StepError>>()?;
        mounts.insert(clean(path), mount);
    }
    let mut auth = BTreeMap::new();
    for (path, method) in &spec.auth {
        let mut method = method.clone();
        method.description = method.description.as_deref().map(t).transpose()?;
        method.config = method
            .config
            .iter()
            .map(|(k, v)| Ok((k.clone(), ctx.templates.render_json(v, &locals)?)))
            .collect::<Result<_, StepError>>()?;
        method.roles = method
            .roles
            .iter()
            .map(|(name, fields)| {
                let fields = fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), ctx.templates.render_json(v, &locals)?)))
                    .collect::<Result<_, StepError>>()?;
                Ok((name.clone(), fields))
            })
            .collect::<Result<_, StepError>>()?;
        auth.insert(clean(path), method);
    }
    let policies = spec
        .policies
        .iter()
        .map(|(name, text)| Ok((name.clone(), t(text)?)))
        .collect::<Result<_, StepError>>()?;
    Ok(Desired {
        mounts,
        auth,
        policies,
    })
}

fn clean(path: &str) -> String {
    path.trim_matches('/').to_string()
}

/// One write the configuration needs.
struct Change {
    what: String,
    method: Method,
    path: String,
    body: Value,
}

async fn converge(
    ctx: &StepContext<'_>,
    client: &VaultClient,
    desired: &Desired,
) -> Result<Vec<Change>, StepError> {
    let changes = plan(client, desired).await?;
    for change in &changes {
        (ctx.progress)(change.what.clone());
        client
            .write(change.method.clone(), &change.path, Some(&change.body))
            .await?;
    }
    Ok(changes)
}

/// Reads everything the configuration names and returns the writes that make it match. A
/// mount or auth method of another type is an error: nothing is written then.
async fn plan(client: &VaultClient, desired: &Desired) -> Result<Vec<Change>, StepError> {
    let mut changes = Vec::new();
    let label = client.label().to_string();

    for (name, text) in &desired.policies {
        let path = format!("sys/policies/acl/{name}");
        let current = client.read(&path).await?;
        let current_text = current
            .as_ref()
            .and_then(|b| b["data"]["policy"].as_str())
            .unwrap_or_default();
        if current.is_none() || current_text.trim_end() != text.trim_end() {
            changes.push(Change {
                what: format!("policy {name}"),
                method: Method::PUT,
                path,
                body: json!({"policy": text}),
            });
        }
    }

    let mounts = client.read("sys/mounts").await?.unwrap_or_default();
    let mounts = table(&mounts);
    for (path, mount) in &desired.mounts {
        let (engine, options) = normalise_engine(&mount.engine, &mount.options);
        match mounts.get(&format!("{path}/")) {
            None => {
                let mut body = json!({"type": engine, "options": options});
                if let Some(d) = &mount.description {
                    body["description"] = json!(d);
                }
                changes.push(Change {
                    what: format!("enable {engine} at {path}/"),
                    method: Method::POST,
                    path: format!("sys/mounts/{path}"),
                    body,
                });
            }
            Some(current) => {
                let current_type = current["type"].as_str().unwrap_or_default();
                if current_type != engine {
                    return Err(StepError::Failed(format!(
                        "OpenBao {label}: mount {path}/ is a `{current_type}` engine, the phase asks for `{engine}`; move or disable it by hand, or change the phase"
                    )));
                }
                let current_version = current["options"]["version"].as_str().unwrap_or("1");
                if engine == "kv"
                    && options.get("version").map(String::as_str).unwrap_or("1") != current_version
                {
                    return Err(StepError::Failed(format!(
                        "OpenBao {label}: mount {path}/ is kv version {current_version}, the phase asks for version {}; upgrade it by hand (`bao kv enable-versioning {path}`) or change the phase",
                        options.get("version").map(String::as_str).unwrap_or("1")
                    )));
                }
                let mut tune = Map::new();
                if let Some(d) = &mount.description
                    && current["description"].as_str() != Some(d.as_str())
                {
                    tune.insert("description".into(), json!(d));
                }
                let differing: BTreeMap<&String, &String> = options
                    .iter()
                    .filter(|(k, v)| {
                        k.as_str() != "version"
                            && current["options"][k.as_str()].as_str() != Some(v.as_str())
                    })
                    .collect();
                if !differing.is_empty() {
                    tune.insert("options".into(), json!(differing));
                }
                if !tune.is_empty() {
                    changes.push(Change {
                        what: format!("tune {path}/"),
                        method: Method::POST,
                        path: format!("sys/mounts/{path}/tune"),
                        body: Value::Object(tune),
                    });
                }
            }
        }
    }

    let auths = client.read("sys/auth").await?.unwrap_or_default();
    let auths = table(&auths);
    for (path, method) in &desired.auth {
        let exists = match auths.get(&format!("{path}/")) {
            None => {
                let mut body = json!({"type": method.method});
                if let Some(d) = &method.description {
                    body["description"] = json!(d);
                }
                changes.push(Change {
                    what: format!("enable auth {} at {path}/", method.method),
                    method: Method::POST,
                    path: format!("sys/auth/{path}"),
                    body,
                });
                false
            }
            Some(current) => {
                let current_type = current["type"].as_str().unwrap_or_default();
                if current_type != method.method {
                    return Err(StepError::Failed(format!(
                        "OpenBao {label}: auth method at {path}/ is `{current_type}`, the phase asks for `{}`; disable it by hand or change the phase",
                        method.method
                    )));
                }
                if let Some(d) = &method.description
                    && current["description"].as_str() != Some(d.as_str())
                {
                    changes.push(Change {
                        what: format!("tune auth {path}/"),
                        method: Method::POST,
                        path: format!("sys/auth/{path}/tune"),
                        body: json!({"description": d}),
                    });
                }
                true
            }
        };
        if !method.config.is_empty() {
            let config_path = format!("auth/{path}/config");
            let current = if exists {
                client.read(&config_path).await?
            } else {
                None
            };
            if !fields_match(&method.config, current.as_ref().map(|b| &b["data"])) {
                changes.push(Change {
                    what: format!("auth {path}/ config"),
                    method: Method::POST,
                    path: config_path,
                    body: json!(method.config),
                });
            }
        }
        for (role, fields) in &method.roles {
            let role_path = format!("auth/{path}/role/{role}");
            let current = if exists {
                client.read(&role_path).await?
            } else {
                None
            };
            if !fields_match(fields, current.as_ref().map(|b| &b["data"])) {
                changes.push(Change {
                    what: format!("auth {path}/ role {role}"),
                    method: Method::POST,
                    path: role_path,
                    body: json!(fields),
                });
            }
        }
    }
    Ok(changes)
}

/// `sys/mounts` and `sys/auth` answer with the table at the top level and under `data`.
fn table(body: &Value) -> Map<String, Value> {
    body.get("data")
        .and_then(Value::as_object)
        .or_else(|| body.as_object())
        .cloned()
        .unwrap_or_default()
}

/// `kv-v2` is `kv` with `version: "2"`, as Vault stores it.
fn normalise_engine(
    engine: &str,
    options: &BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    let mut options = options.clone();
    match engine {
        "kv-v2" => {
            options.insert("version".into(), "2".into());
            ("kv".into(), options)
        }
        "kv-v1" => {
            options.insert("version".into(), "1".into());
            ("kv".into(), options)
        }
        other => (other.to_string(), options),
    }
}

/// Whether every desired field already has its value. Vault answers in its own forms: `1h`
/// reads back as `3600`, a comma list as an array. A field Vault never returns (a secret such as
/// `token_reviewer_jwt`) counts as set when Vault reports `<field>_set: true`.
fn fields_match(desired: &BTreeMap<String, Value>, current: Option<&Value>) -> bool {
    let Some(current) = current else { return false };
    desired.iter().all(|(key, want)| match current.get(key) {
        Some(have) => same(want, have),
        None => current.get(format!("{key}_set")).and_then(Value::as_bool) == Some(true),
    })
}

fn same(want: &Value, have: &Value) -> bool {
    if want == have {
        return true;
    }
    match (want, have) {
        (Value::String(w), Value::Number(h)) => {
            duration_seconds(w).is_some_and(|s| h.as_u64() == Some(s))
                || w.parse::<f64>().ok() == h.as_f64()
        }
        (Value::Number(w), Value::String(h)) => h.parse::<f64>().ok() == w.as_f64(),
        (Value::Bool(w), Value::String(h)) => h == &w.to_string(),
        (Value::String(w), Value::Bool(h)) => w == &h.to_string(),
        (Value::String(w), Value::Array(h)) => {
            let items: Vec<Value> = w
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s))
                .collect();
            items.len() == h.len() && items.iter().zip(h).all(|(a, b)| same(a, b))
        }
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| same(a, b))
        }
        (Value::String(w), Value::String(h)) => w.trim_end() == h.trim_end(),
        (Value::Array(w), Value::Null) | (Value::Array(w), Value::String(_)) if w.is_empty() => {
            have.as_str().is_none_or(str::is_empty)
        }
        _ => false,
    }
}

/// `3600`, `1h`, `30m`, `1h30m`, `45s` as seconds.
fn duration_seconds(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    crate::phase::model::parse_duration(text)
        .ok()
        .filter(|d| d.subsec_nanos() == 0)
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_forms_of_the_same_value_match() {
        assert!(same(&json!("1h"), &json!(3600)));
        assert!(same(&json!("3600"), &json!(3600)));
        assert!(!same(&json!("2h"), &json!(3600)));
        assert!(same(&json!("a,b"), &json!(["a", "b"])));
        assert!(same(&json!(["a"]), &json!(["a"])));
        assert!(!same(&json!(["a"]), &json!(["a", "b"])));
        assert!(same(&json!(true), &json!("true")));
    }

    #[test]
    fn write_only_fields_count_as_set_when_vault_says_so() {
        let desired = BTreeMap::from([("token_reviewer_jwt".to_string(), json!("x"))]);
        assert!(fields_match(
            &desired,
            Some(&json!({"token_reviewer_jwt_set": true}))
        ));
        assert!(!fields_match(&desired, Some(&json!({}))));
        assert!(!fields_match(&desired, None));
    }
}

#[cfg(test)]
mod tests_against_openbao {
    use super::super::testing::{
        BaoServer, Harness, TEST_CA, from_yaml, initialised, url_target, writes,
    };
    use crate::phase::model::{StepKind, VaultConfigStep};
    use crate::steps::{Applied, Probe};

    fn config_step(server: &BaoServer, policy: &str, mount_type: &str) -> StepKind {
        let ca = TEST_CA.replace('\n', "\\n");
        let mut spec: VaultConfigStep = from_yaml(&format!(
            r#"
vault: {{ url: "{url}" }}
mounts:
  secret: {{ type: {mount_type}, options: {{ version: "2" }}, description: key/value store }}
auth:
  kubernetes:
    type: kubernetes
    config:
      kubernetes_host: https://127.0.0.1:6443
      kubernetes_ca_cert: "{ca}"
      disable_local_ca_jwt: true
    roles:
      external-secrets:
        bound_service_account_names: [external-secrets]
        bound_service_account_namespaces: external-secrets
        token_policies: [eso-read]
        ttl: 1h
policies:
  eso-read: |
    path "secret/data/*" {{ capabilities = ["{policy}"] }}
"#,
            url = server.url()
        ));
        spec.vault = url_target(server);
        StepKind::VaultConfig(spec)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn config_converges_then_makes_no_write_and_rewrites_only_what_changed() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        let root = initialised(&harness, &server).await;

        let first = harness
            .apply(config_step(&server, "read", "kv"))
            .await
            .unwrap();
        assert!(matches!(first, Applied::Changed(_)), "{first:?}");
        let (_, mounts) = server.get("sys/mounts", &root).await;
        assert_eq!(mounts["data"]["secret/"]["type"], "kv");
        assert_eq!(mounts["data"]["secret/"]["options"]["version"], "2");
        let (status, role) = server
            .get("auth/kubernetes/role/external-secrets", &root)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            role["data"]["token_policies"],
            serde_json::json!(["eso-read"])
        );
        assert_eq!(role["data"]["token_ttl"], 3600);

        let before = writes(server.port);
        let second = harness
            .apply(config_step(&server, "read", "kv"))
            .await
            .unwrap();
        assert!(matches!(second, Applied::Unchanged(_)), "{second:?}");
        assert_eq!(
            writes(server.port),
            before,
            "a converged OpenBao gets no write"
        );
        assert!(matches!(
            harness
                .probe(config_step(&server, "read", "kv"))
                .await
                .unwrap(),
            Probe::Done(_)
        ));

        assert!(matches!(
            harness
                .probe(config_step(&server, "list", "kv"))
                .await
                .unwrap(),
            Probe::NeedsWork(_)
        ));
        let changed = harness
            .apply(config_step(&server, "list", "kv"))
            .await
            .unwrap();
        assert!(
            matches!(&changed, Applied::Changed(m) if m == "policy eso-read"),
            "{changed:?}"
        );
        let new_writes: Vec<_> = writes(server.port).into_iter().skip(before.len()).collect();
        assert_eq!(
            new_writes,
            vec![("PUT".to_string(), "sys/policies/acl/eso-read".to_string())]
        );
        let (_, policy) = server.get("sys/policies/acl/eso-read", &root).await;
        assert!(
            policy["data"]["policy"]
                .as_str()
                .unwrap()
                .contains("\"list\"")
        );

        // A changed role: the role alone is rewritten, whole.
        let StepKind::VaultConfig(mut spec) = config_step(&server, "list", "kv") else {
            unreachable!()
        };
        let role = spec
            .auth
            .get_mut("kubernetes")
            .unwrap()
            .roles
            .get_mut("external-secrets")
            .unwrap();
        role.insert("ttl".into(), serde_json::json!("2h"));
        let before = writes(server.port);
        let changed = harness.apply(StepKind::VaultConfig(spec)).await.unwrap();
        assert!(
            matches!(&changed, Applied::Changed(m) if m == "auth kubernetes/ role external-secrets"),
            "{changed:?}"
        );
        let new_writes: Vec<_> = writes(server.port).into_iter().skip(before.len()).collect();
        assert_eq!(
            new_writes,
            vec![(
                "POST".to_string(),
                "auth/kubernetes/role/external-secrets".to_string()
            )]
        );
        let (_, role) = server
            .get("auth/kubernetes/role/external-secrets", &root)
            .await;
        assert_eq!(role["data"]["token_ttl"], 7200);
        harness.assert_no_leak(&[root]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_mount_of_another_type_is_an_error_and_nothing_is_written() {
        let server = BaoServer::start().await;
        let harness = Harness::new();
        initialised(&harness, &server).await;
        harness
            .apply(config_step(&server, "read", "kv"))
            .await
            .unwrap();
        let before = writes(server.port);
        let error = harness
            .apply(config_step(&server, "read", "pki"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mount secret/ is a `kv` engine") && error.contains("`pki`"),
            "{error}"
        );
        assert_eq!(writes(server.port), before);
    }
}
