//! Budgets: between route and provider (listen -> identify -> route -> **budget** -> provider
//! -> auth -> usage -> errors).
//!
//! A tenant's budget (the operator's `quotas.*.aiBudget`) and a virtual key's own budget are
//! counted by the hub, across every replica: before a budgeted request goes upstream the
//! gateway reserves it with the hub's `Spend` call ([`Ledger::reserve`]), and when the response
//! has ended it reports the tokens the usage stage counted ([`BudgetedUsage`]). Refused:
//! 429 with the hub's message and `Retry-After` until the window starts again. The hub cannot
//! be asked: 503, never an uncounted request (a budget is money; fail closed). Requests of
//! tenants and keys without a budget never call the hub.

use std::sync::Arc;
use std::time::Duration;

use fleetgate_proto::aigateway::v1 as pb;
use futures::future::BoxFuture;
use hyper::{Response, StatusCode, header};

use crate::Body;
use crate::errors::ApiError;
use crate::usage::{Usage, UsageKey, UsageSink};

/// How long a `Spend` call may take before the request is answered 503.
pub const SPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a request may not go upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// A budget is spent: 429 until `retry_after_seconds` have passed.
    #[error("{message}")]
    Spent {
        message: String,
        retry_after_seconds: u64,
    },
    /// The hub could not be asked (unreachable, too slow, or this gateway has none).
    #[error("the budget could not be checked: {0}")]
    Unavailable(String),
}

impl BudgetError {
    /// The answer to the client: 429 `insufficient_quota` with `Retry-After`, or 503, in the
    /// client's API's shape (Anthropic's for a Messages API client, OpenAI's otherwise).
    pub fn into_client_response(self, anthropic_client: bool) -> Response<Body> {
        match self {
            BudgetError::Spent {
                message,
                retry_after_seconds,
            } => {
                let mut resp = ApiError {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    kind: "insufficient_quota",
                    code: "budget_exceeded",
                    message,
                }
                .into_client_response(anthropic_client);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_seconds.into());
                resp
            }
            BudgetError::Unavailable(why) => {
                let mut resp = ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    kind: "api_error",
                    code: "budget_unavailable",
                    message: format!(
                        "this route has a budget and the gateway could not check it ({why}); retry shortly"
                    ),
                }
                .into_client_response(anthropic_client);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                resp
            }
        }
    }
}

/// Where budgets are counted. The hub in production ([`HubLedger`]); tests may count in
/// memory.
pub trait Ledger: Send + Sync + std::fmt::Debug + 'static {
    /// Reserves one request of `tenant` (with virtual key `key_id`, empty for none).
    fn reserve<'a>(
        &'a self,
        tenant: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), BudgetError>>;
    /// Reports the tokens one response used (best effort: a lost report undercounts).
    fn report(&self, tenant: &str, key_id: &str, tokens: u64);
}

/// The hub's `Spend` call on a lazily connected channel that reconnects by itself.
#[derive(Debug, Clone)]
pub struct HubLedger {
    client: pb::ai_gateway_config_client::AiGatewayConfigClient<tonic::transport::Channel>,
}

impl HubLedger {
    /// A ledger at the hub's data-plane address (`--hub`); nothing is dialled until the first
    /// budgeted request.
    pub fn new(hub: &str) -> Result<Self, BudgetError> {
        let endpoint = tonic::transport::Endpoint::from_shared(hub.to_string())
            .map_err(|e| BudgetError::Unavailable(format!("--hub {hub:?}: {e}")))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(SPEND_TIMEOUT)
            .tcp_nodelay(true);
        Ok(Self {
            client: pb::ai_gateway_config_client::AiGatewayConfigClient::new(
                endpoint.connect_lazy(),
            ),
        })
    }

    async fn spend(&self, req: pb::SpendRequest) -> Result<pb::SpendReply, BudgetError> {
        let mut client = self.client.clone();
        match tokio::time::timeout(SPEND_TIMEOUT, client.spend(req)).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(BudgetError::Unavailable(format!(
                "the hub answered {:?}: {}",
                status.code(),
                status.message()
            ))),
            Err(_) => Err(BudgetError::Unavailable(format!(
                "the hub did not answer within {} ms",
                SPEND_TIMEOUT.as_millis()
            ))),
        }
    }
}

impl Ledger for HubLedger {
    fn reserve<'a>(
        &'a self,
        tenant: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<(), BudgetError>> {
        Box::pin(async move {
            let reply = self
                .spend(pb::SpendRequest {
                    tenant: tenant.to_string(),
                    key_id: key_id.to_string(),
                    requests: 1,
                    tokens: 0,
                })
                .await?;
            if reply.allowed {
                Ok(())
            } else {
                Err(BudgetError::Spent {
                    message: reply.message,
                    retry_after_seconds: reply.retry_after_seconds.max(1),
                })
            }
        })
    }

    fn report(&self, tenant: &str, key_id: &str, tokens: u64) {
        let this = self.clone();
        let req = pb::SpendRequest {
            tenant: tenant.to_string(),
            key_id: key_id.to_string(),
            requests: 0,
            tokens,
        };
        tokio::spawn(async move {
            if let Err(e) = this.spend(req).await {
                tracing::warn!(error = %e, "reporting tokens to the hub failed; the budget undercounts them");
            }
        });
    }
}

/// The usage stage's sink for a budgeted request: records as usual, then reports the
/// response's tokens (prompt + completion) to the ledger.
pub struct BudgetedUsage {
    pub inner: Arc<dyn UsageSink>,
    pub ledger: Arc<dyn Ledger>,
    pub tenant: Arc<str>,
    pub key_id: String,
}

impl UsageSink for BudgetedUsage {
    fn record(&self, key: UsageKey, usage: Usage) {
        let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        self.inner.record(key, usage);
        if tokens > 0 {
            self.ledger.report(&self.tenant, &self.key_id, tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_spent_budget_is_a_429_with_retry_after_and_an_openai_body() {
        let resp = BudgetError::Spent {
            message: "the request budget of tenant a (2 requests per 60 s) is spent; it starts again in 30 s".into(),
            retry_after_seconds: 30,
        }
        .into_client_response(false);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "30");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "insufficient_quota");
        assert_eq!(v["error"]["code"], "budget_exceeded");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("tenant a (2 requests per 60 s)")
        );
    }

    #[tokio::test]
    async fn an_unreachable_hub_fails_closed_with_503() {
        // Nothing listens on port 1 of this loopback address.
        let ledger = HubLedger::new("http://127.0.0.1:1").unwrap();
        let err = ledger.reserve("a", "").await.unwrap_err();
        assert!(matches!(err, BudgetError::Unavailable(_)), "{err:?}");
        let resp = err.into_client_response(true);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["type"], "error",
            "Anthropic's shape for a Messages client: {v}"
        );
    }
}
