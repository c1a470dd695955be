//! The kubeconfig the sandbox writes for its clients (context `sandbox`, bearer token).

use std::path::Path;

/// The kubeconfig text for a server URL and token, with the CA to verify an https server.
pub fn render(server: &str, token: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let ca = ca_pem.map_or_else(String::new, |pem| {
        format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        )
    });
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {server}\n{ca}users:\n- name: sandbox\n  user:\n    token: {token}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: default\ncurrent-context: sandbox\npreferences: {{}}\n"
    )
}

/// Writes the kubeconfig atomically (temp file, then rename), so a reader that sees the file
/// sees all of it: its existence is the readiness signal of `bringup-sandbox up`.
pub fn write(path: &Path, server: &str, token: &str, ca_pem: Option<&str>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(server, token, ca_pem))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)
}

/// Reads the server URL and token back from a kubeconfig this module wrote.
pub fn read(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let server = doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "kubeconfig {} has no clusters[0].cluster.server",
                path.display()
            )
        })?;
    let token = doc["users"][0]["user"]["token"].as_str().ok_or_else(|| {
        anyhow::anyhow!("kubeconfig {} has no users[0].user.token", path.display())
    })?;
    Ok((server.to_owned(), token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kubeconfig");
        write(&path, "http://127.0.0.1:1", "tok", None).expect("write");
        assert_eq!(
            read(&path).expect("read"),
            ("http://127.0.0.1:1".to_owned(), "tok".to_owned())
        );
    }
}
