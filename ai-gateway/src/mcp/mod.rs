//! MCP federation: one MCP server to the client over many targets (agentgateway's
//! `AgentgatewayBackend.spec.mcp`), the handler of routes whose backend is
//! [`crate::config::BackendKind::Mcp`].
//!
//! - [`serve`]: the client's transports: streamable HTTP (POST a message, answered in JSON or an
//!   event stream; DELETE ends the session; GET with the session id opens the session's own
//!   stream, [`notify`]) and the older HTTP+SSE transport (GET `<path>/sse`, then POST `<path>/message?sessionId=`).
//! - [`federate`]: `initialize` with every target, merged lists, calls routed to their target,
//!   failure modes, cancellation.
//! - [`notify`]: the client's own stream of a session (GET), what targets send outside calls,
//!   and their requests to the client.
//! - [`naming`]: `<target>_<name>` and `<target>+<uri>`; [`token`]: the session id, sealed
//!   (any replica opens it); [`upstream`]: the gateway as a client of one target, either
//!   transport; [`jsonrpc`], [`sse`]: the wire; [`pins`]: tool definitions pinned against a
//!   "rug pull" (the hub keeps the pins).
//! - [`authorize`]: the caller's JWT ([`jwt`]) and what it may use (`spec.policies.mcp`).
//!
//! What a replica keeps ([`McpState`]): SSE connections to targets and legacy SSE clients
//! (both are open streams), and the calls in flight (for cancellation). Everything a
//! streamable-HTTP session needs is in its id.

pub mod authorize;
pub mod federate;
pub mod jsonrpc;
pub mod jwt;
pub mod naming;
pub mod notify;
pub mod pins;
pub mod serve;
pub mod sse;
pub mod token;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::mpsc;

use upstream::SseConn;

use crate::config::mcp::SessionKeyRing;

/// The protocol versions the gateway speaks with clients and targets, oldest first: every
/// revision that negotiates with `initialize`.
pub const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The newest of [`VERSIONS`]: what the gateway offers targets and answers clients that ask
/// for one it does not know.
pub const LATEST: &str = "2025-11-25";

/// The version to answer a client that asked for `requested` (MCP's lifecycle: the same one
/// when supported, else the latest the server supports).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(LATEST)
}

/// The id of the request the gateway sends a target for the client's request `client_id`:
/// derived from it, so that any replica can name the call in a cancellation (the client's ids
/// are unique within its session; the gateway's own requests are `fg-...`).
pub fn call_id(client_id: &serde_json::Value) -> serde_json::Value {
    serde_json::Value::String(format!("fgc-{client_id}"))
}

/// How long a replica keeps an SSE connection to a target, or a legacy client's session,
/// unused.
pub const IDLE: Duration = Duration::from_secs(600);

/// A legacy (HTTP+SSE) client on this replica: where its messages' answers go, and its
/// session once it initialized.
#[derive(Debug)]
pub struct LegacyClient {
    /// The tenant and route whose stream it is: a message for another route never reaches it.
    pub tenant: Arc<str>,
    pub route: Arc<str>,
    pub tx: mpsc::Sender<Bytes>,
    pub session: std::sync::Mutex<Option<String>>,
}

/// SSE connections to targets by (session, target), with when each was last used.
type SseConns = HashMap<(String, String), (Arc<SseConn>, Instant)>;

/// What one replica keeps between requests.
#[derive(Debug)]
pub struct McpState {
    /// Seals session ids of tenants the hub sent no key for (sessions then stay on this replica).
    process_key: Arc<SessionKeyRing>,
    rng: SystemRandom,
    /// Random per process: ids of requests to targets never collide between replicas sharing
    /// a target's session.
    instance: String,
    next_id: AtomicU64,
    /// SSE connections to targets, by (session, target).
    sse: std::sync::Mutex<SseConns>,
    /// Legacy SSE clients, by their session id in the endpoint URL.
    legacy: std::sync::Mutex<HashMap<String, Arc<LegacyClient>>>,
    /// Calls in flight, by (session, client's request id): the target and the upstream id, so
    /// that a cancellation reaches the right target.
    inflight: std::sync::Mutex<HashMap<(String, String), (usize, serde_json::Value)>>,
    /// Tool pins (shared with the hub source, which sends reports and receives pins).
    pub pins: Arc<pins::PinBoard>,
}

impl Default for McpState {
    fn default() -> Self {
        let rng = SystemRandom::new();
        let mut process_key = [0u8; 32];
        rng.fill(&mut process_key)
            .unwrap_or_else(|_| panic!("the system has no random source"));
        let mut instance = [0u8; 4];
        rng.fill(&mut instance)
            .unwrap_or_else(|_| panic!("the system has no random source"));
        Self {
            process_key: Arc::new(SessionKeyRing::single(0, process_key)),
            rng,
            instance: instance.iter().map(|x| format!("{x:02x}")).collect(),
            next_id: AtomicU64::new(1),
            sse: Default::default(),
            legacy: Default::default(),
            inflight: Default::default(),
            pins: Default::default(),
        }
    }
}

impl McpState {
    /// A replica's state whose tool pins are `pins` (the board the hub source also holds).
    pub fn with_pins(pins: Arc<pins::PinBoard>) -> Self {
        Self {
            pins,
            ..Self::default()
        }
    }

    /// A fresh id for a request the gateway sends a target (`fg-<process>-<n>`): unique
    /// across replicas, which share a streamable-HTTP target's session.
    pub fn next_id(&self) -> serde_json::Value {
        serde_json::Value::String(format!(
            "fg-{}-{}",
            self.instance,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// `n` random bytes as hex.
    pub fn random_hex(&self, n: usize) -> String {
        let mut b = vec![0u8; n];
        self.rng
            .fill(&mut b)
            .unwrap_or_else(|_| panic!("the system has no random source"));
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A nonce for sealing a session id.
    pub fn nonce(&self) -> [u8; ring::aead::NONCE_LEN] {
        let mut n = [0u8; ring::aead::NONCE_LEN];
        self.rng
            .fill(&mut n)
            .unwrap_or_else(|_| panic!("the system has no random source"));
        n
    }

    /// The keys session ids of a route are sealed and opened with: the tenant's ring, else this
    /// process's key.
    pub fn keys(&self, tenant_keys: Option<&Arc<SessionKeyRing>>) -> Arc<SessionKeyRing> {
        tenant_keys.unwrap_or(&self.process_key).clone()
    }

    fn sweep(&self) {
        if let Ok(mut m) = self.sse.lock() {
            m.retain(|_, (c, used)| c.alive() && used.elapsed() < IDLE);
        }
    }

    /// The SSE connection of `session` to `target`, when this replica has a live one.
    pub fn sse_conn(&self, session: &str, target: &str) -> Option<Arc<SseConn>> {
        let mut m = self.sse.lock().ok()?;
        let key = (session.to_string(), target.to_string());
        match m.get_mut(&key) {
            Some((c, used)) if c.alive() => {
                *used = Instant::now();
                Some(c.clone())
            }
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put_sse_conn(&self, session: &str, target: &str, conn: Arc<SseConn>) {
        self.sweep();
        if let Ok(mut m) = self.sse.lock() {
            m.insert(
                (session.to_string(), target.to_string()),
                (conn, Instant::now()),
            );
        }
    }

    /// Drops every SSE connection of `session` (the client ended it).
    pub fn end_session(&self, session: &str) {
        if let Ok(mut m) = self.sse.lock() {
            m.retain(|(s, _), _| s != session);
        }
    }

    pub fn legacy_client(&self, id: &str) -> Option<Arc<LegacyClient>> {
        self.legacy.lock().ok()?.get(id).cloned()
    }

    pub fn put_legacy_client(&self, id: &str, c: Arc<LegacyClient>) {
        if let Ok(mut m) = self.legacy.lock() {
            m.insert(id.to_string(), c);
        }
    }

    pub fn drop_legacy_client(&self, id: &str) {
        let session = self
            .legacy
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id))
            .and_then(|c| c.session.lock().ok().and_then(|s| s.clone()));
        if let Some(s) = session {
            self.end_session(&s);
        }
    }

    pub fn track(
        &self,
        session: &str,
        client_id: &serde_json::Value,
        target: usize,
        up: serde_json::Value,
    ) {
        if let Ok(mut m) = self.inflight.lock() {
            m.insert((session.to_string(), client_id.to_string()), (target, up));
        }
    }

    pub fn untrack(&self, session: &str, client_id: &serde_json::Value) {
        if let Ok(mut m) = self.inflight.lock() {
            m.remove(&(session.to_string(), client_id.to_string()));
        }
    }

    pub fn tracked(
        &self,
        session: &str,
        client_id: &serde_json::Value,
    ) -> Option<(usize, serde_json::Value)> {
        self.inflight
            .lock()
            .ok()?
            .get(&(session.to_string(), client_id.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_negotiated_as_the_lifecycle_says() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(
            negotiate(Some("2026-07-28")),
            LATEST,
            "a newer one: our latest"
        );
        assert_eq!(negotiate(Some("1999-01-01")), LATEST);
        assert_eq!(negotiate(None), LATEST);
    }

    #[test]
    fn ids_to_targets_differ_between_replicas_and_calls_are_named_by_the_clients_id() {
        let (a, b) = (McpState::default(), McpState::default());
        assert_ne!(a.next_id(), b.next_id(), "two replicas, one shared session");
        assert_ne!(a.next_id(), a.next_id());
        assert_eq!(
            call_id(&serde_json::json!(7)),
            call_id(&serde_json::json!(7))
        );
        assert_ne!(
            call_id(&serde_json::json!(7)),
            call_id(&serde_json::json!("7"))
        );
    }
}
