//! The walking skeleton, end to end on real components: tenant YAML in a tenant API server ->
//! agent -> hub -> Envoy -> the tenant's backend, and status back onto the tenant's objects.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    TENANT_A, TENANT_B, class_and_http_gateway, condition, http_route, rule_to,
};
use fleetgate_e2e::fleet::RAW_CLUSTER;
use fleetgate_e2e::sync_client::{self, ClientTls, SyncSession};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use fleetgate_proto::spoke::v1 as pb;
use serde_json::Value;

/// HTTPRoute `name` on Gateway `web` for `hostname`, PathPrefix `path`, to (Service, weight)s
/// on port 8080.
fn route_yaml(name: &str, hostname: &str, path: &str, backends: &[(&str, u32)]) -> String {
    http_route(
        "default",
        name,
        &["{name: web}"],
        &[hostname],
        &rule_to(Some(path), backends),
    )
}

/// Plays node `node-1` (InternalIP .10 of the tenant's range), creates Service `svc` with an
/// echo backend named `<tenant>-<svc>` on the node's nodePort.
async fn backend(t: &FleetTenant, svc: &str) -> Echo {
    let ip = t.create_node("node-1", 10).await.expect("node");
    t.node_port_backend(svc, ip, &format!("{}-{svc}", t.name))
        .await
        .expect("NodePort Service and echo backend")
}

/// The tenant's Gateway `web`, HTTPRoute `app` for `app.<x>.example` -> Service `echo`.
async fn deploy_app(t: &FleetTenant, hostname: &str) -> Echo {
    let echo = backend(t, "echo").await;
    t.cluster
        .apply(&class_and_http_gateway(Some(hostname)))
        .await
        .expect("apply Gateway");
    t.cluster
        .apply(&route_yaml("app", hostname, "/", &[("echo", 1)]))
        .await
        .expect("apply HTTPRoute");
    echo
}

/// Waits until `GET <path>` with `Host: host` through the data plane answers 200 `body`.
async fn wait_served(fleet: &Fleet, host: &str, path: &str, body: &str) {
    eventually(TIMEOUT, || async {
        let (status, got) = fleet.get(host, path).await?;
        ensure!(
            status == 200 && got == body,
            "{host}{path}: status {status}, body {got:?} (want 200 {body:?})"
        );
        Ok(())
    })
    .await
}

/// Waits until `GET <path>` with `Host: host` answers `want` (e.g. 404).
async fn wait_status(fleet: &Fleet, host: &str, path: &str, want: u16) {
    eventually(TIMEOUT, || async {
        let (status, got) = fleet.get(host, path).await?;
        ensure!(
            status == want,
            "{host}{path}: status {status}, body {got:?} (want {want})"
        );
        Ok(())
    })
    .await
}

/// The Gateway once it is Programmed=True for its current generation; returns it.
async fn wait_gateway_programmed(t: &FleetTenant, name: &str) -> Value {
    eventually(TIMEOUT, || async {
        let gw = t
            .cluster
            .get_json("Gateway", "default", name)
            .await?
            .context("Gateway missing")?;
        let programmed = condition(&gw["status"]["conditions"], "Programmed")
            .with_context(|| format!("no Programmed condition: {}", gw["status"]))?;
        ensure!(programmed["status"] == "True", "Programmed: {programmed}");
        ensure!(
            programmed["observedGeneration"] == gw["metadata"]["generation"],
            "Programmed observedGeneration {} != generation {}",
            programmed["observedGeneration"],
            gw["metadata"]["generation"]
        );
        Ok(gw)
    })
    .await
}

fn addresses(gw: &Value) -> Vec<String> {
    gw["status"]["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_reach_their_own_backends_and_see_status() {
    let fleet = Fleet::start(&[TENANT_A, TENANT_B]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let _echo_a = deploy_app(a, "app.a.example").await;
    let _echo_b = deploy_app(b, "app.b.example").await;

    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    wait_served(&fleet, "app.b.example", "/", "tenant-b-echo").await;
    // A host nobody claimed reaches no tenant.
    let (status, body) = fleet.get("app.c.example", "/").await.unwrap();
    assert_eq!(status, 404, "unclaimed host answered {status} {body:?}");

    for t in [a, b] {
        let gw = wait_gateway_programmed(t, "web").await;
        assert_eq!(
            addresses(&gw),
            vec!["127.0.0.1"],
            "{}: {}",
            t.name,
            gw["status"]
        );
        let route = t
            .cluster
            .get_json("HTTPRoute", "default", "app")
            .await
            .unwrap()
            .unwrap();
        let accepted = condition(&route["status"]["parents"][0]["conditions"], "Accepted");
        assert_eq!(
            accepted.map(|c| c["status"].clone()),
            Some(Value::from("True")),
            "{}: {}",
            t.name,
            route["status"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_changes_weights_and_deletion_are_followed() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let _echo = deploy_app(a, "app.a.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    // New path, two weighted backends.
    let _echo2 = backend(a, "echo2").await;
    a.cluster
        .apply(&route_yaml(
            "app",
            "app.a.example",
            "/v2",
            &[("echo", 1), ("echo2", 1)],
        ))
        .await
        .unwrap();
    wait_status(&fleet, "app.a.example", "/", 404).await;
    wait_status(&fleet, "app.a.example", "/v2", 200).await;
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..200 {
        let (status, body) = fleet.get("app.a.example", "/v2/x").await.unwrap();
        assert_eq!(status, 200, "{body}");
        *seen.entry(body).or_default() += 1;
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        vec!["tenant-a-echo", "tenant-a-echo2"],
        "{seen:?}"
    );
    for (backend, n) in &seen {
        assert!(*n >= 40, "weights 1:1 but {backend} got {n}/200: {seen:?}");
    }

    // Deleting the route removes it from the data plane.
    a.cluster
        .delete("HTTPRoute", "default", "app")
        .await
        .unwrap();
    wait_status(&fleet, "app.a.example", "/v2", 404).await;

    // A route to a Service that does not exist: ResolvedRefs=False, BackendNotFound.
    a.cluster
        .apply(&route_yaml("broken", "app.a.example", "/", &[("nope", 1)]))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let route = a
            .cluster
            .get_json("HTTPRoute", "default", "broken")
            .await?
            .context("route missing")?;
        let resolved = condition(&route["status"]["parents"][0]["conditions"], "ResolvedRefs")
            .with_context(|| format!("no ResolvedRefs yet: {}", route["status"]))?;
        ensure!(
            resolved["status"] == "False" && resolved["reason"] == "BackendNotFound",
            "ResolvedRefs: {resolved}"
        );
        ensure!(
            resolved["observedGeneration"] == route["metadata"]["generation"],
            "stale ResolvedRefs: {resolved}"
        );
        Ok(())
    })
    .await;
    // Its traffic gets 500, as the Gateway API requires for an invalid backend.
    wait_status(&fleet, "app.a.example", "/", 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_keeps_serving_while_the_hub_is_down_and_agents_reconnect() {
    let mut fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let _echo = deploy_app(fleet.tenant("tenant-a"), "app.a.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    let before = addresses(&wait_gateway_programmed(fleet.tenant("tenant-a"), "web").await);

    fleet.hub.kill();
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(10) {
        let (status, body) = fleet.get("app.a.example", "/").await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (200, "tenant-a-echo"),
            "Envoy stopped serving after {:?} without the hub",
            start.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served > 10);

    fleet.hub.start_again().await.expect("hub restarts");
    fleet.ensure_running().unwrap();
    // A change made after the restart reaches Envoy: the agent reconnected and Envoy re-fetched.
    let a = fleet.tenant("tenant-a");
    a.cluster
        .apply(&route_yaml(
            "app",
            "app.a.example",
            "/after",
            &[("echo", 1)],
        ))
        .await
        .unwrap();
    wait_served(&fleet, "app.a.example", "/after", "tenant-a-echo").await;
    wait_status(&fleet, "app.a.example", "/", 404).await;
    let after = addresses(&wait_gateway_programmed(a, "web").await);
    assert_eq!(
        before, after,
        "Gateway addresses changed across a hub restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_claim_another_tenants_hostname() {
    let fleet = Fleet::start(&[TENANT_A, TENANT_B]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let _echo_a = deploy_app(a, "app.a.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    // Tenant B (owns *.b.example) claims app.a.example.
    let _echo_b = deploy_app(b, "app.a.example").await;
    let message = eventually(TIMEOUT, || async {
        let gw = b
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let route = b
            .cluster
            .get_json("HTTPRoute", "default", "app")
            .await?
            .context("HTTPRoute missing")?;
        let mut candidates = vec![
            condition(&gw["status"]["conditions"], "Accepted"),
            condition(&route["status"]["parents"][0]["conditions"], "Accepted"),
        ];
        for l in gw["status"]["listeners"].as_array().into_iter().flatten() {
            candidates.push(condition(&l["conditions"], "Accepted"));
        }
        let rejected = candidates
            .into_iter()
            .flatten()
            .find(|c| c["status"] == "False")
            .with_context(|| {
                format!(
                    "no Accepted=False yet; Gateway {} HTTPRoute {}",
                    gw["status"], route["status"]
                )
            })?;
        let message = rejected["message"].as_str().unwrap_or_default().to_string();
        ensure!(
            !message.is_empty(),
            "rejected without a message: {rejected}"
        );
        Ok(message)
    })
    .await;
    assert!(
        message.contains("app.a.example") || message.contains("*.b.example"),
        "the message should name the hostname or the allowed pattern: {message}"
    );

    for _ in 0..20 {
        let (status, body) = fleet.get("app.a.example", "/").await.unwrap();
        assert_eq!((status, body.as_str()), (200, "tenant-a-echo"));
    }
}

/// A Gateway object whose encoding is larger than `bytes`.
fn oversized_gateway(bytes: usize) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::Gateway as i32,
            namespace: "default".into(),
            name: "huge".into(),
        }),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            listeners: vec![pb::Listener {
                name: "x".repeat(bytes),
                protocol: "HTTP".into(),
                port: 80,
                hostname: "huge.a.example".into(),
                allowed_routes: None,
                tls: None,
            }],
            allowed_listeners: None,
        })),
    }
}

fn update(revision: u64, full_state: bool, upserts: Vec<pb::Object>) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Update(pb::Update {
            revision,
            full_state,
            upserts,
            deletes: vec![],
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_refused_and_the_hub_keeps_serving() {
    let mut fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let _echo = deploy_app(fleet.tenant("tenant-a"), "app.a.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    let hub_addr = fleet.hub.agent_addr();
    let raw_identity = fleet
        .hub
        .issue_agent_identity("tenant-a", RAW_CLUSTER)
        .unwrap();
    let good = ClientTls::from_identity_dir(&raw_identity).unwrap();

    // Control: the raw client with a hub-issued identity is answered, so a refusal below is the
    // hub's doing and not a broken client.
    let mut client = sync_client::connect(hub_addr, &good).await.unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    assert!(session.send(update(1, true, vec![])).await);
    let answer = session.next_verdict(TIMEOUT).await.unwrap();
    assert!(
        matches!(
            &answer,
            Ok(Some(pb::HubMessage {
                kind: Some(pb::hub_message::Kind::Ack(pb::Ack { revision: 1 }))
            }))
        ),
        "the hub did not Ack an empty full state: {answer:?}"
    );
    drop(session);

    // A client certificate from a CA the hub does not know is refused: at the handshake, or at
    // the latest on the first RPC.
    let foreign_ca = fleetgate_e2e::pki::Ca::new("not-the-hub").unwrap();
    let mut foreign_leaf = fleetgate_e2e::pki::Leaf::client("intruder", &[]);
    foreign_leaf.uri_sans = vec![format!(
        "spiffe://fleetgate/tenant/tenant-a/cluster/{RAW_CLUSTER}"
    )];
    let foreign = foreign_ca.issue(&foreign_leaf).unwrap();
    let foreign_tls = ClientTls {
        ca_pem: good.ca_pem.clone(),
        identity: Some((foreign.cert_pem, foreign.key_pem)),
    };
    let refused: String = match sync_client::connect(hub_addr, &foreign_tls).await {
        Err(e) => format!("connect: {e:#}"),
        Ok(mut client) => match SyncSession::open(&mut client, RAW_CLUSTER).await {
            Err(status) => format!("open: {status}"),
            Ok(mut session) => {
                session.send(update(1, true, vec![])).await;
                match session.next_verdict(TIMEOUT).await {
                    Ok(Err(status)) => format!("stream: {status}"),
                    Ok(Ok(None)) => "stream closed".to_string(),
                    Ok(Ok(Some(msg))) => panic!("the hub answered a foreign certificate: {msg:?}"),
                    Err(e) => {
                        panic!("the hub neither refused nor answered a foreign certificate: {e:#}")
                    }
                }
            }
        },
    };
    eprintln!("foreign certificate refused: {refused}");

    // An Update larger than the 16 MiB limit is refused with an error that says so.
    let mut client = sync_client::connect(hub_addr, &good).await.unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    let huge = oversized_gateway(fleetgate_proto::MAX_MESSAGE_BYTES + 1024);
    session.send(update(1, true, vec![huge])).await;
    let error = match session.next_verdict(TIMEOUT).await.unwrap() {
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
        Ok(Some(pb::HubMessage {
            kind: Some(pb::hub_message::Kind::Nack(nack)),
        })) => nack.message,
        other => panic!("an oversized Update was not refused: {other:?}"),
    };
    eprintln!("oversized Update refused: {error}");
    let lower = error.to_ascii_lowercase();
    assert!(
        ["large", "size", "limit", "exceed"]
            .iter()
            .any(|w| lower.contains(w)),
        "the refusal does not say what is wrong: {error}"
    );
    drop(session);

    // The hub survived and still serves the others.
    assert!(
        fleet.hub.is_running(),
        "the hub died: {}",
        fleet.hub.process().log_tail(40)
    );
    fleet.ensure_running().unwrap();
    for _ in 0..10 {
        let (status, body) = fleet.get("app.a.example", "/").await.unwrap();
        assert_eq!((status, body.as_str()), (200, "tenant-a-echo"));
    }
}
