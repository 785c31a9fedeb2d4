//! fleetgate's end-to-end harness: real etcd, kube-apiservers, Envoy, hub, agents and echo
//! backends, all on loopback, behind a readable API.
//!
//! Where it sits: outside the data path, driving all of it. A test starts a [`Fleet`] (or the
//! single pieces it needs), applies tenant YAML to a [`TenantCluster`] the way a tenant would,
//! and checks what comes out of Envoy's data-plane listener and what status lands on the
//! tenant's objects, with [`eventually`] instead of sleeps.
//!
//! Real components are found through `FLEETGATE_ETCD`, `FLEETGATE_KUBE_APISERVER`,
//! `FLEETGATE_GATEWAY_CRDS`, `FLEETGATE_ENVOY`, `FLEETGATE_AI_PYTHON` and `FLEETGATE_OIDC_PROVIDER` (defaults: what `e2e/setup.sh` installs under
//! `~/.cache/fleetgate`); the product binaries in the cargo target dir (`cargo build --bins`).
//!
//! Every process a test starts writes its output into one [`TestDir`] under
//! `target/e2e-logs/<test>-<random>`, which is removed when the test passes and kept (its path
//! printed) when it fails.

pub mod a2a_agent;
pub mod agent;
pub mod ai_fleet;
pub mod ai_gateway;
pub mod apiserver;
pub mod browser;
pub mod closed_loop;
pub mod components;
pub mod echo;
pub mod envoy;
pub mod etcd;
pub mod eventually;
pub mod fixtures;
pub mod fleet;
pub mod grafana;
pub mod grpc_echo;
pub mod http;
pub mod hub;
pub mod kubeconfig;
pub mod llama;
pub mod load;
pub mod mcp_server;
pub mod mock_llm;
pub mod objects;
pub mod oidc_provider;
pub mod otlp;
pub mod own_address;
pub mod pki;
pub mod ports;
pub mod process;
pub mod recording_hub;
pub mod scale;
pub mod secrets;
pub mod sync_client;
pub mod tcp_echo;
pub mod tls;

pub use agent::Agent;
pub use ai_gateway::AiGateway;
pub use apiserver::TenantCluster;
pub use echo::Echo;
pub use envoy::Envoy;
pub use etcd::Etcd;
pub use eventually::eventually;
pub use fleet::{Fleet, FleetOptions, FleetTenant, TenantSpec};
pub use hub::{Hub, HubTenant};
pub use llama::LlamaServer;
pub use process::{Process, TestDir};

/// The timeout tests use for anything that involves the real components: generous, since the
/// machines that run these tests may have two cores shared by several API servers.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
