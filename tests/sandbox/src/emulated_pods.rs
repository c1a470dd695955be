//! Pods whose containers are emulated Gitea/Forgejo or Kanidm images: the running
//! [`EmulatorService`], the directory of `sandbox-emu` symlinks first on their PATH, and the
//! process backend an exec into one of them gets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cluster_file::EmulatorInstanceExecDecl;
use crate::emulators::{EmulatorService, InstanceConfig};
use crate::exec::ProcessBackend;

/// The programs an emulated image has; each is a symlink to `sandbox-emu`, which dispatches on
/// its argv[0].
pub const PROGRAMS: [&str; 5] = ["gitea", "forgejo", "kanidm", "kanidmd", "su"];

/// Where `sh`, `cat` and the other real tools of an emulated container come from.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Set to the path of `sandbox-emu` to use that binary rather than the one found by search.
pub const SANDBOX_EMU_ENV: &str = "BRINGUP_SANDBOX_EMU";

/// The emulators could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmulatedPodsError {
    #[error(
        "the cluster file declares emulators but the `sandbox-emu` binary was not found ({searched}); run `cargo build -p bringup-sandbox --bins` or set {SANDBOX_EMU_ENV}"
    )]
    BinaryNotFound { searched: String },
    #[error("{SANDBOX_EMU_ENV}={path} does not name a file")]
    BadOverride { path: PathBuf },
    #[error("cannot prepare the emulated programs in {dir}")]
    Links {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the emulator service")]
    Service(#[source] std::io::Error),
}

/// The emulated instances of a sandbox and what an exec into their pods needs.
pub struct EmulatedPods {
    service: Arc<EmulatorService>,
    bin_dir: PathBuf,
}

impl EmulatedPods {
    /// Finds `sandbox-emu`, links the programs into `dir/emu-bin` and starts the instances.
    pub async fn start(
        dir: &Path,
        configs: Vec<InstanceConfig>,
    ) -> Result<Self, EmulatedPodsError> {
        let binary = locate_sandbox_emu()?;
        let bin_dir = dir.join("emu-bin");
        let links = || -> std::io::Result<()> {
            std::fs::create_dir_all(&bin_dir)?;
            for name in PROGRAMS {
                let link = bin_dir.join(name);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&binary, &link)?;
            }
            Ok(())
        };
        links().map_err(|source| EmulatedPodsError::Links {
            dir: bin_dir.clone(),
            source,
        })?;
        let service = EmulatorService::start(configs)
            .await
            .map_err(EmulatedPodsError::Service)?;
        Ok(Self {
            service: Arc::new(service),
            bin_dir,
        })
    }

    pub fn service(&self) -> &Arc<EmulatorService> {
        &self.service
    }

    /// The backend of an exec into a pod of this instance: a local process with only the
    /// container's environment, the emulated programs first on PATH and HOME = `cwd` (the
    /// Kanidm token cache is keyed by HOME, so pods do not share logins).
    pub fn backend(&self, decl: &EmulatorInstanceExecDecl, cwd: PathBuf) -> ProcessBackend {
        EmulatedPodsEnv {
            bin_dir: self.bin_dir.clone(),
            url: self.service.cli_url(),
        }
        .backend(decl, cwd)
    }
}

/// What an emulated container's environment is made of.
struct EmulatedPodsEnv {
    bin_dir: PathBuf,
    url: String,
}

impl EmulatedPodsEnv {
    fn backend(&self, decl: &EmulatorInstanceExecDecl, cwd: PathBuf) -> ProcessBackend {
        let env = BTreeMap::from([
            ("PATH".to_owned(), SYSTEM_PATH.to_owned()),
            ("BRINGUP_EMULATOR_URL".to_owned(), self.url.clone()),
            (
                "BRINGUP_EMULATOR_INSTANCE".to_owned(),
                decl.instance.clone(),
            ),
            ("BRINGUP_EMULATOR_UID".to_owned(), decl.uid.to_string()),
            ("USER".to_owned(), user_name(decl.uid).to_owned()),
        ]);
        ProcessBackend {
            env,
            path_prepend: vec![self.bin_dir.clone()],
            cwd: Some(cwd),
        }
    }
}

fn user_name(uid: u32) -> &'static str {
    match uid {
        0 => "root",
        _ => "git",
    }
}

/// `sandbox-emu`: from [`SANDBOX_EMU_ENV`], else beside the running executable or in its
/// parent directory (test binaries live in `target/debug/deps`, the bins in `target/debug`),
/// else on PATH.
pub fn locate_sandbox_emu() -> Result<PathBuf, EmulatedPodsError> {
    if let Some(path) = std::env::var_os(SANDBOX_EMU_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(EmulatedPodsError::BadOverride { path })
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("sandbox-emu"));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join("sandbox-emu"));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("sandbox-emu")));
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| EmulatedPodsError::BinaryNotFound {
            searched: format!(
                "looked beside the running executable, in its parent directory and on PATH: {}",
                candidates
                    .iter()
                    .take(2)
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_command_that_builds_it() {
        let error = EmulatedPodsError::BinaryNotFound {
            searched: "looked in /x".into(),
        };
        let text = error.to_string();
        assert!(
            text.contains("cargo build -p bringup-sandbox --bins"),
            "{text}"
        );
        assert!(text.contains(SANDBOX_EMU_ENV), "{text}");
    }

    #[test]
    fn a_rootful_container_runs_as_root_with_the_emulated_programs_first() {
        let decl = EmulatorInstanceExecDecl {
            instance: "gitea".into(),
            uid: 0,
        };
        let env_of = |bin_dir: PathBuf, url: String| {
            let pods = EmulatedPodsEnv { bin_dir, url };
            pods.backend(&decl, PathBuf::from("/pods/gitea/gitea-0"))
        };
        let backend = env_of(PathBuf::from("/emu-bin"), "http://127.0.0.1:1".into());
        assert_eq!(backend.path_prepend, [PathBuf::from("/emu-bin")]);
        assert_eq!(backend.env["BRINGUP_EMULATOR_UID"], "0");
        assert_eq!(backend.env["BRINGUP_EMULATOR_INSTANCE"], "gitea");
        assert_eq!(backend.env["BRINGUP_EMULATOR_URL"], "http://127.0.0.1:1");
        assert_eq!(backend.env["USER"], "root");
        assert_eq!(backend.cwd, Some(PathBuf::from("/pods/gitea/gitea-0")));
    }
}
