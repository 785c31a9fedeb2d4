//! AgentgatewayBackends of kind `mcp`: the wire `McpBackend` -> the model's
//! [`McpTargets`](crate::model::ai::McpTargets). Pure, called by [`super::ai::admit_ai_backend`].
//!
//! Every target is held to the rules of an LLM provider ([`super::ai`]): a host that is a DNS
//! name or an IP literal, a port of 1-65535, an absolute path; endpoints the agent resolved (a
//! Service of the tenant's cluster) through the rule of every backend (the cluster's CIDRs, no
//! special address, never the hub's or the data plane's own), or, without endpoints, a host on
//! the tenant's egress allowlist. A refusal names the target's field
//! (`spec.mcp.targets[1].static.host ...`) and why, in the backend's status. Also: 1 to
//! [`MAX_TARGETS`] targets with unique names that are DNS labels (they prefix tool names and
//! URIs, so `_` and `+` are refused), and the modes' values; `spec.policies.mcp` in
//! [`super::mcp_auth`].

use fleetgate_proto::spoke::v1 as pb;

use super::ai::{endpoints, external, host_name};
use super::{Policy, Rejection, check_path, reject};
use crate::model::ai::{AiTargets, AiUpstream, McpSpec, McpTarget, McpTargets, McpToolAccept};

/// Most targets of one MCP backend (agentgateway's limit).
pub const MAX_TARGETS: usize = 128;

/// The annotation naming the tool definitions the tenant accepts (MCP tool pinning).
pub const ACCEPT_ANNOTATION: &str = "fleetgate.dev/mcp-accept-tools";

/// Most accepted tool definitions on one backend.
pub const MAX_ACCEPTS: usize = 1024;

/// Longest tool name (the MCP specification's tool names are 1 to 128 characters).
pub const MAX_TOOL_NAME: usize = 128;

/// The accepted tool definitions: each names a target of the backend, a tool name of 1 to
/// [`MAX_TOOL_NAME`] bytes and a SHA-256 of 64 lower-case hex digits; at most [`MAX_ACCEPTS`].
fn accepts(
    targets: &[McpTarget],
    wire: &[pb::McpToolAccept],
) -> Result<Vec<McpToolAccept>, Rejection> {
    if wire.len() > MAX_ACCEPTS {
        return reject(
            "UnsupportedValue",
            format!(
                "annotation {ACCEPT_ANNOTATION} lists {} tools; at most {MAX_ACCEPTS}",
                wire.len()
            ),
        );
    }
    let mut out = Vec::with_capacity(wire.len());
    for a in wire {
        let entry = format!(
            "annotation {ACCEPT_ANNOTATION} entry {}_{}",
            a.target,
            a.tool.chars().take(MAX_TOOL_NAME).collect::<String>()
        );
        if !targets.iter().any(|t| t.name == a.target) {
            return reject(
                "UnsupportedValue",
                format!(
                    "{entry} names no target of spec.mcp.targets ({}); write <target>_<tool>=<sha256>",
                    targets
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if a.tool.is_empty() || a.tool.len() > MAX_TOOL_NAME {
            return reject(
                "UnsupportedValue",
                format!("{entry}: a tool name is 1 to {MAX_TOOL_NAME} bytes"),
            );
        }
        let hex = a.sha256.len() == 64
            && a.sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return reject(
                "UnsupportedValue",
                format!(
                    "{entry}: {:?} is not a SHA-256 of 64 lower-case hex digits; copy it from the backend's ToolsPinned condition",
                    a.sha256.chars().take(80).collect::<String>()
                ),
            );
        }
        out.push(McpToolAccept {
            target: a.target.clone(),
            tool: a.tool.clone(),
            sha256: a.sha256.clone(),
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A target name: a DNS label (1 to 63 of `a-z`, `0-9`, `-`, not starting or ending with `-`).
fn check_name(at: &str, name: &str) -> Result<(), Rejection> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        return Ok(());
    }
    reject(
        "UnsupportedValue",
        format!(
            "{at}.name {:?} must be 1 to 63 lower-case letters, digits or '-' (a DNS label): it prefixes the target's tools (<name>_<tool>) and resources (<name>+<uri>), so '_' and '+' cannot be part of it",
            name.chars().take(64).collect::<String>()
        ),
    )
}

/// `value` when it is one of `allowed` (`default` when empty).
fn one_of(at: &str, value: &str, allowed: &[&str]) -> Result<String, Rejection> {
    if value.is_empty() {
        return Ok(allowed[0].to_string());
    }
    if allowed.contains(&value) {
        return Ok(value.to_string());
    }
    reject(
        "UnsupportedValue",
        format!(
            "{at} {:?} is not one of {}",
            value.chars().take(64).collect::<String>(),
            allowed.join(", ")
        ),
    )
}

/// Admits `spec.mcp` of backend `b`.
pub fn admit_mcp(
    b: &pb::AiBackend,
    m: &pb::McpBackend,
    policy: &Policy<'_>,
) -> Result<AiTargets, Rejection> {
    if b.provider.is_some() || !b.host.is_empty() || !b.groups.is_empty() || b.auth.is_some() {
        return reject(
            "UnsupportedValue",
            "spec sets both ai and mcp; an AgentgatewayBackend has exactly one kind",
        );
    }
    if m.targets.is_empty() || m.targets.len() > MAX_TARGETS {
        return reject(
            "UnsupportedValue",
            format!(
                "spec.mcp.targets lists {} targets; list 1 to {MAX_TARGETS}",
                m.targets.len()
            ),
        );
    }
    let mut targets: Vec<McpTarget> = Vec::with_capacity(m.targets.len());
    for (i, t) in m.targets.iter().enumerate() {
        let at = format!("spec.mcp.targets[{i}]");
        check_name(&at, &t.name)?;
        if targets.iter().any(|x| x.name == t.name) {
            return reject(
                "UnsupportedValue",
                format!(
                    "{at}.name {} is used by an earlier target; target names must be unique",
                    t.name
                ),
            );
        }
        let at_s = format!("{at}.static");
        if t.host.is_empty() {
            return reject("UnsupportedValue", format!("{at_s}.host is required"));
        }
        let host = host_name(&at_s, &t.host)?;
        let port = match u16::try_from(t.port) {
            Ok(p) if p > 0 => p,
            _ => {
                return reject(
                    "UnsupportedValue",
                    format!("{at_s}.port {} is not 1-65535", t.port),
                );
            }
        };
        if let Some(p) = &t.path {
            check_path(p).map_err(|e| Rejection {
                reason: e.reason,
                message: format!("{at_s}.path: {}", e.message),
            })?;
        }
        let protocol = one_of(
            &format!("{at_s}.protocol"),
            &t.protocol,
            &["StreamableHTTP", "SSE"],
        )?;
        let prefixed = |e: Rejection| Rejection {
            reason: e.reason,
            message: format!("{at}: {}", e.message),
        };
        let upstream = if t.endpoints.is_empty() {
            external(&host, port, policy).map_err(prefixed)?;
            AiUpstream::External
        } else {
            AiUpstream::Cluster(endpoints(&t.host, &t.endpoints, policy).map_err(prefixed)?)
        };
        targets.push(McpTarget {
            name: t.name.clone(),
            host,
            port,
            path: t.path.clone(),
            protocol,
            upstream,
        });
    }
    let accept_tools = accepts(&targets, &m.accept_tools)?;
    Ok(AiTargets::Mcp(McpTargets {
        mcp: McpSpec {
            accept_tools,
            targets,
            failure_mode: one_of(
                "spec.mcp.failureMode",
                &m.failure_mode,
                &["FailClosed", "FailOpen"],
            )?,
            prefix_mode: one_of(
                "spec.mcp.prefixMode",
                &m.prefix_mode,
                &["Conditional", "Always", "Never"],
            )?,
            session_routing: one_of(
                "spec.mcp.sessionRouting",
                &m.session_routing,
                &["Stateful", "Stateless"],
            )?,
            authentication: m
                .authentication
                .as_ref()
                .map(super::mcp_auth::admit_authentication)
                .transpose()?,
            authorization: m
                .authorization
                .as_ref()
                .map(super::mcp_auth::admit_authorization)
                .transpose()?,
        },
    }))
}
