//! Where the enrolled identity is kept between restarts: a Secret in the agent's own namespace
//! (cluster mode) or files in `--state-dir` (manifests mode, or wherever no cluster is used).
//!
//! Where it sits: beside [`crate::enroll`], which is its only writer. The Secret has type
//! `fleetgate.dev/agent-identity`, not `kubernetes.io/tls`: the agent's TLS-Secret watch (which
//! feeds tenants' certificateRefs) never sees it, so no Gateway can ever reference the agent's
//! key. Written with server-side apply; the RBAC in `deploy/agent-rbac.yaml` allows exactly that
//! one Secret. The bootstrap token is never stored, only its SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

use crate::identity::Identity;

/// The Secret type of a stored agent identity.
pub const SECRET_TYPE: &str = "fleetgate.dev/agent-identity";
/// Default name of that Secret.
pub const DEFAULT_SECRET_NAME: &str = "fleetgate-agent-identity";
/// Key (in the Secret) / file name (in the state dir) of the token fingerprint.
pub const TOKEN_SHA256: &str = "bootstrap-token.sha256";

/// An identity and the fingerprint of the token it was enrolled with.
#[derive(Debug, Clone)]
pub struct Stored {
    pub identity: Identity,
    pub token_sha256: Option<String>,
}

/// Reading or writing the stored identity failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file of the state directory could not be read or written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The Kubernetes API refused (check the RBAC in deploy/agent-rbac.yaml).
    #[error(
        "cannot {verb} Secret {namespace}/{name}: {source}; apply deploy/agent-rbac.yaml (it allows the agent exactly this Secret) or set --identity-secret/--namespace"
    )]
    Kube {
        verb: &'static str,
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    /// What is stored is not an agent identity.
    #[error("{place} does not hold a usable agent identity: {reason}; delete it and enroll again")]
    Corrupt { place: String, reason: String },
}

/// Where the identity lives.
#[derive(Clone)]
pub enum IdentityStore {
    /// `ca.crt`, `tls.crt`, `tls.key` (0600) and the token fingerprint in a directory.
    Files(PathBuf),
    /// A Secret `name` in `namespace`.
    Secret {
        api: Api<Secret>,
        namespace: String,
        name: String,
    },
}

impl std::fmt::Debug for IdentityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl IdentityStore {
    pub fn secret(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self::Secret {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Where, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Files(dir) => format!("--state-dir {}", dir.display()),
            Self::Secret {
                namespace, name, ..
            } => format!("Secret {namespace}/{name}"),
        }
    }

    /// The stored identity, `None` when nothing is stored yet.
    pub async fn load(&self) -> Result<Option<Stored>, StorageError> {
        let (ca, crt, key, fp) = match self {
            Self::Files(dir) => {
                let read = |name: &str| -> Result<Option<Vec<u8>>, StorageError> {
                    let path = dir.join(name);
                    match std::fs::read(&path) {
                        Ok(b) => Ok(Some(b)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(source) => Err(StorageError::Io { path, source }),
                    }
                };
                let (Some(ca), Some(crt), Some(key)) =
                    (read("ca.crt")?, read("tls.crt")?, read("tls.key")?)
                else {
                    return Ok(None);
                };
                (ca, crt, key, read(TOKEN_SHA256)?)
            }
            Self::Secret {
                api,
                namespace,
                name,
            } => {
                let secret = api
                    .get_opt(name)
                    .await
                    .map_err(|source| StorageError::Kube {
                        verb: "read",
                        namespace: namespace.clone(),
                        name: name.clone(),
                        source: Box::new(source),
                    })?;
                let Some(mut data) = secret.and_then(|s| s.data) else {
                    return Ok(None);
                };
                let mut take = |k: &str| data.remove(k).map(|b| b.0);
                let (Some(ca), Some(crt), Some(key)) =
                    (take("ca.crt"), take("tls.crt"), take("tls.key"))
                else {
                    return Ok(None);
                };
                (ca, crt, key, take(TOKEN_SHA256))
            }
        };
        let identity =
            Identity::from_pem(ca, crt, key, Path::new(&self.describe())).map_err(|e| {
                StorageError::Corrupt {
                    place: self.describe(),
                    reason: e.to_string(),
                }
            })?;
        Ok(Some(Stored {
            identity,
            token_sha256: fp.map(|b| String::from_utf8_lossy(&b).trim().to_string()),
        }))
    }

    /// Replaces the stored identity.
    pub async fn save(&self, stored: &Stored) -> Result<(), StorageError> {
        let id = &stored.identity;
        match self {
            Self::Files(dir) => {
                let io = |path: &Path| {
                    let path = path.to_path_buf();
                    move |source| StorageError::Io { path, source }
                };
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                let mut files = vec![
                    ("ca.crt", id.ca_pem.clone(), false),
                    ("tls.crt", id.cert_pem.clone(), false),
                    ("tls.key", id.key_pem.clone(), true),
                ];
                if let Some(fp) = &stored.token_sha256 {
                    files.push((TOKEN_SHA256, fp.clone().into_bytes(), false));
                }
                // The key first (a crash between files leaves a key that matches no certificate,
                // which `load` refuses, rather than a certificate with an old key).
                files.sort_by_key(|(_, _, private)| !private);
                for (name, bytes, private) in files {
                    write_atomically(&dir.join(name), &bytes, private)?;
                }
                Ok(())
            }
            Self::Secret {
                api,
                namespace,
                name,
            } => {
                let mut data = BTreeMap::new();
                data.insert("ca.crt".to_string(), ByteString(id.ca_pem.clone()));
                data.insert("tls.crt".to_string(), ByteString(id.cert_pem.clone()));
                data.insert("tls.key".to_string(), ByteString(id.key_pem.clone()));
                if let Some(fp) = &stored.token_sha256 {
                    data.insert(
                        TOKEN_SHA256.to_string(),
                        ByteString(fp.clone().into_bytes()),
                    );
                }
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/managed-by".to_string(),
                                crate::FIELD_MANAGER.to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    },
                    type_: Some(SECRET_TYPE.to_string()),
                    data: Some(data),
                    ..Default::default()
                };
                api.patch(
                    name,
                    &PatchParams::apply(crate::FIELD_MANAGER).force(),
                    &Patch::Apply(&secret),
                )
                .await
                .map_err(|source| StorageError::Kube {
                    verb: "write",
                    namespace: namespace.clone(),
                    name: name.clone(),
                    source: Box::new(source),
                })?;
                Ok(())
            }
        }
    }
}

/// Writes `path` through a temporary file and a rename, 0600 when `private`.
fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<(), StorageError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StorageError::Io { path: p, source }
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://fleetgate/tenant/t/cluster/c".try_into().unwrap(),
        )];
        let cert = p.self_signed(&key).unwrap();
        Identity::from_pem(
            cert.pem().into_bytes(),
            cert.pem().into_bytes(),
            key.serialize_pem().into_bytes(),
            Path::new("test"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn files_round_trip_with_a_private_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = IdentityStore::Files(dir.path().join("state"));
        assert!(store.load().await.unwrap().is_none());
        let id = identity();
        store
            .save(&Stored {
                identity: id.clone(),
                token_sha256: Some("ab".repeat(32)),
            })
            .await
            .unwrap();
        let back = store.load().await.unwrap().unwrap();
        assert_eq!(back.identity.cert_pem, id.cert_pem);
        assert_eq!(back.identity.key_pem, id.key_pem);
        assert_eq!(back.identity.spiffe.cluster, "c");
        assert_eq!(back.token_sha256.as_deref(), Some("ab".repeat(32).as_str()));
        let mode = std::fs::metadata(dir.path().join("state/tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        std::fs::write(dir.path().join("state/tls.crt"), "garbage").unwrap();
        let e = store.load().await.unwrap_err().to_string();
        assert!(
            e.contains("--state-dir") && e.contains("enroll again"),
            "{e}"
        );
    }
}
