//! The agent's Prometheus metrics (`--metrics-listen`; served by `fleetgate-observe` with
//! `/healthz` and `/readyz`).
//!
//! Where it sits: beside `sync`, which counts on [`AgentMetrics`] what happens on its stream
//! (connected, Acks, Nacks, reconnects, its sync state, the watch lag of `crate::lag`); the
//! intent the agent sends and the hub's verdicts on it are read from their channels at each
//! scrape. Labels are bounded: kind, result, reason; never
//! an object's name, a hostname or a path. The names are `fleetgate_agent_*`;
//! docs/operations.md ("Metrics") lists them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use fleetgate_proto::spoke::v1::{Kind, Object, ObjectStatus, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// `ack` or `nack`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Where the agent's Sync stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// No Sync stream to the hub.
    Disconnected,
    /// A stream is open and an Update is not Acked yet (or was refused and waits to go again).
    Syncing,
    /// The hub Acked the last Update sent: it holds the agent's intent.
    Synced,
}

impl SyncState {
    const ALL: [SyncState; 3] = [
        SyncState::Disconnected,
        SyncState::Syncing,
        SyncState::Synced,
    ];

    fn label(self) -> &'static str {
        match self {
            SyncState::Disconnected => "disconnected",
            SyncState::Syncing => "syncing",
            SyncState::Synced => "synced",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RefusedLabels {
    kind: String,
    /// The Gateway API reason of the refusing condition.
    reason: String,
}

/// What the agent counts. `sync` writes the stream's counters; the rest is read at scrape.
pub struct AgentMetrics {
    registry: Registry,
    /// 1 while a Sync stream to the hub is open.
    pub hub_connected: Gauge,
    updates: Family<ResultLabels, Counter>,
    /// Sync streams that ended and were opened again.
    pub reconnects: Counter,
    /// Unix time of the hub's last Ack.
    pub last_ack: Gauge<f64, AtomicU64>,
    /// Seconds from a Kubernetes watch event to the hub's Ack of the Update carrying it.
    pub watch_lag: Histogram,
    sync_state: Family<StateLabels, Gauge>,
    objects: Family<KindLabels, Gauge>,
    refused: Family<RefusedLabels, Gauge>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fleetgate_agent");
        let hub_connected = Gauge::default();
        registry.register(
            "hub_connected",
            "1 while the Sync stream to the hub is open",
            hub_connected.clone(),
        );
        let updates = Family::default();
        registry.register(
            "updates",
            "Updates the hub answered, by Ack or Nack",
            updates.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "reconnects",
            "Sync streams that ended and were opened again",
            reconnects.clone(),
        );
        let last_ack = Gauge::default();
        registry.register(
            "last_ack_timestamp_seconds",
            "Unix time of the hub's last Ack",
            last_ack.clone(),
        );
        // 1 ms .. ~33 s.
        let watch_lag = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "watch_lag_seconds",
            "Time from a Kubernetes watch event to the hub's Ack of the Update that carries it",
            watch_lag.clone(),
        );
        let sync_state: Family<StateLabels, Gauge> = Family::default();
        registry.register(
            "sync_state",
            "1 for the state the Sync with the hub is in (disconnected, syncing, synced), 0 for the others",
            sync_state.clone(),
        );
        let objects = Family::default();
        registry.register(
            "objects",
            "Objects of the cluster's intent the agent sends the hub, by kind",
            objects.clone(),
        );
        let refused = Family::default();
        registry.register(
            "refused_objects",
            "Objects the hub refused (a False Accepted condition, on the object or a route parent), by kind and reason",
            refused.clone(),
        );
        let m = Self {
            registry,
            hub_connected,
            updates,
            reconnects,
            last_ack,
            watch_lag,
            sync_state,
            objects,
            refused,
        };
        m.set_state(SyncState::Disconnected);
        m
    }

    /// The Sync is now in `state`.
    pub fn set_state(&self, state: SyncState) {
        for s in SyncState::ALL {
            self.sync_state
                .get_or_create(&StateLabels { state: s.label() })
                .set(i64::from(s == state));
        }
    }

    /// The hub acknowledged an Update.
    pub fn acked(&self) {
        self.updates
            .get_or_create(&ResultLabels { result: "ack" })
            .inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_ack.set(now);
    }

    /// The hub refused an Update.
    pub fn nacked(&self) {
        self.updates
            .get_or_create(&ResultLabels { result: "nack" })
            .inc();
    }

    /// Sets the gauges from the intent and the hub's latest Status, and renders the text.
    pub fn scrape(&self, intent: &[Object], status: Option<&Status>) -> String {
        self.objects.clear();
        for (kind, n) in objects_by_kind(intent) {
            self.objects.get_or_create(&KindLabels { kind }).set(n);
        }
        self.refused.clear();
        for ((kind, reason), n) in refused_by_kind(status) {
            self.refused
                .get_or_create(&RefusedLabels { kind, reason })
                .set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The Kubernetes kind name (as the hub's metrics say it).
fn kind_name(kind: i32) -> String {
    let Ok(kind) = Kind::try_from(kind) else {
        return "Unknown".into();
    };
    match kind {
        Kind::Gateway => "Gateway",
        Kind::HttpRoute => "HTTPRoute",
        Kind::ListenerSet => "ListenerSet",
        Kind::Service => "Service",
        Kind::TcpRoute => "TCPRoute",
        Kind::UdpRoute => "UDPRoute",
        Kind::TlsRoute => "TLSRoute",
        Kind::GrpcRoute => "GRPCRoute",
        Kind::AiBackend => "AgentgatewayBackend",
        Kind::VirtualKey => "VirtualKey",
        other => other.as_str_name(),
    }
    .to_string()
}

fn objects_by_kind(intent: &[Object]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for o in intent {
        let kind = o.r#ref.as_ref().map(|r| r.kind).unwrap_or_default();
        *out.entry(kind_name(kind)).or_default() += 1;
    }
    out
}

/// The reason an object was refused: its own False Accepted condition, else a route parent's.
fn refusal(s: &ObjectStatus) -> Option<&str> {
    fn refused(c: &fleetgate_proto::spoke::v1::Condition) -> Option<&str> {
        (c.r#type == "Accepted" && c.status == "False").then_some(c.reason.as_str())
    }
    s.conditions.iter().find_map(refused).or_else(|| {
        s.parents
            .iter()
            .find_map(|p| p.conditions.iter().find_map(refused))
    })
}

fn refused_by_kind(status: Option<&Status>) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for s in status.map(|s| s.objects.as_slice()).unwrap_or_default() {
        if let Some(reason) = refusal(s) {
            let kind = s.r#ref.as_ref().map(|r| r.kind).unwrap_or_default();
            *out.entry((kind_name(kind), reason.to_string()))
                .or_default() += 1;
        }
    }
    out
}

/// Serves the agent's metrics on `listener`: `/readyz` answers while a Sync stream is open and
/// the hub has acknowledged an Update.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<AgentMetrics>,
    intent: watch::Receiver<Vec<Object>>,
    status: watch::Receiver<Option<Status>>,
) {
    let ready_metrics = metrics.clone();
    let endpoints = fleetgate_observe::Endpoints {
        metrics: Box::new(move || metrics.scrape(&intent.borrow(), status.borrow().as_ref())),
        ready: Box::new(move || {
            if ready_metrics.hub_connected.get() == 1 && ready_metrics.last_ack.get() > 0.0 {
                Ok(())
            } else {
                Err("no Sync stream to the hub acknowledged yet".into())
            }
        }),
        app: None,
    };
    fleetgate_observe::serve(listener, Arc::new(endpoints), std::future::pending()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_proto::spoke::v1::{Condition, ObjectRef, RouteParentStatus};

    fn object(kind: Kind, name: &str) -> Object {
        Object {
            r#ref: Some(ObjectRef {
                kind: kind as i32,
                namespace: "default".into(),
                name: name.into(),
            }),
            ..Default::default()
        }
    }

    fn condition(status: &str, reason: &str) -> Condition {
        Condition {
            r#type: "Accepted".into(),
            status: status.into(),
            reason: reason.into(),
            message: "the hostname shop.b.example is not yours".into(),
        }
    }

    #[test]
    fn intent_and_refusals_are_counted_by_kind_and_reason_without_names() {
        let m = AgentMetrics::new();
        m.acked();
        m.nacked();
        let intent = vec![
            object(Kind::Gateway, "web"),
            object(Kind::HttpRoute, "shop"),
            object(Kind::HttpRoute, "app"),
        ];
        let status = Status {
            traceparent: String::new(),
            objects: vec![
                ObjectStatus {
                    r#ref: intent[0].r#ref.clone(),
                    conditions: vec![condition("True", "Accepted")],
                    ..Default::default()
                },
                ObjectStatus {
                    r#ref: intent[1].r#ref.clone(),
                    parents: vec![RouteParentStatus {
                        conditions: vec![condition("False", "HostnameNotAllowed")],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        let text = m.scrape(&intent, Some(&status));
        for want in [
            r#"fleetgate_agent_objects{kind="Gateway"} 1"#,
            r#"fleetgate_agent_objects{kind="HTTPRoute"} 2"#,
            r#"fleetgate_agent_refused_objects{kind="HTTPRoute",reason="HostnameNotAllowed"} 1"#,
            r#"fleetgate_agent_updates_total{result="ack"} 1"#,
            r#"fleetgate_agent_updates_total{result="nack"} 1"#,
            r#"fleetgate_agent_sync_state{state="disconnected"} 1"#,
            r#"fleetgate_agent_sync_state{state="synced"} 0"#,
            "fleetgate_agent_watch_lag_seconds_count 0",
        ] {
            assert!(text.contains(want), "missing {want} in:\n{text}");
        }
        for leak in ["shop", "web", "b.example"] {
            assert!(!text.contains(leak), "{leak} leaked:\n{text}");
        }
        m.set_state(SyncState::Synced);
        let text = m.scrape(&intent, Some(&status));
        assert!(text.contains(r#"fleetgate_agent_sync_state{state="synced"} 1"#));
        assert!(text.contains(r#"fleetgate_agent_sync_state{state="disconnected"} 0"#));
    }
}
