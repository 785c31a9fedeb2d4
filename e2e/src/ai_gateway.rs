//! fleetgate's AI gateway as a process (`fleetgate-ai-gateway --hub`), programmed by the hub's
//! AI config stream on the data-plane gRPC port, the way an operator runs it next to Envoy.

use std::net::SocketAddr;

use anyhow::Context;

use crate::components::{product_binary, product_log_level};
use crate::process::{Process, TestDir};

/// A running AI gateway replica.
#[derive(Debug)]
pub struct AiGateway {
    listen: SocketAddr,
    /// Its metrics port (`--metrics-listen`).
    metrics: SocketAddr,
    process: Process,
}

impl AiGateway {
    /// Starts replica `id` listening on `listen` (Envoy's side: the hub's `dataPlane.aiGateways`)
    /// and following the hub at `hub_xds` (the hub's `xdsListen`). Returns once it accepts
    /// connections.
    pub async fn start(
        dir: &TestDir,
        id: &str,
        listen: SocketAddr,
        hub_xds: SocketAddr,
    ) -> anyhow::Result<Self> {
        let metrics = crate::ports::free_addr()?;
        let process = Process::spawn_with_env(
            dir,
            &format!("ai-gateway-{id}"),
            product_binary("fleetgate-ai-gateway")?,
            [
                "--listen".to_string(),
                listen.to_string(),
                "--hub".into(),
                format!("http://{hub_xds}"),
                "--gateway-id".into(),
                id.into(),
                "--metrics-listen".into(),
                metrics.to_string(),
            ],
            [("RUST_LOG", product_log_level())],
        )?;
        let mut gw = Self {
            listen,
            metrics,
            process,
        };
        let process = &mut gw.process;
        crate::eventually::try_eventually(crate::TIMEOUT, || {
            let running = process.ensure_running();
            async move {
                running?;
                tokio::net::TcpStream::connect(listen).await?;
                Ok(())
            }
        })
        .await
        .with_context(|| format!("AI gateway {id} did not listen on {listen}"))?;
        Ok(gw)
    }

    /// Where Envoy reaches it.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Its metrics port (`/metrics`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}
