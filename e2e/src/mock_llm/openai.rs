//! The OpenAI API's shapes: chat completions (plain and `chat.completion.chunk` SSE), models,
//! embeddings, and `{"error": {...}}` errors.

use std::time::Duration;

use hyper::Response;
use serde_json::{Value, json};

use super::{Answer, Ask, Body, answer, content_words, json_response, sse};

const CREATED: u64 = 1_760_000_000;

fn ask(body: &Value) -> Ask {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let prompt_words = messages
        .iter()
        .map(|m| content_words(&m["content"]).len())
        .sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_words(&m["content"]))
        .unwrap_or_default();
    let max_tokens = body["max_completion_tokens"]
        .as_u64()
        .or_else(|| body["max_tokens"].as_u64())
        .map(|n| n as usize);
    let tools = body["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ask {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        prompt_words,
        last_user,
        max_tokens,
        stream: body["stream"].as_bool().unwrap_or(false),
        tools,
    }
}

fn finish_reason(a: &Answer) -> &'static str {
    if a.tool_call.is_some() {
        "tool_calls"
    } else if a.truncated {
        "length"
    } else {
        "stop"
    }
}

fn usage(a: &Answer) -> Value {
    let completion = a.words.len() + usize::from(a.tool_call.is_some());
    json!({
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": a.prompt_tokens + completion,
    })
}

fn tool_calls(a: &Answer) -> Option<Value> {
    a.tool_call.as_ref().map(|(name, args)| {
        json!([{
            "index": 0,
            "id": "call_mock_0",
            "type": "function",
            "function": {"name": name, "arguments": args},
        }])
    })
}

pub(super) fn chat(name: &str, body: &Value, delay: Duration) -> Response<Body> {
    let ask = ask(body);
    if ask.model.is_empty() || body["messages"].as_array().is_none_or(|m| m.is_empty()) {
        return super::error(
            super::Vendor::OpenAi,
            400,
            None,
            "model and a non-empty messages array are required",
        );
    }
    let a = answer(name, &ask);
    let id = format!("chatcmpl-mock-{}", ask.prompt_words);
    if !ask.stream {
        let mut message = json!({"role": "assistant", "content": if a.tool_call.is_some() { Value::Null } else { Value::String(a.text()) }});
        if let Some(calls) = tool_calls(&a) {
            message["tool_calls"] = calls;
        }
        return json_response(&json!({
            "id": id,
            "object": "chat.completion",
            "created": CREATED,
            "model": ask.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(&a), "logprobs": null}],
            "usage": usage(&a),
        }));
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ask.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        a.words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    if let Some(calls) = tool_calls(&a) {
        events.push(chunk(json!({"tool_calls": calls}), Value::Null));
    }
    events.push(chunk(json!({}), json!(finish_reason(&a))));
    if body["stream_options"]["include_usage"].as_bool() == Some(true) {
        let c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": ask.model,
            "choices": [],
            "usage": usage(&a),
        });
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    sse(events, delay)
}

pub(super) fn models(name: &str) -> Response<Body> {
    json_response(&json!({
        "object": "list",
        "data": [{"id": "mock-gpt", "object": "model", "created": CREATED, "owned_by": name}],
    }))
}

pub(super) fn embeddings(body: &Value) -> Response<Body> {
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let tokens: usize = inputs.iter().map(|s| s.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let v: Vec<f32> = (0..8).map(|k| ((s.len() + k) % 7) as f32 / 7.0).collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    json_response(&json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

pub(super) fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", "invalid_api_key"),
        429 => ("rate_limit_exceeded", "rate_limit_exceeded"),
        400 | 404 => ("invalid_request_error", "invalid_request"),
        _ => ("server_error", "server_error"),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}
