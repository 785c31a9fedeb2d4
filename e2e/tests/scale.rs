//! The scale benchmark's short form (issue 15: "the scale and chaos tests run in CI in a short
//! form that asserts behaviour, not timing"): many tenants' routes loaded into a real hub and
//! Envoy through raw Sync clients (`fleetgate_e2e::scale`, shared with `bench.rs`
//! `scale_10000_routes_one_change`), then single-route changes, each served, while every other
//! tenant's routes keep answering 200 and Envoy holds exactly the expected configuration.
//! `make test` runs it with 20 tenants x 50 routes; `FLEETGATE_SCALE_TENANTS` and
//! `FLEETGATE_SCALE_ROUTES` change the size.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::ensure;
use fleetgate_e2e::load::{Load, Target};
use fleetgate_e2e::scale;
use fleetgate_e2e::{Echo, Envoy, Hub, TIMEOUT, TestDir, eventually, http};
use futures::StreamExt;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The echo backend's name: every route's body.
const BODY: &str = "scale-echo";

/// The tenants whose routes change; every other tenant is under load meanwhile.
const CHANGED: [usize; 2] = [3, 11];

async fn status(addr: SocketAddr, host: &str, path: &str) -> u16 {
    http::get(addr, host, path, &[]).await.map_or(0, |(s, _)| s)
}

/// Waits until `GET path` on `host` answers `want`.
async fn wait_status(addr: SocketAddr, host: &str, path: &str, want: u16) {
    eventually(TIMEOUT * 2, || async {
        let (s, body) = http::get(addr, host, path, &[]).await?;
        ensure!(s == want, "{host}{path}: {s} {body:?}, want {want}");
        Ok(())
    })
    .await;
}

/// Envoy serves every tenant's routes under exactly one virtual host each, and no other
/// `*.example` name of the scale tenants: `routes[t]` is tenant `t`'s route numbers.
async fn assert_domains(envoy: &Envoy, routes: &[Vec<usize>], what: &str) -> usize {
    let (configs, domains) = envoy.route_domains().await.expect("Envoy config_dump");
    let ours: BTreeMap<&String, &usize> = domains
        .iter()
        .filter(|(d, _)| d.ends_with(".example"))
        .collect();
    let mut want = BTreeMap::new();
    for (t, rs) in routes.iter().enumerate() {
        for r in rs {
            want.insert(scale::host(t, *r), 1usize);
        }
    }
    let got: BTreeMap<String, usize> = ours.iter().map(|(d, n)| ((*d).clone(), **n)).collect();
    if got != want {
        let missing: Vec<&String> = want.keys().filter(|d| !got.contains_key(*d)).collect();
        let extra: Vec<(&String, &usize)> = got
            .iter()
            .filter(|(d, n)| want.get(*d) != Some(n))
            .collect();
        panic!(
            "{what}: Envoy's virtual hosts differ from the routes: missing {missing:?}, unexpected or duplicated {extra:?}"
        );
    }
    configs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tenants_single_route_changes_are_served_and_leave_every_other_route_answering() {
    let tenants = env_usize("FLEETGATE_SCALE_TENANTS", 20).max(CHANGED[1] + 2);
    let per_tenant = env_usize("FLEETGATE_SCALE_ROUTES", 50).max(2);
    let started = Instant::now();
    let dir = TestDir::new("scale").expect("test dir");
    let echo = Echo::start(BODY, scale::echo_ips(1)[0])
        .await
        .expect("echo");
    let echoes = [echo.addr()];
    let hub = Hub::start(&dir, &scale::hub_tenants(tenants))
        .await
        .expect("hub");
    let mut envoy = Envoy::start(&dir, 1, hub.xds_addr()).await.expect("envoy");
    envoy.wait_live(TIMEOUT).await.expect("envoy live");
    let dp = hub.data_plane_addr();
    let (clusters_idle, _) = envoy
        .cluster_and_listener_counts()
        .await
        .expect("Envoy counts");

    // Every tenant's Gateway and routes, one full-state Update per tenant.
    let mut sessions = Vec::new();
    for t in 0..tenants {
        let (client, mut session) = scale::connect(&hub, t).await.expect("Sync stream");
        let objects = scale::full_state(t, per_tenant, &echoes);
        assert!(session.send(scale::update(1, true, objects, vec![])).await);
        scale::expect_ack(&mut session, 1).await;
        sessions.push((client, session, 1u64));
    }
    let mut routes: Vec<Vec<usize>> = vec![(0..per_tenant).collect(); tenants];
    // Every route of every tenant is served, both rules.
    let all: Vec<(usize, usize)> = (0..tenants)
        .flat_map(|t| (0..per_tenant).map(move |r| (t, r)))
        .collect();
    futures::stream::iter(all)
        .map(|(t, r)| async move {
            wait_status(dp, &scale::host(t, r), "/api/r0", 200).await;
            wait_status(dp, &scale::host(t, r), "/api/r1/x", 200).await;
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let loaded = started.elapsed();
    // Each route has 2 backends of its own: 2 clusters a route, on top of Envoy's own.
    let expected_clusters = clusters_idle + 2 * tenants * per_tenant;
    let counts = envoy
        .cluster_and_listener_counts()
        .await
        .expect("Envoy counts");
    assert_eq!(
        counts.0, expected_clusters,
        "Envoy clusters with {tenants} x {per_tenant} routes ({clusters_idle} before any route)"
    );
    let route_configs = assert_domains(&envoy, &routes, "after the load").await;

    // The load: one route of every tenant that does not change, both rules.
    let targets: Vec<Target> = (0..tenants)
        .filter(|t| !CHANGED.contains(t))
        .flat_map(|t| {
            let host = scale::host(t, (t * 7) % per_tenant);
            [
                Target::new(&host, "/api/r0", BODY),
                Target::new(&host, "/api/r1/x", BODY),
            ]
        })
        .collect();
    let load = Load::start(dp, &targets, 4, Duration::from_millis(10));
    load.wait_more(50, TIMEOUT).await;

    // Single-route changes on the CHANGED tenants: route i's paths move from /api to /v<i>.
    let mut changes = 0;
    for i in 0..4usize {
        let t = CHANGED[i % CHANGED.len()];
        let host = scale::host(t, i);
        let new = format!("/v{i}/r0");
        assert_eq!(status(dp, &host, &new).await, 404, "{host}{new} before");
        let (_, session, rev) = &mut sessions[t];
        *rev += 1;
        let route = scale::route(t, i, &format!("/v{i}"), 2 + i as i64, &echoes);
        assert!(
            session
                .send(scale::update(*rev, false, vec![route], vec![]))
                .await
        );
        scale::expect_ack(session, *rev).await;
        wait_status(dp, &host, &new, 200).await;
        wait_status(dp, &host, "/api/r0", 404).await;
        changes += 1;
    }
    // A route added, then deleted: its 2 clusters come and go.
    let t = CHANGED[0];
    let added = per_tenant;
    let host = scale::host(t, added);
    {
        let (_, session, rev) = &mut sessions[t];
        *rev += 1;
        let route = scale::route(t, added, "/api", 1, &echoes);
        assert!(
            session
                .send(scale::update(*rev, false, vec![route], vec![]))
                .await
        );
        scale::expect_ack(session, *rev).await;
    }
    wait_status(dp, &host, "/api/r0", 200).await;
    routes[t].push(added);
    let with_added = envoy
        .cluster_and_listener_counts()
        .await
        .expect("Envoy counts");
    assert_eq!(
        with_added.0,
        expected_clusters + 2,
        "Envoy clusters with one route added"
    );
    assert_domains(&envoy, &routes, "with one route added").await;
    {
        let (_, session, rev) = &mut sessions[t];
        *rev += 1;
        assert!(
            session
                .send(scale::update(
                    *rev,
                    false,
                    vec![],
                    vec![scale::route_ref(added)]
                ))
                .await
        );
        scale::expect_ack(session, *rev).await;
    }
    wait_status(dp, &host, "/api/r0", 404).await;
    routes[t].pop();
    changes += 2;

    load.wait_more(50, TIMEOUT).await;
    let report = load.stop().await;

    // Envoy holds exactly the loaded configuration again.
    eventually(TIMEOUT, || async {
        let now = envoy.cluster_and_listener_counts().await?;
        ensure!(
            now == counts,
            "Envoy (clusters, listeners) {now:?}, {counts:?} before the changes"
        );
        Ok(())
    })
    .await;
    let configs_after = assert_domains(&envoy, &routes, "after the changes").await;
    assert_eq!(
        configs_after, route_configs,
        "Envoy's RouteConfigurations before and after the changes"
    );
    println!(
        "SCALE tenants={tenants} routes={} loaded and served in {:.1}s; {changes} single-route changes; envoy clusters {} (idle {clusters_idle}), listeners {}, route configurations {route_configs}; load on the other {} tenants: {report}; total {:.1}s",
        tenants * per_tenant,
        loaded.as_secs_f64(),
        counts.0,
        counts.1,
        tenants - CHANGED.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(report.tally.sent > 0, "no request was sent");
    assert_eq!(
        report.tally.failed(),
        0,
        "other tenants' routes failed during the changes: {report}"
    );
    drop(sessions);
}
