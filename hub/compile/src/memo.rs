//! The compiler's memo: each cluster's compiled part kept between compiles, so that a change in
//! one cluster recompiles that cluster only.
//!
//! Part of the compiler (step 7), pure: no I/O, no clock. The hub's compile loop (the runtime's compile loop (`fleetgate-hub`'s `run`))
//! owns one [`Memo`] (one writer) and passes it to every compile; [`super::compile`] uses a
//! fresh one, so a full compile and an incremental one run the same code and the memo only
//! decides what can be reused. A cluster's part is reused when everything it was compiled from
//! is equal to what it would be compiled from now:
//! - the cluster's intent: the same revision (`fleetgate-hub`'s `fleet::FleetView::revisions`, which
//!   changes whenever the cluster's intent is replaced), or else equal by value,
//! - the data plane's published ports,
//! - the listener conflicts of the cluster's Gateways (they depend on other clusters of the
//!   tenant, `super::conflict`),
//! - the cluster's Gateways served on their own address and their allocations
//!   (`super::own_address`),
//! - the fleet-wide oldest HTTPRoute/GRPCRoute of every (port, hostname) the cluster attaches a
//!   route to (`super::grpc::Conflicts`, which decides which of the two kinds is accepted).
//!
//! Those are the only inputs of `super::cluster_part`; the tests in `super::tests` compare
//! incremental compiles against fresh ones across changes that touch each of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::conflict::{self, Conflict};
use super::grpc::{self, Age, Claims};
use super::own_address::{OwnAddresses, OwnGateway};
use super::{ClusterPart, Compiled, assemble, cluster_part, listener, listener_set};
use crate::model::data_plane::DataPlane;
use crate::model::{ClusterIntent, ClusterKey, FleetIntent, Protocol};

/// Per cluster, a number that changes whenever the cluster's intent changes
/// (`fleetgate-hub`'s `fleet::FleetView::revisions`).
pub type Revisions = BTreeMap<ClusterKey, u64>;

/// Compiled parts of the clusters seen by the last compile (see the module header).
#[derive(Debug, Default)]
pub struct Memo {
    dp: Option<DataPlane>,
    clusters: BTreeMap<ClusterKey, Entry>,
    /// The contested keys of the union of the clusters' claims (`grpc::Conflicts`), and a
    /// number that changes when it is recomputed.
    route_conflicts: Option<(u64, grpc::Conflicts)>,
    /// How many parts the last compile built (the others were reused).
    built: usize,
}

/// What the memo keeps of one cluster.
#[derive(Debug)]
struct Entry {
    /// The intent everything below was computed from (shared with the fleet's intent, so
    /// kept at the cost of a pointer), and its revision if it came with one.
    intent: Arc<ClusterIntent>,
    revision: Option<u64>,
    /// The cluster's HTTPRoute/GRPCRoute attachments (depend on its intent and `dp` only).
    claims: Claims,
    part: Option<Kept>,
}

/// A compiled part and the fleet-wide facts it was compiled with.
#[derive(Debug)]
struct Kept {
    /// The cluster's Gateways on their own address and their allocations.
    own: BTreeMap<(String, String), OwnGateway>,
    listener_conflicts: Vec<(String, String, Vec<Option<Conflict>>)>,
    /// The fleet-wide winner of each key of the entry's `claims` where that is another
    /// cluster's claim (`None` where it is the entry's own), in key order, as of the route
    /// conflicts numbered `checked`.
    winners: Vec<Option<Age>>,
    checked: u64,
    part: ClusterPart,
}

impl Memo {
    /// Compiles `intent` like [`super::compile`], reusing the parts of unchanged clusters
    /// (found by comparing each cluster's intent with the one its part was compiled from).
    pub fn compile(&mut self, intent: &FleetIntent, dp: &DataPlane) -> Compiled {
        self.compile_revised(intent, &Revisions::new(), dp)
    }

    /// [`Memo::compile`], where a cluster whose revision in `revisions` is the one its part was
    /// compiled at counts as unchanged without comparing its intent; the intent of a cluster
    /// without a revision, or with another one, is compared by value.
    pub fn compile_revised(
        &mut self,
        intent: &FleetIntent,
        revisions: &Revisions,
        dp: &DataPlane,
    ) -> Compiled {
        self.compile_own(intent, revisions, dp, &OwnAddresses::none())
    }

    /// [`Memo::compile_revised`] with the Gateways that are served on their own address
    /// (`super::own_address`); a cluster's part is reused only while its own-address Gateways
    /// and their allocations stay the same.
    pub fn compile_own(
        &mut self,
        intent: &FleetIntent,
        revisions: &Revisions,
        dp: &DataPlane,
        own: &OwnAddresses,
    ) -> Compiled {
        if self.dp.as_ref() != Some(dp) {
            self.clusters.clear();
            self.route_conflicts = None;
            self.dp = Some(dp.clone());
        }
        // Every Gateway with the listeners of the ListenerSets it takes (a cluster's merge
        // depends on that cluster's intent only); everything below sees this merged intent.
        let merged = listener_set::merge(intent, |l| {
            // TCP and UDP listeners are served by `l4` (`compile_with_l4`).
            listener::check(l, dp).is_ok()
                || matches!(l.protocol, Some(Protocol::Tcp | Protocol::Udp))
        });
        let before = self.clusters.len();
        self.clusters.retain(|ck, _| intent.contains_key(ck));
        let mut claims_changed = self.clusters.len() != before;
        for (ck, ci) in intent {
            let revision = revisions.get(ck).copied();
            if let Some(e) = self.clusters.get_mut(ck) {
                if revision.is_some() && e.revision == revision {
                    continue;
                }
                // The same allocation is the same intent (the hub's `Fleet` replaces a
                // cluster's `Arc` when its intent changes).
                if Arc::ptr_eq(&e.intent, ci) || e.intent == *ci {
                    e.revision = revision;
                    continue;
                }
            }
            let merged_ci = merged.get(ck).expect("merged has every cluster");
            let claims = grpc::claims(ck, merged_ci, &merged, dp);
            claims_changed |= self.clusters.get(ck).is_none_or(|e| e.claims != claims);
            let entry = Entry {
                intent: Arc::clone(ci),
                revision,
                claims,
                part: None,
            };
            self.clusters.insert(ck.clone(), entry);
        }
        if claims_changed || self.route_conflicts.is_none() {
            let number = self.route_conflicts.as_ref().map_or(0, |(n, _)| n + 1);
            let union = grpc::Conflicts::from_claims(self.clusters.values().map(|e| &e.claims));
            self.route_conflicts = Some((number, union));
        }
        let (number, route_conflicts) = self.route_conflicts.as_ref().expect("computed above");

        let conflicts = conflict::conflicts(
            merged.iter(),
            |l| listener::check(l, dp).is_ok(),
            |ck, gk, i| merged.origin(ck, gk, i).map(|(ns, n)| format!("{ns}/{n}")),
            |ck, gk| own.get(ck, gk).is_some(),
        );
        self.built = 0;
        for (ck, ci) in merged.iter() {
            let entry = self.clusters.get_mut(ck).expect("an entry per cluster");
            let listener_conflicts: Vec<_> = conflicts
                .iter()
                .filter(|((c, _), _)| c == ck)
                .map(|((_, (ns, name)), l)| (ns.clone(), name.clone(), l.clone()))
                .collect();
            let own_gateways = own.of_cluster(ck);
            let route_conflicts = route_conflicts.for_cluster(&entry.claims);
            if let Some(kept) = &mut entry.part
                && kept.listener_conflicts == listener_conflicts
                && kept.own == own_gateways
                && (kept.checked == *number
                    || kept
                        .winners
                        .iter()
                        .zip(entry.claims.keys())
                        .all(|(w, k)| w.as_ref() == route_conflicts.foreign_winner(k)))
            {
                kept.checked = *number;
                continue;
            }
            self.built += 1;
            let winners = entry
                .claims
                .keys()
                .map(|k| route_conflicts.foreign_winner(k).cloned())
                .collect();
            entry.part = Some(Kept {
                own: own_gateways,
                listener_conflicts,
                winners,
                checked: *number,
                part: cluster_part(ck, ci, &merged, &conflicts, &route_conflicts, dp, own),
            });
        }

        let parts: Vec<(&ClusterKey, &ClusterPart)> = intent
            .keys()
            .map(|ck| {
                let kept = self.clusters[ck].part.as_ref().expect("compiled above");
                (ck, &kept.part)
            })
            .collect();
        assemble(&merged, &parts, dp)
    }

    /// Compiles `intent` like [`super::compile_with_l4`], reusing the parts of unchanged
    /// clusters as [`Memo::compile_revised`] (the L4 part is compiled in full: it is small).
    pub fn compile_with_l4(
        &mut self,
        intent: &FleetIntent,
        revisions: &Revisions,
        dp: &DataPlane,
        l4_config: &crate::model::data_plane::L4Config,
        allocations: &crate::model::allocate::Allocations,
        failures: &BTreeMap<crate::model::allocate::PortKey, crate::model::allocate::AllocError>,
    ) -> Compiled {
        let own = OwnAddresses::new(intent, l4_config, allocations, failures);
        let http = self.compile_own(intent, revisions, dp, &own);
        super::with_l4(http, intent, l4_config, allocations, failures)
    }

    /// How many clusters' parts the last compile built rather than reused.
    pub fn last_built(&self) -> usize {
        self.built
    }
}
