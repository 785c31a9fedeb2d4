use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::test_support::Fixture;

/// A self-signed certificate for `names` and its key, both PEM.
fn pair(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn cert_msg(names: &[&str]) -> pb::Certificate {
    let (c, k) = pair(names);
    pb::Certificate {
        namespace: "default".into(),
        name: "web-tls".into(),
        cert_chain_pem: c.into_bytes(),
        private_key_pem: k.into_bytes(),
        problem: None,
    }
}

#[test]
fn pem_encode_matches_rfc4648_vectors() {
    for (input, b64) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        let want = if b64.is_empty() {
            "-----BEGIN X-----\n-----END X-----\n".to_string()
        } else {
            format!("-----BEGIN X-----\n{b64}\n-----END X-----\n")
        };
        assert_eq!(pem_encode("X", input.as_bytes()), want, "{input:?}");
    }
    let long = pem_encode("X", &[0u8; 100]);
    assert!(long.lines().all(|l| l.len() <= 64), "{long}");
}

#[test]
fn valid_pair_parses_and_is_reencoded() {
    let (c, k) = pair(&["App.A.example", "*.a.example"]);
    let p = parse_pem_pair(c.as_bytes(), k.as_bytes()).unwrap();
    assert_eq!(p.dns_names, vec!["*.a.example", "app.a.example"]);
    assert!(!p.serial.is_empty() && p.serial.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(p.chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(p.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    // Re-encoding is faithful: parsing the hub's own PEM gives the same result.
    let again = parse_pem_pair(p.chain_pem.as_bytes(), p.key_pem.as_bytes()).unwrap();
    assert_eq!(again, p);
}

#[test]
fn hostile_pem_is_refused_with_a_reason() {
    let (c, k) = pair(&["app.a.example"]);
    let (_, other_key) = pair(&["app.a.example"]);
    let truncated = c[..c.len() / 2].to_string() + "\n-----END CERTIFICATE-----\n";
    let junk_der = pem_encode("CERTIFICATE", b"definitely not DER");
    let many = c.repeat(MAX_CHAIN_CERTS + 1);
    let huge = "A".repeat(MAX_CHAIN_BYTES + 1);
    let cases: Vec<(&str, String, String, &str)> = vec![
        ("empty chain", String::new(), k.clone(), "tls.crt is empty"),
        ("empty key", c.clone(), String::new(), "tls.key is empty"),
        ("oversized chain", huge, k.clone(), "over"),
        (
            "key in place of the chain",
            k.clone(),
            k.clone(),
            "no PEM CERTIFICATE",
        ),
        (
            "text without PEM",
            "hello".into(),
            k.clone(),
            "no PEM CERTIFICATE",
        ),
        ("truncated base64", truncated, k.clone(), "tls.crt"),
        ("PEM around junk", junk_der, k.clone(), "not a valid X.509"),
        ("too many certificates", many, k.clone(), "more than"),
        (
            "chain in place of the key",
            c.clone(),
            c.clone(),
            "no valid PEM private key",
        ),
        (
            "key of another certificate",
            c.clone(),
            other_key,
            "does not belong",
        ),
    ];
    for (name, chain, key, want) in cases {
        let err = parse_pem_pair(chain.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            !err.contains("PRIVATE KEY-----"),
            "{name}: the key leaked into {err}"
        );
    }
}

/// A certificate without DNS subjectAltNames names no hostname and is accepted (upstream
/// `GatewaySecretReferenceGrantSpecific` / `AllInNamespace`: the suite's certificate has only
/// a URI SAN `*`); without any SAN extension its common name, when it looks like a hostname,
/// counts as a name and must be owned (legacy clients match it).
#[test]
fn certificates_without_dns_names_name_nothing_unless_their_common_name_is_a_hostname() {
    let f = Fixture::new();
    let make = |cn: Option<&str>, uri: Option<&str>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        if let Some(cn) = cn {
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        if let Some(u) = uri {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(u.try_into().unwrap()));
        }
        let cert = params.self_signed(&key).unwrap();
        pb::Certificate {
            namespace: "default".into(),
            name: "web-tls".into(),
            cert_chain_pem: cert.pem().into_bytes(),
            private_key_pem: key.serialize_pem().into_bytes(),
            problem: None,
        }
    };
    /// Common name, URI SAN, Ok(names) or Err(part of the message).
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Result<Vec<&'a str>, &'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        // The upstream suite's certificate: CN "default", one URI SAN "*".
        (Some("default"), Some("*"), Ok(vec![])),
        // No SAN extension, a common name that is no hostname.
        (None, None, Ok(vec![])),
        (Some("default"), None, Ok(vec![])),
        // No SAN extension: a hostname in the common name is a name of the certificate.
        (Some("app.a.example"), None, Ok(vec!["app.a.example"])),
        (Some("app.b.example"), None, Err("may not serve")),
        // With a SAN extension, clients ignore the common name.
        (Some("app.b.example"), Some("spiffe://x/y"), Ok(vec![])),
    ];
    for (cn, uri, want) in cases {
        let got = admit_certificate(&make(cn, uri), &f.policy());
        match (want, got) {
            (Ok(names), Ok(c)) => assert_eq!(c.dns_names, names, "{cn:?} {uri:?}"),
            (Err(part), Err(e)) => {
                assert_eq!(e.reason, INVALID_CERTIFICATE_REF);
                assert!(e.message.contains(part), "{cn:?} {uri:?}: {}", e.message);
            }
            (want, got) => panic!("{cn:?} {uri:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn certificate_names_must_be_owned_by_the_tenant() {
    let f = Fixture::new();
    // (SANs, accepted?)
    let cases: &[(&[&str], bool)] = &[
        (&["app.a.example"], true),
        (&["*.a.example"], true),
        (&["shop.example", "x.y.a.example"], true),
        (&["app.b.example"], false),
        (&["app.a.example", "evil.c.example"], false),
        (&["*.example"], false),
        (&["a.example"], false),
    ];
    for (sans, ok) in cases {
        let got = admit_certificate(&cert_msg(sans), &f.policy());
        match (ok, got) {
            (true, Ok(c)) => {
                assert_eq!(c.name, "web-tls");
                assert_eq!(c.dns_names.len(), sans.len(), "{sans:?}");
            }
            (false, Err(e)) => {
                assert_eq!(e.reason, INVALID_CERTIFICATE_REF, "{sans:?}");
                assert!(
                    e.message.contains("may not serve"),
                    "{sans:?}: {}",
                    e.message
                );
            }
            (ok, got) => panic!("{sans:?}: want accepted={ok}, got {got:?}"),
        }
    }
}

#[test]
fn listener_tls_table() {
    let f = Fixture::new();
    let p = f.policy();
    let tls = |mode: &str, certs: Vec<pb::Certificate>| pb::ListenerTls {
        mode: mode.into(),
        certificates: certs,
        ..Default::default()
    };
    let problem = |reason: &str| pb::Certificate {
        namespace: "default".into(),
        name: "gone".into(),
        problem: Some(pb::BackendProblem {
            reason: reason.into(),
            message: "Secret default/gone not found".into(),
        }),
        ..Default::default()
    };
    // Gateway-level rejections.
    for (protocol, t, want) in [
        ("HTTPS", None, "needs a tls block"),
        (
            "HTTPS",
            Some(tls("Passthrough", vec![])),
            "not valid for protocol HTTPS",
        ),
        ("HTTP", Some(tls("Terminate", vec![])), "takes no tls block"),
    ] {
        let err = admit_listener_tls("l", protocol, t.as_ref(), &p).unwrap_err();
        assert_eq!(err.reason, "ListenersNotValid", "{protocol} {want}");
        assert!(err.message.contains(want), "{protocol}: {}", err.message);
    }
    // TLS in Terminate mode (upstream `TLSRouteListenerTerminateNotSupported`): admitted as is,
    // certificates unread, for the compiler to refuse the listener alone (UnsupportedValue).
    for mode in ["Terminate", ""] {
        let t = admit_listener_tls("l", "TLS", Some(&tls(mode, vec![])), &p)
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.mode, t.certificates.len(), t.problem),
            (TlsMode::Terminate, 0, None),
            "{mode:?}"
        );
    }
    // HTTP without tls: nothing.
    assert_eq!(admit_listener_tls("l", "HTTP", None, &p).unwrap(), None);
    // Passthrough: no certificates needed.
    let pt = admit_listener_tls("l", "TLS", Some(&tls("Passthrough", vec![])), &p)
        .unwrap()
        .unwrap();
    assert_eq!((pt.mode, pt.problem), (TlsMode::Passthrough, None));
    // Listener-level problems: (certs, reason, message words)
    let cases: Vec<(Vec<pb::Certificate>, Option<&str>, &str)> = vec![
        (vec![cert_msg(&["app.a.example"])], None, ""),
        (vec![], Some(INVALID_CERTIFICATE_REF), "at least one"),
        (
            vec![problem("InvalidCertificateRef")],
            Some(INVALID_CERTIFICATE_REF),
            "default/gone not found",
        ),
        (
            vec![problem("RefNotPermitted")],
            Some("RefNotPermitted"),
            "not found",
        ),
        (
            vec![cert_msg(&["app.b.example"])],
            Some(INVALID_CERTIFICATE_REF),
            "may not serve",
        ),
        (
            vec![cert_msg(&["app.a.example"]), problem("Whatever")],
            Some(INVALID_CERTIFICATE_REF),
            "default/gone",
        ),
    ];
    for (certs, reason, words) in cases {
        let n = certs.len();
        let got = admit_listener_tls("l", "HTTPS", Some(&tls("", certs)), &p)
            .unwrap()
            .unwrap();
        assert_eq!(got.mode, TlsMode::Terminate);
        assert_eq!(
            got.problem.as_ref().map(|p| p.reason.as_str()),
            reason,
            "{words}"
        );
        if let Some(pr) = &got.problem {
            assert!(pr.message.contains(words), "{}", pr.message);
        } else {
            assert_eq!(got.certificates.len(), n);
        }
    }
}

#[test]
fn validity_table() {
    // (not_before, not_after, now) -> error words (None: valid)
    let day = 86_400;
    let t0 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let cases = [
        (t0 - day, t0 + day, t0, None),
        (t0, t0, t0, None),
        (
            t0 - 2 * day,
            t0 - day,
            t0,
            Some("expired at 2025-12-31T00:00:00Z"),
        ),
        (
            t0 + day,
            t0 + 2 * day,
            t0,
            Some("not valid yet: its validity starts at 2026-01-02T00:00:00Z"),
        ),
    ];
    for (nb, na, now, want) in cases {
        match (check_validity(nb, na, now), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => {
                assert!(e.contains(w), "{e}");
                assert!(e.contains("(now 2026-01-01T00:00:00Z)"), "{e}");
            }
            (got, want) => panic!("{nb} {na} {now}: got {got:?}, want {want:?}"),
        }
    }
}

/// A self-signed certificate for `app.a.example` valid from `not_before` to `not_after`.
fn dated_msg(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> pb::Certificate {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["app.a.example".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    pb::Certificate {
        namespace: "default".into(),
        name: "web-tls".into(),
        cert_chain_pem: cert.pem().into_bytes(),
        private_key_pem: key.serialize_pem().into_bytes(),
        problem: None,
    }
}

#[test]
fn expired_not_yet_valid_and_mismatched_certificates_make_the_listener_invalid() {
    let f = Fixture::new();
    let p = f.policy();
    let mismatched = {
        let mut m = cert_msg(&["app.a.example"]);
        m.private_key_pem = cert_msg(&["app.a.example"]).private_key_pem;
        m
    };
    // (certificate, words of the listener's problem)
    let cases = [
        (
            dated_msg((2020, 1, 1), (2021, 1, 1)),
            "certificateRef Secret default/web-tls: the certificate expired at 2021-01-01T00:00:00Z",
        ),
        (
            dated_msg((2999, 1, 1), (3000, 1, 1)),
            "certificateRef Secret default/web-tls: the certificate is not valid yet: its validity starts at 2999-01-01T00:00:00Z",
        ),
        (
            mismatched,
            "certificateRef Secret default/web-tls: tls.key does not belong to the first certificate",
        ),
    ];
    for (cert, words) in cases {
        let tls = pb::ListenerTls {
            mode: String::new(),
            certificates: vec![cert],
            ..Default::default()
        };
        let got = admit_listener_tls("l", "HTTPS", Some(&tls), &p)
            .unwrap()
            .unwrap();
        let problem = got.problem.expect("a problem");
        assert_eq!(problem.reason, INVALID_CERTIFICATE_REF, "{words}");
        assert!(problem.message.contains(words), "{}", problem.message);
        assert!(got.certificates.is_empty(), "{words}");
    }
    // A certificate valid now is admitted, and the same one checked at a time after its end is
    // refused.
    let current = dated_msg((2020, 1, 1), (4000, 1, 1));
    assert!(admit_certificate(&current, &p).is_ok());
    let later = 64_060_675_200; // 4000-01-02T00:00:00Z
    let e = admit_certificate_at(&current, &p, later).unwrap_err();
    assert!(
        e.message.contains("expired at 4000-01-01T00:00:00Z"),
        "{}",
        e.message
    );
}
