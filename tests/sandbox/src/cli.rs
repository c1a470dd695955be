//! The `bringup-sandbox` command line: `up` (foreground or `--detach`), `down`, `dump`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::sandbox::{Sandbox, SandboxOptions};

#[derive(Debug, Parser)]
#[command(
    name = "bringup-sandbox",
    about = "A local emulation of the Kubernetes API server for bringup's tests and demo"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the sandbox; it is ready when DIR/kubeconfig exists
    Up {
        /// The cluster file (tests/sandbox/clusters/*.yaml)
        #[arg(long)]
        cluster: PathBuf,
        /// Where the kubeconfig, audit log, pidfile and log go
        #[arg(long)]
        dir: PathBuf,
        /// The port on 127.0.0.1 (random when not given)
        #[arg(long)]
        port: Option<u16>,
        /// Run in the background and return once it is ready
        #[arg(long)]
        detach: bool,
    },
    /// Stop the sandbox running for DIR and everything it started
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print every object of the sandbox running for DIR as YAML
    Dump {
        #[arg(long)]
        dir: PathBuf,
    },
}

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            cluster,
            dir,
            port,
            detach: true,
        } => up_detached(&cluster, &dir, port),
        Command::Up {
            cluster,
            dir,
            port,
            detach: false,
        } => runtime()?.block_on(up(cluster, dir, port)),
        Command::Down { dir } => down(&dir),
        Command::Dump { dir } => runtime()?.block_on(dump(&dir)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn pidfile(dir: &Path) -> PathBuf {
    dir.join("sandbox.pid")
}

async fn up(cluster: PathBuf, dir: PathBuf, port: Option<u16>) -> anyhow::Result<()> {
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(pidfile(&dir), std::process::id().to_string())?;
    let sandbox = Sandbox::start(SandboxOptions {
        cluster_file: cluster,
        dir: dir.clone(),
        port,
    })
    .await?;
    eprintln!(
        "sandbox API server at {}; KUBECONFIG={}",
        sandbox.url(),
        sandbox.kubeconfig_path().display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
    let _ = std::fs::remove_file(pidfile(&dir));
    Ok(())
}

fn up_detached(cluster: &Path, dir: &Path, port: Option<u16>) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(pid) = running_pid(dir) {
        bail!(
            "a sandbox already runs for {} (pid {pid}); stop it with `bringup-sandbox down --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let log_path = dir.join("sandbox.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("up")
        .arg("--cluster")
        .arg(cluster)
        .arg("--dir")
        .arg(dir);
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    // Its own process group: a Ctrl-C in the terminal that started it does not stop it.
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .context("starting the sandbox in the background")?;
    std::fs::write(pidfile(dir), child.id().to_string())?;
    let started = Instant::now();
    while !kubeconfig.exists() {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "the sandbox exited with {status} before it was ready; its log ({}):\n{log}",
                log_path.display()
            );
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            bail!(
                "the sandbox was not ready after {}s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("{}", kubeconfig.display());
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    // A zombie still has /proc/PID; only a live process has a state other than Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    process_alive(pid).then_some(pid)
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() && process_alive(pid) {
        bail!("kill -{sig} {pid} failed with {status}");
    }
    Ok(())
}

fn down(dir: &Path) -> anyhow::Result<()> {
    let Some(pid) = running_pid(dir) else {
        let _ = std::fs::remove_file(pidfile(dir));
        let _ = std::fs::remove_file(dir.join("kubeconfig"));
        eprintln!("no sandbox runs for {}", dir.display());
        return Ok(());
    };
    signal(pid, "TERM")?;
    let started = Instant::now();
    while process_alive(pid) {
        if started.elapsed() > STOP_TIMEOUT {
            signal(pid, "KILL")?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(pidfile(dir));
    let _ = std::fs::remove_file(dir.join("kubeconfig"));
    eprintln!("stopped the sandbox for {} (pid {pid})", dir.display());
    Ok(())
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    Ok(resp.json().await?)
}

async fn dump(dir: &Path) -> anyhow::Result<()> {
    let (server, token) = crate::kubeconfig::read(&dir.join("kubeconfig")).with_context(|| {
        format!(
            "is a sandbox running for {}? start one with `bringup-sandbox up`",
            dir.display()
        )
    })?;
    let client = reqwest::Client::new();
    let mut group_versions = vec![("api/v1".to_owned(), "v1".to_owned())];
    let groups = get_json(&client, &format!("{server}/apis"), &token).await?;
    for g in groups["groups"].as_array().cloned().unwrap_or_default() {
        if let Some(gv) = g["preferredVersion"]["groupVersion"].as_str() {
            group_versions.push((format!("apis/{gv}"), gv.to_owned()));
        }
    }
    let mut out = String::new();
    for (path, api_version) in group_versions {
        let list = get_json(&client, &format!("{server}/{path}"), &token).await?;
        for r in list["resources"].as_array().cloned().unwrap_or_default() {
            let name = r["name"].as_str().unwrap_or_default();
            let listable = r["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v == "list"));
            if name.contains('/') || !listable {
                continue;
            }
            let items = get_json(&client, &format!("{server}/{path}/{name}"), &token).await?;
            for mut item in items["items"].as_array().cloned().unwrap_or_default() {
                item["apiVersion"] = Value::String(api_version.clone());
                item["kind"] = r["kind"].clone();
                if let Some(m) = item.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&item)?);
            }
        }
    }
    print!("{out}");
    Ok(())
}
