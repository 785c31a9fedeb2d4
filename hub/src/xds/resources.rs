//! Snapshot -> Envoy resources (typed protobufs from `envoy-types`, never text configuration).
//!
//! Step 8 (publish) of the hub's data path, pure: `server` calls [`build`] for every snapshot and
//! serves the result over ADS. One Listener and one RouteConfiguration per data-plane port, one
//! Cluster (EDS over ADS) and one ClusterLoadAssignment per upstream cluster. Every resource
//! remembers the tenant objects it was built from so that a NACK can be reported on them.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue, HeaderValueOption,
    Http2ProtocolOptions, HttpProtocolOptions, SocketAddress, address, config_source,
    header_value_option::HeaderAppendAction, http_protocol_options, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    self as route_v3, DirectResponseAction, HeaderMatcher, RouteConfiguration, RouteMatch,
    WeightedCluster, header_matcher, route, route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
use envoy_types::util::pack_any;

use crate::compile::names::INVALID_BACKEND_CLUSTER;
use crate::compile::{
    ClusterSnapshot, ListenerSnapshot, PathMatch, RouteAction, Snapshot, SourceObject,
};
use crate::model::HeaderModifier;

pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// The order in which a change is pushed, following Envoy's warming rules: clusters before
/// their endpoints, listeners before their routes.
pub const PUSH_ORDER: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

/// Whether `type_url` names a type whose subscriptions are wildcards in SotW (all resources are
/// sent whatever names Envoy lists).
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE
}

/// One Envoy resource and the tenant objects it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    pub any: Any,
    pub sources: BTreeSet<SourceObject>,
}

/// All resources of a snapshot, by type URL, each list ordered by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub by_type: BTreeMap<&'static str, Vec<Resource>>,
}

impl Resources {
    pub fn of(&self, type_url: &str) -> &[Resource] {
        self.by_type.get(type_url).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Translate a whole snapshot.
pub fn build(s: &Snapshot) -> Resources {
    let mut by_type: BTreeMap<&'static str, Vec<Resource>> = BTreeMap::new();
    for l in &s.listeners {
        by_type.entry(LISTENER_TYPE).or_default().push(Resource {
            name: l.name.clone(),
            any: pack_any(listener(l)),
            sources: l.gateways.clone(),
        });
        by_type.entry(ROUTE_TYPE).or_default().push(Resource {
            name: l.name.clone(),
            any: pack_any(route_configuration(l)),
            sources: l
                .virtual_hosts
                .iter()
                .flat_map(|v| v.routes.iter().filter_map(|r| r.source.clone()))
                .collect(),
        });
    }
    for l in &s.l4_listeners {
        by_type.entry(LISTENER_TYPE).or_default().push(Resource {
            name: l.name.clone(),
            any: pack_any(super::l4::listener(l)),
            sources: [l.source.clone()].into(),
        });
    }
    for c in &s.clusters {
        let sources: BTreeSet<SourceObject> = c.source.iter().cloned().collect();
        by_type.entry(CLUSTER_TYPE).or_default().push(Resource {
            name: c.name.clone(),
            any: pack_any(cluster(c)),
            sources: sources.clone(),
        });
        by_type.entry(ENDPOINT_TYPE).or_default().push(Resource {
            name: c.name.clone(),
            any: pack_any(load_assignment(c)),
            sources,
        });
    }
    for list in by_type.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Resources { by_type }
}

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn secs(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

fn socket_address(addr: std::net::SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                addr.port(),
            ))),
            ..Default::default()
        })),
    }
}

/// Per-connection buffer limit on listeners and clusters (Envoy edge best practice).
const BUFFER_LIMIT_BYTES: u32 = 32 * 1024;

/// The HTTP connection manager of a data-plane port, hardened for the edge.
pub fn http_connection_manager(l: &ListenerSnapshot) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: l.name.replace('/', "_"),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: l.name.clone(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                Router::default(),
            ))),
            ..Default::default()
        }],
        use_remote_address: Some(BoolValue { value: true }),
        max_request_headers_kb: u32v(60),
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: secs(3600),
            max_headers_count: u32v(100),
            headers_with_underscores_action:
                http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32,
            ..Default::default()
        }),
        http2_protocol_options: Some(Http2ProtocolOptions {
            max_concurrent_streams: u32v(100),
            initial_stream_window_size: u32v(64 * 1024),
            initial_connection_window_size: u32v(1024 * 1024),
            ..Default::default()
        }),
        stream_idle_timeout: secs(300),
        request_headers_timeout: secs(10),
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        // Clients put the port in Host for non-default ports; virtual hosts match names only.
        strip_port_mode: Some(http_connection_manager::StripPortMode::StripAnyHostPort(
            true,
        )),
        ..Default::default()
    }
}

/// The Listener of a data-plane port.
pub fn listener(l: &ListenerSnapshot) -> Listener {
    Listener {
        name: l.name.clone(),
        address: Some(socket_address(l.bind)),
        per_connection_buffer_limit_bytes: u32v(BUFFER_LIMIT_BYTES),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(
                    http_connection_manager(l),
                ))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn header_options(m: &HeaderModifier) -> Vec<HeaderValueOption> {
    let opt = |(k, v): &(String, String), action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: k.clone(),
            value: v.clone(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    m.set
        .iter()
        .map(|kv| opt(kv, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .chain(
            m.add
                .iter()
                .map(|kv| opt(kv, HeaderAppendAction::AppendIfExistsOrAdd)),
        )
        .collect()
}

fn route_match(r: &crate::compile::Route) -> RouteMatch {
    let path = match &r.path {
        PathMatch::Exact(p) => route_match::PathSpecifier::Path(p.clone()),
        PathMatch::Prefix(p) if p == "/" => route_match::PathSpecifier::Prefix(p.clone()),
        PathMatch::Prefix(p) => route_match::PathSpecifier::PathSeparatedPrefix(p.clone()),
    };
    RouteMatch {
        path_specifier: Some(path),
        headers: r
            .headers
            .iter()
            .map(|(name, value)| HeaderMatcher {
                name: name.clone(),
                header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                    StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Exact(value.clone())),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn route_action(a: &RouteAction) -> route::Action {
    match a {
        RouteAction::DirectResponse(status) => {
            route::Action::DirectResponse(DirectResponseAction {
                status: *status,
                ..Default::default()
            })
        }
        RouteAction::Forward(wcs) => {
            let specifier = match wcs.as_slice() {
                [one] => route_action::ClusterSpecifier::Cluster(one.cluster.clone()),
                many => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                    clusters: many
                        .iter()
                        .map(|w| weighted_cluster::ClusterWeight {
                            name: w.cluster.clone(),
                            weight: u32v(w.weight),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
            };
            // The share of invalid backends goes to a cluster that does not exist; Envoy answers
            // it with the cluster-not-found code (route configurations from RDS are not
            // validated against CDS), which must then be 500 rather than the default 503.
            let has_invalid_share = wcs.iter().any(|w| w.cluster == INVALID_BACKEND_CLUSTER);
            let not_found = if has_invalid_share {
                route_action::ClusterNotFoundResponseCode::InternalServerError
            } else {
                route_action::ClusterNotFoundResponseCode::ServiceUnavailable
            };
            route::Action::Route(route_v3::RouteAction {
                cluster_specifier: Some(specifier),
                cluster_not_found_response_code: not_found as i32,
                ..Default::default()
            })
        }
    }
}

/// The RouteConfiguration of a data-plane port: its virtual hosts, routes in match order.
pub fn route_configuration(l: &ListenerSnapshot) -> RouteConfiguration {
    RouteConfiguration {
        name: l.name.clone(),
        virtual_hosts: l
            .virtual_hosts
            .iter()
            .map(|vh| route_v3::VirtualHost {
                name: vh.name.clone(),
                domains: vh.domains.clone(),
                routes: vh
                    .routes
                    .iter()
                    .map(|r| route_v3::Route {
                        name: r.name.clone(),
                        r#match: Some(route_match(r)),
                        action: Some(route_action(&r.action)),
                        request_headers_to_add: header_options(&r.request_headers),
                        request_headers_to_remove: r.request_headers.remove.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The Cluster of an upstream: endpoints come over EDS (through ADS).
pub fn cluster(c: &ClusterSnapshot) -> Cluster {
    Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: c.name.clone(),
        }),
        connect_timeout: secs(2),
        per_connection_buffer_limit_bytes: u32v(BUFFER_LIMIT_BYTES),
        ..Default::default()
    }
}

/// The endpoints of an upstream (empty: Envoy answers 503).
pub fn load_assignment(c: &ClusterSnapshot) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: c.name.clone(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: c
                .endpoints
                .iter()
                .map(|e| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(*e)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{Route, VirtualHost, WeightedCluster};
    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use prost::Message;

    fn listener_snapshot(routes: Vec<Route>) -> ListenerSnapshot {
        ListenerSnapshot {
            name: "port/80".into(),
            port: 80,
            bind: "127.0.0.1:18080".parse().unwrap(),
            virtual_hosts: vec![VirtualHost {
                name: "port/80/host/a.example".into(),
                domains: vec!["a.example".into()],
                routes,
            }],
            gateways: BTreeSet::new(),
        }
    }

    fn route(path: PathMatch, action: RouteAction) -> crate::compile::Route {
        crate::compile::Route {
            name: "r".into(),
            path,
            headers: vec![("x-env".into(), "canary".into())],
            request_headers: HeaderModifier {
                set: vec![("x-set".into(), "1".into())],
                add: vec![("x-add".into(), "2".into())],
                remove: vec!["x-rm".into()],
            },
            action,
            source: None,
        }
    }

    fn wc(cluster: &str, weight: u32) -> WeightedCluster {
        WeightedCluster {
            cluster: cluster.into(),
            weight,
        }
    }

    #[test]
    fn listener_is_hardened_and_uses_rds_over_ads() {
        let l = listener(&listener_snapshot(vec![]));
        assert_eq!(l.name, "port/80");
        let Some(AddressKind::SocketAddress(sa)) = l.address.unwrap().address else {
            panic!("socket address expected")
        };
        assert_eq!(sa.address, "127.0.0.1");
        assert_eq!(
            sa.port_specifier,
            Some(socket_address::PortSpecifier::PortValue(18080))
        );
        let Some(filter::ConfigType::TypedConfig(any)) =
            l.filter_chains[0].filters[0].config_type.clone()
        else {
            panic!("typed config expected")
        };
        let hcm = HttpConnectionManager::decode(&*any.value).unwrap();
        assert_eq!(hcm.use_remote_address, Some(BoolValue { value: true }));
        assert_eq!(hcm.max_request_headers_kb, u32v(60));
        let common = hcm.common_http_protocol_options.unwrap();
        assert_eq!(common.max_headers_count, u32v(100));
        assert_eq!(
            common.headers_with_underscores_action,
            http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32
        );
        let h2 = hcm.http2_protocol_options.unwrap();
        assert_eq!(h2.max_concurrent_streams, u32v(100));
        assert_eq!(h2.initial_stream_window_size, u32v(65536));
        assert_eq!(h2.initial_connection_window_size, u32v(1048576));
        let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
            panic!("RDS expected")
        };
        assert_eq!(rds.route_config_name, "port/80");
        assert_eq!(rds.config_source, Some(ads()));
        assert_eq!(hcm.http_filters[0].name, "envoy.filters.http.router");
    }

    #[test]
    fn path_matches_table() {
        let cases = [
            (
                PathMatch::Exact("/a".into()),
                route_match::PathSpecifier::Path("/a".into()),
            ),
            (
                PathMatch::Prefix("/".into()),
                route_match::PathSpecifier::Prefix("/".into()),
            ),
            (
                PathMatch::Prefix("/foo".into()),
                route_match::PathSpecifier::PathSeparatedPrefix("/foo".into()),
            ),
        ];
        for (path, want) in cases {
            let r = route(path.clone(), RouteAction::DirectResponse(404));
            let m = route_match(&r);
            assert_eq!(m.path_specifier, Some(want), "{path:?}");
            assert_eq!(m.headers[0].name, "x-env");
            assert_eq!(
                m.headers[0].header_match_specifier,
                Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                    StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Exact("canary".into())),
                        ..Default::default()
                    }
                ))
            );
        }
    }

    #[test]
    fn route_actions_table() {
        let single = route_action::ClusterSpecifier::Cluster("a".into());
        let cases = [
            (RouteAction::DirectResponse(500), None, Some(500)),
            (RouteAction::Forward(vec![wc("a", 5)]), Some(single), None),
        ];
        for (action, want_spec, want_status) in cases {
            match route_action(&action) {
                route::Action::Route(ra) => assert_eq!(ra.cluster_specifier, want_spec),
                route::Action::DirectResponse(d) => assert_eq!(Some(d.status), want_status),
                other => panic!("unexpected {other:?}"),
            }
        }
        let route::Action::Route(ra) =
            route_action(&RouteAction::Forward(vec![wc("a", 90), wc("b", 10)]))
        else {
            panic!("route expected")
        };
        let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = ra.cluster_specifier else {
            panic!("weighted clusters expected")
        };
        let got: Vec<(String, u32)> = w
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.weight.unwrap().value))
            .collect();
        assert_eq!(got, vec![("a".into(), 90), ("b".into(), 10)]);
    }

    #[test]
    fn invalid_backend_share_gets_500() {
        let code = |action: RouteAction| {
            let route::Action::Route(ra) = route_action(&action) else {
                panic!("route expected")
            };
            ra.cluster_not_found_response_code
        };
        let partial = RouteAction::Forward(vec![wc("a", 1), wc(INVALID_BACKEND_CLUSTER, 1)]);
        assert_eq!(
            code(partial),
            route_action::ClusterNotFoundResponseCode::InternalServerError as i32
        );
        assert_eq!(
            code(RouteAction::Forward(vec![wc("a", 1)])),
            route_action::ClusterNotFoundResponseCode::ServiceUnavailable as i32
        );
    }

    #[test]
    fn header_modifier_becomes_header_options() {
        let l = listener_snapshot(vec![route(
            PathMatch::Prefix("/".into()),
            RouteAction::DirectResponse(200),
        )]);
        let rc = route_configuration(&l);
        let r = &rc.virtual_hosts[0].routes[0];
        let got: Vec<(String, i32)> = r
            .request_headers_to_add
            .iter()
            .map(|o| (o.header.clone().unwrap().key, o.append_action))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "x-set".into(),
                    HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                ),
                (
                    "x-add".into(),
                    HeaderAppendAction::AppendIfExistsOrAdd as i32
                ),
            ]
        );
        assert_eq!(r.request_headers_to_remove, vec!["x-rm".to_string()]);
        assert_eq!(rc.virtual_hosts[0].domains, vec!["a.example".to_string()]);
    }

    #[test]
    fn clusters_use_eds_and_endpoints_follow() {
        let c = ClusterSnapshot {
            name: "t/a/c/c1/ns/r/r0/b0".into(),
            endpoints: vec![
                "127.0.1.1:30080".parse().unwrap(),
                "127.0.1.2:30080".parse().unwrap(),
            ],
            source: None,
        };
        let cl = cluster(&c);
        assert_eq!(
            cl.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32
            ))
        );
        assert_eq!(cl.connect_timeout, secs(2));
        assert_eq!(cl.eds_cluster_config.unwrap().service_name, c.name);
        let la = load_assignment(&c);
        assert_eq!(la.cluster_name, c.name);
        assert_eq!(la.endpoints[0].lb_endpoints.len(), 2);
        let empty = load_assignment(&ClusterSnapshot {
            endpoints: vec![],
            ..c
        });
        assert!(empty.endpoints[0].lb_endpoints.is_empty());
    }

    #[test]
    fn build_groups_by_type_in_name_order() {
        let snap = Snapshot {
            listeners: vec![listener_snapshot(vec![])],
            clusters: vec![
                ClusterSnapshot {
                    name: "b".into(),
                    endpoints: vec![],
                    source: None,
                },
                ClusterSnapshot {
                    name: "a".into(),
                    endpoints: vec![],
                    source: None,
                },
            ],
            l4_listeners: vec![],
        };
        let r = build(&snap);
        let names = |t: &str| -> Vec<String> { r.of(t).iter().map(|x| x.name.clone()).collect() };
        assert_eq!(names(CLUSTER_TYPE), vec!["a", "b"]);
        assert_eq!(names(ENDPOINT_TYPE), vec!["a", "b"]);
        assert_eq!(names(LISTENER_TYPE), vec!["port/80"]);
        assert_eq!(names(ROUTE_TYPE), vec!["port/80"]);
        assert!(
            r.of(LISTENER_TYPE)
                .iter()
                .all(|x| x.any.type_url == LISTENER_TYPE)
        );
        assert!(
            r.of(ENDPOINT_TYPE)
                .iter()
                .all(|x| x.any.type_url == ENDPOINT_TYPE)
        );
    }
}
