//! The suite every store backend passes: what the hub relies on from a database, checked the
//! same way on the embedded file (`cargo test -p fleetgate-hub store::`) and on a real etcd
//! (`e2e/tests/store_conformance.rs`).
//!
//! `open` hands out handles on one database: for the embedded file the same backend again,
//! for etcd a new client each time, as separate hubs would have. Each check uses its own key
//! prefix, so one database serves the whole suite. Races run on threads, many times: exactly
//! one hub wins a hostname, an address or a bootstrap token, every time.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use super::kv::{Guard, Kv, Txn};
use super::{Change, SecretStore, Store, StoreError};
use crate::allocate::{Allocations, Owner, PortKey, ServiceKey};
use crate::model::{ClusterIntent, ClusterKey, L4Protocol};

/// How many times each race is run.
pub const RACES: usize = 25;

/// Runs every check; panics with the first that fails.
pub fn run(open: &dyn Fn() -> Arc<dyn Kv>) {
    reads_scan_exactly_a_prefix_in_key_order(open().as_ref());
    a_transaction_is_applied_whole_or_not_at_all(open().as_ref());
    values_are_bytes_of_any_size(open().as_ref());
    intent_claims_and_allocations_round_trip(open);
    two_hubs_race_for_one_hostname_and_exactly_one_wins(open);
    two_hubs_race_for_one_address_and_exactly_one_wins(open);
    a_bootstrap_token_is_used_once_across_hubs(open);
    both_hubs_end_with_one_session_key_ring(open);
    revocations_of_either_hub_are_kept(open);
}

fn put(kv: &dyn Kv, key: &str, value: &str) {
    let mut t = Txn::default();
    t.put(key, value);
    assert!(kv.commit(&t).unwrap(), "an unguarded write is applied");
}

fn keys(kv: &dyn Kv, prefix: &str) -> Vec<String> {
    kv.scan(prefix)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect()
}

pub fn reads_scan_exactly_a_prefix_in_key_order(kv: &dyn Kv) {
    for k in ["scan/b/2", "scan/b/1", "scan/bb/1", "scan/a", "scan/b"] {
        put(kv, k, k);
    }
    assert_eq!(keys(kv, "scan/b/"), ["scan/b/1", "scan/b/2"]);
    assert_eq!(
        keys(kv, "scan/"),
        ["scan/a", "scan/b", "scan/b/1", "scan/b/2", "scan/bb/1"]
    );
    assert!(keys(kv, "scan/c").is_empty());
    assert_eq!(kv.get("scan/b/1").unwrap(), Some(b"scan/b/1".to_vec()));
    assert_eq!(kv.get("scan/b/3").unwrap(), None);
    let mut t = Txn::default();
    t.delete("scan/b/1").delete("scan/never-written");
    assert!(kv.commit(&t).unwrap(), "deleting a missing key is no error");
    assert_eq!(keys(kv, "scan/b/"), ["scan/b/2"]);
}

pub fn a_transaction_is_applied_whole_or_not_at_all(kv: &dyn Kv) {
    put(kv, "txn/held", "a");
    // Each guard that does not hold refuses every write of its transaction.
    for failing in [
        Guard::Absent("txn/held".into()),
        Guard::Equals("txn/held".into(), b"b".to_vec()),
        Guard::Equals("txn/missing".into(), b"a".to_vec()),
    ] {
        let mut t = Txn::default();
        t.guard(Guard::Absent("txn/missing".into()))
            .guard(failing.clone())
            .put("txn/new", "x")
            .delete("txn/held");
        assert!(!kv.commit(&t).unwrap(), "{failing:?} does not hold");
        assert_eq!(kv.get("txn/new").unwrap(), None, "{failing:?}");
        assert_eq!(kv.get("txn/held").unwrap(), Some(b"a".to_vec()));
    }
    let mut t = Txn::default();
    t.guard(Guard::Equals("txn/held".into(), b"a".to_vec()))
        .guard(Guard::Absent("txn/new".into()))
        .put("txn/new", "x")
        .put("txn/held", "b");
    assert!(kv.commit(&t).unwrap());
    assert_eq!(keys(kv, "txn/"), ["txn/held", "txn/new"]);
    assert_eq!(kv.get("txn/held").unwrap(), Some(b"b".to_vec()));
}

pub fn values_are_bytes_of_any_size(kv: &dyn Kv) {
    let big: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    let mut t = Txn::default();
    t.put("bytes/big", big.clone())
        .put("bytes/empty", Vec::new());
    assert!(kv.commit(&t).unwrap());
    assert_eq!(kv.get("bytes/big").unwrap(), Some(big.clone()));
    assert_eq!(kv.get("bytes/empty").unwrap(), Some(Vec::new()));
    let mut t = Txn::default();
    t.guard(Guard::Equals("bytes/big".into(), big))
        .delete("bytes/big");
    assert!(kv.commit(&t).unwrap(), "a guard compares the whole value");
}

fn cluster(tenant: &str, cluster: &str) -> ClusterKey {
    ClusterKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
    }
}

fn port(c: &ClusterKey, name: &str) -> PortKey {
    PortKey {
        service: ServiceKey {
            owner: Owner::Service,
            cluster: c.clone(),
            namespace: "default".into(),
            name: name.into(),
        },
        port: 5432,
        protocol: L4Protocol::Tcp,
    }
}

fn one_gateway() -> ClusterIntent {
    let mut intent = ClusterIntent::default();
    intent.gateways.insert(
        ("default".into(), "gw".into()),
        crate::model::Gateway {
            meta: crate::model::Meta {
                namespace: "default".into(),
                name: "gw".into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            class_name: "fleetgate".into(),
            allowed_listeners: Default::default(),
            listeners: vec![],
        },
    );
    intent
}

pub fn intent_claims_and_allocations_round_trip(open: &dyn Fn() -> Arc<dyn Kv>) {
    let (one, two) = (Store::on(open()), Store::on(open()));
    let key = cluster("roundtrip", "east");
    let none = BTreeMap::new();
    let owners: BTreeMap<String, String> = [(
        "shop.roundtrip.example".to_string(),
        "roundtrip".to_string(),
    )]
    .into();
    let allocs: Allocations = [(port(&key, "db"), "127.0.0.1:21000".parse().unwrap())].into();
    one.save_with_allocations(
        &key,
        &one_gateway(),
        Change::new(&none, &owners),
        Change::new(&Allocations::new(), &allocs),
    )
    .unwrap();
    // The other hub reads what the first wrote.
    let loaded = two.load().unwrap();
    assert_eq!(*loaded.intent[&key], one_gateway());
    assert_eq!(
        loaded.owners.get("shop.roundtrip.example"),
        owners.values().next()
    );
    assert_eq!(
        two.load_allocations().unwrap().get(&port(&key, "db")),
        allocs.values().next()
    );
    // Emptied: the cluster, its claim and its address go.
    two.save_with_allocations(
        &key,
        &ClusterIntent::default(),
        Change::new(&owners, &none),
        Change::new(&allocs, &Allocations::new()),
    )
    .unwrap();
    let loaded = one.load().unwrap();
    assert!(!loaded.intent.contains_key(&key));
    assert!(!loaded.owners.contains_key("shop.roundtrip.example"));
    assert!(
        !one.load_allocations()
            .unwrap()
            .contains_key(&port(&key, "db"))
    );
}

/// Runs `a` and `b` at once on two threads; returns both results.
fn race<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let ha = s.spawn(|| {
            start.wait();
            a()
        });
        let hb = s.spawn(|| {
            start.wait();
            b()
        });
        (ha.join().unwrap(), hb.join().unwrap())
    })
}

/// Exactly one of two results is a win, the other a [`StoreError::Conflict`]; returns which
/// won (0 or 1).
fn one_winner(results: [Result<(), StoreError>; 2], what: &str) -> usize {
    match results {
        [Ok(()), Err(StoreError::Conflict { .. })] => 0,
        [Err(StoreError::Conflict { .. }), Ok(())] => 1,
        other => panic!("{what}: exactly one hub must win, got {other:?}"),
    }
}

pub fn two_hubs_race_for_one_hostname_and_exactly_one_wins(open: &dyn Fn() -> Arc<dyn Kv>) {
    let hubs = [Store::on(open()), Store::on(open())];
    let none = BTreeMap::new();
    for round in 0..RACES {
        let host = format!("race-{round}.example");
        let claim = |tenant: &str| -> BTreeMap<String, String> {
            [(host.clone(), tenant.to_string())].into()
        };
        let (a, b) = (claim("red"), claim("blue"));
        let (ka, kb) = (cluster("red", "east"), cluster("blue", "west"));
        let (ra, rb) = race(
            || hubs[0].save(&ka, &one_gateway(), Change::new(&none, &a)),
            || hubs[1].save(&kb, &one_gateway(), Change::new(&none, &b)),
        );
        let winner = one_winner([ra, rb], &host);
        let owner = hubs[1 - winner].load_owners().unwrap();
        assert_eq!(
            owner.get(&host).map(String::as_str),
            Some(["red", "blue"][winner]),
            "the stored claim is the winner's"
        );
    }
}

pub fn two_hubs_race_for_one_address_and_exactly_one_wins(open: &dyn Fn() -> Arc<dyn Kv>) {
    let hubs = [Store::on(open()), Store::on(open())];
    let none = BTreeMap::new();
    for round in 0..RACES {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", 22000 + round).parse().unwrap();
        let (ka, kb) = (cluster("red", "east"), cluster("blue", "west"));
        let (a, b): (Allocations, Allocations) = (
            [(port(&ka, &format!("db{round}")), addr)].into(),
            [(port(&kb, &format!("db{round}")), addr)].into(),
        );
        let empty = Allocations::new();
        let (ra, rb) = race(
            || {
                hubs[0].save_with_allocations(
                    &ka,
                    &one_gateway(),
                    Change::new(&none, &none),
                    Change::new(&empty, &a),
                )
            },
            || {
                hubs[1].save_with_allocations(
                    &kb,
                    &one_gateway(),
                    Change::new(&none, &none),
                    Change::new(&empty, &b),
                )
            },
        );
        let winner = one_winner([ra, rb], &addr.to_string());
        let stored = hubs[0].load_allocations().unwrap();
        let holders: Vec<_> = stored.iter().filter(|(_, v)| **v == addr).collect();
        assert_eq!(holders.len(), 1, "{addr} is held once: {holders:?}");
        assert_eq!(holders[0].0.service.cluster.tenant, ["red", "blue"][winner]);
    }
}

pub fn a_bootstrap_token_is_used_once_across_hubs(open: &dyn Fn() -> Arc<dyn Kv>) {
    let hubs = [Store::on(open()), Store::on(open())];
    for round in 0..RACES {
        let id = format!("token-{round}");
        let (a, b) = race(
            || hubs[0].consume_token(&id, u64::MAX, 10).unwrap(),
            || hubs[1].consume_token(&id, u64::MAX, 10).unwrap(),
        );
        assert!(a ^ b, "{id}: exactly one hub accepts it (got {a} and {b})");
    }
}

pub fn both_hubs_end_with_one_session_key_ring(open: &dyn Fn() -> Arc<dyn Kv>) {
    use crate::session_secret::SecretRing;
    let hubs = [Store::on(open()), Store::on(open())];
    let (a, b) = race(
        || hubs[0].swap_ring(None, &SecretRing::generate(100)).unwrap(),
        || hubs[1].swap_ring(None, &SecretRing::generate(100)).unwrap(),
    );
    assert_eq!(a, b, "both hubs hold the ring that was stored first");
    assert_eq!(hubs[0].load_ring().unwrap(), Some(a.clone()));
    let next = SecretRing::generate(200);
    assert_eq!(hubs[1].swap_ring(Some(&a), &next).unwrap(), next);
    // The other hub, still holding the old ring, is handed the new one.
    assert_eq!(
        hubs[0]
            .swap_ring(Some(&a), &SecretRing::generate(300))
            .unwrap(),
        next
    );
}

pub fn revocations_of_either_hub_are_kept(open: &dyn Fn() -> Arc<dyn Kv>) {
    let hubs = [Store::on(open()), Store::on(open())];
    let (c1, c2) = (cluster("revoke", "c1"), cluster("revoke", "c2"));
    let both = [c1.clone(), c2.clone()].into();
    hubs[0].reconcile_clusters(&both, 100).unwrap();
    let (a, b) = race(
        || hubs[0].revoke_cluster(&c1, 150).unwrap(),
        || hubs[1].revoke_cluster(&c2, 160).unwrap(),
    );
    let after = hubs[1].reconcile_clusters(&both, 200).unwrap();
    assert_eq!(after.get(&c1), Some(&150), "{a:?} {b:?}");
    assert_eq!(after.get(&c2), Some(&160), "{a:?} {b:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_store_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Kv> =
            Arc::new(super::super::kv::RedbKv::open(&dir.path().join("s.redb")).unwrap());
        run(&|| kv.clone());
    }
}
