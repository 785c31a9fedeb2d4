//! What targets send besides answers: notifications and their own requests to the client.
//!
//! - [`to_client`] (pure): a target's message in the client's terms. Notifications pass as
//!   they are (`list_changed` of tools, prompts or resources then means the merged list
//!   changed: the client lists again), except `notifications/resources/updated`, whose URI is
//!   federated like a listed resource's. A request of the target (sampling, roots, elicitation,
//!   ping) gets an id that names its target ([`client_id`]), so that the client's answer, POSTed
//!   to any replica, finds its way back ([`target_id`]); agentgateway remaps these ids the same
//!   way.
//! - [`stream`]: the client's `GET` on the streamable-HTTP endpoint with its session id: an
//!   event stream of what the session's targets send outside any call. For a streamable-HTTP
//!   target the replica opens its own `GET` to the target with the target's session (any
//!   replica can: the session id carries it; reopened when the target ends it); for an SSE
//!   target, the replica's own connection of that session, when it has one (an SSE target's
//!   session lives on the replica that opened it).
//! - [`answer_from_client`]: the client's answer to a target's request, sent to that target.
//!
//! Requests of SSE targets are refused with a JSON-RPC error (see [`super::upstream`]): the
//! client's answer could reach another replica, whose connection to the target is another
//! upstream session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::McpState;
use super::naming::{self, ListKind};
use super::sse;
use super::token::SessionState;
use super::upstream::{self, HttpClient, TargetError};
use crate::config::mcp::{McpBackend, McpProtocol, McpTarget};

/// What ids of targets' requests start with, as the client sees them.
const ID_PREFIX: &str = "fgs:";

/// How often the stream to the client carries a comment when nothing else happens (keeps
/// proxies from closing it as idle).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// After a target's stream ends or fails, how long before it is opened again.
const REOPEN: Duration = Duration::from_secs(1);

/// The id the client sees for request `id` of target `target`.
pub fn client_id(target: &str, id: &Value) -> Value {
    Value::String(format!("{ID_PREFIX}{}", json!([target, id])))
}

/// The target and its own id, for an id made by [`client_id`].
pub fn target_id(id: &Value) -> Option<(String, Value)> {
    let rest = id.as_str()?.strip_prefix(ID_PREFIX)?;
    let v: Value = serde_json::from_str(rest).ok()?;
    let [t, id] = v.as_array()?.as_slice() else {
        return None;
    };
    Some((t.as_str()?.to_string(), id.clone()))
}

/// Whether `msg` is a request (it has a method and an id).
pub fn is_request(msg: &Value) -> bool {
    msg.get("method").is_some() && msg.get("id").is_some()
}

/// Target `target`'s message `msg` as the client sees it (`prefix`: the backend prefixes
/// names); `None` for what the client must not get (responses: the gateway sent no request
/// that the client knows of).
pub fn to_client(target: &str, prefix: bool, mut msg: Value) -> Option<Value> {
    let method = msg.get("method").and_then(Value::as_str)?.to_string();
    if let Some(id) = msg.get("id").cloned() {
        msg["id"] = client_id(target, &id);
        return Some(msg);
    }
    if method == "notifications/resources/updated"
        && let Some(uri) = msg
            .pointer("/params/uri")
            .and_then(Value::as_str)
            .map(str::to_string)
    {
        msg["params"]["uri"] =
            Value::String(naming::federated(ListKind::Resources, prefix, target, &uri));
    }
    if method == "notifications/cancelled"
        && let Some(rid) = msg.pointer("/params/requestId").cloned()
    {
        // The target gave up a request of its own: the client knows it by the remapped id.
        msg["params"]["requestId"] = client_id(target, &rid);
    }
    Some(msg)
}

/// One target's side of the client's stream: where its messages come from.
struct Feed {
    target: McpTarget,
    prefix: bool,
}

/// Opens the stream of `session` for the client: the events to send it, until it leaves
/// (dropping the receiver stops every task of the stream, and the targets' streams with them).
pub fn stream(
    state: Arc<McpState>,
    client: HttpClient,
    backend: &McpBackend,
    session: &SessionState,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let prefix = backend.prefix_mode.prefixes(backend.targets.len());
    let mut tasks = Vec::new();
    for ts in &session.targets {
        let Some(t) = backend.targets.iter().find(|t| t.name == ts.name) else {
            continue;
        };
        let feed = Feed {
            target: t.clone(),
            prefix,
        };
        let tx = tx.clone();
        match t.protocol {
            McpProtocol::StreamableHttp => {
                let Some(sid) = ts.session.clone() else {
                    // A target without sessions has no stream of the session to follow.
                    continue;
                };
                let client = client.clone();
                let (authority, version) = (ts.authority.clone(), ts.version.clone());
                tasks.push(tokio::spawn(async move {
                    follow_http(&client, &feed, &authority, &sid, &version, &tx).await;
                }));
            }
            McpProtocol::Sse => {
                let Some(conn) = state.sse_conn(&session.id, &t.name) else {
                    continue;
                };
                tasks.push(tokio::spawn(async move {
                    let (ntx, mut nrx) = mpsc::channel::<Value>(64);
                    conn.set_stream(Some(ntx));
                    while let Some(v) = nrx.recv().await {
                        if !send(&tx, &feed, v).await {
                            break;
                        }
                    }
                    conn.set_stream(None);
                }));
            }
        }
    }
    tokio::spawn(async move {
        let _abort = AbortOnDrop(tasks);
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(KEEPALIVE) => {
                    if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Ends the tasks of a client's stream with it.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Sends target `feed`'s message to the client; `false` once the client is gone.
async fn send(tx: &mpsc::Sender<Bytes>, feed: &Feed, v: Value) -> bool {
    let Some(m) = to_client(&feed.target.name, feed.prefix, v) else {
        return true;
    };
    tx.send(sse::encode(Some("message"), &m.to_string()))
        .await
        .is_ok()
}

/// Follows a streamable-HTTP target's stream of session `sid` until the client leaves, the
/// target says it has none (405) or no longer knows the session (404).
async fn follow_http(
    client: &HttpClient,
    feed: &Feed,
    authority: &str,
    sid: &str,
    version: &str,
    tx: &mpsc::Sender<Bytes>,
) {
    let t = &feed.target;
    loop {
        match upstream::open_stream(client, t, authority, sid, version).await {
            Ok(None) => {
                tracing::debug!(target = %t.name, "the target has no stream of its own (405)");
                return;
            }
            Err(TargetError::SessionGone) => {
                tracing::info!(target = %t.name, "the target no longer knows the session; its stream ends");
                return;
            }
            Err(e) => {
                tracing::debug!(target = %t.name, error = %e, "opening the target's stream failed; trying again");
            }
            Ok(Some(mut body)) => {
                let mut reader = sse::Reader::default();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let Ok(events) = reader.push(&data) else {
                        break;
                    };
                    for e in events {
                        if e.name.as_deref().is_some_and(|n| n != "message") || e.data.is_empty() {
                            continue;
                        }
                        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
                            continue;
                        };
                        if !send(tx, feed, v).await {
                            return;
                        }
                    }
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(REOPEN).await;
    }
}

/// The client's answer `body` (its `id` made by [`client_id`]) to a target's request, sent to
/// that target within `session`; `Err` says why it could not be.
pub async fn answer_from_client(
    state: &McpState,
    client: &HttpClient,
    backend: &McpBackend,
    session: &SessionState,
    body: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let (name, own) = target_id(&id).ok_or_else(|| {
        format!("the answer's id {id} names no request of a target of this session")
    })?;
    let t = backend
        .targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("no target {name:?} in this backend"))?;
    let ts = session
        .targets
        .iter()
        .find(|x| x.name == name)
        .ok_or_else(|| format!("target {name:?} is not part of this session"))?;
    let mut msg = body.clone();
    msg["id"] = own;
    match t.protocol {
        McpProtocol::StreamableHttp => upstream::post(
            client,
            t,
            &ts.authority,
            ts.session.as_deref(),
            Some(&ts.version),
            &msg,
            None,
            timeout,
        )
        .await
        .map(|_| ())
        .map_err(|e| format!("MCP target {name} failed: {e}")),
        McpProtocol::Sse => match state.sse_conn(&session.id, &name) {
            Some(c) => c
                .notify(client, &msg, timeout)
                .await
                .map_err(|e| format!("MCP target {name} failed: {e}")),
            None => Err(format!(
                "MCP target {name} speaks SSE and its connection of this session is on another replica"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_targets_requests_name_their_target_and_come_back() {
        for id in [json!(7), json!("abc"), json!("fgs:[\"x\",1]")] {
            let c = client_id("alpha", &id);
            assert!(c.as_str().unwrap().starts_with("fgs:"), "{c}");
            assert_eq!(target_id(&c), Some(("alpha".to_string(), id)));
        }
        assert_eq!(target_id(&json!(7)), None, "an id the gateway did not make");
        assert_eq!(target_id(&json!("fgs:[1]")), None);
        assert_eq!(target_id(&json!("fgs:not json")), None);
    }

    #[test]
    fn targets_messages_are_put_in_the_clients_terms() {
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        assert_eq!(to_client("alpha", true, changed.clone()), Some(changed));
        let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "memo://a/readme"}});
        assert_eq!(
            to_client("alpha", true, updated.clone()).unwrap()["params"]["uri"],
            "alpha+memo://a/readme"
        );
        assert_eq!(
            to_client("alpha", false, updated).unwrap()["params"]["uri"],
            "memo://a/readme",
            "prefixMode Never: URIs as the target has them"
        );
        let sampling =
            json!({"jsonrpc": "2.0", "id": 3, "method": "sampling/createMessage", "params": {}});
        let out = to_client("beta", true, sampling).unwrap();
        assert_eq!(target_id(&out["id"]), Some(("beta".into(), json!(3))));
        let cancelled = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}});
        let out = to_client("beta", true, cancelled).unwrap();
        assert_eq!(out["params"]["requestId"], client_id("beta", &json!(3)));
        let response = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
        assert_eq!(to_client("beta", true, response), None);
    }

    #[test]
    fn targets_are_offered_the_clients_capabilities_their_requests_need() {
        use super::super::federate::offered_to_targets;
        let client =
            json!({"sampling": {}, "roots": {"listChanged": true}, "experimental": {"x": {}}});
        assert_eq!(
            offered_to_targets(Some(&client)),
            json!({"sampling": {}, "roots": {"listChanged": true}})
        );
        assert_eq!(offered_to_targets(None), json!({}));
    }
}
