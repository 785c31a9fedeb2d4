//! A real Envoy programmed by the hub over ADS (SotW gRPC, plaintext, loopback).
//!
//! The bootstrap is the shared contract: node id `envoy-<n>`, node cluster `fleetgate`, listeners
//! and clusters via ADS from the static cluster `xds_cluster` (HTTP/2) that points to the hub's
//! `xdsListen`. The admin interface is on 127.0.0.1 at its own free port, used only to see
//! readiness and dump config when debugging. xDS reconnects back off at most 2 s, so a restarted
//! hub is picked up quickly.

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
    process: Process,
}

/// The bootstrap YAML for node `node_id` fetching everything from `xds`.
pub fn bootstrap(node_id: &str, admin: SocketAddr, xds: SocketAddr) -> String {
    format!(
        r#"node:
  id: {node_id}
  cluster: fleetgate
admin:
  address:
    socket_address: {{ address: {admin_ip}, port_value: {admin_port} }}
overload_manager:
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
      threshold: {{ value: 0.95 }}
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: {{ value: 0.98 }}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
        retry_policy:
          retry_back_off: {{ base_interval: 0.25s, max_interval: 2s }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {xds_ip}, port_value: {xds_port} }}
"#,
        admin_ip = admin.ip(),
        admin_port = admin.port(),
        xds_ip = xds.ip(),
        xds_port = xds.port(),
    )
}

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
        let bootstrap = dir.write(
            &format!("{node_id}-bootstrap.yaml"),
            bootstrap(&node_id, admin, xds),
        )?;
        let args = vec![
            "-c".to_string(),
            bootstrap.display().to_string(),
            "--concurrency".to_string(),
            "1".to_string(),
            "--use-dynamic-base-id".to_string(),
            "--log-level".to_string(),
            "info".to_string(),
            "--component-log-level".to_string(),
            "upstream:debug,config:debug".to_string(),
        ];
        let process = Process::spawn(dir, &node_id, crate::components::envoy()?, args)?;
        let mut envoy = Self {
            node_id,
            admin,
            bootstrap,
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

    /// The admin `/config_dump`, for failure messages.
    pub async fn config_dump(&self) -> anyhow::Result<String> {
        Ok(self.admin_get("/config_dump").await?.1)
    }

    /// Kills Envoy.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Kills and starts Envoy again with the same bootstrap, and waits for its admin interface.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_admin().await
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
}
