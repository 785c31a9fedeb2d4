//! One reflector: a kube-rs watcher over one kind, mirrored into a local store, that pokes a
//! shared [`Notify`] on every change.
//!
//! Where it sits: the first step of the data path in cluster mode; [`super::run`] runs one per
//! kind and rebuilds the [`crate::state::ClusterState`] snapshot from the stores.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tracing::warn;

/// Starts a reflector for `K` over the whole cluster; returns its store.
pub fn spawn<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    spawn_with(api, watcher::Config::default(), changed)
}

/// Like [`spawn`], with a watcher configuration (e.g. a field selector).
pub fn spawn_with<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => warn!(kind = %kind, error = %e, "watch failed; retrying with backoff"),
            }
        }
    });
    store
}

/// The objects of a store, cloned out of their `Arc`s.
pub fn objects<K: Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}
