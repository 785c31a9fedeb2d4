//! The hub's accepted state of the whole fleet, and its only writer.
//!
//! Where it sits: `sync` hands each agent Update to `Fleet::apply`, which runs `admit` on every
//! object, keeps what passed, records why the rest failed, persists the result in `store`, and
//! bumps a revision that wakes the compile loop in `run`.
//!
//! A rejected object never removes the last accepted version of that object: what already
//! works keeps working, and the tenant sees the rejection in status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use fleetgate_proto::spoke::v1 as pb;
use tokio::sync::watch;

use crate::admit::{self, Admitted, Policy};
use crate::config::Config;
use crate::model::{ClusterIntent, ClusterKey, FleetIntent, Kind, ObjectKey, ObjectStatus};
use crate::store::{Store, StoreError};

/// Why a whole Update was refused (the agent gets it as a Nack; nothing in it was applied).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The cluster is not (or no longer) in the hub's configuration.
    #[error("cluster {0} is not registered at the hub; ask the hub operator to add it")]
    UnknownCluster(ClusterKey),
    /// The cluster would hold more objects than its limit.
    #[error(
        "the update would leave {count} objects in this cluster; the limit is {limit}: remove objects or ask the hub operator to raise limits.maxObjectsPerCluster"
    )]
    TooManyObjects { count: usize, limit: usize },
    /// Persisting failed; the update is not applied.
    #[error("the hub could not store the update, retry later: {0}")]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct State {
    /// Shared with the compile loop's views; `apply` copies it only while a view is held.
    intent: Arc<FleetIntent>,
    owners: BTreeMap<String, String>,
    /// Per cluster: objects whose latest version was rejected, with their status.
    rejections: BTreeMap<ClusterKey, BTreeMap<ObjectKey, ObjectStatus>>,
}

/// What the compile loop reads: accepted intent plus the statuses of rejected objects.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    pub intent: Arc<FleetIntent>,
    pub rejections: BTreeMap<ClusterKey, BTreeMap<ObjectKey, ObjectStatus>>,
}

pub struct Fleet {
    config: Arc<Config>,
    store: Store,
    state: Mutex<State>,
    reserved: BTreeSet<SocketAddr>,
    reserved_ips: BTreeSet<IpAddr>,
    revision: watch::Sender<u64>,
}

impl Fleet {
    /// Loads the accepted intent from the store. Intent of clusters no longer in the config is
    /// dropped (and their hostname claims released) on the next write.
    pub fn open(config: Arc<Config>, store: Store) -> Result<Self, StoreError> {
        let loaded = store.load()?;
        let mut intent = loaded.intent;
        intent.retain(|k, _| {
            config
                .tenants
                .get(&k.tenant)
                .is_some_and(|t| t.clusters.contains_key(&k.cluster))
        });
        let mut reserved: BTreeSet<SocketAddr> = [config.agent_listen, config.xds_listen].into();
        reserved.extend(config.data_plane.listeners.iter().map(|l| l.bind));
        let reserved_ips = [config.data_plane.address].into();
        Ok(Self {
            config,
            store,
            state: Mutex::new(State {
                intent: Arc::new(intent),
                owners: loaded.owners,
                rejections: BTreeMap::new(),
            }),
            reserved,
            reserved_ips,
            revision: watch::channel(0).0,
        })
    }

    /// Wakes whenever the accepted state changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    pub fn view(&self) -> FleetView {
        let s = self.state.lock().expect("fleet state lock poisoned");
        FleetView {
            intent: s.intent.clone(),
            rejections: s.rejections.clone(),
        }
    }

    /// Whether a tenant/cluster pair is registered.
    pub fn is_registered(&self, key: &ClusterKey) -> bool {
        self.config
            .tenants
            .get(&key.tenant)
            .is_some_and(|t| t.clusters.contains_key(&key.cluster))
    }

    /// Applies one agent Update for `key` (the identity from its certificate).
    pub fn apply(&self, key: &ClusterKey, update: &pb::Update) -> Result<(), UpdateError> {
        let tenant = self
            .config
            .tenants
            .get(&key.tenant)
            .ok_or_else(|| UpdateError::UnknownCluster(key.clone()))?;
        let cluster = tenant
            .clusters
            .get(&key.cluster)
            .ok_or_else(|| UpdateError::UnknownCluster(key.clone()))?;

        let mut state = self.state.lock().expect("fleet state lock poisoned");
        let mut intent = state.intent.get(key).cloned().unwrap_or_default();
        let mut rejections = state.rejections.get(key).cloned().unwrap_or_default();

        if update.full_state {
            // Everything not in this update is gone from the cluster.
            let sent: BTreeSet<ObjectKey> = update
                .upserts
                .iter()
                .filter_map(|o| o.r#ref.as_ref().and_then(|r| admit::object_key(r).ok()))
                .collect();
            intent
                .gateways
                .retain(|(ns, n), _| sent.contains(&okey(Kind::Gateway, ns, n)));
            intent
                .http_routes
                .retain(|(ns, n), _| sent.contains(&okey(Kind::HttpRoute, ns, n)));
            intent
                .tls_routes
                .retain(|(ns, n), _| sent.contains(&okey(Kind::TlsRoute, ns, n)));
            rejections.retain(|k, _| sent.contains(k));
        }
        for d in &update.deletes {
            if let Ok(k) = admit::object_key(d) {
                remove(&mut intent, &k);
                rejections.remove(&k);
            }
        }
        // Claims of other tenants, plus this tenant's claims from its other clusters.
        let owners = state.owners.clone();
        let policy = Policy {
            tenant,
            cluster,
            limits: &self.config.limits,
            owners: &owners,
            reserved: &self.reserved,
            reserved_ips: &self.reserved_ips,
        };
        for obj in &update.upserts {
            let Some(r) = &obj.r#ref else { continue };
            let k = match admit::object_key(r) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(cluster = %key, reason = e.reason, "dropping object: {}", e.message);
                    continue;
                }
            };
            match admit::admit(obj, &policy) {
                Ok(Admitted::Gateway(g)) => {
                    rejections.remove(&k);
                    intent.gateways.insert((k.namespace, k.name), g);
                }
                Ok(Admitted::HttpRoute(h)) => {
                    rejections.remove(&k);
                    intent.http_routes.insert((k.namespace, k.name), h);
                }
                Ok(Admitted::TlsRoute(t)) => {
                    rejections.remove(&k);
                    intent.tls_routes.insert((k.namespace, k.name), t);
                }
                Err(e) => {
                    tracing::info!(cluster = %key, object = ?k, reason = e.reason, "rejected: {}", e.message);
                    rejections.insert(k.clone(), admit::rejected_status(&k, obj, &e));
                }
            }
        }
        let count = intent.gateways.len()
            + intent.http_routes.len()
            + intent.tls_routes.len()
            + rejections.len();
        if count > self.config.limits.max_objects_per_cluster {
            return Err(UpdateError::TooManyObjects {
                count,
                limit: self.config.limits.max_objects_per_cluster,
            });
        }

        // In place (a copy only if the compile loop still holds a view), undone if the store
        // refuses.
        let st = &mut *state;
        let fleet = Arc::make_mut(&mut st.intent);
        let previous = fleet.insert(key.clone(), intent);
        let owners = claims(&st.owners, &key.tenant, fleet);
        if let Err(e) = self.store.save(key, &fleet[key], &owners) {
            match previous {
                Some(p) => fleet.insert(key.clone(), p),
                None => fleet.remove(key),
            };
            return Err(e.into());
        }
        st.owners = owners;
        st.rejections.insert(key.clone(), rejections);
        drop(state);
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }
}

fn okey(kind: Kind, ns: &str, n: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: ns.to_string(),
        name: n.to_string(),
    }
}

fn remove(intent: &mut ClusterIntent, k: &ObjectKey) {
    let id = (k.namespace.clone(), k.name.clone());
    match k.kind {
        Kind::Gateway => {
            intent.gateways.remove(&id);
        }
        Kind::HttpRoute => {
            intent.http_routes.remove(&id);
        }
        Kind::TlsRoute => {
            intent.tls_routes.remove(&id);
        }
    }
}

/// The hostname claims after `tenant`'s intent changed: the tenant's claims become exactly the
/// hostnames its accepted objects use in any of its clusters; other tenants' claims are kept.
pub fn claims(
    owners: &BTreeMap<String, String>,
    tenant: &str,
    fleet: &FleetIntent,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = owners
        .iter()
        .filter(|(_, t)| t.as_str() != tenant)
        .map(|(h, t)| (h.clone(), t.clone()))
        .collect();
    for ci in fleet
        .iter()
        .filter(|(k, _)| k.tenant == tenant)
        .map(|(_, ci)| ci)
    {
        let hosts = ci
            .gateways
            .values()
            .flat_map(|g| g.listeners.iter().filter_map(|l| l.hostname.clone()))
            .chain(
                ci.http_routes
                    .values()
                    .flat_map(|r| r.hostnames.iter().cloned()),
            )
            .chain(
                ci.tls_routes
                    .values()
                    .flat_map(|r| r.hostnames.iter().cloned()),
            );
        for h in hosts {
            out.entry(h).or_insert_with(|| tenant.to_string());
        }
    }
    out
}
