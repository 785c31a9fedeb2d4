//! The product hub, `fleetgate-hub`, run as a process from the cargo target dir.
//!
//! The harness uses only the hub's public surface: `ca init` / `ca issue` for the PKI,
//! `token create` for bootstrap tokens, the config file (`RawConfig`, camelCase YAML, rewritten
//! and reloaded with SIGHUP by [`Hub::rewrite_config`]), and `run --config`. [`Hub::kill`] and
//! [`Hub::start_again`] keep the same ports, PKI and store file, as an operator restarting the
//! hub would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::eventually::try_eventually;
use crate::ports::free_addr;
use crate::process::{Process, TestDir};

/// The DNS SAN of the hub's serving certificate, which agents verify.
pub const HUB_SERVER_NAME: &str = "fleetgate-hub";

/// A tenant as the hub's config file declares it.
#[derive(Clone, Debug)]
pub struct HubTenant {
    pub name: String,
    /// Hostname patterns the tenant owns (`*.a.example`).
    pub hostnames: Vec<String>,
    pub clusters: Vec<HubCluster>,
}

/// One cluster of a tenant.
#[derive(Clone, Debug)]
pub struct HubCluster {
    pub name: String,
    /// CIDRs its endpoints may use (loopback ranges in tests, hence allowSpecialAddresses).
    pub endpoint_cidrs: Vec<String>,
}

/// The hub config YAML (hub/src/config.rs `RawConfig`), with one data-plane port 80 (HTTP).
pub fn config_yaml(
    agent_listen: SocketAddr,
    xds_listen: SocketAddr,
    pki_dir: &Path,
    store_path: &Path,
    data_plane_bind: SocketAddr,
    tenants: &[HubTenant],
) -> String {
    config_yaml_with_tls(
        agent_listen,
        xds_listen,
        pki_dir,
        store_path,
        data_plane_bind,
        None,
        tenants,
    )
}

/// Like [`config_yaml`], plus a data-plane port 443 (protocol TLS: HTTPS and TLS listeners)
/// bound at `tls_bind` when given.
pub fn config_yaml_with_tls(
    agent_listen: SocketAddr,
    xds_listen: SocketAddr,
    pki_dir: &Path,
    store_path: &Path,
    data_plane_bind: SocketAddr,
    tls_bind: Option<SocketAddr>,
    tenants: &[HubTenant],
) -> String {
    let mut listeners = vec![json!({"port": 80, "bind": data_plane_bind.to_string()})];
    if let Some(b) = tls_bind {
        listeners.push(json!({"port": 443, "bind": b.to_string(), "protocol": "TLS"}));
    }
    let tenants = tenants_json(tenants);
    let config = json!({
        "agentListen": agent_listen.to_string(),
        "xdsListen": xds_listen.to_string(),
        "pkiDir": pki_dir,
        "storePath": store_path,
        "dataPlane": {
            "address": data_plane_bind.ip().to_string(),
            "listeners": listeners,
        },
        "tenants": tenants,
    });
    serde_yaml::to_string(&config).expect("a JSON value always renders as YAML")
}

/// The `tenants` list of the hub config.
fn tenants_json(tenants: &[HubTenant]) -> serde_json::Value {
    tenants
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "hostnames": t.hostnames,
                "clusters": t.clusters.iter().map(|c| json!({
                    "name": c.name,
                    "endpointCidrs": c.endpoint_cidrs,
                    "allowSpecialAddresses": true,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A running (or deliberately stopped) hub.
#[derive(Debug)]
pub struct Hub {
    dir: TestDir,
    binary: PathBuf,
    pki_dir: PathBuf,
    config_path: PathBuf,
    /// The config file's contents as last written.
    config: serde_json::Value,
    tenants: Vec<HubTenant>,
    agent_listen: SocketAddr,
    xds_listen: SocketAddr,
    data_plane: SocketAddr,
    data_plane_tls: SocketAddr,
    /// Further plaintext HTTP data-plane ports (port, Envoy bind), see [`Hub::start_with_ports`].
    data_plane_more: Vec<(u16, SocketAddr)>,
    process: Process,
}

impl Hub {
    /// Creates the hub PKI (`ca init --server-san 127.0.0.1`), writes the config for `tenants`
    /// with free loopback ports, starts `run --config` and waits until both of its gRPC ports
    /// accept connections.
    pub async fn start(dir: &TestDir, tenants: &[HubTenant]) -> anyhow::Result<Self> {
        Self::start_with(dir, tenants, serde_json::Map::new()).await
    }

    /// Like [`Hub::start`], with `extra` top-level config keys (e.g. `addressPools` and
    /// `l4PortRange`) added to the config file; the keys of a `dataPlane` object are added to
    /// the generated `dataPlane`.
    pub async fn start_with(
        dir: &TestDir,
        tenants: &[HubTenant],
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<Self> {
        Self::start_with_ports(dir, tenants, extra, &[]).await
    }

    /// Like [`Hub::start_with`], and the data plane also publishes the plaintext HTTP ports
    /// `http_ports` (each bound at a free loopback address: [`Hub::data_plane_port_addr`]).
    pub async fn start_with_ports(
        dir: &TestDir,
        tenants: &[HubTenant],
        extra: serde_json::Map<String, serde_json::Value>,
        http_ports: &[u16],
    ) -> anyhow::Result<Self> {
        let binary = crate::components::product_binary("fleetgate-hub")?;
        let pki_dir = dir.subdir("hub-pki")?;
        run_to_completion(
            &binary,
            &[
                "ca",
                "init",
                "--pki-dir",
                &pki_dir.display().to_string(),
                "--server-san",
                "127.0.0.1",
            ],
        )?;
        for f in ["ca.crt", "ca.key", "hub.crt", "hub.key"] {
            anyhow::ensure!(
                pki_dir.join(f).is_file(),
                "`fleetgate-hub ca init` did not write {f} into {}",
                pki_dir.display()
            );
        }
        let agent_listen = free_addr()?;
        let xds_listen = free_addr()?;
        let data_plane = free_addr()?;
        let data_plane_tls = free_addr()?;
        let store_path = dir.path().join("hub-store.redb");
        let mut config: serde_json::Value = serde_yaml::from_str(&config_yaml_with_tls(
            agent_listen,
            xds_listen,
            &pki_dir,
            &store_path,
            data_plane,
            Some(data_plane_tls),
            tenants,
        ))?;
        let mut data_plane_more = Vec::new();
        for port in http_ports {
            let bind = free_addr()?;
            data_plane_more.push((*port, bind));
            if let Some(l) = config["dataPlane"]["listeners"].as_array_mut() {
                l.push(json!({"port": port, "bind": bind.to_string()}));
            }
        }
        if let Some(map) = config.as_object_mut() {
            for (k, v) in extra {
                // A `dataPlane` object adds to the generated one (e.g. `admin`).
                match (map.get_mut(&k), v) {
                    (Some(serde_json::Value::Object(have)), serde_json::Value::Object(more))
                        if k == "dataPlane" =>
                    {
                        have.extend(more)
                    }
                    // `null` removes a generated key (e.g. `storePath` for a store on etcd).
                    (_, serde_json::Value::Null) => {
                        map.remove(&k);
                    }
                    (_, v) => {
                        map.insert(k, v);
                    }
                }
            }
        }
        let config_path = dir.write("hub.yaml", serde_yaml::to_string(&config)?)?;
        let tenants = tenants.to_vec();
        let process = run_hub(dir, "fleetgate-hub", &binary, &config_path)?;
        let mut hub = Self {
            dir: dir.clone(),
            binary,
            pki_dir,
            config_path,
            config,
            tenants,
            agent_listen,
            xds_listen,
            data_plane,
            data_plane_tls,
            data_plane_more,
            process,
        };
        hub.wait_listening().await?;
        Ok(hub)
    }

    /// Starts replica `n` (2, 3, ...) of this hub: the same PKI folder and configuration (so
    /// the same store, which must be shared: `storeEtcd`), its own agent and xDS ports, and its
    /// own data-plane binds, since its Envoy runs on this same host (in a cluster each replica's
    /// Envoys bind the same ports on their own pod address; here only the bind addresses differ).
    pub async fn start_replica(&self, n: u32) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.config.get("storeEtcd").is_some(),
            "replicas share the store: start the first hub with storeEtcd"
        );
        let mut config = self.config.clone();
        let agent_listen = free_addr()?;
        let xds_listen = free_addr()?;
        config["agentListen"] = agent_listen.to_string().into();
        config["xdsListen"] = xds_listen.to_string().into();
        if config.get("adminListen").is_some() {
            config["adminListen"] = free_addr()?.to_string().into();
        }
        let (mut data_plane, mut data_plane_tls) = (self.data_plane, self.data_plane_tls);
        let mut data_plane_more = Vec::new();
        if let Some(listeners) = config["dataPlane"]["listeners"].as_array_mut() {
            for l in listeners {
                let bind = free_addr()?;
                l["bind"] = bind.to_string().into();
                match l["port"].as_u64() {
                    Some(80) => data_plane = bind,
                    Some(443) => data_plane_tls = bind,
                    Some(p) => data_plane_more.push((p as u16, bind)),
                    None => {}
                }
            }
        }
        if let Some(dp) = config["dataPlane"].as_object_mut() {
            dp.remove("admin");
        }
        let config_path = self
            .dir
            .write(&format!("hub-{n}.yaml"), serde_yaml::to_string(&config)?)?;
        let process = run_hub(
            &self.dir,
            &format!("fleetgate-hub-{n}"),
            &self.binary,
            &config_path,
        )?;
        let mut hub = Self {
            dir: self.dir.clone(),
            binary: self.binary.clone(),
            pki_dir: self.pki_dir.clone(),
            config_path,
            config,
            tenants: self.tenants.clone(),
            agent_listen,
            xds_listen,
            data_plane,
            data_plane_tls,
            data_plane_more,
            process,
        };
        hub.wait_listening().await?;
        Ok(hub)
    }

    async fn wait_listening(&mut self) -> anyhow::Result<()> {
        let (agent, xds) = (self.agent_listen, self.xds_listen);
        let process = &mut self.process;
        let r = try_eventually(Duration::from_secs(30), || {
            let running = process.ensure_running();
            async move {
                running?;
                for (what, addr) in [("agentListen", agent), ("xdsListen", xds)] {
                    tokio::net::TcpStream::connect(addr)
                        .await
                        .with_context(|| format!("{what} {addr} not accepting yet"))?;
                }
                Ok(())
            }
        })
        .await;
        r.with_context(|| {
            format!(
                "fleetgate-hub did not start listening; last log lines:\n{}",
                self.process.log_tail(30)
            )
        })
    }

    /// Issues an agent identity for (tenant, cluster) with `ca issue` into
    /// `hub-pki/agents/<tenant>-<cluster>` (ca.crt, tls.crt, tls.key) and returns that folder.
    pub fn issue_agent_identity(&self, tenant: &str, cluster: &str) -> anyhow::Result<PathBuf> {
        let out = self
            .pki_dir
            .join("agents")
            .join(format!("{tenant}-{cluster}"));
        run_to_completion(
            &self.binary,
            &[
                "ca",
                "issue",
                "--pki-dir",
                &self.pki_dir.display().to_string(),
                "--tenant",
                tenant,
                "--cluster",
                cluster,
                "--out",
                &out.display().to_string(),
            ],
        )?;
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            anyhow::ensure!(
                out.join(f).is_file(),
                "`fleetgate-hub ca issue` did not write {f} into {}",
                out.display()
            );
        }
        Ok(out)
    }

    /// A single-use bootstrap token for (tenant, cluster) from `fleetgate-hub token create`
    /// (default lifetime, 15 minutes).
    pub fn create_token(&self, tenant: &str, cluster: &str) -> anyhow::Result<String> {
        self.create_token_with_ttl(tenant, cluster, "15m")
    }

    /// Like [`Hub::create_token`] with `--ttl ttl` (e.g. `2s`).
    pub fn create_token_with_ttl(
        &self,
        tenant: &str,
        cluster: &str,
        ttl: &str,
    ) -> anyhow::Result<String> {
        let out = run_to_completion(
            &self.binary,
            &[
                "token",
                "create",
                "--pki-dir",
                &self.pki_dir.display().to_string(),
                "--tenant",
                tenant,
                "--cluster",
                cluster,
                "--ttl",
                ttl,
            ],
        )?;
        let token = out.trim().to_string();
        anyhow::ensure!(
            token.starts_with("fgb1.") && !token.contains('\n'),
            "`fleetgate-hub token create` printed {token:?}, not one token"
        );
        Ok(token)
    }

    /// An operator token for the admin API and dashboard from `fleetgate-hub operator-token
    /// create` (`role`: `viewer` or `admin`).
    pub fn create_operator_token(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let out = run_to_completion(
            &self.binary,
            &[
                "operator-token",
                "create",
                "--pki-dir",
                &self.pki_dir.display().to_string(),
                "--name",
                name,
                "--role",
                role,
            ],
        )?;
        let token = out.trim().to_string();
        anyhow::ensure!(
            token.starts_with("fgo1.") && !token.contains('\n'),
            "`fleetgate-hub operator-token create` printed {token:?}, not one token"
        );
        Ok(token)
    }

    /// The tenants the config file lists now.
    pub fn tenants(&self) -> &[HubTenant] {
        &self.tenants
    }

    /// Rewrites the config file with `tenants` (everything else unchanged) and sends the hub
    /// SIGHUP so it reloads at once (it would also notice the change within seconds).
    pub fn rewrite_config(&mut self, tenants: &[HubTenant]) -> anyhow::Result<()> {
        self.config["tenants"] = tenants_json(tenants);
        std::fs::write(&self.config_path, serde_yaml::to_string(&self.config)?)
            .with_context(|| format!("writing {}", self.config_path.display()))?;
        self.tenants = tenants.to_vec();
        self.reload()
    }

    /// Sets the top-level key `key` of the config file to `value` (everything else unchanged),
    /// without telling the hub: for settings read at start, before [`Hub::start_again`].
    pub fn set_config_key(&mut self, key: &str, value: serde_json::Value) -> anyhow::Result<()> {
        self.config[key] = value;
        std::fs::write(&self.config_path, serde_yaml::to_string(&self.config)?)
            .with_context(|| format!("writing {}", self.config_path.display()))
    }

    /// Sends the hub SIGHUP (reload the config file).
    pub fn reload(&mut self) -> anyhow::Result<()> {
        let pid = self.process.pid().context("the hub is not running")?;
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .context("running kill -HUP")?;
        anyhow::ensure!(status.success(), "kill -HUP {pid} failed: {status}");
        Ok(())
    }

    /// Where agents connect (`https://<this>`).
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_listen
    }

    /// `https://127.0.0.1:PORT` for `fleetgate-agent --hub`.
    pub fn agent_url(&self) -> String {
        format!("https://{}", self.agent_listen)
    }

    /// Where Envoy fetches its configuration (ADS).
    pub fn xds_addr(&self) -> SocketAddr {
        self.xds_listen
    }

    /// Envoy's bind address for the data-plane listener of port 80.
    pub fn data_plane_addr(&self) -> SocketAddr {
        self.data_plane
    }

    /// Envoy's bind address for a further plaintext HTTP data-plane port given to
    /// [`Hub::start_with_ports`].
    pub fn data_plane_port_addr(&self, port: u16) -> Option<SocketAddr> {
        self.data_plane_more
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, a)| *a)
    }

    /// Envoy's bind address for the data-plane port 443 (TLS: HTTPS and TLS listeners).
    pub fn data_plane_tls_addr(&self) -> SocketAddr {
        self.data_plane_tls
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    /// The hub CA certificate (PEM), what agents trust.
    pub fn ca_cert_pem(&self) -> anyhow::Result<String> {
        crate::components::read(&self.pki_dir.join("ca.crt"))
    }

    /// The admin API's address (`adminListen`), when the config sets one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.config["adminListen"].as_str()?.parse().ok()
    }

    /// The hub's live heap in bytes (`fleetgate_hub_heap_bytes`, hub/src/heap.rs), from its
    /// metrics on the admin port (the config must set `adminListen`).
    pub async fn heap_bytes(&self) -> anyhow::Result<u64> {
        let admin = self
            .admin_addr()
            .context("the hub has no admin port: give its config an adminListen")?;
        let (status, text) = crate::http::get(admin, "metrics", "/metrics", &[]).await?;
        anyhow::ensure!(
            status == 200,
            "the hub's /metrics on {admin} answered {status}"
        );
        text.lines()
            .find_map(|l| {
                l.strip_prefix("fleetgate_hub_heap_bytes ")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|b| b as u64)
            .context("the hub's /metrics has no fleetgate_hub_heap_bytes")
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Whether the hub process is still running (it must survive malformed input).
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_exit_status(), Ok(None))
    }

    /// SIGKILLs the hub.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the hub again with the same config (ports, PKI, store) and waits for its ports.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_listening().await
    }
}

/// `fleetgate-hub run --config <config_path>`, its log named `name`.
fn run_hub(
    dir: &TestDir,
    name: &str,
    binary: &Path,
    config_path: &Path,
) -> anyhow::Result<Process> {
    Process::spawn_with_env(
        dir,
        name,
        binary,
        [
            "run".to_string(),
            "--config".to_string(),
            config_path.display().to_string(),
        ],
        [("RUST_LOG", crate::components::product_log_level())],
    )
}

/// Runs a short command (`ca init`, `ca issue`, `token create`) and returns its stdout, or
/// fails with its output if it fails.
fn run_to_completion(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary)
        .args(args)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}):\n{}{}",
            binary.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_raw_config_shape() {
        let yaml = config_yaml(
            "127.0.0.1:7443".parse().unwrap(),
            "127.0.0.1:18000".parse().unwrap(),
            Path::new("/t/pki"),
            Path::new("/t/store.redb"),
            "127.0.0.1:18080".parse().unwrap(),
            &[HubTenant {
                name: "tenant-a".into(),
                hostnames: vec!["*.a.example".into()],
                clusters: vec![HubCluster {
                    name: "c1".into(),
                    endpoint_cidrs: vec!["127.0.1.0/24".into()],
                }],
            }],
        );
        let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(v["agentListen"], "127.0.0.1:7443");
        assert_eq!(v["xdsListen"], "127.0.0.1:18000");
        assert_eq!(v["pkiDir"], "/t/pki");
        assert_eq!(v["storePath"], "/t/store.redb");
        assert_eq!(v["dataPlane"]["address"], "127.0.0.1");
        assert_eq!(v["dataPlane"]["listeners"][0]["port"], 80);
        assert_eq!(v["dataPlane"]["listeners"][0]["bind"], "127.0.0.1:18080");
        let c = &v["tenants"][0]["clusters"][0];
        assert_eq!(c["endpointCidrs"][0], "127.0.1.0/24");
        assert_eq!(c["allowSpecialAddresses"], true);
    }
}
