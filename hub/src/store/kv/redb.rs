//! The embedded backend: one redb file, one table of keys and values. The default; one hub.
//!
//! A transaction is one redb write transaction: guards are read and writes applied inside it,
//! so nothing can come between them. Files written by hubs before the store had backends (one
//! table per kind of record) are moved into the one table when opened.
//!
//! The page cache is bounded at [`CACHE_BYTES`] (redb's default is 1 GiB, and it keeps every
//! page written or read until that is full: a second copy of the whole store on the heap, since
//! the hub reads it all at start). The hub serves from its own copy of the state
//! (`crate::fleet`): after the start it reads only small records (a write's guards, claims and
//! allocations after a conflict, session keys, MCP pins), so the cache only has to hold those
//! and what a write walks, the B-tree's branch pages.

use std::path::Path;
use std::sync::RwLock;

use redb::{Builder, Database, ReadableTable, TableDefinition, TableHandle};

use super::{Entry, Guard, Kv, Op, StoreError, Txn};
use crate::store::db_err;

/// Every record, keyed `<table>/<version>/<key>` (see `crate::store`).
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv/v1");

/// The most memory redb's page cache takes (nine tenths read cache, one tenth pages of the
/// open write waiting for its commit). It holds the branch pages and the small records of a
/// large fleet's store; a cluster's intent (one record per cluster, replaced whole by each
/// accepted Update) may not fit, and is then read from and written to the file directly: a
/// `pread` of pages the OS page cache usually holds, not a second copy on the hub's heap.
pub const CACHE_BYTES: usize = 4 << 20;

/// A store in one redb file.
pub struct RedbKv {
    path: String,
    /// Written only by [`Kv::compact`], which needs the database to itself.
    db: RwLock<Database>,
}

impl RedbKv {
    /// Opens (or creates) the file, and its parent folder, with a [`CACHE_BYTES`] page cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, CACHE_BYTES)
    }

    /// [`RedbKv::open`] with a page cache of at most `cache_bytes`.
    fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(db_err)?;
        }
        let db = Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                reason: source.to_string(),
            })?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(KV).map_err(db_err)?;
        migrate_tables(&txn)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            path: path.display().to_string(),
            db: RwLock::new(db),
        })
    }

    fn db(&self) -> std::sync::RwLockReadGuard<'_, Database> {
        self.db.read().expect("store database lock poisoned")
    }
}

impl Kv for RedbKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db().begin_read().map_err(db_err)?;
        let t = txn.open_table(KV).map_err(db_err)?;
        Ok(t.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let txn = self.db().begin_read().map_err(db_err)?;
        let t = txn.open_table(KV).map_err(db_err)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push(Entry {
                key: k.value().to_string(),
                value: v.value().to_vec(),
            });
        }
        Ok(out)
    }

    fn commit(&self, txn: &Txn) -> Result<bool, StoreError> {
        let db = self.db();
        let w = db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(KV).map_err(db_err)?;
            for g in &txn.guards {
                let now = t.get(g.key()).map_err(db_err)?.map(|v| v.value().to_vec());
                let holds = match g {
                    Guard::Absent(_) => now.is_none(),
                    Guard::Equals(_, want) => now.as_ref() == Some(want),
                };
                if !holds {
                    drop(t);
                    w.abort().map_err(db_err)?;
                    return Ok(false);
                }
            }
            for op in &txn.ops {
                match op {
                    Op::Put(k, v) => {
                        t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                    }
                    Op::Delete(k) => {
                        t.remove(k.as_str()).map_err(db_err)?;
                    }
                }
            }
        }
        w.commit().map_err(db_err)?;
        Ok(true)
    }

    fn compact(&self) -> Result<(), StoreError> {
        let mut db = self.db.write().expect("store database lock poisoned");
        db.compact().map_err(db_err)?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

/// The tables of hubs before the store had backends, and how their values become bytes.
const OLD_BYTES: [&str; 2] = ["intent/v1", "mcp-pins/v1"];
const OLD_STRINGS: [&str; 4] = [
    "hostnames/v1",
    "l4-allocations/v1",
    "cluster-identity/v1",
    "mcp-session-secrets/v1",
];
const OLD_U64: [&str; 1] = ["used-tokens/v1"];
const OLD_I64: [&str; 1] = ["operator-disabled/v1"];

/// Moves every row of the old per-kind tables into [`KV`] under `<table>/<key>`, and drops
/// those tables; nothing to do on a file written by this version.
fn migrate_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let old: Vec<String> = txn
        .list_tables()
        .map_err(db_err)?
        .map(|t| t.name().to_string())
        .filter(|n| n != KV.name())
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
    for name in &old {
        let name = name.as_str();
        let key = |k: &str| format!("{name}/{k}");
        if OLD_BYTES.contains(&name) {
            let t = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(name))
                .map_err(db_err)?;
            for r in t.iter().map_err(db_err)? {
                let (k, v) = r.map_err(db_err)?;
                rows.push((key(k.value()), v.value().to_vec()));
            }
        } else if OLD_STRINGS.contains(&name) {
            let t = txn
                .open_table(TableDefinition::<&str, &str>::new(name))
                .map_err(db_err)?;
            for r in t.iter().map_err(db_err)? {
                let (k, v) = r.map_err(db_err)?;
                rows.push((key(k.value()), v.value().as_bytes().to_vec()));
            }
        } else if OLD_U64.contains(&name) {
            let t = txn
                .open_table(TableDefinition::<&str, u64>::new(name))
                .map_err(db_err)?;
            for r in t.iter().map_err(db_err)? {
                let (k, v) = r.map_err(db_err)?;
                rows.push((key(k.value()), v.value().to_string().into_bytes()));
            }
        } else if OLD_I64.contains(&name) {
            let t = txn
                .open_table(TableDefinition::<&str, i64>::new(name))
                .map_err(db_err)?;
            for r in t.iter().map_err(db_err)? {
                let (k, v) = r.map_err(db_err)?;
                rows.push((key(k.value()), v.value().to_string().into_bytes()));
            }
        } else {
            return Err(StoreError::Db(format!(
                "the store holds a table {name:?} this hub does not know: it was written by a newer hub; run that version, or restore a backup taken before it"
            )));
        }
    }
    {
        let mut t = txn.open_table(KV).map_err(db_err)?;
        for (k, v) in &rows {
            t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
        }
    }
    for name in &old {
        txn.delete_table(TableDefinition::<&str, &[u8]>::new(name))
            .map_err(db_err)?;
    }
    tracing::info!(
        tables = old.len(),
        rows = rows.len(),
        "moved the store's tables into one table"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_the_per_kind_tables_is_moved_into_one_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(TableDefinition::<&str, &[u8]>::new("intent/v1"))
                .unwrap()
                .insert("a/east", b"{}".as_slice())
                .unwrap();
            w.open_table(TableDefinition::<&str, &str>::new("hostnames/v1"))
                .unwrap()
                .insert("shop.example", "a")
                .unwrap();
            w.open_table(TableDefinition::<&str, u64>::new("used-tokens/v1"))
                .unwrap()
                .insert("tok1", 1_900_000_000)
                .unwrap();
            w.open_table(TableDefinition::<&str, i64>::new("operator-disabled/v1"))
                .unwrap()
                .insert("a/east", 1_800_000_000)
                .unwrap();
            w.commit().unwrap();
        }
        let kv = RedbKv::open(&path).unwrap();
        assert_eq!(kv.get("intent/v1/a/east").unwrap(), Some(b"{}".to_vec()));
        assert_eq!(
            kv.get("hostnames/v1/shop.example").unwrap(),
            Some(b"a".to_vec())
        );
        assert_eq!(
            kv.get("used-tokens/v1/tok1").unwrap(),
            Some(b"1900000000".to_vec())
        );
        assert_eq!(
            kv.get("operator-disabled/v1/a/east").unwrap(),
            Some(b"1800000000".to_vec())
        );
        drop(kv);
        // Opened again: nothing left to move, the rows stay.
        let kv = RedbKv::open(&path).unwrap();
        assert_eq!(kv.scan("").unwrap().len(), 4);
    }

    /// A store many times larger than its page cache (intent records bigger than the whole
    /// cache, replaced again and again like a churning cluster's) reads back whole, also after
    /// it is opened again: with the cache bounded, redb evicts pages and writes an open
    /// write's pages out before its commit.
    #[test]
    fn a_store_larger_than_its_page_cache_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let cache = 64 << 10;
        let record = |i: usize, round: usize| -> Vec<u8> {
            let len = (cache * 3 / 2) + i * 4096;
            (0..len)
                .map(|b| ((b + i * 7 + round) % 251) as u8)
                .collect()
        };
        let put = |kv: &RedbKv, i: usize, round: usize| {
            let txn = Txn {
                guards: Vec::new(),
                ops: vec![Op::Put(format!("intent/v1/t/c{i}"), record(i, round))],
            };
            assert!(kv.commit(&txn).unwrap());
        };
        {
            let kv = RedbKv::open_with_cache(&path, cache).unwrap();
            for round in 0..4 {
                for i in 0..8 {
                    put(&kv, i, round);
                }
                for i in 0..8 {
                    assert_eq!(
                        kv.get(&format!("intent/v1/t/c{i}")).unwrap(),
                        Some(record(i, round))
                    );
                }
            }
        }
        let kv = RedbKv::open_with_cache(&path, cache).unwrap();
        let all = kv.scan("intent/v1/").unwrap();
        assert_eq!(all.len(), 8);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.key, format!("intent/v1/t/c{i}"));
            assert_eq!(e.value, record(i, 3));
        }
    }

    #[test]
    fn a_table_of_a_newer_hub_is_named_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(TableDefinition::<&str, &str>::new("future/v9"))
                .unwrap()
                .insert("k", "v")
                .unwrap();
            w.commit().unwrap();
        }
        let err = RedbKv::open(&path).err().expect("refused");
        assert!(err.to_string().contains("future/v9"), "{err}");
    }
}
