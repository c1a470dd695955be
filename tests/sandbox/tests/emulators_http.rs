//! The emulated Gitea and Kanidm HTTP APIs, exercised over loopback with reqwest.

use bringup_sandbox::emulators::random::sha256_hex;
use bringup_sandbox::emulators::{
    EmulatorService, GiteaConfig, GiteaVersion, InstanceConfig, KanidmConfig, KanidmVersion,
    ProductConfig,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "gitea_admin";
const ADMIN_PASSWORD: &str = "r8sA8CPHD9!bt6d";

async fn start(version: GiteaVersion) -> (EmulatorService, String) {
    let service = EmulatorService::start(vec![
        InstanceConfig {
            name: "gitea".into(),
            product: ProductConfig::Gitea(GiteaConfig::new(version)),
        },
        InstanceConfig {
            name: "kanidm".into(),
            product: ProductConfig::Kanidm(KanidmConfig::new(KanidmVersion::V1_7)),
        },
    ])
    .await
    .unwrap();
    let base = format!("http://{}", service.http_addr("gitea").unwrap());
    (service, base)
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_tokens_need_basic_auth_and_have_unique_names() {
    let (_service, base) = start(GiteaVersion::Gitea { minor: 24 }).await;
    let http = reqwest::Client::new();
    let (status, body) = json_of(
        http.get(format!("{base}/api/v1/version"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"version": "1.24.7"}))
    );
    let tokens = format!("{base}/api/v1/users/{ADMIN}/tokens");
    let create = |name: &str, scopes: Value| {
        http.post(&tokens)
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .json(&json!({"name": name, "scopes": scopes}))
            .send()
    };
    let (status, body) = json_of(
        create("renovate", json!(["write:repository", "read:user"]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = body["sha1"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 40);
    assert_eq!(body["token_last_eight"], json!(&token[32..]));
    assert_eq!(body["scopes"], json!(["write:repository", "read:user"]));
    let (status, body) = json_of(create("renovate", json!(["all"])).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"message": "access token name has been used already", "url": "http://localhost:3000/api/swagger"})
    );
    let (status, body) = json_of(create("empty", json!([])).await.unwrap()).await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("access token must have a scope")
        )
    );
    let (status, body) = json_of(create("bad", json!(["write:everything"])).await.unwrap()).await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!(
                "invalid access token scope provided: invalid access token scope: write:everything"
            )
        )
    );
    // A token in the Authorization header is not basic auth.
    let (status, body) = json_of(
        http.get(&tokens)
            .header("Authorization", format!("token {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("auth required"))
    );
    // The token as the basic-auth password is basic auth, and its scopes still apply.
    let (status, body) = json_of(
        http.get(&tokens)
            .basic_auth(ADMIN, Some(&token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "renovate");
    assert_eq!(body[0]["sha1"], "");
    assert!(body[0]["created_at"].is_string());
    let (status, body) = json_of(
        http.delete(format!("{tokens}/renovate"))
            .basic_auth(&token, None::<&str>)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            StatusCode::FORBIDDEN,
            json!("token does not have at least one of required scope(s): [write:user]")
        )
    );
    let (status, _) = json_of(
        http.get(&tokens)
            .basic_auth(ADMIN, Some("wrong"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let delete = |which: String| {
        http.delete(format!("{tokens}/{which}"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
    };
    assert_eq!(
        delete("renovate".into()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (status, body) = json_of(delete("renovate".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.get("errors").is_some(),
        "1.24 404 bodies carry errors: {body}"
    );
    let (_, body) = json_of(create("again", json!(["read:user"])).await.unwrap()).await;
    assert_eq!(
        delete(body["id"].to_string()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_oauth2_apps_rotate_on_patch_and_hide_secrets() {
    let (service, base) = start(GiteaVersion::Gitea { minor: 22 }).await;
    let http = reqwest::Client::new();
    let gitea = service.gitea("gitea").unwrap();
    let write_token = {
        let mut state_request = bringup_sandbox::emulators::CliRequest::new(&[
            "gitea",
            "admin",
            "user",
            "generate-access-token",
            "-u",
            ADMIN,
            "-t",
            "w",
            "--scopes",
            "write:user",
            "--raw",
        ]);
        state_request.uid = 1000;
        service
            .run_cli("gitea", &state_request)
            .unwrap()
            .stdout
            .trim_end()
            .to_string()
    };
    let apps = format!("{base}/api/v1/user/applications/oauth2");
    let body = json!({"name": "woodpecker", "redirect_uris": ["https://ci.example.com/authorize"], "confidential_client": true});
    let (status, first) = json_of(
        http.post(&apps)
            .bearer_auth(&write_token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = first["client_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("gto_") && secret.len() == 56);
    assert_eq!(
        uuid::Uuid::parse_str(first["client_id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        4
    );
    assert!(
        first.get("skip_secondary_authorization").is_none(),
        "absent before 1.23"
    );
    let (status, second) = json_of(
        http.post(&apps)
            .header("Authorization", format!("token {write_token}"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "names are not unique");
    assert_ne!(first["id"], second["id"]);
    let (status, listed) = json_of(
        http.get(&apps)
            .bearer_auth(&write_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["client_secret"], "");
    let one = format!("{apps}/{}", first["id"]);
    let (status, patched) = json_of(
        http.patch(&one)
            .bearer_auth(&write_token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rotated = patched["client_secret"].as_str().unwrap();
    assert_ne!(rotated, secret);
    let view = gitea.snapshot();
    assert_eq!(
        view.oauth2_apps[0].client_secret_sha256,
        sha256_hex(rotated)
    );
    assert_eq!(view.counters.oauth2_apps_patched, 1);
    let (status, _) = json_of(
        http.patch(format!("{apps}/999"))
            .bearer_auth(&write_token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = json_of(http.get(&apps).send().await.unwrap()).await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("token is required"))
    );
    let read_only = {
        let request = bringup_sandbox::emulators::CliRequest::new(&[
            "gitea",
            "admin",
            "user",
            "generate-access-token",
            "-u",
            ADMIN,
            "-t",
            "r",
            "--scopes",
            "read:user",
            "--raw",
        ]);
        service
            .run_cli("gitea", &request)
            .unwrap()
            .stdout
            .trim_end()
            .to_string()
    };
    let (status, body) = json_of(
        http.post(&apps)
            .bearer_auth(&read_only)
            .json(&json!({"name": "x", "redirect_uris": ["https://x"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (
            StatusCode::FORBIDDEN,
            json!("token does not have at least one of required scope(s): [write:user]")
        )
    );
    assert_eq!(
        http.get(&one)
            .bearer_auth(&read_only)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        http.delete(&one)
            .bearer_auth(&write_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.delete(&one)
            .bearer_auth(&write_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let (status, user) = json_of(
        http.get(format!("{base}/api/v1/users/{ADMIN}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, user["login"].clone(), user["username"].clone()),
        (StatusCode::OK, json!(ADMIN), json!(ADMIN))
    );
    assert_eq!(
        http.get(format!("{base}/api/v1/users/ghost"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_users_who_must_change_their_password_are_refused() {
    let (service, base) = start(GiteaVersion::Gitea { minor: 23 }).await;
    let request = bringup_sandbox::emulators::CliRequest::new(&[
        "gitea",
        "admin",
        "user",
        "create",
        "--username",
        "renovate",
        "--email",
        "r@example.com",
        "--password",
        "pw123456",
    ]);
    assert_eq!(service.run_cli("gitea", &request).unwrap().exit_code, 0);
    let http = reqwest::Client::new();
    let (status, body) = json_of(
        http.get(format!("{base}/api/v1/users/renovate/tokens"))
            .basic_auth("renovate", Some("pw123456"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"message": "You must change your password. Change it at: http://localhost:3000//user/change_password"})
    );
    let (status, body) = json_of(
        http.get(format!("{base}/api/v1/users/renovate/tokens"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!([])),
        "a site admin may list another user's tokens"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kanidm_rest_auth_and_oauth2() {
    let (service, _) = start(GiteaVersion::Gitea { minor: 24 }).await;
    let kanidm = service.kanidm("kanidm").unwrap();
    let request = bringup_sandbox::emulators::CliRequest::new(&[
        "kanidmd",
        "recover-account",
        "-o",
        "json",
        "idm_admin",
    ]);
    let out = service.run_cli("kanidm", &request).unwrap();
    let password: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    let base = format!("http://{}", service.http_addr("kanidm").unwrap());
    let http = reqwest::Client::new();
    let init = http
        .post(format!("{base}/v1/auth"))
        .json(&json!({"step": {"init2": {"username": "idm_admin", "issue": "token", "privileged": true}}}))
        .send()
        .await
        .unwrap();
    assert!(init.headers().contains_key("x-kanidm-opid"));
    let session = init.headers()["x-kanidm-auth-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (_, body) = json_of(init).await;
    assert_eq!(body["state"], json!({"choose": ["password"]}));
    let step = |body: Value| {
        http.post(format!("{base}/v1/auth"))
            .header("X-KANIDM-AUTH-SESSION-ID", &session)
            .json(&body)
            .send()
    };
    let (_, body) = json_of(step(json!({"step": {"begin": "password"}})).await.unwrap()).await;
    assert_eq!(body["state"], json!({"continue": ["password"]}));
    let (_, body) = json_of(
        step(json!({"step": {"cred": {"password": password["password"]}}}))
            .await
            .unwrap(),
    )
    .await;
    let token = body["state"]["success"].as_str().unwrap().to_string();
    let entry = json!({"attrs": {"name": ["grafana"], "displayname": ["Grafana"], "oauth2_rs_origin_landing": ["https://grafana.example.com"]}});
    let create = || {
        http.post(format!("{base}/v1/oauth2/_basic"))
            .bearer_auth(&token)
            .json(&entry)
            .send()
    };
    let (status, body) = json_of(create().await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let (status, body) = json_of(create().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"plugin": {"attrunique": "duplicate value detected"}})
        )
    );
    let (status, body) = json_of(
        http.get(format!("{base}/v1/oauth2/nope"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let (status, body) = json_of(
        http.patch(format!("{base}/v1/oauth2/nope"))
            .bearer_auth(&token)
            .json(&json!({"attrs": {"displayname": ["x"]}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!("nomatchingentries"))
    );
    let (_, secret) = json_of(
        http.get(format!("{base}/v1/oauth2/grafana/_basic_secret"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(kanidm.basic_secret_is("grafana", secret.as_str().unwrap()));
    let (status, _) = json_of(http.get(format!("{base}/v1/oauth2")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = json_of(
        http.post(format!("{base}/v1/oauth2/grafana/_scopemap/idm_admins"))
            .bearer_auth(&token)
            .json(&json!(["openid", "email"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    assert_eq!(
        kanidm.snapshot().oauth2_clients[0].scope_maps["idm_admins"],
        ["email", "openid"]
    );
    let (status, _) = json_of(
        http.post(format!("{base}/v1/group"))
            .bearer_auth(&token)
            .json(&json!({"attrs": {"name": ["grafana"]}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "names are unique across entry kinds"
    );
    let state: Value = reqwest::get(format!("{}/state/kanidm", service.cli_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["product"], "kanidm");
    assert_eq!(state["counters"]["recover_account"]["idm_admin"], 1);
    assert!(
        !state
            .to_string()
            .contains(password["password"].as_str().unwrap()),
        "no secret in a snapshot"
    );
}
