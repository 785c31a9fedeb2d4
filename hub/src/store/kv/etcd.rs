//! The shared backend: an etcd cluster, under a key prefix, that several hubs use at once.
//!
//! A [`Txn`] is one etcd transaction: each guard a comparison (`Absent`: the key's create
//! revision is 0; `Equals`: its value), the writes its success branch. etcd applies it whole or
//! not at all, whichever hub sent it, which is what makes claims atomic across hubs.
//!
//! The store's callers are synchronous (a write of the embedded file blocks too), the etcd
//! client is not: requests run on this backend's own runtime thread and the caller waits for
//! the answer, so the caller's runtime is never entered or blocked from inside.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetgate_hub_etcd::{Client, EtcdError, pb};
use tokio::sync::mpsc;

use super::{ANNOUNCE_TTL_SECONDS, Entry, Guard, Kv, Op, Seen, StoreError, Txn};

/// How long a broken watch or lease waits before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// A store in etcd, every key under `prefix`.
pub struct EtcdKv {
    endpoints: Vec<String>,
    prefix: String,
    client: Client,
    runtime: Background,
    /// Keys this hub announced, written again under a new lease when the old one is lost.
    announced: Arc<Mutex<Announced>>,
}

#[derive(Default)]
struct Announced {
    /// The lease announced keys are written with, once granted.
    lease: Option<i64>,
    keys: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The client's runtime, shut down without waiting when dropped (a runtime may not be dropped
/// the ordinary way inside another one, where the hub drops its store).
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn etcd_err(e: EtcdError) -> StoreError {
    StoreError::Db(e.to_string())
}

impl EtcdKv {
    /// Connects to `endpoints` and checks that etcd answers (a read under `prefix`), so a
    /// wrong address is reported at start, not at the first write.
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StoreError> {
        let runtime = Background(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("fleetgate-etcd")
                .enable_all()
                .build()
                .map_err(db_err_io)?,
        ));
        let client = {
            let _entered = runtime.0.as_ref().map(|rt| rt.enter());
            Client::connect(endpoints).map_err(etcd_err)?
        };
        let kv = Self {
            endpoints: endpoints.to_vec(),
            prefix: prefix.to_string(),
            client,
            runtime,
            announced: Arc::default(),
        };
        kv.get("")
            .map_err(|e| StoreError::Db(format!("cannot use etcd at {}: {e}", kv.describe())))?;
        Ok(kv)
    }

    /// Runs `f` on this backend's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, EtcdError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = self
            .runtime
            .0
            .as_ref()
            .expect("etcd runtime present until drop");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Db("the etcd client stopped".into()))?
            .map_err(etcd_err)
    }

    fn full(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    fn strip(&self, key: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(key.get(self.prefix.len()..).unwrap_or_default().to_vec())
            .map_err(|_| StoreError::Db(format!("a key under {} is not UTF-8", self.prefix)))
    }
}

fn db_err_io(e: std::io::Error) -> StoreError {
    StoreError::Db(format!("cannot start the etcd client: {e}"))
}

impl Kv for EtcdKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client.clone();
        let key = self.full(key);
        Ok(self
            .run(async move { client.get(&key).await })?
            .map(|kv| kv.value))
    }

    fn scan(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let client = self.client.clone();
        let key = self.full(prefix);
        let (kvs, _) = self.run(async move { client.range_prefix(&key).await })?;
        kvs.into_iter()
            .map(|kv| {
                Ok(Entry {
                    key: self.strip(&kv.key)?,
                    value: kv.value,
                })
            })
            .collect()
    }

    fn commit(&self, txn: &Txn) -> Result<bool, StoreError> {
        use pb::compare::{CompareResult, CompareTarget, TargetUnion};
        let compare = txn
            .guards
            .iter()
            .map(|g| match g {
                Guard::Absent(k) => pb::Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Create as i32,
                    key: self.full(k),
                    target_union: Some(TargetUnion::CreateRevision(0)),
                },
                Guard::Equals(k, v) => pb::Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Value as i32,
                    key: self.full(k),
                    target_union: Some(TargetUnion::Value(v.clone())),
                },
            })
            .collect();
        let success = txn
            .ops
            .iter()
            .map(|op| pb::RequestOp {
                request: Some(match op {
                    Op::Put(k, v) => pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: self.full(k),
                        value: v.clone(),
                        lease: 0,
                    }),
                    Op::Delete(k) => {
                        pb::request_op::Request::RequestDeleteRange(pb::DeleteRangeRequest {
                            key: self.full(k),
                            range_end: Vec::new(),
                        })
                    }
                }),
            })
            .collect();
        let request = pb::TxnRequest {
            compare,
            success,
            failure: Vec::new(),
        };
        let client = self.client.clone();
        Ok(self
            .run(async move { client.txn(request).await })?
            .succeeded)
    }

    fn describe(&self) -> String {
        format!("etcd {} under {:?}", self.endpoints.join(","), self.prefix)
    }

    fn shared(&self) -> bool {
        true
    }

    fn watch(&self, prefix: &str) -> Option<mpsc::UnboundedReceiver<Seen>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.client.clone();
        let full = self.full(prefix);
        let strip = self.prefix.len();
        self.runtime
            .0
            .as_ref()?
            .spawn(watch(client, full, strip, tx));
        Some(rx)
    }

    fn announce(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let key = self.full(key);
        let lease = self.lease()?;
        self.announced
            .lock()
            .expect("announced lock poisoned")
            .keys
            .insert(key.clone(), value.to_vec());
        let client = self.client.clone();
        let value = value.to_vec();
        self.run(async move { put(&client, key, value, lease).await })
    }

    fn retract(&self, key: &str) -> Result<(), StoreError> {
        let key = self.full(key);
        self.announced
            .lock()
            .expect("announced lock poisoned")
            .keys
            .remove(&key);
        let mut txn = Txn::default();
        txn.ops.push(Op::Delete(self.strip(&key)?));
        self.commit(&txn).map(|_| ())
    }
}

impl EtcdKv {
    /// The lease announced keys live by, granted at the first announcement and kept alive by a
    /// task on this backend's runtime for as long as the backend lives.
    fn lease(&self) -> Result<i64, StoreError> {
        if let Some(l) = self
            .announced
            .lock()
            .expect("announced lock poisoned")
            .lease
        {
            return Ok(l);
        }
        let client = self.client.clone();
        let lease = self.run(async move { client.grant_lease(ANNOUNCE_TTL_SECONDS).await })?;
        self.announced
            .lock()
            .expect("announced lock poisoned")
            .lease = Some(lease);
        let runtime = self
            .runtime
            .0
            .as_ref()
            .expect("etcd runtime present until drop");
        runtime.spawn(keep_alive(
            self.client.clone(),
            lease,
            self.announced.clone(),
        ));
        Ok(lease)
    }
}

async fn put(client: &Client, key: Vec<u8>, value: Vec<u8>, lease: i64) -> Result<(), EtcdError> {
    let op = pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key,
            value,
            lease,
        })),
    };
    client
        .txn(pb::TxnRequest {
            compare: Vec::new(),
            success: vec![op],
            failure: Vec::new(),
        })
        .await?;
    Ok(())
}

/// Keeps `lease` alive; when it is lost (etcd unreachable longer than its TTL), grants a new
/// one and writes every announced key again under it.
async fn keep_alive(client: Client, mut lease: i64, announced: Arc<Mutex<Announced>>) {
    let every = Duration::from_secs((ANNOUNCE_TTL_SECONDS / 3).max(1) as u64);
    loop {
        let mut lost = false;
        match client.keep_alive(lease, every).await {
            Ok(mut answers) => {
                use tokio_stream::StreamExt;
                while let Some(answer) = answers.next().await {
                    match answer {
                        Ok(a) if a.ttl > 0 => {}
                        Ok(_) => {
                            lost = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the etcd lease of this hub's announcements could not be renewed; retrying");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew this hub's etcd lease; retrying"),
        }
        tokio::time::sleep(RETRY).await;
        if !lost {
            continue;
        }
        let Ok(new) = client.grant_lease(ANNOUNCE_TTL_SECONDS).await else {
            continue;
        };
        lease = new;
        let keys = {
            let mut a = announced.lock().expect("announced lock poisoned");
            a.lease = Some(new);
            a.keys.clone()
        };
        tracing::warn!(
            keys = keys.len(),
            "this hub's etcd lease expired; announcing again under a new one"
        );
        for (k, v) in keys {
            if let Err(e) = put(&client, k, v, new).await {
                tracing::warn!(error = %e, "cannot announce again");
            }
        }
    }
}

/// Sends every change under `prefix` to `tx` until the receiver is dropped, starting with
/// [`Seen::Restarted`] once the watch is confirmed; a broken watch is resumed after the last
/// revision seen, or from now with [`Seen::Restarted`] again when none was seen or etcd no
/// longer has that history.
async fn watch(client: Client, prefix: Vec<u8>, strip: usize, tx: mpsc::UnboundedSender<Seen>) {
    let mut next = 0;
    loop {
        let mut watcher = match client.watch_prefix(&prefix, next).await {
            // From now on nothing is missed; what changed before must be read again (at the
            // first watch too: the caller may have read before it was confirmed).
            Ok(w) if next == 0 => {
                if tx.send(Seen::Restarted).is_err() {
                    return;
                }
                w
            }
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the store in etcd; retrying");
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            match watcher.next().await {
                Ok(changes) => {
                    next = changes.revision + 1;
                    for e in changes.events {
                        let Some(kv) = e.kv else { continue };
                        let Ok(key) =
                            String::from_utf8(kv.key.get(strip..).unwrap_or_default().to_vec())
                        else {
                            continue;
                        };
                        let seen = if e.r#type == pb::event::EventType::Delete as i32 {
                            Seen::Deleted(key)
                        } else {
                            Seen::Put(Entry {
                                key,
                                value: kv.value,
                            })
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                }
                Err(EtcdError::Compacted(_)) => {
                    next = 0;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the store's watch in etcd broke; resuming");
                    break;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}
