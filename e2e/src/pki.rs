//! Test PKI: small certificate authorities and the certificates the harness hands out.
//!
//! Used for the tenant API servers (serving cert, client CA, admin and agent client certs,
//! service-account signing key) and for certificates the hub must refuse (a client cert from a
//! CA the hub does not know). The hub's own PKI is made by `fleetgate-hub ca`, not here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertAndKey {
    /// Writes `<dir>/<name>.crt` and `<dir>/<name>.key`; returns (cert path, key path).
    pub fn write(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&crt, &self.cert_pem).with_context(|| format!("writing {crt:?}"))?;
        std::fs::write(&key, &self.key_pem).with_context(|| format!("writing {key:?}"))?;
        Ok((crt, key))
    }

    /// A `kubernetes.io/tls` Secret `namespace/name` holding this certificate and key (YAML).
    pub fn secret_yaml(&self, namespace: &str, name: &str) -> String {
        let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
            indent(&self.cert_pem),
            indent(&self.key_pem)
        )
    }
}

/// What a leaf certificate says about its holder.
#[derive(Clone, Debug, Default)]
pub struct Leaf {
    pub common_name: String,
    /// Subject O= values (Kubernetes groups).
    pub organizations: Vec<String>,
    /// IP addresses or DNS names.
    pub sans: Vec<String>,
    /// URI SANs (e.g. SPIFFE IDs).
    pub uri_sans: Vec<String>,
    pub server_auth: bool,
    pub client_auth: bool,
    /// Valid only in January 2020: an expired certificate, for tests that must see it refused.
    pub expired: bool,
}

impl Leaf {
    /// A client certificate for user `cn` in `groups`.
    pub fn client(cn: &str, groups: &[&str]) -> Self {
        Self {
            common_name: cn.to_string(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
            client_auth: true,
            ..Self::default()
        }
    }

    /// A serving certificate for the given IPs / DNS names.
    pub fn server(cn: &str, sans: &[&str]) -> Self {
        Self {
            common_name: cn.to_string(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            server_auth: true,
            ..Self::default()
        }
    }
}

/// A certificate authority that lives for one test.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA named `cn`.
    pub fn new(cn: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA (e.g. the hub's, from its pki dir) from its certificate and key, PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("the CA key")?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("the CA certificate")?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes the CA certificate to `path`.
    pub fn write_cert(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, &self.cert_pem).with_context(|| format!("writing {path:?}"))
    }

    /// Issues a leaf certificate with a fresh key.
    pub fn issue(&self, leaf: &Leaf) -> anyhow::Result<CertAndKey> {
        let mut params = CertificateParams::new(leaf.sans.clone())?;
        for uri in &leaf.uri_sans {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.common_name.as_str());
        for o in &leaf.organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, o.as_str());
        }
        params.is_ca = IsCa::ExplicitNoCa;
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 31);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if leaf.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A fresh key pair as (private key PKCS#8 PEM, public key PEM), e.g. for service-account
/// token signing and verification.
pub fn key_pair_pem() -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_subject_and_sans() {
        let ca = Ca::new("test-ca").unwrap();
        let mut leaf = Leaf::client("admin", &["system:masters"]);
        leaf.uri_sans = vec!["spiffe://fleetgate/tenant/a/cluster/c1".into()];
        leaf.sans = vec!["127.0.0.1".into(), "localhost".into()];
        let issued = ca.issue(&leaf).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let subject = cert.subject().to_string();
        assert!(
            subject.contains("CN=admin") && subject.contains("O=system:masters"),
            "{subject}"
        );
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name().unwrap().unwrap().value
        );
        for want in [
            "spiffe://fleetgate/tenant/a/cluster/c1",
            "[127, 0, 0, 1]",
            "localhost",
        ] {
            assert!(sans.contains(want), "{want} missing in {sans}");
        }
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem().as_bytes()).unwrap();
        assert_eq!(cert.issuer(), ca_pem.parse_x509().unwrap().subject());
        assert!(issued.key_pem.contains("PRIVATE KEY"));
    }
}
