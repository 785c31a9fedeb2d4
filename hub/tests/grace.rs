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
use support::{Listen, TENANT_A};

fn config(dir: &std::path::Path, grace: &str) -> fleetgate_hub::config::Config {
    let grace = format!("disconnectedClusterGracePeriod: \"{grace}\"");
    support::config(dir, &Listen::unused(), &grace, TENANT_A)
}

fn full_state() -> pb::Update {
    let meta = |kind: pb::Kind, name: &str| pb::ObjectRef {
        kind: kind as i32,
        namespace: "default".into(),
        name: name.into(),
    };
    pb::Update {
        revision: 1,
        full_state: true,
        upserts: vec![
            pb::Object {
                r#ref: Some(meta(pb::Kind::Gateway, "gw")),
                generation: 1,
                creation_timestamp: "2026-01-01T00:00:00Z".into(),
                spec: Some(pb::object::Spec::Gateway(pb::Gateway {
                    gateway_class_name: "fleetgate".into(),
                    listeners: vec![pb::Listener {
                        name: "http".into(),
                        protocol: "HTTP".into(),
                        port: 80,
                        hostname: "app.a.example".into(),
                        allowed_routes: None,
                        tls: None,
                    }],
                    allowed_listeners: None,
                })),
            },
            pb::Object {
                r#ref: Some(meta(pb::Kind::HttpRoute, "r")),
                generation: 1,
                creation_timestamp: "2026-01-01T00:00:00Z".into(),
                spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
                    parent_refs: vec![pb::ParentRef {
                        namespace: "default".into(),
                        name: "gw".into(),
                        section_name: String::new(),
                        port: 0,
                        ..Default::default()
                    }],
                    hostnames: vec!["app.a.example".into()],
                    rules: vec![pb::HttpRouteRule {
                        backends: vec![pb::Backend {
                            namespace: "default".into(),
                            name: "web".into(),
                            port: 8080,
                            weight: 1,
                            endpoints: vec![pb::Endpoint {
                                address: "10.1.0.5".into(),
                                port: 30080,
                                ready: true,
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                })),
            },
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
