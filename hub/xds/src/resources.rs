//! Snapshot -> Envoy resources (typed protobufs from `envoy-types`, never text configuration).
//!
//! Step 8 (publish) of the hub's data path, pure: `server` calls [`build`] for every snapshot and
//! serves the result over ADS. One Listener and one RouteConfiguration per data-plane port, one
//! Cluster (EDS over ADS) and one ClusterLoadAssignment per upstream cluster. Every resource
//! remembers the tenant objects it was built from so that a NACK can be reported on them.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue, HeaderValueOption,
    SocketAddress, address, config_source, header_value_option::HeaderAppendAction, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    self as route_v3, DirectResponseAction, RouteConfiguration, RouteMatch, WeightedCluster, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};
use envoy_types::util::pack_any;

use crate::model::{AppProtocol, HeaderModifier};
use crate::snapshot::INVALID_BACKEND_CLUSTER;
use crate::snapshot::{
    ClusterSnapshot, ListenerSnapshot, PathMatch, RouteAction, Snapshot, SourceObject, VirtualHost,
};

pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

pub use super::cache::ResourceCache;
pub use super::scoped::SCOPED_ROUTE_TYPE;
pub use super::tls::SECRET_TYPE;

/// The order in which a change is pushed, following Envoy's warming rules: clusters before
/// their endpoints, secrets before the listeners that use them, listeners before their routes.
/// Scopes (SRDS) come after their listeners and before the route configurations they name.
pub const PUSH_ORDER: [&str; 6] = [
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    SECRET_TYPE,
    LISTENER_TYPE,
    SCOPED_ROUTE_TYPE,
    ROUTE_TYPE,
];

/// Whether `type_url` names a type whose subscriptions are wildcards in SotW (all resources are
/// sent whatever names Envoy lists, and every response holds all of them: a resource missing
/// from one is removed). Responses of the other types hold only what changed (xDS: in SotW
/// only Listener and Cluster responses, and Envoy's scoped RDS, must be complete).
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE || type_url == SCOPED_ROUTE_TYPE
}

/// One Envoy resource and the tenant objects it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    pub any: Any,
    /// The tenant objects it was built from ([`Resource::sources`]).
    sources: Sources,
    /// A hash of name, type and encoded bytes, computed once when the resource is built (kept
    /// with it in `super::cache`), so that versions are cheap to compute ([`version_of`]).
    pub digest: u64,
}

/// Where a resource's tenant objects are found: listed, or (an upstream cluster's resources, a
/// RouteConfiguration, a scope) in the compiled input it was built from, which the snapshot
/// holds anyway, collected only when a NACK asks for them (a set per resource cost about 1.3
/// KiB even for one object: 57 MiB at 20,000 clusters).
#[derive(Debug, Clone, PartialEq)]
pub enum Sources {
    Objects(BTreeSet<SourceObject>),
    /// The sources of the routes of these virtual hosts.
    Routes(Vec<Arc<VirtualHost>>),
    /// The sources of an upstream cluster.
    Cluster(Arc<ClusterSnapshot>),
}

impl From<BTreeSet<SourceObject>> for Sources {
    fn from(objects: BTreeSet<SourceObject>) -> Self {
        Sources::Objects(objects)
    }
}

impl Resource {
    pub fn new(name: String, any: Any, sources: impl Into<Sources>) -> Self {
        let sources = sources.into();
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        any.type_url.hash(&mut h);
        any.value.hash(&mut h);
        Self {
            name,
            any,
            sources,
            digest: h.finish(),
        }
    }

    /// The tenant objects the resource was built from.
    pub fn sources(&self) -> BTreeSet<SourceObject> {
        match &self.sources {
            Sources::Objects(o) => o.clone(),
            Sources::Routes(vhs) => vhs
                .iter()
                .flat_map(|v| v.routes.iter().filter_map(|r| r.source.as_deref().cloned()))
                .collect(),
            Sources::Cluster(c) => c.sources.iter().map(|s| (**s).clone()).collect(),
        }
    }
}

/// The version of a list of resources (one xDS response): changes when any resource changes.
/// Each digest already covers its resource's name, type and bytes, so the version folds the
/// digests in order (a multiply-rotate mix: no pass over the names' bytes again).
pub fn version_of<'a>(list: impl IntoIterator<Item = &'a Resource>) -> String {
    format!("{:016x}", digest_of(list))
}

/// A digest of a list of resources, in order: [`version_of`] as a number.
pub fn digest_of<'a>(list: impl IntoIterator<Item = &'a Resource>) -> u64 {
    list.into_iter().fold(0x9e37_79b9_7f4a_7c15, |v, r| {
        (v ^ r.digest)
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(29)
    })
}

/// All resources of a snapshot, by type URL, each list ordered by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Shared with the ADS stream's cache (`super::cache`) and the responses it remembers.
    pub by_type: BTreeMap<&'static str, Vec<Arc<Resource>>>,
}

impl Resources {
    pub fn of(&self, type_url: &str) -> &[Arc<Resource>] {
        self.by_type.get(type_url).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Translate a whole snapshot.
pub fn build(s: &Snapshot) -> Resources {
    build_cached(s, &mut super::cache::ResourceCache::default())
}

/// Translate a whole snapshot, reusing from `cache` the encoded virtual hosts and upstream
/// clusters that did not change since the snapshot it last saw (see `super::cache`). The result
/// is exactly what [`build`] returns.
pub fn build_cached(s: &Snapshot, cache: &mut super::cache::ResourceCache) -> Resources {
    cache.begin();
    let mut by_type: BTreeMap<&'static str, Vec<Arc<Resource>>> = BTreeMap::new();
    for l in &s.listeners {
        let scoped = cache.scoped(l);
        by_type
            .entry(LISTENER_TYPE)
            .or_default()
            .push(Arc::new(Resource::new(
                l.name.clone(),
                pack_any(listener_of(l, scoped.is_some())),
                l.gateways.clone(),
            )));
        match scoped {
            Some((scopes, tables)) => {
                by_type.entry(SCOPED_ROUTE_TYPE).or_default().extend(scopes);
                by_type.entry(ROUTE_TYPE).or_default().extend(tables);
            }
            None => by_type
                .entry(ROUTE_TYPE)
                .or_default()
                .push(Arc::new(Resource::new(
                    l.name.clone(),
                    cache.route_configuration(l),
                    Sources::Routes(l.virtual_hosts.clone()),
                ))),
        }
    }
    for l in &s.l4_listeners {
        by_type
            .entry(LISTENER_TYPE)
            .or_default()
            .push(Arc::new(Resource::new(
                l.name.clone(),
                pack_any(super::l4::listener(l)),
                BTreeSet::from([l.source.clone()]),
            )));
    }
    for (cluster, endpoints) in cache.clusters(&s.clusters) {
        by_type.entry(CLUSTER_TYPE).or_default().push(cluster);
        by_type.entry(ENDPOINT_TYPE).or_default().push(endpoints);
    }
    for l in &s.tls_listeners {
        by_type
            .entry(LISTENER_TYPE)
            .or_default()
            .push(Arc::new(Resource::new(
                l.name.clone(),
                pack_any(super::tls::listener(l)),
                l.gateways.clone(),
            )));
        for (rc, http) in super::tls::route_configurations(l) {
            by_type
                .entry(ROUTE_TYPE)
                .or_default()
                .push(Arc::new(Resource::new(
                    rc.name.clone(),
                    pack_any(rc),
                    Sources::Routes(http.virtual_hosts.clone()),
                )));
        }
    }
    for sec in &s.secrets {
        by_type
            .entry(SECRET_TYPE)
            .or_default()
            .push(Arc::new(Resource::new(
                sec.name.clone(),
                pack_any(super::tls::secret_resource(sec)),
                sec.source.iter().cloned().collect::<BTreeSet<_>>(),
            )));
    }
    for list in by_type.values_mut() {
        // Most lists come in order already (clusters, one listener's hostnames): checked first.
        if !list.is_sorted_by(|a, b| a.name <= b.name) {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    cache.end();
    Resources { by_type }
}

pub(crate) fn ads() -> ConfigSource {
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

pub(crate) fn socket_address(addr: std::net::SocketAddr) -> Address {
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

/// The HTTP connection manager of a data-plane port, hardened for the edge: its routes come
/// from one RouteConfiguration named like the port, or from its tenants' tables through
/// scopes (`super::scoped`).
pub fn http_connection_manager(l: &ListenerSnapshot) -> HttpConnectionManager {
    connection_manager(l, super::scoped::is_scoped(l))
}

/// [`http_connection_manager`] with `scoped` already known (`super::scoped::is_scoped` walks
/// every virtual host of the port: once per build is enough).
fn connection_manager(l: &ListenerSnapshot, scoped: bool) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: l.name.replace('/', "_"),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(if scoped {
            super::scoped::route_specifier(l)
        } else {
            http_connection_manager::RouteSpecifier::Rds(Rds {
                config_source: Some(ads()),
                route_config_name: l.name.clone(),
            })
        }),
        early_header_mutation_extensions: if scoped {
            super::scoped::early_header_mutation(l)
        } else {
            Vec::new()
        },
        // The rate limit and CORS filters are disabled by default: they run only for a request
        // whose virtual host or route configures them (`typed_per_filter_config`), so the
        // routes of tenants that asked for neither pay nothing for them (issue 15), and a
        // tenant adding or removing a CORS policy changes its route, never this listener.
        http_filters: vec![
            super::tenant_limits::rate_limit_filter(),
            // Answers CORS preflights and adds CORS headers for routes that carry a policy.
            HttpFilter {
                name: super::http::CORS_FILTER.to_string(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    Cors::default(),
                ))),
                disabled: true,
                ..Default::default()
            },
            HttpFilter {
                name: "envoy.filters.http.router".to_string(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    Router::default(),
                ))),
                ..Default::default()
            },
        ],
        // WebSocket upgrades are allowed on every route (Gateway API: `kubernetes.io/ws`
        // backends; harmless for others, which answer the upgrade request as plain HTTP).
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".to_string(),
            ..Default::default()
        }],
        // Clients put the port in Host for non-default ports: the route configurations ignore it
        // when matching virtual hosts (`ignore_port_in_host_matching`) and the backend gets the
        // Host header as the client sent it (Gateway API: the port is not stripped).
        ..super::hardening::edge_connection_manager()
    }
}

/// The Listener of a data-plane port.
pub fn listener(l: &ListenerSnapshot) -> Listener {
    listener_of(l, super::scoped::is_scoped(l))
}

/// [`listener`] with `scoped` already known.
fn listener_of(l: &ListenerSnapshot, scoped: bool) -> Listener {
    let mut out = Listener {
        name: l.name.clone(),
        address: Some(socket_address(l.bind)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(
                    connection_manager(l, scoped),
                ))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    super::hardening::harden_listener(&mut out);
    out
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

fn route_match(r: &crate::snapshot::Route) -> RouteMatch {
    let path = match &r.path {
        PathMatch::Exact(p) => route_match::PathSpecifier::Path(p.clone()),
        PathMatch::Prefix(p) if p == "/" => route_match::PathSpecifier::Prefix(p.clone()),
        PathMatch::Prefix(p) => route_match::PathSpecifier::PathSeparatedPrefix(p.clone()),
        PathMatch::RegularExpression(re) => {
            route_match::PathSpecifier::SafeRegex(super::http::regex(re))
        }
    };
    let method = r
        .method
        .iter()
        .map(|m| super::http::header_match(":method", &crate::model::ValueMatch::Exact(m.clone())));
    RouteMatch {
        path_specifier: Some(path),
        headers: r
            .headers
            .iter()
            .map(|(name, value)| super::http::header_match(name, value))
            .chain(method)
            .collect(),
        query_parameters: r
            .query_params
            .iter()
            .map(|(name, value)| super::http::query_match(name, value))
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
        RouteAction::Redirect(r) => route::Action::Redirect(super::http::redirect(r)),
        RouteAction::Forward(fw) => {
            let wcs = &fw.clusters;
            let per_backend_headers = wcs.iter().any(|w| {
                w.request_headers != HeaderModifier::default()
                    || w.response_headers != HeaderModifier::default()
            });
            let specifier = match wcs.as_slice() {
                [one] if !per_backend_headers => {
                    route_action::ClusterSpecifier::Cluster(one.cluster.clone())
                }
                many => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                    clusters: many
                        .iter()
                        .map(|w| weighted_cluster::ClusterWeight {
                            name: w.cluster.clone(),
                            weight: u32v(w.weight),
                            request_headers_to_add: header_options(&w.request_headers),
                            request_headers_to_remove: w.request_headers.remove.to_vec(),
                            response_headers_to_add: header_options(&w.response_headers),
                            response_headers_to_remove: w.response_headers.remove.to_vec(),
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
            let mut ra = route_v3::RouteAction {
                cluster_specifier: Some(specifier),
                cluster_not_found_response_code: not_found as i32,
                ..Default::default()
            };
            super::http::forward_options(fw, &mut ra);
            route::Action::Route(ra)
        }
    }
}

/// The RouteConfiguration of a data-plane port: its virtual hosts, routes in match order.
pub fn route_configuration(l: &ListenerSnapshot) -> RouteConfiguration {
    RouteConfiguration {
        name: l.name.clone(),
        virtual_hosts: l.virtual_hosts.iter().map(|v| virtual_host(v)).collect(),
        ignore_port_in_host_matching: true,
        ..Default::default()
    }
}

/// One virtual host of a route configuration.
pub fn virtual_host(vh: &crate::snapshot::VirtualHost) -> route_v3::VirtualHost {
    route_v3::VirtualHost {
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
                request_headers_to_remove: r.request_headers.remove.to_vec(),
                response_headers_to_add: header_options(&r.response_headers),
                response_headers_to_remove: r.response_headers.remove.to_vec(),
                typed_per_filter_config: super::http::per_filter_config(r.cors.as_deref()),
                ..Default::default()
            })
            .collect(),
        typed_per_filter_config: super::tenant_limits::virtual_host_config(vh.rate_limit),
        ..Default::default()
    }
}

/// The CDS and EDS resources of one upstream cluster.
pub fn cluster_resources(c: &Arc<ClusterSnapshot>) -> (Arc<Resource>, Arc<Resource>) {
    (
        Arc::new(Resource::new(
            c.name.clone(),
            pack_any(cluster(c)),
            Sources::Cluster(c.clone()),
        )),
        Arc::new(Resource::new(
            c.name.clone(),
            pack_any(load_assignment(c)),
            Sources::Cluster(c.clone()),
        )),
    )
}

/// The Cluster of an upstream: endpoints come over EDS (through ADS).
pub fn cluster(c: &ClusterSnapshot) -> Cluster {
    let mut out = Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: c.name.clone(),
        }),
        connect_timeout: secs(2),
        typed_extension_protocol_options: match c.protocol {
            AppProtocol::H2c => super::http::h2c_protocol_options(),
            _ => Default::default(),
        },
        ..Default::default()
    };
    super::hardening::harden_cluster(&mut out);
    out
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
    use crate::model::ValueMatch;
    use crate::snapshot::{Forward, Route, VirtualHost, WeightedCluster};
    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use envoy_types::pb::envoy::config::core::v3::http_protocol_options;
    use envoy_types::pb::envoy::config::route::v3::header_matcher;
    use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
    use envoy_types::pb::google::protobuf::BoolValue;
    use prost::Message;

    fn listener_snapshot(routes: Vec<Route>) -> ListenerSnapshot {
        ListenerSnapshot {
            name: "port/80".into(),
            port: 80,
            bind: "127.0.0.1:18080".parse().unwrap(),
            virtual_hosts: vec![std::sync::Arc::new(VirtualHost {
                name: "port/80/host/a.example".into(),
                // A wildcard: the port keeps one RouteConfiguration (`super::scoped`).
                domains: vec!["*.a.example".into()],
                routes,
                rate_limit: None,
            })],
            gateways: BTreeSet::new(),
        }
    }

    fn route(path: PathMatch, action: RouteAction) -> crate::snapshot::Route {
        crate::snapshot::Route {
            name: "r".into(),
            path,
            headers: [("x-env".into(), ValueMatch::Exact("canary".into()))].into(),
            query_params: Default::default(),
            method: None,
            request_headers: HeaderModifier {
                set: vec![("x-set".into(), "1".into())].into(),
                add: vec![("x-add".into(), "2".into())].into(),
                remove: vec!["x-rm".into()].into(),
            },
            response_headers: HeaderModifier::default(),
            cors: None,
            action,
            source: None,
        }
    }

    fn wc(cluster: &str, weight: u32) -> WeightedCluster {
        WeightedCluster::new(cluster, weight)
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
        assert_eq!(
            hcm.http_filters.last().unwrap().name,
            "envoy.filters.http.router"
        );
    }

    #[test]
    fn hardening_and_tenant_rate_limit_reach_the_built_resources() {
        use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
        let mut l = listener_snapshot(vec![]);
        let rate = crate::model::policy::RequestRate {
            per_second: 3,
            burst: 4,
        };
        std::sync::Arc::make_mut(&mut l.virtual_hosts[0]).rate_limit = Some(rate);
        let built = listener(&l);
        assert_eq!(built.per_connection_buffer_limit_bytes, u32v(32 * 1024));
        let Some(filter::ConfigType::TypedConfig(any)) =
            built.filter_chains[0].filters[0].config_type.clone()
        else {
            panic!("typed config expected")
        };
        let hcm = HttpConnectionManager::decode(&*any.value).unwrap();
        let edge = super::super::hardening::edge_connection_manager();
        assert_eq!(
            hcm.path_with_escaped_slashes_action,
            edge.path_with_escaped_slashes_action
        );
        assert_eq!(hcm.request_headers_timeout, edge.request_headers_timeout);
        assert_eq!(
            hcm.common_http_protocol_options,
            edge.common_http_protocol_options
        );

        let rc = route_configuration(&l);
        let per_vh = &rc.virtual_hosts[0].typed_per_filter_config;
        let rl = LocalRateLimit::decode(
            &*per_vh[super::super::tenant_limits::LOCAL_RATE_LIMIT_FILTER].value,
        )
        .unwrap();
        assert_eq!(rl, super::super::tenant_limits::rate_limit(rate));
        // Through the cache too.
        let s = Snapshot {
            listeners: vec![l],
            clusters: vec![std::sync::Arc::new(ClusterSnapshot {
                name: "c".into(),
                endpoints: vec![],
                protocol: AppProtocol::H2c,
                sources: Vec::new(),
            })],
            ..Default::default()
        };
        let res = build(&s);
        let rc = RouteConfiguration::decode(&*res.of(ROUTE_TYPE)[0].any.value).unwrap();
        assert!(
            rc.virtual_hosts[0]
                .typed_per_filter_config
                .contains_key(super::super::tenant_limits::LOCAL_RATE_LIMIT_FILTER)
        );
        let c = Cluster::decode(&*res.of(CLUSTER_TYPE)[0].any.value).unwrap();
        assert_eq!(c.per_connection_buffer_limit_bytes, u32v(32 * 1024));
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
            (
                RouteAction::Forward(Forward::to(vec![wc("a", 5)])),
                Some(single),
                None,
            ),
        ];
        for (action, want_spec, want_status) in cases {
            match route_action(&action) {
                route::Action::Route(ra) => assert_eq!(ra.cluster_specifier, want_spec),
                route::Action::DirectResponse(d) => assert_eq!(Some(d.status), want_status),
                other => panic!("unexpected {other:?}"),
            }
        }
        let route::Action::Route(ra) = route_action(&RouteAction::Forward(Forward::to(vec![
            wc("a", 90),
            wc("b", 10),
        ]))) else {
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
        let partial = RouteAction::Forward(Forward::to(vec![
            wc("a", 1),
            wc(INVALID_BACKEND_CLUSTER, 1),
        ]));
        assert_eq!(
            code(partial),
            route_action::ClusterNotFoundResponseCode::InternalServerError as i32
        );
        assert_eq!(
            code(RouteAction::Forward(Forward::to(vec![wc("a", 1)]))),
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
        assert_eq!(rc.virtual_hosts[0].domains, vec!["*.a.example".to_string()]);
    }

    #[test]
    fn clusters_use_eds_and_endpoints_follow() {
        let c = ClusterSnapshot {
            name: "t/a/c/c1/ns/r/r0/b0".into(),
            endpoints: vec![
                "127.0.1.1:30080".parse().unwrap(),
                "127.0.1.2:30080".parse().unwrap(),
            ],
            protocol: AppProtocol::Http1,
            sources: Vec::new(),
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
                    protocol: AppProtocol::Http1,
                    sources: Vec::new(),
                }
                .into(),
                ClusterSnapshot {
                    name: "a".into(),
                    endpoints: vec![],
                    protocol: AppProtocol::Http1,
                    sources: Vec::new(),
                }
                .into(),
            ],
            ..Default::default()
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

    #[test]
    fn connection_manager_runs_cors_before_the_router_only_where_asked_and_allows_websocket() {
        let hcm = http_connection_manager(&listener_snapshot(vec![]));
        let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                super::super::tenant_limits::LOCAL_RATE_LIMIT_FILTER,
                super::super::http::CORS_FILTER,
                "envoy.filters.http.router"
            ]
        );
        // Only the router runs for every request; the others where a route asks for them.
        let disabled: Vec<bool> = hcm.http_filters.iter().map(|f| f.disabled).collect();
        assert_eq!(disabled, vec![true, true, false]);
        assert_eq!(hcm.upgrade_configs.len(), 1);
        assert_eq!(hcm.upgrade_configs[0].upgrade_type, "websocket");
    }

    #[test]
    fn regex_query_and_method_matches() {
        let mut r = route(
            PathMatch::RegularExpression("/v[0-9]+/.*".into()),
            RouteAction::DirectResponse(404),
        );
        r.headers = [("x-re".into(), ValueMatch::RegularExpression("^a+$".into()))].into();
        r.query_params = [("q".into(), ValueMatch::Exact("1".into()))].into();
        r.method = Some("POST".into());
        let m = route_match(&r);
        let Some(route_match::PathSpecifier::SafeRegex(re)) = m.path_specifier else {
            panic!("safe_regex expected")
        };
        assert_eq!(re.regex, "/v[0-9]+/.*");
        let hs: Vec<(String, Option<string_matcher::MatchPattern>)> = m
            .headers
            .iter()
            .map(|h| {
                let Some(header_matcher::HeaderMatchSpecifier::StringMatch(sm)) =
                    h.header_match_specifier.clone()
                else {
                    panic!("string match expected")
                };
                (h.name.clone(), sm.match_pattern)
            })
            .collect();
        assert_eq!(hs[0].0, "x-re");
        assert!(
            matches!(&hs[0].1, Some(string_matcher::MatchPattern::SafeRegex(x)) if x.regex == "^a+$")
        );
        assert_eq!(
            hs[1],
            (
                ":method".to_string(),
                Some(string_matcher::MatchPattern::Exact("POST".into()))
            )
        );
        assert_eq!(m.query_parameters.len(), 1);
        assert_eq!(m.query_parameters[0].name, "q");
    }

    #[test]
    fn forward_carries_rewrite_mirrors_timeouts_and_backend_headers() {
        use crate::snapshot::{MirrorTarget, PathRewrite, Rewrite};
        let mut one = wc("a", 1);
        one.response_headers.set.push(("x-b".into(), "1".into()));
        let fw = Forward {
            clusters: vec![one],
            rewrite: Some(Box::new(Rewrite {
                hostname: Some("internal.example".into()),
                path: Some(PathRewrite::Prefix {
                    matched: "/foo".into(),
                    replacement: "/bar".into(),
                }),
            })),
            mirrors: vec![
                MirrorTarget {
                    cluster: "m".into(),
                    numerator: 1,
                    denominator: 1,
                },
                MirrorTarget {
                    cluster: "h".into(),
                    numerator: 1,
                    denominator: 2,
                },
            ]
            .into(),
            timeout: Some(std::time::Duration::from_millis(1500)),
            backend_timeout: Some(std::time::Duration::from_secs(1)),
        };
        let route::Action::Route(ra) = route_action(&RouteAction::Forward(fw)) else {
            panic!("route expected")
        };
        // One backend with its own headers still needs a weighted cluster to carry them.
        let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = ra.cluster_specifier else {
            panic!("weighted clusters expected")
        };
        assert_eq!(
            w.clusters[0].response_headers_to_add[0]
                .header
                .clone()
                .unwrap()
                .key,
            "x-b"
        );
        assert_eq!(
            ra.host_rewrite_specifier,
            Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
                "internal.example".into()
            ))
        );
        assert_eq!(ra.prefix_rewrite, "/bar");
        assert_eq!(ra.request_mirror_policies.len(), 2);
        assert!(ra.request_mirror_policies[0].runtime_fraction.is_none());
        assert!(ra.request_mirror_policies[0].disable_shadow_host_suffix_append);
        let half = ra.request_mirror_policies[1]
            .runtime_fraction
            .clone()
            .unwrap();
        assert_eq!(half.default_value.unwrap().numerator, 500_000);
        assert_eq!(
            ra.timeout,
            Some(Duration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        let retry = ra.retry_policy.unwrap();
        assert_eq!(retry.per_try_timeout, secs(1));
        assert_eq!(retry.num_retries, u32v(0));
    }

    #[test]
    fn redirect_routes_and_response_headers_and_cors() {
        use crate::snapshot::Redirect;
        let mut r = route(
            PathMatch::Prefix("/".into()),
            RouteAction::Redirect(Box::new(Redirect {
                scheme: Some("https".into()),
                hostname: None,
                path: None,
                port: None,
                status_code: 301,
            })),
        );
        r.response_headers.set.push(("x-resp".into(), "1".into()));
        r.response_headers.remove.push("server".into());
        r.cors = Some(Box::new(crate::model::Cors {
            allow_origins: vec!["https://a.example".into()],
            ..Default::default()
        }));
        let rc = route_configuration(&listener_snapshot(vec![r]));
        let er = &rc.virtual_hosts[0].routes[0];
        assert!(matches!(er.action, Some(route::Action::Redirect(_))));
        assert_eq!(
            er.response_headers_to_add[0].header.clone().unwrap().key,
            "x-resp"
        );
        assert_eq!(er.response_headers_to_remove, vec!["server".to_string()]);
        assert!(
            er.typed_per_filter_config
                .contains_key(super::super::http::CORS_FILTER)
        );
    }

    #[test]
    fn h2c_clusters_speak_http2_upstream() {
        let c = ClusterSnapshot {
            name: "c".into(),
            endpoints: vec![],
            protocol: AppProtocol::H2c,
            sources: Vec::new(),
        };
        let cl = cluster(&c);
        assert!(
            cl.typed_extension_protocol_options
                .contains_key(super::super::http::UPSTREAM_HTTP_OPTIONS)
        );
        let plain = cluster(&ClusterSnapshot {
            protocol: AppProtocol::Http1,
            ..c
        });
        assert!(plain.typed_extension_protocol_options.is_empty());
    }
}
