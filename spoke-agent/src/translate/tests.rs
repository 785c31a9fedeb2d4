//! Table tests of `translate`: claiming, which objects are sent, parentRef filtering, matches,
//! filters and backends.

use fleetgate_proto::spoke::v1::{Kind, Object, http_filter, object, path_match};
use gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesFrom;
use gateway_api::httproutes::{
    HttpRouteParentRefs, HttpRouteRulesFilters, HttpRouteRulesFiltersRequestHeaderModifier,
    HttpRouteRulesFiltersRequestHeaderModifierSet, HttpRouteRulesFiltersType,
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType,
    HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
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
            "other kind is ignored",
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
    type Case = (
        &'static str,
        HttpRouteRulesMatches,
        Result<(i32, &'static str, usize), &'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "empty match is PathPrefix /",
            HttpRouteRulesMatches::default(),
            Ok((pp, "/", 0)),
        ),
        ("prefix", path(None, Some("/api")), Ok((pp, "/api", 0))),
        (
            "exact",
            path(Some(HttpRouteRulesMatchesPathType::Exact), Some("/x")),
            Ok((ex, "/x", 0)),
        ),
        (
            "no value",
            path(Some(HttpRouteRulesMatchesPathType::PathPrefix), None),
            Ok((pp, "/", 0)),
        ),
        (
            "regex path",
            path(
                Some(HttpRouteRulesMatchesPathType::RegularExpression),
                Some("/.*"),
            ),
            Err("RegularExpression"),
        ),
        (
            "exact headers",
            HttpRouteRulesMatches {
                headers: Some(vec![
                    header("x-a", "1", None),
                    header("x-b", "2", Some(HttpRouteRulesMatchesHeadersType::Exact)),
                ]),
                ..Default::default()
            },
            Ok((pp, "/", 2)),
        ),
        (
            "regex header",
            HttpRouteRulesMatches {
                headers: Some(vec![
                    header("x-a", "1", None),
                    header(
                        "x-b",
                        ".*",
                        Some(HttpRouteRulesMatchesHeadersType::RegularExpression),
                    ),
                ]),
                ..Default::default()
            },
            Err("x-b"),
        ),
        (
            "method",
            HttpRouteRulesMatches {
                method: Some(HttpRouteRulesMatchesMethod::Get),
                ..Default::default()
            },
            Err("method"),
        ),
    ];
    for (name, m, want) in cases {
        match (translate_match(&m), want) {
            (Ok(got), Ok((t, v, h))) => {
                let p = got.path.unwrap();
                assert_eq!(
                    (p.r#type, p.value.as_str(), got.headers.len()),
                    (t, v, h),
                    "{name}"
                );
            }
            (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn rules_drop_unsupported_matches_without_widening() {
    let regex = HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: Some(HttpRouteRulesMatchesPathType::RegularExpression),
            value: Some("/r.*".into()),
        }),
        ..Default::default()
    };
    let web = || backend_ref(None, None, None, "web", Some(80));
    let mut st = base();
    st.http_routes = vec![http_route(
        "app",
        "r",
        vec![parent(Some("infra"), "gw")],
        &[],
        vec![
            rule(vec![regex.clone(), path_prefix("/ok")], vec![web()]),
            rule(vec![regex], vec![web()]),
            rule(
                vec![],
                vec![web(), backend_ref(None, None, None, "nope", Some(80))],
            ),
        ],
    )];
    let out = translate(&st, EndpointMode::Node);
    let r = route_spec(&out[1]);
    assert_eq!(
        r.rules.len(),
        2,
        "the rule with only a regex match is dropped"
    );
    assert_eq!(r.rules[0].matches.len(), 1);
    assert_eq!(r.rules[0].matches[0].path.as_ref().unwrap().value, "/ok");
    assert!(
        r.rules[1].matches.is_empty(),
        "no matches written stays no matches (PathPrefix /)"
    );
    let b = &r.rules[1].backends;
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].endpoints.len(), 1);
    assert_eq!(b[0].endpoints[0].address, "127.0.1.1");
    assert_eq!(b[1].problem.as_ref().unwrap().reason, "BackendNotFound");
}

#[test]
fn only_request_header_modifier_filters_are_sent() {
    let rhm = HttpRouteRulesFilters {
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
    };
    let mirror = HttpRouteRulesFilters {
        r#type: HttpRouteRulesFiltersType::ResponseHeaderModifier,
        ..Default::default()
    };
    let mut r = rule(vec![], vec![]);
    r.filters = Some(vec![mirror, rhm]);
    let mut st = base();
    st.http_routes = vec![http_route(
        "app",
        "r",
        vec![parent(Some("infra"), "gw")],
        &[],
        vec![r],
    )];
    let out = translate(&st, EndpointMode::Node);
    let f = &route_spec(&out[1]).rules[0].filters;
    assert_eq!(f.len(), 1);
    let Some(http_filter::Kind::RequestHeaderModifier(m)) = &f[0].kind else {
        panic!()
    };
    assert_eq!(
        (m.set[0].name.as_str(), m.set[0].value.as_str()),
        ("x-set", "1")
    );
    assert!(m.add.is_empty());
    assert_eq!(m.remove, ["x-gone"]);
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
