//! OpenAI-compatible providers (OpenAI itself, llama.cpp, vLLM, Ollama, ...).
//!
//! Endpoints: `POST /v1/chat/completions` (plain and SSE), `POST /v1/responses` (OpenAI's
//! Responses API, plain and SSE), `POST /v1/embeddings`, `GET /v1/models`; anything else is a
//! 404 in OpenAI's shape. The backend's overrides apply: `pathPrefix` replaces `/v1`, `path`
//! replaces the whole chat completions path (only that one), `model` replaces the request's
//! model. A streamed chat asks the upstream for usage (`stream_options.include_usage: true`)
//! and remembers whether the client asked, so [`crate::usage::SseUsage`] can hide it
//! otherwise. A Responses stream always ends with `response.completed` carrying the usage, so
//! it is passed on untouched and counted from that event.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::config::{AiBackend, Policies, Provider};
use crate::errors::{ApiError, normalise_upstream_error, read_error_body, upstream_error_response};
use crate::usage::{self, Recorder, SseUsage, Usage, UsageBody, UsageKey, UsageSource};
use crate::{Body, RequestCtx, auth};

/// The endpoints served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    /// OpenAI's Responses API (`POST /v1/responses`).
    Responses,
    Embeddings,
    Models,
}

impl Endpoint {
    pub fn of(method: &Method, path: &str) -> Option<Self> {
        match (method, path.trim_end_matches('/')) {
            (&Method::POST, "/v1/chat/completions") => Some(Self::ChatCompletions),
            (&Method::POST, "/v1/responses") => Some(Self::Responses),
            (&Method::POST, "/v1/embeddings") => Some(Self::Embeddings),
            (&Method::GET, "/v1/models") => Some(Self::Models),
            _ => None,
        }
    }

    /// The path at the upstream, with the backend's overrides.
    pub fn upstream_path(self, ai: &AiBackend) -> String {
        if let (Self::ChatCompletions, Some(path)) = (self, &ai.path) {
            return path.clone();
        }
        let prefix = ai
            .path_prefix
            .as_deref()
            .unwrap_or("/v1")
            .trim_end_matches('/');
        let tail = match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Responses => "/responses",
            Self::Embeddings => "/embeddings",
            Self::Models => "/models",
        };
        format!("{prefix}{tail}")
    }
}

/// What the request rewrite decided.
#[derive(Debug, PartialEq)]
pub struct Rewritten {
    pub body: Bytes,
    pub model: Option<String>,
    pub stream: bool,
    /// Whether the client sees the usage the upstream streams: asked for with
    /// `stream_options.include_usage` (chat completions), always for the Responses API (its
    /// `response.completed` event carries it).
    pub client_wants_usage: bool,
}

/// Applies the model override and, for chat completion streams, asks for usage. The body must
/// be a JSON object.
pub fn rewrite_body(
    endpoint: Endpoint,
    body: &[u8],
    model_override: Option<&str>,
) -> Result<Rewritten, ApiError> {
    let mut obj: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "the request body is not valid JSON: {e}"
            )));
        }
    };
    let mut changed = false;
    if let Some(model) = model_override {
        obj.insert("model".into(), Value::String(model.into()));
        changed = true;
    }
    let model = obj.get("model").and_then(Value::as_str).map(str::to_string);
    let stream = matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Responses)
        && obj.get("stream") == Some(&Value::Bool(true));
    let mut client_wants_usage = endpoint == Endpoint::Responses;
    if stream && endpoint == Endpoint::ChatCompletions {
        let opts = obj
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if !opts.is_object() {
            return Err(ApiError::bad_request(
                "stream_options must be an object".into(),
            ));
        }
        client_wants_usage = opts.get("include_usage") == Some(&Value::Bool(true));
        if !client_wants_usage {
            opts["include_usage"] = Value::Bool(true);
            changed = true;
        }
    }
    let body = if changed {
        Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
    } else {
        Bytes::copy_from_slice(body)
    };
    Ok(Rewritten {
        body,
        model,
        stream,
        client_wants_usage,
    })
}

pub async fn handle(
    ctx: RequestCtx,
    ai: &AiBackend,
    model_override: Option<&str>,
    policies: &Policies,
    req: Request<Bytes>,
) -> Response<Body> {
    let started = ctx.started;
    let (parts, bytes) = req.into_parts();
    let Some(endpoint) = Endpoint::of(&parts.method, parts.uri.path()) else {
        return ApiError::unsupported_path(
            &parts.method,
            parts.uri.path(),
            super::served_paths(&Provider::OpenAi { model: None }),
        )
        .into_response();
    };

    let rewritten = if parts.method == Method::POST {
        match rewrite_body(endpoint, &bytes, model_override) {
            Ok(r) => r,
            Err(e) => return ctx.answer_error(e, None),
        }
    } else {
        Rewritten {
            body: Bytes::new(),
            model: model_override.map(str::to_string),
            stream: false,
            client_wants_usage: false,
        }
    };

    // The upstream request: the client's safe headers, the backend's credential, the
    // backend's host as Host whichever endpoint is dialled.
    let mut path = endpoint.upstream_path(ai);
    if let Some(q) = parts.uri.query() {
        path = format!("{path}?{q}");
    }
    let mut headers = auth::upstream_headers(&parts.headers);
    auth::inject(
        &Provider::OpenAi { model: None },
        policies.auth.as_ref(),
        &parts.headers,
        &mut headers,
    );
    let resp = match super::send::send(
        &ctx,
        ai,
        policies,
        parts.method.clone(),
        &path,
        headers,
        rewritten.body.clone(),
    )
    .await
    {
        Ok(resp) => resp,
        Err(e) => return ctx.answer_error(e, rewritten.model),
    };

    let (up_parts, up_body) = resp.into_parts();
    let status = up_parts.status;
    if !status.is_success() {
        let raw = read_error_body(up_body, 64 * 1024).await;
        let body = normalise_upstream_error(status, &raw);
        tracing::info!(tenant = %ctx.route.tenant, route = %ctx.route.name, status = status.as_u16(), "upstream error passed on");
        ctx.record(
            rewritten.model.clone(),
            None,
            upstream_status_usage(status, rewritten.stream),
        );
        return upstream_error_response(status, &body, &up_parts.headers);
    }

    let is_sse = up_parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if is_sse {
        let sse = SseUsage::new(rewritten.client_wants_usage, started);
        let recorder = ctx.recorder(rewritten.model.unwrap_or_else(|| "unknown".into()), status);
        let up_body = up_body
            .map_err(|e| Box::new(e) as crate::BoxError)
            .boxed_unsync();
        let body = UsageBody::new(up_body, sse, recorder, ctx.permit);
        let mut out = Response::new(http_body_util::BodyExt::boxed_unsync(body));
        *out.status_mut() = status;
        *out.headers_mut() = auth::downstream_headers(&up_parts.headers, true);
        return out;
    }

    let bytes = match Limited::new(up_body, ctx.limits.max_response_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let detail = format!("reading the response failed: {e}");
            return ctx.answer_error(
                ApiError::upstream_unreachable(&ctx.route.name, &detail),
                rewritten.model,
            );
        }
    };
    let (model, tokens) = usage::from_json(&bytes);
    let usage = match tokens {
        Some((p, c)) => Usage {
            prompt_tokens: p,
            completion_tokens: c,
            source: UsageSource::Reported,
            streamed: false,
            status: status.as_u16(),
            time_to_first_token: None,
            duration: None,
            error: None,
        },
        None => empty_usage(status, false),
    };
    ctx.record(rewritten.model, model, usage);
    let mut out = Response::new(crate::full(bytes));
    *out.status_mut() = status;
    *out.headers_mut() = auth::downstream_headers(&up_parts.headers, true);
    out
}

pub(crate) fn empty_usage(status: StatusCode, streamed: bool) -> Usage {
    Usage {
        prompt_tokens: 0,
        completion_tokens: 0,
        source: UsageSource::None,
        streamed,
        status: status.as_u16(),
        time_to_first_token: None,
        duration: None,
        error: None,
    }
}

/// The usage of a response whose upstream answered an error status (passed on to the client).
pub(crate) fn upstream_status_usage(status: StatusCode, streamed: bool) -> Usage {
    Usage {
        error: Some(usage::UPSTREAM_STATUS),
        ..empty_usage(status, streamed)
    }
}

/// The usage of an error of the gateway's own (`err.code` says which).
pub(crate) fn error_usage(err: &ApiError, streamed: bool) -> Usage {
    Usage {
        error: Some(err.code),
        ..empty_usage(err.status, streamed)
    }
}

impl RequestCtx {
    /// Records usage under the model the upstream named, else the one asked for.
    pub(crate) fn record(
        &self,
        requested: Option<String>,
        served: Option<String>,
        mut usage: Usage,
    ) {
        usage.duration = Some(self.started.elapsed());
        let key = UsageKey {
            tenant: self.route.tenant.to_string(),
            route: self.route.name.to_string(),
            model: served.or(requested).unwrap_or_else(|| "unknown".into()),
        };
        self.usage.record(key, usage);
    }

    /// What records a streamed answer's usage when it ends; `requested_model` counts when the
    /// upstream names none.
    pub(crate) fn recorder(&self, requested_model: String, status: StatusCode) -> Recorder {
        Recorder {
            sink: self.usage.clone(),
            tenant: self.route.tenant.to_string(),
            route: self.route.name.to_string(),
            requested_model,
            status: status.as_u16(),
            started: self.started,
        }
    }

    /// Answers an error of the gateway's own and counts it.
    pub(crate) fn answer_error(&self, err: ApiError, model: Option<String>) -> Response<Body> {
        self.record(model, None, error_usage(&err, false));
        err.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ai(path: Option<&str>, prefix: Option<&str>) -> AiBackend {
        AiBackend {
            tls: false,
            provider: Provider::OpenAi { model: None },
            host: "h".into(),
            port: 1,
            path: path.map(str::to_string),
            path_prefix: prefix.map(str::to_string),
            endpoints: vec![],
            auth: None,
        }
    }

    #[test]
    fn paths_follow_the_overrides() {
        use Endpoint::*;
        let cases = [
            (None, None, ChatCompletions, "/v1/chat/completions"),
            (None, None, Models, "/v1/models"),
            (
                None,
                Some("/api/openai/v1/"),
                Embeddings,
                "/api/openai/v1/embeddings",
            ),
            (
                Some("/custom/chat"),
                Some("/p"),
                ChatCompletions,
                "/custom/chat",
            ),
            (Some("/custom/chat"), Some("/p"), Models, "/p/models"),
            (None, None, Responses, "/v1/responses"),
            (
                None,
                Some("/api/openai/v1"),
                Responses,
                "/api/openai/v1/responses",
            ),
            // `path` names the chat completions path only.
            (Some("/custom/chat"), Some("/p"), Responses, "/p/responses"),
        ];
        for (path, prefix, ep, want) in cases {
            assert_eq!(
                ep.upstream_path(&ai(path, prefix)),
                want,
                "{path:?} {prefix:?} {ep:?}"
            );
        }
        assert_eq!(Endpoint::of(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(
            Endpoint::of(&Method::POST, "/v1/responses/"),
            Some(Responses)
        );
        assert_eq!(Endpoint::of(&Method::GET, "/v1/responses"), None);
        assert_eq!(Endpoint::of(&Method::POST, "/v1/responses/resp_1"), None);
    }

    #[test]
    fn bodies_get_the_model_override_and_ask_streams_for_usage() {
        let ep = Endpoint::ChatCompletions;
        let r = rewrite_body(ep, br#"{"model":"x","messages":[]}"#, None).unwrap();
        assert_eq!(
            r.body.as_ref(),
            br#"{"model":"x","messages":[]}"#,
            "untouched"
        );
        assert!(!r.stream);

        let r = rewrite_body(ep, br#"{"model":"x","stream":true}"#, Some("tiny")).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["model"], "tiny");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(r.stream && !r.client_wants_usage);
        assert_eq!(r.model.as_deref(), Some("tiny"));

        let r = rewrite_body(
            ep,
            br#"{"stream":true,"stream_options":{"include_usage":true}}"#,
            None,
        )
        .unwrap();
        assert!(r.stream && r.client_wants_usage);

        let r = rewrite_body(
            Endpoint::Embeddings,
            br#"{"stream":true,"input":"a"}"#,
            None,
        )
        .unwrap();
        assert!(!r.stream, "embeddings never stream");

        for bad in [
            &b"{"[..],
            b"[1]",
            b"",
            br#"{"stream":true,"stream_options":3}"#,
        ] {
            let err = rewrite_body(ep, bad, None).unwrap_err();
            assert_eq!(
                err.status,
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses_get_the_model_override_and_streams_are_left_as_asked() {
        let ep = Endpoint::Responses;
        let plain = br#"{"model":"gpt-4o-mini","input":"hi","instructions":"be brief"}"#;
        let r = rewrite_body(ep, plain, None).unwrap();
        assert_eq!(r.body.as_ref(), plain, "untouched without an override");
        assert!(!r.stream);
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));

        let r = rewrite_body(
            ep,
            br#"{"model":"gpt-4o-mini","input":[{"role":"user","content":"hi"}],"stream":true}"#,
            Some("tiny"),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["model"], "tiny");
        assert_eq!(v["input"][0]["content"], "hi");
        assert!(
            v.get("stream_options").is_none(),
            "the Responses API has no include_usage: response.completed carries usage"
        );
        assert!(r.stream && r.client_wants_usage, "nothing is hidden");
        assert_eq!(r.model.as_deref(), Some("tiny"));

        let err = rewrite_body(ep, b"[]", None).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
