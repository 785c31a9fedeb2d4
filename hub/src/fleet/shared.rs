//! The fleet's side of a store shared by several hubs: what another hub accepted is taken as
//! it was stored (it was admitted there, as stored intent is at start), so that every hub
//! programs its Envoys and AI gateways with every cluster, whichever hub its agent talks to.
//!
//! Where it sits: `crate::replicate` reads the store's changes and hands each here. A cluster
//! whose agent has a stream open to this hub is this hub's to write; changes of it seen in the
//! store are this hub's own and are skipped (applying an older echo would undo a newer write).

use std::sync::Arc;

use tokio::time::Instant;

use super::{Fleet, State};
use crate::model::{ClusterIntent, ClusterKey};
use crate::store::StoreError;
use crate::store::shared::SharedChange;

impl Fleet {
    /// This hub's id among those sharing the store.
    pub fn hub_id(&self) -> &str {
        &self.hub_id
    }

    /// Applies one change another hub made to the shared store.
    pub fn apply_shared(&self, change: SharedChange) -> Result<(), StoreError> {
        match change {
            SharedChange::Intent(key, intent) => self.adopt(&key, intent),
            SharedChange::Claims => {
                let mut state = self.state.lock().expect("fleet state lock poisoned");
                self.reread_claims(&mut state);
            }
            SharedChange::Link { cluster, hub, up } => {
                if hub != self.hub_id {
                    self.links
                        .lock()
                        .expect("fleet links lock poisoned")
                        .remote(&cluster, &hub, up, Instant::now());
                }
            }
            SharedChange::Restarted => self.reread_all()?,
            // The pins task's, not the fleet's (`crate::replicate`).
            SharedChange::McpPins(..) => return Ok(()),
        }
        self.revision.send_modify(|r| *r += 1);
        Ok(())
    }

    /// Takes `key`'s intent as another hub stored it, unless its agent is here.
    fn adopt(&self, key: &ClusterKey, intent: ClusterIntent) {
        if !self.is_registered(key)
            || self
                .links
                .lock()
                .expect("fleet links lock poisoned")
                .is_open(key)
        {
            return;
        }
        let mut state = self.state.lock().expect("fleet state lock poisoned");
        let st: &mut State = &mut state;
        if st
            .intent
            .get(key)
            .map_or(intent.is_empty(), |have| **have == intent)
        {
            return;
        }
        let fleet = Arc::make_mut(&mut st.intent);
        if intent.is_empty() {
            fleet.remove(key);
        } else {
            fleet.insert(key.clone(), Arc::new(intent));
        }
        *st.revisions.entry(key.clone()).or_default() += 1;
        self.reread_claims(st);
        tracing::info!(cluster = %key, "took the intent another hub accepted");
    }

    /// Reads every cluster's intent, the claims and the links again (at start of the watch,
    /// and when changes may have been missed).
    fn reread_all(&self) -> Result<(), StoreError> {
        let loaded = self.store.load()?;
        let mut remote = self.store.load_links()?;
        for hubs in remote.values_mut() {
            hubs.remove(&self.hub_id);
        }
        remote.retain(|_, hubs| !hubs.is_empty());
        self.links
            .lock()
            .expect("fleet links lock poisoned")
            .set_remote(remote, Instant::now());
        let known: Vec<ClusterKey> = self
            .state
            .lock()
            .expect("fleet state lock poisoned")
            .intent
            .keys()
            .cloned()
            .collect();
        for key in known {
            if !loaded.intent.contains_key(&key) {
                self.adopt(&key, ClusterIntent::default());
            }
        }
        for (key, intent) in loaded.intent {
            // Not shared yet (just loaded): taken without a copy.
            self.adopt(&key, Arc::unwrap_or_clone(intent));
        }
        let mut state = self.state.lock().expect("fleet state lock poisoned");
        self.reread_claims(&mut state);
        Ok(())
    }
}
