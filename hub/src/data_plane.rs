//! The Envoys connected to the hub's ADS server, as the operator sees them, and how long a
//! change takes to reach all of them.
//!
//! Where it sits: beside step 8 (publish), reading it. [`DataPlaneReport`] is the
//! [`AdsReport`] the hub hands the ADS server: it keeps one [`EnvoyView`] per stream (node id,
//! connected since, the version of each type last ACKed, the last NACK with its error),
//! published through a watch channel for the admin API and the dashboard, counts ACKs and
//! NACKs per xDS type and observes push times into [`XdsMetrics`]. [`Propagation`] (pure) ties
//! each snapshot the compile loop publishes to when the agent Updates it carries were
//! accepted, and gives the time until every connected Envoy ACKed it.
//!
//! Labels are bounded: the xDS types the hub serves (any other type is counted as `other`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use serde::Serialize;
use tokio::sync::watch;

use crate::compile::Snapshot;
use crate::xds::AdsReport;
use crate::xds::resources::PUSH_ORDER;

/// The label of one xDS type: the type URL's last segment, e.g.
/// `envoy.config.listener.v3.Listener`, or `other` for a type the hub does not serve.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct XdsTypeLabels {
    pub r#type: String,
}

/// The bounded label for `type_url`.
pub fn type_label(type_url: &str) -> String {
    if PUSH_ORDER.contains(&type_url) {
        short_type(type_url).to_string()
    } else {
        "other".to_string()
    }
}

/// The type URL's last segment (`type.googleapis.com/envoy.config.cluster.v3.Cluster` ->
/// `envoy.config.cluster.v3.Cluster`).
pub fn short_type(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// The ADS streams' metrics; `crate::metrics` registers them.
#[derive(Clone)]
pub struct XdsMetrics {
    /// ACKs per xDS type.
    pub acks: Family<XdsTypeLabels, Counter>,
    /// NACKs per xDS type.
    pub nacks: Family<XdsTypeLabels, Counter>,
    /// Seconds one stream took to build and send the responses for a new snapshot.
    pub push: Histogram,
    /// Seconds from an agent Update being accepted to every connected Envoy ACKing it.
    pub update_to_ack: Histogram,
}

impl Default for XdsMetrics {
    fn default() -> Self {
        let acks: Family<XdsTypeLabels, Counter> = Family::default();
        let nacks: Family<XdsTypeLabels, Counter> = Family::default();
        // Every served type is there at 0 before the first ACK, for dashboards and alerts.
        for t in PUSH_ORDER {
            let labels = XdsTypeLabels {
                r#type: type_label(t),
            };
            let _ = acks.get_or_create(&labels);
            let _ = nacks.get_or_create(&labels);
        }
        Self {
            acks,
            nacks,
            // 0.1 ms .. ~1.6 s.
            push: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            // 1 ms .. ~33 s.
            update_to_ack: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        }
    }
}

/// One connected Envoy, for `GET /api/v1/data-plane` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyView {
    /// The node id Envoy sent.
    pub node: String,
    /// Unix seconds the stream named its node.
    pub connected_since: i64,
    /// xDS type (short name) -> the version it last ACKed.
    pub acked: BTreeMap<String, String>,
    /// Unix seconds of its last ACK of a new version (of any type); none before the first.
    pub last_ack_at: Option<i64>,
    /// Its last NACK, kept after a later ACK (the standing ones are `XdsHealth`'s).
    pub last_nack: Option<NackView>,
}

/// One NACK as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NackView {
    #[serde(rename = "type")]
    pub type_url: String,
    pub version: String,
    /// Envoy's error.
    pub message: String,
    /// Unix seconds.
    pub at: i64,
}

/// Stream number -> its Envoy.
pub type Envoys = BTreeMap<u64, EnvoyView>;

/// How far each connected Envoy got, and the accepted Updates not yet ACKed everywhere; no
/// clock and no I/O, so it is unit-tested directly.
#[derive(Debug, Default)]
pub struct Propagation {
    next_seq: u64,
    /// The snapshots published lately, oldest first, numbered in order.
    published: VecDeque<(u64, Weak<Snapshot>)>,
    /// Per published snapshot that carries accepted Updates: when the first was accepted.
    pending: VecDeque<(u64, Instant)>,
    /// Connected stream -> the newest published snapshot it is in sync with.
    streams: BTreeMap<u64, Option<u64>>,
}

/// Published snapshots remembered (a stream in sync with an older one counts as not in sync).
const REMEMBERED: usize = 256;

impl Propagation {
    /// The compile loop published `snapshot`, which carries the Updates accepted since the last
    /// one (the first of them at `accepted`; `None`: no agent Update, e.g. a reload). With no
    /// Envoy connected nothing is waited for.
    pub fn published(&mut self, snapshot: &Arc<Snapshot>, accepted: Option<Instant>) {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.published.push_back((seq, Arc::downgrade(snapshot)));
        if self.published.len() > REMEMBERED {
            self.published.pop_front();
        }
        if let Some(at) = accepted
            && !self.streams.is_empty()
        {
            self.pending.push_back((seq, at));
            if self.pending.len() > REMEMBERED {
                self.pending.pop_front();
            }
        }
    }

    /// A stream opened: the Updates pending now wait for it too.
    pub fn opened(&mut self, stream: u64) {
        self.streams.entry(stream).or_insert(None);
    }

    /// A stream is in sync with `snapshot`; the times from acceptance to now of the Updates
    /// every connected Envoy has now ACKed.
    pub fn in_sync(
        &mut self,
        stream: u64,
        snapshot: &Arc<Snapshot>,
        now: Instant,
    ) -> Vec<Duration> {
        let seq = self
            .published
            .iter()
            .rev()
            .find(|(_, w)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(snapshot)))
            .map(|(s, _)| *s);
        if let (Some(seq), Some(at)) = (seq, self.streams.get_mut(&stream)) {
            *at = Some(at.map_or(seq, |a| a.max(seq)));
        }
        self.complete(now)
    }

    /// A stream closed: it is waited for no more.
    pub fn closed(&mut self, stream: u64, now: Instant) -> Vec<Duration> {
        self.streams.remove(&stream);
        if self.streams.is_empty() {
            // Nobody left to ACK: nothing to measure.
            self.pending.clear();
        }
        self.complete(now)
    }

    fn complete(&mut self, now: Instant) -> Vec<Duration> {
        let mut out = Vec::new();
        while let Some(&(seq, at)) = self.pending.front() {
            let everywhere = !self.streams.is_empty()
                && self.streams.values().all(|s| s.is_some_and(|s| s >= seq));
            if !everywhere {
                break;
            }
            self.pending.pop_front();
            out.push(now.saturating_duration_since(at));
        }
        out
    }
}

/// The [`AdsReport`] of the hub: the Envoys' views, [`XdsMetrics`] and [`Propagation`].
pub struct DataPlaneReport {
    envoys: watch::Sender<Envoys>,
    metrics: XdsMetrics,
    propagation: Mutex<Propagation>,
}

impl DataPlaneReport {
    pub fn new(metrics: XdsMetrics) -> Self {
        Self {
            envoys: watch::channel(Envoys::new()).0,
            metrics,
            propagation: Mutex::new(Propagation::default()),
        }
    }

    /// The connected Envoys, changing as they connect, ACK, NACK and leave.
    pub fn envoys(&self) -> watch::Receiver<Envoys> {
        self.envoys.subscribe()
    }

    /// See [`Propagation::published`] (the compile loop calls it for every new snapshot).
    pub fn published(&self, snapshot: &Arc<Snapshot>, accepted: Option<Instant>) {
        self.propagation().published(snapshot, accepted);
    }

    fn propagation(&self) -> std::sync::MutexGuard<'_, Propagation> {
        // The state is counters and queues, valid after any panic elsewhere.
        self.propagation
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn observe(&self, done: Vec<Duration>) {
        for d in done {
            self.metrics.update_to_ack.observe(d.as_secs_f64());
        }
    }
}

impl AdsReport for DataPlaneReport {
    fn opened(&self, stream: u64, node: &str) {
        self.propagation().opened(stream);
        self.envoys.send_modify(|e| {
            e.insert(
                stream,
                EnvoyView {
                    node: node.to_string(),
                    connected_since: crate::fleet::unix_now(),
                    acked: BTreeMap::new(),
                    last_ack_at: None,
                    last_nack: None,
                },
            );
        });
    }

    fn acked(&self, stream: u64, type_url: &str, version: &str) {
        self.metrics
            .acks
            .get_or_create(&XdsTypeLabels {
                r#type: type_label(type_url),
            })
            .inc();
        self.envoys.send_if_modified(|e| {
            let Some(v) = e.get_mut(&stream) else {
                return false;
            };
            let short = short_type(type_url).to_string();
            if v.acked.get(&short).map(String::as_str) == Some(version) {
                return false;
            }
            v.acked.insert(short, version.to_string());
            v.last_ack_at = Some(crate::fleet::unix_now());
            true
        });
    }

    fn nacked(&self, stream: u64, type_url: &str, version: &str, message: &str) {
        self.metrics
            .nacks
            .get_or_create(&XdsTypeLabels {
                r#type: type_label(type_url),
            })
            .inc();
        self.envoys.send_if_modified(|e| {
            let Some(v) = e.get_mut(&stream) else {
                return false;
            };
            v.last_nack = Some(NackView {
                type_url: short_type(type_url).to_string(),
                version: version.to_string(),
                message: message.chars().take(1024).collect(),
                at: crate::fleet::unix_now(),
            });
            true
        });
    }

    fn pushed(&self, seconds: f64) {
        self.metrics.push.observe(seconds);
    }

    fn in_sync(&self, stream: u64, snapshot: &Arc<Snapshot>) {
        let done = self.propagation().in_sync(stream, snapshot, Instant::now());
        self.observe(done);
    }

    fn closed(&self, stream: u64) {
        let done = self.propagation().closed(stream, Instant::now());
        self.observe(done);
        self.envoys
            .send_if_modified(|e| e.remove(&stream).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct allocations are what tells snapshots apart; the content does not matter.
    fn snap() -> Arc<Snapshot> {
        Arc::new(Snapshot::default())
    }

    #[test]
    fn an_update_counts_once_every_connected_envoy_acked_it_or_a_later_snapshot() {
        let t0 = Instant::now();
        let mut p = Propagation::default();
        p.opened(1);
        p.opened(2);
        let s1 = snap();
        p.published(&s1, Some(t0));
        // One of two Envoys in sync: nothing yet.
        assert!(p.in_sync(1, &s1, t0 + Duration::from_millis(5)).is_empty());
        // The other ACKs a later snapshot that carries it too.
        let s2 = snap();
        p.published(&s2, None);
        let done = p.in_sync(2, &s2, t0 + Duration::from_millis(9));
        assert_eq!(done, vec![Duration::from_millis(9)]);
        // Counted once.
        assert!(p.in_sync(1, &s2, t0 + Duration::from_millis(10)).is_empty());
    }

    #[test]
    fn a_new_envoy_is_waited_for_and_one_that_leaves_is_not() {
        let t0 = Instant::now();
        let mut p = Propagation::default();
        p.opened(1);
        let s1 = snap();
        p.published(&s1, Some(t0));
        p.opened(2);
        assert!(p.in_sync(1, &s1, t0 + Duration::from_millis(1)).is_empty());
        // Envoy 2 leaves before it caught up: envoy 1 alone had it.
        let done = p.closed(2, t0 + Duration::from_millis(3));
        assert_eq!(done, vec![Duration::from_millis(3)]);
    }

    #[test]
    fn nothing_is_measured_without_an_envoy_or_for_an_unknown_snapshot() {
        let t0 = Instant::now();
        let mut p = Propagation::default();
        let s1 = snap();
        // No Envoy when it was published: nobody to ACK it.
        p.published(&s1, Some(t0));
        p.opened(1);
        assert!(p.in_sync(1, &s1, t0).is_empty());
        let s2 = snap();
        p.published(&s2, Some(t0));
        // In sync with a snapshot never published here (e.g. before the hub's first): no.
        assert!(p.in_sync(1, &snap(), t0).is_empty());
        assert_eq!(p.in_sync(1, &s2, t0 + Duration::from_millis(2)).len(), 1);
        // All Envoys gone: pending updates are dropped, not measured later.
        let s3 = snap();
        p.published(&s3, Some(t0));
        assert!(p.closed(1, t0).is_empty());
        p.opened(4);
        assert!(p.in_sync(4, &s3, t0).is_empty());
    }

    #[test]
    fn type_labels_are_bounded_to_the_served_types() {
        assert_eq!(
            type_label("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
            "envoy.config.cluster.v3.Cluster"
        );
        assert_eq!(type_label("type.googleapis.com/evil.example/path"), "other");
        assert_eq!(type_label(""), "other");
    }

    #[test]
    fn the_view_follows_the_stream() {
        let r = DataPlaneReport::new(XdsMetrics::default());
        let envoys = r.envoys();
        let cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
        r.opened(7, "envoy-a");
        r.acked(7, cds, "v1");
        r.nacked(7, cds, "v2", "cluster x: bad");
        let v = envoys.borrow()[&7].clone();
        assert_eq!(v.node, "envoy-a");
        assert_eq!(v.acked["envoy.config.cluster.v3.Cluster"], "v1");
        assert!(v.last_ack_at.is_some_and(|t| t > 1_700_000_000));
        let n = v.last_nack.unwrap();
        assert_eq!(
            (n.version.as_str(), n.message.as_str()),
            ("v2", "cluster x: bad")
        );
        let label = XdsTypeLabels {
            r#type: "envoy.config.cluster.v3.Cluster".into(),
        };
        assert_eq!(r.metrics.acks.get_or_create(&label).get(), 1);
        assert_eq!(r.metrics.nacks.get_or_create(&label).get(), 1);
        r.closed(7);
        assert!(envoys.borrow().is_empty());
    }
}
