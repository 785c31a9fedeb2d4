//! The compiled data-plane snapshot: fleetgate's own model of what the shared data plane serves.
//!
//! Step 7 (compile) of the data path produces it; step 8 (publish, `crate::xds`) turns it into
//! Envoy resources. It holds no Envoy types and no tenant free text: every name in it is built
//! by `super::names` from validated tenant, cluster, namespace and object names.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::model::{ClusterKey, HeaderModifier, ObjectKey};

/// Everything the shared data plane serves, immutable once built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// One per published data-plane port, ordered by port.
    pub listeners: Vec<ListenerSnapshot>,
    /// Upstream clusters referenced by routes and L4 listeners, ordered by name.
    pub clusters: Vec<ClusterSnapshot>,
    /// One per allocated L4 (address, port, protocol), ordered by name (`super::l4`).
    pub l4_listeners: Vec<L4ListenerSnapshot>,
}

/// One allocated (address, port) of a LoadBalancer Service port: the data plane binds it and
/// forwards every TCP connection or UDP datagram to `cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L4ListenerSnapshot {
    /// Envoy listener name, e.g. `l4/tcp/127.0.0.1:20000`.
    pub name: String,
    pub protocol: crate::model::L4Protocol,
    /// Where the data plane binds (the pool's `bind` override applied).
    pub bind: SocketAddr,
    /// The cluster of the Service port's endpoints.
    pub cluster: String,
    /// The Service it serves.
    pub source: SourceObject,
}

/// The tenant object a data-plane resource was built from, so that a rejection by the data
/// plane (an Envoy NACK) can be reported on the objects that caused it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceObject {
    pub cluster: ClusterKey,
    pub object: ObjectKey,
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
    pub virtual_hosts: Vec<VirtualHost>,
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
}

/// How a route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathMatch {
    /// The whole path.
    Exact(String),
    /// Element-wise prefix without a trailing `/` (except the root `/`): `/foo` matches `/foo`,
    /// `/foo/` and `/foo/bar`, not `/foobar`.
    Prefix(String),
}

/// One match of one rule of one HTTPRoute, placed in precedence order inside its virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub path: PathMatch,
    /// Exact header matches, all must match; names lower-case.
    pub headers: Vec<(String, String)>,
    pub request_headers: HeaderModifier,
    pub action: RouteAction,
    /// The HTTPRoute this came from; `None` for routes fleetgate adds itself (the 404 catch-all).
    pub source: Option<SourceObject>,
}

/// What a matched request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Spread over clusters by weight; never empty, every weight > 0. The share of
    /// `names::INVALID_BACKEND_CLUSTER` (a cluster that does not exist) is answered with 500.
    Forward(Vec<WeightedCluster>),
    /// Answered by the data plane itself with this HTTP status and no body.
    DirectResponse(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
}

/// An upstream cluster and its ready endpoints (none: the data plane answers 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub name: String,
    pub endpoints: Vec<SocketAddr>,
    /// The HTTPRoute whose backendRef this is; `None` for fleetgate's own clusters.
    pub source: Option<SourceObject>,
}

impl Snapshot {
    /// Every tenant object that contributed to this snapshot.
    pub fn sources(&self) -> BTreeSet<SourceObject> {
        let mut out = BTreeSet::new();
        for l in &self.listeners {
            out.extend(l.gateways.iter().cloned());
            for vh in &l.virtual_hosts {
                out.extend(vh.routes.iter().filter_map(|r| r.source.clone()));
            }
        }
        out.extend(self.clusters.iter().filter_map(|c| c.source.clone()));
        out.extend(self.l4_listeners.iter().map(|l| l.source.clone()));
        out
    }
}
