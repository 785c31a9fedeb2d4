//! The client's side of an MCP route: MCP's HTTP transports, in front of [`super::federate`].
//!
//! Streamable HTTP (the route's path, e.g. `/mcp`):
//! - `POST` one JSON-RPC message. `initialize` is answered in JSON with the gateway's
//!   `Mcp-Session-Id`; every later message of a stateful backend must carry it (400 without,
//!   404 with one that does not open: forged, altered, of another tenant or route, or ended).
//!   Notifications and responses get 202. Requests routed to one target (`tools/call`,
//!   `prompts/get`, `resources/read`, ...) are answered as an event stream when the client
//!   accepts one, so the target's notifications (progress, logging) reach it before the
//!   result; everything else in JSON.
//!   A response from the client answers a target's request ([`super::notify`]).
//! - `DELETE` ends the session (and the targets' sessions).
//! - `GET` with the session id opens the session's own event stream: what targets send outside
//!   calls ([`super::notify::stream`]); 400 without one, 405 for a stateless backend.
//!
//! The older HTTP+SSE transport: `GET <path>/sse` opens the stream; its `endpoint` event names
//! `<path>/message?sessionId=<id>`, where the client POSTs messages (202), answered on the
//! stream. That session lives on the replica holding the stream.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::federate::Fed;
use super::jsonrpc::{self, INVALID_REQUEST, Message, SESSION_NOT_FOUND};
use super::token::SessionState;
use super::{LegacyClient, sse};
use crate::config::mcp::{McpBackend, SessionRouting};
use crate::{Body, BoxError, RequestCtx, full};

const SESSION_HEADER: &str = "mcp-session-id";

fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A body of events from `rx`; `guard` lives as long as the body.
fn event_body<G: Send + 'static>(rx: mpsc::Receiver<Bytes>, guard: G) -> Body {
    let stream = ReceiverStream::new(rx).map(move |b| {
        let _ = &guard;
        Ok::<_, BoxError>(Frame::data(b))
    });
    StreamBody::new(stream).boxed_unsync()
}

fn event_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn accepts_events(req: &Request<Bytes>) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// The query parameter `name`.
fn query_param<'a>(req: &'a Request<Bytes>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Methods answered by one target, where an event stream carries its notifications.
fn routed(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "prompts/get" | "resources/read" | "completion/complete"
    )
}

/// What a request's work needs, owned, so that it can go on in a task of its own.
#[derive(Clone)]
struct Owned {
    state: Arc<super::McpState>,
    tenant: Arc<str>,
    route: Arc<str>,
    keys: Arc<crate::config::mcp::SessionKeyRing>,
    timeout: std::time::Duration,
    upstream: crate::provider::Upstream,
    mcp: McpBackend,
}

impl Owned {
    fn new(ctx: &RequestCtx, mcp: &McpBackend) -> Self {
        let r = &ctx.route;
        Self {
            state: ctx.mcp.clone(),
            tenant: r.tenant.clone(),
            route: r.name.clone(),
            keys: ctx.mcp.keys(r.mcp_session_keys.as_ref()),
            timeout: r.backend.policies.request_timeout,
            upstream: ctx.upstream.clone(),
            mcp: mcp.clone(),
        }
    }

    fn fed(&self) -> Fed<'_> {
        Fed {
            state: &self.state,
            client: self.upstream.mcp_client(),
            backend: &self.mcp,
            tenant: &self.tenant,
            route: &self.route,
            keys: &self.keys,
            timeout: self.timeout,
        }
    }
}

/// One request to an MCP route.
pub async fn handle(ctx: RequestCtx, mcp: &McpBackend, req: Request<Bytes>) -> Response<Body> {
    let owned = Owned::new(&ctx, mcp);
    let fed = owned.fed();
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path.trim_end_matches('/').ends_with("/sse") {
        return legacy_stream(ctx, &path);
    }
    if req.method() == Method::POST
        && let Some(id) = query_param(&req, "sessionId")
    {
        let id = id.to_string();
        return legacy_message(ctx, mcp, &id, req).await;
    }
    match *req.method() {
        Method::POST => post(&owned, req).await,
        Method::GET if fed.backend.session_routing == SessionRouting::Stateful => {
            own_stream(&owned, &req)
        }
        Method::DELETE => {
            let Some(token) = req
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            else {
                return json(
                    StatusCode::BAD_REQUEST,
                    &jsonrpc::error(
                        &Value::Null,
                        INVALID_REQUEST,
                        "DELETE needs the Mcp-Session-Id header",
                    ),
                );
            };
            match fed.open_session(token) {
                None => session_not_found(),
                Some(s) => {
                    fed.end(&s).await;
                    empty(StatusCode::OK)
                }
            }
        }
        _ => {
            let mut r = json(
                StatusCode::METHOD_NOT_ALLOWED,
                &jsonrpc::error(
                    &Value::Null,
                    INVALID_REQUEST,
                    "this MCP endpoint takes POST (messages) and DELETE (end a session); a stateless backend has no session stream (GET); GET <path>/sse opens the HTTP+SSE transport",
                ),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
    }
}

/// Streamable HTTP: `GET` with the session id, the session's own stream.
fn own_stream(owned: &Owned, req: &Request<Bytes>) -> Response<Body> {
    let fed = owned.fed();
    let Some(token) = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return json(
            StatusCode::BAD_REQUEST,
            &jsonrpc::error(
                &Value::Null,
                INVALID_REQUEST,
                "GET opens a session's own stream and needs the Mcp-Session-Id header; send initialize first",
            ),
        );
    };
    if !accepts_events(req) {
        return json(
            StatusCode::NOT_ACCEPTABLE,
            &jsonrpc::error(
                &Value::Null,
                INVALID_REQUEST,
                "GET answers an event stream: send Accept: text/event-stream",
            ),
        );
    }
    let Some(session) = fed.open_session(token) else {
        return session_not_found();
    };
    let rx = super::notify::stream(
        owned.state.clone(),
        owned.upstream.mcp_client().clone(),
        &owned.mcp,
        &session,
    );
    event_response(event_body(rx, ()))
}

fn session_not_found() -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        &jsonrpc::error(
            &Value::Null,
            SESSION_NOT_FOUND,
            "session not found: this Mcp-Session-Id was not issued for this route, was altered, or has ended; send initialize for a new session",
        ),
    )
}

/// Streamable HTTP: one POSTed message.
async fn post(owned: &Owned, req: Request<Bytes>) -> Response<Body> {
    let fed = &owned.fed();
    let message = match Message::parse(req.body()) {
        Ok(m) => m,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(&e.id, e.code, &e.message),
            );
        }
    };
    if let Message::Request { id, method, params } = &message
        && method == "initialize"
    {
        let init = fed.initialize(id, params.as_ref()).await;
        let mut r = json(StatusCode::OK, &init.response);
        if let Some(s) = init.session.and_then(|s| HeaderValue::from_str(&s).ok()) {
            r.headers_mut().insert(SESSION_HEADER, s);
        }
        return r;
    }
    let session = match (
        fed.backend.session_routing,
        req.headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok()),
    ) {
        (_, Some(token)) => match fed.open_session(token) {
            Some(s) => Some(s),
            None => return session_not_found(),
        },
        (SessionRouting::Stateless, None) => None,
        (SessionRouting::Stateful, None) => {
            let id = match &message {
                Message::Request { id, .. } => id.clone(),
                _ => Value::Null,
            };
            return json(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(
                    &id,
                    INVALID_REQUEST,
                    "no Mcp-Session-Id: send initialize first, then the session id it returned with every message",
                ),
            );
        }
    };
    match message {
        Message::Notification { method, params } => {
            fed.notification(session.as_ref(), &method, params.as_ref())
                .await;
            empty(StatusCode::ACCEPTED)
        }
        Message::Response { body, .. } => {
            let Some(s) = session.as_ref() else {
                return empty(StatusCode::ACCEPTED);
            };
            if let Err(e) = super::notify::answer_from_client(
                &owned.state,
                owned.upstream.mcp_client(),
                &owned.mcp,
                s,
                &body,
                owned.timeout,
            )
            .await
            {
                tracing::info!(tenant = %owned.tenant, route = %owned.route, error = %e, "a client's answer to a target's request was not delivered");
            }
            empty(StatusCode::ACCEPTED)
        }
        Message::Request { id, method, params } => {
            if routed(&method) && accepts_events(&req) {
                return streamed(owned.clone(), session, id, method, params);
            }
            let answer = fed
                .request_from_client(session.as_ref(), &id, &method, params.as_ref(), None)
                .await;
            json(StatusCode::OK, &answer)
        }
    }
}

/// A routed request answered as an event stream, at once: the target's notifications as they
/// come, then the answer.
fn streamed(
    owned: Owned,
    session: Option<SessionState>,
    id: Value,
    method: String,
    params: Option<Value>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let fed = owned.fed();
        let (ntx, mut nrx) = mpsc::channel::<Value>(64);
        let forward = {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(n) = nrx.recv().await {
                    if tx
                        .send(sse::encode(Some("message"), &n.to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        let answer = fed
            .request_from_client(session.as_ref(), &id, &method, params.as_ref(), Some(&ntx))
            .await;
        drop(ntx);
        let _ = forward.await;
        let _ = tx
            .send(sse::encode(Some("message"), &answer.to_string()))
            .await;
    });
    event_response(event_body(rx, ()))
}

/// Removes a legacy client from the replica when its stream ends.
struct LegacyGuard {
    state: Arc<super::McpState>,
    id: String,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for LegacyGuard {
    fn drop(&mut self) {
        self.state.drop_legacy_client(&self.id);
    }
}

/// HTTP+SSE: `GET <path>/sse` opens the stream, announcing where to POST.
fn legacy_stream(mut ctx: RequestCtx, path: &str) -> Response<Body> {
    let id = ctx.mcp.random_hex(16);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let base = path.trim_end_matches('/').trim_end_matches("/sse");
    let endpoint = format!("{base}/message?sessionId={id}");
    if tx
        .try_send(sse::encode(Some("endpoint"), &endpoint))
        .is_err()
    {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    }
    ctx.mcp.put_legacy_client(
        &id,
        Arc::new(LegacyClient {
            tenant: ctx.route.tenant.clone(),
            route: ctx.route.name.clone(),
            tx,
            session: std::sync::Mutex::new(None),
        }),
    );
    let guard = LegacyGuard {
        state: ctx.mcp.clone(),
        id,
        _permit: ctx.permit.take(),
    };
    event_response(event_body(rx, guard))
}

/// HTTP+SSE: a message POSTed to the endpoint; answered 202, the answer on the stream.
async fn legacy_message(
    ctx: RequestCtx,
    mcp: &McpBackend,
    id: &str,
    req: Request<Bytes>,
) -> Response<Body> {
    let Some(client) = ctx
        .mcp
        .legacy_client(id)
        .filter(|c| c.tenant == ctx.route.tenant && c.route == ctx.route.name)
    else {
        return json(
            StatusCode::NOT_FOUND,
            &jsonrpc::error(
                &Value::Null,
                SESSION_NOT_FOUND,
                "no open SSE stream has this sessionId on this gateway; open GET <path>/sse again",
            ),
        );
    };
    let message = match Message::parse(req.body()) {
        Ok(m) => m,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &jsonrpc::error(&e.id, e.code, &e.message),
            );
        }
    };
    let owned = Owned::new(&ctx, mcp);
    let mcp = mcp.clone();
    tokio::spawn(async move {
        let fed = owned.fed();
        let token = client.session.lock().ok().and_then(|s| s.clone());
        let session = token.as_deref().and_then(|t| fed.open_session(t));
        let answer = match message {
            Message::Request { id, method, params } if method == "initialize" => {
                let init = fed.initialize(&id, params.as_ref()).await;
                if let (Some(s), Ok(mut slot)) = (init.session, client.session.lock()) {
                    *slot = Some(s);
                }
                Some(init.response)
            }
            Message::Request { id, .. }
                if session.is_none() && mcp.session_routing == SessionRouting::Stateful =>
            {
                Some(jsonrpc::error(
                    &id,
                    INVALID_REQUEST,
                    "send initialize first",
                ))
            }
            Message::Request { id, method, params } => {
                let (ntx, mut nrx) = mpsc::channel::<Value>(64);
                let tx = client.tx.clone();
                let fwd = tokio::spawn(async move {
                    while let Some(n) = nrx.recv().await {
                        let _ = tx.send(sse::encode(Some("message"), &n.to_string())).await;
                    }
                });
                let a = fed
                    .request_from_client(
                        session.as_ref(),
                        &id,
                        &method,
                        params.as_ref(),
                        Some(&ntx),
                    )
                    .await;
                drop(ntx);
                let _ = fwd.await;
                Some(a)
            }
            Message::Notification { method, params } => {
                fed.notification(session.as_ref(), &method, params.as_ref())
                    .await;
                None
            }
            Message::Response { body, .. } => {
                if let Some(s) = session.as_ref()
                    && let Err(e) = super::notify::answer_from_client(
                        &owned.state,
                        owned.upstream.mcp_client(),
                        &owned.mcp,
                        s,
                        &body,
                        owned.timeout,
                    )
                    .await
                {
                    tracing::info!(error = %e, "a legacy client's answer to a target's request was not delivered");
                }
                None
            }
        };
        if let Some(a) = answer {
            let _ = client
                .tx
                .send(sse::encode(Some("message"), &a.to_string()))
                .await;
        }
    });
    empty(StatusCode::ACCEPTED)
}
