//! The product agent, `fleetgate-agent`, run as a process from the cargo target dir against one
//! tenant API server: either with an identity the hub issued for (tenant, cluster) with
//! `ca issue` ([`Agent::start`]), or with only a bootstrap token, enrolling itself and keeping
//! its identity in a Secret of its namespace ([`Agent::start_enrolling`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::hub::{HUB_SERVER_NAME, Hub};
use crate::process::{Process, TestDir};

/// Name of the Secret an enrolled agent keeps its identity in (the agent's default).
pub const IDENTITY_SECRET: &str = "fleetgate-agent-identity";

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    tenant: String,
    cluster: String,
    /// `ca issue` output; `None` for an enrolled agent.
    identity_dir: Option<PathBuf>,
    /// The bootstrap token it was started with (tests replay it).
    token: Option<String>,
    process: Process,
}

impl Agent {
    /// Issues the identity for (tenant, cluster) through `hub` and starts
    /// `fleetgate-agent --hub <hub> --identity-dir <dir> --kubeconfig <kubeconfig>`.
    pub fn start(
        dir: &TestDir,
        hub: &Hub,
        tenant: &str,
        cluster: &str,
        kubeconfig: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with_args(dir, hub, tenant, cluster, kubeconfig, &[])
    }

    /// Like [`Agent::start`], with `extra` arguments (e.g. `--secrets label`).
    pub fn start_with_args(
        dir: &TestDir,
        hub: &Hub,
        tenant: &str,
        cluster: &str,
        kubeconfig: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let identity_dir = hub.issue_agent_identity(tenant, cluster)?;
        Self::start_against(
            dir,
            &hub.agent_url(),
            &identity_dir,
            tenant,
            cluster,
            kubeconfig,
            extra,
        )
    }

    /// Starts `fleetgate-agent --hub <hub_url> --identity-dir <identity_dir> --kubeconfig
    /// <kubeconfig> <extra>`: against any server of the agent protocol whose serving certificate
    /// names [`HUB_SERVER_NAME`] (the product hub, or a [`crate::recording_hub::RecordingHub`]).
    pub fn start_against(
        dir: &TestDir,
        hub_url: &str,
        identity_dir: &Path,
        tenant: &str,
        cluster: &str,
        kubeconfig: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let identity_dir = identity_dir.to_path_buf();
        let mut args = vec![
            "--hub".to_string(),
            hub_url.to_string(),
            "--hub-server-name".to_string(),
            HUB_SERVER_NAME.to_string(),
            "--identity-dir".to_string(),
            identity_dir.display().to_string(),
            "--kubeconfig".to_string(),
            kubeconfig.display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        let process = Process::spawn_with_env(
            dir,
            &format!("fleetgate-agent-{tenant}-{cluster}"),
            crate::components::product_binary("fleetgate-agent")?,
            args,
            [("RUST_LOG", crate::components::product_log_level())],
        )?;
        Ok(Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
            identity_dir: Some(identity_dir),
            token: None,
            process,
        })
    }

    /// Starts `fleetgate-agent --hub <hub> --hub-ca <hub ca.crt> --kubeconfig <kubeconfig>` with
    /// `token` in `FLEETGATE_BOOTSTRAP_TOKEN` (kept off the command line, as a deployment would
    /// pass it from a Secret). The agent enrolls and keeps its identity in Secret
    /// [`IDENTITY_SECRET`] of `fleetgate-system` in its cluster; with `state_dir`, in files there
    /// instead. `name` tells agents of the same cluster apart in the log file names.
    #[allow(clippy::too_many_arguments)]
    pub fn start_enrolling(
        dir: &TestDir,
        hub: &Hub,
        name: &str,
        tenant: &str,
        cluster: &str,
        kubeconfig: &Path,
        token: &str,
        state_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--hub".to_string(),
            hub.agent_url(),
            "--hub-server-name".to_string(),
            HUB_SERVER_NAME.to_string(),
            "--hub-ca".to_string(),
            hub.pki_dir().join("ca.crt").display().to_string(),
            "--kubeconfig".to_string(),
            kubeconfig.display().to_string(),
        ];
        if let Some(s) = state_dir {
            args.extend(["--state-dir".to_string(), s.display().to_string()]);
        }
        let process = Process::spawn_with_env(
            dir,
            &format!("fleetgate-agent-{name}"),
            crate::components::product_binary("fleetgate-agent")?,
            args,
            [
                ("RUST_LOG", crate::components::product_log_level()),
                ("FLEETGATE_BOOTSTRAP_TOKEN", token.to_string()),
            ],
        )?;
        Ok(Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
            identity_dir: None,
            token: Some(token.to_string()),
            process,
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// ca.crt, tls.crt, tls.key as the hub issued them (`None` for an enrolled agent).
    pub fn identity_dir(&self) -> Option<&Path> {
        self.identity_dir.as_deref()
    }

    /// The bootstrap token of an enrolling agent.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Waits until the agent exits by itself; its exit status.
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_exit_status()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(anyhow::anyhow!("still running after {timeout:?}")).with_context(
                    || format!("{}:\n{}", self.process.name(), self.process.log_tail(20)),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs the agent.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the agent again with the same arguments.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()
    }
}
