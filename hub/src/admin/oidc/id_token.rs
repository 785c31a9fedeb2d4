//! An OpenID Connect ID token (a compact JWS) checked as the code flow's client must (OpenID
//! Connect Core 3.1.3.7): the signature by a key of the issuer's JWKS, `RS256` or `ES256` only
//! (chosen by the key, never by the token alone: `none` and the HMAC family are refused, so a
//! public key can never serve as an HMAC secret), `iss` equal to the configured issuer, `aud`
//! naming this client (and `azp` this client when there are several audiences), `exp` in the
//! future, `nonce` equal to the one this login sent. Pure: keys and time are arguments.
//!
//! Key sets are parsed by `fleetgate_mcp_policy::jwks` and signatures checked by
//! `fleetgate_mcp_policy::jws`, as for the MCP authentication.

use fleetgate_mcp_policy::jwks::{Alg, Jwk};
use fleetgate_mcp_policy::jws::{self, JwsError};
use serde_json::Value;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY: u64 = 60;
/// The longest ID token read.
pub const MAX_TOKEN: usize = jws::MAX_TOKEN;

/// Why an ID token is refused. Shown to the operator on the login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the provider's ID token is not a signed JWT")]
    Malformed,
    #[error(
        "the provider's ID token is signed with an algorithm the hub refuses (only RS256 and ES256)"
    )]
    Algorithm,
    #[error("no key of the provider's key set (jwks_uri) matches the ID token's kid and alg")]
    UnknownKey,
    #[error("the provider's ID token signature does not verify")]
    Signature,
    #[error("the provider's ID token has expired (or has no exp): check the hub's clock")]
    Expired,
    #[error("the ID token's iss is not adminOidc.issuer")]
    Issuer,
    #[error("the ID token is not for this hub (aud/azp is not adminOidc.clientId)")]
    Audience,
    #[error("the ID token's nonce is not this login's: start the login again")]
    Nonce,
}

/// What the token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: u64,
}

/// The claims of `token` when it is a valid ID token for `expected`, signed by one of `keys`.
pub fn verify(keys: &[Jwk], token: &str, expected: Expected<'_>) -> Result<Value, IdTokenError> {
    let accepts = |alg| matches!(alg, Alg::Rs256 | Alg::Es256);
    let claims = jws::verify(keys, token, accepts).map_err(|e| match e {
        JwsError::Malformed => IdTokenError::Malformed,
        JwsError::Algorithm => IdTokenError::Algorithm,
        JwsError::NoKey => IdTokenError::UnknownKey,
        JwsError::Signature => IdTokenError::Signature,
    })?;
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(IdTokenError::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let azp = claims.get("azp").and_then(Value::as_str);
    if !audiences.contains(&expected.client_id)
        || (audiences.len() > 1 && azp != Some(expected.client_id))
        || azp.is_some_and(|a| a != expected.client_id)
    {
        return Err(IdTokenError::Audience);
    }
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if (expected.now as f64) < exp + LEEWAY as f64 => {}
        _ => return Err(IdTokenError::Expired),
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_f64)
        && iat > (expected.now + LEEWAY) as f64
    {
        return Err(IdTokenError::Expired);
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !super::flow::same(nonce.as_bytes(), expected.nonce.as_bytes()) {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn enc(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    struct Signer {
        pair: EcdsaKeyPair,
    }

    impl Signer {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Self {
                pair: EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                    &rng,
                )
                .unwrap(),
            }
        }

        fn keys(&self, kid: &str) -> Vec<Jwk> {
            let p = self.pair.public_key().as_ref();
            let set = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                "x": enc(&p[1..33]), "y": enc(&p[33..65])}]});
            fleetgate_mcp_policy::jwks::parse("jwks", &set.to_string()).unwrap()
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                enc(header.to_string().as_bytes()),
                enc(claims.to_string().as_bytes())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", enc(sig.as_ref()))
        }
    }

    fn claims() -> Value {
        json!({"iss": "https://op.example/", "aud": "hub", "sub": "u1", "nonce": "n-1",
            "exp": NOW + 300, "iat": NOW, "email": "alice@example.test"})
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://op.example/",
            client_id: "hub",
            nonce: "n-1",
            now: NOW,
        }
    }

    fn es256() -> Value {
        json!({"alg": "ES256", "kid": "k1"})
    }

    #[test]
    fn a_token_signed_by_the_issuer_for_this_client_and_login_is_accepted() {
        let s = Signer::new();
        let c = verify(&s.keys("k1"), &s.sign(&es256(), &claims()), expected()).unwrap();
        assert_eq!(c["email"], "alice@example.test");
        // Several audiences: azp must name this client.
        let mut many = claims();
        many["aud"] = json!(["hub", "other"]);
        many["azp"] = json!("hub");
        assert!(verify(&s.keys("k1"), &s.sign(&es256(), &many), expected()).is_ok());
    }

    #[test]
    fn each_failure_is_refused_for_its_reason() {
        let s = Signer::new();
        let keys = s.keys("k1");
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            s.sign(&es256(), &c)
        };
        let cases: Vec<(String, IdTokenError)> = vec![
            (
                with(&|c| c["iss"] = json!("https://evil.example/")),
                IdTokenError::Issuer,
            ),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("iss");
                }),
                IdTokenError::Issuer,
            ),
            (
                with(&|c| c["aud"] = json!("another-client")),
                IdTokenError::Audience,
            ),
            (
                with(&|c| c["aud"] = json!(["hub", "other"])),
                IdTokenError::Audience,
            ),
            (with(&|c| c["azp"] = json!("other")), IdTokenError::Audience),
            (
                with(&|c| c["exp"] = json!(NOW - LEEWAY - 1)),
                IdTokenError::Expired,
            ),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                IdTokenError::Expired,
            ),
            (
                with(&|c| c["iat"] = json!(NOW + 3600)),
                IdTokenError::Expired,
            ),
            (with(&|c| c["nonce"] = json!("n-2")), IdTokenError::Nonce),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
                IdTokenError::Nonce,
            ),
            // A key id the issuer never published.
            (
                s.sign(&json!({"alg": "ES256", "kid": "k9"}), &claims()),
                IdTokenError::UnknownKey,
            ),
            // alg none, with no signature at all.
            (
                format!(
                    "{}.{}.",
                    enc(br#"{"alg":"none"}"#),
                    enc(claims().to_string().as_bytes())
                ),
                IdTokenError::Algorithm,
            ),
            // HS256 "signed" with the public key's bytes (the key-confusion attack).
            (
                s.sign(&json!({"alg": "HS256", "kid": "k1"}), &claims()),
                IdTokenError::Algorithm,
            ),
            // An algorithm the MCP authentication takes but an ID token may not use here.
            (
                s.sign(&json!({"alg": "ES384", "kid": "k1"}), &claims()),
                IdTokenError::Algorithm,
            ),
            // RS256 claimed, but the issuer's key is an EC key.
            (
                s.sign(&json!({"alg": "RS256", "kid": "k1"}), &claims()),
                IdTokenError::UnknownKey,
            ),
            ("a.b".into(), IdTokenError::Malformed),
            ("x".repeat(MAX_TOKEN + 1), IdTokenError::Malformed),
        ];
        for (token, want) in cases {
            assert_eq!(verify(&keys, &token, expected()), Err(want), "{token}");
        }
        // Another key, same kid: the signature does not verify.
        let other = Signer::new();
        assert_eq!(
            verify(&keys, &other.sign(&es256(), &claims()), expected()),
            Err(IdTokenError::Signature)
        );
        // Claims altered after signing.
        let t = s.sign(&es256(), &claims());
        let mut parts: Vec<&str> = t.split('.').collect();
        let mut raised = claims();
        raised["email"] = json!("root@example.test");
        let body = enc(raised.to_string().as_bytes());
        parts[1] = &body;
        assert_eq!(
            verify(&keys, &parts.join("."), expected()),
            Err(IdTokenError::Signature)
        );
    }
}
