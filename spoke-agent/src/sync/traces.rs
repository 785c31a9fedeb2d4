//! The agent's spans of its Updates (docs/operations.md, "Traces"): `agent.sync.update` from
//! sending an Update to the hub's Ack or Nack, its context sent in `Update.traceparent` so that
//! the hub continues the trace. Nothing is built when traces are off.

use std::collections::BTreeMap;

use fleetgate_observe::trace::{self, Attribute, Kind, Span, Start};
use fleetgate_proto::spoke::v1::Update;

/// The spans of the Updates the hub has not answered yet, by revision (one stream's).
#[derive(Default)]
pub(crate) struct InFlight(BTreeMap<u64, Span>);

impl InFlight {
    /// Starts the span of `update` (about to be sent for `cluster`) and puts its context in
    /// the Update.
    pub(crate) fn sending(&mut self, cluster: &str, update: &mut Update) {
        if !trace::enabled() {
            return;
        }
        let span = trace::span("agent.sync.update", Kind::Client, Start::default(), || {
            vec![
                Attribute::new("fleetgate.cluster", trace::bounded(cluster)),
                Attribute::new("fleetgate.revision", update.revision as i64),
                Attribute::new("fleetgate.full_state", update.full_state),
                Attribute::new("fleetgate.upserts", update.upserts.len() as i64),
                Attribute::new("fleetgate.deletes", update.deletes.len() as i64),
            ]
        });
        update.traceparent = span.traceparent();
        self.0.insert(update.revision, span);
    }

    /// The hub answered `revision`: Ack (`refused` None) or Nack. Ends its span (and those of
    /// earlier revisions, which the hub answered before).
    pub(crate) fn answered(&mut self, revision: u64, refused: Option<&str>) {
        if self.0.is_empty() {
            return;
        }
        let later = self.0.split_off(&(revision + 1));
        let mut done = std::mem::replace(&mut self.0, later);
        if let (Some(span), Some(why)) = (done.get_mut(&revision), refused) {
            span.fail(why);
        }
    }
}
