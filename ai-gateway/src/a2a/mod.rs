//! A2A: agent-to-agent traffic, proxied per tenant (a backend kind of the route stage:
//! listen -> identify -> route -> keys -> limit -> budget -> **a2a** -> auth -> upstream).
//!
//! A route whose backend is an A2A agent (agentgateway's `spec.a2a{host, port}`) serves:
//! - `GET <prefix>/.well-known/agent-card.json` (and the older `agent.json`): the agent's card,
//!   fetched from the agent and rewritten ([`card`]) so that every interface URL is the one the
//!   client used to reach the route (`x-forwarded-proto` + Host + the route's path prefix) and
//!   nothing in it names where the agent runs;
//! - `POST` (any path of the route, where the rewritten card sends clients): a JSON-RPC call,
//!   passed on to the path where the agent's own card says it takes JSON-RPC. Streamed answers
//!   (`message/stream`, `SendStreamingMessage`, resubscribe; any `text/event-stream` answer)
//!   go to the client frame by frame as they arrive, never buffered; the answer of an extended
//!   card method is rewritten like the well-known card.
//!
//! The client's credentials and the identity headers never reach the agent ([`crate::auth`]);
//! the backend's `policies.auth` key goes as `Authorization: Bearer`. Errors the gateway
//! answers itself are JSON-RPC errors ([`jsonrpc`]); every call is counted per tenant, route and
//! method ([`telemetry`]) and logged with its task id.

pub mod card;
pub mod jsonrpc;
pub mod telemetry;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use self::telemetry::{A2aKey, A2aTelemetry, CallRecord, CardSummary};
use crate::config::{A2aBackend, Policies};
use crate::errors::ApiError;
use crate::{Body, BoxError, RequestCtx};

/// The largest agent card read, and the largest buffered (non-streamed) JSON-RPC answer
/// rewritten; other answers are bounded by [`crate::Limits::max_response_bytes`].
pub const MAX_CARD_BYTES: usize = 1024 * 1024;
/// How long the JSON-RPC path read from an agent's card is used before the card is read again.
pub const RPC_PATH_TTL: Duration = Duration::from_secs(60);
/// The most routes whose JSON-RPC path is remembered (all are forgotten past it).
const MAX_REMEMBERED: usize = 4096;

/// What the A2A handler shares between requests: telemetry and the agents' JSON-RPC paths.
#[derive(Debug, Default)]
pub struct A2aState {
    pub telemetry: A2aTelemetry,
    rpc_paths: Mutex<HashMap<(String, String), Remembered>>,
}

#[derive(Debug, Clone)]
struct Remembered {
    backend: A2aBackend,
    path: String,
    at: Instant,
}

/// Serves one request on an A2A route.
pub async fn handle(
    ctx: RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    req: Request<Bytes>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if req.method() == Method::GET
        && let Some((prefix, suffix)) = card::card_request(&path)
    {
        let resp = serve_card(&ctx, backend, policies, req.headers(), prefix, suffix).await;
        let error = !resp.status().is_success();
        record(
            &ctx,
            "card",
            CallRecord {
                error,
                ..Default::default()
            },
        );
        return resp;
    }
    if req.method() != Method::POST {
        return jsonrpc::error_response(
            StatusCode::NOT_FOUND,
            &Value::Null,
            jsonrpc::METHOD_NOT_FOUND,
            &format!(
                "{} {path} is not served on an A2A route: GET <route>/.well-known/agent-card.json for the agent card, POST JSON-RPC calls where the card says",
                req.method()
            ),
        );
    }
    call(ctx, backend, policies, req).await
}

fn record(ctx: &RequestCtx, method: &'static str, call: CallRecord) {
    ctx.a2a.telemetry.record(
        A2aKey {
            tenant: ctx.route.tenant.to_string(),
            route: ctx.route.name.to_string(),
            method,
        },
        call,
    );
}

/// The hosts a card must not name: the backend's host (when it is a DNS name with a dot or an
/// address: a bare Service name is no address a client could use, and hiding every word equal
/// to it would cut the card apart) and its endpoints' addresses.
fn upstream_hosts(backend: &A2aBackend) -> Vec<String> {
    let mut hosts: Vec<String> = backend
        .endpoints
        .iter()
        .map(|e| e.ip().to_string())
        .collect();
    if backend.host.contains(['.', ':']) {
        hosts.push(backend.host.trim_matches(['[', ']']).to_string());
    }
    hosts
}

/// Fetches the agent's card at `suffix` (the other well-known path when the agent has none
/// there), as JSON.
async fn fetch_card(
    ctx: &RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    client: &HeaderMap,
    suffix: &str,
) -> Result<Value, Response<Body>> {
    let failed = |status: StatusCode, message: String| {
        jsonrpc::error_response(status, &Value::Null, jsonrpc::INTERNAL_ERROR, &message)
    };
    let mut tried = vec![suffix];
    tried.extend(card::CARD_PATHS.iter().filter(|p| **p != suffix));
    for (i, path) in tried.iter().enumerate() {
        let headers = upstream_request_headers(policies, client, false);
        let resp = send(
            ctx,
            backend,
            policies,
            Method::GET,
            path,
            headers,
            Bytes::new(),
        )
        .await
        .map_err(|e| jsonrpc::from_api_error(&e, &Value::Null))?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && i + 1 < tried.len() {
            continue;
        }
        if !status.is_success() {
            return Err(failed(
                StatusCode::BAD_GATEWAY,
                format!(
                    "the agent of route {} answered {status} for its agent card",
                    ctx.route.name
                ),
            ));
        }
        let bytes = Limited::new(resp.into_body(), MAX_CARD_BYTES)
            .collect()
            .await
            .map_err(|e| {
                failed(
                    StatusCode::BAD_GATEWAY,
                    format!("reading the agent's card (at most {MAX_CARD_BYTES} bytes): {e}"),
                )
            })?
            .to_bytes();
        return serde_json::from_slice(&bytes).map_err(|e| {
            failed(
                StatusCode::BAD_GATEWAY,
                format!("the agent's card is not JSON: {e}"),
            )
        });
    }
    Err(failed(
        StatusCode::BAD_GATEWAY,
        "the agent serves no agent card".into(),
    ))
}

/// Remembers where the agent takes JSON-RPC calls, from its card as fetched.
fn remember(ctx: &RequestCtx, backend: &A2aBackend, upstream_card: &Value) -> Option<String> {
    let path = card::rpc_path(upstream_card)?;
    let mut map = ctx.a2a.rpc_paths.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
    map.insert(
        (ctx.route.tenant.to_string(), ctx.route.name.to_string()),
        Remembered {
            backend: backend.clone(),
            path: path.clone(),
            at: Instant::now(),
        },
    );
    Some(path)
}

async fn serve_card(
    ctx: &RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    client: &HeaderMap,
    prefix: &str,
    suffix: &str,
) -> Response<Body> {
    let proto = client
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok());
    let host = client.get(header::HOST).and_then(|v| v.to_str().ok());
    let Some(gateway) = card::gateway_url(proto, host, prefix) else {
        return jsonrpc::error_response(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            jsonrpc::INVALID_REQUEST,
            "the request has no usable Host header, which the agent card's URLs are built from",
        );
    };
    let upstream_card = match fetch_card(ctx, backend, policies, client, suffix).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    remember(ctx, backend, &upstream_card);
    let Some(rewritten) = card::rewrite(upstream_card, &gateway, &upstream_hosts(backend)) else {
        return jsonrpc::error_response(
            StatusCode::BAD_GATEWAY,
            &Value::Null,
            jsonrpc::INTERNAL_ERROR,
            "the agent's card is not a JSON object",
        );
    };
    ctx.a2a.telemetry.record_card(
        &ctx.route.tenant,
        &ctx.route.name,
        CardSummary::of(&rewritten),
    );
    crate::errors::json_response(StatusCode::OK, &rewritten)
}

/// Where the agent takes JSON-RPC calls: remembered from its card, else its card read now.
async fn rpc_path(
    ctx: &RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    client: &HeaderMap,
    id: &Value,
) -> Result<String, Response<Body>> {
    {
        let map = ctx.a2a.rpc_paths.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map.get(&(ctx.route.tenant.to_string(), ctx.route.name.to_string()))
            && r.backend == *backend
            && r.at.elapsed() < RPC_PATH_TTL
        {
            return Ok(r.path.clone());
        }
    }
    let upstream_card = fetch_card(ctx, backend, policies, client, card::CARD_PATHS[0]).await?;
    remember(ctx, backend, &upstream_card).ok_or_else(|| {
        jsonrpc::error_response(
            StatusCode::BAD_GATEWAY,
            id,
            jsonrpc::INTERNAL_ERROR,
            "the agent's card names no JSON-RPC interface, the only transport the gateway proxies",
        )
    })
}

/// The client's headers that may reach the agent, with the backend's credential on.
fn upstream_request_headers(policies: &Policies, client: &HeaderMap, json: bool) -> HeaderMap {
    let mut headers = crate::auth::upstream_headers(client);
    crate::auth::inject_bearer(policies.auth.as_ref(), client, &mut headers);
    if json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    } else {
        headers.remove(header::CONTENT_TYPE);
    }
    headers
}

/// One JSON-RPC call, passed on.
async fn call(
    ctx: RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    req: Request<Bytes>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let call = match jsonrpc::parse(&body) {
        Ok(c) => c,
        Err(e) => {
            record(
                &ctx,
                "other",
                CallRecord {
                    error: true,
                    ..Default::default()
                },
            );
            return jsonrpc::error_response(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                e.code,
                &e.message,
            );
        }
    };
    let method = jsonrpc::label(&call.method);
    let path = match rpc_path(&ctx, backend, policies, &parts.headers, &call.id).await {
        Ok(p) => p,
        Err(resp) => {
            record(
                &ctx,
                method,
                CallRecord {
                    error: true,
                    ..Default::default()
                },
            );
            return resp;
        }
    };
    let headers = upstream_request_headers(policies, &parts.headers, true);
    let resp = match send(&ctx, backend, policies, Method::POST, &path, headers, body).await {
        Ok(r) => r,
        Err(e) => {
            record(
                &ctx,
                method,
                CallRecord {
                    error: true,
                    ..Default::default()
                },
            );
            return jsonrpc::from_api_error(&e, &call.id);
        }
    };
    let streamed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if streamed && resp.status().is_success() {
        tracing::info!(tenant = %ctx.route.tenant, route = %ctx.route.name, method = %call.method, "A2A stream started");
        return stream(ctx, method, resp);
    }
    let gateway = card::gateway_url(
        parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok()),
        parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
        parts.uri.path(),
    );
    buffered(ctx, backend, gateway, method, &call, resp).await
}

/// A buffered answer: read whole (bounded), counted, an extended card rewritten, passed on.
async fn buffered(
    ctx: RequestCtx,
    backend: &A2aBackend,
    gateway: Option<String>,
    method: &'static str,
    call: &jsonrpc::Call,
    resp: Response<Incoming>,
) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let limit = ctx.limits.max_response_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            record(
                &ctx,
                method,
                CallRecord {
                    error: true,
                    ..Default::default()
                },
            );
            return jsonrpc::error_response(
                StatusCode::BAD_GATEWAY,
                &call.id,
                jsonrpc::INTERNAL_ERROR,
                &format!("reading the agent's answer (at most {limit} bytes): {e}"),
            );
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let Some(Value::Object(mut answer)) = parsed else {
        record(
            &ctx,
            method,
            CallRecord {
                error: true,
                ..Default::default()
            },
        );
        let shown: String = String::from_utf8_lossy(&bytes).chars().take(256).collect();
        let status = if parts.status.is_success() {
            StatusCode::BAD_GATEWAY
        } else {
            parts.status
        };
        return jsonrpc::error_response(
            status,
            &call.id,
            jsonrpc::INTERNAL_ERROR,
            &format!(
                "the agent answered HTTP {} without a JSON-RPC body: {shown}",
                parts.status
            ),
        );
    };
    let error = !parts.status.is_success() || answer.contains_key("error");
    let task = answer.get("result").and_then(jsonrpc::task_of);
    tracing::info!(
        tenant = %ctx.route.tenant,
        route = %ctx.route.name,
        method = %call.method,
        task = task.as_ref().map_or("", |(id, _)| id.as_str()),
        state = task.as_ref().and_then(|(_, s)| *s).unwrap_or(""),
        error,
        "A2A call"
    );
    record(
        &ctx,
        method,
        CallRecord {
            error,
            states: task.and_then(|(_, s)| s).into_iter().collect(),
            ..Default::default()
        },
    );
    if jsonrpc::CARD_METHODS.contains(&call.method.as_str())
        && let Some(result) = answer.remove("result")
    {
        // The extended card names the agent's address like the public one; the client posted
        // to the URL of the public card, so that is the gateway's URL here. Without a usable
        // Host nothing of the card is sent.
        let rewritten = gateway
            .and_then(|g| card::rewrite(result, &g, &upstream_hosts(backend)))
            .unwrap_or(Value::Null);
        answer.insert("result".into(), rewritten);
    }
    crate::errors::json_response(parts.status, &Value::Object(answer))
}

/// A streamed answer, passed on frame by frame ([`SseTap`]).
fn stream(ctx: RequestCtx, method: &'static str, resp: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let tap = SseTap {
        inner: body,
        line: Vec::new(),
        record: CallRecord {
            streamed: true,
            ..Default::default()
        },
        ctx: Some(TapCtx {
            a2a: ctx.a2a.clone(),
            key: A2aKey {
                tenant: ctx.route.tenant.to_string(),
                route: ctx.route.name.to_string(),
                method,
            },
            _permit: ctx.permit,
        }),
    };
    Response::from_parts(parts, tap.boxed_unsync())
}

struct TapCtx {
    a2a: Arc<A2aState>,
    key: A2aKey,
    /// The tenant's concurrency permit lives as long as the stream.
    _permit: Option<OwnedSemaphorePermit>,
}

/// The longest SSE line read for telemetry; longer lines pass through uncounted.
const MAX_LINE: usize = 1024 * 1024;

/// Passes an SSE body on unchanged, frame by frame, reading each `data:` line on the side for
/// the task and state it carries; records the call when the stream ends (or the client goes).
struct SseTap {
    inner: Incoming,
    line: Vec<u8>,
    record: CallRecord,
    ctx: Option<TapCtx>,
}

impl SseTap {
    fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        self.record.events += 1;
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if v.get("error").is_some() {
            self.record.error = true;
        }
        if let Some((task, state)) = v.get("result").and_then(jsonrpc::task_of) {
            if let Some(ctx) = &self.ctx {
                tracing::debug!(tenant = %ctx.key.tenant, route = %ctx.key.route, %task, state = state.unwrap_or(""), "A2A stream event");
            }
            self.record.states.extend(state);
        }
    }

    fn finish(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            tracing::info!(tenant = %ctx.key.tenant, route = %ctx.key.route, method = %ctx.key.method, events = self.record.events, "A2A stream ended");
            ctx.a2a
                .telemetry
                .record(ctx.key, std::mem::take(&mut self.record));
        }
    }
}

impl Drop for SseTap {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for SseTap {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.feed(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.record.error = true;
                this.finish();
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Sends `method path` to the agent: its endpoints round-robin (the next on a connect error,
/// when nothing was sent), its host as Host, HTTPS with `tls`, within the request timeout (to
/// the answer's headers; a stream may then run as long as it lasts).
async fn send(
    ctx: &RequestCtx,
    backend: &A2aBackend,
    policies: &Policies,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Incoming>, ApiError> {
    let target = crate::provider::send::Target {
        host: &backend.host,
        port: backend.port,
        endpoints: &backend.endpoints,
        tls: backend.tls,
    };
    crate::provider::send::send_to(ctx, &target, policies, method, path, headers, body).await
}
