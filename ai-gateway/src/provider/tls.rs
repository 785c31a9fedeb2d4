//! TLS to providers: backends with `tls` (external providers such as `api.openai.com`) are
//! reached over HTTPS, the certificate verified for the backend's `host` against the system's
//! trust roots plus the operator's own (`--upstream-ca`, a PEM bundle for a private CA).
//! Without `tls` a backend is plain HTTP (a model server inside the tenant's cluster).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why the trust roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The `--upstream-ca` file could not be read or holds no certificate.
    #[error("--upstream-ca {path}: {why}")]
    Roots { path: String, why: String },
    /// The TLS library refused the configuration.
    #[error("TLS client configuration: {0}")]
    Config(String),
}

/// The PEM certificates of `path` (every `CERTIFICATE` block).
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |why: String| TlsError::Roots {
        path: path.display().to_string(),
        why,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate bundle ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no CERTIFICATE block; give the CA certificate(s) in PEM".to_string(),
        ));
    }
    Ok(certs)
}

/// The client configuration: the system's roots (when it has any) and `extra`.
pub fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "reading the system's trust roots");
    }
    let (system, _) = roots.add_parsable_certificates(native.certs);
    let (operator, ignored) = roots.add_parsable_certificates(extra.iter().cloned());
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "--upstream-ca certificates that are not valid roots were ignored"
        );
    }
    tracing::debug!(system, operator, "trust roots for TLS to providers");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What a failed upstream connection tells the client: the innermost cause (a refused
/// connection, or why the certificate was not trusted), never more than one line.
pub fn connect_detail(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = text.lines().next().unwrap_or_default();
    if text.contains("certificate") || text.contains("handshake") || text.contains("tls") {
        format!("TLS to the provider failed: {text}")
    } else {
        format!("connection failed: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused_with_what_to_give() {
        let dir = std::env::temp_dir().join(format!("fg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = read_roots(&empty).unwrap_err().to_string();
        assert!(e.contains("holds no CERTIFICATE block"), "{e}");
        let e = read_roots(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--upstream-ca "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
