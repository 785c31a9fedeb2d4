//! A real Envoy (FLEETGATE_ENVOY, installed by `e2e/setup.sh`) bootstrapped to fetch everything
//! over ADS from an xDS address, and a plain HTTP client for its listeners and admin port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const DEADLINE: Duration = Duration::from_secs(30);

/// A free loopback port (bound and released; Envoy binds it right after).
fn free_port() -> u16 {
    super::free_port()
}

/// What fleetgate's Envoy bootstraps add for per-tenant stats (examples/envoy.yaml; kept equal
/// by e2e `envoy.rs` `the_harness_bootstrap_has_the_products_stats_settings`), flushed every
/// second here rather than every 5 s.
const STATS: &str = r#"stats_flush_interval: 1s
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
    grpc_service:
      envoy_grpc: { cluster_name: xds_cluster }
"#;

/// A running Envoy, killed on drop.
pub struct Envoy {
    pub admin: SocketAddr,
    child: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn envoy_binary() -> PathBuf {
    match std::env::var_os("FLEETGATE_ENVOY") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "FLEETGATE_ENVOY is not set: run `e2e/setup.sh` and export FLEETGATE_ENVOY=<path to envoy>"
        ),
    }
}

/// Which ADS variant the Envoy asks for (`ads_config.api_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdsApi {
    /// State of the World, `GRPC` (fleetgate's bootstraps).
    Sotw,
    /// Incremental, `DELTA_GRPC`.
    Delta,
}

impl AdsApi {
    fn api_type(self) -> &'static str {
        match self {
            AdsApi::Sotw => "GRPC",
            AdsApi::Delta => "DELTA_GRPC",
        }
    }
}

impl Envoy {
    pub fn start(node_id: &str, xds: SocketAddr) -> Self {
        Self::start_over(node_id, xds, AdsApi::Sotw)
    }

    /// [`Envoy::start`] asking for the ADS variant `api`.
    pub fn start_over(node_id: &str, xds: SocketAddr, api: AdsApi) -> Self {
        Self::start_with(node_id, xds, api, "")
    }

    /// [`Envoy::start`] tagging its stats with the tenant and streaming them to the hub every
    /// second (`fleetgate_tenant` and the metrics_service sink, as fleetgate's bootstraps do).
    pub fn start_reporting_stats(node_id: &str, xds: SocketAddr) -> Self {
        Self::start_with(node_id, xds, AdsApi::Sotw, STATS)
    }

    fn start_with(node_id: &str, xds: SocketAddr, api: AdsApi, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin_port = free_port();
        let bootstrap = format!(
            r#"node:
  id: {node_id}
  cluster: fleetgate
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
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
              socket_address: {{ address: {ip}, port_value: {port} }}
{extra}"#,
            api_type = api.api_type(),
            ip = xds.ip(),
            port = xds.port(),
        );
        let path = dir.path().join("bootstrap.yaml");
        std::fs::write(&path, bootstrap).unwrap();
        let log = dir.path().join("envoy.log");
        let child = tokio::process::Command::new(envoy_binary())
            .arg("--config-path")
            .arg(&path)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "warn",
            ])
            .arg("--log-path")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start Envoy (FLEETGATE_ENVOY); run e2e/setup.sh");
        Self {
            admin: format!("127.0.0.1:{admin_port}").parse().unwrap(),
            child,
            log,
            _dir: dir,
        }
    }

    /// Panics with Envoy's log if it exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("Envoy exited ({status}):\n{log}");
        }
    }

    /// Waits until the admin interface (127.0.0.1 only) reports LIVE: the initial xDS fetch
    /// from the hub is done.
    pub async fn wait_ready(&mut self) {
        let c = client();
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            self.assert_running();
            if let Some((StatusCode::OK, body)) = get(&c, self.admin, "admin", "/ready").await
                && body.trim() == "LIVE"
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Envoy not LIVE after {DEADLINE:?}; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GET `path` with `Host: host` through the data plane; `None` when the connection fails.
pub async fn get(
    c: &HttpClient,
    dp: SocketAddr,
    host: &str,
    path: &str,
) -> Option<(StatusCode, String)> {
    let req = Request::get(format!("http://{dp}{path}"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), c.request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}
