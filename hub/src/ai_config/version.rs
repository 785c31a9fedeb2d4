//! Per-tenant versions of the AI configuration: what every AI gateway replica is sent.
//!
//! A tenant's version changes exactly when its content ([`AiTenant`]) changes, and only ever
//! increases, also across hub restarts: a new version is the larger of the last one issued
//! plus one and the wall clock in microseconds. A restarted hub therefore issues versions
//! above every one it issued before (unless it issued more than one version per microsecond
//! on average, which compiling cannot), and a gateway's `Hello.serving` and a refusal's
//! version stay comparable with the hub's.
//!
//! One writer: the publisher task (`super::server::publish`) owns the [`Versioner`] and
//! publishes each [`Published`] through a watch channel every stream reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use fleetgate_proto::aigateway::v1 as pb;

use crate::model::ai::{AiRouteTarget, AiSnapshot, AiTenant};
use crate::model::snapshot::SourceObject;
use crate::session_secret::SecretRing;

/// Everything the AI gateways are to serve now, per tenant, with versions.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub tenants: BTreeMap<String, Arc<PublishedTenant>>,
}

/// Equal when the same tenants are at the same versions (one [`Versioner`] gives one content
/// one version).
impl PartialEq for Published {
    fn eq(&self, other: &Self) -> bool {
        self.tenants.len() == other.tenants.len()
            && self
                .tenants
                .iter()
                .zip(&other.tenants)
                .all(|((a, pa), (b, pb))| a == b && pa.version == pb.version)
    }
}

/// One tenant at one version: its content, and the message built from it once.
#[derive(Debug, PartialEq)]
pub struct PublishedTenant {
    pub version: u64,
    pub content: AiTenant,
    /// `content` on the wire (`super::convert::tenant_config`).
    pub config: pb::TenantConfig,
    /// The ids of the MCP session keys in `config` (empty for a tenant without an MCP route):
    /// a rotation gives the tenant a new version.
    pub key_ids: Vec<u32>,
}

impl PublishedTenant {
    /// The AgentgatewayBackend behind each route id.
    pub fn source(&self, route_id: &str) -> Option<&SourceObject> {
        self.content.routes.get(route_id).map(|r| &r.source)
    }
}

/// Issues versions; see the module comment. Also holds the ring of secrets the tenants' MCP
/// session keys are derived from (`crate::session_secret`): the publisher task loads it from
/// the store and sets each rotation here, so every tenant with an MCP route is sent its keys.
pub struct Versioner {
    last: u64,
    ring: SecretRing,
}

impl std::fmt::Debug for Versioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioner")
            .field("last", &self.last)
            .field("ring", &self.ring)
            .finish()
    }
}

/// A versioner with a fresh ring (tests of other parts).
impl Default for Versioner {
    fn default() -> Self {
        Self::new(SecretRing::generate(0))
    }
}

/// Whether any route of `ai` is an MCP backend (only those tenants get session keys).
fn has_mcp(ai: &AiTenant) -> bool {
    ai.routes
        .values()
        .any(|r| matches!(r.target, AiRouteTarget::Mcp(_)))
}

impl Versioner {
    /// A versioner sending keys derived from `ring`.
    pub fn new(ring: SecretRing) -> Self {
        Self { last: 0, ring }
    }

    /// The ring keys are derived from from now on; the next [`Versioner::publish`] gives every
    /// tenant with an MCP route a new version with its new keys.
    pub fn set_ring(&mut self, ring: SecretRing) {
        self.ring = ring;
    }

    /// The next version at wall-clock time `now_micros`.
    fn issue(&mut self, now_micros: u64) -> u64 {
        self.last = self.last.saturating_add(1).max(now_micros);
        self.last
    }

    /// The versions of `ai`: a tenant whose content equals its content in `previous` keeps its
    /// version (and the same `Arc`); a new or changed one gets a new version.
    pub fn publish(&mut self, previous: &Published, ai: &AiSnapshot, now_micros: u64) -> Published {
        let tenants = ai
            .tenants
            .iter()
            .map(|(name, content)| {
                let key_ids = if has_mcp(content) {
                    self.ring.ids()
                } else {
                    Vec::new()
                };
                let kept = previous
                    .tenants
                    .get(name)
                    .filter(|p| p.content == *content && p.key_ids == key_ids)
                    .cloned();
                let published = kept.unwrap_or_else(|| {
                    let version = self.issue(now_micros);
                    let mut config = super::convert::tenant_config(name, content, version);
                    if !key_ids.is_empty() {
                        config.mcp_session_keys = self.ring.tenant_keys(name);
                    }
                    Arc::new(PublishedTenant {
                        version,
                        content: content.clone(),
                        config,
                        key_ids,
                    })
                });
                (name.clone(), published)
            })
            .collect();
        Published { tenants }
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_config::convert::tests::route;
    use crate::model::ai::AiAuth;

    fn snap(tenants: &[(&str, u16)]) -> AiSnapshot {
        AiSnapshot {
            tenants: tenants
                .iter()
                .map(|(t, port)| {
                    let routes = [(
                        "c1/llm/local-llm".to_string(),
                        route(t, "local-llm", *port, AiAuth::None),
                    )]
                    .into();
                    (
                        t.to_string(),
                        AiTenant {
                            routes,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        }
    }

    fn versions(p: &Published) -> Vec<(&str, u64)> {
        p.tenants
            .iter()
            .map(|(t, p)| (t.as_str(), p.version))
            .collect()
    }

    #[test]
    fn a_version_changes_exactly_when_the_tenants_content_does() {
        let mut v = Versioner::default();
        let first = v.publish(&Published::default(), &snap(&[("a", 1), ("b", 1)]), 1000);
        assert_eq!(versions(&first), [("a", 1000), ("b", 1001)]);
        assert_eq!(first.tenants["a"].config.version, 1000);

        // Same content: same versions, same Arcs (nothing re-encoded, nothing resent).
        let same = v.publish(&first, &snap(&[("a", 1), ("b", 1)]), 5000);
        assert_eq!(same, first);
        assert!(Arc::ptr_eq(&same.tenants["a"], &first.tenants["a"]));

        // b changes: only b gets a new version, from the clock.
        let changed = v.publish(&same, &snap(&[("a", 1), ("b", 2)]), 5000);
        assert_eq!(versions(&changed), [("a", 1000), ("b", 5000)]);
        // A clock that stands still (or goes back) still gives a larger version.
        let again = v.publish(&changed, &snap(&[("a", 2), ("b", 2)]), 10);
        assert_eq!(versions(&again), [("a", 5001), ("b", 5000)]);
        // A removed tenant is gone; coming back it gets a new version.
        let without = v.publish(&again, &snap(&[("b", 2)]), 10);
        assert_eq!(versions(&without), [("b", 5000)]);
        let back = v.publish(&without, &snap(&[("a", 2), ("b", 2)]), 10);
        assert_eq!(versions(&back), [("a", 5002), ("b", 5000)]);
    }

    #[test]
    fn a_restarted_hub_issues_larger_versions_than_before() {
        let start = wall_clock_micros();
        let mut before = Versioner::default();
        let mut last = Published::default();
        for port in 1..=50 {
            last = before.publish(&last, &snap(&[("a", port)]), wall_clock_micros());
        }
        let old = last.tenants["a"].version;
        assert!(old >= start);
        // The restarted hub knows nothing of the old versions but the clock moved on.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut after = Versioner::default();
        let fresh = after.publish(
            &Published::default(),
            &snap(&[("a", 50)]),
            wall_clock_micros(),
        );
        assert!(fresh.tenants["a"].version > old, "{fresh:?} vs {old}");
    }

    /// A rotation gives every tenant with an MCP route a new version carrying the new ring
    /// (current first); a tenant without one keeps its version and gets no keys.
    #[test]
    fn a_rotation_gives_mcp_tenants_new_versions_with_their_new_keys() {
        use crate::model::ai::{AiRouteTarget, McpSpec};
        use crate::session_secret::{Rotation, SecretRing};
        let mut ai = snap(&[("a", 1), ("b", 1)]);
        if let Some(route) = ai
            .tenants
            .get_mut("a")
            .and_then(|t| t.routes.values_mut().next())
        {
            route.target = AiRouteTarget::Mcp(McpSpec {
                targets: vec![],
                failure_mode: String::new(),
                prefix_mode: String::new(),
                session_routing: String::new(),
                authentication: None,
                authorization: None,
                accept_tools: vec![],
            });
        }
        let ring = SecretRing::generate(100);
        let mut v = Versioner::new(ring.clone());
        let first = v.publish(&Published::default(), &ai, 1000);
        assert_eq!(first.tenants["a"].key_ids, [1]);
        assert_eq!(
            first.tenants["a"].config.mcp_session_keys,
            ring.tenant_keys("a")
        );
        assert!(first.tenants["b"].config.mcp_session_keys.is_empty());

        let rotation = Rotation {
            every: std::time::Duration::from_secs(10),
            grace: std::time::Duration::from_secs(10),
        };
        let rotated = ring.next(110, &rotation, [4; 32]).unwrap();
        v.set_ring(rotated.clone());
        let next = v.publish(&first, &ai, 2000);
        assert_eq!(versions(&next), [("a", 2000), ("b", 1001)]);
        assert_eq!(
            next.tenants["a"].config.mcp_session_keys,
            rotated.tenant_keys("a")
        );
        assert_eq!(
            next.tenants["a"].config.mcp_session_keys[1],
            first.tenants["a"].config.mcp_session_keys[0],
            "the previous key is the second of the ring"
        );
        assert!(Arc::ptr_eq(&next.tenants["b"], &first.tenants["b"]));
        // Unchanged ring and content: nothing new.
        assert_eq!(v.publish(&next, &ai, 3000), next);
    }
}
