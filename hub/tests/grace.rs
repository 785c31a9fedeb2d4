//! The disconnected-cluster grace period, driven through the hub's real `Fleet` (store file,
//! admission, agent-stream bookkeeping) and the compile step the hub runs: a cluster whose agent
//! is gone keeps being served until `disconnectedClusterGracePeriod` ends, is then withdrawn
//! from the data plane while its intent stays stored, and comes back with its next full state.

use std::sync::Arc;
use std::time::Duration;

use fleetgate_hub::fleet::Fleet;
use fleetgate_hub::model::ClusterKey;
use fleetgate_hub::run::compile_view;
use fleetgate_hub::store::Store;
use fleetgate_hub::xds::server::XdsHealth;
use fleetgate_proto::spoke::v1 as pb;

mod support;
use support::{Listen, TENANT_A, backend, http_gateway, http_route};

fn config(dir: &std::path::Path, grace: &str) -> fleetgate_hub::config::Config {
    let grace = format!("disconnectedClusterGracePeriod: \"{grace}\"");
    support::config(dir, &Listen::unused(), &grace, TENANT_A)
}

fn full_state() -> pb::Update {
    pb::Update {
        traceparent: String::new(),
        revision: 1,
        full_state: true,
        upserts: vec![
            http_gateway("gw", "http", "app.a.example"),
            http_route(
                "r",
                "gw",
                "app.a.example",
                backend("web", 8080, "10.1.0.5", 30080),
            ),
        ],
        deletes: vec![],
    }
}

/// Whether the data plane the hub would publish now serves app.a.example.
fn serves(fleet: &Fleet, config: &fleetgate_hub::config::Config) -> bool {
    let (snapshot, _) = compile_view(&fleet.view(), config, &XdsHealth::default());
    snapshot
        .listeners
        .iter()
        .flat_map(|l| &l.virtual_hosts)
        .any(|v| v.domains == ["app.a.example"])
}

fn east() -> ClusterKey {
    ClusterKey {
        tenant: "tenant-a".into(),
        cluster: "east".into(),
    }
}

/// Polls until `f` holds (bounded), for conditions that become true once a period has passed.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_disconnected_cluster_is_withdrawn_after_the_grace_period_and_returns_with_full_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "1s");
    let fleet = Arc::new(
        Fleet::open(
            Arc::new(config.clone()),
            Store::open(&config.store_path).unwrap(),
        )
        .unwrap(),
    );

    let link = fleet.link(&east());
    fleet.apply(&east(), &full_state()).unwrap();
    assert!(serves(&fleet, &config));
    // Connected: never withdrawn, however long.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(serves(&fleet, &config) && fleet.next_withdrawal().is_none());

    // The agent goes away: still served during the grace period, then withdrawn.
    drop(link);
    assert!(fleet.next_withdrawal().is_some());
    assert!(eventually(|| !serves(&fleet, &config)).await);
    assert!(fleet.view().withdrawn.contains(&east()));
    // Its intent is still held (and stored).
    assert!(fleet.view().intent.contains_key(&east()));

    // Reconnecting alone does not bring it back; its full state does.
    let _link = fleet.link(&east());
    assert!(!serves(&fleet, &config));
    fleet.apply(&east(), &full_state()).unwrap();
    assert!(serves(&fleet, &config));
}

#[tokio::test]
async fn a_zero_grace_period_serves_a_disconnected_cluster_forever() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "0");
    let fleet = Arc::new(
        Fleet::open(
            Arc::new(config.clone()),
            Store::open(&config.store_path).unwrap(),
        )
        .unwrap(),
    );
    let link = fleet.link(&east());
    fleet.apply(&east(), &full_state()).unwrap();
    drop(link);
    assert!(fleet.next_withdrawal().is_none());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(serves(&fleet, &config));
}
