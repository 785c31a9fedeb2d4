//! Traces over OTLP/gRPC, off unless configured: every fleetgate process (hub, agent, AI
//! gateway) calls [`init`] at start and [`Exporter::shutdown`] before it exits (the last spans
//! are flushed then).
//!
//! Turned on by the standard OpenTelemetry environment: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a gRPC URL such as `http://collector:4317`); the service name
//! is `OTEL_SERVICE_NAME`, else the binary's own. `OTEL_SDK_DISABLED=true` keeps it off even
//! when an endpoint is set. Without an endpoint nothing is installed and every function here
//! costs one atomic load: [`Span`]s are empty and their attributes are never built.
//!
//! Context crosses processes as a W3C `traceparent` value ([`parse_traceparent`],
//! [`format_traceparent`]): in the agent's Update and the hub's Ack and Status messages, and
//! in the `traceparent` header of AI requests. A malformed value is ignored: the span starts a
//! fresh trace.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use opentelemetry::KeyValue as Attribute;
pub use opentelemetry::trace::SpanContext as TraceContext;

/// The environment variable naming the OTLP endpoint for traces only.
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The environment variable naming the OTLP endpoint for every signal.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The environment variable naming the service in exported spans.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";
/// The environment variable that turns the SDK off whatever else is set.
pub const SDK_DISABLED_ENV: &str = "OTEL_SDK_DISABLED";

/// The instrumentation scope of every span fleetgate makes.
const SCOPE: &str = "fleetgate";

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRACER: std::sync::OnceLock<SdkTracer> = std::sync::OnceLock::new();

/// Why traces could not be turned on (the process logs it and runs without them).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The exporter could not be built from the endpoint.
    #[error("cannot export traces to {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The OTLP/gRPC endpoint spans go to.
    pub endpoint: String,
    /// `service.name` of the process's spans.
    pub service_name: String,
}

/// The settings for an environment read through `env` (None: traces stay off).
pub fn settings(env: impl Fn(&str) -> Option<String>, default_service: &str) -> Option<Settings> {
    let set = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if set(SDK_DISABLED_ENV).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = set(TRACES_ENDPOINT_ENV).or_else(|| set(ENDPOINT_ENV))?;
    Some(Settings {
        endpoint,
        service_name: set(SERVICE_NAME_ENV).unwrap_or_else(|| default_service.to_string()),
    })
}

/// Whether spans are exported (an endpoint was configured and the exporter started).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter of a process that exports traces; [`Exporter::shutdown`] flushes it.
#[must_use = "call shutdown() before the process exits, or the last spans are lost"]
pub struct Exporter {
    provider: Option<SdkTracerProvider>,
}

impl Exporter {
    /// Flushes the spans not yet sent and stops the exporter (waits up to the exporter's
    /// timeout). Off a runtime worker: the batch thread needs the runtime to send.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            ENABLED.store(false, Ordering::Relaxed);
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::warn!("flushing traces at shutdown failed: {e}");
            }
        }
    }
}

/// Starts exporting traces if the environment asks for it (see the module header); must be
/// called inside a Tokio runtime. `default_service` is the `service.name` unless
/// `OTEL_SERVICE_NAME` is set. An exporter that cannot be built is logged; the process runs on
/// without traces.
pub fn init(default_service: &str) -> Exporter {
    let Some(s) = settings(|k| std::env::var(k).ok(), default_service) else {
        return Exporter { provider: None };
    };
    match start(&s) {
        Ok(provider) => {
            tracing::info!(endpoint = %s.endpoint, service = %s.service_name, "exporting traces over OTLP/gRPC");
            Exporter {
                provider: Some(provider),
            }
        }
        Err(e) => {
            tracing::warn!("{e}; running without traces");
            Exporter { provider: None }
        }
    }
}

fn start(s: &Settings) -> Result<SdkTracerProvider, TraceError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(s.endpoint.clone())
        .build()
        .map_err(|e| TraceError::Exporter {
            endpoint: s.endpoint.clone(),
            message: e.to_string(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(s.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    install_provider(&provider);
    Ok(provider)
}

/// Exports through `provider` instead of the environment's OTLP endpoint (a process embedding
/// fleetgate with its own exporter; tests with an in-memory one). The first provider installed
/// in a process stays its tracer's.
pub fn install(provider: SdkTracerProvider) -> Exporter {
    install_provider(&provider);
    Exporter {
        provider: Some(provider),
    }
}

fn install_provider(provider: &SdkTracerProvider) {
    let _ = TRACER.set(provider.tracer(SCOPE));
    ENABLED.store(true, Ordering::Relaxed);
}

/// A W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`) as a remote span context;
/// None for anything malformed (wrong length or version, not lowercase hex, all-zero ids,
/// version `ff`). Later versions are read by their first four fields, as the spec asks.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; a later version may append more.
    if version == "00" && (rest.is_some() || value.len() != 55) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// The `traceparent` value of `sc` (version 00); empty for an invalid context.
pub fn format_traceparent(sc: &SpanContext) -> String {
    if !sc.is_valid() {
        return String::new();
    }
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        (sc.trace_flags() & TraceFlags::SAMPLED).to_u8()
    )
}

/// How a span relates to the process (the OTLP span kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work inside the process.
    Internal,
    /// Answers a request from another process (the hub handling an Update; an AI request).
    Server,
    /// Sends a request to another process (the agent's Update).
    Client,
    /// Sends without waiting for an answer (an xDS push).
    Producer,
    /// Handles what another process sent (Envoy's ACK).
    Consumer,
}

impl From<Kind> for SpanKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Internal => SpanKind::Internal,
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
        }
    }
}

/// What a new span hangs off, besides its name.
#[derive(Debug, Default)]
pub struct Start<'a> {
    /// The parent (local or remote); None or invalid: a new trace.
    pub parent: Option<&'a SpanContext>,
    /// Other spans this one follows from (a compile of several changes links them all).
    pub links: Vec<SpanContext>,
    /// When the span started, if before now (an ACK span starts when the push was sent).
    pub at: Option<SystemTime>,
}

/// A span, or nothing when traces are off. Ends when dropped (or at [`Span::end`]).
#[derive(Default)]
pub struct Span(Option<opentelemetry_sdk::trace::Span>);

/// Starts span `name` of `kind` under `start`, with the attributes `attrs` builds (called only
/// when traces are on).
pub fn span(
    name: &'static str,
    kind: Kind,
    start: Start<'_>,
    attrs: impl FnOnce() -> Vec<KeyValue>,
) -> Span {
    if !enabled() {
        return Span(None);
    }
    let Some(tracer) = TRACER.get() else {
        return Span(None);
    };
    let parent = match start.parent.filter(|p| p.is_valid()) {
        Some(p) => Context::new().with_remote_span_context(p.clone()),
        None => Context::new(),
    };
    let mut builder = tracer
        .span_builder(Cow::Borrowed(name))
        .with_kind(kind.into())
        .with_attributes(attrs());
    if !start.links.is_empty() {
        builder = builder.with_links(
            start
                .links
                .into_iter()
                .filter(SpanContext::is_valid)
                .map(Link::with_context)
                .collect(),
        );
    }
    if let Some(at) = start.at {
        builder = builder.with_start_time(at);
    }
    let span = builder.start_with_context(tracer, &parent);
    Span(Some(span))
}

impl Span {
    /// The span's context (None when traces are off).
    pub fn context(&self) -> Option<SpanContext> {
        use opentelemetry::trace::Span as _;
        self.0.as_ref().map(|s| s.span_context().clone())
    }

    /// The span's `traceparent` value; empty when traces are off.
    pub fn traceparent(&self) -> String {
        self.context()
            .map(|sc| format_traceparent(&sc))
            .unwrap_or_default()
    }

    /// Adds attributes built by `attrs` (called only when traces are on).
    pub fn set(&mut self, attrs: impl FnOnce() -> Vec<KeyValue>) {
        use opentelemetry::trace::Span as _;
        if let Some(s) = self.0.as_mut() {
            s.set_attributes(attrs());
        }
    }

    /// Marks the span failed with `message` (bounded: the first 256 characters).
    pub fn fail(&mut self, message: &str) {
        use opentelemetry::trace::Span as _;
        if let Some(s) = self.0.as_mut() {
            s.set_status(Status::error(message.chars().take(256).collect::<String>()));
        }
    }

    /// Ends the span now.
    pub fn end(self) {
        drop(self);
    }
}

/// A bounded attribute value: at most 128 characters of `s` (names from tenants' objects).
pub fn bounded(s: &str) -> String {
    s.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let sc = parse_traceparent(GOOD).expect("valid");
        assert!(sc.is_remote());
        assert!(sc.is_sampled());
        assert_eq!(
            sc.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(format_traceparent(&sc), GOOD);
        let unsampled = GOOD.replace("-01", "-00");
        let sc = parse_traceparent(&unsampled).unwrap();
        assert!(!sc.is_sampled());
        assert_eq!(format_traceparent(&sc), unsampled);
        // Unknown flags are dropped, surrounding blanks ignored.
        let sc = parse_traceparent(&format!(" {} ", GOOD.replace("-01", "-03"))).unwrap();
        assert_eq!(format_traceparent(&sc), GOOD);
        // A later version may carry more fields: read by the first four.
        let sc = parse_traceparent(&format!("{}-extra", GOOD.replacen("00", "cc", 1))).unwrap();
        assert_eq!(format_traceparent(&sc), GOOD);
    }

    #[test]
    fn malformed_traceparents_are_refused_not_panicked_on() {
        let long = "a".repeat(100_000);
        let cases = [
            "",
            "garbage",
            "00",
            "00-",
            "----",
            // Wrong lengths.
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Upper case and non-hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Version ff is invalid; version 00 has no fifth field.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            // Multi-byte characters where hex belongs.
            "00-4bf92f3577b34da6a3ce929d0e0é736-00f067aa0ba902b7-01",
            &long,
        ];
        for c in cases {
            assert_eq!(parse_traceparent(c), None, "{c:?}");
        }
        assert_eq!(format_traceparent(&SpanContext::empty_context()), "");
    }

    #[test]
    fn off_without_an_endpoint_and_when_disabled() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(settings(env(&[]), "fleetgate-hub"), None);
        assert_eq!(settings(env(&[(ENDPOINT_ENV, " ")]), "fleetgate-hub"), None);
        let s = settings(
            env(&[(ENDPOINT_ENV, "http://127.0.0.1:4317")]),
            "fleetgate-hub",
        );
        assert_eq!(
            s,
            Some(Settings {
                endpoint: "http://127.0.0.1:4317".into(),
                service_name: "fleetgate-hub".into()
            })
        );
        // The traces-only endpoint wins; OTEL_SERVICE_NAME names the service.
        let s = settings(
            env(&[
                (ENDPOINT_ENV, "http://a:4317"),
                (TRACES_ENDPOINT_ENV, "http://b:4317"),
                (SERVICE_NAME_ENV, "edge-hub"),
            ]),
            "fleetgate-hub",
        )
        .unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.service_name.as_str()),
            ("http://b:4317", "edge-hub")
        );
        assert_eq!(
            settings(
                env(&[(ENDPOINT_ENV, "http://a:4317"), (SDK_DISABLED_ENV, "TRUE")]),
                "x"
            ),
            None
        );
    }

    #[test]
    fn spans_are_empty_when_off() {
        // No init in this test binary: nothing is built, the closure never runs.
        let s = span("x", Kind::Internal, Start::default(), || {
            panic!("attributes built while traces are off")
        });
        assert_eq!(s.context(), None);
        assert_eq!(s.traceparent(), "");
    }
}
