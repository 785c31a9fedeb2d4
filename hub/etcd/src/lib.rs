//! The hub's etcd client: the part of etcd's v3 API its store uses (reads of a key or a prefix,
//! transactions guarded by comparisons, watches), over tonic, against one etcd or several
//! members of a cluster.
//!
//! Where it sits: `hub/src/store/kv/etcd.rs` is the only user; it turns the store's guarded
//! writes into etcd transactions. Requests to etcd never outlive [`REQUEST_TIMEOUT`], except
//! watches, which last as long as the caller reads them.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

/// The messages and clients generated from `proto/etcdserverpb/kv.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::kv_client::KvClient;
use pb::lease_client::LeaseClient;
use pb::watch_client::WatchClient;

/// How long one read, write or transaction may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// An endpoint is not a URL (`http://host:port` or `https://host:port`).
    #[error("etcd endpoint {endpoint:?} is not a URL like http://10.0.0.5:2379: {reason}")]
    Endpoint { endpoint: String, reason: String },
    /// No endpoint was given.
    #[error("no etcd endpoint given: set at least one, like http://10.0.0.5:2379")]
    NoEndpoint,
    /// etcd answered with an error, or could not be reached.
    #[error("etcd: {}", describe(.0))]
    Status(#[from] tonic::Status),
    /// The revisions a watch asked for were compacted away; read the prefix again and watch
    /// from the revision of that read.
    #[error("etcd compacted its history up to revision {0}; read again")]
    Compacted(i64),
    /// etcd closed a watch.
    #[error("etcd closed the watch: {0}")]
    WatchClosed(String),
}

/// What an operator should change when etcd refuses a request for its size.
fn describe(s: &tonic::Status) -> String {
    let msg = s.message();
    if msg.contains("too many operations in txn request") {
        format!(
            "{msg}: start etcd with a larger --max-txn-ops (fleetgate writes one operation per changed hostname or address)"
        )
    } else if msg.contains("request is too large") {
        format!(
            "{msg}: start etcd with a larger --max-request-bytes (one cluster's intent is one value)"
        )
    } else if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::DeadlineExceeded {
        format!("{msg} ({:?}): is etcd running and reachable?", s.code())
    } else {
        format!("{msg} ({:?})", s.code())
    }
}

/// The smallest key greater than every key that starts with `prefix`, for ranges over a
/// prefix; `[0]` ("every key") when no such key exists.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn unary<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(REQUEST_TIMEOUT);
    r
}

/// A connection to etcd (one member or several; requests go to any of them).
#[derive(Debug, Clone)]
pub struct Client {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
    lease: LeaseClient<Channel>,
}

impl Client {
    /// Connects lazily: nothing is sent until the first request, which fails with
    /// [`EtcdError::Status`] when no endpoint answers.
    pub fn connect(endpoints: &[String]) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::NoEndpoint);
        }
        let mut list = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let bad = |reason: String| EtcdError::Endpoint {
                endpoint: e.clone(),
                reason,
            };
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(bad("it must start with http:// or https://".into()));
            }
            let ep = Endpoint::from_shared(e.clone())
                .map_err(|err| bad(err.to_string()))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            list.push(ep);
        }
        let channel = Channel::balance_list(list.into_iter());
        Ok(Self {
            kv: KvClient::new(channel.clone()),
            watch: WatchClient::new(channel.clone()),
            lease: LeaseClient::new(channel),
        })
    }

    /// The value of `key`, if it exists.
    pub async fn get(&self, key: &[u8]) -> Result<Option<pb::KeyValue>, EtcdError> {
        let r = self
            .kv
            .clone()
            .range(unary(pb::RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        Ok(r.kvs.into_iter().next())
    }

    /// Every key starting with `prefix`, sorted, and the revision they were read at (all from
    /// one snapshot).
    pub async fn range_prefix(&self, prefix: &[u8]) -> Result<(Vec<pb::KeyValue>, i64), EtcdError> {
        let r = self
            .kv
            .clone()
            .range(unary(pb::RangeRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                ..Default::default()
            }))
            .await?
            .into_inner();
        Ok((r.kvs, r.header.map(|h| h.revision).unwrap_or_default()))
    }

    /// Runs a transaction: its `success` operations if every comparison holds, else its
    /// `failure` operations; atomically either way.
    pub async fn txn(&self, txn: pb::TxnRequest) -> Result<pb::TxnResponse, EtcdError> {
        Ok(self.kv.clone().txn(unary(txn)).await?.into_inner())
    }

    /// Watches every key starting with `prefix`, from `start_revision` (0: from now); returns
    /// once etcd has confirmed the watch.
    pub async fn watch_prefix(
        &self,
        prefix: &[u8],
        start_revision: i64,
    ) -> Result<Watcher, EtcdError> {
        let (tx, rx) = mpsc::channel(1);
        tx.send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: prefix.to_vec(),
                    range_end: prefix_end(prefix),
                    start_revision,
                    ..Default::default()
                },
            )),
        })
        .await
        .map_err(|_| EtcdError::WatchClosed("the request channel closed".into()))?;
        let mut stream = self
            .watch
            .clone()
            .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        // Returned only once etcd confirms the watch: every change after this is reported.
        loop {
            let Some(r) = stream.next().await else {
                return Err(EtcdError::WatchClosed("the stream ended".into()));
            };
            let r = r?;
            if r.compact_revision > 0 {
                return Err(EtcdError::Compacted(r.compact_revision));
            }
            if r.canceled {
                return Err(EtcdError::WatchClosed(r.cancel_reason));
            }
            if r.created {
                break;
            }
        }
        Ok(Watcher {
            _requests: tx,
            stream,
        })
    }
}

impl Client {
    /// A new lease of `ttl` (seconds): keys written with it vanish when it is not kept alive.
    pub async fn grant_lease(&self, ttl: i64) -> Result<i64, EtcdError> {
        let r = self
            .lease
            .clone()
            .lease_grant(unary(pb::LeaseGrantRequest { ttl, id: 0 }))
            .await?
            .into_inner();
        if !r.error.is_empty() {
            return Err(EtcdError::Status(tonic::Status::unknown(r.error)));
        }
        Ok(r.id)
    }

    /// Keeps `lease` alive until the returned stream ends: one keep-alive every `every`; each
    /// item is the lease's remaining TTL (0 or less: it expired).
    pub async fn keep_alive(
        &self,
        lease: i64,
        every: Duration,
    ) -> Result<tonic::Streaming<pb::LeaseKeepAliveResponse>, EtcdError> {
        let requests = async_stream(lease, every);
        Ok(self
            .lease
            .clone()
            .lease_keep_alive(requests)
            .await?
            .into_inner())
    }

    /// Ends `lease` now: every key written with it is deleted.
    pub async fn revoke_lease(&self, lease: i64) -> Result<(), EtcdError> {
        self.lease
            .clone()
            .lease_revoke(unary(pb::LeaseRevokeRequest { id: lease }))
            .await?;
        Ok(())
    }
}

/// A keep-alive request for `lease` now and every `every` after.
fn async_stream(
    lease: i64,
    every: Duration,
) -> impl tokio_stream::Stream<Item = pb::LeaseKeepAliveRequest> + Send + 'static {
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(every));
    ticks.map(move |_| pb::LeaseKeepAliveRequest { id: lease })
}

/// One batch of changes a watch reports, all at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub revision: i64,
    pub events: Vec<pb::Event>,
}

/// An open watch; dropping it cancels the watch.
#[derive(Debug)]
pub struct Watcher {
    /// Kept open: closing the request side ends the watch.
    _requests: mpsc::Sender<pb::WatchRequest>,
    stream: tonic::Streaming<pb::WatchResponse>,
}

impl Watcher {
    /// The next batch of changes (responses without events, like the one confirming the watch,
    /// are skipped).
    pub async fn next(&mut self) -> Result<Changes, EtcdError> {
        loop {
            let Some(r) = self.stream.next().await else {
                return Err(EtcdError::WatchClosed("the stream ended".into()));
            };
            let r = r?;
            if r.compact_revision > 0 {
                return Err(EtcdError::Compacted(r.compact_revision));
            }
            if r.canceled {
                return Err(EtcdError::WatchClosed(r.cancel_reason));
            }
            if !r.events.is_empty() {
                return Ok(Changes {
                    revision: r.header.map(|h| h.revision).unwrap_or_default(),
                    events: r.events,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"fleetgate/"), b"fleetgate0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn endpoints_must_be_urls() {
        assert!(matches!(Client::connect(&[]), Err(EtcdError::NoEndpoint)));
        let err = Client::connect(&["10.0.0.5:2379".into()]).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn size_refusals_say_which_etcd_flag_to_raise() {
        let s = tonic::Status::invalid_argument("etcdserver: too many operations in txn request");
        assert!(EtcdError::from(s).to_string().contains("--max-txn-ops"));
        let s = tonic::Status::invalid_argument("etcdserver: request is too large");
        assert!(
            EtcdError::from(s)
                .to_string()
                .contains("--max-request-bytes")
        );
    }
}
