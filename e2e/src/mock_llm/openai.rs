//! The OpenAI API's shapes: chat completions (plain and `chat.completion.chunk` SSE), the
//! Responses API (plain `response` objects and `response.*` SSE events), models, embeddings, and
//! `{"error": {...}}` errors.

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

/// The Responses API's ask: `input` as a string (one user message) or a list of messages
/// (`{"role", "content"}`, with or without `"type": "message"`; content a string or
/// `input_text` parts); `instructions` count as input; `max_output_tokens` cuts the answer.
fn responses_ask(body: &Value) -> Option<Ask> {
    let (prompt_words, last_user) = match &body["input"] {
        Value::String(s) => {
            let words = content_words(&Value::String(s.clone()));
            (words.len(), words)
        }
        Value::Array(items) if !items.is_empty() => {
            let messages: Vec<&Value> = items.iter().filter(|i| i.get("role").is_some()).collect();
            let words = messages
                .iter()
                .map(|m| content_words(&m["content"]).len())
                .sum();
            let last_user = messages
                .iter()
                .rev()
                .find(|m| m["role"] == "user")
                .map(|m| content_words(&m["content"]))
                .unwrap_or_default();
            (words, last_user)
        }
        _ => return None,
    };
    let instructions = content_words(&body["instructions"]).len();
    Some(Ask {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        prompt_words: prompt_words + instructions,
        last_user,
        max_tokens: body["max_output_tokens"].as_u64().map(|n| n as usize),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools: Vec::new(),
    })
}

/// A `response` object: `status` `in_progress` (no output, no usage yet), `completed` or
/// `incomplete` (cut at `max_output_tokens`).
fn response_object(id: &str, ask: &Ask, body: &Value, a: &Answer, status: &str) -> Value {
    let done = status != "in_progress";
    let output = if done {
        json!([message_item(id, a, "completed")])
    } else {
        json!([])
    };
    let usage = if done {
        let output_tokens = a.words.len();
        json!({
            "input_tokens": a.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": a.prompt_tokens + output_tokens,
        })
    } else {
        Value::Null
    };
    let incomplete = if status == "incomplete" {
        json!({"reason": "max_output_tokens"})
    } else {
        Value::Null
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "model": ask.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    })
}

/// The assistant's message item of a response.
fn message_item(response_id: &str, a: &Answer, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([{"type": "output_text", "text": a.text(), "annotations": [], "logprobs": []}])
    };
    json!({
        "id": format!("msg_{}", response_id.trim_start_matches("resp_")),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

/// `POST /v1/responses`, plain or streamed as OpenAI streams it: `response.created`,
/// `response.in_progress`, the message item and its text part added, one
/// `response.output_text.delta` per token, the text, part and item done, then
/// `response.completed` (or `response.incomplete`) with the whole response and its usage.
pub(super) fn responses(name: &str, body: &Value, delay: Duration) -> Response<Body> {
    let ask = match responses_ask(body) {
        Some(ask) if !ask.model.is_empty() => ask,
        _ => {
            return super::error(
                super::Vendor::OpenAi,
                400,
                None,
                "model and input (a string or a non-empty list of messages) are required",
            );
        }
    };
    let a = answer(name, &ask);
    let id = format!("resp_mock{}", ask.prompt_words);
    let status = if a.truncated {
        "incomplete"
    } else {
        "completed"
    };
    if !ask.stream {
        return json_response(&response_object(&id, &ask, body, &a, status));
    }
    let item_id = message_item(&id, &a, "in_progress")["id"].clone();
    let mut events: Vec<Value> = vec![
        json!({"type": "response.created", "response": response_object(&id, &ask, body, &a, "in_progress")}),
        json!({"type": "response.in_progress", "response": response_object(&id, &ask, body, &a, "in_progress")}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": message_item(&id, &a, "in_progress")}),
        json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
    ];
    events.extend(a.words.iter().map(|w| {
        json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0,
               "content_index": 0, "delta": w, "logprobs": []})
    }));
    events.extend([
        json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0,
               "content_index": 0, "text": a.text(), "logprobs": []}),
        json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "text": a.text(), "annotations": [], "logprobs": []}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": message_item(&id, &a, "completed")}),
        json!({"type": format!("response.{status}"), "response": response_object(&id, &ask, body, &a, status)}),
    ]);
    let frames = events
        .into_iter()
        .enumerate()
        .map(|(n, mut e)| {
            e["sequence_number"] = json!(n);
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    sse(frames, delay)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_responses_api_takes_a_string_or_messages() {
        let s = responses_ask(
            &json!({"model": "m", "input": "hello fleet", "instructions": "be brief"}),
        )
        .unwrap();
        assert_eq!((s.prompt_words, s.last_user.len()), (4, 2));
        let list = responses_ask(&json!({"model": "m", "max_output_tokens": 2, "input": [
            {"role": "developer", "content": "be brief"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello fleet"}]},
        ]}))
        .unwrap();
        assert_eq!(list.last_user, ["hello", "fleet"]);
        assert_eq!((list.prompt_words, list.max_tokens), (4, Some(2)));
        assert!(responses_ask(&json!({"model": "m", "input": []})).is_none());
        assert!(responses_ask(&json!({"model": "m"})).is_none());
    }
}
