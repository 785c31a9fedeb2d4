//! Gateways served on their own address (hub: `compile::own_address`): hub configuration with
//! address pools on loopback, the hostname-less Gateway and HTTPRoute (the shape of most
//! upstream conformance tests), and the Gateway's address read back from its status.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::objects::{GATEWAY_CLASS, gateway, http_route, listener, rule_to};
use crate::{FleetTenant, TIMEOUT, eventually};

/// Addresses 127.0.77.x reserved for this test's Envoy: each held by a socket bound with
/// `SO_REUSEPORT` and never listening, so that the Envoy (which binds its listeners with
/// `SO_REUSEPORT` too) can still listen there while every other probe ([`free_addresses`] in a
/// parallel test, or another process) sees the address taken. Dereferences to the addresses;
/// the reservation ends when it is dropped.
///
/// Without it, two tests started at once both found 127.0.77.1 free, both fleets' Envoys
/// bound it (`SO_REUSEPORT` lets them) and the kernel spread each client's connections over the
/// two fleets: MCP sessions of `mcp_federation.rs` hung or got 404 from the other fleet.
#[derive(Debug)]
pub struct OwnAddresses {
    ips: Vec<IpAddr>,
    _held: Vec<tokio::net::TcpSocket>,
}

impl std::ops::Deref for OwnAddresses {
    type Target = [IpAddr];
    fn deref(&self) -> &[IpAddr] {
        &self.ips
    }
}

/// Serializes the probe-then-reserve step of this process's tests.
static RESERVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `n` distinct addresses 127.0.77.x on which `port` is free now (other tests and engineers may
/// use loopback too), reserved until the answer is dropped (see [`OwnAddresses`]).
pub fn free_addresses(n: usize, port: u16) -> OwnAddresses {
    let _one = RESERVING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ips = Vec::new();
    let mut held = Vec::new();
    for x in 1..=254u8 {
        if ips.len() == n {
            break;
        }
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 77, x)), port);
        // A plain bind fails on any holder: a listening Envoy or another test's reservation.
        if TcpListener::bind(addr).is_err() {
            continue;
        }
        if let Ok(s) = reserve(addr) {
            ips.push(addr.ip());
            held.push(s);
        }
    }
    assert_eq!(ips.len(), n, "no {n} addresses with port {port} free");
    OwnAddresses { ips, _held: held }
}

fn reserve(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.set_reuseport(true)?;
    s.bind(addr)?;
    Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tests starting at once get different addresses, and the Envoy of each can still
    /// listen on its own (it binds with `SO_REUSEPORT`); a dropped reservation frees it.
    #[tokio::test]
    async fn reserved_addresses_are_not_handed_out_twice_yet_stay_bindable_for_envoy() {
        let port = 18080;
        let first = free_addresses(1, port);
        let second = free_addresses(1, port);
        assert_ne!(first[0], second[0], "two reservations share an address");
        let envoy_like = reserve(SocketAddr::new(first[0], port)).expect("Envoy can bind it");
        let listening = envoy_like.listen(16).expect("and listen there");
        let again = first[0];
        drop((first, listening));
        assert!(TcpListener::bind(SocketAddr::new(again, port)).is_ok());
    }
}
