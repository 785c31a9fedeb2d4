//! Virtual keys over real loopback HTTP, configured with the file form (`virtualKeys` per tenant,
//! SHA-256 in hex): a guarded route answers 401 without a key or with a wrong one (OpenAI's shape,
//! Anthropic's for a Messages API client), serves with the right key in `Authorization: Bearer`
//! or `x-api-key`, and the upstream never sees the virtual key, only the backend's own key. An
//! open route of the same tenant is untouched.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::keys::sha256;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

const VIRTUAL_KEY: &str = "vk-alice-7f3a9c0e51d24b86";
const BACKEND_KEY: &str = "sk-backend-only-the-gateway-holds";

type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// An upstream that records every request's headers and answers a model list.
async fn upstream() -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
                            .collect();
                        record.lock().unwrap().push(headers);
                        let body = r#"{"object":"list","data":[]}"#;
                        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
                        r.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

async fn request(
    gw: SocketAddr,
    method: &str,
    path: &str,
    route: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{gw}{path}"))
        .header("x-fleetgate-tenant", "t")
        .header("x-fleetgate-route", route)
        .header("content-type", "application/json");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let body = if method == "POST" {
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#
    } else {
        ""
    };
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        www,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_guarded_route_takes_only_its_keys_and_the_provider_never_sees_them() {
    let (up, seen) = upstream().await;
    let hash: String = sha256(VIRTUAL_KEY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let yaml = format!(
        r#"
tenants:
  t:
    routes:
      c1/team/chat:
        ai: {{ provider: {{ openai: {{}}, host: 127.0.0.1, port: {port} }} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/team/open:
        ai: {{ provider: {{ openai: {{}}, host: 127.0.0.1, port: {port} }} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
    virtualKeys:
      c1/team/alice:
        sha256: "{hash}"
        routes: [c1/team/chat]
"#,
        port = up.port()
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
    let bearer = format!("Bearer {VIRTUAL_KEY}");

    // Without a key, and with a wrong one: 401 in OpenAI's shape, nothing upstream.
    let (status, www, body) = request(addr, "GET", "/v1/models", "c1/team/chat", &[]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(www.as_deref(), Some("Bearer"));
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has none")
    );
    let wrong = "Bearer vk-alice-guess";
    let (status, _, body) = request(
        addr,
        "GET",
        "/v1/models",
        "c1/team/chat",
        &[("authorization", wrong)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(!body.to_string().contains("vk-alice-guess"), "{body}");
    // An Anthropic client gets Anthropic's shape.
    let (status, _, body) = request(addr, "POST", "/v1/messages", "c1/team/chat", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(seen.lock().unwrap().is_empty(), "nothing went upstream");

    // With the key, as Bearer and as x-api-key: served, upstream sees the backend's key only.
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("x-api-key", VIRTUAL_KEY)],
    ] {
        let (status, _, body) = request(addr, "GET", "/v1/models", "c1/team/chat", &headers).await;
        assert_eq!(status, 200, "{body}");
    }
    // The open route needs no key and ignores one.
    let (status, _, _) = request(addr, "GET", "/v1/models", "c1/team/open", &[]).await;
    assert_eq!(status, 200);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for headers in &seen {
        let auth: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, vec![format!("Bearer {BACKEND_KEY}").as_str()]);
        assert!(
            headers
                .iter()
                .all(|(n, v)| n != "x-api-key" && !v.contains(VIRTUAL_KEY)),
            "the virtual key reached the provider: {headers:?}"
        );
    }
    gw.shutdown().await;
}
