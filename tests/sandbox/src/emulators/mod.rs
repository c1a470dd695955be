//! Emulators of the Gitea/Forgejo and Kanidm CLIs and HTTP APIs, served to emulated pods.

pub mod cli_exchange;
pub mod gitea;
pub mod gitea_api;
pub mod gitea_cli;
pub mod gitea_version;
pub mod go_flags;
pub mod random;
pub mod tab_writer;
pub mod kanidm;
pub mod kanidm_error;
pub mod kanidm_version;
