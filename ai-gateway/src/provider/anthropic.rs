//! Anthropic backends, and Anthropic-speaking clients of any backend.
//!
//! | client sends | backend | what happens |
//! |---|---|---|
//! | `POST /v1/chat/completions` (OpenAI) | Anthropic | translated to `/v1/messages` and back ([`Flow::ChatToMessages`]) |
//! | `POST /v1/messages` (Anthropic) | OpenAI-compatible | translated to chat completions and back ([`Flow::MessagesToChat`]) |
//! | `POST /v1/messages` | Anthropic | forwarded with the model override and the key ([`Flow::Messages`]) |
//!
//! Streams are rewritten event by event ([`crate::translate::sse`]); usage is counted from the
//! OpenAI-shaped side of every flow (an Anthropic-native stream is counted from its
//! `message_start`/`message_delta` events). Errors reach the client in its own API's shape.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::openai::{Endpoint, empty_usage, error_usage, upstream_status_usage};
use crate::config::{AiBackend, Policies};
use crate::errors::{
    ApiError, json_response, normalise_upstream_error, read_error_body, upstream_error_response,
};
use crate::translate::anthropic as tr;
use crate::translate::sse::{ChatFromMessages, MessagesFromChat, SseMap, SseTransform};
use crate::usage::{self, Recorder, SseUsage, Usage, UsageBody, UsageSource};
use crate::{Body, BoxError, RequestCtx, auth};

/// Which way a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// An OpenAI client, an Anthropic backend.
    ChatToMessages,
    /// An Anthropic client, an OpenAI-compatible backend.
    MessagesToChat,
    /// An Anthropic client, an Anthropic backend.
    Messages,
}

impl Flow {
    fn client_is_anthropic(self) -> bool {
        self != Self::ChatToMessages
    }
}

/// An error in the client's API's shape.
fn client_error(flow: Flow, e: ApiError) -> Response<Body> {
    if flow.client_is_anthropic() {
        json_response(
            e.status,
            &tr::error_to_anthropic(e.status.as_u16(), &e.body()),
        )
    } else {
        e.into_response()
    }
}

/// Anthropic's path at the backend: `pathPrefix` replaces `/v1`, `path` the whole path.
fn messages_path(ai: &AiBackend) -> String {
    if let Some(path) = &ai.path {
        return path.clone();
    }
    let prefix = ai.path_prefix.as_deref().unwrap_or("/v1");
    format!("{}/messages", prefix.trim_end_matches('/'))
}

pub async fn handle(
    ctx: RequestCtx,
    ai: &AiBackend,
    model_override: Option<&str>,
    policies: &Policies,
    req: Request<Bytes>,
    flow: Flow,
) -> Response<Body> {
    let started = ctx.started;
    // The body was read once, within the size limit, by `route::dispatch`.
    let (parts, bytes) = req.into_parts();
    let request: Map<String, Value> = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => o,
        _ => {
            return client_error(
                flow,
                ApiError::bad_request("the request body must be a JSON object".into()),
            );
        }
    };
    let stream = request.get("stream") == Some(&Value::Bool(true));
    let client_wants_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        == Some(&Value::Bool(true));
    let upstream_body = match flow {
        Flow::ChatToMessages => tr::chat_request_to_messages(&request, model_override),
        Flow::MessagesToChat => tr::messages_request_to_chat(&request, model_override),
        Flow::Messages => {
            let mut r = request.clone();
            if let Some(m) = model_override {
                r.insert("model".into(), json!(m));
            }
            Ok(Value::Object(r))
        }
    };
    let upstream_body = match upstream_body {
        Ok(b) => b,
        Err(e) => return client_error(flow, ApiError::bad_request(e.0)),
    };
    let model = upstream_body["model"].as_str().map(str::to_string);

    // Headers: the client's safe ones, minus the other API's credentials and versions.
    let mut headers = auth::upstream_headers(&parts.headers);
    headers.remove(header::CONTENT_LENGTH);
    let backend = &ai.provider;
    match flow {
        Flow::MessagesToChat => {
            headers.remove("x-api-key");
            headers.remove("anthropic-version");
            headers.remove("anthropic-beta");
        }
        Flow::ChatToMessages | Flow::Messages => {
            if !headers.contains_key("anthropic-version") {
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(auth::ANTHROPIC_VERSION),
                );
            }
        }
    }
    headers.remove(header::AUTHORIZATION);
    headers.remove("x-api-key");
    let mut client_creds = HeaderMap::new();
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        client_creds.insert(header::AUTHORIZATION, v.clone());
    }
    auth::inject(backend, policies.auth.as_ref(), &client_creds, &mut headers);

    let path = match flow {
        Flow::MessagesToChat => Endpoint::ChatCompletions.upstream_path(ai),
        _ => messages_path(ai),
    };
    let body = Bytes::from(serde_json::to_vec(&upstream_body).unwrap_or_default());
    let resp = match super::send::send(&ctx, ai, policies, Method::POST, &path, headers, body).await
    {
        Ok(r) => r,
        Err(e) => {
            ctx.record(model, None, error_usage(&e, stream));
            return client_error(flow, e);
        }
    };
    let (up_parts, up_body) = resp.into_parts();
    let status = up_parts.status;
    if !status.is_success() {
        let raw = read_error_body(up_body, 64 * 1024).await;
        ctx.record(model, None, upstream_status_usage(status, stream));
        tracing::info!(tenant = %ctx.route.tenant, route = %ctx.route.name, status = status.as_u16(), "upstream error passed on");
        let parsed: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let body = match flow {
            // An Anthropic error body to an OpenAI client.
            Flow::ChatToMessages if parsed["type"] == "error" => tr::error_to_openai(&parsed),
            Flow::ChatToMessages => normalise_upstream_error(status, &raw),
            Flow::MessagesToChat => {
                tr::error_to_anthropic(status.as_u16(), &normalise_upstream_error(status, &raw))
            }
            Flow::Messages if parsed["type"] == "error" => parsed,
            Flow::Messages => {
                tr::error_to_anthropic(status.as_u16(), &normalise_upstream_error(status, &raw))
            }
        };
        return upstream_error_response(status, &body, &up_parts.headers);
    }

    let recorder = ctx.recorder(model.clone().unwrap_or_else(|| "unknown".into()), status);
    let is_sse = up_parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if is_sse {
        let up_body: Body = up_body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
        let body: Body = match flow {
            // Anthropic events -> OpenAI chunks -> usage counted (and hidden unless asked).
            Flow::ChatToMessages => {
                let chunks = SseMap::new(up_body, ChatFromMessages::default()).boxed_unsync();
                UsageBody::new(
                    chunks,
                    SseUsage::new(client_wants_usage, started),
                    recorder,
                    ctx.permit,
                )
                .boxed_unsync()
            }
            // OpenAI chunks (usage asked for) -> usage counted -> Anthropic events.
            Flow::MessagesToChat => {
                let counted =
                    UsageBody::new(up_body, SseUsage::new(true, started), recorder, ctx.permit)
                        .boxed_unsync();
                SseMap::new(counted, MessagesFromChat::default()).boxed_unsync()
            }
            Flow::Messages => SseMap::new(
                up_body,
                CountMessages {
                    recorder: Some(recorder),
                    started,
                    input: 0,
                    output: 0,
                    first_token: None,
                    _permit: ctx.permit,
                },
            )
            .boxed_unsync(),
        };
        let mut out = Response::new(body);
        *out.headers_mut() = auth::downstream_headers(&up_parts.headers, true);
        return out;
    }

    let bytes = match Limited::new(up_body, ctx.limits.max_response_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return client_error(
                flow,
                ApiError::upstream_unreachable(
                    &ctx.route.name,
                    &format!("reading the response failed: {e}"),
                ),
            );
        }
    };
    let upstream: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (answer, prompt, completion) = match flow {
        Flow::ChatToMessages => {
            let chat = tr::messages_response_to_chat(&upstream);
            let (p, c) = (
                chat["usage"]["prompt_tokens"].as_u64(),
                chat["usage"]["completion_tokens"].as_u64(),
            );
            (chat, p, c)
        }
        Flow::MessagesToChat => {
            let (_, tokens) = usage::from_json(&bytes);
            (
                tr::chat_response_to_message(&upstream),
                tokens.map(|t| t.0),
                tokens.map(|t| t.1),
            )
        }
        Flow::Messages => {
            let (p, c) = (
                upstream["usage"]["input_tokens"].as_u64(),
                upstream["usage"]["output_tokens"].as_u64(),
            );
            (upstream.clone(), p, c)
        }
    };
    let usage = match (prompt, completion) {
        (Some(p), Some(c)) => Usage {
            prompt_tokens: p,
            completion_tokens: c,
            source: UsageSource::Reported,
            streamed: false,
            status: status.as_u16(),
            time_to_first_token: None,
            duration: None,
            error: None,
        },
        _ => empty_usage(status, false),
    };
    ctx.record(model, answer["model"].as_str().map(str::to_string), usage);
    json_response(StatusCode::OK, &answer)
}

/// An Anthropic stream passed through unchanged, its usage counted from `message_start`
/// (input) and `message_delta` (output) and recorded when it ends.
struct CountMessages {
    recorder: Option<Recorder>,
    started: std::time::Instant,
    input: u64,
    output: u64,
    first_token: Option<std::time::Duration>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CountMessages {
    fn record(&mut self) {
        if let Some(r) = self.recorder.take() {
            let key = usage::UsageKey {
                tenant: r.tenant,
                route: r.route,
                model: r.requested_model,
            };
            r.sink.record(
                key,
                Usage {
                    prompt_tokens: self.input,
                    completion_tokens: self.output,
                    source: UsageSource::Reported,
                    streamed: true,
                    status: r.status,
                    time_to_first_token: self.first_token,
                    duration: Some(r.started.elapsed()),
                    error: None,
                },
            );
        }
    }
}

impl Drop for CountMessages {
    fn drop(&mut self) {
        self.record();
    }
}

impl SseTransform for CountMessages {
    fn event(&mut self, name: Option<&str>, data: &str) -> Vec<u8> {
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            match v["type"].as_str() {
                Some("message_start") => {
                    self.input = v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
                }
                Some("content_block_delta") if self.first_token.is_none() => {
                    self.first_token = Some(self.started.elapsed());
                }
                Some("message_delta") => {
                    self.output = v["usage"]["output_tokens"].as_u64().unwrap_or(self.output);
                }
                _ => {}
            }
        }
        let mut out = String::new();
        if let Some(n) = name {
            out.push_str(&format!("event: {n}\n"));
        }
        for line in data.split('\n') {
            out.push_str(&format!("data: {line}\n"));
        }
        out.push('\n');
        out.into_bytes()
    }

    fn finish(&mut self) -> Vec<u8> {
        self.record();
        Vec::new()
    }
}
