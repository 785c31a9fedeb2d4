//! The chaos suite (issue 15): constant request load through Envoy to two tenants' routes while
//! one component is killed, restarted or flooded with changes, asserting what each promises:
//!
//! - the hub SIGKILLed and restarted: no failed request, and every Gateway address, LoadBalancer
//!   allocation and hostname claim unchanged afterwards;
//! - an agent and a tenant kube-apiserver restarted: no failed request, no status flapping;
//! - Envoy hot restarted (the next restart epoch takes the sockets over, the old one drains):
//!   no failed request;
//! - route churn (rounds of adding and removing many routes): no failed request to the routes
//!   that stay, and no Envoy cluster or listener left behind;
//! - a soak of continuous route churn: the same, for a set time, with the hub's RSS read at the
//!   start of the steady state and at the end.
//!
//! `make test` runs them in a short form (2 churn rounds of 150 routes, a 60 s soak of 20-route
//! rounds), asserting behaviour only: zero failed requests, nothing changed or leaked. `make
//! chaos` runs them one at a time with the sizes (`FLEETGATE_CHAOS_ROUNDS=20
//! FLEETGATE_CHAOS_ROUTES=3000`, a 30-minute soak of 500-route rounds that also asserts hub RSS
//! growth < 5 %: `FLEETGATE_SOAK_*`, see the Makefile; `--test-threads=1`).
//! Each prints a `CHAOS` line with its counts; the figures are in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fleetgate_e2e::eventually::try_eventually;
use fleetgate_e2e::fixtures::{
    TENANT_A, class_and_http_gateway, condition, gateway, listener, simple_http_route, wait_served,
};
use fleetgate_e2e::fleet::TenantSpec;
use fleetgate_e2e::load::{Load, Report, Target};
use fleetgate_e2e::process::{proc_field, rss_kib};
use fleetgate_e2e::tcp_echo::{L4Echo, free_dual_port_in, free_l4_range, tcp_ask};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

/// Tenant B owns every `*.example` name nobody else claimed: it can try to claim tenant A's
/// names, and the hub must keep saying no, also after a restart.
const TENANT_B_BROAD: TenantSpec<'static> = ("tenant-b", "*.example", "127.0.2.0/24");

/// Load workers and the pause each makes between requests.
const WORKERS: usize = 4;
const PAUSE: Duration = Duration::from_millis(10);

/// How long each fault lasts (a component down) while the load runs.
const DOWN: Duration = Duration::from_secs(5);

/// The two routes under load: each tenant's `app`.
fn targets() -> Vec<Target> {
    vec![
        Target::new("app.a.example", "/", "tenant-a-echo"),
        Target::new("app.b.example", "/", "tenant-b-echo"),
    ]
}

/// A two-tenant fleet serving the [`targets`], with what the hub must remember across a
/// restart: tenant A's LoadBalancer Service `lb` (an address and port from the pool) and
/// tenant A's claim on `*.a.example`, which tenant B's Gateway `steal` (a listener for
/// app.a.example) conflicts with.
struct ChaosFleet {
    fleet: Fleet,
    _echos: Vec<Echo>,
    _lb_echo: L4Echo,
}

/// Hub config keys: one pool with 127.0.0.1 and 4 L4 ports.
fn l4_config() -> serde_json::Map<String, Value> {
    let lo: IpAddr = "127.0.0.1".parse().expect("an address");
    let from = free_l4_range(lo, 4).expect("a free port range");
    // Room for the largest churn round (`make chaos`: 3,000 routes, each with a hostname of its
    // own, past the default quotas of 2,000), sent at a pace the churn is about rather than the
    // default 20 updates per second (3,000 routes in and out would take 5 minutes a round).
    let room = CHURN_ROUTES_MAX
        .max(env_usize("FLEETGATE_CHAOS_ROUTES", 0))
        .max(env_usize("FLEETGATE_SOAK_ROUTES", 0))
        + 100;
    json!({
        "addressPools": [{"name": "loopback", "addresses": ["127.0.0.1"]}],
        "l4PortRange": {"from": from, "to": from + 3},
        // Its metrics: the soak reads the hub's live heap there.
        "adminListen": fleetgate_e2e::ports::free_addr().expect("a free port").to_string(),
        "quotas": {"defaults": {
            "routes": room, "hostnames": room,
            "updatesPerSecond": 500, "updateBurst": 500,
        }},
    })
    .as_object()
    .cloned()
    .expect("an object")
}

/// The most routes a churn round adds by default (`make chaos`); `FLEETGATE_CHAOS_ROUTES` and
/// `FLEETGATE_SOAK_ROUTES` may ask for more.
const CHURN_ROUTES_MAX: usize = 3000;

/// A LoadBalancer Service of class fleetgate.dev/hub, one TCP port.
fn lb_service_yaml(name: &str, port: u16, node_port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  type: LoadBalancer\n  loadBalancerClass: fleetgate.dev/hub\n  selector:\n    app: {name}\n  ports:\n  - name: p\n    protocol: TCP\n    port: {port}\n    targetPort: {port}\n    nodePort: {node_port}\n"
    )
}

/// Node `node-1`, Service `echo` and its echo backend `<tenant>-echo`, Gateway `web` (listener
/// hostname `gateway_host`) and HTTPRoute `app` for `app_host`.
async fn deploy(t: &FleetTenant, gateway_host: Option<&str>, app_host: &str) -> (IpAddr, Echo) {
    let ip = t.create_node("node-1", 10).await.expect("node");
    let echo = t
        .node_port_backend("echo", ip, &format!("{}-echo", t.name))
        .await
        .expect("Service and echo backend");
    t.cluster
        .apply(&class_and_http_gateway(gateway_host))
        .await
        .expect("apply Gateway");
    t.cluster
        .apply(&simple_http_route("app", app_host, "echo"))
        .await
        .expect("apply HTTPRoute");
    (ip, echo)
}

impl ChaosFleet {
    async fn start() -> Self {
        let fleet = Fleet::start_with(&[TENANT_A, TENANT_B_BROAD], l4_config())
            .await
            .expect("fleet");
        let a = fleet.tenant("tenant-a");
        let b = fleet.tenant("tenant-b");
        let (a_ip, echo_a) = deploy(a, Some("*.a.example"), "app.a.example").await;
        let (_, echo_b) = deploy(b, Some("*.b.example"), "app.b.example").await;
        for (host, body) in [
            ("app.a.example", "tenant-a-echo"),
            ("app.b.example", "tenant-b-echo"),
        ] {
            let served = try_eventually(TIMEOUT, || async {
                let (status, got) = fleet.get(host, "/").await?;
                ensure!(status == 200 && got == body, "{host}: {status} {got:?}");
                Ok(())
            })
            .await;
            if let Err(e) = served {
                let dump = status_snapshot(&fleet).await;
                let routes = fleet
                    .envoy
                    .admin_get("/config_dump?resource=dynamic_route_configs")
                    .await;
                panic!("{e:#}\nstatus: {dump:#?}\nEnvoy routes: {routes:?}");
            }
        }
        // Tenant B tries tenant A's name with a Gateway listener; A's claim wins.
        b.cluster
            .apply(&gateway(
                "steal",
                &listener("http", "HTTP", 80, Some("app.a.example")),
            ))
            .await
            .expect("apply Gateway steal");
        wait_steal_rejected(b).await;
        // A TCP load balancer of tenant A.
        let node_port = free_dual_port_in(a_ip, 30000..=32767).expect("free nodePort");
        a.cluster
            .apply(&lb_service_yaml("lb", 9000, node_port))
            .await
            .expect("apply LoadBalancer Service");
        let lb_echo = L4Echo::tcp("tenant-a-lb", SocketAddr::new(a_ip, node_port))
            .await
            .expect("L4 echo");
        let lb = wait_lb_ingress(a).await;
        eventually(TIMEOUT, || async {
            let got = tcp_ask(lb, "ping").await?;
            ensure!(got == "tenant-a-lb ping", "{lb}: got {got:?}");
            Ok(())
        })
        .await;
        Self {
            fleet,
            _echos: vec![echo_a, echo_b],
            _lb_echo: lb_echo,
        }
    }

    fn load(&self) -> Load {
        Load::start(self.fleet.data_plane(), &targets(), WORKERS, PAUSE)
    }
}

/// Waits until tenant B's Gateway `steal` (a listener for tenant A's app.a.example) is
/// rejected: Accepted=False, HostnameConflict.
async fn wait_steal_rejected(b: &FleetTenant) {
    eventually(TIMEOUT, || async {
        let gw = b
            .cluster
            .get_json("Gateway", "default", "steal")
            .await?
            .context("Gateway steal missing")?;
        let accepted = condition(&gw["status"]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted yet: {}", gw["status"]))?;
        ensure!(
            accepted["status"] == "False" && accepted["reason"] == "HostnameConflict",
            "Gateway steal: {accepted}"
        );
        Ok(())
    })
    .await
}

/// The first `status.loadBalancer.ingress` of tenant A's Service `lb`, once there.
async fn wait_lb_ingress(t: &FleetTenant) -> SocketAddr {
    eventually(TIMEOUT, || async {
        let svc = t
            .cluster
            .get_json("Service", "default", "lb")
            .await?
            .context("Service lb missing")?;
        let i = &svc["status"]["loadBalancer"]["ingress"][0];
        let ip: IpAddr = i["ip"]
            .as_str()
            .with_context(|| format!("no ingress yet: {}", svc["status"]))?
            .parse()?;
        let port = i["ports"][0]["port"].as_u64().context("no ingress port")?;
        Ok(SocketAddr::new(ip, u16::try_from(port)?))
    })
    .await
}

/// (type, status, reason) of each condition, in order: what must not change (timestamps and
/// messages may be rewritten).
fn conditions(c: &Value) -> Vec<String> {
    c.as_array()
        .map(|a| {
            a.iter()
                .map(|c| format!("{}={}/{}", c["type"], c["status"], c["reason"]))
                .collect()
        })
        .unwrap_or_default()
}

/// What the hub allocated and decided for the tenants, as their objects' status shows it:
/// Gateway addresses and conditions (top level and per listener), HTTPRoute parent conditions
/// (tenant B's rejected Gateway steal shows tenant A's hostname claim), and the LoadBalancer ingress.
async fn status_snapshot(fleet: &Fleet) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for t in &fleet.tenants {
        for name in ["web", "steal"] {
            let Some(gw) = t
                .cluster
                .get_json("Gateway", "default", name)
                .await
                .expect("read Gateway")
            else {
                continue;
            };
            let listeners: Vec<Value> = gw["status"]["listeners"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| json!([l["name"], l["attachedRoutes"], conditions(&l["conditions"])]))
                .collect();
            out.insert(
                format!("{} Gateway {name}", t.name),
                json!({
                    "addresses": gw["status"]["addresses"],
                    "conditions": conditions(&gw["status"]["conditions"]),
                    "listeners": listeners,
                }),
            );
        }
        for route in ["app"] {
            if let Some(r) = t
                .cluster
                .get_json("HTTPRoute", "default", route)
                .await
                .expect("read HTTPRoute")
            {
                let parents: Vec<Value> = r["status"]["parents"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|p| json!([p["parentRef"], conditions(&p["conditions"])]))
                    .collect();
                out.insert(format!("{} HTTPRoute {route}", t.name), json!(parents));
            }
        }
        if let Some(svc) = t
            .cluster
            .get_json("Service", "default", "lb")
            .await
            .expect("read Service")
        {
            out.insert(
                format!("{} Service lb", t.name),
                svc["status"]["loadBalancer"].clone(),
            );
        }
    }
    out
}

/// Prints a timestamped event of the run (the failure samples are on the same clock).
fn mark(load: &Load, what: &str) {
    eprintln!("CHAOS t={:.2}s {what}", load.elapsed().as_secs_f64());
}

/// Prints the `CHAOS` line of a fault and asserts that no request failed.
fn assert_no_failures(fault: &str, report: &Report) {
    println!("CHAOS {fault}: {report}");
    assert!(report.tally.sent > 0, "{fault}: no request was sent");
    assert_eq!(
        report.tally.failed(),
        0,
        "{fault}: requests failed under load: {report}"
    );
}

/// A new route of tenant `t` for `host`, applied now, must be served (proves its agent and the
/// hub are connected and programming Envoy again).
async fn new_route_is_served(fleet: &Fleet, t: &FleetTenant, name: &str, host: &str) {
    t.cluster
        .apply(&simple_http_route(name, host, "echo"))
        .await
        .expect("apply HTTPRoute");
    wait_served(fleet, host, "/", &format!("{}-echo", t.name)).await;
}

// --- 1. hub SIGKILL and restart -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_sigkill_and_restart_loses_no_request_and_no_allocation() {
    let mut c = ChaosFleet::start().await;
    let before = status_snapshot(&c.fleet).await;
    let lb_before = wait_lb_ingress(c.fleet.tenant("tenant-a")).await;
    let load = c.load();
    load.wait_more(100, TIMEOUT).await;

    mark(&load, "hub SIGKILL");
    let at_kill = load.sent();
    c.fleet.hub.kill();
    tokio::time::sleep(DOWN).await;
    let during = load.sent() - at_kill;
    mark(&load, "hub starting again");
    c.fleet.hub.start_again().await.expect("hub restarts");
    mark(&load, "hub listening");
    c.fleet.ensure_running().expect("the fleet runs");
    // Both agents reconnected and Envoy re-fetched: new routes are served.
    new_route_is_served(
        &c.fleet,
        c.fleet.tenant("tenant-a"),
        "after",
        "after.a.example",
    )
    .await;
    new_route_is_served(
        &c.fleet,
        c.fleet.tenant("tenant-b"),
        "after",
        "after.b.example",
    )
    .await;
    mark(&load, "new routes served after the restart");
    load.wait_more(100, TIMEOUT).await;
    let report = load.stop().await;

    // The load balancer still answers on the same address.
    let a = c.fleet.tenant("tenant-a");
    let lb_after = wait_lb_ingress(a).await;
    assert_eq!(lb_before, lb_after, "the LoadBalancer allocation moved");
    let got = tcp_ask(lb_after, "ping")
        .await
        .expect("the LoadBalancer answers");
    assert_eq!(got, "tenant-a-lb ping");
    // Tenant B's Gateway steal is still rejected: A's claim survived.
    wait_steal_rejected(c.fleet.tenant("tenant-b")).await;
    let after = status_snapshot(&c.fleet).await;
    // The new routes attached one more route to each listener; compare the rest.
    let strip = |m: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(ls) = v.get_mut("listeners").and_then(Value::as_array_mut) {
                    for l in ls {
                        l[1] = Value::Null;
                    }
                }
                (k.clone(), v)
            })
            .collect()
    };
    assert_eq!(
        strip(&before),
        strip(&after),
        "tenant status changed across a hub restart"
    );
    println!("CHAOS hub down for {DOWN:?}: {during} requests sent meanwhile");
    assert_no_failures("hub_sigkill_restart", &report);
}

// --- 2. agent and tenant kube-apiserver restarts ------------------------------------------------

/// The positive conditions that must stay True on the tenants' Gateways (top level and
/// listeners) and on their `app` routes' parents.
const MUST_STAY_TRUE: [&str; 3] = ["Accepted", "Programmed", "ResolvedRefs"];

/// A tenant's objects read with its admin client (it keeps working across an API server
/// restart: same address, same CA).
async fn read(client: &kube::Client, kind: &str, name: &str) -> anyhow::Result<Value> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk));
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// The conditions of `MUST_STAY_TRUE` that are not True (or missing where required) on each
/// tenant's Gateway `web` and HTTPRoute `app`; objects that cannot be read (the API server is
/// down) are skipped.
async fn flapping(tenants: &[(String, kube::Client)]) -> Vec<String> {
    let mut bad = Vec::new();
    let check = |what: &str, conds: &Value, required: &[&str], bad: &mut Vec<String>| {
        for type_ in MUST_STAY_TRUE {
            match condition(conds, type_) {
                Some(c) if c["status"] != "True" => {
                    bad.push(format!("{what}: {type_}={} {}", c["status"], c["reason"]))
                }
                None if required.contains(&type_) => {
                    bad.push(format!("{what}: no {type_} condition"))
                }
                _ => {}
            }
        }
    };
    for (tenant, client) in tenants {
        if let Ok(gw) = read(client, "Gateway", "web").await {
            let s = &gw["status"];
            check(
                &format!("{tenant} Gateway web"),
                &s["conditions"],
                &["Accepted", "Programmed"],
                &mut bad,
            );
            for l in s["listeners"].as_array().into_iter().flatten() {
                check(
                    &format!("{tenant} Gateway web listener {}", l["name"]),
                    &l["conditions"],
                    &[],
                    &mut bad,
                );
            }
        }
        if let Ok(r) = read(client, "HTTPRoute", "app").await {
            check(
                &format!("{tenant} HTTPRoute app"),
                &r["status"]["parents"][0]["conditions"],
                &["Accepted", "ResolvedRefs"],
                &mut bad,
            );
        }
    }
    bad
}

/// Polls [`flapping`] every 200 ms in the background until stopped.
struct StatusWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u32, u32, Vec<String>)>,
}

impl StatusWatch {
    fn start(tenants: Vec<(String, kube::Client)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let (mut polls, mut flaps, mut seen) = (0, 0, Vec::new());
            while !s.load(Ordering::Relaxed) {
                polls += 1;
                let bad = flapping(&tenants).await;
                if !bad.is_empty() {
                    flaps += 1;
                }
                for b in bad {
                    if !seen.contains(&b) {
                        seen.push(b);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (polls, flaps, seen)
        });
        Self { stop, task }
    }

    /// (polls, polls that saw a condition not True, what was seen).
    async fn stop(self) -> (u32, u32, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the status watch does not panic")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_and_kube_apiserver_restarts_lose_no_request_and_do_not_flap_status() {
    let mut c = ChaosFleet::start().await;
    let clients: Vec<(String, kube::Client)> = c
        .fleet
        .tenants
        .iter()
        .map(|t| (t.name.clone(), t.cluster.admin()))
        .collect();
    assert_eq!(flapping(&clients).await, Vec::<String>::new());
    let load = c.load();
    load.wait_more(100, TIMEOUT).await;
    let watch = StatusWatch::start(clients);

    // Tenant A's agent: SIGKILL, down for a while, started again.
    mark(&load, "agent tenant-a SIGKILL");
    c.fleet.tenant_mut("tenant-a").agent.kill();
    tokio::time::sleep(DOWN).await;
    mark(&load, "agent tenant-a starting again");
    c.fleet
        .tenant_mut("tenant-a")
        .agent
        .restart()
        .expect("agent restarts");
    let a = c.fleet.tenant("tenant-a");
    new_route_is_served(&c.fleet, a, "after-agent", "after-agent.a.example").await;
    mark(
        &load,
        "a new route of tenant-a served after the agent restart",
    );

    // Tenant A's kube-apiserver: SIGKILL and started again on the same etcd (the agent's
    // watches break and resume).
    mark(&load, "kube-apiserver tenant-a SIGKILL and restart");
    c.fleet
        .tenant_mut("tenant-a")
        .cluster
        .restart()
        .await
        .expect("kube-apiserver restarts");
    mark(&load, "kube-apiserver tenant-a ready");
    let a = c.fleet.tenant("tenant-a");
    new_route_is_served(&c.fleet, a, "after-apiserver", "after-apiserver.a.example").await;
    mark(
        &load,
        "a new route of tenant-a served after the API server restart",
    );
    load.wait_more(100, TIMEOUT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (polls, flaps, seen) = watch.stop().await;
    let report = load.stop().await;
    c.fleet.ensure_running().expect("the fleet runs");
    println!("CHAOS status polls during the restarts: {polls}, with a condition not True: {flaps}");
    assert!(
        seen.is_empty(),
        "status flapped during the restarts ({flaps} of {polls} polls): {seen:#?}"
    );
    assert_no_failures("agent_and_kube_apiserver_restart", &report);
}

// --- 3. Envoy hot restart ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn envoy_hot_restart_loses_no_request() {
    let mut c = ChaosFleet::start().await;
    let load = c.load();
    load.wait_more(100, TIMEOUT).await;
    for _ in 0..2 {
        let epoch = c.fleet.envoy.epoch() + 1;
        mark(&load, &format!("Envoy hot restart to epoch {epoch}"));
        c.fleet
            .envoy
            .hot_restart(Duration::from_secs(2), Duration::from_secs(5))
            .await
            .expect("hot restart");
        mark(
            &load,
            &format!("epoch {epoch} LIVE, epoch {} gone", epoch - 1),
        );
        load.wait_more(100, TIMEOUT).await;
    }
    // The new epoch follows changes: it holds its own ADS stream.
    new_route_is_served(
        &c.fleet,
        c.fleet.tenant("tenant-a"),
        "after",
        "after.a.example",
    )
    .await;
    load.wait_more(100, TIMEOUT).await;
    let report = load.stop().await;
    assert_no_failures("envoy_hot_restart", &report);
}

// --- 4. route churn ---------------------------------------------------------------------------

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How many Services the churned routes spread over (each a cluster in Envoy while in use).
const CHURN_SERVICES: usize = 10;

/// A NodePort Service `name` (port 8080) whose nodePort the API server picks.
fn churn_service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  type: NodePort\n  selector:\n    app: {name}\n  ports:\n  - name: p\n    protocol: TCP\n    port: 8080\n    targetPort: 8080\n"
    )
}

/// Envoy's admin: the number of its clusters and listeners.
async fn envoy_clusters_and_listeners(fleet: &Fleet) -> (usize, usize) {
    fleet
        .envoy
        .cluster_and_listener_counts()
        .await
        .expect("Envoy admin /clusters and /listeners")
}

/// Runs `f` on every item, `n` at a time.
async fn each<T, F, Fut>(items: Vec<T>, n: usize, f: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    futures::stream::iter(items.into_iter().map(f))
        .buffer_unordered(n)
        .collect::<Vec<()>>()
        .await;
}

/// The tenant (and its hostname domain) that churns in round `round`: rounds alternate between
/// the tenants, so each tenant's served route shares its RouteConfiguration with the churn.
fn churn_tenant(fleet: &Fleet, round: usize) -> (&FleetTenant, &'static str) {
    if round.is_multiple_of(2) {
        (fleet.tenant("tenant-a"), "a.example")
    } else {
        (fleet.tenant("tenant-b"), "b.example")
    }
}

/// How long to wait for `routes` churned routes to be programmed or gone: the chaos timeout
/// plus 100 ms a route (3,000 routes on a loaded 2-core machine).
fn churn_timeout(routes: usize) -> Duration {
    TIMEOUT * 4 + Duration::from_millis(100) * u32::try_from(routes).unwrap_or(u32::MAX)
}

/// One churn round through the real path (kube-apiserver -> agent -> hub -> Envoy): tenant `t`
/// applies [`CHURN_SERVICES`] Services and `routes` HTTPRoutes `churn-<i>` for
/// `churn-<i>.<domain>` spread over them (in applies of 100), waits until the last one is
/// programmed, deletes them all (8 deletes in flight) and the Services, and waits until the last
/// route answers 404. Returns Envoy's (clusters, listeners) with every churned route in place.
async fn churn_round(
    fleet: &Fleet,
    load: &Load,
    round: usize,
    t: &FleetTenant,
    domain: &str,
    routes: usize,
) -> (usize, usize) {
    mark(
        load,
        &format!("round {round}: {} adds {routes} routes", t.name),
    );
    let services: Vec<String> = (0..CHURN_SERVICES).map(|k| format!("churn-{k}")).collect();
    for s in &services {
        // No backend listens there: the churned routes are configured, not exercised.
        t.cluster
            .apply(&churn_service(s))
            .await
            .expect("apply churn Service");
    }
    let names: Vec<usize> = (0..routes).collect();
    for chunk in names.chunks(100) {
        let yaml: Vec<String> = chunk
            .iter()
            .map(|i| {
                simple_http_route(
                    &format!("churn-{i}"),
                    &format!("churn-{i}.{domain}"),
                    &services[i % CHURN_SERVICES],
                )
            })
            .collect();
        t.cluster
            .apply(&yaml.join("---\n"))
            .await
            .expect("apply churn routes");
    }
    // Wait until the last route is programmed (nearly all the others are by then); its
    // Service has no backend listening, so Envoy answers 503, not 404.
    let last = format!("churn-{}.{domain}", routes - 1);
    eventually(churn_timeout(routes), || async {
        let (s, _) = fleet.get(&last, "/").await?;
        ensure!(s != 404, "{last}: still {s}");
        Ok(())
    })
    .await;
    let during = envoy_clusters_and_listeners(fleet).await;
    mark(
        load,
        &format!("round {round}: all added ((clusters, listeners) {during:?}), removing"),
    );
    each(names, 8, |i| async move {
        t.cluster
            .delete("HTTPRoute", "default", &format!("churn-{i}"))
            .await
            .expect("delete churn route");
    })
    .await;
    for s in &services {
        t.cluster
            .delete("Service", "default", s)
            .await
            .expect("delete churn Service");
    }
    eventually(churn_timeout(routes), || async {
        let (s, _) = fleet.get(&last, "/").await?;
        ensure!(s == 404, "{last}: still {s}");
        Ok(())
    })
    .await;
    during
}

/// After the churn: the churned Services did become Envoy clusters at the `peak` (so a leak
/// would show), and Envoy's clusters and listeners are back to the `baseline` counts. Returns
/// the counts now.
async fn assert_nothing_leaked(
    fleet: &Fleet,
    test: &str,
    baseline: (usize, usize),
    peak: usize,
) -> (usize, usize) {
    assert!(
        peak >= baseline.0 + CHURN_SERVICES,
        "{test}: the churn never added its {CHURN_SERVICES} clusters: peak {peak}, baseline {baseline:?}"
    );
    let now = try_eventually(TIMEOUT, || async {
        let now = envoy_clusters_and_listeners(fleet).await;
        ensure!(
            now == baseline,
            "(clusters, listeners) {now:?}, before the churn {baseline:?}"
        );
        Ok(now)
    })
    .await;
    now.unwrap_or_else(|e| panic!("{test}: Envoy clusters or listeners leaked: {e:#}"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The median of `readings` (the lower of the middle two for an even count); `None` if empty.
fn median(readings: &[u64]) -> Option<u64> {
    let mut sorted = readings.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

fn growth_pct(from_kib: u64, to_kib: u64) -> f64 {
    (to_kib as f64 / from_kib.max(1) as f64 - 1.0) * 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn route_churn_loses_no_request_to_existing_routes_and_leaks_nothing() {
    let rounds = env_usize("FLEETGATE_CHAOS_ROUNDS", 2);
    // 150 by default: the churned tenant's hostnames then spread over two and four tables and
    // back (`scoped::HOSTS_PER_TABLE`), so the scopes of its untouched route move each round
    // (with 50 they never did, and a 404 at each move went unseen).
    let routes = env_usize("FLEETGATE_CHAOS_ROUTES", 150).max(1);
    let mut c = ChaosFleet::start().await;
    let hub_pid = c.fleet.hub.process().pid().expect("hub running");
    let baseline = envoy_clusters_and_listeners(&c.fleet).await;
    let rss_before = rss_kib(hub_pid);
    let load = c.load();
    load.wait_more(100, TIMEOUT).await;
    let started = Instant::now();
    let mut peak = baseline.0;
    for round in 0..rounds {
        let (t, domain) = churn_tenant(&c.fleet, round);
        let during = churn_round(&c.fleet, &load, round, t, domain, routes).await;
        peak = peak.max(during.0);
        mark(
            &load,
            &format!(
                "round {round}: all removed, hub RSS {:.1} MiB",
                mib(rss_kib(hub_pid))
            ),
        );
    }
    let churn = started.elapsed();
    load.wait_more(100, TIMEOUT).await;
    let report = load.stop().await;

    let leaked = assert_nothing_leaked(&c.fleet, "route_churn", baseline, peak).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(hub_pid);
    println!(
        "CHAOS route_churn: rounds={rounds} routes={routes} churn={:.1}s envoy (clusters, listeners) {leaked:?} before and after, {peak} clusters at the peak; hub RSS {:.1} MiB -> {:.1} MiB ({:+.1} %)",
        churn.as_secs_f64(),
        mib(rss_before),
        mib(rss_after),
        growth_pct(rss_before, rss_after),
    );
    assert_no_failures("route_churn", &report);
}

// --- 5. soak: continuous churn ----------------------------------------------------------------

/// How long the soak waits after a round before reading the hub's RSS (see where it is used).
const SOAK_SETTLE: Duration = Duration::from_secs(3);

/// Continuous route churn for `FLEETGATE_SOAK_SECS` (60 s in `make test`, 1,800 in `make
/// chaos`), rounds of `FLEETGATE_SOAK_ROUTES` routes alternating between the tenants, under the
/// constant load on both tenants' `app`. Asserts zero failed requests and no Envoy cluster or
/// listener left behind. Hub RSS is read after every round, [`SOAK_SETTLE`] after its last
/// change was served; the steady state starts after
/// `FLEETGATE_SOAK_WARMUP_ROUNDS` rounds (the allocator has grown to what a round needs), and
/// its growth (median of the last third of the steady rounds over the median of the first) is
/// asserted below `FLEETGATE_SOAK_MAX_RSS_GROWTH_PCT` only when that is set (`make chaos`: 5),
/// else printed. Also asserts that the hub runs with transparent huge pages off (where the
/// kernel shows it), without which its RSS creeps up over a long soak while its live heap does
/// not (docs/operations.md, "The hub's memory").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_continuous_route_churn_loses_no_request_leaks_nothing() {
    let duration = Duration::from_secs(env_usize("FLEETGATE_SOAK_SECS", 60) as u64);
    let routes = env_usize("FLEETGATE_SOAK_ROUTES", 20).max(1);
    let warmup = env_usize("FLEETGATE_SOAK_WARMUP_ROUNDS", 2);
    let max_growth: Option<f64> =
        std::env::var("FLEETGATE_SOAK_MAX_RSS_GROWTH_PCT")
            .ok()
            .map(|v| {
                v.parse().unwrap_or_else(|_| {
                    panic!(
                        "FLEETGATE_SOAK_MAX_RSS_GROWTH_PCT={v:?}: give a number of percent, e.g. 5"
                    )
                })
            });
    let mut c = ChaosFleet::start().await;
    let hub_pid = c.fleet.hub.process().pid().expect("hub running");
    // The hub turns transparent huge pages off for itself (hub main.rs): with them, its RSS
    // counts 2 MiB pages where a few small objects live on, and creeps up while the live heap
    // stays flat. Kernels before 6.x do not show the flag (nothing to check there).
    if let Some(thp) = proc_field(hub_pid, "status", "THP_enabled:") {
        assert_eq!(
            thp, 0,
            "soak: the hub runs with transparent huge pages enabled (THP_enabled: {thp} in /proc/{hub_pid}/status)"
        );
    }
    // And gives mimalloc a purge delay of 0 (hub main.rs, `allocator_options`): with its
    // default, a quiet hub keeps what the last round freed, and each reading below measures how
    // busy the hub was rather than what it holds.
    let environ = std::fs::read(format!("/proc/{hub_pid}/environ")).expect("the hub's environment");
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|kv| kv.starts_with(b"MIMALLOC_PURGE_DELAY=")),
        "soak: the hub runs without MIMALLOC_PURGE_DELAY in its environment (it sets one and runs itself again at start)"
    );
    let baseline = envoy_clusters_and_listeners(&c.fleet).await;
    let rss_idle = rss_kib(hub_pid);
    let load = c.load();
    load.wait_more(100, TIMEOUT).await;
    let started = Instant::now();
    let mut peak = baseline.0;
    // Hub RSS after each round from the end of the warm-up on (all churned routes gone then).
    let mut steady: Vec<u64> = Vec::new();
    // And its live heap (`fleetgate_hub_heap_bytes`), which tells a leak (both grow) from the
    // allocator keeping freed pages (only RSS grows).
    let mut steady_heap: Vec<u64> = Vec::new();
    let first_steady = warmup.max(1);
    let mut round = 0;
    // At least the warm-up rounds and one steady round, however short the duration.
    while started.elapsed() < duration || round <= first_steady {
        let (t, domain) = churn_tenant(&c.fleet, round);
        let during = churn_round(&c.fleet, &load, round, t, domain, routes).await;
        peak = peak.max(during.0);
        // Read once the hub is at rest: right after the round its last compile and push may
        // still be running, and a reading then measures how busy it was, not what it keeps.
        tokio::time::sleep(SOAK_SETTLE).await;
        let rss = rss_kib(hub_pid);
        let heap = c.fleet.hub.heap_bytes().await.expect("the hub's live heap") / 1024;
        round += 1;
        if round >= first_steady {
            steady.push(rss);
            steady_heap.push(heap);
        }
        mark(
            &load,
            &format!(
                "soak round {round} done, hub RSS {:.1} MiB (anonymous {:.1} MiB; the rest is mostly the binary's code as it is paged in), live heap {:.1} MiB",
                mib(rss),
                mib(proc_field(hub_pid, "status", "RssAnon:").unwrap_or(0)),
                mib(heap)
            ),
        );
    }
    let churn = started.elapsed();
    load.wait_more(100, TIMEOUT).await;
    let report = load.stop().await;
    c.fleet.ensure_running().expect("the fleet runs");

    let leaked = assert_nothing_leaked(&c.fleet, "soak", baseline, peak).await;
    // The start and the end of the steady state are the median readings of a window: the first
    // and the last third of the steady rounds. A leak lifts every reading of the last window;
    // one round read while the hub was still busy (a reading tens of MiB above its neighbours,
    // seen when the machine was loaded) moves a median no more than any other reading does.
    let window = (steady.len() / 3).max(1);
    let first = &steady[..window.min(steady.len())];
    let last = &steady[steady.len().saturating_sub(window)..];
    let rss_start = median(first).unwrap_or(rss_idle);
    let rss_end = median(last).unwrap_or(rss_idle);
    let peaks = (
        first.iter().copied().max().unwrap_or(0),
        last.iter().copied().max().unwrap_or(0),
    );
    let growth = growth_pct(rss_start, rss_end);
    let heap_start = median(&steady_heap[..window.min(steady_heap.len())]).unwrap_or(0);
    let heap_end = median(&steady_heap[steady_heap.len().saturating_sub(window)..]).unwrap_or(0);
    let (lo, hi) = (
        steady.iter().copied().min().unwrap_or(0),
        steady.iter().copied().max().unwrap_or(0),
    );
    // Of the RSS at the end: anonymous memory (the heap; the rest is mostly the binary's
    // mapped code) and how much of it is in transparent huge pages (0 with them off).
    let anon = proc_field(hub_pid, "smaps_rollup", "Anonymous:").unwrap_or(0);
    let huge = proc_field(hub_pid, "smaps_rollup", "AnonHugePages:").unwrap_or(0);
    println!(
        "CHAOS soak: {:.0}s of churn, {round} rounds of {routes} routes ({} added and removed); envoy (clusters, listeners) {leaked:?} before and after, {peak} clusters at the peak; hub RSS idle {:.1} MiB, steady state from round {first_steady}: median of the first {window} rounds {:.1} MiB, of the last {window} {:.1} MiB ({growth:+.1} %; their peaks {:.1} and {:.1} MiB), every steady round {:.1}-{:.1} MiB; at the end anonymous {:.1} MiB, of which in huge pages {:.1} MiB; live heap (medians of the same windows) {:.1} MiB -> {:.1} MiB ({:+.1} %)",
        churn.as_secs_f64(),
        round * routes,
        mib(rss_idle),
        mib(rss_start),
        mib(rss_end),
        mib(peaks.0),
        mib(peaks.1),
        mib(lo),
        mib(hi),
        mib(anon),
        mib(huge),
        mib(heap_start),
        mib(heap_end),
        growth_pct(heap_start, heap_end),
    );
    assert_no_failures("soak", &report);
    if let Some(max) = max_growth {
        assert!(
            growth < max,
            "soak: hub RSS grew {growth:+.1} % over the steady state (median of its first {window} rounds {:.1} MiB, of its last {window} {:.1} MiB), over the {max} % allowed",
            mib(rss_start),
            mib(rss_end)
        );
    }
}
