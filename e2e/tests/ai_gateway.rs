//! The AI gateway against a real llama.cpp server, driven by the official OpenAI Python SDK.
//!
//! Real components: llama.cpp's server (`e2e/setup.sh ai`) with a generated tiny model, the
//! gateway in-process through its library `start()`, the `openai` SDK from the setup's
//! virtualenv. Envoy is not in front yet (the hub integration brings it): the script sets the
//! identity headers Envoy would set.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::{ChannelSource, StaticSource};
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::ports::free_port_on;
use fleetgate_e2e::{LlamaServer, TestDir};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

const LLAMA_KEY: &str = "sk-llama-real-key-only-the-gateway-holds";
const TENANT: &str = "tenant-a";
const ROUTE_OK: &str = "llm/local-llm";
const ROUTE_UNREACHABLE: &str = "llm/unreachable";
const ROUTE_WRONG_KEY: &str = "llm/wrong-key";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// tenant-a: the llama.cpp route (with the model override of the KubeLB tutorial's shape), a
/// route to a port nothing listens on, and a route with a key llama.cpp refuses. tenant-b: a
/// route to the same server, to show routes are per tenant.
fn config_yaml(llama: SocketAddr, dead: SocketAddr) -> String {
    format!(
        r#"
version: 1
tenants:
  {TENANT}:
    routes:
      {ROUTE_OK}:
        ai:
          provider:
            openai: {{ model: {model} }}
            host: "{lip}"
            port: {lport}
        policies:
          auth: {{ key: {LLAMA_KEY} }}
      {ROUTE_UNREACHABLE}:
        ai:
          provider:
            openai: {{}}
            host: "{dip}"
            port: {dport}
        policies:
          requestTimeoutMs: 5000
      {ROUTE_WRONG_KEY}:
        ai:
          provider:
            openai: {{ model: {model} }}
            host: "{lip}"
            port: {lport}
        policies:
          auth: {{ key: sk-not-the-right-key }}
  tenant-b:
    routes:
      only-b:
        ai:
          provider:
            openai: {{}}
            host: "{lip}"
            port: {lport}
"#,
        model = LlamaServer::MODEL,
        lip = llama.ip(),
        lport = llama.port(),
        dip = dead.ip(),
        dport = dead.port(),
    )
}

async fn start_gateway(yaml: &str) -> Running {
    let config = RawConfig::from_yaml(yaml).unwrap().validate().unwrap();
    fleetgate_ai_gateway::start(
        Settings::new(SocketAddr::new(ip("127.0.0.1"), 0)),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_gets_llama_cpp_answers_through_the_gateway() {
    let dir = TestDir::new("ai_gateway_sdk").unwrap();
    let llama = LlamaServer::start(&dir, ip("127.0.1.10"), LLAMA_KEY)
        .await
        .unwrap();
    // Nothing listens here: bound once for a free port, then released.
    let dead = SocketAddr::new(ip("127.0.1.11"), free_port_on(ip("127.0.1.11")).unwrap());
    let gw = start_gateway(&config_yaml(llama.addr(), dead)).await;

    let script = workspace_dir().join("e2e/ai/openai_sdk_check.py");
    let output = tokio::process::Command::new(ai_python().unwrap())
        .arg(&script)
        .env("GATEWAY_URL", format!("http://{}", gw.addr))
        .env("LLAMA_URL", format!("http://{}", llama.addr()))
        .env("LLAMA_KEY", LLAMA_KEY)
        .env("TENANT", TENANT)
        .env("ROUTE_OK", ROUTE_OK)
        .env("ROUTE_UNREACHABLE", ROUTE_UNREACHABLE)
        .env("ROUTE_WRONG_KEY", ROUTE_WRONG_KEY)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "SDK script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap();
    eprintln!("SDK saw: {seen:#}");

    // The client's key is one llama.cpp refuses...
    assert_eq!(seen["direct_dummy_status"], 401);
    // ...yet through the gateway the same SDK gets llama.cpp's answers.
    assert_eq!(seen["models"], serde_json::json!([LlamaServer::MODEL]));
    let plain = &seen["plain"];
    assert_eq!(
        plain["model"],
        LlamaServer::MODEL,
        "the model override reached llama.cpp"
    );
    let content = plain["content"].as_str().unwrap();
    assert!(!content.is_empty());
    assert_eq!(
        seen["direct_content"], plain["content"],
        "temperature 0: the gateway's answer is llama.cpp's answer"
    );
    let prompt_tokens = plain["prompt_tokens"].as_u64().unwrap();
    let completion_tokens = plain["completion_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 0 && completion_tokens > 0, "{plain}");

    for key in ["stream", "stream_with_usage"] {
        let s = &seen[key];
        assert_eq!(
            s["content"], plain["content"],
            "{key}: the streamed answer is the same"
        );
        assert_eq!(s["empty_choice_chunks"], 0, "{key}: {s}");
        // llama-cpp-python 0.3.36 ignores include_usage, so no usage chunk exists to show or hide.
        assert_eq!(s["usage_chunks"], 0, "{key}: {s}");
        assert_eq!(
            s["token_chunks"], plain["completion_tokens"],
            "{key}: one event per token, as many as llama.cpp counts for the same answer"
        );
    }

    // Errors, as the SDK's exceptions.
    let unknown = &seen["unknown_route"];
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["body"]["code"], "route_not_found");
    let unreachable = &seen["unreachable"];
    assert_eq!(unreachable["status"], 502);
    // The SDK's APIStatusError for a 5xx.
    assert_eq!(unreachable["class"], "InternalServerError");
    assert_eq!(unreachable["body"]["code"], "upstream_unreachable");
    let upstream_401 = &seen["upstream_401"];
    assert_eq!(upstream_401["status"], 401);
    assert_eq!(upstream_401["body"]["type"], "authentication_error");
    assert!(
        upstream_401["body"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "llama.cpp's FastAPI detail became OpenAI's message: {upstream_401}"
    );
    assert_eq!(seen["no_envoy_headers"]["status"], 403);
    assert_eq!(seen["no_envoy_headers"]["body"]["code"], "not_from_envoy");
    assert_eq!(seen["bad_json"]["status"], 400);
    assert_eq!(
        seen["bad_json"]["body"]["error"]["type"],
        "invalid_request_error"
    );

    let emb = &seen["embeddings"];
    assert_eq!(emb["model"], LlamaServer::MODEL, "{emb}");
    assert_eq!(emb["vectors"], 1, "{emb}");
    let emb_tokens = emb["prompt_tokens"].as_u64().unwrap();
    assert!(emb_tokens > 0, "{emb}");

    // Usage, per (tenant, route, model): models, plain chat, 2 streams, embeddings, bad JSON.
    let ok = gw.usage.route_totals(TENANT, ROUTE_OK);
    eprintln!("usage of {TENANT}/{ROUTE_OK}: {ok:?}");
    let stream_chunks = seen["stream"]["token_chunks"].as_u64().unwrap()
        + seen["stream_with_usage"]["token_chunks"].as_u64().unwrap();
    assert_eq!(
        ok.requests, 6,
        "models, plain, two streams, embeddings, bad JSON"
    );
    assert_eq!(ok.errors, 1, "the bad JSON");
    assert_eq!(ok.streamed, 2);
    assert_eq!(
        ok.prompt_tokens,
        prompt_tokens + emb_tokens,
        "streams report no prompt tokens here"
    );
    assert_eq!(ok.completion_tokens, completion_tokens + stream_chunks);
    assert_eq!(
        ok.counted_from_chunks, 2,
        "llama.cpp's streams carry no usage"
    );
    assert_eq!(ok.time_to_first_token_count, 2);
    let snapshot = gw.usage.snapshot();
    assert!(
        snapshot
            .iter()
            .any(|(k, v)| k.route == ROUTE_OK && k.model == LlamaServer::MODEL && v.requests >= 3),
        "{snapshot:?}"
    );
    let unreachable = gw.usage.route_totals(TENANT, ROUTE_UNREACHABLE);
    assert_eq!((unreachable.requests, unreachable.errors), (1, 1));
    assert_eq!(gw.usage.route_totals("tenant-b", "only-b").requests, 0);
    gw.shutdown().await;
    drop(llama);
}

/// POSTs a streamed chat to the gateway and returns the response (headers read, body not).
async fn open_stream(
    gateway: SocketAddr,
    tenant: &str,
    route: &str,
    max_tokens: u32,
) -> hyper::Response<hyper::body::Incoming> {
    let body = serde_json::json!({
        "model": "x",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        // No end-of-sequence token: the stream runs to max_tokens.
        "logit_bias": {"2": -100},
        "stream": true,
    });
    let req = hyper::Request::post(format!("http://{gateway}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-fleetgate-tenant", tenant)
        .header("x-fleetgate-route", route)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    client.request(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_swap_does_not_drop_a_stream_in_flight() {
    let dir = TestDir::new("ai_gateway_swap").unwrap();
    let llama = LlamaServer::start(&dir, ip("127.0.1.20"), LLAMA_KEY)
        .await
        .unwrap();
    let dead = SocketAddr::new(ip("127.0.1.21"), 9);
    let yaml = config_yaml(llama.addr(), dead);
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let gw = fleetgate_ai_gateway::start(
        Settings::new(SocketAddr::new(ip("127.0.0.1"), 0)),
        config.clone(),
        Box::new(ChannelSource(rx)),
    )
    .await
    .unwrap();

    // Long enough to outlive the swap by far (llama-cpp-python sends one token per event).
    let resp = open_stream(gw.addr, TENANT, ROUTE_OK, 150).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");

    // The route goes away while the stream runs.
    let mut without = config.clone();
    without.version = 2;
    without
        .tenants
        .get_mut(TENANT)
        .unwrap()
        .routes
        .remove(ROUTE_OK);
    tx.send(without).await.unwrap();
    let mut routes = gw.routes.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        routes.wait_for(|t| t.version() == 2),
    )
    .await
    .unwrap()
    .unwrap();

    // A new request sees the new table...
    let after = open_stream(gw.addr, TENANT, ROUTE_OK, 4).await;
    assert_eq!(after.status(), 404);
    // ...while the stream that started before finishes on the old one.
    let rest = tokio::time::timeout(Duration::from_secs(60), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&rest);
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = events.last().expect("events after the swap");
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let totals = gw.usage.route_totals(TENANT, ROUTE_OK);
    assert_eq!(totals.streamed, 1);
    assert!(
        totals.completion_tokens as usize >= events.len() - 1,
        "every content event after the swap was counted: {totals:?}"
    );
    gw.shutdown().await;
    drop(llama);
}
