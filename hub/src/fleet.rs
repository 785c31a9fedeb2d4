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
use tokio::time::Instant;

use crate::admit::{self, Admitted, Policy};
use crate::allocate::{self, AllocError, Allocations, Owner, PortKey, ServiceKey};
use crate::config::Config;
use crate::grace::Links;
use crate::model::{
    ClusterIntent, ClusterKey, FleetIntent, Kind, L4Protocol, ObjectKey, ObjectStatus, Protocol,
};
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
    /// Per cluster: changes every time `apply` replaces the cluster's intent.
    revisions: BTreeMap<ClusterKey, u64>,
    owners: BTreeMap<String, String>,
    /// Per cluster: objects whose latest version was rejected, with their status.
    rejections: BTreeMap<ClusterKey, BTreeMap<ObjectKey, ObjectStatus>>,
    /// L4 allocations (durable) and the Service ports that could not get one.
    l4: allocate::Outcome,
}

/// What the compile loop reads: accepted intent plus the statuses of rejected objects.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    pub intent: Arc<FleetIntent>,
    pub rejections: BTreeMap<ClusterKey, BTreeMap<ObjectKey, ObjectStatus>>,
    /// Clusters disconnected for longer than the grace period: their intent (still in `intent`
    /// and in the store) is left out of the data plane (`crate::grace`).
    pub withdrawn: BTreeSet<ClusterKey>,
    /// The (address, port) of every LoadBalancer Service port.
    pub allocations: Allocations,
    /// Service ports without an allocation, and why.
    pub allocation_failures: BTreeMap<PortKey, AllocError>,
    /// Per cluster, a number that changes whenever the cluster's intent is replaced, so the
    /// compiler's memo can skip comparing unchanged intent (`compile::Memo::compile_revised`).
    pub revisions: BTreeMap<ClusterKey, u64>,
}

/// Every Service port and Gateway TCP/UDP listener port the fleet's intent wants an allocation
/// for.
pub fn wanted_ports(fleet: &FleetIntent) -> BTreeSet<PortKey> {
    let mut out = BTreeSet::new();
    for (ck, ci) in fleet {
        for ((ns, name), gw) in &ci.gateways {
            for l in &gw.listeners {
                let protocol = match l.protocol {
                    Some(Protocol::Tcp) => L4Protocol::Tcp,
                    Some(Protocol::Udp) => L4Protocol::Udp,
                    _ => continue,
                };
                out.insert(PortKey {
                    service: ServiceKey {
                        owner: Owner::Gateway,
                        cluster: ck.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    port: l.port,
                    protocol,
                });
            }
        }
        for ((ns, name), svc) in &ci.services {
            for p in &svc.ports {
                out.insert(PortKey {
                    service: ServiceKey {
                        owner: Owner::Service,
                        cluster: ck.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    port: p.port,
                    protocol: p.protocol,
                });
            }
        }
    }
    out
}

pub struct Fleet {
    config: Arc<Config>,
    store: Store,
    state: Mutex<State>,
    reserved: BTreeSet<SocketAddr>,
    reserved_ips: BTreeSet<IpAddr>,
    revision: watch::Sender<u64>,
    links: Mutex<Links>,
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
        // The data plane's own addresses, including every L4 pool address, are never endpoints.
        let mut reserved_ips: BTreeSet<IpAddr> = [config.data_plane.address].into();
        for p in &config.l4.pools {
            reserved_ips.extend(p.addresses.iter().copied());
            reserved_ips.extend(p.bind);
        }
        // Stored allocations are kept (rule 1 of `allocate`); ports of Services loaded without
        // one (a pool that was exhausted) get one now if the configuration allows.
        let l4 = allocate::allocate(
            &config.l4,
            &reserved,
            &store.load_allocations()?,
            &wanted_ports(&intent),
        );
        let links = Links::starting(intent.keys().cloned(), Instant::now());
        Ok(Self {
            config,
            store,
            state: Mutex::new(State {
                intent: Arc::new(intent),
                owners: loaded.owners,
                rejections: BTreeMap::new(),
                l4,
                revisions: BTreeMap::new(),
            }),
            reserved,
            reserved_ips,
            revision: watch::channel(0).0,
            links: Mutex::new(links),
        })
    }

    /// Wakes whenever the accepted state changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    pub fn view(&self) -> FleetView {
        let s = self.state.lock().expect("fleet state lock poisoned");
        let withdrawn = self
            .links
            .lock()
            .expect("fleet links lock poisoned")
            .withdrawn(
                self.config.disconnected_cluster_grace_period,
                Instant::now(),
            );
        FleetView {
            intent: s.intent.clone(),
            rejections: s.rejections.clone(),
            allocations: s.l4.allocations.clone(),
            allocation_failures: s.l4.failures.clone(),
            withdrawn,
            revisions: s.revisions.clone(),
        }
    }

    /// When the next disconnected cluster's grace period ends (the compile loop wakes then).
    pub fn next_withdrawal(&self) -> Option<Instant> {
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .next_withdrawal(
                self.config.disconnected_cluster_grace_period,
                Instant::now(),
            )
    }

    /// Records an open agent stream of `key` until the returned guard is dropped.
    pub fn link(self: &Arc<Self>, key: &ClusterKey) -> LinkGuard {
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .opened(key);
        LinkGuard {
            fleet: self.clone(),
            key: key.clone(),
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
            intent
                .services
                .retain(|(ns, n), _| sent.contains(&okey(Kind::Service, ns, n)));
            intent.l4_routes.retain(|k, _| sent.contains(k));
            intent
                .grpc_routes
                .retain(|(ns, n), _| sent.contains(&okey(Kind::GrpcRoute, ns, n)));
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
                Ok(Admitted::Service(svc)) => {
                    rejections.remove(&k);
                    intent.services.insert((k.namespace, k.name), svc);
                }
                Ok(Admitted::L4Route(r)) => {
                    rejections.remove(&k);
                    intent.l4_routes.insert(k, r);
                }
                Ok(Admitted::GrpcRoute(g)) => {
                    rejections.remove(&k);
                    intent.grpc_routes.insert((k.namespace, k.name), g);
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
            + intent.services.len()
            + intent.l4_routes.len()
            + intent.grpc_routes.len()
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
        let l4 = allocate::allocate(
            &self.config.l4,
            &self.reserved,
            &st.l4.allocations,
            &wanted_ports(fleet),
        );
        if let Err(e) = self
            .store
            .save_with_allocations(key, &fleet[key], &owners, &l4.allocations)
        {
            match previous {
                Some(p) => fleet.insert(key.clone(), p),
                None => fleet.remove(key),
            };
            return Err(e.into());
        }
        st.owners = owners;
        st.l4 = l4;
        *st.revisions.entry(key.clone()).or_default() += 1;
        st.rejections.insert(key.clone(), rejections);
        drop(state);
        if update.full_state {
            self.links
                .lock()
                .expect("fleet links lock poisoned")
                .full_state(key);
        }
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }
}

/// An open agent stream (see [`Fleet::link`]); dropping it starts the cluster's grace period
/// when it was the cluster's last stream.
pub struct LinkGuard {
    fleet: Arc<Fleet>,
    key: ClusterKey,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut l) = self.fleet.links.lock() {
            l.closed(&self.key, Instant::now());
        }
        self.fleet.revision.send_modify(|r| *r += 1);
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
        Kind::Service => {
            intent.services.remove(&id);
        }
        Kind::TcpRoute | Kind::UdpRoute => {
            intent.l4_routes.remove(k);
        }
        Kind::GrpcRoute => {
            intent.grpc_routes.remove(&id);
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
            )
            .chain(
                ci.grpc_routes
                    .values()
                    .flat_map(|r| r.hostnames.iter().cloned()),
            );
        for h in hosts {
            out.entry(h).or_insert_with(|| tenant.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn config(dir: &std::path::Path, ports: (u16, u16)) -> Arc<Config> {
        let yaml = format!(
            r#"
agentListen: 127.0.0.1:7443
xdsListen: 127.0.0.1:18000
pkiDir: {dir}/pki
storePath: {dir}/hub.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{{port: 80, bind: "127.0.0.1:18080"}}]
addressPools: [{{name: lo, addresses: [127.0.0.1]}}]
l4PortRange: {{from: {}, to: {}}}
tenants:
- name: a
  hostnames: ['*.a.example']
  clusters: [{{name: c1, endpointCidrs: [127.0.1.0/24], allowSpecialAddresses: true}}]
- name: b
  hostnames: ['*.b.example']
  clusters: [{{name: c1, endpointCidrs: [127.0.2.0/24], allowSpecialAddresses: true}}]
"#,
            ports.0,
            ports.1,
            dir = dir.display()
        );
        let raw: RawConfig = serde_yaml::from_str(&yaml).unwrap();
        Arc::new(raw.validate().unwrap())
    }

    fn service(name: &str, port: u32, endpoint: &str) -> pb::Object {
        pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::Service as i32,
                namespace: "default".into(),
                name: name.into(),
            }),
            generation: 1,
            creation_timestamp: String::new(),
            spec: Some(pb::object::Spec::LoadBalancerService(
                pb::LoadBalancerService {
                    ports: vec![pb::ServicePort {
                        name: String::new(),
                        protocol: "TCP".into(),
                        port,
                        endpoints: vec![pb::Endpoint {
                            address: endpoint.into(),
                            port: 30000,
                            ready: true,
                        }],
                        problem: None,
                    }],
                },
            )),
        }
    }

    fn full(upserts: Vec<pb::Object>) -> pb::Update {
        pb::Update {
            revision: 1,
            full_state: true,
            upserts,
            deletes: vec![],
        }
    }

    fn key(t: &str) -> ClusterKey {
        ClusterKey {
            tenant: t.into(),
            cluster: "c1".into(),
        }
    }

    fn addr_of(view: &FleetView, tenant: &str, name: &str) -> Option<SocketAddr> {
        view.allocations
            .iter()
            .find(|(k, _)| k.service.cluster.tenant == tenant && k.service.name == name)
            .map(|(_, a)| *a)
    }

    #[test]
    fn allocations_survive_a_restart_and_are_released_with_their_service() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let (a_db, b_db) = {
            let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
            fleet
                .apply(&key("a"), &full(vec![service("db", 9001, "127.0.1.10")]))
                .unwrap();
            fleet
                .apply(&key("b"), &full(vec![service("db", 9001, "127.0.2.10")]))
                .unwrap();
            let v = fleet.view();
            (
                addr_of(&v, "a", "db").unwrap(),
                addr_of(&v, "b", "db").unwrap(),
            )
        };
        assert_eq!(a_db, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(b_db, "127.0.0.1:9000".parse().unwrap());

        // Restart: reloaded from the store, and an agent reconnecting with its full state (in
        // another order) changes nothing.
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        assert_eq!(addr_of(&fleet.view(), "a", "db"), Some(a_db));
        assert_eq!(addr_of(&fleet.view(), "b", "db"), Some(b_db));
        fleet
            .apply(&key("b"), &full(vec![service("db", 9001, "127.0.2.10")]))
            .unwrap();
        assert_eq!(addr_of(&fleet.view(), "b", "db"), Some(b_db));

        // The pool is full: a third Service gets nothing, the others keep theirs.
        fleet
            .apply(
                &key("a"),
                &full(vec![
                    service("db", 9001, "127.0.1.10"),
                    service("more", 9001, "127.0.1.10"),
                ]),
            )
            .unwrap();
        let v = fleet.view();
        assert_eq!(addr_of(&v, "a", "more"), None);
        assert_eq!(
            v.allocation_failures.values().collect::<Vec<_>>(),
            vec![&AllocError::PoolExhausted]
        );
        assert_eq!(addr_of(&v, "a", "db"), Some(a_db));

        // Tenant b's Service is deleted: its port is released and the waiting one gets it.
        fleet.apply(&key("b"), &full(vec![])).unwrap();
        let v = fleet.view();
        assert_eq!(addr_of(&v, "b", "db"), None);
        assert_eq!(addr_of(&v, "a", "more"), Some(b_db));
        assert!(v.allocation_failures.is_empty());
        drop(fleet);
        let reopened = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        assert_eq!(addr_of(&reopened.view(), "a", "more"), Some(b_db));
    }

    #[test]
    fn every_applied_update_changes_the_revision_of_its_cluster_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        let revision = |t: &str| fleet.view().revisions.get(&key(t)).copied();
        fleet
            .apply(&key("a"), &full(vec![service("db", 9001, "127.0.1.10")]))
            .unwrap();
        fleet.apply(&key("b"), &full(vec![])).unwrap();
        let (a1, b1) = (revision("a"), revision("b"));
        assert!(a1.is_some() && b1.is_some());
        fleet
            .apply(&key("a"), &full(vec![service("db", 9002, "127.0.1.10")]))
            .unwrap();
        assert_ne!(revision("a"), a1);
        assert_eq!(revision("b"), b1);
    }

    #[test]
    fn pool_addresses_are_never_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw_cfg = (*config(dir.path(), (9000, 9001))).clone();
        // Give tenant a's cluster the pool's network too.
        raw_cfg
            .tenants
            .get_mut("a")
            .unwrap()
            .clusters
            .get_mut("c1")
            .unwrap()
            .endpoint_cidrs
            .push("127.0.0.0/24".parse().unwrap());
        let cfg = Arc::new(raw_cfg);
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet
            .apply(&key("a"), &full(vec![service("loop", 9000, "127.0.0.1")]))
            .unwrap();
        let v = fleet.view();
        let rejected = &v.rejections[&key("a")];
        assert_eq!(rejected.len(), 1);
        let status = rejected.values().next().unwrap();
        assert_eq!(status.conditions[0].reason, "EndpointNotAllowed");
        assert!(v.allocations.is_empty());
    }
}
