//! The compiler: all accepted intent -> one immutable data-plane snapshot + every object's status.
//!
//! Step 7 of the hub's data path, between `store` (accepted intent) and `xds` (publish). Pure:
//! no I/O, no tonic, no tokio. This is where Gateway API semantics live: listener validation
//! (`listener`), route attachment (`attach`, `hostname`), rule precedence (`precedence`) and
//! resource naming (`names`). The output model is in `snapshot`.

mod attach;
mod hostname;
pub mod l4;
mod listener;
pub mod names;
mod precedence;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use snapshot::{
    ClusterSnapshot, L4ListenerSnapshot, ListenerSnapshot, PathMatch, Route, RouteAction, Snapshot,
    SourceObject, VirtualHost, WeightedCluster,
};

use crate::config::DataPlane;
use crate::model::{
    ClusterKey, Condition, FleetIntent, HeaderModifier, HttpFilter, HttpRoute, HttpRouteRule, Kind,
    ObjectKey, ObjectStatus, RouteParentStatus,
};
use listener::ListenerProblem;
use precedence::{Origin, Precedence};

/// The compiler's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub snapshot: Snapshot,
    /// Exactly one status per object of the intent, per cluster, gateways first, each in key
    /// order.
    pub statuses: BTreeMap<ClusterKey, Vec<ObjectStatus>>,
}

/// A namespace and name: the key of an object inside one cluster's intent.
type NsName = (String, String);

/// Routes of one hostname on one data-plane port, in precedence order.
type HostRoutes = BTreeMap<Precedence, Route>;

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
    l4_config: &crate::config::L4Config,
    allocations: &crate::allocate::Allocations,
    failures: &BTreeMap<crate::allocate::PortKey, crate::allocate::AllocError>,
) -> Compiled {
    let mut out = compile(intent, dp);
    let l4 = l4::compile(intent, allocations, failures, l4_config);
    let gw = l4::compile_gateways(intent, allocations, failures, l4_config);
    out.snapshot.l4_listeners = l4.listeners;
    out.snapshot.l4_listeners.extend(gw.listeners);
    out.snapshot
        .l4_listeners
        .sort_by(|a, b| a.name.cmp(&b.name));
    out.snapshot.clusters.extend(l4.clusters);
    out.snapshot.clusters.extend(gw.clusters);
    out.snapshot.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    for ((ck, (ns, name)), (listeners, addresses)) in &gw.gateways {
        if let Some(status) = out.statuses.get_mut(ck).and_then(|l| {
            l.iter_mut().find(|s| {
                s.key.kind == Kind::Gateway && s.key.namespace == *ns && s.key.name == *name
            })
        }) {
            l4::merge_gateway_status(status, listeners, addresses);
        }
    }
    for (ck, list) in gw.routes.into_iter().chain(l4.statuses) {
        out.statuses.entry(ck).or_default().extend(list);
    }
    out
}

/// Compile all accepted intent against the data plane's published ports.
pub fn compile(intent: &FleetIntent, dp: &DataPlane) -> Compiled {
    let mut ports: BTreeMap<u16, PortBuild> = BTreeMap::new();
    let mut clusters: BTreeMap<String, ClusterSnapshot> = BTreeMap::new();
    let mut statuses = BTreeMap::new();

    for (ck, ci) in intent {
        // Listener checks for every Gateway of the cluster.
        let mut problems: BTreeMap<&(String, String), Vec<Option<ListenerProblem>>> =
            BTreeMap::new();
        for (k, gw) in &ci.gateways {
            let checks: Vec<Option<ListenerProblem>> = gw
                .listeners
                .iter()
                .map(|l| listener::check(l, dp).err())
                .collect();
            let src = source(ck, Kind::Gateway, &gw.meta.namespace, &gw.meta.name);
            for (l, p) in gw.listeners.iter().zip(&checks) {
                if p.is_none() {
                    ports
                        .entry(l.port)
                        .or_default()
                        .gateways
                        .insert(src.clone());
                }
            }
            problems.insert(k, checks);
        }

        // Routes: attach, merge into virtual hosts, count attachments per listener.
        let mut attached: BTreeMap<NsName, Vec<BTreeSet<NsName>>> = BTreeMap::new();
        let mut route_statuses = Vec::new();
        for route in ci.http_routes.values() {
            let resolved = resolved_refs(route);
            let mut built: Option<Vec<Vec<Route>>> = None;
            let mut parents = Vec::new();
            for pref in &route.parent_refs {
                let gkey = (pref.namespace.clone(), pref.name.clone());
                let gw = ci.gateways.get(&gkey);
                let valid: Vec<bool> = problems
                    .get(&gkey)
                    .map(|ps| ps.iter().map(Option::is_none).collect())
                    .unwrap_or_default();
                let accepted =
                    match attach::attach(&route.meta.namespace, &route.hostnames, pref, gw, &valid)
                    {
                        Ok(atts) => {
                            let gw = gw.expect("attach succeeds only with a gateway");
                            let rules =
                                built.get_or_insert_with(|| build_rules(ck, route, &mut clusters));
                            for att in atts {
                                let counts = attached
                                    .entry(gkey.clone())
                                    .or_insert_with(|| vec![BTreeSet::new(); gw.listeners.len()]);
                                counts[att.listener].insert((
                                    route.meta.namespace.clone(),
                                    route.meta.name.clone(),
                                ));
                                let port = gw.listeners[att.listener].port;
                                let pb = ports.entry(port).or_default();
                                for host in att.hostnames {
                                    let hr = pb.hosts.entry(host).or_default();
                                    for (ri, rule_routes) in rules.iter().enumerate() {
                                        for (mi, r) in rule_routes.iter().enumerate() {
                                            let o = Origin {
                                                tenant: &ck.tenant,
                                                cluster: &ck.cluster,
                                                meta: &route.meta,
                                                rule: ri,
                                                m: mi,
                                            };
                                            hr.insert(
                                                Precedence::new(&r.path, r.headers.len(), o),
                                                r.clone(),
                                            );
                                        }
                                    }
                                }
                            }
                            Condition::new("Accepted", true, "Accepted", "route accepted")
                        }
                        Err(e) => Condition::new("Accepted", false, e.reason(), e.message()),
                    };
                parents.push(RouteParentStatus {
                    parent_ref: pref.clone(),
                    conditions: vec![accepted, resolved.clone()],
                });
            }
            route_statuses.push(ObjectStatus {
                key: ObjectKey {
                    kind: Kind::HttpRoute,
                    namespace: route.meta.namespace.clone(),
                    name: route.meta.name.clone(),
                },
                observed_generation: route.meta.generation,
                conditions: Vec::new(),
                addresses: Vec::new(),
                listeners: Vec::new(),
                parents,
                load_balancer: Vec::new(),
            });
        }

        let mut out = Vec::new();
        for (k, gw) in &ci.gateways {
            let counts: Vec<u32> = match attached.get(k) {
                Some(sets) => sets.iter().map(|s| s.len() as u32).collect(),
                None => vec![0; gw.listeners.len()],
            };
            let key = ObjectKey {
                kind: Kind::Gateway,
                namespace: gw.meta.namespace.clone(),
                name: gw.meta.name.clone(),
            };
            out.push(listener::gateway_status(gw, &problems[k], &counts, dp, key));
        }
        out.extend(route_statuses);
        statuses.insert(ck.clone(), out);
    }

    let mut dp_listeners: Vec<_> = dp.listeners.iter().collect();
    dp_listeners.sort_by_key(|l| l.port);
    let listeners = dp_listeners
        .into_iter()
        .map(|dl| {
            let pb = ports.remove(&dl.port).unwrap_or_default();
            let mut virtual_hosts: Vec<VirtualHost> = pb
                .hosts
                .into_iter()
                .map(|(host, routes)| VirtualHost {
                    name: names::virtual_host(dl.port, &host),
                    domains: vec![host],
                    routes: routes.into_values().collect(),
                })
                .collect();
            virtual_hosts.push(catch_all(dl.port));
            ListenerSnapshot {
                name: names::listener(dl.port),
                port: dl.port,
                bind: dl.bind,
                virtual_hosts,
                gateways: pb.gateways,
            }
        })
        .collect();

    Compiled {
        snapshot: Snapshot {
            listeners,
            clusters: clusters.into_values().collect(),
            l4_listeners: Vec::new(),
        },
        statuses,
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
    VirtualHost {
        name: names::catch_all(port),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: names::catch_all(port),
            path: PathMatch::Prefix("/".to_string()),
            headers: Vec::new(),
            request_headers: HeaderModifier::default(),
            action: RouteAction::DirectResponse(404),
            source: None,
        }],
    }
}

/// The route's ResolvedRefs condition: False with the first backend problem, if any.
fn resolved_refs(route: &HttpRoute) -> Condition {
    let problem = route
        .rules
        .iter()
        .flat_map(|r| &r.backends)
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

/// The data-plane routes of every rule of an attached route (outer: rule, inner: match), and
/// the clusters they use, added to `clusters`.
fn build_rules(
    ck: &ClusterKey,
    route: &HttpRoute,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> Vec<Vec<Route>> {
    let src = source(ck, Kind::HttpRoute, &route.meta.namespace, &route.meta.name);
    route
        .rules
        .iter()
        .enumerate()
        .map(|(ri, rule)| {
            let action = rule_action(ck, route, ri, rule, &src, clusters);
            let request_headers = header_modifier(rule);
            rule.matches
                .iter()
                .enumerate()
                .map(|(mi, m)| Route {
                    name: names::route(ck, &route.meta.namespace, &route.meta.name, ri, mi),
                    path: precedence::normalize(&m.path),
                    headers: m.headers.clone(),
                    request_headers: request_headers.clone(),
                    action: action.clone(),
                    source: Some(src.clone()),
                })
                .collect()
        })
        .collect()
}

/// All RequestHeaderModifier filters of a rule, merged.
fn header_modifier(rule: &HttpRouteRule) -> HeaderModifier {
    let mut out = HeaderModifier::default();
    for f in &rule.filters {
        match f {
            HttpFilter::RequestHeaderModifier(m) => {
                out.set.extend(m.set.iter().cloned());
                out.add.extend(m.add.iter().cloned());
                out.remove.extend(m.remove.iter().cloned());
            }
        }
    }
    out
}

/// What a rule does with a matched request (Gateway API): spread over its backends by weight;
/// the share of backends that did not resolve gets 500 (through the deliberately absent
/// [`names::INVALID_BACKEND_CLUSTER`]); 500 outright when no backend with weight > 0 resolved.
fn rule_action(
    ck: &ClusterKey,
    route: &HttpRoute,
    ri: usize,
    rule: &HttpRouteRule,
    src: &SourceObject,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> RouteAction {
    let mut weighted = Vec::new();
    let mut invalid_weight: u32 = 0;
    for (bi, b) in rule.backends.iter().enumerate() {
        if b.weight == 0 {
            continue;
        }
        if b.problem.is_some() {
            invalid_weight = invalid_weight.saturating_add(b.weight);
            continue;
        }
        let name = names::backend_cluster(ck, &route.meta.namespace, &route.meta.name, ri, bi);
        clusters.insert(
            name.clone(),
            ClusterSnapshot {
                name: name.clone(),
                endpoints: b.endpoints.clone(),
                source: Some(src.clone()),
            },
        );
        weighted.push(WeightedCluster {
            cluster: name,
            weight: b.weight,
        });
    }
    if weighted.is_empty() {
        return RouteAction::DirectResponse(500);
    }
    if invalid_weight > 0 {
        weighted.push(WeightedCluster {
            cluster: names::INVALID_BACKEND_CLUSTER.to_string(),
            weight: invalid_weight,
        });
    }
    RouteAction::Forward(weighted)
}
