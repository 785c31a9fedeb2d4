//! The gateway's own MCP session id: the session's state (tenant, route, negotiated version,
//! each target's upstream session) sealed with ChaCha20-Poly1305 under the tenant's session
//! key, which the hub sends every replica. Any replica opens an id another one issued; an id
//! of another tenant or route, or one that was altered, does not open. Pure (the nonce is
//! passed in).

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

/// What every id starts with (the format's version).
const PREFIX: &str = "fgmcp1.";

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

/// The associated data: an id opens only for the tenant and route it was issued on.
fn aad(tenant: &str, route: &str) -> Vec<u8> {
    format!("fleetgate-mcp-session:v1\0{tenant}\0{route}").into_bytes()
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

/// Seals `state` into an id (visible ASCII, as `Mcp-Session-Id` requires).
pub fn seal(
    key: &[u8; 32],
    nonce: [u8; NONCE_LEN],
    tenant: &str,
    route: &str,
    state: &SessionState,
) -> String {
    let Ok(unbound) = UnboundKey::new(&CHACHA20_POLY1305, key) else {
        unreachable!("a 32-byte key is a ChaCha20-Poly1305 key")
    };
    let key = LessSafeKey::new(unbound);
    let mut data = serde_json::to_vec(state).unwrap_or_default();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(tenant, route)),
        &mut data,
    )
    .unwrap_or_else(|_| unreachable!("sealing into a Vec cannot fail"));
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    format!("{PREFIX}{}", hex(&out))
}

/// Opens an id issued for `tenant` and `route` under `key`; `None` for anything else.
pub fn open(key: &[u8; 32], tenant: &str, route: &str, id: &str) -> Option<SessionState> {
    let raw = unhex(id.strip_prefix(PREFIX)?)?;
    if raw.len() < NONCE_LEN + 16 || raw.len() > 64 * 1024 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).ok()?);
    let mut data = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).ok()?,
            Aad::from(aad(tenant, route)),
            &mut data,
        )
        .ok()?;
    serde_json::from_slice(plain).ok()
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

    #[test]
    fn an_id_opens_only_for_its_key_tenant_and_route_and_hides_the_upstream_ids() {
        let key = [7u8; 32];
        let id = seal(&key, [1; NONCE_LEN], "a", "r", &state());
        assert!(id.bytes().all(|b| (0x21..0x7f).contains(&b)));
        assert!(!id.contains("upstream"));
        assert_eq!(open(&key, "a", "r", &id), Some(state()));
        assert_eq!(open(&[8u8; 32], "a", "r", &id), None, "another key");
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
        for junk in ["", "fgmcp1.", "fgmcp1.zz", "other", "fgmcp1.00"] {
            assert_eq!(open(&key, "a", "r", junk), None, "{junk}");
        }
    }
}
