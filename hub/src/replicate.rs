//! Hubs sharing a store (on etcd) follow each other: this task reads every change of the
//! store and hands it to the fleet (`fleet/shared.rs`), whose compile loop then programs this
//! hub's Envoys and AI gateways. Nothing runs for a store no other hub shares.
//!
//! Where it sits: beside `sync` (agents -> this hub -> store); this is store -> this hub, for
//! what other hubs accepted. A change reaches this hub's Envoys one store round trip after the
//! other hub wrote it.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::fleet::Fleet;
use crate::store::mcp_pins::PinRow;
use crate::store::shared::SharedChange;

/// Follows the shared store until it is gone; returns at once when it is not shared. MCP tool
/// pins other hubs wrote go to this hub's pins task through `pins`.
pub async fn run(fleet: Arc<Fleet>, pins: mpsc::Sender<(String, Vec<PinRow>)>) {
    let Some(mut watch) = fleet.store().watch_shared() else {
        return;
    };
    tracing::info!(hub = fleet.hub_id(), store = %fleet.store().describe(), "following the hubs that share the store");
    while let Some(seen) = watch.next().await {
        let fleet = fleet.clone();
        // Reads of the store block (a full read again after a break), so off the runtime.
        let applied = tokio::task::spawn_blocking(move || {
            let store = fleet.store();
            let Some(change) = store.decode_shared(seen)? else {
                return Ok(Vec::new());
            };
            match change {
                SharedChange::McpPins(tenant, rows) => Ok(vec![(tenant, rows)]),
                SharedChange::Restarted => {
                    fleet.apply_shared(SharedChange::Restarted)?;
                    Ok(store.load_mcp_pins()?.into_iter().collect())
                }
                other => fleet.apply_shared(other).map(|()| Vec::new()),
            }
        })
        .await;
        match applied {
            Ok(Ok(stored_pins)) => {
                for p in stored_pins {
                    if pins.send(p).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot apply a change another hub made to the store")
            }
            Err(e) => tracing::error!(error = %e, "applying a change of the shared store panicked"),
        }
    }
}
