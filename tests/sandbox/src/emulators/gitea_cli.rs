//! The `gitea` / `forgejo` command line of an emulated instance: `admin auth …` and
//! `admin user …`, with Gitea's output texts, error texts, exit codes and root refusal.

use super::cli_exchange::{CliOutput, CliRequest};
use super::gitea::{AuthSource, Gitea, GiteaState, has_permission_scope, normalize_scopes};
use super::go_flags::{FlagError, FlagKind, FlagSpec, ParsedFlags};
use super::random::alphanumeric;
use super::tab_writer::TabWriter;

use FlagKind::{Bool, Int, String as Str, StringSlice};

/// Flags every subcommand accepts since `prepareSubcommandWithConfig` (1.21+).
const CONFIG_FLAGS: &[FlagSpec] = &[
    FlagSpec::aliased("config", &["c"], Str),
    FlagSpec::aliased("work-path", &["w"], Str),
    FlagSpec::aliased("custom-path", &["C"], Str),
    FlagSpec::aliased("help", &["h"], Bool),
];

const GLOBAL_FLAGS: &[FlagSpec] = &[
    FlagSpec::aliased("config", &["c"], Str),
    FlagSpec::aliased("work-path", &["w"], Str),
    FlagSpec::aliased("custom-path", &["C"], Str),
    FlagSpec::aliased("help", &["h"], Bool),
    FlagSpec::aliased("version", &["v"], Bool),
];

const OAUTH_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("name", Str),
    FlagSpec::new("provider", Str),
    FlagSpec::new("key", Str),
    FlagSpec::new("secret", Str),
    FlagSpec::new("auto-discover-url", Str),
    FlagSpec::new("use-custom-urls", Str),
    FlagSpec::new("custom-tenant-id", Str),
    FlagSpec::new("custom-auth-url", Str),
    FlagSpec::new("custom-token-url", Str),
    FlagSpec::new("custom-profile-url", Str),
    FlagSpec::new("custom-email-url", Str),
    FlagSpec::new("icon-url", Str),
    FlagSpec::new("skip-local-2fa", Bool),
    FlagSpec::new("scopes", StringSlice),
    FlagSpec::new("required-claim-name", Str),
    FlagSpec::new("required-claim-value", Str),
    FlagSpec::new("group-claim-name", Str),
    FlagSpec::new("admin-group", Str),
    FlagSpec::new("restricted-group", Str),
    FlagSpec::new("group-team-map", Str),
    FlagSpec::new("group-team-map-removal", Bool),
];

const ID_FLAG: FlagSpec = FlagSpec::new("id", Int);

const LIST_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("min-width", Int),
    FlagSpec::new("tab-width", Int),
    FlagSpec::new("padding", Int),
    FlagSpec::new("pad-char", Str),
    FlagSpec::new("vertical-bars", Bool),
];

const USER_CREATE_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("name", Str),
    FlagSpec::new("username", Str),
    FlagSpec::new("password", Str),
    FlagSpec::new("email", Str),
    FlagSpec::new("admin", Bool),
    FlagSpec::new("random-password", Bool),
    FlagSpec::new("must-change-password", Bool),
    FlagSpec::new("random-password-length", Int),
    FlagSpec::new("access-token", Bool),
    FlagSpec::new("restricted", Bool),
];

const USER_CREATE_TOKEN_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("access-token-name", Str),
    FlagSpec::new("access-token-scopes", StringSlice),
];

const USER_CREATE_TYPE_FLAGS: &[FlagSpec] = &[
    FlagSpec::new("user-type", Str),
    FlagSpec::new("fullname", Str),
];

const GENERATE_TOKEN_FLAGS: &[FlagSpec] = &[
    FlagSpec::aliased("username", &["u"], Str),
    FlagSpec::aliased("token-name", &["t"], Str),
    FlagSpec::new("raw", Bool),
    FlagSpec::new("scopes", Str),
];

const MUST_CHANGE_FLAGS: &[FlagSpec] = &[
    FlagSpec::aliased("all", &["A"], Bool),
    FlagSpec::aliased("exclude", &["e"], StringSlice),
    FlagSpec::new("unset", Bool),
];

/// How a command ended other than with success.
enum Failure {
    /// `Command error: <msg>` on stderr, exit 1 (`cmd/main.go: RunMainApp`).
    Command(String),
    /// A `log.Fatal` line, which the console logger writes to stdout; exit 1.
    Fatal { site: &'static str, message: String },
    /// urfave/cli's own usage error: message and help on stdout, exit 1.
    Usage {
        error: FlagError,
        command: String,
        specs: Vec<FlagSpec>,
    },
    /// urfave/cli for an unknown subcommand.
    UnknownCommand(String),
}

/// Runs one `gitea` invocation against the instance.
pub fn run(gitea: &Gitea, request: &CliRequest) -> CliOutput {
    let mut out = CliOutput::default();
    let program = request.program().to_string();
    match dispatch(gitea, request, &program, &mut out) {
        Ok(()) => {}
        Err(Failure::Command(message)) => {
            out.stderr.push_str(&format!("Command error: {message}\n"));
            out.exit_code = 1;
        }
        Err(Failure::Fatal { site, message }) => {
            let now = chrono::Utc::now().format("%Y/%m/%d %H:%M:%S");
            out.stdout
                .push_str(&format!("{now} {site} [F] {message}\n"));
            out.exit_code = 1;
        }
        Err(Failure::Usage {
            error,
            command,
            specs,
        }) => {
            out.stdout.push_str(&format!(
                "Incorrect Usage: {error}\n\n{}",
                help(&program, &command, &specs)
            ));
            out.exit_code = 1;
        }
        Err(Failure::UnknownCommand(name)) => {
            // UNCONFIRMED: urfave/cli v2 wording for an unknown subcommand under a parent.
            out.stderr
                .push_str(&format!("No help topic for '{name}'\n"));
            out.exit_code = 3;
        }
    }
    out
}

/// Text after `Incorrect Usage:`; UNCONFIRMED beyond its NAME/USAGE/OPTIONS layout.
fn help(program: &str, command: &str, specs: &[FlagSpec]) -> String {
    let mut text = format!(
        "NAME:\n   {program} {command}\n\nUSAGE:\n   {program} {command} [command options]\n\nOPTIONS:\n"
    );
    for spec in specs {
        let value = if spec.kind == Bool { "" } else { " value" };
        text.push_str(&format!("   --{}{value}\n", spec.name));
    }
    text
}

fn dispatch(
    gitea: &Gitea,
    request: &CliRequest,
    program: &str,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    let version = gitea.version();
    let global = ParsedFlags::parse(GLOBAL_FLAGS, &request.argv[1.min(request.argv.len())..])
        .map_err(|error| Failure::Usage {
            error,
            command: String::new(),
            specs: GLOBAL_FLAGS.to_vec(),
        })?;
    if global.bool("version") {
        // UNCONFIRMED: build tags and toolchain in the version banner.
        out.stdout.push_str(&format!(
            "{} version {} built with GNU Make 4.4.1, go1.22.6 : bindata, timetzdata, sqlite, sqlite_unlock_notify\n",
            version.product(),
            version.version_string()
        ));
        return Ok(());
    }
    let words: Vec<&str> = global.args.iter().take(3).map(String::as_str).collect();
    let rest = &global.args[words.len().min(3)..];
    let leaf = match words.as_slice() {
        ["admin", "auth", leaf] => format!("auth {leaf}"),
        ["admin", "user", leaf] => format!("user {leaf}"),
        ["admin", group, ..] if *group != "auth" && *group != "user" => {
            return Err(Failure::UnknownCommand((*group).to_string()));
        }
        [first, ..] if *first != "admin" => {
            return Err(Failure::UnknownCommand((*first).to_string()));
        }
        _ => {
            out.stdout
                .push_str(&help(program, &global.args.join(" "), CONFIG_FLAGS));
            return Ok(());
        }
    };
    let mut specs: Vec<FlagSpec> = match leaf.as_str() {
        "auth add-oauth" => OAUTH_FLAGS.to_vec(),
        "auth update-oauth" => [OAUTH_FLAGS, &[ID_FLAG]].concat(),
        "auth list" => LIST_FLAGS.to_vec(),
        "auth delete" => vec![ID_FLAG],
        "user create" => {
            let mut specs = USER_CREATE_FLAGS.to_vec();
            if version.user_create_token_flags() {
                specs.extend_from_slice(USER_CREATE_TOKEN_FLAGS);
            }
            if version.user_create_type_flags() {
                specs.extend_from_slice(USER_CREATE_TYPE_FLAGS);
            }
            specs
        }
        "user generate-access-token" => GENERATE_TOKEN_FLAGS.to_vec(),
        "user list" => vec![FlagSpec::new("admin", Bool)],
        "user must-change-password" => MUST_CHANGE_FLAGS.to_vec(),
        _ => return Err(Failure::UnknownCommand(words[2].to_string())),
    };
    specs.extend_from_slice(CONFIG_FLAGS);
    let command = format!("admin {leaf}");
    let flags = ParsedFlags::parse(&specs, rest).map_err(|error| Failure::Usage {
        error,
        command: command.clone(),
        specs: specs.clone(),
    })?;
    if flags.bool("help") {
        out.stdout.push_str(&help(program, &command, &specs));
        return Ok(());
    }
    let config = if flags.is_set("config") {
        Some(flags.string("config"))
    } else {
        global.is_set("config").then(|| global.string("config"))
    };
    let env = Settings { request, config };
    let mut state = gitea.lock();
    match leaf.as_str() {
        "auth add-oauth" => add_oauth(&mut state, &env, &flags),
        "auth update-oauth" => update_oauth(&mut state, &env, &flags),
        "auth list" => list_sources(&state, &env, &flags, out),
        "auth delete" => delete_source(&mut state, &env, &flags),
        "user create" => create_user(&mut state, &env, &flags, out),
        "user generate-access-token" => generate_token(&mut state, &env, &flags, out),
        "user must-change-password" => must_change_password(&mut state, &env, &flags, out),
        _ => list_users(&state, &env, &flags, out),
    }
}

/// What `setting.LoadCommonSettings` looks at when `initDB` runs.
struct Settings<'a> {
    request: &'a CliRequest,
    config: Option<String>,
}

impl Settings<'_> {
    /// Loads app.ini and runs the run-user checks of `loadRunModeFrom` and
    /// `mustCurrentRunUserMatch`; every admin command does this before touching the database.
    fn load(&self, state: &GiteaState) -> Result<(), Failure> {
        let product = state.version().product();
        let config = self
            .config
            .clone()
            .or_else(|| self.request.env("GITEA_APP_INI").map(str::to_string));
        if config.is_some_and(|path| path != state.config.config_path) {
            // UNCONFIRMED: the exact site and wording of the missing-config fatal.
            return Err(Failure::Fatal {
                site: "modules/setting/config_provider.go:317:deprecatedSetting()",
                message: format!(
                    "Unable to load config file for a installed {product} instance, you should either use \"--config\" to set your config file (app.ini), or run \"{} web\" command to install {product}.",
                    product.to_lowercase()
                ),
            });
        }
        let uid = self.request.uid;
        let unsafe_root =
            self.request.env("GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT") == Some("true");
        if uid == 0 && !unsafe_root {
            return Err(Failure::Fatal {
                site: "modules/setting/setting.go:179:loadRunModeFrom()",
                message: format!(
                    "{product} is not supposed to be run as root. Sorry. If you need to use privileged TCP ports please instead use setcap and the `cap_net_bind_service` permission"
                ),
            });
        }
        if uid != state.config.run_uid {
            // UNCONFIRMED: the source line; the username of a uid other than root and RUN_USER
            // is unknown to the emulator, so it is shown as the uid.
            let current = if uid == 0 {
                "root".to_string()
            } else {
                uid.to_string()
            };
            return Err(Failure::Fatal {
                site: "modules/setting/setting.go:188:mustCurrentRunUserMatch()",
                message: format!(
                    "Expect user '{}' but current user is: {current}",
                    state.config.run_user
                ),
            });
        }
        Ok(())
    }
}

fn source_from_flags(source: &mut AuthSource, flags: &ParsedFlags, two_factor_recomputed: bool) {
    let set = |target: &mut String, name: &str| {
        if flags.is_set(name) {
            *target = flags.string(name);
        }
    };
    set(&mut source.name, "name");
    set(&mut source.provider, "provider");
    set(&mut source.client_id, "key");
    set(&mut source.client_secret, "secret");
    set(&mut source.auto_discover_url, "auto-discover-url");
    set(&mut source.icon_url, "icon-url");
    set(&mut source.required_claim_name, "required-claim-name");
    set(&mut source.required_claim_value, "required-claim-value");
    set(&mut source.group_claim_name, "group-claim-name");
    set(&mut source.admin_group, "admin-group");
    set(&mut source.restricted_group, "restricted-group");
    set(&mut source.group_team_map, "group-team-map");
    if flags.is_set("scopes") {
        source.scopes = flags.slice("scopes");
    }
    if flags.is_set("group-team-map-removal") {
        source.group_team_map_removal = flags.bool("group-team-map-removal");
    }
    if two_factor_recomputed || flags.is_set("skip-local-2fa") {
        source.skip_local_2fa = flags.bool("skip-local-2fa");
    }
    // Custom URLs count only when `--use-custom-urls` is set at all (`c.IsSet`).
    if flags.is_set("use-custom-urls") {
        for name in [
            "custom-tenant-id",
            "custom-auth-url",
            "custom-token-url",
            "custom-profile-url",
            "custom-email-url",
        ] {
            if flags.is_set(name) {
                source.custom_urls.retain(|(key, _)| key != name);
                source
                    .custom_urls
                    .push((name.to_string(), flags.string(name)));
            }
        }
    }
}

fn valid_discovery_url(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, rest)| {
        (scheme == "http" || scheme == "https") && !rest.contains(' ')
    })
}

fn add_oauth(state: &mut GiteaState, env: &Settings, flags: &ParsedFlags) -> Result<(), Failure> {
    env.load(state)?;
    let mut source = AuthSource {
        is_active: true,
        ..AuthSource::default()
    };
    source_from_flags(&mut source, flags, true);
    if source.provider == "openidConnect" && !valid_discovery_url(&source.auto_discover_url) {
        return Err(Failure::Command(format!(
            "invalid Auto Discovery URL: {} (this must be a valid URL starting with http:// or https://)",
            source.auto_discover_url
        )));
    }
    if state.sources.iter().any(|s| s.name == source.name) {
        return Err(Failure::Command(format!(
            "login source already exists [name: {}]",
            source.name
        )));
    }
    state.add_source(source);
    Ok(())
}

fn update_oauth(
    state: &mut GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
) -> Result<(), Failure> {
    if !flags.is_set("id") {
        return Err(Failure::Command("--id flag is missing".into()));
    }
    env.load(state)?;
    let id = flags.int("id");
    let recompute = state.version().two_factor_policy_on_source();
    let Some(index) = state.sources.iter().position(|s| s.id == id) else {
        return Err(Failure::Command(format!(
            "login source does not exist [id: {id}]"
        )));
    };
    let mut source = state.sources[index].clone();
    source_from_flags(&mut source, flags, recompute);
    if state
        .sources
        .iter()
        .any(|s| s.id != id && s.name == source.name)
    {
        // UNCONFIRMED: the unique index on login_source.name, as SQLite words the violation.
        return Err(Failure::Command(
            "UNIQUE constraint failed: login_source.name".into(),
        ));
    }
    state.sources[index] = source;
    state.counters.auth_sources_updated += 1;
    Ok(())
}

fn delete_source(
    state: &mut GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
) -> Result<(), Failure> {
    if !flags.is_set("id") {
        return Err(Failure::Command("--id flag is missing".into()));
    }
    env.load(state)?;
    let id = flags.int("id");
    if !state.sources.iter().any(|s| s.id == id) {
        return Err(Failure::Command(format!(
            "login source does not exist [id: {id}]"
        )));
    }
    state.sources.retain(|s| s.id != id);
    state.counters.auth_sources_deleted += 1;
    Ok(())
}

fn list_sources(
    state: &GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    env.load(state)?;
    let int_or = |name: &str, default: i64| {
        if flags.is_set(name) {
            flags.int(name)
        } else {
            default
        }
    };
    let writer = TabWriter {
        min_width: int_or("min-width", 0).max(0) as usize,
        tab_width: int_or("tab-width", 8).max(0) as usize,
        padding: int_or("padding", 1).max(0) as usize,
        pad_char: flags
            .string_or("pad-char", "\t")
            .chars()
            .next()
            .unwrap_or('\t'),
        vertical_bars: flags.bool("vertical-bars"),
    };
    let mut rows = vec![vec![
        "ID".to_string(),
        "Name".into(),
        "Type".into(),
        "Enabled".into(),
    ]];
    for source in &state.sources {
        rows.push(vec![
            source.id.to_string(),
            source.name.clone(),
            "OAuth2".into(),
            source.is_active.to_string(),
        ]);
    }
    out.stdout.push_str(&writer.render(&rows));
    Ok(())
}

fn create_user(
    state: &mut GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    let version = state.version();
    if flags.string("email").is_empty() {
        return Err(Failure::Command("email is not set".into()));
    }
    if flags.is_set("name") && flags.is_set("username") {
        return Err(Failure::Command(
            "cannot set both --name and --username flags".into(),
        ));
    }
    if !flags.is_set("name") && !flags.is_set("username") {
        return Err(Failure::Command(
            "one of --name or --username flags must be set".into(),
        ));
    }
    if flags.is_set("password") && flags.is_set("random-password") {
        return Err(Failure::Command(
            "cannot set both -random-password and -password flags".into(),
        ));
    }
    let username = if flags.is_set("name") {
        out.stderr
            .push_str("--name flag is deprecated. Use --username instead.\n");
        flags.string("name")
    } else {
        flags.string("username")
    };
    env.load(state)?;
    let password = if flags.is_set("password") {
        flags.string("password")
    } else if flags.is_set("random-password") {
        let length = if flags.is_set("random-password-length") {
            flags.int("random-password-length")
        } else {
            12
        };
        let password = alphanumeric(length.max(1) as usize);
        out.stdout
            .push_str(&format!("generated random password is '{password}'\n"));
        password
    } else {
        return Err(Failure::Command(
            "must set either password or random-password flag".into(),
        ));
    };
    // UNCONFIRMED: before 1.23 the `--access-token` token is created with scope `all`.
    let token_scopes = if version.user_create_token_flags() && flags.is_set("access-token-scopes") {
        flags.slice("access-token-scopes")
    } else {
        vec!["all".to_string()]
    };
    let token_scopes = if flags.bool("access-token") {
        let scopes =
            normalize_scopes(&token_scopes).map_err(|e| Failure::Command(e.to_string()))?;
        if !has_permission_scope(&scopes) {
            return Err(Failure::Command(
                "access token does not have any permission".into(),
            ));
        }
        scopes
    } else {
        Vec::new()
    };
    let email = flags.string("email");
    if state.user(&username).is_some() {
        return Err(Failure::Command(format!(
            "CreateUser: user already exists [name: {username}]"
        )));
    }
    if state
        .users
        .iter()
        .any(|u| u.email.eq_ignore_ascii_case(&email))
    {
        return Err(Failure::Command(format!(
            "CreateUser: e-mail already in use [email: {email}]"
        )));
    }
    let must_change = if flags.is_set("must-change-password") {
        flags.bool("must-change-password")
    } else {
        !state.users.is_empty()
    };
    let uid = state.insert_user(
        &username,
        &email,
        &password,
        flags.bool("admin"),
        must_change,
    );
    if let Some(user) = state.users.iter_mut().find(|u| u.id == uid) {
        user.restricted = flags.bool("restricted");
        user.full_name = flags.string("fullname");
    }
    let created = format!("New user '{username}' has been successfully created!\n");
    if version.user_before_token() {
        out.stdout.push_str(&created);
    }
    if flags.bool("access-token") {
        let name = flags.string_or("access-token-name", "gitea-admin");
        let token = state
            .create_token(uid, &name, token_scopes)
            .map_err(|e| Failure::Command(e.to_string()))?;
        out.stdout.push_str(&format!(
            "Access token was successfully created... {}\n",
            token.token
        ));
    }
    if !version.user_before_token() {
        out.stdout.push_str(&created);
    }
    Ok(())
}

fn generate_token(
    state: &mut GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    let version = state.version();
    if !flags.is_set("username") {
        let you = if version.lowercase_username_error() {
            "you"
        } else {
            "You"
        };
        return Err(Failure::Command(format!(
            "{you} must provide a username to generate a token for"
        )));
    }
    env.load(state)?;
    let username = flags.string("username");
    let Some(uid) = state.user(&username).map(|u| u.id) else {
        return Err(Failure::Command(format!(
            "user does not exist [uid: 0, name: {username}]"
        )));
    };
    let name = flags.string_or("token-name", "gitea-admin");
    if state.tokens.iter().any(|t| t.uid == uid && t.name == name) {
        return Err(Failure::Command(
            "access token name has been used already".into(),
        ));
    }
    let default_scopes = if version.cli_scopes_default_all() {
        "all"
    } else {
        ""
    };
    let raw: Vec<String> = flags
        .string_or("scopes", default_scopes)
        .split(',')
        .map(str::to_string)
        .collect();
    let scopes = normalize_scopes(&raw).map_err(|e| Failure::Command(e.to_string()))?;
    if version.cli_scopes_default_all() && !has_permission_scope(&scopes) {
        return Err(Failure::Command(
            "access token does not have any permission".into(),
        ));
    }
    let token = state
        .create_token(uid, &name, scopes)
        .map_err(|e| Failure::Command(e.to_string()))?;
    if flags.bool("raw") {
        out.stdout.push_str(&format!("{}\n", token.token));
    } else {
        out.stdout.push_str(&format!(
            "Access token was successfully created: {}\n",
            token.token
        ));
    }
    Ok(())
}

/// `admin user must-change-password [--all] [--exclude U] [--unset] [USER...]`; the count is
/// of matched users (SQLite's rows-affected).
fn must_change_password(
    state: &mut GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    if flags.args.is_empty() && !flags.is_set("all") {
        return Err(Failure::Command(
            "either usernames or --all must be provided".into(),
        ));
    }
    env.load(state)?;
    let value = !flags.bool("unset");
    let all = flags.bool("all");
    let names: Vec<String> = flags.args.iter().map(|n| n.to_lowercase()).collect();
    let exclude: Vec<String> = flags
        .slice("exclude")
        .iter()
        .map(|n| n.to_lowercase())
        .collect();
    let mut count = 0;
    for user in &mut state.users {
        let name = user.name.to_lowercase();
        if (all || names.contains(&name)) && !exclude.contains(&name) {
            user.must_change_password = value;
            count += 1;
        }
    }
    out.stdout.push_str(&format!(
        "Updated {count} users setting MustChangePassword to {value}\n"
    ));
    Ok(())
}

fn list_users(
    state: &GiteaState,
    env: &Settings,
    flags: &ParsedFlags,
    out: &mut CliOutput,
) -> Result<(), Failure> {
    env.load(state)?;
    let writer = TabWriter {
        min_width: 5,
        tab_width: 0,
        padding: 1,
        pad_char: ' ',
        vertical_bars: false,
    };
    let admins_only = flags.bool("admin");
    let mut rows: Vec<Vec<String>> = Vec::new();
    if admins_only {
        rows.push(
            ["ID", "Username", "Email", "IsActive"]
                .map(String::from)
                .to_vec(),
        );
    } else {
        rows.push(
            ["ID", "Username", "Email", "IsActive", "IsAdmin", "2FA"]
                .map(String::from)
                .to_vec(),
        );
    }
    for user in state.users.iter().filter(|u| !admins_only || u.is_admin) {
        let mut row = vec![
            user.id.to_string(),
            user.name.clone(),
            user.email.clone(),
            user.is_active.to_string(),
        ];
        if !admins_only {
            row.push(user.is_admin.to_string());
            row.push("false".into());
        }
        rows.push(row);
    }
    out.stdout.push_str(&writer.render(&rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::gitea::GiteaConfig;
    use super::super::gitea_version::GiteaVersion;
    use super::*;

    fn gitea(version: GiteaVersion) -> Gitea {
        Gitea::new(GiteaConfig::new(version))
    }

    fn run_as(gitea: &Gitea, uid: u32, argv: &[&str]) -> CliOutput {
        let mut request = CliRequest::new(argv);
        request.uid = uid;
        run(gitea, &request)
    }

    const ADD: &[&str] = &[
        "gitea",
        "admin",
        "auth",
        "add-oauth",
        "--name",
        "Dex",
        "--provider",
        "openidConnect",
        "--key",
        "gitea",
        "--secret",
        "s3cret",
        "--auto-discover-url",
        "https://dex.example.com/.well-known/openid-configuration",
    ];

    #[test]
    fn add_oauth_is_silent_and_a_duplicate_is_a_command_error() {
        let g = gitea(GiteaVersion::Gitea { minor: 24 });
        assert_eq!(run_as(&g, 1000, ADD), CliOutput::default());
        let again = run_as(&g, 1000, ADD);
        assert_eq!(
            again,
            CliOutput::fail(
                "Command error: login source already exists [name: Dex]\n",
                1
            )
        );
        let listed = run_as(&g, 1000, &["gitea", "admin", "auth", "list"]);
        assert_eq!(
            listed.stdout,
            "ID\tName\tType\tEnabled\n1\tDex\tOAuth2\ttrue\n"
        );
        assert_eq!(g.snapshot().counters.auth_sources_added, 1);
    }

    #[test]
    fn bad_discovery_url_and_missing_id() {
        let g = gitea(GiteaVersion::Gitea { minor: 21 });
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "auth",
                "add-oauth",
                "--name",
                "x",
                "--provider",
                "openidConnect",
                "--auto-discover-url",
                "dex",
            ],
        );
        assert_eq!(
            out.stderr,
            "Command error: invalid Auto Discovery URL: dex (this must be a valid URL starting with http:// or https://)\n"
        );
        let out = run_as(
            &g,
            1000,
            &["gitea", "admin", "auth", "update-oauth", "--name", "x"],
        );
        assert_eq!(
            out,
            CliOutput::fail("Command error: --id flag is missing\n", 1)
        );
        let out = run_as(
            &g,
            1000,
            &["gitea", "admin", "auth", "update-oauth", "--id", "7"],
        );
        assert_eq!(
            out,
            CliOutput::fail("Command error: login source does not exist [id: 7]\n", 1)
        );
    }

    #[test]
    fn update_changes_only_set_flags_and_1_24_recomputes_two_factor() {
        for (minor, expected_skip) in [(23, true), (24, false)] {
            let g = gitea(GiteaVersion::Gitea { minor });
            let mut add = ADD.to_vec();
            add.push("--skip-local-2fa");
            assert_eq!(run_as(&g, 1000, &add).exit_code, 0);
            let out = run_as(
                &g,
                1000,
                &[
                    "gitea",
                    "admin",
                    "auth",
                    "update-oauth",
                    "--id",
                    "1",
                    "--secret",
                    "new",
                ],
            );
            assert_eq!(out, CliOutput::default());
            let source = &g.snapshot().auth_sources[0];
            assert_eq!(source.client_id, "gitea");
            assert_eq!(
                source.client_secret_sha256,
                super::super::random::sha256_hex("new")
            );
            assert_eq!(source.skip_local_2fa, expected_skip, "v1.{minor}");
        }
    }

    #[test]
    fn root_is_refused_on_stdout_unless_overridden() {
        let g = gitea(GiteaVersion::Forgejo { major: 11 });
        let out = run_as(&g, 0, &["forgejo", "admin", "auth", "list"]);
        assert_eq!(out.exit_code, 1);
        assert_eq!(out.stderr, "");
        assert!(out.stdout.ends_with(" modules/setting/setting.go:179:loadRunModeFrom() [F] Forgejo is not supposed to be run as root. Sorry. If you need to use privileged TCP ports please instead use setcap and the `cap_net_bind_service` permission\n"), "{}", out.stdout);
        let mut request = CliRequest::new(&["gitea", "admin", "auth", "list"]);
        request.uid = 0;
        request.env.insert(
            "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT".into(),
            "true".into(),
        );
        let out = run(&g, &request);
        assert!(
            out.stdout
                .ends_with("[F] Expect user 'git' but current user is: root\n"),
            "{}",
            out.stdout
        );
    }

    #[test]
    fn unknown_flag_is_urfave_usage_error() {
        let g = gitea(GiteaVersion::Gitea { minor: 22 });
        let out = run_as(&g, 1000, &["gitea", "admin", "auth", "list", "--bogus"]);
        assert_eq!(out.exit_code, 1);
        assert!(
            out.stdout
                .starts_with("Incorrect Usage: flag provided but not defined: -bogus\n\n")
        );
        assert_eq!(out.stderr, "");
    }

    #[test]
    fn user_create_output_order_depends_on_version() {
        for (version, first) in [
            (GiteaVersion::Gitea { minor: 24 }, "New user"),
            (GiteaVersion::Gitea { minor: 23 }, "Access token"),
            (GiteaVersion::Forgejo { major: 9 }, "Access token"),
        ] {
            let g = gitea(version);
            let out = run_as(
                &g,
                1000,
                &[
                    "gitea",
                    "admin",
                    "user",
                    "create",
                    "--username",
                    "bob",
                    "--email",
                    "bob@example.com",
                    "--password",
                    "passw0rd!",
                    "--access-token",
                ],
            );
            assert_eq!(out.exit_code, 0, "{out:?}");
            let lines: Vec<&str> = out.stdout.lines().collect();
            assert!(lines[0].starts_with(first), "{version:?}: {lines:?}");
            assert!(lines.contains(&"New user 'bob' has been successfully created!"));
            let token_line = lines
                .iter()
                .find(|l| l.starts_with("Access token was successfully created... "))
                .unwrap();
            assert_eq!(
                token_line.len(),
                "Access token was successfully created... ".len() + 40
            );
            let dup = run_as(
                &g,
                1000,
                &[
                    "gitea",
                    "admin",
                    "user",
                    "create",
                    "--username",
                    "bob",
                    "--email",
                    "b2@example.com",
                    "--password",
                    "x",
                ],
            );
            assert_eq!(
                dup.stderr,
                "Command error: CreateUser: user already exists [name: bob]\n"
            );
            let dup = run_as(
                &g,
                1000,
                &[
                    "gitea",
                    "admin",
                    "user",
                    "create",
                    "--username",
                    "bob2",
                    "--email",
                    "bob@example.com",
                    "--password",
                    "x",
                ],
            );
            assert_eq!(
                dup.stderr,
                "Command error: CreateUser: e-mail already in use [email: bob@example.com]\n"
            );
        }
        let g = gitea(GiteaVersion::Gitea { minor: 24 });
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "create",
                "--username",
                "x",
                "--email",
                "x@example.com",
            ],
        );
        assert_eq!(
            out.stderr,
            "Command error: must set either password or random-password flag\n"
        );
        let out = run_as(
            &g,
            1000,
            &["gitea", "admin", "user", "create", "--username", "x"],
        );
        assert_eq!(out.stderr, "Command error: email is not set\n");
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "create",
                "--email",
                "x@example.com",
            ],
        );
        assert_eq!(
            out.stderr,
            "Command error: one of --name or --username flags must be set\n"
        );
    }

    #[test]
    fn generate_access_token_rules() {
        let g = gitea(GiteaVersion::Gitea { minor: 24 });
        let base = [
            "gitea",
            "admin",
            "user",
            "generate-access-token",
            "--username",
            "gitea_admin",
            "--token-name",
            "renovate",
        ];
        let out = run_as(
            &g,
            1000,
            &[
                &base[..],
                &["--scopes", "write:repository,read:user", "--raw"],
            ]
            .concat(),
        );
        assert_eq!(out.exit_code, 0);
        assert_eq!(out.stdout.len(), 41);
        let out = run_as(
            &g,
            1000,
            &[&base[..], &["--scopes", "write:repository"]].concat(),
        );
        assert_eq!(
            out,
            CliOutput::fail(
                "Command error: access token name has been used already\n",
                1
            )
        );
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "generate-access-token",
                "-u",
                "gitea_admin",
                "-t",
                "x",
                "--scopes",
                "public-only",
            ],
        );
        assert_eq!(
            out.stderr,
            "Command error: access token does not have any permission\n"
        );
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "generate-access-token",
                "-u",
                "nobody",
            ],
        );
        assert_eq!(
            out.stderr,
            "Command error: user does not exist [uid: 0, name: nobody]\n"
        );
        let out = run_as(
            &g,
            1000,
            &["gitea", "admin", "user", "generate-access-token"],
        );
        assert_eq!(
            out.stderr,
            "Command error: you must provide a username to generate a token for\n"
        );
        let old = gitea(GiteaVersion::Gitea { minor: 21 });
        let out = run_as(
            &old,
            1000,
            &["gitea", "admin", "user", "generate-access-token"],
        );
        assert_eq!(
            out.stderr,
            "Command error: You must provide a username to generate a token for\n"
        );
        let out = run_as(
            &old,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "generate-access-token",
                "-u",
                "gitea_admin",
            ],
        );
        assert!(
            out.stdout
                .starts_with("Access token was successfully created: ")
        );
        assert_eq!(old.snapshot().tokens[0].scopes, Vec::<String>::new());
    }

    #[test]
    fn must_change_password_is_set_on_later_users_and_can_be_unset() {
        let g = gitea(GiteaVersion::Gitea { minor: 24 });
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "create",
                "--username",
                "ci",
                "--email",
                "ci@example.com",
                "--password",
                "pw123456",
            ],
        );
        assert_eq!(out.exit_code, 0);
        assert!(g.snapshot().users[1].must_change_password);
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "must-change-password",
                "--unset",
                "ci",
            ],
        );
        assert_eq!(
            out,
            CliOutput::ok("Updated 1 users setting MustChangePassword to false\n")
        );
        assert!(!g.snapshot().users[1].must_change_password);
        let out = run_as(
            &g,
            1000,
            &["gitea", "admin", "user", "must-change-password"],
        );
        assert_eq!(
            out.stderr,
            "Command error: either usernames or --all must be provided\n"
        );
    }

    #[test]
    fn delete_vertical_bars_and_random_passwords() {
        let g = gitea(GiteaVersion::Gitea { minor: 21 });
        assert_eq!(run_as(&g, 1000, ADD).exit_code, 0);
        let bars = run_as(
            &g,
            1000,
            &["gitea", "admin", "auth", "list", "--vertical-bars"],
        );
        assert_eq!(
            bars.stdout,
            "ID\t|Name\t|Type\t|Enabled\n1\t|Dex\t|OAuth2\t|true\n"
        );
        let out = run_as(&g, 1000, &["gitea", "admin", "auth", "delete"]);
        assert_eq!(
            out,
            CliOutput::fail("Command error: --id flag is missing\n", 1)
        );
        assert_eq!(
            run_as(&g, 1000, &["gitea", "admin", "auth", "delete", "--id", "1"]),
            CliOutput::default()
        );
        let out = run_as(&g, 1000, &["gitea", "admin", "auth", "delete", "--id", "1"]);
        assert_eq!(
            out.stderr,
            "Command error: login source does not exist [id: 1]\n"
        );
        assert_eq!(g.snapshot().counters.auth_sources_deleted, 1);
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "admin",
                "user",
                "create",
                "--name",
                "ann",
                "--email",
                "ann@example.com",
                "--random-password",
                "--random-password-length",
                "20",
            ],
        );
        assert_eq!(
            out.stderr,
            "--name flag is deprecated. Use --username instead.\n"
        );
        let first = out.stdout.lines().next().unwrap();
        let password = first
            .strip_prefix("generated random password is '")
            .and_then(|p| p.strip_suffix('\''))
            .unwrap();
        assert_eq!(password.len(), 20);
        assert_eq!(
            out.stdout.lines().nth(1),
            Some("New user 'ann' has been successfully created!")
        );
    }

    #[test]
    fn user_list_is_space_padded() {
        let g = gitea(GiteaVersion::Gitea { minor: 24 });
        let out = run_as(&g, 1000, &["gitea", "admin", "user", "list"]);
        assert_eq!(
            out.stdout,
            "ID   Username    Email             IsActive IsAdmin 2FA\n1    gitea_admin admin@example.com true     true    false\n"
        );
        let out = run_as(
            &g,
            1000,
            &[
                "gitea",
                "-c",
                "/data/gitea/conf/app.ini",
                "admin",
                "user",
                "list",
                "--admin",
            ],
        );
        assert_eq!(
            out.stdout,
            "ID   Username    Email             IsActive\n1    gitea_admin admin@example.com true\n"
        );
    }
}
