//! The Grafana dashboards' queries (`deploy/grafana/*.json`) read the way the tests check them
//! against live scrapes: which metric names and label names each PromQL expression uses, and
//! which series and labels a `/metrics` (or Envoy's `/stats/prometheus`) text exposes
//! (`e2e/tests/dashboards.rs`, `e2e/tests/ai_usage.rs`).
//!
//! Metric names are fleetgate's (`fleetgate_*`) and Envoy's (`envoy_*`); a label is what a
//! selector matches, a `by`/`without` clause groups by, `label_values` lists or a legend shows
//! (`{{label}}`).
//!
//! Test support, outside the data path.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value;

/// The fleet dashboard (hub, agents, Envoy's stats through the hub).
pub const FLEET: &str = "fleet.json";
/// The tenant dashboard (variable `tenant`; hub, and Envoy's own tagged stats).
pub const TENANT: &str = "tenant.json";
/// The dashboard of the AI gateways' metrics (checked by `ai_usage.rs`, against an AI gateway).
pub const AI_USAGE: &str = "ai-usage.json";

/// A metric name in a query: fleetgate's or Envoy's.
const METRIC: &str = r"\b(?:fleetgate|envoy)_[a-z0-9_]+";

/// Series name -> label names seen on its samples (families without samples: the names their
/// `# TYPE` line implies, with no labels known), and the series that have samples.
#[derive(Debug, Default)]
pub struct Exposed {
    pub series: BTreeMap<String, BTreeSet<String>>,
    pub sampled: BTreeSet<String>,
}

impl Exposed {
    pub fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let names: Vec<String> = match kind {
                    "counter" if !name.ends_with("_total") => vec![format!("{name}_total")],
                    "histogram" => ["_bucket", "_count", "_sum"]
                        .iter()
                        .map(|s| format!("{name}{s}"))
                        .collect(),
                    _ => vec![name.to_string()],
                };
                for n in names {
                    self.series.entry(n).or_default();
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let (name, labels) = match line.split_once('{') {
                    Some((name, rest)) => {
                        (name, rest.split_once('}').map(|(l, _)| l).unwrap_or(""))
                    }
                    None => (line.split_whitespace().next().unwrap_or(""), ""),
                };
                self.sampled.insert(name.to_string());
                let set = self.series.entry(name.to_string()).or_default();
                for pair in labels.split("\",") {
                    if let Some((k, _)) = pair.split_once('=') {
                        set.insert(k.trim().to_string());
                    }
                }
            }
        }
    }
}

/// The metric names a PromQL expression uses, and the label names it selects or groups by.
pub fn query_parts(expr: &str) -> (Vec<String>, Vec<String>) {
    let selector = Regex::new(&format!(r"{METRIC}\{{([^}}]*)\}}")).unwrap();
    let label = Regex::new(r#"([a-z_]+)\s*(=|!=|=~|!~)\s*""#).unwrap();
    let by = Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").unwrap();
    let values = Regex::new(&format!(
        r"label_values\(\s*({METRIC})\s*,\s*([a-z_]+)\s*\)"
    ))
    .unwrap();
    let mut labels = Vec::new();
    for c in selector.captures_iter(expr) {
        labels.extend(label.captures_iter(&c[1]).map(|l| l[1].to_string()));
    }
    for c in by.captures_iter(expr) {
        labels.extend(
            c[1].split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
    }
    for c in values.captures_iter(expr) {
        labels.push(c[2].to_string());
    }
    // Label names are not metrics: drop grouping clauses, selector bodies and label_values'
    // label before looking for metric names.
    let bare = by.replace_all(expr, " ");
    let bare = Regex::new(r"\{[^}]*\}").unwrap().replace_all(&bare, " ");
    let bare = values.replace_all(&bare, " $1 ");
    let metrics = Regex::new(METRIC)
        .unwrap()
        .find_iter(&bare)
        .map(|m| m.as_str().to_string())
        .collect();
    (metrics, labels)
}

/// The labels a legend format shows (`{{tenant}} {{type}}`).
pub fn legend_labels(legend: &str) -> Vec<String> {
    Regex::new(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
        .unwrap()
        .captures_iter(legend)
        .map(|c| c[1].to_string())
        .collect()
}

/// Every query of a dashboard: panel targets and query variables (where, expression, legend).
fn targets(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["expr"].as_str().unwrap_or("").to_string(),
                t["legendFormat"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push((
                format!("variable {}", v["name"]),
                q.to_string(),
                String::new(),
            ));
        }
    }
    out
}

/// Every query of a dashboard: panel targets and query variables.
pub fn queries(dashboard: &Value) -> Vec<(String, String)> {
    targets(dashboard)
        .into_iter()
        .map(|(place, expr, _)| (place, expr))
        .collect()
}

/// Checks every query of `dashboard` (named `file` in messages) against `exposed`: each names
/// at least one metric, every metric is exposed, and every label it selects, groups by or shows
/// in its legend is on the metric's samples (where samples exist; see [`unsampled`]). Returns
/// how many queries were checked.
pub fn check(file: &str, dashboard: &Value, exposed: &Exposed) -> usize {
    let mut checked = 0;
    for (where_, expr, legend) in targets(dashboard) {
        let (metrics, mut labels) = query_parts(&expr);
        labels.extend(legend_labels(&legend));
        assert!(
            !metrics.is_empty(),
            "{file} {where_}: no fleetgate or Envoy metric in {expr:?}"
        );
        for m in &metrics {
            let known = exposed.series.get(m).unwrap_or_else(|| {
                panic!("{file} {where_}: {m} is not exposed by the components scraped ({expr})")
            });
            // Labels are checked where samples show them (a family without samples yet, e.g.
            // no NACK standing, shows none).
            if known.is_empty() {
                continue;
            }
            for l in labels
                .iter()
                .filter(|l| *l != "le" || m.ends_with("_bucket"))
            {
                assert!(
                    known.contains(l),
                    "{file} {where_}: {m} has no label {l} (it has {known:?}): {expr}"
                );
            }
        }
        checked += 1;
    }
    checked
}

/// The metrics `dashboard` names that `exposed` declares but has no sample of (so their labels
/// could not be checked).
pub fn unsampled(dashboard: &Value, exposed: &Exposed) -> BTreeSet<String> {
    queries(dashboard)
        .iter()
        .flat_map(|(_, expr)| query_parts(expr).0)
        .filter(|m| !exposed.sampled.contains(m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_as_promql_names_them() {
        let (m, l) = query_parts(
            r#"sum by (kind, reason) (fleetgate_hub_objects{tenant="$tenant", accepted="false"})"#,
        );
        assert_eq!(m, ["fleetgate_hub_objects"]);
        assert_eq!(l, ["tenant", "accepted", "kind", "reason"]);
        let (m, l) = query_parts("label_values(fleetgate_hub_clusters, tenant)");
        assert_eq!(
            (m, l),
            (vec!["fleetgate_hub_clusters".into()], vec!["tenant".into()])
        );
        // Envoy's metrics are metrics; its label names (envoy_*) are not.
        let (m, l) = query_parts(
            r#"sum by (envoy_response_code_class) (rate(envoy_cluster_upstream_rq_xx{fleetgate_tenant="$tenant"}[5m]))"#,
        );
        assert_eq!(m, ["envoy_cluster_upstream_rq_xx"]);
        assert_eq!(l, ["fleetgate_tenant", "envoy_response_code_class"]);
        let (m, l) = query_parts(
            "sum by (tenant) (rate(fleetgate_hub_tenant_request_errors_total[5m])) / sum by (tenant) (rate(fleetgate_hub_tenant_requests_total[5m]))",
        );
        assert_eq!(
            m,
            [
                "fleetgate_hub_tenant_request_errors_total",
                "fleetgate_hub_tenant_requests_total"
            ]
        );
        assert_eq!(l, ["tenant", "tenant"]);
        assert_eq!(legend_labels("{{tenant}} {{ type }}xx"), ["tenant", "type"]);
    }

    #[test]
    fn a_scrape_gives_series_their_labels_and_which_have_samples() {
        let mut e = Exposed::default();
        e.add(
            "# TYPE fleetgate_hub_xds_acks counter\n\
             fleetgate_hub_xds_acks_total{type=\"a\"} 1\n\
             # TYPE fleetgate_hub_tenant_requests counter\n\
             # TYPE envoy_cluster_upstream_rq_xx counter\n\
             envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",fleetgate_tenant=\"t\"} 3\n",
        );
        assert_eq!(
            e.series["envoy_cluster_upstream_rq_xx"],
            ["envoy_response_code_class", "fleetgate_tenant"]
                .map(String::from)
                .into()
        );
        assert!(e.series["fleetgate_hub_tenant_requests_total"].is_empty());
        assert!(!e.sampled.contains("fleetgate_hub_tenant_requests_total"));
        let board: Value = serde_json::json!({"panels": [{"title": "x", "targets": [
            {"expr": "rate(fleetgate_hub_tenant_requests_total[5m])"},
            {"expr": "rate(fleetgate_hub_xds_acks_total[5m])", "legendFormat": "{{type}}"}]}]});
        assert_eq!(check("b.json", &board, &e), 2);
        assert_eq!(
            unsampled(&board, &e),
            ["fleetgate_hub_tenant_requests_total".to_string()].into()
        );
    }

    #[test]
    #[should_panic(expected = "has no label tenant")]
    fn a_legend_label_the_series_lacks_fails() {
        let mut e = Exposed::default();
        e.add("fleetgate_hub_xds_acks_total{type=\"a\"} 1\n");
        let board: Value = serde_json::json!({"panels": [{"title": "x", "targets": [
            {"expr": "sum(rate(fleetgate_hub_xds_acks_total[5m]))", "legendFormat": "{{tenant}}"}]}]});
        check("b.json", &board, &e);
    }
}
