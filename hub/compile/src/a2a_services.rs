//! HTTPRoute backendRefs to a Service whose port has appProtocol `agentgateway.dev/a2a`: an A2A
//! agent the AI gateways proxy (agent card rewritten, JSON-RPC passed on), like an
//! AgentgatewayBackend `spec.a2a` naming that Service.
//!
//! Part of the compiler (step 7), pure. The agent resolved the Service to endpoints and
//! admission checked them against the cluster's CIDRs, like any Service's; here such a
//! backendRef forwards its share to the AI gateways with the identity headers (route id
//! [`route_id`]), and becomes an [`AiRoute`] of kind A2A with those endpoints and no key. No
//! ready endpoints: 503 from the data plane, never the gateway; no AI gateway configured: the
//! share gets 500.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::ai::{
    AI_GATEWAY_CLUSTER, AiAuth, AiProvider, AiRoute, AiRouteProvider, AiRouteTarget, ROUTE_HEADER,
    TENANT_HEADER,
};
use crate::model::{AppProtocol, Backend, BackendKind, ClusterKey, HttpRoute, Kind, ObjectKey};
use crate::snapshot::{ClusterSnapshot, SourceObject, WeightedCluster};

/// The appProtocol of a Service port that serves the A2A protocol (agentgateway's name).
pub const A2A_APP_PROTOCOL: &str = "agentgateway.dev/a2a";

/// Whether `b` is a Service port that speaks A2A.
pub fn is_a2a_service(b: &Backend) -> bool {
    b.kind == BackendKind::Service && b.app_protocol == AppProtocol::A2a
}

/// The route id of a Service port: `<cluster>/<namespace>/services/<name>/<port>` (five
/// segments, so never the id of an AgentgatewayBackend, whose names have no `/`).
pub fn route_id(cluster: &str, namespace: &str, name: &str, port: u16) -> String {
    format!("{cluster}/{namespace}/services/{name}/{port}")
}

/// Where a resolved backendRef to an A2A Service sends its share: the AI gateways; a Service
/// without ready endpoints to the endpoint-less cluster `unready_name` (503); `None` without
/// an AI gateway (500).
pub fn forward(
    ck: &ClusterKey,
    gateways_configured: bool,
    b: &Backend,
    unready_name: String,
    src: &Arc<SourceObject>,
) -> Option<crate::ai::Forward> {
    if !gateways_configured {
        return None;
    }
    if b.endpoints.is_empty() {
        return Some(crate::ai::Forward::NoEndpoints(ClusterSnapshot {
            name: unready_name,
            endpoints: Vec::new(),
            protocol: AppProtocol::Http1,
            sources: vec![src.clone()],
        }));
    }
    let mut request_headers = b.request_headers.clone();
    crate::ai::strip_reserved(&mut request_headers);
    request_headers.set.extend([
        (TENANT_HEADER.to_string(), ck.tenant.clone()),
        (
            ROUTE_HEADER.to_string(),
            route_id(&ck.cluster, &b.namespace, &b.name, b.port),
        ),
    ]);
    Some(crate::ai::Forward::Gateway(WeightedCluster {
        cluster: AI_GATEWAY_CLUSTER.to_string(),
        weight: b.weight,
        request_headers,
        response_headers: b.response_headers.clone(),
    }))
}

/// The A2A routes of one cluster's HTTPRoutes: one per Service port of appProtocol
/// `agentgateway.dev/a2a` with ready endpoints that some rule names (the first route naming it
/// is its source).
pub fn routes(
    ck: &ClusterKey,
    http_routes: &BTreeMap<(String, String), HttpRoute>,
) -> BTreeMap<String, AiRoute> {
    let mut out = BTreeMap::new();
    for route in http_routes.values() {
        for b in route.rules.iter().flat_map(|r| &r.backends) {
            if !is_a2a_service(b) || b.problem.is_some() || b.endpoints.is_empty() {
                continue;
            }
            out.entry(route_id(&ck.cluster, &b.namespace, &b.name, b.port))
                .or_insert_with(|| AiRoute {
                    target: AiRouteTarget::Provider(AiRouteProvider {
                        name: String::new(),
                        provider: AiProvider::A2a,
                        host: format!("{}.{}.svc.cluster.local", b.name, b.namespace),
                        port: b.port,
                        path: None,
                        path_prefix: None,
                        endpoints: b.endpoints.to_vec(),
                        tls: false,
                        auth: AiAuth::None,
                    }),
                    model_aliases: BTreeMap::new(),
                    source: SourceObject {
                        cluster: ck.clone(),
                        object: ObjectKey {
                            kind: Kind::HttpRoute,
                            namespace: route.meta.namespace.clone(),
                            name: route.meta.name.clone(),
                        },
                    },
                });
        }
    }
    out
}
