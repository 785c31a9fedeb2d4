//! The hub's durable store: one embedded database file (redb) holding each cluster's accepted
//! intent and the hostname claims of every tenant.
//!
//! Where it sits: `admit` -> **store** -> `compile`. On start the hub loads everything from here,
//! so Envoy gets the last accepted intent of every cluster even before its agent reconnects.
//! Writes are transactional: a cluster's intent and the hostname claims change together or not at all.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::model::{ClusterIntent, ClusterKey, FleetIntent, Gateway, HttpRoute, TlsRoute};

/// The stored form of a `ClusterIntent`: plain lists (JSON maps need string keys); the maps are
/// rebuilt from each object's own namespace and name.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    gateways: Vec<Gateway>,
    http_routes: Vec<HttpRoute>,
    #[serde(default)]
    tls_routes: Vec<TlsRoute>,
}

impl From<&ClusterIntent> for Stored {
    fn from(i: &ClusterIntent) -> Self {
        Self {
            gateways: i.gateways.values().cloned().collect(),
            http_routes: i.http_routes.values().cloned().collect(),
            tls_routes: i.tls_routes.values().cloned().collect(),
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
        }
    }
}

/// `<tenant>/<cluster>` -> JSON of `ClusterIntent`.
const INTENT: TableDefinition<&str, &[u8]> = TableDefinition::new("intent/v1");
/// hostname pattern -> owning tenant.
const HOSTNAMES: TableDefinition<&str, &str> = TableDefinition::new("hostnames/v1");

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
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub struct Store {
    db: Database,
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
        txn.commit().map_err(db_err)?;
        Ok(Self { db })
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
            let stored: Stored =
                serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
                    key: key.clone(),
                    source,
                })?;
            out.intent.insert(
                ClusterKey {
                    tenant: tenant.into(),
                    cluster: cluster.into(),
                },
                stored.into(),
            );
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
        let bytes = serde_json::to_vec(&Stored::from(intent)).map_err(db_err)?;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(INTENT).map_err(db_err)?;
            let k = key_str(key);
            if intent.gateways.is_empty()
                && intent.http_routes.is_empty()
                && intent.tls_routes.is_empty()
            {
                t.remove(k.as_str()).map_err(db_err)?;
            } else {
                t.insert(k.as_str(), bytes.as_slice()).map_err(db_err)?;
            }
            // Only the claims that changed are written: with thousands of hostnames, one
            // changed route changes at most a few.
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
        txn.commit().map_err(db_err)?;
        Ok(())
    }
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
            listeners: vec![],
        }
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
