//! `allowedRoutes.namespaces.from: Selector`: a listener's label selector -> the namespaces it
//! admits routes from.
//!
//! Part of resolve (step 2, pure): the agent watches Namespaces (`crate::watch`), so it turns
//! the selector into the explicit namespace list the hub gets (`AllowedRoutes.namespaces`); the
//! hub never sees labels. Kubernetes label-selector semantics: `matchLabels` and every
//! `matchExpressions` requirement are ANDed; an empty selector selects every namespace. A
//! requirement with an unknown operator selects nothing, so a selector fleetgate cannot read
//! never widens what a listener admits.

use std::collections::BTreeMap;

use gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesSelector as Selector;
use k8s_openapi::api::core::v1::Namespace;

/// Whether `labels` satisfy `selector`.
pub fn matches(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    selects(
        selector.match_labels.as_ref(),
        selector.match_expressions.iter().flatten().map(|e| {
            (
                e.key.as_str(),
                e.operator.as_str(),
                e.values.as_deref().unwrap_or_default(),
            )
        }),
        labels,
    )
}

/// Kubernetes label selector semantics, whatever type carries the selector: every
/// `match_labels` pair is present and every (key, operator, values) expression holds (`In`,
/// `NotIn`, `Exists`, `DoesNotExist`; any other operator selects nothing).
pub fn selects<'a>(
    match_labels: Option<&BTreeMap<String, String>>,
    mut expressions: impl Iterator<Item = (&'a str, &'a str, &'a [String])>,
    labels: &BTreeMap<String, String>,
) -> bool {
    let by_labels = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && expressions.all(|(key, operator, values)| {
            let value = labels.get(key);
            match operator {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// The names of the namespaces `selector` selects, sorted.
pub fn select(selector: &Selector, namespaces: &[Namespace]) -> Vec<String> {
    let none = BTreeMap::new();
    let mut out: Vec<String> = namespaces
        .iter()
        .filter(|ns| matches(selector, ns.metadata.labels.as_ref().unwrap_or(&none)))
        .filter_map(|ns| ns.metadata.name.clone())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use gateway_api::gateways::GatewayListenersAllowedRoutesNamespacesSelectorMatchExpressions as Expr;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn ns(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> Expr {
        Expr {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn sel(labels: &[(&str, &str)], exprs: Vec<Expr>) -> Selector {
        Selector {
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    #[test]
    fn selector_table() {
        let all = vec![
            ns("prod", &[("env", "prod"), ("team", "a")]),
            ns("dev", &[("env", "dev"), ("team", "a")]),
            ns("plain", &[]),
            ns("infra", &[("env", "prod")]),
        ];
        let cases: Vec<(&str, Selector, Vec<&str>)> = vec![
            (
                "empty selects all",
                sel(&[], vec![]),
                vec!["dev", "infra", "plain", "prod"],
            ),
            (
                "matchLabels",
                sel(&[("env", "prod")], vec![]),
                vec!["infra", "prod"],
            ),
            (
                "matchLabels ANDed",
                sel(&[("env", "prod"), ("team", "a")], vec![]),
                vec!["prod"],
            ),
            (
                "In",
                sel(&[], vec![expr("env", "In", &["dev", "prod"])]),
                vec!["dev", "infra", "prod"],
            ),
            (
                "NotIn keeps unlabelled",
                sel(&[], vec![expr("env", "NotIn", &["prod"])]),
                vec!["dev", "plain"],
            ),
            (
                "Exists",
                sel(&[], vec![expr("team", "Exists", &[])]),
                vec!["dev", "prod"],
            ),
            (
                "DoesNotExist",
                sel(&[], vec![expr("team", "DoesNotExist", &[])]),
                vec!["infra", "plain"],
            ),
            (
                "labels and expressions ANDed",
                sel(&[("team", "a")], vec![expr("env", "In", &["prod"])]),
                vec!["prod"],
            ),
            (
                "unknown operator selects nothing",
                sel(&[], vec![expr("env", "Gt", &["1"])]),
                vec![],
            ),
            (
                "no namespace matches",
                sel(&[("env", "qa")], vec![]),
                vec![],
            ),
        ];
        for (what, s, want) in cases {
            assert_eq!(select(&s, &all), want, "{what}");
        }
    }
}
