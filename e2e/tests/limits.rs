//! Per-tenant quotas and data-plane limits end to end on real components (kube-apiservers,
//! agents, hub, Envoy): a tenant past its request rate gets 429 while another tenant keeps 200;
//! Envoy refuses oversized request headers with 431; a tenant over its route quota sees the
//! excess HTTPRoute rejected in its status while its older routes keep serving; a tenant's L4
//! listener refuses connections past its limit while another tenant's does not.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    TENANT_A, TENANT_B, class_and_http_gateway, condition, simple_http_route,
};
use fleetgate_e2e::http::send;
use fleetgate_e2e::tcp_echo::{L4Echo, free_dual_port_in, free_l4_range};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A node, the Gateway and Service `app` with its echo backend in tenant `t`.
async fn setup(t: &FleetTenant) -> Echo {
    let node = t.create_node("node-1", 10).await.expect("node");
    t.cluster
        .apply(&class_and_http_gateway(None))
        .await
        .expect("apply Gateway");
    t.node_port_backend("app", node, &format!("{}-app", t.name))
        .await
        .expect("backend")
}

async fn wait_200(fleet: &Fleet, host: &str) {
    eventually(TIMEOUT, || async {
        let r = send(fleet.data_plane(), "GET", host, "/", &[]).await?;
        ensure!(r.status == 200, "{host}: {} {:?}", r.status, r.body);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn request_rate_limit_is_per_tenant_and_oversized_headers_get_431() {
    let quotas = json!({
        "tenants": {"tenant-a": {"requestsPerSecond": 1, "requestBurst": 2}}
    });
    let fleet = Fleet::start_with(
        &[TENANT_A, TENANT_B],
        [("quotas".to_string(), quotas)].into_iter().collect(),
    )
    .await
    .expect("fleet");
    let (a, b) = (fleet.tenant("tenant-a"), fleet.tenant("tenant-b"));
    let _echo_a = setup(a).await;
    let _echo_b = setup(b).await;
    a.cluster
        .apply(&simple_http_route("r", "app.a.example", "app"))
        .await
        .unwrap();
    b.cluster
        .apply(&simple_http_route("r", "app.b.example", "app"))
        .await
        .unwrap();
    wait_200(&fleet, "app.b.example").await;
    wait_200(&fleet, "app.a.example").await;

    // A burst of 10: tenant a (1/s, burst 2) is cut off with 429; tenant b is not.
    let mut a_statuses = Vec::new();
    let mut b_statuses = Vec::new();
    for _ in 0..10 {
        a_statuses.push(
            send(fleet.data_plane(), "GET", "app.a.example", "/", &[])
                .await
                .unwrap()
                .status,
        );
        b_statuses.push(
            send(fleet.data_plane(), "GET", "app.b.example", "/", &[])
                .await
                .unwrap()
                .status,
        );
    }
    assert!(
        a_statuses.iter().filter(|s| **s == 429).count() >= 5,
        "tenant a: {a_statuses:?}"
    );
    assert!(
        a_statuses.iter().all(|s| *s == 200 || *s == 429),
        "tenant a: {a_statuses:?}"
    );
    assert!(
        b_statuses.iter().all(|s| *s == 200),
        "tenant b: {b_statuses:?}"
    );

    // Edge hardening: request headers over 60 KiB, or more than 100 of them, get 431.
    let big = "x".repeat(70 * 1024);
    let r = send(
        fleet.data_plane(),
        "GET",
        "app.b.example",
        "/",
        &[("x-big", big.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 431, "oversized headers: {:?}", r.body);
    let names: Vec<String> = (0..120).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = send(fleet.data_plane(), "GET", "app.b.example", "/", &many)
        .await
        .unwrap();
    assert_eq!(r.status, 431, "too many headers: {:?}", r.body);
    // Headers with underscores are refused (they could be confused with dashes upstream).
    let r = send(
        fleet.data_plane(),
        "GET",
        "app.b.example",
        "/",
        &[("x_forwarded_user", "admin")],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "underscore header: {:?}", r.body);
    // Tenant b still answers normally.
    wait_200(&fleet, "app.b.example").await;
}

#[tokio::test]
async fn routes_over_quota_are_rejected_in_status_and_older_ones_keep_serving() {
    let quotas = json!({"tenants": {"tenant-a": {"routes": 2}}});
    let fleet = Fleet::start_with(
        &[TENANT_A],
        [("quotas".to_string(), quotas)].into_iter().collect(),
    )
    .await
    .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let _echo = setup(a).await;
    a.cluster
        .apply(&simple_http_route("r1", "r1.a.example", "app"))
        .await
        .unwrap();
    wait_200(&fleet, "r1.a.example").await;
    a.cluster
        .apply(&simple_http_route("r2", "r2.a.example", "app"))
        .await
        .unwrap();
    wait_200(&fleet, "r2.a.example").await;

    // The third route is one over the quota: rejected alone, with the quota in its status.
    a.cluster
        .apply(&simple_http_route("r3", "r3.a.example", "app"))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let r3 = a
            .cluster
            .get_json("HTTPRoute", "default", "r3")
            .await?
            .context("HTTPRoute r3")?;
        let parent = &r3["status"]["parents"][0];
        let accepted = condition(&parent["conditions"], "Accepted").context("Accepted on r3")?;
        ensure!(
            accepted["status"] == "False" && accepted["reason"] == "QuotaExceeded",
            "{accepted}"
        );
        let msg = accepted["message"].as_str().unwrap_or_default();
        ensure!(
            msg.contains("at most 2 routes") && msg.contains("quotas.tenants.tenant-a.routes"),
            "{msg}"
        );
        Ok(())
    })
    .await;
    for host in ["r1.a.example", "r2.a.example"] {
        let r = send(fleet.data_plane(), "GET", host, "/", &[])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{host}: {:?}", r.body);
    }
    let r = send(fleet.data_plane(), "GET", "r3.a.example", "/", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404, "r3 is not served");

    // Deleting r1 makes room: r3 gets in without being touched, r2 keeps serving.
    a.cluster
        .delete("HTTPRoute", "default", "r1")
        .await
        .unwrap();
    wait_200(&fleet, "r3.a.example").await;
    let r = send(fleet.data_plane(), "GET", "r2.a.example", "/", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

/// A LoadBalancer Service `db` (TCP, port `port`) of tenant `t` with its echo backend; returns
/// the allocated address once the Service's status has it.
async fn tcp_load_balancer(t: &FleetTenant, port: u16) -> (L4Echo, SocketAddr) {
    let node = t.create_node("node-1", 10).await.expect("node");
    let node_port = free_dual_port_in(node, 30000..=32767).expect("free nodePort");
    t.cluster
        .apply(&format!(
            r#"apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: default
spec:
  type: LoadBalancer
  loadBalancerClass: fleetgate.dev/hub
  selector:
    app: db
  ports:
  - name: p
    protocol: TCP
    port: {port}
    targetPort: {port}
    nodePort: {node_port}
"#
        ))
        .await
        .expect("apply Service");
    let echo = L4Echo::tcp(&format!("{}-db", t.name), SocketAddr::new(node, node_port))
        .await
        .expect("echo");
    let addr = eventually(TIMEOUT, || async {
        let svc = t
            .cluster
            .get_json("Service", "default", "db")
            .await?
            .context("Service db")?;
        let i = &svc["status"]["loadBalancer"]["ingress"][0];
        let ip: IpAddr = i["ip"].as_str().context("no ingress yet")?.parse()?;
        let port = u16::try_from(i["ports"][0]["port"].as_u64().context("no port")?)?;
        Ok(SocketAddr::new(ip, port))
    })
    .await;
    (echo, addr)
}

/// An open connection that answered one line.
async fn connect_and_ask(addr: SocketAddr) -> anyhow::Result<BufReader<TcpStream>> {
    let mut s = BufReader::new(TcpStream::connect(addr).await?);
    s.get_mut().write_all(b"ping\n").await?;
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut line)).await??;
    ensure!(!line.is_empty(), "{addr} closed the connection");
    Ok(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_limit_is_per_tenant_listener() {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let from = free_l4_range(lo, 4).expect("free port range");
    let config = json!({
        "addressPools": [{"name": "loopback", "addresses": ["127.0.0.1"]}],
        "l4PortRange": {"from": from, "to": from + 3},
        "quotas": {"tenants": {"tenant-a": {"connectionsPerListener": 2}}},
    });
    let fleet = Fleet::start_with(&[TENANT_A, TENANT_B], config.as_object().cloned().unwrap())
        .await
        .expect("fleet");
    let (a, b) = (fleet.tenant("tenant-a"), fleet.tenant("tenant-b"));
    let (_a_echo, a_addr) = tcp_load_balancer(a, from).await;
    let (_b_echo, b_addr) = tcp_load_balancer(b, from + 1).await;
    let first = eventually(TIMEOUT, || connect_and_ask(a_addr)).await;
    let second = connect_and_ask(a_addr).await.expect("second connection");
    // The third concurrent connection to tenant a's listener is closed by Envoy.
    assert!(
        connect_and_ask(a_addr).await.is_err(),
        "a third connection to tenant a's listener must be refused"
    );
    // Tenant b's listener is not limited by tenant a's connections.
    let b_conns = eventually(TIMEOUT, || async {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(connect_and_ask(b_addr).await?);
        }
        Ok(v)
    })
    .await;
    assert_eq!(b_conns.len(), 3);
    // Closing one of tenant a's connections makes room again.
    drop(first);
    let third = eventually(TIMEOUT, || connect_and_ask(a_addr)).await;
    drop((second, third));
}
