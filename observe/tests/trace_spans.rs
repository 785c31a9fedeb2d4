//! Spans with traces turned on (an in-memory exporter installed with `trace::install`): a
//! valid `traceparent` is continued, a malformed one (a hostile agent's or client's) starts a
//! fresh trace, links and failures are kept. Its own test binary: turning traces on is
//! process-wide.

use std::sync::{Arc, Mutex};

use fleetgate_observe::trace::{self, Attribute, Kind, Start};
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Keeps every exported span.
#[derive(Debug, Clone, Default)]
struct Memory(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Memory {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Memory {
    fn named(&self, name: &str) -> SpanData {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no span {name}"))
    }
}

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn valid_contexts_are_continued_and_garbage_starts_a_fresh_trace() {
    let memory = Memory::default();
    let _exporter = trace::install(
        SdkTracerProvider::builder()
            .with_simple_exporter(memory.clone())
            .build(),
    );
    assert!(trace::enabled());

    // Continued: same trace, the remote span as parent; its own traceparent is new.
    let parent = trace::parse_traceparent(PARENT);
    let span = trace::span(
        "continued",
        Kind::Server,
        Start {
            parent: parent.as_ref(),
            ..Default::default()
        },
        || vec![Attribute::new("fleetgate.tenant", "a")],
    );
    let own = span.traceparent();
    assert!(
        own.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{own}"
    );
    assert_ne!(own, PARENT);
    span.end();
    let s = memory.named("continued");
    assert_eq!(
        s.span_context.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    );
    assert_eq!(
        s.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
    assert!(s.parent_span_is_remote);
    assert_eq!(s.attributes, vec![Attribute::new("fleetgate.tenant", "a")]);

    // Garbage from a hostile peer: no context, so a root span of a fresh trace, no panic.
    for garbage in ["garbage", "00-zz-yy-01", &"f".repeat(4096), ""] {
        let parent = trace::parse_traceparent(garbage);
        assert_eq!(parent, None, "{garbage:?}");
        trace::span(
            "fresh",
            Kind::Server,
            Start {
                parent: parent.as_ref(),
                ..Default::default()
            },
            Vec::new,
        )
        .end();
        let s = memory.named("fresh");
        assert_eq!(s.parent_span_id, SpanId::INVALID);
        assert_ne!(
            s.span_context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        memory.0.lock().unwrap().retain(|s| s.name != "fresh");
    }

    // A span linked to others, marked failed.
    let a = trace::span("a", Kind::Internal, Start::default(), Vec::new);
    let b = trace::span("b", Kind::Internal, Start::default(), Vec::new);
    let mut c = trace::span(
        "c",
        Kind::Internal,
        Start {
            parent: a.context().as_ref(),
            links: vec![b.context().unwrap()],
            at: None,
        },
        Vec::new,
    );
    c.fail(&"x".repeat(1000));
    c.end();
    let s = memory.named("c");
    assert_eq!(s.parent_span_id, a.context().unwrap().span_id());
    assert_eq!(s.links.links.len(), 1);
    assert_eq!(s.links.links[0].span_context, b.context().unwrap());
    match &s.status {
        Status::Error { description } => assert_eq!(description.len(), 256),
        other => panic!("status {other:?}"),
    }

    // A parent that says "not sampled" (a client's traceparent ending in -00): the SDK's
    // default sampler (parent-based) follows it, nothing is exported.
    let unsampled = trace::parse_traceparent(&PARENT.replace("-01", "-00"));
    assert!(unsampled.is_some());
    trace::span(
        "unsampled",
        Kind::Server,
        Start {
            parent: unsampled.as_ref(),
            ..Default::default()
        },
        Vec::new,
    )
    .end();
    trace::span("root", Kind::Server, Start::default(), Vec::new).end();
    let names: Vec<_> = memory
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert!(names.iter().any(|n| n == "root"), "{names:?}");
    assert!(!names.iter().any(|n| n == "unsampled"), "{names:?}");
}
