//! Bootstrap tokens: single-use, short-lived, bound to one tenant and one cluster.
//!
//! Where it sits: before the data path. `fleetgate-hub token create` mints one with the HMAC key
//! in the hub's PKI directory (no running hub needed); the agent presents it once to
//! `EnrollService/Enroll`, where [`verify`] checks it and the store records its id as used.
//!
//! Format (ASCII, dot-separated; tenant and cluster are DNS labels, so they hold no dot):
//! `fgb1.<id>.<expires>.<tenant>.<cluster>.<mac>` where `id` is 16 random bytes in hex,
//! `expires` the Unix time in seconds, and `mac` the hex HMAC-SHA256 of everything before the
//! last dot under the hub's token key. The MAC is checked in constant time (`ring::hmac::verify`)
//! before anything else of the token is trusted. Pure except for [`mint`]'s random id.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

pub use crate::identity::token_key::{KeyError, TOKEN_KEY, TokenKey};
use crate::identity::token_key::{from_hex, to_hex};

/// The version prefix of every token.
pub const PREFIX: &str = "fgb1";
/// Default lifetime of a token.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Longest lifetime `token create` accepts.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Why a token was refused. The messages reach the agent's operator: they say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `fgb1.<id>.<expires>.<tenant>.<cluster>.<mac>`.
    #[error(
        "the bootstrap token is malformed (expected fgb1.<id>.<expiry>.<tenant>.<cluster>.<mac>): copy the whole output of `fleetgate-hub token create`"
    )]
    Malformed,
    /// The MAC does not match: another hub's token, or an altered one.
    #[error(
        "the bootstrap token is unknown to this hub (it was altered or created with another hub's key): create a new one with `fleetgate-hub token create --tenant <tenant> --cluster <cluster>`"
    )]
    Unknown,
    /// Past its expiry.
    #[error(
        "bootstrap token for cluster {cluster:?} of tenant {tenant:?} expired: create a new one with `fleetgate-hub token create --tenant {tenant} --cluster {cluster}`"
    )]
    Expired { tenant: String, cluster: String },
    /// Already used once.
    #[error(
        "bootstrap token already used: create a new one with `fleetgate-hub token create --tenant {tenant} --cluster {cluster}`"
    )]
    Used { tenant: String, cluster: String },
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// 32 hex digits; what the store records as used.
    pub id: String,
    /// Unix seconds.
    pub expires: u64,
    pub tenant: String,
    pub cluster: String,
}

/// Mints a token for (tenant, cluster) expiring at `expires` (Unix seconds). Tenant and cluster
/// must already be DNS labels (the caller checks them, e.g. with `SpiffeId::new`).
pub fn mint(key: &TokenKey, tenant: &str, cluster: &str, expires: u64) -> Result<String, KeyError> {
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| KeyError::Random)?;
    Ok(encode(key, &to_hex(&id), tenant, cluster, expires))
}

/// The token for these exact fields (deterministic; [`mint`] picks the id).
pub fn encode(key: &TokenKey, id: &str, tenant: &str, cluster: &str, expires: u64) -> String {
    let body = format!("{PREFIX}.{id}.{expires}.{tenant}.{cluster}");
    let mac = hmac::sign(&key.0, body.as_bytes());
    format!("{body}.{}", to_hex(mac.as_ref()))
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks the token's shape, then its MAC (constant time), then its expiry against `now`
/// (Unix seconds). Whether it was already used is the store's business.
pub fn verify(key: &TokenKey, token: &str, now: u64) -> Result<Claims, TokenError> {
    let token = token.trim();
    if token.len() > 512 {
        return Err(TokenError::Malformed);
    }
    let (body, mac_hex) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let parts: Vec<&str> = body.split('.').collect();
    let [prefix, id, expires, tenant, cluster] = parts.as_slice() else {
        return Err(TokenError::Malformed);
    };
    let mac = from_hex(mac_hex).ok_or(TokenError::Malformed)?;
    let expires: u64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    if *prefix != PREFIX
        || id.len() != 32
        || from_hex(id).is_none()
        || !is_label(tenant)
        || !is_label(cluster)
        || mac.len() != 32
    {
        return Err(TokenError::Malformed);
    }
    hmac::verify(&key.0, body.as_bytes(), &mac).map_err(|_| TokenError::Unknown)?;
    if now >= expires {
        return Err(TokenError::Expired {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
        });
    }
    Ok(Claims {
        id: id.to_string(),
        expires,
        tenant: tenant.to_string(),
        cluster: cluster.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> TokenKey {
        TokenKey::from_bytes(&[b; 32])
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = mint(&key(1), "tenant-a", "east", 1000).unwrap();
        assert!(t.starts_with("fgb1."), "{t}");
        let c = verify(&key(1), &t, 999).unwrap();
        assert_eq!(
            (c.tenant.as_str(), c.cluster.as_str(), c.expires),
            ("tenant-a", "east", 1000)
        );
        assert_eq!(c.id.len(), 32);
        assert_eq!(
            verify(&key(1), &t, 1000),
            Err(TokenError::Expired {
                tenant: "tenant-a".into(),
                cluster: "east".into()
            })
        );
        // Two tokens for the same cluster differ (random id).
        assert_ne!(t, mint(&key(1), "tenant-a", "east", 1000).unwrap());
    }

    #[test]
    fn a_token_of_another_key_is_unknown() {
        let t = mint(&key(1), "tenant-a", "east", 1000).unwrap();
        assert_eq!(verify(&key(2), &t, 1), Err(TokenError::Unknown));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let id = "00112233445566778899aabbccddeeff";
        let t = encode(&key(1), id, "tenant-a", "east", 1000);
        let mac = t.rsplit_once('.').unwrap().1;
        // Changing any signed field breaks the MAC: the identity and the expiry are bound.
        for forged in [
            format!("fgb1.{id}.1000.tenant-b.east.{mac}"),
            format!("fgb1.{id}.1000.tenant-a.west.{mac}"),
            format!("fgb1.{id}.99999.tenant-a.east.{mac}"),
            format!("fgb1.ffffffffffffffffffffffffffffffff.1000.tenant-a.east.{mac}"),
        ] {
            assert_eq!(
                verify(&key(1), &forged, 1),
                Err(TokenError::Unknown),
                "{forged}"
            );
        }
        let mut flipped = t.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(&key(1), &flipped, 1), Err(TokenError::Unknown));
        for bad in [
            String::new(),
            "fgb1".into(),
            t.replace("fgb1.", "fgb2."),
            t.replacen('.', "..", 1),
            format!("{t}.extra"),
            format!("fgb1.{id}.soon.tenant-a.east.{mac}"),
            format!("fgb1.{id}.1000.Tenant-A.east.{mac}"),
            format!("fgb1.{id}.1000.tenant-a.east.{}", &mac[..10]),
            format!("fgb1.{id}.1000.tenant-a.east.{}", "zz".repeat(32)),
            "x".repeat(10_000),
        ] {
            assert_eq!(
                verify(&key(1), &bad, 1),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        // Surrounding whitespace (a pasted token) is fine.
        assert!(verify(&key(1), &format!(" {t}\n"), 1).is_ok());
    }

    #[test]
    fn messages_say_what_to_do() {
        let used = TokenError::Used {
            tenant: "tenant-a".into(),
            cluster: "east".into(),
        }
        .to_string();
        assert!(
            used.contains("already used")
                && used.contains("fleetgate-hub token create --tenant tenant-a --cluster east"),
            "{used}"
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k1 = TokenKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(TOKEN_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let t = mint(&k1, "a", "c", 10).unwrap();
        let k2 = TokenKey::load_or_create(dir.path()).unwrap();
        assert!(verify(&k2, &t, 1).is_ok());
        std::fs::write(dir.path().join(TOKEN_KEY), "nope").unwrap();
        assert!(matches!(
            TokenKey::load_or_create(dir.path()),
            Err(KeyError::Corrupt { .. })
        ));
    }
}
