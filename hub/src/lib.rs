//! fleetgate-hub: the central control plane of fleetgate, and its runtime crate.
//!
//! The pure steps of the data path are crates of their own under `hub/`, re-exported here under
//! their module names: `model` (`fleetgate-hub-model`), `admit` (`fleetgate-hub-admit`),
//! `compile` (`fleetgate-hub-compile`) and `xds` (`fleetgate-hub-xds`); this crate holds what does
//! I/O (streams, the store, the clock, files) and wires them (docs/architecture.md, the crate
//! graph).
//!
//! The data path through the hub, in order:
//! `sync` (gRPC server for agents; tenant identity from the peer certificate)
//! -> `admit` (validation and tenant policy; wire types become `model` types here)
//! -> `fleet` (the one writer of accepted state; `allocate` gives LoadBalancer Service ports an
//! address and port) -> `store` (durable intent, hostname claims, L4 allocations)
//! -> `compile` (pure: all accepted intent -> one data-plane snapshot + object statuses)
//! -> `xds` (the snapshot as Envoy resources over ADS) and `ai_config` (its AI part, per
//! tenant, to the AI gateways, on the same port)
//! -> back to `sync`, which streams each cluster's statuses to its agent.
//!
//! `identity` is the hub's CA (creating it, issuing agent certificates, reading SPIFFE IDs);
//! `enroll` trades bootstrap tokens for certificates and renews them; `config` is the
//! operator's YAML file, `reload` re-reads it at run time; `run` wires it all together.
//! `metrics` and `admin` are the operator's port: Prometheus metrics, health, and the admin
//! API (tenants, clusters, objects, allocations; disable, enable, revoke, bootstrap tokens)
//! that `fleetgate-hub admin` talks to.
//!
//! Limits (docs/limits.md): `quotas` (the `quotas:` config), `admit::quota` (object quotas per
//! tenant), `rate` (update rate per cluster), `traffic_limits` (each tenant's data-plane limits
//! on the snapshot, turned into Envoy filters by `xds::tenant_limits`; `xds::hardening` is the
//! edge hardening of every listener), `seal` (tenant private keys encrypted in the store).

// Step 4, sync: the agents' stream; `peer` is the identity from the peer certificate.
pub mod peer;
pub mod sync;

// Step 5, admit: `admit` (crate `fleetgate-hub-admit`) and the update rate of each cluster.
pub use fleetgate_hub_admit as admit;
pub mod rate;

// Step 6, store: the one writer, the durable file, its sealed keys, the grace period.
pub use fleetgate_hub_model::allocate;
pub mod fleet;
pub mod grace;
pub mod seal;
pub mod session_secret;
pub mod store;
// Hubs sharing a store follow what the others accepted.
pub mod replicate;

// Step 7, compile (crate `fleetgate-hub-compile`), then each tenant's limits on the snapshot.
pub use fleetgate_hub_compile as compile;
pub mod traffic_limits;

// Step 8, publish (crate `fleetgate-hub-xds`), and the AI gateways' configuration stream.
pub mod ai_config;
pub use fleetgate_hub_xds as xds;
// Beside it, for the operator: the connected Envoys and how fast a change reaches them.
pub mod data_plane;
// Envoy's request stats per tenant, streamed by Envoy's stats sink to the same port.
pub mod envoy_stats;

// The model every step past admission speaks (crate `fleetgate-hub-model`).
pub use fleetgate_hub_model as model;

// Identity: the hub's CA and enrollment.
pub mod enroll;
pub mod identity;

// The operator's file, its reload, this host, and the wiring.
pub mod config;
pub mod host;
pub mod quotas;
pub mod reload;
pub mod run;

// The operator's view: metrics and health on the admin port, and the admin API and CLI there.
pub mod admin;
pub mod heap;
pub mod metrics;
