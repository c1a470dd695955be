//! The `kanidm` client CLI of an emulated server: `login`, `group`, `system oauth2`, with the
//! exit-0-on-4xx / exit-1-on-500 handling of `handle_client_error` and per-version syntax.

use axum::http::StatusCode;

use super::cli_exchange::{CliOutput, CliRequest};
use super::kanidm::{Attrs, AuthOutcome, Kanidm, KanidmState};
use super::kanidm_error::KanidmError;
use super::kanidm_version::KanidmVersion;

/// Options of `CommonOpt` (plus login's hidden `-p`), wherever they appear.
#[derive(Default)]
struct Common {
    url: Option<String>,
    name: Option<String>,
    output: Option<String>,
    instance: Option<String>,
    password: Option<String>,
    help: bool,
}

const VALUE_OPTIONS: &[(&str, &str)] = &[
    ("-H", "--url"),
    ("-D", "--name"),
    ("-C", "--ca"),
    ("-o", "--output"),
    ("-I", "--instance"),
    ("-p", "--password"),
];

/// A clap usage error: stderr, exit 2.
fn clap_error(message: &str, usage: &str) -> CliOutput {
    let usage = if usage.is_empty() {
        String::new()
    } else {
        format!("Usage: {usage}\n\n")
    };
    CliOutput::fail(
        format!("error: {message}\n\n{usage}For more information, try '--help'.\n"),
        2,
    )
}

fn parse(version: KanidmVersion, args: &[String]) -> Result<(Common, Vec<String>), CliOutput> {
    let mut common = Common::default();
    let mut positional = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        if !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        let (key, inline) = match arg.split_once('=') {
            Some((key, value)) if key.starts_with("--") => {
                (key.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        if let Some((short, long)) = VALUE_OPTIONS.iter().find(|(s, l)| key == *s || key == *l) {
            let value = match inline {
                Some(value) => value,
                None if index < args.len() => {
                    index += 1;
                    args[index - 1].clone()
                }
                None => {
                    let message = format!(
                        "a value is required for '{long} <{}>' but none was supplied",
                        &long[2..].to_uppercase()
                    );
                    return Err(clap_error(&message, ""));
                }
            };
            match *short {
                "-H" => common.url = Some(value),
                "-D" => common.name = Some(value),
                "-o" => common.output = Some(value),
                "-I" => common.instance = Some(value),
                "-p" => common.password = Some(value),
                _ => {}
            }
            continue;
        }
        match key.as_str() {
            "-d" | "--debug" | "--skip-hostname-verification" => {}
            "--accept-invalid-certs" if version.accept_invalid_certs_flag() => {}
            "-h" | "--help" => common.help = true,
            _ => {
                return Err(clap_error(
                    &format!("unexpected argument '{arg}' found"),
                    "kanidm [OPTIONS] <COMMAND>",
                ));
            }
        }
    }
    Ok((common, positional))
}

fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// An `error!` event through the CLI's `tracing_subscriber::fmt` layer (stderr).
/// UNCONFIRMED: the target shown; the message is the source's.
fn log_error(out: &mut CliOutput, message: &str) {
    out.stderr
        .push_str(&format!("{} ERROR kanidm_cli: {message}\n", timestamp()));
}

fn opid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `ClientError::Http(status, Some(err), opid)` as `{:?}` prints it.
fn client_error_debug(error: &KanidmError, opid: &str) -> String {
    format!(
        "Http({}, Some({}), {opid:?})",
        error.status().as_u16(),
        error.debug_text()
    )
}

/// `tools/cli/src/cli/lib.rs: handle_client_error`.
fn handle_client_error(out: &mut CliOutput, version: KanidmVersion, error: &KanidmError) {
    let opid = opid();
    let detail = error.debug_text();
    if version.prints_operation_id() {
        out.stderr.push_str(&format!("OperationId: {opid:?}\n"));
    }
    let status = error.status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        out.stderr
            .push_str(&format!("Internal Server Error in response: {detail}\n"));
        out.exit_code = 1;
    } else if status == StatusCode::NOT_FOUND {
        if version.prints_operation_id() {
            out.stderr
                .push_str("Item not found: Check all names are correct.\n");
        } else {
            out.stderr
                .push_str(&format!("Item not found:{detail} {opid}\n"));
        }
    } else {
        out.stderr
            .push_str(&format!("HTTP Error: {status} {detail}\n"));
    }
}

/// Runs one `kanidm` invocation against the server.
pub fn run(kanidm: &Kanidm, request: &CliRequest) -> CliOutput {
    let mut state = kanidm.lock();
    let version = state.version();
    let (common, words) = match parse(version, request.argv.get(1..).unwrap_or_default()) {
        Ok(parsed) => parsed,
        Err(out) => return out,
    };
    let cli = Cli {
        request,
        common,
        json: false,
    };
    let json = cli
        .common
        .output
        .clone()
        .or_else(|| request.env("KANIDM_OUTPUT").map(str::to_string))
        .as_deref()
        == Some("json");
    let cli = Cli { json, ..cli };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if cli.common.help {
        return CliOutput::ok(format!("Usage: kanidm {} [OPTIONS]\n", words.join(" ")));
    }
    match words.as_slice() {
        ["version"] => CliOutput::ok(format!("kanidm {}\n", version.version_string())),
        ["login"] => cli.login(&mut state),
        ["group", "create", name] => cli.group_create(&mut state, name, None),
        ["group", "create", name, manager] => cli.group_create(&mut state, name, Some(manager)),
        ["group", "get", name] => cli.read(&mut state, false, |s| {
            Ok(s.group(name)
                .map(|g| s.group_entry(g))
                .into_iter()
                .collect())
        }),
        ["group", "list"] => cli.read(&mut state, false, |s| {
            Ok(s.groups.iter().map(|g| s.group_entry(g)).collect())
        }),
        ["group", "create"] => clap_error(
            "the following required arguments were not provided:\n  <NAME>",
            "kanidm group create <NAME> [ENTRY_MANAGED_BY]",
        ),
        ["system", "oauth2", command, args @ ..] => cli.oauth2(&mut state, command, args),
        [first, ..] => clap_error(
            &format!("unrecognized subcommand '{first}'"),
            "kanidm [OPTIONS] <COMMAND>",
        ),
        [] => CliOutput::fail("Usage: kanidm [OPTIONS] <COMMAND>\n", 2),
    }
}

struct Cli<'a> {
    request: &'a CliRequest,
    common: Common,
    json: bool,
}

impl Cli<'_> {
    fn home(&self) -> String {
        self.request
            .env("HOME")
            .unwrap_or(if self.request.uid == 0 { "/root" } else { "/" })
            .to_string()
    }

    fn instance(&self) -> String {
        self.common.instance.clone().unwrap_or_default()
    }

    fn account_name(&self) -> Option<String> {
        self.common
            .name
            .clone()
            .or_else(|| self.request.env("KANIDM_NAME").map(str::to_string))
    }

    /// `-H`, `KANIDM_URL`, or the pod's client config; the CLI cannot start without one.
    fn require_url(&self, state: &KanidmState, out: &mut CliOutput) -> bool {
        let url = self
            .common
            .url
            .clone()
            .or_else(|| self.request.env("KANIDM_URL").map(str::to_string));
        if url.or_else(|| state.config.client_uri.clone()).is_none() {
            // UNCONFIRMED: wording of the missing-URI error.
            log_error(
                out,
                "No URI was provided, please set one with -H/--url or the 'uri' client config option",
            );
            out.exit_code = 1;
            return false;
        }
        true
    }

    /// `to_client`: picks the cached token, checks its expiry and, for writes, its privilege,
    /// exactly as the CLI does locally before sending anything.
    fn token(&self, state: &KanidmState, write: bool, out: &mut CliOutput) -> Option<String> {
        if !self.require_url(state, out) {
            return None;
        }
        let (home, instance) = (self.home(), self.instance());
        let now = state.now();
        let live: Vec<(&String, &String)> = state
            .token_cache
            .iter()
            .filter(|((h, i, _), _)| *h == home && *i == instance)
            .filter(|(_, token)| state.sessions.get(*token).is_some_and(|s| s.expires > now))
            .map(|((_, _, name), token)| (name, token))
            .collect();
        let wanted = self
            .account_name()
            .map(|n| state.short_name(&n).to_string());
        let chosen = match &wanted {
            Some(name) => live.iter().find(|(n, _)| *n == name).copied(),
            None if live.len() == 1 => live.first().copied(),
            None if live.len() > 1 => {
                // UNCONFIRMED: the real CLI offers a selection prompt, which fails without a TTY.
                log_error(
                    out,
                    "Multiple authentication tokens exist. Please select one with --name.",
                );
                out.exit_code = 1;
                return None;
            }
            None => None,
        };
        let Some((name, token)) = chosen else {
            log_error(
                out,
                "No valid authentication tokens found. Please login with the 'login' subcommand.",
            );
            out.exit_code = 1;
            return None;
        };
        let privileged = state
            .sessions
            .get(token)
            .and_then(|s| s.privileged_until)
            .is_some_and(|until| until > now);
        if write && !privileged {
            out.stderr.push_str(&format!(
                "{} WARN kanidm_cli: Privileges have expired for {} - you need to re-authenticate again.\n",
                timestamp(),
                state.spn(name)
            ));
            // dialoguer::Confirm without a TTY: the unwrap panics (UNCONFIRMED panic location).
            out.stderr.push_str("thread 'main' panicked at tools/cli/src/cli/common.rs:\ncalled `Result::unwrap()` on an `Err` value: IO(Custom { kind: NotConnected, error: \"not a terminal\" })\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
            out.exit_code = 101;
            return None;
        }
        Some(token.clone())
    }

    /// Sends one request: the server re-checks the session, then runs `op`.
    fn call<T>(
        &self,
        state: &mut KanidmState,
        write: bool,
        out: &mut CliOutput,
        op: impl FnOnce(&mut KanidmState) -> Result<T, KanidmError>,
    ) -> Option<Result<T, KanidmError>> {
        let token = self.token(state, write, out)?;
        Some(
            state
                .session(&token, write)
                .map(|_| ())
                .and_then(|()| op(state)),
        )
    }

    fn login(&self, state: &mut KanidmState) -> CliOutput {
        let mut out = CliOutput::default();
        let Some(name) = self.account_name() else {
            // UNCONFIRMED: the real CLI prompts for a username, which fails without a TTY.
            log_error(
                &mut out,
                "No username was provided, please set one with -D/--name",
            );
            out.exit_code = 1;
            return out;
        };
        if !self.require_url(state, &mut out) {
            return out;
        }
        let Some(password) = self
            .common
            .password
            .clone()
            .or_else(|| self.request.env("KANIDM_PASSWORD").map(str::to_string))
        else {
            // UNCONFIRMED: rpassword's prompt without a TTY.
            log_error(
                &mut out,
                "Failed to create password prompt -- IO Error: not a terminal",
            );
            out.exit_code = 1;
            return out;
        };
        let session = match state.auth_init(&name, true) {
            Ok(session) => session,
            Err(e) => {
                log_error(
                    &mut out,
                    &format!(
                        "Error during authentication init phase: {}",
                        client_error_debug(&e, &opid())
                    ),
                );
                out.exit_code = 1;
                return out;
            }
        };
        let outcome = state
            .auth_begin(&session, "password")
            .and_then(|()| state.auth_password(&session, &password));
        match outcome {
            Ok(AuthOutcome::Success(token)) => {
                let short = state.short_name(&name).to_string();
                state
                    .token_cache
                    .insert((self.home(), self.instance(), short.clone()), token);
                out.stdout
                    .push_str(&format!("Login Success for {}\n", state.spn(&short)));
            }
            Ok(AuthOutcome::Denied(reason)) => {
                log_error(&mut out, &format!("Authentication Denied: {reason:?}"));
                out.exit_code = 1;
            }
            Err(e) => {
                log_error(
                    &mut out,
                    &format!(
                        "Error during authentication phase: {}",
                        client_error_debug(&e, &opid())
                    ),
                );
                out.exit_code = 1;
            }
        }
        out
    }

    /// `group create` has its own handler: any error is logged and the exit code stays 0.
    fn group_create(
        &self,
        state: &mut KanidmState,
        name: &str,
        manager: Option<&str>,
    ) -> CliOutput {
        let mut out = CliOutput::default();
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), vec![name.to_string()]);
        if let Some(manager) = manager {
            attrs.insert("entry_managed_by".into(), vec![manager.to_string()]);
        }
        match self.call(state, true, &mut out, |s| s.group_create(&attrs)) {
            None => {}
            Some(Ok(())) => out
                .stdout
                .push_str(&format!("Successfully created group '{name}'\n")),
            Some(Err(e)) => log_error(
                &mut out,
                &format!("Error -> {}", client_error_debug(&e, &opid())),
            ),
        }
        out
    }

    /// A read answering entries: text prints each as `---` + `attr: value` lines + a blank line.
    fn read(
        &self,
        state: &mut KanidmState,
        text_only: bool,
        op: impl FnOnce(&KanidmState) -> Result<Vec<Attrs>, KanidmError>,
    ) -> CliOutput {
        let mut out = CliOutput::default();
        match self.call(state, false, &mut out, |s| op(s)) {
            None => {}
            Some(Ok(entries)) if self.json && !text_only => {
                out.stdout.push_str(&format!(
                    "{}\n",
                    serde_json::to_string(&entries).unwrap_or_default()
                ));
            }
            Some(Ok(entries)) => {
                for entry in entries {
                    out.stdout.push_str(&render_entry(&entry));
                }
            }
            Some(Err(e)) => handle_client_error(&mut out, state.version(), &e),
        }
        out
    }

    /// A write answering `Success` on stdout.
    fn write(
        &self,
        state: &mut KanidmState,
        op: impl FnOnce(&mut KanidmState) -> Result<(), KanidmError>,
    ) -> CliOutput {
        let mut out = CliOutput::default();
        match self.call(state, true, &mut out, op) {
            None => {}
            Some(Ok(())) => out.stdout.push_str("Success\n"),
            Some(Err(e)) => handle_client_error(&mut out, state.version(), &e),
        }
        out
    }

    fn oauth2(&self, state: &mut KanidmState, command: &str, args: &[&str]) -> CliOutput {
        let version = state.version();
        let usage = format!("kanidm system oauth2 {command} [OPTIONS]");
        let missing = |what: &str| {
            clap_error(
                &format!("the following required arguments were not provided:\n  {what}"),
                &usage,
            )
        };
        let patch =
            |key: &str, values: Vec<String>| -> Attrs { [(key.to_string(), values)].into() };
        match (command, args) {
            ("create" | "create-public", [name, display, origin]) => {
                let mut attrs = Attrs::new();
                attrs.insert("name".into(), vec![name.to_string()]);
                attrs.insert("displayname".into(), vec![display.to_string()]);
                attrs.insert("oauth2_rs_origin_landing".into(), vec![origin.to_string()]);
                if version.strict_redirect_on_create() {
                    attrs.insert("oauth2_strict_redirect_uri".into(), vec!["true".into()]);
                }
                let public = command == "create-public";
                self.write(state, |s| s.oauth2_create(&attrs, public))
            }
            ("create" | "create-public", _) => missing("<NAME> <DISPLAYNAME> <ORIGIN>"),
            ("add-redirect-url" | "remove-redirect-url", [name, url]) => {
                let url = match normalise_url(url) {
                    Ok(url) => url,
                    Err(reason) => {
                        return CliOutput::fail(
                            format!(
                                "error: invalid value '{url}' for '<URL>': {reason}\n\nFor more information, try '--help'.\n"
                            ),
                            2,
                        );
                    }
                };
                let add = command == "add-redirect-url";
                self.write(state, |s| {
                    s.oauth2_attr(name, "oauth2_rs_origin", &[url], add)
                })
            }
            ("add-redirect-url" | "remove-redirect-url", _) => missing("<NAME> <URL>"),
            ("warning-insecure-client-disable-pkce", [name]) => {
                let attrs = patch(
                    "oauth2_allow_insecure_client_disable_pkce",
                    vec!["true".into()],
                );
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("enable-pkce", [name]) => {
                let attrs = patch("oauth2_allow_insecure_client_disable_pkce", vec![]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("create-scope-map" | "update-scope-map", [name, group, scopes @ ..])
                if !scopes.is_empty() =>
            {
                let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
                self.write(state, |s| {
                    s.oauth2_set_scope_map(name, group, &scopes, false)
                })
            }
            ("create-sup-scope-map" | "update-sup-scope-map", [name, group, scopes @ ..])
                if !scopes.is_empty() =>
            {
                let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
                self.write(state, |s| {
                    s.oauth2_set_scope_map(name, group, &scopes, true)
                })
            }
            (
                "create-scope-map"
                | "update-scope-map"
                | "create-sup-scope-map"
                | "update-sup-scope-map",
                _,
            ) => missing("<NAME> <GROUP> <SCOPES>..."),
            ("delete-scope-map", [name, group]) => {
                self.write(state, |s| s.oauth2_delete_scope_map(name, group, false))
            }
            ("delete-sup-scope-map", [name, group]) => {
                self.write(state, |s| s.oauth2_delete_scope_map(name, group, true))
            }
            ("set-landing-url", [name, url]) => {
                let attrs = patch("oauth2_rs_origin_landing", vec![url.to_string()]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("set-displayname", [name, display]) => {
                let attrs = patch("displayname", vec![display.to_string()]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("set-name", [name, new_name]) => {
                let attrs = patch("name", vec![new_name.to_string()]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            // UNCONFIRMED: the strict-redirect toggles exist from 1.4, like the attribute.
            ("enable-strict-redirect-url" | "disable-strict-redirect-url", [name])
                if version.strict_redirect_on_create() =>
            {
                let value = if command.starts_with("enable") {
                    "true"
                } else {
                    "false"
                };
                let attrs = patch("oauth2_strict_redirect_uri", vec![value.into()]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("prefer-short-username" | "prefer-spn-username", [name]) => {
                let value = if command == "prefer-short-username" {
                    "true"
                } else {
                    "false"
                };
                let attrs = patch("oauth2_prefer_short_username", vec![value.into()]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("show-basic-secret", [name]) => self.show_basic_secret(state, name),
            (reset, [name]) if reset == version.reset_secret_command() => {
                let attrs = patch("oauth2_rs_basic_secret", vec![]);
                self.write(state, |s| s.oauth2_patch(name, &attrs))
            }
            ("get", [name]) => {
                // `get` has no JSON rendering: it prints text whatever `-o` says.
                let mut out = self.read(state, true, |s| {
                    Ok(s.client(name)
                        .map(|c| s.oauth2_entry(c))
                        .into_iter()
                        .collect())
                });
                // `GET /v1/oauth2/{name}` answers `200 null` for a missing client.
                if out.exit_code == 0 && out.stdout.is_empty() && out.stderr.is_empty() {
                    out.stdout.push_str("No matching entries\n");
                }
                out
            }
            ("list", []) => self.read(state, false, |s| {
                Ok(s.clients.iter().map(|c| s.oauth2_entry(c)).collect())
            }),
            ("delete", [name]) => self.write(state, |s| s.oauth2_delete(name)),
            (
                "get"
                | "delete"
                | "show-basic-secret"
                | "warning-insecure-client-disable-pkce"
                | "enable-pkce",
                _,
            ) => missing("<NAME>"),
            ("reset-secrets" | "reset-basic-secret", _)
                if command != version.reset_secret_command() =>
            {
                clap_error(
                    &format!(
                        "unrecognized subcommand '{command}'\n\n  tip: a similar subcommand exists: '{}'",
                        version.reset_secret_command()
                    ),
                    "kanidm system oauth2 <COMMAND>",
                )
            }
            _ => clap_error(
                &format!("unrecognized subcommand '{command}'"),
                "kanidm system oauth2 <COMMAND>",
            ),
        }
    }

    /// Text: the secret on stdout, `Success` on stderr; JSON: `{"secret": "…"}`.
    fn show_basic_secret(&self, state: &mut KanidmState, name: &str) -> CliOutput {
        let mut out = CliOutput::default();
        match self.call(state, false, &mut out, |s| s.oauth2_basic_secret(name)) {
            None => {}
            Some(Ok(Some(secret))) => {
                if self.json {
                    out.stdout
                        .push_str(&format!("{{\"secret\": \"{secret}\"}}\n"));
                } else {
                    out.stdout.push_str(&format!("{secret}\n"));
                }
                out.stderr.push_str("Success\n");
            }
            Some(Ok(None)) => out.stderr.push_str("No secret configured\n"),
            Some(Err(e)) => handle_client_error(&mut out, state.version(), &e),
        }
        out
    }
}

/// `impl Display for Entry` followed by `println!`: `---`, one line per value, a blank line.
pub(crate) fn render_entry(entry: &Attrs) -> String {
    let mut text = String::from("---\n");
    for (key, values) in entry {
        for value in values {
            text.push_str(&format!("{key}: {value}\n"));
        }
    }
    text.push('\n');
    text
}

/// What `url::Url::parse` + `to_string` does to the redirect URLs the emulator sees.
pub(crate) fn normalise_url(raw: &str) -> Result<String, &'static str> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err("relative URL without a base");
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("relative URL without a base");
    }
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err("empty host");
    }
    let mut authority = authority.to_ascii_lowercase();
    for (s, port) in [("https", ":443"), ("http", ":80")] {
        if scheme == s && authority.ends_with(port) {
            authority.truncate(authority.len() - port.len());
        }
    }
    let path = if path.is_empty() || path.starts_with(['?', '#']) {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::super::kanidm::KanidmConfig;
    use super::*;

    fn kanidm(version: KanidmVersion) -> Kanidm {
        Kanidm::new(KanidmConfig::new(version))
    }

    fn run_with(k: &Kanidm, argv: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut request = CliRequest::new(argv);
        request.env.insert("HOME".into(), "/home/test".into());
        for (key, value) in env {
            request.env.insert(key.to_string(), value.to_string());
        }
        run(k, &request)
    }

    fn login(k: &Kanidm) {
        let password = k.lock().recover_account("idm_admin").unwrap();
        let out = run_with(
            k,
            &[
                "kanidm",
                "login",
                "-H",
                "https://idm.example.com",
                "-D",
                "idm_admin",
            ],
            &[("KANIDM_PASSWORD", &password)],
        );
        assert_eq!(
            out,
            CliOutput::ok("Login Success for idm_admin@idm.example.com\n")
        );
    }

    const H: &[&str] = &["-H", "https://idm.example.com", "-D", "idm_admin"];

    fn cmd(k: &Kanidm, words: &[&str]) -> CliOutput {
        run_with(k, &[&["kanidm"], words, H].concat(), &[])
    }

    #[test]
    fn without_a_token_nothing_runs() {
        let k = kanidm(KanidmVersion::V1_7);
        let out = cmd(&k, &["group", "create", "dex_users"]);
        assert_eq!(out.exit_code, 1);
        assert!(out.stderr.ends_with(" ERROR kanidm_cli: No valid authentication tokens found. Please login with the 'login' subcommand.\n"), "{}", out.stderr);
        assert_eq!(out.stdout, "");
    }

    #[test]
    fn wrong_password_fails_login() {
        let k = kanidm(KanidmVersion::V1_7);
        let out = run_with(
            &k,
            &["kanidm", "login", "-H", "https://x", "-D", "idm_admin"],
            &[("KANIDM_PASSWORD", "nope")],
        );
        assert_eq!(out.exit_code, 1);
        assert!(
            out.stderr
                .ends_with("Authentication Denied: \"incorrect password\"\n"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn group_create_exits_zero_even_on_duplicate() {
        let k = kanidm(KanidmVersion::V1_7);
        login(&k);
        assert_eq!(
            cmd(&k, &["group", "create", "dex_users"]),
            CliOutput::ok("Successfully created group 'dex_users'\n")
        );
        let again = cmd(&k, &["group", "create", "dex_users"]);
        assert_eq!(again.exit_code, 0);
        assert_eq!(again.stdout, "");
        assert!(again.stderr.contains(" ERROR kanidm_cli: Error -> Http(500, Some(Plugin(AttrUnique(\"duplicate value detected\"))), \""), "{}", again.stderr);
        assert_eq!(k.snapshot().counters.groups_created, 1);
    }

    #[test]
    fn oauth2_flow_on_1_7() {
        let k = kanidm(KanidmVersion::V1_7);
        login(&k);
        assert_eq!(
            cmd(
                &k,
                &[
                    "system",
                    "oauth2",
                    "create",
                    "dex",
                    "Dex",
                    "https://dex.example.com"
                ]
            ),
            CliOutput::ok("Success\n")
        );
        let dup = cmd(
            &k,
            &[
                "system",
                "oauth2",
                "create",
                "dex",
                "Dex",
                "https://dex.example.com",
            ],
        );
        assert_eq!(dup.exit_code, 1);
        let lines: Vec<&str> = dup.stderr.lines().collect();
        assert!(lines[0].starts_with("OperationId: \""), "{lines:?}");
        assert_eq!(
            lines[1],
            "Internal Server Error in response: Plugin(AttrUnique(\"duplicate value detected\"))"
        );
        assert_eq!(
            cmd(
                &k,
                &[
                    "system",
                    "oauth2",
                    "add-redirect-url",
                    "dex",
                    "https://Dex.example.com:443/callback"
                ]
            )
            .stdout,
            "Success\n"
        );
        assert_eq!(
            cmd(
                &k,
                &[
                    "system",
                    "oauth2",
                    "warning-insecure-client-disable-pkce",
                    "dex"
                ]
            )
            .stdout,
            "Success\n"
        );
        assert_eq!(cmd(&k, &["group", "create", "dex_users"]).exit_code, 0);
        assert_eq!(
            cmd(
                &k,
                &[
                    "system",
                    "oauth2",
                    "create-scope-map",
                    "dex",
                    "dex_users",
                    "openid",
                    "email",
                    "profile"
                ]
            )
            .stdout,
            "Success\n"
        );
        let secret = cmd(&k, &["system", "oauth2", "show-basic-secret", "dex"]);
        assert_eq!(secret.stderr, "Success\n");
        assert!(k.basic_secret_is("dex", secret.stdout.trim_end()));
        let json = cmd(
            &k,
            &["system", "oauth2", "show-basic-secret", "dex", "-o", "json"],
        );
        assert_eq!(
            json.stdout,
            format!("{{\"secret\": \"{}\"}}\n", secret.stdout.trim_end())
        );
        let get = cmd(&k, &["system", "oauth2", "get", "dex"]);
        let uuid = k.lock().client("dex").unwrap().uuid.clone();
        assert_eq!(
            get.stdout,
            format!(
                "---\nclass: object\nclass: oauth2_resource_server\nclass: oauth2_resource_server_basic\ndisplayname: Dex\nname: dex\noauth2_allow_insecure_client_disable_pkce: true\noauth2_rs_basic_secret: hidden\noauth2_rs_origin: https://dex.example.com/callback\noauth2_rs_origin_landing: https://dex.example.com\noauth2_rs_scope_map: dex_users@idm.example.com: {{\"email\", \"openid\", \"profile\"}}\noauth2_rs_token_key: hidden\noauth2_strict_redirect_uri: true\nuuid: {uuid}\n\n"
            )
        );
        assert_eq!(
            cmd(&k, &["system", "oauth2", "get", "nope"]),
            CliOutput::ok("No matching entries\n")
        );
        let missing = cmd(
            &k,
            &["system", "oauth2", "add-redirect-url", "nope", "https://x/"],
        );
        assert_eq!(missing.exit_code, 0);
        assert!(
            missing
                .stderr
                .ends_with("Item not found: Check all names are correct.\n")
        );
        assert_eq!(
            cmd(&k, &["system", "oauth2", "reset-basic-secret", "dex"]).stdout,
            "Success\n"
        );
        assert!(!k.basic_secret_is("dex", secret.stdout.trim_end()));
        let old = cmd(&k, &["system", "oauth2", "reset-secrets", "dex"]);
        assert_eq!(old.exit_code, 2);
        assert!(
            old.stderr
                .starts_with("error: unrecognized subcommand 'reset-secrets'\n")
        );
    }

    #[test]
    fn version_1_3_differences() {
        let k = kanidm(KanidmVersion::V1_3);
        login(&k);
        assert_eq!(
            cmd(
                &k,
                &[
                    "system",
                    "oauth2",
                    "create",
                    "dex",
                    "Dex",
                    "https://dex.example.com"
                ]
            )
            .stdout,
            "Success\n"
        );
        assert!(!k.snapshot().oauth2_clients[0].strict_redirect);
        assert_eq!(
            cmd(&k, &["system", "oauth2", "reset-secrets", "dex"]).stdout,
            "Success\n"
        );
        assert_eq!(
            cmd(&k, &["system", "oauth2", "reset-basic-secret", "dex"]).exit_code,
            2
        );
        let dup = cmd(
            &k,
            &[
                "system",
                "oauth2",
                "create",
                "dex",
                "Dex",
                "https://dex.example.com",
            ],
        );
        assert_eq!(
            dup,
            CliOutput::fail(
                "Internal Server Error in response: Plugin(AttrUnique(\"duplicate value detected\"))\n",
                1
            )
        );
        let missing = cmd(&k, &["system", "oauth2", "enable-pkce", "nope"]);
        assert_eq!(missing.exit_code, 0);
        assert!(
            missing
                .stderr
                .starts_with("Item not found:NoMatchingEntries "),
            "{}",
            missing.stderr
        );
        let flag = cmd(&k, &["system", "oauth2", "list", "--accept-invalid-certs"]);
        assert_eq!(flag.exit_code, 2);
    }

    #[test]
    fn expired_privileges_and_recovered_accounts() {
        let k = kanidm(KanidmVersion::V1_7);
        login(&k);
        k.advance_clock(chrono::Duration::minutes(16));
        assert_eq!(cmd(&k, &["system", "oauth2", "list"]).exit_code, 0);
        let write = cmd(&k, &["group", "create", "g"]);
        assert_eq!(write.exit_code, 101);
        assert!(write.stderr.contains("Privileges have expired for idm_admin@idm.example.com - you need to re-authenticate again."));
        login(&k);
        k.lock().recover_account("idm_admin");
        let stale = cmd(&k, &["system", "oauth2", "create", "x", "X", "https://x"]);
        assert_eq!(stale.exit_code, 0);
        assert!(
            stale
                .stderr
                .ends_with("HTTP Error: 401 Unauthorized NotAuthenticated\n"),
            "{}",
            stale.stderr
        );
    }

    #[test]
    fn sup_scope_maps_renames_and_text_only_get() {
        let k = kanidm(KanidmVersion::V1_7);
        login(&k);
        let oauth2 = |words: &[&str]| cmd(&k, &[&["system", "oauth2"], words].concat());
        assert_eq!(
            oauth2(&["create", "app", "App", "https://app.example.com"]).stdout,
            "Success\n"
        );
        assert_eq!(
            oauth2(&["update-sup-scope-map", "app", "idm_admins", "admin"]).stdout,
            "Success\n"
        );
        assert_eq!(
            oauth2(&["set-displayname", "app", "My App"]).stdout,
            "Success\n"
        );
        assert_eq!(
            oauth2(&["prefer-short-username", "app"]).stdout,
            "Success\n"
        );
        let get = oauth2(&["get", "app", "-o", "json"]);
        assert!(
            get.stdout.starts_with("---\nclass: object\n"),
            "{}",
            get.stdout
        );
        assert!(get.stdout.contains("\ndisplayname: My App\n"));
        assert!(
            get.stdout
                .contains("\noauth2_prefer_short_username: true\n")
        );
        assert!(
            get.stdout
                .contains("\noauth2_rs_sup_scope_map: idm_admins@idm.example.com: {\"admin\"}\n")
        );
        let list = oauth2(&["list", "-o", "json"]);
        let parsed: Vec<Attrs> = serde_json::from_str(&list.stdout).unwrap();
        assert_eq!(parsed[0]["name"], ["app"]);
        assert_eq!(
            oauth2(&["delete-sup-scope-map", "app", "idm_admins"]).stdout,
            "Success\n"
        );
        assert!(k.snapshot().oauth2_clients[0].sup_scope_maps.is_empty());
        let scopes = oauth2(&["update-scope-map", "app", "idm_admins"]);
        assert_eq!(scopes.exit_code, 2);
    }

    #[test]
    fn urls_normalise_like_the_url_crate() {
        assert_eq!(
            normalise_url("HTTPS://Gitea.Example.com").unwrap(),
            "https://gitea.example.com/"
        );
        assert_eq!(
            normalise_url("https://a:8443/cb?x").unwrap(),
            "https://a:8443/cb?x"
        );
        assert!(normalise_url("gitea").is_err());
    }
}
