//! The agent's command line and its validated, typed configuration.
//!
//! Where it sits: before the data path. `main.rs` parses [`Cli`] (flags with `FLEETGATE_*`
//! environment fallbacks) and turns it into a [`Config`] with [`Cli::validate`], which
//! [`crate::run`] consumes. Validation is pure so it is tested without touching the environment.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// How a Service backendRef becomes endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EndpointMode {
    /// Every Node's InternalIP x the Service port's nodePort (Service type NodePort/LoadBalancer).
    Node,
    /// Ready addresses of the Service's EndpointSlices (pod IPs must be routable from Envoy).
    Pod,
}

/// Where the agent reads the tenant's objects from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A live cluster; `None` means kube's inferred config (in-cluster or `KUBECONFIG`).
    Kube { kubeconfig: Option<PathBuf> },
    /// A folder of YAML manifests, re-read when files change.
    Manifests { dir: PathBuf },
}

/// Command line of `fleetgate-agent`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "fleetgate-agent",
    version,
    about = "Streams one tenant cluster's Gateway API intent to the fleetgate hub"
)]
pub struct Cli {
    /// Hub Sync endpoint, e.g. https://127.0.0.1:9443
    #[arg(long, env = "FLEETGATE_HUB")]
    pub hub: String,
    /// Folder with ca.crt (the hub CA), tls.crt and tls.key (this cluster's client identity).
    #[arg(long, env = "FLEETGATE_IDENTITY_DIR")]
    pub identity_dir: PathBuf,
    /// Name the hub's serving certificate must carry.
    #[arg(
        long,
        env = "FLEETGATE_HUB_SERVER_NAME",
        default_value = "fleetgate-hub"
    )]
    pub hub_server_name: String,
    /// Kubeconfig file of the tenant cluster (default: in-cluster or KUBECONFIG).
    #[arg(long, env = "FLEETGATE_KUBECONFIG", conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// Read objects from this folder of YAML files instead of a cluster.
    #[arg(long, env = "FLEETGATE_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// How Service backends become endpoints (default: node; with --manifests: pod unless the
    /// folder has Nodes).
    #[arg(long, env = "FLEETGATE_ENDPOINT_MODE", value_enum)]
    pub endpoint_mode: Option<EndpointMode>,
    /// Serve every Service of type LoadBalancer, not only those with
    /// spec.loadBalancerClass fleetgate.dev/hub.
    #[arg(long, env = "FLEETGATE_ALL_LOAD_BALANCERS")]
    pub all_load_balancers: bool,
}

/// The validated configuration [`crate::run`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `https://host:port` of the hub's agent endpoint.
    pub hub: String,
    pub identity_dir: PathBuf,
    pub hub_server_name: String,
    pub source: Source,
    /// `None`: decided from the source (see [`Config::effective_endpoint_mode`]).
    pub endpoint_mode: Option<EndpointMode>,
    /// Send every LoadBalancer Service, whatever its loadBalancerClass.
    pub all_load_balancers: bool,
}

/// A flag combination the agent cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The hub address is not an https URL.
    #[error(
        "--hub must be an https:// URL with host and port (got {0:?}); the hub's agent endpoint is mTLS only"
    )]
    HubNotHttps(String),
    /// The hub server name is empty.
    #[error("--hub-server-name must not be empty (the default is fleetgate-hub)")]
    EmptyServerName,
}

impl Cli {
    /// Checks the flags and builds the typed [`Config`].
    pub fn validate(self) -> Result<Config, ConfigError> {
        let rest = self
            .hub
            .strip_prefix("https://")
            .ok_or_else(|| ConfigError::HubNotHttps(self.hub.clone()))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            return Err(ConfigError::HubNotHttps(self.hub));
        }
        if self.hub_server_name.trim().is_empty() {
            return Err(ConfigError::EmptyServerName);
        }
        let source = match self.manifests {
            Some(dir) => Source::Manifests { dir },
            None => Source::Kube {
                kubeconfig: self.kubeconfig,
            },
        };
        Ok(Config {
            hub: self.hub,
            identity_dir: self.identity_dir,
            hub_server_name: self.hub_server_name,
            source,
            endpoint_mode: self.endpoint_mode,
            all_load_balancers: self.all_load_balancers,
        })
    }
}

impl Config {
    /// The endpoint mode to use: the explicit flag, else `node` for a cluster, else for a
    /// manifests folder `node` when it holds Nodes and `pod` when it does not.
    pub fn effective_endpoint_mode(&self, has_nodes: bool) -> EndpointMode {
        match (self.endpoint_mode, &self.source) {
            (Some(m), _) => m,
            (None, Source::Kube { .. }) => EndpointMode::Node,
            (None, Source::Manifests { .. }) if has_nodes => EndpointMode::Node,
            (None, Source::Manifests { .. }) => EndpointMode::Pod,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["fleetgate-agent"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| format!("{:?}", e.kind()))?;
        cli.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn flags_table() {
        let base = ["--hub", "https://127.0.0.1:9443", "--identity-dir", "/id"];
        let ok = parse(&base).unwrap();
        assert_eq!(ok.hub_server_name, "fleetgate-hub");
        assert_eq!(ok.source, Source::Kube { kubeconfig: None });
        assert_eq!(ok.effective_endpoint_mode(false), EndpointMode::Node);
        assert!(!ok.all_load_balancers);
        assert!(
            parse(&[&base[..], &["--all-load-balancers"]].concat())
                .unwrap()
                .all_load_balancers
        );

        let m = parse(&[&base[..], &["--manifests", "/m"]].concat()).unwrap();
        assert_eq!(m.source, Source::Manifests { dir: "/m".into() });
        assert_eq!(m.effective_endpoint_mode(false), EndpointMode::Pod);
        assert_eq!(m.effective_endpoint_mode(true), EndpointMode::Node);

        let forced =
            parse(&[&base[..], &["--manifests", "/m", "--endpoint-mode", "node"]].concat());
        assert_eq!(
            forced.unwrap().effective_endpoint_mode(false),
            EndpointMode::Node
        );

        let cases: &[(&[&str], &str)] = &[
            (
                &["--hub", "http://127.0.0.1:1", "--identity-dir", "/id"],
                "https://",
            ),
            (
                &["--hub", "https://127.0.0.1", "--identity-dir", "/id"],
                "https://",
            ),
            (
                &[
                    "--hub",
                    "https://h:1",
                    "--identity-dir",
                    "/id",
                    "--hub-server-name",
                    "",
                ],
                "server-name",
            ),
            (&["--hub", "https://h:1"], "missing"),
            (
                &[
                    "--hub",
                    "https://h:1",
                    "--identity-dir",
                    "/i",
                    "--kubeconfig",
                    "k",
                    "--manifests",
                    "m",
                ],
                "conflict",
            ),
            (
                &[
                    "--hub",
                    "https://h:1",
                    "--identity-dir",
                    "/i",
                    "--endpoint-mode",
                    "x",
                ],
                "invalidvalue",
            ),
        ];
        for (args, want) in cases {
            let err = parse(args).unwrap_err();
            assert!(
                err.to_lowercase().contains(want),
                "{args:?}: error {err:?} lacks {want:?}"
            );
        }
    }
}
