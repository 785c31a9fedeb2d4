//! Watch lag: how long a change seen by the Kubernetes watch takes to be held by the hub (the
//! Update that carries it Acked).
//!
//! Where it sits: across the data path. `watch` marks an [`EventClock`] when a reflector reports
//! an event; the mark follows the change through the published state and the intent, and is
//! dropped where it turns out to change nothing; `sync` takes the mark when it sends the Update
//! built from that change and keeps it in [`InFlight`] until the
//! hub Acks that revision (or a later one), when `metrics` observes the lag.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the watch saw the first event not yet carried by an Update (shared; cheap to clone).
///
/// A mark moves through the agent's three steps with the change it belongs to, and is dropped
/// where that change turns out to change nothing, never by a later event that changed nothing:
/// the watch marks it ([`EventClock::mark`]) and says, while it publishes the cluster state,
/// whether the state changed ([`EventClock::published`]); the translation takes the marks of
/// the state it reads ([`EventClock::take_state`], under the state's read guard) and passes them
/// on, while it publishes, if the intent changed ([`EventClock::to_intent`]); sync takes the
/// marks of the intent it reads the same way ([`EventClock::take`]).
#[derive(Clone, Debug, Default)]
pub struct EventClock(Arc<Mutex<Stages>>);

/// The earliest mark at each step.
#[derive(Debug, Default)]
struct Stages {
    /// Seen by the watch, not yet published.
    seen: Option<Instant>,
    /// In the published cluster state, not yet translated.
    state: Option<Instant>,
    /// In the intent, not yet sent.
    intent: Option<Instant>,
}

/// The earlier of two marks.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl EventClock {
    fn stages(&self) -> std::sync::MutexGuard<'_, Stages> {
        // Plain marks, valid after any panic elsewhere.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch event arrived at `at` (the first one not yet published is kept).
    pub fn mark(&self, at: Instant) {
        self.stages().seen.get_or_insert(at);
    }

    /// The watch published a cluster state that `changed` (or not): the events seen go on
    /// with it, or changed nothing. Called while publishing, before the translation can read it.
    pub fn published(&self, changed: bool) {
        let mut s = self.stages();
        let seen = s.seen.take();
        if changed {
            s.state = earliest(s.state, seen);
        }
    }

    /// The marks of the cluster state being read now (call under its read guard).
    pub fn take_state(&self) -> Option<Instant> {
        self.stages().state.take()
    }

    /// The intent translated from a state with marks `carried` changed: they go on with it.
    /// Called while publishing the intent, before sync can read it.
    pub fn to_intent(&self, carried: Option<Instant>) {
        let mut s = self.stages();
        s.intent = earliest(s.intent, carried);
    }

    /// The marks of the intent being read now (call under its read guard).
    pub fn take(&self) -> Option<Instant> {
        self.stages().intent.take()
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
        c.published(true);
        let carried = c.take_state();
        c.to_intent(carried);
        assert_eq!(c.take(), Some(t0));
        assert_eq!(c.take(), None);
    }

    #[test]
    fn an_event_that_changes_nothing_keeps_an_earlier_one_on_its_way() {
        let c = EventClock::default();
        let t0 = Instant::now();
        // The route's event changes the state and the intent; sync has not read it yet.
        c.mark(t0);
        c.published(true);
        let carried = c.take_state();
        c.to_intent(carried);
        // The agent's own status write: an event that changes nothing.
        c.mark(t0 + Duration::from_millis(3));
        c.published(false);
        // A state change whose intent is unchanged drops only its own mark.
        c.mark(t0 + Duration::from_millis(4));
        c.published(true);
        let _dropped = c.take_state();
        assert_eq!(c.take(), Some(t0));
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
