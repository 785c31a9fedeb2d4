//! The store's identity tables: bootstrap tokens already used, per-cluster certificate epochs,
//! and the clusters an operator disabled.
//!
//! Where it sits: beside the intent tables (step 6), read and written only by enrollment
//! (`crate::enroll`), by `Fleet` when the configuration changes and by the operator's admin API
//! (`crate::admin`). All survive restarts, so a token cannot be replayed against a restarted
//! hub, a removed or revoked cluster's certificates stay refused after it is added back, and a
//! cluster an operator disabled stays disabled.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, TableDefinition};

use super::{Store, StoreError, db_err, key_str};
use crate::model::ClusterKey;

/// Used bootstrap token id -> its expiry (Unix seconds); rows are pruned once expired, since an
/// expired token is refused anyway.
const USED_TOKENS: TableDefinition<&str, u64> = TableDefinition::new("used-tokens/v1");
/// `<tenant>/<cluster>` -> JSON [`ClusterIdentity`].
const CLUSTER_IDENTITY: TableDefinition<&str, &str> = TableDefinition::new("cluster-identity/v1");
/// `<tenant>/<cluster>` of every cluster an operator disabled -> when (Unix seconds).
const OPERATOR_DISABLED: TableDefinition<&str, i64> = TableDefinition::new("operator-disabled/v1");

/// What the store remembers about a cluster's identity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterIdentity {
    /// Registered and enabled in the configuration last applied.
    active: bool,
    /// Certificates issued at or before this time (Unix seconds) are refused: set when the
    /// cluster was removed or disabled. 0: none.
    revoked_before: i64,
}

impl Store {
    /// Records the bootstrap token `id` as used. `Ok(false)`: it was already used. One write
    /// transaction, so two agents racing with the same token cannot both win.
    pub fn consume_token(&self, id: &str, expires: u64, now: u64) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let fresh = {
            let mut t = txn.open_table(USED_TOKENS).map_err(db_err)?;
            let expired: Vec<String> = t
                .iter()
                .map_err(db_err)?
                .filter_map(|r| r.ok())
                .filter(|(_, v)| v.value() <= now)
                .map(|(k, _)| k.value().to_string())
                .collect();
            for k in expired {
                t.remove(k.as_str()).map_err(db_err)?;
            }
            t.insert(id, expires).map_err(db_err)?.is_none()
        };
        if fresh {
            txn.commit().map_err(db_err)?;
        } else {
            txn.abort().map_err(db_err)?;
        }
        Ok(fresh)
    }

    /// Applies the set of clusters that are registered and enabled now: a cluster that was
    /// active and is not any more gets `revoked_before = now`. Returns every cluster's
    /// `revoked_before` (those never revoked are absent).
    pub fn reconcile_clusters(
        &self,
        active: &BTreeSet<ClusterKey>,
        now: i64,
    ) -> Result<BTreeMap<ClusterKey, i64>, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let out;
        {
            let mut t = txn.open_table(CLUSTER_IDENTITY).map_err(db_err)?;
            let mut rows = identity_rows(&t)?;
            let wanted: BTreeSet<String> = active.iter().map(key_str).collect();
            let mut changed = Vec::new();
            for (k, row) in &rows {
                if row.active && !wanted.contains(k) {
                    changed.push((
                        k.clone(),
                        ClusterIdentity {
                            active: false,
                            revoked_before: now,
                        },
                    ));
                }
            }
            for k in &wanted {
                let row = rows.get(k).copied().unwrap_or_default();
                if !row.active {
                    changed.push((
                        k.clone(),
                        ClusterIdentity {
                            active: true,
                            ..row
                        },
                    ));
                }
            }
            for (k, row) in changed {
                let json = serde_json::to_string(&row).map_err(db_err)?;
                t.insert(k.as_str(), json.as_str()).map_err(db_err)?;
                rows.insert(k, row);
            }
            out = revoked(rows);
        }
        txn.commit().map_err(db_err)?;
        Ok(out)
    }

    /// An operator revokes `key`'s certificates: those issued at or before `now` are refused
    /// from now on (the cluster stays registered). Returns every cluster's `revoked_before`,
    /// like [`Store::reconcile_clusters`].
    pub fn revoke_cluster(
        &self,
        key: &ClusterKey,
        now: i64,
    ) -> Result<BTreeMap<ClusterKey, i64>, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let out;
        {
            let mut t = txn.open_table(CLUSTER_IDENTITY).map_err(db_err)?;
            let mut rows = identity_rows(&t)?;
            let k = key_str(key);
            let row = rows.entry(k.clone()).or_insert(ClusterIdentity {
                active: true,
                revoked_before: 0,
            });
            row.revoked_before = row.revoked_before.max(now);
            let json = serde_json::to_string(&*row).map_err(db_err)?;
            t.insert(k.as_str(), json.as_str()).map_err(db_err)?;
            out = revoked(rows);
        }
        txn.commit().map_err(db_err)?;
        Ok(out)
    }

    /// The clusters an operator disabled.
    pub fn load_operator_disabled(&self) -> Result<BTreeSet<ClusterKey>, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let out = {
            let t = txn.open_table(OPERATOR_DISABLED).map_err(db_err)?;
            let mut out = BTreeSet::new();
            for r in t.iter().map_err(db_err)? {
                let (k, _) = r.map_err(db_err)?;
                if let Some(key) = parse_key(k.value()) {
                    out.insert(key);
                }
            }
            out
        };
        txn.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Records that an operator disabled (`true`, at `now`, Unix seconds) or enabled `key`.
    pub fn set_operator_disabled(
        &self,
        key: &ClusterKey,
        disabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(OPERATOR_DISABLED).map_err(db_err)?;
            let k = key_str(key);
            if disabled {
                t.insert(k.as_str(), now).map_err(db_err)?;
            } else {
                t.remove(k.as_str()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(())
    }
}

/// Every row of the cluster identity table, by `<tenant>/<cluster>`.
fn identity_rows(
    t: &impl ReadableTable<&'static str, &'static str>,
) -> Result<BTreeMap<String, ClusterIdentity>, StoreError> {
    let mut rows = BTreeMap::new();
    for r in t.iter().map_err(db_err)? {
        let (k, v) = r.map_err(db_err)?;
        let id = serde_json::from_str(v.value()).map_err(|source| StoreError::Decode {
            key: k.value().to_string(),
            source,
        })?;
        rows.insert(k.value().to_string(), id);
    }
    Ok(rows)
}

fn parse_key(k: &str) -> Option<ClusterKey> {
    let (tenant, cluster) = k.split_once('/')?;
    Some(ClusterKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
    })
}

/// The `revoked_before` of every cluster that has one.
fn revoked(rows: BTreeMap<String, ClusterIdentity>) -> BTreeMap<ClusterKey, i64> {
    rows.into_iter()
        .filter(|(_, row)| row.revoked_before > 0)
        .filter_map(|(k, row)| Some((parse_key(&k)?, row.revoked_before)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: &str) -> ClusterKey {
        ClusterKey {
            tenant: "a".into(),
            cluster: c.into(),
        }
    }

    #[test]
    fn a_token_is_used_once_even_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            assert!(s.consume_token("t1", 100, 10).unwrap());
            assert!(!s.consume_token("t1", 100, 11).unwrap());
            assert!(s.consume_token("t2", 20, 11).unwrap());
        }
        let s = Store::open(&path).unwrap();
        assert!(!s.consume_token("t1", 100, 12).unwrap());
        // t2 expired at 20: its row is pruned (it would be refused as expired before this).
        assert!(s.consume_token("t3", 100, 30).unwrap());
        assert!(s.consume_token("t2", 20, 30).unwrap());
    }

    #[test]
    fn a_cluster_that_leaves_is_revoked_and_stays_revoked_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let both: BTreeSet<_> = [key("c1"), key("c2")].into();
        {
            let s = Store::open(&path).unwrap();
            assert!(s.reconcile_clusters(&both, 100).unwrap().is_empty());
            let only_c1: BTreeSet<_> = [key("c1")].into();
            assert_eq!(
                s.reconcile_clusters(&only_c1, 200).unwrap(),
                [(key("c2"), 200)].into()
            );
            // Applying the same set again changes nothing.
            assert_eq!(
                s.reconcile_clusters(&only_c1, 300).unwrap(),
                [(key("c2"), 200)].into()
            );
        }
        // Back after a restart: the epoch is kept.
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.reconcile_clusters(&both, 400).unwrap(),
            [(key("c2"), 200)].into()
        );
        // Removed while the hub was down: the first reconcile after start revokes it.
        assert_eq!(
            s.reconcile_clusters(&BTreeSet::new(), 500).unwrap(),
            [(key("c1"), 500), (key("c2"), 500)].into()
        );
    }

    #[test]
    fn an_operators_revocation_and_disabling_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let both: BTreeSet<_> = [key("c1"), key("c2")].into();
        {
            let s = Store::open(&path).unwrap();
            s.reconcile_clusters(&both, 100).unwrap();
            assert_eq!(
                s.revoke_cluster(&key("c1"), 150).unwrap(),
                [(key("c1"), 150)].into()
            );
            s.set_operator_disabled(&key("c2"), true, 160).unwrap();
            s.set_operator_disabled(&key("c1"), true, 170).unwrap();
            s.set_operator_disabled(&key("c1"), false, 180).unwrap();
        }
        let s = Store::open(&path).unwrap();
        // The revocation holds and the cluster stays active (it may enroll again).
        assert_eq!(
            s.reconcile_clusters(&both, 200).unwrap(),
            [(key("c1"), 150)].into()
        );
        assert_eq!(s.load_operator_disabled().unwrap(), [key("c2")].into());
    }
}
