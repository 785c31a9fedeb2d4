//! L4 listeners -> Envoy Listeners (typed protobufs only).
//!
//! Step 8 (publish) of the hub's data path, pure, called by `super::resources::build` for every
//! [`L4ListenerSnapshot`]: a TCP listener runs `envoy.filters.network.tcp_proxy` (to one cluster,
//! or `weighted_clusters` when a TCPRoute has several backendRefs), a UDP listener (with
//! `udp_listener_config`) runs the `envoy.filters.udp_listener.udp_proxy` listener filter with a
//! match tree whose only action routes to the listener's one cluster. The clusters and
//! their endpoints (EDS) are the ordinary ones from `super::resources`.

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, ListenerFilter, UdpListenerConfig, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::filters::udp::udp_proxy::v3::{
    Route as UdpRoute, UdpProxyConfig, udp_proxy_config,
};
use envoy_types::pb::google::protobuf::Duration;
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use envoy_types::pb::xds::r#type::matcher::v3::{Matcher, matcher};
use envoy_types::util::pack_any;
use tcp_proxy::weighted_cluster::ClusterWeight;

use crate::model::L4Protocol;
use crate::snapshot::L4ListenerSnapshot;

/// Idle TCP connections and UDP sessions are closed after this long.
const IDLE_TIMEOUT_SECS: i64 = 3600;
const UDP_IDLE_TIMEOUT_SECS: i64 = 60;

fn bind_address(l: &L4ListenerSnapshot) -> Address {
    let protocol = match l.protocol {
        L4Protocol::Tcp => socket_address::Protocol::Tcp,
        L4Protocol::Udp => socket_address::Protocol::Udp,
    };
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: protocol as i32,
            address: l.bind.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                l.bind.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn stat_prefix(l: &L4ListenerSnapshot) -> String {
    l.name.replace(['/', ':', '.'], "_")
}

/// The cluster a UDP listener (or a single-upstream TCP listener) forwards to. The compiler
/// never produces a listener without upstreams; should one appear, it forwards to a cluster
/// name that does not exist, which refuses connections.
fn first_cluster(l: &L4ListenerSnapshot) -> String {
    l.upstreams
        .first()
        .map(|u| u.cluster.clone())
        .unwrap_or_default()
}

/// The TCP proxy of a TCP listener: one cluster, or connections split by weight.
pub fn tcp_proxy(l: &L4ListenerSnapshot) -> TcpProxy {
    let cluster_specifier = if l.upstreams.len() > 1 {
        tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: l
                .upstreams
                .iter()
                .map(|u| ClusterWeight {
                    name: u.cluster.clone(),
                    weight: u.weight,
                    ..Default::default()
                })
                .collect(),
        })
    } else {
        tcp_proxy::ClusterSpecifier::Cluster(first_cluster(l))
    };
    TcpProxy {
        stat_prefix: stat_prefix(l),
        cluster_specifier: Some(cluster_specifier),
        idle_timeout: Some(Duration {
            seconds: IDLE_TIMEOUT_SECS,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// The UDP proxy of a UDP listener: a match tree with no matchers whose `on_no_match` routes
/// every datagram to the cluster (the non-deprecated form of a single-cluster UDP proxy).
pub fn udp_proxy(l: &L4ListenerSnapshot) -> UdpProxyConfig {
    UdpProxyConfig {
        stat_prefix: stat_prefix(l),
        idle_timeout: Some(Duration {
            seconds: UDP_IDLE_TIMEOUT_SECS,
            nanos: 0,
        }),
        route_specifier: Some(udp_proxy_config::RouteSpecifier::Matcher(Matcher {
            on_no_match: Some(Box::new(matcher::OnMatch {
                on_match: Some(matcher::on_match::OnMatch::Action(TypedExtensionConfig {
                    name: "route".to_string(),
                    typed_config: Some(pack_any(UdpRoute {
                        cluster: first_cluster(l),
                    })),
                })),
                ..Default::default()
            })),
            matcher_type: None,
        })),
        ..Default::default()
    }
}

/// The Envoy Listener of one allocated (address, port, protocol).
pub fn listener(l: &L4ListenerSnapshot) -> Listener {
    let mut out = match l.protocol {
        L4Protocol::Tcp => Listener {
            name: l.name.clone(),
            address: Some(bind_address(l)),
            filter_chains: vec![FilterChain {
                filters: super::tenant_limits::connection_limit_filter(
                    &stat_prefix(l),
                    l.max_connections,
                )
                .into_iter()
                .chain([Filter {
                    name: "envoy.filters.network.tcp_proxy".to_string(),
                    config_type: Some(filter::ConfigType::TypedConfig(pack_any(tcp_proxy(l)))),
                }])
                .collect(),
                ..Default::default()
            }],
            ..Default::default()
        },
        L4Protocol::Udp => Listener {
            name: l.name.clone(),
            address: Some(bind_address(l)),
            udp_listener_config: Some(UdpListenerConfig::default()),
            listener_filters: vec![ListenerFilter {
                name: "envoy.filters.udp_listener.udp_proxy".to_string(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                    udp_proxy(l),
                ))),
                ..Default::default()
            }],
            ..Default::default()
        },
    };
    super::hardening::harden_listener(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterKey, Kind, ObjectKey};
    use crate::snapshot::L4Upstream;
    use crate::snapshot::SourceObject;
    use prost::Message;

    fn snap(protocol: L4Protocol) -> L4ListenerSnapshot {
        L4ListenerSnapshot {
            name: format!("l4/{}/127.0.0.1:20000", protocol.as_str().to_lowercase()),
            protocol,
            bind: "127.0.0.1:20000".parse().unwrap(),
            upstreams: vec![L4Upstream {
                cluster: "t/a/c/c1/default/db/svc/5432/tcp".into(),
                weight: 1,
            }],
            max_connections: Some(100),
            source: SourceObject {
                cluster: ClusterKey {
                    tenant: "a".into(),
                    cluster: "c1".into(),
                },
                object: ObjectKey {
                    kind: Kind::Service,
                    namespace: "default".into(),
                    name: "db".into(),
                },
            },
        }
    }

    fn sock(l: &Listener) -> SocketAddress {
        let Some(address::Address::SocketAddress(sa)) = l.address.clone().unwrap().address else {
            panic!("socket address expected")
        };
        sa
    }

    #[test]
    fn tcp_listener_proxies_to_the_cluster() {
        let s = snap(L4Protocol::Tcp);
        let l = listener(&s);
        assert_eq!(l.name, s.name);
        let sa = sock(&l);
        assert_eq!(sa.protocol, socket_address::Protocol::Tcp as i32);
        assert_eq!(sa.address, "127.0.0.1");
        assert_eq!(
            sa.port_specifier,
            Some(socket_address::PortSpecifier::PortValue(20000))
        );
        assert!(l.udp_listener_config.is_none());
        assert_eq!(
            l.per_connection_buffer_limit_bytes.unwrap().value,
            32 * 1024
        );
        // The tenant's connection limit comes first, then the proxy.
        let limit = &l.filter_chains[0].filters[0];
        assert_eq!(limit.name, "envoy.filters.network.connection_limit");
        let Some(filter::ConfigType::TypedConfig(any)) = &limit.config_type else {
            panic!("typed config expected")
        };
        let cl = envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit::decode(&*any.value).unwrap();
        assert_eq!(cl.max_connections.unwrap().value, 100);
        let f = &l.filter_chains[0].filters[1];
        assert_eq!(f.name, "envoy.filters.network.tcp_proxy");
        let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
            panic!("typed config expected")
        };
        assert_eq!(
            any.type_url,
            "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
        );
        let tp = TcpProxy::decode(&*any.value).unwrap();
        assert_eq!(
            tp.cluster_specifier,
            Some(tcp_proxy::ClusterSpecifier::Cluster(
                s.upstreams[0].cluster.clone()
            ))
        );
        assert_eq!(tp.stat_prefix, "l4_tcp_127_0_0_1_20000");
    }

    #[test]
    fn udp_listener_routes_every_datagram_to_the_cluster() {
        let s = snap(L4Protocol::Udp);
        let l = listener(&s);
        assert_eq!(sock(&l).protocol, socket_address::Protocol::Udp as i32);
        assert!(l.filter_chains.is_empty());
        assert_eq!(l.udp_listener_config, Some(UdpListenerConfig::default()));
        let lf = &l.listener_filters[0];
        assert_eq!(lf.name, "envoy.filters.udp_listener.udp_proxy");
        let Some(listener_filter::ConfigType::TypedConfig(any)) = &lf.config_type else {
            panic!("typed config expected")
        };
        let up = UdpProxyConfig::decode(&*any.value).unwrap();
        let Some(udp_proxy_config::RouteSpecifier::Matcher(m)) = up.route_specifier else {
            panic!("matcher expected")
        };
        assert!(m.matcher_type.is_none());
        let Some(matcher::on_match::OnMatch::Action(action)) = m.on_no_match.unwrap().on_match
        else {
            panic!("action expected")
        };
        let route = UdpRoute::decode(&*action.typed_config.unwrap().value).unwrap();
        assert_eq!(route.cluster, s.upstreams[0].cluster);
    }

    #[test]
    fn tcp_listener_with_several_upstreams_splits_by_weight() {
        let mut s = snap(L4Protocol::Tcp);
        s.upstreams = vec![
            L4Upstream {
                cluster: "r/0".into(),
                weight: 80,
            },
            L4Upstream {
                cluster: "r/1".into(),
                weight: 20,
            },
        ];
        let tp = tcp_proxy(&s);
        let Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) = tp.cluster_specifier else {
            panic!("weighted clusters expected: {tp:?}")
        };
        let got: Vec<(&str, u32)> = w
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.weight))
            .collect();
        assert_eq!(got, vec![("r/0", 80), ("r/1", 20)]);
    }
}
