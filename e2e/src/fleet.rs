//! A whole fleet for one test: one etcd, one tenant API server and agent per tenant, the hub,
//! and one Envoy, all on loopback.
//!
//! ```ignore
//! let fleet = Fleet::start(&[
//!     ("tenant-a", "*.a.example", "127.0.1.0/24"),
//!     ("tenant-b", "*.b.example", "127.0.2.0/24"),
//! ]).await.unwrap();
//! let a = fleet.tenant("tenant-a");
//! a.cluster.apply(GATEWAY_YAML).await.unwrap();
//! let (status, body) = fleet.get("app.a.example", "/").await.unwrap();
//! ```
//!
//! Each tenant has one cluster, named [`CLUSTER`], whose nodes the test plays: it creates Node
//! objects with an InternalIP in the tenant's range and binds echo backends there.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use crate::agent::Agent;
use crate::apiserver::{SecretRbac, TenantCluster};
use crate::echo::Echo;
use crate::envoy::Envoy;
use crate::etcd::Etcd;
use crate::hub::{Hub, HubCluster, HubTenant};
use crate::process::TestDir;
use crate::secrets::Secrets;

/// The name of every tenant's cluster that has an API server and an agent.
pub const CLUSTER: &str = "c1";

/// A second cluster every tenant has in the hub's config, with no API server and no agent: for
/// raw Sync clients ([`crate::sync_client`]) that must not disturb the real agent's stream.
pub const RAW_CLUSTER: &str = "raw";

/// (tenant name, hostname pattern it owns, CIDR of its cluster's endpoints).
pub type TenantSpec<'a> = (&'a str, &'a str, &'a str);

/// One tenant of a [`Fleet`].
#[derive(Debug)]
pub struct FleetTenant {
    pub name: String,
    pub hostname_pattern: String,
    pub cidr: String,
    pub cluster: TenantCluster,
    pub agent: Agent,
    /// More clusters of the same tenant, each with its own API server and agent
    /// ([`Fleet::start_multi_cluster`]); empty otherwise.
    pub more: Vec<FleetCluster>,
}

/// A further cluster of a tenant: its own API server and agent, the tenant's CIDR.
#[derive(Debug)]
pub struct FleetCluster {
    pub name: String,
    pub cluster: TenantCluster,
    pub agent: Agent,
}

impl FleetTenant {
    /// The n-th address of the tenant's range: `127.0.1.0/24`, 10 -> 127.0.1.10.
    pub fn ip(&self, n: u8) -> IpAddr {
        nth_ip(&self.cidr, n).expect("tenant CIDRs are IPv4 prefixes checked at start")
    }

    /// Plays a node: a Node `name` with InternalIP [`FleetTenant::ip`]`(n)`.
    pub async fn create_node(&self, name: &str, n: u8) -> anyhow::Result<IpAddr> {
        let ip = self.ip(n);
        self.cluster.create_node(name, &ip.to_string()).await?;
        Ok(ip)
    }

    /// A NodePort Service `service` in `default` (port 8080) with a nodePort that is free on
    /// `node_ip`, and an echo backend named `echo_name` listening on `node_ip:nodePort`, which is
    /// where a real kube-proxy would forward it.
    pub async fn node_port_backend(
        &self,
        service: &str,
        node_ip: IpAddr,
        echo_name: &str,
    ) -> anyhow::Result<Echo> {
        let node_port = crate::ports::free_port_in(node_ip, 30000..=32767)?;
        self.cluster
            .apply(&crate::objects::http_service("default", service, node_port))
            .await
            .with_context(|| format!("creating Service {service}"))?;
        Echo::start_at(echo_name, SocketAddr::new(node_ip, node_port)).await
    }
}

/// The current test's name (its thread's, without the module path), naming its fleet's folder.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("fleet")
        .rsplit("::")
        .next()
        .unwrap_or("fleet")
        .to_string()
}

/// The n-th address of an IPv4 prefix.
fn nth_ip(cidr: &str, n: u8) -> anyhow::Result<IpAddr> {
    let (base, len) = cidr
        .split_once('/')
        .with_context(|| format!("{cidr}: not a CIDR"))?;
    let base: std::net::Ipv4Addr = base.parse().with_context(|| format!("{cidr}: not IPv4"))?;
    let len: u32 = len
        .parse()
        .with_context(|| format!("{cidr}: bad prefix length"))?;
    anyhow::ensure!(len <= 24, "{cidr}: use a /24 or larger");
    Ok(IpAddr::V4(std::net::Ipv4Addr::from(
        u32::from(base) + u32::from(n),
    )))
}

/// How a fleet's agents get their identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identities {
    /// `fleetgate-hub ca issue` files (`--identity-dir`).
    Issued,
    /// A bootstrap token; the agent enrolls.
    Enrolled,
}

/// How a fleet's agents read TLS Secrets: the RBAC their user gets and the `--secrets` value they
/// start with (`None`: the built-in default, `cluster`).
#[derive(Debug, Clone, Copy)]
struct AgentSecrets<'a> {
    rbac: SecretRbac,
    flag: Option<&'a str>,
    /// Further agent flags ([`FleetOptions::agent_args`]).
    agent_args: &'a [String],
}

impl Default for AgentSecrets<'_> {
    fn default() -> Self {
        Self {
            rbac: SecretRbac::ClusterWide,
            flag: None,
            agent_args: &[],
        }
    }
}

/// The value of `storeEtcd` in a fleet's `hub_extra` that puts the hub's store on the fleet's
/// own etcd (under `/fleetgate-hub/`, beside the tenant API servers' prefixes) instead of a
/// file.
pub const ON_FLEET_ETCD: &str = "the fleet's etcd";

/// What a test may add to a fleet started with [`Fleet::start_with_options`].
#[derive(Debug, Default)]
pub struct FleetOptions {
    /// Top-level keys added to the hub's config file (see [`Hub::start_with`]).
    pub hub_extra: serde_json::Map<String, serde_json::Value>,
    /// Flags every tenant's agent starts with, after the harness's own.
    pub agent_args: Vec<String>,
}

/// Everything one test needs, stopped when dropped.
#[derive(Debug)]
pub struct Fleet {
    // Field order is drop order: agents and Envoy go before the hub, API servers before etcd,
    // and the test folder last.
    pub tenants: Vec<FleetTenant>,
    pub envoy: Envoy,
    pub hub: Hub,
    pub etcd: Etcd,
    pub dir: TestDir,
}

impl Fleet {
    /// Starts a fleet named after the current test thread.
    pub async fn start(tenants: &[TenantSpec<'_>]) -> anyhow::Result<Self> {
        let name = test_name();
        Self::start_named(&name, tenants).await
    }

    /// Starts a fleet whose folder is `target/e2e-logs/<name>-<random>`.
    pub async fn start_named(name: &str, tenants: &[TenantSpec<'_>]) -> anyhow::Result<Self> {
        Self::start_named_with(name, tenants, serde_json::Map::new()).await
    }

    /// Like [`Fleet::start`], with `hub_extra` top-level keys added to the hub's config file
    /// (see [`Hub::start_with`]).
    pub async fn start_with(
        tenants: &[TenantSpec<'_>],
        hub_extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Self> {
        let name = test_name();
        Self::start_named_with(&name, tenants, hub_extra).await
    }

    /// A fleet named after the current test thread, with `options`.
    pub async fn start_with_options(
        tenants: &[TenantSpec<'_>],
        options: FleetOptions,
    ) -> anyhow::Result<Self> {
        let name = test_name();
        Self::start_full(
            &name,
            tenants,
            &[],
            options.hub_extra,
            Identities::Issued,
            &[],
            AgentSecrets {
                agent_args: &options.agent_args,
                ..AgentSecrets::default()
            },
        )
        .await
    }

    /// [`Fleet::start_named`] with extra hub config keys.
    pub async fn start_named_with(
        name: &str,
        tenants: &[TenantSpec<'_>],
        hub_extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Self> {
        Self::start_full(
            name,
            tenants,
            &[],
            hub_extra,
            Identities::Issued,
            &[],
            AgentSecrets::default(),
        )
        .await
    }

    /// Like [`Fleet::start`], but every agent starts with only a bootstrap token
    /// (`fleetgate-hub token create`) and enrolls itself ([`Agent::start_enrolling`]), keeping
    /// its identity in a Secret of its cluster.
    pub async fn start_enrolled(
        tenants: &[TenantSpec<'_>],
        hub_extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Self> {
        let name = test_name();
        Self::start_full(
            &name,
            tenants,
            &[],
            hub_extra,
            Identities::Enrolled,
            &[],
            AgentSecrets::default(),
        )
        .await
    }

    /// Like [`Fleet::start`], but each tenant cluster gets the Secret RBAC `rbac` and each agent
    /// starts with `--secrets <flag>`.
    pub async fn start_with_agent_secrets(
        tenants: &[TenantSpec<'_>],
        rbac: SecretRbac,
        flag: &str,
    ) -> anyhow::Result<Self> {
        let name = test_name();
        Self::start_full(
            &name,
            tenants,
            &[],
            serde_json::Map::new(),
            Identities::Issued,
            &[],
            AgentSecrets {
                rbac,
                flag: Some(flag),
                agent_args: &[],
            },
        )
        .await
    }

    /// Like [`Fleet::start_named`], and every tenant also has the clusters `more` (each with its
    /// own API server and agent, in [`FleetTenant::more`]), registered at the hub as further
    /// clusters of the SAME tenant.
    pub async fn start_multi_cluster(
        name: &str,
        tenants: &[TenantSpec<'_>],
        more: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_full(
            name,
            tenants,
            more,
            serde_json::Map::new(),
            Identities::Issued,
            &[],
            AgentSecrets::default(),
        )
        .await
    }

    /// Like [`Fleet::start_named`], and the data plane also publishes the plaintext HTTP ports
    /// `http_ports` (reach them with [`Fleet::get_on`]).
    pub async fn start_named_with_http_ports(
        name: &str,
        tenants: &[TenantSpec<'_>],
        http_ports: &[u16],
    ) -> anyhow::Result<Self> {
        Self::start_full(
            name,
            tenants,
            &[],
            serde_json::Map::new(),
            Identities::Issued,
            http_ports,
            AgentSecrets::default(),
        )
        .await
    }

    async fn start_full(
        name: &str,
        tenants: &[TenantSpec<'_>],
        more: &[&str],
        hub_extra: serde_json::Map<String, serde_json::Value>,
        identities: Identities,
        http_ports: &[u16],
        secrets: AgentSecrets<'_>,
    ) -> anyhow::Result<Self> {
        for (_, _, cidr) in tenants {
            nth_ip(cidr, 0)?;
        }
        let dir = TestDir::new(name)?;
        let etcd = Etcd::start(&dir).await?;
        let clusters = futures::future::try_join_all(
            tenants
                .iter()
                .map(|(tenant, _, _)| TenantCluster::start_with_rbac(tenant, &etcd, secrets.rbac)),
        )
        .await?;
        let hub_tenants: Vec<HubTenant> = tenants
            .iter()
            .map(|(tenant, pattern, cidr)| HubTenant {
                name: tenant.to_string(),
                hostnames: vec![pattern.to_string()],
                clusters: [CLUSTER, RAW_CLUSTER]
                    .into_iter()
                    .chain(more.iter().copied())
                    .map(|name| HubCluster {
                        name: name.to_string(),
                        endpoint_cidrs: vec![cidr.to_string()],
                    })
                    .collect(),
            })
            .collect();
        // The hub is told where Envoy's admin interface listens, as docs/limits.md asks of an
        // operator, so that it reserves that address.
        let envoy_admin = crate::ports::free_addr()?;
        let mut hub_extra = hub_extra;
        if hub_extra.get("storeEtcd") == Some(&ON_FLEET_ETCD.into()) {
            hub_extra.insert(
                "storeEtcd".into(),
                serde_json::json!({"endpoints": [etcd.url()], "prefix": "/fleetgate-hub/"}),
            );
            hub_extra.insert("storePath".into(), serde_json::Value::Null);
        }
        let data_plane = hub_extra
            .entry("dataPlane")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(dp) = data_plane.as_object_mut() {
            dp.entry("admin")
                .or_insert_with(|| envoy_admin.to_string().into());
        }
        let hub = Hub::start_with_ports(&dir, &hub_tenants, hub_extra, http_ports).await?;
        let mut envoy = Envoy::start_with_admin(&dir, 0, hub.xds_addr(), envoy_admin).await?;
        let mut fleet_tenants = Vec::new();
        for ((tenant, pattern, cidr), cluster) in tenants.iter().zip(clusters) {
            let agent = match identities {
                Identities::Issued => Agent::start_with_args(
                    &dir,
                    &hub,
                    tenant,
                    CLUSTER,
                    cluster.agent_kubeconfig(),
                    &secrets
                        .flag
                        .map(|f| vec!["--secrets".to_string(), f.to_string()])
                        .unwrap_or_default()
                        .into_iter()
                        .chain(secrets.agent_args.iter().cloned())
                        .collect::<Vec<_>>(),
                )?,
                Identities::Enrolled => Agent::start_enrolling(
                    &dir,
                    &hub,
                    &format!("{tenant}-{CLUSTER}"),
                    tenant,
                    CLUSTER,
                    cluster.agent_kubeconfig(),
                    &hub.create_token(tenant, CLUSTER)?,
                    None,
                )?,
            };
            let mut others = Vec::new();
            for c in more {
                let cluster = TenantCluster::start(&format!("{tenant}-{c}"), &etcd).await?;
                let agent = Agent::start(&dir, &hub, tenant, c, cluster.agent_kubeconfig())?;
                others.push(FleetCluster {
                    name: c.to_string(),
                    cluster,
                    agent,
                });
            }
            fleet_tenants.push(FleetTenant {
                name: tenant.to_string(),
                hostname_pattern: pattern.to_string(),
                cidr: cidr.to_string(),
                cluster,
                agent,
                more: others,
            });
        }
        envoy.wait_live(Duration::from_secs(60)).await?;
        Ok(Self {
            tenants: fleet_tenants,
            envoy,
            hub,
            etcd,
            dir,
        })
    }

    /// A tenant by name; panics if the fleet has no such tenant (a bug in the test).
    pub fn tenant(&self, name: &str) -> &FleetTenant {
        self.tenants
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("the fleet has no tenant {name}"))
    }

    /// Like [`Fleet::tenant`], mutable (to kill or restart its agent).
    pub fn tenant_mut(&mut self, name: &str) -> &mut FleetTenant {
        self.tenants
            .iter_mut()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("the fleet has no tenant {name}"))
    }

    /// Envoy's data-plane listener for Gateway listeners on port 80.
    pub fn data_plane(&self) -> SocketAddr {
        self.hub.data_plane_addr()
    }

    /// `GET http://<data plane><path>` with `Host: <host>`; (status, body).
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        crate::http::get(self.data_plane(), host, path, &[]).await
    }

    /// `GET http://<data plane port `port`><path>` with `Host: <host>`; (status, body). The port
    /// must be one given to [`Fleet::start_named_with_http_ports`].
    pub async fn get_on(&self, port: u16, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let addr = self
            .hub
            .data_plane_port_addr(port)
            .with_context(|| format!("the data plane publishes no extra port {port}"))?;
        crate::http::get(addr, host, path, &[]).await
    }

    /// Fails with the tail of every product log if the hub, Envoy or an agent has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.hub.process().ensure_running()?;
        self.envoy.process().ensure_running()?;
        for t in &mut self.tenants {
            t.agent.process().ensure_running()?;
            for c in &mut t.more {
                c.agent.process().ensure_running()?;
            }
        }
        Ok(())
    }

    /// Panics if any log of this fleet's folder (hub, agents, Envoy, API servers, etcd) holds a
    /// secret: `more`, every key file of the folder (the hub's CA, server, store and token keys,
    /// agent identities, API server keys) and the bootstrap tokens of its enrolled agents.
    pub fn assert_no_secrets_in_logs(&self, mut more: Secrets) {
        more.add_key_files(self.dir.path())
            .expect("reading the fleet's key files");
        for t in &self.tenants {
            let agents = std::iter::once(&t.agent).chain(t.more.iter().map(|c| &c.agent));
            for token in agents.filter_map(|a| a.bootstrap_token()) {
                more.add(&format!("a bootstrap token of {}", t.name), token);
            }
        }
        more.assert_not_in_logs(self.dir.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_ip_counts_inside_the_prefix() {
        for (cidr, n, want) in [
            ("127.0.1.0/24", 10, "127.0.1.10"),
            ("127.0.2.0/24", 11, "127.0.2.11"),
            ("10.0.0.0/16", 255, "10.0.0.255"),
        ] {
            assert_eq!(nth_ip(cidr, n).unwrap().to_string(), want, "{cidr} {n}");
        }
        assert!(nth_ip("127.0.1.0/30", 1).is_err());
        assert!(nth_ip("::1/128", 1).is_err());
    }
}
