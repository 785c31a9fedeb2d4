//! The product agent, `fleetgate-agent`, run as a process from the cargo target dir against one
//! tenant API server, with an identity the hub issued for (tenant, cluster).

use std::path::{Path, PathBuf};

use crate::hub::{HUB_SERVER_NAME, Hub};
use crate::process::{Process, TestDir};

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    tenant: String,
    cluster: String,
    identity_dir: PathBuf,
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
        let identity_dir = hub.issue_agent_identity(tenant, cluster)?;
        let args = vec![
            "--hub".to_string(),
            hub.agent_url(),
            "--hub-server-name".to_string(),
            HUB_SERVER_NAME.to_string(),
            "--identity-dir".to_string(),
            identity_dir.display().to_string(),
            "--kubeconfig".to_string(),
            kubeconfig.display().to_string(),
        ];
        let process = Process::spawn_with_env(
            dir,
            &format!("fleetgate-agent-{tenant}-{cluster}"),
            crate::components::product_binary("fleetgate-agent")?,
            args,
            [("RUST_LOG", "info,fleetgate_spoke_agent=debug")],
        )?;
        Ok(Self {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
            identity_dir,
            process,
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// ca.crt, tls.crt, tls.key as the hub issued them.
    pub fn identity_dir(&self) -> &Path {
        &self.identity_dir
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
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
