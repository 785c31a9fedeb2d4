//! `policies.modelAliases` over real loopback HTTP: the upstream records the path and body it
//! got, and each provider receives the aliased model: OpenAI-compatible (chat completions,
//! the Responses API, embeddings), Anthropic (for OpenAI and for Messages clients) and Gemini (the model is in its path). A
//! provider's fixed model replaces the client's first, and an alias then applies to it
//! (agentgateway's order); a model that is no alias goes as written.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What the upstream received: (path, body).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// An upstream that records every request and answers `{}` (the test reads what it received,
/// not what the gateway makes of the answer).
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
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        record.lock().unwrap().push((path, body));
                        let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
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

/// POSTs `body` to `path` on `route` of tenant `t`, and returns what the upstream received.
async fn sent(
    gw: SocketAddr,
    seen: &Seen,
    route: &str,
    path: &str,
    body: Value,
) -> (String, Value) {
    seen.lock().unwrap().clear();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(format!("http://{gw}{path}"))
        .header("content-type", "application/json")
        .header("x-fleetgate-tenant", "t")
        .header("x-fleetgate-route", route)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let _ = resp.into_body().collect().await;
    let got = seen.lock().unwrap().pop();
    got.unwrap_or_else(|| panic!("{route} {path}: nothing reached the upstream"))
}

#[tokio::test]
async fn each_provider_receives_the_aliased_model() {
    let (up, seen) = upstream().await;
    let provider =
        |kind: &str| format!("{{ {kind}, host: llm.example, port: 8080, endpoints: [\"{up}\"] }}");
    let yaml = format!(
        r#"
tenants:
  t:
    routes:
      openai:
        ai: {{ provider: {openai} }}
        policies: {{ modelAliases: {{ fast: gpt-4o-mini, smart: gpt-4o }} }}
      pinned:
        ai: {{ provider: {pinned} }}
        policies: {{ modelAliases: {{ fast: never-sent }} }}
      pinned-aliased:
        ai: {{ provider: {pinned} }}
        policies: {{ modelAliases: {{ pinned-model: pinned-model-v2 }} }}
      anthropic:
        ai: {{ provider: {anthropic} }}
        policies: {{ modelAliases: {{ fast: claude-haiku-4-5 }} }}
      gemini:
        ai: {{ provider: {gemini} }}
        policies: {{ modelAliases: {{ fast: gemini-2.0-flash }} }}
"#,
        openai = provider("openai: {}"),
        pinned = provider("openai: { model: pinned-model }"),
        anthropic = provider("anthropic: {}"),
        gemini = provider("gemini: {}"),
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let messages = |model: &str| json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let model_of = |(_, body): &(String, Value)| body["model"].as_str().map(str::to_string);

    // OpenAI-compatible: an alias is replaced, a model that is none goes as written.
    for (asked, want) in [
        ("fast", "gpt-4o-mini"),
        ("smart", "gpt-4o"),
        ("gpt-4.1", "gpt-4.1"),
        ("FAST", "FAST"),
    ] {
        let got = sent(
            gw.addr,
            &seen,
            "openai",
            "/v1/chat/completions",
            chat(asked),
        )
        .await;
        assert_eq!(got.0, "/v1/chat/completions");
        assert_eq!(model_of(&got).as_deref(), Some(want), "asked {asked}");
    }
    // OpenAI's Responses API too.
    let got = sent(
        gw.addr,
        &seen,
        "openai",
        "/v1/responses",
        json!({"model": "fast", "input": "hi"}),
    )
    .await;
    assert_eq!(got.0, "/v1/responses");
    assert_eq!(model_of(&got).as_deref(), Some("gpt-4o-mini"));
    // Embeddings carry a model too.
    let got = sent(
        gw.addr,
        &seen,
        "openai",
        "/v1/embeddings",
        json!({"model": "fast", "input": "hi"}),
    )
    .await;
    assert_eq!(model_of(&got).as_deref(), Some("gpt-4o-mini"));

    // The provider's fixed model replaces the client's first: the client's alias is not used...
    let got = sent(
        gw.addr,
        &seen,
        "pinned",
        "/v1/chat/completions",
        chat("fast"),
    )
    .await;
    assert_eq!(model_of(&got).as_deref(), Some("pinned-model"));
    // ...and an alias of the fixed model applies to it, as in agentgateway.
    let got = sent(
        gw.addr,
        &seen,
        "pinned-aliased",
        "/v1/chat/completions",
        chat("x"),
    )
    .await;
    assert_eq!(model_of(&got).as_deref(), Some("pinned-model-v2"));

    // Anthropic, for an OpenAI client (translated) and for a Messages client.
    let got = sent(
        gw.addr,
        &seen,
        "anthropic",
        "/v1/chat/completions",
        chat("fast"),
    )
    .await;
    assert_eq!(got.0, "/v1/messages");
    assert_eq!(model_of(&got).as_deref(), Some("claude-haiku-4-5"));
    let got = sent(
        gw.addr,
        &seen,
        "anthropic",
        "/v1/messages",
        messages("fast"),
    )
    .await;
    assert_eq!(model_of(&got).as_deref(), Some("claude-haiku-4-5"));

    // Gemini: the aliased model names the path.
    let got = sent(
        gw.addr,
        &seen,
        "gemini",
        "/v1/chat/completions",
        chat("fast"),
    )
    .await;
    assert_eq!(got.0, "/v1beta/models/gemini-2.0-flash:generateContent");
}
