//! One emulated Kanidm server: accounts, sessions, groups and OAuth2 clients, shared by the
//! `kanidm`/`kanidmd` CLIs and the REST API, plus counters and a secret-free snapshot.
//!
//! The CLI's token cache (`~/.cache/kanidm_tokens`) lives here, keyed by the pod's `$HOME`,
//! the `-I` instance and the account name: the multi-call binary runs the CLI server-side, so
//! the pod's filesystem is out of reach, and a HOME shared by two pods behaves like a shared
//! cache would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::kanidm_error::KanidmError;
use super::kanidm_version::KanidmVersion;
use super::random::{alphanumeric, sha256_hex};

/// A ProtoEntry's attributes: `{"attr": ["value", …]}`, sorted like kanidm's BTreeMap.
pub type Attrs = BTreeMap<String, Vec<String>>;

/// How long a privileged (read-write) session stays privileged; UNCONFIRMED default, 15 minutes.
pub const PRIVILEGE_EXPIRY_MINUTES: i64 = 15;
/// How long any session lives; UNCONFIRMED default.
pub const SESSION_EXPIRY_HOURS: i64 = 8;

/// How an emulated Kanidm server starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KanidmConfig {
    pub version: KanidmVersion,
    /// `domain` in server.toml; SPNs are `name@domain`.
    pub domain: String,
    /// `origin` in server.toml.
    pub origin: String,
    /// `uri` of the pod's `/etc/kanidm/config`, used when neither `-H` nor `KANIDM_URL` is given.
    pub client_uri: Option<String>,
}

impl KanidmConfig {
    pub fn new(version: KanidmVersion) -> Self {
        Self {
            version,
            domain: "idm.example.com".into(),
            origin: "https://idm.example.com".into(),
            client_uri: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub name: String,
    pub password: String,
    /// Bumped by every credential reset; sessions issued before it are invalid.
    pub credential_generation: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub account: String,
    pub credential_generation: u64,
    pub expires: DateTime<Utc>,
    pub privileged_until: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub name: String,
    pub uuid: String,
    pub members: Vec<String>,
    pub managed_by: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct OAuth2Client {
    pub name: String,
    pub uuid: String,
    pub displayname: String,
    pub landing: String,
    pub public: bool,
    pub redirect_urls: Vec<String>,
    pub scope_maps: BTreeMap<String, BTreeSet<String>>,
    pub sup_scope_maps: BTreeMap<String, BTreeSet<String>>,
    pub basic_secret: Option<String>,
    pub pkce_disabled: bool,
    pub strict_redirect: bool,
    pub prefer_short_username: bool,
}

/// A login in progress (`POST /v1/auth`).
#[derive(Clone, Debug)]
pub(crate) struct AuthSession {
    pub account: String,
    pub privileged: bool,
    pub begun: bool,
}

/// The end of a login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    Success(String),
    Denied(String),
}

/// How often each mutation happened, so tests can prove a rerun changed nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KanidmCounters {
    pub recover_account: BTreeMap<String, u32>,
    pub logins: u32,
    pub failed_logins: u32,
    pub groups_created: u32,
    pub oauth2_created: u32,
    pub oauth2_modified: u32,
    pub oauth2_secret_resets: u32,
    pub oauth2_deleted: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KanidmAccountView {
    pub name: String,
    pub password_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KanidmGroupView {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KanidmOAuth2View {
    pub name: String,
    pub displayname: String,
    pub public: bool,
    pub landing: String,
    pub redirect_urls: Vec<String>,
    pub scope_maps: BTreeMap<String, Vec<String>>,
    pub sup_scope_maps: BTreeMap<String, Vec<String>>,
    pub basic_secret_sha256: Option<String>,
    pub pkce_disabled: bool,
    pub strict_redirect: bool,
}

/// A read-only, secret-free picture of the server (secrets appear as sha256 hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KanidmSnapshot {
    pub version: String,
    pub domain: String,
    pub accounts: Vec<KanidmAccountView>,
    pub groups: Vec<KanidmGroupView>,
    pub oauth2_clients: Vec<KanidmOAuth2View>,
    pub counters: KanidmCounters,
}

/// Groups every fresh Kanidm has; their names are taken like any other.
const BUILTIN_GROUPS: &[&str] = &[
    "idm_admins",
    "idm_all_accounts",
    "idm_all_persons",
    "idm_oauth2_admins",
    "system_admins",
];

/// Only these characters are allowed in an OAuth2 scope (`OAUTHSCOPE_RE`).
fn valid_scope(scope: &str) -> bool {
    !scope.is_empty() && scope.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) struct KanidmState {
    pub config: KanidmConfig,
    pub accounts: Vec<Account>,
    pub sessions: BTreeMap<String, Session>,
    pub auth_sessions: BTreeMap<String, AuthSession>,
    pub token_cache: BTreeMap<(String, String, String), String>,
    pub groups: Vec<Group>,
    pub clients: Vec<OAuth2Client>,
    pub counters: KanidmCounters,
    clock_offset: Duration,
}

impl KanidmState {
    fn new(config: KanidmConfig) -> Self {
        let accounts = ["admin", "idm_admin"]
            .iter()
            .map(|name| Account {
                name: name.to_string(),
                password: alphanumeric(48),
                credential_generation: 0,
            })
            .collect();
        let groups = BUILTIN_GROUPS
            .iter()
            .map(|name| Group {
                name: name.to_string(),
                uuid: uuid::Uuid::new_v4().to_string(),
                members: Vec::new(),
                managed_by: None,
            })
            .collect();
        Self {
            config,
            accounts,
            sessions: BTreeMap::new(),
            auth_sessions: BTreeMap::new(),
            token_cache: BTreeMap::new(),
            groups,
            clients: Vec::new(),
            counters: KanidmCounters::default(),
            clock_offset: Duration::zero(),
        }
    }

    pub fn version(&self) -> KanidmVersion {
        self.config.version
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn spn(&self, name: &str) -> String {
        format!("{name}@{}", self.config.domain)
    }

    /// Strips `@domain` so `idm_admin` and `idm_admin@idm.example.com` name the same entry.
    pub fn short_name<'a>(&self, name: &'a str) -> &'a str {
        name.strip_suffix(&format!("@{}", self.config.domain))
            .unwrap_or(name)
    }

    fn name_taken(&self, name: &str) -> bool {
        self.accounts.iter().any(|a| a.name == name)
            || self.groups.iter().any(|g| g.name == name)
            || self.clients.iter().any(|c| c.name == name)
    }

    /// `recover_account`: a new generated password every time; older sessions die with the
    /// old credential. `None` when the account does not exist.
    pub fn recover_account(&mut self, name: &str) -> Option<String> {
        let account = self.accounts.iter_mut().find(|a| a.name == name)?;
        let password = alphanumeric(48);
        account.password = password.clone();
        account.credential_generation += 1;
        *self
            .counters
            .recover_account
            .entry(name.to_string())
            .or_default() += 1;
        Some(password)
    }

    pub fn auth_init(&mut self, username: &str, privileged: bool) -> Result<String, KanidmError> {
        let name = self.short_name(username).to_string();
        if !self.accounts.iter().any(|a| a.name == name) {
            // UNCONFIRMED: an unknown account at init answers NoMatchingEntries.
            return Err(KanidmError::NoMatchingEntries);
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.auth_sessions.insert(
            id.clone(),
            AuthSession {
                account: name,
                privileged,
                begun: false,
            },
        );
        Ok(id)
    }

    pub fn auth_begin(&mut self, session_id: &str, mech: &str) -> Result<(), KanidmError> {
        let session = self
            .auth_sessions
            .get_mut(session_id)
            .ok_or(KanidmError::InvalidSessionState)?;
        if mech != "password" {
            return Err(KanidmError::InvalidSessionState);
        }
        session.begun = true;
        Ok(())
    }

    pub fn auth_password(
        &mut self,
        session_id: &str,
        password: &str,
    ) -> Result<AuthOutcome, KanidmError> {
        let session = self
            .auth_sessions
            .remove(session_id)
            .ok_or(KanidmError::InvalidSessionState)?;
        if !session.begun {
            return Err(KanidmError::InvalidSessionState);
        }
        let account = self
            .accounts
            .iter()
            .find(|a| a.name == session.account)
            .cloned()
            .ok_or(KanidmError::NoMatchingEntries)?;
        if account.password != password {
            self.counters.failed_logins += 1;
            return Ok(AuthOutcome::Denied("incorrect password".into()));
        }
        let now = self.now();
        let expires = now + Duration::hours(SESSION_EXPIRY_HOURS);
        let payload = json!({"session_id": uuid::Uuid::new_v4().to_string(), "sub": self.spn(&account.name), "exp": expires.timestamp()});
        let token = format!(
            "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        self.sessions.insert(
            token.clone(),
            Session {
                account: account.name.clone(),
                credential_generation: account.credential_generation,
                expires,
                privileged_until: session
                    .privileged
                    .then(|| now + Duration::minutes(PRIVILEGE_EXPIRY_MINUTES)),
            },
        );
        self.counters.logins += 1;
        Ok(AuthOutcome::Success(token))
    }

    /// The session behind a bearer token, as the server checks it.
    pub fn session(&self, token: &str, write: bool) -> Result<&Session, KanidmError> {
        let session = self
            .sessions
            .get(token)
            .ok_or(KanidmError::NotAuthenticated)?;
        let current = self
            .accounts
            .iter()
            .find(|a| a.name == session.account)
            .map(|a| a.credential_generation);
        if current != Some(session.credential_generation) {
            return Err(KanidmError::NotAuthenticated);
        }
        if session.expires <= self.now() {
            return Err(KanidmError::SessionExpired);
        }
        // UNCONFIRMED: a write on a read-only (or no longer privileged) session is AccessDenied.
        if write
            && session
                .privileged_until
                .is_none_or(|until| until <= self.now())
        {
            return Err(KanidmError::AccessDenied);
        }
        Ok(session)
    }

    fn client_index(&self, name: &str) -> Result<usize, KanidmError> {
        self.clients
            .iter()
            .position(|c| c.name == name)
            .ok_or(KanidmError::NoMatchingEntries)
    }

    pub fn client(&self, name: &str) -> Option<&OAuth2Client> {
        self.clients.iter().find(|c| c.name == name)
    }

    pub fn oauth2_entry(&self, client: &OAuth2Client) -> Attrs {
        let mut attrs = Attrs::new();
        let mut put =
            |key: &str, value: String| attrs.entry(key.to_string()).or_default().push(value);
        put("class", "object".into());
        put("class", "oauth2_resource_server".into());
        put(
            "class",
            if client.public {
                "oauth2_resource_server_public"
            } else {
                "oauth2_resource_server_basic"
            }
            .into(),
        );
        put("displayname", client.displayname.clone());
        put("name", client.name.clone());
        if client.pkce_disabled {
            put("oauth2_allow_insecure_client_disable_pkce", "true".into());
        }
        if client.basic_secret.is_some() {
            put("oauth2_rs_basic_secret", "hidden".into());
        }
        for url in &client.redirect_urls {
            put("oauth2_rs_origin", url.clone());
        }
        put("oauth2_rs_origin_landing", client.landing.clone());
        for (group, scopes) in &client.scope_maps {
            let scopes: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
            put(
                "oauth2_rs_scope_map",
                format!("{}: {{{}}}", self.spn(group), scopes.join(", ")),
            );
        }
        for (group, scopes) in &client.sup_scope_maps {
            let scopes: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
            put(
                "oauth2_rs_sup_scope_map",
                format!("{}: {{{}}}", self.spn(group), scopes.join(", ")),
            );
        }
        put("oauth2_rs_token_key", "hidden".into());
        if client.prefer_short_username {
            put("oauth2_prefer_short_username", "true".into());
        }
        if client.strict_redirect {
            put("oauth2_strict_redirect_uri", "true".into());
        }
        put("uuid", client.uuid.clone());
        attrs
    }

    pub fn group_entry(&self, group: &Group) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert("class".into(), vec!["object".into(), "group".into()]);
        attrs.insert("name".into(), vec![group.name.clone()]);
        attrs.insert("spn".into(), vec![self.spn(&group.name)]);
        attrs.insert("uuid".into(), vec![group.uuid.clone()]);
        if !group.members.is_empty() {
            attrs.insert(
                "member".into(),
                group.members.iter().map(|m| self.spn(m)).collect(),
            );
        }
        if let Some(manager) = &group.managed_by {
            attrs.insert("entry_managed_by".into(), vec![self.spn(manager)]);
        }
        attrs
    }

    /// `POST /v1/oauth2/_basic|_public`.
    pub fn oauth2_create(&mut self, attrs: &Attrs, public: bool) -> Result<(), KanidmError> {
        let single = |key: &str| attrs.get(key).and_then(|v| v.first()).cloned();
        let name = single("name").ok_or_else(|| KanidmError::InvalidAttribute("name".into()))?;
        let displayname = single("displayname")
            .ok_or_else(|| KanidmError::InvalidAttribute("displayname".into()))?;
        let landing = single("oauth2_rs_origin_landing")
            .or_else(|| single("oauth2_rs_origin"))
            .unwrap_or_default();
        if self.name_taken(&name) {
            return Err(KanidmError::DuplicateValue);
        }
        self.clients.push(OAuth2Client {
            name,
            uuid: uuid::Uuid::new_v4().to_string(),
            displayname,
            landing,
            public,
            redirect_urls: Vec::new(),
            scope_maps: BTreeMap::new(),
            sup_scope_maps: BTreeMap::new(),
            basic_secret: (!public).then(|| alphanumeric(48)),
            pkce_disabled: false,
            strict_redirect: single("oauth2_strict_redirect_uri").as_deref() == Some("true"),
            prefer_short_username: false,
        });
        self.counters.oauth2_created += 1;
        Ok(())
    }

    /// `PATCH /v1/oauth2/{name}`: every attribute given is purged and set; an empty list purges.
    pub fn oauth2_patch(&mut self, name: &str, attrs: &Attrs) -> Result<(), KanidmError> {
        let index = self.client_index(name)?;
        if attrs.is_empty() {
            return Err(KanidmError::EmptyRequest);
        }
        if let Some(new_name) = attrs.get("name").and_then(|v| v.first())
            && new_name != name
            && self.name_taken(new_name)
        {
            return Err(KanidmError::DuplicateValue);
        }
        let mut client = self.clients[index].clone();
        let flag = |values: &Vec<String>| values.first().is_some_and(|v| v == "true");
        for (key, values) in attrs {
            match key.as_str() {
                "name" => {
                    client.name = values
                        .first()
                        .cloned()
                        .ok_or_else(|| KanidmError::InvalidAttribute("name".into()))?
                }
                "displayname" => client.displayname = values.first().cloned().unwrap_or_default(),
                "oauth2_rs_origin_landing" => {
                    client.landing = values.first().cloned().unwrap_or_default()
                }
                "oauth2_rs_origin" => client.redirect_urls = values.clone(),
                "oauth2_allow_insecure_client_disable_pkce" => client.pkce_disabled = flag(values),
                "oauth2_strict_redirect_uri" => client.strict_redirect = flag(values),
                "oauth2_prefer_short_username" => client.prefer_short_username = flag(values),
                "oauth2_rs_basic_secret" => {
                    // Purging the secret makes the plugin generate a fresh one (`reset-secrets`).
                    if !client.public {
                        client.basic_secret = Some(alphanumeric(48));
                        self.counters.oauth2_secret_resets += 1;
                    }
                }
                other => return Err(KanidmError::InvalidAttribute(other.to_string())),
            }
        }
        self.clients[index] = client;
        self.counters.oauth2_modified += 1;
        Ok(())
    }

    pub fn oauth2_delete(&mut self, name: &str) -> Result<(), KanidmError> {
        let index = self.client_index(name)?;
        self.clients.remove(index);
        self.counters.oauth2_deleted += 1;
        Ok(())
    }

    pub fn oauth2_basic_secret(&self, name: &str) -> Result<Option<String>, KanidmError> {
        Ok(self.clients[self.client_index(name)?].basic_secret.clone())
    }

    /// `POST /v1/oauth2/{name}/_scopemap/{group}` (or `_sup_scopemap` with `sup`).
    pub fn oauth2_set_scope_map(
        &mut self,
        name: &str,
        group: &str,
        scopes: &[String],
        sup: bool,
    ) -> Result<(), KanidmError> {
        let index = self.client_index(name)?;
        let group = self.short_name(group).to_string();
        if !self.groups.iter().any(|g| g.name == group) {
            return Err(KanidmError::NoMatchingEntries);
        }
        if let Some(bad) = scopes.iter().find(|s| !valid_scope(s)) {
            return Err(KanidmError::InvalidAttribute(format!(
                "invalid scope {bad}"
            )));
        }
        let client = &mut self.clients[index];
        let maps = if sup {
            &mut client.sup_scope_maps
        } else {
            &mut client.scope_maps
        };
        maps.insert(group, scopes.iter().cloned().collect());
        self.counters.oauth2_modified += 1;
        Ok(())
    }

    pub fn oauth2_delete_scope_map(
        &mut self,
        name: &str,
        group: &str,
        sup: bool,
    ) -> Result<(), KanidmError> {
        let index = self.client_index(name)?;
        let group = self.short_name(group).to_string();
        let client = &mut self.clients[index];
        let maps = if sup {
            &mut client.sup_scope_maps
        } else {
            &mut client.scope_maps
        };
        maps.remove(&group);
        self.counters.oauth2_modified += 1;
        Ok(())
    }

    /// `POST|DELETE /v1/oauth2/{name}/_attr/{attr}` (only the redirect URLs are multi-valued here).
    pub fn oauth2_attr(
        &mut self,
        name: &str,
        attr: &str,
        values: &[String],
        add: bool,
    ) -> Result<(), KanidmError> {
        let index = self.client_index(name)?;
        if attr != "oauth2_rs_origin" {
            return Err(KanidmError::InvalidAttribute(attr.to_string()));
        }
        let urls = &mut self.clients[index].redirect_urls;
        for value in values {
            if add && !urls.contains(value) {
                urls.push(value.clone());
            } else if !add {
                urls.retain(|u| u != value);
            }
        }
        self.counters.oauth2_modified += 1;
        Ok(())
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        let name = self.short_name(name);
        self.groups
            .iter()
            .find(|g| g.name == name || g.uuid == name)
    }

    pub fn group_create(&mut self, attrs: &Attrs) -> Result<(), KanidmError> {
        let name = attrs
            .get("name")
            .and_then(|v| v.first())
            .cloned()
            .ok_or_else(|| KanidmError::InvalidAttribute("name".into()))?;
        if self.name_taken(&name) {
            return Err(KanidmError::DuplicateValue);
        }
        let managed_by = attrs
            .get("entry_managed_by")
            .and_then(|v| v.first())
            .map(|m| self.short_name(m).to_string());
        self.groups.push(Group {
            name,
            uuid: uuid::Uuid::new_v4().to_string(),
            members: Vec::new(),
            managed_by,
        });
        self.counters.groups_created += 1;
        Ok(())
    }

    pub fn group_delete(&mut self, name: &str) -> Result<(), KanidmError> {
        let name = self.short_name(name).to_string();
        let index = self
            .groups
            .iter()
            .position(|g| g.name == name)
            .ok_or(KanidmError::NoMatchingEntries)?;
        self.groups.remove(index);
        Ok(())
    }

    pub fn group_add_members(&mut self, name: &str, members: &[String]) -> Result<(), KanidmError> {
        let name = self.short_name(name).to_string();
        let members: Vec<String> = members
            .iter()
            .map(|m| self.short_name(m).to_string())
            .collect();
        for member in &members {
            if !self.name_taken(member) {
                return Err(KanidmError::NoMatchingEntries);
            }
        }
        let group = self
            .groups
            .iter_mut()
            .find(|g| g.name == name)
            .ok_or(KanidmError::NoMatchingEntries)?;
        for member in members {
            if !group.members.contains(&member) {
                group.members.push(member);
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> KanidmSnapshot {
        KanidmSnapshot {
            version: self.config.version.version_string().into(),
            domain: self.config.domain.clone(),
            accounts: self
                .accounts
                .iter()
                .map(|a| KanidmAccountView {
                    name: a.name.clone(),
                    password_sha256: sha256_hex(&a.password),
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|g| KanidmGroupView {
                    name: g.name.clone(),
                    members: g.members.clone(),
                })
                .collect(),
            oauth2_clients: self
                .clients
                .iter()
                .map(|c| KanidmOAuth2View {
                    name: c.name.clone(),
                    displayname: c.displayname.clone(),
                    public: c.public,
                    landing: c.landing.clone(),
                    redirect_urls: c.redirect_urls.clone(),
                    scope_maps: c
                        .scope_maps
                        .iter()
                        .map(|(g, s)| (g.clone(), s.iter().cloned().collect()))
                        .collect(),
                    sup_scope_maps: c
                        .sup_scope_maps
                        .iter()
                        .map(|(g, s)| (g.clone(), s.iter().cloned().collect()))
                        .collect(),
                    basic_secret_sha256: c.basic_secret.as_deref().map(sha256_hex),
                    pkce_disabled: c.pkce_disabled,
                    strict_redirect: c.strict_redirect,
                })
                .collect(),
            counters: self.counters.clone(),
        }
    }
}

/// An emulated Kanidm server; share it as `Arc<Kanidm>` between its CLIs and REST view.
pub struct Kanidm {
    state: Mutex<KanidmState>,
}

impl Kanidm {
    pub fn new(config: KanidmConfig) -> Self {
        Self {
            state: Mutex::new(KanidmState::new(config)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, KanidmState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> KanidmSnapshot {
        self.lock().snapshot()
    }

    pub fn version(&self) -> KanidmVersion {
        self.lock().version()
    }

    /// Moves the server's clock forward, so tests can expire privileges and sessions.
    pub fn advance_clock(&self, by: Duration) {
        self.lock().clock_offset += by;
    }

    /// Whether `secret` is the current basic secret of client `name` (tests check a Secret).
    pub fn basic_secret_is(&self, name: &str, secret: &str) -> bool {
        self.lock()
            .client(name)
            .and_then(|c| c.basic_secret.as_deref())
            == Some(secret)
    }

    /// Whether `password` currently logs `account` in.
    pub fn password_is(&self, account: &str, password: &str) -> bool {
        self.lock()
            .accounts
            .iter()
            .any(|a| a.name == account && a.password == password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(state: &mut KanidmState, name: &str, password: &str) -> AuthOutcome {
        let id = state.auth_init(name, true).unwrap();
        state.auth_begin(&id, "password").unwrap();
        state.auth_password(&id, password).unwrap()
    }

    #[test]
    fn recovery_changes_the_password_every_time_and_kills_sessions() {
        let kanidm = Kanidm::new(KanidmConfig::new(KanidmVersion::V1_7));
        let mut state = kanidm.lock();
        let first = state.recover_account("idm_admin").unwrap();
        let AuthOutcome::Success(token) = login(&mut state, "idm_admin", &first) else {
            panic!("login failed")
        };
        assert!(state.session(&token, true).is_ok());
        let second = state.recover_account("idm_admin").unwrap();
        assert_ne!(first, second);
        assert_eq!(
            login(&mut state, "idm_admin", &first),
            AuthOutcome::Denied("incorrect password".into())
        );
        assert_eq!(
            state.session(&token, false).unwrap_err(),
            KanidmError::NotAuthenticated
        );
        assert_eq!(state.counters.recover_account["idm_admin"], 2);
        assert!(state.recover_account("nobody").is_none());
    }

    #[test]
    fn privilege_expires_before_the_session() {
        let kanidm = Kanidm::new(KanidmConfig::new(KanidmVersion::V1_3));
        let password = kanidm.lock().recover_account("idm_admin").unwrap();
        let AuthOutcome::Success(token) = login(&mut kanidm.lock(), "idm_admin", &password) else {
            panic!()
        };
        kanidm.advance_clock(Duration::minutes(PRIVILEGE_EXPIRY_MINUTES + 1));
        let state = kanidm.lock();
        assert!(state.session(&token, false).is_ok());
        assert_eq!(
            state.session(&token, true).unwrap_err(),
            KanidmError::AccessDenied
        );
    }

    #[test]
    fn names_are_unique_across_groups_and_clients() {
        let kanidm = Kanidm::new(KanidmConfig::new(KanidmVersion::V1_7));
        let mut state = kanidm.lock();
        let attrs: Attrs = [
            ("name".to_string(), vec!["dex".to_string()]),
            ("displayname".into(), vec!["Dex".into()]),
        ]
        .into();
        state.oauth2_create(&attrs, false).unwrap();
        assert_eq!(
            state.oauth2_create(&attrs, false).unwrap_err(),
            KanidmError::DuplicateValue
        );
        assert_eq!(
            state.group_create(&attrs).unwrap_err(),
            KanidmError::DuplicateValue
        );
        assert_eq!(KanidmError::DuplicateValue.status(), 500);
        let secret = state.oauth2_basic_secret("dex").unwrap().unwrap();
        let reset: Attrs = [("oauth2_rs_basic_secret".to_string(), vec![])].into();
        state.oauth2_patch("dex", &reset).unwrap();
        assert_ne!(state.oauth2_basic_secret("dex").unwrap().unwrap(), secret);
        assert_eq!(
            state.oauth2_patch("nope", &reset).unwrap_err(),
            KanidmError::NoMatchingEntries
        );
    }
}
