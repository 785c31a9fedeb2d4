//! `fleetgate-ai-gateway`: parses the command line and calls [`fleetgate_ai_gateway::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fleetgate_ai_gateway::source::grpc::{HubSource, default_gateway_id};
use fleetgate_ai_gateway::source::{FileSource, StaticSource};
use fleetgate_ai_gateway::{Settings, run};

/// fleetgate's AI gateway: LLM traffic per tenant, behind Envoy.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where Envoy reaches the gateway. Must not be reachable by clients directly: the
    /// x-fleetgate-tenant and x-fleetgate-route headers are trusted.
    #[arg(long, env = "FLEETGATE_AI_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The configuration file (YAML; see docs/ai-gateway.md). Re-read when it changes or on
    /// SIGHUP. Without it (and without --hub) the gateway serves nothing.
    #[arg(long, env = "FLEETGATE_AI_CONFIG", conflicts_with = "hub")]
    config: Option<PathBuf>,
    /// The hub that programs this gateway: its data-plane gRPC address (the hub's xdsListen),
    /// e.g. http://127.0.0.1:18000. The gateway keeps serving its last configuration while the
    /// hub is unreachable. Exclusive with --config.
    #[arg(long, env = "FLEETGATE_AI_HUB")]
    hub: Option<String>,
    /// This replica's id as the hub shows it (default `<hostname>/<pid>`; the pod name is a
    /// good choice). Only with --hub.
    #[arg(long, env = "FLEETGATE_AI_GATEWAY_ID", requires = "hub")]
    gateway_id: Option<String>,
    /// Longest wait between two attempts to reach the hub, in milliseconds.
    #[arg(
        long,
        env = "FLEETGATE_AI_HUB_MAX_BACKOFF_MS",
        default_value_t = 10_000
    )]
    hub_max_backoff_ms: u64,
    /// How often the configuration file is checked for changes, in milliseconds.
    #[arg(long, env = "FLEETGATE_AI_CONFIG_POLL_MS", default_value_t = 1000)]
    config_poll_ms: u64,
    /// Upstream connect timeout, in milliseconds.
    #[arg(long, env = "FLEETGATE_AI_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    connect_timeout_ms: u64,
    /// Trust these CA certificates (a PEM bundle) for TLS to providers, besides the system's
    /// roots: a provider behind a private CA.
    #[arg(long, env = "FLEETGATE_AI_UPSTREAM_CA")]
    upstream_ca: Option<std::path::PathBuf>,
    /// The operator's metrics and health port (`/metrics`, `/healthz`, `/readyz`); never a
    /// tenant-facing address. Without it, no metrics are served.
    #[arg(long = "metrics-listen", env = "FLEETGATE_AI_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Seconds requests in flight may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "FLEETGATE_AI_SHUTDOWN_GRACE_S", default_value_t = 30)]
    shutdown_grace_s: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fleetgate_observe::log::init("info");
    let args = Args::parse();
    let mut settings = Settings::new(args.listen);
    settings.connect_timeout = Duration::from_millis(args.connect_timeout_ms);
    settings.shutdown_grace = Duration::from_secs(args.shutdown_grace_s);
    if let Some(path) = &args.upstream_ca {
        settings.upstream_roots = fleetgate_ai_gateway::provider::tls::read_roots(path)?;
    }
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --metrics-listen {addr}; pick a free address or leave the flag out"))?;
        tracing::info!(metrics = %addr, "metrics port: /metrics, /healthz, /readyz");
        tokio::spawn(fleetgate_ai_gateway::metrics::serve(
            listener,
            settings.mcp_pins.clone(),
            settings.metrics.clone(),
        ));
    }
    let (initial, source): (_, Box<dyn fleetgate_ai_gateway::source::ConfigSource>) = match (
        &args.config,
        &args.hub,
    ) {
        (Some(path), _) => {
            let (source, initial) =
                FileSource::open(path, Duration::from_millis(args.config_poll_ms))
                    .context("loading the configuration")?;
            (initial, Box::new(source))
        }
        (None, Some(hub)) => {
            let id = args.gateway_id.clone().unwrap_or_else(default_gateway_id);
            let source = HubSource::new(hub, &id, Duration::from_millis(args.hub_max_backoff_ms))?
                .with_pins(settings.mcp_pins.clone())
                .with_usage(settings.metrics.clone());
            // Budgets are counted by the same hub.
            settings.ledger = Some(std::sync::Arc::new(
                fleetgate_ai_gateway::budget::HubLedger::new(hub)?,
            ));
            tracing::info!(hub = %hub, gateway_id = %id, "following the hub's configuration stream");
            (Default::default(), Box::new(source))
        }
        (None, None) => (Default::default(), Box::new(StaticSource)),
    };
    // Off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; flushed before exiting.
    let traces = fleetgate_observe::trace::init("fleetgate-ai-gateway");
    let ran = run(settings, initial, source, shutdown_signal()).await;
    traces.shutdown().await;
    ran.context("AI gateway")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
