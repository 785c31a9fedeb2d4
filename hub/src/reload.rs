//! Configuration reload: the hub re-reads its config file on SIGHUP and whenever the file's
//! contents change (checked every few seconds), and hands the result to `Fleet::reconfigure`.
//! On the same ticks it re-reads this host's interface addresses (`Fleet::set_host_addresses`).
//!
//! Where it sits: beside the data path, feeding `fleet` (step 6). Only what can change safely at
//! run time is taken from the new file: tenants, their clusters (`enabled`), limits, identity
//! settings and any other policy section. Listen addresses, the PKI and store paths, the trust
//! domain, the data plane, L4 pools and MCP session key rotation need a restart: a change there is logged and ignored.
//! An invalid file is refused with a logged error and the running configuration stays in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{Config, RawConfig};
use crate::fleet::Fleet;

/// How often the file is checked for changes.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Where the configuration comes from and what asks for a reload.
#[derive(Debug)]
pub struct ReloadSource {
    pub path: PathBuf,
    /// How often the file's contents are compared with the last ones read.
    pub poll: Duration,
    /// Each message asks for a reload now (the binary forwards SIGHUP here).
    pub trigger: Option<mpsc::Receiver<()>>,
}

/// `new` with every restart-only setting taken from `old`, and the names of those settings that
/// the file changed (they need a restart).
pub fn merge(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut ignored = Vec::new();
    macro_rules! keep {
        ($field:ident, $name:literal) => {
            if new.$field != old.$field {
                ignored.push($name);
            }
            new.$field = old.$field.clone();
        };
    }
    keep!(agent_listen, "agentListen");
    keep!(xds_listen, "xdsListen");
    keep!(pki_dir, "pkiDir");
    keep!(store_path, "storePath");
    keep!(store_etcd, "storeEtcd");
    keep!(trust_domain, "trustDomain");
    keep!(data_plane, "dataPlane");
    keep!(l4, "addressPools/l4PortRange");
    keep!(mcp_session_keys, "mcpSessionKeys");
    (new, ignored)
}

/// Reads and validates the file and merges it over `old`.
pub fn load(path: &Path, old: &Config) -> Result<(Config, Vec<&'static str>), String> {
    let raw = RawConfig::from_file(path).map_err(|e| e.to_string())?;
    let new = raw.validate().map_err(|e| e.to_string())?;
    Ok(merge(old, new))
}

/// Watches `source` until `stop` completes, applying every valid change to `fleet`.
pub async fn run(
    fleet: Arc<Fleet>,
    mut source: ReloadSource,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut last = std::fs::read(&source.path).ok();
    let mut tick = tokio::time::interval(source.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => false,
            Some(()) = async {
                match source.trigger.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        // This host's addresses are re-read on every tick and reload (`admit::Reserved`).
        match crate::host::interface_addresses() {
            Ok(host) => {
                fleet.set_host_addresses(host);
            }
            Err(e) => tracing::warn!(
                "cannot re-read this host's interface addresses, the last ones stay reserved: {e}"
            ),
        }
        let now = std::fs::read(&source.path).ok();
        if !forced && now == last {
            continue;
        }
        last = now;
        match load(&source.path, &fleet.config()) {
            Ok((config, ignored)) => {
                if !ignored.is_empty() {
                    tracing::warn!(
                        "config reload: {} changed but only take effect after a restart; the running values stay",
                        ignored.join(", ")
                    );
                }
                match fleet.reconfigure(Arc::new(config)) {
                    Ok(()) => {
                        tracing::info!(path = %source.path.display(), "configuration reloaded")
                    }
                    Err(e) => tracing::error!(
                        "config reload could not be stored, the previous configuration stays in force: {e}"
                    ),
                }
            }
            Err(e) => tracing::error!(
                "config reload refused, the previous configuration stays in force: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(agent: &str, clusters: &str) -> Config {
        let yaml = format!(
            r#"
agentListen: {agent}
xdsListen: 127.0.0.1:18000
pkiDir: /tmp/pki
storePath: /tmp/store.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{{port: 80, bind: "127.0.0.1:18080"}}]
tenants:
- name: a
  hostnames: ['*.a.example']
  clusters: {clusters}
"#
        );
        serde_yaml::from_str::<RawConfig>(&yaml)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn tenants_change_and_restart_only_settings_stay() {
        let old = config(
            "127.0.0.1:7443",
            "[{name: c1, endpointCidrs: [127.0.1.0/24]}]",
        );
        let new = config(
            "127.0.0.1:9999",
            "[{name: c1, endpointCidrs: [127.0.1.0/24], enabled: false}, {name: c2, endpointCidrs: [127.0.1.0/24]}]",
        );
        let (merged, ignored) = merge(&old, new);
        assert_eq!(ignored, vec!["agentListen"]);
        assert_eq!(merged.agent_listen, old.agent_listen);
        assert_eq!(
            merged.registration("a", "c1"),
            crate::config::Registration::Disabled
        );
        assert_eq!(
            merged.registration("a", "c2"),
            crate::config::Registration::Active
        );
    }

    #[test]
    fn an_invalid_file_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.yaml");
        let old = config("127.0.0.1:7443", "[]");
        std::fs::write(&path, "agentListen: nope\n").unwrap();
        let e = load(&path, &old).unwrap_err();
        assert!(e.contains("not valid"), "{e}");
    }
}
