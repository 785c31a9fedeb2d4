//! OpenAI chat completions -> Gemini `generateContent`, and its answers back.
//!
//! Requests: `system`/`developer` messages become `systemInstruction`; user turns `user`,
//! assistant turns `model`; assistant `tool_calls` become `functionCall` parts and `tool`
//! messages `functionResponse` parts (named after the call they answer); `max_tokens`,
//! `temperature`, `top_p`, `stop` go into `generationConfig`; `tools` into
//! `functionDeclarations`. Answers: text parts joined, `functionCall` parts as `tool_calls`,
//! `finishReason` as `finish_reason`, `usageMetadata` as `usage`. Streams
//! (`streamGenerateContent?alt=sse`): every response becomes chunks as it arrives
//! ([`ChatChunksFromGemini`]).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{TranslateError, err};

fn text_of(content: &Value, at: &str) -> Result<String, TranslateError> {
    super::text_of(content, at, "a Gemini backend")
}

/// An OpenAI chat completions request as Gemini's: the model (for the path) and the body.
pub fn chat_request_to_gemini(
    req: &Map<String, Value>,
    model_override: Option<&str>,
) -> Result<(String, Value), TranslateError> {
    let model = model_override
        .map(str::to_string)
        .or_else(|| req.get("model").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| err("model is required"))?;
    if model.is_empty()
        || !model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(err(format!(
            "model {model:?} cannot name a Gemini model (letters, digits, - . _ only)"
        )));
    }
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| err("messages must be a non-empty array"))?;
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // tool_call_id -> function name, for the functionResponse parts.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m["role"].as_str() {
            Some("system" | "developer") => system.push(text_of(&m["content"], &at)?),
            Some("user") => push(
                &mut contents,
                "user",
                json!({"text": text_of(&m["content"], &at)?}),
            ),
            Some("assistant") => {
                let text = text_of(&m["content"], &at)?;
                if !text.is_empty() {
                    push(&mut contents, "model", json!({"text": text}));
                }
                for (k, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let name = call["function"]["name"].as_str().unwrap_or_default();
                    let args: Value = serde_json::from_str(
                        call["function"]["arguments"].as_str().unwrap_or("{}"),
                    )
                    .map_err(|e| {
                        err(format!(
                            "{at}.tool_calls[{k}].function.arguments is not JSON: {e}"
                        ))
                    })?;
                    if let Some(id) = call["id"].as_str() {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    push(
                        &mut contents,
                        "model",
                        json!({"functionCall": {"name": name, "args": args}}),
                    );
                }
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                let name = call_names.get(id).cloned().ok_or_else(|| {
                    err(format!(
                        "{at}.tool_call_id {id:?} answers no earlier assistant tool call"
                    ))
                })?;
                let result = text_of(&m["content"], &at)?;
                push(
                    &mut contents,
                    "user",
                    json!({"functionResponse": {"name": name, "response": {"content": result}}}),
                );
            }
            other => return Err(err(format!("{at}.role {other:?} is not a chat role"))),
        }
    }
    let mut body = json!({ "contents": contents });
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": system.join("\n")}]});
    }
    let mut config = Map::new();
    if let Some(n) = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
    {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.get("temperature") {
        config.insert("temperature".into(), t.clone());
    }
    if let Some(p) = req.get("top_p") {
        config.insert("topP".into(), p.clone());
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            config.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                let mut d = json!({"name": f["name"]});
                if let Some(desc) = f["description"].as_str() {
                    d["description"] = json!(desc);
                }
                if f["parameters"].is_object() {
                    d["parameters"] = f["parameters"].clone();
                }
                d
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": decls}]);
    }
    Ok((model, body))
}

/// Appends a part to the last turn when it has the same role (Gemini wants alternating turns).
fn push(contents: &mut Vec<Value>, role: &str, part: Value) {
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(parts) = last["parts"].as_array_mut()
    {
        parts.push(part);
        return;
    }
    contents.push(json!({"role": role, "parts": [part]}));
}

/// Gemini's `finishReason` as OpenAI's `finish_reason`.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "content_filter",
        _ => "stop",
    }
}

fn usage(resp: &Value) -> Option<Value> {
    let u = resp.get("usageMetadata")?;
    let p = u["promptTokenCount"].as_u64().unwrap_or(0);
    let c = u["candidatesTokenCount"].as_u64().unwrap_or(0);
    Some(json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}))
}

/// Text and function calls of a response's first candidate.
fn parts(resp: &Value) -> (String, Vec<(String, String)>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in resp["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(t) = p["text"].as_str() {
            text.push_str(t);
        }
        if let Some(fc) = p.get("functionCall") {
            calls.push((
                fc["name"].as_str().unwrap_or_default().to_string(),
                fc["args"].to_string(),
            ));
        }
    }
    (text, calls)
}

fn tool_calls(calls: &[(String, String)], first_index: usize) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({
                    "index": first_index + i,
                    "id": format!("call_{}", first_index + i),
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                })
            })
            .collect(),
    )
}

/// A Gemini `GenerateContentResponse` as an OpenAI `chat.completion` for `model`.
pub fn gemini_response_to_chat(resp: &Value, model: &str) -> Value {
    let (text, calls) = parts(resp);
    let reason = resp["candidates"][0]["finishReason"]
        .as_str()
        .unwrap_or("STOP");
    let mut message = json!({"role": "assistant", "content": text});
    let finish = if calls.is_empty() {
        finish_reason(reason)
    } else {
        message["tool_calls"] = tool_calls(&calls, 0);
        "tool_calls"
    };
    json!({
        "id": format!("chatcmpl-{}", resp["responseId"].as_str().unwrap_or("gemini")),
        "object": "chat.completion",
        "created": 0,
        "model": resp["modelVersion"].as_str().unwrap_or(model),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage(resp).unwrap_or(json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})),
    })
}

/// Gemini stream responses as `chat.completion.chunk`s.
#[derive(Debug)]
pub struct ChatChunksFromGemini {
    model: String,
    started: bool,
    calls: usize,
    finish: Option<&'static str>,
    usage: Option<Value>,
}

impl ChatChunksFromGemini {
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            started: false,
            calls: 0,
            finish: None,
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": "chatcmpl-gemini",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    /// The chunks one streamed response becomes.
    pub fn response(&mut self, resp: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        let (text, calls) = parts(resp);
        if !text.is_empty() {
            out.push(self.chunk(json!({"content": text}), None));
        }
        if !calls.is_empty() {
            out.push(self.chunk(json!({"tool_calls": tool_calls(&calls, self.calls)}), None));
            self.calls += calls.len();
        }
        if let Some(r) = resp["candidates"][0]["finishReason"].as_str() {
            self.finish = Some(if self.calls > 0 {
                "tool_calls"
            } else {
                finish_reason(r)
            });
        }
        if let Some(u) = usage(resp) {
            self.usage = Some(u);
        }
        out
    }

    /// The last chunks: the finish reason, then usage (the caller hides it unless asked).
    pub fn finish(&mut self) -> Vec<Value> {
        if !self.started {
            return Vec::new();
        }
        let mut out = vec![self.chunk(json!({}), Some(self.finish.unwrap_or("stop")))];
        if let Some(u) = self.usage.take() {
            let mut c = self.chunk(json!({}), None);
            c["choices"] = json!([]);
            c["usage"] = u;
            out.push(c);
        }
        self.started = false;
        out
    }
}

/// A Gemini error body (`{"error": {code, message, status}}`) in OpenAI's shape.
pub fn error_to_openai(body: &Value) -> Value {
    let e = &body["error"];
    let kind = match e["status"].as_str() {
        Some("UNAUTHENTICATED") => "authentication_error",
        Some("PERMISSION_DENIED") => "permission_error",
        Some("NOT_FOUND") => "not_found_error",
        Some("RESOURCE_EXHAUSTED") => "rate_limit_error",
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION") => "invalid_request_error",
        _ => "api_error",
    };
    json!({"error": {
        "message": e["message"].as_str().unwrap_or("the Gemini backend answered with an error"),
        "type": kind,
        "param": null,
        "code": e["status"],
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_chat_request_becomes_generate_content() {
        let (model, body) = chat_request_to_gemini(
            &obj(json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "rain"},
                    {"role": "user", "content": "thanks"}
                ],
                "max_tokens": 20, "temperature": 0, "stop": ["END"],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
            })),
            Some("gemini-x"),
        )
        .unwrap();
        assert_eq!(model, "gemini-x");
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "be brief"}]})
        );
        assert_eq!(
            body["generationConfig"],
            json!({"maxOutputTokens": 20, "temperature": 0, "stopSequences": ["END"]})
        );
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
        let c = body["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]})
        );
        assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "get_weather");
        assert_eq!(c[2]["parts"][1]["text"], "thanks");
    }

    #[test]
    fn bad_requests_say_what_to_change() {
        for (req, want) in [
            (
                json!({"model": "../x", "messages": [{"role": "user", "content": "x"}]}),
                "cannot name a Gemini model",
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "zz", "content": "x"}]}),
                "answers no earlier assistant tool call",
            ),
            (json!({"model": "m", "messages": []}), "non-empty"),
        ] {
            let e = chat_request_to_gemini(&obj(req), None).unwrap_err();
            assert!(e.0.contains(want), "{e}");
        }
    }

    #[test]
    fn responses_and_streams_become_chat_completions() {
        let resp = json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}, {"text": " there"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
            "modelVersion": "gemini-x", "responseId": "r1"
        });
        let chat = gemini_response_to_chat(&resp, "asked");
        assert_eq!(chat["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(chat["choices"][0]["finish_reason"], "length");
        assert_eq!(chat["usage"]["total_tokens"], 5);
        assert_eq!(chat["model"], "gemini-x");

        let mut s = ChatChunksFromGemini::new("gemini-x");
        let mut chunks = Vec::new();
        for r in [
            json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2}}),
        ] {
            chunks.extend(s.response(&r));
        }
        chunks.extend(s.finish());
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[4]["usage"]["completion_tokens"], 2);
        assert!(s.finish().is_empty(), "finish is said once");
    }

    #[test]
    fn errors_keep_their_meaning() {
        let e = error_to_openai(
            &json!({"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}),
        );
        assert_eq!(e["error"]["type"], "rate_limit_error");
    }
}
