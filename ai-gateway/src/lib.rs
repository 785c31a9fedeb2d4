//! fleetgate's AI gateway: LLM traffic per tenant, behind Envoy.
//!
//! Where it sits: Envoy terminates every tenant listener and sends the routes whose backend is an
//! AI backend here, with the tenant and route in headers only Envoy sets. The gateway picks the
//! tenant's backend, puts the provider's key on the request (the client never holds it), counts
//! usage per tenant, backend and model, and answers errors in the client's protocol. Its
//! configuration comes from the hub's `AiGatewayConfig` stream (`--hub`) or a file (`--config`),
//! and is swapped without dropping requests.
//!
//! The request path, one module per stage:
//!
//! ```text
//! listen -> identify -> route -> keys -> limit -> budget -> provider -> auth -> upstream -> usage -> client
//!                                                  (errors: shaped at every stage)
//! ```
//!
//! - [`listen`]: accepts connections (HTTP/1.1 and h2c), graceful shutdown.
//! - [`identify`]: tenant and route from `x-fleetgate-tenant` / `x-fleetgate-route`, else 403.
//! - [`route`]: the per-tenant route table; the backend kind picks the handler.
//! - [`keys`]: the tenant's virtual keys: a route they name serves only requests with one (401).
//! - [`limit`]: per-tenant concurrency, so one tenant's slow provider never blocks another.
//! - [`budget`]: the tenant's and virtual key's budgets, reserved with the hub (across every
//!   replica) before a request goes upstream; tokens reported when it ends.
//! - [`a2a`]: A2A agents: the agent card rewritten to point at the gateway, JSON-RPC calls
//!   (streams too) passed on, counted per tenant, route and method.
//! - [`provider`]: the provider protocols: OpenAI-compatible (chat completions, the Responses
//!   API, embeddings, models), Anthropic and Gemini (translated).
//! - [`auth`]: the backend's key on, the client's credentials off.
//! - [`usage`]: tokens and time to first token, streamed or not.
//! - [`errors`]: OpenAI-shaped errors with the right status.
//! - [`translate`]: one provider API in another's terms (OpenAI <-> Anthropic), pure.
//! - [`mcp`]: MCP federation, the handler of routes whose backend is `mcp` (several MCP servers
//!   behind one endpoint), with tool definitions pinned against a "rug pull" ([`mcp::pins`]).
//! - [`metrics`]: the operator's Prometheus metrics (`--metrics-listen`).
//! - [`config`]: the typed configuration; [`publish`]: its one writer, which compiles and swaps
//!   the route table; [`source`]: where configuration comes from (a file, the hub's stream).
//!
//! Modules import one way: `config` <- `route` <- `publish` <- `source`; the request path
//! (`identify`, `route`, `provider`, `auth`) reads `config` and never the writer.

pub mod a2a;
pub mod auth;
pub mod budget;
pub mod config;
pub mod errors;
pub mod identify;
pub mod keys;
pub mod limit;
pub mod listen;
pub mod mcp;
pub mod metrics;
pub mod provider;
pub mod publish;
pub mod route;
pub mod source;
pub mod traced;
pub mod translate;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};

use crate::config::Config;
use crate::errors::ApiError;
use crate::provider::Upstream;
use crate::publish::ConfigStore;
use crate::route::{Route, RouteTable};
use crate::source::ConfigSource;
use crate::usage::{InMemoryUsage, UsageSink};

/// Errors of any body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the gateway sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of known bytes.
pub fn full(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Size limits of bodies the gateway reads whole.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (a chat with long context; 413 beyond).
    pub max_request_bytes: usize,
    /// Largest buffered (non-streamed) upstream response.
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 16 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How the process runs (from the command line; see `main.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Envoy reaches the gateway. Never a public address: the identity headers are
    /// trusted (see [`identify`]).
    pub listen: SocketAddr,
    /// Time to establish an upstream connection (502 beyond).
    pub connect_timeout: Duration,
    pub limits: Limits,
    /// How long requests in flight may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// Where budgets are counted (the hub, with `--hub`); `None`: a budgeted tenant's
    /// requests are refused (503), never let through uncounted.
    pub ledger: Option<Arc<dyn budget::Ledger>>,
    /// Trust roots for TLS to providers besides the system's (`--upstream-ca`).
    pub upstream_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// MCP tool pins: the hub source fills them, the MCP handler judges tools by them.
    pub mcp_pins: Arc<mcp::pins::PinBoard>,
    /// The LLM usage metrics: the request path counts, the metrics port reads.
    pub metrics: Arc<metrics::usage::AiMetrics>,
}

impl Settings {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            connect_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(30),
            ledger: None,
            upstream_roots: Vec::new(),
            mcp_pins: Default::default(),
            metrics: Default::default(),
        }
    }
}

/// The process failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The configuration is not valid.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// The server task failed.
    #[error("server task: {0}")]
    Task(String),
    /// TLS to providers cannot be set up.
    #[error(transparent)]
    Tls(#[from] provider::tls::TlsError),
}

/// What one request carries through the stages after routing.
pub struct RequestCtx {
    pub route: Arc<Route>,
    pub started: Instant,
    pub upstream: Upstream,
    pub usage: Arc<dyn UsageSink>,
    /// The tenant's concurrency permit; moves into a streamed body to live as long as it.
    pub permit: Option<OwnedSemaphorePermit>,
    pub limits: Limits,
    /// The id of the virtual key the request presented (`VirtualKey.id`), when its route takes
    /// virtual keys; budgets are counted against it.
    pub virtual_key: Option<String>,
    /// What this replica keeps for MCP sessions ([`mcp::McpState`]).
    pub mcp: Arc<mcp::McpState>,
    /// A2A telemetry and what the A2A handler remembers of agents ([`a2a`]).
    pub a2a: Arc<a2a::A2aState>,
}

/// The request handler: shared by every connection.
pub struct Gateway {
    routes: watch::Receiver<Arc<RouteTable>>,
    upstream: Upstream,
    usage: Arc<dyn UsageSink>,
    limits: Limits,
    ledger: Option<Arc<dyn budget::Ledger>>,
    mcp: Arc<mcp::McpState>,
    a2a: Arc<a2a::A2aState>,
    metrics: Arc<metrics::usage::AiMetrics>,
}

impl Gateway {
    /// The handler; fails only when the TLS client configuration cannot be built.
    pub fn new(
        routes: watch::Receiver<Arc<RouteTable>>,
        usage: Arc<dyn UsageSink>,
        settings: &Settings,
    ) -> Result<Self, Error> {
        let upstream_tls = provider::tls::client_config(&settings.upstream_roots)?;
        Ok(Self {
            routes,
            upstream: Upstream::new(settings.connect_timeout, upstream_tls),
            usage,
            limits: settings.limits,
            ledger: settings.ledger.clone(),
            mcp: Arc::new(mcp::McpState::with_pins(settings.mcp_pins.clone())),
            a2a: Arc::default(),
            metrics: settings.metrics.clone(),
        })
    }

    /// What the A2A handler shares: its telemetry and the agents' JSON-RPC paths.
    pub fn a2a(&self) -> &Arc<a2a::A2aState> {
        &self.a2a
    }

    /// One request, through every stage.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        // The request's span (nothing when traces are off): ends with its usage record.
        let mut span = traced::request_span(req.headers());
        let refused = |span, r: Response<Body>| {
            traced::refused(span, r.status().as_u16());
            r
        };
        let id = match identify::identify(req.headers()) {
            Ok(id) => id,
            Err(e) => return refused(span, e.into_response()),
        };
        let table = self.routes.borrow().clone();
        let (tenant, route) = match table.lookup(&id) {
            Ok(found) => found,
            Err(e) => return refused(span, e.into_response()),
        };
        traced::routed(&mut span, &tenant.name, &route);
        let anthropic = provider::anthropic_client(req.method(), req.uri().path());
        // An A2A client reads JSON-RPC errors.
        let a2a_route = matches!(route.backend.kind, config::BackendKind::A2a(_));
        let refuse = |span, e: ApiError| {
            let r = if a2a_route {
                a2a::jsonrpc::from_api_error(&e, &serde_json::Value::Null)
            } else {
                e.into_client_response(anthropic)
            };
            refused(span, r)
        };
        let key = match tenant.keys.check(req.headers(), &route.name) {
            Ok(key) => key,
            Err(e) => {
                tracing::info!(tenant = %tenant.name, route = %route.name, code = e.code, "request refused: no valid virtual key");
                return refuse(span, e);
            }
        };
        let Some(permit) = tenant.limit.try_acquire() else {
            tracing::info!(tenant = %tenant.name, "tenant at its concurrency limit");
            return refuse(
                span,
                ApiError::tenant_busy(&tenant.name, tenant.limit.max()),
            );
        };
        let usage = traced::TracedUsage::wrap(self.usage.clone(), span, route.clone());
        let ctx = RequestCtx {
            route,
            started,
            upstream: self.upstream.clone(),
            usage,
            permit: Some(permit),
            limits: self.limits,
            virtual_key: key.as_ref().map(|k| k.id.to_string()),
            mcp: self.mcp.clone(),
            a2a: self.a2a.clone(),
        };
        let key_budgeted = key.is_some_and(|k| k.budget.is_some());
        let ctx = match self.reserve(&tenant, key_budgeted, ctx).await {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::info!(tenant = %tenant.name, error = %e, "request refused by its budget");
                self.metrics.budget_refused(&tenant.name, &e);
                return e.into_client_response(anthropic);
            }
        };
        route::dispatch(ctx, req).await
    }

    /// Reserves the request with the ledger when its tenant (or its virtual key) has a budget,
    /// and has its usage reported back; requests without a budget pass untouched.
    async fn reserve(
        &self,
        tenant: &route::TenantRoutes,
        key_budgeted: bool,
        mut ctx: RequestCtx,
    ) -> Result<RequestCtx, budget::BudgetError> {
        if !tenant.budgeted && !key_budgeted {
            return Ok(ctx);
        }
        let Some(ledger) = &self.ledger else {
            return Err(budget::BudgetError::Unavailable(
                "the gateway follows no hub (--hub), which counts budgets".to_string(),
            ));
        };
        let key_id = ctx.virtual_key.clone().unwrap_or_default();
        ledger.reserve(&tenant.name, &key_id).await?;
        ctx.usage = Arc::new(budget::BudgetedUsage {
            inner: ctx.usage,
            ledger: ledger.clone(),
            tenant: tenant.name.clone(),
            key_id,
        });
        Ok(ctx)
    }
}

/// A gateway running in this process (the binary's `run`, and tests).
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its usage totals.
    pub usage: Arc<InMemoryUsage>,
    /// Its A2A telemetry and the agents' cards it fetched.
    pub a2a: Arc<a2a::A2aState>,
    /// The route table it serves (to watch swaps).
    pub routes: watch::Receiver<Arc<RouteTable>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish (up to the grace period), and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds, publishes `initial`, starts `source` for later changes, and serves in the background.
pub async fn start(
    settings: Settings,
    initial: Config,
    source: Box<dyn ConfigSource>,
) -> Result<Running, Error> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: settings.listen,
        source,
    })?;
    let (mut store, routes) = ConfigStore::new();
    store.replace(initial);
    tokio::spawn(async move {
        if let Err(e) = source.run(store).await {
            tracing::error!(error = %e, "configuration source stopped; serving the last configuration");
        }
    });
    let usage = Arc::new(InMemoryUsage::default());
    // Every record is counted in the metrics, then in the totals.
    let metered = Arc::new(metrics::usage::MeteredUsage {
        inner: usage.clone(),
        metrics: settings.metrics.clone(),
        routes: routes.clone(),
    });
    let gateway = Arc::new(Gateway::new(routes.clone(), metered, &settings)?);
    let a2a = gateway.a2a().clone();
    let (tx, rx) = oneshot::channel();
    let grace = settings.shutdown_grace;
    let task = tokio::spawn(listen::serve(
        listener,
        gateway,
        async move {
            let _ = rx.await;
        },
        grace,
    ));
    tracing::info!(%addr, "AI gateway listening");
    Ok(Running {
        addr,
        usage,
        a2a,
        routes,
        shutdown: Some(tx),
        task,
    })
}

/// Runs until `shutdown` completes, then drains requests in flight.
pub async fn run(
    settings: Settings,
    initial: Config,
    source: Box<dyn ConfigSource>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let running = start(settings, initial, source).await?;
    shutdown.await;
    tracing::info!("shutting down: draining requests in flight");
    running.shutdown().await;
    Ok(())
}
