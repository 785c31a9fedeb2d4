//! Publish, AI part (step 8): the hub -> AI gateway configuration stream
//! (`fleetgate.aigateway.v1.AiGatewayConfig`, `proto/fleetgate/aigateway/v1/aigateway.proto`),
//! served on the data-plane gRPC port next to Envoy's ADS.
//!
//! The compile loop's snapshot carries the AI part (`model::ai::AiSnapshot`); from it:
//! - [`convert`] (pure): one tenant's AI routes -> its `TenantConfig` message;
//! - [`version`] (pure): per-tenant versions that change exactly with the content and keep
//!   increasing across restarts;
//! - [`session`] (pure): one stream's protocol: a full state on connect, then only the tenants
//!   upserted or removed, revision + 1 per Update; Acks matched with what was sent;
//! - [`status`] (pure): what each gateway serves and refuses ([`AiGatewayHealth`]), and the
//!   refusals put on the AgentgatewayBackends' status by the compile loop;
//! - [`budget`] (pure): the one counter of every tenant's and virtual key's budget, which
//!   every replica asks before it sends a request (`Spend`);
//! - [`pins`]: MCP tool pins (the "rug pull"): gateways report tool definitions, the pins task
//!   (their one writer) keeps them in the store and sends them to every replica; the compile
//!   loop puts `ToolsPinned` on the AgentgatewayBackends ([`pins::apply_pins`]);
//! - [`usage`] (pure): the LLM usage gateways report on their streams, summed over replicas,
//!   for the dashboard;
//! - [`server`]: the publisher task (the one writer of the versions) and the gRPC service.
//!
//! Every replica gets the same versions and content. Provider keys travel only on this stream
//! (plaintext on the data-plane port, like xDS which carries TLS keys to Envoy: keep it on
//! loopback or a private network, docs/security.md) and are never logged: the generated
//! `BackendAuth` Debug is redacted, and the hub logs gateways' reasons, never configurations.

pub mod budget;
pub mod convert;
pub mod pins;
pub mod server;
pub mod session;
pub mod status;
pub mod usage;
pub mod version;

pub use server::{AiAccounts, AiConfigService, SessionKeys, start_publisher};
pub use status::{AiGatewayHealth, GatewayView, Refusal, apply_refusals};
pub use version::Published;
