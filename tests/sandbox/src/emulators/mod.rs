//! Emulators of the Gitea/Forgejo and Kanidm CLIs and HTTP APIs, served to emulated pods.
//!
//! Contract with the pod exec layer: put symlinks `gitea`, `forgejo`, `kanidm`, `kanidmd` and
//! `su` → the `sandbox-emu` binary first in the exec's PATH and set `BRINGUP_EMULATOR_URL`
//! ([`EmulatorService::cli_url`]), `BRINGUP_EMULATOR_INSTANCE` (the instance name) and
//! `BRINGUP_EMULATOR_UID` (the container's uid: 0 for the rootful Gitea image, 1000 rootless).
//! Forward the pod's service port to [`EmulatorService::http_addr`].

pub mod cli_exchange;
pub mod gitea;
pub mod gitea_api;
pub mod gitea_cli;
pub mod gitea_version;
pub mod go_flags;
pub mod instance;
pub mod kanidm;
pub mod kanidm_api;
pub mod kanidm_cli;
pub mod kanidm_error;
pub mod kanidm_version;
pub mod kanidmd_cli;
pub mod random;
pub mod service;
pub mod tab_writer;

pub use cli_exchange::{CliOutput, CliRequest, CliResponse};
pub use gitea::{Gitea, GiteaConfig, GiteaSnapshot, GiteaUserSeed};
pub use gitea_version::GiteaVersion;
pub use instance::{Instance, InstanceConfig, InstanceSnapshot, ProductConfig};
pub use kanidm::{Kanidm, KanidmConfig, KanidmSnapshot};
pub use kanidm_version::KanidmVersion;
pub use service::EmulatorService;
