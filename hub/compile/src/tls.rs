//! TLS data-plane ports: HTTPS listeners (terminated with the tenant's certificates) and TLS
//! passthrough listeners (TLSRoute), side by side on one port, told apart by SNI.
//!
//! Part of the compiler (step 7), pure. `super::compile` collects, per TLS port, the accepted
//! tenant listeners ([`TlsListenerInput`]), the HTTP routes attached through HTTPS listeners
//! (hostname -> routes in precedence order) and the passthrough routes (hostname -> clusters);
//! [`build_listener`] turns them into one [`TlsListenerSnapshot`]: one chain per SNI hostname,
//! so a connection only ever sees the certificate and routes of the hostname it asked for.
//! Conflicts are settled deterministically: the first listener (cluster, Gateway, listener
//! order) of a hostname provides its certificates; a terminating chain wins over a passthrough
//! one for the same hostname.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::attach;
use super::hostname::{belongs_to_more_specific, covers};
use super::listener::ListenerProblem;
use super::names;
use super::snapshot::ClusterSnapshot;
use super::snapshot::{
    ListenerSnapshot, Route, SecretSnapshot, SourceObject, TlsChain, TlsChainAction,
    TlsListenerSnapshot, VirtualHost, WeightedCluster,
};
use crate::model::data_plane::DataPlaneListener;
use crate::model::{
    AppProtocol, ClusterIntent, ClusterKey, Condition, Kind, ListenerTls, ObjectKey, ObjectStatus,
    RouteParentStatus, TlsMode, TlsRoute,
};

/// Routes attached per Gateway (namespace, name), per listener: the set of routes.
pub type Attached = BTreeMap<(String, String), Vec<BTreeSet<(String, String)>>>;

/// Listeners checks of a cluster's Gateways, by (namespace, name), in listener order.
pub type Problems<'a> = BTreeMap<&'a (String, String), Vec<Option<ListenerProblem>>>;

/// Passthrough hostnames per data-plane port (`*`: a hostname-less pair on an own address).
pub type PassthroughByPort = BTreeMap<u16, BTreeMap<String, Passthrough>>;

/// Where TLSRoutes of a cluster land: the shared ports, and the Gateways served on their own
/// address (`super::own_address`), each with its own hostnames.
pub struct TlsTargets<'a> {
    pub shared: &'a mut PassthroughByPort,
    pub own_addresses: &'a super::own_address::OwnAddresses,
    pub own: &'a mut BTreeMap<(String, String), PassthroughByPort>,
}

/// Attaches every TLSRoute of cluster `ck` to the TLS (passthrough) listeners of its parents:
/// adds their hostnames to `passthrough` (per data-plane port; the first route of a hostname
/// wins), their backends to `clusters`, counts them in `attached` (keyed
/// `("TLSRoute/<ns>", name)` so they never collide with HTTPRoutes) and returns their statuses.
pub fn attach_tls_routes(
    ck: &ClusterKey,
    ci: &ClusterIntent,
    merged: &super::listener_set::Merged<'_>,
    problems: &Problems<'_>,
    targets: TlsTargets<'_>,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
    attached: &mut Attached,
) -> Vec<ObjectStatus> {
    let mut out = Vec::new();
    for route in ci.tls_routes.values() {
        let src = super::source(ck, Kind::TlsRoute, &route.meta.namespace, &route.meta.name);
        let resolved = resolved_refs(route);
        let mut backends: Option<Vec<WeightedCluster>> = None;
        let mut parents = Vec::new();
        for pref in &route.parent_refs {
            let (gkey, gw, scope) = merged.parent(ck, ci, pref);
            // TLSRoutes attach to TLS (passthrough) listeners only: `attach` filters by the
            // listeners' kinds, so a parent with only HTTP/HTTPS listeners gives
            // NotAllowedByListeners (upstream `TLSRouteInvalidNoMatchingListener`).
            let valid: Vec<bool> = match problems.get(&gkey) {
                Some(ps) => ps.iter().map(Option::is_none).collect(),
                None => Vec::new(),
            };
            // On a Gateway's own address a hostname-less pair passes every SNI (or none)
            // through: nothing of another tenant arrives there.
            let is_own = targets.own_addresses.get(ck, &gkey).is_some();
            let attach_fn = if is_own {
                attach::attach_every_host
            } else {
                attach::attach
            };
            let accepted = match attach_fn(
                "TLSRoute",
                &route.meta.namespace,
                &route.hostnames,
                pref,
                gw,
                scope,
                &valid,
            ) {
                Ok(atts) => {
                    let gw = gw.expect("attach succeeds only with a gateway");
                    let wcs = backends
                        .get_or_insert_with(|| tls_backends(ck, route, &src, clusters))
                        .clone();
                    for att in atts {
                        let counts = attached
                            .entry(gkey.clone())
                            .or_insert_with(|| vec![BTreeSet::new(); gw.listeners.len()]);
                        counts[att.listener].insert((
                            format!("TLSRoute/{}", route.meta.namespace),
                            route.meta.name.clone(),
                        ));
                        let port = gw.listeners[att.listener].port;
                        let passthrough = if is_own {
                            targets.own.entry(gkey.clone()).or_default()
                        } else {
                            &mut *targets.shared
                        };
                        for host in att.hostnames {
                            passthrough
                                .entry(port)
                                .or_default()
                                .entry(host)
                                .or_insert_with(|| Passthrough {
                                    clusters: wcs.clone(),
                                    source: src.clone(),
                                });
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
        out.push(ObjectStatus {
            key: ObjectKey {
                kind: Kind::TlsRoute,
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
        });
    }
    out
}

/// The route's ResolvedRefs condition: False with the first backend problem, if any.
fn resolved_refs(route: &TlsRoute) -> Condition {
    match route
        .rules
        .iter()
        .flat_map(|r| &r.backends)
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
    }
}

/// The clusters of every resolved backend (weight > 0) of a TLSRoute, added to `clusters`.
fn tls_backends(
    ck: &ClusterKey,
    route: &TlsRoute,
    src: &SourceObject,
    clusters: &mut BTreeMap<String, ClusterSnapshot>,
) -> Vec<WeightedCluster> {
    let mut out = Vec::new();
    for (ri, rule) in route.rules.iter().enumerate() {
        for (bi, b) in rule.backends.iter().enumerate() {
            if b.weight == 0 || b.problem.is_some() {
                continue;
            }
            let name =
                names::tls_backend_cluster(ck, &route.meta.namespace, &route.meta.name, ri, bi);
            clusters.insert(
                name.clone(),
                ClusterSnapshot {
                    name: name.clone(),
                    endpoints: b.endpoints.to_vec(),
                    // TLS passthrough is plain TCP: the application protocol does not apply.
                    protocol: AppProtocol::default(),
                    sources: vec![Arc::new(src.clone())],
                },
            );
            out.push(WeightedCluster::new(name, b.weight));
        }
    }
    out
}

/// One accepted HTTPS or TLS tenant listener on a TLS data-plane port.
#[derive(Debug, Clone)]
pub struct TlsListenerInput<'a> {
    pub cluster: &'a ClusterKey,
    /// The listener's hostname (required on TLS ports).
    pub hostname: &'a str,
    pub tls: &'a ListenerTls,
    /// The Gateway the listener belongs to.
    pub gateway: SourceObject,
}

/// The domains a terminating chain for SNI name `own` answers with 421: `*` (any host it does
/// not serve) and every other chain's name that `own` covers (hosts of a more specific chain,
/// which a wildcard virtual host of this chain would otherwise take).
pub fn misdirected_domains(own: &str, sni_names: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = sni_names
        .iter()
        .filter(|n| **n != own && covers(own, n))
        .map(|n| n.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    out.insert(0, "*".to_string());
    out
}

/// A TLSRoute's hostname on a passthrough listener: where its connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    pub clusters: Vec<WeightedCluster>,
    pub source: SourceObject,
}

/// Builds the TLS data-plane listener of `dl`; `None` when no hostname is served on it (Envoy
/// would refuse a listener without filter chains). Secrets the chains use are added to
/// `secrets`.
pub fn build_listener(
    dl: &DataPlaneListener,
    inputs: &[TlsListenerInput<'_>],
    http_hosts: &BTreeMap<String, Vec<Route>>,
    passthrough: &BTreeMap<String, Passthrough>,
    secrets: &mut BTreeMap<String, SecretSnapshot>,
) -> Option<TlsListenerSnapshot> {
    let mut chains: BTreeMap<String, TlsChain> = BTreeMap::new();
    let mut gateways = BTreeSet::new();
    // Every SNI name with a chain of its own on this port: a host one of them covers more
    // specifically than a chain's own name belongs to that chain, not this one.
    let sni_names: Vec<&str> = inputs
        .iter()
        .map(|i| i.hostname)
        .chain(passthrough.keys().map(String::as_str))
        .collect();
    for input in inputs {
        gateways.insert(input.gateway.clone());
        if input.tls.mode != TlsMode::Terminate || chains.contains_key(input.hostname) {
            continue;
        }
        let mut secret_names = Vec::new();
        for c in &input.tls.certificates {
            let name = names::secret(input.cluster, &c.namespace, &c.name);
            secrets
                .entry(name.clone())
                .or_insert_with(|| SecretSnapshot {
                    name: name.clone(),
                    cert_chain_pem: c.cert_chain_pem.clone(),
                    private_key_pem: c.private_key_pem.clone(),
                    source: Some(input.gateway.clone()),
                });
            secret_names.push(name);
        }
        if secret_names.is_empty() {
            continue;
        }
        let chain_name = names::tls_chain(dl.port, input.hostname);
        let mut virtual_hosts: Vec<Arc<VirtualHost>> = http_hosts
            .iter()
            .filter(|(host, _)| {
                covers(input.hostname, host)
                    && !belongs_to_more_specific(
                        Some(input.hostname),
                        host,
                        sni_names.iter().copied().map(Some),
                    )
            })
            .map(|(host, routes)| {
                Arc::new(VirtualHost {
                    name: names::virtual_host(dl.port, host),
                    domains: vec![host.clone()],
                    routes: routes.clone(),
                    rate_limit: None,
                })
            })
            .collect();
        // Any other Host on this connection was meant for another chain (or nobody): 421,
        // also the names of more specific chains, which this chain's wildcard would cover.
        virtual_hosts.push(Arc::new(super::misdirected(
            dl.port,
            misdirected_domains(input.hostname, &sni_names),
        )));
        chains.insert(
            input.hostname.to_string(),
            TlsChain {
                name: chain_name.clone(),
                server_names: vec![input.hostname.to_string()],
                action: TlsChainAction::Terminate {
                    secrets: secret_names,
                    http: ListenerSnapshot {
                        name: chain_name,
                        port: dl.port,
                        bind: dl.bind,
                        virtual_hosts,
                        gateways: [input.gateway.clone()].into(),
                    },
                },
            },
        );
    }
    for (host, p) in passthrough {
        chains.entry(host.clone()).or_insert_with(|| TlsChain {
            name: names::tls_chain(dl.port, host),
            server_names: vec![host.clone()],
            action: TlsChainAction::Passthrough {
                clusters: p.clusters.clone(),
                source: p.source.clone(),
                max_connections: None,
            },
        });
    }
    if chains.is_empty() {
        return None;
    }
    let mut chains: Vec<TlsChain> = chains.into_values().collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    Some(TlsListenerSnapshot {
        name: names::listener(dl.port),
        port: dl.port,
        bind: dl.bind,
        chains,
        gateways,
    })
}
