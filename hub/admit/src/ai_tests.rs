//! Table tests of AgentgatewayBackend admission (`super::ai`) and of backendRefs naming one,
//! including issue 11's isolation attacks: a backend whose host leads to another tenant's
//! endpoints, to the hub, to link-local metadata, or to an external host the operator did not
//! allow.

use std::collections::BTreeMap;

use fleetgate_proto::spoke::v1 as pb;

use super::test_support::Fixture;
use super::*;
use crate::model::ai::{AiAuth, AiProvider, AiTarget, AiTargets, AiUpstream, ProviderKey};

const KEY: &str = "sk-TOPSECRET-0123456789abcdef";

fn ai_object(b: pb::AiBackend) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::AiBackend as i32,
            namespace: "default".into(),
            name: "local-llm".into(),
        }),
        generation: 4,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::AiBackend(b)),
    }
}

fn endpoint(address: &str, port: u32) -> pb::Endpoint {
    pb::Endpoint {
        address: address.into(),
        port,
        ready: true,
    }
}

/// The tutorial's backend: a cluster-local llama.cpp Service with the key from its Secret.
fn local_llm() -> pb::AiBackend {
    pb::AiBackend {
        provider: Some(pb::ai_backend::Provider::Openai(pb::OpenAiProvider {
            model: Some("gemma-4-12b-it".into()),
        })),
        host: "llama-cpp.llm.svc.cluster.local".into(),
        port: 8080,
        path: None,
        path_prefix: None,
        endpoints: vec![endpoint("10.1.3.4", 8080), endpoint("10.1.3.5", 8080)],
        auth: Some(pb::AiAuth {
            key: KEY.into(),
            passthrough: false,
        }),
        problem: None,
        groups: vec![],
        model_aliases: Default::default(),
        mcp: None,
    }
}

fn external(host: &str, port: u32) -> pb::AiBackend {
    pb::AiBackend {
        host: host.into(),
        port,
        endpoints: vec![],
        ..local_llm()
    }
}

fn admitted(b: pb::AiBackend, f: &Fixture) -> Result<crate::model::ai::AiBackend, Rejection> {
    match admit(&ai_object(b), &f.policy())? {
        Admitted::AiBackend(b) => Ok(b),
        other => panic!("an AI backend expected, got {other:?}"),
    }
}

fn target(b: pb::AiBackend, f: &Fixture) -> AiTarget {
    match admitted(b, f).unwrap().target.unwrap() {
        AiTargets::Provider(t) => t,
        other => panic!("one provider expected, got {other:?}"),
    }
}

#[test]
fn model_aliases_are_admitted_sorted_at_the_limits() {
    let f = Fixture::new();
    let mut b = local_llm();
    b.model_aliases = (0..64)
        .map(|i| (format!("alias-{i:02}"), format!("model-{i}")))
        .collect();
    b.model_aliases.insert("alias-00".into(), "m".repeat(256));
    let got = admitted(b, &f).unwrap();
    assert_eq!(got.model_aliases.len(), 64);
    assert_eq!(
        got.model_aliases.keys().next().map(String::as_str),
        Some("alias-00")
    );
    assert_eq!(got.model_aliases["alias-00"].len(), 256);
    // A groups backend carries them too; none: an empty map.
    assert!(admitted_groups_aliases(&f).contains_key("fast"));
    assert!(admitted(local_llm(), &f).unwrap().model_aliases.is_empty());
}

fn admitted_groups_aliases(f: &Fixture) -> BTreeMap<String, String> {
    let mut b = groups(vec![vec![member("a")]]);
    b.model_aliases = [("fast".into(), "gpt-4o-mini".into())].into();
    admitted(b, f).unwrap().model_aliases
}

#[test]
fn ai_backends_are_admitted_into_the_model() {
    let f = Fixture::new();
    let got = admitted(local_llm(), &f).unwrap();
    assert_eq!(got.meta.name, "local-llm");
    assert_eq!(got.meta.generation, 4);
    assert_eq!(
        got.target,
        Ok(AiTarget {
            provider: AiProvider::OpenAi {
                model: Some("gemma-4-12b-it".into())
            },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port: 8080,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::Cluster(vec![
                "10.1.3.4:8080".parse().unwrap(),
                "10.1.3.5:8080".parse().unwrap()
            ]),
            auth: AiAuth::Key(ProviderKey(KEY.into())),
        }
        .into())
    );

    // Not-ready endpoints are left out; a cluster-local host with none ready stays
    // cluster-local (compile answers 503), it never becomes an external host.
    let mut b = local_llm();
    b.endpoints[0].ready = false;
    b.endpoints[1].ready = false;
    assert_eq!(target(b, &f).upstream, AiUpstream::Cluster(vec![]));

    // Any case, and the fully qualified form with its trailing dot, name the same host.
    let mut b = local_llm();
    b.host = "Llama-CPP.llm.svc.cluster.local.".into();
    assert_eq!(target(b, &f).host, "llama-cpp.llm.svc.cluster.local");

    // External hosts on the egress allowlist: exact and under a wildcard; port 0 is 443.
    let t = target(external("API.OpenAI.com", 0), &f);
    assert_eq!(
        (t.host.as_str(), t.port, &t.upstream),
        ("api.openai.com", 443, &AiUpstream::External)
    );
    let t = target(external("eu.models.example", 8443), &f);
    assert_eq!((t.host.as_str(), t.port), ("eu.models.example", 8443));
    // No host: the provider's default, which is on this tenant's allowlist.
    let t = target(external("", 0), &f);
    assert_eq!(t.host, "api.openai.com");

    // Paths, passthrough, no auth, no model.
    let mut b = local_llm();
    b.path = Some("/v1/chat/completions".into());
    b.path_prefix = Some("/api/openai/v1".into());
    b.auth = Some(pb::AiAuth {
        key: String::new(),
        passthrough: true,
    });
    b.provider = Some(pb::ai_backend::Provider::Openai(pb::OpenAiProvider {
        model: None,
    }));
    let t = target(b, &f);
    assert_eq!(t.path.as_deref(), Some("/v1/chat/completions"));
    assert_eq!(t.path_prefix.as_deref(), Some("/api/openai/v1"));
    assert_eq!(t.auth, AiAuth::Passthrough);
    assert_eq!(t.provider, AiProvider::OpenAi { model: None });
    let mut b = local_llm();
    b.auth = None;
    assert_eq!(target(b, &f).auth, AiAuth::None);

    // An Anthropic backend keeps its kind and model; its default host is Anthropic's.
    let mut b = local_llm();
    b.provider = Some(pb::ai_backend::Provider::Anthropic(pb::AnthropicProvider {
        model: Some("claude-x".into()),
    }));
    assert_eq!(
        target(b, &f).provider,
        AiProvider::Anthropic {
            model: Some("claude-x".into())
        }
    );
    assert_eq!(
        AiProvider::Anthropic { model: None }.default_host(),
        "api.anthropic.com"
    );
    let mut b = local_llm();
    b.provider = Some(pb::ai_backend::Provider::Gemini(pb::GeminiProvider {
        model: Some("gemini-x".into()),
    }));
    assert_eq!(
        target(b, &f).provider,
        AiProvider::Gemini {
            model: Some("gemini-x".into())
        }
    );
}

#[test]
fn refusals_name_what_to_change_and_never_the_key() {
    let mut f = Fixture::new();
    f.tenant.egress.push("169.254.169.254".into());
    f.tenant.egress.push("10.1.0.9".into());
    type Case = (&'static str, pb::AiBackend, &'static str, &'static str);
    let with = |change: fn(&mut pb::AiBackend)| {
        let mut b = local_llm();
        change(&mut b);
        b
    };
    let cases: Vec<Case> = vec![
        (
            "65 model aliases",
            with(|b| b.model_aliases = (0..65).map(|i| (format!("a{i}"), "m".into())).collect()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases lists 65 aliases, at most 64 are allowed",
        ),
        (
            "an empty alias name",
            with(|b| b.model_aliases = [(String::new(), "m".into())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases name \"\" must be 1 to 256 visible ASCII",
        ),
        (
            "an alias name with a space",
            with(|b| b.model_aliases = [("my model".into(), "m".into())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases name \"my model\" must be",
        ),
        (
            "an alias name with a control character",
            with(|b| b.model_aliases = [("fast\n".into(), "m".into())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases name \"fast\\n\" must be",
        ),
        (
            "an empty aliased model",
            with(|b| b.model_aliases = [("fast".into(), String::new())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases[fast] model \"\" must be 1 to 256",
        ),
        (
            "a non-ASCII aliased model",
            with(|b| b.model_aliases = [("fast".into(), "gpt-4o\u{202e}".into())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases[fast] model",
        ),
        (
            "a 257-character aliased model",
            with(|b| b.model_aliases = [("fast".into(), "m".repeat(257))].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases[fast] model",
        ),
        (
            "hostile aliases next to the agent's problem",
            with(|b| {
                b.problem = Some(pb::BackendProblem {
                    reason: "BackendNotFound".into(),
                    message: "gone".into(),
                });
                b.model_aliases = [("x".repeat(300), "m".into())].into();
            }),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases name",
        ),
        (
            "no provider",
            with(|b| b.provider = None),
            "UnsupportedValue",
            "set exactly one of: openai",
        ),
        (
            "a host that is no DNS name",
            with(|b| b.host = "llama cpp".into()),
            "UnsupportedValue",
            "neither a DNS name nor an IP address",
        ),
        (
            "a host with two trailing dots",
            with(|b| b.host = "llama.llm.svc..".into()),
            "UnsupportedValue",
            "neither a DNS name",
        ),
        (
            "a wildcard host",
            with(|b| b.host = "*.llm.example".into()),
            "UnsupportedValue",
            "neither a DNS name",
        ),
        (
            "a port above 65535",
            with(|b| b.port = 70_000),
            "UnsupportedValue",
            "port 70000 is not 1-65535",
        ),
        (
            "a cluster-local host without port",
            with(|b| b.port = 0),
            "UnsupportedValue",
            "set it to the Service's port",
        ),
        (
            "a relative path",
            with(|b| b.path = Some("v1/chat".into())),
            "UnsupportedValue",
            "spec.ai.provider.path: path \"v1/chat\" must start with '/'",
        ),
        (
            "a path prefix with a query",
            with(|b| b.path_prefix = Some("/v1?x=1".into())),
            "UnsupportedValue",
            "spec.ai.provider.pathPrefix",
        ),
        (
            "a model with spaces",
            with(|b| {
                b.provider = Some(pb::ai_backend::Provider::Openai(pb::OpenAiProvider {
                    model: Some("a b".into()),
                }))
            }),
            "UnsupportedValue",
            "visible ASCII",
        ),
        (
            "a key with a newline",
            with(|b| b.auth.as_mut().unwrap().key = format!("{KEY}\n")),
            "UnsupportedValue",
            "control or non-ASCII character",
        ),
        (
            "a key with a NUL",
            with(|b| b.auth.as_mut().unwrap().key = format!("{KEY}\0x")),
            "UnsupportedValue",
            "the key is not shown",
        ),
        (
            "a key too long",
            with(|b| b.auth.as_mut().unwrap().key = KEY.repeat(200)),
            "UnsupportedValue",
            "at most 4096 are allowed",
        ),
        (
            "a key and passthrough",
            with(|b| b.auth.as_mut().unwrap().passthrough = true),
            "UnsupportedValue",
            "both a key and passthrough",
        ),
        (
            "an endpoint that is not an IP address",
            with(|b| b.endpoints = vec![endpoint("llama-cpp.llm.svc", 8080)]),
            "UnsupportedValue",
            "not an IP address",
        ),
        (
            "attack: endpoints at another tenant's range",
            with(|b| b.endpoints = vec![endpoint("10.1.3.4", 8080), endpoint("10.2.0.5", 8080)]),
            "EndpointNotAllowed",
            "endpoint 10.2.0.5:8080 is outside the networks registered for cluster east",
        ),
        (
            "attack: an endpoint at the hub's agent port",
            with(|b| b.endpoints = vec![endpoint("10.1.0.9", 7443)]),
            "EndpointNotAllowed",
            "the hub or the data plane itself",
        ),
        (
            "attack: an endpoint at the hub through IPv4-mapped IPv6",
            with(|b| b.endpoints = vec![endpoint("::ffff:10.1.0.9", 7443)]),
            "EndpointNotAllowed",
            "the hub or the data plane itself",
        ),
        (
            "attack: an endpoint at link-local metadata",
            with(|b| b.endpoints = vec![endpoint("169.254.169.254", 80)]),
            "EndpointNotAllowed",
            "endpoint 169.254.169.254:80 is outside the networks",
        ),
        (
            "attack: an external host the operator did not allow",
            external("api.evil.example", 443),
            ai::EGRESS_NOT_ALLOWED,
            "the hub operator must add api.evil.example to tenants[a].egress",
        ),
        (
            "attack: a host just outside an allowed wildcard",
            external("models.example", 443),
            ai::EGRESS_NOT_ALLOWED,
            "it allows api.openai.com, *.models.example",
        ),
        (
            "attack: metadata as an external host, even on the allowlist",
            external("169.254.169.254", 80),
            "EndpointNotAllowed",
            "link-local",
        ),
        (
            "attack: the hub as an external host, even on the allowlist",
            external("10.1.0.9", 7443),
            "EndpointNotAllowed",
            "the hub or the data plane itself",
        ),
        (
            "attack: another tenant's address as an external host",
            external("10.2.0.5", 8080),
            ai::EGRESS_NOT_ALLOWED,
            "not on its egress allowlist (it allows api.openai.com, *.models.example, 169.254.169.254, 10.1.0.9); the hub operator must add 10.2.0.5 to tenants[a].egress in the hub's configuration; for a server inside cluster east, name its Service as the host (the agent resolves it to endpoints in 10.1.0.0/16)",
        ),
        (
            "a cluster-local name the agent did not resolve",
            external("llama-cpp.llm.svc.cluster.local", 8080),
            "BackendNotFound",
            "the agent resolved no endpoints",
        ),
        (
            "a bare Service name the agent did not resolve",
            external("llama-cpp", 8080),
            "BackendNotFound",
            "check that the Service exists",
        ),
    ];
    for (what, b, reason, words) in cases {
        let obj = ai_object(b);
        let err = match admit(&obj, &f.policy()) {
            Err(e) => e,
            Ok(got) => panic!("{what}: admitted {got:?}"),
        };
        assert_eq!(err.reason, reason, "{what}: {}", err.message);
        assert!(err.message.contains(words), "{what}: {}", err.message);
        assert!(!err.message.contains(KEY), "{what}: {}", err.message);
        assert!(
            !err.message.contains("TOPSECRET"),
            "{what}: {}",
            err.message
        );
        // The status the tenant reads: Accepted=False with the rejection, ResolvedRefs with it
        // when the rejection is about where the backend leads, both at the object's generation.
        let key = object_key(obj.r#ref.as_ref().unwrap()).unwrap();
        let st = rejected_status(&key, &obj, &err);
        assert_eq!(st.observed_generation, 4, "{what}");
        let types: Vec<&str> = st.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Accepted", "ResolvedRefs"], "{what}");
        assert!(!st.conditions[0].status, "{what}");
        assert_eq!(st.conditions[0].reason, reason, "{what}");
        let refs = &st.conditions[1];
        let about_refs = matches!(
            reason,
            "EndpointNotAllowed" | "BackendNotFound" | ai::EGRESS_NOT_ALLOWED
        );
        assert_eq!(!refs.status, about_refs, "{what}: {refs:?}");
        assert!(!format!("{st:?}").contains("TOPSECRET"), "{what}");
    }
}

#[test]
fn special_external_hosts_follow_the_clusters_permission() {
    // Tests on loopback run their mock providers at 127.0.x.y: allowed only where the operator
    // allows special addresses for the cluster and lists the address as egress.
    let mut f = Fixture::new();
    f.tenant.egress.push("127.0.1.20".into());
    let err = admitted(external("127.0.1.20", 8080), &f).unwrap_err();
    assert!(err.message.contains("loopback"), "{}", err.message);
    f.cluster.allow_special_addresses = true;
    let t = target(external("127.0.1.20", 8080), &f);
    assert_eq!(
        (t.host.as_str(), t.upstream),
        ("127.0.1.20", AiUpstream::External)
    );
    // Still never the hub's own listeners.
    f.tenant.egress.push("::ffff:10.1.0.9".into());
    f.tenant.egress.push("10.1.0.9".into());
    let err = admitted(external("10.1.0.9", 7443), &f).unwrap_err();
    assert!(err.message.contains("the hub"), "{}", err.message);
}

#[test]
fn endpoints_are_judged_like_every_backends() {
    // Metadata inside CIDRs the careless operator registered: refused as link-local.
    let mut f = Fixture::new();
    f.cluster
        .endpoint_cidrs
        .push("169.254.0.0/16".parse().unwrap());
    let mut b = local_llm();
    b.endpoints = vec![endpoint("169.254.169.254", 80)];
    let err = admitted(b, &f).unwrap_err();
    assert_eq!(err.reason, "EndpointNotAllowed");
    assert!(err.message.contains("link-local"), "{}", err.message);
    // The endpoint limit of every backend applies.
    f.limits.max_endpoints_per_backend = 1;
    let err = admitted(local_llm(), &f).unwrap_err();
    assert!(err.message.contains("the limit is 1"), "{}", err.message);
}

#[test]
fn the_agents_problem_is_kept_with_its_reason() {
    let f = Fixture::new();
    for (sent, kept) in [
        ("BackendNotFound", "BackendNotFound"),
        ("RefNotPermitted", "RefNotPermitted"),
        ("InvalidKind", "InvalidKind"),
        ("UnsupportedValue", "UnsupportedValue"),
        ("Whatever", "BackendNotFound"),
    ] {
        let mut b = local_llm();
        b.problem = Some(pb::BackendProblem {
            reason: sent.into(),
            message: "Secret llm/llm-secret not found".into(),
        });
        // The rest is not looked at (a problem may leave it empty).
        b.provider = None;
        let got = admitted(b, &f).unwrap();
        let p = got.target.unwrap_err();
        assert_eq!(p.reason, kept, "{sent}");
        assert_eq!(p.message, "Secret llm/llm-secret not found");
    }
}

fn http_route_with(backend: pb::Backend, filters: Vec<pb::HttpFilter>) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::HttpRoute as i32,
            namespace: "default".into(),
            name: "chat".into(),
        }),
        generation: 1,
        creation_timestamp: String::new(),
        spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
            parent_refs: vec![pb::ParentRef {
                namespace: "default".into(),
                name: "agentgateway-proxy".into(),
                ..Default::default()
            }],
            hostnames: vec![],
            rules: vec![pb::HttpRouteRule {
                backends: vec![backend],
                filters,
                ..Default::default()
            }],
        })),
    }
}

fn ai_ref(kind: &str) -> pb::Backend {
    pb::Backend {
        namespace: "default".into(),
        name: "local-llm".into(),
        port: 0,
        weight: 1,
        // An AgentgatewayBackend's endpoints are its own: these are never admitted.
        endpoints: vec![endpoint("169.254.169.254", 80)],
        kind: kind.into(),
        ..Default::default()
    }
}

#[test]
fn backend_refs_name_services_or_ai_backends() {
    let f = Fixture::new();
    let Admitted::HttpRoute(r) = admit(
        &http_route_with(ai_ref(model::AI_BACKEND_KIND), vec![]),
        &f.policy(),
    )
    .unwrap() else {
        panic!()
    };
    let b = &r.rules[0].backends[0];
    assert_eq!(b.kind, BackendKind::AiBackend);
    assert!(b.endpoints.is_empty() && b.problem.is_none());

    let Admitted::HttpRoute(r) =
        admit(&http_route_with(ai_ref("Pod"), vec![]), &f.policy()).unwrap()
    else {
        panic!()
    };
    let p = r.rules[0].backends[0].problem.as_ref().unwrap();
    assert_eq!(p.reason, "InvalidKind");
    assert!(p.message.contains("AgentgatewayBackend"), "{}", p.message);

    // Only HTTPRoute rules may name one: a mirror of it is InvalidKind.
    let mirror = pb::HttpFilter {
        kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
            backend: Some(ai_ref(model::AI_BACKEND_KIND)),
            numerator: 0,
            denominator: 0,
        })),
    };
    let svc = pb::Backend {
        kind: String::new(),
        endpoints: vec![endpoint("10.1.2.3", 80)],
        port: 80,
        ..ai_ref("")
    };
    let Admitted::HttpRoute(r) = admit(&http_route_with(svc, vec![mirror]), &f.policy()).unwrap()
    else {
        panic!()
    };
    let model::HttpFilter::RequestMirror(m) = &r.rules[0].filters[0] else {
        panic!()
    };
    assert_eq!(m.backend.problem.as_ref().unwrap().reason, "InvalidKind");
}

#[test]
fn routes_cannot_modify_fleetgates_identity_headers() {
    let f = Fixture::new();
    let hm = |set: &[&str], add: &[&str], remove: &[&str]| pb::HeaderModifier {
        set: set
            .iter()
            .map(|n| pb::Header {
                name: n.to_string(),
                value: "b".into(),
            })
            .collect(),
        add: add
            .iter()
            .map(|n| pb::Header {
                name: n.to_string(),
                value: "b".into(),
            })
            .collect(),
        remove: remove.iter().map(|n| n.to_string()).collect(),
    };
    let cases = [
        hm(&["x-fleetgate-tenant"], &[], &[]),
        hm(&[], &["X-Fleetgate-Route"], &[]),
        hm(&[], &[], &["x-fleetgate-tenant"]),
        hm(&["x-fleetgate-anything"], &[], &[]),
    ];
    for m in cases {
        // On the rule...
        let rule_filter = pb::HttpFilter {
            kind: Some(pb::http_filter::Kind::RequestHeaderModifier(m.clone())),
        };
        let err = admit(
            &http_route_with(ai_ref(model::AI_BACKEND_KIND), vec![rule_filter]),
            &f.policy(),
        )
        .unwrap_err();
        assert!(
            err.message.contains("set by fleetgate itself"),
            "{m:?}: {}",
            err.message
        );
        // ... and on the backendRef.
        let mut b = ai_ref(model::AI_BACKEND_KIND);
        b.filters = vec![pb::HttpFilter {
            kind: Some(pb::http_filter::Kind::RequestHeaderModifier(m.clone())),
        }];
        let err = admit(&http_route_with(b, vec![]), &f.policy()).unwrap_err();
        assert!(
            err.message.contains("set by fleetgate itself"),
            "{m:?}: {}",
            err.message
        );
    }
    // Matching on them is harmless and allowed; so are other x- headers.
    let ok = pb::HttpFilter {
        kind: Some(pb::http_filter::Kind::RequestHeaderModifier(hm(
            &["x-fleet"],
            &[],
            &[],
        ))),
    };
    assert!(
        admit(
            &http_route_with(ai_ref(model::AI_BACKEND_KIND), vec![ok]),
            &f.policy()
        )
        .is_ok()
    );
}

#[test]
fn an_admitted_backend_never_shows_its_key() {
    let f = Fixture::new();
    let got = admit(&ai_object(local_llm()), &f.policy()).unwrap();
    let shown = format!("{got:?} {got:#?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
    assert!(shown.contains("llama-cpp.llm.svc.cluster.local"));
}

/// A provider of `ai.groups` as the agent sends it: `local_llm()`'s fields.
fn member(name: &str) -> pb::AiGroupProvider {
    let b = local_llm();
    pb::AiGroupProvider {
        name: name.into(),
        provider: Some(pb::ai_group_provider::Provider::Openai(
            pb::OpenAiProvider {
                model: Some("gemma-4-12b-it".into()),
            },
        )),
        host: b.host,
        port: b.port,
        path: None,
        path_prefix: None,
        endpoints: b.endpoints,
        auth: b.auth,
        problem: None,
    }
}

fn groups(groups: Vec<Vec<pb::AiGroupProvider>>) -> pb::AiBackend {
    pb::AiBackend {
        groups: groups
            .into_iter()
            .map(|providers| pb::AiProviderGroup { providers })
            .collect(),
        ..Default::default()
    }
}

/// The failover backend of the e2e: a cluster-local provider first, an external one on the
/// egress list second with its own key; an unresolved provider is kept with its problem.
#[test]
fn groups_are_admitted_provider_by_provider() {
    let f = Fixture::new();
    let mut cloud = member("cloud");
    cloud.host = "api.openai.com".into();
    cloud.port = 0;
    cloud.endpoints = vec![];
    cloud.auth = Some(pb::AiAuth {
        key: "sk-cloud".into(),
        passthrough: false,
    });
    let mut gone = member("gone");
    gone.problem = Some(pb::BackendProblem {
        reason: "BackendNotFound".into(),
        message: "spec.ai.groups[0].providers[1].host gone.llm.svc: Service llm/gone not found"
            .into(),
    });
    let got = admitted(groups(vec![vec![member("local"), gone], vec![cloud]]), &f).unwrap();
    let Ok(AiTargets::Groups(g)) = &got.target else {
        panic!("groups expected: {:?}", got.target);
    };
    let names: Vec<Vec<&str>> = g
        .iter()
        .map(|m| m.iter().map(|m| m.name.as_str()).collect())
        .collect();
    assert_eq!(names, [vec!["local", "gone"], vec!["cloud"]]);
    let local = g[0][0].target.as_ref().unwrap();
    assert_eq!(
        local.upstream,
        AiUpstream::Cluster(vec![
            "10.1.3.4:8080".parse().unwrap(),
            "10.1.3.5:8080".parse().unwrap()
        ])
    );
    assert_eq!(local.auth, AiAuth::Key(ProviderKey(KEY.into())));
    assert_eq!(
        g[0][1].target.as_ref().unwrap_err().reason,
        "BackendNotFound"
    );
    let cloud = g[1][0].target.as_ref().unwrap();
    assert_eq!(
        (cloud.host.as_str(), cloud.port, &cloud.upstream),
        ("api.openai.com", 443, &AiUpstream::External)
    );
    assert_eq!(cloud.auth, AiAuth::Key(ProviderKey("sk-cloud".into())));

    // None resolved: the backend is unresolved, naming every provider's problem.
    let mut a = member("a");
    a.problem = Some(pb::BackendProblem {
        reason: "BackendNotFound".into(),
        message: "Secret ai/k not found".into(),
    });
    let got = admitted(groups(vec![vec![a]]), &f).unwrap();
    let p = got.target.unwrap_err();
    assert_eq!(p.reason, "BackendNotFound");
    assert_eq!(
        p.message,
        "no provider of spec.ai.groups resolved: groups[0].providers[0] (a): Secret ai/k not found"
    );
}

/// Hostile `ai.groups`: each refusal names the provider's field, never the key; one bad
/// provider refuses the whole backend.
#[test]
fn hostile_groups_are_refused_naming_the_field() {
    let f = Fixture::new();
    type Case = (&'static str, pb::AiBackend, &'static str, &'static str);
    let with = |g: usize, i: usize, change: fn(&mut pb::AiGroupProvider)| {
        let mut b = groups(vec![vec![member("a")], vec![member("b"), member("c")]]);
        change(&mut b.groups[g].providers[i]);
        b
    };
    let many_groups = groups((0..9).map(|i| vec![member(&format!("p{i}"))]).collect());
    let many_providers = groups(vec![(0..17).map(|i| member(&format!("p{i}"))).collect()]);
    let mut both = groups(vec![vec![member("a")]]);
    both.host = "llama-cpp.llm.svc.cluster.local".into();
    let cases: Vec<Case> = vec![
        (
            "a port above 65535",
            with(1, 0, |p| p.port = 70_000),
            "UnsupportedValue",
            "spec.ai.groups[1].providers[0].port 70000 is not 1-65535",
        ),
        (
            "no provider kind",
            with(1, 1, |p| p.provider = None),
            "UnsupportedValue",
            "spec.ai.groups[1].providers[1] names no provider fleetgate serves",
        ),
        (
            "a host that is no DNS name",
            with(0, 0, |p| p.host = "llama cpp".into()),
            "UnsupportedValue",
            "spec.ai.groups[0].providers[0].host \"llama cpp\"",
        ),
        (
            "a relative path",
            with(0, 0, |p| p.path = Some("v1".into())),
            "UnsupportedValue",
            "spec.ai.groups[0].providers[0].path",
        ),
        (
            "a key with a newline",
            with(1, 0, |p| {
                p.auth = Some(pb::AiAuth {
                    key: format!("{KEY}\n"),
                    passthrough: false,
                })
            }),
            "UnsupportedValue",
            "spec.ai.groups[1].providers[0].policies.auth: the key holds a control",
        ),
        (
            "an endpoint of another tenant",
            with(1, 1, |p| p.endpoints = vec![endpoint("10.2.0.5", 8080)]),
            "EndpointNotAllowed",
            "spec.ai.groups[1].providers[1]: ",
        ),
        (
            "link-local metadata",
            with(0, 0, |p| {
                p.endpoints = vec![endpoint("169.254.169.254", 80)]
            }),
            "EndpointNotAllowed",
            "spec.ai.groups[0].providers[0]: ",
        ),
        (
            "an external host not on the egress list",
            with(1, 0, |p| {
                p.host = "evil.example.net".into();
                p.endpoints = vec![];
            }),
            ai::EGRESS_NOT_ALLOWED,
            "spec.ai.groups[1].providers[0]: host evil.example.net is outside tenant",
        ),
        (
            "a bare Service name the agent did not resolve",
            with(0, 0, |p| {
                p.host = "llama-cpp".into();
                p.endpoints = vec![];
            }),
            "BackendNotFound",
            "spec.ai.groups[0].providers[0]: host llama-cpp names a Service",
        ),
        (
            "an unnamed provider",
            with(0, 0, |p| p.name = String::new()),
            "UnsupportedValue",
            "spec.ai.groups[0].providers[0].name \"\" must be",
        ),
        (
            "a name with a newline",
            with(0, 0, |p| p.name = "a\nb".into()),
            "UnsupportedValue",
            "spec.ai.groups[0].providers[0].name",
        ),
        (
            "a name twice in a group",
            with(1, 1, |p| p.name = "b".into()),
            "UnsupportedValue",
            "spec.ai.groups[1].providers[1].name b is used twice",
        ),
        (
            "nine groups",
            many_groups,
            "UnsupportedValue",
            "spec.ai.groups lists 9 groups, at most 8",
        ),
        (
            "seventeen providers",
            many_providers,
            "UnsupportedValue",
            "spec.ai.groups[0].providers lists 17 providers",
        ),
        (
            "an empty group",
            groups(vec![vec![member("a")], vec![]]),
            "UnsupportedValue",
            "spec.ai.groups[1].providers lists 0 providers",
        ),
        (
            "provider and groups",
            both,
            "UnsupportedValue",
            "spec.ai sets both provider and groups",
        ),
    ];
    for (what, b, reason, words) in cases {
        let err = match admitted(b, &f) {
            Err(e) => e,
            Ok(got) => panic!("{what}: admitted {got:?}"),
        };
        assert_eq!(err.reason, reason, "{what}: {}", err.message);
        assert!(err.message.contains(words), "{what}: {}", err.message);
        assert!(
            !err.message.contains("TOPSECRET"),
            "{what}: {}",
            err.message
        );
    }
    // The endpoint limit of every backend applies to each provider.
    let mut f = Fixture::new();
    f.limits.max_endpoints_per_backend = 1;
    let err = admitted(groups(vec![vec![member("a")]]), &f).unwrap_err();
    assert!(
        err.message
            .starts_with("spec.ai.groups[0].providers[0]: host llama-cpp.llm.svc.cluster.local: 2 endpoints, the limit is 1"),
        "{}",
        err.message
    );
}

/// An A2A agent (`spec.a2a`): its Service's endpoints inside the cluster's CIDRs, with the key.
fn agent() -> pb::AiBackend {
    pb::AiBackend {
        provider: Some(pb::ai_backend::Provider::A2a(pb::A2aAgent {})),
        host: "agent.team.svc.cluster.local".into(),
        port: 9999,
        endpoints: vec![endpoint("10.1.3.7", 31999)],
        ..local_llm()
    }
}

/// `spec.a2a` is admitted like a provider: the tenant's own endpoints, or an external host on
/// its egress allowlist; the key is kept for the gateway.
#[test]
fn a2a_agents_are_admitted_like_providers() {
    let f = Fixture::new();
    let t = target(agent(), &f);
    assert_eq!(t.provider, AiProvider::A2a);
    assert_eq!(t.host, "agent.team.svc.cluster.local");
    assert_eq!(t.port, 9999);
    assert_eq!(
        t.upstream,
        AiUpstream::Cluster(vec!["10.1.3.7:31999".parse().unwrap()])
    );
    assert_eq!(t.auth, AiAuth::Key(ProviderKey(KEY.into())));
    let mut outside = agent();
    outside.host = "agents.models.example".into();
    outside.endpoints = vec![];
    outside.port = 443;
    let t = target(outside, &f);
    assert_eq!((t.upstream, t.port), (AiUpstream::External, 443));
}

/// Issue 12's attacks on `spec.a2a`: another tenant's endpoints, the hub, link-local metadata,
/// a host off the egress list, no host, model aliases: each refused saying what to change,
/// never repeating the key.
#[test]
fn hostile_a2a_agents_are_refused_naming_what_to_change() {
    let f = Fixture::new();
    let with = |change: &dyn Fn(&mut pb::AiBackend)| {
        let mut b = agent();
        change(&mut b);
        b
    };
    let cases: Vec<(&str, pb::AiBackend, &str, &str)> = vec![
        (
            "another tenant's endpoints",
            with(&|b| b.endpoints = vec![endpoint("10.2.0.5", 9999)]),
            "EndpointNotAllowed",
            "10.2.0.5",
        ),
        (
            "the hub's own agent port",
            with(&|b| b.endpoints = vec![endpoint("10.1.0.9", 7443)]),
            "EndpointNotAllowed",
            "10.1.0.9",
        ),
        (
            "link-local metadata as an external host",
            with(&|b| {
                b.host = "169.254.169.254".into();
                b.endpoints = vec![];
            }),
            "EndpointNotAllowed",
            "169.254.169.254",
        ),
        (
            "a host off the egress allowlist",
            with(&|b| {
                b.host = "agents.evil.example".into();
                b.endpoints = vec![];
            }),
            "EgressNotAllowed",
            "the hub operator must add agents.evil.example to tenants[a].egress",
        ),
        (
            "no host",
            with(&|b| b.host = String::new()),
            "UnsupportedValue",
            "spec.a2a.host is empty",
        ),
        (
            "a port past 65535",
            with(&|b| b.port = 70_000),
            "UnsupportedValue",
            "spec.a2a.port 70000 is not 1-65535",
        ),
        (
            "model aliases",
            with(&|b| b.model_aliases = [("a".into(), "b".into())].into()),
            "UnsupportedValue",
            "spec.policies.ai.modelAliases applies to LLM backends only",
        ),
    ];
    for (what, b, reason, says) in cases {
        let err = admitted(b, &f).unwrap_err();
        assert_eq!(err.reason, reason, "{what}: {}", err.message);
        assert!(err.message.contains(says), "{what}: {}", err.message);
        assert!(!err.message.contains(KEY), "{what}");
    }
}

/// A Service port of appProtocol `agentgateway.dev/a2a` is an A2A agent; its endpoints are held
/// to the rule of every backend (another tenant's range refuses the route).
#[test]
fn a2a_service_ports_are_marked_and_their_endpoints_judged() {
    let f = Fixture::new();
    let svc = |address: &str| pb::Backend {
        kind: String::new(),
        endpoints: vec![endpoint(address, 31999)],
        port: 9999,
        app_protocol: "agentgateway.dev/a2a".into(),
        ..ai_ref("")
    };
    let Admitted::HttpRoute(r) =
        admit(&http_route_with(svc("10.1.2.3"), vec![]), &f.policy()).unwrap()
    else {
        panic!()
    };
    let b = &r.rules[0].backends[0];
    assert_eq!(b.app_protocol, model::AppProtocol::A2a);
    assert_eq!(b.endpoints, ["10.1.2.3:31999".parse().unwrap()]);
    let err = admit(&http_route_with(svc("10.2.0.5"), vec![]), &f.policy()).unwrap_err();
    assert_eq!(err.reason, "EndpointNotAllowed", "{}", err.message);
}
