//! fleetgate's own model of tenant intent and of object status.
//!
//! Wire types (`fleetgate_proto`) stop at admission (`crate::admit`), which converts them into
//! these types after checking them; the store, the compiler and the status path see only this.
//! Every type here is plain data: cheap to clone, comparable, serialisable into the store.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Who sent an object: the tenant and cluster named in the agent's verified certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterKey {
    pub tenant: String,
    pub cluster: String,
}

impl std::fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.tenant, self.cluster)
    }
}

/// The kinds an agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Gateway,
    HttpRoute,
    /// A Service of type LoadBalancer served on L4 (`crate::compile::l4`).
    Service,
    /// A TCPRoute on a Gateway listener of protocol TCP.
    TcpRoute,
    /// A UDPRoute on a Gateway listener of protocol UDP.
    UdpRoute,
}

/// One object inside one cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// Metadata every object carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// RFC 3339, as the tenant's API server wrote it; used only for precedence tie-breaks.
    pub creation_timestamp: String,
}

/// The accepted intent of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIntent {
    pub gateways: BTreeMap<(String, String), Gateway>,
    pub http_routes: BTreeMap<(String, String), HttpRoute>,
    /// Services of type LoadBalancer the hub serves on L4.
    #[serde(default)]
    pub services: BTreeMap<(String, String), LoadBalancerService>,
    /// TCPRoutes and UDPRoutes, by kind, namespace and name.
    #[serde(default)]
    pub l4_routes: BTreeMap<ObjectKey, L4Route>,
}

/// All accepted intent of the fleet: the compiler's whole input.
pub type FleetIntent = BTreeMap<ClusterKey, ClusterIntent>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub meta: Meta,
    pub class_name: String,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    Http,
    Https,
    Tls,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub name: String,
    /// `None` when the tenant named a protocol fleetgate does not know; the listener is then
    /// reported Accepted=False/UnsupportedProtocol.
    pub protocol: Option<Protocol>,
    pub protocol_name: String,
    pub port: u16,
    /// Lower-case; `None` matches every hostname the tenant owns.
    pub hostname: Option<String>,
    pub allowed_routes: AllowedRoutes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowedRoutes {
    /// Routes in the Gateway's own namespace (the Gateway API default).
    Same,
    All,
    /// Routes in exactly these namespaces (the agent resolved the label selector).
    Namespaces(BTreeSet<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParentRef {
    pub namespace: String,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRoute {
    pub meta: Meta,
    pub parent_refs: Vec<ParentRef>,
    /// Lower-case.
    pub hostnames: Vec<String>,
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRouteRule {
    pub name: Option<String>,
    /// Never empty: admission turns "no matches" into one `PathPrefix /` match.
    pub matches: Vec<HttpRouteMatch>,
    pub filters: Vec<HttpFilter>,
    pub backends: Vec<Backend>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRouteMatch {
    pub path: PathMatch,
    /// Exact header matches; names lower-case.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatch {
    Exact(String),
    /// Element-wise prefix: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpFilter {
    RequestHeaderModifier(HeaderModifier),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    pub weight: u32,
    /// Set when the agent could not resolve the reference: its share of traffic gets 500.
    pub problem: Option<BackendProblem>,
    /// Ready endpoints only, already checked against the cluster's CIDRs by admission.
    pub endpoints: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendProblem {
    /// A Gateway API ResolvedRefs reason (BackendNotFound, RefNotPermitted, ...).
    pub reason: String,
    pub message: String,
}

// ---- L4 ----------------------------------------------------------------------------------

/// An L4 transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum L4Protocol {
    Tcp,
    Udp,
}

impl L4Protocol {
    /// The Kubernetes spelling (`TCP`, `UDP`).
    pub fn as_str(self) -> &'static str {
        match self {
            L4Protocol::Tcp => "TCP",
            L4Protocol::Udp => "UDP",
        }
    }
}

/// A Service of type LoadBalancer: the hub allocates an (address, port) per Service port and
/// the data plane forwards it to the port's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerService {
    pub meta: Meta,
    /// At most one per (port, protocol), ordered by (port, protocol).
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// The Service port's name, possibly empty.
    pub name: String,
    pub protocol: L4Protocol,
    /// The Service port number, preferred when allocating.
    pub port: u16,
    /// Set when the agent could not resolve the port: the data plane then has no endpoints.
    pub problem: Option<BackendProblem>,
    /// Ready endpoints, checked against the cluster's CIDRs by admission.
    pub endpoints: Vec<SocketAddr>,
}

/// A TCPRoute or UDPRoute: every connection (datagram) on the attached listener goes to the
/// ready endpoints of all its backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L4Route {
    pub meta: Meta,
    /// Tcp for a TCPRoute, Udp for a UDPRoute.
    pub protocol: L4Protocol,
    pub parent_refs: Vec<ParentRef>,
    pub backends: Vec<Backend>,
}

/// One address a Service is served on, with the ports allocated there (Service
/// `status.loadBalancer.ingress[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerIngress {
    pub ip: String,
    pub ports: Vec<LoadBalancerPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerPort {
    /// The allocated port.
    pub port: u16,
    pub protocol: L4Protocol,
    /// The Service port it serves.
    pub service_port: u16,
}

// ---- status -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Status the hub reports for one object of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStatus {
    pub key: ObjectKey,
    pub observed_generation: i64,
    pub conditions: Vec<Condition>,
    pub addresses: Vec<String>,
    pub listeners: Vec<ListenerStatus>,
    pub parents: Vec<RouteParentStatus>,
    /// Service `status.loadBalancer.ingress` (Services only).
    #[serde(default)]
    pub load_balancer: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    pub attached_routes: u32,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteParentStatus {
    pub parent_ref: ParentRef,
    pub conditions: Vec<Condition>,
}
