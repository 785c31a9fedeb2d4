//! A real Envoy programmed by the hub over ADS (SotW gRPC, plaintext, loopback).
//!
//! The bootstrap is the shared contract: node id `envoy-<n>`, node cluster `fleetgate`, listeners
//! and clusters via ADS from the static cluster `xds_cluster` (HTTP/2) that points to the hub's
//! `xdsListen`. The admin interface is on 127.0.0.1 at its own free port, used only to see
//! readiness and dump config when debugging. xDS reconnects back off at most 2 s, so a restarted
//! hub is picked up quickly. Envoy tags its cluster stats with the tenant (`fleetgate_tenant`)
//! and streams its stats to the hub's stats sink every second.
//!
//! Envoy starts with a dynamic base id (tests run side by side) written to
//! `<node id>-base-id`, so that [`Envoy::hot_restart`] can start the next restart epoch on the
//! same shared memory and take over its listening sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::eventually::try_eventually;
use crate::ports::free_addr;
use crate::process::{Process, TestDir};

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    node_id: String,
    admin: SocketAddr,
    bootstrap: PathBuf,
    /// Where the first process wrote its dynamic base id (`--base-id-path`).
    base_id_path: PathBuf,
    /// The restart epoch of the running process (0 unless hot restarted).
    epoch: u32,
    process: Process,
}

/// The command line of epoch 0: a dynamic base id, written to `base_id_path`.
fn first_epoch_args(bootstrap: &std::path::Path, base_id_path: &std::path::Path) -> Vec<String> {
    let mut args = vec![
        "-c".to_string(),
        bootstrap.display().to_string(),
        "--use-dynamic-base-id".to_string(),
        "--base-id-path".to_string(),
        base_id_path.display().to_string(),
    ];
    args.extend(common_args());
    args
}

/// Flags every epoch shares.
fn common_args() -> Vec<String> {
    [
        "--concurrency",
        "1",
        "--log-level",
        "info",
        "--component-log-level",
        "upstream:debug,config:debug",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The bootstrap YAML for node `node_id` fetching everything from `xds`.
pub fn bootstrap(node_id: &str, admin: SocketAddr, xds: SocketAddr) -> String {
    let endpoints = format!(
        "      - lb_endpoints:\n        - endpoint:\n            address:\n              socket_address: {{ address: {}, port_value: {} }}\n",
        xds.ip(),
        xds.port()
    );
    bootstrap_with(node_id, admin, &endpoints, "")
}

/// The bootstrap YAML for node `node_id` fetching everything from the first hub of `xds`
/// while it answers, and from the others (several hubs on etcd) when it does not: the first is
/// priority 0, the rest priority 1, and a TCP health check every second moves the ADS stream
/// to priority 1 once the first hub is gone.
pub fn bootstrap_with_failover(node_id: &str, admin: SocketAddr, xds: &[SocketAddr]) -> String {
    let mut endpoints = String::new();
    for (priority, group) in [(0, &xds[..1]), (1, &xds[1..])] {
        if group.is_empty() {
            continue;
        }
        endpoints.push_str(&format!(
            "      - priority: {priority}\n        lb_endpoints:\n"
        ));
        for a in group {
            endpoints.push_str(&format!(
                "        - endpoint:\n            address:\n              socket_address: {{ address: {}, port_value: {} }}\n",
                a.ip(),
                a.port()
            ));
        }
    }
    // `no_traffic_interval`: the ADS stream is not traffic to Envoy's health checker, which
    // would otherwise check only once a minute.
    let health = "    health_checks:\n    - timeout: 0.5s\n      interval: 1s\n      no_traffic_interval: 1s\n      unhealthy_threshold: 1\n      healthy_threshold: 1\n      tcp_health_check: {}\n";
    bootstrap_with(node_id, admin, &endpoints, health)
}

/// The variable choosing the ADS variant the harness's Envoys ask for: `delta` (incremental,
/// `api_type: DELTA_GRPC`) or `sotw` (State of the World, `GRPC`, the default), so that a
/// benchmark runs either.
pub const XDS_API_VAR: &str = "FLEETGATE_XDS_API";

/// The `ads_config.api_type` for a value of [`XDS_API_VAR`] (`None`: unset).
pub fn ads_api_type(value: Option<&str>) -> Result<&'static str, String> {
    match value.map(str::trim) {
        None | Some("") | Some("sotw") => Ok("GRPC"),
        Some("delta") => Ok("DELTA_GRPC"),
        Some(other) => Err(format!(
            "{XDS_API_VAR}={other:?} is not an ADS variant: set it to `delta` or `sotw`, or unset it"
        )),
    }
}

/// The bootstrap YAML with the xDS cluster's `endpoints` (YAML list items) and `health`
/// (cluster fields, or nothing), asking for the ADS variant [`XDS_API_VAR`] names.
fn bootstrap_with(node_id: &str, admin: SocketAddr, endpoints: &str, health: &str) -> String {
    let api_type =
        ads_api_type(std::env::var(XDS_API_VAR).ok().as_deref()).unwrap_or_else(|e| panic!("{e}"));
    format!(
        r#"node:
  id: {node_id}
  cluster: fleetgate
admin:
  address:
    socket_address: {{ address: {admin_ip}, port_value: {admin_port} }}
{overload}dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
        retry_policy:
          retry_back_off: {{ base_interval: 0.25s, max_interval: 2s }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
{stats}static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
{health}    load_assignment:
      cluster_name: xds_cluster
      endpoints:
{endpoints}"#,
        admin_ip = admin.ip(),
        admin_port = admin.port(),
        overload = OVERLOAD_MANAGER,
        stats = stats_settings("xds_cluster"),
    )
}

/// The overload manager of fleetgate's bootstraps (heap and connection limits).
pub const OVERLOAD_MANAGER: &str = r#"overload_manager:
  refresh_interval: 0.25s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: 4294967296
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 50000
  actions:
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: { value: 0.95 }
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: { value: 0.98 }
"#;

/// What fleetgate's bootstraps add for per-tenant stats, the stats sink streaming to the
/// static cluster `sink_cluster` (the hub's xDS cluster).
pub fn stats_settings(sink_cluster: &str) -> String {
    STATS_SETTINGS.replace("SINK_CLUSTER", sink_cluster)
}

const STATS_SETTINGS: &str = r#"# Per-tenant stats (docs/operations.md, "Envoy's stats per tenant"): the tenant as a tag on
# /stats/prometheus, and every stat streamed to the hub, flushed each second here (5 s in the
# examples and the chart).
stats_flush_interval: 1s
stats_config:
  # Of the tenant clusters' stats (one set per cluster, thousands of clusters), only those
  # the hub, the dashboards and operators read are made: every other stat is kept (each
  # pattern must match a whole stat name).
  stats_matcher:
    inclusion_list:
      patterns:
      - safe_regex: { regex: '^(?:[^c]|c[^l]|cl[^u]|clu[^s]|clus[^t]|clust[^e]|cluste[^r]|cluster[^.]|cluster\.[^t]|cluster\.t[^/]).*' }
      - safe_regex: { regex: '^cluster\.t/.*\.(?:upstream_rq_(?:total|[1-5]xx|time|timeout|pending_overflow)|upstream_cx_connect_fail)$' }
  stats_tags:
  - tag_name: fleetgate_tenant
    regex: '^cluster\.(t/([^/]+)/)'
stats_sinks:
- name: envoy.stat_sinks.metrics_service
  typed_config:
    "@type": type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig
    transport_api_version: V3
    grpc_service: { envoy_grpc: { cluster_name: SINK_CLUSTER } }
"#;

impl Envoy {
    /// Starts Envoy number `n` (node id `envoy-<n>`) against the hub's xDS address and waits until
    /// its admin interface answers. It is not LIVE before its first xDS answer (or the initial
    /// fetch timeout); see [`Envoy::wait_live`].
    pub async fn start(dir: &TestDir, n: u32, xds: SocketAddr) -> anyhow::Result<Self> {
        Self::start_with_admin(dir, n, xds, free_addr()?).await
    }

    /// [`Envoy::start`] with the admin interface at `admin` (the address the hub was told in
    /// `dataPlane.admin`, so that it reserves it).
    pub async fn start_with_admin(
        dir: &TestDir,
        n: u32,
        xds: SocketAddr,
        admin: SocketAddr,
    ) -> anyhow::Result<Self> {
        let node_id = format!("envoy-{n}");
        Self::start_bootstrapped(dir, node_id.clone(), bootstrap(&node_id, admin, xds), admin).await
    }

    /// [`Envoy::start_with_admin`] fetching from the first of several hubs sharing a store,
    /// and from the others once it is gone ([`bootstrap_with_failover`]).
    pub async fn start_with_failover(
        dir: &TestDir,
        n: u32,
        xds: &[SocketAddr],
        admin: SocketAddr,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!xds.is_empty(), "name at least one hub");
        let node_id = format!("envoy-{n}");
        let yaml = bootstrap_with_failover(&node_id, admin, xds);
        Self::start_bootstrapped(dir, node_id, yaml, admin).await
    }

    /// Starts an Envoy from a bootstrap `yaml` written by the caller (node id `node_id`, the
    /// admin interface at `admin`), with the same command line as every other: used by the
    /// benchmark that compares a hand-written static configuration with the hub's.
    pub async fn start_from_bootstrap(
        dir: &TestDir,
        node_id: &str,
        yaml: String,
        admin: SocketAddr,
    ) -> anyhow::Result<Self> {
        Self::start_bootstrapped(dir, node_id.to_string(), yaml, admin).await
    }

    async fn start_bootstrapped(
        dir: &TestDir,
        node_id: String,
        yaml: String,
        admin: SocketAddr,
    ) -> anyhow::Result<Self> {
        let bootstrap = dir.write(&format!("{node_id}-bootstrap.yaml"), yaml)?;
        let base_id_path = dir.path().join(format!("{node_id}-base-id"));
        let args = first_epoch_args(&bootstrap, &base_id_path);
        let process = Process::spawn(dir, &node_id, crate::components::envoy()?, args)?;
        let mut envoy = Self {
            node_id,
            admin,
            bootstrap,
            base_id_path,
            epoch: 0,
            process,
        };
        envoy.wait_admin().await?;
        Ok(envoy)
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The admin address (127.0.0.1).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn bootstrap_path(&self) -> &std::path::Path {
        &self.bootstrap
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// GET on the admin interface; returns (status, body).
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        crate::http::get(self.admin, "127.0.0.1", path, &[]).await
    }

    /// Waits until the admin interface answers `/ready` at all (any status).
    async fn wait_admin(&mut self) -> anyhow::Result<()> {
        let admin = self.admin;
        let process = &mut self.process;
        let r = try_eventually(Duration::from_secs(30), || {
            let running = process.ensure_running();
            async move {
                running?;
                crate::http::get(admin, "127.0.0.1", "/ready", &[]).await?;
                Ok(())
            }
        })
        .await;
        r.with_context(|| {
            format!(
                "{} admin did not answer; last log lines:\n{}",
                self.node_id,
                self.process.log_tail(30)
            )
        })
    }

    /// Waits until `/ready` answers 200 `LIVE` (initial xDS fetch done).
    pub async fn wait_live(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let admin = self.admin;
        let process = &mut self.process;
        let r = try_eventually(timeout, || {
            let running = process.ensure_running();
            async move {
                running?;
                let (status, body) = crate::http::get(admin, "127.0.0.1", "/ready", &[]).await?;
                anyhow::ensure!(
                    status == 200 && body.trim() == "LIVE",
                    "/ready: {status} {}",
                    body.trim()
                );
                Ok(())
            }
        })
        .await;
        r.with_context(|| {
            format!(
                "{} did not become LIVE; last log lines:\n{}",
                self.node_id,
                self.process.log_tail(30)
            )
        })
    }

    /// The number of Envoy's clusters and of its listeners (admin `/clusters`, `/listeners`).
    pub async fn cluster_and_listener_counts(&self) -> anyhow::Result<(usize, usize)> {
        let count = |path: &'static str, key: &'static str| async move {
            let (status, body) = self.admin_get(path).await?;
            anyhow::ensure!(status == 200, "admin {path}: {status} {body}");
            let v: serde_json::Value =
                serde_json::from_str(&body).with_context(|| format!("admin {path}: not JSON"))?;
            Ok::<usize, anyhow::Error>(v[key].as_array().map_or(0, Vec::len))
        };
        Ok((
            count("/clusters?format=json", "cluster_statuses").await?,
            count("/listeners?format=json", "listener_statuses").await?,
        ))
    }

    /// How many virtual hosts of Envoy's dynamic RouteConfigurations list each domain (admin
    /// `/config_dump?resource=dynamic_route_configs`; a `:port` suffix is dropped), and how many
    /// RouteConfigurations there are.
    pub async fn route_domains(
        &self,
    ) -> anyhow::Result<(usize, std::collections::BTreeMap<String, usize>)> {
        let (status, body) = self
            .admin_get("/config_dump?resource=dynamic_route_configs")
            .await?;
        anyhow::ensure!(status == 200, "admin /config_dump: {status} {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).context("admin /config_dump: not JSON")?;
        let configs = v["configs"].as_array().cloned().unwrap_or_default();
        let mut domains = std::collections::BTreeMap::new();
        for c in &configs {
            for vh in c["route_config"]["virtual_hosts"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let mut seen = std::collections::BTreeSet::new();
                for d in vh["domains"].as_array().into_iter().flatten() {
                    let d = d.as_str().unwrap_or_default();
                    seen.insert(d.split_once(':').map_or(d, |(h, _)| h).to_string());
                }
                for d in seen {
                    *domains.entry(d).or_insert(0) += 1;
                }
            }
        }
        Ok((configs.len(), domains))
    }

    /// The admin `/config_dump`, for failure messages.
    pub async fn config_dump(&self) -> anyhow::Result<String> {
        Ok(self.admin_get("/config_dump").await?.1)
    }

    /// Kills Envoy.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills and starts Envoy again with the same bootstrap (restart epoch 0, a new dynamic base
    /// id), and waits for its admin interface.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.epoch == 0 {
            self.process.restart()?;
        } else {
            self.process.kill();
            let dir = self.process.dir().clone();
            self.process = Process::spawn(
                &dir,
                &self.node_id,
                crate::components::envoy()?,
                first_epoch_args(&self.bootstrap, &self.base_id_path),
            )?;
            self.epoch = 0;
        }
        self.wait_admin().await
    }

    /// The restart epoch of the running process.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Envoy's hot restart: starts the next restart epoch with the same bootstrap and base id,
    /// which takes the listening sockets over from the running process, fetches its own
    /// configuration over ADS and, once initialized, has the old process drain for `drain`
    /// (`--drain-time-s`) and exit after `parent_shutdown` (`--parent-shutdown-time-s`). Returns
    /// once the new process is LIVE and the old one has exited; from then on this is the new
    /// process.
    pub async fn hot_restart(
        &mut self,
        drain: Duration,
        parent_shutdown: Duration,
    ) -> anyhow::Result<()> {
        let base_id = std::fs::read_to_string(&self.base_id_path)
            .with_context(|| format!("reading {}", self.base_id_path.display()))?;
        let base_id = base_id.trim().to_string();
        let epoch = self.epoch + 1;
        let mut args = vec![
            "-c".to_string(),
            self.bootstrap.display().to_string(),
            "--base-id".to_string(),
            base_id,
            "--restart-epoch".to_string(),
            epoch.to_string(),
            "--drain-time-s".to_string(),
            drain.as_secs().max(1).to_string(),
            "--parent-shutdown-time-s".to_string(),
            parent_shutdown.as_secs().max(1).to_string(),
        ];
        args.extend(common_args());
        let dir = self.process.dir().clone();
        let mut next = Process::spawn(
            &dir,
            &format!("{}-epoch{epoch}", self.node_id),
            crate::components::envoy()?,
            args,
        )?;
        let admin = self.admin;
        let live = try_eventually(Duration::from_secs(60), || {
            let running = next.ensure_running();
            async move {
                running?;
                let (status, body) =
                    crate::http::get(admin, "127.0.0.1", "/server_info", &[]).await?;
                anyhow::ensure!(status == 200, "/server_info: {status}");
                let info: serde_json::Value = serde_json::from_str(&body)?;
                let (state, at) = (
                    &info["state"],
                    &info["command_line_options"]["restart_epoch"],
                );
                anyhow::ensure!(
                    state == "LIVE" && at == epoch,
                    "/server_info: state {state}, restart epoch {at} (want LIVE, {epoch})"
                );
                Ok(())
            }
        })
        .await;
        live.with_context(|| {
            format!(
                "{} epoch {epoch} did not become LIVE; last log lines:\n{}",
                self.node_id,
                next.log_tail(30)
            )
        })?;
        let old = &mut self.process;
        let gone = try_eventually(parent_shutdown + Duration::from_secs(30), || {
            let status = old.try_exit_status();
            async move {
                anyhow::ensure!(status?.is_some(), "epoch {} still running", epoch - 1);
                Ok(())
            }
        })
        .await;
        gone.with_context(|| format!("{} hot restart to epoch {epoch}", self.node_id))?;
        self.process = next;
        self.epoch = epoch;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_names_the_node_and_the_hub() {
        let yaml = bootstrap(
            "envoy-3",
            "127.0.0.1:9901".parse().unwrap(),
            "127.0.0.1:18000".parse().unwrap(),
        );
        let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(v["node"]["id"], "envoy-3");
        assert_eq!(v["node"]["cluster"], "fleetgate");
        assert_eq!(v["admin"]["address"]["socket_address"]["port_value"], 9901);
        let xds = &v["static_resources"]["clusters"][0];
        assert_eq!(xds["name"], "xds_cluster");
        let addr = &xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"];
        assert_eq!(addr["port_value"], 18000);
        assert_eq!(
            v["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            "xds_cluster"
        );
    }

    #[test]
    fn the_ads_variant_is_state_of_the_world_unless_delta_is_asked_for() {
        assert_eq!(ads_api_type(None), Ok("GRPC"));
        assert_eq!(ads_api_type(Some("sotw")), Ok("GRPC"));
        assert_eq!(ads_api_type(Some("delta")), Ok("DELTA_GRPC"));
        let err = ads_api_type(Some("DELTA")).unwrap_err();
        assert!(
            err.contains("FLEETGATE_XDS_API") && err.contains("`delta`"),
            "{err}"
        );
    }

    /// What decides the stats Envoy keeps (docs/operations.md, "Envoy's stats per tenant").
    fn stats_settings(yaml: &str, what: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{what}: {e}"));
        v["stats_config"].clone()
    }

    /// The `envoy.yaml` of the hub chart's ConfigMap template, its template expressions
    /// replaced by `0`.
    fn chart_bootstrap() -> String {
        let template = std::fs::read_to_string(
            crate::components::workspace_dir()
                .join("deploy/charts/fleetgate-hub/templates/configmaps.yaml"),
        )
        .unwrap();
        let mut lines = template.lines().skip_while(|l| l.trim() != "envoy.yaml: |");
        lines
            .next()
            .expect("the chart's ConfigMap holds envoy.yaml");
        let mut out = String::new();
        for line in lines.take_while(|l| l.is_empty() || l.starts_with("    ")) {
            let mut line = line.get(4..).unwrap_or_default().to_string();
            while let (Some(a), Some(b)) = (line.find("{{"), line.find("}}")) {
                line.replace_range(a..b + 2, "0");
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_harness_bootstrap_has_the_products_stats_settings() {
        let harness = bootstrap(
            "envoy-1",
            "127.0.0.1:9901".parse().unwrap(),
            "127.0.0.1:18000".parse().unwrap(),
        );
        let example =
            std::fs::read_to_string(crate::components::workspace_dir().join("examples/envoy.yaml"))
                .unwrap();
        let product = stats_settings(&example, "examples/envoy.yaml");
        assert!(product["stats_matcher"]["inclusion_list"].is_object());
        assert!(product["stats_tags"].is_array());
        assert_eq!(stats_settings(&chart_bootstrap(), "the chart"), product);
        assert_eq!(stats_settings(&harness, "the harness"), product);
        // The hub's own real-Envoy tests (`hub/tests/data_plane.rs`) bootstrap with these too.
        let hub_support = std::fs::read_to_string(
            crate::components::workspace_dir().join("hub/tests/support/envoy.rs"),
        )
        .unwrap();
        let needle = "const STATS: &str = r#\"";
        let start = hub_support.find(needle).expect("STATS") + needle.len();
        let end = start + hub_support[start..].find("\"#;").expect("end of STATS");
        assert_eq!(
            stats_settings(&hub_support[start..end], "hub/tests/support/envoy.rs"),
            product
        );
    }

    #[test]
    fn a_failover_bootstrap_puts_the_first_hub_first_and_health_checks_them() {
        let hubs: Vec<SocketAddr> = ["127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let yaml = bootstrap_with_failover("envoy-4", "127.0.0.1:9901".parse().unwrap(), &hubs);
        let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        let xds = &v["static_resources"]["clusters"][0];
        let groups = xds["load_assignment"]["endpoints"].as_array().unwrap();
        let ports = |g: &serde_json::Value| -> Vec<u64> {
            g["lb_endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    e["endpoint"]["address"]["socket_address"]["port_value"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(
            (groups[0]["priority"].as_u64(), ports(&groups[0])),
            (Some(0), vec![18001])
        );
        assert_eq!(
            (groups[1]["priority"].as_u64(), ports(&groups[1])),
            (Some(1), vec![18002, 18003])
        );
        assert!(
            xds["health_checks"][0]["tcp_health_check"].is_object(),
            "{yaml}"
        );
    }
}
