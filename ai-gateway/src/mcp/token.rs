//! The gateway's own MCP session id: the session's state (tenant, route, negotiated version,
//! each target's upstream session) sealed with ChaCha20-Poly1305 under the current key of the
//! tenant's session key ring, which the hub sends every replica and rotates. The id names its
//! key (`fgmcp2.<key id>.<nonce and ciphertext>`), so any replica opens an id another one
//! issued, also under a retired key the ring still holds; an id under a key the ring no longer
//! holds, of another tenant or route, or one that was altered, does not open. Pure (the nonce
//! is passed in).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::config::mcp::SessionKeyRing;

/// What every id starts with (the format's version).
const PREFIX: &str = "fgmcp2.";

/// A session's state, as sealed in its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Random per session: the key of what a replica keeps for it (SSE upstreams).
    pub id: String,
    /// The protocol version negotiated with the client.
    pub version: String,
    /// Per target, by name: where its session lives.
    pub targets: Vec<TargetSession>,
}

/// One target's side of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSession {
    pub name: String,
    /// The authority (`ip:port` or `host:port`) the session was opened on: an upstream session
    /// lives in one server process.
    pub authority: String,
    /// The upstream's `Mcp-Session-Id` (streamable HTTP); `None` for SSE or a server without
    /// sessions.
    pub session: Option<String>,
    /// The version the target negotiated.
    pub version: String,
}

/// The associated data: an id opens only for the tenant and route it was issued on, and with
/// the key id it names.
fn aad(key_id: u32, tenant: &str, route: &str) -> Vec<u8> {
    format!("fleetgate-mcp-session:v2\0{key_id}\0{tenant}\0{route}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Seals `state` into an id under the ring's current key (visible ASCII, as `Mcp-Session-Id`
/// requires).
pub fn seal(
    keys: &SessionKeyRing,
    nonce: [u8; NONCE_LEN],
    tenant: &str,
    route: &str,
    state: &SessionState,
) -> String {
    let (key_id, key) = keys.current();
    let Ok(unbound) = UnboundKey::new(&CHACHA20_POLY1305, key) else {
        unreachable!("a 32-byte key is a ChaCha20-Poly1305 key")
    };
    let key = LessSafeKey::new(unbound);
    let mut data = serde_json::to_vec(state).unwrap_or_default();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(key_id, tenant, route)),
        &mut data,
    )
    .unwrap_or_else(|_| unreachable!("sealing into a Vec cannot fail"));
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    format!("{PREFIX}{key_id:x}.{}", hex(&out))
}

/// Opens an id issued for `tenant` and `route` under any key of `keys`; `None` for anything
/// else (including an id under a key the ring does not hold).
pub fn open(keys: &SessionKeyRing, tenant: &str, route: &str, id: &str) -> Option<SessionState> {
    let (key_id, body) = id.strip_prefix(PREFIX)?.split_once('.')?;
    if key_id.is_empty() || key_id.len() > 8 {
        return None;
    }
    let key_id = u32::from_str_radix(key_id, 16).ok()?;
    let key = keys.get(key_id)?;
    let raw = unhex(body)?;
    if raw.len() < NONCE_LEN + 16 || raw.len() > 64 * 1024 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).ok()?);
    let mut data = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).ok()?,
            Aad::from(aad(key_id, tenant, route)),
            &mut data,
        )
        .ok()?;
    serde_json::from_slice(plain).ok()
}

/// The id of the key `id` was sealed under, if it is one of the gateway's session ids.
pub fn key_id(id: &str) -> Option<u32> {
    let (key_id, _) = id.strip_prefix(PREFIX)?.split_once('.')?;
    u32::from_str_radix(key_id, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SessionState {
        SessionState {
            id: "s1".into(),
            version: "2025-11-25".into(),
            targets: vec![TargetSession {
                name: "alpha".into(),
                authority: "127.0.0.1:9001".into(),
                session: Some("upstream-secret-session".into()),
                version: "2025-11-25".into(),
            }],
        }
    }

    fn ring(keys: &[(u32, u8)]) -> SessionKeyRing {
        let raw: Vec<crate::config::mcp::RawSessionKey> = keys
            .iter()
            .map(|(id, fill)| crate::config::mcp::RawSessionKey {
                id: *id,
                key: crate::config::Secret::new(format!("{fill:02x}").repeat(32)),
            })
            .collect();
        SessionKeyRing::parse("t", None, &raw).unwrap().unwrap()
    }

    #[test]
    fn an_id_opens_only_for_its_key_tenant_and_route_and_hides_the_upstream_ids() {
        let key = ring(&[(1, 7)]);
        let id = seal(&key, [1; NONCE_LEN], "a", "r", &state());
        assert!(id.bytes().all(|b| (0x21..0x7f).contains(&b)));
        assert!(!id.contains("upstream"));
        assert_eq!(key_id(&id), Some(1));
        assert_eq!(open(&key, "a", "r", &id), Some(state()));
        assert_eq!(open(&ring(&[(1, 8)]), "a", "r", &id), None, "another key");
        assert_eq!(open(&key, "b", "r", &id), None, "another tenant");
        assert_eq!(open(&key, "a", "r2", &id), None, "another route");
        let mut forged = id.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            open(&key, "a", "r", std::str::from_utf8(&forged).unwrap()),
            None,
            "altered"
        );
        // The key id is bound too: an id relabelled with another key's id does not open, even
        // when the ring holds the same bytes under that id.
        let same_bytes = ring(&[(2, 7), (1, 7)]);
        let relabelled = id.replacen("fgmcp2.1.", "fgmcp2.2.", 1);
        assert_eq!(open(&same_bytes, "a", "r", &relabelled), None, "relabelled");
        for junk in [
            "",
            "fgmcp2.",
            "fgmcp2.1.",
            "fgmcp2.1.zz",
            "fgmcp2..00",
            "fgmcp2.123456789.00",
            "other",
            "fgmcp1.00",
        ] {
            assert_eq!(open(&key, "a", "r", junk), None, "{junk}");
        }
    }

    /// The hub rotates a tenant's ring: [k1] -> [k2, k1] (grace) -> [k2] (k1 retired) ->
    /// [k3, k2]. An id opens while the ring holds its key; new ids use the current key.
    #[test]
    fn ids_open_across_a_rotation_until_their_key_is_retired() {
        let before = ring(&[(1, 0x11)]);
        let old = seal(&before, [1; NONCE_LEN], "a", "r", &state());

        let rotated = ring(&[(2, 0x22), (1, 0x11)]);
        assert_eq!(
            open(&rotated, "a", "r", &old),
            Some(state()),
            "in the grace"
        );
        let new = seal(&rotated, [2; NONCE_LEN], "a", "r", &state());
        assert_eq!(key_id(&new), Some(2), "sealed with the current key");
        assert_eq!(open(&rotated, "a", "r", &new), Some(state()));
        assert_eq!(
            open(&before, "a", "r", &new),
            None,
            "a replica not yet told"
        );

        let retired = ring(&[(2, 0x22)]);
        assert_eq!(open(&retired, "a", "r", &old), None, "retired key");
        assert_eq!(open(&retired, "a", "r", &new), Some(state()));

        let again = ring(&[(3, 0x33), (2, 0x22)]);
        assert_eq!(open(&again, "a", "r", &old), None);
        assert_eq!(open(&again, "a", "r", &new), Some(state()));
    }

    #[test]
    fn a_ring_refuses_duplicate_ids_and_mixing_both_forms_without_showing_keys() {
        let k = |id| crate::config::mcp::RawSessionKey {
            id,
            key: crate::config::Secret::new("ab".repeat(32)),
        };
        let e = SessionKeyRing::parse("tenants.a", None, &[k(1), k(1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tenants.a.mcpSessionKeys[1].id"), "{e}");
        let single = crate::config::Secret::new("ab".repeat(32));
        let e = SessionKeyRing::parse("tenants.a", Some(&single), &[k(1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both") && !e.contains("abab"), "{e}");
        assert_eq!(SessionKeyRing::parse("t", None, &[]).unwrap(), None);
    }
}
