//! Object builders for tests: short constructors of the Kubernetes and Gateway API objects the
//! agent reads, filled the way an API server would fill them (namespace, generation,
//! creationTimestamp). Real code, used by the table tests of `resolve`, `translate`, `status`.

use std::collections::BTreeMap;

use gateway_api::gatewayclasses::{GatewayClass, GatewayClassSpec};
use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutes,
    GatewayListenersAllowedRoutesNamespaces, GatewayListenersAllowedRoutesNamespacesFrom,
    GatewaySpec,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesMatches, HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteSpec,
};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::resolve::SERVICE_NAME_LABEL;

/// Metadata of a namespaced object with generation 1 and a fixed creation time.
pub fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: ns.map(str::to_string),
        name: Some(name.to_string()),
        generation: Some(1),
        creation_timestamp: Some(Time(
            Timestamp::from_second(1_700_000_000).expect("valid timestamp"),
        )),
        ..Default::default()
    }
}

pub fn gateway_class(name: &str, controller: &str) -> GatewayClass {
    GatewayClass {
        metadata: meta(None, name),
        spec: GatewayClassSpec {
            controller_name: controller.to_string(),
            ..Default::default()
        },
        status: None,
    }
}

/// A listener: (name, protocol, port, hostname).
pub type ListenerSpec<'a> = (&'a str, &'a str, i32, Option<&'a str>);

pub fn gateway(ns: &str, name: &str, class: &str, listeners: &[ListenerSpec<'_>]) -> Gateway {
    Gateway {
        metadata: meta(Some(ns), name),
        spec: GatewaySpec {
            gateway_class_name: class.to_string(),
            listeners: listeners
                .iter()
                .map(|(name, protocol, port, hostname)| GatewayListeners {
                    name: name.to_string(),
                    protocol: protocol.to_string(),
                    port: *port,
                    hostname: hostname.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        status: None,
    }
}

/// Sets `allowedRoutes.namespaces.from` on every listener.
pub fn with_from(mut g: Gateway, from: GatewayListenersAllowedRoutesNamespacesFrom) -> Gateway {
    for l in &mut g.spec.listeners {
        l.allowed_routes = Some(GatewayListenersAllowedRoutes {
            namespaces: Some(GatewayListenersAllowedRoutesNamespaces {
                from: Some(from.clone()),
                selector: None,
            }),
            kinds: None,
        });
    }
    g
}

pub fn parent(ns: Option<&str>, name: &str) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        namespace: ns.map(str::to_string),
        name: name.to_string(),
        ..Default::default()
    }
}

pub fn backend_ref(
    group: Option<&str>,
    kind: Option<&str>,
    ns: Option<&str>,
    name: &str,
    port: Option<i32>,
) -> HttpRouteRulesBackendRefs {
    HttpRouteRulesBackendRefs {
        group: group.map(str::to_string),
        kind: kind.map(str::to_string),
        namespace: ns.map(str::to_string),
        name: name.to_string(),
        port,
        ..Default::default()
    }
}

pub fn path_prefix(value: &str) -> HttpRouteRulesMatches {
    HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
            value: Some(value.to_string()),
        }),
        ..Default::default()
    }
}

pub fn rule(
    matches: Vec<HttpRouteRulesMatches>,
    backends: Vec<HttpRouteRulesBackendRefs>,
) -> HttpRouteRules {
    HttpRouteRules {
        matches: (!matches.is_empty()).then_some(matches),
        backend_refs: (!backends.is_empty()).then_some(backends),
        ..Default::default()
    }
}

pub fn http_route(
    ns: &str,
    name: &str,
    parents: Vec<HttpRouteParentRefs>,
    hostnames: &[&str],
    rules: Vec<HttpRouteRules>,
) -> HttpRoute {
    HttpRoute {
        metadata: meta(Some(ns), name),
        spec: HttpRouteSpec {
            parent_refs: Some(parents),
            hostnames: (!hostnames.is_empty())
                .then(|| hostnames.iter().map(|h| h.to_string()).collect()),
            rules: Some(rules),
        },
        status: None,
    }
}

/// A Service port: (name, port, nodePort, targetPort).
pub type PortSpec<'a> = (Option<&'a str>, i32, Option<i32>, IntOrString);

pub fn service(ns: &str, name: &str, type_: &str, ports: &[PortSpec<'_>]) -> Service {
    Service {
        metadata: meta(Some(ns), name),
        spec: Some(ServiceSpec {
            type_: Some(type_.to_string()),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, port, node_port, target)| ServicePort {
                        name: n.map(str::to_string),
                        port: *port,
                        node_port: *node_port,
                        target_port: Some(target.clone()),
                        protocol: Some("TCP".to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

/// An IPv4 EndpointSlice of `svc`: ports (name, number), endpoints (address, ready condition).
pub fn endpoint_slice(
    ns: &str,
    name: &str,
    svc: &str,
    ports: &[(Option<&str>, i32)],
    endpoints: &[(&str, Option<bool>)],
) -> EndpointSlice {
    let mut m = meta(Some(ns), name);
    m.labels = Some(BTreeMap::from([(
        SERVICE_NAME_LABEL.to_string(),
        svc.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".to_string(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: n.map(str::to_string),
                    port: Some(*p),
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
        endpoints: Some(
            endpoints
                .iter()
                .map(|(a, ready)| Endpoint {
                    addresses: vec![a.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: *ready,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// A Node with an optional InternalIP and an optional Ready condition status.
pub fn node(name: &str, internal_ip: Option<&str>, ready: Option<&str>) -> Node {
    Node {
        metadata: meta(None, name),
        spec: None,
        status: Some(NodeStatus {
            addresses: internal_ip.map(|ip| {
                vec![NodeAddress {
                    address: ip.to_string(),
                    type_: "InternalIP".to_string(),
                }]
            }),
            conditions: ready.map(|s| {
                vec![NodeCondition {
                    type_: "Ready".to_string(),
                    status: s.to_string(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    }
}
