//! Resolve an AgentgatewayBackend's references: `spec.ai.provider.host` -> the tenant's Service
//! endpoints when it is a cluster-local name, and `spec.policies.auth` -> the provider key (inline,
//! or from a Secret of the backend's own namespace) or passthrough. The results are the agent's
//! own types; `translate::ai_backend` turns them into the wire's `AiBackend`.
//!
//! Host forms: `<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc` and a bare `<svc>` (in the
//! backend's namespace) are the tenant's Services, resolved exactly like a backendRef
//! ([`super::service_endpoints`]: node addresses x nodePort, or pod addresses from
//! EndpointSlices). No ReferenceGrant is asked for a Service in another namespace: a DNS name
//! reaches it from any pod of the cluster, and the hub admits the endpoints against the
//! cluster's own networks. Any other host (a provider's hostname, an IP address) is external:
//! no endpoints, and the hub admits it only when the tenant's egress allowlist names it.
//!
//! Where it sits: inside step 2 (resolve), called by `translate::ai_backend` on the snapshot.
//! Pure.

use super::{Index, Problem, Reason, service_endpoints};
use crate::config::{EXPOSE_LABEL, SecretAccess};
use crate::crd::agentgateway::Auth;

/// The Secret key read when `secretRef.key` is unset, as agentgateway does.
pub const DEFAULT_SECRET_KEY: &str = "Authorization";

/// The resolved `spec.policies.auth`.
#[derive(Clone, PartialEq, Eq)]
pub enum AiAuth {
    /// The provider key (inline or from the Secret). Never in `Debug` output.
    Key(String),
    /// The client's own Authorization goes to the provider.
    Passthrough,
}

impl std::fmt::Debug for AiAuth {
    /// Redacts the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(_) => f.write_str("Key(<redacted>)"),
            Self::Passthrough => f.write_str("Passthrough"),
        }
    }
}

/// The (namespace, Service name) a provider host names, when it is cluster-local; `None` for
/// an external host. Case-insensitive, one trailing dot allowed.
pub fn service_of_host(host: &str, backend_ns: &str) -> Option<(String, String)> {
    let host = host.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let labels: Vec<&str> = host.split('.').collect();
    let (ns, svc) = match labels.as_slice() {
        [svc] => (backend_ns, *svc),
        [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (*ns, *svc),
        _ => return None,
    };
    (is_dns_label(svc) && is_dns_label(ns)).then(|| (ns.to_string(), svc.to_string()))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The endpoints of a provider `host`:`port` of a backend in `backend_ns`, written at `at`
/// (`spec.ai.provider` or `spec.ai.groups[g].providers[i]`): `Ok(None)` for an external host,
/// `Ok(Some(endpoints))` for a cluster-local one, or why a cluster-local one has none
/// (BackendNotFound naming the field, the Service and port; UnsupportedProtocol for a UDP port).
pub fn resolve_host(
    at: &str,
    backend_ns: &str,
    host: &str,
    port: u32,
    index: &Index<'_>,
) -> Result<Option<Vec<super::Endpoint>>, Problem> {
    let Some((ns, svc)) = service_of_host(host, backend_ns) else {
        return Ok(None);
    };
    if port == 0 {
        return Err(Problem {
            reason: Reason::BackendNotFound,
            message: format!(
                "{at}.host {host} is Service {ns}/{svc} of this cluster; set {at}.port to the Service port"
            ),
        });
    }
    match service_endpoints(&ns, &svc, port, "TCP", "AgentgatewayBackend", index) {
        Ok(found) => Ok(Some(found.endpoints)),
        Err((_, p)) => Err(Problem {
            reason: p.reason,
            message: format!("{at}.host {host}: {}", p.message),
        }),
    }
}

/// The `policies.auth` at `at` (`spec.policies.auth`, or a provider's own
/// `spec.ai.groups[g].providers[i].policies.auth`) of a backend in `backend_ns`: `Ok(None)`
/// without auth, the key or passthrough, or the problem that explains why the key cannot be had.
///
/// A Secret or a key in it that is missing gets reason BackendNotFound: the Gateway API has no
/// reason for a missing credential, and of the `ResolvedRefs` reasons it is the one that says
/// "what you named does not exist", which is the case (RefNotPermitted would send the tenant
/// looking for a ReferenceGrant, InvalidKind would say the kind is wrong). Kinds of auth
/// fleetgate does not implement get UnsupportedValue.
pub fn resolve_auth(
    at: &str,
    backend_ns: &str,
    auth: Option<&Auth>,
    index: &Index<'_>,
) -> Result<Option<AiAuth>, Problem> {
    let Some(auth) = auth else { return Ok(None) };
    let unsupported = |message: String| Problem {
        reason: Reason::UnsupportedValue,
        message,
    };
    if let Some(field) = auth.other.keys().next() {
        return Err(unsupported(format!(
            "{at}.{field} is not supported yet; fleetgate supports policies.auth.key, policies.auth.secretRef and policies.auth.passthrough"
        )));
    }
    let set = [
        auth.key.is_some(),
        auth.secret_ref.is_some(),
        auth.passthrough.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(unsupported(format!(
            "{at} sets more than one of key, secretRef and passthrough; keep one"
        )));
    }
    if auth.passthrough.is_some() {
        return Ok(Some(AiAuth::Passthrough));
    }
    if let Some(key) = &auth.key {
        let key = key.trim();
        if key.is_empty() {
            return Err(unsupported(format!(
                "{at}.key is empty; set the provider key or remove policies.auth"
            )));
        }
        return Ok(Some(AiAuth::Key(key.to_string())));
    }
    let Some(r) = &auth.secret_ref else {
        return Ok(None);
    };
    let group = r.group.as_deref().unwrap_or("");
    let kind = r
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(unsupported(format!(
            "{at}.secretRef names a {kind} of group {group}; fleetgate reads provider keys from core Secrets only (leave group and kind unset)"
        )));
    }
    let name = r.name.as_str();
    let not_found = |message: String| Problem {
        reason: Reason::BackendNotFound,
        message,
    };
    let Some(secret) = index.ai_secrets.get(&(backend_ns, name)) else {
        return Err(not_found(unreadable_key_secret(
            at,
            index.secret_access,
            backend_ns,
            name,
        )));
    };
    let key_name = r.key.as_deref().unwrap_or(DEFAULT_SECRET_KEY);
    let Some(value) = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key_name))
        .map(|v| v.0.as_slice())
    else {
        return Err(not_found(format!(
            "Secret {backend_ns}/{name} has no key {key_name}; add the provider key under {key_name}{}",
            if r.key.is_none() {
                format!(" or name the key holding it in {at}.secretRef.key")
            } else {
                String::new()
            }
        )));
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return Err(not_found(format!(
            "key {key_name} of Secret {backend_ns}/{name} is not UTF-8 text; store the provider key as text"
        )));
    };
    let value = secret_value(value, r.key.is_none());
    if value.is_empty() {
        return Err(not_found(format!(
            "key {key_name} of Secret {backend_ns}/{name} is empty; store the provider key there"
        )));
    }
    Ok(Some(AiAuth::Key(value)))
}

/// A key as read from a Secret, as agentgateway reads it: surrounding whitespace trimmed and,
/// from the default `Authorization` key only, a leading `Bearer ` stripped (the gateway adds
/// the provider's own scheme).
/// (A value that is only `Bearer` is empty.)
pub fn secret_value(raw: &str, default_key: bool) -> String {
    let v = raw.trim();
    let bearer = v
        .strip_prefix("Bearer")
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
    match bearer {
        Some(rest) if default_key => rest.trim().to_string(),
        _ => v.to_string(),
    }
}

/// Why the agent has no Secret `namespace/name` for the `secretRef` of the `policies.auth` at
/// `at`, and what to change, for the `--secrets` mode it runs with.
pub fn unreadable_key_secret(
    at: &str,
    access: &SecretAccess,
    namespace: &str,
    name: &str,
) -> String {
    unreadable_secret(&format!("{at}.secretRef"), access, namespace, name)
}

/// Why the agent has no Secret `namespace/name` that the field `field` names, and what to
/// change, for the `--secrets` mode it runs with.
pub fn unreadable_secret(
    field: &str,
    access: &SecretAccess,
    namespace: &str,
    name: &str,
) -> String {
    let what = format!("{field} names Secret {namespace}/{name}");
    match access {
        SecretAccess::Cluster => format!("{what}, which does not exist; create it"),
        SecretAccess::Label => format!(
            "{what}, which does not exist or lacks the label {EXPOSE_LABEL}=true: the agent runs with --secrets label and reads only Secrets carrying it; add it with `kubectl label secret -n {namespace} {name} {EXPOSE_LABEL}=true`"
        ),
        SecretAccess::Namespaces(names) if !names.iter().any(|n| n == namespace) => format!(
            "{what}, in namespace {namespace}, where the agent may not read Secrets (it runs with --secrets {access}): add {namespace} to --secrets and grant the agent the Role of deploy/agent-rbac.yaml in {namespace}"
        ),
        SecretAccess::Namespaces(_) => format!("{what}, which does not exist; create it"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::config::EndpointMode;
    use crate::crd::agentgateway::SecretRef;
    use crate::resolve::Endpoint;
    use crate::state::ClusterState;
    use crate::test_support::{endpoint_slice, meta, node, service};

    #[test]
    fn host_forms_table() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "llama-cpp.llm.svc.cluster.local",
                Some(("llm", "llama-cpp")),
            ),
            (
                "llama-cpp.llm.svc.cluster.local.",
                Some(("llm", "llama-cpp")),
            ),
            (
                "Llama-CPP.LLM.svc.Cluster.Local",
                Some(("llm", "llama-cpp")),
            ),
            ("llama-cpp.llm.svc", Some(("llm", "llama-cpp"))),
            ("llama-cpp", Some(("ai", "llama-cpp"))),
            // A bare name is never an outside host: `localhost` is a Service name here.
            ("localhost", Some(("ai", "localhost"))),
            ("api.openai.com", None),
            ("llama-cpp.llm", None),
            ("llama-cpp.llm.svc.cluster.example", None),
            ("10.0.0.7", None),
            ("127.0.0.1", None),
            ("bad_name.llm.svc", None),
            ("", None),
        ];
        for (host, want) in cases {
            let want = want.map(|(n, s)| (n.to_string(), s.to_string()));
            assert_eq!(service_of_host(host, "ai"), want, "{host:?}");
        }
    }

    fn state() -> ClusterState {
        let secret = |ns: &str, name: &str, data: &[(&str, &[u8])]| Secret {
            metadata: meta(Some(ns), name),
            type_: Some("Opaque".into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        };
        ClusterState {
            services: vec![
                service(
                    "llm",
                    "llama-cpp",
                    "NodePort",
                    &[(Some("http"), 8080, Some(30880), IntOrString::Int(8080))],
                ),
                service(
                    "ai",
                    "local",
                    "ClusterIP",
                    &[(None, 9000, None, IntOrString::Int(9000))],
                ),
            ],
            endpoint_slices: vec![endpoint_slice(
                "llm",
                "llama-cpp-1",
                "llama-cpp",
                &[(Some("http"), 8080)],
                &[("10.1.0.20", None)],
            )],
            nodes: vec![node("n1", Some("127.0.1.1"), None)],
            ai_secrets: vec![
                secret(
                    "ai",
                    "bearer",
                    &[("Authorization", b"Bearer sk-from-secret\n")],
                ),
                secret("ai", "plain", &[("Authorization", b"sk-plain")]),
                secret("ai", "named", &[("token", b" Bearer sk-named ")]),
                secret("ai", "empty", &[("Authorization", b"Bearer ")]),
                secret("ai", "binary", &[("Authorization", &[0xff, 0xfe])]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn resolve_host_table() {
        let st = state();
        let ep = |a: &str, p: u32| Endpoint {
            address: a.into(),
            port: p,
            ready: true,
        };
        type Case<'a> = (
            &'a str,
            EndpointMode,
            &'a str,
            u32,
            Result<Option<Vec<Endpoint>>, (&'a str, &'a str)>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "FQDN of a NodePort Service, node mode",
                EndpointMode::Node,
                "llama-cpp.llm.svc.cluster.local",
                8080,
                Ok(Some(vec![ep("127.0.1.1", 30880)])),
            ),
            (
                "short form, pod mode: EndpointSlice addresses",
                EndpointMode::Pod,
                "llama-cpp.llm.svc",
                8080,
                Ok(Some(vec![ep("10.1.0.20", 8080)])),
            ),
            (
                "external host: no endpoints, the hub decides",
                EndpointMode::Node,
                "api.openai.com",
                443,
                Ok(None),
            ),
            (
                "missing Service",
                EndpointMode::Node,
                "nope.llm.svc.cluster.local",
                8080,
                Err((
                    "BackendNotFound",
                    "spec.ai.provider.host nope.llm.svc.cluster.local: Service llm/nope not found",
                )),
            ),
            (
                "missing port",
                EndpointMode::Node,
                "llama-cpp.llm.svc",
                9999,
                Err(("BackendNotFound", "Service llm/llama-cpp has no port 9999")),
            ),
            (
                "no port given",
                EndpointMode::Node,
                "llama-cpp.llm.svc",
                0,
                Err(("BackendNotFound", "set spec.ai.provider.port")),
            ),
            (
                "bare name in the backend's namespace, ClusterIP in node mode",
                EndpointMode::Node,
                "local",
                9000,
                Err((
                    "BackendNotFound",
                    "Service ai/local port 9000 has no nodePort",
                )),
            ),
        ];
        for (name, mode, host, port, want) in cases {
            let index = Index::new(&st, mode);
            let got = resolve_host("spec.ai.provider", "ai", host, port, &index);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
                (Err(p), Err((reason, msg))) => {
                    assert_eq!(p.reason.as_str(), reason, "{name}");
                    assert!(p.message.contains(msg), "{name}: {}", p.message);
                }
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    fn sref(name: &str, key: Option<&str>) -> Auth {
        Auth {
            secret_ref: Some(SecretRef {
                name: name.into(),
                key: key.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resolve_auth_table() {
        let st = state();
        let index = Index::new(&st, EndpointMode::Node);
        let key = |k: &str| Ok(Some(AiAuth::Key(k.to_string())));
        let inline = Auth {
            key: Some(" sk-inline ".into()),
            ..Default::default()
        };
        let passthrough = Auth {
            passthrough: Some(serde_json::json!({})),
            ..Default::default()
        };
        let two = Auth {
            key: Some("k".into()),
            passthrough: Some(serde_json::json!({})),
            ..Default::default()
        };
        let mut aws = Auth::default();
        aws.other.insert("aws".into(), serde_json::json!({}));
        let mut vault = sref("v", None);
        if let Some(r) = vault.secret_ref.as_mut() {
            r.group = Some("example.com".into());
            r.kind = Some("Vault".into());
        }
        type Case<'a> = (
            &'a str,
            Option<Auth>,
            Result<Option<AiAuth>, (&'a str, &'a str)>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("no auth", None, Ok(None)),
            ("inline key, trimmed", Some(inline), key("sk-inline")),
            (
                "passthrough",
                Some(passthrough),
                Ok(Some(AiAuth::Passthrough)),
            ),
            (
                "default key Authorization, Bearer stripped",
                Some(sref("bearer", None)),
                key("sk-from-secret"),
            ),
            (
                "default key without Bearer",
                Some(sref("plain", None)),
                key("sk-plain"),
            ),
            (
                "a named key is taken as written (trimmed), Bearer kept",
                Some(sref("named", Some("token"))),
                key("Bearer sk-named"),
            ),
            (
                "missing Secret",
                Some(sref("gone", None)),
                Err((
                    "BackendNotFound",
                    "names Secret ai/gone, which does not exist",
                )),
            ),
            (
                "missing default key",
                Some(sref("named", None)),
                Err((
                    "BackendNotFound",
                    "Secret ai/named has no key Authorization; add the provider key under Authorization or name the key",
                )),
            ),
            (
                "missing named key",
                Some(sref("plain", Some("apiKey"))),
                Err(("BackendNotFound", "Secret ai/plain has no key apiKey")),
            ),
            (
                "only a Bearer prefix",
                Some(sref("empty", None)),
                Err((
                    "BackendNotFound",
                    "key Authorization of Secret ai/empty is empty",
                )),
            ),
            (
                "not text",
                Some(sref("binary", None)),
                Err(("BackendNotFound", "is not UTF-8 text")),
            ),
            (
                "another kind of credential",
                Some(vault),
                Err(("UnsupportedValue", "core Secrets only")),
            ),
            (
                "an auth kind fleetgate does not implement",
                Some(aws),
                Err((
                    "UnsupportedValue",
                    "spec.policies.auth.aws is not supported yet",
                )),
            ),
            (
                "two kinds at once",
                Some(two),
                Err(("UnsupportedValue", "more than one")),
            ),
        ];
        for (name, auth, want) in cases {
            let got = resolve_auth("spec.policies.auth", "ai", auth.as_ref(), &index);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
                (Err(p), Err((reason, msg))) => {
                    assert_eq!(p.reason.as_str(), reason, "{name}");
                    assert!(p.message.contains(msg), "{name}: {}", p.message);
                    assert!(!p.message.contains("sk-"), "{name}: a key in {}", p.message);
                }
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn a_secret_the_agent_may_not_read_says_what_to_change() {
        let st = ClusterState {
            secret_access: SecretAccess::Namespaces(vec!["default".into()]),
            ..Default::default()
        };
        let index = Index::new(&st, EndpointMode::Node);
        let p = resolve_auth(
            "spec.policies.auth",
            "ai",
            Some(&sref("llm-secret", None)),
            &index,
        )
        .unwrap_err();
        assert_eq!(p.reason, Reason::BackendNotFound);
        assert!(
            p.message.contains("--secrets namespaces=default")
                && p.message.contains("add ai to --secrets"),
            "{}",
            p.message
        );
        let label = unreadable_key_secret("spec.policies.auth", &SecretAccess::Label, "ai", "k");
        assert!(label.contains("kubectl label secret -n ai k fleetgate.dev/expose=true"));
    }

    #[test]
    fn secret_values_table() {
        for (raw, default_key, want) in [
            ("Bearer sk-1", true, "sk-1"),
            ("  Bearer   sk-1 \n", true, "sk-1"),
            ("Bearer\tsk-1", true, "sk-1"),
            ("Bearer", true, ""),
            ("Bearer ", true, ""),
            ("BearerToken", true, "BearerToken"),
            ("sk-1", true, "sk-1"),
            ("Bearer sk-1", false, "Bearer sk-1"),
            (" sk-1 ", false, "sk-1"),
        ] {
            assert_eq!(
                secret_value(raw, default_key),
                want,
                "{raw:?} {default_key}"
            );
        }
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let auth = AiAuth::Key("sk-very-secret".into());
        assert_eq!(format!("{auth:?}"), "Key(<redacted>)");
    }
}
