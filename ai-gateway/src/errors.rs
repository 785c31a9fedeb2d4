//! Errors, shaped like the client's protocol: the last stage of the request path, and the one
//! place that decides what a client sees when something goes wrong.
//!
//! Every error the gateway answers itself is an [`ApiError`]: an HTTP status and OpenAI's body
//! `{"error": {"message", "type", "param", "code"}}`, which the official SDKs turn into their
//! typed exceptions (404 -> `NotFoundError`, 502 -> `APIStatusError`, ...). An upstream's own
//! error keeps its status; its body is normalised into the same shape
//! ([`normalise_upstream_error`]), e.g. llama.cpp's FastAPI `{"detail": "..."}`.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::Body;

/// An error the gateway answers itself, in OpenAI's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {kind}/{code}: {message}")]
pub struct ApiError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// OpenAI's `error.type` (`invalid_request_error`, `api_error`, ...).
    pub kind: &'static str,
    /// OpenAI's `error.code`: a stable, machine-readable name of what went wrong.
    pub code: &'static str,
    /// What is wrong and what to change, for a human.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            kind,
            code,
            message,
        }
    }

    /// 403: the request did not come through Envoy (the identity headers are missing or bad).
    pub fn unidentified(message: String) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "not_from_envoy",
            message,
        )
    }

    /// 404: no such route for this tenant (or no such tenant).
    pub fn unknown_route(tenant: &str, route: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "route_not_found",
            format!(
                "tenant {tenant:?} has no AI route {route:?} on this gateway; check the route's \
                 backendRef and the backend's status in your cluster"
            ),
        )
    }

    /// 401: the route takes a virtual key and the request presented none.
    pub fn missing_key(route: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            format!(
                "route {route:?} takes a virtual key and the request has none; send the key the \
                 tenant gave you as `Authorization: Bearer <key>` or `x-api-key: <key>`"
            ),
        )
    }

    /// 401: the request presented a key that opens no route, or not this one. The key is never
    /// repeated.
    pub fn invalid_key(route: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            format!(
                "the key presented is not valid for route {route:?}; use a virtual key the \
                 tenant issued for this route (its VirtualKey lists the route's backend)"
            ),
        )
    }

    /// 404: the backend exists but does not serve this path; `supported` lists what its API
    /// serves ([`crate::provider::served_paths`]).
    pub fn unsupported_path(method: &hyper::Method, path: &str, supported: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unsupported_path",
            format!(
                "{method} {path} is not served by this route's backend; supported: {supported}"
            ),
        )
    }

    /// 404: OpenAI's Responses API asked of a backend of another API (`api`: `Anthropic`,
    /// `Gemini`), which the gateway does not translate it to.
    pub fn responses_unsupported(api: &str, supported: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unsupported_path",
            format!(
                "POST /v1/responses (OpenAI's Responses API) is served only for OpenAI-compatible \
                 backends; this route's backend is {api}, which serves {supported}: send one of \
                 those instead, or point the route at an OpenAI-compatible backend"
            ),
        )
    }

    /// 400: the client's body is not the JSON the endpoint expects.
    pub fn bad_request(message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            message,
        )
    }

    /// 413: the client's body is larger than the gateway accepts.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 429: the tenant already has its maximum of requests in flight on this gateway.
    pub fn tenant_busy(tenant: &str, limit: u32) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "tenant_concurrency_exceeded",
            format!(
                "tenant {tenant:?} has {limit} requests in flight on this gateway, its limit; \
                 retry later"
            ),
        )
    }

    /// 502: the upstream could not be reached or broke the connection.
    pub fn upstream_unreachable(route: &str, detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream_unreachable",
            format!("the provider of route {route:?} could not be reached: {detail}"),
        )
    }

    /// 504: the upstream did not answer within the backend's request timeout.
    pub fn upstream_timeout(route: &str, timeout: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "api_error",
            "upstream_timeout",
            format!(
                "the provider of route {route:?} did not answer within {} ms",
                timeout.as_millis()
            ),
        )
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": Value::Null,
            "code": self.code,
        }})
    }

    /// The answer to the client.
    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }

    /// The answer in the client's API's shape: Anthropic's for a Messages API client
    /// (`{"type": "error", "error": {"type", "message"}}`), OpenAI's otherwise. A 401 carries
    /// `WWW-Authenticate: Bearer`.
    pub fn into_client_response(self, anthropic_client: bool) -> Response<Body> {
        let status = self.status;
        let body = if anthropic_client {
            crate::translate::anthropic::error_to_anthropic(status.as_u16(), &self.body())
        } else {
            self.body()
        };
        let mut resp = json_response(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// An upstream's error answer passed on with `body` (in the client's API's shape) and the
/// upstream's `Retry-After`, so the client (and `ai.groups` failover) waits as long as asked.
pub fn upstream_error_response(
    status: StatusCode,
    body: &Value,
    upstream: &hyper::HeaderMap,
) -> Response<Body> {
    let mut out = json_response(status, body);
    if let Some(ra) = upstream.get(hyper::header::RETRY_AFTER) {
        out.headers_mut()
            .insert(hyper::header::RETRY_AFTER, ra.clone());
    }
    out
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut resp = Response::new(crate::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Turns an upstream's error body (any shape) into OpenAI's, keeping what it said.
///
/// - Already OpenAI-shaped (`{"error": {"message": ...}}`): kept as it is.
/// - `{"error": "text"}` (several servers) and FastAPI's `{"detail": "text" | [...]}`
///   (llama-cpp-python): the text becomes `error.message`.
/// - Anything else (HTML, plain text, empty): its first 512 characters become the message.
///
/// `type` and `code` are derived from the status the upstream chose, which the client receives
/// unchanged.
pub fn normalise_upstream_error(status: StatusCode, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(Value::Object(obj)) = &parsed
        && let Some(Value::Object(err)) = obj.get("error")
        && err.get("message").is_some_and(Value::is_string)
    {
        return parsed.unwrap_or_default();
    }
    let message = match &parsed {
        Some(Value::Object(obj)) => match (obj.get("error"), obj.get("detail")) {
            (Some(Value::String(s)), _) => s.clone(),
            (_, Some(Value::String(s))) => s.clone(),
            (_, Some(detail)) => detail.to_string(),
            _ => Value::Object(obj.clone()).to_string(),
        },
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let mut message: String = message.trim().chars().take(512).collect();
    if message.is_empty() {
        message = format!(
            "the provider answered {} with an empty body",
            status.as_u16()
        );
    }
    let (kind, code) = match status.as_u16() {
        400 | 404 | 405 | 409 | 413 | 415 | 422 => ("invalid_request_error", Value::Null),
        401 => ("authentication_error", json!("invalid_api_key")),
        403 => ("permission_error", Value::Null),
        429 => ("rate_limit_error", json!("rate_limit_exceeded")),
        _ => ("api_error", Value::Null),
    };
    json!({"error": {
        "message": message,
        "type": kind,
        "param": Value::Null,
        "code": code,
    }})
}

/// Reads at most `limit` bytes of an upstream error body (the rest is dropped).
pub async fn read_error_body(body: hyper::body::Incoming, limit: usize) -> Vec<u8> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_error_bodies_become_openai_shaped() {
        let cases: &[(u16, &str, &str, &str)] = &[
            // llama-cpp-python's FastAPI answer to a wrong key.
            (
                401,
                r#"{"detail":"Invalid API key"}"#,
                "Invalid API key",
                "authentication_error",
            ),
            // FastAPI validation errors carry a list.
            (
                422,
                r#"{"detail":[{"loc":["body","messages"],"msg":"field required"}]}"#,
                "field required",
                "invalid_request_error",
            ),
            (
                503,
                r#"{"error":"model is loading"}"#,
                "model is loading",
                "api_error",
            ),
            (
                502,
                "<html>bad gateway</html>",
                "<html>bad gateway</html>",
                "api_error",
            ),
            (500, "", "the provider answered 500", "api_error"),
            (
                429,
                r#"{"message":"slow down"}"#,
                "slow down",
                "rate_limit_error",
            ),
        ];
        for (status, body, want_message, want_type) in cases {
            let got =
                normalise_upstream_error(StatusCode::from_u16(*status).unwrap(), body.as_bytes());
            let msg = got["error"]["message"].as_str().unwrap();
            assert!(msg.contains(want_message), "{status} {body}: {got}");
            assert_eq!(got["error"]["type"], *want_type, "{status} {body}: {got}");
        }
    }

    #[test]
    fn an_openai_shaped_body_is_kept_as_is() {
        let body = r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let got = normalise_upstream_error(StatusCode::UNAUTHORIZED, body.as_bytes());
        assert_eq!(got, serde_json::from_str::<Value>(body).unwrap());
    }

    #[test]
    fn gateway_errors_have_the_status_and_shape_sdks_expect() {
        let cases = [
            (ApiError::unidentified("x".into()), 403, "permission_error"),
            (
                ApiError::unknown_route("a", "r"),
                404,
                "invalid_request_error",
            ),
            (
                ApiError::unsupported_path(&hyper::Method::GET, "/v2", "POST /v1/messages"),
                404,
                "invalid_request_error",
            ),
            (
                ApiError::responses_unsupported("Anthropic", "POST /v1/messages"),
                404,
                "invalid_request_error",
            ),
            (
                ApiError::bad_request("x".into()),
                400,
                "invalid_request_error",
            ),
            (ApiError::too_large(1), 413, "invalid_request_error"),
            (ApiError::tenant_busy("a", 1), 429, "rate_limit_error"),
            (
                ApiError::upstream_unreachable("r", "refused"),
                502,
                "api_error",
            ),
            (
                ApiError::upstream_timeout("r", std::time::Duration::from_secs(1)),
                504,
                "api_error",
            ),
        ];
        for (err, status, kind) in cases {
            assert_eq!(err.status.as_u16(), status, "{err}");
            let body = err.body();
            assert_eq!(body["error"]["type"], kind, "{err}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(body["error"]["code"].is_string());
        }
    }
}
