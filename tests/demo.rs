//! The README's first command, proven: every phase in `phases/` (Vault, External Secrets and
//! S1) against the platform sandbox, as `just demo` runs it, then a rerun that changes nothing.

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
}
