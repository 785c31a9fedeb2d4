//! The hub's configuration file (YAML): tenants, their clusters, the data plane.
//!
//! `RawConfig` is what serde reads; `RawConfig::validate` turns it into the typed `Config` the
//! rest of the hub uses, or a list of errors each naming the field to change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

pub mod admin_oidc;
mod identity;
pub use admin_oidc::{AdminOidc, RawAdminOidc, RawOidcRoles};
pub use fleetgate_hub_model::data_plane::{
    AddressPool, DataPlane, DataPlaneListener, DataPlaneProtocol, L4Config, PortRange,
};
use fleetgate_hub_model::policy::is_dns_label;
pub use fleetgate_hub_model::policy::{Cluster, Limits, Tenant, is_hostname_pattern};
pub use identity::{IdentityConfig, RawIdentityConfig, Registration};

/// An error in the configuration file: where, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid YAML or has unknown/mistyped fields.
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    /// The file parsed but its values do not make sense together.
    #[error("config file is invalid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// gRPC listen address for agents, e.g. 0.0.0.0:7443.
    pub agent_listen: SocketAddr,
    /// The data-plane gRPC listen address: xDS (ADS) for Envoy and the AI gateways' config
    /// stream (which carries provider keys, as xDS carries TLS keys). Plaintext; bind it to
    /// loopback or a private network.
    pub xds_listen: SocketAddr,
    /// The operator's HTTP port: Prometheus metrics (`/metrics`) and health (`/healthz`,
    /// `/readyz`). Never a tenant's: reserved like the hub's other listeners. Off when unset.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Dashboard login through an OpenID Connect provider (`config/admin_oidc.rs`); operator
    /// tokens work with or without it.
    #[serde(default)]
    pub admin_oidc: Option<RawAdminOidc>,
    /// Directory holding the hub CA (`ca.crt`, `ca.key`) and the hub's serving cert.
    pub pki_dir: PathBuf,
    /// The durable store file (the embedded store). Empty when `storeEtcd` is set.
    #[serde(default)]
    pub store_path: PathBuf,
    /// The store on etcd instead of a file, shared by every hub replica given the same
    /// endpoints and prefix (docs/operations.md, "Several hubs on etcd").
    #[serde(default)]
    pub store_etcd: Option<EtcdStore>,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    pub data_plane: RawDataPlane,
    #[serde(default)]
    pub tenants: Vec<RawTenant>,
    #[serde(default)]
    pub limits: Limits,
    /// Addresses the hub allocates to tenants' L4 load balancers (Services of type
    /// LoadBalancer), tried in order.
    #[serde(default)]
    pub address_pools: Vec<RawAddressPool>,
    /// Ports the hub allocates on those addresses; required with `addressPools`.
    #[serde(default)]
    pub l4_port_range: Option<PortRange>,
    /// How long the data plane keeps serving a cluster whose agent disconnected, e.g. `1h`,
    /// `30m`, `90s`; `0` keeps it forever. Default `1h`. See `crate::grace`.
    #[serde(default)]
    pub disconnected_cluster_grace_period: Option<String>,
    /// Rotation of the secrets the tenants' MCP session keys are derived from
    /// (`crate::session_secret`).
    #[serde(default)]
    pub mcp_session_keys: RawMcpSessionKeys,
    /// Per-tenant quotas and data-plane limits (`crate::quotas`).
    #[serde(default)]
    pub quotas: crate::quotas::RawQuotas,
    /// Agent certificates (see `config/identity.rs`).
    #[serde(default)]
    pub identity: RawIdentityConfig,
    /// Addresses or networks no tenant endpoint may lead to, on any port, besides the ones the
    /// hub finds itself (its listeners, the data plane's, this host's interfaces): NAT and
    /// load-balancer addresses in front of the hub or Envoy, Envoy hosts other than this one.
    #[serde(default)]
    pub reserved_addresses: Vec<IpNet>,
}

/// `mcpSessionKeys`: durations like `disconnectedClusterGracePeriod`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMcpSessionKeys {
    /// How often a new secret replaces the current one; `0` never. Default `24h`.
    #[serde(default)]
    pub rotate_every: Option<String>,
    /// How long session ids sealed under the replaced secret still open; `0`: not at all.
    /// Default `24h`.
    #[serde(default)]
    pub grace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAddressPool {
    pub name: String,
    /// CIDRs (`192.0.2.0/28`) or single IPs (`192.0.2.7`).
    pub addresses: Vec<String>,
    /// Where the data plane binds for this pool's addresses, when it differs from the address
    /// tenants are told (e.g. NAT); only for a pool of exactly one address.
    #[serde(default)]
    pub bind: Option<IpAddr>,
}

/// The most addresses one pool may hold (a /16), so that allocation stays cheap.
const MAX_POOL_ADDRESSES: u128 = 65_536;

/// Validates the L4 part of the file; errors name the field.
fn validate_l4(
    pools: Vec<RawAddressPool>,
    range: Option<PortRange>,
    errs: &mut Vec<String>,
) -> L4Config {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in pools {
        let mut addresses = Vec::new();
        for a in &p.addresses {
            if let Ok(ip) = a.parse::<IpAddr>() {
                addresses.push(ip);
            } else if let Ok(net) = a.parse::<IpNet>() {
                let size: u128 = match net {
                    IpNet::V4(n) => 1u128 << (32 - u32::from(n.prefix_len())),
                    IpNet::V6(n) => 1u128
                        .checked_shl(128 - u32::from(n.prefix_len()))
                        .unwrap_or(u128::MAX),
                };
                if size > MAX_POOL_ADDRESSES {
                    errs.push(format!(
                        "addressPools[{}].addresses: {a} holds more than {MAX_POOL_ADDRESSES} addresses; use a smaller CIDR",
                        p.name
                    ));
                    continue;
                }
                addresses.extend(net.hosts());
            } else {
                errs.push(format!(
                    "addressPools[{}].addresses: {a:?} is neither an IP address nor a CIDR",
                    p.name
                ));
            }
        }
        for ip in &addresses {
            if !seen.insert(*ip) {
                errs.push(format!(
                    "addressPools[{}].addresses: {ip} is in more than one pool or listed twice",
                    p.name
                ));
            }
        }
        if addresses.is_empty() {
            errs.push(format!(
                "addressPools[{}].addresses: list at least one address",
                p.name
            ));
        }
        if p.bind.is_some() && addresses.len() != 1 {
            errs.push(format!(
                "addressPools[{}].bind: only a pool of exactly one address can override where the data plane binds",
                p.name
            ));
        }
        if !is_dns_label(&p.name) {
            errs.push(format!("addressPools[{}].name: use a DNS label", p.name));
        }
        out.push(AddressPool {
            name: p.name,
            addresses,
            bind: p.bind,
        });
    }
    match range {
        Some(r) if r.from == 0 || r.from > r.to => errs.push(format!(
            "l4PortRange: {{from: {}, to: {}}} must satisfy 1 <= from <= to",
            r.from, r.to
        )),
        None if !out.is_empty() => errs.push(
            "l4PortRange: set the ports ({from, to}) the hub may allocate on addressPools".into(),
        ),
        _ => {}
    }
    L4Config {
        pools: out,
        port_range: range,
    }
}

/// Default of `disconnectedClusterGracePeriod`.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(3600);

/// A duration of the hub config: one or more `<digits><unit>` parts, units `h`, `m`, `s`, each at
/// most once and in that order (`1h`, `1h30m`, `90s`), or `0`.
pub fn parse_config_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?}: use a duration such as 1h, 30m, 90s or 1h30m, or 0 for forever");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total: u64 = 0;
    let mut units = ["h", "m", "s"].iter().peekable();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 6 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = loop {
            let Some(u) = units.next() else {
                return Err(bad());
            };
            if rest.starts_with(*u) {
                break *u;
            }
        };
        rest = &rest[unit.len()..];
        total += n * match unit {
            "h" => 3600,
            "m" => 60,
            _ => 1,
        };
    }
    Ok(Duration::from_secs(total))
}

fn default_trust_domain() -> String {
    "fleetgate".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDataPlane {
    /// The address tenants are told to use (Gateway status.addresses).
    pub address: IpAddr,
    /// Ports the shared data plane publishes. A tenant listener attaches to the entry whose `port`
    /// equals its own port.
    pub listeners: Vec<DataPlaneListener>,
    /// Where the data plane's admin interface listens (loopback only), so that the hub never
    /// gives its port to a tenant; see docs/limits.md.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Where Envoy reaches fleetgate's AI gateway replicas (`fleetgate-ai-gateway --listen`):
    /// routes to AgentgatewayBackends go there. Empty: such routes get 500 with a condition
    /// saying an AI gateway is not configured. Reserved: never a tenant's endpoint.
    #[serde(default)]
    pub ai_gateways: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenant {
    pub name: String,
    /// Hostnames the tenant may use: exact (`app.a.example`) or wildcard (`*.a.example`).
    pub hostnames: Vec<String>,
    pub clusters: Vec<RawCluster>,
    /// Hosts outside the tenant's clusters that its AI backends (AgentgatewayBackends with an
    /// external host, e.g. `api.openai.com`) may reach: exact hostnames, `*.suffix` wildcards
    /// (the whole subtree) or IP literals. Empty (the default): none. Reloadable.
    #[serde(default)]
    pub egress: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    pub name: String,
    /// Networks the cluster's endpoints may be in.
    pub endpoint_cidrs: Vec<IpNet>,
    /// Allow loopback/link-local/unspecified addresses inside `endpointCidrs` (tests on loopback).
    #[serde(default)]
    pub allow_special_addresses: bool,
    /// `false`: the cluster's stream is closed, its certificates and renewals refused and its
    /// intent withdrawn from the data plane, as if removed, but its intent stays stored.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// The validated configuration.
/// `storeEtcd`: where the store lives when it is on etcd.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdStore {
    /// Client URLs of the etcd members, e.g. `http://10.0.0.5:2379`.
    pub endpoints: Vec<String>,
    /// Every key of the store starts with this; hubs with one prefix share one store.
    #[serde(default = "default_etcd_prefix")]
    pub prefix: String,
}

fn default_etcd_prefix() -> String {
    "/fleetgate/".into()
}

/// Exactly one of `storePath` and `storeEtcd`, and an etcd store the client can use.
fn check_store(path: &std::path::Path, etcd: Option<&EtcdStore>, errs: &mut Vec<String>) {
    let Some(etcd) = etcd else {
        if path.as_os_str().is_empty() {
            errs.push("storePath: set the store file (or storeEtcd for a store on etcd)".into());
        }
        return;
    };
    if !path.as_os_str().is_empty() {
        errs.push(
            "storePath and storeEtcd are both set: keep storePath for one hub with its own file, or storeEtcd for hubs sharing etcd".into(),
        );
    }
    if etcd.endpoints.is_empty() {
        errs.push("storeEtcd.endpoints: list etcd's client URLs, like http://10.0.0.5:2379".into());
    }
    for e in &etcd.endpoints {
        if e.starts_with("https://") {
            errs.push(format!(
                "storeEtcd.endpoints: {e:?}: TLS to etcd is not supported yet; reach etcd over loopback or a private network with http://"
            ));
        } else if !e.starts_with("http://") || e.len() == "http://".len() {
            errs.push(format!(
                "storeEtcd.endpoints: {e:?} is not a client URL like http://10.0.0.5:2379"
            ));
        }
    }
    if !etcd.prefix.starts_with('/') || !etcd.prefix.ends_with('/') || etcd.prefix.len() < 2 {
        errs.push(format!(
            "storeEtcd.prefix: {:?}: use a path like /fleetgate/ (starting and ending with '/')",
            etcd.prefix
        ));
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub agent_listen: SocketAddr,
    pub xds_listen: SocketAddr,
    /// `adminListen`: metrics and health, for the operator only.
    pub admin_listen: Option<SocketAddr>,
    /// `adminOidc`: dashboard login through an OpenID Connect provider.
    pub admin_oidc: Option<AdminOidc>,
    pub pki_dir: PathBuf,
    /// `storePath`; empty when the store is on etcd.
    pub store_path: PathBuf,
    /// `storeEtcd`: the store on etcd instead of `storePath`.
    pub store_etcd: Option<EtcdStore>,
    pub trust_domain: String,
    pub data_plane: DataPlane,
    pub tenants: BTreeMap<String, Tenant>,
    pub limits: Limits,
    pub l4: L4Config,
    /// `disconnectedClusterGracePeriod`; zero: never withdraw.
    pub disconnected_cluster_grace_period: Duration,
    /// `mcpSessionKeys`.
    pub mcp_session_keys: crate::session_secret::Rotation,
    /// Per-tenant quotas and data-plane limits.
    pub quotas: crate::quotas::Quotas,
    /// `dataPlane.admin`: never a tenant's listener, allocation or endpoint.
    pub data_plane_admin: Option<SocketAddr>,
    pub identity: IdentityConfig,
    /// See `RawConfig::reserved_addresses`; used through `admit::Reserved`.
    pub reserved_addresses: Vec<IpNet>,
}

impl Config {
    /// What this configuration reserves (`admit::Reserved`), on a host with the interface addresses `host`.
    pub fn reserved(&self, host: BTreeSet<IpAddr>) -> fleetgate_hub_admit::Reserved {
        let mut listeners: BTreeSet<SocketAddr> = [self.agent_listen, self.xds_listen].into();
        listeners.extend(self.admin_listen);
        listeners.extend(self.data_plane.listeners.iter().map(|l| l.bind));
        // The AI gateways trust the identity headers Envoy sets: no tenant endpoint may reach them.
        listeners.extend(self.data_plane.ai_gateways.iter().copied());
        // The data plane's admin port is never a tenant's, on any address of this host.
        if let Some(admin) = self.data_plane_admin {
            listeners.insert(admin);
            listeners.insert(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), admin.port()));
        }
        let mut networks: BTreeSet<IpNet> = self.reserved_addresses.iter().copied().collect();
        networks.insert(self.data_plane.address.into());
        for p in &self.l4.pools {
            networks.extend(p.addresses.iter().map(|a| IpNet::from(*a)));
            networks.extend(p.bind.map(IpNet::from));
        }
        fleetgate_hub_admit::Reserved {
            listeners,
            networks,
            host,
        }
    }
}

impl RawConfig {
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut errs = Vec::new();
        check_store(&self.store_path, self.store_etcd.as_ref(), &mut errs);
        if !is_dns_label(&self.trust_domain.replace('.', "-")) {
            errs.push(format!(
                "trustDomain {:?}: use lower-case letters, digits, '-' and '.'",
                self.trust_domain
            ));
        }
        if self.data_plane.listeners.is_empty() {
            errs.push("dataPlane.listeners: list at least one port the data plane serves".into());
        }
        let mut gateways = BTreeSet::new();
        for g in &self.data_plane.ai_gateways {
            if g.ip().is_unspecified() || g.port() == 0 {
                errs.push(format!(
                    "dataPlane.aiGateways: {g} is not an address Envoy can connect to; write the address and port the AI gateway listens on"
                ));
            }
            if !gateways.insert(*g) {
                errs.push(format!("dataPlane.aiGateways: {g} is listed twice"));
            }
            if self.data_plane.listeners.iter().any(|l| l.bind == *g) {
                errs.push(format!(
                    "dataPlane.aiGateways: {g} is also a data-plane listener's bind address; give the AI gateway its own port"
                ));
            }
        }
        let mut ports = std::collections::BTreeSet::new();
        for l in &self.data_plane.listeners {
            if !ports.insert(l.port) {
                errs.push(format!(
                    "dataPlane.listeners: port {} is listed twice",
                    l.port
                ));
            }
        }
        let grace = match &self.disconnected_cluster_grace_period {
            None => DEFAULT_GRACE_PERIOD,
            Some(s) => parse_config_duration(s).unwrap_or_else(|e| {
                errs.push(format!("disconnectedClusterGracePeriod {e}"));
                DEFAULT_GRACE_PERIOD
            }),
        };
        let defaults = crate::session_secret::DEFAULT_ROTATION;
        let mut duration = |field: &str, value: &Option<String>, default: Duration| match value {
            None => default,
            Some(s) => parse_config_duration(s).unwrap_or_else(|e| {
                errs.push(format!("mcpSessionKeys.{field} {e}"));
                default
            }),
        };
        let mcp_session_keys = crate::session_secret::Rotation {
            every: duration(
                "rotateEvery",
                &self.mcp_session_keys.rotate_every,
                defaults.every,
            ),
            grace: duration("grace", &self.mcp_session_keys.grace, defaults.grace),
        };
        let mut tenants = BTreeMap::new();
        let mut disabled = std::collections::BTreeSet::new();
        for t in self.tenants {
            if !is_dns_label(&t.name) {
                errs.push(format!(
                    "tenants[{}].name: use a DNS label (lower-case letters, digits, '-')",
                    t.name
                ));
            }
            for h in &t.hostnames {
                if !is_hostname_pattern(&h.to_ascii_lowercase()) {
                    errs.push(format!(
                        "tenants[{}].hostnames: {h:?} is not a hostname or *.wildcard",
                        t.name
                    ));
                }
            }
            let mut egress = Vec::new();
            for e in &t.egress {
                let e = e.to_ascii_lowercase();
                if crate::model::policy::is_egress_entry(&e) {
                    egress.push(e);
                } else {
                    errs.push(format!(
                        "tenants[{}].egress: {e:?} is not a hostname, *.wildcard or IP address (write api.openai.com, not a URL)",
                        t.name
                    ));
                }
            }
            let mut clusters = BTreeMap::new();
            for c in t.clusters {
                if !c.enabled {
                    disabled.insert(crate::model::ClusterKey {
                        tenant: t.name.clone(),
                        cluster: c.name.clone(),
                    });
                }
                if !is_dns_label(&c.name) {
                    errs.push(format!(
                        "tenants[{}].clusters[{}].name: use a DNS label",
                        t.name, c.name
                    ));
                }
                if c.endpoint_cidrs.is_empty() {
                    errs.push(format!(
                        "tenants[{}].clusters[{}].endpointCidrs: list the networks its endpoints use",
                        t.name, c.name
                    ));
                }
                let name = c.name.clone();
                if clusters
                    .insert(
                        name.clone(),
                        Cluster {
                            name: c.name,
                            endpoint_cidrs: c.endpoint_cidrs,
                            allow_special_addresses: c.allow_special_addresses,
                        },
                    )
                    .is_some()
                {
                    errs.push(format!(
                        "tenants[{}].clusters: {name:?} is listed twice",
                        t.name
                    ));
                }
            }
            let name = t.name.clone();
            let tenant = Tenant {
                name: t.name,
                hostnames: t.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect(),
                clusters,
                egress,
            };
            if tenants.insert(name.clone(), tenant).is_some() {
                errs.push(format!("tenants: {name:?} is listed twice"));
            }
        }
        let l4 = validate_l4(self.address_pools, self.l4_port_range, &mut errs);
        let quotas = self
            .quotas
            .validate(&tenants.keys().cloned().collect(), &mut errs);
        crate::quotas::check_admin(self.data_plane.admin, &self.data_plane.listeners, &mut errs);
        let admin_oidc = self
            .admin_oidc
            .as_ref()
            .and_then(|o| o.validate(self.admin_listen.is_some(), &mut errs));
        let mut identity = self.identity.validate(&mut errs);
        identity.disabled_clusters = disabled;
        if !errs.is_empty() {
            return Err(ConfigError::Invalid(errs));
        }
        Ok(Config {
            agent_listen: self.agent_listen,
            xds_listen: self.xds_listen,
            admin_listen: self.admin_listen,
            admin_oidc,
            pki_dir: self.pki_dir,
            store_path: self.store_path,
            store_etcd: self.store_etcd,
            trust_domain: self.trust_domain,
            data_plane: DataPlane {
                address: self.data_plane.address,
                listeners: self.data_plane.listeners,
                ai_gateways: self.data_plane.ai_gateways,
            },
            tenants,
            limits: self.limits,
            l4,
            disconnected_cluster_grace_period: grace,
            mcp_session_keys,
            quotas,
            data_plane_admin: self.data_plane.admin,
            identity,
            reserved_addresses: self.reserved_addresses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    const BASE: &str = r#"
agentListen: 127.0.0.1:7443
xdsListen: 127.0.0.1:18000
pkiDir: /tmp/pki
storePath: /tmp/store.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{port: 80, bind: "127.0.0.1:18080"}]
"#;

    #[test]
    fn valid_config() {
        let c = raw(&format!(
            "{BASE}tenants:\n- name: a\n  hostnames: ['*.A.example']\n  clusters:\n  - name: c1\n    endpointCidrs: [127.0.1.0/24]\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(c.tenants["a"].hostnames, vec!["*.a.example"]);
        assert_eq!(c.trust_domain, "fleetgate");
    }

    #[test]
    fn errors_name_the_field() {
        let err = raw(&format!(
            "{BASE}tenants:\n- name: A_B\n  hostnames: ['bad host']\n  clusters:\n  - name: c1\n    endpointCidrs: []\n"
        ))
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("tenants[A_B].name"), "{err}");
        assert!(err.contains("\"bad host\""), "{err}");
        assert!(err.contains("endpointCidrs"), "{err}");
    }

    #[test]
    fn the_store_is_a_file_or_etcd_and_etcd_settings_are_checked() {
        let without_file = BASE.replace("storePath: /tmp/store.redb\n", "");
        let etcd = raw(&format!(
            "{without_file}storeEtcd:\n  endpoints: [http://127.0.0.1:2379, http://127.0.0.2:2379]\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(
            etcd.store_etcd,
            Some(EtcdStore {
                endpoints: vec![
                    "http://127.0.0.1:2379".into(),
                    "http://127.0.0.2:2379".into()
                ],
                prefix: "/fleetgate/".into(),
            })
        );
        let err = |yaml: String| raw(&yaml).validate().unwrap_err().to_string();
        let e = err(without_file.clone());
        assert!(
            e.contains("storePath: set the store file (or storeEtcd"),
            "{e}"
        );
        let e = err(format!(
            "{BASE}storeEtcd:\n  endpoints: [http://127.0.0.1:2379]\n"
        ));
        assert!(e.contains("storePath and storeEtcd are both set"), "{e}");
        let e = err(format!(
            "{without_file}storeEtcd:\n  endpoints: [127.0.0.1:2379, https://etcd:2379]\n  prefix: fleetgate\n"
        ));
        assert!(e.contains("\"127.0.0.1:2379\" is not a client URL"), "{e}");
        assert!(e.contains("TLS to etcd is not supported yet"), "{e}");
        assert!(e.contains("storeEtcd.prefix"), "{e}");
        let e = err(format!("{without_file}storeEtcd:\n  endpoints: []\n"));
        assert!(e.contains("storeEtcd.endpoints: list"), "{e}");
    }

    #[test]
    fn data_plane_protocol_defaults_to_http() {
        let c = raw(&BASE.replace(
            r#"[{port: 80, bind: "127.0.0.1:18080"}]"#,
            r#"[{port: 80, bind: "127.0.0.1:18080"}, {port: 443, bind: "127.0.0.1:18443", protocol: TLS}, {port: 8443, bind: "127.0.0.1:18444", protocol: HTTPS}]"#,
        ))
        .validate()
        .unwrap();
        let got: Vec<_> = c
            .data_plane
            .listeners
            .iter()
            .map(|l| (l.port, l.protocol))
            .collect();
        assert_eq!(
            got,
            vec![
                (80, DataPlaneProtocol::Http),
                (443, DataPlaneProtocol::Tls),
                (8443, DataPlaneProtocol::Tls)
            ]
        );
        let bad: Result<RawConfig, _> = serde_yaml::from_str(&BASE.replace(
            r#"bind: "127.0.0.1:18080"}"#,
            r#"bind: "127.0.0.1:18080", protocol: QUIC}"#,
        ));
        assert!(bad.is_err());
    }

    #[test]
    fn the_example_config_is_valid_and_publishes_a_tls_port() {
        let c = raw(include_str!("../../examples/hub.yaml"))
            .validate()
            .unwrap();
        assert_eq!(c.tenants["tenant-a"].egress, vec!["api.openai.com"]);
        assert_eq!(c.data_plane.ai_gateways.len(), 1);
        assert!(
            c.data_plane
                .listeners
                .iter()
                .any(|l| l.port == 443 && l.protocol == DataPlaneProtocol::Tls)
        );
    }

    #[test]
    fn reserved_addresses_are_cidrs_and_a_bad_entry_names_the_field() {
        let ok = raw(&format!(
            "{BASE}reservedAddresses: [203.0.113.7/32, '2001:db8::/64']\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(
            ok.reserved_addresses,
            vec![
                "203.0.113.7/32".parse::<IpNet>().unwrap(),
                "2001:db8::/64".parse().unwrap()
            ]
        );
        let err =
            serde_yaml::from_str::<RawConfig>(&format!("{BASE}reservedAddresses: [lb.example]\n"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("reservedAddresses"), "{err}");
    }

    #[test]
    fn address_pools_table() {
        // (pools YAML, range YAML, Ok(addresses of the first pool) or Err(words in the error))
        type Case<'a> = (&'a str, &'a str, Result<&'a [&'a str], &'a str>);
        let cases: &[Case] = &[
            ("[]", "", Ok(&[])),
            (
                "[{name: p, addresses: [127.0.0.1, 10.0.0.0/30]}]",
                "l4PortRange: {from: 20000, to: 20010}\n",
                Ok(&["127.0.0.1", "10.0.0.1", "10.0.0.2"]),
            ),
            (
                "[{name: p, addresses: [127.0.0.1], bind: 127.0.0.2}]",
                "l4PortRange: {from: 1, to: 2}\n",
                Ok(&["127.0.0.1"]),
            ),
            (
                "[{name: p, addresses: [127.0.0.1]}]",
                "",
                Err("l4PortRange"),
            ),
            (
                "[{name: p, addresses: [127.0.0.1]}]",
                "l4PortRange: {from: 10, to: 9}\n",
                Err("from <= to"),
            ),
            (
                "[{name: p, addresses: [nope]}]",
                "l4PortRange: {from: 1, to: 2}\n",
                Err("neither an IP"),
            ),
            (
                "[{name: p, addresses: [10.0.0.0/8]}]",
                "l4PortRange: {from: 1, to: 2}\n",
                Err("smaller CIDR"),
            ),
            (
                "[{name: p, addresses: [10.0.0.0/30], bind: 127.0.0.1}]",
                "l4PortRange: {from: 1, to: 2}\n",
                Err("exactly one address"),
            ),
            (
                "[{name: p, addresses: [127.0.0.1]}, {name: q, addresses: [127.0.0.1]}]",
                "l4PortRange: {from: 1, to: 2}\n",
                Err("more than one pool"),
            ),
        ];
        for (pools, range, want) in cases {
            let got = raw(&format!("{BASE}addressPools: {pools}\n{range}")).validate();
            match (got, want) {
                (Ok(c), Ok(addrs)) => {
                    let first: Vec<String> =
                        c.l4.pools
                            .first()
                            .map(|p| p.addresses.iter().map(|a| a.to_string()).collect())
                            .unwrap_or_default();
                    assert_eq!(first, *addrs, "{pools}");
                }
                (Err(e), Err(words)) => assert!(e.to_string().contains(words), "{pools}: {e}"),
                (got, want) => panic!("{pools} {range}: got {got:?}, want {want:?}"),
            }
        }
        let c = raw(&format!(
            "{BASE}addressPools: [{{name: p, addresses: [127.0.0.1], bind: 127.0.0.2}}]\nl4PortRange: {{from: 1, to: 2}}\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(
            c.l4.bind_ip("127.0.0.1".parse().unwrap()),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            c.l4.bind_ip("127.0.0.9".parse().unwrap()),
            "127.0.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn egress_and_ai_gateways_are_validated_and_the_gateways_reserved() {
        let ok = raw(&format!(
            "{BASE}  aiGateways: ['127.0.0.1:18090', '127.0.0.2:18090']\ntenants:\n- name: a\n  hostnames: ['*.a.example']\n  egress: [API.OpenAI.com, '*.models.example', 192.0.2.7]\n  clusters: [{{name: c1, endpointCidrs: [127.0.1.0/24]}}]\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(
            ok.tenants["a"].egress,
            vec!["api.openai.com", "*.models.example", "192.0.2.7"]
        );
        assert_eq!(ok.data_plane.ai_gateways.len(), 2);
        // No tenant endpoint may reach an AI gateway: they trust Envoy's identity headers.
        let reserved = ok.reserved(BTreeSet::new());
        assert!(
            reserved
                .reached_by("127.0.0.2".parse().unwrap(), 18090)
                .is_some()
        );
        // Egress and AI gateways are optional.
        let none = raw(BASE).validate().unwrap();
        assert!(none.data_plane.ai_gateways.is_empty());
        for (yaml, words) in [
            (
                format!(
                    "{BASE}tenants:\n- name: a\n  hostnames: []\n  egress: ['https://api.openai.com']\n  clusters: []\n"
                ),
                "tenants[a].egress: \"https://api.openai.com\" is not a hostname",
            ),
            (
                format!("{BASE}  aiGateways: ['0.0.0.0:18090']\n"),
                "dataPlane.aiGateways: 0.0.0.0:18090 is not an address Envoy can connect to",
            ),
            (
                format!("{BASE}  aiGateways: ['127.0.0.1:18090', '127.0.0.1:18090']\n"),
                "listed twice",
            ),
            (
                format!("{BASE}  aiGateways: ['127.0.0.1:18080']\n"),
                "give the AI gateway its own port",
            ),
        ] {
            let e = raw(&yaml).validate().unwrap_err().to_string();
            assert!(e.contains(words), "{yaml}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<RawConfig, _> = serde_yaml::from_str(&format!("{BASE}tennants: []\n"));
        assert!(r.is_err());
    }

    #[test]
    fn grace_period_durations_table() {
        for (s, want) in [
            ("0", Some(0)),
            ("1h", Some(3600)),
            ("30m", Some(1800)),
            ("90s", Some(90)),
            ("1h30m", Some(5400)),
            ("1h0m5s", Some(3605)),
            ("", None),
            ("1d", None),
            ("30m1h", None),
            ("1h1h", None),
            ("h", None),
            ("-1s", None),
            ("1234567s", None),
        ] {
            assert_eq!(
                parse_config_duration(s).ok().map(|d| d.as_secs()),
                want,
                "{s:?}"
            );
        }
    }

    #[test]
    fn mcp_session_key_rotation_has_defaults_and_bad_values_are_named() {
        let base = BASE;
        let c = raw(base).validate().unwrap();
        assert_eq!(c.mcp_session_keys, crate::session_secret::DEFAULT_ROTATION);
        let c = raw(&format!(
            "{base}mcpSessionKeys: {{rotateEvery: 1h30m, grace: \"0\"}}\n"
        ))
        .validate()
        .unwrap();
        assert_eq!(c.mcp_session_keys.every, Duration::from_secs(5400));
        assert!(c.mcp_session_keys.grace.is_zero());
        let e = raw(&format!("{base}mcpSessionKeys: {{grace: 1d}}\n"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("mcpSessionKeys.grace \"1d\""), "{e}");
    }

    #[test]
    fn grace_period_defaults_to_an_hour_and_bad_values_are_named() {
        let base = BASE;
        let c = raw(base).validate().unwrap();
        assert_eq!(c.disconnected_cluster_grace_period, DEFAULT_GRACE_PERIOD);
        let c = raw(&format!("{base}disconnectedClusterGracePeriod: \"0\"\n"))
            .validate()
            .unwrap();
        assert!(c.disconnected_cluster_grace_period.is_zero());
        let e = raw(&format!("{base}disconnectedClusterGracePeriod: 2d\n"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("disconnectedClusterGracePeriod"), "{e}");
    }
}
