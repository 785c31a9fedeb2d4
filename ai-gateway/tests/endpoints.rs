//! A backend's `endpoints` over real loopback HTTP: requests are spread round-robin over two
//! upstreams that say which of them answered, with the backend's host as Host and its key as
//! `Authorization`; a dead endpoint is skipped for the next one; `passthrough` forwards the
//! client's own `Authorization`. Configured with the file form (`ai.provider.endpoints`,
//! `policies.auth.passthrough`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// An upstream that answers every request with its name and the Host and Authorization it got.
async fn upstream(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let header = |h: &str| {
                            req.headers()
                                .get_all(h)
                                .iter()
                                .map(|v| v.to_str().unwrap_or("?").to_string())
                                .collect::<Vec<_>>()
                        };
                        let body = serde_json::json!({
                            "object": "list",
                            "data": [],
                            "answered_by": name,
                            "host": header("host"),
                            "authorization": header("authorization"),
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

/// A loopback port nothing listens on (bound, then released).
fn dead_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// GET /v1/models on `route` of tenant `t`, with the client's own key.
async fn models(gw: SocketAddr, route: &str) -> (u16, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let req = hyper::Request::get(format!("http://{gw}/v1/models"))
        .header("authorization", "Bearer sk-client-own")
        .header("x-fleetgate-tenant", "t")
        .header("x-fleetgate-route", route)
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_spread_over_the_endpoints_with_the_backends_host_and_key() {
    let (one, two) = (upstream("one").await, upstream("two").await);
    let dead = dead_port();
    let yaml = format!(
        r#"
tenants:
  t:
    routes:
      keyed:
        ai:
          provider:
            openai: {{}}
            host: llama-cpp.llm.svc.cluster.local
            port: 8080
            endpoints: ["{one}", "{two}"]
        policies: {{ auth: {{ key: sk-backend-key }} }}
      skip-dead:
        ai:
          provider: {{ openai: {{}}, host: llama-cpp.llm.svc.cluster.local, port: 8080, endpoints: ["{dead}", "{one}"] }}
      passed:
        ai:
          provider: {{ openai: {{}}, host: llama-cpp.llm.svc.cluster.local, port: 8080, endpoints: ["{two}"] }}
        policies: {{ auth: {{ passthrough: true }} }}
      all-dead:
        ai:
          provider: {{ openai: {{}}, host: h, port: 8080, endpoints: ["{dead}"] }}
"#
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();

    // Round-robin: one, two, one, two; Host is the backend's, the key is the backend's.
    let mut answered = Vec::new();
    for _ in 0..4 {
        let (status, body) = models(gw.addr, "keyed").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["host"],
            serde_json::json!(["llama-cpp.llm.svc.cluster.local:8080"])
        );
        assert_eq!(
            body["authorization"],
            serde_json::json!(["Bearer sk-backend-key"]),
            "the backend's key, never the client's"
        );
        answered.push(body["answered_by"].as_str().unwrap().to_string());
    }
    assert_eq!(answered, ["one", "two", "one", "two"]);

    // A dead endpoint: every request still answered, by the live one.
    for _ in 0..3 {
        let (status, body) = models(gw.addr, "skip-dead").await;
        assert_eq!(
            (status, body["answered_by"].as_str()),
            (200, Some("one")),
            "{body}"
        );
        assert_eq!(
            body["authorization"],
            serde_json::json!([]),
            "no auth configured"
        );
    }

    // Passthrough: the client's own Authorization reaches the provider.
    let (status, body) = models(gw.addr, "passed").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answered_by"], "two");
    assert_eq!(
        body["authorization"],
        serde_json::json!(["Bearer sk-client-own"])
    );

    // No endpoint takes the connection: 502 in OpenAI's shape.
    let (status, body) = models(gw.addr, "all-dead").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    gw.shutdown().await;
}
