//! Configuration: what the gateway serves, per tenant. Outside the request path: requests only
//! ever see the compiled [`crate::route::RouteTable`] built from it. It imports no other module
//! of the gateway; the modules that use it come after it:
//!
//! - [`model`]: the typed, validated model (`Config { tenants: { name -> { routes: { name ->
//!   Backend } } } }`) and the file format it is validated from, which mirrors agentgateway's
//!   `AgentgatewayBackend` (`ai.provider{openai{model}, host, port, path, pathPrefix}`,
//!   `policies.auth.key`).
//! - [`crate::route`] compiles it into the route table; [`crate::publish`] is the one writer
//!   that swaps that table atomically; [`crate::source`] is where configuration comes from (a
//!   YAML file, or the hub's gRPC stream).

pub mod mcp;
pub mod mcp_auth;
pub mod model;

pub use model::{
    A2aBackend, AiBackend, Backend, BackendAuth, BackendKind, Config, ConfigError, Policies,
    Provider, RawConfig, RawTenant, Secret, TenantConfig, VirtualKeyConfig,
};
