//! L4 load balancing end to end on real components: a Service of type LoadBalancer with
//! `loadBalancerClass: fleetgate.dev/hub` in a tenant API server -> agent -> hub (allocation from
//! the address pool) -> Envoy TCP/UDP listener -> the tenant's backend on its node, and the
//! allocated address back in the Service's `status.loadBalancer.ingress`.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    GATEWAY_CLASS, TENANT_A, TENANT_B, gateway, listener, node_port_service,
};
use fleetgate_e2e::tcp_echo::{L4Echo, free_dual_port_in, free_l4_range, tcp_ask, udp_ask};
use fleetgate_e2e::{Fleet, FleetTenant, TIMEOUT, eventually};
use serde_json::{Value, json};

const POOL_IP: &str = "127.0.0.1";

/// Hub config keys: one pool with 127.0.0.1 and `len` ports from `from`.
fn l4_config(from: u16, len: u16) -> serde_json::Map<String, Value> {
    let v = json!({
        "addressPools": [{"name": "loopback", "addresses": [POOL_IP]}],
        "l4PortRange": {"from": from, "to": from + len - 1},
    });
    v.as_object().cloned().expect("an object")
}

/// A LoadBalancer Service of class fleetgate.dev/hub with one port.
fn lb_service_yaml(name: &str, protocol: &str, port: u16, node_port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  type: LoadBalancer
  loadBalancerClass: fleetgate.dev/hub
  selector:
    app: {name}
  ports:
  - name: p
    protocol: {protocol}
    port: {port}
    targetPort: {port}
    nodePort: {node_port}
"#
    )
}

/// Creates the Service and the echo backend a kube-proxy would forward its nodePort to, on the
/// tenant's node `ip`. The echo answers with `<tenant>-<name>`.
async fn lb_backend(
    t: &FleetTenant,
    node_ip: IpAddr,
    name: &str,
    protocol: &str,
    port: u16,
) -> L4Echo {
    let node_port = free_dual_port_in(node_ip, 30000..=32767).expect("free nodePort");
    t.cluster
        .apply(&lb_service_yaml(name, protocol, port, node_port))
        .await
        .expect("apply Service");
    let echo_name = format!("{}-{name}", t.name);
    let at = SocketAddr::new(node_ip, node_port);
    match protocol {
        "UDP" => L4Echo::udp(&echo_name, at).await,
        _ => L4Echo::tcp(&echo_name, at).await,
    }
    .expect("echo backend")
}

/// The Service's first `status.loadBalancer.ingress` (address, port, protocol), if any.
fn ingress(svc: &Value) -> Option<(SocketAddr, String)> {
    let i = &svc["status"]["loadBalancer"]["ingress"][0];
    let ip: IpAddr = i["ip"].as_str()?.parse().ok()?;
    let port = u16::try_from(i["ports"][0]["port"].as_u64()?).ok()?;
    Some((
        SocketAddr::new(ip, port),
        i["ports"][0]["protocol"].as_str()?.to_string(),
    ))
}

async fn get_service(t: &FleetTenant, name: &str) -> anyhow::Result<Value> {
    t.cluster
        .get_json("Service", "default", name)
        .await?
        .with_context(|| format!("Service {name} not found"))
}

/// Waits until the Service has an ingress address and returns it.
async fn wait_ingress(t: &FleetTenant, name: &str) -> SocketAddr {
    eventually(TIMEOUT, || async {
        let svc = get_service(t, name).await?;
        let (addr, _) = ingress(&svc).with_context(|| {
            format!(
                "Service {}/{name} has no status.loadBalancer.ingress yet: {}",
                t.name, svc["status"]
            )
        })?;
        Ok(addr)
    })
    .await
}

/// The condition of `type_` on the Service.
fn condition<'a>(svc: &'a Value, type_: &str) -> Option<&'a Value> {
    svc["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

async fn wait_tcp(addr: SocketAddr, want: &str) {
    eventually(TIMEOUT, || async {
        let got = tcp_ask(addr, "ping").await?;
        ensure!(got == want, "{addr}: got {got:?}, want {want:?}");
        Ok(())
    })
    .await
}

async fn wait_udp(addr: SocketAddr, want: &str) {
    eventually(TIMEOUT, || async {
        let got = udp_ask(addr, "ping").await?;
        ensure!(got == want, "{addr}: got {got:?}, want {want:?}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcp_and_udp_load_balancers_serve_their_tenant_and_keep_their_address_across_a_hub_restart()
{
    load_balancers_keep_their_address_across_a_hub_restart(serde_json::Map::new()).await;
}

/// The same with the hub's store on etcd (`storeEtcd`): allocations and addresses are kept
/// there across the restart as in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_balancers_keep_their_address_across_a_hub_restart_from_an_etcd_backup() {
    let extra = [(
        "storeEtcd".to_string(),
        Value::from(fleetgate_e2e::fleet::ON_FLEET_ETCD),
    )];
    load_balancers_keep_their_address_across_a_hub_restart(extra.into_iter().collect()).await;
}

/// `fleetgate-hub store <args> --config <the fleet hub's config>`, which must succeed: its
/// stderr.
fn store_command(fleet: &Fleet, args: &[&str]) -> String {
    let out = store_run(fleet, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "fleetgate-hub store {args:?} failed:\n{err}"
    );
    err
}

/// The same, for a command that must fail: its stderr.
fn store_command_fails(fleet: &Fleet, args: &[&str]) -> String {
    let out = store_run(fleet, args);
    assert!(
        !out.status.success(),
        "fleetgate-hub store {args:?} succeeded"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn store_run(fleet: &Fleet, args: &[&str]) -> std::process::Output {
    std::process::Command::new(fleetgate_e2e::components::product_binary("fleetgate-hub").unwrap())
        .arg("store")
        .args(args)
        .arg("--config")
        .arg(fleet.hub.config_path())
        .output()
        .unwrap()
}

async fn load_balancers_keep_their_address_across_a_hub_restart(
    store: serde_json::Map<String, Value>,
) {
    let lo: IpAddr = POOL_IP.parse().unwrap();
    let from = free_l4_range(lo, 6).expect("a free port range");
    let on_etcd = store.contains_key("storeEtcd");
    let mut config = l4_config(from, 6);
    config.extend(store);
    let mut fleet = Fleet::start_with(&[TENANT_A, TENANT_B], config)
        .await
        .expect("fleet starts");
    assert_eq!(
        fleet.dir.path().join("hub-store.redb").exists(),
        !on_etcd,
        "the hub stores in a file exactly when its store is not on etcd"
    );
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let a_node = a.create_node("node-1", 10).await.unwrap();
    let b_node = b.create_node("node-1", 10).await.unwrap();
    // Both tenants ask for the same Service port, inside the range: the first allocated gets
    // it, the other the lowest free port. UDP port 53 is outside the range.
    let _a_db = lb_backend(a, a_node, "db", "TCP", from + 3).await;
    let a_db = wait_ingress(a, "db").await;
    let _b_db = lb_backend(b, b_node, "db", "TCP", from + 3).await;
    let _a_dns = lb_backend(a, a_node, "dns", "UDP", 53).await;
    let b_db = wait_ingress(b, "db").await;
    let a_dns = wait_ingress(a, "dns").await;

    assert_eq!(
        a_db,
        SocketAddr::new(lo, from + 3),
        "the Service's own port is preferred when free in the range"
    );
    assert_ne!(
        b_db, a_db,
        "another tenant never gets the same (address, port)"
    );
    assert_eq!(b_db.ip(), lo);
    assert!((from..from + 6).contains(&b_db.port()), "{b_db}");
    assert!(
        a_dns != a_db && a_dns != b_db && (from..from + 6).contains(&a_dns.port()),
        "UDP 53 is outside the range: the lowest free port of the range ({a_dns})"
    );
    let svc = get_service(a, "dns").await.unwrap();
    assert_eq!(ingress(&svc).unwrap().1, "UDP");
    assert_eq!(condition(&svc, "Programmed").unwrap()["status"], "True");

    wait_tcp(a_db, "tenant-a-db ping").await;
    wait_tcp(b_db, "tenant-b-db ping").await;
    wait_udp(a_dns, "tenant-a-dns ping").await;

    // On etcd: a backup taken while the hub runs, restored under a new prefix that the hub
    // restarts on (docs/operations.md, "Backup and restore").
    let backup = fleet.dir.path().join("hub-backup.redb");
    if on_etcd {
        store_command(&fleet, &["backup", "--to", backup.to_str().unwrap()]);
    }
    // Hub restart: Envoy keeps serving meanwhile, and the allocations come back unchanged.
    fleet.hub.kill();
    assert_eq!(
        tcp_ask(a_db, "ping").await.unwrap(),
        "tenant-a-db ping",
        "Envoy serves without the hub"
    );
    if on_etcd {
        let path = fleet.hub.config_path().to_path_buf();
        let mut config: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["storeEtcd"]["prefix"] = "/fleetgate-restored/".into();
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
        let restored = store_command(&fleet, &["restore", "--from", backup.to_str().unwrap()]);
        assert!(restored.contains("/fleetgate-restored/"), "{restored}");
        // A second restore into the now full prefix is refused, naming what to do.
        let again = store_command_fails(&fleet, &["restore", "--from", backup.to_str().unwrap()]);
        assert!(again.contains("restore into an empty store"), "{again}");
    }
    fleet.hub.start_again().await.expect("hub restarts");
    fleet.ensure_running().unwrap();
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    // A Service created after the restart gets an address: the agent reconnected and the hub
    // sent its statuses, so the statuses read next are the restarted hub's.
    let _late = lb_backend(a, a_node, "late", "TCP", 7).await;
    let late = wait_ingress(a, "late").await;
    assert!(![a_db, b_db, a_dns].contains(&late), "{late}");
    eventually(TIMEOUT, || async {
        let b_svc = get_service(b, "db").await?;
        let b_late = ingress(&b_svc).map(|i| i.0);
        ensure!(
            b_late == Some(b_db),
            "tenant-b's db after the restart: {b_late:?}, before: {b_db}"
        );
        Ok(())
    })
    .await;
    assert_eq!(
        ingress(&get_service(a, "db").await.unwrap()).unwrap().0,
        a_db
    );
    assert_eq!(
        ingress(&get_service(a, "dns").await.unwrap()).unwrap().0,
        a_dns
    );
    wait_tcp(late, "tenant-a-late ping").await;
    wait_tcp(a_db, "tenant-a-db ping").await;
    wait_tcp(b_db, "tenant-b-db ping").await;
    wait_udp(a_dns, "tenant-a-dns ping").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_is_reported_on_the_service_and_breaks_nothing() {
    let lo: IpAddr = POOL_IP.parse().unwrap();
    let from = free_l4_range(lo, 2).expect("a free port range");
    let fleet = Fleet::start_with(&[TENANT_A], l4_config(from, 2))
        .await
        .expect("fleet starts");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.unwrap();
    let _one = lb_backend(a, node, "one", "TCP", 80).await;
    let one = wait_ingress(a, "one").await;
    let _two = lb_backend(a, node, "two", "TCP", 80).await;
    let two = wait_ingress(a, "two").await;
    let _three = lb_backend(a, node, "three", "TCP", 80).await;

    let message = eventually(TIMEOUT, || async {
        let svc = get_service(a, "three").await?;
        let c = condition(&svc, "Programmed")
            .with_context(|| format!("no Programmed condition yet: {}", svc["status"]))?;
        ensure!(
            c["status"] == "False" && c["reason"] == "PoolExhausted",
            "Programmed: {c}"
        );
        ensure!(
            ingress(&svc).is_none(),
            "an exhausted Service has no ingress"
        );
        Ok(c["message"].as_str().unwrap_or_default().to_string())
    })
    .await;
    assert!(
        message.contains("80/TCP") && message.contains("addressPools"),
        "the message says which port and what to change: {message}"
    );
    // ... and a Warning Event on the Service says the same.
    eventually(TIMEOUT, || async {
        let events: kube::Api<k8s_openapi::api::core::v1::Event> =
            kube::Api::namespaced(a.cluster.admin(), "default");
        let list = events.list(&Default::default()).await?;
        ensure!(
            list.items.iter().any(|e| {
                e.involved_object.name.as_deref() == Some("three")
                    && e.reason.as_deref() == Some("PoolExhausted")
                    && e.type_.as_deref() == Some("Warning")
            }),
            "no PoolExhausted Warning Event on Service three yet"
        );
        Ok(())
    })
    .await;
    wait_tcp(one, "tenant-a-one ping").await;
    wait_tcp(two, "tenant-a-two ping").await;

    // Deleting a Service releases its port; the waiting Service gets it.
    a.cluster.delete("Service", "default", "one").await.unwrap();
    let three = wait_ingress(a, "three").await;
    assert_eq!(three, one, "the released (address, port) is reused");
    wait_tcp(three, "tenant-a-three ping").await;
    wait_tcp(two, "tenant-a-two ping").await;
}

/// A NodePort Service with one port of `protocol`.
fn node_port_yaml(name: &str, protocol: &str, port: u16, node_port: u16) -> String {
    node_port_service("default", name, protocol, port, node_port, None)
}

/// GatewayClass `fleetgate`, Gateway `l4` with listeners `tcp` (TCP `tcp_port`) and `udp` (UDP
/// `udp_port`), a TCPRoute `db` -> Service db:5432 and a UDPRoute `dns` -> Service dns:53.
fn gateway_l4_yaml(tcp_port: u16, udp_port: u16) -> String {
    let listeners = format!(
        "{}{}",
        listener("tcp", "TCP", tcp_port, None),
        listener("udp", "UDP", udp_port, None)
    );
    format!(
        r#"{GATEWAY_CLASS}---
{}---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata:
  name: db
  namespace: default
spec:
  parentRefs:
  - name: l4
    sectionName: tcp
  rules:
  - backendRefs:
    - name: db
      port: 5432
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata:
  name: dns
  namespace: default
spec:
  parentRefs:
  - name: l4
    sectionName: udp
  rules:
  - backendRefs:
    - name: dns
      port: 53
"#,
        gateway("l4", &listeners)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_tcp_and_udp_listeners_serve_tcproutes_and_udproutes() {
    let lo: IpAddr = POOL_IP.parse().unwrap();
    let from = free_l4_range(lo, 3).expect("a free port range");
    let fleet = Fleet::start_with(&[TENANT_A], l4_config(from, 3))
        .await
        .expect("fleet starts");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.unwrap();
    let db_port = free_dual_port_in(node, 30000..=32767).unwrap();
    let dns_port = free_dual_port_in(node, 30000..=32767).unwrap();
    a.cluster
        .apply(&node_port_yaml("db", "TCP", 5432, db_port))
        .await
        .unwrap();
    a.cluster
        .apply(&node_port_yaml("dns", "UDP", 53, dns_port))
        .await
        .unwrap();
    let _db = L4Echo::tcp("tenant-a-db", SocketAddr::new(node, db_port))
        .await
        .unwrap();
    let _dns = L4Echo::udp("tenant-a-dns", SocketAddr::new(node, dns_port))
        .await
        .unwrap();
    a.cluster
        .apply(&gateway_l4_yaml(from + 1, from + 2))
        .await
        .expect("apply Gateway and routes");

    let tcp_addr = SocketAddr::new(lo, from + 1);
    let udp_addr = SocketAddr::new(lo, from + 2);
    wait_tcp(tcp_addr, "tenant-a-db ping").await;
    wait_udp(udp_addr, "tenant-a-dns ping").await;

    eventually(TIMEOUT, || async {
        let gw = a
            .cluster
            .get_json("Gateway", "default", "l4")
            .await?
            .context("Gateway l4")?;
        let st = &gw["status"];
        ensure!(
            st["addresses"][0]["value"] == POOL_IP,
            "addresses: {}",
            st["addresses"]
        );
        for (i, kind) in [(0, "TCPRoute"), (1, "UDPRoute")] {
            let l = &st["listeners"][i];
            let programmed = l["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Programmed"))
                .with_context(|| format!("listener {i}: {l}"))?;
            ensure!(programmed["status"] == "True", "listener {i}: {l}");
            ensure!(l["attachedRoutes"] == 1, "listener {i}: {l}");
            ensure!(l["supportedKinds"][0]["kind"] == kind, "listener {i}: {l}");
        }
        for kind in ["TCPRoute", "UDPRoute"] {
            let name = if kind == "TCPRoute" { "db" } else { "dns" };
            let r = a
                .cluster
                .get_json(kind, "default", name)
                .await?
                .with_context(|| format!("{kind} {name}"))?;
            let p = &r["status"]["parents"][0];
            ensure!(p["controllerName"] == "fleetgate.dev/hub", "{kind}: {p}");
            let accepted = p["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
                .with_context(|| format!("{kind}: {p}"))?;
            ensure!(accepted["status"] == "True", "{kind}: {p}");
        }
        Ok(())
    })
    .await;
}

/// Gateway `l4w` with one `protocol` (TCP or UDP) listener on `port` and a TCPRoute/UDPRoute
/// `split` whose backendRefs are Service `heavy` (weight `heavy`) and Service `light` (weight
/// `light`), both on port 5432.
fn weighted_l4_yaml(protocol: &str, port: u16, heavy: u32, light: u32) -> String {
    let kind = if protocol == "UDP" {
        "UDPRoute"
    } else {
        "TCPRoute"
    };
    format!(
        r#"{GATEWAY_CLASS}---
{}---
apiVersion: gateway.networking.k8s.io/v1
kind: {kind}
metadata:
  name: split
  namespace: default
spec:
  parentRefs:
  - name: l4w
  rules:
  - backendRefs:
    - name: heavy
      port: 5432
      weight: {heavy}
    - name: light
      port: 5432
      weight: {light}
"#,
        gateway("l4w", &listener("l4", protocol, port, None))
    )
}

/// Opens `n` TCP connections one after the other and counts the answers per backend name.
async fn tcp_spread(addr: SocketAddr, n: usize) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let answer = tcp_ask(addr, "ping").await?;
        let name = answer
            .strip_suffix(" ping")
            .with_context(|| format!("unexpected answer {answer:?}"))?;
        *seen.entry(name.to_string()).or_insert(0) += 1;
    }
    Ok(seen)
}

/// Sends `n` datagrams, each from a fresh socket (so a new Envoy UDP session), and counts the
/// answers per backend name.
async fn udp_spread(addr: SocketAddr, n: usize) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let answer = udp_ask(addr, "ping").await?;
        let name = answer
            .strip_suffix(" ping")
            .with_context(|| format!("unexpected answer {answer:?}"))?;
        *seen.entry(name.to_string()).or_insert(0) += 1;
    }
    Ok(seen)
}

/// NodePort Services `heavy` and `light` (port 5432, `protocol`) and their echo backends on
/// node `node`.
async fn heavy_and_light(t: &FleetTenant, node: IpAddr, protocol: &str) -> Vec<L4Echo> {
    let mut echoes = Vec::new();
    for name in ["heavy", "light"] {
        let node_port = free_dual_port_in(node, 30000..=32767).unwrap();
        t.cluster
            .apply(&node_port_yaml(name, protocol, 5432, node_port))
            .await
            .unwrap();
        let at = SocketAddr::new(node, node_port);
        let echo = match protocol {
            "UDP" => L4Echo::udp(name, at).await,
            _ => L4Echo::tcp(name, at).await,
        };
        echoes.push(echo.unwrap());
    }
    echoes
}

/// A fleet of tenant A with a one-port pool, node `node-1` and the `heavy`/`light` backends of
/// `protocol`; returns them with the pool's (address, port), where Gateway `l4w` is served.
async fn weights_fleet(protocol: &str) -> (Fleet, Vec<L4Echo>, SocketAddr) {
    let lo: IpAddr = POOL_IP.parse().unwrap();
    let from = free_l4_range(lo, 1).expect("a free port range");
    let fleet = Fleet::start_with(&[TENANT_A], l4_config(from, 1))
        .await
        .expect("fleet starts");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.unwrap();
    let echoes = heavy_and_light(a, node, protocol).await;
    (fleet, echoes, SocketAddr::new(lo, from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn udproute_zero_weight_backends_get_no_datagrams() {
    let (fleet, _echoes, addr) = weights_fleet("UDP").await;
    let (a, from) = (fleet.tenant("tenant-a"), addr.port());

    // 1/0: every session goes to heavy.
    a.cluster
        .apply(&weighted_l4_yaml("UDP", from, 1, 0))
        .await
        .unwrap();
    wait_udp(addr, "heavy ping").await;
    let seen = udp_spread(addr, 40).await.unwrap();
    assert_eq!(seen, BTreeMap::from([("heavy".to_string(), 40)]));

    // 1/1: both answer (sessions are balanced over the merged endpoints), which shows that the
    // zero weight was what kept light out.
    a.cluster
        .apply(&weighted_l4_yaml("UDP", from, 1, 1))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let seen = udp_spread(addr, 20).await?;
        ensure!(seen.len() == 2, "both backends answer: {seen:?}");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tcproute_backend_weights_split_connections() {
    let (fleet, _echoes, addr) = weights_fleet("TCP").await;
    let (a, from) = (fleet.tenant("tenant-a"), addr.port());

    // 80/20 over 200 connections: each side's count is binomial (mean 160/40, sd ~5.7); the
    // bands below are more than 5 sd wide on each side, so the test does not flake, yet a
    // split that ignored weights (100/100) or sent all to one side fails it.
    a.cluster
        .apply(&weighted_l4_yaml("TCP", from, 80, 20))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let seen = tcp_spread(addr, 40).await?;
        ensure!(seen.len() == 2, "both backends answer: {seen:?}");
        Ok(())
    })
    .await;
    let seen = tcp_spread(addr, 200).await.unwrap();
    let heavy = seen.get("heavy").copied().unwrap_or(0);
    let light = seen.get("light").copied().unwrap_or(0);
    assert_eq!(heavy + light, 200, "{seen:?}");
    assert!((125..=190).contains(&heavy), "80/20 split: {seen:?}");
    assert!((10..=75).contains(&light), "80/20 split: {seen:?}");

    // 100/0: a zero weight gets nothing at all.
    a.cluster
        .apply(&weighted_l4_yaml("TCP", from, 100, 0))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let seen = tcp_spread(addr, 20).await?;
        ensure!(seen.len() == 1, "only heavy answers: {seen:?}");
        Ok(())
    })
    .await;
    let seen = tcp_spread(addr, 100).await.unwrap();
    assert_eq!(seen, BTreeMap::from([("heavy".to_string(), 100)]));
}
