//! JSON Web Key Sets (RFC 7517) a tenant writes inline: parsed once into the public keys a
//! token's signature is checked against, with the algorithms each key may verify.
//!
//! Accepted: RSA keys (RS256/384/512, PS256/384/512; at least 2048 bits), EC keys on P-256
//! (ES256) and P-384 (ES384), Ed25519 OKP keys (EdDSA). Refused, naming the key: symmetric
//! (`oct`) keys — a key set is public, and a shared secret in it would let anyone who reads it
//! mint tokens (the HS256 "key confusion" attack) — keys for encryption (`use: enc`), `alg`
//! values fleetgate does not verify (`none`, `HS*`, ...), and malformed key material. Pure.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The largest key set accepted, in bytes (agentgateway's limit for an inline JWKS).
pub const MAX_BYTES: usize = 65_536;
/// The most keys in one set.
pub const MAX_KEYS: usize = 64;

/// A signature algorithm fleetgate verifies (JWS `alg`). Never `none` or an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    /// The JWS name (`RS256`, ...) -> the algorithm, `None` for any other (`none`, `HS256`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }
}

/// A public key's material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed point (`04 || x || y`) on P-256.
    P256(Vec<u8>),
    /// The uncompressed point on P-384.
    P384(Vec<u8>),
    /// The 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl PublicKey {
    /// Whether this key can verify `alg` (its type decides, never the token).
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (
                Self::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (Self::P256(_), Alg::Es256)
                | (Self::P384(_), Alg::Es384)
                | (Self::Ed25519(_), Alg::EdDsa)
        )
    }
}

/// One key of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg` when it names one: then only that algorithm.
    pub alg: Option<Alg>,
    pub key: PublicKey,
}

impl Jwk {
    /// Whether this key verifies a token signed with `alg`.
    pub fn verifies(&self, alg: Alg) -> bool {
        self.key.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// Why a key set is refused: the key (`keys[i]`) and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

fn b64(at: &str, field: &str, v: &Value) -> Result<Vec<u8>, JwksError> {
    let s = v
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| JwksError(format!("{at}.{field} is required (base64url)")))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| JwksError(format!("{at}.{field} is not base64url")))
}

fn coordinate(at: &str, field: &str, v: &Value, len: usize) -> Result<Vec<u8>, JwksError> {
    let c = b64(at, field, v)?;
    if c.len() != len {
        return Err(JwksError(format!(
            "{at}.{field} must be {len} bytes for its curve, not {}",
            c.len()
        )));
    }
    Ok(c)
}

fn key(at: &str, v: &Value) -> Result<Jwk, JwksError> {
    let text = |f: &str| v.get(f).and_then(Value::as_str);
    if let Some(u) = text("use")
        && u != "sig"
    {
        return Err(JwksError(format!(
            "{at}.use is {u:?}; only signature keys (use: sig) verify tokens"
        )));
    }
    let alg = match text("alg") {
        None => None,
        Some(a) => Some(Alg::parse(a).ok_or_else(|| {
            JwksError(format!(
                "{at}.alg {a:?} is not accepted; use RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA"
            ))
        })?),
    };
    let key = match (text("kty"), text("crv")) {
        (Some("RSA"), _) => {
            let n = b64(at, "n", v)?;
            let e = b64(at, "e", v)?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(JwksError(format!(
                    "{at}.n is a {bits}-bit modulus; RSA keys need at least 2048 bits"
                )));
            }
            PublicKey::Rsa { n, e }
        }
        (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
            let len = if crv == "P-256" { 32 } else { 48 };
            let mut point = vec![4u8];
            point.extend(coordinate(at, "x", v, len)?);
            point.extend(coordinate(at, "y", v, len)?);
            if crv == "P-256" {
                PublicKey::P256(point)
            } else {
                PublicKey::P384(point)
            }
        }
        (Some("OKP"), Some("Ed25519")) => PublicKey::Ed25519(coordinate(at, "x", v, 32)?),
        (Some("oct"), _) => {
            return Err(JwksError(format!(
                "{at} is a symmetric (oct) key; a key set holds public keys only (an HMAC secret here would let anyone who reads it sign tokens)"
            )));
        }
        (Some(kty @ ("EC" | "OKP")), crv) => {
            return Err(JwksError(format!(
                "{at}.crv {:?} of kty {kty} is not accepted; use P-256, P-384 (EC) or Ed25519 (OKP)",
                crv.unwrap_or("")
            )));
        }
        (kty, _) => {
            return Err(JwksError(format!(
                "{at}.kty {:?} is not accepted; use RSA, EC or OKP",
                kty.unwrap_or("")
            )));
        }
    };
    if let Some(a) = alg
        && !key.fits(a)
    {
        return Err(JwksError(format!(
            "{at}.alg does not fit the key's type (kty/crv)"
        )));
    }
    Ok(Jwk {
        kid: text("kid").map(str::to_string),
        alg,
        key,
    })
}

/// Parses a key set (`{"keys": [...]}`) as written; `at` names it in errors.
pub fn parse(at: &str, text: &str) -> Result<Vec<Jwk>, JwksError> {
    if text.len() > MAX_BYTES {
        return Err(JwksError(format!(
            "{at} is {} bytes; at most {MAX_BYTES}",
            text.len()
        )));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        JwksError(format!(
            "{at} is not JSON ({e}); write a JSON Web Key Set: {{\"keys\": [...]}}"
        ))
    })?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err(JwksError(format!(
            "{at} has no \"keys\" list; write a JSON Web Key Set: {{\"keys\": [...]}}"
        )));
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(JwksError(format!(
            "{at} lists {} keys; list 1 to {MAX_KEYS}",
            keys.len()
        )));
    }
    keys.iter()
        .enumerate()
        .map(|(i, k)| key(&format!("{at}.keys[{i}]"), k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn set(keys: Value) -> String {
        json!({ "keys": keys }).to_string()
    }

    #[test]
    fn public_keys_of_each_type_parse_with_their_algorithms() {
        let text = set(json!([
            {"kty": "EC", "crv": "P-256", "kid": "a", "x": enc(&[1; 32]), "y": enc(&[2; 32]), "use": "sig"},
            {"kty": "RSA", "n": enc(&[0xc5; 256]), "e": enc(&[1, 0, 1]), "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": enc(&[3; 32])},
            {"kty": "EC", "crv": "P-384", "x": enc(&[1; 48]), "y": enc(&[2; 48])},
        ]));
        let keys = parse("jwks", &text).unwrap();
        assert_eq!(keys.len(), 4);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
        assert!(matches!(&keys[0].key, PublicKey::P256(p) if p.len() == 65 && p[0] == 4));
        assert!(keys[0].verifies(Alg::Es256));
        assert!(
            !keys[0].verifies(Alg::Rs256),
            "an EC key never verifies RSA"
        );
        assert!(keys[1].verifies(Alg::Rs256));
        assert!(!keys[1].verifies(Alg::Ps256), "the key's own alg pins it");
        assert!(keys[2].verifies(Alg::EdDsa));
        assert!(keys[3].verifies(Alg::Es384));
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("HS256"), None);
    }

    #[test]
    fn bad_key_sets_are_refused_naming_the_key() {
        let ec = |extra: Value| {
            let mut k =
                json!({"kty": "EC", "crv": "P-256", "x": enc(&[1; 32]), "y": enc(&[2; 32])});
            for (f, v) in extra.as_object().unwrap() {
                k[f] = v.clone();
            }
            set(json!([k]))
        };
        let cases = [
            ("not json".to_string(), "is not JSON"),
            (json!({"k": []}).to_string(), "has no \"keys\" list"),
            (set(json!([])), "lists 0 keys"),
            (
                set(json!([{"kty": "oct", "k": enc(b"secret")}])),
                "jwks.keys[0] is a symmetric (oct) key",
            ),
            (ec(json!({"alg": "HS256"})), "jwks.keys[0].alg \"HS256\""),
            (ec(json!({"alg": "none"})), "alg \"none\" is not accepted"),
            (ec(json!({"alg": "RS256"})), "does not fit the key's type"),
            (ec(json!({"use": "enc"})), "jwks.keys[0].use is \"enc\""),
            (ec(json!({"crv": "P-521"})), "crv \"P-521\""),
            (ec(json!({"x": enc(&[1; 31])})), "x must be 32 bytes"),
            (ec(json!({"y": "%%%"})), "y is not base64url"),
            (
                set(json!([{"kty": "RSA", "n": enc(&[0xc5; 128]), "e": enc(&[1, 0, 1])}])),
                "1024-bit modulus",
            ),
            (set(json!([{"kty": "DSA"}])), "kty \"DSA\""),
        ];
        for (text, want) in cases {
            let err = parse("jwks", &text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(parse("jwks", &" ".repeat(MAX_BYTES + 1)).is_err());
    }
}
