//! The hub's configuration stream (`fleetgate.aigateway.v1.AiGatewayConfig/Stream`), gateway
//! side: wire types stop here, converted into the file model's [`RawTenant`] and validated by the
//! same code as a file ([`RawTenant::validate`]).
//!
//! - [`apply_update`]: one `Update` -> the new configuration and one `Ack` with a verdict per
//!   tenant. A refused tenant keeps its previous version; the others are applied.
//! - [`HubSource`]: the [`ConfigSource`] that dials the hub, says Hello, applies Updates and
//!   acknowledges them, reconnecting with backoff. It dials the hub's data-plane port (the one
//!   Envoy's xDS uses, `xdsListen`), plaintext like xDS: that port belongs on loopback or a
//!   private network (docs/security.md); mTLS with the gateway's own identity is not built yet.

use std::collections::BTreeMap;
use std::time::Duration;

use fleetgate_proto::aigateway::v1 as pb;
use futures::future::BoxFuture;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{ConfigSource, SourceError};
use crate::config::mcp::{RawMcp, RawMcpTarget};
use crate::config::mcp_auth::{RawMcpAuthentication, RawMcpAuthorization};
use crate::config::model::{
    RawA2a, RawAi, RawAuth, RawBackend, RawBudget, RawGroup, RawOpenAi, RawPolicies, RawProvider,
    RawProviderPolicies, RawTenant, RawVirtualKey,
};
use crate::config::{ConfigError, Secret};
use crate::publish::ConfigStore;

fn field(at: String, why: &str) -> ConfigError {
    ConfigError::Field {
        at,
        why: why.to_string(),
    }
}

/// The wire form of one tenant -> the file model (validated afterwards).
pub fn raw_tenant(t: &pb::TenantConfig) -> Result<RawTenant, ConfigError> {
    let mut routes = BTreeMap::new();
    for (name, b) in &t.routes {
        let at = format!("tenants.{}.routes.{name}", t.tenant);
        let a2a = match &b.kind {
            Some(pb::backend::Kind::A2a(a)) => Some(raw_a2a(&format!("{at}.a2a"), a)?),
            _ => None,
        };
        let mut mcp = None;
        let ai = match &b.kind {
            None | Some(pb::backend::Kind::A2a(_)) => None,
            Some(pb::backend::Kind::Mcp(m)) => {
                mcp = Some(raw_mcp(&format!("{at}.mcp"), m)?);
                None
            }
            Some(pb::backend::Kind::Ai(ai)) => Some(RawAi {
                groups: None,
                provider: Some(raw_provider(&format!("{at}.ai.provider"), None, ai)?),
            }),
            Some(pb::backend::Kind::Groups(groups)) => {
                let mut raw = Vec::with_capacity(groups.groups.len());
                for (g, group) in groups.groups.iter().enumerate() {
                    let mut providers = Vec::with_capacity(group.providers.len());
                    for (i, p) in group.providers.iter().enumerate() {
                        let at_p = format!("{at}.ai.groups[{g}].providers[{i}]");
                        let Some(backend) = &p.backend else {
                            return Err(field(at_p, "no backend: where the provider is"));
                        };
                        let mut provider = raw_provider(&at_p, Some(&p.name), backend)?;
                        provider.policies = p
                            .auth
                            .as_ref()
                            .and_then(raw_auth)
                            .map(|auth| RawProviderPolicies { auth: Some(auth) });
                        providers.push(provider);
                    }
                    raw.push(RawGroup { providers });
                }
                Some(RawAi {
                    provider: None,
                    groups: Some(raw),
                })
            }
        };
        let policies = b.policies.as_ref().map(|p| RawPolicies {
            auth: p.auth.as_ref().and_then(raw_auth),
            request_timeout_ms: Some(p.request_timeout_ms).filter(|ms| *ms > 0),
            model_aliases: p
                .model_aliases
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
        routes.insert(
            name.clone(),
            RawBackend {
                ai,
                mcp,
                a2a,
                policies: policies.unwrap_or_default(),
            },
        );
    }
    Ok(RawTenant {
        version: Some(t.version),
        max_concurrency: Some(t.max_concurrency).filter(|c| *c > 0),
        routes,
        budget: t.budget.as_ref().map(|b| RawBudget {
            requests: Some(b.requests).filter(|n| *n > 0),
            tokens: Some(b.tokens).filter(|n| *n > 0),
            window_seconds: b.window_seconds,
        }),
        virtual_keys: t
            .virtual_keys
            .iter()
            .map(|k| {
                let budget = k.budget.as_ref().map(|b| RawBudget {
                    requests: Some(b.requests).filter(|n| *n > 0),
                    tokens: Some(b.tokens).filter(|n| *n > 0),
                    window_seconds: b.window_seconds,
                });
                // Validation refuses a hash that is not 32 bytes (then not 64 hex digits).
                let sha256 = k.sha256.iter().map(|b| format!("{b:02x}")).collect();
                (
                    k.id.clone(),
                    RawVirtualKey {
                        sha256,
                        routes: k.routes.clone(),
                        budget,
                    },
                )
            })
            .collect(),
        mcp_session_key: None,
        mcp_session_keys: t
            .mcp_session_keys
            .iter()
            .map(|k| crate::config::mcp::RawSessionKey {
                id: k.id,
                key: Secret::new(k.key.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            })
            .collect(),
    })
}

/// An MCP backend on the wire -> the file model (empty strings: the defaults).
fn raw_mcp(at: &str, m: &pb::McpBackend) -> Result<RawMcp, ConfigError> {
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let mut targets = Vec::with_capacity(m.targets.len());
    for (i, t) in m.targets.iter().enumerate() {
        let at = format!("{at}.targets[{i}]");
        let Ok(port) = u16::try_from(t.port) else {
            return Err(field(format!("{at}.port"), "above 65535"));
        };
        targets.push(RawMcpTarget {
            name: t.name.clone(),
            host: t.host.clone(),
            port,
            path: t.path.clone(),
            protocol: some(&t.protocol),
            endpoints: raw_endpoints(&at, &t.endpoints)?,
        });
    }
    Ok(RawMcp {
        targets,
        failure_mode: some(&m.failure_mode),
        prefix_mode: some(&m.prefix_mode),
        session_routing: some(&m.session_routing),
        authentication: m.authentication.as_ref().map(|a| RawMcpAuthentication {
            issuer: a.issuer.clone(),
            audiences: a.audiences.clone(),
            jwks: a.jwks.clone(),
            mode: some(&a.mode),
        }),
        authorization: m.authorization.as_ref().map(|a| RawMcpAuthorization {
            action: some(&a.action),
            match_expressions: a.match_expressions.clone(),
        }),
    })
}

/// An auth on the wire -> the file model: an empty key is no key; key and passthrough together
/// are refused by validation.
fn raw_auth(a: &pb::BackendAuth) -> Option<RawAuth> {
    (!a.key.is_empty() || a.passthrough).then(|| RawAuth {
        key: Some(a.key.clone())
            .filter(|k| !k.is_empty())
            .map(Secret::new),
        passthrough: a.passthrough,
    })
}

/// One provider on the wire (`ai.provider`, or a provider of `ai.groups` with its `name`), at
/// `at` -> the file model.
fn raw_provider(
    at: &str,
    name: Option<&str>,
    ai: &pb::AiBackend,
) -> Result<RawProvider, ConfigError> {
    let port = match u16::try_from(ai.port) {
        Ok(p) => p,
        Err(_) => return Err(field(format!("{at}.port"), "above 65535")),
    };
    let endpoints = raw_endpoints(at, &ai.endpoints)?;
    let model = |kind: &str| match (&ai.provider, kind) {
        (Some(pb::ai_backend::Provider::Openai(o)), "openai") => Some(RawOpenAi {
            model: o.model.clone(),
        }),
        (Some(pb::ai_backend::Provider::Anthropic(a)), "anthropic") => Some(RawOpenAi {
            model: a.model.clone(),
        }),
        (Some(pb::ai_backend::Provider::Gemini(g)), "gemini") => Some(RawOpenAi {
            model: g.model.clone(),
        }),
        _ => None,
    };
    Ok(RawProvider {
        tls: ai.tls,
        name: name.map(str::to_string),
        openai: model("openai"),
        anthropic: model("anthropic"),
        gemini: model("gemini"),
        host: Some(ai.host.clone()).filter(|h| !h.is_empty()),
        port: Some(port),
        path: ai.path.clone(),
        path_prefix: ai.path_prefix.clone(),
        endpoints,
        policies: None,
    })
}

/// Endpoints on the wire, at `at` -> `ip:port` texts (validation refuses port 0 and unusable
/// addresses).
fn raw_endpoints(at: &str, wire: &[pb::Address]) -> Result<Vec<String>, ConfigError> {
    let mut endpoints = Vec::with_capacity(wire.len());
    for (i, e) in wire.iter().enumerate() {
        let at = format!("{at}.endpoints[{i}]");
        let Ok(ip) = e.ip.parse::<std::net::IpAddr>() else {
            return Err(field(
                at,
                &format!("ip {:?} is not an IP address literal", e.ip),
            ));
        };
        let Ok(port) = u16::try_from(e.port) else {
            return Err(field(at, &format!("port {} is above 65535", e.port)));
        };
        endpoints.push(std::net::SocketAddr::new(ip, port).to_string());
    }
    Ok(endpoints)
}

/// An A2A agent on the wire, at `at` -> the file model.
fn raw_a2a(at: &str, a: &pb::A2aBackend) -> Result<RawA2a, ConfigError> {
    let Ok(port) = u16::try_from(a.port) else {
        return Err(field(format!("{at}.port"), "above 65535"));
    };
    Ok(RawA2a {
        host: Some(a.host.clone()).filter(|h| !h.is_empty()),
        port: Some(port),
        endpoints: raw_endpoints(at, &a.endpoints)?,
        tls: a.tls,
    })
}

/// Applies one Update to the store (one publish) and returns the Ack.
pub fn apply_update(store: &mut ConfigStore, update: &pb::Update) -> pb::Ack {
    let mut config = store.current().clone();
    let mut statuses = Vec::new();
    if update.full_state {
        let keep: std::collections::HashSet<&str> =
            update.tenants.iter().map(|t| t.tenant.as_str()).collect();
        config
            .tenants
            .retain(|name, _| keep.contains(name.as_str()));
    }
    for name in &update.removed_tenants {
        config.tenants.remove(name);
        statuses.push(pb::TenantStatus {
            tenant: name.clone(),
            version: 0,
            accepted: true,
            reason: String::new(),
        });
    }
    for t in &update.tenants {
        let verdict = raw_tenant(t).and_then(|raw| raw.validate(&t.tenant, t.version));
        let status = match verdict {
            Ok(tenant) => {
                config.tenants.insert(t.tenant.clone(), tenant);
                pb::TenantStatus {
                    tenant: t.tenant.clone(),
                    version: t.version,
                    accepted: true,
                    reason: String::new(),
                }
            }
            Err(e) => {
                tracing::warn!(tenant = %t.tenant, version = t.version, error = %e, "tenant configuration refused");
                pb::TenantStatus {
                    tenant: t.tenant.clone(),
                    version: t.version,
                    accepted: false,
                    reason: e.to_string(),
                }
            }
        };
        statuses.push(status);
    }
    config.version = update.revision;
    store.replace(config);
    pb::Ack {
        revision: update.revision,
        tenants: statuses,
    }
}

/// Dials the hub and follows its stream.
#[derive(Debug, Clone)]
pub struct HubSource {
    /// The hub's data-plane gRPC address, e.g. `http://127.0.0.1:18000`.
    pub endpoint: String,
    pub gateway_id: String,
    pub max_backoff: Duration,
    /// MCP tool pins: reports go to the hub, the hub's pins come back here.
    pub pins: std::sync::Arc<crate::mcp::pins::PinBoard>,
    /// LLM usage counted here, reported to the hub ([`super::usage_report`]); `None`: none.
    pub usage: Option<std::sync::Arc<crate::metrics::usage::AiMetrics>>,
    /// This process's usage counts' id ([`super::usage_report::boot_id`]).
    pub boot_id: String,
}

/// A gateway id: what the hub shows as the replica that serves (or refused) a tenant.
/// 1..=253 bytes of letters, digits and `-._/:`.
pub fn check_gateway_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 253 {
        return Err(format!(
            "gateway id {id:?} must be 1..=253 bytes (the pod name is a good one)"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._/:".contains(&b))
    {
        return Err(format!(
            "gateway id {id:?} may hold only letters, digits and - . _ / :"
        ));
    }
    Ok(())
}

/// `<hostname>/<pid>`: the pod name in Kubernetes, unique among replicas on one machine.
pub fn default_gateway_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| check_gateway_id(h).is_ok())
        .unwrap_or_else(|| "ai-gateway".to_string());
    format!("{host}/{}", std::process::id())
}

impl HubSource {
    /// Checks the hub's address (an `http://` URL: the data-plane port is plaintext) and the
    /// gateway id before anything is dialled, so a typo is an error at start-up rather than
    /// an endless reconnect loop.
    pub fn new(
        endpoint: &str,
        gateway_id: &str,
        max_backoff: Duration,
    ) -> Result<Self, SourceError> {
        let bad = |why: String| SourceError::Hub(why);
        let uri: hyper::Uri = endpoint.parse().map_err(|e| {
            bad(format!(
                "--hub {endpoint:?} is not a URL ({e}); write the hub's data-plane address (its xdsListen), e.g. http://127.0.0.1:18000"
            ))
        })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(bad(format!(
                "--hub {endpoint:?} must be http://<host>:<port> (the hub's data-plane port, xdsListen, is plaintext like xDS; keep it on loopback or a private network)"
            )));
        }
        check_gateway_id(gateway_id).map_err(|e| bad(format!("--gateway-id: {e}")))?;
        Ok(Self {
            endpoint: endpoint.to_string(),
            gateway_id: gateway_id.to_string(),
            max_backoff,
            pins: Default::default(),
            usage: None,
            boot_id: super::usage_report::boot_id(),
        })
    }

    /// The source sharing `pins` with the MCP handler (`Settings::mcp_pins`).
    pub fn with_pins(mut self, pins: std::sync::Arc<crate::mcp::pins::PinBoard>) -> Self {
        self.pins = pins;
        self
    }

    /// The source reporting the LLM usage `metrics` counts to the hub (`Settings::metrics`).
    pub fn with_usage(mut self, metrics: std::sync::Arc<crate::metrics::usage::AiMetrics>) -> Self {
        self.usage = Some(metrics);
        self
    }

    async fn follow(&self, store: &mut ConfigStore) -> Result<(), SourceError> {
        let err = |e: &dyn std::fmt::Display| SourceError::Stream(e.to_string());
        let mut client =
            pb::ai_gateway_config_client::AiGatewayConfigClient::connect(self.endpoint.clone())
                .await
                .map_err(|e| err(&e))?
                // A full state carries every tenant: allow what the hub allows on its streams.
                .max_decoding_message_size(fleetgate_proto::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(fleetgate_proto::MAX_MESSAGE_BYTES);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let serving = store
            .current()
            .tenants
            .iter()
            .map(|(tenant, t)| pb::TenantVersion {
                tenant: tenant.clone(),
                version: t.version,
            })
            .collect();
        let hello = pb::GatewayMessage {
            kind: Some(pb::gateway_message::Kind::Hello(pb::Hello {
                gateway_id: self.gateway_id.clone(),
                gateway_version: env!("CARGO_PKG_VERSION").into(),
                serving,
            })),
        };
        tx.send(hello).await.map_err(|e| err(&e))?;
        let mut inbound = client
            .stream(ReceiverStream::new(rx))
            .await
            .map_err(|e| err(&e))?
            .into_inner();
        // MCP tool pins: what was reported on an earlier stream is sent again.
        self.pins.reconnected();
        // Usage: the first tick is at once (a new stream gets the counts again).
        let mut usage_tick = tokio::time::interval(super::usage_report::REPORT_EVERY);
        usage_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usage_sent: Option<pb::UsageReport> = None;
        loop {
            let msg = tokio::select! {
                msg = inbound.next() => msg,
                _ = usage_tick.tick(), if self.usage.is_some() => {
                    let report = self
                        .usage
                        .as_deref()
                        .and_then(|m| super::usage_report::report(&self.boot_id, m));
                    if let Some(report) = report.filter(|r| usage_sent.as_ref() != Some(r)) {
                        usage_sent = Some(report.clone());
                        let m = pb::GatewayMessage {
                            kind: Some(pb::gateway_message::Kind::Usage(report)),
                        };
                        tx.send(m).await.map_err(|e| err(&e))?;
                    }
                    continue;
                }
                () = self.pins.queued() => {
                    for m in super::mcp_pins::seen_messages(self.pins.drain()) {
                        tx.send(m).await.map_err(|e| err(&e))?;
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            let msg = msg.map_err(|e| err(&e))?;
            match msg.kind {
                Some(pb::hub_message::Kind::Update(update)) => {
                    let ack = apply_update(store, &update);
                    let ack = pb::GatewayMessage {
                        kind: Some(pb::gateway_message::Kind::Ack(ack)),
                    };
                    tx.send(ack).await.map_err(|e| err(&e))?;
                }
                Some(pb::hub_message::Kind::McpPins(pins)) => {
                    super::mcp_pins::apply_pins(&self.pins, &pins);
                }
                None => {}
            }
        }
        Ok(())
    }
}

impl ConfigSource for HubSource {
    fn run(self: Box<Self>, mut store: ConfigStore) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match self.follow(&mut store).await {
                    Ok(()) => {
                        tracing::info!("hub closed the config stream; reconnecting");
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, ?backoff, "hub config stream failed; serving the last configuration");
                    }
                }
                // Jitter: up to a quarter of the backoff, so replicas do not reconnect in step.
                let jitter = Duration::from_millis(
                    u64::from(std::process::id() % 97) * backoff.as_millis() as u64 / 400,
                );
                tokio::time::sleep(backoff + jitter).await;
                backoff = (backoff * 2).min(self.max_backoff);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify::Identity;

    pub(crate) fn tenant(name: &str, version: u64, port: u32, key: &str) -> pb::TenantConfig {
        let backend = pb::Backend {
            kind: Some(pb::backend::Kind::Ai(pb::AiBackend {
                provider: Some(pb::ai_backend::Provider::Openai(pb::OpenAi {
                    model: Some("tiny".into()),
                })),
                host: "127.0.1.10".into(),
                port,
                path: None,
                path_prefix: None,
                endpoints: vec![],
                tls: false,
            })),
            policies: Some(pb::Policies {
                auth: Some(pb::BackendAuth {
                    key: key.into(),
                    passthrough: false,
                }),
                request_timeout_ms: 0,
                model_aliases: Default::default(),
            }),
        };
        pb::TenantConfig {
            tenant: name.into(),
            version,
            max_concurrency: 0,
            routes: [("llm/local-llm".to_string(), backend)].into(),
            budget: None,
            virtual_keys: vec![],
            mcp_session_keys: vec![],
        }
    }

    fn id(t: &str) -> Identity {
        Identity {
            tenant: t.into(),
            route: "llm/local-llm".into(),
        }
    }

    #[test]
    fn updates_are_applied_and_acknowledged_per_tenant() {
        let (mut store, rx) = ConfigStore::new();
        let ack = apply_update(
            &mut store,
            &pb::Update {
                revision: 1,
                full_state: true,
                tenants: vec![tenant("a", 1, 8080, "sk-a"), tenant("b", 1, 8080, "sk-b")],
                removed_tenants: vec![],
            },
        );
        assert_eq!(ack.revision, 1);
        assert!(ack.tenants.iter().all(|t| t.accepted), "{ack:?}");
        assert!(rx.borrow().lookup(&id("a")).is_ok());

        // b's new version is refused (port 0): b keeps version 1, a's update applies.
        let ack = apply_update(
            &mut store,
            &pb::Update {
                revision: 2,
                full_state: false,
                tenants: vec![tenant("a", 2, 9090, "sk-a"), tenant("b", 2, 0, "sk-b")],
                removed_tenants: vec![],
            },
        );
        let b = ack.tenants.iter().find(|t| t.tenant == "b").unwrap();
        assert!(!b.accepted);
        assert!(
            b.reason
                .contains("tenants.b.routes.llm/local-llm.ai.provider.port"),
            "{}",
            b.reason
        );
        assert_eq!(store.current().tenants["a"].version, 2);
        assert_eq!(store.current().tenants["b"].version, 1);
        assert!(!format!("{ack:?}").contains("sk-"), "acks carry no keys");

        // A full state without b drops b.
        apply_update(
            &mut store,
            &pb::Update {
                revision: 3,
                full_state: true,
                tenants: vec![tenant("a", 2, 9090, "sk-a")],
                removed_tenants: vec![],
            },
        );
        assert!(rx.borrow().lookup(&id("b")).is_err());
        assert_eq!(rx.borrow().version(), 3);
    }

    #[test]
    fn virtual_keys_arrive_as_hashes_with_routes_and_budgets_and_bad_ones_are_refused() {
        let mut t = tenant("a", 3, 8080, "sk-backend");
        t.virtual_keys = vec![pb::VirtualKey {
            id: "c1/llm/alice".into(),
            sha256: vec![0xab; 32],
            routes: vec!["llm/local-llm".into()],
            budget: Some(pb::Budget {
                requests: 10,
                tokens: 0,
                window_seconds: 60,
            }),
        }];
        let typed = raw_tenant(&t).unwrap().validate("a", 3).unwrap();
        let k = &typed.virtual_keys["c1/llm/alice"];
        assert_eq!(k.sha256, [0xab; 32]);
        assert_eq!(k.routes, vec!["llm/local-llm"]);
        let b = k.budget.unwrap();
        assert_eq!(
            (b.requests, b.tokens, b.window_seconds),
            (Some(10), None, 60)
        );

        // A hash of the wrong size, and a key opening a passthrough route: the tenant is refused.
        let mut short = t.clone();
        short.virtual_keys[0].sha256 = vec![1; 31];
        let e = raw_tenant(&short).unwrap().validate("a", 3).unwrap_err();
        assert!(
            e.to_string().contains("virtualKeys.c1/llm/alice.sha256"),
            "{e}"
        );
        let mut pass = t.clone();
        for b in pass.routes.values_mut() {
            b.policies = Some(pb::Policies {
                auth: Some(pb::BackendAuth {
                    key: String::new(),
                    passthrough: true,
                }),
                request_timeout_ms: 0,
                model_aliases: Default::default(),
            });
        }
        let e = raw_tenant(&pass).unwrap().validate("a", 3).unwrap_err();
        assert!(
            e.to_string().contains("passes the client's Authorization"),
            "{e}"
        );
    }

    #[test]
    fn endpoints_and_passthrough_arrive_in_the_typed_model() {
        use crate::config::{BackendAuth, BackendKind};
        let mut t = tenant("a", 3, 8080, "");
        for b in t.routes.values_mut() {
            if let Some(pb::backend::Kind::Ai(ai)) = &mut b.kind {
                ai.host = "llama-cpp.llm.svc.cluster.local".into();
                ai.endpoints = vec![
                    pb::Address {
                        ip: "127.0.3.1".into(),
                        port: 9001,
                    },
                    pb::Address {
                        ip: "::1".into(),
                        port: 9002,
                    },
                ];
            }
            b.policies = Some(pb::Policies {
                auth: Some(pb::BackendAuth {
                    key: String::new(),
                    passthrough: true,
                }),
                request_timeout_ms: 0,
                model_aliases: Default::default(),
            });
        }
        let typed = raw_tenant(&t).unwrap().validate("a", 3).unwrap();
        let backend = &typed.routes["llm/local-llm"];
        let BackendKind::Ai(ai) = &backend.kind else {
            panic!("a single provider")
        };
        let endpoints: Vec<String> = ai.endpoints.iter().map(|e| e.to_string()).collect();
        assert_eq!(endpoints, ["127.0.3.1:9001", "[::1]:9002"]);
        assert_eq!(ai.host, "llama-cpp.llm.svc.cluster.local");
        assert_eq!(backend.policies.auth, Some(BackendAuth::Passthrough));

        // A key and passthrough together, a bad endpoint: refused, naming the field.
        let mut both = tenant("b", 1, 8080, "sk-b");
        for b in both.routes.values_mut() {
            if let Some(p) = &mut b.policies {
                p.auth.as_mut().unwrap().passthrough = true;
            }
        }
        let err = raw_tenant(&both)
            .and_then(|r| r.validate("b", 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("policies.auth: set either"), "{err}");
        assert!(!err.contains("sk-b"), "{err}");
        for (ip, port, want) in [
            (
                "llm.svc",
                80,
                "endpoints[0]: ip \"llm.svc\" is not an IP address literal",
            ),
            (
                "127.0.0.1",
                70000,
                "endpoints[0]: port 70000 is above 65535",
            ),
            (
                "127.0.0.1",
                0,
                "endpoints[0]: \"127.0.0.1:0\": 0 is not a port",
            ),
        ] {
            let mut bad = tenant("c", 1, 8080, "k");
            for b in bad.routes.values_mut() {
                if let Some(pb::backend::Kind::Ai(ai)) = &mut b.kind {
                    ai.endpoints = vec![pb::Address {
                        ip: ip.into(),
                        port,
                    }];
                }
            }
            let err = raw_tenant(&bad)
                .and_then(|r| r.validate("c", 1))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tenants.c.routes.llm/local-llm.ai.provider.") && err.contains(want),
                "{err}"
            );
        }
    }

    #[test]
    fn hub_addresses_and_gateway_ids_are_checked_before_dialling() {
        let ok = HubSource::new("http://127.0.0.1:18000", "gw-0", Duration::from_secs(1));
        assert_eq!(ok.unwrap().gateway_id, "gw-0");
        for (url, id, want) in [
            ("127.0.0.1:18000", "gw", "must be http://<host>:<port>"),
            ("https://hub:18000", "gw", "must be http://<host>:<port>"),
            ("http://", "gw", "is not a URL"),
            ("http://127.0.0.1:1", "", "must be 1..=253 bytes"),
            ("http://127.0.0.1:1", "a\nb", "may hold only letters"),
        ] {
            let err = HubSource::new(url, id, Duration::from_secs(1))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{url} {id:?}: {err}");
        }
        let id = default_gateway_id();
        assert!(check_gateway_id(&id).is_ok(), "{id}");
        assert!(id.ends_with(&format!("/{}", std::process::id())), "{id}");
    }

    #[test]
    fn a_backend_without_a_kind_or_provider_is_refused_with_a_reason() {
        let (mut store, _rx) = ConfigStore::new();
        let mut no_kind = tenant("a", 1, 80, "k");
        no_kind.routes.values_mut().for_each(|b| b.kind = None);
        let mut no_provider = tenant("b", 1, 80, "k");
        no_provider.routes.values_mut().for_each(|b| {
            if let Some(pb::backend::Kind::Ai(ai)) = &mut b.kind {
                ai.provider = None;
            }
        });
        let ack = apply_update(
            &mut store,
            &pb::Update {
                revision: 1,
                full_state: true,
                tenants: vec![no_kind, no_provider],
                removed_tenants: vec![],
            },
        );
        assert!(
            ack.tenants[0].reason.contains("exactly one kind"),
            "{ack:?}"
        );
        assert!(
            ack.tenants[1].reason.contains("no provider kind"),
            "{ack:?}"
        );
    }

    /// A groups backend: one provider of a group as the hub sends it.
    fn member(name: &str, ip: &str, key: Option<&str>) -> pb::AiGroupProvider {
        pb::AiGroupProvider {
            name: name.into(),
            backend: Some(pb::AiBackend {
                provider: Some(pb::ai_backend::Provider::Openai(pb::OpenAi { model: None })),
                host: ip.into(),
                port: 8080,
                path: None,
                path_prefix: None,
                endpoints: vec![],
                tls: false,
            }),
            auth: key.map(|k| pb::BackendAuth {
                key: k.into(),
                passthrough: false,
            }),
        }
    }

    fn with_groups(groups: Vec<Vec<pb::AiGroupProvider>>) -> pb::TenantConfig {
        let mut t = tenant("a", 1, 8080, "sk-backend");
        for b in t.routes.values_mut() {
            b.kind = Some(pb::backend::Kind::Groups(pb::AiGroups {
                groups: groups
                    .iter()
                    .map(|providers| pb::AiGroup {
                        providers: providers.clone(),
                    })
                    .collect(),
            }));
        }
        t
    }

    /// `Backend.groups` from the hub -> the typed `AiGroups` the failover serves, in order,
    /// each provider with its own key or the backend's.
    #[test]
    fn groups_from_the_hub_arrive_as_failover_groups_with_their_keys() {
        use crate::config::{BackendAuth, BackendKind, Secret};
        let t = with_groups(vec![
            vec![
                member("a", "127.0.1.10", Some("sk-a")),
                member("b", "127.0.1.11", None),
            ],
            vec![member("c", "127.0.1.12", Some("sk-c"))],
        ]);
        let typed = raw_tenant(&t).unwrap().validate("a", 1).unwrap();
        let backend = &typed.routes["llm/local-llm"];
        let BackendKind::AiGroups(groups) = &backend.kind else {
            panic!("groups expected: {:?}", backend.kind)
        };
        let got: Vec<Vec<(String, Option<BackendAuth>)>> = groups
            .iter()
            .map(|g| g.iter().map(|p| (p.host.clone(), p.auth.clone())).collect())
            .collect();
        let key = |k: &str| Some(BackendAuth::Key(Secret::new(k.to_string())));
        assert_eq!(
            got,
            vec![
                vec![
                    ("127.0.1.10".to_string(), key("sk-a")),
                    ("127.0.1.11".to_string(), None),
                ],
                vec![("127.0.1.12".to_string(), key("sk-c"))],
            ]
        );
        assert_eq!(backend.policies.auth, key("sk-backend"));
    }

    #[test]
    fn hostile_groups_from_the_hub_are_refused_naming_the_field() {
        let no_backend = {
            let mut m = member("a", "127.0.1.10", None);
            m.backend = None;
            m
        };
        let big_port = {
            let mut m = member("b", "127.0.1.10", None);
            if let Some(b) = &mut m.backend {
                b.port = 70_000;
            }
            m
        };
        let spaced_key = member("c", "127.0.1.10", Some("sk with space"));
        let cases = [
            (
                with_groups(vec![vec![no_backend]]),
                "ai.groups[0].providers[0]: no backend",
            ),
            (
                with_groups(vec![vec![member("a", "127.0.1.10", None)], vec![big_port]]),
                "ai.groups[1].providers[0].port: above 65535",
            ),
            (
                with_groups(vec![vec![spaced_key]]),
                "ai.groups[0].providers[0].policies.auth.key: must be printable ASCII",
            ),
            (with_groups(vec![]), "ai.groups: must list 1..=16 groups"),
            (
                with_groups(vec![vec![]]),
                "ai.groups[0].providers: must list 1..=16 providers",
            ),
        ];
        for (t, want) in cases {
            let err = raw_tenant(&t)
                .and_then(|raw| raw.validate("a", 1))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
            assert!(!err.contains("sk with space"), "{err}");
        }
    }
}
