//! The AI gateway's Prometheus metrics (`--metrics-listen`; served by `fleetgate-observe` with
//! `/healthz` and `/readyz`, like the hub's and the agent's).
//!
//! Where it sits: beside the data path, reading it at each scrape. Labels are bounded: the
//! tenant (the hub operator's list), never a tool, target or route name (those are the
//! tenant's input). The names are `fleetgate_ai_*`; docs/ai-gateway.md lists them.
//!
//! - `fleetgate_ai_mcp_tools_withheld{tenant}`: tools whose definition, as this replica last
//!   listed it, is not the pinned one (withheld until the tenant accepts it);
//! - `fleetgate_ai_mcp_tool_changes_total{tenant}`: changed tool definitions this replica
//!   detected (each new hash of a tool once);
//! - the LLM usage metrics (requests, tokens, durations, budget refusals, upstream errors):
//!   [`usage`], whose labels are bounded by the configuration (a model the configuration does
//!   not name is `other`).

pub mod usage;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::mcp::pins::PinBoard;
use crate::metrics::usage::AiMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// The metrics text (OpenMetrics) of `pins` and `ai` now.
pub fn render(pins: &PinBoard, ai: &AiMetrics) -> String {
    let mut registry = Registry::default();
    ai.register(&mut registry);
    let withheld = Family::<TenantLabels, Gauge>::default();
    let changes = Family::<TenantLabels, Counter>::default();
    registry.register(
        "fleetgate_ai_mcp_tools_withheld",
        "MCP tools withheld because their definition changed since it was pinned",
        withheld.clone(),
    );
    registry.register(
        "fleetgate_ai_mcp_tool_changes",
        "Changed MCP tool definitions this replica detected",
        changes.clone(),
    );
    for (tenant, c) in pins.counts() {
        let l = TenantLabels { tenant };
        withheld
            .get_or_create(&l)
            .set(i64::try_from(c.withheld).unwrap_or(i64::MAX));
        changes.get_or_create(&l).inc_by(c.changes);
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        return String::new();
    }
    out
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, pins: Arc<PinBoard>, ai: Arc<AiMetrics>) {
    let endpoints = fleetgate_observe::Endpoints {
        metrics: Box::new(move || render(&pins, &ai)),
        ready: Box::new(|| Ok(())),
        app: None,
    };
    fleetgate_observe::serve(listener, Arc::new(endpoints), std::future::pending()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::pins::{HubPin, ToolKey};

    #[test]
    fn withheld_tools_and_changes_are_counted_per_tenant_without_tool_names() {
        let pins = PinBoard::default();
        let key = ToolKey {
            route: "r".into(),
            target: "alpha".into(),
            tool: "secret_tool".into(),
        };
        pins.observe("a", &key, &"1".repeat(64));
        pins.set_hub_pins(
            "a",
            [(
                key.clone(),
                HubPin {
                    sha256: "1".repeat(64),
                    pending: None,
                },
            )]
            .into(),
        );
        pins.observe("a", &key, &"2".repeat(64));
        let text = render(&pins, &AiMetrics::default());
        assert!(
            text.contains("fleetgate_ai_mcp_tools_withheld{tenant=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fleetgate_ai_mcp_tool_changes_total{tenant=\"a\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("secret_tool") && !text.contains("alpha"),
            "{text}"
        );
    }
}
