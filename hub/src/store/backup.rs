//! Backup and restore of the whole store, on either backend: every key is copied from one
//! database into another that holds nothing yet. A backup is an embedded store file, so the
//! same two calls back up etcd into a file, restore a file into etcd (or a new file), and move
//! one hub's file onto etcd.
//!
//! Where it sits: beside the backends (`kv`); `fleetgate-hub store backup|restore` (main.rs)
//! opens both ends and calls [`copy_all`]. Links (which hub holds which agent) live only as
//! long as their hub and are not copied. Values are copied as stored: tenant keys and MCP
//! secrets stay sealed, so a restore needs the PKI folder the backup was made with.

use super::StoreError;
use super::kv::{Kv, Txn};
use super::shared::LINKS;

/// Keys per transaction (etcd's `--max-txn-ops` defaults to 128).
const BATCH_KEYS: usize = 64;
/// Bytes per transaction, below etcd's default `--max-request-bytes` (1.5 MiB); a value larger
/// than this goes alone.
const BATCH_BYTES: usize = 1024 * 1024;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub keys: usize,
    pub bytes: usize,
}

/// Copies every key of `from` (read from one snapshot) into `to`, which must hold no key.
/// Each batch is guarded on its keys being absent, so a hub that starts writing into `to`
/// meanwhile stops the copy instead of being overwritten.
pub fn copy_all(from: &dyn Kv, to: &dyn Kv) -> Result<Copied, StoreError> {
    let present = to.scan("")?;
    if let Some(first) = present.iter().find(|e| !e.key.starts_with(LINKS)) {
        return Err(StoreError::Db(format!(
            "{} already holds {} keys (e.g. {}): restore into an empty store (a new file, or an etcd prefix no hub uses) and point the hubs at it",
            to.describe(),
            present.len(),
            first.key
        )));
    }
    let rows: Vec<_> = from
        .scan("")?
        .into_iter()
        .filter(|e| !e.key.starts_with(LINKS))
        .collect();
    let mut copied = Copied { keys: 0, bytes: 0 };
    let mut txn = Txn::default();
    let mut txn_bytes = 0;
    for row in rows {
        if !txn.is_empty()
            && (txn.ops.len() >= BATCH_KEYS || txn_bytes + row.value.len() > BATCH_BYTES)
        {
            commit(to, &txn)?;
            txn = Txn::default();
            txn_bytes = 0;
        }
        copied.keys += 1;
        copied.bytes += row.value.len();
        txn_bytes += row.key.len() + row.value.len();
        txn.guard(super::kv::Guard::Absent(row.key.clone()));
        txn.put(row.key, row.value);
    }
    if !txn.is_empty() {
        commit(to, &txn)?;
    }
    Ok(copied)
}

fn commit(to: &dyn Kv, txn: &Txn) -> Result<(), StoreError> {
    if to.commit(txn)? {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            what: format!(
                "{} during the restore (a hub is writing into it)",
                to.describe()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::RedbKv;

    fn store(dir: &tempfile::TempDir, name: &str) -> RedbKv {
        RedbKv::open(&dir.path().join(name)).unwrap()
    }

    fn put(kv: &dyn Kv, key: &str, value: &[u8]) {
        let mut txn = Txn::default();
        txn.put(key, value);
        assert!(kv.commit(&txn).unwrap());
    }

    #[test]
    fn every_key_but_links_is_copied_in_batches_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.redb");
        // More keys than one batch holds, and a value bigger than one batch's bytes.
        for i in 0..150 {
            put(
                &from,
                &format!("intent/v1/t/c{i:03}"),
                format!("{{\"n\":{i}}}").as_bytes(),
            );
        }
        put(&from, "hostnames/v1/big", &vec![b'x'; BATCH_BYTES + 10]);
        put(&from, &format!("{LINKS}t/c000/hub-1"), b"");
        let to = store(&dir, "to.redb");
        let copied = copy_all(&from, &to).unwrap();
        assert_eq!(copied.keys, 151);
        let want: Vec<_> = from
            .scan("")
            .unwrap()
            .into_iter()
            .filter(|e| !e.key.starts_with(LINKS))
            .collect();
        assert_eq!(to.scan("").unwrap(), want);
    }

    #[test]
    fn a_store_that_holds_anything_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.redb");
        put(&from, "intent/v1/t/c", b"{}");
        let to = store(&dir, "to.redb");
        put(&to, "hostnames/v1/a.example", b"t");
        let e = copy_all(&from, &to).unwrap_err().to_string();
        assert!(e.contains("restore into an empty store"), "{e}");
        assert!(e.contains("hostnames/v1/a.example"), "{e}");
        assert_eq!(to.scan("").unwrap().len(), 1);
    }
}
