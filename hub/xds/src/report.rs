//! What the ADS streams report besides the NACKs still standing ([`super::XdsHealth`]): each
//! stream opening and closing, every ACK and NACK, how long a push took, and when a stream has
//! ACKed every type it subscribed to for a snapshot.
//!
//! Where it sits: beside step 8 (publish), for the operator's view. The server calls an
//! [`AdsReport`] the runtime crate hands it; this crate keeps no metrics of its own. Calls are
//! made from the streams' tasks, so an implementation must be quick and must not block.

use std::sync::Arc;

use crate::snapshot::Snapshot;

/// One ADS stream's events, as they happen. Every method has an empty default.
pub trait AdsReport: Send + Sync + 'static {
    /// Stream `stream` (a number unique in this process) named its Envoy node `node`.
    fn opened(&self, _stream: u64, _node: &str) {}
    /// The stream's Envoy ACKed `version` of `type_url`.
    fn acked(&self, _stream: u64, _type_url: &str, _version: &str) {}
    /// The stream's Envoy rejected `version` of `type_url` with `message`.
    fn nacked(&self, _stream: u64, _type_url: &str, _version: &str, _message: &str) {}
    /// Building and sending the responses for a new snapshot took `seconds` on one stream.
    fn pushed(&self, _seconds: f64) {}
    /// The stream's Envoy has ACKed, for every type it subscribed to, what `snapshot` holds.
    fn in_sync(&self, _stream: u64, _snapshot: &Arc<Snapshot>) {}
    /// The stream ended.
    fn closed(&self, _stream: u64) {}
}

/// Reports nothing (the default of [`super::ads_service`]).
pub struct NoReport;

impl AdsReport for NoReport {}
