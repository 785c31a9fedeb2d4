//! Gemini backends: OpenAI chat completions clients, translated to `generateContent`
//! (`streamGenerateContent?alt=sse` for streams) and back ([`crate::translate::gemini`]). The key
//! goes in `x-goog-api-key`; usage is counted from the OpenAI-shaped answer; errors reach the
//! client in OpenAI's shape with the backend's status (and Retry-After).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::openai::upstream_status_usage;
use crate::config::{AiBackend, Policies};
use crate::errors::{
    ApiError, json_response, normalise_upstream_error, read_error_body, upstream_error_response,
};
use crate::translate::gemini as tr;
use crate::translate::sse::{ChatFromGemini, SseMap};
use crate::usage::{SseUsage, Usage, UsageBody, UsageSource};
use crate::{Body, BoxError, RequestCtx, auth};

/// Gemini's path for `model`: `pathPrefix` replaces `/v1beta`, `path` the whole path.
fn path(ai: &AiBackend, model: &str, stream: bool) -> String {
    if let Some(p) = &ai.path {
        return p.clone();
    }
    let prefix = ai.path_prefix.as_deref().unwrap_or("/v1beta");
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!("{}/models/{model}:{method}", prefix.trim_end_matches('/'))
}

pub async fn handle(
    ctx: RequestCtx,
    ai: &AiBackend,
    model_override: Option<&str>,
    policies: &Policies,
    req: Request<Bytes>,
) -> Response<Body> {
    let started = ctx.started;
    // The body was read once, within the size limit, by `route::dispatch`.
    let (parts, bytes) = req.into_parts();
    let request: Map<String, Value> = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => o,
        _ => {
            return ApiError::bad_request("the request body must be a JSON object".into())
                .into_response();
        }
    };
    let stream = request.get("stream") == Some(&Value::Bool(true));
    let client_wants_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        == Some(&Value::Bool(true));
    let (model, upstream_body) = match tr::chat_request_to_gemini(&request, model_override) {
        Ok(r) => r,
        Err(e) => return ctx.answer_error(ApiError::bad_request(e.0), None),
    };

    let mut headers = auth::upstream_headers(&parts.headers);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::AUTHORIZATION);
    let mut client_creds = HeaderMap::new();
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        client_creds.insert(header::AUTHORIZATION, v.clone());
    }
    auth::inject(
        &ai.provider,
        policies.auth.as_ref(),
        &client_creds,
        &mut headers,
    );
    let body = Bytes::from(serde_json::to_vec(&upstream_body).unwrap_or_default());
    let resp = match super::send::send(
        &ctx,
        ai,
        policies,
        Method::POST,
        &path(ai, &model, stream),
        headers,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return ctx.answer_error(e, Some(model)),
    };
    let (up_parts, up_body) = resp.into_parts();
    let status = up_parts.status;
    if !status.is_success() {
        let raw = read_error_body(up_body, 64 * 1024).await;
        ctx.record(Some(model), None, upstream_status_usage(status, stream));
        let parsed: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let body = if parsed["error"]["status"].is_string() {
            tr::error_to_openai(&parsed)
        } else {
            normalise_upstream_error(status, &raw)
        };
        return upstream_error_response(status, &body, &up_parts.headers);
    }
    if stream {
        let recorder = ctx.recorder(model.clone(), status);
        let up_body: Body = up_body.map_err(|e| Box::new(e) as BoxError).boxed_unsync();
        let chunks = SseMap::new(
            up_body,
            ChatFromGemini(tr::ChatChunksFromGemini::new(&model)),
        )
        .boxed_unsync();
        let counted = UsageBody::new(
            chunks,
            SseUsage::new(client_wants_usage, started),
            recorder,
            ctx.permit,
        );
        let mut out = Response::new(counted.boxed_unsync());
        let mut headers = auth::downstream_headers(&up_parts.headers, true);
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/event-stream"),
        );
        *out.headers_mut() = headers;
        return out;
    }
    let bytes = match Limited::new(up_body, ctx.limits.max_response_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return ctx.answer_error(
                ApiError::upstream_unreachable(
                    &ctx.route.name,
                    &format!("reading the response failed: {e}"),
                ),
                Some(model),
            );
        }
    };
    let upstream: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let chat = tr::gemini_response_to_chat(&upstream, &model);
    let usage = Usage {
        prompt_tokens: chat["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: chat["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        source: if upstream.get("usageMetadata").is_some() {
            UsageSource::Reported
        } else {
            UsageSource::None
        },
        streamed: false,
        status: status.as_u16(),
        time_to_first_token: None,
        duration: None,
        error: None,
    };
    ctx.record(
        Some(model),
        chat["model"].as_str().map(str::to_string),
        usage,
    );
    json_response(StatusCode::OK, &chat)
}
