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

/// The label a Secret must carry (value `true`) to be read with `--secrets label`.
pub const EXPOSE_LABEL: &str = "fleetgate.dev/expose";

/// Which TLS Secrets (type `kubernetes.io/tls`) the agent reads in a live cluster (`--secrets`).
///
/// Every mode also filters on the Secret type server-side. What each mode needs from RBAC is in
/// `deploy/` and docs/security.md ("What the agent may read in a tenant cluster").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretAccess {
    /// `cluster`: TLS Secrets of every namespace (list/watch on Secrets cluster-wide).
    #[default]
    Cluster,
    /// `label`: only TLS Secrets labelled [`EXPOSE_LABEL`]`=true`, in every namespace. The label
    /// selector narrows what the apiserver sends, not what RBAC grants (still cluster-wide).
    Label,
    /// `namespaces=a,b`: TLS Secrets of these namespaces only (one watch each); RBAC is a Role
    /// per namespace. Sorted, without duplicates, never empty.
    Namespaces(Vec<String>),
}

impl SecretAccess {
    /// Parses a `--secrets` value: `cluster`, `label` or `namespaces=NS[,NS...]`.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::BadSecrets {
            value: value.to_string(),
            why: why.to_string(),
        };
        match value.trim() {
            "cluster" => Ok(Self::Cluster),
            "label" => Ok(Self::Label),
            v => {
                let Some(list) = v.strip_prefix("namespaces=") else {
                    return Err(bad("unknown mode"));
                };
                let mut names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err(bad("namespaces= needs at least one namespace"));
                }
                if let Some(n) = names.iter().find(|n| !is_dns_label(n)) {
                    return Err(bad(&format!("{n:?} is not a namespace name")));
                }
                names.sort();
                names.dedup();
                Ok(Self::Namespaces(names))
            }
        }
    }
}

impl std::fmt::Display for SecretAccess {
    /// The `--secrets` value that selects this mode.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cluster => f.write_str("cluster"),
            Self::Label => f.write_str("label"),
            Self::Namespaces(names) => write!(f, "namespaces={}", names.join(",")),
        }
    }
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
    /// Hub Sync endpoint, e.g. https://127.0.0.1:9443; several hubs sharing one store
    /// (replicas on etcd) comma-separated: the agent moves to the next when a stream ends.
    /// Enrollment and certificate renewal use the first.
    #[arg(long, env = "FLEETGATE_HUB")]
    pub hub: String,
    /// Folder with ca.crt (the hub CA), tls.crt and tls.key (this cluster's client identity,
    /// from `fleetgate-hub ca issue`); never renewed. Without it the agent enrolls with
    /// --bootstrap-token and keeps and renews its identity itself.
    #[arg(long, env = "FLEETGATE_IDENTITY_DIR", conflicts_with_all = ["bootstrap_token", "state_dir", "hub_ca"])]
    pub identity_dir: Option<PathBuf>,
    /// Single-use token from `fleetgate-hub token create`: enrolls this cluster when no valid
    /// identity is stored yet (or when the token differs from the one the stored identity came
    /// from).
    #[arg(long, env = "FLEETGATE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// The hub CA certificate (the hub's `ca.crt`), to trust the hub while enrolling.
    #[arg(long, env = "FLEETGATE_HUB_CA")]
    pub hub_ca: Option<PathBuf>,
    /// Keep the enrolled identity in files in this folder instead of a Secret (required with
    /// --manifests unless --identity-dir is given).
    #[arg(long, env = "FLEETGATE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Name of the Secret that keeps the enrolled identity (cluster mode).
    #[arg(
        long,
        env = "FLEETGATE_IDENTITY_SECRET",
        default_value = "fleetgate-agent-identity"
    )]
    pub identity_secret: String,
    /// The agent's own namespace, where that Secret lives.
    #[arg(long, env = "FLEETGATE_NAMESPACE", default_value = "fleetgate-system")]
    pub namespace: String,
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
    /// Which TLS Secrets the agent reads: `cluster` (every namespace; RBAC: list/watch Secrets
    /// cluster-wide), `label` (only those labelled fleetgate.dev/expose=true; same RBAC, fewer
    /// Secrets sent to the agent) or `namespaces=NS[,NS...]` (only those namespaces; RBAC: a Role
    /// in each). deploy/agent-rbac.yaml grants `namespaces=default`.
    #[arg(long, env = "FLEETGATE_SECRETS", default_value = "cluster")]
    pub secrets: String,
    /// Also claim the GatewayClass of this name, whatever its controllerName (repeatable, or
    /// comma-separated in FLEETGATE_GATEWAY_CLASSES), e.g. `--gateway-class agentgateway` to serve
    /// the Gateways a tenant wrote for agentgateway. The agent writes that GatewayClass's
    /// Accepted status as it does for its own. Default: none (only controllerName
    /// fleetgate.dev/hub is claimed).
    #[arg(
        long = "gateway-class",
        env = "FLEETGATE_GATEWAY_CLASSES",
        value_delimiter = ','
    )]
    pub gateway_classes: Vec<String>,
    /// Translate the Ingresses of the IngressClass of this name (besides those of an
    /// IngressClass whose spec.controller is fleetgate.dev/hub); see docs/ingress.md.
    #[arg(
        long = "ingress-class",
        env = "FLEETGATE_INGRESS_CLASS",
        default_value = DEFAULT_INGRESS_CLASS
    )]
    pub ingress_class: String,
    /// Serve Prometheus metrics, /healthz and /readyz on this address (e.g. 0.0.0.0:9091);
    /// never a tenant-facing one. Off when unset.
    #[arg(long = "metrics-listen", env = "FLEETGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The IngressClass the agent claims by name unless told otherwise (`--ingress-class`).
pub const DEFAULT_INGRESS_CLASS: &str = "fleetgate";

/// A bootstrap token; its Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken(pub String);

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BootstrapToken(<redacted>)")
    }
}

/// Where the enrolled identity is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Files in a folder (`--state-dir`).
    StateDir(PathBuf),
    /// A Secret in the agent's namespace.
    Secret { namespace: String, name: String },
}

/// Where the agent's mTLS identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// Files an operator placed (`fleetgate-hub ca issue`); used as they are.
    Dir(PathBuf),
    /// Enrolled with a bootstrap token, kept in `keep` and renewed by the agent.
    Enrolled {
        token: Option<BootstrapToken>,
        hub_ca: Option<PathBuf>,
        keep: Keep,
    },
}

/// The validated configuration [`crate::run`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `https://host:port` of the hub's agent endpoint (the first of `hubs`: enrollment and
    /// renewal go there).
    pub hub: String,
    /// Every hub the Sync stream may use, in turn.
    pub hubs: Vec<String>,
    pub identity: IdentitySource,
    pub hub_server_name: String,
    pub source: Source,
    /// `None`: decided from the source (see [`Config::effective_endpoint_mode`]).
    pub endpoint_mode: Option<EndpointMode>,
    /// Send every LoadBalancer Service, whatever its loadBalancerClass.
    pub all_load_balancers: bool,
    /// Which TLS Secrets the cluster watch reads.
    pub secrets: SecretAccess,
    /// GatewayClass names claimed besides those of controllerName fleetgate.dev/hub
    /// (`--gateway-class`), sorted, without duplicates.
    pub gateway_classes: Vec<String>,
    /// The IngressClass claimed by name (`--ingress-class`).
    pub ingress_class: String,
    /// `--metrics-listen`: the operator's metrics and health port.
    pub metrics_listen: Option<std::net::SocketAddr>,
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
    /// Manifests mode has no Secret to keep an enrolled identity in.
    #[error(
        "with --manifests, give --identity-dir (certificate files) or --state-dir (where the identity enrolled with --bootstrap-token is kept)"
    )]
    NoIdentityStorage,
    /// A bootstrap token without the CA to trust the hub by.
    #[error(
        "--bootstrap-token needs --hub-ca: the hub CA certificate (ca.crt of the hub's PKI directory) the agent trusts the hub by while enrolling"
    )]
    TokenWithoutHubCa,
    /// The Secret name or namespace is not a Kubernetes name.
    #[error("--{flag} {value:?} is not a valid Kubernetes name")]
    BadName { flag: &'static str, value: String },
    /// `--secrets` is not one of the modes.
    #[error(
        "--secrets {value:?}: {why}; use cluster, label (only Secrets labelled fleetgate.dev/expose=true) or namespaces=NS[,NS...]"
    )]
    BadSecrets { value: String, why: String },
    /// A `--gateway-class` value is not a GatewayClass name.
    #[error(
        "--gateway-class {0:?} is not a GatewayClass name (a lowercase DNS subdomain, e.g. agentgateway)"
    )]
    BadGatewayClass(String),
    /// The `--ingress-class` value is not an IngressClass name.
    #[error(
        "--ingress-class {0:?} is not an IngressClass name (a lowercase DNS subdomain, e.g. fleetgate)"
    )]
    BadIngressClass(String),
}

impl Cli {
    /// Checks the flags and builds the typed [`Config`].
    pub fn validate(self) -> Result<Config, ConfigError> {
        let hubs: Vec<String> = self.hub.split(',').map(|h| h.trim().to_string()).collect();
        for hub in &hubs {
            let rest = hub
                .strip_prefix("https://")
                .ok_or_else(|| ConfigError::HubNotHttps(hub.clone()))?;
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
                return Err(ConfigError::HubNotHttps(hub.clone()));
            }
        }
        if self.hub_server_name.trim().is_empty() {
            return Err(ConfigError::EmptyServerName);
        }
        let token = self
            .bootstrap_token
            .filter(|t| !t.trim().is_empty())
            .map(BootstrapToken);
        if token.is_some() && self.hub_ca.is_none() {
            return Err(ConfigError::TokenWithoutHubCa);
        }
        for (flag, value) in [
            ("identity-secret", &self.identity_secret),
            ("namespace", &self.namespace),
        ] {
            if !is_dns_subdomain(value) {
                return Err(ConfigError::BadName {
                    flag,
                    value: value.clone(),
                });
            }
        }
        let secrets = SecretAccess::parse(&self.secrets)?;
        let mut gateway_classes: Vec<String> = self
            .gateway_classes
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = gateway_classes.iter().find(|c| !is_dns_subdomain(c)) {
            return Err(ConfigError::BadGatewayClass(bad.clone()));
        }
        gateway_classes.sort();
        gateway_classes.dedup();
        let ingress_class = self.ingress_class.trim().to_string();
        if !is_dns_subdomain(&ingress_class) {
            return Err(ConfigError::BadIngressClass(self.ingress_class));
        }
        let identity = match (self.identity_dir, self.state_dir) {
            (Some(dir), _) => IdentitySource::Dir(dir),
            (None, Some(dir)) => IdentitySource::Enrolled {
                token,
                hub_ca: self.hub_ca,
                keep: Keep::StateDir(dir),
            },
            (None, None) if self.manifests.is_some() => {
                return Err(ConfigError::NoIdentityStorage);
            }
            (None, None) => IdentitySource::Enrolled {
                token,
                hub_ca: self.hub_ca,
                keep: Keep::Secret {
                    namespace: self.namespace,
                    name: self.identity_secret,
                },
            },
        };
        let source = match self.manifests {
            Some(dir) => Source::Manifests { dir },
            None => Source::Kube {
                kubeconfig: self.kubeconfig,
            },
        };
        Ok(Config {
            hub: hubs[0].clone(),
            hubs,
            identity,
            hub_server_name: self.hub_server_name,
            source,
            endpoint_mode: self.endpoint_mode,
            all_load_balancers: self.all_load_balancers,
            secrets,
            gateway_classes,
            ingress_class,
            metrics_listen: self.metrics_listen,
        })
    }
}

/// An RFC 1123 label (what a namespace name must be).
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
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

        // Without --identity-dir the agent enrolls and keeps its identity in a Secret (cluster)
        // or in --state-dir.
        let enrolled = parse(&[
            "--hub",
            "https://h:1",
            "--bootstrap-token",
            "fgb1.x",
            "--hub-ca",
            "/ca.crt",
        ])
        .unwrap();
        assert_eq!(
            enrolled.identity,
            IdentitySource::Enrolled {
                token: Some(BootstrapToken("fgb1.x".into())),
                hub_ca: Some("/ca.crt".into()),
                keep: Keep::Secret {
                    namespace: "fleetgate-system".into(),
                    name: "fleetgate-agent-identity".into()
                }
            }
        );
        assert!(!format!("{enrolled:?}").contains("fgb1.x"));
        let files = parse(&[
            "--hub",
            "https://h:1",
            "--manifests",
            "/m",
            "--state-dir",
            "/s",
        ])
        .unwrap();
        assert!(matches!(
            files.identity,
            IdentitySource::Enrolled {
                token: None,
                keep: Keep::StateDir(_),
                ..
            }
        ));

        let forced =
            parse(&[&base[..], &["--manifests", "/m", "--endpoint-mode", "node"]].concat());
        assert_eq!(
            forced.unwrap().effective_endpoint_mode(false),
            EndpointMode::Node
        );

        let several = parse(&[
            "--hub",
            "https://h1:9443, https://h2:9443",
            "--identity-dir",
            "/id",
        ])
        .unwrap();
        assert_eq!(several.hubs, ["https://h1:9443", "https://h2:9443"]);
        assert_eq!(
            several.hub, "https://h1:9443",
            "enrollment and renewal use the first"
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
                &["--hub", "https://h:1,http://h:2", "--identity-dir", "/id"],
                "\"http://h:2\"",
            ),
            (
                &["--hub", "https://h:1,", "--identity-dir", "/id"],
                "(got \"\")",
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
            (
                &["--hub", "https://h:1", "--manifests", "/m"],
                "--state-dir",
            ),
            (
                &["--hub", "https://h:1", "--bootstrap-token", "t"],
                "--hub-ca",
            ),
            (
                &[
                    "--hub",
                    "https://h:1",
                    "--identity-dir",
                    "/i",
                    "--bootstrap-token",
                    "t",
                ],
                "argumentconflict",
            ),
            (
                &["--hub", "https://h:1", "--identity-secret", "Bad_Name"],
                "not a valid kubernetes name",
            ),
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

    #[test]
    fn gateway_class_flag_table() {
        let base = ["--hub", "https://127.0.0.1:9443", "--identity-dir", "/id"];
        assert!(
            parse(&base).unwrap().gateway_classes.is_empty(),
            "off by default"
        );
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        let ok: &[(&[&str], &[&str])] = &[
            (&["--gateway-class", "agentgateway"], &["agentgateway"]),
            (
                &[
                    "--gateway-class",
                    "b",
                    "--gateway-class",
                    "a",
                    "--gateway-class",
                    "b",
                ],
                &["a", "b"],
            ),
            (
                &["--gateway-class", "agentgateway,internal"],
                &["agentgateway", "internal"],
            ),
            (&["--gateway-class", ""], &[]),
        ];
        for (args, want) in ok {
            assert_eq!(with(args).unwrap().gateway_classes, *want, "{args:?}");
        }
        for bad in ["Agent_Gateway", "-x", "a..b"] {
            let err = with(&[&format!("--gateway-class={bad}")]).unwrap_err();
            assert!(
                err.contains(&format!(
                    "--gateway-class {bad:?} is not a GatewayClass name"
                )),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ingress_class_flag_table() {
        let base = ["--hub", "https://127.0.0.1:9443", "--identity-dir", "/id"];
        assert_eq!(parse(&base).unwrap().ingress_class, DEFAULT_INGRESS_CLASS);
        let with = |v: &str| parse(&[&base[..], &[&format!("--ingress-class={v}")]].concat());
        assert_eq!(with("internal").unwrap().ingress_class, "internal");
        assert_eq!(with(" web.example ").unwrap().ingress_class, "web.example");
        for bad in ["", "Web", "a..b"] {
            let err = with(bad).unwrap_err();
            assert!(
                err.contains(&format!(
                    "--ingress-class {bad:?} is not an IngressClass name"
                )),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn secrets_modes_table() {
        let base = ["--hub", "https://127.0.0.1:9443", "--identity-dir", "/id"];
        let with = |v: &str| parse(&[&base[..], &["--secrets", v]].concat());
        assert_eq!(parse(&base).unwrap().secrets, SecretAccess::Cluster);
        let ok: &[(&str, SecretAccess)] = &[
            ("cluster", SecretAccess::Cluster),
            ("label", SecretAccess::Label),
            (
                "namespaces=web",
                SecretAccess::Namespaces(vec!["web".into()]),
            ),
            (
                "namespaces=web, certs,web,",
                SecretAccess::Namespaces(vec!["certs".into(), "web".into()]),
            ),
        ];
        for (value, want) in ok {
            let got = with(value).unwrap().secrets;
            assert_eq!(&got, want, "{value}");
            // Display gives back a value that selects the same mode.
            assert_eq!(&SecretAccess::parse(&got.to_string()).unwrap(), want);
        }
        let bad: &[(&str, &str)] = &[
            ("", "unknown mode"),
            ("all", "unknown mode"),
            ("Cluster", "unknown mode"),
            ("namespaces", "unknown mode"),
            ("namespaces=", "at least one namespace"),
            ("namespaces=,", "at least one namespace"),
            ("namespaces=Web", "\"Web\" is not a namespace name"),
            ("namespaces=a.b", "not a namespace name"),
            ("namespaces=-a", "not a namespace name"),
        ];
        for (value, want) in bad {
            let err = with(value).unwrap_err();
            assert!(err.contains(want), "{value:?}: {err}");
            assert!(
                err.contains("use cluster, label") && err.contains("namespaces=NS"),
                "{value:?}: the error lists the modes: {err}"
            );
        }
    }
}
