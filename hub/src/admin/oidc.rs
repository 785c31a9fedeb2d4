//! Dashboard login through an OpenID Connect provider (`adminOidc` in the hub config), next to
//! operator tokens: authorization code flow with PKCE, `state` and `nonce` bound to the
//! browser by a short-lived signed cookie, the ID token verified against the issuer's keys.
//!
//! A successful login ends like a token login: the hub mints an operator token
//! ([`super::operator_token`]) for the mapped role, named after the user, expiring with the ID
//! token or after `adminOidc.maxSession`, whichever comes first, and the dashboard keeps it in
//! its session cookie. So roles, CSRF and expiry have one code path whichever way an operator
//! logged in.
//!
//! - [`flow`]: state, nonce, PKCE, the pending-login cookie, the authorization URL (pure).
//! - [`id_token`]: ID token verification (pure).
//! - [`roles`]: claim -> role, and the operator name (pure).
//! - [`provider`]: discovery, keys and the token request, only ever to the configured issuer.

pub mod flow;
pub mod id_token;
pub mod provider;
pub mod roles;

use std::collections::BTreeMap;
use std::sync::Mutex;

use ring::hmac;

use super::operator_token::{self, Operator};
use crate::config::AdminOidc;

/// Why a callback did not log anyone in; the text is shown on the login page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Flow(#[from] flow::FlowError),
    #[error("{0}")]
    Provider(#[from] provider::ProviderError),
    #[error("{0}")]
    IdToken(#[from] id_token::IdTokenError),
    #[error("{0}")]
    Role(#[from] roles::RoleError),
    #[error("the OIDC provider did not log you in: {0}")]
    AtProvider(String),
    #[error("the provider's answer has no code: click Sign in again")]
    NoCode,
    #[error("cannot create the session: {0}")]
    Session(String),
}

impl LoginError {
    /// A login that worked at the provider but earns no role (403), or anything else (401).
    pub fn forbidden(&self) -> bool {
        matches!(self, LoginError::Role(_))
    }
}

/// The states of completed logins, until their cookie would have expired: a callback seen
/// twice (a replayed URL, a copied cookie) is refused the second time.
#[derive(Debug)]
pub struct Completed {
    seen: Mutex<BTreeMap<String, u64>>,
    capacity: usize,
}

impl Default for Completed {
    fn default() -> Self {
        Self::with_capacity(MAX_COMPLETED)
    }
}

/// Most logins remembered at once; past it the one expiring first is forgotten (its code was
/// single-use at the provider anyway), so a flood of logins cannot lock operators out.
const MAX_COMPLETED: usize = 10_000;

impl Completed {
    /// Remembering at most `capacity` logins.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Whether this is the first time `pending` completes.
    pub fn first(&self, pending: &flow::Pending, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, expires| *expires > now);
        if seen.contains_key(&pending.state) {
            return false;
        }
        while seen.len() >= self.capacity {
            let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(state, _)| state.clone())
            else {
                break;
            };
            seen.remove(&oldest);
        }
        seen.insert(pending.state.clone(), pending.expires);
        true
    }
}

/// Starts a login: the provider URL to send the browser to, and the pending-login cookie value.
pub async fn begin(
    oidc: &AdminOidc,
    operator_key: &hmac::Key,
    now: u64,
) -> Result<(String, String), LoginError> {
    let discovery = provider::discover(oidc).await?;
    let pending = flow::Pending::start(now)?;
    let url = flow::authorize_url(
        &discovery.authorization_endpoint,
        &oidc.client_id,
        &oidc.redirect_url,
        &oidc.scopes,
        &pending,
    );
    Ok((url, pending.seal(&flow::cookie_key(operator_key))))
}

/// Ends a login at the callback: `cookie` is the pending-login cookie, `param` reads the
/// callback's query. The session's operator token and who it speaks for.
pub async fn finish(
    oidc: &AdminOidc,
    operator_key: &hmac::Key,
    completed: &Completed,
    cookie: Option<&str>,
    param: impl Fn(&str) -> Option<String>,
    now: u64,
) -> Result<(String, Operator), LoginError> {
    let pending = flow::Pending::open(
        &flow::cookie_key(operator_key),
        cookie.ok_or(flow::FlowError::NoLogin)?,
        now,
    )?;
    pending.check_state(&param("state").unwrap_or_default())?;
    if !completed.first(&pending, now) {
        return Err(flow::FlowError::Replayed.into());
    }
    if let Some(error) = param("error") {
        let detail = param("error_description").unwrap_or_default();
        return Err(LoginError::AtProvider(
            format!("{error} {detail}")
                .trim()
                .chars()
                .take(300)
                .collect(),
        ));
    }
    let code = param("code")
        .filter(|c| !c.is_empty())
        .ok_or(LoginError::NoCode)?;
    let discovery = provider::discover(oidc).await?;
    let token = provider::exchange(oidc, &discovery, &code, &pending.verifier).await?;
    let keys = provider::keys(oidc, &discovery).await?;
    let claims = id_token::verify(
        &keys,
        &token,
        id_token::Expected {
            issuer: &oidc.issuer,
            client_id: &oidc.client_id,
            nonce: &pending.nonce,
            now,
        },
    )?;
    let role = roles::role(
        &claims,
        roles::Mapping {
            claim: &oidc.claim,
            viewer: &oidc.viewer,
            admin: &oidc.admin,
        },
    )?;
    let who = roles::who(&claims);
    let name = roles::operator_name(&who);
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(now);
    let expires = exp.min(now + oidc.max_session.as_secs());
    let token = operator_token::mint(operator_key, &name, role, expires)
        .map_err(|e| LoginError::Session(e.to_string()))?;
    tracing::info!(operator = %name, %who, role = role.as_str(), issuer = %oidc.issuer, "dashboard OIDC login");
    Ok((
        token,
        Operator {
            name,
            role,
            expires,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_login_cannot_complete_again() {
        let c = Completed::default();
        let p = flow::Pending::start(100).unwrap();
        assert!(c.first(&p, 101));
        assert!(!c.first(&p, 102));
        let q = flow::Pending::start(100).unwrap();
        assert!(c.first(&q, 102));
        // Forgotten once its cookie has expired (and then the cookie no longer opens).
        assert!(c.first(&p, p.expires));
    }

    #[test]
    fn a_flood_of_logins_does_not_lock_operators_out() {
        let c = Completed::with_capacity(50);
        let first = flow::Pending::start(100).unwrap();
        assert!(c.first(&first, 101));
        for _ in 0..60 {
            assert!(c.first(&flow::Pending::start(200).unwrap(), 101));
        }
        assert!(c.first(&flow::Pending::start(200).unwrap(), 101));
        assert_eq!(c.seen.lock().unwrap().len(), 50);
        // The one expiring first went first.
        assert!(!c.seen.lock().unwrap().contains_key(&first.state));
    }
}
