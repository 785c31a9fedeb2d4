//! Table tests of AgentgatewayBackends (`super::ai`): HTTPRoute backendRefs that name one go to
//! the AI gateway with the identity headers set, the AI part of the snapshot, the status of the
//! backends and of the routes that name them, and isolation between clusters and tenants.

use std::time::Duration;

use super::*;
use crate::model::ai::{
    AI_GATEWAY_CLUSTER, AiAuth, AiBackend, AiMember, AiProvider, AiRoute, AiRouteProvider,
    AiRouteTarget, AiTarget, AiTargets, AiUpstream, ProviderKey, ROUTE_HEADER, TENANT_HEADER,
};
use crate::model::{BackendKind, HeaderModifier, Timeouts};

const GATEWAYS: [&str; 2] = ["127.0.0.1:18090", "127.0.0.1:18091"];

fn ai_dp() -> DataPlane {
    DataPlane {
        ai_gateways: GATEWAYS.iter().map(|a| a.parse().unwrap()).collect(),
        ..dp()
    }
}

fn target(upstream: AiUpstream, key: &str) -> AiTarget {
    AiTarget {
        provider: AiProvider::OpenAi {
            model: Some("gemma-4-12b-it".into()),
        },
        host: "llama-cpp.llm.svc.cluster.local".into(),
        port: 8080,
        path: None,
        path_prefix: None,
        upstream,
        auth: AiAuth::Key(ProviderKey(key.into())),
    }
}

fn ai_backend(name: &str, target: Result<AiTarget, BackendProblem>) -> AiBackend {
    AiBackend {
        model_aliases: Default::default(),
        meta: meta("default", name),
        target: target.map(AiTargets::from),
    }
}

/// The provider of a route that serves `ai.provider`.
fn single(r: &AiRoute) -> &AiRouteProvider {
    match &r.target {
        AiRouteTarget::Provider(p) => p,
        AiRouteTarget::Groups(g) => panic!("one provider expected, got groups {g:?}"),
        AiRouteTarget::Mcp(m) => panic!("one provider expected, got mcp {m:?}"),
    }
}

fn local(name: &str, endpoints: &[&str], key: &str) -> AiBackend {
    ai_backend(
        name,
        Ok(target(
            AiUpstream::Cluster(endpoints.iter().map(|e| e.parse().unwrap()).collect()),
            key,
        )),
    )
}

fn ai_ref(name: &str, weight: u32) -> Backend {
    Backend {
        kind: BackendKind::AiBackend,
        port: 0,
        ..backend(name, weight, &[])
    }
}

fn chat_gateway() -> Gateway {
    gateway(
        "default",
        "agentgateway-proxy",
        vec![listener("http", 80).host("chat.a.example")],
    )
}

fn chat_route(backends: Vec<Backend>) -> HttpRoute {
    route(
        "default",
        "chat",
        vec![parent("default", "agentgateway-proxy")],
        &[],
        vec![rule(vec![prefix("/")], backends)],
    )
}

/// One cluster's Gateway, routes and AI backends.
fn with_ai(
    k: ClusterKey,
    gws: Vec<Gateway>,
    routes: Vec<HttpRoute>,
    backends: Vec<AiBackend>,
) -> (ClusterKey, ClusterIntent) {
    let mut fi = intent(vec![(k.clone(), gws, routes)]);
    let mut ci = std::sync::Arc::unwrap_or_clone(fi.remove(&k).expect("one cluster"));
    ci.ai_backends = backends
        .into_iter()
        .map(|b| ((b.meta.namespace.clone(), b.meta.name.clone()), b))
        .collect();
    (k, ci)
}

fn chat(c: &Compiled) -> &Route {
    &vhost(c, 80, "chat.a.example")
        .expect("the chat host is served")
        .routes[0]
}

fn forward_of(r: &Route) -> &Forward {
    match &r.action {
        RouteAction::Forward(f) => f,
        other => panic!("not a forward: {other:?}"),
    }
}

fn identity(w: &WeightedCluster) -> Vec<(String, String)> {
    w.request_headers
        .set
        .iter()
        .filter(|(n, _)| n.starts_with("x-fleetgate-"))
        .cloned()
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn an_ai_backend_ref_forwards_to_the_ai_gateway_with_the_identity_headers() {
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![ai_ref("local-llm", 1)])],
        vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let fw = forward_of(chat(&c));
    assert_eq!(fw.clusters.len(), 1);
    let w = &fw.clusters[0];
    assert_eq!((w.cluster.as_str(), w.weight), (AI_GATEWAY_CLUSTER, 1));
    assert_eq!(
        w.request_headers.set,
        set(&[(TENANT_HEADER, "a"), (ROUTE_HEADER, "c1/default/local-llm")])
    );
    assert!(w.request_headers.add.is_empty() && w.request_headers.remove.is_empty());
    // No timeout: the data plane's default would cut a long stream.
    assert_eq!(fw.timeout, Some(Duration::ZERO));
    assert_eq!(fw.backend_timeout, None);
    // The AI gateways' cluster: fleetgate's own, HTTP/1.1, the configured replicas.
    let gw = c
        .snapshot
        .clusters
        .iter()
        .find(|c| c.name == AI_GATEWAY_CLUSTER)
        .expect("the AI gateway cluster");
    assert_eq!(
        gw.endpoints,
        GATEWAYS
            .iter()
            .map(|a| a.parse().unwrap())
            .collect::<Vec<SocketAddr>>()
    );
    assert_eq!(
        (gw.protocol, gw.sources.is_empty()),
        (AppProtocol::Http1, true)
    );
    // The tenant's Service endpoints are nowhere in Envoy's clusters: the gateway dials them.
    assert!(
        c.snapshot
            .clusters
            .iter()
            .all(|cl| !cl.endpoints.contains(&"127.0.1.10:8080".parse().unwrap()))
    );
    // Statuses: the route resolved its ref; the backend is accepted, at its generation.
    assert_eq!(
        route_cond(&c, "chat", "ResolvedRefs"),
        (true, "ResolvedRefs".into())
    );
    assert_eq!(
        route_cond(&c, "chat", "Accepted"),
        (true, "Accepted".into())
    );
    let b = status(&c, &ck("a", "c1"), Kind::AiBackend, "local-llm");
    assert_eq!(b.observed_generation, 3);
    assert_eq!(
        b.conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status, c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            ("Accepted", true, "Accepted"),
            ("ResolvedRefs", true, "ResolvedRefs")
        ]
    );
    assert!(
        cond(&b.conditions, "ResolvedRefs")
            .message
            .contains("1 ready endpoint"),
        "{b:?}"
    );
}

#[test]
fn a_rule_with_timeouts_keeps_them_and_a_mixed_rule_splits_by_weight() {
    let mut r = chat_route(vec![
        ai_ref("local-llm", 3),
        backend("svc", 1, &["127.0.1.1:80"]),
    ]);
    r.rules[0].timeouts = Timeouts {
        request: Some(Duration::from_secs(600)),
        backend_request: None,
    };
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![r],
        vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let fw = forward_of(chat(&c));
    assert_eq!(fw.timeout, Some(Duration::from_secs(600)));
    assert_eq!(
        forward_clusters(chat(&c)),
        vec![
            (AI_GATEWAY_CLUSTER.to_string(), 3),
            ("t/a/c/c1/default/svc/backend/80".to_string(), 1)
        ]
    );
    // Only the AI share carries the identity headers.
    assert!(identity(&fw.clusters[1]).is_empty());
}

#[test]
fn model_aliases_reach_the_backends_route_and_only_its_own() {
    let mut aliased = local("aliased", &["127.0.1.10:8080"], "sk-a");
    aliased.model_aliases = [("fast".to_string(), "gpt-4o-mini".to_string())].into();
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![],
        vec![],
        vec![aliased, local("plain", &["127.0.1.11:8080"], "sk-b")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let routes = &c.snapshot.ai.tenants["a"].routes;
    assert_eq!(
        routes["c1/default/aliased"].model_aliases,
        [("fast".to_string(), "gpt-4o-mini".to_string())].into()
    );
    assert!(routes["c1/default/plain"].model_aliases.is_empty());
}

#[test]
fn the_ai_snapshot_has_one_route_per_resolved_backend() {
    let external = ai_backend(
        "openai",
        Ok(AiTarget {
            host: "api.openai.com".into(),
            port: 443,
            path_prefix: Some("/v1".into()),
            ..target(AiUpstream::External, "sk-ext")
        }),
    );
    let missing_secret = ai_backend(
        "no-secret",
        Err(BackendProblem {
            reason: "BackendNotFound".into(),
            message: "Secret llm/llm-secret not found".into(),
        }),
    );
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![],
        vec![],
        vec![
            local("local-llm", &["127.0.1.10:8080", "127.0.1.11:8080"], "sk-a"),
            external,
            local("unready", &[], "sk-u"),
            missing_secret,
        ],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let routes = &c.snapshot.ai.tenants["a"].routes;
    // No route for an unresolved backend, nor for one without ready endpoints (the gateway
    // would dial its cluster-local host).
    assert_eq!(
        routes.keys().collect::<Vec<_>>(),
        ["c1/default/local-llm", "c1/default/openai"]
    );
    let route = &routes["c1/default/local-llm"];
    let l = single(route);
    assert_eq!(
        l.endpoints,
        vec![
            "127.0.1.10:8080".parse::<SocketAddr>().unwrap(),
            "127.0.1.11:8080".parse().unwrap()
        ]
    );
    assert_eq!(l.auth, AiAuth::Key(ProviderKey("sk-a".into())));
    assert_eq!(l.host, "llama-cpp.llm.svc.cluster.local");
    assert_eq!(
        l.provider,
        AiProvider::OpenAi {
            model: Some("gemma-4-12b-it".into())
        }
    );
    assert_eq!(route.source.object.kind, Kind::AiBackend);
    assert_eq!(route.source.cluster, ck("a", "c1"));
    assert!(
        !l.tls,
        "a model server in the tenant's cluster is plain HTTP"
    );
    let o = single(&routes["c1/default/openai"]);
    assert!(o.endpoints.is_empty());
    assert!(o.tls, "an external provider on 443 is reached over HTTPS");
    assert_eq!(
        (o.host.as_str(), o.port, o.path_prefix.as_deref()),
        ("api.openai.com", 443, Some("/v1"))
    );
    // Statuses of all four.
    let conds = |name: &str| {
        status(&c, &ck("a", "c1"), Kind::AiBackend, name)
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status, c.reason.clone()))
            .collect::<Vec<_>>()
    };
    let ok = vec![
        ("Accepted".to_string(), true, "Accepted".to_string()),
        ("ResolvedRefs".to_string(), true, "ResolvedRefs".to_string()),
    ];
    assert_eq!(conds("local-llm"), ok);
    assert_eq!(conds("openai"), ok);
    assert_eq!(conds("unready"), ok);
    assert_eq!(
        conds("no-secret"),
        vec![
            ("Accepted".to_string(), false, "BackendNotFound".to_string()),
            (
                "ResolvedRefs".to_string(),
                false,
                "BackendNotFound".to_string()
            ),
        ]
    );
    let msg = &status(&c, &ck("a", "c1"), Kind::AiBackend, "no-secret").conditions[0].message;
    assert!(msg.contains("Secret llm/llm-secret not found"), "{msg}");
    // No key in any status.
    assert!(!format!("{:?}", c.statuses).contains("sk-"));
    // Without AI backends there is no AI part at all.
    assert!(
        compile(&one(vec![], vec![]), &ai_dp())
            .snapshot
            .ai
            .tenants
            .is_empty()
    );
}

#[test]
fn a_backend_without_ready_endpoints_gets_503_not_the_gateway() {
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![ai_ref("unready", 1)])],
        vec![local("unready", &[], "sk-u")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let name = "t/a/c/c1/default/chat/r0/b0";
    assert_eq!(forward_clusters(chat(&c)), vec![(name.to_string(), 1)]);
    let cl = c.snapshot.clusters.iter().find(|c| c.name == name).unwrap();
    assert!(cl.endpoints.is_empty(), "the data plane answers 503");
    assert_eq!(
        route_cond(&c, "chat", "ResolvedRefs"),
        (true, "ResolvedRefs".into())
    );
}

#[test]
fn missing_or_unresolved_ai_backends_get_500_and_backend_not_found() {
    let unresolved = ai_backend(
        "no-secret",
        Err(BackendProblem {
            reason: "RefNotPermitted".into(),
            message: "Secret other/llm-secret is in another namespace without a ReferenceGrant"
                .into(),
        }),
    );
    type Case = (&'static str, Vec<Backend>, Vec<(String, u32)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "a backend that does not exist",
            vec![ai_ref("nope", 1)],
            vec![],
            "AgentgatewayBackend default/nope does not exist in cluster c1",
        ),
        (
            "a backend the agent could not resolve",
            vec![ai_ref("no-secret", 1)],
            vec![],
            "is not resolved (RefNotPermitted: Secret other/llm-secret",
        ),
        (
            "the missing share of a rule with a valid backend",
            vec![ai_ref("local-llm", 1), ai_ref("nope", 3)],
            vec![
                (AI_GATEWAY_CLUSTER.to_string(), 1),
                (names::INVALID_BACKEND_CLUSTER.to_string(), 3),
            ],
            "default/nope does not exist",
        ),
    ];
    for (what, backends, want, words) in cases {
        let fi: FleetIntent = [with_ai(
            ck("a", "c1"),
            vec![chat_gateway()],
            vec![chat_route(backends)],
            vec![
                local("local-llm", &["127.0.1.10:8080"], "sk-a"),
                unresolved.clone(),
            ],
        )]
        .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
        .into();
        let c = compile(&fi, &ai_dp());
        let r = chat(&c);
        if want.is_empty() {
            assert_eq!(r.action, RouteAction::DirectResponse(500), "{what}");
        } else {
            assert_eq!(forward_clusters(r), want, "{what}");
        }
        let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "chat");
        let rr = cond(&s.parents[0].conditions, "ResolvedRefs");
        assert_eq!(
            (rr.status, rr.reason.as_str()),
            (false, "BackendNotFound"),
            "{what}"
        );
        assert!(rr.message.contains(words), "{what}: {}", rr.message);
        // The route is still accepted by its Gateway.
        assert!(route_cond(&c, "chat", "Accepted").0, "{what}");
    }
}

#[test]
fn without_an_ai_gateway_an_ai_backend_ref_gets_500_and_says_why() {
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![ai_ref("local-llm", 1)])],
        vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp());
    assert_eq!(chat(&c).action, RouteAction::DirectResponse(500));
    let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "chat");
    let rr = cond(&s.parents[0].conditions, "ResolvedRefs");
    assert!(!rr.status);
    assert!(
        rr.message
            .contains("the hub operator has not configured an AI gateway"),
        "{}",
        rr.message
    );
    assert!(
        rr.message.contains("dataPlane.aiGateways"),
        "{}",
        rr.message
    );
    assert!(
        c.snapshot
            .clusters
            .iter()
            .all(|c| c.name != AI_GATEWAY_CLUSTER)
    );
}

/// Isolation: a route resolves AgentgatewayBackends of its own cluster only, so a tenant can
/// never name another tenant's backend (nor another cluster's), and the identity headers always
/// name the route's own tenant and cluster.
#[test]
fn a_route_never_reaches_another_tenants_or_clusters_backend() {
    let b_gateway = gateway(
        "default",
        "agentgateway-proxy",
        vec![listener("http", 80).host("chat.b.example")],
    );
    let fi: FleetIntent = [
        // Tenant a, cluster c1: names "shared" (which it has) and "b-only" (which only tenant b
        // has) and "c2-only" (which only its other cluster has).
        with_ai(
            ck("a", "c1"),
            vec![chat_gateway()],
            vec![chat_route(vec![
                ai_ref("shared", 1),
                ai_ref("b-only", 1),
                ai_ref("c2-only", 1),
            ])],
            vec![local("shared", &["127.0.1.10:8080"], "sk-a")],
        ),
        with_ai(
            ck("a", "c2"),
            vec![],
            vec![],
            vec![local("c2-only", &["127.0.3.10:8080"], "sk-a2")],
        ),
        with_ai(
            ck("b", "c1"),
            vec![b_gateway],
            vec![chat_route(vec![ai_ref("shared", 1)])],
            vec![
                local("shared", &["127.0.2.10:8080"], "sk-b"),
                local("b-only", &["127.0.2.11:8080"], "sk-b"),
            ],
        ),
    ]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let a = chat(&c);
    assert_eq!(
        forward_clusters(a),
        vec![
            (AI_GATEWAY_CLUSTER.to_string(), 1),
            (names::INVALID_BACKEND_CLUSTER.to_string(), 2)
        ]
    );
    assert_eq!(
        identity(&forward_of(a).clusters[0]),
        set(&[(TENANT_HEADER, "a"), (ROUTE_HEADER, "c1/default/shared")])
    );
    let b = &vhost(&c, 80, "chat.b.example").unwrap().routes[0];
    assert_eq!(
        identity(&forward_of(b).clusters[0]),
        set(&[(TENANT_HEADER, "b"), (ROUTE_HEADER, "c1/default/shared")])
    );
    // Each tenant's AI routes hold only its own backends and keys.
    let ai = &c.snapshot.ai.tenants;
    assert_eq!(
        ai["a"].routes.keys().collect::<Vec<_>>(),
        ["c1/default/shared", "c2/default/c2-only"]
    );
    assert_eq!(
        ai["b"].routes.keys().collect::<Vec<_>>(),
        ["c1/default/b-only", "c1/default/shared"]
    );
    for (tenant, t) in ai {
        for r in t.routes.values() {
            assert_eq!(&r.source.cluster.tenant, tenant);
            let AiAuth::Key(k) = &single(r).auth else {
                panic!()
            };
            assert!(k.0.starts_with(&format!("sk-{tenant}")), "{tenant}: {r:?}");
        }
    }
    assert_eq!(
        single(&ai["a"].routes["c1/default/shared"]).endpoints,
        vec!["127.0.1.10:8080".parse::<SocketAddr>().unwrap()]
    );
}

/// Intent stored before admission refused `x-fleetgate-*` in filters cannot override the
/// identity headers: Envoy applies route-level changes after the weighted cluster's.
#[test]
fn a_tenants_changes_to_the_identity_headers_are_dropped() {
    let forged = HeaderModifier {
        set: set(&[(TENANT_HEADER, "b"), ("x-keep", "1")]).into(),
        add: set(&[(ROUTE_HEADER, "c1/default/b-only")]).into(),
        remove: vec![TENANT_HEADER.into()].into(),
    };
    let mut r = chat_route(vec![Backend {
        request_headers: forged.clone(),
        ..ai_ref("local-llm", 1)
    }]);
    r.rules[0]
        .filters
        .push(crate::model::HttpFilter::RequestHeaderModifier(forged));
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![r],
        vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let route = chat(&c);
    assert_eq!(route.request_headers.set, set(&[("x-keep", "1")]));
    assert!(route.request_headers.add.is_empty() && route.request_headers.remove.is_empty());
    let w = &forward_of(route).clusters[0];
    assert_eq!(
        w.request_headers.set,
        set(&[
            ("x-keep", "1"),
            (TENANT_HEADER, "a"),
            (ROUTE_HEADER, "c1/default/local-llm")
        ])
    );
    assert!(w.request_headers.add.is_empty() && w.request_headers.remove.is_empty());
}

/// The tutorial's shape: a hostname-less Gateway listener on 8080 and a hostname-less route, the
/// Gateway on its own address.
#[test]
fn the_tutorials_gateway_on_its_own_address_reaches_the_ai_gateway() {
    use crate::model::allocate::{self, Allocations};
    let gw = gateway(
        "default",
        "agentgateway-proxy",
        vec![listener("http", 8080).allow(AllowedRoutes::All)],
    );
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![gw],
        vec![chat_route(vec![ai_ref("local-llm", 1)])],
        vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let l4 = super::own_address::pools(&["192.0.2.50"], None);
    let o = allocate::allocate(
        &l4,
        &BTreeSet::new(),
        &Allocations::new(),
        &crate::l4::wanted_ports(&fi),
    );
    let c = compile_with_l4(&fi, &ai_dp(), &l4, &o.allocations, &o.failures);
    let g = status(&c, &ck("a", "c1"), Kind::Gateway, "agentgateway-proxy");
    assert_eq!(g.addresses, vec!["192.0.2.50".to_string()]);
    let l = c
        .snapshot
        .listeners
        .iter()
        .find(|l| l.bind == "192.0.2.50:8080".parse().unwrap())
        .expect("the Gateway's own listener");
    let r = &l.virtual_hosts[0].routes[0];
    assert_eq!(l.virtual_hosts[0].domains, vec!["*"]);
    assert_eq!(
        identity(&forward_of(r).clusters[0]),
        set(&[(TENANT_HEADER, "a"), (ROUTE_HEADER, "c1/default/local-llm")])
    );
    assert!(
        c.snapshot
            .clusters
            .iter()
            .any(|c| c.name == AI_GATEWAY_CLUSTER)
    );
}

/// The memo: a change of an AI backend recompiles its cluster like a fresh compile.
#[test]
fn incremental_compiles_follow_ai_backend_changes() {
    let build = |backends: Vec<AiBackend>| -> FleetIntent {
        [with_ai(
            ck("a", "c1"),
            vec![chat_gateway()],
            vec![chat_route(vec![ai_ref("local-llm", 1)])],
            backends,
        )]
        .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
        .into()
    };
    let steps = [
        build(vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")]),
        build(vec![local("local-llm", &["127.0.1.11:8080"], "sk-rotated")]),
        build(vec![]),
        build(vec![local("local-llm", &[], "sk-a")]),
    ];
    let mut memo = Memo::default();
    for (i, fi) in steps.iter().enumerate() {
        assert_eq!(
            memo.compile(fi, &ai_dp()),
            compile(fi, &ai_dp()),
            "step {i}"
        );
    }
}

/// Two clusters of one tenant serving one hostname: the older route (to a Service, no
/// timeouts) takes the other cluster's AI share, and with it no timeout.
#[test]
fn a_merged_route_with_an_ai_share_keeps_no_timeout() {
    let mut older = chat_route(vec![backend("svc", 1, &["127.0.1.1:80"])]);
    older.meta.creation_timestamp = "2025-01-01T00:00:00Z".into();
    let fi: FleetIntent = [
        with_ai(ck("a", "c1"), vec![chat_gateway()], vec![older], vec![]),
        with_ai(
            ck("a", "c2"),
            vec![chat_gateway()],
            vec![chat_route(vec![ai_ref("local-llm", 1)])],
            vec![local("local-llm", &["127.0.1.10:8080"], "sk-a")],
        ),
    ]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let r = chat(&c);
    assert_eq!(
        forward_clusters(r),
        vec![
            ("t/a/c/c1/default/svc/backend/80".to_string(), 1),
            (AI_GATEWAY_CLUSTER.to_string(), 1)
        ]
    );
    let fw = forward_of(r);
    assert_eq!(fw.timeout, Some(Duration::ZERO));
    assert_eq!(
        identity(&fw.clusters[1]),
        set(&[(TENANT_HEADER, "a"), (ROUTE_HEADER, "c2/default/local-llm")])
    );
}

fn member(name: &str, target: Result<AiTarget, BackendProblem>) -> AiMember {
    AiMember {
        name: name.into(),
        target,
    }
}

fn cluster(endpoints: &[&str]) -> AiUpstream {
    AiUpstream::Cluster(endpoints.iter().map(|e| e.parse().unwrap()).collect())
}

fn not_found(message: &str) -> BackendProblem {
    BackendProblem {
        reason: "BackendNotFound".into(),
        message: message.into(),
    }
}

/// `ai.groups`: the route keeps the groups in order with the providers the gateway can dial;
/// unresolved providers and Services without ready endpoints are left out, an emptied group is
/// dropped, and none left is no route (503 from the data plane). The status says which
/// providers resolved.
#[test]
fn groups_become_routes_of_the_providers_the_gateway_can_dial() {
    let external = AiTarget {
        host: "api.openai.com".into(),
        port: 443,
        ..target(AiUpstream::External, "sk-b")
    };
    type Case = (
        &'static str,
        Vec<Vec<AiMember>>,
        Option<Vec<Vec<&'static str>>>,
        (bool, &'static str),
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "all resolved",
            vec![
                vec![member(
                    "a",
                    Ok(target(cluster(&["127.0.1.10:8080"]), "sk-a")),
                )],
                vec![member("b", Ok(external.clone()))],
            ],
            Some(vec![vec!["a"], vec!["b"]]),
            (true, "ResolvedRefs"),
            "2 of 2 providers of spec.ai.groups resolved: groups[0].providers[0] (a): host llama-cpp.llm.svc.cluster.local resolved to 1 ready endpoint(s) in the cluster; groups[1].providers[0] (b): host api.openai.com:443 is outside the cluster",
        ),
        (
            "one unresolved, one without ready endpoints: both left out",
            vec![
                vec![
                    member("a", Err(not_found("Service llm/a not found"))),
                    member("u", Ok(target(cluster(&[]), "sk-u"))),
                ],
                vec![member("b", Ok(external.clone()))],
            ],
            Some(vec![vec!["b"]]),
            (false, "BackendNotFound"),
            "2 of 3 providers of spec.ai.groups resolved: groups[0].providers[0] (a): not resolved (BackendNotFound: Service llm/a not found); groups[0].providers[1] (u): host llama-cpp.llm.svc.cluster.local is a Service of the cluster without ready endpoints; left out of failover",
        ),
        (
            "none the gateway can dial: no route",
            vec![vec![member("u", Ok(target(cluster(&[]), "sk-u")))]],
            None,
            (true, "ResolvedRefs"),
            "1 of 1 providers",
        ),
    ];
    for (what, groups, want_route, (resolved, reason), message) in cases {
        let b = AiBackend {
            model_aliases: Default::default(),
            meta: meta("default", "failover"),
            target: Ok(AiTargets::Groups(groups)),
        };
        let fi: FleetIntent = [with_ai(
            ck("a", "c1"),
            vec![chat_gateway()],
            vec![chat_route(vec![ai_ref("failover", 1)])],
            vec![b],
        )]
        .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
        .into();
        let c = compile(&fi, &ai_dp());
        let route = c
            .snapshot
            .ai
            .tenants
            .get("a")
            .and_then(|t| t.routes.get("c1/default/failover"));
        let got = route.map(|r| match &r.target {
            AiRouteTarget::Groups(g) => g
                .iter()
                .map(|g| g.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            AiRouteTarget::Provider(p) => panic!("{what}: groups expected, got {p:?}"),
            AiRouteTarget::Mcp(m) => panic!("{what}: groups expected, got {m:?}"),
        });
        assert_eq!(got, want_route, "{what}");
        // Envoy: to the AI gateway while a provider can be dialled, else 503 from the data plane.
        let fw = forward_of(chat(&c));
        let to_gateway = fw.clusters.iter().any(|w| w.cluster == AI_GATEWAY_CLUSTER);
        assert_eq!(to_gateway, want_route.is_some(), "{what}: {fw:?}");
        let st = status(&c, &ck("a", "c1"), Kind::AiBackend, "failover");
        let refs = &st.conditions[1];
        assert!(st.conditions[0].status, "{what}: accepted");
        assert_eq!(
            (refs.status, refs.reason.as_str()),
            (resolved, reason),
            "{what}"
        );
        assert!(
            refs.message.starts_with(message),
            "{what}: {}",
            refs.message
        );
        assert!(!format!("{:?}", c.statuses).contains("sk-"), "{what}");
    }
}

#[test]
fn a_groups_route_carries_each_providers_key_and_endpoints() {
    let b = AiBackend {
        model_aliases: Default::default(),
        meta: meta("default", "failover"),
        target: Ok(AiTargets::Groups(vec![
            vec![
                member("a", Ok(target(cluster(&["127.0.1.10:8080"]), "sk-a"))),
                member("a2", Ok(target(cluster(&["127.0.1.11:8080"]), "sk-a2"))),
            ],
            vec![member(
                "b",
                Ok(target(cluster(&["127.0.1.12:8080"]), "sk-b")),
            )],
        ])),
    };
    let fi: FleetIntent = [with_ai(ck("a", "c1"), vec![], vec![], vec![b])]
        .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
        .into();
    let c = compile(&fi, &ai_dp());
    let r = &c.snapshot.ai.tenants["a"].routes["c1/default/failover"];
    let got: Vec<(String, String, Vec<SocketAddr>)> = r
        .target
        .providers()
        .into_iter()
        .map(|p| {
            let AiAuth::Key(k) = &p.auth else {
                panic!("a key expected")
            };
            (p.name.clone(), k.0.clone(), p.endpoints.clone())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "a".to_string(),
                "sk-a".to_string(),
                vec!["127.0.1.10:8080".parse().unwrap()]
            ),
            (
                "a2".to_string(),
                "sk-a2".to_string(),
                vec!["127.0.1.11:8080".parse().unwrap()]
            ),
            (
                "b".to_string(),
                "sk-b".to_string(),
                vec!["127.0.1.12:8080".parse().unwrap()]
            ),
        ]
    );
}

/// A backendRef to a Service port of appProtocol `agentgateway.dev/a2a` goes to the AI gateways
/// with the identity headers (its own route id) and becomes an A2A route with the Service's
/// endpoints and no key; without ready endpoints 503 from the data plane, without an AI gateway
/// 500; a Service of another appProtocol stays Envoy's.
#[test]
fn a2a_services_go_to_the_ai_gateway_as_agents() {
    let a2a = |name: &str, endpoints: &[&str]| Backend {
        port: 9999,
        app_protocol: AppProtocol::A2a,
        ..backend(name, 1, endpoints)
    };
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![a2a("echo", &["127.0.1.10:31999"])])],
        vec![],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let fw = forward_of(chat(&c));
    let [w] = fw.clusters.as_slice() else {
        panic!("one cluster: {fw:?}")
    };
    assert_eq!(w.cluster, AI_GATEWAY_CLUSTER);
    assert_eq!(
        identity(w),
        set(&[
            (TENANT_HEADER, "a"),
            (ROUTE_HEADER, "c1/default/services/echo/9999")
        ])
    );
    let route = &c.snapshot.ai.tenants["a"].routes["c1/default/services/echo/9999"];
    let p = single(route);
    assert_eq!(p.provider, AiProvider::A2a);
    assert_eq!(
        (p.host.as_str(), p.port),
        ("echo.default.svc.cluster.local", 9999)
    );
    assert_eq!(
        p.endpoints,
        ["127.0.1.10:31999".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(p.auth, AiAuth::None);
    assert_eq!(
        route_cond(&c, "chat", "ResolvedRefs"),
        (true, "ResolvedRefs".into())
    );
    assert!(
        c.snapshot
            .clusters
            .iter()
            .all(|cl| !cl.endpoints.contains(&"127.0.1.10:31999".parse().unwrap())),
        "the gateway dials the agent, not Envoy"
    );

    // No ready endpoints: an endpoint-less cluster (503), no A2A route.
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![a2a("echo", &[])])],
        vec![],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &ai_dp());
    let fw = forward_of(chat(&c));
    assert_ne!(fw.clusters[0].cluster, AI_GATEWAY_CLUSTER);
    assert!(
        c.snapshot
            .ai
            .tenants
            .get("a")
            .is_none_or(|t| t.routes.is_empty())
    );

    // No AI gateway configured: that share is 500.
    let fi: FleetIntent = [with_ai(
        ck("a", "c1"),
        vec![chat_gateway()],
        vec![chat_route(vec![a2a("echo", &["127.0.1.10:31999"])])],
        vec![],
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp());
    assert!(
        matches!(chat(&c).action, RouteAction::DirectResponse(500)),
        "{:?}",
        chat(&c).action
    );
}
