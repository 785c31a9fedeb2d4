//! Resolve: a route backendRef -> a self-contained [`Backend`] with endpoints, or with the
//! Gateway API `ResolvedRefs` [`Problem`] that explains why it has none; a listener
//! certificateRef -> the certificate material ([`certificate`]). Cross-namespace references are
//! checked against the cluster's ReferenceGrants ([`grant`]). The results are the agent's own
//! types: `translate` turns them into wire types.
//!
//! Where it sits: called by `translate` (pure) on a [`ClusterState`] snapshot. Endpoint mode
//! `node` sends every Node's InternalIP x the Service port's nodePort; mode `pod` sends the ready
//! addresses of the Service's EndpointSlices. No I/O: everything comes from the snapshot.

pub mod ai;
pub mod certificate;
pub mod grant;
pub mod ingress;
pub mod mcp_selector;
pub mod namespaces;
pub mod virtual_key;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use gateway_api::httproutes::HttpRouteRulesBackendRefs;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Node, Secret, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::config::{EndpointMode, SecretAccess};
use crate::crd::{AGENTGATEWAY_BACKEND_KIND, AGENTGATEWAY_GROUP, GATEWAY_GROUP};
use crate::state::ClusterState;

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why a reference resolves to nothing: the Gateway API reason of the `ResolvedRefs` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The reference names a kind fleetgate does not route to (not a core Service or Secret).
    InvalidKind,
    /// A cross-namespace reference no ReferenceGrant allows.
    RefNotPermitted,
    /// The Service, its port or its nodePort is missing.
    BackendNotFound,
    /// The Service port's protocol is not the one the route kind needs.
    UnsupportedProtocol,
    /// A certificateRef that does not lead to a usable TLS Secret.
    InvalidCertificateRef,
    /// A field fleetgate does not support (yet), e.g. an AgentgatewayBackend's `spec.mcp`.
    UnsupportedValue,
}

impl Reason {
    /// The reason as the Gateway API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidKind => "InvalidKind",
            Self::RefNotPermitted => "RefNotPermitted",
            Self::BackendNotFound => "BackendNotFound",
            Self::UnsupportedProtocol => "UnsupportedProtocol",
            Self::InvalidCertificateRef => "InvalidCertificateRef",
            Self::UnsupportedValue => "UnsupportedValue",
        }
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a reference has no endpoints or material, and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub message: String,
}

/// One address a backend is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    pub port: u32,
    pub ready: bool,
}

/// A resolved backendRef: the Service port's endpoints, or the problem that explains why there
/// are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub namespace: String,
    pub name: String,
    pub port: u32,
    pub weight: u32,
    /// The Service port's `appProtocol` (empty when unset).
    pub app_protocol: String,
    pub endpoints: Vec<Endpoint>,
    pub problem: Option<Problem>,
    /// Empty for a core Service; `AgentgatewayBackend` for a ref to agentgateway.dev's kind
    /// (then without endpoints: the hub looks the AI backend up by namespace/name).
    pub kind: String,
}

/// Lookups over one snapshot, built once per translation.
#[derive(Debug)]
pub struct Index<'a> {
    services: BTreeMap<(&'a str, &'a str), &'a Service>,
    slices: BTreeMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    /// (InternalIP, ready) of every Node, sorted, deduplicated.
    node_addresses: Vec<(IpAddr, bool)>,
    mode: EndpointMode,
    /// TLS Secrets by (namespace, name).
    secrets: BTreeMap<(&'a str, &'a str), &'a Secret>,
    /// Which TLS Secrets the source reads (explains a Secret that is not in `secrets`).
    secret_access: &'a SecretAccess,
    grants: &'a [ReferenceGrant],
    /// (namespace, name) of every AgentgatewayBackend.
    ai_backends: BTreeSet<(&'a str, &'a str)>,
    /// Secrets AgentgatewayBackends name, by (namespace, name).
    ai_secrets: BTreeMap<(&'a str, &'a str), &'a Secret>,
    /// Every Namespace (names and labels: MCP target selectors).
    namespaces: &'a [k8s_openapi::api::core::v1::Namespace],
}

impl<'a> Index<'a> {
    pub fn new(state: &'a ClusterState, mode: EndpointMode) -> Self {
        let mut services = BTreeMap::new();
        for s in &state.services {
            if let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) {
                services.insert((ns.as_str(), name.as_str()), s);
            }
        }
        let mut slices: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for s in &state.endpoint_slices {
            let svc = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(ns), Some(svc)) = (&s.metadata.namespace, svc) {
                slices
                    .entry((ns.as_str(), svc.as_str()))
                    .or_default()
                    .push(s);
            }
        }
        let node_addresses: BTreeSet<(IpAddr, bool)> =
            state.nodes.iter().filter_map(node_internal_ip).collect();
        let mut secrets = BTreeMap::new();
        for s in &state.secrets {
            if let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) {
                secrets.insert((ns.as_str(), name.as_str()), s);
            }
        }
        let ai_backends = state
            .ai_backends
            .iter()
            .filter_map(|b| {
                Some((
                    b.metadata.namespace.as_deref()?,
                    b.metadata.name.as_deref()?,
                ))
            })
            .collect();
        let ai_secrets = state
            .ai_secrets
            .iter()
            .filter_map(|s| {
                Some((
                    (
                        s.metadata.namespace.as_deref()?,
                        s.metadata.name.as_deref()?,
                    ),
                    s,
                ))
            })
            .collect();
        Self {
            services,
            slices,
            node_addresses: node_addresses.into_iter().collect(),
            mode,
            secrets,
            secret_access: &state.secret_access,
            grants: &state.reference_grants,
            ai_backends,
            ai_secrets,
            namespaces: &state.namespaces,
        }
    }

    /// The endpoint mode backends are resolved with.
    pub fn mode(&self) -> EndpointMode {
        self.mode
    }

    /// Every Service of the cluster, by (namespace, name).
    pub fn services(&self) -> impl Iterator<Item = &'a Service> + '_ {
        self.services.values().copied()
    }

    /// Every Namespace of the cluster.
    pub fn namespaces(&self) -> &'a [k8s_openapi::api::core::v1::Namespace] {
        self.namespaces
    }
}

/// A Node's InternalIP and whether it is Ready (no Ready condition counts as ready: hand-made
/// Nodes without a kubelet carry none).
fn node_internal_ip(node: &Node) -> Option<(IpAddr, bool)> {
    let status = node.status.as_ref()?;
    let ip = status
        .addresses
        .iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<IpAddr>().ok())?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .is_none_or(|c| c.status == "True");
    Some((ip, ready))
}

fn problem(reason: Reason, message: String) -> Option<Problem> {
    Some(Problem { reason, message })
}

/// A backendRef as every route kind writes it.
#[derive(Debug, Clone, Copy)]
pub struct BackendRef<'r> {
    pub group: Option<&'r str>,
    pub kind: Option<&'r str>,
    pub namespace: Option<&'r str>,
    pub name: &'r str,
    pub port: Option<i32>,
    pub weight: Option<i32>,
}

impl<'r> From<&'r HttpRouteRulesBackendRefs> for BackendRef<'r> {
    fn from(r: &'r HttpRouteRulesBackendRefs) -> Self {
        Self {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            namespace: r.namespace.as_deref(),
            name: &r.name,
            port: r.port,
            weight: r.weight,
        }
    }
}

/// Resolves one backendRef of an HTTPRoute in `route_ns` (its filters are translated by
/// `translate`).
pub fn resolve_backend(
    route_ns: &str,
    r: &HttpRouteRulesBackendRefs,
    index: &Index<'_>,
) -> Backend {
    resolve_backend_ref("HTTPRoute", route_ns, BackendRef::from(r), index, "TCP")
}

/// Resolves one backendRef of a TCPRoute or UDPRoute (written with the HTTPRoute backendRef
/// type, which has the same fields) whose Service port must have `protocol`.
pub fn resolve_backend_of(
    route_ns: &str,
    r: &HttpRouteRulesBackendRefs,
    index: &Index<'_>,
    route_kind: &str,
    protocol: &str,
) -> Backend {
    resolve_backend_ref(route_kind, route_ns, BackendRef::from(r), index, protocol)
}

/// Resolves one backendRef of a route of kind `route_kind` (HTTPRoute, TLSRoute, TCPRoute,
/// UDPRoute) in `route_ns` whose Service port must have `protocol` (TCP or UDP).
pub fn resolve_backend_ref(
    route_kind: &str,
    route_ns: &str,
    r: BackendRef<'_>,
    index: &Index<'_>,
    protocol: &str,
) -> Backend {
    let namespace = r
        .namespace
        .map(str::to_string)
        .unwrap_or_else(|| route_ns.to_string());
    let port = r.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    let mut backend = Backend {
        namespace: namespace.clone(),
        name: r.name.to_string(),
        port,
        weight: r.weight.and_then(|w| u32::try_from(w).ok()).unwrap_or(1),
        problem: None,
        endpoints: Vec::new(),
        app_protocol: String::new(),
        kind: String::new(),
    };
    let group = r.group.unwrap_or("");
    let kind = r.kind.unwrap_or("Service");
    let ai_backend = group == AGENTGATEWAY_GROUP && kind == AGENTGATEWAY_BACKEND_KIND;
    // AI backends serve HTTP: only HTTPRoutes may name them.
    if ai_backend && route_kind == "HTTPRoute" {
        return resolve_ai_backend_ref(route_kind, route_ns, backend, index);
    }
    if !group.is_empty() || kind != "Service" {
        let shown = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let also = if route_kind == "HTTPRoute" {
            " and agentgateway.dev AgentgatewayBackends"
        } else {
            ""
        };
        backend.problem = problem(
            Reason::InvalidKind,
            format!(
                "backendRef {shown} {}/{} is not supported: fleetgate only routes to core Services{also}",
                namespace, r.name
            ),
        );
        return backend;
    }
    let from = grant::RefEnd {
        group: GATEWAY_GROUP,
        kind: route_kind,
        namespace: route_ns,
        name: "",
    };
    let to = grant::RefEnd {
        group: grant::CORE_GROUP,
        kind: "Service",
        namespace: &namespace,
        name: r.name,
    };
    if !grant::allowed(index.grants, from, to) {
        backend.problem = problem(
            Reason::RefNotPermitted,
            format!(
                "backendRef to Service {namespace}/{} crosses from namespace {route_ns}, and no ReferenceGrant in namespace {namespace} allows {route_kind}s from {route_ns} to refer to it; add one",
                r.name
            ),
        );
        return backend;
    }
    if port == 0 && index.services.contains_key(&(namespace.as_str(), r.name)) {
        backend.problem = problem(
            Reason::BackendNotFound,
            format!(
                "backendRef to Service {namespace}/{} has no port; set backendRefs[].port",
                r.name
            ),
        );
        return backend;
    }
    match service_endpoints(&namespace, r.name, port, protocol, route_kind, index) {
        Ok(ServicePortEndpoints {
            app_protocol,
            endpoints,
        }) => {
            backend.app_protocol = app_protocol;
            backend.endpoints = endpoints;
        }
        Err((app_protocol, p)) => {
            backend.app_protocol = app_protocol;
            backend.problem = Some(p);
        }
    }
    backend
}

/// A backendRef of an HTTPRoute to an agentgateway.dev AgentgatewayBackend: no endpoints (the
/// hub finds the AI backend this cluster sent under the same namespace/name), only the checks
/// a Service gets: a ReferenceGrant across namespaces (to group agentgateway.dev, kind
/// AgentgatewayBackend) and that it exists.
fn resolve_ai_backend_ref(
    route_kind: &str,
    route_ns: &str,
    mut backend: Backend,
    index: &Index<'_>,
) -> Backend {
    backend.kind = AGENTGATEWAY_BACKEND_KIND.to_string();
    let (namespace, name) = (backend.namespace.clone(), backend.name.clone());
    let from = grant::RefEnd {
        group: GATEWAY_GROUP,
        kind: route_kind,
        namespace: route_ns,
        name: "",
    };
    let to = grant::RefEnd {
        group: AGENTGATEWAY_GROUP,
        kind: AGENTGATEWAY_BACKEND_KIND,
        namespace: &namespace,
        name: &name,
    };
    if !grant::allowed(index.grants, from, to) {
        backend.problem = problem(
            Reason::RefNotPermitted,
            format!(
                "backendRef to AgentgatewayBackend {namespace}/{name} crosses from namespace {route_ns}, and no ReferenceGrant in namespace {namespace} allows {route_kind}s from {route_ns} to refer to it (to: group {AGENTGATEWAY_GROUP}, kind {AGENTGATEWAY_BACKEND_KIND}); add one"
            ),
        );
        return backend;
    }
    if !index
        .ai_backends
        .contains(&(namespace.as_str(), name.as_str()))
    {
        backend.problem = problem(
            Reason::BackendNotFound,
            format!(
                "AgentgatewayBackend {namespace}/{name} not found (the agent watches AgentgatewayBackends only where the CRD deploy/crds/agentgateway.dev_agentgatewaybackends.yaml is installed)"
            ),
        );
    }
    backend
}

/// The endpoints of one Service port and its `appProtocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortEndpoints {
    /// The port's `appProtocol` (empty when unset).
    pub app_protocol: String,
    pub endpoints: Vec<Endpoint>,
}

/// Service `namespace/name` port `port` (which must carry `protocol`) -> its endpoints by the
/// index's endpoint mode, or the problem (with the port's appProtocol when the port exists)
/// that explains why there are none. `referrer` names what refers to it in messages (a route
/// kind, or `AgentgatewayBackend`). Shared by backendRefs and AI backend hosts.
pub fn service_endpoints(
    namespace: &str,
    name: &str,
    port: u32,
    protocol: &str,
    referrer: &str,
    index: &Index<'_>,
) -> Result<ServicePortEndpoints, (String, Problem)> {
    let not_found = |message: String| {
        (
            String::new(),
            Problem {
                reason: Reason::BackendNotFound,
                message,
            },
        )
    };
    let Some(svc) = index.services.get(&(namespace, name)) else {
        return Err(not_found(format!("Service {namespace}/{name} not found")));
    };
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    let Some(svc_port) = ports
        .into_iter()
        .flatten()
        .find(|p| i64::from(p.port) == i64::from(port))
    else {
        return Err(not_found(format!(
            "Service {namespace}/{name} has no port {port}"
        )));
    };
    let app_protocol = svc_port.app_protocol.clone().unwrap_or_default();
    let fail =
        |reason: Reason, message: String| Err((app_protocol.clone(), Problem { reason, message }));
    let proto = svc_port.protocol.as_deref().unwrap_or("TCP");
    if proto != protocol {
        return fail(
            Reason::UnsupportedProtocol,
            format!(
                "Service {namespace}/{name} port {port} is {proto}; {referrer} backends must be {protocol}"
            ),
        );
    }
    let endpoints = match index.mode {
        EndpointMode::Node => match svc_port.node_port.and_then(|p| u32::try_from(p).ok()) {
            Some(node_port) if node_port > 0 => index
                .node_addresses
                .iter()
                .map(|(ip, ready)| Endpoint {
                    address: ip.to_string(),
                    port: node_port,
                    ready: *ready,
                })
                .collect(),
            _ => {
                return fail(
                    Reason::BackendNotFound,
                    format!(
                        "Service {namespace}/{name} port {port} has no nodePort; set the Service type to NodePort or run the agent with --endpoint-mode=pod"
                    ),
                );
            }
        },
        EndpointMode::Pod => {
            let slices = index
                .slices
                .get(&(namespace, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            pod_endpoints(svc_port, slices)
        }
    };
    Ok(ServicePortEndpoints {
        app_protocol,
        endpoints,
    })
}

/// The endpoints of one port of a Service (any protocol), by the index's endpoint mode: every
/// Node's InternalIP x the port's nodePort (`node`), or the ready addresses of the Service's
/// EndpointSlices (`pod`); or the problem that explains why there are none. Used for
/// LoadBalancer Services by [`crate::l4`].
pub fn service_port_endpoints(
    svc: &Service,
    svc_port: &ServicePort,
    index: &Index<'_>,
) -> Result<Vec<Endpoint>, Problem> {
    let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    match index.mode {
        EndpointMode::Node => match svc_port.node_port.and_then(|p| u32::try_from(p).ok()) {
            Some(node_port) if node_port > 0 => Ok(index
                .node_addresses
                .iter()
                .map(|(ip, ready)| Endpoint {
                    address: ip.to_string(),
                    port: node_port,
                    ready: *ready,
                })
                .collect()),
            _ => Err(Problem {
                reason: Reason::BackendNotFound,
                message: format!(
                    "Service {namespace}/{name} port {} has no nodePort (spec.allocateLoadBalancerNodePorts=false?); allocate nodePorts or run the agent with --endpoint-mode=pod",
                    svc_port.port
                ),
            }),
        },
        EndpointMode::Pod => {
            let slices = index
                .slices
                .get(&(namespace, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            Ok(pod_endpoints(svc_port, slices))
        }
    }
}

/// Ready addresses of `slices` for the slice port that carries `svc_port`: the slice port named
/// like the Service port, else the one whose number is the Service port's numeric targetPort.
fn pod_endpoints(svc_port: &ServicePort, slices: &[&EndpointSlice]) -> Vec<Endpoint> {
    let name = svc_port.name.as_deref().unwrap_or("");
    let target = match &svc_port.target_port {
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(_)) => None,
        None => Some(svc_port.port),
    };
    let mut out = BTreeSet::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let ports = slice.ports.as_deref().unwrap_or_default();
        let by_name = ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == name);
        let by_number = || ports.iter().find(|p| target.is_some() && p.port == target);
        let Some(port) = by_name.or_else(by_number).and_then(|p| p.port) else {
            continue;
        };
        let Ok(port) = u32::try_from(port) else {
            continue;
        };
        for ep in slice.endpoints.iter().flatten() {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for a in &ep.addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    out.insert((ip, port));
                }
            }
        }
    }
    out.into_iter()
        .map(|(ip, port)| Endpoint {
            address: ip.to_string(),
            port,
            ready: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{backend_ref, endpoint_slice, node, service};

    fn ep(a: &str, p: u32, ready: bool) -> Endpoint {
        Endpoint {
            address: a.into(),
            port: p,
            ready,
        }
    }

    fn state() -> ClusterState {
        ClusterState {
            services: vec![
                service(
                    "app",
                    "web",
                    "NodePort",
                    &[(None, 80, Some(30080), IntOrString::Int(8080))],
                ),
                service(
                    "app",
                    "clusterip",
                    "ClusterIP",
                    &[(Some("http"), 80, None, IntOrString::String("http".into()))],
                ),
                service(
                    "app",
                    "multi",
                    "NodePort",
                    &[
                        (Some("http"), 80, Some(30001), IntOrString::Int(8080)),
                        (Some("admin"), 81, Some(30002), IntOrString::Int(9090)),
                    ],
                ),
            ],
            endpoint_slices: vec![
                endpoint_slice(
                    "app",
                    "web-1",
                    "web",
                    &[(None, 8080)],
                    &[("127.0.1.10", None), ("127.0.1.11", Some(false))],
                ),
                endpoint_slice(
                    "app",
                    "web-2",
                    "web",
                    &[(None, 8080)],
                    &[("127.0.1.12", Some(true)), ("127.0.1.10", None)],
                ),
                endpoint_slice(
                    "app",
                    "ci-1",
                    "clusterip",
                    &[(Some("http"), 8000)],
                    &[("127.0.1.20", Some(true))],
                ),
                endpoint_slice(
                    "app",
                    "multi-1",
                    "multi",
                    &[(Some("admin"), 9090), (Some("http"), 8080)],
                    &[("127.0.1.30", None)],
                ),
                endpoint_slice(
                    "other",
                    "web-x",
                    "web",
                    &[(None, 8080)],
                    &[("127.0.9.9", None)],
                ),
            ],
            nodes: vec![
                node("n2", Some("127.0.1.2"), Some("True")),
                node("n1", Some("127.0.1.1"), None),
                node("n3", Some("127.0.1.3"), Some("False")),
                node("n4", None, Some("True")),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn resolve_table() {
        let st = state();
        struct Case {
            name: &'static str,
            mode: EndpointMode,
            r: HttpRouteRulesBackendRefs,
            reason: Option<&'static str>,
            message_has: &'static str,
            endpoints: Vec<Endpoint>,
        }
        let cases = vec![
            Case {
                name: "node mode: every node InternalIP x nodePort, readiness from Ready condition",
                mode: EndpointMode::Node,
                r: backend_ref(None, None, None, "web", Some(80)),
                reason: None,
                message_has: "",
                endpoints: vec![
                    ep("127.0.1.1", 30080, true),
                    ep("127.0.1.2", 30080, true),
                    ep("127.0.1.3", 30080, false),
                ],
            },
            Case {
                name: "node mode: ClusterIP service has no nodePort",
                mode: EndpointMode::Node,
                r: backend_ref(None, None, None, "clusterip", Some(80)),
                reason: Some("BackendNotFound"),
                message_has: "--endpoint-mode=pod",
                endpoints: vec![],
            },
            Case {
                name: "node mode: second port of a multi-port service",
                mode: EndpointMode::Node,
                r: backend_ref(None, None, None, "multi", Some(81)),
                reason: None,
                message_has: "",
                endpoints: vec![
                    ep("127.0.1.1", 30002, true),
                    ep("127.0.1.2", 30002, true),
                    ep("127.0.1.3", 30002, false),
                ],
            },
            Case {
                name: "pod mode: ready addresses, deduplicated across slices, not-ready dropped",
                mode: EndpointMode::Pod,
                r: backend_ref(None, None, None, "web", Some(80)),
                reason: None,
                message_has: "",
                endpoints: vec![ep("127.0.1.10", 8080, true), ep("127.0.1.12", 8080, true)],
            },
            Case {
                name: "pod mode: named targetPort matched by the service port name",
                mode: EndpointMode::Pod,
                r: backend_ref(None, None, None, "clusterip", Some(80)),
                reason: None,
                message_has: "",
                endpoints: vec![ep("127.0.1.20", 8000, true)],
            },
            Case {
                name: "pod mode: multi-port picks the slice port of the same name",
                mode: EndpointMode::Pod,
                r: backend_ref(None, None, None, "multi", Some(81)),
                reason: None,
                message_has: "",
                endpoints: vec![ep("127.0.1.30", 9090, true)],
            },
            Case {
                name: "missing service",
                mode: EndpointMode::Pod,
                r: backend_ref(None, None, None, "nope", Some(80)),
                reason: Some("BackendNotFound"),
                message_has: "Service app/nope not found",
                endpoints: vec![],
            },
            Case {
                name: "missing service port",
                mode: EndpointMode::Node,
                r: backend_ref(None, None, None, "web", Some(81)),
                reason: Some("BackendNotFound"),
                message_has: "no port 81",
                endpoints: vec![],
            },
            Case {
                name: "cross namespace",
                mode: EndpointMode::Node,
                r: backend_ref(None, None, Some("other"), "web", Some(80)),
                reason: Some("RefNotPermitted"),
                message_has: "ReferenceGrant",
                endpoints: vec![],
            },
            Case {
                name: "explicit core Service kind is fine",
                mode: EndpointMode::Pod,
                r: backend_ref(Some(""), Some("Service"), Some("app"), "web", Some(80)),
                reason: None,
                message_has: "",
                endpoints: vec![ep("127.0.1.10", 8080, true), ep("127.0.1.12", 8080, true)],
            },
            Case {
                name: "other kind",
                mode: EndpointMode::Node,
                r: backend_ref(Some("example.com"), Some("Bucket"), None, "llm", None),
                reason: Some("InvalidKind"),
                message_has: "Bucket.example.com app/llm is not supported: fleetgate only routes to core Services and agentgateway.dev AgentgatewayBackends",
                endpoints: vec![],
            },
        ];
        for c in cases {
            let index = Index::new(&st, c.mode);
            let b = resolve_backend("app", &c.r, &index);
            assert_eq!(
                b.problem.as_ref().map(|p| p.reason.as_str()),
                c.reason,
                "{}",
                c.name
            );
            if let Some(p) = &b.problem {
                assert!(
                    p.message.contains(c.message_has),
                    "{}: {}",
                    c.name,
                    p.message
                );
            }
            assert_eq!(b.endpoints, c.endpoints, "{}", c.name);
            assert_eq!(b.name, c.r.name, "{}", c.name);
        }
    }

    #[test]
    fn cross_namespace_backend_needs_a_grant_in_the_target_namespace() {
        use gateway_api::referencegrants::{
            ReferenceGrant, ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo,
        };
        let grant = |from_kind: &str| ReferenceGrant {
            metadata: crate::test_support::meta(Some("app"), "allow-front"),
            spec: ReferenceGrantSpec {
                from: vec![ReferenceGrantFrom {
                    group: GATEWAY_GROUP.into(),
                    kind: from_kind.into(),
                    namespace: "front".into(),
                }],
                to: vec![ReferenceGrantTo {
                    group: "".into(),
                    kind: "Service".into(),
                    name: None,
                }],
            },
        };
        let r = backend_ref(None, None, Some("app"), "web", Some(80));
        let mut st = state();
        let reason = |st: &ClusterState, kind: &str| {
            let index = Index::new(st, EndpointMode::Node);
            let b = resolve_backend_ref(kind, "front", BackendRef::from(&r), &index, "TCP");
            (
                b.problem.map(|p| p.reason.as_str().to_string()),
                b.endpoints.len(),
            )
        };
        assert_eq!(
            reason(&st, "HTTPRoute"),
            (Some("RefNotPermitted".into()), 0)
        );
        st.reference_grants = vec![grant("HTTPRoute")];
        assert_eq!(reason(&st, "HTTPRoute"), (None, 3));
        // The grant is for HTTPRoutes only.
        assert_eq!(reason(&st, "TLSRoute"), (Some("RefNotPermitted".into()), 0));
        // Deleting the grant withdraws the access.
        st.reference_grants.clear();
        assert_eq!(
            reason(&st, "HTTPRoute"),
            (Some("RefNotPermitted".into()), 0)
        );
    }

    /// HTTPRoute backendRefs to agentgateway.dev AgentgatewayBackends: no endpoints, the kind
    /// for the hub, a ReferenceGrant (to that group and kind) across namespaces as for
    /// Services, BackendNotFound when it does not exist; other route kinds get InvalidKind.
    #[test]
    fn backend_refs_to_agentgateway_backends() {
        use gateway_api::referencegrants::{
            ReferenceGrant, ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo,
        };
        let ai = |ns: &str, name: &str| crate::crd::AgentgatewayBackend {
            metadata: crate::test_support::meta(Some(ns), name),
            ..Default::default()
        };
        let grant = |to_group: &str, to_kind: &str| ReferenceGrant {
            metadata: crate::test_support::meta(Some("llm"), "allow-app"),
            spec: ReferenceGrantSpec {
                from: vec![ReferenceGrantFrom {
                    group: GATEWAY_GROUP.into(),
                    kind: "HTTPRoute".into(),
                    namespace: "app".into(),
                }],
                to: vec![ReferenceGrantTo {
                    group: to_group.into(),
                    kind: to_kind.into(),
                    name: Some("local-llm".into()),
                }],
            },
        };
        let mut st = ClusterState {
            ai_backends: vec![ai("app", "local-llm"), ai("llm", "local-llm")],
            ..state()
        };
        let r = |ns: Option<&str>, name: &str| {
            let mut r = backend_ref(
                Some(AGENTGATEWAY_GROUP),
                Some(AGENTGATEWAY_BACKEND_KIND),
                ns,
                name,
                None,
            );
            r.weight = Some(3);
            r
        };
        let resolve = |st: &ClusterState, kind: &str, r: &HttpRouteRulesBackendRefs| {
            let index = Index::new(st, EndpointMode::Node);
            resolve_backend_ref(kind, "app", BackendRef::from(r), &index, "TCP")
        };
        type Case<'a> = (
            &'a str,
            HttpRouteRulesBackendRefs,
            &'a str,
            Option<(&'a str, &'a str)>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("same namespace", r(None, "local-llm"), "HTTPRoute", None),
            (
                "missing",
                r(None, "nope"),
                "HTTPRoute",
                Some(("BackendNotFound", "AgentgatewayBackend app/nope not found")),
            ),
            (
                "cross namespace without a grant",
                r(Some("llm"), "local-llm"),
                "HTTPRoute",
                Some((
                    "RefNotPermitted",
                    "no ReferenceGrant in namespace llm allows HTTPRoutes from app",
                )),
            ),
            (
                "GRPCRoutes do not route to AI backends",
                r(None, "local-llm"),
                "GRPCRoute",
                Some(("InvalidKind", "fleetgate only routes to core Services")),
            ),
        ];
        for (name, r, kind, want) in &cases {
            let b = resolve(&st, kind, r);
            let got = b
                .problem
                .as_ref()
                .map(|p| (p.reason.as_str(), p.message.as_str()));
            match (got, want) {
                (None, None) => {}
                (Some((reason, msg)), Some((want_reason, want_msg))) => {
                    assert_eq!(reason, *want_reason, "{name}");
                    assert!(msg.contains(want_msg), "{name}: {msg}");
                }
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
            assert!(b.endpoints.is_empty(), "{name}");
            if *kind == "HTTPRoute" {
                assert_eq!(
                    (b.kind.as_str(), b.weight),
                    ("AgentgatewayBackend", 3),
                    "{name}"
                );
            }
        }
        // A grant to Services does not open AI backends; one to agentgateway.dev's kind does.
        let cross = r(Some("llm"), "local-llm");
        st.reference_grants = vec![grant("", "Service")];
        let b = resolve(&st, "HTTPRoute", &cross);
        assert_eq!(b.problem.map(|p| p.reason), Some(Reason::RefNotPermitted));
        st.reference_grants = vec![grant(AGENTGATEWAY_GROUP, AGENTGATEWAY_BACKEND_KIND)];
        let b = resolve(&st, "HTTPRoute", &cross);
        assert_eq!(b.problem, None);
        assert_eq!(
            (b.namespace.as_str(), b.name.as_str()),
            ("llm", "local-llm")
        );
    }

    #[test]
    fn weight_defaults_to_one_and_zero_is_kept() {
        let st = state();
        let index = Index::new(&st, EndpointMode::Node);
        let mut r = backend_ref(None, None, None, "web", Some(80));
        assert_eq!(resolve_backend("app", &r, &index).weight, 1);
        r.weight = Some(0);
        assert_eq!(resolve_backend("app", &r, &index).weight, 0);
        r.weight = Some(7);
        let b = resolve_backend("app", &r, &index);
        assert_eq!((b.weight, b.namespace.as_str(), b.port), (7, "app", 80));
    }
}
