//! The hub's store on a real etcd (the one `e2e/setup.sh` builds): the same conformance suite
//! the embedded store passes (`hub/src/store/conformance.rs`), with every hub handle its own
//! etcd client, so the races for a hostname, an address and a bootstrap token are races
//! between separate connections, as between hub replicas. And the errors an operator gets
//! for an etcd that is not there.

use std::sync::Arc;

use fleetgate_e2e::{Etcd, TestDir};
use fleetgate_hub::store::kv::{EtcdKv, Kv};
use fleetgate_hub::store::{Store, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_store_passes_the_conformance_suite() {
    let dir = TestDir::new("store_conformance").expect("test folder");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let endpoints = vec![etcd.url()];
    tokio::task::spawn_blocking(move || {
        let open = || -> Arc<dyn Kv> {
            Arc::new(EtcdKv::connect(&endpoints, "/fleetgate-conformance/").expect("etcd store"))
        };
        conformance::run(&open);
        // Another prefix is another store: nothing of the suite's records is seen there.
        let other = EtcdKv::connect(&endpoints, "/fleetgate-other/").unwrap();
        assert!(other.scan("").unwrap().is_empty());
        // Private keys are sealed on etcd as in the file.
        let sealed = Store::on(open())
            .sealed(fleetgate_hub::seal::Sealer::from_key(&[7; 32]))
            .expect("sealed store on etcd");
        assert_eq!(
            sealed.describe(),
            format!("etcd {} under \"/fleetgate-conformance/\"", endpoints[0])
        );
    })
    .await
    .expect("suite ran");
}

#[tokio::test]
async fn an_etcd_that_is_not_there_is_named_at_start() {
    let port = fleetgate_e2e::ports::free_port().expect("free port");
    let url = format!("http://127.0.0.1:{port}");
    let err = tokio::task::spawn_blocking(move || EtcdKv::connect(&[url], "/fleetgate/").err())
        .await
        .unwrap()
        .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("is etcd running and reachable"), "{msg}");
    let err = EtcdKv::connect(&["127.0.0.1:2379".into()], "/fleetgate/")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("http://"), "{err}");
}
