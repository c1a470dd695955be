//! S1 of shared/SCENARIOS.md end to end: the reference phases in `phases/` (shared secrets,
//! Kanidm, Dex, Gitea, Renovate, Woodpecker) against the sandbox's S1 cluster, whose Gitea and
//! Kanidm are faithful emulators and whose Dex is Ready only once its Secrets exist.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bringup_sandbox::emulators::random::sha256_hex;
use bringup_sandbox::emulators::{CliRequest, GiteaSnapshot, InstanceSnapshot, KanidmSnapshot};
use common::{Env, assert_exit, stderr, stdout};

type Secrets = BTreeMap<String, BTreeMap<String, String>>;

/// Every Secret S1 makes in global-secrets, with exactly these keys.
const S1_SECRETS: &[(&str, &[&str])] = &[
    ("gitea.admin", &["password"]),
    ("dex.gitea", &["client_secret"]),
    ("dex.grafana", &["client_secret"]),
    ("woodpecker.agent", &["secret"]),
    ("registry.admin", &["password"]),
    ("kanidm.dex", &["client_id", "client_secret"]),
    ("gitea.renovate", &["token"]),
    ("gitea.woodpecker", &["client_id", "client_secret"]),
];

/// A key of a synced Secret and where it comes from: (key, global secret, its key).
type SyncedKey = (&'static str, &'static str, &'static str);

/// The ExternalSecrets of the cluster file: target namespace and Secret, and its keys.
const SYNCED: &[(&str, &str, &[SyncedKey])] = &[
    (
        "dex",
        "dex-secrets",
        &[
            ("KANIDM_CLIENT_ID", "kanidm.dex", "client_id"),
            ("KANIDM_CLIENT_SECRET", "kanidm.dex", "client_secret"),
            ("GITEA_CLIENT_SECRET", "dex.gitea", "client_secret"),
            ("GRAFANA_CLIENT_SECRET", "dex.grafana", "client_secret"),
        ],
    ),
    (
        "woodpecker",
        "woodpecker-secret",
        &[
            ("WOODPECKER_AGENT_SECRET", "woodpecker.agent", "secret"),
            ("WOODPECKER_GITEA_CLIENT", "gitea.woodpecker", "client_id"),
            (
                "WOODPECKER_GITEA_SECRET",
                "gitea.woodpecker",
                "client_secret",
            ),
        ],
    ),
    (
        "renovate",
        "renovate-secret",
        &[("RENOVATE_TOKEN", "gitea.renovate", "token")],
    ),
];

fn gitea(env: &Env) -> GiteaSnapshot {
    match env
        .sandbox
        .emulators()
        .expect("emulators")
        .snapshot("gitea")
    {
        Some(InstanceSnapshot::Gitea(snapshot)) => snapshot,
        other => panic!("no gitea instance: {other:?}"),
    }
}

fn kanidm(env: &Env) -> KanidmSnapshot {
    match env
        .sandbox
        .emulators()
        .expect("emulators")
        .snapshot("kanidm")
    {
        Some(InstanceSnapshot::Kanidm(snapshot)) => snapshot,
        other => panic!("no kanidm instance: {other:?}"),
    }
}

/// The emulators' state without what a read leaves behind (logins are sessions, not changes).
fn emulator_state(env: &Env) -> (GiteaSnapshot, KanidmSnapshot) {
    let mut kanidm = kanidm(env);
    kanidm.counters.logins = 0;
    kanidm.counters.failed_logins = 0;
    (gitea(env), kanidm)
}

fn global_secrets(env: &Env) -> Secrets {
    S1_SECRETS
        .iter()
        .filter_map(|(name, _)| {
            env.secret("global-secrets", name)
                .map(|data| (name.to_string(), data))
        })
        .collect()
}

fn run(env: &Env) -> std::process::Output {
    let output = env.run(&["run", "--yes"]);
    assert_exit(&output, 0);
    output
}

/// Runs the emulated Gitea CLI as the git user, as `su git -c` would in the pod.
fn gitea_cli(env: &Env, argv: &[&str]) -> (i32, String) {
    let out = env
        .sandbox
        .emulators()
        .expect("emulators")
        .run_cli("gitea", &CliRequest::new(argv))
        .expect("gitea instance");
    (out.exit_code, out.stdout)
}

/// A request the token authorises (read:user), straight at the emulator's API.
fn token_accepted(env: &Env, token: &str) -> bool {
    let addr = env
        .sandbox
        .emulators()
        .expect("emulators")
        .http_addr("gitea")
        .expect("gitea API");
    let status = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: token {token}"))
        .arg(format!("http://{addr}/api/v1/user/applications/oauth2"))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&status.stdout) == "200"
}

/// Polls until `check` holds (ExternalSecrets sync on their own clock).
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Everything S1 must end with, and the exactly-one invariants.
#[track_caller]
fn assert_end_state(env: &Env) {
    assert_end_state_with_recoveries(env, 1..=1);
}

/// The end state, with idm_admin recovered a number of times in `recoveries` (a run killed
/// between a recovery and storing its password must recover again: nothing else knows it).
#[track_caller]
fn assert_end_state_with_recoveries(env: &Env, recoveries: std::ops::RangeInclusive<u32>) {
    let secrets = global_secrets(env);
    for (name, keys) in S1_SECRETS {
        let data = secrets
            .get(*name)
            .unwrap_or_else(|| panic!("Secret global-secrets/{name} missing"));
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            *keys,
            "global-secrets/{name} has exactly its keys"
        );
        assert!(data.values().all(|v| !v.is_empty()), "{name}: empty value");
    }
    let admin = &secrets["gitea.admin"]["password"];
    assert_eq!(admin.chars().count(), 32);
    assert!(admin.chars().any(|c| !c.is_ascii_alphanumeric()), "symbols");
    for (name, key) in [
        ("dex.gitea", "client_secret"),
        ("dex.grafana", "client_secret"),
        ("woodpecker.agent", "secret"),
        ("registry.admin", "password"),
    ] {
        assert_eq!(secrets[name][key].chars().count(), 32, "{name}/{key}");
    }

    // Kanidm: recovered once, the stored password logs in, the dex client as S1 says.
    let kanidm = kanidm(env);
    let recovered = kanidm
        .counters
        .recover_account
        .get("idm_admin")
        .copied()
        .unwrap_or_default();
    assert!(
        recoveries.contains(&recovered),
        "idm_admin recovered {recovered} times"
    );
    let stored = env
        .secret("kanidm", "kanidm-idm-admin")
        .expect("kanidm/kanidm-idm-admin");
    let idm_admin = kanidm
        .accounts
        .iter()
        .find(|a| a.name == "idm_admin")
        .unwrap();
    assert_eq!(idm_admin.password_sha256, sha256_hex(&stored["password"]));
    assert_eq!(
        kanidm.groups.iter().filter(|g| g.name == "editor").count(),
        1
    );
    let dex: Vec<_> = kanidm
        .oauth2_clients
        .iter()
        .filter(|c| c.name == "dex")
        .collect();
    assert_eq!(dex.len(), 1);
    let dex = dex[0];
    assert_eq!(dex.landing, "https://dex.example.com");
    assert_eq!(dex.redirect_urls, ["https://dex.example.com/callback"]);
    assert!(dex.pkce_disabled);
    assert_eq!(
        dex.scope_maps.get("editor").map(Vec::as_slice),
        Some(&["email", "groups", "openid", "profile"].map(String::from)[..])
    );
    assert_eq!(secrets["kanidm.dex"]["client_id"], "dex");
    assert_eq!(
        dex.basic_secret_sha256.as_deref(),
        Some(sha256_hex(&secrets["kanidm.dex"]["client_secret"]).as_str())
    );

    // Gitea: one Dex source with the dex.gitea secret, one renovate token, one woodpecker app.
    let gitea = gitea(env);
    let sources: Vec<_> = gitea
        .auth_sources
        .iter()
        .filter(|s| s.name.eq_ignore_ascii_case("dex"))
        .collect();
    assert_eq!(sources.len(), 1, "{:?}", gitea.auth_sources);
    assert_eq!(sources[0].name, "Dex");
    assert_eq!(sources[0].provider, "openidConnect");
    assert_eq!(sources[0].client_id, "gitea");
    assert_eq!(
        sources[0].client_secret_sha256,
        sha256_hex(&secrets["dex.gitea"]["client_secret"])
    );
    assert_eq!(
        sources[0].auto_discover_url,
        "https://dex.example.com/.well-known/openid-configuration"
    );
    let (code, list) = gitea_cli(env, &["gitea", "admin", "auth", "list"]);
    assert_eq!(code, 0);
    // Columns are padded with one or more tabs.
    let dex_lines: Vec<&str> = list
        .lines()
        .filter(|line| line.split('\t').filter(|cell| !cell.is_empty()).nth(1) == Some("Dex"))
        .collect();
    assert_eq!(
        dex_lines.len(),
        1,
        "`gitea admin auth list` shows one Dex:\n{list}"
    );
    let tokens: Vec<_> = gitea
        .tokens
        .iter()
        .filter(|t| t.name == "renovate")
        .collect();
    assert_eq!(tokens.len(), 1, "{:?}", gitea.tokens);
    let token = &secrets["gitea.renovate"]["token"];
    assert_eq!(tokens[0].token_sha256, sha256_hex(token));
    assert_eq!(tokens[0].owner, "gitea_admin");
    let mut scopes = tokens[0].scopes.clone();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "read:misc",
            "read:organization",
            "read:user",
            "write:issue",
            "write:repository"
        ]
    );
    assert!(token_accepted(env, token), "Gitea accepts the stored token");
    assert!(!token_accepted(env, &"0".repeat(40)), "and not any token");
    let apps: Vec<_> = gitea
        .oauth2_apps
        .iter()
        .filter(|a| a.name == "woodpecker")
        .collect();
    assert_eq!(apps.len(), 1, "{:?}", gitea.oauth2_apps);
    assert_eq!(apps[0].client_id, secrets["gitea.woodpecker"]["client_id"]);
    assert_eq!(
        apps[0].client_secret_sha256,
        sha256_hex(&secrets["gitea.woodpecker"]["client_secret"])
    );
    assert!(apps[0].confidential_client);
    assert_eq!(apps[0].redirect_uris, ["https://ci.example.com/authorize"]);

    // Dex Ready, and the ExternalSecrets synced from global-secrets.
    let dex_pod = env
        .object("v1", "Pod", Some("dex"), "dex-7d9c5b8f6-q8w2n")
        .expect("dex pod");
    let ready = dex_pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "Dex is Ready");
    for (namespace, name, keys) in SYNCED {
        eventually(&format!("ExternalSecret {namespace}/{name} synced"), || {
            let Some(target) = env.secret(namespace, name) else {
                return false;
            };
            keys.iter().all(|(key, global, global_key)| {
                target.get(*key) == Some(&secrets[*global][*global_key])
            })
        });
    }
}

/// Writes other than exec/port-forward connects and the run's own Lease.
fn cluster_writes(env: &Env, since: usize) -> Vec<String> {
    env.audit()
        .into_iter()
        .skip(since)
        .filter(|e| e.is_mutating() && e.subresource.is_none())
        .filter(|e| e.resource.as_deref() != Some("leases"))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect()
}

#[test]
fn one_run_from_an_empty_sandbox_brings_up_s1_and_three_more_change_nothing() {
    let env = Env::s1("s1");
    let plan = env.run(&["plan"]);
    assert_exit(&plan, 0);
    let table = stdout(&plan);
    let steps: Vec<&str> = table
        .lines()
        .filter(|line| line.contains('/') && !line.contains("bringup plan"))
        .collect();
    assert_eq!(steps.len(), 19, "every S1 step is listed:\n{table}");
    assert!(
        steps
            .iter()
            .all(|line| line.split_whitespace().nth(3) == Some("pending")),
        "every step is pending before the first run:\n{table}"
    );
    for id in [
        "kanidm/idm-admin-password",
        "gitea/dex-source",
        "renovate/token",
        "woodpecker/oauth-app",
        "dex/ready",
    ] {
        assert!(table.contains(id), "{id} in the plan:\n{table}");
    }
    assert!(
        cluster_writes(&env, 0).is_empty(),
        "plan changes nothing: {:?}",
        cluster_writes(&env, 0)
    );
    let output = run(&env);
    assert_end_state(&env);
    let _ = (stdout(&output), stderr(&output));

    let secrets = global_secrets(&env);
    let idm_admin = env.secret("kanidm", "kanidm-idm-admin");
    let emulators = emulator_state(&env);
    for rerun in 1..=3 {
        let before = env.audit().len();
        run(&env);
        assert_eq!(
            cluster_writes(&env, before),
            Vec::<String>::new(),
            "rerun {rerun} writes nothing but its Lease"
        );
        assert_eq!(
            emulator_state(&env),
            emulators,
            "rerun {rerun}: emulators unchanged"
        );
        assert_eq!(global_secrets(&env), secrets, "rerun {rerun}");
        assert_eq!(env.secret("kanidm", "kanidm-idm-admin"), idm_admin);
    }
    assert_end_state(&env);
}

#[test]
fn a_lost_renovate_or_woodpecker_secret_replaces_its_token_or_app_once() {
    let env = Env::s1("s1");
    run(&env);
    let before = gitea(&env);
    let old_token = env.secret("global-secrets", "gitea.renovate").unwrap()["token"].clone();
    let old_app = env.secret("global-secrets", "gitea.woodpecker").unwrap();
    let others = |secrets: &Secrets| {
        let mut kept = secrets.clone();
        kept.remove("gitea.renovate");
        kept.remove("gitea.woodpecker");
        kept
    };
    let untouched = others(&global_secrets(&env));

    for name in ["gitea.renovate", "gitea.woodpecker"] {
        env.sandbox
            .state()
            .delete_object("v1", "Secret", Some("global-secrets"), name)
            .expect("delete");
    }
    run(&env);
    assert_end_state(&env);
    let after = gitea(&env);

    let new_token = env.secret("global-secrets", "gitea.renovate").unwrap()["token"].clone();
    assert_ne!(new_token, old_token);
    assert!(!token_accepted(&env, &old_token), "the old token is gone");
    assert_eq!(
        after.counters.tokens_created,
        before.counters.tokens_created + 1
    );
    assert_eq!(
        after.counters.tokens_deleted,
        before.counters.tokens_deleted + 1
    );

    let new_app = env.secret("global-secrets", "gitea.woodpecker").unwrap();
    assert_ne!(new_app["client_id"], old_app["client_id"]);
    assert!(
        !after
            .oauth2_apps
            .iter()
            .any(|a| a.client_id == old_app["client_id"])
    );
    assert_eq!(
        after.counters.oauth2_apps_created,
        before.counters.oauth2_apps_created + 1
    );
    assert_eq!(
        after.counters.oauth2_apps_deleted,
        before.counters.oauth2_apps_deleted + 1
    );
    assert_eq!(after.counters.oauth2_apps_patched, 0, "never patched");

    // Nothing else moved: the other Secrets, Kanidm, the Dex source.
    assert_eq!(others(&global_secrets(&env)), untouched);
    assert_eq!(after.auth_sources, before.auth_sources);
    assert_eq!(after.counters.auth_sources_updated, 0);
    assert_eq!(
        kanidm(&env).counters.recover_account.get("idm_admin"),
        Some(&1)
    );
}

#[test]
fn the_same_phases_bring_up_s1_with_kanidm_1_3() {
    let env = Env::s1("s1-kanidm13");
    assert!(
        kanidm(&env).version.starts_with("1.3"),
        "{}",
        kanidm(&env).version
    );
    run(&env);
    assert_end_state(&env);
    let emulators = emulator_state(&env);
    run(&env);
    assert_eq!(emulator_state(&env), emulators);
}

#[test]
fn a_stored_kanidm_password_that_stopped_working_is_recovered_once_more() {
    let env = Env::s1("s1");
    run(&env);
    // Someone recovered idm_admin by hand: the stored password no longer logs in.
    let mut stale = env.secret("kanidm", "kanidm-idm-admin").unwrap();
    stale.insert("password".into(), "not-the-password-anymore".into());
    env.sandbox
        .state()
        .put_object(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kanidm-idm-admin", "namespace": "kanidm"},
            "stringData": stale,
        }))
        .expect("put");
    let clients = kanidm(&env).oauth2_clients;
    run(&env);
    assert_eq!(
        kanidm(&env).counters.recover_account.get("idm_admin"),
        Some(&2)
    );
    assert_eq!(
        kanidm(&env).oauth2_clients,
        clients,
        "the dex client is untouched"
    );
    assert_end_state_but_recoveries(&env);
}

/// `assert_end_state` for a Kanidm whose admin was recovered more than once on purpose.
#[track_caller]
fn assert_end_state_but_recoveries(env: &Env) {
    let stored = env.secret("kanidm", "kanidm-idm-admin").unwrap();
    let kanidm = kanidm(env);
    let idm_admin = kanidm
        .accounts
        .iter()
        .find(|a| a.name == "idm_admin")
        .unwrap();
    assert_eq!(idm_admin.password_sha256, sha256_hex(&stored["password"]));
}

/// Every secret value bringup handles in S1: what it generated, stored, and logged in with.
fn secret_values(env: &Env) -> Vec<String> {
    let mut values: Vec<String> = global_secrets(env)
        .into_values()
        .flat_map(BTreeMap::into_values)
        .filter(|v| v != "dex")
        .collect();
    values.extend(
        env.secret("kanidm", "kanidm-idm-admin")
            .unwrap()
            .into_values(),
    );
    values.push(env.secret("gitea", "gitea-admin-secret").unwrap()["password"].clone());
    // Gitea shows a token's last eight characters on purpose; the rest must never show.
    values.retain(|v| v.len() >= 8);
    values
}

#[test]
fn no_secret_value_in_any_exec_command_line_url_output_checkpoint_or_log() {
    let env = Env::s1("s1");
    let mut texts = Vec::new();
    for args in [
        &["run", "--yes", "-vvv"][..],
        &["run", "--yes", "-vv", "-o", "json"],
        &["plan", "--probe", "-vvv"],
        &["status"],
    ] {
        let output = env.run(args);
        assert_exit(&output, 0);
        texts.push(format!("{args:?} stdout:\n{}", stdout(&output)));
        texts.push(format!("{args:?} stderr:\n{}", stderr(&output)));
    }
    // A lost Secret replaces a token: the old and the new value are both watched.
    let mut values = secret_values(&env);
    env.sandbox
        .state()
        .delete_object("v1", "Secret", Some("global-secrets"), "gitea.renovate")
        .unwrap();
    let output = env.run(&["run", "--yes", "-vvv"]);
    assert_exit(&output, 0);
    texts.push(format!("rerun stdout:\n{}", stdout(&output)));
    texts.push(format!("rerun stderr:\n{}", stderr(&output)));
    texts.push(format!("checkpoint:\n{}", env.checkpoint_text()));
    let audit = env.audit();
    assert!(
        audit.iter().any(|e| e.command.is_some()),
        "execs are audited"
    );
    for entry in &audit {
        texts.push(format!(
            "audit {} {}?{} {:?}",
            entry.method, entry.path, entry.query, entry.command
        ));
    }
    values.extend(secret_values(&env));
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 12, "11 values, and the replaced token");
    for text in &texts {
        for value in &values {
            let lines: Vec<&str> = text.lines().collect();
            let leaks: Vec<String> = lines
                .iter()
                .enumerate()
                .filter(|(_, line)| line.contains(value.as_str()))
                .map(|(at, _)| {
                    lines[at.saturating_sub(2)..=at]
                        .join("\n")
                        .replace(value.as_str(), "<<<LEAK>>>")
                })
                .collect();
            assert!(
                leaks.is_empty(),
                "a secret value leaked in {}:\n{}",
                text.lines().next().unwrap_or_default(),
                leaks.join("\n")
            );
        }
    }
    // The exec command lines are there to be scanned: the Kanidm and Gitea CLIs ran.
    let commands: Vec<String> = audit
        .iter()
        .filter_map(|e| e.command.clone())
        .map(|c| c.join(" "))
        .collect();
    assert!(commands.iter().any(|c| c.contains("recover-account")));
    assert!(commands.iter().any(|c| c.contains("gitea admin auth")));
}

/// Runs until one run succeeds: a killed run's Lease expires after its duration (1s here).
fn run_to_completion(env: &Env, tries: usize) {
    let mut last = None;
    for _ in 0..tries {
        let output = env
            .bringup()
            .args(["run", "--yes"])
            .env("BRINGUP_LOCK_DURATION", "1s")
            .output()
            .unwrap();
        match output.status.code() {
            Some(0) => return,
            Some(3) => std::thread::sleep(Duration::from_millis(300)),
            _ => {}
        }
        last = Some(output);
    }
    panic!(
        "no run succeeded in {tries} tries; last:\n{}",
        stderr(&last.unwrap())
    );
}

/// Every Secret value bringup writes in S1, by `ns/name/key`.
fn written_values(env: &Env) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for (name, data) in global_secrets(env) {
        for (key, value) in data {
            values.insert(format!("global-secrets/{name}/{key}"), value);
        }
    }
    for (key, value) in env.secret("kanidm", "kanidm-idm-admin").unwrap_or_default() {
        values.insert(format!("kanidm/kanidm-idm-admin/{key}"), value);
    }
    values
}

#[test]
fn killed_at_20_random_moments_each_rerun_ends_in_the_same_state() {
    let reference = Env::s1("s1");
    let started = Instant::now();
    run(&reference);
    let full_run = started.elapsed();
    assert_end_state(&reference);

    // A fixed-seed LCG: random moments, the same ones on every machine.
    let mut seed: u64 = 0x5eed_0005;
    let moments: Vec<Duration> = (0..20)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let fraction = (seed >> 33) as f64 / (1u64 << 31) as f64;
            full_run.mul_f64(fraction * 1.1)
        })
        .collect();
    // Two sandboxes at a time: most of an attempt is waiting for the killed run's Lease.
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let moments = &moments;
            scope.spawn(move || {
                for (attempt, moment) in moments.iter().enumerate().skip(worker).step_by(2) {
                    kill_and_rerun(attempt, *moment, full_run);
                }
            });
        }
    });
}

/// One attempt: a run killed after `moment`, then runs until one succeeds.
fn kill_and_rerun(attempt: usize, moment: Duration, full_run: Duration) {
    let env = Env::s1("s1");
    let mut child = env
        .bringup()
        .args(["run", "--yes"])
        .env("BRINGUP_LOCK_DURATION", "1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(moment);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let written = written_values(&env);

    run_to_completion(&env, 10);
    let context = format!("attempt {attempt}, killed after {moment:?} of {full_run:?}");
    assert_end_state_with_recoveries(&env, 1..=2);
    let now = written_values(&env);
    // Once written, no value changes, the stored Kanidm password included: a recovery
    // happens only while no working password is stored.
    for (key, value) in &written {
        assert_eq!(
            now.get(key),
            Some(value),
            "{context}: {key} changed once written"
        );
    }
    let state = emulator_state(&env);
    run(&env);
    assert_eq!(
        emulator_state(&env),
        state,
        "{context}: the run after changes nothing"
    );
    assert_eq!(written_values(&env), now, "{context}");
}

#[test]
fn after_the_old_script_the_source_is_updated_and_stale_tokens_and_apps_replaced() {
    let env = Env::s1("s1");
    // What the seed's script leaves: a Dex source with another secret, a renovate token
    // nobody can read any more, and two woodpecker apps from two runs.
    let (code, _) = gitea_cli(
        &env,
        &[
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
            "old-secret-from-the-script",
            "--auto-discover-url",
            "https://dex.example.com/.well-known/openid-configuration",
        ],
    );
    assert_eq!(code, 0);
    let (code, _) = gitea_cli(
        &env,
        &[
            "gitea",
            "admin",
            "user",
            "generate-access-token",
            "-u",
            "gitea_admin",
            "-t",
            "renovate",
            "--scopes",
            "write:repository",
        ],
    );
    assert_eq!(code, 0);
    let addr = env.sandbox.emulators().unwrap().http_addr("gitea").unwrap();
    for _ in 0..2 {
        let status = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "gitea_admin:S1-sandbox-admin!pw#2026"])
            .args(["-H", "Content-Type: application/json", "-d"])
            .arg(r#"{"name":"woodpecker","redirect_uris":["https://ci.example.com/authorize"],"confidential_client":true}"#)
            .arg(format!("http://{addr}/api/v1/user/applications/oauth2"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "201");
    }
    let before = gitea(&env);
    assert_eq!(before.oauth2_apps.len(), 2);

    run(&env);
    assert_end_state(&env);
    let after = gitea(&env);
    assert_eq!(
        after.counters.auth_sources_added, before.counters.auth_sources_added,
        "no second source"
    );
    assert_eq!(
        after.counters.auth_sources_updated, 1,
        "the existing source was updated"
    );
    assert_eq!(after.auth_sources[0].id, before.auth_sources[0].id);
    assert_eq!(after.counters.tokens_deleted, 1);
    assert_eq!(after.counters.oauth2_apps_deleted, 2);
    assert_eq!(after.counters.oauth2_apps_patched, 0);

    let state = emulator_state(&env);
    run(&env);
    assert_eq!(emulator_state(&env), state);
}

#[test]
fn the_same_phases_bring_up_s1_on_a_rootless_forgejo_with_one_value_changed() {
    let env = Env::s1_edited("s1", |text| {
        let forgejo = text
            .replace(
                "version: { flavor: gitea, minor: 24 }",
                "version: { flavor: forgejo, major: 11 }",
            )
            .replace(
                "exec: { emulator_instance: { instance: gitea, uid: 0 } }",
                "exec: { emulator_instance: { instance: gitea, uid: 1000 } }",
            );
        assert_ne!(forgejo, text, "the cluster file still has these lines");
        forgejo
    });
    assert!(
        gitea(&env).version.contains("gitea-"),
        "{}",
        gitea(&env).version
    );
    // As for Gitea's rootful image, `su git -c` is refused in a rootless container.
    let refused = env.run(&["run", "--yes"]);
    assert_exit(&refused, 1);
    assert!(
        stdout(&refused).contains("gitea/dex-source"),
        "{}",
        stdout(&refused)
    );
    let output = env.run(&["run", "--yes", "--set", "gitea.cli_user="]);
    assert_exit(&output, 0);
    assert_end_state(&env);
    let state = emulator_state(&env);
    let again = env.run(&["run", "--yes", "--set", "gitea.cli_user="]);
    assert_exit(&again, 0);
    assert_eq!(emulator_state(&env), state);
}
