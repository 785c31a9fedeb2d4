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
//! - [`upstream_model`]: the model sent upstream (the provider's fixed model, then the
//!   backend's `modelAliases`), which every provider writes into the body it sends.
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
    /// The same without idle connections kept, for MCP targets ([`crate::mcp`]): a fresh
    /// connection per message keeps Linux's quick ACKs, which MCP servers that write a
    /// response's headers and its event in two segments without TCP_NODELAY need (a pooled
    /// connection waits ~40 ms on a delayed ACK for each answer).
    mcp_client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
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
            .build(connector.clone());
        let mcp_client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Self { client, mcp_client }
    }

    pub(crate) fn mcp_client(&self) -> &Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
        &self.mcp_client
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
    let model = upstream_model(ai, policies, req.body());
    let model = model.as_deref();
    match (&ai.provider, anthropic_client) {
        (Provider::OpenAi { .. }, false) => openai::handle(ctx, ai, model, policies, req).await,
        (Provider::OpenAi { .. }, true) => {
            let flow = anthropic::Flow::MessagesToChat;
            anthropic::handle(ctx, ai, model, policies, req, flow).await
        }
        (Provider::Anthropic { .. }, true) => {
            let flow = anthropic::Flow::Messages;
            anthropic::handle(ctx, ai, model, policies, req, flow).await
        }
        (Provider::Gemini { .. }, false) if endpoint == Some(openai::Endpoint::ChatCompletions) => {
            gemini::handle(ctx, ai, model, policies, req).await
        }
        (Provider::Anthropic { .. }, false)
            if endpoint == Some(openai::Endpoint::ChatCompletions) =>
        {
            let flow = anthropic::Flow::ChatToMessages;
            anthropic::handle(ctx, ai, model, policies, req, flow).await
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

/// The model the request goes upstream with, when the gateway sets it (`None`: the client's
/// model goes as written). agentgateway's order: the provider's fixed model (`openai.model`,
/// ...) replaces the client's, then `policies.ai.modelAliases` rewrites the model so chosen, so
/// the fixed model wins over an alias the client names. The body is read for its `model` only
/// when the backend has aliases; a body that is not a JSON object with a string `model` is
/// left to the provider's handler to refuse.
pub fn upstream_model(ai: &AiBackend, policies: &Policies, body: &[u8]) -> Option<String> {
    let fixed = ai.provider.model_override();
    if policies.model_aliases.is_empty() {
        return fixed.map(str::to_string);
    }
    // Read as the handlers read it (an object; of a key written twice, the last), so the model
    // looked up is the one the handler would send.
    let requested = match fixed {
        Some(m) => Some(m.to_string()),
        None => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .ok()
            .and_then(|mut o| match o.remove("model") {
                Some(serde_json::Value::String(m)) => Some(m),
                _ => None,
            }),
    };
    requested
        .and_then(|m| policies.model_aliases.get(&m).cloned())
        .or_else(|| fixed.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(model: Option<&str>) -> AiBackend {
        AiBackend {
            provider: Provider::OpenAi {
                model: model.map(str::to_string),
            },
            host: "h".into(),
            port: 1,
            path: None,
            path_prefix: None,
            endpoints: vec![],
            tls: false,
            auth: None,
        }
    }

    fn policies(aliases: &[(&str, &str)]) -> Policies {
        Policies {
            auth: None,
            request_timeout: Duration::from_secs(1),
            model_aliases: aliases
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_upstream_model_is_the_fixed_one_then_aliased() {
        let aliased = policies(&[("fast", "gpt-4o-mini"), ("pinned", "pinned-v2")]);
        let none = policies(&[]);
        /// (what, the provider's fixed model, policies, body, the model sent upstream).
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a Policies,
            &'a [u8],
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            (
                "an alias",
                None,
                &aliased,
                br#"{"model":"fast"}"#,
                Some("gpt-4o-mini"),
            ),
            ("no alias", None, &aliased, br#"{"model":"slow"}"#, None),
            ("case matters", None, &aliased, br#"{"model":"Fast"}"#, None),
            ("no aliases", None, &none, br#"{"model":"fast"}"#, None),
            (
                "fixed wins",
                Some("m"),
                &aliased,
                br#"{"model":"fast"}"#,
                Some("m"),
            ),
            (
                "fixed, aliased",
                Some("pinned"),
                &aliased,
                b"{}",
                Some("pinned-v2"),
            ),
            (
                "fixed, no aliases",
                Some("m"),
                &none,
                b"not json",
                Some("m"),
            ),
            // Hostile bodies: the handler refuses them; the alias lookup never fails.
            ("not JSON", None, &aliased, b"\xff\xfe{", None),
            ("a list", None, &aliased, br#"["fast"]"#, None),
            ("a number", None, &aliased, br#"{"model":7}"#, None),
            ("null", None, &aliased, br#"{"model":null}"#, None),
            ("no model", None, &aliased, br#"{"messages":[]}"#, None),
            ("empty", None, &aliased, b"", None),
        ];
        for (what, fixed, policies, body, want) in cases {
            assert_eq!(
                upstream_model(&backend(*fixed), policies, body).as_deref(),
                *want,
                "{what}"
            );
        }
        // A key written twice: the last, as the handler reads it.
        let dup = br#"{"model":"slow","model":"fast"}"#;
        assert_eq!(
            upstream_model(&backend(None), &aliased, dup).as_deref(),
            Some("gpt-4o-mini")
        );
        let dup = br#"{"model":"fast","model":"slow"}"#;
        assert_eq!(upstream_model(&backend(None), &aliased, dup), None);
    }
}
