//! The data plane as an operator sees it, with REAL Envoys (FLEETGATE_ENVOY, installed by
//! `e2e/setup.sh`) on the hub's ADS port: every connected Envoy with the versions it ACKed and
//! its last NACK in `GET /api/v1/data-plane` and on the dashboard's overview; the ADS streams'
//! ACK and NACK counters per xDS type, push times and the time from an agent's Update to every
//! Envoy's ACK in `/metrics`.

use std::time::{Duration, Instant};

use fleetgate_hub::admin::operator_token::{self, Role};
use fleetgate_hub::enroll::token::TokenKey;

mod support;
use support::envoy::Envoy;
use support::{TWO_TENANTS, TestHub, admin_port, backend, east_with_a_refused_route, http_route};

const DEADLINE: Duration = Duration::from_secs(30);

/// A viewer's operator token for `hub`.
fn viewer(hub: &TestHub) -> String {
    let key = operator_token::operator_key(&TokenKey::load_or_create(&hub.pki()).unwrap());
    operator_token::mint(&key, "watcher", Role::Viewer, u64::MAX / 2).unwrap()
}

/// `GET /api/v1/data-plane` as JSON.
async fn data_plane(port: u16, token: &str) -> serde_json::Value {
    let a = admin_port(
        port,
        "GET",
        "/api/v1/data-plane",
        &[format!("authorization: Bearer {token}")],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str(&a.body).unwrap()
}

/// The value of the sample `name` (a whole series name with its labels) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(port: u16) -> String {
    let a = admin_port(port, "GET", "/metrics", &[], "").await;
    assert_eq!(a.status, 200);
    a.body
}

/// Polls `f` until it gives `Some`, or panics with `what` after [`DEADLINE`].
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Envoy named `node` in a data-plane answer.
fn envoy<'a>(dp: &'a serde_json::Value, node: &str) -> Option<&'a serde_json::Value> {
    dp["envoys"].as_array()?.iter().find(|e| e["node"] == node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_envoys_their_acks_and_nacks_and_update_to_ack_are_shown() {
    let port = support::free_port();
    let mut hub = TestHub::start_with(
        &format!("adminListen: 127.0.0.1:{port}"),
        TWO_TENANTS,
        false,
    )
    .await;
    let token = viewer(&hub);
    let mut agent = east_with_a_refused_route(&hub).await;

    // Every served type is counted from the start, at 0.
    let text = metrics(port).await;
    for t in [
        "envoy.config.cluster.v3.Cluster",
        "envoy.config.listener.v3.Listener",
    ] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"fleetgate_hub_xds_acks_total{{type="{t}"}}"#)
            ),
            Some(0.0),
            "{text}"
        );
    }

    // 1. An Envoy that cannot bind the data-plane port (something else holds it) rejects the
    // listener: its NACK is counted and shown with Envoy's error.
    let squatter = std::net::TcpListener::bind(hub.data_plane_bind()).unwrap();
    let refusing = Envoy::start("envoy-refusing", hub.xds_addr());
    let nack = eventually("the NACK on the data-plane view", || async {
        let dp = data_plane(port, &token).await;
        let nack = envoy(&dp, "envoy-refusing")?.get("lastNack")?.clone();
        (!nack.is_null()).then_some(nack)
    })
    .await;
    assert_eq!(nack["type"], "envoy.config.listener.v3.Listener", "{nack}");
    assert!(
        nack["message"].as_str().unwrap().contains("port/80"),
        "{nack}"
    );
    let text = metrics(port).await;
    let nacks = sample(
        &text,
        r#"fleetgate_hub_xds_nacks_total{type="envoy.config.listener.v3.Listener"}"#,
    );
    assert!(nacks >= Some(1.0), "{text}");
    // The dashboard's overview lists it with its error.
    let page = admin_port(
        port,
        "GET",
        "/ui/fragments/overview",
        &[format!("cookie: fleetgate_session={token}")],
        "",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"envoys\""), "{}", page.body);
    assert!(
        page.body.contains("data-envoy=\"envoy-refusing\""),
        "{}",
        page.body
    );
    // It goes away: no longer shown.
    drop(refusing);
    drop(squatter);
    eventually("the refusing Envoy to leave the view", || async {
        envoy(&data_plane(port, &token).await, "envoy-refusing")
            .is_none()
            .then_some(())
    })
    .await;

    // 2. An Envoy that takes the configuration: ACKs per type, the version of each shown.
    let mut good = Envoy::start("envoy-good", hub.xds_addr());
    good.wait_ready().await;
    let shown = eventually("envoy-good's ACKs on the data-plane view", || async {
        let dp = data_plane(port, &token).await;
        let e = envoy(&dp, "envoy-good")?.clone();
        let acked = e["acked"].as_object()?;
        (acked.contains_key("envoy.config.cluster.v3.Cluster")
            && acked.contains_key("envoy.config.listener.v3.Listener"))
        .then_some(e)
    })
    .await;
    assert!(shown["connectedSince"].as_i64().unwrap() > 1_700_000_000);
    assert!(shown["lastNack"].is_null(), "{shown}");
    assert!(
        shown["lastAckAt"].as_i64().unwrap() >= shown["connectedSince"].as_i64().unwrap(),
        "{shown}"
    );

    // 3. The agent changes its intent: the Update's time to every connected Envoy's ACK is
    // observed (both Envoys left before it was published are not waited for).
    let before = sample(
        &metrics(port).await,
        "fleetgate_hub_update_to_ack_seconds_count",
    );
    agent
        .send(
            2,
            false,
            vec![http_route(
                "second",
                "web",
                "second.a.example",
                backend("second", 8080, "10.1.0.6", 30081),
            )],
        )
        .await;
    agent.verdict().await.unwrap();
    let text = eventually("an update-to-ACK observation", || async {
        let text = metrics(port).await;
        (sample(&text, "fleetgate_hub_update_to_ack_seconds_count") > before).then_some(text)
    })
    .await;
    for series in [
        r#"fleetgate_hub_xds_acks_total{type="envoy.config.cluster.v3.Cluster"}"#,
        r#"fleetgate_hub_xds_acks_total{type="envoy.config.listener.v3.Listener"}"#,
    ] {
        assert!(sample(&text, series) > Some(0.0), "{series}:\n{text}");
    }
    assert!(
        sample(&text, "fleetgate_hub_xds_push_duration_seconds_count") > Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "fleetgate_hub_apply_duration_seconds_count") >= Some(2.0),
        "{text}"
    );
    // Bounded labels: no node id, hostname or object name.
    for leak in ["envoy-good", "envoy-refusing", "a.example", "\"second\""] {
        assert!(
            !text.contains(leak),
            "{leak} leaked into the metrics:\n{text}"
        );
    }
    drop(good);
    hub.stop().await;
}

/// An HTTP/1 backend on 127.0.3.7 (127.0.0.1 is the hub's and the data plane's own, which the
/// hub refuses as an endpoint) answering 500 on `/fail` and 200 elsewhere.
async fn backend_failing_on_fail() -> std::net::SocketAddr {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.3.7:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let status = if req.uri().path() == "/fail" {
                        500
                    } else {
                        200
                    };
                    let mut r = hyper::Response::new(Full::new(bytes::Bytes::from("app")));
                    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// tenant-a's cluster may name loopback endpoints (the test's backend).
const LOOPBACK_TENANT: &str = r#"
- name: tenant-a
  hostnames: ["*.a.example"]
  clusters: [{name: east, endpointCidrs: [127.0.0.0/8], allowSpecialAddresses: true}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_requests_errors_and_latency_come_from_envoys_stats_sink() {
    use support::envoy::{client, get};
    let port = support::free_port();
    let mut hub = TestHub::start_with(
        &format!("adminListen: 127.0.0.1:{port}"),
        LOOPBACK_TENANT,
        false,
    )
    .await;
    let token = viewer(&hub);
    let app = backend_failing_on_fail().await;
    let id = hub.issue("tenant-a", "east");
    let mut agent = support::SyncStream::open(
        support::mtls_channel(hub.agent_addr, &id).await.unwrap(),
        "east",
    )
    .await
    .unwrap();
    agent
        .send(
            1,
            true,
            vec![
                support::http_gateway("web", "http", "*.a.example"),
                http_route(
                    "app",
                    "web",
                    "app.a.example",
                    backend("app", 80, &app.ip().to_string(), u32::from(app.port())),
                ),
            ],
        )
        .await;
    agent.verdict().await.unwrap();

    let mut envoy = Envoy::start_reporting_stats("envoy-stats", hub.xds_addr());
    envoy.wait_ready().await;
    let dp = hub.data_plane_bind();
    let c = client();
    let answered = eventually("the route to answer through Envoy", || async {
        let (status, _) = get(&c, dp, "app.a.example", "/").await?;
        (status == hyper::StatusCode::OK).then_some(())
    });
    tokio::time::timeout(DEADLINE, answered)
        .await
        .unwrap_or_else(|_| panic!("no answer through Envoy; log:\n{}", envoy.log()));
    for path in ["/", "/", "/fail"] {
        get(&c, dp, "app.a.example", path).await.unwrap();
    }

    // The hub's scrape: the tenant's requests, its 5xx and its latency, with the tenant alone.
    let text = eventually("the tenant's requests in the hub's metrics", || async {
        let text = metrics(port).await;
        let errors = sample(
            &text,
            r#"fleetgate_hub_tenant_request_errors_total{tenant="tenant-a"}"#,
        );
        (errors >= Some(1.0)).then_some(text)
    })
    .await;
    let requests = sample(
        &text,
        r#"fleetgate_hub_tenant_requests_total{tenant="tenant-a"}"#,
    );
    assert!(requests >= Some(4.0), "{text}");
    let timed = sample(
        &text,
        r#"fleetgate_hub_tenant_request_duration_seconds_count{tenant="tenant-a"}"#,
    );
    assert!(timed >= Some(4.0), "{text}");
    for leak in ["app.a.example", "envoy-stats", "t/tenant-a/"] {
        assert!(
            !text.contains(leak),
            "{leak} leaked into the metrics:\n{text}"
        );
    }

    // The API and the tenant page show it.
    let a = admin_port(
        port,
        "GET",
        "/api/v1/traffic",
        &[format!("authorization: Bearer {token}")],
        "",
    )
    .await;
    let traffic: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert!(
        traffic["tenant-a"]["errors"].as_u64() >= Some(1),
        "{traffic}"
    );
    let page = admin_port(
        port,
        "GET",
        "/ui/tenants/tenant-a",
        &[format!("cookie: fleetgate_session={token}")],
        "",
    )
    .await;
    assert!(page.body.contains("id=\"traffic-table\""), "{}", page.body);

    // Envoy's own stats carry the tenant as a label.
    let (status, stats) = get(&c, envoy.admin, "admin", "/stats/prometheus")
        .await
        .unwrap();
    assert_eq!(status, hyper::StatusCode::OK);
    assert!(
        stats
            .lines()
            .any(|l| l.starts_with("envoy_cluster_upstream_rq_total{")
                && l.contains("fleetgate_tenant=\"tenant-a\"")),
        "{stats}"
    );
    // Of a tenant cluster's stats only those read by the hub, the dashboards and operators are
    // made (the bootstraps' stats_matcher): its connections were counted without it, and the
    // xDS cluster's still are.
    let cx_total = |l: &&str| l.starts_with("envoy_cluster_upstream_cx_total{");
    assert!(
        !stats
            .lines()
            .any(|l| cx_total(&l) && l.contains("fleetgate_tenant=")),
        "{stats}"
    );
    assert!(
        stats
            .lines()
            .any(|l| cx_total(&l) && l.contains("envoy_cluster_name=\"xds_cluster\"")),
        "{stats}"
    );
    drop(envoy);
    hub.stop().await;
}
