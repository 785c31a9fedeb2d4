//! The Gemini API's shapes: `GenerateContentResponse` (plain, or one per SSE `data:` line for
//! `streamGenerateContent?alt=sse`), and `{"error": {code, message, status}}` errors.

use std::time::Duration;

use hyper::Response;
use serde_json::{Value, json};

use super::{Ask, Body, answer, content_words, json_response, sse};

/// The model of `/v1beta/models/<model>:<method>`.
pub(super) fn model_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1beta/models/")?;
    let (model, _) = rest.split_once(':')?;
    Some(model.to_string())
}

fn ask(path: &str, body: &Value, stream: bool) -> Ask {
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    let words_of = |c: &Value| content_words(&c["parts"]);
    let prompt_words = words_of(&body["systemInstruction"]).len()
        + contents.iter().map(|c| words_of(c).len()).sum::<usize>();
    let last_user = contents
        .iter()
        .rev()
        .find(|c| c["role"] == "user" || c["role"].is_null())
        .map(words_of)
        .unwrap_or_default();
    let tools = body["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .flat_map(|t| {
                    t["functionDeclarations"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ask {
        model: model_of(path).unwrap_or_default(),
        prompt_words,
        last_user,
        max_tokens: body["generationConfig"]["maxOutputTokens"]
            .as_u64()
            .map(|n| n as usize),
        stream,
        tools,
    }
}

pub(super) fn generate(
    name: &str,
    path: &str,
    body: &Value,
    stream: bool,
    delay: Duration,
) -> Response<Body> {
    let ask = ask(path, body, stream);
    if body["contents"].as_array().is_none_or(|c| c.is_empty()) {
        return super::error(super::Vendor::Gemini, 400, None, "contents is required");
    }
    let a = answer(name, &ask);
    let finish = if a.truncated { "MAX_TOKENS" } else { "STOP" };
    let output = a.words.len() + usize::from(a.tool_call.is_some());
    let usage = json!({
        "promptTokenCount": a.prompt_tokens,
        "candidatesTokenCount": output,
        "totalTokenCount": a.prompt_tokens + output,
    });
    let response = |parts: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        let mut r =
            json!({"candidates": [candidate], "modelVersion": ask.model, "responseId": "mock"});
        if let Some(u) = usage {
            r["usageMetadata"] = u.clone();
        }
        r
    };
    let tool_parts = a.tool_call.as_ref().map(|(name, args)| {
        let args: Value = serde_json::from_str(args).unwrap_or(Value::Null);
        json!([{"functionCall": {"name": name, "args": args}}])
    });
    if !stream {
        let parts = tool_parts.unwrap_or_else(|| json!([{"text": a.text()}]));
        return json_response(&response(parts, Some(finish), Some(&usage)));
    }
    let mut events: Vec<String> = match tool_parts {
        Some(parts) => vec![response(parts, None, None)],
        None => a
            .words
            .iter()
            .map(|w| response(json!([{"text": w}]), None, None))
            .collect(),
    }
    .into_iter()
    .map(|r| format!("data: {r}\r\n\r\n"))
    .collect();
    let last = response(json!([{"text": ""}]), Some(finish), Some(&usage));
    events.push(format!("data: {last}\r\n\r\n"));
    sse(events, delay)
}

pub(super) fn error_body(status: u16, message: &str) -> Value {
    let s = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": message, "status": s}})
}
