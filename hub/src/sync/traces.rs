//! The hub's side of a traced change (docs/operations.md, "Traces"): the agent's Update carries
//! a `traceparent`; the stream's `hub.sync.update` span continues it (a missing or malformed one
//! starts a fresh trace), `Fleet::apply_traced` adds `hub.admit` and `hub.store`, and
//! [`PendingChanges`] hands the change to the compile loop, whose `hub.compile` span
//! ([`compile_span`]) is the parent of the xDS pushes (`fleetgate_hub_xds::trace`). The Ack,
//! and the first Status after it, carry the `hub.sync.update` span back to the agent.

use std::collections::BTreeMap;
use std::sync::Mutex;

use fleetgate_observe::trace::{self, Attribute, Kind, Span, Start, TraceContext};
use fleetgate_proto::spoke::v1 as pb;

use crate::model::ClusterKey;

/// Changes accepted (or being admitted) since the compile loop last looked: their spans.
#[derive(Debug, Default)]
pub struct PendingChanges(Mutex<Vec<TraceContext>>);

impl PendingChanges {
    /// A change whose admission starts now (before it wakes the compile loop).
    pub fn add(&self, change: TraceContext) {
        if let Ok(mut p) = self.0.lock() {
            p.push(change);
        }
    }

    /// A change that was refused: nothing of it will be compiled.
    pub fn remove(&self, change: &TraceContext) {
        if let Ok(mut p) = self.0.lock() {
            p.retain(|c| c != change);
        }
    }

    /// Every pending change, for the compile that starts now.
    pub fn take(&self) -> Vec<TraceContext> {
        self.0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

/// The `hub.sync.update` span of `update` from `key`: under the agent's span when its
/// `traceparent` is valid, else the root of a new trace.
pub fn update_span(key: &ClusterKey, update: &pb::Update) -> Span {
    let parent = if trace::enabled() {
        trace::parse_traceparent(&update.traceparent)
    } else {
        None
    };
    trace::span(
        "hub.sync.update",
        Kind::Server,
        Start {
            parent: parent.as_ref(),
            ..Default::default()
        },
        || {
            let mut a = crate::fleet::cluster_attributes(key);
            a.extend(update_attributes(update));
            a
        },
    )
}

/// Bounded attributes of an Update: revision, full state, and counts per kind (never names or
/// contents).
pub fn update_attributes(update: &pb::Update) -> Vec<Attribute> {
    let mut kinds: BTreeMap<&'static str, i64> = BTreeMap::new();
    for o in &update.upserts {
        let kind = o.r#ref.as_ref().map(|r| r.kind).unwrap_or_default();
        *kinds.entry(kind_label(kind)).or_default() += 1;
    }
    let mut out = vec![
        Attribute::new("fleetgate.revision", update.revision as i64),
        Attribute::new("fleetgate.full_state", update.full_state),
        Attribute::new("fleetgate.upserts", update.upserts.len() as i64),
        Attribute::new("fleetgate.deletes", update.deletes.len() as i64),
    ];
    out.extend(
        kinds
            .into_iter()
            .map(|(k, n)| Attribute::new(format!("fleetgate.upserts.{k}"), n)),
    );
    out
}

/// The attribute suffix of a wire kind (a closed set: unknown numbers are `unknown`).
fn kind_label(kind: i32) -> &'static str {
    match pb::Kind::try_from(kind).unwrap_or(pb::Kind::Unspecified) {
        pb::Kind::Unspecified => "unknown",
        pb::Kind::Gateway => "gateway",
        pb::Kind::HttpRoute => "http_route",
        pb::Kind::ListenerSet => "listener_set",
        pb::Kind::Service => "service",
        pb::Kind::TcpRoute => "tcp_route",
        pb::Kind::UdpRoute => "udp_route",
        pb::Kind::TlsRoute => "tls_route",
        pb::Kind::GrpcRoute => "grpc_route",
        pb::Kind::AiBackend => "ai_backend",
        pb::Kind::VirtualKey => "virtual_key",
    }
}

/// The `hub.compile` span of a compile that includes the `pending` changes (taken): under the
/// first, linked to the others (one compile serves every change accepted since the last).
/// Nothing when no change is pending or traces are off.
pub fn compile_span(pending: &PendingChanges) -> Span {
    if !trace::enabled() {
        return Span::default();
    }
    let mut changes = pending.take().into_iter();
    let Some(first) = changes.next() else {
        return Span::default();
    };
    let links: Vec<TraceContext> = changes.collect();
    let count = links.len() as i64 + 1;
    trace::span(
        "hub.compile",
        Kind::Internal,
        Start {
            parent: Some(&first),
            links,
            at: None,
        },
        || vec![Attribute::new("fleetgate.changes", count)],
    )
}
