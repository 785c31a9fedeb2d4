//! Benchmarks on the real components, not timed tests: they measure and print, and never fail
//! on a slow machine. Run them with `make bench` (release binaries); the figures go to
//! `docs/benchmarks.md` together with the command.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::ensure;
use fleetgate_e2e::fixtures::{TENANT_A, class_and_http_gateway, simple_http_route};
use fleetgate_e2e::process::rss_kib;
use fleetgate_e2e::scale;
use fleetgate_e2e::{Echo, Envoy, Fleet, FleetTenant, Hub, TIMEOUT, TestDir, eventually, http};

async fn setup(fleet: &Fleet) -> fleetgate_e2e::Echo {
    let t: &FleetTenant = fleet.tenant("tenant-a");
    let ip = t.create_node("node-1", 10).await.expect("node");
    let echo = t
        .node_port_backend("echo", ip, "tenant-a-echo")
        .await
        .expect("backend");
    t.cluster
        .apply(&class_and_http_gateway(Some("*.a.example")))
        .await
        .expect("gateway");
    echo
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
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
        .apply(&simple_http_route("warmup", "warmup.a.example", "echo"))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let (s, _) = fleet.get("warmup.a.example", "/").await?;
        ensure!(s == 200, "status {s}");
        Ok(())
    })
    .await;

    let samples = change_latency(t, fleet.hub.data_plane_addr(), "app", 20).await;
    println!(
        "BENCH apply_to_first_200: n={} median={:.1}ms p99={:.1}ms min={:.1}ms max={:.1}ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

/// Apply of a new HTTPRoute to the first 200 through the Envoy at `addr`, `n` times: the
/// sorted samples.
async fn change_latency(
    t: &FleetTenant,
    addr: SocketAddr,
    prefix: &str,
    n: usize,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    for i in 0..n {
        let host = format!("{prefix}-{i}.a.example");
        let start = Instant::now();
        t.cluster
            .apply(&simple_http_route(&format!("{prefix}-{i}"), &host, "echo"))
            .await
            .unwrap();
        loop {
            if let Ok((200, _)) = http::get(addr, &host, "/", &[]).await {
                break;
            }
            assert!(start.elapsed() < TIMEOUT, "{host} never served at {addr}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    samples
}

fn summary(samples: &[Duration]) -> String {
    format!(
        "n={} median={:.1}ms p99={:.1}ms",
        samples.len(),
        percentile(samples, 0.5).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3,
    )
}

/// The same 20 changes, side by side in one run: one hub on its embedded file, then three hubs
/// sharing a store on etcd with the agent on hub 1, measured at hub 1's Envoy and at the Envoy
/// of hub 2 (the change reaches it through etcd's watch).
#[tokio::test]
#[ignore = "benchmark: run with `make bench`"]
async fn change_latency_one_hub_vs_three_hubs_on_etcd() {
    const N: usize = 20;
    let one = {
        let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
        let _echo = setup(&fleet).await;
        let t = fleet.tenant("tenant-a");
        change_latency(t, fleet.hub.data_plane_addr(), "warm", 1).await;
        change_latency(t, fleet.hub.data_plane_addr(), "one", N).await
    };
    let extra = [(
        "storeEtcd".to_string(),
        serde_json::Value::from(fleetgate_e2e::fleet::ON_FLEET_ETCD),
    )];
    let fleet = Fleet::start_with(&[TENANT_A], extra.into_iter().collect())
        .await
        .expect("fleet on etcd");
    let hub2 = fleet.hub.start_replica(2).await.expect("replica 2");
    let _hub3 = fleet.hub.start_replica(3).await.expect("replica 3");
    let admin2 = fleetgate_e2e::ports::free_addr().expect("free address");
    let mut envoy2 = Envoy::start_with_admin(&fleet.dir, 2, hub2.xds_addr(), admin2)
        .await
        .expect("Envoy on replica 2");
    envoy2.wait_live(TIMEOUT).await.expect("Envoy 2 live");
    let _echo = setup(&fleet).await;
    let t = fleet.tenant("tenant-a");
    change_latency(t, hub2.data_plane_addr(), "warm", 1).await;
    let same = change_latency(t, fleet.hub.data_plane_addr(), "same", N).await;
    let other = change_latency(t, hub2.data_plane_addr(), "other", N).await;
    println!(
        "BENCH change_latency_one_hub_file: {}\nBENCH change_latency_three_hubs_etcd_same_hub: {}\nBENCH change_latency_three_hubs_etcd_other_hub: {}",
        summary(&one),
        summary(&same),
        summary(&other)
    );
    drop(envoy2);
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
            .map(|i| simple_http_route(&format!("r-{i}"), &format!("r-{i}.a.example"), "echo"))
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

// ---- Scale (issues 3 and 15): tenants of 100 HTTPRoutes each through raw Sync clients ---------

const SCALE_ROUTES: usize = 100;

async fn served(addr: SocketAddr, host: &str, path: &str) -> bool {
    matches!(http::get(addr, host, path, &[]).await, Ok((200, _)))
}

/// Envoy's statistics of the RDS subscription of the RouteConfiguration `rc` (admin `/stats`),
/// by the last part of their name (`update_success`, `update_time`, `update_duration`, ...).
async fn rds_stats(envoy: &Envoy, rc: &str) -> std::collections::BTreeMap<String, String> {
    // `filter` is a regular expression: `\.rds\.<rc>\.`, percent-encoded.
    let infix = format!(".rds.{rc}.");
    let regex: String = infix
        .chars()
        .flat_map(|c| if c == '.' { vec!['\\', c] } else { vec![c] })
        .collect();
    let encoded: String = regex
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (_, body) = envoy
        .admin_get(&format!("/stats?filter={encoded}"))
        .await
        .unwrap_or_default();
    body.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            let (_, last) = name.split_once(&infix)?;
            Some((last.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Envoy's RDS and SRDS update counts (every RouteConfiguration), to see when they stop
/// changing.
async fn all_rds_stats(envoy: &Envoy) -> String {
    envoy
        .admin_get("/stats?filter=rds%5C..*update_success")
        .await
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// The RouteConfiguration serving `host` on port 80: its own when the hub scopes the port's
/// routes per hostname (`hub/xds/src/scoped.rs`), else the port's one.
async fn route_configuration_of(envoy: &Envoy, host: &str) -> String {
    let scoped = format!("port/80/scoped/{host}");
    if rds_stats(envoy, &scoped).await.is_empty() {
        "port/80".to_string()
    } else {
        scoped
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 10,000 HTTPRoutes of 100 tenants (one cluster each, a raw Sync client per cluster) on a real
/// Envoy, each rule to a Service of its own (20,000 upstream clusters); then 50 single-route
/// changes through one client, each timed from sending the Update to the first 200 for the
/// changed path. Also prints hub and Envoy RSS with everything loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn scale_10000_routes_one_change() {
    scale_one_change(100, None, 50).await;
}

/// [`scale_10000_routes_one_change`] with 1,000 tenants (100,000 HTTPRoutes), the routes of a
/// tenant sharing 20 Services (20,000 upstream clusters in all); 20 changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn scale_100000_routes_one_change() {
    scale_one_change(1000, Some(10), 20).await;
}

/// `tenants` tenants of [`SCALE_ROUTES`] routes each (see [`scale::route_sharing`] for
/// `services`), then `changes` single-route changes of tenant 42's route 7.
async fn scale_one_change(tenants: usize, services: Option<usize>, changes: u64) {
    let dir = TestDir::new("bench-scale").expect("test dir");
    let mut echoes = Vec::new();
    for (i, ip) in scale::echo_ips(3).into_iter().enumerate() {
        echoes.push(Echo::start(&format!("echo-{i}"), ip).await.expect("echo"));
    }
    let echo_addrs: Vec<SocketAddr> = echoes.iter().map(Echo::addr).collect();
    let hub_tenants = scale::hub_tenants(tenants);
    let mut hub = Hub::start(&dir, &hub_tenants).await.expect("hub");
    let mut envoy = Envoy::start(&dir, 1, hub.xds_addr()).await.expect("envoy");
    envoy.wait_live(TIMEOUT).await.expect("envoy live");
    let dp = hub.data_plane_addr();
    let hub_idle = rss_kib(hub.process().pid().expect("hub running"));

    // Load: one full-state Update of a Gateway and 100 routes per tenant.
    let started = Instant::now();
    let mut sessions = Vec::new();
    for t in 0..tenants {
        let (client, mut session) = scale::connect(&hub, t).await.expect("Sync stream");
        let objects = scale::full_state_sharing(t, SCALE_ROUTES, &echo_addrs, services);
        assert!(session.send(scale::update(1, true, objects, vec![])).await);
        scale::expect_ack(&mut session, 1).await;
        sessions.push((client, session));
    }
    let acked = started.elapsed();
    for (t, r) in [(0, 0), (tenants / 2, 50), (tenants - 1, SCALE_ROUTES - 1)] {
        let host = format!("r{r}.t{t}.example");
        eventually(TIMEOUT * 40, || async {
            let (s, _) = http::get(dp, &host, "/api/r1", &[]).await?;
            ensure!(s == 200, "{host}: status {s}");
            Ok(())
        })
        .await;
    }
    let all_served = started.elapsed();
    // Envoy may still be applying the configurations of the last loads (each one a 5 MiB
    // RouteConfiguration): the changes start once its RDS statistics have stayed the same for
    // 3 s and no cluster is warming, so a change is not measured waiting behind them.
    let mut last = all_rds_stats(&envoy).await;
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(3) && started.elapsed() < TIMEOUT * 60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = all_rds_stats(&envoy).await;
        let (_, warming) = envoy
            .admin_get("/stats?filter=cluster_manager.warming_clusters")
            .await
            .unwrap_or_default();
        if now != last || !warming.trim().ends_with(": 0") {
            stable_since = Instant::now();
            last = now;
        }
    }
    let settled = started.elapsed();
    println!(
        "BENCH scale_load: tenants={tenants} routes={} all_acked={:.1}s all_served={:.1}s envoy_settled={:.1}s",
        tenants * SCALE_ROUTES,
        acked.as_secs_f64(),
        all_served.as_secs_f64(),
        settled.as_secs_f64() - 3.0,
    );

    // 20 single-route changes through tenant 42's client: the route's paths move to /v<i>.
    let (t, r) = (42, 7);
    let host = format!("r{r}.t{t}.example");
    let rc = route_configuration_of(&envoy, &host).await;
    println!("BENCH scale_route_configuration: {host} is served by RouteConfiguration {rc}");
    let mut samples = Vec::new();
    // Per change: from sending the Update until Envoy had applied the new RouteConfiguration
    // (its RDS `update_time` gauge, ms since the epoch, set when an update is applied).
    let mut applied = Vec::new();
    // Counters and histograms from here on count the changes only.
    let reset = http::send(
        envoy.admin_addr(),
        "POST",
        "127.0.0.1",
        "/reset_counters",
        &[],
    )
    .await
    .map(|r| r.status);
    assert!(matches!(reset, Ok(200)), "envoy /reset_counters: {reset:?}");
    let session = &mut sessions[t].1;
    for i in 0..changes {
        let prefix = format!("/v{i}");
        let path = format!("{prefix}/r0");
        assert!(
            !served(dp, &host, &path).await,
            "{path} served before the change"
        );
        let route = scale::route_sharing(t, r, &prefix, 2 + i as i64, &echo_addrs, services);
        let sent_ms = unix_ms();
        let start = Instant::now();
        assert!(
            session
                .send(scale::update(2 + i, false, vec![route], vec![]))
                .await
        );
        loop {
            if served(dp, &host, &path).await {
                break;
            }
            assert!(start.elapsed() < TIMEOUT * 4, "change {i} never served");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(start.elapsed());
        if let Some(at) = rds_stats(&envoy, &rc)
            .await
            .get("update_time")
            .and_then(|v| v.parse::<u64>().ok())
        {
            applied.push(Duration::from_millis(at.saturating_sub(sent_ms)));
        }
        scale::expect_ack(session, 2 + i).await;
    }
    samples.sort();
    println!(
        "BENCH scale_one_change: routes={} n={} median={:.1}ms p99={:.1}ms min={:.1}ms max={:.1}ms",
        tenants * SCALE_ROUTES,
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
    applied.sort();
    if !applied.is_empty() {
        println!(
            "BENCH scale_one_change_envoy_applied: n={} median={}ms p99={}ms (send -> Envoy's RDS update_time)",
            applied.len(),
            percentile(&applied, 0.5).as_millis(),
            percentile(&applied, 0.99).as_millis(),
        );
    }
    let rds = rds_stats(&envoy, &rc).await;
    println!(
        "BENCH scale_rds_envoy: update_success={} update_duration(ms, Envoy applying RDS, since the reset)={}",
        rds.get("update_success").map_or("?", String::as_str),
        rds.get("update_duration").map_or("?", String::as_str),
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let hub_rss = rss_kib(hub.process().pid().expect("hub running"));
    let envoy_rss = rss_kib(envoy.process().pid().expect("envoy running"));
    println!(
        "BENCH scale_rss: routes={} hub_idle={:.1}MiB hub_loaded={:.1}MiB envoy_loaded={:.1}MiB",
        tenants * SCALE_ROUTES,
        hub_idle as f64 / 1024.0,
        hub_rss as f64 / 1024.0,
        envoy_rss as f64 / 1024.0
    );
    drop(sessions);
}
