//! The gRPC server agents connect to: `fleetgate.spoke.v1.SpokeService/Sync` over mTLS.
//!
//! Where it sits: first stop in the hub. The tenant and cluster come from the verified client
//! certificate and nowhere else; each Update goes to `Fleet::apply`, and the statuses the compile
//! loop publishes are streamed back to the cluster they belong to.

pub mod handshake;
pub mod traces;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use fleetgate_proto::spoke::v1::{self as pb, spoke_service_server::SpokeService};
use futures::Stream;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::fleet::{Fleet, UpdateError};
use crate::identity::PeerIdentity;
use crate::model::{self, ClusterKey, ObjectStatus};
use crate::peer::identify;
use traces::PendingChanges;

/// Statuses of every cluster, as the compile loop publishes them.
pub type FleetStatus = Arc<BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>>;

pub struct SyncService {
    fleet: Arc<Fleet>,
    trust_domain: String,
    statuses: watch::Receiver<FleetStatus>,
    observers: Observers,
}

/// What the streams tell others about each Update.
#[derive(Clone)]
struct Observers {
    /// Seconds each Update took to admit and store (`crate::metrics` registers it).
    apply_seconds: Histogram,
    /// Traced changes handed to the compile loop (`traces`).
    pending: Arc<PendingChanges>,
}

impl SyncService {
    pub fn new(
        fleet: Arc<Fleet>,
        trust_domain: String,
        statuses: watch::Receiver<FleetStatus>,
    ) -> Self {
        Self {
            fleet,
            trust_domain,
            statuses,
            observers: Observers {
                // Unregistered unless `with_apply_histogram` hands the registered one.
                apply_seconds: Histogram::new([1.0]),
                pending: Arc::default(),
            },
        }
    }

    /// Observes each Update's admission and store time into `h`.
    pub fn with_apply_histogram(mut self, h: Histogram) -> Self {
        self.observers.apply_seconds = h;
        self
    }

    /// Hands the spans of accepted changes to the compile loop through `pending`.
    pub fn with_pending_changes(mut self, pending: Arc<PendingChanges>) -> Self {
        self.observers.pending = pending;
        self
    }

    fn identify<T>(&self, req: &Request<T>) -> Result<(ClusterKey, PeerIdentity), Status> {
        identify(&self.fleet, &self.trust_domain, req)
    }
}

type HubStream = Pin<Box<dyn Stream<Item = Result<pb::HubMessage, Status>> + Send>>;

#[tonic::async_trait]
impl SpokeService for SyncService {
    type SyncStream = HubStream;

    async fn sync(
        &self,
        req: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<HubStream>, Status> {
        let (key, peer) = self.identify(&req)?;
        let mut inbound = req.into_inner();

        let hello = match inbound.message().await? {
            Some(pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::Hello(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("the first message must be Hello")),
        };
        if hello.cluster != key.cluster {
            tracing::warn!(cluster = %key, claimed = %hello.cluster.chars().take(64).collect::<String>(), "agent named another cluster than its certificate");
            return Err(Status::permission_denied(format!(
                "Hello names cluster {:?} but the certificate is for cluster {:?} of tenant {:?}",
                hello.cluster.chars().take(64).collect::<String>(),
                key.cluster,
                key.tenant
            )));
        }
        tracing::info!(cluster = %key, agent_version = %hello.agent_version.chars().take(32).collect::<String>(), "agent connected");

        let (tx, rx) = mpsc::channel::<Result<pb::HubMessage, Status>>(16);
        let fleet = self.fleet.clone();
        let statuses = self.statuses.clone();
        let observers = self.observers.clone();
        tokio::spawn(run_stream(
            key, peer, fleet, inbound, statuses, tx, observers,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tracing::instrument(skip_all, fields(tenant = %key.tenant, cluster = %key.cluster))]
async fn run_stream(
    key: ClusterKey,
    peer: PeerIdentity,
    fleet: Arc<Fleet>,
    mut inbound: Streaming<pb::AgentMessage>,
    mut statuses: watch::Receiver<FleetStatus>,
    tx: mpsc::Sender<Result<pb::HubMessage, Status>>,
    observers: Observers,
) {
    let Observers {
        apply_seconds,
        pending,
    } = observers;
    // Open until this stream ends, wherever it returns: starts the grace period (crate::grace).
    let _link = fleet.link(&key);
    let mut expected_revision = 1u64;
    // After a refused Update the agent no longer knows what the hub holds: the revision is
    // used up and the next Update must carry the full state.
    let mut need_full_state = false;
    let mut last_sent: Option<Arc<Vec<ObjectStatus>>> = None;
    // The span of the last acknowledged Update, until the next Status carries it to the agent.
    let mut status_trace = String::new();
    let mut config = fleet.subscribe_config();
    // TLS checked the certificate once, at the handshake: the stream must not outlive it.
    let expiry = tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(peer.not_after - crate::fleet::unix_now()).unwrap_or(0),
    ));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => {
                tracing::warn!("closing the agent stream: its certificate expired");
                let _ = tx.send(Err(Status::unauthenticated(
                    "the client certificate expired; the agent renews it at half its life (check its log), or enroll again with a new bootstrap token",
                ))).await;
                return;
            }
            changed = config.changed() => {
                if changed.is_err() { return; }
                // Removed or disabled at the hub: close the stream with the reason.
                if let Err(e) = fleet.check_identity(&key, peer.issued_at) {
                    tracing::warn!("closing the agent stream: {e}");
                    let _ = tx.send(Err(Status::permission_denied(e.to_string()))).await;
                    return;
                }
                continue;
            }
            msg = inbound.next() => {
                let update = match msg {
                    None => { tracing::info!("agent disconnected"); return; }
                    Some(Err(e)) => {
                        tracing::warn!("agent stream failed: {}", e.message());
                        let _ = tx.send(Err(Status::invalid_argument(e.message().to_string()))).await;
                        return;
                    }
                    Some(Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Update(u)) })) => u,
                    Some(Ok(_)) => {
                        let _ = tx.send(Err(Status::invalid_argument("expected Update after Hello"))).await;
                        return;
                    }
                };
                let reply = if update.revision != expected_revision {
                    pb::hub_message::Kind::Nack(out_of_order(
                        update.revision,
                        format!("expected revision {expected_revision}; reconnect and send full state"),
                    ))
                } else if expected_revision == 1 && !update.full_state {
                    pb::hub_message::Kind::Nack(out_of_order(
                        update.revision,
                        "the first Update after Hello must carry full_state".into(),
                    ))
                } else if need_full_state && !update.full_state {
                    expected_revision += 1;
                    pb::hub_message::Kind::Nack(out_of_order(
                        update.revision,
                        "an earlier Update was refused: send the full state".into(),
                    ))
                } else {
                    let started = std::time::Instant::now();
                    let revision = update.revision;
                    let mut span = traces::update_span(&key, &update);
                    let change = span.context();
                    if let Some(c) = &change {
                        pending.add(c.clone());
                    }
                    // Admission and the store write are blocking work (a large Update takes
                    // hundreds of milliseconds): off the async workers, so that one tenant's
                    // flood cannot stall other tenants' streams or the xDS server.
                    let applied = {
                        let (fleet, key, parent) = (fleet.clone(), key.clone(), change.clone());
                        tokio::task::spawn_blocking(move || fleet.apply_traced(&key, &update, parent.as_ref()))
                            .await
                            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                    };
                    apply_seconds.observe(started.elapsed().as_secs_f64());
                    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "update applied");
                    match applied {
                        Ok(()) => {
                            expected_revision += 1;
                            need_full_state = false;
                            status_trace = span.traceparent();
                            pb::hub_message::Kind::Ack(pb::Ack { revision, traceparent: span.traceparent() })
                        }
                        Err(e) => {
                            if let Some(c) = &change {
                                pending.remove(c);
                            }
                            span.fail(&e.to_string());
                            tracing::warn!(revision, "update refused: {e}");
                            expected_revision += 1;
                            need_full_state = true;
                            pb::hub_message::Kind::Nack(refused(revision, &e))
                        }
                    }
                };
                if tx.send(Ok(pb::HubMessage { kind: Some(reply) })).await.is_err() {
                    return;
                }
            }
            changed = statuses.changed() => {
                if changed.is_err() { return; }
            }
        }
        // After every event, send this cluster's statuses if they changed.
        let current = statuses
            .borrow_and_update()
            .get(&key)
            .cloned()
            .unwrap_or_default();
        if last_sent.as_ref() != Some(&current) {
            let msg = pb::HubMessage {
                kind: Some(pb::hub_message::Kind::Status(pb::Status {
                    objects: current.iter().map(to_wire).collect(),
                    traceparent: std::mem::take(&mut status_trace),
                })),
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
            last_sent = Some(current);
        }
    }
}

/// A Nack for an Update that broke the stream's order.
fn out_of_order(revision: u64, message: String) -> pb::Nack {
    pb::Nack {
        revision,
        message,
        reason: pb::nack::Reason::OutOfOrder as i32,
        retry_after_ms: 0,
    }
}

/// How long an agent waits before sending its full state again after its Update lost a race
/// for a claim to another hub, and after the store failed.
const STORE_CONFLICT_RETRY_MS: u32 = 50;
const STORE_FAILURE_RETRY_MS: u32 = 1000;

/// The Nack of an Update `Fleet::apply` refused: the message for people, the reason and (rate
/// limit) the wait for the agent, so that it never reads the message.
pub fn refused(revision: u64, e: &UpdateError) -> pb::Nack {
    let (reason, retry_after_ms) = match e {
        UpdateError::UnknownCluster(_) => (pb::nack::Reason::UnknownCluster, 0),
        UpdateError::TooManyObjects { .. } => (pb::nack::Reason::TooManyObjects, 0),
        UpdateError::RateLimited { retry_after, .. } => (
            pb::nack::Reason::RateLimited,
            // As the message says it: whole milliseconds, at least one.
            u32::try_from(retry_after.as_millis().max(1)).unwrap_or(u32::MAX),
        ),
        // Another hub sharing the store took a claim first: the claims are read again, so the
        // full state sent again at once is judged against them.
        UpdateError::Store(crate::store::StoreError::Conflict { .. }) => {
            (pb::nack::Reason::Store, STORE_CONFLICT_RETRY_MS)
        }
        // The store failed (etcd unreachable, disk full): tried again a little later.
        UpdateError::Store(_) => (pb::nack::Reason::Store, STORE_FAILURE_RETRY_MS),
    };
    pb::Nack {
        revision,
        message: e.to_string(),
        reason: reason as i32,
        retry_after_ms,
    }
}

/// Model status -> wire status (the boundary).
pub fn to_wire(s: &ObjectStatus) -> pb::ObjectStatus {
    pb::ObjectStatus {
        r#ref: Some(pb::ObjectRef {
            kind: match s.key.kind {
                model::Kind::Gateway => pb::Kind::Gateway,
                model::Kind::HttpRoute => pb::Kind::HttpRoute,
                model::Kind::TlsRoute => pb::Kind::TlsRoute,
                model::Kind::Service => pb::Kind::Service,
                model::Kind::TcpRoute => pb::Kind::TcpRoute,
                model::Kind::UdpRoute => pb::Kind::UdpRoute,
                model::Kind::GrpcRoute => pb::Kind::GrpcRoute,
                model::Kind::ListenerSet => pb::Kind::ListenerSet,
                model::Kind::AiBackend => pb::Kind::AiBackend,
                model::Kind::VirtualKey => pb::Kind::VirtualKey,
            } as i32,
            namespace: s.key.namespace.clone(),
            name: s.key.name.clone(),
        }),
        observed_generation: s.observed_generation,
        conditions: s.conditions.iter().map(condition).collect(),
        addresses: s.addresses.clone(),
        listeners: s
            .listeners
            .iter()
            .map(|l| pb::ListenerStatus {
                name: l.name.clone(),
                attached_routes: l.attached_routes,
                conditions: l.conditions.iter().map(condition).collect(),
                supported_kinds: l
                    .supported_kinds
                    .iter()
                    .map(|k| pb::RouteGroupKind {
                        group: k.group.clone(),
                        kind: k.kind.clone(),
                    })
                    .collect(),
            })
            .collect(),
        parents: s
            .parents
            .iter()
            .map(|p| pb::RouteParentStatus {
                parent_ref: Some(pb::ParentRef {
                    namespace: p.parent_ref.namespace.clone(),
                    name: p.parent_ref.name.clone(),
                    section_name: p.parent_ref.section_name.clone().unwrap_or_default(),
                    port: p.parent_ref.port.map(u32::from).unwrap_or(0),
                    group: crate::compile::kinds::GATEWAY_GROUP.to_string(),
                    kind: p.parent_ref.kind.as_str().to_string(),
                }),
                conditions: p.conditions.iter().map(condition).collect(),
            })
            .collect(),
        load_balancer_ingress: s
            .load_balancer
            .iter()
            .map(|i| pb::LoadBalancerIngress {
                ip: i.ip.clone(),
                ports: i
                    .ports
                    .iter()
                    .map(|p| pb::LoadBalancerPort {
                        port: u32::from(p.port),
                        protocol: p.protocol.as_str().to_string(),
                        service_port: u32::from(p.service_port),
                    })
                    .collect(),
            })
            .collect(),
        attached_listener_sets: s.attached_listener_sets,
    }
}

fn condition(c: &model::Condition) -> pb::Condition {
    pb::Condition {
        r#type: c.type_.clone(),
        status: if c.status { "True" } else { "False" }.to_string(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_rate_limit_nack_carries_its_wait_and_reason() {
        let e = UpdateError::RateLimited {
            tenant: "a".into(),
            per_second: 2,
            burst: 2,
            retry_after: Duration::from_micros(250_400),
        };
        let n = refused(7, &e);
        assert_eq!(n.revision, 7);
        assert_eq!(n.reason(), pb::nack::Reason::RateLimited);
        assert_eq!(n.retry_after_ms, 250);
        // The message says the same wait, for people.
        assert!(n.message.contains("retry after 250ms"), "{}", n.message);
        // Less than a millisecond still asks for a wait.
        let e = UpdateError::RateLimited {
            retry_after: Duration::from_micros(10),
            tenant: "a".into(),
            per_second: 2,
            burst: 2,
        };
        assert_eq!(refused(8, &e).retry_after_ms, 1);
    }

    #[test]
    fn other_nacks_ask_for_no_wait_but_store_failures_do() {
        let e = UpdateError::TooManyObjects {
            count: 11,
            limit: 10,
        };
        let n = refused(3, &e);
        assert_eq!(
            (n.reason(), n.retry_after_ms),
            (pb::nack::Reason::TooManyObjects, 0)
        );
        // A store failure is retried by itself; a lost race at once.
        let conflict = UpdateError::Store(crate::store::StoreError::Conflict {
            what: "a hostname claim".into(),
        });
        assert_eq!(
            (
                refused(5, &conflict).reason(),
                refused(5, &conflict).retry_after_ms
            ),
            (pb::nack::Reason::Store, STORE_CONFLICT_RETRY_MS)
        );
        let failed = UpdateError::Store(crate::store::StoreError::Db("disk full".into()));
        assert_eq!(refused(6, &failed).retry_after_ms, STORE_FAILURE_RETRY_MS);
        let n = out_of_order(4, "expected revision 2".into());
        assert_eq!(
            (n.reason(), n.retry_after_ms),
            (pb::nack::Reason::OutOfOrder, 0)
        );
    }
}
