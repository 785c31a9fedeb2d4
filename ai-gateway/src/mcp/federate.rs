//! The federation: what the gateway answers each client message, over the backend's targets.
//!
//! - `initialize`: the version negotiated with the client ([`super::negotiate`]); with
//!   `sessionRouting: Stateful`, every target initialized (the gateway offers [`super::LATEST`]
//!   and accepts any of [`super::VERSIONS`]) and their sessions sealed into the client's
//!   session id; `Stateless`: no session, each later request initializes the targets it needs.
//! - `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`: every target
//!   asked at once (all pages), the lists merged with [`super::naming`]. A target that fails
//!   fails the request (`FailClosed`, a JSON-RPC error naming it) or is left out (`FailOpen`);
//!   a target without the capability (-32601) has an empty list.
//! - `tools/call`, `prompts/get`, `completion/complete` (by name), `resources/read`,
//!   `resources/subscribe`, `resources/unsubscribe` (by URI): sent to the target the name
//!   names, with its own name; the notifications it sends meanwhile (progress, logging) go to
//!   the client; `notifications/cancelled` reaches the target of the call it cancels.
//! - `ping`: answered by the gateway; `logging/setLevel`: sent to every target.
//! - With `spec.policies.mcp.authorization`: every list filtered to what the caller may use,
//!   and a routed request for anything else refused before it reaches a target
//!   ([`super::authorize`]).
//! - Tool pinning ([`super::pins`]): `tools/list` leaves out tools whose definition is not the
//!   pinned one, and `tools/call` of such a tool is refused (-32602, saying how to accept it).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::authorize::Caller;
use super::jsonrpc::{self, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use super::naming::{self, ListKind};
use super::pins;
use super::token::{SessionState, TargetSession};
use super::upstream::{self, HttpClient, SseConn, TargetError};
use super::{LATEST, McpState, VERSIONS};
use crate::config::mcp::{FailureMode, McpBackend, McpProtocol, McpTarget, SessionRouting};

/// Most pages the gateway reads of one target's list.
const MAX_PAGES: usize = 100;

/// One request's view of the backend.
pub struct Fed<'a> {
    pub state: &'a McpState,
    pub client: &'a HttpClient,
    pub backend: &'a McpBackend,
    pub tenant: &'a str,
    pub route: &'a str,
    pub keys: &'a crate::config::mcp::SessionKeyRing,
    pub timeout: Duration,
    /// Who asks, and what they may use ([`super::authorize`]).
    pub caller: &'a Caller,
}

/// A target's session, ready for messages.
enum Link {
    Http {
        authority: String,
        session: Option<String>,
        version: String,
    },
    Sse(std::sync::Arc<SseConn>),
}

/// What became of `initialize`.
pub struct Initialized {
    /// The answer to the client.
    pub response: Value,
    /// The session id to hand the client (`None`: stateless, or the request failed).
    pub session: Option<String>,
}

fn target_error(t: &McpTarget, e: &TargetError) -> String {
    format!("MCP target {} failed: {e}", t.name)
}

impl Fed<'_> {
    fn names(&self) -> Vec<&str> {
        self.backend
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .collect()
    }

    fn prefix(&self) -> bool {
        self.backend
            .prefix_mode
            .prefixes(self.backend.targets.len())
    }

    /// `initialize` for a target, offering `capabilities` (the client's, see
    /// [`offered_to_targets`]).
    fn initialize_msg(&self, capabilities: &Value) -> Value {
        jsonrpc::request(
            &self.state.next_id(),
            "initialize",
            Some(&json!({
                "protocolVersion": LATEST,
                "capabilities": capabilities,
                "clientInfo": {"name": "fleetgate-ai-gateway", "version": env!("CARGO_PKG_VERSION")},
            })),
        )
    }

    fn accepted_version(t: &McpTarget, answer: &Value) -> Result<String, TargetError> {
        let result = jsonrpc::outcome(answer)
            .map_err(|(c, m)| TargetError::Protocol(format!("initialize failed ({c}): {m}")))?;
        let v = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if VERSIONS.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(TargetError::Protocol(format!(
                "target {} negotiated protocol version {v:?}, which the gateway does not speak ({})",
                t.name,
                VERSIONS.join(", ")
            )))
        }
    }

    /// Opens a session with target `i` (the `n`th endpoint), offering the client's
    /// `capabilities` to a streamable-HTTP target.
    async fn open(
        &self,
        i: usize,
        n: usize,
        capabilities: &Value,
    ) -> Result<(TargetSession, Link), TargetError> {
        let t = &self.backend.targets[i];
        let authority = upstream::authority(t, n);
        let init = self.initialize_msg(match t.protocol {
            McpProtocol::StreamableHttp => capabilities,
            // Its requests are refused (super::upstream): it is offered none.
            McpProtocol::Sse => &NONE,
        });
        let initialized = jsonrpc::notification("notifications/initialized", None);
        match t.protocol {
            McpProtocol::StreamableHttp => {
                let posted = upstream::post(
                    self.client,
                    t,
                    &authority,
                    None,
                    None,
                    &init,
                    None,
                    self.timeout,
                )
                .await?;
                let answer = posted
                    .response
                    .ok_or_else(|| TargetError::Protocol("no answer to initialize".into()))?;
                let version = Self::accepted_version(t, &answer)?;
                upstream::post(
                    self.client,
                    t,
                    &authority,
                    posted.session.as_deref(),
                    Some(&version),
                    &initialized,
                    None,
                    self.timeout,
                )
                .await?;
                Ok((
                    TargetSession {
                        name: t.name.clone(),
                        authority: authority.clone(),
                        session: posted.session.clone(),
                        version: version.clone(),
                    },
                    Link::Http {
                        authority,
                        session: posted.session,
                        version,
                    },
                ))
            }
            McpProtocol::Sse => {
                let conn = SseConn::open(self.client, t, &authority, self.timeout).await?;
                tracing::info!(tenant = self.tenant, route = self.route, target = %t.name, %authority, "MCP SSE target connected for a session");
                let answer = conn.request(self.client, &init, None, self.timeout).await?;
                let version = Self::accepted_version(t, &answer)?;
                conn.notify(self.client, &initialized, self.timeout).await?;
                Ok((
                    TargetSession {
                        name: t.name.clone(),
                        authority,
                        session: None,
                        version,
                    },
                    Link::Sse(conn),
                ))
            }
        }
    }

    /// Target `i`'s side of `session` (an SSE connection this replica lacks is opened and
    /// initialized again); without a session, a fresh one (stateless).
    async fn link(&self, session: Option<&SessionState>, i: usize) -> Result<Link, TargetError> {
        let t = &self.backend.targets[i];
        let Some(s) = session else {
            return self.open(i, 0, &NONE).await.map(|(_, l)| l);
        };
        let Some(ts) = s.targets.iter().find(|x| x.name == t.name) else {
            return Err(TargetError::Protocol(format!(
                "target {} joined the backend after this session began; initialize a new session",
                t.name
            )));
        };
        match t.protocol {
            McpProtocol::StreamableHttp => Ok(Link::Http {
                authority: ts.authority.clone(),
                session: ts.session.clone(),
                version: ts.version.clone(),
            }),
            McpProtocol::Sse => {
                if let Some(c) = self.state.sse_conn(&s.id, &t.name) {
                    return Ok(Link::Sse(c));
                }
                let n = t
                    .endpoints
                    .iter()
                    .position(|e| e.to_string() == ts.authority)
                    .unwrap_or(0);
                let (_, link) = self.open(i, n, &NONE).await?;
                if let Link::Sse(c) = &link {
                    self.state.put_sse_conn(&s.id, &t.name, c.clone());
                }
                Ok(link)
            }
        }
    }

    /// Ends a link opened for one stateless request.
    async fn close(&self, i: usize, link: &Link) {
        if let Link::Http {
            authority,
            session: Some(s),
            ..
        } = link
        {
            upstream::delete(self.client, &self.backend.targets[i], authority, s).await;
        }
    }

    async fn send(
        &self,
        i: usize,
        link: &Link,
        msg: &Value,
        notify: Option<&mpsc::Sender<Value>>,
    ) -> Result<Value, TargetError> {
        let t = &self.backend.targets[i];
        match link {
            Link::Http {
                authority,
                session,
                version,
            } => upstream::post(
                self.client,
                t,
                authority,
                session.as_deref(),
                Some(version),
                msg,
                notify,
                self.timeout,
            )
            .await?
            .response
            .ok_or_else(|| TargetError::Protocol("no answer to a request (HTTP 202)".into())),
            Link::Sse(c) => c.request(self.client, msg, notify, self.timeout).await,
        }
    }

    async fn notify(&self, i: usize, link: &Link, msg: &Value) -> Result<(), TargetError> {
        let t = &self.backend.targets[i];
        match link {
            Link::Http {
                authority,
                session,
                version,
            } => upstream::post(
                self.client,
                t,
                authority,
                session.as_deref(),
                Some(version),
                msg,
                None,
                self.timeout,
            )
            .await
            .map(|_| ()),
            Link::Sse(c) => c.notify(self.client, msg, self.timeout).await,
        }
    }

    /// One request to target `i` within `session` (or a stateless one), its answer as sent.
    async fn request(
        &self,
        session: Option<&SessionState>,
        i: usize,
        method: &str,
        params: Option<&Value>,
        notify: Option<&mpsc::Sender<Value>>,
        client_id: Option<&Value>,
    ) -> Result<Value, TargetError> {
        let link = self.link(session, i).await?;
        let id = client_id.map_or_else(|| self.state.next_id(), super::call_id);
        if let (Some(s), Some(cid)) = (session, client_id) {
            self.state.track(&s.id, cid, i, id.clone());
        }
        let answer = self
            .send(i, &link, &jsonrpc::request(&id, method, params), notify)
            .await;
        if let (Some(s), Some(cid)) = (session, client_id) {
            self.state.untrack(&s.id, cid);
        }
        if session.is_none() {
            self.close(i, &link).await;
        }
        answer
    }

    /// `initialize` from the client.
    pub async fn initialize(&self, id: &Value, params: Option<&Value>) -> Initialized {
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let version = super::negotiate(requested);
        let stateful = self.backend.session_routing == SessionRouting::Stateful;
        let answer = |session| Initialized {
            response: jsonrpc::result(
                id,
                json!({
                    "protocolVersion": version,
                    // list_changed and resources/updated reach a stateful session's own stream
                    // (super::notify).
                    "capabilities": {
                        "tools": {"listChanged": stateful},
                        "prompts": {"listChanged": stateful},
                        "resources": {"listChanged": stateful, "subscribe": stateful},
                        "logging": {},
                    },
                    "serverInfo": {"name": "fleetgate", "version": env!("CARGO_PKG_VERSION")},
                }),
            ),
            session,
        };
        if self.backend.session_routing == SessionRouting::Stateless {
            return answer(None);
        }
        let offered = offered_to_targets(params.and_then(|p| p.get("capabilities")));
        let opened = futures::future::join_all(
            (0..self.backend.targets.len()).map(|i| self.open(i, rand_index(self.state), &offered)),
        )
        .await;
        let sid = self.state.random_hex(16);
        let mut targets = Vec::new();
        for (i, r) in opened.into_iter().enumerate() {
            let t = &self.backend.targets[i];
            match r {
                Ok((ts, link)) => {
                    if let Link::Sse(c) = link {
                        self.state.put_sse_conn(&sid, &t.name, c);
                    }
                    targets.push(ts);
                }
                Err(e) if self.backend.failure_mode == FailureMode::FailOpen => {
                    tracing::warn!(tenant = self.tenant, route = self.route, target = %t.name, error = %e, "MCP target left out of the session (FailOpen)");
                }
                Err(e) => {
                    tracing::warn!(tenant = self.tenant, route = self.route, target = %t.name, error = %e, "MCP initialize failed (FailClosed)");
                    self.state.end_session(&sid);
                    for ts in &targets {
                        if let (Some(s), Some(t)) = (
                            &ts.session,
                            self.backend.targets.iter().find(|t| t.name == ts.name),
                        ) {
                            upstream::delete(self.client, t, &ts.authority, s).await;
                        }
                    }
                    return Initialized {
                        response: jsonrpc::error(id, INTERNAL_ERROR, &target_error(t, &e)),
                        session: None,
                    };
                }
            }
        }
        let state = SessionState {
            id: sid,
            version: version.to_string(),
            targets,
        };
        let token = super::token::seal(
            self.keys,
            self.state.nonce(),
            self.tenant,
            self.route,
            &state,
        );
        answer(Some(token))
    }

    /// Opens a session id of this route.
    pub fn open_session(&self, token: &str) -> Option<SessionState> {
        super::token::open(self.keys, self.tenant, self.route, token)
    }

    /// Ends `session`: every target's upstream session, and this replica's connections.
    pub async fn end(&self, session: &SessionState) {
        for ts in &session.targets {
            if let (Some(s), Some(t)) = (
                &ts.session,
                self.backend.targets.iter().find(|t| t.name == ts.name),
            ) {
                upstream::delete(self.client, t, &ts.authority, s).await;
            }
        }
        self.state.end_session(&session.id);
    }

    /// A notification from the client.
    pub async fn notification(
        &self,
        session: Option<&SessionState>,
        method: &str,
        params: Option<&Value>,
    ) {
        if method != "notifications/cancelled" {
            // notifications/initialized: the gateway initialized its targets itself; others
            // (roots/list_changed) are for features it does not forward.
            return;
        }
        let (Some(s), Some(rid)) = (session, params.and_then(|p| p.get("requestId"))) else {
            return;
        };
        let mut p = params.cloned().unwrap_or(json!({}));
        let to: Vec<usize> = match self.state.tracked(&s.id, rid) {
            Some((i, up)) => {
                p["requestId"] = up;
                vec![i]
            }
            // Not in flight on this replica: on another one (or over). Its target is unknown
            // here, its id is not; every streamable-HTTP target of the session gets the
            // cancellation (a target ignores one for a request it does not have). An SSE
            // target's call lives on the replica holding its connection.
            None => {
                p["requestId"] = super::call_id(rid);
                (0..self.backend.targets.len())
                    .filter(|i| {
                        let t = &self.backend.targets[*i];
                        t.protocol == McpProtocol::StreamableHttp
                            && s.targets.iter().any(|x| x.name == t.name)
                    })
                    .collect()
            }
        };
        let msg = jsonrpc::notification("notifications/cancelled", Some(&p));
        for i in to {
            if let Ok(link) = self.link(Some(s), i).await
                && let Err(e) = self.notify(i, &link, &msg).await
            {
                tracing::info!(target = %self.backend.targets[i].name, error = %e, "forwarding a cancellation failed");
            }
        }
    }

    /// Every entry of one list of target `i`, all pages; `Ok(empty)` when it lacks the
    /// capability.
    async fn list_one(
        &self,
        session: Option<&SessionState>,
        i: usize,
        kind: ListKind,
    ) -> Result<Vec<Value>, TargetError> {
        let mut out = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let answer = self
                .request(session, i, kind.method(), params.as_ref(), None, None)
                .await?;
            match jsonrpc::outcome(&answer) {
                Err((METHOD_NOT_FOUND, _)) => return Ok(out),
                Err((c, m)) => {
                    return Err(TargetError::Protocol(format!(
                        "{} failed ({c}): {m}",
                        kind.method()
                    )));
                }
                Ok(r) => {
                    if let Some(list) = r.get(kind.field()).and_then(Value::as_array) {
                        out.extend(list.iter().cloned());
                    }
                    match r.get("nextCursor") {
                        Some(c) if !c.is_null() => cursor = Some(c.clone()),
                        _ => return Ok(out),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every target's list of `kind`, each with its target's name, per the failure mode.
    async fn lists(
        &self,
        session: Option<&SessionState>,
        kind: ListKind,
    ) -> Result<Vec<(String, Vec<Value>)>, String> {
        let live: Vec<usize> = (0..self.backend.targets.len())
            .filter(|i| {
                session.is_none_or(|s| {
                    s.targets
                        .iter()
                        .any(|t| t.name == self.backend.targets[*i].name)
                })
            })
            .collect();
        let results =
            futures::future::join_all(live.iter().map(|i| self.list_one(session, *i, kind))).await;
        let mut out = Vec::new();
        for (i, r) in live.into_iter().zip(results) {
            let t = &self.backend.targets[i];
            match r {
                Ok(list) => out.push((t.name.clone(), self.caller.filter(kind, &t.name, list))),
                Err(e) if self.backend.failure_mode == FailureMode::FailOpen => {
                    tracing::warn!(tenant = self.tenant, route = self.route, target = %t.name, error = %e, "MCP target left out of {} (FailOpen)", kind.method());
                }
                Err(e) => return Err(target_error(t, &e)),
            }
        }
        Ok(out)
    }

    /// A merged list.
    async fn merged(&self, session: Option<&SessionState>, id: &Value, kind: ListKind) -> Value {
        match self.lists(session, kind).await {
            Err(e) => jsonrpc::error(id, INTERNAL_ERROR, &e),
            Ok(mut lists) => {
                if kind == ListKind::Tools {
                    self.pin_tools(&mut lists);
                }
                let (merged, dropped) = naming::merge(kind, self.prefix(), lists);
                for d in dropped {
                    tracing::info!(tenant = self.tenant, route = self.route, target = %d.target, name = %d.name, why = d.why, "MCP entry left out of {}", kind.method());
                }
                jsonrpc::result(id, json!({ kind.field(): merged }))
            }
        }
    }

    /// The target and own name of a federated `name` of `kind`.
    async fn resolve(
        &self,
        session: Option<&SessionState>,
        kind: ListKind,
        name: &str,
    ) -> Result<(usize, String), String> {
        let what = match kind {
            ListKind::Tools => "tool",
            ListKind::Prompts => "prompt",
            ListKind::Resources | ListKind::ResourceTemplates => "resource",
        };
        if self.prefix() {
            return naming::split(kind, &self.names(), name)
                .map(|(i, own)| (i, own.to_string()))
                .ok_or_else(|| {
                    format!(
                        "unknown {what} {name:?}: this server's names are <target>{}<name>, the targets being {}",
                        kind.separator(),
                        self.names().join(", ")
                    )
                });
        }
        if self.backend.targets.len() == 1 {
            return Ok((0, name.to_string()));
        }
        // prefixMode Never with several targets: the first target that lists it.
        let lists = self.lists(session, kind).await?;
        lists
            .iter()
            .find(|(_, l)| {
                l.iter()
                    .any(|e| e.get(kind.key()).and_then(Value::as_str) == Some(name))
            })
            .and_then(|(t, _)| self.backend.targets.iter().position(|x| &x.name == t))
            .map(|i| (i, name.to_string()))
            .ok_or_else(|| format!("unknown {what} {name:?}: no target lists it"))
    }

    /// A request the client sent (not `initialize`): the answer, and notifications the target
    /// sent meanwhile to `notify`.
    pub async fn request_from_client(
        &self,
        session: Option<&SessionState>,
        id: &Value,
        method: &str,
        params: Option<&Value>,
        notify: Option<&mpsc::Sender<Value>>,
    ) -> Value {
        let routed = |field: &str, kind: ListKind| -> Option<(ListKind, String, String)> {
            params
                .and_then(|p| p.get(field))
                .and_then(Value::as_str)
                .map(|n| (kind, field.to_string(), n.to_string()))
        };
        let by = match method {
            "ping" => return jsonrpc::result(id, json!({})),
            "tools/list" => return self.merged(session, id, ListKind::Tools).await,
            "prompts/list" => return self.merged(session, id, ListKind::Prompts).await,
            "resources/list" => return self.merged(session, id, ListKind::Resources).await,
            "resources/templates/list" => {
                return self.merged(session, id, ListKind::ResourceTemplates).await;
            }
            "logging/setLevel" => return self.broadcast(session, id, method, params).await,
            "tools/call" => routed("name", ListKind::Tools),
            "prompts/get" => routed("name", ListKind::Prompts),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                routed("uri", ListKind::Resources)
            }
            "completion/complete" => return self.complete(session, id, params, notify).await,
            _ => {
                return jsonrpc::error(
                    id,
                    METHOD_NOT_FOUND,
                    &format!("method {method:?} is not served by this MCP gateway"),
                );
            }
        };
        let Some((kind, field, name)) = by else {
            return jsonrpc::error(
                id,
                INVALID_PARAMS,
                &format!(
                    "{method} needs params.{}",
                    match method {
                        "tools/call" | "prompts/get" => "name",
                        _ => "uri",
                    }
                ),
            );
        };
        let (i, own) = match self.resolve(session, kind, &name).await {
            Ok(x) => x,
            Err(e) => return jsonrpc::error(id, INVALID_PARAMS, &e),
        };
        if !self
            .caller
            .allows(kind, &self.backend.targets[i].name, &own)
        {
            return Caller::refusal(id, kind, &name);
        }
        if method == "tools/call"
            && let Some(refusal) = self.withheld(session, i, &own, &name).await
        {
            return jsonrpc::error(id, INVALID_PARAMS, &refusal);
        }
        let mut p = params.cloned().unwrap_or(json!({}));
        p[field.as_str()] = Value::String(own);
        self.forward(session, id, i, method, &p, notify).await
    }

    /// Tool pinning ([`super::pins`]): leaves out of each target's tool list the tools whose
    /// definition is not the pinned one (logged).
    fn pin_tools(&self, lists: &mut [(String, Vec<Value>)]) {
        for (target, list) in lists.iter_mut() {
            list.retain(|tool| {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                let key = self.tool_key(target, name);
                let v = self
                    .state
                    .pins
                    .observe(self.tenant, &key, &pins::definition_hash(tool));
                if !v.serves() {
                    tracing::warn!(tenant = self.tenant, route = self.route, target = %target, tool = %name.chars().take(pins::MAX_TOOL_NAME).collect::<String>(), verdict = ?v, "MCP tool withheld from tools/list");
                }
                v.serves()
            });
        }
    }

    fn tool_key(&self, target: &str, tool: &str) -> pins::ToolKey {
        pins::ToolKey {
            route: self.route.to_string(),
            target: target.to_string(),
            tool: tool.to_string(),
        }
    }

    /// Why a call of tool `own` of target `i` (`federated` to the client) is refused, if it
    /// is: its last seen definition is not the pinned one. A replica that never listed the
    /// target's tools lists them first; a tool it cannot see is refused too.
    async fn withheld(
        &self,
        session: Option<&SessionState>,
        i: usize,
        own: &str,
        federated: &str,
    ) -> Option<String> {
        let t = &self.backend.targets[i];
        let key = self.tool_key(&t.name, own);
        let verdict = match self.state.pins.last_seen(self.tenant, &key) {
            Some(v) => v,
            None => {
                let mut lists = match self.list_one(session, i, ListKind::Tools).await {
                    Ok(list) => vec![(t.name.clone(), list)],
                    Err(e) => {
                        return Some(format!(
                            "tool {federated} cannot be checked against its pinned definition: {}",
                            target_error(t, &e)
                        ));
                    }
                };
                self.pin_tools(&mut lists);
                self.state.pins.last_seen(self.tenant, &key)?
            }
        };
        (!verdict.serves()).then(|| pins::withheld_message(federated, &t.name, own, &verdict))
    }

    /// Sends one routed request to target `i` and answers the client with its result (URIs in
    /// read results federated again) or error.
    async fn forward(
        &self,
        session: Option<&SessionState>,
        id: &Value,
        i: usize,
        method: &str,
        params: &Value,
        notify: Option<&mpsc::Sender<Value>>,
    ) -> Value {
        let t = &self.backend.targets[i];
        match self
            .request(session, i, method, Some(params), notify, Some(id))
            .await
        {
            Err(e) => jsonrpc::error(id, INTERNAL_ERROR, &target_error(t, &e)),
            Ok(answer) => {
                let mut body = answer;
                body["id"] = id.clone();
                if method == "resources/read"
                    && self.prefix()
                    && let Some(contents) = body
                        .get_mut("result")
                        .and_then(|r| r.get_mut("contents"))
                        .and_then(Value::as_array_mut)
                {
                    for c in contents {
                        if let Some(u) = c.get("uri").and_then(Value::as_str) {
                            c["uri"] = Value::String(naming::federated(
                                ListKind::Resources,
                                true,
                                &t.name,
                                u,
                            ));
                        }
                    }
                }
                body
            }
        }
    }

    /// `completion/complete`: routed by its `ref` (a prompt's name or a resource's URI).
    async fn complete(
        &self,
        session: Option<&SessionState>,
        id: &Value,
        params: Option<&Value>,
        notify: Option<&mpsc::Sender<Value>>,
    ) -> Value {
        let r = params.and_then(|p| p.get("ref"));
        let (kind, field) = match r.and_then(|r| r.get("type")).and_then(Value::as_str) {
            Some("ref/prompt") => (ListKind::Prompts, "name"),
            Some("ref/resource") => (ListKind::ResourceTemplates, "uri"),
            _ => {
                return jsonrpc::error(
                    id,
                    INVALID_PARAMS,
                    "completion/complete needs params.ref of type ref/prompt or ref/resource",
                );
            }
        };
        let Some(name) = r.and_then(|r| r.get(field)).and_then(Value::as_str) else {
            return jsonrpc::error(
                id,
                INVALID_PARAMS,
                &format!("params.ref.{field} is missing"),
            );
        };
        let (i, own) = match self.resolve(session, kind, name).await {
            Ok(x) => x,
            Err(e) => return jsonrpc::error(id, INVALID_PARAMS, &e),
        };
        if !self
            .caller
            .allows(kind, &self.backend.targets[i].name, &own)
        {
            return Caller::refusal(id, kind, name);
        }
        let mut p = params.cloned().unwrap_or(json!({}));
        p["ref"][field] = Value::String(own);
        self.forward(session, id, i, "completion/complete", &p, notify)
            .await
    }

    /// A request every target gets (`logging/setLevel`); answered `{}` per the failure mode.
    async fn broadcast(
        &self,
        session: Option<&SessionState>,
        id: &Value,
        method: &str,
        params: Option<&Value>,
    ) -> Value {
        let all = futures::future::join_all(
            (0..self.backend.targets.len())
                .map(|i| self.request(session, i, method, params, None, None)),
        )
        .await;
        for (i, r) in all.into_iter().enumerate() {
            let t = &self.backend.targets[i];
            let failed = match &r {
                Err(e) => Some(target_error(t, e)),
                Ok(a) => jsonrpc::outcome(a)
                    .err()
                    .filter(|(c, _)| *c != METHOD_NOT_FOUND)
                    .map(|(c, m)| format!("MCP target {} answered {c}: {m}", t.name)),
            };
            if let Some(f) = failed
                && self.backend.failure_mode == FailureMode::FailClosed
            {
                return jsonrpc::error(id, INTERNAL_ERROR, &f);
            }
        }
        jsonrpc::result(id, json!({}))
    }
}

/// No capabilities.
static NONE: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));

/// The client's capabilities the gateway offers streamable-HTTP targets: those the targets'
/// requests need (`sampling`, `elicitation`, `roots`), which it forwards to the client
/// ([`super::notify`]). Pure.
pub fn offered_to_targets(client: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    for k in ["sampling", "elicitation", "roots"] {
        if let Some(v) = client.and_then(|c| c.get(k)) {
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// Which endpoint a new session starts on (spreads sessions over a target's endpoints).
fn rand_index(state: &McpState) -> usize {
    let id = state.next_id();
    id.as_str()
        .and_then(|s| s.rsplit('-').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
}
