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

/// The RouteConfiguration serving `host` on port 80: the table its scope names when the hub
/// scopes the port's routes (`hub/xds/src/scoped.rs`), else the port's one.
async fn route_configuration_of(envoy: &Envoy, host: &str) -> String {
    let scope = format!("port/80/scoped/{host}");
    let (_, dump) = envoy
        .admin_get("/config_dump?resource=dynamic_scoped_route_configs")
        .await
        .unwrap_or_default();
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap_or_default();
    fn table_of(v: &serde_json::Value, scope: &str) -> Option<String> {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("name").and_then(|n| n.as_str()) == Some(scope) {
                    return o
                        .get("route_configuration_name")
                        .and_then(|n| n.as_str())
                        .map(str::to_string);
                }
                o.values().find_map(|v| table_of(v, scope))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|v| table_of(v, scope)),
            _ => None,
        }
    }
    table_of(&dump, &scope).unwrap_or_else(|| "port/80".to_string())
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
    // An admin port, for the hub's live heap (`fleetgate_hub_heap_bytes`).
    let admin = fleetgate_e2e::ports::free_addr().expect("a free port");
    let admin = [("adminListen".to_string(), admin.to_string().into())];
    let mut hub = Hub::start_with(&dir, &hub_tenants, admin.into_iter().collect())
        .await
        .expect("hub");
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
    let hub_heap = hub.heap_bytes().await.expect("the hub's live heap");
    println!(
        "BENCH scale_rss: routes={} hub_idle={:.1}MiB hub_loaded={:.1}MiB (live heap {:.1}MiB) envoy_loaded={:.1}MiB",
        tenants * SCALE_ROUTES,
        hub_idle as f64 / 1024.0,
        hub_rss as f64 / 1024.0,
        hub_heap as f64 / 1048576.0,
        envoy_rss as f64 / 1024.0
    );
    // Envoy's allocator (tcmalloc) on what its RSS holds: in use, and freed but kept.
    let (_, memory) = envoy.admin_get("/memory").await.unwrap_or_default();
    let memory: serde_json::Value = serde_json::from_str(&memory).unwrap_or_default();
    let mib = |field: &str| {
        memory[field]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .map_or_else(|| "?".to_string(), |b| format!("{:.1}MiB", b / 1048576.0))
    };
    println!(
        "BENCH scale_envoy_memory: allocated={} heap_size={} pageheap_free={} pageheap_unmapped={}",
        mib("allocated"),
        mib("heap_size"),
        mib("pageheap_free"),
        mib("pageheap_unmapped"),
    );
    drop(sessions);
}

// ---- Data-plane gap (issue 15): Envoy as the hub programs it vs a hand-written config --------

/// Connections of the closed-loop load (issue 15's figure was taken with wrk at 32).
const GAP_CONNECTIONS: usize = 32;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One thing the hub's configuration has that the hand-written one lacks, added to the
/// hand-written configuration alone to measure what it costs (`FLEETGATE_GAP_VARIANTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// `envoy.filters.http.local_ratelimit` before the router, no token bucket (as the hub
    /// put it in every connection manager before issue 15).
    RateLimitFilter,
    /// `envoy.filters.http.cors` before the router, no policy.
    CorsFilter,
    /// Both filters, `disabled: true` (what the hub does now when no route asks for them).
    DisabledFilters,
    /// `hub/xds/src/hardening.rs`: connection manager limits, path normalisation, remote
    /// address, buffer limits.
    Hardening,
    /// The scope key's early header mutation (`x-fleetgate-port`) and its removal.
    PortHeader,
    /// WebSocket in `upgrade_configs`.
    Upgrade,
    /// The bootstrap's overload manager (heap and downstream-connection monitors).
    Overload,
    /// The bootstrap's stats: the tenant tag and every stat streamed to the hub each second.
    StatsSink,
}

impl Extra {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rate_limit" => Self::RateLimitFilter,
            "cors" => Self::CorsFilter,
            "disabled_filters" => Self::DisabledFilters,
            "hardening" => Self::Hardening,
            "port_header" => Self::PortHeader,
            "upgrade" => Self::Upgrade,
            "overload" => Self::Overload,
            "stats_sink" => Self::StatsSink,
            _ => return None,
        })
    }
}

/// A hand-written minimal static Envoy bootstrap: one listener on `listen`, a connection
/// manager with the router filter only, one route (`/` on `host`) to one static cluster
/// (`upstream`), with `extras` added (the stats sink streams to the hub at `hub_xds`).
fn hand_written_bootstrap(
    admin: SocketAddr,
    listen: SocketAddr,
    host: &str,
    upstream: SocketAddr,
    extras: &[Extra],
    hub_xds: SocketAddr,
) -> String {
    let has = |e: Extra| extras.contains(&e);
    let (mut stats, mut stats_cluster) = (String::new(), String::new());
    if has(Extra::StatsSink) {
        stats = fleetgate_e2e::envoy::stats_settings("hub");
        stats_cluster = format!(
            r#"  - name: hub
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: hub
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}
"#,
            hub_xds.ip(),
            hub_xds.port()
        );
    }
    let mut overload = String::new();
    if has(Extra::Overload) {
        overload = fleetgate_e2e::envoy::OVERLOAD_MANAGER.to_string();
    }
    let buffer = if has(Extra::Hardening) {
        "    per_connection_buffer_limit_bytes: 32768\n"
    } else {
        ""
    };
    let mut hcm = String::new();
    if has(Extra::Hardening) {
        hcm.push_str(
            r#"          use_remote_address: true
          max_request_headers_kb: 60
          common_http_protocol_options: { idle_timeout: 3600s, max_headers_count: 100, headers_with_underscores_action: REJECT_REQUEST }
          http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 }
          stream_idle_timeout: 300s
          request_headers_timeout: 10s
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT
"#,
        );
    }
    if has(Extra::Upgrade) {
        hcm.push_str("          upgrade_configs: [{ upgrade_type: websocket }]\n");
    }
    if has(Extra::PortHeader) {
        hcm.push_str(
            r#"          early_header_mutation_extensions:
          - name: envoy.http.early_header_mutation.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation
              mutations:
              - append: { header: { key: x-fleetgate-port, value: "80" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
"#,
        );
    }
    let remove = if has(Extra::PortHeader) {
        "            request_headers_to_remove: [x-fleetgate-port]\n"
    } else {
        ""
    };
    let mut filters = String::new();
    let disabled = has(Extra::DisabledFilters);
    if has(Extra::RateLimitFilter) || disabled {
        filters.push_str(&format!(
            r#"          - name: envoy.filters.http.local_ratelimit
            disabled: {disabled}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: tenant_rate_limit
"#
        ));
    }
    if has(Extra::CorsFilter) || disabled {
        filters.push_str(&format!(
            r#"          - name: envoy.filters.http.cors
            disabled: {disabled}
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors }}
"#
        ));
    }
    format!(
        r#"node: {{ id: hand-written, cluster: bench }}
admin:
  address: {{ socket_address: {{ address: {admin_ip}, port_value: {admin_port} }} }}
{overload}{stats}static_resources:
  listeners:
  - name: plain
    address: {{ socket_address: {{ address: {listen_ip}, port_value: {listen_port} }} }}
{buffer}    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: plain
{hcm}          route_config:
            name: plain
{remove}            virtual_hosts:
            - name: app
              domains: ["{host}"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: echo }}
          http_filters:
{filters}          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 2s
{buffer}    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: {up_ip}, port_value: {up_port} }} }} }}
{stats_cluster}"#,
        admin_ip = admin.ip(),
        admin_port = admin.port(),
        listen_ip = listen.ip(),
        listen_port = listen.port(),
        up_ip = upstream.ip(),
        up_port = upstream.port(),
    )
}

/// One Envoy under load in the comparison.
struct Contender {
    name: String,
    addr: SocketAddr,
    /// The Envoy process, whose CPU time is read around each turn.
    pid: u32,
    runs: Vec<fleetgate_e2e::closed_loop::Run>,
    /// CPU time the Envoy process used during each turn (all its threads), nanoseconds.
    cpu_ns: Vec<u64>,
    _envoy: Option<Envoy>,
}

/// CPU time used so far by every thread of process `pid` (`/proc/<pid>/task/*/schedstat`,
/// nanoseconds): on a machine shared with other work this tells what a configuration costs
/// Envoy per request even when the throughput is set by the scheduler.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn run_summary(r: &fleetgate_e2e::closed_loop::Run) -> String {
    format!(
        "rps={:.0} p50={:.3}ms p99={:.3}ms errors={}",
        r.throughput(),
        r.quantile_ms(0.5),
        r.quantile_ms(0.99),
        r.errors
    )
}

/// Loads every contender in turn for `rounds` rounds of `round`, the order reversed every
/// other round so that neither side always runs first.
async fn load_in_turns(
    contenders: &mut [Contender],
    host: &str,
    rounds: usize,
    round: Duration,
    label: &str,
) {
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let c = &mut contenders[i];
            let cpu_before = cpu_ns(c.pid);
            let run = fleetgate_e2e::closed_loop::run(c.addr, host, "/", GAP_CONNECTIONS, round)
                .await
                .expect("load run");
            c.cpu_ns.push(cpu_ns(c.pid).saturating_sub(cpu_before));
            println!(
                "gap turn: {label}round={r} {} {}",
                c.name,
                run_summary(&run)
            );
            c.runs.push(run);
        }
    }
}

/// Prints each contender against the hand-written one (`contenders[1]`): all rounds merged,
/// and the median of the per-round throughput ratios.
fn report_gap(contenders: &[Contender], rounds: usize, secs: f64) {
    let merged: Vec<(String, fleetgate_e2e::closed_loop::Run)> = contenders
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                fleetgate_e2e::closed_loop::Run::merge(&c.runs),
            )
        })
        .collect();
    let base = merged[1].1.clone();
    let cpu_per_request = |c: &Contender| {
        let ok: u64 = c.runs.iter().map(|r| r.ok).sum();
        c.cpu_ns.iter().sum::<u64>() as f64 / ok.max(1) as f64 / 1e3
    };
    let base_cpu = cpu_per_request(&contenders[1]);
    for ((name, run), c) in merged.iter().zip(contenders) {
        let cpu = cpu_per_request(c);
        let ratio = run.throughput() / base.throughput();
        // The median of the per-round throughput ratios (against the same round's hand-written).
        let mut per_round: Vec<f64> = contenders
            .iter()
            .find(|c| &c.name == name)
            .map(|c| {
                c.runs
                    .iter()
                    .zip(&contenders[1].runs)
                    .map(|(a, b)| a.throughput() / b.throughput())
                    .collect()
            })
            .unwrap_or_default();
        per_round.sort_by(f64::total_cmp);
        println!(
            "BENCH gap_{name}: {} envoy_cpu={cpu:.1}us/request cpu_ratio={:.3} median_round_ratio={:.3} throughput_ratio={ratio:.3} p50_diff={:+.3}ms p99_diff={:+.3}ms (vs hand_written; {rounds} rounds x {secs}s, {GAP_CONNECTIONS} connections)",
            run_summary(run),
            cpu / base_cpu,
            per_round[per_round.len() / 2],
            run.quantile_ms(0.5) - base.quantile_ms(0.5),
            run.quantile_ms(0.99) - base.quantile_ms(0.99),
        );
    }
}

/// Issue 15: the Envoy the hub programs for one tenant route (HTTPRoute to an echo backend) and
/// a second Envoy from a hand-written minimal static bootstrap (router filter only, one route,
/// one static cluster to the same echo), both `--concurrency 1` with the same command line,
/// loaded in turn by the same closed-loop generator (32 keep-alive HTTP/1.1 connections),
/// several alternating rounds. `FLEETGATE_GAP_VARIANTS` (comma-separated `rate_limit`, `cors`,
/// `disabled_filters`, `hardening`, `port_header`, `upgrade`, `overload`, `stats_sink`, or
/// `all` of them but `disabled_filters`) adds one more hand-written Envoy per variant with that
/// one thing added, to measure what it costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn envoy_as_programmed_vs_hand_written() {
    // Many short turns rather than a few long ones: on a shared two-core machine the other
    // load drifts, and short alternating turns see about the same machine.
    let rounds: usize = env_or("FLEETGATE_GAP_ROUNDS", 20);
    let secs: f64 = env_or("FLEETGATE_GAP_ROUND_SECS", 1.5);
    let round = Duration::from_secs_f64(secs);
    let variants: Vec<(String, Vec<Extra>)> = std::env::var("FLEETGATE_GAP_VARIANTS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = s.trim();
            let extras = if s == "all" {
                // Everything the hub's configuration has that the hand-written one lacks,
                // with the filters as the hub had them before issue 15 (always run).
                vec![
                    Extra::RateLimitFilter,
                    Extra::CorsFilter,
                    Extra::Hardening,
                    Extra::PortHeader,
                    Extra::Upgrade,
                    Extra::Overload,
                    Extra::StatsSink,
                ]
            } else {
                vec![Extra::parse(s).unwrap_or_else(|| {
                    panic!(
                        "FLEETGATE_GAP_VARIANTS: unknown variant {s:?}; use rate_limit, cors, \
                         disabled_filters, hardening, port_header, upgrade, overload, \
                         stats_sink or all"
                    )
                })]
            };
            (s.to_string(), extras)
        })
        .collect();

    let mut fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let echo = setup(&fleet).await;
    let host = "app.a.example";
    let programmed_pid = fleet.envoy.process().pid().expect("envoy running");
    let t = fleet.tenant("tenant-a");
    t.cluster
        .apply(&simple_http_route("app", host, "echo"))
        .await
        .expect("route");
    eventually(TIMEOUT, || async {
        let (s, _) = fleet.get(host, "/").await?;
        ensure!(s == 200, "status {s}");
        Ok(())
    })
    .await;
    // What the hub programmed, for the comparison in docs/benchmarks.md.
    let dump = fleet.envoy.config_dump().await.expect("config_dump");
    let dump_path =
        fleetgate_e2e::components::target_dir().join("bench-programmed-config_dump.json");
    std::fs::write(&dump_path, dump).expect("writing the config dump");

    let mut contenders = vec![Contender {
        name: "programmed".into(),
        addr: fleet.data_plane(),
        pid: programmed_pid,
        runs: vec![],
        cpu_ns: vec![],
        _envoy: None,
    }];
    let mut hand_written = vec![("hand_written".to_string(), vec![])];
    hand_written.extend(
        variants
            .iter()
            .map(|(n, e)| (format!("hand_written+{n}"), e.clone())),
    );
    for (i, (name, extras)) in hand_written.into_iter().enumerate() {
        let admin = fleetgate_e2e::ports::free_addr().expect("free address");
        let listen = fleetgate_e2e::ports::free_addr().expect("free address");
        let yaml = hand_written_bootstrap(
            admin,
            listen,
            host,
            echo.addr(),
            &extras,
            fleet.hub.xds_addr(),
        );
        let mut envoy =
            Envoy::start_from_bootstrap(&fleet.dir, &format!("hand-written-{i}"), yaml, admin)
                .await
                .expect("hand-written Envoy");
        envoy
            .wait_live(TIMEOUT)
            .await
            .expect("hand-written Envoy live");
        eventually(TIMEOUT, || async {
            let (s, _) = http::get(listen, host, "/", &[]).await?;
            ensure!(s == 200, "status {s}");
            Ok(())
        })
        .await;
        contenders.push(Contender {
            name,
            addr: listen,
            pid: envoy.process().pid().expect("envoy running"),
            runs: vec![],
            cpu_ns: vec![],
            _envoy: Some(envoy),
        });
    }

    // Warm-up (connections, Envoy's and the allocator's first allocations), not counted.
    for c in &contenders {
        fleetgate_e2e::closed_loop::run(c.addr, host, "/", GAP_CONNECTIONS, Duration::from_secs(1))
            .await
            .expect("warm-up");
    }
    let load_before = load_average();
    load_in_turns(&mut contenders, host, rounds, round, "").await;
    report_gap(&contenders, rounds, secs);
    if std::env::var("FLEETGATE_GAP_UNSCOPED").is_ok_and(|v| v == "1") {
        // The same route on a port that is not scoped (`hub/xds/src/scoped.rs`): a wildcard
        // hostname on the port makes the hub serve it from one RouteConfiguration again.
        t.cluster
            .apply(&simple_http_route("wild", "*.w.a.example", "echo"))
            .await
            .expect("wildcard route");
        eventually(TIMEOUT, || async {
            let (s, _) = fleet.get("x.w.a.example", "/").await?;
            ensure!(s == 200, "status {s}");
            Ok(())
        })
        .await;
        contenders.truncate(2);
        for c in &mut contenders {
            c.runs.clear();
            c.cpu_ns.clear();
        }
        contenders[0].name = "programmed_unscoped".into();
        load_in_turns(&mut contenders, host, rounds, round, "unscoped ").await;
        report_gap(&contenders, rounds, secs);
    }
    let load_after = load_average();
    println!(
        "BENCH gap_load_average: before={load_before} after={load_after} (config dump: {})",
        dump_path.display()
    );
}
