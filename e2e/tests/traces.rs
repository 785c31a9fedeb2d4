//! Traces over OTLP, end to end on real components (docs/operations.md, "Traces"): every
//! product process exports to an OTLP receiver inside the test (`fleetgate_e2e::otlp`), and one
//! HTTPRoute change is followed in one trace from the agent's Update through the hub's
//! admission, store, compile and xDS push to Envoy's ACK, and back to the agent's status write.
//!
//! Needs the product binaries: `cargo build --bins` first.

use std::time::Duration;

use fleetgate_e2e::Fleet;
use fleetgate_e2e::fixtures::{TENANT_A, class_and_http_gateway, http_route, rule_to, wait_served};
use fleetgate_e2e::otlp::{OtlpReceiver, ReceivedSpan};

/// The spans of one traced HTTPRoute change, each checked against its parent.
#[derive(Debug)]
struct Change {
    update: ReceivedSpan,
    hub: ReceivedSpan,
    admit: ReceivedSpan,
    store: ReceivedSpan,
    compile: ReceivedSpan,
    push: ReceivedSpan,
    ack: ReceivedSpan,
    status: ReceivedSpan,
}

/// The first trace in `spans` that holds the whole path of an Update upserting an HTTPRoute.
fn change(spans: &[ReceivedSpan]) -> Option<Change> {
    let child = |parent: &ReceivedSpan, service: &str, name: &str| {
        spans
            .iter()
            .find(|s| {
                s.trace_id == parent.trace_id
                    && s.parent_span_id == parent.span_id
                    && s.service == service
                    && s.name == name
            })
            .cloned()
    };
    spans
        .iter()
        .filter(|s| {
            s.service == "fleetgate-hub"
                && s.name == "hub.sync.update"
                && !s.attr("fleetgate.upserts.http_route").is_empty()
        })
        .find_map(|hub| {
            let update = spans.iter().find(|s| {
                s.span_id == hub.parent_span_id
                    && s.trace_id == hub.trace_id
                    && s.service == "fleetgate-agent"
                    && s.name == "agent.sync.update"
            })?;
            let admit = child(hub, "fleetgate-hub", "hub.admit")?;
            let store = child(&admit, "fleetgate-hub", "hub.store")?;
            let compile = child(hub, "fleetgate-hub", "hub.compile")?;
            let push = child(&compile, "fleetgate-hub", "hub.xds.push")?;
            let ack = child(&push, "fleetgate-hub", "envoy.ack")?;
            let status = child(hub, "fleetgate-agent", "agent.status.write")?;
            Some(Change {
                update: update.clone(),
                hub: hub.clone(),
                admit,
                store,
                compile,
                push,
                ack,
                status,
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_route_change_is_one_trace_from_agent_to_envoy_ack_and_back() {
    let otlp = OtlpReceiver::start().await.expect("OTLP receiver");
    fleetgate_e2e::process::set_product_env(otlp.env()).expect("product environment");
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let ip = a.create_node("node-1", 10).await.expect("node");
    let _echo = a
        .node_port_backend("echo", ip, "tenant-a-echo")
        .await
        .expect("NodePort Service and echo backend");
    a.cluster
        .apply(&class_and_http_gateway(Some("app.a.example")))
        .await
        .expect("apply Gateway");
    a.cluster
        .apply(&http_route(
            "default",
            "app",
            &["{name: web}"],
            &["app.a.example"],
            &rule_to(Some("/"), &[("echo", 1)]),
        ))
        .await
        .expect("apply HTTPRoute");
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    let c = otlp
        .wait_for(Duration::from_secs(60), change)
        .await
        .expect("one trace from the agent's Update to Envoy's ACK and the status write");

    // One trace, rooted at the agent.
    assert_eq!(c.update.parent_span_id, "", "{:?}", c.update);
    for s in [
        &c.hub, &c.admit, &c.store, &c.compile, &c.push, &c.ack, &c.status,
    ] {
        assert_eq!(s.trace_id, c.update.trace_id, "{s:?}");
    }
    // Bounded, safe attributes: who and how much, never names or contents.
    // attr() is "" when absent: each compared attribute must be there, not just equal.
    assert_eq!(c.hub.attr("fleetgate.tenant"), "tenant-a");
    assert_ne!(c.update.attr("fleetgate.cluster"), "", "{:?}", c.update);
    assert_eq!(
        c.hub.attr("fleetgate.cluster"),
        c.update.attr("fleetgate.cluster")
    );
    assert_ne!(c.update.attr("fleetgate.revision"), "", "{:?}", c.update);
    assert_eq!(
        c.hub.attr("fleetgate.revision"),
        c.update.attr("fleetgate.revision")
    );
    assert_eq!(c.admit.attr("fleetgate.tenant"), "tenant-a");
    assert_eq!(c.store.status_code, 0, "{:?}", c.store);
    assert!(
        c.push.attr("xds.type_urls").contains("RouteConfiguration")
            || c.push.attr("xds.type_urls").contains("Listener"),
        "{:?}",
        c.push
    );
    assert!(
        c.ack
            .attr("xds.type_url")
            .starts_with("type.googleapis.com/envoy."),
        "{:?}",
        c.ack
    );
    assert_ne!(c.ack.attr("xds.version"), "");
    assert_ne!(c.ack.attr("envoy.node"), "");
    assert_eq!(c.ack.status_code, 0, "an ACK is no error: {:?}", c.ack);
    let writes: u64 = c.status.attr("fleetgate.writes").parse().unwrap_or(0);
    assert!(writes > 0, "a status write counted: {:?}", c.status);
    for s in otlp.spans() {
        for (k, v) in &s.attributes {
            assert!(
                !v.contains("BEGIN") && !v.contains("app.a.example"),
                "{}: attribute {k}={v:?} carries object contents",
                s.name
            );
        }
    }
}
