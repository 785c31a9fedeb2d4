//! The hub's accepted state of the whole fleet, and its only writer.
//!
//! Where it sits: `sync` hands each agent Update to `Fleet::apply`, which runs `admit` on every
//! object, keeps what passed, records why the rest failed, persists the result in `store`, and
//! bumps a revision that wakes the compile loop in `run`.
//!
//! A rejected object never removes the last accepted version of that object: what already
//! works keeps working, and the tenant sees the rejection in status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use fleetgate_observe::trace;
use fleetgate_proto::spoke::v1 as pb;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admit::{self, Policy, Reserved};
use crate::allocate::{self, AllocError, Allocations, PortKey};
use crate::config::{Config, Registration};
use crate::grace::Links;
use crate::model::{ClusterIntent, ClusterKey, FleetIntent, Kind, ObjectKey, ObjectStatus};
use crate::rate::UpdateRate;
use crate::store::{Change, Store, StoreError};

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
    /// The cluster sent Updates faster than its tenant's `updatesPerSecond`; nothing of this
    /// one was applied.
    #[error(
        "rate limit: {per_second} updates/s (burst {burst}) for this cluster, retry after {}ms; nothing of this update was applied: send the full state then, or ask the hub operator to raise quotas.tenants.{tenant}.updatesPerSecond",
        retry_after.as_millis().max(1)
    )]
    RateLimited {
        tenant: String,
        per_second: u32,
        burst: u32,
        retry_after: std::time::Duration,
    },
    /// Persisting failed; the update is not applied.
    #[error("the hub could not store the update, retry later: {0}")]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct State {
    /// Shared with the compile loop's views; `apply` copies it only while a view is held, and
    /// then the map alone (a pointer per cluster: each cluster's intent stays shared).
    intent: Arc<FleetIntent>,
    /// Per cluster: changes every time `apply` replaces the cluster's intent.
    revisions: BTreeMap<ClusterKey, u64>,
    owners: BTreeMap<String, String>,
    /// Per cluster: objects whose latest version was rejected, with their status.
    rejections: BTreeMap<ClusterKey, BTreeMap<ObjectKey, ObjectStatus>>,
    /// L4 allocations (durable) and the Service ports that could not get one.
    l4: allocate::Outcome,
    /// Per cluster: objects rejected only for their tenant's quota, as sent; admitted again
    /// with the cluster's next Update, in case room was made.
    over_quota: BTreeMap<ClusterKey, BTreeMap<ObjectKey, pb::Object>>,
    /// The hub's and the data plane's own addresses, from the configuration and this host's
    /// interfaces; replaced by `reconfigure` and `set_host_addresses`.
    reserved: Arc<Reserved>,
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
    /// The addresses no endpoint may lead to now; stored intent admitted before they changed
    /// is checked again against them when compiled (`run::compile_view`).
    pub reserved: Arc<Reserved>,
}

pub use crate::compile::l4::wanted_ports;

/// Why a cluster's certificate is refused although the TLS layer verified it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefusal {
    /// The cluster is not in the hub's configuration (never added, or removed).
    #[error(
        "cluster {0} is not registered at this hub (never added, or removed from its configuration); ask the hub operator to add it"
    )]
    NotRegistered(ClusterKey),
    /// The cluster is listed with `enabled: false`, or an operator disabled it (admin API).
    #[error(
        "cluster {0} is disabled at this hub (enabled: false in its configuration, or `fleetgate-hub admin clusters disable`); ask the hub operator to enable it"
    )]
    Disabled(ClusterKey),
    /// The certificate predates the cluster's removal or disabling.
    #[error(
        "the certificate of cluster {0} was issued before the cluster was removed or disabled at the hub and is no longer accepted; enroll again with a new bootstrap token (`fleetgate-hub token create`)"
    )]
    Revoked(ClusterKey),
}

/// Why an operator's action on a cluster was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// The cluster is not in the hub's configuration file.
    #[error(
        "cluster {0} is not registered at this hub: add it under tenants.<tenant>.clusters in the hub's configuration first"
    )]
    NotRegistered(ClusterKey),
    /// Persisting the change failed; nothing changed.
    #[error("the hub could not store the change, retry later: {0}")]
    Store(#[from] StoreError),
}

/// `config` with `disabled` added to the clusters it disables.
fn with_overrides(config: &Arc<Config>, disabled: &BTreeSet<ClusterKey>) -> Arc<Config> {
    if disabled.is_empty() {
        return config.clone();
    }
    let mut c = (**config).clone();
    c.identity
        .disabled_clusters
        .extend(disabled.iter().cloned());
    Arc::new(c)
}

pub struct Fleet {
    /// The running configuration: the file's ([`Fleet::file_config`]) with the clusters an
    /// operator disabled added to `identity.disabled_clusters`; `apply_config` is its only
    /// writer after `open`.
    config: watch::Sender<Arc<Config>>,
    /// The configuration as its file says, before the operator's overrides.
    file_config: Mutex<Arc<Config>>,
    /// Clusters an operator disabled through the admin API (durable, `crate::admin`).
    operator_disabled: Mutex<BTreeSet<ClusterKey>>,
    /// Per cluster: certificates issued at or before this Unix time are refused.
    revoked_before: Mutex<BTreeMap<ClusterKey, i64>>,
    store: Store,
    state: Mutex<State>,
    revision: watch::Sender<u64>,
    links: Mutex<Links>,
    update_rate: Mutex<UpdateRate>,
    /// When the first agent Update not yet taken by the compile loop was accepted
    /// ([`Fleet::take_accepted`]; for `crate::data_plane`'s update-to-ACK time).
    accepted_at: Mutex<Option<Instant>>,
    /// This hub among those sharing the store (random per process), in the links it announces.
    hub_id: String,
}

/// The MCP session secrets live in the fleet's store (`store/session_secrets.rs`).
impl crate::store::SecretStore for Fleet {
    fn load_ring(&self) -> Result<Option<crate::session_secret::SecretRing>, StoreError> {
        crate::store::SecretStore::load_ring(&self.store)
    }

    fn swap_ring(
        &self,
        expected: Option<&crate::session_secret::SecretRing>,
        next: &crate::session_secret::SecretRing,
    ) -> Result<crate::session_secret::SecretRing, StoreError> {
        crate::store::SecretStore::swap_ring(&self.store, expected, next)
    }
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
        let host = crate::host::interface_addresses().unwrap_or_else(|e| {
            tracing::warn!(
                "cannot read this host's interface addresses ({e}); only loopback is reserved for listeners bound to all interfaces: list the others in reservedAddresses"
            );
            BTreeSet::new()
        });
        let reserved = config.reserved(host);
        // Stored allocations are kept (rule 1 of `allocate`); ports of Services loaded without
        // one (a pool that was exhausted) get one now if the configuration allows.
        store.index_addresses()?;
        let stored = store.load_allocations()?;
        let l4 = allocate::allocate(
            &config.l4,
            &reserved.listeners,
            &stored,
            &wanted_ports(&intent),
        );
        // What changed is stored now, so that memory and store agree before the first write
        // (every write is guarded by what memory says is stored).
        store.save_allocations(Change::new(&stored, &l4.allocations))?;
        let links = Links::starting(intent.keys().cloned(), Instant::now());
        let operator_disabled = store.load_operator_disabled()?;
        let file_config = config;
        let config = with_overrides(&file_config, &operator_disabled);
        let revoked_before = store.reconcile_clusters(&config.active_clusters(), unix_now())?;
        Ok(Self {
            config: watch::channel(config).0,
            file_config: Mutex::new(file_config),
            operator_disabled: Mutex::new(operator_disabled),
            revoked_before: Mutex::new(revoked_before),
            store,
            state: Mutex::new(State {
                intent: Arc::new(intent),
                owners: loaded.owners,
                rejections: BTreeMap::new(),
                l4,
                over_quota: BTreeMap::new(),
                revisions: BTreeMap::new(),
                reserved: Arc::new(reserved),
            }),
            revision: watch::channel(0).0,
            links: Mutex::new(links),
            update_rate: Mutex::new(UpdateRate::default()),
            accepted_at: Mutex::new(None),
            hub_id: new_hub_id(),
        })
    }

    /// When the first agent Update accepted since the last call was accepted (the compile loop
    /// takes it before each view: a later Update is in the next one).
    pub fn take_accepted(&self) -> Option<Instant> {
        self.accepted_at
            .lock()
            .expect("fleet accepted_at lock poisoned")
            .take()
    }

    /// Wakes whenever the accepted state changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// The durable store, for the writers of its other tables (the MCP pins task).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn view(&self) -> FleetView {
        let config = self.config();
        let s = self.state.lock().expect("fleet state lock poisoned");
        let mut withdrawn = self
            .links
            .lock()
            .expect("fleet links lock poisoned")
            .withdrawn(config.disconnected_cluster_grace_period, Instant::now());
        // Disabled clusters keep their stored intent but are out of the data plane.
        withdrawn.extend(
            s.intent
                .keys()
                .filter(|k| config.registration(&k.tenant, &k.cluster) != Registration::Active)
                .cloned(),
        );
        FleetView {
            intent: s.intent.clone(),
            rejections: s.rejections.clone(),
            allocations: s.l4.allocations.clone(),
            allocation_failures: s.l4.failures.clone(),
            withdrawn,
            revisions: s.revisions.clone(),
            reserved: s.reserved.clone(),
        }
    }

    /// Clusters whose agent has a stream open to this hub now (what this hub's metrics count:
    /// summed over hubs, each agent once).
    pub fn connected(&self) -> BTreeSet<ClusterKey> {
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .connected()
    }

    /// Clusters whose agent has a stream open to any hub sharing the store (what operators
    /// see on the dashboard and the admin API, whichever hub serves them).
    pub fn connected_anywhere(&self) -> BTreeSet<ClusterKey> {
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .connected_anywhere()
    }

    /// When the next disconnected cluster's grace period ends (the compile loop wakes then).
    pub fn next_withdrawal(&self) -> Option<Instant> {
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .next_withdrawal(
                self.config().disconnected_cluster_grace_period,
                Instant::now(),
            )
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Wakes whenever the configuration was reloaded (sync streams re-check their cluster).
    pub fn subscribe_config(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    /// Whether a certificate of `key` issued at `issued_at` (Unix seconds) may be used now:
    /// the cluster is registered and enabled, and was not removed or disabled since the
    /// certificate was issued.
    pub fn check_identity(&self, key: &ClusterKey, issued_at: i64) -> Result<(), IdentityRefusal> {
        match self.config().registration(&key.tenant, &key.cluster) {
            Registration::Unknown => return Err(IdentityRefusal::NotRegistered(key.clone())),
            Registration::Disabled => return Err(IdentityRefusal::Disabled(key.clone())),
            Registration::Active => {}
        }
        let revoked = self
            .revoked_before
            .lock()
            .expect("fleet revocation lock poisoned")
            .get(key)
            .copied();
        match revoked {
            Some(before) if issued_at <= before => Err(IdentityRefusal::Revoked(key.clone())),
            _ => Ok(()),
        }
    }

    /// Records a bootstrap token as used; `Ok(false)`: it already was.
    pub fn consume_token(&self, id: &str, expires: u64) -> Result<bool, StoreError> {
        self.store.consume_token(id, expires, unix_now() as u64)
    }

    /// Switches to a reloaded configuration. Clusters no longer active have their certificates
    /// revoked (durably); clusters no longer listed lose their intent, hostname claims and L4
    /// allocations; disabled ones are withdrawn from the data plane (see [`Fleet::view`]).
    /// Open streams notice through [`Fleet::subscribe_config`]. The clusters an operator
    /// disabled stay disabled whatever the file says.
    pub fn reconfigure(&self, config: Arc<Config>) -> Result<(), StoreError> {
        let mut file = self
            .file_config
            .lock()
            .expect("fleet file config lock poisoned");
        *file = config;
        let disabled = self
            .operator_disabled
            .lock()
            .expect("fleet operator lock poisoned");
        self.apply_config(with_overrides(&file, &disabled))
    }

    /// The configuration as its file says (without the operator's overrides).
    pub fn file_config(&self) -> Arc<Config> {
        self.file_config
            .lock()
            .expect("fleet file config lock poisoned")
            .clone()
    }

    /// The clusters an operator disabled (admin API).
    pub fn operator_disabled(&self) -> BTreeSet<ClusterKey> {
        self.operator_disabled
            .lock()
            .expect("fleet operator lock poisoned")
            .clone()
    }

    /// An operator disables (`true`) or enables a registered cluster, durably. Disabling revokes
    /// its certificates, closes its streams and withdraws it from the data plane, as
    /// `enabled: false` in the file does; enabling lifts only the operator's override (a cluster
    /// the file disables stays disabled). Returns whether anything changed.
    pub fn set_operator_disabled(
        &self,
        key: &ClusterKey,
        disabled: bool,
    ) -> Result<bool, AdminRefusal> {
        let file = self
            .file_config
            .lock()
            .expect("fleet file config lock poisoned");
        if file.registration(&key.tenant, &key.cluster) == Registration::Unknown {
            return Err(AdminRefusal::NotRegistered(key.clone()));
        }
        let mut set = self
            .operator_disabled
            .lock()
            .expect("fleet operator lock poisoned");
        if set.contains(key) == disabled {
            return Ok(false);
        }
        self.store
            .set_operator_disabled(key, disabled, unix_now())?;
        if disabled {
            set.insert(key.clone());
        } else {
            set.remove(key);
        }
        self.apply_config(with_overrides(&file, &set))?;
        Ok(true)
    }

    /// Revokes every certificate issued to `key` until now (durably) and closes its streams;
    /// the cluster stays registered, its agent must enroll again with a new bootstrap token.
    pub fn revoke(&self, key: &ClusterKey) -> Result<(), AdminRefusal> {
        if self.config().registration(&key.tenant, &key.cluster) == Registration::Unknown {
            return Err(AdminRefusal::NotRegistered(key.clone()));
        }
        let revoked = self.store.revoke_cluster(key, unix_now())?;
        *self
            .revoked_before
            .lock()
            .expect("fleet revocation lock poisoned") = revoked;
        // Open streams re-check their certificate when the configuration channel changes.
        self.config.send_modify(|_| {});
        tracing::warn!(cluster = %key, "cluster's certificates revoked by an operator");
        Ok(())
    }

    /// The hostnames tenants own now (hostname or wildcard -> tenant).
    pub fn hostname_owners(&self) -> BTreeMap<String, String> {
        self.state
            .lock()
            .expect("fleet state lock poisoned")
            .owners
            .clone()
    }

    /// Applies a configuration with the operator's overrides already in it.
    fn apply_config(&self, config: Arc<Config>) -> Result<(), StoreError> {
        let revoked = self
            .store
            .reconcile_clusters(&config.active_clusters(), unix_now())?;
        *self
            .revoked_before
            .lock()
            .expect("fleet revocation lock poisoned") = revoked;
        {
            let mut state = self.state.lock().expect("fleet state lock poisoned");
            let gone: Vec<ClusterKey> = state
                .intent
                .keys()
                .filter(|k| config.registration(&k.tenant, &k.cluster) == Registration::Unknown)
                .cloned()
                .collect();
            for key in gone {
                let st = &mut *state;
                let fleet = Arc::make_mut(&mut st.intent);
                fleet.remove(&key);
                let (before, after) = claims_of(&st.owners, &key.tenant, fleet);
                let l4 = allocate::allocate(
                    &config.l4,
                    &st.reserved.listeners,
                    &st.l4.allocations,
                    &wanted_ports(fleet),
                );
                self.store.save_with_allocations(
                    &key,
                    &ClusterIntent::default(),
                    Change::new(&before, &after),
                    Change::new(&st.l4.allocations, &l4.allocations),
                )?;
                replace_claims(&mut st.owners, before, after);
                st.l4 = l4;
                st.rejections.remove(&key);
                tracing::info!(cluster = %key, "cluster removed from the configuration: its intent is withdrawn");
            }
            state.reserved = Arc::new(config.reserved(state.reserved.host.clone()));
            // Under the state lock, so that `set_host_addresses` never pairs the new host
            // addresses with the previous configuration.
            self.config.send_replace(config);
        }
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }

    /// Takes this host's interface addresses as they are now (read at start, at reload and when
    /// they change, see `reload::run`): listeners bound to all interfaces are reserved on each.
    /// Returns whether they changed; stored endpoints that now lead to the hub or the data
    /// plane leave the data plane at the next compile.
    pub fn set_host_addresses(&self, host: BTreeSet<IpAddr>) -> bool {
        {
            let mut state = self.state.lock().expect("fleet state lock poisoned");
            if state.reserved.host == host {
                return false;
            }
            tracing::info!(
                addresses = ?host,
                "this host's interface addresses changed: reserved for the hub's and data plane's listeners bound to all interfaces"
            );
            state.reserved = Arc::new(self.config().reserved(host));
        }
        self.revision.send_modify(|r| *r += 1);
        true
    }

    /// Records an open agent stream of `key` until the returned guard is dropped.
    pub fn link(self: &Arc<Self>, key: &ClusterKey) -> LinkGuard {
        let first = self
            .links
            .lock()
            .expect("fleet links lock poisoned")
            .opened(key);
        if first && let Err(e) = self.store.announce_link(key, &self.hub_id) {
            tracing::warn!(cluster = %key, error = %e, "cannot tell the other hubs that this cluster's agent is here; they may withdraw it after its grace period");
        }
        LinkGuard {
            fleet: self.clone(),
            key: key.clone(),
        }
    }

    /// Whether a tenant/cluster pair is registered.
    pub fn is_registered(&self, key: &ClusterKey) -> bool {
        self.config()
            .tenants
            .get(&key.tenant)
            .is_some_and(|t| t.clusters.contains_key(&key.cluster))
    }

    /// Replaces the hostname claims and L4 allocations held in memory with the stored ones
    /// (after another hub sharing the store changed them). Kept as they were if the store
    /// cannot be read; the next write then conflicts again and tries again.
    fn reread_claims(&self, st: &mut State) {
        match (self.store.load_owners(), self.store.load_allocations()) {
            (Ok(owners), Ok(allocations)) => {
                st.owners = owners;
                st.l4.allocations = allocations;
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot read the hostname claims and allocations again");
            }
        }
    }

    /// Applies one agent Update for `key` (the identity from its certificate).
    pub fn apply(&self, key: &ClusterKey, update: &pb::Update) -> Result<(), UpdateError> {
        self.apply_traced(key, update, None)
    }

    /// [`Fleet::apply`], with spans `hub.admit` (admission and limits) and `hub.store` (the
    /// durable write) under `parent` when traces are exported (docs/operations.md, "Traces").
    pub fn apply_traced(
        &self,
        key: &ClusterKey,
        update: &pb::Update,
        parent: Option<&trace::TraceContext>,
    ) -> Result<(), UpdateError> {
        let mut admit_span = trace::span(
            "hub.admit",
            trace::Kind::Internal,
            trace::Start {
                parent,
                ..Default::default()
            },
            || cluster_attributes(key),
        );
        let admitted = self.admit_and_store(key, update, &mut admit_span);
        if let Err(e) = &admitted {
            admit_span.fail(&e.to_string());
        }
        admitted
    }

    fn admit_and_store(
        &self,
        key: &ClusterKey,
        update: &pb::Update,
        admit_span: &mut trace::Span,
    ) -> Result<(), UpdateError> {
        let config = self.config();
        if config.registration(&key.tenant, &key.cluster) == Registration::Disabled {
            return Err(UpdateError::UnknownCluster(key.clone()));
        }
        let tenant = config
            .tenants
            .get(&key.tenant)
            .ok_or_else(|| UpdateError::UnknownCluster(key.clone()))?;
        let cluster = tenant
            .clusters
            .get(&key.cluster)
            .ok_or_else(|| UpdateError::UnknownCluster(key.clone()))?;
        let quota = config.quotas.of(&key.tenant);
        self.update_rate
            .lock()
            .expect("fleet update rate lock poisoned")
            .take(
                key,
                quota.updates_per_second,
                quota.update_burst,
                Instant::now(),
            )
            .map_err(|retry_after| UpdateError::RateLimited {
                tenant: key.tenant.clone(),
                per_second: quota.updates_per_second,
                burst: quota.update_burst,
                retry_after,
            })?;

        let started = std::time::Instant::now();
        let mut state = self.state.lock().expect("fleet state lock poisoned");
        let locked_us = started.elapsed().as_micros() as u64;
        // This cluster's intent alone is copied (the others stay shared with the views).
        let mut intent = state
            .intent
            .get(key)
            .map(|ci| ClusterIntent::clone(ci))
            .unwrap_or_default();
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
            intent
                .listener_sets
                .retain(|(ns, n), _| sent.contains(&okey(Kind::ListenerSet, ns, n)));
            intent
                .ai_backends
                .retain(|(ns, n), _| sent.contains(&okey(Kind::AiBackend, ns, n)));
            intent
                .virtual_keys
                .retain(|(ns, n), _| sent.contains(&okey(Kind::VirtualKey, ns, n)));
            rejections.retain(|k, _| sent.contains(k));
        }
        let mut deleted = BTreeSet::new();
        for d in &update.deletes {
            if let Ok(k) = admit::object_key(d) {
                remove(&mut intent, &k);
                rejections.remove(&k);
                deleted.insert(k);
            }
        }
        // Objects waiting for room under the quota are admitted again, unless this update
        // sends them anew, deletes them or (full state) no longer has them.
        let sent_now: BTreeSet<ObjectKey> = update
            .upserts
            .iter()
            .filter_map(|o| o.r#ref.as_ref().and_then(|r| admit::object_key(r).ok()))
            .collect();
        // Only a deletion or a change of an accepted object can make room; an update that only
        // adds objects (a flood) does not re-admit the waiting ones.
        let mut still_waiting: BTreeMap<ObjectKey, pb::Object> = if update.full_state {
            BTreeMap::new()
        } else {
            state.over_quota.get(key).cloned().unwrap_or_default()
        };
        still_waiting.retain(|k, _| !sent_now.contains(k) && !deleted.contains(k));
        let accepted_before = state.intent.get(key);
        let room_made = !deleted.is_empty()
            || sent_now
                .iter()
                .any(|k| accepted_before.is_some_and(|ci| holds(ci, k)));
        let waiting: Vec<pb::Object> = if room_made {
            std::mem::take(&mut still_waiting).into_values().collect()
        } else {
            Vec::new()
        };
        // Claims of other tenants, plus this tenant's claims from its other clusters.
        let reserved = state.reserved.clone();
        let policy = Policy {
            tenant,
            cluster,
            limits: &config.limits,
            owners: &state.owners,
            reserved: &reserved,
        };
        let mut wire: BTreeMap<ObjectKey, &pb::Object> = BTreeMap::new();
        for obj in update.upserts.iter().chain(&waiting) {
            let Some(r) = &obj.r#ref else { continue };
            let k = match admit::object_key(r) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(cluster = %key, reason = e.reason, "dropping object: {}", e.message);
                    continue;
                }
            };
            wire.insert(k.clone(), obj);
            match admit::admit(obj, &policy) {
                Ok(admitted) => {
                    rejections.remove(&k);
                    admitted.insert_into(k, &mut intent);
                }
                Err(e) => {
                    tracing::info!(cluster = %key, object = ?k, reason = e.reason, "rejected: {}", e.message);
                    rejections.insert(k.clone(), admit::rejected_status(&k, obj, &e));
                }
            }
        }
        // A rejected ListenerSet whose Gateway does not allow its namespace is told that first
        // (`NotAllowed`): the Gateway's answer comes before what is wrong inside the set
        // (upstream `ListenerSetAllowedNamespaceSame`: a set in a foreign namespace whose
        // listener hostname is not even valid).
        for (k, st) in rejections
            .iter_mut()
            .filter(|(k, _)| k.kind == Kind::ListenerSet)
        {
            let Some(pb::object::Spec::ListenerSet(s)) = wire.get(k).and_then(|o| o.spec.as_ref())
            else {
                continue;
            };
            let parent = (s.parent_namespace.clone(), s.parent_name.clone());
            let Some(gw) = intent.gateways.get(&parent) else {
                continue;
            };
            if let Err(msg) = crate::compile::listener_set::allowed(gw, &k.namespace) {
                st.conditions = vec![
                    crate::model::Condition::new("Accepted", false, "NotAllowed", &msg),
                    crate::model::Condition::new("Programmed", false, "NotAllowed", msg),
                ];
            }
        }
        // Quotas count the tenant's objects in all its clusters.
        let mut others = admit::quota::Usage::default();
        for (ck, ci) in state.intent.iter() {
            if ck.tenant == key.tenant && ck != key {
                others.add_cluster(&ck.cluster, ci);
            }
        }
        let empty = ClusterIntent::default();
        let over = admit::quota::enforce(
            quota,
            &key.tenant,
            &others,
            &key.cluster,
            state.intent.get(key).map_or(&empty, |ci| &**ci),
            &mut intent,
        );
        let mut over_quota = still_waiting;
        for (k, e) in over {
            let Some(obj) = wire.get(&k) else { continue };
            tracing::info!(cluster = %key, object = ?k, reason = e.reason, "rejected: {}", e.message);
            rejections.insert(k.clone(), admit::rejected_status(&k, obj, &e));
            over_quota.insert(k, (*obj).clone());
        }
        let count = intent.gateways.len()
            + intent.http_routes.len()
            + intent.tls_routes.len()
            + intent.services.len()
            + intent.l4_routes.len()
            + intent.grpc_routes.len()
            + intent.listener_sets.len()
            + intent.ai_backends.len()
            + intent.virtual_keys.len()
            + rejections.len();
        if count > config.limits.max_objects_per_cluster {
            return Err(UpdateError::TooManyObjects {
                count,
                limit: config.limits.max_objects_per_cluster,
            });
        }

        // In place (a copy of the map only if the compile loop still holds a view: the other
        // clusters' intents stay shared), undone if the store refuses.
        admit_span.set(|| {
            vec![
                trace::Attribute::new("fleetgate.objects", count as i64),
                trace::Attribute::new("fleetgate.rejected", rejections.len() as i64),
            ]
        });
        let mut store_span = trace::span(
            "hub.store",
            trace::Kind::Internal,
            trace::Start {
                parent: admit_span.context().as_ref(),
                ..Default::default()
            },
            || cluster_attributes(key),
        );
        let admitted_us = started.elapsed().as_micros() as u64;
        let st = &mut *state;
        let fleet = Arc::make_mut(&mut st.intent);
        let previous = fleet.insert(key.clone(), Arc::new(intent));
        let (claimed_before, claimed_after) = claims_of(&st.owners, &key.tenant, fleet);
        let l4 = allocate::allocate(
            &config.l4,
            &st.reserved.listeners,
            &st.l4.allocations,
            &wanted_ports(fleet),
        );
        let claimed_us = started.elapsed().as_micros() as u64;
        let saved = self.store.save_with_allocations(
            key,
            &fleet[key],
            Change::new(&claimed_before, &claimed_after),
            Change::new(&st.l4.allocations, &l4.allocations),
        );
        tracing::debug!(
            cluster = %key,
            locked_us,
            admitted_us,
            claimed_us,
            stored_us = started.elapsed().as_micros() as u64,
            "apply steps (cumulative)"
        );
        if let Err(e) = saved {
            match previous {
                Some(p) => fleet.insert(key.clone(), p),
                None => fleet.remove(key),
            };
            if matches!(e, StoreError::Conflict { .. }) {
                // Another hub sharing the store took a claim or an address first: read them
                // again, so that the agent's retry is admitted against what holds now.
                self.reread_claims(st);
            }
            store_span.fail(&e.to_string());
            return Err(e.into());
        }
        store_span.end();
        replace_claims(&mut st.owners, claimed_before, claimed_after);
        st.l4 = l4;
        *st.revisions.entry(key.clone()).or_default() += 1;
        st.rejections.insert(key.clone(), rejections);
        st.over_quota.insert(key.clone(), over_quota);
        drop(state);
        self.accepted_at
            .lock()
            .expect("fleet accepted_at lock poisoned")
            .get_or_insert_with(Instant::now);
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
        let last = match self.fleet.links.lock() {
            Ok(mut l) => l.closed(&self.key, Instant::now()),
            Err(_) => false,
        };
        if last && let Err(e) = self.fleet.store.retract_link(&self.key, &self.fleet.hub_id) {
            tracing::warn!(cluster = %self.key, error = %e, "cannot retract this hub's link with the cluster; it ends with the hub's lease");
        }
        self.fleet.revision.send_modify(|r| *r += 1);
    }
}

/// 16 random hex digits naming this hub process among those sharing a store.
fn new_hub_id() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// The bounded attributes naming a cluster on a span.
pub fn cluster_attributes(key: &ClusterKey) -> Vec<trace::Attribute> {
    vec![
        trace::Attribute::new("fleetgate.tenant", trace::bounded(&key.tenant)),
        trace::Attribute::new("fleetgate.cluster", trace::bounded(&key.cluster)),
    ]
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn okey(kind: Kind, ns: &str, n: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: ns.to_string(),
        name: n.to_string(),
    }
}

/// Whether `intent` holds the object `k`.
fn holds(intent: &ClusterIntent, k: &ObjectKey) -> bool {
    let id = (k.namespace.clone(), k.name.clone());
    match k.kind {
        Kind::Gateway => intent.gateways.contains_key(&id),
        Kind::HttpRoute => intent.http_routes.contains_key(&id),
        Kind::TlsRoute => intent.tls_routes.contains_key(&id),
        Kind::Service => intent.services.contains_key(&id),
        Kind::TcpRoute | Kind::UdpRoute => intent.l4_routes.contains_key(k),
        Kind::GrpcRoute => intent.grpc_routes.contains_key(&id),
        Kind::ListenerSet => intent.listener_sets.contains_key(&id),
        Kind::AiBackend => intent.ai_backends.contains_key(&id),
        Kind::VirtualKey => intent.virtual_keys.contains_key(&id),
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
        Kind::ListenerSet => {
            intent.listener_sets.remove(&id);
        }
        Kind::AiBackend => {
            intent.ai_backends.remove(&id);
        }
        Kind::VirtualKey => {
            intent.virtual_keys.remove(&id);
        }
    }
}

/// The hostname claims of `tenant` before and after its intent changed: the tenant's claims
/// become exactly the hostnames its accepted objects use in any of its clusters (each mapped to
/// `tenant`), except those another tenant holds. Only this tenant's rows are returned, so the
/// store writes and the update of `owners` ([`replace_claims`]) touch them alone, not every
/// hostname of the fleet.
pub fn claims_of(
    owners: &BTreeMap<String, String>,
    tenant: &str,
    fleet: &FleetIntent,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let before: BTreeMap<String, String> = owners
        .iter()
        .filter(|(_, t)| t.as_str() == tenant)
        .map(|(h, t)| (h.clone(), t.clone()))
        .collect();
    let mut after = BTreeMap::new();
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
            )
            .chain(
                ci.listener_sets
                    .values()
                    .flat_map(|s| s.listeners.iter().filter_map(|l| l.hostname.clone())),
            );
        for h in hosts {
            // A hostname another tenant holds stays theirs.
            if owners.get(&h).is_none_or(|t| t == tenant) {
                after.entry(h).or_insert_with(|| tenant.to_string());
            }
        }
    }
    (before, after)
}

/// Replaces in `owners` a tenant's claims `before` by `after` (from [`claims_of`]).
pub fn replace_claims(
    owners: &mut BTreeMap<String, String>,
    before: BTreeMap<String, String>,
    after: BTreeMap<String, String>,
) {
    for h in before.into_keys() {
        if !after.contains_key(&h) {
            owners.remove(&h);
        }
    }
    owners.extend(after);
}

#[cfg(test)]
mod ai_tests;
/// Intent, claims and links other hubs sharing the store wrote (`fleet/shared.rs`).
mod shared;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use std::net::SocketAddr;

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
            traceparent: String::new(),
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

    /// While the compile loop holds a view, an Update of one cluster copies the fleet's map of
    /// clusters, not the other clusters' intent: they stay the very same (shared) values, and
    /// the compiler's memo recompiles the changed cluster alone.
    #[test]
    fn an_update_under_a_held_view_shares_every_other_clusters_intent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet
            .apply(&key("a"), &full(vec![service("db", 9001, "127.0.1.10")]))
            .unwrap();
        fleet
            .apply(
                &key("b"),
                &full(vec![tenant_route("b", "r", "2026-01-01T00:00:00Z")]),
            )
            .unwrap();
        let mut memo = crate::run::CompileMemo::default();
        let held = fleet.view();
        crate::run::compile_view_with(&mut memo, &held, &cfg, &Default::default());
        fleet
            .apply(&key("a"), &full(vec![service("db", 9002, "127.0.1.10")]))
            .unwrap();
        let now = fleet.view();
        assert!(
            !Arc::ptr_eq(&held.intent, &now.intent),
            "the held view is unchanged"
        );
        assert!(Arc::ptr_eq(&held.intent[&key("b")], &now.intent[&key("b")]));
        assert!(!Arc::ptr_eq(
            &held.intent[&key("a")],
            &now.intent[&key("a")]
        ));
        assert_eq!(held.intent[&key("a")].services.len(), 1);
        crate::run::compile_view_with(&mut memo, &now, &cfg, &Default::default());
        assert_eq!(
            memo.last_built(),
            1,
            "only the changed cluster is recompiled"
        );
    }

    /// Upstream `ListenerSetAllowedNamespaceSame`: a ListenerSet from a namespace its Gateway
    /// does not allow is `NotAllowed`, also when admission rejected it for its listeners (here
    /// a hostname that is not fully qualified); one the Gateway allows keeps admission's reason.
    #[test]
    fn a_rejected_listener_set_its_gateway_does_not_allow_is_not_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        let listener = |name: &str, host: &str| pb::Listener {
            name: name.into(),
            protocol: "HTTP".into(),
            port: 80,
            hostname: host.into(),
            ..Default::default()
        };
        let obj = |kind: pb::Kind, ns: &str, name: &str, spec| pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: kind as i32,
                namespace: ns.into(),
                name: name.into(),
            }),
            generation: 1,
            creation_timestamp: String::new(),
            spec: Some(spec),
        };
        let set = |ns: &str| {
            obj(
                pb::Kind::ListenerSet,
                ns,
                "ls",
                pb::object::Spec::ListenerSet(pb::ListenerSet {
                    parent_namespace: "infra".into(),
                    parent_name: "gw".into(),
                    listeners: vec![listener("l", "not-qualified")],
                }),
            )
        };
        let gw = obj(
            pb::Kind::Gateway,
            "infra",
            "gw",
            pb::object::Spec::Gateway(pb::Gateway {
                gateway_class_name: "fleetgate".into(),
                listeners: vec![listener("http", "www.a.example")],
                allowed_listeners: Some(pb::AllowedListeners {
                    from: "Same".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        // The set comes before its Gateway in the update: the order does not matter.
        fleet
            .apply(&key("a"), &full(vec![set("other"), set("infra"), gw]))
            .unwrap();
        let v = fleet.view();
        let reason = |ns: &str| {
            let st = v.rejections[&key("a")]
                .iter()
                .find(|(k, _)| k.kind == Kind::ListenerSet && k.namespace == ns)
                .map(|(_, s)| s.clone())
                .unwrap();
            st.conditions
                .iter()
                .find(|c| c.type_ == "Accepted")
                .map(|c| (c.status, c.reason.clone()))
                .unwrap()
        };
        assert_eq!(reason("other"), (false, "NotAllowed".to_string()));
        assert_ne!(reason("infra").1, "NotAllowed");
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

    fn http_route(name: &str, ts: &str) -> pb::Object {
        tenant_route("a", name, ts)
    }

    fn tenant_route(tenant: &str, name: &str, ts: &str) -> pb::Object {
        pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::HttpRoute as i32,
                namespace: "default".into(),
                name: name.into(),
            }),
            generation: 1,
            creation_timestamp: ts.into(),
            spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
                parent_refs: vec![pb::ParentRef {
                    namespace: "default".into(),
                    name: "gw".into(),
                    ..Default::default()
                }],
                hostnames: vec![format!("{name}.{tenant}.example")],
                rules: vec![],
            })),
        }
    }

    fn with_quotas(dir: &std::path::Path, yaml: &str) -> Arc<Config> {
        let mut cfg = (*config(dir, (9000, 9001))).clone();
        let raw: crate::quotas::RawQuotas = serde_yaml::from_str(yaml).unwrap();
        let mut errs = vec![];
        cfg.quotas = raw.validate(&["a".to_string(), "b".to_string()].into(), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        Arc::new(cfg)
    }

    fn accepted_routes(view: &FleetView, tenant: &str) -> Vec<String> {
        view.intent
            .get(&key(tenant))
            .map(|ci| ci.http_routes.keys().map(|(_, n)| n.clone()).collect())
            .unwrap_or_default()
    }

    fn update(revision: u64, upserts: Vec<pb::Object>, deletes: Vec<pb::ObjectRef>) -> pb::Update {
        pb::Update {
            traceparent: String::new(),
            revision,
            full_state: false,
            upserts,
            deletes,
        }
    }

    #[test]
    fn over_quota_routes_wait_with_a_status_and_get_in_when_room_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_quotas(dir.path(), "tenants: {a: {routes: 2}}");
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        let t = "2026-01-01T00:00:0";
        fleet
            .apply(
                &key("a"),
                &full(vec![
                    http_route("r1", &format!("{t}1Z")),
                    http_route("r2", &format!("{t}2Z")),
                ]),
            )
            .unwrap();
        // A third route, older than both by its timestamp, does not evict them.
        fleet
            .apply(
                &key("a"),
                &update(2, vec![http_route("r0", &format!("{t}0Z"))], vec![]),
            )
            .unwrap();
        // Tenant b is not limited by a's quota.
        fleet
            .apply(
                &key("b"),
                &full(vec![
                    tenant_route("b", "r1", &format!("{t}1Z")),
                    tenant_route("b", "r2", &format!("{t}2Z")),
                    tenant_route("b", "r3", &format!("{t}3Z")),
                ]),
            )
            .unwrap();
        let v = fleet.view();
        assert_eq!(accepted_routes(&v, "a"), ["r1", "r2"]);
        assert_eq!(accepted_routes(&v, "b").len(), 3);
        let status = &v.rejections[&key("a")]
            .values()
            .find(|s| s.key.name == "r0")
            .unwrap();
        let accepted = &status.parents[0].conditions[0];
        assert_eq!(accepted.reason, admit::quota::REASON);
        assert!(
            accepted.message.contains("at most 2 routes")
                && accepted.message.contains("quotas.tenants.a.routes"),
            "{}",
            accepted.message
        );

        // Another new route: both wait, r0 keeps its status.
        fleet
            .apply(
                &key("a"),
                &update(3, vec![http_route("r9", &format!("{t}9Z"))], vec![]),
            )
            .unwrap();
        let v = fleet.view();
        assert_eq!(accepted_routes(&v, "a"), ["r1", "r2"]);
        let waiting: Vec<_> = v.rejections[&key("a")]
            .keys()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(waiting, ["r0", "r9"]);

        // r1 is deleted: r0 (the oldest waiting) gets in with the next update, without being
        // sent again; r9 keeps waiting.
        fleet
            .apply(
                &key("a"),
                &update(
                    4,
                    vec![],
                    vec![pb::ObjectRef {
                        kind: pb::Kind::HttpRoute as i32,
                        namespace: "default".into(),
                        name: "r1".into(),
                    }],
                ),
            )
            .unwrap();
        let v = fleet.view();
        assert_eq!(accepted_routes(&v, "a"), ["r0", "r2"]);
        let waiting: Vec<_> = v.rejections[&key("a")]
            .keys()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(waiting, ["r9"]);
    }

    #[test]
    fn the_data_plane_admin_port_is_never_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = (*config(dir.path(), (9000, 9001))).clone();
        cfg.data_plane_admin = Some("127.0.0.1:9001".parse().unwrap());
        let cfg = Arc::new(cfg);
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        // Without the admin port, port 9001 would be taken as asked (see the first test).
        fleet
            .apply(&key("a"), &full(vec![service("db", 9001, "127.0.1.10")]))
            .unwrap();
        assert_eq!(
            addr_of(&fleet.view(), "a", "db"),
            Some("127.0.0.1:9000".parse().unwrap())
        );
    }

    #[test]
    fn updates_past_the_rate_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = with_quotas(
            dir.path(),
            "tenants: {a: {updatesPerSecond: 1, updateBurst: 2}}",
        );
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet.apply(&key("a"), &full(vec![])).unwrap();
        fleet
            .apply(&key("a"), &full(vec![http_route("r1", "")]))
            .unwrap();
        let err = fleet
            .apply(&key("a"), &full(vec![http_route("r2", "")]))
            .unwrap_err();
        assert!(matches!(err, UpdateError::RateLimited { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("rate limit: 1 updates/s (burst 2)") && msg.contains("retry after"),
            "{msg}"
        );
        // Nothing of the refused update was applied; tenant b has its own bucket.
        assert_eq!(accepted_routes(&fleet.view(), "a"), ["r1"]);
        fleet.apply(&key("b"), &full(vec![])).unwrap();
    }

    #[test]
    fn a_disabled_cluster_is_withdrawn_and_a_removed_one_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet
            .apply(&key("a"), &full(vec![service("db", 9001, "127.0.1.10")]))
            .unwrap();
        fleet
            .apply(&key("b"), &full(vec![service("db", 9001, "127.0.2.10")]))
            .unwrap();
        assert!(fleet.check_identity(&key("b"), unix_now()).is_ok());

        // b disabled: out of the data plane, intent kept, certificates refused.
        let mut disabled = (*cfg).clone();
        disabled.identity.disabled_clusters.insert(key("b"));
        fleet.reconfigure(Arc::new(disabled)).unwrap();
        let v = fleet.view();
        assert_eq!(v.withdrawn, [key("b")].into());
        assert!(v.intent.contains_key(&key("b")));
        assert_eq!(
            fleet.check_identity(&key("b"), unix_now()),
            Err(IdentityRefusal::Disabled(key("b")))
        );
        assert!(matches!(
            fleet.apply(&key("b"), &full(vec![])),
            Err(UpdateError::UnknownCluster(_))
        ));

        // b removed: its intent and L4 allocation are gone, also from the store.
        let mut removed = (*cfg).clone();
        removed.tenants.remove("b");
        fleet.reconfigure(Arc::new(removed.clone())).unwrap();
        let v = fleet.view();
        assert!(!v.intent.contains_key(&key("b")));
        assert_eq!(addr_of(&v, "b", "db"), None);
        assert!(addr_of(&v, "a", "db").is_some());
        assert_eq!(
            fleet.check_identity(&key("b"), unix_now()),
            Err(IdentityRefusal::NotRegistered(key("b")))
        );
        drop(fleet);
        let reopened = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        assert!(!reopened.view().intent.contains_key(&key("b")));

        // Added back: a certificate issued before the removal stays refused.
        let before = unix_now() - 5;
        assert_eq!(
            reopened.check_identity(&key("b"), before),
            Err(IdentityRefusal::Revoked(key("b")))
        );
        assert!(reopened.check_identity(&key("b"), unix_now() + 5).is_ok());
    }

    /// Hostname claims: hostname -> tenant.
    fn claimed(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(h, t)| (h.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_tenants_claims_change_alone_and_never_take_another_tenants_hostname() {
        let owners = claimed(&[
            ("old.a.example", "a"),
            ("kept.a.example", "a"),
            ("b.example", "b"),
        ]);
        let mut fleet = FleetIntent::new();
        for (ck, routes) in [
            (
                key("a"),
                vec!["kept.a.example", "new.a.example", "b.example"],
            ),
            (key("b"), vec!["b.example"]),
        ] {
            let mut ci = ClusterIntent::default();
            for (i, h) in routes.iter().enumerate() {
                ci.http_routes.insert(
                    ("default".into(), format!("r{i}")),
                    crate::model::HttpRoute {
                        meta: crate::model::Meta {
                            namespace: "default".into(),
                            name: format!("r{i}"),
                            generation: 1,
                            creation_timestamp: String::new(),
                        },
                        parent_refs: vec![],
                        hostnames: vec![h.to_string()],
                        rules: vec![],
                    },
                );
            }
            fleet.insert(ck, Arc::new(ci));
        }
        let (before, after) = claims_of(&owners, "a", &fleet);
        let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&before), ["kept.a.example", "old.a.example"]);
        assert_eq!(names(&after), ["kept.a.example", "new.a.example"]);
        let mut replaced = owners.clone();
        replace_claims(&mut replaced, before, after);
        assert_eq!(
            replaced,
            claimed(&[
                ("b.example", "b"),
                ("kept.a.example", "a"),
                ("new.a.example", "a"),
            ])
        );
    }

    /// Every endpoint the data plane is given, compiled with `memo` as the compile loop does.
    fn served_endpoints(memo: &mut crate::run::CompileMemo, fleet: &Fleet) -> Vec<SocketAddr> {
        let (snapshot, _) = crate::run::compile_view_with(
            memo,
            &fleet.view(),
            &fleet.config(),
            &crate::xds::XdsHealth::default(),
        );
        snapshot
            .clusters
            .iter()
            .flat_map(|c| c.endpoints.clone())
            .collect()
    }

    /// `cfg` with tenant a's cluster c1 allowed endpoints in `cidr` only.
    fn with_cidrs(cfg: &Config, cidr: &str) -> Arc<Config> {
        let mut narrowed = cfg.clone();
        narrowed
            .tenants
            .get_mut("a")
            .unwrap()
            .clusters
            .get_mut("c1")
            .unwrap()
            .endpoint_cidrs = vec![cidr.parse().unwrap()];
        Arc::new(narrowed)
    }

    /// An HTTPRoute's cluster the memo keeps between compiles is not checked again while the
    /// rules stay the same, and is when they change.
    #[test]
    fn route_endpoints_a_reload_refuses_leave_the_data_plane_though_the_route_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), (9000, 9001));
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet.set_host_addresses(BTreeSet::new());
        let gateway = pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::Gateway as i32,
                namespace: "default".into(),
                name: "gw".into(),
            }),
            generation: 1,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
            spec: Some(pb::object::Spec::Gateway(pb::Gateway {
                gateway_class_name: "fleetgate".into(),
                listeners: vec![pb::Listener {
                    name: "http".into(),
                    protocol: "HTTP".into(),
                    port: 80,
                    hostname: "*.a.example".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
        };
        let mut route = http_route("app", "2026-01-01T00:00:00Z");
        if let Some(pb::object::Spec::HttpRoute(r)) = &mut route.spec {
            r.rules = vec![pb::HttpRouteRule {
                backends: vec![pb::Backend {
                    namespace: "default".into(),
                    name: "app".into(),
                    port: 8080,
                    weight: 1,
                    endpoints: ["127.0.1.5", "127.0.1.6"]
                        .iter()
                        .map(|a| pb::Endpoint {
                            address: a.to_string(),
                            port: 8080,
                            ready: true,
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }];
        }
        fleet.apply(&key("a"), &full(vec![gateway, route])).unwrap();
        let mut memo = crate::run::CompileMemo::default();
        let mut served = |fleet: &Fleet| served_endpoints(&mut memo, fleet);
        let five = "127.0.1.5:8080".parse::<SocketAddr>().unwrap();
        let six = "127.0.1.6:8080".parse::<SocketAddr>().unwrap();
        assert_eq!(served(&fleet), vec![five, six]);
        // Compiled again unchanged: the cluster is the memo's, passed without a check.
        assert_eq!(served(&fleet), vec![five, six]);
        fleet.reconfigure(with_cidrs(&cfg, "127.0.1.5/32")).unwrap();
        assert_eq!(served(&fleet), vec![five]);
        fleet.reconfigure(cfg.clone()).unwrap();
        assert_eq!(served(&fleet), vec![five, six]);
        // The operator reserves 127.0.1.6 (say, a VIP in front of the hub): it leaves again.
        let mut reserving = (*cfg).clone();
        reserving.reserved_addresses = vec!["127.0.1.6/32".parse().unwrap()];
        fleet.reconfigure(Arc::new(reserving)).unwrap();
        assert_eq!(served(&fleet), vec![five]);
    }

    /// Issue 8: an endpoint admitted before this host had its address (or before the operator
    /// reserved it) leaves the data plane at the next compile, and is refused from then on.
    #[test]
    fn endpoints_that_come_to_reach_the_hub_leave_the_data_plane() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = (*config(dir.path(), (9000, 9001))).clone();
        // The data plane's listener bound to all interfaces, on the Service's endpoint port.
        cfg.data_plane.listeners[0].bind = "0.0.0.0:30000".parse().unwrap();
        let a = cfg
            .tenants
            .get_mut("a")
            .unwrap()
            .clusters
            .get_mut("c1")
            .unwrap();
        a.endpoint_cidrs = vec!["10.1.0.0/16".parse().unwrap()];
        let cfg = Arc::new(cfg);
        let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
        fleet.set_host_addresses(BTreeSet::new());
        // One memo for every compile, as the compile loop keeps: what it kept from the last
        // compile must not hide an endpoint the rules now refuse.
        let mut memo = crate::run::CompileMemo::default();
        let mut served = |fleet: &Fleet| served_endpoints(&mut memo, fleet);
        let db = "10.1.0.10:30000".parse::<SocketAddr>().unwrap();
        let web = "10.1.0.11:30000".parse::<SocketAddr>().unwrap();
        fleet
            .apply(
                &key("a"),
                &full(vec![
                    service("db", 9000, "10.1.0.10"),
                    service("web", 9001, "10.1.0.11"),
                ]),
            )
            .unwrap();
        assert_eq!(served(&fleet), vec![db, web]);

        // This host gets 10.1.0.10: the listener on 0.0.0.0:30000 is reachable through it.
        let revision = *fleet.subscribe().borrow();
        assert!(fleet.set_host_addresses(["10.1.0.10".parse().unwrap()].into()));
        assert!(!fleet.set_host_addresses(["10.1.0.10".parse().unwrap()].into()));
        assert_ne!(
            *fleet.subscribe().borrow(),
            revision,
            "the compile loop is woken"
        );
        assert_eq!(served(&fleet), vec![web]);
        fleet
            .apply(&key("a"), &full(vec![service("db", 9000, "10.1.0.10")]))
            .unwrap();
        let v = fleet.view();
        let status = v.rejections[&key("a")].values().next().unwrap();
        assert_eq!(status.conditions[0].reason, "EndpointNotAllowed");
        assert!(
            status.conditions[0]
                .message
                .contains("the hub or the data plane itself (listener 0.0.0.0:30000)"),
            "{}",
            status.conditions[0].message
        );

        // The operator reserves 10.1.0.11 (say, a VIP in front of the hub) at a reload.
        fleet
            .apply(&key("a"), &full(vec![service("web", 9001, "10.1.0.11")]))
            .unwrap();
        assert_eq!(served(&fleet), vec![web]);
        // A reload narrows the cluster's CIDRs past web's address, then widens them again.
        fleet.reconfigure(with_cidrs(&cfg, "10.1.0.10/32")).unwrap();
        assert_eq!(served(&fleet), Vec::<SocketAddr>::new());
        fleet.reconfigure(cfg.clone()).unwrap();
        assert_eq!(served(&fleet), vec![web]);
        let mut reserving = (*cfg).clone();
        reserving.reserved_addresses = vec!["10.1.0.11/32".parse().unwrap()];
        fleet.reconfigure(Arc::new(reserving)).unwrap();
        assert_eq!(served(&fleet), Vec::<SocketAddr>::new());
    }
}
