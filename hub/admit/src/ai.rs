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
//!   it, reports it in its status, and routes naming it get 500 (compile);
//! - `ai.groups`: at most [`MAX_GROUPS`] groups of 1 to [`MAX_GROUP_PROVIDERS`] providers, each
//!   named (unique in its group) and judged exactly like `ai.provider`; a refusal names the
//!   provider's field (`spec.ai.groups[1].providers[0].port ...`). A provider the agent could not
//!   resolve keeps its problem and the others serve; none resolved: the backend is unresolved.
//! - `spec.policies.ai.modelAliases`: at most [`MAX_MODEL_ALIASES`], names and models of 1 to
//!   [`MAX_MODEL_LEN`] visible ASCII characters; a refusal names the alias.
//! - `spec.a2a{host, port}` (the wire's provider `a2a`): an A2A agent, judged exactly like a
//!   provider at `spec.a2a` (its endpoints through the rule of every backend, or an external
//!   host on the egress allowlist), with a host required and no model aliases.

use std::collections::BTreeMap;
use std::net::IpAddr;

use fleetgate_proto::spoke::v1 as pb;

use super::{Policy, Rejection, check_endpoint, check_path, reject};
use crate::model::ai::{
    AiAuth, AiBackend, AiMember, AiProvider, AiTarget, AiTargets, AiUpstream, ProviderKey,
};
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
    let model_aliases = model_aliases(&b.model_aliases)?;
    if let Some(p) = &b.problem {
        return Ok(AiBackend {
            meta,
            target: Err(problem(p)),
            model_aliases,
        });
    }
    if let Some(mcp) = &b.mcp {
        let target = crate::mcp::admit_mcp(b, mcp, policy)?;
        return Ok(AiBackend {
            meta,
            target: Ok(target),
            model_aliases,
        });
    }
    if !b.groups.is_empty() {
        let target = admit_groups(b, policy)?;
        return Ok(AiBackend {
            meta,
            target,
            model_aliases,
        });
    }
    let a2a = matches!(b.provider, Some(pb::ai_backend::Provider::A2a(_)));
    if a2a && !model_aliases.is_empty() {
        return reject(
            "UnsupportedValue",
            "spec.policies.ai.modelAliases applies to LLM backends only; remove it from an a2a backend",
        );
    }
    let input = ProviderIn {
        kind: b.provider.as_ref().map(|p| match p {
            pb::ai_backend::Provider::Openai(o) => ("openai", &o.model),
            pb::ai_backend::Provider::Anthropic(a) => ("anthropic", &a.model),
            pb::ai_backend::Provider::Gemini(g) => ("gemini", &g.model),
            pb::ai_backend::Provider::A2a(_) => ("a2a", &NO_MODEL),
        }),
        host: &b.host,
        port: b.port,
        path: &b.path,
        path_prefix: &b.path_prefix,
        endpoints: &b.endpoints,
        auth: b.auth.as_ref(),
    };
    let at = if a2a { "spec.a2a" } else { "spec.ai.provider" };
    let target = admit_provider(at, "spec.policies.auth", "", &input, policy)?;
    Ok(AiBackend {
        meta,
        target: Ok(target.into()),
        model_aliases,
    })
}

/// The model of an A2A agent: none.
static NO_MODEL: Option<String> = None;

/// The most entries of `spec.policies.ai.modelAliases` (agentgateway's limit).
pub const MAX_MODEL_ALIASES: usize = 64;

/// `spec.policies.ai.modelAliases`: at most [`MAX_MODEL_ALIASES`], each name and model 1 to
/// [`MAX_MODEL_LEN`] visible ASCII characters (they are matched against, and written into,
/// the request body's `model`). Sorted, so the stored intent does not depend on wire order.
fn model_aliases(
    wire: &std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>, Rejection> {
    const AT: &str = "spec.policies.ai.modelAliases";
    if wire.len() > MAX_MODEL_ALIASES {
        return reject(
            "UnsupportedValue",
            format!(
                "{AT} lists {} aliases, at most {MAX_MODEL_ALIASES} are allowed; remove some",
                wire.len()
            ),
        );
    }
    let visible = |s: &str| {
        !s.is_empty() && s.len() <= MAX_MODEL_LEN && s.bytes().all(|c| (0x21..0x7f).contains(&c))
    };
    let shown = |s: &str| s.chars().take(64).collect::<String>();
    let mut out = BTreeMap::new();
    for (name, model) in wire {
        if !visible(name) {
            return reject(
                "UnsupportedValue",
                format!(
                    "{AT} name {:?} must be 1 to {MAX_MODEL_LEN} visible ASCII characters without spaces",
                    shown(name)
                ),
            );
        }
        if !visible(model) {
            return reject(
                "UnsupportedValue",
                format!(
                    "{AT}[{}] model {:?} must be 1 to {MAX_MODEL_LEN} visible ASCII characters without spaces",
                    shown(name),
                    shown(model)
                ),
            );
        }
        out.insert(name.clone(), model.clone());
    }
    Ok(out)
}

/// The most priority groups of `spec.ai.groups` (agentgateway's limit).
pub const MAX_GROUPS: usize = 8;
/// The most providers in one group (agentgateway's limit).
pub const MAX_GROUP_PROVIDERS: usize = 16;
/// The longest provider name (a Gateway API SectionName).
pub const MAX_PROVIDER_NAME_LEN: usize = 253;

/// One provider as the wire gives it, from `ai.provider` or a provider of `ai.groups`.
struct ProviderIn<'a> {
    /// The provider kind and its model; `None`: none fleetgate serves.
    kind: Option<(&'static str, &'a Option<String>)>,
    host: &'a str,
    port: u32,
    path: &'a Option<String>,
    path_prefix: &'a Option<String>,
    endpoints: &'a [pb::Endpoint],
    auth: Option<&'a pb::AiAuth>,
}

/// `spec.ai.groups`: sizes and names, then every provider judged exactly like `ai.provider`
/// (a hostile provider refuses the whole backend, naming its field). A provider the agent
/// could not resolve is kept with its problem; when none resolved, the backend is unresolved.
fn admit_groups(
    b: &pb::AiBackend,
    policy: &Policy<'_>,
) -> Result<Result<AiTargets, BackendProblem>, Rejection> {
    if b.provider.is_some()
        || !b.host.is_empty()
        || b.port != 0
        || b.path.is_some()
        || b.path_prefix.is_some()
        || !b.endpoints.is_empty()
        || b.auth.is_some()
    {
        return reject(
            "UnsupportedValue",
            "spec.ai sets both provider and groups; keep exactly one",
        );
    }
    if b.groups.len() > MAX_GROUPS {
        return reject(
            "UnsupportedValue",
            format!(
                "spec.ai.groups lists {} groups, at most {MAX_GROUPS} are allowed",
                b.groups.len()
            ),
        );
    }
    let mut groups = Vec::with_capacity(b.groups.len());
    for (g, group) in b.groups.iter().enumerate() {
        let at_g = format!("spec.ai.groups[{g}].providers");
        if group.providers.is_empty() || group.providers.len() > MAX_GROUP_PROVIDERS {
            return reject(
                "UnsupportedValue",
                format!(
                    "{at_g} lists {} providers; list 1 to {MAX_GROUP_PROVIDERS}",
                    group.providers.len()
                ),
            );
        }
        let mut members: Vec<AiMember> = Vec::with_capacity(group.providers.len());
        for (i, p) in group.providers.iter().enumerate() {
            let at = format!("{at_g}[{i}]");
            check_provider_name(&at, &p.name)?;
            if members.iter().any(|m| m.name == p.name) {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "{at}.name {} is used twice in spec.ai.groups[{g}]; provider names must be unique within a group",
                        p.name
                    ),
                );
            }
            let target = match &p.problem {
                Some(problem_) => Err(problem(problem_)),
                None => {
                    let input = ProviderIn {
                        kind: p.provider.as_ref().map(|k| match k {
                            pb::ai_group_provider::Provider::Openai(o) => ("openai", &o.model),
                            pb::ai_group_provider::Provider::Anthropic(a) => {
                                ("anthropic", &a.model)
                            }
                            pb::ai_group_provider::Provider::Gemini(g) => ("gemini", &g.model),
                        }),
                        host: &p.host,
                        port: p.port,
                        path: &p.path,
                        path_prefix: &p.path_prefix,
                        endpoints: &p.endpoints,
                        auth: p.auth.as_ref(),
                    };
                    let auth_at = format!("{at}.policies.auth");
                    Ok(admit_provider(
                        &at,
                        &auth_at,
                        &format!("{at}: "),
                        &input,
                        policy,
                    )?)
                }
            };
            members.push(AiMember {
                name: p.name.clone(),
                target,
            });
        }
        groups.push(members);
    }
    let targets = AiTargets::Groups(groups);
    if !targets.resolved().is_empty() {
        return Ok(Ok(targets));
    }
    let AiTargets::Groups(groups) = &targets else {
        return Ok(Ok(targets));
    };
    let (reason, why) = unresolved_members(groups);
    Ok(Err(BackendProblem {
        reason,
        message: format!("no provider of spec.ai.groups resolved: {why}")
            .chars()
            .take(1024)
            .collect(),
    }))
}

/// The reason of the first unresolved member of `groups`, and every unresolved member named
/// with its problem (`groups[g].providers[i] (name): message`), for statuses.
pub fn unresolved_members(groups: &[Vec<AiMember>]) -> (String, String) {
    let mut reason = None;
    let mut parts = Vec::new();
    for (g, members) in groups.iter().enumerate() {
        for (i, m) in members.iter().enumerate() {
            if let Err(p) = &m.target {
                reason.get_or_insert_with(|| p.reason.clone());
                parts.push(format!(
                    "groups[{g}].providers[{i}] ({}): {}",
                    m.name, p.message
                ));
            }
        }
    }
    (
        reason.unwrap_or_else(|| "BackendNotFound".to_string()),
        parts.join("; "),
    )
}

/// `providers[].name`: a Gateway API SectionName, as agentgateway requires.
fn check_provider_name(at: &str, name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PROVIDER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        return Ok(());
    }
    reject(
        "UnsupportedValue",
        format!(
            "{at}.name {:?} must be 1 to {MAX_PROVIDER_NAME_LEN} lower-case letters, digits, '-' or '.', starting and ending with a letter or digit",
            name.chars().take(64).collect::<String>()
        ),
    )
}

/// One provider, written at `at` (its auth at `auth_at`), judged: kind and model, host, key,
/// paths, port, then where it leads (endpoints through the rule of every backend, or an
/// external host on the egress allowlist). `prefix` goes before the messages of the latter,
/// which name a host rather than a field.
fn admit_provider(
    at: &str,
    auth_at: &str,
    prefix: &str,
    b: &ProviderIn<'_>,
    policy: &Policy<'_>,
) -> Result<AiTarget, Rejection> {
    let provider = provider(at, b.kind)?;
    let host = host(at, b.host, &provider)?;
    let auth = auth(auth_at, b.auth)?;
    for (what, p) in [("path", b.path), ("pathPrefix", b.path_prefix)] {
        if let Some(p) = p {
            check_path(p).map_err(|e| Rejection {
                reason: e.reason,
                message: format!("{at}.{what}: {}", e.message),
            })?;
        }
    }
    let port = u16::try_from(b.port).map_err(|_| Rejection {
        reason: "UnsupportedValue",
        message: format!("{at}.port {} is not 1-65535", b.port),
    })?;
    let prefixed = |e: Rejection| Rejection {
        reason: e.reason,
        message: format!("{prefix}{}", e.message),
    };
    let (port, upstream) = if b.endpoints.is_empty() {
        let port = if port == 0 {
            DEFAULT_EXTERNAL_PORT
        } else {
            port
        };
        external(&host, port, policy).map_err(prefixed)?;
        (port, AiUpstream::External)
    } else {
        if port == 0 {
            return reject(
                "UnsupportedValue",
                format!(
                    "{at}.port is not set for host {host}, a Service of the cluster; set it to the Service's port"
                ),
            );
        }
        let endpoints = endpoints(b.host, b.endpoints, policy).map_err(prefixed)?;
        (port, AiUpstream::Cluster(endpoints))
    };
    Ok(AiTarget {
        provider,
        host,
        port,
        path: b.path.clone(),
        path_prefix: b.path_prefix.clone(),
        upstream,
        auth,
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

fn provider(
    at: &str,
    kind: Option<(&'static str, &Option<String>)>,
) -> Result<AiProvider, Rejection> {
    let Some((kind, model)) = kind else {
        return reject(
            "UnsupportedValue",
            format!(
                "{at} names no provider fleetgate serves; set exactly one of: openai, anthropic, gemini"
            ),
        );
    };
    if kind == "a2a" {
        return Ok(AiProvider::A2a);
    }
    let model = match model.as_deref() {
        None | Some("") => None,
        Some(m) if m.len() <= MAX_MODEL_LEN && m.bytes().all(|c| (0x21..0x7f).contains(&c)) => {
            Some(m.to_string())
        }
        Some(m) => {
            return reject(
                "UnsupportedValue",
                format!(
                    "{at}.{kind}.model {:?} must be at most {MAX_MODEL_LEN} visible ASCII characters without spaces",
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

/// The host, lower-cased: a DNS name (one label is a Service name of the backend's namespace;
/// one trailing dot, the fully qualified form, is dropped) or an IP literal; empty: the
/// provider's default host.
fn host(at: &str, written: &str, provider: &AiProvider) -> Result<String, Rejection> {
    if written.is_empty() && *provider == AiProvider::A2a {
        return reject(
            "UnsupportedValue",
            format!("{at}.host is empty; set the agent's host (a Service name or a DNS name)"),
        );
    }
    if written.is_empty() {
        return Ok(provider.default_host().to_string());
    }
    host_name(at, written)
}

/// A host as written at `at`, lower-cased: a DNS name or an IP literal (one trailing dot
/// dropped).
pub(crate) fn host_name(at: &str, written: &str) -> Result<String, Rejection> {
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
            "{at}.host {:?} is neither a DNS name nor an IP address",
            written.chars().take(253).collect::<String>()
        ),
    )
}

/// `policies.auth`, written at `at`. A refusal says what is wrong with the key, never what it is.
fn auth(at: &str, a: Option<&pb::AiAuth>) -> Result<AiAuth, Rejection> {
    let Some(a) = a else {
        return Ok(AiAuth::None);
    };
    match (a.key.is_empty(), a.passthrough) {
        (true, false) => Ok(AiAuth::None),
        (true, true) => Ok(AiAuth::Passthrough),
        (false, true) => reject(
            "UnsupportedValue",
            format!("{at} sets both a key and passthrough; use one of them"),
        ),
        (false, false) => {
            if a.key.len() > MAX_KEY_LEN {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "{at}: the key is {} bytes, at most {MAX_KEY_LEN} are allowed (the key is not shown)",
                        a.key.len()
                    ),
                );
            }
            if !a.key.bytes().all(|c| (0x20..0x7f).contains(&c)) {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "{at}: the key holds a control or non-ASCII character (a newline at the end of the Secret's value?); store the key alone (the key is not shown)"
                    ),
                );
            }
            Ok(AiAuth::Key(ProviderKey(a.key.clone())))
        }
    }
}

/// The ready endpoints of a cluster-local host, through the rule of every backend.
pub(crate) fn endpoints(
    host: &str,
    endpoints: &[pb::Endpoint],
    policy: &Policy<'_>,
) -> Result<Vec<std::net::SocketAddr>, Rejection> {
    let limit = policy.limits.max_endpoints_per_backend;
    if endpoints.len() > limit {
        return reject(
            "UnsupportedValue",
            format!(
                "host {}: {} endpoints, the limit is {limit}",
                host.chars().take(253).collect::<String>(),
                endpoints.len()
            ),
        );
    }
    let mut out = Vec::new();
    for e in endpoints.iter().filter(|e| e.ready) {
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
pub(crate) fn external(host: &str, port: u16, policy: &Policy<'_>) -> Result<(), Rejection> {
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
