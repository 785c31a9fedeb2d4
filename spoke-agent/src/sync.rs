//! Sync: the agent's side of `fleetgate.spoke.v1.SpokeService/Sync`, one bidirectional gRPC
//! stream per cluster over mTLS.
//!
//! Where it sits: after `translate` (it consumes the intent through a `watch` channel) and before
//! `status` (it publishes the hub's latest Status through another `watch` channel). On every
//! stream it sends Hello, then the full state as revision 1, then one incremental Update (from
//! [`crate::diff`]) per intent change. A stream error means reconnect with exponential backoff
//! (200 ms doubling to 10 s, full jitter) and resend the full state.

use std::future::Future;
use std::time::Duration;

use fleetgate_proto::MAX_MESSAGE_BYTES;
use fleetgate_proto::spoke::v1::{
    AgentMessage, Hello, Nack, Object, Status, Update, agent_message, hub_message,
    spoke_service_client::SpokeServiceClient,
};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracing::{debug, error, info, warn};

use crate::diff::{Held, diff, held_of};
use crate::identity::Identity;
use crate::lag::{EventClock, InFlight};
use crate::metrics::SyncState;

/// First reconnect delay ceiling.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// Largest reconnect delay ceiling.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why a Sync stream ended or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The hub address or TLS material could not make a gRPC endpoint.
    #[error("cannot build the hub endpoint {hub}: {source}")]
    Endpoint {
        hub: String,
        source: tonic::transport::Error,
    },
    /// Connecting (TCP, TLS handshake, HTTP/2) to the hub failed.
    #[error("cannot connect to the hub: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The hub ended the stream with a gRPC status.
    #[error("Sync stream failed: {0}")]
    Rpc(#[from] tonic::Status),
    /// The hub closed the stream without an error.
    #[error("the hub closed the Sync stream")]
    Closed,
    /// The agent's certificate was renewed: the stream is reopened with the new one.
    #[error("the agent certificate was renewed; reconnecting with it")]
    Renewed,
}

/// The gRPC endpoint of the hub with mTLS: `ca.crt` is the only trust root, `tls.crt`/`tls.key`
/// the client identity, and the hub's certificate must carry `server_name`.
pub fn tls_endpoint(
    hub: &str,
    identity: &Identity,
    server_name: &str,
) -> Result<Endpoint, SyncError> {
    let err = |source| SyncError::Endpoint {
        hub: hub.to_string(),
        source,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&identity.ca_pem))
        .identity(tonic::transport::Identity::from_pem(
            &identity.cert_pem,
            &identity.key_pem,
        ))
        .domain_name(server_name);
    Ok(Endpoint::from_shared(hub.to_string())
        .map_err(err)?
        .tls_config(tls)
        .map_err(err)?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// The delay ceiling before reconnect attempt `attempt` (0-based): 200 ms doubling, capped at 10 s.
/// Kept by hand with [`full_jitter`] (the one backoff helper of the agent; enrollment retries use
/// `backon`): the reconnect loop needs full jitter (`backon` adds its jitter on top of the delay)
/// and starts over after an Ack or a renewal, and the rate-limit wait reuses the jitter.
pub fn backoff_ceiling(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_MAX)
}

/// Full jitter: a uniformly random delay in `[0, ceiling]`.
pub fn full_jitter(ceiling: Duration, rng: &mut impl Rng) -> Duration {
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=ms))
}

/// How a stream ended.
#[derive(Debug)]
pub struct SessionEnd {
    /// The hub acknowledged at least one Update on this stream (the connection was healthy, so
    /// the backoff starts over).
    pub acked: bool,
    /// `None`: the intent channel closed (the agent is shutting down).
    pub error: Option<SyncError>,
}

/// The Sync client: owns the intent receiver and the status sender.
pub struct Syncer {
    intent: watch::Receiver<Vec<Object>>,
    status: watch::Sender<Option<Status>>,
    hello: Hello,
    /// When set, a new identity ends the current stream and reconnects at once.
    renewed: Option<watch::Receiver<Identity>>,
    /// What the stream counts for the operator (`--metrics-listen`).
    metrics: Option<std::sync::Arc<crate::metrics::AgentMetrics>>,
    /// When the watch saw the changes not yet sent (`crate::lag`), and the Updates carrying
    /// earlier ones until the hub Acks them.
    events: EventClock,
    lag_in_flight: InFlight,
}

impl Syncer {
    /// `hello.cluster` should be the cluster of the agent's certificate.
    pub fn new(
        intent: watch::Receiver<Vec<Object>>,
        status: watch::Sender<Option<Status>>,
        hello: Hello,
    ) -> Self {
        Self {
            intent,
            status,
            hello,
            renewed: None,
            metrics: None,
            events: EventClock::default(),
            lag_in_flight: InFlight::default(),
        }
    }

    /// Measures the watch lag from the events `clock` is marked with (`crate::lag`).
    pub fn with_event_clock(mut self, clock: EventClock) -> Self {
        self.events = clock;
        self
    }

    /// The intent now, and the watch events behind it not yet sent (`crate::lag`), taken
    /// together under the intent's read guard.
    fn read_intent(&mut self) -> (Vec<Object>, Option<std::time::Instant>) {
        let intent = self.intent.borrow_and_update();
        (intent.clone(), self.events.take())
    }

    fn set_state(&self, state: SyncState) {
        if let Some(m) = &self.metrics {
            m.set_state(state);
        }
    }

    /// Counts the stream's events (connected, Acks, Nacks, reconnects) on `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::AgentMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Reconnects (without backoff, resending the full state) whenever `identity` changes:
    /// the connect function is expected to use its latest value.
    pub fn reconnect_when_renewed(mut self, identity: watch::Receiver<Identity>) -> Self {
        self.renewed = Some(identity);
        self
    }

    /// Connects with `connect` and runs streams until the intent channel closes, reconnecting
    /// with backoff after every failure.
    pub async fn run<F, Fut>(mut self, mut connect: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Channel, SyncError>>,
    {
        let mut attempt = 0u32;
        loop {
            if self.intent.has_changed().is_err() {
                info!("intent source closed; stopping sync");
                return;
            }
            if let Some(r) = self.renewed.as_mut() {
                r.borrow_and_update();
            }
            let err = match connect().await {
                Ok(channel) => {
                    let end = self.session(channel).await;
                    if end.acked {
                        attempt = 0;
                    }
                    match end.error {
                        None => return,
                        Some(SyncError::Renewed) => {
                            info!("reconnecting with the renewed certificate");
                            attempt = 0;
                            continue;
                        }
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            if let Some(m) = &self.metrics {
                m.reconnects.inc();
            }
            let delay = full_jitter(backoff_ceiling(attempt), &mut rand::rng());
            attempt = attempt.saturating_add(1);
            warn!(error = %error_chain(&err), retry_in_ms = delay.as_millis() as u64, "hub sync interrupted; reconnecting");
            tokio::time::sleep(delay).await;
        }
    }

    /// One Sync stream over `channel`: Hello, full state, then deltas, until it fails.
    #[tracing::instrument(skip_all, fields(cluster = %self.hello.cluster))]
    pub async fn session(&mut self, channel: Channel) -> SessionEnd {
        let mut acked = false;
        let error = self.stream(channel, &mut acked).await.err();
        if let Some(m) = &self.metrics {
            m.hub_connected.set(0);
        }
        self.set_state(SyncState::Disconnected);
        if error.is_none() {
            info!("intent source closed; stopping sync");
        }
        SessionEnd { acked, error }
    }

    async fn stream(&mut self, channel: Channel, acked: &mut bool) -> Result<(), SyncError> {
        let mut client = SpokeServiceClient::new(channel)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, rx) = mpsc::channel::<AgentMessage>(16);
        let send = |m: agent_message::Kind| AgentMessage { kind: Some(m) };
        let (intent, events) = self.read_intent();
        let mut revision = 1u64;
        // The full state carries whatever was in flight on the last stream, and what is new.
        let carried = match (self.lag_in_flight.restart(), events) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.lag_in_flight.sent(revision, carried);
        // Spans of the Updates not yet answered (nothing when traces are off).
        let mut in_flight = traces::InFlight::default();
        // The trace context of the hub's last Status that carried one.
        let mut status_trace = String::new();
        let cluster = self.hello.cluster.clone();
        // Queued before the call so the hub sees them as soon as the stream opens.
        tx.try_send(send(agent_message::Kind::Hello(self.hello.clone())))
            .expect("fresh channel has room");
        tx.try_send(traced(
            &mut in_flight,
            &cluster,
            full_update(revision, &intent),
        ))
        .expect("fresh channel has room");
        info!(revision, objects = intent.len(), "sent full state");
        // What the hub holds; None after a Nack, when it is unknown until the next full state.
        let mut held: Option<Held> = Some(held_of(&intent));
        let mut inbound = client.sync(ReceiverStream::new(rx)).await?.into_inner();
        if let Some(m) = &self.metrics {
            m.hub_connected.set(1);
        }
        self.set_state(SyncState::Syncing);
        // Set after the hub refused an Update for its rate limit: the full state goes again then,
        // and intent changes wait for it.
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                msg = inbound.message() => {
                    let Some(msg) = msg? else { return Err(SyncError::Closed) };
                    match msg.kind {
                        Some(hub_message::Kind::Ack(a)) => {
                            *acked = true;
                            let lags = self.lag_in_flight.acked(a.revision, std::time::Instant::now());
                            if let Some(m) = &self.metrics {
                                m.acked();
                                for lag in lags {
                                    m.watch_lag.observe(lag.as_secs_f64());
                                }
                            }
                            if a.revision == revision && retry_at.is_none() {
                                self.set_state(SyncState::Synced);
                            }
                            in_flight.answered(a.revision, None);
                            debug!(revision = a.revision, "hub acknowledged");
                        }
                        Some(hub_message::Kind::Nack(n)) => {
                            if let Some(m) = &self.metrics {
                                m.nacked();
                            }
                            self.set_state(SyncState::Syncing);
                            in_flight.answered(n.revision, Some(&n.message));
                            error!(revision = n.revision, reason = ?n.reason(), message = %n.message, "hub refused an update; nothing of it was stored");
                            held = None;
                            if let Some(after) = nack_retry_after(&n) {
                                // Jittered so that many clusters refused together do not return together.
                                let jitter = full_jitter(after, &mut rand::rng());
                                retry_at = Some(tokio::time::Instant::now() + after + jitter);
                            } else if revision > n.revision {
                                // Later deltas were built on the refused one: resend everything.
                                revision += 1;
                                let (intent, events) = self.read_intent();
                                self.lag_in_flight.sent(revision, events);
                                send_or_closed(&tx, traced(&mut in_flight, &cluster, full_update(revision, &intent))).await?;
                                held = Some(held_of(&intent));
                            }
                        }
                        Some(hub_message::Kind::Status(mut s)) => {
                            debug!(objects = s.objects.len(), "hub status");
                            // Later Statuses keep the last change's trace context, so that the
                            // status writer sees it even if it skips a Status (`traces`).
                            if fleetgate_observe::trace::enabled() {
                                if s.traceparent.is_empty() {
                                    s.traceparent.clone_from(&status_trace);
                                } else {
                                    status_trace.clone_from(&s.traceparent);
                                }
                            }
                            self.status.send_replace(Some(s));
                        }
                        None => debug!("empty hub message"),
                    }
                }
                renewed = renewal(&mut self.renewed) => {
                    if renewed {
                        return Err(SyncError::Renewed);
                    }
                    // The renewer stopped: keep this stream.
                    self.renewed = None;
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)), if retry_at.is_some() => {
                    retry_at = None;
                    revision += 1;
                    let (intent, events) = self.read_intent();
                    self.lag_in_flight.sent(revision, events);
                    debug!(revision, "resending the full state after the hub's rate limit");
                    send_or_closed(&tx, traced(&mut in_flight, &cluster, full_update(revision, &intent))).await?;
                    held = Some(held_of(&intent));
                }
                changed = self.intent.changed(), if retry_at.is_none() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let (intent, events) = self.read_intent();
                    let update = match &held {
                        Some(h) => {
                            let d = diff(h, &intent);
                            if d.is_empty() {
                                // Nothing the hub holds changed: no lag to measure.
                                continue;
                            }
                            Update { revision: revision + 1, full_state: false, upserts: d.upserts, deletes: d.deletes, traceparent: String::new() }
                        }
                        None => full_update(revision + 1, &intent),
                    };
                    revision += 1;
                    self.lag_in_flight.sent(revision, events);
                    self.set_state(SyncState::Syncing);
                    debug!(revision, full = update.full_state, upserts = update.upserts.len(), deletes = update.deletes.len(), "sending update");
                    send_or_closed(&tx, traced(&mut in_flight, &cluster, update)).await?;
                    held = Some(held_of(&intent));
                }
            }
        }
    }
}

/// Resolves when the identity changed (`true`) or its sender is gone (`false`); never without a
/// receiver.
async fn renewal(rx: &mut Option<watch::Receiver<Identity>>) -> bool {
    match rx {
        Some(r) => r.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// An error and its sources on one line (tonic's transport errors say little at the top).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// Longest wait a Nack may impose before the agent sends its full state again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The wait a Nack asks for before the full state goes again, capped at a minute: its
/// `retry_after_ms`, or, from a hub that predates that field, the wait its rate-limit message
/// names ([`retry_after`]).
pub fn nack_retry_after(n: &Nack) -> Option<Duration> {
    if n.retry_after_ms > 0 {
        return Some(Duration::from_millis(u64::from(n.retry_after_ms)).min(MAX_RETRY_AFTER));
    }
    retry_after(&n.message)
}

/// The wait a rate-limit Nack of a hub that predates `Nack.retry_after_ms` asks for
/// (`... retry after 250ms ...`), capped at a minute.
pub fn retry_after(message: &str) -> Option<Duration> {
    if !message.starts_with("rate limit:") {
        return None;
    }
    let rest = &message[message.find("retry after ")? + "retry after ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest[digits.len()..].starts_with("ms") {
        return None;
    }
    let ms: u64 = digits.parse().ok()?;
    Some(Duration::from_millis(ms.max(1)).min(MAX_RETRY_AFTER))
}

/// The message carrying `update`, its span started (`traces`).
fn traced(in_flight: &mut traces::InFlight, cluster: &str, mut update: Update) -> AgentMessage {
    in_flight.sending(cluster, &mut update);
    AgentMessage {
        kind: Some(agent_message::Kind::Update(update)),
    }
}

fn full_update(revision: u64, intent: &[Object]) -> Update {
    Update {
        revision,
        full_state: true,
        upserts: intent.to_vec(),
        deletes: Vec::new(),
        traceparent: String::new(),
    }
}

async fn send_or_closed(tx: &mpsc::Sender<AgentMessage>, m: AgentMessage) -> Result<(), SyncError> {
    tx.send(m).await.map_err(|_| SyncError::Closed)
}

#[cfg(test)]
mod tests;
mod traces;
