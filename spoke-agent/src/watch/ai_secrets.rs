//! The Secrets AgentgatewayBackends (`spec.policies.auth.secretRef`) and VirtualKeys
//! (`spec.secretRef`) name, and no other: one watch per Secret, by name (field selector
//! `metadata.name=<name>` in the naming object's namespace), started when an object names it and
//! stopped when none does any more.
//!
//! Provider keys are usually in Secrets of type Opaque, so the TLS-type filter of the
//! certificate watch cannot apply; reading by name keeps every other Secret of the cluster out
//! of the agent's memory. `--secrets` ([`SecretAccess`]) narrows it the same way it narrows TLS
//! Secrets: `label` adds the label selector `fleetgate.dev/expose=true`, `namespaces=a,b` reads
//! only in those namespaces (a Secret elsewhere is explained on the backend's status by
//! `resolve::ai`), and the RBAC each mode needs is the same.
//!
//! Where it sits: part of step 1 (watch); [`super::run`] reconciles the watches with the
//! backends before every snapshot, and waits (up to [`READY_WAIT`]) for new ones to list, so a
//! snapshot never calls a Secret missing that is merely not listed yet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::reflect::{self, Owned};
use crate::claim::referenced_secrets;
use crate::config::{EXPOSE_LABEL, SecretAccess};
use crate::crd::{AgentgatewayBackend, VirtualKey};

/// How long a snapshot waits for a new Secret watch's first list.
pub const READY_WAIT: Duration = Duration::from_secs(10);

/// The watch of Secret `namespace/name` that mode `access` allows; `None` when the mode may not
/// read that namespace (`namespaces=` without it).
pub fn secret_watch(access: &SecretAccess, namespace: &str, name: &str) -> Option<watcher::Config> {
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    match access {
        SecretAccess::Cluster => Some(by_name),
        SecretAccess::Label => Some(by_name.labels(&format!("{EXPOSE_LABEL}=true"))),
        SecretAccess::Namespaces(names) => names.iter().any(|n| n == namespace).then_some(by_name),
    }
}

/// The running per-Secret watches.
pub struct AiSecretWatches {
    client: Client,
    access: SecretAccess,
    changed: Arc<Notify>,
    watches: BTreeMap<(String, String), Owned<Secret>>,
}

impl AiSecretWatches {
    pub fn new(client: Client, access: SecretAccess, changed: Arc<Notify>) -> Self {
        Self {
            client,
            access,
            changed,
            watches: BTreeMap::new(),
        }
    }

    /// Starts the watches `backends` and `keys` need and stops the others; waits for the new
    /// ones' first list (each up to [`READY_WAIT`]).
    pub async fn reconcile(&mut self, backends: &[AgentgatewayBackend], keys: &[VirtualKey]) {
        let wanted: BTreeSet<(String, String)> = referenced_secrets(backends, keys)
            .into_iter()
            .filter(|(ns, name)| secret_watch(&self.access, ns, name).is_some())
            .collect();
        self.watches.retain(|k, _| wanted.contains(k));
        let mut started = Vec::new();
        for (ns, name) in wanted {
            if self.watches.contains_key(&(ns.clone(), name.clone())) {
                continue;
            }
            let Some(config) = secret_watch(&self.access, &ns, &name) else {
                continue;
            };
            info!(secret = %format!("{ns}/{name}"), "watching a Secret an AgentgatewayBackend or a VirtualKey names");
            let api = Api::<Secret>::namespaced(self.client.clone(), &ns);
            let owned = reflect::spawn_owned(api, config, self.changed.clone());
            started.push((format!("{ns}/{name}"), owned.store.clone()));
            self.watches.insert((ns, name), owned);
        }
        for (secret, store) in started {
            if tokio::time::timeout(READY_WAIT, store.wait_until_ready())
                .await
                .is_err()
            {
                warn!(secret = %secret, "the Secret watch has not listed yet; the backend may show it missing until it does");
            }
        }
    }

    /// The Secrets the watches hold.
    pub fn secrets(&self) -> Vec<Secret> {
        self.watches
            .values()
            .flat_map(|w| reflect::objects(&w.store))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_read_one_secret_by_name_as_the_mode_allows() {
        let fields = |c: &watcher::Config| (c.field_selector.clone(), c.label_selector.clone());
        let by_name = Some("metadata.name=llm-secret".to_string());
        let cluster = secret_watch(&SecretAccess::Cluster, "ai", "llm-secret").unwrap();
        assert_eq!(fields(&cluster), (by_name.clone(), None));
        let label = secret_watch(&SecretAccess::Label, "ai", "llm-secret").unwrap();
        assert_eq!(
            fields(&label),
            (by_name.clone(), Some("fleetgate.dev/expose=true".into()))
        );
        let listed = SecretAccess::Namespaces(vec!["ai".into(), "default".into()]);
        assert_eq!(
            secret_watch(&listed, "ai", "llm-secret").map(|c| fields(&c)),
            Some((by_name, None))
        );
        assert!(secret_watch(&listed, "other", "llm-secret").is_none());
    }
}
