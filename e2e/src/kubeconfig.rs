//! Kubeconfig files for the tenant API servers, and kube clients built from them.
//!
//! The files name the CA, client certificate and key by path, so the same file works for the
//! in-process client and for `fleetgate-agent --kubeconfig` (and `kubectl`, when debugging a
//! kept test folder).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where a user's credentials are.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub ca_cert: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The kubeconfig YAML for `user` talking to `server` (`https://127.0.0.1:PORT`).
pub fn render(cluster: &str, server: &str, user: &str, creds: &Credentials) -> String {
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster,
            "cluster": {
                "server": server,
                "certificate-authority": creds.ca_cert,
            },
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate": creds.client_cert,
                "client-key": creds.client_key,
            },
        }],
        "contexts": [{
            "name": format!("{user}@{cluster}"),
            "context": {"cluster": cluster, "user": user},
        }],
        "current-context": format!("{user}@{cluster}"),
    });
    serde_yaml::to_string(&doc).expect("a JSON value always renders as YAML")
}

/// A kube client from a kubeconfig file.
pub async fn client(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("building kube client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_kubeconfig_parses_and_names_the_files() {
        let creds = Credentials {
            ca_cert: "/x/ca.crt".into(),
            client_cert: "/x/admin.crt".into(),
            client_key: "/x/admin.key".into(),
        };
        let yaml = render("tenant-a", "https://127.0.0.1:6443", "admin", &creds);
        let kc: kube::config::Kubeconfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("admin@tenant-a"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority.as_deref(), Some("/x/ca.crt"));
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.client_key.as_deref(), Some("/x/admin.key"));
    }
}
