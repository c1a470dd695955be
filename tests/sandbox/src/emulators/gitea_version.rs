//! Which Gitea or Forgejo release an emulated instance behaves as, and the differences that follow.

use serde::{Deserialize, Serialize};

/// Gitea `1.21`..`1.24` or Forgejo `7`..`11`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flavor", rename_all = "lowercase")]
pub enum GiteaVersion {
    Gitea { minor: u8 },
    Forgejo { major: u8 },
}

impl GiteaVersion {
    pub fn is_forgejo(self) -> bool {
        matches!(self, Self::Forgejo { .. })
    }

    /// The Gitea minor version the release is built on (Forgejo 7/8 on 1.21, 9–11 on 1.22).
    pub fn base_minor(self) -> u8 {
        match self {
            Self::Gitea { minor } => minor,
            Self::Forgejo { major } if major <= 8 => 21,
            Self::Forgejo { .. } => 22,
        }
    }

    /// Product name as it appears in fatal log lines.
    pub fn product(self) -> &'static str {
        if self.is_forgejo() {
            "Forgejo"
        } else {
            "Gitea"
        }
    }

    /// What `GET /api/v1/version` answers.
    pub fn version_string(self) -> String {
        match self {
            Self::Gitea { minor: 21 } => "1.21.11".into(),
            Self::Gitea { minor: 22 } => "1.22.6".into(),
            Self::Gitea { minor: 23 } => "1.23.8".into(),
            Self::Gitea { minor } => format!("1.{minor}.7"),
            Self::Forgejo { major: 7 } => "7.0.15+gitea-1.21.11".into(),
            Self::Forgejo { major: 8 } => "8.0.3+gitea-1.21.11".into(),
            Self::Forgejo { major } => format!("{major}.0.1+gitea-1.22.0"),
        }
    }

    /// Program names that run this instance's CLI (Forgejo images symlink `forgejo` → `gitea`).
    pub fn accepts_program(self, program: &str) -> bool {
        program == "gitea" || (self.is_forgejo() && program == "forgejo")
    }

    fn gitea_at_least(self, minor: u8) -> bool {
        matches!(self, Self::Gitea { minor: m } if m >= minor)
    }

    /// v1.24 prints `New user …` before `Access token …` in `user create`.
    pub fn user_before_token(self) -> bool {
        self.gitea_at_least(24)
    }

    /// `generate-access-token --scopes` defaults to `all` and a scope-less token is refused (1.23+).
    pub fn cli_scopes_default_all(self) -> bool {
        self.gitea_at_least(23)
    }

    /// `you must…` is lowercase from 1.23; before and in Forgejo it is `You must…`.
    pub fn lowercase_username_error(self) -> bool {
        self.gitea_at_least(23)
    }

    /// `--access-token-name` / `--access-token-scopes` on `user create` (1.23+).
    pub fn user_create_token_flags(self) -> bool {
        self.gitea_at_least(23)
    }

    /// `--user-type` / `--fullname` on `user create` (1.24+).
    pub fn user_create_type_flags(self) -> bool {
        self.gitea_at_least(24)
    }

    /// `scopes` in token JSON and 400 on a scope-less API token (v1.22+ and Forgejo built on it).
    pub fn api_token_scopes(self) -> bool {
        self.base_minor() >= 22
    }

    /// v1.24 token JSON has `created_at` / `last_used_at`, and 404 bodies carry `errors`.
    pub fn api_1_24_shapes(self) -> bool {
        self.gitea_at_least(24)
    }

    /// `skip_secondary_authorization` on OAuth2 apps (Gitea 1.23+, never Forgejo).
    pub fn skip_secondary_authorization(self) -> bool {
        self.gitea_at_least(23)
    }

    /// Forgejo 10+ requires basic auth only on POST/DELETE of `users/{u}/tokens`.
    pub fn token_list_allows_token_auth(self) -> bool {
        matches!(self, Self::Forgejo { major } if major >= 10)
    }

    /// v1.24 keeps `--skip-local-2fa` as the Source's TwoFactorPolicy, recomputed on every update.
    pub fn two_factor_policy_on_source(self) -> bool {
        self.gitea_at_least(24)
    }
}
