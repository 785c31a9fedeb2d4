//! The hub's certificate authority and the agent identities it issues.
//!
//! Where it sits: before the data path. An agent proves who it is with a client certificate the
//! hub's CA issued; its URI SAN `spiffe://<trust-domain>/tenant/<t>/cluster/<c>` is the only place
//! `sync` reads the tenant and cluster from.

pub mod token_key;

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// File names inside the hub's PKI directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const HUB_CERT: &str = "hub.crt";
pub const HUB_KEY: &str = "hub.key";
/// The DNS name in the hub's serving certificate; agents verify it (`--hub-server-name`).
pub const HUB_SERVER_NAME: &str = "fleetgate-hub";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a PKI file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// `ca init` would overwrite an existing CA.
    #[error(
        "{0} already holds a CA; remove it first if you really want a new one (every agent must then be re-issued)"
    )]
    CaExists(PathBuf),
    /// The peer certificate could not be parsed.
    #[error("the client certificate is not valid X.509: {0}")]
    BadCertificate(String),
    /// The peer certificate carries no usable fleetgate identity.
    #[error(
        "the client certificate has no URI SAN spiffe://{trust_domain}/tenant/<tenant>/cluster/<cluster>; issue it with `fleetgate-hub ca issue`"
    )]
    NoSpiffeId { trust_domain: String },
    /// A name is not a DNS label.
    #[error("{what} {value:?} is not a DNS label (lower-case letters, digits, '-', at most 63)")]
    BadName { what: &'static str, value: String },
}

/// A fleetgate agent identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub tenant: String,
    pub cluster: String,
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl SpiffeId {
    pub fn new(trust_domain: &str, tenant: &str, cluster: &str) -> Result<Self, IdentityError> {
        for (what, value) in [("tenant", tenant), ("cluster", cluster)] {
            if !is_label(value) {
                return Err(IdentityError::BadName {
                    what,
                    value: value.to_string(),
                });
            }
        }
        Ok(Self {
            trust_domain: trust_domain.to_string(),
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
        })
    }

    pub fn uri(&self) -> String {
        format!(
            "spiffe://{}/tenant/{}/cluster/{}",
            self.trust_domain, self.tenant, self.cluster
        )
    }

    /// Parses `spiffe://<td>/tenant/<t>/cluster/<c>`; anything else (extra segments, other trust
    /// domain, names that are not DNS labels) is `None`.
    pub fn parse(uri: &str, trust_domain: &str) -> Option<Self> {
        let rest = uri.strip_prefix("spiffe://")?;
        let (td, path) = rest.split_once('/')?;
        if td != trust_domain {
            return None;
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["tenant", t, "cluster", c] if is_label(t) && is_label(c) => {
                Some(Self::new(td, t, c).ok()?)
            }
            _ => None,
        }
    }

    /// Reads the identity from a DER certificate (the leaf the TLS layer already verified).
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let no_id = || IdentityError::NoSpiffeId {
            trust_domain: trust_domain.to_string(),
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?
            .ok_or_else(no_id)?;
        let mut found = None;
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if found.is_some() {
                    // Two identities in one certificate is ambiguous: refuse it.
                    return Err(no_id());
                }
                found = Some(Self::parse(uri, trust_domain).ok_or_else(no_id)?);
            }
        }
        found.ok_or_else(no_id)
    }
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    fs::write(path, contents).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates the hub CA and the hub's serving certificate in `pki_dir`.
/// `server_sans` are extra names (IP addresses or DNS names) agents may dial the hub by.
pub fn init_ca(pki_dir: &Path, server_sans: &[String]) -> Result<(), IdentityError> {
    fs::create_dir_all(pki_dir).map_err(|source| IdentityError::Io {
        path: pki_dir.to_path_buf(),
        source,
    })?;
    if pki_dir.join(CA_KEY).exists() {
        return Err(IdentityError::CaExists(pki_dir.to_path_buf()));
    }
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "fleetgate hub CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::minutes(5);
    ca.not_after = now + Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;

    let hub_key = KeyPair::generate()?;
    let mut names = vec![HUB_SERVER_NAME.to_string()];
    names.extend(server_sans.iter().cloned());
    let mut hub = CertificateParams::default();
    hub.distinguished_name
        .push(DnType::CommonName, HUB_SERVER_NAME);
    hub.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    hub.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    hub.not_before = now - Duration::minutes(5);
    hub.not_after = now + Duration::days(365);
    let issuer = Issuer::from_params(&ca, &ca_key);
    let hub_cert = hub.signed_by(&hub_key, &issuer)?;

    write(&pki_dir.join(CA_CERT), &ca_cert.pem(), false)?;
    write(&pki_dir.join(CA_KEY), &ca_key.serialize_pem(), true)?;
    write(&pki_dir.join(HUB_CERT), &hub_cert.pem(), false)?;
    write(&pki_dir.join(HUB_KEY), &hub_key.serialize_pem(), true)?;
    // The key bootstrap tokens are signed with (`fleetgate-hub token create`).
    token_key::TokenKey::load_or_create(pki_dir).map_err(|e| IdentityError::Io {
        path: pki_dir.join(token_key::TOKEN_KEY),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(())
}

/// How far an agent certificate's `notBefore` lies before the moment it was issued (clock skew
/// between hub and agent). [`PeerIdentity::issued_at`] adds it back.
pub const BACKDATE: Duration = Duration::seconds(60);

/// The certificate every agent identity gets, whoever made the key: the SPIFFE URI as the only
/// SAN, client auth only, valid from `now - BACKDATE` to `now + valid_for`.
pub fn agent_params(
    id: &SpiffeId,
    now: OffsetDateTime,
    valid_for: Duration,
) -> Result<CertificateParams, IdentityError> {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("{}/{}", id.tenant, id.cluster));
    p.subject_alt_names = vec![SanType::URI(id.uri().try_into()?)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = now - BACKDATE;
    p.not_after = now + valid_for;
    Ok(p)
}

/// The verified peer's identity and when its certificate was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub id: SpiffeId,
    /// `notBefore + BACKDATE`, Unix seconds: compared with a cluster's revocation epoch.
    pub issued_at: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
}

impl PeerIdentity {
    /// Reads the identity and validity of a DER certificate (the leaf TLS already verified).
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Self, IdentityError> {
        let id = SpiffeId::from_certificate(der, trust_domain)?;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        Ok(Self {
            id,
            issued_at: cert.validity().not_before.timestamp() + BACKDATE.whole_seconds(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// The hub CA, loaded to sign agent certificates.
pub struct HubCa {
    pub issuer: Issuer<'static, KeyPair>,
    /// `ca.crt`, what agents trust the hub by.
    pub ca_pem: String,
}

impl std::fmt::Debug for HubCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCa").finish_non_exhaustive()
    }
}

impl HubCa {
    /// Reads `ca.crt` and `ca.key` from the PKI directory.
    pub fn load(pki_dir: &Path) -> Result<Self, IdentityError> {
        let ca_pem = read(&pki_dir.join(CA_CERT))?;
        let ca_key = KeyPair::from_pem(&read(&pki_dir.join(CA_KEY))?)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
        Ok(Self { issuer, ca_pem })
    }
}

/// Issues an agent identity into `out` (`ca.crt`, `tls.crt`, `tls.key`).
pub fn issue_agent(
    pki_dir: &Path,
    id: &SpiffeId,
    valid_for: Duration,
    out: &Path,
) -> Result<(), IdentityError> {
    let HubCa { issuer, ca_pem } = HubCa::load(pki_dir)?;
    let key = KeyPair::generate()?;
    let cert = agent_params(id, OffsetDateTime::now_utc(), valid_for)?.signed_by(&key, &issuer)?;
    fs::create_dir_all(out).map_err(|source| IdentityError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    write(&out.join("ca.crt"), &ca_pem, false)?;
    write(&out.join("tls.crt"), &cert.pem(), false)?;
    write(&out.join("tls.key"), &key.serialize_pem(), true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_spiffe_ids() {
        let ok = SpiffeId::parse("spiffe://fleetgate/tenant/a/cluster/c-1", "fleetgate").unwrap();
        assert_eq!((ok.tenant.as_str(), ok.cluster.as_str()), ("a", "c-1"));
        for bad in [
            "spiffe://other/tenant/a/cluster/c",
            "spiffe://fleetgate/tenant/a/cluster/c/extra",
            "spiffe://fleetgate/tenant/A/cluster/c",
            "spiffe://fleetgate/tenant//cluster/c",
            "spiffe://fleetgate/cluster/c/tenant/a",
            "https://fleetgate/tenant/a/cluster/c",
            "spiffe://fleetgate/tenant/a%2fb/cluster/c",
        ] {
            assert_eq!(SpiffeId::parse(bad, "fleetgate"), None, "{bad}");
        }
    }

    #[test]
    fn issued_certificate_carries_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        init_ca(&pki, &["127.0.0.1".into()]).unwrap();
        assert!(matches!(
            init_ca(&pki, &[]),
            Err(IdentityError::CaExists(_))
        ));
        let id = SpiffeId::new("fleetgate", "tenant-a", "east").unwrap();
        let out = dir.path().join("agent");
        let before = OffsetDateTime::now_utc().unix_timestamp();
        issue_agent(&pki, &id, Duration::hours(24), &out).unwrap();
        let pem = fs::read_to_string(out.join("tls.crt")).unwrap();
        let der = pem_to_der(&pem);
        assert_eq!(SpiffeId::from_certificate(&der, "fleetgate").unwrap(), id);
        let peer = PeerIdentity::from_certificate(&der, "fleetgate").unwrap();
        assert!(
            peer.issued_at >= before && peer.issued_at <= before + 5,
            "{peer:?}"
        );
        assert_eq!(peer.not_after - peer.issued_at, 24 * 3600);
        // `ca init` also made the bootstrap token key, private.
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(pki.join(token_key::TOKEN_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(SpiffeId::from_certificate(&der, "other-domain").is_err());
        // The hub's own serving certificate is not an agent identity.
        let hub = pem_to_der(&fs::read_to_string(pki.join(HUB_CERT)).unwrap());
        assert!(SpiffeId::from_certificate(&hub, "fleetgate").is_err());
    }

    #[test]
    fn names_must_be_labels() {
        assert!(SpiffeId::new("fleetgate", "a/b", "c").is_err());
        assert!(SpiffeId::new("fleetgate", "a", "").is_err());
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        p.contents
    }
}
