//! The update rate of each cluster: a token bucket per cluster, refilled at the tenant's
//! `quotas.*.updatesPerSecond` up to `updateBurst`.
//!
//! Where it sits: `fleet::Fleet::apply` takes a token before admitting an Update; without one
//! the Update is refused whole (nothing of it applied) and the agent gets a Nack saying when to
//! retry. The bucket outlives the agent's stream, so reconnecting does not refill it. Pure: the
//! caller passes the time.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::ClusterKey;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of every cluster that sent an Update.
#[derive(Debug, Default)]
pub struct UpdateRate {
    buckets: BTreeMap<ClusterKey, Bucket>,
}

impl UpdateRate {
    /// Takes one token of `key`'s bucket at `now`, or says how long until one is available.
    pub fn take(
        &mut self,
        key: &ClusterKey,
        per_second: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let per_second = f64::from(per_second.max(1));
        let burst = f64::from(burst.max(1));
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }

    /// Forgets clusters that are no longer registered.
    pub fn retain(&mut self, keep: impl Fn(&ClusterKey) -> bool) {
        self.buckets.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_refill() {
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "c".into(),
        };
        let other = ClusterKey {
            tenant: "b".into(),
            cluster: "c".into(),
        };
        let t0 = Instant::now();
        let mut r = UpdateRate::default();
        for i in 0..3 {
            assert!(r.take(&key, 2, 3, t0).is_ok(), "burst token {i}");
        }
        let wait = r.take(&key, 2, 3, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another cluster has its own bucket.
        assert!(r.take(&other, 2, 3, t0).is_ok());
        // A refused attempt costs nothing: half a second later one token is there.
        assert!(r.take(&key, 2, 3, t0 + Duration::from_millis(500)).is_ok());
        assert!(r.take(&key, 2, 3, t0 + Duration::from_millis(500)).is_err());
        // A long pause refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(r.take(&key, 2, 3, later).is_ok());
        }
        assert!(r.take(&key, 2, 3, later).is_err());
    }
}
