//! The store's identity tables: bootstrap tokens already used, per-cluster certificate epochs,
//! and the clusters an operator disabled.
//!
//! Where it sits: beside the intent tables (step 6), read and written only by enrollment
//! (`crate::enroll`), by `Fleet` when the configuration changes and by the operator's admin API
//! (`crate::admin`). All survive restarts, so a token cannot be replayed against a restarted
//! hub, a removed or revoked cluster's certificates stay refused after it is added back, and a
//! cluster an operator disabled stays disabled.

use std::collections::{BTreeMap, BTreeSet};

use super::kv::{Guard, Txn};
use super::{Store, StoreError, db_err, key_str};
use crate::model::ClusterKey;

/// `used-tokens/v1/<token id>` -> its expiry (Unix seconds); rows are pruned once expired,
/// since an expired token is refused anyway.
const USED_TOKENS: &str = "used-tokens/v1/";
/// `cluster-identity/v1/<tenant>/<cluster>` -> JSON [`ClusterIdentity`].
const CLUSTER_IDENTITY: &str = "cluster-identity/v1/";
/// `operator-disabled/v1/<tenant>/<cluster>` of every cluster an operator disabled -> when
/// (Unix seconds).
const OPERATOR_DISABLED: &str = "operator-disabled/v1/";

/// How many times a read-modify-write of the identity table is tried when other hubs keep
/// changing it in between.
const ATTEMPTS: usize = 20;

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
    /// Records the bootstrap token `id` as used. `Ok(false)`: it was already used. One guarded
    /// write, so two agents racing with the same token (through one hub or two) cannot both
    /// win.
    pub fn consume_token(&self, id: &str, expires: u64, now: u64) -> Result<bool, StoreError> {
        let key = format!("{USED_TOKENS}{id}");
        let mut txn = Txn::default();
        txn.guard(Guard::Absent(key.clone()));
        txn.put(key, expires.to_string());
        if !self.kv.commit(&txn)? {
            return Ok(false);
        }
        // Expired rows go; a row another hub changed meanwhile is left for the next time.
        let mut prune = Txn::default();
        for row in self.kv.scan(USED_TOKENS)? {
            let expiry: u64 = std::str::from_utf8(&row.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if expiry <= now {
                prune.guard(Guard::Equals(row.key.clone(), row.value));
                prune.delete(row.key);
            }
        }
        if !prune.is_empty() {
            self.kv.commit(&prune)?;
        }
        Ok(true)
    }

    /// Applies the set of clusters that are registered and enabled now: a cluster that was
    /// active and is not any more gets `revoked_before = now`. Returns every cluster's
    /// `revoked_before` (those never revoked are absent).
    pub fn reconcile_clusters(
        &self,
        active: &BTreeSet<ClusterKey>,
        now: i64,
    ) -> Result<BTreeMap<ClusterKey, i64>, StoreError> {
        let wanted: BTreeSet<String> = active.iter().map(key_str).collect();
        self.update_identities(|rows| {
            let mut changed = Vec::new();
            for (k, row) in rows.iter() {
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
            changed
        })
    }

    /// An operator revokes `key`'s certificates: those issued at or before `now` are refused
    /// from now on (the cluster stays registered). Returns every cluster's `revoked_before`,
    /// like [`Store::reconcile_clusters`].
    pub fn revoke_cluster(
        &self,
        key: &ClusterKey,
        now: i64,
    ) -> Result<BTreeMap<ClusterKey, i64>, StoreError> {
        let k = key_str(key);
        self.update_identities(|rows| {
            let row = rows.get(&k).copied().unwrap_or(ClusterIdentity {
                active: true,
                revoked_before: 0,
            });
            vec![(
                k.clone(),
                ClusterIdentity {
                    revoked_before: row.revoked_before.max(now),
                    ..row
                },
            )]
        })
    }

    /// Reads every identity row, writes the rows `change` returns (each guarded by what was
    /// read; read again and retried when another hub got there first), and returns every
    /// cluster's `revoked_before` as written.
    fn update_identities(
        &self,
        change: impl Fn(&BTreeMap<String, ClusterIdentity>) -> Vec<(String, ClusterIdentity)>,
    ) -> Result<BTreeMap<ClusterKey, i64>, StoreError> {
        for _ in 0..ATTEMPTS {
            let (mut rows, raw) = self.identity_rows()?;
            let mut txn = Txn::default();
            for (k, row) in change(&rows) {
                let key = format!("{CLUSTER_IDENTITY}{k}");
                txn.guard(Guard::holds(&key, raw.get(&k).map(|v| v.as_slice())));
                txn.put(key, serde_json::to_vec(&row).map_err(db_err)?);
                rows.insert(k, row);
            }
            if txn.is_empty() || self.kv.commit(&txn)? {
                return Ok(revoked(rows));
            }
        }
        Err(StoreError::Conflict {
            what: format!("the cluster identity records {ATTEMPTS} times in a row"),
        })
    }

    /// Every row of the cluster identity table by `<tenant>/<cluster>`, decoded and as stored.
    #[allow(clippy::type_complexity)]
    fn identity_rows(
        &self,
    ) -> Result<(BTreeMap<String, ClusterIdentity>, BTreeMap<String, Vec<u8>>), StoreError> {
        let mut rows = BTreeMap::new();
        let mut raw = BTreeMap::new();
        for row in self.kv.scan(CLUSTER_IDENTITY)? {
            let k = row.key[CLUSTER_IDENTITY.len()..].to_string();
            let id = serde_json::from_slice(&row.value).map_err(|source| StoreError::Decode {
                key: row.key.clone(),
                source,
            })?;
            rows.insert(k.clone(), id);
            raw.insert(k, row.value);
        }
        Ok((rows, raw))
    }

    /// The clusters an operator disabled.
    pub fn load_operator_disabled(&self) -> Result<BTreeSet<ClusterKey>, StoreError> {
        Ok(self
            .kv
            .scan(OPERATOR_DISABLED)?
            .into_iter()
            .filter_map(|row| parse_key(&row.key[OPERATOR_DISABLED.len()..]))
            .collect())
    }

    /// Records that an operator disabled (`true`, at `now`, Unix seconds) or enabled `key`.
    pub fn set_operator_disabled(
        &self,
        key: &ClusterKey,
        disabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let k = format!("{OPERATOR_DISABLED}{}", key_str(key));
        let mut txn = Txn::default();
        if disabled {
            txn.put(k, now.to_string());
        } else {
            txn.delete(k);
        }
        self.kv.commit(&txn)?;
        Ok(())
    }
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
