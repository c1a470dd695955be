//! The README's first command, proven: every phase in `phases/` (Vault, External Secrets and
//! S1) against the platform sandbox (served over HTTPS), as `just demo` runs it, then a rerun
//! that changes nothing; and every request made is allowed by the ClusterRole that
//! docs/operations.md documents.

mod common;

use common::{Env, assert_exit, repo, stderr, stdout};

#[test]
fn the_demo_brings_up_the_whole_platform_and_a_rerun_changes_nothing() {
    let env = Env::from_paths(
        &repo().join("tests/sandbox/clusters/platform.yaml"),
        &repo().join("phases"),
    );
    let kubernetes_host = format!("vault.kubernetes_host={}", env.sandbox.url());
    let values = [
        "--values",
        "phases/sandbox-values.yaml",
        "--set",
        kubernetes_host.as_str(),
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--yes"];
        args.extend_from_slice(&values);
        args.extend_from_slice(extra);
        env.bringup()
            .current_dir(repo())
            .args(&args)
            .output()
            .unwrap()
    };

    let first = run(&[]);
    assert_exit(&first, 0);
    let text = stdout(&first);
    for phase in [
        "shared-secrets",
        "vault",
        "external-secrets",
        "kanidm",
        "dex",
        "gitea",
        "renovate",
        "woodpecker",
    ] {
        assert!(
            text.contains(&format!("phase {phase} done")),
            "phase {phase} did not finish:\n{text}"
        );
    }
    for (ns, name) in [
        ("vault", "vault-init"),
        ("global-secrets", "kanidm.dex"),
        ("global-secrets", "gitea.renovate"),
        ("global-secrets", "gitea.woodpecker"),
    ] {
        assert!(env.secret(ns, name).is_some(), "Secret {ns}/{name} missing");
    }
    let store = env
        .object(
            "external-secrets.io/v1",
            "ClusterSecretStore",
            None,
            "vault-backend",
        )
        .unwrap();
    assert!(
        store["status"]["conditions"]
            .to_string()
            .contains("\"True\""),
        "vault-backend is not Ready: {store}"
    );

    let before = env.audit().len();
    let second = run(&[]);
    assert_exit(&second, 0);
    let writes: Vec<_> = env
        .audit()
        .into_iter()
        .skip(before)
        .filter(|e| e.is_mutating() && e.resource.as_deref() != Some("leases"))
        .collect();
    assert!(
        writes.is_empty(),
        "the rerun changed the cluster: {writes:#?}\n{}",
        stderr(&second)
    );

    for command in ["plan", "verify", "status"] {
        let mut args = vec![command];
        if command == "plan" {
            args.push("--probe");
        }
        args.extend_from_slice(&values);
        let output = env
            .bringup()
            .current_dir(repo())
            .args(&args)
            .output()
            .unwrap();
        assert_exit(&output, 0);
    }
    // Every request bringup made is allowed by the ClusterRole docs/operations.md gives.
    let allowed = documented_permissions();
    let denied: Vec<String> = env
        .audit()
        .into_iter()
        .filter(|e| e.user_agent != bringup_sandbox::controllers::USER_AGENT)
        .filter(|e| !e.user_agent.starts_with("Go-http-client")) // OpenBao's TokenReviews
        .filter(|e| !e.verb.is_empty()) // discovery: allowed to every authenticated user
        .filter_map(|e| {
            let resource = e.resource.clone()?;
            let group = match e.path.strip_prefix("/apis/") {
                Some(rest) => rest.split('/').next().unwrap_or_default().to_string(),
                None => String::new(),
            };
            let resource = match &e.subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource,
            };
            let request = (group, resource, e.verb.clone());
            (!allowed.contains(&request)).then(|| format!("{request:?} ({} {})", e.method, e.path))
        })
        .collect();
    assert!(
        denied.is_empty(),
        "requests the documented ClusterRole does not allow: {denied:#?}"
    );
}

/// (apiGroup, resource, verb) for every rule of the ClusterRole in docs/operations.md.
fn documented_permissions() -> std::collections::BTreeSet<(String, String, String)> {
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let start = doc
        .find("<!-- rbac:begin -->\n```yaml\n")
        .expect("rbac:begin");
    let end = doc.find("```\n<!-- rbac:end -->").expect("rbac:end");
    let yaml = &doc[start + "<!-- rbac:begin -->\n```yaml\n".len()..end];
    let role: serde_yaml::Value = serde_yaml::from_str(yaml).expect("the ClusterRole is YAML");
    assert_eq!(role["kind"].as_str(), Some("ClusterRole"));
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut allowed = std::collections::BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    allowed.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    allowed
}
