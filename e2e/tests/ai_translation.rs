//! Translation through the AI gateway, driven by the vendors' official SDKs: the OpenAI SDK to
//! an Anthropic backend, the Anthropic SDK to an OpenAI-compatible backend, and the Anthropic SDK
//! to an Anthropic backend unchanged, plain and streamed, with tool calls, usage and a 429 whose
//! Retry-After reaches the client. The backends are the mock cloud APIs proven by
//! `mock_providers.rs`; the gateway runs in-process so its usage counters can be read.

use std::net::SocketAddr;

use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::mock_llm::{Fault, MockLlm, Vendor};
use serde_json::{Value, json};

const TENANT: &str = "tenant-a";
const BACKEND_KEY: &str = "sk-backend-only-the-gateway-holds";

async fn gateway(mock: SocketAddr) -> Running {
    let yaml = format!(
        r#"
version: 1
tenants:
  {TENANT}:
    routes:
      c1/default/claude:
        ai:
          provider: {{ anthropic: {{ model: mock-claude }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/default/gemini:
        ai:
          provider: {{ gemini: {{ model: mock-gemini }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/default/gpt:
        ai:
          provider: {{ openai: {{ model: mock-gpt }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
"#,
        ip = mock.ip(),
        port = mock.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_and_anthropic_sdks_reach_backends_of_the_other_api() {
    let mock = MockLlm::start("mock", "127.0.0.1".parse().unwrap(), BACKEND_KEY)
        .await
        .unwrap();
    let gw = gateway(mock.addr()).await;
    // The 4th request (after plain, stream and tool call) gets a 429 with Retry-After.
    mock.fail_request(
        4,
        Fault {
            status: 429,
            retry_after: Some(3),
        },
    );
    let output = tokio::process::Command::new(ai_python().unwrap())
        .arg(workspace_dir().join("e2e/ai/translation_check.py"))
        .env("GATEWAY_URL", format!("http://{}", gw.addr))
        .env("TENANT", TENANT)
        .env("ROUTE_ANTHROPIC", "c1/default/claude")
        .env("ROUTE_OPENAI", "c1/default/gpt")
        .env("ROUTE_GEMINI", "c1/default/gemini")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("SDKs saw: {seen:#}");

    // OpenAI SDK -> Anthropic backend: the mock's answer, its usage, its stop reason as OpenAI's.
    let o2a = &seen["openai_to_anthropic"];
    assert_eq!(o2a["content"], "mock heard: hello fleet");
    assert_eq!(o2a["finish_reason"], "stop");
    assert_eq!(
        o2a["usage"],
        json!([4, 4]),
        "system prompt + user words in, 4 out"
    );
    assert_eq!(o2a["model"], "mock-claude", "the backend's model override");
    let stream = &seen["openai_to_anthropic_stream"];
    assert_eq!(stream["content"], o2a["content"]);
    assert_eq!(stream["usage"], o2a["usage"], "usage chunk, asked for");
    let tool = &seen["openai_to_anthropic_tool"];
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["arguments"], json!({"input": "hello get_weather"}));
    assert_eq!(tool["finish_reason"], "tool_calls");
    assert_eq!(seen["openai_to_anthropic_429"]["status"], 429);
    assert_eq!(seen["openai_to_anthropic_429"]["retry_after"], "3");

    // Anthropic SDK -> OpenAI-compatible backend.
    let a2o = &seen["anthropic_to_openai"];
    assert_eq!(a2o["content"], "mock heard: hello fleet");
    assert_eq!(a2o["stop_reason"], "end_turn");
    assert_eq!(a2o["usage"], json!([4, 4]));
    let a2o_stream = &seen["anthropic_to_openai_stream"];
    assert_eq!(a2o_stream["content"], a2o["content"]);
    assert_eq!(a2o_stream["stop_reason"], "end_turn");
    assert_eq!(a2o_stream["usage"], a2o["usage"]);

    // Anthropic SDK -> Anthropic backend, unchanged.
    assert_eq!(
        seen["anthropic_native"]["content"],
        "mock heard: hello fleet"
    );
    assert_eq!(
        seen["anthropic_native_stream"]["content"],
        "mock heard: hello fleet"
    );

    // OpenAI SDK -> Gemini backend: plain, streamed with usage, a tool call.
    let o2g = &seen["openai_to_gemini"];
    assert_eq!(o2g["content"], "mock heard: hello fleet");
    assert_eq!(o2g["finish_reason"], "stop");
    assert_eq!(o2g["usage"], json!([4, 4]));
    assert_eq!(o2g["model"], "mock-gemini");
    assert_eq!(seen["openai_to_gemini_stream"]["content"], o2g["content"]);
    assert_eq!(seen["openai_to_gemini_stream"]["usage"], o2g["usage"]);
    let gtool = &seen["openai_to_gemini_tool"];
    assert_eq!(gtool["name"], "get_weather");
    assert_eq!(gtool["arguments"], json!({"input": "hello get_weather"}));
    assert_eq!(gtool["finish_reason"], "tool_calls");
    assert!(
        mock.seen()
            .iter()
            .any(|r| r.vendor == Vendor::Gemini && r.path.ends_with(":streamGenerateContent"))
    );

    // Every request reached the mock with the backend's key, never the client's, in the
    // backend API's own header, and with the backend's model.
    let requests = mock.seen();
    assert!(requests.iter().all(|r| r.key_ok), "{requests:#?}");
    for r in &requests {
        let client_key = r.headers.iter().any(|(_, v)| v.contains("sk-client-dummy"));
        assert!(!client_key, "the client's key went upstream: {r:#?}");
        match r.vendor {
            Vendor::Anthropic => {
                assert_eq!(r.model, "mock-claude");
                assert!(r.headers.iter().any(|(k, _)| k == "x-api-key"));
                assert!(r.headers.iter().any(|(k, _)| k == "anthropic-version"));
            }
            Vendor::OpenAi => assert_eq!(r.model, "mock-gpt"),
            Vendor::Gemini => {
                assert_eq!(r.model, "mock-gemini");
                assert!(r.headers.iter().any(|(k, _)| k == "x-goog-api-key"));
            }
        }
    }
    assert!(
        requests
            .iter()
            .any(|r| r.vendor == Vendor::OpenAi && r.stream)
    );

    // Usage per route, from every shape.
    let claude = gw.usage.route_totals(TENANT, "c1/default/claude");
    let gpt = gw.usage.route_totals(TENANT, "c1/default/gpt");
    eprintln!("usage: claude {claude:?} gpt {gpt:?}");
    assert_eq!(
        claude.requests, 6,
        "plain, stream, tool, 429, native plain and stream"
    );
    assert_eq!(claude.errors, 1);
    assert_eq!(gpt.requests, 2);
    assert_eq!((gpt.prompt_tokens, gpt.completion_tokens), (8, 8));
    assert!(claude.completion_tokens >= 4 * 4, "{claude:?}");
    gw.shutdown().await;
}
