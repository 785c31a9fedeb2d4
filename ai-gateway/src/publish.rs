//! The one writer of the gateway's configuration: validates, compiles the [`RouteTable`] and
//! publishes it through a `tokio::sync::watch` channel. Requests read the latest table with
//! [`tokio::sync::watch::Receiver::borrow`] and keep their `Arc`, so swaps are atomic and never
//! drop a request in flight.
//!
//! The store is not `Clone`: whoever owns it (one [`crate::source::ConfigSource`]) is the only
//! writer.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, RawTenant, TenantConfig};
use crate::route::RouteTable;

/// The single writer of the route table.
#[derive(Debug)]
pub struct ConfigStore {
    config: Config,
    tx: watch::Sender<Arc<RouteTable>>,
}

impl ConfigStore {
    /// An empty store (every route unknown) and the receiving end requests read from.
    pub fn new() -> (Self, watch::Receiver<Arc<RouteTable>>) {
        let (tx, rx) = watch::channel(Arc::new(RouteTable::default()));
        (
            Self {
                config: Config::default(),
                tx,
            },
            rx,
        )
    }

    /// The configuration now served.
    pub fn current(&self) -> &Config {
        &self.config
    }

    /// Replaces everything (a whole file was read).
    pub fn replace(&mut self, config: Config) {
        self.config = config;
        self.publish();
    }

    /// Validates and applies one tenant's configuration (the hub's per-tenant updates). On
    /// error the tenant keeps serving its previous configuration, and other tenants are untouched.
    pub fn upsert_tenant(
        &mut self,
        name: &str,
        raw: &RawTenant,
        version: u64,
    ) -> Result<&TenantConfig, ConfigError> {
        let tenant = raw.validate(name, version)?;
        self.config.tenants.insert(name.to_string(), tenant);
        self.publish();
        Ok(&self.config.tenants[name])
    }

    /// Stops serving a tenant.
    pub fn remove_tenant(&mut self, name: &str) {
        if self.config.tenants.remove(name).is_some() {
            self.publish();
        }
    }

    /// Sets the overall version (the hub's revision) without changing routes.
    pub fn set_version(&mut self, version: u64) {
        self.config.version = version;
        self.publish();
    }

    fn publish(&self) {
        let previous = self.tx.borrow().clone();
        let table = RouteTable::compile(&self.config, &previous);
        tracing::info!(
            version = self.config.version,
            tenants = self.config.tenants.len(),
            "AI gateway configuration published"
        );
        self.tx.send_replace(Arc::new(table));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use crate::identify::Identity;

    #[test]
    fn a_bad_tenant_update_leaves_the_served_configuration_alone() {
        let (mut store, rx) = ConfigStore::new();
        let raw = RawConfig::from_yaml(
            "tenants:\n  a:\n    routes:\n      r: { ai: { provider: { openai: {}, host: h } } }\n",
        )
        .unwrap();
        store.replace(raw.validate().unwrap());
        let before = rx.borrow().clone();
        let id = Identity {
            tenant: "a".into(),
            route: "r".into(),
        };
        assert!(before.lookup(&id).is_ok());

        let bad = RawTenant {
            max_concurrency: Some(0),
            ..raw.tenants["a"].clone()
        };
        assert!(store.upsert_tenant("a", &bad, 2).is_err());
        assert!(Arc::ptr_eq(&before, &rx.borrow()), "nothing was published");

        store.upsert_tenant("b", &raw.tenants["a"], 2).unwrap();
        let after = rx.borrow().clone();
        assert!(after.lookup(&id).is_ok());
        assert!(
            after
                .lookup(&Identity {
                    tenant: "b".into(),
                    route: "r".into()
                })
                .is_ok()
        );
        // The request that looked up the old table still holds it.
        assert!(before.tenant("b").is_none());
        store.remove_tenant("a");
        assert!(rx.borrow().lookup(&id).is_err());
    }
}
