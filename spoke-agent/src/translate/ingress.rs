//! Translate (pure): claimed `networking.k8s.io/v1` Ingresses -> the same Gateway and HTTPRoute
//! intent a tenant would send by writing them itself, so the hub needs nothing new and applies
//! its usual checks (hostnames the tenant owns, endpoints in the cluster's CIDRs).
//!
//! The shape (which listeners and routes, their names) comes from [`crate::claim::ingress`];
//! here it is resolved: backends (`service.port.number`, or `service.port.name` looked up in the
//! Service) through [`crate::resolve`], `spec.tls` secretNames as certificateRefs of the HTTPS
//! listeners through [`crate::resolve::certificate`]. A backend that cannot be resolved
//! (unknown Service, port name not found, a `resource` backend) is sent with its problem, as for
//! HTTPRoutes: the hub answers `ResolvedRefs=False` and serves 500 for it, and the agent reports
//! that on the Ingress (`status::ingress`). A refused Ingress sends nothing.

use fleetgate_proto::spoke::v1::{
    self as pb, AllowedRoutes, HttpRouteMatch, Kind, Listener, Object, ParentRef, PathMatch,
    object, path_match,
};
use gateway_api::gateways::GatewayListenersTlsCertificateRefs;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use tracing::debug;

use super::{object_header, wire_backend, wire_certificate};
use crate::claim::ingress::{
    IngressShape, PathKind, ShapeListener, ShapeRoute, claimed_ingresses, shape,
};
use crate::resolve::Index;
use crate::resolve::certificate::resolve_certificate;
use crate::resolve::ingress::resolve_ingress_backend;
use crate::state::ClusterState;

/// The Gateways and HTTPRoutes of every claimed Ingress (refused ones are left out; `status`
/// reports them), Gateways first.
pub fn translate_ingresses(state: &ClusterState, index: &Index<'_>) -> Vec<Object> {
    let mut gateways = Vec::new();
    let mut routes = Vec::new();
    for ing in claimed_ingresses(state) {
        match shape(ing, state) {
            Ok(s) => {
                let (g, r) = ingress_objects(ing, &s, state, index);
                gateways.push(g);
                routes.extend(r);
            }
            Err(why) => debug!(
                ingress = %format!("{}/{}", ing.metadata.namespace.as_deref().unwrap_or_default(), ing.metadata.name.as_deref().unwrap_or_default()),
                "not translated: {why}"
            ),
        }
    }
    gateways.extend(routes);
    gateways
}

/// One Ingress's Gateway and HTTPRoutes.
pub fn ingress_objects(
    ing: &Ingress,
    s: &IngressShape,
    state: &ClusterState,
    index: &Index<'_>,
) -> (Object, Vec<Object>) {
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let named = |kind: Kind, name: &str| {
        let mut o = object_header(kind, &ing.metadata).unwrap_or_default();
        o.r#ref = Some(pb::ObjectRef {
            kind: kind as i32,
            namespace: ns.clone(),
            name: name.to_string(),
        });
        o
    };
    let mut gateway = named(Kind::Gateway, &s.gateway);
    gateway.spec = Some(object::Spec::Gateway(pb::Gateway {
        gateway_class_name: crate::claim::ingress::ingress_class_of(ing)
            .unwrap_or(state.ingress_class_name.as_str())
            .to_string(),
        listeners: s
            .listeners
            .iter()
            .map(|l| listener(&ns, l, index))
            .collect(),
        allowed_listeners: None,
        // An Ingress asks for none of the Gateway fields fleetgate refuses.
        ..Default::default()
    }));
    let routes = s
        .routes
        .iter()
        .map(|r| {
            let mut o = named(Kind::HttpRoute, &r.name);
            o.spec = Some(object::Spec::HttpRoute(route(
                &ns, &s.gateway, r, state, index,
            )));
            o
        })
        .collect();
    (gateway, routes)
}

fn listener(ns: &str, l: &ShapeListener, index: &Index<'_>) -> Listener {
    let tls = (l.protocol == "HTTPS").then(|| pb::ListenerTls {
        mode: "Terminate".into(),
        certificates: l
            .secrets
            .iter()
            .map(|name| {
                let r = GatewayListenersTlsCertificateRefs {
                    group: None,
                    kind: None,
                    name: name.clone(),
                    namespace: None,
                };
                wire_certificate(resolve_certificate("Gateway", ns, &r, index))
            })
            .collect(),
        options: Vec::new(),
    });
    Listener {
        name: l.name.clone(),
        protocol: l.protocol.to_string(),
        port: l.port,
        hostname: l.hostname.clone().unwrap_or_default(),
        allowed_routes: Some(AllowedRoutes {
            from: "Same".into(),
            namespaces: Vec::new(),
            kinds: Vec::new(),
        }),
        tls,
    }
}

fn route(
    ns: &str,
    gateway: &str,
    r: &ShapeRoute,
    state: &ClusterState,
    index: &Index<'_>,
) -> pb::HttpRoute {
    let rule = |kind: path_match::Type, value: &str, b: &IngressBackend| pb::HttpRouteRule {
        matches: vec![HttpRouteMatch {
            path: Some(PathMatch {
                r#type: kind as i32,
                value: value.to_string(),
            }),
            ..Default::default()
        }],
        backends: vec![wire_backend(resolve_ingress_backend(ns, b, state, index))],
        ..Default::default()
    };
    let mut rules: Vec<pb::HttpRouteRule> = r
        .paths
        .iter()
        .map(|p| {
            let kind = match p.kind {
                PathKind::Exact => path_match::Type::Exact,
                PathKind::Prefix => path_match::Type::PathPrefix,
            };
            rule(kind, &p.value, &p.backend)
        })
        .collect();
    let has_root = r
        .paths
        .iter()
        .any(|p| p.kind == PathKind::Prefix && p.value == "/");
    if let Some(d) = r.default_backend.as_ref().filter(|_| !has_root) {
        rules.push(rule(path_match::Type::PathPrefix, "/", d));
    }
    pb::HttpRoute {
        parent_refs: r
            .listeners
            .iter()
            .map(|l| ParentRef {
                namespace: ns.to_string(),
                name: gateway.to_string(),
                section_name: l.clone(),
                ..Default::default()
            })
            .collect(),
        hostnames: r.hostname.iter().cloned().collect(),
        rules,
    }
}

#[cfg(test)]
mod tests;
