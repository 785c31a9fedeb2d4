//! Enrollment: how the agent gets, keeps and renews its mTLS identity without anyone copying
//! keys around.
//!
//! Where it sits: before the data path. At start [`crate::run`] asks [`obtain`] for an identity:
//! the one kept in [`storage`] (a Secret in the agent's namespace, or files in `--state-dir`)
//! while its certificate is valid, else a new one from `EnrollService/Enroll` with the bootstrap
//! token. The key is generated here and never leaves the agent: the hub only sees a CSR.
//! [`renew`] then replaces the certificate at half its life over `EnrollService/Renew` and
//! tells `sync` to reconnect with it.

pub mod renew;
pub mod storage;

use std::path::Path;
use std::time::Duration;

use fleetgate_proto::enroll::v1::{
    EnrollRequest, EnrollResponse, RenewRequest, enroll_service_client::EnrollServiceClient,
};
use rcgen::{CertificateParams, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::info;

use crate::identity::{Identity, IdentityError};
use storage::{IdentityStore, StorageError, Stored};

/// Why enrollment or renewal failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The hub refused (bad token, cluster not registered, ...): its message says what to do.
    #[error("the hub refused {what}: {message}", message = .status.message())]
    Refused {
        what: &'static str,
        status: tonic::Status,
    },
    /// The hub could not be reached or its certificate was not trusted.
    #[error("cannot reach the hub at {hub} for {what}: {source}")]
    Connect {
        hub: String,
        what: &'static str,
        source: tonic::transport::Error,
    },
    /// The local key or CSR could not be generated.
    #[error("cannot generate the agent key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    /// The hub's answer is not a usable agent certificate.
    #[error("the hub returned an unusable certificate: {0}")]
    BadResponse(#[from] IdentityError),
    /// The identity could not be read from or written to its storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No usable stored identity and no token to enroll with.
    #[error(
        "{0}; start the agent with a bootstrap token: `fleetgate-hub token create --tenant <tenant> --cluster <cluster>` on the hub, then `fleetgate-agent --bootstrap-token <token> --hub-ca <hub ca.crt>`"
    )]
    NoIdentity(String),
    /// `--hub-ca` could not be read.
    #[error("cannot read --hub-ca {path}: {source}", path = .path.display())]
    HubCa {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A fresh key pair (ECDSA P-256) and a CSR signed with it. The CSR names nothing: the hub
/// decides the identity.
pub fn key_and_csr() -> Result<(KeyPair, Vec<u8>), EnrollError> {
    let key = KeyPair::generate()?;
    let csr = CertificateParams::default().serialize_request(&key)?;
    Ok((key, csr.der().to_vec()))
}

/// A TLS endpoint to the hub trusting `ca_pem`, with `client` as client identity when given.
fn endpoint(
    hub: &str,
    server_name: &str,
    ca_pem: &[u8],
    client: Option<&Identity>,
    what: &'static str,
) -> Result<Endpoint, EnrollError> {
    let err = |source| EnrollError::Connect {
        hub: hub.to_string(),
        what,
        source,
    };
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(server_name);
    if let Some(id) = client {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            &id.cert_pem,
            &id.key_pem,
        ));
    }
    Ok(Endpoint::from_shared(hub.to_string())
        .map_err(err)?
        .tls_config(tls)
        .map_err(err)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30)))
}

fn identity_of(
    response: EnrollResponse,
    ca_pem: &[u8],
    key: &KeyPair,
) -> Result<Identity, EnrollError> {
    Ok(Identity::from_pem(
        ca_pem.to_vec(),
        response.certificate_chain_pem.into_bytes(),
        key.serialize_pem().into_bytes(),
        Path::new("the certificate the hub issued"),
    )?)
}

/// Trades `token` for an identity. `ca_pem` is the hub CA the agent trusts (`--hub-ca`).
pub async fn enroll(
    hub: &str,
    server_name: &str,
    ca_pem: &[u8],
    token: &str,
) -> Result<Identity, EnrollError> {
    const WHAT: &str = "enrollment";
    let channel = endpoint(hub, server_name, ca_pem, None, WHAT)?
        .connect()
        .await
        .map_err(|source| EnrollError::Connect {
            hub: hub.to_string(),
            what: WHAT,
            source,
        })?;
    let (key, csr_der) = key_and_csr()?;
    let response = EnrollServiceClient::new(channel)
        .enroll(EnrollRequest {
            token: token.trim().to_string(),
            csr_der,
        })
        .await
        .map_err(|status| EnrollError::Refused { what: WHAT, status })?
        .into_inner();
    identity_of(response, ca_pem, &key)
}

/// Whether an enrollment failure is worth retrying: the hub is unreachable or briefly unable
/// (agents often start before the hub is reachable). A refusal (bad token, unknown cluster) is
/// final: retrying cannot change it.
pub fn retryable(e: &EnrollError) -> bool {
    match e {
        EnrollError::Connect { .. } => true,
        EnrollError::Refused { status, .. } => matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
        ),
        _ => false,
    }
}

/// [`enroll`], retried with backoff (1 s doubling to 30 s) while [`retryable`].
async fn enroll_retrying(
    hub: &str,
    server_name: &str,
    ca_pem: &[u8],
    token: &str,
) -> Result<Identity, EnrollError> {
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_factor(2.0)
        .with_max_delay(Duration::from_secs(30))
        .without_max_times();
    (|| enroll(hub, server_name, ca_pem, token))
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(retryable)
        .notify(|e, delay| {
            tracing::warn!(
                retry_in_s = delay.as_secs(),
                "enrollment failed, retrying: {}",
                crate::sync::error_chain(e)
            );
        })
        .await
}

/// A new certificate (for a new key) for the identity of `current`, authenticated by it.
pub async fn renew_once(
    hub: &str,
    server_name: &str,
    current: &Identity,
) -> Result<Identity, EnrollError> {
    const WHAT: &str = "certificate renewal";
    let channel = endpoint(hub, server_name, &current.ca_pem, Some(current), WHAT)?
        .connect()
        .await
        .map_err(|source| EnrollError::Connect {
            hub: hub.to_string(),
            what: WHAT,
            source,
        })?;
    let (key, csr_der) = key_and_csr()?;
    let response = EnrollServiceClient::new(channel)
        .renew(RenewRequest { csr_der })
        .await
        .map_err(|status| EnrollError::Refused { what: WHAT, status })?
        .into_inner();
    identity_of(response, &current.ca_pem, &key)
}

/// SHA-256 of a bootstrap token (hex): stored next to the identity it produced, so that a
/// restart with the same token reuses the identity and a new token enrolls again. The token
/// itself is never stored.
pub fn token_fingerprint(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a stored identity can be used at `now` (Unix seconds): valid for at least another
/// minute.
pub fn still_valid(identity: &Identity, now: i64) -> bool {
    identity
        .validity()
        .is_ok_and(|(not_before, not_after)| not_before <= now + 300 && now + 60 < not_after)
}

/// What the agent should do at start (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Use the stored identity.
    Reuse,
    /// Enroll with the token.
    Enroll,
    /// Neither is possible: why.
    Fail(String),
}

/// Stored identity valid and (no token, or the same token it came from): reuse it. A token
/// that differs from the stored one's: enroll again (the operator asked for a new identity).
/// Otherwise enroll when there is a token.
pub fn plan(stored: Option<&Stored>, token: Option<&str>, now: i64, place: &str) -> Plan {
    match (stored, token) {
        (Some(s), Some(t))
            if s.token_sha256.as_deref() == Some(token_fingerprint(t).as_str())
                && still_valid(&s.identity, now) =>
        {
            Plan::Reuse
        }
        (Some(s), None) if still_valid(&s.identity, now) => Plan::Reuse,
        (_, Some(_)) => Plan::Enroll,
        (Some(_), None) => Plan::Fail(format!("the identity stored in {place} has expired")),
        (None, None) => Plan::Fail(format!("no identity is stored in {place}")),
    }
}

/// The identity to start with: the stored one, or a new one from enrollment (then stored).
pub async fn obtain(
    hub: &str,
    server_name: &str,
    store: &IdentityStore,
    token: Option<&str>,
    hub_ca: Option<&Path>,
) -> Result<Stored, EnrollError> {
    let stored = store.load().await?;
    let now = renew::unix_now();
    match plan(stored.as_ref(), token, now, &store.describe()) {
        Plan::Reuse => {
            let s = stored.expect("Reuse needs a stored identity");
            info!(place = %store.describe(), "reusing the stored agent identity");
            Ok(s)
        }
        Plan::Fail(why) => Err(EnrollError::NoIdentity(why)),
        Plan::Enroll => {
            let token = token.expect("Enroll needs a token");
            let ca_pem = match (hub_ca, stored.as_ref()) {
                (Some(path), _) => std::fs::read(path).map_err(|source| EnrollError::HubCa {
                    path: path.to_path_buf(),
                    source,
                })?,
                (None, Some(s)) => s.identity.ca_pem.clone(),
                (None, None) => {
                    return Err(EnrollError::NoIdentity(
                        "--hub-ca is needed to enroll (the hub CA certificate, ca.crt in the hub's PKI directory)".into(),
                    ));
                }
            };
            let identity = enroll_retrying(hub, server_name, &ca_pem, token).await?;
            let stored = Stored {
                identity: identity.clone(),
                token_sha256: Some(token_fingerprint(token)),
            };
            store.save(&stored).await?;
            info!(
                tenant = %identity.spiffe.tenant,
                cluster = %identity.spiffe.cluster,
                place = %store.describe(),
                "enrolled with the hub; identity stored"
            );
            Ok(stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(not_before: i64, not_after: i64) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://fleetgate/tenant/t/cluster/c".try_into().unwrap(),
        )];
        p.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        let cert = p.self_signed(&key).unwrap();
        Identity::from_pem(
            cert.pem().into_bytes(),
            cert.pem().into_bytes(),
            key.serialize_pem().into_bytes(),
            Path::new("test"),
        )
        .unwrap()
    }

    #[test]
    fn plan_table() {
        let now = 1_000_000;
        let valid = Stored {
            identity: identity(now - 100, now + 3600),
            token_sha256: Some(token_fingerprint("tok-1")),
        };
        let expired = Stored {
            identity: identity(now - 7200, now - 1),
            token_sha256: Some(token_fingerprint("tok-1")),
        };
        let p = |s: Option<&Stored>, t: Option<&str>| plan(s, t, now, "Secret x");
        assert_eq!(p(Some(&valid), None), Plan::Reuse);
        assert_eq!(p(Some(&valid), Some("tok-1")), Plan::Reuse);
        assert_eq!(p(Some(&valid), Some(" tok-1\n")), Plan::Reuse);
        assert_eq!(p(Some(&valid), Some("tok-2")), Plan::Enroll);
        assert_eq!(p(Some(&expired), Some("tok-1")), Plan::Enroll);
        assert_eq!(p(None, Some("tok-1")), Plan::Enroll);
        assert!(
            matches!(p(Some(&expired), None), Plan::Fail(m) if m.contains("expired") && m.contains("Secret x"))
        );
        assert!(matches!(p(None, None), Plan::Fail(m) if m.contains("no identity")));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let refused = |code| EnrollError::Refused {
            what: "enrollment",
            status: tonic::Status::new(code, "x"),
        };
        assert!(retryable(&refused(tonic::Code::Unavailable)));
        assert!(!retryable(&refused(tonic::Code::Unauthenticated)));
        assert!(!retryable(&refused(tonic::Code::PermissionDenied)));
        assert!(!retryable(&refused(tonic::Code::InvalidArgument)));
        assert!(!retryable(&EnrollError::NoIdentity("x".into())));
    }

    #[tokio::test]
    async fn an_unreachable_hub_is_retried_until_it_answers() {
        // Nothing listens here: enrollment keeps retrying instead of failing the agent.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let ca = KeyPair::generate().unwrap();
        let ca_pem = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&ca)
            .unwrap()
            .pem();
        let hub = format!("https://{addr}");
        let attempt = enroll_retrying(&hub, "fleetgate-hub", ca_pem.as_bytes(), "t");
        assert!(
            tokio::time::timeout(Duration::from_millis(2500), attempt)
                .await
                .is_err(),
            "still retrying"
        );
    }

    #[test]
    fn the_csr_carries_the_new_key_and_no_names() {
        let (key, der) = key_and_csr().unwrap();
        let csr = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into()).unwrap();
        assert!(csr.params.subject_alt_names.is_empty());
        use rcgen::PublicKeyData;
        assert_eq!(csr.public_key.der_bytes(), key.der_bytes());
        assert!(!token_fingerprint("abc").contains("abc"));
        assert_eq!(token_fingerprint("abc").len(), 64);
    }
}
