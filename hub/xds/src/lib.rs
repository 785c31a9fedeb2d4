//! fleetgate-hub-xds, publish (step 8 of the hub's data path): the compiled snapshot as Envoy
//! resources over ADS.
//!
//! It reads only `fleetgate-hub-model` (the [`snapshot`] the compiler, `fleetgate-hub-compile`,
//! produces); the runtime crate `fleetgate-hub` hands it each new snapshot through a watch
//! channel and serves it on the xDS listen address.
//!
//! `resources` is the pure Snapshot -> Envoy protobuf translation (`l4` for the TCP/UDP
//! listeners of LoadBalancer Services); `server` is the
//! State-of-the-World AggregatedDiscoveryService that serves the latest snapshot to every Envoy
//! and reports NACKs through [`XdsHealth`] (and every stream's events through a [`report::AdsReport`]); `cache` keeps what did not change between snapshots
//! encoded, so that one changed route does not re-encode the whole fleet. Routes to the AI
//! gateway need nothing of their own here: the compiler puts the identity headers on their
//! weighted clusters as `set` changes, which become overwriting header options (`ai_tests`).

#[cfg(test)]
mod ai_tests;
pub mod cache;
pub mod delta;
pub mod hardening;
pub mod http;
pub mod l4;
pub mod report;
pub mod resources;
pub mod scoped;
pub mod server;
mod session;
pub mod tenant_limits;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod trace;

use fleetgate_hub_model as model;
use fleetgate_hub_model::snapshot;

pub use report::{AdsReport, NoReport};
pub use server::{
    Nack, XdsError, XdsHealth, ads_service, ads_service_reporting, ads_service_traced,
    ads_service_with, data_plane_incoming, data_plane_server, serve, serve_on,
};
