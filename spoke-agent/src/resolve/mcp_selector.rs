//! `spec.mcp.targets[].selector` of an AgentgatewayBackend: label selectors over the cluster's
//! Services -> MCP targets, as agentgateway's controller reads them.
//!
//! Part of resolve (step 2, pure). Only this cluster's Services are ever selected; the agent
//! watches every Service and Namespace (`crate::watch`), and the whole state is translated again
//! on any change, so a Service that starts or stops matching adds or removes its targets.
//!
//! Semantics (agentgateway `controller/pkg/syncer/backend/mcp.go`):
//! - `namespaces` unset: the backend's own namespace only; set: the namespaces whose labels it
//!   matches (an empty selector matches every namespace). `services` unset: every Service of
//!   those namespaces. At least one of the two is required.
//! - Each port of a selected Service whose `appProtocol` is `agentgateway.dev/mcp`
//!   (streamable HTTP) or `agentgateway.dev/mcp-sse` (SSE), or the older `kgateway.dev/mcp`
//!   and `kgateway.dev/mcp-sse`, is one target; other ports are not MCP servers and are left
//!   out.
//! - Its name: the Service's annotation `agentgateway.dev/mcp-target-name`, else
//!   `<service>-<port name>`, else `<service>-<port number>` (the selector entry's own `name` is
//!   not used). Its path: the annotation `agentgateway.dev/mcp-path` (or the older
//!   `kgateway.dev/mcp-path`), else the protocol's default. Its host:
//!   `<service>.<namespace>.svc.cluster.local` at the Service port, resolved like a static host.
//!
//! Label selectors read as Kubernetes does: `matchLabels` and every `matchExpressions`
//! requirement ANDed; a requirement with an unknown operator selects nothing (never widens).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::crd::agentgateway::McpSelector;

/// `appProtocol` of a streamable HTTP MCP port (and its older name).
pub const STREAMABLE_HTTP: [&str; 2] = ["agentgateway.dev/mcp", "kgateway.dev/mcp"];
/// `appProtocol` of an SSE MCP port (and its older name).
pub const SSE: [&str; 2] = ["agentgateway.dev/mcp-sse", "kgateway.dev/mcp-sse"];
/// Annotation naming a Service's target.
pub const TARGET_NAME: &str = "agentgateway.dev/mcp-target-name";
/// Annotations giving a Service's MCP path (the newer first).
pub const PATH: [&str; 2] = ["agentgateway.dev/mcp-path", "kgateway.dev/mcp-path"];

/// One target a selector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub port: u32,
    /// `None`: the protocol's default path.
    pub path: Option<String>,
    /// `StreamableHTTP` or `SSE`.
    pub protocol: &'static str,
}

impl Selected {
    /// The Service's cluster-local name, the target's host.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }
}

/// Why a selector cannot be used; the message names the field or the Service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// Whether `labels` satisfy `selector`.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// The MCP protocol of an `appProtocol`, if it is one.
fn protocol(app_protocol: Option<&str>) -> Option<&'static str> {
    let p = app_protocol?;
    if STREAMABLE_HTTP.contains(&p) {
        Some("StreamableHTTP")
    } else if SSE.contains(&p) {
        Some("SSE")
    } else {
        None
    }
}

/// Whether `s` is a DNS label (what a target name must be: it prefixes tool names).
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The targets `selector` (written at `at`) of a backend in `backend_ns` finds among
/// `services`, sorted by namespace, Service and port order.
pub fn select<'a>(
    at: &str,
    backend_ns: &str,
    selector: &McpSelector,
    services: impl Iterator<Item = &'a Service>,
    namespaces: &[Namespace],
) -> Result<Vec<Selected>, SelectorError> {
    if let Some(field) = selector.other.keys().next() {
        return Err(SelectorError(format!(
            "{at}.{field} is not supported; a selector has namespaces and services"
        )));
    }
    if selector.namespaces.is_none() && selector.services.is_none() {
        return Err(SelectorError(format!(
            "{at} selects nothing; set {at}.services (Service labels) and/or {at}.namespaces (namespace labels)"
        )));
    }
    let none = BTreeMap::new();
    let in_namespace = |ns: &str| match &selector.namespaces {
        None => ns == backend_ns,
        Some(sel) => namespaces.iter().any(|n| {
            n.metadata.name.as_deref() == Some(ns)
                && matches(sel, n.metadata.labels.as_ref().unwrap_or(&none))
        }),
    };
    let mut services: Vec<&Service> = services
        .filter(|s| s.metadata.namespace.as_deref().is_some_and(in_namespace))
        .filter(|s| {
            selector
                .services
                .as_ref()
                .is_none_or(|sel| matches(sel, s.metadata.labels.as_ref().unwrap_or(&none)))
        })
        .collect();
    services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    let mut out = Vec::new();
    for s in services {
        let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) else {
            continue;
        };
        let annotations = s.metadata.annotations.as_ref().unwrap_or(&none);
        let ports = s.spec.as_ref().and_then(|spec| spec.ports.as_ref());
        for p in ports.into_iter().flatten() {
            let Some(protocol) = protocol(p.app_protocol.as_deref()) else {
                continue;
            };
            let target = match (annotations.get(TARGET_NAME), &p.name) {
                (Some(n), _) => {
                    if !is_dns_label(n) {
                        return Err(SelectorError(format!(
                            "{at}: Service {ns}/{name} has annotation {TARGET_NAME}: {n:?}; a target name must be a DNS label (1 to 63 of a-z, 0-9, '-'), since it prefixes the target's tools"
                        )));
                    }
                    n.clone()
                }
                (None, Some(port_name)) if !port_name.is_empty() => format!("{name}-{port_name}"),
                _ => format!("{name}-{}", p.port),
            };
            if !is_dns_label(&target) {
                return Err(SelectorError(format!(
                    "{at}: Service {ns}/{name} port {} gives target name {target:?}, longer than a DNS label; set annotation {TARGET_NAME} on the Service",
                    p.port
                )));
            }
            let path = PATH
                .iter()
                .find_map(|k| annotations.get(*k))
                .filter(|p| !p.is_empty())
                .cloned();
            out.push(Selected {
                name: target,
                namespace: ns.clone(),
                service: name.clone(),
                port: u32::try_from(p.port).unwrap_or(0),
                path,
                protocol,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};

    fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        )
    }

    fn namespace(name: &str, l: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: labels(l),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn service(
        ns: &str,
        name: &str,
        l: &[(&str, &str)],
        annotations: &[(&str, &str)],
        ports: &[(Option<&str>, i32, Option<&str>)],
    ) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: labels(l),
                annotations: labels(annotations),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, port, app)| ServicePort {
                            name: n.map(Into::into),
                            port: *port,
                            app_protocol: app.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn by_labels(l: &[(&str, &str)]) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: labels(l),
            match_expressions: None,
        })
    }

    fn found(r: Result<Vec<Selected>, SelectorError>) -> Vec<String> {
        r.unwrap()
            .into_iter()
            .map(|s| {
                format!(
                    "{} {}:{} {} {}",
                    s.name,
                    s.host(),
                    s.port,
                    s.protocol,
                    s.path.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn selectors_find_mcp_ports_of_matching_services_named_as_agentgateway_names_them() {
        let namespaces = [
            namespace("tools", &[("team", "a")]),
            namespace("other", &[("team", "b")]),
            namespace("more", &[("team", "a")]),
        ];
        let mcp = Some("agentgateway.dev/mcp");
        let services = [
            // Two MCP ports (one named), one HTTP port left out.
            service(
                "tools",
                "alpha",
                &[("mcp", "yes")],
                &[],
                &[
                    (Some("http"), 80, Some("http")),
                    (Some("mcp"), 8080, mcp),
                    (None, 9090, Some("kgateway.dev/mcp-sse")),
                ],
            ),
            // Named by annotation, with a path.
            service(
                "tools",
                "beta",
                &[("mcp", "yes")],
                &[(TARGET_NAME, "b"), ("agentgateway.dev/mcp-path", "/rpc")],
                &[(None, 8080, Some("agentgateway.dev/mcp-sse"))],
            ),
            // Not labelled.
            service("tools", "gamma", &[], &[], &[(None, 8080, mcp)]),
            // Labelled, in another namespace.
            service(
                "more",
                "delta",
                &[("mcp", "yes")],
                &[],
                &[(None, 8080, mcp)],
            ),
            service("other", "eps", &[("mcp", "yes")], &[], &[(None, 8080, mcp)]),
        ];
        let sel = |namespaces, services| McpSelector {
            namespaces,
            services,
            other: Default::default(),
        };
        type Case<'a> = (&'a str, McpSelector, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "services by label, the backend's namespace only",
                sel(None, by_labels(&[("mcp", "yes")])),
                vec![
                    "alpha-mcp alpha.tools.svc.cluster.local:8080 StreamableHTTP -",
                    "alpha-9090 alpha.tools.svc.cluster.local:9090 SSE -",
                    "b beta.tools.svc.cluster.local:8080 SSE /rpc",
                ],
            ),
            (
                "namespaces by label, every Service there",
                sel(by_labels(&[("team", "a")]), None),
                vec![
                    "delta-8080 delta.more.svc.cluster.local:8080 StreamableHTTP -",
                    "alpha-mcp alpha.tools.svc.cluster.local:8080 StreamableHTTP -",
                    "alpha-9090 alpha.tools.svc.cluster.local:9090 SSE -",
                    "b beta.tools.svc.cluster.local:8080 SSE /rpc",
                    "gamma-8080 gamma.tools.svc.cluster.local:8080 StreamableHTTP -",
                ],
            ),
            (
                "an empty namespace selector: every namespace",
                sel(by_labels(&[]), by_labels(&[("mcp", "yes")])),
                vec![
                    "delta-8080 delta.more.svc.cluster.local:8080 StreamableHTTP -",
                    "eps-8080 eps.other.svc.cluster.local:8080 StreamableHTTP -",
                    "alpha-mcp alpha.tools.svc.cluster.local:8080 StreamableHTTP -",
                    "alpha-9090 alpha.tools.svc.cluster.local:9090 SSE -",
                    "b beta.tools.svc.cluster.local:8080 SSE /rpc",
                ],
            ),
            (
                "matchExpressions: NotIn",
                sel(
                    None,
                    Some(LabelSelector {
                        match_labels: None,
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "mcp".into(),
                            operator: "NotIn".into(),
                            values: Some(vec!["yes".into()]),
                        }]),
                    }),
                ),
                vec!["gamma-8080 gamma.tools.svc.cluster.local:8080 StreamableHTTP -"],
            ),
            (
                "an unknown operator selects nothing",
                sel(
                    None,
                    Some(LabelSelector {
                        match_labels: None,
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "mcp".into(),
                            operator: "Matches".into(),
                            values: None,
                        }]),
                    }),
                ),
                vec![],
            ),
            ("no match", sel(None, by_labels(&[("mcp", "no")])), vec![]),
        ];
        for (what, selector, want) in cases {
            let got = found(select(
                "spec.mcp.targets[0].selector",
                "tools",
                &selector,
                services.iter(),
                &namespaces,
            ));
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn bad_selectors_and_names_say_what_to_change() {
        let mcp = Some("agentgateway.dev/mcp");
        let at = "spec.mcp.targets[1].selector";
        let cases: Vec<(&str, McpSelector, Vec<Service>, &str)> = vec![
            (
                "neither field",
                McpSelector::default(),
                vec![],
                "spec.mcp.targets[1].selector selects nothing; set spec.mcp.targets[1].selector.services",
            ),
            (
                "an unknown field",
                McpSelector {
                    other: [("pods".to_string(), serde_json::json!({}))].into(),
                    ..Default::default()
                },
                vec![],
                "spec.mcp.targets[1].selector.pods is not supported",
            ),
            (
                "an annotation that is no DNS label",
                McpSelector {
                    services: by_labels(&[]),
                    ..Default::default()
                },
                vec![service(
                    "tools",
                    "alpha",
                    &[],
                    &[(TARGET_NAME, "my_tools")],
                    &[(None, 8080, mcp)],
                )],
                "Service tools/alpha has annotation agentgateway.dev/mcp-target-name: \"my_tools\"",
            ),
            (
                "a derived name too long",
                McpSelector {
                    services: by_labels(&[]),
                    ..Default::default()
                },
                vec![service(
                    "tools",
                    &"s".repeat(60),
                    &[],
                    &[],
                    &[(Some("streamable"), 8080, mcp)],
                )],
                "longer than a DNS label; set annotation agentgateway.dev/mcp-target-name",
            ),
        ];
        for (what, selector, services, want) in cases {
            let e = select(at, "tools", &selector, services.iter(), &[]).unwrap_err();
            assert!(e.0.contains(want), "{what}: {e}");
        }
    }
}
