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
#[serde(deny_unknown_fields)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_from_yaml_and_refuse_unknown_fields() {
        let yaml = "- name: gitea\n  product:\n    product: gitea\n    version: {flavor: forgejo, major: 11}\n    admin: {username: root_admin, password: pw, email: a@example.com}\n    app_url: http://gitea/\n    run_user: git\n    run_uid: 1000\n    config_path: /data/gitea/conf/app.ini\n- name: kanidm\n  product: {product: kanidm, version: '1.3', domain: idm.example.com, origin: https://idm.example.com}\n";
        let configs: Vec<InstanceConfig> = serde_yaml::from_str(yaml).unwrap();
        let gitea = Instance::new(configs[0].product.clone());
        let InstanceSnapshot::Gitea(snapshot) = gitea.snapshot() else {
            panic!("not gitea")
        };
        assert_eq!(snapshot.version, "11.0.1+gitea-1.22.0");
        assert_eq!(snapshot.users[0].username, "root_admin");
        let kanidm = Instance::new(configs[1].product.clone());
        let InstanceSnapshot::Kanidm(snapshot) = kanidm.snapshot() else {
            panic!("not kanidm")
        };
        assert_eq!(snapshot.version, "1.3.3");
        let typo = "product: kanidm\nversion: '1.7'\ndomain: d\norigin: o\ndomian: x\n";
        assert!(serde_yaml::from_str::<ProductConfig>(typo).is_err());
    }

    #[test]
    fn programs_of_another_image_are_not_found() {
        let kanidm = Instance::new(ProductConfig::Kanidm(KanidmConfig::new(
            super::super::kanidm_version::KanidmVersion::V1_7,
        )));
        let out = kanidm.run_cli(&CliRequest::new(&["/usr/local/bin/gitea", "admin"]));
        assert_eq!(out, CliOutput::fail("sh: gitea: not found\n", 127));
    }
}
