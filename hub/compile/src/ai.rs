//! AgentgatewayBackends in the compiled snapshot: HTTPRoute backendRefs that name one, their
//! AI routes ([`crate::model::ai::AiSnapshot`]) and their status.
//!
//! Part of the compiler (step 7), pure. A backendRef of kind AgentgatewayBackend is looked up by
//! namespace and name among the AI backends of the route's own cluster ([`Context`]): a route
//! can never name another cluster's, let alone another tenant's. When it resolves, the rule
//! forwards that share to [`AI_GATEWAY_CLUSTER`] with [`TENANT_HEADER`] and [`ROUTE_HEADER`]
//! set (overwriting a client's copies; the xDS translation puts them on the weighted cluster);
//! when it does not (missing, unresolved by the agent, no AI gateway configured), the share gets
//! 500 and the route ResolvedRefs=False (BackendNotFound) with a message saying why.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::ai::{
    AI_GATEWAY_CLUSTER, AiBackend, AiMember, AiRoute, AiRouteProvider, AiRouteTarget, AiTarget,
    AiTargets, AiUpstream, ROUTE_HEADER, TENANT_HEADER, route_id,
};
use crate::model::{
    AppProtocol, Backend, BackendKind, BackendProblem, ClusterKey, Condition, HeaderModifier,
    HttpRoute, Kind, ObjectKey, ObjectStatus,
};
use crate::snapshot::{ClusterSnapshot, SourceObject, WeightedCluster};

/// The prefix of the headers only fleetgate sets (admission refuses them in tenants' filters).
pub const RESERVED_HEADER_PREFIX: &str = "x-fleetgate-";

/// The longest ResolvedRefs message of a backend of `ai.groups`, in characters.
pub const MAX_STATUS_MESSAGE: usize = 8192;

/// What the backendRefs of one cluster's routes resolve against.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub cluster: &'a ClusterKey,
    /// The cluster's AgentgatewayBackends, by namespace and name.
    pub backends: &'a BTreeMap<(String, String), AiBackend>,
    /// The data plane's AI gateways (`dataPlane.aiGateways`).
    pub gateways: &'a [SocketAddr],
}

/// The AI backend a backendRef of kind AgentgatewayBackend names, or why it cannot be used.
pub fn lookup<'a>(ctx: &Context<'a>, b: &Backend) -> Result<&'a AiTargets, BackendProblem> {
    let not_found = |message: String| BackendProblem {
        reason: "BackendNotFound".to_string(),
        message,
    };
    let key = (b.namespace.clone(), b.name.clone());
    let Some(backend) = ctx.backends.get(&key) else {
        return Err(not_found(format!(
            "AgentgatewayBackend {}/{} does not exist in cluster {}, or was rejected (see its status)",
            b.namespace, b.name, ctx.cluster.cluster
        )));
    };
    let target = backend.target.as_ref().map_err(|p| {
        not_found(format!(
            "AgentgatewayBackend {}/{} is not resolved ({}: {})",
            b.namespace, b.name, p.reason, p.message
        ))
    })?;
    if ctx.gateways.is_empty() {
        return Err(not_found(format!(
            "AgentgatewayBackend {}/{} is accepted, but the hub operator has not configured an AI gateway (dataPlane.aiGateways in the hub's configuration), so AI traffic cannot be served yet",
            b.namespace, b.name
        )));
    }
    Ok(target)
}

/// `route` with the problem of every backendRef to an AgentgatewayBackend that does not resolve
/// filled in, so that the route's ResolvedRefs and the 500 share follow the rules of every
/// backend. Borrowed when the route names none.
pub fn resolve_route<'r>(route: &'r HttpRoute, ctx: &Context<'_>) -> Cow<'r, HttpRoute> {
    let names_ai = |b: &Backend| b.kind == BackendKind::AiBackend && b.problem.is_none();
    if !route.rules.iter().flat_map(|r| &r.backends).any(names_ai) {
        return Cow::Borrowed(route);
    }
    let mut out = route.clone();
    for b in out.rules.iter_mut().flat_map(|r| r.backends.iter_mut()) {
        if names_ai(b)
            && let Err(p) = lookup(ctx, b)
        {
            b.problem = Some(Box::new(p));
        }
    }
    Cow::Owned(out)
}

/// Where a resolved backendRef to an AgentgatewayBackend sends its share.
pub enum Forward {
    /// To the AI gateways, with the identity headers set.
    Gateway(WeightedCluster),
    /// A cluster-local backend without ready endpoints: to this cluster without endpoints, which
    /// the data plane answers with 503 (Gateway API: no ready endpoints).
    NoEndpoints(ClusterSnapshot),
}

/// The weighted cluster of a backendRef `b` (kind AgentgatewayBackend, resolved to `target`) of
/// a route of `ctx.cluster`; `unready_name` names the endpoint-less cluster of a backend without
/// ready endpoints.
pub fn forward(
    ctx: &Context<'_>,
    b: &Backend,
    target: &AiTargets,
    unready_name: String,
    src: &Arc<SourceObject>,
) -> Forward {
    if route_target(target).is_none() {
        return Forward::NoEndpoints(ClusterSnapshot {
            name: unready_name,
            endpoints: Vec::new(),
            protocol: AppProtocol::Http1,
            sources: vec![src.clone()],
        });
    }
    let mut request_headers = b.request_headers.clone();
    strip_reserved(&mut request_headers);
    request_headers.set.extend([
        (TENANT_HEADER.to_string(), ctx.cluster.tenant.clone()),
        (
            ROUTE_HEADER.to_string(),
            route_id(&ctx.cluster.cluster, &b.namespace, &b.name),
        ),
    ]);
    Forward::Gateway(WeightedCluster {
        cluster: AI_GATEWAY_CLUSTER.to_string(),
        weight: b.weight,
        request_headers,
        response_headers: b.response_headers.clone(),
    })
}

/// The cluster of the AI gateway replicas: fleetgate's own (no source), HTTP/1.1.
pub fn gateway_cluster(gateways: &[SocketAddr]) -> ClusterSnapshot {
    ClusterSnapshot {
        name: AI_GATEWAY_CLUSTER.to_string(),
        endpoints: gateways.to_vec(),
        protocol: AppProtocol::Http1,
        sources: Vec::new(),
    }
}

/// Drops a tenant's changes to fleetgate's own headers. Admission refuses them; this keeps
/// intent stored before that rule from overriding the identity headers, which Envoy applies
/// before route-level changes.
pub fn strip_reserved(m: &mut HeaderModifier) {
    let reserved = |n: &str| n.to_ascii_lowercase().starts_with(RESERVED_HEADER_PREFIX);
    m.set.retain(|(n, _)| !reserved(n));
    m.add.retain(|(n, _)| !reserved(n));
    m.remove.retain(|n| !reserved(n));
}

/// The AI routes of one cluster, by route id: one per resolved backend that the AI gateway can
/// serve (a cluster-local backend without ready endpoints has none: its requests get 503 from the
/// data plane and never reach the gateway, which would otherwise dial its host).
pub fn routes(
    ck: &ClusterKey,
    backends: &BTreeMap<(String, String), AiBackend>,
) -> BTreeMap<String, AiRoute> {
    backends
        .values()
        .filter_map(|b| {
            let target = route_target(b.target.as_ref().ok()?)?;
            let route = AiRoute {
                target,
                model_aliases: b.model_aliases.clone(),
                source: SourceObject {
                    cluster: ck.clone(),
                    object: key(b),
                },
            };
            Some((
                route_id(&ck.cluster, &b.meta.namespace, &b.meta.name),
                route,
            ))
        })
        .collect()
}

/// What the AI gateway gets for a resolved backend: `None` when it has no provider the gateway
/// may dial. A provider is left out when it did not resolve, or when its host is a Service of
/// the cluster without ready endpoints (the gateway would otherwise dial the host's name); a
/// group left empty is dropped, so failover goes straight to the next one.
pub fn route_target(t: &AiTargets) -> Option<AiRouteTarget> {
    match t {
        AiTargets::Provider(t) => route_provider("", t).map(AiRouteTarget::Provider),
        AiTargets::Groups(groups) => {
            let groups: Vec<Vec<AiRouteProvider>> = groups
                .iter()
                .map(|members| {
                    members
                        .iter()
                        .filter_map(|m| route_provider(&m.name, m.target.as_ref().ok()?))
                        .collect::<Vec<_>>()
                })
                .filter(|g| !g.is_empty())
                .collect();
            (!groups.is_empty()).then_some(AiRouteTarget::Groups(groups))
        }
        // A target whose Service has no ready endpoint is left out; none left: no route.
        AiTargets::Mcp(m) => {
            let mut spec = m.mcp.clone();
            spec.targets
                .retain(|t| !matches!(&t.upstream, AiUpstream::Cluster(e) if e.is_empty()));
            (!spec.targets.is_empty()).then_some(AiRouteTarget::Mcp(spec))
        }
    }
}

fn route_provider(name: &str, t: &AiTarget) -> Option<AiRouteProvider> {
    let endpoints = match &t.upstream {
        AiUpstream::Cluster(e) if e.is_empty() => return None,
        AiUpstream::Cluster(e) => e.clone(),
        AiUpstream::External => Vec::new(),
    };
    Some(AiRouteProvider {
        tls: AiRoute::reached_over_tls(&endpoints, t.port),
        name: name.to_string(),
        provider: t.provider.clone(),
        host: t.host.clone(),
        port: t.port,
        path: t.path.clone(),
        path_prefix: t.path_prefix.clone(),
        endpoints,
        auth: t.auth.clone(),
    })
}

fn key(b: &AiBackend) -> ObjectKey {
    ObjectKey {
        kind: Kind::AiBackend,
        namespace: b.meta.namespace.clone(),
        name: b.meta.name.clone(),
    }
}

/// The status of every AgentgatewayBackend of a cluster, in key order: Accepted and
/// ResolvedRefs, True when it resolved, both False with the agent's reason when not. A backend
/// of `ai.groups` says which providers resolved: ResolvedRefs is False (with the first
/// unresolved provider's reason) while one of them is not, and the others serve.
pub fn statuses(backends: &BTreeMap<(String, String), AiBackend>) -> Vec<ObjectStatus> {
    backends
        .values()
        .map(|b| {
            let conditions = match &b.target {
                Ok(t) => {
                    let (resolved, reason, message) = resolved_refs(t);
                    vec![
                        Condition::new("Accepted", true, "Accepted", "backend accepted"),
                        Condition::new("ResolvedRefs", resolved, &reason, message),
                    ]
                }
                Err(p) => vec![
                    Condition::new("Accepted", false, &p.reason, &p.message),
                    Condition::new("ResolvedRefs", false, &p.reason, &p.message),
                ],
            };
            ObjectStatus {
                key: key(b),
                observed_generation: b.meta.generation,
                conditions,
                addresses: Vec::new(),
                listeners: Vec::new(),
                parents: Vec::new(),
                load_balancer: Vec::new(),
                attached_listener_sets: 0,
            }
        })
        .collect()
}

/// ResolvedRefs of a resolved backend: whether every provider resolved, the reason, and a
/// message naming each provider of `ai.groups` with where it leads or why it does not.
fn resolved_refs(t: &AiTargets) -> (bool, String, String) {
    match t {
        AiTargets::Provider(t) => (true, "ResolvedRefs".to_string(), resolved_message(t)),
        AiTargets::Mcp(m) => {
            let parts: Vec<String> = m
                .mcp
                .targets
                .iter()
                .map(|t| {
                    let where_ = match &t.upstream {
                        AiUpstream::Cluster(e) if e.is_empty() => format!(
                            "host {} is a Service of the cluster without ready endpoints; left out until one is ready",
                            t.host
                        ),
                        AiUpstream::Cluster(e) => format!(
                            "host {} resolved to {} ready endpoint(s) in the cluster",
                            t.host,
                            e.len()
                        ),
                        AiUpstream::External => format!(
                            "host {}:{} is outside the cluster, on the tenant's egress allowlist",
                            t.host, t.port
                        ),
                    };
                    format!("{} ({}): {where_}", t.name, t.protocol)
                })
                .collect();
            let message: String = format!(
                "{} MCP target(s) of spec.mcp: {}",
                m.mcp.targets.len(),
                parts.join("; ")
            )
            .chars()
            .take(MAX_STATUS_MESSAGE)
            .collect();
            (true, "ResolvedRefs".to_string(), message)
        }
        AiTargets::Groups(groups) => {
            let total: usize = groups.iter().map(Vec::len).sum();
            let resolved = t.resolved().len();
            let parts: Vec<String> = groups
                .iter()
                .enumerate()
                .flat_map(|(g, members)| {
                    members
                        .iter()
                        .enumerate()
                        .map(move |(i, m)| member_message(g, i, m))
                })
                .collect();
            // Bounded: 8 groups of 16 providers with long messages stay a readable condition.
            let message: String = format!(
                "{resolved} of {total} providers of spec.ai.groups resolved: {}",
                parts.join("; ")
            )
            .chars()
            .take(MAX_STATUS_MESSAGE)
            .collect();
            let first_problem = groups
                .iter()
                .flatten()
                .find_map(|m| m.target.as_ref().err());
            match first_problem {
                None => (true, "ResolvedRefs".to_string(), message),
                Some(p) => (false, p.reason.clone(), message),
            }
        }
    }
}

fn member_message(g: usize, i: usize, m: &AiMember) -> String {
    let what = match &m.target {
        Ok(t) if matches!(&t.upstream, AiUpstream::Cluster(e) if e.is_empty()) => format!(
            "host {} is a Service of the cluster without ready endpoints; left out of failover until one is ready",
            t.host
        ),
        Ok(t) => resolved_message(t),
        Err(p) => format!("not resolved ({}: {})", p.reason, p.message),
    };
    format!("groups[{g}].providers[{i}] ({}): {what}", m.name)
}

fn resolved_message(t: &AiTarget) -> String {
    match &t.upstream {
        AiUpstream::Cluster(e) if e.is_empty() => format!(
            "host {} is a Service of the cluster without ready endpoints; requests get 503 until one is ready",
            t.host
        ),
        AiUpstream::Cluster(e) => format!(
            "host {} resolved to {} ready endpoint(s) in the cluster",
            t.host,
            e.len()
        ),
        AiUpstream::External => format!(
            "host {}:{} is outside the cluster, on the tenant's egress allowlist",
            t.host, t.port
        ),
    }
}
