//! One emulated service instance (Gitea/Forgejo or Kanidm): its configuration, its CLI
//! programs, its HTTP Router and its snapshot, whatever the product.

use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};

use super::cli_exchange::{CliOutput, CliRequest};
use super::gitea::{Gitea, GiteaConfig, GiteaSnapshot};
use super::kanidm::{Kanidm, KanidmConfig, KanidmSnapshot};
use super::{gitea_api, gitea_cli, kanidm_api, kanidm_cli, kanidmd_cli};

/// Which product an instance emulates, with its starting state.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "product", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProductConfig {
    Gitea(GiteaConfig),
    Kanidm(KanidmConfig),
}

/// A named instance, e.g. `gitea` or `kanidm`; pods name it in `BRINGUP_EMULATOR_INSTANCE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub name: String,
    pub product: ProductConfig,
}

/// The snapshot of any instance, tagged by product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "product", rename_all = "lowercase")]
pub enum InstanceSnapshot {
    Gitea(GiteaSnapshot),
    Kanidm(KanidmSnapshot),
}

/// A running instance; cloning shares the state.
#[derive(Clone)]
pub enum Instance {
    Gitea(Arc<Gitea>),
    Kanidm(Arc<Kanidm>),
}

impl Instance {
    pub fn new(product: ProductConfig) -> Self {
        match product {
            ProductConfig::Gitea(config) => Self::Gitea(Arc::new(Gitea::new(config))),
            ProductConfig::Kanidm(config) => Self::Kanidm(Arc::new(Kanidm::new(config))),
        }
    }

    /// Runs a program of this instance's image; any other name is not installed there.
    pub fn run_cli(&self, request: &CliRequest) -> CliOutput {
        let program = request.program();
        match self {
            Self::Gitea(gitea) if gitea.version().accepts_program(program) => {
                gitea_cli::run(gitea, request)
            }
            Self::Kanidm(kanidm) if program == "kanidm" => kanidm_cli::run(kanidm, request),
            Self::Kanidm(kanidm) if program == "kanidmd" => kanidmd_cli::run(kanidm, request),
            _ => CliOutput::fail(format!("sh: {program}: not found\n"), 127),
        }
    }

    pub fn router(&self) -> Router {
        match self {
            Self::Gitea(gitea) => gitea_api::router(gitea.clone()),
            Self::Kanidm(kanidm) => kanidm_api::router(kanidm.clone()),
        }
    }

    pub fn snapshot(&self) -> InstanceSnapshot {
        match self {
            Self::Gitea(gitea) => InstanceSnapshot::Gitea(gitea.snapshot()),
            Self::Kanidm(kanidm) => InstanceSnapshot::Kanidm(kanidm.snapshot()),
        }
    }
}
