//! `fleetgate.enroll.v1.EnrollService`: bootstrap-token enrollment and certificate renewal.
//!
//! Where it sits: before the data path, on the agent port next to Sync. An agent without a
//! certificate calls `Enroll` with a bootstrap token ([`token`]) and a CSR; the hub checks the
//! token (MAC, expiry, not used before: recorded in the store), that its cluster is registered
//! and enabled, and issues the certificate for the token's identity ([`issue`]). `Renew` needs
//! the current client certificate, identified exactly as Sync identifies it
//! (`crate::peer::identify`), and is refused once the cluster is removed or disabled.
//! Tokens are never logged. Each call is counted by result in [`EnrollMetrics`]
//! (`crate::metrics` registers them).

pub mod issue;
pub mod token;

use std::sync::Arc;

use fleetgate_proto::enroll::v1::{
    EnrollRequest, EnrollResponse, RenewRequest, enroll_service_server::EnrollService,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::config::Registration;
use crate::fleet::{Fleet, IdentityRefusal, unix_now};
use crate::identity::{HubCa, SpiffeId};
use crate::model::ClusterKey;
use issue::{CsrError, issue_for_csr};
use token::{TokenError, TokenKey};

pub struct EnrollServer {
    fleet: Arc<Fleet>,
    trust_domain: String,
    ca: Arc<HubCa>,
    key: Arc<TokenKey>,
    metrics: EnrollMetrics,
}

/// The result of one Enroll or Renew call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `issued`, or the refusal's gRPC code: `unauthenticated` (bad, expired or used token; no
    /// or bad client certificate), `permission_denied` (cluster not registered or disabled),
    /// `invalid_argument` (bad CSR), `unavailable` (store), `internal`.
    pub result: &'static str,
}

/// Enroll and Renew calls by result.
#[derive(Clone, Default)]
pub struct EnrollMetrics {
    pub enrollments: Family<ResultLabels, Counter>,
    pub renewals: Family<ResultLabels, Counter>,
}

/// The bounded label of a call's outcome.
fn result_label<T>(r: &Result<T, Status>) -> &'static str {
    use tonic::Code;
    match r {
        Ok(_) => "issued",
        Err(s) => match s.code() {
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::InvalidArgument => "invalid_argument",
            Code::Unavailable => "unavailable",
            _ => "internal",
        },
    }
}

impl EnrollServer {
    pub fn new(fleet: Arc<Fleet>, trust_domain: String, ca: HubCa, key: TokenKey) -> Self {
        Self {
            fleet,
            trust_domain,
            ca: Arc::new(ca),
            key: Arc::new(key),
            metrics: EnrollMetrics::default(),
        }
    }

    /// Counts each call into `metrics`.
    pub fn with_metrics(mut self, metrics: EnrollMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn issue(&self, key: &ClusterKey, csr_der: &[u8]) -> Result<EnrollResponse, Status> {
        let id = SpiffeId::new(&self.trust_domain, &key.tenant, &key.cluster)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let lifetime = self.fleet.config().identity.certificate_lifetime;
        let lifetime = time::Duration::try_from(lifetime)
            .map_err(|e| Status::internal(format!("certificate lifetime: {e}")))?;
        let issued = issue_for_csr(&self.ca, csr_der, &id, lifetime, OffsetDateTime::now_utc())
            .map_err(|e| match e {
                CsrError::Sign(_) => Status::internal(e.to_string()),
                _ => Status::invalid_argument(e.to_string()),
            })?;
        Ok(EnrollResponse {
            certificate_chain_pem: issued.cert_pem,
            ca_pem: self.ca.ca_pem.clone(),
            not_after: issued.not_after,
        })
    }
}

fn token_refused(e: TokenError) -> Status {
    Status::unauthenticated(e.to_string())
}

#[tonic::async_trait]
impl EnrollService for EnrollServer {
    async fn enroll(
        &self,
        req: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let r = self.enroll_once(req);
        self.metrics
            .enrollments
            .get_or_create(&ResultLabels {
                result: result_label(&r),
            })
            .inc();
        r
    }

    async fn renew(&self, req: Request<RenewRequest>) -> Result<Response<EnrollResponse>, Status> {
        let r = self.renew_once(req);
        self.metrics
            .renewals
            .get_or_create(&ResultLabels {
                result: result_label(&r),
            })
            .inc();
        r
    }
}

impl EnrollServer {
    fn enroll_once(&self, req: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        let req = req.into_inner();
        let claims = token::verify(&self.key, &req.token, unix_now() as u64).map_err(|e| {
            tracing::warn!("enrollment refused: {e}");
            token_refused(e)
        })?;
        let key = ClusterKey {
            tenant: claims.tenant.clone(),
            cluster: claims.cluster.clone(),
        };
        let config = self.fleet.config();
        let refusal = match config.registration(&key.tenant, &key.cluster) {
            Registration::Active => None,
            Registration::Disabled => Some(IdentityRefusal::Disabled(key.clone())),
            Registration::Unknown => Some(IdentityRefusal::NotRegistered(key.clone())),
        };
        if let Some(e) = refusal {
            tracing::warn!(cluster = %key, "enrollment refused: {e}");
            return Err(Status::permission_denied(e.to_string()));
        }
        // The CSR is checked before the token is spent, so a broken agent can retry.
        let response = self.issue(&key, &req.csr_der)?;
        match self.fleet.consume_token(&claims.id, claims.expires) {
            Ok(true) => {}
            Ok(false) => {
                let e = TokenError::Used {
                    tenant: claims.tenant,
                    cluster: claims.cluster,
                };
                tracing::warn!(cluster = %key, "enrollment refused: {e}");
                return Err(token_refused(e));
            }
            Err(e) => return Err(Status::unavailable(format!("{e}; retry later"))),
        }
        tracing::info!(cluster = %key, not_after = response.not_after, "agent enrolled");
        Ok(Response::new(response))
    }

    fn renew_once(&self, req: Request<RenewRequest>) -> Result<Response<EnrollResponse>, Status> {
        let (key, _) = crate::peer::identify(&self.fleet, &self.trust_domain, &req)?;
        let response = self.issue(&key, &req.into_inner().csr_der)?;
        tracing::info!(cluster = %key, not_after = response.not_after, "agent certificate renewed");
        Ok(Response::new(response))
    }
}
