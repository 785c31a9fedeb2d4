//! One span per AI request (docs/operations.md, "Traces"): `ai.request`, continuing the
//! request's `traceparent` header when it holds a valid one (else a new trace), with the
//! tenant, route and provider kind once the route is known, and the model, status and token
//! counts when the request's usage is recorded ([`TracedUsage`]). The model is named only when
//! the route's configuration names it, else `other`, as in the usage metrics
//! ([`crate::metrics::usage`]): a client's made-up model names never reach an attribute. The span ends with the
//! request (its usage record, or the end of its body). Nothing is built when traces are off.

use std::sync::{Arc, Mutex};

use fleetgate_observe::trace::{self, Attribute, Kind, Span, Start};
use hyper::HeaderMap;

use crate::config::BackendKind;
use crate::metrics::usage as usage_metrics;
use crate::route::Route;
use crate::usage::{Usage, UsageKey, UsageSink};

/// The span of a request with headers `headers` (empty when traces are off).
pub fn request_span(headers: &HeaderMap) -> Span {
    if !trace::enabled() {
        return Span::default();
    }
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(trace::parse_traceparent);
    trace::span(
        "ai.request",
        Kind::Server,
        Start {
            parent: parent.as_ref(),
            ..Default::default()
        },
        Vec::new,
    )
}

/// Adds the tenant, route and provider kind of `route` to `span`.
pub fn routed(span: &mut Span, tenant: &str, route: &Route) {
    span.set(|| {
        vec![
            Attribute::new("fleetgate.tenant", trace::bounded(tenant)),
            Attribute::new("fleetgate.route", trace::bounded(&route.name)),
            Attribute::new("ai.provider", provider_kind(&route.backend.kind)),
        ]
    });
}

/// The provider kind of a backend (a closed set).
fn provider_kind(kind: &BackendKind) -> &'static str {
    use crate::config::Provider;
    let of = |p: &Provider| match p {
        Provider::OpenAi { .. } => "openai",
        Provider::Anthropic { .. } => "anthropic",
        Provider::Gemini { .. } => "gemini",
    };
    match kind {
        BackendKind::Ai(b) => of(&b.provider),
        BackendKind::AiGroups(groups) => groups
            .iter()
            .flatten()
            .next()
            .map(|b| of(&b.provider))
            .unwrap_or("none"),
        BackendKind::Mcp(_) => "mcp",
        BackendKind::A2a(_) => "a2a",
    }
}

/// The response status of a request refused before it reached its route's handler.
pub fn refused(mut span: Span, status: u16) {
    span.set(|| {
        vec![Attribute::new(
            "http.response.status_code",
            i64::from(status),
        )]
    });
    if status >= 500 {
        span.fail("refused by the gateway");
    }
}

/// Records usage into `inner` and onto the request's span, which it ends.
pub struct TracedUsage {
    inner: Arc<dyn UsageSink>,
    span: Mutex<Option<Span>>,
    /// The request's route: which model names its configuration names.
    route: Arc<Route>,
}

impl TracedUsage {
    /// `inner` keeps counting; `span` (of a request on `route`) gets the usage and ends with
    /// the first record.
    pub fn wrap(inner: Arc<dyn UsageSink>, span: Span, route: Arc<Route>) -> Arc<dyn UsageSink> {
        if span.context().is_none() {
            return inner;
        }
        Arc::new(Self {
            inner,
            span: Mutex::new(Some(span)),
            route,
        })
    }
}

/// The `gen_ai.request.model` attribute: `model` when the route's configuration names it,
/// else `other`.
fn model_attribute(route: &Route, model: &str) -> String {
    if usage_metrics::configured_model(&route.backend, model) {
        trace::bounded(model)
    } else {
        usage_metrics::OTHER_MODEL.to_string()
    }
}

impl UsageSink for TracedUsage {
    fn record(&self, key: UsageKey, usage: Usage) {
        if let Some(mut span) = self.span.lock().ok().and_then(|mut s| s.take()) {
            span.set(|| {
                vec![
                    Attribute::new(
                        "gen_ai.request.model",
                        model_attribute(&self.route, &key.model),
                    ),
                    Attribute::new("gen_ai.usage.input_tokens", usage.prompt_tokens as i64),
                    Attribute::new("gen_ai.usage.output_tokens", usage.completion_tokens as i64),
                    Attribute::new("http.response.status_code", i64::from(usage.status)),
                    Attribute::new("ai.streamed", usage.streamed),
                ]
            });
            if usage.status >= 500 {
                span.fail("the upstream or the gateway failed the request");
            }
        }
        self.inner.record(key, usage);
    }
}
