//! The compiler and the ADS server against a REAL Envoy (FLEETGATE_ENVOY, installed by
//! `e2e/setup.sh`): a small FleetIntent is compiled, served over ADS on a free loopback port,
//! and requests through Envoy must reach the right tiny HTTP backend — or get the right error.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleetgate_hub::compile::{Snapshot, compile};
use fleetgate_hub::config::{DataPlane, DataPlaneListener};
use fleetgate_hub::model::{
    AllowedRoutes, Backend, BackendProblem, ClusterIntent, ClusterKey, FleetIntent, Gateway,
    HttpRoute, HttpRouteMatch, HttpRouteRule, Kind, Listener, Meta, ParentRef, PathMatch, Protocol,
    thin_vec,
};
use fleetgate_hub::xds::{XdsHealth, resources::LISTENER_TYPE, serve_on};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

const DEADLINE: Duration = Duration::from_secs(30);

mod support;
use support::envoy::{AdsApi, Envoy, HttpClient, client, get};

// ---- test support: backends, Envoy, client ----------------------------------------------

/// A free loopback port (bound and released; Envoy binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP/1 backend on 127.0.0.1 that answers every request with its name.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Polls until `host` + `path` answers `want`, or fails with what it last saw.
async fn eventually_answers(
    envoy: &mut Envoy,
    dp: SocketAddr,
    host: &str,
    path: &str,
    want: (StatusCode, Option<&str>),
) {
    let c = client();
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < DEADLINE {
        envoy.assert_running();
        last = get(&c, dp, host, path).await;
        if let Some((status, body)) = &last
            && *status == want.0
            && want.1.is_none_or(|b| b == body)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{host}{path}: wanted {want:?}, last got {last:?}\nEnvoy log:\n{}",
        envoy.log()
    );
}

// ---- intent builders ----------------------------------------------------------------------

fn meta(name: &str) -> Meta {
    Meta {
        namespace: "default".into(),
        name: name.into(),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

fn backend_ref(name: &str, endpoints: Vec<SocketAddr>) -> Backend {
    Backend {
        namespace: "default".into(),
        name: name.into(),
        port: 80,
        weight: 1,
        problem: None,
        endpoints: endpoints.into(),
        app_protocol: Default::default(),
        request_headers: Default::default(),
        response_headers: Default::default(),
        kind: Default::default(),
    }
}

fn rule(prefix: &str, backend: Backend) -> HttpRouteRule {
    HttpRouteRule {
        name: None,
        matches: thin_vec![HttpRouteMatch {
            path: PathMatch::Prefix(prefix.into()),
            headers: Default::default(),
            query_params: Default::default(),
            method: None,
        }],
        filters: Default::default(),
        backends: thin_vec![backend],
        timeouts: Default::default(),
    }
}

fn http_route(name: &str, gateway: &str, host: &str, rules: Vec<HttpRouteRule>) -> HttpRoute {
    HttpRoute {
        meta: meta(name),
        parent_refs: vec![ParentRef {
            namespace: "default".into(),
            name: gateway.into(),
            section_name: None,
            port: None,
            kind: Default::default(),
        }],
        hostnames: vec![host.into()],
        rules,
    }
}

fn gateway(name: &str, port: u16) -> Gateway {
    Gateway {
        meta: meta(name),
        class_name: "fleetgate".into(),
        allowed_listeners: Default::default(),
        listeners: vec![Listener {
            name: "http".into(),
            protocol: Some(Protocol::Http),
            protocol_name: "HTTP".into(),
            port,
            hostname: None,
            allowed_routes: AllowedRoutes::Same,
            tls: None,
            allowed_kinds: Vec::new(),
        }],
    }
}

fn cluster_key() -> ClusterKey {
    ClusterKey {
        tenant: "a".into(),
        cluster: "c1".into(),
    }
}

fn fleet(gateways: Vec<Gateway>, routes: Vec<HttpRoute>) -> FleetIntent {
    let ci = ClusterIntent {
        gateways: gateways
            .into_iter()
            .map(|g| (("default".to_string(), g.meta.name.clone()), g))
            .collect(),
        http_routes: routes
            .into_iter()
            .map(|r| (("default".to_string(), r.meta.name.clone()), r))
            .collect(),
        ..Default::default()
    };
    BTreeMap::from([(cluster_key(), std::sync::Arc::new(ci))])
}

/// The hub side: an ADS server on a free loopback port serving a snapshot channel.
struct Hub {
    addr: SocketAddr,
    snapshots: watch::Sender<Arc<Snapshot>>,
    health: watch::Receiver<XdsHealth>,
    _stop: oneshot::Sender<()>,
}

async fn start_hub(first: Snapshot) -> Hub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (snapshots, snapshot_rx) = watch::channel(Arc::new(first));
    let (health_tx, health) = watch::channel(XdsHealth::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve_on(listener, snapshot_rx, health_tx, async {
            let _ = stopped.await;
        })
        .await
        .expect("xDS server failed");
    });
    Hub {
        addr,
        snapshots,
        health,
        _stop: stop,
    }
}

// ---- tests --------------------------------------------------------------------------------

async fn routes_by_host_and_path_and_follows_changes(api: AdsApi) {
    let blue = backend("blue").await;
    let green = backend("green").await;
    let dp_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dp = DataPlane {
        address: "127.0.0.1".parse().unwrap(),
        ai_gateways: Vec::new(),
        listeners: vec![DataPlaneListener {
            port: 80,
            bind: dp_addr,
            protocol: Default::default(),
        }],
    };
    let missing = Backend {
        problem: Some(Box::new(BackendProblem {
            reason: "BackendNotFound".into(),
            message: "Service default/gone not found".into(),
        })),
        ..backend_ref("gone", vec![])
    };
    let intent = |blue_prefix_to: SocketAddr, rest_to: SocketAddr| {
        fleet(
            vec![gateway("gw", 80)],
            vec![
                http_route(
                    "app",
                    "gw",
                    "app.a.example",
                    vec![
                        rule("/blue", backend_ref("first", vec![blue_prefix_to])),
                        rule("/", backend_ref("second", vec![rest_to])),
                    ],
                ),
                http_route(
                    "empty",
                    "gw",
                    "empty.a.example",
                    vec![rule("/", backend_ref("nothing", vec![]))],
                ),
                http_route(
                    "broken",
                    "gw",
                    "broken.a.example",
                    vec![rule("/", missing.clone())],
                ),
                http_route(
                    "split",
                    "gw",
                    "split.a.example",
                    vec![HttpRouteRule {
                        backends: thin_vec![backend_ref("half", vec![blue]), missing.clone()],
                        ..rule("/", missing.clone())
                    }],
                ),
            ],
        )
    };

    let compiled = compile(&intent(blue, green), &dp);
    assert!(
        compiled.statuses[&cluster_key()]
            .iter()
            .filter(|s| s.key.kind == Kind::HttpRoute)
            .all(|s| s.parents[0].conditions[0].status),
        "{:#?}",
        compiled.statuses
    );
    let hub = start_hub(compiled.snapshot).await;
    let mut envoy = Envoy::start_over("envoy-1", hub.addr, api);
    envoy.wait_ready().await;

    let ok = StatusCode::OK;
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/blue",
        (ok, Some("blue")),
    )
    .await;
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/blue/x",
        (ok, Some("blue")),
    )
    .await;
    // Element-wise prefix: /bluex is not under /blue.
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/bluex",
        (ok, Some("green")),
    )
    .await;
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/",
        (ok, Some("green")),
    )
    .await;
    // Port in Host is ignored for virtual host selection.
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example:80",
        "/",
        (ok, Some("green")),
    )
    .await;
    // Nobody configured this hostname: the catch-all answers, no tenant sees it.
    let nf = (StatusCode::NOT_FOUND, None);
    eventually_answers(&mut envoy, dp_addr, "unknown.example", "/", nf).await;
    // A valid backend without ready endpoints: 503.
    let unavailable = (StatusCode::SERVICE_UNAVAILABLE, None);
    eventually_answers(&mut envoy, dp_addr, "empty.a.example", "/", unavailable).await;
    // An unresolved backend: 500.
    let ise = (StatusCode::INTERNAL_SERVER_ERROR, None);
    eventually_answers(&mut envoy, dp_addr, "broken.a.example", "/", ise).await;
    // Half the weight on an unresolved backend: that half gets 500, the other half the backend.
    eventually_answers(&mut envoy, dp_addr, "split.a.example", "/", ise).await;
    eventually_answers(
        &mut envoy,
        dp_addr,
        "split.a.example",
        "/",
        (ok, Some("blue")),
    )
    .await;

    // A route change is followed: swap the backends.
    hub.snapshots
        .send(Arc::new(compile(&intent(green, blue), &dp).snapshot))
        .unwrap();
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/blue",
        (ok, Some("green")),
    )
    .await;
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/",
        (ok, Some("blue")),
    )
    .await;
    // A hostname removed from the intent falls back to the catch-all.
    let mut fewer = intent(green, blue);
    std::sync::Arc::make_mut(fewer.get_mut(&cluster_key()).unwrap())
        .http_routes
        .remove(&("default".to_string(), "empty".to_string()));
    hub.snapshots
        .send(Arc::new(compile(&fewer, &dp).snapshot))
        .unwrap();
    eventually_answers(&mut envoy, dp_addr, "empty.a.example", "/", nf).await;
    // The other hostnames keep serving.
    eventually_answers(
        &mut envoy,
        dp_addr,
        "app.a.example",
        "/",
        (ok, Some("blue")),
    )
    .await;
    eventually_answers(&mut envoy, dp_addr, "broken.a.example", "/", ise).await;

    assert_eq!(
        *hub.health.borrow(),
        XdsHealth::default(),
        "no NACK expected"
    );
}

async fn nack_is_reported_on_the_gateway_behind_it(api: AdsApi) {
    let backend_addr = backend("blue").await;
    let good: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Something else holds this port: Envoy cannot bind it and rejects the listener.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap();
    let dp = DataPlane {
        address: "127.0.0.1".parse().unwrap(),
        ai_gateways: Vec::new(),
        listeners: vec![
            DataPlaneListener {
                port: 80,
                bind: good,
                protocol: Default::default(),
            },
            DataPlaneListener {
                port: 8080,
                bind: taken,
                protocol: Default::default(),
            },
        ],
    };
    let intent = fleet(
        vec![gateway("gw", 80), gateway("gw-8080", 8080)],
        vec![http_route(
            "app",
            "gw",
            "app.a.example",
            vec![rule("/", backend_ref("b", vec![backend_addr]))],
        )],
    );
    let hub = start_hub(compile(&intent, &dp).snapshot).await;
    let mut envoy = Envoy::start_over("envoy-2", hub.addr, api);

    let mut health = hub.health.clone();
    let nack = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(n) = health.borrow_and_update().nacks.get(LISTENER_TYPE) {
                return n.clone();
            }
            health.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no LDS NACK from Envoy; log:\n{}", envoy.log()));
    assert_eq!(nack.node, "envoy-2");
    assert!(nack.message.contains("port/8080"), "{}", nack.message);
    let blamed: Vec<String> = nack.sources.iter().map(|s| s.object.name.clone()).collect();
    assert_eq!(blamed, vec!["gw-8080".to_string()], "{}", nack.message);

    // Envoy keeps serving what it accepted.
    let ok = (StatusCode::OK, Some("blue"));
    eventually_answers(&mut envoy, good, "app.a.example", "/", ok).await;
    drop(squatter);
}

/// An HTTP/1 stand-in for the AI gateway on 127.0.0.1: answers every request with the values of
/// the identity headers it received (`tenant=<all values>;route=<all values>`), so a test sees
/// exactly what Envoy sent.
async fn identity_echo() -> SocketAddr {
    use fleetgate_hub::model::ai::{ROUTE_HEADER, TENANT_HEADER};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let all = |name: &str| {
                        req.headers()
                            .get_all(name)
                            .iter()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let body = format!("tenant={};route={}", all(TENANT_HEADER), all(ROUTE_HEADER));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// GET with extra request headers (repeated names are sent as several header lines).
async fn get_with(
    c: &HttpClient,
    dp: SocketAddr,
    host: &str,
    headers: &[(&str, &str)],
) -> Option<(StatusCode, String)> {
    let mut req = Request::get(format!("http://{dp}/v1/chat/completions")).header("host", host);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        c.request(req.body(Empty::new()).unwrap()),
    )
    .await
    .ok()?
    .ok()?;
    let status = resp.status();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Issue 11: a route to an AgentgatewayBackend goes to the AI gateway with the tenant and route
/// Envoy sets, whatever the client sends: its own `x-fleetgate-*` copies (one, several, naming
/// another tenant) never reach the gateway. Two backends of one rule share the same AI gateway
/// cluster with different route headers (Envoy accepts the repeated cluster name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_sends_ai_routes_to_the_ai_gateway_with_only_its_own_identity_headers() {
    use fleetgate_hub::model::BackendKind;
    use fleetgate_hub::model::ai::{
        AiAuth, AiBackend, AiProvider, AiTarget, AiUpstream, ProviderKey,
    };
    let gateway_addr = identity_echo().await;
    let dp_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dp = DataPlane {
        address: "127.0.0.1".parse().unwrap(),
        ai_gateways: vec![gateway_addr],
        listeners: vec![DataPlaneListener {
            port: 80,
            bind: dp_addr,
            protocol: Default::default(),
        }],
    };
    let ai_ref = |name: &str, weight: u32| Backend {
        kind: BackendKind::AiBackend,
        weight,
        ..backend_ref(name, vec![])
    };
    let ai_backend = |name: &str| AiBackend {
        model_aliases: Default::default(),
        meta: meta(name),
        target: Ok(AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port: 8080,
            path: None,
            path_prefix: None,
            // Never dialled by Envoy: the AI gateway does.
            upstream: AiUpstream::Cluster(vec!["127.0.1.10:8080".parse().unwrap()]),
            auth: AiAuth::Key(ProviderKey("sk-never-in-envoy".into())),
        }
        .into()),
    };
    let mut fi = fleet(
        vec![gateway("gw", 80)],
        vec![
            http_route(
                "chat",
                "gw",
                "chat.a.example",
                vec![rule("/", ai_ref("local-llm", 1))],
            ),
            http_route(
                "split",
                "gw",
                "split.a.example",
                vec![HttpRouteRule {
                    backends: thin_vec![ai_ref("local-llm", 1), ai_ref("other-llm", 1)],
                    ..rule("/", ai_ref("local-llm", 1))
                }],
            ),
        ],
    );
    let ci = std::sync::Arc::make_mut(fi.get_mut(&cluster_key()).unwrap());
    for name in ["local-llm", "other-llm"] {
        ci.ai_backends
            .insert(("default".into(), name.into()), ai_backend(name));
    }
    let compiled = compile(&fi, &dp);
    let hub = start_hub(compiled.snapshot).await;
    let mut envoy = Envoy::start("envoy-ai", hub.addr);
    envoy.wait_ready().await;

    let want = (StatusCode::OK, Some("tenant=a;route=c1/default/local-llm"));
    eventually_answers(&mut envoy, dp_addr, "chat.a.example", "/v1/models", want).await;
    let c = client();
    for forged in [
        vec![("x-fleetgate-tenant", "b")],
        vec![("x-fleetgate-route", "c1/default/b-only")],
        vec![
            ("x-fleetgate-tenant", "b"),
            ("x-fleetgate-tenant", "c"),
            ("x-fleetgate-route", "x/y/z"),
            ("x-fleetgate-route", "u/v/w"),
        ],
        vec![("X-Fleetgate-Tenant", "b"), ("X-FLEETGATE-ROUTE", "x/y/z")],
    ] {
        let got = get_with(&c, dp_addr, "chat.a.example", &forged).await;
        assert_eq!(
            got,
            Some((
                StatusCode::OK,
                "tenant=a;route=c1/default/local-llm".to_string()
            )),
            "{forged:?}"
        );
    }
    // Both route ids of a split rule are served through the one AI gateway cluster.
    let mut seen = std::collections::BTreeSet::new();
    let start = Instant::now();
    while seen.len() < 2 && start.elapsed() < DEADLINE {
        if let Some((StatusCode::OK, body)) = get_with(
            &c,
            dp_addr,
            "split.a.example",
            &[("x-fleetgate-route", "forged")],
        )
        .await
        {
            seen.insert(body);
        }
    }
    assert_eq!(
        seen,
        [
            "tenant=a;route=c1/default/local-llm".to_string(),
            "tenant=a;route=c1/default/other-llm".to_string()
        ]
        .into(),
        "Envoy log:\n{}",
        envoy.log()
    );
    assert_eq!(
        *hub.health.borrow(),
        XdsHealth::default(),
        "no NACK expected"
    );
}

/// An HTTP/1 backend on 127.0.0.1 that answers `<name>` and, when the request carried
/// `header`, `<name>;<header>=<value>`.
async fn backend_showing(name: &'static str, header: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let body = match req.headers().get(header) {
                        Some(v) => format!("{name};{header}={}", v.to_str().unwrap_or("?")),
                        None => name.to_string(),
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Requests to `dp` for `same.a.example` claiming ports of their own in the scope key's port
/// header reach backend `name` (a claim never picks another port's routes), which sees the
/// claim if `passes` (port 80, keyed by Host alone, leaves the header to the client) and not
/// otherwise (the listener replaced it and its table removed it).
async fn assert_claimed_ports_reach(dp: SocketAddr, name: &str, passes: bool) {
    use fleetgate_hub::xds::scoped::PORT_HEADER;
    let c = client();
    for claimed in ["80", "8080", "1"] {
        let got = get_with(&c, dp, "same.a.example", &[(PORT_HEADER, claimed)]).await;
        let want = if passes {
            format!("{name};{PORT_HEADER}={claimed}")
        } else {
            name.to_string()
        };
        assert_eq!(got, Some((StatusCode::OK, want)), "{dp} claiming {claimed}");
    }
}

/// Scoped route tables (`hub/xds/src/scoped.rs`): a port whose hostnames are all exact gets its
/// tenants' tables through scopes keyed by Host (port 80) or by Host and port (other ports).
/// The same hostname on two ports goes to each port's own routes; a client's own port header
/// changes nothing, and never reaches a backend from a port whose key has the port; a
/// wildcard on a port turns that port back into one table with Envoy's host precedence (exact
/// before wildcard), the other port's key unchanged, and removing it scopes the port again.
async fn scoped_ports_keep_each_ports_routes_and_wildcards_switch_to_one_table_over(api: AdsApi) {
    use fleetgate_hub::xds::scoped::PORT_HEADER;
    let blue = backend_showing("blue", PORT_HEADER).await;
    let green = backend_showing("green", PORT_HEADER).await;
    let wild = backend_showing("wild", PORT_HEADER).await;
    let dp80: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dp8080: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dp = DataPlane {
        address: "127.0.0.1".parse().unwrap(),
        ai_gateways: Vec::new(),
        listeners: vec![
            DataPlaneListener {
                port: 80,
                bind: dp80,
                protocol: Default::default(),
            },
            DataPlaneListener {
                port: 8080,
                bind: dp8080,
                protocol: Default::default(),
            },
        ],
    };
    let intent = |with_wildcard: bool| {
        let mut routes = vec![
            http_route(
                "on80",
                "gw80",
                "same.a.example",
                vec![rule("/", backend_ref("blue", vec![blue]))],
            ),
            http_route(
                "on8080",
                "gw8080",
                "same.a.example",
                vec![rule("/", backend_ref("green", vec![green]))],
            ),
        ];
        if with_wildcard {
            routes.push(http_route(
                "wild",
                "gw80",
                "*.a.example",
                vec![rule("/", backend_ref("wild", vec![wild]))],
            ));
        }
        fleet(vec![gateway("gw80", 80), gateway("gw8080", 8080)], routes)
    };
    let scoped_ports = |s: &Snapshot| -> Vec<String> {
        s.listeners
            .iter()
            .filter(|l| fleetgate_hub::xds::scoped::is_scoped(l))
            .map(|l| l.name.clone())
            .collect()
    };
    let first = compile(&intent(false), &dp).snapshot;
    assert_eq!(scoped_ports(&first), vec!["port/80", "port/8080"]);
    let hub = start_hub(first).await;
    let mut envoy = Envoy::start_over("envoy-scoped", hub.addr, api);
    envoy.wait_ready().await;

    let ok = StatusCode::OK;
    let nf = (StatusCode::NOT_FOUND, None);
    eventually_answers(&mut envoy, dp80, "same.a.example", "/", (ok, Some("blue"))).await;
    eventually_answers(
        &mut envoy,
        dp8080,
        "same.a.example",
        "/",
        (ok, Some("green")),
    )
    .await;
    eventually_answers(
        &mut envoy,
        dp8080,
        "same.a.example:8080",
        "/",
        (ok, Some("green")),
    )
    .await;
    eventually_answers(&mut envoy, dp80, "other.a.example", "/", nf).await;
    // Known difference of a scoped port: scope keys compare bytes, so other letter case is
    // not found (one table, below, ignores the case).
    eventually_answers(&mut envoy, dp80, "SAME.a.example", "/", nf).await;
    // The client's own port header: on port 80 (keyed by Host alone) a header like any
    // other; on port 8080 replaced before routing and removed before forwarding.
    assert_claimed_ports_reach(dp80, "blue", true).await;
    assert_claimed_ports_reach(dp8080, "green", false).await;

    // A wildcard on port 80: one table there, exact hostname first, the wildcard for the rest.
    let second = compile(&intent(true), &dp).snapshot;
    assert_eq!(scoped_ports(&second), vec!["port/8080"]);
    hub.snapshots.send(Arc::new(second)).unwrap();
    eventually_answers(&mut envoy, dp80, "other.a.example", "/", (ok, Some("wild"))).await;
    eventually_answers(&mut envoy, dp80, "x.y.a.example", "/", (ok, Some("wild"))).await;
    eventually_answers(&mut envoy, dp80, "same.a.example", "/", (ok, Some("blue"))).await;
    eventually_answers(&mut envoy, dp80, "SAME.a.example", "/", (ok, Some("blue"))).await;
    eventually_answers(
        &mut envoy,
        dp8080,
        "same.a.example",
        "/",
        (ok, Some("green")),
    )
    .await;
    eventually_answers(&mut envoy, dp8080, "other.a.example", "/", nf).await;
    assert_claimed_ports_reach(dp8080, "green", false).await;

    // Removed again: port 80 is scoped again and the wildcard's hosts get 404.
    hub.snapshots
        .send(Arc::new(compile(&intent(false), &dp).snapshot))
        .unwrap();
    eventually_answers(&mut envoy, dp80, "other.a.example", "/", nf).await;
    eventually_answers(&mut envoy, dp80, "same.a.example", "/", (ok, Some("blue"))).await;
    eventually_answers(
        &mut envoy,
        dp8080,
        "same.a.example",
        "/",
        (ok, Some("green")),
    )
    .await;
    assert_claimed_ports_reach(dp80, "blue", true).await;
    assert_claimed_ports_reach(dp8080, "green", false).await;

    assert_eq!(
        *hub.health.borrow(),
        XdsHealth::default(),
        "no NACK expected"
    );
}

/// Each test body above as two tests: over State-of-the-World ADS (`api_type: GRPC`, the name
/// as given) and over incremental ADS (`api_type: DELTA_GRPC`, `delta_` + the name), where only
/// what changed is sent and what went is named in `removed_resources`.
macro_rules! over_both_ads_variants {
    ($($sotw:ident, $delta:ident: $body:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sotw() {
            $body(AdsApi::Sotw).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $delta() {
            $body(AdsApi::Delta).await
        }
    )*};
}

over_both_ads_variants! {
    envoy_routes_by_host_and_path_and_follows_changes,
    delta_envoy_routes_by_host_and_path_and_follows_changes:
        routes_by_host_and_path_and_follows_changes;
    envoy_nack_is_reported_on_the_gateway_behind_it,
    delta_envoy_nack_is_reported_on_the_gateway_behind_it:
        nack_is_reported_on_the_gateway_behind_it;
    scoped_ports_keep_each_ports_routes_and_wildcards_switch_to_one_table,
    delta_scoped_ports_keep_each_ports_routes_and_wildcards_switch_to_one_table:
        scoped_ports_keep_each_ports_routes_and_wildcards_switch_to_one_table_over;
}
