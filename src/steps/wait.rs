//! The `wait` kind: poll until pods are Ready, a rollout finished, an object exists, a
//! condition holds, or a URL answers; the probe is a single check.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::TypeRef;
use crate::phase::model::{ObjectRef, WaitFor, WaitStep};

use super::http_endpoint::{Call, HttpEndpoint};
use super::pod_target::is_ready;
use super::{Applied, Probe, StepContext, StepError, timeouts};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// One look at what is waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Met(String),
    NotYet(String),
}

/// Read-only: one check (an HTTP wait sends a GET, through a port-forward when the target
/// is a pod or a Service).
pub async fn probe(ctx: &StepContext<'_>, spec: &WaitStep) -> Result<Probe, StepError> {
    Ok(match check(ctx, &spec.until).await? {
        Check::Met(seen) => Probe::Done(seen),
        Check::NotYet(seen) => Probe::NeedsWork(seen),
    })
}

/// Polls at the interval until met or the step's timeout passes.
pub async fn apply(ctx: &StepContext<'_>, spec: &WaitStep) -> Result<Applied, StepError> {
    let interval = spec.interval.map_or(DEFAULT_INTERVAL, |i| i.0);
    let seen = poll(ctx, timeouts::for_step(ctx.step), interval, || {
        check(ctx, &spec.until)
    })
    .await?;
    Ok(Applied::Unchanged(seen))
}

/// Runs `check` every `interval` until it is met; reports each new state as progress. A
/// transient error counts as not yet (an API server restarting, a pod not Ready).
pub async fn poll<F, Fut>(
    ctx: &StepContext<'_>,
    limit: Duration,
    interval: Duration,
    mut check: F,
) -> Result<String, StepError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Check, StepError>>,
{
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let state = match check().await {
            Ok(Check::Met(seen)) => return Ok(seen),
            Ok(Check::NotYet(seen)) => seen,
            Err(e) if e.is_transient() => e.to_string(),
            Err(e) => return Err(e),
        };
        if state != last {
            (ctx.progress)(state.clone());
            last = state;
        }
        if started.elapsed() + interval > limit {
            return Err(StepError::Failed(format!(
                "gave up after {}: {last}",
                human(limit)
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

pub async fn check(ctx: &StepContext<'_>, until: &WaitFor) -> Result<Check, StepError> {
    let cluster = ctx.cluster.as_ref();
    match until {
        WaitFor::Pods {
            namespace,
            selector,
            count,
        } => {
            let wanted = count.unwrap_or(1) as usize;
            let pods = cluster
                .list(&TypeRef::pod(), Some(namespace), Some(selector))
                .await?;
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            let seen = format!("{ready}/{wanted} pods Ready ({selector} in namespace {namespace})");
            Ok(if ready >= wanted {
                Check::Met(seen)
            } else {
                Check::NotYet(seen)
            })
        }
        WaitFor::Rollout {
            namespace,
            kind,
            name,
        } => {
            let ty = TypeRef::new("apps/v1", kind);
            match cluster.get(&ty, Some(namespace), name).await? {
                None => Ok(Check::NotYet(format!(
                    "{kind} {namespace}/{name} not found"
                ))),
                Some(object) => rollout(kind, &format!("{namespace}/{name}"), &object),
            }
        }
        WaitFor::Object(object) => {
            let shown = object_name(object);
            Ok(match get(ctx, object).await? {
                Some(_) => Check::Met(format!("{} {shown} exists", object.kind)),
                None => Check::NotYet(format!("{} {shown} not found", object.kind)),
            })
        }
        WaitFor::Condition {
            object,
            condition,
            status,
        } => {
            let found = get(ctx, object).await?;
            Ok(condition_check(object, found.as_ref(), condition, status))
        }
        WaitFor::Http {
            target,
            path,
            expect,
            tls,
        } => {
            let endpoint = HttpEndpoint::open(ctx, target, tls.as_ref()).await?;
            let headers = Default::default();
            let path = ctx.templates.render(path, &Default::default())?;
            let call = Call {
                method: "GET",
                path: &path,
                headers: &headers,
                auth: None,
                json: None,
            };
            let answer = endpoint.send(ctx, &call).await?;
            let wanted = if expect.is_empty() {
                vec![200]
            } else {
                expect.clone()
            };
            let seen = format!(
                "GET {} on {} answered {}",
                super::http_endpoint::strip_query(&path),
                endpoint.shown,
                answer.status
            );
            Ok(if wanted.contains(&answer.status) {
                Check::Met(seen)
            } else {
                Check::NotYet(seen)
            })
        }
    }
}

async fn get(ctx: &StepContext<'_>, object: &ObjectRef) -> Result<Option<Value>, StepError> {
    let ty = TypeRef::new(&object.api_version, &object.kind);
    Ok(ctx
        .cluster
        .get(&ty, object.namespace.as_deref(), &object.name)
        .await?)
}

/// `status.conditions[type].status` against the wanted status, with the condition's message.
pub fn condition_check(
    object: &ObjectRef,
    found: Option<&Value>,
    condition: &str,
    status: &str,
) -> Check {
    let shown = format!("{} {}", object.kind, object_name(object));
    let Some(found) = found else {
        return Check::NotYet(format!("{shown} not found"));
    };
    let conditions = found["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(current) = conditions.iter().find(|c| c["type"] == condition) else {
        return Check::NotYet(format!("{shown} has no {condition} condition yet"));
    };
    let actual = current["status"].as_str().unwrap_or("Unknown");
    let message = current["message"]
        .as_str()
        .or_else(|| current["reason"].as_str())
        .unwrap_or_default();
    let seen = if message.is_empty() {
        format!("{shown}: {condition} is {actual}")
    } else {
        format!("{shown}: {condition} is {actual}: {message}")
    };
    if actual == status {
        Check::Met(seen)
    } else {
        Check::NotYet(seen)
    }
}

fn rollout(kind: &str, name: &str, object: &Value) -> Result<Check, StepError> {
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let status = &object["status"];
    let generation = number(&object["metadata"]["generation"]);
    let observed = number(&status["observedGeneration"]);
    let (wanted, updated, ready) = match kind {
        "Deployment" | "StatefulSet" => (
            object["spec"]["replicas"].as_u64().unwrap_or(1),
            number(&status["updatedReplicas"]),
            number(&status["readyReplicas"]),
        ),
        "DaemonSet" => (
            number(&status["desiredNumberScheduled"]),
            number(&status["updatedNumberScheduled"]),
            number(&status["numberReady"]),
        ),
        other => {
            return Err(StepError::Failed(format!(
                "rollout waits on a Deployment, StatefulSet or DaemonSet, not a {other}"
            )));
        }
    };
    if observed < generation {
        return Ok(Check::NotYet(format!(
            "{kind} {name}: the controller has not seen generation {generation} yet"
        )));
    }
    let seen = format!("{kind} {name}: {ready}/{wanted} ready, {updated}/{wanted} updated");
    Ok(if updated == wanted && ready == wanted {
        Check::Met(seen)
    } else {
        Check::NotYet(seen)
    })
}

fn object_name(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{ns}/{}", object.name),
        None => object.name.clone(),
    }
}

/// `5m`, `90s`, `1.5s`: a limit as a person writes it.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_millis() != 0 || secs == 0 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::phase::model::{Duration as StepDuration, HttpTarget, StepKind};
    use crate::steps::pod_target::tests::pod;
    use crate::steps::testing::{Bed, fake_with_namespaces};
    use serde_json::json;

    fn bed(fake: FakeCluster, until: WaitFor, timeout: Duration) -> (Bed, WaitStep) {
        let spec = WaitStep {
            until,
            interval: Some(StepDuration(Duration::from_millis(20))),
        };
        let mut bed = Bed::new(fake, StepKind::Wait(spec.clone()));
        bed.step.timeout = Some(StepDuration(timeout));
        (bed, spec)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn waits_for_pods_made_ready_by_someone_else() {
        let fake = fake_with_namespaces(&["vault"]);
        fake.insert(pod("vault", "vault-0", json!({"app": "vault"}), true));
        fake.insert(pod("vault", "vault-1", json!({"app": "vault"}), false));
        let until = WaitFor::Pods {
            namespace: "vault".into(),
            selector: "app=vault".into(),
            count: Some(2),
        };
        let (bed, spec) = bed(fake.clone(), until, Duration::from_secs(5));
        assert_eq!(
            probe(&bed.ctx(), &spec).await.unwrap(),
            Probe::NeedsWork("1/2 pods Ready (app=vault in namespace vault)".into())
        );
        let background = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            background.insert(pod("vault", "vault-1", json!({"app": "vault"}), true));
        });
        let applied = apply(&bed.ctx(), &spec).await.unwrap();
        assert_eq!(
            applied,
            Applied::Unchanged("2/2 pods Ready (app=vault in namespace vault)".into())
        );
        assert!(
            bed.progress
                .lock()
                .unwrap()
                .contains(&"1/2 pods Ready (app=vault in namespace vault)".to_string())
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn gives_up_at_the_timeout_saying_what_it_saw() {
        let fake = fake_with_namespaces(&["vault"]);
        let until = WaitFor::Pods {
            namespace: "vault".into(),
            selector: "app=vault".into(),
            count: None,
        };
        let (bed, spec) = bed(fake, until, Duration::from_millis(200));
        let error = apply(&bed.ctx(), &spec).await.unwrap_err().to_string();
        assert_eq!(
            error,
            "gave up after 0.2s: 0/1 pods Ready (app=vault in namespace vault)"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn waits_for_a_condition_and_reports_its_message() {
        let fake = fake_with_namespaces(&["external-secrets"]);
        let store = |status: &str, message: &str| {
            json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": "vault-backend"},
                   "status": {"conditions": [{"type": "Ready", "status": status, "message": message}]}})
        };
        fake.insert(store("False", "unable to log in to vault"));
        let object = ObjectRef {
            api_version: "external-secrets.io/v1".into(),
            kind: "ClusterSecretStore".into(),
            namespace: None,
            name: "vault-backend".into(),
        };
        let until = WaitFor::Condition {
            object,
            condition: "Ready".into(),
            status: "True".into(),
        };
        let (bed, spec) = bed(fake.clone(), until, Duration::from_secs(5));
        let background = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            background.insert(store("True", "store validated"));
        });
        let applied = apply(&bed.ctx(), &spec).await.unwrap();
        assert_eq!(
            applied,
            Applied::Unchanged(
                "ClusterSecretStore vault-backend: Ready is True: store validated".into()
            )
        );
        assert_eq!(
            bed.progress.lock().unwrap().first().unwrap(),
            "ClusterSecretStore vault-backend: Ready is False: unable to log in to vault"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rollout_needs_the_new_generation_updated_and_ready() {
        let fake = fake_with_namespaces(&["gitea"]);
        let deployment = |generation: u64, observed: u64, updated: u64, ready: u64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "gitea", "namespace": "gitea", "generation": generation},
                   "spec": {"replicas": 2},
                   "status": {"observedGeneration": observed, "updatedReplicas": updated, "readyReplicas": ready}})
        };
        let until = WaitFor::Rollout {
            namespace: "gitea".into(),
            kind: "Deployment".into(),
            name: "gitea".into(),
        };
        let (bed, spec) = bed(fake.clone(), until, Duration::from_secs(5));
        assert!(
            matches!(probe(&bed.ctx(), &spec).await.unwrap(), Probe::NeedsWork(m) if m.contains("not found"))
        );
        fake.insert(deployment(3, 2, 2, 2));
        assert!(
            matches!(probe(&bed.ctx(), &spec).await.unwrap(), Probe::NeedsWork(m) if m.contains("generation 3"))
        );
        fake.insert(deployment(3, 3, 1, 2));
        assert_eq!(
            probe(&bed.ctx(), &spec).await.unwrap(),
            Probe::NeedsWork("Deployment gitea/gitea: 2/2 ready, 1/2 updated".into())
        );
        fake.insert(deployment(3, 3, 2, 2));
        assert!(matches!(
            probe(&bed.ctx(), &spec).await.unwrap(),
            Probe::Done(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn waits_for_an_object_to_exist() {
        let fake = fake_with_namespaces(&["authentik"]);
        let object = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("authentik".into()),
            name: "authentik-bootstrap".into(),
        };
        let (bed, spec) = bed(
            fake.clone(),
            WaitFor::Object(object),
            Duration::from_secs(5),
        );
        let background = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            background.insert(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "authentik-bootstrap", "namespace": "authentik"}}));
        });
        assert_eq!(
            apply(&bed.ctx(), &spec).await.unwrap(),
            Applied::Unchanged("Secret authentik/authentik-bootstrap exists".into())
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn waits_for_an_http_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v1/sys/health",
            axum::routing::get(|| async { (axum::http::StatusCode::OK, "{}") }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let until = WaitFor::Http {
            target: HttpTarget::Url(format!("http://{addr}")),
            path: "/v1/sys/health".into(),
            expect: vec![],
            tls: None,
        };
        let (ok, spec) = bed(FakeCluster::new(), until, Duration::from_secs(5));
        assert!(
            matches!(apply(&ok.ctx(), &spec).await.unwrap(), Applied::Unchanged(m) if m.ends_with("answered 200"))
        );
        let missing = WaitFor::Http {
            target: HttpTarget::Url(format!("http://{addr}")),
            path: "/nope".into(),
            expect: vec![],
            tls: None,
        };
        let (missing, spec) = bed(FakeCluster::new(), missing, Duration::from_millis(100));
        assert!(
            apply(&missing.ctx(), &spec)
                .await
                .unwrap_err()
                .to_string()
                .contains("answered 404")
        );
    }
}
