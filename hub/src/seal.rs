//! Tenant TLS private keys and AI provider keys encrypted at rest.
//!
//! Where it sits: inside `store`, at the boundary between the model and the database file. A
//! key is sealed with ChaCha20-Poly1305 (an AEAD) under a 32-byte key kept in the hub's pki dir
//! (`store.key`, mode 0600, created on first start), with the object's identity as associated
//! data (tenant, cluster, Gateway, listener, Secret for a TLS key; tenant, cluster,
//! AgentgatewayBackend for a provider key), so a sealed key copied onto another object does not
//! open. Keys stored in plain by an older hub are read as they are and sealed when the store is
//! opened (`Store::open_sealed`).

use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::model::ai::{AiAuth, AiBackend, ProviderKey};
use crate::model::{ClusterKey, Gateway, PrivateKeyPem};

/// The file, in the pki dir, holding the store's key.
pub const KEY_FILE: &str = "store.key";
/// What a sealed private key starts with, in the store.
const PREFIX: &str = "fleetgate-sealed:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file could not be read, created or has the wrong size or mode.
    #[error("store key {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    /// A sealed value does not open with this key and identity (another hub's key, a corrupted
    /// file, or a value moved onto another object).
    #[error(
        "a private key or provider key in the store cannot be decrypted ({what}); the store was written with another {KEY_FILE} or was altered"
    )]
    Open { what: String },
    /// The store holds sealed keys but the hub has no key to open them.
    #[error("the store holds encrypted private keys but no {KEY_FILE} was given")]
    NoKey,
}

/// Seals and opens private keys. Its Debug never shows the key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

fn key_file_error(path: &Path, message: impl Into<String>) -> SealError {
    SealError::KeyFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Sealer {
    /// A sealer with this 32-byte key.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            key: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte ChaCha20 key"),
            ),
            rng: SystemRandom::new(),
        }
    }

    /// Reads `<pki_dir>/store.key`, creating it (32 random bytes, mode 0600) when missing.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, SealError> {
        let path = pki_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    key_file_error(
                        &path,
                        format!(
                            "holds {} bytes, not 32; restore the file from backup",
                            bytes.len()
                        ),
                    )
                })?;
                check_mode(&path)?;
                Ok(Self::from_key(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| key_file_error(&path, "no randomness available"))?;
                std::fs::create_dir_all(pki_dir)
                    .map_err(|e| key_file_error(&path, e.to_string()))?;
                write_private(&path, &key).map_err(|e| key_file_error(&path, e.to_string()))?;
                Ok(Self::from_key(&key))
            }
            Err(e) => Err(key_file_error(&path, e.to_string())),
        }
    }

    /// `plaintext` sealed for `identity`: the prefix, then hex of nonce and ciphertext.
    pub fn seal(&self, plaintext: &str, identity: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system random generator works");
        let mut data = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(identity.as_bytes()),
                &mut data,
            )
            .expect("ChaCha20-Poly1305 seals any input below 256 GiB");
        let mut out = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + data.len()));
        out.push_str(PREFIX);
        for b in nonce.iter().chain(&data) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Opens a value [`Sealer::seal`] made for `identity`.
    pub fn open(&self, sealed: &str, identity: &str) -> Result<String, SealError> {
        let bad = || SealError::Open {
            what: identity.to_string(),
        };
        let hex = sealed.strip_prefix(PREFIX).ok_or_else(bad)?;
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let mut bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>, _>>()?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let mut data = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| bad())?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(identity.as_bytes()), &mut data)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

/// Whether a stored key is sealed.
pub fn is_sealed(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// The associated data of one certificate's key: everything that names it.
fn identity(cluster: &ClusterKey, gw: &Gateway, listener: &str, ns: &str, name: &str) -> String {
    format!(
        "fleetgate/private-key/v1/{}/{}/{}/{}/{listener}/{ns}/{name}",
        cluster.tenant, cluster.cluster, gw.meta.namespace, gw.meta.name
    )
}

/// Seals every plain private key of `gateways` (of cluster `cluster`) in place.
pub fn seal_gateways(sealer: &Sealer, cluster: &ClusterKey, gateways: &mut [Gateway]) {
    for gw in gateways.iter_mut() {
        let snapshot = gw.clone();
        for l in &mut gw.listeners {
            let Some(tls) = &mut l.tls else { continue };
            for c in &mut tls.certificates {
                if !is_sealed(&c.private_key_pem.0) {
                    let id = identity(cluster, &snapshot, &l.name, &c.namespace, &c.name);
                    c.private_key_pem = PrivateKeyPem(sealer.seal(&c.private_key_pem.0, &id));
                }
            }
        }
    }
}

/// Opens every sealed private key of `gateways` in place; returns whether any key was stored
/// in plain (a store written before keys were sealed).
pub fn open_gateways(
    sealer: Option<&Sealer>,
    cluster: &ClusterKey,
    gateways: &mut [Gateway],
) -> Result<bool, SealError> {
    let mut plain = false;
    for gw in gateways.iter_mut() {
        let snapshot = gw.clone();
        for l in &mut gw.listeners {
            let Some(tls) = &mut l.tls else { continue };
            for c in &mut tls.certificates {
                if is_sealed(&c.private_key_pem.0) {
                    let sealer = sealer.ok_or(SealError::NoKey)?;
                    let id = identity(cluster, &snapshot, &l.name, &c.namespace, &c.name);
                    c.private_key_pem = PrivateKeyPem(sealer.open(&c.private_key_pem.0, &id)?);
                } else {
                    plain = true;
                }
            }
        }
    }
    Ok(plain)
}

/// The associated data of one AI backend's provider key.
fn ai_identity(cluster: &ClusterKey, b: &AiBackend) -> String {
    format!(
        "fleetgate/ai-provider-key/v1/{}/{}/{}/{}",
        cluster.tenant, cluster.cluster, b.meta.namespace, b.meta.name
    )
}

/// Every provider key of an AI backend (one for `ai.provider`, one per provider of `ai.groups`
/// that has one), each with its associated data: the backend's identity, and for a provider of
/// a group its position and name after it (so a key cannot be moved to another provider).
fn provider_keys<'a>(
    cluster: &ClusterKey,
    b: &'a mut AiBackend,
) -> Vec<(String, &'a mut ProviderKey)> {
    let id = ai_identity(cluster, b);
    match &mut b.target {
        Ok(t) => t
            .keys_mut()
            .into_iter()
            .map(|(at, k)| {
                let id = if at.is_empty() {
                    id.clone()
                } else {
                    format!("{id}/{at}")
                };
                (id, k)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether any AI backend of `backends` holds a provider key in plain.
pub fn has_plain_ai_key(backends: &[AiBackend]) -> bool {
    backends.iter().any(|b| match &b.target {
        Ok(t) => t
            .resolved()
            .iter()
            .any(|t| matches!(&t.auth, AiAuth::Key(k) if !is_sealed(&k.0))),
        Err(_) => false,
    })
}

/// Seals every plain provider key of `backends` (of cluster `cluster`) in place.
pub fn seal_ai_backends(sealer: &Sealer, cluster: &ClusterKey, backends: &mut [AiBackend]) {
    for b in backends.iter_mut() {
        for (id, k) in provider_keys(cluster, b) {
            if !is_sealed(&k.0) {
                *k = ProviderKey(sealer.seal(&k.0, &id));
            }
        }
    }
}

/// Opens every sealed provider key of `backends` in place; returns whether any key was stored
/// in plain (a store written before provider keys were sealed).
pub fn open_ai_backends(
    sealer: Option<&Sealer>,
    cluster: &ClusterKey,
    backends: &mut [AiBackend],
) -> Result<bool, SealError> {
    let mut plain = false;
    for b in backends.iter_mut() {
        for (id, k) in provider_keys(cluster, b) {
            if is_sealed(&k.0) {
                let sealer = sealer.ok_or(SealError::NoKey)?;
                *k = ProviderKey(sealer.open(&k.0, &id)?);
            } else {
                plain = true;
            }
        }
    }
    Ok(plain)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// The key file must not be readable by group or others.
#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), SealError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| key_file_error(path, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            format!(
                "mode {:o} lets others read it; run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path) -> Result<(), SealError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_identity() {
        let s = Sealer::from_key(&[7u8; 32]);
        let sealed = s.seal("-----BEGIN PRIVATE KEY-----\nabc\n", "id-1");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("PRIVATE KEY"));
        assert_eq!(
            s.open(&sealed, "id-1").unwrap(),
            "-----BEGIN PRIVATE KEY-----\nabc\n"
        );
        // Another identity, another key, or a flipped byte: refused.
        assert!(s.open(&sealed, "id-2").is_err());
        assert!(Sealer::from_key(&[8u8; 32]).open(&sealed, "id-1").is_err());
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(s.open(&tampered, "id-1").is_err());
        assert!(s.open("fleetgate-sealed:v1:zz", "id-1").is_err());
        // Two seals of the same key differ (random nonce).
        assert_ne!(sealed, s.seal("-----BEGIN PRIVATE KEY-----\nabc\n", "id-1"));
    }

    /// Every provider key of a backend of `ai.groups` is sealed, bound to its backend and to
    /// its place in the groups: a sealed key moved to another provider does not open.
    #[test]
    fn the_keys_of_every_provider_of_a_group_are_sealed_bound_to_their_place() {
        use crate::model::ai::{AiMember, AiProvider, AiTarget, AiTargets, AiUpstream};
        let target = |key: &str| AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: "api.openai.com".into(),
            port: 443,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::External,
            auth: AiAuth::Key(ProviderKey(key.into())),
        };
        let member = |name: &str, key: &str| AiMember {
            name: name.into(),
            target: Ok(target(key)),
        };
        let ck = ClusterKey {
            tenant: "a".into(),
            cluster: "c1".into(),
        };
        let plain = AiBackend {
            model_aliases: Default::default(),
            meta: crate::model::Meta {
                namespace: "default".into(),
                name: "failover".into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            target: Ok(AiTargets::Groups(vec![
                vec![member("a", "sk-a")],
                vec![member("b", "sk-b")],
            ])),
        };
        let sealer = Sealer::from_key(&[7u8; 32]);
        let mut stored = vec![plain.clone()];
        assert!(has_plain_ai_key(&stored));
        seal_ai_backends(&sealer, &ck, &mut stored);
        assert!(!has_plain_ai_key(&stored));
        assert!(!format!("{:?}", serde_json::to_string(&stored).unwrap()).contains("sk-"));
        let mut opened = stored.clone();
        assert!(!open_ai_backends(Some(&sealer), &ck, &mut opened).unwrap());
        assert_eq!(opened, vec![plain]);
        // Swap the two sealed keys: neither opens.
        let mut swapped = stored.clone();
        if let Ok(AiTargets::Groups(g)) = &mut swapped[0].target {
            let (first, second) = g.split_at_mut(1);
            if let (Ok(x), Ok(y)) = (&mut first[0][0].target, &mut second[0][0].target) {
                std::mem::swap(&mut x.auth, &mut y.auth);
            }
        }
        assert!(open_ai_backends(Some(&sealer), &ck, &mut swapped).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load_or_create(dir.path()).unwrap();
        let sealed = a.seal("k", "id");
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = Sealer::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open(&sealed, "id").unwrap(), "k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Sealer::load_or_create(dir.path()).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
        std::fs::write(&path, b"short").unwrap();
        let e = Sealer::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not 32"), "{e}");
        assert_eq!(format!("{a:?}"), "Sealer(<redacted>)");
    }

    /// Every type that carries a private key, formatted with Debug (plain and pretty) as a log
    /// line would: the key material never appears.
    #[test]
    fn debug_of_every_type_carrying_a_key_redacts_it() {
        use crate::model::{
            AllowedRoutes, Certificate, ClusterIntent, Listener, ListenerTls, Meta, Protocol,
            TlsMode,
        };
        use fleetgate_proto::spoke::v1 as pb;
        const SECRET: &str = "MC4CAQAwBQYDK2VwBCIEIsecret-key-bytes";
        let cert = Certificate {
            namespace: "default".into(),
            name: "cert".into(),
            cert_chain_pem: "-----BEGIN CERTIFICATE-----".into(),
            private_key_pem: PrivateKeyPem(format!(
                "-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
            )),
            dns_names: vec!["app.a.example".into()],
            serial: "01".into(),
        };
        let tls = ListenerTls {
            mode: TlsMode::Terminate,
            certificates: vec![cert.clone()],
            problem: None,
            options: Vec::new(),
        };
        let gw = Gateway {
            meta: Meta {
                namespace: "default".into(),
                name: "gw".into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            class_name: "fleetgate".into(),
            allowed_listeners: Default::default(),
            listeners: vec![Listener {
                name: "https".into(),
                protocol: Some(Protocol::Https),
                protocol_name: "HTTPS".into(),
                port: 443,
                hostname: None,
                allowed_routes: AllowedRoutes::Same,
                tls: Some(tls.clone()),
                allowed_kinds: vec![],
            }],
        };
        let mut intent = ClusterIntent::default();
        intent
            .gateways
            .insert(("default".into(), "gw".into()), gw.clone());
        let secret_snapshot = crate::compile::SecretSnapshot {
            name: "s".into(),
            cert_chain_pem: String::new(),
            private_key_pem: cert.private_key_pem.clone(),
            source: None,
        };
        let wire = pb::Certificate {
            namespace: "default".into(),
            name: "cert".into(),
            cert_chain_pem: b"-----BEGIN CERTIFICATE-----".to_vec(),
            private_key_pem: cert.private_key_pem.0.clone().into_bytes(),
            problem: None,
        };
        let sealer = Sealer::from_key(&[1u8; 32]);
        // An AgentgatewayBackend's provider key, in every type that carries it.
        use crate::model::ai::{
            AiMember, AiProvider, AiRoute, AiRouteProvider, AiRouteTarget, AiSnapshot, AiTarget,
            AiTargets, AiUpstream,
        };
        let provider_key = ProviderKey(format!("sk-{SECRET}"));
        let ai_target = AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: "api.openai.com".into(),
            port: 443,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::External,
            auth: AiAuth::Key(provider_key.clone()),
        };
        let ai_backend = AiBackend {
            model_aliases: Default::default(),
            meta: gw.meta.clone(),
            target: Ok(ai_target.clone().into()),
        };
        let ai_groups = AiBackend {
            model_aliases: Default::default(),
            meta: gw.meta.clone(),
            target: Ok(AiTargets::Groups(vec![vec![AiMember {
                name: "a".into(),
                target: Ok(ai_target),
            }]])),
        };
        let mut ai_snapshot = AiSnapshot::default();
        ai_snapshot
            .tenants
            .entry("a".into())
            .or_default()
            .routes
            .insert(
                "c1/default/gw".into(),
                AiRoute {
                    model_aliases: Default::default(),
                    target: AiRouteTarget::Groups(vec![vec![AiRouteProvider {
                        tls: false,
                        name: "a".into(),
                        provider: AiProvider::OpenAi { model: None },
                        host: "api.openai.com".into(),
                        port: 443,
                        path: None,
                        path_prefix: None,
                        endpoints: vec![],
                        auth: AiAuth::Key(provider_key.clone()),
                    }]]),
                    source: crate::compile::SourceObject {
                        cluster: ClusterKey {
                            tenant: "a".into(),
                            cluster: "c1".into(),
                        },
                        object: crate::model::ObjectKey {
                            kind: crate::model::Kind::AiBackend,
                            namespace: "default".into(),
                            name: "gw".into(),
                        },
                    },
                },
            );
        intent
            .ai_backends
            .insert(("default".into(), "gw".into()), ai_backend.clone());
        let wire_ai = pb::AiBackend {
            auth: Some(pb::AiAuth {
                key: provider_key.0.clone(),
                passthrough: false,
            }),
            groups: vec![pb::AiProviderGroup {
                providers: vec![pb::AiGroupProvider {
                    auth: Some(pb::AiAuth {
                        key: provider_key.0.clone(),
                        passthrough: false,
                    }),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let formatted = [
            format!("{ai_backend:?} {ai_backend:#?}"),
            format!("{ai_groups:?} {ai_groups:#?}"),
            format!("{ai_snapshot:?} {ai_snapshot:#?}"),
            format!(
                "{:?}",
                crate::admit::Admitted::AiBackend(ai_backend.clone())
            ),
            format!("{wire_ai:?} {wire_ai:#?}"),
            format!("{:?} {:#?}", cert.private_key_pem, cert.private_key_pem),
            format!("{cert:?} {cert:#?}"),
            format!("{tls:?} {tls:#?}"),
            format!("{gw:?} {gw:#?}"),
            format!("{intent:?} {intent:#?}"),
            format!("{:?}", crate::admit::Admitted::Gateway(gw.clone())),
            format!("{secret_snapshot:?} {secret_snapshot:#?}"),
            format!("{wire:?} {wire:#?}"),
            format!("{sealer:?}"),
        ];
        for f in formatted {
            assert!(!f.contains(SECRET), "{f}");
            assert!(!f.contains("BEGIN PRIVATE KEY"), "{f}");
        }
    }
}
