//! The hub's durable store: each cluster's accepted intent, the hostname claims of every
//! tenant, L4 address allocations, identity records, MCP pins and session keys; in one
//! embedded file (redb, the default) or in etcd, which several hubs share (`store/kv.rs`).
//!
//! Where it sits: `admit` -> **store** -> `compile`. On start the hub loads everything from here,
//! so Envoy gets the last accepted intent of every cluster even before its agent reconnects.
//! Writes are transactional: a cluster's intent, the hostname claims and the allocations change
//! together or not at all, and each changed claim only if it still holds what this hub read
//! ([`Change`]), so two hubs cannot both take one hostname or address.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::allocate::{Allocations, Owner, PortKey, ServiceKey};
use crate::model::{
    ClusterIntent, ClusterKey, FleetIntent, Gateway, GrpcRoute, HttpRoute, L4Protocol, L4Route,
    LoadBalancerService, TlsRoute,
};

/// The stored form of a `ClusterIntent`: plain lists (JSON maps need string keys); the maps are
/// rebuilt from each object's own namespace and name.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    gateways: Vec<Gateway>,
    http_routes: Vec<HttpRoute>,
    #[serde(default)]
    tls_routes: Vec<TlsRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    services: Vec<LoadBalancerService>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    l4_routes: Vec<L4Route>,
    #[serde(default)]
    grpc_routes: Vec<GrpcRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    listener_sets: Vec<crate::model::ListenerSet>,
    /// Provider keys sealed like TLS private keys (`crate::seal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ai_backends: Vec<crate::model::ai::AiBackend>,
    /// Hashes only: the keys themselves never reach the hub.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    virtual_keys: Vec<crate::model::ai::VirtualKeyIntent>,
}

impl From<&ClusterIntent> for Stored {
    fn from(i: &ClusterIntent) -> Self {
        Self {
            gateways: i.gateways.values().cloned().collect(),
            http_routes: i.http_routes.values().cloned().collect(),
            tls_routes: i.tls_routes.values().cloned().collect(),
            services: i.services.values().cloned().collect(),
            l4_routes: i.l4_routes.values().cloned().collect(),
            grpc_routes: i.grpc_routes.values().cloned().collect(),
            listener_sets: i.listener_sets.values().cloned().collect(),
            ai_backends: i.ai_backends.values().cloned().collect(),
            virtual_keys: i.virtual_keys.values().cloned().collect(),
        }
    }
}

impl From<Stored> for ClusterIntent {
    fn from(s: Stored) -> Self {
        let key = |m: &crate::model::Meta| (m.namespace.clone(), m.name.clone());
        Self {
            gateways: s.gateways.into_iter().map(|g| (key(&g.meta), g)).collect(),
            http_routes: s
                .http_routes
                .into_iter()
                .map(|r| (key(&r.meta), r))
                .collect(),
            tls_routes: s
                .tls_routes
                .into_iter()
                .map(|r| (key(&r.meta), r))
                .collect(),
            services: s.services.into_iter().map(|v| (key(&v.meta), v)).collect(),
            l4_routes: s
                .l4_routes
                .into_iter()
                .map(|r| {
                    let kind = match r.protocol {
                        L4Protocol::Tcp => crate::model::Kind::TcpRoute,
                        L4Protocol::Udp => crate::model::Kind::UdpRoute,
                    };
                    let k = crate::model::ObjectKey {
                        kind,
                        namespace: r.meta.namespace.clone(),
                        name: r.meta.name.clone(),
                    };
                    (k, r)
                })
                .collect(),
            grpc_routes: s
                .grpc_routes
                .into_iter()
                .map(|r| (key(&r.meta), r))
                .collect(),
            listener_sets: s
                .listener_sets
                .into_iter()
                .map(|l| (key(&l.meta), l))
                .collect(),
            ai_backends: s
                .ai_backends
                .into_iter()
                .map(|b| (key(&b.meta), b))
                .collect(),
            virtual_keys: s
                .virtual_keys
                .into_iter()
                .map(|k| (key(&k.meta), k))
                .collect(),
        }
    }
}

/// Copying the whole store into an empty one: backup and restore (`store/backup.rs`).
pub mod backup;
/// Used bootstrap tokens and per-cluster certificate epochs (`store/identity.rs`).
mod identity;
/// What the store needs of a database, and its two backends (`store/kv.rs`).
pub mod kv;
/// MCP tool pins per tenant (`store/mcp_pins.rs`).
pub mod mcp_pins;
/// The MCP session secret ring (`store/session_secrets.rs`).
mod session_secrets;
pub use session_secrets::SecretStore;
/// The suite every backend passes (`store/conformance.rs`).
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
/// What hubs sharing one store see of each other (`store/shared.rs`).
pub mod shared;

use kv::{Guard, Kv, Txn};

/// `intent/v1/<tenant>/<cluster>` -> JSON of `ClusterIntent`.
const INTENT: &str = "intent/v1/";
/// `hostnames/v1/<hostname pattern>` -> owning tenant.
const HOSTNAMES: &str = "hostnames/v1/";
/// `l4-allocations/v1/<tenant>/<cluster>/<namespace>/<Service|Gateway>/<name>/<port>/<TCP|UDP>`
/// -> allocated `ip:port`.
const L4_ALLOCATIONS: &str = "l4-allocations/v1/";
/// `l4-addresses/v1/<ip:port>/<TCP|UDP>` -> the `l4-allocations` key holding it: the index that
/// makes an address unique fleet-wide (two hubs giving one address to two Services conflict
/// on it).
const L4_ADDRESSES: &str = "l4-addresses/v1/";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open store {path}: {reason}; check the path and that no other hub uses it")]
    Open { path: String, reason: String },
    /// A read or write failed inside the database.
    #[error("store I/O failed: {0}")]
    Db(String),
    /// A stored record could not be decoded (written by an incompatible version).
    #[error("stored intent of {key} cannot be read: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    /// A private key could not be sealed or opened (`crate::seal`).
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// Another hub sharing the store changed a record this write depends on (a hostname claim
    /// or an address allocation) since this hub read it; nothing was written.
    #[error(
        "another hub changed {what} since this hub read it; nothing was written: read the store again and retry"
    )]
    Conflict { what: String },
}

pub(crate) fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The rows of a table before and after one change: only rows that differ are written, each
/// guarded by its value before, so that a hub whose view is stale cannot overwrite another's.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a, K, V> {
    pub before: &'a BTreeMap<K, V>,
    pub after: &'a BTreeMap<K, V>,
}

impl<'a, K, V> Change<'a, K, V> {
    pub fn new(before: &'a BTreeMap<K, V>, after: &'a BTreeMap<K, V>) -> Self {
        Self { before, after }
    }
}

impl<K: Ord, V: PartialEq> Change<'_, K, V> {
    /// Adds to `txn` a guarded write for every row that differs, keyed by `key` and stored as
    /// `value`; returns whether anything differs.
    fn write(
        &self,
        txn: &mut Txn,
        key: impl Fn(&K) -> String,
        value: impl Fn(&V) -> String,
    ) -> bool {
        let mut changed = false;
        for (k, old) in self.before {
            if !self.after.contains_key(k) {
                let key = key(k);
                txn.guard(Guard::Equals(key.clone(), value(old).into_bytes()));
                txn.delete(key);
                changed = true;
            }
        }
        for (k, new) in self.after {
            let old = self.before.get(k);
            if old == Some(new) {
                continue;
            }
            let key = key(k);
            txn.guard(Guard::holds(
                &key,
                old.map(|o| value(o).into_bytes()).as_deref(),
            ));
            txn.put(key, value(new));
            changed = true;
        }
        changed
    }
}

pub struct Store {
    kv: std::sync::Arc<dyn Kv>,
    /// Seals tenant private keys at rest; `None` only in tests of other parts.
    sealer: Option<crate::seal::Sealer>,
}

/// Everything the store holds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Loaded {
    pub intent: FleetIntent,
    pub owners: BTreeMap<String, String>,
}

fn key_str(k: &ClusterKey) -> String {
    // Tenant and cluster names are DNS labels (checked in config), so '/' cannot occur in them.
    format!("{}/{}", k.tenant, k.cluster)
}

fn utf8(key: &str, v: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(v).map_err(|_| StoreError::Db(format!("the value of {key} is not UTF-8")))
}

impl Store {
    /// The embedded store: one file (the default).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::on(std::sync::Arc::new(kv::RedbKv::open(path)?)))
    }

    /// A store on `kv`, which other `Store`s (of this hub or of others) may share.
    pub fn on(kv: std::sync::Arc<dyn Kv>) -> Self {
        Self { kv, sealer: None }
    }

    /// Opens the embedded store with private keys sealed by `sealer`.
    pub fn open_sealed(path: &Path, sealer: crate::seal::Sealer) -> Result<Self, StoreError> {
        Self::open(path)?.sealed(sealer)
    }

    /// Seals private keys with `sealer` from now on; keys an older hub stored in plain are
    /// sealed now.
    pub fn sealed(mut self, sealer: crate::seal::Sealer) -> Result<Self, StoreError> {
        self.sealer = Some(sealer);
        if self.seal_plain_keys()? {
            // Compaction rewrites the file without the pages that held the keys in plain.
            self.kv.compact()?;
        }
        Ok(self)
    }

    /// Where the store lives, for messages.
    pub fn describe(&self) -> String {
        self.kv.describe()
    }

    /// Rewrites every cluster's intent that holds a private key in plain (each guarded by what
    /// was read, so a concurrent write of another hub is never overwritten).
    fn seal_plain_keys(&self) -> Result<bool, StoreError> {
        let mut txn = Txn::default();
        for row in self.kv.scan(INTENT)? {
            let key = row.key[INTENT.len()..].to_string();
            let mut stored: Stored =
                serde_json::from_slice(&row.value).map_err(|source| StoreError::Decode {
                    key: key.clone(),
                    source,
                })?;
            let Some((tenant, cluster)) = key.split_once('/') else {
                continue;
            };
            let ck = ClusterKey {
                tenant: tenant.into(),
                cluster: cluster.into(),
            };
            let plain = stored.gateways.iter().any(|g| {
                g.listeners.iter().any(|l| {
                    l.tls.as_ref().is_some_and(|t| {
                        t.certificates
                            .iter()
                            .any(|c| !crate::seal::is_sealed(&c.private_key_pem.0))
                    })
                })
            }) || crate::seal::has_plain_ai_key(&stored.ai_backends);
            if plain && let Some(sealer) = &self.sealer {
                crate::seal::seal_gateways(sealer, &ck, &mut stored.gateways);
                crate::seal::seal_ai_backends(sealer, &ck, &mut stored.ai_backends);
                tracing::info!(cluster = %key, "sealed private keys stored in plain by an older hub");
                txn.guard(Guard::Equals(row.key.clone(), row.value));
                txn.put(row.key, serde_json::to_vec(&stored).map_err(db_err)?);
            }
        }
        if txn.is_empty() {
            return Ok(false);
        }
        if !self.kv.commit(&txn)? {
            return Err(StoreError::Conflict {
                what: "a cluster's intent while its private keys were being sealed".into(),
            });
        }
        Ok(true)
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        for row in self.kv.scan(INTENT)? {
            let (ck, intent) = self.decode_intent(&row.key[INTENT.len()..], &row.value)?;
            out.intent.insert(ck, Arc::new(intent));
        }
        out.owners = self.load_owners()?;
        Ok(out)
    }

    /// One stored cluster intent: `key` is `<tenant>/<cluster>`.
    fn decode_intent(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(ClusterKey, ClusterIntent), StoreError> {
        let Some((tenant, cluster)) = key.split_once('/') else {
            return Err(StoreError::Db(format!("bad key {key:?}")));
        };
        let mut stored: Stored =
            serde_json::from_slice(value).map_err(|source| StoreError::Decode {
                key: key.to_string(),
                source,
            })?;
        let ck = ClusterKey {
            tenant: tenant.into(),
            cluster: cluster.into(),
        };
        crate::seal::open_gateways(self.sealer.as_ref(), &ck, &mut stored.gateways)?;
        crate::seal::open_ai_backends(self.sealer.as_ref(), &ck, &mut stored.ai_backends)?;
        Ok((ck, stored.into()))
    }

    /// Every hostname claim: pattern -> owning tenant.
    pub fn load_owners(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.kv
            .scan(HOSTNAMES)?
            .into_iter()
            .map(|row| {
                let host = row.key[HOSTNAMES.len()..].to_string();
                Ok((host, utf8(&row.key, row.value)?))
            })
            .collect()
    }

    /// Replaces one cluster's intent (removes it when empty) and writes the hostname claims
    /// that changed, in one transaction. [`StoreError::Conflict`] when another hub changed one
    /// of those claims first.
    pub fn save(
        &self,
        key: &ClusterKey,
        intent: &ClusterIntent,
        owners: Change<'_, String, String>,
    ) -> Result<(), StoreError> {
        let mut txn = Txn::default();
        self.write_intent(&mut txn, key, intent, owners)?;
        self.commit(&txn, || "a hostname claim")
    }

    /// Like [`Store::save`], and writes the L4 allocations that changed, in the same
    /// transaction: an allocation is durable exactly when the intent that needs it is.
    pub fn save_with_allocations(
        &self,
        key: &ClusterKey,
        intent: &ClusterIntent,
        owners: Change<'_, String, String>,
        allocations: Change<'_, PortKey, std::net::SocketAddr>,
    ) -> Result<(), StoreError> {
        let mut txn = Txn::default();
        let claims = self.write_intent(&mut txn, key, intent, owners)?;
        let addresses = write_allocations(&mut txn, allocations);
        self.commit(&txn, || match (claims, addresses) {
            (true, true) => "a hostname claim or an L4 address allocation",
            (false, true) => "an L4 address allocation",
            _ => "a hostname claim",
        })
    }

    /// Writes only the L4 allocations that changed.
    pub fn save_allocations(
        &self,
        allocations: Change<'_, PortKey, std::net::SocketAddr>,
    ) -> Result<(), StoreError> {
        let mut txn = Txn::default();
        write_allocations(&mut txn, allocations);
        if txn.is_empty() {
            return Ok(());
        }
        self.commit(&txn, || "an L4 address allocation")
    }

    fn commit(&self, txn: &Txn, what: impl FnOnce() -> &'static str) -> Result<(), StoreError> {
        if self.kv.commit(txn)? {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                what: what().into(),
            })
        }
    }

    /// Every stored L4 allocation.
    pub fn load_allocations(&self) -> Result<Allocations, StoreError> {
        let mut out = Allocations::new();
        for row in self.kv.scan(L4_ALLOCATIONS)? {
            let k = &row.key[L4_ALLOCATIONS.len()..];
            let key = parse_port_key(k)
                .ok_or_else(|| StoreError::Db(format!("bad allocation key {k:?}")))?;
            let v = utf8(&row.key, row.value)?;
            let addr = v
                .parse()
                .map_err(|_| StoreError::Db(format!("bad allocation {v:?}")))?;
            out.insert(key, addr);
        }
        Ok(out)
    }

    /// Writes the address index of allocations stored by hubs before it existed (at start;
    /// nothing to do once written).
    pub fn index_addresses(&self) -> Result<(), StoreError> {
        let mut txn = Txn::default();
        let indexed: std::collections::BTreeSet<String> = self
            .kv
            .scan(L4_ADDRESSES)?
            .into_iter()
            .map(|row| row.key)
            .collect();
        for ((addr, protocol), k) in by_address(&self.load_allocations()?) {
            let key = format!("{L4_ADDRESSES}{addr}/{}", protocol.as_str());
            if !indexed.contains(&key) {
                txn.guard(Guard::Absent(key.clone()));
                txn.put(key, port_key_str(&k));
            }
        }
        if txn.is_empty() {
            return Ok(());
        }
        self.commit(&txn, || "an L4 address allocation")
    }

    /// Adds the writes of one cluster's intent and its changed claims to `txn`; returns
    /// whether any claim changed.
    fn write_intent(
        &self,
        txn: &mut Txn,
        key: &ClusterKey,
        intent: &ClusterIntent,
        owners: Change<'_, String, String>,
    ) -> Result<bool, StoreError> {
        let k = format!("{INTENT}{}", key_str(key));
        if intent.is_empty() {
            txn.delete(k);
        } else {
            let mut stored = Stored::from(intent);
            if let Some(sealer) = &self.sealer {
                crate::seal::seal_gateways(sealer, key, &mut stored.gateways);
                crate::seal::seal_ai_backends(sealer, key, &mut stored.ai_backends);
            }
            txn.put(k, serde_json::to_vec(&stored).map_err(db_err)?);
        }
        // Only the claims that changed are written: with thousands of hostnames, one changed
        // route changes at most a few.
        Ok(owners.write(txn, |h| format!("{HOSTNAMES}{h}"), |t| t.clone()))
    }
}

/// Adds the writes of the allocations that changed, and of their address index, to `txn`;
/// returns whether any changed.
fn write_allocations(
    txn: &mut Txn,
    allocations: Change<'_, PortKey, std::net::SocketAddr>,
) -> bool {
    let changed = allocations.write(
        txn,
        |k| format!("{L4_ALLOCATIONS}{}", port_key_str(k)),
        |a| a.to_string(),
    );
    let (before, after) = (
        by_address(allocations.before),
        by_address(allocations.after),
    );
    Change::new(&before, &after).write(
        txn,
        |(addr, protocol)| format!("{L4_ADDRESSES}{addr}/{}", protocol.as_str()),
        port_key_str,
    );
    changed
}

/// Allocations keyed by what must be unique: the address and protocol.
fn by_address(a: &Allocations) -> BTreeMap<(std::net::SocketAddr, L4Protocol), PortKey> {
    a.iter()
        .map(|(k, addr)| ((*addr, k.protocol), k.clone()))
        .collect()
}

/// Tenant, cluster and namespace names are DNS labels and Service names DNS labels too
/// (checked by admission), so '/' cannot occur in them.
fn port_key_str(k: &PortKey) -> String {
    format!(
        "{}/{}/{}/{}/{}/{}/{}",
        k.service.cluster.tenant,
        k.service.cluster.cluster,
        k.service.namespace,
        match k.service.owner {
            Owner::Service => "Service",
            Owner::Gateway => "Gateway",
        },
        k.service.name,
        k.port,
        k.protocol.as_str()
    )
}

fn parse_port_key(s: &str) -> Option<PortKey> {
    let parts: Vec<&str> = s.split('/').collect();
    let [tenant, cluster, namespace, owner, name, port, protocol] = parts.as_slice() else {
        return None;
    };
    Some(PortKey {
        service: ServiceKey {
            owner: match *owner {
                "Service" => Owner::Service,
                "Gateway" => Owner::Gateway,
                _ => return None,
            },
            cluster: ClusterKey {
                tenant: tenant.to_string(),
                cluster: cluster.to_string(),
            },
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        port: port.parse().ok()?,
        protocol: match *protocol {
            "TCP" => L4Protocol::Tcp,
            "UDP" => L4Protocol::Udp,
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Meta;

    fn gw(name: &str) -> Gateway {
        Gateway {
            meta: Meta {
                namespace: "default".into(),
                name: name.into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            class_name: "fleetgate".into(),
            allowed_listeners: Default::default(),
            listeners: vec![],
        }
    }

    fn gw_with_key(name: &str, key_pem: &str) -> Gateway {
        use crate::model::{
            AllowedRoutes, Certificate, Listener, ListenerTls, PrivateKeyPem, Protocol, TlsMode,
        };
        let mut g = gw(name);
        g.listeners.push(Listener {
            name: "https".into(),
            protocol: Some(Protocol::Https),
            protocol_name: "HTTPS".into(),
            port: 443,
            hostname: None,
            allowed_routes: AllowedRoutes::Same,
            tls: Some(ListenerTls {
                mode: TlsMode::Terminate,
                certificates: vec![Certificate {
                    namespace: "default".into(),
                    name: "cert".into(),
                    cert_chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
                    private_key_pem: PrivateKeyPem(key_pem.into()),
                    dns_names: vec!["app.a.example".into()],
                    serial: "01".into(),
                }],
                problem: None,
                options: Vec::new(),
            }),
            allowed_kinds: vec![],
        });
        g
    }

    /// The raw stored JSON of every cluster.
    fn raw_rows(store: &Store) -> Vec<String> {
        store
            .kv
            .scan(INTENT)
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.value).unwrap())
            .collect()
    }

    const NONE: &BTreeMap<String, String> = &BTreeMap::new();
    /// No claim changes.
    const SAME: Change<'static, String, String> = Change {
        before: NONE,
        after: NONE,
    };
    const NO_ADDRESSES: &Allocations = &Allocations::new();

    #[test]
    fn private_keys_are_sealed_at_rest_and_plain_stores_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let secret = "-----BEGIN PRIVATE KEY-----\nsecret-material\n-----END PRIVATE KEY-----\n";
        let mut intent = ClusterIntent::default();
        intent
            .gateways
            .insert(("default".into(), "gw".into()), gw_with_key("gw", secret));
        // A store written before keys were sealed.
        {
            let s = Store::open(&path).unwrap();
            s.save(&key, &intent, SAME).unwrap();
            assert!(raw_rows(&s)[0].contains("secret-material"));
        }
        let sealer_key = [3u8; 32];
        {
            let s = Store::open_sealed(&path, crate::seal::Sealer::from_key(&sealer_key)).unwrap();
            let rows = raw_rows(&s);
            assert!(!rows[0].contains("secret-material"), "{}", rows[0]);
            assert!(rows[0].contains("fleetgate-sealed:v1:"));
            let file = std::fs::read(&path).unwrap();
            assert!(
                !file.windows(15).any(|w| w == b"secret-material"),
                "the plain key is gone from the file"
            );
            assert_eq!(*s.load().unwrap().intent[&key], intent);
            // New writes are sealed too.
            s.save(&key, &intent, SAME).unwrap();
            assert!(!raw_rows(&s)[0].contains("secret-material"));
        }
        // Another key cannot open it, and no key at all is a clear error.
        let other = Store::open_sealed(&path, crate::seal::Sealer::from_key(&[4u8; 32])).unwrap();
        let e = other.load().unwrap_err().to_string();
        assert!(e.contains("cannot be decrypted"), "{e}");
        drop(other);
        let e = Store::open(&path).unwrap().load().unwrap_err().to_string();
        assert!(e.contains("no store.key"), "{e}");
        let s = Store::open_sealed(&path, crate::seal::Sealer::from_key(&sealer_key)).unwrap();
        assert_eq!(*s.load().unwrap().intent[&key], intent);
    }

    #[test]
    fn provider_keys_are_sealed_at_rest_bound_to_their_backend_and_plain_ones_migrated() {
        use crate::model::ai::{AiAuth, AiBackend, AiProvider, AiTarget, AiUpstream, ProviderKey};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let backend = |name: &str| AiBackend {
            model_aliases: Default::default(),
            meta: Meta {
                namespace: "default".into(),
                name: name.into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            target: Ok(AiTarget {
                provider: AiProvider::OpenAi { model: None },
                host: "api.openai.com".into(),
                port: 443,
                path: None,
                path_prefix: None,
                upstream: AiUpstream::External,
                auth: AiAuth::Key(ProviderKey(format!("sk-provider-secret-{name}"))),
            }
            .into()),
        };
        let mut intent = ClusterIntent::default();
        for name in ["one", "two"] {
            intent
                .ai_backends
                .insert(("default".into(), name.into()), backend(name));
        }
        // Written in plain by a hub before provider keys were sealed: sealed at open.
        {
            let s = Store::open(&path).unwrap();
            s.save(&key, &intent, SAME).unwrap();
            assert!(raw_rows(&s)[0].contains("sk-provider-secret-one"));
        }
        let sealer_key = [5u8; 32];
        let s = Store::open_sealed(&path, crate::seal::Sealer::from_key(&sealer_key)).unwrap();
        let rows = raw_rows(&s);
        assert!(!rows[0].contains("sk-provider-secret"), "{}", rows[0]);
        assert!(
            !std::fs::read(&path)
                .unwrap()
                .windows(18)
                .any(|w| w == b"sk-provider-secret"),
            "the plain keys are gone from the file"
        );
        assert_eq!(*s.load().unwrap().intent[&key], intent);
        // A sealed key moved onto another backend does not open.
        let mut stored: Stored = serde_json::from_str(&rows[0]).unwrap();
        let sealed_one = stored.ai_backends[0].target.clone();
        stored.ai_backends[1].target = sealed_one;
        let moved = serde_json::to_vec(&stored).unwrap();
        let mut txn = Txn::default();
        txn.put("intent/v1/a/east", moved);
        assert!(s.kv.commit(&txn).unwrap());
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("cannot be decrypted"), "{e}");
    }

    #[test]
    fn virtual_keys_survive_reopen_as_hashes_with_their_problems() {
        use crate::model::BackendProblem;
        use crate::model::ai::{AiBudget, VirtualKeyIntent};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let vk = |name: &str, sha256| VirtualKeyIntent {
            meta: crate::model::Meta {
                namespace: "team".into(),
                name: name.into(),
                generation: 2,
                creation_timestamp: "2026-01-01T00:00:00Z".into(),
            },
            sha256,
            backends: vec!["local-llm".into()],
            budget: Some(AiBudget {
                requests: Some(5),
                tokens: None,
                window_seconds: 60,
            }),
        };
        let mut intent = ClusterIntent::default();
        for k in [
            vk("alice", Ok([9; 32])),
            vk(
                "bob",
                Err(BackendProblem {
                    reason: "BackendNotFound".into(),
                    message: "Secret team/bob-key not found".into(),
                }),
            ),
        ] {
            intent
                .virtual_keys
                .insert((k.meta.namespace.clone(), k.meta.name.clone()), k);
        }
        Store::open(&path)
            .unwrap()
            .save(&key, &intent, SAME)
            .unwrap();
        let loaded = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(*loaded.intent[&key], intent);
    }

    #[test]
    fn survives_reopen_and_removes_empty_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let mut intent = ClusterIntent::default();
        intent
            .gateways
            .insert(("default".into(), "gw".into()), gw("gw"));
        let owners: BTreeMap<_, _> = [("*.a.example".to_string(), "a".to_string())].into();
        {
            let s = Store::open(&path).unwrap();
            s.save(&key, &intent, Change::new(NONE, &owners)).unwrap();
        }
        let s = Store::open(&path).unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(*loaded.intent[&key], intent);
        assert_eq!(loaded.owners, owners);

        s.save(&key, &ClusterIntent::default(), Change::new(&owners, NONE))
            .unwrap();
        let loaded = s.load().unwrap();
        assert!(loaded.intent.is_empty());
        assert!(loaded.owners.is_empty());
    }

    #[test]
    fn allocations_survive_reopen_and_are_replaced_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let ck = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let pk = |name: &str, port: u16, protocol| PortKey {
            service: ServiceKey {
                owner: Owner::Service,
                cluster: ck.clone(),
                namespace: "default".into(),
                name: name.into(),
            },
            port,
            protocol,
        };
        let mut allocs = Allocations::new();
        allocs.insert(
            pk("db", 5432, L4Protocol::Tcp),
            "127.0.0.1:20000".parse().unwrap(),
        );
        allocs.insert(
            pk("dns", 53, L4Protocol::Udp),
            "127.0.0.1:20001".parse().unwrap(),
        );
        let empty = ClusterIntent::default();
        {
            let s = Store::open(&path).unwrap();
            s.save_with_allocations(&ck, &empty, SAME, Change::new(NO_ADDRESSES, &allocs))
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        let before = allocs.clone();
        allocs.remove(&pk("db", 5432, L4Protocol::Tcp));
        s.save_with_allocations(&ck, &empty, SAME, Change::new(&before, &allocs))
            .unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        // `save` leaves allocations alone.
        s.save(&ck, &empty, SAME).unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        let before = allocs.clone();
        allocs.insert(
            PortKey {
                service: ServiceKey {
                    owner: Owner::Gateway,
                    ..pk("db", 1, L4Protocol::Tcp).service
                },
                port: 9000,
                protocol: L4Protocol::Tcp,
            },
            "127.0.0.1:9000".parse().unwrap(),
        );
        s.save_with_allocations(&ck, &empty, SAME, Change::new(&before, &allocs))
            .unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        // A write from a view of the allocations that is no longer true is refused whole.
        let stale = s.save_with_allocations(&ck, &empty, SAME, Change::new(&before, &allocs));
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
        assert_eq!(s.load_allocations().unwrap(), allocs);
        assert!(parse_port_key("a/b/c/Service/d/80/SCTP").is_none());
        assert!(parse_port_key("a/b/c/Pod/d/80/TCP").is_none());
        assert!(parse_port_key("a/b/c/80/TCP").is_none());
    }

    #[test]
    fn stored_claims_are_exactly_the_last_saved_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("hub.redb")).unwrap();
        let key = ClusterKey {
            tenant: "a".into(),
            cluster: "east".into(),
        };
        let claims = |l: &[(&str, &str)]| -> BTreeMap<String, String> {
            l.iter()
                .map(|(h, t)| (h.to_string(), t.to_string()))
                .collect()
        };
        let steps = [
            claims(&[("x.example", "a"), ("y.example", "a")]),
            // One claim kept, one moved to another tenant, one dropped, one added.
            claims(&[("x.example", "a"), ("y.example", "b"), ("z.example", "a")]),
            claims(&[("y.example", "b")]),
        ];
        let mut before = BTreeMap::new();
        for owners in steps {
            s.save(
                &key,
                &ClusterIntent::default(),
                Change::new(&before, &owners),
            )
            .unwrap();
            assert_eq!(s.load().unwrap().owners, owners);
            before = owners;
        }
    }
}
