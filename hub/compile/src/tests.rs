//! Table tests of the compiler, with builders so each case reads like the YAML a tenant writes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::*;
use crate::model::data_plane::{DataPlane, DataPlaneListener};
use crate::model::thin_vec;
use crate::model::{
    AllowedRoutes, Backend, BackendProblem, ClusterIntent, Gateway, HttpRouteMatch, Listener, Meta,
    ParentRef, Protocol,
};

// ---- builders ---------------------------------------------------------------------------

fn dp() -> DataPlane {
    DataPlane {
        address: "192.0.2.10".parse().unwrap(),
        ai_gateways: Vec::new(),
        listeners: vec![
            DataPlaneListener {
                port: 80,
                bind: "127.0.0.1:18080".parse().unwrap(),
                protocol: Default::default(),
            },
            DataPlaneListener {
                port: 8080,
                bind: "127.0.0.1:18081".parse().unwrap(),
                protocol: Default::default(),
            },
        ],
    }
}

fn meta(ns: &str, name: &str) -> Meta {
    Meta {
        namespace: ns.into(),
        name: name.into(),
        generation: 3,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

fn ck(tenant: &str, cluster: &str) -> ClusterKey {
    ClusterKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
    }
}

fn listener(name: &str, port: u16) -> Listener {
    Listener {
        name: name.into(),
        protocol: Some(Protocol::Http),
        protocol_name: "HTTP".into(),
        port,
        hostname: None,
        allowed_routes: AllowedRoutes::Same,
        tls: None,
        allowed_kinds: Vec::new(),
    }
}

trait ListenerExt {
    fn host(self, h: &str) -> Self;
    fn allow(self, a: AllowedRoutes) -> Self;
    fn proto(self, p: Option<Protocol>, name: &str) -> Self;
}
impl ListenerExt for Listener {
    fn host(mut self, h: &str) -> Self {
        self.hostname = Some(h.into());
        self
    }
    fn allow(mut self, a: AllowedRoutes) -> Self {
        self.allowed_routes = a;
        self
    }
    fn proto(mut self, p: Option<Protocol>, name: &str) -> Self {
        self.protocol = p;
        self.protocol_name = name.into();
        self
    }
}

fn gateway(ns: &str, name: &str, listeners: Vec<Listener>) -> Gateway {
    Gateway {
        meta: meta(ns, name),
        class_name: "fleetgate".into(),
        allowed_listeners: Default::default(),
        listeners,
    }
}

fn parent(ns: &str, name: &str) -> ParentRef {
    ParentRef {
        namespace: ns.into(),
        name: name.into(),
        section_name: None,
        port: None,
        kind: Default::default(),
    }
}

fn backend(name: &str, weight: u32, endpoints: &[&str]) -> Backend {
    Backend {
        namespace: "default".into(),
        name: name.into(),
        port: 80,
        weight,
        problem: None,
        endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
        app_protocol: Default::default(),
        request_headers: Default::default(),
        response_headers: Default::default(),
        kind: Default::default(),
    }
}

fn missing(name: &str, weight: u32) -> Backend {
    Backend {
        problem: Some(Box::new(BackendProblem {
            reason: "BackendNotFound".into(),
            message: format!("Service default/{name} not found"),
        })),
        ..backend(name, weight, &[])
    }
}

fn prefix(p: &str) -> HttpRouteMatch {
    HttpRouteMatch {
        path: crate::model::PathMatch::Prefix(p.into()),
        headers: Default::default(),
        query_params: Default::default(),
        method: None,
    }
}

fn exact(p: &str) -> HttpRouteMatch {
    HttpRouteMatch {
        path: crate::model::PathMatch::Exact(p.into()),
        headers: Default::default(),
        query_params: Default::default(),
        method: None,
    }
}

fn with_headers(mut m: HttpRouteMatch, n: usize) -> HttpRouteMatch {
    m.headers = (0..n)
        .map(|i| {
            (
                format!("h{i}"),
                crate::model::ValueMatch::Exact("v".to_string()),
            )
        })
        .collect();
    m
}

fn rule(matches: Vec<HttpRouteMatch>, backends: Vec<Backend>) -> HttpRouteRule {
    HttpRouteRule {
        name: None,
        matches: matches.into(),
        filters: Default::default(),
        backends: backends.into(),
        timeouts: Default::default(),
    }
}

fn route(
    ns: &str,
    name: &str,
    parents: Vec<ParentRef>,
    hosts: &[&str],
    rules: Vec<HttpRouteRule>,
) -> HttpRoute {
    HttpRoute {
        meta: meta(ns, name),
        parent_refs: parents,
        hostnames: hosts.iter().map(|h| h.to_string()).collect(),
        rules,
    }
}

/// A simple route: `hosts` -> PathPrefix / -> backend `svc` on 127.0.1.1:8080.
fn simple_route(ns: &str, name: &str, parents: Vec<ParentRef>, hosts: &[&str]) -> HttpRoute {
    route(
        ns,
        name,
        parents,
        hosts,
        vec![rule(
            vec![prefix("/")],
            vec![backend("svc", 1, &["127.0.1.1:8080"])],
        )],
    )
}

fn intent(clusters: Vec<(ClusterKey, Vec<Gateway>, Vec<HttpRoute>)>) -> FleetIntent {
    clusters
        .into_iter()
        .map(|(k, gws, routes)| {
            let ci = ClusterIntent {
                gateways: gws
                    .into_iter()
                    .map(|g| ((g.meta.namespace.clone(), g.meta.name.clone()), g))
                    .collect(),
                http_routes: routes
                    .into_iter()
                    .map(|r| ((r.meta.namespace.clone(), r.meta.name.clone()), r))
                    .collect(),
                ..Default::default()
            };
            (k, std::sync::Arc::new(ci))
        })
        .collect()
}

fn one(gws: Vec<Gateway>, routes: Vec<HttpRoute>) -> FleetIntent {
    intent(vec![(ck("a", "c1"), gws, routes)])
}

// ---- lookups ----------------------------------------------------------------------------

fn status<'a>(c: &'a Compiled, k: &ClusterKey, kind: Kind, name: &str) -> &'a ObjectStatus {
    c.statuses[k]
        .iter()
        .find(|s| s.key.kind == kind && s.key.name == name)
        .unwrap_or_else(|| panic!("no status for {kind:?} {name}"))
}

fn cond<'a>(conds: &'a [Condition], type_: &str) -> &'a Condition {
    conds
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {conds:?}"))
}

/// (status, reason) of the route's condition `type_` for its first parent.
fn route_cond(c: &Compiled, name: &str, type_: &str) -> (bool, String) {
    let s = status(c, &ck("a", "c1"), Kind::HttpRoute, name);
    let cd = cond(&s.parents[0].conditions, type_);
    (cd.status, cd.reason.clone())
}

fn vhost<'a>(c: &'a Compiled, port: u16, host: &str) -> Option<&'a VirtualHost> {
    c.snapshot
        .listeners
        .iter()
        .find(|l| l.port == port)?
        .virtual_hosts
        .iter()
        .find(|v| v.domains == vec![host.to_string()])
        .map(|v| &**v)
}

fn route_names(vh: &VirtualHost) -> Vec<&str> {
    vh.routes.iter().map(|r| r.name.as_str()).collect()
}

// ---- tests ------------------------------------------------------------------------------

#[test]
fn attachment_table() {
    let gw = || {
        gateway(
            "default",
            "gw",
            vec![listener("http", 80).host("*.a.example")],
        )
    };
    let with_section = |s: &str| ParentRef {
        section_name: Some(s.into()),
        ..parent("default", "gw")
    };
    let with_port = |p: u16| ParentRef {
        port: Some(p),
        kind: Default::default(),
        ..parent("default", "gw")
    };
    let cases: Vec<(&str, ParentRef, bool, &str)> = vec![
        ("plain", parent("default", "gw"), true, "Accepted"),
        ("section", with_section("http"), true, "Accepted"),
        (
            "wrong section",
            with_section("https"),
            false,
            "NoMatchingParent",
        ),
        ("port", with_port(80), true, "Accepted"),
        ("wrong port", with_port(443), false, "NoMatchingParent"),
        (
            "no gateway",
            parent("default", "other"),
            false,
            "NoMatchingParent",
        ),
        ("other ns", parent("other", "gw"), false, "NoMatchingParent"),
    ];
    for (what, p, ok, reason) in cases {
        let c = compile(
            &one(
                vec![gw()],
                vec![simple_route("default", "r", vec![p], &["x.a.example"])],
            ),
            &dp(),
        );
        assert_eq!(
            route_cond(&c, "r", "Accepted"),
            (ok, reason.into()),
            "{what}"
        );
        let attached = status(&c, &ck("a", "c1"), Kind::Gateway, "gw").listeners[0].attached_routes;
        assert_eq!(attached, u32::from(ok), "{what}");
        assert_eq!(vhost(&c, 80, "x.a.example").is_some(), ok, "{what}");
    }
}

#[test]
fn routes_never_attach_to_another_clusters_gateway() {
    let c = compile(
        &intent(vec![
            (
                ck("a", "c1"),
                vec![gateway("default", "gw", vec![listener("http", 80)])],
                vec![],
            ),
            (
                ck("b", "c1"),
                vec![],
                vec![simple_route(
                    "default",
                    "r",
                    vec![parent("default", "gw")],
                    &["b.example"],
                )],
            ),
        ]),
        &dp(),
    );
    let s = status(&c, &ck("b", "c1"), Kind::HttpRoute, "r");
    let a = cond(&s.parents[0].conditions, "Accepted");
    assert_eq!((a.status, a.reason.as_str()), (false, "NoMatchingParent"));
    assert!(vhost(&c, 80, "b.example").is_none());
}

#[test]
fn allowed_routes_table() {
    let ns = |n: &[&str]| AllowedRoutes::Namespaces(n.iter().map(|s| s.to_string()).collect());
    let cases: Vec<(&str, AllowedRoutes, &str, bool)> = vec![
        ("same, same ns", AllowedRoutes::Same, "infra", true),
        ("same, other ns", AllowedRoutes::Same, "apps", false),
        ("all", AllowedRoutes::All, "apps", true),
        ("listed", ns(&["apps", "x"]), "apps", true),
        ("not listed", ns(&["x"]), "apps", false),
    ];
    for (what, allowed, route_ns, ok) in cases {
        let gw = gateway("infra", "gw", vec![listener("http", 80).allow(allowed)]);
        let r = simple_route(route_ns, "r", vec![parent("infra", "gw")], &["a.example"]);
        let c = compile(&one(vec![gw], vec![r]), &dp());
        let want = if ok {
            "Accepted"
        } else {
            "NotAllowedByListeners"
        };
        assert_eq!(route_cond(&c, "r", "Accepted"), (ok, want.into()), "{what}");
    }
}

#[test]
fn hostname_intersection_table() {
    // (listener hostname, route hostnames, accepted, reason, virtual hosts created)
    type Case<'a> = (Option<&'a str>, Vec<&'a str>, bool, &'a str, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (None, vec!["a.example"], true, "Accepted", vec!["a.example"]),
        (
            Some("a.example"),
            vec![],
            true,
            "Accepted",
            vec!["a.example"],
        ),
        (
            Some("*.example"),
            vec!["x.example", "y.other"],
            true,
            "Accepted",
            vec!["x.example"],
        ),
        (
            Some("x.example"),
            vec!["*.example"],
            true,
            "Accepted",
            vec!["x.example"],
        ),
        (
            Some("x.example"),
            vec!["y.example"],
            false,
            "NoMatchingListenerHostname",
            vec![],
        ),
        (None, vec![], false, "NoMatchingListenerHostname", vec![]),
    ];
    for (lh, rh, ok, reason, hosts) in cases {
        let mut l = listener("http", 80);
        l.hostname = lh.map(str::to_string);
        let gw = gateway("default", "gw", vec![l]);
        let r = simple_route("default", "r", vec![parent("default", "gw")], &rh);
        let c = compile(&one(vec![gw], vec![r]), &dp());
        assert_eq!(
            route_cond(&c, "r", "Accepted"),
            (ok, reason.into()),
            "{lh:?} {rh:?}"
        );
        let got: Vec<&str> = c.snapshot.listeners[0]
            .virtual_hosts
            .iter()
            .flat_map(|v| v.domains.iter().map(String::as_str))
            .filter(|d| *d != "*")
            .collect();
        assert_eq!(got, hosts, "{lh:?} {rh:?}");
    }
}

#[test]
fn empty_hostnames_on_both_sides_are_refused_with_guidance() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let r = simple_route("default", "r", vec![parent("default", "gw")], &[]);
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "r");
    let a = cond(&s.parents[0].conditions, "Accepted");
    assert!(!a.status);
    assert_eq!(a.message, attach::BOTH_EMPTY_MESSAGE);
    // Nothing but the catch-all on the shared listener.
    assert_eq!(c.snapshot.listeners[0].virtual_hosts.len(), 1);
    assert_eq!(c.snapshot.listeners[0].virtual_hosts[0].domains, vec!["*"]);
}

#[test]
fn precedence_ordering() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let p = || vec![parent("default", "gw")];
    let b = || vec![backend("svc", 1, &["127.0.1.1:80"])];
    // r-old is older than r-new; within the same timestamp, namespace/name decides.
    let mut old = route(
        "default",
        "r-old",
        p(),
        &["h.example"],
        vec![
            rule(vec![prefix("/")], b()),
            rule(vec![prefix("/api"), with_headers(prefix("/api"), 2)], b()),
        ],
    );
    old.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
    let new = route(
        "default",
        "r-new",
        p(),
        &["h.example"],
        vec![
            rule(vec![exact("/api/v1"), prefix("/api/v1/")], b()),
            rule(vec![prefix("/api")], b()),
        ],
    );
    let a_first = route(
        "default",
        "a-first",
        p(),
        &["h.example"],
        vec![rule(vec![prefix("/api")], b())],
    );
    let c = compile(&one(vec![gw], vec![old, new, a_first]), &dp());
    let vh = vhost(&c, 80, "h.example").unwrap();
    let t = "t/a/c/c1/default";
    assert_eq!(
        route_names(vh),
        vec![
            format!("{t}/r-new/r0/m0"),   // exact
            format!("{t}/r-new/r0/m1"),   // longest prefix (/api/v1)
            format!("{t}/r-old/r1/m1"),   // /api with 2 headers
            format!("{t}/r-old/r1/m0"),   // /api, oldest
            format!("{t}/a-first/r0/m0"), // /api, same age as r-new, name first
            format!("{t}/r-new/r1/m0"),   // /api
            format!("{t}/r-old/r0/m0"),   // /
        ]
    );
    // The trailing slash of a prefix is ignored.
    assert_eq!(vh.routes[1].path, PathMatch::Prefix("/api/v1".into()));
}

#[test]
fn precedence_ties_across_clusters_are_deterministic() {
    // The same match from two clusters of one tenant: one route (the first cluster's name)
    // forwarding to both clusters' backends.
    let gw = || gateway("default", "gw", vec![listener("http", 80)]);
    let r = || {
        simple_route(
            "default",
            "r",
            vec![parent("default", "gw")],
            &["h.a.example"],
        )
    };
    let fi = intent(vec![
        (ck("a", "c2"), vec![gw()], vec![r()]),
        (ck("a", "c1"), vec![gw()], vec![r()]),
    ]);
    let c = compile(&fi, &dp());
    let vh = vhost(&c, 80, "h.a.example").unwrap();
    assert_eq!(route_names(vh), vec!["t/a/c/c1/default/r/r0/m0"]);
    assert_eq!(c.snapshot.clusters.len(), 2);
}

fn action_of(backends: Vec<Backend>) -> (RouteAction, Vec<String>) {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let r = route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["h.example"],
        vec![rule(vec![prefix("/")], backends)],
    );
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let vh = vhost(&c, 80, "h.example").unwrap();
    let clusters = c.snapshot.clusters.iter().map(|c| c.name.clone()).collect();
    (vh.routes[0].action.clone(), clusters)
}

fn wc(name: &str, weight: u32) -> WeightedCluster {
    WeightedCluster::new(name, weight)
}

#[test]
fn weights_table() {
    let b0 = "t/a/c/c1/default/a/backend/80";
    let b1 = "t/a/c/c1/default/b/backend/80";
    let inv = names::INVALID_BACKEND_CLUSTER;
    let cases: Vec<(&str, Vec<Backend>, RouteAction, Vec<&str>)> = vec![
        (
            "weighted",
            vec![backend("a", 90, &["127.0.1.1:80"]), backend("b", 10, &[])],
            RouteAction::Forward(Forward::to(vec![wc(b0, 90), wc(b1, 10)])),
            vec![b0, b1],
        ),
        (
            "zero weight is dropped",
            vec![backend("a", 1, &[]), backend("b", 0, &[])],
            RouteAction::Forward(Forward::to(vec![wc(b0, 1)])),
            vec![b0],
        ),
        (
            "all zero",
            vec![backend("a", 0, &[])],
            RouteAction::DirectResponse(500),
            vec![],
        ),
        (
            "no backends",
            vec![],
            RouteAction::DirectResponse(500),
            vec![],
        ),
        (
            "all invalid",
            vec![missing("a", 1)],
            RouteAction::DirectResponse(500),
            vec![],
        ),
        (
            "partly invalid",
            vec![missing("a", 3), backend("b", 1, &["127.0.1.1:80"])],
            RouteAction::Forward(Forward::to(vec![wc(b1, 1), wc(inv, 3)])),
            vec![b1],
        ),
    ];
    for (what, backends, want, clusters) in cases {
        let (got, got_clusters) = action_of(backends);
        assert_eq!(got, want, "{what}");
        assert_eq!(got_clusters, clusters, "{what}");
    }
}

#[test]
fn missing_backend_sets_resolved_refs_false() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let ok = simple_route(
        "default",
        "ok",
        vec![parent("default", "gw")],
        &["a.example"],
    );
    let bad = route(
        "default",
        "bad",
        vec![parent("default", "gw")],
        &["b.example"],
        vec![rule(vec![prefix("/")], vec![missing("gone", 1)])],
    );
    let c = compile(&one(vec![gw], vec![ok, bad]), &dp());
    assert_eq!(
        route_cond(&c, "ok", "ResolvedRefs"),
        (true, "ResolvedRefs".into())
    );
    assert_eq!(
        route_cond(&c, "bad", "ResolvedRefs"),
        (false, "BackendNotFound".into())
    );
    // Still accepted: the rule answers 500.
    assert_eq!(route_cond(&c, "bad", "Accepted"), (true, "Accepted".into()));
    let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "bad");
    assert!(
        cond(&s.parents[0].conditions, "ResolvedRefs")
            .message
            .contains("default/gone")
    );
}

#[test]
fn a_rule_with_an_unsupported_filter_answers_500_and_the_route_is_not_accepted() {
    // Gateway API: a filter is never skipped; its rule's requests get 500, the other rules are
    // served, and the route is Accepted=False/UnsupportedValue on every parent it attaches to.
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let mut ext = rule(
        vec![prefix("/ext")],
        vec![backend("a", 1, &["127.0.1.1:80"])],
    );
    ext.filters = thin_vec![HttpFilter::Unsupported(model::UnsupportedFilter {
        filter: "ExtensionRef".into(),
        message: "rules[0].filters[0]: filter ExtensionRef example.com/Auth \"x\" is not supported"
            .into(),
    })];
    let plain = rule(vec![prefix("/")], vec![backend("a", 1, &["127.0.1.1:80"])]);
    let r = route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["h.example"],
        vec![ext, plain],
    );
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let vh = vhost(&c, 80, "h.example").unwrap();
    let by_path: BTreeMap<_, _> = vh
        .routes
        .iter()
        .map(|r| (format!("{:?}", r.path), r.action.clone()))
        .collect();
    assert_eq!(
        by_path[&format!("{:?}", PathMatch::Prefix("/ext".into()))],
        RouteAction::DirectResponse(500)
    );
    assert!(matches!(
        by_path[&format!("{:?}", PathMatch::Prefix("/".into()))],
        RouteAction::Forward(_)
    ));
    assert_eq!(
        route_cond(&c, "r", "Accepted"),
        (false, "UnsupportedValue".into())
    );
    let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "r");
    assert!(
        cond(&s.parents[0].conditions, "Accepted")
            .message
            .contains("ExtensionRef example.com/Auth")
    );
    assert_eq!(
        route_cond(&c, "r", "ResolvedRefs"),
        (true, "ResolvedRefs".into())
    );
}

#[test]
fn listener_validation_table() {
    // (listener, listener Accepted reason, gateway Accepted reason)
    let cases: Vec<(Listener, &str, &str)> = vec![
        (listener("l", 80), "Accepted", "Accepted"),
        (listener("l", 81), "PortUnavailable", "ListenersNotValid"),
        (
            // Port 80 of the data plane serves plaintext HTTP only.
            listener("l", 80).proto(Some(Protocol::Https), "HTTPS"),
            "UnsupportedProtocol",
            "ListenersNotValid",
        ),
        (
            listener("l", 80).proto(None, "QUIC"),
            "UnsupportedProtocol",
            "ListenersNotValid",
        ),
    ];
    for (l, lreason, greason) in cases {
        let what = format!("{}:{}", l.protocol_name, l.port);
        let c = compile(&one(vec![gateway("default", "gw", vec![l])], vec![]), &dp());
        let s = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
        let la = cond(&s.listeners[0].conditions, "Accepted");
        assert_eq!(la.reason, lreason, "{what}");
        assert_eq!(cond(&s.conditions, "Accepted").reason, greason, "{what}");
        let valid = lreason == "Accepted";
        assert_eq!(cond(&s.conditions, "Programmed").status, valid, "{what}");
        assert_eq!(
            cond(&s.listeners[0].conditions, "Programmed").status,
            valid,
            "{what}"
        );
        assert!(
            !cond(&s.listeners[0].conditions, "Conflicted").status,
            "{what}"
        );
        let want_addr: Vec<String> = if valid {
            vec!["192.0.2.10".into()]
        } else {
            vec![]
        };
        assert_eq!(s.addresses, want_addr, "{what}");
        if lreason == "PortUnavailable" {
            assert!(la.message.contains("80, 8080"), "{}", la.message);
        }
    }
}

/// Upstream `GatewayListenerUnsupportedProtocol`: a Gateway with one served and one refused
/// listener is `Accepted=True` with reason `ListenersNotValid`; one with only refused listeners
/// is `Accepted=False/ListenersNotValid`; every served listener alone gives reason `Accepted`.
#[test]
fn gateway_accepted_reason_says_when_some_listeners_are_refused_table() {
    // (listeners, gateway Accepted status, reason, listeners' Accepted reasons)
    let cases: Vec<(Vec<Listener>, bool, &str, Vec<&str>)> = vec![
        (
            vec![listener("http", 80)],
            true,
            "Accepted",
            vec!["Accepted"],
        ),
        (
            vec![
                listener("http", 80),
                listener("invalid", 1111).proto(None, "INVALID"),
            ],
            true,
            "ListenersNotValid",
            vec!["Accepted", "UnsupportedProtocol"],
        ),
        (
            vec![listener("invalid", 1111).proto(None, "INVALID")],
            false,
            "ListenersNotValid",
            vec!["UnsupportedProtocol"],
        ),
    ];
    for (ls, status_want, reason, lreasons) in cases {
        let what = format!("{:?}", ls.iter().map(|l| &l.name).collect::<Vec<_>>());
        let c = compile(&one(vec![gateway("default", "gw", ls)], vec![]), &dp());
        let s = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
        let a = cond(&s.conditions, "Accepted");
        assert_eq!(
            (a.status, a.reason.as_str()),
            (status_want, reason),
            "{what}"
        );
        assert_eq!(
            cond(&s.conditions, "Programmed").status,
            status_want,
            "{what}"
        );
        let got: Vec<String> = s
            .listeners
            .iter()
            .map(|l| cond(&l.conditions, "Accepted").reason.clone())
            .collect();
        assert_eq!(got, lreasons, "{what}");
        // The refused listener supports no kind at all.
        for l in s.listeners.iter().filter(|l| l.name == "invalid") {
            assert!(l.supported_kinds.is_empty(), "{what}");
        }
    }
}

#[test]
fn one_valid_listener_is_enough_and_routes_skip_invalid_ones() {
    let gw = gateway(
        "default",
        "gw",
        vec![listener("bad", 81), listener("good", 8080)],
    );
    let r = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["a.example"],
    );
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let s = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert!(cond(&s.conditions, "Accepted").status);
    let attached: Vec<u32> = s.listeners.iter().map(|l| l.attached_routes).collect();
    assert_eq!(attached, vec![0, 1]);
    assert!(vhost(&c, 8080, "a.example").is_some());
    assert!(vhost(&c, 80, "a.example").is_none());
    // A route naming only the invalid listener is not accepted.
    let only_bad = ParentRef {
        section_name: Some("bad".into()),
        ..parent("default", "gw")
    };
    let gw = gateway(
        "default",
        "gw",
        vec![listener("bad", 81), listener("good", 8080)],
    );
    let c = compile(
        &one(
            vec![gw],
            vec![simple_route("default", "r", vec![only_bad], &["a.example"])],
        ),
        &dp(),
    );
    assert_eq!(
        route_cond(&c, "r", "Accepted"),
        (false, "NoMatchingParent".into())
    );
}

#[test]
fn every_object_gets_exactly_one_status_with_its_generation() {
    let mut gw = gateway("default", "gw", vec![listener("http", 80)]);
    gw.meta.generation = 7;
    let mut r1 = simple_route(
        "default",
        "r1",
        vec![parent("default", "gw")],
        &["a.example"],
    );
    r1.meta.generation = 9;
    let r2 = simple_route("other", "r2", vec![], &["b.example"]);
    let fi = intent(vec![
        (ck("a", "c1"), vec![gw], vec![r1, r2]),
        (ck("b", "c9"), vec![], vec![]),
    ]);
    let c = compile(&fi, &dp());
    let keys: Vec<(Kind, &str, i64)> = c.statuses[&ck("a", "c1")]
        .iter()
        .map(|s| (s.key.kind, s.key.name.as_str(), s.observed_generation))
        .collect();
    assert_eq!(
        keys,
        vec![
            (Kind::Gateway, "gw", 7),
            (Kind::HttpRoute, "r1", 9),
            (Kind::HttpRoute, "r2", 3)
        ]
    );
    assert!(c.statuses[&ck("b", "c9")].is_empty());
    // A route with no parents has no parent status and contributes nothing.
    assert!(
        status(&c, &ck("a", "c1"), Kind::HttpRoute, "r2")
            .parents
            .is_empty()
    );
    assert!(vhost(&c, 80, "b.example").is_none());
}

#[test]
fn names_are_deterministic_unique_and_built_from_validated_parts() {
    let fi = intent(vec![
        (
            ck("a", "c1"),
            vec![gateway("default", "gw", vec![listener("http", 80)])],
            vec![simple_route(
                "default",
                "r",
                vec![parent("default", "gw")],
                &["x.a.example"],
            )],
        ),
        (
            ck("a", "c2"),
            vec![gateway("default", "gw", vec![listener("http", 80)])],
            vec![simple_route(
                "default",
                "r",
                vec![parent("default", "gw")],
                &["x.a.example"],
            )],
        ),
    ]);
    let c1 = compile(&fi, &dp());
    let c2 = compile(&fi, &dp());
    assert_eq!(c1, c2);
    let clusters: Vec<&str> = c1
        .snapshot
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        clusters,
        vec![
            "t/a/c/c1/default/svc/backend/80",
            "t/a/c/c2/default/svc/backend/80"
        ]
    );
    let l = &c1.snapshot.listeners[0];
    assert_eq!(l.name, "port/80");
    let vh: Vec<&str> = l.virtual_hosts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(vh, vec!["port/80/host/x.a.example", "port/80/catch-all"]);
    let mut all: Vec<&str> = l
        .virtual_hosts
        .iter()
        .flat_map(|v| route_names(v))
        .collect();
    all.extend(&clusters);
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len());
}

#[test]
fn unknown_hosts_get_404_from_the_catch_all_on_every_port() {
    let c = compile(&FleetIntent::new(), &dp());
    assert_eq!(c.snapshot.listeners.len(), 2);
    for l in &c.snapshot.listeners {
        let last = l.virtual_hosts.last().unwrap();
        assert_eq!(last.domains, vec!["*"]);
        assert_eq!(last.routes[0].action, RouteAction::DirectResponse(404));
        assert_eq!(last.routes[0].source, None);
    }
    let binds: Vec<SocketAddr> = c.snapshot.listeners.iter().map(|l| l.bind).collect();
    assert_eq!(
        binds,
        vec![
            "127.0.0.1:18080".parse().unwrap(),
            "127.0.0.1:18081".parse().unwrap()
        ]
    );
}

#[test]
fn header_modifier_filters_reach_the_routes() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let mut r = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["a.example"],
    );
    r.rules[0].filters = thin_vec![HttpFilter::RequestHeaderModifier(HeaderModifier {
        set: vec![("x-set".into(), "1".into())].into(),
        add: vec![("x-add".into(), "2".into())].into(),
        remove: vec!["x-rm".into()].into(),
    })];
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let m = &vhost(&c, 80, "a.example").unwrap().routes[0].request_headers;
    assert_eq!(m.set, vec![("x-set".to_string(), "1".to_string())]);
    assert_eq!(m.add, vec![("x-add".to_string(), "2".to_string())]);
    assert_eq!(m.remove, vec!["x-rm".to_string()]);
}

#[test]
fn sources_point_back_to_tenant_objects() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let r = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["a.example"],
    );
    let c = compile(&one(vec![gw], vec![r]), &dp());
    let names: BTreeMap<Kind, String> = c
        .snapshot
        .sources()
        .into_iter()
        .map(|s| {
            (
                s.object.kind,
                format!("{}:{}/{}", s.cluster, s.object.namespace, s.object.name),
            )
        })
        .collect();
    assert_eq!(names[&Kind::Gateway], "a/c1:default/gw");
    assert_eq!(names[&Kind::HttpRoute], "a/c1:default/r");
}

mod ai;
mod http;
mod isolation;
mod listener_sets;
mod memo;
mod own_address;
mod shared_clusters;
mod tls;
mod virtual_keys;

/// What Envoy answers for `host` on a route configuration (its virtual host choice: an exact
/// domain, then the longest `*.suffix`, then `*`; the first route, matching every path in
/// these tests): the direct status as text, or the first forward cluster's name.
fn envoy_answer(vhs: &[std::sync::Arc<VirtualHost>], host: &str) -> String {
    let exact = vhs.iter().find(|v| v.domains.iter().any(|d| d == host));
    let suffix = || {
        vhs.iter()
            .filter_map(|v| {
                v.domains
                    .iter()
                    .filter(|d| d.len() > 1 && hostname::covers(d, host) && d.starts_with('*'))
                    .map(|d| d.len())
                    .max()
                    .map(|n| (n, v))
            })
            .max_by_key(|(n, _)| *n)
            .map(|(_, v)| v)
    };
    let star = || vhs.iter().find(|v| v.domains.iter().any(|d| d == "*"));
    let vh = exact
        .or_else(suffix)
        .or_else(star)
        .unwrap_or_else(|| panic!("no virtual host for {host}"));
    match &vh.routes[0].action {
        RouteAction::DirectResponse(s) => s.to_string(),
        RouteAction::Forward(f) => f.clusters[0].cluster.clone(),
        RouteAction::Redirect(_) => "redirect".into(),
    }
}

// ---- listener conflicts -----------------------------------------------------------------

fn dp_tls() -> DataPlane {
    let mut d = dp();
    d.listeners.push(DataPlaneListener {
        port: 443,
        bind: "127.0.0.1:18443".parse().unwrap(),
        protocol: crate::model::data_plane::DataPlaneProtocol::Tls,
    });
    d
}

fn tls_listener(name: &str, mode: model::TlsMode, host: &str) -> Listener {
    let (p, n) = match mode {
        model::TlsMode::Terminate => (Protocol::Https, "HTTPS"),
        model::TlsMode::Passthrough => (Protocol::Tls, "TLS"),
    };
    Listener {
        tls: Some(model::ListenerTls {
            mode,
            certificates: Vec::new(),
            problem: None,
            options: Vec::new(),
        }),
        ..listener(name, 443).proto(Some(p), n).host(host)
    }
}

/// (listener name, Conflicted status, its reason, Programmed status).
type ListenerState = (String, bool, String, bool);

/// The [`ListenerState`] of every listener of a Gateway.
fn listener_states(c: &Compiled, k: &ClusterKey, gw: &str) -> Vec<ListenerState> {
    status(c, k, Kind::Gateway, gw)
        .listeners
        .iter()
        .map(|l| {
            let cf = cond(&l.conditions, "Conflicted");
            let acc = cond(&l.conditions, "Accepted");
            let prog = cond(&l.conditions, "Programmed");
            assert!(
                !cf.status || acc.status,
                "a conflicted listener stays Accepted: {l:?}"
            );
            (l.name.clone(), cf.status, cf.reason.clone(), prog.status)
        })
        .collect()
}

#[test]
fn listener_conflicts_inside_one_gateway_table() {
    use model::TlsMode::{Passthrough, Terminate};
    let ok = |n: &str| (n.to_string(), false, "NoConflicts".to_string(), true);
    let cf = |n: &str, r: &str| (n.to_string(), true, r.to_string(), false);
    let cases: Vec<(&str, Vec<Listener>, Vec<ListenerState>)> = vec![
        (
            "distinct hostnames on one port",
            vec![
                listener("a", 80).host("a.a.example"),
                listener("b", 80).host("b.a.example"),
            ],
            vec![ok("a"), ok("b")],
        ),
        (
            "same port, protocol and hostname",
            vec![
                listener("a", 80).host("a.a.example"),
                listener("b", 80).host("a.a.example"),
                listener("c", 8080).host("a.a.example"),
            ],
            vec![
                cf("a", "HostnameConflict"),
                cf("b", "HostnameConflict"),
                ok("c"),
            ],
        ),
        (
            "both without hostname",
            vec![listener("a", 80), listener("b", 80)],
            vec![cf("a", "HostnameConflict"), cf("b", "HostnameConflict")],
        ),
        (
            "HTTP and TCP on one port",
            vec![
                listener("web", 80),
                listener("raw", 80).proto(Some(Protocol::Tcp), "TCP"),
            ],
            vec![
                cf("web", "ProtocolConflict"),
                // TCP is refused on its own first (not served on this branch).
                ("raw".to_string(), false, "NoConflicts".to_string(), false),
            ],
        ),
        (
            "HTTPS and TLS with the same SNI hostname",
            vec![
                tls_listener("term", Terminate, "s.a.example"),
                tls_listener("pass", Passthrough, "s.a.example"),
            ],
            vec![
                cf("term", "ProtocolConflict"),
                cf("pass", "ProtocolConflict"),
            ],
        ),
        (
            "HTTPS and TLS with distinct SNI hostnames",
            vec![
                tls_listener("pass", Passthrough, "p.a.example"),
                tls_listener("pass2", Passthrough, "q.a.example"),
            ],
            vec![ok("pass"), ok("pass2")],
        ),
    ];
    for (what, listeners, want) in cases {
        let c = compile(
            &one(vec![gateway("default", "gw", listeners)], vec![]),
            &dp_tls(),
        );
        assert_eq!(listener_states(&c, &ck("a", "c1"), "gw"), want, "{what}");
    }
}

#[test]
fn conflicted_listeners_take_no_routes_and_all_conflicted_is_not_valid() {
    let gw = gateway(
        "default",
        "gw",
        vec![
            listener("a", 80).host("h.a.example"),
            listener("b", 80).host("h.a.example"),
        ],
    );
    let r = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["h.a.example"],
    );
    let c = compile(&one(vec![gw], vec![r]), &dp());
    assert_eq!(
        route_cond(&c, "r", "Accepted"),
        (false, "NoMatchingParent".into())
    );
    assert!(vhost(&c, 80, "h.a.example").is_none());
    let s = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(cond(&s.conditions, "Accepted").reason, "ListenersNotValid");
}

#[test]
fn protocol_conflicts_across_gateways_of_one_tenant_go_to_the_oldest() {
    use model::TlsMode::{Passthrough, Terminate};
    let older = |mut g: Gateway| {
        g.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
        g
    };
    // Two clusters of tenant a: the older Gateway (in c2) keeps the hostname.
    let fi = intent(vec![
        (
            ck("a", "c1"),
            vec![gateway(
                "default",
                "new",
                vec![tls_listener("pass", Passthrough, "s.a.example")],
            )],
            vec![],
        ),
        (
            ck("a", "c2"),
            vec![older(gateway(
                "default",
                "old",
                vec![tls_listener("term", Terminate, "s.a.example")],
            ))],
            vec![],
        ),
        // Another tenant's identical listener is not compared (hostnames are per tenant).
        (
            ck("b", "c1"),
            vec![gateway(
                "default",
                "new",
                vec![tls_listener("pass", Passthrough, "s.a.example")],
            )],
            vec![],
        ),
    ]);
    let c = compile(&fi, &dp_tls());
    let new = listener_states(&c, &ck("a", "c1"), "new");
    assert_eq!(
        (new[0].1, new[0].2.as_str(), new[0].3),
        (true, "ProtocolConflict", false)
    );
    let old = listener_states(&c, &ck("a", "c2"), "old");
    assert!(!old[0].1, "{old:?}");
    let other = listener_states(&c, &ck("b", "c1"), "new");
    assert!(!other[0].1, "{other:?}");

    // HTTP next to an older Gateway's TCP listener on the same port: TCP listeners get their
    // own address, and one that is not served holds nothing.
    let mut tcp = gateway(
        "default",
        "tcp",
        vec![listener("raw", 80).proto(Some(Protocol::Tcp), "TCP")],
    );
    tcp.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
    let fi = one(
        vec![
            tcp,
            gateway(
                "default",
                "gw",
                vec![listener("web", 80).host("h.a.example")],
            ),
        ],
        vec![],
    );
    let c = compile(&fi, &dp());
    assert!(!listener_states(&c, &ck("a", "c1"), "gw")[0].1);

    // The same protocol and hostname in two Gateways is not a conflict: they are merged.
    let fi = intent(vec![
        (
            ck("a", "c1"),
            vec![gateway(
                "default",
                "gw",
                vec![listener("web", 80).host("h.a.example")],
            )],
            vec![],
        ),
        (
            ck("a", "c2"),
            vec![gateway(
                "default",
                "gw",
                vec![listener("web", 80).host("h.a.example")],
            )],
            vec![],
        ),
    ]);
    let c = compile(&fi, &dp());
    for k in [ck("a", "c1"), ck("a", "c2")] {
        assert!(!listener_states(&c, &k, "gw")[0].1);
    }
}

// ---- several clusters of one tenant -------------------------------------------------------

fn forward_clusters(r: &Route) -> Vec<(String, u32)> {
    match &r.action {
        RouteAction::Forward(f) => f
            .clusters
            .iter()
            .map(|w| (w.cluster.clone(), w.weight))
            .collect(),
        other => panic!("not a forward: {other:?}"),
    }
}

#[test]
fn one_hostname_from_two_clusters_merges_backends_table() {
    let gw = || gateway("default", "gw", vec![listener("http", 80)]);
    let with = |name: &str, m: HttpRouteMatch, b: Vec<Backend>| {
        route(
            "default",
            name,
            vec![parent("default", "gw")],
            &["h.a.example"],
            vec![rule(vec![m], b)],
        )
    };
    struct Case {
        what: &'static str,
        c1: HttpRoute,
        c2: HttpRoute,
        tenant2: &'static str,
        /// Forward clusters of every route of the virtual host, in order.
        want: Vec<Vec<(&'static str, u32)>>,
    }
    let cases = vec![
        Case {
            what: "same match: weighted over both clusters",
            c1: with("r", prefix("/"), vec![backend("svc", 1, &["127.0.1.1:80"])]),
            c2: with("r", prefix("/"), vec![backend("svc", 3, &["127.0.1.2:80"])]),
            tenant2: "a",
            want: vec![vec![
                ("t/a/c/c1/default/svc/backend/80", 1),
                ("t/a/c/c2/default/svc/backend/80", 3),
            ]],
        },
        Case {
            what: "different route names, same match: still merged",
            c1: with(
                "r1",
                prefix("/"),
                vec![backend("svc", 1, &["127.0.1.1:80"])],
            ),
            c2: with(
                "r2",
                prefix("/"),
                vec![backend("svc", 1, &["127.0.1.2:80"])],
            ),
            tenant2: "a",
            want: vec![vec![
                ("t/a/c/c1/default/svc/backend/80", 1),
                ("t/a/c/c2/default/svc/backend/80", 1),
            ]],
        },
        Case {
            what: "different matches: two routes, precedence order",
            c1: with("r", prefix("/"), vec![backend("svc", 1, &["127.0.1.1:80"])]),
            c2: with(
                "r",
                prefix("/api"),
                vec![backend("svc", 1, &["127.0.1.2:80"])],
            ),
            tenant2: "a",
            want: vec![
                vec![("t/a/c/c2/default/svc/backend/80", 1)],
                vec![("t/a/c/c1/default/svc/backend/80", 1)],
            ],
        },
        Case {
            what: "a cluster without valid backends does not take a share",
            c1: with("r", prefix("/"), vec![backend("svc", 1, &["127.0.1.1:80"])]),
            c2: with("r", prefix("/"), vec![missing("svc", 1)]),
            tenant2: "a",
            want: vec![vec![("t/a/c/c1/default/svc/backend/80", 1)]],
        },
    ];
    for case in cases {
        let fi = intent(vec![
            (ck("a", "c1"), vec![gw()], vec![case.c1]),
            (ck(case.tenant2, "c2"), vec![gw()], vec![case.c2]),
        ]);
        let c = compile(&fi, &dp());
        let vh = vhost(&c, 80, "h.a.example").unwrap();
        let got: Vec<Vec<(String, u32)>> = vh
            .routes
            .iter()
            .filter(|r| matches!(r.action, RouteAction::Forward(_)))
            .map(forward_clusters)
            .collect();
        let want: Vec<Vec<(String, u32)>> = case
            .want
            .iter()
            .map(|v| v.iter().map(|(n, w)| (n.to_string(), *w)).collect())
            .collect();
        assert_eq!(got, want, "{}", case.what);
    }
}

// ---- GRPCRoute ----------------------------------------------------------------------------

fn grpc_match(
    service: Option<&str>,
    method: Option<&str>,
    regex: bool,
    headers: usize,
) -> crate::model::GrpcRouteMatch {
    crate::model::GrpcRouteMatch {
        method: (service.is_some() || method.is_some())
            .then(|| grpc::method(service, method, regex)),
        headers: with_headers(prefix("/"), headers)
            .headers
            .into_iter()
            .collect(),
    }
}

fn grpc_rule(
    matches: Vec<crate::model::GrpcRouteMatch>,
    backends: Vec<Backend>,
) -> crate::model::GrpcRouteRule {
    crate::model::GrpcRouteRule {
        name: None,
        matches,
        filters: Vec::new(),
        backends: backends
            .into_iter()
            .map(|mut b| {
                b.app_protocol = AppProtocol::H2c;
                b
            })
            .collect(),
    }
}

fn grpc_route(
    name: &str,
    created: &str,
    hosts: &[&str],
    rules: Vec<crate::model::GrpcRouteRule>,
) -> crate::model::GrpcRoute {
    let mut meta = meta("default", name);
    meta.creation_timestamp = created.into();
    crate::model::GrpcRoute {
        meta,
        parent_refs: vec![parent("default", "gw")],
        hostnames: hosts.iter().map(|h| h.to_string()).collect(),
        rules,
    }
}

fn http_gw() -> Gateway {
    gateway("default", "gw", vec![listener("web", 80)])
}

fn with_grpc(mut fleet: FleetIntent, routes: Vec<crate::model::GrpcRoute>) -> FleetIntent {
    let ci = std::sync::Arc::make_mut(fleet.get_mut(&ck("a", "c1")).unwrap());
    for r in routes {
        ci.grpc_routes
            .insert((r.meta.namespace.clone(), r.meta.name.clone()), r);
    }
    fleet
}

fn grpc_cond(c: &Compiled, name: &str, type_: &str) -> (bool, String) {
    let s = status(c, &ck("a", "c1"), Kind::GrpcRoute, name);
    let cd = cond(&s.parents[0].conditions, type_);
    (cd.status, cd.reason.clone())
}

#[test]
fn grpc_methods_of_one_service_go_to_different_h2c_backends() {
    let g = grpc_route(
        "echo",
        "2026-01-01T00:00:00Z",
        &["grpc.a.example"],
        vec![
            grpc_rule(
                vec![grpc_match(Some("echo.v1.Echo"), Some("Say"), false, 0)],
                vec![backend("say", 1, &["127.0.1.1:8080"])],
            ),
            grpc_rule(
                vec![grpc_match(Some("echo.v1.Echo"), Some("Shout"), false, 0)],
                vec![backend("shout", 1, &["127.0.1.2:8080"])],
            ),
        ],
    );
    let c = compile(&with_grpc(one(vec![http_gw()], vec![]), vec![g]), &dp());
    assert_eq!(grpc_cond(&c, "echo", "Accepted"), (true, "Accepted".into()));
    let vh = vhost(&c, 80, "grpc.a.example").expect("virtual host");
    let paths: Vec<_> = vh.routes.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            PathMatch::Exact("/echo.v1.Echo/Shout".into()),
            PathMatch::Exact("/echo.v1.Echo/Say".into()),
        ]
    );
    for r in &vh.routes {
        let RouteAction::Forward(fw) = &r.action else {
            panic!("forward expected: {r:?}")
        };
        let cl = c
            .snapshot
            .clusters
            .iter()
            .find(|cl| cl.name == fw.clusters[0].cluster)
            .unwrap();
        assert_eq!(cl.protocol, AppProtocol::H2c, "{}", cl.name);
        // The Service port, h2c: its own cluster beside an HTTP/1.1 one of the same port.
        assert!(cl.name.ends_with("/backend/80/h2c"), "{}", cl.name);
        assert_eq!(r.source.as_ref().unwrap().object.kind, Kind::GrpcRoute);
    }
    let gw = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(gw.listeners[0].attached_routes, 1);
}

#[test]
fn grpc_precedence_table() {
    // Each match is its own rule, listed least specific first: the virtual host must list them
    // in GRPCRoute precedence (service characters, then method characters, then headers).
    let matches = [
        ("any", grpc_match(None, None, false, 0)),
        ("method-only", grpc_match(None, Some("Say"), false, 0)),
        (
            "service-only",
            grpc_match(Some("echo.v1.Echo"), None, false, 0),
        ),
        (
            "service-and-method",
            grpc_match(Some("echo.v1.Echo"), Some("Say"), false, 0),
        ),
        (
            "service-and-method-2-headers",
            grpc_match(Some("echo.v1.Echo"), Some("Say"), false, 2),
        ),
        (
            "longer-service-regex",
            grpc_match(Some("echo\\.v[0-9]+\\.Echo"), None, true, 0),
        ),
    ];
    let rules = matches
        .iter()
        .map(|(_, m)| {
            grpc_rule(
                vec![m.clone()],
                vec![backend("svc", 1, &["127.0.1.1:8080"])],
            )
        })
        .collect();
    let g = grpc_route("echo", "2026-01-01T00:00:00Z", &["grpc.a.example"], rules);
    let c = compile(&with_grpc(one(vec![http_gw()], vec![]), vec![g]), &dp());
    let vh = vhost(&c, 80, "grpc.a.example").unwrap();
    let idx = |label: &str| matches.iter().position(|(l, _)| *l == label).unwrap();
    let want: Vec<String> = [
        "longer-service-regex",
        "service-and-method-2-headers",
        "service-and-method",
        "service-only",
        "method-only",
        "any",
    ]
    .iter()
    .map(|l| names::route(&ck("a", "c1"), "default", "echo/grpc", idx(l), 0))
    .collect();
    assert_eq!(route_names(vh), want);
    // Header matches are carried to the data-plane route.
    let with_headers = vh.routes.iter().find(|r| r.headers.len() == 2).unwrap();
    assert_eq!(
        with_headers.path,
        PathMatch::Exact("/echo.v1.Echo/Say".into())
    );
}

#[test]
fn grpc_ties_go_to_the_oldest_route() {
    let mk = |name: &str, created: &str, be: &str| {
        grpc_route(
            name,
            created,
            &["grpc.a.example"],
            vec![grpc_rule(
                vec![grpc_match(Some("s"), Some("M"), false, 0)],
                vec![backend(be, 1, &["127.0.1.1:8080"])],
            )],
        )
    };
    let c = compile(
        &with_grpc(
            one(vec![http_gw()], vec![]),
            vec![
                mk("a-new", "2026-02-01T00:00:00Z", "new"),
                mk("b-old", "2026-01-01T00:00:00Z", "old"),
            ],
        ),
        &dp(),
    );
    let vh = vhost(&c, 80, "grpc.a.example").unwrap();
    assert!(
        vh.routes[0].name.contains("/b-old/grpc/"),
        "{:?}",
        route_names(vh)
    );
}

#[test]
fn http_and_grpc_routes_on_one_hostname_conflict_table() {
    // (HTTPRoute created, GRPCRoute created, GRPCRoute hostname, http accepted, grpc accepted)
    let table = [
        (
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "app.a.example",
            true,
            false,
        ),
        (
            "2026-02-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "app.a.example",
            false,
            true,
        ),
        // Same age: "default/app" sorts before "default/grpc".
        (
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "app.a.example",
            true,
            false,
        ),
        (
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "grpc.a.example",
            true,
            true,
        ),
    ];
    for (http_created, grpc_created, grpc_host, http_ok, grpc_ok) in table {
        let mut h = simple_route(
            "default",
            "app",
            vec![parent("default", "gw")],
            &["app.a.example"],
        );
        h.meta.creation_timestamp = http_created.into();
        let g = grpc_route(
            "grpc",
            grpc_created,
            &[grpc_host],
            vec![grpc_rule(vec![grpc_match(None, None, false, 0)], vec![])],
        );
        let c = compile(&with_grpc(one(vec![http_gw()], vec![h]), vec![g]), &dp());
        let case = format!("{http_created} {grpc_created} {grpc_host}");
        let (ha, hr) = route_cond(&c, "app", "Accepted");
        let (ga, gr) = grpc_cond(&c, "grpc", "Accepted");
        assert_eq!((ha, ga), (http_ok, grpc_ok), "{case}: {hr} {gr}");
        if !ha {
            assert_eq!(hr, "Conflicted", "{case}");
        }
        if !ga {
            assert_eq!(gr, "Conflicted", "{case}");
        }
        // The loser's rules are not in the virtual host.
        let vh = vhost(&c, 80, "app.a.example").unwrap();
        let kinds: BTreeSet<Kind> = vh
            .routes
            .iter()
            .map(|r| r.source.as_ref().unwrap().object.kind)
            .collect();
        assert_eq!(kinds.len(), 1, "{case}: {kinds:?}");
    }
}

#[test]
fn routes_of_one_cluster_with_equal_matches_are_not_merged() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let mut r1 = simple_route(
        "default",
        "r1",
        vec![parent("default", "gw")],
        &["h.a.example"],
    );
    r1.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
    let r2 = simple_route(
        "default",
        "r2",
        vec![parent("default", "gw")],
        &["h.a.example"],
    );
    let c = compile(&one(vec![gw], vec![r1, r2]), &dp());
    let vh = vhost(&c, 80, "h.a.example").unwrap();
    assert_eq!(
        route_names(vh),
        vec!["t/a/c/c1/default/r1/r0/m0", "t/a/c/c1/default/r2/r0/m0"]
    );
    assert_eq!(forward_clusters(&vh.routes[0]).len(), 1);
}

// ---- allowedRoutes.kinds ----------------------------------------------------------------

#[test]
fn listener_route_kinds_table() {
    let k = |group: &str, kind: &str| model::RouteGroupKind {
        group: group.into(),
        kind: kind.into(),
    };
    let g = "gateway.networking.k8s.io";
    // (what, allowed kinds, supportedKinds, ResolvedRefs (status, reason), Programmed, route accepted)
    type Case<'a> = (
        &'a str,
        Vec<model::RouteGroupKind>,
        Vec<&'a str>,
        (bool, &'a str),
        bool,
        (bool, &'a str),
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "unset: the protocol's kinds",
            vec![],
            vec!["HTTPRoute", "GRPCRoute"],
            (true, "ResolvedRefs"),
            true,
            (true, "Accepted"),
        ),
        (
            "HTTPRoute listed",
            vec![k(g, "HTTPRoute")],
            vec!["HTTPRoute"],
            (true, "ResolvedRefs"),
            true,
            (true, "Accepted"),
        ),
        (
            "one supported, one not: serves the supported one",
            vec![k(g, "HTTPRoute"), k(g, "TCPRoute")],
            vec!["HTTPRoute"],
            (false, "InvalidRouteKinds"),
            true,
            (true, "Accepted"),
        ),
        (
            "no supported kind: not programmed",
            vec![k(g, "TLSRoute")],
            vec![],
            (false, "InvalidRouteKinds"),
            false,
            (false, "NoMatchingParent"),
        ),
        (
            "another group",
            vec![k("example.com", "HTTPRoute")],
            vec![],
            (false, "InvalidRouteKinds"),
            false,
            (false, "NoMatchingParent"),
        ),
    ];
    for (what, kinds, supported, resolved, programmed, accepted) in cases {
        let mut l = listener("http", 80).host("h.a.example");
        l.allowed_kinds = kinds;
        let gw = gateway("default", "gw", vec![l]);
        let r = simple_route(
            "default",
            "r",
            vec![parent("default", "gw")],
            &["h.a.example"],
        );
        let c = compile(&one(vec![gw], vec![r]), &dp());
        let ls = &status(&c, &ck("a", "c1"), Kind::Gateway, "gw").listeners[0];
        let got: Vec<&str> = ls.supported_kinds.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(got, supported, "{what}: supportedKinds");
        assert!(ls.supported_kinds.iter().all(|k| k.group == g), "{what}");
        let rr = cond(&ls.conditions, "ResolvedRefs");
        assert_eq!(
            (rr.status, rr.reason.as_str()),
            resolved,
            "{what}: ResolvedRefs"
        );
        assert_eq!(
            cond(&ls.conditions, "Programmed").status,
            programmed,
            "{what}: Programmed"
        );
        assert!(cond(&ls.conditions, "Accepted").status, "{what}: Accepted");
        let (st, reason) = route_cond(&c, "r", "Accepted");
        assert_eq!((st, reason.as_str()), accepted, "{what}: route");
        assert_eq!(vhost(&c, 80, "h.a.example").is_some(), accepted.0, "{what}");
    }
}

#[test]
fn an_http_and_a_grpc_route_of_one_name_are_two_attached_routes() {
    let h = simple_route(
        "default",
        "x",
        vec![parent("default", "gw")],
        &["app.a.example"],
    );
    let g = grpc_route(
        "x",
        "2026-01-01T00:00:00Z",
        &["grpc.a.example"],
        vec![grpc_rule(
            vec![grpc_match(None, None, false, 0)],
            vec![backend("svc", 1, &["127.0.1.1:8080"])],
        )],
    );
    let c = compile(&with_grpc(one(vec![http_gw()], vec![h]), vec![g]), &dp());
    assert_eq!(route_cond(&c, "x", "Accepted"), (true, "Accepted".into()));
    assert_eq!(grpc_cond(&c, "x", "Accepted"), (true, "Accepted".into()));
    let gw = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(gw.listeners[0].attached_routes, 2);
    // Both backendRefs are rule 0 / backend 0 of a route named x: their clusters must still be
    // two (a shared name would merge them into one).
    assert_eq!(c.snapshot.clusters.len(), 2, "{:?}", c.snapshot.clusters);
}
