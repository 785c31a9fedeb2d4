//! A compact JWS (RFC 7515, the form of a JWT) checked against a JSON Web Key Set: its shape
//! (three base64url parts, the header and the payload JSON objects), no `crit` extension (the
//! token would say it must be understood; fleetgate understands none), the algorithm chosen by
//! a key of the set and never by the token alone (`alg: none` and the HMAC family are not
//! [`Alg`]s, so a public key can never serve as an HMAC secret), and the signature. The claims
//! are the caller's to check: the hub's OpenID Connect login (`hub/src/admin/oidc/id_token.rs`)
//! and the AI gateway's MCP authentication (`ai-gateway/src/mcp/jwt.rs`). Pure.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;

use crate::jwks::{Alg, Jwk, PublicKey};

/// The longest token read.
pub const MAX_TOKEN: usize = 16 * 1024;

/// Why a token's signature is refused; each caller words it for its own reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsError {
    /// Not `header.payload.signature` of base64url JSON objects, too long, or with `crit`.
    Malformed,
    /// An algorithm that is not an [`Alg`], or one the caller does not accept.
    Algorithm,
    /// No key of the set can verify the token's `alg` (and `kid`, when it names one).
    NoKey,
    /// No such key verifies the signature.
    Signature,
}

fn part(s: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JwsError::Malformed)
}

fn json_object(bytes: &[u8]) -> Result<Value, JwsError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(JwsError::Malformed),
    }
}

/// Whether `key` signed `message` with `alg` into `sig`.
fn signed_by(key: &Jwk, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
    let rsa = |params: &'static signature::RsaParameters| match &key.key {
        PublicKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
            .verify(params, message, sig)
            .is_ok(),
        _ => false,
    };
    let raw = |params: &'static dyn signature::VerificationAlgorithm, bytes: &[u8]| {
        UnparsedPublicKey::new(params, bytes)
            .verify(message, sig)
            .is_ok()
    };
    match (alg, &key.key) {
        (Alg::Rs256, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        (Alg::Rs384, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        (Alg::Rs512, _) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        (Alg::Ps256, _) => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        (Alg::Ps384, _) => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        (Alg::Ps512, _) => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        (Alg::Es256, PublicKey::P256(p)) => raw(&signature::ECDSA_P256_SHA256_FIXED, p),
        (Alg::Es384, PublicKey::P384(p)) => raw(&signature::ECDSA_P384_SHA384_FIXED, p),
        (Alg::EdDsa, PublicKey::Ed25519(p)) => raw(&signature::ED25519, p),
        _ => false,
    }
}

/// The claims (a JSON object) of `token` when a key of `keys` signed it with an algorithm
/// `accepts`.
pub fn verify(keys: &[Jwk], token: &str, accepts: impl Fn(Alg) -> bool) -> Result<Value, JwsError> {
    if token.len() > MAX_TOKEN {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header = json_object(&part(h)?)?;
    if header.get("crit").is_some() {
        return Err(JwsError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .filter(|alg| accepts(*alg))
        .ok_or(JwsError::Algorithm)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let sig = part(s)?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    let mut candidates = keys
        .iter()
        .filter(|k| k.verifies(alg) && (kid.is_none() || k.kid.as_deref() == kid))
        .peekable();
    if candidates.peek().is_none() {
        return Err(JwsError::NoKey);
    }
    if !candidates.any(|k| signed_by(k, alg, message, &sig)) {
        return Err(JwsError::Signature);
    }
    json_object(&part(p)?)
}
