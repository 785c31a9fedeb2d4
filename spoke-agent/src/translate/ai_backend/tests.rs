//! Table tests of the AgentgatewayBackend translation: the tutorial's backend, the unsupported
//! kinds and fields (each named in the problem), and the key kept out of Debug output.

use std::collections::BTreeMap;

use fleetgate_proto::spoke::v1::{self as pb, Kind, ObjectRef, ai_backend, object};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::config::EndpointMode;
use crate::state::ClusterState;
use crate::test_support::{meta, node, service};

const KEY: &str = "sk-tutorial-key-only-the-hub-may-see";

fn backend(yaml: &str) -> AgentgatewayBackend {
    let mut b: AgentgatewayBackend = serde_yaml::from_str(&format!(
        "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {{name: local-llm, namespace: agentgateway-system}}\n{yaml}"
    ))
    .expect("the backend parses");
    b.metadata = meta(Some("agentgateway-system"), "local-llm");
    b
}

fn state(backends: Vec<AgentgatewayBackend>) -> ClusterState {
    ClusterState {
        services: vec![service(
            "llm",
            "llama-cpp",
            "NodePort",
            &[(None, 8080, Some(31080), IntOrString::Int(8080))],
        )],
        nodes: vec![node("n1", Some("127.0.1.1"), None)],
        ai_secrets: vec![Secret {
            metadata: meta(Some("agentgateway-system"), "llm-secret"),
            data: Some(BTreeMap::from([(
                "Authorization".to_string(),
                ByteString(format!("Bearer {KEY}").into_bytes()),
            )])),
            ..Default::default()
        }],
        ai_backends: backends,
        ..Default::default()
    }
}

fn translate_one(yaml: &str) -> pb::AiBackend {
    let st = state(vec![backend(yaml)]);
    let index = Index::new(&st, EndpointMode::Node);
    let objects = ai_backend_objects(&st.ai_backends, &index);
    assert_eq!(objects.len(), 1);
    match objects.into_iter().next().and_then(|o| o.spec) {
        Some(object::Spec::AiBackend(b)) => b,
        other => panic!("not an AI backend: {other:?}"),
    }
}

const TUTORIAL: &str = r#"spec:
  ai:
    provider:
      host: llama-cpp.llm.svc.cluster.local
      port: 8080
      openai:
        model: gemma-4-12b-it
  policies:
    auth:
      secretRef:
        name: llm-secret
"#;

#[test]
fn the_tutorials_backend_is_resolved_into_endpoints_and_the_secrets_key() {
    let st = state(vec![backend(TUTORIAL)]);
    let index = Index::new(&st, EndpointMode::Node);
    let objects = ai_backend_objects(&st.ai_backends, &index);
    let want = Object {
        r#ref: Some(ObjectRef {
            kind: Kind::AiBackend as i32,
            namespace: "agentgateway-system".into(),
            name: "local-llm".into(),
        }),
        generation: 1,
        creation_timestamp: "2023-11-14T22:13:20Z".into(),
        spec: Some(object::Spec::AiBackend(pb::AiBackend {
            provider: Some(ai_backend::Provider::Openai(pb::OpenAiProvider {
                model: Some("gemma-4-12b-it".into()),
            })),
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port: 8080,
            path: None,
            path_prefix: None,
            endpoints: vec![pb::Endpoint {
                address: "127.0.1.1".into(),
                port: 31080,
                ready: true,
            }],
            auth: Some(pb::AiAuth {
                key: KEY.into(),
                passthrough: false,
            }),
            problem: None,
            groups: Vec::new(),
            model_aliases: Default::default(),
            mcp: None,
        })),
    };
    assert_eq!(objects, vec![want]);
    // The key is in the intent, never in its Debug output (what a log line would show).
    let debug = format!("{objects:?}");
    assert!(!debug.contains(KEY), "{debug}");
}

#[test]
fn external_hosts_overrides_and_passthrough() {
    let b = translate_one(
        r#"spec:
  ai:
    provider:
      host: api.openai.com
      port: 443
      pathPrefix: /openai/v1
      openai: {}
  policies:
    auth:
      passthrough: {}
"#,
    );
    assert_eq!(b.problem, None);
    assert!(b.endpoints.is_empty(), "external: the hub decides");
    assert_eq!((b.host.as_str(), b.port), ("api.openai.com", 443));
    assert_eq!(b.path_prefix.as_deref(), Some("/openai/v1"));
    assert_eq!(
        b.provider,
        Some(ai_backend::Provider::Openai(pb::OpenAiProvider {
            model: None
        }))
    );
    assert_eq!(
        b.auth,
        Some(pb::AiAuth {
            key: String::new(),
            passthrough: true
        })
    );
    // No host: the provider's default endpoint, no auth.
    let b = translate_one(
        "spec:\n  ai:\n    provider:\n      openai: {model: gpt-4o-mini}\n      path: /v1/chat\n",
    );
    assert_eq!((b.problem, b.host.as_str(), b.port), (None, "", 0));
    assert_eq!(b.path.as_deref(), Some("/v1/chat"));
    assert_eq!(b.auth, None);
}

#[test]
fn an_anthropic_provider_is_sent_with_its_model_endpoints_and_key() {
    let b = translate_one(&TUTORIAL.replace(
        "openai:\n        model: gemma-4-12b-it",
        "anthropic:\n        model: claude-x",
    ));
    assert_eq!(b.problem, None);
    assert_eq!(
        b.provider,
        Some(ai_backend::Provider::Anthropic(pb::AnthropicProvider {
            model: Some("claude-x".into())
        }))
    );
    assert_eq!(b.endpoints.len(), 1);
    assert_eq!(b.auth.map(|a| a.key).as_deref(), Some(KEY));
    let g = translate_one(&TUTORIAL.replace(
        "openai:\n        model: gemma-4-12b-it",
        "gemini:\n        model: gemini-x",
    ));
    assert_eq!(g.problem, None);
    assert_eq!(
        g.provider,
        Some(ai_backend::Provider::Gemini(pb::GeminiProvider {
            model: Some("gemini-x".into())
        }))
    );
}

/// `spec.mcp`: a static target at a Service of the cluster becomes its endpoints, an external
/// one has none (the hub judges it against the egress allowlist); modes travel as written.
#[test]
fn mcp_targets_are_resolved_like_providers() {
    let b = translate_one(
        "spec:\n  mcp:\n    targets:\n    - name: alpha\n      static: {host: llama-cpp.llm.svc.cluster.local, port: 8080, path: /mcp, protocol: StreamableHTTP}\n    - name: beta\n      static: {host: mcp.example.com, port: 443, protocol: SSE}\n    prefixMode: Always\n    failureMode: FailOpen\n",
    );
    assert!(b.problem.is_none(), "{:?}", b.problem);
    let m = b.mcp.expect("an MCP backend");
    assert_eq!(m.targets.len(), 2);
    assert_eq!(m.targets[0].endpoints[0].address, "127.0.1.1");
    assert_eq!(m.targets[0].endpoints[0].port, 31080);
    assert_eq!(m.targets[0].path.as_deref(), Some("/mcp"));
    assert!(m.targets[1].endpoints.is_empty());
    assert_eq!(m.targets[1].protocol, "SSE");
    assert_eq!(
        (m.prefix_mode.as_str(), m.failure_mode.as_str()),
        ("Always", "FailOpen")
    );
    assert_eq!(m.session_routing, "");
    let gone = translate_one(
        "spec:\n  mcp:\n    targets: [{name: t, static: {host: gone.llm.svc.cluster.local, port: 80}}]\n",
    );
    let p = gone
        .problem
        .expect("a missing Service is the backend's problem");
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message
            .contains("spec.mcp.targets[0].static.host gone.llm.svc.cluster.local"),
        "{}",
        p.message
    );
}

/// `selector` targets: one per MCP port (appProtocol) of each selected Service, named and
/// resolved as agentgateway does, across namespaces by label; `static.backendRef`: a Service of
/// the backend's namespace resolved like a host. A selector that finds nothing, a name two
/// targets share, and a missing backendRef Service are the backend's problem.
#[test]
fn mcp_selector_and_backend_ref_targets_are_resolved_like_static_hosts() {
    use k8s_openapi::api::core::v1::Namespace;
    let mcp_service = |ns: &str, name: &str, port: i32, node_port: i32, app: &str| {
        let mut s = service(
            ns,
            name,
            "NodePort",
            &[(Some("mcp"), port, Some(node_port), IntOrString::Int(port))],
        );
        s.metadata.labels = Some([("mcp".to_string(), "yes".to_string())].into());
        if let Some(p) = s
            .spec
            .as_mut()
            .and_then(|spec| spec.ports.as_mut())
            .and_then(|p| p.first_mut())
        {
            p.app_protocol = Some(app.into());
        }
        s
    };
    let namespace = |name: &str, team: &str| Namespace {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            labels: Some([("team".to_string(), team.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let run = |yaml: &str| {
        let mut st = state(vec![backend(yaml)]);
        st.services.extend([
            mcp_service(
                "agentgateway-system",
                "alpha",
                8080,
                31001,
                "agentgateway.dev/mcp",
            ),
            mcp_service("tools", "beta", 8080, 31002, "agentgateway.dev/mcp-sse"),
            mcp_service("elsewhere", "gamma", 8080, 31003, "agentgateway.dev/mcp"),
        ]);
        st.namespaces = vec![
            namespace("agentgateway-system", "a"),
            namespace("tools", "a"),
            namespace("elsewhere", "b"),
        ];
        let index = Index::new(&st, EndpointMode::Node);
        let objects = ai_backend_objects(&st.ai_backends, &index);
        match objects.into_iter().next().and_then(|o| o.spec) {
            Some(object::Spec::AiBackend(b)) => b,
            other => panic!("not an AI backend: {other:?}"),
        }
    };
    let targets = |b: pb::AiBackend| -> Vec<String> {
        assert!(b.problem.is_none(), "{:?}", b.problem);
        b.mcp
            .expect("an MCP backend")
            .targets
            .iter()
            .map(|t| {
                let ep: Vec<String> = t
                    .endpoints
                    .iter()
                    .map(|e| format!("{}:{}", e.address, e.port))
                    .collect();
                format!(
                    "{} {}:{} {} {} {}",
                    t.name,
                    t.host,
                    t.port,
                    t.protocol,
                    t.path.as_deref().unwrap_or("-"),
                    ep.join(",")
                )
            })
            .collect()
    };
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "services by label: the backend's namespace only",
            "targets: [{name: sel, selector: {services: {matchLabels: {mcp: \"yes\"}}}}]",
            vec![
                "alpha-mcp alpha.agentgateway-system.svc.cluster.local:8080 StreamableHTTP - 127.0.1.1:31001",
            ],
        ),
        (
            "namespaces by label, beside a static target",
            "targets: [{name: one, static: {host: llama-cpp.llm.svc.cluster.local, port: 8080}}, {name: sel, selector: {namespaces: {matchLabels: {team: a}}, services: {matchLabels: {mcp: \"yes\"}}}}]",
            vec![
                "one llama-cpp.llm.svc.cluster.local:8080  - 127.0.1.1:31080",
                "alpha-mcp alpha.agentgateway-system.svc.cluster.local:8080 StreamableHTTP - 127.0.1.1:31001",
                "beta-mcp beta.tools.svc.cluster.local:8080 SSE - 127.0.1.1:31002",
            ],
        ),
        (
            "backendRef: a Service of the backend's namespace",
            "targets: [{name: a, static: {backendRef: {name: alpha}, port: 8080, path: /rpc, protocol: StreamableHTTP}}]",
            vec![
                "a alpha.agentgateway-system.svc.cluster.local:8080 StreamableHTTP /rpc 127.0.1.1:31001",
            ],
        ),
    ];
    for (what, mcp, want) in cases {
        let got = targets(run(&format!("spec:\n  mcp:\n    {mcp}\n")));
        assert_eq!(got, want, "{what}");
    }

    let problems: Vec<(&str, &str, &str, &str)> = vec![
        (
            "a selector finding nothing",
            "targets: [{name: sel, selector: {services: {matchLabels: {mcp: \"no\"}}}}]",
            "BackendNotFound",
            "spec.mcp.targets: the selectors select no Service port with appProtocol agentgateway.dev/mcp",
        ),
        (
            "a name two targets share",
            "targets: [{name: alpha-mcp, static: {host: llama-cpp.llm.svc.cluster.local, port: 8080}}, {name: sel, selector: {services: {matchLabels: {mcp: \"yes\"}}}}]",
            "UnsupportedValue",
            "two targets are named \"alpha-mcp\"",
        ),
        (
            "a backendRef to a missing Service",
            "targets: [{name: a, static: {backendRef: {name: gone}, port: 8080}}]",
            "BackendNotFound",
            "spec.mcp.targets[0].static.host gone.agentgateway-system.svc.cluster.local",
        ),
    ];
    for (what, mcp, reason, want) in problems {
        let b = run(&format!("spec:\n  mcp:\n    {mcp}\n"));
        let p = b.problem.unwrap_or_else(|| panic!("{what}: a problem"));
        assert_eq!(p.reason, reason, "{what}: {}", p.message);
        assert!(p.message.contains(want), "{what}: {}", p.message);
    }
}

#[test]
fn unsupported_kinds_and_fields_are_named_in_the_problem() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "openai and anthropic",
            "spec:\n  ai:\n    provider:\n      openai: {}\n      anthropic: {}\n",
            "names two provider kinds",
        ),
        (
            "anthropic's unknown field",
            "spec:\n  ai:\n    provider:\n      anthropic: {thinking: {}}\n",
            "spec.ai.provider.anthropic.thinking is not supported yet",
        ),
        (
            "vertexai",
            "spec:\n  ai:\n    provider:\n      vertexai: {}\n",
            "spec.ai.provider.vertexai is not supported yet",
        ),
        (
            "provider and groups",
            "spec:\n  ai:\n    provider: {openai: {}}\n    groups:\n    - providers: [{name: a, openai: {}}]\n",
            "spec.ai sets both provider and groups",
        ),
        (
            "no groups",
            "spec:\n  ai:\n    groups: []\n",
            "spec.ai.groups lists 0 groups; list 1 to 8",
        ),
        (
            "nine groups",
            &format!(
                "spec:\n  ai:\n    groups:\n{}",
                "    - providers: [{name: a, openai: {}}]\n".repeat(9)
            ),
            "spec.ai.groups lists 9 groups",
        ),
        (
            "a group without providers",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}}]\n    - providers: []\n",
            "spec.ai.groups[1].providers lists 0 providers; list 1 to 16",
        ),
        (
            "seventeen providers",
            &format!(
                "spec:\n  ai:\n    groups:\n    - providers:\n{}",
                (0..17)
                    .map(|i| format!("      - {{name: p{i}, openai: {{}}}}\n"))
                    .collect::<String>()
            ),
            "spec.ai.groups[0].providers lists 17 providers",
        ),
        (
            "a provider without a name",
            "spec:\n  ai:\n    groups:\n    - providers: [{openai: {}}]\n",
            "spec.ai.groups[0].providers[0].name \"\" must be",
        ),
        (
            "a name twice in a group",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}}, {name: a, gemini: {}}]\n",
            "spec.ai.groups[0].providers[1].name a is used twice",
        ),
        (
            "a provider kind fleetgate does not serve, in a group",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}}]\n    - providers: [{name: b, bedrock: {}}]\n",
            "spec.ai.groups[1].providers[0].bedrock is not supported yet",
        ),
        (
            "two kinds in a group's provider",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}, anthropic: {}}]\n",
            "spec.ai.groups[0].providers[0] names two provider kinds",
        ),
        (
            "a provider policy other than auth",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}, policies: {ai: {}}}]\n",
            "spec.ai.groups[0].providers[0].policies.ai is not supported yet",
        ),
        (
            "an unknown field of a group",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}}]\n      weight: 2\n",
            "spec.ai.groups[0].weight is not supported",
        ),
        (
            "path and pathPrefix in a group's provider",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}, path: /a, pathPrefix: /b}]\n",
            "spec.ai.groups[0].providers[0] sets both path and pathPrefix",
        ),
        (
            "an mcp target with static and selector",
            "spec:\n  mcp:\n    targets: [{name: t, selector: {services: {}}, static: {host: h, port: 80}}]\n",
            "spec.mcp.targets[0] sets both static and selector; keep one",
        ),
        (
            "an mcp selector selecting nothing",
            "spec:\n  mcp:\n    targets: [{name: t, selector: {}}]\n",
            "spec.mcp.targets[0].selector selects nothing; set spec.mcp.targets[0].selector.services",
        ),
        (
            "an mcp target with host and backendRef",
            "spec:\n  mcp:\n    targets: [{name: t, static: {host: h, backendRef: {name: x}, port: 80}}]\n",
            "spec.mcp.targets[0].static sets both host and backendRef; keep one",
        ),
        (
            "a backendRef of another kind",
            "spec:\n  mcp:\n    targets: [{name: t, static: {backendRef: {name: x, kind: Backend}, port: 80}}]\n",
            "spec.mcp.targets[0].static.backendRef.kind is not supported",
        ),
        (
            "mcp and ai together",
            "spec:\n  ai:\n    provider: {openai: {}}\n  mcp:\n    targets: [{name: t, static: {host: h, port: 80}}]\n",
            "spec sets mcp and another kind (ai or a2a)",
        ),
        (
            "policies on an mcp backend",
            "spec:\n  mcp:\n    targets: [{name: t, static: {host: h, port: 80}}]\n  policies:\n    auth: {key: k}\n",
            "spec.policies on an MCP backend is not supported yet",
        ),
        (
            "a2a next to ai",
            "spec:\n  ai:\n    provider: {openai: {}}\n  a2a: {host: agent.example, port: 80}\n",
            "spec sets both ai and a2a",
        ),
        (
            "a2a next to mcp",
            "spec:\n  a2a: {host: agent.example, port: 80}\n  mcp: {targets: []}\n",
            "spec sets both a2a and mcp",
        ),
        (
            "an unknown field of a2a",
            "spec:\n  a2a: {host: agent.example, port: 80, path: /x}\n",
            "spec.a2a.path is not supported; spec.a2a takes host and port",
        ),
        (
            "a2a without a port",
            "spec:\n  a2a: {host: agent.example}\n",
            "spec.a2a.port must be 1 to 65535",
        ),
        (
            "a2a with model aliases",
            "spec:\n  a2a: {host: agent.example, port: 80}\n  policies:\n    ai:\n      modelAliases: {a: b}\n",
            "spec.policies.ai applies to LLM backends only",
        ),
        (
            "a2a with another policy",
            "spec:\n  a2a: {host: agent.example, port: 80}\n  policies:\n    http: {requestTimeout: 5s}\n",
            "spec.policies.http is not supported yet; fleetgate honours spec.policies.auth on an a2a backend",
        ),
        (
            "static",
            "spec:\n  static: {host: h, port: 80}\n",
            "spec.static is not supported yet",
        ),
        (
            "another policy",
            "spec:\n  ai:\n    provider:\n      openai: {}\n  policies:\n    http: {requestTimeout: 5s}\n",
            "spec.policies.http is not supported yet",
        ),
        (
            "an ai policy other than modelAliases",
            "spec:\n  ai:\n    provider:\n      openai: {}\n  policies:\n    ai:\n      modelAliases: {fast: m}\n      promptGuard: {request: []}\n",
            "spec.policies.ai.promptGuard is not supported yet; fleetgate honours spec.policies.ai.modelAliases only",
        ),
        (
            "a wildcard model alias",
            "spec:\n  ai:\n    provider:\n      openai: {}\n  policies:\n    ai:\n      modelAliases: {\"gpt-*\": gpt-4o}\n",
            "spec.policies.ai.modelAliases key \"gpt-*\" is a wildcard pattern",
        ),
        (
            "a wildcard model alias on a groups backend",
            "spec:\n  ai:\n    groups:\n    - providers: [{name: a, openai: {}}]\n  policies:\n    ai:\n      modelAliases: {\"*\": m}\n",
            "spec.policies.ai.modelAliases key \"*\" is a wildcard pattern",
        ),
        (
            "openai moderation",
            "spec:\n  ai:\n    provider:\n      openai: {moderation: {model: m}}\n",
            "spec.ai.provider.openai.moderation is not supported yet",
        ),
        (
            "an unknown spec field",
            "spec:\n  ai:\n    provider:\n      openai: {}\n  future: true\n",
            "spec.future is not supported",
        ),
        ("no kind", "spec: {}\n", "spec sets no backend kind"),
        (
            "no provider",
            "spec:\n  ai: {}\n",
            "spec.ai sets no provider",
        ),
        (
            "no provider kind",
            "spec:\n  ai:\n    provider: {host: h, port: 1}\n",
            "names no provider kind",
        ),
        (
            "path and pathPrefix",
            "spec:\n  ai:\n    provider:\n      openai: {}\n      path: /a\n      pathPrefix: /b\n",
            "both path and pathPrefix",
        ),
    ];
    for (name, yaml, want) in cases {
        let b = translate_one(yaml);
        let p = b.problem.unwrap_or_else(|| panic!("{name}: no problem"));
        assert_eq!(p.reason, "UnsupportedValue", "{name}");
        assert!(p.message.contains(want), "{name}: {}", p.message);
        assert!(
            b.endpoints.is_empty()
                && b.auth.is_none()
                && b.groups.is_empty()
                && b.model_aliases.is_empty(),
            "{name}"
        );
    }
}

#[test]
fn model_aliases_travel_for_a_provider_and_for_groups() {
    let one = translate_one(
        "spec:\n  ai:\n    provider:\n      host: api.openai.com\n      openai: {}\n  policies:\n    ai:\n      modelAliases: {fast: gpt-4o-mini, smart: gpt-4o}\n",
    );
    assert!(one.problem.is_none(), "{:?}", one.problem);
    assert_eq!(
        one.model_aliases,
        std::collections::HashMap::from([
            ("fast".to_string(), "gpt-4o-mini".to_string()),
            ("smart".to_string(), "gpt-4o".to_string()),
        ])
    );
    let groups = translate_one(
        "spec:\n  ai:\n    groups:\n    - providers: [{name: a, host: api.openai.com, openai: {}}]\n  policies:\n    ai:\n      modelAliases: {fast: gpt-4o-mini}\n",
    );
    assert!(groups.problem.is_none(), "{:?}", groups.problem);
    assert_eq!(groups.groups.len(), 1);
    assert_eq!(
        groups.model_aliases.get("fast").map(String::as_str),
        Some("gpt-4o-mini")
    );
    // An empty map and no policies.ai alike: no aliases.
    let none = translate_one(
        "spec:\n  ai:\n    provider:\n      host: api.openai.com\n      openai: {}\n  policies:\n    ai: {modelAliases: {}}\n",
    );
    assert!(none.problem.is_none() && none.model_aliases.is_empty());
}

#[test]
fn resolution_problems_reach_the_object() {
    let missing_service = translate_one(
        "spec:\n  ai:\n    provider:\n      host: gone.llm.svc.cluster.local\n      port: 8080\n      openai: {}\n",
    );
    let p = missing_service.problem.unwrap();
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message.contains("Service llm/gone not found"),
        "{}",
        p.message
    );

    let missing_key = translate_one(
        "spec:\n  ai:\n    provider:\n      openai: {}\n  policies:\n    auth:\n      secretRef: {name: llm-secret, key: apiKey}\n",
    );
    let p = missing_key.problem.unwrap();
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message
            .contains("Secret agentgateway-system/llm-secret has no key apiKey"),
        "{}",
        p.message
    );
}

#[test]
fn every_backend_is_sent_sorted_and_one_without_a_name_is_skipped() {
    let mut a = backend(TUTORIAL);
    a.metadata = meta(Some("zeta"), "a");
    let mut b = backend(TUTORIAL);
    b.metadata = meta(Some("alpha"), "b");
    let mut nameless = backend(TUTORIAL);
    nameless.metadata.name = None;
    let st = state(vec![a, b, nameless]);
    let index = Index::new(&st, EndpointMode::Node);
    let refs: Vec<_> = ai_backend_objects(&st.ai_backends, &index)
        .into_iter()
        .filter_map(|o| o.r#ref.map(|r| (r.namespace, r.name)))
        .collect();
    assert_eq!(
        refs,
        [("alpha".into(), "b".into()), ("zeta".into(), "a".into())]
    );
}

const GROUPS: &str = r#"spec:
  ai:
    groups:
    - providers:
      - name: local
        host: llama-cpp.llm.svc.cluster.local
        port: 8080
        openai: {model: gemma}
        policies:
          auth: {key: " sk-own "}
      - name: gone
        host: gone.llm.svc
        port: 8080
        openai: {}
    - providers:
      - name: cloud
        host: api.anthropic.com
        anthropic: {model: claude}
        pathPrefix: /v1
  policies:
    auth:
      secretRef:
        name: llm-secret
"#;

/// `spec.ai.groups`: every provider resolved like `spec.ai.provider`, with its own auth or the
/// backend's; one whose Service is missing carries its own problem, the others still serve.
#[test]
fn groups_are_sent_in_order_each_provider_resolved_with_its_own_or_the_backends_key() {
    let b = translate_one(GROUPS);
    assert_eq!(b.problem, None);
    assert_eq!(
        (b.provider.is_none(), b.host.as_str(), b.auth.is_none()),
        (true, "", true),
        "a groups backend leaves the single-provider fields unset"
    );
    let names: Vec<Vec<&str>> = b
        .groups
        .iter()
        .map(|g| g.providers.iter().map(|p| p.name.as_str()).collect())
        .collect();
    assert_eq!(names, [vec!["local", "gone"], vec!["cloud"]]);
    let local = &b.groups[0].providers[0];
    assert_eq!(local.problem, None);
    assert_eq!(
        local.provider,
        Some(ai_group_provider::Provider::Openai(pb::OpenAiProvider {
            model: Some("gemma".into())
        }))
    );
    assert_eq!(
        (local.host.as_str(), local.port),
        ("llama-cpp.llm.svc.cluster.local", 8080)
    );
    assert_eq!(
        local.endpoints,
        [pb::Endpoint {
            address: "127.0.1.1".into(),
            port: 31080,
            ready: true
        }]
    );
    assert_eq!(
        local.auth.as_ref().map(|a| a.key.as_str()),
        Some("sk-own"),
        "the provider's own policies.auth wins"
    );
    let gone = &b.groups[0].providers[1];
    let p = gone
        .problem
        .as_ref()
        .expect("the missing Service is this provider's problem");
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message.starts_with(
            "spec.ai.groups[0].providers[1].host gone.llm.svc: Service llm/gone not found"
        ),
        "{}",
        p.message
    );
    let cloud = &b.groups[1].providers[0];
    assert_eq!(cloud.problem, None);
    assert!(
        cloud.endpoints.is_empty(),
        "external: the hub's egress list decides"
    );
    assert_eq!(cloud.path_prefix.as_deref(), Some("/v1"));
    assert_eq!(
        cloud.auth.as_ref().map(|a| a.key.as_str()),
        Some(KEY),
        "no policies of its own: the backend's key"
    );
    assert!(!format!("{b:?}").contains("sk-own") && !format!("{b:?}").contains(KEY));
}

#[test]
fn a_group_providers_own_missing_secret_names_its_field() {
    let b = translate_one(
        "spec:\n  ai:\n    groups:\n    - providers:\n      - {name: a, host: api.openai.com, openai: {}, policies: {auth: {secretRef: {name: nope}}}}\n",
    );
    let p = b.groups[0].providers[0].problem.clone().unwrap();
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message.starts_with(
            "spec.ai.groups[0].providers[0].policies.auth.secretRef names Secret agentgateway-system/nope"
        ),
        "{}",
        p.message
    );
}

/// `spec.a2a{host, port}`: a Service of the cluster is resolved into its endpoints and the
/// backend's key read, like a provider's; an external host travels without endpoints; a
/// Service that does not exist is BackendNotFound naming `spec.a2a.host`.
#[test]
fn an_a2a_agent_is_sent_with_its_endpoints_and_key() {
    let b = translate_one(
        "spec:\n  a2a:\n    host: llama-cpp.llm.svc.cluster.local\n    port: 8080\n  policies:\n    auth:\n      secretRef: {name: llm-secret}\n",
    );
    assert_eq!(b.provider, Some(ai_backend::Provider::A2a(pb::A2aAgent {})));
    assert_eq!(
        (b.host.as_str(), b.port),
        ("llama-cpp.llm.svc.cluster.local", 8080)
    );
    assert_eq!(
        b.endpoints,
        vec![pb::Endpoint {
            address: "127.0.1.1".into(),
            port: 31080,
            ready: true,
        }]
    );
    assert_eq!(b.auth.as_ref().map(|a| a.key.as_str()), Some(KEY));
    assert_eq!(b.problem, None);
    assert!(b.groups.is_empty() && b.model_aliases.is_empty());

    let external = translate_one("spec:\n  a2a: {host: agents.example.com, port: 443}\n");
    assert!(external.endpoints.is_empty() && external.problem.is_none());
    assert_eq!(external.auth, None);

    let missing = translate_one("spec:\n  a2a: {host: gone.llm.svc, port: 80}\n");
    let p = missing.problem.expect("a problem");
    assert_eq!(p.reason, "BackendNotFound");
    assert!(
        p.message.starts_with("spec.a2a.host gone.llm.svc"),
        "{}",
        p.message
    );
}
