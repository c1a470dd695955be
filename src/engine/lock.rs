//! The lock: a `coordination.k8s.io/v1` Lease `bringup-lock` beside the checkpoint, so two
//! runs never write the same cluster at once.
//!
//! Taken with a conditional write, renewed every duration/3 by a background task, taken
//! over when its holder stopped renewing for longer than its duration. Released by clearing
//! `holderIdentity` with a write conditional on the resourceVersion we last wrote — not by
//! deleting it: a delete cannot be made conditional through the cluster seam, and would
//! remove a Lease another run took over after ours expired. A cleared Lease is free.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterError, TypeRef};
use crate::engine::clock;
use crate::engine::error::EngineError;

pub const LOCK_NAME: &str = "bringup-lock";

/// Who holds a Lease, as read from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    pub identity: String,
    pub acquired: Option<DateTime<Utc>>,
    pub renewed: Option<DateTime<Utc>>,
    pub duration_s: u64,
}

impl LockHolder {
    fn of(lease: &Value) -> Option<LockHolder> {
        let spec = lease.get("spec")?;
        let identity = spec
            .get("holderIdentity")?
            .as_str()
            .filter(|h| !h.is_empty())?
            .to_string();
        let time = |field: &str| {
            spec.get(field)
                .and_then(Value::as_str)
                .and_then(clock::parse)
        };
        Some(LockHolder {
            identity,
            acquired: time("acquireTime"),
            renewed: time("renewTime"),
            duration_s: spec
                .get("leaseDurationSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    /// When the Lease is free for the taking if nobody renews it.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        let since = self.renewed.or(self.acquired)?;
        Some(
            since
                + chrono::Duration::seconds(i64::try_from(self.duration_s).unwrap_or(i64::MAX / 2)),
        )
    }

    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.expires().is_none_or(|expires| expires < now)
    }

    /// Held by a run of this very machine whose process is gone: it will never renew, so there
    /// is no need to wait for the Lease to expire. Only when the identity carries this
    /// machine's id as well as its name ([`default_holder`]): a machine of the same name
    /// elsewhere, or one without a machine id, keeps its lock until it expires.
    pub fn process_gone(&self) -> bool {
        let Some(mine) = machine() else {
            return false;
        };
        let (mut host, mut pid, mut machine_id) = (None, None, None);
        for word in self.identity.split_whitespace() {
            if let Some(value) = word.strip_prefix("pid=") {
                pid = value.parse::<u32>().ok();
            } else if let Some(value) = word.strip_prefix("machine=") {
                machine_id = Some(value);
            } else if host.is_none() {
                host = word.rsplit_once('@').map(|(_, host)| host);
            }
        }
        host == Some(hostname().as_str())
            && machine_id == Some(mine.as_str())
            && pid.is_some_and(|pid| pid != std::process::id() && !process_exists(pid))
    }
}

/// The result of trying to take the lock.
pub enum Acquired {
    Held {
        lock: Lock,
        took_over: Option<LockHolder>,
    },
    /// The state namespace does not exist: the caller decides whether to create it.
    NamespaceMissing,
}

/// A held lock. Renewed in the background until [`release`](Self::release).
pub struct Lock {
    cluster: Arc<dyn Cluster>,
    namespace: String,
    holder: String,
    lease: Arc<Mutex<Value>>,
    lost: CancellationToken,
    lost_to: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lock {
    /// Takes the Lease, or says who holds it (exit 3).
    pub async fn acquire(
        cluster: Arc<dyn Cluster>,
        namespace: &str,
        holder: &str,
        duration: Duration,
    ) -> Result<Acquired, EngineError> {
        let object = || format!("lease {namespace}/{LOCK_NAME}");
        let duration_s = duration.as_secs().max(1);
        for _ in 0..5 {
            let now = Utc::now();
            let current = cluster
                .get(&TypeRef::lease(), Some(namespace), LOCK_NAME)
                .await
                .map_err(EngineError::cluster(format!("reading {}", object())))?;
            let (result, took_over) = match current {
                None => {
                    let lease = lease_object(namespace, holder, duration_s, now, None);
                    (cluster.create(&lease).await, None)
                }
                Some(current) => {
                    let previous = LockHolder::of(&current);
                    if let Some(previous) = &previous
                        && previous.identity != holder
                        && !previous.is_stale(now)
                        && !previous.process_gone()
                    {
                        let expires_in_s = previous
                            .expires()
                            .map_or(0, |e| (e - now).num_seconds().max(0) as u64);
                        return Err(EngineError::LockHeld {
                            namespace: namespace.to_string(),
                            name: LOCK_NAME.into(),
                            holder: previous.identity.clone(),
                            since: previous
                                .acquired
                                .map_or_else(|| "an unknown time".into(), clock::rfc3339),
                            expires_in_s,
                        });
                    }
                    let lease = lease_object(namespace, holder, duration_s, now, Some(&current));
                    (
                        cluster.replace(&lease).await,
                        previous.filter(|p| p.identity != holder),
                    )
                }
            };
            match result {
                Ok(stored) => {
                    let lock = Lock::start(cluster, namespace, holder, stored, duration);
                    return Ok(Acquired::Held { lock, took_over });
                }
                // Only a missing namespace makes creating a Lease answer "not found".
                Err(ClusterError::NotFound { .. }) => return Ok(Acquired::NamespaceMissing),
                // Another run moved first: look again.
                Err(ClusterError::Conflict { .. } | ClusterError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(EngineError::cluster(format!("taking {}", object()))(e)),
            }
        }
        Err(EngineError::cluster(format!("taking {}", object()))(
            ClusterError::Other(
                "it kept changing under us; another run is starting at the same time".into(),
            ),
        ))
    }

    fn start(
        cluster: Arc<dyn Cluster>,
        namespace: &str,
        holder: &str,
        lease: Value,
        duration: Duration,
    ) -> Lock {
        let lease = Arc::new(Mutex::new(lease));
        let lost = CancellationToken::new();
        let lost_to = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            cluster.clone(),
            lease.clone(),
            holder.to_string(),
            duration,
            lost.clone(),
            lost_to.clone(),
            stop.clone(),
        ));
        Lock {
            cluster,
            namespace: namespace.to_string(),
            holder: holder.to_string(),
            lease,
            lost,
            lost_to,
            stop,
            renewer,
        }
    }

    /// Cancelled when a renewal finds another holder: the run stops after the current step.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Who took the Lease from us, once [`lost`](Self::lost) fired.
    pub fn lost_to(&self) -> Option<String> {
        self.lost_to.lock().expect("lock state poisoned").clone()
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Stops renewing and frees the Lease, unless someone else holds it by now.
    pub async fn release(mut self) -> Result<(), EngineError> {
        self.stop.cancel();
        let _ = (&mut self.renewer).await;
        if self.lost.is_cancelled() {
            return Ok(());
        }
        let during = format!("releasing lease {}/{LOCK_NAME}", self.namespace);
        let mut lease = self.lease.lock().expect("lock state poisoned").clone();
        for _ in 0..3 {
            let mut freed = lease.clone();
            if let Some(spec) = freed.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("holderIdentity");
                spec.remove("acquireTime");
                spec.remove("renewTime");
            }
            match self.cluster.replace(&freed).await {
                Ok(_) => return Ok(()),
                Err(ClusterError::Conflict { .. }) => {
                    match self
                        .cluster
                        .get(&TypeRef::lease(), Some(&self.namespace), LOCK_NAME)
                        .await
                    {
                        Ok(Some(current))
                            if LockHolder::of(&current)
                                .is_some_and(|h| h.identity == self.holder) =>
                        {
                            lease = current;
                        }
                        Ok(_) => return Ok(()),
                        Err(e) => return Err(EngineError::cluster(during)(e)),
                    }
                }
                Err(ClusterError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(EngineError::cluster(during)(e)),
            }
        }
        Ok(())
    }

    /// `bringup unlock`: frees the Lease whoever holds it. Returns who held it.
    pub async fn break_lock(
        cluster: &dyn Cluster,
        namespace: &str,
    ) -> Result<Option<LockHolder>, EngineError> {
        let during = format!("breaking lease {namespace}/{LOCK_NAME}");
        for _ in 0..5 {
            let Some(current) = cluster
                .get(&TypeRef::lease(), Some(namespace), LOCK_NAME)
                .await
                .map_err(EngineError::cluster(&during))?
            else {
                return Ok(None);
            };
            let Some(holder) = LockHolder::of(&current) else {
                return Ok(None);
            };
            let mut freed = current.clone();
            if let Some(spec) = freed.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("holderIdentity");
                spec.remove("acquireTime");
                spec.remove("renewTime");
            }
            match cluster.replace(&freed).await {
                Ok(_) => return Ok(Some(holder)),
                Err(ClusterError::Conflict { .. }) => continue,
                Err(ClusterError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(EngineError::cluster(during)(e)),
            }
        }
        Err(EngineError::cluster(during)(ClusterError::Other(
            "the lease kept changing; try again".into(),
        )))
    }
}

impl Drop for Lock {
    /// A lock dropped without release stops renewing, so it expires after its duration.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `user@host pid=N run=ID machine=M`: enough for a person to find the other run, and for a
/// run of the same machine to see that it is gone ([`LockHolder::process_gone`]).
pub fn default_holder(run_id: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let mut holder = format!(
        "{user}@{} pid={} run={run_id}",
        hostname(),
        std::process::id()
    );
    if let Some(machine) = machine() {
        holder.push_str(&format!(" machine={machine}"));
    }
    holder
}

/// This machine's id (`/etc/machine-id`, as systemd and D-Bus keep it), hashed to 8 hex
/// digits: the id itself is meant to stay private. `None` where there is none.
pub fn machine() -> Option<String> {
    use sha2::Digest as _;
    let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_string())
        .filter(|id| !id.is_empty())?;
    let digest = sha2::Sha256::digest(format!("bringup machine {id}"));
    Some(hex::encode(&digest[..4]))
}

/// Is there a process with this pid (of any user)? `/proc` where there is one, else `kill -0`.
/// A zombie (dead, not yet reaped by its parent) counts as gone: it does nothing any more.
pub fn process_exists(pid: u32) -> bool {
    if std::path::Path::new("/proc/self").exists() {
        process_in_proc(pid)
    } else {
        process_answers_kill(pid)
    }
}

fn process_in_proc(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

fn process_answers_kill(pid: u32) -> bool {
    // `kill -0` fails for another user's process too, saying the operation is not permitted.
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .output()
        .is_ok_and(|out| {
            out.status.success()
                || String::from_utf8_lossy(&out.stderr)
                    .to_lowercase()
                    .contains("not permitted")
        })
}

/// This machine's name, as a person would recognise it in a lock holder or a claim.
/// Linux's `/proc`, else `HOSTNAME` (which shells set but seldom export), else `uname -n` (macOS).
pub fn hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::process::Command::new("uname")
                    .arg("-n")
                    .output()
                    .ok()
                    .and_then(|out| String::from_utf8(out.stdout).ok())
            })
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown-host".into())
    })
    .clone()
}

fn lease_object(
    namespace: &str,
    holder: &str,
    duration_s: u64,
    now: DateTime<Utc>,
    current: Option<&Value>,
) -> Value {
    let transitions = current
        .and_then(|c| c["spec"]["leaseTransitions"].as_u64())
        .unwrap_or(0)
        + u64::from(
            current
                .and_then(LockHolder::of)
                .is_some_and(|h| h.identity != holder),
        );
    let mut lease = current.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LOCK_NAME, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "bringup"}},
        })
    });
    lease["spec"] = json!({
        "holderIdentity": holder,
        "leaseDurationSeconds": duration_s,
        "acquireTime": clock::micro_time(now),
        "renewTime": clock::micro_time(now),
        "leaseTransitions": transitions,
    });
    lease
}

async fn renew(
    cluster: Arc<dyn Cluster>,
    lease: Arc<Mutex<Value>>,
    holder: String,
    duration: Duration,
    lost: CancellationToken,
    lost_to: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
) {
    let interval = duration / 3;
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let mut renewed = lease.lock().expect("lock state poisoned").clone();
        renewed["spec"]["renewTime"] = json!(clock::micro_time(Utc::now()));
        match cluster.replace(&renewed).await {
            Ok(stored) => {
                *lease.lock().expect("lock state poisoned") = stored;
                last_renewed = tokio::time::Instant::now();
                continue;
            }
            Err(ClusterError::Conflict { .. } | ClusterError::NotFound { .. }) => {
                let namespace = renewed["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                match cluster
                    .get(&TypeRef::lease(), Some(&namespace), LOCK_NAME)
                    .await
                {
                    Ok(Some(current))
                        if LockHolder::of(&current).is_some_and(|h| h.identity == holder) =>
                    {
                        // Still ours (someone touched another field): renew on the fresh version.
                        *lease.lock().expect("lock state poisoned") = current;
                        continue;
                    }
                    Ok(current) => {
                        let other = current
                            .as_ref()
                            .and_then(LockHolder::of)
                            .map_or_else(|| "nobody (the lease was freed)".into(), |h| h.identity);
                        *lost_to.lock().expect("lock state poisoned") = Some(other);
                        lost.cancel();
                        return;
                    }
                    Err(_) => {}
                }
            }
            Err(_) => {}
        }
        if last_renewed.elapsed() > duration {
            *lost_to.lock().expect("lock state poisoned") =
                Some("nobody (renewals failed for longer than the lease duration)".into());
            lost.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fake::FakeCluster;
    use crate::engine::testing::gone_pid;

    fn fake() -> FakeCluster {
        let fake = FakeCluster::new();
        fake.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bringup"}}),
        );
        fake
    }

    fn lease(fake: &FakeCluster) -> Value {
        fake.object(&TypeRef::lease(), Some("bringup"), LOCK_NAME)
            .unwrap()
    }

    async fn take(
        fake: &FakeCluster,
        holder: &str,
        duration: Duration,
    ) -> Result<Acquired, EngineError> {
        Lock::acquire(Arc::new(fake.clone()), "bringup", holder, duration).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn acquire_release_and_acquire_again() {
        let fake = fake();
        let Acquired::Held { lock, took_over } = take(&fake, "me run=1", Duration::from_secs(30))
            .await
            .unwrap()
        else {
            panic!("namespace exists")
        };
        assert!(took_over.is_none());
        assert_eq!(lease(&fake)["spec"]["holderIdentity"], "me run=1");
        assert_eq!(lease(&fake)["spec"]["leaseDurationSeconds"], 30);
        lock.release().await.unwrap();
        assert!(
            lease(&fake)["spec"].get("holderIdentity").is_none(),
            "released lease is free"
        );
        let Acquired::Held { lock, took_over } =
            take(&fake, "other run=2", Duration::from_secs(30))
                .await
                .unwrap()
        else {
            panic!()
        };
        assert!(took_over.is_none(), "a freed lease is not a takeover");
        lock.release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fresh_lease_held_by_another_is_refused_naming_the_holder() {
        let fake = fake();
        let Acquired::Held { lock, .. } =
            take(&fake, "alice@laptop pid=7 run=a", Duration::from_secs(30))
                .await
                .unwrap()
        else {
            panic!()
        };
        let Err(err) = take(&fake, "bob@desk pid=8 run=b", Duration::from_secs(30)).await else {
            panic!("second run must not get the lock")
        };
        assert_eq!(err.exit_code(), 3);
        let message = err.to_string();
        assert!(
            message.contains("held by `alice@laptop pid=7 run=a` since 20"),
            "{message}"
        );
        assert!(message.contains("bringup unlock"), "{message}");
        lock.release().await.unwrap();
    }

    fn fresh_lease(fake: &FakeCluster, holder: &str) {
        let now = clock::micro_time(Utc::now());
        fake.insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LOCK_NAME, "namespace": "bringup"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 300, "acquireTime": now, "renewTime": now}}));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fresh_lease_of_a_gone_process_on_this_machine_is_taken_over_at_once() {
        let machine = machine().expect("this machine has a machine id (/etc/machine-id)");
        let fake = fake();
        let dead = format!(
            "me@{} pid={} run=x machine={machine}",
            hostname(),
            gone_pid()
        );
        fresh_lease(&fake, &dead);
        let Acquired::Held { lock, took_over } =
            take(&fake, "next", Duration::from_secs(30)).await.unwrap()
        else {
            panic!()
        };
        let previous = took_over.expect("a takeover");
        assert_eq!(previous.identity, dead);
        assert!(previous.process_gone());
        assert_eq!(lease(&fake)["spec"]["holderIdentity"], "next");
        lock.release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fresh_lease_is_kept_by_a_live_process_another_machine_or_an_identity_without_a_machine()
     {
        let machine = machine().expect("this machine has a machine id (/etc/machine-id)");
        let host = hostname();
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let gone = gone_pid();
        for holder in [
            format!("me@{host} pid={} run=x machine={machine}", live.id()),
            format!("me@{host} pid={gone} run=x machine=00000000"),
            format!("me@another-host pid={gone} run=x machine={machine}"),
            format!("me@{host} pid={gone} run=x"),
        ] {
            let fake = fake();
            fresh_lease(&fake, &holder);
            let Err(err) = take(&fake, "next", Duration::from_secs(30)).await else {
                panic!("`{holder}` lost its lease")
            };
            assert_eq!(err.exit_code(), 3, "{holder}");
        }
        live.kill().unwrap();
        live.wait().unwrap();
    }

    #[test]
    fn a_process_exists_until_it_is_gone_by_proc_and_by_kill() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(process_in_proc(pid) && process_answers_kill(pid));
        child.kill().unwrap();
        // Killed, not yet reaped: a zombie, which /proc shows and which stores nothing.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!process_in_proc(pid), "a zombie is gone");
        child.wait().unwrap();
        assert!(!process_in_proc(pid) && !process_answers_kill(pid));
        assert!(process_exists(std::process::id()));
    }

    #[test]
    fn the_default_holder_names_user_host_pid_run_and_machine() {
        let holder = default_holder("abc");
        assert!(
            holder.contains(&format!(
                "@{} pid={} run=abc",
                hostname(),
                std::process::id()
            )),
            "{holder}"
        );
        assert!(
            holder.ends_with(&format!(" machine={}", machine().unwrap())),
            "{holder}"
        );
        let id = std::fs::read_to_string("/etc/machine-id").unwrap();
        assert!(
            !holder.contains(id.trim()),
            "the machine id itself stays private"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stale_lease_is_taken_over() {
        let fake = fake();
        let old = clock::micro_time(Utc::now() - chrono::Duration::seconds(120));
        fake.insert(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LOCK_NAME, "namespace": "bringup"},
            "spec": {"holderIdentity": "dead run", "leaseDurationSeconds": 30, "acquireTime": old, "renewTime": old}}));
        let Acquired::Held { lock, took_over } =
            take(&fake, "me", Duration::from_secs(30)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(took_over.unwrap().identity, "dead run");
        assert_eq!(lease(&fake)["spec"]["holderIdentity"], "me");
        assert_eq!(lease(&fake)["spec"]["leaseTransitions"], 1);
        lock.release().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn missing_namespace_is_reported_not_created() {
        let fake = FakeCluster::new();
        assert!(matches!(
            take(&fake, "me", Duration::from_secs(30)).await.unwrap(),
            Acquired::NamespaceMissing
        ));
        assert!(
            fake.object(&TypeRef::namespace(), None, "bringup")
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn renewal_keeps_it_fresh_and_notices_a_takeover() {
        let fake = fake();
        let Acquired::Held { lock, .. } = take(&fake, "me", Duration::from_millis(1500))
            .await
            .unwrap()
        else {
            panic!()
        };
        let first = lease(&fake)["spec"]["renewTime"].clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while lease(&fake)["spec"]["renewTime"] == first {
            assert!(tokio::time::Instant::now() < deadline, "never renewed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!lock.lost().is_cancelled());

        let mut stolen = lease(&fake);
        stolen["spec"]["holderIdentity"] = json!("thief");
        fake.insert(stolen);
        tokio::time::timeout(Duration::from_secs(10), lock.lost().cancelled())
            .await
            .expect("loss noticed");
        assert_eq!(lock.lost_to().as_deref(), Some("thief"));
        lock.release().await.unwrap();
        assert_eq!(
            lease(&fake)["spec"]["holderIdentity"],
            "thief",
            "release leaves the new holder alone"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unlock_frees_a_held_lease() {
        let fake = fake();
        let Acquired::Held { lock, .. } =
            take(&fake, "alice", Duration::from_secs(30)).await.unwrap()
        else {
            panic!()
        };
        let broken = Lock::break_lock(&fake, "bringup").await.unwrap();
        assert_eq!(broken.unwrap().identity, "alice");
        assert!(Lock::break_lock(&fake, "bringup").await.unwrap().is_none());
        let Acquired::Held { lock: second, .. } =
            take(&fake, "bob", Duration::from_secs(30)).await.unwrap()
        else {
            panic!()
        };
        second.release().await.unwrap();
        drop(lock);
    }
}
