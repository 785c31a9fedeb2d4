//! Table tests of the HTTPRoute features beyond the walking skeleton, ported from the Gateway
//! API conformance cases (httproute-path-match-order, httproute-matching-across-routes,
//! httproute-query-param-matching, httproute-method-matching, httproute-redirect-*,
//! httproute-rewrite-*, httproute-request/response-header-modifier, httproute-request-mirror,
//! httproute-weight, httproute-timeout-*).

use std::time::Duration;

use super::*;
use crate::model::{
    Cors, HttpFilter, Mirror, PathModifier, Redirect as ModelRedirect, Rewrite as ModelRewrite,
    Timeouts, ValueMatch,
};

fn regex(p: &str) -> HttpRouteMatch {
    HttpRouteMatch {
        path: crate::model::PathMatch::RegularExpression(p.into()),
        ..prefix("/")
    }
}

fn with_method(mut m: HttpRouteMatch, method: &str) -> HttpRouteMatch {
    m.method = Some(method.into());
    m
}

fn with_query(mut m: HttpRouteMatch, n: usize) -> HttpRouteMatch {
    m.query_params = (0..n)
        .map(|i| (format!("q{i}"), ValueMatch::Exact("v".into())))
        .collect();
    m
}

fn gw() -> Gateway {
    gateway(
        "default",
        "gw",
        vec![listener("http", 80), listener("alt", 8080)],
    )
}

fn p() -> Vec<ParentRef> {
    vec![parent("default", "gw")]
}

fn b() -> Vec<Backend> {
    vec![backend("svc", 1, &["127.0.1.1:80"])]
}

fn with_filters(mut r: HttpRouteRule, filters: Vec<HttpFilter>) -> HttpRouteRule {
    r.filters = filters.into();
    r
}

/// Compiles one route on `h.example` and returns the routes of that host on `port`.
fn compiled(rules: Vec<HttpRouteRule>) -> Compiled {
    compile(
        &one(
            vec![gw()],
            vec![route("default", "r", p(), &["h.example"], rules)],
        ),
        &dp(),
    )
}

fn routes_on(c: &Compiled, port: u16) -> Vec<Route> {
    vhost(c, port, "h.example").unwrap().routes.clone()
}

/// Names of the routes of `h.example` on port 80, as `rRULE/mMATCH`.
fn order(c: &Compiled) -> Vec<String> {
    routes_on(c, 80)
        .iter()
        .map(|r| {
            let mut parts = r.name.rsplit('/');
            let m = parts.next().unwrap();
            let rule = parts.next().unwrap();
            format!("{rule}/{m}")
        })
        .collect()
}

#[test]
fn path_match_order() {
    // httproute-path-match-order: exact > longest prefix; regex sits between (fleetgate's
    // documented choice); element-wise prefixes keep their length order.
    let c = compiled(vec![
        rule(vec![prefix("/match")], b()),
        rule(vec![exact("/match/exact/one")], b()),
        rule(vec![prefix("/match/prefix/one")], b()),
        rule(vec![exact("/match")], b()),
        rule(vec![prefix("/match/prefix/")], b()),
        rule(vec![regex("/match/[0-9]+")], b()),
        rule(vec![regex("/m.*")], b()),
    ]);
    assert_eq!(
        order(&c),
        vec![
            "r1/m0", "r3/m0", "r5/m0", "r6/m0", "r2/m0", "r4/m0", "r0/m0"
        ]
    );
    let r = routes_on(&c, 80);
    assert_eq!(
        r[2].path,
        PathMatch::RegularExpression("/match/[0-9]+".into())
    );
    assert_eq!(r[5].path, PathMatch::Prefix("/match/prefix".into()));
}

#[test]
fn method_then_headers_then_query_params() {
    // Gateway API: ... > method > most headers > most query params > rule order.
    let c = compiled(vec![
        rule(vec![prefix("/api")], b()),
        rule(vec![with_query(prefix("/api"), 2)], b()),
        rule(vec![with_headers(prefix("/api"), 1)], b()),
        rule(vec![with_query(with_headers(prefix("/api"), 1), 1)], b()),
        rule(vec![with_method(prefix("/api"), "POST")], b()),
        rule(
            vec![with_method(with_headers(prefix("/api"), 1), "GET")],
            b(),
        ),
        rule(vec![with_query(prefix("/api"), 1)], b()),
    ]);
    assert_eq!(
        order(&c),
        vec![
            "r5/m0", "r4/m0", "r3/m0", "r2/m0", "r1/m0", "r6/m0", "r0/m0"
        ]
    );
    let r = routes_on(&c, 80);
    assert_eq!(r[0].method.as_deref(), Some("GET"));
    assert_eq!(r[2].query_params.len(), 1);
}

#[test]
fn matching_across_routes_uses_age_then_name() {
    // httproute-matching-across-routes: the same match in two routes goes to the older one;
    // a more specific match of the newer route still wins.
    let mut older = route(
        "default",
        "zz-older",
        p(),
        &["h.example"],
        vec![rule(vec![with_method(prefix("/x"), "GET")], b())],
    );
    older.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
    let newer = route(
        "default",
        "aa-newer",
        p(),
        &["h.example"],
        vec![
            rule(vec![with_method(prefix("/x"), "GET")], b()),
            rule(vec![with_query(with_method(prefix("/x"), "GET"), 1)], b()),
        ],
    );
    let c = compile(&one(vec![gw()], vec![older, newer]), &dp());
    let names = route_names(vhost(&c, 80, "h.example").unwrap());
    let t = "t/a/c/c1/default";
    assert_eq!(
        names,
        vec![
            format!("{t}/aa-newer/r1/m0"),
            format!("{t}/zz-older/r0/m0"),
            format!("{t}/aa-newer/r0/m0"),
        ]
    );
}

fn redirect(path: Option<PathModifier>) -> ModelRedirect {
    ModelRedirect {
        scheme: None,
        hostname: None,
        path,
        port: None,
        status_code: 302,
    }
}

#[test]
fn redirects_table() {
    // httproute-redirect-{host-and-status,path,port,scheme,port-and-scheme}.
    type Case = (&'static str, ModelRedirect, u16, Redirect);
    let want =
        |scheme: Option<&str>, port: Option<u16>, path: Option<PathRewrite>, code| Redirect {
            scheme: scheme.map(str::to_string),
            hostname: None,
            path,
            port,
            status_code: code,
        };
    let cases: Vec<Case> = vec![
        (
            "listener 80, nothing set: no port in Location",
            redirect(None),
            80,
            want(None, None, None, 302),
        ),
        (
            "listener 8080, no scheme: the listener's port",
            redirect(None),
            8080,
            want(None, Some(8080), None, 302),
        ),
        (
            "scheme set: its default port (none written)",
            ModelRedirect {
                scheme: Some("https".into()),
                ..redirect(None)
            },
            8080,
            want(Some("https"), None, None, 302),
        ),
        (
            "explicit port and status",
            ModelRedirect {
                port: Some(8443),
                status_code: 301,
                ..redirect(None)
            },
            80,
            want(None, Some(8443), None, 301),
        ),
        (
            "the default port of the redirect's scheme is not written",
            ModelRedirect {
                scheme: Some("https".into()),
                port: Some(443),
                ..redirect(None)
            },
            8080,
            want(Some("https"), None, None, 302),
        ),
        (
            "explicit port 80 on an http listener is not written either",
            ModelRedirect {
                port: Some(80),
                ..redirect(None)
            },
            8080,
            want(None, None, None, 302),
        ),
        (
            "a non-default port with a scheme is kept",
            ModelRedirect {
                scheme: Some("http".into()),
                port: Some(8080),
                ..redirect(None)
            },
            80,
            want(Some("http"), Some(8080), None, 302),
        ),
        (
            "ReplacePrefixMatch carries the matched (normalised) prefix",
            redirect(Some(PathModifier::ReplacePrefixMatch("/new".into()))),
            80,
            want(
                None,
                None,
                Some(PathRewrite::Prefix {
                    matched: "/old".into(),
                    replacement: "/new".into(),
                }),
                302,
            ),
        ),
        (
            "ReplaceFullPath",
            redirect(Some(PathModifier::ReplaceFullPath("/full".into()))),
            80,
            want(None, None, Some(PathRewrite::Full("/full".into())), 302),
        ),
    ];
    for (name, rd, port, want) in cases {
        // A redirect rule needs no backendRefs; it is never the 500 of an empty rule.
        let c = compiled(vec![with_filters(
            rule(vec![prefix("/old/")], vec![]),
            vec![HttpFilter::RequestRedirect(rd)],
        )]);
        let r = &routes_on(&c, port)[0];
        assert_eq!(r.action, RouteAction::Redirect(Box::new(want)), "{name}");
    }
}

#[test]
fn rewrites_headers_and_cors_reach_every_match() {
    // httproute-rewrite-path, httproute-rewrite-host, httproute-request-header-modifier,
    // httproute-response-header-modifier.
    let req = HeaderModifier {
        set: vec![("x-set".into(), "1".into())].into(),
        add: vec![].into(),
        remove: vec!["x-rm".into()].into(),
    };
    let resp = HeaderModifier {
        set: vec![].into(),
        add: vec![("x-resp".into(), "2".into())].into(),
        remove: vec!["server".into()].into(),
    };
    let cors = Cors {
        allow_origins: vec!["https://a.example".into()],
        ..Default::default()
    };
    let c = compiled(vec![with_filters(
        rule(vec![prefix("/prefix/one"), prefix("/two/")], b()),
        vec![
            HttpFilter::RequestHeaderModifier(req.clone()),
            HttpFilter::ResponseHeaderModifier(resp.clone()),
            HttpFilter::UrlRewrite(ModelRewrite {
                hostname: Some("internal.example".into()),
                path: Some(PathModifier::ReplacePrefixMatch("/one".into())),
            }),
            HttpFilter::Cors(cors.clone()),
        ],
    )]);
    let routes = routes_on(&c, 80);
    let mut matched = Vec::new();
    for r in &routes {
        assert_eq!((&r.request_headers, &r.response_headers), (&req, &resp));
        assert_eq!(r.cors.as_deref(), Some(&cors));
        let RouteAction::Forward(fw) = &r.action else {
            panic!("forward expected: {:?}", r.action)
        };
        let rw = fw.rewrite.clone().unwrap();
        assert_eq!(rw.hostname.as_deref(), Some("internal.example"));
        let Some(PathRewrite::Prefix {
            matched: m,
            replacement,
        }) = rw.path
        else {
            panic!("prefix rewrite expected")
        };
        assert_eq!(replacement, "/one");
        matched.push(m);
    }
    matched.sort();
    assert_eq!(matched, vec!["/prefix/one", "/two"]);
}

#[test]
fn mirrors_go_to_their_service_ports_cluster_and_unresolved_ones_are_reported() {
    // httproute-request-mirror, httproute-request-percentage-mirror.
    let mirror = |name: &str, n, d| {
        HttpFilter::RequestMirror(Mirror {
            backend: backend(name, 1, &["127.0.1.9:80"]),
            numerator: n,
            denominator: d,
        })
    };
    let c = compiled(vec![with_filters(
        rule(vec![prefix("/")], b()),
        vec![
            mirror("m1", 1, 1),
            mirror("m2", 20, 100),
            HttpFilter::RequestMirror(Mirror {
                backend: missing("gone", 1),
                numerator: 1,
                denominator: 1,
            }),
        ],
    )]);
    let RouteAction::Forward(fw) = &routes_on(&c, 80)[0].action else {
        panic!("forward expected")
    };
    let t = "t/a/c/c1/default";
    assert_eq!(
        fw.mirrors,
        vec![
            MirrorTarget {
                cluster: format!("{t}/m1/backend/80"),
                numerator: 1,
                denominator: 1
            },
            MirrorTarget {
                cluster: format!("{t}/m2/backend/80"),
                numerator: 20,
                denominator: 100
            },
        ]
    );
    let mc = c
        .snapshot
        .clusters
        .iter()
        .find(|x| x.name == format!("{t}/m1/backend/80"))
        .expect("mirror cluster");
    assert_eq!(mc.endpoints, vec!["127.0.1.9:80".parse().unwrap()]);
    assert_eq!(
        route_cond(&c, "r", "ResolvedRefs"),
        (false, "BackendNotFound".into())
    );
}

#[test]
fn weights_keep_per_backend_headers_and_h2c_clusters() {
    // httproute-weight plus backendRefs[].filters and appProtocol.
    let mut h2 = backend("h2", 3, &["127.0.1.2:80"]);
    h2.app_protocol = crate::model::AppProtocol::H2c;
    h2.request_headers
        .set
        .push(("x-backend".into(), "h2".into()));
    let c = compiled(vec![rule(
        vec![prefix("/")],
        vec![backend("plain", 1, &["127.0.1.1:80"]), h2],
    )]);
    let RouteAction::Forward(fw) = &routes_on(&c, 80)[0].action else {
        panic!("forward expected")
    };
    let weights: Vec<u32> = fw.clusters.iter().map(|w| w.weight).collect();
    assert_eq!(weights, vec![1, 3]);
    assert!(fw.clusters[0].request_headers.set.is_empty());
    assert_eq!(
        fw.clusters[1].request_headers.set,
        vec![("x-backend".into(), "h2".into())]
    );
    // Ordered by name: `.../h2/backend/80/h2c` before `.../plain/backend/80`.
    let clusters: Vec<_> = c
        .snapshot
        .clusters
        .iter()
        .map(|x| (x.name.as_str(), x.protocol))
        .collect();
    assert_eq!(
        clusters,
        vec![
            (
                "t/a/c/c1/default/h2/backend/80/h2c",
                crate::model::AppProtocol::H2c
            ),
            (
                "t/a/c/c1/default/plain/backend/80",
                crate::model::AppProtocol::Http1
            ),
        ]
    );
}

#[test]
fn timeouts_table() {
    // httproute-timeout-request, httproute-timeout-backend-request.
    let s = Duration::from_secs;
    let cases = [
        (Timeouts::default(), None, None),
        (
            Timeouts {
                request: Some(s(10)),
                backend_request: None,
            },
            Some(s(10)),
            None,
        ),
        (
            Timeouts {
                request: None,
                backend_request: Some(s(2)),
            },
            Some(s(2)),
            None,
        ),
        (
            Timeouts {
                request: Some(s(10)),
                backend_request: Some(s(2)),
            },
            Some(s(10)),
            Some(s(2)),
        ),
    ];
    for (t, timeout, backend_timeout) in cases {
        let mut r = rule(vec![prefix("/")], b());
        r.timeouts = t;
        let c = compiled(vec![r]);
        let RouteAction::Forward(fw) = &routes_on(&c, 80)[0].action else {
            panic!("forward expected")
        };
        assert_eq!(
            (fw.timeout, fw.backend_timeout),
            (timeout, backend_timeout),
            "{t:?}"
        );
    }
}

#[test]
fn a_rule_without_backends_or_redirect_answers_500() {
    let c = compiled(vec![rule(vec![prefix("/")], vec![])]);
    assert_eq!(
        routes_on(&c, 80)[0].action,
        RouteAction::DirectResponse(500)
    );
}
