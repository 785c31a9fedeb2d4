//! Property test of tenant isolation (issue 4, "Proof"): generated intents of two tenants go
//! through the real admission and store (`Fleet::apply`, with hub restarts in between), the real
//! compiler (`run::compile_view`) and the real Envoy translation (`xds::resources::build`), and
//! both the compiled snapshot and the Envoy resources must satisfy, whatever was sent:
//!
//! - a hostname a tenant serves routes only to endpoints inside the CIDRs of that tenant's
//!   clusters (never another tenant's, never anywhere else);
//! - no hostname is served to two tenants (no two served hostname patterns of different tenants
//!   overlap), and a tenant only serves hostnames its allowed patterns cover;
//! - no loopback, link-local, unspecified, multicast or broadcast endpoint appears unless the
//!   operator allowed special addresses for that cluster, and no endpoint leads to the hub or
//!   the data plane.
//!
//! Endpoints are judged by where the kernel connects, not by how the address is written: the
//! oracle takes every destination of an address from `admit::endpoint::destinations` (the
//! unspecified address is this host's loopback, IPv4-mapped/compatible, NAT64, 6to4 and Teredo
//! addresses lead to the IPv4 address they carry) and judges each one with its own copy of the
//! rules, including this host's interface addresses for listeners bound to all interfaces.
//!
//! The generator draws hostnames from both tenants' allowed patterns, from a pattern both are
//! allowed (so that ownership, not the allowlist, decides) and from hostile ones; endpoints from
//! both tenants' CIDRs, loopback, link-local, unspecified, multicast, the hub's own listeners,
//! the data plane's address, this host's interface addresses, and IPv6 forms embedding each.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, route, route_action};
use fleetgate_hub::admit::endpoint::destinations;
use fleetgate_hub::admit::patterns_overlap;
use fleetgate_hub::compile::names::INVALID_BACKEND_CLUSTER;
use fleetgate_hub::compile::{RouteAction, Snapshot, TlsChainAction, VirtualHost};
use fleetgate_hub::config::Config;
use fleetgate_hub::fleet::Fleet;
use fleetgate_hub::model::ClusterKey;
use fleetgate_hub::store::Store;
use fleetgate_hub::xds::XdsHealth;
use fleetgate_hub::xds::resources::{self, ENDPOINT_TYPE, ROUTE_TYPE};
use fleetgate_proto::spoke::v1 as pb;
use proptest::prelude::*;
use prost::Message;

mod support;
use support::{Listen, http_gateway, object_ref};

/// The hub's own listeners and the data plane's address, placed INSIDE tenant CIDRs so that only
/// the "own address" rule can keep them out.
const AGENT_LISTEN: &str = "10.1.0.1:7443";
const XDS_LISTEN: &str = "127.0.0.1:18000";
const DATA_PLANE_ADDRESS: &str = "10.3.0.1";
const DATA_PLANE_BIND: &str = "0.0.0.0:18080";
/// This host's interface addresses (given to the fleet as `crate::host` would read them), one
/// inside alpha/a2's CIDRs and one inside beta/b1's: through them the data plane's listener bound
/// to all interfaces is reachable.
const HOST_ADDRESSES: [&str; 4] = ["127.0.0.1", "::1", "10.2.0.9", "10.3.0.7"];

/// The operator's file: tenant `alpha` has two clusters (one whose CIDRs include every special
/// range), tenant `beta` one; both may use `*.shared.example` and the `contested` names.
fn config(dir: &Path, allow_a2: bool, allow_b1: bool) -> Arc<Config> {
    let listen = Listen {
        agent: AGENT_LISTEN.into(),
        xds: XDS_LISTEN.into(),
        data_plane_address: DATA_PLANE_ADDRESS.into(),
        data_plane_bind: DATA_PLANE_BIND.into(),
    };
    let tenants = format!(
        r#"
- name: alpha
  hostnames: ['*.alpha.example', '*.shared.example', exact.contested.example]
  clusters:
  - {{name: a1, endpointCidrs: [10.1.0.0/16]}}
  - name: a2
    endpointCidrs: [10.2.0.0/16, 127.0.0.0/8, 169.254.0.0/16, 0.0.0.0/32, 224.0.0.0/4, 255.255.255.255/32, '::/128', '::1/128', 'fe80::/10', 'ff00::/8', '::/96', '64:ff9b::/96', '64:ff9b:1::/48', '2002::/16', '2001::/32']
    allowSpecialAddresses: {allow_a2}
- name: beta
  hostnames: ['*.beta.example', '*.shared.example', '*.contested.example', exact.contested.example]
  clusters:
  - name: b1
    endpointCidrs: [10.3.0.0/16, 127.0.0.0/8, 169.254.0.0/16, 0.0.0.0/8, 224.0.0.0/4, '::/128', '::1/128', 'fe80::/10', 'ff00::/8', '64:ff9b::/96', '2002::/16']
    allowSpecialAddresses: {allow_b1}
"#
    );
    // Gateways with a hostname-less listener get an address of their own from this pool
    // (three addresses for up to six such Gateways, so it runs out too).
    let pools = "addressPools: [{name: own, addresses: [10.9.0.1, 10.9.0.2, 10.9.0.3]}]\nl4PortRange: {from: 80, to: 81}";
    Arc::new(support::config(dir, &listen, pools, &tenants))
}

const CLUSTERS: [(&str, &str); 3] = [("alpha", "a1"), ("alpha", "a2"), ("beta", "b1")];

/// Hostnames the tenant of cluster `c` is allowed (its own and the shared/contested ones),
/// mostly, and any other hostname sometimes.
fn hostname(c: usize) -> impl Strategy<Value = &'static str> {
    let own: &'static [&'static str] = if CLUSTERS[c].0 == "alpha" {
        &HOSTNAMES[..8]
    } else {
        &HOSTNAMES[3..12]
    };
    prop_oneof![5 => prop::sample::select(own), 1 => prop::sample::select(HOSTNAMES)]
}

/// Indexes 0 to 7 are alpha's (the shared and contested ones from index 3), indexes 3 to 11
/// beta's; the rest nobody's.
const HOSTNAMES: &[&str] = &[
    "app.alpha.example",
    "*.alpha.example",
    "APP.Alpha.Example",
    "x.shared.example",
    "*.shared.example",
    "deep.x.shared.example",
    "*.x.shared.example",
    "exact.contested.example",
    "*.contested.example",
    "y.contested.example",
    "app.beta.example",
    "*.beta.example",
    // Hostile: nobody's, too broad, malformed.
    "*.example",
    "evil.example",
    "localhost",
    "*.*.example",
    "a..b.example",
    "",
];

/// Endpoint addresses a cluster of `CLUSTERS` may plausibly use (so that routes get admitted and
/// the properties have something to bite on): its own networks, loopback for the clusters whose
/// CIDRs include it, the address of the hub's agent listener (a valid endpoint on any port but
/// 7443), this host's addresses inside its networks (valid on any port but the data plane's
/// 18080), and IPv6 forms of them.
const OWN_IPS: [&[&str]; 3] = [
    &["10.1.2.3", "10.1.0.1", "::ffff:10.1.2.3"],
    &[
        "10.2.7.7",
        "127.0.0.53",
        "127.0.0.1",
        "64:ff9b::a02:707",
        "64:ff9b::7f00:35",
        "2002:a02:707::1",
        "10.2.0.9",
        "64:ff9b::a02:9",
        "0.0.0.0",
    ],
    &[
        "10.3.4.5",
        "127.0.0.1",
        "169.254.1.1",
        "64:ff9b::a03:405",
        "10.3.0.7",
        "::ffff:0.0.0.0",
    ],
];
/// Everything else: the other clusters' networks, special addresses, the data plane's address,
/// names the hub must not resolve.
const HOSTILE_IPS: &[&str] = &[
    "10.1.2.3",
    "10.2.7.7",
    "10.3.4.5",
    "10.3.0.1",
    "10.9.9.9",
    "127.0.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "ff02::1",
    "::ffff:10.1.2.3",
    "backend.default.svc.cluster.local",
    // Issue 8: the unspecified address, this host's interface addresses, and IPv6 forms that
    // embed loopback, the host's addresses or the data plane's address.
    "::ffff:0.0.0.0",
    "::ffff:127.0.0.1",
    "10.2.0.9",
    "10.3.0.7",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a02:9",
    "64:ff9b::a03:1",
    "64:ff9b:1::7f00:1",
    "64:ff9b:1:7f00:0:100::",
    "2002:7f00:1::",
    "2002:a03:7::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
];

/// Ports: mostly ordinary, sometimes the hub's and the data plane's own, sometimes invalid.
const PLAUSIBLE_PORTS: &[u32] = &[8080, 30080];
const HOSTILE_PORTS: &[u32] = &[7443, 18000, 18080, 80, 0, 70000];

fn endpoint(c: usize) -> impl Strategy<Value = pb::Endpoint> {
    (
        prop_oneof![12 => prop::sample::select(OWN_IPS[c]), 1 => prop::sample::select(HOSTILE_IPS)],
        prop_oneof![
            8 => prop::sample::select(PLAUSIBLE_PORTS),
            // The data plane's port, bound to all interfaces (reached through this host's
            // addresses and loopback), and the xDS port on 127.0.0.1 (reached through the
            // unspecified address), in whatever form the address is written.
            2 => prop::sample::select(&[18080u32, 18000][..]),
            1 => prop::sample::select(HOSTILE_PORTS),
        ],
        prop::bool::weighted(0.9),
    )
        .prop_map(|(ip, port, ready)| pb::Endpoint {
            address: ip.to_string(),
            port,
            ready,
        })
}

fn backend(c: usize) -> impl Strategy<Value = pb::Backend> {
    (
        prop::sample::select(&["svc", "other"][..]),
        0u32..3,
        prop::collection::vec(endpoint(c), 0..3),
    )
        .prop_map(|(name, weight, endpoints)| pb::Backend {
            namespace: "default".into(),
            name: name.into(),
            port: 8080,
            weight,
            endpoints,
            ..Default::default()
        })
}

fn rule(c: usize) -> impl Strategy<Value = pb::HttpRouteRule> {
    (
        prop::collection::vec(backend(c), 0..3),
        prop::option::weighted(0.2, backend(c)),
        prop::sample::select(&["/", "/api", "/x"][..]),
    )
        .prop_map(|(backends, mirror, path)| pb::HttpRouteRule {
            matches: vec![pb::HttpRouteMatch {
                path: Some(pb::PathMatch {
                    r#type: pb::path_match::Type::PathPrefix as i32,
                    value: path.into(),
                }),
                ..Default::default()
            }],
            filters: mirror
                .map(|b| pb::HttpFilter {
                    kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
                        backend: Some(b),
                        numerator: 0,
                        denominator: 0,
                    })),
                })
                .into_iter()
                .collect(),
            backends,
            ..Default::default()
        })
}

fn gateway(c: usize) -> impl Strategy<Value = pb::Object> {
    (
        prop::sample::select(&["gw", "gw2"][..]),
        prop::collection::vec(
            (
                // A listener without a hostname takes the routes' hostnames.
                prop_oneof![2 => Just(""), 3 => hostname(c)],
                prop_oneof![6 => Just(80u32), 1 => Just(81u32)],
            ),
            1..3,
        ),
    )
        .prop_map(|(name, listeners)| pb::Object {
            r#ref: Some(object_ref(pb::Kind::Gateway, name)),
            generation: 1,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
            spec: Some(pb::object::Spec::Gateway(pb::Gateway {
                gateway_class_name: "fleetgate".into(),
                listeners: listeners
                    .into_iter()
                    .enumerate()
                    .map(|(i, (hostname, port))| pb::Listener {
                        name: format!("l{i}"),
                        protocol: "HTTP".into(),
                        port,
                        hostname: hostname.into(),
                        allowed_routes: None,
                        tls: None,
                    })
                    .collect(),
                allowed_listeners: None,
                ..Default::default()
            })),
        })
}

fn http_route(c: usize) -> impl Strategy<Value = pb::Object> {
    (
        prop::sample::select(&["r1", "r2", "r3"][..]),
        prop_oneof![
            3 => Just(vec!["gw"]),
            1 => Just(vec!["gw2"]),
            1 => Just(vec!["gw", "gw2"]),
        ],
        prop::collection::vec(hostname(c), 0..3),
        prop::collection::vec(rule(c), 1..3),
    )
        .prop_map(|(name, parents, hostnames, rules)| pb::Object {
            r#ref: Some(object_ref(pb::Kind::HttpRoute, name)),
            generation: 1,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
            spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
                parent_refs: parents
                    .into_iter()
                    .map(|p| pb::ParentRef {
                        namespace: "default".into(),
                        name: p.into(),
                        ..Default::default()
                    })
                    .collect(),
                hostnames: hostnames.into_iter().map(str::to_string).collect(),
                rules,
            })),
        })
}

/// One thing that happens to the hub.
#[derive(Debug, Clone)]
enum Step {
    /// An agent Update from cluster `CLUSTERS[.0]`.
    Update(usize, pb::Update),
    /// The hub restarts: accepted intent and hostname claims are reloaded from the store.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..CLUSTERS.len()).prop_flat_map(|c| (
            Just(c),
            prop::bool::weighted(0.3),
            prop::collection::vec(prop_oneof![gateway(c), http_route(c)], 1..5),
            prop::collection::vec(
                prop::sample::select(&[("r1", pb::Kind::HttpRoute), ("gw", pb::Kind::Gateway)][..]),
                0..2,
            ),
        ))
            .prop_map(|(c, full_state, upserts, deletes)| Step::Update(
                c,
                pb::Update { traceparent: String::new(),
                    revision: 0,
                    full_state,
                    upserts,
                    deletes: deletes
                        .into_iter()
                        .map(|(n, k)| object_ref(k, n))
                        .collect(),
                }
            )),
        1 => Just(Step::Restart),
    ]
}

fn host_addresses() -> BTreeSet<IpAddr> {
    HOST_ADDRESSES.iter().map(|a| a.parse().unwrap()).collect()
}

/// What the operator's configuration says an endpoint of `cluster` may be, written
/// independently of admission except for where a connection goes (`destinations`, the one rule
/// of issue 8): every destination is judged.
fn endpoint_allowed(config: &Config, cluster: &ClusterKey, addr: SocketAddr) -> Result<(), String> {
    for d in destinations(addr.ip()) {
        destination_allowed(config, cluster, SocketAddr::new(d.ip, addr.port()))
            .map_err(|e| format!("{addr} leads to {} ({:?}): {e}", d.ip, d.via))?;
    }
    Ok(())
}

fn destination_allowed(
    config: &Config,
    cluster: &ClusterKey,
    addr: SocketAddr,
) -> Result<(), String> {
    let c = &config.tenants[&cluster.tenant].clusters[&cluster.cluster];
    let ip = addr.ip();
    if !c.endpoint_cidrs.iter().any(|n| n.contains(&ip)) {
        return Err(format!("{addr} is outside the CIDRs of {cluster}"));
    }
    let special = match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 0
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
        }
    };
    if special && !c.allow_special_addresses {
        return Err(format!(
            "{addr} is a special address and {cluster} may not use them"
        ));
    }
    let own: Vec<SocketAddr> = [config.agent_listen, config.xds_listen]
        .into_iter()
        .chain(config.data_plane.listeners.iter().map(|l| l.bind))
        .collect();
    // This host: loopback, the unspecified address and its interface addresses.
    let local = ip.is_loopback() || ip.is_unspecified() || host_addresses().contains(&ip);
    for o in own {
        // A listener bound to the unspecified address is reachable through every local address.
        let reaches = o == addr || (o.ip().is_unspecified() && o.port() == addr.port() && local);
        if reaches {
            return Err(format!(
                "{addr} is the hub's or the data plane's own listener {o}"
            ));
        }
    }
    if ip == config.data_plane.address {
        return Err(format!("{addr} is the data plane's address"));
    }
    Ok(())
}

fn tenant_allows(config: &Config, tenant: &str, host: &str) -> bool {
    config.tenants[tenant]
        .hostnames
        .iter()
        .any(|p| fleetgate_hub::admit::pattern_covers(p, host))
}

/// `t/<tenant>/c/<cluster>/...` (see `compile::names`) -> the cluster key.
fn cluster_of_name(name: &str) -> Option<ClusterKey> {
    let mut parts = name.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("t"), Some(t), Some("c"), Some(c)) => Some(ClusterKey {
            tenant: t.to_string(),
            cluster: c.to_string(),
        }),
        _ => None,
    }
}

/// A served hostname, who serves it, and the endpoints it can reach.
#[derive(Debug)]
struct Served {
    domain: String,
    /// Served on a Gateway's own address (`compile::own_address`), where `*` is every host of
    /// that Gateway alone.
    own: bool,
    tenants: BTreeSet<String>,
    /// (the cluster the upstream belongs to, endpoint)
    endpoints: Vec<(ClusterKey, SocketAddr)>,
}

/// Snapshot side: every virtual host of every HTTP and terminating TLS listener.
fn served_by_snapshot(s: &Snapshot) -> Vec<Served> {
    let clusters: BTreeMap<&str, _> = s.clusters.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut vhosts: Vec<(bool, &VirtualHost)> = s
        .listeners
        .iter()
        .flat_map(|l| {
            let own = l.name.starts_with("own/");
            l.virtual_hosts.iter().map(move |v| (own, &**v))
        })
        .collect();
    for l in &s.tls_listeners {
        for c in &l.chains {
            if let TlsChainAction::Terminate { http, .. } = &c.action {
                let own = l.name.starts_with("own/");
                vhosts.extend(http.virtual_hosts.iter().map(|v| (own, &**v)));
            }
        }
    }
    let mut out = Vec::new();
    for (own, vh) in vhosts {
        let mut tenants = BTreeSet::new();
        let mut endpoints = Vec::new();
        for r in &vh.routes {
            if let Some(src) = &r.source {
                tenants.insert(src.cluster.tenant.clone());
            }
            let RouteAction::Forward(f) = &r.action else {
                continue;
            };
            let names = f
                .clusters
                .iter()
                .map(|w| w.cluster.as_str())
                .chain(f.mirrors.iter().map(|m| m.cluster.as_str()));
            for name in names.filter(|n| *n != INVALID_BACKEND_CLUSTER) {
                let c = clusters
                    .get(name)
                    .unwrap_or_else(|| panic!("route to a cluster not in the snapshot: {name}"));
                let owner = c
                    .owner()
                    .cloned()
                    .unwrap_or_else(|| panic!("tenant route to fleetgate's own cluster {name}"));
                tenants.insert(owner.tenant.clone());
                endpoints.extend(c.endpoints.iter().map(|e| (owner.clone(), *e)));
            }
        }
        for d in &vh.domains {
            out.push(Served {
                domain: d.clone(),
                own,
                tenants: tenants.clone(),
                endpoints: endpoints.clone(),
            });
        }
    }
    out
}

/// Envoy side: RouteConfiguration virtual host domains -> route clusters (and mirrors) ->
/// ClusterLoadAssignment endpoints, decoded from the resources Envoy would receive.
fn served_by_envoy(s: &Snapshot) -> Vec<Served> {
    let res = resources::build(s);
    let mut cla: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    for r in res.of(ENDPOINT_TYPE) {
        let a = ClusterLoadAssignment::decode(r.any.value.as_slice()).expect("CLA decodes");
        let eps = a
            .endpoints
            .iter()
            .flat_map(|l| &l.lb_endpoints)
            .map(|e| {
                let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
                    panic!("endpoint without an address in {}", a.cluster_name)
                };
                let sa = match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
                    Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(sa)) => sa,
                    other => panic!("not a socket address: {other:?}"),
                };
                let port = match sa.port_specifier {
                    Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p)) => p,
                    _ => panic!("no port"),
                };
                SocketAddr::new(
                    sa.address.parse().expect("Envoy endpoints are IP literals"),
                    u16::try_from(port).expect("port fits"),
                )
            })
            .collect();
        cla.insert(a.cluster_name.clone(), eps);
    }
    let mut out = Vec::new();
    // A port with one RouteConfiguration per hostname (scoped routes, `xds::scoped`) has no
    // catch-all virtual host: a Host no scope is keyed on gets Envoy's 404, which is what the
    // snapshot's catch-all `*` answers. It serves no tenant.
    for r in res.of(fleetgate_hub::xds::resources::LISTENER_TYPE) {
        use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
        use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
            HttpConnectionManager, http_connection_manager::RouteSpecifier,
        };
        let l = Listener::decode(r.any.value.as_slice()).expect("LDS decodes");
        let scoped = l.filter_chains.iter().flat_map(|c| &c.filters).any(|f| {
            let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                return false;
            };
            HttpConnectionManager::decode(any.value.as_slice())
                .is_ok_and(|h| matches!(h.route_specifier, Some(RouteSpecifier::ScopedRoutes(_))))
        });
        if scoped {
            out.push(Served {
                domain: "*".to_string(),
                own: false,
                tenants: BTreeSet::new(),
                endpoints: Vec::new(),
            });
        }
    }
    for r in res.of(ROUTE_TYPE) {
        let rc = RouteConfiguration::decode(r.any.value.as_slice()).expect("RDS decodes");
        let own = rc.name.starts_with("own/");
        for vh in &rc.virtual_hosts {
            let mut tenants = BTreeSet::new();
            let mut endpoints = Vec::new();
            for route in &vh.routes {
                if let Some(ck) = cluster_of_name(&route.name) {
                    tenants.insert(ck.tenant);
                }
                let Some(route::Action::Route(a)) = &route.action else {
                    continue;
                };
                let mut names: Vec<&str> = match &a.cluster_specifier {
                    Some(route_action::ClusterSpecifier::Cluster(c)) => vec![c.as_str()],
                    Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                        w.clusters.iter().map(|c| c.name.as_str()).collect()
                    }
                    other => panic!("unexpected cluster specifier {other:?}"),
                };
                names.extend(a.request_mirror_policies.iter().map(|m| m.cluster.as_str()));
                for name in names.into_iter().filter(|n| *n != INVALID_BACKEND_CLUSTER) {
                    let owner = cluster_of_name(name)
                        .unwrap_or_else(|| panic!("tenant route to a non-tenant cluster {name}"));
                    tenants.insert(owner.tenant.clone());
                    let eps = cla.get(name).unwrap_or_else(|| {
                        panic!("route to a cluster without endpoints resource: {name}")
                    });
                    endpoints.extend(eps.iter().map(|e| (owner.clone(), *e)));
                }
            }
            for d in &vh.domains {
                out.push(Served {
                    domain: d.clone(),
                    own,
                    tenants: tenants.clone(),
                    endpoints: endpoints.clone(),
                });
            }
        }
    }
    out
}

/// The three isolation properties over one view of what is served.
fn check_isolation(config: &Config, served: &[Served], what: &str) -> Result<(), TestCaseError> {
    let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in served {
        prop_assert!(
            s.tenants.len() <= 1,
            "{what}: hostname {} is served to several tenants: {:?}",
            s.domain,
            s.tenants
        );
        let Some(tenant) = s.tenants.first() else {
            // fleetgate's own catch-all (404), no tenant route in it.
            prop_assert!(s.endpoints.is_empty());
            continue;
        };
        // Every host on a Gateway's own address: checked by `check_own_addresses` (only that
        // Gateway's tenant arrives there); it is no hostname claim.
        let every_host = s.own && s.domain == "*";
        prop_assert!(
            every_host || s.domain != "*",
            "{what}: a tenant route for every host on a shared port"
        );
        prop_assert!(
            every_host || tenant_allows(config, tenant, &s.domain),
            "{what}: tenant {tenant} serves {}, which its allowed patterns do not cover",
            s.domain
        );
        if !every_host {
            by_tenant.entry(tenant).or_default().push(&s.domain);
        }
        for (owner, addr) in &s.endpoints {
            prop_assert_eq!(
                &owner.tenant,
                tenant,
                "{}: {} of tenant {} routes to {} of another tenant's cluster {}",
                what,
                &s.domain,
                tenant,
                addr,
                owner
            );
            if let Err(e) = endpoint_allowed(config, owner, *addr) {
                return Err(TestCaseError::fail(format!(
                    "{what}: {} of tenant {tenant} routes to a forbidden endpoint: {e}",
                    s.domain
                )));
            }
        }
    }
    let tenants: Vec<_> = by_tenant.iter().collect();
    for (i, (t1, d1)) in tenants.iter().enumerate() {
        for (t2, d2) in &tenants[i + 1..] {
            for a in d1.iter() {
                for b in d2.iter() {
                    prop_assert!(
                        !patterns_overlap(a, b),
                        "{what}: {a} of {t1} and {b} of {t2} overlap: a hostname served to two tenants"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Own addresses, judged on the decoded Envoy resources: (a) a listener bound at an address
/// the hub allocated to a Gateway routes (through its RouteConfigurations, to clusters, to
/// endpoints) only to that Gateway's tenant; (b) no two tenants share an allocated (address,
/// port), and no two Envoy listeners bind the same socket. Returns how many own-address
/// listeners routed to some endpoint.
fn check_own_addresses(
    view: &fleetgate_hub::fleet::FleetView,
    s: &Snapshot,
) -> Result<usize, TestCaseError> {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    use envoy_types::pb::envoy::config::listener::v3::{Listener, filter};
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    use fleetgate_hub::xds::resources::LISTENER_TYPE;
    // (b) on the allocations: one tenant per (address, port).
    let mut owners: BTreeMap<SocketAddr, BTreeSet<&str>> = BTreeMap::new();
    for (k, a) in &view.allocations {
        owners
            .entry(*a)
            .or_default()
            .insert(&k.service.cluster.tenant);
    }
    for (a, t) in &owners {
        prop_assert!(t.len() == 1, "{a} is allocated to several tenants: {t:?}");
    }
    let res = resources::build(s);
    let routes: BTreeMap<&str, RouteConfiguration> = res
        .of(ROUTE_TYPE)
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                RouteConfiguration::decode(r.any.value.as_slice()).expect("RDS decodes"),
            )
        })
        .collect();
    let clusters: BTreeSet<&str> = res
        .of(ENDPOINT_TYPE)
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let mut binds = BTreeSet::new();
    let mut routed = 0;
    for r in res.of(LISTENER_TYPE) {
        let l = Listener::decode(r.any.value.as_slice()).expect("LDS decodes");
        let Some(address::Address::SocketAddress(sa)) =
            l.address.as_ref().and_then(|a| a.address.as_ref())
        else {
            panic!("listener {} without a socket address", l.name)
        };
        let Some(socket_address::PortSpecifier::PortValue(port)) = sa.port_specifier else {
            panic!("no port")
        };
        let bind = SocketAddr::new(sa.address.parse().unwrap(), u16::try_from(port).unwrap());
        prop_assert!(binds.insert(bind), "two Envoy listeners bind {bind}");
        let Some(owner) = owners.get(&bind) else {
            // Not an allocated address: a shared data-plane port.
            prop_assert!(
                !l.name.starts_with("own/"),
                "{} is bound at no allocation",
                l.name
            );
            continue;
        };
        let owner = *owner.first().expect("one owner");
        // Every route table behind this listener.
        let mut tenants = BTreeSet::new();
        let mut reaches = false;
        for chain in &l.filter_chains {
            for f in &chain.filters {
                let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                    continue;
                };
                let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice()) else {
                    continue;
                };
                let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
                    continue;
                };
                let rc = &routes[rds.route_config_name.as_str()];
                for vh in &rc.virtual_hosts {
                    for route in &vh.routes {
                        if let Some(ck) = cluster_of_name(&route.name) {
                            tenants.insert(ck.tenant);
                        }
                        let Some(route::Action::Route(a)) = &route.action else {
                            continue;
                        };
                        let mut names: Vec<&str> = match &a.cluster_specifier {
                            Some(route_action::ClusterSpecifier::Cluster(c)) => vec![c.as_str()],
                            Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
                                w.clusters.iter().map(|c| c.name.as_str()).collect()
                            }
                            _ => Vec::new(),
                        };
                        names.extend(a.request_mirror_policies.iter().map(|m| m.cluster.as_str()));
                        for n in names.into_iter().filter(|n| *n != INVALID_BACKEND_CLUSTER) {
                            let ck = cluster_of_name(n).expect("a tenant cluster");
                            tenants.insert(ck.tenant);
                            reaches |= clusters.contains(n);
                        }
                    }
                }
            }
        }
        prop_assert!(
            tenants.iter().all(|t| t == owner),
            "listener {} at {bind}, allocated to {owner}, routes to tenants {tenants:?}",
            l.name
        );
        routed += usize::from(reaches && l.name.starts_with("own/"));
    }
    Ok(routed)
}

/// Every upstream cluster in the snapshot, routed or not, holds only allowed endpoints of its
/// own cluster.
fn check_all_clusters(config: &Config, s: &Snapshot) -> Result<(), TestCaseError> {
    for c in &s.clusters {
        let Some(owner) = c.owner() else { continue };
        // A cluster shared by routes (one per Service port) is shared inside one tenant
        // cluster only, and named after it.
        let prefix = format!("t/{}/c/{}/", owner.tenant, owner.cluster);
        if !c.name.starts_with(&prefix) || c.sources.iter().any(|s| &s.cluster != owner) {
            return Err(TestCaseError::fail(format!(
                "cluster {} is used by objects of other clusters: {:?}",
                c.name, c.sources
            )));
        }
        for e in &c.endpoints {
            if let Err(err) = endpoint_allowed(config, owner, *e) {
                return Err(TestCaseError::fail(format!(
                    "cluster {} holds a forbidden endpoint: {err}",
                    c.name
                )));
            }
        }
    }
    Ok(())
}

/// A folder for one case's store file: on tmpfs when there is one, since every accepted Update
/// is a durable commit and the disk's fsyncs would dominate the run time.
fn store_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("tempdir")
}

/// Runs one scenario and checks every property; returns what the Envoy resources serve and how
/// many own-address listeners routed somewhere.
fn run_case(
    allow_a2: bool,
    allow_b1: bool,
    steps: Vec<Step>,
) -> Result<(Vec<Served>, usize), TestCaseError> {
    let dir = store_dir();
    let config = config(dir.path(), allow_a2, allow_b1);
    let open = || {
        let fleet = Fleet::open(
            config.clone(),
            Store::open(&config.store_path).expect("store opens"),
        )
        .expect("fleet opens");
        // This host's addresses as the test defines them, not the machine's.
        fleet.set_host_addresses(host_addresses());
        fleet
    };
    let mut fleet = open();
    for step in steps {
        match step {
            Step::Update(c, update) => {
                let (tenant, cluster) = CLUSTERS[c];
                let key = ClusterKey {
                    tenant: tenant.into(),
                    cluster: cluster.into(),
                };
                // A refused Update (over a limit) changes nothing; the properties still hold.
                let _ = fleet.apply(&key, &update);
            }
            Step::Restart => {
                drop(fleet);
                fleet = open();
            }
        }
    }
    let view = fleet.view();
    let (snapshot, _) = fleetgate_hub::run::compile_view(&view, &config, &XdsHealth::default());
    check_all_clusters(&config, &snapshot)?;
    let own_routed = check_own_addresses(&view, &snapshot)?;
    let from_snapshot = served_by_snapshot(&snapshot);
    check_isolation(&config, &from_snapshot, "snapshot")?;
    let from_envoy = served_by_envoy(&snapshot);
    check_isolation(&config, &from_envoy, "Envoy resources")?;
    // The Envoy resources serve exactly the hostnames the snapshot does.
    let domains =
        |v: &[Served]| -> BTreeSet<String> { v.iter().map(|s| s.domain.clone()).collect() };
    prop_assert_eq!(domains(&from_snapshot), domains(&from_envoy));
    Ok((from_envoy, own_routed))
}

/// How often the generated cases got something served, so that a generator whose objects are
/// all refused (which would pass every case) fails the test instead.
#[derive(Default)]
struct Coverage {
    cases: usize,
    /// Cases whose data plane routes some hostname to at least one endpoint.
    served_endpoints: usize,
    /// Cases where both tenants serve something.
    both_tenants: usize,
    /// Cases where a special (loopback, ...) endpoint is served, in a cluster that allows them.
    special_served: usize,
    /// Cases where an endpoint written in an IPv6 form that embeds an IPv4 address is served.
    embedded_served: usize,
    /// Cases where a Gateway's own address routes to an endpoint.
    own_served: usize,
}

#[test]
fn tenants_stay_isolated_whatever_they_send() {
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    // About 5 ms per case in a debug build.
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 384,
        // Shrunk failures are printed; nothing is written next to the sources.
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let coverage = std::cell::RefCell::new(Coverage::default());
    let strategy = (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(step(), 1..10),
    );
    let result = runner.run(&strategy, |(allow_a2, allow_b1, steps)| {
        let (served, own_routed) = run_case(allow_a2, allow_b1, steps)?;
        let mut c = coverage.borrow_mut();
        c.cases += 1;
        c.own_served += usize::from(own_routed > 0);
        let with_endpoints: Vec<_> = served.iter().filter(|s| !s.endpoints.is_empty()).collect();
        c.served_endpoints += usize::from(!with_endpoints.is_empty());
        let tenants: BTreeSet<_> = served.iter().flat_map(|s| s.tenants.iter()).collect();
        c.both_tenants += usize::from(tenants.len() == 2);
        c.special_served += usize::from(
            with_endpoints
                .iter()
                .any(|s| s.endpoints.iter().any(|(_, a)| a.ip().is_loopback())),
        );
        c.embedded_served += usize::from(with_endpoints.iter().any(|s| {
            s.endpoints
                .iter()
                .any(|(_, a)| destinations(a.ip()).len() > 1)
        }));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let c = coverage.into_inner();
    // Typically about a quarter of the cases serve endpoints and a sixteenth both tenants (the
    // seed is random, so the bounds below leave room).
    eprintln!(
        "{} cases: {} served endpoints, {} served both tenants, {} served an allowed loopback endpoint, {} an embedded-IPv4 form, {} on an own address",
        c.cases,
        c.served_endpoints,
        c.both_tenants,
        c.special_served,
        c.embedded_served,
        c.own_served
    );
    assert!(
        c.own_served * 20 >= c.cases,
        "the generator rarely gets a Gateway served on its own address"
    );
    assert!(
        c.served_endpoints * 8 >= c.cases,
        "the generator rarely gets a route admitted"
    );
    assert!(
        c.both_tenants * 30 >= c.cases,
        "the generator rarely gets both tenants served"
    );
    assert!(
        c.special_served > 0,
        "no case served an allowed special endpoint"
    );
    assert!(
        c.embedded_served > 0,
        "no case served an endpoint written in an IPv6 form that embeds an IPv4 address"
    );
}

/// The generator can produce what the properties are about: without this, a generator that
/// never got anything admitted would pass every case.
#[test]
fn the_generated_scenarios_reach_the_data_plane() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true, false);
    let fleet = Fleet::open(config.clone(), Store::open(&config.store_path).unwrap()).unwrap();
    let gw = |host: &str| http_gateway("gw", "l0", host);
    let route = |host: &str, ip: &str| {
        support::http_route("r1", "gw", host, support::backend("svc", 8080, ip, 8080))
    };
    let update = |objs| pb::Update {
        traceparent: String::new(),
        revision: 1,
        full_state: true,
        upserts: objs,
        deletes: vec![],
    };
    let key = |t: &str, c: &str| ClusterKey {
        tenant: t.into(),
        cluster: c.into(),
    };
    // alpha/a2 may use loopback; beta then tries the shared wildcard alpha owns, and loopback.
    fleet
        .apply(
            &key("alpha", "a2"),
            &update(vec![
                gw("*.shared.example"),
                route("x.shared.example", "127.0.0.53"),
            ]),
        )
        .unwrap();
    fleet
        .apply(
            &key("beta", "b1"),
            &update(vec![
                gw("*.beta.example"),
                route("deep.x.shared.example", "10.3.4.5"),
            ]),
        )
        .unwrap();
    fleet
        .apply(
            &key("alpha", "a1"),
            &update(vec![
                gw("app.alpha.example"),
                route("app.alpha.example", "10.1.0.1"),
            ]),
        )
        .unwrap();
    let (snapshot, statuses) =
        fleetgate_hub::run::compile_view(&fleet.view(), &config, &XdsHealth::default());
    let served = served_by_envoy(&snapshot);
    let find = |d: &str| served.iter().find(|s| s.domain == d);
    let shared = find("x.shared.example").expect("alpha serves x.shared.example");
    assert_eq!(
        shared.endpoints,
        vec![(key("alpha", "a2"), "127.0.0.53:8080".parse().unwrap())]
    );
    assert!(find("deep.x.shared.example").is_none(), "{served:?}");
    // 10.1.0.1:8080 is fine; only the hub's own port 7443 on that address is refused.
    assert_eq!(
        find("app.alpha.example").unwrap().endpoints,
        vec![(key("alpha", "a1"), "10.1.0.1:8080".parse().unwrap())]
    );
    let beta_route = statuses[&key("beta", "b1")]
        .iter()
        .find(|s| s.key.name == "r1")
        .unwrap();
    let accepted = &beta_route.parents[0].conditions[0];
    assert_eq!(
        (
            accepted.type_.as_str(),
            accepted.status,
            accepted.reason.as_str()
        ),
        ("Accepted", false, "HostnameConflict"),
        "{accepted:?}"
    );
    run_case(true, false, vec![]).unwrap();

    // Two tenants each with a hostname-less Gateway and route: two own addresses, each
    // routing only to its tenant, accepted by the same checks.
    let open_gw = http_gateway("open", "l0", "");
    let open_route = |ip: &str| {
        let mut r =
            support::http_route("open", "open", "", support::backend("svc", 8080, ip, 8080));
        if let Some(pb::object::Spec::HttpRoute(h)) = &mut r.spec {
            h.hostnames.clear();
        }
        r
    };
    fleet
        .apply(
            &key("alpha", "a1"),
            &update(vec![open_gw.clone(), open_route("10.1.2.3")]),
        )
        .unwrap();
    fleet
        .apply(
            &key("beta", "b1"),
            &update(vec![open_gw, open_route("10.3.2.3")]),
        )
        .unwrap();
    let view = fleet.view();
    let (snapshot, _) = fleetgate_hub::run::compile_view(&view, &config, &XdsHealth::default());
    let routed = check_own_addresses(&view, &snapshot).unwrap();
    assert_eq!(routed, 2, "{:?}", snapshot.listeners);
    let served = served_by_envoy(&snapshot);
    let every = served.iter().filter(|s| s.own && s.domain == "*").count();
    assert_eq!(every, 2, "{served:?}");
}
