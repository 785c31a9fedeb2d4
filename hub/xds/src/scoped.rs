//! Scoped route tables: one small RouteConfiguration per hostname instead of one per port, so
//! that a changed route re-sends (and Envoy rebuilds) the table of its hostname only.
//!
//! Part of step 8 (publish), pure; `super::resources` and `super::cache` call it. Envoy's
//! scoped RDS (SRDS) picks a RouteConfiguration per request by an exact key computed from
//! request headers. fleetgate's key has two fragments: the request's host (`:authority` up to
//! the first `:`, so the port a client puts in Host is ignored as `ignore_port_in_host_matching`
//! ignores it) and the data-plane port, which the listener's connection manager writes into
//! [`PORT_HEADER`] before routing (overwriting whatever the client sent), because every HTTP
//! connection manager on ADS receives the scopes of every port.
//!
//! A key is exact, so a scope cannot stand for a wildcard hostname (`*.a.example`) or for `*`
//! (Envoy issue 19098), and a request whose key names no scope gets Envoy's 404. A port is
//! therefore scoped only when every virtual host on it serves exact hostnames, apart from the
//! port's 404 catch-all (which a missing scope answers the same way); a port with a wildcard or
//! hostname-less virtual host keeps the one RouteConfiguration with all its virtual hosts, where
//! Envoy applies Gateway API's precedence (exact, then the longest wildcard suffix, then `*`).
//! Own addresses (one Gateway each, `own/...` listeners) always keep one RouteConfiguration.
//! Scope keys compare bytes: on a scoped port a Host in other letter case than the configured
//! hostname gets 404, where Envoy's virtual-host matching would ignore the case.

use std::sync::Arc;

use envoy_types::pb::envoy::config::common::mutation_rules::v3::{HeaderMutation, header_mutation};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, TypedExtensionConfig, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, ScopedRouteConfiguration, scoped_route_configuration,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    ScopedRds, ScopedRoutes, http_connection_manager, scoped_routes,
};
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use envoy_types::util::pack_any;

use crate::snapshot::{ListenerSnapshot, RouteAction, VirtualHost};

pub const SCOPED_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";

/// The request header carrying the data-plane port into the scope key; set by the listener,
/// never taken from the client, and removed before a request is forwarded.
pub const PORT_HEADER: &str = "x-fleetgate-port";

/// Whether `l` is served with one RouteConfiguration per hostname (see the module docs): a
/// shared data-plane port (`port/<port>`; an own address serves one Gateway and keeps one
/// table) whose virtual hosts all serve exact hostnames, apart from the 404 catch-all.
pub fn is_scoped(l: &ListenerSnapshot) -> bool {
    l.name == format!("port/{}", l.port)
        && l.virtual_hosts
            .iter()
            .all(|vh| is_catch_all(vh) || vh.domains.iter().all(|d| !d.contains('*')))
}

/// The port's catch-all: `*`, one route answering 404 to every request.
fn is_catch_all(vh: &VirtualHost) -> bool {
    matches!(vh.domains.as_slice(), [d] if d == "*")
        && vh.rate_limit.is_none()
        && matches!(vh.routes.as_slice(), [r] if r.action == RouteAction::DirectResponse(404)
            && r.path == crate::snapshot::PathMatch::Prefix("/".into())
            && r.headers.is_empty() && r.query_params.is_empty() && r.method.is_none())
}

/// The hostnames of a scoped listener, each with the virtual host serving it and its index
/// in that virtual host's domains, in order.
pub fn scoped_hosts(
    l: &ListenerSnapshot,
) -> impl Iterator<Item = (&str, &Arc<VirtualHost>, usize)> {
    l.virtual_hosts
        .iter()
        .filter(|vh| !is_catch_all(vh))
        .flat_map(|vh| {
            vh.domains
                .iter()
                .enumerate()
                .map(move |(i, d)| (d.as_str(), vh, i))
        })
}

/// The name of the scope and of the RouteConfiguration of `host` on listener `listener`.
pub fn scope_name(listener: &str, host: &str) -> String {
    format!("{listener}/scoped/{host}")
}

/// The connection manager's route specifier of a scoped listener.
pub fn route_specifier(l: &ListenerSnapshot) -> http_connection_manager::RouteSpecifier {
    use scoped_routes::scope_key_builder::{FragmentBuilder, fragment_builder};
    let header = |name: &str, separator: &str| FragmentBuilder {
        r#type: Some(fragment_builder::Type::HeaderValueExtractor(
            fragment_builder::HeaderValueExtractor {
                name: name.to_string(),
                element_separator: separator.to_string(),
                extract_type: Some(fragment_builder::header_value_extractor::ExtractType::Index(0)),
            },
        )),
    };
    http_connection_manager::RouteSpecifier::ScopedRoutes(ScopedRoutes {
        name: l.name.clone(),
        scope_key_builder: Some(scoped_routes::ScopeKeyBuilder {
            fragments: vec![header(":authority", ":"), header(PORT_HEADER, "")],
        }),
        rds_config_source: Some(super::resources::ads()),
        config_specifier: Some(scoped_routes::ConfigSpecifier::ScopedRds(ScopedRds {
            scoped_rds_config_source: Some(super::resources::ads()),
            ..Default::default()
        })),
    })
}

/// The connection manager's early header mutation of a scoped listener: [`PORT_HEADER`] set to
/// the port, replacing any value the client sent.
pub fn early_header_mutation(l: &ListenerSnapshot) -> Vec<TypedExtensionConfig> {
    let set = HeaderMutation {
        action: Some(header_mutation::Action::Append(HeaderValueOption {
            header: Some(HeaderValue {
                key: PORT_HEADER.to_string(),
                value: l.port.to_string(),
                ..Default::default()
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..Default::default()
        })),
    };
    vec![TypedExtensionConfig {
        name: "envoy.http.early_header_mutation.header_mutation".to_string(),
        typed_config: Some(pack_any(EarlyHeaderMutation {
            mutations: vec![set],
        })),
    }]
}

/// The SRDS resource of `host` on `l`: its key and the name of its RouteConfiguration.
pub fn scope(l: &ListenerSnapshot, host: &str) -> ScopedRouteConfiguration {
    use scoped_route_configuration::key::{Fragment, fragment};
    let name = scope_name(&l.name, host);
    let string_key = |s: String| Fragment {
        r#type: Some(fragment::Type::StringKey(s)),
    };
    ScopedRouteConfiguration {
        name: name.clone(),
        route_configuration_name: name,
        key: Some(scoped_route_configuration::Key {
            fragments: vec![string_key(host.to_string()), string_key(l.port.to_string())],
        }),
        ..Default::default()
    }
}

/// The RouteConfiguration of `host` on `l`: the one virtual host serving it.
pub fn route_configuration(
    l: &ListenerSnapshot,
    host: &str,
    vh: &VirtualHost,
) -> RouteConfiguration {
    RouteConfiguration {
        name: scope_name(&l.name, host),
        virtual_hosts: vec![super::resources::virtual_host(vh)],
        ignore_port_in_host_matching: true,
        request_headers_to_remove: vec![PORT_HEADER.to_string()],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use envoy_types::pb::envoy::config::listener::v3::filter;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use prost::Message;

    use super::*;
    use crate::model::HeaderModifier;
    use crate::resources::{LISTENER_TYPE, ROUTE_TYPE, build, listener};
    use crate::snapshot::{PathMatch, Route, Snapshot};

    fn vh(name: &str, domains: &[&str], action: RouteAction) -> Arc<VirtualHost> {
        Arc::new(VirtualHost {
            name: name.to_string(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: vec![Route {
                name: format!("{name}/r"),
                path: PathMatch::Prefix("/".into()),
                headers: vec![],
                query_params: vec![],
                method: None,
                request_headers: HeaderModifier::default(),
                response_headers: HeaderModifier::default(),
                cors: None,
                action,
                source: None,
            }],
            rate_limit: None,
        })
    }

    fn port(port: u16, hosts: Vec<Arc<VirtualHost>>) -> ListenerSnapshot {
        let mut virtual_hosts = hosts;
        virtual_hosts.push(vh(
            &format!("port/{port}/catch-all"),
            &["*"],
            RouteAction::DirectResponse(404),
        ));
        ListenerSnapshot {
            name: format!("port/{port}"),
            port,
            bind: format!("127.0.0.1:{port}").parse().unwrap(),
            virtual_hosts,
            gateways: BTreeSet::new(),
        }
    }

    fn hcm(l: &ListenerSnapshot) -> HttpConnectionManager {
        let Some(filter::ConfigType::TypedConfig(any)) =
            listener(l).filter_chains[0].filters[0].config_type.clone()
        else {
            panic!("typed config expected")
        };
        HttpConnectionManager::decode(&*any.value).unwrap()
    }

    #[test]
    fn a_port_is_scoped_only_when_every_hostname_is_exact() {
        let ok = RouteAction::DirectResponse(200);
        let cases = [
            (vec![], true),
            (vec![vh("a", &["a.example"], ok.clone())], true),
            (
                vec![
                    vh("a", &["a.example"], ok.clone()),
                    vh("b", &["b.example", "c.example"], ok.clone()),
                ],
                true,
            ),
            // A wildcard or hostname-less virtual host needs Envoy's host precedence.
            (
                vec![
                    vh("a", &["a.example"], ok.clone()),
                    vh("w", &["*.a.example"], ok.clone()),
                ],
                false,
            ),
            (vec![vh("any", &["*"], ok.clone())], false),
            // `*` answering 404 with a rate limit is not the plain catch-all.
            (
                vec![Arc::new(VirtualHost {
                    rate_limit: Some(crate::model::policy::RequestRate {
                        per_second: 1,
                        burst: 1,
                    }),
                    ..(*vh("any", &["*"], RouteAction::DirectResponse(404))).clone()
                })],
                false,
            ),
        ];
        for (hosts, want) in cases {
            let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
            assert_eq!(is_scoped(&port(80, hosts)), want, "{names:?}");
        }
    }

    #[test]
    fn scoped_port_keys_each_hostname_with_the_port() {
        let ok = RouteAction::DirectResponse(200);
        let l = port(
            8080,
            vec![
                vh("a", &["a.example"], ok.clone()),
                vh("b", &["b.example", "c.example"], ok.clone()),
            ],
        );
        let h = hcm(&l);
        let Some(http_connection_manager::RouteSpecifier::ScopedRoutes(sr)) = h.route_specifier
        else {
            panic!("scoped routes expected")
        };
        assert_eq!(sr.name, "port/8080");
        let builders = sr.scope_key_builder.unwrap().fragments;
        assert_eq!(builders.len(), 2);
        assert_eq!(
            h.early_header_mutation_extensions,
            early_header_mutation(&l)
        );

        let res = build(&Snapshot {
            listeners: vec![l],
            ..Default::default()
        });
        assert_eq!(res.of(LISTENER_TYPE).len(), 1);
        let scopes: Vec<ScopedRouteConfiguration> = res
            .of(SCOPED_ROUTE_TYPE)
            .iter()
            .map(|r| ScopedRouteConfiguration::decode(&*r.any.value).unwrap())
            .collect();
        let keys: Vec<(String, Vec<String>)> = scopes
            .iter()
            .map(|s| {
                let key = s.key.clone().unwrap().fragments.into_iter().map(|f| {
                    let Some(scoped_route_configuration::key::fragment::Type::StringKey(k)) =
                        f.r#type
                    else {
                        panic!("string key expected")
                    };
                    k
                });
                (s.route_configuration_name.clone(), key.collect())
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                (
                    "port/8080/scoped/a.example".into(),
                    vec!["a.example".into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/b.example".into(),
                    vec!["b.example".into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/c.example".into(),
                    vec!["c.example".into(), "8080".into()]
                ),
            ]
        );
        // One RouteConfiguration per hostname, holding its virtual host only; no catch-all (a
        // request whose key names no scope gets Envoy's 404).
        let rcs: Vec<RouteConfiguration> = res
            .of(ROUTE_TYPE)
            .iter()
            .map(|r| RouteConfiguration::decode(&*r.any.value).unwrap())
            .collect();
        assert_eq!(rcs.len(), 3);
        assert_eq!(rcs[1].name, "port/8080/scoped/b.example");
        assert_eq!(rcs[1].virtual_hosts.len(), 1);
        assert_eq!(
            rcs[1].virtual_hosts[0].domains,
            vec!["b.example", "c.example"]
        );
        assert!(rcs[1].ignore_port_in_host_matching);
        assert_eq!(rcs[1].request_headers_to_remove, vec![PORT_HEADER]);
    }

    #[test]
    fn a_port_with_a_wildcard_keeps_one_route_configuration() {
        let ok = RouteAction::DirectResponse(200);
        let l = port(
            80,
            vec![
                vh("a", &["a.example"], ok.clone()),
                vh("w", &["*.a.example"], ok.clone()),
            ],
        );
        let h = hcm(&l);
        assert!(matches!(
            h.route_specifier,
            Some(http_connection_manager::RouteSpecifier::Rds(_))
        ));
        assert!(h.early_header_mutation_extensions.is_empty());
        let res = build(&Snapshot {
            listeners: vec![l],
            ..Default::default()
        });
        assert!(res.of(SCOPED_ROUTE_TYPE).is_empty());
        let rc = RouteConfiguration::decode(&*res.of(ROUTE_TYPE)[0].any.value).unwrap();
        assert_eq!(rc.name, "port/80");
        assert_eq!(rc.virtual_hosts.len(), 3);
    }
}
