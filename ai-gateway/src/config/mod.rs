//! Configuration: what the gateway serves, per tenant. Outside the request path: requests only
//! ever see the compiled [`crate::route::RouteTable`] this module publishes.
//!
//! - [`model`]: the typed, validated model (`Config { tenants: { name -> { routes: { name ->
//!   Backend } } } }`) and the file format it is validated from, which mirrors agentgateway's
//!   `AgentgatewayBackend` (`ai.provider{openai{model}, host, port, path, pathPrefix}`,
//!   `policies.auth.key`).
//! - [`store`]: the one writer that swaps configuration atomically (a `tokio::sync::watch` of
//!   `Arc<RouteTable>`); in-flight requests keep the table they started with.
//! - [`source`]: the seam where configuration comes from ([`source::ConfigSource`]): a YAML file,
//!   or the hub's gRPC stream ([`grpc`]).

pub mod grpc;
pub mod model;
pub mod source;
pub mod store;

pub use model::{
    AiBackend, Backend, BackendAuth, BackendKind, Config, ConfigError, Policies, Provider,
    RawConfig, RawTenant, Secret, TenantConfig, VirtualKeyConfig,
};
pub use source::{ChannelSource, ConfigSource, FileSource, SourceError, StaticSource};
pub use store::ConfigStore;
