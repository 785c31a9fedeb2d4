//! Translate (pure): a [`ClusterState`] snapshot -> the `fleetgate.spoke.v1` objects the hub gets.
//!
//! Where it sits: between the sources (`watch`, `manifests`) and `sync`. It claims the
//! GatewayClasses whose controllerName is [`CONTROLLER_NAME`], sends only Gateways of claimed
//! classes and the ListenerSets whose parentRef names one of them (whether the Gateway's
//! `allowedListeners` takes a ListenerSet is the hub's call), and sends an HTTPRoute when one of
//! its parentRefs points to a sent Gateway or ListenerSet (only those parentRefs are sent). Backends (and RequestMirror backends) are resolved by
//! [`crate::resolve`]. What fleetgate cannot express is dropped with a log line, never widened: a
//! match that cannot be sent is dropped, a rule whose matches were all dropped is dropped, and a
//! rule with a filter fleetgate does not implement (ExtensionRef) is dropped.

use std::collections::BTreeSet;

use fleetgate_proto::spoke::v1::{
    self as pb, AllowedRoutes, HeaderMatch, HttpRouteMatch, Kind, Listener, Object, ObjectRef,
    ParentRef, PathMatch, QueryParamMatch, object, path_match,
};
use gateway_api::gateways::{
    Gateway, GatewayAllowedListenersNamespacesFrom, GatewayListeners,
    GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTls, GatewayListenersTlsMode,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use gateway_api::listenersets::ListenerSet;
use gateway_api::tlsroutes::{TlsRoute, TlsRouteParentRefs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tracing::warn;

use crate::CONTROLLER_NAME;
use crate::config::EndpointMode;
use crate::resolve::certificate::resolve_certificate;
use crate::resolve::namespaces;
use crate::resolve::{BackendRef, Index, resolve_backend, resolve_backend_ref};
use crate::state::ClusterState;

pub mod filters;
pub mod grpc;

/// The Gateway API group of Gateway, the default of a parentRef.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Names of the GatewayClasses this agent claims.
pub fn claimed_classes(state: &ClusterState) -> BTreeSet<String> {
    state
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

/// (namespace, name) of the Gateways that are sent: those of a claimed class.
pub fn sent_gateways(
    state: &ClusterState,
    claimed: &BTreeSet<String>,
) -> BTreeSet<(String, String)> {
    state
        .gateways
        .iter()
        .filter(|g| claimed.contains(&g.spec.gateway_class_name))
        .filter_map(|g| ns_name(&g.metadata))
        .collect()
}

/// The parents routes may name that the agent sends: Gateways of claimed classes and the
/// ListenerSets whose parent is one of them, by (namespace, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentParents {
    pub gateways: BTreeSet<(String, String)>,
    pub listener_sets: BTreeSet<(String, String)>,
}

impl SentParents {
    /// The sent Gateways and ListenerSets of `state`.
    pub fn of(state: &ClusterState, claimed: &BTreeSet<String>) -> Self {
        let gateways = sent_gateways(state, claimed);
        let listener_sets = state
            .listener_sets
            .iter()
            .filter(|s| listener_set_parent(s).is_some_and(|p| gateways.contains(&p)))
            .filter_map(|s| ns_name(&s.metadata))
            .collect();
        Self {
            gateways,
            listener_sets,
        }
    }

    fn contains(&self, p: &ParentRef) -> bool {
        let key = (p.namespace.clone(), p.name.clone());
        match p.kind.as_str() {
            "ListenerSet" => self.listener_sets.contains(&key),
            _ => self.gateways.contains(&key),
        }
    }
}

/// The parentRefs (in HTTPRoute form; every route kind's have its schema) of a route in
/// `route_ns` that point to a Gateway or ListenerSet the agent sends. A route with none is not
/// sent.
pub(crate) fn sent_parent_refs<P: std::borrow::Borrow<HttpRouteParentRefs>>(
    route_ns: &str,
    parents: impl IntoIterator<Item = P>,
    sent: &SentParents,
) -> Vec<ParentRef> {
    parents
        .into_iter()
        .filter_map(|p| parent_ref(route_ns, p.borrow()))
        .filter(|p| sent.contains(p))
        .collect()
}

/// A route's parentRef as sent to the hub, when it points to a Gateway or a ListenerSet
/// (namespace defaulted to the route's; group and kind always written out); `None` for other
/// kinds.
pub fn parent_ref(route_ns: &str, p: &HttpRouteParentRefs) -> Option<ParentRef> {
    let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = p.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || !matches!(kind, "Gateway" | "ListenerSet") {
        return None;
    }
    Some(ParentRef {
        namespace: p.namespace.clone().unwrap_or_else(|| route_ns.to_string()),
        name: p.name.clone(),
        section_name: p.section_name.clone().unwrap_or_default(),
        port: p.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        group: GATEWAY_GROUP.to_string(),
        kind: kind.to_string(),
    })
}

/// The Gateway (namespace, name) a ListenerSet's parentRef names; `None` when it names another
/// kind.
pub fn listener_set_parent(s: &ListenerSet) -> Option<(String, String)> {
    let p = &s.spec.parent_ref;
    let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = p.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let ns = p
        .namespace
        .clone()
        .or_else(|| s.metadata.namespace.clone())?;
    Some((ns, p.name.clone()))
}

/// The whole intent of the cluster, Gateways first, each kind sorted by namespace/name.
pub fn translate(state: &ClusterState, mode: EndpointMode) -> Vec<Object> {
    let claimed = claimed_classes(state);
    let sent = SentParents::of(state, &claimed);
    let index = Index::new(state, mode);
    let mut gateways: Vec<Object> = state
        .gateways
        .iter()
        .filter(|g| claimed.contains(&g.spec.gateway_class_name))
        .filter_map(|g| gateway_object(g, &state.namespaces, &index))
        .collect();
    let mut listener_sets: Vec<Object> = state
        .listener_sets
        .iter()
        .filter(|s| ns_name(&s.metadata).is_some_and(|k| sent.listener_sets.contains(&k)))
        .filter_map(|s| listener_set_object(s, &state.namespaces, &index))
        .collect();
    let mut routes: Vec<Object> = state
        .http_routes
        .iter()
        .filter_map(|r| route_object(r, &sent, &index))
        .collect();
    let mut tls_routes: Vec<Object> = state
        .tls_routes
        .iter()
        .filter_map(|r| tls_route_object(r, &sent, &index))
        .collect();
    let key = |o: &Object| {
        o.r#ref
            .as_ref()
            .map(|r| (r.namespace.clone(), r.name.clone()))
    };
    gateways.sort_by_key(key);
    listener_sets.sort_by_key(key);
    gateways.extend(listener_sets);
    routes.sort_by_key(key);
    tls_routes.sort_by_key(key);
    gateways.extend(routes);
    gateways.extend(tls_routes);
    let mut grpc_routes: Vec<Object> = state
        .grpc_routes
        .iter()
        .filter_map(|r| grpc::grpc_route_object(r, &sent, &index))
        .collect();
    grpc_routes.sort_by_key(key);
    gateways.extend(grpc_routes);
    gateways
}

pub(crate) fn ns_name(m: &ObjectMeta) -> Option<(String, String)> {
    Some((m.namespace.clone()?, m.name.clone()?))
}

pub(crate) fn object_header(kind: Kind, m: &ObjectMeta) -> Option<Object> {
    let (namespace, name) = ns_name(m)?;
    Some(Object {
        r#ref: Some(ObjectRef {
            kind: kind as i32,
            namespace,
            name,
        }),
        generation: m.generation.unwrap_or(0),
        creation_timestamp: m
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        spec: None,
    })
}

fn gateway_object(
    g: &Gateway,
    all_namespaces: &[k8s_openapi::api::core::v1::Namespace],
    index: &Index<'_>,
) -> Option<Object> {
    let mut o = object_header(Kind::Gateway, &g.metadata)?;
    let gateway_ns = g.metadata.namespace.clone().unwrap_or_default();
    let listeners = g
        .spec
        .listeners
        .iter()
        .map(|l| listener("Gateway", &gateway_ns, l, all_namespaces, index))
        .collect();
    let allowed = g
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let allowed_listeners = allowed.map(|a| {
        let (from, namespaces) = match a.from {
            None | Some(GatewayAllowedListenersNamespacesFrom::None) => ("None", Vec::new()),
            Some(GatewayAllowedListenersNamespacesFrom::Same) => ("Same", Vec::new()),
            Some(GatewayAllowedListenersNamespacesFrom::All) => ("All", Vec::new()),
            // Resolved here like allowedRoutes; a selector the agent cannot read selects none.
            Some(GatewayAllowedListenersNamespacesFrom::Selector) => (
                "Selector",
                a.selector
                    .as_ref()
                    .and_then(grpc::same_schema)
                    .map(|s| namespaces::select(&s, all_namespaces))
                    .unwrap_or_default(),
            ),
        };
        pb::AllowedListeners {
            from: from.to_string(),
            namespaces,
        }
    });
    o.spec = Some(object::Spec::Gateway(pb::Gateway {
        gateway_class_name: g.spec.gateway_class_name.clone(),
        listeners,
        allowed_listeners,
    }));
    Some(o)
}

/// A ListenerSet whose parent Gateway is sent. Its listeners have the Gateway listeners' schema
/// and are translated by the same code; certificateRefs resolve in the ListenerSet's namespace
/// with ReferenceGrants from kind ListenerSet.
fn listener_set_object(
    s: &ListenerSet,
    all_namespaces: &[k8s_openapi::api::core::v1::Namespace],
    index: &Index<'_>,
) -> Option<Object> {
    let mut o = object_header(Kind::ListenerSet, &s.metadata)?;
    let (ns, name) = ns_name(&s.metadata)?;
    let (parent_namespace, parent_name) = listener_set_parent(s)?;
    let mut listeners = Vec::new();
    for l in &s.spec.listeners {
        match grpc::same_schema::<_, GatewayListeners>(l) {
            Some(gl) => listeners.push(listener("ListenerSet", &ns, &gl, all_namespaces, index)),
            None => {
                warn!(listener_set = %format!("{ns}/{name}"), listener = %l.name, "dropping a listener fleetgate cannot read")
            }
        }
    }
    o.spec = Some(object::Spec::ListenerSet(pb::ListenerSet {
        parent_namespace,
        parent_name,
        listeners,
    }));
    Some(o)
}

/// One listener of a Gateway or a ListenerSet (`owner_kind`, in namespace `owner_ns`):
/// allowedRoutes Selector resolved into namespaces, certificateRefs resolved.
fn listener(
    owner_kind: &'static str,
    owner_ns: &str,
    l: &GatewayListeners,
    all_namespaces: &[k8s_openapi::api::core::v1::Namespace],
    index: &Index<'_>,
) -> Listener {
    let ns = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let from = ns.and_then(|n| n.from.clone());
    let (from, namespaces) = match from {
        None | Some(GatewayListenersAllowedRoutesNamespacesFrom::Same) => ("Same", Vec::new()),
        Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => ("All", Vec::new()),
        // Resolved here into the namespaces the selector selects now; a missing
        // selector selects none (the Gateway API requires one with Selector).
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector) => (
            "Selector",
            ns.and_then(|n| n.selector.as_ref())
                .map(|s| namespaces::select(s, all_namespaces))
                .unwrap_or_default(),
        ),
    };
    Listener {
        name: l.name.clone(),
        protocol: l.protocol.clone(),
        port: u32::try_from(l.port).unwrap_or(0),
        hostname: l.hostname.clone().unwrap_or_default(),
        allowed_routes: Some(AllowedRoutes {
            from: from.to_string(),
            namespaces,
            // Group defaulted as the Gateway API does; the hub intersects with what
            // it serves.
            kinds: l
                .allowed_routes
                .as_ref()
                .and_then(|a| a.kinds.as_ref())
                .into_iter()
                .flatten()
                .map(|k| pb::RouteGroupKind {
                    group: k.group.clone().unwrap_or_else(|| GATEWAY_GROUP.to_string()),
                    kind: k.kind.clone(),
                })
                .collect(),
        }),
        tls: l
            .tls
            .as_ref()
            .map(|t| listener_tls(owner_kind, owner_ns, t, index)),
    }
}

/// A TLSRoute's parentRef in the HTTPRoute type (TLSRoute v1 uses the same schema).
pub fn tls_parent_as_http(p: &TlsRouteParentRefs) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}

/// A TLSRoute, when one of its parentRefs points to a sent Gateway (only those are sent);
/// backendRefs resolved like an HTTPRoute's, with grants checked for kind TLSRoute.
fn tls_route_object(r: &TlsRoute, sent: &SentParents, index: &Index<'_>) -> Option<Object> {
    let mut o = object_header(Kind::TlsRoute, &r.metadata)?;
    let (ns, _) = ns_name(&r.metadata)?;
    let parent_refs = sent_parent_refs(
        &ns,
        r.spec.parent_refs.iter().flatten().map(tls_parent_as_http),
        sent,
    );
    if parent_refs.is_empty() {
        return None;
    }
    let rules = r
        .spec
        .rules
        .iter()
        .map(|rule| pb::TlsRouteRule {
            name: rule.name.clone().unwrap_or_default(),
            backends: rule
                .backend_refs
                .iter()
                .map(|b| {
                    let view = BackendRef {
                        group: b.group.as_deref(),
                        kind: b.kind.as_deref(),
                        namespace: b.namespace.as_deref(),
                        name: &b.name,
                        port: b.port,
                        weight: b.weight,
                    };
                    resolve_backend_ref("TLSRoute", &ns, view, index, "TCP")
                })
                .collect(),
        })
        .collect();
    o.spec = Some(object::Spec::TlsRoute(pb::TlsRoute {
        parent_refs,
        hostnames: r.spec.hostnames.clone(),
        rules,
    }));
    Some(o)
}

/// A listener's `tls` block with its certificateRefs resolved (Terminate only: passthrough
/// listeners use no certificate).
fn listener_tls(
    owner_kind: &'static str,
    owner_ns: &str,
    t: &GatewayListenersTls,
    index: &Index<'_>,
) -> pb::ListenerTls {
    let mode = match t.mode {
        None | Some(GatewayListenersTlsMode::Terminate) => "Terminate",
        Some(GatewayListenersTlsMode::Passthrough) => "Passthrough",
    };
    let certificates = if mode == "Terminate" {
        t.certificate_refs
            .iter()
            .flatten()
            .map(|r| resolve_certificate(owner_kind, owner_ns, r, index))
            .collect()
    } else {
        Vec::new()
    };
    pb::ListenerTls {
        mode: mode.to_string(),
        certificates,
    }
}

fn route_object(r: &HttpRoute, sent: &SentParents, index: &Index<'_>) -> Option<Object> {
    let mut o = object_header(Kind::HttpRoute, &r.metadata)?;
    let (ns, name) = ns_name(&r.metadata)?;
    let parent_refs = sent_parent_refs(&ns, r.spec.parent_refs.iter().flatten(), sent);
    if parent_refs.is_empty() {
        return None;
    }
    let rules = r
        .spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, rule)| translate_rule(&ns, &name, i, rule, index))
        .collect();
    o.spec = Some(object::Spec::HttpRoute(pb::HttpRoute {
        parent_refs,
        hostnames: r.spec.hostnames.clone().unwrap_or_default(),
        rules,
    }));
    Some(o)
}

fn translate_rule(
    ns: &str,
    route: &str,
    i: usize,
    rule: &HttpRouteRules,
    index: &Index<'_>,
) -> Option<pb::HttpRouteRule> {
    let written = rule.matches.as_deref().unwrap_or_default();
    let matches: Vec<HttpRouteMatch> = written
        .iter()
        .filter_map(|m| match translate_match(m) {
            Ok(m) => Some(m),
            Err(why) => {
                warn!(route = %format!("{ns}/{route}"), rule = i, "dropping a match: {why}");
                None
            }
        })
        .collect();
    if !written.is_empty() && matches.is_empty() {
        warn!(route = %format!("{ns}/{route}"), rule = i, "dropping the rule: none of its matches is supported");
        return None;
    }
    let mut filters = Vec::new();
    for f in rule.filters.iter().flatten() {
        match filters::translate_filter(ns, f, index) {
            Ok(f) => filters.push(f),
            Err(why) => {
                warn!(route = %format!("{ns}/{route}"), rule = i, "dropping the rule: {why}");
                return None;
            }
        }
    }
    let backends = rule
        .backend_refs
        .iter()
        .flatten()
        .map(|b| resolve_backend(ns, b, index))
        .collect();
    Some(pb::HttpRouteRule {
        name: rule.name.clone().unwrap_or_default(),
        matches,
        filters,
        backends,
        timeouts: rule.timeouts.as_ref().map(|t| pb::HttpRouteTimeouts {
            request: t.request.clone().unwrap_or_default(),
            backend_request: t.backend_request.clone().unwrap_or_default(),
        }),
    })
}

/// One match (path Exact, PathPrefix or RegularExpression; headers and query parameters Exact
/// or RegularExpression; method).
pub fn translate_match(m: &HttpRouteRulesMatches) -> Result<HttpRouteMatch, String> {
    let (kind, value) = match &m.path {
        None => (path_match::Type::PathPrefix, "/".to_string()),
        Some(p) => {
            let kind = match p.r#type {
                None | Some(HttpRouteRulesMatchesPathType::PathPrefix) => {
                    path_match::Type::PathPrefix
                }
                Some(HttpRouteRulesMatchesPathType::Exact) => path_match::Type::Exact,
                Some(HttpRouteRulesMatchesPathType::RegularExpression) => {
                    path_match::Type::RegularExpression
                }
            };
            (kind, p.value.clone().unwrap_or_else(|| "/".to_string()))
        }
    };
    let headers = m
        .headers
        .iter()
        .flatten()
        .map(|h| HeaderMatch {
            name: h.name.clone(),
            value: h.value.clone(),
            regular_expression: h.r#type
                == Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
        })
        .collect();
    let query_params = m
        .query_params
        .iter()
        .flatten()
        .map(|q| QueryParamMatch {
            name: q.name.clone(),
            value: q.value.clone(),
            regular_expression: q.r#type
                == Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression),
        })
        .collect();
    let method = m.method.as_ref().map(|x| {
        match x {
            HttpRouteRulesMatchesMethod::Get => "GET",
            HttpRouteRulesMatchesMethod::Head => "HEAD",
            HttpRouteRulesMatchesMethod::Post => "POST",
            HttpRouteRulesMatchesMethod::Put => "PUT",
            HttpRouteRulesMatchesMethod::Delete => "DELETE",
            HttpRouteRulesMatchesMethod::Connect => "CONNECT",
            HttpRouteRulesMatchesMethod::Options => "OPTIONS",
            HttpRouteRulesMatchesMethod::Trace => "TRACE",
            HttpRouteRulesMatchesMethod::Patch => "PATCH",
        }
        .to_string()
    });
    Ok(HttpRouteMatch {
        path: Some(PathMatch {
            r#type: kind as i32,
            value,
        }),
        headers,
        query_params,
        method: method.unwrap_or_default(),
    })
}

#[cfg(test)]
mod listener_set_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
