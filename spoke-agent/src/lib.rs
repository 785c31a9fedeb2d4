//! The fleetgate spoke agent: runs in one tenant cluster (or over a folder of YAML), turns the
//! tenant's Gateway API intent into self-contained `fleetgate.spoke.v1` objects, streams them to
//! the hub over mTLS and writes the hub's status back onto the tenant's objects.
//!
//! The module tree follows the data path:
//! [`watch`] / [`manifests`] (sources of a [`state::ClusterState`] snapshot of the kinds in
//! [`crd`] and `gateway-api`) -> [`claim`] (which objects are fleetgate's) -> [`resolve`]
//! (references -> endpoints and certificates, in the agent's own types) -> [`translate`] +
//! [`l4route`] + [`l4`] (pure: snapshot -> proto intent) -> [`diff`] + [`sync`] (the gRPC stream
//! to the hub) -> [`status`] (hub status -> tenant objects).
//! [`run`] wires them together; `main.rs` only parses flags. [`enroll`] gets the agent's mTLS
//! identity with a bootstrap token, keeps it (Secret or `--state-dir`) and renews it.

pub mod claim;
pub mod config;
pub mod crd;
pub mod diff;
pub mod enroll;
pub mod identity;
pub mod l4;
pub mod l4route;
pub mod lag;
pub mod manifests;
pub mod metrics;
pub mod resolve;
pub mod run;
pub mod state;
pub mod status;
pub mod sync;
pub mod test_support;
pub mod translate;
pub mod watch;

pub use config::{Config, EndpointMode, Source};
pub use run::{RunError, run};

pub use claim::CONTROLLER_NAME;
/// Field manager of every server-side apply the agent makes.
pub const FIELD_MANAGER: &str = "fleetgate-agent";
/// Version reported in Hello.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
