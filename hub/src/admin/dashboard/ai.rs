//! The "AI usage" section of a tenant's page: tokens and requests per backend kind and model,
//! budgets left, the MCP catalog (targets, tools pinned and withheld) and the A2A catalog
//! (agents and their routes), from [`crate::admin::ai_usage::AiUsageView`]. Pure; every string
//! from a tenant (routes, models, targets, hosts) goes through [`esc`]. The section re-fetches
//! itself (`/ui/fragments/tenants/<tenant>/ai`) on every fleet event and every
//! [`REFRESH_SECONDS`], since usage reports arrive without a status change.

use std::fmt::Write;

use super::html::{esc, url};
use crate::admin::ai_usage::{AiUsageView, Measure};

/// How often the section re-fetches itself.
pub const REFRESH_SECONDS: u64 = 5;

/// The section with its live part.
pub fn section(tenant: &str, live: &str) -> String {
    format!(
        "<h2>AI usage</h2><div id=\"ai-usage\" hx-get=\"/ui/fragments/tenants/{}/ai\" hx-trigger=\"sse:fleet, every {REFRESH_SECONDS}s\" hx-swap=\"innerHTML\">{live}</div>",
        url(tenant)
    )
}

fn measure(m: Option<Measure>) -> String {
    match m {
        Some(m) => format!("{} of {} left ({} used)", m.left, m.limit, m.used),
        None => "unlimited".to_string(),
    }
}

/// The live part: the tables of `view`.
pub fn live(view: &AiUsageView) -> String {
    let mut s = format!(
        "<p class=\"muted\" id=\"ai-total\">{} requests ({} errors), {} input tokens, {} output tokens, as the AI gateways reported them since the hub started</p>",
        view.total.requests, view.total.errors, view.total.input_tokens, view.total.output_tokens
    );
    if !view.usage.is_empty() {
        s.push_str("<table id=\"ai-usage-table\"><tr><th>backend</th><th>model</th><th>requests</th><th>errors</th><th>input tokens</th><th>output tokens</th></tr>");
        for r in &view.usage {
            let _ = write!(
                s,
                "<tr data-model=\"{b}/{m}\"><td>{b}</td><td>{m}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.counts.requests,
                r.counts.errors,
                r.counts.input_tokens,
                r.counts.output_tokens,
                b = esc(&r.backend),
                m = esc(&r.model),
            );
        }
        s.push_str("</table>");
    }
    if view.budgets.is_empty() {
        s.push_str("<p class=\"muted\" id=\"ai-budgets\">No AI budget.</p>");
    } else {
        s.push_str("<table id=\"ai-budgets\"><tr><th>budget</th><th>requests</th><th>tokens</th><th>window</th></tr>");
        for b in &view.budgets {
            let _ = write!(
                s,
                "<tr data-budget=\"{scope}\"><td>{scope}</td><td>{}</td><td>{}</td><td>{} s, starts again in {} s</td></tr>",
                measure(b.requests),
                measure(b.tokens),
                b.window_seconds,
                b.resets_in_seconds,
                scope = esc(&b.scope),
            );
        }
        s.push_str("</table>");
    }
    if !view.mcp.is_empty() {
        s.push_str("<table id=\"mcp-catalog\"><tr><th>MCP route</th><th>targets</th><th>tools pinned</th><th>withheld</th></tr>");
        for m in &view.mcp {
            let _ = write!(
                s,
                "<tr data-route=\"{r}\"><td>{r}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.targets.join(", ")),
                m.tools,
                if m.withheld > 0 {
                    format!("<span class=\"problem\">{}</span>", m.withheld)
                } else {
                    "0".to_string()
                },
                r = esc(&m.route),
            );
        }
        s.push_str("</table>");
    }
    if !view.a2a.is_empty() {
        s.push_str(
            "<table id=\"a2a-catalog\"><tr><th>A2A route</th><th>agent</th><th>endpoints</th></tr>",
        );
        for a in &view.a2a {
            let _ = write!(
                s,
                "<tr data-route=\"{r}\"><td>{r}</td><td>{}:{}</td><td>{}</td></tr>",
                esc(&a.host),
                a.port,
                a.endpoints,
                r = esc(&a.route),
            );
        }
        s.push_str("</table>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::ai_usage::{A2aRow, BudgetRow, McpRow};
    use crate::ai_config::usage::{Counts, UsageRow};

    #[test]
    fn every_tenant_string_is_escaped_and_every_part_shown() {
        let evil = "<script>x</script>";
        let view = AiUsageView {
            total: Counts {
                requests: 3,
                errors: 1,
                input_tokens: 10,
                output_tokens: 20,
            },
            usage: vec![UsageRow {
                backend: "openai".into(),
                model: evil.into(),
                counts: Counts {
                    requests: 3,
                    errors: 1,
                    input_tokens: 10,
                    output_tokens: 20,
                },
            }],
            budgets: vec![BudgetRow {
                scope: evil.into(),
                window_seconds: 60,
                resets_in_seconds: 5,
                requests: Some(Measure {
                    limit: 10,
                    used: 4,
                    left: 6,
                }),
                tokens: None,
            }],
            mcp: vec![McpRow {
                route: evil.into(),
                targets: vec![evil.into()],
                tools: 2,
                withheld: 1,
            }],
            a2a: vec![A2aRow {
                route: evil.into(),
                host: evil.into(),
                port: 80,
                endpoints: 1,
            }],
        };
        let html = live(&view);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("6 of 10 left (4 used)"), "{html}");
        assert!(html.contains("unlimited"), "{html}");
        for id in ["ai-usage-table", "ai-budgets", "mcp-catalog", "a2a-catalog"] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
        }
        assert!(html.contains("<span class=\"problem\">1</span>"), "{html}");
        let s = section("a b", &html);
        assert!(s.contains("/ui/fragments/tenants/a%20b/ai"), "{s}");

        let empty = live(&AiUsageView::default());
        assert!(empty.contains("No AI budget."), "{empty}");
        assert!(!empty.contains("mcp-catalog") && !empty.contains("a2a-catalog"));
    }
}
