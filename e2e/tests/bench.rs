//! Benchmarks on the real components, not timed tests: they measure and print, and never fail
//! on a slow machine. Run them with `make bench` (release binaries); the figures go to
//! `docs/benchmarks.md` together with the command.

use std::time::{Duration, Instant};

use anyhow::ensure;
use fleetgate_e2e::{Fleet, FleetTenant, TIMEOUT, eventually};

const TENANT_A: (&str, &str, &str) = ("tenant-a", "*.a.example", "127.0.1.0/24");

fn gateway_yaml() -> &'static str {
    r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: fleetgate
spec:
  controllerName: fleetgate.dev/hub
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
  namespace: default
spec:
  gatewayClassName: fleetgate
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    hostname: "*.a.example"
"#
}

fn route_yaml(name: &str, host: &str) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: [{host}]
  rules:
  - backendRefs:
    - name: echo
      port: 8080
"#
    )
}

async fn setup(fleet: &Fleet) -> fleetgate_e2e::Echo {
    let t: &FleetTenant = fleet.tenant("tenant-a");
    let ip = t.create_node("node-1", 10).await.expect("node");
    let echo = t
        .node_port_backend("echo", ip, "tenant-a-echo")
        .await
        .expect("backend");
    t.cluster.apply(gateway_yaml()).await.expect("gateway");
    echo
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Time from `apply` of a new HTTPRoute in the tenant's API server to the first 200 through
/// Envoy for its hostname, over 20 changes.
#[tokio::test]
#[ignore = "benchmark: run with `make bench`"]
async fn apply_to_first_200() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let _echo = setup(&fleet).await;
    let t = fleet.tenant("tenant-a");
    // Warm-up: the first route also waits for the agent's first sync.
    t.cluster
        .apply(&route_yaml("warmup", "warmup.a.example"))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let (s, _) = fleet.get("warmup.a.example", "/").await?;
        ensure!(s == 200, "status {s}");
        Ok(())
    })
    .await;

    let mut samples = Vec::new();
    for i in 0..20 {
        let host = format!("app-{i}.a.example");
        let start = Instant::now();
        t.cluster
            .apply(&route_yaml(&format!("app-{i}"), &host))
            .await
            .unwrap();
        loop {
            if let Ok((200, _)) = fleet.get(&host, "/").await {
                break;
            }
            assert!(start.elapsed() < TIMEOUT, "route {i} never served");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "BENCH apply_to_first_200: n={} median={:.1}ms p99={:.1}ms min={:.1}ms max={:.1}ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

/// Hub resident memory with 1,000 HTTPRoutes accepted and served.
#[tokio::test]
#[ignore = "benchmark: run with `make bench`"]
async fn hub_rss_with_1000_routes() {
    let mut fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let _echo = setup(&fleet).await;
    let pid = fleet.hub.process().pid().expect("hub running");
    let idle = rss_kib(pid);
    let t = fleet.tenant("tenant-a");
    let start = Instant::now();
    for chunk in (0..1000).collect::<Vec<_>>().chunks(100) {
        let yaml: Vec<String> = chunk
            .iter()
            .map(|i| route_yaml(&format!("r-{i}"), &format!("r-{i}.a.example")))
            .collect();
        t.cluster.apply(&yaml.join("---\n")).await.unwrap();
    }
    let applied = start.elapsed();
    for probe in [0, 499, 999] {
        let host = format!("r-{probe}.a.example");
        eventually(TIMEOUT * 4, || async {
            let (s, _) = fleet.get(&host, "/").await?;
            ensure!(s == 200, "{host}: status {s}");
            Ok(())
        })
        .await;
    }
    let served = start.elapsed();
    // Let allocator caches settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = rss_kib(fleet.hub.process().pid().expect("hub running"));
    println!(
        "BENCH hub_rss_1000_routes: idle={:.1}MiB loaded={:.1}MiB apply_1000={:.1}s all_served={:.1}s",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        applied.as_secs_f64(),
        served.as_secs_f64()
    );
}
