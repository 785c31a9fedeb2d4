//! fleetgate-hub-model: the hub's own model, shared by every step past the wire.
//!
//! Where it sits in the hub's data path: `sync` (runtime) -> `admit` (converts wire types into
//! these types after checking them) -> `fleet`/`store` (runtime; hold them) -> `compile` (these
//! types -> [`snapshot::Snapshot`]) -> `xds` (the snapshot -> Envoy resources). It depends on no
//! other hub crate, no tonic, no Envoy types and no configuration file: every type here is plain
//! data, cheap to clone, comparable, serialisable into the store.
//!
//! - this root: tenant intent (objects, kinds, keys) and object status;
//! - [`policy`]: a tenant's hostnames, clusters, sizes and quotas; [`data_plane`]: the shared data
//!   plane's ports and L4 address pools (both validated from the operator's file by the runtime);
//! - [`snapshot`]: the compiled data-plane snapshot (compile's output, xds's input), and [`ai`]
//!   its agent-gateway part (what the AI gateways serve per tenant);
//! - [`allocate`]: the pure L4 address/port allocation rule the store persists;
//! - [`regex`]: the tenant-derived regular expressions both admission and xds need.

pub mod a2a_catalog;
pub mod ai;
pub mod allocate;
pub mod data_plane;
pub mod policy;
pub mod regex;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
/// Thin lists of the model (one pointer, no allocation while empty), for its users.
pub use thin_vec::{ThinVec, thin_vec};

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

/// The API group of every route kind fleetgate serves (and of Gateway and ListenerSet parents).
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// The kinds an agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Gateway,
    HttpRoute,
    TlsRoute,
    /// A Service of type LoadBalancer served on L4 (the compiler's `l4`).
    Service,
    /// A TCPRoute on a Gateway listener of protocol TCP.
    TcpRoute,
    /// A UDPRoute on a Gateway listener of protocol UDP.
    UdpRoute,
    GrpcRoute,
    /// A ListenerSet: listeners added to a Gateway that allows it (the compiler's `listener_set`).
    ListenerSet,
    /// An AgentgatewayBackend (agentgateway.dev/v1alpha1) of kind `ai`: an LLM provider that
    /// HTTPRoute backendRefs reach through the AI gateway ([`ai::AiBackend`]).
    AiBackend,
    /// A fleetgate.dev/v1alpha1 VirtualKey: a key the tenant hands its users for some of its
    /// AgentgatewayBackends ([`ai::VirtualKeyIntent`]).
    VirtualKey,
}

/// One object inside one cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// The tenant object a data-plane resource was built from, so that a rejection by the data
/// plane (an Envoy NACK) can be reported on the objects that caused it. Lives here, not in
/// [`snapshot`], because both the snapshot and its [`ai`] part carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceObject {
    pub cluster: ClusterKey,
    pub object: ObjectKey,
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
    #[serde(default)]
    pub tls_routes: BTreeMap<(String, String), TlsRoute>,
    #[serde(default)]
    pub grpc_routes: BTreeMap<(String, String), GrpcRoute>,
    #[serde(default)]
    pub listener_sets: BTreeMap<(String, String), ListenerSet>,
    /// AgentgatewayBackends of kind `ai`, by namespace and name (what HTTPRoute backendRefs of
    /// kind AgentgatewayBackend name).
    #[serde(default)]
    pub ai_backends: BTreeMap<(String, String), ai::AiBackend>,
    /// VirtualKeys, by namespace and name.
    #[serde(default)]
    pub virtual_keys: BTreeMap<(String, String), ai::VirtualKeyIntent>,
}

/// A ListenerSet (Gateway API v1): listeners merged into its parent Gateway when the Gateway's
/// `allowedListeners` admits the ListenerSet's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSet {
    pub meta: Meta,
    /// The parent Gateway (namespace, name), in the same cluster.
    pub parent: (String, String),
    /// Admitted like a Gateway's listeners; `AllowedRoutes::Same` means the ListenerSet's
    /// namespace.
    pub listeners: Vec<Listener>,
}

/// A TLSRoute (v1): SNI hostnames -> backends, through TLS listeners in Passthrough mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRoute {
    pub meta: Meta,
    pub parent_refs: Vec<ParentRef>,
    /// Lower-case.
    pub hostnames: Vec<String>,
    pub rules: Vec<TlsRouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRouteRule {
    pub name: Option<String>,
    pub backends: Vec<Backend>,
}

impl ClusterIntent {
    /// Whether the cluster holds no object of any kind.
    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
            && self.http_routes.is_empty()
            && self.tls_routes.is_empty()
            && self.grpc_routes.is_empty()
            && self.services.is_empty()
            && self.l4_routes.is_empty()
            && self.listener_sets.is_empty()
            && self.ai_backends.is_empty()
            && self.virtual_keys.is_empty()
    }
}

/// All accepted intent of the fleet: the compiler's whole input. Each cluster's intent is
/// shared (`Arc`), so that a copy of the fleet's intent (the hub's `Fleet` copies it when it
/// changes one cluster while the compile loop still reads the previous one) costs a pointer per
/// cluster, not the fleet's objects, and a cluster whose intent was not replaced is recognised
/// by its pointer.
pub type FleetIntent = BTreeMap<ClusterKey, std::sync::Arc<ClusterIntent>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub meta: Meta,
    pub class_name: String,
    pub listeners: Vec<Listener>,
    /// `spec.allowedListeners`: which ListenerSets may add listeners.
    #[serde(default)]
    pub allowed_listeners: AllowedListeners,
}

/// A Gateway's `spec.allowedListeners.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowedListeners {
    /// No ListenerSet (the Gateway API default).
    #[default]
    None,
    /// ListenerSets in the Gateway's own namespace.
    Same,
    All,
    /// ListenerSets in exactly these namespaces (the agent resolved the label selector).
    Namespaces(BTreeSet<String>),
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
    /// The `tls` block of HTTPS and TLS listeners (`None` for HTTP ones).
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// `allowedRoutes.kinds`; empty: the kinds of the listener's protocol.
    #[serde(default)]
    pub allowed_kinds: Vec<RouteGroupKind>,
}

/// A route kind with its API group (`allowedRoutes.kinds`, listener `supportedKinds`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteGroupKind {
    pub group: String,
    pub kind: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMode {
    /// The data plane terminates TLS with the listener's certificates (HTTPS).
    Terminate,
    /// The data plane forwards the TLS stream untouched, selected by SNI (TLS + TLSRoute).
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerTls {
    pub mode: TlsMode,
    /// Admitted certificates, in certificateRef order (Terminate only).
    pub certificates: Vec<Certificate>,
    /// Set when a certificateRef is unusable (missing Secret, not a TLS Secret, no
    /// ReferenceGrant, or a certificate the tenant may not serve): the listener is then not
    /// programmed and reports ResolvedRefs=False with this reason.
    pub problem: Option<BackendProblem>,
    /// The keys of `tls.options` as written. fleetgate implements none: a listener with any is
    /// refused alone (Accepted=False/UnsupportedValue) rather than served without them.
    #[serde(default)]
    pub options: Vec<String>,
}

/// One admitted certificate: parsed, its key matching, every DNS name in it owned by the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The Secret it came from (in the tenant cluster).
    pub namespace: String,
    pub name: String,
    /// PEM chain, leaf first, re-encoded by admission (only CERTIFICATE blocks).
    pub cert_chain_pem: String,
    pub private_key_pem: PrivateKeyPem,
    /// Lower-case DNS names of the leaf (SANs).
    pub dns_names: Vec<String>,
    /// The leaf's serial number, hex.
    pub serial: String,
}

/// A PEM private key. Its Debug never shows the key, so that no log line can carry it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateKeyPem(pub String);

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
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
    /// What the parentRef names: a Gateway or a ListenerSet.
    #[serde(default)]
    pub kind: ParentKind,
}

/// The kind of a route's parent (group `gateway.networking.k8s.io`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum ParentKind {
    #[default]
    Gateway,
    ListenerSet,
}

impl ParentKind {
    /// The Gateway API kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentKind::Gateway => "Gateway",
            ParentKind::ListenerSet => "ListenerSet",
        }
    }
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
    /// Never empty: admission turns "no matches" into one `PathPrefix /` match. Thin lists,
    /// here and below (one pointer; none allocated while empty): the admitted intent holds
    /// these for every rule of the fleet (stored the same way: a sequence).
    pub matches: ThinVec<HttpRouteMatch>,
    pub filters: ThinVec<HttpFilter>,
    pub backends: ThinVec<Backend>,
    /// `rules[].timeouts`; both unset by default.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// `rules[].timeouts` (Gateway API, Extended). Zero means "no timeout".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// The whole request, from the first byte received to the last byte of the response.
    pub request: Option<Duration>,
    /// One request from the data plane to a backend.
    pub backend_request: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRouteMatch {
    pub path: PathMatch,
    /// Header matches, all must match; names lower-case.
    pub headers: ThinVec<(String, ValueMatch)>,
    /// Query parameter matches, all must match; names as written (case-sensitive).
    #[serde(default)]
    pub query_params: ThinVec<(String, ValueMatch)>,
    /// Upper-case HTTP method; `None` matches any.
    #[serde(default)]
    pub method: Option<String>,
}

/// How a header or query parameter value is matched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "ValueMatchRepr")]
pub enum ValueMatch {
    Exact(String),
    /// An RE2 regular expression over the whole value (admission checked that it compiles).
    RegularExpression(String),
}

/// What the store may hold for a [`ValueMatch`]: a plain string (exact header values, as stored
/// before regular expressions existed) or the tagged form.
#[derive(Deserialize)]
#[serde(untagged)]
enum ValueMatchRepr {
    Plain(String),
    Tagged(ValueMatchTagged),
}

#[derive(Deserialize)]
enum ValueMatchTagged {
    Exact(String),
    RegularExpression(String),
}

impl From<ValueMatchRepr> for ValueMatch {
    fn from(r: ValueMatchRepr) -> Self {
        match r {
            ValueMatchRepr::Plain(s) | ValueMatchRepr::Tagged(ValueMatchTagged::Exact(s)) => {
                ValueMatch::Exact(s)
            }
            ValueMatchRepr::Tagged(ValueMatchTagged::RegularExpression(s)) => {
                ValueMatch::RegularExpression(s)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatch {
    Exact(String),
    /// Element-wise prefix: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    Prefix(String),
    /// An RE2 regular expression over the whole path (admission checked that it compiles).
    RegularExpression(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpFilter {
    RequestHeaderModifier(HeaderModifier),
    ResponseHeaderModifier(HeaderModifier),
    RequestRedirect(Redirect),
    UrlRewrite(Rewrite),
    RequestMirror(Mirror),
    Cors(Cors),
    /// A filter fleetgate cannot apply (ExtensionRef, ...). The rule is kept and its requests
    /// are answered with 500, never served without the filter; the route is reported
    /// `Accepted=False/UnsupportedValue` on every parent.
    Unsupported(UnsupportedFilter),
}

/// A filter the tenant wrote that fleetgate cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsupportedFilter {
    /// The filter's type as written (`ExtensionRef`, ...).
    pub filter: String,
    /// What is wrong and what to change, for the route's status.
    pub message: String,
}

/// ReplaceFullPath / ReplacePrefixMatch of a redirect or a rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathModifier {
    ReplaceFullPath(String),
    /// Replaces the matched PathPrefix (admission only allows it on rules whose matches are all
    /// PathPrefix).
    ReplacePrefixMatch(String),
}

/// RequestRedirect: the data plane answers with a redirect instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// `http` or `https`; `None` keeps the request's.
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
    pub port: Option<u16>,
    /// 301, 302, 303, 307 or 308.
    pub status_code: u16,
}

/// URLRewrite: the request is changed before it is forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    pub hostname: Option<String>,
    pub path: Option<PathModifier>,
}

/// RequestMirror: a copy of (a share of) the requests goes to another backend; its answers are
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    pub backend: Backend,
    /// Share of requests mirrored: numerator / denominator, 0 < numerator <= denominator.
    pub numerator: u32,
    pub denominator: u32,
}

/// CORS (Gateway API Extended since v1.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    /// `*`, `scheme://host[:port]`, or with a `*` label wildcard in the host.
    pub allow_origins: Vec<String>,
    pub allow_credentials: bool,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
}

/// Header changes. Thin lists (one pointer each, no allocation while empty): every compiled
/// route and every backend of one carries two of these, and nearly all are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    pub set: ThinVec<(String, String)>,
    pub add: ThinVec<(String, String)>,
    pub remove: ThinVec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    pub weight: u32,
    /// Set when the agent could not resolve the reference: its share of traffic gets 500
    /// (boxed: rare, and every backendRef of the fleet is held).
    pub problem: Option<Box<BackendProblem>>,
    /// Ready endpoints only, already checked against the cluster's CIDRs by admission.
    pub endpoints: ThinVec<SocketAddr>,
    /// The protocol the backend speaks (the Service port's appProtocol).
    #[serde(default)]
    pub app_protocol: AppProtocol,
    /// `backendRefs[].filters`: header changes only for requests sent to this backend.
    #[serde(default)]
    pub request_headers: HeaderModifier,
    #[serde(default)]
    pub response_headers: HeaderModifier,
    /// What the backendRef names: a Service (its endpoints above) or an AgentgatewayBackend of
    /// the same cluster (looked up by namespace and name when compiled; port and endpoints are
    /// then unused).
    #[serde(default)]
    pub kind: BackendKind,
}

/// The kind of object a backendRef names.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum BackendKind {
    /// A core Service (the Gateway API default).
    #[default]
    Service,
    /// An `agentgateway.dev` AgentgatewayBackend: traffic goes to the AI gateway.
    AiBackend,
}

impl BackendKind {
    /// The kind as a tenant writes it in a backendRef.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Service => "Service",
            BackendKind::AiBackend => AI_BACKEND_KIND,
        }
    }
}

/// The kind name of an AgentgatewayBackend in a backendRef (group `agentgateway.dev`).
pub const AI_BACKEND_KIND: &str = "AgentgatewayBackend";

/// The upstream protocol of a backend, from the Service port's `appProtocol`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum AppProtocol {
    /// HTTP/1.1 (unset, `http`, or anything fleetgate does not know).
    #[default]
    Http1,
    /// `kubernetes.io/h2c`: HTTP/2 over cleartext, prior knowledge.
    H2c,
    /// `kubernetes.io/ws`: HTTP/1.1 with WebSocket upgrades (which every route allows anyway).
    WebSocket,
    /// `agentgateway.dev/a2a`: an A2A agent, which HTTPRoutes reach through the AI gateways
    /// (the compiler's `a2a_services`).
    A2a,
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

// ---- GRPCRoute ---------------------------------------------------------------------------

/// A GRPCRoute (v1): gRPC service/method and header matches -> HTTP/2 backends. The compiler
/// places its rules into the same virtual hosts as HTTPRoutes (the compiler's `grpc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcRoute {
    pub meta: Meta,
    pub parent_refs: Vec<ParentRef>,
    /// Lower-case.
    pub hostnames: Vec<String>,
    pub rules: Vec<GrpcRouteRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcRouteRule {
    pub name: Option<String>,
    /// Never empty: admission turns "no matches" into one match of everything.
    pub matches: Vec<GrpcRouteMatch>,
    /// RequestHeaderModifier, ResponseHeaderModifier and RequestMirror only.
    pub filters: Vec<HttpFilter>,
    /// Every backend (and mirror backend) has `app_protocol` [`AppProtocol::H2c`].
    pub backends: Vec<Backend>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcRouteMatch {
    /// `None`: any service and method.
    pub method: Option<GrpcMethodMatch>,
    /// Header matches, all must match; names lower-case.
    pub headers: Vec<(String, ValueMatch)>,
}

/// A gRPC method match: the request path is `/<service>/<method>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrpcMethodMatch {
    /// Exact service and/or method names (at least one set; admission checked they are gRPC
    /// identifiers).
    Exact {
        service: Option<String>,
        method: Option<String>,
    },
    /// RE2 regular expressions over the service and/or method name (at least one set).
    RegularExpression {
        service: Option<String>,
        method: Option<String>,
    },
}

/// Matches one service or method name in a regular expression when the match leaves it unset.
const ANY_NAME: &str = "[^/]+";

/// The request path match of a GRPCRoute method match: `/<service>/<method>`, gRPC's wire
/// mapping. Exact service+method -> exact path; Exact service only -> path prefix `/<service>/`;
/// Exact method only and RegularExpression -> the RE2 expression `/(?:<service>)/(?:<method>)`,
/// an unset side being `[^/]+`. The compiler routes on it (`fleetgate-hub-compile`'s `grpc`);
/// admission bounds its RE2 size.
pub fn grpc_path_match(m: Option<&GrpcMethodMatch>) -> PathMatch {
    match m {
        None => PathMatch::Prefix("/".into()),
        Some(GrpcMethodMatch::Exact { service, method }) => {
            let service = service.as_deref().map(|s| s.strip_prefix('.').unwrap_or(s));
            match (service, method.as_deref()) {
                (Some(s), Some(m)) => PathMatch::Exact(format!("/{s}/{m}")),
                (Some(s), None) => PathMatch::Prefix(format!("/{s}/")),
                // Identifiers hold no regex metacharacters.
                (None, m) => {
                    PathMatch::RegularExpression(format!("/{ANY_NAME}/{}", m.unwrap_or(ANY_NAME)))
                }
            }
        }
        Some(GrpcMethodMatch::RegularExpression { service, method }) => {
            PathMatch::RegularExpression(format!(
                "/(?:{})/(?:{})",
                service.as_deref().unwrap_or(ANY_NAME),
                method.as_deref().unwrap_or(ANY_NAME)
            ))
        }
    }
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
    /// Gateway `status.attachedListenerSets` (Gateways only).
    #[serde(default)]
    pub attached_listener_sets: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    pub attached_routes: u32,
    pub conditions: Vec<Condition>,
    /// The route kinds the listener takes (`supportedKinds`).
    #[serde(default)]
    pub supported_kinds: Vec<RouteGroupKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteParentStatus {
    pub parent_ref: ParentRef,
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_stored_before_regexes_still_load() {
        let old = r#"{"path":{"Prefix":"/"},"headers":[["x-a","1"]]}"#;
        let m: HttpRouteMatch = serde_json::from_str(old).unwrap();
        assert_eq!(
            m.headers,
            vec![("x-a".into(), ValueMatch::Exact("1".into()))]
        );
        assert!(m.query_params.is_empty() && m.method.is_none());
        let new = HttpRouteMatch {
            path: PathMatch::RegularExpression("/v[0-9]+".into()),
            headers: thin_vec![("x-b".into(), ValueMatch::RegularExpression("^a".into()))],
            query_params: thin_vec![("q".into(), ValueMatch::Exact("1".into()))],
            method: Some("GET".into()),
        };
        let back: HttpRouteMatch =
            serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }
}
