//! The snapshot's AI part -> the wire (`fleetgate.aigateway.v1`): one [`AiTenant`] becomes one
//! `TenantConfig`, each route id a `Backend`. Pure; the only place the hub builds these
//! messages, and the only place a provider key leaves the model (into `BackendAuth.key`).

use fleetgate_proto::aigateway::v1 as pb;

use crate::model::ai::{AiAuth, AiBudget, AiProvider, AiRoute, AiTenant, VirtualKey};

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

/// One AI route -> a `Backend` of kind `ai`.
pub fn backend(route: &AiRoute) -> pb::Backend {
    let provider = match &route.provider {
        AiProvider::OpenAi { model } => pb::ai_backend::Provider::Openai(pb::OpenAi {
            model: model.clone(),
        }),
        AiProvider::Anthropic { model } => pb::ai_backend::Provider::Anthropic(pb::Anthropic {
            model: model.clone(),
        }),
        AiProvider::Gemini { model } => pb::ai_backend::Provider::Gemini(pb::Gemini {
            model: model.clone(),
        }),
    };
    let auth = match &route.auth {
        AiAuth::None => None,
        AiAuth::Key(key) => Some(pb::BackendAuth {
            key: key.0.clone(),
            passthrough: false,
        }),
        AiAuth::Passthrough => Some(pb::BackendAuth {
            key: String::new(),
            passthrough: true,
        }),
    };
    pb::Backend {
        kind: Some(pb::backend::Kind::Ai(pb::AiBackend {
            provider: Some(provider),
            host: route.host.clone(),
            port: u32::from(route.port),
            path: route.path.clone(),
            path_prefix: route.path_prefix.clone(),
            endpoints: route
                .endpoints
                .iter()
                .map(|e| pb::Address {
                    ip: e.ip().to_string(),
                    port: u32::from(e.port()),
                })
                .collect(),
            tls: route.tls,
        })),
        policies: Some(pb::Policies {
            auth,
            // The gateway's default; a per-backend timeout comes with agentgateway's policies.
            request_timeout_ms: 0,
        }),
    }
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

    pub(crate) fn route(tenant: &str, name: &str, port: u16, auth: AiAuth) -> AiRoute {
        AiRoute {
            tls: false,
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
            source: source(tenant, name),
        }
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
                        endpoints: vec![],
                        tls: true,
                        ..route("a", "open", 443, AiAuth::None)
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
            None => panic!("{id}: no kind"),
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
