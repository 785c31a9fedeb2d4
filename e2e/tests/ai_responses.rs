//! OpenAI's Responses API (`POST /v1/responses`) through the AI gateway, driven by the official
//! OpenAI SDK (`e2e/ai/responses_check.py`): plain, streamed, the SDK's stream helper and a list
//! of messages cut at `max_output_tokens`, against the mock OpenAI API proven by
//! `mock_providers.rs`; the backend's key and model override reach the mock; usage is counted
//! from the body and the `response.completed` event, and the tenant's budget is charged those
//! tokens; Anthropic and Gemini backends answer 404 `unsupported_path` saying what to use, and a
//! failover group serves it from its OpenAI-compatible providers only. The
//! gateway runs in-process so its usage counters and budget reports can be read.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use fleetgate_ai_gateway::budget::{BudgetError, Ledger};
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::mock_llm::{Fault, MockLlm, Vendor};
use futures::future::BoxFuture;
use serde_json::{Value, json};

const TENANT: &str = "tenant-a";
const BACKEND_KEY: &str = "sk-backend-only-the-gateway-holds";

/// Stands in for the hub's budget ledger (`HubLedger`), in memory: admits every request and
/// keeps the tokens each response reported, as the hub would count them.
#[derive(Debug, Default)]
struct CountingLedger {
    reserved: Mutex<u64>,
    tokens: Mutex<Vec<u64>>,
}

impl Ledger for CountingLedger {
    fn reserve<'a>(
        &'a self,
        tenant: &'a str,
        _key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), BudgetError>> {
        assert_eq!(tenant, TENANT);
        *self.reserved.lock().unwrap() += 1;
        Box::pin(async { Ok(()) })
    }

    fn report(&self, tenant: &str, _key_id: &str, tokens: u64) {
        assert_eq!(tenant, TENANT);
        self.tokens.lock().unwrap().push(tokens);
    }
}

async fn gateway(mock: SocketAddr, ledger: Arc<CountingLedger>) -> Running {
    let yaml = format!(
        r#"
version: 1
tenants:
  {TENANT}:
    budget: {{ tokens: 1000000, windowSeconds: 3600 }}
    routes:
      c1/default/gpt:
        ai:
          provider: {{ openai: {{ model: mock-gpt }}, host: "{ip}", port: {port}, pathPrefix: /v1/ }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/default/claude:
        ai:
          provider: {{ anthropic: {{ model: mock-claude }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/default/gemini:
        ai:
          provider: {{ gemini: {{ model: mock-gemini }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
      c1/default/mixed:
        ai:
          groups:
            - providers:
                - {{ name: claude, anthropic: {{ model: mock-claude }}, host: "{ip}", port: {port} }}
            - providers:
                - {{ name: gpt, openai: {{ model: mock-gpt }}, host: "{ip}", port: {port} }}
        policies: {{ auth: {{ key: {BACKEND_KEY} }} }}
"#,
        ip = mock.ip(),
        port = mock.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap());
    settings.ledger = Some(ledger);
    fleetgate_ai_gateway::start(settings, config, Box::new(StaticSource))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_uses_the_responses_api_through_the_gateway() {
    let mock = MockLlm::start("mock", "127.0.0.1".parse().unwrap(), BACKEND_KEY)
        .await
        .unwrap();
    let ledger = Arc::new(CountingLedger::default());
    let gw = gateway(mock.addr(), ledger.clone()).await;
    // The 5th request (after plain, stream, stream helper and cut) gets a 429 with Retry-After.
    mock.fail_request(
        5,
        Fault {
            status: 429,
            retry_after: Some(3),
        },
    );
    let output = tokio::process::Command::new(ai_python().unwrap())
        .arg(workspace_dir().join("e2e/ai/responses_check.py"))
        .env("GATEWAY_URL", format!("http://{}", gw.addr))
        .env("TENANT", TENANT)
        .env("ROUTE_OPENAI", "c1/default/gpt")
        .env("ROUTE_ANTHROPIC", "c1/default/claude")
        .env("ROUTE_GEMINI", "c1/default/gemini")
        .env("ROUTE_MIXED", "c1/default/mixed")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("the SDK saw: {seen:#}");

    // Plain and streamed: the mock's answer, with the backend's model override.
    let plain = &seen["plain"];
    assert_eq!(plain["text"], "mock heard: hello fleet");
    assert_eq!(plain["status"], "completed");
    assert_eq!(plain["model"], "mock-gpt", "the backend's model override");
    assert_eq!(
        plain["usage"],
        json!([4, 4]),
        "instructions + input in, 4 out"
    );
    let stream = &seen["stream"];
    assert_eq!(stream["text"], plain["text"]);
    assert_eq!(stream["final_text"], plain["text"]);
    assert_eq!(stream["first"], "response.created");
    assert_eq!(stream["last"], "response.completed");
    assert_eq!(
        stream["usage"], plain["usage"],
        "usage in response.completed"
    );
    assert_eq!(
        seen["stream_helper"],
        json!({"text": "mock heard: hello fleet", "final_text": "mock heard: hello fleet", "usage": [4, 4]})
    );
    assert_eq!(
        seen["cut"],
        json!({"text": "mock heard:", "status": "incomplete", "reason": "max_output_tokens", "usage": [4, 2]})
    );

    // The upstream's 429 reaches the SDK as its RateLimitError, Retry-After included.
    assert_eq!(
        seen["rate_limited"],
        json!({"status": 429, "retry_after": "3", "type": "rate_limit_exceeded"})
    );

    // Anthropic and Gemini backends: 404 in OpenAI's shape, saying what to use instead.
    for (name, api) in [("anthropic", "Anthropic"), ("gemini", "Gemini")] {
        let e = &seen[name];
        assert_eq!(e["status"], 404, "{e}");
        assert_eq!(e["code"], "unsupported_path", "{e}");
        let message = e["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("served only for OpenAI-compatible backends")
                && message.contains(api)
                && message.contains("POST /v1/chat/completions"),
            "{message}"
        );
    }

    // A failover group whose first provider is Anthropic: the Responses API is served by its
    // OpenAI-compatible provider, the Anthropic one is not tried.
    assert_eq!(
        seen["mixed"],
        json!({"text": "mock heard: hello fleet", "model": "mock-gpt"})
    );

    // What reached the mock: only Responses requests, at the prefixed path, with the backend's
    // key and model, never the client's key, and the body otherwise as the client sent it.
    let requests = mock.seen();
    assert_eq!(requests.len(), 6, "{requests:#?}");
    for r in &requests {
        assert_eq!(r.vendor, Vendor::OpenAi);
        assert_eq!(r.path, "/v1/responses");
        assert!(r.key_ok, "{r:#?}");
        assert_eq!(r.model, "mock-gpt");
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains("sk-client-dummy")),
            "the client's key went upstream: {r:#?}"
        );
        assert!(
            r.body.get("stream_options").is_none(),
            "nothing added: {r:#?}"
        );
    }
    assert_eq!(requests.iter().filter(|r| r.stream).count(), 3);
    assert_eq!(requests[0].body["instructions"], "be brief");

    // Usage for the route: 5 requests (one the 429, asked as a stream), 2 streams answered, every token counted
    // from the bodies and the response.completed events; nothing counted for the refused routes.
    let gpt = gw.usage.route_totals(TENANT, "c1/default/gpt");
    eprintln!("usage: {gpt:?}");
    assert_eq!((gpt.requests, gpt.streamed, gpt.errors), (5, 3, 1));
    assert_eq!((gpt.prompt_tokens, gpt.completion_tokens), (16, 14));
    assert_eq!(
        gpt.counted_from_chunks, 0,
        "every stream reported its usage"
    );
    assert_eq!(gpt.time_to_first_token_count, 2);
    assert_eq!(
        gw.usage.route_totals(TENANT, "c1/default/claude").requests,
        0
    );
    let mixed = gw.usage.route_totals(TENANT, "c1/default/mixed");
    assert_eq!((mixed.requests, mixed.errors), (1, 0));
    assert_eq!((mixed.prompt_tokens, mixed.completion_tokens), (4, 4));

    // The tenant's budget was charged those tokens, one report per answered request.
    let mut reported = ledger.tokens.lock().unwrap().clone();
    reported.sort_unstable();
    assert_eq!(
        reported,
        [6, 8, 8, 8, 8],
        "prompt + completion per response"
    );
    assert_eq!(
        *ledger.reserved.lock().unwrap(),
        8,
        "every request reserved, also the refused ones"
    );
    gw.shutdown().await;
}
