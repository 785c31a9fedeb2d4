//! The admin API's HTTP routes under `/api/v1/`, served on the hub's `adminListen` port.
//!
//! Every request needs `Authorization: Bearer <operator token>` ([`super::operator_token`]):
//! none or a bad one is 401, a `viewer` asking for an action is 403. Actions are POSTs with the
//! token in that header and never in a cookie, so another site's page cannot make an
//! operator's browser act (no ambient credentials to ride on). Answers are JSON; errors are
//! `{"error": "<what is wrong and what to do>"}`. Every action is logged with the operator's
//! name.
//!
//! | route | role | answer |
//! |---|---|---|
//! | `GET /api/v1/whoami` | viewer | the token's operator, role and expiry |
//! | `GET /api/v1/tenants` | viewer | [`views::TenantRow`]s |
//! | `GET /api/v1/clusters` | viewer | [`views::ClusterRow`]s |
//! | `GET /api/v1/tenants/<tenant>/objects[?q=]` | viewer | [`views::ObjectRow`]s |
//! | `GET /api/v1/tenants/<tenant>/ai-usage` | viewer | [`ai_usage::AiUsageView`]: tokens, requests, budgets left, MCP/A2A catalogs |
//! | `GET /api/v1/allocations` | viewer | [`views::AllocationRow`]s |
//! | `GET /api/v1/data-plane` | viewer | [`views::DataPlane`]: connected Envoys, AI gateways, standing Envoy NACKs |
//! | `GET /api/v1/traffic` | viewer | tenant -> [`crate::envoy_stats::TenantRate`] from Envoy's stats sink |
//! | `POST /api/v1/clusters/<tenant>/<cluster>/{disable,enable,revoke}` | admin | `{"changed": bool}` |
//! | `POST /api/v1/tokens` `{"tenant","cluster","ttlSeconds"}` | admin | a bootstrap token |

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use ring::hmac;
use serde::Serialize;
use tokio::sync::watch;

use super::ai_usage::{self, AiUsageView};
use super::operator_token::{self, Operator, Role};
use super::views::{self, FleetState};
use crate::ai_config::AiGatewayHealth;
use crate::config::Registration;
use crate::data_plane::Envoys;
use crate::enroll::token::{self as bootstrap, TokenKey};
use crate::fleet::{AdminRefusal, Fleet, unix_now};
use crate::model::ClusterKey;
use crate::sync::FleetStatus;
use crate::xds::XdsHealth;

/// Largest request body (only `POST /api/v1/tokens` has one).
const MAX_BODY: usize = 4096;

/// What the API reads and acts on.
pub struct AdminApi {
    fleet: Arc<Fleet>,
    statuses: watch::Receiver<FleetStatus>,
    xds: watch::Receiver<XdsHealth>,
    ai: watch::Receiver<AiGatewayHealth>,
    envoys: watch::Receiver<Envoys>,
    envoy_stats: Option<Arc<crate::envoy_stats::EnvoyStats>>,
    operator_key: hmac::Key,
    token_key: TokenKey,
    /// OIDC logins already completed (a replayed callback is refused).
    oidc_completed: super::oidc::Completed,
    /// What the AI part of a tenant's page reads; `None`: the hub shows no AI usage.
    ai_sources: Option<AiSources>,
}

/// Where a tenant's AI usage, budgets and catalogs are read from.
#[derive(Clone)]
pub struct AiSources {
    /// The AI configuration published to the gateways (budgets, MCP and A2A routes).
    pub published: watch::Receiver<Arc<crate::ai_config::Published>>,
    /// MCP tool pins.
    pub pins: watch::Receiver<Arc<crate::ai_config::pins::PinBook>>,
    /// Budget counts and reported usage.
    pub accounts: crate::ai_config::AiAccounts,
}

type Answer = Response<Full<Bytes>>;

fn json(status: StatusCode, body: &impl Serialize) -> Answer {
    let text = serde_json::to_vec_pretty(body).unwrap_or_else(|e| {
        format!("{{\"error\": \"cannot encode the answer: {e}\"}}").into_bytes()
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(text)))
        .expect("static response parts are valid")
}

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    let mut r = json(status, &serde_json::json!({ "error": message.into() }));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            hyper::header::HeaderValue::from_static("Bearer realm=\"fleetgate-hub\""),
        );
    }
    r
}

/// A refusal: its HTTP status and what to do.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

impl Refusal {
    fn answer(self) -> Answer {
        error(self.0, self.1)
    }
}

/// A POST body of `POST /api/v1/tokens`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    tenant: String,
    cluster: String,
    /// Default 15 minutes, at most 24 hours.
    ttl_seconds: Option<u64>,
}

impl AdminApi {
    pub fn new(
        fleet: Arc<Fleet>,
        statuses: watch::Receiver<FleetStatus>,
        xds: watch::Receiver<XdsHealth>,
        ai: watch::Receiver<AiGatewayHealth>,
        token_key: TokenKey,
    ) -> Self {
        Self {
            fleet,
            statuses,
            xds,
            ai,
            envoys: watch::channel(Envoys::new()).1,
            envoy_stats: None,
            operator_key: operator_token::operator_key(&token_key),
            token_key,
            oidc_completed: Default::default(),
            ai_sources: None,
        }
    }

    /// Shows the Envoys the ADS streams report (`crate::data_plane`); none without it.
    pub fn with_envoys(mut self, envoys: watch::Receiver<Envoys>) -> Self {
        self.envoys = envoys;
        self
    }

    /// Shows each tenant's traffic from Envoy's stats sink (`crate::envoy_stats`).
    pub fn with_envoy_stats(mut self, stats: Arc<crate::envoy_stats::EnvoyStats>) -> Self {
        self.envoy_stats = Some(stats);
        self
    }

    /// Each tenant's traffic over the Envoys' last flush interval (empty without a stats sink).
    pub fn traffic(&self) -> std::collections::BTreeMap<String, crate::envoy_stats::TenantRate> {
        self.envoy_stats
            .as_ref()
            .map(|s| s.rates())
            .unwrap_or_default()
    }

    /// The connected Envoys (changes as they connect, ACK, NACK and leave).
    pub fn envoys(&self) -> watch::Receiver<Envoys> {
        self.envoys.clone()
    }

    /// The API showing tenants' AI usage from `sources`.
    pub fn with_ai(mut self, sources: AiSources) -> Self {
        self.ai_sources = Some(sources);
        self
    }

    /// `tenant`'s AI usage, budgets left and catalogs (`None`: no such tenant at this hub);
    /// empty when the hub runs without AI sources.
    pub fn ai_usage(&self, tenant: &str) -> Option<AiUsageView> {
        self.fleet.config().tenants.get(tenant)?;
        let Some(src) = &self.ai_sources else {
            return Some(AiUsageView::default());
        };
        let published = src.published.borrow().clone();
        let pins = src.pins.borrow().clone();
        let usage = src.accounts.usage.lock().unwrap_or_else(|p| p.into_inner());
        let ledger = src
            .accounts
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some(ai_usage::view(
            tenant,
            published.tenants.get(tenant).map(|t| &t.content),
            &usage,
            &ledger,
            &pins,
            unix_now() as u64,
        ))
    }

    /// The fleet the API reads and acts on.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The compiled statuses (changes when any object's status does).
    pub fn statuses(&self) -> watch::Receiver<FleetStatus> {
        self.statuses.clone()
    }

    /// The key sessions and CSRF tokens of the dashboard are derived from.
    pub fn operator_key(&self) -> &hmac::Key {
        &self.operator_key
    }

    /// OIDC logins already completed.
    pub fn oidc_completed(&self) -> &super::oidc::Completed {
        &self.oidc_completed
    }

    /// The hub's state as this request sees it.
    pub fn state(&self) -> FleetState {
        let view = self.fleet.view();
        FleetState {
            config: self.fleet.config(),
            file_disabled: self.fleet.file_config().identity.disabled_clusters.clone(),
            operator_disabled: self.fleet.operator_disabled(),
            connected: self.fleet.connected_anywhere(),
            withdrawn: view.withdrawn,
            statuses: (**self.statuses.borrow()).clone(),
            owners: self.fleet.hostname_owners(),
            allocations: view.allocations,
            allocation_failures: view.allocation_failures,
            xds: self.xds.borrow().clone(),
            ai: self.ai.borrow().clone(),
            envoys: self.envoys.borrow().clone(),
        }
    }

    fn authenticate(&self, req: &Request<Incoming>) -> Result<Operator, Refusal> {
        let Some(value) = req.headers().get(hyper::header::AUTHORIZATION) else {
            return Err(Refusal(
                StatusCode::UNAUTHORIZED,
                "no operator token: send `Authorization: Bearer <token>` (create one with `fleetgate-hub operator-token create`)".into(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Refusal(
                    StatusCode::UNAUTHORIZED,
                    "the Authorization header must be `Bearer <operator token>`".into(),
                )
            })?;
        self.verify(token)
    }

    /// Who `token` (an operator token) speaks for.
    pub fn verify(&self, token: &str) -> Result<Operator, Refusal> {
        operator_token::verify(&self.operator_key, token, unix_now() as u64)
            .map_err(|e| Refusal(StatusCode::UNAUTHORIZED, e.to_string()))
    }

    /// Answers one request under `/api/`.
    pub async fn handle(&self, req: Request<Incoming>) -> Answer {
        let operator = match self.authenticate(&req) {
            Ok(op) => op,
            Err(refusal) => return refusal.answer(),
        };
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let parts: Vec<&str> = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        if !path.starts_with("/api/v1/") {
            return error(
                StatusCode::NOT_FOUND,
                format!("{path}: this hub serves the admin API under /api/v1/"),
            );
        }
        let reading = method == Method::GET;
        match (reading, parts.as_slice()) {
            (true, ["whoami"]) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "name": operator.name,
                    "role": operator.role,
                    "expires": operator.expires,
                }),
            ),
            (true, ["tenants"]) => json(StatusCode::OK, &views::tenants(&self.state())),
            (true, ["clusters"]) => json(StatusCode::OK, &views::clusters(&self.state())),
            (true, ["allocations"]) => json(StatusCode::OK, &views::allocations(&self.state())),
            (true, ["data-plane"]) => json(StatusCode::OK, &views::data_plane(&self.state())),
            (true, ["traffic"]) => json(StatusCode::OK, &self.traffic()),
            (true, ["tenants", tenant, "objects"]) => {
                let q = query.as_deref().and_then(|q| query_value(q, "q"));
                match views::objects(&self.state(), tenant, q.as_deref()) {
                    Some(rows) => json(StatusCode::OK, &rows),
                    None => error(
                        StatusCode::NOT_FOUND,
                        format!(
                            "no tenant {tenant:?} at this hub: `fleetgate-hub admin tenants` lists them"
                        ),
                    ),
                }
            }
            (true, ["tenants", tenant, "ai-usage"]) => match self.ai_usage(tenant) {
                Some(view) => json(StatusCode::OK, &view),
                None => error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no tenant {tenant:?} at this hub: `fleetgate-hub admin tenants` lists them"
                    ),
                ),
            },
            (false, ["clusters", tenant, cluster, action])
                if method == Method::POST && ["disable", "enable", "revoke"].contains(action) =>
            {
                let key = ClusterKey {
                    tenant: tenant.to_string(),
                    cluster: cluster.to_string(),
                };
                match self.cluster_action(&operator, &key, action) {
                    Ok(changed) => json(StatusCode::OK, &serde_json::json!({ "changed": changed })),
                    Err(r) => r.answer(),
                }
            }
            (false, ["tokens"]) if method == Method::POST => {
                match self.create_token(&operator, req).await {
                    Ok(answer) => answer,
                    Err(r) => r.answer(),
                }
            }
            (_, ["whoami" | "tenants" | "clusters" | "allocations" | "data-plane" | "traffic"])
            | (_, ["tenants", _, "objects" | "ai-usage"]) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{path} is read with GET"),
            ),
            (_, ["clusters", _, _, "disable" | "enable" | "revoke"]) | (_, ["tokens"]) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{path} is an action: use POST"),
            ),
            _ => error(
                StatusCode::NOT_FOUND,
                format!(
                    "{path}: unknown route; the admin API serves whoami, tenants, clusters, tenants/<tenant>/objects, tenants/<tenant>/ai-usage, allocations, data-plane, traffic, clusters/<tenant>/<cluster>/{{disable,enable,revoke}} and tokens under /api/v1/"
                ),
            ),
        }
    }

    /// `disable`, `enable` or `revoke` the cluster `key` as `operator` (admin only); whether
    /// anything changed.
    pub fn cluster_action(
        &self,
        operator: &Operator,
        key: &ClusterKey,
        action: &str,
    ) -> Result<bool, Refusal> {
        admin_only(operator, &format!("{action} a cluster"))?;
        let result = match action {
            "disable" => self.fleet.set_operator_disabled(key, true),
            "enable" => self.fleet.set_operator_disabled(key, false),
            "revoke" => self.fleet.revoke(key).map(|()| true),
            other => {
                return Err(Refusal(
                    StatusCode::NOT_FOUND,
                    format!("unknown action {other:?}: use disable, enable or revoke"),
                ));
            }
        };
        match result {
            Ok(changed) => {
                tracing::warn!(operator = %operator.name, cluster = %key, action, changed, "admin action");
                Ok(changed)
            }
            Err(e @ AdminRefusal::NotRegistered(_)) => {
                Err(Refusal(StatusCode::NOT_FOUND, e.to_string()))
            }
            Err(e @ AdminRefusal::Store(_)) => {
                Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
            }
        }
    }

    async fn create_token(
        &self,
        operator: &Operator,
        req: Request<Incoming>,
    ) -> Result<Answer, Refusal> {
        admin_only(operator, "create bootstrap tokens")?;
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                Refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body must be JSON of at most {MAX_BODY} bytes"),
                )
            })?
            .to_bytes();
        let want: TokenRequest = serde_json::from_slice(&body).map_err(|e| {
            Refusal(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be {{\"tenant\": ..., \"cluster\": ..., \"ttlSeconds\": ...}}: {e}"
                ),
            )
        })?;
        let ttl = want.ttl_seconds.unwrap_or(bootstrap::DEFAULT_TTL.as_secs());
        let (token, expires) = self.bootstrap_token(operator, &want.tenant, &want.cluster, ttl)?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "token": token,
                "tenant": want.tenant,
                "cluster": want.cluster,
                "expires": expires,
            }),
        ))
    }

    /// A bootstrap token for `tenant`/`cluster` valid `ttl` seconds, as `operator` (admin only):
    /// the token and its expiry (Unix seconds).
    pub fn bootstrap_token(
        &self,
        operator: &Operator,
        tenant: &str,
        cluster: &str,
        ttl: u64,
    ) -> Result<(String, u64), Refusal> {
        admin_only(operator, "create bootstrap tokens")?;
        if ttl == 0 || ttl > bootstrap::MAX_TTL.as_secs() {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!(
                    "ttlSeconds {ttl}: use 1 to {} (24 hours)",
                    bootstrap::MAX_TTL.as_secs()
                ),
            ));
        }
        match self.fleet.config().registration(tenant, cluster) {
            Registration::Active => {}
            Registration::Unknown => {
                return Err(Refusal(
                    StatusCode::NOT_FOUND,
                    format!(
                        "cluster {tenant}/{cluster} is not registered at this hub: add it under tenants.<tenant>.clusters in the hub's configuration first"
                    ),
                ));
            }
            Registration::Disabled => {
                return Err(Refusal(
                    StatusCode::CONFLICT,
                    format!(
                        "cluster {tenant}/{cluster} is disabled: enable it first, its agent could not enroll"
                    ),
                ));
            }
        }
        let expires = unix_now() as u64 + ttl;
        let token = bootstrap::mint(&self.token_key, tenant, cluster, expires)
            .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        tracing::warn!(operator = %operator.name, %tenant, %cluster, ttl, "admin action: bootstrap token created");
        Ok((token, expires))
    }
}

fn admin_only(operator: &Operator, what: &str) -> Result<(), Refusal> {
    if operator.role == Role::Admin {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::FORBIDDEN,
            format!(
                "operator {:?} has the {} role: only admin may {what}; ask for an admin token",
                operator.name,
                operator.role.as_str()
            ),
        ))
    }
}

/// The value of `name=` in a query string or form body (percent-decoded; `+` is a space).
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

/// `s` with its `%XX` escapes decoded (invalid UTF-8 replaced).
pub fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_parameter_is_decoded() {
        let q = |s| query_value(s, "q");
        assert_eq!(q("q=api").as_deref(), Some("api"));
        assert_eq!(q("x=1&q=a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(q("q=%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(q("q=%C3%A9t%C3").as_deref(), Some("\u{e9}t\u{fffd}"));
        assert_eq!(q("x=1"), None);
        assert_eq!(q("qq=1"), None);
    }
}
