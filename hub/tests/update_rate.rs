//! The update rate of a cluster, through the hub's real agent-facing gRPC server over mTLS on
//! loopback: past its burst a cluster's Update is refused with a Nack saying the rate and when
//! to retry, nothing of it applied; the next Update must be the full state; other tenants are
//! not slowed down.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fleetgate_proto::spoke::v1 as pb;

mod support;
use support::{SyncStream, TWO_TENANTS, TestHub, mtls_channel};

/// tenant-a's cluster may send 2 updates a second (burst 2); tenant-b keeps the default rate.
const QUOTAS: &str = r#"quotas:
  tenants:
    tenant-a: {updatesPerSecond: 2, updateBurst: 2}"#;

/// Opens Sync for `cluster` with the identity in `identity_dir`.
async fn open(addr: SocketAddr, identity_dir: &Path, cluster: &str) -> SyncStream {
    let ch = mtls_channel(addr, identity_dir).await.unwrap();
    SyncStream::open(ch, cluster).await.unwrap()
}

/// Sends Update `revision` (no objects) and returns the hub's verdict on it.
async fn update(s: &mut SyncStream, revision: u64, full: bool) -> pb::hub_message::Kind {
    s.send(revision, full, vec![]).await;
    s.verdict().await.unwrap()
}

fn nack(k: pb::hub_message::Kind, revision: u64) -> pb::Nack {
    match k {
        pb::hub_message::Kind::Nack(n) if n.revision == revision => n,
        other => panic!("revision {revision}: expected a Nack, got {other:?}"),
    }
}

fn nack_message(k: pb::hub_message::Kind, revision: u64) -> String {
    nack(k, revision).message
}

fn assert_ack(k: pb::hub_message::Kind, revision: u64) {
    assert!(
        matches!(&k, pb::hub_message::Kind::Ack(a) if a.revision == revision),
        "revision {revision}: expected an Ack, got {k:?}"
    );
}

#[tokio::test]
async fn a_cluster_past_its_update_rate_gets_a_nack_and_others_do_not() {
    let mut hub = TestHub::start_with(QUOTAS, TWO_TENANTS, false).await;
    let a_id = hub.issue("tenant-a", "east");
    let b_id = hub.issue("tenant-b", "west");
    let mut a = open(hub.agent_addr, &a_id, "east").await;

    assert_ack(update(&mut a, 1, true).await, 1);
    assert_ack(update(&mut a, 2, false).await, 2);
    let refused = nack(update(&mut a, 3, false).await, 3);
    let message = refused.message.clone();
    assert!(
        message.starts_with("rate limit: 2 updates/s (burst 2) for this cluster, retry after "),
        "{message}"
    );
    let ms: String = message
        .split("retry after ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let retry = Duration::from_millis(ms.parse().unwrap());
    assert!(retry <= Duration::from_millis(500), "{retry:?}");
    // The agent reads the same wait from the typed fields, never from the text.
    assert_eq!(refused.reason(), pb::nack::Reason::RateLimited);
    assert_eq!(u64::from(refused.retry_after_ms), retry.as_millis() as u64);

    // Tenant b sends as fast as its own (default) rate allows, undisturbed.
    let mut b = open(hub.agent_addr, &b_id, "west").await;
    for r in 1..=5 {
        assert_ack(update(&mut b, r, r == 1).await, r);
    }

    // The refused revision is used up; a delta is refused until the full state comes.
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    let message = nack_message(update(&mut a, 4, false).await, 4);
    assert!(message.contains("send the full state"), "{message}");
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_ack(update(&mut a, 5, true).await, 5);

    hub.stop().await;
}
