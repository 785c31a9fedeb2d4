//! The agent's mTLS identity: the hub CA (the only trust root), this cluster's client certificate
//! and key, and the tenant/cluster named in the certificate's SPIFFE URI SAN.
//!
//! Where it sits: read once at start-up by [`crate::run`]; `sync` builds its TLS config from it
//! and sends the cluster name in Hello (informative: the hub reads the identity from the verified
//! certificate, never from the payload).

use std::path::{Path, PathBuf};

use x509_parser::extensions::GeneralName;

/// The three identity files and what the certificate says about who we are.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub spiffe: SpiffeId,
}

/// `spiffe://<trust_domain>/tenant/<tenant>/cluster/<cluster>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub tenant: String,
    pub cluster: String,
}

/// Why the identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// An identity file is missing or unreadable.
    #[error(
        "cannot read {path}: {source}; create it with `fleetgate-hub ca issue --pki-dir <hub pki dir> --tenant <tenant> --cluster <cluster> --out {dir}`",
        path = .path.display(), dir = .dir.display()
    )]
    Read {
        path: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// tls.crt is not a PEM X.509 certificate.
    #[error("{path} is not a PEM X.509 certificate: {reason}", path = .path.display())]
    BadCertificate { path: PathBuf, reason: String },
    /// tls.crt has no URI SAN of the form spiffe://<td>/tenant/<t>/cluster/<c>.
    #[error(
        "{path} has no URI SAN spiffe://<trust-domain>/tenant/<tenant>/cluster/<cluster>; issue agent certificates with `fleetgate-hub ca issue`",
        path = .path.display()
    )]
    NoSpiffeId { path: PathBuf },
}

impl Identity {
    /// Reads `dir/ca.crt`, `dir/tls.crt`, `dir/tls.key` and the SPIFFE ID of `tls.crt`.
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| IdentityError::Read {
                path,
                dir: dir.to_path_buf(),
                source,
            })
        };
        let ca_pem = read("ca.crt")?;
        let cert_pem = read("tls.crt")?;
        let key_pem = read("tls.key")?;
        let cert_path = dir.join("tls.crt");
        let spiffe = spiffe_of_pem(&cert_pem, &cert_path)?;
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
            spiffe,
        })
    }
}

impl Identity {
    /// An identity from PEM buffers (what enrollment returns or a Secret holds); `origin` names
    /// where it came from in errors.
    pub fn from_pem(
        ca_pem: Vec<u8>,
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
        origin: &Path,
    ) -> Result<Self, IdentityError> {
        let spiffe = spiffe_of_pem(&cert_pem, origin)?;
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
            spiffe,
        })
    }

    /// The certificate's (notBefore, notAfter) in Unix seconds.
    pub fn validity(&self) -> Result<(i64, i64), IdentityError> {
        let bad = |reason: String| IdentityError::BadCertificate {
            path: PathBuf::from("tls.crt"),
            reason,
        };
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(&self.cert_pem).map_err(|e| bad(e.to_string()))?;
        let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
        Ok((
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        ))
    }
}

/// The SPIFFE ID in the URI SANs of the first certificate of a PEM buffer.
pub fn spiffe_of_pem(pem: &[u8], path: &Path) -> Result<SpiffeId, IdentityError> {
    let bad = |reason: String| IdentityError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?;
    san.into_iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .find_map(|name| match name {
            GeneralName::URI(uri) => parse_spiffe(uri),
            _ => None,
        })
        .ok_or_else(|| IdentityError::NoSpiffeId {
            path: path.to_path_buf(),
        })
}

/// Parses `spiffe://<td>/tenant/<t>/cluster/<c>`; `None` for anything else.
pub fn parse_spiffe(uri: &str) -> Option<SpiffeId> {
    let rest = uri.strip_prefix("spiffe://")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [td, "tenant", tenant, "cluster", cluster]
            if !td.is_empty() && !tenant.is_empty() && !cluster.is_empty() =>
        {
            Some(SpiffeId {
                trust_domain: (*td).to_string(),
                tenant: (*tenant).to_string(),
                cluster: (*cluster).to_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_spiffe_table() {
        let id = |td: &str, t: &str, c: &str| SpiffeId {
            trust_domain: td.into(),
            tenant: t.into(),
            cluster: c.into(),
        };
        let cases = [
            (
                "spiffe://fleetgate/tenant/a/cluster/c1",
                Some(id("fleetgate", "a", "c1")),
            ),
            (
                "spiffe://td.example/tenant/blue/cluster/prod",
                Some(id("td.example", "blue", "prod")),
            ),
            ("spiffe://fleetgate/tenant/a/cluster/", None),
            ("spiffe://fleetgate/tenant/a", None),
            ("spiffe://fleetgate/tenant/a/cluster/c/extra", None),
            ("https://fleetgate/tenant/a/cluster/c", None),
            ("spiffe:///tenant/a/cluster/c", None),
        ];
        for (uri, want) in cases {
            assert_eq!(parse_spiffe(uri), want, "{uri}");
        }
    }

    #[test]
    fn load_reads_cluster_from_certificate_and_explains_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = Identity::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("fleetgate-hub ca issue"),
            "{err}"
        );

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://fleetgate/tenant/t1/cluster/east"
                .try_into()
                .unwrap(),
        )];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
        let err = Identity::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tls.key"), "{err}");
        std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
        let id = Identity::load(dir.path()).unwrap();
        assert_eq!(id.spiffe.tenant, "t1");
        assert_eq!(id.spiffe.cluster, "east");

        let mut params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::DnsName("y.example".try_into().unwrap()));
        let plain = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("tls.crt"), plain.pem()).unwrap();
        let err = Identity::load(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::NoSpiffeId { .. }), "{err}");
    }
}
