//! Gateways served on their own address (pure).
//!
//! Part of the compiler (step 7). A Gateway with at least one HTTP or HTTPS listener **without a
//! hostname** cannot share the data plane's published ports with other tenants: "every host"
//! there would be every tenant's host. When the operator configured address pools
//! (`addressPools` + `l4PortRange`), such a Gateway is served on an address of its own instead:
//! `crate::fleet::wanted_ports` asks `crate::allocate` for exactly each HTTP/HTTPS listener
//! port of the Gateway (`Owner::Gateway`, like its TCP/UDP listeners, all on one address), and
//! this module
//! - checks its listeners against those allocations rather than the published ports
//!   ([`check`]): a listener without an allocation is `Accepted=False/PortUnavailable`,
//!   `Programmed=False` with the allocation's reason (`PoolExhausted`, `NoAddressPool`);
//! - lets a listener and a route that both leave the hostname open attach for every host
//!   (`super::attach::attach_every_host`): on this address nothing of another tenant arrives;
//! - builds one data-plane listener per allocated port, bound where the pool says, whose
//!   routes are this Gateway's only ([`build`]): HTTP -> a `ListenerSnapshot` with its own
//!   route configuration (a hostname-less attachment is the virtual host `*`); HTTPS -> a
//!   `TlsListenerSnapshot` with one chain per listener hostname (SNI) and, for a listener
//!   without hostname, a chain without server names serving its certificate;
//! - writes the address into the Gateway's `status.addresses` ([`fix_status`]).
//!
//! The routes themselves are compiled by the same code as on shared ports (`super`), only
//! placed into this Gateway's own route tables. Without address pools nothing here applies and
//! such Gateways stay on the shared ports as before (where a hostname-less pair is refused).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::hostname::{belongs_to_more_specific, covers};
use super::listener::ListenerProblem;
use super::names;
use super::snapshot::{
    ListenerSnapshot, Route, SecretSnapshot, SourceObject, TlsChain, TlsChainAction,
    TlsListenerSnapshot, VirtualHost,
};
use crate::model::allocate::{AllocError, Allocations, Owner, PortKey, ServiceKey};
use crate::model::data_plane::L4Config;
use crate::model::{
    ClusterKey, Condition, FleetIntent, Gateway, Kind, L4Protocol, Listener, ObjectStatus,
    Protocol, TlsMode,
};

/// A namespace and name.
type NsName = (String, String);

/// Where one port of a Gateway is served: the address its status shows and where the data
/// plane binds (the pool's `bind` override applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub advertised: SocketAddr,
    pub bind: SocketAddr,
}

/// The allocation of each HTTP/HTTPS listener port of one own-address Gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnGateway {
    pub ports: BTreeMap<u16, Result<Placed, AllocError>>,
}

impl OwnGateway {
    /// The Gateway's own address, when any of its ports got one (all are on one address).
    pub fn address(&self) -> Option<SocketAddr> {
        self.ports
            .values()
            .find_map(|p| p.as_ref().ok().map(|p| p.advertised))
    }
}

/// Every own-address Gateway of the fleet, by cluster and (namespace, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnAddresses {
    gateways: BTreeMap<ClusterKey, BTreeMap<NsName, OwnGateway>>,
}

/// Whether a Gateway asks for an address of its own: one of its own HTTP, HTTPS or TLS
/// passthrough listeners has no hostname. (Listeners added by ListenerSets do not count.)
pub fn wants_own_address(gw: &Gateway) -> bool {
    gw.listeners
        .iter()
        .any(|l| is_own_served(l) && l.hostname.is_none())
}

fn is_http(l: &Listener) -> bool {
    matches!(l.protocol, Some(Protocol::Http | Protocol::Https))
}

/// A TLS listener in passthrough mode (TLSRoutes).
fn is_passthrough(l: &Listener) -> bool {
    l.protocol == Some(Protocol::Tls)
        && l.tls
            .as_ref()
            .is_some_and(|t| t.mode == TlsMode::Passthrough)
}

/// The listeners this module serves on an own address: HTTP, HTTPS and TLS passthrough.
fn is_own_served(l: &Listener) -> bool {
    is_http(l) || is_passthrough(l)
}

/// The allocation key of port `port` of Gateway `gk` (the same key its TCP listener on that
/// port would use: a Gateway holds an (address, port) once).
pub fn port_key(ck: &ClusterKey, gk: &NsName, port: u16) -> PortKey {
    PortKey {
        service: ServiceKey {
            owner: Owner::Gateway,
            cluster: ck.clone(),
            namespace: gk.0.clone(),
            name: gk.1.clone(),
        },
        port,
        protocol: L4Protocol::Tcp,
    }
}

/// The allocation keys every own-address Gateway of `fleet` wants (for `crate::fleet`).
pub fn wanted_ports(fleet: &FleetIntent) -> BTreeSet<PortKey> {
    let mut out = BTreeSet::new();
    for (ck, ci) in fleet {
        for (gk, gw) in ci.gateways.iter().filter(|(_, g)| wants_own_address(g)) {
            for l in gw.listeners.iter().filter(|l| is_own_served(l)) {
                out.insert(port_key(ck, gk, l.port));
            }
        }
    }
    out
}

impl OwnAddresses {
    /// No Gateway is served on its own address (no address pools).
    pub fn none() -> Self {
        Self::default()
    }

    /// The own-address Gateways of `intent` and their allocations; none when the operator
    /// configured no address pools.
    pub fn new(
        intent: &FleetIntent,
        l4: &L4Config,
        allocations: &Allocations,
        failures: &BTreeMap<PortKey, AllocError>,
    ) -> Self {
        let mut out = Self::default();
        if l4.pools.is_empty() || l4.port_range.is_none() {
            return out;
        }
        for (ck, ci) in intent {
            for (gk, gw) in ci.gateways.iter().filter(|(_, g)| wants_own_address(g)) {
                let mut og = OwnGateway::default();
                for l in gw.listeners.iter().filter(|l| is_own_served(l)) {
                    let pk = port_key(ck, gk, l.port);
                    let placed = match allocations.get(&pk) {
                        Some(a) => Ok(Placed {
                            advertised: *a,
                            bind: SocketAddr::new(l4.bind_ip(a.ip()), a.port()),
                        }),
                        None => Err(failures
                            .get(&pk)
                            .copied()
                            .unwrap_or(AllocError::PoolExhausted)),
                    };
                    og.ports.insert(l.port, placed);
                }
                out.gateways
                    .entry(ck.clone())
                    .or_default()
                    .insert(gk.clone(), og);
            }
        }
        out
    }

    pub fn get(&self, ck: &ClusterKey, gk: &NsName) -> Option<&OwnGateway> {
        self.gateways.get(ck)?.get(gk)
    }

    /// The own-address Gateways of one cluster (what its compiled part depends on).
    pub fn of_cluster(&self, ck: &ClusterKey) -> BTreeMap<NsName, OwnGateway> {
        self.gateways.get(ck).cloned().unwrap_or_default()
    }
}

/// The check of listener `l` of an own-address Gateway, or `None` for listeners this module
/// does not serve (TCP/UDP: `super::l4`). `from_listener_set`: the listener came from a
/// ListenerSet.
pub fn check(
    l: &Listener,
    og: &OwnGateway,
    from_listener_set: bool,
) -> Option<Result<(), ListenerProblem>> {
    match l.protocol {
        Some(Protocol::Http) => {}
        Some(Protocol::Https) => {
            if let Some(p) = super::listener::tls_options_refused(l) {
                return Some(Err(p));
            }
        }
        Some(Protocol::Tls) => {
            // (A TLS and an HTTPS listener on one port are a ProtocolConflict: `super::conflict`.)
            if let Some(p) = super::listener::tls_terminate_refused(l)
                .or_else(|| super::listener::tls_options_refused(l))
            {
                return Some(Err(p));
            }
        }
        _ => return None,
    }
    if from_listener_set {
        return Some(Err(ListenerProblem::UnsupportedValue(
            "ListenerSet listeners are not served on a Gateway that has its own address (it has an HTTP or HTTPS listener without hostname); attach the ListenerSet to a Gateway whose listeners all have hostnames".to_string(),
        )));
    }
    if let Some(Err(e)) = og.ports.get(&l.port) {
        return Some(Err(ListenerProblem::NoAddress(
            e.reason(),
            format!(
                "this Gateway has a listener without hostname, so it is served on an address of its own, but port {} could not be allocated (it must be free and inside l4PortRange): {e}",
                l.port
            ),
        )));
    }
    if l.protocol == Some(Protocol::Https) {
        let Some(tls) = &l.tls else {
            return Some(Err(ListenerProblem::UnsupportedValue(
                "an HTTPS listener needs a tls block".to_string(),
            )));
        };
        if let Some(p) = &tls.problem {
            return Some(Err(ListenerProblem::Unresolved(
                p.reason.clone(),
                p.message.clone(),
            )));
        }
    }
    Some(Ok(()))
}

/// What one cluster's own-address Gateways put on the data plane.
#[derive(Debug, Clone, Default)]
pub struct OwnPart {
    pub listeners: Vec<ListenerSnapshot>,
    pub tls_listeners: Vec<TlsListenerSnapshot>,
    pub secrets: Vec<SecretSnapshot>,
}

/// Routes per hostname (`*`: every host) attached through one port of one own-address
/// Gateway, in precedence order.
pub type OwnHosts = BTreeMap<String, Vec<Route>>;

/// One own-address Gateway of a cluster, ready to build.
pub struct OwnInput<'a> {
    pub cluster: &'a ClusterKey,
    pub gateway: &'a Gateway,
    pub own: &'a OwnGateway,
    /// Whether each listener (in Gateway order) is served.
    pub served: Vec<bool>,
    /// Routes per port.
    pub hosts: BTreeMap<u16, OwnHosts>,
    /// TLSRoutes per port and hostname (`*`: a hostname-less route on a hostname-less
    /// passthrough listener).
    pub passthrough: super::tls::PassthroughByPort,
}

/// The data-plane listeners of one own-address Gateway: one per allocated port with a served
/// listener; each holds only this Gateway's routes.
pub fn build(input: &OwnInput<'_>, out: &mut OwnPart) {
    let gw = input.gateway;
    let src = SourceObject {
        cluster: input.cluster.clone(),
        object: crate::model::ObjectKey {
            kind: Kind::Gateway,
            namespace: gw.meta.namespace.clone(),
            name: gw.meta.name.clone(),
        },
    };
    let none = OwnHosts::new();
    for (port, placed) in &input.own.ports {
        let Ok(placed) = placed else { continue };
        let listeners: Vec<&Listener> = gw
            .listeners
            .iter()
            .zip(&input.served)
            .filter(|(l, s)| **s && l.port == *port && is_own_served(l))
            .map(|(l, _)| l)
            .collect();
        let Some(first) = listeners.first() else {
            continue;
        };
        let hosts = input.hosts.get(port).unwrap_or(&none);
        let bind = placed.bind;
        match first.protocol {
            Some(Protocol::Tls) => {
                // One chain per TLSRoute hostname (SNI); `*` is the chain without server
                // names, for any SNI no named chain takes. No route: no listener (Envoy refuses
                // one without chains), and connections to the port are refused.
                let Some(hosts) = input.passthrough.get(port) else {
                    continue;
                };
                let mut chains: Vec<TlsChain> = hosts
                    .iter()
                    .map(|(host, p)| {
                        let (name, server_names) = if host == "*" {
                            (names::own_passthrough_chain(bind, None), Vec::new())
                        } else {
                            (
                                names::own_passthrough_chain(bind, Some(host)),
                                vec![host.clone()],
                            )
                        };
                        TlsChain {
                            name,
                            server_names,
                            action: TlsChainAction::Passthrough {
                                clusters: p.clusters.clone(),
                                source: p.source.clone(),
                                max_connections: None,
                            },
                        }
                    })
                    .collect();
                if chains.is_empty() {
                    continue;
                }
                chains.sort_by(|a, b| a.name.cmp(&b.name));
                out.tls_listeners.push(TlsListenerSnapshot {
                    name: names::own_listener(Protocol::Tls, bind),
                    port: *port,
                    bind,
                    chains,
                    gateways: [src.clone()].into(),
                });
            }
            Some(Protocol::Https) => {
                let mut chains = Vec::new();
                let named: Vec<&str> = listeners
                    .iter()
                    .filter_map(|l| l.hostname.as_deref())
                    .collect();
                for l in &listeners {
                    let Some(tls) = &l.tls else { continue };
                    let secrets: Vec<String> = tls
                        .certificates
                        .iter()
                        .map(|c| {
                            let name = names::secret(input.cluster, &c.namespace, &c.name);
                            out.secrets.push(SecretSnapshot {
                                name: name.clone(),
                                cert_chain_pem: c.cert_chain_pem.clone(),
                                private_key_pem: c.private_key_pem.clone(),
                                source: Some(src.clone()),
                            });
                            name
                        })
                        .collect();
                    if secrets.is_empty() {
                        continue;
                    }
                    // A listener with a hostname gets the hosts it covers (less those of a
                    // more specific listener), by SNI, and answers 421 for any other Host; the
                    // one without gets every other host, for any SNI (or none), and answers 421
                    // for the hosts of the named listeners (Gateway API: HTTPS listeners detect
                    // misdirected requests).
                    let (chain, server_names, mine, misdirected): (
                        String,
                        Vec<String>,
                        OwnHosts,
                        Vec<String>,
                    ) = match &l.hostname {
                        Some(h) => (
                            names::own_tls_chain(bind, Some(h)),
                            vec![h.clone()],
                            hosts
                                .iter()
                                .filter(|(host, _)| {
                                    covers(h, host)
                                        && !belongs_to_more_specific(
                                            Some(h),
                                            host,
                                            named.iter().copied().map(Some),
                                        )
                                })
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            super::tls::misdirected_domains(h, &named),
                        ),
                        None => (
                            names::own_tls_chain(bind, None),
                            Vec::new(),
                            hosts
                                .iter()
                                .filter(|(host, _)| {
                                    !named.iter().any(|n| covers(n, host) && *host != "*")
                                })
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            named
                                .iter()
                                .map(|n| n.to_string())
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .collect(),
                        ),
                    };
                    chains.push(TlsChain {
                        name: chain.clone(),
                        server_names,
                        action: TlsChainAction::Terminate {
                            secrets,
                            http: http_listener(chain, *port, bind, &mine, misdirected, &src),
                        },
                    });
                }
                if chains.is_empty() {
                    continue;
                }
                chains.sort_by(|a, b| a.name.cmp(&b.name));
                out.tls_listeners.push(TlsListenerSnapshot {
                    name: names::own_listener(Protocol::Https, bind),
                    port: *port,
                    bind,
                    chains,
                    gateways: [src.clone()].into(),
                });
            }
            _ => out.listeners.push(http_listener(
                names::own_listener(Protocol::Http, bind),
                *port,
                bind,
                hosts,
                Vec::new(),
                &src,
            )),
        }
    }
}

/// One route table on an own address: a virtual host per hostname (`*` for hostname-less
/// attachments), one answering 421 for the `misdirected` domains (HTTPS chains: hosts served on
/// another chain), then a 404 catch-all unless `*` is taken.
fn http_listener(
    name: String,
    port: u16,
    bind: SocketAddr,
    hosts: &OwnHosts,
    misdirected: Vec<String>,
    src: &SourceObject,
) -> ListenerSnapshot {
    let mut virtual_hosts: Vec<Arc<VirtualHost>> = hosts
        .iter()
        .filter(|(h, _)| h.as_str() != "*")
        .map(|(host, routes)| {
            Arc::new(VirtualHost {
                name: names::own_virtual_host(bind, host),
                domains: vec![host.clone()],
                routes: routes.clone(),
                rate_limit: None,
            })
        })
        .collect();
    let star_misdirected = misdirected.iter().any(|d| d == "*");
    if !misdirected.is_empty() {
        virtual_hosts.push(Arc::new(super::misdirected(port, misdirected)));
    }
    match hosts.get("*") {
        Some(routes) => virtual_hosts.push(Arc::new(VirtualHost {
            name: names::own_virtual_host(bind, "*"),
            domains: vec!["*".to_string()],
            routes: routes.clone(),
            rate_limit: None,
        })),
        None if star_misdirected => {}
        None => virtual_hosts.push(Arc::new(super::catch_all(port))),
    }
    ListenerSnapshot {
        name,
        port,
        bind,
        virtual_hosts,
        gateways: [src.clone()].into(),
    }
}

/// Writes an own-address Gateway's address into its status (replacing the shared data plane's)
/// and says where its listeners are served.
pub fn fix_status(status: &mut ObjectStatus, og: &OwnGateway) {
    status.addresses.clear();
    let served = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Programmed" && c.status);
    match og.address() {
        Some(a) if served => {
            status.addresses.push(a.ip().to_string());
            for c in status
                .conditions
                .iter_mut()
                .filter(|c| c.type_ == "Programmed")
            {
                *c = Condition::new(
                    "Programmed",
                    true,
                    "Programmed",
                    format!("programmed on its own address {}", a.ip()),
                );
            }
        }
        None => {
            for c in status
                .conditions
                .iter_mut()
                .filter(|c| c.type_ == "Programmed" && !c.status)
            {
                *c = Condition::new(
                    "Programmed",
                    false,
                    "AddressNotAssigned",
                    "this Gateway has a listener without hostname, so it needs an address of its own, and none could be allocated; see the listener conditions",
                );
            }
        }
        _ => {}
    }
}
