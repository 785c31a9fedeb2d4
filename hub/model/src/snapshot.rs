//! The compiled data-plane snapshot: fleetgate's own model of what the shared data plane serves.
//!
//! Step 7 (compile, `fleetgate-hub-compile`) of the data path produces it; step 8 (publish,
//! `fleetgate-hub-xds`) turns it into
//! Envoy resources. It holds no Envoy types and no tenant free text: every name in it is built
//! by the compiler's `names` from validated tenant, cluster, namespace and object names.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ThinVec;

// Defined at the crate root (the `ai` part carries it too); re-exported for its many users.
pub use crate::SourceObject;
use crate::{AppProtocol, Cors, HeaderModifier, PathModifier, PrivateKeyPem, ValueMatch};

/// The cluster name that receives the traffic share of invalid backendRefs. It is never
/// defined, so the data plane answers that share with its cluster-not-found code, which
/// the xDS translation (`fleetgate-hub-xds`) sets to 500 on such routes (Gateway API: invalid backend -> 500).
pub const INVALID_BACKEND_CLUSTER: &str = "fleetgate/invalid-backend";

/// Everything the shared data plane serves, immutable once built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// One per published data-plane port, ordered by port.
    pub listeners: Vec<ListenerSnapshot>,
    /// Upstream clusters referenced by routes and L4 listeners, ordered by name. Shared (`Arc`)
    /// with the compiler's memo (`super::memo`) and between snapshots, so that comparing two
    /// snapshots and re-encoding one skip what did not change.
    pub clusters: Vec<Arc<ClusterSnapshot>>,
    /// One per published TLS data-plane port that has at least one SNI hostname, ordered by port
    /// (see `super::tls`).
    pub tls_listeners: Vec<TlsListenerSnapshot>,
    /// Certificates the TLS listeners use, ordered by name (served to Envoy over SDS).
    pub secrets: Vec<SecretSnapshot>,
    /// One per allocated L4 (address, port, protocol), ordered by name (`super::l4`).
    pub l4_listeners: Vec<L4ListenerSnapshot>,
    /// What the AI gateways serve, per tenant (the routes Envoy sends them; see [`crate::ai`]).
    pub ai: crate::ai::AiSnapshot,
}

/// A TLS data-plane port: connections dispatched by SNI to one chain per hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListenerSnapshot {
    /// Envoy listener name, e.g. `port/443`.
    pub name: String,
    pub port: u16,
    pub bind: SocketAddr,
    /// Ordered by name; every server name appears in exactly one chain.
    pub chains: Vec<TlsChain>,
    /// Gateways with an accepted listener on this port.
    pub gateways: BTreeSet<SourceObject>,
}

/// The connections of one SNI hostname (exact or `*.` wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsChain {
    /// e.g. `port/443/sni/app.a.example`; also the RDS name of a terminating chain.
    pub name: String,
    pub server_names: Vec<String>,
    pub action: TlsChainAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsChainAction {
    /// HTTPS: the data plane terminates TLS with these SDS secrets (by name) and routes the
    /// requests with `http` (its name is the chain's; its virtual hosts those of the hostname,
    /// then the 404 catch-all).
    Terminate {
        secrets: Vec<String>,
        http: ListenerSnapshot,
    },
    /// TLS passthrough: the TLS stream goes untouched to these clusters, by weight; an empty
    /// list closes the connection (no valid backend).
    Passthrough {
        clusters: Vec<WeightedCluster>,
        source: SourceObject,
        /// The owning tenant's connection limit; set after compiling by
        /// the runtime's `traffic_limits`.
        max_connections: Option<u32>,
    },
}

/// A certificate and its private key, served over SDS. Debug never shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSnapshot {
    pub name: String,
    pub cert_chain_pem: String,
    pub private_key_pem: PrivateKeyPem,
    /// The Gateway whose listener references it.
    pub source: Option<SourceObject>,
}

/// One allocated (address, port) of a LoadBalancer Service port: the data plane binds it and
/// forwards every TCP connection or UDP datagram to `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L4ListenerSnapshot {
    /// Envoy listener name, e.g. `l4/tcp/127.0.0.1:20000`.
    pub name: String,
    pub protocol: crate::L4Protocol,
    /// Where the data plane binds (the pool's `bind` override applied).
    pub bind: SocketAddr,
    /// Where connections (datagrams) go: one entry takes everything; several split TCP
    /// connections by weight (a UDP listener always has exactly one).
    pub upstreams: Vec<L4Upstream>,
    /// The Service or TCPRoute/UDPRoute it serves.
    pub source: SourceObject,
    /// The owning tenant's connection limit; set after compiling by the runtime's `traffic_limits`.
    pub max_connections: Option<u32>,
}

/// One cluster behind an L4 listener and its share of the connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L4Upstream {
    pub cluster: String,
    /// Relative weight, never 0 (a zero-weight backendRef gets no upstream at all).
    pub weight: u32,
}

/// One published data-plane port and the virtual hosts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSnapshot {
    /// Envoy listener and route-configuration name, e.g. `port/80`.
    pub name: String,
    /// The port tenants write in their Gateway listeners.
    pub port: u16,
    /// Where the data plane binds.
    pub bind: SocketAddr,
    /// Virtual hosts, ordered by name; the last one is always the catch-all `*` answering 404.
    /// Shared between snapshots like [`Snapshot::clusters`].
    pub virtual_hosts: Vec<Arc<VirtualHost>>,
    /// Gateways with an accepted listener on this port.
    pub gateways: BTreeSet<SourceObject>,
}

/// All routes for one hostname (exact or `*.` wildcard) on one data-plane port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    /// In match order: the first route that matches a request wins.
    pub routes: Vec<Route>,
    /// The owning tenant's request-rate limit; set after compiling by the runtime's `traffic_limits`.
    pub rate_limit: Option<crate::policy::RequestRate>,
}

/// How a route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathMatch {
    /// The whole path.
    Exact(String),
    /// Element-wise prefix without a trailing `/` (except the root `/`): `/foo` matches `/foo`,
    /// `/foo/` and `/foo/bar`, not `/foobar`.
    Prefix(String),
    /// An RE2 regular expression over the whole path.
    RegularExpression(String),
}

/// One match of one rule of one HTTPRoute, placed in precedence order inside its virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub path: PathMatch,
    /// Header matches, all must match; names lower-case. Thin lists (one pointer while
    /// empty, as most are): a `Route` is held per rule, match and listener of the fleet.
    pub headers: ThinVec<(String, ValueMatch)>,
    /// Query parameter matches, all must match.
    pub query_params: ThinVec<(String, ValueMatch)>,
    /// Upper-case HTTP method; `None`: any.
    pub method: Option<String>,
    pub request_headers: HeaderModifier,
    pub response_headers: HeaderModifier,
    /// CORS policy answered by the data plane (preflights) and added to responses; boxed, as
    /// few routes have one and a `Route` is held per rule and match of the fleet.
    pub cors: Option<Box<Cors>>,
    pub action: RouteAction,
    /// The HTTPRoute this came from; `None` for routes fleetgate adds itself (the 404 catch-all).
    /// Shared by every route of the object (one per rule, match and listener).
    pub source: Option<Arc<SourceObject>>,
}

/// What a matched request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Spread over clusters by weight; never empty, every weight > 0. The share of
    /// `names::INVALID_BACKEND_CLUSTER` (a cluster that does not exist) is answered with 500.
    Forward(Forward),
    /// Answered by the data plane itself with this HTTP status and no body.
    DirectResponse(u32),
    /// Answered by the data plane with a redirect (boxed: few routes redirect, and the
    /// largest variant sizes every route).
    Redirect(Box<Redirect>),
}

/// Forwarding to upstream clusters and what happens on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// Never empty, every weight > 0.
    pub clusters: Vec<WeightedCluster>,
    /// Host and path rewrite before forwarding (boxed, as few routes rewrite).
    pub rewrite: Option<Box<Rewrite>>,
    /// Copies of (a share of) the requests, answers dropped.
    pub mirrors: ThinVec<MirrorTarget>,
    /// Whole-request timeout (zero: none); `None`: the data plane's default.
    pub timeout: Option<Duration>,
    /// Timeout of one try to a backend; `None`: bounded by `timeout` only.
    pub backend_timeout: Option<Duration>,
}

impl Forward {
    /// Plain forwarding to `clusters`, nothing else.
    pub fn to(clusters: Vec<WeightedCluster>) -> Self {
        Self {
            clusters,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
    /// Header changes of this backendRef only (`backendRefs[].filters`).
    pub request_headers: HeaderModifier,
    pub response_headers: HeaderModifier,
}

impl WeightedCluster {
    pub fn new(cluster: impl Into<String>, weight: u32) -> Self {
        Self {
            cluster: cluster.into(),
            weight,
            request_headers: HeaderModifier::default(),
            response_headers: HeaderModifier::default(),
        }
    }
}

/// A URLRewrite in data-plane form. A ReplacePrefixMatch carries the matched prefix (normalised
/// like [`PathMatch::Prefix`]) it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub hostname: Option<String>,
    pub path: Option<PathRewrite>,
}

/// How a path is rewritten (by a URLRewrite or a redirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    Full(String),
    /// Replace `matched` (the route's PathPrefix) by `replacement`.
    Prefix {
        matched: String,
        replacement: String,
    },
}

impl PathRewrite {
    /// The rewrite of `m` for a route that matched `path`.
    pub fn new(m: &PathModifier, path: &PathMatch) -> Self {
        match (m, path) {
            (PathModifier::ReplaceFullPath(p), _) => PathRewrite::Full(p.clone()),
            (PathModifier::ReplacePrefixMatch(r), PathMatch::Prefix(matched)) => {
                PathRewrite::Prefix {
                    matched: matched.clone(),
                    replacement: r.clone(),
                }
            }
            // Admission allows ReplacePrefixMatch only with PathPrefix matches.
            (PathModifier::ReplacePrefixMatch(r), _) => PathRewrite::Full(r.clone()),
        }
    }
}

/// A RequestRedirect in data-plane form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathRewrite>,
    /// The port written into Location; `None`: none (the scheme's default port).
    pub port: Option<u16>,
    pub status_code: u16,
}

/// A mirror target cluster and the share of requests it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorTarget {
    pub cluster: String,
    pub numerator: u32,
    pub denominator: u32,
}

/// An upstream cluster and its ready endpoints (none: the data plane answers 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub name: String,
    pub endpoints: Vec<SocketAddr>,
    /// The protocol the upstream speaks (HTTP/1.1 or h2c).
    pub protocol: AppProtocol,
    /// The objects that use it (the HTTPRoutes and GRPCRoutes whose backendRefs or mirrors name
    /// its Service port, or the Service, TLSRoute or TCP/UDPRoute it was built for), ordered,
    /// without duplicates, all of one tenant cluster (its name carries that cluster, see the
    /// compiler's `names`); empty for fleetgate's own clusters. A NACK of the cluster is reported
    /// on each of them.
    /// Shared with the routes' own `source` (one allocation per HTTPRoute, however many
    /// clusters it uses).
    pub sources: Vec<Arc<SourceObject>>,
}

impl ClusterSnapshot {
    /// The tenant cluster whose objects use it; `None` for fleetgate's own clusters.
    pub fn owner(&self) -> Option<&crate::ClusterKey> {
        self.sources.first().map(|s| &s.cluster)
    }
}

impl Snapshot {
    /// Every tenant object that contributed to this snapshot.
    pub fn sources(&self) -> BTreeSet<SourceObject> {
        let mut out = BTreeSet::new();
        for l in &self.listeners {
            out.extend(l.gateways.iter().cloned());
            for vh in &l.virtual_hosts {
                out.extend(
                    vh.routes
                        .iter()
                        .filter_map(|r| r.source.as_deref().cloned()),
                );
            }
        }
        out.extend(
            self.clusters
                .iter()
                .flat_map(|c| c.sources.iter().map(|s| (**s).clone())),
        );
        for l in &self.tls_listeners {
            out.extend(l.gateways.iter().cloned());
            for c in &l.chains {
                match &c.action {
                    TlsChainAction::Terminate { http, .. } => {
                        for vh in &http.virtual_hosts {
                            out.extend(
                                vh.routes
                                    .iter()
                                    .filter_map(|r| r.source.as_deref().cloned()),
                            );
                        }
                    }
                    TlsChainAction::Passthrough { source, .. } => {
                        out.insert(source.clone());
                    }
                }
            }
        }
        out.extend(self.secrets.iter().filter_map(|s| s.source.clone()));
        out.extend(self.l4_listeners.iter().map(|l| l.source.clone()));
        for t in self.ai.tenants.values() {
            out.extend(t.routes.values().map(|r| r.source.clone()));
        }
        out
    }
}
