//! The Anthropic Messages API's shapes: a `message` (plain) or its SSE events
//! (`message_start`, `content_block_*`, `message_delta`, `message_stop`), and
//! `{"type": "error", "error": {...}}` errors.

use std::time::Duration;

use hyper::Response;
use serde_json::{Value, json};

use super::{Answer, Ask, Body, answer, content_words, json_response, sse};

fn ask(body: &Value) -> Ask {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system_words = content_words(&body["system"]).len();
    let prompt_words = system_words
        + messages
            .iter()
            .map(|m| content_words(&m["content"]).len())
            .sum::<usize>();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_words(&m["content"]))
        .unwrap_or_default();
    let tools = body["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ask {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        prompt_words,
        last_user,
        max_tokens: body["max_tokens"].as_u64().map(|n| n as usize),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools,
    }
}

fn stop_reason(a: &Answer) -> &'static str {
    if a.tool_call.is_some() {
        "tool_use"
    } else if a.truncated {
        "max_tokens"
    } else {
        "end_turn"
    }
}

fn output_tokens(a: &Answer) -> usize {
    a.words.len() + usize::from(a.tool_call.is_some())
}

pub(super) fn messages(name: &str, body: &Value, delay: Duration) -> Response<Body> {
    let ask = ask(body);
    if ask.model.is_empty() || ask.max_tokens.is_none() {
        return super::error(
            super::Vendor::Anthropic,
            400,
            None,
            "model and max_tokens are required",
        );
    }
    let a = answer(name, &ask);
    let id = format!("msg_mock_{}", ask.prompt_words);
    let tool_block = a.tool_call.as_ref().map(|(name, args)| {
        let input: Value = serde_json::from_str(args).unwrap_or(Value::Null);
        (name.clone(), input)
    });
    if !ask.stream {
        let content = match &tool_block {
            Some((name, input)) => {
                json!([{"type": "tool_use", "id": "toolu_mock_0", "name": name, "input": input}])
            }
            None => json!([{"type": "text", "text": a.text()}]),
        };
        return json_response(&json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": ask.model,
            "content": content,
            "stop_reason": stop_reason(&a),
            "stop_sequence": null,
            "usage": {"input_tokens": a.prompt_tokens, "output_tokens": output_tokens(&a)},
        }));
    }
    let event = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": ask.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": a.prompt_tokens, "output_tokens": 1},
            }}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    match &tool_block {
        Some((name, input)) => {
            events.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_mock_0", "name": name, "input": {}}}),
            ));
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
            ));
        }
        None => {
            events.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            for w in &a.words {
                events.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
                ));
            }
        }
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(&a), "stop_sequence": null}, "usage": {"output_tokens": output_tokens(&a)}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse(events, delay)
}

pub(super) fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
