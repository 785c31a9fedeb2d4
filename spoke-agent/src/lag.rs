//! Watch lag: how long a change seen by the Kubernetes watch takes to be held by the hub (the
//! Update that carries it Acked).
//!
//! Where it sits: across the data path. `watch` marks an [`EventClock`] when a reflector reports
//! an event, and clears it when the event changed nothing the agent publishes; `sync` takes the
//! mark when it sends the Update built from that change and keeps it in [`InFlight`] until the
//! hub Acks that revision (or a later one), when `metrics` observes the lag.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the watch saw the first event not yet carried by an Update (shared; cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct EventClock(Arc<Mutex<Option<Instant>>>);

impl EventClock {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An Option<Instant> is valid after any panic elsewhere.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch event arrived at `at` (the first one since the last take is kept).
    pub fn mark(&self, at: Instant) {
        self.slot().get_or_insert(at);
    }

    /// The events seen changed nothing that is sent: nothing to measure.
    pub fn clear(&self) {
        self.slot().take();
    }

    /// The mark, for the Update being sent now.
    pub fn take(&self) -> Option<Instant> {
        self.slot().take()
    }
}

/// Updates sent with a watch event behind them, by revision, until the hub Acks them.
#[derive(Debug, Default)]
pub struct InFlight {
    sent: BTreeMap<u64, Instant>,
}

impl InFlight {
    /// Revision `revision` carries the changes seen since `event` (none: nothing to measure).
    pub fn sent(&mut self, revision: u64, event: Option<Instant>) {
        if let Some(at) = event {
            let e = self.sent.entry(revision).or_insert(at);
            *e = (*e).min(at);
        }
    }

    /// The hub Acked `revision` (and so every earlier one): the lags to observe.
    pub fn acked(&mut self, revision: u64, now: Instant) -> Vec<Duration> {
        let later = self.sent.split_off(&(revision + 1));
        let done = std::mem::replace(&mut self.sent, later);
        done.into_values()
            .map(|at| now.saturating_duration_since(at))
            .collect()
    }

    /// A new stream starts over at revision 1 with the full state, which carries everything
    /// still in flight: the earliest mark.
    pub fn restart(&mut self) -> Option<Instant> {
        let first = self.sent.values().min().copied();
        self.sent.clear();
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_since_the_last_update_is_kept_and_taken_once() {
        let c = EventClock::default();
        let t0 = Instant::now();
        c.mark(t0);
        c.mark(t0 + Duration::from_millis(5));
        assert_eq!(c.take(), Some(t0));
        assert_eq!(c.take(), None);
        c.mark(t0);
        c.clear();
        assert_eq!(c.take(), None);
    }

    #[test]
    fn an_ack_covers_its_revision_and_the_earlier_ones() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        f.sent(2, Some(t0));
        f.sent(3, None);
        f.sent(4, Some(t0 + Duration::from_millis(10)));
        let lags = f.acked(3, t0 + Duration::from_millis(20));
        assert_eq!(lags, vec![Duration::from_millis(20)]);
        assert_eq!(
            f.acked(9, t0 + Duration::from_millis(30)),
            vec![Duration::from_millis(20)]
        );
        assert!(f.acked(10, t0).is_empty());
    }

    #[test]
    fn a_new_stream_carries_what_was_in_flight() {
        let t0 = Instant::now();
        let mut f = InFlight::default();
        f.sent(5, Some(t0 + Duration::from_millis(1)));
        f.sent(6, Some(t0));
        assert_eq!(f.restart(), Some(t0));
        assert_eq!(f.restart(), None);
    }
}
