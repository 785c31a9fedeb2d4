//! Translate (pure): an AgentgatewayBackend's `spec.mcp` -> `AiBackend.mcp` of a
//! `KIND_AI_BACKEND` object.
//!
//! `spec.mcp.targets[]` with `static{host, port, path, protocol}`: each host is resolved like an
//! LLM provider's ([`crate::resolve::ai::resolve_host`]): a Service of the cluster
//! (`<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc` or a bare name in the backend's
//! namespace) becomes its endpoints, any other host is external (the hub admits it only on the
//! tenant's egress allowlist). `static.backendRef{name}` instead of `host` is a Service of the
//! backend's namespace, resolved the same way. `selector{namespaces, services}` becomes one
//! target per MCP port of each Service it selects ([`crate::resolve::mcp_selector`]), each
//! resolved like a static host. `failureMode`, `prefixMode` and `sessionRouting` travel as
//! written; the hub judges their values. What fleetgate does not support yet is not dropped
//! silently: the policies of an MCP backend other than `spec.policies.mcp` authentication and
//! authorization ([`super::mcp_policy`]) and any other field make the backend's problem
//! (UnsupportedValue), naming the field; a Service that is missing makes it BackendNotFound,
//! naming the target, and so do selectors that select nothing. The hub reports either on the
//! backend's status and no traffic goes to it.
//!
//! The annotation [`ACCEPT_ANNOTATION`] (`"<target>_<tool>=<sha256>,..."`) becomes
//! `McpBackend.accept_tools`: the tool definitions the tenant accepts after a target changed
//! them ([`accepts`]); one it cannot read makes the backend's problem, naming the entry.

use fleetgate_proto::spoke::v1 as pb;

use super::ai_backend::{first_unknown, unsupported};
use super::{wire_endpoint, wire_problem};
use crate::crd::agentgateway::{AgentgatewayBackendSpec, LocalRef, McpSpec, McpStaticTarget};
use crate::resolve::ai::resolve_host;
use crate::resolve::mcp_selector::{SSE, STREAMABLE_HTTP, TARGET_NAME, select};
use crate::resolve::{Index, Problem, Reason};

/// The annotation naming the tool definitions the tenant accepts (MCP tool pinning).
pub const ACCEPT_ANNOTATION: &str = "fleetgate.dev/mcp-accept-tools";

/// The annotation's entries, `<target>_<tool>=<sha256>` separated by commas (spaces and empty
/// entries ignored). Target names have no `_`, so the first `_` ends the target; the hub checks
/// that each names a target and a hash.
pub fn accepts(value: &str) -> Result<Vec<pb::McpToolAccept>, Problem> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.rsplit_once('=').and_then(|(name, sha256)| {
            let (target, tool) = name.trim().split_once('_')?;
            (!target.is_empty() && !tool.is_empty()).then(|| pb::McpToolAccept {
                target: target.to_string(),
                tool: tool.to_string(),
                sha256: sha256.trim().to_string(),
            })
        });
        match parsed {
            Some(a) => out.push(a),
            None => {
                return Err(unsupported(format!(
                    "annotation {ACCEPT_ANNOTATION} entry {:?} is not <target>_<tool>=<sha256>; copy the entry the backend's ToolsPinned condition names",
                    entry.chars().take(200).collect::<String>()
                )));
            }
        }
    }
    Ok(out)
}

/// `spec.mcp` (`value`, as read) of a backend in namespace `ns`, with the annotation
/// [`ACCEPT_ANNOTATION`] when it has one.
pub fn mcp_backend(
    ns: &str,
    spec: &AgentgatewayBackendSpec,
    value: &serde_json::Value,
    accept: Option<&str>,
    index: &Index<'_>,
) -> pb::AiBackend {
    let translated = translate(ns, spec, value, index).and_then(|mut m| {
        m.accept_tools = accepts(accept.unwrap_or_default())?;
        Ok(m)
    });
    match translated {
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
        if let Some(field) = first_unknown(&at, &t.other) {
            return Err(unsupported(format!("{field} is not supported; remove it")));
        }
        match (&t.static_target, &t.selector) {
            (Some(_), Some(_)) => {
                return Err(unsupported(format!(
                    "{at} sets both static and selector; keep one"
                )));
            }
            (None, None) => {
                return Err(unsupported(format!(
                    "{at} has neither static nor selector; set {at}.static with host (or backendRef), port, path and protocol, or {at}.selector"
                )));
            }
            (Some(s), None) => targets.push(static_target(&at, ns, &t.name, s, index)?),
            (None, Some(sel)) => {
                let at = format!("{at}.selector");
                let found = select(&at, ns, sel, index.services(), index.namespaces())
                    .map_err(|e| unsupported(e.0))?;
                for f in found {
                    let host = f.host();
                    let endpoints =
                        resolve_host(&at, ns, &host, f.port, index)?.unwrap_or_default();
                    targets.push(pb::McpTarget {
                        name: f.name,
                        host,
                        port: f.port,
                        path: f.path,
                        protocol: f.protocol.to_string(),
                        endpoints: endpoints.into_iter().map(wire_endpoint).collect(),
                    });
                }
            }
        }
    }
    if targets.is_empty() && mcp.targets.iter().any(|t| t.selector.is_some()) {
        return Err(Problem {
            reason: Reason::BackendNotFound,
            message: format!(
                "spec.mcp.targets: the selectors select no Service port with appProtocol {} or {}; label the MCP servers' Services (and set the port's appProtocol) or list static targets",
                STREAMABLE_HTTP[0], SSE[0]
            ),
        });
    }
    if let Some(name) = duplicate(&targets) {
        return Err(unsupported(format!(
            "spec.mcp.targets: two targets are named {name:?} (a selector names a target <service>-<port name>, or by the Service's annotation {TARGET_NAME}); target names must be unique"
        )));
    }
    Ok(pb::McpBackend {
        targets,
        failure_mode: mcp.failure_mode.unwrap_or_default(),
        prefix_mode: mcp.prefix_mode.unwrap_or_default(),
        session_routing: mcp.session_routing.unwrap_or_default(),
        authentication,
        authorization,
        accept_tools: Vec::new(),
    })
}

/// A `static` target at `at`: `host` (or `backendRef`, a Service of the backend's namespace)
/// resolved like an LLM provider's host.
fn static_target(
    at: &str,
    ns: &str,
    name: &str,
    s: &McpStaticTarget,
    index: &Index<'_>,
) -> Result<pb::McpTarget, Problem> {
    let at_s = format!("{at}.static");
    if let Some(field) = first_unknown(&at_s, &s.other) {
        return Err(unsupported(format!("{field} is not supported; remove it")));
    }
    let host = match (s.host.as_deref().filter(|h| !h.is_empty()), &s.backend_ref) {
        (Some(_), Some(_)) => {
            return Err(unsupported(format!(
                "{at_s} sets both host and backendRef; keep one"
            )));
        }
        (Some(h), None) => h.to_string(),
        (None, Some(r)) => backend_ref_host(&at_s, ns, r)?,
        (None, None) => {
            return Err(unsupported(format!(
                "{at_s}.host (or {at_s}.backendRef) is required"
            )));
        }
    };
    let port = s.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    if port == 0 {
        return Err(unsupported(format!("{at_s}.port is required (1-65535)")));
    }
    let endpoints = resolve_host(&at_s, ns, &host, port, index)?.unwrap_or_default();
    Ok(pb::McpTarget {
        name: name.to_string(),
        host,
        port,
        path: s.path.clone(),
        protocol: s.protocol.clone().unwrap_or_default(),
        endpoints: endpoints.into_iter().map(wire_endpoint).collect(),
    })
}

/// `static.backendRef` (a Service of the backend's namespace, by name) -> its cluster-local
/// host, which is then resolved like any host (a missing Service is BackendNotFound there).
fn backend_ref_host(at: &str, ns: &str, r: &LocalRef) -> Result<String, Problem> {
    if let Some(field) = first_unknown(&format!("{at}.backendRef"), &r.other) {
        return Err(unsupported(format!(
            "{field} is not supported; backendRef names a Service of the backend's namespace by name"
        )));
    }
    if r.name.is_empty() {
        return Err(unsupported(format!("{at}.backendRef.name is required")));
    }
    Ok(format!("{}.{ns}.svc.cluster.local", r.name))
}

/// The first target name used twice.
fn duplicate(targets: &[pb::McpTarget]) -> Option<&str> {
    let mut seen = std::collections::BTreeSet::new();
    targets
        .iter()
        .map(|t| t.name.as_str())
        .find(|n| !seen.insert(*n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_annotation_is_read_entry_by_entry() {
        let h = "ab".repeat(32);
        let got = accepts(&format!(" alpha_add={h}, ,beta_my_tool = {h}")).unwrap();
        let got: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|a| (a.target.as_str(), a.tool.as_str(), a.sha256.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("alpha", "add", h.as_str()),
                ("beta", "my_tool", h.as_str())
            ],
            "the first '_' ends the target"
        );
        assert!(accepts("").unwrap().is_empty());
        for bad in ["alpha_add", "alphaadd=00", "_add=00", "alpha_=00"] {
            let p = accepts(bad).expect_err(bad);
            assert!(
                p.message.contains("is not <target>_<tool>=<sha256>"),
                "{}",
                p.message
            );
        }
    }
}
