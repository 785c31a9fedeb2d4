//! Admission of TLS material: a listener's `tls` block and the certificates the agent resolved
//! from its certificateRefs.
//!
//! Where it sits: inside step 5 (admit), called by `super::admit_gateway` for HTTPS and TLS
//! listeners. Everything here is untrusted input: PEM is parsed strictly (size limits, only
//! CERTIFICATE blocks in the chain, exactly one private key that matches the leaf), re-encoded by
//! the hub before it goes anywhere near Envoy, and every DNS name of the leaf must be a hostname
//! the tenant owns. A certificate problem does not reject the Gateway: it becomes the listener's
//! `problem` (ResolvedRefs=False, InvalidCertificateRef), so the Gateway's other listeners keep
//! working. No I/O; the one input from outside is the current time, read once per listener by
//! [`admit_listener_tls`] for the certificates' validity period (the checks take it as an
//! argument: [`admit_certificate_at`], [`check_validity`]).

use std::sync::Arc;

use fleetgate_proto::spoke::v1 as pb;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Policy, Rejection, check_k8s_name, check_owned, reject};
use crate::model::{BackendProblem, Certificate, ListenerTls, PrivateKeyPem, TlsMode};

/// The Gateway API reason of a listener whose certificateRefs cannot be used.
pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";

/// Largest PEM certificate chain accepted, in bytes.
pub const MAX_CHAIN_BYTES: usize = 64 * 1024;
/// Largest number of certificates in one chain.
pub const MAX_CHAIN_CERTS: usize = 8;
/// Largest PEM private key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 16 * 1024;
/// Largest number of certificateRefs on one listener.
pub const MAX_CERTIFICATE_REFS: usize = 8;
/// Most `tls.options` keys on one listener (the CRD's own limit).
pub const MAX_TLS_OPTIONS: usize = 16;
/// Largest number of DNS names in one leaf certificate.
pub const MAX_DNS_NAMES: usize = 64;

/// Admits the `tls` block of listener `listener` with protocol `protocol` ("HTTPS" / "TLS").
/// Structural errors (a mode the protocol cannot have, too many refs, bad names) reject the
/// Gateway; unusable certificates become [`ListenerTls::problem`].
pub fn admit_listener_tls(
    listener: &str,
    protocol: &str,
    tls: Option<&pb::ListenerTls>,
    policy: &Policy<'_>,
) -> Result<Option<ListenerTls>, Rejection> {
    let at = |m: String| format!("listener {listener:?}: {m}");
    if !matches!(protocol, "HTTPS" | "TLS") {
        if tls.is_some_and(|t| !t.certificates.is_empty() || !t.mode.is_empty()) {
            return reject(
                "ListenersNotValid",
                at(format!("protocol {protocol} takes no tls block; remove it")),
            );
        }
        return Ok(None);
    }
    let Some(tls) = tls else {
        return reject(
            "ListenersNotValid",
            at(format!("protocol {protocol} needs a tls block")),
        );
    };
    // tls.options: fleetgate implements none; the compiler refuses the listener alone. Bounded
    // like the CRD (16 keys) and kept as written for the message.
    if tls.options.len() > MAX_TLS_OPTIONS || tls.options.iter().any(|k| k.len() > 253) {
        return reject(
            "ListenersNotValid",
            at(format!(
                "at most {MAX_TLS_OPTIONS} tls.options of up to 253 characters"
            )),
        );
    }
    let options = tls.options.clone();
    let mode = match (protocol, tls.mode.as_str()) {
        ("HTTPS", "" | "Terminate") => TlsMode::Terminate,
        ("TLS", "Passthrough") => TlsMode::Passthrough,
        // Not served (the compiler refuses the listener alone, Accepted=False/UnsupportedValue,
        // as the Gateway API asks of implementations without TLSRouteModeTerminate), so the
        // Gateway's other listeners keep working. Its certificates are not even read.
        ("TLS", "" | "Terminate") => {
            return Ok(Some(ListenerTls {
                mode: TlsMode::Terminate,
                certificates: Vec::new(),
                problem: None,
                options,
            }));
        }
        (_, m) => {
            return reject(
                "ListenersNotValid",
                at(format!(
                    "tls.mode {:?} is not valid for protocol {protocol}",
                    m.chars().take(32).collect::<String>()
                )),
            );
        }
    };
    if tls.certificates.len() > MAX_CERTIFICATE_REFS {
        return reject(
            "ListenersNotValid",
            at(format!("at most {MAX_CERTIFICATE_REFS} certificateRefs")),
        );
    }
    for c in &tls.certificates {
        check_k8s_name("certificateRef namespace", &c.namespace, 63)?;
        check_k8s_name("certificateRef name", &c.name, 253)?;
    }
    if mode == TlsMode::Passthrough {
        return Ok(Some(ListenerTls {
            mode,
            certificates: Vec::new(),
            problem: None,
            options,
        }));
    }
    if tls.certificates.is_empty() {
        return Ok(Some(ListenerTls {
            mode,
            certificates: Vec::new(),
            problem: Some(BackendProblem {
                reason: INVALID_CERTIFICATE_REF.into(),
                message: "an HTTPS listener needs at least one tls.certificateRefs entry".into(),
            }),
            options,
        }));
    }
    let mut certificates = Vec::new();
    let mut problem = None;
    let now = unix_now();
    for c in &tls.certificates {
        let what = format!("certificateRef Secret {}/{}", c.namespace, c.name);
        if let Some(p) = &c.problem {
            let reason = match p.reason.as_str() {
                "RefNotPermitted" => "RefNotPermitted",
                _ => INVALID_CERTIFICATE_REF,
            };
            problem.get_or_insert(BackendProblem {
                reason: reason.into(),
                message: format!(
                    "{what}: {}",
                    p.message.chars().take(512).collect::<String>()
                ),
            });
            continue;
        }
        match admit_certificate_at(c, policy, now) {
            Ok(cert) => certificates.push(cert),
            Err(e) => {
                problem.get_or_insert(BackendProblem {
                    reason: INVALID_CERTIFICATE_REF.into(),
                    message: format!("{what}: {}", e.message),
                });
            }
        }
    }
    Ok(Some(ListenerTls {
        mode,
        certificates,
        problem,
        options,
    }))
}

/// Admits a TLSRoute: parentRefs, hostnames the tenant owns, rules and backends (whose endpoints
/// are checked like an HTTPRoute's).
pub fn admit_tls_route(
    meta: crate::model::Meta,
    t: &pb::TlsRoute,
    policy: &Policy<'_>,
) -> Result<crate::model::TlsRoute, Rejection> {
    if t.parent_refs.len() > super::MAX_PARENT_REFS
        || t.hostnames.len() > super::MAX_HOSTNAMES
        || t.rules.len() > super::MAX_RULES
    {
        return reject(
            "UnsupportedValue",
            format!(
                "at most {} parentRefs, {} hostnames and {} rules",
                super::MAX_PARENT_REFS,
                super::MAX_HOSTNAMES,
                super::MAX_RULES
            ),
        );
    }
    let parent_refs = super::admit_parent_refs(&t.parent_refs)?;
    let hostnames = super::admit_route_hostnames(&t.hostnames, policy)?;
    let mut rules = Vec::with_capacity(t.rules.len());
    for (i, r) in t.rules.iter().enumerate() {
        if r.backends.len() > super::MAX_BACKENDS {
            return reject(
                "UnsupportedValue",
                format!("rules[{i}]: at most {} backendRefs", super::MAX_BACKENDS),
            );
        }
        let name = if r.name.is_empty() {
            None
        } else {
            check_k8s_name("rule name", &r.name, 63)?;
            Some(r.name.clone())
        };
        let mut backends = Vec::with_capacity(r.backends.len());
        for b in &r.backends {
            backends.push(super::admit_backend(b, policy)?);
        }
        rules.push(crate::model::TlsRouteRule { name, backends });
    }
    Ok(crate::model::TlsRoute {
        meta,
        parent_refs,
        hostnames,
        rules,
    })
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses and checks one certificate and its key as of now; see [`admit_certificate_at`].
pub fn admit_certificate(
    c: &pb::Certificate,
    policy: &Policy<'_>,
) -> Result<Certificate, Rejection> {
    admit_certificate_at(c, policy, unix_now())
}

/// Parses and checks one certificate and its key at `now` (Unix seconds): PEM, key match, the
/// leaf's validity period, and DNS names the tenant owns. The message of an error says what is
/// wrong and what to change.
pub fn admit_certificate_at(
    c: &pb::Certificate,
    policy: &Policy<'_>,
    now: i64,
) -> Result<Certificate, Rejection> {
    let bad = |m: String| Rejection {
        reason: INVALID_CERTIFICATE_REF,
        message: m,
    };
    let parsed = parse_pem_pair(&c.cert_chain_pem, &c.private_key_pem).map_err(bad)?;
    check_validity(parsed.not_before, parsed.not_after, now).map_err(bad)?;
    for name in &parsed.dns_names {
        check_owned(name, policy).map_err(|e| {
            bad(format!(
                "the certificate names {name:?}, which this tenant may not serve ({}); issue a certificate only for hostnames the tenant owns",
                e.message
            ))
        })?;
    }
    Ok(Certificate {
        namespace: c.namespace.clone(),
        name: c.name.clone(),
        cert_chain_pem: parsed.chain_pem,
        private_key_pem: PrivateKeyPem(parsed.key_pem),
        dns_names: parsed.dns_names,
        serial: parsed.serial,
    })
}

/// A certificate chain and key that parsed and match, re-encoded by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPair {
    pub chain_pem: String,
    pub key_pem: String,
    /// Lower-case DNS SANs of the leaf.
    pub dns_names: Vec<String>,
    /// Hex serial of the leaf.
    pub serial: String,
    /// The leaf's validity period, Unix seconds (inclusive).
    pub not_before: i64,
    pub not_after: i64,
}

/// A Unix time as RFC 3339 UTC (`2026-01-01T00:00:00Z`), for messages.
fn rfc3339(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{t} (Unix time)"),
    }
}

/// Whether a leaf valid from `not_before` to `not_after` (inclusive, Unix seconds) may be served
/// at `now`; the error says which bound is violated and what to do.
pub fn check_validity(not_before: i64, not_after: i64, now: i64) -> Result<(), String> {
    if now < not_before {
        return Err(format!(
            "the certificate is not valid yet: its validity starts at {} (now {}); use a certificate that is valid now, or check the issuer's clock",
            rfc3339(not_before),
            rfc3339(now)
        ));
    }
    if now > not_after {
        return Err(format!(
            "the certificate expired at {} (now {}); renew it and put the new tls.crt and tls.key into the Secret",
            rfc3339(not_after),
            rfc3339(now)
        ));
    }
    Ok(())
}

/// Strict parse of a PEM chain (`tls.crt`) and key (`tls.key`). Pure; errors say what is wrong.
pub fn parse_pem_pair(chain: &[u8], key: &[u8]) -> Result<ParsedPair, String> {
    if chain.is_empty() {
        return Err("tls.crt is empty".into());
    }
    if chain.len() > MAX_CHAIN_BYTES {
        return Err(format!("tls.crt is over {MAX_CHAIN_BYTES} bytes"));
    }
    if key.is_empty() {
        return Err("tls.key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("tls.key is over {MAX_KEY_BYTES} bytes"));
    }
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(chain) {
        let c = c.map_err(|e| format!("tls.crt is not valid PEM: {e}"))?;
        certs.push(c.into_owned());
        if certs.len() > MAX_CHAIN_CERTS {
            return Err(format!(
                "tls.crt has more than {MAX_CHAIN_CERTS} certificates"
            ));
        }
    }
    if certs.is_empty() {
        return Err("tls.crt holds no PEM CERTIFICATE block".into());
    }
    for (i, der) in certs.iter().enumerate() {
        match X509Certificate::from_der(der.as_ref()) {
            Ok(([], _)) => {}
            _ => {
                return Err(format!(
                    "tls.crt certificate #{i} is not a valid X.509 certificate"
                ));
            }
        }
    }
    let (_, leaf) = X509Certificate::from_der(certs[0].as_ref())
        .map_err(|_| "tls.crt: the first certificate is not valid X.509".to_string())?;
    let mut dns_names = Vec::new();
    let san_extension = matches!(leaf.subject_alternative_name(), Ok(Some(_)));
    match leaf.subject_alternative_name() {
        Ok(Some(san)) => {
            for n in &san.value.general_names {
                if let GeneralName::DNSName(d) = n {
                    let d = d.to_ascii_lowercase();
                    if !(crate::model::policy::is_hostname_pattern(&d) && d.contains('.')) {
                        return Err(format!(
                            "the certificate's DNS name {:?} is not a fully qualified hostname or *.wildcard",
                            d.chars().take(64).collect::<String>()
                        ));
                    }
                    dns_names.push(d);
                }
            }
        }
        Ok(None) => {}
        Err(_) => return Err("the certificate's subjectAltName extension is malformed".into()),
    }
    // Without a subjectAltName extension, legacy clients still match the subject's common
    // name: when it looks like a hostname it is a name of the certificate (and must be owned,
    // `admit_certificate_at`). With the extension (even without DNS names: the upstream
    // conformance suite's certificates carry only a URI) clients ignore the common name.
    if !san_extension {
        for cn in leaf.subject().iter_common_name() {
            let cn = cn
                .as_str()
                .map_err(|_| "the certificate's subject common name is not a string".to_string())?
                .to_ascii_lowercase();
            if crate::model::policy::is_hostname_pattern(&cn) && cn.contains('.') {
                dns_names.push(cn);
            }
        }
    }
    dns_names.sort();
    dns_names.dedup();
    // A certificate that names no hostname is accepted: it impersonates nobody, and the
    // Gateway API's conformance suite serves such certificates on hostname-less listeners.
    if dns_names.len() > MAX_DNS_NAMES {
        return Err(format!(
            "the certificate has more than {MAX_DNS_NAMES} DNS names"
        ));
    }
    let serial = leaf.raw_serial_as_string().replace(':', "");
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let key_der = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
        "tls.key holds no valid PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string()
    })?;
    let label = match &key_der {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    let key_pem = pem_encode(label, key_der.secret_der());
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    CertifiedKey::from_der(certs.clone(), key_der, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            "tls.key does not belong to the first certificate of tls.crt".to_string()
        }
        _ => {
            "tls.key is not a supported private key (RSA, ECDSA P-256/P-384 or Ed25519)".to_string()
        }
    })?;
    let chain_pem = certs
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
        .collect();
    Ok(ParsedPair {
        chain_pem,
        key_pem,
        dns_names,
        serial,
        not_before,
        not_after,
    })
}

/// PEM armour: base64 in 64-column lines between BEGIN/END `label` lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests;
