//! Compile benchmark (issue 3): 100 tenants x 100 HTTPRoutes through `compile::compile` and
//! `xds::resources::build`, then one changed route recompiled, then every endpoint judged by the
//! endpoint rule of issue 8. Prints figures, asserts nothing about time. Run with
//! `cargo run --release -p fleetgate-hub --example compile_bench`.
//!
//! Where it sits: outside the data path; it drives steps 7 (compile) and 8 (publish) of the hub
//! with a synthetic fleet intent shaped like a real one: per HTTPRoute one hostname and 2 rules,
//! each with 2 matches and 1 backend of 3 endpoints (2 backends per route); one Gateway per
//! tenant. The e2e benchmark (`e2e/tests/bench.rs`) sends the same shape.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fleetgate_hub::admit::{Reserved, endpoint};
use fleetgate_hub::compile;
use fleetgate_hub::config::{Cluster, DataPlane, DataPlaneListener, DataPlaneProtocol};
use fleetgate_hub::model::{
    AllowedRoutes, AppProtocol, Backend, ClusterIntent, ClusterKey, FleetIntent, Gateway,
    HeaderModifier, HttpRoute, HttpRouteMatch, HttpRouteRule, Listener, Meta, ParentRef, PathMatch,
    Protocol, Timeouts, ValueMatch, thin_vec,
};
use fleetgate_hub::xds::resources;
use prost::Message;

/// The hub binary's allocator (`hub/src/main.rs`), so the figures are the hub's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TENANTS: usize = 100;
const ROUTES: usize = 100;
const RUNS: usize = 5;

fn meta(name: &str) -> Meta {
    Meta {
        namespace: "default".into(),
        name: name.into(),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

fn backend(t: usize, r: usize, b: usize) -> Backend {
    let endpoints = (0..3)
        .map(|e| SocketAddr::from(([10, t as u8, (r % 250) as u8, (b * 3 + e) as u8], 8080)))
        .collect();
    Backend {
        namespace: "default".into(),
        name: format!("svc-{r}-{b}"),
        port: 8080,
        weight: 1,
        problem: None,
        endpoints,
        app_protocol: AppProtocol::Http1,
        request_headers: HeaderModifier::default(),
        response_headers: HeaderModifier::default(),
        kind: Default::default(),
    }
}

fn route(t: usize, r: usize, prefix: &str) -> HttpRoute {
    let rules = (0..2)
        .map(|ri| HttpRouteRule {
            name: None,
            matches: thin_vec![
                HttpRouteMatch {
                    path: PathMatch::Prefix(format!("{prefix}/r{ri}")),
                    headers: Default::default(),
                    query_params: Default::default(),
                    method: None,
                },
                HttpRouteMatch {
                    path: PathMatch::Exact(format!("{prefix}/r{ri}/exact")),
                    headers: thin_vec![("x-env".into(), ValueMatch::Exact("prod".into()))],
                    query_params: Default::default(),
                    method: Some("GET".into()),
                },
            ],
            filters: Default::default(),
            backends: thin_vec![backend(t, r, ri)],
            timeouts: Timeouts::default(),
        })
        .collect();
    HttpRoute {
        meta: meta(&format!("route-{r}")),
        parent_refs: vec![ParentRef {
            namespace: "default".into(),
            name: "web".into(),
            section_name: None,
            port: None,
            kind: Default::default(),
        }],
        hostnames: vec![format!("r{r}.t{t}.example")],
        rules,
    }
}

fn cluster_intent(t: usize) -> ClusterIntent {
    let gateway = Gateway {
        meta: meta("web"),
        class_name: "fleetgate".into(),
        allowed_listeners: Default::default(),
        listeners: vec![Listener {
            name: "http".into(),
            protocol: Some(Protocol::Http),
            protocol_name: "HTTP".into(),
            port: 80,
            hostname: Some(format!("*.t{t}.example")),
            allowed_routes: AllowedRoutes::Same,
            tls: None,
            allowed_kinds: Vec::new(),
        }],
    };
    ClusterIntent {
        gateways: [(("default".into(), "web".into()), gateway)].into(),
        http_routes: (0..ROUTES)
            .map(|r| {
                (
                    ("default".into(), format!("route-{r}")),
                    route(t, r, "/api"),
                )
            })
            .collect(),
        tls_routes: BTreeMap::new(),
        ..Default::default()
    }
}

fn key(t: usize) -> ClusterKey {
    ClusterKey {
        tenant: format!("tenant-{t}"),
        cluster: "c1".into(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let intent: FleetIntent = (0..TENANTS)
        .map(|t| (key(t), std::sync::Arc::new(cluster_intent(t))))
        .collect();
    let dp = DataPlane {
        address: [127, 0, 0, 1].into(),
        ai_gateways: Vec::new(),
        listeners: vec![DataPlaneListener {
            port: 80,
            bind: "127.0.0.1:18080".parse().expect("literal address"),
            protocol: DataPlaneProtocol::Http,
        }],
    };

    let (mut compile_t, mut build_t, mut clone_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let copy = intent.clone();
        clone_t.push(started.elapsed());
        drop(copy);
        let started = Instant::now();
        let compiled = compile::compile(&intent, &dp);
        compile_t.push(started.elapsed());
        let started = Instant::now();
        let res = resources::build(&compiled.snapshot);
        build_t.push(started.elapsed());
        last = Some((compiled, res));
    }
    let (compiled, res) = last.expect("RUNS > 0");
    println!(
        "BENCH compile_full: tenants={TENANTS} routes={} compile={} xds_build={} fleet_intent_clone={} (median of {RUNS})",
        TENANTS * ROUTES,
        ms(median(compile_t)),
        ms(median(build_t)),
        ms(median(clone_t)),
    );
    let mut total = 0;
    for (type_url, list) in &res.by_type {
        let bytes: usize = list.iter().map(|r| r.any.encoded_len()).sum();
        total += bytes;
        println!(
            "BENCH xds_size: type={} resources={} bytes={bytes} ({:.2} MiB)",
            type_url.rsplit('.').next().unwrap_or(type_url),
            list.len(),
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "BENCH xds_size: total bytes={total} ({:.2} MiB)",
        total as f64 / (1024.0 * 1024.0)
    );
    let statuses: usize = compiled.statuses.values().map(|l| l.len()).sum();
    println!("BENCH statuses: objects={statuses}");

    // One route changes (its path prefix), as a tenant editing one HTTPRoute would. The ADS
    // stream keeps a resource cache warm from the previous snapshot; the compile loop keeps its
    // memo warm.
    let mut cache = resources::ResourceCache::default();
    resources::build_cached(&compiled.snapshot, &mut cache);
    // As `Fleet` numbers each cluster's intent (it changes the number of tenant 42 below).
    let mut revisions: BTreeMap<ClusterKey, u64> = intent.keys().map(|k| (k.clone(), 0)).collect();
    let mut memo = compile::Memo::default();
    let mut prev = memo.compile_revised(&intent, &revisions, &dp);
    let mut t = BTreeMap::<&str, Vec<Duration>>::new();
    let mut time = |name: &'static str, d: Duration| t.entry(name).or_default().push(d);
    let mut changed = intent.clone();
    for i in 0..RUNS {
        let ci = std::sync::Arc::make_mut(changed.get_mut(&key(42)).expect("tenant 42 exists"));
        ci.http_routes.insert(
            ("default".into(), "route-7".into()),
            route(42, 7, &format!("/v{i}")),
        );
        // What the hub does per change: the compile loop's memo, the comparison with the
        // snapshot it last published, the ADS stream's cached build and the versions.
        *revisions.get_mut(&key(42)).expect("tenant 42 exists") += 1;
        let started = Instant::now();
        let incremental = memo.compile_revised(&changed, &revisions, &dp);
        time("hub_recompile_memo", started.elapsed());
        assert_eq!(memo.last_built(), 1, "one cluster recompiled");
        let started = Instant::now();
        let same_snapshot = incremental.snapshot == prev.snapshot;
        let same_statuses = incremental.statuses == prev.statuses;
        time("hub_compare_with_previous", started.elapsed());
        // The route's generation stays 1 here, so its status does not change.
        assert!(!same_snapshot && same_statuses);
        let started = Instant::now();
        let res3 = resources::build_cached(&incremental.snapshot, &mut cache);
        time("hub_xds_build_cached", started.elapsed());
        let started = Instant::now();
        let versions: Vec<String> = res3
            .by_type
            .values()
            .map(|l| resources::version_of(l.iter().map(|r| &**r)))
            .collect();
        time("hub_versions", started.elapsed());
        assert_eq!(versions.len(), res3.by_type.len());

        // The same change without memo and cache, which must give the same result.
        let started = Instant::now();
        let compiled = compile::compile(&changed, &dp);
        time("recompile_full", started.elapsed());
        assert!(
            incremental == compiled,
            "the memo's compile differs from a full one"
        );
        let started = Instant::now();
        let res2 = resources::build(&compiled.snapshot);
        time("xds_build", started.elapsed());
        assert!(res3 == res2, "the cached build differs from a fresh one");
        let differs: Vec<String> = res2
            .by_type
            .iter()
            .filter(|(t, l)| res.of(t) != l.as_slice())
            .map(|(t, _)| t.rsplit('.').next().unwrap_or(t).to_string())
            .collect();
        if i == 0 {
            println!("BENCH one_route_change: types that differ: {differs:?}");
            // What the ADS stream sends for this change: a wildcard type's whole list when any
            // of it changed, of the other types only the resources that changed.
            let resent: usize = res2
                .by_type
                .iter()
                .map(|(t, l)| {
                    let before = res.of(t);
                    if before == l.as_slice() {
                        0
                    } else if resources::is_wildcard_type(t) {
                        l.iter().map(|r| r.any.value.len()).sum()
                    } else {
                        let had: std::collections::HashSet<(&str, u64)> =
                            before.iter().map(|b| (b.name.as_str(), b.digest)).collect();
                        l.iter()
                            .filter(|r| !had.contains(&(r.name.as_str(), r.digest)))
                            .map(|r| r.any.value.len())
                            .sum()
                    }
                })
                .sum();
            println!("BENCH one_route_change: bytes pushed to Envoy={resent}");
        }
        prev = incremental;
    }
    let figures: Vec<String> = t
        .into_iter()
        .map(|(name, d)| format!("{name}={}", ms(median(d))))
        .collect();
    println!(
        "BENCH one_route_change: {} (median of {RUNS})",
        figures.join(" ")
    );

    // Issue 8: every endpoint judged by where it leads (`admit::endpoint::check`), as admission
    // does per endpoint and the compile loop's re-check does for the whole snapshot.
    let anywhere = Cluster {
        name: "c".into(),
        endpoint_cidrs: vec![
            "0.0.0.0/0".parse().expect("CIDR"),
            "::/0".parse().expect("CIDR"),
        ],
        allow_special_addresses: true,
    };
    let reserved = Reserved {
        listeners: [
            "0.0.0.0:7443",
            "127.0.0.1:18000",
            "0.0.0.0:18080",
            "127.0.0.1:19000",
        ]
        .iter()
        .map(|a| a.parse().expect("socket address"))
        .collect(),
        networks: ["192.0.2.1/32".parse().expect("CIDR")].into(),
        host: fleetgate_hub::host::interface_addresses().expect("interfaces"),
    };
    let endpoints: Vec<SocketAddr> = compiled
        .snapshot
        .clusters
        .iter()
        .flat_map(|c| c.endpoints.iter().copied())
        .collect();
    let mut check_t = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let admitted = endpoints
            .iter()
            .filter(|e| endpoint::check(e.ip(), e.port(), &anywhere, &reserved).is_ok())
            .count();
        check_t.push(started.elapsed());
        assert_eq!(admitted, endpoints.len());
    }
    let total = median(check_t);
    println!(
        "BENCH endpoint_check: endpoints={} all={} per_endpoint={:.0}ns (median of {RUNS})",
        endpoints.len(),
        ms(total),
        total.as_nanos() as f64 / endpoints.len() as f64
    );
}
