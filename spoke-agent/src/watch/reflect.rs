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
use tracing::{debug, warn};

/// A reflector that stops when dropped (for watches that come and go, e.g. one per Secret an
/// AgentgatewayBackend names).
pub struct Owned<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub store: Store<K>,
    task: tokio::task::JoinHandle<()>,
}

impl<K: Resource + Clone + 'static> Drop for Owned<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Like [`spawn_with`], stopped when the returned [`Owned`] is dropped.
pub fn spawn_owned<K>(api: Api<K>, config: watcher::Config, changed: Arc<Notify>) -> Owned<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, task) = start(api, config, changed);
    Owned { store, task }
}

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
    start(api, config, changed).0
}

fn start<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).to_string();
    let stream = watcher(api, config).default_backoff().reflect(writer);
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                // 410 Gone: the watch's resourceVersion was compacted; the watcher lists again
                // from scratch by itself. Expected now and then, not a failure.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    debug!(kind = %kind, reason = %status.message, "watch expired (410 Gone); listing again");
                }
                Err(e) => warn!(kind = %kind, error = %e, "watch failed; retrying with backoff"),
            }
        }
    });
    (store, task)
}

/// The objects of a store, cloned out of their `Arc`s.
pub fn objects<K: Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store.state().iter().map(|o| (**o).clone()).collect()
}
