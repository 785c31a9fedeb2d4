//! Certificate signing requests in, agent certificates out.
//!
//! Where it sits: inside `EnrollService` (before the data path). The agent made its own key and
//! signed a PKCS#10 CSR with it; this module checks the CSR is well-formed and self-signed by the
//! key it carries, takes ONLY that public key from it, and issues the agent certificate for the
//! identity the caller established (from the bootstrap token or the current client certificate).
//! Names, extensions and validity the CSR asks for are ignored. Pure given the CA and `now`.

use rcgen::CertificateSigningRequestParams;
use rustls::pki_types::CertificateSigningRequestDer;
use time::{Duration, OffsetDateTime};

use crate::identity::{HubCa, SpiffeId, agent_params};

/// Largest CSR accepted, in bytes (a P-384 or RSA-4096 CSR is well under 4 KiB).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Why a CSR was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    /// Empty or larger than [`MAX_CSR_BYTES`].
    #[error("the CSR is empty or larger than {MAX_CSR_BYTES} bytes")]
    Size,
    /// Not a DER PKCS#10 request, or its signature does not verify with its own key.
    #[error(
        "the CSR is not a well-formed PKCS#10 request signed by the key it carries: {0}; generate it with the agent's new key"
    )]
    Malformed(String),
    /// Signing failed on the hub's side.
    #[error("the hub could not sign the certificate: {0}")]
    Sign(String),
}

/// An issued agent certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// Issues `id`'s certificate, valid for `lifetime` from `now`, for the key in `csr_der`.
pub fn issue_for_csr(
    ca: &HubCa,
    csr_der: &[u8],
    id: &SpiffeId,
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<Issued, CsrError> {
    if csr_der.is_empty() || csr_der.len() > MAX_CSR_BYTES {
        return Err(CsrError::Size);
    }
    let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(
        csr_der.to_vec(),
    ))
    .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let params = agent_params(id, now, lifetime).map_err(|e| CsrError::Sign(e.to_string()))?;
    let cert = params
        .signed_by(&csr.public_key, &ca.issuer)
        .map_err(|e| CsrError::Sign(e.to_string()))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        not_after: params.not_after.unix_timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData, SanType};

    fn ca() -> (tempfile::TempDir, HubCa) {
        let dir = tempfile::tempdir().unwrap();
        crate::identity::init_ca(&dir.path().join("pki"), &[]).unwrap();
        let ca = HubCa::load(&dir.path().join("pki")).unwrap();
        (dir, ca)
    }

    fn csr_asking_for(names: &[&str], uri: &str, key: &KeyPair) -> Vec<u8> {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.subject_alt_names
            .push(SanType::URI(uri.try_into().unwrap()));
        p.serialize_request(key).unwrap().der().to_vec()
    }

    #[test]
    fn the_certificate_carries_the_callers_identity_and_the_csrs_key_only() {
        let (_d, ca) = ca();
        let key = KeyPair::generate().unwrap();
        // The CSR asks for another tenant's identity and a DNS name: both ignored.
        let csr = csr_asking_for(
            &["evil.example"],
            "spiffe://fleetgate/tenant/tenant-b/cluster/west",
            &key,
        );
        let id = SpiffeId::new("fleetgate", "tenant-a", "east").unwrap();
        let now = OffsetDateTime::now_utc();
        let issued = issue_for_csr(&ca, &csr, &id, Duration::hours(24), now).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        assert_eq!(
            SpiffeId::from_certificate(&pem.contents, "fleetgate").unwrap(),
            id
        );
        let sans = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert_eq!(sans.len(), 1, "{sans:?}");
        assert_eq!(
            cert.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
        assert_eq!(
            issued.not_after,
            (now + Duration::hours(24)).unix_timestamp()
        );
        // Signed by the hub CA.
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.ca_pem.as_bytes()).unwrap();
        let ca_cert = ca_pem.parse_x509().unwrap();
        assert!(cert.verify_signature(Some(ca_cert.public_key())).is_ok());
    }

    #[test]
    fn malformed_csrs_are_refused() {
        let (_d, ca) = ca();
        let id = SpiffeId::new("fleetgate", "a", "c").unwrap();
        let now = OffsetDateTime::now_utc();
        let issue = |der: &[u8]| issue_for_csr(&ca, der, &id, Duration::hours(1), now);
        assert_eq!(issue(&[]).unwrap_err(), CsrError::Size);
        assert_eq!(
            issue(&vec![0x30; MAX_CSR_BYTES + 1]).unwrap_err(),
            CsrError::Size
        );
        assert!(matches!(issue(b"not der"), Err(CsrError::Malformed(_))));
        // A CSR whose signature does not match its key (one byte of the body changed).
        let key = KeyPair::generate().unwrap();
        let mut csr = csr_asking_for(&[], "spiffe://fleetgate/tenant/a/cluster/c", &key);
        let at = csr.len() / 3;
        csr[at] ^= 0x01;
        assert!(
            matches!(issue(&csr), Err(CsrError::Malformed(_))),
            "a tampered CSR must fail"
        );
        // A certificate is not a CSR.
        let cert = CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(issue(cert.der()), Err(CsrError::Malformed(_))));
    }
}
