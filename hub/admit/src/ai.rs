//! AgentgatewayBackends of kind `ai`: the wire `AiBackend` -> the model's
//! [`AiBackend`](crate::model::ai::AiBackend), after the checks every backend gets and the ones
//! only an AI backend needs.
//!
//! Where it sits: inside `admit`, pure, called by [`super::admit`] for `KIND_AI_BACKEND`.
//! - exactly one provider; a host that is a DNS name or an IP literal (none: the provider's
//!   default host); a port of 1-65535 (unset: 443 for an external host); absolute paths;
//! - the key: at most [`MAX_KEY_LEN`] bytes of visible ASCII; a refusal never repeats it;
//! - endpoints the agent resolved (a cluster-local host): the rule of every backend
//!   ([`super::endpoint::check`]: the cluster's CIDRs, no special address, never the hub's or
//!   the data plane's own);
//! - no endpoints: the host is outside the tenant's clusters and must be on the tenant's egress
//!   allowlist (`tenants[].egress`); an IP literal is also held to the special-address and
//!   own-address rules, since the AI gateway connects to it as written;
//! - the agent's `problem` (Service or Secret missing, ...) is kept: the backend is stored with
//!   it, reports it in its status, and routes naming it get 500 (compile).

use std::net::IpAddr;

use fleetgate_proto::spoke::v1 as pb;

use super::{Policy, Rejection, check_endpoint, check_path, reject};
use crate::model::ai::{AiAuth, AiBackend, AiProvider, AiTarget, AiUpstream, ProviderKey};
use crate::model::{BackendProblem, Meta};

/// The longest provider key admitted, in bytes (it travels in one HTTP header).
pub const MAX_KEY_LEN: usize = 4096;
/// The longest model name admitted.
pub const MAX_MODEL_LEN: usize = 256;
/// The port of an external host when the backend sets none.
pub const DEFAULT_EXTERNAL_PORT: u16 = 443;
/// The reason of a backend whose external host is not on the tenant's egress allowlist.
pub const EGRESS_NOT_ALLOWED: &str = "EgressNotAllowed";

/// Admits one AgentgatewayBackend of kind `ai`.
pub fn admit_ai_backend(
    meta: Meta,
    b: &pb::AiBackend,
    policy: &Policy<'_>,
) -> Result<AiBackend, Rejection> {
    if let Some(p) = &b.problem {
        return Ok(AiBackend {
            meta,
            target: Err(problem(p)),
        });
    }
    let provider = provider(b)?;
    let host = host(&b.host, &provider)?;
    let auth = auth(b.auth.as_ref())?;
    for (what, p) in [("path", &b.path), ("pathPrefix", &b.path_prefix)] {
        if let Some(p) = p {
            check_path(p).map_err(|e| Rejection {
                reason: e.reason,
                message: format!("spec.ai.provider.{what}: {}", e.message),
            })?;
        }
    }
    let port = u16::try_from(b.port).map_err(|_| Rejection {
        reason: "UnsupportedValue",
        message: format!("spec.ai.provider.port {} is not 1-65535", b.port),
    })?;
    let (port, upstream) = if b.endpoints.is_empty() {
        let port = if port == 0 {
            DEFAULT_EXTERNAL_PORT
        } else {
            port
        };
        external(&host, port, policy)?;
        (port, AiUpstream::External)
    } else {
        if port == 0 {
            return reject(
                "UnsupportedValue",
                format!(
                    "spec.ai.provider.port is not set for host {host}, a Service of the cluster; set it to the Service's port"
                ),
            );
        }
        (port, AiUpstream::Cluster(endpoints(b, policy)?))
    };
    Ok(AiBackend {
        meta,
        target: Ok(AiTarget {
            provider,
            host,
            port,
            path: b.path.clone(),
            path_prefix: b.path_prefix.clone(),
            upstream,
            auth,
        }),
    })
}

/// The agent's problem, with a reason from the ones it may send.
fn problem(p: &pb::BackendProblem) -> BackendProblem {
    BackendProblem {
        reason: match p.reason.as_str() {
            r @ ("BackendNotFound" | "InvalidKind" | "UnsupportedValue" | "RefNotPermitted") => {
                r.to_string()
            }
            _ => "BackendNotFound".to_string(),
        },
        message: p.message.chars().take(512).collect(),
    }
}

fn provider(b: &pb::AiBackend) -> Result<AiProvider, Rejection> {
    let (kind, model) = match &b.provider {
        Some(pb::ai_backend::Provider::Openai(o)) => ("openai", &o.model),
        Some(pb::ai_backend::Provider::Anthropic(a)) => ("anthropic", &a.model),
        Some(pb::ai_backend::Provider::Gemini(g)) => ("gemini", &g.model),
        None => {
            return reject(
                "UnsupportedValue",
                "spec.ai.provider names no provider fleetgate serves; set exactly one of: openai, anthropic, gemini",
            );
        }
    };
    {
        {
            let model = match model.as_deref() {
                None | Some("") => None,
                Some(m)
                    if m.len() <= MAX_MODEL_LEN && m.bytes().all(|c| (0x21..0x7f).contains(&c)) =>
                {
                    Some(m.to_string())
                }
                Some(m) => {
                    return reject(
                        "UnsupportedValue",
                        format!(
                            "spec.ai.provider.{kind}.model {:?} must be at most {MAX_MODEL_LEN} visible ASCII characters without spaces",
                            m.chars().take(64).collect::<String>()
                        ),
                    );
                }
            };
            Ok(match kind {
                "anthropic" => AiProvider::Anthropic { model },
                "gemini" => AiProvider::Gemini { model },
                _ => AiProvider::OpenAi { model },
            })
        }
    }
}

/// The host, lower-cased: a DNS name (one label is a Service name of the backend's namespace;
/// one trailing dot, the fully qualified form, is dropped) or an IP literal; empty: the
/// provider's default host.
fn host(written: &str, provider: &AiProvider) -> Result<String, Rejection> {
    if written.is_empty() {
        return Ok(provider.default_host().to_string());
    }
    let raw = written.strip_suffix('.').unwrap_or(written);
    let unbracketed = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let h = raw.to_ascii_lowercase();
    if !h.starts_with("*.") && crate::model::policy::is_hostname_pattern(&h) {
        return Ok(h);
    }
    reject(
        "UnsupportedValue",
        format!(
            "spec.ai.provider.host {:?} is neither a DNS name nor an IP address",
            written.chars().take(253).collect::<String>()
        ),
    )
}

/// `policies.auth`. A refusal says what is wrong with the key, never what it is.
fn auth(a: Option<&pb::AiAuth>) -> Result<AiAuth, Rejection> {
    let Some(a) = a else {
        return Ok(AiAuth::None);
    };
    match (a.key.is_empty(), a.passthrough) {
        (true, false) => Ok(AiAuth::None),
        (true, true) => Ok(AiAuth::Passthrough),
        (false, true) => reject(
            "UnsupportedValue",
            "spec.policies.auth sets both a key and passthrough; use one of them",
        ),
        (false, false) => {
            if a.key.len() > MAX_KEY_LEN {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "spec.policies.auth: the key is {} bytes, at most {MAX_KEY_LEN} are allowed (the key is not shown)",
                        a.key.len()
                    ),
                );
            }
            if !a.key.bytes().all(|c| (0x20..0x7f).contains(&c)) {
                return reject(
                    "UnsupportedValue",
                    "spec.policies.auth: the key holds a control or non-ASCII character (a newline at the end of the Secret's value?); store the key alone (the key is not shown)",
                );
            }
            Ok(AiAuth::Key(ProviderKey(a.key.clone())))
        }
    }
}

/// The ready endpoints of a cluster-local host, through the rule of every backend.
fn endpoints(
    b: &pb::AiBackend,
    policy: &Policy<'_>,
) -> Result<Vec<std::net::SocketAddr>, Rejection> {
    let limit = policy.limits.max_endpoints_per_backend;
    if b.endpoints.len() > limit {
        return reject(
            "UnsupportedValue",
            format!(
                "host {}: {} endpoints, the limit is {limit}",
                b.host.chars().take(253).collect::<String>(),
                b.endpoints.len()
            ),
        );
    }
    let mut out = Vec::new();
    for e in b.endpoints.iter().filter(|e| e.ready) {
        out.push(check_endpoint(e, policy)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether a host names something inside a Kubernetes cluster, which only the agent can resolve.
fn is_cluster_local(host: &str) -> bool {
    host.parse::<IpAddr>().is_err()
        && (!host.contains('.')
            || host.ends_with(".svc")
            || host.ends_with(".cluster.local")
            || host.ends_with(".svc.cluster.local"))
}

/// An external host (the agent resolved no endpoints): allowed by the tenant's egress list, and
/// an IP literal must not lead to a special or an own address.
fn external(host: &str, port: u16, policy: &Policy<'_>) -> Result<(), Rejection> {
    if is_cluster_local(host) {
        return reject(
            "BackendNotFound",
            format!(
                "host {host} names a Service inside the cluster, but the agent resolved no endpoints for it; check that the Service exists in that namespace"
            ),
        );
    }
    let ip = host.parse::<IpAddr>().ok();
    if let Some(ip) = ip {
        super::endpoint::check_external(ip, port, policy.cluster, policy.reserved)?;
    }
    let tenant = &policy.tenant.name;
    if !policy.tenant.egress_allows(host) {
        let allowed = if policy.tenant.egress.is_empty() {
            "it allows no host yet".to_string()
        } else {
            format!("it allows {}", policy.tenant.egress.join(", "))
        };
        // An address is more likely meant to be inside the cluster than a provider's.
        let inside = match ip {
            Some(_) => format!(
                "; for a server inside cluster {}, name its Service as the host (the agent resolves it to endpoints in {})",
                policy.cluster.name,
                policy
                    .cluster
                    .endpoint_cidrs
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        return reject(
            EGRESS_NOT_ALLOWED,
            format!(
                "host {host} is outside tenant {tenant}'s clusters and not on its egress allowlist ({allowed}); the hub operator must add {host} to tenants[{tenant}].egress in the hub's configuration{inside}"
            ),
        );
    }
    Ok(())
}
