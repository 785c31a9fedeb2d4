//! The mock cloud LLM APIs (`fleetgate_e2e::mock_llm`) proven with each vendor's official SDK
//! talking to them directly (`e2e/ai/mock_sdk_check.py`: PyPI `openai`, `anthropic`,
//! `google-genai` from the setup's virtualenv), before any gateway test relies on them: plain,
//! streamed, cut at the token limit, a tool call, usage, a wrong key and a 429 with Retry-After,
//! each surfacing as the SDK's own types and exceptions; for OpenAI also the Responses API
//! (`responses.create` plain and streamed, `responses.stream`).

use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::mock_llm::{Fault, MockLlm, Vendor};
use serde_json::{Value, json};

const KEY: &str = "sk-mock-provider-key";

async fn sdk(vendor: &str) -> (Value, MockLlm) {
    let mock = MockLlm::start("mock", "127.0.0.1".parse().unwrap(), KEY)
        .await
        .unwrap();
    mock.fail_next(
        1,
        Fault {
            status: 429,
            retry_after: Some(7),
        },
    );
    let output = tokio::process::Command::new(ai_python().unwrap())
        .arg(workspace_dir().join("e2e/ai/mock_sdk_check.py"))
        .env("MOCK_URL", format!("http://{}", mock.addr()))
        .env("MOCK_KEY", KEY)
        .env("VENDOR", vendor)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{vendor} SDK against the mock:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{vendor}: {seen:#}");
    (seen, mock)
}

/// What every vendor's SDK must have seen from the same mock answers.
fn common(seen: &Value) {
    assert_eq!(seen["plain"]["content"], "mock heard: hello fleet");
    assert_eq!(
        seen["stream"]["content"], seen["plain"]["content"],
        "the streamed answer is the plain one"
    );
    assert_eq!(seen["plain"]["usage"][1], 4, "one token per word");
    assert_eq!(seen["stream"]["usage"], seen["plain"]["usage"]);
    assert_eq!(seen["cut"]["content"], "mock heard:");
    assert_eq!(seen["tool"]["name"], "get_weather");
    assert_eq!(
        seen["tool"]["arguments"],
        json!({"input": "hello fleet get_weather"})
    );
}

#[tokio::test]
async fn the_openai_sdk_accepts_the_mock_openai_api() {
    let (seen, mock) = sdk("openai").await;
    common(&seen);
    assert_eq!(
        seen["rate_limited"],
        json!({"status": 429, "retry_after": "7"})
    );
    assert_eq!(seen["plain"]["finish_reason"], "stop");
    assert_eq!(seen["cut"]["finish_reason"], "length");
    assert_eq!(seen["tool"]["finish_reason"], "tool_calls");
    assert_eq!(seen["plain"]["usage"][0], 2);
    assert_eq!(
        seen["embeddings"],
        json!({"vectors": 2, "dims": 8, "tokens": 3})
    );
    assert_eq!(seen["models"], json!(["mock-gpt"]));
    assert_eq!(
        seen["wrong_key"],
        json!({"status": 401, "code": "invalid_api_key"})
    );
    let requests = mock.seen();
    assert!(requests.iter().all(|r| r.vendor == Vendor::OpenAi));
    assert!(requests.iter().any(|r| r.stream && r.key_ok));
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v1/responses" && r.stream && r.key_ok)
    );
}

#[tokio::test]
async fn the_openai_sdk_accepts_the_mock_responses_api() {
    let (seen, _mock) = sdk("openai").await;
    assert_eq!(
        seen["responses_validated_events"], 12,
        "every raw event validates against the SDK's ResponseStreamEvent: created, in_progress, \
         item and part added, 4 deltas, text, part and item done, completed"
    );
    let plain = &seen["responses_plain"];
    assert_eq!(plain["text"], "mock heard: hello fleet", "{plain}");
    assert_eq!(plain["status"], "completed");
    assert_eq!(plain["object"], "response");
    assert!(
        plain["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("resp_"))
    );
    assert_eq!(
        plain["usage"],
        json!([4, 4, 8]),
        "instructions and input words in, one token per word out"
    );
    assert_eq!(
        plain["types"],
        json!(["Response", "ResponseOutputMessage", "ResponseOutputText"]),
        "the SDK parsed the mock's body into its own types"
    );
    assert_eq!(
        seen["responses_cut"],
        json!({"text": "mock heard:", "status": "incomplete", "reason": "max_output_tokens", "usage": [4, 2]})
    );
    let stream = &seen["responses_stream"];
    assert_eq!(stream["text"], plain["text"]);
    assert_eq!(stream["done_text"], plain["text"]);
    assert_eq!(stream["final_text"], plain["text"]);
    assert_eq!(stream["deltas"], 4);
    assert_eq!(stream["first"], "response.created");
    assert_eq!(stream["last"], "response.completed");
    assert_eq!(stream["status"], "completed");
    assert_eq!(stream["usage"], plain["usage"]);
    for class in [
        "ResponseCreatedEvent",
        "ResponseTextDeltaEvent",
        "ResponseTextDoneEvent",
        "ResponseCompletedEvent",
    ] {
        assert!(
            stream["classes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == class)),
            "{class} missing: {stream}"
        );
    }
    assert_eq!(
        seen["responses_stream_helper"],
        json!({"text": "mock heard: hello fleet", "usage": [4, 4]})
    );
    assert_eq!(
        seen["responses_bad"],
        json!({"status": 400, "type": "invalid_request_error"})
    );
}

#[tokio::test]
async fn the_anthropic_sdk_accepts_the_mock_messages_api() {
    let (seen, mock) = sdk("anthropic").await;
    common(&seen);
    assert_eq!(
        seen["rate_limited"],
        json!({"status": 429, "retry_after": "7", "type": "rate_limit_error"})
    );
    assert_eq!(seen["plain"]["stop_reason"], "end_turn");
    assert_eq!(seen["stream"]["stop_reason"], "end_turn");
    assert_eq!(seen["cut"]["stop_reason"], "max_tokens");
    assert_eq!(seen["tool"]["stop_reason"], "tool_use");
    assert_eq!(
        seen["plain"]["usage"][0], 4,
        "the system prompt counts as input"
    );
    assert_eq!(
        seen["wrong_key"],
        json!({"status": 401, "type": "authentication_error"})
    );
    let requests = mock.seen();
    assert!(requests.iter().all(|r| r.vendor == Vendor::Anthropic));
    assert!(
        requests
            .iter()
            .all(|r| r.headers.iter().any(|(k, _)| k == "anthropic-version"))
    );
}

#[tokio::test]
async fn the_google_genai_sdk_accepts_the_mock_gemini_api() {
    let (seen, mock) = sdk("gemini").await;
    common(&seen);
    assert_eq!(seen["rate_limited"]["status"], 429);
    assert_eq!(seen["rate_limited"]["status_text"], "RESOURCE_EXHAUSTED");
    assert!(
        seen["plain"]["finish_reason"]
            .as_str()
            .is_some_and(|f| f.ends_with("STOP")),
        "{seen}"
    );
    assert!(
        seen["cut"]["finish_reason"]
            .as_str()
            .is_some_and(|f| f.ends_with("MAX_TOKENS")),
        "{seen}"
    );
    assert_eq!(
        seen["plain"]["usage"][0], 4,
        "the system instruction counts as input"
    );
    assert_eq!(seen["wrong_key"]["status"], 401);
    let requests = mock.seen();
    assert!(requests.iter().all(|r| r.vendor == Vendor::Gemini));
    assert!(
        requests
            .iter()
            .any(|r| r.stream && r.path.ends_with(":streamGenerateContent"))
    );
    assert!(requests.iter().all(|r| r.model == "mock-gemini"));
}
