//! The disconnected-cluster grace period: how long the data plane keeps serving a cluster whose
//! agent is gone.
//!
//! Where it sits: beside `fleet` (step 6). `sync` holds a [`Links`] entry open for every agent
//! stream; when a cluster's last stream closes the clock starts, and once
//! `disconnectedClusterGracePeriod` has passed the cluster is *withdrawn*: the compile loop
//! (`run`) leaves its intent out of the data plane. Its intent stays in the store; it comes
//! back when the agent reconnects and its full state is applied. Clusters loaded from the store
//! at start count as disconnected since the hub started. A period of zero never withdraws.
//! Pure bookkeeping over [`tokio::time::Instant`], so tests drive it with paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::ClusterKey;

/// Open agent streams and disconnection times, per cluster.
#[derive(Debug, Default)]
pub struct Links {
    open: BTreeMap<ClusterKey, usize>,
    /// Clusters with no open stream whose full state has not been applied since, and since when.
    disconnected: BTreeMap<ClusterKey, Instant>,
}

impl Links {
    /// Clusters that hold intent but have no agent yet (the hub just started).
    pub fn starting(clusters: impl IntoIterator<Item = ClusterKey>, now: Instant) -> Self {
        Self {
            open: BTreeMap::new(),
            disconnected: clusters.into_iter().map(|k| (k, now)).collect(),
        }
    }

    /// A stream of `key` opened.
    pub fn opened(&mut self, key: &ClusterKey) {
        *self.open.entry(key.clone()).or_default() += 1;
    }

    /// Clusters with at least one open agent stream now.
    pub fn connected(&self) -> BTreeSet<ClusterKey> {
        self.open.keys().cloned().collect()
    }

    /// A stream of `key` closed; the clock starts when it was the last one.
    pub fn closed(&mut self, key: &ClusterKey, now: Instant) {
        let n = self.open.entry(key.clone()).or_default();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.open.remove(key);
            self.disconnected.insert(key.clone(), now);
        }
    }

    /// The full state of `key` was applied: its intent is current again.
    pub fn full_state(&mut self, key: &ClusterKey) {
        if self.open.contains_key(key) {
            self.disconnected.remove(key);
        }
    }

    /// Clusters withdrawn from the data plane at `now` (none when `grace` is zero).
    pub fn withdrawn(&self, grace: Duration, now: Instant) -> BTreeSet<ClusterKey> {
        if grace.is_zero() {
            return BTreeSet::new();
        }
        self.disconnected
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= grace)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// When the next cluster will be withdrawn, if any is waiting.
    pub fn next_withdrawal(&self, grace: Duration, now: Instant) -> Option<Instant> {
        if grace.is_zero() {
            return None;
        }
        self.disconnected
            .values()
            .map(|since| *since + grace)
            .filter(|at| *at > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: &str) -> ClusterKey {
        ClusterKey {
            tenant: "a".into(),
            cluster: c.into(),
        }
    }

    #[test]
    fn grace_period_table() {
        let hour = Duration::from_secs(3600);
        let t0 = Instant::now();
        let mut l = Links::starting([k("stored")], t0);
        l.opened(&k("c1"));
        l.opened(&k("c1"));
        l.closed(&k("c1"), t0);
        assert!(l.withdrawn(hour, t0 + hour * 2).contains(&k("stored")));
        assert!(
            !l.withdrawn(hour, t0 + hour * 2).contains(&k("c1")),
            "one stream of c1 is still open"
        );
        l.closed(&k("c1"), t0 + hour);
        assert_eq!(l.next_withdrawal(hour, t0 + hour), Some(t0 + hour * 2));
        assert!(!l.withdrawn(hour, t0 + hour + hour / 2).contains(&k("c1")));
        assert!(l.withdrawn(hour, t0 + hour * 2).contains(&k("c1")));
        assert!(l.withdrawn(Duration::ZERO, t0 + hour * 100).is_empty());
        assert_eq!(l.next_withdrawal(Duration::ZERO, t0), None);
        // Reconnecting alone does not bring it back; its full state does.
        l.opened(&k("c1"));
        assert!(l.withdrawn(hour, t0 + hour * 3).contains(&k("c1")));
        l.full_state(&k("c1"));
        assert!(!l.withdrawn(hour, t0 + hour * 3).contains(&k("c1")));
        // A full state without an open stream (cannot happen through sync) changes nothing.
        l.full_state(&k("stored"));
        assert!(l.withdrawn(hour, t0 + hour * 3).contains(&k("stored")));
    }
}
