//! The hub's configuration stream (`fleetgate.aigateway.v1.AiGatewayConfig/Stream`), gateway
//! side: wire types stop here, converted into the file model's [`RawTenant`] and validated by the
//! same code as a file ([`RawTenant::validate`]).
//!
//! - [`apply_update`]: one `Update` -> the new configuration and one `Ack` with a verdict per
//!   tenant. A refused tenant keeps its previous version; the others are applied.
//! - [`HubSource`]: the [`ConfigSource`] that dials the hub, says Hello, applies Updates and
//!   acknowledges them, reconnecting with backoff. Plaintext today (tested against an in-process
//!   server); mTLS with the gateway's own identity comes with the hub side.

use std::collections::BTreeMap;
use std::time::Duration;

use fleetgate_proto::aigateway::v1 as pb;
use futures::future::BoxFuture;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::model::{RawAi, RawAuth, RawBackend, RawOpenAi, RawPolicies, RawProvider, RawTenant};
use super::source::{ConfigSource, SourceError};
use super::store::ConfigStore;
use super::{ConfigError, Secret};

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
        let ai = match &b.kind {
            None => None,
            Some(pb::backend::Kind::Ai(ai)) => {
                let port = match u16::try_from(ai.port) {
                    Ok(p) => p,
                    Err(_) => return Err(field(format!("{at}.ai.provider.port"), "above 65535")),
                };
                Some(RawAi {
                    provider: RawProvider {
                        openai: ai.provider.as_ref().map(|p| match p {
                            pb::ai_backend::Provider::Openai(o) => RawOpenAi {
                                model: o.model.clone(),
                            },
                        }),
                        host: Some(ai.host.clone()).filter(|h| !h.is_empty()),
                        port: Some(port),
                        path: ai.path.clone(),
                        path_prefix: ai.path_prefix.clone(),
                    },
                })
            }
        };
        let policies = b.policies.as_ref().map(|p| RawPolicies {
            auth: p
                .auth
                .as_ref()
                .filter(|a| !a.key.is_empty())
                .map(|a| RawAuth {
                    key: Some(Secret::new(a.key.clone())),
                }),
            request_timeout_ms: Some(p.request_timeout_ms).filter(|ms| *ms > 0),
        });
        routes.insert(
            name.clone(),
            RawBackend {
                ai,
                policies: policies.unwrap_or_default(),
            },
        );
    }
    Ok(RawTenant {
        version: Some(t.version),
        max_concurrency: Some(t.max_concurrency).filter(|c| *c > 0),
        routes,
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
    /// e.g. `http://127.0.0.1:7443`.
    pub endpoint: String,
    pub gateway_id: String,
    pub max_backoff: Duration,
}

impl HubSource {
    async fn follow(&self, store: &mut ConfigStore) -> Result<(), SourceError> {
        let err = |e: &dyn std::fmt::Display| SourceError::Stream(e.to_string());
        let mut client =
            pb::ai_gateway_config_client::AiGatewayConfigClient::connect(self.endpoint.clone())
                .await
                .map_err(|e| err(&e))?;
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
        while let Some(msg) = inbound.next().await {
            let msg = msg.map_err(|e| err(&e))?;
            let Some(pb::hub_message::Kind::Update(update)) = msg.kind else {
                continue;
            };
            let ack = apply_update(store, &update);
            let ack = pb::GatewayMessage {
                kind: Some(pb::gateway_message::Kind::Ack(ack)),
            };
            tx.send(ack).await.map_err(|e| err(&e))?;
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
            })),
            policies: Some(pb::Policies {
                auth: Some(pb::BackendAuth {
                    key: key.into(),
                    passthrough: false,
                }),
                request_timeout_ms: 0,
            }),
        };
        pb::TenantConfig {
            tenant: name.into(),
            version,
            max_concurrency: 0,
            routes: [("llm/local-llm".to_string(), backend)].into(),
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
}
