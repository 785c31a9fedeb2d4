//! Provider: the fourth stage of the request path (listen -> identify -> route -> **provider**
//! -> auth -> usage -> errors). Turns the client's request into the provider's, sends it, and
//! hands the answer to [`crate::usage`] on its way back.
//!
//! - [`openai`]: any OpenAI-compatible server (chat completions plain and streamed, embeddings,
//!   models).
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

/// Serves one request with the backend's provider.
pub async fn handle(
    ctx: RequestCtx,
    ai: &AiBackend,
    policies: &Policies,
    req: Request<Bytes>,
) -> hyper::Response<Body> {
    let anthropic_client = anthropic_client(req.method(), req.uri().path());
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
        (Provider::Gemini { .. }, false)
            if openai::Endpoint::of(req.method(), req.uri().path())
                == Some(openai::Endpoint::ChatCompletions) =>
        {
            gemini::handle(ctx, ai, policies, req).await
        }
        (Provider::Gemini { .. }, _) => {
            crate::errors::ApiError::unsupported_path(req.method(), req.uri().path())
                .into_response()
        }
        (Provider::Anthropic { .. }, false) => {
            match openai::Endpoint::of(req.method(), req.uri().path()) {
                Some(openai::Endpoint::ChatCompletions) => {
                    anthropic::handle(ctx, ai, policies, req, anthropic::Flow::ChatToMessages).await
                }
                _ => crate::errors::ApiError::unsupported_path(req.method(), req.uri().path())
                    .into_response(),
            }
        }
    }
}
