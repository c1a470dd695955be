//! Shared harness for the end-to-end tests: a sandbox cluster on its own thread, the real
//! `bringup` binary pointed at it, and readers for the audit log and cluster objects.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use bringup_sandbox::audit::{self, AuditEntry};
use bringup_sandbox::{SandboxHandle, SandboxOptions};
use serde_json::Value;

pub const CANARY: &str = "canary-Zq8vX2mK4pT7wR1y";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `phases/` that make S1: shared secrets, then 40-kanidm to 70-woodpecker.
pub const S1_PHASE_FILES: &[&str] = &["values.yaml", "10-", "4", "5", "6", "7"];

/// The files of `phases/` that make the Vault bring-up (S2 steps 1-5): shared secrets, vault,
/// external-secrets, and the values.
pub const VAULT_PHASE_FILES: &[&str] = &["values.yaml", "sandbox-values.yaml", "10-", "20-", "30-"];

/// Copies the files of the reference `phases/` whose names start with one of `prefixes`.
pub fn copy_phase_files(prefixes: &[&str], to: &Path) {
    std::fs::create_dir_all(to).expect("phases dir");
    for entry in std::fs::read_dir(repo().join("phases")).expect("phases/") {
        let path = entry.expect("phases entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            std::fs::copy(&path, to.join(&name)).expect("copy phase file");
        }
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A sandbox cluster with a temporary directory, and the phases the test runs.
pub struct Env {
    pub sandbox: SandboxHandle,
    pub phases: PathBuf,
    _dir: tempfile::TempDir,
    _phases_dir: Option<tempfile::TempDir>,
}

impl Env {
    /// A sandbox from `tests/fixtures/e2e/<cluster>.yaml` with phases from `tests/fixtures/e2e/<phases>/`.
    pub fn new(cluster: &str, phases: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = SandboxHandle::start(SandboxOptions {
            cluster_file: fixtures().join("e2e").join(format!("{cluster}.yaml")),
            dir: dir.path().join("sandbox"),
            port: None,
        })
        .expect("the sandbox starts");
        Env {
            sandbox,
            phases: fixtures().join("e2e").join(phases),
            _dir: dir,
            _phases_dir: None,
        }
    }

    /// A sandbox from any cluster file, with the phases of any directory (the real
    /// `phases/` and `tests/sandbox/clusters/`).
    pub fn from_paths(cluster_file: &Path, phases: &Path) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = SandboxHandle::start(SandboxOptions {
            cluster_file: cluster_file.to_path_buf(),
            dir: dir.path().join("sandbox"),
            port: None,
        })
        .expect("the sandbox starts");
        Env {
            sandbox,
            phases: phases.to_path_buf(),
            _dir: dir,
            _phases_dir: None,
        }
    }

    /// A sandbox from any cluster file with some of the reference `phases/` files (those whose
    /// names start with one of `prefixes`), so phases for pods the cluster lacks stay out.
    pub fn with_phase_files(cluster_file: &Path, prefixes: &[&str]) -> Env {
        let phases = tempfile::tempdir().expect("temp dir");
        copy_phase_files(prefixes, phases.path());
        let mut env = Env::from_paths(cluster_file, phases.path());
        env._phases_dir = Some(phases);
        env
    }

    /// A sandbox from `tests/sandbox/clusters/<cluster>.yaml` with the S1 phase files of the
    /// reference bring-up in `phases/` (shared secrets, Kanidm, Dex, Gitea, Renovate,
    /// Woodpecker, and `values.yaml`), copied so the Vault phases, which need an OpenBao this
    /// cluster lacks, stay out.
    pub fn s1(cluster: &str) -> Env {
        Env::s1_edited(cluster, |text| text)
    }

    /// [`Env::s1`] with the cluster file's text changed first (another product flavour, uid).
    pub fn s1_edited(cluster: &str, edit: impl FnOnce(String) -> String) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(
            root.join("tests/sandbox/clusters")
                .join(format!("{cluster}.yaml")),
        )
        .expect("cluster file");
        let cluster_file = dir.path().join("cluster.yaml");
        std::fs::write(&cluster_file, edit(text)).expect("write cluster file");
        let sandbox = SandboxHandle::start(SandboxOptions {
            cluster_file,
            dir: dir.path().join("sandbox"),
            port: None,
        })
        .expect("the sandbox starts");
        let phases = dir.path().join("phases");
        copy_phase_files(S1_PHASE_FILES, &phases);
        Env {
            sandbox,
            phases,
            _dir: dir,
            _phases_dir: None,
        }
    }

    /// `bringup` against this sandbox, without a terminal, with a short lock duration.
    pub fn bringup(&self) -> std::process::Command {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("bringup"));
        command
            .env("KUBECONFIG", self.sandbox.kubeconfig_path())
            .env("BRINGUP_PHASES", &self.phases)
            .env("BRINGUP_LOCK_DURATION", "2s")
            .env("NO_COLOR", "1")
            .env_remove("BRINGUP_STATE_NAMESPACE")
            .env_remove("RUST_LOG");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.bringup()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bringup runs")
    }

    /// The requests bringup made: the audit log without the sandbox's own controllers
    /// (the External Secrets emulation polls the API on its own).
    pub fn audit(&self) -> Vec<AuditEntry> {
        audit::read(self.sandbox.audit_path())
            .into_iter()
            .filter(|e| e.user_agent != bringup_sandbox::controllers::USER_AGENT)
            .collect()
    }

    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.sandbox
            .state()
            .get_object(api_version, kind, namespace, name)
            .ok()
    }

    /// A Secret's data, decoded.
    pub fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        use base64::Engine as _;
        let secret = self.object("v1", "Secret", Some(namespace), name)?;
        let data = secret["data"].as_object().cloned().unwrap_or_default();
        Some(
            data.into_iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap();
                    (k, String::from_utf8(bytes).unwrap())
                })
                .collect(),
        )
    }

    /// The checkpoint ConfigMap as text.
    pub fn checkpoint_text(&self) -> String {
        self.object("v1", "ConfigMap", Some("bringup"), "bringup-state")
            .map(|cm| cm.to_string())
            .unwrap_or_default()
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the process exited with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Replaces what changes from run to run (timestamps, durations, ports, run ids) so output
/// can be snapshot-tested.
pub fn normalize(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[time]"),
        (r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[port]"),
        (r"run [0-9a-f]{8}", "run [id]"),
        (r"\b\d+(\.\d+)?m?s\b", "[elapsed]"),
    ];
    let mut text = text.to_string();
    for (pattern, replacement) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *replacement)
            .into_owned();
    }
    text
}
