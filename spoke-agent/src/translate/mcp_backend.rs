//! Translate (pure): an AgentgatewayBackend's `spec.mcp` -> `AiBackend.mcp` of a
//! `KIND_AI_BACKEND` object.
//!
//! `spec.mcp.targets[]` with `static{host, port, path, protocol}`: each host is resolved like an
//! LLM provider's ([`crate::resolve::ai::resolve_host`]): a Service of the cluster
//! (`<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc` or a bare name in the backend's
//! namespace) becomes its endpoints, any other host is external (the hub admits it only on the
//! tenant's egress allowlist). `failureMode`, `prefixMode` and `sessionRouting` travel as
//! written; the hub judges their values. What fleetgate does not support yet is not dropped
//! silently: `targets[].selector`, `static.backendRef`, the policies of an MCP backend other
//! than `spec.policies.mcp` authentication and authorization ([`super::mcp_policy`]), and
//! any other field make the backend's problem (UnsupportedValue), naming the field; a Service
//! that is missing makes it BackendNotFound, naming the target. The hub reports either on the
//! backend's status and no traffic goes to it.

use fleetgate_proto::spoke::v1 as pb;

use super::ai_backend::{first_unknown, unsupported};
use super::{wire_endpoint, wire_problem};
use crate::crd::agentgateway::{AgentgatewayBackendSpec, McpSpec};
use crate::resolve::ai::resolve_host;
use crate::resolve::{Index, Problem};

/// `spec.mcp` (`value`, as read) of a backend in namespace `ns`.
pub fn mcp_backend(
    ns: &str,
    spec: &AgentgatewayBackendSpec,
    value: &serde_json::Value,
    index: &Index<'_>,
) -> pb::AiBackend {
    match translate(ns, spec, value, index) {
        Ok(mcp) => pb::AiBackend {
            mcp: Some(Box::new(mcp)),
            ..Default::default()
        },
        Err(p) => pb::AiBackend {
            problem: Some(wire_problem(p)),
            ..Default::default()
        },
    }
}

fn translate(
    ns: &str,
    spec: &AgentgatewayBackendSpec,
    value: &serde_json::Value,
    index: &Index<'_>,
) -> Result<pb::McpBackend, Problem> {
    if spec.a2a.is_some() {
        return Err(unsupported(
            "spec sets both a2a and mcp; an AgentgatewayBackend has exactly one kind".into(),
        ));
    }
    if spec.ai.is_some() {
        return Err(unsupported(
            "spec sets mcp and another kind (ai or a2a); an AgentgatewayBackend has exactly one kind"
                .into(),
        ));
    }
    if let Some(k) = spec.other.keys().find(|k| *k != "mcp") {
        return Err(unsupported(format!(
            "spec.{k} is not supported beside spec.mcp; remove it"
        )));
    }
    let (authentication, authorization) = match &spec.policies {
        Some(p) => super::mcp_policy::mcp_policies(p)?,
        None => (None, None),
    };
    let mcp: McpSpec = serde_json::from_value(value.clone()).map_err(|e| {
        unsupported(format!(
            "spec.mcp does not have agentgateway's shape ({e}); write targets: [{{name, static: {{host, port, path, protocol}}}}]"
        ))
    })?;
    if let Some(field) = first_unknown("spec.mcp", &mcp.other) {
        return Err(unsupported(format!(
            "{field} is not supported yet; remove it"
        )));
    }
    let mut targets = Vec::with_capacity(mcp.targets.len());
    for (i, t) in mcp.targets.iter().enumerate() {
        let at = format!("spec.mcp.targets[{i}]");
        if t.other.contains_key("selector") {
            return Err(unsupported(format!(
                "{at}.selector is not supported yet; list each MCP server as a static target with its Service as host (<svc>.<ns>.svc.cluster.local) and port"
            )));
        }
        if let Some(field) = first_unknown(&at, &t.other) {
            return Err(unsupported(format!("{field} is not supported; remove it")));
        }
        let Some(s) = &t.static_target else {
            return Err(unsupported(format!(
                "{at} has no static target; set {at}.static with host, port, path and protocol"
            )));
        };
        let at_s = format!("{at}.static");
        if s.other.contains_key("backendRef") {
            return Err(unsupported(format!(
                "{at_s}.backendRef is not supported yet; set {at_s}.host to the Service's name (<svc>.<ns>.svc.cluster.local) and {at_s}.port"
            )));
        }
        if let Some(field) = first_unknown(&at_s, &s.other) {
            return Err(unsupported(format!("{field} is not supported; remove it")));
        }
        let Some(host) = s.host.as_deref().filter(|h| !h.is_empty()) else {
            return Err(unsupported(format!("{at_s}.host is required")));
        };
        let port = s.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        if port == 0 {
            return Err(unsupported(format!("{at_s}.port is required (1-65535)")));
        }
        let endpoints = resolve_host(&at_s, ns, host, port, index)?.unwrap_or_default();
        targets.push(pb::McpTarget {
            name: t.name.clone(),
            host: host.to_string(),
            port,
            path: s.path.clone(),
            protocol: s.protocol.clone().unwrap_or_default(),
            endpoints: endpoints.into_iter().map(wire_endpoint).collect(),
        });
    }
    Ok(pb::McpBackend {
        targets,
        failure_mode: mcp.failure_mode.unwrap_or_default(),
        prefix_mode: mcp.prefix_mode.unwrap_or_default(),
        session_routing: mcp.session_routing.unwrap_or_default(),
        authentication,
        authorization,
    })
}
