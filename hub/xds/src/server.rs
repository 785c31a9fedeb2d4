//! The ADS server: State-of-the-World `StreamAggregatedResources` and incremental
//! `DeltaAggregatedResources` (`super::delta`) over tonic, serving the latest snapshot to every
//! Envoy. Both run [`run_stream`], driving a [`super::session::AdsSession`]; this module's
//! [`Session`] is the State of the World's.
//!
//! Step 8 (publish) of the hub's data path. It reads `watch::Receiver<Arc<Snapshot>>` (one
//! writer: the hub's compile loop) and turns each snapshot into resources with
//! `super::resources`, once for all streams (one builder task per service, `build_each`). Per
//! stream and type URL it tracks what Envoy subscribed to and the version and nonce it sent;
//! it pushes when the snapshot changes (clusters, endpoints, listeners, routes — in that order,
//! per Envoy's warming rules) or when a subscription changes; it treats a request echoing the last nonce as an ACK, or as a NACK when
//! `error_detail` is set. A NACK keeps the stream serving, is logged, and is published through
//! `watch::Sender<XdsHealth>` with the tenant objects behind the rejected resources, for the
//! status path to report. Besides, each stream tells an [`AdsReport`] what happens on it
//! (opened, ACK, NACK, push time, in sync with a snapshot, closed) for the operator's view.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use super::delta::DeltaSession;
use super::report::{AdsReport, NoReport};
use super::resources::{self, PUSH_ORDER, Resource, Resources, is_wildcard_type};
use super::session::{self, AdsSession, HealthEvent};
pub use super::session::{Nack, XdsHealth};
use super::trace::{SnapshotTraces, StreamTraces};
use crate::snapshot::Snapshot;

/// An error that stops the xDS server.
#[derive(Debug, thiserror::Error)]
pub enum XdsError {
    /// The listen address could not be bound (in use, or not an address of this host).
    #[error("cannot listen for xDS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The gRPC server failed while serving.
    #[error("xDS server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serve ADS on `listen` until `shutdown` completes.
pub async fn serve(
    listen: SocketAddr,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), XdsError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| XdsError::Bind {
            addr: listen,
            source,
        })?;
    serve_on(listener, snapshots, health, shutdown).await
}

/// Serve ADS on an already bound listener (tests bind port 0) until `shutdown` completes.
pub async fn serve_on(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), XdsError> {
    data_plane_server()
        .add_service(ads_service(snapshots, health))
        .serve_with_incoming_shutdown(data_plane_incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// The gRPC server settings of the data-plane port (keepalive for long-lived streams), for
/// [`serve_on`] and for the hub, which adds the AI gateways' config stream to the same port.
pub fn data_plane_server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
}

/// The connections accepted on the data-plane port, with `TCP_NODELAY` set. Without it a push
/// (a gRPC message in several small writes) waited for Envoy's delayed ACK: about 40 ms
/// between the hub sending a changed route table and Envoy receiving it, on every change
/// (docs/benchmarks.md, "Seventh round").
pub fn data_plane_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The ADS service serving `snapshots` and reporting NACKs to `health`, to add to a server.
pub fn ads_service(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
) -> AggregatedDiscoveryServiceServer<Ads> {
    ads_service_with(snapshots, health, Arc::default(), Arc::new(NoReport))
}

/// [`ads_service`], tracing pushes of the snapshots `traces` knows the compile span of, and
/// Envoy's answers to them (`crate::trace`).
pub fn ads_service_traced(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
    traces: Arc<SnapshotTraces>,
) -> AggregatedDiscoveryServiceServer<Ads> {
    ads_service_with(snapshots, health, traces, Arc::new(NoReport))
}

/// [`ads_service`], telling `report` what happens on each stream.
pub fn ads_service_reporting(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
    report: Arc<dyn AdsReport>,
) -> AggregatedDiscoveryServiceServer<Ads> {
    ads_service_with(snapshots, health, Arc::default(), report)
}

/// [`ads_service`], tracing as [`ads_service_traced`] and reporting as
/// [`ads_service_reporting`].
pub fn ads_service_with(
    snapshots: watch::Receiver<Arc<Snapshot>>,
    health: watch::Sender<XdsHealth>,
    traces: Arc<SnapshotTraces>,
    report: Arc<dyn AdsReport>,
) -> AggregatedDiscoveryServiceServer<Ads> {
    AggregatedDiscoveryServiceServer::new(Ads {
        built: build_each(snapshots),
        health: Arc::new(health),
        traces,
        report,
    })
}

/// A snapshot and its Envoy resources, built once for every stream.
struct Built {
    snapshot: Arc<Snapshot>,
    resources: Arc<Resources>,
    /// When building began (a stream's push time counts from here).
    started: std::time::Instant,
}

/// Builds the resources of each snapshot `snapshots` publishes, once for all ADS streams, and
/// publishes them. Keeps one [`resources::ResourceCache`] (what did not change stays encoded,
/// about one more copy of the snapshot, whatever the number of Envoys). Builds the current
/// snapshot before returning, so that a stream always has one. The builder ends when the
/// snapshots' writer does (the streams keep serving the last build) or when no stream nor
/// service holds the receiver any more.
fn build_each(mut snapshots: watch::Receiver<Arc<Snapshot>>) -> watch::Receiver<Arc<Built>> {
    let mut cache = resources::ResourceCache::default();
    let snapshot = snapshots.borrow_and_update().clone();
    let started = std::time::Instant::now();
    let resources = Arc::new(resources::build_cached(&snapshot, &mut cache));
    let (tx, rx) = watch::channel(Arc::new(Built {
        snapshot,
        resources,
        started,
    }));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
            let snapshot = snapshots.borrow_and_update().clone();
            let started = std::time::Instant::now();
            // Blocking work (tens of milliseconds for a large fleet): off the async workers.
            let building = snapshot.clone();
            let (returned, resources) = match tokio::task::spawn_blocking(move || {
                let resources = resources::build_cached(&building, &mut cache);
                (cache, resources)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            cache = returned;
            tracing::debug!(
                built_ms = started.elapsed().as_millis() as u64,
                "xDS resources built"
            );
            tx.send_replace(Arc::new(Built {
                snapshot,
                resources: Arc::new(resources),
                started,
            }));
        }
    });
    rx
}

/// The ADS service (see [`ads_service`]).
pub struct Ads {
    built: watch::Receiver<Arc<Built>>,
    health: Arc<watch::Sender<XdsHealth>>,
    traces: Arc<SnapshotTraces>,
    report: Arc<dyn AdsReport>,
}

/// Numbers the streams of this process for [`AdsReport`].
static NEXT_STREAM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(Response::new(
            self.spawn_stream::<Session>(request.into_inner()),
        ))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(Response::new(
            self.spawn_stream::<DeltaSession>(request.into_inner()),
        ))
    }
}

impl Ads {
    /// Serves one stream of either ADS variant (`S`) in a task of its own.
    fn spawn_stream<S: AdsSession>(
        &self,
        inbound: Streaming<S::Request>,
    ) -> ReceiverStream<Result<S::Response, Status>> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(run_stream::<S>(
            inbound,
            tx,
            self.built.clone(),
            self.health.clone(),
            self.traces.clone(),
            Reporter::new(self.report.clone()),
        ));
        ReceiverStream::new(rx)
    }
}

/// One ADS stream (`S`: State of the World or incremental): requests from Envoy and snapshot
/// changes in, responses out.
async fn run_stream<S: AdsSession>(
    mut inbound: Streaming<S::Request>,
    tx: mpsc::Sender<Result<S::Response, Status>>,
    mut built: watch::Receiver<Arc<Built>>,
    health: Arc<watch::Sender<XdsHealth>>,
    traces: Arc<SnapshotTraces>,
    mut reporter: Reporter,
) {
    // Spans of traced pushes and Envoy's answers (nothing when traces are off).
    let mut traced = StreamTraces::default();
    let current = built.borrow_and_update().clone();
    reporter.snapshot = current.snapshot.clone();
    let mut session = S::new(current.resources.clone());
    let mut watching = true;
    // While a push waits for Envoy's answer to the previous one (`AdsSession::on_snapshot`): when
    // it is pushed regardless.
    let mut hold_until: Option<tokio::time::Instant> = None;
    loop {
        let (out, event, pushed) = tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => {
                    let (mut out, event) = session.on_request(&req);
                    traced.sent(&out);
                    let held = session.push_held(false);
                    let pushed = !held.is_empty();
                    if pushed {
                        hold_until = None;
                        traced.pushed(&traces, &reporter.snapshot, session.node(), &held);
                        tracing::debug!(pushed = held.len(), "xDS resources pushed (held until Envoy answered)");
                        out.extend(held);
                    }
                    (out, event, pushed)
                }
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(node = %session.node(), %status, "ADS stream ended");
                    break;
                }
            },
            changed = built.changed(), if watching => match changed {
                Ok(()) => {
                    let current = built.borrow_and_update().clone();
                    reporter.snapshot = current.snapshot.clone();
                    reporter.push_started = Some(current.started);
                    let out = session.on_snapshot(current.resources.clone());
                    let pushed = !out.is_empty();
                    traced.pushed(&traces, &current.snapshot, session.node(), &out);
                    if session.is_held() {
                        hold_until.get_or_insert(tokio::time::Instant::now() + HOLD_LIMIT);
                    }
                    tracing::debug!(
                        elapsed_ms = current.started.elapsed().as_millis() as u64,
                        pushed = out.len(),
                        held = session.is_held(),
                        "xDS resources pushed"
                    );
                    (out, None, pushed)
                }
                // The writer is gone: keep serving the last snapshot.
                Err(_) => {
                    watching = false;
                    continue;
                }
            },
            () = sleep_until_some(hold_until) => {
                hold_until = None;
                let out = session.push_held(true);
                let pushed = !out.is_empty();
                tracing::warn!(node = %session.node(), pushed = out.len(),
                    "Envoy has not answered the last push within {HOLD_LIMIT:?}; pushing the newest configuration anyway");
                traced.pushed(&traces, &reporter.snapshot, session.node(), &out);
                (out, None, pushed)
            }
            _ = tx.closed() => break,
        };
        reporter.on_event(&session, event.as_ref());
        match &event {
            Some(HealthEvent::Nack(type_url, nack)) => {
                traced.answered(type_url, session.node(), Some(&nack.message));
            }
            Some(HealthEvent::Ack(type_url)) => traced.answered(type_url, session.node(), None),
            None => {}
        }
        match event {
            Some(HealthEvent::Nack(type_url, nack)) => {
                tracing::warn!(node = %nack.node, type_url = %type_url, version = %nack.version,
                    message = %nack.message, "Envoy rejected configuration (NACK)");
                health.send_modify(|h| {
                    h.nacks.insert(type_url, nack);
                });
            }
            Some(HealthEvent::Ack(type_url)) => {
                let node = session.node().to_string();
                health.send_if_modified(|h| {
                    if h.nacks.get(&type_url).is_some_and(|n| n.node == node) {
                        h.nacks.remove(&type_url);
                        true
                    } else {
                        false
                    }
                });
            }
            None => {}
        }

        for r in out {
            if tx.send(Ok(r)).await.is_err() {
                break;
            }
        }
        reporter.after_send(&session, pushed);
    }
    drop(reporter);
    let node = session.node().to_string();
    health.send_if_modified(|h| {
        let before = h.nacks.len();
        h.nacks.retain(|_, n| n.node != node);
        before != h.nacks.len()
    });
    tracing::info!(node = %node, "ADS stream closed");
}

/// How long a push waits for Envoy's answer to the previous one before it is sent anyway (an
/// Envoy answers every response it gets, within milliseconds unless it is loading thousands
/// of clusters; this only bounds the wait should an answer never come).
const HOLD_LIMIT: Duration = Duration::from_secs(5);

/// Completes at `at`; never when `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One stream's link to its [`AdsReport`] (kept apart from the protocol state, [`Session`]).
struct Reporter {
    report: Arc<dyn AdsReport>,
    stream: u64,
    opened: bool,
    /// The snapshot the stream serves now, and whether `in_sync` was reported for it.
    snapshot: Arc<Snapshot>,
    reported: Option<Arc<Snapshot>>,
    /// When the resources of the new snapshot began to be built.
    push_started: Option<std::time::Instant>,
}

impl Reporter {
    fn new(report: Arc<dyn AdsReport>) -> Self {
        Self {
            report,
            stream: NEXT_STREAM.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            opened: false,
            snapshot: Arc::default(),
            reported: None,
            push_started: None,
        }
    }

    fn on_event(&mut self, session: &impl AdsSession, event: Option<&HealthEvent>) {
        if !self.opened && !session.node().is_empty() {
            self.opened = true;
            self.report.opened(self.stream, session.node());
        }
        match event {
            Some(HealthEvent::Ack(type_url)) => {
                let version = session.sent_version(type_url).unwrap_or_default();
                self.report.acked(self.stream, type_url, version);
            }
            Some(HealthEvent::Nack(type_url, nack)) => {
                self.report
                    .nacked(self.stream, type_url, &nack.version, &nack.message);
            }
            None => {}
        }
    }

    fn after_send(&mut self, session: &impl AdsSession, pushed: bool) {
        if pushed && let Some(started) = self.push_started.take() {
            self.report.pushed(started.elapsed().as_secs_f64());
        }
        let done = self
            .reported
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &self.snapshot));
        if self.opened && !done && session.in_sync() {
            self.report.in_sync(self.stream, &self.snapshot);
            self.reported = Some(self.snapshot.clone());
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.opened {
            self.report.closed(self.stream);
        }
    }
}

/// What was sent for one type on one stream.
#[derive(Debug, Default)]
pub(crate) struct TypeState {
    /// Resource names Envoy asked for (ignored for wildcard types).
    names: BTreeSet<String>,
    answer: session::Answer,
    /// Non-wildcard types: the digest of each requested resource as last sent, so that a
    /// response holds only the resources that changed since (or were newly requested).
    have: HashMap<String, u64>,
    /// The digest of every resource of the type (requested or not) when this type was last
    /// answered, while the subscription (`names`) stayed the same since: a snapshot whose
    /// resources of the type all have the same digests needs no response for it, found without
    /// matching every resource against the subscription ([`Session::respond`]).
    answered: Option<u64>,
}

/// The protocol state of one ADS stream; no I/O, so it is unit-tested directly.
///
/// At most one push is in flight: a snapshot that comes while Envoy has not answered every
/// response sent is held (`held`), and only the newest one is pushed once Envoy answered
/// ([`AdsSession::push_held`]). Envoy applies responses one after the other on its main thread, so
/// pushing each snapshot as it comes made a loading Envoy parse every intermediate state in
/// full (each CDS response of the State of the World holds every cluster); held, the states
/// that came while it was busy reach it as one. The order of the types in a push
/// ([`PUSH_ORDER`]: clusters before the routes naming them) holds across snapshots too.
struct Session {
    stream: session::Stream<TypeState>,
}

impl session::TypeAnswer for TypeState {
    fn answer(&self) -> &session::Answer {
        &self.answer
    }
}

impl Session {
    fn new(resources: Arc<Resources>) -> Self {
        Self {
            stream: session::Stream::new(resources),
        }
    }

    fn on_request(
        &mut self,
        req: &DiscoveryRequest,
    ) -> (Vec<DiscoveryResponse>, Option<HealthEvent>) {
        self.stream.name_node(req.node.as_ref(), "ADS stream");
        if req.type_url.is_empty() {
            return (Vec::new(), None);
        }
        let st = self.stream.types.entry(req.type_url.clone()).or_default();
        let first = req.response_nonce.is_empty();
        if !first && req.response_nonce != st.answer.sent_nonce {
            // Answers a response Envoy has not yet seen the successor of: ignore (xDS protocol).
            return (Vec::new(), None);
        }
        if !first {
            st.answer.awaiting = false;
        }
        let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
        let names_changed = names != st.names;
        if names_changed {
            st.have.retain(|name, _| names.contains(name));
            st.answered = None;
        }
        st.names = names;
        if let Some(err) = &req.error_detail {
            let version = st.answer.sent_version.as_deref().unwrap_or_default();
            let nack = session::nack(&self.stream.node, version, &err.message, &st.answer.sent);
            // Resending the same version would be rejected again; wait for the next snapshot
            // (or a subscription change).
            let out = if names_changed {
                self.respond(&req.type_url, true)
            } else {
                None
            };
            return (
                out.into_iter().collect(),
                Some(HealthEvent::Nack(req.type_url.clone(), nack)),
            );
        }
        let ack = !first && st.answer.sent_version.as_deref() == Some(req.version_info.as_str());
        if ack {
            st.answer.acked_version = st.answer.sent_version.clone();
        }
        // A new subscription set: for wildcard types everything again; for the others the
        // newly named resources (`respond` sends what Envoy does not have). Other changes of a
        // held snapshot wait for its push, which keeps the order of the types.
        let wildcard = is_wildcard_type(&req.type_url);
        let out = if self.stream.held && !first && !names_changed {
            None
        } else {
            self.respond(&req.type_url, first || (names_changed && wildcard))
        };
        let event = ack.then(|| HealthEvent::Ack(req.type_url.clone()));
        (out.into_iter().collect(), event)
    }

    fn push(&mut self) -> Vec<DiscoveryResponse> {
        // `respond` skips types this stream never subscribed to.
        PUSH_ORDER
            .iter()
            .filter_map(|t| self.respond(t, false))
            .collect()
    }

    /// The response for `type_url` if it differs from what was sent (or `force`). For wildcard
    /// types it holds every resource; for the others (routes, endpoints, secrets) only those
    /// that changed since they were last sent or were newly requested (all of them if
    /// `force`): Envoy keeps the resources a SotW response of these types leaves out.
    fn respond(&mut self, type_url: &str, force: bool) -> Option<DiscoveryResponse> {
        let st = self.stream.types.get_mut(type_url)?;
        let wildcard = is_wildcard_type(type_url);
        let all = self.stream.resources.of(type_url);
        // What is requested, and so the response, depends only on the type's resources and
        // the subscription: when neither changed since this type was last answered, the
        // answer is the same (nothing new to send). One pass over the digests, where matching
        // each of thousands of resources against the subscription costs milliseconds.
        let digest = resources::digest_of(all.iter().map(|r| &**r));
        if !force && st.answered == Some(digest) {
            return None;
        }
        st.answered = Some(digest);
        let requested: Vec<&Arc<Resource>> = all
            .iter()
            .filter(|r| wildcard || st.names.contains(&r.name))
            .collect();
        let version = resources::version_of(requested.iter().map(|r| &***r));
        if !force && st.answer.sent_version.as_deref() == Some(version.as_str()) {
            return None;
        }
        let list: Vec<&Arc<Resource>> = if wildcard || force {
            requested
        } else {
            requested
                .into_iter()
                .filter(|r| st.have.get(&r.name) != Some(&r.digest))
                .collect()
        };
        if !wildcard {
            if force {
                st.have.clear();
            }
            st.have
                .extend(list.iter().map(|r| (r.name.clone(), r.digest)));
            if list.is_empty() && !force {
                // Only resources Envoy no longer asks for changed: nothing to send.
                return None;
            }
        }
        let sent = list.iter().map(|r| Arc::clone(r)).collect();
        let nonce = st.answer.record(&mut self.stream.nonce, &version, sent);
        Some(DiscoveryResponse {
            version_info: version,
            resources: list.iter().map(|r| r.any.clone()).collect(),
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        })
    }
}

impl AdsSession for Session {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    type Type = TypeState;

    fn new(resources: Arc<Resources>) -> Self {
        Session::new(resources)
    }
    fn stream(&self) -> &session::Stream<TypeState> {
        &self.stream
    }
    fn stream_mut(&mut self) -> &mut session::Stream<TypeState> {
        &mut self.stream
    }
    fn on_request(
        &mut self,
        req: &DiscoveryRequest,
    ) -> (Vec<DiscoveryResponse>, Option<HealthEvent>) {
        Session::on_request(self, req)
    }
    fn push(&mut self) -> Vec<DiscoveryResponse> {
        Session::push(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderModifier;
    use crate::snapshot::{
        ListenerSnapshot, PathMatch, Route, RouteAction, SourceObject, VirtualHost,
    };
    use crate::test_support::resources_routing_to as snap;
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status as RpcStatus;
    use resources::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

    fn src(name: &str) -> SourceObject {
        src_of("a", name)
    }

    fn src_of(tenant: &str, name: &str) -> SourceObject {
        crate::test_support::route_source(tenant, name)
    }

    #[tokio::test]
    async fn data_plane_connections_are_accepted_with_nodelay() {
        use futures::StreamExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut incoming = data_plane_incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let accepted = incoming
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(accepted.nodelay().expect("read TCP_NODELAY"));
    }

    fn req(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            node: Some(Node {
                id: "envoy-1".into(),
                ..Default::default()
            }),
            type_url: type_url.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    fn nack(type_url: &str, version: &str, nonce: &str, message: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.into(),
                details: vec![],
            }),
            ..req(type_url, &[], version, nonce)
        }
    }

    fn names_of(r: &DiscoveryResponse) -> Vec<String> {
        r.resources
            .iter()
            .map(|a| {
                use prost::Message;
                match a.type_url.as_str() {
                    CLUSTER_TYPE => {
                        envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(&*a.value)
                            .unwrap()
                            .name
                    }
                    ENDPOINT_TYPE => {
                        envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment::decode(
                            &*a.value,
                        )
                        .unwrap()
                        .cluster_name
                    }
                    ROUTE_TYPE => {
                        envoy_types::pb::envoy::config::route::v3::RouteConfiguration::decode(
                            &*a.value,
                        )
                        .unwrap()
                        .name
                    }
                    super::super::scoped::SCOPED_ROUTE_TYPE => {
                        envoy_types::pb::envoy::config::route::v3::ScopedRouteConfiguration::decode(
                            &*a.value,
                        )
                        .unwrap()
                        .name
                    }
                    other => other.to_string(),
                }
            })
            .collect()
    }

    #[test]
    fn subscribe_ack_and_push_in_warming_order() {
        let mut s = Session::new(snap(&["c1"], 1));
        // Initial CDS and LDS subscriptions: answered at once, wildcard.
        let (out, ev) = s.on_request(&req(CLUSTER_TYPE, &[], "", ""));
        assert_eq!(ev, None);
        assert_eq!(out.len(), 1);
        let cds = out[0].clone();
        assert_eq!(names_of(&cds), vec!["c1"]);
        assert_eq!(s.node(), "envoy-1");
        let (out, _) = s.on_request(&req(LISTENER_TYPE, &[], "", ""));
        let lds = out[0].clone();
        // ACK of CDS with the EDS subscription following it.
        let (out, ev) = s.on_request(&req(CLUSTER_TYPE, &[], &cds.version_info, &cds.nonce));
        assert!(out.is_empty());
        assert_eq!(ev, Some(HealthEvent::Ack(CLUSTER_TYPE.into())));
        let (out, _) = s.on_request(&req(ENDPOINT_TYPE, &["c1", "unknown"], "", ""));
        assert_eq!(names_of(&out[0]), vec!["c1"]);
        let eds = out[0].clone();
        s.on_request(&req(
            ENDPOINT_TYPE,
            &["c1", "unknown"],
            &eds.version_info,
            &eds.nonce,
        ));
        let (out, _) = s.on_request(&req(ROUTE_TYPE, &["port/80"], "", ""));
        let rds = out[0].clone();
        s.on_request(&req(LISTENER_TYPE, &[], &lds.version_info, &lds.nonce));
        s.on_request(&req(
            ROUTE_TYPE,
            &["port/80"],
            &rds.version_info,
            &rds.nonce,
        ));

        // Same snapshot again: nothing to push.
        assert!(s.on_snapshot(snap(&["c1"], 1)).is_empty());
        // A new cluster: CDS, then (old-subscription) EDS unchanged so skipped, LDS unchanged,
        // RDS changed. Order: clusters before routes.
        let out = s.on_snapshot(snap(&["c1", "c2"], 1));
        let types: Vec<&str> = out.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, vec![CLUSTER_TYPE, ROUTE_TYPE]);
        assert_eq!(names_of(&out[0]), vec!["c1", "c2"]);
        // Envoy asks for the new cluster's endpoints after the CDS response: sent, alone (Envoy
        // keeps c1's, unchanged, from the earlier response).
        let (got, _) = s.on_request(&req(
            ENDPOINT_TYPE,
            &["c1", "c2"],
            &eds.version_info,
            &eds.nonce,
        ));
        assert_eq!(names_of(&got[0]), vec!["c2"]);
        // Envoy answers the push and the EDS response.
        for r in out.iter().chain(&got) {
            let names: Vec<&str> = match r.type_url.as_str() {
                ENDPOINT_TYPE => vec!["c1", "c2"],
                ROUTE_TYPE => vec!["port/80"],
                _ => vec![],
            };
            s.on_request(&req(&r.type_url, &names, &r.version_info, &r.nonce));
        }
        // Endpoint change only: EDS alone.
        let out = s.on_snapshot(snap(&["c1", "c2"], 2));
        let types: Vec<&str> = out.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, vec![ENDPOINT_TYPE]);
    }

    /// A scoped port (exact hostnames only): a tenant's hostnames share tables, and a change of
    /// one route re-sends that hostname's table alone.
    #[test]
    fn a_route_change_resends_only_its_hostnames_table() {
        use super::super::scoped::SCOPED_ROUTE_TYPE;
        let vh = |tenant: &str, host: &str, prefix: &str| {
            Arc::new(VirtualHost {
                name: format!("port/80/host/{host}"),
                domains: vec![host.to_string()],
                routes: vec![Route {
                    name: format!("{host}-r"),
                    path: PathMatch::Prefix(prefix.to_string()),
                    headers: Default::default(),
                    query_params: Default::default(),
                    method: None,
                    request_headers: HeaderModifier::default(),
                    response_headers: HeaderModifier::default(),
                    cors: None,
                    action: RouteAction::DirectResponse(200),
                    source: Some(Arc::new(src_of(tenant, host))),
                }],
                rate_limit: None,
            })
        };
        let snap = |b_prefix: &str| -> Arc<Resources> {
            Arc::new(resources::build(&Snapshot {
                listeners: vec![ListenerSnapshot {
                    name: "port/80".into(),
                    port: 80,
                    bind: "127.0.0.1:18080".parse().unwrap(),
                    virtual_hosts: vec![
                        vh("a", "a.example", "/a"),
                        vh("b", "b.example", b_prefix),
                        vh("b", "c.example", "/c"),
                    ],
                    gateways: BTreeSet::new(),
                }],
                ..Default::default()
            }))
        };
        let mut s = Session::new(snap("/b"));
        let (out, _) = s.on_request(&req(SCOPED_ROUTE_TYPE, &[], "", ""));
        let srds = out[0].clone();
        assert_eq!(
            names_of(&srds),
            vec![
                "port/80/anchor/port/80/routes/t/a/0",
                "port/80/anchor/port/80/routes/t/b/0",
                "port/80/scoped/a.example",
                "port/80/scoped/b.example",
                "port/80/scoped/c.example"
            ]
        );
        s.on_request(&req(
            SCOPED_ROUTE_TYPE,
            &[],
            &srds.version_info,
            &srds.nonce,
        ));
        let names = ["port/80/routes/t/a/0", "port/80/routes/t/b/0"];
        let (out, _) = s.on_request(&req(ROUTE_TYPE, &names, "", ""));
        let rds = out[0].clone();
        assert_eq!(names_of(&rds), names);
        s.on_request(&req(ROUTE_TYPE, &names, &rds.version_info, &rds.nonce));

        let out = s.on_snapshot(snap("/b2"));
        let types: Vec<&str> = out.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, vec![ROUTE_TYPE], "the scopes did not change");
        assert_eq!(names_of(&out[0]), vec!["port/80/routes/t/b/0"]);
        assert_ne!(out[0].version_info, rds.version_info);
        // Reconnected (no nonce): everything asked for again.
        let mut s2 = Session::new(snap("/b2"));
        let (out, _) = s2.on_request(&req(ROUTE_TYPE, &names, &rds.version_info, ""));
        assert_eq!(names_of(&out[0]), names);
    }

    #[test]
    fn in_sync_once_every_subscribed_type_acked_the_last_response() {
        let mut s = Session::new(snap(&["c1"], 1));
        assert!(!s.in_sync(), "nothing subscribed yet");
        let (out, _) = s.on_request(&req(CLUSTER_TYPE, &[], "", ""));
        let cds = out[0].clone();
        let (out, _) = s.on_request(&req(LISTENER_TYPE, &[], "", ""));
        let lds = out[0].clone();
        assert!(!s.in_sync());
        s.on_request(&req(CLUSTER_TYPE, &[], &cds.version_info, &cds.nonce));
        assert!(!s.in_sync(), "LDS not ACKed yet");
        s.on_request(&req(LISTENER_TYPE, &[], &lds.version_info, &lds.nonce));
        assert!(s.in_sync());
        assert_eq!(
            s.sent_version(CLUSTER_TYPE),
            Some(cds.version_info.as_str())
        );
        // A new snapshot: out of sync until its push is ACKed; a NACK keeps it out.
        let pushed = s.on_snapshot(snap(&["c1", "c2"], 1));
        assert!(!s.in_sync());
        s.on_request(&nack(
            CLUSTER_TYPE,
            &cds.version_info,
            &pushed[0].nonce,
            "bad",
        ));
        assert!(!s.in_sync());
        let pushed = s.on_snapshot(snap(&["c2"], 1));
        s.on_request(&req(
            CLUSTER_TYPE,
            &[],
            &pushed[0].version_info,
            &pushed[0].nonce,
        ));
        assert!(s.in_sync());
    }

    #[test]
    fn a_snapshot_waits_for_envoys_answer_and_only_the_newest_is_pushed() {
        let mut s = Session::new(snap(&["c1"], 1));
        let rds_names = ["port/80"];
        for (t, names) in [(CLUSTER_TYPE, &[][..]), (ROUTE_TYPE, &rds_names[..])] {
            let (out, _) = s.on_request(&req(t, names, "", ""));
            s.on_request(&req(t, names, &out[0].version_info, &out[0].nonce));
        }
        let pushed = s.on_snapshot(snap(&["c1", "c2"], 1));
        let types = |out: &[DiscoveryResponse]| -> Vec<String> {
            out.iter().map(|r| r.type_url.clone()).collect()
        };
        assert_eq!(types(&pushed), vec![CLUSTER_TYPE, ROUTE_TYPE]);
        assert_eq!(names_of(&pushed[0]), vec!["c1", "c2"]);
        // Two snapshots while Envoy works on that push: held, nothing sent.
        assert!(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)).is_empty());
        assert!(s.on_snapshot(snap(&["c1", "c3", "c4"], 1)).is_empty());
        assert!(s.is_held());
        // The routes' ACK comes first: the newer routes (naming c3 and c4) are not sent ahead
        // of the clusters.
        let (out, _) = s.on_request(&req(
            ROUTE_TYPE,
            &rds_names,
            &pushed[1].version_info,
            &pushed[1].nonce,
        ));
        assert!(out.is_empty());
        assert!(s.push_held(false).is_empty(), "CDS not answered yet");
        // The clusters' ACK: the newest snapshot goes out, once, clusters first.
        let (out, ev) = s.on_request(&req(
            CLUSTER_TYPE,
            &[],
            &pushed[0].version_info,
            &pushed[0].nonce,
        ));
        assert!(out.is_empty());
        assert_eq!(ev, Some(HealthEvent::Ack(CLUSTER_TYPE.into())));
        let released = s.push_held(false);
        assert_eq!(types(&released), vec![CLUSTER_TYPE, ROUTE_TYPE]);
        assert_eq!(names_of(&released[0]), vec!["c1", "c3", "c4"]);
        s.on_request(&req(
            ROUTE_TYPE,
            &rds_names,
            &released[1].version_info,
            &released[1].nonce,
        ));
        assert!(!s.is_held());
        assert!(s.push_held(false).is_empty());
        // A NACK is an answer too: the next snapshot is not held by it.
        s.on_request(&nack(CLUSTER_TYPE, "", &released[0].nonce, "bad"));
        let out = s.on_snapshot(snap(&["c1"], 1));
        assert_eq!(types(&out), vec![CLUSTER_TYPE, ROUTE_TYPE]);
    }

    #[test]
    fn stale_nonces_are_ignored() {
        let mut s = Session::new(snap(&["c1"], 1));
        let (out, _) = s.on_request(&req(CLUSTER_TYPE, &[], "", ""));
        let first = out[0].clone();
        // Held (the first response is not answered), then pushed as if Envoy's answer never
        // came in time.
        assert!(s.on_snapshot(snap(&["c2"], 1)).is_empty());
        let pushed = s.push_held(true);
        assert_eq!(pushed.len(), 1);
        // Envoy's ACK of the first response arrives after the push: ignored, no resend.
        let (out, ev) = s.on_request(&req(CLUSTER_TYPE, &[], &first.version_info, &first.nonce));
        assert!(out.is_empty());
        assert_eq!(ev, None);
    }

    #[test]
    fn nack_names_the_sources_and_does_not_resend() {
        let mut s = Session::new(snap(&["c1", "c2"], 1));
        let (out, _) = s.on_request(&req(CLUSTER_TYPE, &[], "", ""));
        let cds = out[0].clone();
        let (out, ev) = s.on_request(&nack(CLUSTER_TYPE, "", &cds.nonce, "cluster c2: bad"));
        assert!(out.is_empty());
        let Some(HealthEvent::Nack(t, n)) = ev else {
            panic!("expected a NACK event, got {ev:?}")
        };
        assert_eq!(t, CLUSTER_TYPE);
        assert_eq!(n.node, "envoy-1");
        assert_eq!(n.version, cds.version_info);
        assert_eq!(n.sources, BTreeSet::from([src("c2")]));
        // A message naming nothing blames everything in the rejected response.
        let pushed = s.on_snapshot(snap(&["c1", "c3"], 1));
        let (_, ev) = s.on_request(&nack(CLUSTER_TYPE, "", &pushed[0].nonce, "opaque"));
        let Some(HealthEvent::Nack(_, n)) = ev else {
            panic!("expected a NACK event")
        };
        assert_eq!(n.sources, BTreeSet::from([src("c1"), src("c3")]));
        // The next good snapshot is pushed and its ACK clears the NACK.
        let pushed = s.on_snapshot(snap(&["c1"], 1));
        assert_eq!(pushed.len(), 1);
        let (_, ev) = s.on_request(&req(
            CLUSTER_TYPE,
            &[],
            &pushed[0].version_info,
            &pushed[0].nonce,
        ));
        assert_eq!(ev, Some(HealthEvent::Ack(CLUSTER_TYPE.into())));
    }

    /// A type whose resources are those it was last answered with is skipped without matching
    /// them against the subscription; a change of them after that, or back to an earlier
    /// state, is still pushed, and a resource outside the subscription changes nothing.
    #[test]
    fn unchanged_types_are_skipped_and_changes_after_a_skip_still_pushed() {
        let mut s = Session::new(snap(&["c1", "c2"], 1));
        let (out, _) = s.on_request(&req(ENDPOINT_TYPE, &["c1"], "", ""));
        let eds = out[0].clone();
        s.on_request(&req(ENDPOINT_TYPE, &["c1"], &eds.version_info, &eds.nonce));
        let types = |out: &[DiscoveryResponse]| -> Vec<String> {
            out.iter().map(|r| r.type_url.clone()).collect()
        };
        assert!(s.on_snapshot(snap(&["c1", "c2"], 1)).is_empty());
        // c3 is not subscribed: nothing to send although the type's resources changed.
        assert!(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)).is_empty());
        let out = s.on_snapshot(snap(&["c1", "c2", "c3"], 2));
        assert_eq!(types(&out), vec![ENDPOINT_TYPE]);
        assert_eq!(names_of(&out[0]), vec!["c1"]);
        s.on_request(&req(
            ENDPOINT_TYPE,
            &["c1"],
            &out[0].version_info,
            &out[0].nonce,
        ));
        assert!(s.on_snapshot(snap(&["c1", "c2", "c3"], 2)).is_empty());
        // Back to the first endpoints: pushed again.
        let out = s.on_snapshot(snap(&["c1", "c2"], 1));
        assert_eq!(types(&out), vec![ENDPOINT_TYPE]);
        assert_eq!(names_of(&out[0]), vec!["c1"]);
        // A new subscription is answered though the resources did not change.
        let (out, _) = s.on_request(&req(
            ENDPOINT_TYPE,
            &["c1", "c2"],
            &out[0].version_info,
            &out[0].nonce,
        ));
        assert_eq!(names_of(&out[0]), vec!["c2"]);
    }
}
