//! Listener conflicts (Gateway API `Conflicted` condition): which tenant listeners share a port
//! and a hostname in a way the shared data plane cannot serve.
//!
//! Part of the compiler (step 7), pure; runs before attachment so that a conflicted listener is
//! never programmed and no route attaches through it. The rules, per Gateway API v1.6:
//!
//! - Inside one Gateway, listeners with the same port and the same hostname (or both without
//!   one) conflict: with different protocols `ProtocolConflict`, with the same protocol
//!   `HostnameConflict`. The Gateway API gives no precedence between listeners of one Gateway
//!   (or of one ListenerSet), so every listener of such a group is conflicted. Between a
//!   Gateway's own listeners and those merged from its ListenerSets (`super::listener_set`),
//!   the one earlier in the merged list wins: the Gateway's own, then the oldest ListenerSet's;
//!   only the other is conflicted.
//! - Across Gateways of the same tenant (any of its clusters) sharing a data-plane port (HTTP,
//!   HTTPS and TLS listeners: TCP and UDP listeners get an address of their own per Gateway),
//!   listeners that cannot share the port (e.g. HTTPS terminate and TLS passthrough for one SNI
//!   name) are a `ProtocolConflict`. The oldest Gateway wins (creationTimestamp, then
//!   namespace/name, then cluster name), as the Gateway API orders conflicting objects; the
//!   others' listeners are conflicted. Only a listener that is otherwise served can hold a port
//!   against a younger Gateway. The same hostname with the same protocol is NOT a
//!   conflict across Gateways: it is how several Gateways (and several clusters) of one tenant
//!   serve one hostname together, and their routes are merged (`super::merge`).
//! - Across tenants no two listeners can share a hostname: admission gives each hostname to one
//!   tenant only.

use std::collections::BTreeMap;

use crate::model::{ClusterIntent, ClusterKey, Gateway, Listener, Protocol};

/// Protocols whose listeners share the data plane's published ports across Gateways.
fn shared(p: Protocol) -> bool {
    matches!(p, Protocol::Http | Protocol::Https | Protocol::Tls)
}

/// Why a listener is conflicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Same port and hostname, different protocols.
    Protocol(String),
    /// Same port, protocol and hostname inside one Gateway.
    Hostname(String),
}

impl Conflict {
    /// The Gateway API reason of the listener's `Conflicted=True` condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Conflict::Protocol(_) => "ProtocolConflict",
            Conflict::Hostname(_) => "HostnameConflict",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Conflict::Protocol(m) | Conflict::Hostname(m) => m,
        }
    }
}

/// Conflicts of every listener of every Gateway, keyed by cluster and Gateway (namespace,
/// name), in listener order (`None`: not conflicted). Gateways without any conflict are left out.
pub type Conflicts = BTreeMap<(ClusterKey, (String, String)), Vec<Option<Conflict>>>;

fn hostname_text(h: Option<&str>) -> String {
    match h {
        Some(h) => format!("hostname {h}"),
        None => "no hostname".to_string(),
    }
}

/// One listener, located.
struct At<'a> {
    cluster: &'a ClusterKey,
    gateway: &'a Gateway,
    index: usize,
    protocol: Protocol,
}

impl At<'_> {
    /// The Gateway precedence of the Gateway API: oldest first, then namespace/name; fleetgate
    /// adds the cluster name so that ties across clusters are ordered too.
    fn order(&self) -> (&str, &str, &str, &str, usize) {
        let m = &self.gateway.meta;
        (
            &m.creation_timestamp,
            &m.namespace,
            &m.name,
            &self.cluster.cluster,
            self.index,
        )
    }
}

/// How two listeners on one port get along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    Compatible,
    /// Same protocol and hostname: fine across Gateways (merged), a conflict inside one.
    SameHost,
    ProtocolConflict,
}

/// Gateway API listener compatibility on one port: HTTP, HTTPS and TLS listeners of one
/// protocol are told apart by hostname; HTTPS and TLS listeners (both TLS on the wire) by SNI
/// hostname; TCP and UDP listeners (whose hostname is ignored) only by transport; any other mix
/// of protocols cannot share a port.
fn pair(a: Protocol, ha: Option<&str>, b: Protocol, hb: Option<&str>) -> Pair {
    use Protocol::*;
    let l4 = |p| matches!(p, Tcp | Udp);
    if a == b {
        if l4(a) || ha == hb {
            Pair::SameHost
        } else {
            Pair::Compatible
        }
    } else if matches!((a, b), (Https, Tls) | (Tls, Https)) {
        if ha == hb {
            Pair::ProtocolConflict
        } else {
            Pair::Compatible
        }
    } else if l4(a) && l4(b) {
        Pair::Compatible
    } else {
        Pair::ProtocolConflict
    }
}

/// Every listener conflict of the fleet; `served` tells whether a listener passes its own checks
/// (`super::listener::check`), which it must to hold a port against younger Gateways; `origin`
/// names (`namespace/name`) the ListenerSet a Gateway's listener came from (`None`: the Gateway's own);
/// `own_address` tells the Gateways served on their own address (`super::own_address`), which
/// share no port with other Gateways.
pub fn conflicts<'a>(
    intent: impl IntoIterator<Item = (&'a ClusterKey, &'a ClusterIntent)>,
    served: impl Fn(&Listener) -> bool,
    origin: impl Fn(&ClusterKey, &(String, String), usize) -> Option<String>,
    own_address: impl Fn(&ClusterKey, &(String, String)) -> bool,
) -> Conflicts {
    // (tenant, port) -> listeners with a known protocol.
    let mut groups: BTreeMap<(&str, u16), Vec<At<'_>>> = BTreeMap::new();
    for (ck, ci) in intent {
        for gw in ci.gateways.values() {
            for (index, l) in gw.listeners.iter().enumerate() {
                let Some(protocol) = l.protocol else { continue };
                groups.entry((&ck.tenant, l.port)).or_default().push(At {
                    cluster: ck,
                    gateway: gw,
                    index,
                    protocol,
                });
            }
        }
    }
    let mut out = Conflicts::new();
    let mut mark = |at: &At<'_>, c: Conflict| {
        let key = (
            at.cluster.clone(),
            (
                at.gateway.meta.namespace.clone(),
                at.gateway.meta.name.clone(),
            ),
        );
        let v = out
            .entry(key)
            .or_insert_with(|| vec![None; at.gateway.listeners.len()]);
        // A listener keeps its first conflict.
        if v[at.index].is_none() {
            v[at.index] = Some(c);
        }
    };
    for ((_, port), mut group) in groups {
        group.sort_by(|a, b| a.order().cmp(&b.order()));
        // Listeners that lose to an earlier origin of their Gateway (the Gateway's own
        // listeners, then older ListenerSets) are out: they no longer conflict with the
        // listeners of their own origin (upstream `ListenerSetProtocolConflict`: a ListenerSet's
        // TCP listener on the Gateway's HTTP port loses, its HTTP siblings stay served).
        // Decided in merged order, so a listener that lost holds nothing against later ones.
        let mut lost = vec![false; group.len()];
        for i in 0..group.len() {
            let a = &group[i];
            let la = &a.gateway.listeners[a.index];
            let ka = (
                a.gateway.meta.namespace.clone(),
                a.gateway.meta.name.clone(),
            );
            lost[i] = (0..group.len()).any(|j| {
                let b = &group[j];
                let lb = &b.gateway.listeners[b.index];
                !lost[j]
                    && a.cluster == b.cluster
                    && std::ptr::eq(a.gateway, b.gateway)
                    && b.index < a.index
                    && origin(a.cluster, &ka, a.index) != origin(b.cluster, &ka, b.index)
                    && pair(
                        a.protocol,
                        la.hostname.as_deref(),
                        b.protocol,
                        lb.hostname.as_deref(),
                    ) != Pair::Compatible
            });
        }
        for (i, a) in group.iter().enumerate() {
            let la = &a.gateway.listeners[a.index];
            for (j, b) in group.iter().enumerate() {
                if i == j {
                    continue;
                }
                let lb = &b.gateway.listeners[b.index];
                let same_gateway = a.cluster == b.cluster && std::ptr::eq(a.gateway, b.gateway);
                let p = pair(
                    a.protocol,
                    la.hostname.as_deref(),
                    b.protocol,
                    lb.hostname.as_deref(),
                );
                let gk = |at: &At<'_>| {
                    (
                        at.gateway.meta.namespace.clone(),
                        at.gateway.meta.name.clone(),
                    )
                };
                if same_gateway {
                    let (oa, ob) = (
                        origin(a.cluster, &gk(a), a.index),
                        origin(b.cluster, &gk(b), b.index),
                    );
                    if oa != ob {
                        // Listeners of different origins (the Gateway, its ListenerSets): the
                        // one earlier in the merged list wins.
                        if p != Pair::Compatible && b.index < a.index && !lost[j] {
                            let what = match &ob {
                                None => format!("listener {} of the Gateway", lb.name),
                                Some(o) => format!("listener {} of ListenerSet {o}", lb.name),
                            };
                            let c = format!(
                                "{what}, which takes precedence, uses port {port} with protocol {} and {}; give this listener another hostname or port",
                                lb.protocol_name,
                                hostname_text(lb.hostname.as_deref())
                            );
                            mark(
                                a,
                                if p == Pair::SameHost {
                                    Conflict::Hostname(c)
                                } else {
                                    Conflict::Protocol(c)
                                },
                            );
                        }
                        continue;
                    }
                    if lost[i] || lost[j] {
                        continue;
                    }
                    match p {
                        Pair::Compatible => {}
                        Pair::SameHost => mark(
                            a,
                            Conflict::Hostname(format!(
                                "listener {} of this Gateway uses the same port {port}, protocol {} and {}; give each listener its own hostname or port",
                                lb.name,
                                la.protocol_name,
                                hostname_text(la.hostname.as_deref())
                            )),
                        ),
                        Pair::ProtocolConflict => mark(
                            a,
                            Conflict::Protocol(format!(
                                "listener {} of this Gateway uses port {port} with protocol {}, which cannot share the port with {} here; use another port",
                                lb.name, lb.protocol_name, la.protocol_name
                            )),
                        ),
                    }
                } else if j < i
                    && p == Pair::ProtocolConflict
                    && !own_address(a.cluster, &gk(a))
                    && !own_address(b.cluster, &gk(b))
                    && shared(a.protocol)
                    && shared(b.protocol)
                    && served(lb)
                {
                    // Across Gateways of the tenant the older Gateway keeps the port.
                    mark(
                        a,
                        Conflict::Protocol(format!(
                            "the older Gateway {}/{} (cluster {}) serves port {port} with protocol {} in listener {}, which cannot share the port with {} here; use another port or hostname",
                            b.gateway.meta.namespace,
                            b.gateway.meta.name,
                            b.cluster.cluster,
                            lb.protocol_name,
                            lb.name,
                            la.protocol_name
                        )),
                    );
                }
            }
        }
    }
    out
}
