//! The snapshot's AI part -> the wire (`fleetgate.aigateway.v1`): one [`AiTenant`] becomes one
//! `TenantConfig`, each route id a `Backend`. Pure; the only place the hub builds these
//! messages, and the only place a provider key leaves the model (into `BackendAuth.key`).

use fleetgate_proto::aigateway::v1 as pb;

use crate::model::ai::{
    AiAuth, AiBudget, AiProvider, AiRoute, AiRouteProvider, AiRouteTarget, AiTenant, AiUpstream,
    McpSpec, VirtualKey,
};

/// One tenant's configuration as the AI gateways receive it, at `version`.
pub fn tenant_config(tenant: &str, ai: &AiTenant, version: u64) -> pb::TenantConfig {
    pb::TenantConfig {
        tenant: tenant.to_string(),
        version,
        // 0: the gateway's default.
        max_concurrency: ai.max_concurrency.unwrap_or(0),
        routes: ai
            .routes
            .iter()
            .map(|(id, route)| (id.clone(), backend(route)))
            .collect(),
        budget: ai.budget.as_ref().map(budget),
        virtual_keys: ai.virtual_keys.values().map(virtual_key).collect(),
        // Set by the versioner, which holds the secrets (`super::version`).
        mcp_session_keys: Vec::new(),
    }
}

/// `spec.mcp` -> the wire.
fn mcp_backend(m: &McpSpec) -> pb::McpBackend {
    pb::McpBackend {
        targets: m
            .targets
            .iter()
            .map(|t| pb::McpTarget {
                name: t.name.clone(),
                host: t.host.clone(),
                port: u32::from(t.port),
                path: t.path.clone(),
                protocol: t.protocol.clone(),
                endpoints: match &t.upstream {
                    AiUpstream::Cluster(e) => e
                        .iter()
                        .map(|e| pb::Address {
                            ip: e.ip().to_string(),
                            port: u32::from(e.port()),
                        })
                        .collect(),
                    AiUpstream::External => Vec::new(),
                },
            })
            .collect(),
        failure_mode: m.failure_mode.clone(),
        prefix_mode: m.prefix_mode.clone(),
        session_routing: m.session_routing.clone(),
        authentication: m.authentication.as_ref().map(|a| pb::McpAuthentication {
            issuer: a.issuer.clone(),
            audiences: a.audiences.clone(),
            jwks: a.jwks.clone(),
            mode: a.mode.clone(),
        }),
        authorization: m.authorization.as_ref().map(|a| pb::McpAuthorization {
            action: a.action.clone(),
            match_expressions: a.match_expressions.clone(),
        }),
    }
}

/// A budget -> the wire (`0`: that measure is not limited).
pub fn budget(b: &AiBudget) -> pb::Budget {
    pb::Budget {
        requests: b.requests.unwrap_or(0),
        tokens: b.tokens.unwrap_or(0),
        window_seconds: b.window_seconds,
    }
}

/// A virtual key -> the wire: its id, the hash of the key, the routes it opens, its budget.
pub fn virtual_key(k: &VirtualKey) -> pb::VirtualKey {
    pb::VirtualKey {
        id: k.id.clone(),
        sha256: k.sha256.to_vec(),
        routes: k.routes.clone(),
        budget: k.budget.as_ref().map(budget),
    }
}

/// One AI route -> a `Backend` of kind `ai` (`ai.provider`: the key in `policies.auth`) or
/// `groups` (`ai.groups`: each provider with its own key, none in `policies.auth`).
pub fn backend(route: &AiRoute) -> pb::Backend {
    let (kind, auth) = match &route.target {
        AiRouteTarget::Provider(p) if p.provider == AiProvider::A2a => {
            (pb::backend::Kind::A2a(a2a_backend(p)), auth(&p.auth))
        }
        AiRouteTarget::Provider(p) => (pb::backend::Kind::Ai(ai_backend(p)), auth(&p.auth)),
        AiRouteTarget::Mcp(m) => (pb::backend::Kind::Mcp(mcp_backend(m)), None),
        AiRouteTarget::Groups(groups) => (
            pb::backend::Kind::Groups(pb::AiGroups {
                groups: groups
                    .iter()
                    .map(|providers| pb::AiGroup {
                        providers: providers
                            .iter()
                            .map(|p| pb::AiGroupProvider {
                                name: p.name.clone(),
                                backend: Some(ai_backend(p)),
                                auth: auth(&p.auth),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            None,
        ),
    };
    pb::Backend {
        kind: Some(kind),
        policies: Some(pb::Policies {
            auth,
            // The gateway's default; a per-backend timeout comes with agentgateway's policies.
            request_timeout_ms: 0,
            model_aliases: route
                .model_aliases
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
    }
}

fn auth(a: &AiAuth) -> Option<pb::BackendAuth> {
    match a {
        AiAuth::None => None,
        AiAuth::Key(key) => Some(pb::BackendAuth {
            key: key.0.clone(),
            passthrough: false,
        }),
        AiAuth::Passthrough => Some(pb::BackendAuth {
            key: String::new(),
            passthrough: true,
        }),
    }
}

/// One provider -> where the gateway reaches it.
fn ai_backend(p: &AiRouteProvider) -> pb::AiBackend {
    let provider = match &p.provider {
        AiProvider::OpenAi { model } => Some(pb::ai_backend::Provider::Openai(pb::OpenAi {
            model: model.clone(),
        })),
        AiProvider::Anthropic { model } => {
            Some(pb::ai_backend::Provider::Anthropic(pb::Anthropic {
                model: model.clone(),
            }))
        }
        AiProvider::Gemini { model } => Some(pb::ai_backend::Provider::Gemini(pb::Gemini {
            model: model.clone(),
        })),
        // An agent is sent as an `A2aBackend` ([`a2a_backend`]); admission keeps it out of
        // groups, and a gateway refuses a provider without a kind, naming it.
        AiProvider::A2a => None,
    };
    pb::AiBackend {
        provider,
        host: p.host.clone(),
        port: u32::from(p.port),
        path: p.path.clone(),
        path_prefix: p.path_prefix.clone(),
        endpoints: addresses(p),
        tls: p.tls,
    }
}

/// An A2A agent -> where the gateway reaches it.
fn a2a_backend(p: &AiRouteProvider) -> pb::A2aBackend {
    pb::A2aBackend {
        host: p.host.clone(),
        port: u32::from(p.port),
        endpoints: addresses(p),
        tls: p.tls,
    }
}

fn addresses(p: &AiRouteProvider) -> Vec<pb::Address> {
    p.endpoints
        .iter()
        .map(|e| pb::Address {
            ip: e.ip().to_string(),
            port: u32::from(e.port()),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::ai::ProviderKey;
    use crate::model::snapshot::SourceObject;
    use crate::model::{ClusterKey, Kind, ObjectKey};

    /// An AgentgatewayBackend's source. The model has no kind of its own for it yet (admission
    /// of AgentgatewayBackend adds one); the AI config stream never looks at the kind.
    pub(crate) fn source(tenant: &str, name: &str) -> SourceObject {
        SourceObject {
            cluster: ClusterKey {
                tenant: tenant.into(),
                cluster: "c1".into(),
            },
            object: ObjectKey {
                kind: Kind::HttpRoute,
                namespace: "llm".into(),
                name: name.into(),
            },
        }
    }

    pub(crate) fn provider(name: &str, port: u16, auth: AiAuth) -> AiRouteProvider {
        AiRouteProvider {
            tls: false,
            name: name.into(),
            provider: AiProvider::OpenAi {
                model: Some("tiny".into()),
            },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port,
            path: None,
            path_prefix: Some("/api/v1".into()),
            endpoints: vec![
                "127.0.1.10:8080".parse().unwrap(),
                "[fd00::7]:8081".parse().unwrap(),
            ],
            auth,
        }
    }

    pub(crate) fn route(tenant: &str, name: &str, port: u16, auth: AiAuth) -> AiRoute {
        AiRoute {
            model_aliases: Default::default(),
            target: AiRouteTarget::Provider(provider("", port, auth)),
            source: source(tenant, name),
        }
    }

    /// An MCP route reaches the gateway as an `mcp` backend whose targets carry their endpoints;
    /// its tenant gets a session key of its own (another tenant's differs), a tenant without
    /// an MCP route none; and the gateway validates what arrives.
    #[test]
    fn mcp_routes_become_mcp_backends_and_their_tenants_get_their_own_session_keys() {
        use crate::model::ai::McpTarget;
        let mut r = route("a", "tools", 8080, AiAuth::None);
        r.target = AiRouteTarget::Mcp(McpSpec {
            targets: vec![
                McpTarget {
                    name: "alpha".into(),
                    host: "alpha.tools.svc.cluster.local".into(),
                    port: 8080,
                    path: Some("/mcp".into()),
                    protocol: "StreamableHTTP".into(),
                    upstream: AiUpstream::Cluster(vec!["127.0.1.10:8080".parse().unwrap()]),
                },
                McpTarget {
                    name: "beta".into(),
                    host: "mcp.models.example".into(),
                    port: 443,
                    path: None,
                    protocol: "SSE".into(),
                    upstream: AiUpstream::External,
                },
            ],
            failure_mode: "FailOpen".into(),
            prefix_mode: "Always".into(),
            session_routing: "Stateful".into(),
            authentication: Some(crate::model::ai::McpAuthentication {
                issuer: "https://idp.a.example".into(),
                audiences: vec!["tools".into()],
                jwks: format!(
                    r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{0}","y":"{0}"}}]}}"#,
                    "A".repeat(43)
                ),
                mode: "Strict".into(),
            }),
            authorization: Some(crate::model::ai::McpAuthorization {
                action: "Allow".into(),
                match_expressions: vec![r#"mcp.tool.name == "add""#.into()],
            }),
            accept_tools: vec![],
        });
        let b = backend(&r);
        let Some(pb::backend::Kind::Mcp(m)) = &b.kind else {
            panic!("an mcp backend expected: {b:?}")
        };
        assert_eq!(m.targets[0].endpoints[0].ip, "127.0.1.10");
        assert!(m.targets[1].endpoints.is_empty());
        assert_eq!(
            (m.failure_mode.as_str(), m.prefix_mode.as_str()),
            ("FailOpen", "Always")
        );
        let tenant = AiTenant {
            routes: [("c1/default/tools".to_string(), r)].into(),
            ..Default::default()
        };
        let plain = AiTenant {
            routes: [("c1/llm/x".to_string(), route("a", "x", 1, AiAuth::None))].into(),
            ..Default::default()
        };
        let snapshot = crate::model::ai::AiSnapshot {
            tenants: [
                ("a".to_string(), tenant.clone()),
                ("b".to_string(), tenant),
                ("c".to_string(), plain),
            ]
            .into(),
        };
        let published =
            super::super::version::Versioner::default().publish(&Default::default(), &snapshot, 1);
        let config = |t: &str| published.tenants[t].config.clone();
        let (ka, kb) = (config("a").mcp_session_keys, config("b").mcp_session_keys);
        assert_eq!(ka.len(), 1);
        assert_eq!(ka[0].key.len(), 32);
        assert_eq!(ka[0].id, kb[0].id, "one ring of secrets");
        assert_ne!(ka[0].key, kb[0].key, "tenants never share a key");
        assert!(
            config("c").mcp_session_keys.is_empty(),
            "no MCP route, no key"
        );
        let config = config("a");
        assert!(
            format!("{config:?}").contains("key: \"<redacted>\""),
            "{config:?}"
        );
        let raw = fleetgate_ai_gateway::source::grpc::raw_tenant(&config).unwrap();
        let t = raw.validate("a", 1).unwrap();
        assert_eq!(
            t.mcp_session_keys.as_ref().map(|r| r.current_id()),
            Some(ka[0].id)
        );
        let fleetgate_ai_gateway::config::BackendKind::Mcp(m) = &t.routes["c1/default/tools"].kind
        else {
            panic!("an MCP backend expected")
        };
        let authn = m.authentication.as_ref().expect("authentication arrives");
        assert_eq!(
            (
                authn.issuer.as_str(),
                authn.audiences.as_slice(),
                authn.keys.len()
            ),
            ("https://idp.a.example", &["tools".to_string()][..], 1)
        );
        assert_eq!(m.authorization.as_ref().map(|a| a.rules.len()), Some(1));
    }

    /// An A2A agent becomes an `A2aBackend` with its endpoints and its key in `policies.auth`.
    #[test]
    fn an_a2a_agent_becomes_an_a2a_backend_with_its_key() {
        let mut r = route(
            "a",
            "agent",
            9999,
            AiAuth::Key(ProviderKey("k-agent".into())),
        );
        if let AiRouteTarget::Provider(p) = &mut r.target {
            p.provider = AiProvider::A2a;
            p.path_prefix = None;
        }
        let b = backend(&r);
        let Some(pb::backend::Kind::A2a(a)) = &b.kind else {
            panic!("an A2A backend expected: {:?}", b.kind)
        };
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("llama-cpp.llm.svc.cluster.local", 9999, false)
        );
        assert_eq!(
            a.endpoints,
            [
                pb::Address {
                    ip: "127.0.1.10".into(),
                    port: 8080
                },
                pb::Address {
                    ip: "fd00::7".into(),
                    port: 8081
                }
            ]
        );
        let auth = b.policies.and_then(|p| p.auth).expect("the agent's key");
        assert_eq!(auth.key, "k-agent");
    }

    /// `spec.policies.ai.modelAliases` reach the gateway in the backend's policies, for one
    /// provider and for groups alike; none: an empty map.
    #[test]
    fn model_aliases_reach_the_backends_policies() {
        let mut r = route("a", "aliased", 8080, AiAuth::None);
        r.model_aliases = [
            ("fast".to_string(), "gpt-4o-mini".to_string()),
            ("smart".to_string(), "gpt-4o".to_string()),
        ]
        .into();
        let aliases = |r: &AiRoute| backend(r).policies.map(|p| p.model_aliases);
        let want: std::collections::HashMap<String, String> =
            r.model_aliases.clone().into_iter().collect();
        assert_eq!(aliases(&r), Some(want.clone()));
        r.target = AiRouteTarget::Groups(vec![vec![provider("a", 8080, AiAuth::None)]]);
        assert_eq!(aliases(&r), Some(want));
        let plain = route("a", "plain", 8080, AiAuth::None);
        assert_eq!(aliases(&plain), Some(Default::default()));
    }

    /// `ai.groups`: a `groups` backend, the groups in order, each provider with its own key
    /// and no key in the backend's policies.
    #[test]
    fn groups_become_a_groups_backend_with_a_key_per_provider() {
        let mut cloud = provider("cloud", 443, AiAuth::Key(ProviderKey("sk-cloud".into())));
        cloud.host = "api.openai.com".into();
        cloud.endpoints = vec![];
        let route = AiRoute {
            model_aliases: Default::default(),
            target: AiRouteTarget::Groups(vec![
                vec![
                    provider("a", 8080, AiAuth::Key(ProviderKey("sk-a".into()))),
                    provider("b", 8080, AiAuth::Passthrough),
                ],
                vec![cloud],
            ]),
            source: source("t", "failover"),
        };
        let b = backend(&route);
        assert_eq!(b.policies.as_ref().and_then(|p| p.auth.clone()), None);
        let Some(pb::backend::Kind::Groups(g)) = &b.kind else {
            panic!("groups expected: {b:?}")
        };
        /// (name, host, port, (key, passthrough)) of one provider.
        type Seen = (String, String, u32, Option<(String, bool)>);
        let got: Vec<Vec<Seen>> = g
            .groups
            .iter()
            .map(|g| {
                g.providers
                    .iter()
                    .map(|p| {
                        let ai = p.backend.clone().unwrap();
                        (
                            p.name.clone(),
                            ai.host,
                            ai.port,
                            p.auth.as_ref().map(|a| (a.key.clone(), a.passthrough)),
                        )
                    })
                    .collect()
            })
            .collect();
        let host = "llama-cpp.llm.svc.cluster.local".to_string();
        assert_eq!(
            got,
            vec![
                vec![
                    (
                        "a".to_string(),
                        host.clone(),
                        8080,
                        Some(("sk-a".to_string(), false))
                    ),
                    ("b".to_string(), host, 8080, Some((String::new(), true))),
                ],
                vec![(
                    "cloud".to_string(),
                    "api.openai.com".to_string(),
                    443,
                    Some(("sk-cloud".to_string(), false))
                )],
            ]
        );
        assert_eq!(
            g.groups[0].providers[0]
                .backend
                .as_ref()
                .unwrap()
                .endpoints
                .len(),
            2
        );
        assert!(!format!("{b:?}").contains("sk-"), "Debug redacts every key");
    }

    #[test]
    fn routes_become_backends_with_endpoints_and_auth() {
        let tenant = AiTenant {
            budget: None,
            max_concurrency: Some(7),
            virtual_keys: Default::default(),
            routes: [
                (
                    "c1/llm/keyed".to_string(),
                    route("a", "keyed", 8080, AiAuth::Key(ProviderKey("sk-a".into()))),
                ),
                (
                    "c1/llm/passed".to_string(),
                    route("a", "passed", 8080, AiAuth::Passthrough),
                ),
                (
                    "c1/llm/open".to_string(),
                    AiRoute {
                        model_aliases: Default::default(),
                        target: AiRouteTarget::Provider(AiRouteProvider {
                            endpoints: vec![],
                            tls: true,
                            ..provider("", 443, AiAuth::None)
                        }),
                        source: source("a", "open"),
                    },
                ),
            ]
            .into(),
        };
        let c = tenant_config("a", &tenant, 42);
        assert_eq!(
            (c.tenant.as_str(), c.version, c.max_concurrency),
            ("a", 42, 7)
        );
        let mut ids: Vec<&String> = c.routes.keys().collect();
        ids.sort();
        assert_eq!(ids, ["c1/llm/keyed", "c1/llm/open", "c1/llm/passed"]);
        let ai = |id: &str| match &c.routes[id].kind {
            Some(pb::backend::Kind::Ai(ai)) => ai.clone(),
            other => panic!("{id}: not one provider: {other:?}"),
        };
        let auth = |id: &str| c.routes[id].policies.as_ref().and_then(|p| p.auth.clone());
        assert!(ai("c1/llm/open").tls && !ai("c1/llm/keyed").tls);
        let keyed = ai("c1/llm/keyed");
        assert_eq!(
            keyed.provider,
            Some(pb::ai_backend::Provider::Openai(pb::OpenAi {
                model: Some("tiny".into())
            }))
        );
        assert_eq!(
            (keyed.host.as_str(), keyed.port),
            ("llama-cpp.llm.svc.cluster.local", 8080)
        );
        assert_eq!(keyed.path_prefix.as_deref(), Some("/api/v1"));
        assert_eq!(keyed.path, None);
        assert_eq!(
            keyed.endpoints,
            [
                pb::Address {
                    ip: "127.0.1.10".into(),
                    port: 8080
                },
                pb::Address {
                    ip: "fd00::7".into(),
                    port: 8081
                }
            ]
        );
        let k = auth("c1/llm/keyed").unwrap();
        assert_eq!((k.key.as_str(), k.passthrough), ("sk-a", false));
        let p = auth("c1/llm/passed").unwrap();
        assert_eq!((p.key.as_str(), p.passthrough), ("", true));
        assert_eq!(auth("c1/llm/open"), None);
        assert_eq!(ai("c1/llm/open").port, 443);
        assert!(!format!("{c:?}").contains("sk-a"), "Debug redacts the key");
    }
}
