//! Translate (pure): agentgateway's AgentgatewayBackend -> a `KIND_AI_BACKEND` object.
//!
//! Every AgentgatewayBackend of the cluster is sent, so that the hub can give each one status
//! and resolve HTTPRoute backendRefs to it. `spec.ai.provider` (`openai`, `anthropic`, `gemini`)
//! becomes one provider with the host resolved ([`crate::resolve::ai`]) and the key read;
//! `spec.ai.groups` (priority failover) becomes `AiBackend.groups`, each provider resolved the
//! same way with its own `policies.auth` or else the backend's (agentgateway merges them so).
//! A provider of a group whose Service or Secret is missing carries its own problem and the
//! others still serve. `spec.mcp` is translated by [`super::mcp_backend`]. What fleetgate does
//! not support yet (other provider kinds, `a2a`,
//! `static`, other policies, any field it does not know) is not dropped silently: the backend
//! is sent with a problem (UnsupportedValue) naming the field, which the hub reports on the
//! backend's status, and no traffic goes to it. A problem never carries the key.
//! `spec.policies.ai.modelAliases` (exact names) travels as `AiBackend.model_aliases`, for
//! every provider of the backend; the other fields of `policies.ai`, wildcard aliases and a
//! group provider's own `policies.ai` are reported the same way.
//! `spec.a2a{host, port}` (an A2A agent) becomes an `AiBackend` whose provider is `a2a`, its
//! host resolved and its `policies.auth` read exactly like a provider's ([`a2a_backend`]).

use fleetgate_proto::spoke::v1::{self as pb, Kind, Object, ai_backend, ai_group_provider, object};

use super::{object_header, wire_endpoint, wire_problem};
use crate::crd::AgentgatewayBackend;
use crate::crd::agentgateway::{
    A2aSpec, AgentgatewayBackendSpec, NamedProvider, Other, Policies, PriorityGroup, Provider,
};
use crate::resolve::ai::{AiAuth, resolve_auth, resolve_host};
use crate::resolve::{Index, Problem, Reason};

/// The backend kinds of agentgateway's spec besides `ai`, `mcp` ([`super::mcp_backend`]) and
/// `a2a`, in the CRD's order.
const OTHER_BACKEND_KINDS: [&str; 3] = ["static", "dynamicForwardProxy", "aws"];

/// Every AgentgatewayBackend of the snapshot, sorted by namespace/name.
pub fn ai_backend_objects(backends: &[AgentgatewayBackend], index: &Index<'_>) -> Vec<Object> {
    let mut out: Vec<Object> = backends
        .iter()
        .filter_map(|b| ai_backend_object(b, index))
        .collect();
    out.sort_by_key(|o| o.r#ref.as_ref().map(key));
    out
}

fn key(r: &pb::ObjectRef) -> (String, String) {
    (r.namespace.clone(), r.name.clone())
}

/// One AgentgatewayBackend (`None` without namespace or name).
pub fn ai_backend_object(b: &AgentgatewayBackend, index: &Index<'_>) -> Option<Object> {
    let mut o = object_header(Kind::AiBackend, &b.metadata)?;
    let ns = b.metadata.namespace.as_deref()?;
    o.spec = Some(object::Spec::AiBackend(ai_backend(ns, b, index)));
    Some(o)
}

pub(super) fn unsupported(message: String) -> Problem {
    Problem {
        reason: Reason::UnsupportedValue,
        message,
    }
}

/// The first field of `other` (fields fleetgate does not read), as `<at>.<field>`.
pub(super) fn first_unknown(at: &str, other: &Other) -> Option<String> {
    other.keys().next().map(|k| format!("{at}.{k}"))
}

/// The most priority groups in `spec.ai.groups`, and the most providers in one group
/// (agentgateway's limits).
pub const MAX_GROUPS: usize = 8;
/// The most providers in one group of `spec.ai.groups`.
pub const MAX_GROUP_PROVIDERS: usize = 16;

fn ai_backend(ns: &str, b: &AgentgatewayBackend, index: &Index<'_>) -> pb::AiBackend {
    if let Some(mcp) = b.spec.other.get("mcp") {
        let accept = b
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::mcp_backend::ACCEPT_ANNOTATION))
            .map(String::as_str);
        return super::mcp_backend::mcp_backend(ns, &b.spec, mcp, accept, index);
    }
    if let Some(a2a) = &b.spec.a2a {
        return a2a_backend(ns, b, a2a, index);
    }
    let ai = b.spec.ai.as_ref();
    if let Some(groups) = ai.and_then(|ai| ai.groups.as_ref())
        && ai.is_some_and(|ai| ai.provider.is_none())
    {
        return match check_spec(&b.spec).and_then(|()| check_groups(groups)) {
            Ok(()) => pb::AiBackend {
                groups: groups
                    .iter()
                    .enumerate()
                    .map(|(g, group)| pb::AiProviderGroup {
                        providers: group
                            .providers
                            .iter()
                            .enumerate()
                            .map(|(i, p)| group_provider(ns, b, g, i, p, index))
                            .collect(),
                    })
                    .collect(),
                model_aliases: model_aliases(&b.spec),
                ..Default::default()
            },
            Err(p) => pb::AiBackend {
                problem: Some(wire_problem(p)),
                ..Default::default()
            },
        };
    }
    let provider = ai.and_then(|ai| ai.provider.as_ref());
    let mut out = pb::AiBackend {
        host: provider.and_then(|p| p.host.clone()).unwrap_or_default(),
        port: port_of(provider),
        path: provider.and_then(|p| p.path.clone()),
        path_prefix: provider.and_then(|p| p.path_prefix.clone()),
        provider: provider.and_then(wire_provider),
        ..Default::default()
    };
    match resolve(ns, b, provider, index) {
        Ok((endpoints, auth)) => {
            out.endpoints = endpoints.into_iter().map(wire_endpoint).collect();
            out.auth = auth.map(wire_auth);
            out.model_aliases = model_aliases(&b.spec);
        }
        Err(p) => out.problem = Some(wire_problem(p)),
    }
    out
}

/// `spec.policies.ai.modelAliases` as written (checked by [`check_spec`]; the hub judges sizes).
fn model_aliases(spec: &AgentgatewayBackendSpec) -> std::collections::HashMap<String, String> {
    spec.policies
        .as_ref()
        .and_then(|p| p.ai.as_ref())
        .and_then(|ai| ai.model_aliases.as_ref())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// What `spec.policies.ai` asks beyond `modelAliases` of exact names (agentgateway's wildcard
/// aliases, prompt guards, defaults, ...): unsupported, named.
fn check_ai_policy(policies: &Policies) -> Result<(), Problem> {
    let Some(ai) = &policies.ai else {
        return Ok(());
    };
    if let Some(field) = first_unknown("spec.policies.ai", &ai.other) {
        return Err(unsupported(format!(
            "{field} is not supported yet; fleetgate honours spec.policies.ai.modelAliases only, remove the others"
        )));
    }
    if let Some(name) = ai
        .model_aliases
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| k.contains('*'))
    {
        return Err(unsupported(format!(
            "spec.policies.ai.modelAliases key {:?} is a wildcard pattern, which fleetgate does not support yet; list each model name exactly",
            name.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

fn port_of(provider: Option<&Provider>) -> u32 {
    provider
        .and_then(|p| p.port)
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0)
}

/// The one provider kind of `p`, on the wire (`None` when it names none of the kinds fleetgate
/// serves; checked by [`check_provider`]).
fn wire_provider(p: &Provider) -> Option<ai_backend::Provider> {
    if let Some(openai) = &p.openai {
        Some(ai_backend::Provider::Openai(pb::OpenAiProvider {
            model: openai.model.clone(),
        }))
    } else if let Some(anthropic) = &p.anthropic {
        Some(ai_backend::Provider::Anthropic(pb::AnthropicProvider {
            model: anthropic.model.clone(),
        }))
    } else {
        p.gemini.as_ref().map(|gemini| {
            ai_backend::Provider::Gemini(pb::GeminiProvider {
                model: gemini.model.clone(),
            })
        })
    }
}

fn wire_auth(a: AiAuth) -> pb::AiAuth {
    match a {
        AiAuth::Key(key) => pb::AiAuth {
            key,
            passthrough: false,
        },
        AiAuth::Passthrough => pb::AiAuth {
            key: String::new(),
            passthrough: true,
        },
    }
}

/// One provider of `spec.ai.groups[g]`, resolved like `spec.ai.provider`: its host's endpoints
/// and its auth (its own `policies.auth`, else the backend's). What the agent cannot resolve
/// for this provider alone (its Service, its Secret) is its own problem: the others still serve.
fn group_provider(
    ns: &str,
    b: &AgentgatewayBackend,
    g: usize,
    i: usize,
    p: &NamedProvider,
    index: &Index<'_>,
) -> pb::AiGroupProvider {
    let at = format!("spec.ai.groups[{g}].providers[{i}]");
    let port = port_of(Some(&p.provider));
    let provider = wire_provider(&p.provider).and_then(|k| match k {
        ai_backend::Provider::Openai(o) => Some(ai_group_provider::Provider::Openai(o)),
        ai_backend::Provider::Anthropic(a) => Some(ai_group_provider::Provider::Anthropic(a)),
        ai_backend::Provider::Gemini(g) => Some(ai_group_provider::Provider::Gemini(g)),
        // Never made from `spec.ai` (only `spec.a2a` is an agent).
        ai_backend::Provider::A2a(_) => None,
    });
    let mut out = pb::AiGroupProvider {
        name: p.name.clone(),
        provider,
        host: p.provider.host.clone().unwrap_or_default(),
        port,
        path: p.provider.path.clone(),
        path_prefix: p.provider.path_prefix.clone(),
        ..Default::default()
    };
    let endpoints = match p.provider.host.as_deref() {
        Some(host) => resolve_host(&at, ns, host, port, index).map(Option::unwrap_or_default),
        None => Ok(Vec::new()),
    };
    let own = p.policies.as_ref().and_then(|x| x.auth.as_ref());
    let auth = match own {
        Some(a) => resolve_auth(&format!("{at}.policies.auth"), ns, Some(a), index),
        None => resolve_auth(
            "spec.policies.auth",
            ns,
            b.spec.policies.as_ref().and_then(|x| x.auth.as_ref()),
            index,
        ),
    };
    match endpoints.and_then(|e| auth.map(|a| (e, a))) {
        Ok((endpoints, auth)) => {
            out.endpoints = endpoints.into_iter().map(wire_endpoint).collect();
            out.auth = auth.map(wire_auth);
        }
        Err(problem) => out.problem = Some(wire_problem(problem)),
    }
    out
}

/// What `spec.ai.groups` asks that fleetgate does not support, or breaks agentgateway's own
/// rules (sizes, names), as the problem of the whole backend: the tenant must change the spec.
fn check_groups(groups: &[PriorityGroup]) -> Result<(), Problem> {
    if groups.is_empty() || groups.len() > MAX_GROUPS {
        return Err(unsupported(format!(
            "spec.ai.groups lists {} groups; list 1 to {MAX_GROUPS}",
            groups.len()
        )));
    }
    for (g, group) in groups.iter().enumerate() {
        let at_g = format!("spec.ai.groups[{g}]");
        if let Some(field) = first_unknown(&at_g, &group.other) {
            return Err(unsupported(format!("{field} is not supported; remove it")));
        }
        if group.providers.is_empty() || group.providers.len() > MAX_GROUP_PROVIDERS {
            return Err(unsupported(format!(
                "{at_g}.providers lists {} providers; list 1 to {MAX_GROUP_PROVIDERS}",
                group.providers.len()
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in group.providers.iter().enumerate() {
            let at = format!("{at_g}.providers[{i}]");
            if !is_section_name(&p.name) {
                return Err(unsupported(format!(
                    "{at}.name {:?} must be 1 to 253 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit",
                    p.name.chars().take(64).collect::<String>()
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(unsupported(format!(
                    "{at}.name {} is used twice in {at_g}; provider names must be unique within a group",
                    p.name
                )));
            }
            check_provider(&at, &p.provider)?;
            if p.policies.as_ref().is_some_and(|x| x.ai.is_some()) {
                return Err(unsupported(format!(
                    "{at}.policies.ai is not supported yet; set spec.policies.ai.modelAliases on the backend, which applies to every provider"
                )));
            }
            if let Some(policies) = &p.policies
                && let Some(field) = first_unknown(&format!("{at}.policies"), &policies.other)
            {
                return Err(unsupported(format!(
                    "{field} is not supported yet; fleetgate honours policies.auth only, remove the others"
                )));
            }
        }
    }
    Ok(())
}

/// A Gateway API SectionName (what agentgateway's `providers[].name` is).
fn is_section_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// What the spec outside `spec.ai.provider` / `spec.ai.groups` asks that fleetgate does not
/// support.
fn check_spec(spec: &AgentgatewayBackendSpec) -> Result<(), Problem> {
    if let Some(kind) = OTHER_BACKEND_KINDS
        .iter()
        .find(|k| spec.other.contains_key(**k))
    {
        return Err(unsupported(format!(
            "spec.{kind} is not supported yet; fleetgate's agent gateway serves LLM backends (spec.ai.provider or spec.ai.groups) for now"
        )));
    }
    if let Some(field) = first_unknown("spec", &spec.other) {
        return Err(unsupported(format!(
            "{field} is not supported; remove it (fleetgate reads spec.ai and spec.policies.auth)"
        )));
    }
    let Some(ai) = &spec.ai else {
        return Err(unsupported(
            "spec sets no backend kind; set spec.ai.provider or spec.ai.groups (the only kinds fleetgate supports yet)"
                .into(),
        ));
    };
    if ai.provider.is_some() && ai.groups.is_some() {
        return Err(unsupported(
            "spec.ai sets both provider and groups; keep exactly one".into(),
        ));
    }
    if let Some(field) = first_unknown("spec.ai", &ai.other) {
        return Err(unsupported(format!("{field} is not supported; remove it")));
    }
    if let Some(policies) = &spec.policies {
        if let Some(field) = first_unknown("spec.policies", &policies.other) {
            return Err(unsupported(format!(
                "{field} is not supported yet; fleetgate honours spec.policies.auth and spec.policies.ai.modelAliases only, remove the others"
            )));
        }
        check_ai_policy(policies)?;
    }
    Ok(())
}

/// `spec.a2a{host, port}`: an A2A agent, sent as an `AiBackend` whose provider is `a2a`. The
/// host is resolved like a provider's (a Service of the cluster -> its endpoints; anything else
/// is external, for the hub's egress allowlist) and `spec.policies.auth` is its credential.
/// `spec.ai` next to it, `policies.ai` (model aliases mean nothing to an agent), other policies
/// and unknown fields are UnsupportedValue naming the field.
fn a2a_backend(
    ns: &str,
    b: &AgentgatewayBackend,
    a2a: &A2aSpec,
    index: &Index<'_>,
) -> pb::AiBackend {
    let port = a2a
        .port
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_default();
    let mut out = pb::AiBackend {
        provider: Some(ai_backend::Provider::A2a(pb::A2aAgent {})),
        host: a2a.host.clone(),
        port,
        ..Default::default()
    };
    let checked = check_a2a(&b.spec, a2a).and_then(|()| {
        let endpoints = resolve_host("spec.a2a", ns, &a2a.host, port, index)?.unwrap_or_default();
        let auth = resolve_auth(
            "spec.policies.auth",
            ns,
            b.spec.policies.as_ref().and_then(|p| p.auth.as_ref()),
            index,
        )?;
        Ok((endpoints, auth))
    });
    match checked {
        Ok((endpoints, auth)) => {
            out.endpoints = endpoints.into_iter().map(wire_endpoint).collect();
            out.auth = auth.map(wire_auth);
        }
        Err(p) => out.problem = Some(wire_problem(p)),
    }
    out
}

/// What an `a2a` backend asks that fleetgate does not support.
fn check_a2a(spec: &AgentgatewayBackendSpec, a2a: &A2aSpec) -> Result<(), Problem> {
    if spec.ai.is_some() {
        return Err(unsupported(
            "spec sets both ai and a2a; keep exactly one backend kind".into(),
        ));
    }
    if let Some(kind) = OTHER_BACKEND_KINDS
        .iter()
        .find(|k| spec.other.contains_key(**k))
    {
        return Err(unsupported(format!(
            "spec sets both a2a and {kind}; keep exactly one backend kind"
        )));
    }
    if let Some(field) = first_unknown("spec", &spec.other) {
        return Err(unsupported(format!(
            "{field} is not supported; remove it (fleetgate reads spec.a2a and spec.policies.auth)"
        )));
    }
    if let Some(field) = first_unknown("spec.a2a", &a2a.other) {
        return Err(unsupported(format!(
            "{field} is not supported; spec.a2a takes host and port"
        )));
    }
    if a2a.host.is_empty() {
        return Err(unsupported(
            "spec.a2a.host is empty; set the agent's host (a Service name or a DNS name)".into(),
        ));
    }
    if !a2a.port.is_some_and(|p| (1..=65535).contains(&p)) {
        return Err(unsupported(
            "spec.a2a.port must be 1 to 65535 (the agent's port)".into(),
        ));
    }
    if let Some(policies) = &spec.policies {
        if policies.ai.is_some() {
            return Err(unsupported(
                "spec.policies.ai applies to LLM backends only; remove it from an a2a backend"
                    .into(),
            ));
        }
        if let Some(field) = first_unknown("spec.policies", &policies.other) {
            return Err(unsupported(format!(
                "{field} is not supported yet; fleetgate honours spec.policies.auth on an a2a backend, remove the others"
            )));
        }
    }
    Ok(())
}

/// What the provider at `at` (`spec.ai.provider` or a provider of a group) asks that fleetgate
/// does not support.
fn check_provider(at: &str, provider: &Provider) -> Result<(), Problem> {
    if let Some(kind) = provider.other.keys().next() {
        return Err(unsupported(format!(
            "{at}.{kind} is not supported yet; fleetgate serves OpenAI-compatible providers ({at}.openai, e.g. with host and port of a llama.cpp, vLLM or Ollama server) Anthropic ({at}.anthropic) and Gemini ({at}.gemini) for now"
        )));
    }
    let (kind, chosen) = match (&provider.openai, &provider.anthropic, &provider.gemini) {
        (Some(o), None, None) => ("openai", o),
        (None, Some(a), None) => ("anthropic", a),
        (None, None, Some(g)) => ("gemini", g),
        (None, None, None) => {
            return Err(unsupported(format!(
                "{at} names no provider kind; set {at}.openai, .anthropic or .gemini"
            )));
        }
        _ => {
            return Err(unsupported(format!(
                "{at} names two provider kinds; keep exactly one of openai, anthropic and gemini"
            )));
        }
    };
    if let Some(field) = first_unknown(&format!("{at}.{kind}"), &chosen.other) {
        return Err(unsupported(format!(
            "{field} is not supported yet; remove it"
        )));
    }
    if provider.path.is_some() && provider.path_prefix.is_some() {
        return Err(unsupported(format!(
            "{at} sets both path and pathPrefix; keep one"
        )));
    }
    Ok(())
}

/// What the spec asks of fleetgate that it does not support, as the problem to report; then
/// the host's endpoints and the auth.
fn resolve(
    ns: &str,
    b: &AgentgatewayBackend,
    provider: Option<&Provider>,
    index: &Index<'_>,
) -> Result<(Vec<crate::resolve::Endpoint>, Option<AiAuth>), Problem> {
    let spec = &b.spec;
    check_spec(spec)?;
    let Some(provider) = provider else {
        return Err(unsupported(
            "spec.ai sets no provider; set spec.ai.provider.openai (with host and port for an OpenAI-compatible server), or spec.ai.groups".into(),
        ));
    };
    check_provider("spec.ai.provider", provider)?;
    let port = port_of(Some(provider));
    let endpoints = match provider.host.as_deref() {
        Some(host) => resolve_host("spec.ai.provider", ns, host, port, index)?.unwrap_or_default(),
        None => Vec::new(),
    };
    let auth = resolve_auth(
        "spec.policies.auth",
        ns,
        spec.policies.as_ref().and_then(|p| p.auth.as_ref()),
        index,
    )?;
    Ok((endpoints, auth))
}

#[cfg(test)]
mod tests;
