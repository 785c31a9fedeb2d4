//! Incremental ADS (`DeltaAggregatedResources`, Envoy's `api_type: DELTA_GRPC`): per stream and
//! type URL, what Envoy subscribed to and what it has (name -> digest), so that a response
//! carries only the resources that changed and names in `removed_resources` those that went.
//!
//! Step 8 (publish), beside the State-of-the-World session of `super::server`; the same stream
//! loop drives both (`super::session::AdsSession`), fed the same [`Resources`] snapshots. A
//! resource's version is its digest in hex, so an Envoy that reconnects with
//! `initial_resource_versions` is sent only what differs from what it kept.
//!
//! Subscriptions: Listener, Cluster and the scopes of scoped RDS are wildcards (the first
//! request of the type naming nothing, or naming `*`); the other types (routes, endpoints,
//! secrets) are subscribed by name. A name Envoy subscribes to that the snapshot does not hold is
//! answered in `removed_resources` (xDS: how the incremental variants say a resource does not
//! exist). Not supported: on-demand virtual hosts (VHDS), resource locators (xdstp://),
//! aliases and TTLs; their fields are ignored.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as DeltaResource,
};

use super::resources::{self, PUSH_ORDER, Resource, Resources, is_wildcard_type};
use super::session::{self, AdsSession, HealthEvent};

/// The name that subscribes to every resource of a type (xDS "explicit wildcard").
const WILDCARD: &str = "*";

/// The version of one resource as Envoy is told it (and tells it back on reconnecting).
fn version_of(digest: u64) -> String {
    format!("{digest:016x}")
}

/// What one stream subscribed to and was sent for one type.
#[derive(Debug, Default)]
pub(crate) struct TypeState {
    /// Every resource of the type is subscribed.
    wildcard: bool,
    /// Resources subscribed by name.
    names: BTreeSet<String>,
    /// What Envoy has: name -> digest (`None`: a version Envoy kept from before that this hub
    /// did not send, so any resource of that name differs from it).
    have: HashMap<String, Option<u64>>,
    /// Names subscribed that Envoy was told do not exist (not to tell it again).
    absent: BTreeSet<String>,
    /// The digest of every resource of the type when Envoy's state was last brought to it,
    /// the subscription unchanged since: a snapshot with the same needs no response of the
    /// type, found without comparing each resource.
    answered: Option<u64>,
    /// The last response (its version: of all subscribed resources) and Envoy's answer.
    answer: session::Answer,
}

impl session::TypeAnswer for TypeState {
    fn answer(&self) -> &session::Answer {
        &self.answer
    }
}

impl TypeState {
    fn subscribed(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// Applies a request's subscription changes; returns the names newly subscribed (all of
    /// the type, `None`, when a wildcard subscription began).
    fn subscribe(&mut self, req: &DeltaDiscoveryRequest) -> Option<BTreeSet<String>> {
        let was_wildcard = self.wildcard;
        let mut new = BTreeSet::new();
        for name in &req.resource_names_subscribe {
            if name == WILDCARD {
                self.wildcard = true;
            } else if self.names.insert(name.clone()) && !was_wildcard {
                new.insert(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == WILDCARD {
                self.wildcard = false;
            } else {
                self.names.remove(name);
                self.absent.remove(name);
            }
        }
        if !self.wildcard {
            // Envoy drops what it no longer subscribes to.
            let names = &self.names;
            self.have.retain(|name, _| names.contains(name));
            self.absent.retain(|name| names.contains(name));
        }
        if self.wildcard != was_wildcard || !new.is_empty() {
            self.answered = None;
        }
        if self.wildcard && !was_wildcard {
            None
        } else {
            Some(new)
        }
    }
}

/// The protocol state of one incremental ADS stream; no I/O, so it is unit-tested directly.
/// Pushes are held as in the State of the World (`super::session::AdsSession`): one in flight,
/// the newest snapshot pushed once Envoy answered, in [`PUSH_ORDER`].
pub(crate) struct DeltaSession {
    stream: session::Stream<TypeState>,
}

impl DeltaSession {
    /// The response bringing Envoy's resources of `type_url` to the snapshot's: those whose
    /// digest differs from what Envoy has, and in `removed_resources` those it has (or asked
    /// for) that the snapshot does not hold. With `only`, just those names (newly subscribed
    /// ones, answered without pushing the rest of a held snapshot ahead of its order). `None`
    /// when there is nothing to send, unless `always` (Envoy waits for a first response).
    fn respond(
        &mut self,
        type_url: &str,
        only: Option<&BTreeSet<String>>,
        always: bool,
    ) -> Option<DeltaDiscoveryResponse> {
        let st = self.stream.types.get_mut(type_url)?;
        let all = self.stream.resources.of(type_url);
        let digest = resources::digest_of(all.iter().map(|r| &**r));
        if only.is_none() && !always && st.answered == Some(digest) {
            return None;
        }
        let subscribed: Vec<&Arc<Resource>> =
            all.iter().filter(|r| st.subscribed(&r.name)).collect();
        let mut kept = 0;
        let mut changed = Vec::new();
        for r in &subscribed {
            if only.is_some_and(|o| !o.contains(&r.name)) {
                continue;
            }
            match st.have.get(&r.name) {
                Some(&Some(d)) if d == r.digest => kept += 1,
                had => {
                    kept += usize::from(had.is_some());
                    changed.push(Arc::clone(r));
                }
            }
        }
        // Gone: what Envoy has that the snapshot lost, and names subscribed that the snapshot
        // does not hold, told once. Looked for only when the counts say some are.
        let holds = |name: &str| all.binary_search_by(|r| r.name.as_str().cmp(name)).is_ok();
        let unknown = |name: &String| {
            !holds(name)
                && (st.have.contains_key(name)
                    || (st.names.contains(name) && !st.absent.contains(name)))
        };
        let mut removed: Vec<String> = match only {
            Some(o) => o.iter().filter(|n| unknown(n)).cloned().collect(),
            None => {
                let mut gone = Vec::new();
                if st.have.len() > kept {
                    gone.extend(st.have.keys().filter(|n| !holds(n)).cloned());
                }
                if st.wildcard || subscribed.len() < st.names.len() {
                    gone.extend(
                        st.names
                            .iter()
                            .filter(|n| !st.have.contains_key(*n) && unknown(n))
                            .cloned(),
                    );
                }
                gone
            }
        };
        removed.sort();
        st.answered = if only.is_none() { Some(digest) } else { None };
        if changed.is_empty() && removed.is_empty() && !always {
            return None;
        }
        for name in &removed {
            st.have.remove(name);
            if st.names.contains(name) {
                st.absent.insert(name.clone());
            }
        }
        for r in &changed {
            st.have.insert(r.name.clone(), Some(r.digest));
            st.absent.remove(&r.name);
        }
        let version = resources::version_of(subscribed.iter().map(|r| &***r));
        let resources = changed
            .iter()
            .map(|r| DeltaResource {
                name: r.name.clone(),
                version: version_of(r.digest),
                resource: Some(r.any.clone()),
                ..Default::default()
            })
            .collect();
        let nonce = st.answer.record(&mut self.stream.nonce, &version, changed);
        Some(DeltaDiscoveryResponse {
            system_version_info: version,
            resources,
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        })
    }
}

impl AdsSession for DeltaSession {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    type Type = TypeState;

    fn new(resources: Arc<Resources>) -> Self {
        Self {
            stream: session::Stream::new(resources),
        }
    }

    fn stream(&self) -> &session::Stream<TypeState> {
        &self.stream
    }

    fn stream_mut(&mut self) -> &mut session::Stream<TypeState> {
        &mut self.stream
    }

    fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
    ) -> (Vec<DeltaDiscoveryResponse>, Option<HealthEvent>) {
        self.stream.name_node(req.node.as_ref(), "delta ADS stream");
        if req.type_url.is_empty() {
            return (Vec::new(), None);
        }
        let first = !self.stream.types.contains_key(&req.type_url);
        let st = self.stream.types.entry(req.type_url.clone()).or_default();
        if first {
            // The first request naming nothing subscribes to everything (legacy wildcard), for
            // the types Envoy subscribes to as a whole.
            st.wildcard =
                req.resource_names_subscribe.is_empty() && is_wildcard_type(&req.type_url);
            // Reconnected: what Envoy kept. A version this hub did not make differs from all.
            st.have = req
                .initial_resource_versions
                .iter()
                .map(|(name, v)| (name.clone(), u64::from_str_radix(v, 16).ok()))
                .collect();
        }
        let new = st.subscribe(req);

        let mut event = None;
        if !req.response_nonce.is_empty() && req.response_nonce == st.answer.sent_nonce {
            st.answer.awaiting = false;
            let version = st.answer.sent_version.clone().unwrap_or_default();
            event = Some(match &req.error_detail {
                // What was sent is not sent again: it would be rejected again. The next
                // change of those resources is.
                Some(err) => HealthEvent::Nack(
                    req.type_url.clone(),
                    session::nack(&self.stream.node, &version, &err.message, &st.answer.sent),
                ),
                None => {
                    st.answer.acked_version = Some(version);
                    HealthEvent::Ack(req.type_url.clone())
                }
            });
        }
        // An answer with a stale nonce (Envoy had not seen the latest response yet) is ignored;
        // its subscription changes are not.

        let out = match &new {
            _ if first => self.respond(&req.type_url, None, true),
            // Wildcard from now on: everything Envoy does not have.
            None => self.respond(&req.type_url, None, false),
            Some(names) if names.is_empty() => None,
            // A held snapshot's other changes wait for its push, which keeps the types' order.
            Some(names) if self.stream.held => self.respond(&req.type_url, Some(names), false),
            Some(_) => self.respond(&req.type_url, None, false),
        };
        (out.into_iter().collect(), event)
    }

    fn push(&mut self) -> Vec<DeltaDiscoveryResponse> {
        // `respond` skips types this stream never subscribed to.
        PUSH_ORDER
            .iter()
            .filter_map(|t| self.respond(t, None, false))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{resources_routing_to as snap, route_source};
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status as RpcStatus;
    use resources::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

    fn req(
        type_url: &str,
        subscribe: &[&str],
        unsubscribe: &[&str],
        nonce: &str,
    ) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            node: Some(Node {
                id: "envoy-1".into(),
                ..Default::default()
            }),
            type_url: type_url.into(),
            resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
            resource_names_unsubscribe: unsubscribe.iter().map(|s| s.to_string()).collect(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    /// The ACK of response `r`.
    fn ack(r: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
        req(&r.type_url, &[], &[], &r.nonce)
    }

    fn nack(r: &DeltaDiscoveryResponse, message: &str) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.into(),
                details: vec![],
            }),
            ..ack(r)
        }
    }

    fn names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
        r.resources.iter().map(|r| r.name.as_str()).collect()
    }

    fn types(out: &[DeltaDiscoveryResponse]) -> Vec<&str> {
        out.iter().map(|r| r.type_url.as_str()).collect()
    }

    /// The one response of `out`.
    fn one(out: Vec<DeltaDiscoveryResponse>) -> DeltaDiscoveryResponse {
        assert_eq!(out.len(), 1, "{out:?}");
        out.into_iter().next().unwrap()
    }

    /// A session with CDS (legacy wildcard) and EDS of `eds` answered and ACKed.
    fn subscribed(resources: Arc<Resources>, eds: &[&str]) -> DeltaSession {
        let mut s = DeltaSession::new(resources);
        let cds = one(s.on_request(&req(CLUSTER_TYPE, &[], &[], "")).0);
        s.on_request(&ack(&cds));
        let eds = one(s.on_request(&req(ENDPOINT_TYPE, eds, &[], "")).0);
        s.on_request(&ack(&eds));
        assert!(s.in_sync());
        s
    }

    #[test]
    fn a_wildcard_subscription_is_sent_everything_then_only_changes_and_removals() {
        let mut s = DeltaSession::new(snap(&["c1", "c2"], 1));
        // Legacy wildcard (nothing named), and the explicit `*`: everything, versioned.
        let (out, ev) = s.on_request(&req(CLUSTER_TYPE, &[], &[], ""));
        assert_eq!(ev, None);
        let cds = one(out);
        assert_eq!(s.node(), "envoy-1");
        assert_eq!(names(&cds), vec!["c1", "c2"]);
        assert!(cds.removed_resources.is_empty());
        let all = snap(&["c1", "c2"], 1);
        assert_eq!(
            cds.resources[0].version,
            version_of(all.of(CLUSTER_TYPE)[0].digest)
        );
        let lds = one(s.on_request(&req(LISTENER_TYPE, &["*"], &[], "")).0);
        assert_eq!(names(&lds), vec!["port/80"]);
        let (out, ev) = s.on_request(&ack(&cds));
        assert!(out.is_empty());
        assert_eq!(ev, Some(HealthEvent::Ack(CLUSTER_TYPE.into())));
        assert!(!s.in_sync(), "LDS not ACKed");
        s.on_request(&ack(&lds));
        assert!(s.in_sync());
        assert_eq!(
            s.sent_version(CLUSTER_TYPE),
            Some(cds.system_version_info.as_str())
        );

        // The same snapshot: nothing.
        assert!(s.on_snapshot(snap(&["c1", "c2"], 1)).is_empty());
        // A new cluster: that cluster alone (the listener did not change).
        let cds = one(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)));
        assert_eq!(names(&cds), vec!["c3"]);
        assert!(cds.removed_resources.is_empty());
        assert!(!s.in_sync());
        s.on_request(&ack(&cds));
        assert!(s.in_sync());
        // A cluster gone: named in removed_resources, nothing else sent.
        let cds = one(s.on_snapshot(snap(&["c1", "c3"], 1)));
        assert!(cds.resources.is_empty());
        assert_eq!(cds.removed_resources, vec!["c2"]);
        s.on_request(&ack(&cds));
        // Unsubscribing `*` ends the wildcard: later clusters are not sent.
        let (out, _) = s.on_request(&req(CLUSTER_TYPE, &[], &["*"], ""));
        assert!(out.is_empty());
        assert!(s.on_snapshot(snap(&["c1", "c3", "c4"], 1)).is_empty());
    }

    #[test]
    fn named_subscriptions_get_what_they_name_and_unknown_names_are_removed_once() {
        let mut s = DeltaSession::new(snap(&["c1", "c2", "c3"], 1));
        let eds = one(s
            .on_request(&req(ENDPOINT_TYPE, &["c1", "nope"], &[], ""))
            .0);
        assert_eq!(names(&eds), vec!["c1"]);
        assert_eq!(eds.removed_resources, vec!["nope"], "does not exist");
        s.on_request(&ack(&eds));
        // One more name: that one alone; an unsubscribed one is no longer sent.
        let eds = one(s.on_request(&req(ENDPOINT_TYPE, &["c2"], &["c1"], "")).0);
        assert_eq!(names(&eds), vec!["c2"]);
        assert!(eds.removed_resources.is_empty(), "`nope` was told already");
        s.on_request(&ack(&eds));
        // Every endpoint changes: only the subscribed ones are sent.
        let eds = one(s.on_snapshot(snap(&["c1", "c2", "c3"], 2)));
        assert_eq!(names(&eds), vec!["c2"]);
        s.on_request(&ack(&eds));
        // Routes by name.
        let rds = one(s.on_request(&req(ROUTE_TYPE, &["port/80"], &[], "")).0);
        assert_eq!(names(&rds), vec!["port/80"]);
        s.on_request(&ack(&rds));
        assert!(s.in_sync());
        // The subscribed cluster goes: its endpoints are removed; the route table changes.
        let out = s.on_snapshot(snap(&["c1", "c3"], 2));
        assert_eq!(types(&out), vec![ENDPOINT_TYPE, ROUTE_TYPE]);
        assert_eq!(out[0].removed_resources, vec!["c2"]);
        assert!(out[0].resources.is_empty());
        assert_eq!(names(&out[1]), vec!["port/80"]);
        // Once it is back, it is sent again.
        for r in &out {
            s.on_request(&ack(r));
        }
        let out = s.on_snapshot(snap(&["c1", "c2", "c3"], 2));
        assert_eq!(names(&out[0]), vec!["c2"]);
    }

    #[test]
    fn a_reconnected_envoy_is_sent_only_what_differs_from_what_it_kept() {
        let old = snap(&["c1", "c2"], 1);
        let now = snap(&["c1", "c3"], 1);
        let kept = |type_url: &str| -> HashMap<String, String> {
            old.of(type_url)
                .iter()
                .map(|r| (r.name.clone(), version_of(r.digest)))
                .collect()
        };
        let mut s = DeltaSession::new(now);
        let cds = one(s
            .on_request(&DeltaDiscoveryRequest {
                initial_resource_versions: kept(CLUSTER_TYPE),
                ..req(CLUSTER_TYPE, &[], &[], "")
            })
            .0);
        assert_eq!(names(&cds), vec!["c3"]);
        assert_eq!(cds.removed_resources, vec!["c2"]);
        // Nothing differs: an empty first answer still (Envoy waits for one).
        let mut versions = kept(ENDPOINT_TYPE);
        versions.remove("c2");
        let eds = one(s
            .on_request(&DeltaDiscoveryRequest {
                initial_resource_versions: versions,
                ..req(ENDPOINT_TYPE, &["c1"], &[], "")
            })
            .0);
        assert!(eds.resources.is_empty() && eds.removed_resources.is_empty());
        // A version this hub did not make: sent.
        let rds = one(s
            .on_request(&DeltaDiscoveryRequest {
                initial_resource_versions: HashMap::from([("port/80".into(), "v1".into())]),
                ..req(ROUTE_TYPE, &["port/80"], &[], "")
            })
            .0);
        assert_eq!(names(&rds), vec!["port/80"]);
    }

    #[test]
    fn a_nack_names_its_sources_and_the_same_is_not_sent_again() {
        let mut s = subscribed(snap(&["c1"], 1), &["c1"]);
        let cds = one(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)));
        assert_eq!(names(&cds), vec!["c2", "c3"]);
        let (out, ev) = s.on_request(&nack(&cds, "cluster c3: bad"));
        assert!(out.is_empty());
        let Some(HealthEvent::Nack(t, n)) = ev else {
            panic!("expected a NACK event, got {ev:?}")
        };
        assert_eq!(t, CLUSTER_TYPE);
        assert_eq!(n.node, "envoy-1");
        assert_eq!(n.version, cds.system_version_info);
        assert_eq!(n.sources, BTreeSet::from([route_source("a", "c3")]));
        // The same snapshot again: not resent.
        assert!(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)).is_empty());
        // The next change is sent (alone) and its ACK clears the NACK.
        let cds = one(s.on_snapshot(snap(&["c1", "c2"], 1)));
        assert_eq!(cds.removed_resources, vec!["c3"]);
        let (_, ev) = s.on_request(&ack(&cds));
        assert_eq!(ev, Some(HealthEvent::Ack(CLUSTER_TYPE.into())));
    }

    #[test]
    fn one_push_in_flight_the_newest_held_snapshot_follows_in_order() {
        let mut s = subscribed(snap(&["c1"], 1), &["c1"]);
        let rds = one(s.on_request(&req(ROUTE_TYPE, &["port/80"], &[], "")).0);
        s.on_request(&ack(&rds));
        let pushed = s.on_snapshot(snap(&["c1", "c2"], 1));
        assert_eq!(types(&pushed), vec![CLUSTER_TYPE, ROUTE_TYPE]);
        // Two snapshots while Envoy works on that push: held.
        assert!(s.on_snapshot(snap(&["c1", "c2", "c3"], 1)).is_empty());
        assert!(s.on_snapshot(snap(&["c1", "c2", "c4"], 1)).is_empty());
        assert!(s.is_held());
        // Envoy asks for c2's endpoints meanwhile: that alone, not the held clusters.
        let eds = one(s.on_request(&req(ENDPOINT_TYPE, &["c2"], &[], "")).0);
        assert_eq!(names(&eds), vec!["c2"]);
        s.on_request(&ack(&eds));
        s.on_request(&ack(&pushed[1]));
        assert!(s.push_held(false).is_empty(), "CDS not answered yet");
        // A stale answer changes nothing.
        let (out, ev) = s.on_request(&ack(&rds));
        assert!(out.is_empty());
        assert_eq!(ev, None);
        s.on_request(&ack(&pushed[0]));
        let released = s.push_held(false);
        assert_eq!(types(&released), vec![CLUSTER_TYPE, ROUTE_TYPE]);
        assert_eq!(
            names(&released[0]),
            vec!["c4"],
            "c3 came and went while held"
        );
        assert!(released[0].removed_resources.is_empty());
        assert!(!s.is_held());
        // Envoy never answers: the next snapshot is pushed after all when forced.
        assert!(s.on_snapshot(snap(&["c1"], 1)).is_empty());
        let forced = s.push_held(true);
        assert_eq!(
            types(&forced),
            vec![CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE]
        );
        assert_eq!(forced[0].removed_resources, vec!["c2", "c4"]);
        assert_eq!(forced[1].removed_resources, vec!["c2"]);
    }
}
