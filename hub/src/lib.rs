//! fleetgate-hub: the central control plane of fleetgate.
//!
//! The data path through this crate, in order:
//! `sync` (gRPC server for agents; tenant identity from the peer certificate)
//! -> `admit` (validation and tenant policy; wire types become `model` types here)
//! -> `fleet` (the one writer of accepted state; `allocate` gives LoadBalancer Service ports an
//! address and port) -> `store` (durable intent, hostname claims, L4 allocations)
//! -> `compile` (pure: all accepted intent -> one data-plane snapshot + object statuses)
//! -> `xds` (the snapshot as Envoy resources over ADS)
//! -> back to `sync`, which streams each cluster's statuses to its agent.
//!
//! `identity` is the hub's CA (creating it, issuing agent certificates, reading SPIFFE IDs);
//! `enroll` trades bootstrap tokens for certificates and renews them; `config` is the
//! operator's YAML file, `reload` re-reads it at run time; `run` wires it all together.
//!
//! Limits (docs/limits.md): `quotas` (the `quotas:` config), `admit::quota` (object quotas per
//! tenant), `rate` (update rate per cluster), `traffic_limits` (each tenant's data-plane limits
//! on the snapshot, turned into Envoy filters by `xds::tenant_limits`; `xds::hardening` is the
//! edge hardening of every listener), `seal` (tenant private keys encrypted in the store).

pub mod admit;
pub mod allocate;
pub mod compile;
pub mod config;
pub mod enroll;
pub mod fleet;
pub mod grace;
pub mod host;
pub mod identity;
pub mod model;
pub mod quotas;
pub mod rate;
pub mod reload;
pub mod run;
pub mod seal;
pub mod store;
pub mod sync;
pub mod traffic_limits;
pub mod xds;
