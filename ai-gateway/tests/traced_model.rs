//! The `ai.request` span's model attribute with traces turned on (an in-memory exporter
//! installed with `trace::install`): a model the route's configuration names is kept, any other
//! name a client sends is `other`, as in the usage metrics. Its own test binary: turning traces
//! on is process-wide.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::route::RouteTable;
use fleetgate_ai_gateway::traced::TracedUsage;
use fleetgate_ai_gateway::usage::{InMemoryUsage, Usage, UsageKey, UsageSource};
use fleetgate_observe::trace::{self, Kind, Start};
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

const CONFIG: &str = r#"
tenants:
  a:
    routes:
      chat:
        ai: { provider: { openai: { model: tiny }, host: 127.0.0.1, port: 9 } }
        policies: { modelAliases: { fast: tiny-q4 } }
"#;

#[test]
fn only_configured_model_names_reach_the_span() {
    let memory = Memory::default();
    let _exporter = trace::install(
        SdkTracerProvider::builder()
            .with_simple_exporter(memory.clone())
            .build(),
    );
    let config = RawConfig::from_yaml(CONFIG).unwrap().validate().unwrap();
    let table = RouteTable::compile(&config, &RouteTable::default());
    let route = table.tenant("a").unwrap().route("chat").unwrap().clone();
    let hostile = "x".repeat(100) + "\u{1F4A3}-made-up-by-the-client";
    for model in ["tiny", "fast", hostile.as_str()] {
        let span = trace::span("ai.request", Kind::Server, Start::default(), Vec::new);
        let sink = TracedUsage::wrap(Arc::new(InMemoryUsage::default()), span, route.clone());
        sink.record(
            UsageKey {
                tenant: "a".into(),
                route: "chat".into(),
                model: model.into(),
            },
            Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
                source: UsageSource::Reported,
                streamed: false,
                status: 200,
                time_to_first_token: None,
                duration: Some(Duration::from_millis(1)),
                error: None,
            },
        );
    }
    let models: Vec<String> = memory
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "gen_ai.request.model")
                .map(|kv| kv.value.as_str().into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(models, ["tiny", "fast", "other"]);
}
