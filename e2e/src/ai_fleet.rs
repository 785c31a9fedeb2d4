//! A fleet with the agent gateway on: what every AI e2e test and benchmark starts with. The
//! hub gets an address pool (so hostname-less `agentgateway` Gateways are served on their own
//! addresses) and `dataPlane.aiGateways`, the agents claim GatewayClass `agentgateway`, and AI
//! gateway replicas follow the hub. Plus the waits those tests share: a Gateway's own address
//! once Programmed, and a condition on any object.
//!
//! Test support, outside the data path.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use serde_json::{Map, Value, json};

use crate::fixtures::condition;
use crate::own_address::{OwnAddresses, free_addresses, pools};
use crate::ports::free_addr;
use crate::{AiGateway, Fleet, FleetOptions, FleetTenant, TIMEOUT, eventually};

/// A running fleet with AI gateway replicas.
pub struct AiFleet {
    pub fleet: Fleet,
    /// The replicas, in the order of `dataPlane.aiGateways`.
    pub gateways: Vec<AiGateway>,
    /// The hub's address pool: where Gateways with hostname-less listeners are served.
    pub own_addresses: Vec<IpAddr>,
    /// Keeps `own_addresses` from being handed to a test running in parallel.
    _reserved: OwnAddresses,
}

impl AiFleet {
    /// Starts `tenants` (name, hostname pattern, CIDR) with `replicas` AI gateways and room for
    /// `own_addresses` Gateways on addresses of their own; `hub_extra` adds top-level keys to
    /// the hub's configuration (e.g. `quotas`).
    pub async fn start(
        tenants: &[(&str, &str, &str)],
        replicas: usize,
        own_addresses: usize,
        hub_extra: Map<String, Value>,
    ) -> anyhow::Result<Self> {
        let own = free_addresses(own_addresses, 8080);
        let addrs: Vec<SocketAddr> = (0..replicas)
            .map(|_| free_addr())
            .collect::<Result<_, _>>()?;
        let mut extra = pools(&own, 8000, 9000);
        let own_addresses = own.to_vec();
        extra.insert(
            "dataPlane".into(),
            json!({ "aiGateways": addrs.iter().map(ToString::to_string).collect::<Vec<_>>() }),
        );
        extra.extend(hub_extra);
        let fleet = Fleet::start_with_options(
            tenants,
            FleetOptions {
                hub_extra: extra,
                agent_args: vec!["--gateway-class".into(), "agentgateway".into()],
            },
        )
        .await?;
        let mut gateways = Vec::with_capacity(replicas);
        for (i, addr) in addrs.into_iter().enumerate() {
            let id = format!("r{}", i + 1);
            gateways.push(AiGateway::start(&fleet.dir, &id, addr, fleet.hub.xds_addr()).await?);
        }
        Ok(Self {
            fleet,
            gateways,
            own_addresses,
            _reserved: own,
        })
    }

    pub fn tenant(&self, name: &str) -> &FleetTenant {
        self.fleet.tenant(name)
    }
}

/// Waits until `kind ns/name` has condition `type_` = `status` (any reason) for its current
/// generation, at `pointer` (a JSON pointer to the conditions array); returns the object.
pub async fn wait_condition(
    t: &FleetTenant,
    kind: &str,
    ns: &str,
    name: &str,
    pointer: &str,
    type_: &str,
    status: &str,
) -> Value {
    eventually(TIMEOUT, || async {
        let o = t
            .cluster
            .get_json(kind, ns, name)
            .await?
            .with_context(|| format!("{kind} {ns}/{name} missing"))?;
        let conditions = o.pointer(pointer).cloned().unwrap_or(Value::Null);
        let c = condition(&conditions, type_)
            .with_context(|| format!("{kind} {name}: no {type_} in {}", o["status"]))?;
        ensure!(
            c["status"] == status && c["observedGeneration"] == o["metadata"]["generation"],
            "{kind} {name}: {type_} is {c}, want {status}"
        );
        Ok(o)
    })
    .await
}

/// Waits until AgentgatewayBackend `default/name` has ResolvedRefs=True for its generation;
/// returns the object.
pub async fn wait_backend_resolved(t: &FleetTenant, name: &str) -> Value {
    wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        name,
        "/status/conditions",
        "ResolvedRefs",
        "True",
    )
    .await
}

/// The KubeLB tutorial's Gateway `agentgateway-system/agentgateway-proxy` (port 8080) once
/// Programmed: where its routes are served.
pub async fn tutorial_gateway(t: &FleetTenant) -> std::net::SocketAddr {
    std::net::SocketAddr::new(
        programmed_address(t, "agentgateway-system", "agentgateway-proxy").await,
        8080,
    )
}

/// Waits until Gateway `ns/name` is Programmed; returns its (own) address.
pub async fn programmed_address(t: &FleetTenant, ns: &str, name: &str) -> IpAddr {
    let gw = wait_condition(
        t,
        "Gateway",
        ns,
        name,
        "/status/conditions",
        "Programmed",
        "True",
    )
    .await;
    gw["status"]["addresses"][0]["value"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{ns}/{name}: no address: {}", gw["status"]))
}
