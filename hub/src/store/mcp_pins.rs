//! The store's MCP tool pins: per tenant, the definition hash each tool of each MCP route's
//! target is pinned to, and a changed definition waiting for the tenant's approval.
//!
//! Where it sits: beside the intent tables, written only by the pins task
//! (`crate::ai_config::pins`), one per hub. Hubs sharing a store (on etcd) write a tenant's
//! pins with a guard on what they last read, so the first report fleet-wide wins there too:
//! a hub whose write conflicts takes the stored pins and applies its report on top. Pins
//! survive hub restarts, so a target cannot "rug pull" a tool across one.

use std::collections::BTreeMap;

use super::kv::{Guard, Txn};
use super::{Store, StoreError, db_err};

/// `mcp-pins/v1/<tenant>` -> JSON `Vec<PinRow>`.
const MCP_PINS: &str = "mcp-pins/v1/";

/// One pinned tool, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinRow {
    /// The AI route (the gateway's route name).
    pub route: String,
    pub target: String,
    /// The tool's own name at the target.
    pub tool: String,
    /// SHA-256 of the definition the tool is pinned to (64 hex digits).
    pub sha256: String,
    /// A changed definition a gateway saw, withheld until the tenant accepts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

impl Store {
    /// Every tenant's pins.
    pub fn load_mcp_pins(&self) -> Result<BTreeMap<String, Vec<PinRow>>, StoreError> {
        let mut out = BTreeMap::new();
        for row in self.kv.scan(MCP_PINS)? {
            let rows = serde_json::from_slice(&row.value).map_err(|source| StoreError::Decode {
                key: row.key.clone(),
                source,
            })?;
            out.insert(row.key[MCP_PINS.len()..].to_string(), rows);
        }
        Ok(out)
    }

    /// Replaces `tenant`'s pins (none: the row is removed) if the store still holds
    /// `expected` (none: no row): `Ok(None)`. Another hub wrote them first: nothing is written,
    /// `Ok(Some(what the store holds now))`.
    pub fn swap_mcp_pins(
        &self,
        tenant: &str,
        expected: &[PinRow],
        rows: &[PinRow],
    ) -> Result<Option<Vec<PinRow>>, StoreError> {
        let key = format!("{MCP_PINS}{tenant}");
        let encode = |rows: &[PinRow]| -> Result<Option<Vec<u8>>, StoreError> {
            if rows.is_empty() {
                Ok(None)
            } else {
                serde_json::to_vec(rows).map(Some).map_err(db_err)
            }
        };
        let mut txn = Txn::default();
        txn.guard(Guard::holds(&key, encode(expected)?.as_deref()));
        match encode(rows)? {
            Some(v) => txn.put(key.clone(), v),
            None => txn.delete(key.clone()),
        };
        if self.kv.commit(&txn)? {
            return Ok(None);
        }
        let now = match self.kv.get(&key)? {
            Some(v) => serde_json::from_slice(&v).map_err(|source| StoreError::Decode {
                key: key.clone(),
                source,
            })?,
            None => Vec::new(),
        };
        Ok(Some(now))
    }

    /// The tenant whose pins a store key holds (`mcp-pins/v1/<tenant>`), for hubs following
    /// each other's writes.
    pub fn mcp_pins_tenant(key: &str) -> Option<&str> {
        key.strip_prefix(MCP_PINS)
    }

    /// Reads one stored value of [`Store::mcp_pins_tenant`]'s key.
    pub fn decode_mcp_pins(key: &str, value: &[u8]) -> Result<Vec<PinRow>, StoreError> {
        serde_json::from_slice(value).map_err(|source| StoreError::Decode {
            key: key.to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_survive_reopen_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.redb");
        let row = PinRow {
            route: "c1/default/tools".into(),
            target: "alpha".into(),
            tool: "add".into(),
            sha256: "1".repeat(64),
            pending: Some("2".repeat(64)),
        };
        {
            let s = Store::open(&path).unwrap();
            assert!(s.load_mcp_pins().unwrap().is_empty());
            let one = std::slice::from_ref(&row);
            assert_eq!(s.swap_mcp_pins("a", &[], one).unwrap(), None);
            assert_eq!(s.swap_mcp_pins("b", &[], one).unwrap(), None);
            assert_eq!(s.swap_mcp_pins("b", one, &[]).unwrap(), None);
            // Written by another hub since this one read: refused, and what is there returned.
            let mut other = row.clone();
            other.sha256 = "3".repeat(64);
            assert_eq!(
                s.swap_mcp_pins("a", &[], std::slice::from_ref(&other))
                    .unwrap(),
                Some(vec![row.clone()])
            );
        }
        let s = Store::open(&path).unwrap();
        let loaded = s.load_mcp_pins().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["a"], vec![row]);
    }
}
