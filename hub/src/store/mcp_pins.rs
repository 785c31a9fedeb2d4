//! The store's MCP tool pins: per tenant, the definition hash each tool of each MCP route's
//! target is pinned to, and a changed definition waiting for the tenant's approval.
//!
//! Where it sits: beside the intent tables, written only by the pins task
//! (`crate::ai_config::pins`), the one writer; read once at start. Pins survive hub restarts,
//! so a target cannot "rug pull" a tool across one.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};

use super::{Store, StoreError, db_err};

/// tenant -> JSON `Vec<PinRow>`.
const MCP_PINS: TableDefinition<&str, &[u8]> = TableDefinition::new("mcp-pins/v1");

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
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = match txn.open_table(MCP_PINS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = BTreeMap::new();
        for r in t.iter().map_err(db_err)? {
            let (k, v) = r.map_err(db_err)?;
            let rows = serde_json::from_slice(v.value()).map_err(|source| StoreError::Decode {
                key: format!("mcp-pins/{}", k.value()),
                source,
            })?;
            out.insert(k.value().to_string(), rows);
        }
        Ok(out)
    }

    /// Replaces `tenant`'s pins (none: the row is removed).
    pub fn save_mcp_pins(&self, tenant: &str, rows: &[PinRow]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(MCP_PINS).map_err(db_err)?;
            if rows.is_empty() {
                t.remove(tenant).map_err(db_err)?;
            } else {
                let json = serde_json::to_vec(rows).map_err(db_err)?;
                t.insert(tenant, json.as_slice()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)
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
