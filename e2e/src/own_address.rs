//! Gateways served on their own address (hub: `compile::own_address`): hub configuration with
//! address pools on loopback, the hostname-less Gateway and HTTPRoute (the shape of most
//! upstream conformance tests), and the Gateway's address read back from its status.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::objects::{GATEWAY_CLASS, gateway, http_route, listener, rule_to};
use crate::{FleetTenant, TIMEOUT, eventually};

/// `n` distinct addresses 127.0.77.x on which `port` is free now (other tests and engineers may
/// use loopback too).
pub fn free_addresses(n: usize, port: u16) -> Vec<IpAddr> {
    let found: Vec<IpAddr> = (1..=254u8)
        .map(|x| IpAddr::V4(Ipv4Addr::new(127, 0, 77, x)))
        .filter(|ip| TcpListener::bind(SocketAddr::new(*ip, port)).is_ok())
        .take(n)
        .collect();
    assert_eq!(found.len(), n, "no {n} addresses with port {port} free");
    found
}

/// Hub config keys: one pool of `addresses`, ports `from..=to`.
pub fn pools(addresses: &[IpAddr], from: u16, to: u16) -> serde_json::Map<String, Value> {
    let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    json!({
        "addressPools": [{"name": "own", "addresses": addresses}],
        "l4PortRange": {"from": from, "to": to},
    })
    .as_object()
    .cloned()
    .expect("an object")
}

/// GatewayClass `fleetgate`, Gateway `name` with one HTTP listener on `port` without hostname,
/// and HTTPRoute `name` without hostnames sending everything to Service `svc` port 8080.
pub fn open_gateway_and_route(name: &str, port: u16, svc: &str) -> String {
    format!(
        "{GATEWAY_CLASS}---\n{}---\n{}",
        gateway(name, &listener("http", "HTTP", port, None)),
        http_route(
            "default",
            name,
            &[&format!("{{name: {name}}}")],
            &[],
            &rule_to(None, &[(svc, 1)])
        )
    )
}

/// Waits until Gateway `default/name` reports exactly one address, and returns it.
pub async fn gateway_address(t: &FleetTenant, name: &str) -> IpAddr {
    eventually(TIMEOUT, || async {
        let gw = t
            .cluster
            .get_json("Gateway", "default", name)
            .await?
            .with_context(|| format!("Gateway {name}"))?;
        let a = gw["status"]["addresses"]
            .as_array()
            .with_context(|| format!("no addresses yet: {}", gw["status"]))?;
        ensure!(a.len() == 1, "addresses: {a:?}");
        ensure!(a[0]["type"] == "IPAddress", "addresses: {a:?}");
        let ip: IpAddr = a[0]["value"].as_str().context("value")?.parse()?;
        Ok(ip)
    })
    .await
}

/// Waits until `GET /` to `addr` with `Host: host` answers 200 `body`.
pub async fn wait_served_at(addr: SocketAddr, host: &str, body: &str) {
    eventually(TIMEOUT, || async {
        let (status, got) = crate::http::get(addr, host, "/", &[]).await?;
        ensure!(
            status == 200 && got == body,
            "{addr} Host {host}: {status} {got:?} (want 200 {body:?})"
        );
        Ok(())
    })
    .await
}
