//! The shared backend: an etcd cluster, under a key prefix, that several hubs use at once.
//!
//! A [`Txn`] is one etcd transaction: each guard a comparison (`Absent`: the key's create
//! revision is 0; `Equals`: its value), the writes its success branch. etcd applies it whole or
//! not at all, whichever hub sent it, which is what makes claims atomic across hubs.
//!
//! The store's callers are synchronous (a write of the embedded file blocks too), the etcd
//! client is not: requests run on this backend's own runtime thread and the caller waits for
//! the answer, so the caller's runtime is never entered or blocked from inside.

use std::future::Future;

use fleetgate_hub_etcd::{Client, EtcdError, pb};

use super::{Entry, Guard, Kv, Op, StoreError, Txn};

/// A store in etcd, every key under `prefix`.
pub struct EtcdKv {
    endpoints: Vec<String>,
    prefix: String,
    client: Client,
    runtime: Background,
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
}
