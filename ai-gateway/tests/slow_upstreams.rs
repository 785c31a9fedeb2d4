//! Slow and silent upstreams: the gateway answers 504 after the backend's request timeout, and a
//! tenant whose provider hangs fills only its own concurrency budget (429 for its next request)
//! while another tenant's requests go through at once.
//!
//! The upstreams here are sockets that accept and never answer, and a minimal HTTP server: what
//! is tested is the gateway's timing and isolation, not a provider's protocol (that is
//! `e2e/tests/ai_gateway.rs`, against llama.cpp).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Accepts connections and never answers.
async fn silent_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (addr, task)
}

/// Answers every request with an empty model list.
async fn quick_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    let mut r = hyper::Response::new(Full::new(Bytes::from_static(
                        br#"{"object":"list","data":[]}"#,
                    )));
                    r.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn get_models(gw: SocketAddr, tenant: &str) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let req = hyper::Request::get(format!("http://{gw}/v1/models"))
        .header("x-fleetgate-tenant", tenant)
        .header("x-fleetgate-route", "llm")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_times_out_and_blocks_only_its_own_tenant() {
    let (silent, _silent_task) = silent_upstream().await;
    let quick = quick_upstream().await;
    let yaml = format!(
        r#"
tenants:
  slow:
    maxConcurrency: 1
    routes:
      llm:
        ai: {{ provider: {{ openai: {{}}, host: "{}", port: {} }} }}
        policies: {{ requestTimeoutMs: 1500 }}
  fast:
    maxConcurrency: 1
    routes:
      llm:
        ai: {{ provider: {{ openai: {{}}, host: "{}", port: {} }} }}
"#,
        silent.ip(),
        silent.port(),
        quick.ip(),
        quick.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let addr = gw.addr;

    let started = Instant::now();
    let hanging = tokio::spawn(get_models(addr, "slow"));
    // Wait until the slow tenant's one permit is taken.
    let table = gw.routes.borrow().clone();
    let slow = table.tenant("slow").unwrap().clone();
    while slow.limit.in_flight() == 0 {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (status, body) = get_models(addr, "slow").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "tenant_concurrency_exceeded");

    let t = Instant::now();
    let (status, body) = get_models(addr, "fast").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "the other tenant is served at once ({:?})",
        t.elapsed()
    );

    let (status, body) = hanging.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(slow.limit.in_flight(), 0, "the permit is back");
    gw.shutdown().await;
}
