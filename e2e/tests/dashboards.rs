//! The Grafana dashboards of `deploy/grafana/` ask only for what the running components expose:
//! a live fleet (hub with its admin port, an agent with its metrics port, Envoy, a tenant's
//! Gateway and route) is scraped, and every panel's and variable's query is checked against the
//! series names and label names scraped. A renamed metric or label fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use anyhow::ensure;
use fleetgate_e2e::fixtures::{TENANT_A, class_and_http_gateway, http_route, rule_to};
use fleetgate_e2e::{Fleet, FleetOptions, TIMEOUT, eventually};
use serde_json::Value;

/// Series name -> label names seen on its samples (families without samples: the names their
/// `# TYPE` line implies, with no labels known).
#[derive(Debug, Default)]
struct Exposed {
    series: BTreeMap<String, BTreeSet<String>>,
}

impl Exposed {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let names: Vec<String> = match kind {
                    "counter" => vec![format!("{name}_total")],
                    "histogram" => ["_bucket", "_count", "_sum"]
                        .iter()
                        .map(|s| format!("{name}{s}"))
                        .collect(),
                    _ => vec![name.to_string()],
                };
                for n in names {
                    self.series.entry(n).or_default();
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let (name, labels) = match line.split_once('{') {
                    Some((name, rest)) => {
                        (name, rest.split_once('}').map(|(l, _)| l).unwrap_or(""))
                    }
                    None => (line.split_whitespace().next().unwrap_or(""), ""),
                };
                let set = self.series.entry(name.to_string()).or_default();
                for pair in labels.split("\",") {
                    if let Some((k, _)) = pair.split_once('=') {
                        set.insert(k.trim().to_string());
                    }
                }
            }
        }
    }
}

/// The metric names a PromQL expression uses, and the label names it selects or groups by.
fn query_parts(expr: &str) -> (Vec<String>, Vec<String>) {
    let ident = regex::Regex::new(r"fleetgate_[a-z0-9_]+").unwrap();
    let metrics = ident
        .find_iter(expr)
        .map(|m| m.as_str().to_string())
        .collect();
    let mut labels = Vec::new();
    let selector = regex::Regex::new(r"fleetgate_[a-z0-9_]+\{([^}]*)\}").unwrap();
    let label = regex::Regex::new(r#"([a-z_]+)\s*(=|!=|=~|!~)\s*""#).unwrap();
    for c in selector.captures_iter(expr) {
        labels.extend(label.captures_iter(&c[1]).map(|l| l[1].to_string()));
    }
    let by = regex::Regex::new(r"by \(([^)]*)\)").unwrap();
    for c in by.captures_iter(expr) {
        labels.extend(c[1].split(',').map(|l| l.trim().to_string()));
    }
    let values =
        regex::Regex::new(r"label_values\(\s*fleetgate_[a-z0-9_]+\s*,\s*([a-z_]+)\s*\)").unwrap();
    for c in values.captures_iter(expr) {
        labels.push(c[1].to_string());
    }
    (metrics, labels)
}

/// Every query of a dashboard: panel targets and query variables.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["expr"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

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
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for (where_, expr) in queries(&dashboard) {
            let (metrics, labels) = query_parts(&expr);
            assert!(
                !metrics.is_empty(),
                "{file} {where_}: no fleetgate metric in {expr:?}"
            );
            for m in &metrics {
                let known = exposed.series.get(m).unwrap_or_else(|| {
                    panic!("{file} {where_}: {m} is not exposed by the hub or the agent ({expr})")
                });
                // Labels are checked where samples show them (a family without samples yet,
                // e.g. no NACK standing, shows none).
                if known.is_empty() {
                    continue;
                }
                for l in labels
                    .iter()
                    .filter(|l| *l != "le" || m.ends_with("_bucket"))
                {
                    assert!(
                        known.contains(l),
                        "{file} {where_}: {m} has no label {l} (it has {known:?}): {expr}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} queries found in {}",
        dir.display()
    );
}
