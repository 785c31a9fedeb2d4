//! The walking skeleton, end to end on real components: tenant YAML in a tenant API server ->
//! agent -> hub -> Envoy -> the tenant's backend, and status back onto the tenant's objects.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet. The
//! attacks (hostname hijacks, hostile streams, oversized updates) are in `isolation.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    TENANT_A, TENANT_B, class_and_http_gateway, condition, http_route, rule_to, wait_served,
};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
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
    // A Host with a port is routed by its name and reaches the backend as the client sent it
    // (Gateway API: the port is not stripped).
    let with_port = format!("app.a.example:{}", fleet.data_plane().port());
    let r = fleetgate_e2e::http::request(fleet.data_plane(), &with_port, "/", &[])
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "tenant-a-echo"));
    assert_eq!(r.header("x-echo-header-host"), Some(with_port.as_str()));
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
