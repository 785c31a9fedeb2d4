//! OpenAI chat completions <-> Anthropic Messages.
//!
//! Requests: OpenAI `system`/`developer` messages become Anthropic's `system`; `tool` messages
//! become `tool_result` blocks of a user turn; assistant `tool_calls` become `tool_use` blocks;
//! `max_tokens` (or `max_completion_tokens`) is required by Anthropic and defaults to
//! [`DEFAULT_MAX_TOKENS`]; `stop` becomes `stop_sequences`; `tools`/`tool_choice` map one to one.
//! Responses: text blocks joined into `content`, `tool_use` blocks into `tool_calls` (arguments
//! as a JSON string), `stop_reason` to `finish_reason`, `usage` input/output to
//! prompt/completion tokens. Streams: [`ChatChunksFromMessages`] turns Anthropic's SSE events
//! into `chat.completion.chunk`s as they arrive.

use serde_json::{Map, Value, json};

use super::{TranslateError, err};

/// `max_tokens` sent to Anthropic when the OpenAI request has none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn text_of(content: &Value, at: &str) -> Result<String, TranslateError> {
    super::text_of(content, at, "an Anthropic backend")
}

/// An OpenAI chat completions request as an Anthropic Messages request.
pub fn chat_request_to_messages(
    req: &Map<String, Value>,
    model_override: Option<&str>,
) -> Result<Value, TranslateError> {
    let model = model_override
        .map(str::to_string)
        .or_else(|| req.get("model").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| err("model is required"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| err("messages must be a non-empty array"))?;

    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m["role"].as_str() {
            Some("system" | "developer") => system.push(text_of(&m["content"], &at)?),
            Some("user") => push_turn(
                &mut out,
                "user",
                vec![text_block(text_of(&m["content"], &at)?)],
            ),
            Some("assistant") => {
                let mut blocks = Vec::new();
                let text = text_of(&m["content"], &at)?;
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
                for (k, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let args = call["function"]["arguments"].as_str().unwrap_or("{}");
                    let input: Value = serde_json::from_str(args).map_err(|e| {
                        err(format!(
                            "{at}.tool_calls[{k}].function.arguments is not JSON: {e}"
                        ))
                    })?;
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "input": input,
                    }));
                }
                push_turn(&mut out, "assistant", blocks);
            }
            Some("tool") => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": m["tool_call_id"],
                    "content": text_of(&m["content"], &at)?,
                });
                push_turn(&mut out, "user", vec![block]);
            }
            other => return Err(err(format!("{at}.role {other:?} is not a chat role"))),
        }
    }

    let max_tokens = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({ "model": model, "max_tokens": max_tokens, "messages": out });
    if !system.is_empty() {
        body["system"] = Value::String(system.join("\n"));
    }
    for key in ["temperature", "top_p", "stream"] {
        if let Some(v) = req.get(key) {
            body[key] = v.clone();
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => body["stop_sequences"] = json!([s]),
        Some(Value::Array(a)) => body["stop_sequences"] = Value::Array(a.clone()),
        _ => {}
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                let mut tool = json!({
                    "name": f["name"],
                    "input_schema": if f["parameters"].is_object() { f["parameters"].clone() } else { json!({"type": "object"}) },
                });
                if let Some(d) = f["description"].as_str() {
                    tool["description"] = json!(d);
                }
                tool
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    match req.get("tool_choice") {
        Some(Value::String(s)) if s == "auto" => body["tool_choice"] = json!({"type": "auto"}),
        Some(Value::String(s)) if s == "required" => body["tool_choice"] = json!({"type": "any"}),
        Some(Value::String(s)) if s == "none" => body["tool_choice"] = json!({"type": "none"}),
        Some(Value::Object(o)) => {
            body["tool_choice"] = json!({"type": "tool", "name": o.get("function").map(|f| f["name"].clone()).unwrap_or(Value::Null)})
        }
        _ => {}
    }
    Ok(body)
}

fn text_block(text: String) -> Value {
    json!({"type": "text", "text": text})
}

/// Appends blocks to the last turn when it has the same role (Anthropic wants alternating
/// turns; OpenAI allows e.g. several tool results in a row).
fn push_turn(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    out.push(json!({"role": role, "content": blocks}));
}

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// An Anthropic `message` as an OpenAI `chat.completion`.
pub fn messages_response_to_chat(resp: &Value) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in resp["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let input = resp["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let output = resp["usage"]["output_tokens"].as_u64().unwrap_or(0);
    json!({
        "id": resp["id"],
        "object": "chat.completion",
        "created": 0,
        "model": resp["model"],
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(resp["stop_reason"].as_str().unwrap_or("end_turn")),
        }],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
    })
}

/// Anthropic's SSE events as `chat.completion.chunk`s, one event at a time.
#[derive(Debug, Default)]
pub struct ChatChunksFromMessages {
    id: String,
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    /// Index of each content block that is a tool call, in OpenAI's tool_calls numbering.
    tool_index: Vec<(u64, usize)>,
    finish: Option<&'static str>,
}

impl ChatChunksFromMessages {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    /// The chunks one Anthropic event (its `data` JSON) becomes.
    pub fn event(&mut self, data: &Value) -> Vec<Value> {
        match data["type"].as_str() {
            Some("message_start") => {
                let m = &data["message"];
                self.id = m["id"].as_str().unwrap_or_default().to_string();
                self.model = m["model"].as_str().unwrap_or_default().to_string();
                self.input_tokens = m["usage"]["input_tokens"].as_u64().unwrap_or(0);
                vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            Some("content_block_start") if data["content_block"]["type"] == "tool_use" => {
                let index = data["index"].as_u64().unwrap_or(0);
                let n = self.tool_index.len();
                self.tool_index.push((index, n));
                let b = &data["content_block"];
                vec![self.chunk(
                    json!({"tool_calls": [{"index": n, "id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": ""}}]}),
                    None,
                )]
            }
            Some("content_block_delta") => {
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => vec![self.chunk(json!({"content": d["text"]}), None)],
                    Some("input_json_delta") => {
                        let index = data["index"].as_u64().unwrap_or(0);
                        let n = self
                            .tool_index
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map_or(0, |(_, n)| *n);
                        vec![self.chunk(
                            json!({"tool_calls": [{"index": n, "function": {"arguments": d["partial_json"]}}]}),
                            None,
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            Some("message_delta") => {
                self.output_tokens = data["usage"]["output_tokens"]
                    .as_u64()
                    .unwrap_or(self.output_tokens);
                self.finish = data["delta"]["stop_reason"].as_str().map(finish_reason);
                Vec::new()
            }
            Some("message_stop") => {
                let mut last = vec![self.chunk(json!({}), Some(self.finish.unwrap_or("stop")))];
                let mut usage = self.chunk(json!({}), None);
                usage["choices"] = json!([]);
                usage["usage"] = json!({
                    "prompt_tokens": self.input_tokens,
                    "completion_tokens": self.output_tokens,
                    "total_tokens": self.input_tokens + self.output_tokens,
                });
                last.push(usage);
                last
            }
            _ => Vec::new(),
        }
    }
}

/// An Anthropic error body (`{"type":"error","error":{type,message}}`) in OpenAI's shape.
pub fn error_to_openai(body: &Value) -> Value {
    let e = &body["error"];
    let kind = match e["type"].as_str() {
        Some("authentication_error") => "authentication_error",
        Some("permission_error") => "permission_error",
        Some("not_found_error") => "not_found_error",
        Some("rate_limit_error") => "rate_limit_error",
        Some("invalid_request_error") => "invalid_request_error",
        _ => "api_error",
    };
    json!({"error": {
        "message": e["message"].as_str().unwrap_or("the Anthropic backend answered with an error"),
        "type": kind,
        "param": null,
        "code": e["type"],
    }})
}

// ---- The other way: an Anthropic client, an OpenAI-compatible backend. ----

/// The text of an Anthropic content (a string or blocks); tool blocks are handled by callers.
fn anthropic_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An Anthropic Messages request as an OpenAI chat completions request.
pub fn messages_request_to_chat(
    req: &Map<String, Value>,
    model_override: Option<&str>,
) -> Result<Value, TranslateError> {
    let model = model_override
        .map(str::to_string)
        .or_else(|| req.get("model").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| err("model is required"))?;
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| err("max_tokens is required"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| err("messages must be a non-empty array"))?;
    let mut out = Vec::new();
    if let Some(system) = req.get("system") {
        out.push(json!({"role": "system", "content": anthropic_text(system)}));
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(err(format!("messages[{i}].role must be user or assistant")));
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![text_block(s.clone())],
            Value::Array(b) => b.clone(),
            _ => {
                return Err(err(format!(
                    "messages[{i}].content must be a string or blocks"
                )));
            }
        };
        let mut text = Vec::new();
        let mut calls = Vec::new();
        for (k, b) in blocks.iter().enumerate() {
            match b["type"].as_str() {
                Some("text") => text.push(b["text"].as_str().unwrap_or_default().to_string()),
                Some("tool_use") if role == "assistant" => calls.push(json!({
                    "id": b["id"], "type": "function",
                    "function": {"name": b["name"], "arguments": b["input"].to_string()},
                })),
                Some("tool_result") if role == "user" => out.push(json!({
                    "role": "tool",
                    "tool_call_id": b["tool_use_id"],
                    "content": anthropic_text(&b["content"]),
                })),
                other => {
                    return Err(err(format!(
                        "messages[{i}].content[{k}]: block type {other:?} cannot be sent to an OpenAI-compatible backend"
                    )));
                }
            }
        }
        if !text.is_empty() || !calls.is_empty() {
            let mut msg = json!({"role": role, "content": text.join("\n")});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
    }
    let mut body = json!({"model": model, "max_tokens": max_tokens, "messages": out});
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key) {
            body[key] = v.clone();
        }
    }
    if let Some(stop) = req.get("stop_sequences") {
        body["stop"] = stop.clone();
    }
    if req.get("stream") == Some(&Value::Bool(true)) {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        body["tools"] = Value::Array(
            tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t["name"],
                        "description": t["description"].as_str().unwrap_or_default(),
                        "parameters": t["input_schema"],
                    }})
                })
                .collect(),
        );
    }
    match req.get("tool_choice").and_then(|c| c["type"].as_str()) {
        Some("auto") => body["tool_choice"] = json!("auto"),
        Some("any") => body["tool_choice"] = json!("required"),
        Some("none") => body["tool_choice"] = json!("none"),
        Some("tool") => {
            body["tool_choice"] =
                json!({"type": "function", "function": {"name": req["tool_choice"]["name"]}})
        }
        _ => {}
    }
    Ok(body)
}

/// OpenAI's `finish_reason` as Anthropic's `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// An OpenAI `chat.completion` as an Anthropic `message`.
pub fn chat_response_to_message(resp: &Value) -> Value {
    let choice = &resp["choices"][0];
    let mut content = Vec::new();
    if let Some(text) = choice["message"]["content"].as_str()
        && !text.is_empty()
    {
        content.push(text_block(text.to_string()));
    }
    for call in choice["message"]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let input: Value = call["function"]["arguments"]
            .as_str()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or(json!({}));
        content.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
    }
    json!({
        "id": resp["id"],
        "type": "message",
        "role": "assistant",
        "model": resp["model"],
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": {
            "input_tokens": resp["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            "output_tokens": resp["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        },
    })
}

/// OpenAI `chat.completion.chunk`s as Anthropic SSE events (`(event name, data)` pairs).
#[derive(Debug, Default)]
pub struct MessageEventsFromChat {
    started: bool,
    /// The open content block: its index and whether it is text (else a tool call).
    open: Option<(u64, bool)>,
    next_index: u64,
    stop: Option<&'static str>,
    input_tokens: u64,
    output_tokens: u64,
    done: bool,
}

impl MessageEventsFromChat {
    fn open_block(&mut self, out: &mut Vec<(String, Value)>, block: Value, text: bool) {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, text));
        out.push((
            "content_block_start".into(),
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<(String, Value)>) {
        if let Some((index, _)) = self.open.take() {
            out.push((
                "content_block_stop".into(),
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// The events one OpenAI chunk becomes.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(("message_start".into(), json!({"type": "message_start", "message": {
                "id": chunk["id"], "type": "message", "role": "assistant", "model": chunk["model"],
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }})));
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(self.input_tokens);
            self.output_tokens = u["completion_tokens"]
                .as_u64()
                .unwrap_or(self.output_tokens);
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let d = &choice["delta"];
            if let Some(text) = d["content"].as_str().filter(|t| !t.is_empty()) {
                if !matches!(self.open, Some((_, true))) {
                    self.open_block(&mut out, json!({"type": "text", "text": ""}), true);
                }
                let index = self.open.map_or(0, |(i, _)| i);
                out.push(("content_block_delta".into(), json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})));
            }
            for call in d["tool_calls"].as_array().into_iter().flatten() {
                if let Some(name) = call["function"]["name"].as_str() {
                    self.open_block(
                        &mut out,
                        json!({"type": "tool_use", "id": call["id"], "name": name, "input": {}}),
                        false,
                    );
                }
                if let Some(args) = call["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                {
                    let index = self.open.map_or(0, |(i, _)| i);
                    out.push(("content_block_delta".into(), json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}})));
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.stop = Some(stop_reason(f));
            }
        }
        out
    }

    /// The closing events, once the OpenAI stream ended (`[DONE]` or end of body).
    pub fn finish(&mut self) -> Vec<(String, Value)> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        self.close_block(&mut out);
        out.push((
            "message_delta".into(),
            json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}}),
        ));
        out.push(("message_stop".into(), json!({"type": "message_stop"})));
        out
    }
}

/// An OpenAI error body in Anthropic's shape.
pub fn error_to_anthropic(status: u16, body: &Value) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("the OpenAI-compatible backend answered with an error");
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn system_tools_and_results_map_to_messages() {
        let req = obj(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "rain"},
                {"role": "user", "content": "thanks"}
            ],
            "max_tokens": 50, "temperature": 0, "stop": "END", "stream": true,
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        }));
        let out = chat_request_to_messages(&req, Some("claude-x")).unwrap();
        assert_eq!(out["model"], "claude-x");
        assert_eq!(out["system"], "be brief");
        assert_eq!(out["max_tokens"], 50);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["stream"], true);
        assert_eq!(out["tool_choice"], json!({"type": "any"}));
        assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
        let m = out["messages"].as_array().unwrap();
        assert_eq!(
            m.len(),
            3,
            "tool result and the next user text share one user turn: {m:?}"
        );
        assert_eq!(
            m[1]["content"][0],
            json!({"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Oslo"}})
        );
        assert_eq!(m[2]["content"][0]["type"], "tool_result");
        assert_eq!(m[2]["content"][1]["text"], "thanks");
    }

    #[test]
    fn max_tokens_defaults_and_bad_requests_say_what_to_change() {
        let out = chat_request_to_messages(
            &obj(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
            None,
        )
        .unwrap();
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
        for (req, want) in [
            (
                json!({"model": "m", "messages": []}),
                "messages must be a non-empty array",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}]}),
                "model is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}]}),
                "arguments is not JSON",
            ),
        ] {
            let e = chat_request_to_messages(&obj(req), None).unwrap_err();
            assert!(e.0.contains(want), "{e} should contain {want}");
        }
    }

    #[test]
    fn a_message_becomes_a_chat_completion() {
        let chat = messages_response_to_chat(&json!({
            "id": "msg_1", "model": "claude-x", "stop_reason": "tool_use",
            "content": [{"type": "text", "text": "let me check"},
                        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}],
            "usage": {"input_tokens": 7, "output_tokens": 3}
        }));
        let c = &chat["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(c["message"]["content"], "let me check");
        assert_eq!(
            c["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Oslo\"}"
        );
        assert_eq!(
            chat["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
        );
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }

    #[test]
    fn stream_events_become_chunks_with_usage_last() {
        let mut s = ChatChunksFromMessages::default();
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}}),
            json!({"type": "message_stop"}),
        ];
        let chunks: Vec<Value> = events.iter().flat_map(|e| s.event(e)).collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(
            chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[5]["choices"], json!([]));
        assert_eq!(
            chunks[5]["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
        );
        assert!(
            chunks
                .iter()
                .all(|c| c["id"] == "msg_1" && c["object"] == "chat.completion.chunk")
        );
    }

    #[test]
    fn errors_keep_their_meaning() {
        let e = error_to_openai(
            &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        );
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["message"], "slow down");
    }

    #[test]
    fn an_anthropic_request_becomes_a_chat_request() {
        let req = obj(json!({
            "model": "claude", "max_tokens": 20, "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "rain"}, {"type": "text", "text": "ok"}]}
            ],
            "stream": true, "stop_sequences": ["END"],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}
        }));
        let out = messages_request_to_chat(&req, Some("tiny")).unwrap();
        assert_eq!(out["model"], "tiny");
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
        assert_eq!(out["tool_choice"], "required");
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "t1", "content": "rain"})
        );
        assert_eq!(m[4], json!({"role": "user", "content": "ok"}));
        let e = messages_request_to_chat(
            &obj(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("max_tokens is required"), "{e}");
    }

    #[test]
    fn a_chat_completion_becomes_a_message() {
        let m = chat_response_to_message(&json!({
            "id": "c1", "model": "tiny",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}
        }));
        assert_eq!(m["content"], json!([{"type": "text", "text": "Hi"}]));
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"], json!({"input_tokens": 3, "output_tokens": 2}));
    }

    #[test]
    fn chat_chunks_become_message_events() {
        let mut s = MessageEventsFromChat::default();
        let mut events = Vec::new();
        for c in [
            json!({"id": "c1", "model": "tiny", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"id": "c1", "model": "tiny", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
            json!({"id": "c1", "model": "tiny", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t1", "function": {"name": "f", "arguments": ""}}]}}]}),
            json!({"id": "c1", "model": "tiny", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]}),
            json!({"id": "c1", "model": "tiny", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "model": "tiny", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
        ] {
            events.extend(s.chunk(&c));
        }
        events.extend(s.finish());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[4].1["content_block"]["name"], "f");
        assert_eq!(events[4].1["index"], 1);
        assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[7].1["usage"]["output_tokens"], 4);
        assert!(s.finish().is_empty(), "finish is idempotent");
    }
}
