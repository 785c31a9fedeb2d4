//! L4 compile (pure): LoadBalancer Services + their allocations -> one data-plane listener per
//! allocated (address, port) forwarding to a cluster of the Service port's endpoints, and each
//! Service's status (`status.loadBalancer.ingress` and conditions).
//!
//! Step 7 (compile) of the hub's data path, next to the HTTP compiler in `super`; the
//! allocations come from `crate::allocate` through `crate::fleet`. No I/O.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::allocate::{AllocError, Allocations, PortKey, ServiceKey};
use crate::config::L4Config;
use crate::model::{
    ClusterKey, Condition, FleetIntent, Kind, LoadBalancerIngress, LoadBalancerPort,
    LoadBalancerService, ObjectKey, ObjectStatus,
};

use super::names;
use super::snapshot::{ClusterSnapshot, L4ListenerSnapshot, SourceObject};

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
                    name: cluster.clone(),
                    endpoints: p.endpoints.clone(),
                    source: Some(src.clone()),
                });
                out.listeners.push(L4ListenerSnapshot {
                    name: names::l4_listener(p.protocol, bind),
                    protocol: p.protocol,
                    bind,
                    cluster,
                    source: src.clone(),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AddressPool, PortRange};
    use crate::model::{BackendProblem, ClusterIntent, L4Protocol, Meta, ServicePort};

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
        let intent: FleetIntent = [(ck("a"), ci)].into();
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
                    l.cluster.clone(),
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
            let intent: FleetIntent = [(ck("a"), ci)].into();
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
