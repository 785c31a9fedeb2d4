//! The Grafana dashboards' queries (`deploy/grafana/*.json`) read the way the tests check them
//! against live scrapes: which metric names and label names each PromQL expression uses, and
//! which series and labels a `/metrics` text exposes (`e2e/tests/dashboards.rs`,
//! `e2e/tests/ai_usage.rs`).
//!
//! Test support, outside the data path.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The dashboard of the AI gateways' metrics (checked by `ai_usage.rs`, against an AI gateway).
pub const AI_USAGE: &str = "ai-usage.json";

/// Series name -> label names seen on its samples (families without samples: the names their
/// `# TYPE` line implies, with no labels known).
#[derive(Debug, Default)]
pub struct Exposed {
    pub series: BTreeMap<String, BTreeSet<String>>,
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
                    "counter" => vec![format!("{name}_total")],
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
    let ident = regex::Regex::new(r"fleetgate_[a-z0-9_]+").unwrap();
    let metrics = ident
        .find_iter(expr)
        .map(|m| m.as_str().to_string())
        .collect();
    let mut labels = Vec::new();
    let selector = regex::Regex::new(r"fleetgate_[a-z0-9_]+\{([^}]*)\}").unwrap();
    let label = regex::Regex::new(r#"([a-z_]+)\s*(=|!=|=~|!~)\s*""#).unwrap();
    for c in selector.captures_iter(expr) {
        labels.extend(label.captures_iter(&c[1]).map(|l| l[1].to_string()));
    }
    let by = regex::Regex::new(r"by \(([^)]*)\)").unwrap();
    for c in by.captures_iter(expr) {
        labels.extend(c[1].split(',').map(|l| l.trim().to_string()));
    }
    let values =
        regex::Regex::new(r"label_values\(\s*fleetgate_[a-z0-9_]+\s*,\s*([a-z_]+)\s*\)").unwrap();
    for c in values.captures_iter(expr) {
        labels.push(c[1].to_string());
    }
    (metrics, labels)
}

/// Every query of a dashboard: panel targets and query variables.
pub fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["expr"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

/// Checks every query of `dashboard` (named `file` in messages) against `exposed`: each names
/// at least one fleetgate metric, every metric is exposed, and every label it selects or groups
/// by is on the metric's samples (where samples exist). Returns how many queries were checked.
pub fn check(file: &str, dashboard: &Value, exposed: &Exposed) -> usize {
    let mut checked = 0;
    for (where_, expr) in queries(dashboard) {
        let (metrics, labels) = query_parts(&expr);
        assert!(
            !metrics.is_empty(),
            "{file} {where_}: no fleetgate metric in {expr:?}"
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
