//! Translate (pure): agentgateway's AgentgatewayBackend -> a `KIND_AI_BACKEND` object.
//!
//! Every AgentgatewayBackend of the cluster is sent, so that the hub can give each one status
//! and resolve HTTPRoute backendRefs to it. `spec.ai.provider.openai` becomes an OpenAI-compatible
//! provider with the host resolved ([`crate::resolve::ai`]) and the key read; what fleetgate does
//! not support yet (other provider kinds, `ai.groups`, `mcp`, `a2a`, `static`, other policies,
//! any field it does not know) is not dropped silently: the backend is sent with a problem
//! (UnsupportedValue) naming the field, which the hub reports on the backend's status, and no
//! traffic goes to it. A problem never carries the key.

use fleetgate_proto::spoke::v1::{self as pb, Kind, Object, ai_backend, object};

use super::{object_header, wire_endpoint, wire_problem};
use crate::crd::AgentgatewayBackend;
use crate::crd::agentgateway::{Other, Provider};
use crate::resolve::ai::{AiAuth, resolve_auth, resolve_host};
use crate::resolve::{Index, Problem, Reason};

/// The backend kinds of agentgateway's spec besides `ai`, in the CRD's order.
const OTHER_BACKEND_KINDS: [&str; 5] = ["static", "dynamicForwardProxy", "mcp", "aws", "a2a"];

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

fn unsupported(message: String) -> Problem {
    Problem {
        reason: Reason::UnsupportedValue,
        message,
    }
}

/// The first field of `other` (fields fleetgate does not read), as `<at>.<field>`.
fn first_unknown(at: &str, other: &Other) -> Option<String> {
    other.keys().next().map(|k| format!("{at}.{k}"))
}

fn ai_backend(ns: &str, b: &AgentgatewayBackend, index: &Index<'_>) -> pb::AiBackend {
    let provider = b.spec.ai.as_ref().and_then(|ai| ai.provider.as_ref());
    let mut out = pb::AiBackend {
        host: provider.and_then(|p| p.host.clone()).unwrap_or_default(),
        port: provider
            .and_then(|p| p.port)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        path: provider.and_then(|p| p.path.clone()),
        path_prefix: provider.and_then(|p| p.path_prefix.clone()),
        ..Default::default()
    };
    if let Some(openai) = provider.and_then(|p| p.openai.as_ref()) {
        out.provider = Some(ai_backend::Provider::Openai(pb::OpenAiProvider {
            model: openai.model.clone(),
        }));
    } else if let Some(anthropic) = provider.and_then(|p| p.anthropic.as_ref()) {
        out.provider = Some(ai_backend::Provider::Anthropic(pb::AnthropicProvider {
            model: anthropic.model.clone(),
        }));
    } else if let Some(gemini) = provider.and_then(|p| p.gemini.as_ref()) {
        out.provider = Some(ai_backend::Provider::Gemini(pb::GeminiProvider {
            model: gemini.model.clone(),
        }));
    }
    match resolve(ns, b, provider, index) {
        Ok((endpoints, auth)) => {
            out.endpoints = endpoints.into_iter().map(wire_endpoint).collect();
            out.auth = auth.map(|a| match a {
                AiAuth::Key(key) => pb::AiAuth {
                    key,
                    passthrough: false,
                },
                AiAuth::Passthrough => pb::AiAuth {
                    key: String::new(),
                    passthrough: true,
                },
            });
        }
        Err(p) => out.problem = Some(wire_problem(p)),
    }
    out
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
    if let Some(kind) = OTHER_BACKEND_KINDS
        .iter()
        .find(|k| spec.other.contains_key(**k))
    {
        return Err(unsupported(format!(
            "spec.{kind} is not supported yet; fleetgate's agent gateway serves LLM backends (spec.ai.provider) for now"
        )));
    }
    if let Some(field) = first_unknown("spec", &spec.other) {
        return Err(unsupported(format!(
            "{field} is not supported; remove it (fleetgate reads spec.ai and spec.policies.auth)"
        )));
    }
    let Some(ai) = &spec.ai else {
        return Err(unsupported(
            "spec sets no backend kind; set spec.ai.provider (the only kind fleetgate supports yet)"
                .into(),
        ));
    };
    if ai.other.contains_key("groups") {
        return Err(unsupported(
            "spec.ai.groups is not supported yet; name one provider in spec.ai.provider".into(),
        ));
    }
    if let Some(field) = first_unknown("spec.ai", &ai.other) {
        return Err(unsupported(format!("{field} is not supported; remove it")));
    }
    let Some(provider) = provider else {
        return Err(unsupported(
            "spec.ai sets no provider; set spec.ai.provider.openai (with host and port for an OpenAI-compatible server)".into(),
        ));
    };
    if let Some(kind) = provider.other.keys().next() {
        return Err(unsupported(format!(
            "spec.ai.provider.{kind} is not supported yet; fleetgate serves OpenAI-compatible providers (spec.ai.provider.openai, e.g. with host and port of a llama.cpp, vLLM or Ollama server) Anthropic (spec.ai.provider.anthropic) and Gemini (spec.ai.provider.gemini) for now"
        )));
    }
    let (kind, chosen) = match (&provider.openai, &provider.anthropic, &provider.gemini) {
        (Some(o), None, None) => ("openai", o),
        (None, Some(a), None) => ("anthropic", a),
        (None, None, Some(g)) => ("gemini", g),
        (None, None, None) => {
            return Err(unsupported(
                "spec.ai.provider names no provider kind; set spec.ai.provider.openai, .anthropic or .gemini".into(),
            ));
        }
        _ => {
            return Err(unsupported(
                "spec.ai.provider names two provider kinds; keep exactly one of openai, anthropic and gemini".into(),
            ));
        }
    };
    if let Some(field) = first_unknown(&format!("spec.ai.provider.{kind}"), &chosen.other) {
        return Err(unsupported(format!(
            "{field} is not supported yet; remove it"
        )));
    }
    if provider.path.is_some() && provider.path_prefix.is_some() {
        return Err(unsupported(
            "spec.ai.provider sets both path and pathPrefix; keep one".into(),
        ));
    }
    if let Some(policies) = &spec.policies
        && let Some(field) = first_unknown("spec.policies", &policies.other)
    {
        return Err(unsupported(format!(
            "{field} is not supported yet; fleetgate honours spec.policies.auth only, remove the others"
        )));
    }
    let port = provider
        .port
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0);
    let endpoints = match provider.host.as_deref() {
        Some(host) => resolve_host(ns, host, port, index)?.unwrap_or_default(),
        None => Vec::new(),
    };
    let auth = resolve_auth(
        ns,
        spec.policies.as_ref().and_then(|p| p.auth.as_ref()),
        index,
    )?;
    Ok((endpoints, auth))
}

#[cfg(test)]
mod tests;
