//! The gateway as an MCP client of one target, over either transport:
//!
//! - streamable HTTP ([`post`]): each message is a POST with `Accept: application/json,
//!   text/event-stream`; the answer is JSON, or an event stream carrying notifications (handed
//!   to `notify`) and then the response; `202` for notifications; the target's
//!   `Mcp-Session-Id` is read from the answer to `initialize` and sent on every later message.
//! - the older HTTP+SSE transport ([`SseConn`]): a GET opens the event stream, whose first
//!   `endpoint` event names where to POST messages; answers come back on the stream, matched
//!   to their request by id. The stream lives as long as the client's session on this replica.
//!
//! Requests a target sends the client (sampling, roots, elicitation, ping): over streamable
//! HTTP, during a call whose client reads an event stream, they go to the client with ids
//! naming the target ([`super::notify::client_id`]); otherwise, and always over SSE (the
//! client's answer could reach another replica, i.e. another upstream session), the target
//! gets a JSON-RPC error saying the gateway does not forward them. [`open_stream`] opens a
//! streamable-HTTP target's own stream of a session (`GET`).
//!
//! Every request has the route's timeout; errors say which target and what happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::sse;
use crate::config::mcp::McpTarget;

/// The HTTP client the gateway dials upstreams with.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Most bytes of one JSON answer read from a target.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// How a target failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error("cannot reach it: {0}")]
    Unreachable(String),
    /// No answer in time (`0`: within the route's timeout, counted from the request).
    #[error("no answer in time (the route's request timeout)")]
    Timeout(Duration),
    /// The target no longer knows the session (HTTP 404): the client must initialize again.
    #[error("it no longer knows this session")]
    SessionGone,
    #[error("it answered HTTP {0}: {1}")]
    Status(u16, String),
    #[error("it answered something that is not MCP: {0}")]
    Protocol(String),
}

/// The authority to dial for a new session: the `n`th endpoint (round-robin), or host:port.
pub fn authority(t: &McpTarget, n: usize) -> String {
    if t.endpoints.is_empty() {
        crate::provider::endpoints::authority(&t.host, t.port)
    } else {
        t.endpoints[n % t.endpoints.len()].to_string()
    }
}

fn uri(authority: &str, path: &str) -> Result<Uri, TargetError> {
    format!("http://{authority}{path}")
        .parse()
        .map_err(|e| TargetError::Protocol(format!("bad URL: {e}")))
}

fn host_header(t: &McpTarget) -> Option<HeaderValue> {
    HeaderValue::from_str(&crate::provider::endpoints::authority(&t.host, t.port)).ok()
}

async fn send(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<Response<Incoming>, TargetError> {
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(TargetError::Timeout(timeout)),
        Ok(Err(e)) => Err(TargetError::Unreachable(if e.is_connect() {
            crate::provider::tls::connect_detail(&e)
        } else {
            "the connection broke before an answer".to_string()
        })),
        Ok(Ok(r)) => Ok(r),
    }
}

/// The answer to one streamable-HTTP POST.
#[derive(Debug)]
pub struct Posted {
    /// `Mcp-Session-Id` of the answer, when it has one.
    pub session: Option<String>,
    /// The JSON-RPC response (`None` for a notification: 202).
    pub response: Option<Value>,
}

/// The POST of `msg` to a streamable-HTTP target at `authority`, in `session`.
fn message_request(
    t: &McpTarget,
    authority: &str,
    session: Option<&str>,
    version: Option<&str>,
    msg: &Value,
) -> Result<Request<Full<Bytes>>, TargetError> {
    let body = Bytes::from(serde_json::to_vec(msg).unwrap_or_default());
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri(authority, &t.path)?;
    let h = req.headers_mut();
    if let Some(host) = host_header(t) {
        h.insert(header::HOST, host);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Some(s) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        h.insert("mcp-session-id", s);
    }
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        h.insert("mcp-protocol-version", v);
    }
    Ok(req)
}

/// Sends `msg` to a streamable-HTTP target at `authority`; notifications the target sends
/// before its response go to `notify`.
#[allow(clippy::too_many_arguments)]
pub async fn post(
    client: &HttpClient,
    t: &McpTarget,
    authority: &str,
    session: Option<&str>,
    version: Option<&str>,
    msg: &Value,
    notify: Option<&mpsc::Sender<Value>>,
    timeout: Duration,
) -> Result<Posted, TargetError> {
    let asked_in = session.map(str::to_string);
    let req = message_request(t, authority, session, version, msg)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let resp = send(client, req, timeout).await?;
    let status = resp.status();
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if status == StatusCode::NOT_FOUND
        && msg.get("method").and_then(Value::as_str) != Some("initialize")
    {
        return Err(TargetError::SessionGone);
    }
    if status == StatusCode::ACCEPTED {
        return Ok(Posted {
            session,
            response: None,
        });
    }
    let sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !status.is_success() {
        let body = read_limited(resp.into_body(), 4096, deadline)
            .await
            .unwrap_or_default();
        return Err(TargetError::Status(
            status.as_u16(),
            String::from_utf8_lossy(&body).chars().take(300).collect(),
        ));
    }
    let want = msg.get("id").cloned().unwrap_or(Value::Null);
    let response = if sse {
        let back = Back {
            client,
            t,
            authority,
            session: asked_in.or_else(|| session.clone()),
            version,
        };
        read_events_until(resp.into_body(), &want, notify, &back, deadline).await?
    } else {
        let body = read_limited(resp.into_body(), MAX_ANSWER_BYTES, deadline).await?;
        serde_json::from_slice(&body)
            .map_err(|e| TargetError::Protocol(format!("the JSON answer does not parse: {e}")))?
    };
    Ok(Posted {
        session,
        response: Some(response),
    })
}

async fn read_limited(
    mut body: Incoming,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, TargetError> {
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| TargetError::Timeout(Duration::from_secs(0)))?;
        match frame {
            None => return Ok(out),
            Some(Err(e)) => {
                return Err(TargetError::Unreachable(format!("reading the answer: {e}")));
            }
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    out.extend_from_slice(&d);
                    if out.len() > limit {
                        return Err(TargetError::Protocol(format!(
                            "the answer is larger than {limit} bytes"
                        )));
                    }
                }
            }
        }
    }
}

/// Where a streamable-HTTP target's session is, to answer its requests.
struct Back<'a> {
    client: &'a HttpClient,
    t: &'a McpTarget,
    authority: &'a str,
    session: Option<String>,
    version: Option<&'a str>,
}

/// The answer to a target's request the gateway does not forward.
fn refusal(id: &Value, method: &str) -> Value {
    super::jsonrpc::error(
        id,
        super::jsonrpc::METHOD_NOT_FOUND,
        &format!(
            "{method}: the MCP gateway forwards requests to the client only from streamable-HTTP targets during a call whose client reads an event stream, or on the client's own stream"
        ),
    )
}

/// Reads an event stream until the response to `want`; notifications go to `notify`, and
/// the target's requests too (ids remapped) when there is one, else they are refused.
async fn read_events_until(
    mut body: Incoming,
    want: &Value,
    notify: Option<&mpsc::Sender<Value>>,
    back: &Back<'_>,
    deadline: tokio::time::Instant,
) -> Result<Value, TargetError> {
    let mut reader = sse::Reader::default();
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| TargetError::Timeout(Duration::from_secs(0)))?;
        let data = match frame {
            None => {
                return Err(TargetError::Protocol(
                    "the event stream ended without the response".into(),
                ));
            }
            Some(Err(e)) => {
                return Err(TargetError::Unreachable(format!("reading the stream: {e}")));
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        for event in reader.push(&data).map_err(TargetError::Protocol)? {
            if event.name.as_deref().is_some_and(|n| n != "message") || event.data.is_empty() {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
                return Err(TargetError::Protocol("an event is not JSON".into()));
            };
            let is_response = v.get("method").is_none()
                && (v.get("result").is_some() || v.get("error").is_some());
            if is_response && v.get("id") == Some(want) {
                // The rest of the stream (its end, normally) is read in the background, so
                // that the connection goes back to the pool instead of being closed.
                tokio::spawn(async move {
                    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
                    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
                });
                return Ok(v);
            }
            if super::notify::is_request(&v) {
                let id = v.get("id").cloned().unwrap_or(Value::Null);
                if let Some(tx) = notify {
                    let mut fwd = v;
                    fwd["id"] = super::notify::client_id(&back.t.name, &id);
                    let _ = tx.send(fwd).await;
                } else {
                    let method = v.get("method").and_then(Value::as_str).unwrap_or_default();
                    let no = refusal(&id, method);
                    if let Ok(req) = message_request(
                        back.t,
                        back.authority,
                        back.session.as_deref(),
                        back.version,
                        &no,
                    ) {
                        let client = back.client.clone();
                        tokio::spawn(async move {
                            let _ = send(&client, req, Duration::from_secs(10)).await;
                        });
                    }
                }
                continue;
            }
            if let (Some(tx), true) = (notify, v.get("method").is_some()) {
                let _ = tx.send(v).await;
            }
        }
    }
}

/// Ends a target's session (`DELETE` with its `Mcp-Session-Id`); failures are only logged.
pub async fn delete(client: &HttpClient, t: &McpTarget, authority: &str, session: &str) {
    let Ok(u) = uri(authority, &t.path) else {
        return;
    };
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.method_mut() = Method::DELETE;
    *req.uri_mut() = u;
    if let Some(host) = host_header(t) {
        req.headers_mut().insert(header::HOST, host);
    }
    if let Ok(s) = HeaderValue::from_str(session) {
        req.headers_mut().insert("mcp-session-id", s);
    }
    if let Err(e) = send(client, req, Duration::from_secs(5)).await {
        tracing::debug!(target = %t.name, error = %e, "ending the upstream MCP session failed");
    }
}

/// Opens a streamable-HTTP target's own stream of session `session` (`GET`): its body of
/// events, or `None` when the target offers none (405).
pub async fn open_stream(
    client: &HttpClient,
    t: &McpTarget,
    authority: &str,
    session: &str,
    version: &str,
) -> Result<Option<Incoming>, TargetError> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = uri(authority, &t.path)?;
    let h = req.headers_mut();
    if let Some(host) = host_header(t) {
        h.insert(header::HOST, host);
    }
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    if let Ok(s) = HeaderValue::from_str(session) {
        h.insert("mcp-session-id", s);
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        h.insert("mcp-protocol-version", v);
    }
    let resp = send(client, req, Duration::from_secs(30)).await?;
    match resp.status() {
        StatusCode::METHOD_NOT_ALLOWED => Ok(None),
        StatusCode::NOT_FOUND => Err(TargetError::SessionGone),
        s if s.is_success() => Ok(Some(resp.into_body())),
        s => Err(TargetError::Status(s.as_u16(), "opening its stream".into())),
    }
}

/// A call waiting for its answer on an SSE connection.
type Pending = HashMap<String, oneshot::Sender<Value>>;

/// Where notifications of a call in flight go, with the call's progress token.
type Sink = (Option<Value>, mpsc::Sender<Value>);

/// One HTTP+SSE connection to a target: the GET stream and the URL to POST to.
pub struct SseConn {
    target: McpTarget,
    client: HttpClient,
    post: Uri,
    pending: std::sync::Mutex<Pending>,
    /// Where the notifications the target sends go while a call is in flight.
    sinks: std::sync::Mutex<Vec<Sink>>,
    /// The client's own stream of the session on this replica, when it has one open: what the
    /// target sends outside calls.
    stream: std::sync::Mutex<Option<mpsc::Sender<Value>>>,
    alive: AtomicBool,
    reader: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for SseConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseConn")
            .field("target", &self.target.name)
            .field("post", &self.post)
            .finish()
    }
}

impl Drop for SseConn {
    fn drop(&mut self) {
        if let Ok(mut r) = self.reader.lock()
            && let Some(task) = r.take()
        {
            task.abort();
        }
    }
}

impl SseConn {
    /// Opens the stream and waits for its `endpoint` event.
    pub async fn open(
        client: &HttpClient,
        t: &McpTarget,
        authority: &str,
        timeout: Duration,
    ) -> Result<Arc<Self>, TargetError> {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri(authority, &t.path)?;
        if let Some(host) = host_header(t) {
            req.headers_mut().insert(header::HOST, host);
        }
        req.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let resp = send(client, req, timeout).await?;
        if !resp.status().is_success() {
            return Err(TargetError::Status(
                resp.status().as_u16(),
                "opening the event stream".into(),
            ));
        }
        let mut body = resp.into_body();
        let mut reader = sse::Reader::default();
        let deadline = tokio::time::Instant::now() + timeout;
        let endpoint = 'found: loop {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .map_err(|_| TargetError::Timeout(timeout))?;
            let Some(Ok(f)) = frame else {
                return Err(TargetError::Protocol(
                    "the event stream ended before its endpoint event".into(),
                ));
            };
            let Ok(data) = f.into_data() else { continue };
            for e in reader.push(&data).map_err(TargetError::Protocol)? {
                if e.name.as_deref() == Some("endpoint") {
                    break 'found e.data;
                }
            }
        };
        let post = resolve_endpoint(authority, &t.path, endpoint.trim())?;
        let conn = Arc::new(Self {
            target: t.clone(),
            client: client.clone(),
            post,
            pending: std::sync::Mutex::new(HashMap::new()),
            sinks: std::sync::Mutex::new(Vec::new()),
            stream: std::sync::Mutex::new(None),
            alive: AtomicBool::new(true),
            reader: std::sync::Mutex::new(None),
        });
        let weak = Arc::downgrade(&conn);
        let task = tokio::spawn(async move {
            loop {
                let frame = body.frame().await;
                let Some(conn) = weak.upgrade() else { return };
                let data = match frame {
                    Some(Ok(f)) => match f.into_data() {
                        Ok(d) => d,
                        Err(_) => continue,
                    },
                    _ => {
                        conn.alive.store(false, Ordering::Relaxed);
                        if let Ok(mut p) = conn.pending.lock() {
                            p.clear();
                        }
                        return;
                    }
                };
                let Ok(events) = reader.push(&data) else {
                    conn.alive.store(false, Ordering::Relaxed);
                    return;
                };
                for e in events {
                    if e.name.as_deref().is_some_and(|n| n != "message") {
                        continue;
                    }
                    let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
                        continue;
                    };
                    conn.deliver(v).await;
                }
            }
        });
        if let Ok(mut r) = conn.reader.lock() {
            *r = Some(task);
        }
        Ok(conn)
    }

    /// Whether the stream is still open.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Where the client's own stream of the session goes (`None`: it closed).
    pub fn set_stream(&self, tx: Option<mpsc::Sender<Value>>) {
        if let Ok(mut s) = self.stream.lock() {
            *s = tx;
        }
    }

    async fn deliver(&self, v: Value) {
        if v.get("method").is_none() {
            let key = v.get("id").map(Value::to_string).unwrap_or_default();
            let tx = self.pending.lock().ok().and_then(|mut p| p.remove(&key));
            if let Some(tx) = tx {
                let _ = tx.send(v);
            }
            return;
        }
        let method = v
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(id) = v.get("id") {
            tracing::debug!(target = %self.target.name, %method, "a request of an SSE target to the client is refused");
            let no = refusal(id, &method);
            if let Err(e) = self
                .post_message(&self.client, &no, Duration::from_secs(10))
                .await
            {
                tracing::debug!(target = %self.target.name, error = %e, "refusing a target's request failed");
            }
            return;
        }
        let sinks: Vec<Sink> = self.sinks.lock().map(|s| s.clone()).unwrap_or_default();
        let stream = self.stream.lock().ok().and_then(|s| s.clone());
        for tx in route(&v, &sinks, stream.as_ref()) {
            let _ = tx.send(v.clone()).await;
        }
    }

    async fn post_message(
        &self,
        client: &HttpClient,
        msg: &Value,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        let mut req = Request::new(Full::new(Bytes::from(
            serde_json::to_vec(msg).unwrap_or_default(),
        )));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.post.clone();
        if let Some(host) = host_header(&self.target) {
            req.headers_mut().insert(header::HOST, host);
        }
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let resp = send(client, req, timeout).await?;
        if resp.status().is_success() {
            Ok(())
        } else if resp.status() == StatusCode::NOT_FOUND {
            Err(TargetError::SessionGone)
        } else {
            Err(TargetError::Status(
                resp.status().as_u16(),
                "posting a message".into(),
            ))
        }
    }

    /// Sends a request (its id is the gateway's) and waits for its answer.
    pub async fn request(
        &self,
        client: &HttpClient,
        msg: &Value,
        notify: Option<&mpsc::Sender<Value>>,
        timeout: Duration,
    ) -> Result<Value, TargetError> {
        if !self.alive() {
            return Err(TargetError::Unreachable("its event stream ended".into()));
        }
        let key = msg.get("id").map(Value::to_string).unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(key.clone(), tx);
        }
        if let (Some(n), Ok(mut s)) = (notify, self.sinks.lock()) {
            let token = msg.pointer("/params/_meta/progressToken").cloned();
            s.push((token, n.clone()));
        }
        let result = async {
            self.post_message(client, msg, timeout).await?;
            match tokio::time::timeout(timeout, rx).await {
                Err(_) => Err(TargetError::Timeout(timeout)),
                Ok(Err(_)) => Err(TargetError::Unreachable(
                    "its event stream ended before the answer".into(),
                )),
                Ok(Ok(v)) => Ok(v),
            }
        }
        .await;
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&key);
        }
        if let (Some(n), Ok(mut s)) = (notify, self.sinks.lock()) {
            s.retain(|(_, x)| !x.same_channel(n));
        }
        result
    }

    /// Sends a notification.
    pub async fn notify(
        &self,
        client: &HttpClient,
        msg: &Value,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        self.post_message(client, msg, timeout).await
    }
}

/// Where an SSE target's notification goes: progress to the call whose progress token it
/// names (every call in flight when none matches); log messages to the calls in flight, else
/// to the client's own stream; the rest (`list_changed`, `resources/updated`, ...) to the
/// client's own stream. Pure.
fn route<'a>(
    v: &Value,
    sinks: &'a [Sink],
    stream: Option<&'a mpsc::Sender<Value>>,
) -> Vec<&'a mpsc::Sender<Value>> {
    let method = v.get("method").and_then(Value::as_str).unwrap_or_default();
    let calls = || sinks.iter().map(|(_, tx)| tx).collect::<Vec<_>>();
    match method {
        "notifications/progress" => {
            let token = v.pointer("/params/progressToken");
            let matching: Vec<_> = sinks
                .iter()
                .filter(|(t, _)| t.is_some() && t.as_ref() == token)
                .map(|(_, tx)| tx)
                .collect();
            if matching.is_empty() {
                calls()
            } else {
                matching
            }
        }
        "notifications/message" if !sinks.is_empty() => calls(),
        _ => stream.into_iter().collect(),
    }
}

/// The POST URL an `endpoint` event names: a path (relative to the target) or an absolute URL
/// of the same host (another host is refused: the target may not send the gateway elsewhere).
pub fn resolve_endpoint(authority: &str, sse_path: &str, data: &str) -> Result<Uri, TargetError> {
    if let Some(rest) = data
        .strip_prefix("http://")
        .or_else(|| data.strip_prefix("https://"))
    {
        let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !auth.eq_ignore_ascii_case(authority) {
            return Err(TargetError::Protocol(format!(
                "its endpoint event names another host ({auth}); the gateway posts only to the target"
            )));
        }
        return uri(authority, if path.is_empty() { "/" } else { path });
    }
    let path = if data.starts_with('/') {
        data.to_string()
    } else {
        // Relative to the SSE path's directory.
        let dir = sse_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{data}")
    };
    uri(authority, &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_sse_targets_notifications_go_to_their_call_or_the_clients_stream() {
        let (a, _ra) = mpsc::channel(1);
        let (b, _rb) = mpsc::channel(1);
        let (s, _rs) = mpsc::channel(1);
        let sinks = vec![(Some(json!("tok-a")), a.clone()), (None, b.clone())];
        let progress = json!({"method": "notifications/progress", "params": {"progressToken": "tok-a", "progress": 1}});
        let to = route(&progress, &sinks, Some(&s));
        assert!(to.len() == 1 && to[0].same_channel(&a), "its own call only");
        let log =
            json!({"method": "notifications/message", "params": {"level": "info", "data": "x"}});
        assert_eq!(
            route(&log, &sinks, Some(&s)).len(),
            2,
            "the calls in flight"
        );
        let to = route(&log, &[], Some(&s));
        assert!(
            to.len() == 1 && to[0].same_channel(&s),
            "no call: the stream"
        );
        let changed = json!({"method": "notifications/tools/list_changed"});
        let to = route(&changed, &sinks, Some(&s));
        assert!(to.len() == 1 && to[0].same_channel(&s));
        assert!(
            route(&changed, &sinks, None).is_empty(),
            "no stream open: dropped"
        );
    }

    #[test]
    fn endpoint_events_resolve_on_the_target_only() {
        let u = resolve_endpoint("127.0.0.1:9", "/sse", "/messages/?session_id=ab").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9/messages/?session_id=ab");
        let u = resolve_endpoint("127.0.0.1:9", "/x/sse", "messages?s=1").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9/x/messages?s=1");
        let u = resolve_endpoint("127.0.0.1:9", "/sse", "http://127.0.0.1:9/m?s=1").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:9/m?s=1");
        assert!(resolve_endpoint("127.0.0.1:9", "/sse", "http://169.254.169.254/m").is_err());
    }
}
