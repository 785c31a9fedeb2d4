//! VirtualKeys in the compiled snapshot: which AI routes each key opens
//! ([`crate::model::ai::AiTenant::virtual_keys`]) and the keys' status.
//!
//! Part of the compiler (step 7), pure. Two steps:
//! - per cluster ([`cluster_keys`]): a key's backends are looked up by name among the
//!   AgentgatewayBackends of its own cluster and namespace (a key can never open another
//!   namespace's, cluster's or tenant's backend). A backend that does not exist is left out and
//!   named in ResolvedRefs=False; the key still opens the others. A key naming a backend with
//!   `policies.auth.passthrough` is refused: that backend sends the client's Authorization, the
//!   virtual key itself, to the provider.
//! - per tenant ([`assemble`]): two keys with the same hash are one key twice; the one created
//!   first (then the smaller id) is kept, the other refused (Accepted=False, Conflicted). Then
//!   the routes: a route that any VirtualKey names, usable or not, serves only requests with one
//!   of its accepted keys. A route that only unusable keys name (refused, Secret missing) is
//!   left out of the snapshot, so it fails closed (404 at the AI gateway) instead of open.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::model::ai::{AiAuth, AiBackend, AiSnapshot, VirtualKey, VirtualKeyIntent, route_id};
use crate::model::{ClusterKey, Condition, Kind, ObjectKey, ObjectStatus};
use crate::snapshot::SourceObject;

/// The reason of a key refused because another VirtualKey of the tenant has the same key.
pub const DUPLICATE_REASON: &str = "Conflicted";

/// One VirtualKey of a cluster after the per-cluster step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// `<cluster>/<namespace>/<name>`.
    pub id: String,
    /// The hash, when the key is usable so far (resolved, not refused).
    pub sha256: Option<[u8; 32]>,
    /// Route ids of the named backends that exist.
    pub routes: Vec<String>,
    /// Route ids of every named backend, existing or not: what the key guards.
    pub guards: Vec<String>,
    pub budget: Option<crate::model::ai::AiBudget>,
    pub created: String,
    pub source: SourceObject,
}

fn key(k: &VirtualKeyIntent) -> ObjectKey {
    ObjectKey {
        kind: Kind::VirtualKey,
        namespace: k.meta.namespace.clone(),
        name: k.meta.name.clone(),
    }
}

fn status(k: &VirtualKeyIntent, conditions: Vec<Condition>) -> ObjectStatus {
    ObjectStatus {
        key: key(k),
        observed_generation: k.meta.generation,
        conditions,
        addresses: Vec::new(),
        listeners: Vec::new(),
        parents: Vec::new(),
        load_balancer: Vec::new(),
        attached_listener_sets: 0,
    }
}

/// The keys of one cluster and their status (in key order), before the tenant-wide step.
pub fn cluster_keys(
    ck: &ClusterKey,
    keys: &BTreeMap<(String, String), VirtualKeyIntent>,
    backends: &BTreeMap<(String, String), AiBackend>,
) -> (Vec<KeyPart>, Vec<ObjectStatus>) {
    let mut parts = Vec::with_capacity(keys.len());
    let mut statuses = Vec::with_capacity(keys.len());
    for k in keys.values() {
        let ns = &k.meta.namespace;
        let guards: Vec<String> = k
            .backends
            .iter()
            .map(|b| route_id(&ck.cluster, ns, b))
            .collect();
        let mut part = KeyPart {
            id: route_id(&ck.cluster, ns, &k.meta.name),
            sha256: None,
            routes: Vec::new(),
            guards,
            budget: k.budget,
            created: k.meta.creation_timestamp.clone(),
            source: SourceObject {
                cluster: ck.clone(),
                object: key(k),
            },
        };
        let passthrough: Vec<&str> = k
            .backends
            .iter()
            .filter(|b| {
                backends
                    .get(&(ns.clone(), (*b).clone()))
                    .and_then(|b| b.target.as_ref().ok())
                    .is_some_and(|t| t.resolved().iter().any(|p| p.auth == AiAuth::Passthrough))
            })
            .map(String::as_str)
            .collect();
        let missing: Vec<&str> = k
            .backends
            .iter()
            .filter(|b| !backends.contains_key(&(ns.clone(), (*b).clone())))
            .map(String::as_str)
            .collect();
        let conditions = if !passthrough.is_empty() {
            let msg = format!(
                "AgentgatewayBackend {} of namespace {ns} sets spec.policies.auth.passthrough, which sends the client's Authorization (this virtual key) to the provider; remove it from spec.backends or give the backend its own key (spec.policies.auth.secretRef). Until then the routes this key names serve no request",
                passthrough.join(", ")
            );
            vec![
                Condition::new("Accepted", false, "UnsupportedValue", &msg),
                Condition::new("ResolvedRefs", true, "ResolvedRefs", ""),
            ]
        } else {
            match &k.sha256 {
                Err(p) => {
                    let msg = format!(
                        "{}; until this is fixed, the AgentgatewayBackends this key names serve no request without another accepted key",
                        p.message
                    );
                    // A Secret that is missing or unreadable is a reference that did not
                    // resolve; anything else (a budget, a key no client can send) is the spec.
                    if matches!(p.reason.as_str(), "BackendNotFound" | "RefNotPermitted") {
                        vec![
                            Condition::new(
                                "Accepted",
                                true,
                                "Accepted",
                                "key accepted; see ResolvedRefs",
                            ),
                            Condition::new("ResolvedRefs", false, &p.reason, &msg),
                        ]
                    } else {
                        vec![
                            Condition::new("Accepted", false, &p.reason, &msg),
                            Condition::new("ResolvedRefs", true, "ResolvedRefs", ""),
                        ]
                    }
                }
                Ok(h) => {
                    part.sha256 = Some(*h);
                    part.routes = k
                        .backends
                        .iter()
                        .filter(|b| !missing.contains(&b.as_str()))
                        .map(|b| route_id(&ck.cluster, ns, b))
                        .collect();
                    let refs = if missing.is_empty() {
                        Condition::new(
                            "ResolvedRefs",
                            true,
                            "ResolvedRefs",
                            format!("the key opens {} AgentgatewayBackend(s)", part.routes.len()),
                        )
                    } else {
                        Condition::new(
                            "ResolvedRefs",
                            false,
                            "BackendNotFound",
                            format!(
                                "AgentgatewayBackend {} not found in namespace {ns} of cluster {} (or rejected, see its status); create it or remove it from spec.backends",
                                missing.join(", "),
                                ck.cluster
                            ),
                        )
                    };
                    vec![
                        Condition::new("Accepted", true, "Accepted", "key accepted"),
                        refs,
                    ]
                }
            }
        };
        statuses.push(status(k, conditions));
        parts.push(part);
    }
    (parts, statuses)
}

/// The tenant-wide step over every cluster's keys: duplicates refused (their status replaced
/// in `statuses`), accepted keys into `snapshot`'s tenants, and routes only unusable keys guard
/// taken out of `snapshot`.
pub fn assemble(
    parts: &[(&ClusterKey, &[KeyPart])],
    snapshot: &mut AiSnapshot,
    statuses: &mut BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
) {
    let mut by_tenant: BTreeMap<&str, Vec<&KeyPart>> = BTreeMap::new();
    for (ck, keys) in parts {
        by_tenant.entry(&ck.tenant).or_default().extend(keys.iter());
    }
    for (tenant, mut keys) in by_tenant {
        keys.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        let mut seen: BTreeMap<[u8; 32], &str> = BTreeMap::new();
        let mut accepted: Vec<&KeyPart> = Vec::new();
        for k in &keys {
            let Some(h) = k.sha256 else { continue };
            if let Some(first) = seen.get(&h) {
                let msg = format!(
                    "VirtualKey {first} of this tenant was accepted first with the same key; give each VirtualKey its own key (a new random value in its Secret). Until then the routes this key names serve no request without another accepted key"
                );
                refuse(statuses, &k.source, &msg);
                continue;
            }
            seen.insert(h, &k.id);
            accepted.push(k);
        }
        let guarded: BTreeSet<&str> = keys
            .iter()
            .flat_map(|k| k.guards.iter().map(String::as_str))
            .collect();
        let opened: BTreeSet<&str> = accepted
            .iter()
            .flat_map(|k| k.routes.iter().map(String::as_str))
            .collect();
        let Some(t) = snapshot.tenants.get_mut(tenant) else {
            continue;
        };
        t.routes
            .retain(|id, _| !guarded.contains(id.as_str()) || opened.contains(id.as_str()));
        for k in accepted {
            let (Some(sha256), false) = (k.sha256, k.routes.is_empty()) else {
                continue;
            };
            t.virtual_keys.insert(
                k.id.clone(),
                VirtualKey {
                    id: k.id.clone(),
                    sha256,
                    routes: k.routes.clone(),
                    budget: k.budget,
                    source: k.source.clone(),
                },
            );
        }
    }
}

/// Replaces the status of the key `src` with Accepted=False, [`DUPLICATE_REASON`].
fn refuse(
    statuses: &mut BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
    src: &SourceObject,
    msg: &str,
) {
    let Some(list) = statuses.get_mut(&src.cluster) else {
        return;
    };
    if let Some(s) = Arc::make_mut(list).iter_mut().find(|s| s.key == src.object) {
        s.conditions = vec![
            Condition::new("Accepted", false, DUPLICATE_REASON, msg),
            Condition::new("ResolvedRefs", true, "ResolvedRefs", ""),
        ];
    }
}
