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
    /// Clusters whose agent has a stream open to another hub sharing the store, and those hubs.
    remote: BTreeMap<ClusterKey, BTreeSet<String>>,
    /// Clusters with no open stream whose full state has not been applied since, and since when.
    disconnected: BTreeMap<ClusterKey, Instant>,
}

impl Links {
    /// Clusters that hold intent but have no agent yet (the hub just started).
    pub fn starting(clusters: impl IntoIterator<Item = ClusterKey>, now: Instant) -> Self {
        Self {
            open: BTreeMap::new(),
            remote: BTreeMap::new(),
            disconnected: clusters.into_iter().map(|k| (k, now)).collect(),
        }
    }

    /// A stream of `key` opened; returns whether it is the first one.
    pub fn opened(&mut self, key: &ClusterKey) -> bool {
        let n = self.open.entry(key.clone()).or_default();
        *n += 1;
        *n == 1
    }

    /// Whether `key`'s agent has a stream open to this hub.
    pub fn is_open(&self, key: &ClusterKey) -> bool {
        self.open.contains_key(key)
    }

    /// Another hub announced (`up`) or retracted its link with `key`'s agent. A cluster linked
    /// anywhere is not disconnected; its clock starts when its last link anywhere ends.
    pub fn remote(&mut self, key: &ClusterKey, hub: &str, up: bool, now: Instant) {
        if up {
            self.remote
                .entry(key.clone())
                .or_default()
                .insert(hub.to_string());
            self.disconnected.remove(key);
            return;
        }
        let Some(hubs) = self.remote.get_mut(key) else {
            return;
        };
        hubs.remove(hub);
        if hubs.is_empty() {
            self.remote.remove(key);
            if !self.open.contains_key(key) {
                self.disconnected.insert(key.clone(), now);
            }
        }
    }

    /// Replaces every remote link with `links` (read from the store again).
    pub fn set_remote(&mut self, links: BTreeMap<ClusterKey, BTreeSet<String>>, now: Instant) {
        let before: Vec<(ClusterKey, String)> = self
            .remote
            .iter()
            .flat_map(|(k, hubs)| hubs.iter().map(move |h| (k.clone(), h.clone())))
            .collect();
        for (k, h) in before {
            if !links.get(&k).is_some_and(|hubs| hubs.contains(&h)) {
                self.remote(&k, &h, false, now);
            }
        }
        for (k, hubs) in links {
            for h in hubs {
                self.remote(&k, &h, true, now);
            }
        }
    }

    /// Clusters with at least one open agent stream to this hub now.
    pub fn connected(&self) -> BTreeSet<ClusterKey> {
        self.open.keys().cloned().collect()
    }

    /// Clusters whose agent has a stream open to this hub or to another sharing the store.
    pub fn connected_anywhere(&self) -> BTreeSet<ClusterKey> {
        self.open
            .keys()
            .chain(self.remote.keys())
            .cloned()
            .collect()
    }

    /// A stream of `key` closed; returns whether it was the last one to this hub. The clock
    /// starts when no hub has a stream of it any more.
    pub fn closed(&mut self, key: &ClusterKey, now: Instant) -> bool {
        let n = self.open.entry(key.clone()).or_default();
        *n = n.saturating_sub(1);
        if *n > 0 {
            return false;
        }
        self.open.remove(key);
        if !self.remote.contains_key(key) {
            self.disconnected.insert(key.clone(), now);
        }
        true
    }

    /// The full state of `key` was applied: its intent is current again.
    pub fn full_state(&mut self, key: &ClusterKey) {
        if self.open.contains_key(key) || self.remote.contains_key(key) {
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
    fn a_cluster_linked_to_another_hub_is_never_withdrawn_here() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut l = Links::starting([k("c1"), k("c2")], t0);
        // Loaded at start; its agent talks to hub B.
        l.remote(&k("c1"), "hub-b", true, t0);
        assert!(!l.withdrawn(hour, t0 + hour * 2).contains(&k("c1")));
        // Connected for operators, not for this hub's own count.
        assert_eq!(l.connected_anywhere(), [k("c1")].into());
        assert!(l.connected().is_empty());
        assert!(l.withdrawn(hour, t0 + hour * 2).contains(&k("c2")));
        // Here too for a while, then only at B: still linked.
        assert!(l.opened(&k("c1")));
        assert!(l.closed(&k("c1"), t0 + hour));
        assert!(!l.withdrawn(hour, t0 + hour * 3).contains(&k("c1")));
        // B lost it too: the clock starts then.
        l.remote(&k("c1"), "hub-b", false, t0 + hour * 3);
        assert!(!l.withdrawn(hour, t0 + hour * 3).contains(&k("c1")));
        assert!(l.withdrawn(hour, t0 + hour * 4).contains(&k("c1")));
        // Read again from the store: c2 linked at B, c1 nowhere.
        l.set_remote(
            [(k("c2"), ["hub-b".to_string()].into())].into(),
            t0 + hour * 4,
        );
        assert!(!l.withdrawn(hour, t0 + hour * 9).contains(&k("c2")));
        assert!(l.withdrawn(hour, t0 + hour * 9).contains(&k("c1")));
        l.set_remote(BTreeMap::new(), t0 + hour * 9);
        assert!(!l.withdrawn(hour, t0 + hour * 9).contains(&k("c2")));
        assert!(l.withdrawn(hour, t0 + hour * 10).contains(&k("c2")));
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
