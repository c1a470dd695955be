//! `vault-unseal`: every server of the target is unsealed with the keys in custody; an
//! uninitialised raft follower joins the leader first; an unsealed server gets no write.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::client::error_text;
use super::custody::Custody;
use super::endpoint::Endpoint;
use crate::phase::model::VaultUnsealStep;
use crate::phase::template::Locals;
use crate::steps::{Applied, Probe, StepContext, StepError};

/// How long a joined follower may take to finish unsealing (it fetches the keyring from the leader).
const SETTLE: Duration = Duration::from_secs(30);

/// How long an uninitialised server may take to start answering unseal (a `retry_join`
/// follower waits for an active leader, then retries every few seconds).
const RETRY_JOIN_WAIT: Duration = Duration::from_secs(15);

/// Read-only: which servers are sealed.
pub async fn probe(ctx: &StepContext<'_>, spec: &VaultUnsealStep) -> Result<Probe, StepError> {
    let endpoints = Endpoint::all(ctx, &spec.vault).await?;
    let mut sealed = Vec::new();
    for endpoint in &endpoints {
        let status = seal_status(endpoint).await?;
        if status["sealed"].as_bool() != Some(false) {
            sealed.push(endpoint.name.clone());
        }
    }
    Ok(if sealed.is_empty() {
        Probe::Done(format!("{} OpenBao server(s) unsealed", endpoints.len()))
    } else {
        Probe::NeedsWork(format!("sealed: {}", sealed.join(", ")))
    })
}

pub async fn apply(ctx: &StepContext<'_>, spec: &VaultUnsealStep) -> Result<Applied, StepError> {
    let id = ctx.full_id();
    let endpoints = Endpoint::all(ctx, &spec.vault).await?;
    let custody = Custody::new(&spec.custody, ctx.cluster.clone(), ctx.redactor.clone())?;
    let mut keys = None;
    let mut done = Vec::new();
    for endpoint in &endpoints {
        let status = seal_status(endpoint).await?;
        if status["sealed"].as_bool() == Some(false) {
            continue;
        }
        if keys.is_none() {
            let stored = custody.read().await?.ok_or_else(|| {
                StepError::Failed(format!("step {id}: OpenBao {} is sealed and {} holds no unseal keys; run the vault-init step first", endpoint.name, custody.describe()))
            })?;
            let usable = stored.usable_keys().map(<[String]>::to_vec).ok_or_else(|| {
                StepError::Failed(format!(
                    "step {id}: the keys in {} are PGP-encrypted; unseal {} by hand (`bao operator unseal`)",
                    custody.describe(),
                    endpoint.name
                ))
            })?;
            keys = Some(usable);
        }
        let keys = keys.as_deref().unwrap_or_default();
        let mut joined = false;
        let uninitialised = status["initialized"].as_bool() == Some(false);
        let leader = match &spec.raft_join {
            Some(join) if uninitialised => Some(
                ctx.templates
                    .render(&join.leader_api_addr, &Locals::default())?,
            ),
            _ => None,
        };
        // An empty leader (a value left unset) means no join: the followers' `retry_join` does it.
        if let Some(join) = &spec.raft_join
            && let Some(leader) = leader.filter(|l| !l.trim().is_empty())
        {
            let mut request = json!({ "leader_api_addr": leader });
            if let Some(ca) = &join.leader_ca_cert {
                request["leader_ca_cert"] = json!(ctx.templates.render(ca, &Locals::default())?);
            }
            (ctx.progress)(format!("{} joins the raft cluster", endpoint.name));
            let answer = join_leader(endpoint, &request).await?;
            if answer["joined"].as_bool() != Some(true) {
                return Err(StepError::Transient(format!(
                    "step {id}: OpenBao {} did not join the raft leader; it is retried",
                    endpoint.name
                )));
            }
            joined = true;
        }
        (ctx.progress)(format!("unsealing {}", endpoint.name));
        // An uninitialised server without `raft_join` may still be a follower that joins by
        // itself (`retry_join` in its config) once it has the keys: unseal it, and explain if
        // it is not one.
        unseal(&id, endpoint, keys, status["progress"].as_u64().unwrap_or(0) > 0)
            .await
            .map_err(|e| match e {
                StepError::Failed(message) if uninitialised && !joined => StepError::Failed(format!(
                    "{message}; OpenBao {} is not initialised: run vault-init against it, set `raft_join` if it is a raft follower, \
                     or give it `retry_join` in its raft storage config",
                    endpoint.name
                )),
                other => other,
            })?;
        done.push(if joined {
            format!("{} (joined)", endpoint.name)
        } else {
            endpoint.name.clone()
        });
    }
    Ok(if done.is_empty() {
        Applied::Unchanged(format!(
            "{} OpenBao server(s) already unsealed",
            endpoints.len()
        ))
    } else {
        Applied::Changed(format!("unsealed {}", done.join(", ")))
    })
}

/// Joins the raft leader, retrying while the leader cannot answer yet: a leader unsealed a
/// moment ago is still electing itself and answers the challenge with an error.
async fn join_leader(endpoint: &Endpoint, request: &Value) -> Result<Value, StepError> {
    let path = "sys/storage/raft/join";
    let deadline = Instant::now() + SETTLE;
    loop {
        let response = endpoint
            .client
            .request(Method::POST, path, Some(request))
            .await?;
        if response.is_success() {
            return Ok(response.body);
        }
        if response.status < 500 || Instant::now() >= deadline {
            return Err(endpoint.client.unexpected(&Method::POST, path, &response));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn seal_status(endpoint: &Endpoint) -> Result<Value, StepError> {
    endpoint
        .client
        .read("sys/seal-status")
        .await?
        .ok_or_else(|| {
            StepError::Failed(format!(
                "OpenBao {}: sys/seal-status answered 404; is this OpenBao or Vault?",
                endpoint.name
            ))
        })
}

/// Gives keys until the server reports unsealed, then waits for a joined follower to settle.
async fn unseal(
    id: &str,
    endpoint: &Endpoint,
    keys: &[String],
    reset_first: bool,
) -> Result<(), StepError> {
    if reset_first {
        // A half-finished unseal from a dead run: its progress would mix with ours.
        endpoint
            .client
            .write(Method::PUT, "sys/unseal", Some(&json!({"reset": true})))
            .await?;
    }
    let mut given = 0;
    let join_deadline = Instant::now() + RETRY_JOIN_WAIT;
    for key in keys {
        let body = json!({"key": key});
        let mut response = endpoint
            .client
            .request(Method::PUT, "sys/unseal", Some(&body))
            .await?;
        // A follower with `retry_join` answers "not initialized" until its join loop has
        // fetched the leader's challenge, which needs the leader active: wait for that.
        while response.status == 400
            && error_text(&response.body).contains("not initialized")
            && Instant::now() < join_deadline
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            response = endpoint
                .client
                .request(Method::PUT, "sys/unseal", Some(&body))
                .await?;
        }
        if !response.is_success() {
            return Err(endpoint
                .client
                .unexpected(&Method::PUT, "sys/unseal", &response));
        }
        let status = response.body;
        given += 1;
        if status["sealed"].as_bool() == Some(false) {
            return Ok(());
        }
        let threshold = status["t"].as_u64().unwrap_or(0);
        if threshold > 0 && given as u64 >= threshold && status["progress"].as_u64() == Some(0) {
            // Threshold reached but still sealed: a raft follower finishing its join.
            break;
        }
    }
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let status = seal_status(endpoint).await?;
        if status["sealed"].as_bool() == Some(false) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(StepError::Transient(format!(
        "step {id}: OpenBao {} is still sealed after {given} of {} stored keys; are they this cluster's keys? It is retried, or re-run `bringup run`",
        endpoint.name,
        keys.len()
    )))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{
        BaoServer, Harness, init_step, pod_target, unseal_step, url_target, writes,
    };
    use crate::phase::model::{RaftJoin, StepKind, VaultUnsealStep};
    use crate::steps::{Applied, Probe};

    #[tokio::test(flavor = "multi_thread")]
    async fn a_restarted_server_is_unsealed_and_an_unsealed_one_gets_no_write() {
        let mut server = BaoServer::start().await;
        let harness = Harness::new();
        harness.apply(init_step(url_target(&server))).await.unwrap();
        assert!(matches!(
            harness
                .probe(unseal_step(url_target(&server)))
                .await
                .unwrap(),
            Probe::NeedsWork(_)
        ));
        let first = harness
            .apply(unseal_step(url_target(&server)))
            .await
            .unwrap();
        assert!(matches!(first, Applied::Changed(_)), "{first:?}");
        server.wait_active().await;

        let before = writes(server.port).len();
        let second = harness
            .apply(unseal_step(url_target(&server)))
            .await
            .unwrap();
        assert!(matches!(second, Applied::Unchanged(_)), "{second:?}");
        assert_eq!(
            writes(server.port).len(),
            before,
            "an unsealed server gets no write"
        );
        assert!(matches!(
            harness
                .probe(unseal_step(url_target(&server)))
                .await
                .unwrap(),
            Probe::Done(_)
        ));

        server.restart().await;
        let (_, status) = server.get("sys/seal-status", "").await;
        assert_eq!(status["sealed"], true);
        let again = harness
            .apply(unseal_step(url_target(&server)))
            .await
            .unwrap();
        assert!(matches!(again, Applied::Changed(_)), "{again:?}");
        let (_, status) = server.get("sys/seal-status", "").await;
        assert_eq!(status["sealed"], false);
        let (keys, root) = harness.custody();
        let mut canaries = keys;
        canaries.extend(root);
        harness.assert_no_leak(&canaries);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn three_raft_nodes_are_joined_and_unsealed_through_port_forwards() {
        let nodes = [
            BaoServer::start_node("n0", "").await,
            BaoServer::start_node("n1", "").await,
            BaoServer::start_node("n2", "").await,
        ];
        let harness = Harness::new();
        for (index, node) in nodes.iter().enumerate() {
            harness.cluster.add_pod(
                "vault",
                &format!("vault-{index}"),
                json!({"app": "openbao"}),
                ([127, 0, 0, 1], node.port),
            );
        }
        harness
            .apply(init_step(pod_target("vault", Some("vault-0"), None)))
            .await
            .unwrap();
        let unseal = || {
            StepKind::VaultUnseal(VaultUnsealStep {
                raft_join: Some(RaftJoin {
                    leader_api_addr: nodes[0].url(),
                    leader_ca_cert: None,
                }),
                ..match unseal_step(pod_target("vault", None, Some("app=openbao"))) {
                    StepKind::VaultUnseal(spec) => spec,
                    _ => unreachable!(),
                }
            })
        };
        let first = harness.apply(unseal()).await.unwrap();
        assert!(
            matches!(&first, Applied::Changed(m) if m.contains("vault-2 (joined)")),
            "{first:?}"
        );
        for node in &nodes {
            let (_, status) = node.get("sys/seal-status", "").await;
            assert_eq!(
                status["sealed"], false,
                "node on port {} is unsealed",
                node.port
            );
        }
        nodes[0].wait_active().await;
        let root = harness.custody().1.unwrap();
        let (status, config) = nodes[0].get("sys/storage/raft/configuration", &root).await;
        assert_eq!(status, 200, "{config}");
        let servers = config["data"]["config"]["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 3, "{config}");

        let second = harness.apply(unseal()).await.unwrap();
        assert!(matches!(second, Applied::Unchanged(_)), "{second:?}");
        assert!(matches!(
            harness.probe(unseal()).await.unwrap(),
            Probe::Done(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn followers_with_retry_join_in_their_config_are_unsealed_without_raft_join() {
        let leader = BaoServer::start_node("n0", "").await;
        let followers = [
            BaoServer::start_follower("n1", &leader.url()).await,
            BaoServer::start_follower("n2", &leader.url()).await,
        ];
        let harness = Harness::new();
        harness.cluster.add_pod(
            "vault",
            "vault-0",
            json!({"app": "openbao"}),
            ([127, 0, 0, 1], leader.port),
        );
        for (index, node) in followers.iter().enumerate() {
            harness.cluster.add_pod(
                "vault",
                &format!("vault-{}", index + 1),
                json!({"app": "openbao"}),
                ([127, 0, 0, 1], node.port),
            );
        }
        harness
            .apply(init_step(pod_target("vault", Some("vault-0"), None)))
            .await
            .unwrap();
        let unseal = || unseal_step(pod_target("vault", None, Some("app=openbao")));
        let first = harness.apply(unseal()).await.unwrap();
        assert!(matches!(first, Applied::Changed(_)), "{first:?}");
        for node in followers.iter().chain([&leader]) {
            let (_, status) = node.get("sys/seal-status", "").await;
            assert_eq!(
                status["sealed"], false,
                "node on port {} is unsealed",
                node.port
            );
        }
        leader.wait_active().await;
        let root = harness.custody().1.unwrap();
        let (_, config) = leader.get("sys/storage/raft/configuration", &root).await;
        assert_eq!(
            config["data"]["config"]["servers"].as_array().map(Vec::len),
            Some(3),
            "{config}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_uninitialised_server_that_is_no_follower_gets_a_clear_error() {
        let other = BaoServer::start().await;
        let lone = BaoServer::start().await;
        let harness = Harness::new();
        harness.apply(init_step(url_target(&other))).await.unwrap();
        let error = harness
            .apply(unseal_step(url_target(&lone)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is not initialised") && error.contains("raft_join"),
            "{error}"
        );
    }
}
