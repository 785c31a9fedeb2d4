//! Table tests of `translate`: claiming, which objects are sent, parentRef filtering, matches,
//! filters and backends.

use fleetgate_proto::spoke::v1::{Kind, Object, http_filter, object, path_match};
use gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesFrom;
use gateway_api::httproutes::{
    HttpRouteParentRefs, HttpRouteRulesFilters, HttpRouteRulesFiltersCors,
    HttpRouteRulesFiltersExtensionRef, HttpRouteRulesFiltersRequestHeaderModifier,
    HttpRouteRulesFiltersRequestHeaderModifierSet, HttpRouteRulesFiltersRequestMirror,
    HttpRouteRulesFiltersRequestMirrorBackendRef, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersRequestRedirectPath, HttpRouteRulesFiltersRequestRedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme, HttpRouteRulesFiltersResponseHeaderModifier,
    HttpRouteRulesFiltersResponseHeaderModifierAdd, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePath,
    HttpRouteRulesFiltersUrlRewritePathType, HttpRouteRulesMatches, HttpRouteRulesMatchesHeaders,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPath,
    HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParams,
    HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesTimeouts,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::claim::CONTROLLER_NAME;
use crate::test_support::*;

fn base() -> ClusterState {
    ClusterState {
        gateway_classes: vec![
            gateway_class("fleetgate", CONTROLLER_NAME),
            gateway_class("other", "example.com/other"),
        ],
        gateways: vec![
            gateway(
                "infra",
                "gw",
                "fleetgate",
                &[("http", "HTTP", 8080, Some("*.a.example"))],
            ),
            gateway("infra", "foreign", "other", &[("http", "HTTP", 80, None)]),
            gateway(
                "infra",
                "orphan",
                "missing-class",
                &[("http", "HTTP", 80, None)],
            ),
        ],
        services: vec![service(
            "app",
            "web",
            "NodePort",
            &[(None, 80, Some(30080), IntOrString::Int(8080))],
        )],
        nodes: vec![node("n1", Some("127.0.1.1"), None)],
        ..Default::default()
    }
}

fn names(objs: &[Object]) -> Vec<String> {
    objs.iter()
        .map(|o| {
            let r = o.r#ref.as_ref().unwrap();
            let k = if r.kind == Kind::Gateway as i32 {
                "gw"
            } else {
                "route"
            };
            format!("{k}:{}/{}", r.namespace, r.name)
        })
        .collect()
}

fn route_spec(o: &Object) -> &pb::HttpRoute {
    match o.spec.as_ref().unwrap() {
        object::Spec::HttpRoute(r) => r,
        other => panic!("not a route: {other:?}"),
    }
}

#[test]
fn which_objects_are_sent() {
    let gw_ref = |ns: Option<&str>| parent(ns, "gw");
    let kind_ref = |group: Option<&str>, kind: Option<&str>| HttpRouteParentRefs {
        group: group.map(str::to_string),
        kind: kind.map(str::to_string),
        namespace: Some("infra".into()),
        name: "gw".into(),
        ..Default::default()
    };
    let cases: Vec<(&str, Vec<HttpRouteParentRefs>, bool)> = vec![
        (
            "explicit namespace to a claimed gateway",
            vec![gw_ref(Some("infra"))],
            true,
        ),
        (
            "namespace defaults to the route's (app/gw does not exist)",
            vec![gw_ref(None)],
            false,
        ),
        (
            "foreign class gateway",
            vec![parent(Some("infra"), "foreign")],
            false,
        ),
        (
            "gateway of an unknown class",
            vec![parent(Some("infra"), "orphan")],
            false,
        ),
        (
            "explicit group and kind",
            vec![kind_ref(Some(GATEWAY_GROUP), Some("Gateway"))],
            true,
        ),
        (
            "a ListenerSet that is not sent (there is none) is ignored",
            vec![kind_ref(Some(GATEWAY_GROUP), Some("ListenerSet"))],
            false,
        ),
        (
            "other group is ignored",
            vec![kind_ref(Some("example.com"), Some("Gateway"))],
            false,
        ),
        (
            "one good parent among others",
            vec![parent(Some("infra"), "foreign"), gw_ref(Some("infra"))],
            true,
        ),
        ("no parents", vec![], false),
    ];
    for (name, parents, sent) in cases {
        let mut st = base();
        st.http_routes = vec![http_route("app", "r", parents, &[], vec![])];
        let out = translate(&st, EndpointMode::Node);
        let mut want = vec!["gw:infra/gw".to_string()];
        if sent {
            want.push("route:app/r".into());
            let r = route_spec(&out[1]);
            assert_eq!(r.parent_refs.len(), 1, "{name}: only refs to sent gateways");
            assert_eq!(
                (
                    r.parent_refs[0].namespace.as_str(),
                    r.parent_refs[0].name.as_str()
                ),
                ("infra", "gw")
            );
        }
        assert_eq!(names(&out), want, "{name}");
    }
}

#[test]
fn route_default_namespace_parent_and_gateway_fields() {
    let mut st = base();
    st.gateways.push(with_from(
        gateway("app", "gw", "fleetgate", &[("web", "HTTP", 80, None)]),
        GatewayListenersAllowedRoutesNamespacesFrom::All,
    ));
    st.http_routes = vec![http_route(
        "app",
        "r",
        vec![parent(None, "gw")],
        &["a.example"],
        vec![],
    )];
    let out = translate(&st, EndpointMode::Node);
    assert_eq!(names(&out), ["gw:app/gw", "gw:infra/gw", "route:app/r"]);
    let object::Spec::Gateway(g) = out[0].spec.as_ref().unwrap() else {
        panic!()
    };
    let l = &g.listeners[0];
    assert_eq!(
        (
            l.name.as_str(),
            l.protocol.as_str(),
            l.port,
            l.hostname.as_str()
        ),
        ("web", "HTTP", 80, "")
    );
    assert_eq!(l.allowed_routes.as_ref().unwrap().from, "All");
    let object::Spec::Gateway(g) = out[1].spec.as_ref().unwrap() else {
        panic!()
    };
    assert_eq!(g.listeners[0].hostname, "*.a.example");
    assert_eq!(g.listeners[0].allowed_routes.as_ref().unwrap().from, "Same");
    assert_eq!(out[1].generation, 1);
    assert_eq!(out[1].creation_timestamp, "2023-11-14T22:13:20Z");
    let r = route_spec(&out[2]);
    assert_eq!(r.hostnames, ["a.example"]);
    assert_eq!(r.parent_refs[0].namespace, "app");
}

fn header(
    name: &str,
    value: &str,
    t: Option<HttpRouteRulesMatchesHeadersType>,
) -> HttpRouteRulesMatchesHeaders {
    HttpRouteRulesMatchesHeaders {
        name: name.into(),
        value: value.into(),
        r#type: t,
    }
}

#[test]
fn match_table() {
    let path = |t: Option<HttpRouteRulesMatchesPathType>, v: Option<&str>| HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: t,
            value: v.map(str::to_string),
        }),
        ..Default::default()
    };
    let pp = path_match::Type::PathPrefix as i32;
    let ex = path_match::Type::Exact as i32;
    let re = path_match::Type::RegularExpression as i32;
    // (name, match, (path type, path value, header (name, regex) pairs, query (name, regex)
    // pairs, method))
    type Want = (
        i32,
        &'static str,
        Vec<(&'static str, bool)>,
        Vec<(&'static str, bool)>,
        &'static str,
    );
    let cases: Vec<(&str, HttpRouteRulesMatches, Want)> = vec![
        (
            "empty match is PathPrefix /",
            HttpRouteRulesMatches::default(),
            (pp, "/", vec![], vec![], ""),
        ),
        (
            "prefix",
            path(None, Some("/api")),
            (pp, "/api", vec![], vec![], ""),
        ),
        (
            "exact",
            path(Some(HttpRouteRulesMatchesPathType::Exact), Some("/x")),
            (ex, "/x", vec![], vec![], ""),
        ),
        (
            "no value",
            path(Some(HttpRouteRulesMatchesPathType::PathPrefix), None),
            (pp, "/", vec![], vec![], ""),
        ),
        (
            "regex path",
            path(
                Some(HttpRouteRulesMatchesPathType::RegularExpression),
                Some("/.*"),
            ),
            (re, "/.*", vec![], vec![], ""),
        ),
        (
            "exact and regex headers",
            HttpRouteRulesMatches {
                headers: Some(vec![
                    header("x-a", "1", None),
                    header("x-b", "2", Some(HttpRouteRulesMatchesHeadersType::Exact)),
                    header(
                        "x-c",
                        ".*",
                        Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
                    ),
                ]),
                ..Default::default()
            },
            (
                pp,
                "/",
                vec![("x-a", false), ("x-b", false), ("x-c", true)],
                vec![],
                "",
            ),
        ),
        (
            "query params and method",
            HttpRouteRulesMatches {
                method: Some(HttpRouteRulesMatchesMethod::Post),
                query_params: Some(vec![
                    HttpRouteRulesMatchesQueryParams {
                        name: "animal".into(),
                        value: "whale".into(),
                        r#type: None,
                    },
                    HttpRouteRulesMatchesQueryParams {
                        name: "color".into(),
                        value: "bl.*".into(),
                        r#type: Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression),
                    },
                ]),
                ..Default::default()
            },
            (
                pp,
                "/",
                vec![],
                vec![("animal", false), ("color", true)],
                "POST",
            ),
        ),
    ];
    for (name, m, (t, v, h, q, method)) in cases {
        let got = translate_match(&m).unwrap();
        let p = got.path.unwrap();
        assert_eq!((p.r#type, p.value.as_str()), (t, v), "{name}");
        let hs: Vec<(&str, bool)> = got
            .headers
            .iter()
            .map(|x| (x.name.as_str(), x.regular_expression))
            .collect();
        assert_eq!(hs, h, "{name}");
        let qs: Vec<(&str, bool)> = got
            .query_params
            .iter()
            .map(|x| (x.name.as_str(), x.regular_expression))
            .collect();
        assert_eq!(qs, q, "{name}");
        assert_eq!(got.method, method, "{name}");
    }
}

fn route_with_filters(filters: Vec<HttpRouteRulesFilters>) -> ClusterState {
    let mut r = rule(vec![], vec![backend_ref(None, None, None, "web", Some(80))]);
    r.filters = Some(filters);
    let mut st = base();
    st.http_routes = vec![http_route(
        "app",
        "r",
        vec![parent(Some("infra"), "gw")],
        &[],
        vec![r, rule(vec![path_prefix("/other")], vec![])],
    )];
    st
}

#[test]
fn every_filter_type_is_sent() {
    let st = route_with_filters(vec![
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::RequestHeaderModifier,
            request_header_modifier: Some(HttpRouteRulesFiltersRequestHeaderModifier {
                set: Some(vec![HttpRouteRulesFiltersRequestHeaderModifierSet {
                    name: "x-set".into(),
                    value: "1".into(),
                }]),
                add: None,
                remove: Some(vec!["x-gone".into()]),
            }),
            ..Default::default()
        },
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::ResponseHeaderModifier,
            response_header_modifier: Some(HttpRouteRulesFiltersResponseHeaderModifier {
                add: Some(vec![HttpRouteRulesFiltersResponseHeaderModifierAdd {
                    name: "x-resp".into(),
                    value: "2".into(),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::UrlRewrite,
            url_rewrite: Some(HttpRouteRulesFiltersUrlRewrite {
                hostname: Some("internal.example".into()),
                path: Some(HttpRouteRulesFiltersUrlRewritePath {
                    r#type: HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch,
                    replace_prefix_match: Some("/v2".into()),
                    replace_full_path: None,
                }),
            }),
            ..Default::default()
        },
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::RequestMirror,
            request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
                backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                    name: "web".into(),
                    port: Some(80),
                    ..Default::default()
                },
                fraction: None,
                percent: Some(25),
            }),
            ..Default::default()
        },
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::RequestMirror,
            request_mirror: Some(HttpRouteRulesFiltersRequestMirror {
                backend_ref: HttpRouteRulesFiltersRequestMirrorBackendRef {
                    name: "nope".into(),
                    port: Some(80),
                    ..Default::default()
                },
                fraction: None,
                percent: None,
            }),
            ..Default::default()
        },
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::Cors,
            cors: Some(HttpRouteRulesFiltersCors {
                allow_origins: Some(vec!["https://a.example".into()]),
                allow_methods: Some(vec!["GET".into()]),
                max_age: Some(60),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]);
    let out = translate(&st, EndpointMode::Node);
    let f = &route_spec(&out[1]).rules[0].filters;
    assert_eq!(f.len(), 6);
    let Some(http_filter::Kind::RequestHeaderModifier(m)) = &f[0].kind else {
        panic!("{f:?}")
    };
    assert_eq!(
        (m.set[0].name.as_str(), m.set[0].value.as_str()),
        ("x-set", "1")
    );
    assert_eq!(m.remove, ["x-gone"]);
    let Some(http_filter::Kind::ResponseHeaderModifier(m)) = &f[1].kind else {
        panic!("{f:?}")
    };
    assert_eq!(m.add[0].name, "x-resp");
    let Some(http_filter::Kind::UrlRewrite(rw)) = &f[2].kind else {
        panic!("{f:?}")
    };
    assert_eq!(rw.hostname, "internal.example");
    let p = rw.path.as_ref().unwrap();
    assert_eq!(
        (p.r#type, p.value.as_str()),
        (pb::path_modifier::Type::ReplacePrefixMatch as i32, "/v2")
    );
    let Some(http_filter::Kind::RequestMirror(mi)) = &f[3].kind else {
        panic!("{f:?}")
    };
    assert_eq!((mi.numerator, mi.denominator), (25, 100));
    let mb = mi.backend.as_ref().unwrap();
    assert_eq!(
        mb.endpoints.len(),
        1,
        "the mirror backend is resolved like any backend"
    );
    assert_eq!(mb.endpoints[0].port, 30080);
    let Some(http_filter::Kind::RequestMirror(missing)) = &f[4].kind else {
        panic!("{f:?}")
    };
    assert_eq!((missing.numerator, missing.denominator), (0, 0));
    assert_eq!(
        missing
            .backend
            .as_ref()
            .unwrap()
            .problem
            .as_ref()
            .unwrap()
            .reason,
        "BackendNotFound"
    );
    let Some(http_filter::Kind::Cors(c)) = &f[5].kind else {
        panic!("{f:?}")
    };
    assert_eq!(
        (c.allow_origins.as_slice(), c.max_age),
        (&["https://a.example".to_string()][..], 60)
    );
}

#[test]
fn redirects_are_sent_with_every_field() {
    let st = route_with_filters(vec![HttpRouteRulesFilters {
        r#type: HttpRouteRulesFiltersType::RequestRedirect,
        request_redirect: Some(HttpRouteRulesFiltersRequestRedirect {
            hostname: Some("b.example".into()),
            path: Some(HttpRouteRulesFiltersRequestRedirectPath {
                r#type: HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath,
                replace_full_path: Some("/new".into()),
                replace_prefix_match: None,
            }),
            port: Some(8443),
            scheme: Some(HttpRouteRulesFiltersRequestRedirectScheme::Https),
            status_code: Some(301),
        }),
        ..Default::default()
    }]);
    let out = translate(&st, EndpointMode::Node);
    let f = &route_spec(&out[1]).rules[0].filters;
    let Some(http_filter::Kind::RequestRedirect(r)) = &f[0].kind else {
        panic!("{f:?}")
    };
    assert_eq!(
        (
            r.scheme.as_str(),
            r.hostname.as_str(),
            r.port,
            r.status_code
        ),
        ("https", "b.example", 8443, 301)
    );
    assert_eq!(r.path.as_ref().unwrap().value, "/new");
}

#[test]
fn a_rule_with_an_unsupported_filter_is_kept_with_the_filter_marked_unsupported() {
    // Dropping the rule would let its requests fall through to a less specific rule (widened);
    // skipping the filter would serve them without it. The rule is sent with the filter marked
    // unsupported, and the hub answers its requests with 500.
    let st = route_with_filters(vec![
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::ExtensionRef,
            extension_ref: Some(HttpRouteRulesFiltersExtensionRef {
                group: "example.com".into(),
                kind: "Auth".into(),
                name: "strict".into(),
            }),
            ..Default::default()
        },
        // A type whose configuration is missing is unsupported too.
        HttpRouteRulesFilters {
            r#type: HttpRouteRulesFiltersType::UrlRewrite,
            ..Default::default()
        },
    ]);
    let out = translate(&st, EndpointMode::Node);
    let rules = &route_spec(&out[1]).rules;
    assert_eq!(rules.len(), 2, "both rules are sent");
    assert_eq!(rules[0].backends.len(), 1);
    let kinds: Vec<_> = rules[0]
        .filters
        .iter()
        .map(|f| match &f.kind {
            Some(http_filter::Kind::Unsupported(u)) => (u.r#type.as_str(), u.message.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds[0].0, "ExtensionRef");
    assert!(
        kinds[0].1.contains("example.com/Auth \"strict\"")
            && kinds[0].1.contains("answered with 500")
            && kinds[0].1.contains("remove the filter"),
        "{}",
        kinds[0].1
    );
    assert_eq!(kinds[1].0, "URLRewrite");
    assert!(
        kinds[1].1.contains("has no configuration"),
        "{}",
        kinds[1].1
    );
    assert!(rules[1].filters.is_empty());
}

#[test]
fn timeouts_are_sent_as_written() {
    let mut st = route_with_filters(vec![]);
    st.http_routes[0].spec.rules.as_mut().unwrap()[0].timeouts = Some(HttpRouteRulesTimeouts {
        request: Some("10s".into()),
        backend_request: None,
    });
    let out = translate(&st, EndpointMode::Node);
    let rules = &route_spec(&out[1]).rules;
    let t = rules[0].timeouts.as_ref().unwrap();
    assert_eq!(
        (t.request.as_str(), t.backend_request.as_str()),
        ("10s", "")
    );
    assert!(rules[1].timeouts.is_none());
}

#[test]
fn nothing_claimed_sends_nothing() {
    let mut st = base();
    st.gateway_classes.remove(0);
    st.http_routes = vec![http_route(
        "app",
        "r",
        vec![parent(Some("infra"), "gw")],
        &[],
        vec![],
    )];
    assert!(translate(&st, EndpointMode::Node).is_empty());
    assert!(claimed_classes(&st).is_empty());
}

#[test]
fn selector_listeners_send_the_namespaces_the_selector_selects_now() {
    use gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesSelector;
    use k8s_openapi::api::core::v1::Namespace;
    let labelled = |name: &str, labels: &[(&str, &str)]| Namespace {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut gw = with_from(
        gateway("infra", "sel", "fleetgate", &[("web", "HTTP", 80, None)]),
        GatewayListenersAllowedRoutesNamespacesFrom::Selector,
    );
    let sent = |st: &ClusterState| -> (String, Vec<String>) {
        let out = translate(st, EndpointMode::Node);
        let o = out
            .iter()
            .find(|o| o.r#ref.as_ref().unwrap().name == "sel")
            .expect("the Gateway is sent");
        let object::Spec::Gateway(g) = o.spec.as_ref().unwrap() else {
            panic!()
        };
        let a = g.listeners[0].allowed_routes.clone().unwrap();
        (a.from, a.namespaces)
    };
    let mut st = ClusterState {
        gateway_classes: vec![gateway_class("fleetgate", CONTROLLER_NAME)],
        namespaces: vec![
            labelled("team-a", &[("shared-gateway", "yes")]),
            labelled("team-b", &[("shared-gateway", "no")]),
            labelled("plain", &[]),
        ],
        ..Default::default()
    };
    // No selector: nothing is admitted (never widened).
    st.gateways = vec![gw.clone()];
    assert_eq!(sent(&st), ("Selector".to_string(), vec![]));
    gw.spec.listeners[0]
        .allowed_routes
        .as_mut()
        .unwrap()
        .namespaces
        .as_mut()
        .unwrap()
        .selector = Some(GatewayListenersAllowedRoutesNamespacesSelector {
        match_labels: Some([("shared-gateway".to_string(), "yes".to_string())].into()),
        match_expressions: None,
    });
    st.gateways = vec![gw];
    assert_eq!(
        sent(&st),
        ("Selector".to_string(), vec!["team-a".to_string()])
    );
    // Labelling a namespace changes what is sent.
    st.namespaces[2] = labelled("plain", &[("shared-gateway", "yes")]);
    assert_eq!(
        sent(&st),
        (
            "Selector".to_string(),
            vec!["plain".to_string(), "team-a".to_string()]
        )
    );
}

#[test]
fn allowed_route_kinds_are_sent_with_the_group_defaulted() {
    use gateway_api::gateways::{
        GatewayListenersAllowedRoutes, GatewayListenersAllowedRoutesKinds,
    };
    let mut gw = gateway("infra", "k", "fleetgate", &[("web", "HTTP", 80, None)]);
    gw.spec.listeners[0].allowed_routes = Some(GatewayListenersAllowedRoutes {
        namespaces: None,
        kinds: Some(vec![
            GatewayListenersAllowedRoutesKinds {
                group: None,
                kind: "HTTPRoute".into(),
            },
            GatewayListenersAllowedRoutesKinds {
                group: Some("example.com".into()),
                kind: "Other".into(),
            },
        ]),
    });
    let st = ClusterState {
        gateway_classes: vec![gateway_class("fleetgate", CONTROLLER_NAME)],
        gateways: vec![gw],
        ..Default::default()
    };
    let out = translate(&st, EndpointMode::Node);
    let object::Spec::Gateway(g) = out[0].spec.as_ref().unwrap() else {
        panic!()
    };
    let kinds: Vec<(String, String)> = g.listeners[0]
        .allowed_routes
        .as_ref()
        .unwrap()
        .kinds
        .iter()
        .map(|k| (k.group.clone(), k.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                "gateway.networking.k8s.io".to_string(),
                "HTTPRoute".to_string()
            ),
            ("example.com".to_string(), "Other".to_string())
        ]
    );
}

/// Gateway fields fleetgate does not implement are sent as written, so that the hub refuses
/// them with a condition instead of their being ignored (issue 10's audit): spec.addresses,
/// spec.tls.frontend/backend, the infrastructure's and the class's parametersRef, listener
/// tls.options.
#[test]
fn unsupported_gateway_fields_are_sent_for_the_hub_to_refuse() {
    let mut st = base();
    st.gateway_classes[0].spec.parameters_ref =
        Some(gateway_api::gatewayclasses::GatewayClassParametersRef {
            group: String::new(),
            kind: "ConfigMap".into(),
            name: "params".into(),
            namespace: Some("infra".into()),
        });
    let g: gateway_api::gateways::GatewaySpec = serde_json::from_value(serde_json::json!({
        "gatewayClassName": "fleetgate",
        "addresses": [{"value": "192.0.2.7"}, {"type": "Hostname", "value": "lb.example"}],
        "tls": {
            "frontend": {"default": {"validation": {"caCertificateRefs": [{"kind": "ConfigMap", "name": "ca", "group": ""}]}}},
            "backend": {"clientCertificateRef": {"name": "client"}},
        },
        "infrastructure": {"parametersRef": {"group": "example.com", "kind": "GwParams", "name": "gp"}},
        "listeners": [{"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "app.a.example",
                       "tls": {"certificateRefs": [{"name": "cert"}], "options": {"example.com/min-version": "1.3"}}}],
    }))
    .unwrap();
    st.gateways[0].spec = g;
    let out = translate(&st, EndpointMode::Node);
    let Some(object::Spec::Gateway(g)) = &out[0].spec else {
        panic!("{:?}", out[0])
    };
    let addresses: Vec<(&str, &str)> = g
        .addresses
        .iter()
        .map(|a| (a.r#type.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        addresses,
        vec![("", "192.0.2.7"), ("Hostname", "lb.example")]
    );
    assert!(g.tls_frontend && g.tls_backend);
    assert_eq!(g.infrastructure_parameters_ref, "example.com/GwParams gp");
    assert_eq!(g.class_parameters_ref, "core/ConfigMap params");
    assert_eq!(
        g.listeners[0].tls.as_ref().unwrap().options,
        vec!["example.com/min-version".to_string()]
    );
    // A Gateway that sets none of them sends none.
    let plain = translate(&base(), EndpointMode::Node);
    let Some(object::Spec::Gateway(p)) = &plain[0].spec else {
        panic!("{:?}", plain[0])
    };
    assert!(p.addresses.is_empty() && !p.tls_frontend && !p.tls_backend);
    assert!(p.infrastructure_parameters_ref.is_empty() && p.class_parameters_ref.is_empty());
}
