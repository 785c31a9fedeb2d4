//! Spans of the xDS pushes that carry a traced change and of Envoy's answers to them
//! (docs/operations.md, "Traces"): `hub.xds.push` under the compile that produced the
//! snapshot, and `envoy.ack` / `envoy.nack` under that push when the Envoy answers the
//! version, from the push to the answer.
//!
//! Kept apart from the ADS protocol in `server`: the compile loop records which compile span
//! produced each published snapshot ([`SnapshotTraces`]); each ADS stream keeps a
//! [`StreamTraces`] that hears what it pushed and what Envoy answered. All of it does nothing
//! when traces are off.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};
use fleetgate_observe::trace::{self, Attribute, Kind, Start, TraceContext};

use crate::snapshot::Snapshot;

/// The compile span of the latest published snapshot (one writer: the hub's compile loop).
#[derive(Debug, Default)]
pub struct SnapshotTraces {
    latest: Mutex<Option<(Weak<Snapshot>, TraceContext)>>,
}

impl SnapshotTraces {
    /// Records that `snapshot` came from the compile span `compile` (call before publishing it).
    pub fn publish(&self, snapshot: &Arc<Snapshot>, compile: TraceContext) {
        if let Ok(mut l) = self.latest.lock() {
            *l = Some((Arc::downgrade(snapshot), compile));
        }
    }

    /// The compile span of `snapshot`, if it is the latest one recorded.
    pub fn of(&self, snapshot: &Arc<Snapshot>) -> Option<TraceContext> {
        let l = self.latest.lock().ok()?;
        let (weak, sc) = l.as_ref()?;
        std::ptr::eq(weak.as_ptr(), Arc::as_ptr(snapshot)).then(|| sc.clone())
    }
}

/// What one ADS stream pushed under a trace, per type URL, until Envoy answers it.
#[derive(Debug, Default)]
pub(crate) struct StreamTraces {
    /// The push span of the snapshot the stream serves, if its compile was traced.
    current: Option<TraceContext>,
    /// Per type URL: the version last sent, the push it belongs to and when it was sent.
    sent: BTreeMap<String, (String, TraceContext, SystemTime)>,
}

impl StreamTraces {
    /// The stream pushed `out` for `snapshot`, whose compile span `traces` may know.
    pub(crate) fn pushed(
        &mut self,
        traces: &SnapshotTraces,
        snapshot: &Arc<Snapshot>,
        node: &str,
        out: &[impl XdsResponse],
    ) {
        if !trace::enabled() {
            return;
        }
        self.current = None;
        if let Some(compile) = traces.of(snapshot)
            && !out.is_empty()
        {
            let push = trace::span(
                "hub.xds.push",
                Kind::Producer,
                Start {
                    parent: Some(&compile),
                    ..Default::default()
                },
                || {
                    vec![
                        Attribute::new("envoy.node", trace::bounded(node)),
                        Attribute::new("xds.responses", out.len() as i64),
                        Attribute::new(
                            "xds.type_urls",
                            out.iter()
                                .map(|r| short_type(r.type_url()))
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ]
                },
            );
            self.current = push.context();
        }
        self.sent(out);
    }

    /// The stream sent `out` (pushed, or answering a request): each type's next ACK or NACK
    /// answers these versions.
    pub(crate) fn sent(&mut self, out: &[impl XdsResponse]) {
        if !trace::enabled() {
            return;
        }
        let now = SystemTime::now();
        for r in out {
            match &self.current {
                Some(push) => {
                    self.sent.insert(
                        r.type_url().to_string(),
                        (r.version().to_string(), push.clone(), now),
                    );
                }
                None => {
                    self.sent.remove(r.type_url());
                }
            }
        }
    }

    /// Envoy `node` answered the last response of `type_url`: ACK, or NACK with `error`.
    pub(crate) fn answered(&mut self, type_url: &str, node: &str, error: Option<&str>) {
        if !trace::enabled() {
            return;
        }
        let Some((version, push, at)) = self.sent.remove(type_url) else {
            return;
        };
        let name = if error.is_some() {
            "envoy.nack"
        } else {
            "envoy.ack"
        };
        let mut span = trace::span(
            name,
            Kind::Consumer,
            Start {
                parent: Some(&push),
                links: Vec::new(),
                at: Some(at),
            },
            || {
                vec![
                    Attribute::new("envoy.node", trace::bounded(node)),
                    Attribute::new("xds.type_url", trace::bounded(type_url)),
                    Attribute::new("xds.version", trace::bounded(&version)),
                ]
            },
        );
        if let Some(e) = error {
            span.fail(e);
        }
    }
}

/// A response of either ADS variant, as traces see it.
pub(crate) trait XdsResponse {
    fn type_url(&self) -> &str;
    /// The version of the type's resources it brings Envoy to.
    fn version(&self) -> &str;
}

impl XdsResponse for DiscoveryResponse {
    fn type_url(&self) -> &str {
        &self.type_url
    }
    fn version(&self) -> &str {
        &self.version_info
    }
}

impl XdsResponse for DeltaDiscoveryResponse {
    fn type_url(&self) -> &str {
        &self.type_url
    }
    fn version(&self) -> &str {
        &self.system_version_info
    }
}

/// `Cluster` for `type.googleapis.com/envoy.config.cluster.v3.Cluster`.
fn short_type(type_url: &str) -> &str {
    type_url.rsplit('.').next().unwrap_or(type_url)
}
