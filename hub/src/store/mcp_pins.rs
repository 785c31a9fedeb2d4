//! The store's MCP tool pins: per tenant, the definition hash each tool of each MCP route's
//! target is pinned to, and a changed definition waiting for the tenant's approval.
//!
//! Where it sits: beside the intent tables, written only by the pins task
//! (`crate::ai_config::pins`), the one writer; read once at start. Pins survive hub restarts,
//! so a target cannot "rug pull" a tool across one.

use std::collections::BTreeMap;

use super::kv::Txn;
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

    /// Replaces `tenant`'s pins (none: the row is removed).
    pub fn save_mcp_pins(&self, tenant: &str, rows: &[PinRow]) -> Result<(), StoreError> {
        let key = format!("{MCP_PINS}{tenant}");
        let mut txn = Txn::default();
        if rows.is_empty() {
            txn.delete(key);
        } else {
            txn.put(key, serde_json::to_vec(rows).map_err(db_err)?);
        }
        self.kv.commit(&txn)?;
        Ok(())
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
            s.save_mcp_pins("a", std::slice::from_ref(&row)).unwrap();
            s.save_mcp_pins("b", std::slice::from_ref(&row)).unwrap();
            s.save_mcp_pins("b", &[]).unwrap();
        }
        let s = Store::open(&path).unwrap();
        let loaded = s.load_mcp_pins().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["a"], vec![row]);
    }
}
