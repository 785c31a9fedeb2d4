//! The Grafana dashboards of `deploy/grafana/` ask only for what the running components expose:
//! a live fleet (hub with its admin port, an agent with its metrics port, Envoy, a tenant's
//! Gateway and route) is scraped, and every panel's and variable's query is checked against the
//! series names and label names scraped. A renamed metric or label fails here. `ai-usage.json`
//! asks the AI gateway: `ai_usage.rs` checks it against a live AI gateway after real requests.

use std::net::SocketAddr;

use anyhow::ensure;
use fleetgate_e2e::fixtures::{TENANT_A, class_and_http_gateway, http_route, rule_to};
use fleetgate_e2e::grafana::{AI_USAGE, Exposed, check, query_parts};
use fleetgate_e2e::{Fleet, FleetOptions, TIMEOUT, eventually};
use serde_json::Value;

async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, text) = fleetgate_e2e::http::get(addr, "metrics", "/metrics", &[]).await?;
    ensure!(status == 200, "/metrics on {addr}: {status}");
    Ok(text)
}

#[test]
fn queries_are_read_as_promql_names_them() {
    let (m, l) = query_parts(
        r#"sum by (kind, reason) (fleetgate_hub_objects{tenant="$tenant", accepted="false"})"#,
    );
    assert_eq!(m, ["fleetgate_hub_objects"]);
    assert_eq!(l, ["tenant", "accepted", "kind", "reason"]);
    let (m, l) = query_parts("label_values(fleetgate_hub_clusters, tenant)");
    assert_eq!(
        (m, l),
        (
            vec!["fleetgate_hub_clusters".to_string()],
            vec!["tenant".to_string()]
        )
    );
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
    // Wait until both have something to say: the route counted at the hub, an Ack at the agent.
    let mut exposed = Exposed::default();
    eventually(TIMEOUT, || async {
        let hub = scrape(hub_admin).await?;
        let agent = scrape(agent_metrics).await?;
        ensure!(
            hub.contains(r#"kind="HTTPRoute""#),
            "the hub has not counted the route yet"
        );
        ensure!(
            agent.contains(r#"result="ack""#),
            "the agent has no Ack yet"
        );
        Ok(())
    })
    .await;
    exposed.add(&scrape(hub_admin).await.unwrap());
    exposed.add(&scrape(agent_metrics).await.unwrap());

    let dir = fleetgate_e2e::components::workspace_dir().join("deploy/grafana");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") || path.ends_with(AI_USAGE) {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        checked += check(&file, &dashboard, &exposed);
    }
    assert!(
        checked >= 10,
        "only {checked} queries found in {}",
        dir.display()
    );
}
