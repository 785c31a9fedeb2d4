//! The LLM usage metrics: every response the usage stage records ([`crate::usage`]) is counted
//! once here, beside the in-memory totals, by [`MeteredUsage`] (a [`UsageSink`] in front of
//! the other); budget refusals are counted where the gateway refuses ([`crate::Gateway`]).
//!
//! Labels are bounded by the operator's and the tenant's configuration, never by what a client
//! sends: `tenant` (a tenant this gateway serves), `backend` (the provider kind of the route's
//! backend: `openai`, `anthropic`, `gemini`, `mixed` for failover groups of several kinds),
//! `model` only when the route's configuration names it (the provider's fixed model, a model
//! alias or its target), otherwise `other`; `status` is the class (`2xx`, `4xx`, `5xx`), and
//! `reason` one of a fixed list. Route names are not labels: they are the tenant's input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::budget::BudgetError;
use crate::config::{Backend, BackendKind, Provider};
use crate::route::RouteTable;
use crate::usage::{UPSTREAM_STATUS, Usage, UsageKey, UsageSink};

/// The `model` label of a model the route's configuration does not name.
pub const OTHER_MODEL: &str = "other";

/// The `backend` label of a route not (or no longer) in the route table.
pub const UNKNOWN_BACKEND: &str = "unknown";

/// Upper bounds (seconds) of the duration and time-to-first-token histograms.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: String,
    backend: &'static str,
    model: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    tenant: String,
    backend: &'static str,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    tenant: String,
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    tenant: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendReasonLabels {
    tenant: String,
    backend: &'static str,
    reason: &'static str,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// The LLM usage counters of one gateway process, shared by the request path (writers) and
/// the metrics port (reader).
#[derive(Debug)]
pub struct AiMetrics {
    requests: Family<RequestLabels, Counter>,
    input_tokens: Family<ModelLabels, Counter>,
    output_tokens: Family<ModelLabels, Counter>,
    duration: Family<BackendLabels, Histogram, fn() -> Histogram>,
    first_token: Family<BackendLabels, Histogram, fn() -> Histogram>,
    budget_refusals: Family<ReasonLabels, Counter>,
    upstream_errors: Family<BackendReasonLabels, Counter>,
    /// The same counts, readable: what the hub's usage report carries ([`AiMetrics::totals`]).
    totals: Mutex<BTreeMap<Labels, Counts>>,
}

/// Cumulative counts of one [`Labels`] since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    /// Requests answered with a status >= 400.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Default for AiMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            input_tokens: Family::default(),
            output_tokens: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            first_token: Family::new_with_constructor(seconds_histogram),
            budget_refusals: Family::default(),
            upstream_errors: Family::default(),
            totals: Mutex::default(),
        }
    }
}

/// The labels one record is counted under (see the module's header).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Labels {
    pub tenant: String,
    pub backend: &'static str,
    pub model: String,
}

/// The provider kind of a backend; `None` for handlers that record no LLM usage.
pub fn backend_label(backend: &Backend) -> &'static str {
    fn kind(p: &Provider) -> &'static str {
        match p {
            Provider::OpenAi { .. } => "openai",
            Provider::Anthropic { .. } => "anthropic",
            Provider::Gemini { .. } => "gemini",
        }
    }
    match &backend.kind {
        BackendKind::Ai(ai) => kind(&ai.provider),
        BackendKind::AiGroups(groups) => {
            let mut kinds = groups.iter().flatten().map(|ai| kind(&ai.provider));
            match kinds.next() {
                Some(first) if kinds.all(|k| k == first) => first,
                Some(_) => "mixed",
                None => UNKNOWN_BACKEND,
            }
        }
        BackendKind::Mcp(_) => "mcp",
        BackendKind::A2a(_) => "a2a",
    }
}

/// Whether the route's configuration names `model`: the provider's fixed model (each provider
/// of a failover group's), a model alias or an alias's target.
pub fn configured_model(backend: &Backend, model: &str) -> bool {
    let fixed = match &backend.kind {
        BackendKind::Ai(ai) => ai.provider.model_override() == Some(model),
        BackendKind::AiGroups(groups) => groups
            .iter()
            .flatten()
            .any(|ai| ai.provider.model_override() == Some(model)),
        BackendKind::Mcp(_) | BackendKind::A2a(_) => false,
    };
    fixed
        || backend.policies.model_aliases.contains_key(model)
        || backend.policies.model_aliases.values().any(|m| m == model)
}

/// The labels of `key`: the route's backend (`None`: the route is gone from the table).
pub fn labels(key: &UsageKey, backend: Option<&Backend>) -> Labels {
    let model = match backend {
        Some(b) if configured_model(b, &key.model) => key.model.clone(),
        _ => OTHER_MODEL.to_string(),
    };
    Labels {
        tenant: key.tenant.clone(),
        backend: backend.map_or(UNKNOWN_BACKEND, backend_label),
        model,
    }
}

/// The `status` label: the status class.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// The `reason` of an upstream error ([`Usage::error`]), or `None` when the error was not the
/// upstream's (a bad request, say) or there was none.
pub fn upstream_error_reason(usage: &Usage) -> Option<&'static str> {
    match usage.error? {
        "upstream_unreachable" => Some("unreachable"),
        "upstream_timeout" => Some("timeout"),
        e if e == UPSTREAM_STATUS => Some(if usage.status >= 500 {
            "status_5xx"
        } else {
            "status_4xx"
        }),
        _ => None,
    }
}

impl AiMetrics {
    /// Counts one response.
    pub fn record(&self, labels: &Labels, usage: &Usage) {
        {
            let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
            // Token counts are the upstream's word (a tenant may run its own upstream): they
            // saturate rather than overflow (a panic here, a wrap that the hub would read as a
            // restart and count again).
            let c = totals.entry(labels.clone()).or_default();
            c.requests = c.requests.saturating_add(1);
            c.errors = c.errors.saturating_add(u64::from(usage.status >= 400));
            c.input_tokens = c.input_tokens.saturating_add(usage.prompt_tokens);
            c.output_tokens = c.output_tokens.saturating_add(usage.completion_tokens);
        }
        let status = status_class(usage.status);
        self.requests
            .get_or_create(&RequestLabels {
                tenant: labels.tenant.clone(),
                backend: labels.backend,
                model: labels.model.clone(),
                status,
            })
            .inc();
        let model = ModelLabels {
            tenant: labels.tenant.clone(),
            backend: labels.backend,
            model: labels.model.clone(),
        };
        if usage.prompt_tokens > 0 {
            self.input_tokens
                .get_or_create(&model)
                .inc_by(usage.prompt_tokens);
        }
        if usage.completion_tokens > 0 {
            self.output_tokens
                .get_or_create(&model)
                .inc_by(usage.completion_tokens);
        }
        let backend = BackendLabels {
            tenant: labels.tenant.clone(),
            backend: labels.backend,
        };
        if let Some(d) = usage.duration {
            self.duration
                .get_or_create(&backend)
                .observe(d.as_secs_f64());
        }
        if let Some(t) = usage.time_to_first_token {
            self.first_token
                .get_or_create(&backend)
                .observe(t.as_secs_f64());
        }
        if let Some(reason) = upstream_error_reason(usage) {
            self.upstream_errors
                .get_or_create(&BackendReasonLabels {
                    tenant: labels.tenant.clone(),
                    backend: labels.backend,
                    reason,
                })
                .inc();
        }
    }

    /// Every (tenant, backend, model) counted so far, with its cumulative counts.
    pub fn totals(&self) -> BTreeMap<Labels, Counts> {
        self.totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a request refused by its budget (`spent`) or because the budget could not be
    /// checked (`unavailable`).
    pub fn budget_refused(&self, tenant: &str, err: &BudgetError) {
        let reason = match err {
            BudgetError::Spent { .. } => "spent",
            BudgetError::Unavailable(_) => "unavailable",
        };
        self.budget_refusals
            .get_or_create(&ReasonLabels {
                tenant: tenant.to_string(),
                reason,
            })
            .inc();
    }

    /// Registers every family (shared, not copied) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "fleetgate_ai_requests",
            "LLM requests answered, by tenant, backend kind, model and status class",
            self.requests.clone(),
        );
        registry.register(
            "fleetgate_ai_input_tokens",
            "Prompt (input) tokens of LLM requests",
            self.input_tokens.clone(),
        );
        registry.register(
            "fleetgate_ai_output_tokens",
            "Completion (output) tokens of LLM responses",
            self.output_tokens.clone(),
        );
        registry.register(
            "fleetgate_ai_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            self.duration.clone(),
        );
        registry.register(
            "fleetgate_ai_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first content token",
            self.first_token.clone(),
        );
        registry.register(
            "fleetgate_ai_budget_refusals",
            "Requests refused before going upstream: budget spent, or the hub could not be asked",
            self.budget_refusals.clone(),
        );
        registry.register(
            "fleetgate_ai_upstream_errors",
            "LLM requests the upstream failed: unreachable, timeout, or an error status",
            self.upstream_errors.clone(),
        );
    }
}

/// A [`UsageSink`] that counts each record in [`AiMetrics`] and passes it on to `inner`.
pub struct MeteredUsage {
    pub inner: Arc<dyn UsageSink>,
    pub metrics: Arc<AiMetrics>,
    /// The route table, to find a record's backend (its labels).
    pub routes: watch::Receiver<Arc<RouteTable>>,
}

impl UsageSink for MeteredUsage {
    fn record(&self, key: UsageKey, usage: Usage) {
        let table = self.routes.borrow().clone();
        let route = table
            .tenant(&key.tenant)
            .and_then(|t| t.route(&key.route).cloned());
        let labels = labels(&key, route.as_ref().map(|r| &r.backend));
        self.metrics.record(&labels, &usage);
        self.inner.record(key, usage);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::RawConfig;
    use crate::usage::{InMemoryUsage, UsageSource};

    const CONFIG: &str = r#"
tenants:
  a:
    routes:
      chat:
        ai: { provider: { openai: { model: tiny }, host: 127.0.0.1, port: 9 } }
        policies: { modelAliases: { fast: tiny-q4 } }
      claude:
        ai: { provider: { anthropic: {}, host: 127.0.0.1, port: 9 } }
"#;

    fn sink() -> (MeteredUsage, Arc<InMemoryUsage>) {
        let config = RawConfig::from_yaml(CONFIG).unwrap().validate().unwrap();
        let table = RouteTable::compile(&config, &RouteTable::default());
        let (_tx, routes) = watch::channel(Arc::new(table));
        let totals = Arc::new(InMemoryUsage::default());
        let metered = MeteredUsage {
            inner: totals.clone(),
            metrics: Arc::default(),
            routes,
        };
        (metered, totals)
    }

    fn key(route: &str, model: &str) -> UsageKey {
        UsageKey {
            tenant: "a".into(),
            route: route.into(),
            model: model.into(),
        }
    }

    fn ok(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            source: UsageSource::Reported,
            streamed: true,
            status: 200,
            time_to_first_token: Some(Duration::from_millis(30)),
            duration: Some(Duration::from_millis(80)),
            error: None,
        }
    }

    fn text(m: &AiMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn each_record_is_counted_once_in_the_metrics_and_the_totals() {
        let (sink, totals) = sink();
        sink.record(key("chat", "tiny"), ok(11, 7));
        sink.record(key("chat", "tiny"), ok(1, 2));
        let t = text(&sink.metrics);
        assert!(
            t.contains(r#"fleetgate_ai_requests_total{tenant="a",backend="openai",model="tiny",status="2xx"} 2"#),
            "{t}"
        );
        assert!(
            t.contains(
                r#"fleetgate_ai_input_tokens_total{tenant="a",backend="openai",model="tiny"} 12"#
            ),
            "{t}"
        );
        assert!(
            t.contains(
                r#"fleetgate_ai_output_tokens_total{tenant="a",backend="openai",model="tiny"} 9"#
            ),
            "{t}"
        );
        assert!(
            t.contains(
                r#"fleetgate_ai_time_to_first_token_seconds_count{tenant="a",backend="openai"} 2"#
            ),
            "{t}"
        );
        assert!(
            t.contains(r#"fleetgate_ai_request_duration_seconds_bucket{le="0.1",tenant="a",backend="openai"} 2"#),
            "{t}"
        );
        let labelled = sink.metrics.totals();
        let tiny = labels(
            &key("chat", "tiny"),
            Some(
                &sink
                    .routes
                    .borrow()
                    .tenant("a")
                    .unwrap()
                    .route("chat")
                    .unwrap()
                    .backend,
            ),
        );
        assert_eq!(
            labelled.get(&tiny),
            Some(&Counts {
                requests: 2,
                errors: 0,
                input_tokens: 12,
                output_tokens: 9
            })
        );
        let sum = totals.route_totals("a", "chat");
        assert_eq!(
            (sum.requests, sum.prompt_tokens, sum.completion_tokens),
            (2, 12, 9)
        );
    }

    #[test]
    fn hostile_model_names_cannot_grow_the_label_set() {
        let (sink, _) = sink();
        for i in 0..5_000 {
            sink.record(key("chat", &format!("gpt-{i}")), ok(1, 1));
        }
        for hostile in [
            "tiny\"} 1\nfleetgate_ai_requests_total{tenant=\"b",
            "tiny\n",
            "TINY",
            "",
            &"x".repeat(100_000),
            "tiny-q4\u{0}",
        ] {
            sink.record(key("chat", hostile), ok(1, 1));
        }
        // Configured names keep their label: the fixed model, an alias and its target.
        sink.record(key("chat", "tiny"), ok(1, 1));
        sink.record(key("chat", "fast"), ok(1, 1));
        sink.record(key("chat", "tiny-q4"), ok(1, 1));
        // A model named on another route of the tenant is not this route's.
        sink.record(key("claude", "tiny"), ok(1, 1));
        let t = text(&sink.metrics);
        let request_series: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("fleetgate_ai_requests_total{"))
            .collect();
        assert_eq!(request_series.len(), 5, "{request_series:#?}");
        assert!(t.contains(r#"model="other",status="2xx"} 5006"#), "{t}");
        assert!(t.contains(r#"backend="anthropic",model="other""#), "{t}");
        for named in ["tiny", "fast", "tiny-q4"] {
            assert!(
                t.contains(&format!(
                    r#"backend="openai",model="{named}",status="2xx"}} 1"#
                )),
                "{t}"
            );
        }
        assert!(!t.contains("gpt-") && !t.contains("xxxx"), "{t}");
        assert!(t.len() < 20_000, "the text stays small: {} bytes", t.len());
    }

    #[test]
    fn a_route_gone_from_the_table_counts_as_unknown_backend_and_other_model() {
        let (sink, totals) = sink();
        sink.record(key("removed", "tiny"), ok(3, 4));
        let t = text(&sink.metrics);
        assert!(
            t.contains(r#"fleetgate_ai_requests_total{tenant="a",backend="unknown",model="other",status="2xx"} 1"#),
            "{t}"
        );
        assert_eq!(totals.route_totals("a", "removed").requests, 1);
    }

    #[test]
    fn upstream_errors_are_counted_by_reason_and_other_errors_are_not() {
        let (sink, _) = sink();
        let err = |status, error| Usage {
            status,
            error,
            time_to_first_token: None,
            ..ok(0, 0)
        };
        sink.record(key("chat", "tiny"), err(502, Some("upstream_unreachable")));
        sink.record(key("chat", "tiny"), err(504, Some("upstream_timeout")));
        sink.record(key("chat", "tiny"), err(503, Some(UPSTREAM_STATUS)));
        sink.record(key("chat", "tiny"), err(429, Some(UPSTREAM_STATUS)));
        sink.record(key("chat", "tiny"), err(400, Some("invalid_json")));
        let t = text(&sink.metrics);
        for reason in ["unreachable", "timeout", "status_5xx", "status_4xx"] {
            assert!(
                t.contains(&format!(
                    r#"fleetgate_ai_upstream_errors_total{{tenant="a",backend="openai",reason="{reason}"}} 1"#
                )),
                "{t}"
            );
        }
        assert!(!t.contains("invalid_json"), "{t}");
        assert!(
            t.contains(r#"fleetgate_ai_requests_total{tenant="a",backend="openai",model="tiny",status="4xx"} 2"#),
            "{t}"
        );
        assert!(
            !t.contains("fleetgate_ai_input_tokens_total{"),
            "no zero-token series: {t}"
        );
    }

    #[test]
    fn budget_refusals_are_counted_by_reason() {
        let m = AiMetrics::default();
        let spent = BudgetError::Spent {
            message: "spent".into(),
            retry_after_seconds: 3,
        };
        m.budget_refused("a", &spent);
        m.budget_refused("a", &spent);
        m.budget_refused("a", &BudgetError::Unavailable("down".into()));
        let t = text(&m);
        assert!(
            t.contains(r#"fleetgate_ai_budget_refusals_total{tenant="a",reason="spent"} 2"#),
            "{t}"
        );
        assert!(
            t.contains(r#"fleetgate_ai_budget_refusals_total{tenant="a",reason="unavailable"} 1"#),
            "{t}"
        );
    }

    #[test]
    fn huge_token_counts_from_an_upstream_saturate_instead_of_overflowing() {
        let (sink, _) = sink();
        let labels = labels(
            &key("chat", "tiny"),
            Some(
                &sink
                    .routes
                    .borrow()
                    .tenant("a")
                    .unwrap()
                    .route("chat")
                    .unwrap()
                    .backend,
            ),
        );
        // What a hostile upstream may put in its `usage` object.
        sink.metrics.record(&labels, &ok(u64::MAX, u64::MAX));
        sink.metrics.record(&labels, &ok(5, 5));
        let c = sink.metrics.totals()[&labels];
        assert_eq!(
            (c.requests, c.input_tokens, c.output_tokens),
            (2, u64::MAX, u64::MAX),
            "the totals never go down (the hub would count a wrapped total again)"
        );
    }

    #[test]
    fn status_classes_are_a_fixed_set() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(504), "5xx");
        assert_eq!(status_class(0), "other");
        assert_eq!(status_class(999), "other");
    }
}
