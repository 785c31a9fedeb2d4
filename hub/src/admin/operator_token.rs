//! Operator tokens: bearer tokens for the admin API, each naming an operator and a role.
//!
//! `fleetgate-hub operator-token create --pki-dir D --name alice --role viewer --ttl 8h` mints
//! one with a key derived from the hub's token key (`identity::token_key`), so it needs the PKI
//! directory and no running hub, and a bootstrap token can never pass for one (another key,
//! another prefix).
//!
//! Format (ASCII, dot-separated; the name is a DNS label, so it holds no dot):
//! `fgo1.<id>.<expires>.<role>.<name>.<mac>`: `id` 16 random bytes in hex, `expires` Unix
//! seconds, `mac` the hex HMAC-SHA256 of everything before the last dot. The MAC is checked in
//! constant time before anything else is trusted. Tokens are not recorded anywhere: one stops
//! working when it expires (at most [`MAX_TTL`]) or when the hub's token key is replaced.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::identity::token_key::{KeyError, TokenKey, from_hex, to_hex};

/// The version prefix of every operator token.
pub const PREFIX: &str = "fgo1";
/// Default lifetime of an operator token.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(8 * 3600);
/// Longest lifetime `operator-token create` accepts.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything the API shows.
    Viewer,
    /// Also disables, enables and revokes clusters and creates bootstrap tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: use viewer or admin")),
        }
    }
}

/// Why a token was refused. The messages reach the operator: they say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorTokenError {
    /// Not of the form `fgo1.<id>.<expires>.<role>.<name>.<mac>`.
    #[error(
        "the operator token is malformed (expected fgo1.<id>.<expiry>.<role>.<name>.<mac>): copy the whole output of `fleetgate-hub operator-token create`"
    )]
    Malformed,
    /// The MAC does not match: another hub's token, or an altered one.
    #[error(
        "the operator token is unknown to this hub (altered, or made with another hub's key): create one with `fleetgate-hub operator-token create`"
    )]
    Unknown,
    /// Past its expiry.
    #[error(
        "the operator token of {name:?} expired: create a new one with `fleetgate-hub operator-token create --name {name}`"
    )]
    Expired { name: String },
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
    /// Unix seconds.
    pub expires: u64,
}

/// The key operator tokens are signed with: derived from the hub's token key, so the two kinds
/// of token never verify under each other's key.
pub fn operator_key(token_key: &TokenKey) -> hmac::Key {
    let derived = hmac::sign(&token_key.0, b"fleetgate operator tokens v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

/// Whether `s` is a DNS label (what operator names must be).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Mints a token for `name` (a DNS label, checked by the caller) with `role`, expiring at
/// `expires` (Unix seconds).
pub fn mint(key: &hmac::Key, name: &str, role: Role, expires: u64) -> Result<String, KeyError> {
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| KeyError::Random)?;
    Ok(encode(key, &to_hex(&id), name, role, expires))
}

/// The token for these exact fields (deterministic; [`mint`] picks the id).
pub fn encode(key: &hmac::Key, id: &str, name: &str, role: Role, expires: u64) -> String {
    let body = format!("{PREFIX}.{id}.{expires}.{}.{name}", role.as_str());
    let mac = hmac::sign(key, body.as_bytes());
    format!("{body}.{}", to_hex(mac.as_ref()))
}

/// Checks the token's shape, its MAC (constant time), then its expiry against `now`.
pub fn verify(key: &hmac::Key, token: &str, now: u64) -> Result<Operator, OperatorTokenError> {
    let token = token.trim();
    if token.len() > 512 {
        return Err(OperatorTokenError::Malformed);
    }
    let (body, mac_hex) = token
        .rsplit_once('.')
        .ok_or(OperatorTokenError::Malformed)?;
    let parts: Vec<&str> = body.split('.').collect();
    let [prefix, id, expires, role, name] = parts.as_slice() else {
        return Err(OperatorTokenError::Malformed);
    };
    let mac = from_hex(mac_hex).ok_or(OperatorTokenError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| OperatorTokenError::Malformed)?;
    let role: Role = role.parse().map_err(|_| OperatorTokenError::Malformed)?;
    if *prefix != PREFIX
        || id.len() != 32
        || from_hex(id).is_none()
        || !is_label(name)
        || mac.len() != 32
    {
        return Err(OperatorTokenError::Malformed);
    }
    hmac::verify(key, body.as_bytes(), &mac).map_err(|_| OperatorTokenError::Unknown)?;
    if now >= expires {
        return Err(OperatorTokenError::Expired {
            name: name.to_string(),
        });
    }
    Ok(Operator {
        name: name.to_string(),
        role,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> hmac::Key {
        operator_key(&TokenKey::from_bytes(&[b; 32]))
    }

    #[test]
    fn a_minted_token_names_its_operator_and_role_until_it_expires() {
        let t = mint(&key(1), "alice", Role::Viewer, 1000).unwrap();
        assert!(t.starts_with("fgo1."), "{t}");
        let op = verify(&key(1), &t, 999).unwrap();
        assert_eq!((op.name.as_str(), op.role), ("alice", Role::Viewer));
        assert_eq!(
            verify(&key(1), &t, 1000),
            Err(OperatorTokenError::Expired {
                name: "alice".into()
            })
        );
    }

    #[test]
    fn altered_foreign_and_malformed_tokens_are_refused() {
        let t = encode(&key(1), &"ab".repeat(16), "bob", Role::Viewer, 1000);
        assert_eq!(verify(&key(2), &t, 1), Err(OperatorTokenError::Unknown));
        // Raising one's own role breaks the MAC.
        let raised = t.replace(".viewer.", ".admin.");
        assert_eq!(
            verify(&key(1), &raised, 1),
            Err(OperatorTokenError::Unknown)
        );
        // A later expiry too.
        let later = t.replace(".1000.", ".9999.");
        assert_eq!(verify(&key(1), &later, 1), Err(OperatorTokenError::Unknown));
        for bad in [
            "",
            "fgo1",
            "Bearer x",
            &t.replace("fgo1.", "fgb1."),
            &t.replace(".bob.", ".Bob."),
            &t.replace(".viewer.", ".root."),
            &"x".repeat(600),
        ] {
            assert!(
                matches!(
                    verify(&key(1), bad, 1),
                    Err(OperatorTokenError::Malformed | OperatorTokenError::Unknown)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bootstrap_token_is_not_an_operator_token() {
        let token_key = TokenKey::from_bytes(&[7; 32]);
        let bootstrap =
            crate::enroll::token::encode(&token_key, &"cd".repeat(16), "admin", "x", 1000);
        assert!(verify(&operator_key(&token_key), &bootstrap, 1).is_err());
        // Even a token laid out like an operator's but signed with the bootstrap key.
        let body = format!("{PREFIX}.{}.1000.admin.eve", "cd".repeat(16));
        let mac = hmac::sign(&token_key.0, body.as_bytes());
        let forged = format!("{body}.{}", to_hex(mac.as_ref()));
        assert_eq!(
            verify(&operator_key(&token_key), &forged, 1),
            Err(OperatorTokenError::Unknown)
        );
    }
}
