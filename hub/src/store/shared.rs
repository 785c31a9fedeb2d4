//! What hubs sharing one store (on etcd) see of each other: intent another hub accepted, the
//! hostname claims and allocations it changed, and which clusters have their agent on which
//! hub (links, announced for as long as the hub runs).
//!
//! Where it sits: beside the tables; `crate::replicate` turns these changes into the fleet's
//! state so that every hub programs its Envoys with every cluster's intent, whichever hub its
//! agent talks to. A store no other hub shares reports nothing.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::mpsc::UnboundedReceiver;

use super::kv::Seen;
use super::{HOSTNAMES, INTENT, L4_ALLOCATIONS, Store, StoreError, key_str};
use crate::model::{ClusterIntent, ClusterKey};

/// `links/v1/<tenant>/<cluster>/<hub id>` -> empty: the cluster's agent has a stream open to
/// that hub.
pub(crate) const LINKS: &str = "links/v1/";

/// A change of the shared store, as the fleet needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum SharedChange {
    /// A cluster's accepted intent (empty: removed).
    Intent(ClusterKey, ClusterIntent),
    /// Hostname claims or L4 allocations changed.
    Claims,
    /// The agent of a cluster opened (`up`) or closed its last stream to hub `hub`.
    Link {
        cluster: ClusterKey,
        hub: String,
        up: bool,
    },
    /// A tenant's MCP tool pins as a hub stored them (empty: removed); for the pins task.
    McpPins(String, Vec<crate::store::mcp_pins::PinRow>),
    /// Changes may have been missed: read everything again.
    Restarted,
}

/// Watches the whole shared store; `None` when no other hub can share it.
pub struct SharedWatch {
    seen: UnboundedReceiver<Seen>,
}

impl Store {
    /// Whether other hubs may share this store.
    pub fn is_shared(&self) -> bool {
        self.kv.shared()
    }

    /// Every change of the shared store from now on (starting with [`SharedChange::Restarted`]
    /// once the watch is in place); `None` for a store no other hub shares.
    pub fn watch_shared(&self) -> Option<SharedWatch> {
        Some(SharedWatch {
            seen: self.kv.watch("")?,
        })
    }

    /// Decodes one change; `Ok(None)` for records the fleet does not follow.
    pub fn decode_shared(&self, seen: Seen) -> Result<Option<SharedChange>, StoreError> {
        let (key, value) = match seen {
            Seen::Restarted => return Ok(Some(SharedChange::Restarted)),
            Seen::Put(e) => (e.key, Some(e.value)),
            Seen::Deleted(k) => (k, None),
        };
        if let Some(rest) = key.strip_prefix(INTENT) {
            return Ok(Some(match value {
                Some(v) => {
                    let (ck, intent) = self.decode_intent(rest, &v)?;
                    SharedChange::Intent(ck, intent)
                }
                None => {
                    let Some((tenant, cluster)) = rest.split_once('/') else {
                        return Err(StoreError::Db(format!("bad key {rest:?}")));
                    };
                    let ck = ClusterKey {
                        tenant: tenant.into(),
                        cluster: cluster.into(),
                    };
                    SharedChange::Intent(ck, ClusterIntent::default())
                }
            }));
        }
        if key.starts_with(HOSTNAMES) || key.starts_with(L4_ALLOCATIONS) {
            return Ok(Some(SharedChange::Claims));
        }
        if let Some(tenant) = Store::mcp_pins_tenant(&key) {
            let rows = match &value {
                Some(v) => Store::decode_mcp_pins(&key, v)?,
                None => Vec::new(),
            };
            return Ok(Some(SharedChange::McpPins(tenant.to_string(), rows)));
        }
        if let Some(rest) = key.strip_prefix(LINKS) {
            let mut parts = rest.splitn(3, '/');
            if let (Some(tenant), Some(cluster), Some(hub)) =
                (parts.next(), parts.next(), parts.next())
            {
                return Ok(Some(SharedChange::Link {
                    cluster: ClusterKey {
                        tenant: tenant.into(),
                        cluster: cluster.into(),
                    },
                    hub: hub.into(),
                    up: value.is_some(),
                }));
            }
        }
        Ok(None)
    }

    /// Tells the other hubs that `cluster`'s agent has a stream open to hub `hub` (until
    /// [`Store::retract_link`], or until this hub dies).
    pub fn announce_link(&self, cluster: &ClusterKey, hub: &str) -> Result<(), StoreError> {
        self.kv
            .announce(&format!("{LINKS}{}/{hub}", key_str(cluster)), b"")
    }

    pub fn retract_link(&self, cluster: &ClusterKey, hub: &str) -> Result<(), StoreError> {
        self.kv
            .retract(&format!("{LINKS}{}/{hub}", key_str(cluster)))
    }

    /// Every announced link: cluster -> hubs its agent talks to.
    pub fn load_links(&self) -> Result<BTreeMap<ClusterKey, BTreeSet<String>>, StoreError> {
        let mut out: BTreeMap<ClusterKey, BTreeSet<String>> = BTreeMap::new();
        for row in self.kv.scan(LINKS)? {
            let mut parts = row.key[LINKS.len()..].splitn(3, '/');
            if let (Some(tenant), Some(cluster), Some(hub)) =
                (parts.next(), parts.next(), parts.next())
            {
                out.entry(ClusterKey {
                    tenant: tenant.into(),
                    cluster: cluster.into(),
                })
                .or_default()
                .insert(hub.into());
            }
        }
        Ok(out)
    }
}

impl SharedWatch {
    /// The next raw change, `None` once the store is gone.
    pub async fn next(&mut self) -> Option<Seen> {
        self.seen.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::Entry;
    use crate::store::mcp_pins::PinRow;

    #[test]
    fn each_record_another_hub_writes_is_decoded_for_whoever_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.redb")).unwrap();
        let put = |key: &str, value: &[u8]| {
            Seen::Put(Entry {
                key: key.into(),
                value: value.to_vec(),
            })
        };
        let row = PinRow {
            route: "c1/default/tools".into(),
            target: "alpha".into(),
            tool: "add".into(),
            sha256: "1".repeat(64),
            pending: None,
        };
        let json = serde_json::to_vec(std::slice::from_ref(&row)).unwrap();
        assert_eq!(
            store.decode_shared(put("mcp-pins/v1/a", &json)).unwrap(),
            Some(SharedChange::McpPins("a".into(), vec![row]))
        );
        assert_eq!(
            store
                .decode_shared(Seen::Deleted("mcp-pins/v1/a".into()))
                .unwrap(),
            Some(SharedChange::McpPins("a".into(), Vec::new()))
        );
        assert!(store.decode_shared(put("mcp-pins/v1/a", b"{")).is_err());
        assert_eq!(
            store
                .decode_shared(put(&format!("{HOSTNAMES}app.a.example"), b"a"))
                .unwrap(),
            Some(SharedChange::Claims)
        );
        assert_eq!(
            store
                .decode_shared(Seen::Deleted(format!("{LINKS}a/east/hub-1")))
                .unwrap(),
            Some(SharedChange::Link {
                cluster: ClusterKey {
                    tenant: "a".into(),
                    cluster: "east".into()
                },
                hub: "hub-1".into(),
                up: false
            })
        );
        assert_eq!(
            store
                .decode_shared(put("mcp-session-secrets/v1/ring", b"{}"))
                .unwrap(),
            None
        );
    }
}
