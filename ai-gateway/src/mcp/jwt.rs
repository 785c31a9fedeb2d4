//! A client's JWT (RFC 7519, compact JWS) checked against an MCP backend's
//! `authentication` ([`JwtAuth`]): the signature by a key of the tenant's own key set, the
//! algorithm chosen by the key and never by the token alone (`alg: none` and the HMAC family
//! are refused outright, so a public key can never be used as an HMAC secret), `exp` required
//! and `nbf` honoured (with [`LEEWAY`] of clock skew), `iss` equal to the issuer, `aud`
//! naming one of the audiences when any are set. Pure: the time is an argument.

use fleetgate_mcp_policy::jws::{self, JwsError};
use serde_json::Value;

use crate::config::mcp_auth::JwtAuth;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 60;
/// The longest token read.
pub const MAX_TOKEN: usize = jws::MAX_TOKEN;

/// Why a token is refused. The text is safe to send the client (no key, no claim value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a signed JWT (header.payload.signature, base64url JSON)")]
    Malformed,
    #[error(
        "the token's alg is not accepted (none, HS256 and other shared-secret algorithms never are)"
    )]
    Algorithm,
    #[error("no key of this backend's key set verifies the token's alg and kid")]
    NoKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has no exp, or has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's iss is not this backend's issuer")]
    Issuer,
    #[error("the token's aud names none of this backend's audiences")]
    Audience,
}

/// The claims of `token` when `auth` accepts it at `now` (seconds since the epoch).
pub fn verify(auth: &JwtAuth, token: &str, now: u64) -> Result<Value, JwtError> {
    let claims = jws::verify(&auth.keys, token, |_| true).map_err(|e| match e {
        JwsError::Malformed => JwtError::Malformed,
        JwsError::Algorithm => JwtError::Algorithm,
        JwsError::NoKey => JwtError::NoKey,
        JwsError::Signature => JwtError::Signature,
    })?;
    let seconds = |name: &str| claims.get(name).and_then(Value::as_f64);
    match seconds("exp") {
        Some(exp) if (now as f64) < exp + LEEWAY as f64 => {}
        _ => return Err(JwtError::Expired),
    }
    if let Some(nbf) = seconds("nbf")
        && (now + LEEWAY) as f64 <= nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(auth.issuer.as_str()) {
        return Err(JwtError::Issuer);
    }
    if !auth.audiences.is_empty() {
        let names = |a: &str| auth.audiences.iter().any(|x| x == a);
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => names(a),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(names),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Audience);
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mcp_auth::AuthMode;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn enc(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    struct Es256 {
        pair: EcdsaKeyPair,
        kid: &'static str,
    }

    impl Es256 {
        fn new(kid: &'static str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self { pair, kid }
        }

        fn jwk(&self) -> Value {
            let p = self.pair.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "x": enc(&p[1..33]), "y": enc(&p[33..65])})
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

        fn token(&self, claims: &Value) -> String {
            self.sign(
                &json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}),
                claims,
            )
        }
    }

    fn auth(keys: &[Value], audiences: &[&str]) -> JwtAuth {
        JwtAuth {
            issuer: "https://idp.a.example".into(),
            audiences: audiences.iter().map(|s| (*s).to_string()).collect(),
            keys: fleetgate_mcp_policy::jwks::parse("jwks", &json!({ "keys": keys }).to_string())
                .unwrap(),
            mode: AuthMode::Strict,
        }
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.a.example", "aud": "tools-a", "sub": "alice", "exp": NOW + 300})
    }

    fn with(f: impl FnOnce(&mut Value)) -> Value {
        let mut c = claims();
        f(&mut c);
        c
    }

    /// Issue 12's attacks on authentication, and the ordinary failures, one row each.
    #[test]
    fn tokens_are_accepted_only_from_this_tenants_keys_issuer_and_audience() {
        let a = Es256::new("a1");
        let other_tenant = Es256::new("b1");
        let a_auth = auth(&[a.jwk()], &["tools-a"]);
        let header = |alg: &str| json!({"alg": alg, "kid": "a1"});
        // HS256 with the tenant's public key (as published in its JWKS) as the secret.
        let public = a.jwk().to_string();
        let hs_input = format!(
            "{}.{}",
            enc(header("HS256").to_string().as_bytes()),
            enc(claims().to_string().as_bytes())
        );
        let hs = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()),
            hs_input.as_bytes(),
        );
        let good = a.token(&claims());
        let (head, rest) = good.split_once('.').unwrap();
        let (body, sig) = rest.split_once('.').unwrap();
        let altered = format!(
            "{head}.{}.{sig}",
            enc(with(|c| c["sub"] = json!("admin")).to_string().as_bytes())
        );
        let mut flipped = URL_SAFE_NO_PAD.decode(sig).unwrap();
        flipped[10] ^= 1;
        let cases: Vec<(&str, String, Result<&str, JwtError>)> = vec![
            ("valid", good.clone(), Ok("alice")),
            (
                "no kid: every key that fits is tried",
                a.sign(&json!({"alg": "ES256"}), &claims()),
                Ok("alice"),
            ),
            (
                "audience in a list",
                a.token(&with(|c| c["aud"] = json!(["x", "tools-a"]))),
                Ok("alice"),
            ),
            (
                "another tenant's key, same kid",
                other_tenant.sign(&header("ES256"), &claims()),
                Err(JwtError::Signature),
            ),
            (
                "another tenant's key and kid",
                other_tenant.token(&claims()),
                Err(JwtError::NoKey),
            ),
            (
                "issued for another tenant's audience",
                a.token(&with(|c| c["aud"] = json!("tools-b"))),
                Err(JwtError::Audience),
            ),
            (
                "no audience",
                a.token(&with(|c| {
                    c.as_object_mut().unwrap().remove("aud");
                })),
                Err(JwtError::Audience),
            ),
            (
                "another issuer",
                a.token(&with(|c| c["iss"] = json!("https://idp.b.example"))),
                Err(JwtError::Issuer),
            ),
            (
                "expired",
                a.token(&with(|c| c["exp"] = json!(NOW - LEEWAY - 1))),
                Err(JwtError::Expired),
            ),
            (
                "expired within the leeway",
                a.token(&with(|c| c["exp"] = json!(NOW - 10))),
                Ok("alice"),
            ),
            (
                "no exp",
                a.token(&with(|c| {
                    c.as_object_mut().unwrap().remove("exp");
                })),
                Err(JwtError::Expired),
            ),
            (
                "not yet valid",
                a.token(&with(|c| c["nbf"] = json!(NOW + 3600))),
                Err(JwtError::NotYetValid),
            ),
            (
                "alg none, no signature",
                format!(
                    "{}.{}.",
                    enc(header("none").to_string().as_bytes()),
                    enc(claims().to_string().as_bytes())
                ),
                Err(JwtError::Algorithm),
            ),
            (
                "HS256 with the public key as the secret",
                format!("{hs_input}.{}", enc(hs.as_ref())),
                Err(JwtError::Algorithm),
            ),
            (
                "RS256 named on an EC key",
                a.sign(&header("RS256"), &claims()),
                Err(JwtError::NoKey),
            ),
            (
                "claims altered after signing",
                altered,
                Err(JwtError::Signature),
            ),
            (
                "a bit of the signature flipped",
                format!("{head}.{body}.{}", enc(&flipped)),
                Err(JwtError::Signature),
            ),
            (
                "an unknown critical extension",
                a.sign(&json!({"alg": "ES256", "crit": ["x"], "x": 1}), &claims()),
                Err(JwtError::Malformed),
            ),
            ("not a JWT", "abc".into(), Err(JwtError::Malformed)),
            ("four parts", format!("{good}.x"), Err(JwtError::Malformed)),
            (
                "too long",
                "a".repeat(MAX_TOKEN + 1),
                Err(JwtError::Malformed),
            ),
        ];
        for (what, token, want) in cases {
            let got = verify(&a_auth, &token, NOW);
            match want {
                Ok(sub) => assert_eq!(
                    got.as_ref().map(|c| c["sub"].as_str().unwrap_or_default()),
                    Ok(sub),
                    "{what}"
                ),
                Err(e) => assert_eq!(got.map(|_| ()), Err(e), "{what}"),
            }
        }
        // Without audiences any audience is accepted.
        let any = auth(&[a.jwk()], &[]);
        assert!(verify(&any, &a.token(&with(|c| c["aud"] = json!("tools-b"))), NOW).is_ok());
    }

    #[test]
    fn ed25519_tokens_verify() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": enc(pair.public_key().as_ref())});
        let input = format!(
            "{}.{}",
            enc(json!({"alg": "EdDSA"}).to_string().as_bytes()),
            enc(claims().to_string().as_bytes())
        );
        let token = format!("{input}.{}", enc(pair.sign(input.as_bytes()).as_ref()));
        let a = auth(&[jwk], &["tools-a"]);
        assert_eq!(verify(&a, &token, NOW).unwrap()["sub"], "alice");
        let es = Es256::new("x");
        assert_eq!(
            verify(&a, &es.sign(&json!({"alg": "ES256"}), &claims()), NOW),
            Err(JwtError::NoKey),
            "an Ed25519 key never verifies ES256"
        );
    }
}
