//! One emulated Gitea/Forgejo instance: its database (users, tokens, login sources, OAuth2
//! apps), shared by the CLI and HTTP views, plus counters and a secret-free snapshot for tests.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gitea_version::GiteaVersion;
use super::random::{gitea_access_token, gitea_client_secret, sha256_hex};

/// A user that exists when the instance starts (the chart's admin).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiteaUserSeed {
    pub username: String,
    pub password: String,
    pub email: String,
}

/// How an emulated Gitea instance starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiteaConfig {
    pub version: GiteaVersion,
    pub admin: Option<GiteaUserSeed>,
    /// `ROOT_URL`; error bodies point at `<app_url>api/swagger`.
    pub app_url: String,
    /// `RUN_USER` in app.ini and its uid in the image (`git`, 1000 in the official images).
    pub run_user: String,
    pub run_uid: u32,
    /// The app.ini the image's wrapper points at; `--config` naming another file is fatal.
    pub config_path: String,
}

impl GiteaConfig {
    pub fn new(version: GiteaVersion) -> Self {
        Self {
            version,
            admin: Some(GiteaUserSeed {
                username: "gitea_admin".into(),
                password: "r8sA8CPHD9!bt6d".into(),
                email: "admin@example.com".into(),
            }),
            app_url: "http://localhost:3000/".into(),
            run_user: "git".into(),
            run_uid: 1000,
            config_path: "/data/gitea/conf/app.ini".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password: String,
    pub full_name: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub restricted: bool,
    pub must_change_password: bool,
    pub created: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessToken {
    pub id: i64,
    pub uid: i64,
    pub name: String,
    pub token: String,
    pub scopes: Vec<String>,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
}

/// An OAuth2 login source; every flag `add-oauth` knows is kept as it was last set.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthSource {
    pub id: i64,
    pub name: String,
    pub is_active: bool,
    pub provider: String,
    pub client_id: String,
    pub client_secret: String,
    pub auto_discover_url: String,
    pub custom_urls: Vec<(String, String)>,
    pub icon_url: String,
    pub scopes: Vec<String>,
    pub skip_local_2fa: bool,
    pub required_claim_name: String,
    pub required_claim_value: String,
    pub group_claim_name: String,
    pub admin_group: String,
    pub restricted_group: String,
    pub group_team_map: String,
    pub group_team_map_removal: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct OAuth2App {
    pub id: i64,
    pub uid: i64,
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub confidential_client: bool,
    pub skip_secondary_authorization: bool,
    pub redirect_uris: Vec<String>,
    pub created: DateTime<Utc>,
}

/// How often each mutation happened, so tests can prove a rerun changed nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaCounters {
    pub users_created: u32,
    pub tokens_created: u32,
    pub tokens_deleted: u32,
    pub oauth2_apps_created: u32,
    pub oauth2_apps_patched: u32,
    pub oauth2_apps_deleted: u32,
    pub auth_sources_added: u32,
    pub auth_sources_updated: u32,
    pub auth_sources_deleted: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaUserView {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_admin: bool,
    pub must_change_password: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaTokenView {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub token_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaAuthSourceView {
    pub id: i64,
    pub name: String,
    pub is_active: bool,
    pub provider: String,
    pub client_id: String,
    pub client_secret_sha256: String,
    pub auto_discover_url: String,
    pub scopes: Vec<String>,
    pub skip_local_2fa: bool,
    pub group_claim_name: String,
    pub admin_group: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaOAuth2AppView {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub client_id: String,
    pub client_secret_sha256: String,
    pub confidential_client: bool,
    pub redirect_uris: Vec<String>,
}

/// A read-only, secret-free picture of an instance (secrets appear as sha256 hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiteaSnapshot {
    pub version: String,
    pub users: Vec<GiteaUserView>,
    pub tokens: Vec<GiteaTokenView>,
    pub auth_sources: Vec<GiteaAuthSourceView>,
    pub oauth2_apps: Vec<GiteaOAuth2AppView>,
    pub counters: GiteaCounters,
}

pub(crate) struct GiteaState {
    pub config: GiteaConfig,
    pub users: Vec<User>,
    pub tokens: Vec<AccessToken>,
    pub sources: Vec<AuthSource>,
    pub apps: Vec<OAuth2App>,
    pub counters: GiteaCounters,
    next_user_id: i64,
    next_token_id: i64,
    next_source_id: i64,
    next_app_id: i64,
}

/// Why a token could not be created; the texts are Gitea's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("access token name has been used already")]
    NameUsed,
    #[error("invalid access token scope provided: invalid access token scope: {0}")]
    InvalidScope(String),
}

/// The scopes Gitea 1.21–1.24 knows (`models/auth/access_token_scope.go`).
const SCOPE_CATEGORIES: &[&str] = &[
    "activitypub",
    "admin",
    "misc",
    "notification",
    "organization",
    "package",
    "issue",
    "repository",
    "user",
];

/// Normalises a scope list the way `AccessTokenScope.Normalize` does: validates every entry,
/// drops duplicates and reads implied by writes, collapses to `all` when it is present.
pub(crate) fn normalize_scopes(raw: &[String]) -> Result<Vec<String>, TokenError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let valid = scope == "all"
            || scope == "public-only"
            || scope.split_once(':').is_some_and(|(level, cat)| {
                (level == "read" || level == "write") && SCOPE_CATEGORIES.contains(&cat)
            });
        if !valid {
            return Err(TokenError::InvalidScope(scope.to_string()));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if scopes.iter().any(|s| s == "all") {
        let public_only = scopes.iter().any(|s| s == "public-only");
        return Ok(if public_only {
            vec!["all".into(), "public-only".into()]
        } else {
            vec!["all".into()]
        });
    }
    let writes: Vec<String> = scopes
        .iter()
        .filter_map(|s| s.strip_prefix("write:").map(str::to_string))
        .collect();
    scopes.retain(|s| {
        !s.strip_prefix("read:")
            .is_some_and(|cat| writes.iter().any(|w| w == cat))
    });
    Ok(scopes)
}

/// Whether a token with `held` scopes satisfies `required` (`write:x` implies `read:x`).
pub(crate) fn scopes_allow(held: &[String], required: &str) -> bool {
    held.iter().any(|s| {
        s == "all"
            || s == required
            || required
                .strip_prefix("read:")
                .is_some_and(|cat| *s == format!("write:{cat}"))
    })
}

/// Whether any permission scope is present (`HasPermissionScope`).
pub(crate) fn has_permission_scope(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s != "public-only")
}

impl GiteaState {
    fn new(config: GiteaConfig) -> Self {
        let mut state = Self {
            config,
            users: Vec::new(),
            tokens: Vec::new(),
            sources: Vec::new(),
            apps: Vec::new(),
            counters: GiteaCounters::default(),
            next_user_id: 1,
            next_token_id: 1,
            next_source_id: 1,
            next_app_id: 1,
        };
        if let Some(seed) = state.config.admin.clone() {
            state.insert_user(&seed.username, &seed.email, &seed.password, true, false);
            state.counters = GiteaCounters::default();
        }
        state
    }

    pub fn version(&self) -> GiteaVersion {
        self.config.version
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    pub fn user_by_id(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn insert_user(
        &mut self,
        name: &str,
        email: &str,
        password: &str,
        admin: bool,
        must_change: bool,
    ) -> i64 {
        let id = self.next_user_id;
        self.next_user_id += 1;
        self.users.push(User {
            id,
            name: name.to_string(),
            email: email.to_string(),
            password: password.to_string(),
            full_name: String::new(),
            is_admin: admin,
            is_active: true,
            restricted: false,
            must_change_password: must_change,
            created: Utc::now(),
        });
        self.counters.users_created += 1;
        id
    }

    /// Creates a token after the checks both the CLI and the API make (name unique per user,
    /// scopes valid); callers add their own version-specific scope rules first.
    pub fn create_token(
        &mut self,
        uid: i64,
        name: &str,
        scopes: Vec<String>,
    ) -> Result<&AccessToken, TokenError> {
        if self.tokens.iter().any(|t| t.uid == uid && t.name == name) {
            return Err(TokenError::NameUsed);
        }
        let id = self.next_token_id;
        self.next_token_id += 1;
        self.tokens.push(AccessToken {
            id,
            uid,
            name: name.to_string(),
            token: gitea_access_token(),
            scopes,
            created: Utc::now(),
            last_used: None,
        });
        self.counters.tokens_created += 1;
        Ok(self.tokens.last().expect("token just pushed"))
    }

    pub fn delete_token(&mut self, id: i64) {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.id != id);
        if self.tokens.len() < before {
            self.counters.tokens_deleted += 1;
        }
    }

    pub fn add_source(&mut self, mut source: AuthSource) -> i64 {
        source.id = self.next_source_id;
        self.next_source_id += 1;
        let id = source.id;
        self.sources.push(source);
        self.counters.auth_sources_added += 1;
        id
    }

    pub fn create_app(
        &mut self,
        uid: i64,
        name: &str,
        redirect_uris: Vec<String>,
        confidential: bool,
        skip: bool,
    ) -> &OAuth2App {
        let id = self.next_app_id;
        self.next_app_id += 1;
        self.apps.push(OAuth2App {
            id,
            uid,
            name: name.to_string(),
            client_id: uuid::Uuid::new_v4().to_string(),
            client_secret: gitea_client_secret(),
            confidential_client: confidential,
            skip_secondary_authorization: skip,
            redirect_uris,
            created: Utc::now(),
        });
        self.counters.oauth2_apps_created += 1;
        self.apps.last().expect("app just pushed")
    }

    fn snapshot(&self) -> GiteaSnapshot {
        let owner = |uid: i64| {
            self.user_by_id(uid)
                .map(|u| u.name.clone())
                .unwrap_or_default()
        };
        GiteaSnapshot {
            version: self.config.version.version_string(),
            users: self
                .users
                .iter()
                .map(|u| GiteaUserView {
                    id: u.id,
                    username: u.name.clone(),
                    email: u.email.clone(),
                    is_admin: u.is_admin,
                    must_change_password: u.must_change_password,
                })
                .collect(),
            tokens: self
                .tokens
                .iter()
                .map(|t| GiteaTokenView {
                    id: t.id,
                    owner: owner(t.uid),
                    name: t.name.clone(),
                    scopes: t.scopes.clone(),
                    token_sha256: sha256_hex(&t.token),
                })
                .collect(),
            auth_sources: self
                .sources
                .iter()
                .map(|s| GiteaAuthSourceView {
                    id: s.id,
                    name: s.name.clone(),
                    is_active: s.is_active,
                    provider: s.provider.clone(),
                    client_id: s.client_id.clone(),
                    client_secret_sha256: sha256_hex(&s.client_secret),
                    auto_discover_url: s.auto_discover_url.clone(),
                    scopes: s.scopes.clone(),
                    skip_local_2fa: s.skip_local_2fa,
                    group_claim_name: s.group_claim_name.clone(),
                    admin_group: s.admin_group.clone(),
                })
                .collect(),
            oauth2_apps: self
                .apps
                .iter()
                .map(|a| GiteaOAuth2AppView {
                    id: a.id,
                    owner: owner(a.uid),
                    name: a.name.clone(),
                    client_id: a.client_id.clone(),
                    client_secret_sha256: sha256_hex(&a.client_secret),
                    confidential_client: a.confidential_client,
                    redirect_uris: a.redirect_uris.clone(),
                })
                .collect(),
            counters: self.counters.clone(),
        }
    }
}

/// An emulated Gitea instance; share it as `Arc<Gitea>` between its CLI and HTTP views.
pub struct Gitea {
    state: Mutex<GiteaState>,
}

impl Gitea {
    pub fn new(config: GiteaConfig) -> Self {
        Self {
            state: Mutex::new(GiteaState::new(config)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, GiteaState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> GiteaSnapshot {
        self.lock().snapshot()
    }

    pub fn version(&self) -> GiteaVersion {
        self.lock().version()
    }

    /// Whether `token` is a live access token of `username` (tests check a Secret's value).
    pub fn token_is_valid(&self, username: &str, token: &str) -> bool {
        let state = self.lock();
        let Some(user) = state.user(username) else {
            return false;
        };
        state
            .tokens
            .iter()
            .any(|t| t.uid == user.id && t.token == token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_normalise_like_gitea() {
        assert_eq!(
            normalize_scopes(&s(&["read:user", "write:user", "read:repository"])).unwrap(),
            s(&["write:user", "read:repository"])
        );
        assert_eq!(
            normalize_scopes(&s(&["all", "write:user"])).unwrap(),
            s(&["all"])
        );
        assert_eq!(
            normalize_scopes(&s(&["write:users"]))
                .unwrap_err()
                .to_string(),
            "invalid access token scope provided: invalid access token scope: write:users"
        );
        assert!(scopes_allow(&s(&["write:user"]), "read:user"));
        assert!(!scopes_allow(&s(&["read:user"]), "write:user"));
        assert!(!has_permission_scope(&s(&["public-only"])));
    }

    #[test]
    fn seeded_admin_is_user_one_and_counters_start_at_zero() {
        let gitea = Gitea::new(GiteaConfig::new(GiteaVersion::Gitea { minor: 24 }));
        let snap = gitea.snapshot();
        assert_eq!(snap.users[0].id, 1);
        assert!(snap.users[0].is_admin);
        assert_eq!(snap.counters, GiteaCounters::default());
    }
}
