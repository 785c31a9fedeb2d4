//! Translate (pure): a [`ClusterState`] snapshot -> the `fleetgate.spoke.v1` objects the hub gets.
//!
//! Where it sits: between the sources (`watch`, `manifests`) and `sync`. It sends only what
//! [`crate::claim`] says is fleetgate's: Gateways of claimed
//! classes and the ListenerSets whose parentRef names one of them (whether the Gateway's
//! `allowedListeners` takes a ListenerSet is the hub's call), and sends an HTTPRoute when one of
//! its parentRefs points to a sent Gateway or ListenerSet (only those parentRefs are sent). Backends (and RequestMirror backends) are resolved by
//! [`crate::resolve`]. What fleetgate cannot express is dropped with a log line, never widened: a
//! match that cannot be sent is dropped and a rule whose matches were all dropped is dropped. A
//! rule with a filter fleetgate does not implement (ExtensionRef) is sent with the filter marked
//! unsupported: the hub answers its requests with 500 and reports the route. Gateway fields
//! fleetgate does not implement (`spec.addresses`, `spec.tls`, parametersRefs, listener
//! `tls.options`) are sent as written so that the hub refuses them with a condition.

use fleetgate_proto::spoke::v1::{
    self as pb, AllowedRoutes, HeaderMatch, HttpRouteMatch, Kind, Listener, Object, ObjectRef,
    PathMatch, QueryParamMatch, object, path_match,
};
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::{
    Gateway, GatewayAllowedListenersNamespacesFrom, GatewayListeners,
    GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTls, GatewayListenersTlsMode,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use gateway_api::listenersets::ListenerSet;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tracing::warn;

use crate::claim::{
    SentParents, claimed_classes, listener_set_parent, ns_name, parameters_ref, sent_parent_refs,
};
use crate::config::EndpointMode;
use crate::crd::{GATEWAY_GROUP, same_schema, tls_parent_as_http};
use crate::resolve::certificate::resolve_certificate;
use crate::resolve::namespaces;
use crate::resolve::{BackendRef, Index, resolve_backend_ref};
use crate::state::ClusterState;

pub mod ai_backend;
pub mod filters;
pub mod grpc;
pub mod ingress;
pub mod mcp_backend;
pub mod mcp_policy;
pub mod virtual_key;
mod wire;

pub use wire::{http_backend, wire_backend, wire_certificate, wire_endpoint, wire_problem};

/// The whole intent of the cluster, Gateways first, each kind sorted by namespace/name.
pub fn translate(state: &ClusterState, mode: EndpointMode) -> Vec<Object> {
    let claimed = claimed_classes(state);
    let sent = SentParents::of(state, &claimed);
    let index = Index::new(state, mode);
    let mut gateways: Vec<Object> = state
        .gateways
        .iter()
        .filter(|g| claimed.contains(&g.spec.gateway_class_name))
        .filter_map(|g| {
            let class = state
                .gateway_classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(g.spec.gateway_class_name.as_str()));
            gateway_object(g, class, &state.namespaces, &index)
        })
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

/// The ref, generation and creationTimestamp (RFC 3339) every object sent carries; the caller
/// sets the spec.
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
    class: Option<&GatewayClass>,
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
                    .and_then(same_schema)
                    .map(|s| namespaces::select(&s, all_namespaces))
                    .unwrap_or_default(),
            ),
        };
        pb::AllowedListeners {
            from: from.to_string(),
            namespaces,
        }
    });
    let tls = g.spec.tls.as_ref();
    o.spec = Some(object::Spec::Gateway(pb::Gateway {
        gateway_class_name: g.spec.gateway_class_name.clone(),
        listeners,
        allowed_listeners,
        addresses: g
            .spec
            .addresses
            .iter()
            .flatten()
            .map(|a| pb::GatewayAddress {
                r#type: a.r#type.clone().unwrap_or_default(),
                value: a.value.clone().unwrap_or_default(),
            })
            .collect(),
        tls_frontend: tls.is_some_and(|t| t.frontend.is_some()),
        tls_backend: tls.is_some_and(|t| t.backend.is_some()),
        infrastructure_parameters_ref: g
            .spec
            .infrastructure
            .as_ref()
            .and_then(|i| i.parameters_ref.as_ref())
            .map(|r| parameters_ref(&r.group, &r.kind, &r.name))
            .unwrap_or_default(),
        class_parameters_ref: class
            .and_then(|c| c.spec.parameters_ref.as_ref())
            .map(|r| parameters_ref(&r.group, &r.kind, &r.name))
            .unwrap_or_default(),
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
        match same_schema::<_, GatewayListeners>(l) {
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
                    wire_backend(resolve_backend_ref("TLSRoute", &ns, view, index, "TCP"))
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
            .map(|r| wire_certificate(resolve_certificate(owner_kind, owner_ns, r, index)))
            .collect()
    } else {
        Vec::new()
    };
    pb::ListenerTls {
        mode: mode.to_string(),
        certificates,
        options: t.options.iter().flatten().map(|(k, _)| k.clone()).collect(),
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
    // A filter fleetgate cannot apply keeps its rule: the hub answers the rule's requests with
    // 500 and reports the route Accepted=False/UnsupportedValue (a filter is never skipped).
    let filters = rule
        .filters
        .iter()
        .flatten()
        .map(|f| filters::translate_filter(ns, f, index))
        .collect();
    let backends = rule
        .backend_refs
        .iter()
        .flatten()
        .map(|b| http_backend(ns, b, index))
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
