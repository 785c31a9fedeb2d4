//! L4 compile (pure): LoadBalancer Services + their allocations -> one data-plane listener per
//! allocated (address, port) forwarding to a cluster of the Service port's endpoints, and each
//! Service's status (`status.loadBalancer.ingress` and conditions).
//!
//! Step 7 (compile) of the hub's data path, next to the HTTP compiler in `super`; the
//! allocations come from `fleetgate_hub_model::allocate` through the runtime's `fleet`. No I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::allocate::{AllocError, Allocations, Owner, PortKey, ServiceKey};
use crate::model::data_plane::L4Config;
use crate::model::{
    AllowedRoutes, AppProtocol, ClusterKey, Condition, FleetIntent, Kind, L4Protocol, L4Route,
    ListenerStatus, LoadBalancerIngress, LoadBalancerPort, LoadBalancerService, ObjectKey,
    ObjectStatus, Protocol, RouteParentStatus,
};

use super::names;
use super::snapshot::{ClusterSnapshot, L4ListenerSnapshot, L4Upstream, SourceObject};

/// What the L4 compiler produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L4Compiled {
    /// Ordered by name.
    pub listeners: Vec<L4ListenerSnapshot>,
    /// Ordered by name.
    pub clusters: Vec<ClusterSnapshot>,
    /// One status per Service, per cluster, in key order.
    pub statuses: BTreeMap<ClusterKey, Vec<ObjectStatus>>,
}

/// Every Service port, Gateway TCP/UDP listener port and HTTP/HTTPS listener port of a Gateway
/// served on its own address (`compile::own_address`) the fleet's intent wants an allocation
/// for.
pub fn wanted_ports(fleet: &FleetIntent) -> BTreeSet<PortKey> {
    // HTTP/HTTPS listener ports of Gateways served on their own address.
    let mut out = super::own_address::wanted_ports(fleet);
    for (ck, ci) in fleet {
        for ((ns, name), gw) in &ci.gateways {
            for l in &gw.listeners {
                let protocol = match l.protocol {
                    Some(Protocol::Tcp) => L4Protocol::Tcp,
                    Some(Protocol::Udp) => L4Protocol::Udp,
                    _ => continue,
                };
                out.insert(PortKey {
                    service: ServiceKey {
                        owner: Owner::Gateway,
                        cluster: ck.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    port: l.port,
                    protocol,
                });
            }
        }
        for ((ns, name), svc) in &ci.services {
            for p in &svc.ports {
                out.insert(PortKey {
                    service: ServiceKey {
                        owner: Owner::Service,
                        cluster: ck.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    port: p.port,
                    protocol: p.protocol,
                });
            }
        }
    }
    out
}

/// Compiles every LoadBalancer Service of the fleet.
pub fn compile(
    intent: &FleetIntent,
    allocations: &Allocations,
    failures: &BTreeMap<PortKey, AllocError>,
    l4: &L4Config,
) -> L4Compiled {
    let mut out = L4Compiled::default();
    for (ck, ci) in intent {
        let mut statuses = Vec::new();
        for ((ns, name), svc) in &ci.services {
            let skey = ServiceKey {
                owner: Owner::Service,
                cluster: ck.clone(),
                namespace: ns.clone(),
                name: name.clone(),
            };
            let src = SourceObject {
                cluster: ck.clone(),
                object: ObjectKey {
                    kind: Kind::Service,
                    namespace: ns.clone(),
                    name: name.clone(),
                },
            };
            let mut got: Vec<(&crate::model::ServicePort, SocketAddr)> = Vec::new();
            let mut missing: Vec<(&crate::model::ServicePort, AllocError)> = Vec::new();
            for p in &svc.ports {
                let pk = PortKey {
                    service: skey.clone(),
                    port: p.port,
                    protocol: p.protocol,
                };
                match allocations.get(&pk) {
                    Some(addr) => got.push((p, *addr)),
                    None => missing.push((
                        p,
                        failures
                            .get(&pk)
                            .copied()
                            .unwrap_or(AllocError::PoolExhausted),
                    )),
                }
            }
            for (p, addr) in &got {
                let cluster = names::service_port_cluster(ck, ns, name, p.port, p.protocol);
                let bind = SocketAddr::new(l4.bind_ip(addr.ip()), addr.port());
                out.clusters.push(ClusterSnapshot {
                    // L4 clusters carry TCP/UDP: the HTTP application protocol does not apply.
                    protocol: AppProtocol::default(),
                    name: cluster.clone(),
                    endpoints: p.endpoints.clone(),
                    sources: vec![Arc::new(src.clone())],
                });
                out.listeners.push(L4ListenerSnapshot {
                    name: names::l4_listener(p.protocol, bind),
                    protocol: p.protocol,
                    bind,
                    upstreams: vec![L4Upstream { cluster, weight: 1 }],
                    source: src.clone(),
                    max_connections: None,
                });
            }
            statuses.push(service_status(svc, &got, &missing));
        }
        if !statuses.is_empty() {
            out.statuses.insert(ck.clone(), statuses);
        }
    }
    out.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    out.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A Gateway of one cluster: (cluster, (namespace, name)).
pub type GatewayRef = (ClusterKey, (String, String));

/// The statuses of a Gateway's TCP/UDP listeners (by listener index) and their addresses.
pub type GatewayListeners = (Vec<(usize, ListenerStatus)>, Vec<String>);

/// A Gateway TCP/UDP listener's allocation key and address, by (Gateway, listener index).
type ListenerAllocations<'a> =
    BTreeMap<(&'a (String, String), usize), (PortKey, Option<SocketAddr>)>;

/// What Gateway TCP/UDP listeners and their TCPRoutes/UDPRoutes compile to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayL4 {
    pub listeners: Vec<L4ListenerSnapshot>,
    pub clusters: Vec<ClusterSnapshot>,
    /// Per cluster and Gateway (namespace, name): the status of each TCP/UDP listener (by its
    /// index in the Gateway) and the addresses they are served on.
    pub gateways: BTreeMap<GatewayRef, GatewayListeners>,
    /// TCPRoute/UDPRoute statuses, per cluster, in key order.
    pub routes: BTreeMap<ClusterKey, Vec<ObjectStatus>>,
}

fn l4_protocol(p: Option<Protocol>) -> Option<L4Protocol> {
    match p {
        Some(Protocol::Tcp) => Some(L4Protocol::Tcp),
        Some(Protocol::Udp) => Some(L4Protocol::Udp),
        _ => None,
    }
}

fn allows(allowed: &AllowedRoutes, gateway_ns: &str, route_ns: &str) -> bool {
    match allowed {
        AllowedRoutes::Same => gateway_ns == route_ns,
        AllowedRoutes::All => true,
        AllowedRoutes::Namespaces(set) => set.contains(route_ns),
    }
}

/// Gateway listeners of protocol TCP/UDP and the TCPRoutes/UDPRoutes attached to them. A
/// listener is served on the (address, its own port) allocated to its Gateway; one route per
/// listener: when several attach, the oldest (creationTimestamp, then namespace/name) wins and
/// the others are Accepted=False. Where connections go is [`route_upstreams`]' rule.
pub fn compile_gateways(
    intent: &FleetIntent,
    allocations: &Allocations,
    failures: &BTreeMap<PortKey, AllocError>,
    l4: &L4Config,
) -> GatewayL4 {
    let mut out = GatewayL4::default();
    for (ck, ci) in intent {
        // Listener checks: allocation per (Gateway, port, protocol).
        let mut listener_key: ListenerAllocations = BTreeMap::new();
        for (gk, gw) in &ci.gateways {
            for (i, l) in gw.listeners.iter().enumerate() {
                let Some(protocol) = l4_protocol(l.protocol) else {
                    continue;
                };
                let pk = PortKey {
                    service: ServiceKey {
                        owner: Owner::Gateway,
                        cluster: ck.clone(),
                        namespace: gk.0.clone(),
                        name: gk.1.clone(),
                    },
                    port: l.port,
                    protocol,
                };
                let addr = allocations.get(&pk).copied();
                listener_key.insert((gk, i), (pk, addr));
            }
        }
        // Routes in precedence order (oldest first).
        let mut routes: Vec<(&ObjectKey, &L4Route)> = ci.l4_routes.iter().collect();
        routes.sort_by(|a, b| {
            (
                &a.1.meta.creation_timestamp,
                &a.0.namespace,
                &a.0.name,
                a.0.kind,
            )
                .cmp(&(
                    &b.1.meta.creation_timestamp,
                    &b.0.namespace,
                    &b.0.name,
                    b.0.kind,
                ))
        });
        let mut taken: BTreeMap<PortKey, &ObjectKey> = BTreeMap::new();
        let mut attached: BTreeMap<(&(String, String), usize), u32> = BTreeMap::new();
        let mut statuses = Vec::new();
        for (rk, route) in routes {
            let src = SourceObject {
                cluster: ck.clone(),
                object: rk.clone(),
            };
            let kind_name = match route.protocol {
                L4Protocol::Tcp => "TCPRoute",
                L4Protocol::Udp => "UDPRoute",
            };
            let upstreams = route_upstreams(ck, rk, route);
            let mut used_cluster = false;
            let mut parents = Vec::new();
            for pref in &route.parent_refs {
                let gk = (pref.namespace.clone(), pref.name.clone());
                // TCP and UDP listeners are not served in ListenerSets: only Gateways are
                // parents here.
                let parent = (pref.kind == crate::model::ParentKind::Gateway)
                    .then(|| ci.gateways.get_key_value(&gk))
                    .flatten();
                let accepted = match parent {
                    None => Condition::new(
                        "Accepted",
                        false,
                        "NoMatchingParent",
                        format!(
                            "{} {}/{} not found in this cluster (TCPRoutes and UDPRoutes attach to Gateways only)",
                            pref.kind.as_str(),
                            pref.namespace,
                            pref.name
                        ),
                    ),
                    Some((gk, gw)) => {
                        let matching: Vec<usize> = gw
                            .listeners
                            .iter()
                            .enumerate()
                            .filter(|(_, l)| {
                                pref.section_name.as_ref().is_none_or(|s| *s == l.name)
                                    && pref.port.is_none_or(|p| p == l.port)
                            })
                            .map(|(i, _)| i)
                            .collect();
                        let of_kind: Vec<usize> = matching
                            .iter()
                            .copied()
                            .filter(|i| {
                                l4_protocol(gw.listeners[*i].protocol) == Some(route.protocol)
                            })
                            .collect();
                        let allowed: Vec<usize> = of_kind
                            .iter()
                            .copied()
                            .filter(|i| {
                                allows(&gw.listeners[*i].allowed_routes, &gk.0, &rk.namespace)
                            })
                            .collect();
                        let mut ok = 0;
                        let mut busy = None;
                        for i in &allowed {
                            let Some((pk, addr)) = listener_key.get(&(gk, *i)) else {
                                continue;
                            };
                            let Some(addr) = addr else {
                                continue;
                            };
                            match taken.get(pk) {
                                Some(other) if *other != rk => {
                                    busy = Some((*other).clone());
                                    continue;
                                }
                                Some(_) => {}
                                None => {
                                    taken.insert(pk.clone(), rk);
                                    let bind = SocketAddr::new(l4.bind_ip(addr.ip()), addr.port());
                                    out.listeners.push(L4ListenerSnapshot {
                                        name: names::l4_listener(route.protocol, bind),
                                        protocol: route.protocol,
                                        bind,
                                        upstreams: upstreams
                                            .iter()
                                            .map(|(u, _)| u.clone())
                                            .collect(),
                                        source: src.clone(),
                                        max_connections: None,
                                    });
                                    used_cluster = true;
                                }
                            }
                            *attached.entry((gk, *i)).or_default() += 1;
                            ok += 1;
                        }
                        if ok > 0 {
                            Condition::new("Accepted", true, "Accepted", "route accepted")
                        } else if matching.is_empty() {
                            Condition::new(
                                "Accepted",
                                false,
                                "NoMatchingParent",
                                "no listener of the Gateway matches the parentRef's sectionName and port",
                            )
                        } else if allowed.is_empty() {
                            Condition::new(
                                "Accepted",
                                false,
                                "NotAllowedByListeners",
                                format!(
                                    "no matching listener has protocol {} and allows {kind_name}s from namespace {}",
                                    route.protocol.as_str(),
                                    rk.namespace
                                ),
                            )
                        } else if let Some(other) = busy {
                            Condition::new(
                                "Accepted",
                                false,
                                "NotAllowedByListeners",
                                format!(
                                    "the listener already serves {}/{}, which is older; fleetgate serves one {kind_name} per listener",
                                    other.namespace, other.name
                                ),
                            )
                        } else {
                            Condition::new(
                                "Accepted",
                                false,
                                "NoMatchingParent",
                                "the matching listener is not programmed (no address and port); see the Gateway's listener status",
                            )
                        }
                    }
                };
                let resolved = match route
                    .backends
                    .iter()
                    .find_map(|b| b.problem.as_ref().map(|p| (b, p)))
                {
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
                };
                parents.push(RouteParentStatus {
                    parent_ref: pref.clone(),
                    conditions: vec![accepted, resolved],
                });
            }
            if used_cluster {
                for (u, endpoints) in upstreams {
                    out.clusters.push(ClusterSnapshot {
                        protocol: AppProtocol::default(),
                        name: u.cluster,
                        endpoints,
                        sources: vec![Arc::new(src.clone())],
                    });
                }
            }
            statuses.push(ObjectStatus {
                key: rk.clone(),
                observed_generation: route.meta.generation,
                conditions: Vec::new(),
                addresses: Vec::new(),
                listeners: Vec::new(),
                parents,
                load_balancer: Vec::new(),
                attached_listener_sets: 0,
            });
        }
        statuses.sort_by(|a, b| a.key.cmp(&b.key));
        if !statuses.is_empty() {
            out.routes.insert(ck.clone(), statuses);
        }
        // Listener statuses.
        for ((gk, i), (pk, addr)) in &listener_key {
            let entry = out.gateways.entry((ck.clone(), (*gk).clone())).or_default();
            let count = attached.get(&(*gk, *i)).copied().unwrap_or(0);
            let listener = &ci.gateways[*gk].listeners[*i];
            let name = listener.name.clone();
            let supported_kinds = super::kinds::resolve(listener).supported;
            let conditions = match addr {
                Some(a) => {
                    let ip = a.ip().to_string();
                    if !entry.1.contains(&ip) {
                        entry.1.push(ip);
                    }
                    vec![
                        Condition::new("Accepted", true, "Accepted", "listener accepted"),
                        Condition::new(
                            "Programmed",
                            true,
                            "Programmed",
                            format!("served on {a}/{}", pk.protocol.as_str()),
                        ),
                        Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
                        Condition::new("Conflicted", false, "NoConflicts", "no conflicts"),
                    ]
                }
                None => {
                    let e = failures
                        .get(pk)
                        .copied()
                        .unwrap_or(AllocError::PoolExhausted);
                    let msg = format!(
                        "port {}/{} is not available on the hub's address pools (it must be free and inside l4PortRange): {e}",
                        pk.port,
                        pk.protocol.as_str()
                    );
                    vec![
                        Condition::new("Accepted", false, "PortUnavailable", msg.clone()),
                        Condition::new("Programmed", false, "Invalid", msg),
                        Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
                        Condition::new("Conflicted", false, "NoConflicts", "no conflicts"),
                    ]
                }
            };
            entry.0.push((
                *i,
                ListenerStatus {
                    name,
                    attached_routes: count,
                    conditions,
                    supported_kinds,
                },
            ));
        }
    }
    out.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    out.clusters.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Where a TCPRoute's connections (a UDPRoute's datagrams) go: the upstream clusters of the
/// listener it is served on, each with its endpoints.
///
/// - TCPRoute: one cluster per backendRef of non-zero weight (named after the backendRef's
///   index), split by weight. A backendRef the agent could not resolve keeps its share with no
///   endpoints, so that share of connections is refused (Gateway API: "connection rejections
///   must respect weight"). A zero-weight backendRef gets nothing.
/// - UDPRoute: Envoy's `udp_proxy` routes a session to one cluster (its route action has no
///   weighted clusters and its matcher has no random input), so the ready endpoints of every
///   resolved backendRef of non-zero weight form one cluster; weights beyond zero/non-zero are
///   not applied.
///
/// With no usable backendRef at all the route keeps one empty cluster: connections are refused.
pub fn route_upstreams(
    ck: &ClusterKey,
    rk: &ObjectKey,
    route: &L4Route,
) -> Vec<(L4Upstream, Vec<SocketAddr>)> {
    let base = names::l4_route_cluster(ck, &rk.namespace, &rk.name, route.protocol);
    let sorted = |mut v: Vec<SocketAddr>| {
        v.sort();
        v.dedup();
        v
    };
    let weighted = route
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.weight > 0);
    let out: Vec<(L4Upstream, Vec<SocketAddr>)> = match route.protocol {
        L4Protocol::Tcp => weighted
            .map(|(i, b)| {
                let endpoints = match b.problem {
                    None => sorted(b.endpoints.to_vec()),
                    Some(_) => Vec::new(),
                };
                let upstream = L4Upstream {
                    cluster: format!("{base}/{i}"),
                    weight: b.weight,
                };
                (upstream, endpoints)
            })
            .collect(),
        L4Protocol::Udp => {
            let endpoints: Vec<SocketAddr> = weighted
                .filter(|(_, b)| b.problem.is_none())
                .flat_map(|(_, b)| b.endpoints.iter().copied())
                .collect();
            if endpoints.is_empty() {
                Vec::new()
            } else {
                let upstream = L4Upstream {
                    cluster: base.clone(),
                    weight: 1,
                };
                vec![(upstream, sorted(endpoints))]
            }
        }
    };
    if out.is_empty() {
        let upstream = L4Upstream {
            cluster: base,
            weight: 1,
        };
        return vec![(upstream, Vec::new())];
    }
    out
}

/// Merges [`compile_gateways`]' listener statuses into a Gateway's status computed by the HTTP
/// compiler (which reports TCP/UDP listeners as unsupported): the L4 listeners' statuses replace
/// those, their addresses are added, and the Gateway is Accepted/Programmed when any listener is.
pub fn merge_gateway_status(
    status: &mut ObjectStatus,
    listeners: &[(usize, ListenerStatus)],
    addresses: &[String],
) {
    for (i, l) in listeners {
        if let Some(slot) = status.listeners.get_mut(*i) {
            *slot = l.clone();
        }
    }
    let accepted = |l: &ListenerStatus| {
        l.conditions
            .iter()
            .any(|c| c.type_ == "Accepted" && c.status)
    };
    if status.listeners.iter().any(accepted) {
        status.conditions = vec![
            super::listener::accepted_gateway(&status.listeners),
            Condition::new(
                "Programmed",
                true,
                "Programmed",
                "programmed on the shared data plane",
            ),
        ];
        for a in addresses {
            if !status.addresses.contains(a) {
                status.addresses.push(a.clone());
            }
        }
    }
}

fn show(p: &crate::model::ServicePort) -> String {
    format!("{}/{}", p.port, p.protocol.as_str())
}

/// A Service's status: one ingress entry per address with its allocated ports; Programmed says
/// whether every port got an allocation (and why not), ResolvedRefs whether every port has
/// endpoints the agent could resolve.
fn service_status(
    svc: &LoadBalancerService,
    got: &[(&crate::model::ServicePort, SocketAddr)],
    missing: &[(&crate::model::ServicePort, AllocError)],
) -> ObjectStatus {
    let mut by_ip: BTreeMap<String, Vec<LoadBalancerPort>> = BTreeMap::new();
    for (p, addr) in got {
        by_ip
            .entry(addr.ip().to_string())
            .or_default()
            .push(LoadBalancerPort {
                port: addr.port(),
                protocol: p.protocol,
                service_port: p.port,
            });
    }
    let programmed = match missing.first() {
        None => Condition::new(
            "Programmed",
            true,
            "Programmed",
            format!(
                "served on {}",
                got.iter()
                    .map(|(p, a)| format!("{a}/{} (port {})", p.protocol.as_str(), p.port))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Some((_, e)) => Condition::new(
            "Programmed",
            false,
            e.reason(),
            format!(
                "no address for port(s) {}: {e}",
                missing
                    .iter()
                    .map(|(p, _)| show(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };
    let resolved = match svc
        .ports
        .iter()
        .find_map(|p| p.problem.as_ref().map(|x| (p, x)))
    {
        Some((p, problem)) => Condition::new(
            "ResolvedRefs",
            false,
            &problem.reason,
            format!("port {}: {}", show(p), problem.message),
        ),
        None => Condition::new("ResolvedRefs", true, "ResolvedRefs", "all ports resolved"),
    };
    ObjectStatus {
        key: ObjectKey {
            kind: Kind::Service,
            namespace: svc.meta.namespace.clone(),
            name: svc.meta.name.clone(),
        },
        observed_generation: svc.meta.generation,
        conditions: vec![
            Condition::new("Accepted", true, "Accepted", "accepted by the hub"),
            programmed,
            resolved,
        ],
        addresses: Vec::new(),
        listeners: Vec::new(),
        parents: Vec::new(),
        load_balancer: by_ip
            .into_iter()
            .map(|(ip, ports)| LoadBalancerIngress { ip, ports })
            .collect(),
        attached_listener_sets: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::data_plane::{AddressPool, PortRange};
    use crate::model::{BackendProblem, ClusterIntent, Meta, ServicePort, thin_vec};

    fn ck(t: &str) -> ClusterKey {
        ClusterKey {
            tenant: t.into(),
            cluster: "c1".into(),
        }
    }

    fn svc(name: &str, ports: &[(u16, L4Protocol)]) -> LoadBalancerService {
        LoadBalancerService {
            meta: Meta {
                namespace: "default".into(),
                name: name.into(),
                generation: 4,
                creation_timestamp: String::new(),
            },
            ports: ports
                .iter()
                .map(|(port, protocol)| ServicePort {
                    name: String::new(),
                    protocol: *protocol,
                    port: *port,
                    problem: None,
                    endpoints: vec!["127.0.1.10:31000".parse().unwrap()],
                })
                .collect(),
        }
    }

    fn pk(t: &str, name: &str, port: u16, protocol: L4Protocol) -> PortKey {
        PortKey {
            service: ServiceKey {
                owner: Owner::Service,
                cluster: ck(t),
                namespace: "default".into(),
                name: name.into(),
            },
            port,
            protocol,
        }
    }

    fn cfg(bind: Option<&str>) -> L4Config {
        L4Config {
            pools: vec![AddressPool {
                name: "p".into(),
                addresses: vec!["192.0.2.1".parse().unwrap()],
                bind: bind.map(|b| b.parse().unwrap()),
            }],
            port_range: Some(PortRange {
                from: 9000,
                to: 9010,
            }),
        }
    }

    #[test]
    fn one_listener_per_allocation_with_its_cluster() {
        let mut ci = ClusterIntent::default();
        let dns = svc("dns", &[(53, L4Protocol::Tcp), (53, L4Protocol::Udp)]);
        ci.services
            .insert(("default".into(), "dns".into()), dns.clone());
        let intent: FleetIntent = [(ck("a"), ci)]
            .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
            .into();
        let allocs: Allocations = [
            (
                pk("a", "dns", 53, L4Protocol::Tcp),
                "192.0.2.1:9000".parse().unwrap(),
            ),
            (
                pk("a", "dns", 53, L4Protocol::Udp),
                "192.0.2.1:9000".parse().unwrap(),
            ),
        ]
        .into();
        let c = compile(&intent, &allocs, &BTreeMap::new(), &cfg(Some("127.0.0.1")));
        let got: Vec<(String, L4Protocol, String, String)> = c
            .listeners
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.protocol,
                    l.bind.to_string(),
                    l.upstreams[0].cluster.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "l4/tcp/127.0.0.1:9000".into(),
                    L4Protocol::Tcp,
                    "127.0.0.1:9000".into(),
                    "t/a/c/c1/default/dns/svc/53/tcp".into()
                ),
                (
                    "l4/udp/127.0.0.1:9000".into(),
                    L4Protocol::Udp,
                    "127.0.0.1:9000".into(),
                    "t/a/c/c1/default/dns/svc/53/udp".into()
                ),
            ]
        );
        assert_eq!(c.clusters.len(), 2);
        assert_eq!(c.clusters[0].endpoints, dns.ports[0].endpoints);
        let st = &c.statuses[&ck("a")][0];
        assert_eq!(st.observed_generation, 4);
        // The advertised address, not the bind address, goes into status.
        assert_eq!(
            st.load_balancer,
            vec![LoadBalancerIngress {
                ip: "192.0.2.1".into(),
                ports: vec![
                    LoadBalancerPort {
                        port: 9000,
                        protocol: L4Protocol::Tcp,
                        service_port: 53
                    },
                    LoadBalancerPort {
                        port: 9000,
                        protocol: L4Protocol::Udp,
                        service_port: 53
                    },
                ]
            }]
        );
        let programmed = st
            .conditions
            .iter()
            .find(|c| c.type_ == "Programmed")
            .unwrap();
        assert!(programmed.status, "{programmed:?}");
    }

    fn gateway_fleet() -> FleetIntent {
        use crate::model::{Backend, Gateway, Listener, ParentRef};
        let listener = |name: &str, protocol, port| Listener {
            name: name.into(),
            protocol: Some(protocol),
            protocol_name: format!("{protocol:?}").to_uppercase(),
            port,
            hostname: None,
            allowed_routes: AllowedRoutes::Same,
            tls: None,
            allowed_kinds: Vec::new(),
        };
        let meta = |name: &str, ts: &str| Meta {
            namespace: "default".into(),
            name: name.into(),
            generation: 2,
            creation_timestamp: ts.into(),
        };
        let mut ci = ClusterIntent::default();
        ci.gateways.insert(
            ("default".into(), "gw".into()),
            Gateway {
                meta: meta("gw", ""),
                class_name: "fleetgate".into(),
                allowed_listeners: Default::default(),
                listeners: vec![
                    listener("tcp", Protocol::Tcp, 9000),
                    listener("udp", Protocol::Udp, 9001),
                    listener("taken", Protocol::Tcp, 9002),
                ],
            },
        );
        let route = |name: &str, ts: &str, protocol, section: &str| {
            let kind = match protocol {
                L4Protocol::Tcp => Kind::TcpRoute,
                L4Protocol::Udp => Kind::UdpRoute,
            };
            (
                ObjectKey {
                    kind,
                    namespace: "default".into(),
                    name: name.into(),
                },
                L4Route {
                    meta: meta(name, ts),
                    protocol,
                    parent_refs: vec![ParentRef {
                        namespace: "default".into(),
                        name: "gw".into(),
                        section_name: Some(section.into()),
                        port: None,
                        kind: Default::default(),
                    }],
                    backends: vec![Backend {
                        namespace: "default".into(),
                        name: "echo".into(),
                        port: 9000,
                        weight: 1,
                        problem: None,
                        endpoints: thin_vec!["127.0.1.10:31000".parse().unwrap()],
                        app_protocol: Default::default(),
                        request_headers: Default::default(),
                        response_headers: Default::default(),
                        kind: Default::default(),
                    }],
                },
            )
        };
        for (k, r) in [
            route("old", "2026-01-01T00:00:00Z", L4Protocol::Tcp, "tcp"),
            route("new", "2026-02-01T00:00:00Z", L4Protocol::Tcp, "tcp"),
            route("dns", "2026-01-01T00:00:00Z", L4Protocol::Udp, "udp"),
            route("wrong", "2026-01-01T00:00:00Z", L4Protocol::Udp, "tcp"),
            route("none", "2026-01-01T00:00:00Z", L4Protocol::Tcp, "taken"),
        ] {
            ci.l4_routes.insert(k, r);
        }
        [(ck("a"), ci)]
            .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
            .into()
    }

    #[test]
    fn route_upstreams_table() {
        use crate::model::Backend;
        let backend = |name: &str, weight: u32, ok: bool| Backend {
            namespace: "default".into(),
            name: name.into(),
            port: 9000,
            weight,
            problem: (!ok).then(|| {
                Box::new(BackendProblem {
                    reason: "BackendNotFound".into(),
                    message: "no such Service".into(),
                })
            }),
            endpoints: if ok {
                thin_vec![format!("127.0.1.{}:31000", name.len()).parse().unwrap()]
            } else {
                Default::default()
            },
            app_protocol: Default::default(),
            request_headers: Default::default(),
            response_headers: Default::default(),
            kind: Default::default(),
        };
        // (protocol, backends (name, weight, resolved)) -> [(cluster suffix, weight, endpoints)]
        type Case = (
            L4Protocol,
            Vec<(&'static str, u32, bool)>,
            Vec<(&'static str, u32, usize)>,
        );
        let cases: Vec<Case> = vec![
            // One backend: all connections.
            (L4Protocol::Tcp, vec![("a", 1, true)], vec![("/0", 1, 1)]),
            // 80/20: two clusters, split by weight.
            (
                L4Protocol::Tcp,
                vec![("a", 80, true), ("bb", 20, true)],
                vec![("/0", 80, 1), ("/1", 20, 1)],
            ),
            // A zero weight gets nothing, not even a cluster.
            (
                L4Protocol::Tcp,
                vec![("a", 100, true), ("bb", 0, true)],
                vec![("/0", 100, 1)],
            ),
            // An unresolved backendRef keeps its share with no endpoints (refused).
            (
                L4Protocol::Tcp,
                vec![("a", 50, true), ("bb", 50, false)],
                vec![("/0", 50, 1), ("/1", 50, 0)],
            ),
            // Nothing usable: one empty cluster, every connection refused.
            (L4Protocol::Tcp, vec![("a", 0, true)], vec![("", 1, 0)]),
            (L4Protocol::Tcp, vec![], vec![("", 1, 0)]),
            // UDP: one cluster of every resolved, non-zero backend's endpoints.
            (
                L4Protocol::Udp,
                vec![("a", 80, true), ("bb", 20, true), ("ccc", 0, true)],
                vec![("", 1, 2)],
            ),
            (L4Protocol::Udp, vec![("a", 1, false)], vec![("", 1, 0)]),
        ];
        for (protocol, backends, want) in cases {
            let route = L4Route {
                meta: Meta {
                    namespace: "default".into(),
                    name: "r".into(),
                    generation: 1,
                    creation_timestamp: String::new(),
                },
                protocol,
                parent_refs: Vec::new(),
                backends: backends
                    .iter()
                    .map(|(n, w, ok)| backend(n, *w, *ok))
                    .collect(),
            };
            let rk = ObjectKey {
                kind: Kind::TcpRoute,
                namespace: "default".into(),
                name: "r".into(),
            };
            let base = names::l4_route_cluster(&ck("a"), "default", "r", protocol);
            let got: Vec<(String, u32, usize)> = route_upstreams(&ck("a"), &rk, &route)
                .into_iter()
                .map(|(u, e)| (u.cluster, u.weight, e.len()))
                .collect();
            let want: Vec<(String, u32, usize)> = want
                .iter()
                .map(|(s, w, n)| (format!("{base}{s}"), *w, *n))
                .collect();
            assert_eq!(got, want, "{protocol:?} {backends:?}");
        }
    }

    #[test]
    fn gateway_listeners_and_l4_routes() {
        let gw_key = |port, protocol| PortKey {
            service: ServiceKey {
                owner: Owner::Gateway,
                cluster: ck("a"),
                namespace: "default".into(),
                name: "gw".into(),
            },
            port,
            protocol,
        };
        let allocs: Allocations = [
            (
                gw_key(9000, L4Protocol::Tcp),
                "192.0.2.1:9000".parse().unwrap(),
            ),
            (
                gw_key(9001, L4Protocol::Udp),
                "192.0.2.1:9001".parse().unwrap(),
            ),
        ]
        .into();
        let failures: BTreeMap<_, _> =
            [(gw_key(9002, L4Protocol::Tcp), AllocError::PoolExhausted)].into();
        let g = compile_gateways(&gateway_fleet(), &allocs, &failures, &cfg(None));
        let listeners: Vec<(&str, &str)> = g
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.upstreams[0].cluster.as_str()))
            .collect();
        assert_eq!(
            listeners,
            vec![
                ("l4/tcp/192.0.2.1:9000", "t/a/c/c1/default/old/tcproute/0"),
                ("l4/udp/192.0.2.1:9001", "t/a/c/c1/default/dns/udproute"),
            ]
        );
        let accepted = |name: &str| {
            let st = g.routes[&ck("a")]
                .iter()
                .find(|s| s.key.name == name)
                .unwrap();
            let c = &st.parents[0].conditions[0];
            (c.status, c.reason.clone())
        };
        assert_eq!(accepted("old"), (true, "Accepted".into()));
        assert_eq!(accepted("dns"), (true, "Accepted".into()));
        assert_eq!(accepted("new"), (false, "NotAllowedByListeners".into()));
        assert_eq!(accepted("wrong"), (false, "NotAllowedByListeners".into()));
        assert_eq!(accepted("none"), (false, "NoMatchingParent".into()));
        let (ls, addrs) = &g.gateways[&(ck("a"), ("default".into(), "gw".into()))];
        assert_eq!(addrs, &vec!["192.0.2.1".to_string()]);
        let by_name: BTreeMap<&str, &ListenerStatus> =
            ls.iter().map(|(_, l)| (l.name.as_str(), l)).collect();
        assert_eq!(by_name["tcp"].attached_routes, 1);
        let taken = &by_name["taken"].conditions[0];
        assert_eq!(
            (taken.status, taken.reason.as_str()),
            (false, "PortUnavailable")
        );

        // Merged into the HTTP compiler's status, which found no HTTP listener.
        let mut status = ObjectStatus {
            key: ObjectKey {
                kind: Kind::Gateway,
                namespace: "default".into(),
                name: "gw".into(),
            },
            observed_generation: 2,
            conditions: vec![Condition::new("Accepted", false, "ListenersNotValid", "x")],
            addresses: vec![],
            listeners: vec![
                ListenerStatus {
                    name: "x".into(),
                    attached_routes: 0,
                    conditions: vec![],
                    supported_kinds: vec![],
                };
                3
            ],
            parents: vec![],
            load_balancer: vec![],
            attached_listener_sets: 0,
        };
        merge_gateway_status(&mut status, ls, addrs);
        assert!(status.conditions.iter().all(|c| c.status), "{status:?}");
        assert_eq!(status.addresses, vec!["192.0.2.1".to_string()]);
        assert_eq!(status.listeners[0].name, "tcp");
    }

    #[test]
    fn statuses_table() {
        // (allocated?, failure, problem) -> (Programmed status, reason; ResolvedRefs status, reason)
        type Case = (
            bool,
            Option<AllocError>,
            bool,
            (bool, &'static str),
            (bool, &'static str),
        );
        let cases: [Case; 4] = [
            (
                true,
                None,
                false,
                (true, "Programmed"),
                (true, "ResolvedRefs"),
            ),
            (
                false,
                Some(AllocError::PoolExhausted),
                false,
                (false, "PoolExhausted"),
                (true, "ResolvedRefs"),
            ),
            (
                false,
                Some(AllocError::NoPools),
                false,
                (false, "NoAddressPool"),
                (true, "ResolvedRefs"),
            ),
            (
                true,
                None,
                true,
                (true, "Programmed"),
                (false, "BackendNotFound"),
            ),
        ];
        for (allocated, failure, problem, want_prog, want_res) in cases {
            let mut s = svc("db", &[(5432, L4Protocol::Tcp)]);
            if problem {
                s.ports[0].problem = Some(BackendProblem {
                    reason: "BackendNotFound".into(),
                    message: "no nodePort".into(),
                });
                s.ports[0].endpoints.clear();
            }
            let mut ci = ClusterIntent::default();
            ci.services.insert(("default".into(), "db".into()), s);
            let intent: FleetIntent = [(ck("a"), ci)]
                .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
                .into();
            let key = pk("a", "db", 5432, L4Protocol::Tcp);
            let allocs: Allocations = if allocated {
                [(key.clone(), "192.0.2.1:9001".parse().unwrap())].into()
            } else {
                Allocations::new()
            };
            let failures: BTreeMap<_, _> = failure.map(|f| (key.clone(), f)).into_iter().collect();
            let c = compile(&intent, &allocs, &failures, &cfg(None));
            let st = &c.statuses[&ck("a")][0];
            let cond = |t: &str| {
                let c = st.conditions.iter().find(|c| c.type_ == t).unwrap();
                (c.status, c.reason.as_str())
            };
            assert_eq!(cond("Programmed"), want_prog, "{failure:?} {problem}");
            assert_eq!(cond("ResolvedRefs"), want_res, "{failure:?} {problem}");
            assert_eq!(c.listeners.len(), usize::from(allocated));
            assert_eq!(st.load_balancer.is_empty(), !allocated);
            if let Some(f) = failure {
                let msg = &st
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Programmed")
                    .unwrap()
                    .message;
                assert!(
                    msg.contains("5432/TCP") && msg.contains("hub operator"),
                    "{f:?}: {msg}"
                );
            }
        }
    }
}
