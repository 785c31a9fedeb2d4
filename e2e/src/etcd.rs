//! One real etcd for a test, shared by all the test's tenant API servers (each under its own
//! `--etcd-prefix`), on free loopback ports with its data in a temporary folder.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::eventually::try_eventually;
use crate::ports::free_addr;
use crate::process::{Process, TestDir};

/// A running etcd.
#[derive(Debug)]
pub struct Etcd {
    dir: TestDir,
    client_addr: SocketAddr,
    process: Process,
    _data: tempfile::TempDir,
}

impl Etcd {
    /// Starts etcd and waits until `/health` says it is healthy.
    pub async fn start(dir: &TestDir) -> anyhow::Result<Self> {
        let binary = crate::components::etcd()?;
        let data = tempfile::Builder::new()
            .prefix("fleetgate-etcd-")
            .tempdir()
            .context("creating etcd data dir")?;
        let client_addr = free_addr()?;
        let peer_addr = free_addr()?;
        let client_url = format!("http://{client_addr}");
        let peer_url = format!("http://{peer_addr}");
        let args = vec![
            "--name=e2e".to_string(),
            format!("--data-dir={}", data.path().display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=e2e={peer_url}"),
            "--initial-cluster-state=new".to_string(),
            // Tests never need durability across a machine crash; fsync dominates on slow disks.
            "--unsafe-no-fsync".to_string(),
            "--log-level=warn".to_string(),
        ];
        let mut process = Process::spawn(dir, "etcd", binary, args)?;
        let health = format!("http://{client_addr}/health");
        let waited = try_eventually(Duration::from_secs(30), || {
            let health = health.clone();
            let running = process.ensure_running();
            async move {
                running?;
                let (status, body) = crate::http::get(client_addr, "127.0.0.1", "/health", &[])
                    .await
                    .with_context(|| format!("GET {health}"))?;
                anyhow::ensure!(
                    status == 200 && body.contains("\"health\":\"true\""),
                    "status {status}, body {body}"
                );
                Ok(())
            }
        })
        .await;
        if let Err(e) = waited {
            anyhow::bail!(
                "etcd did not become healthy: {e:#}\n{}",
                process.log_tail(30)
            );
        }
        Ok(Self {
            dir: dir.clone(),
            client_addr,
            process,
            _data: data,
        })
    }

    /// `http://127.0.0.1:PORT`, for `--etcd-servers`.
    pub fn url(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    /// The test folder everything sharing this etcd writes into.
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}
