//! An A2A agent built with the official SDK (`e2e/a2a/echo_agent.py`, PyPI `a2a-sdk`) as a
//! process on a loopback address: the upstream of the A2A e2e tests, the way a tenant's pod
//! would serve it. And the Python it runs with (`FLEETGATE_AGENTS_PYTHON`, what
//! `e2e/setup.sh agents` installs).
//!
//! Test support, outside the data path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::components::workspace_dir;
use crate::process::{Process, TestDir};

/// The Python of the agent SDKs' virtualenv (`FLEETGATE_AGENTS_PYTHON`); default: the newest
/// `agents-*` folder `e2e/setup.sh agents` completed under `~/.cache/fleetgate`.
pub fn agents_python() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("FLEETGATE_AGENTS_PYTHON") {
        let p = PathBuf::from(p);
        if !p.exists() {
            bail!("FLEETGATE_AGENTS_PYTHON: {} does not exist", p.display());
        }
        return Ok(p);
    }
    let cache = std::env::var_os("FLEETGATE_CACHE").map_or_else(
        || {
            Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/fleetgate")
        },
        PathBuf::from,
    );
    std::fs::read_dir(&cache)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("agents-"))
                && p.join(".complete").is_file()
        })
        .max()
        .map(|p| p.join("venv/bin/python"))
        .context("the A2A SDK is not installed: run `bash e2e/setup.sh agents` and export FLEETGATE_AGENTS_PYTHON")
}

/// A running `echo_agent.py`.
#[derive(Debug)]
pub struct A2aAgent {
    addr: SocketAddr,
    process: Process,
}

impl A2aAgent {
    /// Starts agent `name` on `addr`, requiring `Authorization: Bearer <key>` on its calls;
    /// `hostile_card_url` makes its card name that URL for every interface instead of its own.
    /// Returns once it accepts connections.
    pub async fn start(
        dir: &TestDir,
        name: &str,
        addr: SocketAddr,
        key: &str,
        hostile_card_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut env = vec![
            ("HOST".to_string(), addr.ip().to_string()),
            ("PORT".to_string(), addr.port().to_string()),
            ("AGENT_KEY".to_string(), key.to_string()),
        ];
        if let Some(url) = hostile_card_url {
            env.push(("HOSTILE_CARD_URL".to_string(), url.to_string()));
        }
        let process = Process::spawn_with_env(
            dir,
            &format!("a2a-agent-{name}"),
            agents_python()?,
            [workspace_dir()
                .join("e2e/a2a/echo_agent.py")
                .display()
                .to_string()],
            env,
        )?;
        let mut agent = Self { addr, process };
        let process = &mut agent.process;
        crate::eventually::try_eventually(crate::TIMEOUT, || {
            let running = process.ensure_running();
            async move {
                running?;
                tokio::net::TcpStream::connect(addr).await?;
                Ok(())
            }
        })
        .await
        .with_context(|| format!("A2A agent {name} did not listen on {addr}"))?;
        Ok(agent)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
