//! The phase-file model: what a `phases/*.yaml` file says, after parsing and before templating.
//!
//! Every struct denies unknown fields. Step kinds are dispatched on the `kind` key by the
//! loader (`phase::load`), not by serde's internally tagged enums, so that each kind's
//! fields get precise errors with file, line and column.
//!
//! Strings documented as *template* are minijinja templates rendered when the step runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema this build reads and writes. A phase file names it in `schema:`.
pub const PHASE_SCHEMA: &str = "bringup/v1";

/// One phase file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// The phase name, unique across the phases directory (`[a-z0-9-]+`).
    pub name: String,
    pub description: Option<String>,
    pub depends_on: Vec<String>,
    pub steps: Vec<Step>,
    /// The file it came from, as given on the command line (for messages).
    #[serde(skip)]
    pub file: std::path::PathBuf,
}

/// Whether a done step is trusted (`once`) or probed on every run (`ensure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Once,
    Ensure,
}

/// A step: the fields every kind shares, and the kind's own definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Unique in its phase (`[a-z0-9-]+`). The full id is `phase/step`.
    pub id: String,
    pub description: Option<String>,
    /// Overrides the kind's default mode.
    pub mode: Option<Mode>,
    /// How long one attempt may take; the kind's default when absent.
    pub timeout: Option<Duration>,
    /// How many times a transient failure (connection dropped, 5xx, 429) is retried.
    pub retries: Option<u32>,
    pub kind: StepKind,
}

impl Step {
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_else(|| self.kind.default_mode())
    }
}

/// The kinds of step, matched in one place (`steps::dispatch`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StepKind {
    Secret(SecretStep),
    Apply(ApplyStep),
    Exec(ExecStep),
    Http(HttpStep),
    Wait(WaitStep),
    Prompt(PromptStep),
    VaultInit(VaultInitStep),
    VaultUnseal(VaultUnsealStep),
    VaultConfig(VaultConfigStep),
    VaultKv(VaultKvStep),
    VaultRootToken(VaultRootTokenStep),
}

impl StepKind {
    pub const NAMES: &'static [&'static str] = &[
        "secret",
        "apply",
        "exec",
        "http",
        "wait",
        "prompt",
        "vault-init",
        "vault-unseal",
        "vault-config",
        "vault-kv",
        "vault-root-token",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Secret(_) => "secret",
            StepKind::Apply(_) => "apply",
            StepKind::Exec(_) => "exec",
            StepKind::Http(_) => "http",
            StepKind::Wait(_) => "wait",
            StepKind::Prompt(_) => "prompt",
            StepKind::VaultInit(_) => "vault-init",
            StepKind::VaultUnseal(_) => "vault-unseal",
            StepKind::VaultConfig(_) => "vault-config",
            StepKind::VaultKv(_) => "vault-kv",
            StepKind::VaultRootToken(_) => "vault-root-token",
        }
    }

    pub fn default_mode(&self) -> Mode {
        match self {
            StepKind::Secret(_)
            | StepKind::Apply(_)
            | StepKind::Wait(_)
            | StepKind::VaultUnseal(_)
            | StepKind::VaultConfig(_)
            | StepKind::VaultKv(_) => Mode::Ensure,
            StepKind::Exec(_)
            | StepKind::Http(_)
            | StepKind::Prompt(_)
            | StepKind::VaultInit(_)
            | StepKind::VaultRootToken(_) => Mode::Once,
        }
    }
}

/// A duration written as `30s`, `5m`, `1h`, `1m30s` or `250ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `30s`, `5m`, `1h`, `1m30s`, `250ms`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration `{text}`: write it as 30s, 5m, 1h30m or 250ms");
    let mut total = std::time::Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => std::time::Duration::from_millis(number),
            "s" => std::time::Duration::from_secs(number),
            "m" => std::time::Duration::from_secs(number * 60),
            "h" => std::time::Duration::from_secs(number * 3600),
            _ => return Err(bad()),
        };
    }
    Ok(total)
}

/// `namespace/name` of a namespaced object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl std::str::FromStr for ObjectName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ObjectName {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!("`{text}` is not `namespace/name`")),
        }
    }
}

impl Serialize for ObjectName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `namespace/name/key`: one key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretKeyRef {
    pub secret: ObjectName,
    pub key: String,
}

impl std::fmt::Display for SecretKeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.secret, self.key)
    }
}

impl Serialize for SecretKeyRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretKeyRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut parts = text.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(name), Some(key))
                if !ns.is_empty() && !name.is_empty() && !key.is_empty() =>
            {
                Ok(SecretKeyRef {
                    secret: ObjectName {
                        namespace: ns.into(),
                        name: name.into(),
                    },
                    key: key.into(),
                })
            }
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not `namespace/secret/key`"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// secret

/// Ensure a Secret's keys. Adds missing keys only; rewrites a key only when it is in `rotate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretStep {
    /// `namespace/name` of the Secret.
    pub secret: ObjectName,
    /// Secret `type`, `Opaque` when absent.
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Key name → how its value is made.
    pub keys: BTreeMap<String, Generator>,
    /// Keys to regenerate on this run even though they exist.
    #[serde(default)]
    pub rotate: Vec<String>,
}

/// How a Secret key's value is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Generator {
    /// Random characters or bytes.
    Random(RandomSpec),
    /// bcrypt htpasswd line `user:$2y$...` for the password held in another key of this Secret.
    Htpasswd(HtpasswdSpec),
    /// A template rendered once (secret, configmap, values...).
    Template(String),
    /// The contents of a local file, read when the step runs.
    File(std::path::PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    /// Characters (with `alphabet`) or bytes (with `encoding`). Default 32.
    #[serde(default = "default_random_length")]
    pub length: usize,
    /// Character set for text values. Default `alnum`.
    #[serde(default)]
    pub alphabet: Option<Alphabet>,
    /// Random bytes rendered in this encoding instead of characters.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

fn default_random_length() -> usize {
    32
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Alphabet {
    /// `A-Za-z0-9`
    Alnum,
    /// alnum plus `!#%+,-.:=?@^_~` (safe in URLs' userinfo after encoding, in YAML and in shells when quoted)
    AlnumSymbols,
    /// `0-9a-f`
    Hex,
    /// These characters exactly.
    Chars(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Base64,
    Hex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdSpec {
    pub username: String,
    /// The key of this Secret whose value is hashed.
    pub password_key: String,
}

// ---------------------------------------------------------------------------------------------
// apply

/// Server-side apply of a manifest of any kind, optionally waiting for a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyStep {
    /// The object; every string in it is a template.
    pub manifest: serde_json::Value,
    /// Take over fields owned by another manager.
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub wait: Option<ConditionWait>,
}

/// Wait for `status.conditions[type == condition].status == status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionWait {
    pub condition: String,
    #[serde(default = "default_condition_status")]
    pub status: String,
    #[serde(default)]
    pub timeout: Option<Duration>,
}

fn default_condition_status() -> String {
    "True".into()
}

// ---------------------------------------------------------------------------------------------
// exec

/// Which pod to exec into or forward to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSelector {
    pub namespace: String,
    /// A pod by name...
    #[serde(default)]
    pub name: Option<String>,
    /// ...or the first Ready pod (by name order) matching this label selector.
    #[serde(default)]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    pub pod: PodSelector,
    #[serde(default)]
    pub container: Option<String>,
    /// argv; each element is a template but may not read secrets (they belong on stdin).
    pub command: Vec<String>,
    /// Template fed to the command's stdin, then closed.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Exit codes that count as success. Default `[0]`.
    #[serde(default = "default_exit_codes")]
    pub accept_exit_codes: Vec<i32>,
    #[serde(default)]
    pub skip_if: Option<SkipIf>,
    /// Parse stdout into `output` for `store`.
    #[serde(default)]
    pub capture: Option<Capture>,
    /// Whether captured values are secrets (registered with the redactor). Default true.
    #[serde(default = "default_true")]
    pub sensitive: bool,
    #[serde(default)]
    pub store: Option<Store>,
}

fn default_exit_codes() -> Vec<i32> {
    vec![0]
}

fn default_true() -> bool {
    true
}

/// When the step's work is already done. Written flat, as `{command: [...]}` (with an
/// optional `stdin`), `{secret_key: ns/name/key}` or `{request: {...}}` (see [`SkipIfFields`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SkipIfFields", into = "SkipIfFields")]
pub enum SkipIf {
    /// Exit 0 of this command (in the step's pod) means done; 1 means not done; other codes
    /// fail. `stdin` (a template, where secrets may go) is fed to it, then closed.
    Command {
        command: Vec<String>,
        stdin: Option<String>,
    },
    /// The Secret key exists and is not empty.
    SecretKey(SecretKeyRef),
    /// The HTTP request (same target and auth as the step) answers one of `expect`.
    Request(HttpRequest),
}

/// The YAML form of [`SkipIf`]: one of `command`, `secret_key` or `request`, and `stdin`
/// only beside `command`. A struct with a checked conversion, like [`TargetFields`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipIfFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HttpRequest>,
}

impl TryFrom<SkipIfFields> for SkipIf {
    type Error = String;
    fn try_from(fields: SkipIfFields) -> Result<Self, String> {
        match fields {
            SkipIfFields { command: Some(command), stdin, secret_key: None, request: None } => {
                Ok(SkipIf::Command { command, stdin })
            }
            SkipIfFields { secret_key: Some(key), command: None, stdin: None, request: None } => {
                Ok(SkipIf::SecretKey(key))
            }
            SkipIfFields { request: Some(request), command: None, stdin: None, secret_key: None } => {
                Ok(SkipIf::Request(request))
            }
            SkipIfFields { stdin: Some(_), command: None, .. } => {
                Err("`stdin` is fed to `command`, which is missing: add the command, or remove `stdin`".into())
            }
            SkipIfFields { command: None, secret_key: None, request: None, .. } => Err(
                "one of `command`, `secret_key` or `request` is needed: e.g. `skip_if: {secret_key: ns/secret/key}`".into(),
            ),
            _ => Err("only one of `command`, `secret_key` and `request` may be given: keep one of them".into()),
        }
    }
}

impl From<SkipIf> for SkipIfFields {
    fn from(skip: SkipIf) -> Self {
        match skip {
            SkipIf::Command { command, stdin } => SkipIfFields {
                command: Some(command),
                stdin,
                ..Default::default()
            },
            SkipIf::SecretKey(key) => SkipIfFields {
                secret_key: Some(key),
                ..Default::default()
            },
            SkipIf::Request(request) => SkipIfFields {
                request: Some(request),
                ..Default::default()
            },
        }
    }
}

/// How stdout becomes `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Capture {
    /// `output` is stdout with the trailing newline trimmed.
    Text,
    /// `output` is stdout parsed as JSON; with `json-line`, the last line that parses as JSON.
    Json,
    JsonLine,
    /// `output` is the first match's named groups (or group 1 as `output.value`).
    Regex(String),
}

/// Write values into a Secret after the step's work (merge: other keys stay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub secret: ObjectName,
    /// key → template over `output`/`response`.
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------------
// http

/// Where an HTTP request goes. Written flat, as `{url: ...}`, `{service: ns/name, port: N}`
/// or `{pod: {...}, port: N}` (see [`TargetFields`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TargetFields", into = "TargetFields")]
pub enum HttpTarget {
    /// A URL (template).
    Url(String),
    /// `namespace/name` of a Service and its port, through a port-forward to a Ready pod behind it.
    Service { service: ObjectName, port: u16 },
    /// A pod's port through a port-forward.
    Pod { pod: PodSelector, port: u16 },
}

/// The YAML form of [`HttpTarget`]: one of `url`, `service` or `pod`, with `port` for the
/// last two. A struct with a checked conversion rather than an untagged enum, so a mistake
/// gets a message that says which field is missing or extra.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ObjectName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl TryFrom<TargetFields> for HttpTarget {
    type Error = String;
    fn try_from(fields: TargetFields) -> Result<Self, String> {
        match fields {
            TargetFields { url: Some(url), service: None, pod: None, port: None } => Ok(HttpTarget::Url(url)),
            TargetFields { url: Some(_), port: Some(_), service: None, pod: None } => {
                Err("a `url` target takes no `port`: write the port in the URL".into())
            }
            TargetFields { service: Some(service), url: None, pod: None, port: Some(port) } => {
                Ok(HttpTarget::Service { service, port })
            }
            TargetFields { pod: Some(pod), url: None, service: None, port: Some(port) } => Ok(HttpTarget::Pod { pod, port }),
            TargetFields { service: Some(_), url: None, pod: None, port: None }
            | TargetFields { pod: Some(_), url: None, service: None, port: None } => {
                Err("missing `port`: add the port to forward to, e.g. `port: 3000`".into())
            }
            TargetFields { url: None, service: None, pod: None, .. } => {
                Err("a target needs one of `url`, `service` or `pod`: write it as `{url: https://...}` or `{service: ns/name, port: 3000}`".into())
            }
            _ => Err("a target takes only one of `url`, `service` and `pod`: keep one".into()),
        }
    }
}

impl From<HttpTarget> for TargetFields {
    fn from(target: HttpTarget) -> Self {
        match target {
            HttpTarget::Url(url) => TargetFields {
                url: Some(url),
                ..Default::default()
            },
            HttpTarget::Service { service, port } => TargetFields {
                service: Some(service),
                port: Some(port),
                ..Default::default()
            },
            HttpTarget::Pod { pod, port } => TargetFields {
                pod: Some(pod),
                port: Some(port),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    Basic { username: String, password: String },
    Bearer(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path and query (template), appended to the target's base.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body; every string in it is a template.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Statuses that count as success. Default any 2xx.
    #[serde(default)]
    pub expect: Vec<u16>,
}

fn default_method() -> String {
    "GET".into()
}

/// TLS settings for https URLs: verification stays on; a CA and server name may be named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub ca: Option<CaSource>,
    #[serde(default)]
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CaSource {
    Secret(SecretKeyRef),
    /// `namespace/configmap/key`
    Configmap(SecretKeyRef),
    File(std::path::PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub target: HttpTarget,
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default)]
    pub skip_if: Option<SkipIf>,
    /// List what exists before creating: keep a live object, delete the others.
    #[serde(default)]
    pub lookup: Option<Box<Lookup>>,
    pub request: HttpRequest,
    /// Whether the response is a secret (registered with the redactor). Default true.
    #[serde(default = "default_true")]
    pub sensitive: bool,
    #[serde(default)]
    pub store: Option<Store>,
}

/// For APIs that show a secret only when they create it (tokens, OAuth apps) and let names
/// repeat or refuse duplicates: list first, keep the one the stored secret belongs to,
/// delete every other match, and send `request` only when none is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// The list request (GET by default), with the step's target and auth.
    pub request: HttpRequest,
    /// JSON pointer to the list in the response (`/results`); the body itself by default.
    #[serde(default)]
    pub items: Option<String>,
    /// The items that are "ours": every field (a top-level key, or a JSON pointer starting
    /// with `/`) equals its template's value.
    #[serde(rename = "match")]
    pub matches: BTreeMap<String, String>,
    /// Which match is the live one to keep (templates, which may read secrets). An empty
    /// value matches nothing, so a missing Secret (`secret(..., default='')`) keeps nothing.
    /// Without `keep`, every match is kept: found means done.
    #[serde(default)]
    pub keep: Option<BTreeMap<String, String>>,
    /// How to delete a match that is not kept (templates over `item`). Without it, a match
    /// that is not kept fails the step instead of being duplicated.
    #[serde(default)]
    pub delete: Option<HttpRequest>,
}

// ---------------------------------------------------------------------------------------------
// wait

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    #[serde(rename = "for")]
    pub until: WaitFor,
    /// Poll interval. Default 1s.
    #[serde(default)]
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WaitFor {
    /// At least `count` (default 1) pods matching the selector are Ready.
    Pods {
        namespace: String,
        selector: String,
        #[serde(default)]
        count: Option<u32>,
    },
    /// A Deployment or StatefulSet has all replicas updated and ready.
    Rollout {
        namespace: String,
        kind: String,
        name: String,
    },
    /// The object exists.
    Object(ObjectRef),
    /// The object's condition has the status.
    Condition {
        object: ObjectRef,
        #[serde(rename = "type")]
        condition: String,
        #[serde(default = "default_condition_status")]
        status: String,
    },
    /// The URL or forwarded port answers one of `expect` (default 200).
    Http {
        target: HttpTarget,
        #[serde(default = "default_http_path")]
        path: String,
        #[serde(default)]
        expect: Vec<u16>,
        #[serde(default)]
        tls: Option<Tls>,
    },
}

fn default_http_path() -> String {
    "/".into()
}

/// Any object, by apiVersion and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

// ---------------------------------------------------------------------------------------------
// prompt

/// Ask the operator for a value and store it in a Secret (once; an existing value is kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptStep {
    /// The question.
    pub prompt: String,
    /// Where the answer goes: `namespace/secret/key`.
    pub secret: SecretKeyRef,
    /// The values key (`--set KEY=...`, or in `--values`) that answers non-interactively.
    pub value: String,
    /// Hidden input (the default); `false` echoes and is for non-secret answers.
    #[serde(default = "default_true")]
    pub hidden: bool,
}

// ---------------------------------------------------------------------------------------------
// vault (OpenBao / Vault through its HTTP API; see docs/vault.md)

/// Where a Vault server is: `url` (with optional `tls`), or `pod` (+ `port`) reached through a
/// port-forward. Exactly one of `url` and `pod`; checked when the step runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultTarget {
    /// Base URL (template), e.g. `https://vault.example:8200`.
    #[serde(default)]
    pub url: Option<String>,
    /// A pod by name, or every pod matching `selector` (`vault-unseal`), or the first one by
    /// name (the other kinds).
    #[serde(default)]
    pub pod: Option<PodSelector>,
    /// The pod's API port. Default 8200.
    #[serde(default = "default_vault_port")]
    pub port: u16,
    /// For a `url`: CA and server name. For a `pod`: its presence switches to https, with the
    /// server name checked against the certificate (required then).
    #[serde(default)]
    pub tls: Option<Tls>,
}

fn default_vault_port() -> u16 {
    8200
}

/// Where unseal keys and the root token are kept. Without a `custody` block: the Secret
/// `vault/vault-init`. With one: exactly what it names (a Secret, a 0600 file, or both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultCustody {
    #[serde(default)]
    pub secret: Option<ObjectName>,
    /// A local file written 0600 with fsync the moment Vault answers `sys/init`.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

impl Default for VaultCustody {
    fn default() -> Self {
        VaultCustody {
            secret: Some(ObjectName {
                namespace: "vault".into(),
                name: "vault-init".into(),
            }),
            file: None,
        }
    }
}

/// Where a Vault token comes from, when not the root token in custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultToken {
    pub secret: SecretKeyRef,
}

/// Initialise Vault once and put the keys in custody before anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultInitStep {
    pub vault: VaultTarget,
    /// Default 5.
    #[serde(default = "default_secret_shares")]
    pub secret_shares: u8,
    /// Default 3.
    #[serde(default = "default_secret_threshold")]
    pub secret_threshold: u8,
    /// Base64 PGP public keys, one per share: Vault encrypts each share to one of them.
    #[serde(default)]
    pub pgp_keys: Vec<String>,
    /// Base64 PGP public key the root token is encrypted to.
    #[serde(default)]
    pub root_token_pgp_key: Option<String>,
    #[serde(default)]
    pub custody: VaultCustody,
}

fn default_secret_shares() -> u8 {
    5
}

fn default_secret_threshold() -> u8 {
    3
}

/// Unseal every server of the target with the keys in custody.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultUnsealStep {
    pub vault: VaultTarget,
    #[serde(default)]
    pub custody: VaultCustody,
    /// Uninitialised servers join this raft leader before they are unsealed.
    #[serde(default)]
    pub raft_join: Option<RaftJoin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftJoin {
    /// The leader's API address as the followers reach it (template).
    pub leader_api_addr: String,
    /// PEM CA of the leader's listener (template).
    #[serde(default)]
    pub leader_ca_cert: Option<String>,
}

/// Converge mounts, auth methods (config and roles) and policies: read, diff, write what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfigStep {
    pub vault: VaultTarget,
    #[serde(default)]
    pub custody: VaultCustody,
    /// A token to use instead of the root token in custody.
    #[serde(default)]
    pub token: Option<VaultToken>,
    /// Secrets engines by path (`secret`, `kv`).
    #[serde(default)]
    pub mounts: BTreeMap<String, VaultMount>,
    /// Auth methods by path (`kubernetes`).
    #[serde(default)]
    pub auth: BTreeMap<String, VaultAuthMethod>,
    /// ACL policies by name: HCL text (template).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultMount {
    #[serde(rename = "type")]
    pub engine: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Engine options (`version: "2"` for kv); values are templates.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAuthMethod {
    #[serde(rename = "type")]
    pub method: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Written to `auth/<path>/config`; every string is a template.
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Written to `auth/<path>/role/<name>`; every string is a template.
    #[serde(default)]
    pub roles: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// Seed KV v2 paths: missing keys are generated, existing keys are never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKvStep {
    pub vault: VaultTarget,
    #[serde(default)]
    pub custody: VaultCustody,
    #[serde(default)]
    pub token: Option<VaultToken>,
    /// The KV v2 mount. Default `secret`.
    #[serde(default = "default_kv_mount")]
    pub mount: String,
    /// Path under the mount → key → how its value is made.
    pub paths: BTreeMap<String, BTreeMap<String, Generator>>,
}

fn default_kv_mount() -> String {
    "secret".into()
}

/// Root-token hygiene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultRootTokenStep {
    pub vault: VaultTarget,
    #[serde(default)]
    pub custody: VaultCustody,
    pub action: RootTokenAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootTokenAction {
    /// Revoke the root token in custody and mark it revoked.
    Revoke,
    /// Make a new root token from the unseal keys in custody (generate-root) and store it.
    Generate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_if_reads_flat_and_keeps_its_old_shape() {
        let skip: SkipIf = serde_yaml::from_str("command: [sh, -c, check]\nstdin: pw").unwrap();
        assert_eq!(
            skip,
            SkipIf::Command {
                command: vec!["sh".into(), "-c".into(), "check".into()],
                stdin: Some("pw".into())
            }
        );
        // A check without stdin serialises as before, so fingerprints of done steps hold.
        let plain: SkipIf = serde_yaml::from_str("command: [check]").unwrap();
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"command": ["check"]})
        );
        let error = serde_yaml::from_str::<SkipIf>("secret_key: a/b/c\nstdin: pw")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`stdin` is fed to `command`, which is missing"),
            "{error}"
        );
        let error = serde_yaml::from_str::<SkipIf>("secret_key: a/b/c\ncommand: [x]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("only one of"), "{error}");
    }
}
