//! Resolve a listener's certificateRefs: Secret of type `kubernetes.io/tls` -> the certificate
//! chain and private key the hub needs, or the problem (InvalidCertificateRef, RefNotPermitted)
//! that explains why there is none, including a Secret the agent's `--secrets` mode does not
//! let it read ([`unreadable_secret`]).
//!
//! Where it sits: inside step 2 (resolve), called by `translate` for HTTPS listeners of claimed
//! Gateways only, so the agent never sends a Secret no claimed Gateway names. The agent does not
//! parse the PEM: the hub does, as it trusts nothing the agent sends. Pure.

use gateway_api::gateways::GatewayListenersTlsCertificateRefs;

use super::grant::{self, RefEnd};
use super::{Index, Problem, Reason};
use crate::config::{EXPOSE_LABEL, SecretAccess};
use crate::crd::GATEWAY_GROUP;

/// The Secret type certificateRefs must point at.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// A resolved certificateRef: the Secret's PEM chain and key, or the problem that explains why
/// there are none.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Certificate {
    pub namespace: String,
    pub name: String,
    pub cert_chain_pem: Vec<u8>,
    /// Never logged: `Debug` shows only whether it is set.
    pub private_key_pem: Vec<u8>,
    pub problem: Option<Problem>,
}

impl std::fmt::Debug for Certificate {
    /// Redacts the private key, as the wire type's `Debug` does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .field("private_key_pem", &"<redacted>")
            .field("problem", &self.problem)
            .finish()
    }
}

/// Resolves one certificateRef of a listener of a Gateway or ListenerSet (`owner_kind`) in
/// namespace `gateway_ns`: a Secret in another namespace needs a ReferenceGrant from that kind.
pub fn resolve_certificate(
    owner_kind: &'static str,
    gateway_ns: &str,
    r: &GatewayListenersTlsCertificateRefs,
    index: &Index<'_>,
) -> Certificate {
    let namespace = r
        .namespace
        .clone()
        .unwrap_or_else(|| gateway_ns.to_string());
    let mut out = Certificate {
        namespace: namespace.clone(),
        name: r.name.clone(),
        ..Default::default()
    };
    let invalid = |message: String| {
        Some(Problem {
            reason: Reason::InvalidCertificateRef,
            message,
        })
    };
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        out.problem = invalid(format!(
            "certificateRef {kind} {namespace}/{} is not supported: use a core Secret of type {TLS_SECRET_TYPE}",
            r.name
        ));
        return out;
    }
    let from = RefEnd {
        group: GATEWAY_GROUP,
        kind: owner_kind,
        namespace: gateway_ns,
        name: "",
    };
    let to = RefEnd {
        group: grant::CORE_GROUP,
        kind: "Secret",
        namespace: &namespace,
        name: &r.name,
    };
    if !grant::allowed(index.grants, from, to) {
        out.problem = Some(Problem {
            reason: Reason::RefNotPermitted,
            message: format!(
                "certificateRef to Secret {namespace}/{} crosses from namespace {gateway_ns}, and no ReferenceGrant in namespace {namespace} allows {owner_kind}s from {gateway_ns} to refer to it; add one",
                r.name
            ),
        });
        return out;
    }
    let Some(secret) = index.secrets.get(&(namespace.as_str(), r.name.as_str())) else {
        out.problem = invalid(unreadable_secret(index.secret_access, &namespace, &r.name));
        return out;
    };
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        out.problem = invalid(format!(
            "Secret {namespace}/{} is not of type {TLS_SECRET_TYPE}",
            r.name
        ));
        return out;
    }
    let data = secret.data.as_ref();
    let field = |k: &str| data.and_then(|d| d.get(k)).map(|b| b.0.clone());
    match (field("tls.crt"), field("tls.key")) {
        (Some(crt), Some(key)) if !crt.is_empty() && !key.is_empty() => {
            out.cert_chain_pem = crt;
            out.private_key_pem = key;
        }
        _ => {
            out.problem = invalid(format!(
                "Secret {namespace}/{} lacks tls.crt or tls.key",
                r.name
            ));
        }
    }
    out
}

/// Why the agent has no Secret `namespace/name`, and what to change, for the `--secrets` mode
/// it runs with: in `label` mode it may lack the label, in `namespaces=` mode its namespace may
/// be outside the list (then the agent cannot read it even if it exists).
pub fn unreadable_secret(access: &SecretAccess, namespace: &str, name: &str) -> String {
    match access {
        SecretAccess::Cluster => {
            format!("Secret {namespace}/{name} does not exist or is not of type {TLS_SECRET_TYPE}")
        }
        SecretAccess::Label => format!(
            "Secret {namespace}/{name} does not exist, is not of type {TLS_SECRET_TYPE}, or lacks the label {EXPOSE_LABEL}=true: the agent runs with --secrets label and reads only Secrets carrying it; add it with `kubectl label secret -n {namespace} {name} {EXPOSE_LABEL}=true`"
        ),
        SecretAccess::Namespaces(names) if !names.iter().any(|n| n == namespace) => format!(
            "Secret {namespace}/{name} is in namespace {namespace}, where the agent may not read Secrets (it runs with --secrets {access}): add {namespace} to --secrets and grant the agent the Role of deploy/agent-rbac.yaml in {namespace}, or move the Secret into one of {}",
            names.join(", ")
        ),
        SecretAccess::Namespaces(_) => {
            format!("Secret {namespace}/{name} does not exist or is not of type {TLS_SECRET_TYPE}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gateway_api::referencegrants::{
        ReferenceGrant, ReferenceGrantFrom, ReferenceGrantSpec, ReferenceGrantTo,
    };
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    use super::*;
    use crate::config::EndpointMode;
    use crate::state::ClusterState;
    use crate::test_support::meta;

    fn secret(ns: &str, name: &str, type_: &str, keys: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: meta(Some(ns), name),
            type_: Some(type_.into()),
            data: Some(
                keys.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn cref(ns: Option<&str>, name: &str) -> GatewayListenersTlsCertificateRefs {
        GatewayListenersTlsCertificateRefs {
            group: None,
            kind: None,
            name: name.into(),
            namespace: ns.map(str::to_string),
        }
    }

    #[test]
    fn certificate_ref_table() {
        let state = ClusterState {
            secrets: vec![
                secret(
                    "infra",
                    "web-tls",
                    TLS_SECRET_TYPE,
                    &[("tls.crt", "CRT"), ("tls.key", "KEY")],
                ),
                secret("infra", "half", TLS_SECRET_TYPE, &[("tls.crt", "CRT")]),
                secret(
                    "infra",
                    "opaque",
                    "Opaque",
                    &[("tls.crt", "CRT"), ("tls.key", "KEY")],
                ),
                secret(
                    "certs",
                    "shared",
                    TLS_SECRET_TYPE,
                    &[("tls.crt", "C2"), ("tls.key", "K2")],
                ),
                secret(
                    "certs",
                    "private",
                    TLS_SECRET_TYPE,
                    &[("tls.crt", "C3"), ("tls.key", "K3")],
                ),
            ],
            reference_grants: vec![ReferenceGrant {
                metadata: meta(Some("certs"), "allow-infra"),
                spec: ReferenceGrantSpec {
                    from: vec![ReferenceGrantFrom {
                        group: GATEWAY_GROUP.into(),
                        kind: "Gateway".into(),
                        namespace: "infra".into(),
                    }],
                    to: vec![ReferenceGrantTo {
                        group: "".into(),
                        kind: "Secret".into(),
                        name: Some("shared".into()),
                    }],
                },
            }],
            ..Default::default()
        };
        let index = Index::new(&state, EndpointMode::Node);
        // (ref, problem reason, message words, chain)
        let cases: Vec<(GatewayListenersTlsCertificateRefs, Option<&str>, &str, &str)> = vec![
            (cref(None, "web-tls"), None, "", "CRT"),
            (cref(Some("infra"), "web-tls"), None, "", "CRT"),
            (
                cref(None, "gone"),
                Some("InvalidCertificateRef"),
                "does not exist",
                "",
            ),
            (
                cref(None, "half"),
                Some("InvalidCertificateRef"),
                "lacks tls.crt or tls.key",
                "",
            ),
            (
                cref(None, "opaque"),
                Some("InvalidCertificateRef"),
                "not of type",
                "",
            ),
            (cref(Some("certs"), "shared"), None, "", "C2"),
            (
                cref(Some("certs"), "private"),
                Some("RefNotPermitted"),
                "ReferenceGrant",
                "",
            ),
            (
                GatewayListenersTlsCertificateRefs {
                    group: Some("example.com".into()),
                    kind: Some("Vault".into()),
                    ..cref(None, "x")
                },
                Some("InvalidCertificateRef"),
                "not supported",
                "",
            ),
        ];
        for (r, reason, words, chain) in cases {
            let c = resolve_certificate("Gateway", "infra", &r, &index);
            let what = format!("{:?}/{}", r.namespace, r.name);
            assert_eq!(
                c.problem.as_ref().map(|p| p.reason.as_str()),
                reason,
                "{what}"
            );
            if let Some(p) = &c.problem {
                assert!(p.message.contains(words), "{what}: {}", p.message);
                assert!(c.private_key_pem.is_empty(), "{what}");
            }
            assert_eq!(c.cert_chain_pem, chain.as_bytes(), "{what}");
        }
        // The grant names Gateways: a ListenerSet's listener in the same namespace does not
        // inherit it (Gateway API: grants are per referring kind).
        let c = resolve_certificate(
            "ListenerSet",
            "infra",
            &cref(Some("certs"), "shared"),
            &index,
        );
        assert_eq!(
            c.problem.as_ref().map(|p| p.reason.as_str()),
            Some("RefNotPermitted")
        );
        // Its own namespace needs no grant.
        let c = resolve_certificate("ListenerSet", "infra", &cref(None, "web-tls"), &index);
        assert!(c.problem.is_none(), "{:?}", c.problem);
    }

    #[test]
    fn a_secret_the_agent_may_not_read_says_what_to_change() {
        let pair = [("tls.crt", "CRT"), ("tls.key", "KEY")];
        let in_web = |access: SecretAccess| ClusterState {
            secrets: vec![secret("web", "ok", TLS_SECRET_TYPE, &pair)],
            secret_access: access,
            ..Default::default()
        };
        // (mode, Gateway namespace, ref, message words; None: resolved)
        let only_web = SecretAccess::Namespaces(vec!["certs".into(), "web".into()]);
        let cases: Vec<(SecretAccess, &str, &str, Option<&[&str]>)> = vec![
            (only_web.clone(), "web", "ok", None),
            (
                only_web.clone(),
                "web",
                "gone",
                Some(&["web/gone does not exist"]),
            ),
            (
                only_web.clone(),
                "shop",
                "app",
                Some(&[
                    "Secret shop/app is in namespace shop, where the agent may not read Secrets",
                    "--secrets namespaces=certs,web",
                    "add shop to --secrets",
                    "deploy/agent-rbac.yaml",
                    "one of certs, web",
                ]),
            ),
            (SecretAccess::Label, "web", "ok", None),
            (
                SecretAccess::Label,
                "web",
                "plain",
                Some(&[
                    "lacks the label fleetgate.dev/expose=true",
                    "kubectl label secret -n web plain fleetgate.dev/expose=true",
                ]),
            ),
            (
                SecretAccess::Cluster,
                "web",
                "gone",
                Some(&["does not exist or is not of type kubernetes.io/tls"]),
            ),
        ];
        for (access, ns, name, words) in cases {
            let what = format!("{access} {ns}/{name}");
            let state = in_web(access);
            let index = Index::new(&state, EndpointMode::Node);
            let c = resolve_certificate("Gateway", ns, &cref(None, name), &index);
            match words {
                None => assert!(c.problem.is_none(), "{what}: {:?}", c.problem),
                Some(words) => {
                    let p = c.problem.expect(&what);
                    assert_eq!(p.reason, "InvalidCertificateRef", "{what}");
                    for w in words {
                        assert!(p.message.contains(w), "{what}: {:?} lacks {w:?}", p.message);
                    }
                    assert!(c.private_key_pem.is_empty(), "{what}");
                }
            }
        }
    }
}
