//! The hub's durable store: one embedded database file (redb) holding each cluster's accepted
//! intent and the hostname claims of every tenant.
//!
//! Where it sits: `admit` -> **store** -> `compile`. On start the hub loads everything from here,
//! so Envoy gets the last accepted intent of every cluster even before its agent reconnects.
//! Writes are transactional: a cluster's intent and the hostname claims change together or not at all.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

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

/// Used bootstrap tokens and per-cluster certificate epochs (`store/identity.rs`).
mod identity;
/// MCP tool pins per tenant (`store/mcp_pins.rs`).
pub mod mcp_pins;
/// The MCP session secret ring (`store/session_secrets.rs`).
mod session_secrets;
pub use session_secrets::SecretStore;

/// `<tenant>/<cluster>` -> JSON of `ClusterIntent`.
const INTENT: TableDefinition<&str, &[u8]> = TableDefinition::new("intent/v1");
/// hostname pattern -> owning tenant.
const HOSTNAMES: TableDefinition<&str, &str> = TableDefinition::new("hostnames/v1");
/// `<tenant>/<cluster>/<namespace>/<Service|Gateway>/<name>/<port>/<TCP|UDP>` -> allocated
/// `ip:port`.
const L4_ALLOCATIONS: TableDefinition<&str, &str> = TableDefinition::new("l4-allocations/v1");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open store {path}: {source}; check the path and that no other hub uses it")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
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
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub struct Store {
    db: Database,
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

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(db_err)?;
        }
        let db = Database::create(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(INTENT).map_err(db_err)?;
        txn.open_table(HOSTNAMES).map_err(db_err)?;
        txn.open_table(L4_ALLOCATIONS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self { db, sealer: None })
    }

    /// Opens the store with private keys sealed by `sealer`; keys an older hub stored in plain
    /// are sealed now.
    pub fn open_sealed(path: &Path, sealer: crate::seal::Sealer) -> Result<Self, StoreError> {
        let mut store = Self::open(path)?;
        store.sealer = Some(sealer);
        if store.seal_plain_keys()? {
            // Compaction rewrites the file without the pages that held the keys in plain.
            store.db.compact().map_err(db_err)?;
        }
        Ok(store)
    }

    /// Rewrites every cluster's intent that holds a private key in plain.
    fn seal_plain_keys(&self) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let migrated;
        {
            let mut t = txn.open_table(INTENT).map_err(db_err)?;
            let mut rewrite = Vec::new();
            for row in t.iter().map_err(db_err)? {
                let (k, v) = row.map_err(db_err)?;
                let key = k.value().to_string();
                let mut stored: Stored =
                    serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
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
                    rewrite.push((key, serde_json::to_vec(&stored).map_err(db_err)?));
                }
            }
            migrated = !rewrite.is_empty();
            for (k, v) in rewrite {
                tracing::info!(cluster = %k, "sealed private keys stored in plain by an older hub");
                t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(migrated)
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let mut out = Loaded::default();
        for row in txn
            .open_table(INTENT)
            .map_err(db_err)?
            .iter()
            .map_err(db_err)?
        {
            let (k, v) = row.map_err(db_err)?;
            let key = k.value().to_string();
            let Some((tenant, cluster)) = key.split_once('/') else {
                return Err(StoreError::Db(format!("bad key {key:?}")));
            };
            let mut stored: Stored =
                serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
                    key: key.clone(),
                    source,
                })?;
            let ck = ClusterKey {
                tenant: tenant.into(),
                cluster: cluster.into(),
            };
            crate::seal::open_gateways(self.sealer.as_ref(), &ck, &mut stored.gateways)?;
            crate::seal::open_ai_backends(self.sealer.as_ref(), &ck, &mut stored.ai_backends)?;
            out.intent.insert(ck, stored.into());
        }
        for row in txn
            .open_table(HOSTNAMES)
            .map_err(db_err)?
            .iter()
            .map_err(db_err)?
        {
            let (k, v) = row.map_err(db_err)?;
            out.owners
                .insert(k.value().to_string(), v.value().to_string());
        }
        Ok(out)
    }

    /// Replaces one cluster's intent (removes it when empty) and the whole hostname claim table,
    /// in one transaction.
    pub fn save(
        &self,
        key: &ClusterKey,
        intent: &ClusterIntent,
        owners: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        write_intent(&txn, key, intent, owners, self.sealer.as_ref())?;
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Like [`Store::save`], and replaces the whole L4 allocation table, in one transaction: an
    /// allocation is durable exactly when the intent that needs it is.
    pub fn save_with_allocations(
        &self,
        key: &ClusterKey,
        intent: &ClusterIntent,
        owners: &BTreeMap<String, String>,
        allocations: &Allocations,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        write_intent(&txn, key, intent, owners, self.sealer.as_ref())?;
        {
            let mut t = txn.open_table(L4_ALLOCATIONS).map_err(db_err)?;
            let wanted: BTreeMap<String, String> = allocations
                .iter()
                .map(|(k, a)| (port_key_str(k), a.to_string()))
                .collect();
            let old: Vec<String> = t
                .iter()
                .map_err(db_err)?
                .map(|r| r.map(|(k, _)| k.value().to_string()))
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            for k in old.iter().filter(|k| !wanted.contains_key(*k)) {
                t.remove(k.as_str()).map_err(db_err)?;
            }
            for (k, v) in &wanted {
                t.insert(k.as_str(), v.as_str()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }

    /// Every stored L4 allocation.
    pub fn load_allocations(&self) -> Result<Allocations, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let mut out = Allocations::new();
        for row in txn
            .open_table(L4_ALLOCATIONS)
            .map_err(db_err)?
            .iter()
            .map_err(db_err)?
        {
            let (k, v) = row.map_err(db_err)?;
            let key = parse_port_key(k.value())
                .ok_or_else(|| StoreError::Db(format!("bad allocation key {:?}", k.value())))?;
            let addr = v
                .value()
                .parse()
                .map_err(|_| StoreError::Db(format!("bad allocation {:?}", v.value())))?;
            out.insert(key, addr);
        }
        Ok(out)
    }
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

fn write_intent(
    txn: &redb::WriteTransaction,
    key: &ClusterKey,
    intent: &ClusterIntent,
    owners: &BTreeMap<String, String>,
    sealer: Option<&crate::seal::Sealer>,
) -> Result<(), StoreError> {
    let mut stored = Stored::from(intent);
    if let Some(sealer) = sealer {
        crate::seal::seal_gateways(sealer, key, &mut stored.gateways);
        crate::seal::seal_ai_backends(sealer, key, &mut stored.ai_backends);
    }
    let bytes = serde_json::to_vec(&stored).map_err(db_err)?;
    {
        let mut t = txn.open_table(INTENT).map_err(db_err)?;
        let k = key_str(key);
        if intent.is_empty() {
            t.remove(k.as_str()).map_err(db_err)?;
        } else {
            t.insert(k.as_str(), bytes.as_slice()).map_err(db_err)?;
        }
        // Only the claims that changed are written: with thousands of hostnames, one changed
        // route changes at most a few.
        let mut h = txn.open_table(HOSTNAMES).map_err(db_err)?;
        let old: BTreeMap<String, String> = h
            .iter()
            .map_err(db_err)?
            .map(|r| r.map(|(k, v)| (k.value().to_string(), v.value().to_string())))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        for k in old.keys().filter(|k| !owners.contains_key(*k)) {
            h.remove(k.as_str()).map_err(db_err)?;
        }
        for (k, v) in owners.iter().filter(|(k, v)| old.get(*k) != Some(*v)) {
            h.insert(k.as_str(), v.as_str()).map_err(db_err)?;
        }
    }
    Ok(())
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
        let txn = store.db.begin_read().unwrap();
        let t = txn.open_table(INTENT).unwrap();
        t.iter()
            .unwrap()
            .map(|r| String::from_utf8(r.unwrap().1.value().to_vec()).unwrap())
            .collect()
    }

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
            s.save(&key, &intent, &BTreeMap::new()).unwrap();
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
            assert_eq!(s.load().unwrap().intent[&key], intent);
            // New writes are sealed too.
            s.save(&key, &intent, &BTreeMap::new()).unwrap();
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
        assert_eq!(s.load().unwrap().intent[&key], intent);
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
            s.save(&key, &intent, &BTreeMap::new()).unwrap();
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
        assert_eq!(s.load().unwrap().intent[&key], intent);
        // A sealed key moved onto another backend does not open.
        let mut stored: Stored = serde_json::from_str(&rows[0]).unwrap();
        let sealed_one = stored.ai_backends[0].target.clone();
        stored.ai_backends[1].target = sealed_one;
        let moved = serde_json::to_vec(&stored).unwrap();
        {
            let txn = s.db.begin_write().unwrap();
            txn.open_table(INTENT)
                .unwrap()
                .insert("a/east", moved.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
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
            .save(&key, &intent, &BTreeMap::new())
            .unwrap();
        let loaded = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(loaded.intent[&key], intent);
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
            s.save(&key, &intent, &owners).unwrap();
        }
        let s = Store::open(&path).unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(loaded.intent[&key], intent);
        assert_eq!(loaded.owners, owners);

        s.save(&key, &ClusterIntent::default(), &BTreeMap::new())
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
        {
            let s = Store::open(&path).unwrap();
            s.save_with_allocations(&ck, &ClusterIntent::default(), &BTreeMap::new(), &allocs)
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        allocs.remove(&pk("db", 5432, L4Protocol::Tcp));
        s.save_with_allocations(&ck, &ClusterIntent::default(), &BTreeMap::new(), &allocs)
            .unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
        // `save` leaves allocations alone.
        s.save(&ck, &ClusterIntent::default(), &BTreeMap::new())
            .unwrap();
        assert_eq!(s.load_allocations().unwrap(), allocs);
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
        s.save_with_allocations(&ck, &ClusterIntent::default(), &BTreeMap::new(), &allocs)
            .unwrap();
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
        for owners in steps {
            s.save(&key, &ClusterIntent::default(), &owners).unwrap();
            assert_eq!(s.load().unwrap().owners, owners);
        }
    }
}
