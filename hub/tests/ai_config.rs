//! The hub's AI config stream against the real AI gateway, in process over loopback gRPC: the
//! hub's data-plane server (`run::serve_data_plane`, ADS and `AiGatewayConfig` on one port) fed
//! a hand-built snapshot, and two `fleetgate-ai-gateway` replicas following it with
//! `HubSource`, serving real HTTP to loopback upstreams that say which of them answered.
//!
//! Proves: both replicas get the full state on connect and the same versions; an incremental
//! upsert and a removal arrive (an unchanged tenant keeps its version); a tenant version the
//! gateways refuse leaves them serving the previous one while the hub records the refusal
//! against the AgentgatewayBackend it names; a restarted hub (new versions, other content)
//! gives the reconnecting gateways a full state again, and they served their last
//! configuration while it was down. Requests go round-robin over a backend's endpoints with
//! the backend's key, or the client's own key with passthrough.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fleetgate_ai_gateway::config::Config as GatewayConfig;
use fleetgate_ai_gateway::identify::Identity;
use fleetgate_ai_gateway::route::RouteTable;
use fleetgate_ai_gateway::source::grpc::HubSource;
use fleetgate_hub::ai_config::{self, AiGatewayHealth};
use fleetgate_hub::compile::Snapshot;
use fleetgate_hub::model::ai::{
    AiAuth, AiProvider, AiRoute, AiRouteProvider, AiRouteTarget, AiSnapshot, AiTenant, ProviderKey,
};
use fleetgate_hub::model::snapshot::SourceObject;
use fleetgate_hub::model::{ClusterKey, Kind, ObjectKey};
use fleetgate_hub::xds::XdsHealth;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

const DEADLINE: Duration = Duration::from_secs(15);
const KEY: &str = "sk-tenant-a-SECRET";

// ---- upstreams and requests ------------------------------------------------------------------

/// An upstream answering every request with its name and the Authorization it got.
async fn upstream(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let auth: Vec<String> = req
                            .headers()
                            .get_all("authorization")
                            .iter()
                            .map(|v| v.to_str().unwrap_or("?").to_string())
                            .collect();
                        let host = req
                            .headers()
                            .get("host")
                            .map(|h| h.to_str().unwrap_or("?").to_string());
                        let body = serde_json::json!({
                            "object": "list", "data": [], "answered_by": name,
                            "authorization": auth, "host": host,
                        });
                        let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
                        r.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, Infallible>(r)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// GET /v1/models through a gateway as Envoy would send it, with the client's own key.
async fn models(gw: SocketAddr, tenant: &str, route: &str) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let req = hyper::Request::get(format!("http://{gw}/v1/models"))
        .header("authorization", "Bearer sk-client-own")
        .header("x-fleetgate-tenant", tenant)
        .header("x-fleetgate-route", route)
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

// ---- the snapshot's AI part, by hand ---------------------------------------------------------

fn source(tenant: &str, name: &str) -> SourceObject {
    SourceObject {
        cluster: ClusterKey {
            tenant: tenant.into(),
            cluster: "c1".into(),
        },
        object: ObjectKey {
            // The model has no AgentgatewayBackend kind yet; the stream never reads the kind.
            kind: Kind::HttpRoute,
            namespace: "llm".into(),
            name: name.into(),
        },
    }
}

fn ai_route(
    tenant: &str,
    name: &str,
    port: u16,
    endpoints: &[SocketAddr],
    auth: AiAuth,
) -> AiRoute {
    AiRoute {
        model_aliases: Default::default(),
        target: AiRouteTarget::Provider(AiRouteProvider {
            tls: false,
            name: String::new(),
            provider: AiProvider::OpenAi { model: None },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port,
            path: None,
            path_prefix: None,
            endpoints: endpoints.to_vec(),
            auth,
        }),
        source: source(tenant, name),
    }
}

fn snapshot(tenants: Vec<(&str, Vec<(&str, AiRoute)>)>) -> Snapshot {
    let tenants = tenants
        .into_iter()
        .map(|(t, routes)| {
            let routes = routes
                .into_iter()
                .map(|(name, r)| (format!("c1/llm/{name}"), r))
                .collect();
            (
                t.to_string(),
                AiTenant {
                    routes,
                    ..Default::default()
                },
            )
        })
        .collect();
    Snapshot {
        ai: AiSnapshot { tenants },
        ..Default::default()
    }
}

// ---- the hub's data-plane server -------------------------------------------------------------

struct Hub {
    snapshots: watch::Sender<Arc<Snapshot>>,
    health: watch::Receiver<AiGatewayHealth>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    _dir: tempfile::TempDir,
}

impl Hub {
    /// The hub's data-plane server on `addr`, serving `first`, as `run` wires it.
    async fn start(addr: SocketAddr, first: Snapshot) -> Hub {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (snapshots, snapshot_rx) = watch::channel(Arc::new(first));
        // A store of its own for the MCP session secrets (`tests/mcp_session_keys.rs` tests them).
        let dir = tempfile::tempdir().unwrap();
        let store = fleetgate_hub::store::Store::open(&dir.path().join("hub.redb")).unwrap();
        let (published, _publisher) = ai_config::start_publisher(
            snapshot_rx.clone(),
            ai_config::SessionKeys {
                store: Arc::new(store),
                rotation: fleetgate_hub::session_secret::DEFAULT_ROTATION,
            },
        )
        .unwrap();
        let (ai_health, health) = watch::channel(AiGatewayHealth::default());
        let (xds_health, _) = watch::channel(XdsHealth::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fleetgate_hub::run::serve_data_plane(
            listener,
            snapshot_rx,
            xds_health,
            published,
            ai_health,
            async move {
                let _ = stopped.await;
            },
        ));
        Hub {
            snapshots,
            health,
            stop,
            task,
            _dir: dir,
        }
    }

    fn publish(&self, s: Snapshot) {
        self.snapshots.send_replace(Arc::new(s));
    }

    /// Stops as `run` does: the snapshot writer goes (the streams end), then the server.
    async fn stop(self) {
        drop(self.snapshots);
        let _ = self.stop.send(());
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the data-plane server stops once its streams end")
            .unwrap()
            .unwrap();
    }

    /// Waits until every one of `n` gateway streams satisfies `f`, and returns the health.
    async fn wait(
        &self,
        n: usize,
        what: &str,
        f: impl Fn(&ai_config::GatewayView) -> bool,
    ) -> AiGatewayHealth {
        let mut rx = self.health.clone();
        let got = tokio::time::timeout(
            DEADLINE,
            rx.wait_for(|h| h.streams.len() == n && h.streams.values().all(&f)),
        )
        .await;
        match got {
            Ok(h) => h.unwrap().clone(),
            Err(_) => panic!("hub: {what}: {:#?}", *self.health.borrow()),
        }
    }
}

/// A gateway replica following the hub.
async fn gateway(hub: SocketAddr, id: &str) -> fleetgate_ai_gateway::Running {
    let source = HubSource::new(&format!("http://{hub}"), id, Duration::from_millis(200)).unwrap();
    fleetgate_ai_gateway::start(
        fleetgate_ai_gateway::Settings::new("127.0.0.1:0".parse().unwrap()),
        GatewayConfig::default(),
        Box::new(source),
    )
    .await
    .unwrap()
}

/// The tenants a gateway serves, with versions.
fn served(table: &RouteTable, tenants: &[&str]) -> Vec<(String, Option<u64>)> {
    tenants
        .iter()
        .map(|t| (t.to_string(), table.tenant(t).map(|r| r.version)))
        .collect()
}

async fn wait_gateway(
    gw: &fleetgate_ai_gateway::Running,
    what: &str,
    f: impl Fn(&RouteTable) -> bool,
) -> Arc<RouteTable> {
    let mut rx = gw.routes.clone();
    match tokio::time::timeout(DEADLINE, rx.wait_for(|t| f(t))).await {
        Ok(t) => t.unwrap().clone(),
        Err(_) => panic!("gateway: {what}"),
    }
}

fn port_of(table: &RouteTable, tenant: &str, route: &str) -> Option<u16> {
    let id = Identity {
        tenant: tenant.into(),
        route: route.into(),
    };
    let (_, r) = table.lookup(&id).ok()?;
    match &r.backend.kind {
        fleetgate_ai_gateway::config::BackendKind::Ai(ai) => Some(ai.port),
        // The hub sends single providers only.
        fleetgate_ai_gateway::config::BackendKind::AiGroups(_)
        | fleetgate_ai_gateway::config::BackendKind::Mcp(_) => None,
        fleetgate_ai_gateway::config::BackendKind::A2a(a) => Some(a.port),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_programs_every_gateway_replica_per_tenant() {
    let (one, two) = (upstream("one").await, upstream("two").await);
    let key = || AiAuth::Key(ProviderKey(KEY.into()));
    let a_llm = ai_route("a", "local-llm", 8080, &[one, two], key());
    let b_chat = ai_route("b", "chat", 8080, &[two], AiAuth::Passthrough);
    let s1 = snapshot(vec![
        ("a", vec![("local-llm", a_llm.clone())]),
        ("b", vec![("chat", b_chat.clone())]),
    ]);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hub = Hub::start(addr, s1).await;
    let gws = [gateway(addr, "gw-0").await, gateway(addr, "gw-1").await];

    // Full state on connect: both replicas serve a and b, at the same versions, and the hub
    // knows it.
    let has_ab = |t: &RouteTable| t.tenant("a").is_some() && t.tenant("b").is_some();
    let t0 = wait_gateway(&gws[0], "full state (a, b)", has_ab).await;
    let t1 = wait_gateway(&gws[1], "full state (a, b)", has_ab).await;
    let v1 = served(&t0, &["a", "b"]);
    assert_eq!(
        v1,
        served(&t1, &["a", "b"]),
        "every replica gets the same versions"
    );
    let (va, vb) = (v1[0].1.unwrap(), v1[1].1.unwrap());
    let health = hub
        .wait(2, "both serve a and b", |g| {
            g.serving == [("a".to_string(), va), ("b".to_string(), vb)].into()
        })
        .await;
    let mut ids: Vec<&str> = health
        .streams
        .values()
        .map(|g| g.gateway_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["gw-0", "gw-1"]);

    // Real HTTP through a replica: round-robin over the endpoints with the backend's key and
    // host; passthrough forwards the client's key.
    let mut answered = Vec::new();
    for _ in 0..4 {
        let (status, body) = models(gws[1].addr, "a", "c1/llm/local-llm").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["authorization"],
            serde_json::json!([format!("Bearer {KEY}")])
        );
        assert_eq!(body["host"], "llama-cpp.llm.svc.cluster.local:8080");
        answered.push(body["answered_by"].as_str().unwrap().to_string());
    }
    assert_eq!(answered, ["one", "two", "one", "two"]);
    let (status, body) = models(gws[0].addr, "b", "c1/llm/chat").await;
    assert_eq!(
        (status, &body["answered_by"]),
        (200, &serde_json::json!("two")),
        "{body}"
    );
    assert_eq!(
        body["authorization"],
        serde_json::json!(["Bearer sk-client-own"])
    );
    // Tenant isolation: b's route is not a's.
    assert_eq!(models(gws[0].addr, "a", "c1/llm/chat").await.0, 404);

    // An incremental upsert: a gains a route; b is untouched and keeps its version.
    let a_second = ai_route("a", "second", 9000, &[one], AiAuth::None);
    hub.publish(snapshot(vec![
        (
            "a",
            vec![("local-llm", a_llm.clone()), ("second", a_second.clone())],
        ),
        ("b", vec![("chat", b_chat.clone())]),
    ]));
    for gw in &gws {
        let t = wait_gateway(gw, "a's second route", |t| {
            port_of(t, "a", "c1/llm/second") == Some(9000)
        })
        .await;
        let now = served(&t, &["a", "b"]);
        assert!(now[0].1.unwrap() > va, "{now:?}");
        assert_eq!(now[1].1, Some(vb), "b unchanged, same version");
    }
    let (status, body) = models(gws[0].addr, "a", "c1/llm/second").await;
    assert_eq!(
        (status, &body["answered_by"]),
        (200, &serde_json::json!("one")),
        "{body}"
    );

    // A removal.
    hub.publish(snapshot(vec![(
        "a",
        vec![("local-llm", a_llm.clone()), ("second", a_second.clone())],
    )]));
    for gw in &gws {
        wait_gateway(gw, "b removed", |t| t.tenant("b").is_none()).await;
    }
    assert_eq!(models(gws[0].addr, "b", "c1/llm/chat").await.0, 404);
    let va2 = served(&gws[0].routes.borrow(), &["a"])[0].1.unwrap();
    hub.wait(2, "b no longer served", |g| {
        g.serving == [("a".to_string(), va2)].into()
    })
    .await;

    // A version the gateways refuse (port 0 on one route): they keep serving the previous
    // version, and the hub records the refusal against that route's AgentgatewayBackend.
    let mut bad = a_second.clone();
    if let AiRouteTarget::Provider(p) = &mut bad.target {
        p.port = 0;
    }
    hub.publish(snapshot(vec![(
        "a",
        vec![("local-llm", a_llm.clone()), ("second", bad)],
    )]));
    let health = hub
        .wait(2, "a's new version refused", |g| {
            g.refused.contains_key("a")
        })
        .await;
    for g in health.streams.values() {
        let refusal = &g.refused["a"];
        assert!(refusal.version > va2);
        assert!(
            refusal
                .reason
                .contains("tenants.a.routes.c1/llm/second.ai.provider.port: 0 is not a port"),
            "{}",
            refusal.reason
        );
        assert_eq!(refusal.sources, [source("a", "second")].into());
        assert_eq!(g.serving["a"], va2, "the previous version is served");
        assert!(!refusal.reason.contains(KEY));
    }
    for gw in &gws {
        let t = gw.routes.borrow().clone();
        assert_eq!(served(&t, &["a"])[0].1, Some(va2));
        assert_eq!(port_of(&t, "a", "c1/llm/second"), Some(9000));
    }
    assert_eq!(models(gws[0].addr, "a", "c1/llm/local-llm").await.0, 200);

    // The hub restarts with other content (b back, a gone; new versions). The gateways serve
    // their last configuration while it is down, then reconnect and get a full state: a is
    // dropped although the new hub never said so incrementally.
    hub.stop().await;
    assert_eq!(models(gws[0].addr, "a", "c1/llm/local-llm").await.0, 200);
    let hub = Hub::start(addr, snapshot(vec![("b", vec![("chat", b_chat.clone())])])).await;
    for gw in &gws {
        let t = wait_gateway(gw, "full state after the restart", |t| {
            t.tenant("a").is_none() && t.tenant("b").is_some()
        })
        .await;
        let vb2 = served(&t, &["b"])[0].1.unwrap();
        assert!(
            vb2 > va2 && vb2 > vb,
            "versions keep increasing across restarts"
        );
    }
    let health = hub
        .wait(2, "both reconnected serving b", |g| {
            g.serving.keys().eq(["b"].iter()) && g.refused.is_empty()
        })
        .await;
    assert_eq!(health.streams.len(), 2);
    let (status, body) = models(gws[1].addr, "b", "c1/llm/chat").await;
    assert_eq!(
        (status, &body["answered_by"]),
        (200, &serde_json::json!("two")),
        "{body}"
    );
    assert_eq!(models(gws[1].addr, "a", "c1/llm/local-llm").await.0, 404);

    for gw in gws {
        gw.shutdown().await;
    }
    hub.stop().await;
}
