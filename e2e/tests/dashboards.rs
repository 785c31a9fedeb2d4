//! The Grafana dashboards of `deploy/grafana/` ask only for what the running components expose:
//! a live fleet (hub with its admin port, an agent with its metrics port, Envoy, a tenant's
//! Gateway and route with traffic through Envoy) is scraped (the hub's and the agent's
//! `/metrics`, Envoy's `/stats/prometheus`), and every panel's and variable's query of the fleet
//! and tenant boards is checked against the series names and label names scraped. A renamed
//! metric or label fails here, and so does a board metric with no sample to check its labels on.
//! `ai-usage.json` asks the AI gateway: `ai_usage.rs` checks it against a live AI gateway after
//! real requests.

use std::net::SocketAddr;

use anyhow::ensure;
use fleetgate_e2e::fixtures::{TENANT_A, class_and_http_gateway, http_route, rule_to};
use fleetgate_e2e::grafana::{AI_USAGE, Exposed, FLEET, TENANT, check, unsampled};
use fleetgate_e2e::{Fleet, FleetOptions, TIMEOUT, eventually};
use serde_json::Value;

async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, text) = fleetgate_e2e::http::get(addr, "metrics", "/metrics", &[]).await?;
    ensure!(status == 200, "/metrics on {addr}: {status}");
    Ok(text)
}

/// The value of the unlabelled sample `name` in a scrape (0 when absent).
fn count(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_dashboard_query_names_metrics_and_labels_the_fleet_exposes() {
    let hub_admin = fleetgate_e2e::ports::free_addr().unwrap();
    let agent_metrics = fleetgate_e2e::ports::free_addr().unwrap();
    let mut hub_extra = serde_json::Map::new();
    hub_extra.insert("adminListen".into(), hub_admin.to_string().into());
    let fleet = Fleet::start_with_options(
        &[TENANT_A],
        FleetOptions {
            hub_extra,
            agent_args: vec![format!("--metrics-listen={agent_metrics}")],
        },
    )
    .await
    .unwrap();
    let t = fleet.tenant("tenant-a");
    // The agent has listed its cluster and synced: what is applied from here on reaches it as
    // watch events (whose lag it measures), not in its first list.
    eventually(TIMEOUT, || async {
        let agent = scrape(agent_metrics).await?;
        ensure!(
            agent.contains(r#"fleetgate_agent_sync_state{state="synced"} 1"#),
            "the agent has not synced yet"
        );
        Ok(())
    })
    .await;
    // Service `echo` with a backend on node-1's nodePort, so that requests through Envoy are
    // answered.
    let node = t.create_node("node-1", 10).await.unwrap();
    let _echo = t
        .node_port_backend("echo", node, "tenant-a-echo")
        .await
        .unwrap();
    t.cluster
        .apply(&class_and_http_gateway(Some("app.a.example")))
        .await
        .unwrap();
    t.cluster
        .apply(&http_route(
            "default",
            "app",
            &["{name: web}"],
            &["app.a.example"],
            &rule_to(Some("/"), &[("echo", 1)]),
        ))
        .await
        .unwrap();
    // Traffic through Envoy, so that its stats (and the hub's, from Envoy's stats sink) have
    // the tenant's requests.
    eventually(TIMEOUT, || async {
        let (status, body) = fleet.get("app.a.example", "/").await?;
        ensure!(status == 200, "app.a.example answered {status}: {body}");
        Ok(())
    })
    .await;
    // Wait until each has something to say: the route counted and the tenant's requests
    // reported at the hub, an Ack at the agent, the tenant's responses in Envoy's stats.
    let mut exposed = Exposed::default();
    eventually(TIMEOUT, || async {
        fleet.get("app.a.example", "/").await?;
        let hub = scrape(hub_admin).await?;
        let agent = scrape(agent_metrics).await?;
        let (status, envoy) = fleet.envoy.admin_get("/stats/prometheus").await?;
        ensure!(status == 200, "Envoy's /stats/prometheus: {status}");
        ensure!(
            hub.contains(r#"kind="HTTPRoute""#),
            "the hub has not counted the route yet"
        );
        ensure!(
            hub.contains(r#"fleetgate_hub_tenant_requests_total{tenant="tenant-a"}"#),
            "Envoy has not reported tenant-a's requests to the hub yet"
        );
        ensure!(
            agent.contains(r#"result="ack""#),
            "the agent has no Ack yet"
        );
        // The route came through the agent's watch (its lag measured, its Sync synced) and
        // reached the connected Envoy (update-to-ACK measured).
        ensure!(
            count(&agent, "fleetgate_agent_watch_lag_seconds_count") >= 1.0
                && agent.contains(r#"fleetgate_agent_sync_state{state="synced"} 1"#),
            "the agent has measured no watch lag or is not synced yet: {:?}",
            agent
                .lines()
                .filter(|l| l.starts_with("fleetgate_agent_sync_state")
                    || l.starts_with("fleetgate_agent_watch_lag_seconds_count"))
                .collect::<Vec<_>>()
        );
        ensure!(
            count(&hub, "fleetgate_hub_update_to_ack_seconds_count") >= 1.0,
            "the hub has measured no update-to-ACK time yet"
        );
        // The hub binary counts its live heap (hub/src/heap.rs): megabytes, never 0.
        ensure!(
            count(&hub, "fleetgate_hub_heap_bytes") > 1e6,
            "the hub shows no live heap: {:?}",
            hub.lines()
                .find(|l| l.starts_with("fleetgate_hub_heap_bytes"))
        );
        ensure!(
            envoy
                .lines()
                .any(|l| l.starts_with("envoy_cluster_upstream_rq_xx{")
                    && l.contains(r#"fleetgate_tenant="tenant-a""#)),
            "Envoy's stats have no response of tenant-a's yet"
        );
        Ok(())
    })
    .await;
    exposed.add(&scrape(hub_admin).await.unwrap());
    exposed.add(&scrape(agent_metrics).await.unwrap());
    exposed.add(&fleet.envoy.admin_get("/stats/prometheus").await.unwrap().1);

    let dir = fleetgate_e2e::components::workspace_dir().join("deploy/grafana");
    let mut checked = 0;
    // Every board is checked: these two here, the AI usage board by ai_usage.rs.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".json") || [FLEET, TENANT, AI_USAGE].contains(&name.as_str()),
            "deploy/grafana/{name} is checked by no test: add it to dashboards.rs"
        );
    }
    for file in [FLEET, TENANT] {
        let path = dir.join(file);
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        checked += check(file, &dashboard, &exposed);
        let unsampled = unsampled(&dashboard, &exposed);
        assert!(
            unsampled.is_empty(),
            "{file}: no sample of {unsampled:?} in the scrapes, so their labels went unchecked"
        );
    }
    assert!(
        checked >= 30,
        "only {checked} queries found in {}",
        dir.display()
    );
}
