//! An MCP server of the official PyPI `mcp` SDK (`e2e/mcp/server.py`) as a process of a test:
//! tools `add`, `whoami`, `<name>_only` (and extra ones), prompt `greeting`, resources
//! `memo://<name>/readme` and `memo://<name>/notes/{topic}`, over streamable HTTP or HTTP+SSE;
//! with [`McpServer::start_live`], also the tools of `--live-tools` (progress, logging,
//! cancellation, a tool list that grows).
//!
//! Test support, outside the data path.

use std::net::SocketAddr;

use anyhow::Context;

use crate::components::{agents_python, workspace_dir};
use crate::process::{Process, TestDir};

/// The transport a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp,
    Sse,
}

/// A running server.
pub struct McpServer {
    pub addr: SocketAddr,
    process: Process,
}

impl McpServer {
    /// Starts server `name` on `addr` with `extra_tools` besides its own; returns once it
    /// listens.
    pub async fn start(
        dir: &TestDir,
        name: &str,
        transport: Transport,
        addr: SocketAddr,
        extra_tools: &[&str],
    ) -> anyhow::Result<Self> {
        Self::spawn(dir, name, transport, addr, extra_tools, false).await
    }

    /// [`Self::start`] with the live tools too (`server.py --live-tools`).
    pub async fn start_live(
        dir: &TestDir,
        name: &str,
        transport: Transport,
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        Self::spawn(dir, name, transport, addr, &[], true).await
    }

    async fn spawn(
        dir: &TestDir,
        name: &str,
        transport: Transport,
        addr: SocketAddr,
        extra_tools: &[&str],
        live: bool,
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            workspace_dir()
                .join("e2e/mcp/server.py")
                .display()
                .to_string(),
            "--name".into(),
            name.into(),
            "--transport".into(),
            match transport {
                Transport::StreamableHttp => "streamable-http",
                Transport::Sse => "sse",
            }
            .into(),
            "--host".into(),
            addr.ip().to_string(),
            "--port".into(),
            addr.port().to_string(),
        ];
        for t in extra_tools {
            args.extend(["--extra-tool".to_string(), (*t).to_string()]);
        }
        if live {
            args.push("--live-tools".into());
        }
        let mut process = Process::spawn(dir, &format!("mcp-{name}"), agents_python()?, args)?;
        let p = &mut process;
        crate::eventually::try_eventually(crate::TIMEOUT, || {
            let running = p.ensure_running();
            let ready = p.log().contains(&format!("READY {}", addr.port()));
            async move {
                running?;
                anyhow::ensure!(ready, "not ready yet");
                Ok(())
            }
        })
        .await
        .with_context(|| format!("MCP server {name} did not start on {addr}"))?;
        Ok(Self { addr, process })
    }

    /// Everything it logged.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
