//! The per-tenant catalog of A2A agents: what each tenant exposes through the AI gateways, for
//! the operators' dashboard (issue 13), read from the compiled snapshot (pure).
//!
//! The hub knows each agent's route, the AgentgatewayBackend it came from and where the gateways
//! reach it; it does not fetch agent cards (it never dials into tenants' networks), so an
//! agent's skills are what the AI gateways report from the cards they fetch
//! (`fleetgate_ai_gateway::a2a::telemetry::A2aTelemetry::agents`), not part of this catalog.

use std::collections::BTreeMap;

use crate::SourceObject;
use crate::ai::{AiProvider, AiRouteTarget, AiSnapshot};

/// One A2A agent of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogAgent {
    /// The route id (`<cluster>/<namespace>/<name>`), the value of `x-fleetgate-route`.
    pub route: String,
    /// The AgentgatewayBackend it came from.
    pub source: SourceObject,
    /// `spec.a2a.host` and port as the tenant wrote them (its Service, or an allowed host).
    pub host: String,
    pub port: u16,
    /// How many ready endpoints the gateways spread calls over (0: `host:port` itself).
    pub endpoints: usize,
}

/// Every tenant's A2A agents, by tenant, in route order; tenants without one are left out.
pub fn a2a_catalog(ai: &AiSnapshot) -> BTreeMap<String, Vec<CatalogAgent>> {
    ai.tenants
        .iter()
        .filter_map(|(tenant, t)| {
            let agents: Vec<CatalogAgent> = t
                .routes
                .iter()
                .filter_map(|(id, route)| match &route.target {
                    AiRouteTarget::Provider(p) if p.provider == AiProvider::A2a => {
                        Some(CatalogAgent {
                            route: id.clone(),
                            source: route.source.clone(),
                            host: p.host.clone(),
                            port: p.port,
                            endpoints: p.endpoints.len(),
                        })
                    }
                    _ => None,
                })
                .collect();
            (!agents.is_empty()).then(|| (tenant.clone(), agents))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::{AiAuth, AiRoute, AiRouteProvider, AiTenant};
    use crate::{ClusterKey, Kind, ObjectKey};

    fn route(tenant: &str, name: &str, provider: AiProvider) -> AiRoute {
        AiRoute {
            target: AiRouteTarget::Provider(AiRouteProvider {
                name: String::new(),
                provider,
                host: format!("{name}.agents.svc.cluster.local"),
                port: 9999,
                path: None,
                path_prefix: None,
                endpoints: vec!["127.0.1.10:31999".parse().unwrap()],
                tls: false,
                auth: AiAuth::None,
            }),
            model_aliases: Default::default(),
            source: SourceObject {
                cluster: ClusterKey {
                    tenant: tenant.into(),
                    cluster: "c1".into(),
                },
                object: ObjectKey {
                    kind: Kind::AiBackend,
                    namespace: "default".into(),
                    name: name.into(),
                },
            },
        }
    }

    /// Each tenant sees its own agents only, LLM routes are not agents, and a tenant without
    /// an agent is not listed.
    #[test]
    fn the_catalog_lists_each_tenants_agents_only() {
        let mut ai = AiSnapshot::default();
        let mut a = AiTenant::default();
        a.routes.insert(
            "c1/default/echo".into(),
            route("a", "echo", AiProvider::A2a),
        );
        a.routes.insert(
            "c1/default/llm".into(),
            route("a", "llm", AiProvider::OpenAi { model: None }),
        );
        ai.tenants.insert("a".into(), a);
        let mut b = AiTenant::default();
        b.routes.insert(
            "c1/default/planner".into(),
            route("b", "planner", AiProvider::A2a),
        );
        ai.tenants.insert("b".into(), b);
        let mut c = AiTenant::default();
        c.routes.insert(
            "c1/default/llm".into(),
            route("c", "llm", AiProvider::OpenAi { model: None }),
        );
        ai.tenants.insert("c".into(), c);

        let catalog = a2a_catalog(&ai);
        assert_eq!(catalog.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            catalog["a"],
            [CatalogAgent {
                route: "c1/default/echo".into(),
                source: route("a", "echo", AiProvider::A2a).source,
                host: "echo.agents.svc.cluster.local".into(),
                port: 9999,
                endpoints: 1,
            }]
        );
        assert_eq!(catalog["b"][0].route, "c1/default/planner");
        assert_eq!(catalog["b"][0].source.cluster.tenant, "b");
    }
}
