//! What the two ADS variants share: the interface of one stream's protocol state, which the
//! stream loop (`super::server`) drives, and Envoy's answers (ACK, NACK) with the tenant objects
//! a NACK points at.
//!
//! Two implementations: `super::server`'s State-of-the-World `Session` and `super::delta`'s
//! incremental `DeltaSession`. Both are pure (no I/O), fed the same [`Resources`] snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;

use super::resources::{Resource, Resources};
use super::trace::XdsResponse;
use crate::snapshot::SourceObject;

/// What the data plane currently rejects, for the status path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XdsHealth {
    /// The last NACK per type URL still standing (cleared when that Envoy ACKs a version of the
    /// type, or disconnects).
    pub nacks: BTreeMap<String, Nack>,
}

/// One rejected configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// The Envoy node id that rejected it.
    pub node: String,
    /// The version that was rejected.
    pub version: String,
    /// Envoy's error message.
    pub message: String,
    /// Tenant objects behind the rejected resources: those named in the message if any are,
    /// otherwise all in the rejected response.
    pub sources: BTreeSet<SourceObject>,
}

impl XdsHealth {
    /// Every tenant object some NACK currently points at.
    pub fn rejected_sources(&self) -> BTreeSet<SourceObject> {
        self.nacks
            .values()
            .flat_map(|n| n.sources.iter().cloned())
            .collect()
    }
}

/// A change of NACK state caused by one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthEvent {
    Nack(String, Nack),
    Ack(String),
}

/// The NACK by `node` of `version`, a response that held `sent`, with Envoy's `message`: the
/// sources of the resources the message names, or of all of them when it names none.
pub(crate) fn nack(node: &str, version: &str, message: &str, sent: &[Arc<Resource>]) -> Nack {
    let named: BTreeSet<SourceObject> = sent
        .iter()
        .filter(|r| mentions(message, &r.name))
        .flat_map(|r| r.sources())
        .collect();
    let sources = if named.is_empty() {
        sent.iter().flat_map(|r| r.sources()).collect()
    } else {
        named
    };
    Nack {
        node: node.to_string(),
        version: version.to_string(),
        message: message.to_string(),
        sources,
    }
}

/// Whether `message` names resource `name` as a whole word (`port/80` is not named by
/// `port/8080`).
pub(crate) fn mentions(message: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || "-._/*".contains(c);
    message.match_indices(name).any(|(i, _)| {
        let before = message[..i].chars().next_back();
        let after = message[i + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// What one type's last response was and how Envoy answered it, kept alike by both variants.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// The last response: its version, its nonce and the resources in it (what a NACK of it
    /// points at).
    pub sent_version: Option<String>,
    pub sent_nonce: String,
    pub sent: Vec<Arc<Resource>>,
    /// The last version Envoy ACKed.
    pub acked_version: Option<String>,
    /// The last response is not answered yet (no ACK or NACK with its nonce).
    pub awaiting: bool,
}

impl Answer {
    /// Records a response of `version` holding `sent`, numbered by the stream's next nonce
    /// (`last_nonce` is the stream's last one); returns the response's nonce.
    pub fn record(
        &mut self,
        last_nonce: &mut u64,
        version: &str,
        sent: Vec<Arc<Resource>>,
    ) -> String {
        *last_nonce += 1;
        let nonce = last_nonce.to_string();
        self.sent_version = Some(version.to_string());
        self.sent_nonce = nonce.clone();
        self.awaiting = true;
        self.sent = sent;
        nonce
    }
}

/// A variant's bookkeeping of one type, which holds the type's [`Answer`].
pub(crate) trait TypeAnswer: Default + Send + 'static {
    fn answer(&self) -> &Answer;
}

/// What both variants keep of one stream besides each type's own bookkeeping `T`.
pub(crate) struct Stream<T> {
    /// The Envoy node id (empty until its first request names it).
    pub node: String,
    /// The resources served: pushed, or held.
    pub resources: Arc<Resources>,
    /// Per type URL Envoy subscribed to.
    pub types: BTreeMap<String, T>,
    /// The last nonce sent (each response carries the next).
    pub nonce: u64,
    /// `resources` is newer than what was pushed, and waits for Envoy's answers.
    pub held: bool,
}

impl<T> Stream<T> {
    pub fn new(resources: Arc<Resources>) -> Self {
        Self {
            node: String::new(),
            resources,
            types: BTreeMap::new(),
            nonce: 0,
            held: false,
        }
    }

    /// Takes the node id from the first request that names it (`stream`: which kind of ADS
    /// stream, for the log).
    pub fn name_node(&mut self, node: Option<&Node>, stream: &str) {
        if self.node.is_empty()
            && let Some(n) = node
        {
            self.node = n.id.clone();
            tracing::info!(node = %self.node, "{stream} opened");
        }
    }
}

/// The protocol state of one ADS stream, without I/O.
///
/// At most one push is in flight: a snapshot that comes while Envoy has not answered every
/// response sent is held, and only the newest one is pushed once Envoy answered
/// ([`AdsSession::push_held`]), its types in `super::resources::PUSH_ORDER`.
pub(crate) trait AdsSession: Send + 'static {
    /// What Envoy sends on the stream.
    type Request: Send + 'static;
    /// What the stream sends Envoy.
    type Response: XdsResponse + Send + 'static;
    /// The variant's bookkeeping of one type.
    type Type: TypeAnswer;

    /// A session serving `resources` until the next snapshot.
    fn new(resources: Arc<Resources>) -> Self;
    /// What the variants share of the stream's state.
    fn stream(&self) -> &Stream<Self::Type>;
    fn stream_mut(&mut self) -> &mut Stream<Self::Type>;
    /// Envoy's request: the responses it calls for and the ACK or NACK it carries.
    fn on_request(&mut self, req: &Self::Request) -> (Vec<Self::Response>, Option<HealthEvent>);
    /// The responses bringing every subscribed type to the resources served, in
    /// `super::resources::PUSH_ORDER`.
    fn push(&mut self) -> Vec<Self::Response>;

    /// The Envoy node id (empty until its first request names it).
    fn node(&self) -> &str {
        &self.stream().node
    }

    /// The version last sent for `type_url`.
    fn sent_version(&self, type_url: &str) -> Option<&str> {
        self.stream()
            .types
            .get(type_url)?
            .answer()
            .sent_version
            .as_deref()
    }

    /// Per type subscribed: the version last sent and the one Envoy last ACKed.
    fn answers(&self) -> impl Iterator<Item = (Option<&str>, Option<&str>)> {
        self.stream().types.values().map(|t| {
            let a = t.answer();
            (a.sent_version.as_deref(), a.acked_version.as_deref())
        })
    }

    /// A response waits for Envoy's answer (no ACK or NACK with its nonce yet).
    fn awaiting(&self) -> bool {
        self.stream().types.values().any(|t| t.answer().awaiting)
    }

    /// A snapshot is held.
    fn is_held(&self) -> bool {
        self.stream().held
    }

    /// The push of a new snapshot; nothing while a response waits for Envoy's answer (the
    /// snapshot is then held).
    fn on_snapshot(&mut self, resources: Arc<Resources>) -> Vec<Self::Response> {
        self.stream_mut().resources = resources;
        if self.awaiting() {
            self.stream_mut().held = true;
            return Vec::new();
        }
        self.push()
    }

    /// The push of the held snapshot once Envoy answered every response, or at once with
    /// `force`; nothing when no snapshot is held.
    fn push_held(&mut self, force: bool) -> Vec<Self::Response> {
        if !self.is_held() || (!force && self.awaiting()) {
            return Vec::new();
        }
        self.stream_mut().held = false;
        self.push()
    }

    /// Whether Envoy subscribed to something and ACKed the last response of every type.
    fn in_sync(&self) -> bool {
        let mut any = false;
        for (sent, acked) in self.answers() {
            if sent.is_none() || acked != sent {
                return false;
            }
            any = true;
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_table() {
        let cases = [
            ("listener(s) port/8080: cannot bind", "port/8080", true),
            ("listener(s) port/8080: cannot bind", "port/80", false),
            ("cluster 'a/b/r0/b1' bad", "a/b/r0/b1", true),
            ("cluster 'a/b/r0/b10' bad", "a/b/r0/b1", false),
            ("x a/b/r0/b1", "a/b/r0/b1", true),
            ("", "a", false),
        ];
        for (msg, name, want) in cases {
            assert_eq!(mentions(msg, name), want, "{msg:?} {name:?}");
        }
    }
}
