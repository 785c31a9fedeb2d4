//! fleetgate's wire contracts: the generated Rust for every `.proto` under `proto/fleetgate/`.
//!
//! Where it sits: the boundary. Agents and the hub convert these types into their own model at
//! the edge (agent `translate`, hub `admit`); nothing past admission sees a wire type.

/// `fleetgate.spoke.v1`: the agent <-> hub Sync stream.
pub mod spoke {
    pub mod v1 {
        tonic::include_proto!("fleetgate.spoke.v1");
    }
}

/// `fleetgate.enroll.v1`: bootstrap-token enrollment and certificate renewal of agents.
pub mod enroll {
    pub mod v1 {
        tonic::include_proto!("fleetgate.enroll.v1");
    }
}

/// `fleetgate.aigateway.v1`: the hub -> AI gateway configuration stream.
pub mod aigateway {
    pub mod v1 {
        tonic::include_proto!("fleetgate.aigateway.v1");
    }
}

/// The encoded `FileDescriptorSet` of every `.proto` above, for tools and tests that read messages
/// by reflection (the agent's golden files print intent as proto JSON).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fleetgate_descriptor.bin"));

/// Largest message either side accepts on the Sync stream, in bytes. The agent splits nothing:
/// a cluster whose full state exceeds this is told so in the Nack and must shrink its intent.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

impl std::fmt::Debug for spoke::v1::Certificate {
    /// Redacts the private key: an intent dumped into a log never carries it.
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

impl std::fmt::Debug for enroll::v1::EnrollRequest {
    /// Redacts the bootstrap token: it is a secret until it is used.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("token", &"<redacted>")
            .field("csr_der_len", &self.csr_der.len())
            .finish()
    }
}

impl std::fmt::Debug for aigateway::v1::BackendAuth {
    /// Redacts the provider key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendAuth")
            .field("key", &"<redacted>")
            .field("passthrough", &self.passthrough)
            .finish()
    }
}

impl std::fmt::Debug for aigateway::v1::TenantConfig {
    /// Redacts the MCP session keys (their ids are shown).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("tenant", &self.tenant)
            .field("version", &self.version)
            .field("max_concurrency", &self.max_concurrency)
            .field("routes", &self.routes)
            .field("budget", &self.budget)
            .field("virtual_keys", &self.virtual_keys)
            .field("mcp_session_keys", &self.mcp_session_keys)
            .finish()
    }
}

impl std::fmt::Debug for aigateway::v1::McpSessionKey {
    /// Shows the key's id, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpSessionKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for spoke::v1::AiAuth {
    /// Redacts the provider key: an intent dumped into a log never carries it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiAuth")
            .field("key", &"<redacted>")
            .field("passthrough", &self.passthrough)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ai_backend_debug_never_shows_the_key() {
        use super::aigateway::v1 as ai;
        let backend = ai::Backend {
            kind: Some(ai::backend::Kind::Ai(ai::AiBackend {
                provider: Some(ai::ai_backend::Provider::Openai(ai::OpenAi { model: None })),
                host: "127.0.1.10".into(),
                port: 8080,
                path: None,
                path_prefix: None,
                endpoints: vec![],
                tls: false,
            })),
            policies: Some(ai::Policies {
                auth: Some(ai::BackendAuth {
                    key: "sk-SECRETKEY".into(),
                    passthrough: false,
                }),
                request_timeout_ms: 0,
                model_aliases: Default::default(),
            }),
        };
        let shown = format!("{backend:?} {backend:#?}");
        assert!(!shown.contains("SECRETKEY"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("127.0.1.10"));
    }

    #[test]
    fn tenant_ai_backend_debug_never_shows_the_key() {
        use super::spoke::v1 as s;
        let backend = s::AiBackend {
            host: "llama-cpp.llm.svc.cluster.local".into(),
            auth: Some(s::AiAuth {
                key: "sk-SECRETKEY".into(),
                passthrough: false,
            }),
            ..Default::default()
        };
        let shown = format!("{backend:?} {backend:#?}");
        assert!(!shown.contains("SECRETKEY"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("llama-cpp"));
    }

    #[test]
    fn enroll_request_debug_never_shows_the_token() {
        let r = super::enroll::v1::EnrollRequest {
            token: "fgb1.SECRETTOKEN".into(),
            csr_der: vec![1, 2, 3],
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("SECRETTOKEN"), "{shown}");
    }

    #[test]
    fn certificate_debug_never_shows_the_key() {
        let c = super::spoke::v1::Certificate {
            namespace: "default".into(),
            name: "web-tls".into(),
            cert_chain_pem: b"-----BEGIN CERTIFICATE-----".to_vec(),
            private_key_pem: b"-----BEGIN PRIVATE KEY-----\nSECRETBYTES".to_vec(),
            problem: None,
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRETBYTES") && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
        assert!(shown.contains("web-tls"));
    }

    #[test]
    fn tenant_config_debug_shows_key_ids_never_the_keys() {
        let t = super::aigateway::v1::TenantConfig {
            tenant: "a".into(),
            mcp_session_keys: vec![
                super::aigateway::v1::McpSessionKey {
                    id: 7,
                    key: b"SECRETKEYBYTES-SECRETKEYBYTES-01".to_vec(),
                },
                super::aigateway::v1::McpSessionKey {
                    id: 6,
                    key: b"SECRETKEYBYTES-SECRETKEYBYTES-00".to_vec(),
                },
            ],
            ..Default::default()
        };
        let shown = format!("{t:?} {t:#?}");
        assert!(!shown.contains("SECRETKEYBYTES"), "{shown}");
        assert!(!shown.contains("83, 69, 67"), "bytes as numbers: {shown}");
        assert!(
            shown.contains("id: 7") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
