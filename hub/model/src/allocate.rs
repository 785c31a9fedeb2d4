//! Allocation (pure): every Service port of type LoadBalancer -> one (address, port) on the
//! shared data plane, from the operator's address pools.
//!
//! Where it sits: `admit` -> `fleet` (the one writer) -> **allocate** -> `store` (durable) ->
//! `compile::l4`. `Fleet` calls [`allocate`] with the allocations it holds and the Service ports
//! the whole fleet wants after each Update; the result is persisted with the intent in one
//! transaction, so an allocation never changes across hub restarts or agent reconnects.
//!
//! The rule, in order:
//! 1. An existing allocation is kept as long as its Service port exists and the allocation is
//!    still valid under the configuration (its address is in a pool, its port in `l4PortRange`,
//!    not a reserved hub or data-plane socket). A Service that is deleted releases its ports.
//! 2. All ports of one Service live on one address (one `status.loadBalancer.ingress[]` entry):
//!    the address the Service already has, else the first pool address (pools in order,
//!    addresses in the order written) where every one of its new ports fits, else the address
//!    where the most fit (the others are reported `PoolExhausted`).
//! 3. On that address a port gets, in order of preference: the port number its sibling of the
//!    other protocol in the same Service already got (TCP 53 + UDP 53 stay together); the
//!    Service's own port number when it is inside `l4PortRange` and free; else the lowest free
//!    port of the range.
//!    A Gateway's TCP/UDP listener gets exactly its own port (clients connect to the listener
//!    port at the Gateway's address) or nothing (`PoolExhausted`: listener not programmed).
//! 4. An (address, port) belongs to at most one Service: Services of different tenants or
//!    namespaces never share one, whatever the protocol. Services do share an address when
//!    their ports differ. The unit of collision is where the data plane binds (a pool's `bind`
//!    override), so two advertised addresses bound to one IP cannot collide either.
//!
//! New ports are placed in key order (tenant, cluster, namespace, name, port, protocol), so the
//! result depends only on the inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use crate::data_plane::L4Config;
use crate::{ClusterKey, L4Protocol};

/// What holds allocations: a LoadBalancer Service, or a Gateway (for its TCP/UDP listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    Service,
    /// A Gateway's listener port is what clients connect to: it gets exactly that port or none.
    Gateway,
}

/// One Service (or Gateway) of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub owner: Owner,
    pub cluster: ClusterKey,
    pub namespace: String,
    pub name: String,
}

/// One port of one Service: what an allocation belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub service: ServiceKey,
    pub port: u16,
    pub protocol: L4Protocol,
}

/// Every allocation of the fleet: the advertised (address, port) of each Service port.
pub type Allocations = BTreeMap<PortKey, SocketAddr>;

/// Why a Service port has no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The operator configured no address pool.
    #[error(
        "the hub has no address pool for L4 load balancers; ask the hub operator to configure addressPools"
    )]
    NoPools,
    /// Every (address, port) of the pools is taken.
    #[error(
        "every address and port of the hub's address pools is taken; delete another LoadBalancer Service or ask the hub operator to enlarge addressPools or l4PortRange"
    )]
    PoolExhausted,
}

impl AllocError {
    /// The CamelCase reason written into status.
    pub fn reason(self) -> &'static str {
        match self {
            AllocError::NoPools => "NoAddressPool",
            AllocError::PoolExhausted => "PoolExhausted",
        }
    }
}

/// The result of one allocation round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub allocations: Allocations,
    pub failures: BTreeMap<PortKey, AllocError>,
}

/// Who holds each bound (ip, port): the Service and the protocols it uses there.
type Used = BTreeMap<(IpAddr, u16), (ServiceKey, BTreeSet<L4Protocol>)>;

struct Allocator<'a> {
    l4: &'a L4Config,
    reserved: &'a BTreeSet<SocketAddr>,
    used: Used,
}

impl Allocator<'_> {
    fn in_range(&self, port: u16) -> bool {
        self.l4
            .port_range
            .is_some_and(|r| (r.from..=r.to).contains(&port))
    }

    fn in_pool(&self, ip: IpAddr) -> bool {
        self.l4.pools.iter().any(|p| p.addresses.contains(&ip))
    }

    /// Whether (ip, port) is free for `protocol` of `svc`.
    fn free(&self, svc: &ServiceKey, ip: IpAddr, port: u16, protocol: L4Protocol) -> bool {
        let bind = self.l4.bind_ip(ip);
        if self.reserved.iter().any(|r| {
            r.port() == port && (r.ip() == bind || r.ip().is_unspecified() || bind.is_unspecified())
        }) {
            return false;
        }
        match self.used.get(&(bind, port)) {
            None => true,
            Some((owner, protos)) => owner == svc && !protos.contains(&protocol),
        }
    }

    fn take(&mut self, svc: &ServiceKey, ip: IpAddr, port: u16, protocol: L4Protocol) {
        let bind = self.l4.bind_ip(ip);
        self.used
            .entry((bind, port))
            .or_insert_with(|| (svc.clone(), BTreeSet::new()))
            .1
            .insert(protocol);
    }

    /// The port `k` gets on `ip` (rule 3), without taking it.
    fn pick(&self, k: &PortKey, ip: IpAddr, sibling: Option<u16>) -> Option<u16> {
        let range = self.l4.port_range?;
        let ok = |p: u16| self.in_range(p) && self.free(&k.service, ip, p, k.protocol);
        if k.service.owner == Owner::Gateway {
            return ok(k.port).then_some(k.port);
        }
        if let Some(p) = sibling.filter(|p| ok(*p)) {
            return Some(p);
        }
        if ok(k.port) {
            return Some(k.port);
        }
        (range.from..=range.to).find(|p| ok(*p))
    }

    /// Places `ports` (all of one Service, none allocated yet) on `ip`; returns the ports that
    /// fit, taking them.
    fn place(
        &mut self,
        ip: IpAddr,
        ports: &[PortKey],
        siblings: &BTreeMap<u16, u16>,
    ) -> Vec<(PortKey, u16)> {
        let mut placed = Vec::new();
        let mut local: BTreeMap<u16, u16> = siblings.clone();
        for k in ports {
            if let Some(p) = self.pick(k, ip, local.get(&k.port).copied()) {
                self.take(&k.service, ip, p, k.protocol);
                local.insert(k.port, p);
                placed.push((k.clone(), p));
            }
        }
        placed
    }

    fn release(&mut self, ip: IpAddr, placed: &[(PortKey, u16)]) {
        let bind = self.l4.bind_ip(ip);
        for (k, p) in placed {
            if let Some((_, protos)) = self.used.get_mut(&(bind, *p)) {
                protos.remove(&k.protocol);
                if protos.is_empty() {
                    self.used.remove(&(bind, *p));
                }
            }
        }
    }
}

/// One allocation round: keeps what `current` holds for ports still in `wanted` (and still
/// valid), allocates the rest by the rule in the module documentation.
pub fn allocate(
    l4: &L4Config,
    reserved: &BTreeSet<SocketAddr>,
    current: &Allocations,
    wanted: &BTreeSet<PortKey>,
) -> Outcome {
    let mut a = Allocator {
        l4,
        reserved,
        used: Used::new(),
    };
    let mut out = Outcome::default();
    // Rule 1: keep what is still wanted and valid. A Service whose kept ports sit on several
    // addresses (only possible after a configuration change) keeps them all.
    for (k, addr) in current {
        if wanted.contains(k)
            && a.in_pool(addr.ip())
            && a.in_range(addr.port())
            && a.free(&k.service, addr.ip(), addr.port(), k.protocol)
        {
            a.take(&k.service, addr.ip(), addr.port(), k.protocol);
            out.allocations.insert(k.clone(), *addr);
        }
    }
    // The ports still to place, per Service.
    let mut todo: BTreeMap<&ServiceKey, Vec<PortKey>> = BTreeMap::new();
    for k in wanted.iter().filter(|k| !out.allocations.contains_key(*k)) {
        todo.entry(&k.service).or_default().push(k.clone());
    }
    let addresses: Vec<IpAddr> = l4
        .pools
        .iter()
        .flat_map(|p| p.addresses.iter().copied())
        .collect();
    for (svc, ports) in todo {
        if addresses.is_empty() || l4.port_range.is_none() {
            for k in ports {
                out.failures.insert(k, AllocError::NoPools);
            }
            continue;
        }
        // Rule 2: the Service's address, if it has one; its kept ports by Service port number.
        let kept: Vec<(&PortKey, &SocketAddr)> = out
            .allocations
            .iter()
            .filter(|(k, _)| &k.service == svc)
            .collect();
        let siblings: BTreeMap<u16, u16> = kept.iter().map(|(k, a)| (k.port, a.port())).collect();
        let placed = match kept.first().map(|(_, a)| a.ip()) {
            Some(ip) => (ip, a.place(ip, &ports, &siblings)),
            None => {
                let mut best: Option<(IpAddr, Vec<(PortKey, u16)>)> = None;
                for ip in &addresses {
                    let placed = a.place(*ip, &ports, &siblings);
                    let n = placed.len();
                    if n == ports.len() {
                        if let Some((bip, bp)) = best.take() {
                            a.release(bip, &bp);
                        }
                        best = Some((*ip, placed));
                        break;
                    }
                    if n > best.as_ref().map_or(0, |(_, b)| b.len()) {
                        if let Some((bip, bp)) = best.take() {
                            a.release(bip, &bp);
                        }
                        best = Some((*ip, placed));
                    } else {
                        a.release(*ip, &placed);
                    }
                }
                best.unwrap_or((addresses[0], Vec::new()))
            }
        };
        let (ip, placed) = placed;
        let got: BTreeSet<&PortKey> = placed.iter().map(|(k, _)| k).collect();
        for k in &ports {
            if !got.contains(k) {
                out.failures.insert(k.clone(), AllocError::PoolExhausted);
            }
        }
        for (k, p) in placed {
            out.allocations.insert(k, SocketAddr::new(ip, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_plane::{AddressPool, PortRange};
    use L4Protocol::{Tcp, Udp};

    fn l4(addresses: &[&str], from: u16, to: u16) -> L4Config {
        L4Config {
            pools: vec![AddressPool {
                name: "p".into(),
                addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
                bind: None,
            }],
            port_range: Some(PortRange { from, to }),
        }
    }

    fn key(tenant: &str, name: &str, port: u16, protocol: L4Protocol) -> PortKey {
        PortKey {
            service: ServiceKey {
                owner: Owner::Service,
                cluster: ClusterKey {
                    tenant: tenant.into(),
                    cluster: "c1".into(),
                },
                namespace: "default".into(),
                name: name.into(),
            },
            port,
            protocol,
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Runs `allocate` from nothing and returns (allocations as (tenant, name, port, proto) ->
    /// "ip:port" or the error reason).
    fn run(
        cfg: &L4Config,
        reserved: &[&str],
        current: &Allocations,
        wanted: &[PortKey],
    ) -> (Outcome, BTreeMap<String, String>) {
        let reserved: BTreeSet<SocketAddr> = reserved.iter().map(|s| sa(s)).collect();
        let wanted: BTreeSet<PortKey> = wanted.iter().cloned().collect();
        let o = allocate(cfg, &reserved, current, &wanted);
        let mut shown = BTreeMap::new();
        for (k, a) in &o.allocations {
            shown.insert(
                format!(
                    "{}/{}/{}/{:?}",
                    k.service.cluster.tenant, k.service.name, k.port, k.protocol
                ),
                a.to_string(),
            );
        }
        for (k, e) in &o.failures {
            shown.insert(
                format!(
                    "{}/{}/{}/{:?}",
                    k.service.cluster.tenant, k.service.name, k.port, k.protocol
                ),
                e.reason().to_string(),
            );
        }
        (o, shown)
    }

    #[test]
    fn allocation_table() {
        struct Case {
            what: &'static str,
            cfg: L4Config,
            reserved: &'static [&'static str],
            wanted: Vec<PortKey>,
            want: &'static [(&'static str, &'static str)],
        }
        let cases = vec![
            Case {
                what: "own port preferred when in range",
                cfg: l4(&["127.0.0.1"], 9000, 9010),
                reserved: &[],
                wanted: vec![key("a", "db", 9005, Tcp)],
                want: &[("a/db/9005/Tcp", "127.0.0.1:9005")],
            },
            Case {
                what: "own port outside the range: lowest free of the range",
                cfg: l4(&["127.0.0.1"], 9000, 9010),
                reserved: &[],
                wanted: vec![key("a", "db", 5432, Tcp)],
                want: &[("a/db/5432/Tcp", "127.0.0.1:9000")],
            },
            Case {
                what: "sharing an address when ports differ; collision moves to the next free port",
                cfg: l4(&["127.0.0.1"], 9000, 9010),
                reserved: &[],
                wanted: vec![
                    key("a", "x", 9001, Tcp),
                    key("a", "y", 9002, Tcp),
                    key("b", "z", 9001, Tcp),
                ],
                want: &[
                    ("a/x/9001/Tcp", "127.0.0.1:9001"),
                    ("a/y/9002/Tcp", "127.0.0.1:9002"),
                    ("b/z/9001/Tcp", "127.0.0.1:9000"),
                ],
            },
            Case {
                what: "another tenant's UDP never shares a TCP (address, port)",
                cfg: l4(&["127.0.0.1"], 9000, 9001),
                reserved: &[],
                wanted: vec![key("a", "x", 9000, Tcp), key("b", "y", 9000, Udp)],
                want: &[
                    ("a/x/9000/Tcp", "127.0.0.1:9000"),
                    ("b/y/9000/Udp", "127.0.0.1:9001"),
                ],
            },
            Case {
                what: "TCP and UDP of one Service share the port (DNS), even outside the range",
                cfg: l4(&["127.0.0.1"], 9000, 9001),
                reserved: &[],
                wanted: vec![key("a", "dns", 53, Tcp), key("a", "dns", 53, Udp)],
                want: &[
                    ("a/dns/53/Tcp", "127.0.0.1:9000"),
                    ("a/dns/53/Udp", "127.0.0.1:9000"),
                ],
            },
            Case {
                what: "all ports of a Service on one address: the first where all fit",
                cfg: l4(&["127.0.0.1", "127.0.0.2"], 9000, 9001),
                reserved: &[],
                wanted: vec![
                    key("a", "one", 9000, Tcp),
                    key("b", "two", 9000, Tcp),
                    key("b", "two", 9001, Tcp),
                ],
                want: &[
                    ("a/one/9000/Tcp", "127.0.0.1:9000"),
                    ("b/two/9000/Tcp", "127.0.0.2:9000"),
                    ("b/two/9001/Tcp", "127.0.0.2:9001"),
                ],
            },
            Case {
                what: "exhaustion: the last Service gets PoolExhausted, the others keep theirs",
                cfg: l4(&["127.0.0.1"], 9000, 9001),
                reserved: &[],
                wanted: vec![
                    key("a", "x", 1, Tcp),
                    key("a", "y", 1, Tcp),
                    key("a", "z", 1, Tcp),
                ],
                want: &[
                    ("a/x/1/Tcp", "127.0.0.1:9000"),
                    ("a/y/1/Tcp", "127.0.0.1:9001"),
                    ("a/z/1/Tcp", "PoolExhausted"),
                ],
            },
            Case {
                what: "partial fit: ports that fit are placed, the rest exhausted",
                cfg: l4(&["127.0.0.1"], 9000, 9000),
                reserved: &[],
                wanted: vec![key("a", "x", 1, Tcp), key("a", "x", 2, Tcp)],
                want: &[
                    ("a/x/1/Tcp", "127.0.0.1:9000"),
                    ("a/x/2/Tcp", "PoolExhausted"),
                ],
            },
            Case {
                what: "reserved hub and data-plane sockets are skipped",
                cfg: l4(&["127.0.0.1"], 9000, 9002),
                reserved: &["127.0.0.1:9000", "0.0.0.0:9001"],
                wanted: vec![key("a", "x", 9000, Tcp)],
                want: &[("a/x/9000/Tcp", "127.0.0.1:9002")],
            },
            Case {
                what: "no pools",
                cfg: L4Config::default(),
                reserved: &[],
                wanted: vec![key("a", "x", 80, Tcp)],
                want: &[("a/x/80/Tcp", "NoAddressPool")],
            },
        ];
        for c in cases {
            let (_, got) = run(&c.cfg, c.reserved, &Allocations::new(), &c.wanted);
            let want: BTreeMap<String, String> = c
                .want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{}", c.what);
        }
    }

    #[test]
    fn allocations_are_stable_and_released() {
        let cfg = l4(&["127.0.0.1"], 9000, 9002);
        let x = key("a", "x", 9001, Tcp);
        let y = key("b", "y", 9001, Tcp);
        let (first, _) = run(&cfg, &[], &Allocations::new(), std::slice::from_ref(&x));
        assert_eq!(first.allocations[&x], sa("127.0.0.1:9001"));
        // A newcomer that prefers the same port does not take it; x keeps it.
        let (second, _) = run(&cfg, &[], &first.allocations, &[x.clone(), y.clone()]);
        assert_eq!(second.allocations[&x], sa("127.0.0.1:9001"));
        assert_eq!(second.allocations[&y], sa("127.0.0.1:9000"));
        // Even when y would have come first in key order from scratch.
        let (again, _) = run(&cfg, &[], &second.allocations, &[y.clone(), x.clone()]);
        assert_eq!(again.allocations, second.allocations);
        // x deleted: released, and another Service can get its port.
        let z = key("c", "z", 9001, Tcp);
        let (third, _) = run(&cfg, &[], &second.allocations, &[y.clone(), z.clone()]);
        assert!(!third.allocations.contains_key(&x));
        assert_eq!(third.allocations[&y], sa("127.0.0.1:9000"));
        assert_eq!(third.allocations[&z], sa("127.0.0.1:9001"));
        // A new port of an existing Service joins the Service's address.
        let cfg2 = l4(&["127.0.0.1", "127.0.0.2"], 9000, 9002);
        let y2 = key("b", "y", 7, Tcp);
        let (fourth, _) = run(
            &cfg2,
            &[],
            &third.allocations,
            &[y.clone(), z.clone(), y2.clone()],
        );
        assert_eq!(fourth.allocations[&y2].ip(), sa("127.0.0.1:1").ip());
        // An allocation the configuration no longer allows is replaced (y prefers its own 9001).
        let moved = l4(&["127.0.0.2"], 9000, 9002);
        let (fifth, _) = run(&moved, &[], &third.allocations, std::slice::from_ref(&y));
        assert_eq!(fifth.allocations[&y], sa("127.0.0.2:9001"));
    }

    #[test]
    fn gateway_listeners_get_exactly_their_port() {
        let cfg = l4(&["127.0.0.1"], 9000, 9002);
        let gw = |port| PortKey {
            service: ServiceKey {
                owner: Owner::Gateway,
                ..key("a", "web", port, Tcp).service
            },
            port,
            protocol: Tcp,
        };
        // A Service took 9001 first; the Gateway listener on 9001 gets nothing, not another port.
        let svc = key("b", "db", 9001, Tcp);
        let (first, _) = run(&cfg, &[], &Allocations::new(), std::slice::from_ref(&svc));
        let (o, shown) = run(
            &cfg,
            &[],
            &first.allocations,
            &[svc, gw(9001), gw(9002), gw(80)],
        );
        assert_eq!(o.allocations[&gw(9002)], sa("127.0.0.1:9002"));
        assert_eq!(shown["a/web/9001/Tcp"], "PoolExhausted");
        assert_eq!(shown["a/web/80/Tcp"], "PoolExhausted", "outside the range");
    }

    #[test]
    fn a_bind_override_is_the_unit_of_collision() {
        let cfg = L4Config {
            pools: vec![
                AddressPool {
                    name: "p".into(),
                    addresses: vec!["192.0.2.1".parse().unwrap()],
                    bind: Some("127.0.0.1".parse().unwrap()),
                },
                AddressPool {
                    name: "q".into(),
                    addresses: vec!["192.0.2.2".parse().unwrap()],
                    bind: Some("127.0.0.1".parse().unwrap()),
                },
            ],
            port_range: Some(PortRange {
                from: 9000,
                to: 9001,
            }),
        };
        let (o, _) = run(
            &cfg,
            &[],
            &Allocations::new(),
            &[key("a", "x", 9000, Tcp), key("b", "y", 9000, Tcp)],
        );
        let ports: BTreeSet<u16> = o.allocations.values().map(|a| a.port()).collect();
        assert_eq!(ports.len(), 2, "{o:?}");
    }
}
