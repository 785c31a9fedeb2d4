//! fleetgate-hub-compile, the compiler: all accepted intent -> one immutable data-plane snapshot
//! + every object's status.
//!
//! Step 7 of the hub's data path, between `store` (accepted intent, in the runtime crate
//! `fleetgate-hub`) and `xds` (publish, `fleetgate-hub-xds`). Pure: no I/O, no tonic, no tokio,
//! and no configuration file; it depends on `fleetgate-hub-model` alone, and reads the data plane
//! and allocations as model types. This is where Gateway API semantics live: listener validation
//! (`listener`), listener conflicts (`conflict`), route attachment (`attach`, `hostname`), rule
//! precedence (`precedence`) and resource naming (`names`); the routes of several clusters of
//! one tenant for one hostname are merged by `merge`; ListenerSets are merged into their
//! Gateways first (`listener_set`). The output model is `snapshot`
//! (`fleetgate_hub_model::snapshot`, re-exported here).
//! Each cluster compiles to a part of its own (`cluster_part`) that `assemble` combines;
//! `memo` keeps the parts between compiles so that a change recompiles its cluster only.

pub mod a2a_services;
pub mod ai;
mod attach;
pub mod conflict;
pub mod grpc;
mod hostname;
pub mod kinds;
pub mod l4;
mod listener;
pub mod listener_set;
mod memo;
mod merge;
pub mod names;
pub mod own_address;
mod precedence;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod virtual_keys;

use fleetgate_hub_model as model;
pub use fleetgate_hub_model::snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use memo::{Memo, Revisions};
pub use snapshot::{
    ClusterSnapshot, Forward, L4ListenerSnapshot, ListenerSnapshot, MirrorTarget, PathMatch,
    PathRewrite, Redirect, Rewrite, Route, RouteAction, SecretSnapshot, Snapshot, SourceObject,
    TlsChain, TlsChainAction, TlsListenerSnapshot, VirtualHost, WeightedCluster,
};

use crate::model::data_plane::{DataPlane, DataPlaneProtocol};
use crate::model::{
    AppProtocol, ClusterKey, Condition, FleetIntent, HeaderModifier, HttpFilter, HttpRoute,
    HttpRouteRule, Kind, ObjectKey, ObjectStatus, Protocol, RouteParentStatus, ThinVec,
};
use listener::ListenerProblem;
use precedence::{ObjectOrder, Origin, Precedence};

/// The compiler's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub snapshot: Snapshot,
    /// Exactly one status per object of the intent, per cluster, gateways first, each in key
    /// order. A cluster's list is shared with the compiler's memo while the cluster is
    /// unchanged.
    pub statuses: BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
}

/// A namespace and name: the key of an object inside one cluster's intent.
type NsName = (String, String);

/// Routes of one hostname on one data-plane port, in precedence order.
type HostRoutes = BTreeMap<Precedence, Route>;

/// Routes attached to Gateways on their own address: per Gateway, per listener port, per
/// hostname (`*`: every host).
type OwnBuilds = BTreeMap<NsName, BTreeMap<u16, BTreeMap<String, HostRoutes>>>;

/// What is being assembled for one data-plane port.
#[derive(Default)]
struct PortBuild {
    hosts: BTreeMap<String, HostRoutes>,
    gateways: BTreeSet<SourceObject>,
}

/// Compile all accepted intent: HTTP ([`compile`]) and L4 ([`l4::compile`]) in one snapshot;
/// Service statuses follow the other statuses of their cluster.
pub fn compile_with_l4(
    intent: &FleetIntent,
    dp: &DataPlane,
    l4_config: &crate::model::data_plane::L4Config,
    allocations: &crate::model::allocate::Allocations,
    failures: &BTreeMap<crate::model::allocate::PortKey, crate::model::allocate::AllocError>,
) -> Compiled {
    let own = own_address::OwnAddresses::new(intent, l4_config, allocations, failures);
    with_l4(
        Memo::default().compile_own(intent, &Revisions::new(), dp, &own),
        intent,
        l4_config,
        allocations,
        failures,
    )
}

/// Adds the L4 part of the intent to `out`, the compiled HTTP part.
fn with_l4(
    mut out: Compiled,
    intent: &FleetIntent,
    l4_config: &crate::model::data_plane::L4Config,
    allocations: &crate::model::allocate::Allocations,
    failures: &BTreeMap<crate::model::allocate::PortKey, crate::model::allocate::AllocError>,
) -> Compiled {
    let l4 = l4::compile(intent, allocations, failures, l4_config);
    let gw = l4::compile_gateways(intent, allocations, failures, l4_config);
    out.snapshot.l4_listeners = l4.listeners;
    out.snapshot.l4_listeners.extend(gw.listeners);
    out.snapshot
        .l4_listeners
        .sort_by(|a, b| a.name.cmp(&b.name));
    out.snapshot
        .clusters
        .extend(l4.clusters.into_iter().chain(gw.clusters).map(Arc::new));
    out.snapshot.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    for ((ck, (ns, name)), (listeners, addresses)) in &gw.gateways {
        if let Some(status) = out.statuses.get_mut(ck).and_then(|l| {
            Arc::make_mut(l).iter_mut().find(|s| {
                s.key.kind == Kind::Gateway && s.key.namespace == *ns && s.key.name == *name
            })
        }) {
            l4::merge_gateway_status(status, listeners, addresses);
        }
    }
    for (ck, list) in gw.routes.into_iter().chain(l4.statuses) {
        Arc::make_mut(out.statuses.entry(ck).or_default()).extend(list);
    }
    out
}

/// Compile all accepted intent against the data plane's published ports.
pub fn compile(intent: &FleetIntent, dp: &DataPlane) -> Compiled {
    Memo::default().compile(intent, dp)
}

/// One cluster's contribution to the snapshot and its statuses, owned so that the compiler's
/// memo (`memo`) can keep it while the cluster's intent and the fleet-wide facts it depends on
/// (listener conflicts, HTTPRoute/GRPCRoute hostname winners) stay the same. [`assemble`]
/// combines the parts of all clusters.
#[derive(Debug)]
struct ClusterPart {
    ports: BTreeMap<u16, PortPart>,
    /// Ordered by name.
    clusters: Vec<Arc<ClusterSnapshot>>,
    /// Accepted HTTPS/TLS listeners per data-plane port: Gateway key, listener index, Gateway.
    tls_inputs: BTreeMap<u16, Vec<(NsName, usize, SourceObject)>>,
    passthrough: BTreeMap<u16, BTreeMap<String, tls::Passthrough>>,
    /// Gateways first, then routes.
    statuses: Arc<Vec<ObjectStatus>>,
    /// The listeners of the cluster's Gateways served on their own address.
    own: own_address::OwnPart,
    /// The AI routes of the cluster's AgentgatewayBackends, by route id (`ai`).
    ai: BTreeMap<String, model::ai::AiRoute>,
    /// The cluster's VirtualKeys before the tenant-wide step (`virtual_keys`).
    keys: Vec<virtual_keys::KeyPart>,
}

/// One cluster's hostnames and accepted Gateways on one data-plane port.
#[derive(Debug, Default)]
struct PortPart {
    hosts: BTreeMap<String, HostPart>,
    gateways: BTreeSet<SourceObject>,
}

/// One cluster's routes for one hostname on one port, as the virtual host they make when no
/// other cluster serves the hostname.
#[derive(Debug)]
struct HostPart {
    /// The precedence key of each route of `vhost`, in the same order.
    keys: Vec<Precedence>,
    vhost: Arc<VirtualHost>,
}

/// Compiles the intent of one cluster (see [`ClusterPart`]).
fn cluster_part(
    ck: &ClusterKey,
    ci: &model::ClusterIntent,
    merged: &listener_set::Merged<'_>,
    conflicts: &conflict::Conflicts,
    route_conflicts: &grpc::ClusterConflicts<'_>,
    dp: &DataPlane,
    own: &own_address::OwnAddresses,
) -> ClusterPart {
    let mut ports: BTreeMap<u16, PortBuild> = BTreeMap::new();
    let mut clusters: BTreeMap<String, ClusterSnapshot> = BTreeMap::new();
    let mut tls_inputs: BTreeMap<u16, Vec<(NsName, usize, SourceObject)>> = BTreeMap::new();
    let mut passthrough: BTreeMap<u16, BTreeMap<String, tls::Passthrough>> = BTreeMap::new();

    // Listener checks for every Gateway of the cluster; a listener that passes them but
    // conflicts with another is not served either.
    let mut problems: BTreeMap<&(String, String), Vec<Option<ListenerProblem>>> = BTreeMap::new();
    for (k, gw) in &ci.gateways {
        let own_count = merged.own(ck, k, gw.listeners.len());
        let own_gw = own.get(ck, k);
        let checks: Vec<Option<ListenerProblem>> = gw
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let route_kinds = kinds::resolve(l);
                let conflict = || {
                    let c = conflicts.get(&(ck.clone(), k.clone()))?.get(i)?.as_ref()?;
                    Some(ListenerProblem::Conflicted(
                        c.reason(),
                        c.message().to_string(),
                    ))
                };
                if i >= own_count && matches!(l.protocol, Some(Protocol::Tcp | Protocol::Udp)) {
                    // A conflict with an earlier listener says more than "not served here"
                    // (upstream `ListenerSetProtocolConflict`: a TCP listener on an HTTP port).
                    if let Some(c) = conflict() {
                        return Some(c);
                    }
                    return Some(ListenerProblem::UnsupportedProtocol(format!(
                        "{} listeners are not served in a ListenerSet yet; put this listener on the Gateway",
                        l.protocol_name
                    )));
                }
                let checked = match own_gw.and_then(|og| own_address::check(l, og, i >= own_count)) {
                    Some(r) => r,
                    None => listener::check(l, dp).map(|_| ()),
                };
                checked.err().or_else(|| {
                    // No route kind left: nothing can attach, the listener is not served.
                    if route_kinds.supported.is_empty()
                        && let Some(msg) = &route_kinds.invalid
                    {
                        return Some(ListenerProblem::Unresolved(
                            "InvalidRouteKinds".to_string(),
                            msg.clone(),
                        ));
                    }
                    conflict()
                })
            })
            .collect();
        let src = source(ck, Kind::Gateway, &gw.meta.namespace, &gw.meta.name);
        for (i, (l, p)) in gw.listeners.iter().zip(&checks).enumerate() {
            // A Gateway on its own address takes no shared port.
            if p.is_none() && own_gw.is_none() {
                ports
                    .entry(l.port)
                    .or_default()
                    .gateways
                    .insert(src.clone());
                if l.tls.is_some() && l.hostname.is_some() {
                    tls_inputs
                        .entry(l.port)
                        .or_default()
                        .push((k.clone(), i, src.clone()));
                }
            }
        }
        problems.insert(k, checks);
    }

    // Routes: attach, merge into virtual hosts, count attachments per listener.
    let mut attached: BTreeMap<NsName, Vec<BTreeSet<NsName>>> = BTreeMap::new();
    let mut route_statuses = Vec::new();
    let mut own_hosts: OwnBuilds = BTreeMap::new();
    let input = L7Input {
        ck,
        ci,
        problems: &problems,
        conflicts: route_conflicts,
        merged,
        own,
        ai: ai::Context {
            cluster: ck,
            backends: &ci.ai_backends,
            gateways: &dp.ai_gateways,
        },
    };
    for route in ci.http_routes.values() {
        route_statuses.push(attach_l7_route(
            input,
            L7Route::Http(route),
            &mut ports,
            &mut own_hosts,
            &mut attached,
            &mut clusters,
        ));
    }
    for route in ci.grpc_routes.values() {
        let as_http = grpc::as_http_route(route);
        route_statuses.push(attach_l7_route(
            input,
            L7Route::Grpc(route, &as_http),
            &mut ports,
            &mut own_hosts,
            &mut attached,
            &mut clusters,
        ));
    }

    let mut own_passthrough = BTreeMap::new();
    route_statuses.extend(tls::attach_tls_routes(
        ck,
        ci,
        merged,
        &problems,
        tls::TlsTargets {
            shared: &mut passthrough,
            own_addresses: own,
            own: &mut own_passthrough,
        },
        &mut clusters,
        &mut attached,
    ));

    // Gateways (their own listeners), then ListenerSets, then routes, then AI backends.
    let mut statuses = listener_set::gateway_statuses(merged, ck, ci, &problems, &attached, dp);
    statuses.extend(route_statuses);
    statuses.extend(ai::statuses(&ci.ai_backends));
    let (keys, key_statuses) = virtual_keys::cluster_keys(ck, &ci.virtual_keys, &ci.ai_backends);
    statuses.extend(key_statuses);

    // Gateways on their own address: their listeners, and their address in their status.
    let mut own_part = own_address::OwnPart::default();
    for (k, gw) in &merged.get(ck).expect("merged has every cluster").gateways {
        let Some(og) = own.get(ck, k) else { continue };
        let served = problems
            .get(k)
            .map(|ps| ps.iter().map(Option::is_none).collect())
            .unwrap_or_default();
        let hosts = own_hosts
            .remove(k)
            .unwrap_or_default()
            .into_iter()
            .map(|(port, hosts)| {
                let hosts = hosts
                    .into_iter()
                    .map(|(h, routes)| (h, merge::merge_clusters(routes.into_values())))
                    .collect();
                (port, hosts)
            })
            .collect();
        own_address::build(
            &own_address::OwnInput {
                cluster: ck,
                gateway: gw,
                own: og,
                served,
                hosts,
                passthrough: own_passthrough.remove(k).unwrap_or_default(),
            },
            &mut own_part,
        );
        if let Some(st) = statuses
            .iter_mut()
            .find(|s| s.key.kind == Kind::Gateway && s.key.namespace == k.0 && s.key.name == k.1)
        {
            own_address::fix_status(st, og);
        }
    }

    let ports = ports
        .into_iter()
        .map(|(port, pb)| {
            let hosts = pb
                .hosts
                .into_iter()
                .map(|(host, routes)| {
                    let keys: Vec<Precedence> = routes.keys().cloned().collect();
                    // Routes of one cluster are never merged (`merge`): one route per key.
                    let routes = merge::merge_clusters(routes.into_values());
                    debug_assert_eq!(keys.len(), routes.len());
                    let vhost = Arc::new(VirtualHost {
                        name: names::virtual_host(port, &host),
                        domains: vec![host.clone()],
                        routes,
                        rate_limit: None,
                    });
                    (host, HostPart { keys, vhost })
                })
                .collect();
            let part = PortPart {
                hosts,
                gateways: pb.gateways,
            };
            (port, part)
        })
        .collect();
    ClusterPart {
        ports,
        clusters: clusters.into_values().map(Arc::new).collect(),
        tls_inputs,
        passthrough,
        statuses: Arc::new(statuses),
        own: own_part,
        ai: {
            let mut routes = ai::routes(ck, &ci.ai_backends);
            routes.extend(a2a_services::routes(ck, &ci.http_routes));
            routes
        },
        keys,
    }
}

/// The routes of one hostname served by several parts (clusters), in precedence order, with
/// equal matches of the tenant's clusters merged (`merge`).
fn merged_routes(hosts: &[&HostPart]) -> Vec<Route> {
    if let [one] = hosts {
        return one.vhost.routes.clone();
    }
    let mut all: BTreeMap<&Precedence, &Route> = BTreeMap::new();
    for h in hosts {
        all.extend(h.keys.iter().zip(&h.vhost.routes));
    }
    merge::merge_clusters(all.into_values().cloned())
}

/// Combines the clusters' parts (in cluster order) into the snapshot: virtual hosts per
/// published port (a hostname of one cluster keeps that part's virtual host), TLS listeners,
/// upstream clusters and secrets.
fn assemble(
    merged: &listener_set::Merged<'_>,
    parts: &[(&ClusterKey, &ClusterPart)],
    dp: &DataPlane,
) -> Compiled {
    let mut statuses = BTreeMap::new();
    // Every part's upstream clusters (each part's ordered by name), sorted below.
    let mut clusters: Vec<&Arc<ClusterSnapshot>> = Vec::new();
    let mut clusters_in_order = true;
    // Every part's hostnames per port (each part's in name order), sorted below.
    let mut hosts: BTreeMap<u16, Vec<(&str, &HostPart)>> = BTreeMap::new();
    let mut gateways: BTreeMap<u16, BTreeSet<SourceObject>> = BTreeMap::new();
    let mut tls_inputs: BTreeMap<u16, Vec<tls::TlsListenerInput<'_>>> = BTreeMap::new();
    let mut passthrough: BTreeMap<u16, BTreeMap<String, tls::Passthrough>> = BTreeMap::new();
    let mut own_listeners = Vec::new();
    let mut own_tls = Vec::new();
    let mut secrets = BTreeMap::new();
    let mut ai_snapshot = model::ai::AiSnapshot::default();
    for (ck, part) in parts {
        statuses.insert((*ck).clone(), part.statuses.clone());
        if !part.ai.is_empty() {
            ai_snapshot
                .tenants
                .entry(ck.tenant.clone())
                .or_default()
                .routes
                .extend(part.ai.iter().map(|(id, r)| (id.clone(), r.clone())));
        }
        own_listeners.extend(part.own.listeners.iter().cloned());
        own_tls.extend(part.own.tls_listeners.iter().cloned());
        for sec in &part.own.secrets {
            secrets
                .entry(sec.name.clone())
                .or_insert_with(|| sec.clone());
        }
        // Each part's list is strictly in name order (made from a map by name): the whole is
        // too when every part's first name comes after the previous part's last.
        if let (Some(last), Some(first)) = (clusters.last(), part.clusters.first()) {
            clusters_in_order &= last.name < first.name;
        }
        clusters.extend(&part.clusters);
        for (port, pp) in &part.ports {
            gateways
                .entry(*port)
                .or_default()
                .extend(pp.gateways.iter().cloned());
            hosts
                .entry(*port)
                .or_default()
                .extend(pp.hosts.iter().map(|(host, hp)| (host.as_str(), hp)));
        }
        for (port, inputs) in &part.tls_inputs {
            for (gkey, i, src) in inputs {
                let l = &merged.get(ck).expect("a part per cluster").gateways[gkey].listeners[*i];
                if let (Some(t), Some(h)) = (&l.tls, &l.hostname) {
                    tls_inputs
                        .entry(*port)
                        .or_default()
                        .push(tls::TlsListenerInput {
                            cluster: ck,
                            hostname: h,
                            tls: t,
                            gateway: src.clone(),
                        });
                }
            }
        }
        for (port, on_port) in &part.passthrough {
            let all = passthrough.entry(*port).or_default();
            for (host, p) in on_port {
                all.entry(host.clone()).or_insert_with(|| p.clone());
            }
        }
    }

    let mut dp_listeners: Vec<_> = dp.listeners.iter().collect();
    dp_listeners.sort_by_key(|l| l.port);
    let mut tls_listeners = Vec::new();
    for dl in dp_listeners
        .iter()
        .filter(|dl| dl.protocol == DataPlaneProtocol::Tls)
    {
        let http_hosts: BTreeMap<String, Vec<Route>> =
            by_host(hosts.remove(&dl.port).unwrap_or_default())
                .map(|(h, parts)| (h.to_string(), merged_routes(&parts)))
                .collect();
        let none = BTreeMap::new();
        tls_listeners.extend(tls::build_listener(
            dl,
            tls_inputs
                .get(&dl.port)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            &http_hosts,
            passthrough.get(&dl.port).unwrap_or(&none),
            &mut secrets,
        ));
    }
    tls_listeners.extend(own_tls);
    let mut listeners: Vec<ListenerSnapshot> = dp_listeners
        .into_iter()
        .filter(|dl| dl.protocol == DataPlaneProtocol::Http)
        .map(|dl| {
            let mut virtual_hosts: Vec<Arc<VirtualHost>> =
                by_host(hosts.remove(&dl.port).unwrap_or_default())
                    .map(|(host, parts)| match &*parts {
                        [one] => one.vhost.clone(),
                        _ => Arc::new(VirtualHost {
                            name: names::virtual_host(dl.port, host),
                            domains: vec![host.to_string()],
                            routes: merged_routes(&parts),
                            rate_limit: None,
                        }),
                    })
                    .collect();
            virtual_hosts.push(Arc::new(catch_all(dl.port)));
            ListenerSnapshot {
                name: names::listener(dl.port),
                port: dl.port,
                bind: dl.bind,
                virtual_hosts,
                gateways: gateways.remove(&dl.port).unwrap_or_default(),
            }
        })
        .collect();
    listeners.extend(own_listeners);

    // By name, one per name: the last part's (as inserting into a map by name would keep).
    // The parts' lists are sorted runs: merged in about linear time, where inserting each of
    // tens of thousands into a map compared names a dozen times each.
    // Already in order (no name twice) unless parts' names interleave (a tenant name that
    // sorts differently inside a cluster name than as a key, e.g. `a` and `a-b`).
    if !clusters_in_order {
        clusters.reverse();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        clusters.dedup_by(|later, kept| later.name == kept.name);
    }

    let keys: Vec<(&ClusterKey, &[virtual_keys::KeyPart])> = parts
        .iter()
        .map(|(ck, part)| (*ck, part.keys.as_slice()))
        .collect();
    virtual_keys::assemble(&keys, &mut ai_snapshot, &mut statuses);

    Compiled {
        snapshot: Snapshot {
            listeners,
            clusters: clusters.into_iter().cloned().collect(),
            tls_listeners,
            secrets: secrets.into_values().collect(),
            l4_listeners: Vec::new(),
            ai: ai_snapshot,
        },
        statuses,
    }
}

/// The hostnames of one port from every part (`(hostname, part)`, each part's run in name
/// order), by hostname: each with the parts serving it, in the parts' order. Sorting the runs
/// merges them; a map from hostname to a list of parts, built for every compile, cost a node
/// search and a list per hostname of the fleet.
fn by_host<'a>(
    mut hosts: Vec<(&'a str, &'a HostPart)>,
) -> impl Iterator<Item = (&'a str, SmallParts<'a>)> {
    hosts.sort_by(|a, b| a.0.cmp(b.0));
    let mut hosts = hosts.into_iter().peekable();
    std::iter::from_fn(move || {
        let (host, first) = hosts.next()?;
        let mut parts = SmallParts::One(first);
        while let Some((_, hp)) = hosts.next_if(|(h, _)| *h == host) {
            parts.push(hp);
        }
        Some((host, parts))
    })
}

/// The parts serving one hostname: nearly always one, kept without a list.
enum SmallParts<'a> {
    One(&'a HostPart),
    Many(Vec<&'a HostPart>),
}

impl<'a> SmallParts<'a> {
    fn push(&mut self, hp: &'a HostPart) {
        match self {
            SmallParts::One(first) => *self = SmallParts::Many(vec![*first, hp]),
            SmallParts::Many(all) => all.push(hp),
        }
    }
}

impl<'a> std::ops::Deref for SmallParts<'a> {
    type Target = [&'a HostPart];
    fn deref(&self) -> &Self::Target {
        match self {
            SmallParts::One(one) => std::slice::from_ref(one),
            SmallParts::Many(all) => all,
        }
    }
}

/// What one cluster's L7 routes attach against.
#[derive(Clone, Copy)]
struct L7Input<'a> {
    ck: &'a ClusterKey,
    ci: &'a model::ClusterIntent,
    problems: &'a BTreeMap<&'a (String, String), Vec<Option<ListenerProblem>>>,
    conflicts: &'a grpc::ClusterConflicts<'a>,
    merged: &'a listener_set::Merged<'a>,
    own: &'a own_address::OwnAddresses,
    /// What backendRefs to AgentgatewayBackends resolve against.
    ai: ai::Context<'a>,
}

/// An HTTPRoute, or a GRPCRoute with its rules expressed as HTTPRoute rules (path matches on
/// `/<service>/<method>`), so that both go through the same route building.
#[derive(Clone, Copy)]
enum L7Route<'a> {
    Http(&'a HttpRoute),
    Grpc(&'a model::GrpcRoute, &'a HttpRoute),
}

impl L7Route<'_> {
    fn kind(&self) -> Kind {
        match self {
            L7Route::Http(_) => Kind::HttpRoute,
            L7Route::Grpc(..) => Kind::GrpcRoute,
        }
    }
    fn http(&self) -> &HttpRoute {
        match self {
            L7Route::Http(r) | L7Route::Grpc(_, r) => r,
        }
    }
}

/// Attach one HTTPRoute or GRPCRoute to its parents: its routes go into the virtual hosts of
/// every listener it attaches to; returns its status.
fn attach_l7_route(
    input: L7Input<'_>,
    l7: L7Route<'_>,
    ports: &mut BTreeMap<u16, PortBuild>,
    own_hosts: &mut OwnBuilds,
    attached: &mut BTreeMap<NsName, Vec<BTreeSet<NsName>>>,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> ObjectStatus {
    let L7Input {
        ck,
        ci,
        problems,
        conflicts,
        merged,
        own,
        ai,
    } = input;
    // BackendRefs to AgentgatewayBackends that do not resolve get their problem here, so that
    // ResolvedRefs and the 500 share follow the rules of every backend.
    let route = ai::resolve_route(l7.http(), &ai);
    let route: &HttpRoute = &route;
    let resolved = resolved_refs(route);
    let mut built: Option<Vec<Vec<Route>>> = None;
    let mut parents = Vec::new();
    for pref in &route.parent_refs {
        let (gkey, gw, scope) = merged.parent(ck, ci, pref);
        let (valid, served) = l7_listeners(problems.get(&gkey), gw);
        let route_kind = match l7.kind() {
            Kind::GrpcRoute => "GRPCRoute",
            _ => "HTTPRoute",
        };
        // On a Gateway's own address a hostname-less pair serves every host.
        let is_own = own.get(ck, &gkey).is_some();
        let attach_fn = if is_own {
            attach::attach_every_host
        } else {
            attach::attach
        };
        let accepted = match attach_fn(
            route_kind,
            &route.meta.namespace,
            &route.hostnames,
            pref,
            gw,
            scope,
            &valid,
        ) {
            Ok(atts) => {
                let gw = gw.expect("attach succeeds only with a gateway");
                if let Some(winner) = atts.iter().find_map(|att| {
                    conflicts.loser(gw.listeners[att.listener].port, &att.hostnames, l7.kind())
                }) {
                    parents.push(RouteParentStatus {
                        parent_ref: pref.clone(),
                        conditions: vec![
                            Condition::new("Accepted", false, grpc::CONFLICTED, winner),
                            resolved.clone(),
                        ],
                    });
                    continue;
                }
                let rules =
                    built.get_or_insert_with(|| build_rules(&ai, l7.kind(), route, clusters));
                for att in atts {
                    let counts = attached
                        .entry(gkey.clone())
                        .or_insert_with(|| vec![BTreeSet::new(); gw.listeners.len()]);
                    // Keyed by kind too: an HTTPRoute and a GRPCRoute of one name are two
                    // routes.
                    counts[att.listener].insert((
                        route.meta.namespace.clone(),
                        names::route_object(l7.kind(), &route.meta.name),
                    ));
                    // Attached (and counted) to an accepted listener whose references did not
                    // resolve, but nothing is served through it.
                    if !served.get(att.listener).copied().unwrap_or(false) {
                        continue;
                    }
                    let port = gw.listeners[att.listener].port;
                    let scheme_port = match gw.listeners[att.listener].protocol {
                        Some(Protocol::Https) => 443,
                        _ => 80,
                    };
                    let hosts = if is_own {
                        own_hosts
                            .entry(gkey.clone())
                            .or_default()
                            .entry(port)
                            .or_default()
                    } else {
                        &mut ports.entry(port).or_default().hosts
                    };
                    let object = ObjectOrder::new(&ck.tenant, &ck.cluster, &route.meta);
                    for host in att.hostnames {
                        let hr = hosts.entry(host).or_default();
                        for (ri, rule_routes) in rules.iter().enumerate() {
                            for (mi, r) in rule_routes.iter().enumerate() {
                                let o = Origin {
                                    object: &object,
                                    rule: ri,
                                    m: mi,
                                };
                                let r = for_listener(r, port, scheme_port);
                                let key = match l7 {
                                    L7Route::Http(_) => Precedence::new(&r, o),
                                    L7Route::Grpc(g, _) => grpc::precedence(g, o),
                                };
                                hr.insert(key, r);
                            }
                        }
                    }
                }
                accepted_or_unsupported(route)
            }
            Err(e) => Condition::new("Accepted", false, e.reason(), e.message()),
        };
        parents.push(RouteParentStatus {
            parent_ref: pref.clone(),
            conditions: vec![accepted, resolved.clone()],
        });
    }
    ObjectStatus {
        key: ObjectKey {
            kind: l7.kind(),
            namespace: route.meta.namespace.clone(),
            name: route.meta.name.clone(),
        },
        observed_generation: route.meta.generation,
        conditions: Vec::new(),
        addresses: Vec::new(),
        listeners: Vec::new(),
        parents,
        load_balancer: Vec::new(),
        attached_listener_sets: 0,
    }
}

/// Which HTTP and HTTPS listeners of a Gateway HTTPRoutes and GRPCRoutes attach to, and which
/// of those serve them. Routes attach to (and are counted in `attachedRoutes` of) every
/// accepted listener, also one whose certificateRefs did not resolve (upstream
/// `GatewayWithAttachedRoutes`: "AttachedRoutes set even when Gateway has unresolved refs");
/// only valid listeners serve them.
fn l7_listeners(
    problems: Option<&Vec<Option<ListenerProblem>>>,
    gw: Option<&model::Gateway>,
) -> (Vec<bool>, Vec<bool>) {
    match (problems, gw) {
        (Some(ps), Some(g)) => ps
            .iter()
            .zip(&g.listeners)
            .map(|(p, l)| {
                let http = matches!(l.protocol, Some(Protocol::Http | Protocol::Https));
                let attachable = match p {
                    None => true,
                    // A listener left with no route kind takes no route at all.
                    Some(ListenerProblem::Unresolved(reason, _)) => reason != "InvalidRouteKinds",
                    Some(_) => false,
                };
                (http && attachable, http && p.is_none())
            })
            .unzip(),
        _ => (Vec::new(), Vec::new()),
    }
}

fn source(ck: &ClusterKey, kind: Kind, namespace: &str, name: &str) -> SourceObject {
    SourceObject {
        cluster: ck.clone(),
        object: ObjectKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
    }
}

/// The virtual host that answers 404 for any hostname no tenant configured, so that such
/// requests never reach a tenant.
fn catch_all(port: u16) -> VirtualHost {
    direct_host(names::catch_all(port), vec!["*".to_string()], 404)
}

/// HTTP 421 Misdirected Request (RFC 9110 15.5.20).
pub const MISDIRECTED_REQUEST: u32 = 421;

/// The virtual host of an HTTPS filter chain (chosen by SNI) that answers 421 for `domains`:
/// hostnames this chain does not serve, so that a client that reused the connection for another
/// host (HTTP/2 connection coalescing) opens a new one (Gateway API: HTTPS listeners detect
/// misdirected requests). It answers directly: nothing of another chain is reached.
fn misdirected(port: u16, domains: Vec<String>) -> VirtualHost {
    direct_host(names::misdirected(port), domains, MISDIRECTED_REQUEST)
}

fn direct_host(name: String, domains: Vec<String>, status: u32) -> VirtualHost {
    VirtualHost {
        name: name.clone(),
        domains,
        rate_limit: None,
        routes: vec![Route {
            name,
            path: PathMatch::Prefix("/".to_string()),
            headers: ThinVec::new(),
            query_params: ThinVec::new(),
            method: None,
            request_headers: HeaderModifier::default(),
            response_headers: HeaderModifier::default(),
            cors: None,
            action: RouteAction::DirectResponse(status),
            source: None,
        }],
    }
}

/// The Accepted condition of a route attached to a parent: True, or False with reason
/// `UnsupportedValue` naming the first filter fleetgate cannot apply (Gateway API: the route is
/// not accepted with it, and requests its rule matches get 500; the other rules are served).
fn accepted_or_unsupported(route: &HttpRoute) -> Condition {
    let unsupported = route.rules.iter().find_map(|r| {
        r.filters.iter().find_map(|f| match f {
            HttpFilter::Unsupported(u) => Some(u),
            _ => None,
        })
    });
    match unsupported {
        Some(u) => Condition::new("Accepted", false, "UnsupportedValue", u.message.clone()),
        None => Condition::new("Accepted", true, "Accepted", "route accepted"),
    }
}

/// The route's ResolvedRefs condition: False with the first backend problem, if any.
fn resolved_refs(route: &HttpRoute) -> Condition {
    let problem = route
        .rules
        .iter()
        .flat_map(|r| {
            r.backends
                .iter()
                .chain(r.filters.iter().filter_map(|f| match f {
                    HttpFilter::RequestMirror(m) => Some(&m.backend),
                    _ => None,
                }))
        })
        .find_map(|b| b.problem.as_ref().map(|p| (b, p)));
    match problem {
        Some((b, p)) => Condition::new(
            "ResolvedRefs",
            false,
            &p.reason,
            format!("backendRef {}/{}: {}", b.namespace, b.name, p.message),
        ),
        None => Condition::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references resolved",
        ),
    }
}

/// A route as placed on one listener (`scheme_port`: the default port of the listener's
/// scheme). Gateway API redirect ports: a redirect without scheme and port goes to the
/// listener's port; one with a scheme but no port to that scheme's default port; and a port that
/// is the default of the redirect's scheme is not written into Location.
fn for_listener(r: &Route, port: u16, scheme_port: u16) -> Route {
    let mut r = r.clone();
    if let RouteAction::Redirect(rd) = &mut r.action {
        let default_port = match rd.scheme.as_deref() {
            Some("https") => 443,
            Some(_) => 80,
            None => scheme_port,
        };
        if rd.scheme.is_none() && rd.port.is_none() {
            rd.port = Some(port);
        }
        if rd.port == Some(default_port) {
            rd.port = None;
        }
    }
    r
}

/// The data-plane routes of every rule of an attached route (outer: rule, inner: match), and
/// the clusters they use, added to `clusters`.
fn build_rules(
    ai: &ai::Context<'_>,
    kind: Kind,
    route: &HttpRoute,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> Vec<Vec<Route>> {
    let ck = ai.cluster;
    let src = source(ck, kind, &route.meta.namespace, &route.meta.name);
    let shared_src = Arc::new(src.clone());
    let object = names::route_object(kind, &route.meta.name);
    route
        .rules
        .iter()
        .enumerate()
        .map(|(ri, rule)| {
            let action = rule_action(ai, &object, route, ri, rule, &shared_src, clusters);
            let (request_headers, response_headers) = header_modifiers(rule);
            let cors = rule.filters.iter().find_map(|f| match f {
                HttpFilter::Cors(c) => Some(Box::new(c.clone())),
                _ => None,
            });
            rule.matches
                .iter()
                .enumerate()
                .map(|(mi, m)| {
                    let path = precedence::normalize(&m.path);
                    Route {
                        name: names::route(ck, &route.meta.namespace, &object, ri, mi),
                        action: action_for_match(&action, rule, &path),
                        path,
                        headers: m.headers.clone(),
                        query_params: m.query_params.clone(),
                        method: m.method.clone(),
                        request_headers: request_headers.clone(),
                        response_headers: response_headers.clone(),
                        cors: cors.clone(),
                        source: Some(shared_src.clone()),
                    }
                })
                .collect()
        })
        .collect()
}

/// The RequestHeaderModifier and ResponseHeaderModifier filters of a rule.
fn header_modifiers(rule: &HttpRouteRule) -> (HeaderModifier, HeaderModifier) {
    let (mut req, mut resp) = (HeaderModifier::default(), HeaderModifier::default());
    for f in &rule.filters {
        let out = match f {
            HttpFilter::RequestHeaderModifier(m) => (&mut req, m),
            HttpFilter::ResponseHeaderModifier(m) => (&mut resp, m),
            _ => continue,
        };
        out.0.set.extend(out.1.set.iter().cloned());
        out.0.add.extend(out.1.add.iter().cloned());
        out.0.remove.extend(out.1.remove.iter().cloned());
    }
    ai::strip_reserved(&mut req);
    (req, resp)
}

/// The rule's action specialised for one of its matches: a ReplacePrefixMatch replaces that
/// match's prefix.
fn action_for_match(action: &RouteAction, rule: &HttpRouteRule, path: &PathMatch) -> RouteAction {
    let mut action = action.clone();
    match &mut action {
        RouteAction::Forward(fw) => {
            fw.rewrite = rule.filters.iter().find_map(|f| match f {
                HttpFilter::UrlRewrite(rw) => Some(Box::new(Rewrite {
                    hostname: rw.hostname.clone(),
                    path: rw.path.as_ref().map(|m| PathRewrite::new(m, path)),
                })),
                _ => None,
            });
        }
        RouteAction::Redirect(rd) => {
            rd.path = rule.filters.iter().find_map(|f| match f {
                HttpFilter::RequestRedirect(r) => {
                    r.path.as_ref().map(|m| PathRewrite::new(m, path))
                }
                _ => None,
            });
        }
        RouteAction::DirectResponse(_) => {}
    }
    action
}

/// The upstream cluster of a Service backendRef (or mirror) `b` of `src`, added to `clusters`
/// or shared with the backendRefs of the cluster's other routes and rules that name the same
/// Service port with the same upstream protocol and endpoints (`names::service_cluster`);
/// returns its name. Weights and backendRef filters stay on the route's weighted clusters, so
/// sharing changes nothing a request sees. Endpoints that differ from those another backendRef
/// of the Service port carries (a route whose last accepted version is older) get a cluster of
/// their own, so that no route is served with another route's endpoints.
fn upstream(
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
    ck: &ClusterKey,
    b: &model::Backend,
    src: &Arc<SourceObject>,
) -> String {
    let protocol = match b.app_protocol {
        AppProtocol::H2c => AppProtocol::H2c,
        _ => AppProtocol::Http1,
    };
    for variant in 1.. {
        let name = names::service_cluster(ck, &b.namespace, &b.name, b.port, protocol, variant);
        match clusters.get_mut(&name) {
            None => {
                clusters.insert(
                    name.clone(),
                    ClusterSnapshot {
                        name: name.clone(),
                        endpoints: b.endpoints.to_vec(),
                        protocol,
                        sources: vec![src.clone()],
                    },
                );
                return name;
            }
            Some(c) if same_endpoints(&c.endpoints, &b.endpoints) => {
                if let Err(at) = c.sources.binary_search(src) {
                    c.sources.insert(at, src.clone());
                }
                return name;
            }
            Some(_) => {}
        }
    }
    unreachable!("an unbounded range always yields a name")
}

/// Whether two endpoint lists hold the same endpoints, in any order.
fn same_endpoints(a: &[std::net::SocketAddr], b: &[std::net::SocketAddr]) -> bool {
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// What a rule does with a matched request (Gateway API): a filter fleetgate cannot apply
/// answers 500 (a filter is never skipped); a RequestRedirect answers with a redirect; otherwise requests are spread over its backends by weight; the share of backends
/// that did not resolve gets 500 (through the deliberately absent
/// [`names::INVALID_BACKEND_CLUSTER`]); 500 outright when no backend with weight > 0 resolved.
/// Mirrors whose backend did not resolve are left out.
fn rule_action(
    ai: &ai::Context<'_>,
    object: &str,
    route: &HttpRoute,
    ri: usize,
    rule: &HttpRouteRule,
    src: &Arc<SourceObject>,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> RouteAction {
    if rule
        .filters
        .iter()
        .any(|f| matches!(f, HttpFilter::Unsupported(_)))
    {
        return RouteAction::DirectResponse(500);
    }
    if let Some(r) = rule.filters.iter().find_map(|f| match f {
        HttpFilter::RequestRedirect(r) => Some(r),
        _ => None,
    }) {
        return RouteAction::Redirect(Box::new(Redirect {
            scheme: r.scheme.clone(),
            hostname: r.hostname.clone(),
            path: None,
            port: r.port,
            status_code: r.status_code,
        }));
    }
    let ck = ai.cluster;
    let mut weighted = Vec::new();
    let mut invalid_weight: u32 = 0;
    let mut to_ai_gateway = false;
    for (bi, b) in rule.backends.iter().enumerate() {
        if b.weight == 0 {
            continue;
        }
        if b.problem.is_some() {
            invalid_weight = invalid_weight.saturating_add(b.weight);
            continue;
        }
        // The endpoint-less cluster of an AI backend or A2A Service without ready endpoints.
        let name = names::backend_cluster(ck, &route.meta.namespace, object, ri, bi);
        if b.kind == model::BackendKind::AiBackend {
            // `ai::resolve_route` gave every backendRef that does not resolve its problem.
            let Ok(target) = ai::lookup(ai, b) else {
                invalid_weight = invalid_weight.saturating_add(b.weight);
                continue;
            };
            to_ai_gateway = true;
            match ai::forward(ai, b, target, name, src) {
                ai::Forward::Gateway(wc) => {
                    clusters.insert(wc.cluster.clone(), ai::gateway_cluster(ai.gateways));
                    weighted.push(wc);
                }
                ai::Forward::NoEndpoints(c) => {
                    weighted.push(WeightedCluster::new(c.name.clone(), b.weight));
                    clusters.insert(c.name.clone(), c);
                }
            }
            continue;
        }
        if a2a_services::is_a2a_service(b) {
            match a2a_services::forward(ck, !ai.gateways.is_empty(), b, name, src) {
                Some(ai::Forward::Gateway(wc)) => {
                    to_ai_gateway = true;
                    clusters.insert(wc.cluster.clone(), ai::gateway_cluster(ai.gateways));
                    weighted.push(wc);
                }
                Some(ai::Forward::NoEndpoints(c)) => {
                    weighted.push(WeightedCluster::new(c.name.clone(), b.weight));
                    clusters.insert(c.name.clone(), c);
                }
                None => invalid_weight = invalid_weight.saturating_add(b.weight),
            }
            continue;
        }
        let name = upstream(clusters, ck, b, src);
        let mut request_headers = b.request_headers.clone();
        ai::strip_reserved(&mut request_headers);
        weighted.push(WeightedCluster {
            cluster: name,
            weight: b.weight,
            request_headers,
            response_headers: b.response_headers.clone(),
        });
    }
    if weighted.is_empty() {
        return RouteAction::DirectResponse(500);
    }
    if invalid_weight > 0 {
        weighted.push(WeightedCluster::new(
            names::INVALID_BACKEND_CLUSTER,
            invalid_weight,
        ));
    }
    let mut mirrors = ThinVec::new();
    for f in &rule.filters {
        if let HttpFilter::RequestMirror(m) = f
            && m.backend.problem.is_none()
        {
            let name = upstream(clusters, ck, &m.backend, src);
            mirrors.push(MirrorTarget {
                cluster: name,
                numerator: m.numerator,
                denominator: m.denominator,
            });
        }
    }
    let t = rule.timeouts;
    let (timeout, backend_timeout) = match (t.request, t.backend_request) {
        (Some(r), b) => (Some(r), b),
        (None, Some(b)) => (Some(b), None),
        // The data plane's default timeout would cut LLM answers that stream for long: a rule
        // that reaches the AI gateway has none unless it sets its own.
        (None, None) if to_ai_gateway => (Some(std::time::Duration::ZERO), None),
        (None, None) => (None, None),
    };
    RouteAction::Forward(Forward {
        clusters: weighted,
        rewrite: None,
        mirrors,
        timeout,
        backend_timeout,
    })
}
