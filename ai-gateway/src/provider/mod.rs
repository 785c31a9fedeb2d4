//! Provider: the fourth stage of the request path (listen -> identify -> route -> **provider**
//! -> auth -> usage -> errors). Turns the client's request into the provider's, sends it, and
//! hands the answer to [`crate::usage`] on its way back.
//!
//! - [`openai`]: any OpenAI-compatible server (chat completions and the Responses API, plain and
//!   streamed, embeddings, models).
//! - [`anthropic`]: Anthropic backends and Anthropic-speaking clients, translated both ways.
//! - [`gemini`]: Gemini backends for OpenAI chat completions clients, translated.
//! - [`send`]: the one way upstream (endpoints, fallback, timeout).
//! - [`endpoints`]: which address a request connects to (the backend's endpoints round-robin,
//!   else `host:port`).
//! - [`tls`]: HTTPS to external providers (trust roots, what a failed handshake tells).
//! - [`Upstream`]: the shared HTTP client (connection pool, connect timeout, TLS).

pub mod anthropic;
pub mod endpoints;
pub mod failover;
pub mod gemini;
pub mod openai;
pub mod send;
pub mod tls;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{AiBackend, Policies, Provider};
use crate::{Body, RequestCtx};

/// The client every provider uses: HTTP/1.1, over TLS for `https` URIs (backends with `tls`)
/// with `tls_config`'s trust roots.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Upstream {
    pub fn new(
        connect_timeout: Duration,
        tls_config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        // The scheme decides: https for backends with tls, http for the others.
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls_config).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self { client }
    }

    pub(crate) fn client(&self) -> &Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
        &self.client
    }
}

/// Whether a request comes from an Anthropic Messages API client (`POST /v1/messages`): its
/// errors are answered in Anthropic's shape.
pub fn anthropic_client(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::POST && path.trim_end_matches('/') == "/v1/messages"
}

/// What a backend of `provider`'s API serves, for the 404 that tells a client what to use.
pub fn served_paths(provider: &Provider) -> &'static str {
    match provider {
        Provider::OpenAi { .. } => {
            "POST /v1/chat/completions, POST /v1/responses, POST /v1/embeddings, GET /v1/models, \
             POST /v1/messages (Anthropic's API, translated)"
        }
        Provider::Anthropic { .. } => {
            "POST /v1/chat/completions (translated to Anthropic's Messages API), POST /v1/messages"
        }
        Provider::Gemini { .. } => "POST /v1/chat/completions (translated to Gemini's API)",
    }
}

/// Whether a backend of `provider`'s API serves `method path` (the others answer 404
/// `unsupported_path`); failover groups try only the providers that do.
pub fn serves(provider: &Provider, method: &hyper::Method, path: &str) -> bool {
    let endpoint = openai::Endpoint::of(method, path);
    match provider {
        Provider::OpenAi { .. } => endpoint.is_some() || anthropic_client(method, path),
        Provider::Anthropic { .. } => {
            endpoint == Some(openai::Endpoint::ChatCompletions) || anthropic_client(method, path)
        }
        Provider::Gemini { .. } => endpoint == Some(openai::Endpoint::ChatCompletions),
    }
}

/// Serves one request with the backend's provider.
pub async fn handle(
    ctx: RequestCtx,
    ai: &AiBackend,
    policies: &Policies,
    req: Request<Bytes>,
) -> hyper::Response<Body> {
    use crate::errors::ApiError;
    let anthropic_client = anthropic_client(req.method(), req.uri().path());
    let endpoint = openai::Endpoint::of(req.method(), req.uri().path());
    match (&ai.provider, anthropic_client) {
        (Provider::OpenAi { model }, false) => {
            openai::handle(ctx, ai, model.as_deref(), policies, req).await
        }
        (Provider::OpenAi { .. }, true) => {
            anthropic::handle(ctx, ai, policies, req, anthropic::Flow::MessagesToChat).await
        }
        (Provider::Anthropic { .. }, true) => {
            anthropic::handle(ctx, ai, policies, req, anthropic::Flow::Messages).await
        }
        (Provider::Gemini { .. }, false) if endpoint == Some(openai::Endpoint::ChatCompletions) => {
            gemini::handle(ctx, ai, policies, req).await
        }
        (Provider::Anthropic { .. }, false)
            if endpoint == Some(openai::Endpoint::ChatCompletions) =>
        {
            anthropic::handle(ctx, ai, policies, req, anthropic::Flow::ChatToMessages).await
        }
        (provider @ (Provider::Anthropic { .. } | Provider::Gemini { .. }), _)
            if endpoint == Some(openai::Endpoint::Responses) =>
        {
            let api = match provider {
                Provider::Anthropic { .. } => "Anthropic",
                _ => "Gemini",
            };
            ApiError::responses_unsupported(api, served_paths(provider)).into_response()
        }
        (provider @ (Provider::Anthropic { .. } | Provider::Gemini { .. }), _) => {
            ApiError::unsupported_path(req.method(), req.uri().path(), served_paths(provider))
                .into_response()
        }
    }
}
