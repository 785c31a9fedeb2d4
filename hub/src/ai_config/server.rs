//! The `AiGatewayConfig` gRPC service and the task that versions the snapshot's AI part.
//!
//! - [`start_publisher`]: the one writer of [`Published`]: follows the compile loop's snapshot
//!   channel and publishes per-tenant versions ([`super::version::Versioner`]); also the one
//!   writer of the MCP session secrets ([`SessionKeys`]: loaded, rotated, stored).
//! - [`AiConfigService`]: one task per gateway stream: Hello first, then a [`Session`] turns
//!   each published change into an Update and each Ack into the gateway's [`GatewayView`],
//!   recorded in the shared `watch::Sender<AiGatewayHealth>` under the stream's number and
//!   removed when the stream ends; `Spend` answers from the one [`Ledger`] of budgets; usage
//!   reports go to the one [`UsageBook`]. Both are [`AiAccounts`], which the admin API reads.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetgate_proto::MAX_MESSAGE_BYTES;
use fleetgate_proto::aigateway::v1 as pb;
use futures::Stream;
use pb::ai_gateway_config_server::{AiGatewayConfig, AiGatewayConfigServer};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::budget::{self, Ledger};
use super::pins::{PinBook, PinsLink};
use super::session::Session;
use super::status::{AiGatewayHealth, GatewayView};
use super::usage::UsageBook;
use super::version::{Published, Versioner, wall_clock_micros};
use crate::compile::Snapshot;
use crate::session_secret::{Rotation, SecretRing, SessionSecret};
use crate::store::{SecretStore, StoreError};

/// How long a new stream may take to say Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the MCP session secrets live and how they rotate: the publisher's part of the hub
/// configuration.
#[derive(Clone)]
pub struct SessionKeys {
    pub store: Arc<dyn SecretStore>,
    pub rotation: Rotation,
}

/// How long the publisher waits before trying again when the store refused a rotation.
const STORE_RETRY_SECS: u64 = 30;

/// Seconds since the Unix epoch (rotation times).
fn unix_now() -> u64 {
    wall_clock_micros() / 1_000_000
}

/// The stored ring, or a fresh one stored now (first start).
fn load_ring(store: &dyn SecretStore) -> Result<SecretRing, StoreError> {
    match store.load_ring()? {
        Some(ring) => Ok(ring),
        None => store.swap_ring(None, &SecretRing::generate(unix_now())),
    }
}

/// Publishes the versions of the current snapshot at once (so a gateway that connects right
/// after start-up gets the stored configuration, never an empty full state that would drop
/// its tenants), then follows `snapshots` until its writer is gone.
///
/// The task is also the one writer of the MCP session secrets: it loads the ring from
/// `keys.store` (creating it on first start), rotates it when due (stored first, then sent),
/// and republishes every tenant with an MCP route with its new keys.
pub fn start_publisher(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    keys: SessionKeys,
) -> Result<(watch::Receiver<Arc<Published>>, tokio::task::JoinHandle<()>), StoreError> {
    let mut ring = load_ring(keys.store.as_ref())?;
    let mut versioner = Versioner::new(ring.clone());
    let first = versioner.publish(
        &Published::default(),
        &snapshots.borrow_and_update().ai,
        wall_clock_micros(),
    );
    let (tx, rx) = watch::channel(Arc::new(first));
    let task = tokio::spawn(async move {
        // After a failed store write: not before this time (Unix seconds).
        let mut retry_at = 0;
        loop {
            let wake = ring.due(&keys.rotation).map(|due| due.max(retry_at));
            let rotate = async {
                match wake {
                    Some(at) => {
                        let secs = at.saturating_sub(unix_now());
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = rotate => {
                    let now = unix_now();
                    let fresh = SessionSecret::generate(0, now).bytes;
                    if let Some(next) = ring.next(now, &keys.rotation, fresh) {
                        match keys.store.swap_ring(Some(&ring), &next) {
                            Ok(stored) => {
                                tracing::info!(
                                    key_ids = ?stored.ids(),
                                    "MCP session keys rotated"
                                );
                                ring = stored;
                                versioner.set_ring(ring.clone());
                            }
                            Err(e) => {
                                tracing::warn!(
                                    error = %e,
                                    "MCP session keys not rotated: the store refused; trying again"
                                );
                                retry_at = now + STORE_RETRY_SECS;
                                continue;
                            }
                        }
                    }
                }
            }
            let ai = snapshots.borrow_and_update().ai.clone();
            tx.send_if_modified(|current| {
                let next = versioner.publish(current, &ai, wall_clock_micros());
                if next == **current {
                    false
                } else {
                    *current = Arc::new(next);
                    true
                }
            });
        }
    });
    Ok((rx, task))
}

/// What the hub counts for the AI gateways: budgets (`Spend`) and reported usage; shared by
/// the service (the writer) and the admin API (a reader).
#[derive(Clone, Default)]
pub struct AiAccounts {
    /// Every budget's counts: one ledger for all gateways' `Spend` calls.
    pub ledger: Arc<Mutex<Ledger>>,
    /// Every tenant's LLM usage as the replicas report it.
    pub usage: Arc<Mutex<UsageBook>>,
}

/// The service; cheap to clone into the server.
#[derive(Clone)]
pub struct AiConfigService {
    published: watch::Receiver<Arc<Published>>,
    health: Arc<watch::Sender<AiGatewayHealth>>,
    streams: Arc<AtomicU64>,
    /// Every budget's counts: one ledger for all gateways' `Spend` calls.
    ledger: Arc<Mutex<Ledger>>,
    /// Usage reports, summed.
    usage: Arc<Mutex<UsageBook>>,
    /// MCP tool pins: where gateways' reports go, and the pins every stream sends.
    pins: Option<PinsLink>,
}

/// Seconds since the Unix epoch (budget windows are aligned to it).
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AiConfigService {
    /// The service serving `published`, recording every gateway's view in `health`.
    pub fn new(
        published: watch::Receiver<Arc<Published>>,
        health: watch::Sender<AiGatewayHealth>,
    ) -> Self {
        Self {
            published,
            health: Arc::new(health),
            streams: Arc::new(AtomicU64::new(0)),
            ledger: Arc::new(Mutex::new(Ledger::default())),
            usage: Arc::default(),
            pins: None,
        }
    }

    /// The service counting into `accounts` (which the admin API reads).
    pub fn with_accounts(mut self, accounts: AiAccounts) -> Self {
        self.ledger = accounts.ledger;
        self.usage = accounts.usage;
        self
    }

    /// The service with MCP tool pins ([`super::pins::start_pins`]).
    pub fn with_pins(mut self, pins: PinsLink) -> Self {
        self.pins = Some(pins);
        self
    }

    /// As a tonic service with the hub's message size limits.
    pub fn into_server(self) -> AiGatewayConfigServer<Self> {
        AiGatewayConfigServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::HubMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AiGatewayConfig for AiConfigService {
    type StreamStream = UpdateStream;

    async fn stream(
        &self,
        request: Request<Streaming<pb::GatewayMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(pb::GatewayMessage {
                kind: Some(pb::gateway_message::Kind::Hello(hello)),
            }))) => hello,
            Ok(Err(status)) => return Err(status),
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "no Hello within {HELLO_TIMEOUT:?}: a gateway opens the stream with Hello"
                )));
            }
            Ok(Ok(_)) => {
                return Err(Status::invalid_argument(
                    "the first message on an AiGatewayConfig stream must be Hello (gateway_id, serving)",
                ));
            }
        };
        if let Err(why) = check_gateway_id(&hello.gateway_id) {
            return Err(Status::invalid_argument(why));
        }
        let id = self.streams.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(run_stream(id, hello, inbound, tx, self.clone()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    /// One reservation (requests = 1) or one report of tokens (requests = 0), against the
    /// budgets the hub's own configuration and the tenant's virtual keys set: the gateway names
    /// the tenant and key, never the limits.
    async fn spend(
        &self,
        request: Request<pb::SpendRequest>,
    ) -> Result<Response<pb::SpendReply>, Status> {
        let r = request.into_inner();
        if r.requests > 1 || (r.requests == 1 && r.tokens > 0) {
            return Err(Status::invalid_argument(
                "Spend reserves one request (requests = 1, tokens = 0) or reports tokens (requests = 0)",
            ));
        }
        let published = self.published.borrow().clone();
        let budgets = budget::budgets(
            &r.tenant,
            published.tenants.get(&r.tenant).map(|t| &t.content),
            &r.key_id,
        );
        let now = unix_seconds();
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let reply = if r.requests == 1 {
            match ledger.reserve(&budgets, now) {
                Ok(()) => pb::SpendReply {
                    allowed: true,
                    ..Default::default()
                },
                Err(refusal) => {
                    tracing::info!(tenant = %r.tenant, refused_by = %refusal.scope.refused_by(), "AI budget spent");
                    pb::SpendReply {
                        allowed: false,
                        refused_by: refusal.scope.refused_by(),
                        retry_after_seconds: refusal.retry_after_seconds,
                        message: refusal.message,
                    }
                }
            }
        } else {
            ledger.add_tokens(&budgets, r.tokens, now);
            pb::SpendReply {
                allowed: true,
                ..Default::default()
            }
        };
        Ok(Response::new(reply))
    }
}

/// Gateway ids label what the hub shows: 1..=253 bytes of letters, digits and `-._/:`.
fn check_gateway_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 253
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Hello.gateway_id {:?} must be 1..=253 bytes of letters, digits and - . _ / : (the pod name is a good one)",
            id.chars().take(300).collect::<String>()
        ))
    }
}

fn update(u: pb::Update) -> Result<pb::HubMessage, Status> {
    Ok(pb::HubMessage {
        kind: Some(pb::hub_message::Kind::Update(u)),
    })
}

/// One gateway's stream, until it or the hub goes away; `service` is what the streams share.
async fn run_stream(
    id: u64,
    hello: pb::Hello,
    mut inbound: Streaming<pb::GatewayMessage>,
    tx: mpsc::Sender<Result<pb::HubMessage, Status>>,
    service: AiConfigService,
) {
    let AiConfigService {
        mut published,
        health,
        mut pins,
        usage,
        ..
    } = service;
    let gateway = hello.gateway_id.clone();
    tracing::info!(gateway = %gateway, version = %hello.gateway_version, serving = hello.serving.len(), "AI gateway connected");
    let mut session = Session::new(&hello);
    let record = |view: &GatewayView| {
        let view = view.clone();
        health.send_if_modified(|h| {
            if h.streams.get(&id) == Some(&view) {
                false
            } else {
                h.streams.insert(id, view);
                true
            }
        });
    };
    record(session.view());
    let first = session.first_update(&published.borrow_and_update());
    let mut open = tx.send(update(first)).await.is_ok();
    // The pins of every tenant, after its configuration; then each tenant's whose pins change.
    let mut pins_sent: BTreeMap<String, pb::McpPins> = BTreeMap::new();
    if let Some(link) = &mut pins {
        let book = link.book.borrow_and_update().clone();
        open = open && send_pins(&tx, &book, &mut pins_sent).await;
    }
    while open {
        tokio::select! {
            changed = async {
                match &mut pins {
                    Some(link) => link.book.changed().await.map(|()| link.book.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            } => match changed {
                Ok(book) => open = send_pins(&tx, &book, &mut pins_sent).await,
                Err(_) => pins = None,
            },
            msg = inbound.message() => match msg {
                Ok(Some(pb::GatewayMessage { kind: Some(pb::gateway_message::Kind::Ack(ack)) })) => {
                    let outcome = session.on_ack(&ack);
                    if outcome.unknown_revision {
                        tracing::debug!(gateway = %gateway, revision = ack.revision, "Ack of an Update this stream no longer tracks; ignored");
                    }
                    for (tenant, version, reason) in &outcome.refused {
                        tracing::warn!(gateway = %gateway, tenant = %tenant, version, reason = %reason,
                            "AI gateway refused a tenant's configuration; it keeps serving the previous version");
                    }
                    record(session.view());
                }
                Ok(Some(pb::GatewayMessage { kind: Some(pb::gateway_message::Kind::McpTools(seen)) })) => {
                    if let Some(link) = &pins
                        && link.reports.try_send(seen).is_err()
                    {
                        tracing::debug!(gateway = %gateway, "MCP tool report dropped: the pins task is busy; the gateway reports again after a reconnect");
                    }
                }
                Ok(Some(pb::GatewayMessage { kind: Some(pb::gateway_message::Kind::Usage(report)) })) => {
                    let p = published.borrow().clone();
                    let applied = usage
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .apply(&gateway, &report, |t| p.tenants.contains_key(t));
                    match applied {
                        Ok(0) => {}
                        Ok(dropped) => tracing::debug!(gateway = %gateway, dropped, "usage report entries dropped (unknown tenant, malformed or past the caps)"),
                        Err(e) => tracing::warn!(gateway = %gateway, error = %e, "usage report ignored"),
                    }
                }
                Ok(Some(_)) => {
                    let _ = tx.send(Err(Status::invalid_argument(
                        "after Hello a gateway sends only Acks, MCP tool reports and usage reports; reconnect to say Hello again",
                    ))).await;
                    break;
                }
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(gateway = %gateway, %status, "AI config stream ended");
                    break;
                }
            },
            changed = published.changed() => match changed {
                Ok(()) => {
                    let next = session.next_update(&published.borrow_and_update());
                    if let Some(u) = next {
                        open = tx.send(update(u)).await.is_ok();
                    }
                }
                // The publisher is gone: the hub is stopping. Ending the stream lets the
                // server shut down and the gateway reconnect (to another replica, or to this
                // hub when it is back), serving its last configuration meanwhile.
                Err(_) => break,
            },
            _ = tx.closed() => break,
        }
    }
    health.send_if_modified(|h| h.streams.remove(&id).is_some());
    tracing::info!(gateway = %gateway, "AI gateway disconnected");
}

/// Sends the gateway every tenant's pins that differ from what this stream sent (a tenant whose
/// pins are all gone gets an empty set). `false`: the stream is closed.
async fn send_pins(
    tx: &mpsc::Sender<Result<pb::HubMessage, Status>>,
    book: &PinBook,
    sent: &mut BTreeMap<String, pb::McpPins>,
) -> bool {
    let tenants: std::collections::BTreeSet<String> =
        book.tenants.keys().chain(sent.keys()).cloned().collect();
    for t in tenants {
        let m = book.message(&t);
        if sent.get(&t) == Some(&m) {
            continue;
        }
        let msg = pb::HubMessage {
            kind: Some(pb::hub_message::Kind::McpPins(m.clone())),
        };
        if tx.send(Ok(msg)).await.is_err() {
            return false;
        }
        if m.pins.is_empty() {
            sent.remove(&t);
        } else {
            sent.insert(t, m);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_ids_are_checked() {
        assert!(check_gateway_id("ai-gateway-7f9c/1").is_ok());
        assert!(check_gateway_id("host.example:1").is_ok());
        for bad in ["", "a b", "a\nb", &"x".repeat(254)] {
            let err = check_gateway_id(bad).unwrap_err();
            assert!(err.contains("Hello.gateway_id"), "{err}");
        }
    }
}
