//! What the hub's store needs of a database: keys and values, read one by one or by prefix,
//! and writes applied all together, only if every guard holds. Two backends: [`RedbKv`] (one
//! embedded file, the default, one hub) and [`EtcdKv`] (an etcd cluster several hubs share).
//!
//! Where it sits: under `store` (the typed tables: intent, hostname claims, allocations,
//! identity, MCP pins, session keys), which turns each of its changes into one [`Txn`]. A claim
//! that must be unique fleet-wide is written with a guard on the value it replaces, so two hubs
//! racing for it cannot both win: the loser's whole transaction is refused
//! ([`super::StoreError::Conflict`]), never half applied. Both backends pass one suite,
//! [`super::conformance`].

mod etcd;
mod redb;

pub use self::etcd::EtcdKv;
pub use self::redb::RedbKv;

/// How long an announced key outlives its hub (etcd lease TTL, seconds).
pub const ANNOUNCE_TTL_SECONDS: i64 = 10;

use super::StoreError;

/// The database the hub's configuration names: `storeEtcd` when set, else the `storePath` file.
pub fn configured(config: &crate::config::Config) -> Result<std::sync::Arc<dyn Kv>, StoreError> {
    Ok(match &config.store_etcd {
        Some(etcd) => std::sync::Arc::new(EtcdKv::connect(&etcd.endpoints, &etcd.prefix)?),
        None => std::sync::Arc::new(RedbKv::open(&config.store_path)?),
    })
}

/// A key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
}

/// A condition a transaction's writes depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// `key` does not exist.
    Absent(String),
    /// `key` exists and holds exactly this value.
    Equals(String, Vec<u8>),
}

impl Guard {
    /// `key` holds `value`, or is absent when `value` is `None`.
    pub fn holds(key: &str, value: Option<&[u8]>) -> Self {
        match value {
            Some(v) => Self::Equals(key.to_string(), v.to_vec()),
            None => Self::Absent(key.to_string()),
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Self::Absent(k) | Self::Equals(k, _) => k,
        }
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

/// Writes applied together, and only if every guard holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub guards: Vec<Guard>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn guard(&mut self, g: Guard) -> &mut Self {
        self.guards.push(g);
        self
    }

    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Put(key.into(), value.into()));
        self
    }

    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push(Op::Delete(key.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A change a watch saw (`Kv::watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Put(Entry),
    Deleted(String),
    /// The watch was interrupted and resumed where changes may have been missed: read again.
    Restarted,
}

/// A database the store can live in. Calls block the calling thread until the database
/// answers (like a local file write does); each is atomic.
pub trait Kv: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key that starts with `prefix`, sorted by key, read from one snapshot.
    fn scan(&self, prefix: &str) -> Result<Vec<Entry>, StoreError>;
    /// Applies `txn.ops` if every guard holds: `Ok(true)`. `Ok(false)`: a guard did not hold and
    /// nothing was written.
    fn commit(&self, txn: &Txn) -> Result<bool, StoreError>;
    /// Reclaims space after secrets were rewritten, where the backend keeps old pages.
    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Where the data lives, for messages: a file path or etcd endpoints.
    fn describe(&self) -> String;
    /// Whether other hubs may share this database (then each hub watches it and announces
    /// its agents' links in it).
    fn shared(&self) -> bool {
        false
    }
    /// Every change under `prefix` from now on, by whichever hub; `None` for a database no
    /// other hub shares.
    fn watch(&self, _prefix: &str) -> Option<tokio::sync::mpsc::UnboundedReceiver<Seen>> {
        None
    }
    /// Writes `key` for as long as this hub runs (it vanishes a few seconds after the hub
    /// dies), for the other hubs sharing the database; nothing to do where none can.
    fn announce(&self, _key: &str, _value: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    /// Removes an announced key.
    fn retract(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}
