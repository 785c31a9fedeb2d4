//! ListenerSets (Gateway API v1, GEP-1713): which ListenerSets a Gateway takes, the Gateway's
//! listeners merged with theirs, route parents of kind ListenerSet, and the ListenerSets' status.
//!
//! Part of the compiler (step 7), pure; runs first, so that every later step (listener checks,
//! conflicts, attachment, the data plane) sees each Gateway with its merged listener list: its
//! own listeners first, then those of every ListenerSet it takes, oldest ListenerSet first
//! (creationTimestamp, then namespace/name) — the Gateway API precedence order. A listener's
//! index in that list is therefore its precedence: when two listeners of different origins
//! conflict, the lower index wins (`super::conflict`).
//!
//! A ListenerSet is taken when its parent Gateway (same cluster) exists and is accepted (at
//! least one of its own listeners can be served) and its `allowedListeners.namespaces` admits
//! the ListenerSet's namespace (None by default). Routes
//! attach to a ListenerSet's listeners only through a parentRef of kind ListenerSet; a parentRef
//! to the Gateway reaches only the Gateway's own listeners. A ListenerSet listener's
//! `allowedRoutes.namespaces.from: Same` means the ListenerSet's namespace. TCP and UDP listeners
//! are not served in a ListenerSet (they need an address allocation per Gateway, see
//! `super::l4`); they are reported as such.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::NsName;
use super::listener::{self, ListenerProblem};
use crate::model::data_plane::DataPlane;
use crate::model::{
    AllowedListeners, AllowedRoutes, ClusterIntent, ClusterKey, Condition, FleetIntent, Gateway,
    Kind, ListenerSet, ListenerStatus, ObjectKey, ObjectStatus, ParentKind, ParentRef,
};

/// Why a ListenerSet is not taken by its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The parent's `allowedListeners` does not admit the ListenerSet's namespace.
    NotAllowed(String),
    /// The parent Gateway is not in this cluster's accepted intent, or none of its own
    /// listeners can be served.
    ParentNotAccepted(String),
}

impl Refusal {
    /// The Gateway API reason of the ListenerSet's Accepted=False and Programmed=False.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotAllowed(_) => "NotAllowed",
            Refusal::ParentNotAccepted(_) => "ParentNotAccepted",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Refusal::NotAllowed(m) | Refusal::ParentNotAccepted(m) => m,
        }
    }
}

/// What became of one ListenerSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Merged into `gateway`'s listener list at `range`.
    Taken {
        gateway: NsName,
        range: Range<usize>,
    },
    Refused(Refusal),
}

/// The ListenerSets of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSets {
    /// Gateways that took at least one ListenerSet: how many of the merged listeners are the
    /// Gateway's own.
    own: BTreeMap<NsName, usize>,
    /// Every ListenerSet of the cluster.
    pub verdicts: BTreeMap<NsName, Verdict>,
}

/// The fleet's intent with every Gateway's listeners merged with those of the ListenerSets it
/// takes (only clusters with a ListenerSet are copied; the others are borrowed), and what became
/// of each ListenerSet.
#[derive(Debug, Clone)]
pub struct Merged<'a> {
    clusters: BTreeMap<&'a ClusterKey, Cow<'a, ClusterIntent>>,
    sets: BTreeMap<ClusterKey, ClusterSets>,
}

/// Whether a Gateway's `allowedListeners` admits a ListenerSet of namespace `ns`, and the words
/// for the tenant when not. (Also used by the hub for ListenerSets that admission rejected:
/// `fleetgate_hub::fleet`.)
pub fn allowed(gw: &Gateway, ns: &str) -> Result<(), String> {
    let ok = match &gw.allowed_listeners {
        AllowedListeners::None => false,
        AllowedListeners::Same => gw.meta.namespace == ns,
        AllowedListeners::All => true,
        AllowedListeners::Namespaces(set) => set.contains(ns),
    };
    if ok {
        return Ok(());
    }
    let from = match &gw.allowed_listeners {
        AllowedListeners::None => "None (the default)",
        AllowedListeners::Same => "Same",
        AllowedListeners::All => "All",
        AllowedListeners::Namespaces(_) => "Selector",
    };
    Err(format!(
        "Gateway {}/{} does not allow ListenerSets from namespace {ns}: its spec.allowedListeners.namespaces.from is {from}; set it to Same, All or a Selector that selects {ns}",
        gw.meta.namespace, gw.meta.name
    ))
}

/// Decides every ListenerSet of the fleet and merges the taken ones into their Gateways;
/// `served` tells whether one of a Gateway's own listeners can be served (which makes the
/// Gateway accepted).
pub fn merge(intent: &FleetIntent, served: impl Fn(&crate::model::Listener) -> bool) -> Merged<'_> {
    let mut clusters = BTreeMap::new();
    let mut sets = BTreeMap::new();
    for (ck, original) in intent {
        if original.listener_sets.is_empty() {
            clusters.insert(ck, Cow::Borrowed(&**original));
            continue;
        }
        let mut ci = ClusterIntent::clone(original);
        let mut cs = ClusterSets::default();
        // Parent -> the ListenerSets it takes, in precedence order.
        let mut taken: BTreeMap<NsName, Vec<&ListenerSet>> = BTreeMap::new();
        for (k, ls) in &original.listener_sets {
            let verdict = match original.gateways.get(&ls.parent) {
                None => Some(Refusal::ParentNotAccepted(format!(
                    "Gateway {}/{} does not exist in this cluster, is not of a fleetgate class or was rejected; see its status",
                    ls.parent.0, ls.parent.1
                ))),
                Some(gw) if !gw.listeners.iter().any(&served) => {
                    Some(Refusal::ParentNotAccepted(format!(
                        "Gateway {}/{} is not accepted: none of its own listeners is valid; see its status",
                        ls.parent.0, ls.parent.1
                    )))
                }
                Some(gw) => allowed(gw, &ls.meta.namespace)
                    .err()
                    .map(Refusal::NotAllowed),
            };
            match verdict {
                Some(r) => {
                    cs.verdicts.insert(k.clone(), Verdict::Refused(r));
                }
                None => taken.entry(ls.parent.clone()).or_default().push(ls),
            }
        }
        for (gk, mut list) in taken {
            list.sort_by(|a, b| {
                let key = |s: &ListenerSet| {
                    (
                        s.meta.creation_timestamp.clone(),
                        s.meta.namespace.clone(),
                        s.meta.name.clone(),
                    )
                };
                key(a).cmp(&key(b))
            });
            let gw = ci.gateways.get_mut(&gk).expect("taken only with a parent");
            cs.own.insert(gk.clone(), gw.listeners.len());
            for ls in list {
                let start = gw.listeners.len();
                gw.listeners
                    .extend(ls.listeners.iter().cloned().map(|mut l| {
                        if l.allowed_routes == AllowedRoutes::Same {
                            l.allowed_routes = AllowedRoutes::Namespaces(BTreeSet::from([ls
                                .meta
                                .namespace
                                .clone()]));
                        }
                        l
                    }));
                cs.verdicts.insert(
                    (ls.meta.namespace.clone(), ls.meta.name.clone()),
                    Verdict::Taken {
                        gateway: gk.clone(),
                        range: start..gw.listeners.len(),
                    },
                );
            }
        }
        sets.insert(ck.clone(), cs);
        clusters.insert(ck, Cow::Owned(ci));
    }
    Merged { clusters, sets }
}

impl Merged<'_> {
    /// Every cluster's merged intent, in cluster order.
    pub fn iter(&self) -> impl Iterator<Item = (&ClusterKey, &ClusterIntent)> {
        self.clusters.iter().map(|(k, ci)| (*k, &**ci))
    }

    /// Cluster `ck`'s merged intent.
    pub fn get(&self, ck: &ClusterKey) -> Option<&ClusterIntent> {
        self.clusters.get(ck).map(|ci| &**ci)
    }

    /// Whether cluster `ck`'s intent was copied (it has ListenerSets) rather than borrowed.
    pub fn copied(&self, ck: &ClusterKey) -> bool {
        matches!(self.clusters.get(ck), Some(Cow::Owned(_)))
    }

    /// The ListenerSets of cluster `ck`, if it has any.
    pub fn cluster(&self, ck: &ClusterKey) -> Option<&ClusterSets> {
        self.sets.get(ck)
    }

    /// How many of the (merged) listeners of Gateway `gk` of cluster `ck` are its own; the
    /// rest came from ListenerSets.
    pub fn own(&self, ck: &ClusterKey, gk: &NsName, merged_len: usize) -> usize {
        self.sets
            .get(ck)
            .and_then(|cs| cs.own.get(gk))
            .copied()
            .unwrap_or(merged_len)
    }

    /// The ListenerSet listener `index` of Gateway `gk` came from (`None`: the Gateway's own).
    pub fn origin(&self, ck: &ClusterKey, gk: &NsName, index: usize) -> Option<&NsName> {
        let cs = self.sets.get(ck)?;
        cs.verdicts.iter().find_map(|(k, v)| match v {
            Verdict::Taken { gateway, range } if gateway == gk && range.contains(&index) => Some(k),
            _ => None,
        })
    }

    /// The Gateway a route's parentRef reaches in cluster `ck` (whose merged intent is `ci`),
    /// and the range of its merged listeners the parentRef names: the Gateway's own listeners
    /// for a Gateway, the ListenerSet's for a ListenerSet. `None` for the Gateway when the
    /// parent does not exist or is a ListenerSet its Gateway did not take.
    pub fn parent<'c>(
        &self,
        ck: &ClusterKey,
        ci: &'c crate::model::ClusterIntent,
        pref: &ParentRef,
    ) -> (NsName, Option<&'c Gateway>, Range<usize>) {
        let key = (pref.namespace.clone(), pref.name.clone());
        match pref.kind {
            ParentKind::Gateway => {
                let gw = ci.gateways.get(&key);
                let len = gw.map(|g| g.listeners.len()).unwrap_or(0);
                let own = self.own(ck, &key, len);
                (key, gw, 0..own)
            }
            ParentKind::ListenerSet => match self.sets.get(ck).and_then(|cs| cs.verdicts.get(&key))
            {
                Some(Verdict::Taken { gateway, range }) => {
                    (gateway.clone(), ci.gateways.get(gateway), range.clone())
                }
                _ => (key, None, 0..0),
            },
        }
    }
}

/// The statuses of the Gateways of cluster `ck` (merged intent `ci`; listener checks
/// `problems` and attached routes `attached`, both in merged listener order), each listing its
/// own listeners only and counting its accepted ListenerSets, followed by the statuses of the
/// cluster's ListenerSets.
pub fn gateway_statuses(
    merged: &Merged<'_>,
    ck: &ClusterKey,
    ci: &crate::model::ClusterIntent,
    problems: &BTreeMap<&NsName, Vec<Option<ListenerProblem>>>,
    attached: &BTreeMap<NsName, Vec<BTreeSet<NsName>>>,
    dp: &DataPlane,
) -> Vec<ObjectStatus> {
    let mut out = Vec::new();
    // Listener statuses of the merged lists of Gateways that took ListenerSets.
    let mut merged_listeners: BTreeMap<NsName, Vec<ListenerStatus>> = BTreeMap::new();
    for (k, gw) in &ci.gateways {
        let counts: Vec<u32> = match attached.get(k) {
            Some(sets) => sets.iter().map(|s| s.len() as u32).collect(),
            None => vec![0; gw.listeners.len()],
        };
        let key = ObjectKey {
            kind: Kind::Gateway,
            namespace: gw.meta.namespace.clone(),
            name: gw.meta.name.clone(),
        };
        let own = merged.own(ck, k, gw.listeners.len());
        if own == gw.listeners.len() {
            out.push(listener::gateway_status(gw, &problems[k], &counts, dp, key));
            continue;
        }
        let all = listener::gateway_status(gw, &problems[k], &counts, dp, key.clone());
        merged_listeners.insert(k.clone(), all.listeners);
        // The Gateway's own status covers its own listeners only.
        let own_gw = Gateway {
            listeners: gw.listeners[..own].to_vec(),
            ..gw.clone()
        };
        out.push(listener::gateway_status(
            &own_gw,
            &problems[k][..own],
            &counts[..own],
            dp,
            key,
        ));
    }
    if let Some(cs) = merged.cluster(ck) {
        let sets = statuses(cs, ci, &merged_listeners);
        let counts = attached_counts(&sets, cs);
        for s in out.iter_mut() {
            if let Some(n) = counts.get(&(s.key.namespace.clone(), s.key.name.clone())) {
                s.attached_listener_sets = *n;
            }
        }
        out.extend(sets);
    }
    out
}

/// The status of every ListenerSet of a cluster, in key order. `gateway_listeners` gives the
/// listener statuses of a Gateway's merged list (computed like a Gateway's own).
fn statuses(
    cs: &ClusterSets,
    ci: &crate::model::ClusterIntent,
    gateway_listeners: &BTreeMap<NsName, Vec<ListenerStatus>>,
) -> Vec<ObjectStatus> {
    let mut out = Vec::new();
    for (k, ls) in &ci.listener_sets {
        let (conditions, listeners) = match cs.verdicts.get(k) {
            Some(Verdict::Taken { gateway, range }) => {
                let listeners: Vec<ListenerStatus> = gateway_listeners
                    .get(gateway)
                    .and_then(|l| l.get(range.clone()))
                    .map(<[ListenerStatus]>::to_vec)
                    .unwrap_or_default()
                    .into_iter()
                    .map(not_accepted_when_conflicted)
                    .collect();
                let programmed = |l: &ListenerStatus| {
                    l.conditions
                        .iter()
                        .any(|c| c.type_ == "Programmed" && c.status)
                };
                let conditions = if listeners.iter().any(programmed) {
                    vec![
                        Condition::new(
                            "Accepted",
                            true,
                            "Accepted",
                            format!("listeners merged into Gateway {}/{}", gateway.0, gateway.1),
                        ),
                        Condition::new(
                            "Programmed",
                            true,
                            "Programmed",
                            "programmed on the shared data plane",
                        ),
                    ]
                } else {
                    let msg = "no listener is valid; see the listener conditions";
                    vec![
                        Condition::new("Accepted", false, "ListenersNotValid", msg),
                        Condition::new("Programmed", false, "ListenersNotValid", msg),
                    ]
                };
                (conditions, listeners)
            }
            Some(Verdict::Refused(r)) => (
                vec![
                    Condition::new("Accepted", false, r.reason(), r.message()),
                    Condition::new("Programmed", false, r.reason(), r.message()),
                ],
                Vec::new(),
            ),
            None => continue,
        };
        out.push(ObjectStatus {
            key: ObjectKey {
                kind: Kind::ListenerSet,
                namespace: ls.meta.namespace.clone(),
                name: ls.meta.name.clone(),
            },
            observed_generation: ls.meta.generation,
            conditions,
            addresses: Vec::new(),
            listeners,
            parents: Vec::new(),
            load_balancer: Vec::new(),
            attached_listener_sets: 0,
        });
    }
    out
}

/// A ListenerSet listener that lost a conflict is not accepted: `Accepted` and `Programmed`
/// are `False` with the conflict's reason (`HostnameConflict`, `ProtocolConflict`), as the
/// Gateway API's ListenerSet conformance tests ask (`ListenerSetHostnameConflict`,
/// `ListenerSetProtocolConflict`). Listeners of the Gateway itself keep `Accepted=True`.
fn not_accepted_when_conflicted(mut l: ListenerStatus) -> ListenerStatus {
    let Some(c) = l
        .conditions
        .iter()
        .find(|c| c.type_ == "Conflicted" && c.status)
        .cloned()
    else {
        return l;
    };
    for cond in l
        .conditions
        .iter_mut()
        .filter(|x| x.type_ == "Accepted" || x.type_ == "Programmed")
    {
        *cond = Condition::new(&cond.type_.clone(), false, &c.reason, c.message.clone());
    }
    l
}

/// `status.attachedListenerSets` of every Gateway: its ListenerSets that are Accepted.
fn attached_counts(statuses: &[ObjectStatus], cs: &ClusterSets) -> BTreeMap<NsName, u32> {
    let mut out = BTreeMap::new();
    for s in statuses.iter().filter(|s| s.key.kind == Kind::ListenerSet) {
        let accepted = s
            .conditions
            .iter()
            .any(|c| c.type_ == "Accepted" && c.status);
        if let (true, Some(Verdict::Taken { gateway, .. })) = (
            accepted,
            cs.verdicts
                .get(&(s.key.namespace.clone(), s.key.name.clone())),
        ) {
            *out.entry(gateway.clone()).or_insert(0) += 1;
        }
    }
    out
}
