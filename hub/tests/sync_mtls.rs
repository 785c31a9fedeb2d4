//! The hub's agent-facing gRPC server, driven in-process over real mTLS on loopback: identity
//! from the certificate only, admission verdicts in status, and hostile input refused cleanly.

use fleetgate_hub::identity::{self, SpiffeId};
use fleetgate_hub::model::ClusterKey;
use fleetgate_proto::spoke::v1 as pb;

mod support;
use fleetgate_hub::sync::handshake;
use support::{SyncStream, TWO_TENANTS, TestHub, backend, http_route, hub_log, mtls_channel};

/// HTTPRoute `name` (generation 7) on Gateway `web` for `host` -> Service `app`:80 with
/// endpoint `endpoint`:30080.
fn route(name: &str, host: &str, endpoint: &str) -> pb::Object {
    let mut route = http_route(name, "web", host, backend("app", 80, endpoint, 30080));
    route.generation = 7;
    route
}

fn parent_condition<'a>(s: &'a pb::Status, name: &str, ty: &str) -> Option<&'a pb::Condition> {
    s.objects
        .iter()
        .find(|o| o.r#ref.as_ref().is_some_and(|r| r.name == name))?
        .parents
        .first()?
        .conditions
        .iter()
        .find(|c| c.r#type == ty)
}

#[tokio::test]
async fn admission_verdicts_reach_the_agent_per_object() {
    let mut hub = TestHub::start(TWO_TENANTS).await;
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    s.send(
        1,
        true,
        vec![
            route("good", "app.a.example", "10.1.0.5"),
            route("foreign-host", "app.b.example", "10.1.0.5"),
            route("foreign-endpoint", "x.a.example", "169.254.169.254"),
        ],
    )
    .await;
    assert!(matches!(s.verdict().await.unwrap(), pb::hub_message::Kind::Ack(a) if a.revision == 1));
    let st = s
        .status_where(|st| parent_condition(st, "foreign-host", "Accepted").is_some())
        .await;
    let c = parent_condition(&st, "foreign-host", "Accepted").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "HostnameNotAllowed")
    );
    assert!(c.message.contains("*.a.example"), "{}", c.message);
    let c = parent_condition(&st, "foreign-endpoint", "Accepted").unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "EndpointNotAllowed")
    );
    // The good route is judged on its own (its Gateway is missing, so it is not attached, but it
    // was not rejected by policy).
    let c = parent_condition(&st, "good", "Accepted").unwrap();
    assert_ne!(c.reason, "HostnameNotAllowed");
    let good = st
        .objects
        .iter()
        .find(|o| o.r#ref.as_ref().unwrap().name == "good")
        .unwrap();
    assert_eq!(good.observed_generation, 7);

    // A revision out of order is refused, and the stream stays usable.
    s.send(5, false, vec![]).await;
    assert!(
        matches!(s.verdict().await.unwrap(), pb::hub_message::Kind::Nack(n) if n.message.contains("expected revision 2"))
    );
    hub.stop().await;
}

#[tokio::test]
async fn identity_comes_from_the_certificate_only() {
    hub_log();
    let mut hub = TestHub::start(TWO_TENANTS).await;
    let id = hub.issue("tenant-a", "east");
    // Naming another cluster than the certificate's is refused.
    let err = match SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "west").await
    {
        Ok(mut s) => s.verdict().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("certificate is for cluster"),
        "{}",
        err.message()
    );

    // A certificate for a cluster the hub does not know is refused.
    let unknown = hub.issue("tenant-a", "ghost");
    let err = match SyncStream::open(
        mtls_channel(hub.agent_addr, &unknown).await.unwrap(),
        "ghost",
    )
    .await
    {
        Ok(mut s) => s.verdict().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("not registered"),
        "{}",
        err.message()
    );

    // A certificate from another CA does not get past the handshake.
    let other = tempfile::tempdir().unwrap();
    identity::init_ca(&other.path().join("pki"), &[]).unwrap();
    let foreign = other.path().join("agent");
    identity::issue_agent(
        &other.path().join("pki"),
        &SpiffeId::new("fleetgate", "tenant-a", "east").unwrap(),
        time::Duration::hours(1),
        &foreign,
    )
    .unwrap();
    // Trust the real hub CA, but present the foreign identity.
    std::fs::copy(id.join("ca.crt"), foreign.join("ca.crt")).unwrap();
    let refused = match mtls_channel(hub.agent_addr, &foreign).await {
        Err(_) => true,
        Ok(ch) => SyncStream::open(ch, "east").await.is_err(),
    };
    assert!(refused, "a certificate from a foreign CA must be refused");
    // The hub says so, with the reason.
    let log = hub_log();
    assert!(
        log.lines().any(|l| l.contains(handshake::REFUSED)
            // Same CA name, another key: the signature does not verify.
            && l.contains("reason=invalid peer certificate: BadSignature")),
        "the hub's log: {log}"
    );

    // The hub still serves the legitimate agent afterwards.
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    s.send(1, true, vec![]).await;
    assert!(matches!(
        s.verdict().await.unwrap(),
        pb::hub_message::Kind::Ack(_)
    ));
    hub.stop().await;
}

/// What the hub's store holds for `tenant`/`cluster`, read from its file. The hub must be
/// stopped (the store is locked while it runs): this is what a restarted hub would serve.
fn stored_routes(hub: &TestHub, tenant: &str, cluster: &str) -> Vec<(String, Vec<String>)> {
    let store = fleetgate_hub::store::Store::open(&hub.dir.path().join("hub.redb")).unwrap();
    let loaded = store.load().unwrap();
    let key = ClusterKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
    };
    loaded
        .intent
        .get(&key)
        .map(|ci| {
            ci.http_routes
                .iter()
                .map(|((_, name), r)| (name.clone(), r.hostnames.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn oversized_update_is_refused_and_nothing_is_stored() {
    let mut hub = TestHub::start(TWO_TENANTS).await;
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    let mut big = route("big", "big.a.example", "10.1.0.5");
    big.creation_timestamp = "x".repeat(fleetgate_proto::MAX_MESSAGE_BYTES + 1);
    s.send(1, true, vec![big]).await;
    let err = s.verdict().await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("message length too large"),
        "{err:?}"
    );

    // Before anything else reaches the hub: its store holds nothing for the cluster.
    hub.stop().await;
    assert_eq!(stored_routes(&hub, "tenant-a", "east"), vec![]);

    // The hub starts again from that store and serves the agent: nothing of the oversized
    // Update shows up in its status.
    hub.run().await;
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    s.send(1, true, vec![route("small", "small.a.example", "10.1.0.5")])
        .await;
    assert!(matches!(
        s.verdict().await.unwrap(),
        pb::hub_message::Kind::Ack(_)
    ));
    let st = s.status_where(|st| !st.objects.is_empty()).await;
    let names: Vec<_> = st
        .objects
        .iter()
        .map(|o| o.r#ref.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(names, vec!["small"]);
    hub.stop().await;
}

/// `limits.maxObjectsPerCluster`: an Update that would leave one object more than the limit in
/// the cluster is Nacked whole with the limit and the config key, and nothing of it is stored.
#[tokio::test]
async fn an_update_past_max_objects_per_cluster_is_nacked_and_nothing_of_it_is_stored() {
    let mut hub = TestHub::start_with(
        "limits: {maxObjectsPerCluster: 3, maxEndpointsPerBackend: 1000}",
        TWO_TENANTS,
        false,
    )
    .await;
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    // At the limit: accepted.
    let at_limit: Vec<_> = (0..3)
        .map(|i| route(&format!("r{i}"), &format!("r{i}.a.example"), "10.1.0.5"))
        .collect();
    s.send(1, true, at_limit).await;
    assert!(matches!(s.verdict().await.unwrap(), pb::hub_message::Kind::Ack(a) if a.revision == 1));
    // One more (and a change to an accepted route in the same Update): Nacked whole.
    s.send(
        2,
        false,
        vec![
            route("r0", "changed.a.example", "10.1.0.5"),
            route("r3", "r3.a.example", "10.1.0.5"),
        ],
    )
    .await;
    match s.verdict().await.unwrap() {
        pb::hub_message::Kind::Nack(n) => {
            assert_eq!(n.revision, 2);
            assert!(
                n.message
                    .contains("would leave 4 objects in this cluster; the limit is 3")
                    && n.message.contains("limits.maxObjectsPerCluster"),
                "{}",
                n.message
            );
        }
        other => panic!("expected a Nack, got {other:?}"),
    }

    // Nothing else reaches the hub: the store holds the three accepted routes as they were.
    hub.stop().await;
    let want: Vec<(String, Vec<String>)> = (0..3)
        .map(|i| (format!("r{i}"), vec![format!("r{i}.a.example")]))
        .collect();
    assert_eq!(stored_routes(&hub, "tenant-a", "east"), want);
}
