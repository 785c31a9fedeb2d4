//! The compiler's memo: each cluster's compiled part kept between compiles, so that a change in
//! one cluster recompiles that cluster only.
//!
//! Part of the compiler (step 7), pure: no I/O, no clock. The hub's compile loop (`crate::run`)
//! owns one [`Memo`] (one writer) and passes it to every compile; [`super::compile`] uses a
//! fresh one, so a full compile and an incremental one run the same code and the memo only
//! decides what can be reused. A cluster's part is reused when everything it was compiled from
//! is equal to what it would be compiled from now:
//! - the cluster's intent (compared by value, so no revision bookkeeping can go wrong),
//! - the data plane's published ports,
//! - the listener conflicts of the cluster's Gateways (they depend on other clusters of the
//!   tenant, `super::conflict`),
//! - the fleet-wide oldest HTTPRoute/GRPCRoute of every (port, hostname) the cluster attaches a
//!   route to (`super::grpc::Conflicts`, which decides which of the two kinds is accepted).
//!
//! Those are the only inputs of `super::cluster_part`; the tests in `super::tests` compare
//! incremental compiles against fresh ones across changes that touch each of them.

use std::collections::BTreeMap;

use super::conflict::{self, Conflict};
use super::grpc::{self, Age, Claims};
use super::{ClusterPart, Compiled, assemble, cluster_part, listener};
use crate::config::DataPlane;
use crate::model::{ClusterIntent, ClusterKey, FleetIntent};

/// Compiled parts of the clusters seen by the last compile (see the module header).
#[derive(Debug, Default)]
pub struct Memo {
    dp: Option<DataPlane>,
    clusters: BTreeMap<ClusterKey, Entry>,
    /// How many parts the last compile built (the others were reused).
    pub(super) built: usize,
}

/// What the memo keeps of one cluster.
#[derive(Debug)]
struct Entry {
    /// The intent everything below was computed from.
    intent: ClusterIntent,
    /// The cluster's HTTPRoute/GRPCRoute attachments (depend on its intent and `dp` only).
    claims: Claims,
    part: Option<Kept>,
}

/// A compiled part and the fleet-wide facts it was compiled with.
#[derive(Debug)]
struct Kept {
    listener_conflicts: Vec<(String, String, Vec<Option<Conflict>>)>,
    /// The fleet-wide winner of each key of the entry's `claims`, in key order.
    winners: Vec<Option<Age>>,
    part: ClusterPart,
}

impl Memo {
    /// Compiles `intent` like [`super::compile`], reusing the parts of unchanged clusters.
    pub fn compile(&mut self, intent: &FleetIntent, dp: &DataPlane) -> Compiled {
        if self.dp.as_ref() != Some(dp) {
            self.clusters.clear();
            self.dp = Some(dp.clone());
        }
        self.clusters.retain(|ck, _| intent.contains_key(ck));
        for (ck, ci) in intent {
            if self.clusters.get(ck).is_some_and(|e| e.intent == *ci) {
                continue;
            }
            let entry = Entry {
                intent: ci.clone(),
                claims: grpc::claims(ck, ci, dp),
                part: None,
            };
            self.clusters.insert(ck.clone(), entry);
        }

        let conflicts = conflict::conflicts(intent, |l| listener::check(l, dp).is_ok());
        let route_conflicts =
            grpc::Conflicts::from_claims(self.clusters.values().map(|e| &e.claims));
        self.built = 0;
        for (ck, ci) in intent {
            let entry = self.clusters.get_mut(ck).expect("an entry per cluster");
            let listener_conflicts: Vec<_> = conflicts
                .iter()
                .filter(|((c, _), _)| c == ck)
                .map(|((_, (ns, name)), l)| (ns.clone(), name.clone(), l.clone()))
                .collect();
            let winners: Vec<Option<Age>> = entry
                .claims
                .keys()
                .map(|k| route_conflicts.winner(k).cloned())
                .collect();
            let valid = entry.part.as_ref().is_some_and(|k| {
                k.listener_conflicts == listener_conflicts && k.winners == winners
            });
            if !valid {
                self.built += 1;
                entry.part = Some(Kept {
                    listener_conflicts,
                    winners,
                    part: cluster_part(ck, ci, &conflicts, &route_conflicts, dp),
                });
            }
        }

        let parts: Vec<(&ClusterKey, &ClusterPart)> = intent
            .keys()
            .map(|ck| {
                let kept = self.clusters[ck].part.as_ref().expect("compiled above");
                (ck, &kept.part)
            })
            .collect();
        assemble(intent, &parts, dp)
    }

    /// Compiles `intent` like [`super::compile_with_l4`], reusing the parts of unchanged
    /// clusters (the L4 part is compiled in full: it is small).
    pub fn compile_with_l4(
        &mut self,
        intent: &FleetIntent,
        dp: &DataPlane,
        l4_config: &crate::config::L4Config,
        allocations: &crate::allocate::Allocations,
        failures: &BTreeMap<crate::allocate::PortKey, crate::allocate::AllocError>,
    ) -> Compiled {
        let http = self.compile(intent, dp);
        super::with_l4(http, intent, l4_config, allocations, failures)
    }

    /// How many clusters' parts the last compile built rather than reused.
    pub fn last_built(&self) -> usize {
        self.built
    }
}
