//! The shared data plane as the operator configured it: its published ports and the address
//! pools of L4 load balancing. Read from the hub's configuration file (`fleetgate-hub`'s
//! `config`) and handed to the compiler (`fleetgate-hub-compile`) and to allocation
//! (`crate::allocate`) as these plain types, so that neither reads the configuration file.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// The validated data plane: the address tenants are told to use and its published ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlane {
    pub address: IpAddr,
    pub listeners: Vec<DataPlaneListener>,
    /// `dataPlane.aiGateways`: where Envoy reaches the AI gateway replicas (the endpoints of
    /// [`crate::ai::AI_GATEWAY_CLUSTER`]). Empty: no AI gateway, and routes to AI backends get
    /// 500 with a condition saying so.
    pub ai_gateways: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataPlaneListener {
    /// The port tenants write in their Gateway listeners (e.g. 80).
    pub port: u16,
    /// Where Envoy binds for it (e.g. 0.0.0.0:80, or 127.0.0.1:18080 in tests).
    pub bind: SocketAddr,
    /// What the port serves; `HTTP` when omitted. One data-plane port serves one protocol.
    #[serde(default)]
    pub protocol: DataPlaneProtocol,
}

/// What one data-plane port serves.
///
/// `HTTP`: plaintext HTTP; tenant listeners of protocol HTTP attach to it.
/// `TLS`: TLS connections dispatched by SNI (one Envoy filter chain per hostname); tenant
/// listeners of protocol HTTPS (terminated by the data plane with the tenant's certificate) and
/// TLS (passthrough to the tenant's backends) attach to it, side by side, so that port 443 can
/// carry both. Plaintext HTTP and TLS cannot share a port: a listener whose protocol does not fit
/// its port's is reported `Accepted=False` (`UnsupportedProtocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DataPlaneProtocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "TLS", alias = "HTTPS")]
    Tls,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

/// A validated address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    pub name: String,
    /// Every address of the pool, in the order written (CIDRs expanded to their hosts).
    pub addresses: Vec<IpAddr>,
    pub bind: Option<IpAddr>,
}

/// L4 load balancing settings; no pools means Services of type LoadBalancer get no address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L4Config {
    pub pools: Vec<AddressPool>,
    pub port_range: Option<PortRange>,
}

impl L4Config {
    /// Where the data plane binds for an allocated address.
    pub fn bind_ip(&self, advertised: IpAddr) -> IpAddr {
        self.pools
            .iter()
            .find(|p| p.addresses.contains(&advertised))
            .and_then(|p| p.bind)
            .unwrap_or(advertised)
    }
}
