//! One upstream cluster per Service port of a tenant cluster (`names::service_cluster`): every
//! HTTPRoute and GRPCRoute backendRef and RequestMirror of that cluster naming the port shares
//! it; weights and backendRef filters stay per backendRef on the routes; tenants and tenant
//! clusters never share one (issue 15: Envoy's memory grows with its clusters).

use super::*;
use crate::model::{HttpFilter, Mirror, thin_vec};

fn web() -> Gateway {
    gateway(
        "default",
        "gw",
        vec![listener("web", 80).host("*.a.example")],
    )
}

fn on(host: &str, name: &str, rules: Vec<HttpRouteRule>) -> HttpRoute {
    route(
        "default",
        name,
        vec![parent("default", "gw")],
        &[host],
        rules,
    )
}

fn at_port(mut b: Backend, port: u16) -> Backend {
    b.port = port;
    b
}

fn cluster<'a>(c: &'a Compiled, name: &str) -> &'a ClusterSnapshot {
    c.snapshot
        .clusters
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {:?}", cluster_names(c)))
}

fn cluster_names(c: &Compiled) -> Vec<&str> {
    c.snapshot
        .clusters
        .iter()
        .map(|x| x.name.as_str())
        .collect()
}

fn route_source(cluster: &ClusterKey, name: &str) -> SourceObject {
    source(cluster, Kind::HttpRoute, "default", name)
}

fn forward_of(c: &Compiled, host: &str) -> Forward {
    match &vhost(c, 80, host).expect("host served").routes[0].action {
        RouteAction::Forward(fw) => fw.clone(),
        other => panic!("forward expected, got {other:?}"),
    }
}

#[test]
fn routes_and_rules_naming_one_service_port_share_its_cluster() {
    let svc = || backend("svc", 1, &["127.0.1.1:80", "127.0.1.2:80"]);
    let mut filtered = backend("svc", 3, &["127.0.1.2:80", "127.0.1.1:80"]);
    filtered
        .request_headers
        .set
        .push(("x-shard".into(), "b".into()));
    let fi = one(
        vec![web()],
        vec![
            on(
                "one.a.example",
                "one",
                vec![rule(vec![prefix("/")], vec![svc()])],
            ),
            // Two rules, and one rule naming the port twice with another weight and a filter
            // (endpoints in another order are the same endpoints).
            on(
                "two.a.example",
                "two",
                vec![
                    rule(vec![prefix("/x")], vec![svc()]),
                    rule(vec![prefix("/")], vec![svc(), filtered]),
                ],
            ),
        ],
    );
    let c = compile(&fi, &dp());
    let name = "t/a/c/c1/default/svc/backend/80";
    assert_eq!(cluster_names(&c), vec![name]);
    let shared = cluster(&c, name);
    assert_eq!(
        shared.sources,
        vec![
            Arc::new(route_source(&ck("a", "c1"), "one")),
            Arc::new(route_source(&ck("a", "c1"), "two"))
        ]
    );
    assert_eq!(shared.owner(), Some(&ck("a", "c1")));
    assert_eq!(
        forward_clusters(&vhost(&c, 80, "one.a.example").unwrap().routes[0]),
        vec![(name.to_string(), 1)]
    );
    // Weights and backendRef filters stay on the route, per backendRef (the `/` rule comes
    // after the longer `/x`).
    let routes = &vhost(&c, 80, "two.a.example").unwrap().routes;
    let RouteAction::Forward(fw) = &routes[1].action else {
        panic!("forward expected: {routes:?}")
    };
    let weighted: Vec<_> = fw
        .clusters
        .iter()
        .map(|w| (w.cluster.as_str(), w.weight, w.request_headers.set.to_vec()))
        .collect();
    assert_eq!(
        weighted,
        vec![
            (name, 1, vec![]),
            (name, 3, vec![("x-shard".to_string(), "b".to_string())])
        ]
    );
}

#[test]
fn ports_protocols_and_tenant_clusters_get_clusters_of_their_own() {
    let mut h2c = backend("svc", 1, &["127.0.1.1:80"]);
    h2c.app_protocol = AppProtocol::H2c;
    let routes = |c: &str| {
        vec![on(
            "app.a.example",
            "app",
            vec![
                rule(vec![prefix("/a")], vec![backend("svc", 1, &[c])]),
                rule(
                    vec![prefix("/b")],
                    vec![at_port(backend("svc", 1, &[c]), 81)],
                ),
                rule(vec![prefix("/c")], vec![backend("other", 1, &[c])]),
            ],
        )]
    };
    let mut c1_routes = routes("127.0.1.1:80");
    c1_routes[0].rules.push(rule(vec![prefix("/d")], vec![h2c]));
    let fi = intent(vec![
        (ck("a", "c1"), vec![web()], c1_routes),
        (ck("a", "c2"), vec![web()], routes("127.0.2.1:80")),
        (ck("b", "c1"), vec![web()], routes("127.0.3.1:80")),
    ]);
    let c = compile(&fi, &dp());
    assert_eq!(
        cluster_names(&c),
        vec![
            "t/a/c/c1/default/other/backend/80",
            "t/a/c/c1/default/svc/backend/80",
            "t/a/c/c1/default/svc/backend/80/h2c",
            "t/a/c/c1/default/svc/backend/81",
            "t/a/c/c2/default/other/backend/80",
            "t/a/c/c2/default/svc/backend/80",
            "t/a/c/c2/default/svc/backend/81",
            "t/b/c/c1/default/other/backend/80",
            "t/b/c/c1/default/svc/backend/80",
            "t/b/c/c1/default/svc/backend/81",
        ]
    );
    // Each holds its own cluster's endpoints and names only its own cluster's objects.
    for x in &c.snapshot.clusters {
        let owner = x.owner().expect("a tenant's cluster");
        assert!(
            x.name
                .starts_with(&format!("t/{}/c/{}/", owner.tenant, owner.cluster)),
            "{}",
            x.name
        );
        assert!(x.sources.iter().all(|s| &s.cluster == owner), "{x:?}");
    }
    assert_eq!(
        cluster(&c, "t/a/c/c2/default/svc/backend/80").endpoints,
        vec!["127.0.2.1:80".parse().unwrap()]
    );
    assert_eq!(
        cluster(&c, "t/a/c/c1/default/svc/backend/80/h2c").protocol,
        AppProtocol::H2c
    );
}

#[test]
fn mirrors_share_the_cluster_of_their_service_port() {
    let mut r = rule(
        vec![prefix("/")],
        vec![backend("svc", 1, &["127.0.1.1:80"])],
    );
    r.filters = thin_vec![HttpFilter::RequestMirror(Mirror {
        backend: backend("shadow", 1, &["127.0.1.9:80"]),
        numerator: 1,
        denominator: 1,
    })];
    let fi = one(
        vec![web()],
        vec![
            on("app.a.example", "app", vec![r]),
            on(
                "shadow.a.example",
                "shadow",
                vec![rule(
                    vec![prefix("/")],
                    vec![backend("shadow", 1, &["127.0.1.9:80"])],
                )],
            ),
        ],
    );
    let c = compile(&fi, &dp());
    let shadow = "t/a/c/c1/default/shadow/backend/80";
    assert_eq!(forward_of(&c, "app.a.example").mirrors[0].cluster, shadow);
    assert_eq!(
        cluster(&c, shadow).sources,
        vec![
            Arc::new(route_source(&ck("a", "c1"), "app")),
            Arc::new(route_source(&ck("a", "c1"), "shadow"))
        ]
    );
}

#[test]
fn a_backend_ref_with_other_endpoints_is_never_served_another_routes_endpoints() {
    // A route whose last accepted version is older still carries the Service's old endpoints:
    // it keeps them in a cluster of its own, and the other route keeps the new ones.
    let fi = one(
        vec![web()],
        vec![
            on(
                "new.a.example",
                "new",
                vec![rule(
                    vec![prefix("/")],
                    vec![backend("svc", 1, &["127.0.1.2:80"])],
                )],
            ),
            on(
                "old.a.example",
                "old",
                vec![rule(
                    vec![prefix("/")],
                    vec![backend("svc", 1, &["127.0.1.1:80"])],
                )],
            ),
        ],
    );
    let c = compile(&fi, &dp());
    let (first, second) = (
        "t/a/c/c1/default/svc/backend/80",
        "t/a/c/c1/default/svc/backend/80/v2",
    );
    assert_eq!(cluster_names(&c), vec![first, second]);
    let served = |host: &str| {
        let fw = forward_of(&c, host);
        cluster(&c, &fw.clusters[0].cluster).endpoints.clone()
    };
    assert_eq!(
        served("new.a.example"),
        vec!["127.0.1.2:80".parse().unwrap()]
    );
    assert_eq!(
        served("old.a.example"),
        vec!["127.0.1.1:80".parse().unwrap()]
    );
    assert_eq!(
        cluster(&c, second).sources,
        vec![Arc::new(route_source(&ck("a", "c1"), "old"))]
    );
}

#[test]
fn a_kept_cluster_part_equals_a_fresh_compile_as_routes_join_and_leave_a_shared_cluster() {
    let svc = || vec![backend("svc", 1, &["127.0.1.1:80"])];
    let r = |name: &str| {
        on(
            &format!("{name}.a.example"),
            name,
            vec![rule(vec![prefix("/")], svc())],
        )
    };
    let other = || (ck("a", "c2"), vec![web()], vec![r("z")]);
    let steps = [
        intent(vec![(ck("a", "c1"), vec![web()], vec![r("x")]), other()]),
        intent(vec![
            (ck("a", "c1"), vec![web()], vec![r("x"), r("y")]),
            other(),
        ]),
        intent(vec![(ck("a", "c1"), vec![web()], vec![r("y")]), other()]),
        intent(vec![(ck("a", "c1"), vec![web()], vec![]), other()]),
    ];
    let mut memo = Memo::default();
    let mut sources = Vec::new();
    for (i, fi) in steps.iter().enumerate() {
        let incremental = memo.compile(fi, &dp());
        assert_eq!(incremental, compile(fi, &dp()), "step {i}");
        sources.push(
            incremental
                .snapshot
                .clusters
                .iter()
                .find(|x| x.name == "t/a/c/c1/default/svc/backend/80")
                .map(|x| {
                    x.sources
                        .iter()
                        .map(|s| s.object.name.clone())
                        .collect::<Vec<_>>()
                }),
        );
    }
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        sources,
        vec![names(&["x"]), names(&["x", "y"]), names(&["y"]), None]
    );
}

#[test]
fn clusters_stay_in_name_order_when_tenant_names_sort_otherwise_inside_cluster_names() {
    // As keys `a` < `a-b` < `b`; inside cluster names `t/a-b/...` < `t/a/...` ('-' < '/'):
    // the parts' runs interleave and are merged.
    let svc = |c: &str| {
        vec![on(
            "app.a.example",
            "app",
            vec![rule(vec![prefix("/")], vec![backend("svc", 1, &[c])])],
        )]
    };
    let fi = intent(vec![
        (ck("a", "c1"), vec![web()], svc("127.0.1.1:80")),
        (ck("a-b", "c1"), vec![web()], svc("127.0.2.1:80")),
        (ck("b", "c1"), vec![web()], svc("127.0.3.1:80")),
    ]);
    let c = compile(&fi, &dp());
    assert_eq!(
        cluster_names(&c),
        vec![
            "t/a-b/c/c1/default/svc/backend/80",
            "t/a/c/c1/default/svc/backend/80",
            "t/b/c/c1/default/svc/backend/80",
        ]
    );
}
