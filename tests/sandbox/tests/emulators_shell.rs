//! Emulated programs run by a real `sh` through the `sandbox-emu` symlinks, as in a pod exec.

use std::process::Stdio;

use bringup_sandbox::emulators::random::sha256_hex;
use bringup_sandbox::emulators::{
    EmulatorService, GiteaConfig, GiteaVersion, InstanceConfig, InstanceSnapshot, KanidmConfig,
    KanidmVersion, ProductConfig,
};
use tokio::io::AsyncWriteExt;

struct Pod {
    service: EmulatorService,
    bin: tempfile::TempDir,
    home: tempfile::TempDir,
}

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

async fn pods(configs: Vec<InstanceConfig>) -> Pod {
    let service = EmulatorService::start(configs)
        .await
        .expect("emulator starts");
    let bin = tempfile::tempdir().unwrap();
    for name in ["gitea", "forgejo", "kanidm", "kanidmd", "su"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sandbox-emu"), bin.path().join(name))
            .unwrap();
    }
    Pod {
        service,
        bin,
        home: tempfile::tempdir().unwrap(),
    }
}

fn gitea(version: GiteaVersion) -> InstanceConfig {
    InstanceConfig {
        name: "gitea".into(),
        product: ProductConfig::Gitea(GiteaConfig::new(version)),
    }
}

fn kanidm(version: KanidmVersion) -> InstanceConfig {
    InstanceConfig {
        name: "kanidm".into(),
        product: ProductConfig::Kanidm(KanidmConfig::new(version)),
    }
}

impl Pod {
    async fn sh(&self, instance: &str, uid: u32, script: &str, stdin: &str) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", path)
            .env("HOME", self.home.path())
            .env("BRINGUP_EMULATOR_URL", self.service.cli_url())
            .env("BRINGUP_EMULATOR_INSTANCE", instance)
            .env("BRINGUP_EMULATOR_UID", uid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = child.wait_with_output().await.unwrap();
        Run {
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    fn gitea_snapshot(&self) -> bringup_sandbox::emulators::GiteaSnapshot {
        match self.service.snapshot("gitea") {
            Some(InstanceSnapshot::Gitea(snapshot)) => snapshot,
            other => panic!("no gitea snapshot: {other:?}"),
        }
    }
}

const ADD_DEX: &str = "gitea admin auth add-oauth --name Dex --provider openidConnect --key gitea \
     --secret \"$(cat)\" --auto-discover-url https://dex.example.com/.well-known/openid-configuration --scopes openid,email";

#[tokio::test(flavor = "multi_thread")]
async fn gitea_login_source_is_added_once_with_the_secret_on_stdin() {
    let pod = pods(vec![gitea(GiteaVersion::Gitea { minor: 24 })]).await;
    let absent = pod
        .sh("gitea", 1000, "gitea admin auth list | grep -qw Dex", "")
        .await;
    assert_eq!(absent.code, 1);
    let added = pod.sh("gitea", 1000, ADD_DEX, "dex-client-secret").await;
    assert_eq!(
        (added.code, added.stdout.as_str(), added.stderr.as_str()),
        (0, "", "")
    );
    let present = pod
        .sh("gitea", 1000, "gitea admin auth list | grep -qw Dex", "")
        .await;
    assert_eq!(present.code, 0);
    let again = pod.sh("gitea", 1000, ADD_DEX, "dex-client-secret").await;
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr,
        "Command error: login source already exists [name: Dex]\n"
    );
    assert_eq!(again.stdout, "");
    let listed = pod.sh("gitea", 1000, "gitea admin auth list", "").await;
    assert_eq!(
        listed.stdout,
        "ID\tName\tType\tEnabled\n1\tDex\tOAuth2\ttrue\n"
    );
    let snapshot = pod.gitea_snapshot();
    assert_eq!(snapshot.auth_sources.len(), 1);
    assert_eq!(
        snapshot.auth_sources[0].client_secret_sha256,
        sha256_hex("dex-client-secret")
    );
    assert_eq!(snapshot.auth_sources[0].scopes, ["openid", "email"]);
    assert_eq!(snapshot.counters.auth_sources_added, 1);
    let id = pod
        .sh(
            "gitea",
            1000,
            "gitea admin auth list | awk -F'\\t+' '$2==\"Dex\"{print $1}'",
            "",
        )
        .await;
    assert_eq!(id.stdout, "1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_refuses_root_and_su_git_works() {
    let pod = pods(vec![gitea(GiteaVersion::Gitea { minor: 24 })]).await;
    let root = pod.sh("gitea", 0, "gitea admin auth list", "").await;
    assert_eq!(root.code, 1);
    assert_eq!(root.stderr, "");
    assert!(
        root.stdout.ends_with(" modules/setting/setting.go:179:loadRunModeFrom() [F] Gitea is not supposed to be run as root. Sorry. If you need to use privileged TCP ports please instead use setcap and the `cap_net_bind_service` permission\n"),
        "{}",
        root.stdout
    );
    let as_git = pod
        .sh("gitea", 0, "su git -c 'gitea admin auth list'", "")
        .await;
    assert_eq!(
        (as_git.code, as_git.stdout.as_str()),
        (0, "ID\tName\tType\tEnabled\n")
    );
    let not_root = pod
        .sh("gitea", 1000, "su git -c 'gitea admin auth list'", "")
        .await;
    assert_eq!(
        (not_root.code, not_root.stderr.as_str()),
        (1, "su: must be suid to work properly\n")
    );
    let secret = pod
        .sh(
            "gitea",
            0,
            &format!("su git -c '{}'", ADD_DEX.replace('\'', "'\\''")),
            "via-su",
        )
        .await;
    assert_eq!(secret.code, 0, "{}", secret.stderr);
    assert_eq!(
        pod.gitea_snapshot().auth_sources[0].client_secret_sha256,
        sha256_hex("via-su")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forgejo_alias_and_token_generation() {
    let pod = pods(vec![gitea(GiteaVersion::Forgejo { major: 11 })]).await;
    let token = pod
        .sh("gitea", 1000, "forgejo admin user generate-access-token -u gitea_admin -t renovate --scopes write:repository --raw", "")
        .await;
    assert_eq!(token.code, 0);
    let value = token.stdout.trim_end();
    assert_eq!(value.len(), 40);
    let gitea = pod.service.gitea("gitea").unwrap();
    assert!(gitea.token_is_valid("gitea_admin", value));
    let again = pod
        .sh(
            "gitea",
            1000,
            "gitea admin user generate-access-token -u gitea_admin -t renovate --scopes all",
            "",
        )
        .await;
    assert_eq!(
        (again.code, again.stderr.as_str()),
        (
            1,
            "Command error: access token name has been used already\n"
        )
    );
    let root = pod.sh("gitea", 0, "forgejo admin auth list", "").await;
    assert!(
        root.stdout
            .contains("[F] Forgejo is not supposed to be run as root.")
    );
    let elsewhere = pod.sh("gitea", 1000, "kanidm login", "").await;
    assert_eq!(
        (elsewhere.code, elsewhere.stderr.as_str()),
        (127, "sh: kanidm: not found\n")
    );
}

fn password_from_json(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["password"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no JSON line in {stdout}"))
}

const LOGIN: &str = "kanidm login -H https://idm.example.com -D idm_admin";

#[tokio::test(flavor = "multi_thread")]
async fn kanidm_recovery_login_oauth2_and_groups_on_1_7() {
    let pod = pods(vec![kanidm(KanidmVersion::V1_7)]).await;
    let first = pod
        .sh(
            "kanidm",
            1000,
            "kanidmd recover-account -o json idm_admin",
            "",
        )
        .await;
    let second = pod
        .sh(
            "kanidm",
            1000,
            "kanidmd recover-account -o json idm_admin",
            "",
        )
        .await;
    assert_eq!((first.code, second.code), (0, 0));
    assert!(first.stdout.starts_with(
        "00000000-0000-0000-0000-000000000000 INFO     ｉ [info]: Running account recovery ...\n"
    ));
    let (old, new) = (
        password_from_json(&first.stdout),
        password_from_json(&second.stdout),
    );
    assert_ne!(old, new);
    let denied = pod
        .sh(
            "kanidm",
            1000,
            &format!("KANIDM_PASSWORD=\"$(cat)\" {LOGIN}"),
            &old,
        )
        .await;
    assert_eq!(denied.code, 1);
    let ok = pod
        .sh(
            "kanidm",
            1000,
            &format!("KANIDM_PASSWORD=\"$(cat)\" {LOGIN}"),
            &new,
        )
        .await;
    assert_eq!(
        (ok.code, ok.stdout.as_str()),
        (0, "Login Success for idm_admin@idm.example.com\n")
    );

    let create = "kanidm system oauth2 create dex Dex https://dex.example.com -H https://idm.example.com -D idm_admin";
    let created = pod.sh("kanidm", 1000, create, "").await;
    assert_eq!(
        (
            created.code,
            created.stdout.as_str(),
            created.stderr.as_str()
        ),
        (0, "Success\n", "")
    );
    let duplicate = pod.sh("kanidm", 1000, create, "").await;
    assert_eq!(duplicate.code, 1);
    assert_eq!(
        duplicate.stderr.lines().nth(1),
        Some("Internal Server Error in response: Plugin(AttrUnique(\"duplicate value detected\"))")
    );
    for _ in 0..2 {
        let group = pod
            .sh(
                "kanidm",
                1000,
                "kanidm group create dex_users -H https://idm.example.com -D idm_admin",
                "",
            )
            .await;
        assert_eq!(group.code, 0, "{}", group.stderr);
    }
    let secret = pod
        .sh("kanidm", 1000, "kanidm system oauth2 show-basic-secret dex -o json -H https://idm.example.com -D idm_admin", "")
        .await;
    assert_eq!(secret.stderr, "Success\n");
    let value: serde_json::Value = serde_json::from_str(&secret.stdout).unwrap();
    let kanidm = pod.service.kanidm("kanidm").unwrap();
    assert!(kanidm.basic_secret_is("dex", value["secret"].as_str().unwrap()));
    let snapshot = kanidm.snapshot();
    assert_eq!(snapshot.counters.recover_account["idm_admin"], 2);
    assert_eq!(snapshot.counters.groups_created, 1);
    assert_eq!(snapshot.counters.oauth2_created, 1);
    let reset_old = pod
        .sh(
            "kanidm",
            1000,
            "kanidm system oauth2 reset-secrets dex -D idm_admin -H https://idm.example.com",
            "",
        )
        .await;
    assert_eq!(reset_old.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn kanidm_1_3_syntax_and_texts() {
    let pod = pods(vec![kanidm(KanidmVersion::V1_3)]).await;
    let recovered = pod
        .sh("kanidm", 1000, "kanidmd recover-account idm_admin", "")
        .await;
    let password = recovered
        .stdout
        .lines()
        .find_map(|l| {
            l.split_once("new_password: \"")
                .map(|(_, rest)| rest.trim_end_matches('"').to_string())
        })
        .unwrap();
    let ok = pod
        .sh(
            "kanidm",
            1000,
            &format!("KANIDM_PASSWORD=\"$(cat)\" {LOGIN}"),
            &password,
        )
        .await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let opts = "-H https://idm.example.com -D idm_admin";
    let created = pod
        .sh(
            "kanidm",
            1000,
            &format!("kanidm system oauth2 create dex Dex https://dex.example.com {opts}"),
            "",
        )
        .await;
    assert_eq!(created.stdout, "Success\n");
    let reset = pod
        .sh(
            "kanidm",
            1000,
            &format!("kanidm system oauth2 reset-secrets dex {opts}"),
            "",
        )
        .await;
    assert_eq!((reset.code, reset.stdout.as_str()), (0, "Success\n"));
    let renamed = pod
        .sh(
            "kanidm",
            1000,
            &format!("kanidm system oauth2 reset-basic-secret dex {opts}"),
            "",
        )
        .await;
    assert_eq!(renamed.code, 2);
    let missing = pod
        .sh(
            "kanidm",
            1000,
            &format!("kanidm system oauth2 create-scope-map nope idm_admins openid {opts}"),
            "",
        )
        .await;
    assert_eq!(missing.code, 0);
    assert!(
        missing
            .stderr
            .starts_with("Item not found:NoMatchingEntries "),
        "{}",
        missing.stderr
    );
    let duplicate = pod
        .sh(
            "kanidm",
            1000,
            &format!("kanidm system oauth2 create dex Dex https://dex.example.com {opts}"),
            "",
        )
        .await;
    assert_eq!(
        (duplicate.code, duplicate.stderr.as_str()),
        (
            1,
            "Internal Server Error in response: Plugin(AttrUnique(\"duplicate value detected\"))\n"
        )
    );
}
