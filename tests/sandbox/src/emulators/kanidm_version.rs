//! Which Kanidm release an emulated instance behaves as, and the differences that follow.

use serde::{Deserialize, Serialize};

/// Kanidm `1.3` (1.3.3) or `1.7` (1.7.4) syntax and texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KanidmVersion {
    #[serde(rename = "1.3")]
    V1_3,
    #[serde(rename = "1.7")]
    V1_7,
}

impl KanidmVersion {
    pub fn version_string(self) -> &'static str {
        match self {
            Self::V1_3 => "1.3.3",
            Self::V1_7 => "1.7.4",
        }
    }

    /// The secret-reset subcommand: `reset-secrets` until 1.5, `reset-basic-secret` from 1.6 (no alias).
    pub fn reset_secret_command(self) -> &'static str {
        match self {
            Self::V1_3 => "reset-secrets",
            Self::V1_7 => "reset-basic-secret",
        }
    }

    /// `oauth2 create` sends `oauth2_strict_redirect_uri=["true"]` from 1.4.
    pub fn strict_redirect_on_create(self) -> bool {
        self == Self::V1_7
    }

    /// `--accept-invalid-certs` exists from 1.6.
    pub fn accept_invalid_certs_flag(self) -> bool {
        self == Self::V1_7
    }

    /// 1.7's `handle_client_error` prints `OperationId: "<opid>"` first and a fixed 404 text.
    pub fn prints_operation_id(self) -> bool {
        self == Self::V1_7
    }
}
